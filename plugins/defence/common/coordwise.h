/* SPDX-License-Identifier: MIT */
/*
 * coordwise.h: coordinate-wise robust statistics over M rows of P floats
 * (median, trimmed mean, Bulyan's averaged neighbourhood of the median),
 * shared by the coordinate and krum plugins.
 *
 * The coordinates are processed in blocks of CW_BLOCK: that block of
 * every row is turned into order-preserving integer keys in a per-thread
 * tile [M][CW_BLOCK] (the rows stream once, the tile stays in L1), then
 * each coordinate is reduced by selection, never by a sort: the k-th
 * smallest key is found by bitwise bisection, counting over the tile for
 * all CW_BLOCK coordinates at once (see coordwise.c for why not
 * quickselect). The coordinate range is split across the host's worker
 * threads (host->parallel_for, through dfc_parallel) in whole
 * blocks; each coordinate is computed the same way whatever the split, so
 * results are bit-identical for any thread count.
 *
 * NaN counts as +inf, so up to the rule's tolerance of NaN rows is
 * selected away like any other outlier.
 */
#ifndef FM_DEFENCE_COORDWISE_H
#define FM_DEFENCE_COORDWISE_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/plugin.h"

#include "dfc.h"

#define CW_BLOCK 64 /* coordinates per tile */

enum cw_rule {
	CW_MEDIAN = 1, /* median; mean of the two middle values for even M */
	CW_TRIMMED,    /* drop `cut` values at each end, mean of the rest */
	CW_BULYAN      /* the `cut` values closest to the median, averaged */
};

typedef struct cw_job {
	int rule;                  /* enum cw_rule */
	uint32_t m;                /* values per coordinate (>= 1) */
	const float *const *rows;  /* [M] row pointers */
	uint32_t cut;              /* CW_TRIMMED: per side (2 cut < M);
	                            * CW_BULYAN: values kept (1..M) */
	float *out;                /* [P]; may be one of the rows: a block
	                            * is written only after it was read */
	size_t p;
} cw_job;

/* Per-instance scratch, grown on demand. */
typedef struct cw_scratch {
	void *buf;
	size_t cap;
} cw_scratch;

/* Computes job->out in at most `threads` chunks (>= 1) of b's host;
 * FM_ENOMEM if the scratch cannot grow. */
int cw_run(const dfc_base *b, cw_scratch *s, const cw_job *job,
    uint32_t threads);
void cw_free(const fm_host_api *host, cw_scratch *s);

/* Quickselect (Hoare partition, median-of-three pivot) for short arrays
 * such as Krum's distances: rearranges a[0..n) so that a[k] is the k-th
 * smallest (0-based), with a[0..k) <= a[k] <= a[k+1..n). No NaN. */
void cw_select(float *a, uint32_t n, uint32_t k);

#endif /* FM_DEFENCE_COORDWISE_H */
