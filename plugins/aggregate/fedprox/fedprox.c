/* SPDX-License-Identifier: MIT */
/*
 * fedprox.c: FedProx (Li et al., "Federated Optimization in Heterogeneous
 * Networks", MLSys 2020).
 *
 * Each client minimises its loss plus the proximal term mu/2 |w - w_t|^2,
 * where w_t is the global model the round started from: every local step
 * uses the gradient g + mu (w - w_t). The server averages the returned
 * models weighted by example count, as FedAvg does; with mu = 0 FedProx is
 * FedAvg bit for bit.
 *
 * Server side: the example-weighted average of the deltas (accumulate.h).
 * Client side (ABI 1.2 local-training hooks): a_local_begin keeps w_t,
 * a_local_grad returns mu (w - w_t) for the host to add to each minibatch
 * gradient. The paper's "inexact solution" (gamma) is the fixed number of
 * local epochs here; its stragglers (variable local work) are what the
 * engine's deadlines and dropouts produce.
 *
 * Default mu = 0.01, NIID-Bench's default for FMNIST (Li et al., 2022);
 * the FedProx paper searches mu in {0.001, 0.01, 0.1, 1} and uses 1 on
 * its synthetic data.
 */
#include <string.h>

#include "fedmesh/plugin.h"

#include "../accumulate.h"

typedef struct fedprox {
	const fm_host_api *host;
	size_t dim;
	float mu;
	/* server */
	float *acc;    /* [dim] sum_k n_k delta_k */
	double weight; /* sum of num_examples this round */
	fm_acc pool;   /* a helper thread for large models */
	/* client */
	const float *w0; /* the round's global model, during local training */
	float *h;        /* [dim] mu (w - w0) */
} fedprox;

static int
fedprox_init(void *st, const fm_instance *inst)
{
	fedprox *f = st;
	f->host = inst->host;
	f->dim = inst->dim;
	if (f->dim == 0 || inst->nparams != 1 || inst->params == NULL) {
		return FM_EINVAL;
	}
	f->mu = (float)inst->params[0].num;
	if (inst->role == FM_ROLE_CLIENT) {
		return FM_OK; /* h is allocated when training starts */
	}
	f->acc = f->host->calloc(f->dim, sizeof(float));
	fm_acc_start(&f->pool, f->dim >= FM_ACC_SPLIT_MIN ? 2 : 1);
	return f->acc != NULL ? FM_OK : FM_ENOMEM;
}

static void
fedprox_fini(void *st)
{
	fedprox *f = st;
	if (f->host != NULL) {
		fm_acc_stop(&f->pool);
		f->host->free(f->acc);
		f->host->free(f->h);
	}
}

static int
fedprox_begin(void *st, const fm_round *r)
{
	fedprox *f = st;
	if (r->dim != f->dim || f->acc == NULL) {
		return FM_EINVAL;
	}
	memset(f->acc, 0, f->dim * sizeof(float));
	f->weight = 0;
	return FM_OK;
}

static int
fedprox_accept(void *st, const fm_update *u)
{
	fedprox *f = st;
	return fm_accumulate(&f->pool, f->acc, &f->weight, f->dim, u);
}

static int
fedprox_accept_many(void *st, const fm_update *u, uint32_t n, int *status)
{
	fedprox *f = st;
	return fm_accumulate_many(&f->pool, f->acc, &f->weight, f->dim, u, n,
	    status);
}

static int
fedprox_finish(void *st, float *global, size_t dim)
{
	fedprox *f = st;
	if (dim != f->dim || f->acc == NULL) {
		return FM_EINVAL;
	}
	if (f->weight > 0) {
		f->host->axpy(dim, (float)(1.0 / f->weight), f->acc, global);
	}
	return FM_OK;
}

static int
fedprox_local_begin(void *st, const fm_local_task *t)
{
	fedprox *f = st;
	if (t->struct_size < sizeof *t || t->dim != f->dim ||
	    t->global == NULL) {
		return FM_EINVAL;
	}
	if (f->h == NULL && f->mu != 0.0f &&
	    (f->h = f->host->alloc(f->dim * sizeof(float))) == NULL) {
		return FM_ENOMEM;
	}
	f->w0 = t->global;
	return FM_OK;
}

static const float *
fedprox_local_grad(void *st, const float *w, size_t dim)
{
	fedprox *f = st;
	if (f->mu == 0.0f || f->w0 == NULL || dim != f->dim) {
		return NULL; /* mu = 0: FedAvg exactly */
	}
	const float mu = f->mu, *restrict w0 = f->w0;
	float *restrict h = f->h;
	for (size_t i = 0; i < dim; i++) {
		h[i] = mu * (w[i] - w0[i]);
	}
	return h;
}

static int
fedprox_local_end(void *st, const fm_local_result *r)
{
	fedprox *f = st;
	(void)r;
	f->w0 = NULL; /* borrowed until here */
	return FM_OK;
}

static const fm_aggregator_ops fedprox_ops = {
	.a_struct_size = sizeof(fm_aggregator_ops),
	.a_kind = FM_KIND_AGGREGATOR,
	.a_name = "fedprox",
	.a_state_size = sizeof(fedprox),
	.a_init = fedprox_init,
	.a_fini = fedprox_fini,
	.a_begin = fedprox_begin,
	.a_accept = fedprox_accept,
	.a_accept_many = fedprox_accept_many,
	.a_finish = fedprox_finish,
	.a_local_begin = fedprox_local_begin,
	.a_local_grad = fedprox_local_grad,
	.a_local_end = fedprox_local_end,
};

static const fm_param_desc fedprox_params[] = {
	{ "mu", FM_PARAM_REAL, 0.01, 0, 1e3, NULL,
	    "Proximal weight: local steps use g + mu (w - w_global); 0 is "
	    "FedAvg." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc fedprox_components[] = {
	{ FM_KIND_AGGREGATOR, "fedprox",
	    "FedProx: FedAvg whose clients add a proximal term mu/2 |w - w_t|^2",
	    fedprox_params },
};

FM_PLUGIN_DEFINE("fedprox", "1.0.0", "MIT",
    "FedProx (Li et al., MLSys 2020)", fedprox_components);

FM_PLUGIN_INIT(r, host)
{
	if (host->abi_minor < 2) { /* needs the local-training hooks */
		host->log(FM_LOG_ERR, "FM-FEDPROX", "fedprox needs plugin ABI "
		    "1.2 (local-training hooks); this host speaks 1.%u",
		    host->abi_minor);
		return FM_EVERSION;
	}
	return host->register_component(r, &fedprox_ops, sizeof fedprox_ops);
}
