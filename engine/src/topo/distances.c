/* SPDX-License-Identifier: MIT */
/*
 * distances.c: describe()'s connectivity and diameter, by BFS from every
 * peer (adjacency bitsets for small dense graphs) or two sweeps on a tree.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "topo/graph_int.h"

typedef struct bfs_ws {
	uint32_t *dist, *queue;
	uint64_t *rows, *vis, *next; /* bitset BFS, or NULL */
	size_t words;
} bfs_ws;

/* Eccentricity of s along out-arcs; *reached peers reached, *far the last
 * one. */
static uint32_t
bfs_list(const fmi_adj *a, bfs_ws *ws, uint32_t s, uint32_t *reached,
    uint32_t *far)
{
	for (uint32_t i = 0; i < a->n; i++) {
		ws->dist[i] = UINT32_MAX;
	}
	uint32_t head = 0, tail = 0;
	ws->dist[s] = 0;
	ws->queue[tail++] = s;
	while (head < tail) {
		uint32_t u = ws->queue[head++];
		for (uint32_t p = a->out_off[u]; p < a->out_off[u + 1]; p++) {
			uint32_t v = a->out_adj[p];
			if (ws->dist[v] == UINT32_MAX) {
				ws->dist[v] = ws->dist[u] + 1;
				ws->queue[tail++] = v;
			}
		}
	}
	*reached = tail;
	*far = ws->queue[tail - 1];
	return ws->dist[*far];
}

/* The same with the frontier expanded by OR-ing adjacency bitsets: n^2/64
 * word operations per source, whatever the density. */
static uint32_t
bfs_bits(const fmi_adj *a, bfs_ws *ws, uint32_t s, uint32_t *reached)
{
	size_t nw = ws->words;
	memset(ws->vis, 0, nw * sizeof *ws->vis);
	ws->vis[s / 64] |= 1ULL << (s % 64);
	ws->queue[0] = s;
	uint32_t nf = 1, count = 1, ecc = 0;
	while (nf > 0) {
		memset(ws->next, 0, nw * sizeof *ws->next);
		for (uint32_t f = 0; f < nf; f++) {
			const uint64_t *row = ws->rows + ws->queue[f] * nw;
			for (size_t w = 0; w < nw; w++) {
				ws->next[w] |= row[w];
			}
		}
		nf = 0;
		for (size_t w = 0; w < nw; w++) {
			uint64_t x = ws->next[w] & ~ws->vis[w];
			ws->vis[w] |= x;
			for (; x != 0; x &= x - 1) {
				ws->queue[nf++] = (uint32_t)(w * 64) +
				    (uint32_t)__builtin_ctzll(x);
			}
		}
		ecc += nf > 0;
		count += nf;
	}
	*reached = count;
	return ecc;
}

static void
bfs_ws_free(bfs_ws *ws)
{
	free(ws->dist);
	free(ws->queue);
	free(ws->rows);
	free(ws->vis);
	free(ws->next);
}

/* Bitsets when n is small and the graph dense enough to pay off. */
static int
bfs_ws_init(const fmi_adj *a, bfs_ws *ws, fm_error *err)
{
	uint32_t n = a->n;
	memset(ws, 0, sizeof *ws);
	ws->words = (n + 63) / 64;
	ws->dist = malloc((size_t)n * sizeof *ws->dist);
	ws->queue = malloc((size_t)n * sizeof *ws->queue);
	int bits = n <= FMI_GRAPH_DESCRIBE_MAX_N &&
	    (uint64_t)n * ws->words < (uint64_t)n + a->out_off[n];
	if (bits) {
		ws->rows = calloc((size_t)n * ws->words, sizeof *ws->rows);
		ws->vis = malloc(ws->words * sizeof *ws->vis);
		ws->next = malloc(ws->words * sizeof *ws->next);
	}
	if (!ws->dist || !ws->queue ||
	    (bits && (!ws->rows || !ws->vis || !ws->next))) {
		bfs_ws_free(ws);
		return fmi_graph_oom(err);
	}
	for (uint32_t i = 0; bits && i < n; i++) {
		for (uint32_t p = a->out_off[i]; p < a->out_off[i + 1]; p++) {
			uint32_t j = a->out_adj[p];
			ws->rows[i * ws->words + j / 64] |= 1ULL << (j % 64);
		}
	}
	return FM_OK;
}

/* Diameter: max eccentricity, UINT32_MAX once a source misses a peer. */
static uint32_t
diameter_all(const fmi_adj *a, bfs_ws *ws)
{
	uint32_t diam = 0, reached, far;
	for (uint32_t s = 0; s < a->n; s++) {
		uint32_t ecc = ws->rows ? bfs_bits(a, ws, s, &reached)
		                        : bfs_list(a, ws, s, &reached, &far);
		if (reached < a->n) {
			return UINT32_MAX;
		}
		diam = FMI_MAX(diam, ecc);
	}
	return diam;
}

/* A tree's diameter by two sweeps; UINT32_MAX if not connected. */
static uint32_t
diameter_tree(const fmi_adj *a, bfs_ws *ws)
{
	uint32_t reached, far;
	bfs_list(a, ws, 0, &reached, &far);
	if (reached < a->n) {
		return UINT32_MAX;
	}
	return bfs_list(a, ws, far, &reached, &far);
}

int
fmi_graph_distances(const fmi_adj *a, fmi_graph_desc *d, fm_error *err)
{
	bfs_ws ws;
	int tree = !a->directed && d->edges + 1 == a->n;
	int rc = bfs_ws_init(a, &ws, err);
	if (rc != FM_OK) {
		return rc;
	}
	if (tree && ws.rows != NULL) { /* two sweeps use the lists */
		free(ws.rows);
		ws.rows = NULL;
	}
	d->diameter = tree ? diameter_tree(a, &ws) : diameter_all(a, &ws);
	d->connected = d->diameter != UINT32_MAX;
	bfs_ws_free(&ws);
	return FM_OK;
}
