/* SPDX-License-Identifier: MIT */
/*
 * accountant.c: RDP of the subsampled Gaussian mechanism (Poisson and
 * fixed-size sampling), RDP -> (eps, delta), the run-time accountant and
 * noise calibration. The PRV accountant is in prv.c.
 *
 * Written from the papers and from reading what TF Privacy,
 * dp_accounting and Opacus compute (docs/privacy.md says where the
 * conventions come from); no code is copied.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "privacy/accountant.h"
#include "privacy/privacy_int.h"

const double fmi_rdp_default_orders[FMI_RDP_NDEFAULT_ORDERS] = {
	/* 1 + x / 10 for x = 1..99 (x = 10, 20, ... are the integers) */
	1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2,
	2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3,
	3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8, 3.9, 4,
	4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7, 4.8, 4.9, 5,
	5.1, 5.2, 5.3, 5.4, 5.5, 5.6, 5.7, 5.8, 5.9, 6,
	6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7, 6.8, 6.9, 7,
	7.1, 7.2, 7.3, 7.4, 7.5, 7.6, 7.7, 7.8, 7.9, 8,
	8.1, 8.2, 8.3, 8.4, 8.5, 8.6, 8.7, 8.8, 8.9, 9,
	9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 9.7, 9.8, 9.9, 10,
	10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8, 10.9,
	11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
	28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
	45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
	62, 63, 128, 256, 512, 1024,
};

const double fmi_rdp_opacus_orders[FMI_RDP_NOPACUS_ORDERS] = {
	1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2,
	2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3,
	3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8, 3.9, 4,
	4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7, 4.8, 4.9, 5,
	5.1, 5.2, 5.3, 5.4, 5.5, 5.6, 5.7, 5.8, 5.9, 6,
	6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7, 6.8, 6.9, 7,
	7.1, 7.2, 7.3, 7.4, 7.5, 7.6, 7.7, 7.8, 7.9, 8,
	8.1, 8.2, 8.3, 8.4, 8.5, 8.6, 8.7, 8.8, 8.9, 9,
	9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 9.7, 9.8, 9.9, 10,
	10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8, 10.9,
	12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
	28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
	45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
	62, 63,
};

/* ---- log-space arithmetic ---------------------------------------------- */

/* log(e^a + e^b) */
double
fmi_log_add(double a, double b)
{
	double lo = a < b ? a : b, hi = a < b ? b : a;
	if (lo == -INFINITY) {
		return hi;
	}
	return log1p(exp(lo - hi)) + hi;
}

/* log(e^x - e^y) for x >= y; NaN when x < y (the result would be
 * negative). */
static double
log_sub(double x, double y)
{
	if (x < y) {
		return NAN;
	}
	if (y == -INFINITY) {
		return x;
	}
	if (x == y) {
		return -INFINITY;
	}
	double d = x - y;
	if (d > 700) {
		return x + log1p(-exp(-d));
	}
	return log(expm1(d)) + y;
}

/* log|e^x - e^y| and the sign of e^x - e^y (1: non-negative). */
static double
log_sub_sign(double x, double y, int *pos)
{
	if (x > y) {
		*pos = 1;
		return x + log1p(-exp(y - x));
	}
	if (x < y) {
		*pos = 0;
		return y + log1p(-exp(x - y));
	}
	*pos = 1;
	return -INFINITY;
}

/* log(erfc(x)), accurate where erfc(x) underflows: the asymptotic series
 * erfc(x) = e^{-x^2} / (x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4) - ...),
 * whose first omitted term is below 2e-15 relative for x >= 26. */
double
fmi_log_erfc(double x)
{
	if (x < 26) {
		return log(erfc(x));
	}
	double x2 = x * x, r = 1 / x2;
	double s = 1 + r * (-0.5 + r * (0.75 + r * (-1.875 + r * (6.5625 +
	    r * -29.53125))));
	return -x2 - log(x) - 0.5 * log(M_PI) + log(s);
}

static int
is_integer(double a)
{
	return isfinite(a) && a == floor(a);
}

/* ---- Poisson subsampling (Mironov, Talwar, Zhang 2019) ------------------ */

/* log A_alpha for integer alpha >= 2, 0 < q < 1:
 * A = sum_k C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2)). */
static double
log_a_int(double q, double sigma, uint64_t alpha)
{
	double log_a = -INFINITY, lq = log(q), l1q = log1p(-q);
	double s2 = 2 * sigma * sigma, lc = 0; /* log C(alpha, i) */
	double al = (double)alpha;
	for (uint64_t i = 0; i <= alpha; i++) {
		double di = (double)i;
		double s = lc + di * lq + (al - di) * l1q + (di * di - di) / s2;
		log_a = fmi_log_add(log_a, s);
		if (i < alpha) {
			lc += log(al - di) - log(di + 1);
		}
	}
	return log_a;
}

#define FMI_FRAC_MAX_TERMS 1000

/* log A_alpha for fractional alpha, 0 < q < 1: the integral split at
 * z0 = sigma^2 log(1/q - 1) + 1/2 into two series of erfc terms whose
 * signs are those of the generalised binomial coefficients C(alpha, i)
 * (Mironov, Talwar, Zhang 2019, Sec. 3.3). The signed sum is the exact
 * value; adding absolute values (dp_accounting since 2022) would give an
 * upper bound (6.7058e-4 instead of 6.5007e-4 for q = 0.01, sigma = 2.5,
 * 50 steps, alpha = 1.5). Stops when both terms are below e^-30 (A >= 1,
 * so that is relative too). inf when it does not converge or a partial
 * sum would turn negative (a bound that can only be loose, never
 * wrong). */
static double
log_a_frac(double q, double sigma, double alpha)
{
	double log_a0 = -INFINITY, log_a1 = -INFINITY;
	double z0 = sigma * sigma * log(1 / q - 1) + 0.5;
	double lq = log(q), l1q = log1p(-q), s2 = 2 * sigma * sigma;
	double r2s = sqrt(2.0) * sigma, lhalf = log(0.5);
	double lc = 0; /* log |C(alpha, i)| */
	int pos = 1;   /* sign of C(alpha, i) */
	for (int i = 0; i < FMI_FRAC_MAX_TERMS; i++) {
		double di = i, j = alpha - di;
		double log_t0 = lc + di * lq + j * l1q;
		double log_t1 = lc + j * lq + di * l1q;
		double log_e0 = lhalf + fmi_log_erfc((di - z0) / r2s);
		double log_e1 = lhalf + fmi_log_erfc((z0 - j) / r2s);
		double log_s0 = log_t0 + (di * di - di) / s2 + log_e0;
		double log_s1 = log_t1 + (j * j - j) / s2 + log_e1;
		if (pos) {
			log_a0 = fmi_log_add(log_a0, log_s0);
			log_a1 = fmi_log_add(log_a1, log_s1);
		} else {
			log_a0 = log_sub(log_a0, log_s0);
			log_a1 = log_sub(log_a1, log_s1);
			if (isnan(log_a0) || isnan(log_a1)) {
				return INFINITY;
			}
		}
		if (fmax(log_s0, log_s1) < -30) {
			return fmi_log_add(log_a0, log_a1);
		}
		/* C(alpha, i + 1) = C(alpha, i) (alpha - i) / (i + 1) */
		double f = alpha - di;
		if (f < 0) {
			pos = !pos;
		}
		lc += log(fabs(f)) - log(di + 1);
	}
	return INFINITY;
}

static int
bad_args(double q, double sigma, double alpha)
{
	return !(q >= 0 && q <= 1) || !(sigma >= 0) || !(alpha > 1);
}

/* Orders above 2^24 are treated as infinite (their RDP is then inf, a
 * valid if useless bound): their sums would take minutes. */
#define FMI_RDP_MAX_ORDER 16777216.0

double
fmi_rdp_poisson(double q, double sigma, double alpha)
{
	if (bad_args(q, sigma, alpha)) {
		return NAN;
	}
	if (q == 0) {
		return 0;
	}
	if (isinf(alpha) || sigma == 0) {
		return INFINITY;
	}
	if (isinf(sigma)) {
		return 0;
	}
	if (alpha > FMI_RDP_MAX_ORDER && q < 1) {
		return INFINITY;
	}
	if (q == 1) {
		return alpha / (2 * sigma * sigma);
	}
	if (is_integer(alpha)) {
		return log_a_int(q, sigma, (uint64_t)alpha) / (alpha - 1);
	}
	return log_a_frac(q, sigma, alpha) / (alpha - 1);
}

/* ---- sampling without replacement (Wang, Balle, Kasiviswanathan 2019) -- */

/* deltas[i], i = 0..n+1: log |(i+1)-th forward difference at 0| of the
 * sequence 1, e^{c(0)}, e^{c(1)}, ..., e^{c(n+1)}, c(x) = x (x + 1) /
 * (2 sigma^2) the Gaussian's log-moment, computed in place in signed log
 * space (TF Privacy's _get_forward_diffs). deltas[i] only depends on the
 * first i + 2 entries, so one table serves every order <= n. */
static int
forward_diffs(double sigma, uint64_t n, double *deltas)
{
	size_t m = (size_t)n + 3;
	double *vec = malloc(m * sizeof *vec);
	unsigned char *sg = malloc(m);
	if (vec == NULL || sg == NULL) {
		free(vec);
		free(sg);
		return FM_ENOMEM;
	}
	vec[0] = 0;
	sg[0] = 1;
	for (size_t i = 1; i < m; i++) {
		double x = (double)(i - 1);
		vec[i] = x * (x + 1) / (2 * sigma * sigma);
		sg[i] = 1;
	}
	for (size_t i = 0; i < (size_t)n + 2; i++) {
		size_t len = (size_t)n + 2 - i;
		for (size_t j = 0; j < len; j++) {
			if (sg[j] == sg[j + 1]) {
				int p;
				vec[j] = log_sub_sign(vec[j + 1], vec[j], &p);
				sg[j] = (unsigned char)(sg[j + 1] ? p : !p);
			} else {
				vec[j] = fmi_log_add(vec[j], vec[j + 1]);
				sg[j] = sg[j + 1];
			}
		}
		deltas[i] = vec[0];
	}
	free(vec);
	free(sg);
	return FM_OK;
}

#define FMI_WOR_EXACT_MAX 256

/* log A for integer alpha >= 1 (Theorem 27; the terms above order 256 use
 * the bound 2 e^{c(i-1)} instead of the forward differences). deltas:
 * forward_diffs up to at least alpha when alpha <= 256 (else unused). */
static double
wor_log_a_int(double q, double sigma, uint64_t alpha, const double *deltas)
{
	if (alpha == 1) {
		return 0;
	}
	double s2 = 2 * sigma * sigma, lq = log(q);
	double f2 = 2.0 / s2; /* the Gaussian's RDP at order 2 */
	double log_f2m1 = f2 + log1p(-exp(-f2));
	double log_a = 0, al = (double)alpha;
	/* log C(alpha, i), starting at i = 2 */
	double lc = log(al) + log(al - 1) - log(2.0);
	for (uint64_t i = 2; i <= alpha; i++) {
		double di = (double)i, s;
		if (i == 2) {
			s = 2 * lq + lc +
			    fmin(log(4.0) + log_f2m1, f2 + log(2.0));
		} else {
			double cg = (di - 1) * di / s2; /* c(i - 1) */
			if (alpha <= FMI_WOR_EXACT_MAX) {
				uint64_t lo = 2 * (i / 2) - 1;
				uint64_t hi = 2 * ((i + 1) / 2) - 1;
				s = log(4.0) + 0.5 * (deltas[lo] + deltas[hi]);
				s = fmin(s, log(2.0) + cg);
			} else {
				s = log(2.0) + cg;
			}
			s += di * lq + lc;
		}
		log_a = fmi_log_add(log_a, s);
		if (i < alpha) {
			lc += log(al - di) - log(di + 1);
		}
	}
	return log_a;
}

static int
wor_special(double q, double sigma, double alpha, double *out)
{
	if (bad_args(q, sigma, alpha)) {
		*out = NAN;
	} else if (q == 0) {
		*out = 0;
	} else if (q == 1) {
		*out = sigma == 0 ? INFINITY : alpha / (2 * sigma * sigma);
	} else if (isinf(alpha) || sigma == 0 || alpha > FMI_RDP_MAX_ORDER) {
		*out = INFINITY;
	} else if (isinf(sigma)) {
		*out = 0;
	} else {
		return 0;
	}
	return 1;
}

/* From log A at floor(alpha) and ceil(alpha) (equal for integer alpha):
 * the RDP at alpha, interpolating the log-moment linearly in between. */
static double
wor_from_log_a(double alpha, double la_f, double la_c)
{
	if (is_integer(alpha)) {
		return la_f / (alpha - 1);
	}
	double t = alpha - floor(alpha);
	return ((1 - t) * la_f + t * la_c) / (alpha - 1);
}

double
fmi_rdp_wor(double q, double sigma, double alpha)
{
	double r;
	if (wor_special(q, sigma, alpha, &r)) {
		return r;
	}
	uint64_t af = (uint64_t)floor(alpha), ac = (uint64_t)ceil(alpha);
	double *deltas = NULL;
	if (af <= FMI_WOR_EXACT_MAX) {
		uint64_t n = ac <= FMI_WOR_EXACT_MAX ? ac : af;
		deltas = malloc(((size_t)n + 2) * sizeof *deltas);
		if (deltas == NULL || forward_diffs(sigma, n, deltas) != FM_OK) {
			free(deltas);
			return NAN;
		}
	}
	double la_f = wor_log_a_int(q, sigma, af, deltas);
	double la_c = ac == af ? la_f : wor_log_a_int(q, sigma, ac, deltas);
	free(deltas);
	return wor_from_log_a(alpha, la_f, la_c);
}

/* ---- vectors ------------------------------------------------------------ */

/* One step's RDP at every order; for fixed-size sampling the forward
 * differences are computed once and log A once per integer order. */
static int
rdp_vector(double q, double sigma, int fixed, const double *orders, size_t n,
    double *rdp)
{
	if (!fixed) {
		for (size_t i = 0; i < n; i++) {
			rdp[i] = fmi_rdp_poisson(q, sigma, orders[i]);
		}
		return FM_OK;
	}
	double dummy;
	if (n == 0 || wor_special(q, sigma, 2.0, &dummy)) {
		for (size_t i = 0; i < n; i++) {
			rdp[i] = fmi_rdp_wor(q, sigma, orders[i]);
		}
		return FM_OK;
	}
	double *deltas = malloc((FMI_WOR_EXACT_MAX + 2) * sizeof *deltas);
	enum { MEMO = 1025 };
	double *memo = malloc(MEMO * sizeof *memo);
	if (deltas == NULL || memo == NULL ||
	    forward_diffs(sigma, FMI_WOR_EXACT_MAX, deltas) != FM_OK) {
		free(deltas);
		free(memo);
		return FM_ENOMEM;
	}
	for (size_t k = 0; k < MEMO; k++) {
		memo[k] = NAN;
	}
	for (size_t i = 0; i < n; i++) {
		double a = orders[i], r;
		if (wor_special(q, sigma, a, &r)) {
			rdp[i] = r;
			continue;
		}
		uint64_t ab[2] = { (uint64_t)floor(a), (uint64_t)ceil(a) };
		double la[2];
		for (int s = 0; s < 2; s++) {
			uint64_t k = ab[s];
			if (k < MEMO && !isnan(memo[k])) {
				la[s] = memo[k];
				continue;
			}
			la[s] = wor_log_a_int(q, sigma, k, deltas);
			if (k < MEMO) {
				memo[k] = la[s];
			}
		}
		rdp[i] = wor_from_log_a(a, la[0], la[1]);
	}
	free(deltas);
	free(memo);
	return FM_OK;
}

void
fmi_rdp_compose(double q, double sigma, uint64_t steps, int fixed,
    const double *orders, size_t n, double *rdp)
{
	if (rdp_vector(q, sigma, fixed, orders, n, rdp) != FM_OK) {
		for (size_t i = 0; i < n; i++) {
			rdp[i] = NAN;
		}
		return;
	}
	for (size_t i = 0; i < n; i++) {
		/* 0 * inf stays 0: no steps cost nothing */
		rdp[i] = steps == 0 ? 0 : rdp[i] * (double)steps;
	}
}

/* ---- conversions -------------------------------------------------------- */

double
fmi_rdp_to_eps(const double *orders, const double *rdp, size_t n,
    double delta, double *best_order)
{
	if (best_order != NULL) {
		*best_order = NAN;
	}
	if (!(delta > 0 && delta < 1)) {
		return NAN;
	}
	double best = INFINITY;
	size_t bi = 0;
	for (size_t i = 0; i < n; i++) {
		double a = orders[i], r = rdp[i], e;
		if (!(a >= 1)) {
			return NAN;
		}
		if (isnan(r)) {
			e = INFINITY; /* an order that could not be computed */
		} else if (r < 0) {
			e = 0; /* rounding below 0: dp_accounting's convention */
		} else if (delta * delta + expm1(-r) >= 0) {
			/* the KL bound: delta <= sqrt(1 - exp(-rdp)) */
			e = 0;
		} else if (a > 1.01) {
			/* not numerically stable as a -> 1, and no use there */
			e = r + log1p(-1 / a) - log(delta * a) / (a - 1);
		} else {
			e = INFINITY;
		}
		if (e < best) {
			best = e;
			bi = i;
		}
	}
	if (best_order != NULL && n > 0) {
		*best_order = orders[bi];
	}
	return best > 0 ? best : 0;
}

double
fmi_rdp_to_eps_basic(const double *orders, const double *rdp, size_t n,
    double delta, double *best_order)
{
	if (best_order != NULL) {
		*best_order = NAN;
	}
	if (!(delta > 0 && delta < 1)) {
		return NAN;
	}
	double best = INFINITY;
	size_t bi = 0;
	for (size_t i = 0; i < n; i++) {
		double a = orders[i], r = rdp[i];
		if (!(a >= 1)) {
			return NAN;
		}
		double e = a > 1 && !isnan(r) ? r - log(delta) / (a - 1)
		                              : INFINITY;
		if (e < best) {
			best = e;
			bi = i;
		}
	}
	if (best_order != NULL && n > 0) {
		*best_order = orders[bi];
	}
	return best;
}

/* Opacus's get_privacy_spent (the same formula without the KL case, the
 * 1.01 cut and the clamp at 0), which sizes the PRV grid. */
double
fmi_rdp_to_eps_opacus(const double *orders, const double *rdp, size_t n,
    double delta)
{
	double best = INFINITY;
	for (size_t i = 0; i < n; i++) {
		double a = orders[i];
		double e = rdp[i] - (log(delta) + log(a)) / (a - 1) +
		    log((a - 1) / a);
		if (e < best) { /* NaN never wins: nanargmin */
			best = e;
		}
	}
	return best;
}

/* ---- parameter checks ----------------------------------------------------- */

int
fmi_dp_check_q(double q, const char *what, fm_error *err)
{
	if (!(q >= 0 && q <= 1)) {
		return fm_error_set(err, FM_EINVAL, "%s = %g must be a sampling "
		    "rate in [0, 1] (e.g. batch size / dataset size)", what, q);
	}
	return FM_OK;
}

int
fmi_dp_check_sigma(double sigma, const char *what, fm_error *err)
{
	if (!(sigma >= 0) || isinf(sigma)) {
		return fm_error_set(err, FM_EINVAL, "%s = %g must be a finite "
		    "noise multiplier >= 0 (noise std / L2 sensitivity)", what,
		    sigma);
	}
	return FM_OK;
}

int
fmi_dp_check_delta(double delta, const char *what, fm_error *err)
{
	if (!(delta > 0 && delta < 1)) {
		return fm_error_set(err, FM_EINVAL, "%s = %g must be in (0, 1), "
		    "typically below 1 / dataset size (e.g. 1e-5)", what, delta);
	}
	return FM_OK;
}

/* ---- the accountant object ------------------------------------------------ */

#define FMI_ACCT_CACHE 64

typedef struct acct_cache {
	double q, sigma;
	double rdp[FMI_RDP_NDEFAULT_ORDERS]; /* one step */
} acct_cache;

struct fmi_acct {
	fmi_acct_kind kind;
	fmi_sampling samp;
	fmi_dp_event *ev;
	size_t nev, cap;
	uint64_t total;
	/* everything composed, always (base + per-step RDP of the last entry
	 * times its steps): a function of the history alone, so that an
	 * accountant stepped one step at a time, one stepped once with the
	 * sum, and one replayed by fmi_acct_load agree bit for bit */
	double rdp[FMI_RDP_NDEFAULT_ORDERS];
	double base[FMI_RDP_NDEFAULT_ORDERS]; /* all entries but the last */
	acct_cache *cache; /* [FMI_ACCT_CACHE], a ring */
	size_t ncache, next;
};

int
fmi_acct_new(fmi_acct **out, fmi_acct_kind kind, fmi_sampling s,
    fm_error *err)
{
	*out = NULL;
	if (kind != FMI_ACCT_RDP && kind != FMI_ACCT_PRV) {
		return fm_error_set(err, FM_EINVAL, "accountant kind %d is not "
		    "'rdp' or 'prv'", (int)kind);
	}
	if (s != FMI_SAMPLE_POISSON && s != FMI_SAMPLE_FIXED) {
		return fm_error_set(err, FM_EINVAL, "sampling %d is not "
		    "'poisson' or 'fixed'", (int)s);
	}
	if (kind == FMI_ACCT_PRV && s == FMI_SAMPLE_FIXED) {
		return fm_error_set(err, FM_ENOTSUP, "the PRV accountant supports "
		    "Poisson sampling only; with sampling = \"fixed\" use "
		    "accountant = \"rdp\"");
	}
	fmi_acct *a = calloc(1, sizeof *a);
	if (a == NULL || (a->cache = malloc(FMI_ACCT_CACHE *
	    sizeof *a->cache)) == NULL) {
		free(a);
		return fm_error_set(err, FM_ENOMEM, "accountant: out of memory");
	}
	a->kind = kind;
	a->samp = s;
	*out = a;
	return FM_OK;
}

void
fmi_acct_free(fmi_acct *a)
{
	if (a != NULL) {
		free(a->ev);
		free(a->cache);
		free(a);
	}
}

static const double *
cached_rdp(fmi_acct *a, double q, double sigma)
{
	for (size_t k = 0; k < a->ncache; k++) {
		/* newest first */
		size_t i = (a->next + FMI_ACCT_CACHE - 1 - k) % FMI_ACCT_CACHE;
		if (a->cache[i].q == q && a->cache[i].sigma == sigma) {
			return a->cache[i].rdp;
		}
	}
	acct_cache *c = &a->cache[a->next];
	if (rdp_vector(q, sigma, a->samp == FMI_SAMPLE_FIXED,
	    fmi_rdp_default_orders, FMI_RDP_NDEFAULT_ORDERS, c->rdp) != FM_OK) {
		return NULL;
	}
	c->q = q;
	c->sigma = sigma;
	a->next = (a->next + 1) % FMI_ACCT_CACHE;
	if (a->ncache < FMI_ACCT_CACHE) {
		a->ncache++;
	}
	return c->rdp;
}

int
fmi_acct_step(fmi_acct *a, double q, double sigma, uint64_t steps,
    fm_error *err)
{
	int rc;
	if ((rc = fmi_dp_check_q(q, "sample_rate", err)) != FM_OK ||
	    (rc = fmi_dp_check_sigma(sigma, "noise_multiplier", err)) != FM_OK) {
		return rc;
	}
	if (steps == 0) {
		return fm_error_set(err, FM_EINVAL, "steps = 0: an accountant "
		    "step composes at least one step of the mechanism");
	}
	if (a->total + steps < a->total) {
		return fm_error_set(err, FM_ERANGE, "steps: the total step count "
		    "overflows 64 bits");
	}
	const double *r = cached_rdp(a, q, sigma);
	if (r == NULL) {
		return fm_error_set(err, FM_ENOMEM, "accountant: out of memory");
	}
	fmi_dp_event *last = a->nev ? &a->ev[a->nev - 1] : NULL;
	if (last != NULL && last->q == q && last->sigma == sigma) {
		last->steps += steps;
	} else {
		/* the entries so far become the base of the new one */
		if (a->nev == a->cap) {
			size_t cap = a->cap ? 2 * a->cap : 8;
			fmi_dp_event *ev = realloc(a->ev, cap * sizeof *ev);
			if (ev == NULL) {
				return fm_error_set(err, FM_ENOMEM,
				    "accountant: out of memory");
			}
			a->ev = ev;
			a->cap = cap;
		}
		a->ev[a->nev++] = (fmi_dp_event){ q, sigma, steps };
		memcpy(a->base, a->rdp, sizeof a->base);
	}
	a->total += steps;
	/* not rdp += r * steps: summing the increments rounds differently
	 * from replaying the merged entry (a checkpoint's epsilon would not
	 * be the one it was saved with) */
	double ls = (double)a->ev[a->nev - 1].steps;
	for (size_t i = 0; i < FMI_RDP_NDEFAULT_ORDERS; i++) {
		a->rdp[i] = a->base[i] + r[i] * ls;
	}
	return FM_OK;
}

int
fmi_acct_epsilon_order(const fmi_acct *a, double delta, double *eps,
    double *best_order, fm_error *err)
{
	int rc;
	if (best_order != NULL) {
		*best_order = NAN;
	}
	*eps = NAN;
	if ((rc = fmi_dp_check_delta(delta, "delta", err)) != FM_OK) {
		return rc;
	}
	if (a->total == 0) {
		*eps = 0;
		return FM_OK;
	}
	if (a->kind == FMI_ACCT_RDP) {
		*eps = fmi_rdp_to_eps(fmi_rdp_default_orders, a->rdp,
		    FMI_RDP_NDEFAULT_ORDERS, delta, best_order);
		return FM_OK;
	}
	double e[3];
	if ((rc = fmi_prv_epsilon(a->ev, a->nev, delta, 0, 0, e, err)) !=
	    FM_OK) {
		return rc;
	}
	*eps = e[2];
	return FM_OK;
}

int
fmi_acct_epsilon(const fmi_acct *a, double delta, double *eps, fm_error *err)
{
	return fmi_acct_epsilon_order(a, delta, eps, NULL, err);
}

void
fmi_acct_rdp(const fmi_acct *a, double *rdp)
{
	memcpy(rdp, a->rdp, sizeof a->rdp);
}

fmi_acct_kind
fmi_acct_get_kind(const fmi_acct *a)
{
	return a->kind;
}

fmi_sampling
fmi_acct_get_sampling(const fmi_acct *a)
{
	return a->samp;
}

size_t
fmi_acct_nevents(const fmi_acct *a)
{
	return a->nev;
}

const fmi_dp_event *
fmi_acct_events(const fmi_acct *a)
{
	return a->ev;
}

uint64_t
fmi_acct_total_steps(const fmi_acct *a)
{
	return a->total;
}

/* ---- save / load ---------------------------------------------------------- */

#define ACCT_MAGIC "FMDA"
#define ACCT_VERSION 1
#define ACCT_HEADER 16
#define ACCT_ENTRY 24

static void
put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (unsigned char)(v >> (8 * i));
	}
}

static uint64_t
get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) {
		v |= (uint64_t)p[i] << (8 * i);
	}
	return v;
}

static uint64_t
dbits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof u);
	return u;
}

static double
bitsd(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof d);
	return d;
}

/* Layout: "FMDA", version, kind, sampling, 0, u64 entries; then per entry
 * q and sigma (IEEE-754 bits) and steps, all little-endian. */
int
fmi_acct_save(const fmi_acct *a, void **buf, size_t *len)
{
	size_t n = ACCT_HEADER + a->nev * ACCT_ENTRY;
	unsigned char *p = malloc(n);
	*buf = NULL;
	*len = 0;
	if (p == NULL) {
		return FM_ENOMEM;
	}
	memcpy(p, ACCT_MAGIC, 4);
	p[4] = ACCT_VERSION;
	p[5] = (unsigned char)a->kind;
	p[6] = (unsigned char)a->samp;
	p[7] = 0;
	put_u64(p + 8, a->nev);
	for (size_t i = 0; i < a->nev; i++) {
		unsigned char *e = p + ACCT_HEADER + i * ACCT_ENTRY;
		put_u64(e, dbits(a->ev[i].q));
		put_u64(e + 8, dbits(a->ev[i].sigma));
		put_u64(e + 16, a->ev[i].steps);
	}
	*buf = p;
	*len = n;
	return FM_OK;
}

int
fmi_acct_load(fmi_acct **out, const void *buf, size_t len, fm_error *err)
{
	const unsigned char *p = buf;
	*out = NULL;
	if (len < ACCT_HEADER || memcmp(p, ACCT_MAGIC, 4) != 0) {
		return fm_error_set(err, FM_EPROTO, "accountant state: not a "
		    "saved accountant (%zu bytes, bad header); was the "
		    "checkpoint written by fmi_acct_save?", len);
	}
	if (p[4] != ACCT_VERSION) {
		return fm_error_set(err, FM_EVERSION, "accountant state: format "
		    "version %u, this engine reads version %u", p[4],
		    ACCT_VERSION);
	}
	if (p[5] > FMI_ACCT_PRV || p[6] > FMI_SAMPLE_FIXED || p[7] != 0) {
		return fm_error_set(err, FM_EPROTO, "accountant state: unknown "
		    "accountant kind %u or sampling %u", p[5], p[6]);
	}
	uint64_t nev = get_u64(p + 8);
	if (nev > (len - ACCT_HEADER) / ACCT_ENTRY ||
	    ACCT_HEADER + nev * ACCT_ENTRY != len) {
		return fm_error_set(err, FM_EPROTO, "accountant state: %zu bytes "
		    "do not hold %llu history entries", len,
		    (unsigned long long)nev);
	}
	fmi_acct *a;
	int rc = fmi_acct_new(&a, (fmi_acct_kind)p[5], (fmi_sampling)p[6], err);
	if (rc != FM_OK) {
		return rc;
	}
	for (uint64_t i = 0; i < nev; i++) {
		const unsigned char *e = p + ACCT_HEADER + i * ACCT_ENTRY;
		double q = bitsd(get_u64(e)), sigma = bitsd(get_u64(e + 8));
		uint64_t steps = get_u64(e + 16);
		if ((rc = fmi_acct_step(a, q, sigma, steps, err)) != FM_OK) {
			fm_error e2;
			fm_error_set(&e2, rc, "accountant state: history entry "
			    "%llu: %s", (unsigned long long)i,
			    err ? err->msg : "invalid");
			if (err != NULL) {
				*err = e2;
			}
			fmi_acct_free(a);
			return rc;
		}
	}
	*out = a;
	return FM_OK;
}

/* ---- calibration ------------------------------------------------------------ */

static int
eps_of_sigma(double sigma, double delta, double q, uint64_t steps,
    fmi_acct_kind k, fmi_sampling s, double *eps, fm_error *err)
{
	if (k == FMI_ACCT_PRV) {
		fmi_dp_event ev = { q, sigma, steps };
		double e[3];
		int rc = fmi_prv_epsilon(&ev, 1, delta, 0, 0, e, err);
		*eps = e[2];
		return rc;
	}
	double rdp[FMI_RDP_NDEFAULT_ORDERS];
	fmi_rdp_compose(q, sigma, steps, s == FMI_SAMPLE_FIXED,
	    fmi_rdp_default_orders, FMI_RDP_NDEFAULT_ORDERS, rdp);
	*eps = fmi_rdp_to_eps(fmi_rdp_default_orders, rdp,
	    FMI_RDP_NDEFAULT_ORDERS, delta, NULL);
	return FM_OK;
}

#define FMI_CALIB_MAX_SIGMA 1e6
#define FMI_CALIB_TOL 0.01
#define FMI_CALIB_MAX_ITER 200

int
fmi_dp_noise_multiplier(double eps, double delta, double q, uint64_t steps,
    fmi_acct_kind k, fmi_sampling s, double *sigma, fm_error *err)
{
	int rc;
	*sigma = NAN;
	if (!(eps > 0) || isinf(eps)) {
		return fm_error_set(err, FM_EINVAL, "epsilon = %g must be a "
		    "finite target > 0", eps);
	}
	if ((rc = fmi_dp_check_delta(delta, "delta", err)) != FM_OK ||
	    (rc = fmi_dp_check_q(q, "sample_rate", err)) != FM_OK) {
		return rc;
	}
	if (steps == 0) {
		return fm_error_set(err, FM_EINVAL, "steps = 0: calibrating "
		    "noise needs at least one step");
	}
	if (k == FMI_ACCT_PRV && s == FMI_SAMPLE_FIXED) {
		return fm_error_set(err, FM_ENOTSUP, "the PRV accountant supports "
		    "Poisson sampling only; with sampling = \"fixed\" use "
		    "accountant = \"rdp\"");
	}
	if (q == 0) {
		*sigma = 0; /* nothing is ever sampled: no noise needed */
		return FM_OK;
	}
	double lo = 0, hi = 10, eh = INFINITY;
	while (eh > eps) {
		hi *= 2;
		if ((rc = eps_of_sigma(hi, delta, q, steps, k, s, &eh, err)) !=
		    FM_OK) {
			return rc;
		}
		if (hi > FMI_CALIB_MAX_SIGMA) {
			return fm_error_set(err, FM_ERANGE, "epsilon = %g at delta "
			    "= %g cannot be met for %llu steps at sample_rate "
			    "%g: noise_multiplier %g still gives epsilon %g; "
			    "raise epsilon or delta, or lower steps or the rate",
			    eps, delta, (unsigned long long)steps, q, hi, eh);
		}
	}
	for (int it = 0; eps - eh > FMI_CALIB_TOL && it < FMI_CALIB_MAX_ITER;
	    it++) {
		double mid = (lo + hi) / 2, e;
		if ((rc = eps_of_sigma(mid, delta, q, steps, k, s, &e, err)) !=
		    FM_OK) {
			return rc;
		}
		if (e < eps) {
			hi = mid;
			eh = e;
		} else {
			lo = mid;
		}
	}
	*sigma = hi;
	return FM_OK;
}
