/* SPDX-License-Identifier: MIT */
/*
 * server_tree.c: the root of a hierarchy deployed as a tree of processes.
 *
 * The edge aggregators are processes (edge.c) that their client hosts
 * dial; this server drives the round clock and runs the levels above the
 * edges (server_hierarchy.c), each edge being a node whose model is the
 * root's copy of the edge's. One round:
 *   1. the root samples the round's clients (srv_sample, as in any run)
 *      and sends every edge it can reach an EDGE_ROUND: its sampled
 *      clients with the round's simulated faults, the local learning rate
 *      and the aggregators' lr scale, and the root's copy of the edge's
 *      model when the edge needs it (round 1, after the level above copied
 *      a model down, after the edge (re)joined or lost a round);
 *   2. each edge runs its clients' round as a star server does and
 *      answers EDGE_COLLECTED: how many updates entered its pipeline;
 *   3. the root decides the quorum over the whole tree, as the
 *      simulation does (min_updates counts every update of the round),
 *      and sends each edge that answered an EDGE_VERDICT;
 *   4. each edge aggregates (or keeps its model), ends its clients' round
 *      (stragglers) and answers EDGE_RESULT: every client's outcome, its
 *      statistics, the metrics its plugins set, and its model if it moved;
 *   5. the root applies the results in edge order, exactly as the
 *      simulation's srv_aggregate would (counts, losses and metrics in
 *      the same order), then the levels above aggregate.
 * An edge that does not answer within round_timeout + edge_timeout is out
 * of the round (its clients count as dropped, FM-EDGE); it is sent no
 * round until it is heard from again (a heartbeat, a late answer or a
 * HELLO after a restart), and then gets the root's copy of its model.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"

/* Metrics an edge reports per round: FMI_MAX_EXTRA_METRICS per phase. */
#define TREE_METRICS (3 * FMI_MAX_EXTRA_METRICS)

enum { TE_OUT = 0, TE_SENT = 1, TE_COLLECTED = 2, TE_DONE = 3 };

typedef struct tree_edge {
	uint32_t node;    /* its index in s->nodes */
	int lost;         /* missed a round: sent none until heard from */
	int needs_model;  /* the next EDGE_ROUND carries the root's copy */
	int carried;      /* this round's EDGE_ROUND carried it */
	int state;        /* TE_*, this round */
	uint32_t upd;     /* updates it collected */
	uint32_t nx;
	fmi_edge_metric x[TREE_METRICS];
	uint8_t fin, held, dr, dc;
	uint32_t fed, rej, ra;
	char why[FMI_EDGE_WHY + 1];
} tree_edge;

typedef struct srv_tree {
	tree_edge *e;
	uint32_t n;            /* edges */
	uint32_t cap;          /* most sampled clients of one edge */
	fmi_edge_client *rc;   /* [clients_per_round] the results, by slot */
	fmi_edge_client *body; /* [cap] a body being built or decoded */
	double edge_timeout;
	int verdict_sent, ok;
} srv_tree;

static tree_edge *
tree_edge_of_slot(fmi_server *s, const srv_slot *slot)
{
	return &s->tree->e[slot->edge - s->first[s->levels - 1]];
}

static const char *
tree_name(const fmi_server *s, uint32_t k)
{
	return s->hosts->names[k];
}

int
srv_tree_open(fmi_server *s, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t e0 = s->levels > 1 ? s->first[s->levels - 1] : 0;
	if (s->levels < 2) {
		return fm_error_set(err, FM_EINVAL, "deploy.edges: a star (or a "
		    "one-level hierarchy) has no edge aggregators below the "
		    "server; remove deploy.edges");
	}
	if (s->nnodes - e0 != s->hosts->n) {
		return fm_error_set(err, FM_EINVAL, "deploy.edges lists %u edge "
		    "aggregators, but the hierarchy has %u", s->hosts->n,
		    s->nnodes - e0);
	}
	srv_tree *t = calloc(1, sizeof *t);
	if (t == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	s->tree = t;
	t->n = s->hosts->n;
	t->cap = FMI_MIN(cfg->clients_per_round, s->fan[s->levels - 1]);
	t->e = calloc(t->n, sizeof *t->e);
	t->rc = calloc(cfg->clients_per_round, sizeof *t->rc);
	t->body = calloc(FMI_MAX(t->cap, 1), sizeof *t->body);
	if (t->e == NULL || t->rc == NULL || t->body == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for %u edges",
		    t->n);
	}
	for (uint32_t k = 0; k < t->n; k++) {
		t->e[k].node = e0 + k;
		t->e[k].needs_model = 1;
	}
	t->edge_timeout = s->hosts->edge_timeout > 0 ? s->hosts->edge_timeout
	                                             : 10;
	return FM_OK;
}

void
srv_tree_close(fmi_server *s)
{
	srv_tree *t = s->tree;
	if (t != NULL) {
		free(t->e);
		free(t->rc);
		free(t->body);
		free(t);
		s->tree = NULL;
	}
}

/* Waits until every edge has said something, or the join timeout (plus
 * edge_timeout: an edge says hello once its own client hosts joined)
 * passed with at least one. */
int
srv_tree_wait(fmi_server *s, fm_error *err)
{
	srv_tree *t = s->tree;
	uint32_t seen = 0;
	char *got = calloc(t->n, 1);
	double tmo = (s->hosts->join_timeout > 0 ? s->hosts->join_timeout
	                                         : 30) + t->edge_timeout;
	double deadline = fmi_now() + tmo;
	while (got != NULL && seen < t->n && fmi_now() < deadline) {
		fmi_rmsg r;
		if (fmi_tran_recv(s->t, &r, 100, NULL) != FM_OK) {
			continue;
		}
		int k = srv_host_index(s, r.peer);
		if (k < 0) {
			fm_log(FM_LOG_WARN, "FM-SENDER", "ignored %s message from "
			    "'%s': not an edge aggregator of this federation",
			    fmi_msg_type_name(r.m.type), r.peer);
		} else {
			s->heard[k] = fmi_now();
			if (!got[k]) {
				got[k] = 1;
				seen++;
				fm_log(FM_LOG_INFO, "FM-JOIN", "edge %s joined (%u of "
				    "%u)", r.peer, seen, t->n);
			}
		}
		fmi_rmsg_close(&r);
	}
	free(got);
	if (seen == 0) {
		return fm_error_set(err, FM_ETIMEDOUT, "no edge aggregator joined "
		    "within %.0f s; are the edges running and pointed at this "
		    "server (deploy.server)?", tmo);
	}
	if (seen < t->n) {
		fm_log(FM_LOG_WARN, "FM-JOIN", "starting with %u of %u edges; the "
		    "others can join later", seen, t->n);
	}
	return FM_OK;
}

/* ---- messages from the edges ------------------------------------------- */

static void
tree_on_collected(fmi_server *s, uint32_t k, const fmi_rmsg *r)
{
	tree_edge *te = &s->tree->e[k];
	const srv_agg *n = &s->nodes[te->node];
	if (r->m.round != s->round || te->state != TE_SENT) {
		fm_log(FM_LOG_WARN, "FM-ROUND", "dropped edge_collected of round "
		    "%u from edge %s during round %u (stale, or not asked for)",
		    r->m.round, r->peer, s->round);
		return;
	}
	if (r->m.updates > n->nsampled) {
		fm_log(FM_LOG_WARN, "FM-EDGE", "dropped edge_collected from edge "
		    "%s: %u updates of %u sampled clients", r->peer,
		    r->m.updates, n->nsampled);
		return;
	}
	te->upd = r->m.updates;
	te->state = TE_COLLECTED;
	if (te->carried) {
		te->needs_model = 0; /* it started this round from it */
	}
}

/* Why edge k's result body b (model: its floats, or NULL) cannot be
 * this round's, or NULL. */
static const char *
tree_result_why(fmi_server *s, uint32_t k, const fmi_edge_body *b,
    const void *model, char *why, size_t len)
{
	const tree_edge *te = &s->tree->e[k];
	const srv_agg *n = &s->nodes[te->node];
	uint32_t counted = 0;
	if (b->nclients != n->nsampled) {
		snprintf(why, len, "it reports %u clients, %u were sampled",
		    b->nclients, n->nsampled);
		return why;
	}
	for (uint32_t i = 0; i < b->nclients; i++) {
		const srv_slot *slot = &s->slots[n->slot0 + i];
		if (b->clients[i].client != (int32_t)slot->client + 1) {
			snprintf(why, len, "its client #%u is %d, not %u", i + 1,
			    b->clients[i].client, slot->client + 1);
			return why;
		}
		counted += b->clients[i].counted;
	}
	if (counted != te->upd) {
		snprintf(why, len, "it counts %u updates, it collected %u",
		    counted, te->upd);
		return why;
	}
	if ((model != NULL) != (b->finished != 0)) {
		snprintf(why, len, "its model %s, but it says it %s",
		    model ? "came" : "is missing", b->finished ? "moved" :
		    "did not move");
		return why;
	}
	if (b->finished && !s->tree->ok) {
		snprintf(why, len, "it aggregated though the round missed its "
		    "quorum");
		return why;
	}
	return NULL;
}

static void
tree_on_result(fmi_server *s, uint32_t k, fmi_rmsg *r)
{
	srv_tree *t = s->tree;
	tree_edge *te = &t->e[k];
	srv_agg *n = &s->nodes[te->node];
	const void *model, *body;
	char why[320];
	fm_error e = { 0, "" };
	if (r->m.round != s->round || te->state != TE_COLLECTED ||
	    !t->verdict_sent) {
		fm_log(FM_LOG_WARN, "FM-ROUND", "dropped edge_result of round %u "
		    "from edge %s during round %u (stale, or before the "
		    "verdict)", r->m.round, r->peer, s->round);
		return;
	}
	fmi_edge_body b = { t->body, 0, n->nsampled, te->x, 0, TREE_METRICS,
		0, 0, 0, 0, 0, 0, 0, "" };
	int rv = fmi_edge_payload(&r->m, fmi_rmsg_data(r), fmi_rmsg_len(r),
	    s->dim, &model, &body, &e);
	if (rv == FM_OK) {
		rv = fmi_edge_body_decode(FMI_MSG_EDGE_RESULT, body, r->m.body,
		    &b, &e);
	}
	if (rv != FM_OK) {
		fm_log(FM_LOG_WARN, "FM-WIRE", "dropped edge_result from edge "
		    "%s: %s", r->peer, e.msg);
		return;
	}
	if (tree_result_why(s, k, &b, model, why, sizeof why) != NULL) {
		fm_log(FM_LOG_WARN, "FM-EDGE", "dropped edge_result of round %u "
		    "from edge %s: %s", s->round, r->peer, why);
		te->nx = 0;
		return;
	}
	memcpy(t->rc + n->slot0, b.clients, b.nclients * sizeof *b.clients);
	te->nx = b.nmetrics;
	te->fin = b.finished;
	te->held = b.held;
	te->dr = b.def_ran;
	te->dc = b.def_combined;
	te->fed = b.fed;
	te->rej = b.rejected;
	te->ra = b.rejected_adv;
	memcpy(te->why, b.why, sizeof te->why);
	if (model != NULL) { /* the edge's model, as it is now */
		memcpy(n->model, model, s->dim * sizeof(float));
		fmi_f32_from_le(n->model, s->dim);
	}
	te->state = TE_DONE;
}

static void
tree_dispatch(fmi_server *s, fmi_rmsg *r)
{
	int k = srv_host_index(s, r->peer);
	if (k < 0) {
		fm_log(FM_LOG_WARN, "FM-SENDER", "ignored %s message from '%s': "
		    "not an edge aggregator of this federation",
		    fmi_msg_type_name(r->m.type), r->peer);
		fmi_rmsg_close(r);
		return;
	}
	tree_edge *te = &s->tree->e[k];
	int32_t id = s->nodes[te->node].id;
	s->heard[k] = fmi_now();
	if (r->m.type == FMI_MSG_HELLO) {
		fm_log(FM_LOG_INFO, "FM-JOIN", "edge %s joined; it gets its "
		    "model with its next round", r->peer);
		if (te->state == TE_SENT || te->state == TE_COLLECTED) {
			uint32_t n = s->nodes[te->node].nsampled;
			fm_log(FM_LOG_WARN, "FM-EDGE", "round %u: edge %s restarted "
			    "mid-round; its %u sampled client%s drop out",
			    s->round, r->peer, n, n == 1 ? "" : "s");
			te->state = TE_OUT;
		}
		te->lost = 0;
		te->needs_model = 1;
		fmi_rmsg_close(r);
		return;
	}
	if (te->lost) {
		fm_log(FM_LOG_INFO, "FM-EDGE", "edge %s is back; it rejoins with "
		    "the next round", r->peer);
		te->lost = 0;
		te->needs_model = 1;
	}
	if (r->m.type != FMI_MSG_HEARTBEAT && r->m.from != id) {
		fm_log(FM_LOG_WARN, "FM-SENDER", "dropped %s message from edge "
		    "%s: it claims to be node %d, the edge is node %d",
		    fmi_msg_type_name(r->m.type), r->peer, r->m.from, id);
		fmi_rmsg_close(r);
		return;
	}
	switch (r->m.type) {
	case FMI_MSG_HEARTBEAT:
		break;
	case FMI_MSG_EDGE_COLLECTED:
		tree_on_collected(s, (uint32_t)k, r);
		break;
	case FMI_MSG_EDGE_RESULT:
		tree_on_result(s, (uint32_t)k, r);
		break;
	default:
		fm_log(FM_LOG_WARN, "FM-WIRE", "server: unexpected %s message "
		    "from edge %s", fmi_msg_type_name(r->m.type), r->peer);
	}
	fmi_rmsg_close(r);
}

/* Takes what is queued, without waiting (heartbeats of idle edges). */
static void
tree_drain(fmi_server *s)
{
	for (;;) {
		fmi_rmsg r;
		int rv = fmi_tran_recv(s->t, &r, 0, NULL);
		if (rv == FM_OK) {
			tree_dispatch(s, &r);
		} else if (rv != FM_EPROTO && rv != FM_EVERSION) {
			return;
		}
	}
}

static uint32_t
tree_count(const fmi_server *s, int state)
{
	uint32_t n = 0;
	for (uint32_t k = 0; k < s->tree->n; k++) {
		n += s->tree->e[k].state == state;
	}
	return n;
}

/* Edge k is out of this round and of the next ones until heard from. */
static void
tree_lose(fmi_server *s, uint32_t k, const char *fmt, ...) FM_PRINTF(3, 4);
static void
tree_lose(fmi_server *s, uint32_t k, const char *fmt, ...)
{
	tree_edge *te = &s->tree->e[k];
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	fm_log(FM_LOG_WARN, "FM-EDGE", "round %u: edge %s %s; its %u sampled "
	    "client%s drop out", s->round, tree_name(s, k), why,
	    s->nodes[te->node].nsampled,
	    s->nodes[te->node].nsampled == 1 ? "" : "s");
	te->state = TE_OUT;
	te->lost = 1;
	te->needs_model = 1;
}

/* Waits until no edge is in state, or the deadline; those still in it
 * are out of the round. */
static void
tree_wait(fmi_server *s, int state, double deadline, const char *what)
{
	while (tree_count(s, state) > 0) {
		double left = deadline - fmi_now();
		if (left <= 0) {
			break;
		}
		int wait = fmi_timers_wait_ms(&s->timers, (int)(left * 1000) + 1);
		fmi_rmsg r;
		if (fmi_tran_recv(s->t, &r, wait, NULL) == FM_OK) {
			tree_dispatch(s, &r);
		}
		fmi_timers_fire(&s->timers);
	}
	for (uint32_t k = 0; k < s->tree->n; k++) {
		if (s->tree->e[k].state == state) {
			tree_lose(s, k, "sent no %s by the deadline", what);
		}
	}
}

/* Edge k's EDGE_ROUND: its clients and faults, and its model when it
 * needs one. */
static int
tree_send_round(fmi_server *s, uint32_t k)
{
	srv_tree *t = s->tree;
	tree_edge *te = &t->e[k];
	const srv_agg *n = &s->nodes[te->node];
	for (uint32_t i = 0; i < n->nsampled; i++) {
		const srv_slot *slot = &s->slots[n->slot0 + i];
		t->body[i] = (fmi_edge_client){ (int32_t)slot->client + 1,
			slot->fault, 0, 0, 0, NAN, NAN };
	}
	fmi_edge_body b = { t->body, n->nsampled, t->cap, NULL, 0, 0, 0, 0, 0,
		0, 0, 0, 0, "" };
	size_t nf = te->needs_model ? s->dim : 0, blen = 0;
	size_t bound = fmi_edge_body_bound(FMI_MSG_EDGE_ROUND, n->nsampled, 0);
	fmi_payload *p = fmi_payload_new(nf * sizeof(float) + bound);
	if (p == NULL) {
		return FM_ENOMEM;
	}
	memcpy(p->data, n->model, nf * sizeof(float));
	fmi_f32_to_le(p->data, nf);
	int rv = fmi_edge_body_encode(FMI_MSG_EDGE_ROUND, &b,
	    (char *)p->data + nf * sizeof(float), bound, &blen);
	if (rv == FM_OK) {
		fmi_msg m;
		p->len = nf * sizeof(float) + blen;
		srv_msg(s, &m, FMI_MSG_EDGE_ROUND, n->id);
		m.lr = s->lr;
		m.lr_scale = s->lr_scale;
		m.n = nf;
		m.body = blen;
		rv = fmi_tran_send(s->t, tree_name(s, k), &m, p);
	}
	fmi_payload_unref(p);
	return rv;
}

/* The round's EDGE_ROUNDs, to every edge that is not out. */
static int
tree_send_rounds(fmi_server *s)
{
	srv_tree *t = s->tree;
	tree_drain(s); /* heartbeats that came meanwhile */
	t->verdict_sent = 0;
	for (uint32_t k = 0; k < t->n; k++) {
		tree_edge *te = &t->e[k];
		te->state = TE_OUT;
		te->upd = te->nx = 0;
		te->fin = te->held = te->dr = te->dc = 0;
		te->fed = te->rej = te->ra = 0;
		te->why[0] = '\0';
		double quiet = fmi_now() - s->heard[k];
		if (te->lost) {
			tree_lose(s, k, "has been out since an earlier round");
			continue;
		}
		if (s->hosts->silent_timeout > 0 &&
		    quiet > s->hosts->silent_timeout) {
			tree_lose(s, k, "has been silent for %.1f s", quiet);
			continue;
		}
		int rv = tree_send_round(s, k);
		if (rv == FM_ENOMEM) {
			return rv;
		}
		if (rv != FM_OK) {
			tree_lose(s, k, "is not connected (%s)", fm_strerror(rv));
			continue;
		}
		te->state = TE_SENT;
		te->carried = te->needs_model;
	}
	return FM_OK;
}

/* The quorum over the whole tree; each edge that collected hears it. */
static void
tree_verdict(fmi_server *s)
{
	srv_tree *t = s->tree;
	uint32_t quorum = s->cfg->min_updates ? s->cfg->min_updates : s->nslots;
	uint32_t total = 0;
	for (uint32_t k = 0; k < t->n; k++) {
		total += t->e[k].state == TE_COLLECTED ? t->e[k].upd : 0;
	}
	t->ok = total >= quorum;
	if (!t->ok) {
		fm_log(FM_LOG_WARN, "FM-QUORUM", "round %u: %u updates, quorum "
		    "is %u; edge models kept", s->round, total, quorum);
		srv_why(s, "%u updates arrived, the quorum (min_updates) is %u",
		    total, quorum);
	}
	for (uint32_t k = 0; k < t->n; k++) {
		if (t->e[k].state != TE_COLLECTED) {
			continue;
		}
		fmi_msg m;
		srv_msg(s, &m, FMI_MSG_EDGE_VERDICT, s->nodes[t->e[k].node].id);
		m.ok = (uint32_t)t->ok;
		if (fmi_tran_send(s->t, tree_name(s, k), &m, NULL) != FM_OK) {
			tree_lose(s, k, "could not be sent the verdict");
		}
	}
	t->verdict_sent = 1;
}

/* The results, in edge order, as the simulation's srv_aggregate makes
 * them: per-client outcome and counts in sampled order, then the metrics
 * the edges' plugins set (every edge's begin, then collecting, then
 * aggregating), then per edge what its pipeline did. */
static void
tree_apply(fmi_server *s)
{
	srv_tree *t = s->tree;
	fmi_round_metrics *m = s->m;
	for (uint32_t i = 0; i < s->nslots; i++) {
		srv_slot *slot = &s->slots[i];
		srv_agg *n = &s->nodes[slot->edge];
		const fmi_edge_client *c = &t->rc[i];
		if (tree_edge_of_slot(s, slot)->state != TE_DONE) {
			slot->status = FMI_CLIENT_DROPPED;
			slot->ne = 0;
			slot->loss = slot->norm = NAN;
		} else {
			slot->status = c->status;
			slot->ne = c->examples;
			slot->loss = c->loss;
			slot->norm = c->norm;
		}
		if (tree_edge_of_slot(s, slot)->state == TE_DONE && c->counted) {
			m->updates++;
			s->ne_sum += c->examples;
			s->loss_sum += c->loss * (double)c->examples;
			n->rne += c->examples;
			n->rloss += c->loss * (double)c->examples;
		}
		m->dropped += slot->status == FMI_CLIENT_DROPPED;
		m->stragglers += slot->status == FMI_CLIENT_STRAGGLER;
	}
	for (uint8_t phase = 0; phase < 3; phase++) {
		for (uint32_t k = 0; k < t->n; k++) {
			const tree_edge *te = &t->e[k];
			for (uint32_t j = 0; te->state == TE_DONE && j < te->nx;
			    j++) {
				if (te->x[j].phase == phase) {
					srv_metric(s, te->x[j].name, te->x[j].value);
				}
			}
		}
	}
	s->fed = 0;
	for (uint32_t k = 0; k < t->n; k++) {
		const tree_edge *te = &t->e[k];
		if (te->state != TE_DONE) {
			continue;
		}
		s->fed += te->fed;
		s->def_ran |= te->dr;
		s->def_combined |= te->dc;
		s->def_rej += te->rej;
		s->def_rej_adv += te->ra;
		if (te->why[0] != '\0') {
			srv_why(s, "edge %s: %s", tree_name(s, k), te->why);
		}
		if (te->fin) {
			srv_credit(s, te->node);
			m->aggregated |= te->held ? s->fed > 0 : m->updates > 0;
		}
	}
	srv_defence_metrics(s);
}

/* A round of the tree: the root's part of steps 1 to 5 above. */
int
srv_tree_round(fmi_server *s, uint32_t *picked)
{
	srv_tree *t = s->tree;
	int rv = srv_sample(s, picked);
	if (rv != FM_OK) {
		return rv;
	}
	if (srv_round_counters(s) != FM_OK) {
		return FM_ENOMEM;
	}
	for (uint32_t i = 0; i < s->nslots; i++) {
		srv_slot *slot = &s->slots[i];
		memset(slot, 0, sizeof *slot);
		slot->loss = slot->norm = NAN;
		slot->fault = s->plan != NULL ? s->plan[i] : FMI_FAULT_NONE;
		slot->client = picked[i];
		slot->edge = srv_edge_of(s, picked[i]);
		s->order[picked[i]] = i + 1;
		s->ids[i] = (int32_t)picked[i] + 1;
		srv_agg *n = &s->nodes[slot->edge];
		if (n->nsampled++ == 0) { /* picked is ascending */
			n->slot0 = i;
		}
	}
	rv = tree_send_rounds(s);
	if (rv != FM_OK) {
		return rv;
	}
	double tmo = (s->cfg->round_timeout_ms ? s->cfg->round_timeout_ms
	                                       : 3600 * 1000) / 1000.0;
	double deadline = fmi_now() + tmo + t->edge_timeout;
	tree_wait(s, TE_SENT, deadline, "edge_collected");
	tree_verdict(s);
	tree_wait(s, TE_COLLECTED, FMI_MAX(deadline, fmi_now() +
	    t->edge_timeout), "edge_result");
	tree_apply(s);
	return FM_OK;
}

/* After the levels above: a model copied down reaches every edge with
 * its next round. */
void
srv_tree_end_round(fmi_server *s)
{
	for (uint32_t i = 0; i < s->nslots; i++) {
		s->order[s->slots[i].client] = 0;
	}
	if (s->round % s->period[s->levels - 2] == 0) {
		for (uint32_t k = 0; k < s->tree->n; k++) {
			s->tree->e[k].needs_model = 1;
		}
	}
}
