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
	fm_acc pool;   /* a helper thread for large models */
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
	fm_acc_start(&f->pool, f->dim >= FM_ACC_SPLIT_MIN ? 2 : 1);
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
fedavg_accept(void *st, const fm_update *u)
{
	fedavg *f = st;
	return fm_accumulate(&f->pool, f->acc, &f->weight, f->dim, u);
}

static int
fedavg_accept_many(void *st, const fm_update *u, uint32_t n, int *status)
{
	fedavg *f = st;
	return fm_accumulate_many(&f->pool, f->acc, &f->weight, f->dim, u, n,
	    status);
}

static int
fedavg_finish(void *st, float *global, size_t dim)
{
	fedavg *f = st;
	if (dim != f->dim) {
		return FM_EINVAL;
	}
	if (f->weight > 0) {
		f->host->axpy(dim, (float)(1.0 / f->weight), f->acc, global);
	}
	return FM_OK;
}

static const fm_aggregator_ops fedavg_ops = {
	.a_struct_size = sizeof(fm_aggregator_ops),
	.a_kind = FM_KIND_AGGREGATOR,
	.a_name = "fedavg",
	.a_state_size = sizeof(fedavg),
	.a_init = fedavg_init,
	.a_fini = fedavg_fini,
	.a_begin = fedavg_begin,
	.a_accept = fedavg_accept,
	.a_accept_many = fedavg_accept_many,
	.a_finish = fedavg_finish,
};

static const fm_param_desc fedavg_params[] = {
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc fedavg_components[] = {
	{ FM_KIND_AGGREGATOR, "fedavg",
	    "FedAvg: client deltas averaged, weighted by example count",
	    fedavg_params },
};

FM_PLUGIN_DEFINE("fedavg", "1.0.0", "MIT",
    "Federated averaging (McMahan et al., 2017)", fedavg_components);

FM_PLUGIN_INIT(r, host)
{
	return host->register_component(r, &fedavg_ops, sizeof fedavg_ops);
}
