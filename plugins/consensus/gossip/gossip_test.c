/* SPDX-License-Identifier: MIT */
/* gossip_test.c: conformance of the built-in gossip consensus plugin
 * (D-PSGD gossip averaging), loaded as a .so. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../testnet.h"

#define DIM 3

typedef struct fixture {
	fmi_registry *reg;
	const fmi_component *c;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, "gossip.so") != FM_OK) {
		return -1;
	}
	f->c = fmi_registry_find(f->reg, FM_KIND_CONSENSUS, "gossip");
	*state = f;
	return f->c != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	fmi_registry_free(f->reg);
	free(f);
	return 0;
}

static fmi_cons *
open_step(const fixture *f, double step)
{
	const fmi_param_in in = { "step", 0, step, NULL };
	return tn_open(f->c, &in, step > 0 ? 1 : 0, DIM, 0);
}

static void
test_abi(void **state)
{
	const fixture *f = *state;
	const fm_plugin_info *in = f->c->plugin;
	const fm_consensus_ops *ops = f->c->ops;
	assert_int_equal(in->magic, FM_PLUGIN_MAGIC);
	assert_int_equal(in->abi_major, FM_PLUGIN_ABI_MAJOR);
	assert_string_equal(in->name, "gossip");
	assert_int_equal(in->ncomponents, 1);
	assert_int_equal(ops->base.kind, FM_KIND_CONSENSUS);
	assert_string_equal(f->c->desc->name, "gossip");
	assert_null(ops->outgoing); /* no mass: plain averaging */
	assert_null(ops->base.on_message);
	assert_int_equal(fmi_component_nparams(f->c), 1);
	const fm_param_desc *p = &f->c->desc->params[0];
	assert_string_equal(p->name, "step");
	assert_int_equal(p->type, FM_PARAM_REAL);
	assert_true(p->def == 1.0 && p->min == 0.0 && p->max == 1.0);
}

/*
 * Own { 1, 2, 3 } (W_ii 0.5), peer 1 { 3, 2, 1 } and peer 4 { 5, -2, 7 }
 * (0.25 each): step 1 gives 0.5 own + 0.25 a + 0.25 b = { 2.5, 1, 3.5 };
 * step 0.5 gives own + 0.5 (that - own) = { 1.75, 1.5, 3.25 }.
 */
static const float own_x[DIM] = { 1, 2, 3 };
static const float a_x[DIM] = { 3, 2, 1 };
static const float b_x[DIM] = { 5, -2, 7 };

static void
mix3(fmi_cons *k, float *out, uint32_t nnb, uint32_t skip)
{
	fm_peer_model all[2] = { PT_PEER(1, 2, a_x, 0.25, 0, 5),
		PT_PEER(4, 2, b_x, 0.25, 0, 5) };
	fm_peer_model nb[2];
	uint32_t n = 0;
	for (uint32_t i = 0; i < nnb; i++) {
		if (i != skip) {
			nb[n++] = all[i];
		}
	}
	fm_peer_model own = PT_PEER(0, 2, own_x, 0.5, 0, 5);
	fm_mix m = PT_MIX(1, 0, 2, 2, &own, nb, n, 0);
	memcpy(out, own_x, sizeof own_x);
	FMT_PASS(tn_mix(k, &m, out, DIM));
}

static void
test_hand_computed(void **state)
{
	const fixture *f = *state;
	const float want1[DIM] = { 2.5f, 1.0f, 3.5f };
	const float want_half[DIM] = { 1.75f, 1.5f, 3.25f };
	float x[DIM];
	fmi_cons *k = open_step(f, 0); /* defaults: step 1 */
	fmi_cons *h = open_step(f, 0.5);
	mix3(k, x, 2, 9);
	FMT_NEAR(x, want1, DIM, 1e-6);
	mix3(h, x, 2, 9);
	FMT_NEAR(x, want_half, DIM, 1e-6);
	fmi_cons_close(k);
	fmi_cons_close(h);
}

/* Peer 4 absent: its 0.25 stays with the own model, 0.75 own + 0.25 a =
 * { 1.5, 2, 2.5 }; nobody arrived: the own model, bit for bit. */
static void
test_absent_neighbours(void **state)
{
	const fixture *f = *state;
	const float want[DIM] = { 1.5f, 2.0f, 2.5f };
	float x[DIM];
	fmi_cons *k = open_step(f, 0);
	mix3(k, x, 2, 1);
	FMT_NEAR(x, want, DIM, 1e-6);
	mix3(k, x, 0, 9);
	assert_memory_equal(x, own_x, sizeof x);
	fmi_cons_close(k);
}

/* Random weights (summing to at most 1) and random absences, steps 1 and
 * 0.3: every coordinate stays within [min, max] of the own model and the
 * neighbours that arrived, i.e. the mix is convex. */
static void
convex_trial(fmi_cons *k, fm_rng *r)
{
	const fm_host_api *h = fmi_host_api();
	float xs[5][DIM], out[DIM];
	fm_peer_model nb[4];
	uint32_t n = 0;
	double left = 1.0;
	for (int j = 0; j < 5; j++) {
		for (int d = 0; d < DIM; d++) {
			xs[j][d] = (float)(h->rng_normal(r) * 10);
		}
	}
	for (uint32_t j = 1; j < 5; j++) {
		double w = left * h->rng_uniform(r) * 0.5;
		left -= w;
		if (h->rng_uniform(r) < 0.6) { /* arrived */
			nb[n++] = (fm_peer_model) PT_PEER((int32_t)j, 1, xs[j],
			    w, 0, 1);
		}
	}
	fm_peer_model own = PT_PEER(0, 4, xs[0], left, 0, 1);
	fm_mix m = PT_MIX(1, 0, 4, 4, &own, nb, n, 0);
	memcpy(out, xs[0], sizeof out);
	FMT_PASS(tn_mix(k, &m, out, DIM));
	for (int d = 0; d < DIM; d++) {
		float lo = xs[0][d], hi = xs[0][d];
		for (uint32_t j = 0; j < n; j++) {
			lo = nb[j].params[d] < lo ? nb[j].params[d] : lo;
			hi = nb[j].params[d] > hi ? nb[j].params[d] : hi;
		}
		assert_true(out[d] >= lo - 1e-5f && out[d] <= hi + 1e-5f);
	}
}

static void
test_convex_with_absences(void **state)
{
	const fixture *f = *state;
	fm_rng r;
	fmi_host_api()->rng_seed(&r, 7, 0);
	fmi_cons *k1 = open_step(f, 0), *k3 = open_step(f, 0.3);
	for (int t = 0; t < 500; t++) {
		convex_trial(k1, &r);
		convex_trial(k3, &r);
	}
	fmi_cons_close(k1);
	fmi_cons_close(k3);
}

/* A 5-peer ring with Metropolis-Hastings weights (1/3 everywhere). */
static void
ring5(tn_net *t, const fixture *f, const fmi_param_in *in, size_t nin)
{
	static const float x0[5][DIM] = { { 1, 0, -3 }, { 4, 2, 0 },
		{ -2, 8, 1 }, { 0, 0, 10 }, { 7, -5, 2 } };
	tn_init(t, 5, DIM, f->c, in, nin);
	for (uint32_t i = 0; i < 5; i++) {
		tn_edge(t, i, (i + 1) % 5, 1);
		memcpy(t->x[i], x0[i], sizeof x0[i]);
	}
	tn_weights_mh(t);
}

/* One full round keeps the network sum; 200 rounds reach the average
 * (second eigenvalue (1 + 2 cos(2 pi / 5)) / 3 = 0.539). */
static void
test_ring_sum_and_average(void **state)
{
	const fixture *f = *state;
	tn_net t;
	double avg[DIM], sum1[DIM];
	ring5(&t, f, NULL, 0);
	for (size_t k = 0; k < DIM; k++) {
		avg[k] = tn_mean(&t, k);
	}
	assert_true(tn_max_err(&t, avg) > 5);
	tn_round(&t);
	for (size_t k = 0; k < DIM; k++) {
		sum1[k] = tn_mean(&t, k) * 5;
		assert_true(fabs(sum1[k] - avg[k] * 5) < 1e-5);
	}
	assert_true(tn_max_err(&t, avg) < 5); /* it mixed */
	for (int r = 1; r < 200; r++) {
		tn_round(&t);
	}
	double err = tn_max_err(&t, avg);
	printf("gossip ring5: max |x_i - avg| after 200 rounds = %.3g\n", err);
	assert_true(err < 1e-5);
	tn_fini(&t);
}

/* step 0.5 converges too (slower), to the same average. */
static void
test_ring_step(void **state)
{
	const fixture *f = *state;
	const fmi_param_in in = { "step", 0, 0.5, NULL };
	tn_net t;
	double avg[DIM];
	ring5(&t, f, &in, 1);
	for (size_t k = 0; k < DIM; k++) {
		avg[k] = tn_mean(&t, k);
	}
	for (int r = 0; r < 200; r++) {
		tn_round(&t);
	}
	double err = tn_max_err(&t, avg);
	printf("gossip ring5 step 0.5: max |x_i - avg| after 200 rounds = "
	    "%.3g\n", err);
	assert_true(err < 1e-4);
	tn_fini(&t);
}

/* Host mistakes are refused, the model left alone. */
static void
bad_mix(fmi_cons *k, fm_peer_model *nb, uint32_t n, size_t dim)
{
	float x[DIM];
	fm_peer_model own = PT_PEER(0, 2, own_x, 0.5, 0, 5);
	fm_mix m = PT_MIX(1, 0, 2, 2, &own, nb, n, 0);
	memcpy(x, own_x, sizeof x);
	FMT_FAIL(tn_mix(k, &m, x, dim), FM_EINVAL);
	assert_memory_equal(x, own_x, sizeof x);
}

static void
test_bad_mix_refused(void **state)
{
	const fixture *f = *state;
	fmi_cons *k = open_step(f, 0);
	fm_peer_model good[2] = { PT_PEER(1, 2, a_x, 0.25, 0, 5),
		PT_PEER(4, 2, b_x, 0.25, 0, 5) };
	fm_peer_model nb[2];
	fmt_logcap cap;
	tn_quiet(&cap); /* the warnings are expected */
	bad_mix(k, good, 2, DIM + 1); /* wrong dim */
	memcpy(nb, good, sizeof nb);
	nb[1].weight = 0.8; /* sum 1.05 > 1 */
	bad_mix(k, nb, 2, DIM);
	nb[1].weight = -0.1;
	bad_mix(k, nb, 2, DIM);
	nb[1].weight = NAN;
	bad_mix(k, nb, 2, DIM);
	memcpy(nb, good, sizeof nb);
	nb[1].peer = 1; /* duplicate */
	bad_mix(k, nb, 2, DIM);
	nb[1].peer = 0; /* self, and unsorted */
	bad_mix(k, nb, 2, DIM);
	memcpy(nb, good, sizeof nb);
	nb[0].params = NULL;
	bad_mix(k, nb, 2, DIM);
	bad_mix(k, NULL, 2, DIM);
	tn_loud();
	fmi_cons_close(k);
}

/* Out-of-range steps: refused when resolved, with a message naming the
 * parameter and its range; step 0 (inside the declared [0, 1] but not in
 * (0, 1]) refused at open, with a log line naming it. */
static void
test_bad_params(void **state)
{
	const fixture *f = *state;
	const fmi_param_in big = { "step", 0, 1.5, NULL };
	const fmi_param_in typo = { "stp", 0, 0.5, NULL };
	fm_value v[1] = { { 0.0, NULL } };
	fm_error e;
	fmi_cons *k = (fmi_cons *)0x1;
	fmt_logcap cap;
	FMT_FAIL(fmi_params_resolve(f->c, &big, 1, v, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "'step' = 1.5 is out of range [0, 1]"));
	FMT_FAIL(fmi_params_resolve(f->c, &typo, 1, v, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "did you mean 'step'"));
	v[0].num = 0;
	tn_quiet(&cap);
	int rv = fmi_cons_open(&k, f->c,
	    &(fmi_open_args){ .params = v, .dim = DIM, .role = FM_ROLE_PEER,
	    .node_id = 0, .seed = 1 },
	    &e);
	tn_loud();
	FMT_FAIL(rv, FM_EINVAL);
	assert_true(k == (fmi_cons *)0x1);
	assert_non_null(strstr(e.msg, "init failed"));
	int i = fmt_logcap_find(&cap, "FM-GOSSIP");
	assert_true(i >= 0);
	assert_non_null(strstr(cap.lines[i], "'step' = 0 must be in (0, 1]"));
	tn_quiet(&cap);
	rv = fmi_cons_open(&k, f->c,
	    &(fmi_open_args){ .params = NULL, .dim = 0, .role = FM_ROLE_PEER,
	    .node_id = 0, .seed = 1 },
	    &e); /* dim 0 */
	tn_loud();
	FMT_FAIL(rv, FM_EINVAL);
	i = fmt_logcap_find(&cap, "FM-GOSSIP");
	assert_true(i >= 0);
	assert_non_null(strstr(cap.lines[i], "empty model"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_hand_computed),
		cmocka_unit_test(test_absent_neighbours),
		cmocka_unit_test(test_convex_with_absences),
		cmocka_unit_test(test_ring_sum_and_average),
		cmocka_unit_test(test_ring_step),
		cmocka_unit_test(test_bad_mix_refused),
		cmocka_unit_test(test_bad_params),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
