/* SPDX-License-Identifier: MIT */
/* geomedian_test.c: conformance of the built-in geomedian plugin (RFA,
 * smoothed Weiszfeld), loaded as a .so: known geometric medians of
 * symmetric configurations, weights, Byzantine rows, non-finite rows,
 * thread independence, errors. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../common/dtest.h"

typedef struct fixture {
	fmi_registry *reg;
	const fmi_component *gm;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, "geomedian.so") != FM_OK) {
		return -1;
	}
	f->gm = fmi_registry_find(f->reg, FM_KIND_DEFENCE, "geomedian");
	*state = f;
	return f->gm != NULL ? 0 : -1;
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
	const fm_plugin_info *in = f->gm->plugin;
	assert_string_equal(in->name, "geomedian");
	assert_int_equal(in->ncomponents, 1);
	assert_int_equal(((const fm_defence_ops *)f->gm->ops)->base.kind,
	    FM_KIND_DEFENCE);
	const fm_param_desc *p = f->gm->desc->params;
	assert_int_equal(fmi_component_nparams(f->gm), 4);
	assert_string_equal(p[0].name, "nu");
	assert_true(p[0].def == 1e-5);
	assert_string_equal(p[1].name, "iters");
	assert_true(p[1].def == 10);
	assert_string_equal(p[2].name, "ftol");
	assert_true(p[2].def == 1e-6);
	assert_string_equal(p[3].name, "threads");
	assert_true(p[3].def == 2);
}

/* Runs geomedian (iters, ftol; iters < 0: defaults) on x[n][2] with the
 * given examples; returns row 0 in out[2]. */
static void
gm2(const fixture *f, int iters, double ftol, uint32_t n, const float *x,
    const uint64_t *ex, float *out)
{
	const fmi_param_in in[2] = { { "iters", 0, iters, NULL },
		{ "ftol", 0, ftol, NULL } };
	dt_round *t = dt_new(n, 2);
	dt_set(t, x);
	if (ex != NULL) {
		dt_examples(t, ex);
	}
	fmi_def *d = dt_open(f->gm, in, iters < 0 ? 0 : 2, 2);
	FMT_PASS(dt_apply(d, t));
	dt_assert_row0(t);
	memcpy(out, dt_row(t, 0), 2 * sizeof(float));
	fmi_def_close(d);
	dt_free(t);
}

/*
 * The Fermat point of the isosceles triangle (0, 1), (-1, 0), (1, 0) sees
 * every side under 120 degrees: (0, 1/sqrt(3)), while the mean is
 * (0, 1/3). Run long, Weiszfeld converges to it; with the defaults (10
 * iterations) it is at (0, 0.574125) (RFA's iteration in double, by a few
 * lines of Python). An obtuse apex (152 degrees) is its own geometric
 * median. Four corners of a square: the center, from the first step.
 */
static void
test_symmetric_configurations(void **state)
{
	const fixture *f = *state;
	const float tri[3][2] = { { 0, 1 }, { -1, 0 }, { 1, 0 } };
	const float obtuse[3][2] = { { 0, 0 }, { -2, -0.5f }, { 2, -0.5f } };
	const float square[4][2] = { { 1, 1 }, { -1, 1 }, { 1, -1 },
		{ -1, -1 } };
	const float fermat[2] = { 0, 0.57735027f }, ten[2] = { 0, 0.5741253f };
	const float apex[2] = { 0, 0 };
	float v[2];
	gm2(f, 200, 0, 3, &tri[0][0], NULL, v);
	FMT_NEAR(v, fermat, 2, 1e-5);
	gm2(f, -1, 0, 3, &tri[0][0], NULL, v);
	FMT_NEAR(v, ten, 2, 1e-5);
	gm2(f, 200, 0, 3, &obtuse[0][0], NULL, v);
	FMT_NEAR(v, apex, 2, 1e-4);
	gm2(f, -1, 0, 4, &square[0][0], NULL, v);
	assert_true(v[0] == 0 && v[1] == 0);
}

/* alpha = num_examples: of two points, the heavier is the geometric
 * median (the mean is a quarter of the way); iters 0 is the weighted mean. */
static void
test_weights(void **state)
{
	const fixture *f = *state;
	const float two[2][2] = { { 0, 0 }, { 4, 0 } };
	const uint64_t ex[2] = { 3, 1 };
	const float heavy[2] = { 0, 0 }, mean[2] = { 1, 0 };
	float v[2];
	gm2(f, -1, 0, 2, &two[0][0], ex, v);
	FMT_NEAR(v, heavy, 2, 1e-4);
	gm2(f, 0, 0, 2, &two[0][0], ex, v);
	FMT_NEAR(v, mean, 2, 1e-7);
	const uint64_t none[2] = { 0, 0 }; /* no examples: uniform */
	const float mid[2] = { 2, 0 };
	gm2(f, 0, 0, 2, &two[0][0], none, v);
	FMT_NEAR(v, mid, 2, 1e-7);
}

/*
 * f rows of 1e6 among honest rows near 1: from the mean, each iteration
 * shrinks the pull by about f / (n - f), so the defaults (10 iterations,
 * or fewer when ftol stops them) leave less than a millionth of the
 * mean's displacement; run to convergence, the result is within the
 * honest cloud, and inside the honest range in every coordinate.
 */
static void
test_byzantine(void **state)
{
	const fixture *f = *state;
	enum { N = 11, FB = 2, D = 37 };
	float lo[D], hi[D], mean[D], avg[D];
	for (int iters = -1; iters <= 50; iters += 51) {
		const fmi_param_in in[2] = { { "iters", 0, iters, NULL },
			{ "ftol", 0, 0, NULL } };
		dt_round *t = dt_new(N, D);
		dt_byzantine(t, FB, 5, lo, hi, mean);
		dt_mean(t, avg);
		double attack = dt_dist(avg, mean, D), radius = INFINITY;
		for (uint32_t i = 0; i < N - FB; i++) {
			double r = dt_dist(dt_row(t, i), mean, D);
			radius = r < radius ? r : radius;
		}
		fmi_def *d = dt_open(f->gm, in, iters < 0 ? 0 : 2, D);
		FMT_PASS(dt_apply(d, t));
		dt_assert_row0(t);
		double left = dt_dist(dt_row(t, 0), mean, D);
		print_message("geomedian iters %d: %g from the honest mean "
		    "(attack %g, honest radius >= %g)\n", iters, left, attack,
		    radius);
		assert_true(left < 1e-6 * attack);
		if (iters > 0) {
			assert_true(left < radius);
			assert_true(dt_within(dt_row(t, 0), lo, hi, D));
		}
		fmi_def_close(d);
		dt_free(t);
	}
}

/* A NaN row is left out: the same result as without it. */
static void
test_non_finite_row(void **state)
{
	const fixture *f = *state;
	enum { N = 6, D = 50 };
	dt_round *a = dt_new(N, D), *b = dt_new(N - 1, D);
	dt_random(a, 12, -1, 1);
	for (uint32_t i = 0; i < N - 1; i++) {
		memcpy(dt_row(b, i), dt_row(a, i + 1), D * sizeof(float));
	}
	dt_row(a, 0)[7] = NAN;
	fmi_def *d = dt_open1(f->gm, NULL, 0, D);
	FMT_PASS(dt_apply(d, a));
	FMT_PASS(dt_apply(d, b));
	assert_memory_equal(dt_row(a, 0), dt_row(b, 0), D * sizeof(float));
	for (uint32_t i = 0; i < N; i++) { /* all non-finite: refused */
		dt_row(a, i)[0] = INFINITY;
	}
	fmt_logcap cap;
	dt_quiet(&cap);
	FMT_FAIL(dt_apply(d, a), FM_ERANGE);
	dt_loud();
	assert_true(dt_logged(&cap, "no update is finite"));
	fmi_def_close(d);
	dt_free(a);
	dt_free(b);
}

static void
test_threads_bit_identical(void **state)
{
	const fixture *f = *state;
	enum { N = 13, D = 6007 }; /* enough work to split */
	dt_round *t0 = dt_new(N, D);
	dt_random(t0, 31, -1, 1);
	float *ref = malloc(D * sizeof(float));
	for (int th = 1; th <= 4; th++) {
		dt_round *t = dt_clone(t0);
		fmi_def *d = dt_open1(f->gm, "threads", th == 4 ? 0 : th, D);
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
	dt_quiet(&cap);
	FMT_FAIL(dt_try_open(f->gm, NULL, 0, 0, &d), FM_EINVAL);
	dt_loud();
	assert_true(dt_logged(&cap, "geomedian: empty model"));
	d = dt_open1(f->gm, NULL, 0, 3);
	dt_round *t = dt_new(0, 3);
	FMT_PASS(dt_apply(d, t));
	assert_int_equal(t->r.nkeep, 0);
	fmi_def_close(d);
	dt_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_symmetric_configurations),
		cmocka_unit_test(test_weights),
		cmocka_unit_test(test_byzantine),
		cmocka_unit_test(test_non_finite_row),
		cmocka_unit_test(test_threads_bit_identical),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
