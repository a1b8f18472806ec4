/* SPDX-License-Identifier: MIT */
/*
 * server.c: the server: sample, broadcast, collect, aggregate, evaluate.
 *
 * The server holds a tree of aggregators (see fed.h): a star is the tree
 * of one level, whose root aggregates every client; a hierarchy adds
 * edges (their children are clients) and intermediate levels, all living
 * logically in this process, each with its own model and aggregator
 * instance. Aggregators are numbered level by level from the root (0).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/node.h"
#include "node/pipeline.h"

typedef struct srv_job {
	size_t size;
	uint32_t slot;
} srv_job;

/* One sampled client's slot in the round. */
typedef struct srv_slot {
	uint32_t client; /* partition index; node id is client + 1 */
	uint32_t host;
	uint32_t edge;   /* its edge aggregator (index into nodes) */
	int state;       /* 0 waiting, 1 arrived, 2 fed, 3 unreachable,
	                  * 4 came late (after the round closed) */
	int awaited;     /* counted in fmi_server.waiting */
	uint8_t fault;   /* simulated: enum fmi_fault */
	uint8_t status;  /* enum fmi_client_status, 0 until known */
	uint64_t ne;     /* its update's examples, loss and norm */
	double loss, norm;
	fmi_rmsg msg;
} srv_slot;

struct fmi_server;

/* One aggregator of the tree: the root (a star's server), an
 * intermediate one, or an edge (whose children are clients). */
typedef struct srv_agg {
	struct fmi_server *s;
	fmi_agg *agg;
	fmi_def *def;        /* edges: the defence before agg, or NULL */
	fmi_loc *loc;        /* edges: the local rule's server side, or NULL */
	fmi_pipe pipe;       /* attack -> defence -> agg (pipeline.h) */
	fm_round r;          /* the round it is aggregating */
	float *model;        /* the root's is the server's global model */
	uint32_t level;
	int32_t id;          /* FM_NODE_SERVER, or nclients + its index */
	uint64_t data;       /* examples its subtree holds */
	uint64_t since;      /* examples its subtree trained since its
	                      * parent last aggregated it */
	double loss_sum;     /* their losses times examples */
	uint64_t since_root; /* edges: examples since the root aggregated */
	uint64_t rne;        /* edges: this round's accepted examples */
	double rloss;        /* and their losses times examples */
	uint32_t slot0, nsampled; /* edges: this round's slots */
} srv_agg;

typedef struct fmi_server {
	const fmi_fed_cfg *cfg;
	fmi_tran *t;
	const fmi_server_hosts *hosts;
	srv_agg *nodes;
	uint32_t nnodes, levels;
	uint32_t first[FMI_HIER_MAX_LEVELS + 1]; /* first node of each level */
	uint32_t fan[FMI_HIER_MAX_LEVELS];
	uint64_t period[FMI_HIER_MAX_LEVELS]; /* aggregates every k rounds */
	fmi_trainer *eval;
	float *global;  /* the root's model */
	float *scratch; /* previous model; unaligned payloads */
	const float *view; /* the model evaluated (global, or avg) */
	float *delta, *avg; /* hierarchies: a child's update; edge mean */
	double *avgd;       /* the edge mean, accumulated */
	int32_t *cids;      /* hierarchies: ids of an aggregator's children */
	int root_done;      /* the root aggregated this round */
	size_t dim;
	uint32_t round;
	srv_slot *slots;
	/* What the edge aggregators send from a_begin, held until each
	 * client's TRAIN goes out right behind its own messages. */
	struct srv_held *held;
	uint32_t nheld, capheld;
	int holding;
	uint32_t nslots, next;
	uint32_t waiting; /* slots neither arrived nor unreachable */
	uint32_t *order; /* client index -> slot + 1 (0: not sampled) */
	int32_t *ids;    /* node ids of the sampled clients */
	uint64_t *load;  /* per host, for placement */
	double *heard;   /* per host, when it last sent anything */
	srv_job *jobs;
	uint64_t ne_sum;
	double loss_sum;
	fmi_round_metrics *m;
	fmi_timers timers;
	uint64_t seq;
	/* the edges' pipelines hold the round's updates as rows here, each
	 * edge at its first slot (an edge's clients are contiguous) */
	float *rows;        /* [clients_per_round][stride], or NULL */
	double *adv_norms;  /* [clients_per_round] for client detail */
	float *sdelta;      /* the server's root-data update (FLTrust) */
	uint32_t *root_idx;
	/* attacks: model poisoning on held rows, and a success-rate set */
	fmi_atk *atk;
	fmi_dataset *asr;   /* the attack's target set, or NULL */
	/* why the first round that moved no model failed (a run in which
	 * none aggregated is an error, not a result) */
	uint32_t fed;        /* rows an aggregator took, this round */
	char why[320];
	/* issue 9: the round's learning rates, simulated faults, and what
	 * the defences decided */
	float lr;           /* local, sent in TRAIN */
	double lr_scale;    /* of the aggregators' lr (fm_round.lr_scale) */
	uint8_t *plan;      /* [clients_per_round] fault plan, or NULL */
	uint32_t late_expect; /* planned stragglers not heard from yet */
	int closed;         /* past the deadline: updates come late */
	double deadline;
	int def_ran, def_combined;
	uint32_t def_rej, def_rej_adv; /* rows rejected; adversaries among */
} fmi_server;

/* Remembers the first reason a round did not aggregate. */
static void srv_why(fmi_server *s, const char *fmt, ...) FM_PRINTF(2, 3);
static void
srv_why(fmi_server *s, const char *fmt, ...)
{
	va_list ap;
	if (s->why[0] != '\0') {
		return;
	}
	int n = snprintf(s->why, sizeof s->why, "round %u: ", s->round);
	va_start(ap, fmt);
	vsnprintf(s->why + n, sizeof s->why - (size_t)n, fmt, ap);
	va_end(ap);
}

void
fmi_round_metric(fmi_round_metrics *m, const char *name, double value)
{
	for (uint32_t i = 0; i < m->nextra; i++) {
		if (strcmp(m->extra[i].name, name) == 0) {
			m->extra[i].value = value;
			return;
		}
	}
	if (m->nextra < FMI_MAX_EXTRA_METRICS) {
		fmi_strlcpy(m->extra[m->nextra].name, name,
		    sizeof m->extra[0].name);
		m->extra[m->nextra++].value = value;
	}
}

uint64_t
fmi_fed_id(uint64_t seed)
{
	return fmi_hash64(seed ^ 0x66656d6573680000ULL);
}

uint64_t
fmi_task_seed(uint64_t seed, uint32_t round, uint32_t client)
{
	return fmi_hash64(seed ^ fmi_hash64(((uint64_t)round << 32) | client));
}

static void
srv_msg(fmi_server *s, fmi_msg *m, uint32_t type, int32_t to)
{
	memset(m, 0, sizeof *m);
	m->type = type;
	m->fed = fmi_fed_id(s->cfg->seed);
	m->round = s->round;
	m->from = FM_NODE_SERVER;
	m->to = to;
	m->seq = ++s->seq;
}

/* ---- plugin links ---------------------------------------------------- */

typedef struct srv_held {
	fmi_msg m;
	void *data;
} srv_held;

static int
srv_hold_msg(fmi_server *s, const fmi_msg *m, const void *data, size_t len)
{
	if (s->nheld == s->capheld) {
		uint32_t cap = s->capheld ? 2 * s->capheld : 64;
		srv_held *h = realloc(s->held, cap * sizeof *h);
		if (h == NULL) {
			return FM_ENOMEM;
		}
		s->held = h;
		s->capheld = cap;
	}
	srv_held *h = &s->held[s->nheld];
	if ((h->data = malloc(len ? len : 1)) == NULL) {
		return FM_ENOMEM;
	}
	memcpy(h->data, data, len);
	h->m = *m;
	s->nheld++;
	return FM_OK;
}

/* Sends the held messages for client `to` (node id), in order, to its
 * host; with host NULL (the client drops out) just forgets them. */
static void
srv_flush_held(fmi_server *s, int32_t to, const char *host)
{
	for (uint32_t i = 0; i < s->nheld; i++) {
		srv_held *h = &s->held[i];
		if (h->data != NULL && h->m.to == to) {
			if (host != NULL) {
				(void)fmi_tran_send_bytes(s->t, host, &h->m,
				    h->data, h->m.n);
			}
			free(h->data);
			h->data = NULL;
		}
	}
}

static void
srv_drop_held(fmi_server *s)
{
	for (uint32_t i = 0; i < s->nheld; i++) {
		free(s->held[i].data);
	}
	s->nheld = 0;
}

/* An edge aggregator reaches the sampled clients of its edge. During
 * a_begin the messages are held, and each goes out right before its
 * client's TRAIN request (see srv_broadcast). */
static int
srv_plugin_send(void *node, const char *comp, int32_t to, const void *data,
    size_t len)
{
	srv_agg *n = node;
	fmi_server *s = n->s;
	if (to < 1 || (uint32_t)to > s->cfg->part->nclients ||
	    s->order[to - 1] == 0) {
		return FM_ENOENT; /* not in this round */
	}
	srv_slot *slot = &s->slots[s->order[to - 1] - 1];
	if (&s->nodes[slot->edge] != n) {
		return FM_ENOENT; /* a client of another edge */
	}
	fmi_msg m;
	srv_msg(s, &m, FMI_MSG_PLUGIN, to);
	fmi_strlcpy(m.plugin, comp, sizeof m.plugin);
	m.n = len;
	if (s->holding) {
		return srv_hold_msg(s, &m, data, len);
	}
	return fmi_tran_send_bytes(s->t, s->hosts->names[slot->host], &m, data,
	    len);
}

static int
srv_plugin_timer(void *node, const char *comp, uint32_t ms, uint64_t tag)
{
	srv_agg *n = node;
	fmi_inst_head *h = n->loc != NULL &&
	    strcmp(comp, n->loc->h.comp->desc->name) == 0 ? &n->loc->h
	                                                  : &n->agg->h;
	return fmi_timers_add(&n->s->timers, h, ms, tag);
}

/* Sets a per-round metric of the current round. */
static void
srv_metric(fmi_server *s, const char *name, double value)
{
	if (s->m != NULL) {
		fmi_round_metric(s->m, name, value);
	}
}

static void
srv_plugin_metric(void *node, const char *name, double value)
{
	srv_agg *n = node;
	srv_metric(n->s, name, value);
}

/* ---- setup ------------------------------------------------------------ */

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
static uint32_t
srv_edge_of(const fmi_server *s, uint32_t c)
{
	return s->first[s->levels - 1] + c / s->fan[s->levels - 1];
}

/* Aggregator i's parent (i > 0). */
static uint32_t
srv_parent(const fmi_server *s, uint32_t i)
{
	uint32_t l = s->nodes[i].level;
	return s->first[l - 1] + (i - s->first[l]) / s->fan[l - 1];
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
		srv_plugin_timer, srv_plugin_metric, NULL, threads, 0 };
	uint64_t seed = fmi_hash64(cfg->seed + 1);
	uint32_t role = i == 0 ? FM_ROLE_SERVER : FM_ROLE_EDGE;
	/* what an edge can see: its sampled children, at most */
	uint32_t most = edge ? FMI_MIN(cfg->clients_per_round,
	    fmi_fed_fanout(cfg, n->level)) : fmi_fed_fanout(cfg, n->level);
	n->s = s;
	n->id = i == 0 ? FM_NODE_SERVER
	               : (int32_t)(cfg->part->nclients + i);
	n->model = malloc(s->dim * sizeof(float));
	if (n->model == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for the "
		    "model of aggregator %u", i);
	}
	fmi_open_args a = { params, s->dim, role, n->id,
		i == 0 ? seed : fmi_hash64(seed ^ i), most, 0, &link };
	int rv = fmi_agg_open(&n->agg, c, &a, err);
	if (rv == FM_OK && edge && cfg->defence != NULL) {
		fmi_open_args d = { cfg->def_params, s->dim, role, n->id,
			fmi_hash64(seed ^ 0x646566ULL ^ i), most,
			cfg->root_data != NULL ? FM_INST_ROOT_DATA : 0, NULL };
		rv = fmi_def_open(&n->def, cfg->defence, &d, err);
	}
	if (rv == FM_OK && edge && cfg->rule != NULL) {
		fmi_open_args l = { cfg->rule_params, s->dim, role, n->id,
			fmi_hash64(seed ^ 0x6c6f63ULL ^ i), most, 0, &link };
		rv = fmi_loc_open(&n->loc, cfg->rule, &l, err);
	}
	n->pipe.agg = n->agg;
	n->pipe.def = n->def;
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
	if (!fmi_atk_poisons_data(s->atk) || t == NULL) {
		return FM_OK;
	}
	if (fmi_dataset_new(&s->asr, t->n, t->dim, t->nclasses) != FM_OK) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	memcpy(s->asr->x, t->x, t->n * t->dim * sizeof(float));
	memcpy(s->asr->y, t->y, t->n * sizeof(int32_t));
	fm_attack_data a = { sizeof a, FM_ATTACK_EVAL, s->asr->x, s->asr->y,
		t->n, t->dim, t->nclasses, 0, 0, 0, 0,
		fmi_hash64(s->cfg->seed ^ 0x617372), t->n, 0, 0 };
	fmi_image_shape(t->dim, &a.width, &a.height);
	int rv = fmi_atk_poison_data(s->atk, &a);
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
		cfg->clients_per_round, 0, NULL };
	int rv = fmi_atk_open(&s->atk, cfg->attack, &a, err);
	return rv == FM_OK ? srv_open_asr(s, err) : rv;
}

/* Buffers the edges' pipelines share when they hold the round's updates
 * (a defence or a model-poisoning attack): the rows, and FLTrust's. */
static int
srv_open_rows(fmi_server *s, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	size_t n = cfg->clients_per_round;
	const fmi_pipe *p = &s->nodes[s->first[s->levels - 1]].pipe;
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
	s->global = s->nodes[0].model;
	s->view = s->global;
	return FM_OK;
}

/* Buffers only a hierarchy needs. */
static int
srv_open_hier(fmi_server *s, fm_error *err)
{
	uint32_t maxfan = 1;
	if (s->levels == 1) {
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

static int srv_check_sampling(const fmi_fed_cfg *cfg, fm_error *err);

static int
srv_open(fmi_server *s, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	s->dim = cfg->arch.nparams;
	srv_shape(s);
	s->scratch = malloc(s->dim * sizeof(float));
	s->slots = calloc(cfg->clients_per_round, sizeof *s->slots);
	s->order = calloc(cfg->part->nclients, sizeof *s->order);
	s->ids = calloc(cfg->clients_per_round, sizeof *s->ids);
	s->load = calloc(s->hosts->n, sizeof *s->load);
	s->jobs = calloc(cfg->clients_per_round, sizeof *s->jobs);
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
		memcpy(s->nodes[i].model, s->global, s->dim * sizeof(float));
	}
	return FM_OK;
}

static void
srv_close(fmi_server *s)
{
	for (uint32_t i = 0; s->nodes != NULL && i < s->nnodes; i++) {
		fmi_pipe_fini(&s->nodes[i].pipe);
		fmi_agg_close(s->nodes[i].agg);
		fmi_def_close(s->nodes[i].def);
		fmi_loc_close(s->nodes[i].loc);
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
}

static int
srv_host_index(const fmi_server *s, const char *peer)
{
	for (uint32_t i = 0; i < s->hosts->n; i++) {
		if (strcmp(peer, s->hosts->names[i]) == 0) {
			return (int)i;
		}
	}
	return -1;
}

/* Waits until every host has said something (HELLO or HEARTBEAT), or the
 * join timeout passed with at least one. */
static int
srv_wait_hosts(fmi_server *s, fm_error *err)
{
	uint32_t seen = 0;
	char *got = calloc(s->hosts->n, 1);
	double tmo = s->hosts->join_timeout > 0 ? s->hosts->join_timeout : 30;
	double deadline = fmi_now() + tmo;

	while (got != NULL && seen < s->hosts->n && fmi_now() < deadline) {
		fmi_rmsg r;
		if (fmi_tran_recv(s->t, &r, 100, NULL) != FM_OK) {
			continue;
		}
		int h = srv_host_index(s, r.peer);
		if (h >= 0) {
			s->heard[h] = fmi_now();
		}
		if (h < 0) {
			fm_log(FM_LOG_WARN, "FM-SENDER", "ignored %s message from "
			    "'%s': not a node of this federation",
			    fmi_msg_type_name(r.m.type), r.peer);
		} else if (!got[h]) {
			got[h] = 1;
			seen++;
			/* worker threads of a simulation are no news */
			fm_log(s->hosts->pinned ? FM_LOG_INFO : FM_LOG_DEBUG,
			    "FM-JOIN", "client host %s joined (%u of %u)",
			    r.peer, seen, s->hosts->n);
		}
		fmi_rmsg_close(&r);
	}
	free(got);
	if (seen == 0) {
		return fm_error_set(err, FM_ETIMEDOUT, "no client host joined "
		    "within %.0f s; are the clients running and pointed at this "
		    "server?", tmo);
	}
	if (seen < s->hosts->n) {
		fm_log(FM_LOG_WARN, "FM-JOIN", "starting with %u of %u client "
		    "hosts; the others can join later", seen, s->hosts->n);
	}
	return FM_OK;
}

/* A run that fails before its first round: lets the hosts connect (up
 * to 5 s) so the SHUTDOWN that follows reaches them; a host that is not
 * connected yet would never hear it. */
static void
srv_await_hellos(fmi_server *s)
{
	uint32_t n = s->hosts->n, seen = 0;
	char *got = calloc(n, 1);
	double deadline = fmi_now() + 5;
	while (got != NULL && seen < n && fmi_now() < deadline) {
		fmi_rmsg r;
		if (fmi_tran_recv(s->t, &r, 50, NULL) != FM_OK) {
			continue;
		}
		int h = srv_host_index(s, r.peer);
		if (h >= 0 && !got[h]) {
			got[h] = 1;
			seen++;
		}
		fmi_rmsg_close(&r);
	}
	free(got);
}

/* ---- sampling and dispatch --------------------------------------------- */

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Moves k of the n ids in a to its front, a seeded uniform choice
 * (partial Fisher-Yates). */
static void
srv_draw(fm_rng *r, uint32_t *a, uint32_t n, uint32_t k)
{
	for (uint32_t i = 0; i < k; i++) {
		uint32_t j = i + (uint32_t)fmi_rng_below(r, n - i);
		uint32_t tmp = a[i];
		a[i] = a[j];
		a[j] = tmp;
	}
}

/* With cfg->adv_fixed, a round's adversaries and honest clients must both
 * be there to sample. */
static int
srv_check_sampling(const fmi_fed_cfg *cfg, fm_error *err)
{
	uint32_t n = cfg->part->nclients, k = cfg->clients_per_round, na = 0;
	if (!cfg->adv_fixed) {
		return FM_OK;
	}
	if (cfg->adversarial == NULL) {
		return fm_error_set(err, FM_EINVAL, "adv_fixed: a fixed number "
		    "of adversaries per round needs adversarial clients");
	}
	for (uint32_t c = 0; c < n; c++) {
		na += cfg->adversarial[c] != 0;
	}
	if (cfg->adv_per_round > k || cfg->adv_per_round > na ||
	    k - cfg->adv_per_round > n - na) {
		return fm_error_set(err, FM_EINVAL, "adv_per_round: %u "
		    "adversaries and %u honest clients per round, but %u of the "
		    "%u clients are adversarial", cfg->adv_per_round,
		    k - FMI_MIN(k, cfg->adv_per_round), na, n);
	}
	return FM_OK;
}

/* Samples clients_per_round distinct clients, ascending: uniformly, or
 * (adv_fixed) adv_per_round adversaries and the rest honest clients. */
int
fmi_fed_sample(const fmi_fed_cfg *cfg, uint32_t round, uint32_t *picked)
{
	uint32_t n = cfg->part->nclients, k = cfg->clients_per_round;
	uint32_t *all = malloc(n * sizeof *all);
	fm_rng r;
	if (all == NULL) {
		return FM_ENOMEM;
	}
	fmi_rng_seed(&r, cfg->seed, 0x73616d706c65ULL ^ round);
	if (cfg->adv_fixed) {
		/* adversaries in all[0, na), honest clients after them */
		uint32_t na = 0, ka = cfg->adv_per_round;
		for (uint32_t i = 0; i < n; i++) {
			na += cfg->adversarial[i] != 0;
		}
		for (uint32_t i = 0, a = 0, h = na; i < n; i++) {
			all[cfg->adversarial[i] ? a++ : h++] = i;
		}
		srv_draw(&r, all, na, ka);
		srv_draw(&r, all + na, n - na, k - ka);
		memmove(all + ka, all + na, (k - ka) * sizeof *all);
	} else {
		for (uint32_t i = 0; i < n; i++) {
			all[i] = i;
		}
		srv_draw(&r, all, n, k);
	}
	memcpy(picked, all, k * sizeof *picked);
	free(all);
	qsort(picked, k, sizeof *picked, cmp_u32);
	return FM_OK;
}

static int
srv_sample(fmi_server *s, uint32_t *picked)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t k = cfg->clients_per_round;
	int rv = fmi_fed_sample(cfg, s->round, picked);
	if (rv == FM_OK && cfg->adversarial != NULL) {
		uint32_t nadv = 0;
		for (uint32_t i = 0; i < k; i++) {
			nadv += cfg->adversarial[picked[i]] != 0;
		}
		srv_metric(s, "adversaries", nadv);
	}
	return rv;
}

/* Slot i no longer counts towards the clients the round waits for. */
static void
srv_unwait(fmi_server *s, srv_slot *slot)
{
	if (slot->awaited) {
		slot->awaited = 0;
		s->waiting--;
	}
}

static int
cmp_job(const void *a, const void *b)
{
	const srv_job *x = a, *y = b;
	if (x->size != y->size) {
		return x->size > y->size ? -1 : 1;
	}
	return (x->slot > y->slot) - (x->slot < y->slot);
}

/* Longest shard first onto the least-loaded host: balanced and
 * deterministic (placement never changes results, only speed). */
static void
srv_assign_hosts(fmi_server *s)
{
	srv_job *jobs = s->jobs;
	uint32_t nh = s->hosts->n;

	if (s->hosts->pinned) { /* the client's data lives on its home host */
		for (uint32_t i = 0; i < s->nslots; i++) {
			s->slots[i].host = s->slots[i].client % nh;
		}
		return;
	}

	for (uint32_t i = 0; i < s->nslots; i++) {
		jobs[i].size = fmi_partition_size(s->cfg->part, s->slots[i].client);
		jobs[i].slot = i;
	}
	qsort(jobs, s->nslots, sizeof *jobs, cmp_job);
	memset(s->load, 0, nh * sizeof *s->load);
	for (uint32_t i = 0; i < s->nslots; i++) {
		uint32_t h = 0;
		for (uint32_t j = 1; j < nh; j++) {
			h = s->load[j] < s->load[h] ? j : h;
		}
		s->slots[jobs[i].slot].host = h;
		s->load[h] += jobs[i].size + 1;
	}
}

/* The model of aggregator i as one shared TRAIN payload. */
static fmi_payload *
srv_payload(const fmi_server *s, uint32_t i)
{
	fmi_payload *p = fmi_payload_new(s->dim * sizeof(float));
	if (p != NULL) {
		memcpy(p->data, s->nodes[i].model, p->len);
		fmi_f32_to_le(p->data, s->dim);
	}
	return p;
}

/* Sends each sampled client its edge's model: one shared payload per
 * edge (a star's one edge is the root). */
static int
srv_broadcast(fmi_server *s)
{
	fmi_payload *p = NULL;
	const fmi_local_cfg *lc = &s->cfg->local;
	int rv = FM_OK;
	for (uint32_t i = 0; i < s->nslots && rv == FM_OK; i++) {
		fmi_msg m;
		uint32_t c = s->slots[i].client;
		if (i == 0 || s->slots[i].edge != s->slots[i - 1].edge) {
			fmi_payload_unref(p);
			if ((p = srv_payload(s, s->slots[i].edge)) == NULL) {
				srv_drop_held(s);
				return FM_ENOMEM;
			}
		}
		srv_msg(s, &m, FMI_MSG_TRAIN, (int32_t)c + 1);
		m.epochs = lc->epochs;
		m.batch = lc->batch;
		m.lr = s->lr;
		m.momentum = lc->opt.momentum;
		m.weight_decay = lc->opt.weight_decay;
		m.seed = fmi_task_seed(s->cfg->seed, s->round, c);
		m.n = s->dim;
		uint32_t h = s->slots[i].host;
		double quiet = fmi_now() - s->heard[h];
		if (s->hosts->silent_timeout > 0 &&
		    quiet > s->hosts->silent_timeout) {
			fm_log(FM_LOG_WARN, "FM-SILENT", "round %u: client %u: "
			    "its host %s has been silent for %.1f s", s->round,
			    c + 1, s->hosts->names[h], quiet);
			s->slots[i].state = 3;
			srv_unwait(s, &s->slots[i]);
			srv_flush_held(s, (int32_t)c + 1, NULL);
			continue;
		}
		/* what its aggregator said in a_begin, then the task */
		srv_flush_held(s, (int32_t)c + 1, s->hosts->names[h]);
		rv = fmi_tran_send(s->t, s->hosts->names[h], &m, p);
		if (rv == FM_ENOENT) { /* host not connected: a dropout */
			fm_log(FM_LOG_WARN, "FM-DROPOUT", "round %u: client %u: "
			    "its host %s is not connected", s->round, c + 1,
			    s->hosts->names[s->slots[i].host]);
			s->slots[i].state = 3;
			srv_unwait(s, &s->slots[i]);
			rv = FM_OK;
		}
	}
	fmi_payload_unref(p);
	srv_drop_held(s);
	return rv;
}

/* Starts the round at every edge with a sampled client. */
static int
srv_begin_edges(fmi_server *s)
{
	int rv = FM_OK;
	for (uint32_t i = s->first[s->levels - 1]; i < s->nnodes &&
	    rv == FM_OK; i++) {
		srv_agg *n = &s->nodes[i];
		if (n->nsampled > 0) {
			n->r = (fm_round) { sizeof n->r, s->round, n->nsampled,
				s->fan[s->levels - 1], s->ids + n->slot0,
				n->model, s->dim, s->lr_scale };
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

static int
srv_begin_round(fmi_server *s, uint32_t *picked)
{
	int rv = srv_sample(s, picked);
	if (rv != FM_OK) {
		return rv;
	}
	s->nslots = s->cfg->clients_per_round;
	s->next = 0;
	s->waiting = s->cfg->clients_per_round;
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

/* ---- collecting updates ------------------------------------------------- */

/* L2 norm of x[n], summed in double in a fixed order. */
static double
srv_norm(const float *x, size_t n)
{
	double sq = 0;
	for (size_t i = 0; i < n; i++) {
		sq += (double)x[i] * (double)x[i];
	}
	return sqrt(sq);
}

/* The slot of node id `client` in this round, or NULL. */
static srv_slot *
srv_slot_of(fmi_server *s, int32_t client)
{
	if (client < 1 || (uint32_t)client > s->cfg->part->nclients ||
	    s->order[client - 1] == 0) {
		return NULL;
	}
	return &s->slots[s->order[client - 1] - 1];
}

static int
srv_accept(fmi_server *s, srv_slot *slot)
{
	const fmi_msg *m = &slot->msg.m;
	const void *data = fmi_rmsg_data(&slot->msg);
	const float *delta = data;
	if (((uintptr_t)data & (sizeof(float) - 1)) != 0) {
		memcpy(s->scratch, data, s->dim * sizeof(float));
		delta = s->scratch;
	}
	fm_update u = { sizeof u, m->from, m->round, 0, delta, s->dim,
		m->num_examples, m->loss, m->steps };
	srv_agg *n = &s->nodes[slot->edge];
	slot->ne = m->num_examples;
	slot->loss = m->loss;
	if (s->cfg->client_detail) {
		slot->norm = srv_norm(delta, s->dim);
	}
	/* held as a row until the round closes, or streamed */
	int rv = fmi_pipe_add(&n->pipe, &u);
	slot->status = rv == FM_OK ? FMI_CLIENT_KEPT : FMI_CLIENT_UNUSED;
	if (rv == FM_OK) {
		s->ne_sum += m->num_examples;
		s->loss_sum += m->loss * (double)m->num_examples;
		n->rne += m->num_examples;
		n->rloss += m->loss * (double)m->num_examples;
		s->m->updates++;
	}
	fmi_rmsg_close(&slot->msg);
	slot->state = 2;
	return rv;
}

/* Feeds arrived updates to the aggregator in sampled order; with final,
 * skips the ones that never came. */
static void
srv_flush(fmi_server *s, int final)
{
	while (s->next < s->nslots) {
		srv_slot *slot = &s->slots[s->next];
		if (slot->state == 1) {
			(void)srv_accept(s, slot);
		} else if (!final) {
			break;
		} else if (slot->state == 0 || slot->state == 3) {
			s->m->dropped++;
			slot->status = FMI_CLIENT_DROPPED;
			if (slot->state == 0 && slot->fault != FMI_FAULT_NONE) {
				fm_log(FM_LOG_DEBUG, "FM-DROPOUT", "round %u: client "
				    "%u: simulated %s", s->round, slot->client + 1,
				    slot->fault == FMI_FAULT_DROPOUT ? "dropout"
				                                     : "straggler");
			} else if (slot->state == 0) {
				fm_log(FM_LOG_WARN, "FM-DROPOUT", "round %u: client "
				    "%u sent no update before the deadline",
				    s->round, slot->client + 1);
			}
		}
		s->next++;
	}
}

/* Why a message claiming to be from client r->m.from cannot be: the
 * client is not of this round, or it came through another host than the
 * one the client was sent to. NULL when it can. (Updates and plugin
 * messages alike.) */
static const char *
srv_sender_why(const fmi_server *s, const fmi_rmsg *r, char *why, size_t n)
{
	int32_t c = r->m.from - 1;
	if (c < 0 || (uint32_t)c >= s->cfg->part->nclients || s->order[c] == 0) {
		snprintf(why, n, "client %d was not sampled", r->m.from);
		return why;
	}
	const srv_slot *slot = &s->slots[s->order[c] - 1];
	if (strcmp(r->peer, s->hosts->names[slot->host]) != 0) {
		snprintf(why, n, "it came from '%s', but the client was sent to "
		    "'%s'", r->peer, s->hosts->names[slot->host]);
		return why;
	}
	return NULL;
}

/* Why an update cannot be used, or NULL. Content first (round, size,
 * finiteness), then who sent it. */
static const char *
srv_reject(fmi_server *s, fmi_rmsg *r, int tensor, char *why, size_t n)
{
	char spare[8];
	if (why == NULL) { /* only the verdict is wanted */
		why = spare;
		n = sizeof spare;
	}
	fm_error e;
	const fmi_msg *m = &r->m;
	int32_t c = m->from - 1;
	if (m->round != s->round) {
		snprintf(why, n, "it is for round %u during round %u (stale or "
		    "replayed)", m->round, s->round);
		return "FM-ROUND";
	}
	if (tensor && fmi_msg_check_tensor(m, fmi_rmsg_data(r),
	        fmi_rmsg_len(r), s->dim, &e) != FM_OK) {
		snprintf(why, n, "%s", e.msg);
		return "FM-UPDATE";
	}
	if (srv_sender_why(s, r, why, n) != NULL) {
		return "FM-SENDER";
	}
	const srv_slot *slot = &s->slots[s->order[c] - 1];
	if (slot->state != 0) {
		snprintf(why, n, "the client already answered");
		return "FM-SENDER";
	}
	return NULL;
}

/* An update (or a failed client's word) after the round closed: a
 * straggler's, counted and dropped. (The slot was counted as dropped at
 * the deadline.) */
static void
srv_on_late(fmi_server *s, srv_slot *slot, fmi_rmsg *r, int failed)
{
	if (slot->fault == FMI_FAULT_STRAGGLER && s->late_expect > 0) {
		s->late_expect--;
	}
	if (failed) {
		slot->state = 3;
		fmi_rmsg_close(r);
		return;
	}
	const float *delta = fmi_rmsg_data(r);
	if (((uintptr_t)delta & (sizeof(float) - 1)) != 0) {
		memcpy(s->scratch, delta, s->dim * sizeof(float));
		delta = s->scratch;
	}
	slot->state = 4;
	slot->status = FMI_CLIENT_STRAGGLER;
	slot->ne = r->m.num_examples;
	slot->loss = r->m.loss;
	if (s->cfg->client_detail) {
		slot->norm = srv_norm(delta, s->dim);
	}
	s->m->dropped--;
	s->m->stragglers++;
	fm_log(slot->fault != FMI_FAULT_NONE ? FM_LOG_DEBUG : FM_LOG_WARN,
	    "FM-STRAGGLER", "round %u: the update of client %d came after the "
	    "deadline; dropped", s->round, r->m.from);
	fmi_rmsg_close(r);
}

static void
srv_on_update(fmi_server *s, fmi_rmsg *r)
{
	char why[512];
	/* An update of no floats is a client saying its training failed:
	 * its slot drops out now instead of at the deadline. */
	int failed = r->m.n == 0 && fmi_rmsg_len(r) == 0;
	const char *id = srv_reject(s, r, !failed, why, sizeof why);
	if (id != NULL && strcmp(id, "FM-UPDATE") == 0 &&
	    srv_reject(s, r, 0, NULL, 0) == NULL) {
		/* the right host sent a broken update (e.g. not finite): the
		 * client is out of this round, nobody waits for it */
		fm_log(FM_LOG_WARN, id, "dropped update of client %d from '%s': "
		    "%s; it drops out of round %u", r->m.from, r->peer, why,
		    s->round);
		failed = 1;
		id = NULL;
	}
	if (id != NULL) {
		fm_log(FM_LOG_WARN, id, "dropped update of client %d from '%s': "
		    "%s", r->m.from, r->peer, why);
		fmi_rmsg_close(r);
		return;
	}
	srv_slot *slot = &s->slots[s->order[r->m.from - 1] - 1];
	if (s->closed) {
		srv_on_late(s, slot, r, failed);
		return;
	}
	if (failed) {
		fm_log(FM_LOG_WARN, "FM-DROPOUT", "round %u: client %d has no "
		    "usable update (its training failed)", s->round, r->m.from);
		fmi_rmsg_close(r);
		slot->state = 3;
		srv_unwait(s, slot);
		srv_flush(s, 0);
		return;
	}
	slot->msg = *r; /* takes the payload */
	r->has_payload = 0;
	slot->state = 1;
	srv_unwait(s, slot);
	srv_flush(s, 0);
}

/* The instance on the client's aggregating node that a plugin message
 * from client `from` for component `name` is for: the edge's local rule
 * or its aggregator, whichever has that name; NULL if none. */
static fmi_inst_head *
srv_plugin_target(fmi_server *s, int32_t from, const char *name)
{
	srv_agg *n = NULL;
	if (s->levels == 1) {
		n = &s->nodes[0];
	} else if (from >= 1 && (uint32_t)from <= s->cfg->part->nclients) {
		n = &s->nodes[srv_edge_of(s, (uint32_t)from - 1)];
	}
	if (n != NULL && n->loc != NULL &&
	    strcmp(name, n->loc->h.comp->desc->name) == 0) {
		return &n->loc->h;
	}
	if (n != NULL && strcmp(name, n->agg->h.comp->desc->name) == 0) {
		return &n->agg->h;
	}
	return NULL;
}

static void
srv_on_plugin(fmi_server *s, fmi_rmsg *r)
{
	fmi_inst_head *h = srv_plugin_target(s, r->m.from, r->m.plugin);
	char why[256];
	if (r->m.round == s->round &&
	    srv_sender_why(s, r, why, sizeof why) != NULL) {
		fm_log(FM_LOG_WARN, "FM-SENDER", "dropped message for plugin "
		    "'%s' from node %d through '%s': %s", r->m.plugin,
		    r->m.from, r->peer, why);
	} else if (h == NULL || s->closed || !fmi_inst_handles_messages(h) ||
	    r->m.round != s->round) {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-MSG", "dropped message for "
		    "plugin '%s' from node %d", r->m.plugin, r->m.from);
	} else {
		fm_message msg = { sizeof msg, r->m.from, r->m.round, 0,
			fmi_rmsg_data(r), fmi_rmsg_len(r) };
		(void)fmi_inst_message(h, &msg);
	}
	fmi_rmsg_close(r);
}

static void
srv_dispatch(fmi_server *s, fmi_rmsg *r)
{
	int h = srv_host_index(s, r->peer);
	if (h >= 0) {
		s->heard[h] = fmi_now();
	}
	switch (r->m.type) {
	case FMI_MSG_UPDATE:
		srv_on_update(s, r);
		break;
	case FMI_MSG_PLUGIN:
		srv_on_plugin(s, r);
		break;
	case FMI_MSG_HELLO:
	case FMI_MSG_HEARTBEAT:
		fmi_rmsg_close(r);
		break;
	default:
		fm_log(FM_LOG_WARN, "FM-WIRE", "server: unexpected %s message "
		    "from %s", fmi_msg_type_name(r->m.type), r->peer);
		fmi_rmsg_close(r);
	}
}

static void
srv_collect(fmi_server *s)
{
	uint32_t tmo = s->cfg->round_timeout_ms ? s->cfg->round_timeout_ms
	                                        : 3600 * 1000;
	double deadline = fmi_now() + tmo / 1000.0;

	s->deadline = deadline;
	while (s->waiting > 0) {
		double left = deadline - fmi_now();
		if (left <= 0) {
			break;
		}
		int wait = fmi_timers_wait_ms(&s->timers, (int)(left * 1000) + 1);
		fmi_rmsg r;
		if (fmi_tran_recv(s->t, &r, wait, NULL) == FM_OK) {
			srv_dispatch(s, &r);
		}
		fmi_timers_fire(&s->timers);
	}
	srv_flush(s, 1);
}

/* ---- finishing a round -------------------------------------------------- */

/* After the round closed: the updates that come late (stragglers). With
 * simulated stragglers, waits for their hosts to answer (they do once
 * they hear the round ended, up to the round's deadline); then takes
 * what is already queued, without waiting. */
static void
srv_collect_late(fmi_server *s)
{
	fmi_rmsg r;
	s->closed = 1;
	s->late_expect = 0; /* planned stragglers that were sent their task */
	for (uint32_t i = 0; i < s->nslots; i++) {
		s->late_expect += s->slots[i].fault == FMI_FAULT_STRAGGLER &&
		    s->slots[i].state == 0;
	}
	while (s->late_expect > 0) {
		double left = s->deadline - fmi_now();
		if (left <= 0) {
			break;
		}
		if (fmi_tran_recv(s->t, &r, (int)(left * 1000) + 1, NULL) ==
		    FM_OK) {
			srv_dispatch(s, &r);
		}
	}
	for (;;) {
		int rv = fmi_tran_recv(s->t, &r, 0, NULL);
		if (rv == FM_OK) {
			srv_dispatch(s, &r);
		} else if (rv != FM_EPROTO && rv != FM_EVERSION) {
			break; /* nothing more queued */
		}
	}
	s->closed = 0;
}

static void
srv_end_round(fmi_server *s)
{
	/* One per sampled client node (not per host), so the traffic does not
	 * depend on how many threads host the clients. */
	for (uint32_t i = 0; i < s->nslots; i++) {
		fmi_msg m;
		srv_msg(s, &m, FMI_MSG_ROUND_END, (int32_t)s->slots[i].client + 1);
		(void)fmi_tran_send(s->t, s->hosts->names[s->slots[i].host], &m,
		    NULL);
	}
	srv_collect_late(s);
	for (uint32_t i = 0; i < s->nslots; i++) {
		fmi_rmsg_close(&s->slots[i].msg);
		s->order[s->slots[i].client] = 0;
	}
}

/* What an aggregator is called in logs. */
static const char *
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

/* Aggregator i's pipeline finishes its round into its model; the model
 * stays when a call fails, the quorum is not met, or the result is not
 * finite. */
static int
srv_finish(fmi_server *s, uint32_t i, int quorum_ok)
{
	srv_agg *n = &s->nodes[i];
	char name[64];
	if (!quorum_ok) {
		/* Not finished at all: a stateful aggregator (FedAdam's
		 * moments, SCAFFOLD's c) must not move for a round whose
		 * model is thrown away; its next begin starts afresh. */
		return FM_ETIMEDOUT;
	}
	int rv = fmi_pipe_finish(&n->pipe, &n->r, n->model,
	    srv_node_name(s, i, name, sizeof name));
	if (rv != FM_OK) {
		srv_why(s, "%s", n->pipe.why);
	}
	return rv;
}

/* An edge's clients trained: count their examples up the tree. */
static void
srv_credit(fmi_server *s, uint32_t i)
{
	srv_agg *e = &s->nodes[i];
	e->since_root += e->rne;
	for (; i > 0; i = srv_parent(s, i)) {
		s->nodes[i].since += e->rne;
		s->nodes[i].loss_sum += e->rloss;
	}
}

/* FLTrust's reference: the server trains edge i's model on its root
 * data (seeded like a client of this round) into s->sdelta. */
static const float *
srv_server_delta(fmi_server *s, const srv_agg *n)
{
	const fmi_fed_cfg *cfg = s->cfg;
	fmi_train_stats st;
	fm_rng rng;
	if (cfg->root_data == NULL) {
		return NULL;
	}
	float *w = fmi_trainer_params(s->eval);
	memcpy(w, n->model, s->dim * sizeof(float));
	fmi_rng_seed(&rng, fmi_task_seed(cfg->seed, s->round, 0), 0x726f6f74);
	fmi_trainer_reset_optimizer(s->eval);
	fmi_local_cfg lc = cfg->local;
	lc.opt.lr = s->lr; /* this round's, as the clients got it */
	if (fmi_train_local(s->eval, cfg->root_data, s->root_idx,
	        cfg->root_data->n, &lc, &rng, &st) != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-DEFENCE", "round %u: training on the "
		    "server's root data failed", s->round);
		return NULL;
	}
	for (size_t k = 0; k < s->dim; k++) {
		s->sdelta[k] = w[k] - n->model[k];
	}
	return s->sdelta;
}

/* Edge i's pipeline over its held rows (attack, defence, aggregator),
 * and what became of each row, by client. */
static void
srv_run_pipe(fmi_server *s, uint32_t i)
{
	const fmi_fed_cfg *cfg = s->cfg;
	srv_agg *n = &s->nodes[i];
	fmi_pipe *p = &n->pipe;
	const uint8_t *adv = cfg->attack != NULL ? cfg->adversarial : NULL;
	fmi_pipe_ctx c = { n->model,
		p->def != NULL ? srv_server_delta(s, n) : NULL, adv,
		fmi_task_seed(cfg->seed ^ 0x61746b, s->round, i),
		cfg->client_detail ? s->adv_norms : NULL, srv_norm };
	int rv = fmi_pipe_run(p, &c);
	if (rv != FM_OK) {
		srv_why(s, "%s", p->why);
	}
	s->fed += p->fed;
	s->def_ran |= p->defended;
	s->def_combined |= p->combined;
	for (uint32_t k = 0; k < p->n; k++) {
		srv_slot *slot = srv_slot_of(s, p->meta[k].client);
		if (slot == NULL) {
			continue;
		}
		if (c.adv_norms != NULL && p->adv[k]) {
			slot->norm = c.adv_norms[k];
		}
		slot->status = p->row_status[k] == FMI_ROW_KEPT ?
		    FMI_CLIENT_KEPT : p->row_status[k] == FMI_ROW_REJECTED ?
		    FMI_CLIENT_REJECTED : FMI_CLIENT_UNUSED;
		if (p->row_status[k] == FMI_ROW_REJECTED) {
			s->def_rej++;
			s->def_rej_adv += adv != NULL && adv[slot->client];
		}
	}
	if (rv == FM_OK && p->defended) {
		srv_metric(s, "defence_kept", (double)p->nkeep);
	}
}

/* With a defence and an attack: how well the defence told the round's
 * adversaries apart. precision = rejected adversaries / rejected, recall
 * = rejected adversaries / adversaries sampled; each left out when its
 * denominator is 0, both when no defence rejected by name. */
static void
srv_defence_metrics(fmi_server *s)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t nadv = 0;
	if (cfg->defence == NULL || cfg->attack == NULL ||
	    cfg->adversarial == NULL || !s->def_ran || s->def_combined) {
		return;
	}
	for (uint32_t i = 0; i < s->nslots; i++) {
		nadv += cfg->adversarial[s->slots[i].client] != 0;
	}
	if (s->def_rej > 0) {
		srv_metric(s, "defence_precision",
		    (double)s->def_rej_adv / (double)s->def_rej);
	}
	if (nadv > 0) {
		srv_metric(s, "defence_recall",
		    (double)s->def_rej_adv / (double)nadv);
	}
}

/* Every edge with a sampled client aggregates its updates. */
static void
srv_aggregate(fmi_server *s)
{
	uint32_t quorum = s->cfg->min_updates ? s->cfg->min_updates : s->nslots;
	int ok = s->m->updates >= quorum;
	if (!ok) {
		fm_log(FM_LOG_WARN, "FM-QUORUM", "round %u: %u updates, quorum "
		    "is %u; %s kept", s->round, s->m->updates, quorum,
		    s->levels == 1 ? "global model" : "edge models");
		srv_why(s, "%u updates arrived, the quorum (min_updates) is %u",
		    s->m->updates, quorum);
	}
	s->fed = 0;
	for (uint32_t i = s->first[s->levels - 1]; i < s->nnodes; i++) {
		int held = fmi_pipe_holds(&s->nodes[i].pipe);
		if (ok && held && s->nodes[i].pipe.n > 0) {
			srv_run_pipe(s, i);
		}
		if (s->nodes[i].nsampled > 0 && srv_finish(s, i, ok) == FM_OK) {
			srv_credit(s, i);
			/* streamed updates went in as they arrived */
			s->m->aggregated |= held ? s->fed > 0
			                         : s->m->updates > 0;
		} else {
			/* nothing of this edge's round is used */
			for (uint32_t k = 0; k < s->nodes[i].nsampled; k++) {
				srv_slot *slot = &s->slots[s->nodes[i].slot0 + k];
				if (slot->status == FMI_CLIENT_KEPT ||
				    slot->status == FMI_CLIENT_REJECTED) {
					slot->status = FMI_CLIENT_UNUSED;
				}
			}
		}
	}
	srv_defence_metrics(s);
}

/* ---- the levels above the edges ------------------------------------------ */

/* Child c of aggregator n as an update: its model minus n's, weighted by
 * what its subtree trained since n last aggregated (or its data size). */
static void
srv_feed_child(fmi_server *s, srv_agg *n, const srv_agg *c, uint32_t round)
{
	for (size_t d = 0; d < s->dim; d++) {
		s->delta[d] = c->model[d] - n->model[d];
	}
	fm_update u = { sizeof u, c->id, round, 0, s->delta, s->dim,
		c->since ? c->since : c->data,
		c->since ? c->loss_sum / (double)c->since : 0, 0 };
	(void)fmi_pipe_add(&n->pipe, &u); /* a refusal is logged there */
}

/* Copies aggregator i (position j of level l) down its subtree. */
static void
srv_copy_down(fmi_server *s, uint32_t i, uint32_t l, uint32_t j)
{
	uint64_t width = 1;
	for (uint32_t m = l + 1; m < s->levels; m++) {
		width *= s->fan[m - 1];
		uint32_t k0 = s->first[m] + (uint32_t)(j * width);
		for (uint32_t k = k0; k < k0 + width; k++) {
			memcpy(s->nodes[k].model, s->nodes[i].model,
			    s->dim * sizeof(float));
		}
	}
	if (l == 0) {
		s->root_done = 1;
		for (uint32_t k = s->first[s->levels - 1]; k < s->nnodes; k++) {
			s->nodes[k].since_root = 0;
		}
	}
}

/* Aggregator j of level l aggregates its children's models, then hands
 * the result down to its whole subtree (HierFAVG). */
static void
srv_aggregate_node(fmi_server *s, uint32_t l, uint32_t j)
{
	uint32_t i = s->first[l] + j, c0 = s->first[l + 1] + j * s->fan[l];
	uint32_t round = (uint32_t)(s->round / s->period[l]);
	srv_agg *n = &s->nodes[i];
	char name[64];
	for (uint32_t k = 0; k < s->fan[l]; k++) {
		s->cids[k] = s->nodes[c0 + k].id;
	}
	n->r = (fm_round) { sizeof n->r, round, s->fan[l], s->fan[l],
		s->cids, n->model, s->dim, s->lr_scale };
	int rv = fmi_pipe_begin(&n->pipe, &n->r);
	if (rv != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-HIER", "round %u: %s: %s; model kept",
		    s->round, srv_node_name(s, i, name, sizeof name),
		    n->pipe.why);
		return;
	}
	for (uint32_t k = 0; k < s->fan[l]; k++) {
		srv_feed_child(s, n, &s->nodes[c0 + k], round);
	}
	if (srv_finish(s, i, 1) != FM_OK) {
		return;
	}
	for (uint32_t k = 0; k < s->fan[l]; k++) {
		s->nodes[c0 + k].since = 0;
		s->nodes[c0 + k].loss_sum = 0;
	}
	srv_copy_down(s, i, l, j);
}

/* The edge models' mean, weighted by what each trained since the root
 * last aggregated (or its data size), into avg/avgd; returns the mean L2
 * distance of the edge models from it. */
static double
srv_edge_mean(fmi_server *s)
{
	uint32_t e0 = s->first[s->levels - 1];
	double w = 0, dist = 0;
	memset(s->avgd, 0, s->dim * sizeof(double));
	for (uint32_t i = e0; i < s->nnodes; i++) {
		const srv_agg *n = &s->nodes[i];
		double wi = (double)(n->since_root ? n->since_root : n->data);
		for (size_t d = 0; d < s->dim; d++) {
			s->avgd[d] += wi * n->model[d];
		}
		w += wi;
	}
	for (size_t d = 0; d < s->dim; d++) {
		s->avgd[d] = w > 0 ? s->avgd[d] / w : s->global[d];
		s->avg[d] = (float)s->avgd[d];
	}
	for (uint32_t i = e0; i < s->nnodes; i++) {
		double sq = 0;
		for (size_t d = 0; d < s->dim; d++) {
			double x = s->nodes[i].model[d] - s->avgd[d];
			sq += x * x;
		}
		dist += sqrt(sq);
	}
	return dist / (double)(s->nnodes - e0);
}

/* After the edges: every level whose period divides the round aggregates,
 * bottom-up. The model evaluated is the root's right after it aggregated,
 * otherwise the edges' weighted mean (what the root would get by FedAvg). */
static void
srv_hier_round(fmi_server *s)
{
	s->root_done = 0;
	if (s->levels == 1) {
		s->view = s->global;
		return;
	}
	for (uint32_t l = s->levels - 1; l-- > 0;) {
		if (s->round % s->period[l] != 0) {
			continue;
		}
		for (uint32_t j = 0; j < s->first[l + 1] - s->first[l]; j++) {
			srv_aggregate_node(s, l, j);
		}
	}
	double div = srv_edge_mean(s);
	s->view = s->root_done ? s->global : s->avg;
	srv_metric(s, "edge_divergence", div);
	srv_metric(s, "root_aggregated", s->root_done);
}

static void
srv_evaluate(fmi_server *s, fmi_round_metrics *m)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t every = cfg->eval_every ? cfg->eval_every : 1;
	fmi_eval ev;
	if (cfg->test == NULL || (s->round % every != 0 && s->round != cfg->rounds)) {
		return;
	}
	if (fmi_evaluate(s->eval, s->view, cfg->test, NULL, 0, &ev) == FM_OK) {
		m->accuracy = ev.accuracy;
		m->loss = ev.loss;
		m->evaluated = 1;
	}
	if (s->asr != NULL &&
	    fmi_evaluate(s->eval, s->view, s->asr, NULL, 0, &ev) == FM_OK) {
		srv_metric(s, "attack_success", ev.accuracy);
	}
}

/* The round's per-client detail, from its slots. */
static int
srv_detail(fmi_server *s, fmi_round_metrics *m)
{
	const uint8_t *adv = s->cfg->attack != NULL ? s->cfg->adversarial
	                                           : NULL;
	m->clients = malloc(FMI_MAX(s->nslots, 1) * sizeof *m->clients);
	if (m->clients == NULL) {
		return FM_ENOMEM;
	}
	m->nclients = s->nslots;
	for (uint32_t i = 0; i < s->nslots; i++) {
		const srv_slot *slot = &s->slots[i];
		fmi_client_detail *d = &m->clients[i];
		d->client = slot->client + 1;
		d->status = slot->status ? slot->status : FMI_CLIENT_DROPPED;
		d->examples = slot->ne;
		d->loss = slot->loss;
		d->norm = slot->norm;
		d->adversary = adv != NULL && adv[slot->client] != 0;
	}
	return FM_OK;
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
	int rv = srv_begin_round(s, picked);
	if (rv == FM_OK) {
		srv_collect(s);
		srv_aggregate(s);
		srv_hier_round(s);
	}
	srv_end_round(s); /* and the stragglers */
	if (rv == FM_OK && s->cfg->client_detail) {
		rv = srv_detail(s, m);
	}
	if (rv != FM_OK) {
		return rv;
	}
	m->train_loss = s->ne_sum ? s->loss_sum / (double)s->ne_sum : NAN;
	srv_evaluate(s, m);
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
	int rv = fmi_checkpoint_read(cfg->checkpoint, cfg->seed, s->global,
	    s->dim, res->rounds, cfg->rounds, &n, err);
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

static int
srv_loop(fmi_server *s, fmi_fed_result *res, uint32_t start, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t *picked = malloc(cfg->clients_per_round * sizeof *picked);
	int rv = picked ? FM_OK : FM_ENOMEM;

	for (uint32_t r = start; r <= cfg->rounds && rv == FM_OK; r++) {
		s->round = r;
		fmi_round_metrics *m = &res->rounds[r - 1];
		rv = srv_round(s, picked, m);
		if (rv != FM_OK) {
			fm_error_set(err, rv, "round %u failed: %s", r,
			    fm_strerror(rv));
			break;
		}
		res->nrounds = r;
		if (cfg->checkpoint != NULL) {
			rv = fmi_checkpoint_write(cfg->checkpoint, cfg->seed,
			    s->global, s->dim, res->rounds, r, err);
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
	if (rv == FM_OK && start <= cfg->rounds) {
		rv = srv_wait_hosts(&s, err);
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
