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
 * Box-Muller in float32, two normals per 64 random bits u: the top 31
 * give u1 in (0, 1] (u1 >= 2^-32, so |x| <= sqrt(64 ln 2) = 6.66: the
 * tail beyond, of probability 3e-11, is cut), bits 9..31 an angle phi in
 * (0, pi/4), and bits 0..2 reflect it into the whole circle (swap cos and
 * sin, then flip their signs), which keeps the angle uniform. log, sin and
 * cos are polynomials (relative error below 1e-7 on these ranges), so
 * four pairs (SSE2) or eight (AVX2, chosen at run time) go at once. Every
 * path does the same float operations in the same order (no FMA) and
 * writes the same layout, four pairs' first draws then their second
 * ones, so a seed gives the same noise on every x86-64.
 */
#define G_LN2 0.693147180559945309f
#define G_SQRT2 1.41421356237309505f
#define G_PHI (0x1p-23f * 0.785398163397448310f) /* pi/4 over 2^23 */

static int g_simd_mode; /* 0: the best the CPU has; 1: no wider than SSE2 */

void
fmi_dp_gauss_simd(int mode)
{
	g_simd_mode = mode;
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

static inline void
g_pair(uint64_t u, float std, float *x0, float *x1)
{
	uint32_t hi = (uint32_t)(u >> 32), lo = (uint32_t)u;
	float u1 = (float)(int32_t)(hi >> 1) * 0x1p-31f + 0x1p-32f;
	float p = ((float)(int32_t)(lo >> 9) + 0.5f) * G_PHI, p2 = p * p;
	float l = -2.0f * g_log(u1);
	float r = std * sqrtf(l > 0.0f ? l : 0.0f);
	float s = p * (1.0f + p2 * (-1.0f / 6 + p2 * (1.0f / 120 + p2 *
	    (-1.0f / 5040 + p2 * (1.0f / 362880)))));
	float c = 1.0f + p2 * (-0.5f + p2 * (1.0f / 24 + p2 * (-1.0f / 720 +
	    p2 * (1.0f / 40320))));
	float a = (lo & 1) ? s : c, b = (lo & 1) ? c : s;
	a = (lo & 2) ? -a : a;
	b = (lo & 4) ? -b : b;
	*x0 += r * a;
	*x1 += r * b;
}

/* The same four pairs at a time (SSE2) and eight (AVX2): one macro body
 * over a vector width, so the two cannot drift apart. V##op names the
 * width's intrinsics. */
#define G_BODY(V, VI, hi, lo, std, outa, outb)                                \
	do {                                                                  \
		V one = V##set1_ps(1.0f);                                      \
		V u1 = V##add_ps(V##mul_ps(V##cvtepi32_ps(VI##srli_epi32(hi, \
		    1)), V##set1_ps(0x1p-31f)), V##set1_ps(0x1p-32f));         \
		V p = V##mul_ps(V##add_ps(V##cvtepi32_ps(VI##srli_epi32(lo,  \
		    9)), V##set1_ps(0.5f)), V##set1_ps(G_PHI));                \
		/* log u1 */                                                  \
		V##i_t bits = V##castps_si(u1);                                \
		V e = V##cvtepi32_ps(VI##sub_epi32(VI##srli_epi32(bits, 23),  \
		    VI##set1_epi32(127)));                                     \
		V m = V##castsi_ps(VI##or_si(VI##and_si(bits,                 \
		    VI##set1_epi32(0x7fffff)), VI##set1_epi32(0x3f800000)));   \
		V big = V##cmpgt(m, V##set1_ps(G_SQRT2));                      \
		m = V##sel(big, V##mul_ps(m, V##set1_ps(0.5f)), m);            \
		e = V##add_ps(e, V##and_ps(big, one));                         \
		V s = V##div_ps(V##sub_ps(m, one), V##add_ps(m, one));         \
		V s2 = V##mul_ps(s, s);                                        \
		V q = V##add_ps(V##set1_ps(1.0f / 7),                          \
		    V##mul_ps(s2, V##set1_ps(1.0f / 9)));                      \
		q = V##add_ps(V##set1_ps(1.0f / 5), V##mul_ps(s2, q));         \
		q = V##add_ps(V##set1_ps(1.0f / 3), V##mul_ps(s2, q));         \
		q = V##add_ps(one, V##mul_ps(s2, q));                          \
		V lg = V##add_ps(V##mul_ps(e, V##set1_ps(G_LN2)),              \
		    V##mul_ps(V##mul_ps(V##set1_ps(2.0f), s), q));             \
		V l = V##mul_ps(V##set1_ps(-2.0f), lg);                        \
		V r = V##mul_ps(std, V##sqrt_ps(V##max_ps(l,                   \
		    V##setzero_ps())));                                        \
		/* sin and cos of p */                                        \
		V p2 = V##mul_ps(p, p);                                        \
		V sn = V##add_ps(V##set1_ps(-1.0f / 5040),                     \
		    V##mul_ps(p2, V##set1_ps(1.0f / 362880)));                 \
		sn = V##add_ps(V##set1_ps(1.0f / 120), V##mul_ps(p2, sn));     \
		sn = V##add_ps(V##set1_ps(-1.0f / 6), V##mul_ps(p2, sn));      \
		sn = V##mul_ps(p, V##add_ps(one, V##mul_ps(p2, sn)));          \
		V cs = V##add_ps(V##set1_ps(-1.0f / 720),                      \
		    V##mul_ps(p2, V##set1_ps(1.0f / 40320)));                  \
		cs = V##add_ps(V##set1_ps(1.0f / 24), V##mul_ps(p2, cs));      \
		cs = V##add_ps(V##set1_ps(-0.5f), V##mul_ps(p2, cs));          \
		cs = V##add_ps(one, V##mul_ps(p2, cs));                        \
		/* reflections */                                             \
		V##i_t one_i = VI##set1_epi32(1);                              \
		V##i_t sign = VI##set1_epi32((int32_t)0x80000000u);            \
		V sw = V##castsi_ps(VI##cmpeq_epi32(VI##and_si(lo, one_i),    \
		    one_i));                                                   \
		V ra = V##sel(sw, sn, cs), rb = V##sel(sw, cs, sn);            \
		ra = V##xor_ps(ra, V##castsi_ps(VI##and_si(                   \
		    VI##slli_epi32(lo, 30), sign)));                           \
		rb = V##xor_ps(rb, V##castsi_ps(VI##and_si(                   \
		    VI##slli_epi32(lo, 29), sign)));                           \
		outa = V##mul_ps(r, ra);                                       \
		outb = V##mul_ps(r, rb);                                       \
	} while (0)

#if defined(__SSE2__)
typedef __m128 G4;
typedef __m128i G4i_t;
#define G4set1_ps _mm_set1_ps
#define G4add_ps _mm_add_ps
#define G4sub_ps _mm_sub_ps
#define G4mul_ps _mm_mul_ps
#define G4div_ps _mm_div_ps
#define G4max_ps _mm_max_ps
#define G4and_ps _mm_and_ps
#define G4xor_ps _mm_xor_ps
#define G4sqrt_ps _mm_sqrt_ps
#define G4setzero_ps _mm_setzero_ps
#define G4cvtepi32_ps _mm_cvtepi32_ps
#define G4castps_si _mm_castps_si128
#define G4castsi_ps _mm_castsi128_ps
#define G4cmpgt _mm_cmpgt_ps
#define G4I_srli_epi32 _mm_srli_epi32
#define G4I_slli_epi32 _mm_slli_epi32
#define G4I_sub_epi32 _mm_sub_epi32
#define G4I_set1_epi32 _mm_set1_epi32
#define G4I_cmpeq_epi32 _mm_cmpeq_epi32
#define G4I_or_si _mm_or_si128
#define G4I_and_si _mm_and_si128

static inline __m128
G4sel(__m128 mask, __m128 a, __m128 b) /* mask ? a : b */
{
	return _mm_or_ps(_mm_and_ps(mask, a), _mm_andnot_ps(mask, b));
}

/* Four pairs from u[0..4): x[0..4) += their first draws, x[4..8) += their
 * second. */
static inline void
g_block4(const uint64_t *u, __m128 std, float *x)
{
	__m128 w0 = _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)u));
	__m128 w1 = _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)(u + 2)));
	__m128i hi = _mm_castps_si128(_mm_shuffle_ps(w0, w1,
	    _MM_SHUFFLE(3, 1, 3, 1)));
	__m128i lo = _mm_castps_si128(_mm_shuffle_ps(w0, w1,
	    _MM_SHUFFLE(2, 0, 2, 0)));
	__m128 a, b;
	G_BODY(G4, G4I_, hi, lo, std, a, b);
	_mm_storeu_ps(x, _mm_add_ps(_mm_loadu_ps(x), a));
	_mm_storeu_ps(x + 4, _mm_add_ps(_mm_loadu_ps(x + 4), b));
}
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define G_AVX2 __attribute__((target("avx2")))
typedef __m256 G8;
typedef __m256i G8i_t;
#define G8set1_ps _mm256_set1_ps
#define G8add_ps _mm256_add_ps
#define G8sub_ps _mm256_sub_ps
#define G8mul_ps _mm256_mul_ps
#define G8div_ps _mm256_div_ps
#define G8max_ps _mm256_max_ps
#define G8and_ps _mm256_and_ps
#define G8xor_ps _mm256_xor_ps
#define G8sqrt_ps _mm256_sqrt_ps
#define G8setzero_ps _mm256_setzero_ps
#define G8cvtepi32_ps _mm256_cvtepi32_ps
#define G8castps_si _mm256_castps_si256
#define G8castsi_ps _mm256_castsi256_ps
#define G8cmpgt(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define G8I_srli_epi32 _mm256_srli_epi32
#define G8I_slli_epi32 _mm256_slli_epi32
#define G8I_sub_epi32 _mm256_sub_epi32
#define G8I_set1_epi32 _mm256_set1_epi32
#define G8I_cmpeq_epi32 _mm256_cmpeq_epi32
#define G8I_or_si _mm256_or_si256
#define G8I_and_si _mm256_and_si256

G_AVX2 static inline __m256
G8sel(__m256 mask, __m256 a, __m256 b)
{
	return _mm256_blendv_ps(b, a, mask);
}

/* blocks x 8 pairs from u, laid out as two blocks of g_block4 each. */
G_AVX2 static void
g_run8(const uint64_t *u, size_t blocks, float stdf, float *x)
{
	__m256 std = _mm256_set1_ps(stdf);
	for (size_t k = 0; k < blocks; k++, u += 8, x += 16) {
		__m256 w0 = _mm256_castsi256_ps(_mm256_loadu_si256(
		    (const __m256i *)u));
		__m256 w1 = _mm256_castsi256_ps(_mm256_loadu_si256(
		    (const __m256i *)(u + 4)));
		/* per 128-bit lane: (u0 u1 u4 u5 | u2 u3 u6 u7), then the
		 * 64-bit quarters into u0..u7 order */
		__m256i hi = _mm256_castpd_si256(_mm256_permute4x64_pd(
		    _mm256_castps_pd(_mm256_shuffle_ps(w0, w1,
		    _MM_SHUFFLE(3, 1, 3, 1))), _MM_SHUFFLE(3, 1, 2, 0)));
		__m256i lo = _mm256_castpd_si256(_mm256_permute4x64_pd(
		    _mm256_castps_pd(_mm256_shuffle_ps(w0, w1,
		    _MM_SHUFFLE(2, 0, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0)));
		__m256 a, b;
		G_BODY(G8, G8I_, hi, lo, std, a, b);
		__m256 o0 = _mm256_permute2f128_ps(a, b, 0x20);
		__m256 o1 = _mm256_permute2f128_ps(a, b, 0x31);
		_mm256_storeu_ps(x, _mm256_add_ps(_mm256_loadu_ps(x), o0));
		_mm256_storeu_ps(x + 8, _mm256_add_ps(_mm256_loadu_ps(x + 8), o1));
	}
}

static int
g_have_avx2(void)
{
	return g_simd_mode == 0 && __builtin_cpu_supports("avx2");
}
#endif

void
fmi_dp_gauss_add(fm_rng *rng, float *x, size_t n, float std)
{
	uint64_t u[256];
	size_t i = 0;
#if defined(G_AVX2)
	int avx2 = g_have_avx2();
#endif
	while (i + 2 <= n) {
		size_t pairs = FMI_MIN((n - i) / 2, FMI_ARRAY_LEN(u)), j = 0;
		float *xi = x + i;
		fmi_rng_fill_u64(rng, u, pairs);
#if defined(G_AVX2)
		if (avx2) {
			g_run8(u, pairs / 8, std, xi);
			j = pairs / 8 * 8;
		}
#endif
#if defined(__SSE2__)
		__m128 s4 = _mm_set1_ps(std);
		for (; j + 4 <= pairs; j += 4) {
			g_block4(u + j, s4, xi + 2 * j);
		}
#endif
		for (; j < pairs; j++) {
			g_pair(u[j], std, xi + 2 * j, xi + 2 * j + 1);
		}
		i += 2 * pairs;
	}
	if (i < n) {
		float spare = 0.0f;
		uint64_t last;
		fmi_rng_fill_u64(rng, &last, 1);
		g_pair(last, std, x + i, &spare);
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
