/* SPDX-License-Identifier: MIT */
/* rng.c: seeded xoshiro256** streams; normal, gamma, shuffles. */
#include <math.h>

#include "core/core.h"

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t
fmi_hash64(uint64_t x)
{
	return splitmix64(&x);
}

void
fmi_rng_seed(fm_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ fmi_hash64(stream + 0x632be59bd9b4e019ULL);
	for (int i = 0; i < 4; i++) {
		r->s[i] = splitmix64(&x);
	}
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t
next(fm_rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

uint64_t
fmi_rng_u64(fm_rng *r)
{
	return next(r);
}

void
fmi_rng_fill_u64(fm_rng *r, uint64_t *out, size_t n)
{
	fm_rng st = *r; /* in registers while it runs */
	for (size_t i = 0; i < n; i++) {
		out[i] = next(&st);
	}
	*r = st;
}

double
fmi_rng_uniform(fm_rng *r)
{
	return (double)(fmi_rng_u64(r) >> 11) * 0x1.0p-53;
}

double
fmi_rng_normal(fm_rng *r)
{
	double u1 = 1.0 - fmi_rng_uniform(r); /* (0, 1] */
	double u2 = fmi_rng_uniform(r);
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t
fmi_rng_below(fm_rng *r, uint64_t n)
{
	/* Lemire's nearly divisionless method, unbiased. */
	__uint128_t m = (__uint128_t)fmi_rng_u64(r) * n;
	uint64_t lo = (uint64_t)m;
	if (lo < n) {
		uint64_t t = -n % n;
		while (lo < t) {
			m = (__uint128_t)fmi_rng_u64(r) * n;
			lo = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

double
fmi_rng_gamma(fm_rng *r, double shape)
{
	/* Marsaglia and Tsang; shape < 1 through the boost U^(1/shape). */
	if (shape < 1.0) {
		double u = 1.0 - fmi_rng_uniform(r);
		return fmi_rng_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
	}
	double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
	for (;;) {
		double x = fmi_rng_normal(r), v = 1.0 + c * x;
		if (v <= 0) {
			continue;
		}
		v = v * v * v;
		double u = 1.0 - fmi_rng_uniform(r);
		if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) {
			return d * v;
		}
	}
}

void
fmi_rng_shuffle_u32(fm_rng *r, uint32_t *a, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)fmi_rng_below(r, i);
		uint32_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}
