/* SPDX-License-Identifier: MIT */
/*
 * accountant.h: differential-privacy accounting for the subsampled
 * Gaussian mechanism (DP-SGD, DP-FedAvg): RDP of one step, RDP -> (eps,
 * delta) conversions, the PRV accountant, a run-time accountant object
 * with checkpointable history, and noise calibration.
 *
 * Conventions (see docs/privacy.md, "Accounting"):
 * - sigma is the noise multiplier (noise std / L2 sensitivity), q the
 *   sampling rate, one "step" one application of the sampled mechanism;
 *   T steps compose by adding RDP (or convolving PRVs).
 * - Poisson sampling is the add/remove-one relation (Mironov, Talwar,
 *   Zhang 2019); fixed-size sampling without replacement is the
 *   replace-one relation (Wang, Balle, Kasiviswanathan 2019), as in TF
 *   Privacy / dp_accounting.
 * - The scalar functions return NaN for invalid arguments (q outside
 *   [0, 1], sigma < 0 or NaN, alpha <= 1 or NaN, delta outside (0, 1));
 *   the object API checks its arguments and says what was wrong.
 */
#ifndef FMI_PRIVACY_ACCOUNTANT_H
#define FMI_PRIVACY_ACCOUNTANT_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"

/* dp_accounting's DEFAULT_RDP_ORDERS: 1.1, 1.2, ..., 10.9, 11, ..., 63,
 * 128, 256, 512, 1024 (156 orders). */
#define FMI_RDP_NDEFAULT_ORDERS 156
extern const double fmi_rdp_default_orders[FMI_RDP_NDEFAULT_ORDERS];
/* Opacus's RDPAccountant.DEFAULT_ALPHAS: 1.1, ..., 10.9, 12, ..., 63
 * (151 orders). The PRV accountant sizes its grid with these, as Opacus
 * does. */
#define FMI_RDP_NOPACUS_ORDERS 151
extern const double fmi_rdp_opacus_orders[FMI_RDP_NOPACUS_ORDERS];

/* RDP at order alpha of ONE step of the Poisson-subsampled Gaussian
 * mechanism (Mironov, Talwar, Zhang 2019). Integer alpha: the binomial
 * sum in log space; fractional alpha: the exact signed two-sided erfc
 * series (as Opacus and TF Privacy before 2022; dp_accounting now adds
 * absolute values, an upper bound). q = 0 gives 0; sigma = 0 or alpha =
 * inf gives inf; q = 1 gives alpha / (2 sigma^2). A fractional order whose
 * series does not converge in 1000 terms gives inf (that order is then
 * ignored by the conversions, which stays a valid bound). */
double fmi_rdp_poisson(double q, double sigma, double alpha);

/* RDP at order alpha of ONE step of the Gaussian mechanism on a fixed-
 * size subsample drawn without replacement, q = m / n (Wang, Balle,
 * Kasiviswanathan 2019, Theorem 27, as TF Privacy's
 * compute_rdp_sample_without_replacement: exact forward differences up
 * to order 256, the Stirling-type bound above). Fractional alpha: the
 * log-moment (alpha - 1) * RDP is interpolated linearly between
 * floor(alpha) and ceil(alpha) (their Corollary 10, TF Privacy's
 * convention), which is an upper bound. */
double fmi_rdp_wor(double q, double sigma, double alpha);

/* RDP of steps composed steps at every order: rdp[i] = steps * per-step
 * RDP at orders[i] (fixed != 0: without replacement). */
void fmi_rdp_compose(double q, double sigma, uint64_t steps, int fixed,
    const double *orders, size_t n, double *rdp);

/* The RDP -> (eps, delta) conversion of Balle et al. 2020 (Thm 21) /
 * Canonne, Kamath, Steinke 2020, as dp_accounting's compute_epsilon:
 *   eps = min_alpha [ rdp_a + log1p(-1/a) - log(delta * a) / (a - 1) ]
 * over orders a > 1.01; an order whose rdp satisfies
 * delta^2 + expm1(-rdp) >= 0 gives eps = 0 (the KL bound); the result is
 * clamped at 0. best_order (may be NULL) receives the minimising order.
 * Returns NaN when delta is outside (0, 1) or an order is below 1. */
double fmi_rdp_to_eps(const double *orders, const double *rdp, size_t n,
    double delta, double *best_order);
/* The older conversion (Mironov 2017, Prop. 3), kept to reproduce the
 * published TF Privacy / Opacus README numbers:
 *   eps = min_alpha [ rdp_a - log(delta) / (a - 1) ]. */
double fmi_rdp_to_eps_basic(const double *orders, const double *rdp,
    size_t n, double delta, double *best_order);

/* One entry of a composition: steps steps of the sampled Gaussian
 * mechanism with rate q and noise multiplier sigma. */
typedef struct fmi_dp_event {
	double q;
	double sigma;
	uint64_t steps;
} fmi_dp_event;

/* The PRV accountant (Gopi, Lee, Wutschitz 2021) as Opacus's
 * PRVAccountant: the privacy random variable of each Poisson-subsampled
 * Gaussian is truncated to [-L, L] (L from RDP, Remark 5.6), discretised
 * on a grid of mesh eps_error / sqrt(T log(12 / delta_error) / 2),
 * mean-corrected, self-composed by FFT (an exact-size DFT: Bluestein's
 * algorithm over a radix-2 FFT), the events convolved together, and
 * epsilon read off the composed distribution. eps[0..2] receive the
 * lower bound, the estimate and the upper bound (eps[2]: the guarantee).
 * eps_error <= 0 selects Opacus's 0.01, delta_error <= 0 delta / 1000.
 * Events with q = 0 or steps = 0 are skipped; sigma = 0 gives inf.
 * Poisson sampling only. */
int fmi_prv_epsilon(const fmi_dp_event *ev, size_t nev, double delta,
    double eps_error, double delta_error, double eps[3], fm_error *err);

/* ---- the run-time accountant ------------------------------------------ */

typedef struct fmi_acct fmi_acct;
typedef enum { FMI_ACCT_RDP, FMI_ACCT_PRV } fmi_acct_kind;
typedef enum { FMI_SAMPLE_POISSON, FMI_SAMPLE_FIXED } fmi_sampling;

/* A new accountant with no steps. PRV with fixed-size sampling is refused
 * (FM_ENOTSUP): use the RDP accountant for it. */
int fmi_acct_new(fmi_acct **out, fmi_acct_kind kind, fmi_sampling s,
    fm_error *err);
void fmi_acct_free(fmi_acct *a);
/* Composes steps steps (>= 1) with rate q in [0, 1] and noise multiplier
 * sigma >= 0 (finite). Consecutive steps with the same (q, sigma) share
 * one history entry; per-step RDP vectors are cached per (q, sigma), so a
 * step costs O(orders) after the first. On error nothing changes. */
int fmi_acct_step(fmi_acct *a, double q, double sigma, uint64_t steps,
    fm_error *err);
/* Epsilon spent so far at delta in (0, 1): the RDP bound at the default
 * orders, or the PRV upper bound. 0 with no steps. */
int fmi_acct_epsilon(const fmi_acct *a, double delta, double *eps,
    fm_error *err);
/* The same; best_order (may be NULL) receives the RDP order that gave
 * eps (NaN for the PRV accountant or with no steps). */
int fmi_acct_epsilon_order(const fmi_acct *a, double delta, double *eps,
    double *best_order, fm_error *err);
/* The RDP of everything composed so far at the default orders (n =
 * FMI_RDP_NDEFAULT_ORDERS), for either kind. */
void fmi_acct_rdp(const fmi_acct *a, double *rdp);
fmi_acct_kind fmi_acct_get_kind(const fmi_acct *a);
fmi_sampling fmi_acct_get_sampling(const fmi_acct *a);
/* History entries (after merging) and total steps. */
size_t fmi_acct_nevents(const fmi_acct *a);
const fmi_dp_event *fmi_acct_events(const fmi_acct *a);
uint64_t fmi_acct_total_steps(const fmi_acct *a);

/* Serialises the kind, sampling and history into a new malloc'd buffer
 * (free() it): 16 + 24 bytes per history entry, little-endian. FM_ENOMEM
 * on allocation failure. */
int fmi_acct_save(const fmi_acct *a, void **buf, size_t *len);
/* Restores an accountant saved by fmi_acct_save, checking every field;
 * replaying the history gives bit-identical epsilons. */
int fmi_acct_load(fmi_acct **out, const void *buf, size_t len,
    fm_error *err);

/* ---- calibration -------------------------------------------------------- */

/* The noise multiplier that makes steps steps at rate q cost at most eps
 * at delta, as Opacus's get_noise_multiplier: doubles sigma from 20 until
 * epsilon(sigma) <= eps (an error past 1e6: the budget cannot be met),
 * then bisects on [0, sigma] until eps - epsilon(sigma) <= 0.01 and
 * returns the upper end, whose epsilon is in [eps - 0.01, eps]. */
int fmi_dp_noise_multiplier(double eps, double delta, double q,
    uint64_t steps, fmi_acct_kind k, fmi_sampling s, double *sigma,
    fm_error *err);

/* Checks shared by the object API and the Lua bindings: 0, or an
 * FM_EINVAL naming what (e.g. "noise_multiplier") and the rule. */
int fmi_dp_check_q(double q, const char *what, fm_error *err);
int fmi_dp_check_sigma(double sigma, const char *what, fm_error *err);
int fmi_dp_check_delta(double delta, const char *what, fm_error *err);

#endif /* FMI_PRIVACY_ACCOUNTANT_H */
