/* SPDX-License-Identifier: MIT */
/*
 * builders.c: the graph kinds: their edge builders, static (ring, torus,
 * complete, star, edge list, Erdos-Renyi, k-regular, Watts-Strogatz) and
 * time-varying (matching, random k-regular), their spec checks, and the
 * table of kinds.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "topo/graph_int.h"

#define KREG_ATTEMPTS 1000
#define ER_MAX_N 65536u

static int
build_ring(const fmi_graph_spec *s, uint32_t round, ebuf *e, fm_error *err)
{
	int rc = FM_OK;
	for (uint32_t i = 0; i < s->n && rc == FM_OK; i++) {
		rc = fmi_eb_push(e, i, (i + 1) % s->n, err); /* n = 1: a loop, dropped */
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
			rc = fmi_eb_push(e, i, r * s->cols + (c + 1) % s->cols,
			    err);
			if (rc == FM_OK) {
				rc = fmi_eb_push(e, i,
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
			rc = fmi_eb_push(e, i, j, err);
		}
	}
	return rc;
}

static int
build_star(const fmi_graph_spec *s, uint32_t round, ebuf *e, fm_error *err)
{
	int rc = FM_OK;
	for (uint32_t i = 1; i < s->n && rc == FM_OK; i++) {
		rc = fmi_eb_push(e, 0, i, err);
	}
	return rc;
}

static int
build_edges(const fmi_graph_spec *s, uint32_t round, ebuf *e, fm_error *err)
{
	int rc = FM_OK;
	for (size_t i = 0; i < s->nedges && rc == FM_OK; i++) {
		rc = fmi_eb_push(e, s->edges[2 * i], s->edges[2 * i + 1], err);
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
				rc = fmi_eb_push(e, i, j, err);
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
		return fmi_graph_oom(err);
	}
	fm_rng r;
	fmi_rng_seed(&r, s->seed, round);
	for (uint32_t i = 0; i < s->n; i++) {
		perm[i] = i;
	}
	fmi_rng_shuffle_u32(&r, perm, s->n);
	int rc = FM_OK;
	for (uint32_t i = 0; i + 1 < s->n && rc == FM_OK; i += 2) {
		rc = fmi_eb_push(e, perm[i], perm[i + 1], err);
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
		if (stubs[a] != stubs[b] &&
		    !fmi_eset_has(s, stubs[a], stubs[b])) {
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
		    fmi_eset_has(s, u, x) || fmi_eset_has(s, v, y)) {
			continue;
		}
		fmi_eset_del(s, x, y);
		fmi_eset_add(s, u, x);
		fmi_eset_add(s, v, y);
		e->v[2 * p] = u;
		e->v[2 * p + 1] = x;
		*pa = a;
		*pb = b;
		return fmi_eb_push(e, v, y, err) == FM_OK ? 1 : -err->code;
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
			fmi_eset_add(s, stubs[a], stubs[b]);
			if (fmi_eb_push(e, stubs[a], stubs[b], err) != FM_OK) {
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
			if (!fmi_eset_has(s, i, j)) {
				rc = fmi_eb_push(e, i, j, err);
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
		return fmi_graph_oom(err);
	}
	int got = 0;
	for (int t = 0; t < KREG_ATTEMPTS && got == 0; t++) {
		e->len = 0;
		fmi_eset_clear(s);
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
	int rc = fmi_eset_init(&s, (size_t)n * kk / 2, err);
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
	} while (w == u || fmi_eset_has(s, u, w));
	fmi_eset_del(s, u, v);
	fmi_eset_add(s, u, w);
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
	int rc = deg ? fmi_eset_init(&set, (size_t)n * h, err)
	             : fmi_graph_oom(err);
	if (rc != FM_OK) {
		free(deg);
		return rc;
	}
	for (uint32_t j = 1; j <= h && rc == FM_OK; j++) {
		for (uint32_t i = 0; i < n && rc == FM_OK; i++) {
			fmi_eset_add(&set, i, (i + j) % n);
			rc = fmi_eb_push(e, i, (i + j) % n, err);
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

const kind_info *
fmi_graph_find_kind(const char *name)
{
	for (size_t i = 0; name != NULL && i < FMI_ARRAY_LEN(kinds); i++) {
		if (strcmp(kinds[i].name, name) == 0) {
			return &kinds[i];
		}
	}
	return NULL;
}

int
fmi_graph_check_spec(const kind_info *ki, fmi_graph_spec *s, fm_error *err)
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
