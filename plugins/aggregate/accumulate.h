/* SPDX-License-Identifier: MIT */
/* accumulate.h: the example-weighted sum of client deltas, shared by the
 * aggregator plugins (header only: each plugin stays one self-contained .so). */
#ifndef FM_PLUGINS_ACCUMULATE_H
#define FM_PLUGINS_ACCUMULATE_H

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <stdatomic.h>

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

/* The widest kernel this CPU runs (FEDMESH_ACC_KERNEL=c or avx2 forces a
 * narrower one, for tests: every kernel gives the same bits). */
static fm_acc_kernel
fm_acc_pick(void)
{
	const char *force = getenv("FEDMESH_ACC_KERNEL");
	force = force != NULL ? force : "";
	if (strcmp(force, "c") == 0) {
		return fm_acc_sum_c;
	}
#ifdef FM_ACC_X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && strcmp(force, "avx2") != 0) {
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
 * machine's memory bandwidth. fm_acc keeps one helper thread per
 * aggregator instance (the engine runs the server's BLAS on one thread)
 * and hands it the upper half of the coordinates of every large sum
 * (lock-free handoff; the helper sleeps when idle).
 */
typedef struct fm_acc {
	fm_acc_kernel kernel;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t go;
	int started;
	atomic_uint seq;  /* jobs handed out */
	atomic_int state; /* the job: 0 posted, 1 taken, 2 done */
	atomic_int sleeping, stop;
	/* the job, written before seq: the kernel on acc[lo, hi) */
	float *acc;
	size_t lo, hi;
	uint32_t n;
	const float *w;
	const float *const *x;
} fm_acc;

#define FM_ACC_SPLIT_MIN 65536 /* floats; below, one thread is faster */
#define FM_ACC_SPIN 4096       /* polls before the helper sleeps */

static inline void
fm_acc_relax(void)
{
#ifdef FM_ACC_X86
	__builtin_ia32_pause();
#endif
}

static inline void
fm_acc_run_job(fm_acc *p)
{
	p->kernel(p->acc, p->lo, p->hi, p->n, p->w, p->x);
}

/* The helper polls for a job (rounds feed updates in bursts, and waking a
 * sleeping thread costs about as much as half a 1M-float sum), then
 * sleeps on the condition variable. */
static void *
fm_acc_main(void *arg)
{
	fm_acc *p = arg;
	unsigned seen = 0;
	for (;;) {
		unsigned spins = 0;
		while (atomic_load(&p->seq) == seen && !atomic_load(&p->stop)) {
			if (++spins < FM_ACC_SPIN) {
				fm_acc_relax();
				continue;
			}
			pthread_mutex_lock(&p->mu);
			atomic_store(&p->sleeping, 1);
			while (atomic_load(&p->seq) == seen &&
			    !atomic_load(&p->stop)) {
				pthread_cond_wait(&p->go, &p->mu);
			}
			atomic_store(&p->sleeping, 0);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->stop)) {
			return NULL;
		}
		seen = atomic_load(&p->seq);
		int posted = 0;
		if (atomic_compare_exchange_strong(&p->state, &posted, 1)) {
			fm_acc_run_job(p);
			atomic_store(&p->state, 2);
		} /* else the caller took it back */
	}
}

/* Picks the kernel and starts the helper; without it (threads < 2, or no
 * thread to be had) everything runs on the caller's thread. */
static inline void
fm_acc_start(fm_acc *p, int threads)
{
	p->kernel = fm_acc_pick();
	p->started = 0;
	atomic_init(&p->seq, 0);
	atomic_init(&p->state, 2);
	atomic_init(&p->sleeping, 0);
	atomic_init(&p->stop, 0);
	if (threads < 2 || pthread_mutex_init(&p->mu, NULL) != 0) {
		return;
	}
	if (pthread_cond_init(&p->go, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		return;
	}
	if (pthread_create(&p->thread, NULL, fm_acc_main, p) != 0) {
		pthread_cond_destroy(&p->go);
		pthread_mutex_destroy(&p->mu);
		return;
	}
	p->started = 1;
}

static inline void
fm_acc_wake(fm_acc *p)
{
	if (atomic_load(&p->sleeping)) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_signal(&p->go);
		pthread_mutex_unlock(&p->mu);
	}
}

static inline void
fm_acc_stop(fm_acc *p)
{
	if (!p->started) {
		return;
	}
	atomic_store(&p->stop, 1);
	pthread_mutex_lock(&p->mu);
	pthread_cond_signal(&p->go);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->go);
	pthread_mutex_destroy(&p->mu);
	p->started = 0;
}

/* acc[0, dim) += sum_k w[k] x[k] for k < n <= FM_ACC_GROUP, on two threads
 * when started and dim is large. */
static inline void
fm_acc_sum(fm_acc *p, float *acc, size_t dim, uint32_t n, const float *w,
    const float *const *x)
{
	if (!p->started || dim < FM_ACC_SPLIT_MIN) {
		p->kernel(acc, 0, dim, n, w, x);
		return;
	}
	size_t h = (dim / 2) & ~(size_t)63;
	p->acc = acc;
	p->lo = h;
	p->hi = dim;
	p->n = n;
	p->w = w;
	p->x = x;
	atomic_store(&p->state, 0);
	atomic_fetch_add(&p->seq, 1); /* publishes the job (seq_cst) */
	fm_acc_wake(p);
	p->kernel(acc, 0, h, n, w, x);
	/* A helper that has not started (its core busy, e.g. with a
	 * simulation's workers) loses the job to the caller. */
	int posted = 0;
	if (atomic_compare_exchange_strong(&p->state, &posted, 1)) {
		fm_acc_run_job(p);
		atomic_store(&p->state, 2);
		return;
	}
	for (unsigned spins = 0; atomic_load(&p->state) != 2; spins++) {
		if (spins < FM_ACC_SPIN) {
			fm_acc_relax();
		} else {
			sched_yield(); /* the helper was preempted mid-job */
		}
	}
}

/* What fm_accumulate says of one update: FM_OK, FM_EINVAL for a wrong
 * size or a missing delta. */
static inline int
fm_acc_check(size_t dim, const fm_update *u)
{
	return u->dim != dim || u->delta == NULL ? FM_EINVAL : FM_OK;
}

/* acc[dim] += n_k * delta_k and *weight += n_k for u[0..n), in order;
 * status[k] = fm_acc_check(u[k]). Updates with zero examples weigh
 * nothing. The a_accept_many of the FedAvg family. */
static inline int
fm_accumulate_many(fm_acc *pool, float *acc, double *weight, size_t dim,
    const fm_update *u, uint32_t n, int *status)
{
	float w[FM_ACC_GROUP];
	const float *x[FM_ACC_GROUP];
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++) {
		status[i] = acc == NULL ? FM_EINVAL : fm_acc_check(dim, &u[i]);
		if (status[i] != FM_OK || u[i].num_examples == 0) {
			continue;
		}
		w[k] = (float)u[i].num_examples;
		x[k++] = u[i].delta;
		*weight += (double)u[i].num_examples;
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

/* One update: fm_accumulate_many with n = 1 (the a_accept of the family). */
static inline int
fm_accumulate(fm_acc *pool, float *acc, double *weight, size_t dim,
    const fm_update *u)
{
	int status = FM_EINVAL;
	int rv = fm_accumulate_many(pool, acc, weight, dim, u, 1, &status);
	return rv != FM_OK ? rv : status;
}

#endif /* FM_PLUGINS_ACCUMULATE_H */
