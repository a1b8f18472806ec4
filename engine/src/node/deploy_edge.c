/* SPDX-License-Identifier: MIT */
/*
 * deploy_edge.c: deploy.edges, a hierarchy deployed as a tree of
 * processes: which client hosts belong to which edge aggregator, who
 * dials whom, and whose keys each listener accepts (the server only its
 * edges', an edge only its own client hosts').
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/node.h"

int
fmi_deploy_edge_index(const fmi_deploy_cfg *d, const char *name)
{
	for (uint32_t i = 0; i < d->nedges; i++) {
		if (strcmp(name, d->edge_names[i]) == 0) {
			return (int)i;
		}
	}
	return -1;
}

static uint64_t
tree_edges(const fmi_fed_cfg *cfg)
{
	uint64_t n = 1;
	for (uint32_t l = 0; l + 1 < cfg->hier.levels; l++) {
		n *= cfg->hier.level[l].fanout;
	}
	return n;
}

static uint32_t
edge_fanout(const fmi_fed_cfg *cfg)
{
	return cfg->hier.level[cfg->hier.levels - 1].fanout;
}

uint32_t
fmi_deploy_host_edge(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d,
    uint32_t h)
{
	(void)d; /* host h's first client is client h (0-based) */
	return h / edge_fanout(cfg);
}

int
fmi_deploy_check_edges(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d,
    fm_error *err)
{
	if (cfg->hier.levels < 2) {
		return fm_error_set(err, FM_EINVAL, "deploy.edges places the "
		    "edge aggregators of a hierarchical topology, but this "
		    "experiment is %s; remove deploy.edges", cfg->hier.levels ?
		    "a one-level hierarchy (its root aggregates the clients "
		    "itself)" : "a star");
	}
	uint64_t n = tree_edges(cfg);
	if (d->nedges != n) {
		return fm_error_set(err, FM_EINVAL, "deploy.edges lists %u edge "
		    "aggregators, but the topology has %llu: give one entry per "
		    "edge, in the hierarchy's edge order", d->nedges,
		    (unsigned long long)n);
	}
	if (cfg->checkpoint != NULL) {
		return fm_error_set(err, FM_ENOTSUP, "deploy.edges: a tree of "
		    "processes cannot be checkpointed (the edges' models and "
		    "plugin states live in the edge processes); remove the "
		    "checkpoint");
	}
	uint32_t fan = edge_fanout(cfg), nc = cfg->part->nclients;
	uint32_t nh = d->nclients;
	for (uint32_t h = 0; h < nh; h++) {
		if (h >= nc) {
			return fm_error_set(err, FM_EINVAL, "deploy.edges: client "
			    "host '%s' holds no client (client k lives on host "
			    "clients[(k - 1) %% #clients + 1], and there are %u "
			    "clients); list at most %u client hosts",
			    d->clients[h], nc, nc);
		}
		for (uint32_t k = h + nh; k < nc; k += nh) {
			if (k / fan == h / fan) {
				continue;
			}
			return fm_error_set(err, FM_EINVAL, "deploy.edges: client "
			    "host '%s' holds client %u (edge %s) and client %u "
			    "(edge %s), but a client host must belong to one edge "
			    "only. Client k lives on host clients[(k - 1) %% "
			    "#clients + 1], so list one client host per client "
			    "(%u names in deploy.clients)", d->clients[h], h + 1,
			    d->edge_names[h / fan], k + 1, d->edge_names[k / fan],
			    nc);
		}
	}
	return FM_OK;
}

static int
edge_url(const fmi_deploy_cfg *d, const char *addr, char *url, size_t n,
    fm_error *err)
{
	int len;
	if (strcmp(d->transport, "tcp") == 0) {
		len = snprintf(url, n, "tcp://%s", addr);
	} else if (strcmp(d->transport, "ipc") == 0) {
		len = snprintf(url, n, "ipc://%s", addr);
	} else {
		return fm_error_set(err, FM_EINVAL, "deploy.transport must be "
		    "\"tcp\" or \"ipc\", not \"%s\"", d->transport);
	}
	if (len < 0 || (size_t)len >= n || addr[0] == '\0') {
		return fm_error_set(err, FM_EINVAL, "deploy: address '%s' must "
		    "be host:port (tcp) or a socket path (ipc)", addr);
	}
	return FM_OK;
}

int
fmi_deploy_parent_of(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d,
    const char *host, const char **to, char *url, size_t n, fm_error *err)
{
	for (uint32_t h = 0; h < d->nclients; h++) {
		if (strcmp(host, d->clients[h]) != 0) {
			continue;
		}
		int rv = fmi_deploy_check_edges(cfg, d, err);
		if (rv != FM_OK) {
			return rv;
		}
		uint32_t e = fmi_deploy_host_edge(cfg, d, h);
		*to = d->edge_names[e];
		return edge_url(d, d->edge_addrs[e], url, n, err);
	}
	return fm_error_set(err, FM_EINVAL, "'%s' is not a client host of "
	    "this deployment", host);
}

/* The client hosts of edge j: their names and deployment indices. */
static uint32_t
edge_hosts(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d, uint32_t j,
    char (*names)[FMI_PEER_MAX + 1], uint32_t *ids)
{
	uint32_t n = 0;
	for (uint32_t h = 0; h < d->nclients; h++) {
		if (fmi_deploy_host_edge(cfg, d, h) == j) {
			memcpy(names[n], d->clients[h], FMI_PEER_MAX);
			names[n][FMI_PEER_MAX] = '\0';
			ids[n++] = h;
		}
	}
	return n;
}

int
fmi_deploy_run_edge(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d,
    const char *name, fm_error *err)
{
	char url[300], up_url[300];
	int j = fmi_deploy_edge_index(d, name);
	fmi_tran_ctx *c = NULL;
	fmi_tran *t = NULL, *up = NULL;
	char (*names)[FMI_PEER_MAX + 1] = calloc(FMI_MAX(d->nclients, 1),
	    sizeof *names);
	uint32_t *ids = calloc(FMI_MAX(d->nclients, 1), sizeof *ids);
	int rv = names && ids ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of "
	    "memory");
	if (rv == FM_OK && j < 0) {
		rv = fm_error_set(err, FM_EINVAL, "'%s' is not an edge of this "
		    "deployment", name);
	}
	if (rv == FM_OK) {
		rv = fmi_fed_validate(cfg, err);
	}
	if (rv == FM_OK) {
		rv = fmi_deploy_check_edges(cfg, d, err);
	}
	uint32_t nh = rv == FM_OK ? edge_hosts(cfg, d, (uint32_t)j, names, ids)
	                          : 0;
	if (rv == FM_OK) {
		const char *bind = d->edge_binds != NULL &&
		    d->edge_binds[j][0] != '\0' ? d->edge_binds[j]
		                                : d->edge_addrs[j];
		rv = edge_url(d, bind, url, sizeof url, err);
	}
	if (rv == FM_OK) {
		rv = edge_url(d, d->server, up_url, sizeof up_url, err);
	}
	if (rv == FM_OK) {
		rv = fmi_tran_ctx_new(&c, NULL, err);
	}
	if (rv == FM_OK) {
		/* only its own client hosts' keys; a restarted host takes its
		 * name back */
		rv = fmi_deploy_listen_allow(c, d, name, url, names, nh,
		    cfg->arch.nparams * sizeof(float), 1, &t, err);
	}
	if (rv == FM_OK) {
		rv = fmi_deploy_dial(c, d, name, d->server_name, up_url, 0, &up,
		    err);
	}
	if (rv == FM_OK) {
		double hb = (d->heartbeat_ms ? d->heartbeat_ms : 1000) / 1000.0;
		fmi_server_hosts hosts = { names, nh, 1, d->join_timeout,
			3 * hb + 1, NULL, 0, 0 };
		fmi_edge_opts o = { d->heartbeat_ms ? d->heartbeat_ms : 1000,
			d->idle_timeout > 0 ? d->idle_timeout : 600,
			d->edge_timeout, d->nclients, ids };
		fm_log(FM_LOG_INFO, "FM-DEPLOY", "edge %s listening on %s for %u "
		    "client hosts%s, parent %s at %s", name, url, nh,
		    d->keys[0] ? " (CURVE, their keys only)" : "",
		    d->server_name, up_url);
		fmi_blas_set_threads(1); /* same numerics as the simulation */
		rv = fmi_edge_run(cfg, t, &hosts, up, name, (uint32_t)j, &o, err);
	}
	fmi_tran_close(up);
	fmi_tran_close(t);
	fmi_tran_ctx_free(c);
	free(names);
	free(ids);
	return rv;
}
