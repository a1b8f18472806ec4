/* SPDX-License-Identifier: MIT */
/* deploy.c: run this process as one node of a deployment (tcp:// or ipc://). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "core/core.h"
#include "node/node.h"
#include "transports/security.h"

int
fmi_deploy_role(const fmi_deploy_cfg *d, const char *name)
{
	if (strcmp(name, d->server_name) == 0) {
		return 1;
	}
	for (uint32_t i = 0; i < d->nclients; i++) {
		if (strcmp(name, d->clients[i]) == 0) {
			return 2;
		}
	}
	return fmi_deploy_edge_index(d, name) >= 0 ? 3 : 0;
}

static int
deploy_url(const fmi_deploy_cfg *d, int bind, char *url, size_t n,
    fm_error *err)
{
	const char *addr = bind && d->bind[0] ? d->bind : d->server;
	int len;
	if (strcmp(d->transport, "tcp") == 0) {
		len = snprintf(url, n, "tcp://%s", addr);
	} else if (strcmp(d->transport, "ipc") == 0) {
		len = snprintf(url, n, "ipc://%s", d->server);
	} else {
		return fm_error_set(err, FM_EINVAL, "deploy.transport must be "
		    "\"tcp\" or \"ipc\", not \"%s\"", d->transport);
	}
	if (len < 0 || (size_t)len >= n || addr[0] == '\0') {
		return fm_error_set(err, FM_EINVAL, "deploy.server must be "
		    "host:port (tcp) or a socket path (ipc)");
	}
	return FM_OK;
}

static int
key_path(char *buf, size_t n, const fmi_deploy_cfg *d, const char *name,
    const char *ext)
{
	int len = snprintf(buf, n, "%s/%s.%s", d->keys, name, ext);
	return len < 0 || (size_t)len >= n ? FM_EINVAL : FM_OK;
}

/* self's key pair, and the context's authenticator allows the keys of
 * allow[n]. */
static int
listen_security(fmi_tran_ctx *c, const fmi_deploy_cfg *d, const char *self,
    char (*allow)[FMI_NODE_NAME_MAX + 1], uint32_t n, fmi_keypair *kp,
    fm_error *err)
{
	char path[600];
	char (*pubs)[FMI_Z85_KEY_LEN + 1] = calloc(n, sizeof *pubs);
	const char **keys = calloc(n, sizeof *keys);
	const char **names = calloc(n, sizeof *names);
	int rv = pubs && keys && names ? FM_OK : FM_ENOMEM;
	if (rv == FM_OK) {
		(void)key_path(path, sizeof path, d, self, "key");
		rv = fmi_key_read_secret(path, kp, err);
	}
	for (uint32_t i = 0; rv == FM_OK && i < n; i++) {
		(void)key_path(path, sizeof path, d, allow[i], "pub");
		rv = fmi_key_read_public(path, pubs[i], err);
		keys[i] = pubs[i];
		names[i] = allow[i];
	}
	if (rv == FM_OK) {
		rv = fmi_tran_allow(c, keys, names, n, err);
	}
	free(pubs);
	free(keys);
	free(names);
	return rv;
}

int
fmi_deploy_listen(fmi_tran_ctx *c, const fmi_deploy_cfg *d, const char *self,
    const char *url, size_t max_frame, int handover, fmi_tran **t,
    fm_error *err)
{
	return fmi_deploy_listen_allow(c, d, self, url, d->clients, d->nclients,
	    max_frame, handover, t, err);
}

int
fmi_deploy_listen_allow(fmi_tran_ctx *c, const fmi_deploy_cfg *d,
    const char *self, const char *url, char (*allow)[FMI_NODE_NAME_MAX + 1],
    uint32_t nallow, size_t max_frame, int handover, fmi_tran **t,
    fm_error *err)
{
	fmi_keypair kp;
	fmi_tran_listen_opts o = { NULL, 0, handover };
	if (d->keys[0] == '\0') {
		return fmi_tran_listen_with(t, c, url, &o, err);
	}
	int rv = listen_security(c, d, self, allow, nallow, &kp, err);
	if (rv == FM_OK) {
		/* No frame larger than an update: a peer without a key cannot
		 * make the server buffer more during the handshake. */
		fmi_tran_security sec = { &kp, NULL };
		o.sec = &sec;
		o.max_frame = max_frame + FMI_WIRE_MAX_HEADER;
		rv = fmi_tran_listen_with(t, c, url, &o, err);
	}
	sodium_memzero(&kp, sizeof kp);
	return rv;
}

int
fmi_deploy_run_server(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d,
    fmi_fed_result *res, fm_error *err)
{
	char url[300];
	fmi_tran *t = NULL;
	fmi_tran_ctx *c = NULL;
	/* A host that missed three heartbeats gets no work. */
	double hb = (d->heartbeat_ms ? d->heartbeat_ms : 1000) / 1000.0;
	/* deploy.edges: the server's hosts are the edge aggregators */
	uint32_t nhosts = d->nedges ? d->nedges : d->nclients;
	char (*names)[FMI_NODE_NAME_MAX + 1] = d->nedges ? d->edge_names
	                                                : d->clients;
	size_t max_frame = cfg->arch.nparams * sizeof(float);
	fmi_server_hosts hosts = { NULL, nhosts, 1, d->join_timeout,
		3 * hb + 1, NULL, d->nedges > 0, d->edge_timeout };
	memset(res, 0, sizeof *res); /* empty, not garbage, if we fail early */
	int rv = fmi_fed_validate(cfg, err);
	if (rv == FM_OK && d->nedges > 0) {
		rv = fmi_deploy_check_edges(cfg, d, err);
		max_frame += fmi_edge_body_bound(FMI_MSG_EDGE_RESULT,
		    cfg->clients_per_round, 3 * FMI_MAX_EXTRA_METRICS);
	}
	if (rv == FM_OK) {
		rv = deploy_url(d, 1, url, sizeof url, err);
	}
	if (rv == FM_OK) {
		rv = fmi_tran_ctx_new(&c, NULL, err);
	}
	hosts.names = calloc(nhosts, sizeof *hosts.names);
	if (rv == FM_OK && hosts.names == NULL) {
		rv = fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; rv == FM_OK && i < nhosts; i++) {
		memcpy(hosts.names[i], names[i], FMI_PEER_MAX);
	}
	if (rv == FM_OK) {
		/* handover: a restarted client (or edge) takes its name back;
		 * with edges, only their keys are accepted */
		rv = fmi_deploy_listen_allow(c, d, d->server_name, url, names,
		    nhosts, max_frame, 1, &t, err);
	}
	if (rv == FM_OK) {
		fm_log(FM_LOG_INFO, "FM-DEPLOY", "server %s listening on %s for "
		    "%u %s%s", d->server_name, url, nhosts, d->nedges ?
		    "edge aggregators" : "client hosts",
		    d->keys[0] ? " (CURVE, listed keys only)" : "");
		fmi_blas_set_threads(1); /* same numerics as the simulation */
		rv = fmi_server_run(cfg, t, &hosts, res, err);
	}
	fmi_tran_close(t);
	fmi_tran_ctx_free(c);
	free(hosts.names);
	return rv;
}

int
fmi_deploy_dial(fmi_tran_ctx *c, const fmi_deploy_cfg *d, const char *self,
    const char *to, const char *url, int queue, fmi_tran **t, fm_error *err)
{
	char path[600], server_pub[FMI_Z85_KEY_LEN + 1];
	fmi_keypair kp;
	if (d->keys[0] == '\0') {
		return fmi_tran_dial_lossy(t, c, url, self, NULL, queue, err);
	}
	(void)key_path(path, sizeof path, d, self, "key");
	int rv = fmi_key_read_secret(path, &kp, err);
	if (rv == FM_OK) {
		(void)key_path(path, sizeof path, d, to, "pub");
		rv = fmi_key_read_public(path, server_pub, err);
	}
	if (rv == FM_OK) {
		fmi_tran_security sec = { &kp, server_pub };
		rv = fmi_tran_dial_lossy(t, c, url, self, &sec, queue, err);
	}
	sodium_memzero(&kp, sizeof kp);
	return rv;
}

/* deploy.client_state: FOLDER/NAME.state, the folder made if missing. */
static int
deploy_state_file(const fmi_deploy_cfg *d, const char *name, char *buf,
    size_t n, fm_error *err)
{
	if (d->client_state[0] == '\0') {
		return FM_OK;
	}
	if (snprintf(buf, n, "%s/%s.state", d->client_state, name) >= (int)n) {
		return fm_error_set(err, FM_EINVAL, "deploy.client_state: path "
		    "too long");
	}
	if (mkdir(d->client_state, 0700) != 0 && errno != EEXIST) {
		return fm_error_set(err, FM_EIO, "deploy.client_state: cannot "
		    "make folder %s: %s", d->client_state, strerror(errno));
	}
	return FM_OK;
}

int
fmi_deploy_run_client(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d,
    const char *name, fm_error *err)
{
	char url[300];
	fmi_tran *t = NULL;
	char state[1024];
	fmi_client_opts opts = { d->heartbeat_ms ? d->heartbeat_ms : 1000,
		d->idle_timeout > 0 ? d->idle_timeout : 600, NULL, NULL, name };
	fmi_tran_ctx *c = NULL;
	const char *to = d->server_name;
	int rv = deploy_state_file(d, name, state, sizeof state, err);
	opts.state_file = d->client_state[0] != '\0' ? state : NULL;
	/* deploy.edges: a client host dials its own edge */
	if (rv == FM_OK) {
		rv = d->nedges > 0 ?
		    fmi_deploy_parent_of(cfg, d, name, &to, url, sizeof url, err) :
		    deploy_url(d, 0, url, sizeof url, err);
	}
	if (rv == FM_OK) {
		rv = fmi_tran_ctx_new(&c, NULL, err);
	}
	if (rv == FM_OK) {
		rv = fmi_deploy_dial(c, d, name, to, url, 0, &t, err);
	}
	if (rv == FM_OK) {
		fm_log(FM_LOG_INFO, "FM-DEPLOY", "client host %s connecting to "
		    "%s", name, url);
		fmi_blas_set_threads(1);
		rv = fmi_client_host_run(cfg, t, name, &opts, err);
	}
	fmi_tran_close(t);
	fmi_tran_ctx_free(c);
	return rv;
}
