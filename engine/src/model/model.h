/* SPDX-License-Identifier: MIT */
/*
 * model.h: models (dense networks, logistic regression, a CNN) as one
 * contiguous float32 parameter block with named slices; forward/backward
 * through OpenBLAS sgemm (convolutions as im2col + sgemm); SGD; evaluation.
 *
 * An architecture (fmi_arch) is a small value shared by every node; it owns
 * no buffers. A trainer holds the working buffers for one model at a time
 * (parameters, gradients, optional momentum, activations for one batch), so
 * a simulation needs one trainer per worker thread, not one per client.
 */
#ifndef FMI_MODEL_H
#define FMI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"
#include "fedmesh/plugin.h"
#include "data/data.h"

#define FMI_MAX_LAYERS 16 /* dense layers (a CNN has 4 layers) */

/* A named slice of the parameter block: a [rows x cols] matrix or a
 * [cols] vector (rows = 1). */
typedef struct fmi_slice {
	char name[24]; /* "fc1.weight", "fc1.bias", ... */
	size_t offset; /* in floats */
	size_t rows, cols;
} fmi_slice;

/*
 * The CNN of McMahan et al. 2017 for side x side one-channel images:
 * conv KxK ch[0] ('same' padding K/2) -> ReLU -> max-pool 2 -> conv KxK
 * ch[1] -> ReLU -> max-pool 2 -> dense hidden -> ReLU -> dense classes.
 * side must be a multiple of 4, kernel odd.
 */
typedef struct fmi_cnn_shape {
	uint32_t side;   /* 28 */
	uint32_t kernel; /* 5 */
	uint32_t ch[2];  /* 32, 64 */
	uint32_t hidden; /* 512 */
	uint32_t classes; /* 10 */
} fmi_cnn_shape;

/*
 * kind "mlp" / "logreg": dense network, widths[0] inputs, widths[nlayers]
 * outputs, ReLU between layers, softmax cross-entropy on top. nlayers = 1
 * is multinomial logistic regression. Layer l has weight
 * [widths[l] x widths[l+1]] (so Y = X W + b) followed by bias [widths[l+1]].
 *
 * kind "cnn": the shape is in cnn; nlayers = 4 (conv1, conv2, fc1, fc2)
 * and widths[l] is the size of one sample's activation after layer l:
 * inputs side^2, ch[0] (side/2)^2, ch[1] (side/4)^2, hidden, classes, so
 * widths[0] and widths[nlayers] are inputs and outputs as for a dense
 * network. Every layout is PyTorch's: activations NCHW, conv weight
 * [out][in][kh][kw], dense weight [out][in] (Y = X W^T + b), and the slices
 * conv1.weight, conv1.bias, conv2.weight, conv2.bias, fc1.weight, fc1.bias,
 * fc2.weight, fc2.bias in that order: the parameter block is
 * torch.cat([p.flatten() for p in net.parameters()]) of the same network.
 * A weight slice's rows are its outputs and cols its fan-in (in*kh*kw).
 */
typedef struct fmi_arch {
	char kind[16]; /* "mlp", "logreg" or "cnn" */
	uint32_t nlayers;
	uint32_t widths[FMI_MAX_LAYERS + 1];
	size_t nparams;
	uint32_t nslices;
	fmi_slice slices[2 * FMI_MAX_LAYERS];
	fmi_cnn_shape cnn; /* kind "cnn" only; zero otherwise */
} fmi_arch;

/* widths has nwidths >= 2 entries, each >= 1. */
int fmi_arch_mlp(fmi_arch *a, const uint32_t *widths, uint32_t nwidths,
    fm_error *err);
/* The CNN; McMahan et al.'s is { 28, 5, { 32, 64 }, 512, 10 } with
 * 1,663,370 parameters. */
int fmi_arch_cnn(fmi_arch *a, const fmi_cnn_shape *s, fm_error *err);
/* True for an architecture made by fmi_arch_cnn. */
int fmi_arch_is_cnn(const fmi_arch *a);
/* PyTorch's default init for nn.Linear and nn.Conv2d (kaiming uniform with
 * a = sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases,
 * fan_in = in (dense) or in*kh*kw (conv). Deterministic for a given rng
 * state. */
void fmi_arch_init_params(const fmi_arch *a, float *params, fm_rng *rng);

typedef struct fmi_sgd {
	float lr;
	float momentum;     /* 0: plain SGD, no velocity buffer */
	float weight_decay; /* L2, added to the gradient (PyTorch semantics) */
} fmi_sgd;

typedef struct fmi_trainer fmi_trainer;

/* Buffers for batches up to max_batch. */
int fmi_trainer_new(fmi_trainer **out, const fmi_arch *a, size_t max_batch);
void fmi_trainer_free(fmi_trainer *t); /* accepts NULL */
float *fmi_trainer_params(fmi_trainer *t); /* [nparams] */
float *fmi_trainer_grad(fmi_trainer *t);   /* [nparams] */
const fmi_arch *fmi_trainer_arch(const fmi_trainer *t);
/* Zeroes the momentum buffer (call when a new local training starts). */
void fmi_trainer_reset_optimizer(fmi_trainer *t);

/* Forward and backward on one batch x [b x in], y [b]: writes the gradient
 * of the mean cross-entropy into grad (overwrites) and returns the mean loss.
 * b <= max_batch (else NaN); a label outside [0, classes) makes it NaN. */
double fmi_trainer_loss_grad(fmi_trainer *t, const float *x, const int32_t *y,
    size_t b);
/* One SGD step with the current grad. */
void fmi_trainer_sgd_step(fmi_trainer *t, const fmi_sgd *opt);

/*
 * Local training's hooks, each optional. fn(user, w, n) returns a term
 * h[n] added to every minibatch gradient at the current params w (or NULL
 * for none this step): the step uses g + h, and weight decay and momentum
 * apply to the sum (FedProx's mu (w - w0)). step(user, w, n, lr) runs
 * after every step and may move w directly (SCAFFOLD's w -= lr (c - c_i)).
 * Set with fmi_trainer_set_grad_hook (all NULL clears); it stays until
 * cleared.
 */
typedef struct fmi_grad_hook {
	const float *(*fn)(void *user, const float *w, size_t n);
	void (*step)(void *user, float *w, size_t n, float lr);
	void *user;
} fmi_grad_hook;
void fmi_trainer_set_grad_hook(fmi_trainer *t, fmi_grad_hook hook);

/*
 * Example-level DP-SGD (Abadi et al. 2016) in local training. Every
 * step clips each example's gradient (over all parameters, flat) to L2
 * norm clip, sums the clipped gradients, adds N(0, (noise_multiplier *
 * clip)^2) to every coordinate of the sum once per batch and divides by
 * the batch size (expected_batch when > 0, for Poisson-sampled batches);
 * the optimizer (SGD, weight decay, momentum, the grad hook) then runs on
 * that gradient as usual. Zero-initialised = off. noise == NULL draws the
 * noise from the rng given to fmi_train_local (fmi_dp_gauss_add, see
 * model_impl.h); otherwise noise(ud, x, n, std) must add N(0, std^2) to
 * each of x[0..n) and return FM_OK or an error code (which stops the
 * training with that code). The trainer may call it with std already
 * scaled by lr / batch, on the momentum buffer or the parameters.
 */
typedef struct fmi_dpsgd {
	double clip;             /* C > 0; 0 = DP-SGD off */
	double noise_multiplier; /* z >= 0 */
	/* adds N(0, std^2) to x[0..n); returns FM_OK or an error code */
	int (*noise)(void *ud, float *x, size_t n, double std);
	void *ud;
	double expected_batch;   /* > 0: divide by this, not the batch size */
} fmi_dpsgd;

/* FM_OK, or FM_EINVAL with err naming the field that is wrong: clip
 * negative or not finite, noise_multiplier negative or not finite, a
 * noise multiplier, callback or expected batch set with clip 0, or
 * expected_batch negative or not finite. */
int fmi_dpsgd_check(const fmi_dpsgd *dp, fm_error *err);

/* Local training on a client's shard. */
typedef struct fmi_local_cfg {
	uint32_t epochs;
	uint32_t batch;
	fmi_sgd opt;
	fmi_dpsgd dp; /* DP-SGD; all zero = off */
} fmi_local_cfg;

typedef struct fmi_train_stats {
	double loss;     /* mean batch loss over all steps */
	uint64_t steps;
	uint64_t examples; /* shard size (for weighting) */
	/* DP-SGD only (0 otherwise), over all steps: how many per-example
	 * gradients were scaled down to the clip norm, and the mean L2 norm
	 * of the per-example gradients before clipping. */
	uint64_t dp_clipped;
	double dp_mean_norm;
} fmi_train_stats;

/*
 * DP-SGD's gradient on one batch x [b x in], y [b], without noise: writes
 * sum_i min(1, clip / |g_i|) g_i into the grad buffer (g_i: the gradient
 * of example i's cross-entropy, so the sum is not divided by b) and |g_i|
 * into norms[b] (may be NULL); returns the mean loss (NaN when b is
 * outside [1, max_batch], clip is not positive or memory ran out).
 * Computed as fmi_train_local does: one batched backward, per-example
 * norms from activations and deltas (dense layers) or per-example
 * gradients (conv layers).
 */
double fmi_trainer_dp_grad(fmi_trainer *t, const float *x, const int32_t *y,
    size_t b, double clip, double *norms);

/* Runs cfg->epochs passes over idx[0..n) of d in batches of cfg->batch
 * (last batch smaller), reshuffled every epoch with rng, updating the
 * trainer's params in place. Gradients go straight into the params or the
 * momentum state (the grad buffer is left alone), and subnormal floats are
 * flushed to zero while it runs. FM_EINVAL: batch outside [1, max_batch],
 * data that does not fit the model or an index out of range; FM_ERANGE:
 * the loss became NaN or infinite (diverged); with DP-SGD also what
 * fmi_dpsgd_check refuses (FM_EINVAL), FM_ENOMEM for its buffers and the
 * noise callback's error. Details go to the log. */
int fmi_train_local(fmi_trainer *t, const fmi_dataset *d, const uint32_t *idx,
    size_t n, const fmi_local_cfg *cfg, fm_rng *rng, fmi_train_stats *stats);

/* Evaluation: mean loss and accuracy of params on all of d (or idx[0..n)
 * when idx != NULL), in batches through the trainer's buffers. */
typedef struct fmi_eval {
	double loss;
	double accuracy;
	uint64_t n;
} fmi_eval;
int fmi_evaluate(fmi_trainer *t, const float *params, const fmi_dataset *d,
    const uint32_t *idx, size_t n, fmi_eval *out);
/* The same, also writing each example's predicted class (the argmax of
 * the logits, the first of ties: what accuracy counts) into pred[count]
 * when pred != NULL; count is n with idx, else d->n. */
int fmi_evaluate_pred(fmi_trainer *t, const float *params,
    const fmi_dataset *d, const uint32_t *idx, size_t n, fmi_eval *out,
    int32_t *pred);

#endif /* FMI_MODEL_H */
