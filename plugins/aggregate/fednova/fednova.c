/* SPDX-License-Identifier: MIT */
/*
 * fednova.c: FedNova (Wang et al., NeurIPS 2020, "Tackling the Objective
 * Inconsistency Problem in Heterogeneous Federated Optimization").
 *
 * Clients that take more local steps move further; FedAvg then drifts
 * toward their objectives. FedNova averages the *normalized* updates
 * d_i = delta_i / tau_i (tau_i: client i's local SGD steps) with weights
 * p_i = n_i / sum n, and rescales by the effective step count
 * tau_eff = sum p_i tau_i:
 *     global += tau_eff * sum_i p_i d_i
 * This is the paper's rule for plain local SGD (a_i = tau_i); with client
 * momentum the paper normalizes by ||a_i||_1 instead, which this plugin
 * does not model. An update that does not report its steps (0) counts
 * as tau_i = 1, so FedNova degrades to FedAvg for it. Streaming: one
 * model-sized accumulator of sum n_i / tau_i * delta_i.
 */
#include <string.h>

#include "fedmesh/plugin.h"

typedef struct fednova {
	const fm_host_api *host;
	float *acc;  /* [dim]: sum n_i / tau_i * delta_i */
	size_t dim;
	double w;    /* sum n_i */
	double wtau; /* sum n_i * tau_i */
} fednova;

static int
fednova_init(void *st, const fm_instance *inst)
{
	fednova *f = st;
	f->host = inst->host;
	f->dim = inst->dim;
	if (f->dim == 0) {
		return FM_EINVAL;
	}
	f->acc = f->host->calloc(f->dim, sizeof(float));
	return f->acc != NULL ? FM_OK : FM_ENOMEM;
}

static void
fednova_fini(void *st)
{
	fednova *f = st;
	if (f->host != NULL) {
		f->host->free(f->acc);
		f->acc = NULL;
	}
}

static int
fednova_begin(void *st, const fm_round *r)
{
	fednova *f = st;
	if (r->dim != f->dim) {
		return FM_EINVAL;
	}
	memset(f->acc, 0, f->dim * sizeof(float));
	f->w = f->wtau = 0;
	return FM_OK;
}

static int
fednova_accept(void *st, const fm_update *u)
{
	fednova *f = st;
	if (u->dim != f->dim || u->delta == NULL) {
		return FM_EINVAL;
	}
	if (u->num_examples == 0) {
		return FM_OK;
	}
	double tau = u->steps > 0 ? (double)u->steps : 1.0;
	double n = (double)u->num_examples;
	f->host->axpy(f->dim, (float)(n / tau), u->delta, f->acc);
	f->w += n;
	f->wtau += n * tau;
	return FM_OK;
}

static int
fednova_finish(void *st, float *global, size_t dim)
{
	fednova *f = st;
	if (dim != f->dim) {
		return FM_EINVAL;
	}
	if (f->w > 0) { /* tau_eff / W with tau_eff = wtau / W */
		f->host->axpy(dim, (float)(f->wtau / (f->w * f->w)), f->acc,
		    global);
	}
	return FM_OK;
}

static const fm_aggregator_ops fednova_ops = {
	.a_struct_size = sizeof(fm_aggregator_ops),
	.a_kind = FM_KIND_AGGREGATOR,
	.a_name = "fednova",
	.a_state_size = sizeof(fednova),
	.a_init = fednova_init,
	.a_fini = fednova_fini,
	.a_begin = fednova_begin,
	.a_accept = fednova_accept,
	.a_finish = fednova_finish,
};

static const fm_param_desc fednova_params[] = {
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc fednova_components[] = {
	{ FM_KIND_AGGREGATOR, "fednova",
	    "FedNova: updates normalized by local steps, rescaled by the "
	    "effective step count", fednova_params },
};

FM_PLUGIN_DEFINE("fednova", "1.0.0", "MIT",
    "Normalized averaging for heterogeneous local steps (Wang et al., 2020)",
    fednova_components);

FM_PLUGIN_INIT(r, host)
{
	return host->register_component(r, &fednova_ops, sizeof fednova_ops);
}
