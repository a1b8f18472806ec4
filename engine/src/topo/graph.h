/* SPDX-License-Identifier: MIT */
/*
 * graph.h: communication graphs of decentralized federations.
 *
 * A graph has n peers (0..n-1). Static graphs (ring, torus, complete,
 * random k-regular, Erdos-Renyi, Watts-Strogatz, an edge list, star) have
 * the same edges every round; time-varying graphs (a random perfect
 * matching per round, ...) are materialized round by round from their
 * seed, so round r's graph is the same in every process of a deployment.
 *
 * Mixing weights (what gossip uses, and what describe() analyses):
 *   undirected: Metropolis-Hastings, W_ij = 1/(1 + max(d_i, d_j)) on
 *               edges, W_ii = 1 - sum_j W_ij;
 *   directed:   W_ij = 1/(1 + in_i) for each in-neighbour j, W_ii the same.
 */
#ifndef FMI_TOPO_GRAPH_H
#define FMI_TOPO_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/errors.h"

typedef struct fmi_graph fmi_graph;

/* What to build. kind is one of "ring", "torus", "complete", "kregular",
 * "erdos_renyi", "small_world", "edges", "star", "matching" (time-varying:
 * a fresh random perfect matching every round; odd n leaves one peer out
 * each round), "random_kregular" (time-varying: a fresh random k-regular
 * graph every round). */
typedef struct fmi_graph_spec {
	const char *kind;
	uint32_t n;          /* peers (torus: rows * cols, or 0 for that) */
	uint32_t rows, cols; /* torus */
	uint32_t k;          /* kregular, small_world, random_kregular:
	                      * degree (small_world: even, neighbours on
	                      * the base ring) */
	double p;            /* erdos_renyi: edge probability;
	                      * small_world: rewiring probability */
	uint64_t seed;       /* random graphs */
	const uint32_t *edges; /* "edges": pairs (from, to), nedges of them */
	size_t nedges;
	int directed;        /* "edges" only: 1 = the pairs are directed */
} fmi_graph_spec;

/* Builds a graph; FM_EINVAL with err naming the field for a bad spec
 * (e.g. n*k odd for kregular, k >= n, self-loops in an edge list). */
int fmi_graph_new(const fmi_graph_spec *spec, fmi_graph **out, fm_error *err);
void fmi_graph_free(fmi_graph *g); /* NULL ok */

uint32_t fmi_graph_n(const fmi_graph *g);
int fmi_graph_directed(const fmi_graph *g);
int fmi_graph_time_varying(const fmi_graph *g);
const char *fmi_graph_kind(const fmi_graph *g);

/* One round's adjacency, CSR, neighbour lists sorted ascending, no
 * self-loops, no duplicates. For undirected graphs in == out. */
typedef struct fmi_adj {
	uint32_t n;
	int directed;
	const uint32_t *in_off;  /* [n+1] */
	const uint32_t *in_adj;  /* in-neighbours of i: in_adj[in_off[i]..) */
	const uint32_t *out_off; /* [n+1] */
	const uint32_t *out_adj;
} fmi_adj;

/*
 * The graph of round `round` (1-based). Static graphs return the same
 * adjacency every round. Time-varying graphs are rebuilt from (seed,
 * round): the view stays valid until the next call on g; not thread-safe
 * (call it once per round, then share the view read-only).
 */
int fmi_graph_round(fmi_graph *g, uint32_t round, fmi_adj *out,
    fm_error *err);

static inline uint32_t
fmi_adj_in_degree(const fmi_adj *a, uint32_t i)
{
	return a->in_off[i + 1] - a->in_off[i];
}

static inline uint32_t
fmi_adj_out_degree(const fmi_adj *a, uint32_t i)
{
	return a->out_off[i + 1] - a->out_off[i];
}

/* Mixing weight W_ij of edge j -> i (0 if no such edge; i == j gives
 * W_ii). */
double fmi_adj_weight(const fmi_adj *a, uint32_t i, uint32_t j);

/* What describe() reports. Time-varying graphs: degrees and diameter of
 * the union of the first `samples` rounds' graphs, spectral values of the
 * exact expected mixing matrix E[W] (for matchings E[W] = E[W^T W]: the
 * mean squared disagreement shrinks by slem per round, so its norm by
 * about sqrt(slem), Boyd et al. 2006). */
typedef struct fmi_graph_desc {
	uint32_t nodes;
	uint64_t edges;        /* undirected: pairs; directed: arcs */
	uint32_t degree_min, degree_max; /* out-degree for directed graphs */
	double degree_mean;
	int connected;         /* strongly connected for directed graphs */
	uint32_t diameter;     /* hops; UINT32_MAX when not connected */
	double slem;           /* second-largest eigenvalue modulus of W */
	double spectral_gap;   /* 1 - slem */
	uint32_t samples;      /* rounds averaged (time-varying), else 1 */
} fmi_graph_desc;

/* Rounds a time-varying graph's describe() averages. */
#define FMI_GRAPH_SAMPLES 64u
/* Largest n describe() analyses spectrally (dense O(n^3) eigenvalues). */
#define FMI_GRAPH_DESCRIBE_MAX_N 4096u
/* Largest n any builder accepts. */
#define FMI_GRAPH_MAX_N (1u << 24)

/* Undirected graphs: slem from the eigenvalues of the symmetric W (LAPACK
 * dsyev). Directed graphs: W is not symmetric; slem is the second-largest
 * modulus among the eigenvalues of W as a general real matrix (LAPACK
 * dgeev). n up to FMI_GRAPH_DESCRIBE_MAX_N, else FM_EINVAL. */
int fmi_graph_describe(fmi_graph *g, fmi_graph_desc *d, fm_error *err);

/* describe() flags. NO_SPECTRAL: skip the eigenvalues (slem and
 * spectral_gap are NaN); any n is then accepted (diameter: BFS from every
 * node, or two sweeps for a tree). */
#define FMI_GRAPH_DESCRIBE_NO_SPECTRAL 1u
int fmi_graph_describe_ex(fmi_graph *g, unsigned flags, fmi_graph_desc *d,
    fm_error *err);

#endif /* FMI_TOPO_GRAPH_H */
