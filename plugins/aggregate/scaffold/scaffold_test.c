/* SPDX-License-Identifier: MIT */
/* scaffold_test.c: conformance of the built-in scaffold plugin, loaded as a
 * .so: a local rule (FM_KIND_LOCAL) whose server side runs beside FedAvg.
 * A server and client instances on a small in-memory network, two rounds
 * computed by hand (control variates, their messages, the client state
 * kept between rounds), the server step size, the server's c saved and
 * loaded between rounds, and malformed messages refused. */
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
	const fmi_component *fedavg;
	fmi_store *store;
	fmi_loc *inst[NCLI + 1]; /* [0] server, [i] client i of the round */
	fmi_agg *agg;            /* the server's aggregator (FedAvg) */
	end ends[NCLI + 1];
	qmsg q[16];
	int nq;
	uint32_t round;
	double lr_scale;
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
		fmi_loc *a = n->inst[m->to];
		fm_message msg = PT_MESSAGE(m->from, n->round, m->data, m->len);
		assert_non_null(a);
		FMT_PASS(fmi_inst_message(&a->h, &msg));
		free(m->data);
	}
	n->nq = 0;
}

static fmi_node_link net_links[NCLI + 1];

static fmi_loc *
net_open(net *n, int32_t id, double lr)
{
	fmi_param_in in = { "lr", 0, lr, NULL };
	fm_value v[2];
	fmi_node_link link = { &n->ends[id], net_send, NULL, NULL, net_state,
		1, 0, 0 };
	fmi_loc *a = NULL;
	n->ends[id] = (end){ n, id };
	net_links[id] = link;
	FMT_PASS(fmi_params_resolve(n->c, &in, 1, v, NULL));
	fmi_open_args args = pt_args(v, DIM,
	    id == 0 ? FM_ROLE_SERVER : FM_ROLE_CLIENT, id, 7);
	args.link = &net_links[id];
	FMT_PASS(fmi_loc_open(&a, n->c, &args, NULL));
	return a;
}

static fmi_agg *
net_open_fedavg(net *n)
{
	fmi_agg *a = NULL;
	fmi_open_args args = pt_args(NULL, DIM, FM_ROLE_SERVER,
	    FM_NODE_SERVER, 7);
	FMT_PASS(fmi_agg_open(&a, n->fedavg, &args, NULL));
	return a;
}

static int
setup(void **state)
{
	net *n = calloc(1, sizeof *n);
	if (n == NULL || fmi_registry_new(&n->reg) != FM_OK ||
	    fmt_plugin_load(n->reg, "scaffold.so") != FM_OK ||
	    fmt_plugin_load(n->reg, "fedavg.so") != FM_OK ||
	    fmi_store_new(&n->store) != FM_OK) {
		return -1;
	}
	n->c = fmi_registry_find(n->reg, FM_KIND_LOCAL, "scaffold");
	n->fedavg = fmi_registry_find(n->reg, FM_KIND_AGGREGATOR, "fedavg");
	*state = n;
	return n->c != NULL && n->fedavg != NULL ? 0 : -1;
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
	fmi_loc *a = n->inst[id];
	fm_local_task t = { sizeof t, n->round, x, DIM, 10, 1, 5, 0.5 };
	fm_local_result r = { sizeof r, n->round, x, y, DIM, 2, 10, 0.5, 1.0 };
	float w[DIM] = { 0 };
	FMT_PASS(fmi_loc_begin(a, &t));
	assert_null(((const fm_local_ops *)n->c->ops)->grad); /* a step, not
	                                                      * a gradient term */
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
	fm_round r = PT_ROUND(n->round, 2, ids, x, DIM, NCLI, n->lr_scale);
	fmi_loc *s = n->inst[0];
	float delta[2][DIM], out[DIM];
	for (int k = 0; k < 2; k++) {
		n->inst[k + 1] = net_open(n, k + 1, 1.0);
	}
	/* what the engine does on the server: the rule's round_begin before
	 * the broadcast, the aggregator's round, the updates it took to the
	 * rule, the rule's round_end on the aggregator's new model */
	FMT_PASS(fmi_loc_round_begin(s, &r));
	FMT_PASS(fmi_agg_begin(n->agg, &r));
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
		fm_update u = PT_UPDATE(k + 1, n->round, delta[k], DIM, ne[k],
		    0, 2);
		FMT_PASS(pt_agg_accept1(n->agg, &u));
		FMT_PASS(fmi_loc_accepted(s, &u, 1));
	}
	memcpy(out, x, sizeof out);
	FMT_PASS(fmi_agg_finish(n->agg, x, out, DIM));
	FMT_PASS(fmi_loc_round_end(s, &r, x, out, DIM));
	memcpy(x, out, sizeof out);
	for (int k = 0; k < 2; k++) {
		fmi_loc_close(n->inst[k + 1]); /* client instances: per task */
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
	n->agg = net_open_fedavg(n);
	n->lr_scale = 1.0;

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
	fmi_loc_close(n->inst[0]);
	n->inst[0] = NULL;
	fmi_agg_close(n->agg);
	n->agg = NULL;
}

/* Runs rounds 1 and 2 of test_two_rounds_by_hand from x = 0 on a fresh
 * client store, the server rule opened with lr (and the rounds' lr_scale
 * scale); with save_after_1 the server's state is saved after round 1 and
 * loaded into a fresh server instance (and a fresh FedAvg) for round 2.
 * x gets the model after round 2; the server's saved state after round 2
 * is returned (malloc'ed, *len). */
static void *
two_rounds(net *n, double lr, double scale, int save_after_1, float *x,
    size_t *len)
{
	float h[2][DIM];
	const float y1[2][DIM] = { { -1, 0, 1, 2 }, { 1, 1, 1, 1 } };
	const float y2[2][DIM] = { { 0.5f, 0.75f, 1.0f, 0.25f },
		{ 1.5f, 0.75f, 1.0f, 1.25f } };
	const uint64_t ne[2] = { 1, 3 };
	fmi_store_free(n->store);
	FMT_PASS(fmi_store_new(&n->store));
	memset(x, 0, DIM * sizeof(float));
	n->inst[0] = net_open(n, 0, lr);
	n->agg = net_open_fedavg(n);
	n->lr_scale = scale;
	n->round = 1;
	server_round(n, x, y1, ne, h);
	if (save_after_1) {
		size_t l1;
		void *s1 = pt_save(&n->inst[0]->h, &l1);
		fmi_loc_close(n->inst[0]);
		fmi_agg_close(n->agg);
		n->inst[0] = net_open(n, 0, lr);
		n->agg = net_open_fedavg(n);
		pt_load_checked(&n->inst[0]->h, s1, l1);
		free(s1);
	}
	n->round = 2;
	server_round(n, x, y2, ne, h);
	void *s2 = pt_save(&n->inst[0]->h, len);
	fmi_loc_close(n->inst[0]);
	n->inst[0] = NULL;
	fmi_agg_close(n->agg);
	n->agg = NULL;
	return s2;
}

/* The server's c, saved after round 1 and loaded into a fresh instance,
 * gives round 2 bit for bit (model and c); a client instance saves no c
 * and refuses a server's state. */
static void
test_save_load(void **state)
{
	net *n = *state;
	float xa[DIM], xb[DIM];
	size_t la, lb;
	void *sa = two_rounds(n, 1.0, 1.0, 0, xa, &la);
	void *sb = two_rounds(n, 1.0, 1.0, 1, xb, &lb);
	assert_memory_equal(xa, xb, sizeof xa);
	assert_int_equal(la, lb);
	assert_memory_equal(sa, sb, la);
	fmi_loc *cl = net_open(n, 3, 1.0);
	size_t lc;
	void *sc = pt_save(&cl->h, &lc);
	assert_true(lc < la);
	assert_int_not_equal(fmi_inst_load(&cl->h, sa, la), FM_OK);
	FMT_PASS(fmi_inst_load(&cl->h, sc, lc));
	fmi_loc_close(cl);
	free(sa);
	free(sb);
	free(sc);
}

/* lr = lr_scale = 1: the model is FedAvg's, bit for bit (round_end leaves
 * it); otherwise out = global + lr lr_scale (out - global), SCAFFOLD's
 * x + eta_g mean (lr and lr_scale multiply). */
static void
test_server_step(void **state)
{
	net *n = *state;
	float x1[DIM], x2[DIM], x3[DIM];
	size_t l1, l2, l3;
	void *s1 = two_rounds(n, 1.0, 1.0, 0, x1, &l1);
	void *s2 = two_rounds(n, 0.5, 1.0, 0, x2, &l2);
	void *s3 = two_rounds(n, 1.0, 0.5, 0, x3, &l3);
	/* round 1 from 0: x = eta mean1; round 2: x += eta mean2, where the
	 * clients' y2 are absolute models: mean2 = (y2_1 + 3 y2_2)/4 - x */
	const float m1[DIM] = { 0.5f, 0.75f, 1.0f, 1.25f };
	const float yb[DIM] = { 1.25f, 0.75f, 1.0f, 1.0f }; /* (y + 3 y')/4 */
	float want[DIM];
	for (int i = 0; i < DIM; i++) {
		float r1 = (float)(0.0 + 0.5 * ((double)m1[i] - 0.0));
		want[i] = (float)((double)r1 + 0.5 * ((double)yb[i] - r1));
	}
	FMT_NEAR(x2, want, DIM, 1e-6);
	assert_memory_equal(x2, x3, sizeof x2); /* lr 0.5 == lr_scale 0.5 */
	FMT_NEAR(x1, yb, DIM, 1e-6); /* eta 1: FedAvg reaches yb */
	assert_int_equal(l1, l2);
	free(s1);
	free(s2);
	free(s3);
}

/* A client that got no c this round fails rather than train without it;
 * malformed messages are refused on both sides. */
static void
test_refusals(void **state)
{
	net *n = *state;
	float x[DIM] = { 0 }, junk[DIM + 4] = { 0 };
	n->round = 5;
	fmi_loc *cl = net_open(n, 3, 1.0), *sv = net_open(n, 0, 1.0);
	fm_local_task t = { sizeof t, 5, x, DIM, 10, 1, 5, 0.5 };
	FMT_FAIL(fmi_loc_begin(cl, &t), FM_EPROTO);
	fm_message short_msg = PT_MESSAGE(0, 5, junk, 8);
	FMT_FAIL(fmi_inst_message(&cl->h, &short_msg), FM_EPROTO);
	fm_message no_magic = PT_MESSAGE(0, 5, junk, 16 + DIM * sizeof(float));
	FMT_FAIL(fmi_inst_message(&cl->h, &no_magic), FM_EPROTO);
	int32_t ids[1] = { 3 };
	fm_round r = PT_ROUND(5, 1, ids, x, DIM, NCLI, 1.0);
	n->inst[3] = cl;
	FMT_PASS(fmi_loc_round_begin(sv, &r));
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
	fmi_loc_close(cl);
	fmi_loc_close(sv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_rounds_by_hand),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_server_step),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
