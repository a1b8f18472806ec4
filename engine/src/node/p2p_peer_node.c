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
 * until its models come again.
 *
 * Peers apart by rounds (a restart, a healed partition). A neighbour that
 * has sent a model for a later round and none for this one has passed
 * this round: it is not waited for. A neighbour that is behind but
 * catching up (its models, late ones too, keep coming within the round
 * timeout of each other) is waited for: the peer ahead holds its round
 * and the one behind trains every round until they meet. Only a peer
 * that every present in-neighbour has passed (a restarted or cut-off
 * peer) catches up by a jump: to the round of the slowest of them, where
 * it mixes without training. So a jump never leaves a neighbour behind
 * the jumping peer, and no gap travels on around the graph (the old
 * rule, jump to any neighbour's round, opened the same gap to the
 * jumper's other neighbours, and peers leapfrogged round after round).
 *
 * Mass (rules with outgoing, push-sum): the mix is told to how many
 * out-neighbours the model actually went (fm_mix.out_sent) and gets the
 * models that came after their round's mix or were jumped over
 * (fm_mix.late) instead of them being dropped; a round cut short by a
 * jump is still mixed. With deploy.checkpoint the peer writes its state
 * (model and rule state) after every round and `--resume` restarts from
 * it; a neighbour drops a model for a round it already has from that
 * peer, so the resent round is not counted twice.
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
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
	uint32_t *nb_round; /* [n] newest round a model of j came for, 0: none */
	double *nb_heard;   /* [n] when a newer model or a heartbeat came */
	uint32_t *hb_round; /* [n] the round of j's last heartbeat, 0: none */
	uint32_t jump;   /* the round to catch up to, or 0 */
	int mixed;       /* the round under way was mixed */
	int caught;      /* the round under way is a catch-up round */
	int mass;        /* the rule attaches a mass: late models count */
	uint32_t trained, jumps, skipped; /* rounds trained, catch-ups */
	char state[4096]; /* NAME.state in deploy.checkpoint, or "" */
	uint32_t *eval_idx;
	size_t eval_n;
	float sketch[FMI_P2P_SKETCH];
	uint8_t report[FMI_P2P_SKETCH * sizeof(float) + FMI_PEER_METRICS_MAX];
	fmi_adj adj;    /* the round's graph */
	fmi_timers timers; /* the consensus instance's, wall clock */
	uint64_t fed;
	fm_peer_model *nb, *late; /* a mix's neighbours, late ones [cap] */
	/* this round's outgoing model and who still has to get it */
	fmi_payload *payload;
	uint32_t send_round, out_sent; /* out_sent: neighbours it went to */
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
	nd->out_sent = 0;
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
			nd->out_sent++;
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
	if (m->round <= nd->nb_round[m->from]) {
		/* links are in order: a restarted neighbour resending */
		snprintf(why, n, "it is for round %u, and this peer already had "
		    "its model for round %u", m->round, nd->nb_round[m->from]);
		return "FM-ROUND";
	}
	return NULL;
}

/* A neighbour's heartbeat: it is alive, waiting in round m.round. */
static void
p2p_on_heartbeat(p2p_node *nd, fmi_rmsg *r)
{
	const fmi_msg *m = &r->m;
	if (m->fed != nd->fed || m->from < 0 || (uint32_t)m->from >= nd->n ||
	    m->to != (int32_t)nd->id ||
	    strcmp(r->peer, nd->d->clients[m->from]) != 0) {
		fm_log(FM_LOG_WARN, "FM-SENDER", "peer %u dropped a heartbeat: "
		    "'%s' claims to be peer %d", nd->id + 1, r->peer,
		    m->from + 1);
	} else {
		uint32_t j = (uint32_t)m->from;
		nd->hb_round[j] = m->round;
		nd->nb_heard[j] = fmi_now();
		if (nd->absent[j]) {
			nd->absent[j] = 0;
			fm_log(FM_LOG_INFO, "FM-REJOIN", "peer %u: neighbour %u is "
			    "back (waiting in round %u)", nd->id + 1, j + 1,
			    m->round);
		}
	}
	fmi_rmsg_close(r);
}

/* While a peer waits longer than a heartbeat period, it tells its
 * out-neighbours that already have its model that it is alive and in
 * which round: a neighbour ahead then keeps waiting for it instead of
 * marking it absent while it in turn waits for one behind. */
static void
p2p_heartbeat(p2p_node *nd, const fmi_adj *a, uint32_t round)
{
	for (uint32_t e = a->out_off[nd->id]; e < a->out_off[nd->id + 1]; e++) {
		uint32_t j = a->out_adj[e];
		if (nd->out[j] != NULL && !nd->unsent[j]) {
			fmi_msg m = { .type = FMI_MSG_HEARTBEAT, .fed = nd->fed,
				.round = round, .from = (int32_t)nd->id,
				.to = (int32_t)j };
			(void)fmi_tran_send(nd->out[j], NULL, &m, NULL);
		}
	}
}

static void
p2p_on_message(p2p_node *nd, fmi_rmsg *r, uint32_t round)
{
	char why[512];
	if (r->m.type == FMI_MSG_PLUGIN) {
		p2p_on_plugin(nd, r);
		return;
	}
	if (r->m.type == FMI_MSG_HEARTBEAT) {
		p2p_on_heartbeat(nd, r);
		return;
	}
	const char *id = p2p_reject(nd, r, round, why, sizeof why);
	int old = id != NULL && strcmp(id, "FM-ROUND") == 0;
	uint32_t from = (uint32_t)r->m.from;
	/* a late model: the neighbour is behind (a push-sum mass still
	 * counts; any other rule has no use for it) */
	int late = id == NULL && r->m.round < round;
	if (id == NULL) {
		nd->nb_round[from] = r->m.round;
		nd->nb_heard[from] = fmi_now(); /* it makes progress */
	}
	if ((old || late) && nd->absent[from]) {
		/* a late model still shows the neighbour is alive: wait for it
		 * again (while its models keep coming it catches up) */
		nd->absent[from] = 0;
		fm_log(FM_LOG_INFO, "FM-REJOIN", "peer %u: neighbour %d is back "
		    "(at round %u, behind this peer's %u)", nd->id + 1,
		    r->m.from + 1, r->m.round, round);
	}
	if (late && !nd->mass) {
		id = "FM-ROUND";
		old = 1;
		snprintf(why, sizeof why, "it is for round %u during round %u "
		    "(late)", r->m.round, round);
	}
	if (id != NULL || nd->nheld == nd->cap) {
		fm_log(old ? FM_LOG_DEBUG : FM_LOG_WARN, id ? id : "FM-GOSSIP",
		    "peer %u dropped a model from '%s': %s", nd->id + 1, r->peer,
		    id ? why : "too many models held");
		fmi_rmsg_close(r);
		return;
	}
	if (nd->absent[from]) {
		nd->absent[from] = 0;
		fm_log(FM_LOG_INFO, "FM-REJOIN", "peer %u: neighbour %u is back "
		    "(round %u)", nd->id + 1, from + 1, r->m.round);
	}
	fmi_f32_from_le((float *)fmi_rmsg_data(r), nd->dim);
	nd->held[nd->nheld++] = (p2p_held) { r->m.round, from, *r };
}

/* A model of j for round is held. */
static int
p2p_have(const p2p_node *nd, uint32_t j, uint32_t round)
{
	for (uint32_t i = 0; i < nd->nheld; i++) {
		if (nd->held[i].round == round && nd->held[i].from == j) {
			return 1;
		}
	}
	return 0;
}

/* In-neighbour j is still awaited in round: present, its model for the
 * round not here, and it has not passed the round (a neighbour with a
 * model for a later round and none for this one never sends it; one
 * whose heartbeat says it waits in this round or a later one sent its
 * model for this round already, and it was lost). */
static int
p2p_awaited(const p2p_node *nd, uint32_t j, uint32_t round)
{
	return !nd->absent[j] && nd->nb_round[j] < round &&
	    nd->hb_round[j] < round && !p2p_have(nd, j, round);
}

/* When the wait for the awaited in-neighbours of round ends: wait
 * seconds after the round began, or after the last model (of any round)
 * or heartbeat from one of them, if later: a neighbour behind that is
 * catching up (or waits for one behind it) is waited for as long as it
 * shows it is alive. 0 when none is awaited. Waits cannot go round in a
 * circle: an awaited neighbour is in an earlier round, and so is every
 * neighbour it awaits in turn. */
static double
p2p_deadline(const p2p_node *nd, const fmi_adj *a, uint32_t round,
    double t0, double wait)
{
	double end = 0;
	for (uint32_t e = a->in_off[nd->id]; e < a->in_off[nd->id + 1]; e++) {
		uint32_t j = a->in_adj[e];
		if (p2p_awaited(nd, j, round)) {
			end = fmax(end, fmax(t0, nd->nb_heard[j]) + wait);
		}
	}
	return end;
}

/* The round to jump to, or 0: when every present in-neighbour of round
 * has passed it (sent a later round, not this one; unheard ones have
 * not), the smallest of their rounds, if that is at least 2 ahead (one
 * ahead: this round ends without them and the next has their model). */
static uint32_t
p2p_jump_target(const p2p_node *nd, const fmi_adj *a, uint32_t round)
{
	uint32_t target = 0;
	for (uint32_t e = a->in_off[nd->id]; e < a->in_off[nd->id + 1]; e++) {
		uint32_t j = a->in_adj[e];
		if (nd->absent[j]) {
			continue;
		}
		if (nd->nb_round[j] <= round || p2p_have(nd, j, round)) {
			return 0;
		}
		target = target == 0 ? nd->nb_round[j] :
		                       FMI_MIN(target, nd->nb_round[j]);
	}
	return target > round + 1 ? target : 0;
}

static void
p2p_mark_absent(p2p_node *nd, const fmi_adj *a, uint32_t round)
{
	for (uint32_t e = a->in_off[nd->id]; e < a->in_off[nd->id + 1]; e++) {
		uint32_t j = a->in_adj[e];
		if (p2p_awaited(nd, j, round)) {
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

/* Pending sends of this round to neighbours that showed in this round
 * that they are alive (their model or a heartbeat of this round came):
 * their link is only full for a moment (it queues P2P_QUEUE messages,
 * and the rule's own messages go first), so the send is retried until
 * the round's deadline instead of being given up when the models are
 * in. A link with no such sign of life does not hold the round. */
static uint32_t
p2p_live_sends(const p2p_node *nd, uint32_t round)
{
	uint32_t n = 0;
	for (uint32_t j = 0; j < nd->n; j++) {
		n += nd->unsent[j] && !nd->unreachable[j] &&
		    (nd->nb_round[j] >= round || nd->hb_round[j] >= round);
	}
	return n;
}

/* Waits for this round's models until every present in-neighbour's came,
 * the deadline passed, or the neighbours turned out to be far ahead.
 * Whatever is already queued is read first, even when no neighbour is
 * awaited: that is how an absent neighbour's return is noticed. */
static int
p2p_collect(p2p_node *nd, const fmi_adj *a, uint32_t round, double wait,
    fm_error *err)
{
	double t0 = fmi_now(), hb = fmax(wait / 4, 0.05), next_hb = t0 + hb;
	int rv;
	while ((rv = p2p_receive(nd, round, 0, err)) == FM_OK) {
	}
	if (rv != FM_ETIMEDOUT) {
		return rv;
	}
	for (;;) {
		/* Sends to a neighbour not connected yet are retried while
		 * the round lasts; the first round waits for them (the links
		 * come up), later rounds only for neighbours alive in this
		 * round (p2p_live_sends): a dead link must not hold them. */
		uint32_t sending = p2p_flush_sends(nd);
		for (uint32_t j = 0; j < nd->n; j++) {
			if (nd->backlog[j].n > 0) {
				(void)p2p_send_backlog(nd, j);
			}
		}
		if ((nd->jump = p2p_jump_target(nd, a, round)) > 0) {
			p2p_give_up_sends(nd, round);
			return FM_OK;
		}
		double deadline = p2p_deadline(nd, a, round, t0, wait);
		if (deadline == 0 && (sending == 0 ||
		    (round > 1 && p2p_live_sends(nd, round) == 0))) {
			p2p_give_up_sends(nd, round);
			return FM_OK; /* nobody is awaited */
		}
		double left = fmax(deadline, t0 + wait) - fmi_now();
		if (left <= 0) {
			p2p_mark_absent(nd, a, round);
			p2p_give_up_sends(nd, round);
			return FM_OK;
		}
		if (fmi_now() >= next_hb) {
			p2p_heartbeat(nd, a, round);
			next_hb = fmi_now() + hb;
		}
		int ms = (int)(fmin(left, next_hb - fmi_now()) * 1000) + 1;
		rv = p2p_receive(nd, round, sending ? FMI_MIN(ms, 20) : ms, err);
		if (rv != FM_OK && rv != FM_ETIMEDOUT) {
			return rv;
		}
	}
}

/* Mixes the held models of round into the peer's next model, with the
 * models of earlier rounds still held as late ones (only a rule with a
 * mass keeps those). */
static void
p2p_mix(p2p_node *nd, const fmi_adj *a, uint32_t round)
{
	uint32_t k = 0, nlate = 0;
	for (uint32_t e = a->in_off[nd->id]; e < a->in_off[nd->id + 1]; e++) {
		uint32_t j = a->in_adj[e];
		for (uint32_t i = 0; i < nd->nheld; i++) {
			p2p_held *h = &nd->held[i];
			if (h->round == round && h->from == j) {
				nd->nb[k++] = fmi_peer_model_of(&h->r);
			}
		}
	}
	for (uint32_t i = 0; nd->mass && i < nd->nheld; i++) {
		if (nd->held[i].round < round) {
			nd->late[nlate++] = fmi_peer_model_of(&nd->held[i].r);
		}
	}
	int rv = fmi_peer_mix_faults(&nd->peer, a, round, nd->nb, k,
	    nd->out_sent, nd->late, nlate);
	fm_log(FM_LOG_DEBUG, "FM-ROUND", "peer %u round %u: %s, mixed %u of "
	    "%u neighbours' models and %u late ones; its model went to %u of "
	    "%u", nd->id + 1, round, nd->caught ? "caught up (not trained)" :
	    "trained", k, a->in_off[nd->id + 1] - a->in_off[nd->id], nlate,
	    nd->out_sent, a->out_off[nd->id + 1] - a->out_off[nd->id]);
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

/* After the round's mix: the peer's state file (deploy.checkpoint). */
static void
p2p_save(p2p_node *nd, uint32_t round)
{
	fm_error e;
	if (nd->state[0] != '\0' &&
	    fmi_peer_state_write(&nd->peer, nd->state, round, &e) != FM_OK) {
		fm_log(FM_LOG_WARN, "FM-CHECKPOINT", "peer %u: %s", nd->id + 1,
		    e.msg);
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
	nd->mixed = 0;
	nd->caught = catch_up;
	if (!catch_up && (nd->jump = p2p_jump_target(nd, a, round)) > 0) {
		return FM_OK; /* everyone has passed this round already */
	}
	if (catch_up) {
		memcpy(nd->peer.y, nd->peer.x, nd->dim * sizeof(float));
	} else if ((rv = fmi_peer_train(&nd->peer, cfg, nd->tr, round)) !=
	    FM_OK) {
		return fm_error_set(err, rv, "round %u: local training failed: "
		    "%s", round, fm_strerror(rv));
	} else {
		nd->trained++;
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
	if (rv == FM_OK) {
		/* also a round cut short by a jump: its shares went out */
		p2p_mix(nd, a, round);
		nd->mixed = 1;
		p2p_save(nd, round);
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
	nd->nb_round = calloc(nd->n, sizeof *nd->nb_round);
	nd->nb_heard = calloc(nd->n, sizeof *nd->nb_heard);
	nd->hb_round = calloc(nd->n, sizeof *nd->hb_round);
	nd->nb = calloc(nd->n, sizeof *nd->nb);
	nd->late = calloc(nd->cap, sizeof *nd->late);
	nd->unsent = calloc(nd->n, 1);
	nd->unreachable = calloc(nd->n, 1);
	nd->backlog = calloc(nd->n, sizeof *nd->backlog);
	if (nd->out == NULL || nd->held == NULL || nd->absent == NULL ||
	    nd->nb_round == NULL || nd->nb_heard == NULL || nd->late == NULL ||
	    nd->hb_round == NULL ||
	    nd->nb == NULL || nd->unsent == NULL || nd->unreachable == NULL ||
	    nd->backlog == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	int rv = fmi_tran_ctx_new(&nd->tc, NULL, err);
	if (rv == FM_OK) {
		fmi_peer_net net = { nd, p2p_net_send, p2p_net_timer };
		rv = fmi_peer_init(&nd->peer, nd->cfg, nd->id, &net, err);
	}
	if (rv == FM_OK) {
		nd->mass = fmi_peer_carries_mass(&nd->peer);
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

/* The state file (deploy.checkpoint/NAME.state); with --resume the peer
 * starts after its saved round. *start: the first round to run. */
static int
p2p_state_open(p2p_node *nd, uint32_t *start, fm_error *err)
{
	const char *dir = nd->cfg->state_dir;
	const char *name = nd->d->clients[nd->id];
	uint32_t round = 0;
	if (dir == NULL || dir[0] == '\0') {
		return nd->cfg->resume ? fm_error_set(err, FM_EINVAL, "--resume "
		    "needs deploy.checkpoint: the folder where each peer keeps "
		    "its state") : FM_OK;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		return fm_error_set(err, FM_EIO, "cannot create the peer state "
		    "folder %s: %s", dir, strerror(errno));
	}
	int len = snprintf(nd->state, sizeof nd->state, "%s/%s.state", dir,
	    name);
	if (len < 0 || (size_t)len >= sizeof nd->state) {
		return fm_error_set(err, FM_EINVAL, "peer state path too long");
	}
	if (!nd->cfg->resume) {
		return FM_OK; /* a new run: the file is written after round 1 */
	}
	int rv = fmi_peer_state_read(&nd->peer, nd->state, &round, err);
	if (rv == FM_ENOENT) {
		fm_log(FM_LOG_WARN, "FM-RESUME", "peer %u: no state in %s yet; "
		    "starting at round 1", nd->id + 1, nd->state);
		return FM_OK;
	}
	if (rv == FM_OK) {
		fm_log(FM_LOG_INFO, "FM-RESUME", "peer %u resumes after round %u "
		    "from %s", nd->id + 1, round, nd->state);
		*start = round + 1;
	}
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
	free(nd->nb_round);
	free(nd->nb_heard);
	free(nd->hb_round);
	free(nd->late);
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
	uint32_t r = 1;
	if (rv == FM_OK) {
		rv = p2p_state_open(&nd, &r, err);
	}
	fmi_blas_set_threads(1); /* same numerics as the simulation */
	while (rv == FM_OK && r <= cfg->rounds) {
		int catch_up = 0;
		if (nd.jump > r) {
			fm_log(FM_LOG_INFO, "FM-REJOIN", "peer %u: every neighbour "
			    "is past round %u; catching up to round %u, the "
			    "slowest one's", peer + 1, r, nd.jump);
			nd.jumps++;
			nd.skipped += nd.jump - r;
			r = nd.jump;
			catch_up = 1;
		}
		nd.jump = 0;
		rv = p2p_node_round(&nd, r, catch_up, err);
		if (rv == FM_OK && (nd.mixed || nd.jump <= r)) {
			r++; /* else: jumped over before training */
		}
	}
	if (rv == FM_OK) {
		fm_log(FM_LOG_INFO, "FM-DEPLOY", "peer %u finished %u rounds: "
		    "trained %u, caught up %u times, skipping %u rounds",
		    peer + 1, cfg->rounds, nd.trained, nd.jumps, nd.skipped);
	}
	p2p_node_close(&nd);
	return rv;
}
