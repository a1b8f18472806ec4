/* SPDX-License-Identifier: MIT */
/* coordinate_test.c: conformance of the built-in coordinate plugin
 * (median, trimmed_mean), loaded as a .so: hand-computed cases, sort-based
 * references on random data, thread independence, Byzantine rows, errors.
 * Timings: plugins/defence/bench/defence_bench.c. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../common/dtest.h"

typedef struct fixture {
	fmi_registry *reg;
	const fmi_component *median, *trimmed;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, "coordinate.so") != FM_OK) {
		return -1;
	}
	f->median = fmi_registry_find(f->reg, FM_KIND_DEFENCE, "median");
	f->trimmed = fmi_registry_find(f->reg, FM_KIND_DEFENCE,
	    "trimmed_mean");
	*state = f;
	return f->median && f->trimmed ? 0 : -1;
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
	const fm_plugin_info *in = f->median->plugin;
	assert_string_equal(in->name, "coordinate");
	assert_int_equal(in->ncomponents, 2);
	assert_true(f->trimmed->plugin == in);
	const fmi_component *c[2] = { f->median, f->trimmed };
	for (int i = 0; i < 2; i++) {
		const fm_defence_ops *ops = c[i]->ops;
		assert_int_equal(ops->base.kind, FM_KIND_DEFENCE);
		assert_ptr_equal(c[i]->ops, c[i]->desc->ops); /* the table is the descriptor's */
	}
	const fm_param_desc *p = f->median->desc->params;
	assert_string_equal(p[0].name, "threads");
	assert_true(p[0].def == 2);
	p = f->trimmed->desc->params;
	assert_string_equal(p[0].name, "beta");
	assert_true(p[0].def == 0.1 && p[0].type == FM_PARAM_REAL);
	assert_string_equal(p[1].name, "threads");
}

/* Runs c (one parameter) on x[n][dim] and checks row 0 against want. */
static void
run_case(const fmi_component *c, const char *p, double v, uint32_t n,
    size_t dim, const float *x, const float *want)
{
	dt_round *t = dt_new(n, dim);
	const uint64_t ex[6] = { 3, 1, 4, 1, 5, 9 };
	dt_set(t, x);
	dt_examples(t, ex);
	fmi_def *d = dt_open1(c, p, v, dim);
	FMT_PASS(dt_apply(d, t));
	dt_assert_row0(t);
	FMT_NEAR(dt_row(t, 0), want, dim, 1e-7);
	fmi_def_close(d);
	dt_free(t);
}

/*
 * Columns (5 rows): { 1, 5, 2, 4, 3 }, { -1, 100, 0, 0, 2 },
 * { 7, 7, 7, 7, -1e6 }:
 *   median           3, 0, 7
 *   trimmed 0.2      cut 1 per side: (2+3+4)/3 = 3, (0+0+2)/3, (7+7+7)/3 = 7
 *   trimmed 0.1      floor(0.5) = 0: plain means 3, 20.2, (28-1e6)/5
 * First 4 rows (even): median = mean of the two middle: (2+4)/2 = 3,
 * (0+0)/2 = 0, 7; trimmed 0.25 cuts 1 per side: the same.
 */
static const float five[5][3] = { { 1, -1, 7 }, { 5, 100, 7 }, { 2, 0, 7 },
	{ 4, 0, 7 }, { 3, 2, -1e6f } };

static void
test_hand_computed(void **state)
{
	const fixture *f = *state;
	const float med5[3] = { 3, 0, 7 }, med4[3] = { 3, 0, 7 };
	const float tr2[3] = { 3, 2.0f / 3, 7 };
	const float tr1[3] = { 3, 20.2f, (float)((28 - 1e6) / 5) };
	const float tr4[3] = { 3, 0, 7 }; /* n 4, beta .25: cut 1 */
	run_case(f->median, NULL, 0, 5, 3, &five[0][0], med5);
	run_case(f->median, NULL, 0, 4, 3, &five[0][0], med4);
	run_case(f->trimmed, "beta", 0.2, 5, 3, &five[0][0], tr2);
	run_case(f->trimmed, NULL, 0, 5, 3, &five[0][0], tr1);
	run_case(f->trimmed, "beta", 0.25, 4, 3, &five[0][0], tr4);
	const float one[3] = { 1, -1, 7 };
	run_case(f->median, NULL, 0, 1, 3, &five[0][0], one);
	run_case(f->trimmed, "beta", 0.49, 1, 3, &five[0][0], one);
}

/* References on a column: sort (qsort), then median / trimmed mean. */
static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

static float
ref_column(const dt_round *t, size_t j, uint32_t cut, int median)
{
	uint32_t n = t->r.n;
	float v[256];
	double s = 0;
	for (uint32_t i = 0; i < n; i++) {
		v[i] = t->buf[(size_t)i * t->r.stride + j];
	}
	qsort(v, n, sizeof v[0], cmp_float);
	if (median) {
		return n % 2 ? v[n / 2] :
		    (float)(((double)v[n / 2 - 1] + v[n / 2]) / 2);
	}
	for (uint32_t i = cut; i < n - cut; i++) {
		s += v[i];
	}
	return (float)(s / (n - 2 * cut));
}

/* median equals the sort-based reference exactly; trimmed_mean to the
 * last bit of float (the sums run in another order). n odd and even, dims
 * around the tile size of 64. */
static void
check_reference(const fixture *f, uint32_t n, size_t dim, double beta,
    uint64_t seed)
{
	dt_round *t = dt_new(n, dim);
	dt_random(t, seed, -10, 10);
	if (n > 3) { /* a few exact duplicates */
		memcpy(dt_row(t, 1), dt_row(t, 2), dim * sizeof(float));
	}
	uint32_t cut = beta > 0 ? (uint32_t)floor(beta * n) : 0;
	float *want = malloc(dim * sizeof(float));
	for (size_t j = 0; j < dim; j++) {
		want[j] = ref_column(t, j, cut, beta < 0);
	}
	fmi_def *d = beta < 0 ? dt_open1(f->median, NULL, 0, dim) :
	    dt_open1(f->trimmed, "beta", beta, dim);
	FMT_PASS(dt_apply(d, t));
	dt_assert_row0(t);
	if (beta < 0) {
		assert_memory_equal(dt_row(t, 0), want, dim * sizeof(float));
	} else {
		FMT_NEAR(dt_row(t, 0), want, dim, 2e-7);
	}
	fmi_def_close(d);
	free(want);
	dt_free(t);
}

static void
test_matches_sort_reference(void **state)
{
	const fixture *f = *state;
	const uint32_t ns[] = { 1, 2, 3, 7, 8, 31, 100, 101 };
	const size_t dims[] = { 1, 63, 65, 1000 };
	for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
		for (size_t b = 0; b < sizeof dims / sizeof dims[0]; b++) {
			uint64_t seed = 100 * a + b;
			check_reference(f, ns[a], dims[b], -1, seed);
			check_reference(f, ns[a], dims[b], 0.1, seed);
			check_reference(f, ns[a], dims[b], 0.3, seed);
		}
	}
}

/* beta = 0 is the unweighted mean (examples ignored). */
static void
test_trimmed_zero_is_mean(void **state)
{
	const fixture *f = *state;
	enum { N = 9, D = 130 };
	dt_round *t = dt_new(N, D);
	dt_random(t, 4, -3, 5);
	const uint64_t ex[N] = { 1, 100, 3, 7, 1000, 2, 2, 9, 50 };
	dt_examples(t, ex);
	float mean[D];
	dt_mean(t, mean);
	fmi_def *d = dt_open1(f->trimmed, "beta", 0, D);
	FMT_PASS(dt_apply(d, t));
	dt_assert_row0(t);
	FMT_NEAR(dt_row(t, 0), mean, D, 1e-7);
	fmi_def_close(d);
	dt_free(t);
}

/* 1, 2, 3 threads and "one per CPU": bit-identical results. */
static void
test_threads_bit_identical(void **state)
{
	const fixture *f = *state;
	enum { N = 24, D = 10007 };
	dt_round *t0 = dt_new(N, D);
	dt_random(t0, 21, -1, 1);
	float *ref = malloc(D * sizeof(float));
	const fmi_component *c[2] = { f->median, f->trimmed };
	for (int k = 0; k < 2; k++) {
		for (int th = 1; th <= 4; th++) {
			dt_round *t = dt_clone(t0);
			fmi_def *d = dt_open1(c[k], "threads", th == 4 ? 0 : th,
			    D);
			FMT_PASS(dt_apply(d, t));
			if (th == 1) {
				memcpy(ref, dt_row(t, 0), D * sizeof(float));
			}
			assert_memory_equal(ref, dt_row(t, 0),
			    D * sizeof(float));
			fmi_def_close(d);
			dt_free(t);
		}
	}
	free(ref);
	dt_free(t0);
}

/* f rows of 1e6 (or NaN) among honest rows near 1: every coordinate stays
 * in the honest range; the plain mean does not. */
static void
test_byzantine(void **state)
{
	const fixture *f = *state;
	enum { N = 11, FB = 2, D = 37 };
	float lo[D], hi[D], mean[D], avg[D];
	for (int nan = 0; nan <= 1; nan++) {
		for (int k = 0; k < 2; k++) {
			dt_round *t = dt_new(N, D);
			dt_byzantine(t, FB, 8, lo, hi, mean);
			if (nan) {
				dt_row(t, N - 1)[3] = NAN;
			}
			dt_mean(t, avg);
			assert_true(dt_outside(avg, lo, hi, D) < D);
			fmi_def *d = k == 0 ? dt_open1(f->median, NULL, 0, D) :
			    dt_open1(f->trimmed, "beta", 0.2, D); /* cut 2 */
			FMT_PASS(dt_apply(d, t));
			dt_assert_row0(t);
			assert_true(dt_within(dt_row(t, 0), lo, hi, D));
			fmi_def_close(d);
			dt_free(t);
		}
	}
}

static void
test_errors(void **state)
{
	const fixture *f = *state;
	fmt_logcap cap;
	fmi_def *d = NULL;
	const fmi_param_in half = { "beta", 0, 0.5, NULL };
	const fmi_param_in more = { "beta", 0, 0.6, NULL };
	dt_quiet(&cap);
	FMT_FAIL(dt_try_open(f->trimmed, &half, 1, 4, &d), FM_EINVAL);
	FMT_FAIL(dt_try_open(f->trimmed, &more, 1, 4, &d), FM_EINVAL);
	FMT_FAIL(dt_try_open(f->median, NULL, 0, 0, &d), FM_EINVAL);
	dt_loud();
	assert_null(d);
	assert_true(dt_logged(&cap, "'beta' = 0.5 must be in [0, 0.5)"));
	assert_true(dt_logged(&cap, "median: empty model"));
	/* empty rounds pass nothing; a wrong size fails */
	d = dt_open1(f->median, NULL, 0, 4);
	dt_round *t = dt_new(0, 4);
	FMT_PASS(dt_apply(d, t));
	assert_int_equal(t->r.nkeep, 0);
	dt_free(t);
	t = dt_new(3, 5);
	dt_quiet(&cap);
	FMT_FAIL(dt_apply(d, t), FM_EINVAL);
	dt_loud();
	assert_true(dt_logged(&cap, "updates have 5 parameters, the model 4"));
	fmi_def_close(d);
	dt_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_hand_computed),
		cmocka_unit_test(test_matches_sort_reference),
		cmocka_unit_test(test_trimmed_zero_is_mean),
		cmocka_unit_test(test_threads_bit_identical),
		cmocka_unit_test(test_byzantine),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
