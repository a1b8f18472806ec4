/* SPDX-License-Identifier: MIT */
/* fedprox_test.c: conformance of the built-in fedprox plugin, loaded as a
 * .so: a local rule (FM_KIND_LOCAL) with no server side (the server is
 * FedAvg: with the rule beside it the model is FedAvg's, bit for bit), and
 * a client side whose gradient term is mu (w - w_global). (The term inside
 * real local training is checked by fm.model.model_test and, through the
 * node, by fm.lua.fedprox_scaffold.) */
#define _DEFAULT_SOURCE /* PATH_MAX */

#include "fm_test.h"

#include "fm_plugin_test.h"

#include "../../ptest.h"

#define DIM 4

typedef fmt_plugin_fixture fixture;

static int
setup(void **state)
{
	int rv = fmt_plugin_setup(state, "fedprox.so", FM_KIND_LOCAL,
	    "fedprox");
	fixture *f = *state;
	/* the aggregator an experiment's aggregator = "fedprox" runs */
	return rv == 0 ? fmt_plugin_load(f->reg, "fedavg.so") : rv;
}

static fmi_loc *
open_mu(const fixture *f, uint32_t role, double mu)
{
	fmi_param_in in = { "mu", 0, mu, NULL };
	fm_value v[2];
	fmi_loc *a = NULL;
	FMT_PASS(fmi_params_resolve(f->c, mu < 0 ? NULL : &in, mu < 0 ? 0 : 1,
	    v, NULL));
	fmi_open_args args = pt_args(v, DIM, role,
	    role == FM_ROLE_CLIENT ? 3 : FM_NODE_SERVER, 42);
	FMT_PASS(fmi_loc_open(&a, f->c, &args, NULL));
	return a;
}

static void
test_abi(void **state)
{
	const fixture *f = *state;
	const fm_local_ops *ops = f->c->ops;
	fm_value v[2];
	assert_string_equal(f->c->desc->name, "fedprox");
	assert_int_equal(f->c->desc->kind, FM_KIND_LOCAL);
	assert_int_equal(ops->base.kind, FM_KIND_LOCAL);
	assert_int_equal(ops->base.struct_size, sizeof(fm_local_ops));
	assert_non_null(ops->begin);
	assert_non_null(ops->grad);
	assert_non_null(ops->end);
	assert_null(ops->step);
	assert_null(ops->base.on_message); /* nothing to say to the server */
	assert_null(ops->base.save);       /* nothing outlives a round */
	assert_null(ops->round_begin);     /* no server side: FedAvg's */
	assert_null(ops->accepted);
	assert_null(ops->round_end);
	assert_int_equal(fmi_component_nparams(f->c), 1);
	FMT_PASS(fmi_params_resolve(f->c, NULL, 0, v, NULL));
	assert_float_equal(v[0].num, 0.01, 1e-12); /* NIID-Bench's default */
}

/* The server half: FedAvg, global += sum n_k delta_k / sum n_k; the rule's
 * server-side calls (none) leave its model as it is. */
static void
test_server_is_fedavg(void **state)
{
	const fixture *f = *state;
	float d0[DIM] = { 1, 0, -1, 2 }, d1[DIM] = { 3, 3, 3, 3 };
	float g[DIM] = { 1, 2, 3, 4 }, out[DIM];
	const float want[DIM] = { 3.5f, 4.25f, 5.0f, 6.75f };
	int32_t ids[2] = { 1, 2 };
	const fmi_component *fedavg = fmi_registry_find(f->reg,
	    FM_KIND_AGGREGATOR, "fedavg");
	assert_non_null(fedavg);
	fmi_agg *a = NULL;
	fmi_open_args args = pt_args(NULL, DIM, FM_ROLE_SERVER,
	    FM_NODE_SERVER, 42);
	FMT_PASS(fmi_agg_open(&a, fedavg, &args, NULL));
	fmi_loc *l = open_mu(f, FM_ROLE_SERVER, 0.5);
	fm_round r = PT_ROUND(1, 2, ids, g, DIM, 10, 1.0);
	fm_update u[2] = { PT_UPDATE(1, 1, d0, DIM, 1, 0, 0),
		PT_UPDATE(2, 1, d1, DIM, 3, 0, 0) };
	int st[2];
	FMT_PASS(fmi_loc_round_begin(l, &r));
	FMT_PASS(fmi_agg_begin(a, &r));
	FMT_PASS(fmi_agg_accept(a, u, 2, st));
	FMT_PASS(st[0]);
	FMT_PASS(st[1]);
	FMT_PASS(fmi_loc_accepted(l, u, 2));
	memcpy(out, g, sizeof g);
	FMT_PASS(fmi_agg_finish(a, g, out, DIM));
	FMT_PASS(fmi_loc_round_end(l, &r, g, out, DIM));
	FMT_NEAR(out, want, DIM, 1e-6);
	fmi_loc_close(l);
	fmi_agg_close(a);
}

/* The client half: h = mu (w - w_global) at every step; mu = 0 adds
 * nothing (FedAvg exactly). */
static void
test_proximal_term(void **state)
{
	const float w0[DIM] = { 1, -2, 0.5f, 0 };
	const float w[DIM] = { 2, -2, -0.5f, 4 };
	const float want[DIM] = { 0.25f, 0, -0.25f, 1 }; /* mu = 0.25 */
	fm_local_task t = { sizeof t, 1, w0, DIM, 10, 1, 5, 0.1 };
	fm_local_result res = { sizeof res, 1, w0, w, DIM, 2, 10, 0.1, 1.0 };
	fmi_loc *a = open_mu(*state, FM_ROLE_CLIENT, 0.25);
	FMT_PASS(fmi_loc_begin(a, &t));
	const float *h = fmi_loc_grad(a, w, DIM);
	assert_non_null(h);
	FMT_NEAR(h, want, DIM, 1e-7);
	h = fmi_loc_grad(a, w0, DIM); /* at w0: zero */
	for (int i = 0; i < DIM; i++) {
		assert_true(h[i] == 0.0f);
	}
	FMT_PASS(fmi_loc_end(a, &res));
	fmi_loc_close(a);

	a = open_mu(*state, FM_ROLE_CLIENT, 0.0);
	FMT_PASS(fmi_loc_begin(a, &t));
	assert_null(fmi_loc_grad(a, w, DIM));
	FMT_PASS(fmi_loc_end(a, &res));
	fmi_loc_close(a);
}

static void
test_errors(void **state)
{
	const fixture *f = *state;
	const float w0[DIM] = { 0 };
	fmi_param_in neg = { "mu", 0, -1.0, NULL };
	fm_value v[2];
	fm_error e;
	FMT_FAIL(fmi_params_resolve(f->c, &neg, 1, v, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "mu"));
	fmi_loc *a = open_mu(f, FM_ROLE_CLIENT, 0.1);
	fm_local_task bad = { sizeof bad, 1, w0, DIM + 1, 10, 1, 5, 0.1 };
	FMT_FAIL(fmi_loc_begin(a, &bad), FM_EINVAL);
	bad.dim = DIM;
	bad.global = NULL;
	FMT_FAIL(fmi_loc_begin(a, &bad), FM_EINVAL);
	fmi_loc_close(a);
	/* an empty model is refused at open */
	fmi_loc *z = NULL;
	fmi_open_args args = pt_args(v, 0, FM_ROLE_CLIENT, 3, 1);
	FMT_PASS(fmi_params_resolve(f->c, NULL, 0, v, NULL));
	FMT_FAIL(fmi_loc_open(&z, f->c, &args, &e), FM_EINVAL);
	assert_null(z);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_server_is_fedavg),
		cmocka_unit_test(test_proximal_term),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, fmt_plugin_teardown);
}
