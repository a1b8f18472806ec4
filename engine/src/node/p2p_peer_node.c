/* SPDX-License-Identifier: MIT */
/*
 * p2p_peer_node.c: one peer of a decentralized federation deployed as
 * processes (the monitor that collects their reports is p2p_monitor.c).
 *
 * Each peer is its own process: it listens (CURVE with an allowlist of
 * the deployment's peers) on its address, dials its out-neighbours with
 * lossy links (a dead neighbour costs at most a few queued messages,
 * never a blocked peer), and runs the rounds of peer.h. Its GOSSIP
 * messages are built and checked by peer.c, as in the simulation
 * (p2p_sim.c). A neighbour whose model misses a round's deadline is
 * marked absent: the peer mixes without it and stops waiting for it,
 * until its models come again. A peer that finds its neighbours ahead (it
 * was restarted, or a partition healed) catches up: it jumps to their
 * round and mixes without training.
 *
 * After each round the peer sends the monitor a small REPORT
 * (accuracies, losses, a count sketch of its model and its consensus
 * instance's metrics of the round).
 *
 * The consensus instance's node link: host->send goes out at once as an
 * FMI_MSG_PLUGIN over the link to the neighbour (dialed on first use);
 * when the link is full (it queues P2P_QUEUE messages, a model is big)
 * the message waits in the peer's backlog for that neighbour (up to
 * P2P_BACKLOG, then FM_EBUSY) and goes out, in order, before this peer's
 * next model to it; messages are delivered as they come, whenever
 * the peer waits for models, from neighbours of its current round's
 * graph. Timers run on the wall clock: they fire while the peer waits for
 * models, and at the end of each round (after the mix, before the
 * REPORT) those due by then.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/node.h"
#include "node/peer.h"

#define P2P_QUEUE 2 /* messages queued towards one neighbour */
#define P2P_BACKLOG 256 /* plugin messages waiting for a full link */

int
fmi_p2p_url(const fmi_deploy_cfg *d, const char *addr, char *url, size_t n,
    fm_error *err)
{
	int len = snprintf(url, n, "%s://%s", d->transport, addr);
	if (strcmp(d->transport, "tcp") != 0 && strcmp(d->transport, "ipc")) {
		return fm_error_set(err, FM_EINVAL, "deploy.transport must be "
		    "\"tcp\" or \"ipc\", not \"%s\"", d->transport);
	}
	if (len < 0 || (size_t)len >= n || addr[0] == '\0') {
		return fm_error_set(err, FM_EINVAL, "bad address '%s'", addr);
	}
	return FM_OK;
}

/* Count sketch: bucket and sign of coordinate k from one hash. Linear, so
 * the sketch of a difference is the difference of sketches, and its norm
 * estimates the norm of the difference (relative error ~ sqrt(2/K)). */
static void
p2p_sketch(const float *x, size_t dim, float *s)
{
	memset(s, 0, FMI_P2P_SKETCH * sizeof(float));
	for (size_t k = 0; k < dim; k++) {
		uint64_t h = fmi_hash64(k ^ 0x736b657463680000ULL);
		float v = (h >> 63) ? -x[k] : x[k];
		s[h % FMI_P2P_SKETCH] += v;
	}
}

/* ---- a peer ---------------------------------------------------------- */

typedef struct p2p_held {
	uint32_t round, from;
	fmi_rmsg r;
} p2p_held;

/* Plugin messages a neighbour's link could not queue yet, in order. */
typedef struct p2p_plmsg {
	fmi_msg m;
	void *data;
} p2p_plmsg;

typedef struct p2p_backlog {
	p2p_plmsg *q;
	uint32_t head, n, cap;
} p2p_backlog;

typedef struct p2p_node {
	const fmi_p2p_cfg *cfg;
	const fmi_deploy_cfg *d;
	uint32_t id, n;
	size_t dim;
	fmi_tran_ctx *tc;
	fmi_tran *in, *mon;
	fmi_tran **out; /* [n], dialed on first use */
	fmi_peer peer;
	fmi_trainer *tr;
	p2p_held *held; /* models received for this round or later */
	uint32_t nheld, cap;
	uint8_t *absent; /* [n] */
	uint32_t behind; /* a neighbour's round far ahead of ours, or 0 */
	uint32_t *eval_idx;
	size_t eval_n;
	float sketch[FMI_P2P_SKETCH];
	uint8_t report[FMI_P2P_SKETCH * sizeof(float) + FMI_PEER_METRICS_MAX];
	fmi_adj adj;    /* the round's graph */
	fmi_timers timers; /* the consensus instance's, wall clock */
	uint64_t fed;
	fm_peer_model *nb;
	/* this round's outgoing model and who still has to get it */
	fmi_payload *payload;
	uint32_t send_round;
	uint8_t *unsent, *unreachable; /* [n] */
	p2p_backlog *backlog; /* [n] */
} p2p_node;

/* Sends what waits for neighbour j, in order; FM_OK when nothing is
 * left (then a model may follow). */
static int
p2p_send_backlog(p2p_node *nd, uint32_t j)
{
	p2p_backlog *b = &nd->backlog[j];
	while (b->n > 0) {
		p2p_plmsg *x = &b->q[b->head];
		int rv = fmi_tran_send_bytes(nd->out[j], NULL, &x->m, x->data,
		    x->m.n);
		if (rv == FM_EBUSY) {
			return rv;
		}
		if (rv != FM_OK) {
			fm_log(FM_LOG_WARN, "FM-PLUGIN-MSG", "peer %u: a message "
			    "for plugin '%s' to peer %u was lost (%s)", nd->id + 1,
			    x->m.plugin, j + 1, fm_strerror(rv));
		}
		free(x->data);
		b->head = (b->head + 1) % b->cap;
		b->n--;
	}
	return FM_OK;
}

static int
p2p_backlog_push(p2p_backlog *b, const fmi_msg *m, const void *data,
    size_t len)
{
	if (b->n == P2P_BACKLOG) {
		return FM_EBUSY;
	}
	if (b->n == b->cap) {
		uint32_t cap = b->cap ? 2 * b->cap : 8;
		p2p_plmsg *q = malloc(cap * sizeof *q);
		if (q == NULL) {
			return FM_ENOMEM;
		}
		for (uint32_t k = 0; k < b->n; k++) {
			q[k] = b->q[(b->head + k) % b->cap];
		}
		free(b->q);
		b->q = q;
		b->head = 0;
		b->cap = cap;
	}
	p2p_plmsg *x = &b->q[(b->head + b->n) % b->cap];
	if ((x->data = malloc(len ? len : 1)) == NULL) {
		return FM_ENOMEM;
	}
	if (len > 0) {
		memcpy(x->data, data, len);
	}
	x->m = *m;
	b->n++;
	return FM_OK;
}

static void
p2p_backlog_free(p2p_backlog *b)
{
	for (uint32_t k = 0; k < b->n; k++) {
		free(b->q[(b->head + k) % b->cap].data);
	}
	free(b->q);
}

static void
p2p_drop_held(p2p_node *nd, uint32_t upto)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < nd->nheld; i++) {
		if (nd->held[i].round <= upto) {
			fmi_rmsg_close(&nd->held[i].r);
		} else {
			nd->held[k++] = nd->held[i];
		}
	}
	nd->nheld = k;
}

static int
p2p_dial(p2p_node *nd, uint32_t j, fm_error *err)
{
	char url[300];
	if (nd->out[j] != NULL) {
		return FM_OK;
	}
	int rv = fmi_p2p_url(nd->d, nd->d->peer_addrs[j], url, sizeof url, err);
	if (rv == FM_OK) {
		rv = fmi_deploy_dial(nd->tc, nd->d, nd->d->clients[nd->id],
		    nd->d->clients[j], url, P2P_QUEUE, &nd->out[j], err);
	}
	return rv;
}

/* Queues this round's model for every out-neighbour; p2p_flush_sends
 * delivers it to those that are reachable. */
static int
p2p_start_send(p2p_node *nd, const fmi_adj *a, uint32_t round,
    fm_error *err)
{
	fmi_payload_unref(nd->payload);
	nd->payload = fmi_peer_payload(&nd->peer);
	if (nd->payload == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	nd->send_round = round;
	memset(nd->unsent, 0, nd->n);
	for (uint32_t e = a->out_off[nd->id]; e < a->out_off[nd->id + 1]; e++) {
		uint32_t j = a->out_adj[e];
		int rv = p2p_dial(nd, j, err);
		if (rv != FM_OK) {
			return rv;
		}
		nd->unsent[j] = 1;
	}
	return FM_OK;
}

/* Tries the sends still pending; returns how many to neighbours not
 * known to be down remain. */
static uint32_t
p2p_flush_sends(p2p_node *nd)
{
	uint32_t left = 0;
	for (uint32_t j = 0; j < nd->n; j++) {
		if (!nd->unsent[j]) {
			continue;
		}
		fmi_msg m;
		fmi_peer_gossip(&nd->peer, nd->fed, nd->send_round, j, &m);
		if (p2p_send_backlog(nd, j) == FM_OK &&
		    fmi_tran_send(nd->out[j], NULL, &m, nd->payload) == FM_OK) {
			nd->unsent[j] = 0;
			nd->unreachable[j] = 0;
		} else if (!nd->unreachable[j]) {
			left++;
		}
	}
	return left;
}

/* At a round's deadline: neighbours that could not be sent to. */
static void
p2p_give_up_sends(p2p_node *nd, uint32_t round)
{
	for (uint32_t j = 0; j < nd->n; j++) {
		if (nd->unsent[j] && !nd->unreachable[j]) {
			nd->unreachable[j] = 1;
			fm_log(FM_LOG_WARN, "FM-ABSENT", "round %u: peer %u: "
			    "neighbour %u is unreachable; it misses this "
			    "peer's models until it is back", round, nd->id + 1,
			    j + 1);
		}
		nd->unsent[j] = 0;
	}
}

/* The consensus instance's node link (peer.c builds the message). */
static int
p2p_net_send(void *ud, uint32_t from, const fmi_msg *m, const void *data,
    size_t len)
{
	p2p_node *nd = ud;
	fm_error e;
	(void)from;
	int rv = p2p_dial(nd, (uint32_t)m->to, &e);
	if (rv != FM_OK) {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-MSG", "peer %u: no link to peer "
		    "%d: %s", nd->id + 1, m->to + 1, e.msg);
		return rv;
	}
	uint32_t j = (uint32_t)m->to;
	rv = p2p_send_backlog(nd, j);
	if (rv == FM_OK) {
		rv = fmi_tran_send_bytes(nd->out[j], NULL, m, data, len);
	}
	/* a full link: the message waits, in order, for the link to drain
	 * (retried with the models; sent before this peer's next model) */
	return rv == FM_EBUSY ? p2p_backlog_push(&nd->backlog[j], m, data, len)
	                      : rv;
}

static int
p2p_net_timer(void *ud, uint32_t peer, fmi_inst_head *h, uint32_t ms,
    uint64_t tag)
{
	p2p_node *nd = ud;
	(void)peer;
	return fmi_timers_add(&nd->timers, h, ms, tag);
}

/* A plugin message from a neighbour: delivered at once (peer.c checks
 * it); its sender must be the peer it claims to be. */
static void
p2p_on_plugin(p2p_node *nd, fmi_rmsg *r)
{
	const fmi_msg *m = &r->m;
	if (m->from < 0 || (uint32_t)m->from >= nd->n ||
	    strcmp(r->peer, nd->d->clients[m->from]) != 0) {
		fm_log(FM_LOG_WARN, "FM-SENDER", "peer %u dropped a message for "
		    "plugin '%s': '%s' claims to be peer %d", nd->id + 1,
		    m->plugin, r->peer, m->from + 1);
	} else {
		(void)fmi_peer_deliver(&nd->peer, r);
	}
	fmi_rmsg_close(r);
}

/* Why a GOSSIP message cannot be used, or NULL. */
static const char *
p2p_reject(p2p_node *nd, fmi_rmsg *r, uint32_t round, char *why, size_t n)
{
	const fmi_msg *m = &r->m;
	const char *id = fmi_peer_gossip_check(r, nd->fed, nd->n, nd->dim, why,
	    n);
	if (id != NULL) {
		return id;
	}
	if (strcmp(r->peer, nd->d->clients[m->from]) != 0 ||
	    (uint32_t)m->to != nd->id) {
		snprintf(why, n, "'%s' claims to be peer %d", r->peer,
		    m->from + 1);
		return "FM-SENDER";
	}
	if (m->round < round) {
		snprintf(why, n, "it is for round %u during round %u (late)",
		    m->round, round);
		return "FM-ROUND";
	}
	for (uint32_t i = 0; i < nd->nheld; i++) {
		if (nd->held[i].round == m->round &&
		    nd->held[i].from == (uint32_t)m->from) {
			snprintf(why, n, "a second model for round %u",
			    m->round);
			return "FM-SENDER";
		}
	}
	return NULL;
}

static void
p2p_on_message(p2p_node *nd, fmi_rmsg *r, uint32_t round)
{
	char why[512];
	if (r->m.type == FMI_MSG_PLUGIN) {
		p2p_on_plugin(nd, r);
		return;
	}
	const char *id = p2p_reject(nd, r, round, why, sizeof why);
	int late = id != NULL && strcmp(id, "FM-ROUND") == 0;
	if (late && nd->absent[r->m.from]) {
		/* a late model still shows the neighbour is alive: wait for it
		 * again from the next round on. It catches up as soon as it
		 * sees this peer's models, so the wait is short. */
		nd->absent[r->m.from] = 0;
		fm_log(FM_LOG_INFO, "FM-REJOIN", "peer %u: neighbour %d is back "
		    "(at round %u, behind this peer's %u)", nd->id + 1,
		    r->m.from + 1, r->m.round, round);
	}
	if (id != NULL || nd->nheld == nd->cap) {
		fm_log(late ? FM_LOG_DEBUG : FM_LOG_WARN, id ? id : "FM-GOSSIP",
		    "peer %u dropped a model from '%s': %s", nd->id + 1, r->peer,
		    id ? why : "too many models held");
		fmi_rmsg_close(r);
		return;
	}
	uint32_t from = (uint32_t)r->m.from;
	if (nd->absent[from]) {
		nd->absent[from] = 0;
		fm_log(FM_LOG_INFO, "FM-REJOIN", "peer %u: neighbour %u is back "
		    "(round %u)", nd->id + 1, from + 1, r->m.round);
	}
	if (r->m.round > round + 1 && r->m.round > nd->behind) {
		nd->behind = r->m.round;
	}
	fmi_f32_from_le((float *)fmi_rmsg_data(r), nd->dim);
	nd->held[nd->nheld++] = (p2p_held) { r->m.round, from, *r };
}

/* Models held for round from in-neighbours of a: how many, and whether
 * every in-neighbour not marked absent is among them. */
static uint32_t
p2p_count(const p2p_node *nd, const fmi_adj *a, uint32_t round, int *all)
{
	uint32_t got = 0;
	*all = 1;
	for (uint32_t e = a->in_off[nd->id]; e < a->in_off[nd->id + 1]; e++) {
		uint32_t j = a->in_adj[e], have = 0;
		for (uint32_t i = 0; i < nd->nheld && !have; i++) {
			have = nd->held[i].round == round && nd->held[i].from == j;
		}
		got += have;
		if (!have && !nd->absent[j]) {
			*all = 0;
		}
	}
	return got;
}

static void
p2p_mark_absent(p2p_node *nd, const fmi_adj *a, uint32_t round)
{
	for (uint32_t e = a->in_off[nd->id]; e < a->in_off[nd->id + 1]; e++) {
		uint32_t j = a->in_adj[e], have = 0;
		for (uint32_t i = 0; i < nd->nheld && !have; i++) {
			have = nd->held[i].round == round && nd->held[i].from == j;
		}
		if (!have && !nd->absent[j]) {
			nd->absent[j] = 1;
			fm_log(FM_LOG_WARN, "FM-ABSENT", "round %u: peer %u: no "
			    "model from neighbour %u before the deadline; mixing "
			    "without it", round, nd->id + 1, j + 1);
		}
	}
}

/* Handles one message, waiting up to ms for it. FM_ETIMEDOUT when none
 * came; malformed ones are logged by the transport and skipped. */
static int
p2p_receive(p2p_node *nd, uint32_t round, int ms, fm_error *err)
{
	fmi_rmsg r;
	int rv = fmi_tran_recv(nd->in, &r, fmi_timers_wait_ms(&nd->timers, ms),
	    err);
	if (rv == FM_OK) {
		p2p_on_message(nd, &r, round);
	}
	(void)fmi_timers_fire_until(&nd->timers, fmi_now());
	return rv == FM_EPROTO || rv == FM_EVERSION ? FM_OK : rv;
}

/* Waits for this round's models until every present in-neighbour's came,
 * the deadline passed, or the neighbours turned out to be far ahead.
 * Whatever is already queued is read first, even when no neighbour is
 * awaited: that is how an absent neighbour's return is noticed. */
static int
p2p_collect(p2p_node *nd, const fmi_adj *a, uint32_t round, double wait,
    fm_error *err)
{
	double deadline = fmi_now() + wait;
	int all = 0, rv;
	while ((rv = p2p_receive(nd, round, 0, err)) == FM_OK) {
	}
	if (rv != FM_ETIMEDOUT) {
		return rv;
	}
	for (;;) {
		/* Sends to a neighbour not connected yet are retried while
		 * the round lasts; only the first round waits for them (the
		 * links come up): later a slow link must not hold the round. */
		uint32_t sending = p2p_flush_sends(nd);
		for (uint32_t j = 0; j < nd->n; j++) {
			if (nd->backlog[j].n > 0) {
				(void)p2p_send_backlog(nd, j);
			}
		}
		(void)p2p_count(nd, a, round, &all);
		if ((all && (sending == 0 || round > 1)) || nd->behind > round) {
			p2p_give_up_sends(nd, round);
			return FM_OK;
		}
		double left = deadline - fmi_now();
		if (left <= 0) {
			p2p_mark_absent(nd, a, round);
			p2p_give_up_sends(nd, round);
			return FM_OK;
		}
		int ms = (int)(left * 1000) + 1;
		rv = p2p_receive(nd, round, sending ? FMI_MIN(ms, 20) : ms, err);
		if (rv != FM_OK && rv != FM_ETIMEDOUT) {
			return rv;
		}
	}
}

/* Mixes the held models of round into the peer's next model. */
static void
p2p_mix(p2p_node *nd, const fmi_adj *a, uint32_t round)
{
	uint32_t k = 0;
	for (uint32_t e = a->in_off[nd->id]; e < a->in_off[nd->id + 1]; e++) {
		uint32_t j = a->in_adj[e];
		for (uint32_t i = 0; i < nd->nheld; i++) {
			p2p_held *h = &nd->held[i];
			if (h->round == round && h->from == j) {
				nd->nb[k++] = fmi_peer_model_of(&h->r);
			}
		}
	}
	int rv = fmi_peer_mix(&nd->peer, a, round, nd->nb, k);
	if (rv != FM_OK) {
		fm_log(FM_LOG_WARN, "FM-MIX", "round %u, peer %u: consensus "
		    "'%s' failed (%s); the peer keeps its own model", round,
		    nd->id + 1, nd->cfg->consensus->desc->name, fm_strerror(rv));
	}
	p2p_drop_held(nd, round);
}

/* Evaluates (when due) and sends this round's REPORT to the monitor. */
static void
p2p_report(p2p_node *nd, uint32_t round)
{
	const fmi_p2p_cfg *cfg = nd->cfg;
	uint32_t every = cfg->eval_every ? cfg->eval_every : 1;
	fmi_msg m = { .type = FMI_MSG_REPORT, .fed = nd->fed, .round = round,
		.from = (int32_t)nd->id, .num_examples = nd->peer.examples,
		.loss = isfinite(nd->peer.loss) ? nd->peer.loss : 0, .acc = -1,
		.test_loss = -1, .n = FMI_P2P_SKETCH };
	fmi_eval ev;
	if (!fmi_p2p_honest(cfg, nd->id)) {
		return; /* adversaries are not measured */
	}
	if (cfg->test != NULL && (round % every == 0 || round == cfg->rounds) &&
	    fmi_evaluate(nd->tr, nd->peer.x, cfg->test, nd->eval_idx,
	        nd->eval_idx != NULL ? nd->eval_n : 0, &ev) == FM_OK) {
		m.acc = ev.accuracy;
		m.test_loss = isfinite(ev.loss) ? ev.loss : 0;
	}
	p2p_sketch(nd->peer.x, nd->dim, nd->sketch);
	fmi_f32_to_le(nd->sketch, FMI_P2P_SKETCH);
	memcpy(nd->report, nd->sketch, sizeof nd->sketch);
	size_t len = sizeof nd->sketch + fmi_peer_metrics_encode(
	    &nd->peer.metrics, nd->report + sizeof nd->sketch);
	int rv = fmi_tran_send_bytes(nd->mon, NULL, &m, nd->report, len);
	if (rv != FM_OK) {
		fm_log(FM_LOG_DEBUG, "FM-REPORT", "round %u: the monitor is "
		    "unreachable (%s)", round, fm_strerror(rv));
	}
}

/* One round; with catch_up the peer does not train (it was behind) and
 * sends its current model. */
static int
p2p_node_round(p2p_node *nd, uint32_t round, int catch_up, fm_error *err)
{
	const fmi_adj *a = &nd->adj;
	const fmi_p2p_cfg *cfg = nd->cfg;
	int rv = fmi_graph_round(cfg->graph, round, &nd->adj, err);
	if (rv != FM_OK) {
		return rv;
	}
	fmi_peer_begin_round(&nd->peer, a, round);
	if (catch_up) {
		memcpy(nd->peer.y, nd->peer.x, nd->dim * sizeof(float));
	} else if ((rv = fmi_peer_train(&nd->peer, cfg, nd->tr, round)) !=
	    FM_OK) {
		return fm_error_set(err, rv, "round %u: local training failed: "
		    "%s", round, fm_strerror(rv));
	}
	rv = fmi_peer_prepare_send(&nd->peer, a, round);
	if (rv == FM_OK) {
		rv = p2p_start_send(nd, a, round, err);
	}
	double wait = (cfg->round_timeout_ms ? cfg->round_timeout_ms : 60000) /
	    1000.0;
	if (rv == FM_OK && catch_up) {
		/* mix with the neighbours' models at hand and move on: they
		 * are ahead and will not wait */
		(void)p2p_flush_sends(nd);
		memset(nd->unsent, 0, nd->n);
	} else if (rv == FM_OK) {
		rv = p2p_collect(nd, a, round, round == 1 ?
		    fmax(wait, nd->d->join_timeout) : wait, err);
	}
	if (rv == FM_OK && nd->behind > round) {
		p2p_drop_held(nd, round); /* about to jump ahead */
		return FM_OK;
	}
	if (rv == FM_OK) {
		p2p_mix(nd, a, round);
		/* the end of the round: the timers due by now */
		(void)fmi_timers_fire_until(&nd->timers, fmi_now());
		p2p_report(nd, round);
	}
	return rv;
}

static int
p2p_node_open(p2p_node *nd, fm_error *err)
{
	char url[300];
	const fmi_deploy_cfg *d = nd->d;
	nd->n = fmi_graph_n(nd->cfg->graph);
	nd->dim = nd->cfg->arch.nparams;
	nd->fed = fmi_fed_id(nd->cfg->seed);
	nd->cap = 4 * nd->n + 16;
	nd->out = calloc(nd->n, sizeof *nd->out);
	nd->held = calloc(nd->cap, sizeof *nd->held);
	nd->absent = calloc(nd->n, 1);
	nd->nb = calloc(nd->n, sizeof *nd->nb);
	nd->unsent = calloc(nd->n, 1);
	nd->unreachable = calloc(nd->n, 1);
	nd->backlog = calloc(nd->n, sizeof *nd->backlog);
	if (nd->out == NULL || nd->held == NULL || nd->absent == NULL ||
	    nd->nb == NULL || nd->unsent == NULL || nd->unreachable == NULL ||
	    nd->backlog == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	int rv = fmi_tran_ctx_new(&nd->tc, NULL, err);
	if (rv == FM_OK) {
		fmi_peer_net net = { nd, p2p_net_send, p2p_net_timer };
		rv = fmi_peer_init(&nd->peer, nd->cfg, nd->id, &net, err);
	}
	if (rv == FM_OK && fmi_trainer_new(&nd->tr, &nd->cfg->arch,
	    FMI_MAX(nd->cfg->local.batch, 256)) != FM_OK) {
		rv = fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	if (rv == FM_OK) {
		rv = fmi_p2p_url(d, d->peer_addrs[nd->id], url, sizeof url, err);
	}
	if (rv == FM_OK) {
		/* handover: a restarted neighbour takes its name back */
		rv = fmi_deploy_listen(nd->tc, d, d->clients[nd->id], url,
		    nd->dim * sizeof(float), 1, &nd->in, err);
	}
	if (rv == FM_OK) {
		fm_log(FM_LOG_INFO, "FM-DEPLOY", "peer %s (%u of %u) listening "
		    "on %s%s", d->clients[nd->id], nd->id + 1, nd->n, url,
		    d->keys[0] ? " (CURVE, listed keys only)" : "");
		rv = fmi_p2p_url(d, d->server, url, sizeof url, err);
	}
	if (rv == FM_OK) {
		rv = fmi_deploy_dial(nd->tc, d, d->clients[nd->id],
		    d->server_name, url, -64, &nd->mon, err);
	}
	nd->eval_idx = fmi_peer_eval_subset(nd->cfg, &nd->eval_n);
	return rv;
}

static void
p2p_node_close(p2p_node *nd)
{
	p2p_drop_held(nd, UINT32_MAX);
	for (uint32_t j = 0; nd->out != NULL && j < nd->n; j++) {
		fmi_tran_close(nd->out[j]);
	}
	fmi_tran_close(nd->mon);
	fmi_tran_close(nd->in);
	fmi_tran_ctx_free(nd->tc);
	fmi_peer_fini(&nd->peer);
	fmi_trainer_free(nd->tr);
	free(nd->out);
	free(nd->held);
	free(nd->absent);
	free(nd->nb);
	free(nd->unsent);
	free(nd->unreachable);
	for (uint32_t j = 0; nd->backlog != NULL && j < nd->n; j++) {
		p2p_backlog_free(&nd->backlog[j]);
	}
	free(nd->backlog);
	fmi_payload_unref(nd->payload);
	free(nd->eval_idx);
}

int
fmi_p2p_run_peer(const fmi_p2p_cfg *cfg, const fmi_deploy_cfg *d,
    uint32_t peer, fm_error *err)
{
	p2p_node nd;
	memset(&nd, 0, sizeof nd);
	nd.cfg = cfg;
	nd.d = d;
	nd.id = peer;
	int rv = fmi_p2p_validate(cfg, err);
	if (rv == FM_OK && (d->npeers != fmi_graph_n(cfg->graph) ||
	    peer >= d->npeers)) {
		rv = fm_error_set(err, FM_EINVAL, "the deployment lists %u peer "
		    "addresses for a topology of %u peers", d->npeers,
		    fmi_graph_n(cfg->graph));
	}
	if (rv == FM_OK) {
		rv = p2p_node_open(&nd, err);
	}
	fmi_blas_set_threads(1); /* same numerics as the simulation */
	for (uint32_t r = 1; rv == FM_OK && r <= cfg->rounds; r++) {
		int catch_up = 0;
		if (nd.behind > r) {
			fm_log(FM_LOG_INFO, "FM-REJOIN", "peer %u: neighbours are "
			    "at round %u; catching up from round %u", peer + 1,
			    nd.behind, r);
			r = nd.behind;
			catch_up = 1;
		}
		rv = p2p_node_round(&nd, r, catch_up, err);
		if (rv == FM_OK && nd.behind > r) {
			r--; /* retried as a catch-up round at nd.behind */
		}
	}
	if (rv == FM_OK) {
		fm_log(FM_LOG_INFO, "FM-DEPLOY", "peer %u finished %u rounds",
		    peer + 1, cfg->rounds);
	}
	p2p_node_close(&nd);
	return rv;
}
