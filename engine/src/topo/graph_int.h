/* SPDX-License-Identifier: MIT */
/*
 * graph_int.h: declarations shared by the files of topo/ (private: code
 * outside topo/ uses graph.h).
 */
#ifndef FMI_TOPO_GRAPH_INT_H
#define FMI_TOPO_GRAPH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "topo/graph.h"

/* ---- edge buffers and edge sets (edges.c) ------------------------------ */

typedef struct ebuf {
	uint32_t *v; /* pairs (u, v) */
	size_t len;  /* pairs */
	size_t cap;  /* pairs */
} ebuf;

int fmi_graph_oom(fm_error *err); /* FM_ENOMEM, "graph: out of memory" */
int fmi_eb_push(ebuf *b, uint32_t u, uint32_t v, fm_error *err);

/* A set of undirected edges: open addressing over keys min << 32 | max. */
typedef struct eset {
	uint64_t *slot;
	size_t mask;
} eset;

int fmi_eset_init(eset *s, size_t edges, fm_error *err);
void fmi_eset_clear(eset *s);
int fmi_eset_has(const eset *s, uint32_t u, uint32_t v);
void fmi_eset_add(eset *s, uint32_t u, uint32_t v);
void fmi_eset_del(eset *s, uint32_t u, uint32_t v);

/* ---- CSR adjacency (adjacency.c) --------------------------------------- */

typedef struct csr {
	uint32_t *off; /* [n+1] */
	uint32_t *adj;
} csr;

int fmi_adj_build(uint32_t n, const ebuf *e, int directed, csr *in,
    csr *out, fm_error *err);
void fmi_adj_free(csr *in, csr *out);
void fmi_adj_view(uint32_t n, int directed, const csr *in, const csr *out,
    fmi_adj *a);

/* ---- graph kinds (builders.c) ------------------------------------------ */

typedef int (*build_fn)(const fmi_graph_spec *s, uint32_t round, ebuf *e,
    fm_error *err);

typedef struct kind_info {
	const char *name;
	int time_varying;
	int (*check)(fmi_graph_spec *s, fm_error *err);
	build_fn build;
} kind_info;

/* The kind called name, or NULL. */
const kind_info *fmi_graph_find_kind(const char *name);
/* Checks s (n, directed, then the kind's own fields); torus sets s->n. */
int fmi_graph_check_spec(const kind_info *ki, fmi_graph_spec *s,
    fm_error *err);

/* ---- graphs (graph.c) -------------------------------------------------- */

struct fmi_graph {
	const kind_info *ki;
	fmi_graph_spec s; /* edges: NULL once built */
	csr in, out;      /* out aliases in when undirected */
	uint32_t round;   /* time-varying: the round in/out hold; 0 none */
};

/* ---- mixing weights (mixing.c) ----------------------------------------- */

void fmi_w_accumulate(const fmi_adj *a, double *w, double scale);

/* ---- describe() (describe.c), from distances.c and spectrum.c ---------- */

/* d->slem and d->spectral_gap from the row-major n x n W in w (which is
 * destroyed); symmetric: W is symmetric (undirected graphs). */
int fmi_graph_spectrum(double *w, uint32_t n, int symmetric,
    fmi_graph_desc *d, fm_error *err);
/* d->diameter and d->connected of a (d->edges already set). */
int fmi_graph_distances(const fmi_adj *a, fmi_graph_desc *d, fm_error *err);

#endif /* FMI_TOPO_GRAPH_INT_H */
