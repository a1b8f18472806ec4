/* SPDX-License-Identifier: MIT */
/*
 * a1_avg.h: an ABI 1.4 aggregator, the example-weighted mean of the deltas
 * times lr * lr_scale, for the translation layer's tests (a1_mean.c takes
 * updates one by one, a1_many.c also all at once). Built against the
 * frozen 1.4 header, as a plugin built before ABI 2.0 was.
 *
 * What the tests read back: host->metric "a1_init" (dim) from a_init,
 * "a1_many_calls" from a_finish, "a1_msg_from"/"a1_msg_len" from
 * a_on_message, "a1_timer" from a_on_timer. An update with no examples is
 * refused (FM_EINVAL, with host->set_error); round 0 fails a_begin
 * (FM_ERANGE).
 */
#ifndef A1_AVG_H
#define A1_AVG_H

#include <stddef.h>

#include "fedmesh_plugin_1_4.h"

typedef struct a1_avg {
	const fm_instance *inst;
	const fm_host_api *host;
	size_t dim;
	double *sum; /* [dim]: sum of num_examples * delta */
	uint64_t total;
	double lr;
	uint32_t many_calls;
} a1_avg;

static const fm_param_desc a1_avg_params[] = {
	{ "lr", FM_PARAM_REAL, 1.0, 0.0, 10.0, NULL, "server step size" },
	{ NULL, 0, 0, 0, 0, NULL, NULL }
};

/* The registrar of fm_plugin_init, kept to check that registering later
 * is refused. */
static fm_registrar *a1_avg_registrar;
static const void *a1_avg_ops;
static size_t a1_avg_ops_size;

static inline int
a1_avg_init(void *st, const fm_instance *inst)
{
	a1_avg *s = st;
	const fm_host_api *h = inst->host;
	if (h->abi_major != 1 || h->abi_minor != 4 ||
	    h->struct_size != offsetof(fm_host_api, set_error) +
	    sizeof(h->set_error)) {
		return FM_EVERSION; /* not the 1.4 table a 1.4 plugin expects */
	}
	if (h->register_component(a1_avg_registrar, a1_avg_ops,
	    a1_avg_ops_size) != FM_ESTATE) {
		return FM_EINTERNAL; /* registration outside init went through */
	}
	s->inst = inst;
	s->host = h;
	s->dim = inst->dim;
	s->lr = inst->nparams > 0 ? inst->params[0].num : 1.0;
	s->sum = h->calloc(inst->dim, sizeof *s->sum);
	if (s->sum == NULL) {
		return FM_ENOMEM;
	}
	h->metric(inst, "a1_init", (double)inst->dim);
	return FM_OK;
}

static inline void
a1_avg_fini(void *st)
{
	a1_avg *s = st;
	if (s->host != NULL) {
		s->host->free(s->sum);
	}
}

static inline int
a1_avg_begin(void *st, const fm_round *r)
{
	a1_avg *s = st;
	if (r->round == 0) {
		return FM_ERANGE;
	}
	for (size_t i = 0; i < s->dim; i++) {
		s->sum[i] = 0;
	}
	s->total = 0;
	s->many_calls = 0;
	if (s->host->abi_minor >= 4) {
		s->lr = (s->inst->nparams > 0 ? s->inst->params[0].num : 1.0) *
		    r->lr_scale;
	}
	return FM_OK;
}

static inline int
a1_avg_accept(void *st, const fm_update *u)
{
	a1_avg *s = st;
	if (u->num_examples == 0 || u->dim != s->dim) {
		s->host->set_error(s->inst, "update of client %d has no "
		    "examples", u->client);
		return FM_EINVAL;
	}
	for (size_t i = 0; i < s->dim; i++) {
		s->sum[i] += (double)u->num_examples * (double)u->delta[i];
	}
	s->total += u->num_examples;
	return FM_OK;
}

static inline int
a1_avg_accept_many(void *st, const fm_update *u, uint32_t n, int *status)
{
	a1_avg *s = st;
	s->many_calls++;
	for (uint32_t k = 0; k < n; k++) {
		status[k] = a1_avg_accept(st, &u[k]);
	}
	return FM_OK;
}

static inline int
a1_avg_finish(void *st, float *global, size_t dim)
{
	a1_avg *s = st;
	s->host->metric(s->inst, "a1_many_calls", (double)s->many_calls);
	if (s->total == 0) {
		return FM_OK;
	}
	for (size_t i = 0; i < dim; i++) {
		global[i] += (float)(s->lr * s->sum[i] / (double)s->total);
	}
	return FM_OK;
}

static inline int
a1_avg_on_message(void *st, const fm_message *m)
{
	a1_avg *s = st;
	s->host->metric(s->inst, "a1_msg_from", (double)m->from);
	s->host->metric(s->inst, "a1_msg_len", (double)m->len);
	return FM_OK;
}

static inline int
a1_avg_on_timer(void *st, uint64_t tag)
{
	a1_avg *s = st;
	s->host->metric(s->inst, "a1_timer", (double)tag);
	return FM_OK;
}

#endif /* A1_AVG_H */
