/* SPDX-License-Identifier: MIT */
/* server_links.c: the server's plugin instances talk to their clients
 * (messages, timers, metrics); messages an edge sends from its round's
 * begin are held until the client's training task goes out. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"

void
srv_msg(fmi_server *s, fmi_msg *m, uint32_t type, int32_t to)
{
	memset(m, 0, sizeof *m);
	m->type = type;
	m->fed = fmi_fed_id(s->cfg->seed);
	m->round = s->round;
	m->from = FM_NODE_SERVER;
	m->to = to;
	m->seq = ++s->seq;
}

typedef struct srv_held {
	fmi_msg m;
	void *data;
} srv_held;

static int
srv_hold_msg(fmi_server *s, const fmi_msg *m, const void *data, size_t len)
{
	if (s->nheld == s->capheld) {
		uint32_t cap = s->capheld ? 2 * s->capheld : 64;
		srv_held *h = realloc(s->held, cap * sizeof *h);
		if (h == NULL) {
			return FM_ENOMEM;
		}
		s->held = h;
		s->capheld = cap;
	}
	srv_held *h = &s->held[s->nheld];
	if ((h->data = malloc(len ? len : 1)) == NULL) {
		return FM_ENOMEM;
	}
	memcpy(h->data, data, len);
	h->m = *m;
	s->nheld++;
	return FM_OK;
}

/* Sends the held messages for client `to` (node id), in order, to its
 * host; with host NULL (the client drops out) just forgets them. */
void
srv_flush_held(fmi_server *s, int32_t to, const char *host)
{
	for (uint32_t i = 0; i < s->nheld; i++) {
		srv_held *h = &s->held[i];
		if (h->data != NULL && h->m.to == to) {
			if (host != NULL) {
				(void)fmi_tran_send_bytes(s->t, host, &h->m,
				    h->data, h->m.n);
			}
			free(h->data);
			h->data = NULL;
		}
	}
}

void
srv_drop_held(fmi_server *s)
{
	for (uint32_t i = 0; i < s->nheld; i++) {
		free(s->held[i].data);
	}
	s->nheld = 0;
}

/* An edge aggregator reaches the sampled clients of its edge. During
 * a_begin the messages are held, and each goes out right before its
 * client's TRAIN request (see srv_broadcast). */
int
srv_plugin_send(void *node, const char *comp, int32_t to, const void *data,
    size_t len)
{
	srv_agg *n = node;
	fmi_server *s = n->s;
	if (to < 1 || (uint32_t)to > s->cfg->part->nclients ||
	    s->order[to - 1] == 0) {
		return FM_ENOENT; /* not in this round */
	}
	srv_slot *slot = &s->slots[s->order[to - 1] - 1];
	if (&s->nodes[slot->edge] != n) {
		return FM_ENOENT; /* a client of another edge */
	}
	fmi_msg m;
	fmi_plugin_msg(&m, fmi_fed_id(s->cfg->seed), s->round, FM_NODE_SERVER,
	    to, ++s->seq, comp, len);
	if (s->holding) {
		return srv_hold_msg(s, &m, data, len);
	}
	return fmi_tran_send_bytes(s->t, s->hosts->names[slot->host], &m, data,
	    len);
}

/* Aggregator n's instance of component `name` (its aggregator, local
 * rule, defence or privacy mechanism: every kind talks to its clients),
 * or NULL. */
fmi_inst_head *
srv_node_instance(srv_agg *n, const char *name)
{
	fmi_inst_head *h[4] = { n->agg != NULL ? &n->agg->h : NULL,
		n->loc != NULL ? &n->loc->h : NULL,
		n->def != NULL ? &n->def->h : NULL,
		n->priv != NULL ? &n->priv->h : NULL };
	for (int i = 0; i < 4; i++) {
		if (h[i] != NULL && strcmp(name, h[i]->comp->desc->name) == 0) {
			return h[i];
		}
	}
	return NULL;
}

int
srv_plugin_timer(void *node, const char *comp, uint32_t ms, uint64_t tag)
{
	srv_agg *n = node;
	fmi_inst_head *h = srv_node_instance(n, comp);
	return h != NULL ? fmi_timers_add(&n->s->timers, h, ms, tag)
	                 : FM_ENOENT;
}

void
srv_plugin_metric(void *node, const char *name, double value)
{
	srv_agg *n = node;
	srv_metric(n->s, name, value);
}

/* The instance on the client's aggregating node that a plugin message
 * from client `from` for component `name` is for (srv_node_instance);
 * NULL if none. */
static fmi_inst_head *
srv_plugin_target(fmi_server *s, int32_t from, const char *name)
{
	srv_agg *n = NULL;
	if (s->levels == 1) {
		n = &s->nodes[0];
	} else if (from >= 1 && (uint32_t)from <= s->cfg->part->nclients) {
		n = &s->nodes[srv_edge_of(s, (uint32_t)from - 1)];
	}
	return n != NULL ? srv_node_instance(n, name) : NULL;
}

void
srv_on_plugin(fmi_server *s, fmi_rmsg *r)
{
	fmi_inst_head *h = srv_plugin_target(s, r->m.from, r->m.plugin);
	char why[256];
	if (r->m.round == s->round &&
	    srv_sender_why(s, r, why, sizeof why) != NULL) {
		fm_log(FM_LOG_WARN, "FM-SENDER", "dropped message for plugin "
		    "'%s' from node %d through '%s': %s", r->m.plugin,
		    r->m.from, r->peer, why);
	} else if (h == NULL || s->closed || !fmi_inst_handles_messages(h) ||
	    r->m.round != s->round) {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-MSG", "dropped message for "
		    "plugin '%s' from node %d", r->m.plugin, r->m.from);
	} else {
		(void)fmi_inst_deliver(h, r);
	}
	fmi_rmsg_close(r);
}
