/* SPDX-License-Identifier: MIT */
/* pingpong.c: a FedAvg that also pings every sampled client each round. */
#include <string.h>

#include "fedmesh/plugin.h"

/*
 * Server (or an edge aggregator of a hierarchy, FM_ROLE_EDGE): a_begin
 * sends "ping" to every sampled client; a_on_message counts the "pong"s of
 * the round; a_finish reports them as the metric "pongs", then applies
 * FedAvg. Client (FM_ROLE_CLIENT): answers each "ping" with a "pong" from
 * a_on_message.
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
pp_accept(void *st, const fm_update *u)
{
	pingpong *p = st;
	if (u->dim != p->dim) {
		return FM_EINVAL;
	}
	p->host->axpy(p->dim, (float)u->num_examples, u->delta, p->acc);
	p->weight += (double)u->num_examples;
	return FM_OK;
}

static int
pp_finish(void *st, float *global, size_t dim)
{
	pingpong *p = st;
	p->host->metric(p->self, "pongs", p->pongs);
	if (p->weight > 0) {
		p->host->axpy(dim, (float)(1.0 / p->weight), p->acc, global);
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
	.a_struct_size = sizeof(fm_aggregator_ops),
	.a_kind = FM_KIND_AGGREGATOR,
	.a_name = "pingpong",
	.a_state_size = sizeof(pingpong),
	.a_init = pp_init,
	.a_fini = pp_fini,
	.a_begin = pp_begin,
	.a_accept = pp_accept,
	.a_finish = pp_finish,
	.a_on_message = pp_on_message,
};

static const fm_component_desc pp_components[] = {
	{ FM_KIND_AGGREGATOR, "pingpong",
	    "test: FedAvg that pings every sampled client and counts pongs",
	    NULL },
};

FM_PLUGIN_DEFINE("pingpong", "1.0.0", "MIT", "messaging test aggregator",
    pp_components);

FM_PLUGIN_INIT(r, host)
{
	return host->register_component(r, &pp_ops, sizeof pp_ops);
}
