/* SPDX-License-Identifier: MIT */
/*
 * defence_bench.c: defence throughput against this machine's memory
 * bandwidth (issue 5, benchmark 2). Run by hand (not a test), normally
 * through bench/defence_throughput.sh:
 *
 *   cmake --build build --target fm_defence_bench
 *   build/tests/bin/fm_defence_bench [n] [d] [reps] [blas_threads] [only]
 *
 * n updates of d parameters (default 100 x 1M), reps timed repetitions
 * (default 7), OpenBLAS threads (default 1: what the engine's server runs
 * with; simulation, deployment and peer-to-peer nodes all set 1), and
 * optionally which rules to time besides FedAvg (comma-separated names,
 * e.g. "multikrum,median"; default all). Prints one JSON object per line:
 *
 *   env      CPU, last-level cache, OpenBLAS kernel and threads, load.
 *   end      the 2-thread read bandwidth measured again after the rules
 *            (it drifts on a shared machine), and the load.
 *   membw    STREAM-like memory bandwidth, 1 and 2 threads, best and median
 *            of several passes over buffers of max(4 x LLC, 256 MiB) each:
 *            "read" sums one buffer (bytes = the buffer: each byte read
 *            once), "triad" computes a = b + s c (bytes = 3 x 4 per element,
 *            STREAM's convention: two reads and one write, the
 *            write-allocate read not counted).
 *   flops    the CPU's float32 FMA peak (a register-only AVX-512 or AVX2
 *            FMA loop, when the CPU has one), and the host's sgemm
 *            (OpenBLAS) on a square 2000^3 product and on Krum's shape
 *            (n x n x d in one call), and ssyrk on Krum's shape (one
 *            call), each with 1 and 2 BLAS threads.
 *   defence  FedAvg (the fedavg plugin: a_begin, all updates in one
 *            a_accept_many as the server passes held rows; and
 *            "fedavg_streaming", one a_accept per update as it streams them;
 *            a_finish) and every defence through the plugin ABI as the
 *            server calls it (apply on the n x d matrix). seconds_best /
 *            seconds_median of reps; bytes_min = n d 4, the least any rule
 *            must read; gb_per_s = bytes_min / seconds_best; bw_fraction =
 *            gb_per_s over the best "read" bandwidth; x_fedavg = the
 *            ratio to FedAvg's best time. round_* adds what the server
 *            does next: FedAvg over the rows the defence kept (all of
 *            them for Multi-Krum, one for the others). Krum's rules also
 *            give syrk_gflop_per_s, the Gram product's n (n + 1) d flops
 *            over seconds_best, and peak_fraction, that over the 2-thread
 *            FMA peak.
 *
 * Every repetition starts cold: the defence gets a fresh copy of the
 * updates (defences rewrite rows), then a read of 2 x LLC of other memory
 * evicts them from the caches (n d 4 = 400 MB is not far above the LLC of
 * big server CPUs, which would otherwise keep part of it); neither is
 * timed.
 */
#define _GNU_SOURCE /* PATH_MAX, sysconf(_SC_LEVEL3_CACHE_SIZE) */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BENCH_X86 1
#endif

#include <cblas.h>

#include "fedmesh/fedmesh.h"

#include "core/core.h"
#include "plugin/registry.h"

/* OpenBLAS (linked through libfedmesh): which kernels it picked. */
char *openblas_get_corename(void);

#ifndef FM_PLUGIN_OUT_DIR
#define FM_PLUGIN_OUT_DIR "lib/fedmesh/plugins"
#endif

#define BW_THREADS 2
#define MAX_REPS 64

typedef struct bench {
	fmi_registry *reg;
	uint32_t n, reps;
	int blas_threads;
	const char *only;         /* NULL, or the rules to run ("a,b,c") */
	size_t d, stride;
	float *x, *work, *global, *root;
	fm_update *up;
	uint32_t *keep;
	uint64_t *ke;
	fmi_agg *fedavg;          /* the aggregator after each defence */
	double fedavg_best, fedavg_median; /* held rows (one accept call) */
	double stream_best;       /* one accept call per update */
	fm_update *avg_up;        /* [n] the rows FedAvg takes */
	int *avg_status;          /* [n] */
	float *avg_out;           /* [d] the new model (finish's out) */
	double bw;                /* best read bandwidth, GB/s */
	double peak;              /* FMA peak on BW_THREADS threads, GFLOP/s */
	size_t llc;               /* last-level cache, bytes */
	float *evict;             /* evict_n floats read between reps */
	size_t evict_n, evict_bytes; /* evict_bytes: the whole buffer */
} bench;

/* ---- small helpers -------------------------------------------------------- */

static volatile float bench_sink; /* keeps the read kernels' sums alive */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Sorts t[0..n) and returns the median (n >= 1). */
static double
median_of(double *t, uint32_t n)
{
	qsort(t, n, sizeof *t, cmp_double);
	return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static double
loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f != NULL) {
		if (fscanf(f, "%lf", &l) != 1) {
			l = -1;
		}
		fclose(f);
	}
	return l;
}

/* The CPU's model name (JSON-safe: quotes and backslashes dropped). */
static void
cpu_name(char *out, size_t cap)
{
	char line[256];
	snprintf(out, cap, "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f == NULL) {
		return;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *c = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && c != NULL) {
			size_t k = 0;
			for (c += 2; *c && *c != '\n' && k + 1 < cap; c++) {
				if (*c != '"' && *c != '\\') {
					out[k++] = *c;
				}
			}
			out[k] = 0;
			break;
		}
	}
	fclose(f);
}

/* ---- memory bandwidth ------------------------------------------------------ */

/*
 * The kernels. Full-width loads matter even for a memory-bound loop: on
 * the test machine one thread reads 8 GB/s with 16-byte loads, 10 with
 * 32-byte ones and 14 with 64-byte (cache-line) ones. So the widest the
 * CPU has is used (AVX-512, AVX2, else 4-float GNU vectors), with several
 * accumulators in registers: the loops are limited by memory, not by a
 * reduction chain or by what -O2 chooses to vectorize.
 */
typedef float bench_v4 __attribute__((vector_size(16)));

static bench_v4
v4_load(const float *x)
{
	bench_v4 v;
	memcpy(&v, x, sizeof v);
	return v;
}

/* Sum of x[0..m), m a multiple of 64, x 64-byte aligned. */
static float
sum_generic(const float *x, size_t m)
{
	bench_v4 s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
	for (size_t j = 0; j < m; j += 16) {
		s0 += v4_load(x + j);
		s1 += v4_load(x + j + 4);
		s2 += v4_load(x + j + 8);
		s3 += v4_load(x + j + 12);
	}
	s0 += s1 + s2 + s3;
	return s0[0] + s0[1] + s0[2] + s0[3];
}

/* a = b + 3 c over [0, m), m a multiple of 64. */
static void
triad_generic(float *a, const float *b, const float *c, size_t m)
{
	const bench_v4 three = { 3, 3, 3, 3 };
	for (size_t j = 0; j < m; j += 4) {
		bench_v4 v = v4_load(b + j) + three * v4_load(c + j);
		memcpy(a + j, &v, sizeof v);
	}
}

#ifdef BENCH_X86
__attribute__((target("avx512f"))) static float
sum_avx512(const float *x, size_t m)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	for (size_t j = 0; j < m; j += 64) {
		s0 = _mm512_add_ps(s0, _mm512_load_ps(x + j));
		s1 = _mm512_add_ps(s1, _mm512_load_ps(x + j + 16));
		s2 = _mm512_add_ps(s2, _mm512_load_ps(x + j + 32));
		s3 = _mm512_add_ps(s3, _mm512_load_ps(x + j + 48));
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1),
	    _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx512f"))) static void
triad_avx512(float *a, const float *b, const float *c, size_t m)
{
	const __m512 three = _mm512_set1_ps(3.0f);
	for (size_t j = 0; j < m; j += 16) {
		_mm512_store_ps(a + j, _mm512_add_ps(_mm512_load_ps(b + j),
		    _mm512_mul_ps(three, _mm512_load_ps(c + j))));
	}
}

__attribute__((target("avx2"))) static float
sum_avx2(const float *x, size_t m)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	for (size_t j = 0; j < m; j += 32) {
		s0 = _mm256_add_ps(s0, _mm256_load_ps(x + j));
		s1 = _mm256_add_ps(s1, _mm256_load_ps(x + j + 8));
		s2 = _mm256_add_ps(s2, _mm256_load_ps(x + j + 16));
		s3 = _mm256_add_ps(s3, _mm256_load_ps(x + j + 24));
	}
	float o[8];
	_mm256_storeu_ps(o, _mm256_add_ps(_mm256_add_ps(s0, s1),
	    _mm256_add_ps(s2, s3)));
	return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}

__attribute__((target("avx2"))) static void
triad_avx2(float *a, const float *b, const float *c, size_t m)
{
	const __m256 three = _mm256_set1_ps(3.0f);
	for (size_t j = 0; j < m; j += 8) {
		_mm256_store_ps(a + j, _mm256_add_ps(_mm256_load_ps(b + j),
		    _mm256_mul_ps(three, _mm256_load_ps(c + j))));
	}
}
#endif

/* The widest vectors this CPU has: 512, 256 or 128 (bits). */
static int
bench_isa(void)
{
#ifdef BENCH_X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f")) {
		return 512;
	}
	if (__builtin_cpu_supports("avx2")) {
		return 256;
	}
#endif
	return 128;
}

static const char *
isa_name(int isa)
{
	return isa == 512 ? "avx512" : isa == 256 ? "avx2" : "vec128";
}

static int bench_width = 128;

static float
bw_sum(const float *x, size_t m)
{
#ifdef BENCH_X86
	if (bench_width == 512) {
		return sum_avx512(x, m);
	}
	if (bench_width == 256) {
		return sum_avx2(x, m);
	}
#endif
	return sum_generic(x, m);
}

static void
bw_triad(float *a, const float *b, const float *c, size_t m)
{
#ifdef BENCH_X86
	if (bench_width == 512) {
		triad_avx512(a, b, c, m);
		return;
	}
	if (bench_width == 256) {
		triad_avx2(a, b, c, m);
		return;
	}
#endif
	triad_generic(a, b, c, m);
}

enum { BW_READ, BW_TRIAD };

typedef struct bw_job {
	int kernel;
	float *a;
	const float *b, *c;
	size_t lo, hi;
	float sum;
} bw_job;

static void *
bw_run(void *arg)
{
	bw_job *j = arg;
	if (j->kernel == BW_READ) {
		j->sum = bw_sum(j->a + j->lo, j->hi - j->lo);
	} else {
		bw_triad(j->a + j->lo, j->b + j->lo, j->c + j->lo,
		    j->hi - j->lo);
	}
	return NULL;
}

/* One pass of kernel over [0, m) on t threads (contiguous parts); seconds. */
static double
bw_pass(int kernel, float *a, const float *b, const float *c, size_t m,
    uint32_t t)
{
	bw_job job[BW_THREADS];
	pthread_t tid[BW_THREADS];
	int started[BW_THREADS] = { 0 };
	for (uint32_t k = 0; k < t; k++) { /* parts: multiples of 64 floats */
		job[k] = (bw_job){ kernel, a, b, c, m / 64 * k / t * 64,
			m / 64 * (k + 1) / t * 64, 0 };
	}
	double t0 = fmi_now();
	for (uint32_t k = 1; k < t; k++) {
		started[k] = pthread_create(&tid[k], NULL, bw_run, &job[k]) == 0;
	}
	bw_run(&job[0]);
	for (uint32_t k = 1; k < t; k++) {
		if (started[k]) {
			pthread_join(tid[k], NULL);
		} else {
			bw_run(&job[k]);
		}
	}
	t0 = fmi_now() - t0;
	float s = 0;
	for (uint32_t k = 0; k < t; k++) {
		s += job[k].sum;
	}
	bench_sink = s;
	return t0;
}

/* The membw lines; b->bw = the best read bandwidth. Buffers of
 * max(4 LLC, 256 MiB) each; the first stays as the eviction buffer. */
static int
bench_membw(bench *b)
{
	size_t bytes = 4 * b->llc > ((size_t)256 << 20) ? 4 * b->llc :
	    (size_t)256 << 20;
	bytes = bytes / 4096 * 4096;
	size_t m = bytes / sizeof(float);
	float *a = aligned_alloc(4096, bytes), *x = aligned_alloc(4096, bytes);
	float *y = aligned_alloc(4096, bytes);
	if (a == NULL || x == NULL || y == NULL) {
		free(a);
		free(x);
		free(y);
		return FM_ENOMEM;
	}
	for (size_t j = 0; j < m; j++) { /* every page touched */
		a[j] = 1e-6f;
		x[j] = 1.0f;
		y[j] = 2.0f;
	}
	const uint32_t reps = 10;
	bench_width = bench_isa();
	for (int kernel = BW_READ; kernel <= BW_TRIAD; kernel++) {
		double per = kernel == BW_READ ? (double)bytes :
		    3.0 * (double)bytes;
		for (uint32_t t = 1; t <= BW_THREADS; t++) {
			double s[16], best = INFINITY;
			bw_pass(kernel, a, x, y, m, t); /* warm-up */
			for (uint32_t r = 0; r < reps; r++) {
				s[r] = bw_pass(kernel, a, x, y, m, t);
				best = s[r] < best ? s[r] : best;
			}
			double med = median_of(s, reps);
			if (kernel == BW_READ && per / best / 1e9 > b->bw) {
				b->bw = per / best / 1e9;
			}
			printf("{\"bench\":\"membw\",\"kernel\":\"%s\","
			    "\"isa\":\"%s\",\"threads\":%u,"
			    "\"buffer_bytes\":%zu,"
			    "\"bytes_per_pass\":%.0f,\"reps\":%u,"
			    "\"seconds_best\":%.5f,\"seconds_median\":%.5f,"
			    "\"gb_per_s\":%.2f,\"gb_per_s_median\":%.2f}\n",
			    kernel == BW_READ ? "read" : "triad",
			    isa_name(bench_width), t, bytes,
			    per, reps, best, med, per / best / 1e9,
			    per / med / 1e9);
			fflush(stdout);
		}
	}
	free(x);
	free(y);
	b->evict = a;
	b->evict_bytes = bytes;
	b->evict_n = 2 * b->llc / sizeof(float) / 64 * 64;
	b->evict_n = b->evict_n < m ? b->evict_n : m;
	return FM_OK;
}

/* Reads 2 x LLC of memory that no defence touches. */
static void
bench_evict(bench *b)
{
	bench_sink = bw_sum(b->evict, b->evict_n);
}

/* ---- flop rates ------------------------------------------------------------ */

#ifdef BENCH_X86
/* Register-only FMA loops: 12 independent accumulators in named variables
 * (an array of them may live in memory at -O2), enough to cover the FMA
 * latency on two ports; flops = it x 12 x 2 x lanes. */
#define FMA12(F)                                                             \
	do {                                                                 \
		v0 = F(v0, m, c); v1 = F(v1, m, c); v2 = F(v2, m, c);        \
		v3 = F(v3, m, c); v4 = F(v4, m, c); v5 = F(v5, m, c);        \
		v6 = F(v6, m, c); v7 = F(v7, m, c); v8 = F(v8, m, c);        \
		v9 = F(v9, m, c); v10 = F(v10, m, c); v11 = F(v11, m, c);    \
	} while (0)

__attribute__((target("avx512f"))) static float
fma_avx512(long it)
{
	__m512 m = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-4f);
	__m512 v0 = _mm512_set1_ps(0.1f), v1 = _mm512_set1_ps(0.2f);
	__m512 v2 = _mm512_set1_ps(0.3f), v3 = _mm512_set1_ps(0.4f);
	__m512 v4 = _mm512_set1_ps(0.5f), v5 = _mm512_set1_ps(0.6f);
	__m512 v6 = _mm512_set1_ps(0.7f), v7 = _mm512_set1_ps(0.8f);
	__m512 v8 = _mm512_set1_ps(0.9f), v9 = _mm512_set1_ps(1.1f);
	__m512 v10 = _mm512_set1_ps(1.2f), v11 = _mm512_set1_ps(1.3f);
	for (long i = 0; i < it; i++) {
		FMA12(_mm512_fmadd_ps);
	}
	v0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(v0, v1),
	    _mm512_add_ps(v2, v3)), _mm512_add_ps(_mm512_add_ps(v4, v5),
	    _mm512_add_ps(v6, v7)));
	v0 = _mm512_add_ps(v0, _mm512_add_ps(_mm512_add_ps(v8, v9),
	    _mm512_add_ps(v10, v11)));
	return _mm512_reduce_add_ps(v0);
}

__attribute__((target("avx2,fma"))) static float
fma_avx2(long it)
{
	__m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-4f);
	__m256 v0 = _mm256_set1_ps(0.1f), v1 = _mm256_set1_ps(0.2f);
	__m256 v2 = _mm256_set1_ps(0.3f), v3 = _mm256_set1_ps(0.4f);
	__m256 v4 = _mm256_set1_ps(0.5f), v5 = _mm256_set1_ps(0.6f);
	__m256 v6 = _mm256_set1_ps(0.7f), v7 = _mm256_set1_ps(0.8f);
	__m256 v8 = _mm256_set1_ps(0.9f), v9 = _mm256_set1_ps(1.1f);
	__m256 v10 = _mm256_set1_ps(1.2f), v11 = _mm256_set1_ps(1.3f);
	for (long i = 0; i < it; i++) {
		FMA12(_mm256_fmadd_ps);
	}
	v0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(v0, v1),
	    _mm256_add_ps(v2, v3)), _mm256_add_ps(_mm256_add_ps(v4, v5),
	    _mm256_add_ps(v6, v7)));
	v0 = _mm256_add_ps(v0, _mm256_add_ps(_mm256_add_ps(v8, v9),
	    _mm256_add_ps(v10, v11)));
	float o[8];
	_mm256_storeu_ps(o, v0);
	return o[0] + o[7];
}

typedef struct fma_job {
	int wide;
	long it;
	float sum;
} fma_job;

static void *
fma_run(void *arg)
{
	fma_job *j = arg;
	j->sum = j->wide ? fma_avx512(j->it) : fma_avx2(j->it);
	return NULL;
}

/* The FMA peak in GFLOP/s on t threads (best of 5), or 0 without FMA. */
static double
fma_peak(uint32_t t, const char **isa)
{
	__builtin_cpu_init();
	int wide = __builtin_cpu_supports("avx512f");
	if (!wide && !(__builtin_cpu_supports("avx2") &&
	    __builtin_cpu_supports("fma"))) {
		*isa = "none";
		return 0;
	}
	*isa = wide ? "avx512" : "avx2";
	const long it = 50000000;
	double best = INFINITY;
	for (int r = 0; r < 5; r++) {
		fma_job job[BW_THREADS];
		pthread_t tid[BW_THREADS];
		int started[BW_THREADS] = { 0 };
		double t0 = fmi_now();
		for (uint32_t k = 0; k < t; k++) {
			job[k] = (fma_job){ wide, it, 0 };
			if (k > 0) {
				started[k] = pthread_create(&tid[k], NULL,
				    fma_run, &job[k]) == 0;
			}
		}
		fma_run(&job[0]);
		for (uint32_t k = 1; k < t; k++) {
			if (started[k]) {
				pthread_join(tid[k], NULL);
			} else {
				fma_run(&job[k]);
			}
		}
		t0 = fmi_now() - t0;
		best = t0 < best ? t0 : best;
		bench_sink = job[0].sum;
	}
	return (double)t * (double)it * 12 * 2 * (wide ? 16 : 8) / best / 1e9;
}
#else
static double
fma_peak(uint32_t t, const char **isa)
{
	(void)t;
	*isa = "none";
	return 0;
}
#endif

/* Best seconds of host sgemm C[m x n] = A[m x k] op(B) over reps. */
static double
gemm_time(int trans_b, size_t m, size_t n, size_t k, const float *a,
    size_t lda, const float *bm, size_t ldb, float *c, uint32_t reps)
{
	double best = INFINITY;
	for (uint32_t r = 0; r < reps; r++) {
		double t = fmi_now();
		fmi_gemm(0, trans_b, m, n, k, 1.0f, a, lda, bm, ldb, 0.0f, c,
		    n);
		t = fmi_now() - t;
		best = t < best ? t : best;
	}
	return best;
}

static void
bench_flops(bench *b)
{
	for (uint32_t t = 1; t <= BW_THREADS; t++) {
		const char *isa;
		double p = fma_peak(t, &isa);
		b->peak = p;
		printf("{\"bench\":\"flops\",\"kernel\":\"fma_peak\","
		    "\"isa\":\"%s\",\"threads\":%u,\"gflop_per_s\":%.1f}\n",
		    isa, t, p);
		fflush(stdout);
	}
	/* square: 2000^3 from the update buffers (they are large enough) */
	const size_t q = 2000;
	float *c = malloc((q > b->n ? q * q : (size_t)b->n * b->n) *
	    sizeof *c);
	if (c == NULL) {
		return;
	}
	int saved = fmi_blas_get_threads();
	for (int t = 1; t <= BW_THREADS; t++) {
		fmi_blas_set_threads(t);
		if ((size_t)b->n * b->stride >= 2 * q * q) {
			double s = gemm_time(0, q, q, q, b->x, q,
			    b->x + q * q, q, c, 5);
			printf("{\"bench\":\"flops\",\"kernel\":\"sgemm\","
			    "\"shape\":\"%zux%zux%zu NN\",\"blas_threads\":%d,"
			    "\"seconds\":%.4f,\"gflop_per_s\":%.1f}\n", q, q,
			    q, t, s, 2.0 * q * q * q / s / 1e9);
		}
		double s = gemm_time(1, b->n, b->n, b->d, b->x, b->stride,
		    b->x, b->stride, c, 3);
		printf("{\"bench\":\"flops\",\"kernel\":\"sgemm\","
		    "\"shape\":\"%ux%ux%zu NT (Krum's Gram, one call)\","
		    "\"blas_threads\":%d,\"seconds\":%.4f,"
		    "\"gflop_per_s\":%.1f}\n", b->n, b->n, b->d, t, s,
		    2.0 * b->n * b->n * (double)b->d / s / 1e9);
		s = INFINITY;
		for (int r = 0; r < 3; r++) {
			double t0 = fmi_now();
			cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans,
			    (int)b->n, (int)b->d, 1.0f, b->x, (int)b->stride,
			    0.0f, c, (int)b->n);
			t0 = fmi_now() - t0;
			s = t0 < s ? t0 : s;
		}
		printf("{\"bench\":\"flops\",\"kernel\":\"ssyrk\","
		    "\"shape\":\"%ux%zu (Krum's Gram, one call)\","
		    "\"blas_threads\":%d,\"seconds\":%.4f,"
		    "\"gflop_per_s\":%.1f}\n", b->n, b->d, t, s,
		    (double)b->n * (b->n + 1) * (double)b->d / s / 1e9);
		fflush(stdout);
	}
	fmi_blas_set_threads(saved);
	free(c);
}

/* ---- defences ------------------------------------------------------------- */

static int
bench_load(bench *b, const char *file)
{
	const char *dir = getenv("FEDMESH_BUILTIN_PLUGIN_DIR");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s",
	    dir != NULL ? dir : FM_PLUGIN_OUT_DIR, file);
	fm_error e;
	int rv = fmi_registry_load_file(b->reg, path, &e);
	if (rv != FM_OK) {
		fprintf(stderr, "defence_bench: %s\n", e.msg);
	}
	return rv;
}

static int
bench_alloc(bench *b)
{
	size_t bytes = (size_t)b->n * b->stride * sizeof(float);
	b->x = aligned_alloc(64, bytes);
	b->work = aligned_alloc(64, bytes);
	b->global = calloc(b->d, sizeof(float));
	b->root = calloc(b->d, sizeof(float));
	b->up = calloc(b->n, sizeof *b->up);
	b->keep = calloc(b->n, sizeof *b->keep);
	b->avg_up = calloc(b->n, sizeof *b->avg_up);
	b->avg_status = calloc(b->n, sizeof *b->avg_status);
	b->avg_out = calloc(b->d, sizeof(float));
	b->ke = calloc(b->n, sizeof *b->ke);
	if (!b->x || !b->work || !b->global || !b->root || !b->up ||
	    !b->keep || !b->ke || !b->avg_up || !b->avg_status ||
	    !b->avg_out) {
		return FM_ENOMEM;
	}
	fm_rng g;
	fmi_rng_seed(&g, 1, 0);
	for (uint32_t i = 0; i < b->n; i++) {
		float *row = b->x + (size_t)i * b->stride;
		for (size_t j = 0; j < b->d; j++) {
			row[j] = (float)(0.01 * fmi_rng_normal(&g)) + 0.001f;
		}
		for (size_t j = b->d; j < b->stride; j++) {
			row[j] = 0;
		}
		b->up[i] = (fm_update){ .struct_size = sizeof(fm_update),
			.client = (int32_t)i + 1, .round = 1,
			.dim = b->d, .num_examples = 100 + i, .loss = 0.5 };
	}
	memcpy(b->work, b->x, bytes); /* pages touched */
	for (size_t j = 0; j < b->d; j++) {
		b->root[j] = 0.001f;
	}
	return FM_OK;
}

/* The node's worker threads, as host->parallel_for gives them to the
 * plugins (which start none): [0, n) in BENCH_POOL contiguous chunks,
 * each on its own pthread, the first on the caller's. */
#define BENCH_POOL 2

/* host->parallel_for runs on BENCH_POOL threads for instances on this
 * link, as on a server with that many workers. */
static const fmi_node_link bench_link = { .threads = BENCH_POOL };

/* FedAvg over rows keep[0..nkeep) of m (examples ke), through the plugin:
 * with many, all rows in one accept call, as the server passes held rows
 * (after a defence) and fm.aggregate does; without, one accept call per
 * row, as the server streams updates when nothing holds them. */
static int
bench_avg(bench *b, const float *m, const uint32_t *keep,
    const uint64_t *ke, uint32_t nkeep, uint32_t round, int many)
{
	int32_t ids[1] = { 1 };
	fm_round r = { .struct_size = sizeof(fm_round), .round = round,
		.nclients = 1, .clients = ids, .global = b->global,
		.dim = b->d, .lr_scale = 1.0 };
	fmi_agg *a = b->fedavg;
	int rv = fmi_agg_begin(a, &r);
	for (uint32_t k = 0; rv == FM_OK && k < nkeep; k++) {
		uint32_t i = keep != NULL ? keep[k] : k;
		b->avg_up[k] = b->up[i];
		b->avg_up[k].delta = m + (size_t)i * b->stride;
		b->avg_up[k].num_examples = ke != NULL ? ke[k] :
		    b->up[i].num_examples;
		if (!many) {
			int st = FM_EINTERNAL;
			rv = fmi_agg_accept(a, &b->avg_up[k], 1, &st);
			rv = rv != FM_OK ? rv : st;
		}
	}
	if (rv == FM_OK && many) {
		rv = fmi_agg_accept(a, b->avg_up, nkeep, b->avg_status);
		for (uint32_t k = 0; rv == FM_OK && k < nkeep; k++) {
			rv = b->avg_status[k];
		}
	}
	if (rv != FM_OK) {
		return rv;
	}
	/* the host's pipeline buffer holds a copy of global on entry */
	memcpy(b->avg_out, b->global, b->d * sizeof(float));
	rv = fmi_agg_finish(a, b->global, b->avg_out, b->d);
	if (rv == FM_OK) {
		memcpy(b->global, b->avg_out, b->d * sizeof(float));
	}
	return rv;
}

static double
bench_gb(const bench *b)
{
	return (double)b->n * (double)b->d * sizeof(float) / 1e9;
}

/* FedAvg of all n rows, reps times: best and median seconds. */
static int
bench_fedavg_time(bench *b, int many, double *best, double *med)
{
	double s[MAX_REPS];
	int rv = FM_OK;
	uint32_t reps = 0;
	while (reps < b->reps && rv == FM_OK) {
		bench_evict(b);
		double t = fmi_now();
		rv = bench_avg(b, b->x, NULL, NULL, b->n, reps + 1, many);
		s[reps++] = fmi_now() - t;
	}
	*best = INFINITY;
	for (uint32_t rep = 0; rep < reps; rep++) {
		*best = s[rep] < *best ? s[rep] : *best;
	}
	*med = median_of(s, reps);
	return rv;
}

/* "fedavg" (held rows, one a_accept_many: the baseline of x_fedavg) and
 * "fedavg_streaming" (one a_accept per update). */
static void
bench_fedavg(bench *b)
{
	double best[2], med[2];
	int rv[2];
	rv[0] = bench_fedavg_time(b, 1, &best[0], &med[0]);
	rv[1] = bench_fedavg_time(b, 0, &best[1], &med[1]);
	b->fedavg_best = best[0];
	b->fedavg_median = med[0];
	b->stream_best = best[1];
	for (int i = 0; i < 2; i++) {
		double gb = bench_gb(b);
		printf("{\"bench\":\"defence\",\"name\":\"%s\",\"params\":"
		    "\"\",\"n\":%u,\"d\":%zu,\"reps\":%u,\"blas_threads\":%d,"
		    "\"seconds_best\":%.4f,\"seconds_median\":%.4f,"
		    "\"bytes_min\":%.0f,\"gb_per_s\":%.2f,\"bw_fraction\":%.3f,"
		    "\"x_fedavg\":%.2f,\"x_fedavg_median\":%.2f,"
		    "\"x_fedavg_streaming\":%.2f,"
		    "\"round_seconds_best\":%.4f,\"round_x_fedavg\":%.2f,"
		    "\"kept\":%u,\"ok\":%s}\n",
		    i == 0 ? "fedavg" : "fedavg_streaming", b->n, b->d, b->reps,
		    b->blas_threads, best[i], med[i], gb * 1e9, gb / best[i],
		    gb / best[i] / b->bw, best[i] / b->fedavg_best,
		    med[i] / b->fedavg_median, best[i] / b->stream_best,
		    best[i], best[i] / b->fedavg_best, b->n,
		    rv[i] == FM_OK ? "true" : "false");
	}
	fflush(stdout);
}

/* Whether name is in the comma-separated list (NULL: everything). */
static int
bench_wanted(const char *only, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = only; p != NULL; p = strchr(p, ',')) {
		p += *p == ',';
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0)) {
			return 1;
		}
	}
	return only == NULL;
}

static void
bench_defence(bench *b, const char *name, const fmi_param_in *in, size_t nin,
    const char *params, int gram)
{
	if (!bench_wanted(b->only, name)) {
		return;
	}
	const fmi_component *c = fmi_registry_find(b->reg, FM_KIND_DEFENCE,
	    name);
	fm_value v[16];
	fmi_def *d = NULL;
	fm_error e;
	if (c == NULL || fmi_params_resolve(c, in, nin, v, &e) != FM_OK ||
	    fmi_def_open(&d, c,
	    &(fmi_open_args){ .params = v, .dim = b->d, .role = FM_ROLE_SERVER,
	    .node_id = FM_NODE_SERVER, .seed = 1, .flags = FM_INST_ROOT_DATA,
	    .link = &bench_link },
	    &e) != FM_OK) {
		fprintf(stderr, "defence_bench: %s: cannot open\n", name);
		return;
	}
	double s[MAX_REPS], sr[MAX_REPS];
	uint32_t kept = 0, reps = 0;
	int rv = FM_OK;
	for (uint32_t rep = 0; rep < b->reps && rv == FM_OK; rep++) {
		memcpy(b->work, b->x, (size_t)b->n * b->stride * sizeof(float));
		for (uint32_t i = 0; i < b->n; i++) {
			b->up[i].delta = b->work + (size_t)i * b->stride;
		}
		fm_rows r = { .struct_size = sizeof r,
			.round = rep + 1, .n = b->n, .dim = b->d,
			.deltas = b->work, .stride = b->stride,
			.updates = b->up,
			.global = b->global, .server_delta = b->root,
			.keep = b->keep, .keep_examples = b->ke };
		bench_evict(b);
		double t = fmi_now();
		rv = fmi_def_apply(d, &r);
		s[rep] = fmi_now() - t;
		if (rv == FM_OK) {
			rv = bench_avg(b, b->work, b->keep, b->ke, r.nkeep,
			    rep + 1, 1);
		}
		sr[rep] = fmi_now() - t;
		kept = r.nkeep;
		reps = rep + 1;
	}
	double best = INFINITY, rbest = INFINITY;
	for (uint32_t rep = 0; rep < reps; rep++) {
		best = s[rep] < best ? s[rep] : best;
		rbest = sr[rep] < rbest ? sr[rep] : rbest;
	}
	double med = median_of(s, reps), gb = bench_gb(b);
	printf("{\"bench\":\"defence\",\"name\":\"%s\",\"params\":\"%s\","
	    "\"n\":%u,\"d\":%zu,\"reps\":%u,\"blas_threads\":%d,"
	    "\"seconds_best\":%.4f,\"seconds_median\":%.4f,"
	    "\"bytes_min\":%.0f,\"gb_per_s\":%.2f,\"bw_fraction\":%.3f,"
	    "\"x_fedavg\":%.2f,\"x_fedavg_median\":%.2f,"
	    "\"x_fedavg_streaming\":%.2f,"
	    "\"round_seconds_best\":%.4f,\"round_x_fedavg\":%.2f,",
	    name, params, b->n, b->d, reps, b->blas_threads, best, med,
	    gb * 1e9, gb / best, gb / best / b->bw, best / b->fedavg_best,
	    med / b->fedavg_median, best / b->stream_best, rbest,
	    rbest / b->fedavg_best);
	if (gram) { /* the Gram product's flops: n (n + 1) d as an ssyrk */
		double gf = (double)b->n * (b->n + 1) * (double)b->d / best /
		    1e9;
		printf("\"syrk_gflop_per_s\":%.1f,\"peak_fraction\":%.3f,",
		    gf, b->peak > 0 ? gf / b->peak : 0);
	}
	printf("\"kept\":%u,\"ok\":%s}\n", kept, rv == FM_OK ? "true" :
	    "false");
	fflush(stdout);
	fmi_def_close(d);
}

static void
bench_all(bench *b)
{
	const fmi_param_in f10 = { "f", 0, 10, NULL };
	const fmi_param_in one = { "threads", 0, 1, NULL };
	const fmi_param_in f10one[2] = { f10, one };
	bench_defence(b, "krum", &f10, 1, "f=10", 1);
	bench_defence(b, "multikrum", &f10, 1, "f=10", 1);
	bench_defence(b, "multikrum", f10one, 2, "f=10 threads=1", 1);
	bench_defence(b, "bulyan", &f10, b->n >= 43 ? 1 : 0,
	    b->n >= 43 ? "f=10" : "f=1", 0);
	bench_defence(b, "median", &one, 1, "threads=1", 0);
	bench_defence(b, "median", NULL, 0, "", 0);
	bench_defence(b, "trimmed_mean", NULL, 0, "", 0);
	const fmi_param_in ftol0 = { "ftol", 0, 0, NULL };
	bench_defence(b, "geomedian", NULL, 0, "", 0);
	bench_defence(b, "geomedian", &ftol0, 1, "ftol=0 (10 iterations)", 0);
	bench_defence(b, "clipping", NULL, 0, "", 0);
	bench_defence(b, "centered_clipping", NULL, 0, "", 0);
	bench_defence(b, "fltrust", NULL, 0, "", 0);
}

int
main(int argc, char **argv)
{
	bench b = { .n = 100, .reps = 7, .d = 1000000, .blas_threads = 1 };
	if (argc > 1) {
		b.n = (uint32_t)strtoul(argv[1], NULL, 10);
	}
	if (argc > 2) {
		b.d = (size_t)strtoull(argv[2], NULL, 10);
	}
	if (argc > 3) {
		b.reps = (uint32_t)strtoul(argv[3], NULL, 10);
	}
	if (argc > 4) {
		b.blas_threads = atoi(argv[4]);
	}
	if (argc > 5) {
		b.only = argv[5];
	}
	b.stride = (b.d + 15) / 16 * 16;
	long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
	b.llc = llc > 0 ? (size_t)llc : (size_t)32 << 20;
	const char *files[] = { "fedavg.so", "krum.so", "coordinate.so",
		"geomedian.so", "clipping.so", "fltrust.so" };
	if (b.n < 1 || b.d < 1 || b.reps < 1 || b.reps > MAX_REPS ||
	    b.blas_threads < 1 || argc > 6) {
		fprintf(stderr, "usage: fm_defence_bench [n] [d] [reps (1-%d)] "
		    "[blas_threads] [rule,rule,...]\n", MAX_REPS);
		return 2;
	}
	if (fmi_registry_new(&b.reg) != FM_OK || bench_alloc(&b) != FM_OK) {
		fprintf(stderr, "defence_bench: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		if (bench_load(&b, files[i]) != FM_OK) {
			return 1;
		}
	}
	char cpu[128];
	cpu_name(cpu, sizeof cpu);
	printf("{\"bench\":\"env\",\"cpu\":\"%s\",\"online_cpus\":%ld,"
	    "\"llc_bytes\":%zu,\"blas_core\":\"%s\",\"blas_threads\":%d,"
	    "\"loadavg_start\":%.2f}\n", cpu, sysconf(_SC_NPROCESSORS_ONLN),
	    b.llc, openblas_get_corename(), b.blas_threads, loadavg());
	fflush(stdout);
	if (bench_membw(&b) != FM_OK) {
		fprintf(stderr, "defence_bench: out of memory\n");
		return 1;
	}
	bench_flops(&b);
	fmi_blas_set_threads(b.blas_threads);
	const fmi_component *fa = fmi_registry_find(b.reg, FM_KIND_AGGREGATOR,
	    "fedavg");
	fm_value v[1];
	if (fa == NULL || fmi_params_resolve(fa, NULL, 0, v, NULL) != FM_OK ||
	    fmi_agg_open(&b.fedavg, fa,
	    &(fmi_open_args){ .params = v, .dim = b.d, .role = FM_ROLE_SERVER,
	    .node_id = FM_NODE_SERVER, .seed = 1, .link = &bench_link },
	    NULL) != FM_OK) {
		fprintf(stderr, "defence_bench: cannot open fedavg\n");
		return 1;
	}
	bench_fedavg(&b);
	bench_all(&b);
	/* the bandwidth again (the best of 5 two-thread reads): how much it
	 * drifted while the rules ran (other tenants of the machine) */
	double end = INFINITY;
	for (int r = 0; r < 5; r++) {
		double t = bw_pass(BW_READ, b.evict, NULL, NULL,
		    b.evict_bytes / sizeof(float), BW_THREADS);
		end = t < end ? t : end;
	}
	printf("{\"bench\":\"end\",\"read_gb_per_s_2_threads\":%.2f,"
	    "\"loadavg_end\":%.2f}\n", (double)b.evict_bytes / end / 1e9,
	    loadavg());
	fmi_agg_close(b.fedavg);
	fmi_registry_free(b.reg);
	free(b.evict);
	free(b.x);
	free(b.work);
	free(b.global);
	free(b.root);
	free(b.up);
	free(b.avg_up);
	free(b.avg_status);
	free(b.avg_out);
	free(b.keep);
	free(b.ke);
	return 0;
}
