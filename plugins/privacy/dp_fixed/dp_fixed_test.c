/* SPDX-License-Identifier: MIT */
/* dp_fixed_test.c: conformance of the dp_fixed privacy plugin (central
 * DP-FedAvg, fixed clipping), loaded as a .so: the client's clipping and
 * bit, the server's unweighted fixed-denominator mean, the noise's std
 * (Flower's vector), what the defence left out, seeds, errors. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../common/ptst.h"

static int
setup(void **state)
{
	return fmt_plugin_setup(state, "dp_fixed.so", FM_KIND_PRIVACY,
	    "dp_fixed");
}

static const fmi_component *
comp(void **state)
{
	return ((fmt_plugin_fixture *)*state)->c;
}

static void
test_descriptor(void **state)
{
	const fmi_component *c = comp(state);
	assert_int_equal(fmi_component_nparams(c), 2);
	assert_string_equal(c->desc->params[0].name, "clip");
	assert_true(c->desc->params[0].def == 1.0);
	assert_string_equal(c->desc->params[1].name, "noise_multiplier");
	assert_true(c->desc->params[1].def == 1.0);
	assert_true(c->desc->flags & FM_PRIVACY_CLIENT);
	assert_true(c->desc->flags & FM_PRIVACY_SERVER);
	assert_false(c->desc->flags & FM_PRIVACY_OPAQUE);
	assert_true(fmi_component_privacy_central(c));
}

/* clip 1: (3, 4) -> (0.6, 0.8) with bit 1; (0.3, 0.4) passes bit for
 * bit with bit 0; both bits reach the server, for the round. */
static void
test_client_clips_and_tells(void **state)
{
	pt_net *n = pt_net_new();
	const fmi_param_in in[] = { { "clip", 0, 1.0, NULL } };
	fmi_priv *c1 = pt_open(n, comp(state), 1, in, 1, 2, 0);
	fmi_priv *c2 = pt_open(n, comp(state), 2, in, 1, 2, 0);
	float a[2] = { 3, 4 }, b[2] = { 0.3f, 0.4f };
	const float want_a[2] = { 0.6f, 0.8f }, want_b[2] = { 0.3f, 0.4f };
	n->round = 3;
	fm_private_update ua = pt_update(3, 1, a, 2, 7);
	fm_private_update ub = pt_update(3, 2, b, 2, 7);
	FMT_PASS(fmi_priv_client(c1, &ua));
	FMT_PASS(fmi_priv_client(c2, &ub));
	FMT_NEAR(a, want_a, 2, 1e-7);
	assert_memory_equal(b, want_b, sizeof b);
	assert_int_equal(ua.num_examples, 10); /* its weight is untouched */
	assert_int_equal(n->nq, 2);
	assert_int_equal(n->q[0].to, FM_NODE_SERVER);
	assert_int_equal(n->q[0].from, 1);
	assert_int_equal(n->q[0].len, 2);
	assert_int_equal(n->q[0].data[1], 1);
	assert_int_equal(n->q[1].data[1], 0);
	float bad[2] = { NAN, 1 };
	fm_private_update ubad = pt_update(3, 1, bad, 2, 7);
	FMT_FAIL(fmi_priv_client(c1, &ubad), FM_ERANGE);
	pt_net_free(n);
}

/* Noise off: the mean over the m = 4 sampled clients of the rows the
 * server clipped again (3 arrived: a dropout counts as 0), unweighted
 * whatever their example counts; one row passes with the round's
 * examples; the clipped share comes from the bits, and from the server's
 * clipping for a client that sent none. */
static void
test_server_fixed_denominator_mean(void **state)
{
	pt_net *n = pt_net_new();
	const fmi_param_in in[] = { { "clip", 0, 1.0, NULL },
		{ "noise_multiplier", 0, 0.0, NULL } };
	fmi_priv *s = pt_open(n, comp(state), FM_NODE_SERVER, in, 2, 2, 4);
	fmi_priv *c1 = pt_open(n, comp(state), 1, in, 2, 2, 0);
	fmi_priv *c2 = pt_open(n, comp(state), 2, in, 2, 2, 0);
	const int32_t ids[4] = { 1, 2, 3, 4 };
	const float g[2] = { 0, 0 };
	fm_round r = PT_ROUND(1, 4, ids, g, 2, 100, 1.0);
	n->round = 1;
	FMT_PASS(fmi_priv_begin(s, &r));
	assert_true(pt_get(n, "dp_clip") == 1.0);
	assert_true(pt_get(n, "dp_noise_std") == 0);
	/* clients 1 and 2 clip and tell; client 3 (row 2) sends no bit */
	float u1[2] = { 0, 3 }, u2[2] = { 0.5f, 0 };
	fm_private_update p1 = pt_update(1, 1, u1, 2, 1);
	fm_private_update p2 = pt_update(1, 2, u2, 2, 1);
	FMT_PASS(fmi_priv_client(c1, &p1));
	FMT_PASS(fmi_priv_client(c2, &p2));
	assert_int_equal(pt_flush(n), 2);
	dt_round *t = dt_new(3, 2);
	const float x[3][2] = { { u1[0], u1[1] }, { u2[0], u2[1] },
		{ 4, 3 } }; /* row 2 over the bound: the server clips it */
	const uint64_t ex[3] = { 1, 100, 7 };
	dt_set(t, &x[0][0]);
	dt_examples(t, ex);
	pt_pass_all(t, 1, 99);
	FMT_PASS(fmi_priv_server(s, &t->r));
	assert_int_equal(t->r.nkeep, 1);
	assert_int_equal(t->keep[0], 0);
	assert_int_equal(t->ke[0], 108);
	const float want[2] = { (0 + 0.5f + 0.8f) / 4, (1 + 0 + 0.6f) / 4 };
	FMT_NEAR(dt_row(t, 0), want, 2, 1e-6);
	assert_true(fabs(pt_get(n, "dp_clipped_fraction") - 2.0 / 3) < 1e-12);
	dt_free(t);
	pt_net_free(n);
}

/* Flower's vector: noise_multiplier 1.0, clip 0.5, 10 sampled clients
 * -> std 0.05 on the mean; the noise there has that std, comes from the
 * rows' seed (same seed, same noise; another, other noise). */
static void
test_noise_std_flower_vector(void **state)
{
	enum { D = 40000, M = 10 };
	pt_net *n = pt_net_new();
	const fmi_param_in in[] = { { "clip", 0, 0.5, NULL },
		{ "noise_multiplier", 0, 1.0, NULL } };
	fmi_priv *s = pt_open(n, comp(state), FM_NODE_SERVER, in, 2, D, M);
	int32_t ids[M];
	for (int i = 0; i < M; i++) {
		ids[i] = i + 1;
	}
	float *g = calloc(D, sizeof *g);
	float *first = malloc(D * sizeof *first);
	assert_true(g != NULL && first != NULL);
	fm_round r = PT_ROUND(2, M, ids, g, D, 100, 1.0);
	for (int rep = 0; rep < 3; rep++) {
		FMT_PASS(fmi_priv_begin(s, &r));
		assert_true(fabs(pt_get(n, "dp_noise_std") - 0.05) < 1e-15);
		dt_round *t = dt_new(M, D); /* zero updates: the noise alone */
		pt_pass_all(t, 2, rep < 2 ? 5 : 6);
		FMT_PASS(fmi_priv_server(s, &t->r));
		const float *y = dt_row(t, t->keep[0]);
		if (rep == 0) {
			assert_true(fabs(pt_std(y, D) - 0.05) < 0.05 * 0.02);
			memcpy(first, y, D * sizeof *first);
		} else if (rep == 1) {
			assert_memory_equal(first, y, D * sizeof *first);
		} else {
			assert_true(memcmp(first, y, D * sizeof *first) != 0);
		}
		dt_free(t);
	}
	free(g);
	free(first);
	pt_net_free(n);
}

/* Rows a defence left out (not in keep) are not in the mean; nothing
 * kept: nothing passes (the model stays). */
static void
test_only_kept_rows(void **state)
{
	pt_net *n = pt_net_new();
	const fmi_param_in in[] = { { "noise_multiplier", 0, 0.0, NULL } };
	fmi_priv *s = pt_open(n, comp(state), FM_NODE_SERVER, in, 1, 1, 3);
	const int32_t ids[3] = { 1, 2, 3 };
	const float g[1] = { 0 };
	fm_round r = PT_ROUND(1, 3, ids, g, 1, 3, 1.0);
	FMT_PASS(fmi_priv_begin(s, &r));
	dt_round *t = dt_new(3, 1);
	const float x[3] = { 0.25f, 1000, 0.5f };
	dt_set(t, x);
	pt_pass_all(t, 1, 1);
	t->keep[0] = 0;
	t->keep[1] = 2;
	t->r.nkeep = 2;
	FMT_PASS(fmi_priv_server(s, &t->r));
	assert_int_equal(t->r.nkeep, 1);
	assert_true(fabsf(dt_row(t, t->keep[0])[0] - 0.75f / 3) < 1e-7f);
	pt_pass_all(t, 1, 1);
	t->r.nkeep = 0;
	FMT_PASS(fmi_priv_server(s, &t->r));
	assert_int_equal(t->r.nkeep, 0);
	dt_free(t);
	pt_net_free(n);
}

/* clip <= 0 is refused with the parameter's name; a negative noise
 * multiplier by its declared range. */
static void
test_errors(void **state)
{
	pt_net *n = pt_net_new();
	fm_error e;
	const fmi_param_in zero[] = { { "clip", 0, 0.0, NULL } };
	FMT_FAIL(pt_try_open(n, comp(state), 1, zero, 1, 4, 0, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "'clip'"));
	const fmi_param_in neg[] = { { "noise_multiplier", 0, -1.0, NULL } };
	FMT_FAIL(pt_try_open(n, comp(state), 1, neg, 1, 4, 0, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "noise_multiplier"));
	/* rows of another round than the one begun */
	fmi_priv *s = pt_open(n, comp(state), FM_NODE_SERVER, NULL, 0, 1, 1);
	const int32_t ids[1] = { 1 };
	const float g[1] = { 0 };
	fm_round r = PT_ROUND(4, 1, ids, g, 1, 1, 1.0);
	FMT_PASS(fmi_priv_begin(s, &r));
	dt_round *t = dt_new(1, 1);
	pt_pass_all(t, 5, 1);
	FMT_FAIL(fmi_priv_server(s, &t->r), FM_EINVAL);
	dt_free(t);
	pt_net_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptor),
		cmocka_unit_test(test_client_clips_and_tells),
		cmocka_unit_test(test_server_fixed_denominator_mean),
		cmocka_unit_test(test_noise_std_flower_vector),
		cmocka_unit_test(test_only_kept_rows),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, fmt_plugin_teardown);
}
