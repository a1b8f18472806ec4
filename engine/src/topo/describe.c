/* SPDX-License-Identifier: MIT */
/*
 * describe.c: fmi_graph_describe(): degrees, diameter (distances.c) and
 * spectral gap (spectrum.c) of a graph, or for a time-varying one of the
 * union of its first rounds and its exact expected mixing matrix.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "topo/graph_int.h"

static void
describe_degrees(const fmi_adj *a, fmi_graph_desc *d)
{
	uint32_t n = a->n, lo = UINT32_MAX, hi = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = fmi_adj_out_degree(a, i);
		lo = FMI_MIN(lo, k);
		hi = FMI_MAX(hi, k);
	}
	uint64_t arcs = a->out_off[n];
	d->nodes = n;
	d->edges = a->directed ? arcs : arcs / 2;
	d->degree_min = lo;
	d->degree_max = hi;
	d->degree_mean = (double)arcs / n;
}

/* The union of the first FMI_GRAPH_SAMPLES rounds into in/out, and their
 * mean W into w (when not NULL). */
static int
union_rounds(fmi_graph *g, double *w, csr *in, csr *out, fm_error *err)
{
	ebuf e = { 0 };
	fmi_adj a;
	int rc = FM_OK;
	for (uint32_t r = 1; r <= FMI_GRAPH_SAMPLES && rc == FM_OK; r++) {
		rc = fmi_graph_round(g, r, &a, err);
		if (rc == FM_OK && w != NULL) {
			fmi_w_accumulate(&a, w, 1.0 / FMI_GRAPH_SAMPLES);
		}
		for (uint32_t i = 0; rc == FM_OK && i < a.n; i++) {
			for (uint32_t p = a.out_off[i];
			    rc == FM_OK && p < a.out_off[i + 1]; p++) {
				if (a.directed || i < a.out_adj[p]) {
					rc = fmi_eb_push(&e, i, a.out_adj[p],
					    err);
				}
			}
		}
	}
	if (rc == FM_OK) {
		rc = fmi_adj_build(g->s.n, &e, g->s.directed, in, out, err);
	}
	free(e.v);
	return rc;
}

/* E[W] of the uniform time-varying kinds, exactly: every pair is an edge
 * with the same probability p and weight we, so E[W] = aI + b(J - I).
 * (An average over sampled rounds is biased upward in its slem: 0.586
 * instead of 0.467 for a 16-peer matching over 64 rounds.) */
static void
exact_mean_w(const fmi_graph *g, double *w)
{
	uint32_t n = g->s.n;
	double p, we;
	if (strcmp(g->ki->name, "matching") == 0) {
		p = n % 2 == 0 ? 1.0 / (n - 1) : 1.0 / n;
		we = 0.5;
	} else { /* random_kregular */
		p = (double)g->s.k / (n - 1);
		we = 1.0 / (g->s.k + 1);
	}
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < n; j++) {
			w[(size_t)i * n + j] = i == j ? 1.0 - (n - 1) * p * we :
			    p * we;
		}
	}
}

static int
describe_body(fmi_graph *g, double *w, fmi_graph_desc *d, fm_error *err)
{
	csr in = { 0 }, out = { 0 };
	fmi_adj a;
	int rc;
	if (g->ki->time_varying) {
		d->samples = FMI_GRAPH_SAMPLES;
		rc = union_rounds(g, NULL, &in, &out, err);
		if (w != NULL) {
			exact_mean_w(g, w);
		}
		fmi_adj_view(g->s.n, g->s.directed, &in, &out, &a);
	} else {
		d->samples = 1;
		rc = fmi_graph_round(g, 1, &a, err);
		if (rc == FM_OK && w != NULL) {
			fmi_w_accumulate(&a, w, 1.0);
		}
	}
	if (rc == FM_OK) {
		describe_degrees(&a, d);
		rc = fmi_graph_distances(&a, d, err);
	}
	if (rc == FM_OK && w != NULL) {
		rc = fmi_graph_spectrum(w, g->s.n, !g->s.directed, d, err);
	}
	fmi_adj_free(&in, &out);
	return rc;
}

int
fmi_graph_describe_ex(fmi_graph *g, unsigned flags, fmi_graph_desc *d,
    fm_error *err)
{
	memset(d, 0, sizeof *d);
	d->slem = d->spectral_gap = NAN;
	int spectral = !(flags & FMI_GRAPH_DESCRIBE_NO_SPECTRAL);
	uint32_t n = g->s.n;
	if (spectral && n > FMI_GRAPH_DESCRIBE_MAX_N) {
		return fm_error_set(err, FM_EINVAL, "describe: n = %u peers is "
		    "more than the %u the spectral analysis takes (dense "
		    "O(n^3) eigenvalues)", n, FMI_GRAPH_DESCRIBE_MAX_N);
	}
	double *w = NULL;
	if (spectral && (w = calloc((size_t)n * n, sizeof *w)) == NULL) {
		return fmi_graph_oom(err);
	}
	int rc = describe_body(g, w, d, err);
	free(w);
	return rc;
}

int
fmi_graph_describe(fmi_graph *g, fmi_graph_desc *d, fm_error *err)
{
	return fmi_graph_describe_ex(g, 0, d, err);
}
