/* SPDX-License-Identifier: MIT */
/* fedavg.c: FedAvg, the average of client deltas weighted by example count. */
#include <string.h>

#include "fedmesh/plugin.h"

#include "../accumulate.h"

/*
 * Streaming: one model-sized accumulator holds sum_k n_k * delta_k; finish
 * adds acc / sum_k n_k to the global model. Updates with zero examples
 * weigh nothing; a round with none leaves the global model unchanged.
 */
typedef struct fedavg {
	const fm_host_api *host;
	float *acc;    /* [dim] */
	size_t dim;
	double weight; /* sum of num_examples this round */
	fm_acc pool;   /* host->parallel_for for large models */
} fedavg;

static int
fedavg_init(void *st, const fm_instance *inst)
{
	fedavg *f = st;
	f->host = inst->host;
	f->dim = inst->dim;
	if (f->dim == 0) {
		return FM_EINVAL; /* an empty model */
	}
	f->acc = f->host->calloc(f->dim, sizeof(float));
	fm_acc_start(&f->pool, inst);
	return f->acc != NULL ? FM_OK : FM_ENOMEM;
}

static void
fedavg_fini(void *st)
{
	fedavg *f = st;
	if (f->host != NULL) { /* NULL: init never ran */
		fm_acc_stop(&f->pool);
		f->host->free(f->acc);
		f->acc = NULL;
	}
}

static int
fedavg_begin(void *st, const fm_round *r)
{
	fedavg *f = st;
	if (r->dim != f->dim) {
		return FM_EINVAL;
	}
	memset(f->acc, 0, f->dim * sizeof(float));
	f->weight = 0;
	return FM_OK;
}

static int
fedavg_accept(void *st, const fm_update *u, uint32_t n, int *status)
{
	fedavg *f = st;
	return fm_accumulate(&f->pool, f->acc, &f->weight, f->dim, u, n,
	    status);
}

/* out holds global on entry: out += acc / weight, as 1.x did in place. */
static int
fedavg_finish(void *st, const float *global, float *out, size_t dim)
{
	fedavg *f = st;
	(void)global;
	if (dim != f->dim) {
		return FM_EINVAL;
	}
	if (f->weight > 0) {
		f->host->axpy(dim, (float)(1.0 / f->weight), f->acc, out);
	}
	return FM_OK;
}

static const fm_aggregator_ops fedavg_ops = {
	.base = FM_OPS(fm_aggregator_ops, FM_KIND_AGGREGATOR, fedavg,
	    fedavg_init, fedavg_fini),
	.begin = fedavg_begin,
	.accept = fedavg_accept,
	.finish = fedavg_finish,
};

static const fm_param_desc fedavg_params[] = {
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc fedavg_components[] = {
	FM_COMPONENT(FM_KIND_AGGREGATOR, "fedavg",
	    "FedAvg: client deltas averaged, weighted by example count",
	    fedavg_params, fedavg_ops, FM_COMP_STATELESS),
};

FM_PLUGIN("fedavg", "2.0.0", "MIT",
    "Federated averaging (McMahan et al., 2017)", fedavg_components, NULL);
