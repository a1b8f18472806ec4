/* SPDX-License-Identifier: MIT */
/* fednova_test.c: conformance of the fednova plugin, loaded as a .so. */
#define _DEFAULT_SOURCE /* PATH_MAX */

#include "fm_test.h"

#include "fm_plugin_test.h"

#include "../../ptest.h"

#define DIM 3

typedef fmt_plugin_fixture fixture;

static int
setup(void **state)
{
	return fmt_plugin_setup(state, "fednova.so", FM_KIND_AGGREGATOR,
	    "fednova");
}

/* One round over nup updates (deltas, examples, steps) into global. */
static int
round_of(const fixture *f, float *global, const float (*d)[DIM],
    const uint64_t *n, const uint64_t *steps, uint32_t nup)
{
	fmi_agg *a = NULL;
	int32_t ids[8];
	fm_round r = PT_ROUND(1, nup, ids, global, DIM, 0, 1.0);
	FMT_PASS(fmi_agg_open(&a, f->c,
	    &(fmi_open_args){ .params = NULL, .dim = DIM,
	    .role = FM_ROLE_SERVER, .node_id = FM_NODE_SERVER, .seed = 1 },
	    NULL));
	int rv = fmi_agg_begin(a, &r);
	for (uint32_t k = 0; rv == FM_OK && k < nup; k++) {
		fm_update u = PT_UPDATE((int32_t)k + 1, 1, d[k], DIM, n[k],
		    0.1, steps[k]);
		rv = pt_agg_accept1(a, &u);
	}
	if (rv == FM_OK) {
		rv = pt_agg_finish(a, global, DIM);
	}
	fmi_agg_close(a);
	return rv;
}

/* Hand-computed: p = (1/4, 3/4), tau = (2, 10): tau_eff = 8, update =
 * 8 * (1/4 * d1/2 + 3/4 * d2/10). */
static void
test_reference(void **state)
{
	const fixture *f = *state;
	const float d[2][DIM] = { { 2, 0, -4 }, { 10, 20, 0 } };
	const uint64_t n[2] = { 100, 300 }, steps[2] = { 2, 10 };
	float g[DIM] = { 1, 1, 1 };
	FMT_PASS(round_of(f, g, d, n, steps, 2));
	const float want[DIM] = { 1 + 8 * (0.25f * 1 + 0.75f * 1),
		1 + 8 * (0.75f * 2), 1 + 8 * (0.25f * -2) };
	for (int i = 0; i < DIM; i++) {
		assert_float_equal(g[i], want[i], 1e-5);
	}
}

/* Equal steps: FedNova is FedAvg. Unknown steps (0) count as 1. */
static void
test_equal_steps_is_fedavg(void **state)
{
	const fixture *f = *state;
	const float d[3][DIM] = { { 1, 2, 3 }, { -1, 0, 5 }, { 4, 4, 4 } };
	const uint64_t n[3] = { 10, 30, 60 };
	const uint64_t s5[3] = { 5, 5, 5 }, s0[3] = { 0, 0, 0 };
	float g1[DIM] = { 0 }, g2[DIM] = { 0 };
	FMT_PASS(round_of(f, g1, d, n, s5, 3));
	FMT_PASS(round_of(f, g2, d, n, s0, 3));
	for (int i = 0; i < DIM; i++) {
		float avg = (10 * d[0][i] + 30 * d[1][i] + 60 * d[2][i]) / 100;
		assert_float_equal(g1[i], avg, 1e-5);
		assert_float_equal(g2[i], avg, 1e-5);
	}
}

/* The objective-inconsistency case: a client taking 10x the steps moves
 * 10x as far in the same direction; FedAvg follows it, FedNova weighs
 * both clients' directions by their data only. */
static void
test_heterogeneous_steps(void **state)
{
	const fixture *f = *state;
	const float d[2][DIM] = { { 1, 0, 0 }, { 0, 10, 0 } };
	const uint64_t n[2] = { 50, 50 }, steps[2] = { 1, 10 };
	float g[DIM] = { 0 };
	FMT_PASS(round_of(f, g, d, n, steps, 2));
	/* tau_eff 5.5, directions (1,0,0) and (0,1,0) equally weighted */
	assert_float_equal(g[0], g[1], 1e-6);
	assert_float_equal(g[0], 2.75, 1e-5);
}

static void
test_refusals(void **state)
{
	const fixture *f = *state;
	fmi_agg *a = NULL;
	fm_error e;
	FMT_FAIL(fmi_agg_open(&a, f->c,
	    &(fmi_open_args){ .params = NULL, .dim = 0, .role = FM_ROLE_SERVER,
	    .node_id = FM_NODE_SERVER, .seed = 1 },
	    &e), FM_EINVAL);
	FMT_PASS(fmi_agg_open(&a, f->c,
	    &(fmi_open_args){ .params = NULL, .dim = DIM,
	    .role = FM_ROLE_SERVER, .node_id = FM_NODE_SERVER, .seed = 1 },
	    NULL));
	float g[DIM] = { 0 }, d[DIM] = { 0 };
	int32_t id = 1;
	fm_round r = PT_ROUND(1, 1, &id, g, DIM, 0, 1.0);
	FMT_PASS(fmi_agg_begin(a, &r));
	fm_update u = PT_UPDATE(1, 1, d, DIM - 1, 1, 0, 1);
	FMT_FAIL(pt_agg_accept1(a, &u), FM_EINVAL);
	fmi_agg_close(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference),
		cmocka_unit_test(test_equal_steps_is_fedavg),
		cmocka_unit_test(test_heterogeneous_steps),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, setup, fmt_plugin_teardown);
}
