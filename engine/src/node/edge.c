/* SPDX-License-Identifier: MIT */
/*
 * edge.c: an edge aggregator of a hierarchy deployed as a tree of
 * processes (the protocol is described in server_tree.c).
 *
 * The edge is a star server for its own client hosts: it listens for
 * them, and runs their rounds with the server's own code (srv_begin_edges,
 * srv_broadcast, srv_collect, srv_aggregate_edges, srv_end_round) on a
 * fmi_server that opens only its own aggregator (fmi_server.own), so its
 * pipeline, plugins, seeds and order of updates are those of the same
 * edge in a simulation. The round clock is its parent's: the edge dials
 * the parent, says HELLO once its client hosts joined, and then serves
 * EDGE_ROUNDs. The metrics its plugins set are reported with the phase
 * they were set in (0 begin, 1 collecting, 2 aggregating), so that the
 * root can merge them in the simulation's order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"

typedef struct edge_node {
	fmi_server s;       /* its clients' rounds; aggregator `own` only */
	fmi_tran *up;       /* to the parent */
	const char *name;
	fmi_edge_opts o;
	uint32_t j;         /* its position among the edges */
	uint32_t cap;       /* most sampled clients a round */
	uint32_t c0, c1;    /* its clients: [c0, c1) */
	int32_t id;         /* its node id */
	fmi_rmsg next;      /* the newest EDGE_ROUND not run yet */
	int has_next, shutdown;
	int synced;         /* its model is the one its parent knows */
	int verdict;        /* -1 none yet, else the parent's ok */
	uint32_t round;     /* the round it runs */
	double heard_up, sent_up;
	uint64_t seq;
	fmi_round_metrics m; /* the round's counters and plugin metrics */
	fmi_edge_metric x[3 * FMI_MAX_EXTRA_METRICS];
	uint32_t nx;
	fmi_edge_client *c; /* [cap] */
	uint8_t *counted;   /* [cap] */
	uint32_t *local;    /* [o.nhosts] global host -> this edge's, or -1 */
} edge_node;

static void
edge_msg(edge_node *e, fmi_msg *m, uint32_t type, uint32_t round)
{
	memset(m, 0, sizeof *m);
	m->type = type;
	m->fed = fmi_fed_id(e->s.cfg->seed);
	m->round = round;
	m->from = e->id;
	m->to = FM_NODE_SERVER;
	m->seq = ++e->seq;
}

static int
edge_send_up(edge_node *e, const fmi_msg *m, fmi_payload *p)
{
	e->sent_up = fmi_now();
	return fmi_tran_send(e->up, NULL, m, p);
}

/* ---- the parent's messages ---------------------------------------------- */

/* One message from the parent: a round is kept (the newest supersedes
 * an older one not yet run: an edge that fell behind does not replay
 * stale rounds), a verdict for the running round noted. */
static void
edge_on_up(edge_node *e, fmi_rmsg *r)
{
	e->heard_up = fmi_now();
	if (r->m.from != FM_NODE_SERVER) {
		fm_log(FM_LOG_WARN, "FM-SENDER", "edge %s: dropped %s message "
		    "from node %d: only the parent talks on this link", e->name,
		    fmi_msg_type_name(r->m.type), r->m.from);
		fmi_rmsg_close(r);
		return;
	}
	switch (r->m.type) {
	case FMI_MSG_EDGE_ROUND:
		if (e->has_next) {
			fm_log(FM_LOG_INFO, "FM-EDGE", "edge %s: round %u "
			    "supersedes round %u, not run", e->name, r->m.round,
			    e->next.m.round);
			fmi_rmsg_close(&e->next);
		}
		e->next = *r;
		r->has_payload = 0;
		e->has_next = 1;
		break;
	case FMI_MSG_EDGE_VERDICT:
		if (e->verdict < 0 && r->m.round == e->round) {
			e->verdict = (int)r->m.ok;
		} else {
			fm_log(FM_LOG_DEBUG, "FM-ROUND", "edge %s: dropped the "
			    "verdict of round %u (not waited for)", e->name,
			    r->m.round);
		}
		break;
	case FMI_MSG_SHUTDOWN:
		e->shutdown = 1;
		break;
	case FMI_MSG_HEARTBEAT:
		break;
	default:
		fm_log(FM_LOG_WARN, "FM-WIRE", "edge %s: unexpected %s message "
		    "from the parent", e->name, fmi_msg_type_name(r->m.type));
	}
	fmi_rmsg_close(r);
}

/* Waits up to ms for a message from the parent. */
static void
edge_pump(edge_node *e, int ms)
{
	fmi_rmsg r;
	if (fmi_tran_recv(e->up, &r, ms, NULL) == FM_OK) {
		edge_on_up(e, &r);
	}
}

/* What the client hosts sent while the edge waited for its parent
 * (heartbeats, late words), without waiting. */
static void
edge_drain_clients(edge_node *e)
{
	for (;;) {
		fmi_rmsg r;
		int rv = fmi_tran_recv(e->s.t, &r, 0, NULL);
		if (rv == FM_OK) {
			srv_dispatch(&e->s, &r);
		} else if (rv != FM_EPROTO && rv != FM_EVERSION) {
			return;
		}
	}
}

/* ---- a round ------------------------------------------------------------ */

/* The log id of why an EDGE_ROUND cannot be run (why says it), or NULL;
 * on success the round's clients are in e->c and its model (if any) in
 * the edge's model. */
static const char *
edge_take_round(edge_node *e, fmi_rmsg *r, uint32_t *n, char *why,
    size_t len)
{
	const void *model, *body;
	fm_error err = { 0, "" };
	fmi_edge_body b = { e->c, 0, e->cap, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		"" };
	int rv = fmi_edge_payload(&r->m, fmi_rmsg_data(r), fmi_rmsg_len(r),
	    e->s.dim, &model, &body, &err);
	if (rv == FM_OK) {
		rv = fmi_edge_body_decode(FMI_MSG_EDGE_ROUND, body, r->m.body, &b,
		    &err);
	}
	if (rv != FM_OK) {
		snprintf(why, len, "%s", err.msg);
		return "FM-WIRE";
	}
	for (uint32_t i = 0; i < b.nclients; i++) {
		uint32_t c = (uint32_t)b.clients[i].client - 1;
		if (c < e->c0 || c >= e->c1) {
			snprintf(why, len, "client %d is not under this edge "
			    "(%u..%u)", b.clients[i].client, e->c0 + 1, e->c1);
			return "FM-WIRE";
		}
		if (i > 0 && b.clients[i].client <= b.clients[i - 1].client) {
			snprintf(why, len, "clients are not in ascending order");
			return "FM-WIRE";
		}
	}
	if (model == NULL && !e->synced) {
		snprintf(why, len, "it carries no model and this edge waits for "
		    "its model from the parent (it just joined, or lost a round)");
		return "FM-EDGE";
	}
	fm_log(FM_LOG_INFO, "FM-EDGE", "edge %s: round %u, %u client%s%s",
	    e->name, r->m.round, b.nclients, b.nclients == 1 ? "" : "s",
	    model != NULL ? ", with its model from the parent" : "");
	if (model != NULL) {
		float *w = e->s.nodes[e->s.own].model;
		memcpy(w, model, e->s.dim * sizeof(float));
		fmi_f32_from_le(w, e->s.dim);
		e->synced = 1;
	}
	*n = b.nclients;
	return NULL;
}

/* The metrics the plugins set since the last call, as phase `phase`. */
static void
edge_phase(edge_node *e, uint8_t phase)
{
	for (uint32_t i = 0; i < e->m.nextra &&
	    e->nx < FMI_ARRAY_LEN(e->x); i++) {
		fmi_edge_metric *x = &e->x[e->nx++];
		x->phase = phase;
		snprintf(x->name, sizeof x->name, "%s", e->m.extra[i].name);
		x->value = e->m.extra[i].value;
	}
	e->m.nextra = 0;
}

/* The round's slots, as srv_begin_round makes them for this edge. */
static void
edge_slots(edge_node *e, uint32_t n)
{
	fmi_server *s = &e->s;
	srv_agg *node = &s->nodes[s->own];
	s->nslots = n;
	s->next = 0;
	s->waiting = n;
	s->ne_sum = 0;
	s->loss_sum = 0;
	node->nsampled = 0;
	node->slot0 = 0;
	node->rne = 0;
	node->rloss = 0;
	for (uint32_t i = 0; i < n; i++) {
		srv_slot *slot = &s->slots[i];
		memset(slot, 0, sizeof *slot);
		slot->loss = slot->norm = NAN;
		slot->awaited = 1;
		slot->fault = e->c[i].fault;
		if (slot->fault != FMI_FAULT_NONE) {
			slot->awaited = 0; /* played by the client hosts */
			s->waiting--;
		}
		slot->client = (uint32_t)e->c[i].client - 1;
		slot->edge = s->own;
		slot->host = e->local[slot->client % e->o.nhosts];
		s->order[slot->client] = i + 1;
		s->ids[i] = e->c[i].client;
		node->nsampled++;
	}
}

/* Waits for the parent's verdict on round r; -1 when none came (a newer
 * round or a shutdown came instead, or the parent went silent). */
static int
edge_wait_verdict(edge_node *e)
{
	const fmi_fed_cfg *cfg = e->s.cfg;
	double tmo = (cfg->round_timeout_ms ? cfg->round_timeout_ms
	                                    : 3600 * 1000) / 1000.0;
	double deadline = fmi_now() + tmo + 2 * e->o.edge_timeout;
	while (e->verdict < 0 && !e->has_next && !e->shutdown) {
		double left = deadline - fmi_now();
		if (left <= 0) {
			break;
		}
		edge_pump(e, (int)(left * 1000) + 1);
	}
	return e->verdict;
}

/* What the edge's round came to: every client's outcome, its stats and
 * metrics, and its model when it moved. */
static int
edge_report(edge_node *e, uint32_t moved)
{
	fmi_server *s = &e->s;
	for (uint32_t i = 0; i < s->nslots; i++) {
		const srv_slot *slot = &s->slots[i];
		e->c[i] = (fmi_edge_client){ (int32_t)slot->client + 1, 0,
			slot->status ? slot->status : FMI_CLIENT_DROPPED,
			e->counted[i], slot->ne, slot->loss, slot->norm };
	}
	fmi_edge_body b = { e->c, s->nslots, e->cap, e->x, e->nx,
		FMI_ARRAY_LEN(e->x), moved > 0,
		(uint8_t)fmi_pipe_holds(&s->nodes[s->own].pipe),
		(uint8_t)(s->def_ran != 0), (uint8_t)(s->def_combined != 0),
		s->fed, s->def_rej, s->def_rej_adv, "" };
	/* "round N: " is the root's to say */
	const char *why = strstr(s->why, ": ");
	why = why != NULL ? why + 2 : s->why;
	size_t wl = strnlen(why, FMI_EDGE_WHY);
	memcpy(b.why, why, wl);
	b.why[wl] = '\0';
	size_t nf = moved ? s->dim : 0, blen = 0;
	size_t bound = fmi_edge_body_bound(FMI_MSG_EDGE_RESULT, s->nslots,
	    e->nx);
	fmi_payload *p = fmi_payload_new(nf * sizeof(float) + bound);
	if (p == NULL) {
		return FM_ENOMEM;
	}
	memcpy(p->data, s->nodes[s->own].model, nf * sizeof(float));
	fmi_f32_to_le(p->data, nf);
	int rv = fmi_edge_body_encode(FMI_MSG_EDGE_RESULT, &b,
	    (char *)p->data + nf * sizeof(float), bound, &blen);
	if (rv == FM_OK) {
		fmi_msg m;
		p->len = nf * sizeof(float) + blen;
		edge_msg(e, &m, FMI_MSG_EDGE_RESULT, e->round);
		m.n = nf;
		m.body = blen;
		rv = edge_send_up(e, &m, p);
	}
	fmi_payload_unref(p);
	return rv;
}

/* Runs the EDGE_ROUND r: the edge's clients train, it collects their
 * updates, tells its parent how many, aggregates on its verdict, ends
 * its clients' round and reports. */
static void
edge_round(edge_node *e, fmi_rmsg *r)
{
	fmi_server *s = &e->s;
	char why[320];
	uint32_t n = 0;
	const char *id = edge_take_round(e, r, &n, why, sizeof why);
	if (id != NULL) {
		fm_log(FM_LOG_WARN, id, "edge %s: dropped round %u from the "
		    "parent: %s", e->name, r->m.round, why);
		return;
	}
	e->round = s->round = r->m.round;
	e->verdict = -1;
	s->lr = r->m.lr;
	s->lr_scale = r->m.lr_scale;
	s->def_ran = s->def_combined = 0;
	s->def_rej = s->def_rej_adv = 0;
	s->why[0] = '\0';
	memset(&e->m, 0, sizeof e->m);
	e->m.round = e->round;
	e->nx = 0;
	s->m = &e->m;
	edge_drain_clients(e); /* who is alive, before the tasks go out */
	s->deadline = fmi_now();
	edge_slots(e, n);
	s->holding = 1;
	int rv = n > 0 ? srv_begin_edges(s) : FM_OK;
	s->holding = 0;
	edge_phase(e, 0);
	if (rv == FM_OK) {
		rv = srv_broadcast(s);
	} else {
		srv_drop_held(s);
	}
	if (rv == FM_OK) {
		srv_collect(s);
	} else {
		fm_log(FM_LOG_ERR, "FM-EDGE", "edge %s: round %u could not start: "
		    "%s; its clients drop out", e->name, e->round,
		    s->why[0] ? s->why : fm_strerror(rv));
		for (uint32_t i = 0; i < n; i++) {
			s->slots[i].status = FMI_CLIENT_DROPPED;
		}
	}
	edge_phase(e, 1);
	for (uint32_t i = 0; i < n; i++) { /* what entered the pipeline */
		e->counted[i] = s->slots[i].status == FMI_CLIENT_KEPT;
	}
	fmi_msg m;
	edge_msg(e, &m, FMI_MSG_EDGE_COLLECTED, e->round);
	m.updates = s->m->updates;
	(void)edge_send_up(e, &m, NULL);
	int ok = edge_wait_verdict(e);
	uint32_t moved = srv_aggregate_edges(s, ok == 1 && rv == FM_OK);
	edge_phase(e, 2);
	srv_end_round(s); /* and the stragglers */
	if (ok < 0) {
		/* The parent decided without us (or is gone): it drops this
		 * round and sends its model with our next one. */
		fm_log(FM_LOG_WARN, "FM-EDGE", "edge %s: no verdict for round %u "
		    "from the parent; the round is lost", e->name, e->round);
		e->synced = 0;
		return;
	}
	if (edge_report(e, moved) != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-EDGE", "edge %s: could not report round "
		    "%u", e->name, e->round);
	}
}

/* ---- the edge's life ---------------------------------------------------- */

static int
edge_loop(edge_node *e)
{
	uint32_t hb = e->o.heartbeat_ms ? e->o.heartbeat_ms : 1000;
	while (!e->shutdown) {
		if (e->has_next) {
			fmi_rmsg r;
			/* newer rounds may be queued: the newest is run */
			while (!e->shutdown && fmi_tran_recv(e->up, &r, 0, NULL) ==
			    FM_OK) {
				edge_on_up(e, &r);
			}
			if (e->shutdown) {
				break;
			}
			r = e->next;
			e->has_next = 0;
			edge_round(e, &r);
			fmi_rmsg_close(&r);
			continue;
		}
		edge_pump(e, (int)hb);
		edge_drain_clients(e);
		double now = fmi_now();
		if (e->o.idle_timeout > 0 &&
		    now - e->heard_up > e->o.idle_timeout) {
			return FM_ETIMEDOUT;
		}
		if (e->o.heartbeat_ms > 0 && !e->has_next &&
		    (now - e->sent_up) * 1000 >= e->o.heartbeat_ms) {
			fmi_msg m;
			edge_msg(e, &m, FMI_MSG_HEARTBEAT, 0);
			(void)edge_send_up(e, &m, NULL);
		}
	}
	return FM_OK;
}

static int
edge_open(edge_node *e, fm_error *err)
{
	fmi_server *s = &e->s;
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t levels = fmi_fed_levels(cfg);
	uint64_t nedges = 1;
	for (uint32_t l = 0; l + 1 < levels; l++) {
		nedges *= fmi_fed_fanout(cfg, l);
	}
	if (levels < 2 || e->j >= nedges) {
		return fm_error_set(err, FM_EINVAL, "edge %s: position %u, but "
		    "the hierarchy has %llu edge aggregators", e->name, e->j,
		    (unsigned long long)(levels < 2 ? 0 : nedges));
	}
	uint32_t fan = fmi_fed_fanout(cfg, levels - 1);
	if (e->o.nhosts == 0 || e->o.host_ids == NULL) {
		return fm_error_set(err, FM_EINVAL, "edge %s: no client hosts",
		    e->name);
	}
	e->c0 = e->j * fan;
	e->c1 = e->c0 + fan;
	e->cap = FMI_MIN(cfg->clients_per_round, fan);
	e->c = calloc(e->cap, sizeof *e->c);
	e->counted = calloc(e->cap, 1);
	e->local = malloc(e->o.nhosts * sizeof *e->local);
	if (e->c == NULL || e->counted == NULL || e->local == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	for (uint32_t h = 0; h < e->o.nhosts; h++) {
		e->local[h] = 0; /* a client placed on another edge's host is
		                  * refused by the deployment's checks */
	}
	for (uint32_t i = 0; i < s->hosts->n; i++) {
		if (e->o.host_ids[i] >= e->o.nhosts) {
			return fm_error_set(err, FM_EINVAL, "edge %s: host index "
			    "%u of %u", e->name, e->o.host_ids[i], e->o.nhosts);
		}
		e->local[e->o.host_ids[i]] = i;
	}
	/* the shape first: its own aggregator's index */
	s->levels = levels;
	s->first[0] = 0;
	uint64_t width = 1;
	for (uint32_t l = 0; l < levels; l++) {
		s->first[l + 1] = s->first[l] + (uint32_t)width;
		width *= fmi_fed_fanout(cfg, l);
	}
	s->own = s->first[levels - 1] + e->j;
	e->id = (int32_t)(cfg->part->nclients + s->own);
	return srv_open(s, err);
}

int
fmi_edge_run(const fmi_fed_cfg *cfg, fmi_tran *clients,
    const fmi_server_hosts *hosts, fmi_tran *up, const char *name,
    uint32_t j, const fmi_edge_opts *o, fm_error *err)
{
	edge_node *e = calloc(1, sizeof *e);
	if (e == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	e->s.cfg = cfg;
	e->s.t = clients;
	e->s.hosts = hosts;
	e->up = up;
	e->name = name;
	e->o = *o;
	e->o.edge_timeout = o->edge_timeout > 0 ? o->edge_timeout : 10;
	e->j = j;
	int rv = edge_open(e, err);
	if (rv == FM_OK) {
		fm_error w = { 0, "" };
		if (srv_wait_hosts(&e->s, &w) != FM_OK) {
			fm_log(FM_LOG_WARN, "FM-JOIN", "edge %s: %s; going on, "
			    "they can join later", name, w.msg);
		}
		fmi_msg hello;
		edge_msg(e, &hello, FMI_MSG_HELLO, 0);
		e->heard_up = fmi_now();
		rv = edge_send_up(e, &hello, NULL);
		if (rv != FM_OK) {
			fm_error_set(err, rv, "edge %s: cannot reach its parent: %s",
			    name, fm_strerror(rv));
		}
	}
	if (rv == FM_OK) {
		fm_log(FM_LOG_INFO, "FM-EDGE", "edge %s (aggregator %u, clients "
		    "%u..%u) ready for its parent", name, e->s.own, e->c0 + 1,
		    e->c1);
		rv = edge_loop(e);
		if (rv == FM_ETIMEDOUT) {
			fm_error_set(err, rv, "edge %s: no word from its parent "
			    "for %.0f s; giving up", name, e->o.idle_timeout);
		}
	}
	/* the client hosts end with their edge */
	for (uint32_t i = 0; rv == FM_OK && i < hosts->n; i++) {
		fmi_msg m;
		srv_msg(&e->s, &m, FMI_MSG_SHUTDOWN, -1);
		(void)fmi_tran_send(clients, hosts->names[i], &m, NULL);
	}
	if (e->has_next) {
		fmi_rmsg_close(&e->next);
	}
	srv_close(&e->s);
	free(e->c);
	free(e->counted);
	free(e->local);
	free(e);
	return rv;
}
