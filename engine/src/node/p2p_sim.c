/* SPDX-License-Identifier: MIT */
/*
 * p2p_sim.c: a decentralized federation simulated in one process.
 *
 * Worker threads train the peers (any worker any peer), and every model
 * travels to its neighbours as a GOSSIP message over inproc:// through
 * the transport, as in a deployment (p2p_peer_node.c, over tcp://): no
 * peer reads another's memory. Worker w acts as a message host: it holds
 * the inbox (a listening endpoint) of the peers j with j % workers == w,
 * and a link to every host's inbox. A round:
 *   1. (any worker) peer i trains and sends y_i to its out-neighbours'
 *      hosts, one shared buffer for all of them;
 *   2. (per host) the host receives the round's models for its peers,
 *      sorts them by (receiver, sender) and mixes each of its peers with
 *      its in-neighbours' models in peer-id order;
 *   3. (per host) the end of the round: plugin messages, timers;
 *   4. (any worker) evaluation.
 * Mixing order and every peer's RNG streams do not depend on the thread
 * count, so neither do the results.
 *
 * The consensus instances' node link (plugin messages, timers, metrics)
 * is as deterministic. What an instance sends (host->send) waits in its
 * peer's outbox until the phase ends; the caller then sends every
 * outbox, peer by peer, as FMI_MSG_PLUGIN messages over inproc:// to the
 * receivers' hosts, and the next phase delivers them, sorted by
 * (receiver, sender, send order): what was sent while training (outgoing)
 * or at the end of the previous round arrives right before the
 * receiver's mix; what was sent while mixing (mix, or a message handler
 * before the mix) at the end of the round. Timers run on a round clock:
 * it reads r - 1 seconds all through round r, and at the end of round r
 * the timers due by r seconds fire (after that point's messages, by due
 * time, tag and the order they were set). So a timer of up to 1000 ms
 * fires at the end of the round it was set in, one of 1001..2000 ms at
 * the end of the next, and so on; a timer set while timers fire waits
 * for the next round's end. Messages and timers left after the last
 * round are dropped.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/node.h"
#include "node/peer.h"

typedef struct p2p_sim p2p_sim;

/* A plugin message waiting in its sender's outbox. */
typedef struct p2p_out {
	fmi_msg m;
	void *data;
} p2p_out;

typedef struct p2p_box {
	p2p_out *o;
	uint32_t n, cap;
} p2p_box;
typedef int (*p2p_task)(p2p_sim *s, uint32_t peer, uint32_t worker);

struct p2p_sim {
	const fmi_p2p_cfg *cfg;
	uint32_t n;
	fmi_peer *peers;
	fmi_trainer **tr; /* one per worker */
	uint32_t nworkers;
	fm_peer_model **nb; /* per worker: scratch of in-neighbours */
	fmi_tran_ctx *tc;
	fmi_tran **in;      /* [nworkers]: host h's inbox */
	fmi_tran **out;     /* [nworkers][nworkers]: worker w to host h */
	fmi_rmsg **held;    /* [nworkers]: host h's models of this round */
	uint32_t *cap;      /* [nworkers]: their capacity */
	/* plugin messages (the consensus instances' node link) */
	p2p_box *box;       /* [n]: peer i's outbox */
	fmi_rmsg **pheld;   /* [nworkers]: host h's plugin messages */
	uint32_t *pcap;     /* [nworkers]: their capacity */
	uint32_t *pwant;    /* [nworkers]: sent to host h's peers, due */
	fmi_timers *timers; /* [n]: peer i's, on the round clock */
	fmi_peer_metrics *pm; /* [n]: this round's plugin metrics */
	uint8_t *honest;    /* [n] */
	uint64_t fed;
	int shared;         /* one payload for all neighbours (little-endian
	                     * hosts: receivers convert nothing in place) */
	fmi_adj adj;
	uint32_t round;
	uint32_t *eval_idx;
	size_t eval_n;
	double *acc, *loss; /* per peer, this round */
	/* a parallel phase */
	p2p_task task;
	uint32_t count; /* tasks of the phase */
	atomic_uint next;
	atomic_int rv;
};

typedef struct p2p_worker {
	p2p_sim *s;
	uint32_t w;
} p2p_worker;

static int
p2p_honest(const p2p_sim *s, uint32_t i)
{
	return fmi_p2p_honest(s->cfg, i);
}

static void *
p2p_worker_main(void *arg)
{
	p2p_worker *pw = arg;
	p2p_sim *s = pw->s;
	for (;;) {
		uint32_t i = atomic_fetch_add(&s->next, 1);
		if (i >= s->count || atomic_load(&s->rv) != FM_OK) {
			break;
		}
		int rv = s->task(s, i, pw->w);
		if (rv != FM_OK) {
			int ok = FM_OK;
			atomic_compare_exchange_strong(&s->rv, &ok, rv);
		}
	}
	return NULL;
}

/* Runs task for items 0..count) on the worker threads (the caller is
 * worker 0). The result does not depend on which worker takes which. A
 * worker's endpoints are used by its thread alone; the thread creations
 * and joins order their uses from phase to phase. */
static int
p2p_parallel(p2p_sim *s, p2p_task task, uint32_t count)
{
	pthread_t th[64];
	p2p_worker pw[64];
	uint32_t started = 0;
	s->task = task;
	s->count = count;
	atomic_store(&s->next, 0);
	atomic_store(&s->rv, FM_OK);
	for (uint32_t w = 1; w < s->nworkers; w++) {
		pw[w] = (p2p_worker) { s, w };
		if (pthread_create(&th[w], NULL, p2p_worker_main, &pw[w]) != 0) {
			break;
		}
		started = w;
	}
	pw[0] = (p2p_worker) { s, 0 };
	p2p_worker_main(&pw[0]);
	for (uint32_t w = 1; w <= started; w++) {
		pthread_join(th[w], NULL);
	}
	return atomic_load(&s->rv);
}

/* Step 1: peer i trains on worker w and sends y_i to the hosts of its
 * out-neighbours. */
static int
p2p_train_one(p2p_sim *s, uint32_t i, uint32_t w)
{
	const fmi_adj *a = &s->adj;
	fmi_peer *p = &s->peers[i];
	fmi_payload *pl = NULL;
	fmi_peer_begin_round(p, a, s->round);
	int rv = fmi_peer_train(p, s->cfg, s->tr[w], s->round);
	if (rv == FM_OK) {
		rv = fmi_peer_prepare_send(p, a, s->round);
	}
	for (uint32_t e = a->out_off[i]; rv == FM_OK && e < a->out_off[i + 1];
	    e++) {
		uint32_t j = a->out_adj[e];
		fmi_msg m;
		if (pl == NULL || !s->shared) {
			fmi_payload_unref(pl);
			if ((pl = fmi_peer_payload(p)) == NULL) {
				rv = FM_ENOMEM;
				break;
			}
		}
		fmi_peer_gossip(p, s->fed, s->round, j, &m);
		rv = fmi_tran_send(s->out[w * s->nworkers + j % s->nworkers],
		    NULL, &m, pl);
	}
	fmi_payload_unref(pl);
	return rv;
}

static int
p2p_by_receiver(const void *pa, const void *pb)
{
	const fmi_msg *a = &((const fmi_rmsg *)pa)->m;
	const fmi_msg *b = &((const fmi_rmsg *)pb)->m;
	if (a->to != b->to) {
		return a->to < b->to ? -1 : 1;
	}
	if (a->from != b->from) {
		return a->from < b->from ? -1 : 1;
	}
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* ---- the consensus instances' node link ------------------------------ */

static int
p2p_net_send(void *ud, uint32_t from, const fmi_msg *m, const void *data,
    size_t len)
{
	p2p_sim *s = ud;
	p2p_box *b = &s->box[from];
	if (b->n == b->cap) {
		uint32_t cap = b->cap ? 2 * b->cap : 8;
		p2p_out *o = realloc(b->o, cap * sizeof *o);
		if (o == NULL) {
			return FM_ENOMEM;
		}
		b->o = o;
		b->cap = cap;
	}
	void *copy = malloc(len ? len : 1);
	if (copy == NULL) {
		return FM_ENOMEM;
	}
	if (len > 0) {
		memcpy(copy, data, len);
	}
	b->o[b->n++] = (p2p_out) { *m, copy };
	return FM_OK;
}

static int
p2p_net_timer(void *ud, uint32_t peer, fmi_inst_head *h, uint32_t ms,
    uint64_t tag)
{
	p2p_sim *s = ud;
	/* the round clock reads round - 1 seconds all through a round */
	return fmi_timers_add_at(&s->timers[peer], h,
	    (double)(s->round - 1) + ms / 1000.0, tag);
}

static void
p2p_box_clear(p2p_box *b)
{
	for (uint32_t k = 0; k < b->n; k++) {
		free(b->o[k].data);
	}
	b->n = 0;
}

/* Between two phases (on the calling thread, worker 0): sends every
 * outbox, peer by peer, to the receivers' hosts; s->pwant[h] counts what
 * host h's next phase receives. */
static void
p2p_flush_boxes(p2p_sim *s)
{
	memset(s->pwant, 0, s->nworkers * sizeof *s->pwant);
	for (uint32_t i = 0; i < s->n; i++) {
		p2p_box *b = &s->box[i];
		for (uint32_t k = 0; k < b->n; k++) {
			const fmi_msg *m = &b->o[k].m;
			uint32_t h = (uint32_t)m->to % s->nworkers;
			int rv = fmi_tran_send_bytes(s->out[h], NULL, m,
			    b->o[k].data, m->n);
			if (rv == FM_OK) {
				s->pwant[h]++;
			} else {
				fm_log(FM_LOG_WARN, "FM-PLUGIN-MSG", "round %u: "
				    "a message for plugin '%s' from peer %d to "
				    "peer %d was lost (%s)", s->round, m->plugin,
				    m->from + 1, m->to + 1, fm_strerror(rv));
			}
		}
		p2p_box_clear(b);
	}
}

/* Host h's plugin messages arrive in s->pheld[h][0..pwant) (sorted). */
static int
p2p_grow(fmi_rmsg **held, uint32_t *cap, uint32_t want)
{
	if (want > *cap) {
		fmi_rmsg *g = realloc(*held, want * sizeof *g);
		if (g == NULL) {
			return FM_ENOMEM;
		}
		*held = g;
		*cap = want;
	}
	return FM_OK;
}

/* Delivers the (sorted) plugin messages for peer j from *k on. */
static void
p2p_deliver(p2p_sim *s, uint32_t h, uint32_t j, uint32_t *k)
{
	fmi_rmsg *ph = s->pheld[h];
	while (*k < s->pwant[h] && (uint32_t)ph[*k].m.to == j) {
		(void)fmi_peer_deliver(&s->peers[j], &ph[*k]);
		fmi_rmsg_close(&ph[(*k)++]);
	}
}

/* Receives the want models of this round that host h's peers get, and
 * the s->pwant[h] plugin messages sent to them. */
static int
p2p_receive(p2p_sim *s, uint32_t h, uint32_t want)
{
	fmi_rmsg *held = s->held[h], *ph = s->pheld[h];
	uint32_t got = 0, pgot = 0, pwant = s->pwant[h];
	while (got < want || pgot < pwant) {
		char why[512];
		fmi_rmsg *r = got < want ? &held[got] : &ph[pgot];
		int rv = fmi_tran_recv(s->in[h], r, 60000, NULL);
		if (rv == FM_EPROTO || rv == FM_EVERSION) {
			continue; /* logged and dropped by the transport */
		}
		if (rv != FM_OK) {
			fm_log(FM_LOG_ERR, "FM-GOSSIP", "round %u: %u of %u "
			    "models and %u of %u plugin messages for the peers "
			    "of host %u came", s->round, got, want, pgot, pwant,
			    h);
			break;
		}
		if (r->m.type == FMI_MSG_PLUGIN && pgot < pwant &&
		    r->m.to >= 0 && (uint32_t)r->m.to % s->nworkers == h) {
			if (r != &ph[pgot]) {
				ph[pgot] = *r;
			}
			pgot++;
			continue;
		}
		const char *id = fmi_peer_gossip_check(r, s->fed, s->n,
		    s->cfg->arch.nparams, why, sizeof why);
		if (id == NULL && (r->m.round != s->round ||
		    (uint32_t)r->m.to % s->nworkers != h)) {
			snprintf(why, sizeof why, "round %u for peer %d at host "
			    "%u in round %u", r->m.round, r->m.to + 1, h,
			    s->round);
			id = "FM-ROUND";
		}
		if (id != NULL || got >= want) {
			fm_log(FM_LOG_WARN, id ? id : "FM-GOSSIP", "simulation "
			    "dropped a model: %s", id ? why : "one too many");
			fmi_rmsg_close(r);
			continue;
		}
		if (!s->shared) {
			fmi_f32_from_le((float *)fmi_rmsg_data(r),
			    s->cfg->arch.nparams);
		}
		got++;
	}
	if (got < want || pgot < pwant) {
		for (uint32_t k = 0; k < got; k++) {
			fmi_rmsg_close(&held[k]);
		}
		for (uint32_t k = 0; k < pgot; k++) {
			fmi_rmsg_close(&ph[k]);
		}
		s->pwant[h] = 0;
		return FM_ETIMEDOUT;
	}
	if (want > 1) { /* none when the host's peers have no in-neighbour */
		qsort(held, want, sizeof *held, p2p_by_receiver);
	}
	if (pwant > 1) {
		qsort(ph, pwant, sizeof *ph, p2p_by_receiver);
	}
	return FM_OK;
}

/* Step 2 at host h (on worker w): every peer of the host mixes its
 * in-neighbours' models, in peer-id order. */
static int
p2p_mix_host(p2p_sim *s, uint32_t h, uint32_t w)
{
	const fmi_adj *a = &s->adj;
	fm_peer_model *nb = s->nb[w];
	uint32_t want = 0, k = 0, pk = 0;
	for (uint32_t j = h; j < s->n; j += s->nworkers) {
		want += fmi_adj_in_degree(a, j);
	}
	int rv = p2p_grow(&s->held[h], &s->cap[h], want);
	if (rv == FM_OK) {
		rv = p2p_grow(&s->pheld[h], &s->pcap[h], s->pwant[h]);
	}
	if (rv == FM_OK) {
		rv = p2p_receive(s, h, want);
	}
	for (uint32_t j = h; rv == FM_OK && j < s->n; j += s->nworkers) {
		uint32_t nnb = 0;
		p2p_deliver(s, h, j, &pk); /* plugin messages before the mix */
		while (k < want && (uint32_t)s->held[h][k].m.to == j) {
			nb[nnb++] = fmi_peer_model_of(&s->held[h][k++]);
		}
		int mrv = fmi_peer_mix(&s->peers[j], a, s->round, nb, nnb);
		if (mrv != FM_OK) {
			fm_log(FM_LOG_WARN, "FM-MIX", "round %u, peer %u: %s "
			    "'%s' failed (%s); the peer keeps its own model",
			    s->round, j + 1, "consensus",
			    s->cfg->consensus->desc->name, fm_strerror(mrv));
		}
	}
	for (uint32_t i = 0; rv == FM_OK && i < want; i++) {
		fmi_rmsg_close(&s->held[h][i]);
	}
	return rv;
}

/* Step 3 at host h: the end of the round for its peers, in peer-id
 * order: the plugin messages sent while mixing, then the timers due. */
static int
p2p_end_host(p2p_sim *s, uint32_t h, uint32_t w)
{
	uint32_t pk = 0;
	(void)w;
	int rv = p2p_grow(&s->pheld[h], &s->pcap[h], s->pwant[h]);
	if (rv == FM_OK) {
		rv = p2p_receive(s, h, 0);
	}
	for (uint32_t j = h; rv == FM_OK && j < s->n; j += s->nworkers) {
		p2p_deliver(s, h, j, &pk);
		(void)fmi_timers_fire_until(&s->timers[j], (double)s->round);
	}
	return rv;
}

/* Whether the end of the round has anything to do. */
static int
p2p_end_due(const p2p_sim *s)
{
	for (uint32_t h = 0; h < s->nworkers; h++) {
		if (s->pwant[h] > 0) {
			return 1;
		}
	}
	for (uint32_t i = 0; i < s->n; i++) {
		for (int k = 0; k < s->timers[i].n; k++) {
			if (s->timers[i].t[k].due <= (double)s->round) {
				return 1;
			}
		}
	}
	return 0;
}

static int
p2p_eval_one(p2p_sim *s, uint32_t i, uint32_t w)
{
	fmi_eval ev;
	s->acc[i] = s->loss[i] = NAN;
	if (!p2p_honest(s, i)) {
		return FM_OK;
	}
	int rv = fmi_evaluate(s->tr[w], s->peers[i].x, s->cfg->test,
	    s->eval_idx, s->eval_idx != NULL ? s->eval_n : 0, &ev);
	if (rv == FM_OK) {
		s->acc[i] = ev.accuracy;
		s->loss[i] = ev.loss;
	}
	return rv;
}

/* Mean of the honest peers' models into out[dim]; returns their count. */
static uint32_t
p2p_mean_model(const p2p_sim *s, float *out)
{
	size_t dim = s->cfg->arch.nparams;
	uint32_t h = 0;
	memset(out, 0, dim * sizeof(float));
	for (uint32_t i = 0; i < s->n; i++) {
		if (p2p_honest(s, i)) {
			fmi_axpy(dim, 1.0f, s->peers[i].x, out);
			h++;
		}
	}
	if (h > 0) {
		fmi_scal(dim, 1.0f / (float)h, out);
	}
	return h;
}

/* Mean L2 distance of honest peers' models from their average. */
static double
p2p_consensus_distance(const p2p_sim *s, float *mean)
{
	size_t dim = s->cfg->arch.nparams;
	uint32_t h = p2p_mean_model(s, mean);
	double sum = 0;
	for (uint32_t i = 0; i < s->n; i++) {
		if (!p2p_honest(s, i)) {
			continue;
		}
		double d2 = 0;
		const float *x = s->peers[i].x;
		for (size_t k = 0; k < dim; k++) {
			double d = (double)x[k] - (double)mean[k];
			d2 += d * d;
		}
		sum += sqrt(d2);
	}
	return h > 0 ? sum / h : NAN;
}

/* Accuracy statistics over honest peers, and consensus distance. */
static void
p2p_round_metrics(p2p_sim *s, fmi_round_metrics *m, float *mean)
{
	double sa = 0, sl = 0, mn = INFINITY, mx = -INFINITY;
	double tl = 0;
	uint64_t ne = 0;
	uint32_t h = 0;
	for (uint32_t i = 0; i < s->n; i++) {
		if (!p2p_honest(s, i)) {
			continue;
		}
		tl += s->peers[i].loss * (double)s->peers[i].examples;
		ne += s->peers[i].examples;
		if (!isnan(s->acc[i])) {
			sa += s->acc[i];
			sl += s->loss[i];
			mn = fmin(mn, s->acc[i]);
			mx = fmax(mx, s->acc[i]);
			h++;
		}
	}
	m->train_loss = ne ? tl / (double)ne : NAN;
	if (h > 0) {
		m->evaluated = 1;
		m->accuracy = sa / h;
		m->loss = sl / h;
		fmi_round_metric(m, "accuracy_min", mn);
		fmi_round_metric(m, "accuracy_max", mx);
	}
	fmi_round_metric(m, "consensus_distance", p2p_consensus_distance(s, mean));
	for (uint32_t i = 0; i < s->n; i++) {
		s->pm[i] = s->peers[i].metrics;
	}
	fmi_peer_metrics_mean(m, s->pm, s->honest, s->n);
}

static int
p2p_round(p2p_sim *s, fmi_round_metrics *m, float *mean, fm_error *err)
{
	const fmi_p2p_cfg *cfg = s->cfg;
	double t0 = fmi_now();
	uint32_t every = cfg->eval_every ? cfg->eval_every : 1;
	memset(m, 0, sizeof *m);
	m->round = s->round;
	for (uint32_t i = 0; i < s->n; i++) { /* as the deployed monitor */
		m->sampled += p2p_honest(s, i);
	}
	m->updates = m->sampled;
	int rv = fmi_graph_round(cfg->graph, s->round, &s->adj, err);
	if (rv == FM_OK && (rv = p2p_parallel(s, p2p_train_one, s->n)) !=
	    FM_OK) {
		return fm_error_set(err, rv, "round %u: local training or "
		    "sending the models failed: %s", s->round, fm_strerror(rv));
	}
	p2p_flush_boxes(s);
	if (rv == FM_OK && (rv = p2p_parallel(s, p2p_mix_host, s->nworkers)) !=
	    FM_OK) {
		return fm_error_set(err, rv, "round %u: the peers' models did "
		    "not all arrive (%s)", s->round, fm_strerror(rv));
	}
	p2p_flush_boxes(s);
	if (p2p_end_due(s) && (rv = p2p_parallel(s, p2p_end_host,
	    s->nworkers)) != FM_OK) {
		return fm_error_set(err, rv, "round %u: the peers' plugin "
		    "messages did not all arrive (%s)", s->round,
		    fm_strerror(rv));
	}
	int eval = cfg->test != NULL &&
	    (s->round % every == 0 || s->round == cfg->rounds);
	for (uint32_t i = 0; i < s->n; i++) {
		s->acc[i] = s->loss[i] = NAN;
	}
	if (rv == FM_OK && eval && (rv = p2p_parallel(s, p2p_eval_one, s->n)) !=
	    FM_OK) {
		return fm_error_set(err, rv, "round %u: evaluation failed: %s",
		    s->round, fm_strerror(rv));
	}
	if (rv != FM_OK) {
		return rv;
	}
	p2p_round_metrics(s, m, mean);
	m->bytes_sent = m->bytes_received = (uint64_t)s->adj.out_off[s->n] *
	    cfg->arch.nparams * sizeof(float);
	m->seconds = fmi_now() - t0;
	return FM_OK;
}

static void
p2p_free(p2p_sim *s)
{
	for (uint32_t i = 0; s->peers != NULL && i < s->n; i++) {
		fmi_peer_fini(&s->peers[i]);
	}
	for (uint32_t i = 0; s->box != NULL && i < s->n; i++) {
		p2p_box_clear(&s->box[i]); /* sent after the last round */
		free(s->box[i].o);
	}
	free(s->box);
	free(s->timers);
	free(s->pm);
	free(s->honest);
	for (uint32_t k = 0; s->out != NULL &&
	    k < s->nworkers * s->nworkers; k++) {
		fmi_tran_close(s->out[k]);
	}
	for (uint32_t w = 0; w < s->nworkers; w++) {
		if (s->in != NULL) {
			fmi_tran_close(s->in[w]);
		}
		if (s->held != NULL) {
			free(s->held[w]);
		}
		if (s->pheld != NULL) {
			free(s->pheld[w]);
		}
		if (s->tr != NULL) {
			fmi_trainer_free(s->tr[w]);
		}
		if (s->nb != NULL) {
			free(s->nb[w]);
		}
	}
	fmi_tran_ctx_free(s->tc);
	free(s->in);
	free(s->out);
	free(s->held);
	free(s->cap);
	free(s->pheld);
	free(s->pcap);
	free(s->pwant);
	free(s->peers);
	free(s->tr);
	free(s->nb);
	free(s->eval_idx);
	free(s->acc);
	free(s->loss);
}

static int
p2p_host_is_le(void)
{
	const uint32_t one = 1;
	uint8_t b;
	memcpy(&b, &one, 1);
	return b == 1;
}

/* The hosts' inboxes on inproc://, and every worker's link to each. */
static int
p2p_links(p2p_sim *s, fm_error *err)
{
	static atomic_uint sim_counter;
	uint32_t id = atomic_fetch_add(&sim_counter, 1), nw = s->nworkers;
	char url[96], name[FMI_PEER_MAX + 1];
	s->fed = fmi_fed_id(s->cfg->seed);
	s->shared = p2p_host_is_le();
	s->in = calloc(nw, sizeof *s->in);
	s->out = calloc((size_t)nw * nw, sizeof *s->out);
	s->held = calloc(nw, sizeof *s->held);
	s->cap = calloc(nw, sizeof *s->cap);
	s->pheld = calloc(nw, sizeof *s->pheld);
	s->pcap = calloc(nw, sizeof *s->pcap);
	s->pwant = calloc(nw, sizeof *s->pwant);
	if (s->in == NULL || s->out == NULL || s->held == NULL ||
	    s->cap == NULL || s->pheld == NULL || s->pcap == NULL ||
	    s->pwant == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	int rv = fmi_tran_ctx_new(&s->tc, NULL, err);
	for (uint32_t h = 0; rv == FM_OK && h < nw; h++) {
		snprintf(url, sizeof url, "inproc://fedmesh-p2p-%u-%u", id, h);
		rv = fmi_tran_listen(&s->in[h], s->tc, url, err);
	}
	for (uint32_t k = 0; rv == FM_OK && k < nw * nw; k++) {
		snprintf(url, sizeof url, "inproc://fedmesh-p2p-%u-%u", id,
		    k % nw);
		snprintf(name, sizeof name, "p2p-worker-%u", k / nw);
		rv = fmi_tran_dial(&s->out[k], s->tc, url, name, err);
	}
	return rv;
}

static int
p2p_setup(p2p_sim *s, const fmi_p2p_cfg *cfg, fm_error *err)
{
	memset(s, 0, sizeof *s);
	s->cfg = cfg;
	s->n = fmi_graph_n(cfg->graph);
	uint32_t w = cfg->workers ? cfg->workers : (uint32_t)fmi_ncores();
	s->nworkers = FMI_MAX(1, FMI_MIN(FMI_MIN(w, s->n), 64));
	s->peers = calloc(s->n, sizeof *s->peers);
	s->tr = calloc(s->nworkers, sizeof *s->tr);
	s->nb = calloc(s->nworkers, sizeof *s->nb);
	s->acc = calloc(s->n, sizeof *s->acc);
	s->loss = calloc(s->n, sizeof *s->loss);
	s->box = calloc(s->n, sizeof *s->box);
	s->timers = calloc(s->n, sizeof *s->timers);
	s->pm = calloc(s->n, sizeof *s->pm);
	s->honest = calloc(s->n, 1);
	if (s->peers == NULL || s->tr == NULL || s->nb == NULL ||
	    s->acc == NULL || s->loss == NULL || s->box == NULL ||
	    s->timers == NULL || s->pm == NULL || s->honest == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < s->n; i++) {
		s->honest[i] = (uint8_t)p2p_honest(s, i);
	}
	for (uint32_t k = 0; k < s->nworkers; k++) {
		size_t b = FMI_MAX(cfg->local.batch, 256);
		s->nb[k] = calloc(s->n, sizeof **s->nb);
		if (s->nb[k] == NULL || fmi_trainer_new(&s->tr[k], &cfg->arch,
		    b) != FM_OK) {
			return fm_error_set(err, FM_ENOMEM, "out of memory");
		}
	}
	fmi_peer_net net = { s, p2p_net_send, p2p_net_timer };
	for (uint32_t i = 0; i < s->n; i++) {
		int rv = fmi_peer_init(&s->peers[i], cfg, i, &net, err);
		if (rv != FM_OK) {
			return rv;
		}
	}
	s->eval_idx = fmi_peer_eval_subset(cfg, &s->eval_n);
	return p2p_links(s, err);
}

int
fmi_p2p_simulate(const fmi_p2p_cfg *cfg, fmi_fed_result *res, fm_error *err)
{
	p2p_sim s;
	memset(res, 0, sizeof *res);
	int rv = fmi_p2p_validate(cfg, err);
	if (rv != FM_OK) {
		return rv;
	}
	double t0 = fmi_now();
	int blas = fmi_blas_get_threads();
	rv = p2p_setup(&s, cfg, err);
	res->rounds = calloc(cfg->rounds, sizeof *res->rounds);
	res->params = malloc(cfg->arch.nparams * sizeof(float));
	if (rv == FM_OK && (res->rounds == NULL || res->params == NULL)) {
		rv = fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	/* The cores go to the workers; one BLAS thread also keeps the
	 * numerics identical for any thread count and to deployed peers. */
	fmi_blas_set_threads(1);
	for (uint32_t r = 1; rv == FM_OK && r <= cfg->rounds; r++) {
		s.round = r;
		fmi_round_metrics *m = &res->rounds[r - 1];
		rv = p2p_round(&s, m, res->params, err);
		if (rv == FM_OK) {
			res->nrounds = r;
		}
		if (rv == FM_OK && cfg->on_round != NULL &&
		    cfg->on_round(cfg->ud, m) != 0) {
			rv = fm_error_set(err, FM_ESCRIPT, "stopped by the "
			    "on_round callback");
		}
	}
	fmi_blas_set_threads(blas);
	if (rv == FM_OK) {
		res->nparams = cfg->arch.nparams;
		(void)p2p_mean_model(&s, res->params);
	}
	p2p_free(&s);
	res->seconds = fmi_now() - t0;
	if (rv != FM_OK) {
		fmi_fed_result_free(res);
	}
	return rv;
}
