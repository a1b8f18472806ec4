/* SPDX-License-Identifier: MIT */
/* model.c: dense ReLU networks with softmax cross-entropy, SGD, training
 * (the CNN's layers are in cnn.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model_impl.h"

#if defined(__SSE__)
#include <xmmintrin.h>
#define FMI_MXCSR_FTZ_DAZ 0x8040u
#endif

#define FMI_MAX_WIDTH ((uint32_t)1 << 24)
#define FMI_MAX_PARAMS ((size_t)1 << 31)
#define FMI_ALIGN 64

/* ---- architecture ------------------------------------------------------- */

static int
arch_check(const uint32_t *widths, uint32_t nwidths, fm_error *err)
{
	if (widths == NULL || nwidths < 2 || nwidths > FMI_MAX_LAYERS + 1) {
		return fm_error_set(err, FM_EINVAL, "model: need 2 to %d widths "
		    "(inputs, hidden..., classes), got %u", FMI_MAX_LAYERS + 1,
		    widths ? nwidths : 0);
	}
	size_t np = 0;
	for (uint32_t l = 0; l < nwidths; l++) {
		if (widths[l] == 0 || widths[l] > FMI_MAX_WIDTH) {
			return fm_error_set(err, FM_EINVAL, "model: width %u is "
			    "%u; every width must be in [1, %u]", l + 1,
			    widths[l], FMI_MAX_WIDTH);
		}
		if (l > 0) {
			np += ((size_t)widths[l - 1] + 1) * widths[l];
		}
	}
	if (np > FMI_MAX_PARAMS) {
		return fm_error_set(err, FM_ERANGE, "model: %zu parameters, more "
		    "than the limit of %zu; use narrower layers", np,
		    FMI_MAX_PARAMS);
	}
	return FM_OK;
}

static void
arch_slice(fmi_arch *a, uint32_t l, const char *what, size_t rows,
    size_t cols)
{
	fmi_slice *s = &a->slices[a->nslices++];
	snprintf(s->name, sizeof s->name, "fc%u.%s", l + 1, what);
	s->offset = a->nparams;
	s->rows = rows;
	s->cols = cols;
	a->nparams += rows * cols;
}

int
fmi_arch_mlp(fmi_arch *a, const uint32_t *widths, uint32_t nwidths,
    fm_error *err)
{
	int rv = arch_check(widths, nwidths, err);
	if (rv != FM_OK) {
		return rv;
	}
	memset(a, 0, sizeof *a);
	a->nlayers = nwidths - 1;
	snprintf(a->kind, sizeof a->kind, "%s", a->nlayers == 1 ? "logreg"
	                                                        : "mlp");
	memcpy(a->widths, widths, nwidths * sizeof *widths);
	for (uint32_t l = 0; l < a->nlayers; l++) {
		arch_slice(a, l, "weight", widths[l], widths[l + 1]);
		arch_slice(a, l, "bias", 1, widths[l + 1]);
	}
	return FM_OK;
}

void
fmi_arch_init_params(const fmi_arch *a, float *params, fm_rng *rng)
{
	int cnn = fmi_arch_is_cnn(a);
	for (uint32_t l = 0; l < a->nlayers; l++) {
		/* fan-in: a dense weight is [in x out], a CNN's [out x fan-in] */
		size_t fan_in = cnn ? a->slices[2 * l].cols : a->widths[l];
		double bound = 1.0 / sqrt((double)fan_in);
		for (uint32_t s = 2 * l; s < 2 * l + 2; s++) {
			const fmi_slice *sl = &a->slices[s];
			float *p = params + sl->offset;
			for (size_t i = 0; i < sl->rows * sl->cols; i++) {
				p[i] = (float)((2.0 * fmi_rng_uniform(rng) - 1.0) *
				    bound);
			}
		}
	}
}

/* ---- trainer buffers ------------------------------------------------------ */

float *
fmi_model_falloc(size_t n)
{
	void *p = NULL;
	size_t bytes = (n * sizeof(float) + FMI_ALIGN - 1) / FMI_ALIGN * FMI_ALIGN;
	if (posix_memalign(&p, FMI_ALIGN, bytes ? bytes : FMI_ALIGN) != 0) {
		return NULL;
	}
	return p;
}

/* A zeroed, aligned buffer that costs nothing until it is written:
 * calloc hands out pages fresh from the kernel without touching them
 * (they are zero already), so an idle node's parameter and gradient
 * buffers fault no pages in (a page fault costs 10-60 us on virtual
 * machines). Freed with zfree. */
static float *
zalloc(size_t n)
{
	size_t bytes = n * sizeof(float) + FMI_ALIGN + sizeof(void *);
	unsigned char *raw = calloc(1, bytes);
	if (raw == NULL) {
		return NULL;
	}
	uintptr_t at = ((uintptr_t)raw + sizeof(void *) + FMI_ALIGN - 1) &
	    ~(uintptr_t)(FMI_ALIGN - 1);
	((void **)at)[-1] = raw;
	return (float *)at;
}

static void
zfree(float *p)
{
	if (p != NULL) {
		free(((void **)p)[-1]);
	}
}

static int
trainer_alloc(fmi_trainer *t)
{
	const fmi_arch *a = &t->arch;
	size_t b = t->max_batch, hid = 1, wide = 1;
	for (uint32_t l = 1; l <= a->nlayers; l++) {
		wide = FMI_MAX(wide, (size_t)a->widths[l]);
		hid = l < a->nlayers ? FMI_MAX(hid, (size_t)a->widths[l]) : hid;
	}
	int ok = (t->params = zalloc(a->nparams)) != NULL;
	ok = ok && (t->grad = zalloc(a->nparams)) != NULL;
	for (uint32_t l = 0; ok && l <= a->nlayers; l++) {
		ok = (t->act[l] = fmi_model_falloc(b * a->widths[l])) != NULL;
	}
	ok = ok && (t->dx[0] = fmi_model_falloc(b * hid)) != NULL;
	ok = ok && (t->dx[1] = fmi_model_falloc(b * hid)) != NULL;
	ok = ok && (t->bsum = fmi_model_falloc(wide)) != NULL;
	ok = ok && (t->ybuf = malloc(b * sizeof *t->ybuf)) != NULL;
	if (ok && fmi_arch_is_cnn(a)) {
		ok = fmi_cnn_alloc(t) == FM_OK;
	}
	return ok ? FM_OK : FM_ENOMEM;
}

int
fmi_trainer_new(fmi_trainer **out, const fmi_arch *a, size_t max_batch)
{
	if (a == NULL || a->nlayers == 0 || a->nlayers > FMI_MAX_LAYERS ||
	    max_batch == 0 || max_batch > ((size_t)1 << 20)) {
		return FM_EINVAL;
	}
	fmi_trainer *t = calloc(1, sizeof *t);
	if (t == NULL) {
		return FM_ENOMEM;
	}
	t->arch = *a;
	t->max_batch = max_batch;
	if (trainer_alloc(t) != FM_OK) {
		fmi_trainer_free(t);
		return FM_ENOMEM;
	}
	*out = t; /* params and grad start at zero (zalloc) */
	return FM_OK;
}

void
fmi_trainer_free(fmi_trainer *t)
{
	if (t == NULL) {
		return;
	}
	zfree(t->params);
	zfree(t->grad);
	free(t->mom);
	for (uint32_t l = 0; l <= t->arch.nlayers; l++) {
		free(t->act[l]);
	}
	free(t->dx[0]);
	free(t->dx[1]);
	free(t->bsum);
	free(t->ybuf);
	free(t->perm);
	fmi_cnn_free(t->cnn);
	fmi_dp_free(t->dp);
	free(t);
}

float *
fmi_trainer_params(fmi_trainer *t)
{
	return t->params;
}

float *
fmi_trainer_grad(fmi_trainer *t)
{
	return t->grad;
}

const fmi_arch *
fmi_trainer_arch(const fmi_trainer *t)
{
	return &t->arch;
}

void
fmi_trainer_reset_optimizer(fmi_trainer *t)
{
	if (t->mom != NULL) {
		memset(t->mom, 0, t->arch.nparams * sizeof(float));
	}
}

static int
trainer_need_mom(fmi_trainer *t)
{
	if (t->mom == NULL) {
		t->mom = fmi_model_falloc(t->arch.nparams);
		if (t->mom == NULL) {
			return FM_ENOMEM;
		}
		memset(t->mom, 0, t->arch.nparams * sizeof(float));
	}
	return FM_OK;
}

/* ---- forward -------------------------------------------------------------- */

static inline float
relu(float v)
{
	return v > 0.0f ? v : 0.0f;
}

void
fmi_model_bias_relu(float *restrict y, const float *restrict bias, size_t b, size_t k)
{
	for (size_t i = 0; i < b; i++, y += k) {
		size_t j = 0;
		for (; j + FMI_VB <= k; j += FMI_VB) {
			for (size_t q = j; q < j + FMI_VB; q++) {
				y[q] = relu(y[q] + bias[q]);
			}
		}
		for (; j < k; j++) {
			y[j] = relu(y[j] + bias[j]);
		}
	}
}

/* Hidden layers and the top layer's x W; the top bias is added by xent. */
static void
forward(fmi_trainer *t, const float *p, const float *x, size_t b)
{
	const fmi_arch *a = &t->arch;
	const float *in = x;
	if (t->cnn != NULL) {
		fmi_cnn_forward(t, p, x, b);
		return;
	}
	for (uint32_t l = 0; l < a->nlayers; l++) {
		const fmi_slice *w = &a->slices[2 * l];
		float *out = t->act[l + 1];
		fmi_gemm(0, 0, b, w->cols, w->rows, 1.0f, in, w->rows,
		    p + w->offset, w->cols, 0.0f, out, w->cols);
		if (l + 1 < a->nlayers) {
			fmi_model_bias_relu(out, p + a->slices[2 * l + 1].offset, b, w->cols);
		}
		in = out;
	}
}

/*
 * Adds bias to one row of logits z [k] and returns its cross-entropy
 * log-sum-exp(z) - z[y] (NaN for a label outside [0, k)). With scale != 0,
 * overwrites z with (softmax(z) - onehot(y)) * scale. *hit: argmax == y;
 * *arg: the argmax (the first of ties).
 */
static double
xent_row(float *restrict z, const float *restrict bias, int32_t y, size_t k,
    float scale, int *hit, size_t *arg)
{
	float m = -INFINITY;
	size_t am = 0;
	for (size_t j = 0; j < k; j++) {
		z[j] += bias[j];
		if (z[j] > m) {
			m = z[j];
			am = j;
		}
	}
	int valid = y >= 0 && (size_t)y < k;
	float zy = valid ? z[y] - m : 0.0f;
	float s = 0.0f;
	for (size_t j = 0; j < k; j++) {
		z[j] = expf(z[j] - m);
		s += z[j];
	}
	*hit = valid && am == (size_t)y;
	*arg = am;
	if (scale != 0.0f) {
		float inv = valid ? scale / s : 0.0f;
		for (size_t j = 0; j < k; j++) {
			z[j] *= inv;
		}
		if (valid) {
			z[y] -= scale;
		}
	}
	return valid ? (double)logf(s) - (double)zy : NAN;
}

/* Summed loss over b rows; counts correct predictions into *correct and
 * writes the predicted classes into pred[b] (each when not NULL). */
static double
xent(fmi_trainer *t, const float *p, const int32_t *y, size_t b, float scale,
    size_t *correct, int32_t *pred)
{
	const fmi_arch *a = &t->arch;
	size_t k = a->widths[a->nlayers];
	const float *bias = p + a->slices[2 * a->nlayers - 1].offset;
	float *z = t->act[a->nlayers];
	double loss = 0;
	size_t hits = 0;
	for (size_t i = 0; i < b; i++) {
		int hit;
		size_t arg;
		loss += xent_row(z + i * k, bias, y[i], k, scale, &hit, &arg);
		hits += (size_t)hit;
		if (pred != NULL) {
			pred[i] = (int32_t)arg;
		}
	}
	if (correct != NULL) {
		*correct += hits;
	}
	return loss;
}

/* ---- backward ------------------------------------------------------------- */

void
fmi_model_relu_mask(float *restrict dx, const float *restrict act, size_t n)
{
	size_t i = 0;
	for (; i + FMI_VB <= n; i += FMI_VB) {
		for (size_t q = i; q < i + FMI_VB; q++) {
			dx[q] = act[q] > 0.0f ? dx[q] : 0.0f;
		}
	}
	for (; i < n; i++) {
		dx[i] = act[i] > 0.0f ? dx[i] : 0.0f;
	}
}

/* acc += r, both [k]. */
static void
vadd(float *restrict acc, const float *restrict r, size_t k)
{
	size_t j = 0;
	for (; j + FMI_VB <= k; j += FMI_VB) {
		for (size_t q = j; q < j + FMI_VB; q++) {
			acc[q] += r[q];
		}
	}
	for (; j < k; j++) {
		acc[j] += r[j];
	}
}

void
fmi_model_bias_grad(float *restrict dst, float *restrict acc, const float *restrict dy,
    size_t b, size_t k, float alpha, float beta)
{
	memcpy(acc, dy, k * sizeof *acc);
	for (size_t i = 1; i < b; i++) {
		vadd(acc, dy + i * k, k);
	}
	if (beta == 0.0f) {
		for (size_t j = 0; j < k; j++) {
			dst[j] = alpha * acc[j];
		}
	} else {
		for (size_t j = 0; j < k; j++) {
			dst[j] = beta * dst[j] + alpha * acc[j];
		}
	}
}

/* The rest of a momentum step once gemm added g into m. */
static void
momentum_apply(float *restrict p, float *restrict m, size_t n, float lr,
    float mu, float wd)
{
	size_t i = 0;
	for (; i + FMI_VB <= n; i += FMI_VB) {
		for (size_t q = i; q < i + FMI_VB; q++) {
			float v = m[q] + wd * p[q];
			p[q] -= lr * v;
			m[q] = mu * v;
		}
	}
	for (; i < n; i++) {
		float v = m[i] + wd * p[i];
		p[i] -= lr * v;
		m[i] = mu * v;
	}
}

void
fmi_model_sink_finish(fmi_trainer *t, const fmi_grad_sink *s, size_t off,
    size_t n)
{
	if (s->sgd != NULL) {
		momentum_apply(t->params + off, t->mom + off, n, s->sgd->lr,
		    s->sgd->momentum, s->sgd->weight_decay);
	}
}

/* Backpropagates the logit gradient in act[top] for input x [b x in]. */
static void
backward(fmi_trainer *t, const float *x, size_t b, const fmi_grad_sink *s)
{
	const fmi_arch *a = &t->arch;
	const float *dy = t->act[a->nlayers];
	if (t->cnn != NULL) {
		fmi_cnn_backward(t, x, b, s);
		return;
	}
	for (uint32_t l = a->nlayers; l-- > 0;) {
		const fmi_slice *w = &a->slices[2 * l];
		const float *in = l > 0 ? t->act[l] : x;
		float *dx = t->dx[l & 1];
		if (l > 0) {
			fmi_gemm(0, 1, b, w->rows, w->cols, 1.0f, dy, w->cols,
			    t->params + w->offset, w->cols, 0.0f, dx, w->rows);
			fmi_model_relu_mask(dx, in, b * w->rows);
		}
		size_t boff = a->slices[2 * l + 1].offset;
		fmi_gemm(1, 0, w->rows, w->cols, b, s->alpha, in, w->rows, dy,
		    w->cols, s->beta, s->dst + w->offset, w->cols);
		fmi_model_bias_grad(s->dst + boff, t->bsum, dy, b, w->cols, s->alpha,
		    s->beta);
		fmi_model_sink_finish(t, s, w->offset,
		    boff + w->cols - w->offset);
		dy = dx;
	}
}

double
fmi_trainer_loss_grad(fmi_trainer *t, const float *x, const int32_t *y,
    size_t b)
{
	if (b == 0 || b > t->max_batch) {
		return NAN;
	}
	forward(t, t->params, x, b);
	double loss = xent(t, t->params, y, b, 1.0f / (float)b, NULL, NULL);
	const fmi_grad_sink sink = { t->grad, 1.0f, 0.0f, NULL };
	backward(t, x, b, &sink);
	return loss / (double)b;
}

/* ---- SGD ------------------------------------------------------------------ */

static void
sgd_plain(float *restrict p, const float *restrict g, size_t n, float lr,
    float wd)
{
	size_t i = 0;
	for (; i + FMI_VB <= n; i += FMI_VB) {
		for (size_t q = i; q < i + FMI_VB; q++) {
			p[q] -= lr * (g[q] + wd * p[q]);
		}
	}
	for (; i < n; i++) {
		p[i] -= lr * (g[i] + wd * p[i]);
	}
}

/* PyTorch's SGD, v = mu v + (g + wd p); p -= lr v, with m = mu v kept. */
static void
sgd_momentum(float *restrict p, const float *restrict g, float *restrict m,
    size_t n, float lr, float mu, float wd)
{
	size_t i = 0;
	for (; i + FMI_VB <= n; i += FMI_VB) {
		for (size_t q = i; q < i + FMI_VB; q++) {
			float v = m[q] + (g[q] + wd * p[q]);
			p[q] -= lr * v;
			m[q] = mu * v;
		}
	}
	for (; i < n; i++) {
		float v = m[i] + (g[i] + wd * p[i]);
		p[i] -= lr * v;
		m[i] = mu * v;
	}
}

void
fmi_trainer_sgd_step(fmi_trainer *t, const fmi_sgd *o)
{
	size_t n = t->arch.nparams;
	if (o->momentum > 0.0f && trainer_need_mom(t) != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-MODEL-NOMEM", "no memory for the momentum "
		    "buffer (%zu floats); this step uses plain SGD", n);
	}
	if (o->momentum > 0.0f && t->mom != NULL) {
		sgd_momentum(t->params, t->grad, t->mom, n, o->lr, o->momentum,
		    o->weight_decay);
	} else {
		sgd_plain(t->params, t->grad, n, o->lr, o->weight_decay);
	}
}

/* ---- local training and evaluation ---------------------------------------- */

static int
check_data(const fmi_trainer *t, const fmi_dataset *d, const char *fn)
{
	const fmi_arch *a = &t->arch;
	uint32_t in = a->widths[0], out = a->widths[a->nlayers];
	if (d == NULL || d->dim != in || d->nclasses > out) {
		fm_log(FM_LOG_ERR, "FM-MODEL-SHAPE", "%s: dataset %s has %zu "
		    "features and %u classes but the model takes %u inputs and "
		    "%u classes; size the model to the data", fn,
		    d ? d->name : "(null)", d ? d->dim : 0,
		    d ? d->nclasses : 0, in, out);
		return FM_EINVAL;
	}
	fm_error e;
	int rv = fmi_dataset_load(d, &e); /* a lazy dataset's rows */
	if (rv != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-DATA", "%s: %s", fn, e.msg);
	}
	return rv;
}

/* Copies idx into the trainer's permutation buffer, checking bounds. */
static int
load_perm(fmi_trainer *t, const fmi_dataset *d, const uint32_t *idx, size_t n)
{
	if (n > t->perm_cap) {
		uint32_t *p = realloc(t->perm, n * sizeof *p);
		if (p == NULL) {
			return FM_ENOMEM;
		}
		t->perm = p;
		t->perm_cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		if (idx[i] >= d->n) {
			fm_log(FM_LOG_ERR, "FM-MODEL-INDEX", "sample index %u is "
			    "outside dataset %s of %zu samples", idx[i], d->name,
			    d->n);
			return FM_EINVAL;
		}
		t->perm[i] = idx[i];
	}
	return FM_OK;
}

/* Gathers rows idx[0..b) of d (as floats, whatever d's storage) into
 * act[0] and ybuf. */
static void
gather(fmi_trainer *t, const fmi_dataset *d, const uint32_t *idx, size_t b)
{
	fmi_dataset_gather(d, idx, 0, b, t->act[0]);
	for (size_t i = 0; i < b; i++) {
		t->ybuf[i] = d->y[idx[i]];
	}
}

/*
 * One step on the gathered batch; returns the mean loss. The gradient goes
 * straight into the optimizer state instead of through the grad buffer:
 * mom += g with momentum, else p = (1 - lr wd) p - lr g, both by gemm.
 */
static double
train_step(fmi_trainer *t, size_t b, const fmi_sgd *o)
{
	forward(t, t->params, t->act[0], b);
	double loss = xent(t, t->params, t->ybuf, b, 1.0f / (float)b, NULL,
	    NULL);
	fmi_grad_sink sink = { t->mom, 1.0f, 1.0f, o };
	size_t n = t->arch.nparams;
	/* h is taken at the params the gradient is taken at: with momentum
	 * it joins g in the velocity before backward adds g; without, the
	 * step subtracts lr h after the fused p -= lr (g + wd p). */
	const float *h = t->hook.fn ? t->hook.fn(t->hook.user, t->params, n)
	                            : NULL;
	if (o->momentum <= 0.0f) {
		sink = (fmi_grad_sink){ t->params, -o->lr,
			1.0f - o->lr * o->weight_decay, NULL };
	} else if (h != NULL) {
		fmi_axpy(n, 1.0f, h, t->mom);
	}
	backward(t, t->act[0], b, &sink);
	if (h != NULL && o->momentum <= 0.0f) {
		fmi_axpy(n, -o->lr, h, t->params);
	}
	if (t->hook.step != NULL) {
		t->hook.step(t->hook.user, t->params, n, o->lr);
	}
	return loss / (double)b;
}

/* x += N(0, std^2) from the caller's noise or the trainer's rng. */
static int
dp_noise(const fmi_dpsgd *dp, fm_rng *rng, float *x, size_t n, double std)
{
	if (!(std > 0)) {
		return FM_OK;
	}
	if (dp->noise == NULL) {
		fmi_dp_gauss_add(rng, x, n, (float)std);
		return FM_OK;
	}
	int rv = dp->noise(dp->ud, x, n, std);
	if (rv != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-MODEL-DP", "local training: the DP-SGD "
		    "noise callback failed on %zu floats: %s", n,
		    fm_strerror(rv));
	}
	return rv;
}

/*
 * A DP-SGD step on the gathered batch: per-example logit gradients (xent
 * scale 1), the clipped sum S into the optimizer state as train_step puts
 * the gradient there, with (S + N(0, (z C)^2)) / B as the gradient. The
 * noise is added where the step adds it: into the momentum state before
 * backward (mom += N / B), or into the params after the fused
 * p = (1 - lr wd) p - lr S / B (p -= lr N / B, as a draw of std lr z C / B,
 * after backward so that no layer's delta sees it).
 */
static int
dp_train_step(fmi_trainer *t, size_t b, const fmi_local_cfg *cfg,
    fm_rng *rng, fmi_dp_tally *tally, double *loss_out)
{
	const fmi_sgd *o = &cfg->opt;
	const fmi_dpsgd *dp = &cfg->dp;
	size_t n = t->arch.nparams;
	forward(t, t->params, t->act[0], b);
	*loss_out = xent(t, t->params, t->ybuf, b, 1.0f, NULL, NULL) /
	    (double)b;
	double bdiv = dp->expected_batch > 0 ? dp->expected_batch : (double)b;
	float inv = (float)(1.0 / bdiv);
	double std = dp->noise_multiplier * dp->clip / bdiv;
	const float *h = t->hook.fn ? t->hook.fn(t->hook.user, t->params, n)
	                            : NULL;
	fmi_grad_sink sink = { t->mom, inv, 1.0f, o };
	int rv = FM_OK;
	if (o->momentum <= 0.0f) {
		sink = (fmi_grad_sink){ t->params, -o->lr * inv,
			1.0f - o->lr * o->weight_decay, NULL };
	} else {
		if (h != NULL) {
			fmi_axpy(n, 1.0f, h, t->mom);
		}
		rv = dp_noise(dp, rng, t->mom, n, std);
	}
	if (rv != FM_OK) {
		return rv;
	}
	fmi_dp_backward(t, t->act[0], b, dp->clip, &sink, NULL, tally);
	if (o->momentum <= 0.0f) {
		if (h != NULL) {
			fmi_axpy(n, -o->lr, h, t->params);
		}
		rv = dp_noise(dp, rng, t->params, n, (double)o->lr * std);
	}
	if (rv == FM_OK && t->hook.step != NULL) {
		t->hook.step(t->hook.user, t->params, n, o->lr);
	}
	return rv;
}

double
fmi_trainer_dp_grad(fmi_trainer *t, const float *x, const int32_t *y,
    size_t b, double clip, double *norms)
{
	if (b == 0 || b > t->max_batch || !(clip > 0) ||
	    fmi_dp_reserve(t, b) != FM_OK) {
		return NAN;
	}
	forward(t, t->params, x, b);
	double loss = xent(t, t->params, y, b, 1.0f, NULL, NULL);
	const fmi_grad_sink sink = { t->grad, 1.0f, 0.0f, NULL };
	fmi_dp_backward(t, x, b, clip, &sink, norms, NULL);
	return loss / (double)b;
}

void
fmi_trainer_set_grad_hook(fmi_trainer *t, fmi_grad_hook hook)
{
	t->hook = hook;
}

static int
check_local_cfg(const fmi_trainer *t, const fmi_local_cfg *c)
{
	if (c->batch == 0 || c->batch > t->max_batch || !isfinite(c->opt.lr) ||
	    !isfinite(c->opt.momentum) || !isfinite(c->opt.weight_decay)) {
		fm_log(FM_LOG_ERR, "FM-MODEL-CFG", "local training: batch %u "
		    "must be in [1, %zu] and lr, momentum, weight_decay finite",
		    c->batch, t->max_batch);
		return FM_EINVAL;
	}
	fm_error e;
	if (fmi_dpsgd_check(&c->dp, &e) != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-MODEL-DP", "local training: %s", e.msg);
		return FM_EINVAL;
	}
	return FM_OK;
}

static int
train_epochs(fmi_trainer *t, const fmi_dataset *d, size_t n,
    const fmi_local_cfg *cfg, fm_rng *rng, fmi_train_stats *st)
{
	double sum = 0;
	int dp = cfg->dp.clip > 0;
	fmi_dp_tally tally = { 0, 0.0, 0 };
	int rv = FM_OK;
	for (uint32_t e = 0; rv == FM_OK && e < cfg->epochs; e++) {
		fmi_rng_shuffle_u32(rng, t->perm, n);
		for (size_t s = 0; rv == FM_OK && s < n; s += cfg->batch) {
			size_t b = FMI_MIN((size_t)cfg->batch, n - s);
			gather(t, d, t->perm + s, b);
			double loss;
			if (dp) {
				rv = dp_train_step(t, b, cfg, rng, &tally, &loss);
				if (rv != FM_OK) {
					break;
				}
			} else {
				loss = train_step(t, b, &cfg->opt);
			}
			if (!isfinite(loss)) {
				fm_log(FM_LOG_WARN, "FM-MODEL-DIVERGED", "local "
				    "training diverged at epoch %u (loss %g); "
				    "lower the learning rate", e + 1, loss);
				return FM_ERANGE;
			}
			sum += loss;
			st->steps++;
		}
	}
	st->loss = st->steps ? sum / (double)st->steps : 0.0;
	st->dp_clipped = tally.clipped;
	st->dp_mean_norm = tally.n ? tally.norm_sum / (double)tally.n : 0.0;
	return rv;
}

/*
 * A decaying momentum buffer drifts into subnormal floats, which x86 runs
 * through microcode at a large fraction of the step time. Local training
 * flushes them to zero (as TensorFlow does by default) and restores the
 * caller's floating-point mode on return.
 */
static unsigned
fpu_fast_enter(void)
{
#if defined(__SSE__)
	unsigned saved = _mm_getcsr();
	_mm_setcsr(saved | FMI_MXCSR_FTZ_DAZ);
	return saved;
#else
	return 0;
#endif
}

static void
fpu_fast_leave(unsigned saved)
{
#if defined(__SSE__)
	_mm_setcsr(saved);
#else
	(void)saved;
#endif
}

int
fmi_train_local(fmi_trainer *t, const fmi_dataset *d, const uint32_t *idx,
    size_t n, const fmi_local_cfg *cfg, fm_rng *rng, fmi_train_stats *stats)
{
	fmi_train_stats st = { .examples = n };
	int rv = check_data(t, d, "local training");
	rv = rv ? rv : check_local_cfg(t, cfg);
	rv = rv ? rv : load_perm(t, d, idx, n);
	if (rv == FM_OK && cfg->opt.momentum > 0.0f) {
		rv = trainer_need_mom(t);
	}
	if (rv == FM_OK && cfg->dp.clip > 0 &&
	    (rv = fmi_dp_reserve(t, FMI_MAX(FMI_MIN((size_t)cfg->batch, n),
	    (size_t)1))) != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-MODEL-NOMEM", "local training: no memory "
		    "for DP-SGD's per-example buffers (batch %u)", cfg->batch);
	}
	if (rv == FM_OK) {
		unsigned fpu = fpu_fast_enter();
		rv = train_epochs(t, d, n, cfg, rng, &st);
		fpu_fast_leave(fpu);
	}
	if (stats != NULL) {
		*stats = st;
	}
	return rv;
}

int
fmi_evaluate(fmi_trainer *t, const float *params, const fmi_dataset *d,
    const uint32_t *idx, size_t n, fmi_eval *out)
{
	return fmi_evaluate_pred(t, params, d, idx, n, out, NULL);
}

int
fmi_evaluate_pred(fmi_trainer *t, const float *params, const fmi_dataset *d,
    const uint32_t *idx, size_t n, fmi_eval *out, int32_t *pred)
{
	int rv = check_data(t, d, "evaluation");
	size_t count = idx ? n : (d ? d->n : 0);
	for (size_t i = 0; rv == FM_OK && idx && i < n; i++) {
		rv = idx[i] < d->n ? FM_OK : FM_EINVAL;
	}
	if (rv != FM_OK) {
		return rv;
	}
	double loss = 0;
	size_t correct = 0;
	for (size_t s = 0; s < count; s += t->max_batch) {
		size_t b = FMI_MIN(t->max_batch, count - s);
		const float *x = d->x != NULL ? d->x + s * d->dim : t->act[0];
		const int32_t *y = d->y + s;
		if (idx != NULL) {
			gather(t, d, idx + s, b);
			x = t->act[0];
			y = t->ybuf;
		} else if (d->x == NULL) { /* byte storage: rows as floats */
			fmi_dataset_gather(d, NULL, s, b, t->act[0]);
		}
		forward(t, params, x, b);
		loss += xent(t, params, y, b, 0.0f, &correct,
		    pred ? pred + s : NULL);
	}
	out->n = count;
	out->loss = count ? loss / (double)count : 0.0;
	out->accuracy = count ? (double)correct / (double)count : 0.0;
	return FM_OK;
}
