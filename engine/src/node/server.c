/* SPDX-License-Identifier: MIT */
/* server.c: the star server: sample, broadcast, collect, aggregate, evaluate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/node.h"

typedef struct srv_job {
	size_t size;
	uint32_t slot;
} srv_job;

/* One sampled client's slot in the round. */
typedef struct srv_slot {
	uint32_t client; /* partition index; node id is client + 1 */
	uint32_t host;
	int state;       /* 0 waiting, 1 arrived, 2 fed, 3 unreachable */
	fmi_rmsg msg;
} srv_slot;

typedef struct fmi_server {
	const fmi_fed_cfg *cfg;
	fmi_tran *t;
	const fmi_server_hosts *hosts;
	fmi_agg *agg;
	fmi_trainer *eval;
	float *global;
	float *scratch; /* previous global; unaligned payloads */
	size_t dim;
	uint32_t round;
	srv_slot *slots;
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
} fmi_server;

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

static int
srv_plugin_send(void *node, const char *comp, int32_t to, const void *data,
    size_t len)
{
	fmi_server *s = node;
	if (to < 1 || (uint32_t)to > s->cfg->part->nclients ||
	    s->order[to - 1] == 0) {
		return FM_ENOENT; /* not in this round */
	}
	srv_slot *slot = &s->slots[s->order[to - 1] - 1];
	fmi_msg m;
	srv_msg(s, &m, FMI_MSG_PLUGIN, to);
	fmi_strlcpy(m.plugin, comp, sizeof m.plugin);
	m.n = len;
	return fmi_tran_send_bytes(s->t, s->hosts->names[slot->host], &m, data,
	    len);
}

static int
srv_plugin_timer(void *node, const char *comp, uint32_t ms, uint64_t tag)
{
	fmi_server *s = node;
	(void)comp;
	return fmi_timers_add(&s->timers, s->agg, ms, tag);
}

static void
srv_plugin_metric(void *node, const char *name, double value)
{
	fmi_server *s = node;
	fmi_round_metrics *m = s->m;
	if (m == NULL) {
		return;
	}
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

/* ---- setup ------------------------------------------------------------ */

static int
srv_open(fmi_server *s, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	fmi_node_link link = { s, srv_plugin_send, srv_plugin_timer,
		srv_plugin_metric };
	s->dim = cfg->arch.nparams;
	s->global = malloc(s->dim * sizeof(float));
	s->scratch = malloc(s->dim * sizeof(float));
	s->slots = calloc(cfg->clients_per_round, sizeof *s->slots);
	s->order = calloc(cfg->part->nclients, sizeof *s->order);
	s->ids = calloc(cfg->clients_per_round, sizeof *s->ids);
	s->load = calloc(s->hosts->n, sizeof *s->load);
	s->jobs = calloc(cfg->clients_per_round, sizeof *s->jobs);
	s->heard = calloc(s->hosts->n, sizeof *s->heard);
	if (!s->global || !s->scratch || !s->slots || !s->order || !s->ids ||
	    !s->load || !s->jobs || !s->heard ||
	    fmi_trainer_new(&s->eval, &cfg->arch, 1024) != FM_OK) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for a model "
		    "of %zu parameters", s->dim);
	}
	fm_rng r;
	fmi_rng_seed(&r, cfg->seed, 0x696e6974); /* "init" */
	fmi_arch_init_params(&cfg->arch, s->global, &r);
	return fmi_agg_open(&s->agg, cfg->aggregator, cfg->agg_params, s->dim,
	    FM_ROLE_SERVER, FM_NODE_SERVER, fmi_hash64(cfg->seed + 1), &link,
	    err);
}

static void
srv_close(fmi_server *s)
{
	fmi_agg_close(s->agg);
	fmi_trainer_free(s->eval);
	free(s->global);
	free(s->scratch);
	free(s->slots);
	free(s->order);
	free(s->ids);
	free(s->load);
	free(s->jobs);
	free(s->heard);
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

/* ---- sampling and dispatch --------------------------------------------- */

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Samples clients_per_round distinct clients, ascending. */
static int
srv_sample(fmi_server *s, uint32_t *picked)
{
	uint32_t n = s->cfg->part->nclients, k = s->cfg->clients_per_round;
	uint32_t *all = malloc(n * sizeof *all);
	fm_rng r;
	if (all == NULL) {
		return FM_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		all[i] = i;
	}
	fmi_rng_seed(&r, s->cfg->seed, 0x73616d706c65ULL ^ s->round);
	for (uint32_t i = 0; i < k; i++) { /* partial Fisher-Yates */
		uint32_t j = i + (uint32_t)fmi_rng_below(&r, n - i);
		uint32_t tmp = all[i];
		all[i] = all[j];
		all[j] = tmp;
	}
	memcpy(picked, all, k * sizeof *picked);
	free(all);
	qsort(picked, k, sizeof *picked, cmp_u32);
	return FM_OK;
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

static int
srv_broadcast(fmi_server *s)
{
	fmi_payload *p = fmi_payload_new(s->dim * sizeof(float));
	if (p == NULL) {
		return FM_ENOMEM;
	}
	memcpy(p->data, s->global, p->len);
	fmi_f32_to_le(p->data, s->dim);
	const fmi_local_cfg *lc = &s->cfg->local;
	int rv = FM_OK;
	for (uint32_t i = 0; i < s->nslots && rv == FM_OK; i++) {
		fmi_msg m;
		uint32_t c = s->slots[i].client;
		srv_msg(s, &m, FMI_MSG_TRAIN, (int32_t)c + 1);
		m.epochs = lc->epochs;
		m.batch = lc->batch;
		m.lr = lc->opt.lr;
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
			s->waiting--;
			continue;
		}
		rv = fmi_tran_send(s->t, s->hosts->names[h], &m, p);
		if (rv == FM_ENOENT) { /* host not connected: a dropout */
			fm_log(FM_LOG_WARN, "FM-DROPOUT", "round %u: client %u: "
			    "its host %s is not connected", s->round, c + 1,
			    s->hosts->names[s->slots[i].host]);
			s->slots[i].state = 3;
			s->waiting--;
			rv = FM_OK;
		}
	}
	fmi_payload_unref(p);
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
	for (uint32_t i = 0; i < s->nslots; i++) {
		memset(&s->slots[i], 0, sizeof s->slots[i]);
		s->slots[i].client = picked[i];
		s->order[picked[i]] = i + 1;
	}
	srv_assign_hosts(s);
	rv = srv_broadcast(s);
	if (rv != FM_OK) {
		return rv;
	}
	for (uint32_t i = 0; i < s->nslots; i++) {
		s->ids[i] = (int32_t)picked[i] + 1;
	}
	fm_round r = { s->round, s->nslots, s->ids, s->global, s->dim };
	return s->agg->ops->a_begin(s->agg->h.state, &r);
}

/* ---- collecting updates ------------------------------------------------- */

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
	fm_update u = { m->from, m->round, delta, s->dim, m->num_examples,
		m->loss };
	int rv = s->agg->ops->a_accept(s->agg->h.state, &u);
	if (rv == FM_OK) {
		s->ne_sum += m->num_examples;
		s->loss_sum += m->loss * (double)m->num_examples;
		s->m->updates++;
	} else {
		fm_log(FM_LOG_WARN, "FM-AGG", "aggregator %s refused the update "
		    "of client %d: %s", s->agg->h.comp->desc->name, m->from,
		    fm_strerror(rv));
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
			if (slot->state == 0) {
				fm_log(FM_LOG_WARN, "FM-DROPOUT", "round %u: client "
				    "%u sent no update before the deadline",
				    s->round, slot->client + 1);
			}
		}
		s->next++;
	}
}

/* Why an update cannot be used, or NULL. Content first (round, size,
 * finiteness), then who sent it. */
static const char *
srv_reject(fmi_server *s, fmi_rmsg *r, char *why, size_t n)
{
	fm_error e;
	const fmi_msg *m = &r->m;
	int32_t c = m->from - 1;
	if (m->round != s->round) {
		snprintf(why, n, "it is for round %u during round %u (stale or "
		    "replayed)", m->round, s->round);
		return "FM-ROUND";
	}
	if (fmi_msg_check_tensor(m, fmi_rmsg_data(r), fmi_rmsg_len(r), s->dim,
	        &e) != FM_OK) {
		snprintf(why, n, "%s", e.msg);
		return "FM-UPDATE";
	}
	if (c < 0 || (uint32_t)c >= s->cfg->part->nclients || s->order[c] == 0) {
		snprintf(why, n, "client %d was not sampled", m->from);
		return "FM-SENDER";
	}
	const srv_slot *slot = &s->slots[s->order[c] - 1];
	if (strcmp(r->peer, s->hosts->names[slot->host]) != 0) {
		snprintf(why, n, "it came from '%s', but the client was sent to "
		    "'%s'", r->peer, s->hosts->names[slot->host]);
		return "FM-SENDER";
	}
	if (slot->state != 0) {
		snprintf(why, n, "the client already answered");
		return "FM-SENDER";
	}
	return NULL;
}

static void
srv_on_update(fmi_server *s, fmi_rmsg *r)
{
	char why[512];
	const char *id = srv_reject(s, r, why, sizeof why);
	if (id != NULL) {
		fm_log(FM_LOG_WARN, id, "dropped update of client %d from '%s': "
		    "%s", r->m.from, r->peer, why);
		fmi_rmsg_close(r);
		return;
	}
	srv_slot *slot = &s->slots[s->order[r->m.from - 1] - 1];
	slot->msg = *r; /* takes the payload */
	r->has_payload = 0;
	slot->state = 1;
	s->waiting--;
	srv_flush(s, 0);
}

static void
srv_on_plugin(fmi_server *s, fmi_rmsg *r)
{
	const fm_aggregator_ops *ops = s->agg->ops;
	if (strcmp(r->m.plugin, s->agg->h.comp->desc->name) != 0 ||
	    ops->a_on_message == NULL || r->m.round != s->round) {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-MSG", "dropped message for "
		    "plugin '%s' from node %d", r->m.plugin, r->m.from);
	} else {
		fm_message msg = { r->m.from, r->m.round, fmi_rmsg_data(r),
			fmi_rmsg_len(r) };
		(void)ops->a_on_message(s->agg->h.state, &msg);
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
	for (uint32_t i = 0; i < s->nslots; i++) {
		fmi_rmsg_close(&s->slots[i].msg);
		s->order[s->slots[i].client] = 0;
	}
}

static void
srv_aggregate(fmi_server *s)
{
	uint32_t quorum = s->cfg->min_updates ? s->cfg->min_updates : s->nslots;
	memcpy(s->scratch, s->global, s->dim * sizeof(float));
	int rv = s->agg->ops->a_finish(s->agg->h.state, s->global, s->dim);
	if (rv == FM_OK && s->m->updates < quorum) {
		fm_log(FM_LOG_WARN, "FM-QUORUM", "round %u: %u updates, quorum "
		    "is %u; global model kept", s->round, s->m->updates, quorum);
		rv = FM_ETIMEDOUT;
	} else if (rv == FM_OK && !fmi_all_finite(s->global, s->dim)) {
		fm_log(FM_LOG_ERR, "FM-AGG", "round %u: aggregate is not finite;"
		    " global model kept", s->round);
		rv = FM_ERANGE;
	} else if (rv != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-AGG", "round %u: aggregator failed: %s",
		    s->round, fm_strerror(rv));
	}
	if (rv != FM_OK) {
		memcpy(s->global, s->scratch, s->dim * sizeof(float));
	}
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
	if (fmi_evaluate(s->eval, s->global, cfg->test, NULL, 0, &ev) == FM_OK) {
		m->accuracy = ev.accuracy;
		m->loss = ev.loss;
		m->evaluated = 1;
	}
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
	s->m = m;
	int rv = srv_begin_round(s, picked);
	if (rv == FM_OK) {
		srv_collect(s);
		srv_aggregate(s);
	}
	srv_end_round(s);
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
	if (rv == FM_OK) {
		rv = srv_loop(&s, res, start, err);
	}
	for (uint32_t i = 0; i < hosts->n; i++) {
		fmi_msg m;
		srv_msg(&s, &m, FMI_MSG_SHUTDOWN, -1);
		(void)fmi_tran_send(t, hosts->names[i], &m, NULL);
	}
	res->seconds = fmi_now() - t0;
	res->params = s.global;
	res->nparams = s.dim;
	s.global = NULL;
	srv_close(&s);
	return rv;
}
