/* SPDX-License-Identifier: MIT */
/* dp_adaptive_test.c: conformance of the dp_adaptive privacy plugin
 * (adaptive clipping, Andrew et al. 2021), loaded as a .so, through the
 * whole protocol: the server sends C, clients clip to it and send their
 * bits, the server learns C. Flower's noise-multiplier vector, the
 * z < 2 sigma_b rule, the direction of C's steps, convergence to the
 * target quantile of a known stream of norms, save/load. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../common/ptst.h"

static int
setup(void **state)
{
	return fmt_plugin_setup(state, "dp_adaptive.so", FM_KIND_PRIVACY,
	    "dp_adaptive");
}

static const fmi_component *
comp(void **state)
{
	return ((fmt_plugin_fixture *)*state)->c;
}

/* A federation of m clients (ids 1..m) and the server, with dim 2. */
typedef struct fed {
	pt_net *n;
	uint32_t m;
	int32_t ids[512];
	float g[2];
	uint32_t round;
} fed;

static fed *
fed_open(void **state, const fmi_param_in *in, size_t nin, uint32_t m)
{
	fed *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->n = pt_net_new();
	f->m = m;
	(void)pt_open(f->n, comp(state), FM_NODE_SERVER, in, nin, 2, m);
	for (uint32_t i = 0; i < m; i++) {
		f->ids[i] = (int32_t)i + 1;
		(void)pt_open(f->n, comp(state), f->ids[i], in, nin, 2, 0);
	}
	return f;
}

static void
fed_free(fed *f)
{
	pt_net_free(f->n);
	free(f);
}

static double
fed_clip(const fed *f)
{
	return pt_get(f->n, "dp_clip");
}

/* One round: every client's update has L2 norm norms[i] (along the first
 * axis); returns the C the round used. The rows the server gets are
 * what the clients sent. */
static double
fed_round(fed *f, const double *norms)
{
	pt_net *n = f->n;
	fmi_priv *s = n->inst[FM_NODE_SERVER];
	f->round++;
	n->round = f->round;
	fm_round r = PT_ROUND(f->round, f->m, f->ids, f->g, 2, f->m, 1.0);
	FMT_PASS(fmi_priv_begin(s, &r));
	assert_int_equal(pt_flush(n), f->m); /* C reached every client */
	double c = fed_clip(f);
	dt_round *t = dt_new(f->m, 2);
	for (uint32_t i = 0; i < f->m; i++) {
		float *x = dt_row(t, i);
		x[0] = (float)norms[i];
		fm_private_update u = pt_update(f->round, f->ids[i], x, 2, i);
		FMT_PASS(fmi_priv_client(n->inst[f->ids[i]], &u));
		assert_true(n->q[n->nq - 1].data[1] == (norms[i] > c));
		assert_true(x[0] <= c * (1 + 1e-6));
	}
	assert_int_equal(pt_flush(n), f->m); /* the bits reached the server */
	pt_pass_all(t, f->round, 1000 + f->round);
	FMT_PASS(fmi_priv_server(s, &t->r));
	assert_int_equal(t->r.nkeep, 1);
	dt_free(t);
	return c;
}

/* Flower: z = 3, sigma_b = 5 -> the update's multiplier 3.1448545
 * (rtol 1e-6): with C0 = 1 and one client, dp_noise_std is z_delta. */
static void
test_noise_multiplier_flower_vector(void **state)
{
	const fmi_param_in in[] = { { "noise_multiplier", 0, 3, NULL },
		{ "clipped_count_stddev", 0, 5, NULL },
		{ "initial_clip", 0, 1, NULL } };
	fed *f = fed_open(state, in, 3, 1);
	const double norm = 0.5;
	(void)fed_round(f, &norm);
	double zd = 1 / sqrt(1.0 / 9 - 1.0 / 100);
	assert_true(fabs(pt_get(f->n, "dp_noise_std") - 3.1448545) /
	    3.1448545 < 1e-6);
	assert_true(fabs(pt_get(f->n, "dp_noise_std") - zd) < 1e-12);
	fed_free(f);
}

/* z >= 2 sigma_b is refused at init, with the default sigma_b (10
 * sampled clients / 20 = 0.5: z = 1 is not < 1) and with a given one;
 * z just below is fine. */
static void
test_z_needs_twice_sigma_b(void **state)
{
	pt_net *n = pt_net_new();
	fm_error e;
	const fmi_param_in z1[] = { { "noise_multiplier", 0, 1.0, NULL } };
	FMT_FAIL(pt_try_open(n, comp(state), FM_NODE_SERVER, z1, 1, 2, 10, &e),
	    FM_EINVAL);
	assert_non_null(strstr(e.msg, "clipped_count_stddev"));
	assert_non_null(strstr(e.msg, "sampled clients / 20"));
	FMT_PASS(pt_try_open(n, comp(state), FM_NODE_SERVER, z1, 1, 2, 11, &e));
	fmi_priv_close(n->inst[FM_NODE_SERVER]);
	n->inst[FM_NODE_SERVER] = NULL;
	const fmi_param_in sb[] = { { "noise_multiplier", 0, 2.0, NULL },
		{ "clipped_count_stddev", 0, 1.0, NULL } };
	FMT_FAIL(pt_try_open(n, comp(state), FM_NODE_SERVER, sb, 2, 2, 100, &e),
	    FM_EINVAL);
	/* the clients need no sigma_b: they only clip */
	FMT_PASS(pt_try_open(n, comp(state), 1, z1, 1, 2, 0, &e));
	const fmi_param_in q[] = { { "target_quantile", 0, 1.0, NULL } };
	FMT_FAIL(pt_try_open(n, comp(state), 2, q, 1, 2, 0, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "target_quantile"));
	const fmi_param_in c0[] = { { "initial_clip", 0, 0.0, NULL } };
	FMT_FAIL(pt_try_open(n, comp(state), 2, c0, 1, 2, 0, &e), FM_EINVAL);
	pt_net_free(n);
}

/* The direction: every update longer than C (all clipped) -> C grows by
 * exp(eta gamma) with no noise; every update shorter -> C shrinks by
 * exp(-eta (1 - gamma)). */
static void
test_direction(void **state)
{
	const fmi_param_in in[] = { { "noise_multiplier", 0, 0.0, NULL },
		{ "initial_clip", 0, 1.0, NULL },
		{ "clipped_count_stddev", 0, 1e-9, NULL } };
	fed *f = fed_open(state, in, 3, 20);
	double big[20], small[20];
	for (int i = 0; i < 20; i++) {
		big[i] = 100;
		small[i] = 1e-3;
	}
	assert_true(fed_round(f, big) == 1.0);
	double c2 = fed_round(f, big);
	assert_true(fabs(c2 - exp(0.2 * 0.5)) < 1e-6);
	assert_true(fabs(pt_get(f->n, "dp_clipped_fraction") - 1) < 1e-12);
	double c3 = fed_round(f, small);
	assert_true(fabs(c3 / c2 - exp(0.2 * 0.5)) < 1e-6);
	double c4 = fed_round(f, small);
	assert_true(c4 < c3);
	assert_true(fabs(c4 / c3 - exp(-0.2 * 0.5)) < 1e-6);
	assert_true(fabs(pt_get(f->n, "dp_clipped_fraction")) < 1e-12);
	assert_true(fabs(pt_get(f->n, "dp_unclipped_noised") - 1) < 1e-6);
	fed_free(f);
}

/* Quantile of norms 1..100 (each round 100 clients draw from a seeded
 * uniform over [0, 100)) at gamma: from C0 = 0.1, C climbs to it and
 * stays near it, with the default noise (sigma_b = 100 / 20 = 5). */
static void
check_quantile(void **state, double gamma, double want)
{
	enum { M = 100, R = 300 };
	const fmi_param_in in[] = { { "noise_multiplier", 0, 1.0, NULL },
		{ "target_quantile", 0, gamma, NULL } };
	fed *f = fed_open(state, in, 2, M);
	fm_rng g;
	fmi_rng_seed(&g, 11, 0);
	double norms[M], late = 0, first = 0;
	int nlate = 0;
	for (int r = 1; r <= R; r++) {
		for (int i = 0; i < M; i++) {
			norms[i] = 100 * fmi_rng_uniform(&g);
		}
		double c = fed_round(f, norms);
		first = r == 1 ? c : first;
		if (r > R - 100) {
			late += c;
			nlate++;
		}
	}
	late /= nlate;
	assert_true(fabs(first - 0.1) < 1e-12);
	assert_true(fabs(late - want) < 0.1 * want);
	fed_free(f);
}

static void
test_converges_to_median(void **state)
{
	check_quantile(state, 0.5, 50);
}

static void
test_converges_to_quantile_0_9(void **state)
{
	check_quantile(state, 0.9, 90);
}

/* A client that got no C this round refuses to send its update. */
static void
test_client_needs_clip(void **state)
{
	pt_net *n = pt_net_new();
	fmi_priv *c = pt_open(n, comp(state), 1, NULL, 0, 2, 0);
	float x[2] = { 1, 1 };
	fm_private_update u = pt_update(1, 1, x, 2, 1);
	FMT_FAIL(fmi_priv_client(c, &u), FM_EPROTO);
	char why[256];
	assert_non_null(strstr(fmi_inst_error(&c->h, why, sizeof why),
	    "no clip norm"));
	pt_net_free(n);
}

/* C survives a restart: save after a few rounds, load into a fresh
 * server, whose next round uses the same C; bad states are refused. */
static void
test_save_load(void **state)
{
	const fmi_param_in in[] = { { "noise_multiplier", 0, 0.0, NULL },
		{ "clipped_count_stddev", 0, 1e-9, NULL } };
	fed *f = fed_open(state, in, 2, 4);
	const double big[4] = { 9, 9, 9, 9 };
	(void)fed_round(f, big);
	(void)fed_round(f, big);
	size_t len;
	void *buf = pt_save(&f->n->inst[FM_NODE_SERVER]->h, &len);
	double before = fed_round(f, big);
	fed *g = fed_open(state, in, 2, 4);
	pt_load_checked(&g->n->inst[FM_NODE_SERVER]->h, buf, len);
	g->round = 2;
	assert_true(fed_round(g, big) == before);
	free(buf);
	fed_free(f);
	fed_free(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_noise_multiplier_flower_vector),
		cmocka_unit_test(test_z_needs_twice_sigma_b),
		cmocka_unit_test(test_direction),
		cmocka_unit_test(test_converges_to_median),
		cmocka_unit_test(test_converges_to_quantile_0_9),
		cmocka_unit_test(test_client_needs_clip),
		cmocka_unit_test(test_save_load),
	};
	return cmocka_run_group_tests(tests, setup, fmt_plugin_teardown);
}
