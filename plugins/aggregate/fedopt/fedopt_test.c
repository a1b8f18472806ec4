/* SPDX-License-Identifier: MIT */
/* fedopt_test.c: conformance of the built-in fedopt plugin (fedavgm,
 * fedadagrad, fedadam, fedyogi), loaded as a .so. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "fm_plugin_test.h"

#include "../../ptest.h"

#define DIM 3
#define NCOMP 4

static const char *const names[NCOMP] = { "fedavgm", "fedadagrad",
	"fedadam", "fedyogi" };

typedef struct fixture {
	fmi_registry *reg;
	const fmi_component *c[NCOMP];
	const fmi_component *fedavg;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, "fedopt.so") != FM_OK ||
	    fmt_plugin_load(f->reg, "fedavg.so") != FM_OK) {
		return -1;
	}
	for (int i = 0; i < NCOMP; i++) {
		f->c[i] = fmi_registry_find(f->reg, FM_KIND_AGGREGATOR,
		    names[i]);
		if (f->c[i] == NULL) {
			return -1;
		}
	}
	f->fedavg = fmi_registry_find(f->reg, FM_KIND_AGGREGATOR, "fedavg");
	*state = f;
	return f->fedavg != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	fmi_registry_free(f->reg);
	free(f);
	return 0;
}

/* Opens c with the given parameters (NULL/0: defaults). */
static fmi_agg *
open_agg(const fmi_component *c, const fmi_param_in *in, size_t nin)
{
	fm_value v[8];
	fmi_agg *a = NULL;
	FMT_PASS(fmi_params_resolve(c, in, nin, v, NULL));
	FMT_PASS(fmi_agg_open(&a, c,
	    &(fmi_open_args){ .params = v, .dim = DIM,
		.role = FM_ROLE_SERVER, .node_id = FM_NODE_SERVER, .seed = 42 },
	    NULL));
	return a;
}

/* One round numbered rnd: begin, accept deltas[k] (weights n[k]),
 * poisoning each delta after its call, then finish into global. */
static void
run_round(fmi_agg *a, uint32_t rnd, float *global, const float (*deltas)[DIM],
    const uint64_t *n, uint32_t nup)
{
	int32_t ids[8];
	float buf[DIM];
	fm_round r = PT_ROUND(rnd, nup, ids, global, DIM, 0, 1.0);
	for (uint32_t k = 0; k < nup; k++) {
		ids[k] = (int32_t)k + 1;
	}
	FMT_PASS(fmi_agg_begin(a, &r));
	for (uint32_t k = 0; k < nup; k++) {
		memcpy(buf, deltas[k], sizeof buf);
		fm_update u = PT_UPDATE(ids[k], rnd, buf, DIM, n[k], 0.1, 0);
		FMT_PASS(pt_agg_accept1(a, &u));
		for (int i = 0; i < DIM; i++) { /* borrowed: must not be kept */
			buf[i] = NAN;
		}
	}
	FMT_PASS(pt_agg_finish(a, global, DIM));
}

/*
 * The two rounds every reference uses, from global { 1, 2, 3 }:
 *   round 1: { 1, -2, 0.5 } x1 and { 3, 0, -0.5 } x3 -> avg { 2.5, -0.5, -0.25 }
 *   round 2: { 0.5, 0.5, -1 } x2 and { -1, 1, 2 } x2 -> avg { -0.25, 0.75, 0.5 }
 */
static const float r1[2][DIM] = { { 1, -2, 0.5f }, { 3, 0, -0.5f } };
static const uint64_t n1[2] = { 1, 3 };
static const float r2[2][DIM] = { { 0.5f, 0.5f, -1 }, { -1, 1, 2 } };
static const uint64_t n2[2] = { 2, 2 };

static void
two_rounds(fmi_agg *a, float *g)
{
	g[0] = 1;
	g[1] = 2;
	g[2] = 3;
	run_round(a, 1, g, r1, n1, 2);
	run_round(a, 2, g, r2, n2, 2);
}

static void
test_abi(void **state)
{
	const fixture *f = *state;
	const fm_plugin_info *in = f->c[0]->plugin;
	assert_int_equal(in->magic, FM_PLUGIN_MAGIC);
	assert_int_equal(in->abi_major, FM_PLUGIN_ABI_MAJOR);
	assert_int_equal(in->info_size, sizeof(fm_plugin_info));
	assert_int_equal(in->build_sig, FM_PLUGIN_BUILD_SIG);
	assert_string_equal(in->name, "fedopt");
	assert_int_equal(in->ncomponents, NCOMP);
	for (int i = 0; i < NCOMP; i++) {
		const fm_aggregator_ops *ops = f->c[i]->ops;
		assert_true(f->c[i]->plugin == in);
		assert_int_equal(ops->base.struct_size,
		    sizeof(fm_aggregator_ops));
		assert_int_equal(ops->base.kind, FM_KIND_AGGREGATOR);
		assert_int_equal(f->c[i]->desc->kind, FM_KIND_AGGREGATOR);
		assert_string_equal(f->c[i]->desc->name, names[i]);
		assert_null(ops->base.on_message);
		assert_non_null(ops->base.save); /* moments across rounds */
		assert_non_null(ops->base.load);
	}
}

static void
check_param(const fmi_component *c, size_t i, const char *name, double def)
{
	const fm_param_desc *p = &c->desc->params[i];
	assert_string_equal(p->name, name);
	assert_int_equal(p->type, FM_PARAM_REAL);
	assert_true(p->def == def);
}

/* Defaults (REFERENCES 1.1 / Flower) are visible in the descriptors. */
static void
test_param_defaults(void **state)
{
	const fixture *f = *state;
	assert_int_equal(fmi_component_nparams(f->c[0]), 2);
	check_param(f->c[0], 0, "lr", 1.0);
	check_param(f->c[0], 1, "momentum", 0.0);
	assert_int_equal(fmi_component_nparams(f->c[1]), 2);
	check_param(f->c[1], 0, "lr", 0.1);
	check_param(f->c[1], 1, "tau", 1e-3);
	assert_int_equal(fmi_component_nparams(f->c[2]), 4);
	check_param(f->c[2], 0, "lr", 0.1);
	check_param(f->c[2], 1, "beta1", 0.9);
	check_param(f->c[2], 2, "beta2", 0.99);
	check_param(f->c[2], 3, "tau", 1e-3);
	assert_int_equal(fmi_component_nparams(f->c[3]), 4);
	check_param(f->c[3], 0, "lr", 0.01);
	check_param(f->c[3], 1, "beta1", 0.9);
	check_param(f->c[3], 2, "beta2", 0.99);
	check_param(f->c[3], 3, "tau", 1e-3);
}

/* References below: double precision, by hand (a few lines of Python
 * following REFERENCES.md 1.1 on the two rounds above). */

/* lr 0.5, momentum 0.9: v1 = pg1 = { -2.5, 0.5, 0.25 }, g1 = { 2.25, 1.75,
 * 2.875 }; v2 = 0.9 v1 + pg2 = { -2, -0.3, -0.275 }, g2 = g1 - 0.5 v2. */
static void
test_fedavgm_momentum(void **state)
{
	const fixture *f = *state;
	const fmi_param_in in[2] = { { "lr", 0, 0.5, NULL },
		{ "momentum", 0, 0.9, NULL } };
	const float want[DIM] = { 3.25f, 1.9f, 3.0125f };
	float g[DIM];
	fmi_agg *a = open_agg(f->c[0], in, 2);
	two_rounds(a, g);
	FMT_NEAR(g, want, DIM, 1e-5);
	fmi_agg_close(a);
}

/* momentum 0, lr 1: fedavg, bit for bit; { 1, 2, 3 } + avg1 + avg2. */
static void
test_fedavgm_is_fedavg(void **state)
{
	const fixture *f = *state;
	const float want[DIM] = { 3.25f, 2.25f, 3.25f };
	float g[DIM], h[DIM];
	fmi_agg *a = open_agg(f->c[0], NULL, 0);
	fmi_agg *b = open_agg(f->fedavg, NULL, 0);
	two_rounds(a, g);
	two_rounds(b, h);
	FMT_NEAR(g, want, DIM, 1e-5);
	assert_memory_equal(g, h, sizeof g);
	fmi_agg_close(a);
	fmi_agg_close(b);
}

/* Defaults: lr 0.1, tau 1e-3, m = avg, v = avg1^2 (+ avg2^2). */
static void
test_fedadagrad(void **state)
{
	const fixture *f = *state;
	const float want[DIM] = { 1.09001360291f, 1.98331242483f,
		2.98968141118f };
	float g[DIM];
	fmi_agg *a = open_agg(f->c[1], NULL, 0);
	two_rounds(a, g);
	FMT_NEAR(g, want, DIM, 1e-5);
	fmi_agg_close(a);
}

/* Defaults: lr 0.1, beta (0.9, 0.99), tau 1e-3, Flower's bias correction
 * eta_t = 0.1 sqrt(1 - 0.99^(t+1)) / (1 - 0.9^(t+1)), t = 1, 2. */
static void
test_fedadam(void **state)
{
	const fixture *f = *state;
	const float want[DIM] = { 1.12462270004f, 1.94817488456f,
		2.95937420133f };
	float g[DIM];
	fmi_agg *a = open_agg(f->c[2], NULL, 0);
	two_rounds(a, g);
	FMT_NEAR(g, want, DIM, 1e-5);
	fmi_agg_close(a);
}

/* Defaults: lr 0.01, beta (0.9, 0.99), tau 1e-3, v0 = 0, sign(0) = 0. */
static void
test_fedyogi(void **state)
{
	const fixture *f = *state;
	const float want[DIM] = { 1.01796826808f, 1.99348776166f,
		2.99521751146f };
	float g[DIM];
	fmi_agg *a = open_agg(f->c[3], NULL, 0);
	two_rounds(a, g);
	FMT_NEAR(g, want, DIM, 1e-5);
	fmi_agg_close(a);
}

/* Rounds without weighted updates change neither the global model nor
 * the state: r1, (empty round 2) x2, r2 as round 3 equals r1, r2 as round 3
 * on a fresh instance. */
static void
test_empty_rounds(void **state)
{
	const fixture *f = *state;
	const fmi_param_in mom = { "momentum", 0, 0.9, NULL };
	const uint64_t zero[1] = { 0 };
	for (int i = 0; i < NCOMP; i++) {
		fmi_agg *a = open_agg(f->c[i], &mom, i == 0 ? 1 : 0);
		fmi_agg *b = open_agg(f->c[i], &mom, i == 0 ? 1 : 0);
		float g[DIM] = { 1, 2, 3 }, h[DIM] = { 1, 2, 3 }, orig[DIM];
		run_round(a, 1, g, NULL, NULL, 0); /* before any state */
		assert_memory_equal(g, h, sizeof g);
		run_round(a, 1, g, r1, n1, 2);
		run_round(b, 1, h, r1, n1, 2);
		memcpy(orig, g, sizeof g);
		run_round(a, 2, g, NULL, NULL, 0);
		assert_memory_equal(g, orig, sizeof g);
		run_round(a, 2, g, r1, zero, 1); /* only zero-example updates */
		assert_memory_equal(g, orig, sizeof g);
		run_round(a, 3, g, r2, n2, 2);
		run_round(b, 3, h, r2, n2, 2);
		assert_memory_equal(g, h, sizeof g);
		fmi_agg_close(a);
		fmi_agg_close(b);
	}
}

/* Same inputs on two instances, same bits. */
static void
test_deterministic(void **state)
{
	const fixture *f = *state;
	const fmi_param_in mom = { "momentum", 0, 0.5, NULL };
	for (int i = 0; i < NCOMP; i++) {
		fmi_agg *a = open_agg(f->c[i], &mom, i == 0 ? 1 : 0);
		fmi_agg *b = open_agg(f->c[i], &mom, i == 0 ? 1 : 0);
		float g[DIM], h[DIM];
		two_rounds(a, g);
		two_rounds(b, h);
		assert_memory_equal(g, h, sizeof g);
		fmi_agg_close(a);
		fmi_agg_close(b);
	}
}

static void
test_wrong_dims_refused(void **state)
{
	const fixture *f = *state;
	for (int i = 0; i < NCOMP; i++) {
		float g[DIM] = { 0 }, d[DIM] = { 1, 1, 1 };
		int32_t id = 1;
		fmi_agg *a = open_agg(f->c[i], NULL, 0);
		fm_round bad = PT_ROUND(1, 1, &id, g, DIM + 1, 0, 1.0);
		fm_round ok = PT_ROUND(1, 1, &id, g, DIM, 0, 1.0);
		fm_update u = PT_UPDATE(1, 1, d, DIM - 1, 1, 0, 0);
		FMT_FAIL(fmi_agg_begin(a, &bad), FM_EINVAL);
		FMT_PASS(fmi_agg_begin(a, &ok));
		FMT_FAIL(pt_agg_accept1(a, &u), FM_EINVAL);
		{
		float big[DIM + 1] = { 0 };
		FMT_FAIL(fmi_agg_finish(a, big, big, DIM + 1), FM_EINVAL);
	}
		fmi_agg_close(a);
	}
}

static void *
no_calloc(size_t n, size_t size)
{
	(void)n;
	(void)size;
	return NULL;
}

/* init allocates nothing (client-side instances stay cheap); the state
 * comes at the first begin, which reports ENOMEM; fini is safe after a
 * failed init, a failed begin, and on never-initialised state. */
static void
test_lazy_state_and_failures(void **state)
{
	const fixture *f = *state;
	fm_host_api host = *fmi_host_api();
	host.calloc = no_calloc;
	for (int i = 0; i < NCOMP; i++) {
		const fm_aggregator_ops *ops = f->c[i]->ops;
		fm_value v[4];
		fmi_agg *a = (fmi_agg *)0x1;
		fm_error e;
		FMT_FAIL(fmi_agg_open(&a, f->c[i],
	    &(fmi_open_args){ .params = NULL, .dim = 0, .role = FM_ROLE_SERVER,
	    .node_id = 0, .seed = 1 },
	    &e), FM_EINVAL);
		assert_true(a == (fmi_agg *)0x1);

		FMT_PASS(fmi_params_resolve(f->c[i], NULL, 0, v, NULL));
		v[1].num = i == 0 ? 0.9 : v[1].num; /* fedavgm: momentum on */
		fm_instance inst = { &host, v,
		    (uint32_t)fmi_component_nparams(f->c[i]), FM_ROLE_SERVER,
		    0, (uint32_t)sizeof(fm_instance), DIM, 1, NULL, 0, 0 };
		void *st = calloc(1, ops->base.state_size);
		float g[DIM] = { 0 };
		fm_round r = PT_ROUND(1, 0, NULL, g, DIM, 0, 1.0);
		assert_non_null(st);
		FMT_PASS(ops->base.init(st, &inst)); /* no allocation */
		FMT_FAIL(ops->begin(st, &r), FM_ENOMEM);
		ops->base.fini(st);
		memset(st, 0, ops->base.state_size);
		inst.nparams = 1; /* wrong count */
		FMT_FAIL(ops->base.init(st, &inst), FM_EINVAL);
		ops->base.fini(st);
		memset(st, 0, ops->base.state_size);
		ops->base.fini(st);
		free(st);
	}
}

/* save after round 1, load into a fresh instance: its round 2 (and the
 * state after it) is bit for bit the uninterrupted instance's. Before any
 * round the state saves too (no moments yet), and a load refuses another
 * version byte, a truncated or an overlong state, and another
 * optimizer's state. */
static void
test_save_load(void **state)
{
	const fixture *f = *state;
	for (int i = 0; i < NCOMP; i++) {
		const fmi_param_in mom = { "momentum", 0, 0.9, NULL };
		fmi_agg *a = open_agg(f->c[i], &mom, i == 0 ? 1 : 0);
		fmi_agg *b = open_agg(f->c[i], &mom, i == 0 ? 1 : 0);
		fmi_agg *z = open_agg(f->c[i], &mom, i == 0 ? 1 : 0);
		float ga[DIM] = { 1, 2, 3 }, gb[DIM];
		size_t len0, len, lena, lenb;
		void *s0 = pt_save(&z->h, &len0); /* never ran a round */
		pt_load_checked(&b->h, s0, len0);
		run_round(a, 1, ga, r1, n1, 2);
		void *s1 = pt_save(&a->h, &len);
		assert_true(len > len0);
		fmi_agg_close(b);
		b = open_agg(f->c[i], &mom, i == 0 ? 1 : 0);
		pt_load_checked(&b->h, s1, len);
		memcpy(gb, ga, sizeof ga);
		run_round(a, 2, ga, r2, n2, 2);
		run_round(b, 2, gb, r2, n2, 2);
		assert_memory_equal(ga, gb, sizeof ga);
		void *sa = pt_save(&a->h, &lena), *sb = pt_save(&b->h, &lenb);
		assert_int_equal(lena, lenb);
		assert_memory_equal(sa, sb, lena);
		/* another optimizer's state is refused */
		fmi_agg *o = open_agg(f->c[(i + 2) % NCOMP], NULL, 0);
		assert_int_not_equal(fmi_inst_load(&o->h, s1, len), FM_OK);
		fmi_agg_close(o);
		free(s0);
		free(s1);
		free(sa);
		free(sb);
		fmi_agg_close(a);
		fmi_agg_close(b);
		fmi_agg_close(z);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_param_defaults),
		cmocka_unit_test(test_fedavgm_momentum),
		cmocka_unit_test(test_fedavgm_is_fedavg),
		cmocka_unit_test(test_fedadagrad),
		cmocka_unit_test(test_fedadam),
		cmocka_unit_test(test_fedyogi),
		cmocka_unit_test(test_empty_rounds),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_wrong_dims_refused),
		cmocka_unit_test(test_lazy_state_and_failures),
		cmocka_unit_test(test_save_load),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
