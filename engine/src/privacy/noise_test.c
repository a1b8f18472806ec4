/* SPDX-License-Identifier: MIT */
/*
 * noise_test.c: the exact discrete-Gaussian sampler (Canonne, Kamath,
 * Steinke 2020) on a deterministic source, its Bernoulli(exp(-g)) draws,
 * the grid of the secure path, and fmi_dp_noise_add on both paths. The
 * statistical bounds are about 5 standard deviations of each estimator;
 * the source is seeded, so a pass is reproducible, not luck.
 */
#include "fm_test.h"

#include "core/core.h"
#include "privacy/noise.h"
#include "privacy/privacy_int.h"

typedef unsigned __int128 u128;

static uint64_t
splitmix64(void *ctx)
{
	uint64_t *s = ctx;
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		if (!(cond)) {                                              \
			print_error(__VA_ARGS__);                           \
			fail();                                             \
		}                                                           \
	} while (0)

/* ---- the discrete Gaussian ------------------------------------------------- */

/* mean and variance of n samples at s2 against 0 and the exact variance
 * (which is below s2 by less than 1e-8 relative for s2 >= 1) */
static void
moments(uint64_t seed, uint64_t s2, size_t n)
{
	fmi_rand_src r = { splitmix64, &seed };
	double sum = 0, sq = 0;
	for (size_t i = 0; i < n; i++) {
		double z = (double)fmi_dgauss_sample(&r, s2);
		sum += z;
		sq += z * z;
	}
	double ds2 = (double)s2, mean = sum / (double)n;
	double var = sq / (double)n - mean * mean;
	/* sd(mean) = sqrt(s2 / n); sd(var) = s2 sqrt(2 / n) (kurtosis 3) */
	double tm = 5 * sqrt(ds2 / (double)n), tv = 5 * ds2 * sqrt(2.0 /
	    (double)n);
	print_message("s2 = %llu, %zu samples: mean %.5g (+- %.3g), variance "
	    "%.6g (+- %.3g)\n", (unsigned long long)s2, n, mean, tm, var, tv);
	CHECK(fabs(mean) <= tm, "mean %g\n", mean);
	CHECK(fabs(var - ds2) <= tv, "variance %g, want %g\n", var, ds2);
}

static void
test_dgauss_moments(void **state)
{
	(void)state;
	moments(1, 4, 200000);
	moments(2, 100, 200000);
	moments(3, 12345, 100000);
	/* the secure path's range: s2 in [2^50, 2^52], 128-bit products */
	moments(4, (uint64_t)1 << 50, 20000);
	moments(5, ((uint64_t)1 << 52) - 1, 20000);
	moments(6, (uint64_t)1 << 52, 20000);
}

static void
test_dgauss_pmf(void **state)
{
	(void)state;
	enum { N = 200000 };
	uint64_t seed = 77;
	fmi_rand_src r = { splitmix64, &seed };
	/* s2 = 1: P(z) = e^{-z^2/2} / sum_k e^{-k^2/2} */
	double zsum = 0;
	for (int k = -40; k <= 40; k++) {
		zsum += exp(-0.5 * k * k);
	}
	long cnt[8] = { 0 }; /* -3..3, then |z| >= 4 */
	for (int i = 0; i < N; i++) {
		int64_t z = fmi_dgauss_sample(&r, 1);
		cnt[z >= -3 && z <= 3 ? z + 3 : 7]++;
	}
	double chi2 = 0, ptail = 1;
	for (int k = -3; k <= 3; k++) {
		double p = exp(-0.5 * k * k) / zsum;
		double e = N * p, o = (double)cnt[k + 3];
		ptail -= p;
		chi2 += (o - e) * (o - e) / e;
		print_message("P(%+d) = %.6f, observed %.6f\n", k, p, o / N);
		CHECK(fabs(o - e) <= 5 * sqrt(e * (1 - p)), "count of %d: %g, "
		    "want %g\n", k, o, e);
	}
	double et = N * ptail; /* about 13 */
	chi2 += ((double)cnt[7] - et) * ((double)cnt[7] - et) / et;
	print_message("chi2 = %.2f (7 degrees of freedom; 1e-4 quantile "
	    "29.9); |z| >= 4: %ld, want %.1f\n", chi2, cnt[7], et);
	CHECK(chi2 < 29.9, "chi2 %g\n", chi2);
	/* symmetric */
	CHECK(labs(cnt[0] - cnt[6]) <= 5 * sqrt((double)(cnt[0] + cnt[6])),
	    "-3 vs 3\n");
	CHECK(labs(cnt[2] - cnt[4]) <= 5 * sqrt((double)(cnt[2] + cnt[4])),
	    "-1 vs 1\n");
	/* the same source gives the same samples */
	uint64_t s1 = 5, s2 = 5;
	fmi_rand_src r1 = { splitmix64, &s1 }, r2 = { splitmix64, &s2 };
	for (int i = 0; i < 1000; i++) {
		assert_true(fmi_dgauss_sample(&r1, 100) ==
		    fmi_dgauss_sample(&r2, 100));
	}
}

static void
test_bern_exp(void **state)
{
	(void)state;
	enum { N = 100000 };
	uint64_t seed = 9;
	fmi_rand_src r = { splitmix64, &seed };
	static const struct {
		uint64_t num, den;
	} c[] = { { 1, 2 }, { 1, 1 }, { 3, 2 }, { 7, 3 }, { 5, 1 }, { 1, 1000 },
		{ 999, 1000 } };
	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		double p = exp(-(double)c[i].num / (double)c[i].den);
		long k = 0;
		for (int j = 0; j < N; j++) {
			k += fmi_bern_exp(&r, c[i].num, c[i].den);
		}
		double f = (double)k / N, t = 5 * sqrt(p * (1 - p) / N);
		print_message("Bernoulli(exp(-%llu/%llu) = %.5f): %.5f\n",
		    (unsigned long long)c[i].num,
		    (unsigned long long)c[i].den, p, f);
		CHECK(fabs(f - p) <= t, "frequency %g, want %g +- %g\n", f, p,
		    t);
	}
	/* 128-bit fractions as the acceptance step uses: exp(-1/3) */
	u128 den = (u128)3 << 100;
	long k = 0;
	for (int j = 0; j < N; j++) {
		k += fmi_bern_exp(&r, (u128)1 << 100, den);
	}
	double p = exp(-1.0 / 3), f = (double)k / N;
	CHECK(fabs(f - p) <= 5 * sqrt(p * (1 - p) / N), "2^100: %g\n", f);
	/* exp(0) = 1, exp(-40) never in 1e5 draws */
	for (int j = 0; j < 1000; j++) {
		assert_int_equal(fmi_bern_exp(&r, 0, 1), 1);
		assert_int_equal(fmi_bern_exp(&r, 0, den), 1);
	}
	k = 0;
	for (int j = 0; j < N; j++) {
		k += fmi_bern_exp(&r, 40, 1);
	}
	assert_int_equal(k, 0);
}

/* ---- the grid of the secure path -------------------------------------------- */

static void
check_grid(double std)
{
	double gamma;
	uint64_t s2;
	fmi_dgauss_grid(std, &gamma, &s2);
	int e;
	CHECK(frexp(gamma, &e) == 0.5, "std %a: gamma %a is not a power of "
	    "two\n", std, gamma);
	CHECK(s2 >= (uint64_t)1 << 50 && s2 <= (uint64_t)1 << 52, "std %a: "
	    "s2 %llu\n", std, (unsigned long long)s2);
	/* t = std / gamma is exact (a power-of-two scaling) and in
	 * [2^25, 2^26); M = t 2^27 is an integer below 2^53, so the
	 * inequalities hold exactly in 128 bits:
	 * gamma^2 s2 >= std^2 > gamma^2 (s2 - 1)
	 * <=> s2 2^54 >= M^2 > (s2 - 1) 2^54 */
	double t = std / gamma;
	CHECK(t >= 0x1p25 && t < 0x1p26, "std %a: std / gamma = %a\n", std, t);
	double md = ldexp(t, 27);
	CHECK(md == floor(md), "std %a: not exact\n", std);
	u128 m = (u128)(uint64_t)md, m2 = m * m;
	CHECK((u128)s2 << 54 >= m2, "std %a: gamma^2 s2 < std^2\n", std);
	CHECK((u128)(s2 - 1) << 54 < m2, "std %a: s2 not minimal\n", std);
}

static void
test_dgauss_grid(void **state)
{
	(void)state;
	static const double fixed[] = { 1, 0.5, 0.75, 2, 3, 0.1, 1e-3, 1.1,
		0x1.fffffffffffffp0, 0x1.0000000000001p0, 0x1p-900, 1e-250,
		1e300, 0x1.fffffffffffffp1023, 0x1p-1022 };
	for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
		check_grid(fixed[i]);
	}
	/* the extremes of s2: 2^50 exactly at a power of two, 2^52 just
	 * below the next */
	double gamma;
	uint64_t s2;
	fmi_dgauss_grid(4.0, &gamma, &s2);
	assert_true(s2 == (uint64_t)1 << 50 && gamma == 0x1p-23);
	fmi_dgauss_grid(0x1.fffffffffffffp1, &gamma, &s2);
	assert_true(s2 == (uint64_t)1 << 52 && gamma == 0x1p-24);
	uint64_t seed = 3;
	for (int i = 0; i < 100000; i++) {
		uint64_t u = splitmix64(&seed);
		/* a random double in [2^-60, 2^60) with a random mantissa */
		double std = ldexp(1.0 + (double)(u >> 11) * 0x1p-53,
		    (int)(u % 120) - 60);
		check_grid(std);
	}
}

/* ---- fmi_dp_noise_add ---------------------------------------------------- */

/* sample mean and std of out - in */
static void
noise_stats(const float *out, const float *in, size_t n, double *mean,
    double *sd)
{
	double s = 0, ss = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)out[i] - (in ? (double)in[i] : 0);
		s += d;
		ss += d * d;
	}
	*mean = s / (double)n;
	*sd = sqrt(ss / (double)n - *mean * *mean);
}

static void
test_noise_secure(void **state)
{
	(void)state;
	enum { N = 100000 };
	float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
	float *x = malloc(N * sizeof *x);
	assert_true(a && b && x);
	fm_error err;
	static const double stds[] = { 1.0, 0.7, 3e-3, 250 };
	for (size_t k = 0; k < 4; k++) {
		double std = stds[k], gamma, mean, sd;
		uint64_t s2;
		fmi_dgauss_grid(std, &gamma, &s2);
		for (size_t i = 0; i < N; i++) {
			/* inputs off and on the grid, both signs */
			x[i] = (float)(std * (((double)i / N) - 0.5) * 7.3);
		}
		memcpy(a, x, N * sizeof *a);
		memcpy(b, x, N * sizeof *b);
		FMT_PASS(fmi_dp_noise_add(a, N, std, NULL, &err));
		FMT_PASS(fmi_dp_noise_add(b, N, std, NULL, &err));
		noise_stats(a, x, N, &mean, &sd);
		print_message("secure std %g: noise mean %.3g, std %.6g "
		    "(gamma %a, s2 %llu)\n", std, mean, sd, gamma,
		    (unsigned long long)s2);
		/* sd's own sd is std / sqrt(2 N) = 0.22 %; the float rounding
		 * of the outputs adds less than 2^-24 relative */
		CHECK(fabs(sd - std) <= 0.02 * std, "std %g\n", sd);
		CHECK(fabs(sd - std) <= 0.012 * std, "std %g (5 sigma)\n", sd);
		CHECK(fabs(mean) <= 5 * std / sqrt(N), "mean %g\n", mean);
		size_t same = 0;
		for (size_t i = 0; i < N; i++) {
			double g = (double)a[i] / gamma;
			CHECK(g == floor(g), "value %zu = %a is off the grid of "
			    "%a\n", i, (double)a[i], gamma);
			CHECK(isfinite(a[i]), "value %zu\n", i);
			same += a[i] == b[i];
		}
		/* two calls draw independent noise: equal values only by
		 * chance (|a - b| / gamma ~ 2^25.5, about 1 in 10^7 each) */
		CHECK(same <= 10, "%zu of %d values equal in two calls\n", same,
		    N);
	}
	/* zeros in: the noise itself; std 0 and n 0 leave x alone */
	memset(a, 0, N * sizeof *a);
	FMT_PASS(fmi_dp_noise_add(a, N, 2.0, NULL, &err));
	double mean, sd;
	noise_stats(a, NULL, N, &mean, &sd);
	CHECK(fabs(sd - 2.0) <= 0.02 * 2.0, "std %g\n", sd);
	memcpy(b, a, N * sizeof *a);
	FMT_PASS(fmi_dp_noise_add(a, N, 0, NULL, &err));
	assert_memory_equal(a, b, N * sizeof *a);
	FMT_PASS(fmi_dp_noise_add(NULL, 0, 1, NULL, &err));
	/* the bound on |x| / std: 2^35 std is accepted */
	float big = (float)ldexp(1.0, 35);
	FMT_PASS(fmi_dp_noise_add(&big, 1, 1.0, NULL, &err));
	assert_true(isfinite(big) && fabs(big - ldexp(1.0, 35)) < 1e4);
	free(a);
	free(b);
	free(x);
}

static void
test_noise_seeded(void **state)
{
	(void)state;
	enum { N = 100000 };
	float *a = calloc(N, sizeof *a), *b = calloc(N, sizeof *b);
	assert_true(a && b);
	fm_error err;
	fm_rng r1, r2;
	fmi_rng_seed(&r1, 42, 7);
	fmi_rng_seed(&r2, 42, 7);
	FMT_PASS(fmi_dp_noise_add(a, N, 0.5, &r1, &err));
	FMT_PASS(fmi_dp_noise_add(b, N, 0.5, &r2, &err));
	assert_memory_equal(a, b, N * sizeof *a);
	double mean, sd;
	noise_stats(a, NULL, N, &mean, &sd);
	CHECK(fabs(sd - 0.5) <= 0.02 * 0.5, "std %g\n", sd);
	CHECK(fabs(mean) <= 5 * 0.5 / sqrt(N), "mean %g\n", mean);
	/* the stream goes on; another seed differs */
	FMT_PASS(fmi_dp_noise_add(b, N, 0.5, &r2, &err));
	assert_true(memcmp(a, b, N * sizeof *a) != 0);
	memset(a, 0, N * sizeof *a);
	memset(b, 0, N * sizeof *b);
	fmi_rng_seed(&r1, 42, 7);
	fmi_rng_seed(&r2, 43, 7);
	FMT_PASS(fmi_dp_noise_add(a, N, 0.5, &r1, &err));
	FMT_PASS(fmi_dp_noise_add(b, N, 0.5, &r2, &err));
	assert_true(memcmp(a, b, N * sizeof *a) != 0);
	free(a);
	free(b);
}

static void
test_noise_errors(void **state)
{
	(void)state;
	enum { N = 64 };
	float x[N], keep[N];
	for (int i = 0; i < N; i++) {
		x[i] = (float)i * 0.25f - 3;
	}
	memcpy(keep, x, sizeof x);
	fm_error err;
	fm_rng rng;
	fmi_rng_seed(&rng, 1, 0);
	for (int seeded = 0; seeded <= 1; seeded++) {
		fm_rng *r = seeded ? &rng : NULL;
		static const double bad[] = { -1, -1e-300, NAN, INFINITY,
			-INFINITY };
		for (size_t i = 0; i < 5; i++) {
			FMT_FAIL(fmi_dp_noise_add(x, N, bad[i], r, &err),
			    FM_EINVAL);
			assert_non_null(strstr(err.msg, "std"));
			assert_memory_equal(x, keep, sizeof x);
		}
		static const float badx[] = { NAN, INFINITY, -INFINITY };
		for (size_t i = 0; i < 3; i++) {
			x[N - 1] = badx[i];
			memcpy(keep, x, sizeof x);
			FMT_FAIL(fmi_dp_noise_add(x, N, 1, r, &err), FM_ERANGE);
			assert_non_null(strstr(err.msg, "value 63"));
			assert_memory_equal(x, keep, sizeof x);
			x[N - 1] = 1;
			memcpy(keep, x, sizeof x);
		}
		FMT_FAIL(fmi_dp_noise_add(NULL, 3, 1, r, &err), FM_EINVAL);
		assert_non_null(strstr(err.msg, "NULL"));
	}
	/* secure path: |x| / std at or above 2^37 is refused; the check
	 * runs before any value changes */
	x[N - 1] = 1e12f;
	memcpy(keep, x, sizeof x);
	FMT_FAIL(fmi_dp_noise_add(x, N, 1e-3, NULL, &err), FM_ERANGE);
	assert_non_null(strstr(err.msg, "value 63"));
	assert_non_null(strstr(err.msg, "2^36"));
	assert_memory_equal(x, keep, sizeof x);
	/* the seeded path has no grid: the same call is fine there */
	FMT_PASS(fmi_dp_noise_add(x, N, 1e-3, &rng, &err));
	/* a std below the grid's range */
	memcpy(x, keep, sizeof x);
	x[N - 1] = 0;
	memcpy(keep, x, sizeof x);
	FMT_FAIL(fmi_dp_noise_add(x, N, 0x1p-901, NULL, &err), FM_ERANGE);
	assert_non_null(strstr(err.msg, "std"));
	assert_memory_equal(x, keep, sizeof x);
}

static void
test_noise_throughput(void **state)
{
	(void)state;
	enum { N = 1000000 };
	float *x = calloc(N, sizeof *x);
	assert_non_null(x);
	fm_error err;
	double t = fmi_now();
	FMT_PASS(fmi_dp_noise_add(x, N, 1.0, NULL, &err));
	t = fmi_now() - t;
	print_message("secure discrete-Gaussian noise: %d values in %.3f s, "
	    "%.3g values/s\n", N, t, N / t);
	memset(x, 0, N * sizeof *x);
	fm_rng r;
	fmi_rng_seed(&r, 1, 0);
	double t2 = fmi_now();
	FMT_PASS(fmi_dp_noise_add(x, N, 1.0, &r, &err));
	t2 = fmi_now() - t2;
	print_message("seeded Box-Muller noise: %d values in %.3f s, %.3g "
	    "values/s\n", N, t2, N / t2);
	free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dgauss_moments),
		cmocka_unit_test(test_dgauss_pmf),
		cmocka_unit_test(test_bern_exp),
		cmocka_unit_test(test_dgauss_grid),
		cmocka_unit_test(test_noise_secure),
		cmocka_unit_test(test_noise_seeded),
		cmocka_unit_test(test_noise_errors),
		cmocka_unit_test(test_noise_throughput),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
