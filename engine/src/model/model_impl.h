/* SPDX-License-Identifier: MIT */
/*
 * model_impl.h: what model.c (dense networks, training loop) and cnn.c
 * (the convolutional network) share. Internal to engine/src/model; the
 * unit tests include it for the convolution kernels.
 */
#ifndef FMI_MODEL_IMPL_H
#define FMI_MODEL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* Elementwise loops run in blocks of FMI_VB with a known trip count, which
 * compilers vectorize even at -O2 (GCC 12's cheap cost model skips loops of
 * unknown length), then a scalar tail. */
#define FMI_VB 8

struct fmi_cnn_buf; /* cnn.c */

/* DP-SGD's scratch (dpsgd.c), allocated on first use for the batch size
 * used (fmi_dp_reserve). */
struct fmi_dp_buf {
	size_t cap;     /* examples the arrays hold */
	double *sq;     /* per-example squared gradient norms [cap] */
	float *fac;     /* per-example clip factors [cap] */
	/* delta[l]: the loss gradient at layer l's output (ReLU-masked),
	 * [cap x widths[l + 1]], kept from pass one for pass two: a dense
	 * network's hidden layers, the CNN's fc1 */
	float *delta[FMI_MAX_LAYERS];
	/* CNN: per-example gradients of conv1 and conv2 (weights and biases,
	 * in parameter order), [cap x slices[4].offset] */
	float *pex;
};

struct fmi_trainer {
	fmi_arch arch;
	size_t max_batch;
	float *params, *grad;
	/* Momentum state, allocated on the first step with momentum > 0. It
	 * holds mu v (the velocity already scaled for the next step), so a
	 * step is v = mom + g + wd p; p -= lr v; mom = mu v: PyTorch's update
	 * in one pass, and gemm can add g into it with beta = 1. */
	float *mom;
	/* act[0]: gathered input batch; act[l]: output of layer l (after
	 * ReLU for hidden layers, and for a CNN's conv layers after the
	 * pooling, NCHW; logits, then their gradient, on top). */
	float *act[FMI_MAX_LAYERS + 1];
	float *dx[2]; /* backward ping-pong, [max_batch x widest hidden] */
	float *bsum;  /* bias-gradient scratch, [widest layer] */
	int32_t *ybuf;
	uint32_t *perm; /* shuffled copy of the shard's indices */
	size_t perm_cap;
	struct fmi_cnn_buf *cnn; /* CNN scratch, NULL for dense networks */
	fmi_grad_hook hook;      /* local training's gradient term, or none */
	struct fmi_dp_buf *dp;   /* DP-SGD scratch, NULL until used */
};

/*
 * Where backward puts each layer's gradient g: dst = beta dst + alpha g.
 * (grad, 1, 0) writes the gradient; (params, -lr, 1 - lr wd) is a plain
 * SGD step; (mom, 1, 1) with sgd set adds g to the momentum state and
 * finishes the momentum step on the layer while it is still in cache.
 * Updating a layer's weights in place is safe because its dX has been
 * computed by then.
 */
typedef struct fmi_grad_sink {
	float *dst;
	float alpha, beta;
	const fmi_sgd *sgd; /* momentum step, or NULL */
} fmi_grad_sink;

/* model.c helpers */
float *fmi_model_falloc(size_t n); /* 64-byte aligned floats, or NULL */
/* y = max(y + bias, 0) over rows of y [b x k]. */
void fmi_model_bias_relu(float *restrict y, const float *restrict bias,
    size_t b, size_t k);
/* dx *= (act > 0): the ReLU derivative, from the post-ReLU activation. */
void fmi_model_relu_mask(float *restrict dx, const float *restrict act,
    size_t n);
/* dst = beta dst + alpha colsum(dy) for dy [b x k]; acc is [k] scratch. */
void fmi_model_bias_grad(float *restrict dst, float *restrict acc,
    const float *restrict dy, size_t b, size_t k, float alpha, float beta);
/* Finishes a sink's momentum step on params[off, off + n) once g is in. */
void fmi_model_sink_finish(fmi_trainer *t, const fmi_grad_sink *s,
    size_t off, size_t n);

/* cnn.c: the trainer's CNN path. */
int fmi_cnn_alloc(fmi_trainer *t); /* t->cnn for t->max_batch */
void fmi_cnn_free(struct fmi_cnn_buf *c); /* accepts NULL */
/* Logits without the top bias into act[nlayers] (xent adds it). */
void fmi_cnn_forward(fmi_trainer *t, const float *p, const float *x,
    size_t b);
/* Backpropagates the logit gradient in act[nlayers] into the sink. */
void fmi_cnn_backward(fmi_trainer *t, const float *x, size_t b,
    const fmi_grad_sink *s);
/* The kernels below run on a second thread (images split in halves) when
 * BLAS has 2+ threads (mode 0, the default), always (1) or never (-1). */
void fmi_cnn_set_helper(fmi_trainer *t, int mode);

/*
 * Convolution kernels over n images of c channels, h x w each, kernel k,
 * padding k/2 (stride 1, 'same'). Images are NCHW: x[i][c][y][x].
 * The column matrix is [c*k*k] x [n*h*w]: row (ci, ky, kx) (PyTorch's
 * weight order), column (i, y, x), cols = x[i][ci][y + ky - k/2][x + kx -
 * k/2] or 0 outside the image. col2im is its adjoint: it adds every
 * column entry back to the pixel it came from (dx is not cleared).
 * pad: scratch of n (h + 2 (k/2)) (w + 2 (k/2)) floats.
 */
void fmi_cnn_im2col(float *restrict cols, const float *restrict x,
    float *restrict pad, size_t n, size_t c, size_t h, size_t w, size_t k);
void fmi_cnn_col2im(float *restrict dx, const float *restrict cols,
    float *restrict pad, size_t n, size_t c, size_t h, size_t w, size_t k);
/*
 * 2x2 max-pool of y [c][n][h][w] (a conv output without its bias) fused
 * with the bias and ReLU: out[i][ci][py][px] (NCHW, h/2 x w/2) =
 * max(0, bias[ci] + max of the window), arg = the window position of the
 * max (0..3, row-major; ties go to the first, NaN wins). unpool is its
 * backward: dy [c][n][h][w] gets dout at arg where out > 0, else 0, and
 * dbias[ci] += the sum of what it routed (sums: [c x n] scratch).
 */
void fmi_cnn_pool(float *restrict out, uint8_t *restrict arg,
    const float *restrict y, const float *restrict bias, size_t n, size_t c,
    size_t h, size_t w);
void fmi_cnn_unpool(float *restrict dy, float *restrict dbias,
    float *restrict sums, const float *restrict dout,
    const float *restrict out, const uint8_t *restrict arg, size_t n,
    size_t c, size_t h, size_t w);

/* ---- DP-SGD (dpsgd.c) ---------------------------------------------------- */

/* Counters over a local training's steps. */
typedef struct fmi_dp_tally {
	uint64_t clipped; /* per-example gradients scaled down */
	double norm_sum;  /* their norms before clipping, summed */
	uint64_t n;       /* examples seen */
} fmi_dp_tally;

/* t->dp for batches up to b (FM_ENOMEM leaves it empty). */
int fmi_dp_reserve(fmi_trainer *t, size_t b);
void fmi_dp_free(struct fmi_dp_buf *d); /* accepts NULL */
/*
 * After a forward pass and the per-example logit gradients in act[top]
 * (xent with scale 1): the per-example gradient norms |g_i| (into
 * norms[b] when not NULL, and tally), then sum_i min(1, clip / |g_i|) g_i
 * into the sink (dst = beta dst + alpha sum). Needs fmi_dp_reserve(t, b).
 */
void fmi_dp_backward(fmi_trainer *t, const float *x, size_t b, double clip,
    const fmi_grad_sink *s, double *norms, fmi_dp_tally *tally);
/* x[0..n) += std * N(0, 1) draws from rng (Box-Muller in float32, two
 * draws per fmi_rng_u64; |N| <= 6.66). */
void fmi_dp_gauss_add(fm_rng *rng, float *x, size_t n, float std);
/* Tests: 1 keeps fmi_dp_gauss_add on SSE2 (the same numbers as AVX2),
 * 0 (the default) lets it use AVX2 where the CPU has it. */
void fmi_dp_gauss_simd(int mode);
/* sq[i] += (|a_i|^2 + 1) |d_i|^2 over the rows of a [b x ka] and d
 * [b x kd]: the squared norm of a dense layer's per-example weight and
 * bias gradient a_i (x) d_i, d_i. */
void fmi_dp_dense_norms(double *restrict sq, const float *restrict a,
    size_t ka, const float *restrict d, size_t kd, size_t b);
/* sq[i] += |x_i|^2 over the first k floats of the rows of x (stride ld). */
void fmi_dp_rows_sq(double *restrict sq, const float *restrict x, size_t b,
    size_t k, size_t ld);
/* Row i of d [b x k] *= fac[i]. */
void fmi_dp_scale_rows(float *restrict d, const float *restrict fac,
    size_t b, size_t k);
/* cnn.c: the CNN's pass one (deltas, per-example conv gradients in
 * dp->pex, squared norms added to sq) and pass two (the clipped sums
 * into the sink). */
void fmi_cnn_dp_norms(fmi_trainer *t, const float *x, size_t b, double *sq);
void fmi_cnn_dp_apply(fmi_trainer *t, size_t b, const float *fac,
    const fmi_grad_sink *s);

#endif /* FMI_MODEL_IMPL_H */
