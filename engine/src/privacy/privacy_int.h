/* SPDX-License-Identifier: MIT */
/* privacy_int.h: internals of engine/src/privacy shared between its files
 * and visible to its unit tests. */
#ifndef FMI_PRIVACY_INT_H
#define FMI_PRIVACY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"

/* log(e^a + e^b); log(erfc(x)) without underflow (accountant.c). */
double fmi_log_add(double a, double b);
double fmi_log_erfc(double x);
/* Opacus's get_privacy_spent: min over orders of
 * rdp + log((a-1)/a) - (log delta + log a) / (a - 1), no special cases. */
double fmi_rdp_to_eps_opacus(const double *orders, const double *rdp,
    size_t n, double delta);

/* prv.c: the exact-size real DFT behind the PRV accountant, exposed for
 * its tests. out[j] = the k-fold circular self-convolution of p (n even),
 * rotated so that index n/2 - 1 stays the origin (as Opacus's
 * _compose_fourier). */
int fmi_circ_conv_power(const double *p, size_t n, uint64_t k, double *out);
/* out[j] = (a * b)[j + n/2 - 1]: the linear convolution cropped to n
 * values around the origin (scipy.signal.convolve mode "same"). */
int fmi_lin_conv_same(const double *a, const double *b, size_t n,
    double *out);
/* The CDF and survival function of the privacy random variable of one
 * step of the Poisson-subsampled Gaussian (Gopi, Lee, Wutschitz 2021,
 * Prop. B4), both accurate in their own tail. */
double fmi_prv_cdf(double q, double sigma, double t);
double fmi_prv_sf(double q, double sigma, double t);

/* noise.c: the integer sampler behind the secure noise, exposed for its
 * tests. A source of uniform random 64-bit words. */
typedef struct fmi_rand_src {
	uint64_t (*next)(void *ctx);
	void *ctx;
} fmi_rand_src;
/* One exact sample of the discrete Gaussian on the integers with
 * variance parameter sigma^2 = s2 (an integer, 1 <= s2 < 2^52):
 * P(z) proportional to exp(-z^2 / (2 s2)) (Canonne, Kamath, Steinke
 * 2020, Algorithm 3, integer arithmetic only). */
int64_t fmi_dgauss_sample(const fmi_rand_src *r, uint64_t s2);
/* One sample of Bernoulli(exp(-num / den)), num >= 0, den >= 1. */
int fmi_bern_exp(const fmi_rand_src *r, unsigned __int128 num,
    unsigned __int128 den);
/* The secure path's grid: the power of two gamma and the integer s2 such
 * that gamma^2 s2 >= std^2 > gamma^2 (s2 - 1) and s2 is in [2^50, 2^52]. */
void fmi_dgauss_grid(double std, double *gamma, uint64_t *s2);

#endif /* FMI_PRIVACY_INT_H */
