/* SPDX-License-Identifier: MIT */
/*
 * krum.c: distance-based selection defences.
 *
 * krum       Blanchard et al., "Machine Learning with Adversaries:
 *            Byzantine Tolerant Gradient Descent", NeurIPS 2017. With n
 *            updates and at most f Byzantine ones (n >= 2f + 3), the score
 *            of update i is the sum of the squared distances to its
 *            n - f - 2 nearest other updates; the update with the lowest
 *            score passes alone (ties: the lower index), weighted by its
 *            own num_examples.
 * multikrum  Multi-Krum (same paper): the m lowest scores pass (m = 0:
 *            n - f), in score order, each with its own num_examples, so
 *            FedAvg averages them by examples. Scores are computed once.
 * bulyan     El Mhamdi, Guerraoui & Rouault, "The Hidden Vulnerability of
 *            Distributed Learning in Byzantium", ICML 2018. Requires
 *            n >= 4f + 3. theta = n - 2f updates are chosen by iterated
 *            Krum (choose one, remove it, score the rest again, with
 *            max(1, s - f - 2) neighbours among the s left); then, per
 *            coordinate, the beta = theta - 2f chosen values closest to
 *            their median are averaged. The result replaces row 0.
 *
 * All squared distances come from one Gram matrix product G = X X^T in
 * float32: d_ij = G_ii + G_jj - 2 G_ij, formed in double and clamped at 0
 * (cancellation can make it slightly negative). A row with a NaN or
 * infinite coordinate gets infinite distances, so it never looks near
 * anything.
 *
 * G is symmetric, so only its upper triangle is computed: n (n + 1) d
 * flops, half of an sgemm's 2 n^2 d. On CPUs with AVX-512 the plugin's own
 * kernel does it (krum_syrk_avx512: tiles of 4 x 6 rows, 24 running sums
 * in registers, over 1024-parameter sub-chunks that stay in L2): 1.5x
 * OpenBLAS 0.3.21's ssyrk on this shape, which packs the same rows twice.
 * Elsewhere it is OpenBLAS's ssyrk; the host API has only gemm, so this
 * plugin links the BLAS the engine links (the same library instance, so
 * the same kernels and thread setting). The
 * product is split along the parameters into column chunks whose bounds
 * depend on n and dim only (krum_chunks): one kernel call per chunk, the chunks
 * taken one at a time by `threads` workers (items of host->parallel_for:
 * each chunk is read by one worker, one pass over the updates in all), and the chunks' partial
 * products added in double in chunk order. So G is the same for any
 * thread count, and the float sums inside a kernel call run over one
 * chunk, not over all of d.
 */
#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fedmesh/plugin.h"

#include "../common/coordwise.h"
#include "../common/dfc.h"

#define KRUM_LOG "FM-KRUM"

/* Column chunks of the Gram product: at least KRUM_CHUNK parameters wide
 * (a BLAS call that long runs at full speed) unless the model is smaller,
 * at most KRUM_CHUNKS of them. At n = 100, d = 1M on the 2-core test
 * machine, chunks 16K to 128K wide timed within noise of each other (16
 * chunks of 62,512 here); a single chunk per thread was slower. */
#define KRUM_CHUNK 65536
#define KRUM_CHUNKS 64

/* The Gram kernel (AVX-512): tiles of KT_I x KT_J row pairs, 24 running
 * sums of 16 lanes in registers, over sub-chunks of KT_SUB parameters (100
 * rows of 4 KB stay in L2 while every tile passes over them). */
#define KT_I 4
#define KT_J 6
#define KT_SUB 1024
#define KT_FLOATS (KT_I * KT_J * 16) /* one tile's running sums */

#if (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KRUM_X86 1
#endif

enum { ALGO_KRUM = 1, ALGO_MULTI, ALGO_BULYAN };

typedef struct krum {
	dfc_base b;
	int algo;
	uint32_t f;
	uint32_t m;                /* multikrum: how many pass; 0 = n - f */
	double *gram;              /* [n][n] */
	float *part;               /* [nchunks][n][n] partial products (upper
	                            * triangles) */
	float *dist;               /* [n][n] squared distances */
	float *tmp;                /* [n] distances of one candidate */
	double *score;             /* [n] */
	uint32_t *order;           /* [n] */
	uint8_t *alive;            /* [n] bulyan: still a candidate */
	const float **rows;        /* [n] bulyan: the chosen rows */
	int avx512;                /* the Gram kernel: ours, or ssyrk */
	float *tiles;              /* [threads][tiles][KT_I * KT_J][16]: the
	                            * Gram kernel's running sums */
	size_t cap[9];
	cw_scratch cw;
} krum;

/* ---- setup --------------------------------------------------------------- */

/* Whether this CPU runs the AVX-512 Gram kernel, decided once per instance
 * (elsewhere OpenBLAS's ssyrk; plugins read no environment variables). */
static int
krum_avx512(void)
{
#ifdef KRUM_X86
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f");
#else
	return 0;
#endif
}


static int
krum_init_common(krum *k, const fm_instance *inst, int algo,
    const char *name, uint32_t nparams)
{
	k->algo = algo;
	k->avx512 = krum_avx512();
	int rv = dfc_init(&k->b, inst, name, KRUM_LOG, nparams);
	if (rv == FM_OK) {
		rv = dfc_count(&k->b, "f", inst->params[0].num, 0, 1000000,
		    &k->f);
	}
	/* threads is the last parameter of all three */
	return rv == FM_OK ? dfc_set_threads(&k->b,
	    inst->params[nparams - 1].num) : rv;
}

/* Refuses, before round 1, an f (and m) that no round could satisfy:
 * at most inst->max_updates updates arrive a round (ABI 1.4). */
static int
krum_fits(krum *k, const fm_instance *inst, uint32_t mult)
{
	uint64_t need = (uint64_t)mult * k->f + 3;
	uint32_t most = inst->max_updates;
	if (most == 0) {
		return FM_OK; /* unknown: checked each round */
	}
	if (most < need) {
		dfc_error(&k->b, "%s: f = %u needs at least %uf + 3 = %llu "
		    "updates a round, but at most %u arrive (clients_per_round, "
		    "or an edge's clients): lower f to %u or sample at least "
		    "%llu clients a round", k->b.name, k->f, mult,
		    (unsigned long long)need, most,
		    most >= 3 ? (most - 3) / mult : 0, (unsigned long long)need);
		return FM_EINVAL;
	}
	if (k->m > most) {
		dfc_error(&k->b, "%s: m = %u is more than the %u updates that "
		    "arrive a round at most: lower m (0 keeps n - f)", k->b.name,
		    k->m, most);
		return FM_EINVAL;
	}
	return FM_OK;
}

static int
krum_init(void *st, const fm_instance *inst)
{
	int rv = krum_init_common(st, inst, ALGO_KRUM, "krum", 2);
	return rv == FM_OK ? krum_fits(st, inst, 2) : rv;
}

static int
multikrum_init(void *st, const fm_instance *inst)
{
	krum *k = st;
	int rv = krum_init_common(k, inst, ALGO_MULTI, "multikrum", 3);
	rv = rv == FM_OK ? dfc_count(&k->b, "m", inst->params[1].num, 0,
	    1000000, &k->m) : rv;
	return rv == FM_OK ? krum_fits(k, inst, 2) : rv;
}

static int
bulyan_init(void *st, const fm_instance *inst)
{
	int rv = krum_init_common(st, inst, ALGO_BULYAN, "bulyan", 2);
	return rv == FM_OK ? krum_fits(st, inst, 4) : rv;
}

static void
krum_fini(void *st)
{
	krum *k = st;
	if (k->b.host == NULL) { /* init never ran */
		return;
	}
	void *bufs[9] = { k->gram, k->dist, k->tmp, k->score, k->order,
		k->alive, (void *)k->rows, k->part, k->tiles };
	for (int i = 0; i < 9; i++) {
		k->b.host->free(bufs[i]);
	}
	cw_free(k->b.host, &k->cw);
	memset(k, 0, sizeof *k);
}

/* How many column chunks the Gram product of n rows of dim is split into
 * (a function of n and dim only, so results never depend on threads): at
 * most KRUM_CHUNKS, none narrower than KRUM_CHUNK, and their partial
 * products (chunks n x n floats) at most a sixteenth of the updates. */
static size_t
krum_chunks(uint32_t n, size_t dim)
{
	size_t c = (dim + KRUM_CHUNK - 1) / KRUM_CHUNK;
	size_t cap = dim / (16 * (size_t)n);
	c = c < KRUM_CHUNKS ? c : KRUM_CHUNKS;
	c = c < cap ? c : cap;
	return c > 0 ? c : 1;
}

/* Width of the chunks: a multiple of 16 floats (chunks start 64-byte
 * aligned, like the rows); the last one may be narrower. */
static size_t
krum_chunk_width(uint32_t n, size_t dim)
{
	size_t c = krum_chunks(n, dim), w = (dim + c - 1) / c;
	return (w + 15) / 16 * 16;
}

/* Tiles covering the upper triangle of an n x n Gram matrix: row blocks
 * of KT_I, and from each block's first row on, column blocks of KT_J. */
static size_t
krum_ntiles(uint32_t n)
{
	size_t t = 0;
	for (uint32_t i0 = 0; i0 < n; i0 += KT_I) {
		t += (n - i0 + KT_J - 1) / KT_J;
	}
	return t;
}

/* Scratch for n updates of dim. */
static int
krum_reserve(krum *k, uint32_t n, size_t dim)
{
	const fm_host_api *h = k->b.host;
	size_t nn = (size_t)n * n, w = krum_chunk_width(n, dim);
	size_t nc = (dim + w - 1) / w;
	k->gram = dfc_grow(h, k->gram, &k->cap[0], nn * sizeof *k->gram);
	k->dist = dfc_grow(h, k->dist, &k->cap[1], nn * sizeof *k->dist);
	k->tmp = dfc_grow(h, k->tmp, &k->cap[2], n * sizeof *k->tmp);
	k->score = dfc_grow(h, k->score, &k->cap[3], n * sizeof *k->score);
	k->order = dfc_grow(h, k->order, &k->cap[4], n * sizeof *k->order);
	k->alive = dfc_grow(h, k->alive, &k->cap[5], n * sizeof *k->alive);
	k->rows = dfc_grow(h, (void *)k->rows, &k->cap[6],
	    n * sizeof *k->rows);
	k->part = dfc_grow(h, k->part, &k->cap[7],
	    nc * nn * sizeof *k->part);
	k->tiles = dfc_grow(h, k->tiles, &k->cap[8], (size_t)k->b.threads *
	    krum_ntiles(n) * KT_FLOATS * sizeof *k->tiles);
	return k->gram && k->dist && k->tmp && k->score && k->order &&
	    k->alive && k->rows && k->part && k->tiles ? FM_OK : FM_ENOMEM;
}

/* ---- distances and scores ------------------------------------------------ */

typedef struct krum_gram_job {
	const fm_rows *r;
	size_t width, nchunks;
	float *part;
	float *tiles;              /* per worker: krum_ntiles(n) tiles */
	int avx512;
	atomic_size_t next;        /* the next chunk nobody has taken */
} krum_gram_job;

#ifdef KRUM_X86
static const float krum_zeros[KT_SUB]; /* the rows past n of a tile */

/* Row jj of a tile: the running sums of (xi[0..3], xj[jj]), one named
 * variable each so that all 24 stay in registers. */
#define KT_ROW(jj) __m512 c##jj##0, c##jj##1, c##jj##2, c##jj##3
#define KT_LOAD(jj)                                                       \
	do {                                                              \
		c##jj##0 = _mm512_loadu_ps(acc + 16 * ((jj) * 4 + 0));      \
		c##jj##1 = _mm512_loadu_ps(acc + 16 * ((jj) * 4 + 1));      \
		c##jj##2 = _mm512_loadu_ps(acc + 16 * ((jj) * 4 + 2));      \
		c##jj##3 = _mm512_loadu_ps(acc + 16 * ((jj) * 4 + 3));      \
	} while (0)
#define KT_STORE(jj)                                                      \
	do {                                                              \
		_mm512_storeu_ps(acc + 16 * ((jj) * 4 + 0), c##jj##0);      \
		_mm512_storeu_ps(acc + 16 * ((jj) * 4 + 1), c##jj##1);      \
		_mm512_storeu_ps(acc + 16 * ((jj) * 4 + 2), c##jj##2);      \
		_mm512_storeu_ps(acc + 16 * ((jj) * 4 + 3), c##jj##3);      \
	} while (0)
#define KT_FMA(jj, load)                                                  \
	do {                                                              \
		__m512 b_ = (load);                                         \
		c##jj##0 = _mm512_fmadd_ps(a0, b_, c##jj##0);               \
		c##jj##1 = _mm512_fmadd_ps(a1, b_, c##jj##1);               \
		c##jj##2 = _mm512_fmadd_ps(a2, b_, c##jj##2);               \
		c##jj##3 = _mm512_fmadd_ps(a3, b_, c##jj##3);               \
	} while (0)
#define KT_STEP(LD)                                                       \
	do {                                                              \
		__m512 a0 = LD(xi[0]), a1 = LD(xi[1]);                      \
		__m512 a2 = LD(xi[2]), a3 = LD(xi[3]);                      \
		KT_FMA(0, LD(xj[0]));                                       \
		KT_FMA(1, LD(xj[1]));                                       \
		KT_FMA(2, LD(xj[2]));                                       \
		KT_FMA(3, LD(xj[3]));                                       \
		KT_FMA(4, LD(xj[4]));                                       \
		KT_FMA(5, LD(xj[5]));                                       \
	} while (0)
#define KT_FULL(p) _mm512_loadu_ps((p) + s)
#define KT_MASKED(p) _mm512_maskz_loadu_ps(m, (p) + s)

/* acc[(jj * 4 + ii) * 16 ..] += the lane-wise products of rows xi[ii] and
 * xj[jj] over len floats (the last partial 16 masked). */
__attribute__((target("avx512f"))) static void
krum_tile(const float *const *xi, const float *const *xj, size_t len,
    float *acc)
{
	KT_ROW(0);
	KT_ROW(1);
	KT_ROW(2);
	KT_ROW(3);
	KT_ROW(4);
	KT_ROW(5);
	KT_LOAD(0);
	KT_LOAD(1);
	KT_LOAD(2);
	KT_LOAD(3);
	KT_LOAD(4);
	KT_LOAD(5);
	size_t s = 0;
	for (; s + 16 <= len; s += 16) {
		KT_STEP(KT_FULL);
	}
	if (s < len) {
		__mmask16 m = (__mmask16)((1u << (len - s)) - 1);
		KT_STEP(KT_MASKED);
	}
	KT_STORE(0);
	KT_STORE(1);
	KT_STORE(2);
	KT_STORE(3);
	KT_STORE(4);
	KT_STORE(5);
}

__attribute__((target("avx512f"))) static float
krum_lanes(const float *v)
{
	return _mm512_reduce_add_ps(_mm512_loadu_ps(v));
}

/* out = X[:, off, off + m) X[:, off, off + m)^T, upper triangle: for every
 * sub-chunk, every tile; then each pair's 16 lanes added. The order of
 * every sum is fixed by n and m. */
static void
krum_syrk_avx512(const fm_rows *r, size_t off, size_t m,
    float *tiles, float *out)
{
	uint32_t n = r->n;
	memset(tiles, 0, krum_ntiles(n) * KT_FLOATS * sizeof *tiles);
	for (size_t s = 0; s < m; s += KT_SUB) {
		size_t len = m - s < KT_SUB ? m - s : KT_SUB;
		float *acc = tiles;
		for (uint32_t i0 = 0; i0 < n; i0 += KT_I) {
			const float *xi[KT_I], *xj[KT_J];
			for (uint32_t q = 0; q < KT_I; q++) {
				xi[q] = i0 + q < n ? dfc_row(r, i0 + q) + off + s
				                   : krum_zeros;
			}
			for (uint32_t j0 = i0; j0 < n; j0 += KT_J) {
				for (uint32_t q = 0; q < KT_J; q++) {
					xj[q] = j0 + q < n ?
					    dfc_row(r, j0 + q) + off + s :
					    krum_zeros;
				}
				krum_tile(xi, xj, len, acc);
				acc += KT_FLOATS;
			}
		}
	}
	const float *acc = tiles;
	for (uint32_t i0 = 0; i0 < n; i0 += KT_I) {
		for (uint32_t j0 = i0; j0 < n; j0 += KT_J) {
			for (uint32_t jj = 0; jj < KT_J; jj++) {
				for (uint32_t ii = 0; ii < KT_I; ii++) {
					uint32_t i = i0 + ii, j = j0 + jj;
					if (i < n && j < n && i <= j) {
						out[(size_t)i * n + j] = krum_lanes(
						    acc + 16 * (jj * 4 + ii));
					}
				}
			}
			acc += KT_FLOATS;
		}
	}
}
#endif

/* part[c] = X[:, chunk c] X[:, chunk c]^T (upper triangle) for the chunks
 * this worker takes, one at a time: a worker held up (another process on
 * its core) does fewer, the others more. Which worker computes a chunk
 * never changes it. */
static void
krum_gram_worker(void *ctx, uint32_t worker, size_t lo, size_t hi)
{
	(void)lo;
	(void)hi;
	krum_gram_job *job = ctx;
	const fm_rows *r = job->r;
	size_t nn = (size_t)r->n * r->n, c;
	while ((c = atomic_fetch_add(&job->next, 1)) < job->nchunks) {
		size_t off = c * job->width;
		size_t m = r->dim - off < job->width ? r->dim - off :
		    job->width;
#ifdef KRUM_X86
		if (job->avx512) {
			krum_syrk_avx512(r, off, m, job->tiles + (size_t)worker *
			    krum_ntiles(r->n) * KT_FLOATS,
			    job->part + c * nn);
			continue;
		}
#endif
		cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)r->n,
		    (int)m, 1.0f, r->deltas + off, (int)r->stride, 0.0f,
		    job->part + c * nn, (int)r->n);
	}
}

/* gram = X X^T: the chunks' products, threaded, then added in chunk
 * order in double. */
static void
krum_gram(krum *k, const fm_rows *r)
{
	uint32_t n = r->n;
	size_t nn = (size_t)n * n, w = krum_chunk_width(n, r->dim);
	size_t nc = (r->dim + w - 1) / w;
	krum_gram_job job = { r, w, nc, k->part, k->tiles, k->avx512, 0 };
	uint32_t t = dfc_fit_threads(k->b.threads, n * r->dim);
	dfc_parallel(&k->b, t, t < nc ? t : nc, 1, krum_gram_worker, &job);
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = i; j < n; j++) {
			double s = 0;
			for (size_t c = 0; c < nc; c++) {
				s += k->part[c * nn + (size_t)i * n + j];
			}
			k->gram[(size_t)i * n + j] = s;
			k->gram[(size_t)j * n + i] = s;
		}
	}
}

/* dist[i][j] = ||x_i - x_j||^2 from the Gram product; +inf when not
 * finite, 0 on the diagonal. */
static void
krum_distances(krum *k, const fm_rows *r)
{
	uint32_t n = r->n;
	const double *g = k->gram;
	krum_gram(k, r);
	for (uint32_t i = 0; i < n; i++) {
		k->dist[(size_t)i * n + i] = 0;
		for (uint32_t j = i + 1; j < n; j++) {
			double d = g[(size_t)i * n + i] +
			    g[(size_t)j * n + j] - 2 * g[(size_t)i * n + j];
			float df = isnan(d) ? INFINITY : d < 0 ? 0.0f :
			    (float)d;
			k->dist[(size_t)i * n + j] = df;
			k->dist[(size_t)j * n + i] = df;
		}
	}
}

/* Sum of the nb smallest squared distances from i to the other live
 * candidates (alive NULL: all), nb >= 1 and at most their number. */
static double
krum_score(krum *k, uint32_t n, uint32_t i, const uint8_t *alive,
    uint32_t nb)
{
	uint32_t c = 0;
	double s = 0;
	for (uint32_t j = 0; j < n; j++) {
		if (j != i && (alive == NULL || alive[j])) {
			k->tmp[c++] = k->dist[(size_t)i * n + j];
		}
	}
	cw_select(k->tmp, c, nb - 1); /* tmp[0..nb): the nb smallest */
	for (uint32_t t = 0; t < nb; t++) {
		s += k->tmp[t];
	}
	return s;
}

/* The live candidate with the lowest score (ties: lower index); n if no
 * score is finite. */
static uint32_t
krum_argmin(const krum *k, uint32_t n, const uint8_t *alive)
{
	uint32_t best = n;
	for (uint32_t i = 0; i < n; i++) {
		if ((alive == NULL || alive[i]) && isfinite(k->score[i]) &&
		    (best == n || k->score[i] < k->score[best])) {
			best = i;
		}
	}
	return best;
}

static int
krum_need(const krum *k, const fm_rows *r, uint32_t mult)
{
	uint64_t need = (uint64_t)mult * k->f + 3;
	if (r->n >= need) {
		return FM_OK;
	}
	dfc_error(&k->b,
	    "%s: f = %u needs at least %uf + 3 = %llu updates, round %u has %u",
	    k->b.name, k->f, mult, (unsigned long long)need, r->round, r->n);
	return FM_EINVAL;
}

static int
krum_no_winner(const krum *k, const fm_rows *r)
{
	dfc_error(&k->b,
	    "%s: round %u: no update has a finite score (too many non-finite "
	    "updates)", k->b.name, r->round);
	return FM_ERANGE;
}

/* Checks, scratch, distances, and the scores of all n with n - f - 2
 * neighbours: the common start of krum and multikrum. */
static int
krum_prepare(krum *k, fm_rows *r)
{
	int rv = dfc_check(&k->b, r);
	r->nkeep = 0;
	if (rv != FM_OK || r->n == 0) {
		return rv;
	}
	rv = krum_need(k, r, 2);
	rv = rv ? rv : krum_reserve(k, r->n, r->dim);
	if (rv != FM_OK) {
		return rv;
	}
	krum_distances(k, r);
	for (uint32_t i = 0; i < r->n; i++) {
		k->score[i] = krum_score(k, r->n, i, NULL, r->n - k->f - 2);
	}
	return FM_OK;
}

/* ---- krum, multikrum ----------------------------------------------------- */

static int
krum_apply(void *st, fm_rows *r)
{
	krum *k = st;
	int rv = krum_prepare(k, r);
	if (rv != FM_OK || r->n == 0) {
		return rv;
	}
	uint32_t best = krum_argmin(k, r->n, NULL);
	if (best == r->n) {
		return krum_no_winner(k, r);
	}
	r->keep[0] = best;
	r->keep_examples[0] = dfc_update(r, best)->num_examples;
	r->nkeep = 1;
	return FM_OK;
}

/* order[0..n) by (score, index), insertion sort (n is a round's clients). */
static void
krum_sort_scores(krum *k, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t j = i;
		while (j > 0 && k->score[k->order[j - 1]] > k->score[i]) {
			k->order[j] = k->order[j - 1];
			j--;
		}
		k->order[j] = i;
	}
}

static int
multikrum_apply(void *st, fm_rows *r)
{
	krum *k = st;
	if (r != NULL && k->m > r->n) {
		r->nkeep = 0;
		dfc_error(&k->b,
		    "multikrum: m = %u is more than the %u updates of round %u",
		    k->m, r->n, r->round);
		return FM_EINVAL;
	}
	int rv = krum_prepare(k, r);
	if (rv != FM_OK || r->n == 0) {
		return rv;
	}
	uint32_t m = k->m > 0 ? k->m : r->n - k->f;
	krum_sort_scores(k, r->n);
	for (uint32_t t = 0; t < m && isfinite(k->score[k->order[t]]); t++) {
		uint32_t i = k->order[t];
		r->keep[t] = i;
		r->keep_examples[t] = dfc_update(r, i)->num_examples;
		r->nkeep = t + 1;
	}
	if (r->nkeep < m) {
		k->b.host->log(FM_LOG_WARN, KRUM_LOG,
		    "multikrum: round %u: only %u of m = %u updates have a "
		    "finite score", r->round, r->nkeep, m);
	}
	return r->nkeep > 0 ? FM_OK : krum_no_winner(k, r);
}

/* ---- bulyan -------------------------------------------------------------- */

/* theta rounds of Krum on a shrinking set: rows[t] is the t-th choice. */
static int
bulyan_choose(krum *k, const fm_rows *r, uint32_t theta)
{
	uint32_t n = r->n;
	memset(k->alive, 1, n);
	for (uint32_t t = 0; t < theta; t++) {
		uint32_t s = n - t, nb = s >= k->f + 3 ? s - k->f - 2 : 1;
		for (uint32_t i = 0; i < n; i++) {
			k->score[i] = !k->alive[i] ? INFINITY : s == 1 ? 0 :
			    krum_score(k, n, i, k->alive, nb);
		}
		uint32_t best = krum_argmin(k, n, k->alive);
		if (best == n) {
			return krum_no_winner(k, r);
		}
		k->alive[best] = 0;
		k->rows[t] = dfc_row(r, best);
	}
	return FM_OK;
}

static int
bulyan_apply(void *st, fm_rows *r)
{
	krum *k = st;
	int rv = dfc_check(&k->b, r);
	r->nkeep = 0;
	if (rv != FM_OK || r->n == 0) {
		return rv;
	}
	rv = krum_need(k, r, 4);
	rv = rv ? rv : krum_reserve(k, r->n, r->dim);
	if (rv != FM_OK) {
		return rv;
	}
	uint32_t theta = r->n - 2 * k->f;
	krum_distances(k, r);
	rv = bulyan_choose(k, r, theta);
	if (rv != FM_OK) {
		return rv;
	}
	cw_job job = { CW_BULYAN, theta, k->rows, theta - 2 * k->f,
		dfc_row(r, 0), r->dim };
	rv = cw_run(&k->b, &k->cw, &job, k->b.threads);
	if (rv == FM_OK) {
		dfc_keep_row0(r);
	}
	return rv;
}

/* ---- registration -------------------------------------------------------- */

#define KRUM_OPS(init, apply_fn)                                             \
	{                                                                   \
		.base = FM_OPS(fm_defence_ops, FM_KIND_DEFENCE, krum, init,  \
		    krum_fini),                                             \
		.apply = apply_fn,                                          \
	}

static const fm_defence_ops krum_ops = KRUM_OPS(krum_init, krum_apply);
static const fm_defence_ops multikrum_ops = KRUM_OPS(multikrum_init,
    multikrum_apply);
static const fm_defence_ops bulyan_ops = KRUM_OPS(bulyan_init,
    bulyan_apply);

#define KRUM_F_PARAM(need)                                                  \
	{ "f", FM_PARAM_INT, 1, 0, 1e6, NULL,                               \
	    "Byzantine updates to tolerate; a round needs at least " need   \
	    " updates." }

#define KRUM_THREADS_PARAM(what)                                            \
	{ "threads", FM_PARAM_INT, 2, 0, DFC_MAX_THREADS, NULL,             \
	    "Chunks for " what " (run on the node's worker threads); 0 "     \
	    "means one per worker thread." }

static const fm_param_desc krum_params[] = {
	KRUM_F_PARAM("2f+3"),
	KRUM_THREADS_PARAM("the Gram matrix"),
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_param_desc multikrum_params[] = {
	KRUM_F_PARAM("2f+3"),
	{ "m", FM_PARAM_INT, 0, 0, 1e6, NULL,
	    "Updates that pass, lowest Krum scores first; 0 means n - f." },
	KRUM_THREADS_PARAM("the Gram matrix"),
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_param_desc bulyan_params[] = {
	KRUM_F_PARAM("4f+3"),
	KRUM_THREADS_PARAM("the Gram matrix and the coordinate-wise stage"),
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc krum_components[] = {
	FM_COMPONENT(FM_KIND_DEFENCE, "krum",
	    "Krum: the update closest to its n-f-2 nearest others passes "
	    "alone (Blanchard et al., 2017)",
	    krum_params, krum_ops, FM_COMP_STATELESS),
	FM_COMPONENT(FM_KIND_DEFENCE, "multikrum",
	    "Multi-Krum: the m updates with the lowest Krum scores pass "
	    "(Blanchard et al., 2017)",
	    multikrum_params, multikrum_ops, FM_COMP_STATELESS),
	FM_COMPONENT(FM_KIND_DEFENCE, "bulyan",
	    "Bulyan: iterated Krum, then a coordinate-wise trimmed average "
	    "around the median (El Mhamdi et al., 2018)",
	    bulyan_params, bulyan_ops, FM_COMP_STATELESS),
};

FM_PLUGIN("krum", "2.0.0", "MIT",
    "Distance-based Byzantine-robust selection: Krum, Multi-Krum, Bulyan",
    krum_components, NULL);
