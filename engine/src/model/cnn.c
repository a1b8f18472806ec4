/* SPDX-License-Identifier: MIT */
/*
 * cnn.c: the CNN of McMahan et al. 2017 (conv-pool-conv-pool-dense-dense)
 * on the trainer of model.c.
 *
 * A conv layer over a chunk of n images is one sgemm: the im2col matrix
 * is [cin*k*k] x [n*h*w], so Y [cout x n*h*w] = W [cout x cin*k*k] cols,
 * and backward is dW = dY cols^T and dcols = W^T dY (then col2im), again
 * one sgemm each. The 2x2 max-pool reads Y in that [cout][n][h][w] order
 * and writes the pooled activations NCHW (PyTorch's layout) with the bias
 * and ReLU fused in (max(x + b) = max(x) + b, and ReLU is monotone), so
 * the pre-pool tensor is never biased or rectified, and the argmax of each
 * window is kept for backward. A batch is processed in chunks of at most
 * FMI_CNN_CHUNK images so evaluation batches of 1024 do not need
 * gigabytes of im2col; a training batch up to the chunk is one chunk, and
 * its forward im2col matrices are reused by backward.
 */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model_impl.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
/* GCC turns the 4-wide row copies of im2col back into memcpy calls, which
 * cost more than the copies for rows of 14 or 28 floats. */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

#define FMI_CNN_CHUNK 64
#define FMI_CNN_MAX_SIDE 256
#define FMI_CNN_MAX_CH 1024
#define FMI_CNN_MAX_HIDDEN ((uint32_t)1 << 20)
#define FMI_CNN_MAX_CLASSES ((uint32_t)1 << 16)
#define FMI_CNN_MAX_PARAMS ((size_t)1 << 31)

struct fmi_cnn_buf {
	size_t chunk; /* images per chunk */
	float *cols[2]; /* per conv layer: [cin*k*k] x [chunk*h*w] */
	float *y[2];    /* per conv layer: [cout] x [chunk*h*w], then dY */
	uint8_t *arg[2]; /* pool argmax, [max_batch x widths[l + 1]] */
	float *gconv;   /* conv gradients, indexed like the parameters */
	float *pad;     /* padded planes of one channel, for im2col/col2im */
	float *sums;    /* per-plane bias-gradient sums, [max channels x chunk] */
	struct cnn_helper *helper; /* second thread, or NULL */
	int helper_failed;
	int helper_mode; /* 0: with 2+ BLAS threads; 1: always; -1: never */
};

/* One conv layer's geometry. */
typedef struct conv_geom {
	size_t cin, cout, side, k; /* side: input = output side before pool */
	size_t in_dim, out_dim;    /* floats per image: input, pooled output */
	size_t woff, boff;         /* parameter offsets */
} conv_geom;

/* The arguments of a kernel over a range of images (see the kernels). */
typedef struct kargs {
	float *out;
	const float *in;
	const float *aux;
	float *pad;
	uint8_t *arg;
	size_t n, c, h, w, k;
} kargs;

typedef void (*kfn)(const kargs *a, size_t i0, size_t i1);

struct cnn_helper; /* a second thread for the kernels, below */
static void helper_stop(struct cnn_helper *h);

/* ---- architecture ------------------------------------------------------- */

static int
cnn_check(const fmi_cnn_shape *s, fm_error *err)
{
	if (s == NULL || s->side < 4 || s->side % 4 != 0 ||
	    s->side > FMI_CNN_MAX_SIDE) {
		return fm_error_set(err, FM_EINVAL, "cnn: the image side must be "
		    "a multiple of 4 in [4, %d], got %u", FMI_CNN_MAX_SIDE,
		    s ? s->side : 0);
	}
	if (s->kernel % 2 == 0 || s->kernel > s->side / 2 + 1) {
		return fm_error_set(err, FM_EINVAL, "cnn: the kernel must be odd "
		    "and at most %u for %ux%u images, got %u", s->side / 2 + 1,
		    s->side, s->side, s->kernel);
	}
	for (int l = 0; l < 2; l++) {
		if (s->ch[l] == 0 || s->ch[l] > FMI_CNN_MAX_CH) {
			return fm_error_set(err, FM_EINVAL, "cnn: conv%d has %u "
			    "channels; channels must be in [1, %d]", l + 1,
			    s->ch[l], FMI_CNN_MAX_CH);
		}
	}
	if (s->hidden == 0 || s->hidden > FMI_CNN_MAX_HIDDEN ||
	    s->classes == 0 || s->classes > FMI_CNN_MAX_CLASSES) {
		return fm_error_set(err, FM_EINVAL, "cnn: hidden (%u) must be in "
		    "[1, %u] and classes (%u) in [1, %u]", s->hidden,
		    FMI_CNN_MAX_HIDDEN, s->classes, FMI_CNN_MAX_CLASSES);
	}
	return FM_OK;
}

static void
cnn_slice(fmi_arch *a, const char *name, size_t rows, size_t cols)
{
	fmi_slice *s = &a->slices[a->nslices++];
	snprintf(s->name, sizeof s->name, "%s", name);
	s->offset = a->nparams;
	s->rows = rows;
	s->cols = cols;
	a->nparams += rows * cols;
}

int
fmi_arch_cnn(fmi_arch *a, const fmi_cnn_shape *s, fm_error *err)
{
	int rv = cnn_check(s, err);
	if (rv != FM_OK) {
		return rv;
	}
	size_t k2 = (size_t)s->kernel * s->kernel, q = s->side / 4;
	size_t flat = (size_t)s->ch[1] * q * q;
	size_t np = (k2 + 1) * s->ch[0] + (k2 * s->ch[0] + 1) * s->ch[1] +
	    (flat + 1) * s->hidden + ((size_t)s->hidden + 1) * s->classes;
	if (np > FMI_CNN_MAX_PARAMS) {
		return fm_error_set(err, FM_ERANGE, "cnn: %zu parameters, more "
		    "than the limit of %zu; use fewer channels or a narrower "
		    "dense layer", np, FMI_CNN_MAX_PARAMS);
	}
	memset(a, 0, sizeof *a);
	snprintf(a->kind, sizeof a->kind, "cnn");
	a->cnn = *s;
	a->nlayers = 4;
	a->widths[0] = s->side * s->side;
	a->widths[1] = (uint32_t)(s->ch[0] * 4 * q * q);
	a->widths[2] = (uint32_t)flat;
	a->widths[3] = s->hidden;
	a->widths[4] = s->classes;
	cnn_slice(a, "conv1.weight", s->ch[0], k2);
	cnn_slice(a, "conv1.bias", 1, s->ch[0]);
	cnn_slice(a, "conv2.weight", s->ch[1], k2 * s->ch[0]);
	cnn_slice(a, "conv2.bias", 1, s->ch[1]);
	cnn_slice(a, "fc1.weight", s->hidden, flat);
	cnn_slice(a, "fc1.bias", 1, s->hidden);
	cnn_slice(a, "fc2.weight", s->classes, s->hidden);
	cnn_slice(a, "fc2.bias", 1, s->classes);
	return FM_OK;
}

int
fmi_arch_is_cnn(const fmi_arch *a)
{
	return a->cnn.side != 0 && strcmp(a->kind, "cnn") == 0;
}

static conv_geom
conv_geom_of(const fmi_arch *a, int l)
{
	const fmi_cnn_shape *s = &a->cnn;
	conv_geom g;
	g.cin = l == 0 ? 1 : s->ch[0];
	g.cout = s->ch[l];
	g.side = l == 0 ? s->side : s->side / 2;
	g.k = s->kernel;
	g.in_dim = a->widths[l];
	g.out_dim = a->widths[l + 1];
	g.woff = a->slices[2 * l].offset;
	g.boff = a->slices[2 * l + 1].offset;
	return g;
}

/* ---- buffers -------------------------------------------------------------- */

int
fmi_cnn_alloc(fmi_trainer *t)
{
	const fmi_arch *a = &t->arch;
	struct fmi_cnn_buf *c = calloc(1, sizeof *c);
	if (c == NULL) {
		return FM_ENOMEM;
	}
	t->cnn = c;
	c->chunk = FMI_MIN(t->max_batch, (size_t)FMI_CNN_CHUNK);
	int ok = 1;
	for (int l = 0; ok && l < 2; l++) {
		conv_geom g = conv_geom_of(a, l);
		size_t pix = c->chunk * g.side * g.side;
		ok = (c->cols[l] = fmi_model_falloc(g.cin * g.k * g.k * pix)) &&
		    (c->y[l] = fmi_model_falloc(g.cout * pix)) &&
		    (c->arg[l] = malloc(t->max_batch * g.out_dim)) != NULL;
	}
	ok = ok && (c->gconv = fmi_model_falloc(a->slices[4].offset)) != NULL;
	size_t side = a->cnn.side + 2 * (a->cnn.kernel / 2);
	ok = ok && (c->pad = fmi_model_falloc(c->chunk * side * side)) != NULL;
	size_t maxch = FMI_MAX(a->cnn.ch[0], a->cnn.ch[1]);
	ok = ok && (c->sums = fmi_model_falloc(c->chunk * maxch)) != NULL;
	return ok ? FM_OK : FM_ENOMEM;
}

void
fmi_cnn_free(struct fmi_cnn_buf *c)
{
	if (c == NULL) {
		return;
	}
	for (int l = 0; l < 2; l++) {
		free(c->cols[l]);
		free(c->y[l]);
		free(c->arg[l]);
	}
	helper_stop(c->helper);
	free(c->gconv);
	free(c->pad);
	free(c->sums);
	free(c);
}

/* ---- kernels -------------------------------------------------------------- */

/*
 * im2col and col2im go through a zero-padded copy of the n planes of one
 * input channel (scratch, n (h + 2p) (w + 2p) floats, about 40 KB for a
 * chunk of 32 14x14 planes: it stays in L1/L2), so every row of the
 * column matrix is a plain copy of w floats (or an add, for col2im) with
 * no boundary tests, and the column matrix is written (read) in order.
 */

/* d = s over n floats. */
static inline void
copy_row(float *restrict d, const float *restrict s, size_t n)
{
#if defined(__SSE2__)
	if (n >= 4) { /* 4-wide moves, the last one overlapping */
		size_t x = 0;
		for (; x + 4 <= n; x += 4) {
			_mm_storeu_ps(d + x, _mm_loadu_ps(s + x));
		}
		if (x < n) {
			_mm_storeu_ps(d + n - 4, _mm_loadu_ps(s + n - 4));
		}
		return;
	}
#endif
	for (size_t x = 0; x < n; x++) {
		d[x] = s[x];
	}
}

/* d += s over n floats. */
static inline void
add_row(float *restrict d, const float *restrict s, size_t n)
{
	size_t x = 0;
#if defined(__SSE2__)
	for (; x + 4 <= n; x += 4) {
		_mm_storeu_ps(d + x, _mm_add_ps(_mm_loadu_ps(d + x),
		    _mm_loadu_ps(s + x)));
	}
#endif
	for (; x < n; x++) {
		d[x] += s[x];
	}
}

/* pad[i] = plane ci of image i in [i0, i1), h x w, inside a border of p
 * zeros. */
static void
pad_planes(float *restrict pad, const float *restrict x, size_t i0,
    size_t i1, size_t c, size_t ci, size_t h, size_t w, size_t p)
{
	size_t pw = w + 2 * p, pp = (h + 2 * p) * pw;
	memset(pad + i0 * pp, 0, (i1 - i0) * pp * sizeof *pad);
	for (size_t i = i0; i < i1; i++) {
		const float *src = x + (i * c + ci) * h * w;
		for (size_t y = 0; y < h; y++) {
			copy_row(pad + i * pp + (y + p) * pw + p, src + y * w, w);
		}
	}
}

/* im2col of the images [i0, i1): out = cols, in = x. */
static void
im2col_range(const kargs *a, size_t i0, size_t i1)
{
	size_t h = a->h, w = a->w, k = a->k, hw = h * w, p = k / 2;
	size_t pw = w + 2 * p, pp = (h + 2 * p) * pw;
	for (size_t ci = 0; ci < a->c; ci++) {
		pad_planes(a->pad, a->in, i0, i1, a->c, ci, h, w, p);
		for (size_t ky = 0; ky < k; ky++) {
			for (size_t kx = 0; kx < k; kx++) {
				float *row = a->out + ((ci * k + ky) * k + kx) *
				    a->n * hw + i0 * hw;
				for (size_t i = i0; i < i1; i++) {
					const float *src = a->pad + i * pp +
					    ky * pw + kx;
					for (size_t y = 0; y < h; y++, row += w) {
						copy_row(row, src + y * pw, w);
					}
				}
			}
		}
	}
}

/* col2im of the images [i0, i1): out = dx (added to), in = cols. */
static void
col2im_range(const kargs *a, size_t i0, size_t i1)
{
	size_t h = a->h, w = a->w, k = a->k, hw = h * w, p = k / 2;
	size_t pw = w + 2 * p, pp = (h + 2 * p) * pw;
	for (size_t ci = 0; ci < a->c; ci++) {
		memset(a->pad + i0 * pp, 0, (i1 - i0) * pp * sizeof(float));
		for (size_t ky = 0; ky < k; ky++) {
			for (size_t kx = 0; kx < k; kx++) {
				const float *row = a->in + ((ci * k + ky) * k +
				    kx) * a->n * hw + i0 * hw;
				for (size_t i = i0; i < i1; i++) {
					float *d = a->pad + i * pp + ky * pw + kx;
					for (size_t y = 0; y < h; y++, row += w) {
						add_row(d + y * pw, row, w);
					}
				}
			}
		}
		for (size_t i = i0; i < i1; i++) {
			float *d = a->out + (i * a->c + ci) * hw;
			for (size_t y = 0; y < h; y++) {
				add_row(d + y * w, a->pad + i * pp + (y + p) * pw +
				    p, w);
			}
		}
	}
}

void
fmi_cnn_im2col(float *restrict cols, const float *restrict x,
    float *restrict pad, size_t n, size_t c, size_t h, size_t w, size_t k)
{
	const kargs a = { cols, x, NULL, pad, NULL, n, c, h, w, k };
	im2col_range(&a, 0, n);
}

void
fmi_cnn_col2im(float *restrict dx, const float *restrict cols,
    float *restrict pad, size_t n, size_t c, size_t h, size_t w, size_t k)
{
	const kargs a = { dx, cols, NULL, pad, NULL, n, c, h, w, k };
	col2im_range(&a, 0, n);
}

/*
 * 2x2 max-pool. A window v0 v1 / v2 v3 is reduced as a tree,
 * (v0 v1) (v2 v3) then the two, each step keeping the left value unless
 * the right one is larger or NaN (and the left is not NaN): the result is
 * the first NaN of the window if any, else its first maximum in row-major
 * order, as PyTorch's max_pool2d. The SSE2 path computes the same tree on
 * four windows at a time; rows of odd length end in the scalar one.
 */
static inline int
takes_right(float l, float r)
{
	return l == l && !(r <= l);
}

static inline void
pool1(float *restrict out, uint8_t *restrict arg, const float *restrict r0,
    const float *restrict r1, float bias)
{
	int t01 = takes_right(r0[0], r0[1]), t23 = takes_right(r1[0], r1[1]);
	float m01 = t01 ? r0[1] : r0[0], m23 = t23 ? r1[1] : r1[0];
	int t = takes_right(m01, m23);
	float m = (t ? m23 : m01) + bias;
	*arg = (uint8_t)(t ? 2 + t23 : t01);
	*out = m <= 0.0f ? 0.0f : m; /* ReLU; NaN stays */
}

#if defined(__SSE2__)
static inline __m128
sel_ps(__m128 mask, __m128 a, __m128 b) /* mask ? a : b */
{
	return _mm_or_ps(_mm_and_ps(mask, a), _mm_andnot_ps(mask, b));
}

static inline __m128
takes_right4(__m128 l, __m128 r)
{
	return _mm_and_ps(_mm_cmpnle_ps(r, l), _mm_cmpord_ps(l, l));
}

/* Four windows from r0[0..8) and r1[0..8). */
static inline void
pool4(float *restrict out, uint8_t *restrict arg, const float *restrict r0,
    const float *restrict r1, __m128 bias)
{
	__m128 a = _mm_loadu_ps(r0), b = _mm_loadu_ps(r0 + 4);
	__m128 c = _mm_loadu_ps(r1), d = _mm_loadu_ps(r1 + 4);
	__m128 v0 = _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
	__m128 v1 = _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
	__m128 v2 = _mm_shuffle_ps(c, d, _MM_SHUFFLE(2, 0, 2, 0));
	__m128 v3 = _mm_shuffle_ps(c, d, _MM_SHUFFLE(3, 1, 3, 1));
	__m128 t01 = takes_right4(v0, v1), t23 = takes_right4(v2, v3);
	__m128 m01 = sel_ps(t01, v1, v0), m23 = sel_ps(t23, v3, v2);
	__m128 t = takes_right4(m01, m23);
	__m128 m = _mm_add_ps(sel_ps(t, m23, m01), bias);
	_mm_storeu_ps(out, _mm_andnot_ps(_mm_cmple_ps(m, _mm_setzero_ps()), m));
	/* masks are -1/0: t01 -> 0/1, t23 -> 2/3 */
	__m128i i01 = _mm_sub_epi32(_mm_setzero_si128(), _mm_castps_si128(t01));
	__m128i i23 = _mm_sub_epi32(_mm_set1_epi32(2), _mm_castps_si128(t23));
	__m128i ti = _mm_castps_si128(t);
	__m128i ai = _mm_or_si128(_mm_and_si128(ti, i23),
	    _mm_andnot_si128(ti, i01));
	ai = _mm_packs_epi32(ai, ai);
	ai = _mm_packus_epi16(ai, ai);
	int32_t bytes = _mm_cvtsi128_si32(ai);
	memcpy(arg, &bytes, sizeof bytes);
}
#endif

static void
pool_plane(float *restrict out, uint8_t *restrict arg,
    const float *restrict y, float bias, size_t h, size_t w)
{
	size_t pw = w / 2;
	for (size_t py = 0; py < h / 2; py++, out += pw, arg += pw) {
		const float *r0 = y + 2 * py * w, *r1 = r0 + w;
		size_t px = 0;
#if defined(__SSE2__)
		__m128 b4 = _mm_set1_ps(bias);
		for (; px + 4 <= pw; px += 4) {
			pool4(out + px, arg + px, r0 + 2 * px, r1 + 2 * px, b4);
		}
#endif
		for (; px < pw; px++) {
			pool1(out + px, arg + px, r0 + 2 * px, r1 + 2 * px, bias);
		}
	}
}

/* Pooling of the images [i0, i1): out = pooled, in = y, aux = bias. */
static void
pool_range(const kargs *a, size_t i0, size_t i1)
{
	size_t hw = a->h * a->w, phw = hw / 4;
	for (size_t ci = 0; ci < a->c; ci++) {
		for (size_t i = i0; i < i1; i++) {
			size_t o = (i * a->c + ci) * phw;
			pool_plane(a->out + o, a->arg + o,
			    a->in + (ci * a->n + i) * hw, a->aux[ci], a->h, a->w);
		}
	}
}

void
fmi_cnn_pool(float *restrict out, uint8_t *restrict arg,
    const float *restrict y, const float *restrict bias, size_t n, size_t c,
    size_t h, size_t w)
{
	const kargs a = { out, y, bias, NULL, arg, n, c, h, w, 0 };
	pool_range(&a, 0, n);
}

/* The gradient of one window: g at its argmax where the output is > 0
 * (ReLU'(0) = 0, as PyTorch), zeros elsewhere; returns g. */
static inline float
unpool1(float *restrict r0, float *restrict r1, float dout, float out,
    uint8_t a)
{
	float g = out > 0.0f ? dout : 0.0f;
	r0[0] = a == 0 ? g : 0.0f;
	r0[1] = a == 1 ? g : 0.0f;
	r1[0] = a == 2 ? g : 0.0f;
	r1[1] = a == 3 ? g : 0.0f;
	return g;
}

#if defined(__SSE2__)
/* Four windows; returns their gradients. */
static inline __m128
unpool4(float *restrict r0, float *restrict r1, const float *restrict dout,
    const float *restrict out, const uint8_t *restrict arg)
{
	__m128 g = _mm_and_ps(_mm_cmpgt_ps(_mm_loadu_ps(out), _mm_setzero_ps()),
	    _mm_loadu_ps(dout));
	int32_t bytes;
	memcpy(&bytes, arg, sizeof bytes);
	__m128i z = _mm_setzero_si128();
	__m128i a = _mm_unpacklo_epi16(_mm_unpacklo_epi8(
	    _mm_cvtsi32_si128(bytes), z), z);
	__m128 g0 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a, z)), g);
	__m128 g1 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a,
	    _mm_set1_epi32(1))), g);
	__m128 g2 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a,
	    _mm_set1_epi32(2))), g);
	__m128 g3 = _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a,
	    _mm_set1_epi32(3))), g);
	_mm_storeu_ps(r0, _mm_unpacklo_ps(g0, g1));
	_mm_storeu_ps(r0 + 4, _mm_unpackhi_ps(g0, g1));
	_mm_storeu_ps(r1, _mm_unpacklo_ps(g2, g3));
	_mm_storeu_ps(r1 + 4, _mm_unpackhi_ps(g2, g3));
	return g;
}
#endif

static float
unpool_plane(float *restrict dy, const float *restrict dout,
    const float *restrict out, const uint8_t *restrict arg, size_t h,
    size_t w)
{
	size_t pw = w / 2;
	float sum = 0.0f;
#if defined(__SSE2__)
	__m128 sum4 = _mm_setzero_ps();
#endif
	for (size_t py = 0; py < h / 2; py++) {
		float *r0 = dy + 2 * py * w, *r1 = r0 + w;
		size_t o = py * pw, px = 0;
#if defined(__SSE2__)
		for (; px + 4 <= pw; px += 4) {
			sum4 = _mm_add_ps(sum4, unpool4(r0 + 2 * px, r1 + 2 * px,
			    dout + o + px, out + o + px, arg + o + px));
		}
#endif
		for (; px < pw; px++) {
			sum += unpool1(r0 + 2 * px, r1 + 2 * px, dout[o + px],
			    out[o + px], arg[o + px]);
		}
	}
#if defined(__SSE2__)
	float s4[4];
	_mm_storeu_ps(s4, sum4);
	sum += (s4[0] + s4[1]) + (s4[2] + s4[3]);
#endif
	return sum;
}

/* Unpooling of the images [i0, i1): out = dy, in = dout, aux = pooled
 * out, pad = the plane sums [c x n]. */
static void
unpool_range(const kargs *a, size_t i0, size_t i1)
{
	size_t hw = a->h * a->w, phw = hw / 4;
	for (size_t ci = 0; ci < a->c; ci++) {
		for (size_t i = i0; i < i1; i++) {
			size_t o = (i * a->c + ci) * phw;
			a->pad[ci * a->n + i] = unpool_plane(a->out +
			    (ci * a->n + i) * hw, a->in + o, a->aux + o,
			    a->arg + o, a->h, a->w);
		}
	}
}

/* dbias[ci] += the plane sums of channel ci, in image order. */
static void
add_plane_sums(float *restrict dbias, const float *restrict sums, size_t n,
    size_t c)
{
	for (size_t ci = 0; ci < c; ci++) {
		float sum = 0.0f;
		for (size_t i = 0; i < n; i++) {
			sum += sums[ci * n + i];
		}
		dbias[ci] += sum;
	}
}

void
fmi_cnn_unpool(float *restrict dy, float *restrict dbias,
    float *restrict sums, const float *restrict dout,
    const float *restrict out, const uint8_t *restrict arg, size_t n,
    size_t c, size_t h, size_t w)
{
	const kargs a = { dy, dout, out, sums, (uint8_t *)(uintptr_t)arg, n, c,
		h, w, 0 };
	unpool_range(&a, 0, n);
	add_plane_sums(dbias, sums, n, c);
}

/* ---- a second thread for the kernels ------------------------------------ */

/*
 * When BLAS runs on two or more threads (`fedmesh bench train --threads
 * 2`), the kernels above would leave the other core idle; they run on two
 * threads instead, the images of a chunk split in halves (each image's
 * results depend on that image only, so the numbers are the same as on one
 * thread). Simulations train one client per worker thread with one BLAS
 * thread and never start the helper.
 */
enum { H_IDLE, H_WORK, H_QUIT };

struct cnn_helper {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	kfn fn;
	const kargs *a;
	size_t i0, i1;
	int state;
};

static void *
helper_main(void *v)
{
	struct cnn_helper *h = v;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (h->state == H_IDLE) {
			pthread_cond_wait(&h->cv, &h->mu);
		}
		if (h->state == H_QUIT) {
			break;
		}
		pthread_mutex_unlock(&h->mu);
		h->fn(h->a, h->i0, h->i1);
		pthread_mutex_lock(&h->mu);
		h->state = H_IDLE;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* The helper when BLAS has 2+ threads (or helper_mode says so), started
 * on first use; NULL for one thread (or when it could not start). */
static struct cnn_helper *
helper_get(struct fmi_cnn_buf *c)
{
	int want = c->helper_mode > 0 ||
	    (c->helper_mode == 0 && fmi_blas_get_threads() >= 2);
	if (!want || c->helper != NULL || c->helper_failed) {
		return want ? c->helper : NULL;
	}
	struct cnn_helper *h = calloc(1, sizeof *h);
	if (h == NULL || pthread_mutex_init(&h->mu, NULL) != 0) {
		free(h);
		c->helper_failed = 1;
		return NULL;
	}
	if (pthread_cond_init(&h->cv, NULL) != 0 ||
	    pthread_create(&h->th, NULL, helper_main, h) != 0) {
		pthread_mutex_destroy(&h->mu);
		free(h); /* (a cond that was initialised is trivially freed) */
		c->helper_failed = 1;
		return NULL;
	}
	c->helper = h;
	return h;
}

static void
helper_stop(struct cnn_helper *h)
{
	if (h == NULL) {
		return;
	}
	pthread_mutex_lock(&h->mu);
	h->state = H_QUIT;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->th, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

void
fmi_cnn_set_helper(fmi_trainer *t, int mode)
{
	if (t->cnn != NULL) {
		t->cnn->helper_mode = mode;
	}
}

/* fn over the images [0, n): halves on two threads when there is a
 * helper. */
static void
par_images(struct fmi_cnn_buf *c, kfn fn, const kargs *a)
{
	struct cnn_helper *h = a->n >= 2 ? helper_get(c) : NULL;
	if (h == NULL) {
		fn(a, 0, a->n);
		return;
	}
	size_t mid = a->n / 2;
	pthread_mutex_lock(&h->mu);
	h->fn = fn;
	h->a = a;
	h->i0 = mid;
	h->i1 = a->n;
	h->state = H_WORK;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	fn(a, 0, mid);
	pthread_mutex_lock(&h->mu);
	while (h->state == H_WORK) {
		pthread_cond_wait(&h->cv, &h->mu);
	}
	pthread_mutex_unlock(&h->mu);
}

/* ---- forward -------------------------------------------------------------- */

/* Conv layer l on images [s, s + n) of the batch: in -> act[l + 1]. */
static void
conv_forward(fmi_trainer *t, int l, const float *p, const float *in,
    size_t s, size_t n)
{
	struct fmi_cnn_buf *c = t->cnn;
	conv_geom g = conv_geom_of(&t->arch, l);
	size_t pix = n * g.side * g.side, kk = g.cin * g.k * g.k;
	const kargs im = { c->cols[l], in + s * g.in_dim, NULL, c->pad, NULL,
		n, g.cin, g.side, g.side, g.k };
	par_images(c, im2col_range, &im);
	fmi_gemm(0, 0, g.cout, pix, kk, 1.0f, p + g.woff, kk, c->cols[l], pix,
	    0.0f, c->y[l], pix);
	const kargs po = { t->act[l + 1] + s * g.out_dim, c->y[l], p + g.boff,
		NULL, c->arg[l] + s * g.out_dim, n, g.cout, g.side, g.side, 0 };
	par_images(c, pool_range, &po);
}

void
fmi_cnn_forward(fmi_trainer *t, const float *p, const float *x, size_t b)
{
	const fmi_arch *a = &t->arch;
	for (size_t s = 0; s < b; s += t->cnn->chunk) {
		size_t n = FMI_MIN(t->cnn->chunk, b - s);
		conv_forward(t, 0, p, x, s, n);
		conv_forward(t, 1, p, t->act[1], s, n);
	}
	/* fc1 with ReLU, then fc2 without its bias (xent adds it). */
	for (uint32_t l = 2; l < 4; l++) {
		const fmi_slice *w = &a->slices[2 * l];
		fmi_gemm(0, 1, b, w->rows, w->cols, 1.0f, t->act[l], w->cols,
		    p + w->offset, w->cols, 0.0f, t->act[l + 1], w->rows);
		if (l == 2) {
			fmi_model_bias_relu(t->act[3],
			    p + a->slices[2 * l + 1].offset, b, w->rows);
		}
	}
}

/* ---- backward ------------------------------------------------------------- */

/* Dense layer l (2 or 3): dx [b x in] = dy [b x out] W (ReLU-masked for
 * l = 3). */
static void
dense_dx(fmi_trainer *t, uint32_t l, const float *dy, float *dx, size_t b)
{
	const fmi_slice *w = &t->arch.slices[2 * l];
	fmi_gemm(0, 0, b, w->cols, w->rows, 1.0f, dy, w->rows,
	    t->params + w->offset, w->cols, 0.0f, dx, w->cols);
	if (l == 3) {
		fmi_model_relu_mask(dx, t->act[l], b * w->cols);
	}
}

/* Dense layer l's weight and bias gradient from dy into the sink. */
static void
dense_wgrad(fmi_trainer *t, uint32_t l, const float *dy, size_t b,
    const fmi_grad_sink *s)
{
	const fmi_arch *a = &t->arch;
	const fmi_slice *w = &a->slices[2 * l];
	size_t boff = a->slices[2 * l + 1].offset;
	fmi_gemm(1, 0, w->rows, w->cols, b, s->alpha, dy, w->rows, t->act[l],
	    w->cols, s->beta, s->dst + w->offset, w->cols);
	fmi_model_bias_grad(s->dst + boff, t->bsum, dy, b, w->rows, s->alpha,
	    s->beta);
	fmi_model_sink_finish(t, s, w->offset, boff + w->rows - w->offset);
}

/* Dense layer l (2 or 3): dy [b x out] from the layer above; writes dx
 * [b x in] (ReLU-masked for l = 3) before the sink may update W. */
static void
dense_backward(fmi_trainer *t, uint32_t l, const float *dy, float *dx,
    size_t b, const fmi_grad_sink *s)
{
	dense_dx(t, l, dy, dx, b);
	dense_wgrad(t, l, dy, b, s);
}

/*
 * DP-SGD: image i's gradient of conv layer l is dY_i cols_i^T, dY_i
 * [cout x hw] and cols_i [kk x hw] being image i's columns of the chunk's
 * dY and im2col matrices (stride pix), and its bias gradient the plane
 * sums unpool left in sums [cout x n]. One small GEMM per image, the same
 * flops as the batched weight gradient; rows of pex are images.
 */
static void
conv_per_example(fmi_trainer *t, int l, size_t s, size_t n, float *pex)
{
	struct fmi_cnn_buf *c = t->cnn;
	conv_geom g = conv_geom_of(&t->arch, l);
	size_t hw = g.side * g.side, pix = n * hw, kk = g.cin * g.k * g.k;
	size_t ld = t->arch.slices[4].offset;
	for (size_t i = 0; i < n; i++) {
		float *row = pex + (s + i) * ld;
		fmi_gemm(0, 1, g.cout, kk, hw, 1.0f, c->y[l] + i * hw, pix,
		    c->cols[l] + i * hw, pix, 0.0f, row + g.woff, kk);
		for (size_t co = 0; co < g.cout; co++) {
			row[g.boff + co] = c->sums[co * n + i];
		}
	}
}

/*
 * Conv layer l on images [s, s + n): dout is the gradient of the pooled
 * output (full batch), dx (conv2 only) receives the input gradient. The
 * weight and bias gradients accumulate into gconv, or with pex (DP-SGD)
 * go per image into pex[s + i] (rows of slices[4].offset floats, in
 * parameter order) instead. redo: the im2col matrix in the buffer is
 * another chunk's and is rebuilt.
 */
static void
conv_backward(fmi_trainer *t, int l, const float *in, const float *dout,
    float *dx, size_t s, size_t n, int redo, float *pex)
{
	struct fmi_cnn_buf *c = t->cnn;
	conv_geom g = conv_geom_of(&t->arch, l);
	size_t pix = n * g.side * g.side, kk = g.cin * g.k * g.k;
	const kargs up = { c->y[l], dout + s * g.out_dim,
		t->act[l + 1] + s * g.out_dim, c->sums, c->arg[l] + s * g.out_dim,
		n, g.cout, g.side, g.side, 0 };
	par_images(c, unpool_range, &up);
	const kargs im = { c->cols[l], in + s * g.in_dim, NULL, c->pad, NULL,
		n, g.cin, g.side, g.side, g.k };
	if (redo) {
		par_images(c, im2col_range, &im);
	}
	if (pex == NULL) {
		add_plane_sums(c->gconv + g.boff, c->sums, n, g.cout);
		fmi_gemm(0, 1, g.cout, kk, pix, 1.0f, c->y[l], pix, c->cols[l],
		    pix, s == 0 ? 0.0f : 1.0f, c->gconv + g.woff, kk);
	} else {
		conv_per_example(t, l, s, n, pex);
	}
	if (dx != NULL) {
		fmi_gemm(1, 0, kk, pix, g.cout, 1.0f, t->params + g.woff, kk,
		    c->y[l], pix, 0.0f, c->cols[l], pix);
		memset(dx + s * g.in_dim, 0, n * g.in_dim * sizeof *dx);
		const kargs ci = { dx + s * g.in_dim, c->cols[l], NULL, c->pad,
			NULL, n, g.cin, g.side, g.side, g.k };
		par_images(c, col2im_range, &ci);
	}
}

/* dst = beta dst + alpha g over the conv layer's weight and bias. */
static void
conv_sink(fmi_trainer *t, int l, const fmi_grad_sink *s)
{
	conv_geom g = conv_geom_of(&t->arch, l);
	size_t n = g.boff + g.cout - g.woff;
	float *d = s->dst + g.woff;
	const float *src = t->cnn->gconv + g.woff;
	for (size_t i = 0; i < n; i++) {
		d[i] = (s->beta == 0.0f ? 0.0f : s->beta * d[i]) +
		    s->alpha * src[i];
	}
	fmi_model_sink_finish(t, s, g.woff, n);
}

void
fmi_cnn_backward(fmi_trainer *t, const float *x, size_t b,
    const fmi_grad_sink *s)
{
	struct fmi_cnn_buf *c = t->cnn;
	const fmi_arch *a = &t->arch;
	dense_backward(t, 3, t->act[4], t->dx[0], b, s);
	dense_backward(t, 2, t->dx[0], t->dx[1], b, s);
	int redo = b > c->chunk;
	const float *dout = t->dx[1];
	for (int l = 1; l >= 0; l--) {
		conv_geom g = conv_geom_of(a, l);
		memset(c->gconv + g.boff, 0, g.cout * sizeof(float));
		float *dx = l == 1 ? t->dx[0] : NULL;
		const float *in = l == 1 ? t->act[1] : x;
		for (size_t st = 0; st < b; st += c->chunk) {
			conv_backward(t, l, in, dout, dx, st,
			    FMI_MIN(c->chunk, b - st), redo, NULL);
		}
		conv_sink(t, l, s);
		dout = t->dx[0];
	}
}

/* ---- DP-SGD --------------------------------------------------------------- */

/*
 * Pass one: deltas down the network as fmi_cnn_backward, keeping fc1's
 * output delta (dp->delta[2]) for pass two, dense layers' per-example
 * squared norms from activations and deltas, and the conv layers'
 * per-example gradients in dp->pex (their norms from there). Nothing is
 * written to the parameters, so conv2's input gradient still uses the
 * weights of the forward pass.
 */
void
fmi_cnn_dp_norms(fmi_trainer *t, const float *x, size_t b, double *sq)
{
	struct fmi_cnn_buf *c = t->cnn;
	const fmi_arch *a = &t->arch;
	float *d3 = t->dp->delta[2];
	dense_dx(t, 3, t->act[4], d3, b);
	fmi_dp_dense_norms(sq, t->act[3], a->widths[3], t->act[4], a->widths[4],
	    b);
	dense_dx(t, 2, d3, t->dx[1], b);
	fmi_dp_dense_norms(sq, t->act[2], a->widths[2], d3, a->widths[3], b);
	int redo = b > c->chunk;
	const float *dout = t->dx[1];
	for (int l = 1; l >= 0; l--) {
		float *dx = l == 1 ? t->dx[0] : NULL;
		const float *in = l == 1 ? t->act[1] : x;
		for (size_t st = 0; st < b; st += c->chunk) {
			conv_backward(t, l, in, dout, dx, st,
			    FMI_MIN(c->chunk, b - st), redo, t->dp->pex);
		}
		dout = t->dx[0];
	}
	size_t nconv = a->slices[4].offset;
	fmi_dp_rows_sq(sq, t->dp->pex, b, nconv, nconv);
}

/* Pass two: the dense layers' GEMMs on deltas scaled by fac, and the conv
 * layers' clipped sums fac^T pex (one GEMV over both). */
void
fmi_cnn_dp_apply(fmi_trainer *t, size_t b, const float *fac,
    const fmi_grad_sink *s)
{
	const fmi_arch *a = &t->arch;
	float *d3 = t->dp->delta[2];
	fmi_dp_scale_rows(t->act[4], fac, b, a->widths[4]);
	dense_wgrad(t, 3, t->act[4], b, s);
	fmi_dp_scale_rows(d3, fac, b, a->widths[3]);
	dense_wgrad(t, 2, d3, b, s);
	size_t nconv = a->slices[4].offset;
	fmi_gemm(0, 0, 1, nconv, b, 1.0f, fac, b, t->dp->pex, nconv, 0.0f,
	    t->cnn->gconv, nconv);
	conv_sink(t, 1, s);
	conv_sink(t, 0, s);
}
