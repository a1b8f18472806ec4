/* SPDX-License-Identifier: MIT */
/* robust_test.c: conformance of the built-in robust consensus plugin
 * (clipped_gossip, trimmed_gossip), loaded as a .so, against plain gossip
 * under a Byzantine neighbour. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../testnet.h"

#define DIM 3
#define BIG 1e6f

typedef struct fixture {
	fmi_registry *reg;
	const fmi_component *clipped, *trimmed, *gossip;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, "robust.so") != FM_OK ||
	    fmt_plugin_load(f->reg, "gossip.so") != FM_OK) {
		return -1;
	}
	f->clipped = fmi_registry_find(f->reg, FM_KIND_CONSENSUS,
	    "clipped_gossip");
	f->trimmed = fmi_registry_find(f->reg, FM_KIND_CONSENSUS,
	    "trimmed_gossip");
	f->gossip = fmi_registry_find(f->reg, FM_KIND_CONSENSUS, "gossip");
	*state = f;
	return f->clipped && f->trimmed && f->gossip ? 0 : -1;
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
open1(const fmi_component *c, const char *name, double v, size_t dim)
{
	const fmi_param_in in = { name, 0, v, NULL };
	return tn_open(c, &in, name != NULL ? 1 : 0, dim, 0);
}

/* Mixes at peer 0 (own weight 1 - sum) into out[dim]. */
static int
mix_at0(fmi_cons *k, const float *own_x, const fm_peer_model *nb,
    uint32_t n, float *out, size_t dim)
{
	double s = 0;
	for (uint32_t j = 0; j < n; j++) {
		s += nb[j].weight;
	}
	fm_peer_model own = PT_PEER(0, n, own_x, 1 - s, 0, 1);
	fm_mix m = PT_MIX(1, 0, n, n, &own, nb, n, 0);
	memcpy(out, own_x, dim * sizeof(float));
	return tn_mix(k, &m, out, dim);
}

static void
check_param(const fmi_component *c, size_t i, const char *name,
    uint32_t type, double def, double min)
{
	const fm_param_desc *p = &c->desc->params[i];
	assert_string_equal(p->name, name);
	assert_int_equal(p->type, type);
	assert_true(p->def == def && p->min == min);
}

static void
test_abi(void **state)
{
	const fixture *f = *state;
	const fm_plugin_info *in = f->clipped->plugin;
	assert_int_equal(in->magic, FM_PLUGIN_MAGIC);
	assert_int_equal(in->abi_major, FM_PLUGIN_ABI_MAJOR);
	assert_string_equal(in->name, "robust");
	assert_int_equal(in->ncomponents, 2);
	assert_true(f->trimmed->plugin == in);
	const fmi_component *c[2] = { f->clipped, f->trimmed };
	for (int i = 0; i < 2; i++) {
		const fm_consensus_ops *ops = c[i]->ops;
		assert_int_equal(ops->base.kind, FM_KIND_CONSENSUS);
		assert_ptr_equal(c[i]->ops, c[i]->desc->ops); /* the table is the descriptor's */
		assert_null(ops->outgoing);
		assert_null(ops->base.on_message);
	}
	assert_int_equal(fmi_component_nparams(f->clipped), 2);
	check_param(f->clipped, 0, "tau", FM_PARAM_REAL, 0, 0);
	check_param(f->clipped, 1, "f", FM_PARAM_INT, 1, 0);
	assert_int_equal(fmi_component_nparams(f->trimmed), 1);
	check_param(f->trimmed, 0, "b", FM_PARAM_INT, 1, 0);
}

/*
 * Own { 0, 0 }; peer 1 { 3, 4 } (distance 5) and peer 2 { 0, 1 }
 * (distance 1), weight 1/4 each:
 *   tau 2:            { 3, 4 } -> { 1.2, 1.6 }: { 0.3, 0.65 }
 *   adaptive, f 1:    tau = d_(1) = 1, { 0.6, 0.8 }: { 0.15, 0.45 }
 *   adaptive, f 0:    tau = d_(2) = 5, nothing clipped: gossip's { 0.75, 1.25 }
 *   adaptive, f 2:    n <= f, tau 0: the own model
 *   tau 2, peer 1 absent: { 0, 0.25 }
 */
static const float c_own[2] = { 0, 0 }, c_a[2] = { 3, 4 }, c_b[2] = { 0, 1 };

static void
clipped_case(const fixture *f, const char *p, double v, uint32_t skip,
    float w0, float w1)
{
	fm_peer_model all[2] = { PT_PEER(1, 2, c_a, 0.25, 0, 1),
		PT_PEER(2, 2, c_b, 0.25, 0, 1) };
	fm_peer_model nb[2];
	uint32_t n = 0;
	for (uint32_t j = 0; j < 2; j++) {
		if (j != skip) {
			nb[n++] = all[j];
		}
	}
	const float want[2] = { w0, w1 };
	float out[2];
	fmi_cons *k = open1(f->clipped, p, v, 2);
	FMT_PASS(mix_at0(k, c_own, nb, n, out, 2));
	FMT_NEAR(out, want, 2, 1e-6);
	fmi_cons_close(k);
}

static void
test_clipped_hand_computed(void **state)
{
	const fixture *f = *state;
	clipped_case(f, "tau", 2, 9, 0.3f, 0.65f);
	clipped_case(f, NULL, 0, 9, 0.15f, 0.45f); /* defaults */
	clipped_case(f, "f", 0, 9, 0.75f, 1.25f);
	clipped_case(f, "f", 2, 9, 0, 0);
	clipped_case(f, "tau", 1e30, 9, 0.75f, 1.25f);
	clipped_case(f, "tau", 2, 0, 0, 0.25f);
	clipped_case(f, NULL, 0, 0, 0, 0); /* one arrived, f 1: own */
}

/*
 * Trimmed: own { 1, 10 }, neighbours { 2, 20 }, { 3, -5 }, { 100, 0 }:
 *   b 1: coordinate 0 drops 1 and 100 -> 2.5; coordinate 1 drops -5 and
 *        20 -> 5;
 *   b 0: the plain mean { 26.5, 6.25 };
 *   b 2: 4 values < 2b + 1: the own model; b 1 with one neighbour too.
 */
static void
test_trimmed_hand_computed(void **state)
{
	const fixture *f = *state;
	const float own[2] = { 1, 10 }, a[2] = { 2, 20 }, b[2] = { 3, -5 },
		    c[2] = { 100, 0 };
	const fm_peer_model nb[3] = { PT_PEER(1, 1, a, 0.2, 0, 1),
		PT_PEER(2, 1, b, 0.2, 0, 1),
		PT_PEER(3, 1, c, 0.2, 0, 1) };
	const float w1[2] = { 2.5f, 5 }, w0[2] = { 26.5f, 6.25f };
	float out[2];
	fmi_cons *k1 = open1(f->trimmed, NULL, 0, 2);
	fmi_cons *k0 = open1(f->trimmed, "b", 0, 2);
	fmi_cons *k2 = open1(f->trimmed, "b", 2, 2);
	FMT_PASS(mix_at0(k1, own, nb, 3, out, 2));
	FMT_NEAR(out, w1, 2, 1e-6);
	FMT_PASS(mix_at0(k0, own, nb, 3, out, 2));
	FMT_NEAR(out, w0, 2, 1e-6);
	FMT_PASS(mix_at0(k2, own, nb, 3, out, 2));
	assert_memory_equal(out, own, sizeof out);
	FMT_PASS(mix_at0(k1, own, nb, 1, out, 2));
	assert_memory_equal(out, own, sizeof out);
	fmi_cons_close(k0);
	fmi_cons_close(k1);
	fmi_cons_close(k2);
}

static int
cmp_f(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* Against a sort-based reference: random sizes from 1 to 40 neighbours
 * (past the initial scratch of 16, so it grows), b from 0 to 4, with
 * ties. */
static void
test_trimmed_reference(void **state)
{
	const fixture *f = *state;
	const fm_host_api *h = fmi_host_api();
	static float xs[41][DIM];
	fm_peer_model nb[40];
	fm_rng r;
	h->rng_seed(&r, 3, 1);
	for (uint32_t b = 0; b <= 4; b++) {
		fmi_cons *k = open1(f->trimmed, "b", b, DIM);
		for (int t = 0; t < 60; t++) {
			uint32_t n = 1 + (uint32_t)(h->rng_u64(&r) % 40);
			for (uint32_t j = 0; j <= n; j++) {
				for (int d = 0; d < DIM; d++) {
					xs[j][d] = (float)(h->rng_u64(&r) % 7);
				}
			}
			for (uint32_t j = 0; j < n; j++) {
				nb[j] = (fm_peer_model) PT_PEER((int32_t)j + 1,
				    1, xs[j + 1], 0.01, 0, 1);
			}
			float out[DIM], want[DIM], col[41];
			FMT_PASS(mix_at0(k, xs[0], nb, n, out, DIM));
			for (int d = 0; d < DIM; d++) {
				double s = 0;
				for (uint32_t j = 0; j <= n; j++) {
					col[j] = xs[j][d];
				}
				qsort(col, n + 1, sizeof col[0], cmp_f);
				for (uint32_t j = b; j + b <= n; j++) {
					s += col[j];
				}
				want[d] = n + 1 < 2 * b + 1 ? xs[0][d] :
				    (float)(s / (n + 1 - 2 * b));
			}
			FMT_NEAR(out, want, DIM, 1e-6);
		}
		fmi_cons_close(k);
	}
}

/*
 * One honest peer with honest neighbours h1, h2 and one Byzantine
 * neighbour sending +-1e6 (weight 1/4 each). `with` and `without` (the
 * Byzantine absent: its weight stays with the own model) differ by
 * exactly W clip(x_byz - x_i): at most W tau for clipped gossip.
 */
static const float h_own[DIM] = { 1, 2, 3 }, h1[DIM] = { 1.5f, 2.5f, 2 },
		   h2[DIM] = { 0.5f, 1, 3.5f };

static double
byz_shift(fmi_cons *k, const float *byz, float *with)
{
	float without[DIM];
	fm_peer_model nb[3] = { PT_PEER(1, 3, h1, 0.25, 0, 1),
		PT_PEER(2, 3, h2, 0.25, 0, 1),
		PT_PEER(3, 3, byz, 0.25, 0, 1) };
	fm_peer_model own = PT_PEER(0, 3, h_own, 0.25, 0, 1);
	fm_mix m = PT_MIX(1, 0, 3, 3, &own, nb, 3, 0);
	memcpy(with, h_own, sizeof h_own);
	FMT_PASS(tn_mix(k, &m, with, DIM));
	m.nneighbours = 2;
	memcpy(without, h_own, sizeof h_own);
	FMT_PASS(tn_mix(k, &m, without, DIM));
	double s = 0;
	for (int d = 0; d < DIM; d++) {
		s += ((double)with[d] - without[d]) * (with[d] - without[d]);
	}
	return sqrt(s);
}

static double
dist(const float *a, const float *b)
{
	double s = 0;
	for (int d = 0; d < DIM; d++) {
		s += ((double)a[d] - b[d]) * ((double)a[d] - b[d]);
	}
	return sqrt(s);
}

/* Every coordinate of x within the honest values' [min, max]. */
static void
assert_in_honest_range(const float *x)
{
	for (int d = 0; d < DIM; d++) {
		float lo = fminf(h_own[d], fminf(h1[d], h2[d]));
		float hi = fmaxf(h_own[d], fmaxf(h1[d], h2[d]));
		assert_true(x[d] >= lo && x[d] <= hi);
	}
}

static void
test_byzantine_one_round(void **state)
{
	const fixture *f = *state;
	const float byz[DIM] = { BIG, -BIG, BIG };
	const float nan3[DIM] = { NAN, 0, INFINITY };
	float with[DIM];
	fmi_cons *fixed = open1(f->clipped, "tau", 0.5, DIM);
	fmi_cons *adapt = open1(f->clipped, NULL, 0, DIM);
	fmi_cons *trim = open1(f->trimmed, NULL, 0, DIM);
	fmi_cons *plain = open1(f->gossip, NULL, 0, DIM);
	double tau = fmax(dist(h1, h_own), dist(h2, h_own)); /* d_(3-1) */
	double s_fixed = byz_shift(fixed, byz, with);
	double s_adapt = byz_shift(adapt, byz, with);
	double s_plain = byz_shift(plain, byz, with);
	printf("one Byzantine neighbour (1e6), W 0.25: clipped tau 0.5 moved "
	    "%.6g (bound %.6g); adaptive moved %.6g (bound W tau = %.6g); "
	    "plain gossip moved %.6g\n", s_fixed, 0.25 * 0.5, s_adapt,
	    0.25 * tau, s_plain);
	assert_true(s_fixed <= 0.25 * 0.5 * (1 + 1e-5));
	assert_true(s_fixed >= 0.25 * 0.5 * (1 - 1e-5)); /* clipped, not cut */
	assert_true(s_adapt <= 0.25 * tau * (1 + 1e-5));
	assert_true(s_plain > 1e5);
	byz_shift(trim, byz, with);
	assert_in_honest_range(with);
	/* Non-finite models: ignored by clipped, trimmed away by trimmed. */
	assert_true(byz_shift(adapt, nan3, with) == 0);
	byz_shift(trim, nan3, with);
	assert_in_honest_range(with);
	fmi_cons_close(fixed);
	fmi_cons_close(adapt);
	fmi_cons_close(trim);
	fmi_cons_close(plain);
}

/*
 * A complete graph of 6 peers (Metropolis-Hastings: 1/6 everywhere) in
 * which peer 5 is Byzantine and sends { 1e6, -1e6, 1e6 } every round.
 */
static const float k6_x0[5][DIM] = { { 1, 0, -3 }, { 4, 2, 0 }, { -2, 8, 1 },
	{ 0, 0, 10 }, { 7, -5, 2 } };

static void
k6_run(const fmi_component *c, tn_net *t, int rounds)
{
	tn_init(t, 6, DIM, c, NULL, 0);
	for (uint32_t i = 0; i < 6; i++) {
		for (uint32_t j = 0; j < i; j++) {
			tn_edge(t, i, j, 1);
		}
	}
	tn_weights_mh(t);
	memcpy(t->x, k6_x0, sizeof k6_x0);
	t->byz[5] = 1;
	t->x[5][0] = t->x[5][2] = BIG;
	t->x[5][1] = -BIG;
	for (int r = 0; r < rounds; r++) {
		tn_round(t);
	}
}

/* Largest distance of an honest coordinate outside the initial honest
 * range of that coordinate. */
static double
k6_outside(const tn_net *t)
{
	double worst = 0;
	for (int d = 0; d < DIM; d++) {
		double lo = k6_x0[0][d], hi = lo;
		for (int i = 1; i < 5; i++) {
			lo = fmin(lo, k6_x0[i][d]);
			hi = fmax(hi, k6_x0[i][d]);
		}
		for (int i = 0; i < 5; i++) {
			worst = fmax(worst, fmax(lo - t->x[i][d],
			    t->x[i][d] - hi));
		}
	}
	return worst;
}

static void
test_byzantine_network(void **state)
{
	const fixture *f = *state;
	tn_net cl, tr, g;
	k6_run(f->clipped, &cl, 100);
	k6_run(f->trimmed, &tr, 100);
	k6_run(f->gossip, &g, 100);
	printf("K6 with one Byzantine peer, 100 rounds: clipped spread %.3g, "
	    "outside the honest range by %.3g; trimmed spread %.3g, outside "
	    "by %.3g; plain gossip honest mean %.6g\n", tn_spread(&cl),
	    k6_outside(&cl), tn_spread(&tr), k6_outside(&tr),
	    tn_mean(&g, 0));
	assert_true(tn_spread(&cl) < 1e-4);
	assert_true(k6_outside(&cl) <= 0);
	assert_true(tn_spread(&tr) < 1e-4);
	assert_true(k6_outside(&tr) <= 0);
	assert_true(tn_mean(&g, 0) > 1e5); /* ruined */
	tn_fini(&cl);
	tn_fini(&tr);
	tn_fini(&g);
}

static void
bad_mix(fmi_cons *k, fm_peer_model *nb, uint32_t n, size_t dim)
{
	float x[DIM];
	fm_peer_model own = PT_PEER(0, 2, h_own, 0.5, 0, 1);
	fm_mix m = PT_MIX(1, 0, 2, 2, &own, nb, n, 0);
	memcpy(x, h_own, sizeof x);
	FMT_FAIL(tn_mix(k, &m, x, dim), FM_EINVAL);
	assert_memory_equal(x, h_own, sizeof x);
}

static void
test_bad_mix_refused(void **state)
{
	const fixture *f = *state;
	fmi_cons *k[2] = { open1(f->clipped, NULL, 0, DIM),
		open1(f->trimmed, NULL, 0, DIM) };
	fmt_logcap cap;
	tn_quiet(&cap); /* the warnings are expected */
	for (int i = 0; i < 2; i++) {
		fm_peer_model nb[2] = { PT_PEER(1, 2, h1, 0.25, 0, 1),
		PT_PEER(4, 2, h2, 0.25, 0, 1) };
		bad_mix(k[i], nb, 2, DIM - 1);
		nb[1].peer = 1; /* duplicate */
		bad_mix(k[i], nb, 2, DIM);
		nb[1].peer = 0; /* self */
		bad_mix(k[i], nb, 2, DIM);
		nb[1].peer = 4;
		nb[1].params = NULL;
		bad_mix(k[i], nb, 2, DIM);
		bad_mix(k[i], NULL, 2, DIM);
	}
	fm_peer_model heavy[2] = { PT_PEER(1, 2, h1, 0.6, 0, 1),
		PT_PEER(4, 2, h2, 0.6, 0, 1) };
	bad_mix(k[0], heavy, 2, DIM); /* weights sum to 1.2 */
	heavy[0].weight = NAN;
	bad_mix(k[0], heavy, 2, DIM);
	tn_loud();
	fmi_cons_close(k[0]);
	fmi_cons_close(k[1]);
}

/* Opens c with raw (unresolved) values; wants EINVAL and a FM-ROBUST log
 * line containing what. */
static void
raw_refused(const fmi_component *c, const fm_value *v, const char *what)
{
	fmt_logcap cap = { .n = 0 };
	fm_error e;
	fmi_cons *k = NULL;
	tn_quiet(&cap);
	int rv = fmi_cons_open(&k, c,
	    &(fmi_open_args){ .params = v, .dim = DIM, .role = FM_ROLE_PEER,
	    .node_id = 0, .seed = 1 },
	    &e);
	tn_loud();
	FMT_FAIL(rv, FM_EINVAL);
	assert_null(k);
	assert_non_null(strstr(e.msg, "init failed"));
	int i = fmt_logcap_find(&cap, "FM-ROBUST");
	assert_true(i >= 0);
	if (strstr(cap.lines[i], what) == NULL) {
		print_error("log: %s\n", cap.lines[i]);
		fail();
	}
}

static void
resolve_refused(const fmi_component *c, const char *name, double v,
    const char *what)
{
	const fmi_param_in in = { name, 0, v, NULL };
	fm_value out[2];
	fm_error e;
	FMT_FAIL(fmi_params_resolve(c, &in, 1, out, &e), FM_EINVAL);
	if (strstr(e.msg, what) == NULL) {
		print_error("message: %s\n", e.msg);
		fail();
	}
}

static void
test_bad_params(void **state)
{
	const fixture *f = *state;
	resolve_refused(f->clipped, "tau", -1, "'tau' = -1 is out of range");
	resolve_refused(f->clipped, "f", 1.5, "'f' must be an integer");
	resolve_refused(f->clipped, "f", -1, "'f' = -1 is out of range");
	resolve_refused(f->trimmed, "b", -2, "'b' = -2 is out of range");
	resolve_refused(f->trimmed, "b", 0.5, "'b' must be an integer");
	resolve_refused(f->trimmed, "tau", 1, "no parameter 'tau'");
	const fm_value neg_tau[2] = { { -1, NULL }, { 1, NULL } };
	const fm_value frac_f[2] = { { 0, NULL }, { 0.5, NULL } };
	const fm_value neg_b[1] = { { -1, NULL } };
	raw_refused(f->clipped, neg_tau, "'tau' = -1 must be >= 0");
	raw_refused(f->clipped, frac_f, "'f' = 0.5 must be a non-negative "
	    "integer");
	raw_refused(f->trimmed, neg_b, "'b' = -1 must be a non-negative "
	    "integer");
}

/* fini is safe on never-initialised state and after failed inits. */
static void
test_fini_safe(void **state)
{
	const fixture *f = *state;
	const fmi_component *c[2] = { f->clipped, f->trimmed };
	for (int i = 0; i < 2; i++) {
		const fm_consensus_ops *ops = c[i]->ops;
		void *st = calloc(1, ops->base.state_size);
		assert_non_null(st);
		ops->base.fini(st);
		fm_instance inst = { fmi_host_api(), NULL, 0, FM_ROLE_PEER, 0,
		    (uint32_t)sizeof(fm_instance), DIM, 1, NULL, 0, 0 };
		fmt_logcap cap;
		tn_quiet(&cap);
		FMT_FAIL(ops->base.init(st, &inst), FM_EINVAL);
		tn_loud();
		ops->base.fini(st);
		ops->base.fini(st);
		free(st);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_clipped_hand_computed),
		cmocka_unit_test(test_trimmed_hand_computed),
		cmocka_unit_test(test_trimmed_reference),
		cmocka_unit_test(test_byzantine_one_round),
		cmocka_unit_test(test_byzantine_network),
		cmocka_unit_test(test_bad_mix_refused),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_fini_safe),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
