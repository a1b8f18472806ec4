/* SPDX-License-Identifier: MIT */
/*
 * cnn_test.c: the CNN: architecture, init, im2col/col2im and pooling
 * kernels, gradients against finite differences of an independent
 * double-precision direct convolution, chunked batches, fused training
 * steps, learning.
 */
#include "fm_test.h"

#include "core/core.h"
#include "model/model_impl.h"

static const fmi_cnn_shape mcmahan = { 28, 5, { 32, 64 }, 512, 10 };
static const fmi_cnn_shape small = { 28, 5, { 2, 3 }, 8, 10 };

/* ---- helpers -------------------------------------------------------------- */

static fmi_arch
make_cnn(const fmi_cnn_shape *s)
{
	fmi_arch a;
	fm_error e;
	FMT_PASS(fmi_arch_cnn(&a, s, &e));
	return a;
}

static void
fill_normal(float *x, size_t n, fm_rng *r, double sd)
{
	for (size_t i = 0; i < n; i++) {
		x[i] = (float)(sd * fmi_rng_normal(r));
	}
}

static void
fill_uniform(float *x, size_t n, fm_rng *r)
{
	for (size_t i = 0; i < n; i++) {
		x[i] = (float)fmi_rng_uniform(r);
	}
}

static void
fill_labels(int32_t *y, size_t n, uint32_t k, fm_rng *r)
{
	for (size_t i = 0; i < n; i++) {
		y[i] = (int32_t)fmi_rng_below(r, k);
	}
}

/* Parameters N(0, (scale / sqrt(fan_in))^2) per layer: activations keep
 * their size through the layers, so every gradient carries signal. */
static void
fill_params(const fmi_arch *a, float *p, fm_rng *r, double scale)
{
	for (uint32_t s = 0; s < a->nslices; s++) {
		const fmi_slice *sl = &a->slices[s];
		size_t fan_in = a->slices[s & ~1u].cols;
		fill_normal(p + sl->offset, sl->rows * sl->cols, r,
		    scale / sqrt((double)fan_in));
	}
}

static double
dot_d(const float *x, const float *y, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++) {
		s += (double)x[i] * y[i];
	}
	return s;
}

/* ---- the reference: direct convolution in double, PyTorch semantics ----- */

/* out[o][y][x] = relu(b[o] + sum w[o][c][ky][kx] in[c][y+ky-p][x+kx-p]),
 * then 2x2 max-pool: pooled [cout][s/2][s/2]. */
static void
ref_conv_pool(double *pooled, const double *in, const double *w,
    const double *b, size_t cin, size_t cout, size_t s, size_t k)
{
	double *out = malloc(cout * s * s * sizeof *out);
	long pad = (long)k / 2, side = (long)s;
	for (size_t o = 0; o < cout; o++) {
		for (long y = 0; y < side; y++) {
			for (long x = 0; x < side; x++) {
				double v = b[o];
				for (size_t c = 0; c < cin; c++) {
					for (long ky = 0; ky < (long)k; ky++) {
						for (long kx = 0; kx < (long)k; kx++) {
							long sy = y + ky - pad, sx = x + kx - pad;
							if (sy < 0 || sy >= side || sx < 0 || sx >= side) {
								continue;
							}
							v += w[((o * cin + c) * k + (size_t)ky) * k + (size_t)kx] *
							    in[(c * s + (size_t)sy) * s + (size_t)sx];
						}
					}
				}
				out[(o * s + (size_t)y) * s + (size_t)x] = v > 0 ? v : 0;
			}
		}
	}
	size_t h = s / 2;
	for (size_t o = 0; o < cout; o++) {
		for (size_t y = 0; y < h; y++) {
			for (size_t x = 0; x < h; x++) {
				const double *r = out + (o * s + 2 * y) * s + 2 * x;
				pooled[(o * h + y) * h + x] =
				    fmax(fmax(r[0], r[1]), fmax(r[s], r[s + 1]));
			}
		}
	}
	free(out);
}

/* y = W x + b with W [out x in]; ReLU when relu. */
static void
ref_dense(double *out, const double *in, const double *w, const double *b,
    size_t nin, size_t nout, int relu)
{
	for (size_t o = 0; o < nout; o++) {
		double v = b[o];
		for (size_t i = 0; i < nin; i++) {
			v += w[o * nin + i] * in[i];
		}
		out[o] = relu && v < 0 ? 0 : v;
	}
}

/* Mean cross-entropy of the CNN with double parameters p. */
static double
ref_loss(const fmi_arch *a, const double *p, const float *x,
    const int32_t *y, size_t b)
{
	const fmi_cnn_shape *s = &a->cnn;
	const fmi_slice *sl = a->slices;
	size_t in0 = a->widths[0];
	double *img = malloc(in0 * sizeof *img);
	double *p1 = malloc(a->widths[1] * sizeof *p1);
	double *p2 = malloc(a->widths[2] * sizeof *p2);
	double *h = malloc(s->hidden * sizeof *h), *z = malloc(s->classes * 8);
	double loss = 0;
	for (size_t i = 0; i < b; i++) {
		for (size_t j = 0; j < in0; j++) {
			img[j] = x[i * in0 + j];
		}
		ref_conv_pool(p1, img, p + sl[0].offset, p + sl[1].offset, 1,
		    s->ch[0], s->side, s->kernel);
		ref_conv_pool(p2, p1, p + sl[2].offset, p + sl[3].offset,
		    s->ch[0], s->ch[1], s->side / 2, s->kernel);
		ref_dense(h, p2, p + sl[4].offset, p + sl[5].offset,
		    a->widths[2], s->hidden, 1);
		ref_dense(z, h, p + sl[6].offset, p + sl[7].offset, s->hidden,
		    s->classes, 0);
		double m = z[0], se = 0;
		for (uint32_t c = 1; c < s->classes; c++) {
			m = fmax(m, z[c]);
		}
		for (uint32_t c = 0; c < s->classes; c++) {
			se += exp(z[c] - m);
		}
		loss += m + log(se) - z[y[i]];
	}
	free(img);
	free(p1);
	free(p2);
	free(h);
	free(z);
	return loss / (double)b;
}

/* ---- architecture and init ------------------------------------------------ */

static void
test_cnn_arch(void **state)
{
	(void)state;
	fmi_arch a = make_cnn(&mcmahan);
	assert_string_equal(a.kind, "cnn");
	assert_true(fmi_arch_is_cnn(&a));
	assert_int_equal(a.nparams, 1663370);
	assert_int_equal(a.nlayers, 4);
	assert_int_equal(a.widths[0], 784);
	assert_int_equal(a.widths[1], 32 * 14 * 14);
	assert_int_equal(a.widths[2], 3136);
	assert_int_equal(a.widths[3], 512);
	assert_int_equal(a.widths[4], 10);
	const char *names[] = { "conv1.weight", "conv1.bias", "conv2.weight",
		"conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias" };
	const size_t rows[] = { 32, 1, 64, 1, 512, 1, 10, 1 };
	const size_t cols[] = { 25, 32, 800, 64, 3136, 512, 512, 10 };
	assert_int_equal(a.nslices, 8);
	size_t off = 0;
	for (uint32_t i = 0; i < 8; i++) {
		assert_string_equal(a.slices[i].name, names[i]);
		assert_int_equal(a.slices[i].offset, off);
		assert_int_equal(a.slices[i].rows, rows[i]);
		assert_int_equal(a.slices[i].cols, cols[i]);
		off += rows[i] * cols[i];
	}
	assert_int_equal(off, a.nparams);
	/* per layer: 832, 51,264, 1,606,144, 5,130 */
	assert_int_equal(a.slices[2].offset, 832);
	assert_int_equal(a.slices[4].offset - a.slices[2].offset, 51264);
	assert_int_equal(a.slices[6].offset - a.slices[4].offset, 1606144);

	const uint32_t w[] = { 784, 10 };
	fmi_arch d;
	fm_error e;
	FMT_PASS(fmi_arch_mlp(&d, w, 2, &e));
	assert_false(fmi_arch_is_cnn(&d));

	fmi_cnn_shape bad = mcmahan;
	bad.side = 30;
	FMT_FAIL(fmi_arch_cnn(&d, &bad, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "multiple of 4"));
	bad = mcmahan;
	bad.kernel = 4;
	FMT_FAIL(fmi_arch_cnn(&d, &bad, &e), FM_EINVAL);
	bad = mcmahan;
	bad.ch[1] = 0;
	FMT_FAIL(fmi_arch_cnn(&d, &bad, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "conv2"));
	bad = mcmahan;
	bad.hidden = 0;
	FMT_FAIL(fmi_arch_cnn(&d, &bad, &e), FM_EINVAL);
	FMT_FAIL(fmi_arch_cnn(&d, NULL, &e), FM_EINVAL);
}

static void
test_cnn_init(void **state)
{
	(void)state;
	fmi_arch a = make_cnn(&mcmahan);
	float *p = malloc(a.nparams * sizeof *p), *q = malloc(a.nparams * 4);
	fm_rng r1, r2;
	fmi_rng_seed(&r1, 5, 0);
	fmi_rng_seed(&r2, 5, 0);
	fmi_arch_init_params(&a, p, &r1);
	fmi_arch_init_params(&a, q, &r2);
	assert_memory_equal(p, q, a.nparams * sizeof *p);
	const double fan_in[] = { 25, 25, 800, 800, 3136, 3136, 512, 512 };
	for (uint32_t s = 0; s < a.nslices; s++) {
		const fmi_slice *sl = &a.slices[s];
		float bound = (float)(1.0 / sqrt(fan_in[s])) + 1e-6f;
		float mx = 0;
		for (size_t i = 0; i < sl->rows * sl->cols; i++) {
			mx = fmaxf(mx, fabsf(p[sl->offset + i]));
		}
		assert_true(mx <= bound);
		assert_true(mx > 0.5f * bound);
	}
	free(p);
	free(q);
}

/* ---- kernels -------------------------------------------------------------- */

/* im2col by its definition. */
static float
col_at(const float *x, size_t c, size_t h, size_t w, size_t k, size_t row,
    size_t col)
{
	size_t ci = row / (k * k), ky = row / k % k, kx = row % k;
	size_t i = col / (h * w), y = col / w % h, xx = col % w;
	long sy = (long)(y + ky) - (long)(k / 2);
	long sx = (long)(xx + kx) - (long)(k / 2);
	if (sy < 0 || sy >= (long)h || sx < 0 || sx >= (long)w) {
		return 0.0f;
	}
	return x[((i * c + ci) * h + (size_t)sy) * w + (size_t)sx];
}

static void
test_im2col_col2im(void **state)
{
	(void)state;
	const size_t shapes[][5] = { /* n, c, h, w, k */
		{ 1, 1, 1, 1, 1 }, { 2, 3, 5, 7, 3 }, { 3, 2, 6, 4, 5 },
		{ 2, 1, 28, 28, 5 }, { 4, 3, 14, 14, 5 }, { 1, 2, 3, 3, 5 },
		{ 2, 2, 20, 20, 7 } };
	fm_rng r;
	fmi_rng_seed(&r, 31, 0);
	for (size_t s = 0; s < FMI_ARRAY_LEN(shapes); s++) {
		size_t n = shapes[s][0], c = shapes[s][1], h = shapes[s][2];
		size_t w = shapes[s][3], k = shapes[s][4];
		size_t nx = n * c * h * w, nc = c * k * k * n * h * w;
		float *x = malloc(nx * 4), *y = malloc(nc * 4);
		float *cols = malloc(nc * 4), *dx = malloc(nx * 4);
		float *pad = malloc(n * (h + k) * (w + k) * 4);
		fill_normal(x, nx, &r, 1.0);
		fill_normal(y, nc, &r, 1.0);
		fmi_cnn_im2col(cols, x, pad, n, c, h, w, k);
		for (size_t row = 0; row < c * k * k; row++) {
			for (size_t col = 0; col < n * h * w; col++) {
				assert_true(cols[row * n * h * w + col] ==
				    col_at(x, c, h, w, k, row, col));
			}
		}
		/* adjointness: <im2col(x), y> = <x, col2im(y)> */
		memset(dx, 0, nx * 4);
		fmi_cnn_col2im(dx, y, pad, n, c, h, w, k);
		double lhs = dot_d(cols, y, nc), rhs = dot_d(x, dx, nx);
		assert_true(fabs(lhs - rhs) <= 1e-4 * (1.0 + fabs(lhs)));
		/* col2im adds: a second pass doubles */
		float *dx2 = malloc(nx * 4);
		memcpy(dx2, dx, nx * 4);
		fmi_cnn_col2im(dx2, y, pad, n, c, h, w, k);
		for (size_t i = 0; i < nx; i++) {
			assert_true(fabsf(dx2[i] - 2 * dx[i]) <= 1e-5f *
			    (1 + fabsf(dx[i])));
		}
		free(dx2);
		free(pad);
		free(x);
		free(y);
		free(cols);
		free(dx);
	}
}

/* One 2x2 window per channel, two images: c = 0 .. 5 exercise ties, NaN,
 * exactly zero after the bias, and negative windows. */
static void
test_pool_ties_relu(void **state)
{
	(void)state;
	enum { C = 6, N = 2 };
	/* y [c][n][2][2] */
	const float win[C][4] = {
		{ 1, 3, 3, 2 },          /* tie between 1 and 2: first (1) */
		{ 5, 5, 5, 5 },          /* all equal: 0 */
		{ 1, NAN, 7, 2 },        /* NaN wins */
		{ -2, -1, -1.5f, -3 },   /* max -1 (1) + bias 1 = 0: ReLU 0 */
		{ -4, -5, -6, -7 },      /* negative: 0 */
		{ 0, 1, 2, 9 },          /* plain: 3 */
	};
	const float bias[C] = { 0, 0, 0, 1, 0, 0.5f };
	float y[C * N * 4];
	for (size_t c = 0; c < C; c++) {
		for (size_t i = 0; i < N; i++) {
			for (size_t q = 0; q < 4; q++) {
				y[(c * N + i) * 4 + q] = win[c][q];
			}
		}
	}
	float out[N * C];
	uint8_t arg[N * C];
	fmi_cnn_pool(out, arg, y, bias, N, C, 2, 2);
	const uint8_t want_arg[C] = { 1, 0, 1, 1, 0, 3 };
	for (size_t i = 0; i < N; i++) {
		const float *o = out + i * C; /* NCHW, 1x1 planes */
		for (size_t c = 0; c < C; c++) {
			assert_int_equal(arg[i * C + c], want_arg[c]);
		}
		assert_true(o[0] == 3 && o[1] == 5 && isnan(o[2]));
		assert_true(o[3] == 0 && !signbit(o[3]) && o[4] == 0);
		assert_true(o[5] == 9.5f);
	}
	/* backward: the gradient goes to the argmax only, and not at all
	 * where the output is 0 (ReLU'(0) = 0, as PyTorch) or NaN */
	float dout[N * C], dy[C * N * 4], db[C] = { 0 };
	for (size_t j = 0; j < N * C; j++) {
		dout[j] = 1.0f + (float)j;
	}
	float sums[C * N];
	fmi_cnn_unpool(dy, db, sums, dout, out, arg, N, C, 2, 2);
	for (size_t c = 0; c < C; c++) {
		float sum = 0;
		for (size_t i = 0; i < N; i++) {
			const float *g = dy + (c * N + i) * 4;
			float want = (c == 0 || c == 1 || c == 5) ?
			    dout[i * C + c] : 0.0f;
			for (size_t q = 0; q < 4; q++) {
				assert_true(g[q] == (q == want_arg[c] ? want : 0.0f));
			}
			sum += want;
		}
		assert_true(db[c] == sum);
	}
}

/* Planes wide enough for the 4-window SIMD path plus a scalar tail, full of
 * ties and some NaNs, against the definition: first NaN, else first max. */
static void
test_pool_wide_planes(void **state)
{
	(void)state;
	const size_t shapes[][4] = { { 3, 2, 6, 14 }, { 2, 3, 4, 16 },
		{ 1, 1, 2, 2 }, { 2, 2, 28, 28 } }; /* n, c, h, w */
	fm_rng r;
	fmi_rng_seed(&r, 41, 0);
	for (size_t k = 0; k < FMI_ARRAY_LEN(shapes); k++) {
		size_t n = shapes[k][0], c = shapes[k][1], h = shapes[k][2];
		size_t w = shapes[k][3], hw = h * w, phw = hw / 4;
		float *y = malloc(c * n * hw * 4), *out = malloc(n * c * phw * 4);
		float *dout = malloc(n * c * phw * 4), *dy = malloc(c * n * hw * 4);
		uint8_t *arg = malloc(n * c * phw);
		float bias[3] = { 0.0f, -1.0f, 0.5f }, db[3] = { 0, 0, 0 };
		for (size_t i = 0; i < c * n * hw; i++) {
			uint64_t v = fmi_rng_below(&r, 40);
			y[i] = v == 0 ? NAN : (float)(v % 4) - 1.0f;
		}
		fill_normal(dout, n * c * phw, &r, 1.0);
		fmi_cnn_pool(out, arg, y, bias, n, c, h, w);
		float sums[3 * 3];
		fmi_cnn_unpool(dy, db, sums, dout, out, arg, n, c, h, w);
		for (size_t ci = 0; ci < c; ci++) {
			double gsum = 0;
			for (size_t i = 0; i < n; i++) {
				const float *pl = y + (ci * n + i) * hw;
				const float *gp = dy + (ci * n + i) * hw;
				for (size_t o = 0; o < phw; o++) {
					size_t py = o / (w / 2), px = o % (w / 2);
					size_t pos[4] = { 2 * py * w + 2 * px,
						2 * py * w + 2 * px + 1,
						(2 * py + 1) * w + 2 * px,
						(2 * py + 1) * w + 2 * px + 1 };
					size_t best = 0;
					for (size_t q = 1; q < 4; q++) {
						float m = pl[pos[best]], v = pl[pos[q]];
						if (!isnan(m) && (isnan(v) || v > m)) {
							best = q;
						}
					}
					size_t j = (i * c + ci) * phw + o;
					float m = pl[pos[best]] + bias[ci];
					float want = isnan(m) ? m : (m > 0 ? m : 0.0f);
					assert_int_equal(arg[j], best);
					assert_true(isnan(want) ? isnan(out[j]) :
					    out[j] == want);
					float g = out[j] > 0 ? dout[j] : 0.0f;
					for (size_t q = 0; q < 4; q++) {
						assert_true(gp[pos[q]] == (q == best ? g : 0.0f));
					}
					gsum += g;
				}
			}
			assert_true(fabs(db[ci] - gsum) < 1e-4);
		}
		free(y);
		free(out);
		free(dout);
		free(dy);
		free(arg);
	}
}

/* ---- gradients ------------------------------------------------------------ */

typedef struct gc_case {
	const fmi_arch *a;
	const float *x;
	const int32_t *y;
	size_t b;
} gc_case;

/* Relative error of the analytic gradient g at coordinate i against a
 * central difference of the reference. */
static double
gc_coord(const gc_case *c, double *pd, const float *p, const float *g,
    size_t i, double floor_)
{
	const double eps = 1e-6;
	pd[i] = (double)p[i] + eps;
	double lp = ref_loss(c->a, pd, c->x, c->y, c->b);
	pd[i] = (double)p[i] - eps;
	double lm = ref_loss(c->a, pd, c->x, c->y, c->b);
	pd[i] = p[i];
	double num = (lp - lm) / (2 * eps);
	double rel = fabs(num - g[i]) / fmax(fmax(fabs(num), fabs(g[i])),
	    floor_);
	if (rel >= 1e-3) {
		print_error("param %zu: analytic %g numeric %g\n", i,
		    (double)g[i], num);
	}
	return rel;
}

/* Checks per slice: every coordinate (per_slice 0) or per_slice random
 * ones; returns the worst relative error. */
static double
gradcheck_cnn(const fmi_cnn_shape *s, size_t b, size_t per_slice,
    uint64_t seed)
{
	fmi_arch a = make_cnn(s);
	fmi_trainer *t;
	FMT_PASS(fmi_trainer_new(&t, &a, b));
	fm_rng r;
	fmi_rng_seed(&r, seed, 0);
	float *p = fmi_trainer_params(t);
	fill_params(&a, p, &r, 2.0);
	float *x = malloc(b * a.widths[0] * sizeof *x);
	int32_t *y = malloc(b * sizeof *y);
	fill_uniform(x, b * a.widths[0], &r);
	fill_labels(y, b, s->classes, &r);
	double loss = fmi_trainer_loss_grad(t, x, y, b);
	const float *g = fmi_trainer_grad(t);
	double *pd = malloc(a.nparams * sizeof *pd);
	for (size_t i = 0; i < a.nparams; i++) {
		pd[i] = p[i];
	}
	gc_case c = { &a, x, y, b };
	double ref = ref_loss(&a, pd, x, y, b);
	assert_true(fabs(loss - ref) < 1e-5 * (1 + fabs(ref)));
	double worst = 0;
	for (uint32_t k = 0; k < a.nslices; k++) {
		const fmi_slice *sl = &a.slices[k];
		size_t n = sl->rows * sl->cols, m = per_slice ? per_slice : n;
		double gmax = 0, wslice = 0;
		for (size_t i = 0; i < n; i++) {
			gmax = fmax(gmax, fabs(g[sl->offset + i]));
		}
		for (size_t j = 0; j < m; j++) {
			size_t i = sl->offset + (per_slice ? fmi_rng_below(&r, n) : j);
			/* floor: float32 sums of many terms carry absolute
			 * errors around 1e-6 of the slice's largest entry */
			wslice = fmax(wslice, gc_coord(&c, pd, p, g, i,
			    fmax(1e-4 * gmax, 1e-7)));
		}
		print_message("  %-12s worst relative error %.2e (max |g| %.2e)\n",
		    sl->name, wslice, gmax);
		worst = fmax(worst, wslice);
	}
	free(pd);
	free(x);
	free(y);
	fmi_trainer_free(t);
	return worst;
}

static void
test_gradcheck_small(void **state)
{
	(void)state;
	double worst = gradcheck_cnn(&small, 3, 0, 1);
	print_message("gradcheck cnn {2, 3} hidden 8 batch 3, every "
	    "parameter: worst relative error %.2e\n", worst);
	assert_true(worst < 1e-3);
	const fmi_cnn_shape odd = { 12, 3, { 3, 2 }, 5, 4 };
	worst = gradcheck_cnn(&odd, 2, 0, 2);
	print_message("gradcheck cnn 12x12 k3 {3, 2} hidden 5: worst %.2e\n",
	    worst);
	assert_true(worst < 1e-3);
}

static void
test_gradcheck_full(void **state)
{
	(void)state;
	double worst = gradcheck_cnn(&mcmahan, 2, 3, 3);
	print_message("gradcheck full cnn, 3 coordinates per slice: worst "
	    "relative error %.2e\n", worst);
	assert_true(worst < 1e-3);
}

/* A batch larger than a chunk (64 images) is processed in chunks, with
 * the im2col matrices rebuilt in backward: the gradient equals the
 * example-weighted mean of the gradients of its parts, each one chunk. */
static void
test_chunked_batch(void **state)
{
	(void)state;
	enum { B = 70, B1 = 40 };
	fmi_arch a = make_cnn(&small);
	fmi_trainer *big, *part;
	FMT_PASS(fmi_trainer_new(&big, &a, B));
	FMT_PASS(fmi_trainer_new(&part, &a, B1));
	fm_rng r;
	fmi_rng_seed(&r, 8, 0);
	fill_params(&a, fmi_trainer_params(big), &r, 2.0);
	memcpy(fmi_trainer_params(part), fmi_trainer_params(big),
	    a.nparams * 4);
	float *x = malloc(B * 784 * 4), *acc = calloc(a.nparams, 4);
	int32_t y[B];
	fill_uniform(x, B * 784, &r);
	fill_labels(y, B, 10, &r);
	double loss = fmi_trainer_loss_grad(big, x, y, B), parts = 0;
	const size_t from[] = { 0, B1 }, len[] = { B1, B - B1 };
	for (int k = 0; k < 2; k++) {
		parts += fmi_trainer_loss_grad(part, x + from[k] * 784,
		    y + from[k], len[k]) * (double)len[k] / B;
		const float *g = fmi_trainer_grad(part);
		for (size_t i = 0; i < a.nparams; i++) {
			acc[i] += g[i] * (float)len[k] / B;
		}
	}
	assert_true(fabs(loss - parts) < 1e-5);
	FMT_NEAR(fmi_trainer_grad(big), acc, a.nparams, 1e-5);
	free(x);
	free(acc);
	fmi_trainer_free(big);
	fmi_trainer_free(part);
}

/* ---- training ------------------------------------------------------------- */

static fmi_dataset *
random_images(size_t n, uint64_t seed)
{
	fmi_dataset *d;
	FMT_PASS(fmi_dataset_new(&d, n, 784, 10));
	fm_rng r;
	fmi_rng_seed(&r, seed, 0);
	fill_uniform(d->x, n * 784, &r);
	fill_labels(d->y, n, 10, &r);
	return d;
}

static uint32_t *
iota(size_t n)
{
	uint32_t *idx = malloc(n * sizeof *idx);
	for (size_t i = 0; i < n; i++) {
		idx[i] = (uint32_t)i;
	}
	return idx;
}

/* The im2col, col2im and pooling kernels on a second thread (split by
 * images; automatic with 2+ BLAS threads) give the same numbers. */
static void
test_helper_same_numbers(void **state)
{
	(void)state;
	int saved = fmi_blas_get_threads();
	fmi_blas_set_threads(1); /* OpenBLAS rounds differently on two */
	fmi_arch a = make_cnn(&small);
	enum { B = 69 }; /* two chunks (64 + 5), odd halves */
	fmi_trainer *t;
	FMT_PASS(fmi_trainer_new(&t, &a, B));
	fm_rng r;
	fmi_rng_seed(&r, 17, 0);
	float *x = malloc(B * 784 * 4), *p0 = malloc(a.nparams * 4);
	float *g1 = malloc(a.nparams * 4);
	int32_t y[B];
	fill_uniform(x, B * 784, &r);
	fill_labels(y, B, 10, &r);
	fill_params(&a, p0, &r, 2.0);
	double loss[2];
	for (int k = 0; k < 2; k++) {
		fmi_cnn_set_helper(t, k == 0 ? -1 : 1);
		memcpy(fmi_trainer_params(t), p0, a.nparams * 4);
		loss[k] = fmi_trainer_loss_grad(t, x, y, B);
		if (k == 0) {
			memcpy(g1, fmi_trainer_grad(t), a.nparams * 4);
		}
	}
	assert_true(loss[0] == loss[1]);
	assert_memory_equal(fmi_trainer_grad(t), g1, a.nparams * 4);
	fmi_eval e1, e2;
	fmi_dataset *d = random_images(100, 18);
	FMT_PASS(fmi_evaluate(t, p0, d, NULL, 0, &e2));
	fmi_cnn_set_helper(t, -1);
	FMT_PASS(fmi_evaluate(t, p0, d, NULL, 0, &e1));
	assert_true(e1.loss == e2.loss && e1.accuracy == e2.accuracy);
	fmi_blas_set_threads(saved);
	fmi_dataset_unref(d);
	free(x);
	free(p0);
	free(g1);
	fmi_trainer_free(t); /* stops the helper thread */
}

/* fmi_train_local's fused steps (gradients straight into the params or
 * the velocity, conv gradients through their scratch) equal loss_grad +
 * sgd_step, with and without momentum, in one chunk and in several. */
static void
fused_matches(const fmi_sgd *opt, size_t b)
{
	fmi_arch a = make_cnn(&small);
	fmi_dataset *d = random_images(b, 4);
	fmi_trainer *t1, *t2;
	FMT_PASS(fmi_trainer_new(&t1, &a, b));
	FMT_PASS(fmi_trainer_new(&t2, &a, b));
	fm_rng r;
	fmi_rng_seed(&r, 9, 0);
	fmi_arch_init_params(&a, fmi_trainer_params(t1), &r);
	memcpy(fmi_trainer_params(t2), fmi_trainer_params(t1), a.nparams * 4);
	uint32_t *idx = iota(b);
	fmi_local_cfg cfg = { .epochs = 2, .batch = (uint32_t)b,
		.opt = *opt };
	fmi_train_stats st;
	FMT_PASS(fmi_train_local(t1, d, idx, b, &cfg, &r, &st));
	assert_int_equal(st.steps, 2);
	double loss = 0;
	for (int s = 0; s < 2; s++) {
		loss += fmi_trainer_loss_grad(t2, d->x, d->y, b) / 2;
		fmi_trainer_sgd_step(t2, opt);
	}
	assert_true(fabs(loss - st.loss) < 1e-5);
	FMT_NEAR(fmi_trainer_params(t1), fmi_trainer_params(t2), a.nparams,
	    1e-5);
	free(idx);
	fmi_dataset_unref(d);
	fmi_trainer_free(t1);
	fmi_trainer_free(t2);
}

static void
test_fused_step_matches(void **state)
{
	(void)state;
	const fmi_sgd plain = { 0.3f, 0.0f, 0.05f }, mom = { 0.3f, 0.9f, 0.05f };
	fused_matches(&plain, 8);
	fused_matches(&mom, 8);
	fused_matches(&plain, 67);
	fused_matches(&mom, 67);
}

/* The full CNN memorizes a tiny batch: the loss falls step after step. */
static void
test_loss_decreases(void **state)
{
	(void)state;
	fmi_arch a = make_cnn(&mcmahan);
	fmi_dataset *d = random_images(8, 12);
	fmi_trainer *t;
	FMT_PASS(fmi_trainer_new(&t, &a, 8));
	fm_rng r;
	fmi_rng_seed(&r, 13, 0);
	fmi_arch_init_params(&a, fmi_trainer_params(t), &r);
	const fmi_sgd o = { 0.1f, 0.9f, 0.0f };
	double first = 0, last = 0;
	for (int s = 0; s < 25; s++) {
		last = fmi_trainer_loss_grad(t, d->x, d->y, 8);
		assert_true(isfinite(last));
		first = s == 0 ? last : first;
		fmi_trainer_sgd_step(t, &o);
	}
	print_message("cnn loss on a batch of 8: %.4f -> %.4f\n", first, last);
	assert_true(first > 2.0 && first < 2.6); /* about log(10) */
	assert_true(last < 0.5 * first);
	fmi_eval ev;
	FMT_PASS(fmi_evaluate(t, fmi_trainer_params(t), d, NULL, 0, &ev));
	assert_true(ev.accuracy >= 0.75);
	fmi_dataset_unref(d);
	fmi_trainer_free(t);
}

/* Evaluation in batches (and chunks) of any size gives the same numbers;
 * local training is deterministic for a seed. */
static void
test_evaluate_and_determinism(void **state)
{
	(void)state;
	fmi_arch a = make_cnn(&small);
	fmi_dataset *d = random_images(150, 14);
	fmi_trainer *t1, *t7, *t150;
	FMT_PASS(fmi_trainer_new(&t1, &a, 16));
	FMT_PASS(fmi_trainer_new(&t7, &a, 7));
	FMT_PASS(fmi_trainer_new(&t150, &a, 150));
	fm_rng r;
	fmi_rng_seed(&r, 15, 0);
	float *p = malloc(a.nparams * 4);
	fmi_arch_init_params(&a, p, &r);
	fmi_eval e7, e150;
	FMT_PASS(fmi_evaluate(t7, p, d, NULL, 0, &e7));
	FMT_PASS(fmi_evaluate(t150, p, d, NULL, 0, &e150));
	assert_true(fabs(e7.loss - e150.loss) < 1e-5);
	assert_true(e7.accuracy == e150.accuracy);
	uint32_t *idx = iota(150);
	fmi_local_cfg cfg = { .epochs = 2, .batch = 16,
		.opt = { 0.05f, 0.9f, 1e-4f } };
	float *q = malloc(a.nparams * 4);
	for (int k = 0; k < 2; k++) {
		memcpy(fmi_trainer_params(t1), p, a.nparams * 4);
		fmi_trainer_reset_optimizer(t1);
		fmi_rng_seed(&r, 16, 0);
		fmi_train_stats st;
		FMT_PASS(fmi_train_local(t1, d, idx, 150, &cfg, &r, &st));
		assert_int_equal(st.steps, 2 * 10);
		if (k == 0) {
			memcpy(q, fmi_trainer_params(t1), a.nparams * 4);
		}
	}
	assert_memory_equal(q, fmi_trainer_params(t1), a.nparams * 4);
	assert_memory_not_equal(q, p, a.nparams * 4);
	/* a model for other data is refused */
	fmi_dataset *wrong;
	FMT_PASS(fmi_dataset_new(&wrong, 4, 100, 10));
	fmt_logcap cap = { .n = 0 };
	fm_log_set_sink(fmt_logcap_sink, &cap);
	fmi_eval ev;
	FMT_FAIL(fmi_evaluate(t7, p, wrong, NULL, 0, &ev), FM_EINVAL);
	fm_log_set_sink(NULL, NULL);
	assert_true(fmt_logcap_find(&cap, "FM-MODEL-SHAPE") >= 0);
	fmi_dataset_unref(wrong);
	free(p);
	free(q);
	free(idx);
	fmi_dataset_unref(d);
	fmi_trainer_free(t1);
	fmi_trainer_free(t7);
	fmi_trainer_free(t150);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cnn_arch),
		cmocka_unit_test(test_cnn_init),
		cmocka_unit_test(test_im2col_col2im),
		cmocka_unit_test(test_pool_ties_relu),
		cmocka_unit_test(test_pool_wide_planes),
		cmocka_unit_test(test_gradcheck_small),
		cmocka_unit_test(test_gradcheck_full),
		cmocka_unit_test(test_chunked_batch),
		cmocka_unit_test(test_helper_same_numbers),
		cmocka_unit_test(test_fused_step_matches),
		cmocka_unit_test(test_loss_decreases),
		cmocka_unit_test(test_evaluate_and_determinism),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
