/* SPDX-License-Identifier: MIT */
/*
 * fedopt.c: server-side optimizers on the FedAvg pseudo-update, with
 * Flower's semantics: fedavgm (Hsu et al., 2019), and the FedOpt family
 * fedadagrad, fedadam, fedyogi (Reddi et al., 2021).
 *
 * Every round, avg = sum_k n_k delta_k / sum_k n_k, exactly FedAvg's move
 * (Flower's "aggregated - current"). Then:
 *
 *   fedavgm   pg = -avg; v = pg on the first round with momentum > 0,
 *             afterwards v = momentum v + pg; global -= lr v.
 *             With momentum 0: global += lr avg (no state at all).
 *   fedopt    m = beta1 m + (1 - beta1) avg                  (m0 = 0)
 *             fedadagrad v += avg^2                  (beta1 is 0)
 *             fedadam    v = beta2 v + (1 - beta2) avg^2
 *             fedyogi    v -= (1 - beta2) avg^2 sign(v - avg^2)
 *             global += eta m / (sqrt(v) + tau)               (v0 = 0)
 *
 * fedadam uses Flower's bias correction, eta = lr sqrt(1 - beta2^(t+1)) /
 * (1 - beta1^(t+1)) with t the 1-based round number (fm_round.round), as
 * flwr's FedAdam computes it from server_round (the paper has none). The
 * initial v is 0 for all three, as Flower initialises it.
 *
 * The optimizer state (m, v) lives in doubles and carries over rounds; it
 * is allocated lazily at the first begin. A round with no weighted update
 * changes neither the global model nor the state.
 *
 * A server learning-rate schedule (fm_round.lr_scale) makes the round's
 * lr = lr * lr_scale in every formula above.
 *
 * save/load (checkpoints): version byte 1, the algorithm (u8), dim (u64),
 * the steps taken (u64: rounds that moved the model; fedavgm's first
 * momentum round starts v from the pseudo-gradient), then whether m and v
 * are held (u8 each) and m[dim], v[dim] as doubles. A loaded instance's
 * next round is bit for bit the one the saved instance would have run.
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#include "../accumulate.h"
#include "../../state.h"

#define FEDOPT_STATE_VERSION 1

enum algo { ALGO_AVGM = 1, ALGO_ADAGRAD, ALGO_ADAM, ALGO_YOGI };

typedef struct fedopt {
	const fm_host_api *host;
	const fm_instance *inst;
	int algo;
	size_t dim;
	double lr, momentum, beta1, beta2, tau;
	double scale; /* this round's server lr schedule factor */
	float *acc;     /* [dim] sum_k n_k delta_k of this round */
	double *m, *v;  /* [dim] optimizer state; m unused by fedavgm */
	double weight;  /* sum of num_examples this round */
	uint32_t round; /* fm_round.round of this round */
	uint64_t steps; /* rounds that moved the model (state holds them) */
	fm_acc pool;    /* host->parallel_for for large models */
} fedopt;

static int
fedopt_init_common(fedopt *f, const fm_instance *inst, int algo,
    uint32_t nparams)
{
	f->host = inst->host;
	f->inst = inst;
	f->algo = algo;
	f->dim = inst->dim;
	if (f->dim == 0 || inst->nparams != nparams || inst->params == NULL) {
		return FM_EINVAL;
	}
	f->lr = inst->params[0].num;
	return FM_OK;
}

static int
fedavgm_init(void *st, const fm_instance *inst)
{
	fedopt *f = st;
	int rv = fedopt_init_common(f, inst, ALGO_AVGM, 2);
	if (rv == FM_OK) {
		f->momentum = inst->params[1].num;
	}
	return rv;
}

static int
fedadagrad_init(void *st, const fm_instance *inst)
{
	fedopt *f = st;
	int rv = fedopt_init_common(f, inst, ALGO_ADAGRAD, 2);
	if (rv == FM_OK) {
		f->beta1 = 0; /* forced, as in the paper and Flower */
		f->tau = inst->params[1].num;
	}
	return rv;
}

static int
fedadam_yogi_init(fedopt *f, const fm_instance *inst, int algo)
{
	int rv = fedopt_init_common(f, inst, algo, 4);
	if (rv == FM_OK) {
		f->beta1 = inst->params[1].num;
		f->beta2 = inst->params[2].num;
		f->tau = inst->params[3].num;
	}
	return rv;
}

static int
fedadam_init(void *st, const fm_instance *inst)
{
	return fedadam_yogi_init(st, inst, ALGO_ADAM);
}

static int
fedyogi_init(void *st, const fm_instance *inst)
{
	return fedadam_yogi_init(st, inst, ALGO_YOGI);
}

static void
fedopt_fini(void *st)
{
	fedopt *f = st;
	if (f->host != NULL) { /* NULL: init never ran */
		fm_acc_stop(&f->pool);
		f->host->free(f->acc);
		f->host->free(f->m);
		f->host->free(f->v);
		f->acc = NULL;
		f->m = f->v = NULL;
	}
}

static int
fedopt_begin(void *st, const fm_round *r)
{
	fedopt *f = st;
	int need_m = f->algo != ALGO_AVGM;
	int need_v = need_m || f->momentum > 0;
	if (r->dim != f->dim) {
		return FM_EINVAL;
	}
	if (f->acc == NULL) {
		f->acc = f->host->calloc(f->dim, sizeof(float));
		fm_acc_start(&f->pool, f->inst);
	}
	if (need_m && f->m == NULL) {
		f->m = f->host->calloc(f->dim, sizeof(double));
	}
	if (need_v && f->v == NULL) {
		f->v = f->host->calloc(f->dim, sizeof(double));
	}
	if (f->acc == NULL || (need_m && f->m == NULL) ||
	    (need_v && f->v == NULL)) {
		return FM_ENOMEM;
	}
	memset(f->acc, 0, f->dim * sizeof(float));
	f->weight = 0;
	f->round = r->round;
	f->scale = r->lr_scale;
	return FM_OK;
}

static int
fedopt_accept(void *st, const fm_update *u, uint32_t n, int *status)
{
	fedopt *f = st;
	return fm_accumulate(&f->pool, f->acc, &f->weight, f->dim, u, n,
	    status);
}

/* global: out, which holds the round's global model on entry (1.x wrote
 * into the global model in place: the same arithmetic, the same bits). */
static void
fedavgm_step(fedopt *f, float *global)
{
	double inv = 1.0 / f->weight, lr = f->lr * f->scale;
	if (!(f->momentum > 0)) {
		/* global -= lr * (-avg): the same kernel call as fedavg, so
		 * lr 1 gives fedavg's bits. */
		f->host->axpy(f->dim, (float)(lr * inv), f->acc, global);
		return;
	}
	for (size_t i = 0; i < f->dim; i++) {
		double pg = -(double)f->acc[i] * inv;
		f->v[i] = f->steps > 0 ? f->momentum * f->v[i] + pg : pg;
		global[i] = (float)((double)global[i] - lr * f->v[i]);
	}
}

static void
fedopt_step(fedopt *f, float *global)
{
	double lr = f->lr * f->scale, inv = 1.0 / f->weight, eta = lr;
	double b1 = f->beta1, b2 = f->beta2;
	if (f->algo == ALGO_ADAM) {
		double t1 = (double)f->round + 1.0;
		double den = 1.0 - pow(b1, t1);
		if (den > 0) { /* beta1 == 1: no correction */
			eta = lr * sqrt(1.0 - pow(b2, t1)) / den;
		}
	}
	for (size_t i = 0; i < f->dim; i++) {
		double d = (double)f->acc[i] * inv, d2 = d * d;
		double m = b1 * f->m[i] + (1.0 - b1) * d, v = f->v[i];
		switch (f->algo) {
		case ALGO_ADAGRAD:
			v += d2;
			break;
		case ALGO_ADAM:
			v = b2 * v + (1.0 - b2) * d2;
			break;
		default: { /* ALGO_YOGI */
			double s = v - d2;
			double sg = s > 0 ? 1.0 : (s < 0 ? -1.0 : 0.0);
			v -= (1.0 - b2) * d2 * sg;
			break;
		}
		}
		f->m[i] = m;
		f->v[i] = v;
		global[i] = (float)((double)global[i] +
		    eta * m / (sqrt(v) + f->tau));
	}
}

static int
fedopt_finish(void *st, const float *global, float *out, size_t dim)
{
	fedopt *f = st;
	(void)global; /* out holds a copy of it */
	if (dim != f->dim || f->acc == NULL) {
		return FM_EINVAL;
	}
	if (!(f->weight > 0)) {
		return FM_OK; /* nothing accepted: model and state unchanged */
	}
	if (f->algo == ALGO_AVGM) {
		fedavgm_step(f, out);
	} else {
		fedopt_step(f, out);
	}
	f->steps++;
	return FM_OK;
}

static int
fedopt_save(void *st, void *buf, size_t cap, size_t *len)
{
	const fedopt *f = st;
	fm_sw w = FM_SW_INIT(buf, cap);
	fm_sw_u8(&w, FEDOPT_STATE_VERSION);
	fm_sw_u8(&w, (uint8_t)f->algo);
	fm_sw_u64(&w, f->dim);
	fm_sw_u64(&w, f->steps);
	fm_sw_u8(&w, f->m != NULL);
	fm_sw_u8(&w, f->v != NULL);
	if (f->m != NULL) {
		fm_sw_put(&w, f->m, f->dim * sizeof(double));
	}
	if (f->v != NULL) {
		fm_sw_put(&w, f->v, f->dim * sizeof(double));
	}
	return fm_sw_done(&w, len);
}

static int
fedopt_load(void *st, const void *buf, size_t len)
{
	fedopt *f = st;
	fm_sr r = FM_SR_INIT(buf, len);
	if (fm_sr_version(&r, f->inst, FEDOPT_STATE_VERSION, "fedopt") != FM_OK) {
		return FM_EVERSION;
	}
	uint8_t algo = fm_sr_u8(&r);
	uint64_t dim = fm_sr_u64(&r), steps = fm_sr_u64(&r);
	uint8_t has_m = fm_sr_u8(&r), has_v = fm_sr_u8(&r);
	size_t bytes = f->dim * sizeof(double);
	if (r.bad || algo != f->algo || dim != f->dim || has_m > 1 ||
	    has_v > 1 || fm_sr_left(&r) != (has_m + has_v) * bytes) {
		FM_STATE_REFUSE(f->inst, "saved state (%zu bytes) is not the "
		    "state of this optimizer and model size (%zu parameters)",
		    len, f->dim);
		return FM_EINVAL;
	}
	if (has_m && f->m == NULL) {
		f->m = f->host->calloc(f->dim, sizeof(double));
	}
	if (has_v && f->v == NULL) {
		f->v = f->host->calloc(f->dim, sizeof(double));
	}
	if ((has_m && f->m == NULL) || (has_v && f->v == NULL)) {
		return FM_ENOMEM;
	}
	if (has_m) {
		fm_sr_get(&r, f->m, bytes);
	}
	if (has_v) {
		fm_sr_get(&r, f->v, bytes);
	}
	f->steps = steps;
	return fm_sr_done(&r) ? FM_OK : FM_EINVAL;
}

#define FEDOPT_OPS(init)                                                    \
	{                                                                   \
		.base = { sizeof(fm_aggregator_ops), FM_KIND_AGGREGATOR,    \
			sizeof(fedopt), init, fedopt_fini, NULL, NULL,      \
			fedopt_save, fedopt_load },                         \
		.begin = fedopt_begin,                                      \
		.accept = fedopt_accept,                                    \
		.finish = fedopt_finish,                                    \
	}

static const fm_aggregator_ops fedavgm_ops = FEDOPT_OPS(fedavgm_init);
static const fm_aggregator_ops fedadagrad_ops = FEDOPT_OPS(fedadagrad_init);
static const fm_aggregator_ops fedadam_ops = FEDOPT_OPS(fedadam_init);
static const fm_aggregator_ops fedyogi_ops = FEDOPT_OPS(fedyogi_init);

#define P_LR(def)                                                           \
	{ "lr", FM_PARAM_REAL, def, 0, 1e6, NULL,                            \
	    "Server learning rate (eta)." }
#define P_BETA1(def)                                                        \
	{ "beta1", FM_PARAM_REAL, def, 0, 1, NULL,                           \
	    "Decay of the first moment m." }
#define P_BETA2(def)                                                        \
	{ "beta2", FM_PARAM_REAL, def, 0, 1, NULL,                           \
	    "Decay of the second moment v." }
#define P_TAU(def)                                                          \
	{ "tau", FM_PARAM_REAL, def, 1e-12, 1e6, NULL,                       \
	    "Adaptivity: added to sqrt(v) in the denominator." }
#define P_END { NULL, 0, 0, 0, 0, NULL, NULL }

static const fm_param_desc fedavgm_params[] = {
	P_LR(1.0),
	{ "momentum", FM_PARAM_REAL, 0.0, 0, 1, NULL,
	    "Server momentum; 0 is FedAvg scaled by lr." },
	P_END,
};

static const fm_param_desc fedadagrad_params[] = {
	P_LR(0.1),
	P_TAU(1e-3),
	P_END,
};

static const fm_param_desc fedadam_params[] = {
	P_LR(0.1),
	P_BETA1(0.9),
	P_BETA2(0.99),
	P_TAU(1e-3),
	P_END,
};

static const fm_param_desc fedyogi_params[] = {
	P_LR(0.01),
	P_BETA1(0.9),
	P_BETA2(0.99),
	P_TAU(1e-3),
	P_END,
};

static const fm_component_desc fedopt_components[] = {
	FM_COMPONENT(FM_KIND_AGGREGATOR, "fedavgm",
	    "FedAvgM: FedAvg with server momentum (Hsu et al., 2019)",
	    fedavgm_params, fedavgm_ops, 0),
	FM_COMPONENT(FM_KIND_AGGREGATOR, "fedadagrad",
	    "FedAdagrad: adaptive server optimizer (Reddi et al., 2021)",
	    fedadagrad_params, fedadagrad_ops, 0),
	FM_COMPONENT(FM_KIND_AGGREGATOR, "fedadam",
	    "FedAdam: Adam on the server, Flower's bias correction "
	    "(Reddi et al., 2021)",
	    fedadam_params, fedadam_ops, 0),
	FM_COMPONENT(FM_KIND_AGGREGATOR, "fedyogi",
	    "FedYogi: Yogi on the server (Reddi et al., 2021)",
	    fedyogi_params, fedyogi_ops, 0),
};

FM_PLUGIN("fedopt", "2.0.0", "MIT",
    "Server optimizers: FedAvgM, FedAdagrad, FedAdam, FedYogi",
    fedopt_components, NULL);
