/* SPDX-License-Identifier: MIT */
/* fltrust_test.c: conformance of the built-in fltrust plugin, loaded as a
 * .so: a hand-computed case, zero trust for updates opposite to the
 * server's, the refusal without root data, Byzantine rows, threads. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../common/dtest.h"

typedef struct fixture {
	fmi_registry *reg;
	const fmi_component *ft;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, "fltrust.so") != FM_OK) {
		return -1;
	}
	f->ft = fmi_registry_find(f->reg, FM_KIND_DEFENCE, "fltrust");
	*state = f;
	return f->ft != NULL ? 0 : -1;
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
	assert_string_equal(f->ft->plugin->name, "fltrust");
	assert_int_equal(fmi_component_nparams(f->ft), 1);
	assert_string_equal(f->ft->desc->params[0].name, "threads");
}

/*
 * g0 = (1, 0), norm 1:
 *   g1 (2, 0)   cos 1      TS 1       rescaled (1, 0)
 *   g2 (0, 3)   cos 0      TS 0
 *   g3 (-1, 0)  cos -1     TS 0
 *   g4 (1, 1)   cos .7071  TS .7071   rescaled (.7071, .7071)
 *   result (1 (1, 0) + .7071 (.7071, .7071)) / 1.7071 = (.87868, .29289),
 *   weighted by the examples of g1 and g4.
 */
static const float g0[2] = { 1, 0 };
static const float hand[4][2] = { { 2, 0 }, { 0, 3 }, { -1, 0 }, { 1, 1 } };

static dt_round *
hand_round(uint32_t n, const float *x)
{
	const uint64_t ex[4] = { 10, 20, 30, 40 };
	dt_round *t = dt_new(n, 2);
	dt_set(t, x);
	dt_examples(t, ex);
	t->r.server_delta = g0;
	return t;
}

static void
test_hand_computed(void **state)
{
	const fixture *f = *state;
	const float want[2] = { 0.87867966f, 0.29289322f };
	dt_round *t = hand_round(4, &hand[0][0]);
	fmi_def *d = dt_open1(f->ft, NULL, 0, 2);
	FMT_PASS(dt_apply(d, t));
	assert_int_equal(t->r.nkeep, 1);
	assert_int_equal(t->keep[0], 0);
	assert_int_equal(t->ke[0], 50);
	FMT_NEAR(dt_row(t, 0), want, 2, 1e-6);
	fmi_def_close(d);
	dt_free(t);
}

/* An update opposite to g0 weighs exactly nothing: the result is the one
 * without it; when every update is opposite nothing passes. */
static void
test_opposite_gets_zero_weight(void **state)
{
	const fixture *f = *state;
	const float with[3][2] = { { 2, 0 }, { -5, 0 }, { 1, 1 } };
	const float without[2][2] = { { 2, 0 }, { 1, 1 } };
	dt_round *a = hand_round(3, &with[0][0]);
	dt_round *b = hand_round(2, &without[0][0]);
	fmi_def *d = dt_open1(f->ft, NULL, 0, 2);
	FMT_PASS(dt_apply(d, a));
	FMT_PASS(dt_apply(d, b));
	FMT_NEAR(dt_row(a, 0), dt_row(b, 0), 2, 0);
	assert_int_equal(a->ke[0], 10 + 30);
	const float away[2][2] = { { -1, 0 }, { -2, 1 } };
	dt_round *c = hand_round(2, &away[0][0]);
	fmt_logcap cap;
	dt_quiet(&cap);
	FMT_PASS(dt_apply(d, c));
	dt_loud();
	assert_int_equal(c->r.nkeep, 0);
	assert_true(dt_logged(&cap, "no update earns trust"));
	fmi_def_close(d);
	dt_free(a);
	dt_free(b);
	dt_free(c);
}

static void
test_refuses_without_root_data(void **state)
{
	const fixture *f = *state;
	dt_round *t = hand_round(4, &hand[0][0]);
	t->r.server_delta = NULL;
	fmi_def *d = dt_open1(f->ft, NULL, 0, 2);
	fmt_logcap cap;
	dt_quiet(&cap);
	FMT_FAIL(dt_apply(d, t), FM_EINVAL);
	dt_loud();
	assert_int_equal(t->r.nkeep, 0);
	assert_true(fmt_logcap_find(&cap, "FM-FLTRUST") >= 0);
	assert_true(dt_logged(&cap, "fltrust needs root data on the server: "));
	fmi_def_close(d);
	dt_free(t);
}

/* f rows of 1e6 among honest rows near 1, g0 the honest mean scaled by
 * 0.9: every update is rescaled to ||g0||, so the Byzantine ones (aligned
 * here, so fully trusted) move the result by at most about 2 f ||g0|| / n;
 * flipped ones (-1e6) get no trust at all. */
static void
test_byzantine(void **state)
{
	const fixture *f = *state;
	enum { N = 11, FB = 2, D = 37 };
	float lo[D], hi[D], mean[D], root[D], zero[D] = { 0 };
	for (int flip = 0; flip <= 1; flip++) {
		dt_round *t = dt_new(N, D);
		dt_byzantine(t, FB, 3, lo, hi, mean);
		for (size_t j = 0; j < D; j++) {
			root[j] = 0.9f * mean[j];
			for (uint32_t i = N - FB; flip && i < N; i++) {
				dt_row(t, i)[j] = -1e6f;
			}
		}
		t->r.server_delta = root;
		fmi_def *d = dt_open1(f->ft, NULL, 0, D);
		FMT_PASS(dt_apply(d, t));
		double n0 = dt_dist(root, zero, D);
		double left = dt_dist(dt_row(t, 0), root, D);
		assert_true(left <= 2.0 * FB * n0 / N);
		if (flip) { /* the honest rows rescaled: within 1% of root */
			assert_true(left <= 0.01 * n0);
			assert_int_equal(t->ke[0], N - FB);
		}
		fmi_def_close(d);
		dt_free(t);
	}
}

static void
test_threads_bit_identical(void **state)
{
	const fixture *f = *state;
	enum { N = 12, D = 6007 };
	dt_round *t0 = dt_new(N, D);
	dt_random(t0, 51, -1, 1);
	float *root = malloc(D * sizeof(float)), *ref = malloc(D * 4);
	for (size_t j = 0; j < D; j++) {
		root[j] = dt_row(t0, 0)[j] + dt_row(t0, 1)[j];
	}
	t0->r.server_delta = root;
	for (int th = 1; th <= 4; th++) {
		dt_round *t = dt_clone(t0);
		fmi_def *d = dt_open1(f->ft, "threads", th == 4 ? 0 : th, D);
		FMT_PASS(dt_apply(d, t));
		if (th == 1) {
			memcpy(ref, dt_row(t, 0), D * sizeof(float));
		}
		assert_memory_equal(ref, dt_row(t, 0), D * sizeof(float));
		fmi_def_close(d);
		dt_free(t);
	}
	free(root);
	free(ref);
	dt_free(t0);
}

static void
test_errors(void **state)
{
	const fixture *f = *state;
	fmt_logcap cap;
	fmi_def *d = NULL;
	dt_quiet(&cap);
	FMT_FAIL(dt_try_open(f->ft, NULL, 0, 0, &d), FM_EINVAL);
	dt_loud();
	assert_true(dt_logged(&cap, "fltrust: empty model"));
	d = dt_open1(f->ft, NULL, 0, 2);
	dt_round *t = hand_round(0, &hand[0][0]);
	FMT_PASS(dt_apply(d, t));
	assert_int_equal(t->r.nkeep, 0);
	const float inf[2] = { INFINITY, 0 };
	t->r.server_delta = inf;
	dt_quiet(&cap);
	FMT_FAIL(dt_apply(d, t), FM_EINVAL);
	dt_loud();
	assert_true(dt_logged(&cap, "root-data update is not finite"));
	fmi_def_close(d);
	dt_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_hand_computed),
		cmocka_unit_test(test_opposite_gets_zero_weight),
		cmocka_unit_test(test_refuses_without_root_data),
		cmocka_unit_test(test_byzantine),
		cmocka_unit_test(test_threads_bit_identical),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
