/* SPDX-License-Identifier: MIT */
/* fm_test.h: thin helpers over cmocka for fedmesh tests. */
#ifndef FM_TEST_H
#define FM_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedmesh/fedmesh.h"

/* Asserts an fm call returned FM_OK, printing fm_strerror otherwise. */
#define FMT_PASS(expr)                                                     \
	do {                                                                \
		int fmt_rv_ = (expr);                                       \
		if (fmt_rv_ != FM_OK) {                                     \
			print_error("%s: %s (%d)\n", #expr,                 \
			    fm_strerror(fmt_rv_), fmt_rv_);                 \
			fail();                                             \
		}                                                           \
	} while (0)

/* Asserts an fm call failed with exactly code. */
#define FMT_FAIL(expr, code)                                               \
	do {                                                                \
		int fmt_rv_ = (expr);                                       \
		if (fmt_rv_ != (code)) {                                    \
			print_error("%s: got %s (%d), want %s (%d)\n", #expr, \
			    fm_strerror(fmt_rv_), fmt_rv_,                  \
			    fm_strerror(code), (int)(code));                \
			fail();                                             \
		}                                                           \
	} while (0)

/* Compares two float arrays with an absolute+relative tolerance, printing
 * the first mismatches and the maximum difference. */
static inline int
fmt_near_impl(const float *a, const float *b, size_t n, double tol,
    const char *what)
{
	double maxd = 0;
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - (double)b[i]);
		double lim = tol * (1.0 + fabs((double)b[i]));
		if (d > maxd) {
			maxd = d;
		}
		if (!(d <= lim)) {
			if (bad < 5) {
				print_error("%s[%zu]: %g vs %g\n", what, i,
				    (double)a[i], (double)b[i]);
			}
			bad++;
		}
	}
	if (bad) {
		print_error("%s: %zu of %zu differ, max diff %g\n", what, bad, n,
		    maxd);
	}
	return bad == 0;
}
#define FMT_NEAR(a, b, n, tol) assert_true(fmt_near_impl(a, b, n, tol, #a))

/* A captured-log helper: tests can assert that a log id was emitted. */
typedef struct fmt_logcap {
	char ids[64][32];
	char lines[64][512];
	int n;
} fmt_logcap;

static inline void
fmt_logcap_sink(void *ud, int level, const char *id, const char *line)
{
	fmt_logcap *c = ud;
	(void)level;
	if (c->n < 64) {
		snprintf(c->ids[c->n], sizeof c->ids[0], "%s", id ? id : "");
		snprintf(c->lines[c->n], sizeof c->lines[0], "%s", line);
		c->n++;
	}
}

/* Index of the first captured line whose id equals id, or -1. */
static inline int
fmt_logcap_find(const fmt_logcap *c, const char *id)
{
	for (int i = 0; i < c->n; i++) {
		if (strcmp(c->ids[i], id) == 0) {
			return i;
		}
	}
	return -1;
}

#endif /* FM_TEST_H */
