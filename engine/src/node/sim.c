/* SPDX-License-Identifier: MIT */
/* sim.c: one-process simulation: a server and worker threads over inproc://. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/node.h"
#include "node/store.h"

typedef struct sim_worker {
	pthread_t thread;
	const fmi_fed_cfg *cfg;
	fmi_store *store; /* the clients' plugin state, shared */
	fmi_tran_ctx *tc;
	char url[96];
	char name[FMI_PEER_MAX + 1];
	int started;
} sim_worker;

static void *
sim_worker_main(void *arg)
{
	sim_worker *w = arg;
	fmi_tran *t = NULL;
	fm_error e;
	int rv = fmi_tran_dial(&t, w->tc, w->url, w->name, &e);
	if (rv == FM_OK) {
		fmi_client_opts opts = { 0, 0, w->store, NULL, NULL };
		rv = fmi_client_host_run(w->cfg, t, w->name, &opts, &e);
	}
	if (rv != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-SIM", "worker %s: %s", w->name, e.msg);
	}
	fmi_tran_close(t);
	return NULL;
}

uint32_t
fmi_fed_levels(const fmi_fed_cfg *c)
{
	return c->hier.levels > 0 ? c->hier.levels : 1;
}

uint32_t
fmi_fed_fanout(const fmi_fed_cfg *c, uint32_t l)
{
	return c->hier.levels > 0 ? c->hier.level[l].fanout
	                          : c->part->nclients;
}

const fmi_component *
fmi_fed_level_agg(const fmi_fed_cfg *c, uint32_t l, const fm_value **params)
{
	if (c->hier.levels > 0 && c->hier.level[l].aggregator != NULL) {
		*params = c->hier.level[l].agg_params;
		return c->hier.level[l].aggregator;
	}
	*params = c->agg_params;
	return c->aggregator;
}

/* Fan-outs, periods and aggregators of a hierarchical tree. */
static int
validate_levels(const fmi_fed_cfg *c, fm_error *err)
{
	const fmi_hier_cfg *h = &c->hier;
	uint64_t clients = 1;
	for (uint32_t l = 0; l < h->levels; l++) {
		const fmi_hier_level *v = &h->level[l];
		if (v->fanout < 1) {
			return fm_error_set(err, FM_EINVAL, "topology.fanouts[%u] "
			    "must be at least 1", l + 1);
		}
		clients = FMI_MIN(clients * v->fanout, (uint64_t)UINT32_MAX + 1);
		if (v->every < 1) {
			return fm_error_set(err, FM_EINVAL, "topology.every[%u] "
			    "must be at least 1", l + 1);
		}
		if (l + 1 == h->levels && v->every != 1) {
			return fm_error_set(err, FM_EINVAL, "topology.every[%u] "
			    "must be 1: the edge aggregators aggregate their "
			    "clients every round", l + 1);
		}
		if (v->aggregator != NULL &&
		    v->aggregator->kind != FM_KIND_AGGREGATOR) {
			return fm_error_set(err, FM_EINVAL, "topology.aggregators"
			    "[%u]: '%s' is not an aggregator", l + 1,
			    v->aggregator->desc->name);
		}
	}
	if (clients != c->part->nclients) {
		return fm_error_set(err, FM_EINVAL, "topology.fanouts: the "
		    "fan-outs multiply to %llu clients, but the partition has "
		    "%u (one client per part)", (unsigned long long)clients,
		    c->part->nclients);
	}
	return FM_OK;
}

/* A hierarchical tree: its levels. */
static int
validate_hier(const fmi_fed_cfg *c, fm_error *err)
{
	if (c->hier.levels == 0) {
		return FM_OK;
	}
	if (c->hier.levels > FMI_HIER_MAX_LEVELS) {
		return fm_error_set(err, FM_EINVAL, "topology.fanouts: %u levels;"
		    " a hierarchy has 1 to %d", c->hier.levels,
		    FMI_HIER_MAX_LEVELS);
	}
	return validate_levels(c, err);
}

int
fmi_fed_validate(const fmi_fed_cfg *c, fm_error *err)
{
	if ((c->train == NULL && !c->site_data) || c->part == NULL ||
	    c->aggregator == NULL) {
		return fm_error_set(err, FM_EINVAL, "a federation needs train "
		    "data, a partition and an aggregator");
	}
	/* a site deployment's server has no train data: its test set, if
	 * any, says what the model must fit */
	const fmi_dataset *fit = c->train != NULL ? c->train : c->test;
	if (c->arch.nparams == 0 ||
	    (fit != NULL && c->arch.widths[0] != fit->dim)) {
		return fm_error_set(err, FM_EINVAL, "model input size %u does "
		    "not match the data's %zu features", c->arch.widths[0],
		    fit != NULL ? fit->dim : 0);
	}
	if (fit != NULL && c->arch.widths[c->arch.nlayers] < fit->nclasses) {
		return fm_error_set(err, FM_EINVAL, "model has %u outputs but "
		    "the data has %u classes", c->arch.widths[c->arch.nlayers],
		    fit->nclasses);
	}
	if (c->client_test != NULL && (c->client_test_part == NULL ||
	    c->client_test_part->nclients != c->part->nclients ||
	    c->client_test->dim != c->arch.widths[0])) {
		return fm_error_set(err, FM_EINVAL, "client_test: held-out data "
		    "for every client, with the model's %u features",
		    c->arch.widths[0]);
	}
	if (!(c->client_eval_fraction >= 0 && c->client_eval_fraction <= 1)) {
		return fm_error_set(err, FM_EINVAL, "client_eval_fraction must "
		    "be in [0, 1]");
	}
	if (c->clients_per_round < 1 ||
	    c->clients_per_round > c->part->nclients) {
		return fm_error_set(err, FM_EINVAL, "clients_per_round must be "
		    "1..%u (the number of clients), not %u", c->part->nclients,
		    c->clients_per_round);
	}
	if (c->rounds < 1 || c->local.epochs < 1 || c->local.batch < 1) {
		return fm_error_set(err, FM_EINVAL, "rounds, epochs and batch "
		    "must be at least 1");
	}
	if (c->min_updates > c->clients_per_round) {
		return fm_error_set(err, FM_EINVAL, "min_updates (%u) exceeds "
		    "clients_per_round (%u)", c->min_updates,
		    c->clients_per_round);
	}
	int rv = fmi_fed_validate_rounds(c, err);
	return rv == FM_OK ? validate_hier(c, err) : rv;
}

static uint32_t
sim_nworkers(const fmi_fed_cfg *cfg)
{
	uint32_t n = cfg->workers ? cfg->workers : (uint32_t)fmi_ncores();
	return FMI_MAX(1, FMI_MIN(n, cfg->clients_per_round));
}

static int
sim_start(sim_worker *ws, uint32_t n, fm_error *err)
{
	for (uint32_t i = 0; i < n; i++) {
		if (pthread_create(&ws[i].thread, NULL, sim_worker_main,
		        &ws[i]) != 0) {
			return fm_error_set(err, FM_ENOMEM, "cannot start "
			    "worker thread %u", i);
		}
		ws[i].started = 1;
	}
	return FM_OK;
}

static int
sim_run(const fmi_fed_cfg *cfg, fmi_tran_ctx *tc, sim_worker *ws, uint32_t n,
    fmi_fed_result *res, fm_error *err)
{
	static atomic_uint sim_counter;
	char url[96];
	fmi_tran *srv = NULL;
	fmi_server_hosts hosts = { NULL, n, 0, 0, 0, NULL, 0, 0 };
	fmi_store *store = NULL; /* any worker may train any client */

	snprintf(url, sizeof url, "inproc://fedmesh-sim-%u",
	    atomic_fetch_add(&sim_counter, 1));
	hosts.names = calloc(n, sizeof *hosts.names);
	int rv = hosts.names && fmi_store_new(&store) == FM_OK
	             ? fmi_tran_listen(&srv, tc, url, err)
	             : fm_error_set(err, FM_ENOMEM, "out of memory");
	hosts.store = store; /* saved in the server's checkpoints */
	for (uint32_t i = 0; i < n && rv == FM_OK; i++) {
		ws[i].cfg = cfg;
		ws[i].store = store;
		ws[i].tc = tc;
		snprintf(ws[i].url, sizeof ws[i].url, "%s", url);
		snprintf(ws[i].name, sizeof ws[i].name, "worker-%u", i);
		memcpy(hosts.names[i], ws[i].name, sizeof ws[i].name);
	}
	if (rv == FM_OK) {
		rv = sim_start(ws, n, err);
	}
	if (rv == FM_OK) {
		rv = fmi_server_run(cfg, srv, &hosts, res, err);
	}
	for (uint32_t i = 0; i < n; i++) {
		if (ws[i].started) {
			pthread_join(ws[i].thread, NULL);
		}
	}
	fmi_tran_close(srv);
	fmi_store_free(store);
	free(hosts.names);
	return rv;
}

int
fmi_fed_simulate(const fmi_fed_cfg *cfg, fmi_fed_result *res, fm_error *err)
{
	memset(res, 0, sizeof *res); /* empty, not garbage, if we fail early */
	int rv = fmi_fed_validate(cfg, err);
	if (rv != FM_OK) {
		return rv;
	}
	uint32_t n = sim_nworkers(cfg);
	/* Workers, not BLAS threads, use the cores: one BLAS thread each
	 * keeps results independent of the worker count. */
	int blas = fmi_blas_get_threads();
	fmi_blas_set_threads(1);
	fmi_tran_ctx *tc = NULL;
	sim_worker *ws = calloc(n, sizeof *ws);
	rv = fmi_tran_ctx_new(&tc, NULL, err);
	if (rv == FM_OK && ws == NULL) {
		rv = fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	if (rv == FM_OK) {
		rv = sim_run(cfg, tc, ws, n, res, err);
	}
	free(ws);
	fmi_tran_ctx_free(tc);
	fmi_blas_set_threads(blas);
	return rv;
}

void
fmi_fed_result_free(fmi_fed_result *res)
{
	if (res != NULL) {
		for (uint32_t i = 0; res->rounds != NULL && i < res->nrounds; i++) {
			free(res->rounds[i].clients);
		}
		free(res->rounds);
		free(res->params);
		memset(res, 0, sizeof *res);
	}
}
