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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model_impl.h"

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
};

/* One conv layer's geometry. */
typedef struct conv_geom {
	size_t cin, cout, side, k; /* side: input = output side before pool */
	size_t in_dim, out_dim;    /* floats per image: input, pooled output */
	size_t woff, boff;         /* parameter offsets */
} conv_geom;

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
	free(c->gconv);
	free(c);
}

/* ---- kernels -------------------------------------------------------------- */

/* The columns [x0, x1) of an output row that read inside the source row
 * for kernel column kx. */
static void
valid_span(size_t w, size_t kx, size_t pad, size_t *x0, size_t *x1)
{
	*x0 = kx < pad ? FMI_MIN(w, pad - kx) : 0;
	*x1 = kx > pad ? (w > kx - pad ? w - (kx - pad) : 0) : w;
	*x1 = FMI_MAX(*x0, *x1);
}

/* dst [h x w] = src shifted by (ky - pad, kx - pad), zeros outside. */
static void
im2col_plane(float *restrict dst, const float *restrict src, size_t h,
    size_t w, size_t ky, size_t kx, size_t pad)
{
	size_t x0, x1;
	valid_span(w, kx, pad, &x0, &x1);
	for (size_t y = 0; y < h; y++, dst += w) {
		size_t sy = y + ky; /* source row + pad */
		if (sy < pad || sy - pad >= h) {
			memset(dst, 0, w * sizeof *dst);
			continue;
		}
		/* dst[x] = s[x - pad] for x in [x0, x1), where x0 + kx >= pad */
		const float *s = src + (sy - pad) * w + kx;
		for (size_t x = 0; x < x0; x++) {
			dst[x] = 0.0f;
		}
		size_t x = x0;
		for (; x + FMI_VB <= x1; x += FMI_VB) {
			for (size_t q = x; q < x + FMI_VB; q++) {
				dst[q] = s[(ptrdiff_t)q - (ptrdiff_t)pad];
			}
		}
		for (; x < x1; x++) {
			dst[x] = s[(ptrdiff_t)x - (ptrdiff_t)pad];
		}
		for (x = x1; x < w; x++) {
			dst[x] = 0.0f;
		}
	}
}

void
fmi_cnn_im2col(float *restrict cols, const float *restrict x, size_t n,
    size_t c, size_t h, size_t w, size_t k)
{
	size_t hw = h * w, pad = k / 2;
	for (size_t ci = 0; ci < c; ci++) {
		for (size_t ky = 0; ky < k; ky++) {
			for (size_t kx = 0; kx < k; kx++) {
				float *row = cols + ((ci * k + ky) * k + kx) * n * hw;
				for (size_t i = 0; i < n; i++) {
					im2col_plane(row + i * hw,
					    x + (i * c + ci) * hw, h, w, ky, kx,
					    pad);
				}
			}
		}
	}
}

/* The adjoint of im2col_plane: dst += src shifted back. */
static void
col2im_plane(float *restrict dst, const float *restrict src, size_t h,
    size_t w, size_t ky, size_t kx, size_t pad)
{
	size_t x0, x1;
	valid_span(w, kx, pad, &x0, &x1);
	for (size_t y = 0; y < h; y++, src += w) {
		size_t sy = y + ky;
		if (sy < pad || sy - pad >= h) {
			continue;
		}
		float *d = dst + (sy - pad) * w + kx;
		size_t x = x0;
		for (; x + FMI_VB <= x1; x += FMI_VB) {
			for (size_t q = x; q < x + FMI_VB; q++) {
				d[(ptrdiff_t)q - (ptrdiff_t)pad] += src[q];
			}
		}
		for (; x < x1; x++) {
			d[(ptrdiff_t)x - (ptrdiff_t)pad] += src[x];
		}
	}
}

void
fmi_cnn_col2im(float *restrict dx, const float *restrict cols, size_t n,
    size_t c, size_t h, size_t w, size_t k)
{
	size_t hw = h * w, pad = k / 2;
	for (size_t ci = 0; ci < c; ci++) {
		for (size_t ky = 0; ky < k; ky++) {
			for (size_t kx = 0; kx < k; kx++) {
				const float *row = cols +
				    ((ci * k + ky) * k + kx) * n * hw;
				for (size_t i = 0; i < n; i++) {
					col2im_plane(dx + (i * c + ci) * hw,
					    row + i * hw, h, w, ky, kx, pad);
				}
			}
		}
	}
}

/* Max of a 2x2 window v[0..3] (row-major) and its position; the first of
 * equal values wins, and a NaN wins (then stays). Branch-free selects. */
static inline float
max4(float v0, float v1, float v2, float v3, uint8_t *arg)
{
	float m = v0;
	uint8_t a = 0;
	int t1 = m == m && !(v1 <= m);
	m = t1 ? v1 : m;
	a = t1 ? 1 : a;
	int t2 = m == m && !(v2 <= m);
	m = t2 ? v2 : m;
	a = t2 ? 2 : a;
	int t3 = m == m && !(v3 <= m);
	m = t3 ? v3 : m;
	a = t3 ? 3 : a;
	*arg = a;
	return m;
}

static void
pool_plane(float *restrict out, uint8_t *restrict arg,
    const float *restrict y, float bias, size_t h, size_t w)
{
	size_t pw = w / 2;
	for (size_t py = 0; py < h / 2; py++, out += pw, arg += pw) {
		const float *r0 = y + 2 * py * w, *r1 = r0 + w;
		for (size_t px = 0; px < pw; px++) {
			float m = max4(r0[2 * px], r0[2 * px + 1], r1[2 * px],
			    r1[2 * px + 1], &arg[px]) + bias;
			out[px] = m > 0.0f ? m : (m == m ? 0.0f : m);
		}
	}
}

void
fmi_cnn_pool(float *restrict out, uint8_t *restrict arg,
    const float *restrict y, const float *restrict bias, size_t n, size_t c,
    size_t h, size_t w)
{
	size_t hw = h * w, phw = (h / 2) * (w / 2);
	for (size_t ci = 0; ci < c; ci++) {
		for (size_t i = 0; i < n; i++) {
			size_t o = (i * c + ci) * phw;
			pool_plane(out + o, arg + o, y + (ci * n + i) * hw,
			    bias[ci], h, w);
		}
	}
}

static float
unpool_plane(float *restrict dy, const float *restrict dout,
    const float *restrict out, const uint8_t *restrict arg, size_t h,
    size_t w)
{
	size_t pw = w / 2;
	float sum = 0.0f;
	for (size_t py = 0; py < h / 2; py++) {
		float *r0 = dy + 2 * py * w, *r1 = r0 + w;
		for (size_t px = 0; px < pw; px++) {
			size_t o = py * pw + px;
			float g = out[o] > 0.0f ? dout[o] : 0.0f;
			uint8_t a = arg[o];
			r0[2 * px] = a == 0 ? g : 0.0f;
			r0[2 * px + 1] = a == 1 ? g : 0.0f;
			r1[2 * px] = a == 2 ? g : 0.0f;
			r1[2 * px + 1] = a == 3 ? g : 0.0f;
			sum += g;
		}
	}
	return sum;
}

void
fmi_cnn_unpool(float *restrict dy, float *restrict dbias,
    const float *restrict dout, const float *restrict out,
    const uint8_t *restrict arg, size_t n, size_t c, size_t h, size_t w)
{
	size_t hw = h * w, phw = (h / 2) * (w / 2);
	for (size_t ci = 0; ci < c; ci++) {
		float sum = 0.0f;
		for (size_t i = 0; i < n; i++) {
			size_t o = (i * c + ci) * phw;
			sum += unpool_plane(dy + (ci * n + i) * hw, dout + o,
			    out + o, arg + o, h, w);
		}
		dbias[ci] += sum;
	}
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
	fmi_cnn_im2col(c->cols[l], in + s * g.in_dim, n, g.cin, g.side,
	    g.side, g.k);
	fmi_gemm(0, 0, g.cout, pix, kk, 1.0f, p + g.woff, kk, c->cols[l], pix,
	    0.0f, c->y[l], pix);
	fmi_cnn_pool(t->act[l + 1] + s * g.out_dim, c->arg[l] + s * g.out_dim,
	    c->y[l], p + g.boff, n, g.cout, g.side, g.side);
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

/* Dense layer l (2 or 3): dy [b x out] from the layer above; writes dx
 * [b x in] (ReLU-masked for l = 3) before the sink may update W. */
static void
dense_backward(fmi_trainer *t, uint32_t l, const float *dy, float *dx,
    size_t b, const fmi_grad_sink *s)
{
	const fmi_arch *a = &t->arch;
	const fmi_slice *w = &a->slices[2 * l];
	const float *in = t->act[l];
	size_t boff = a->slices[2 * l + 1].offset;
	fmi_gemm(0, 0, b, w->cols, w->rows, 1.0f, dy, w->rows,
	    t->params + w->offset, w->cols, 0.0f, dx, w->cols);
	if (l == 3) {
		fmi_model_relu_mask(dx, in, b * w->cols);
	}
	fmi_gemm(1, 0, w->rows, w->cols, b, s->alpha, dy, w->rows, in, w->cols,
	    s->beta, s->dst + w->offset, w->cols);
	fmi_model_bias_grad(s->dst + boff, t->bsum, dy, b, w->rows, s->alpha,
	    s->beta);
	fmi_model_sink_finish(t, s, w->offset, boff + w->rows - w->offset);
}

/*
 * Conv layer l on images [s, s + n): dout is the gradient of the pooled
 * output (full batch), dx (conv2 only) receives the input gradient. The
 * weight and bias gradients accumulate into gconv. redo: the im2col
 * matrix in the buffer is another chunk's and is rebuilt.
 */
static void
conv_backward(fmi_trainer *t, int l, const float *in, const float *dout,
    float *dx, size_t s, size_t n, int redo)
{
	struct fmi_cnn_buf *c = t->cnn;
	conv_geom g = conv_geom_of(&t->arch, l);
	size_t pix = n * g.side * g.side, kk = g.cin * g.k * g.k;
	fmi_cnn_unpool(c->y[l], c->gconv + g.boff, dout + s * g.out_dim,
	    t->act[l + 1] + s * g.out_dim, c->arg[l] + s * g.out_dim, n, g.cout,
	    g.side, g.side);
	if (redo) {
		fmi_cnn_im2col(c->cols[l], in + s * g.in_dim, n, g.cin, g.side,
		    g.side, g.k);
	}
	fmi_gemm(0, 1, g.cout, kk, pix, 1.0f, c->y[l], pix, c->cols[l], pix,
	    s == 0 ? 0.0f : 1.0f, c->gconv + g.woff, kk);
	if (dx != NULL) {
		fmi_gemm(1, 0, kk, pix, g.cout, 1.0f, t->params + g.woff, kk,
		    c->y[l], pix, 0.0f, c->cols[l], pix);
		memset(dx + s * g.in_dim, 0, n * g.in_dim * sizeof *dx);
		fmi_cnn_col2im(dx + s * g.in_dim, c->cols[l], n, g.cin, g.side,
		    g.side, g.k);
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
			    FMI_MIN(c->chunk, b - st), redo);
		}
		conv_sink(t, l, s);
		dout = t->dx[0];
	}
}
