/* SPDX-License-Identifier: MIT */
/* hier_test.c: hierarchical federations (HierFAVG): the tree's checks,
 * its equivalences with the star, and edges that drift between root
 * rounds. */
#include <math.h>

#include "core/core.h"
#include "node/fed_fixture.h"

typedef fed_fixture fixture;

static int
setup(void **state)
{
	static const uint32_t w[] = { 60, 10 };
	fixture *f = calloc(1, sizeof *f);
	fed_fixture_open(f, 12, 200, 4, w, 2);
	f->cfg.rounds = 6;
	f->cfg.clients_per_round = 5;
	f->cfg.local = (fmi_local_cfg) { .epochs = 2, .batch = 10,
		.opt = { 0.05f, 0, 0 } };
	f->cfg.seed = 9;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fed_fixture_close(*state);
	free(*state);
	return 0;
}

/* A tree of fan-outs fan[n] with periods every[n]. */
static void
set_tree(fmi_fed_cfg *c, const uint32_t *fan, const uint32_t *every,
    uint32_t n)
{
	memset(&c->hier, 0, sizeof c->hier);
	c->hier.levels = n;
	for (uint32_t l = 0; l < n; l++) {
		c->hier.level[l].fanout = fan[l];
		c->hier.level[l].every = every[l];
	}
}

static double
extra(const fmi_round_metrics *m, const char *name)
{
	for (uint32_t i = 0; i < m->nextra; i++) {
		if (strcmp(m->extra[i].name, name) == 0) {
			return m->extra[i].value;
		}
	}
	return NAN;
}

static void
expect_invalid(const fmi_fed_cfg *c, int code, const char *field)
{
	fm_error e;
	FMT_FAIL(fmi_fed_validate(c, &e), code);
	if (strstr(e.msg, field) == NULL) {
		fail_msg("'%s' does not name %s", e.msg, field);
	}
}

static void
test_validate_tree(void **state)
{
	fixture *f = *state;
	fmi_fed_cfg c = f->cfg;
	fm_error e;
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 2, 1 }, 2);
	FMT_PASS(fmi_fed_validate(&c, &e));
	assert_int_equal(fmi_fed_levels(&c), 2);
	assert_int_equal(fmi_fed_fanout(&c, 1), 4);
	set_tree(&c, (uint32_t[]) { 3, 5 }, (uint32_t[]) { 2, 1 }, 2);
	expect_invalid(&c, FM_EINVAL, "topology.fanouts");
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 2, 2 }, 2);
	expect_invalid(&c, FM_EINVAL, "topology.every[2]");
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 0, 1 }, 2);
	expect_invalid(&c, FM_EINVAL, "topology.every[1]");
	set_tree(&c, (uint32_t[]) { 3, 0 }, (uint32_t[]) { 1, 1 }, 2);
	expect_invalid(&c, FM_EINVAL, "topology.fanouts[2]");
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 2, 1 }, 2);
	c.hier.levels = FMI_HIER_MAX_LEVELS + 1;
	expect_invalid(&c, FM_EINVAL, "levels");
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 2, 1 }, 2);
	c.checkpoint = "hier.ckpt"; /* a tree checkpoints like a star */
	FMT_PASS(fmi_fed_validate(&c, &e));
	c.checkpoint = NULL;
	const fmi_component *g = fmi_registry_find(f->reg, FM_KIND_CONSENSUS,
	    "gossip");
	if (g != NULL) {
		c.hier.level[0].aggregator = g;
		expect_invalid(&c, FM_EINVAL, "topology.aggregators[1]");
	}
	/* a star reports its one level */
	assert_int_equal(fmi_fed_levels(&f->cfg), 1);
	assert_int_equal(fmi_fed_fanout(&f->cfg, 0), 12);
}

static void
assert_same_rounds(const fmi_fed_result *a, const fmi_fed_result *b)
{
	assert_int_equal(a->nrounds, b->nrounds);
	for (uint32_t r = 0; r < a->nrounds; r++) {
		assert_true(a->rounds[r].accuracy == b->rounds[r].accuracy);
		assert_true(a->rounds[r].loss == b->rounds[r].loss);
		assert_true(a->rounds[r].train_loss == b->rounds[r].train_loss);
		assert_int_equal(a->rounds[r].bytes_sent, b->rounds[r].bytes_sent);
		assert_int_equal(a->rounds[r].updates, b->rounds[r].updates);
	}
	assert_memory_equal(a->params, b->params, a->nparams * sizeof(float));
}

/* fanouts = { N } is the star, bit for bit (also with a stateful
 * optimizer). */
static void
test_one_level_is_the_star(void **state)
{
	fixture *f = *state;
	fmi_fed_result star, tree;
	fm_error e;
	for (int opt = 0; opt < 2; opt++) {
		fmi_fed_cfg c = f->cfg;
		const fm_value adam[] = { { 0.01, NULL }, { 0.9, NULL },
			{ 0.99, NULL }, { 1e-3, NULL } };
		if (opt) {
			c.aggregator = fmi_registry_find(f->reg,
			    FM_KIND_AGGREGATOR, "fedadam");
			assert_non_null(c.aggregator);
			c.agg_params = adam;
		}
		FMT_PASS(fmi_fed_simulate(&c, &star, &e));
		set_tree(&c, (uint32_t[]) { 12 }, (uint32_t[]) { 1 }, 1);
		FMT_PASS(fmi_fed_simulate(&c, &tree, &e));
		assert_same_rounds(&star, &tree);
		assert_int_equal(tree.rounds[0].nextra, 0); /* same rows */
		fmi_fed_result_free(&star);
		fmi_fed_result_free(&tree);
	}
}

/* every = { 1, 1 } with FedAvg at both levels and every client each
 * round: the root gets sum_e N_e (sum_k n_k d_k / N_e) / sum_e N_e, the
 * star's FedAvg step, up to float rounding. */
static void
test_every_round_is_fedavg(void **state)
{
	fixture *f = *state;
	fmi_fed_result star, tree;
	fm_error e;
	fmi_fed_cfg c = f->cfg;
	c.clients_per_round = 12;
	FMT_PASS(fmi_fed_simulate(&c, &star, &e));
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 1, 1 }, 2);
	FMT_PASS(fmi_fed_simulate(&c, &tree, &e));
	double worst = 0;
	for (size_t i = 0; i < star.nparams; i++) {
		worst = fmax(worst, fabs(star.params[i] - tree.params[i]));
	}
	assert_true(worst < 1e-4);
	for (uint32_t r = 0; r < c.rounds; r++) {
		assert_true(fabs(star.rounds[r].loss - tree.rounds[r].loss) < 1e-4);
		assert_true(extra(&tree.rounds[r], "edge_divergence") == 0);
		assert_true(extra(&tree.rounds[r], "root_aggregated") == 1);
	}
	fmi_fed_result_free(&star);
	fmi_fed_result_free(&tree);
}

/* every = { 3, 1 }: the edges drift apart between root rounds and
 * coincide right after one; results do not depend on the worker count. */
static void
test_edges_drift_between_root_rounds(void **state)
{
	fixture *f = *state;
	fmi_fed_result a, b;
	fm_error e;
	fmi_fed_cfg c = f->cfg;
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 3, 1 }, 2);
	FMT_PASS(fmi_fed_simulate(&c, &a, &e));
	for (uint32_t r = 0; r < c.rounds; r++) {
		int root = (r + 1) % 3 == 0;
		double div = extra(&a.rounds[r], "edge_divergence");
		assert_true(root ? div == 0 : div > 1e-3);
		assert_true(extra(&a.rounds[r], "root_aggregated") == root);
		assert_int_equal(a.rounds[r].updates, 5);
		assert_true(a.rounds[r].evaluated);
	}
	c.workers = 3;
	FMT_PASS(fmi_fed_simulate(&c, &b, &e));
	assert_same_rounds(&a, &b);
	fmi_fed_result_free(&a);
	fmi_fed_result_free(&b);
}

/* Three levels, every = { 2, 2, 1 }: the middle level aggregates every 2
 * rounds, the root every 2 x 2 = 4. */
static void
test_three_levels(void **state)
{
	fixture *f = *state;
	fmi_fed_result res;
	fm_error e;
	fmi_fed_cfg c = f->cfg;
	c.rounds = 8;
	c.clients_per_round = 6;
	set_tree(&c, (uint32_t[]) { 2, 2, 3 }, (uint32_t[]) { 2, 2, 1 }, 3);
	FMT_PASS(fmi_fed_simulate(&c, &res, &e));
	for (uint32_t r = 0; r < c.rounds; r++) {
		int root = (r + 1) % 4 == 0;
		double div = extra(&res.rounds[r], "edge_divergence");
		assert_true(extra(&res.rounds[r], "root_aggregated") == root);
		assert_true(root ? div == 0 : div > 1e-3);
	}
	assert_true(res.rounds[7].accuracy > 0.2); /* learns */
	fmi_fed_result_free(&res);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_validate_tree, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_one_level_is_the_star, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_every_round_is_fedavg, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_edges_drift_between_root_rounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_three_levels, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
