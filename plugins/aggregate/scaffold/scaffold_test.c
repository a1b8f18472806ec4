/* SPDX-License-Identifier: MIT */
/* scaffold_test.c: conformance of the built-in scaffold plugin, loaded as a
 * .so: a server and client instances on a small in-memory network, two
 * rounds computed by hand (control variates, their messages, the client
 * state kept between rounds), and malformed messages refused. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "fm_plugin_test.h"

#include "../../ptest.h"
#include "node/store.h"

#define DIM 4
#define NCLI 4 /* the population N */

typedef struct net net;
typedef struct end {
	net *n;
	int32_t id;
} end;

typedef struct qmsg {
	int32_t from, to;
	size_t len;
	unsigned char *data;
} qmsg;

struct net {
	fmi_registry *reg;
	const fmi_component *c;
	fmi_store *store;
	fmi_agg *inst[NCLI + 1]; /* [0] server, [i] client i of the round */
	end ends[NCLI + 1];
	qmsg q[16];
	int nq;
	uint32_t round;
};

static int
net_send(void *node, const char *comp, int32_t to, const void *data,
    size_t len)
{
	end *e = node;
	net *n = e->n;
	assert_string_equal(comp, "scaffold");
	if (to < 0 || to > NCLI || n->nq == 16) {
		return FM_ENOENT;
	}
	qmsg *m = &n->q[n->nq++];
	m->from = e->id;
	m->to = to;
	m->len = len;
	m->data = malloc(len);
	assert_non_null(m->data);
	memcpy(m->data, data, len);
	return FM_OK;
}

static void *
net_state(void *node, const char *comp, size_t size)
{
	end *e = node;
	return fmi_store_get(e->n->store, e->id, comp, size, e);
}

/* Delivers the queued messages; every one must be accepted. */
static void
net_deliver(net *n)
{
	for (int i = 0; i < n->nq; i++) {
		qmsg *m = &n->q[i];
		fmi_agg *a = n->inst[m->to];
		fm_message msg = PT_MESSAGE(m->from, n->round, m->data, m->len);
		assert_non_null(a);
		FMT_PASS(fmi_inst_message(&a->h, &msg));
		free(m->data);
	}
	n->nq = 0;
}

static fmi_agg *
net_open(net *n, int32_t id, double lr)
{
	fmi_param_in in = { "lr", 0, lr, NULL };
	fm_value v[2];
	fmi_node_link link = { &n->ends[id], net_send, NULL, NULL, net_state };
	fmi_agg *a = NULL;
	n->ends[id] = (end){ n, id };
	FMT_PASS(fmi_params_resolve(n->c, &in, 1, v, NULL));
	FMT_PASS(fmi_agg_open(&a, n->c,
	    &(fmi_open_args){ .params = v, .dim = DIM, .role = id == 0 ? FM_ROLE_SERVER :
	    FM_ROLE_CLIENT, .node_id = id, .seed = 7, .link = &link },
	    NULL));
	return a;
}

static int
setup(void **state)
{
	net *n = calloc(1, sizeof *n);
	if (n == NULL || fmi_registry_new(&n->reg) != FM_OK ||
	    fmt_plugin_load(n->reg, "scaffold.so") != FM_OK ||
	    fmi_store_new(&n->store) != FM_OK) {
		return -1;
	}
	n->c = fmi_registry_find(n->reg, FM_KIND_AGGREGATOR, "scaffold");
	*state = n;
	return n->c != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	net *n = *state;
	fmi_store_free(n->store);
	fmi_registry_free(n->reg);
	free(n);
	return 0;
}

/* One client's local training, "trained" to y in K = 2 steps of lr 0.5
 * (so K lr = 1). Returns the correction h = c - c_i the client applies
 * after each step (w -= lr h). */
static void
client_train(net *n, int32_t id, const float *x, const float *y,
    float *h_out)
{
	fmi_agg *a = n->inst[id];
	fm_local_task t = { sizeof t, n->round, x, DIM, 10, 1, 5, 0.5 };
	fm_local_result r = { sizeof r, n->round, x, y, DIM, 2, 10, 0.5, 1.0 };
	float w[DIM] = { 0 };
	FMT_PASS(fmi_loc_begin(a, &t));
	assert_null(a->ops->a_local_grad); /* a step, not a gradient term */
	fmi_loc_step(a, w, DIM, 2.0); /* w = -2 h */
	for (int i = 0; i < DIM; i++) {
		h_out[i] = -0.5f * w[i];
	}
	FMT_PASS(fmi_loc_end(a, &r));
}

static void
server_round(net *n, float *x, const float (*y)[DIM], const uint64_t *ne,
    float (*h)[DIM])
{
	int32_t ids[2] = { 1, 2 };
	fm_round r = PT_ROUND(n->round, 2, ids, x, DIM, NCLI, 1.0);
	fmi_agg *s = n->inst[0];
	float delta[2][DIM];
	for (int k = 0; k < 2; k++) {
		n->inst[k + 1] = net_open(n, k + 1, 1.0);
	}
	FMT_PASS(fmi_agg_begin(s, &r));
	assert_int_equal(n->nq, 2); /* c to each sampled client */
	net_deliver(n);
	for (int k = 0; k < 2; k++) {
		client_train(n, k + 1, x, y[k], h[k]);
	}
	assert_int_equal(n->nq, 2); /* dc_i from each */
	net_deliver(n);
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < DIM; i++) {
			delta[k][i] = y[k][i] - x[i];
		}
		fm_update u = PT_UPDATE(k + 1, n->round, delta[k], DIM, ne[k], 0, 2);
		FMT_PASS(pt_agg_accept1(s, &u));
	}
	FMT_PASS(pt_agg_finish(s, x, DIM));
	for (int k = 0; k < 2; k++) {
		fmi_agg_close(n->inst[k + 1]); /* client instances: per task */
		n->inst[k + 1] = NULL;
	}
}

static void
test_two_rounds_by_hand(void **state)
{
	net *n = *state;
	float x[DIM] = { 0, 0, 0, 0 }, h[2][DIM];
	const float y1[2][DIM] = { { -1, 0, 1, 2 }, { 1, 1, 1, 1 } };
	const uint64_t ne[2] = { 1, 3 };
	const float zero[DIM] = { 0 };
	n->inst[0] = net_open(n, 0, 1.0);

	/* round 1: c = c_i = 0, so h = 0 and plain FedAvg moves x;
	 * dc_i = (x - y_i) / (K lr) - c = -y_i. */
	n->round = 1;
	server_round(n, x, y1, ne, h);
	FMT_NEAR(h[0], zero, DIM, 0);
	FMT_NEAR(h[1], zero, DIM, 0);
	const float x1[DIM] = { 0.5f, 0.75f, 1.0f, 1.25f }; /* (y1 + 3 y2)/4 */
	FMT_NEAR(x, x1, DIM, 1e-6);
	float *c1 = fmi_store_get(n->store, 1, "scaffold", DIM * sizeof(float),
	    NULL);
	const float c1_want[DIM] = { 1, 0, -1, -2 };
	FMT_NEAR(c1, c1_want, DIM, 1e-6); /* c_1 kept by the host */

	/* round 2: c = (dc_1 + dc_2) / N = { 0, -0.25, -0.5, -0.75 };
	 * client 1 adds h = c - c_1. */
	n->round = 2;
	const float y2[2][DIM] = { { 0.5f, 0.75f, 1.0f, 0.25f },
		{ 1.5f, 0.75f, 1.0f, 1.25f } };
	server_round(n, x, y2, ne, h);
	const float h1[DIM] = { -1, -0.25f, 0.5f, 1.25f };
	const float h2[DIM] = { 1, 0.75f, 0.5f, 0.25f }; /* c - {-1,-1,-1,-1} */
	FMT_NEAR(h[0], h1, DIM, 1e-6);
	FMT_NEAR(h[1], h2, DIM, 1e-6);
	/* option II: c_1+ = c_1 - c + (x - y) / (K lr); x - y = {0,0,0,1} */
	const float c1_r2[DIM] = { 1, 0.25f, -0.5f, -0.25f };
	FMT_NEAR(c1, c1_r2, DIM, 1e-6);
	fmi_agg_close(n->inst[0]);
	n->inst[0] = NULL;
}

/* A client that got no c this round fails rather than train without it;
 * malformed messages are refused on both sides. */
static void
test_refusals(void **state)
{
	net *n = *state;
	float x[DIM] = { 0 }, junk[DIM + 4] = { 0 };
	n->round = 5;
	fmi_agg *cl = net_open(n, 3, 1.0), *sv = net_open(n, 0, 1.0);
	fm_local_task t = { sizeof t, 5, x, DIM, 10, 1, 5, 0.5 };
	FMT_FAIL(fmi_loc_begin(cl, &t), FM_EPROTO);
	fm_message short_msg = PT_MESSAGE(0, 5, junk, 8);
	FMT_FAIL(fmi_inst_message(&cl->h, &short_msg), FM_EPROTO);
	fm_message no_magic = PT_MESSAGE(0, 5, junk, 16 + DIM * sizeof(float));
	FMT_FAIL(fmi_inst_message(&cl->h, &no_magic), FM_EPROTO);
	int32_t ids[1] = { 3 };
	fm_round r = PT_ROUND(5, 1, ids, x, DIM, NCLI, 1.0);
	n->inst[3] = cl;
	FMT_PASS(fmi_agg_begin(sv, &r));
	/* the server's own message (kind "down") is no client's dc_i */
	qmsg *down = &n->q[0];
	fm_message back = PT_MESSAGE(3, 5, down->data, down->len);
	FMT_FAIL(fmi_inst_message(&sv->h, &back), FM_EPROTO);
	net_deliver(n); /* now the client has c */
	FMT_PASS(fmi_loc_begin(cl, &t));
	fm_local_task bad = t;
	bad.dim = DIM + 1;
	FMT_FAIL(fmi_loc_begin(cl, &bad), FM_EINVAL);
	n->inst[3] = NULL;
	fmi_agg_close(cl);
	fmi_agg_close(sv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_rounds_by_hand),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
