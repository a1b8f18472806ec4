/* SPDX-License-Identifier: MIT */
/* pingpong.c: a FedAvg that also pings every sampled client each round. */
#include <string.h>

#include "fedmesh/plugin.h"

/*
 * Server (or an edge aggregator of a hierarchy, FM_ROLE_EDGE): begin
 * sends "ping" to every sampled client; base.on_message counts the
 * "pong"s of the round; finish reports them as the metric "pongs", then
 * applies FedAvg. Client (FM_ROLE_CLIENT): answers each "ping" with a
 * "pong" from base.on_message.
 */
typedef struct pingpong {
	const fm_instance *self;
	const fm_host_api *host;
	float *acc; /* [dim], server only */
	size_t dim;
	double weight;
	uint32_t round;
	uint32_t pongs;
} pingpong;

static int
pp_init(void *st, const fm_instance *inst)
{
	pingpong *p = st;
	p->self = inst;
	p->host = inst->host;
	p->dim = inst->dim;
	if (inst->role == FM_ROLE_CLIENT) {
		return FM_OK;
	}
	p->acc = p->host->calloc(p->dim, sizeof(float));
	return p->acc != NULL ? FM_OK : FM_ENOMEM;
}

static void
pp_fini(void *st)
{
	pingpong *p = st;
	if (p->host != NULL) {
		p->host->free(p->acc);
	}
}

static int
pp_begin(void *st, const fm_round *r)
{
	pingpong *p = st;
	if (r->dim != p->dim || p->acc == NULL) {
		return FM_EINVAL;
	}
	memset(p->acc, 0, p->dim * sizeof(float));
	p->weight = 0;
	p->round = r->round;
	p->pongs = 0;
	for (uint32_t i = 0; i < r->nclients; i++) {
		int rv = p->host->send(p->self, r->clients[i], "ping", 4);
		if (rv != FM_OK) {
			p->host->log(FM_LOG_WARN, "FM-PINGPONG", "ping to %d: %s",
			    r->clients[i], p->host->strerror(rv));
			return rv;
		}
	}
	return FM_OK;
}

static int
pp_accept(void *st, const fm_update *u, uint32_t n, int *status)
{
	pingpong *p = st;
	for (uint32_t k = 0; k < n; k++) {
		const fm_update *uk = FM_AT(const fm_update, u, k);
		status[k] = uk->dim != p->dim ? FM_EINVAL : FM_OK;
		if (status[k] == FM_OK) {
			p->host->axpy(p->dim, (float)uk->num_examples,
			    uk->delta, p->acc);
			p->weight += (double)uk->num_examples;
		}
	}
	return FM_OK;
}

static int
pp_finish(void *st, const float *global, float *out, size_t dim)
{
	pingpong *p = st;
	(void)global;
	p->host->metric(p->self, "pongs", p->pongs);
	if (p->weight > 0) {
		p->host->axpy(dim, (float)(1.0 / p->weight), p->acc, out);
	}
	return FM_OK;
}

static int
pp_on_message(void *st, const fm_message *m)
{
	pingpong *p = st;
	int is_ping = m->len == 4 && memcmp(m->data, "ping", 4) == 0;
	int is_pong = m->len == 4 && memcmp(m->data, "pong", 4) == 0;
	if (p->self->role == FM_ROLE_CLIENT && is_ping) {
		return p->host->send(p->self, m->from, "pong", 4);
	}
	if (p->self->role != FM_ROLE_CLIENT && is_pong &&
	    m->round == p->round) {
		p->pongs++;
		return FM_OK;
	}
	return FM_EPROTO;
}

static const fm_aggregator_ops pp_ops = {
	.base = { sizeof(fm_aggregator_ops), FM_KIND_AGGREGATOR,
		sizeof(pingpong), pp_init, pp_fini, pp_on_message, NULL, NULL,
		NULL },
	.begin = pp_begin,
	.accept = pp_accept,
	.finish = pp_finish,
};

static const fm_component_desc pp_components[] = {
	FM_COMPONENT(FM_KIND_AGGREGATOR, "pingpong",
	    "test: FedAvg that pings every sampled client and counts pongs",
	    NULL, pp_ops, 0),
};

FM_PLUGIN("pingpong", "1.0.0", "MIT", "messaging test aggregator",
    pp_components, NULL);
