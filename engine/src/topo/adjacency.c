/* SPDX-License-Identifier: MIT */
/*
 * adjacency.c: CSR adjacency from an edge list (rows sorted, duplicates
 * and self-loops dropped), and the fmi_adj view of it.
 */
#include <stdlib.h>

#include "core/core.h"
#include "topo/graph_int.h"

/* Which arcs a pair (u, v) gives: both directions, u in v's in-list, or v
 * in u's out-list. */
enum { CSR_BOTH, CSR_IN, CSR_OUT };

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The (row, entry) arcs of pair p for mode; self-loops give none. */
static int
pair_arcs(const ebuf *e, size_t p, int mode, uint32_t row[2],
    uint32_t val[2])
{
	uint32_t u = e->v[2 * p], v = e->v[2 * p + 1];
	if (u == v) {
		return 0;
	}
	row[0] = mode == CSR_IN ? v : u;
	val[0] = mode == CSR_IN ? u : v;
	row[1] = v;
	val[1] = u;
	return mode == CSR_BOTH ? 2 : 1;
}

/* Sorts every row and drops duplicates, compacting adj and off. */
static void
csr_compact(uint32_t n, uint32_t *off, uint32_t *adj)
{
	uint32_t w = 0, start = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t end = off[i + 1], last = 0;
		qsort(adj + start, end - start, sizeof *adj, cmp_u32);
		off[i] = w;
		for (uint32_t j = start; j < end; j++) {
			if (j == start || adj[j] != last) {
				last = adj[j];
				adj[w++] = last;
			}
		}
		start = end;
	}
	off[n] = w;
}

static void
csr_fill(uint32_t n, const ebuf *e, int mode, uint32_t *off, uint32_t *adj,
    uint32_t *pos)
{
	uint32_t row[2], val[2];
	for (size_t p = 0; p < e->len; p++) {
		int na = pair_arcs(e, p, mode, row, val);
		for (int a = 0; a < na; a++) {
			off[row[a] + 1]++;
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		off[i + 1] += off[i];
		pos[i] = off[i];
	}
	for (size_t p = 0; p < e->len; p++) {
		int na = pair_arcs(e, p, mode, row, val);
		for (int a = 0; a < na; a++) {
			adj[pos[row[a]]++] = val[a];
		}
	}
	csr_compact(n, off, adj);
}

static int
csr_build(uint32_t n, const ebuf *e, int mode, csr *out, fm_error *err)
{
	uint64_t arcs = mode == CSR_BOTH ? 2 * (uint64_t)e->len : e->len;
	if (arcs >= UINT32_MAX) {
		return fm_error_set(err, FM_ERANGE, "graph: %llu arcs are "
		    "more than the %u supported", (unsigned long long)arcs,
		    UINT32_MAX - 1);
	}
	uint32_t *off = calloc((size_t)n + 1, sizeof *off);
	uint32_t *adj = malloc((size_t)(arcs ? arcs : 1) * sizeof *adj);
	uint32_t *pos = malloc((size_t)n * sizeof *pos);
	if (off == NULL || adj == NULL || pos == NULL) {
		free(off);
		free(adj);
		free(pos);
		return fmi_graph_oom(err);
	}
	csr_fill(n, e, mode, off, adj, pos);
	free(pos);
	out->off = off;
	out->adj = adj;
	return FM_OK;
}

static void
csr_free(csr *c)
{
	free(c->off);
	free(c->adj);
	c->off = c->adj = NULL;
}

/* In- and out-adjacency from an edge list; out aliases in if undirected. */
int
fmi_adj_build(uint32_t n, const ebuf *e, int directed, csr *in, csr *out,
    fm_error *err)
{
	int rc = csr_build(n, e, directed ? CSR_IN : CSR_BOTH, in, err);
	if (rc != FM_OK || !directed) {
		*out = *in;
		return rc;
	}
	rc = csr_build(n, e, CSR_OUT, out, err);
	if (rc != FM_OK) {
		csr_free(in);
	}
	return rc;
}

void
fmi_adj_free(csr *in, csr *out)
{
	if (out->off != in->off) {
		csr_free(out);
	}
	csr_free(in);
	out->off = out->adj = NULL;
}

void
fmi_adj_view(uint32_t n, int directed, const csr *in, const csr *out,
    fmi_adj *a)
{
	a->n = n;
	a->directed = directed;
	a->in_off = in->off;
	a->in_adj = in->adj;
	a->out_off = out->off;
	a->out_adj = out->adj;
}
