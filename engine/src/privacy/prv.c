/* SPDX-License-Identifier: MIT */
/*
 * prv.c: the PRV accountant (Gopi, Lee, Wutschitz 2021, "Numerical
 * composition of differential privacy"), following the choices of
 * Opacus's PRVAccountant so that its published test values are
 * reproduced:
 *
 * 1. The truncation bound L = max(L_rdp, eps_error) + 3, where L_rdp is
 *    the larger of the RDP epsilon of the whole composition at
 *    delta_error / 4 and of one step of each event at delta_error / (8 T),
 *    with Opacus's orders and conversion (Remark 5.6 of the paper).
 * 2. A grid of mesh eps_error / sqrt(T log(12 / delta_error) / 2) on
 *    [-L, L], aligned so that 0 is a grid point, an even number of points
 *    (the origin at index n/2 - 1).
 * 3. For each (q, sigma): the PRV truncated to the grid's range,
 *    discretised as the mass of each cell, and shifted so that the
 *    discrete mean equals the continuous one (computed by adaptive
 *    Gauss-Kronrod quadrature of the CDF and survival function).
 * 4. T-fold self-composition as a circular convolution of the grid's
 *    size, by raising its DFT to the T-th power; the DFT has the exact
 *    size (an arbitrary even n: the real DFT is a complex DFT of n/2
 *    points, done by Bluestein's chirp-z algorithm over a radix-2 FFT
 *    when n/2 is not a power of two). Different (q, sigma) are then
 *    convolved linearly ("same" size).
 * 5. delta(eps) = sum_{t_i >= eps} p_i (1 - e^{eps - t_i}) is inverted at
 *    delta - delta_error, delta, delta + delta_error; the guarantee is the
 *    first plus eps_error.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "privacy/accountant.h"
#include "privacy/privacy_int.h"

/* ---- FFT ---------------------------------------------------------------- */

static int
is_pow2(size_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

static size_t
next_pow2(size_t n)
{
	size_t m = 1;
	while (m < n) {
		m <<= 1;
	}
	return m;
}

/* In-place iterative radix-2 FFT of m complex values (interleaved re, im):
 * X_k = sum_j x_j e^{-2 pi i jk / m} (inv: e^{+...}, unnormalised). tw
 * holds e^{-2 pi i k / m} for k < m / 2. */
static void
fft_pow2(double *x, size_t m, const double *tw, int inv)
{
	for (size_t i = 1, j = 0; i < m; i++) {
		size_t bit = m >> 1;
		for (; j & bit; bit >>= 1) {
			j ^= bit;
		}
		j ^= bit;
		if (i < j) {
			double t0 = x[2 * i], t1 = x[2 * i + 1];
			x[2 * i] = x[2 * j];
			x[2 * i + 1] = x[2 * j + 1];
			x[2 * j] = t0;
			x[2 * j + 1] = t1;
		}
	}
	double sg = inv ? -1.0 : 1.0;
	for (size_t len = 2; len <= m; len <<= 1) {
		size_t half = len >> 1, step = m / len;
		for (size_t i = 0; i < m; i += len) {
			double *a = x + 2 * i, *b = x + 2 * (i + half);
			for (size_t k = 0; k < half; k++) {
				double wr = tw[2 * k * step];
				double wi = sg * tw[2 * k * step + 1];
				double br = b[2 * k], bi = b[2 * k + 1];
				double tr = br * wr - bi * wi;
				double ti = br * wi + bi * wr;
				b[2 * k] = a[2 * k] - tr;
				b[2 * k + 1] = a[2 * k + 1] - ti;
				a[2 * k] += tr;
				a[2 * k + 1] += ti;
			}
		}
	}
}

/* twiddles e^{-2 pi i k / m}, k < m / 2, each from its own cos / sin */
static double *
make_twiddles(size_t m)
{
	size_t h = m / 2 ? m / 2 : 1;
	double *tw = malloc(2 * h * sizeof *tw);
	if (tw == NULL) {
		return NULL;
	}
	for (size_t k = 0; k < h; k++) {
		double a = -2.0 * M_PI * (double)k / (double)m;
		tw[2 * k] = cos(a);
		tw[2 * k + 1] = sin(a);
	}
	return tw;
}

/* A complex DFT of any size n: radix-2 when n is a power of two, else
 * Bluestein: with c_j = e^{-pi i j^2 / n}, X_k = c_k sum_j (x_j c_j)
 * conj(c_{k-j}), a convolution done by FFTs of size m >= 2n - 1. */
typedef struct cdft {
	size_t n, m;
	double *tw;    /* [m] twiddles of the radix-2 FFT */
	double *chirp; /* [2n] c_j (Bluestein only) */
	double *bf;    /* [2m] FFT of the conjugate chirp, / m */
	double *work;  /* [2m] */
} cdft;

static void
cdft_free(cdft *p)
{
	free(p->tw);
	free(p->chirp);
	free(p->bf);
	free(p->work);
	memset(p, 0, sizeof *p);
}

static int
cdft_init(cdft *p, size_t n)
{
	memset(p, 0, sizeof *p);
	p->n = n;
	if (is_pow2(n)) {
		p->m = n;
		p->tw = make_twiddles(n);
		return p->tw ? FM_OK : FM_ENOMEM;
	}
	size_t m = next_pow2(2 * n - 1);
	p->m = m;
	p->tw = make_twiddles(m);
	p->chirp = malloc(2 * n * sizeof *p->chirp);
	p->bf = calloc(2 * m, sizeof *p->bf);
	p->work = malloc(2 * m * sizeof *p->work);
	if (!p->tw || !p->chirp || !p->bf || !p->work) {
		cdft_free(p);
		return FM_ENOMEM;
	}
	for (size_t j = 0; j < n; j++) {
		/* j^2 mod 2n exactly, so the angle keeps full precision */
		uint64_t r = (uint64_t)(((unsigned __int128)j * j) % (2 * n));
		double a = -M_PI * (double)r / (double)n;
		p->chirp[2 * j] = cos(a);
		p->chirp[2 * j + 1] = sin(a);
	}
	/* b_d = conj(c_d) for d in (-(n-1), n-1), wrapped */
	for (size_t j = 0; j < n; j++) {
		double re = p->chirp[2 * j], im = -p->chirp[2 * j + 1];
		p->bf[2 * j] = re;
		p->bf[2 * j + 1] = im;
		if (j > 0) {
			p->bf[2 * (m - j)] = re;
			p->bf[2 * (m - j) + 1] = im;
		}
	}
	fft_pow2(p->bf, m, p->tw, 0);
	for (size_t k = 0; k < 2 * m; k++) {
		p->bf[k] /= (double)m;
	}
	return FM_OK;
}

/* In place on n complex values; inv: e^{+...}, unnormalised. */
static void
cdft_run(cdft *p, double *x, int inv)
{
	size_t n = p->n, m = p->m;
	if (p->chirp == NULL) {
		fft_pow2(x, n, p->tw, inv);
		return;
	}
	double sg = inv ? -1.0 : 1.0; /* IDFT(x) = conj(DFT(conj(x))) */
	double *w = p->work;
	for (size_t j = 0; j < n; j++) {
		double xr = x[2 * j], xi = sg * x[2 * j + 1];
		double cr = p->chirp[2 * j], ci = p->chirp[2 * j + 1];
		w[2 * j] = xr * cr - xi * ci;
		w[2 * j + 1] = xr * ci + xi * cr;
	}
	memset(w + 2 * n, 0, 2 * (m - n) * sizeof *w);
	fft_pow2(w, m, p->tw, 0);
	for (size_t k = 0; k < m; k++) {
		double ar = w[2 * k], ai = w[2 * k + 1];
		double br = p->bf[2 * k], bi = p->bf[2 * k + 1];
		w[2 * k] = ar * br - ai * bi;
		w[2 * k + 1] = ar * bi + ai * br;
	}
	fft_pow2(w, m, p->tw, 1);
	for (size_t k = 0; k < n; k++) {
		double ar = w[2 * k], ai = w[2 * k + 1];
		double cr = p->chirp[2 * k], ci = p->chirp[2 * k + 1];
		x[2 * k] = ar * cr - ai * ci;
		x[2 * k + 1] = sg * (ar * ci + ai * cr);
	}
}

/* The real DFT of n (even) points through a complex DFT of h = n / 2:
 * z_j = x_{2j} + i x_{2j+1}, X_k = E_k + W^k O_k with W = e^{-2 pi i / n}. */
typedef struct rdft {
	size_t n, h;
	cdft c;
	double *w; /* [2 (h + 1)] W^k */
	double *z; /* [2h] */
} rdft;

static void
rdft_free(rdft *p)
{
	cdft_free(&p->c);
	free(p->w);
	free(p->z);
	memset(p, 0, sizeof *p);
}

static int
rdft_init(rdft *p, size_t n)
{
	memset(p, 0, sizeof *p);
	p->n = n;
	p->h = n / 2;
	if (cdft_init(&p->c, p->h) != FM_OK) {
		return FM_ENOMEM;
	}
	p->w = malloc(2 * (p->h + 1) * sizeof *p->w);
	p->z = malloc(2 * p->h * sizeof *p->z);
	if (p->w == NULL || p->z == NULL) {
		rdft_free(p);
		return FM_ENOMEM;
	}
	for (size_t k = 0; k <= p->h; k++) {
		double a = -2.0 * M_PI * (double)k / (double)n;
		p->w[2 * k] = cos(a);
		p->w[2 * k + 1] = sin(a);
	}
	return FM_OK;
}

/* X[0..h] (2 (h + 1) doubles) from x[0..n-1]. */
static void
rdft_fwd(rdft *p, const double *x, double *X)
{
	size_t h = p->h;
	memcpy(p->z, x, 2 * h * sizeof *x);
	cdft_run(&p->c, p->z, 0);
	const double *Z = p->z;
	for (size_t k = 0; k <= h; k++) {
		size_t a = k % h, b = (h - k) % h;
		double zr = Z[2 * a], zi = Z[2 * a + 1];
		double cr = Z[2 * b], ci = -Z[2 * b + 1]; /* conj(Z_{h-k}) */
		double er = 0.5 * (zr + cr), ei = 0.5 * (zi + ci);
		/* O = (Z_k - conj(Z_{h-k})) / (2i) */
		double or_ = 0.5 * (zi - ci), oi = -0.5 * (zr - cr);
		double wr = p->w[2 * k], wi = p->w[2 * k + 1];
		X[2 * k] = er + wr * or_ - wi * oi;
		X[2 * k + 1] = ei + wr * oi + wi * or_;
	}
}

/* x[0..n-1] = the inverse real DFT of X[0..h], with the 1/n. */
static void
rdft_inv(rdft *p, const double *X, double *x)
{
	size_t h = p->h;
	double *Z = p->z;
	for (size_t k = 0; k < h; k++) {
		double xr = X[2 * k], xi = k == 0 ? 0 : X[2 * k + 1];
		double cr = X[2 * (h - k)];
		double ci = h - k == h ? 0 : -X[2 * (h - k) + 1];
		double er = 0.5 * (xr + cr), ei = 0.5 * (xi + ci);
		double dr = 0.5 * (xr - cr), di = 0.5 * (xi - ci);
		/* O = D W^{-k} */
		double wr = p->w[2 * k], wi = -p->w[2 * k + 1];
		double or_ = dr * wr - di * wi, oi = dr * wi + di * wr;
		/* Z = E + i O */
		Z[2 * k] = er - oi;
		Z[2 * k + 1] = ei + or_;
	}
	cdft_run(&p->c, Z, 1);
	for (size_t j = 0; j < 2 * h; j++) {
		x[j] = Z[j] / (double)h;
	}
}

int
fmi_circ_conv_power(const double *p, size_t n, uint64_t k, double *out)
{
	if (n < 2 || n % 2 != 0 || k == 0) {
		return FM_EINVAL;
	}
	if (k == 1) {
		memmove(out, p, n * sizeof *p);
		return FM_OK;
	}
	rdft r;
	double *X = malloc(2 * (n / 2 + 1) * sizeof *X);
	double *c = malloc(n * sizeof *c);
	if (X == NULL || c == NULL || rdft_init(&r, n) != FM_OK) {
		free(X);
		free(c);
		return FM_ENOMEM;
	}
	rdft_fwd(&r, p, X);
	double dk = (double)k;
	for (size_t i = 0; i <= n / 2; i++) {
		double re = X[2 * i], im = X[2 * i + 1];
		double mag = hypot(re, im);
		if (mag == 0) {
			X[2 * i] = X[2 * i + 1] = 0;
			continue;
		}
		double lm = dk * log(mag), th = dk * atan2(im, re);
		double e = exp(lm);
		X[2 * i] = e * cos(th);
		X[2 * i + 1] = e * sin(th);
	}
	rdft_inv(&r, X, c);
	/* the sum of k grid points lands (k - 1)(n/2 - 1) cells to the right
	 * of where the origin-based grid puts it */
	uint64_t sh = (uint64_t)((((unsigned __int128)((k - 1) % n)) *
	    (n / 2 - 1)) % n);
	for (size_t j = 0; j < n; j++) {
		out[j] = c[(j + sh) % n];
	}
	rdft_free(&r);
	free(X);
	free(c);
	return FM_OK;
}

int
fmi_lin_conv_same(const double *a, const double *b, size_t n, double *out)
{
	if (n < 2 || n % 2 != 0) {
		return FM_EINVAL;
	}
	size_t m = next_pow2(2 * n - 1);
	if (m < 2) {
		m = 2;
	}
	rdft r;
	double *xa = calloc(m, sizeof *xa), *xb = calloc(m, sizeof *xb);
	double *A = malloc(2 * (m / 2 + 1) * sizeof *A);
	double *B = malloc(2 * (m / 2 + 1) * sizeof *B);
	if (!xa || !xb || !A || !B || rdft_init(&r, m) != FM_OK) {
		free(xa);
		free(xb);
		free(A);
		free(B);
		return FM_ENOMEM;
	}
	memcpy(xa, a, n * sizeof *a);
	memcpy(xb, b, n * sizeof *b);
	rdft_fwd(&r, xa, A);
	rdft_fwd(&r, xb, B);
	for (size_t k = 0; k <= m / 2; k++) {
		double ar = A[2 * k], ai = A[2 * k + 1];
		double br = B[2 * k], bi = B[2 * k + 1];
		A[2 * k] = ar * br - ai * bi;
		A[2 * k + 1] = ar * bi + ai * br;
	}
	rdft_inv(&r, A, xa);
	memcpy(out, xa + (n / 2 - 1), n * sizeof *out);
	rdft_free(&r);
	free(xa);
	free(xb);
	free(A);
	free(B);
	return FM_OK;
}

/* ---- the privacy random variable ------------------------------------------ */

/* z(t) = log((e^t - (1 - q)) / q), the Gaussian output at which the
 * privacy loss is t; -inf at and below the support's end log(1 - q). */
static double
prv_z(double q, double t)
{
	if (t > 0) {
		return t + log1p(-(1 - q) * exp(-t)) - log(q);
	}
	double w = q >= 0.5 ? exp(t) - (1 - q) : expm1(t) + q;
	return w > 0 ? log(w) - log(q) : -INFINITY;
}

/* P[L <= t] = (q erfc(-u) + (1-q) erfc(-v)) / 2 and P[L > t] = (q erfc(u)
 * + (1-q) erfc(v)) / 2, u, v = (2 z sigma^2 -+ 1) / (2 sqrt(2) sigma): the
 * two forms of Prop. B4, each free of cancellation in its own tail. */
double
fmi_prv_cdf(double q, double sigma, double t)
{
	double z = prv_z(q, t);
	if (z == -INFINITY) {
		return 0;
	}
	double d = 2 * sqrt(2.0) * sigma, a = 2 * z * sigma * sigma;
	return 0.5 * (q * erfc(-(a - 1) / d) + (1 - q) * erfc(-(a + 1) / d));
}

double
fmi_prv_sf(double q, double sigma, double t)
{
	double z = prv_z(q, t);
	if (z == -INFINITY) {
		return 1;
	}
	double d = 2 * sqrt(2.0) * sigma, a = 2 * z * sigma * sigma;
	return 0.5 * (q * erfc((a - 1) / d) + (1 - q) * erfc((a + 1) / d));
}

/* The PRV truncated to [t0, t1]: F_T(t) = (F(t) - F(t0)) / mass,
 * S_T(t) = (S(t) - S(t1)) / mass. */
typedef struct tprv {
	double q, sigma, t0, t1, f0, s1, mass;
} tprv;

static double
tprv_cdf(const tprv *p, double t)
{
	if (t < p->t0) {
		return 0;
	}
	if (t >= p->t1) {
		return 1;
	}
	return (fmi_prv_cdf(p->q, p->sigma, t) - p->f0) / p->mass;
}

static double
tprv_sf(const tprv *p, double t)
{
	if (t < p->t0) {
		return 1;
	}
	if (t >= p->t1) {
		return 0;
	}
	return (fmi_prv_sf(p->q, p->sigma, t) - p->s1) / p->mass;
}

/* ---- adaptive Gauss-Kronrod (7, 15) ---------------------------------------- */

typedef double (*integrand)(const tprv *p, double t);

static const double gk_x[8] = {
	0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
	0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
	0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
	0.207784955007898467600689403773245, 0.000000000000000000000000000000000,
};
static const double gk_wk[8] = {
	0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
	0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
	0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
	0.204432940075298892414161999234649, 0.209482141084727828012999174891714,
};
static const double gk_wg[4] = {
	0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
	0.381830050505118944950369775488975, 0.417959183673469387755102040816327,
};

static double
gk15(integrand f, const tprv *p, double a, double b, double *err,
    double *resabs)
{
	double c = 0.5 * (a + b), hl = 0.5 * (b - a);
	double fc = f(p, c), rk = fc * gk_wk[7], rg = fc * gk_wg[3];
	double ra = fabs(rk);
	for (int i = 0; i < 7; i++) {
		double dx = hl * gk_x[i];
		double f1 = f(p, c - dx), f2 = f(p, c + dx);
		rk += gk_wk[i] * (f1 + f2);
		ra += gk_wk[i] * (fabs(f1) + fabs(f2));
		if (i % 2 == 1) {
			rg += gk_wg[i / 2] * (f1 + f2);
		}
	}
	*err = fabs((rk - rg) * hl);
	*resabs = ra * fabs(hl);
	return rk * hl;
}

static double
integrate(integrand f, const tprv *p, double a, double b, double tol,
    int depth)
{
	double err, ra;
	double r = gk15(f, p, a, b, &err, &ra);
	/* a (7, 15) pair's |K - G| overstates the error of K for smooth
	 * integrands; below 100 ulps of the integral of |f| rounding rules */
	if (err <= tol || err <= 100 * DBL_EPSILON * ra || depth >= 40) {
		return r;
	}
	double m = 0.5 * (a + b);
	return integrate(f, p, a, m, tol / 2, depth + 1) +
	    integrate(f, p, m, b, tol / 2, depth + 1);
}

/* E[L_T] = int_0^t1 S_T - int_t0^0 F_T, each piece split at +-1e-5 ...
 * +-0.1 where the loss of small q concentrates. */
static double
tprv_mean(const tprv *p)
{
	static const double cuts[5] = { 1e-5, 1e-4, 1e-3, 1e-2, 1e-1 };
	double lo = p->t0, sup = p->q < 1 ? log1p(-p->q) : -INFINITY;
	if (sup > lo) {
		lo = sup; /* F = 0 below the support */
	}
	long double pos = 0, neg = 0;
	double prev = 0;
	for (int i = 0; i <= 5; i++) {
		double nx = i < 5 ? cuts[i] : p->t1;
		if (nx > p->t1) {
			nx = p->t1;
		}
		if (nx > prev) {
			pos += integrate(tprv_sf, p, prev, nx, 1e-17, 0);
			prev = nx;
		}
	}
	prev = 0;
	for (int i = 0; i <= 5 && lo < 0; i++) {
		double nx = i < 5 ? -cuts[i] : lo;
		if (nx < lo) {
			nx = lo;
		}
		if (nx < prev) {
			neg += integrate(tprv_cdf, p, nx, prev, 1e-17, 0);
			prev = nx;
		}
	}
	return (double)(pos - neg);
}

/* The mass of each grid cell [t_i - dt/2, t_i + dt/2), t_i = t0 + i dt,
 * and the shift that makes the discrete mean the continuous one. */
static int
discretize(double q, double sigma, double t0, double t1, double dt, size_t n,
    double *pmf, double *shift, fm_error *err)
{
	tprv p = { q, sigma, t0, t1, 0, 0, 1 };
	p.f0 = fmi_prv_cdf(q, sigma, t0);
	p.s1 = fmi_prv_sf(q, sigma, t1);
	p.mass = 1 - p.f0 - p.s1;
	double prev_e = t0 - 0.5 * dt;
	double prev_f = tprv_cdf(&p, prev_e), prev_s = tprv_sf(&p, prev_e);
	long double mean_d = 0;
	for (size_t i = 0; i < n; i++) {
		double e = t0 + ((double)i + 0.5) * dt;
		double f = e < 0 ? tprv_cdf(&p, e) : 0;
		double s = e >= 0 ? tprv_sf(&p, e) : 0;
		double m;
		if (prev_e >= 0) {
			m = prev_s - s;
		} else if (e < 0) {
			m = f - prev_f;
		} else {
			m = (1 - s) - prev_f;
		}
		pmf[i] = m > 0 ? m : 0;
		mean_d += (long double)(t0 + (double)i * dt) * pmf[i];
		prev_e = e;
		prev_f = f;
		prev_s = s;
	}
	double mean_c = tprv_mean(&p);
	*shift = mean_c - (double)mean_d;
	if (!(fabs(*shift) < dt / 2)) {
		return fm_error_set(err, FM_EINTERNAL, "PRV accountant: the "
		    "discrete mean of q = %g, sigma = %g differs from the "
		    "continuous one by %g (grid step %g); use accountant = "
		    "\"rdp\"", q, sigma, *shift, dt);
	}
	return FM_OK;
}

/* ---- epsilon from the composed distribution ---------------------------- */

typedef struct tail {
	double *d1, *d2; /* sum_{j >= i} p_j, sum_{j >= i} p_j e^{-t_j} */
	double t0, dt;
	size_t n;
} tail;

/* eps with delta(eps) = target, from the first grid point i whose
 * delta(t_i) = d1_i - e^{t_i} d2_i is at most target. */
static int
find_eps(const tail *tl, double target, double *eps)
{
	size_t lo = 0, hi = tl->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		double t = tl->t0 + (double)mid * tl->dt;
		double nd = exp(t) * tl->d2[mid] - tl->d1[mid];
		if (nd < -target) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	if (lo == 0 || lo >= tl->n) {
		return FM_ERANGE;
	}
	*eps = log((tl->d1[lo] - target) / tl->d2[lo]);
	return isnan(*eps) ? FM_ERANGE : FM_OK;
}

static int
eps_from_pmf(const double *p, size_t n, double t0, double dt, double delta,
    double delta_error, double eps_error, double out[3], fm_error *err)
{
	if (LDBL_EPSILON * (long double)n > delta - delta_error) {
		return fm_error_set(err, FM_ERANGE, "PRV accountant: delta = %g "
		    "is too small for a grid of %zu points (rounding would "
		    "dominate); raise delta or use accountant = \"rdp\"", delta,
		    n);
	}
	tail tl = { malloc(n * sizeof(double)), malloc(n *
	    sizeof(double)), t0, dt, n };
	if (tl.d1 == NULL || tl.d2 == NULL) {
		free(tl.d1);
		free(tl.d2);
		return fm_error_set(err, FM_ENOMEM, "PRV accountant: out of "
		    "memory");
	}
	long double s1 = 0, s2 = 0;
	for (size_t i = n; i-- > 0;) {
		double t = t0 + (double)i * dt;
		s1 += p[i];
		s2 += p[i] == 0 ? 0 : (long double)p[i] * expl(-(long double)t);
		tl.d1[i] = (double)s1;
		tl.d2[i] = (double)s2;
	}
	double e_up, e_est, e_lo;
	int rc = find_eps(&tl, delta - delta_error, &e_up);
	if (rc == FM_OK) {
		rc = find_eps(&tl, delta, &e_est);
	}
	if (rc == FM_OK) {
		rc = find_eps(&tl, delta + delta_error, &e_lo);
	}
	free(tl.d1);
	free(tl.d2);
	if (rc != FM_OK) {
		return fm_error_set(err, FM_ERANGE, "PRV accountant: cannot "
		    "compute epsilon at delta = %g on this grid (the privacy "
		    "loss leaves the grid); use accountant = \"rdp\"", delta);
	}
	out[0] = e_lo - eps_error;
	out[1] = e_est;
	out[2] = e_up + eps_error;
	return FM_OK;
}

/* ---- the accountant ---------------------------------------------------- */

#define FMI_PRV_MAX_POINTS ((size_t)1 << 24)

/* Opacus's RDP epsilon of ev (steps each, or one step when one != 0). */
static double
rdp_eps_opacus(const fmi_dp_event *ev, size_t nev, int one, double delta)
{
	double rdp[FMI_RDP_NOPACUS_ORDERS], r1[FMI_RDP_NOPACUS_ORDERS];
	memset(rdp, 0, sizeof rdp);
	for (size_t i = 0; i < nev; i++) {
		fmi_rdp_compose(ev[i].q, ev[i].sigma, one ? 1 : ev[i].steps, 0,
		    fmi_rdp_opacus_orders, FMI_RDP_NOPACUS_ORDERS, r1);
		for (size_t k = 0; k < FMI_RDP_NOPACUS_ORDERS; k++) {
			rdp[k] += r1[k];
		}
	}
	return fmi_rdp_to_eps_opacus(fmi_rdp_opacus_orders, rdp,
	    FMI_RDP_NOPACUS_ORDERS, delta);
}

int
fmi_prv_epsilon(const fmi_dp_event *ev, size_t nev, double delta,
    double eps_error, double delta_error, double eps[3], fm_error *err)
{
	int rc;
	eps[0] = eps[1] = eps[2] = NAN;
	if ((rc = fmi_dp_check_delta(delta, "delta", err)) != FM_OK) {
		return rc;
	}
	if (!(eps_error > 0)) {
		eps_error = 0.01;
	}
	if (!(delta_error > 0)) {
		delta_error = delta / 1000;
	}
	if (!(delta_error < delta) || isinf(eps_error)) {
		return fm_error_set(err, FM_EINVAL, "PRV accountant: delta_error "
		    "= %g must be below delta = %g and eps_error = %g finite",
		    delta_error, delta, eps_error);
	}
	/* the events that cost anything */
	fmi_dp_event *act = malloc((nev ? nev : 1) * sizeof *act);
	if (act == NULL) {
		return fm_error_set(err, FM_ENOMEM, "PRV accountant: out of "
		    "memory");
	}
	size_t na = 0;
	double total = 0;
	int no_noise = 0;
	for (size_t i = 0; i < nev; i++) {
		if ((rc = fmi_dp_check_q(ev[i].q, "sample_rate", err)) != FM_OK ||
		    (rc = fmi_dp_check_sigma(ev[i].sigma, "noise_multiplier",
		    err)) != FM_OK) {
			free(act);
			return rc;
		}
		if (ev[i].q == 0 || ev[i].steps == 0) {
			continue;
		}
		no_noise |= ev[i].sigma == 0;
		act[na++] = ev[i];
		total += (double)ev[i].steps;
	}
	if (na == 0 || no_noise) {
		free(act);
		eps[0] = eps[1] = eps[2] = na == 0 ? 0 : INFINITY;
		return FM_OK;
	}
	/* 1. truncation (Opacus's compute_safe_domain_size) */
	double lmax = rdp_eps_opacus(act, na, 0, delta_error / 4);
	for (size_t i = 0; i < na; i++) {
		double l1 = rdp_eps_opacus(&act[i], 1, 1,
		    delta_error / (8 * total));
		lmax = fmax(lmax, l1);
	}
	double L = fmax(lmax, eps_error) + 3;
	/* 2. the grid (Domain.create_aligned(-L, L, mesh)) */
	double mesh = eps_error / sqrt(total * log(12 / delta_error) / 2);
	double t0 = floor(-L / mesh) * mesh, t1 = ceil(L / mesh) * mesh;
	double npts = round((t1 - t0) / mesh) + 1;
	if (!(L < 700) || !(npts <= (double)FMI_PRV_MAX_POINTS)) {
		free(act);
		return fm_error_set(err, FM_ERANGE, "PRV accountant: the privacy "
		    "loss of %.0f steps reaches %g (its RDP bound), which needs "
		    "a grid of %.3g points (at most %zu, and |loss| < 700); "
		    "use accountant = \"rdp\"", total, lmax, npts,
		    FMI_PRV_MAX_POINTS);
	}
	size_t n = (size_t)npts;
	if (n % 2 == 1) {
		n++;
		t1 += mesh;
	}
	double dt = (t1 - t0) / (double)(n - 1);
	double *pmf = malloc(n * sizeof *pmf), *comp = malloc(n * sizeof *comp);
	double *acc = NULL;
	if (pmf == NULL || comp == NULL) {
		rc = fm_error_set(err, FM_ENOMEM, "PRV accountant: out of memory "
		    "for a grid of %zu points", n);
		goto out;
	}
	/* 3.-4. each event, then their convolution */
	double shift_total = 0;
	for (size_t i = 0; i < na; i++) {
		double shift;
		if ((rc = discretize(act[i].q, act[i].sigma, t0, t1, dt, n, pmf,
		    &shift, err)) != FM_OK) {
			goto out;
		}
		if (fmi_circ_conv_power(pmf, n, act[i].steps, comp) != FM_OK) {
			rc = fm_error_set(err, FM_ENOMEM, "PRV accountant: out of "
			    "memory for a grid of %zu points", n);
			goto out;
		}
		shift_total += shift * (double)act[i].steps;
		if (acc == NULL) {
			acc = comp;
			comp = malloc(n * sizeof *comp);
			if (comp == NULL) {
				rc = fm_error_set(err, FM_ENOMEM, "PRV accountant: "
				    "out of memory");
				goto out;
			}
		} else if (fmi_lin_conv_same(acc, comp, n, acc) != FM_OK) {
			rc = fm_error_set(err, FM_ENOMEM, "PRV accountant: out of "
			    "memory for a grid of %zu points", n);
			goto out;
		}
	}
	/* 5. */
	rc = eps_from_pmf(acc, n, t0 + shift_total, dt, delta, delta_error,
	    eps_error, eps, err);
out:
	free(act);
	free(pmf);
	free(comp);
	free(acc);
	return rc;
}
