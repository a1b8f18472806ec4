/* SPDX-License-Identifier: MIT */
/*
 * mixing.c: Metropolis-Hastings mixing weights of a round's adjacency
 * (fmi_adj_weight, see graph.h), and W as a dense matrix for describe().
 */
#include "core/core.h"
#include "topo/graph_int.h"

static int
has_sorted(const uint32_t *v, uint32_t len, uint32_t x)
{
	uint32_t lo = 0, hi = len;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo < len && v[lo] == x;
}

/* W_ij for an existing edge j -> i, i != j. */
static double
w_edge(const fmi_adj *a, uint32_t i, uint32_t j)
{
	uint32_t di = fmi_adj_in_degree(a, i);
	if (a->directed) {
		return 1.0 / (1.0 + di);
	}
	return 1.0 / (1.0 + FMI_MAX(di, fmi_adj_in_degree(a, j)));
}

static double
w_self(const fmi_adj *a, uint32_t i)
{
	if (a->directed) {
		return 1.0 / (1.0 + fmi_adj_in_degree(a, i));
	}
	double s = 0.0;
	for (uint32_t p = a->in_off[i]; p < a->in_off[i + 1]; p++) {
		s += w_edge(a, i, a->in_adj[p]);
	}
	return 1.0 - s;
}

double
fmi_adj_weight(const fmi_adj *a, uint32_t i, uint32_t j)
{
	if (i >= a->n || j >= a->n) {
		return 0.0;
	}
	if (i == j) {
		return w_self(a, i);
	}
	return has_sorted(a->in_adj + a->in_off[i], fmi_adj_in_degree(a, i),
	    j) ? w_edge(a, i, j) : 0.0;
}

/* w (row-major n x n) += scale * W. */
void
fmi_w_accumulate(const fmi_adj *a, double *w, double scale)
{
	size_t n = a->n;
	for (uint32_t i = 0; i < a->n; i++) {
		for (uint32_t p = a->in_off[i]; p < a->in_off[i + 1]; p++) {
			uint32_t j = a->in_adj[p];
			w[i * n + j] += scale * w_edge(a, i, j);
		}
		w[i * n + i] += scale * w_self(a, i);
	}
}
