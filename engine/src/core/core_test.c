/* SPDX-License-Identifier: MIT */
/* core_test.c: errors, RNG streams and distributions, kernels, helpers. */
#include "fm_test.h"

#include "core/core.h"

static void
test_strerror(void **state)
{
	(void)state;
	for (int c = FM_OK; c <= FM_ERANGE; c++) {
		const char *s = fm_strerror(c);
		assert_non_null(s);
		assert_null(strstr(s, "Unknown"));
	}
	assert_non_null(strstr(fm_strerror(4242), "Unknown error #4242"));
	assert_string_equal(fm_strerror(FM_ESYSERR | 2), strerror(2));
	fm_error e;
	assert_int_equal(fm_error_set(&e, FM_EINVAL, "bad %d", 7), FM_EINVAL);
	assert_string_equal(e.msg, "bad 7");
	assert_int_equal(fm_error_set(NULL, FM_EIO, "x"), FM_EIO);
}

static void
test_rng_streams(void **state)
{
	(void)state;
	fm_rng a, b, c;
	fmi_rng_seed(&a, 42, 1);
	fmi_rng_seed(&b, 42, 1);
	fmi_rng_seed(&c, 42, 2);
	int same_ac = 1;
	for (int i = 0; i < 100; i++) {
		uint64_t x = fmi_rng_u64(&a), y = fmi_rng_u64(&b);
		assert_true(x == y);
		same_ac &= x == fmi_rng_u64(&c);
	}
	assert_false(same_ac);
}

static void
test_rng_distributions(void **state)
{
	(void)state;
	fm_rng r;
	fmi_rng_seed(&r, 7, 0);
	double su = 0, sn = 0, sn2 = 0, sg = 0;
	const int n = 200000;
	for (int i = 0; i < n; i++) {
		double u = fmi_rng_uniform(&r);
		assert_true(u >= 0 && u < 1);
		su += u;
		double z = fmi_rng_normal(&r);
		sn += z;
		sn2 += z * z;
		sg += fmi_rng_gamma(&r, 0.5);
	}
	assert_true(fabs(su / n - 0.5) < 0.01);
	assert_true(fabs(sn / n) < 0.01);
	assert_true(fabs(sn2 / n - 1.0) < 0.02);
	assert_true(fabs(sg / n - 0.5) < 0.02); /* Gamma(k,1) mean k */
	int counts[7] = { 0 };
	for (int i = 0; i < 70000; i++) {
		uint64_t v = fmi_rng_below(&r, 7);
		assert_true(v < 7);
		counts[v]++;
	}
	for (int i = 0; i < 7; i++) {
		assert_true(abs(counts[i] - 10000) < 500);
	}
}

static void
test_shuffle_is_permutation(void **state)
{
	(void)state;
	uint32_t a[1000];
	int seen[1000] = { 0 };
	for (uint32_t i = 0; i < 1000; i++) {
		a[i] = i;
	}
	fm_rng r;
	fmi_rng_seed(&r, 1, 0);
	fmi_rng_shuffle_u32(&r, a, 1000);
	int moved = 0;
	for (uint32_t i = 0; i < 1000; i++) {
		seen[a[i]]++;
		moved += a[i] != i;
	}
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(seen[i], 1);
	}
	assert_true(moved > 900);
}

static void
fill(float *x, size_t n, fm_rng *r)
{
	for (size_t i = 0; i < n; i++) {
		x[i] = (float)fmi_rng_normal(r);
	}
}

static void
test_gemm_matches_reference(void **state)
{
	(void)state;
	fm_rng r;
	fmi_rng_seed(&r, 3, 0);
	enum { M = 13, N = 7, K = 11 };
	float a[M * K], b[K * N], c1[M * N], c2[M * N];
	fill(a, M * K, &r);
	fill(b, K * N, &r);
	for (int ta = 0; ta < 2; ta++) {
		for (int tb = 0; tb < 2; tb++) {
			fill(c1, M * N, &r);
			memcpy(c2, c1, sizeof c1);
			size_t lda = ta ? M : K, ldb = tb ? K : N;
			fmi_gemm(ta, tb, M, N, K, 0.5f, a, lda, b, ldb, 2.0f, c1, N);
			fmi_gemm_ref(ta, tb, M, N, K, 0.5f, a, lda, b, ldb, 2.0f,
			    c2, N);
			FMT_NEAR(c1, c2, M * N, 1e-5);
		}
	}
	float x[5] = { 1, 2, 3, 4, 5 }, y[5] = { 1, 1, 1, 1, 1 };
	fmi_axpy(5, 2.0f, x, y);
	assert_true(y[4] == 11.0f);
	fmi_scal(5, 0.5f, y);
	assert_true(y[0] == 1.5f);
	assert_true(fabs(fmi_dot(5, x, x) - 55.0) < 1e-9);
	assert_true(fabs(fmi_nrm2(5, x) - sqrt(55.0)) < 1e-6);
}

static void
test_all_finite(void **state)
{
	(void)state;
	float x[4] = { 1, -2, 3e30f, 0 };
	assert_true(fmi_all_finite(x, 4));
	x[2] = INFINITY;
	assert_false(fmi_all_finite(x, 4));
	x[2] = NAN;
	assert_false(fmi_all_finite(x, 4));
}

static void
test_closest(void **state)
{
	(void)state;
	const char *const names[] = { "rounds", "seed", "model", NULL };
	assert_string_equal(fmi_closest("roundz", names), "rounds");
	assert_string_equal(fmi_closest("sed", names), "seed");
	assert_null(fmi_closest("completely_else", names));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_rng_streams),
		cmocka_unit_test(test_rng_distributions),
		cmocka_unit_test(test_shuffle_is_permutation),
		cmocka_unit_test(test_gemm_matches_reference),
		cmocka_unit_test(test_all_finite),
		cmocka_unit_test(test_closest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
