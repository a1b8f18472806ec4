/* SPDX-License-Identifier: MIT */
/*
 * noise.c: Gaussian noise for DP mechanisms.
 *
 * Why the secure path does not add a floating-point Gaussian: the set of
 * floats that x + N(0, s^2) can round to depends on x (the gaps between
 * doubles grow with magnitude, Box-Muller's log/sqrt/cos map uniform
 * doubles onto an irregular subset of floats), so an attacker who sees
 * the noisy float can rule out inputs: Mironov (CCS 2012) broke the
 * Laplace mechanism this way, and Jin, McMurtry, Rubinstein, Ohrimenko
 * (S&P 2022, "Are we there yet?") did the same for Gaussian samplers
 * (Box-Muller, the polar method, the ziggurat) of common DP libraries.
 *
 * What it does instead (Canonne, Kamath, Steinke, NeurIPS 2020,
 * "The discrete Gaussian for differential privacy"):
 * 1. a grid gamma = 2^(e - 26) with std in [2^(e-1), 2^e), so std / gamma
 *    is in [2^25, 2^26), and the integer variance parameter s2 =
 *    ceil((std / gamma)^2) (the noise is never smaller than asked);
 * 2. Z ~ the discrete Gaussian on Z with P(z) proportional to
 *    exp(-z^2 / (2 s2)), sampled exactly by the rejection sampler of CKS
 *    Algorithm 3 (a discrete Laplace proposal with scale t = floor(sqrt
 *    s2) + 1, accepted with probability exp(-(|z| - s2/t)^2 / (2 s2))),
 *    whose Bernoulli(exp(-a/b)) draws are CKS Algorithms 1-2 on 128-bit
 *    integers: no floating point anywhere in the sampler;
 * 3. N = round(x / gamma) + Z in 64-bit integers (x / gamma is exact:
 *    gamma is a power of two) and x' = float(gamma N): a deterministic
 *    function of the integer N, i.e. post-processing.
 * Uniform bits come from a ChaCha20 keystream (libsodium
 * crypto_stream_chacha20) under a key drawn from randombytes_buf for each
 * call; key and buffer are wiped afterwards.
 *
 * Two deviations from the ideal sampler, both below 2^-1000 in total
 * variation: a proposal with |z| > 2^37 (beyond 2^11 std: accepted with
 * probability below e^-2000000) or a geometric run above 2^20 is
 * restarted, which keeps every product inside 128 bits.
 *
 * Timing: the sampler's running time depends on the noise it draws (the
 * number of rejections), never on x; a caller that exposes the duration
 * of one call exposes a weak statistic of the noise vector's magnitude
 * (Jin et al. Sec. 5). Noise for a model update is drawn in one call over
 * all its coordinates.
 */
#include <math.h>
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "privacy/noise.h"
#include "privacy/privacy_int.h"

typedef unsigned __int128 u128;

/* ---- uniform integers ------------------------------------------------------ */

static int
bitlen128(u128 v)
{
	int n = 0;
	while (v != 0) {
		v >>= 1;
		n++;
	}
	return n;
}

/* uniform in [0, m), m >= 1, by masked rejection (unbiased) */
static u128
uniform_below(const fmi_rand_src *r, u128 m)
{
	if (m <= 1) {
		return 0;
	}
	int bits = bitlen128(m - 1);
	if (bits <= 64) {
		uint64_t mask = bits == 64 ? UINT64_MAX
		                           : (((uint64_t)1 << bits) - 1);
		for (;;) {
			uint64_t v = r->next(r->ctx) & mask;
			if (v < m) {
				return v;
			}
		}
	}
	u128 mask = bits == 128 ? ~(u128)0 : (((u128)1 << bits) - 1);
	for (;;) {
		u128 v = ((u128)r->next(r->ctx) << 64) | r->next(r->ctx);
		v &= mask;
		if (v < m) {
			return v;
		}
	}
}

/* Bernoulli(num / den), num <= den */
static int
bern_frac(const fmi_rand_src *r, u128 num, u128 den)
{
	return uniform_below(r, den) < num;
}

/* Bernoulli(exp(-num/den)) for num <= den (CKS Algorithm 1): the parity
 * of the first K whose Bernoulli(gamma / K) fails. */
static int
bern_exp_le1(const fmi_rand_src *r, u128 num, u128 den)
{
	uint64_t k = 1;
	/* den K stays below 2^128: den < 2^106 and K < 2^21 here; K reaches
	 * 2^21 with probability 1 / (2^21)! */
	while (k < ((uint64_t)1 << 21) && bern_frac(r, num, den * k)) {
		k++;
	}
	return (int)(k & 1);
}

int
fmi_bern_exp(const fmi_rand_src *r, u128 num, u128 den)
{
	/* CKS Algorithm 2 (first part): exp(-g) = exp(-1)^floor(g) *
	 * exp(-(g - floor(g))) */
	u128 whole = num / den, rest = num % den;
	for (u128 i = 0; i < whole; i++) {
		if (!bern_exp_le1(r, 1, 1)) {
			return 0;
		}
	}
	return bern_exp_le1(r, rest, den);
}

/* ---- the discrete Gaussian ------------------------------------------------- */

static uint64_t
isqrt64(uint64_t v)
{
	uint64_t s = (uint64_t)sqrt((double)v);
	while (s > 0 && (u128)s * s > v) {
		s--;
	}
	while ((u128)(s + 1) * (s + 1) <= v) {
		s++;
	}
	return s;
}

#define DG_MAX_ABS ((uint64_t)1 << 37)
#define DG_MAX_GEOM ((uint64_t)1 << 20)

int64_t
fmi_dgauss_sample(const fmi_rand_src *r, uint64_t s2)
{
	uint64_t t = isqrt64(s2) + 1;
	u128 den = (u128)2 * s2 * t * t;
	for (;;) {
		/* discrete Laplace with scale t (CKS Algorithm 2) */
		uint64_t u = (uint64_t)uniform_below(r, t);
		if (!fmi_bern_exp(r, u, t)) {
			continue;
		}
		uint64_t v = 0;
		while (v < DG_MAX_GEOM && bern_exp_le1(r, 1, 1)) {
			v++;
		}
		if (v == DG_MAX_GEOM) {
			continue;
		}
		int neg = (int)(r->next(r->ctx) & 1);
		if (v > (DG_MAX_ABS - u) / t) {
			continue;
		}
		uint64_t y = u + t * v;
		if (neg && y == 0) {
			continue;
		}
		/* accept with exp(-(y - s2/t)^2 / (2 s2)) =
		 * exp(-(y t - s2)^2 / (2 s2 t^2)) */
		u128 yt = (u128)y * t;
		u128 d = yt >= s2 ? yt - s2 : (u128)s2 - yt;
		if (fmi_bern_exp(r, d * d, den)) {
			return neg ? -(int64_t)y : (int64_t)y;
		}
	}
}

void
fmi_dgauss_grid(double std, double *gamma, uint64_t *s2)
{
	int e;
	double m = frexp(std, &e); /* std = m 2^e, m in [0.5, 1) */
	*gamma = ldexp(1.0, e - 26);
	/* std / gamma = m 2^26 = M / 2^27 with M = m 2^53 an integer */
	uint64_t mm = (uint64_t)ldexp(m, 53);
	u128 sq = (u128)mm * mm; /* (std / gamma)^2 = sq / 2^54 */
	*s2 = (uint64_t)((sq + (((u128)1 << 54) - 1)) >> 54);
}

/* ---- the random source: ChaCha20 under a fresh key ------------------------- */

typedef struct sec_stream {
	unsigned char key[crypto_stream_chacha20_KEYBYTES];
	uint64_t nonce;
	size_t pos;
	unsigned char buf[8192];
} sec_stream;

static uint64_t
sec_next(void *ctx)
{
	sec_stream *s = ctx;
	if (s->pos + 8 > sizeof s->buf) {
		unsigned char nb[crypto_stream_chacha20_NONCEBYTES] = { 0 };
		for (size_t i = 0; i < sizeof nb && i < 8; i++) {
			nb[i] = (unsigned char)(s->nonce >> (8 * i));
		}
		s->nonce++;
		crypto_stream_chacha20(s->buf, sizeof s->buf, nb, s->key);
		s->pos = 0;
	}
	uint64_t v;
	memcpy(&v, s->buf + s->pos, sizeof v);
	s->pos += 8;
	return v;
}

/* ---- the entry point ------------------------------------------------------- */

int
fmi_dp_noise_add(float *x, size_t n, double std, fm_rng *rng, fm_error *err)
{
	if (!(std >= 0) || isinf(std)) {
		return fm_error_set(err, FM_EINVAL, "Gaussian noise: std = %g "
		    "must be finite and >= 0 (noise multiplier times the L2 "
		    "sensitivity)", std);
	}
	if (n > 0 && x == NULL) {
		return fm_error_set(err, FM_EINVAL, "Gaussian noise: NULL vector "
		    "of %zu values", n);
	}
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(x[i])) {
			return fm_error_set(err, FM_ERANGE, "Gaussian noise: value "
			    "%zu is %g; only finite values can be privatised "
			    "(clip or check the update first)", i, (double)x[i]);
		}
	}
	if (n == 0 || std == 0) {
		return FM_OK;
	}
	if (rng != NULL) {
		for (size_t i = 0; i < n; i++) {
			x[i] = (float)((double)x[i] + std * fmi_rng_normal(rng));
		}
		return FM_OK;
	}
	if (std < 0x1p-900) {
		return fm_error_set(err, FM_ERANGE, "Gaussian noise: std = %g is "
		    "too small for the secure sampler's grid (at least 2^-900)",
		    std);
	}
	double gamma;
	uint64_t s2;
	fmi_dgauss_grid(std, &gamma, &s2);
	for (size_t i = 0; i < n; i++) {
		if (fabs((double)x[i] / gamma) >= 0x1p62) {
			return fm_error_set(err, FM_ERANGE, "Gaussian noise: value "
			    "%zu = %g is more than 2^36 times std = %g; rescale "
			    "the input or raise the noise", i, (double)x[i], std);
		}
	}
	if (sodium_init() < 0) {
		return fm_error_set(err, FM_ECRYPTO, "Gaussian noise: libsodium "
		    "could not be initialised, so no secure randomness is "
		    "available (pass a seeded fm_rng for simulations)");
	}
	sec_stream *s = sodium_malloc(sizeof *s);
	if (s == NULL) {
		return fm_error_set(err, FM_ENOMEM, "Gaussian noise: out of "
		    "memory");
	}
	randombytes_buf(s->key, sizeof s->key);
	s->nonce = 0;
	s->pos = sizeof s->buf;
	fmi_rand_src src = { sec_next, s };
	for (size_t i = 0; i < n; i++) {
		int64_t r = llround((double)x[i] / gamma);
		int64_t z = fmi_dgauss_sample(&src, s2);
		x[i] = (float)((double)(r + z) * gamma);
	}
	sodium_free(s); /* wipes key and keystream */
	return FM_OK;
}
