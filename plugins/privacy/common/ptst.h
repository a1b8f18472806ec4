/* SPDX-License-Identifier: MIT */
/*
 * ptst.h: what the privacy conformance tests share: a fake network of
 * one server instance and its client instances (host->send is queued,
 * pt_flush delivers it like the engine: to the instance of the node the
 * message is for), the metrics the instances report, and opening
 * instances with parameters by name. Rows come from the defence tests'
 * dtest.h. Test-only; include after fm_test.h.
 */
#ifndef FM_PRIVACY_PTST_H
#define FM_PRIVACY_PTST_H

#include <math.h>

#include "../../defence/common/dtest.h"

#define PT_MAX_MSG 8192
#define PT_MAX_NODES 1024

typedef struct pt_msg {
	int32_t from, to;
	uint32_t round;
	unsigned char data[16];
	size_t len;
} pt_msg;

struct pt_net;

/* One node's end of the link: its id and the network. */
typedef struct pt_end {
	struct pt_net *net;
	int32_t id;
} pt_end;

typedef struct pt_net {
	uint32_t round;          /* stamped on the messages sent */
	pt_msg q[PT_MAX_MSG];
	uint32_t nq;
	struct { char name[32]; double v; } met[32];
	uint32_t nmet;
	pt_end ends[PT_MAX_NODES]; /* by node id */
	fmi_node_link link[PT_MAX_NODES];
	fmi_priv *inst[PT_MAX_NODES]; /* by node id, NULL: none */
} pt_net;

static int
pt_send(void *node, const char *comp, int32_t to, const void *data,
    size_t len)
{
	pt_end *e = node;
	pt_net *n = e->net;
	(void)comp;
	if (n->nq == PT_MAX_MSG || len > sizeof n->q[0].data) {
		return FM_ENOMEM;
	}
	if (to < 0 || to >= PT_MAX_NODES) {
		return FM_ENOENT;
	}
	pt_msg *m = &n->q[n->nq++];
	m->from = e->id;
	m->to = to;
	m->round = n->round;
	memcpy(m->data, data, len);
	m->len = len;
	return FM_OK;
}

static void
pt_metric(void *node, const char *name, double value)
{
	pt_net *n = ((pt_end *)node)->net;
	for (uint32_t i = 0; i < n->nmet; i++) {
		if (strcmp(n->met[i].name, name) == 0) {
			n->met[i].v = value;
			return;
		}
	}
	if (n->nmet < 32) {
		snprintf(n->met[n->nmet].name, sizeof n->met[0].name, "%s", name);
		n->met[n->nmet++].v = value;
	}
}

/* The metric name's last value, NAN when none was reported. */
static inline double
pt_get(const pt_net *n, const char *name)
{
	for (uint32_t i = 0; i < n->nmet; i++) {
		if (strcmp(n->met[i].name, name) == 0) {
			return n->met[i].v;
		}
	}
	return NAN;
}

static inline pt_net *
pt_net_new(void)
{
	pt_net *n = calloc(1, sizeof *n);
	assert_non_null(n);
	return n;
}

/* Opens c on node id (FM_NODE_SERVER: the aggregating node, seeing at
 * most max_updates a round) with in[nin]; the code, the instance in
 * n->inst[id] on success. */
static inline int
pt_try_open(pt_net *n, const fmi_component *c, int32_t id,
    const fmi_param_in *in, size_t nin, size_t dim, uint32_t max_updates,
    fm_error *e)
{
	fm_value v[16];
	int rv = fmi_params_resolve(c, in, nin, v, e);
	if (rv != FM_OK) {
		return rv;
	}
	n->ends[id] = (pt_end){ n, id };
	n->link[id] = (fmi_node_link){ .node = &n->ends[id], .send = pt_send,
		.metric = pt_metric, .threads = 1 };
	fmi_open_args a = pt_args(v, dim, id == FM_NODE_SERVER ?
	    FM_ROLE_SERVER : FM_ROLE_CLIENT, id, 1000 + (uint64_t)id);
	a.max_updates = max_updates;
	a.link = &n->link[id];
	return fmi_priv_open(&n->inst[id], c, &a, e);
}

static inline fmi_priv *
pt_open(pt_net *n, const fmi_component *c, int32_t id,
    const fmi_param_in *in, size_t nin, size_t dim, uint32_t max_updates)
{
	fm_error e;
	int rv = pt_try_open(n, c, id, in, nin, dim, max_updates, &e);
	if (rv != FM_OK) {
		fail_msg("open %s on node %d: %s", c->desc->name, (int)id, e.msg);
	}
	return n->inst[id];
}

/* Delivers the queued messages in order to their nodes' instances (one
 * that has none drops them); returns how many were delivered. */
static inline uint32_t
pt_flush(pt_net *n)
{
	uint32_t got = 0;
	for (uint32_t i = 0; i < n->nq; i++) {
		const pt_msg *q = &n->q[i];
		fmi_priv *to = n->inst[q->to];
		fm_message m = PT_MESSAGE(q->from, q->round, q->data, q->len);
		if (to != NULL && fmi_inst_message(&to->h, &m) == FM_OK) {
			got++;
		}
	}
	n->nq = 0;
	return got;
}

static inline void
pt_net_free(pt_net *n)
{
	for (int i = 0; i < PT_MAX_NODES; i++) {
		fmi_priv_close(n->inst[i]);
	}
	free(n);
}

/* A client's update of round `round` as the engine hands it over. */
static inline fm_private_update
pt_update(uint32_t round, int32_t client, float *delta, size_t dim,
    uint64_t seed)
{
	return (fm_private_update){ .struct_size = sizeof(fm_private_update),
		.round = round, .client = client, .delta = delta, .dim = dim,
		.num_examples = 10, .seed = seed };
}

/* Every row of t passes with its own count (as the engine hands the
 * privacy stage the rows when no defence ran); round set. */
static inline void
pt_pass_all(dt_round *t, uint32_t round, uint64_t seed)
{
	t->r.round = round;
	t->r.seed = seed;
	for (uint32_t i = 0; i < t->r.n; i++) {
		t->up[i].round = round;
		t->keep[i] = i;
		t->ke[i] = t->up[i].num_examples;
	}
	t->r.nkeep = t->r.n;
}

/* The sample standard deviation of x[n]. */
static inline double
pt_std(const float *x, size_t n)
{
	double s = 0, ss = 0;
	for (size_t i = 0; i < n; i++) {
		s += x[i];
		ss += (double)x[i] * x[i];
	}
	double mean = s / (double)n;
	return sqrt(ss / (double)n - mean * mean);
}

#endif /* FM_PRIVACY_PTST_H */
