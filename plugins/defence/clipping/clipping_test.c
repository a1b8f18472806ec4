/* SPDX-License-Identifier: MIT */
/* clipping_test.c: conformance of the built-in clipping plugin (clipping,
 * centered_clipping), loaded as a .so: hand-computed cases, exact norm
 * bounds, the center carried across rounds, Byzantine rows, threads,
 * errors. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../common/dtest.h"

typedef struct fixture {
	fmi_registry *reg;
	const fmi_component *clip, *cc;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, "clipping.so") != FM_OK) {
		return -1;
	}
	f->clip = fmi_registry_find(f->reg, FM_KIND_DEFENCE, "clipping");
	f->cc = fmi_registry_find(f->reg, FM_KIND_DEFENCE,
	    "centered_clipping");
	*state = f;
	return f->clip && f->cc ? 0 : -1;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	fmi_registry_free(f->reg);
	free(f);
	return 0;
}

static void
test_abi(void **state)
{
	const fixture *f = *state;
	const fm_plugin_info *in = f->clip->plugin;
	assert_string_equal(in->name, "clipping");
	assert_int_equal(in->ncomponents, 2);
	assert_true(f->cc->plugin == in);
	const fm_param_desc *p = f->clip->desc->params;
	assert_int_equal(fmi_component_nparams(f->clip), 1);
	assert_string_equal(p[0].name, "tau");
	assert_true(p[0].def == 10);
	p = f->cc->desc->params;
	assert_int_equal(fmi_component_nparams(f->cc), 3);
	assert_string_equal(p[0].name, "tau");
	assert_true(p[0].def == 10);
	assert_string_equal(p[1].name, "iters");
	assert_true(p[1].def == 1);
	assert_string_equal(p[2].name, "threads");
}

/* tau 1: (3, 4) has norm 5 -> (0.6, 0.8); (0.3, 0.4) passes bit for bit;
 * every row passes with its own examples. */
static void
test_clipping_hand_computed(void **state)
{
	const fixture *f = *state;
	const float x[3][2] = { { 3, 4 }, { 0.3f, 0.4f }, { 0, -1 } };
	const uint64_t ex[3] = { 5, 6, 7 };
	const float want0[2] = { 0.6f, 0.8f };
	dt_round *t = dt_new(3, 2);
	dt_set(t, &x[0][0]);
	dt_examples(t, ex);
	fmi_def *d = dt_open1(f->clip, "tau", 1, 2);
	FMT_PASS(dt_apply(d, t));
	assert_int_equal(t->r.nkeep, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(t->keep[i], i);
		assert_int_equal(t->ke[i], ex[i]);
	}
	FMT_NEAR(dt_row(t, 0), want0, 2, 1e-7);
	assert_memory_equal(dt_row(t, 1), x[1], sizeof x[1]);
	assert_memory_equal(dt_row(t, 2), x[2], sizeof x[2]); /* norm = tau */
	fmi_def_close(d);
	dt_free(t);
}

/* Random rows with norms from 0.01 to 1000: afterwards every norm is at
 * most tau (to float rounding, 1e-6 relative), rows above tau land on tau
 * in the same direction, rows below are untouched bit for bit. */
static void
test_clipping_bounds_norms(void **state)
{
	const fixture *f = *state;
	enum { N = 40, D = 333 };
	const double tau = 2.5;
	dt_round *t = dt_new(N, D), *orig;
	dt_random(t, 17, -1, 1);
	for (uint32_t i = 0; i < N; i++) {
		double s = pow(10, -2 + 5.0 * i / (N - 1)) /
		    sqrt(dt_norm2(dt_row(t, i), D));
		for (size_t j = 0; j < D; j++) {
			dt_row(t, i)[j] *= (float)s;
		}
	}
	orig = dt_clone(t);
	fmi_def *d = dt_open1(f->clip, "tau", tau, D);
	FMT_PASS(dt_apply(d, t));
	assert_int_equal(t->r.nkeep, N);
	for (uint32_t i = 0; i < N; i++) {
		double before = sqrt(dt_norm2(dt_row(orig, i), D));
		double after = sqrt(dt_norm2(dt_row(t, i), D));
		assert_true(after <= tau * (1 + 1e-6));
		if (before <= tau) {
			assert_memory_equal(dt_row(t, i), dt_row(orig, i),
			    D * sizeof(float));
			continue;
		}
		assert_true(fabs(after - tau) <= 1e-6 * tau);
		for (size_t j = 0; j < D; j++) { /* same direction */
			double w = dt_row(orig, i)[j] * tau / before;
			assert_true(fabs(dt_row(t, i)[j] - w) <= 1e-6 * tau);
		}
	}
	fmi_def_close(d);
	dt_free(t);
	dt_free(orig);
}

/* A non-finite row is dropped (logged); the others pass. */
static void
test_clipping_drops_non_finite(void **state)
{
	const fixture *f = *state;
	const float x[3][2] = { { 3, 4 }, { NAN, 0 }, { 0, 1 } };
	dt_round *t = dt_new(3, 2);
	dt_set(t, &x[0][0]);
	fmi_def *d = dt_open1(f->clip, "tau", 1, 2);
	fmt_logcap cap;
	dt_quiet(&cap);
	FMT_PASS(dt_apply(d, t));
	dt_loud();
	assert_true(dt_logged(&cap, "update 1 (client 2) is not finite"));
	assert_int_equal(t->r.nkeep, 2);
	assert_int_equal(t->keep[0], 0);
	assert_int_equal(t->keep[1], 2);
	fmi_def_close(d);
	dt_free(t);
}

/*
 * centered_clipping, tau 1, rows (3, 4), (0, .5), (0, -.5) (by hand,
 * checked with a few lines of Python):
 *   round 1 from v = 0: clip -> (.6, .8), (0, .5), (0, -.5); v = (.2, .26667)
 *   round 2 from that v: v = (.26667, .35556)
 *   one round with iters 3 from 0: (.28889, .38519)
 */
static const float cc_x[3][2] = { { 3, 4 }, { 0, 0.5f }, { 0, -0.5f } };

static void
cc_round(fmi_def *d, const float *want)
{
	dt_round *t = dt_new(3, 2);
	const uint64_t ex[3] = { 1, 2, 3 };
	dt_set(t, &cc_x[0][0]);
	dt_examples(t, ex);
	FMT_PASS(dt_apply(d, t));
	dt_assert_row0(t);
	FMT_NEAR(dt_row(t, 0), want, 2, 1e-6);
	dt_free(t);
}

static void
test_centered_hand_computed(void **state)
{
	const fixture *f = *state;
	const float r1[2] = { 0.2f, 0.26666667f }, r2[2] = { 0.26666667f,
		0.35555556f };
	const float it3[2] = { 0.28888889f, 0.38518519f };
	const fmi_param_in in[2] = { { "tau", 0, 1, NULL },
		{ "iters", 0, 3, NULL } };
	fmi_def *d = dt_open1(f->cc, "tau", 1, 2);
	cc_round(d, r1);
	cc_round(d, r2); /* the center carried over */
	fmi_def_close(d);
	d = dt_open(f->cc, in, 2, 2);
	cc_round(d, it3);
	fmi_def_close(d);
}

/* One CC step with the honest rows unclipped (||x_h - v|| <= tau) gives
 * v' - m = (f/n)(v - m) + (1/n) sum_byz clip(x_b - v, tau), so
 * ||v' - m|| <= (f/n) ||v - m|| + f tau / n around the honest mean m,
 * round after round (towards f tau / (n - f)); plain averaging is 1e5 off. */
static void
test_centered_byzantine(void **state)
{
	const fixture *f = *state;
	enum { N = 11, FB = 2, D = 37 };
	float lo[D], hi[D], mean[D], avg[D], zero[D] = { 0 };
	fmi_def *d = dt_open1(f->cc, NULL, 0, D); /* tau 10 */
	double prev = -1;
	for (int round = 1; round <= 4; round++) {
		dt_round *t = dt_new(N, D);
		dt_byzantine(t, FB, 1, lo, hi, mean);
		dt_mean(t, avg);
		assert_true(dt_dist(avg, mean, D) > 1e5);
		prev = prev < 0 ? dt_dist(zero, mean, D) : prev;
		FMT_PASS(dt_apply(d, t));
		dt_assert_row0(t);
		double left = dt_dist(dt_row(t, 0), mean, D);
		double bound = (double)FB / N * prev + FB * 10.0 / N;
		assert_true(left <= bound + 1e-4);
		assert_true(left <= FB * 10.0 / (N - FB) + 1e-4 || round == 1);
		prev = left;
		dt_free(t);
	}
	fmi_def_close(d);
}

/* centered_clipping's center, saved after round 1 and loaded into a
 * fresh instance, gives round 2 bit for bit; a center of another model
 * size is refused; plain clipping keeps nothing (no save). */
static void
test_centered_save_load(void **state)
{
	const fixture *f = *state;
	const uint64_t ex[3] = { 1, 2, 3 };
	const float r1[2] = { 0.2f, 0.26666667f };
	fmi_def *a = dt_open1(f->cc, "tau", 1, 2);
	fmi_def *b = dt_open1(f->cc, "tau", 1, 2);
	fmi_def *big = dt_open1(f->cc, "tau", 1, 3);
	size_t len0, len;
	void *s0 = pt_save(&b->h, &len0); /* no center yet */
	pt_load_checked(&b->h, s0, len0);
	cc_round(a, r1);
	void *s1 = pt_save(&a->h, &len);
	assert_true(len > len0);
	assert_int_not_equal(fmi_inst_load(&big->h, s1, len), FM_OK);
	fmi_def_close(b);
	b = dt_open1(f->cc, "tau", 1, 2);
	pt_load_checked(&b->h, s1, len);
	dt_round *ta = dt_new(3, 2), *tb;
	dt_set(ta, &cc_x[0][0]);
	dt_examples(ta, ex);
	tb = dt_clone(ta);
	FMT_PASS(dt_apply(a, ta));
	FMT_PASS(dt_apply(b, tb));
	assert_memory_equal(dt_row(ta, 0), dt_row(tb, 0), 2 * sizeof(float));
	const float r2[2] = { 0.26666667f, 0.35555556f };
	FMT_NEAR(dt_row(tb, 0), r2, 2, 1e-6);
	fmi_def *plain = dt_open1(f->clip, "tau", 1, 2);
	assert_false(fmi_inst_saves(&plain->h));
	fmi_def_close(plain);
	dt_free(ta);
	dt_free(tb);
	free(s0);
	free(s1);
	fmi_def_close(a);
	fmi_def_close(b);
	fmi_def_close(big);
}

static void
test_centered_threads_bit_identical(void **state)
{
	const fixture *f = *state;
	enum { N = 9, D = 8009 }; /* enough work to split */
	dt_round *t0 = dt_new(N, D);
	dt_random(t0, 41, -1, 1);
	float *ref = malloc(D * sizeof(float));
	for (int th = 1; th <= 4; th++) {
		const fmi_param_in in[3] = { { "tau", 0, 5, NULL },
			{ "iters", 0, 3, NULL },
			{ "threads", 0, th == 4 ? 0 : th, NULL } };
		dt_round *t = dt_clone(t0);
		fmi_def *d = dt_open(f->cc, in, 3, D);
		FMT_PASS(dt_apply(d, t));
		if (th == 1) {
			memcpy(ref, dt_row(t, 0), D * sizeof(float));
		}
		assert_memory_equal(ref, dt_row(t, 0), D * sizeof(float));
		fmi_def_close(d);
		dt_free(t);
	}
	free(ref);
	dt_free(t0);
}

static void
test_errors(void **state)
{
	const fixture *f = *state;
	fmt_logcap cap;
	fmi_def *d = NULL;
	const fmi_param_in zero = { "tau", 0, 0, NULL };
	dt_quiet(&cap);
	FMT_FAIL(dt_try_open(f->clip, &zero, 1, 3, &d), FM_EINVAL);
	FMT_FAIL(dt_try_open(f->cc, &zero, 1, 3, &d), FM_EINVAL);
	FMT_FAIL(dt_try_open(f->cc, NULL, 0, 0, &d), FM_EINVAL);
	dt_loud();
	assert_null(d);
	assert_true(dt_logged(&cap, "clipping: parameter 'tau' = 0 must be"));
	assert_true(dt_logged(&cap, "centered_clipping: empty model"));
	const fmi_component *c[2] = { f->clip, f->cc };
	for (int k = 0; k < 2; k++) { /* empty rounds: nothing passes */
		d = dt_open1(c[k], NULL, 0, 3);
		dt_round *t = dt_new(0, 3);
		FMT_PASS(dt_apply(d, t));
		assert_int_equal(t->r.nkeep, 0);
		fmi_def_close(d);
		dt_free(t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_clipping_hand_computed),
		cmocka_unit_test(test_clipping_bounds_norms),
		cmocka_unit_test(test_clipping_drops_non_finite),
		cmocka_unit_test(test_centered_hand_computed),
		cmocka_unit_test(test_centered_byzantine),
		cmocka_unit_test(test_centered_threads_bit_identical),
		cmocka_unit_test(test_centered_save_load),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
