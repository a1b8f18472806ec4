/* SPDX-License-Identifier: MIT */
/*
 * graph.c: communication graphs: builders (static and time-varying),
 * per-round CSR adjacency, Metropolis-Hastings mixing weights, and
 * describe() (BFS distances, LAPACK eigenvalues of W).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "topo/graph.h"

/* LAPACK from OpenBLAS (Fortran ABI: trailing hidden string lengths). */
extern void dsyev_(const char *jobz, const char *uplo, const int *n,
    double *a, const int *lda, double *w, double *work, const int *lwork,
    int *info, size_t jobz_len, size_t uplo_len);
extern void dgeev_(const char *jobvl, const char *jobvr, const int *n,
    double *a, const int *lda, double *wr, double *wi, double *vl,
    const int *ldvl, double *vr, const int *ldvr, double *work,
    const int *lwork, int *info, size_t jobvl_len, size_t jobvr_len);

#define KREG_ATTEMPTS 1000
#define ER_MAX_N 65536u

/* ---- edge buffers and edge sets ---------------------------------------- */

typedef struct ebuf {
	uint32_t *v; /* pairs (u, v) */
	size_t len;  /* pairs */
	size_t cap;  /* pairs */
} ebuf;

static int
oom(fm_error *err)
{
	return fm_error_set(err, FM_ENOMEM, "graph: out of memory");
}

static int
eb_push(ebuf *b, uint32_t u, uint32_t v, fm_error *err)
{
	if (b->len == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		uint32_t *nv = realloc(b->v, cap * 2 * sizeof *nv);
		if (nv == NULL) {
			return oom(err);
		}
		b->v = nv;
		b->cap = cap;
	}
	b->v[2 * b->len] = u;
	b->v[2 * b->len + 1] = v;
	b->len++;
	return FM_OK;
}

/* A set of undirected edges: open addressing over keys min << 32 | max. */
typedef struct eset {
	uint64_t *slot;
	size_t mask;
} eset;

#define ESET_EMPTY UINT64_MAX
#define ESET_TOMB (UINT64_MAX - 1)

static uint64_t
ekey(uint32_t u, uint32_t v)
{
	return u < v ? (uint64_t)u << 32 | v : (uint64_t)v << 32 | u;
}

static void
eset_clear(eset *s)
{
	memset(s->slot, 0xff, (s->mask + 1) * sizeof *s->slot);
}

/* Room for `edges` insertions plus as many deletions at load <= 1/2. */
static int
eset_init(eset *s, size_t edges, fm_error *err)
{
	size_t cap = 16;
	while (cap < 4 * edges + 16) {
		cap *= 2;
	}
	s->slot = malloc(cap * sizeof *s->slot);
	if (s->slot == NULL) {
		return oom(err);
	}
	s->mask = cap - 1;
	eset_clear(s);
	return FM_OK;
}

static int
eset_has(const eset *s, uint32_t u, uint32_t v)
{
	uint64_t k = ekey(u, v);
	for (size_t i = fmi_hash64(k) & s->mask;; i = (i + 1) & s->mask) {
		if (s->slot[i] == k) {
			return 1;
		}
		if (s->slot[i] == ESET_EMPTY) {
			return 0;
		}
	}
}

/* The edge must not be in the set. */
static void
eset_add(eset *s, uint32_t u, uint32_t v)
{
	uint64_t k = ekey(u, v);
	size_t i = fmi_hash64(k) & s->mask;
	while (s->slot[i] != ESET_EMPTY && s->slot[i] != ESET_TOMB) {
		i = (i + 1) & s->mask;
	}
	s->slot[i] = k;
}

/* The edge must be in the set. */
static void
eset_del(eset *s, uint32_t u, uint32_t v)
{
	uint64_t k = ekey(u, v);
	size_t i = fmi_hash64(k) & s->mask;
	while (s->slot[i] != k) {
		i = (i + 1) & s->mask;
	}
	s->slot[i] = ESET_TOMB;
}

/* ---- CSR adjacency ------------------------------------------------------ */

typedef struct csr {
	uint32_t *off; /* [n+1] */
	uint32_t *adj;
} csr;

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
		return oom(err);
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
static int
adj_build(uint32_t n, const ebuf *e, int directed, csr *in, csr *out,
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

static void
adj_free(csr *in, csr *out)
{
	if (out->off != in->off) {
		csr_free(out);
	}
	csr_free(in);
	out->off = out->adj = NULL;
}

/* ---- builders ----------------------------------------------------------- */

typedef int (*build_fn)(const fmi_graph_spec *s, uint32_t round, ebuf *e,
    fm_error *err);

static int
build_ring(const fmi_graph_spec *s, uint32_t round, ebuf *e, fm_error *err)
{
	int rc = FM_OK;
	for (uint32_t i = 0; i < s->n && rc == FM_OK; i++) {
		rc = eb_push(e, i, (i + 1) % s->n, err); /* n = 1: a loop, dropped */
	}
	return rc;
}

/* 4-neighbour wraparound; rows or cols of 1 or 2 give loops or duplicate
 * pairs, which the CSR build drops. */
static int
build_torus(const fmi_graph_spec *s, uint32_t round, ebuf *e, fm_error *err)
{
	int rc = FM_OK;
	for (uint32_t r = 0; r < s->rows && rc == FM_OK; r++) {
		for (uint32_t c = 0; c < s->cols && rc == FM_OK; c++) {
			uint32_t i = r * s->cols + c;
			rc = eb_push(e, i, r * s->cols + (c + 1) % s->cols, err);
			if (rc == FM_OK) {
				rc = eb_push(e, i,
				    (r + 1) % s->rows * s->cols + c, err);
			}
		}
	}
	return rc;
}

static int
build_complete(const fmi_graph_spec *s, uint32_t round, ebuf *e,
    fm_error *err)
{
	int rc = FM_OK;
	for (uint32_t i = 0; i < s->n && rc == FM_OK; i++) {
		for (uint32_t j = i + 1; j < s->n && rc == FM_OK; j++) {
			rc = eb_push(e, i, j, err);
		}
	}
	return rc;
}

static int
build_star(const fmi_graph_spec *s, uint32_t round, ebuf *e, fm_error *err)
{
	int rc = FM_OK;
	for (uint32_t i = 1; i < s->n && rc == FM_OK; i++) {
		rc = eb_push(e, 0, i, err);
	}
	return rc;
}

static int
build_edges(const fmi_graph_spec *s, uint32_t round, ebuf *e, fm_error *err)
{
	int rc = FM_OK;
	for (size_t i = 0; i < s->nedges && rc == FM_OK; i++) {
		rc = eb_push(e, s->edges[2 * i], s->edges[2 * i + 1], err);
	}
	return rc;
}

/* G(n, p): every pair independently, u < p compared on 53-bit integers so
 * the result is bit-exact everywhere. */
static int
build_erdos_renyi(const fmi_graph_spec *s, uint32_t round, ebuf *e,
    fm_error *err)
{
	fm_rng r;
	fmi_rng_seed(&r, s->seed, 0);
	uint64_t thr = (uint64_t)(s->p * 0x1.0p53);
	int rc = FM_OK;
	for (uint32_t i = 0; i < s->n && rc == FM_OK; i++) {
		for (uint32_t j = i + 1; j < s->n && rc == FM_OK; j++) {
			if ((fmi_rng_u64(&r) >> 11) < thr) {
				rc = eb_push(e, i, j, err);
			}
		}
	}
	return rc;
}

/* A uniformly random perfect matching of round `round`; odd n leaves the
 * last peer of the shuffled order out. */
static int
build_matching(const fmi_graph_spec *s, uint32_t round, ebuf *e,
    fm_error *err)
{
	uint32_t *perm = malloc((size_t)s->n * sizeof *perm);
	if (perm == NULL) {
		return oom(err);
	}
	fm_rng r;
	fmi_rng_seed(&r, s->seed, round);
	for (uint32_t i = 0; i < s->n; i++) {
		perm[i] = i;
	}
	fmi_rng_shuffle_u32(&r, perm, s->n);
	int rc = FM_OK;
	for (uint32_t i = 0; i + 1 < s->n && rc == FM_OK; i += 2) {
		rc = eb_push(e, perm[i], perm[i + 1], err);
	}
	free(perm);
	return rc;
}

/* ---- random k-regular graphs -------------------------------------------- */

/* Draws two free stubs a != b making a new simple edge; 0 when 64 draws
 * found none. */
static int
sw_pick(fm_rng *r, const uint32_t *stubs, size_t left, const eset *s,
    size_t *pa, size_t *pb)
{
	for (int t = 0; t < 64; t++) {
		size_t a = (size_t)fmi_rng_below(r, left);
		size_t b = (size_t)fmi_rng_below(r, left - 1);
		b += b >= a;
		if (stubs[a] != stubs[b] && !eset_has(s, stubs[a], stubs[b])) {
			*pa = a;
			*pb = b;
			return 1;
		}
	}
	return 0;
}

/* Stuck (the free stubs' peers u, v are equal or already linked): splits
 * a random edge (x, y) into (u, x) and (v, y) when both are new, which
 * keeps every degree. 1 done (stubs a, b used), 0 none found, < 0 error. */
static int
sw_switch(fm_rng *r, const uint32_t *stubs, size_t left, eset *s, ebuf *e,
    size_t *pa, size_t *pb, fm_error *err)
{
	for (int t = 0; t < 1000 && e->len > 0; t++) {
		size_t a = (size_t)fmi_rng_below(r, left);
		size_t b = (size_t)fmi_rng_below(r, left - 1);
		b += b >= a;
		size_t p = (size_t)fmi_rng_below(r, e->len);
		uint32_t f = (uint32_t)(fmi_rng_u64(r) & 1);
		uint32_t u = stubs[a], v = stubs[b];
		uint32_t x = e->v[2 * p + f], y = e->v[2 * p + 1 - f];
		if (x == u || x == v || y == u || y == v ||
		    eset_has(s, u, x) || eset_has(s, v, y)) {
			continue;
		}
		eset_del(s, x, y);
		eset_add(s, u, x);
		eset_add(s, v, y);
		e->v[2 * p] = u;
		e->v[2 * p + 1] = x;
		*pa = a;
		*pb = b;
		return eb_push(e, v, y, err) == FM_OK ? 1 : -err->code;
	}
	return 0;
}

/* One attempt of the Steger-Wormald pairing (draw two free stubs, keep
 * the pair unless it makes a loop or a double edge; edge switches when
 * stuck): 1 done, 0 stuck, < 0 error (negated code). */
static int
sw_try(uint32_t n, uint32_t k, fm_rng *r, uint32_t *stubs, eset *s,
    ebuf *e, fm_error *err)
{
	size_t left = (size_t)n * k;
	for (size_t i = 0; i < left; i++) {
		stubs[i] = (uint32_t)(i / k);
	}
	while (left > 0) {
		size_t a, b;
		if (sw_pick(r, stubs, left, s, &a, &b)) {
			eset_add(s, stubs[a], stubs[b]);
			if (eb_push(e, stubs[a], stubs[b], err) != FM_OK) {
				return -err->code;
			}
		} else {
			int got = sw_switch(r, stubs, left, s, e, &a, &b, err);
			if (got <= 0) {
				return got;
			}
		}
		size_t hi = a > b ? a : b, lo = a > b ? b : a;
		stubs[hi] = stubs[--left];
		stubs[lo] = stubs[--left];
	}
	return 1;
}

/* e := the complement of the graph in s. */
static int
complement(uint32_t n, const eset *s, ebuf *e, fm_error *err)
{
	int rc = FM_OK;
	e->len = 0;
	for (uint32_t i = 0; i < n && rc == FM_OK; i++) {
		for (uint32_t j = i + 1; j < n && rc == FM_OK; j++) {
			if (!eset_has(s, i, j)) {
				rc = eb_push(e, i, j, err);
			}
		}
	}
	return rc;
}

static int
kregular_pairing(uint32_t n, uint32_t k, fm_rng *r, eset *s, ebuf *e,
    fm_error *err)
{
	uint32_t *stubs = malloc(((size_t)n * k + 1) * sizeof *stubs);
	if (stubs == NULL) {
		return oom(err);
	}
	int got = 0;
	for (int t = 0; t < KREG_ATTEMPTS && got == 0; t++) {
		e->len = 0;
		eset_clear(s);
		got = sw_try(n, k, r, stubs, s, e, err);
	}
	free(stubs);
	if (got < 0) {
		return -got;
	}
	if (got == 0) {
		return fm_error_set(err, FM_EINTERNAL, "k: no %u-regular "
		    "graph on %u peers found in %d attempts", k, n,
		    KREG_ATTEMPTS);
	}
	return FM_OK;
}

/* A random k-regular simple graph: Steger-Wormald pairing, repaired by
 * edge switches and restarted when stuck; for k > (n-1)/2, the complement
 * of a random (n-1-k)-regular graph (the pairing stays sparse). */
static int
kregular_edges(uint32_t n, uint32_t k, fm_rng *r, ebuf *e, fm_error *err)
{
	int dense = 2 * (uint64_t)k > (uint64_t)n - 1;
	uint32_t kk = dense ? n - 1 - k : k;
	eset s = { NULL, 0 };
	int rc = eset_init(&s, (size_t)n * kk / 2, err);
	if (rc != FM_OK) {
		return rc;
	}
	rc = kregular_pairing(n, kk, r, &s, e, err);
	if (rc == FM_OK && dense) {
		rc = complement(n, &s, e, err);
	}
	free(s.slot);
	return rc;
}

static int
build_kregular(const fmi_graph_spec *s, uint32_t round, ebuf *e,
    fm_error *err)
{
	fm_rng r;
	fmi_rng_seed(&r, s->seed, round);
	return kregular_edges(s->n, s->k, &r, e, err);
}

/* ---- Watts-Strogatz ------------------------------------------------------ */

/* Rewires the edge at pair index p (u, v) to (u, w), w uniform among the
 * peers that are neither u nor already u's neighbours. */
static void
ws_rewire(uint32_t n, fm_rng *r, eset *s, uint32_t *deg, ebuf *e, size_t p)
{
	uint32_t u = e->v[2 * p], v = e->v[2 * p + 1], w;
	if (deg[u] >= n - 1) {
		return;
	}
	do {
		w = (uint32_t)fmi_rng_below(r, n);
	} while (w == u || eset_has(s, u, w));
	eset_del(s, u, v);
	eset_add(s, u, w);
	deg[v]--;
	deg[w]++;
	e->v[2 * p + 1] = w;
}

/* The ring lattice (each peer linked to its k/2 successors), then every
 * edge (i, i+j), j = 1..k/2 in turn, moved to (i, w) with probability p. */
static int
build_small_world(const fmi_graph_spec *s, uint32_t round, ebuf *e,
    fm_error *err)
{
	uint32_t n = s->n, h = s->k / 2;
	eset set = { NULL, 0 };
	uint32_t *deg = malloc((size_t)n * sizeof *deg);
	int rc = deg ? eset_init(&set, (size_t)n * h, err) : oom(err);
	if (rc != FM_OK) {
		free(deg);
		return rc;
	}
	for (uint32_t j = 1; j <= h && rc == FM_OK; j++) {
		for (uint32_t i = 0; i < n && rc == FM_OK; i++) {
			eset_add(&set, i, (i + j) % n);
			rc = eb_push(e, i, (i + j) % n, err);
		}
	}
	fm_rng r;
	fmi_rng_seed(&r, s->seed, round);
	for (uint32_t i = 0; i < n; i++) {
		deg[i] = s->k;
	}
	for (size_t p = 0; p < e->len && rc == FM_OK; p++) {
		if (fmi_rng_uniform(&r) < s->p) {
			ws_rewire(n, &r, &set, deg, e, p);
		}
	}
	free(deg);
	free(set.slot);
	return rc;
}

/* ---- specs -------------------------------------------------------------- */

static int
check_none(fmi_graph_spec *s, fm_error *err)
{
	return FM_OK;
}

static int
check_torus(fmi_graph_spec *s, fm_error *err)
{
	if (s->rows < 1 || s->cols < 1) {
		return fm_error_set(err, FM_EINVAL, "torus: rows and cols "
		    "must be at least 1 (got rows = %u, cols = %u)", s->rows,
		    s->cols);
	}
	uint64_t n = (uint64_t)s->rows * s->cols;
	if (n > FMI_GRAPH_MAX_N) {
		return fm_error_set(err, FM_EINVAL, "torus: rows * cols = %llu "
		    "peers is more than %u", (unsigned long long)n,
		    FMI_GRAPH_MAX_N);
	}
	if (s->n != 0 && s->n != n) {
		return fm_error_set(err, FM_EINVAL, "torus: n = %u but rows * "
		    "cols = %llu", s->n, (unsigned long long)n);
	}
	s->n = (uint32_t)n;
	return FM_OK;
}

static int
check_complete(fmi_graph_spec *s, fm_error *err)
{
	if ((uint64_t)s->n * (s->n - 1) >= UINT32_MAX) {
		return fm_error_set(err, FM_EINVAL, "complete: n = %u peers "
		    "give too many edges (at most 65536 peers)", s->n);
	}
	return FM_OK;
}

static int
check_k(fmi_graph_spec *s, const char *kind, fm_error *err)
{
	if (s->k >= s->n) {
		return fm_error_set(err, FM_EINVAL, "%s: k = %u must be less "
		    "than n = %u (the number of peers)", kind, s->k, s->n);
	}
	if ((uint64_t)s->n * s->k >= UINT32_MAX) {
		return fm_error_set(err, FM_EINVAL, "%s: k = %u on n = %u "
		    "peers gives too many edges", kind, s->k, s->n);
	}
	return FM_OK;
}

static int
check_p(const fmi_graph_spec *s, const char *kind, const char *what,
    fm_error *err)
{
	if (!(s->p >= 0.0 && s->p <= 1.0)) {
		return fm_error_set(err, FM_EINVAL, "%s: p = %g (%s) must be "
		    "in [0, 1]", kind, s->p, what);
	}
	return FM_OK;
}

static int
check_kregular(fmi_graph_spec *s, fm_error *err)
{
	int rc = check_k(s, "kregular", err);
	if (rc == FM_OK && (uint64_t)s->n * s->k % 2 != 0) {
		rc = fm_error_set(err, FM_EINVAL, "kregular: k = %u with n = "
		    "%u peers: n * k is odd, so no k-regular graph exists",
		    s->k, s->n);
	}
	return rc;
}

static int
check_random_kregular(fmi_graph_spec *s, fm_error *err)
{
	int rc = check_kregular(s, err);
	if (rc != FM_OK) { /* name the kind the caller asked for */
		char msg[sizeof err->msg];
		fmi_strlcpy(msg, err->msg, sizeof msg);
		fm_error_set(err, rc, "random_%s", msg);
	}
	return rc;
}

static int
check_erdos_renyi(fmi_graph_spec *s, fm_error *err)
{
	if (s->n > ER_MAX_N) {
		return fm_error_set(err, FM_EINVAL, "erdos_renyi: n = %u peers "
		    "is more than %u (sampling is O(n^2))", s->n, ER_MAX_N);
	}
	int rc = check_p(s, "erdos_renyi", "the edge probability", err);
	if (rc == FM_OK && s->p * s->n * (s->n - 1.0) > 4.0e9) {
		rc = fm_error_set(err, FM_EINVAL, "erdos_renyi: p = %g on n = "
		    "%u peers gives too many edges", s->p, s->n);
	}
	return rc;
}

static int
check_small_world(fmi_graph_spec *s, fm_error *err)
{
	if (s->k < 2 || s->k % 2 != 0) {
		return fm_error_set(err, FM_EINVAL, "small_world: k = %u must "
		    "be even and at least 2 (k/2 neighbours on each side)",
		    s->k);
	}
	int rc = check_k(s, "small_world", err);
	return rc != FM_OK ? rc : check_p(s, "small_world",
	    "the rewiring probability", err);
}

static int
check_edges(fmi_graph_spec *s, fm_error *err)
{
	if (s->nedges > 0 && s->edges == NULL) {
		return fm_error_set(err, FM_EINVAL, "edges: %zu edges but no "
		    "edge array", s->nedges);
	}
	if (s->nedges >= UINT32_MAX / 2) {
		return fm_error_set(err, FM_EINVAL, "edges: %zu edges are too "
		    "many", s->nedges);
	}
	for (size_t i = 0; i < s->nedges; i++) {
		uint32_t u = s->edges[2 * i], v = s->edges[2 * i + 1];
		if (u >= s->n || v >= s->n) {
			return fm_error_set(err, FM_EINVAL, "edges: edge %zu "
			    "(%u, %u) names a peer outside 0..%u", i, u, v,
			    s->n - 1);
		}
		if (u == v) {
			return fm_error_set(err, FM_EINVAL, "edges: edge %zu "
			    "(%u, %u) is a self-loop", i, u, v);
		}
	}
	return FM_OK;
}

typedef struct kind_info {
	const char *name;
	int time_varying;
	int (*check)(fmi_graph_spec *s, fm_error *err);
	build_fn build;
} kind_info;

static const kind_info kinds[] = {
	{ "ring", 0, check_none, build_ring },
	{ "torus", 0, check_torus, build_torus },
	{ "complete", 0, check_complete, build_complete },
	{ "kregular", 0, check_kregular, build_kregular },
	{ "erdos_renyi", 0, check_erdos_renyi, build_erdos_renyi },
	{ "small_world", 0, check_small_world, build_small_world },
	{ "edges", 0, check_edges, build_edges },
	{ "star", 0, check_none, build_star },
	{ "matching", 1, check_none, build_matching },
	{ "random_kregular", 1, check_random_kregular, build_kregular },
};

static const kind_info *
find_kind(const char *name)
{
	for (size_t i = 0; name != NULL && i < FMI_ARRAY_LEN(kinds); i++) {
		if (strcmp(kinds[i].name, name) == 0) {
			return &kinds[i];
		}
	}
	return NULL;
}

static int
check_spec(const kind_info *ki, fmi_graph_spec *s, fm_error *err)
{
	if (strcmp(ki->name, "torus") != 0 &&
	    (s->n < 1 || s->n > FMI_GRAPH_MAX_N)) {
		return fm_error_set(err, FM_EINVAL, "%s: n = %u peers must be "
		    "in 1..%u", ki->name, s->n, FMI_GRAPH_MAX_N);
	}
	if (s->directed && strcmp(ki->name, "edges") != 0) {
		return fm_error_set(err, FM_EINVAL, "%s: directed applies to "
		    "kind 'edges' only", ki->name);
	}
	return ki->check(s, err);
}

/* ---- graphs ------------------------------------------------------------- */

struct fmi_graph {
	const kind_info *ki;
	fmi_graph_spec s; /* edges: NULL once built */
	csr in, out;      /* out aliases in when undirected */
	uint32_t round;   /* time-varying: the round in/out hold; 0 none */
};

static int
graph_build(fmi_graph *g, uint32_t round, fm_error *err)
{
	ebuf e = { 0 };
	csr in, out;
	int rc = g->ki->build(&g->s, round, &e, err);
	if (rc == FM_OK) {
		rc = adj_build(g->s.n, &e, g->s.directed, &in, &out, err);
	}
	free(e.v);
	if (rc == FM_OK) {
		adj_free(&g->in, &g->out);
		g->in = in;
		g->out = out;
		g->round = round;
	}
	return rc;
}

int
fmi_graph_new(const fmi_graph_spec *spec, fmi_graph **out, fm_error *err)
{
	*out = NULL;
	const kind_info *ki = find_kind(spec->kind);
	if (ki == NULL) {
		return fm_error_set(err, FM_EINVAL, "kind: unknown graph kind "
		    "'%s' (valid: ring, torus, complete, kregular, erdos_renyi,"
		    " small_world, edges, star, matching, random_kregular)",
		    spec->kind ? spec->kind : "(null)");
	}
	fmi_graph *g = calloc(1, sizeof *g);
	if (g == NULL) {
		return oom(err);
	}
	g->ki = ki;
	g->s = *spec;
	g->s.kind = ki->name;
	g->s.directed = spec->directed != 0;
	int rc = check_spec(ki, &g->s, err);
	if (rc == FM_OK) {
		rc = graph_build(g, 1, err); /* time-varying: round 1 */
	}
	g->s.edges = NULL;
	g->s.nedges = 0;
	if (rc != FM_OK) {
		fmi_graph_free(g);
		return rc;
	}
	*out = g;
	return FM_OK;
}

void
fmi_graph_free(fmi_graph *g)
{
	if (g != NULL) {
		adj_free(&g->in, &g->out);
		free(g);
	}
}

uint32_t
fmi_graph_n(const fmi_graph *g)
{
	return g->s.n;
}

int
fmi_graph_directed(const fmi_graph *g)
{
	return g->s.directed;
}

int
fmi_graph_time_varying(const fmi_graph *g)
{
	return g->ki->time_varying;
}

const char *
fmi_graph_kind(const fmi_graph *g)
{
	return g->ki->name;
}

static void
adj_view(uint32_t n, int directed, const csr *in, const csr *out,
    fmi_adj *a)
{
	a->n = n;
	a->directed = directed;
	a->in_off = in->off;
	a->in_adj = in->adj;
	a->out_off = out->off;
	a->out_adj = out->adj;
}

int
fmi_graph_round(fmi_graph *g, uint32_t round, fmi_adj *out, fm_error *err)
{
	if (round == 0) {
		return fm_error_set(err, FM_EINVAL, "round: rounds are "
		    "1-based (got 0)");
	}
	if (g->ki->time_varying && g->round != round) {
		int rc = graph_build(g, round, err);
		if (rc != FM_OK) {
			return rc;
		}
	}
	adj_view(g->s.n, g->s.directed, &g->in, &g->out, out);
	return FM_OK;
}

/* ---- mixing weights ----------------------------------------------------- */

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
static void
w_accumulate(const fmi_adj *a, double *w, double scale)
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

/* ---- spectra ------------------------------------------------------------ */

/* The second-largest of the moduli m[0..n). */
static double
second_modulus(const double *m, uint32_t n)
{
	double first = -1.0, second = 0.0;
	for (uint32_t i = 0; i < n; i++) {
		if (m[i] > first) {
			second = first < 0 ? 0.0 : first;
			first = m[i];
		} else if (m[i] > second) {
			second = m[i];
		}
	}
	return second;
}

static int
lapack_failed(const char *fn, int info, fm_error *err)
{
	return fm_error_set(err, FM_EINTERNAL, "describe: LAPACK %s failed "
	    "(info = %d)", fn, info);
}

/* Eigenvalue moduli of the symmetric w into m (w is destroyed). */
static int
moduli_sym(double *w, int n, double *m, fm_error *err)
{
	int lwork = -1, info = 0;
	double q;
	dsyev_("N", "U", &n, w, &n, m, &q, &lwork, &info, 1, 1);
	lwork = info == 0 ? (int)q : 3 * n;
	double *work = malloc((size_t)lwork * sizeof *work);
	if (work == NULL) {
		return oom(err);
	}
	dsyev_("N", "U", &n, w, &n, m, work, &lwork, &info, 1, 1);
	free(work);
	if (info != 0) {
		return lapack_failed("dsyev", info, err);
	}
	for (int i = 0; i < n; i++) {
		m[i] = fabs(m[i]);
	}
	return FM_OK;
}

/* Eigenvalue moduli of the general w into m (w is destroyed; W and W^T
 * have the same eigenvalues, so row-major is fine). */
static int
moduli_gen(double *w, int n, double *m, fm_error *err)
{
	int lwork = -1, info = 0, one = 1;
	double q, dummy;
	double *wi = malloc((size_t)n * sizeof *wi);
	if (wi == NULL) {
		return oom(err);
	}
	dgeev_("N", "N", &n, w, &n, m, wi, &dummy, &one, &dummy, &one, &q,
	    &lwork, &info, 1, 1);
	lwork = info == 0 ? (int)q : 4 * n;
	double *work = malloc((size_t)lwork * sizeof *work);
	if (work != NULL) {
		dgeev_("N", "N", &n, w, &n, m, wi, &dummy, &one, &dummy, &one,
		    work, &lwork, &info, 1, 1);
	}
	for (int i = 0; work != NULL && info == 0 && i < n; i++) {
		m[i] = hypot(m[i], wi[i]);
	}
	free(wi);
	free(work);
	if (work == NULL) {
		return oom(err);
	}
	return info != 0 ? lapack_failed("dgeev", info, err) : FM_OK;
}

static int
spectrum(double *w, uint32_t n, int symmetric, fmi_graph_desc *d,
    fm_error *err)
{
	double *m = malloc((size_t)n * sizeof *m);
	if (m == NULL) {
		return oom(err);
	}
	int rc = symmetric ? moduli_sym(w, (int)n, m, err)
	                   : moduli_gen(w, (int)n, m, err);
	if (rc == FM_OK) {
		d->slem = second_modulus(m, n);
		d->spectral_gap = 1.0 - d->slem;
	}
	free(m);
	return rc;
}

/* ---- distances ---------------------------------------------------------- */

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
		return oom(err);
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

static int
describe_distances(const fmi_adj *a, fmi_graph_desc *d, fm_error *err)
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

/* ---- describe ------------------------------------------------------------ */

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
			w_accumulate(&a, w, 1.0 / FMI_GRAPH_SAMPLES);
		}
		for (uint32_t i = 0; rc == FM_OK && i < a.n; i++) {
			for (uint32_t p = a.out_off[i];
			    rc == FM_OK && p < a.out_off[i + 1]; p++) {
				if (a.directed || i < a.out_adj[p]) {
					rc = eb_push(&e, i, a.out_adj[p], err);
				}
			}
		}
	}
	if (rc == FM_OK) {
		rc = adj_build(g->s.n, &e, g->s.directed, in, out, err);
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
		adj_view(g->s.n, g->s.directed, &in, &out, &a);
	} else {
		d->samples = 1;
		rc = fmi_graph_round(g, 1, &a, err);
		if (rc == FM_OK && w != NULL) {
			w_accumulate(&a, w, 1.0);
		}
	}
	if (rc == FM_OK) {
		describe_degrees(&a, d);
		rc = describe_distances(&a, d, err);
	}
	if (rc == FM_OK && w != NULL) {
		rc = spectrum(w, g->s.n, !g->s.directed, d, err);
	}
	adj_free(&in, &out);
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
		return oom(err);
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
