/* SPDX-License-Identifier: MIT */
/*
 * dpsgd.c: example-level DP-SGD (Abadi et al. 2016) for local training:
 * per-example gradient norms, clip factors, the clipped sum, and the
 * Gaussian noise.
 *
 * One batched forward and one batched backward give every layer's input
 * activations a [b x in] and output deltas d [b x out]. For a dense layer
 * example i's weight gradient is the outer product a_i (x) d_i and its bias
 * gradient d_i, so its squared norm is (|a_i|^2 + 1) |d_i|^2 without ever
 * forming it (the "ghost norm", Goodfellow 2015, Lee and Kifer 2021). Pass
 * one propagates the deltas down through every layer (the weights are not
 * touched yet) and sums these per-example squared norms; then each example
 * gets its factor f_i = min(1, C / |g_i|); pass two forms each layer's
 * clipped sum sum_i f_i a_i (x) d_i as the usual gradient GEMM with the
 * rows of d scaled by f, into the trainer's gradient sink (so SGD, weight
 * decay and momentum run fused as without DP). Conv layers (cnn.c) keep
 * their per-example gradients instead, formed from the im2col buffers.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model_impl.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---- configuration -------------------------------------------------------- */

int
fmi_dpsgd_check(const fmi_dpsgd *dp, fm_error *err)
{
	if (dp == NULL) {
		return FM_OK;
	}
	if (!isfinite(dp->clip) || dp->clip < 0) {
		return fm_error_set(err, FM_EINVAL, "dp: clip (the per-example "
		    "L2 norm bound C) must be a finite number > 0, or 0 for no "
		    "DP-SGD; got %g", dp->clip);
	}
	if (!isfinite(dp->noise_multiplier) || dp->noise_multiplier < 0) {
		return fm_error_set(err, FM_EINVAL, "dp: noise_multiplier (z, "
		    "the noise std over the clip norm) must be a finite number "
		    ">= 0; got %g", dp->noise_multiplier);
	}
	if (!isfinite(dp->expected_batch) || dp->expected_batch < 0) {
		return fm_error_set(err, FM_EINVAL, "dp: expected_batch must be "
		    "a finite number >= 0 (0: divide by each batch's size); got "
		    "%g", dp->expected_batch);
	}
	if (dp->clip == 0 && (dp->noise_multiplier != 0 || dp->noise != NULL ||
	    dp->expected_batch != 0)) {
		return fm_error_set(err, FM_EINVAL, "dp: clip is 0, which turns "
		    "DP-SGD off, but noise_multiplier (%g), a noise callback or "
		    "expected_batch (%g) is set; set clip > 0 to use DP-SGD",
		    dp->noise_multiplier, dp->expected_batch);
	}
	return FM_OK;
}

/* ---- Gaussian noise --------------------------------------------------------- */

/*
 * Box-Muller in float32, two normals per 64 random bits: 31 bits give
 * u in (0, 1] (u >= 2^-32, so |x| <= sqrt(64 ln 2) = 6.66: the tail
 * beyond, of probability 3e-11, is cut), 23 bits an angle phi in
 * [0, pi/4), and 3 bits reflect it into the whole circle (swap cos and
 * sin, then their signs), which keeps the angle uniform. log, sin and cos
 * are polynomials (relative error below 1e-7 on these ranges), so four
 * pairs go through SSE2 at once; the scalar path computes the same.
 */
#define G_LN2 0.693147180559945309f
#define G_SQRT2 1.41421356237309505f
#define G_PI4 0.785398163397448310f

static inline void
g_bits(uint64_t u, float *u1, float *phi)
{
	*u1 = (float)(uint32_t)(u >> 33) * 0x1p-31f + 0x1p-32f;
	*phi = ((float)(uint32_t)((u >> 10) & 0x7fffffu) + 0.5f) * 0x1p-23f *
	    G_PI4;
}

/* log of a positive normal float: e ln 2 + log m, m in [sqrt(1/2),
 * sqrt(2)), log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172. */
static inline float
g_log(float x)
{
	uint32_t bits;
	memcpy(&bits, &x, sizeof bits);
	float e = (float)((int32_t)(bits >> 23) - 127);
	bits = (bits & 0x7fffffu) | 0x3f800000u;
	float m;
	memcpy(&m, &bits, sizeof m);
	if (m > G_SQRT2) {
		m *= 0.5f;
		e += 1.0f;
	}
	float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
	float p = 1.0f + s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 +
	    s2 * (1.0f / 9))));
	return e * G_LN2 + 2.0f * s * p;
}

static inline float
g_sin(float x) /* x in [0, pi/4] */
{
	float x2 = x * x;
	return x * (1.0f + x2 * (-1.0f / 6 + x2 * (1.0f / 120 + x2 *
	    (-1.0f / 5040 + x2 * (1.0f / 362880)))));
}

static inline float
g_cos(float x)
{
	float x2 = x * x;
	return 1.0f + x2 * (-0.5f + x2 * (1.0f / 24 + x2 * (-1.0f / 720 +
	    x2 * (1.0f / 40320))));
}

static inline void
g_pair(uint64_t u, float std, float *x0, float *x1)
{
	float u1, phi;
	g_bits(u, &u1, &phi);
	float l = -2.0f * g_log(u1);
	float r = std * sqrtf(l > 0.0f ? l : 0.0f);
	float c = g_cos(phi), s = g_sin(phi);
	if (u & 1) {
		float tmp = c;
		c = s;
		s = tmp;
	}
	c = (u & 2) ? -c : c;
	s = (u & 4) ? -s : s;
	*x0 += r * c;
	*x1 += r * s;
}

#if defined(__SSE2__)
static inline __m128
g_sel(__m128 mask, __m128 a, __m128 b) /* mask ? a : b */
{
	return _mm_or_ps(_mm_and_ps(mask, a), _mm_andnot_ps(mask, b));
}

static inline __m128
g_log4(__m128 x)
{
	__m128i bits = _mm_castps_si128(x);
	__m128 e = _mm_cvtepi32_ps(_mm_sub_epi32(_mm_srli_epi32(bits, 23),
	    _mm_set1_epi32(127)));
	__m128 m = _mm_castsi128_ps(_mm_or_si128(_mm_and_si128(bits,
	    _mm_set1_epi32(0x7fffff)), _mm_set1_epi32(0x3f800000)));
	__m128 big = _mm_cmpgt_ps(m, _mm_set1_ps(G_SQRT2));
	m = g_sel(big, _mm_mul_ps(m, _mm_set1_ps(0.5f)), m);
	e = _mm_add_ps(e, _mm_and_ps(big, _mm_set1_ps(1.0f)));
	__m128 one = _mm_set1_ps(1.0f);
	__m128 s = _mm_div_ps(_mm_sub_ps(m, one), _mm_add_ps(m, one));
	__m128 s2 = _mm_mul_ps(s, s);
	__m128 p = _mm_add_ps(_mm_set1_ps(1.0f / 7),
	    _mm_mul_ps(s2, _mm_set1_ps(1.0f / 9)));
	p = _mm_add_ps(_mm_set1_ps(1.0f / 5), _mm_mul_ps(s2, p));
	p = _mm_add_ps(_mm_set1_ps(1.0f / 3), _mm_mul_ps(s2, p));
	p = _mm_add_ps(one, _mm_mul_ps(s2, p));
	return _mm_add_ps(_mm_mul_ps(e, _mm_set1_ps(G_LN2)),
	    _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(2.0f), s), p));
}

/* Four pairs from u[0..4): x[0..4) += the first of each, x[4..8) += the
 * second. */
static inline void
g_pair4(const uint64_t *u, __m128 std, float *x)
{
	float u1[4], phi[4];
	int32_t swap[4], sc[4], ss[4];
	for (int j = 0; j < 4; j++) {
		g_bits(u[j], &u1[j], &phi[j]);
		swap[j] = -(int32_t)(u[j] & 1);
		sc[j] = (int32_t)(((u[j] >> 1) & 1) << 31);
		ss[j] = (int32_t)(((u[j] >> 2) & 1) << 31);
	}
	__m128 l = _mm_mul_ps(_mm_set1_ps(-2.0f), g_log4(_mm_loadu_ps(u1)));
	__m128 r = _mm_mul_ps(std, _mm_sqrt_ps(_mm_max_ps(l, _mm_setzero_ps())));
	__m128 p = _mm_loadu_ps(phi), p2 = _mm_mul_ps(p, p);
	__m128 s = _mm_add_ps(_mm_set1_ps(-1.0f / 5040),
	    _mm_mul_ps(p2, _mm_set1_ps(1.0f / 362880)));
	s = _mm_add_ps(_mm_set1_ps(1.0f / 120), _mm_mul_ps(p2, s));
	s = _mm_add_ps(_mm_set1_ps(-1.0f / 6), _mm_mul_ps(p2, s));
	s = _mm_mul_ps(p, _mm_add_ps(_mm_set1_ps(1.0f), _mm_mul_ps(p2, s)));
	__m128 c = _mm_add_ps(_mm_set1_ps(-1.0f / 720),
	    _mm_mul_ps(p2, _mm_set1_ps(1.0f / 40320)));
	c = _mm_add_ps(_mm_set1_ps(1.0f / 24), _mm_mul_ps(p2, c));
	c = _mm_add_ps(_mm_set1_ps(-0.5f), _mm_mul_ps(p2, c));
	c = _mm_add_ps(_mm_set1_ps(1.0f), _mm_mul_ps(p2, c));
	__m128 sw = _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)swap));
	__m128 a = g_sel(sw, s, c), b = g_sel(sw, c, s);
	a = _mm_xor_ps(a, _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)sc)));
	b = _mm_xor_ps(b, _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)ss)));
	_mm_storeu_ps(x, _mm_add_ps(_mm_loadu_ps(x), _mm_mul_ps(r, a)));
	_mm_storeu_ps(x + 4, _mm_add_ps(_mm_loadu_ps(x + 4), _mm_mul_ps(r, b)));
}
#endif

void
fmi_dp_gauss_add(fm_rng *rng, float *x, size_t n, float std)
{
	uint64_t u[64];
	size_t i = 0;
	while (i + 2 <= n) {
		size_t pairs = FMI_MIN((n - i) / 2, FMI_ARRAY_LEN(u)), j = 0;
		for (size_t q = 0; q < pairs; q++) {
			u[q] = fmi_rng_u64(rng);
		}
#if defined(__SSE2__)
		__m128 s4 = _mm_set1_ps(std);
		for (; j + 4 <= pairs; j += 4) {
			g_pair4(u + j, s4, x + i + 2 * j);
		}
#endif
		for (; j < pairs; j++) {
			g_pair(u[j], std, x + i + 2 * j, x + i + 2 * j + 1);
		}
		i += 2 * pairs;
	}
	if (i < n) {
		float spare = 0.0f;
		g_pair(fmi_rng_u64(rng), std, x + i, &spare);
	}
}

/* ---- buffers -------------------------------------------------------------- */

static void
dp_free_arrays(struct fmi_dp_buf *d)
{
	free(d->sq);
	free(d->fac);
	free(d->pex);
	d->sq = NULL;
	d->fac = NULL;
	d->pex = NULL;
	for (uint32_t l = 0; l < FMI_MAX_LAYERS; l++) {
		free(d->delta[l]);
		d->delta[l] = NULL;
	}
	d->cap = 0;
}

void
fmi_dp_free(struct fmi_dp_buf *d)
{
	if (d != NULL) {
		dp_free_arrays(d);
		free(d);
	}
}

/* Which layers keep their output delta for pass two: a dense network's
 * hidden layers (the top one's is the logit gradient in act[top]); the
 * CNN's fc1 (its conv layers keep per-example gradients instead). */
static int
keeps_delta(const fmi_arch *a, uint32_t l)
{
	return fmi_arch_is_cnn(a) ? l == 2 : l + 1 < a->nlayers;
}

int
fmi_dp_reserve(fmi_trainer *t, size_t b)
{
	const fmi_arch *a = &t->arch;
	struct fmi_dp_buf *d = t->dp;
	if (d != NULL && d->cap >= b) {
		return FM_OK;
	}
	if (d == NULL && (d = t->dp = calloc(1, sizeof *d)) == NULL) {
		return FM_ENOMEM;
	}
	dp_free_arrays(d);
	int ok = (d->sq = malloc(b * sizeof *d->sq)) != NULL;
	ok = ok && (d->fac = fmi_model_falloc(b)) != NULL;
	for (uint32_t l = 0; ok && l < a->nlayers; l++) {
		if (keeps_delta(a, l)) {
			ok = (d->delta[l] = fmi_model_falloc(b *
			    a->widths[l + 1])) != NULL;
		}
	}
	if (ok && fmi_arch_is_cnn(a)) {
		/* conv1 and conv2 (weights and biases) are the parameters
		 * before fc1.weight */
		ok = (d->pex = fmi_model_falloc(b * a->slices[4].offset)) !=
		    NULL;
	}
	if (!ok) {
		dp_free_arrays(d);
		return FM_ENOMEM;
	}
	d->cap = b;
	return FM_OK;
}

/* ---- per-example norms ---------------------------------------------------- */

static double
sumsq(const float *restrict x, size_t n)
{
	float acc[FMI_VB] = { 0 };
	size_t i = 0;
	for (; i + FMI_VB <= n; i += FMI_VB) {
		for (size_t q = 0; q < FMI_VB; q++) {
			acc[q] += x[i + q] * x[i + q];
		}
	}
	double s = 0;
	for (; i < n; i++) {
		s += (double)x[i] * x[i];
	}
	for (size_t q = 0; q < FMI_VB; q++) {
		s += acc[q];
	}
	return s;
}

void
fmi_dp_dense_norms(double *restrict sq, const float *restrict a, size_t ka,
    const float *restrict d, size_t kd, size_t b)
{
	for (size_t i = 0; i < b; i++) {
		sq[i] += (sumsq(a + i * ka, ka) + 1.0) * sumsq(d + i * kd, kd);
	}
}

void
fmi_dp_rows_sq(double *restrict sq, const float *restrict x, size_t b,
    size_t k, size_t ld)
{
	for (size_t i = 0; i < b; i++) {
		sq[i] += sumsq(x + i * ld, k);
	}
}

void
fmi_dp_scale_rows(float *restrict d, const float *restrict fac, size_t b,
    size_t k)
{
	for (size_t i = 0; i < b; i++) {
		float f = fac[i];
		if (f != 1.0f) {
			fmi_scal(k, f, d + i * k);
		}
	}
}

/* ---- dense networks ------------------------------------------------------- */

/* Pass one: every layer's output delta (kept in dp->delta) and the
 * per-example squared norms (|a_i|^2 + 1) |d_i|^2 summed into sq. */
static void
mlp_norms(fmi_trainer *t, const float *x, size_t b, double *sq)
{
	const fmi_arch *a = &t->arch;
	const float *dy = t->act[a->nlayers];
	for (uint32_t l = a->nlayers; l-- > 0;) {
		const fmi_slice *w = &a->slices[2 * l];
		const float *in = l > 0 ? t->act[l] : x;
		fmi_dp_dense_norms(sq, in, w->rows, dy, w->cols, b);
		if (l > 0) {
			float *dx = t->dp->delta[l - 1];
			fmi_gemm(0, 1, b, w->rows, w->cols, 1.0f, dy, w->cols,
			    t->params + w->offset, w->cols, 0.0f, dx, w->rows);
			fmi_model_relu_mask(dx, in, b * w->rows);
			dy = dx;
		}
	}
}

/* Pass two: each layer's clipped sum, one GEMM on the rescaled deltas. */
static void
mlp_apply(fmi_trainer *t, const float *x, size_t b, const float *fac,
    const fmi_grad_sink *s)
{
	const fmi_arch *a = &t->arch;
	for (uint32_t l = a->nlayers; l-- > 0;) {
		const fmi_slice *w = &a->slices[2 * l];
		const float *in = l > 0 ? t->act[l] : x;
		float *dy = l + 1 == a->nlayers ? t->act[l + 1] : t->dp->delta[l];
		size_t boff = a->slices[2 * l + 1].offset;
		fmi_dp_scale_rows(dy, fac, b, w->cols);
		fmi_gemm(1, 0, w->rows, w->cols, b, s->alpha, in, w->rows, dy,
		    w->cols, s->beta, s->dst + w->offset, w->cols);
		fmi_model_bias_grad(s->dst + boff, t->bsum, dy, b, w->cols,
		    s->alpha, s->beta);
		fmi_model_sink_finish(t, s, w->offset,
		    boff + w->cols - w->offset);
	}
}

void
fmi_dp_backward(fmi_trainer *t, const float *x, size_t b, double clip,
    const fmi_grad_sink *s, double *norms, fmi_dp_tally *tally)
{
	struct fmi_dp_buf *d = t->dp;
	memset(d->sq, 0, b * sizeof *d->sq);
	if (t->cnn != NULL) {
		fmi_cnn_dp_norms(t, x, b, d->sq);
	} else {
		mlp_norms(t, x, b, d->sq);
	}
	uint64_t clipped = 0;
	double sum = 0;
	for (size_t i = 0; i < b; i++) {
		double nrm = sqrt(d->sq[i]);
		int over = nrm > clip;
		d->fac[i] = over ? (float)(clip / nrm) : 1.0f;
		clipped += (uint64_t)over;
		sum += nrm;
		if (norms != NULL) {
			norms[i] = nrm;
		}
	}
	if (tally != NULL) {
		tally->clipped += clipped;
		tally->norm_sum += sum;
		tally->n += b;
	}
	if (t->cnn != NULL) {
		fmi_cnn_dp_apply(t, b, d->fac, s);
	} else {
		mlp_apply(t, x, b, d->fac, s);
	}
}
