/* SPDX-License-Identifier: MIT */
/*
 * server.c: the server: opens the tree of aggregators and runs the rounds
 * (sample, broadcast, collect, aggregate, evaluate), each step in its own
 * file:
 *   server_links.c      plugin messages and timers, messages held for a
 *                       client until its training task goes out
 *   server_hosts.c      the client hosts: waiting for them, placing
 *                       clients on them, broadcasting the round
 *   server_sampling.c   which clients a round samples
 *   server_collect.c    collecting updates until quorum or deadline
 *   server_aggregate.c  the edges' aggregation pipelines (pipeline.h)
 *   server_hierarchy.c  the levels above the edges (HierFAVG)
 *   server_metrics.c    seeds, per-round metrics, evaluation
 *
 * The server holds a tree of aggregators (see fed.h): a star is the tree
 * of one level, whose root aggregates every client; a hierarchy adds
 * edges (their children are clients) and intermediate levels, all living
 * logically in this process, each with its own model and aggregation
 * pipeline. Aggregators are numbered level by level from the root (0).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"

/* The tree's shape: levels, fan-outs, first node of each level, and the
 * period (in rounds) of each level's aggregations. */
static void
srv_shape(fmi_server *s)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint64_t width = 1;
	s->levels = fmi_fed_levels(cfg);
	s->first[0] = 0;
	for (uint32_t l = 0; l < s->levels; l++) {
		s->fan[l] = fmi_fed_fanout(cfg, l);
		s->first[l + 1] = s->first[l] + (uint32_t)width;
		width *= s->fan[l];
	}
	s->nnodes = s->first[s->levels];
	s->period[s->levels - 1] = 1;
	for (uint32_t l = s->levels - 1; l-- > 0;) {
		uint64_t k = cfg->hier.level[l].every;
		s->period[l] = FMI_MIN(k * s->period[l + 1], (uint64_t)1 << 40);
	}
}

/* The edge aggregator of client c. */
uint32_t
srv_edge_of(const fmi_server *s, uint32_t c)
{
	return s->first[s->levels - 1] + c / s->fan[s->levels - 1];
}

/* Aggregator i's parent (i > 0). */
uint32_t
srv_parent(const fmi_server *s, uint32_t i)
{
	uint32_t l = s->nodes[i].level;
	return s->first[l - 1] + (i - s->first[l]) / s->fan[l - 1];
}

/* What an aggregator is called in logs. */
const char *
srv_node_name(const fmi_server *s, uint32_t i, char *buf, size_t n)
{
	uint32_t l = s->nodes[i].level;
	if (i == 0) {
		snprintf(buf, n, s->levels == 1 ? "global" : "root");
	} else if (l + 1 == s->levels) {
		snprintf(buf, n, "edge %u", i - s->first[l] + 1);
	} else {
		snprintf(buf, n, "level-%u aggregator %u", l + 1,
		    i - s->first[l] + 1);
	}
	return buf;
}

/* Opens aggregator i's instance: edges may talk to their clients. */
static int
srv_open_node(fmi_server *s, uint32_t i, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	srv_agg *n = &s->nodes[i];
	const fm_value *params;
	const fmi_component *c = fmi_fed_level_agg(cfg, n->level, &params);
	int edge = n->level + 1 == s->levels;
	uint32_t threads = cfg->workers ? cfg->workers : (uint32_t)fmi_ncores();
	fmi_node_link link = { n, edge ? srv_plugin_send : NULL,
		srv_plugin_timer, srv_plugin_metric, NULL, threads, 0,
		cfg->secure_noise };
	uint64_t seed = fmi_hash64(cfg->seed + 1);
	uint32_t role = i == 0 ? FM_ROLE_SERVER : FM_ROLE_EDGE;
	/* what an edge can see: its sampled children, at most */
	uint32_t most = edge ? FMI_MIN(fmi_fed_cap(cfg),
	    fmi_fed_fanout(cfg, n->level)) : fmi_fed_fanout(cfg, n->level);
	n->s = s;
	n->id = i == 0 ? FM_NODE_SERVER
	               : (int32_t)(cfg->part->nclients + i);
	n->model = malloc(s->dim * sizeof(float));
	if (n->model == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for the "
		    "model of aggregator %u", i);
	}
	if (edge && s->tree != NULL) {
		return FM_OK; /* a remote edge: the root's copy of its model */
	}
	fmi_open_args a = { params, s->dim, role, n->id,
		i == 0 ? seed : fmi_hash64(seed ^ i), most, 0, &link };
	int rv = fmi_agg_open(&n->agg, c, &a, err);
	if (rv == FM_OK && edge && cfg->defence != NULL) {
		fmi_open_args d = { cfg->def_params, s->dim, role, n->id,
			fmi_hash64(seed ^ 0x646566ULL ^ i), most,
			cfg->root_data != NULL ? FM_INST_ROOT_DATA : 0, &link };
		rv = fmi_def_open(&n->def, cfg->defence, &d, err);
	}
	if (rv == FM_OK && edge && cfg->rule != NULL) {
		fmi_open_args l = { cfg->rule_params, s->dim, role, n->id,
			fmi_hash64(seed ^ 0x6c6f63ULL ^ i), most, 0, &link };
		rv = fmi_loc_open(&n->loc, cfg->rule, &l, err);
	}
	if (rv == FM_OK && edge && cfg->privacy != NULL &&
	    fmi_component_privacy_runs(cfg->privacy, FM_PRIVACY_SERVER)) {
		fmi_open_args pa = { cfg->priv_params, s->dim, role, n->id,
			fmi_hash64(seed ^ 0x70726976ULL ^ i), most, 0, &link };
		rv = fmi_priv_open(&n->priv, cfg->privacy, &pa, err);
	}
	n->pipe.agg = n->agg;
	n->pipe.def = n->def;
	n->pipe.priv = n->priv;
	n->pipe.loc = n->loc;
	n->pipe.atk = edge ? s->atk : NULL;
	return rv == FM_OK ? fmi_pipe_init(&n->pipe, s->dim, most, edge, err)
	                   : rv;
}

/* The attack's success-rate set: a poisoned copy of the test set. */
static int
srv_open_asr(fmi_server *s, fm_error *err)
{
	const fmi_dataset *t = s->cfg->test;
	if (!fmi_atk_poisons_data(s->atk) || t == NULL || s->own != 0) {
		return FM_OK;
	}
	if (fmi_dataset_new(&s->asr, t->n, t->dim, t->nclasses) != FM_OK) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	int rv = fmi_dataset_rows(t, NULL, t->n, s->asr->x, err);
	if (rv != FM_OK) {
		fmi_dataset_unref(s->asr);
		s->asr = NULL;
		return rv;
	}
	memcpy(s->asr->y, t->y, t->n * sizeof(int32_t));
	fm_attack_data a = { sizeof a, FM_ATTACK_EVAL, s->asr->x, s->asr->y,
		t->n, t->dim, t->nclasses, 0, 0, 0, 0,
		fmi_hash64(s->cfg->seed ^ 0x617372), t->n, 0, 0 };
	fmi_image_shape(t->dim, &a.width, &a.height);
	rv = fmi_atk_poison_data(s->atk, &a);
	if (rv != FM_OK || !a.defined || a.nkeep == 0 || a.nkeep > t->n) {
		fmi_dataset_unref(s->asr);
		s->asr = NULL;
		return rv == FM_OK ? FM_OK : fm_error_set(err, rv, "attack "
		    "'%s' could not build its target set: %s",
		    s->cfg->attack->desc->name, fm_strerror(rv));
	}
	s->asr->n = a.nkeep;
	return FM_OK;
}

/* An attack's instance on the aggregating node. */
static int
srv_open_attack(fmi_server *s, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	if (cfg->attack == NULL || cfg->adversarial == NULL) {
		return FM_OK;
	}
	fmi_open_args a = { cfg->atk_params, s->dim, FM_ROLE_SERVER,
		FM_NODE_SERVER, fmi_hash64(cfg->seed ^ 0x61746b),
		fmi_fed_cap(cfg), 0, NULL };
	int rv = fmi_atk_open(&s->atk, cfg->attack, &a, err);
	return rv == FM_OK ? srv_open_asr(s, err) : rv;
}

/* Buffers the edges' pipelines share when they hold the round's updates
 * (a defence or a model-poisoning attack): the rows, and FLTrust's. */
static int
srv_open_rows(fmi_server *s, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	size_t n = fmi_fed_cap(cfg);
	const fmi_pipe *p = &s->nodes[s->own ? s->own
	                                     : s->first[s->levels - 1]].pipe;
	if (!fmi_pipe_holds(p)) {
		return FM_OK;
	}
	s->rows = aligned_alloc(64, n * p->stride * sizeof(float));
	s->adv_norms = calloc(n, sizeof *s->adv_norms);
	if (s->rows == NULL || s->adv_norms == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for %zu "
		    "updates of %zu parameters (defence or attack)", n, s->dim);
	}
	if (cfg->root_data == NULL) {
		return FM_OK;
	}
	s->sdelta = malloc(s->dim * sizeof(float));
	s->root_idx = malloc(cfg->root_data->n * sizeof *s->root_idx);
	if (s->sdelta == NULL || s->root_idx == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < cfg->root_data->n; i++) {
		s->root_idx[i] = (uint32_t)i;
	}
	return FM_OK;
}

/* Builds the tree: every aggregator starts from the global model. */
static int
srv_open_tree(fmi_server *s, fm_error *err)
{
	const fmi_partition *p = s->cfg->part;
	s->nodes = calloc(s->nnodes, sizeof *s->nodes);
	if (s->nodes == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for %u "
		    "aggregators", s->nnodes);
	}
	for (uint32_t l = 0; l < s->levels; l++) {
		for (uint32_t i = s->first[l]; i < s->first[l + 1]; i++) {
			s->nodes[i].level = l;
		}
	}
	for (uint32_t i = 0; i < s->nnodes; i++) {
		if (s->own != 0 && i != s->own) {
			continue; /* an edge's process: its own aggregator only */
		}
		int rv = srv_open_node(s, i, err);
		if (rv != FM_OK) {
			return rv;
		}
	}
	for (uint32_t c = 0; c < p->nclients; c++) {
		s->nodes[srv_edge_of(s, c)].data += fmi_partition_size(p, c);
	}
	for (uint32_t i = s->nnodes; i-- > 1;) {
		s->nodes[srv_parent(s, i)].data += s->nodes[i].data;
	}
	s->global = s->nodes[s->own].model;
	s->view = s->global;
	return FM_OK;
}

/* Buffers only a hierarchy needs. */
static int
srv_open_hier(fmi_server *s, fm_error *err)
{
	uint32_t maxfan = 1;
	if (s->levels == 1 || s->own != 0) { /* an edge's process: no log */
		return FM_OK;
	}
	for (uint32_t l = 0; l + 1 < s->levels; l++) {
		maxfan = FMI_MAX(maxfan, s->fan[l]);
	}
	s->delta = malloc(s->dim * sizeof(float));
	s->avg = malloc(s->dim * sizeof(float));
	s->avgd = malloc(s->dim * sizeof(double));
	s->cids = malloc(maxfan * sizeof *s->cids);
	if (!s->delta || !s->avg || !s->avgd || !s->cids) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	fm_log(FM_LOG_INFO, "FM-HIER", "hierarchical federation: %u levels, "
	    "%u aggregators, the root aggregates every %llu rounds",
	    s->levels, s->nnodes, (unsigned long long)s->period[0]);
	if (s->period[0] > s->cfg->rounds) {
		fm_log(FM_LOG_WARN, "FM-HIER", "the root aggregates every %llu "
		    "rounds: never within the %u rounds of this run",
		    (unsigned long long)s->period[0], s->cfg->rounds);
	}
	return FM_OK;
}

int
srv_open(fmi_server *s, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	s->dim = cfg->arch.nparams;
	srv_shape(s);
	s->scratch = malloc(s->dim * sizeof(float));
	s->slots = calloc(fmi_fed_cap(cfg), sizeof *s->slots);
	s->order = calloc(cfg->part->nclients, sizeof *s->order);
	s->ids = calloc(fmi_fed_cap(cfg), sizeof *s->ids);
	s->load = calloc(s->hosts->n, sizeof *s->load);
	s->jobs = calloc(fmi_fed_cap(cfg), sizeof *s->jobs);
	s->heard = calloc(s->hosts->n, sizeof *s->heard);
	if (fmi_faults_on(cfg)) {
		s->plan = malloc(cfg->clients_per_round);
	}
	if (!s->scratch || !s->slots || !s->order || !s->ids ||
	    !s->load || !s->jobs || !s->heard ||
	    (fmi_faults_on(cfg) && s->plan == NULL) ||
	    fmi_trainer_new(&s->eval, &cfg->arch, 1024) != FM_OK) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for a model "
		    "of %zu parameters", s->dim);
	}
	int rv = srv_open_attack(s, err); /* the edges' pipelines use it */
	if (rv == FM_OK && s->hosts->edges) {
		rv = srv_tree_open(s, err); /* before the tree: edges remote */
	}
	if (rv == FM_OK) {
		rv = srv_open_tree(s, err);
	}
	if (rv == FM_OK) {
		rv = srv_open_hier(s, err);
	}
	if (rv == FM_OK) {
		rv = srv_open_rows(s, err);
	}
	if (rv == FM_OK) {
		rv = srv_fedeval_open(s, err);
	}
	if (rv == FM_OK) {
		rv = srv_check_sampling(cfg, err);
	}
	if (rv != FM_OK) {
		return rv;
	}
	fm_rng r;
	fmi_rng_seed(&r, cfg->seed, 0x696e6974); /* "init" */
	fmi_arch_init_params(&cfg->arch, s->global, &r);
	if (cfg->init_params != NULL) { /* warm start */
		memcpy(s->global, cfg->init_params, s->dim * sizeof(float));
	}
	for (uint32_t i = 1; i < s->nnodes; i++) {
		if (s->nodes[i].model != NULL && s->nodes[i].model != s->global) {
			memcpy(s->nodes[i].model, s->global,
			    s->dim * sizeof(float));
		}
	}
	return FM_OK;
}

void
srv_close(fmi_server *s)
{
	fmi_dp_budget_close(&s->dp);
	srv_tree_close(s);
	for (uint32_t i = 0; s->nodes != NULL && i < s->nnodes; i++) {
		fmi_pipe_fini(&s->nodes[i].pipe);
		fmi_agg_close(s->nodes[i].agg);
		fmi_def_close(s->nodes[i].def);
		fmi_loc_close(s->nodes[i].loc);
		fmi_priv_close(s->nodes[i].priv);
		free(s->nodes[i].model);
	}
	free(s->nodes);
	fmi_trainer_free(s->eval);
	free(s->scratch);
	free(s->delta);
	free(s->avg);
	free(s->avgd);
	free(s->cids);
	free(s->slots);
	srv_drop_held(s);
	free(s->held);
	free(s->order);
	free(s->ids);
	free(s->load);
	free(s->jobs);
	free(s->heard);
	free(s->rows);
	free(s->adv_norms);
	free(s->sdelta);
	free(s->root_idx);
	fmi_atk_close(s->atk);
	fmi_dataset_unref(s->asr);
	free(s->plan);
	srv_fedeval_close(s);
}

/* Starts the round at every edge with a sampled client. */
int
srv_begin_edges(fmi_server *s)
{
	int rv = FM_OK;
	for (uint32_t i = s->first[s->levels - 1]; i < s->nnodes &&
	    rv == FM_OK; i++) {
		srv_agg *n = &s->nodes[i];
		if (n->nsampled > 0) {
			n->r = (fm_round) { sizeof n->r, s->round, n->nsampled,
				s->fan[s->levels - 1], s->ids + n->slot0,
				n->model, s->dim, s->lr_scale,
				s->cfg->poisson_sampling ?
				(double)s->cfg->clients_per_round :
				(double)n->nsampled };
			if (s->rows != NULL) { /* its slots' rows */
				fmi_pipe_set_rows(&n->pipe, s->rows +
				    (size_t)n->slot0 * n->pipe.stride,
				    n->nsampled);
			}
			rv = fmi_pipe_begin(&n->pipe, &n->r);
			if (rv != FM_OK) {
				srv_why(s, "%s", n->pipe.why);
			}
		}
	}
	return rv;
}

/* A new round's slots, edge counters and simulated faults (a star's
 * round and a tree of processes' alike). */
int
srv_round_counters(fmi_server *s)
{
	s->nslots = s->nround;
	s->ne_sum = 0;
	s->loss_sum = 0;
	for (uint32_t i = s->first[s->levels - 1]; i < s->nnodes; i++) {
		s->nodes[i].nsampled = 0;
		s->nodes[i].rne = 0;
		s->nodes[i].rloss = 0;
	}
	if (s->plan != NULL &&
	    fmi_fault_plan(s->cfg, s->round, s->nslots, s->plan) != FM_OK) {
		return FM_ENOMEM;
	}
	return FM_OK;
}

static int
srv_begin_round(fmi_server *s, uint32_t *picked)
{
	int rv = srv_sample(s, picked);
	if (rv != FM_OK) {
		return rv;
	}
	s->next = 0;
	if (srv_round_counters(s) != FM_OK) {
		return FM_ENOMEM;
	}
	s->waiting = s->nslots;
	for (uint32_t i = 0; i < s->nslots; i++) {
		memset(&s->slots[i], 0, sizeof s->slots[i]);
		s->slots[i].loss = s->slots[i].norm = NAN;
		s->slots[i].awaited = 1;
		if (s->plan != NULL && s->plan[i] != FMI_FAULT_NONE) {
			/* Simulated faults: the deadline comes as soon as the
			 * other clients answered (no clock time is spent
			 * waiting), the client hosts play the faults. */
			s->slots[i].fault = s->plan[i];
			s->slots[i].awaited = 0;
			s->waiting--;
		}
		s->slots[i].client = picked[i];
		s->slots[i].edge = srv_edge_of(s, picked[i]);
		s->order[picked[i]] = i + 1;
		srv_agg *n = &s->nodes[s->slots[i].edge];
		if (n->nsampled++ == 0) { /* picked is ascending: an edge's */
			n->slot0 = i;     /* clients are contiguous */
		}
	}
	srv_assign_hosts(s);
	for (uint32_t i = 0; i < s->nslots; i++) {
		s->ids[i] = (int32_t)picked[i] + 1;
	}
	/* The aggregators begin before the models go out: what a plugin
	 * sends a client from a_begin is held and goes out right before
	 * that client's training task, on the same ordered connection. */
	s->holding = 1;
	rv = srv_begin_edges(s);
	s->holding = 0;
	if (rv != FM_OK) {
		srv_drop_held(s);
		return rv;
	}
	return srv_broadcast(s);
}

static int
srv_round(fmi_server *s, uint32_t *picked, fmi_round_metrics *m)
{
	fmi_tran_stats before, after;
	double t0 = fmi_now();

	fmi_tran_get_stats(s->t, &before);
	memset(m, 0, sizeof *m);
	m->round = s->round;
	m->sampled = s->cfg->clients_per_round;
	s->lr = fmi_round_lr(s->cfg, s->round);
	s->lr_scale = fmi_lr_factor(&s->cfg->server_lr_sched, s->round);
	m->lr = s->lr;
	s->def_ran = s->def_combined = 0;
	s->def_rej = s->def_rej_adv = 0;
	s->deadline = fmi_now();
	s->m = m;
	/* a tree of processes: the edges collect and aggregate remotely */
	int rv = s->tree != NULL ? srv_tree_round(s, picked)
	                         : srv_begin_round(s, picked);
	if (rv == FM_OK) {
		if (s->tree == NULL) {
			srv_collect(s);
			srv_aggregate(s);
		}
		srv_hier_round(s);
	}
	if (s->tree != NULL) {
		srv_tree_end_round(s);
	} else {
		srv_end_round(s); /* and the stragglers */
	}
	if (rv == FM_OK && s->cfg->client_detail) {
		rv = srv_detail(s, m);
	}
	if (rv != FM_OK) {
		return rv;
	}
	m->train_loss = s->ne_sum ? s->loss_sum / (double)s->ne_sum : NAN;
	srv_evaluate(s, m);
	srv_fedeval(s);
	fmi_tran_get_stats(s->t, &after);
	m->bytes_sent = after.bytes_sent - before.bytes_sent;
	m->bytes_received = after.bytes_received - before.bytes_received;
	m->seconds = fmi_now() - t0;
	return FM_OK;
}

/* With cfg->resume, loads the checkpoint and replays its rounds to the
 * callback (so metrics files stay complete). Returns the next round. */
static int
srv_resume(fmi_server *s, fmi_fed_result *res, uint32_t *start, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t n = 0;
	*start = 1;
	if (cfg->checkpoint == NULL || !cfg->resume) {
		return FM_OK;
	}
	int rv = srv_ckpt_resume(s, res, &n, err); /* server_ckpt.c */
	if (rv == FM_ENOENT) {
		fm_log(FM_LOG_INFO, "FM-RESUME", "no checkpoint at %s: starting "
		    "from round 1", cfg->checkpoint);
		return FM_OK;
	}
	if (rv != FM_OK) {
		return rv;
	}
	fm_log(FM_LOG_INFO, "FM-RESUME", "resuming after round %u from %s", n,
	    cfg->checkpoint);
	res->nrounds = n;
	*start = n + 1;
	for (uint32_t r = 0; r < n && cfg->on_round != NULL; r++) {
		if (cfg->on_round(cfg->ud, &res->rounds[r]) != 0) {
			return fm_error_set(err, FM_ESCRIPT, "stopped by the "
			    "per-round callback");
		}
	}
	return FM_OK;
}

/* Before round r with a privacy budget: *stop when the round would
 * spend more than max_epsilon; else *eps is what the run will have spent
 * after it. */
static int
srv_dp_peek(fmi_server *s, uint32_t r, uint32_t *picked, double *eps,
    int *stop, fm_error *err)
{
	const fmi_dp_acct_cfg *c = &s->cfg->dp_acct;
	uint32_t k = 0;
	*stop = 0;
	int rv = fmi_fed_sample_k(s->cfg, r, picked, &k);
	if (rv != FM_OK) {
		return fm_error_set(err, rv, "out of memory");
	}
	if ((rv = fmi_dp_budget_peek(&s->dp, picked, k, eps, err)) != FM_OK) {
		return rv;
	}
	if (c->max_epsilon > 0 && *eps > c->max_epsilon) {
		*stop = 1;
		fm_log(FM_LOG_INFO, "FM-DP-BUDGET", "the privacy budget is spent: "
		    "round %u would bring epsilon to %.4g (delta %g), above "
		    "max_epsilon = %g; the run stops after round %u with "
		    "epsilon %.4g", r, *eps, c->delta, c->max_epsilon, r - 1,
		    s->dp_eps);
	}
	return FM_OK;
}

static int
srv_loop(fmi_server *s, fmi_fed_result *res, uint32_t start, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t *picked = malloc(fmi_fed_cap(cfg) * sizeof *picked);
	int rv = picked ? FM_OK : FM_ENOMEM;
	if (start > 1) { /* resumed: what the hosts hold of later rounds */
		srv_ckpt_void_rounds(s, start);
	}

	for (uint32_t r = start; r <= cfg->rounds && rv == FM_OK; r++) {
		s->round = r;
		fmi_round_metrics *m = &res->rounds[r - 1];
		double eps = 0;
		int stop = 0;
		if (s->dp.on &&
		    (rv = srv_dp_peek(s, r, picked, &eps, &stop, err)) != FM_OK) {
			break;
		}
		if (stop && r == 1) {
			rv = fm_error_set(err, FM_EINVAL, "max_epsilon = %g is "
			    "spent by round 1 alone (epsilon %.4g at delta %g): "
			    "raise max_epsilon or the noise", s->cfg->dp_acct.
			    max_epsilon, eps, s->cfg->dp_acct.delta);
			break;
		}
		if (stop) {
			res->budget_spent = 1;
			break;
		}
		rv = srv_round(s, picked, m);
		if (rv != FM_OK) {
			fm_error_set(err, rv, "round %u failed: %s", r,
			    fm_strerror(rv));
			break;
		}
		if (s->dp.on) {
			fmi_dp_budget_commit(&s->dp, picked, s->nround);
			s->dp_eps = eps;
			fmi_round_metric(m, "epsilon", eps);
			fmi_round_metric(m, "delta", s->cfg->dp_acct.delta);
			if (s->dp.ex_on) { /* example-level DP-SGD */
				double ee, eb;
				fmi_dp_budget_example(&s->dp, &ee, &eb);
				fmi_round_metric(m, s->dp.ex_main ?
				    "epsilon_no_sampling" :
				    "example_epsilon_no_sampling", eb);
				if (!s->dp.ex_main) {
					fmi_round_metric(m, "example_epsilon", ee);
				}
			}
		}
		res->nrounds = r;
		if (cfg->checkpoint != NULL) {
			rv = srv_ckpt_write(s, res, r, r == 1, err);
		}
		if (rv == FM_OK && cfg->on_round && cfg->on_round(cfg->ud, m)) {
			rv = fm_error_set(err, FM_ESCRIPT, "stopped by the "
			    "per-round callback after round %u", r);
		}
	}
	free(picked);
	return rv;
}

int
fmi_server_run(const fmi_fed_cfg *cfg, fmi_tran *t,
    const fmi_server_hosts *hosts, fmi_fed_result *res, fm_error *err)
{
	fmi_server s;
	memset(&s, 0, sizeof s);
	s.cfg = cfg;
	s.t = t;
	s.hosts = hosts;
	memset(res, 0, sizeof *res);
	res->rounds = calloc(cfg->rounds, sizeof *res->rounds);
	int rv = res->rounds ? srv_open(&s, err)
	                     : fm_error_set(err, FM_ENOMEM, "out of memory");
	uint32_t start = 1;
	if (rv == FM_OK) {
		rv = srv_resume(&s, res, &start, err);
	}
	if (rv == FM_OK && (rv = fmi_dp_budget_open(&s.dp, cfg, err)) == FM_OK &&
	    start > 1) { /* what the resumed rounds spent */
		rv = fmi_dp_budget_replay(&s.dp, cfg, start - 1, err);
		s.dp_eps = fmi_round_metric_get(&res->rounds[start - 2],
		    "epsilon");
	}
	if (rv == FM_OK && start <= cfg->rounds) {
		rv = s.tree != NULL ? srv_tree_wait(&s, err)
		                    : srv_wait_hosts(&s, err);
	}
	double t0 = fmi_now();
	if (rv == FM_OK && start <= cfg->rounds) {
		rv = srv_loop(&s, res, start, err);
	} else { /* failed, or resumed with no round left to run */
		srv_await_hellos(&s);
	}
	/* Counted over every round of the result, those resumed from a
	 * checkpoint too (a resumed run of failed rounds is no result). */
	uint32_t moved = 0;
	for (uint32_t r = 0; r < res->nrounds; r++) {
		moved += res->rounds[r].aggregated != 0;
	}
	if (rv == FM_OK && res->nrounds > 0 && moved == 0) {
		/* the "result" would be the model round 1 started from */
		rv = fm_error_set(err, FM_EINVAL, "no round of %u aggregated, so "
		    "there is no trained model (%s)", res->nrounds,
		    s.why[0] ? s.why : "the rounds resumed from the checkpoint "
		    "aggregated nothing either");
	}
	for (uint32_t i = 0; i < hosts->n; i++) {
		fmi_msg m;
		srv_msg(&s, &m, FMI_MSG_SHUTDOWN, -1);
		(void)fmi_tran_send(t, hosts->names[i], &m, NULL);
	}
	res->seconds = fmi_now() - t0;
	if (s.global != NULL && s.view != s.global) { /* the edges' mean */
		memcpy(s.global, s.view, s.dim * sizeof(float));
	}
	res->params = s.global;
	res->nparams = s.dim;
	if (s.global != NULL) {
		s.nodes[0].model = NULL; /* now the result's */
	}
	s.global = NULL;
	srv_close(&s);
	return rv;
}
