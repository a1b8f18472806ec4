/* SPDX-License-Identifier: MIT */
/* talkdef.c: a defence that runs a protocol with its clients. */
#include <string.h>

#include "fedmesh/plugin.h"

/*
 * Aggregating node: begin sends "hello" to every sampled client and sets
 * a 0 ms timer (it fires while the node waits for the round's updates);
 * base.on_message counts the round's "ack"s; apply keeps
 * every row and reports the metrics "acks" and "def_timers". Client
 * (FM_ROLE_CLIENT): answers "hello" with "ack". Shows that a defence,
 * like any kind, has a node link (messages, timers, metrics).
 */
typedef struct talkdef {
	const fm_instance *self;
	const fm_host_api *host;
	uint32_t round, acks, timers;
} talkdef;

static int
td_init(void *st, const fm_instance *inst)
{
	talkdef *t = st;
	t->self = inst;
	t->host = inst->host;
	return FM_OK;
}

static void
td_fini(void *st)
{
	(void)st;
}

static int
td_begin(void *st, const fm_round *r)
{
	talkdef *t = st;
	t->round = r->round;
	t->acks = 0;
	for (uint32_t i = 0; i < r->nclients; i++) {
		int rv = t->host->send(t->self, r->clients[i], "hello", 5);
		if (rv != FM_OK) {
			t->host->set_error(t->self, "hello to %d: %s",
			    r->clients[i], t->host->strerror(rv));
			return rv;
		}
	}
	return t->host->timer(t->self, 0, r->round); /* at the next chance */
}

static int
td_apply(void *st, fm_rows *r)
{
	talkdef *t = st;
	t->host->metric(t->self, "acks", t->acks);
	t->host->metric(t->self, "def_timers", t->timers);
	r->nkeep = r->n; /* keep and keep_examples come filled */
	return FM_OK;
}

static int
td_on_message(void *st, const fm_message *m)
{
	talkdef *t = st;
	if (t->self->role == FM_ROLE_CLIENT && m->len == 5 &&
	    memcmp(m->data, "hello", 5) == 0) {
		return t->host->send(t->self, m->from, "ack", 3);
	}
	if (t->self->role != FM_ROLE_CLIENT && m->len == 3 &&
	    memcmp(m->data, "ack", 3) == 0 && m->round == t->round) {
		t->acks++;
		return FM_OK;
	}
	return FM_EPROTO;
}

static int
td_on_timer(void *st, uint64_t tag)
{
	talkdef *t = st;
	t->timers += tag == t->round;
	return FM_OK;
}

static const fm_defence_ops td_ops = {
	.base = { sizeof(fm_defence_ops), FM_KIND_DEFENCE, sizeof(talkdef),
		td_init, td_fini, td_on_message, td_on_timer, NULL, NULL },
	.apply = td_apply,
	.begin = td_begin,
};

static const fm_component_desc td_components[] = {
	FM_COMPONENT(FM_KIND_DEFENCE, "talkdef",
	    "test: a defence that says hello to its clients and counts acks",
	    NULL, td_ops, 0),
};

FM_PLUGIN("talkdef", "1.0.0", "MIT", "messaging test defence",
    td_components, NULL);
