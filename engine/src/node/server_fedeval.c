/* SPDX-License-Identifier: MIT */
/*
 * server_fedeval.c: what the clients themselves say about their data.
 *
 * Site data: in a deployment where each client host brings its own
 * dataset (fmi_fed_cfg.site_data), client k is host k, and its HELLO
 * says how many training and held-out examples it holds. The server
 * loads no data; the examples count where a hierarchy weighs its edges.
 *
 * Federated evaluation (as Flower's evaluate round): on the rounds the
 * server evaluates, it sends the new global model to a seeded fraction
 * of the clients that hold held-out data, each evaluates it on its own
 * and answers with its example count, accuracy and loss; the round's
 * metrics get their example-weighted mean and the spread across clients.
 * Results are summed in client order, so they do not depend on which
 * host answers first: a deployment reports what its simulation does.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"

struct srv_evalr {
	uint32_t client; /* 0-based */
	uint32_t host;
	int answered;
	uint64_t n;
	double acc, loss;
};

int
srv_fedeval_open(fmi_server *s, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t n = cfg->part->nclients;
	if (cfg->site_data) {
		s->site_ne = calloc(n, sizeof *s->site_ne);
		s->site_nt = calloc(n, sizeof *s->site_nt);
		if (s->site_ne == NULL || s->site_nt == NULL) {
			return fm_error_set(err, FM_ENOMEM, "out of memory");
		}
	}
	if (cfg->client_eval_fraction > 0 &&
	    (cfg->site_data || cfg->client_test != NULL)) {
		s->evals = calloc(n, sizeof *s->evals);
		if (s->evals == NULL) {
			return fm_error_set(err, FM_ENOMEM, "out of memory");
		}
	}
	return FM_OK;
}

void
srv_fedeval_close(fmi_server *s)
{
	free(s->site_ne);
	free(s->site_nt);
	free(s->evals);
	s->site_ne = s->site_nt = NULL;
	s->evals = NULL;
}

/* A client host's HELLO: with site data, the examples its site holds
 * (counted up the tree, replacing what an earlier HELLO said). */
void
srv_on_hello(fmi_server *s, int host, const fmi_msg *m)
{
	/* in a tree of processes the hosts are edges, or (in an edge) its
	 * own client hosts, not clients in order */
	if (s->site_ne == NULL || s->hosts->edges || s->own != 0 || host < 0 ||
	    (uint32_t)host >= s->cfg->part->nclients) {
		return;
	}
	uint32_t c = (uint32_t)host;
	uint64_t old = s->site_ne[c];
	s->site_ne[c] = m->num_examples;
	s->site_nt[c] = m->num_test;
	for (uint32_t i = srv_edge_of(s, c);; i = srv_parent(s, i)) {
		s->nodes[i].data += m->num_examples - old;
		if (i == 0) {
			break;
		}
	}
	if (old != m->num_examples) {
		fm_log(FM_LOG_INFO, "FM-DATA", "client %u (host %s) holds %llu "
		    "training and %llu held-out examples", c + 1,
		    s->hosts->names[host], (unsigned long long)m->num_examples,
		    (unsigned long long)m->num_test);
	}
}

/* Held-out examples client c holds, as far as the server knows. */
static uint64_t
srv_heldout(const fmi_server *s, uint32_t c)
{
	if (s->site_nt != NULL) {
		return s->site_nt[c];
	}
	const fmi_partition *p = s->cfg->client_test_part;
	return p != NULL ? fmi_partition_size(p, c) : 0;
}

/* Picks this round's evaluators: a seeded client_eval_fraction of all
 * clients (every client at 1), those with held-out data. */
static uint32_t
srv_pick_evaluators(fmi_server *s)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t n = cfg->part->nclients, ne = 0;
	uint32_t k = (uint32_t)FMI_MIN((double)n,
	    ceil(cfg->client_eval_fraction * n - 1e-9));
	fm_rng r;
	fmi_rng_seed(&r, cfg->seed, 0x6576616cULL ^ s->round);
	for (uint32_t i = 0; i < n; i++) {
		s->evals[i].client = i;
	}
	for (uint32_t i = 0; k < n && i < k; i++) { /* partial Fisher-Yates */
		uint32_t j = i + (uint32_t)fmi_rng_below(&r, n - i);
		uint32_t t = s->evals[i].client;
		s->evals[i].client = s->evals[j].client;
		s->evals[j].client = t;
	}
	/* the chosen, ascending (k < n: the first k after the shuffle) */
	uint8_t *chosen = calloc(n, 1);
	if (chosen == NULL) {
		return 0;
	}
	for (uint32_t i = 0; i < k; i++) {
		chosen[s->evals[i].client] = 1;
	}
	for (uint32_t c = 0; c < n; c++) {
		if (chosen[c] && srv_heldout(s, c) > 0) {
			struct srv_evalr *e = &s->evals[ne++];
			memset(e, 0, sizeof *e);
			e->client = c;
			e->host = c % s->hosts->n;
		}
	}
	free(chosen);
	return ne;
}

static struct srv_evalr *
srv_evaluator(fmi_server *s, int32_t from)
{
	for (uint32_t i = 0; i < s->nevals; i++) {
		if ((int32_t)s->evals[i].client + 1 == from) {
			return &s->evals[i];
		}
	}
	return NULL;
}

/* An EVAL answer: from an evaluator of this round, through its host,
 * with sane numbers; anything else is logged and dropped. */
void
srv_on_eval(fmi_server *s, fmi_rmsg *r)
{
	const fmi_msg *m = &r->m;
	struct srv_evalr *e = s->eval_open ? srv_evaluator(s, m->from) : NULL;
	const char *why = NULL;
	if (m->round != s->round || e == NULL) {
		why = "not an evaluator of this round";
	} else if (e->answered) {
		why = "answered twice";
	} else if (strcmp(r->peer, s->hosts->names[e->host]) != 0) {
		why = "came through another host than the client's";
	} else if (!(m->acc >= 0 && m->acc <= 1) || !isfinite(m->test_loss) ||
	    m->test_loss < 0) {
		why = "accuracy outside [0, 1] or a bad loss";
	}
	if (why != NULL) {
		fm_log(FM_LOG_WARN, "FM-EVAL", "round %u: dropped evaluation of "
		    "client %d from %s: %s", s->round, m->from, r->peer, why);
	} else {
		e->answered = 1;
		e->n = m->num_examples;
		e->acc = m->acc;
		e->loss = m->test_loss;
		s->eval_waiting--;
	}
	fmi_rmsg_close(r);
}

static fmi_payload *
srv_view_payload(const fmi_server *s)
{
	fmi_payload *p = fmi_payload_new(s->dim * sizeof(float));
	if (p != NULL) {
		memcpy(p->data, s->view, p->len);
		fmi_f32_to_le(p->data, s->dim);
	}
	return p;
}

/* The round's metrics from the answers, in client order. */
static void
srv_eval_metrics(fmi_server *s)
{
	double acc = 0, loss = 0, lo = INFINITY, hi = -INFINITY;
	uint64_t n = 0;
	uint32_t k = 0;
	for (uint32_t i = 0; i < s->nevals; i++) {
		const struct srv_evalr *e = &s->evals[i];
		if (!e->answered || e->n == 0) {
			continue;
		}
		acc += e->acc * (double)e->n;
		loss += e->loss * (double)e->n;
		n += e->n;
		lo = fmin(lo, e->acc);
		hi = fmax(hi, e->acc);
		k++;
	}
	srv_metric(s, "client_evals", k);
	if (k == 0) {
		return;
	}
	srv_metric(s, "client_accuracy", acc / (double)n);
	srv_metric(s, "client_accuracy_min", lo);
	srv_metric(s, "client_accuracy_max", hi);
	srv_metric(s, "client_loss", loss / (double)n);
	srv_metric(s, "client_eval_examples", (double)n);
}

void
srv_fedeval(fmi_server *s)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t every = cfg->eval_every ? cfg->eval_every : 1;
	if (s->evals == NULL ||
	    (s->round % every != 0 && s->round != cfg->rounds)) {
		return;
	}
	if (s->hosts->edges || s->own != 0) {
		if (s->round == every || s->round == cfg->rounds) {
			fm_log(FM_LOG_WARN, "FM-EVAL", "federated evaluation "
			    "(client_test) does not run yet in a hierarchy "
			    "deployed as a tree of processes");
		}
		return;
	}
	s->nevals = srv_pick_evaluators(s);
	s->eval_waiting = 0;
	fmi_payload *p = s->nevals ? srv_view_payload(s) : NULL;
	for (uint32_t i = 0; p != NULL && i < s->nevals; i++) {
		struct srv_evalr *e = &s->evals[i];
		fmi_msg m;
		srv_msg(s, &m, FMI_MSG_EVALUATE, (int32_t)e->client + 1);
		m.n = s->dim;
		if (fmi_tran_send(s->t, s->hosts->names[e->host], &m, p) ==
		    FM_OK) {
			s->eval_waiting++;
		} else {
			e->answered = 0; /* its host is not connected */
			fm_log(FM_LOG_WARN, "FM-EVAL", "round %u: client %u: its "
			    "host %s is not connected; it does not evaluate",
			    s->round, e->client + 1, s->hosts->names[e->host]);
		}
	}
	fmi_payload_unref(p);
	uint32_t tmo = cfg->round_timeout_ms ? cfg->round_timeout_ms
	                                     : 3600 * 1000;
	double deadline = fmi_now() + tmo / 1000.0;
	s->eval_open = 1;
	s->closed = 1; /* updates now are late */
	while (s->eval_waiting > 0 && fmi_now() < deadline) {
		fmi_rmsg r;
		int wait = (int)((deadline - fmi_now()) * 1000) + 1;
		if (fmi_tran_recv(s->t, &r, wait, NULL) == FM_OK) {
			srv_dispatch(s, &r);
		}
	}
	s->closed = 0;
	s->eval_open = 0;
	if (s->eval_waiting > 0) {
		fm_log(FM_LOG_WARN, "FM-EVAL", "round %u: %u of %u clients did "
		    "not evaluate within round_timeout", s->round,
		    s->eval_waiting, s->nevals);
	}
	srv_eval_metrics(s);
}
