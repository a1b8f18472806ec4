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
fednova_accept_one(fednova *f, const fm_update *u)
{
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

/* One axpy per update, in order (1.x's a_accept, called n times). */
static int
fednova_accept(void *st, const fm_update *u, uint32_t n, int *status)
{
	fednova *f = st;
	for (uint32_t k = 0; k < n; k++) {
		status[k] = fednova_accept_one(f, FM_AT(const fm_update, u, k));
	}
	return FM_OK;
}

/* out holds global on entry. */
static int
fednova_finish(void *st, const float *global, float *out, size_t dim)
{
	fednova *f = st;
	(void)global;
	if (dim != f->dim) {
		return FM_EINVAL;
	}
	if (f->w > 0) { /* tau_eff / W with tau_eff = wtau / W */
		f->host->axpy(dim, (float)(f->wtau / (f->w * f->w)), f->acc,
		    out);
	}
	return FM_OK;
}

static const fm_aggregator_ops fednova_ops = {
	.base = FM_OPS(fm_aggregator_ops, FM_KIND_AGGREGATOR, fednova,
	    fednova_init, fednova_fini),
	.begin = fednova_begin,
	.accept = fednova_accept,
	.finish = fednova_finish,
};

static const fm_param_desc fednova_params[] = {
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc fednova_components[] = {
	FM_COMPONENT(FM_KIND_AGGREGATOR, "fednova",
	    "FedNova: updates normalized by local steps, rescaled by the "
	    "effective step count", fednova_params, fednova_ops, FM_COMP_STATELESS),
};

FM_PLUGIN("fednova", "2.0.0", "MIT",
    "Normalized averaging for heterogeneous local steps (Wang et al., 2020)",
    fednova_components, NULL);
