/* SPDX-License-Identifier: MIT */
/*
 * p2p_monitor.c: the monitor of a decentralized federation deployed as
 * processes (the peers are p2p_peer_node.c).
 *
 * The monitor collects a small REPORT per peer and round (accuracies,
 * losses and a FMI_P2P_SKETCH-float count sketch of the model, from which
 * it estimates the consensus distance, then the peer's consensus metrics)
 * and turns them into round metrics (a consensus metric: its mean over
 * the peers that reported it, as in the simulation).
 * It never sends anything to peers: no node sees the whole federation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/node.h"
#include "node/peer.h"

#define P2P_WINDOW 64 /* rounds the monitor keeps open */

typedef struct mon_round {
	uint32_t round; /* 0: slot free */
	double first;   /* when its first report came */
	uint32_t got;
	uint8_t *have;  /* [n] */
	double *acc, *tloss, *loss;
	uint64_t *ne;
	float *sk;      /* [n][FMI_P2P_SKETCH] */
	fmi_peer_metrics *pm; /* [n] */
} mon_round;

typedef struct p2p_mon {
	const fmi_p2p_cfg *cfg;
	const fmi_deploy_cfg *d;
	uint32_t n, honest;
	fmi_tran *t;
	mon_round w[P2P_WINDOW];
	uint32_t next; /* the next round to finalize */
	double last_final; /* when the previous round was finalized */
	uint64_t fed;
	fmi_fed_result *res;
} p2p_mon;

static int
mon_alloc(p2p_mon *m)
{
	for (int i = 0; i < P2P_WINDOW; i++) {
		mon_round *w = &m->w[i];
		w->have = calloc(m->n, 1);
		w->acc = calloc(m->n, sizeof *w->acc);
		w->tloss = calloc(m->n, sizeof *w->tloss);
		w->loss = calloc(m->n, sizeof *w->loss);
		w->ne = calloc(m->n, sizeof *w->ne);
		w->sk = calloc((size_t)m->n * FMI_P2P_SKETCH, sizeof(float));
		w->pm = calloc(m->n, sizeof *w->pm);
		if (!w->have || !w->acc || !w->tloss || !w->loss || !w->ne ||
		    !w->sk || !w->pm) {
			return FM_ENOMEM;
		}
	}
	return FM_OK;
}

static void
mon_free(p2p_mon *m)
{
	for (int i = 0; i < P2P_WINDOW; i++) {
		mon_round *w = &m->w[i];
		free(w->have);
		free(w->acc);
		free(w->tloss);
		free(w->loss);
		free(w->ne);
		free(w->sk);
		free(w->pm);
	}
}

/* Mean distance of the reported sketches from their mean. */
static double
mon_consensus(const p2p_mon *m, const mon_round *w)
{
	double mean[FMI_P2P_SKETCH] = { 0 }, sum = 0;
	for (uint32_t i = 0; i < m->n; i++) {
		for (int k = 0; w->have[i] && k < FMI_P2P_SKETCH; k++) {
			mean[k] += w->sk[(size_t)i * FMI_P2P_SKETCH + k];
		}
	}
	for (int k = 0; k < FMI_P2P_SKETCH; k++) {
		mean[k] /= w->got;
	}
	for (uint32_t i = 0; i < m->n; i++) {
		double d2 = 0;
		for (int k = 0; w->have[i] && k < FMI_P2P_SKETCH; k++) {
			double d = w->sk[(size_t)i * FMI_P2P_SKETCH + k] - mean[k];
			d2 += d * d;
		}
		sum += w->have[i] ? sqrt(d2) : 0;
	}
	return sum / w->got;
}

static void
mon_metrics(const p2p_mon *m, const mon_round *w, fmi_round_metrics *r)
{
	double sa = 0, sl = 0, mn = INFINITY, mx = -INFINITY, tl = 0;
	uint64_t ne = 0;
	uint32_t ev = 0;
	memset(r, 0, sizeof *r);
	r->round = w->round;
	r->sampled = m->honest;
	r->updates = w->got;
	r->dropped = m->honest - w->got;
	for (uint32_t i = 0; i < m->n; i++) {
		if (!w->have[i]) {
			continue;
		}
		tl += w->loss[i] * (double)w->ne[i];
		ne += w->ne[i];
		if (w->acc[i] >= 0) {
			sa += w->acc[i];
			sl += w->tloss[i];
			mn = fmin(mn, w->acc[i]);
			mx = fmax(mx, w->acc[i]);
			ev++;
		}
	}
	r->train_loss = ne ? tl / (double)ne : NAN;
	if (ev > 0) {
		r->evaluated = 1;
		r->accuracy = sa / ev;
		r->loss = sl / ev;
		fmi_round_metric(r, "accuracy_min", mn);
		fmi_round_metric(r, "accuracy_max", mx);
	}
	fmi_round_metric(r, "consensus_distance", w->got ? mon_consensus(m, w) : NAN);
	fmi_peer_metrics_mean(r, w->pm, w->have, m->n);
}

/* Finalizes rounds in order while they are complete or past the
 * deadline (a round_timeout and a bit after their first report: peers in
 * two halves of a partition may run rounds apart; a dead peer delays the
 * metrics by that much, never the peers). */
static int
mon_flush(p2p_mon *m, uint32_t newest, double wait)
{
	const fmi_p2p_cfg *cfg = m->cfg;
	while (m->next <= cfg->rounds) {
		mon_round *w = &m->w[m->next % P2P_WINDOW];
		int open = w->round == m->next;
		int due = open && (w->got == m->honest ||
		    fmi_now() - w->first > wait);
		if (!open && (newest <= m->next ||
		    fmi_now() - m->last_final < wait)) {
			break;
		}
		if (open && !due) {
			break;
		}
		fmi_round_metrics *r = &m->res->rounds[m->res->nrounds];
		if (open) {
			mon_metrics(m, w, r);
		} else { /* nobody reported this round */
			memset(r, 0, sizeof *r);
			r->round = m->next;
			r->sampled = r->dropped = m->honest;
		}
		fmi_adj a;
		if (fmi_graph_round(cfg->graph, m->next, &a, NULL) == FM_OK) {
			/* the models the peers sent each other this round */
			r->bytes_sent = r->bytes_received = (uint64_t)
			    a.out_off[a.n] * cfg->arch.nparams * sizeof(float);
		}
		r->seconds = fmi_now() - m->last_final;
		m->last_final = fmi_now();
		m->res->nrounds++;
		w->round = 0;
		m->next++;
		if (cfg->on_round != NULL && cfg->on_round(cfg->ud, r) != 0) {
			return FM_ESCRIPT;
		}
	}
	return FM_OK;
}

static void
mon_on_report(p2p_mon *m, fmi_rmsg *r)
{
	fm_error e;
	const fmi_msg *h = &r->m;
	const char *why = NULL;
	const size_t sk = FMI_P2P_SKETCH * sizeof(float);
	fmi_peer_metrics pm;
	if (h->type != FMI_MSG_REPORT || h->fed != m->fed) {
		why = "not a report of this federation";
	} else if (h->from < 0 || (uint32_t)h->from >= m->n ||
	    strcmp(r->peer, m->d->clients[h->from]) != 0) {
		why = "the sender is not the peer it claims to be";
	} else if (h->n != FMI_P2P_SKETCH || fmi_rmsg_len(r) < sk ||
	    fmi_msg_check_tensor(h, fmi_rmsg_data(r), sk, FMI_P2P_SKETCH,
	        &e) != FM_OK) {
		why = "bad sketch";
	} else if (fmi_peer_metrics_decode(&pm, (const uint8_t *)
	    fmi_rmsg_data(r) + sk, fmi_rmsg_len(r) - sk) != FM_OK) {
		why = "bad consensus metrics";
	} else if (h->round < m->next || h->round > m->cfg->rounds ||
	    h->round >= m->next + P2P_WINDOW) {
		why = "round outside the open window";
	}
	mon_round *w = &m->w[h->round % P2P_WINDOW];
	if (why == NULL && w->round != h->round) {
		w->round = h->round;
		w->first = fmi_now();
		w->got = 0;
		memset(w->have, 0, m->n);
	}
	if (why == NULL && w->have[h->from]) {
		why = "a second report for the round";
	}
	if (why != NULL) {
		fm_log(FM_LOG_DEBUG, "FM-REPORT", "monitor dropped a report from "
		    "'%s' (round %u): %s", r->peer, h->round, why);
		return;
	}
	uint32_t i = (uint32_t)h->from;
	w->have[i] = 1;
	w->got++;
	w->acc[i] = h->acc;
	w->tloss[i] = h->test_loss;
	w->loss[i] = h->loss;
	w->ne[i] = h->num_examples;
	memcpy(&w->sk[(size_t)i * FMI_P2P_SKETCH], fmi_rmsg_data(r), sk);
	w->pm[i] = pm;
	fmi_f32_from_le(&w->sk[(size_t)i * FMI_P2P_SKETCH], FMI_P2P_SKETCH);
}

static int
mon_loop(p2p_mon *m, fm_error *err)
{
	const fmi_p2p_cfg *cfg = m->cfg;
	double wait = (cfg->round_timeout_ms ? cfg->round_timeout_ms : 60000) /
	    1000.0 + 2.0;
	double idle = m->d->idle_timeout > 0 ? m->d->idle_timeout : 600;
	double last = fmi_now() + m->d->join_timeout;
	uint32_t newest = 0;
	m->next = 1;
	m->last_final = fmi_now();
	while (m->next <= cfg->rounds) {
		fmi_rmsg r;
		int rv = fmi_tran_recv(m->t, &r, 200, err);
		if (rv == FM_OK) {
			newest = FMI_MAX(newest, r.m.round);
			mon_on_report(m, &r);
			fmi_rmsg_close(&r);
			last = fmi_now();
		} else if (rv != FM_ETIMEDOUT && rv != FM_EPROTO &&
		    rv != FM_EVERSION) {
			return rv;
		}
		if (mon_flush(m, newest, wait) != FM_OK) {
			return fm_error_set(err, FM_ESCRIPT, "stopped by the "
			    "on_round callback");
		}
		if (fmi_now() - last > idle) {
			return fm_error_set(err, FM_ETIMEDOUT, "no report from any "
			    "peer for %.0f s (deploy.idle_timeout)", idle);
		}
	}
	return FM_OK;
}

int
fmi_p2p_run_monitor(const fmi_p2p_cfg *cfg, const fmi_deploy_cfg *d,
    fmi_fed_result *res, fm_error *err)
{
	char url[300];
	p2p_mon m;
	fmi_tran_ctx *tc = NULL;
	memset(&m, 0, sizeof m);
	memset(res, 0, sizeof *res);
	m.cfg = cfg;
	m.d = d;
	m.res = res;
	m.n = fmi_graph_n(cfg->graph);
	m.fed = fmi_fed_id(cfg->seed);
	for (uint32_t i = 0; i < m.n; i++) {
		m.honest += fmi_p2p_honest(cfg, i);
	}
	double t0 = fmi_now();
	int rv = fmi_p2p_validate(cfg, err);
	if (rv == FM_OK) {
		rv = fmi_tran_ctx_new(&tc, NULL, err);
	}
	res->rounds = calloc(cfg->rounds, sizeof *res->rounds);
	if (rv == FM_OK && (res->rounds == NULL || mon_alloc(&m) != FM_OK)) {
		rv = fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	if (rv == FM_OK) {
		rv = fmi_p2p_url(d, d->bind[0] ? d->bind : d->server, url,
		    sizeof url, err);
	}
	if (rv == FM_OK) {
		rv = fmi_deploy_listen(tc, d, d->server_name, url,
		    FMI_P2P_SKETCH * sizeof(float) + FMI_PEER_METRICS_MAX, 0,
		    &m.t, err);
	}
	if (rv == FM_OK) {
		fm_log(FM_LOG_INFO, "FM-DEPLOY", "monitor %s listening on %s for "
		    "%u peers", d->server_name, url, m.n);
		rv = mon_loop(&m, err);
	}
	fmi_tran_close(m.t);
	fmi_tran_ctx_free(tc);
	mon_free(&m);
	res->seconds = fmi_now() - t0;
	res->nparams = cfg->arch.nparams;
	if (rv != FM_OK) {
		fmi_fed_result_free(res);
	}
	return rv;
}
