/* SPDX-License-Identifier: MIT */
/*
 * fedprox.c: FedProx (Li et al., "Federated Optimization in Heterogeneous
 * Networks", MLSys 2020), as a local-training rule (FM_KIND_LOCAL).
 *
 * Each client minimises its loss plus the proximal term mu/2 |w - w_t|^2,
 * where w_t is the global model the round started from: every local step
 * uses the gradient g + mu (w - w_t). The server averages the returned
 * models weighted by example count: that is plain FedAvg, so this rule has
 * no server side at all (an experiment's aggregator = "fedprox" is the
 * aggregator FedAvg plus this rule with its mu); with mu = 0 FedProx is
 * FedAvg bit for bit.
 *
 * Client side: begin keeps w_t, grad returns mu (w - w_t) for the host to
 * add to each minibatch gradient, end forgets w_t. The paper's "inexact
 * solution" (gamma) is the fixed number of local epochs here; its
 * stragglers (variable local work) are what the engine's deadlines and
 * dropouts produce. No state outlives a round: no save/load.
 *
 * Default mu = 0.01, NIID-Bench's default for FMNIST (Li et al., 2022);
 * the FedProx paper searches mu in {0.001, 0.01, 0.1, 1} and uses 1 on
 * its synthetic data.
 */
#include <string.h>

#include "fedmesh/plugin.h"

typedef struct fedprox {
	const fm_host_api *host;
	size_t dim;
	float mu;
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
	return FM_OK; /* h is allocated when training starts */
}

static void
fedprox_fini(void *st)
{
	fedprox *f = st;
	if (f->host != NULL) {
		f->host->free(f->h);
		f->h = NULL;
	}
}

static int
fedprox_begin(void *st, const fm_local_task *t)
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
fedprox_grad(void *st, const float *w, size_t dim)
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
fedprox_end(void *st, const fm_local_result *r)
{
	fedprox *f = st;
	(void)r;
	f->w0 = NULL; /* borrowed until here */
	return FM_OK;
}

static const fm_local_ops fedprox_ops = {
	.base = FM_OPS(fm_local_ops, FM_KIND_LOCAL, fedprox, fedprox_init,
	    fedprox_fini),
	.begin = fedprox_begin,
	.grad = fedprox_grad,
	.end = fedprox_end,
};

static const fm_param_desc fedprox_params[] = {
	{ "mu", FM_PARAM_REAL, 0.01, 0, 1e3, NULL,
	    "Proximal weight: local steps use g + mu (w - w_global); 0 is "
	    "FedAvg." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc fedprox_components[] = {
	FM_COMPONENT(FM_KIND_LOCAL, "fedprox",
	    "FedProx: clients add a proximal term mu/2 |w - w_t|^2 (with "
	    "FedAvg on the server)", fedprox_params, fedprox_ops, FM_COMP_STATELESS),
};

FM_PLUGIN("fedprox", "2.0.0", "MIT", "FedProx (Li et al., MLSys 2020)",
    fedprox_components, NULL);
