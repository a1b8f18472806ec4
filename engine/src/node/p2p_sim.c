/* SPDX-License-Identifier: MIT */
/* p2p_sim.c: a decentralized federation simulated in one process. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/node.h"
#include "node/peer.h"

typedef struct p2p_sim p2p_sim;
typedef int (*p2p_task)(p2p_sim *s, uint32_t peer, uint32_t worker);

struct p2p_sim {
	const fmi_p2p_cfg *cfg;
	uint32_t n;
	fmi_peer *peers;
	fmi_trainer **tr; /* one per worker */
	uint32_t nworkers;
	fm_peer_model **nb; /* per worker: scratch of in-neighbours */
	fmi_adj adj;
	uint32_t round;
	uint32_t *eval_idx;
	size_t eval_n;
	double *acc, *loss; /* per peer, this round */
	/* a parallel phase */
	p2p_task task;
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
		if (i >= s->n || atomic_load(&s->rv) != FM_OK) {
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

/* Runs task for every peer on the worker threads (the caller is worker
 * 0). The result does not depend on which worker takes which peer. */
static int
p2p_parallel(p2p_sim *s, p2p_task task)
{
	pthread_t th[64];
	p2p_worker pw[64];
	uint32_t started = 0;
	s->task = task;
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

static int
p2p_train_one(p2p_sim *s, uint32_t i, uint32_t w)
{
	int rv = fmi_peer_train(&s->peers[i], s->cfg, s->tr[w], s->round);
	if (rv == FM_OK) {
		rv = fmi_peer_prepare_send(&s->peers[i], &s->adj, s->round);
	}
	return rv;
}

/* Every in-neighbour's trained model, in peer-id order. */
static int
p2p_mix_one(p2p_sim *s, uint32_t i, uint32_t w)
{
	const fmi_adj *a = &s->adj;
	fm_peer_model *nb = s->nb[w];
	uint32_t k = 0;
	for (uint32_t e = a->in_off[i]; e < a->in_off[i + 1]; e++) {
		const fmi_peer *q = &s->peers[a->in_adj[e]];
		nb[k++] = (fm_peer_model) { sizeof *nb, (int32_t)q->id,
			fmi_adj_out_degree(a, q->id), 0, q->y, 0, q->mass,
			q->examples };
	}
	int rv = fmi_peer_mix(&s->peers[i], a, s->round, nb, k);
	if (rv != FM_OK) {
		fm_log(FM_LOG_WARN, "FM-MIX", "round %u, peer %u: %s '%s' "
		    "failed (%s); the peer keeps its own model", s->round,
		    i + 1, "consensus", s->cfg->consensus->desc->name,
		    fm_strerror(rv));
	}
	return FM_OK;
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
	if (rv == FM_OK && (rv = p2p_parallel(s, p2p_train_one)) != FM_OK) {
		return fm_error_set(err, rv, "round %u: local training failed: "
		    "%s", s->round, fm_strerror(rv));
	}
	if (rv == FM_OK) {
		rv = p2p_parallel(s, p2p_mix_one);
	}
	int eval = cfg->test != NULL &&
	    (s->round % every == 0 || s->round == cfg->rounds);
	for (uint32_t i = 0; i < s->n; i++) {
		s->acc[i] = s->loss[i] = NAN;
	}
	if (rv == FM_OK && eval && (rv = p2p_parallel(s, p2p_eval_one)) != FM_OK) {
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
	for (uint32_t w = 0; w < s->nworkers; w++) {
		if (s->tr != NULL) {
			fmi_trainer_free(s->tr[w]);
		}
		if (s->nb != NULL) {
			free(s->nb[w]);
		}
	}
	free(s->peers);
	free(s->tr);
	free(s->nb);
	free(s->eval_idx);
	free(s->acc);
	free(s->loss);
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
	if (s->peers == NULL || s->tr == NULL || s->nb == NULL ||
	    s->acc == NULL || s->loss == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	for (uint32_t k = 0; k < s->nworkers; k++) {
		size_t b = FMI_MAX(cfg->local.batch, 256);
		s->nb[k] = calloc(s->n, sizeof **s->nb);
		if (s->nb[k] == NULL || fmi_trainer_new(&s->tr[k], &cfg->arch,
		    b) != FM_OK) {
			return fm_error_set(err, FM_ENOMEM, "out of memory");
		}
	}
	for (uint32_t i = 0; i < s->n; i++) {
		int rv = fmi_peer_init(&s->peers[i], cfg, i, err);
		if (rv != FM_OK) {
			return rv;
		}
	}
	s->eval_idx = fmi_peer_eval_subset(cfg, &s->eval_n);
	return FM_OK;
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
