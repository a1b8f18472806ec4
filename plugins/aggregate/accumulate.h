/* SPDX-License-Identifier: MIT */
/* accumulate.h: the example-weighted sum of client deltas, shared by the
 * aggregator plugins (header only: each plugin stays one self-contained .so). */
#ifndef FM_PLUGINS_ACCUMULATE_H
#define FM_PLUGINS_ACCUMULATE_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fedmesh/plugin.h"

#if (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FM_ACC_X86 1
#endif

/*
 * The sum. acc[j] = fma(w[k], x[k][j], acc[j]) for k = 0..n-1 in order:
 * one correctly rounded fused multiply-add per update and coordinate, so
 * the result is the same bits whichever kernel runs it (AVX-512, AVX2 or
 * plain C), however the coordinates are split between threads and however
 * many updates are summed per pass. Summing up to FM_ACC_GROUP updates per
 * pass reads and writes the accumulator once for all of them: the pass is
 * then bound by reading the updates, which is all a sum must do.
 */
#define FM_ACC_GROUP 16

static void
fm_acc_sum_c(float *acc, size_t lo, size_t hi, uint32_t n, const float *w,
    const float *const *x)
{
	for (size_t j = lo; j < hi; j++) {
		float a = acc[j];
		for (uint32_t k = 0; k < n; k++) {
			a = fmaf(w[k], x[k][j], a);
		}
		acc[j] = a;
	}
}

#ifdef FM_ACC_X86
__attribute__((target("avx512f"))) static void
fm_acc_sum_avx512(float *acc, size_t lo, size_t hi, uint32_t n,
    const float *w, const float *const *x)
{
	size_t j = lo;
	for (; j + 64 <= hi; j += 64) {
		__m512 a0 = _mm512_loadu_ps(acc + j);
		__m512 a1 = _mm512_loadu_ps(acc + j + 16);
		__m512 a2 = _mm512_loadu_ps(acc + j + 32);
		__m512 a3 = _mm512_loadu_ps(acc + j + 48);
		for (uint32_t k = 0; k < n; k++) {
			const float *xk = x[k] + j;
			__m512 wk = _mm512_set1_ps(w[k]);
			a0 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(xk), a0);
			a1 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(xk + 16), a1);
			a2 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(xk + 32), a2);
			a3 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(xk + 48), a3);
		}
		_mm512_storeu_ps(acc + j, a0);
		_mm512_storeu_ps(acc + j + 16, a1);
		_mm512_storeu_ps(acc + j + 32, a2);
		_mm512_storeu_ps(acc + j + 48, a3);
	}
	for (; j < hi; j += 16) {
		__mmask16 m = hi - j >= 16 ? (__mmask16)0xffff
		                           : (__mmask16)((1u << (hi - j)) - 1);
		__m512 a = _mm512_maskz_loadu_ps(m, acc + j);
		for (uint32_t k = 0; k < n; k++) {
			a = _mm512_fmadd_ps(_mm512_set1_ps(w[k]),
			    _mm512_maskz_loadu_ps(m, x[k] + j), a);
		}
		_mm512_mask_storeu_ps(acc + j, m, a);
	}
}

__attribute__((target("avx2,fma"))) static void
fm_acc_sum_avx2(float *acc, size_t lo, size_t hi, uint32_t n,
    const float *w, const float *const *x)
{
	size_t j = lo;
	for (; j + 32 <= hi; j += 32) {
		__m256 a0 = _mm256_loadu_ps(acc + j);
		__m256 a1 = _mm256_loadu_ps(acc + j + 8);
		__m256 a2 = _mm256_loadu_ps(acc + j + 16);
		__m256 a3 = _mm256_loadu_ps(acc + j + 24);
		for (uint32_t k = 0; k < n; k++) {
			const float *xk = x[k] + j;
			__m256 wk = _mm256_set1_ps(w[k]);
			a0 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xk), a0);
			a1 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xk + 8), a1);
			a2 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xk + 16), a2);
			a3 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(xk + 24), a3);
		}
		_mm256_storeu_ps(acc + j, a0);
		_mm256_storeu_ps(acc + j + 8, a1);
		_mm256_storeu_ps(acc + j + 16, a2);
		_mm256_storeu_ps(acc + j + 24, a3);
	}
	for (; j < hi; j++) {
		__m128 a = _mm_set_ss(acc[j]);
		for (uint32_t k = 0; k < n; k++) {
			a = _mm_fmadd_ss(_mm_set_ss(w[k]), _mm_set_ss(x[k][j]), a);
		}
		acc[j] = _mm_cvtss_f32(a);
	}
}
#endif

typedef void (*fm_acc_kernel)(float *, size_t, size_t, uint32_t,
    const float *, const float *const *);

/* The widest kernel this CPU runs (every kernel gives the same bits; a
 * test that includes this header can call each one directly). */
static fm_acc_kernel
fm_acc_pick(void)
{
#ifdef FM_ACC_X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f")) {
		return fm_acc_sum_avx512;
	}
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
		return fm_acc_sum_avx2;
	}
#endif
	return fm_acc_sum_c;
}

/*
 * Summing is a memory-bound pass that one core cannot drive at the
 * machine's memory bandwidth. Large sums are split into chunks of
 * FM_ACC_CHUNK coordinates run by host->parallel_for on the node's worker
 * threads (plugins start no threads of their own). Each coordinate is
 * summed by one kernel call in the fixed order k = 0..n-1, so the bits do
 * not depend on the split or the thread count.
 */
typedef struct fm_acc {
	fm_acc_kernel kernel;
	const fm_host_api *host;
	const fm_instance *inst;
	uint32_t threads; /* host->limits' threads (1 without it) */
} fm_acc;

#define FM_ACC_SPLIT_MIN 65536 /* floats; below, one thread is faster */
#define FM_ACC_CHUNK 8192      /* floats per parallel_for item (64 | it) */

/* One parallel_for job: the kernel on acc[lo, hi) chunk by chunk. */
typedef struct fm_acc_job {
	fm_acc_kernel kernel;
	float *acc;
	size_t dim;
	uint32_t n;
	const float *w;
	const float *const *x;
} fm_acc_job;

static void
fm_acc_task(void *ud, size_t begin, size_t end)
{
	const fm_acc_job *j = ud;
	size_t lo = begin * FM_ACC_CHUNK;
	size_t hi = end * FM_ACC_CHUNK;
	j->kernel(j->acc, lo, hi < j->dim ? hi : j->dim, j->n, j->w, j->x);
}

/* Picks the kernel and asks the host how many worker threads it gives
 * (host->limits); without parallel_for everything runs on the caller's
 * thread. */
static inline void
fm_acc_start(fm_acc *p, const fm_instance *inst)
{
	p->kernel = fm_acc_pick();
	p->host = inst->host;
	p->inst = inst;
	p->threads = 1;
	if (FM_HOST_HAS(inst->host, limits) &&
	    FM_HOST_HAS(inst->host, parallel_for)) {
		fm_limits lim;
		memset(&lim, 0, sizeof lim);
		lim.struct_size = (uint32_t)sizeof lim;
		inst->host->limits(inst, &lim);
		p->threads = lim.threads > 0 ? lim.threads : 1;
	}
}

/* Nothing to release (kept so that callers need not change when the
 * pool gains state). */
static inline void
fm_acc_stop(fm_acc *p)
{
	(void)p;
}

/* acc[0, dim) += sum_k w[k] x[k] for k < n <= FM_ACC_GROUP, over the
 * host's worker threads when there are several and dim is large. */
static inline void
fm_acc_sum(fm_acc *p, float *acc, size_t dim, uint32_t n, const float *w,
    const float *const *x)
{
	if (p->threads < 2 || dim < FM_ACC_SPLIT_MIN) {
		p->kernel(acc, 0, dim, n, w, x);
		return;
	}
	fm_acc_job j = { p->kernel, acc, dim, n, w, x };
	p->host->parallel_for(p->inst, (dim + FM_ACC_CHUNK - 1) / FM_ACC_CHUNK,
	    fm_acc_task, &j);
}

/* What fm_accumulate says of one update: FM_OK, FM_EINVAL for a wrong
 * size or a missing delta. */
static inline int
fm_acc_check(size_t dim, const fm_update *u)
{
	return u->dim != dim || u->delta == NULL ? FM_EINVAL : FM_OK;
}

/* acc[dim] += n_k * delta_k and *weight += n_k for u[0..n) (stepped by
 * u->struct_size), in order; status[k] = fm_acc_check(u[k]). Updates
 * with zero examples weigh nothing. The accept of the FedAvg family. */
static inline int
fm_accumulate(fm_acc *pool, float *acc, double *weight, size_t dim,
    const fm_update *u, uint32_t n, int *status)
{
	float w[FM_ACC_GROUP];
	const float *x[FM_ACC_GROUP];
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++) {
		const fm_update *ui = FM_AT(const fm_update, u, i);
		status[i] = acc == NULL ? FM_EINVAL : fm_acc_check(dim, ui);
		if (status[i] != FM_OK || ui->num_examples == 0) {
			continue;
		}
		w[k] = (float)ui->num_examples;
		x[k++] = ui->delta;
		*weight += (double)ui->num_examples;
		if (k == FM_ACC_GROUP) {
			fm_acc_sum(pool, acc, dim, k, w, x);
			k = 0;
		}
	}
	if (k > 0) {
		fm_acc_sum(pool, acc, dim, k, w, x);
	}
	return acc == NULL ? FM_EINVAL : FM_OK;
}

#endif /* FM_PLUGINS_ACCUMULATE_H */
