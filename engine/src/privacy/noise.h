/* SPDX-License-Identifier: MIT */
/* noise.h: the Gaussian noise every DP mechanism of the engine adds. */
#ifndef FMI_PRIVACY_NOISE_H
#define FMI_PRIVACY_NOISE_H

#include <stddef.h>

#include "fedmesh/fedmesh.h"
#include "fedmesh/plugin.h" /* fm_rng */

/*
 * Adds N(0, std^2) noise to each of x[0..n-1].
 *
 * rng != NULL: seeded noise from the engine's generator (xoshiro256**,
 * Box-Muller in double, rounded to float): reproducible simulations.
 * NOT for deployments: a seeded stream is predictable and the floating-
 * point output of x + Box-Muller noise leaks x (Mironov 2012; Jin et al.
 * 2022).
 *
 * rng == NULL: secure noise. Each value becomes
 *     x_i' = float(gamma * (round(x_i / gamma) + Z_i))
 * with gamma = a power of two between std / 2^26 and std / 2^25 and Z_i an
 * exact sample of the discrete Gaussian on the integers with variance
 * parameter s2 = ceil((std / gamma)^2) (Canonne, Kamath, Steinke 2020:
 * rejection sampling in integer arithmetic only), from a ChaCha20 stream
 * keyed by libsodium's randombytes_buf. Everything random is an exact
 * integer, so the output is post-processing of an integer-valued
 * mechanism and the floating-point attacks on naive samplers do not
 * apply; the rounding to the grid can raise the L2 sensitivity by at most
 * gamma sqrt(n), i.e. the effective noise multiplier is at least
 * z / (1 + z sqrt(n) 2^-25). See docs/privacy.md, "Noise".
 *
 * std must be finite and >= 0 (0: x unchanged), every x_i finite, and
 * |x_i| / std below 2^36 on the secure path; on error x is unchanged.
 */
int fmi_dp_noise_add(float *x, size_t n, double std, fm_rng *rng,
    fm_error *err);

#endif /* FMI_PRIVACY_NOISE_H */
