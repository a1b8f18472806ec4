/* SPDX-License-Identifier: MIT */
/* dp_local_test.c: conformance of the dp_local privacy plugin (local DP,
 * the Gaussian mechanism on each update), loaded as a .so: the noise std
 * from (epsilon, delta) by the classical bound, or from the noise
 * multiplier, measured on the noise itself; clipping; the per-release
 * (epsilon, delta) reported; epsilon > 1 and bad deltas refused; seeds. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../common/ptst.h"

enum { D = 40000 };

static int
setup(void **state)
{
	return fmt_plugin_setup(state, "dp_local.so", FM_KIND_PRIVACY,
	    "dp_local");
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
	assert_int_equal(fmi_component_nparams(c), 4);
	assert_string_equal(c->desc->params[0].name, "clip");
	assert_string_equal(c->desc->params[1].name, "epsilon");
	assert_string_equal(c->desc->params[2].name, "delta");
	assert_string_equal(c->desc->params[3].name, "noise_multiplier");
	assert_true(c->desc->flags & FM_PRIVACY_CLIENT);
	/* it only reports on the aggregating node: no row is touched there */
	assert_false(fmi_component_privacy_central(c));
}

/* The server's begin reports what each release gets; no row call. */
static double
server_metrics(void **state, pt_net *n, const fmi_param_in *in, size_t nin)
{
	fmi_priv *s = pt_open(n, comp(state), FM_NODE_SERVER, in, nin, 2, 4);
	const int32_t ids[1] = { 1 };
	const float g[2] = { 0, 0 };
	fm_round r = PT_ROUND(1, 1, ids, g, 2, 4, 1.0);
	FMT_PASS(fmi_priv_begin(s, &r));
	return pt_get(n, "dp_noise_std");
}

/* clip 2, epsilon 0.5, delta 1e-5: std = 2 sqrt(2 ln(1.25e5)) / 0.5 =
 * 19.379...; a zero update gets noise of that std, which depends on the
 * seed alone. */
static void
test_std_from_epsilon_delta(void **state)
{
	pt_net *n = pt_net_new();
	const fmi_param_in in[] = { { "clip", 0, 2, NULL },
		{ "epsilon", 0, 0.5, NULL }, { "delta", 0, 1e-5, NULL } };
	double want = 2 * sqrt(2 * log(1.25e5)) / 0.5;
	assert_true(fabs(server_metrics(state, n, in, 3) - want) < 1e-9);
	assert_true(pt_get(n, "dp_epsilon") == 0.5);
	assert_true(pt_get(n, "dp_delta") == 1e-5);
	assert_true(pt_get(n, "dp_clip") == 2);
	fmi_priv *c = pt_open(n, comp(state), 1, in, 3, D, 0);
	float *x = calloc(D, sizeof *x), *y = calloc(D, sizeof *y);
	assert_true(x != NULL && y != NULL);
	fm_private_update u = pt_update(1, 1, x, D, 77);
	FMT_PASS(fmi_priv_client(c, &u));
	assert_true(fabs(pt_std(x, D) - want) < 0.02 * want);
	fm_private_update v = pt_update(1, 1, y, D, 77);
	FMT_PASS(fmi_priv_client(c, &v));
	assert_memory_equal(x, y, D * sizeof *x);
	memset(y, 0, D * sizeof *y);
	v.seed = 78;
	FMT_PASS(fmi_priv_client(c, &v));
	assert_true(memcmp(x, y, D * sizeof *x) != 0);
	assert_int_equal(n->nq, 0); /* nothing leaves but the update */
	free(x);
	free(y);
	pt_net_free(n);
}

/* noise_multiplier z: std z clip; the per-release epsilon of the
 * classical bound is reported when it is <= 1 (z = 5), not otherwise. */
static void
test_noise_multiplier(void **state)
{
	pt_net *n = pt_net_new();
	const fmi_param_in z5[] = { { "noise_multiplier", 0, 5, NULL },
		{ "clip", 0, 0.5, NULL } };
	assert_true(fabs(server_metrics(state, n, z5, 2) - 2.5) < 1e-12);
	assert_true(fabs(pt_get(n, "dp_epsilon") -
	    sqrt(2 * log(1.25e5)) / 5) < 1e-12);
	pt_net_free(n);
	n = pt_net_new();
	const fmi_param_in z1[] = { { "noise_multiplier", 0, 1, NULL } };
	assert_true(server_metrics(state, n, z1, 1) == 1.0);
	assert_true(isnan(pt_get(n, "dp_epsilon")));
	pt_net_free(n);
}

/* The update is clipped before the noise: norm 50 -> norm 1 (plus a
 * noise of std 1e-6 per coordinate). */
static void
test_clips_first(void **state)
{
	pt_net *n = pt_net_new();
	const fmi_param_in in[] = { { "noise_multiplier", 0, 1e-6, NULL } };
	fmi_priv *c = pt_open(n, comp(state), 1, in, 1, 4, 0);
	float x[4] = { 30, 40, 0, 0 };
	fm_private_update u = pt_update(1, 1, x, 4, 1);
	FMT_PASS(fmi_priv_client(c, &u));
	assert_true(fabs(x[0] - 0.6) < 1e-4 && fabs(x[1] - 0.8) < 1e-4);
	assert_true(fabs(x[2]) < 1e-4 && x[2] != 0);
	pt_net_free(n);
}

static void
test_errors(void **state)
{
	pt_net *n = pt_net_new();
	fm_error e;
	const fmi_param_in big[] = { { "epsilon", 0, 2, NULL } };
	FMT_FAIL(pt_try_open(n, comp(state), 1, big, 1, 4, 0, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "epsilon <= 1"));
	assert_non_null(strstr(e.msg, "noise_multiplier"));
	const fmi_param_in eps0[] = { { "epsilon", 0, 0, NULL } };
	FMT_FAIL(pt_try_open(n, comp(state), 1, eps0, 1, 4, 0, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "'epsilon'"));
	const fmi_param_in d0[] = { { "delta", 0, 0, NULL } };
	FMT_FAIL(pt_try_open(n, comp(state), 1, d0, 1, 4, 0, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "'delta'"));
	const fmi_param_in d1[] = { { "delta", 0, 1, NULL } };
	FMT_FAIL(pt_try_open(n, comp(state), 1, d1, 1, 4, 0, &e), FM_EINVAL);
	const fmi_param_in c0[] = { { "clip", 0, 0, NULL } };
	FMT_FAIL(pt_try_open(n, comp(state), 1, c0, 1, 4, 0, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "'clip'"));
	pt_net_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptor),
		cmocka_unit_test(test_std_from_epsilon_delta),
		cmocka_unit_test(test_noise_multiplier),
		cmocka_unit_test(test_clips_first),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, fmt_plugin_teardown);
}
