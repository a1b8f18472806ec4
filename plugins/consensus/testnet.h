/* SPDX-License-Identifier: MIT */
/*
 * testnet.h: what the consensus conformance tests share: loading a built
 * plugin through the registry, opening instances, and a synchronous
 * simulated network that runs one round of c_outgoing + c_mix at every
 * peer (optionally losing messages, or with Byzantine peers that send a
 * fixed model and never mix). Test-only; include after fm_test.h.
 */
#ifndef FM_CONSENSUS_TESTNET_H
#define FM_CONSENSUS_TESTNET_H

#include <limits.h>

#include "core/core.h"
#include "plugin/registry.h"

#include "fm_plugin_test.h"

#include "../ptest.h"

#define TN_MAXP 8   /* peers */
#define TN_MAXDIM 8 /* model size */

typedef struct tn_net {
	uint32_t n;   /* peers 0..n-1 */
	size_t dim;
	uint32_t round;
	uint8_t edge[TN_MAXP][TN_MAXP]; /* edge[i][j]: j sends to i */
	double w[TN_MAXP][TN_MAXP];     /* w[i][j] = W_ij, w[i][i] = W_ii */
	uint8_t lost[TN_MAXP][TN_MAXP]; /* j's model does not reach i */
	uint8_t byz[TN_MAXP];           /* sends x as is, never mixes */
	float x[TN_MAXP][TN_MAXDIM];
	double mass[TN_MAXP]; /* what outgoing attached last round */
	fmi_cons *c[TN_MAXP];
} tn_net;

/* Opens c for peer with the given parameters (NULL/0: defaults). */
static inline fmi_cons *
tn_open(const fmi_component *c, const fmi_param_in *in, size_t nin,
    size_t dim, int32_t peer)
{
	fm_value v[8];
	fm_error e;
	fmi_cons *k = NULL;
	FMT_PASS(fmi_params_resolve(c, in, nin, v, &e));
	if (fmi_cons_open(&k, c,
	    &(fmi_open_args){ .params = v, .dim = dim, .role = FM_ROLE_PEER,
	    .node_id = peer, .seed = 42 },
	    &e) != FM_OK) {
		print_error("%s\n", e.msg);
		fail();
	}
	return k;
}

/* Captures (and so silences) the log while a test provokes warnings. */
static inline void
tn_quiet(fmt_logcap *cap)
{
	cap->n = 0;
	fm_log_set_sink(fmt_logcap_sink, cap);
}

static inline void
tn_loud(void)
{
	fm_log_set_sink(NULL, NULL);
}

static inline int
tn_mix(fmi_cons *k, const fm_mix *m, float *model, size_t dim)
{
	return fmi_cons_mix(k, m, model, dim);
}

/* An empty graph of n peers; every honest peer runs c. */
static inline void
tn_init(tn_net *t, uint32_t n, size_t dim, const fmi_component *c,
    const fmi_param_in *in, size_t nin)
{
	memset(t, 0, sizeof *t);
	t->n = n;
	t->dim = dim;
	for (uint32_t i = 0; i < n; i++) {
		t->c[i] = tn_open(c, in, nin, dim, (int32_t)i);
	}
}

static inline void
tn_fini(tn_net *t)
{
	for (uint32_t i = 0; i < t->n; i++) {
		fmi_cons_close(t->c[i]);
		t->c[i] = NULL;
	}
}

static inline void
tn_edge(tn_net *t, uint32_t from, uint32_t to, int both)
{
	t->edge[to][from] = 1;
	if (both) {
		t->edge[from][to] = 1;
	}
}

static inline uint32_t
tn_in_degree(const tn_net *t, uint32_t i)
{
	uint32_t d = 0;
	for (uint32_t j = 0; j < t->n; j++) {
		d += t->edge[i][j];
	}
	return d;
}

static inline uint32_t
tn_out_degree(const tn_net *t, uint32_t j)
{
	uint32_t d = 0;
	for (uint32_t i = 0; i < t->n; i++) {
		d += t->edge[i][j];
	}
	return d;
}

/* Metropolis-Hastings weights of an undirected graph (the issue's
 * W_ij = 1 / (1 + max(d_i, d_j)), W_ii = 1 - sum_j W_ij). */
static inline void
tn_weights_mh(tn_net *t)
{
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t di = tn_in_degree(t, i);
		double s = 0;
		for (uint32_t j = 0; j < t->n; j++) {
			uint32_t dj = tn_in_degree(t, j);
			t->w[i][j] = t->edge[i][j] ?
			    1.0 / (1.0 + (di > dj ? di : dj)) : 0;
			s += t->w[i][j];
		}
		t->w[i][i] = 1.0 - s;
	}
}

/* Row-stochastic weights of a directed graph: 1 / (1 + in_i). */
static inline void
tn_weights_row(tn_net *t)
{
	for (uint32_t i = 0; i < t->n; i++) {
		double v = 1.0 / (1.0 + tn_in_degree(t, i));
		for (uint32_t j = 0; j < t->n; j++) {
			t->w[i][j] = t->edge[i][j] || i == j ? v : 0;
		}
	}
}

/* One peer's mix from the round's sent models y[][] and masses. */
static inline void
tn_mix_peer(tn_net *t, uint32_t i, float (*y)[TN_MAXDIM])
{
	fm_peer_model nb[TN_MAXP];
	uint32_t nnb = 0;
	for (uint32_t j = 0; j < t->n; j++) {
		if (j != i && t->edge[i][j] && !t->lost[i][j]) {
			nb[nnb++] = (fm_peer_model) PT_PEER((int32_t)j,
			    tn_out_degree(t, j), y[j], t->w[i][j], t->mass[j], 10);
		}
	}
	fm_peer_model own = PT_PEER((int32_t)i, tn_out_degree(t, i), y[i],
	    t->w[i][i], t->mass[i], 10);
	fm_mix m = PT_MIX(t->round, (int32_t)i, tn_in_degree(t, i),
	    tn_out_degree(t, i), &own, nb, nnb, 0);
	memcpy(t->x[i], y[i], t->dim * sizeof(float));
	FMT_PASS(tn_mix(t->c[i], &m, t->x[i], t->dim));
}

/* One synchronous round at every honest peer. */
static inline void
tn_round(tn_net *t)
{
	float y[TN_MAXP][TN_MAXDIM];
	t->round++;
	memcpy(y, t->x, sizeof y);
	for (uint32_t i = 0; i < t->n; i++) {
		t->mass[i] = 0;
		if (!t->byz[i]) { /* 0 when the rule has no outgoing */
			FMT_PASS(fmi_cons_outgoing(t->c[i], t->round,
			    tn_out_degree(t, i), &t->mass[i]));
		}
	}
	for (uint32_t i = 0; i < t->n; i++) {
		if (!t->byz[i]) {
			tn_mix_peer(t, i, y);
		}
	}
}

/* Mean over the honest peers of coordinate k. */
static inline double
tn_mean(const tn_net *t, size_t k)
{
	double s = 0;
	uint32_t h = 0;
	for (uint32_t i = 0; i < t->n; i++) {
		if (!t->byz[i]) {
			s += t->x[i][k];
			h++;
		}
	}
	return s / h;
}

/* Largest |x_i[k] - target[k]| over honest peers and coordinates. */
static inline double
tn_max_err(const tn_net *t, const double *target)
{
	double e = 0;
	for (uint32_t i = 0; i < t->n; i++) {
		for (size_t k = 0; k < t->dim && !t->byz[i]; k++) {
			double d = fabs((double)t->x[i][k] - target[k]);
			e = d > e ? d : e;
		}
	}
	return e;
}

/* Largest distance of an honest peer's coordinate from the honest mean. */
static inline double
tn_spread(const tn_net *t)
{
	double mean[TN_MAXDIM];
	for (size_t k = 0; k < t->dim; k++) {
		mean[k] = tn_mean(t, k);
	}
	return tn_max_err(t, mean);
}

#endif /* FM_CONSENSUS_TESTNET_H */
