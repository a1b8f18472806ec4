/* SPDX-License-Identifier: MIT */
/* model_test.c: architecture, gemm, gradients, SGD, training, evaluation. */
#include "fm_test.h"

#include "core/core.h"
#include "model/model.h"

/* ---- helpers -------------------------------------------------------------- */

static fmi_arch
make_arch(const uint32_t *w, uint32_t n)
{
	fmi_arch a;
	fm_error e;
	FMT_PASS(fmi_arch_mlp(&a, w, n, &e));
	return a;
}

static void
fill_normal(float *x, size_t n, fm_rng *r, double sd)
{
	for (size_t i = 0; i < n; i++) {
		x[i] = (float)(sd * fmi_rng_normal(r));
	}
}

/* n samples in dim features labelled argmax(x W) for a random W, keeping
 * only points whose top score beats the rest by margin: separable. */
static fmi_dataset *
make_separable(size_t n, uint32_t dim, uint32_t k, double margin,
    uint64_t seed)
{
	fmi_dataset *d;
	FMT_PASS(fmi_dataset_new(&d, n, dim, k));
	fm_rng r;
	fmi_rng_seed(&r, seed, 0);
	float w[64 * 8];
	fill_normal(w, (size_t)dim * k, &r, 1.0);
	for (size_t i = 0; i < n;) {
		float *x = d->x + i * dim;
		fill_normal(x, dim, &r, 1.0);
		double best = -1e300, second = -1e300;
		int32_t arg = 0;
		for (uint32_t c = 0; c < k; c++) {
			double s = 0;
			for (uint32_t j = 0; j < dim; j++) {
				s += (double)x[j] * w[j * k + c];
			}
			if (s > best) {
				second = best;
				best = s;
				arg = (int32_t)c;
			} else if (s > second) {
				second = s;
			}
		}
		if (best - second >= margin) {
			d->y[i++] = arg;
		}
	}
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

/* ---- architecture and init ------------------------------------------------ */

static void
test_arch(void **state)
{
	(void)state;
	const uint32_t w[] = { 784, 200, 200, 10 };
	fmi_arch a = make_arch(w, 4);
	assert_string_equal(a.kind, "mlp");
	assert_int_equal(a.nlayers, 3);
	assert_int_equal(a.nslices, 6);
	assert_int_equal(a.nparams, 784 * 200 + 200 + 200 * 200 + 200 +
	    200 * 10 + 10);
	assert_string_equal(a.slices[0].name, "fc1.weight");
	assert_int_equal(a.slices[0].rows, 784);
	assert_int_equal(a.slices[0].cols, 200);
	assert_string_equal(a.slices[1].name, "fc1.bias");
	assert_int_equal(a.slices[1].offset, 784 * 200);
	assert_int_equal(a.slices[1].rows, 1);
	assert_string_equal(a.slices[5].name, "fc3.bias");
	assert_int_equal(a.slices[5].offset + a.slices[5].cols, a.nparams);

	const uint32_t lr[] = { 60, 10 };
	fmi_arch b = make_arch(lr, 2);
	assert_string_equal(b.kind, "logreg");
	assert_int_equal(b.nparams, 610);

	fm_error e;
	const uint32_t bad[] = { 5, 0, 3 };
	FMT_FAIL(fmi_arch_mlp(&b, bad, 3, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "width 2"));
	FMT_FAIL(fmi_arch_mlp(&b, w, 1, &e), FM_EINVAL);
	FMT_FAIL(fmi_arch_mlp(&b, NULL, 2, &e), FM_EINVAL);
}

static void
test_init(void **state)
{
	(void)state;
	const uint32_t w[] = { 16, 9, 4 };
	fmi_arch a = make_arch(w, 3);
	float *p = malloc(a.nparams * sizeof *p), *q = malloc(a.nparams * 4);
	fm_rng r1, r2;
	fmi_rng_seed(&r1, 5, 0);
	fmi_rng_seed(&r2, 5, 0);
	fmi_arch_init_params(&a, p, &r1);
	fmi_arch_init_params(&a, q, &r2);
	assert_memory_equal(p, q, a.nparams * sizeof *p);
	for (uint32_t s = 0; s < a.nslices; s++) {
		const fmi_slice *sl = &a.slices[s];
		float bound = 1.0f / sqrtf((float)w[s / 2]) + 1e-6f;
		float mx = 0;
		for (size_t i = 0; i < sl->rows * sl->cols; i++) {
			mx = fmaxf(mx, fabsf(p[sl->offset + i]));
		}
		assert_true(mx <= bound);
		assert_true(mx > 0.5f * bound); /* not degenerate */
	}
	free(p);
	free(q);
}

/* ---- gemm ----------------------------------------------------------------- */

static void
test_gemm_matches_ref(void **state)
{
	(void)state;
	const size_t dims[][3] = { { 1, 1, 1 }, { 7, 5, 3 }, { 33, 17, 65 },
		{ 32, 200, 784 } };
	fm_rng r;
	fmi_rng_seed(&r, 11, 0);
	for (size_t d = 0; d < FMI_ARRAY_LEN(dims); d++) {
		size_t m = dims[d][0], n = dims[d][1], k = dims[d][2];
		float *a = malloc(m * k * 4), *b = malloc(k * n * 4);
		float *c1 = malloc(m * n * 4), *c2 = malloc(m * n * 4);
		fill_normal(a, m * k, &r, 1.0);
		fill_normal(b, k * n, &r, 1.0);
		for (int ta = 0; ta < 2; ta++) {
			for (int tb = 0; tb < 2; tb++) {
				fill_normal(c1, m * n, &r, 1.0);
				memcpy(c2, c1, m * n * 4);
				size_t lda = ta ? m : k, ldb = tb ? k : n;
				fmi_gemm(ta, tb, m, n, k, 0.7f, a, lda, b, ldb, 0.3f,
				    c1, n);
				fmi_gemm_ref(ta, tb, m, n, k, 0.7f, a, lda, b, ldb,
				    0.3f, c2, n);
				FMT_NEAR(c1, c2, m * n, 1e-4 * sqrt((double)k));
			}
		}
		free(a);
		free(b);
		free(c1);
		free(c2);
	}
}

/* ---- gradient check ------------------------------------------------------- */

/* Double-precision reference: mean softmax cross-entropy of the network. */
static double
ref_loss(const fmi_arch *a, const double *p, const float *x,
    const int32_t *y, size_t b)
{
	double loss = 0;
	for (size_t i = 0; i < b; i++) {
		double cur[64] = { 0 }, nxt[64] = { 0 };
		for (uint32_t j = 0; j < a->widths[0]; j++) {
			cur[j] = x[i * a->widths[0] + j];
		}
		for (uint32_t l = 0; l < a->nlayers; l++) {
			uint32_t in = a->widths[l], out = a->widths[l + 1];
			const double *w = p + a->slices[2 * l].offset;
			const double *bias = p + a->slices[2 * l + 1].offset;
			for (uint32_t o = 0; o < out; o++) {
				double s = bias[o];
				for (uint32_t q = 0; q < in; q++) {
					s += cur[q] * w[q * out + o];
				}
				nxt[o] = (l + 1 < a->nlayers && s < 0) ? 0 : s;
			}
			memcpy(cur, nxt, out * sizeof *cur);
		}
		uint32_t k = a->widths[a->nlayers];
		double m = cur[0], se = 0;
		for (uint32_t c = 1; c < k; c++) {
			m = fmax(m, cur[c]);
		}
		for (uint32_t c = 0; c < k; c++) {
			se += exp(cur[c] - m);
		}
		loss += m + log(se) - cur[y[i]];
	}
	return loss / (double)b;
}

static void
gradcheck(const uint32_t *w, uint32_t nw, size_t b, uint64_t seed)
{
	fmi_arch a = make_arch(w, nw);
	fmi_trainer *t;
	FMT_PASS(fmi_trainer_new(&t, &a, b));
	fm_rng r;
	fmi_rng_seed(&r, seed, 0);
	float *p = fmi_trainer_params(t);
	fill_normal(p, a.nparams, &r, 0.7); /* larger than init: real signal */
	float *x = malloc(b * w[0] * sizeof *x);
	int32_t *y = malloc(b * sizeof *y);
	fill_normal(x, b * w[0], &r, 1.0);
	for (size_t i = 0; i < b; i++) {
		y[i] = (int32_t)fmi_rng_below(&r, w[nw - 1]);
	}
	double loss = fmi_trainer_loss_grad(t, x, y, b);
	const float *g = fmi_trainer_grad(t);
	double *pd = malloc(a.nparams * sizeof *pd);
	for (size_t i = 0; i < a.nparams; i++) {
		pd[i] = p[i];
	}
	assert_true(fabs(loss - ref_loss(&a, pd, x, y, b)) < 1e-5);
	const double eps = 1e-5;
	double worst = 0;
	for (size_t i = 0; i < a.nparams; i++) {
		pd[i] = p[i] + eps;
		double lp = ref_loss(&a, pd, x, y, b);
		pd[i] = p[i] - eps;
		double lm = ref_loss(&a, pd, x, y, b);
		pd[i] = p[i];
		double num = (lp - lm) / (2 * eps);
		double rel = fabs(num - g[i]) /
		    fmax(fmax(fabs(num), fabs(g[i])), 1e-4);
		if (rel >= 1e-3) {
			print_error("param %zu: analytic %g numeric %g\n", i,
			    (double)g[i], num);
		}
		worst = fmax(worst, rel);
	}
	print_message("gradcheck %u layers: worst relative error %.2e\n", nw - 1, worst);
	assert_true(worst < 1e-3); /* float32 analytic vs double numeric */
	free(pd);
	free(x);
	free(y);
	fmi_trainer_free(t);
}

static void
test_gradcheck_mlp(void **state)
{
	(void)state;
	const uint32_t w[] = { 5, 4, 3, 3 };
	gradcheck(w, 4, 7, 1);
	gradcheck(w, 4, 1, 2);
}

static void
test_gradcheck_logreg(void **state)
{
	(void)state;
	const uint32_t w[] = { 5, 3 };
	gradcheck(w, 2, 6, 3);
}

/* ---- SGD ------------------------------------------------------------------ */

static fmi_trainer *
tiny_trainer(void)
{
	const uint32_t w[] = { 1, 1 }; /* params: w, b */
	fmi_arch a = make_arch(w, 2);
	fmi_trainer *t;
	FMT_PASS(fmi_trainer_new(&t, &a, 1));
	return t;
}

static void
set2(float *v, float a, float b)
{
	v[0] = a;
	v[1] = b;
}

static void
test_sgd_momentum_two_steps(void **state)
{
	(void)state;
	fmi_trainer *t = tiny_trainer();
	float *p = fmi_trainer_params(t), *g = fmi_trainer_grad(t);
	const fmi_sgd o = { 0.1f, 0.9f, 0.01f };
	set2(p, 1.0f, -2.0f);
	set2(g, 0.5f, 0.25f);
	/* g' = g + wd p; v = mu v + g'; p -= lr v. Step 1: v = g'. */
	fmi_trainer_sgd_step(t, &o);
	float want1[] = { 0.949f, -2.023f };
	FMT_NEAR(p, want1, 2, 1e-6);
	/* Step 2: g' = (0.50949, 0.22977); v = (0.96849, 0.43677). */
	fmi_trainer_sgd_step(t, &o);
	float want2[] = { 0.852151f, -2.066677f };
	FMT_NEAR(p, want2, 2, 1e-6);
	/* A reset forgets the velocity: the next step is a first step. */
	fmi_trainer_reset_optimizer(t);
	set2(p, 1.0f, -2.0f);
	fmi_trainer_sgd_step(t, &o);
	FMT_NEAR(p, want1, 2, 1e-6);
	fmi_trainer_free(t);
}

static void
test_sgd_plain(void **state)
{
	(void)state;
	fmi_trainer *t = tiny_trainer();
	float *p = fmi_trainer_params(t), *g = fmi_trainer_grad(t);
	const fmi_sgd o = { 0.5f, 0.0f, 0.1f };
	set2(p, 2.0f, 1.0f);
	set2(g, 1.0f, -1.0f);
	fmi_trainer_sgd_step(t, &o); /* p -= 0.5 (g + 0.1 p) */
	float want[] = { 1.4f, 1.45f };
	FMT_NEAR(p, want, 2, 1e-6);
	fmi_trainer_free(t);
}

/* A gradient hook like FedProx's: h = mu (w - w0). */
typedef struct prox_hook {
	const float *w0;
	float *h;
	float mu;
	int calls;
} prox_hook;

static const float *
prox_fn(void *user, const float *w, size_t n)
{
	prox_hook *p = user;
	for (size_t i = 0; i < n; i++) {
		p->h[i] = p->mu * (w[i] - p->w0[i]);
	}
	p->calls++;
	return p->h;
}

/* train_local's fused steps (gradient straight into params or velocity)
 * equal loss_grad + sgd_step, with and without momentum, and with a
 * gradient hook (mu != 0) equal a step on g + mu (w - w0). */
static void
fused_matches(const fmi_sgd *opt, float mu)
{
	const uint32_t w[] = { 6, 5, 4, 3 };
	fmi_arch a = make_arch(w, 4);
	fmi_dataset *d = make_separable(8, 6, 3, 0.0, 4);
	fmi_trainer *t1, *t2;
	FMT_PASS(fmi_trainer_new(&t1, &a, 8));
	FMT_PASS(fmi_trainer_new(&t2, &a, 8));
	fm_rng r;
	fmi_rng_seed(&r, 9, 0);
	fmi_arch_init_params(&a, fmi_trainer_params(t1), &r);
	memcpy(fmi_trainer_params(t2), fmi_trainer_params(t1),
	    a.nparams * sizeof(float));
	float *w0 = malloc(a.nparams * sizeof(float));
	float *h = malloc(a.nparams * sizeof(float));
	assert_non_null(w0);
	assert_non_null(h);
	for (size_t i = 0; i < a.nparams; i++) { /* away from the start */
		w0[i] = fmi_trainer_params(t1)[i] + 0.5f * (float)(i % 7) - 1.5f;
	}
	prox_hook ph = { w0, h, mu, 0 };
	if (mu != 0.0f) {
		fmi_trainer_set_grad_hook(t1, (fmi_grad_hook){ prox_fn, NULL, &ph });
	}
	uint32_t *idx = iota(8);
	fmi_local_cfg cfg = { .epochs = 2, .batch = 8,
		.opt = *opt }; /* two steps: velocity matters */
	fmi_train_stats st;
	FMT_PASS(fmi_train_local(t1, d, idx, 8, &cfg, &r, &st));
	assert_int_equal(st.steps, 2);
	assert_int_equal(st.examples, 8);
	assert_int_equal(ph.calls, mu != 0.0f ? 2 : 0);
	double loss = 0;
	for (int s = 0; s < 2; s++) {
		loss += fmi_trainer_loss_grad(t2, d->x, d->y, 8) / 2;
		float *p = fmi_trainer_params(t2), *g = fmi_trainer_grad(t2);
		for (size_t i = 0; i < a.nparams; i++) {
			g[i] += mu * (p[i] - w0[i]);
		}
		fmi_trainer_sgd_step(t2, opt);
	}
	assert_true(fabs(loss - st.loss) < 1e-5);
	FMT_NEAR(fmi_trainer_params(t1), fmi_trainer_params(t2), a.nparams,
	    1e-5);
	free(w0);
	free(h);
	free(idx);
	fmi_dataset_unref(d);
	fmi_trainer_free(t1);
	fmi_trainer_free(t2);
}

/* A step hook moves the params after each step: with plain SGD, w -= lr h
 * after the step equals h added to the gradient. */
static void
const_step(void *user, float *w, size_t n, float lr)
{
	prox_hook *p = user;
	for (size_t i = 0; i < n; i++) {
		w[i] -= lr * p->h[i];
	}
	p->calls++;
}

static const float *
const_grad(void *user, const float *w, size_t n)
{
	prox_hook *p = user;
	(void)w;
	(void)n;
	p->calls++;
	return p->h;
}

static void
test_step_hook(void **state)
{
	(void)state;
	const uint32_t w[] = { 6, 5, 4, 3 };
	fmi_arch a = make_arch(w, 4);
	fmi_dataset *d = make_separable(24, 6, 3, 0.0, 4);
	fmi_trainer *t[3];
	float *h = malloc(a.nparams * sizeof(float));
	assert_non_null(h);
	for (size_t i = 0; i < a.nparams; i++) {
		h[i] = 0.1f * (float)((int)(i % 5) - 2);
	}
	prox_hook ph[2] = { { NULL, h, 0, 0 }, { NULL, h, 0, 0 } };
	fm_rng r;
	uint32_t *idx = iota(24);
	fmi_local_cfg cfg = { .epochs = 2, .batch = 8,
		.opt = { 0.2f, 0.0f, 0.0f } };
	fmi_train_stats st;
	for (int k = 0; k < 3; k++) {
		FMT_PASS(fmi_trainer_new(&t[k], &a, 8));
		fmi_rng_seed(&r, 5, 0);
		fmi_arch_init_params(&a, fmi_trainer_params(t[k]), &r);
		if (k < 2) {
			fmi_trainer_set_grad_hook(t[k], k == 0
			    ? (fmi_grad_hook){ const_grad, NULL, &ph[0] }
			    : (fmi_grad_hook){ NULL, const_step, &ph[1] });
		}
		fmi_rng_seed(&r, 6, 0);
		FMT_PASS(fmi_train_local(t[k], d, idx, 24, &cfg, &r, &st));
	}
	assert_int_equal(ph[0].calls, 6); /* 2 epochs x 3 batches */
	assert_int_equal(ph[1].calls, 6);
	FMT_NEAR(fmi_trainer_params(t[0]), fmi_trainer_params(t[1]), a.nparams,
	    1e-5);
	/* and the hooks did move the model: */
	double diff = 0;
	for (size_t i = 0; i < a.nparams; i++) {
		diff += fabs(fmi_trainer_params(t[0])[i] -
		    fmi_trainer_params(t[2])[i]);
	}
	assert_true(diff > 0.1);
	for (int k = 0; k < 3; k++) {
		fmi_trainer_free(t[k]);
	}
	free(h);
	free(idx);
	fmi_dataset_unref(d);
}

static void
test_fused_step_matches(void **state)
{
	(void)state;
	const fmi_sgd plain = { 0.3f, 0.0f, 0.05f }, mom = { 0.3f, 0.9f, 0.05f };
	fused_matches(&plain, 0.0f);
	fused_matches(&mom, 0.0f);
	fused_matches(&plain, 0.7f); /* with a gradient hook */
	fused_matches(&mom, 0.7f);
}

/* ---- training ------------------------------------------------------------- */

static double
train_and_eval(const uint32_t *w, uint32_t nw, fmi_dataset *d,
    const fmi_local_cfg *cfg, uint64_t seed, float *out_params)
{
	fmi_arch a = make_arch(w, nw);
	fmi_trainer *t;
	FMT_PASS(fmi_trainer_new(&t, &a, cfg->batch));
	fm_rng r;
	fmi_rng_seed(&r, seed, 0);
	fmi_arch_init_params(&a, fmi_trainer_params(t), &r);
	uint32_t *idx = iota(d->n);
	fmi_train_stats st;
	FMT_PASS(fmi_train_local(t, d, idx, d->n, cfg, &r, &st));
	assert_int_equal(st.steps,
	    cfg->epochs * ((d->n + cfg->batch - 1) / cfg->batch));
	assert_true(isfinite(st.loss));
	fmi_eval ev;
	FMT_PASS(fmi_evaluate(t, fmi_trainer_params(t), d, NULL, 0, &ev));
	assert_int_equal(ev.n, d->n);
	if (out_params != NULL) {
		memcpy(out_params, fmi_trainer_params(t), a.nparams * 4);
	}
	free(idx);
	fmi_trainer_free(t);
	return ev.accuracy;
}

static void
test_logreg_separable(void **state)
{
	(void)state;
	fmi_dataset *d = make_separable(600, 10, 3, 0.5, 21);
	const uint32_t w[] = { 10, 3 };
	fmi_local_cfg cfg = { .epochs = 20, .batch = 16,
		.opt = { 0.5f, 0.0f, 0.0f } };
	double acc = train_and_eval(w, 2, d, &cfg, 1, NULL);
	print_message("logreg accuracy %.3f\n", acc);
	assert_true(acc > 0.95);
	fmi_dataset_unref(d);
}

static void
test_mlp_momentum_learns(void **state)
{
	(void)state;
	fmi_dataset *d = make_separable(500, 8, 4, 0.3, 22);
	const uint32_t w[] = { 8, 16, 4 };
	fmi_local_cfg cfg = { .epochs = 20, .batch = 10,
		.opt = { 0.05f, 0.9f, 1e-4f } };
	double acc = train_and_eval(w, 3, d, &cfg, 2, NULL);
	print_message("mlp accuracy %.3f\n", acc);
	assert_true(acc > 0.9);
	fmi_dataset_unref(d);
}

static void
test_determinism(void **state)
{
	(void)state;
	fmi_dataset *d = make_separable(203, 8, 3, 0.0, 23);
	const uint32_t w[] = { 8, 12, 7, 3 };
	fmi_arch a = make_arch(w, 4);
	float *p1 = malloc(a.nparams * 4), *p2 = malloc(a.nparams * 4);
	float *p3 = malloc(a.nparams * 4);
	for (int mom = 0; mom < 2; mom++) {
		fmi_local_cfg cfg = { .epochs = 3, .batch = 32,
		.opt = { 0.1f, mom ? 0.9f : 0.0f, 1e-3f } };
		train_and_eval(w, 4, d, &cfg, 77, p1);
		train_and_eval(w, 4, d, &cfg, 77, p2);
		train_and_eval(w, 4, d, &cfg, 78, p3);
		assert_memory_equal(p1, p2, a.nparams * 4);
		assert_memory_not_equal(p1, p3, a.nparams * 4);
	}
	free(p1);
	free(p2);
	free(p3);
	fmi_dataset_unref(d);
}

/* ---- evaluation and errors ------------------------------------------------ */

static void
test_evaluate(void **state)
{
	(void)state;
	fmi_dataset *d = make_separable(50, 4, 3, 0.0, 24);
	const uint32_t w[] = { 4, 6, 3 };
	fmi_arch a = make_arch(w, 3);
	fmi_trainer *big, *small;
	FMT_PASS(fmi_trainer_new(&big, &a, 50));
	FMT_PASS(fmi_trainer_new(&small, &a, 7)); /* several batches */
	fm_rng r;
	fmi_rng_seed(&r, 3, 0);
	float *p = malloc(a.nparams * 4);
	fmi_arch_init_params(&a, p, &r);
	memcpy(fmi_trainer_params(big), p, a.nparams * 4);
	double loss = fmi_trainer_loss_grad(big, d->x, d->y, 50);
	fmi_eval e1, e2;
	FMT_PASS(fmi_evaluate(small, p, d, NULL, 0, &e1));
	assert_true(fabs(e1.loss - loss) < 1e-5);
	assert_true(e1.accuracy >= 0 && e1.accuracy <= 1);
	/* idx: the same samples reversed give the same numbers. */
	uint32_t idx[50];
	for (uint32_t i = 0; i < 50; i++) {
		idx[i] = 49 - i;
	}
	FMT_PASS(fmi_evaluate(small, p, d, idx, 50, &e2));
	assert_true(fabs(e2.loss - e1.loss) < 1e-5);
	assert_true(e2.accuracy == e1.accuracy);
	assert_int_equal(e2.n, 50);
	FMT_PASS(fmi_evaluate(small, p, d, idx, 0, &e2));
	assert_int_equal(e2.n, 0);
	free(p);
	fmi_dataset_unref(d);
	fmi_trainer_free(big);
	fmi_trainer_free(small);
}

/* Byte storage (IDX images) trains and evaluates exactly as the same
 * features stored as floats: bit for bit. */
static void
test_byte_storage_same(void **state)
{
	(void)state;
	const size_t n = 90, dim = 16;
	fmi_dataset *f, *b;
	uint8_t *x8;
	FMT_PASS(fmi_dataset_new(&f, n, dim, 4));
	FMT_PASS(fmi_dataset_new_u8(&b, &x8, n, dim, 4, 255.0f));
	fm_rng r;
	fmi_rng_seed(&r, 77, 0);
	for (size_t i = 0; i < n * dim; i++) {
		x8[i] = (uint8_t)fmi_rng_below(&r, 256);
		f->x[i] = (float)x8[i] / 255.0f; /* what the float loader did */
	}
	for (size_t i = 0; i < n; i++) {
		f->y[i] = b->y[i] = (int32_t)fmi_rng_below(&r, 4);
	}
	const uint32_t w[] = { 16, 12, 4 };
	fmi_arch a = make_arch(w, 3);
	fmi_local_cfg cfg = { .epochs = 2, .batch = 8,
		.opt = { 0.1f, 0.5f, 0.0f } };
	float *p[2];
	fmi_eval ev[2][2];
	uint32_t *idx = iota(n);
	for (int k = 0; k < 2; k++) {
		fmi_dataset *d = k ? b : f;
		fmi_trainer *t;
		FMT_PASS(fmi_trainer_new(&t, &a, 8));
		fmi_rng_seed(&r, 5, 0);
		fmi_arch_init_params(&a, fmi_trainer_params(t), &r);
		fmi_train_stats st;
		FMT_PASS(fmi_train_local(t, d, idx + 10, 70, &cfg, &r, &st));
		p[k] = malloc(a.nparams * sizeof(float));
		memcpy(p[k], fmi_trainer_params(t), a.nparams * sizeof(float));
		FMT_PASS(fmi_evaluate(t, p[k], d, NULL, 0, &ev[k][0]));
		FMT_PASS(fmi_evaluate(t, p[k], d, idx + 3, 50, &ev[k][1]));
		fmi_trainer_free(t);
	}
	assert_memory_equal(p[0], p[1], a.nparams * sizeof(float));
	for (int j = 0; j < 2; j++) {
		assert_true(ev[0][j].loss == ev[1][j].loss);
		assert_true(ev[0][j].accuracy == ev[1][j].accuracy);
	}
	free(p[0]);
	free(p[1]);
	free(idx);
	fmi_dataset_unref(f);
	fmi_dataset_unref(b);
}

static void
test_errors(void **state)
{
	(void)state;
	fmi_dataset *d = make_separable(20, 4, 3, 0.0, 25);
	const uint32_t w[] = { 4, 3 }, w5[] = { 5, 3 };
	fmi_arch a = make_arch(w, 2), a5 = make_arch(w5, 2);
	fmi_trainer *t, *t5;
	FMT_FAIL(fmi_trainer_new(&t, &a, 0), FM_EINVAL);
	FMT_PASS(fmi_trainer_new(&t, &a, 8));
	FMT_PASS(fmi_trainer_new(&t5, &a5, 8));
	uint32_t *idx = iota(20);
	fmt_logcap cap = { .n = 0 };
	fm_log_set_sink(fmt_logcap_sink, &cap);
	fm_rng r;
	fmi_rng_seed(&r, 1, 0);
	fmi_train_stats st;
	fmi_local_cfg cfg = { .epochs = 1, .batch = 16,
		.opt = { 0.1f, 0.0f, 0.0f } };
	FMT_FAIL(fmi_train_local(t, d, idx, 20, &cfg, &r, &st), FM_EINVAL);
	cfg.batch = 8;
	FMT_FAIL(fmi_train_local(t5, d, idx, 20, &cfg, &r, &st), FM_EINVAL);
	fmi_eval ev;
	FMT_FAIL(fmi_evaluate(t5, fmi_trainer_params(t5), d, NULL, 0, &ev),
	    FM_EINVAL);
	idx[3] = 20;
	FMT_FAIL(fmi_train_local(t, d, idx, 20, &cfg, &r, &st), FM_EINVAL);
	idx[3] = 3;
	FMT_PASS(fmi_train_local(t, d, idx, 0, &cfg, &r, &st)); /* empty */
	assert_int_equal(st.steps, 0);
	fmi_trainer_params(t)[0] = NAN; /* a poisoned model */
	FMT_FAIL(fmi_train_local(t, d, idx, 20, &cfg, &r, &st), FM_ERANGE);
	fm_log_set_sink(NULL, NULL);
	assert_true(fmt_logcap_find(&cap, "FM-MODEL-CFG") >= 0);
	assert_true(fmt_logcap_find(&cap, "FM-MODEL-SHAPE") >= 0);
	assert_true(fmt_logcap_find(&cap, "FM-MODEL-INDEX") >= 0);
	int i = fmt_logcap_find(&cap, "FM-MODEL-DIVERGED");
	assert_true(i >= 0);
	assert_non_null(strstr(cap.lines[i], "learning rate"));
	free(idx);
	fmi_dataset_unref(d);
	fmi_trainer_free(t);
	fmi_trainer_free(t5);
	fmi_trainer_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arch),
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_gemm_matches_ref),
		cmocka_unit_test(test_gradcheck_mlp),
		cmocka_unit_test(test_gradcheck_logreg),
		cmocka_unit_test(test_sgd_momentum_two_steps),
		cmocka_unit_test(test_sgd_plain),
		cmocka_unit_test(test_fused_step_matches),
		cmocka_unit_test(test_logreg_separable),
		cmocka_unit_test(test_mlp_momentum_learns),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_step_hook),
		cmocka_unit_test(test_evaluate),
		cmocka_unit_test(test_byte_storage_same),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
