/* SPDX-License-Identifier: MIT */
/* accumulate.h: the example-weighted sum of client deltas, shared by the
 * aggregator plugins (header only: each plugin stays one self-contained .so). */
#ifndef FM_PLUGINS_ACCUMULATE_H
#define FM_PLUGINS_ACCUMULATE_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "fedmesh/plugin.h"

/*
 * Accumulating a delta reads it and reads and writes the accumulator: a
 * memory-bound pass that one core cannot drive at the machine's memory
 * bandwidth. fm_acc keeps one helper thread per aggregator instance (the
 * engine runs the server's BLAS on one thread) and hands it the upper half
 * of every large axpy (lock-free handoff; the helper sleeps when idle). The split falls on a multiple of 1024 floats, so every
 * element goes through the same axpy kernel as without the helper: the
 * sums are bit-identical with or without it.
 */
typedef struct fm_acc {
	const fm_host_api *host;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t go;
	int started;
	atomic_uint seq;  /* jobs handed out */
	atomic_int state; /* the job: 0 posted, 1 taken, 2 done */
	atomic_int sleeping, stop;
	size_t n; /* the job: y[0..n) += a x[0..n), written before seq */
	float a;
	const float *x;
	float *y;
} fm_acc;

#define FM_ACC_SPLIT_MIN 65536 /* floats; below, one thread is faster */
#define FM_ACC_SPIN 4096       /* polls before the helper sleeps */

static inline void
fm_acc_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* The helper polls for a job (rounds feed updates in bursts, and waking a
 * sleeping thread costs about as much as half a 1M-float axpy), then
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
			p->host->axpy(p->n, p->a, p->x, p->y);
			atomic_store(&p->state, 2);
		} /* else the caller took it back */
	}
}

/* Starts the helper; without it (threads < 2, or no thread to be had)
 * everything runs on the caller's thread. */
static inline void
fm_acc_start(fm_acc *p, const fm_host_api *host, int threads)
{
	p->host = host;
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

/* y += a x over n floats, on two threads when started and n is large. */
static inline void
fm_acc_axpy(fm_acc *p, size_t n, float a, const float *x, float *y)
{
	if (!p->started || n < FM_ACC_SPLIT_MIN) {
		p->host->axpy(n, a, x, y);
		return;
	}
	size_t h = (n / 2) & ~(size_t)1023;
	p->n = n - h;
	p->a = a;
	p->x = x + h;
	p->y = y + h;
	atomic_store(&p->state, 0);
	atomic_fetch_add(&p->seq, 1); /* publishes the job (seq_cst) */
	fm_acc_wake(p);
	p->host->axpy(h, a, x, y);
	/* A helper that has not started (its core busy, e.g. with a
	 * simulation's workers) loses the job to the caller: same kernel,
	 * same elements, same bits. */
	int posted = 0;
	if (atomic_compare_exchange_strong(&p->state, &posted, 1)) {
		p->host->axpy(n - h, a, x + h, y + h);
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

/* acc[dim] += n_k * delta_k and *weight += n_k for one update. Updates with
 * zero examples weigh nothing; a wrong size or a missing delta is
 * FM_EINVAL. pool may be NULL (one thread). */
static inline int
fm_accumulate(fm_acc *pool, const fm_host_api *host, float *acc,
    double *weight, size_t dim, const fm_update *u)
{
	if (u->dim != dim || u->delta == NULL || acc == NULL) {
		return FM_EINVAL;
	}
	if (u->num_examples > 0) {
		if (pool != NULL && pool->started) {
			fm_acc_axpy(pool, dim, (float)u->num_examples, u->delta,
			    acc);
		} else {
			host->axpy(dim, (float)u->num_examples, u->delta, acc);
		}
		*weight += (double)u->num_examples;
	}
	return FM_OK;
}

#endif /* FM_PLUGINS_ACCUMULATE_H */
