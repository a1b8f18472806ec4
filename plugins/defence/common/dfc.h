/* SPDX-License-Identifier: MIT */
/*
 * dfc.h: what the defence plugins share (compiled into each .so, never
 * exported): checking a round, the output conventions, a parallel for over
 * the host's worker threads (host->parallel_for: plugins start no threads),
 * and the two model-sized kernels (distances, weighted sums).
 *
 * Shapes: N updates (rows), P parameters (coordinates); the round's
 * matrix X[N][stride] is row-major with 64-byte aligned rows.
 */
#ifndef FM_DEFENCE_DFC_H
#define FM_DEFENCE_DFC_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/plugin.h"

#define DFC_MAX_THREADS 256

/* What every defence instance starts with. */
typedef struct dfc_base {
	const fm_host_api *host;
	const fm_instance *inst;
	const char *name;  /* component name, for logs */
	const char *logid; /* stable log id, e.g. "FM-KRUM" */
	size_t dim;
	uint32_t threads;  /* parallel chunks of model passes (>= 1) */
} dfc_base;

/* Logs an error of b's plugin and gives it (host->set_error) as the reason of the failing call, so the user's
 * error message says it (without a leading "<name>: "). */
void dfc_error(const dfc_base *b, const char *fmt, ...) FM_PRINTF(2, 3);

/* Row i of the round's matrix. */
static inline float *
dfc_row(const fm_rows *r, uint32_t i)
{
	return r->deltas + (size_t)i * r->stride;
}

/* The fm_update of row i (the array is stepped by its struct_size). */
static inline const fm_update *
dfc_update(const fm_rows *r, uint32_t i)
{
	return FM_AT(const fm_update, r->updates, i);
}

/* Sets up b; refuses an empty model or a parameter count other than
 * nparams (logged). */
int dfc_init(dfc_base *b, const fm_instance *inst, const char *name,
    const char *logid, uint32_t nparams);
/* A whole number in [lo, hi] from an INT parameter (the host checked the
 * declared range; this guards the conversion). */
int dfc_count(const dfc_base *b, const char *param, double v, uint32_t lo,
    uint32_t hi, uint32_t *out);
/* The `threads` parameter: how many chunks a model pass is split into
 * (run by host->parallel_for); 0 means the node's worker threads
 * (host->limits). */
int dfc_set_threads(dfc_base *b, double v);
/* Checks the round's layout against the instance (dim, stride, buffers,
 * struct size); logs and returns FM_EINVAL when it is off. */
int dfc_check(const dfc_base *b, const fm_rows *r);
/* Sum of the round's num_examples. */
uint64_t dfc_examples(const fm_rows *r);
/* Output "row 0 holds the result": keep = { 0 } with the round's examples. */
void dfc_keep_row0(fm_rows *r);
/* buf if it holds n bytes (*cap tracks its size), else a new host->alloc'ed
 * buffer of n bytes (the old one freed, contents dropped); NULL (with buf
 * freed and *cap 0) when out of memory. */
void *dfc_grow(const fm_host_api *host, void *buf, size_t *cap, size_t n);

/* Runs fn(ctx, lo, hi) over [0, count) split into at most `threads`
 * contiguous chunks whose bounds are multiples of grain (the last one
 * excepted); chunk is the chunk's number (< threads), for per-chunk
 * scratch. The chunks are the items of one host->parallel_for (each
 * chunk runs once, on one of the node's worker threads); without it they
 * run in order on the calling thread. The split never changes what fn
 * computes per index, so results do not depend on the thread count. */
/* threads, or 1 when the work (in floats read) is too small to pay for
 * starting threads. */
uint32_t dfc_fit_threads(uint32_t threads, size_t floats);
void dfc_parallel(const dfc_base *b, uint32_t threads, size_t count, size_t grain,
    void (*fn)(void *ctx, uint32_t chunk, size_t lo, size_t hi), void *ctx);

/* ||x - y||^2 over n floats: float partial sums over blocks of 1024,
 * added in double. +inf when not finite. Fixed order: deterministic. */
double dfc_dist2(const float *x, const float *y, size_t n);
/* ||x||^2, the same way. */
double dfc_norm2(const float *x, size_t n);
/* x . y, the same way (not finite when the inputs overflow). */
double dfc_dot(const float *x, const float *y, size_t n);

/*
 * Weighted sum out[j] = a0 * base[j] + sum_k c[k] * rows[k][j] for j in
 * [lo, hi) (base may be NULL, then a0 is ignored). Blocked over j so that
 * out stays in cache while the rows stream once. Each out[j] is summed in
 * a fixed order: independent of how [0, P) is split.
 */
typedef struct dfc_wsum_job {
	const float *const *rows; /* [k] */
	const double *c;          /* [k] */
	uint32_t k;
	const float *base;        /* [P] or NULL */
	double a0;
	float *out;               /* [P]; must not alias rows or base */
	double *part;             /* NULL, or [k][dfc_blocks(P)] scratch: see
	                           * dfc_wsum_dists */
	size_t nblocks;           /* set by dfc_wsum_dists */
} dfc_wsum_job;
void dfc_wsum(const dfc_base *b, const dfc_wsum_job *job, size_t p,
    uint32_t threads);
/* Blocks of the partial sums over P coordinates. */
size_t dfc_blocks(size_t p);
/* dfc_wsum, and dist[k] = ||rows[k] - out|| in the same pass over the
 * rows (each block of out is compared with the rows' block while it is
 * still in cache): exactly dfc_dists(rows, k, out, ...), in half the
 * memory traffic. job->part must be set. */
void dfc_wsum_dists(const dfc_base *b, const dfc_wsum_job *job, size_t p,
    double *dist, uint32_t threads);

/* dist[i] = ||rows[i] - y|| (y NULL: ||rows[i]||) for i in [0, n), rows
 * split across threads (each distance is computed by one thread:
 * bit-identical results). */
void dfc_dists(const dfc_base *b, const float *const *rows, uint32_t n,
    const float *y, size_t p, double *dist, uint32_t threads);
/* dot[i] = rows[i] . y and norm[i] = ||rows[i]||, one pass per row, rows
 * split across threads. */
void dfc_dots(const dfc_base *b, const float *const *rows, uint32_t n,
    const float *y, size_t p, double *dot, double *norm, uint32_t threads);

#endif /* FM_DEFENCE_DFC_H */
