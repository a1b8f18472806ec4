/* SPDX-License-Identifier: MIT */
/* krum_test.c: conformance of the built-in krum plugin (krum, multikrum,
 * bulyan), loaded as a .so: hand-computed cases, ties, Byzantine rows,
 * a direct double-precision reference, errors, composition with fedavg. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../common/dtest.h"

typedef struct fixture {
	fmi_registry *reg;
	const fmi_component *krum, *multi, *bulyan, *fedavg;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, "krum.so") != FM_OK ||
	    fmt_plugin_load(f->reg, "fedavg.so") != FM_OK) {
		return -1;
	}
	f->krum = fmi_registry_find(f->reg, FM_KIND_DEFENCE, "krum");
	f->multi = fmi_registry_find(f->reg, FM_KIND_DEFENCE, "multikrum");
	f->bulyan = fmi_registry_find(f->reg, FM_KIND_DEFENCE, "bulyan");
	f->fedavg = fmi_registry_find(f->reg, FM_KIND_AGGREGATOR, "fedavg");
	*state = f;
	return f->krum && f->multi && f->bulyan && f->fedavg ? 0 : -1;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	fmi_registry_free(f->reg);
	free(f);
	return 0;
}

static void
check_param(const fmi_component *c, size_t i, const char *name, double def)
{
	const fm_param_desc *p = &c->desc->params[i];
	assert_string_equal(p->name, name);
	assert_int_equal(p->type, FM_PARAM_INT);
	assert_true(p->def == def);
}

static void
test_abi(void **state)
{
	const fixture *f = *state;
	const fm_plugin_info *in = f->krum->plugin;
	assert_int_equal(in->magic, FM_PLUGIN_MAGIC);
	assert_int_equal(in->abi_major, FM_PLUGIN_ABI_MAJOR);
	assert_string_equal(in->name, "krum");
	assert_int_equal(in->ncomponents, 3);
	const fmi_component *c[3] = { f->krum, f->multi, f->bulyan };
	for (int i = 0; i < 3; i++) {
		const fm_defence_ops *ops = c[i]->ops;
		assert_true(c[i]->plugin == in);
		assert_int_equal(ops->base.kind, FM_KIND_DEFENCE);
		assert_ptr_equal(c[i]->ops, c[i]->desc->ops); /* the table is the descriptor's */
		assert_null(ops->base.on_message);
	}
	assert_int_equal(fmi_component_nparams(f->krum), 2);
	check_param(f->krum, 0, "f", 1);
	check_param(f->krum, 1, "threads", 2);
	assert_int_equal(fmi_component_nparams(f->multi), 3);
	check_param(f->multi, 0, "f", 1);
	check_param(f->multi, 1, "m", 0);
	check_param(f->multi, 2, "threads", 2);
	assert_int_equal(fmi_component_nparams(f->bulyan), 2);
	check_param(f->bulyan, 0, "f", 1);
	check_param(f->bulyan, 1, "threads", 2);
}

/*
 * Five points, f = 1, so each score sums the 2 nearest squared distances:
 *   x0 (0,0)  x1 (1,0)  x2 (0,2)  x3 (3,0)  x4 (10,10)
 *   d01 1, d02 4, d03 9, d04 200, d12 5, d13 4, d14 181, d23 13, d24 164,
 *   d34 149
 *   scores: x0 1+4 = 5, x1 1+4 = 5, x2 4+5 = 9, x3 4+9 = 13,
 *           x4 149+164 = 313
 * x0 and x1 tie: Krum picks the lower index.
 */
static const float five[5][2] = { { 0, 0 }, { 1, 0 }, { 0, 2 }, { 3, 0 },
	{ 10, 10 } };
static const uint64_t five_ex[5] = { 10, 20, 30, 40, 50 };

/* The five points in the order perm[k] = which point row k holds. */
static dt_round *
five_round(const int *perm)
{
	dt_round *t = dt_new(5, 2);
	uint64_t ex[5];
	for (int k = 0; k < 5; k++) {
		memcpy(dt_row(t, (uint32_t)k), five[perm[k]], sizeof five[0]);
		ex[k] = five_ex[perm[k]];
	}
	dt_examples(t, ex);
	return t;
}

static void
krum_pick(const fixture *f, const int *perm, uint32_t want)
{
	dt_round *t = five_round(perm);
	fmi_def *d = dt_open1(f->krum, NULL, 0, 2);
	FMT_PASS(dt_apply(d, t));
	assert_int_equal(t->r.nkeep, 1);
	assert_int_equal(t->keep[0], want);
	assert_int_equal(t->ke[0], t->up[want].num_examples);
	fmi_def_close(d);
	dt_free(t);
}

static void
test_krum_hand_computed_and_ties(void **state)
{
	const fixture *f = *state;
	const int id[5] = { 0, 1, 2, 3, 4 };
	const int rev[5] = { 4, 3, 2, 1, 0 };  /* x1 at row 3, x0 at row 4 */
	const int mid[5] = { 4, 2, 1, 3, 0 };  /* x1 at row 2, x0 at row 4 */
	krum_pick(f, id, 0);  /* tie x0/x1: row 0 */
	krum_pick(f, rev, 3); /* tie rows 3 (x1) and 4 (x0): row 3 */
	krum_pick(f, mid, 2);
}

/* x1 moved to (0.5, 0): x0 scores 0.25 + 4 = 4.25, x1 0.25 + 4.25 = 4.5;
 * x0 wins wherever it sits. */
static void
test_krum_clear_winner(void **state)
{
	const fixture *f = *state;
	const int perm[5] = { 2, 1, 4, 0, 3 };
	dt_round *t = five_round(perm);
	dt_row(t, 1)[0] = 0.5f;
	fmi_def *d = dt_open1(f->krum, NULL, 0, 2);
	FMT_PASS(dt_apply(d, t));
	assert_int_equal(t->r.nkeep, 1);
	assert_int_equal(t->keep[0], 3);
	assert_int_equal(t->ke[0], 10);
	fmi_def_close(d);
	dt_free(t);
}

/* Multi-Krum keeps the m lowest scores in score order, ties to the lower
 * row: rows hold x4 x3 x2 x1 x0 (scores 313 13 9 5 5). */
static void
test_multikrum_order(void **state)
{
	const fixture *f = *state;
	const int rev[5] = { 4, 3, 2, 1, 0 };
	const uint32_t want[4] = { 3, 4, 2, 1 };
	for (int m = 0; m <= 3; m += 3) { /* m = 3; m = 0 means n - f = 4 */
		dt_round *t = five_round(rev);
		fmi_def *d = dt_open1(f->multi, "m", m, 2);
		FMT_PASS(dt_apply(d, t));
		uint32_t nk = m == 0 ? 4 : (uint32_t)m;
		assert_int_equal(t->r.nkeep, nk);
		for (uint32_t k = 0; k < nk; k++) {
			assert_int_equal(t->keep[k], want[k]);
			assert_int_equal(t->ke[k], t->up[want[k]].num_examples);
		}
		fmi_def_close(d);
		dt_free(t);
	}
}

/*
 * Bulyan, n = 7, f = 1: theta = 5 by iterated Krum, beta = 3 (a few lines
 * of Python, by the definitions): choices x1 x2 x3 x0 x4 (scores, with
 * max(1, s-3) neighbours: 5.42; 5.98; 5.25; 6.25 tie x0/x4 -> x0; 13 tie
 * x4/x5 -> x4); coordinate 0: {1, .1, 1, 0, 2.5}, median 1, the 3 closest
 * 1, 1, .1 -> 0.7; coordinate 1: {.2, 1, 1, 0, 0}, median .2, closest .2,
 * 0, 0 -> 0.0667.
 */
static void
test_bulyan_hand_computed(void **state)
{
	const fixture *f = *state;
	const float x[7][2] = { { 0, 0 }, { 1, 0.2f }, { 0.1f, 1 }, { 1, 1 },
		{ 2.5f, 0 }, { 0.5f, 3 }, { 20, -20 } };
	const float want[2] = { 0.7f, 0.2f / 3 };
	for (double th = 1; th <= 2; th++) {
		dt_round *t = dt_new(7, 2);
		dt_set(t, &x[0][0]);
		fmi_def *d = dt_open1(f->bulyan, "threads", th, 2);
		FMT_PASS(dt_apply(d, t));
		dt_assert_row0(t);
		FMT_NEAR(dt_row(t, 0), want, 2, 1e-6);
		fmi_def_close(d);
		dt_free(t);
	}
}

/* Krum scores by a direct reference: distances by a loop over pairs in
 * double, the same scoring (n <= 64). */
static void
krum_ref_scores(dt_round *t, uint32_t fb, double *score)
{
	uint32_t n = t->r.n, nb = n - fb - 2;
	for (uint32_t i = 0; i < n; i++) {
		double d[64];
		uint32_t c = 0;
		for (uint32_t j = 0; j < n; j++) {
			if (j != i) {
				double s = dt_dist(dt_row(t, i), dt_row(t, j),
				    t->r.dim);
				d[c++] = s * s;
			}
		}
		for (uint32_t a = 1; a < c; a++) { /* insertion sort */
			for (uint32_t b = a; b > 0 && d[b - 1] > d[b]; b--) {
				double tmp = d[b];
				d[b] = d[b - 1];
				d[b - 1] = tmp;
			}
		}
		score[i] = 0;
		for (uint32_t k = 0; k < nb; k++) {
			score[i] += d[k];
		}
	}
}

/* Krum's choice against the direct reference. Random rows of 1000. */
static uint32_t
krum_reference(dt_round *t, uint32_t fb)
{
	double score[64];
	uint32_t best = 0;
	krum_ref_scores(t, fb, score);
	for (uint32_t i = 1; i < t->r.n; i++) {
		best = score[i] < score[best] ? i : best;
	}
	return best;
}

static void
test_krum_matches_direct_reference(void **state)
{
	const fixture *f = *state;
	for (uint64_t seed = 1; seed <= 5; seed++) {
		dt_round *t = dt_new(20, 1000);
		dt_random(t, seed, -1, 1);
		for (uint32_t i = 0; i < 3; i++) { /* a few rows closer */
			for (size_t j = 0; j < 1000; j++) {
				dt_row(t, i * 5)[j] *= 0.5f + 0.1f * (float)i;
			}
		}
		uint32_t want = krum_reference(t, 3);
		fmi_def *d = dt_open1(f->krum, "f", 3, 1000);
		FMT_PASS(dt_apply(d, t));
		assert_int_equal(t->keep[0], want);
		fmi_def_close(d);
		dt_free(t);
	}
}

/* f Byzantine rows of 1e6 among honest rows near 1: krum and multikrum
 * keep only honest rows, bulyan stays in the honest range; the plain mean
 * does not. dim 37 is not a multiple of the tile. */
static void
test_byzantine(void **state)
{
	const fixture *f = *state;
	enum { N = 11, FB = 2, D = 37 };
	float lo[D], hi[D], mean[D], avg[D];
	const fmi_component *c[3] = { f->krum, f->multi, f->bulyan };
	for (int k = 0; k < 3; k++) {
		dt_round *t = dt_new(N, D);
		dt_byzantine(t, FB, 5, lo, hi, mean);
		dt_mean(t, avg);
		/* averaging fails */
		assert_true(dt_outside(avg, lo, hi, D) < D);
		fmi_def *d = dt_open1(c[k], "f", FB, D);
		FMT_PASS(dt_apply(d, t));
		assert_true(t->r.nkeep >= 1);
		for (uint32_t i = 0; i < t->r.nkeep; i++) {
			assert_true(t->keep[i] < N - FB);
			const float *kept = dt_row(t, t->keep[i]);
			assert_true(dt_within(kept, lo, hi, D));
		}
		if (c[k] == f->multi) {
			assert_int_equal(t->r.nkeep, N - FB);
		}
		fmi_def_close(d);
		dt_free(t);
	}
}

/* A NaN row counts as infinitely far: never chosen. */
static void
test_non_finite_row(void **state)
{
	const fixture *f = *state;
	const int id[5] = { 0, 1, 2, 3, 4 };
	dt_round *t = five_round(id);
	dt_row(t, 0)[1] = NAN;
	fmi_def *d = dt_open1(f->krum, NULL, 0, 2);
	FMT_PASS(dt_apply(d, t));
	assert_int_equal(t->keep[0], 1); /* x1, tied with x0 before */
	fmi_def_close(d);
	dt_free(t);
}

/* Bulyan: the same result for any thread count, bit for bit. */
static void
test_bulyan_threads_bit_identical(void **state)
{
	const fixture *f = *state;
	enum { N = 15, D = 10007 }; /* theta 9 rows: enough work to split */
	dt_round *t0 = dt_new(N, D);
	dt_random(t0, 9, -1, 1);
	float ref[D];
	for (int th = 1; th <= 4; th++) {
		dt_round *t = dt_clone(t0);
		const fmi_param_in in[2] = { { "f", 0, 3, NULL },
			{ "threads", 0, th == 4 ? 0 : th, NULL } };
		fmi_def *d = dt_open(f->bulyan, in, 2, D);
		FMT_PASS(dt_apply(d, t));
		if (th == 1) {
			memcpy(ref, dt_row(t, 0), sizeof ref);
		}
		assert_memory_equal(ref, dt_row(t, 0), sizeof ref);
		fmi_def_close(d);
		dt_free(t);
	}
	dt_free(t0);
}

/* The Gram product split into column chunks (d = 196613: three chunks of
 * at most 65552, the last one shorter and not a multiple of 16): the
 * Multi-Krum order of all n rows is the same for 1, 2, 3 and all-CPU
 * threads, with 1 and 2 BLAS threads, with the plugin's AVX-512 Gram
 * kernel (where the CPU has it: tiles of 4 x 6 rows, here 15 rows) and
 * with OpenBLAS's ssyrk, and it is the order of the direct
 * double-precision scores. */
static void
test_multikrum_chunks_threads(void **state)
{
	const fixture *f = *state;
	enum { N = 15, D = 196613, FB = 3 };
	dt_round *t0 = dt_new(N, D);
	dt_random(t0, 11, -1, 1);
	for (uint32_t i = 0; i < N; i++) { /* scores apart, and each part */
		for (size_t j = 0; j < D; j++) { /* of the columns matters */
			uint32_t seg = (uint32_t)(j / 50000);
			dt_row(t0, i)[j] *= 0.3f + 0.05f *
			    (float)((i * (1 + 2 * seg) + 5 * seg) % N);
			/* a mean per row: every Gram entry G_ij then carries
			 * D m_i m_j, so one computed from the wrong pair of
			 * rows moves its distance by far more than the
			 * scores are apart */
			dt_row(t0, i)[j] += 1.0f + 0.1f * (float)i;
		}
	}
	double score[N];
	uint32_t want[N];
	krum_ref_scores(t0, FB, score);
	for (uint32_t i = 0; i < N; i++) { /* by (score, index) */
		uint32_t j = i;
		for (; j > 0 && score[want[j - 1]] > score[i]; j--) {
			want[j] = want[j - 1];
		}
		want[j] = i;
	}
	int blas = fmi_blas_get_threads();
	for (int th = 1; th <= 6; th++) {
		dt_round *t = dt_clone(t0);
		if (th == 6) { /* OpenBLAS's ssyrk instead of the AVX-512 kernel */
			setenv("FEDMESH_KRUM_KERNEL", "blas", 1);
		}
		fmi_blas_set_threads(th == 5 ? 2 : 1);
		const fmi_param_in in[3] = { { "f", 0, FB, NULL },
			{ "m", 0, N, NULL },
			{ "threads", 0, th == 4 ? 0 : th == 5 ? 2 : th, NULL } };
		fmi_def *d = dt_open(f->multi, in, 3, D);
		FMT_PASS(dt_apply(d, t));
		assert_int_equal(t->r.nkeep, N);
		assert_memory_equal(t->keep, want, sizeof want);
		fmi_def_close(d);
		dt_free(t);
	}
	unsetenv("FEDMESH_KRUM_KERNEL");
	fmi_blas_set_threads(blas);
	dt_free(t0);
}

static void
expect_refusal(const fmi_component *c, const char *p1, double v1,
    const char *p2, double v2, uint32_t n, const char *msg)
{
	fmt_logcap cap;
	const fmi_param_in in[2] = { { p1, 0, v1, NULL }, { p2, 0, v2, NULL } };
	dt_round *t = dt_new(n, 3);
	dt_random(t, 3, -1, 1);
	fmi_def *d = dt_open(c, in, p2 != NULL ? 2 : 1, 3);
	dt_quiet(&cap);
	FMT_FAIL(dt_apply(d, t), FM_EINVAL);
	dt_loud();
	assert_int_equal(t->r.nkeep, 0);
	assert_true(fmt_logcap_find(&cap, "FM-KRUM") >= 0);
	if (!dt_logged(&cap, msg)) {
		print_error("log lacks '%s': %s\n", msg, cap.lines[0]);
		fail();
	}
	fmi_def_close(d);
	dt_free(t);
}

static void
test_errors(void **state)
{
	const fixture *f = *state;
	expect_refusal(f->krum, "f", 1, NULL, 0, 4,
	    "krum: f = 1 needs at least 2f + 3 = 5 updates, round 1 has 4");
	expect_refusal(f->multi, "f", 2, NULL, 0, 6, "2f + 3 = 7");
	expect_refusal(f->multi, "f", 1, "m", 9, 8,
	    "multikrum: m = 9 is more than the 8 updates of round 1");
	expect_refusal(f->bulyan, "f", 1, NULL, 0, 6,
	    "bulyan: f = 1 needs at least 4f + 3 = 7 updates, round 1 has 6");
	expect_refusal(f->bulyan, "f", 2, NULL, 0, 10, "4f + 3 = 11");
	/* a wrong model size fails too, and an empty model at open */
	fmt_logcap cap;
	fmi_def *d = dt_open1(f->krum, NULL, 0, 3);
	dt_round *t = dt_new(5, 4);
	dt_quiet(&cap);
	FMT_FAIL(dt_apply(d, t), FM_EINVAL);
	fmi_def *e = NULL;
	FMT_FAIL(dt_try_open(f->bulyan, NULL, 0, 0, &e), FM_EINVAL);
	dt_loud();
	assert_null(e);
	assert_true(dt_logged(&cap, "empty model"));
	fmi_def_close(d);
	dt_free(t);
}

/* No updates: nothing passes, no error. */
static void
test_empty_round(void **state)
{
	const fixture *f = *state;
	const fmi_component *c[3] = { f->krum, f->multi, f->bulyan };
	for (int k = 0; k < 3; k++) {
		dt_round *t = dt_new(0, 3);
		fmi_def *d = dt_open1(c[k], NULL, 0, 3);
		FMT_PASS(dt_apply(d, t));
		assert_int_equal(t->r.nkeep, 0);
		fmi_def_close(d);
		dt_free(t);
	}
}

/* Multi-Krum then FedAvg, as the host chains them: the kept rows go to
 * a_accept with their examples; the model moves by their weighted mean.
 * Rows x4 x3 x2 x1 x0 with examples 50 40 30 20 10, m = 3 keeps rows
 * 3 (x1, 20), 4 (x0, 10), 2 (x2, 30): mean (20 (1,0) + 30 (0,2)) / 60. */
static void
test_composes_with_fedavg(void **state)
{
	const fixture *f = *state;
	const int rev[5] = { 4, 3, 2, 1, 0 };
	dt_round *t = five_round(rev);
	fmi_def *d = dt_open1(f->multi, "m", 3, 2);
	FMT_PASS(dt_apply(d, t));
	fm_value v[1];
	fmi_agg *a = NULL;
	FMT_PASS(fmi_params_resolve(f->fedavg, NULL, 0, v, NULL));
	FMT_PASS(fmi_agg_open(&a, f->fedavg,
	    &(fmi_open_args){ .params = v, .dim = 2, .role = FM_ROLE_SERVER,
	    .node_id = FM_NODE_SERVER, .seed = 1 },
	    NULL));
	float g[2] = { 1, 1 };
	int32_t ids[5] = { 1, 2, 3, 4, 5 };
	fm_round r = { .round = 1, .nclients = 5, .clients = ids, .global = g,
		.dim = 2 };
	FMT_PASS(fmi_agg_begin(a, &r));
	for (uint32_t k = 0; k < t->r.nkeep; k++) {
		fm_update u = t->up[t->keep[k]];
		u.num_examples = t->ke[k];
		FMT_PASS(pt_agg_accept1(a, &u));
	}
	FMT_PASS(pt_agg_finish(a, g, 2));
	const float want[2] = { 1 + 20.0f / 60, 1 + 60.0f / 60 };
	FMT_NEAR(g, want, 2, 1e-6);
	fmi_agg_close(a);
	fmi_def_close(d);
	dt_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_krum_hand_computed_and_ties),
		cmocka_unit_test(test_krum_clear_winner),
		cmocka_unit_test(test_multikrum_order),
		cmocka_unit_test(test_bulyan_hand_computed),
		cmocka_unit_test(test_krum_matches_direct_reference),
		cmocka_unit_test(test_byzantine),
		cmocka_unit_test(test_non_finite_row),
		cmocka_unit_test(test_bulyan_threads_bit_identical),
		cmocka_unit_test(test_multikrum_chunks_threads),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_empty_round),
		cmocka_unit_test(test_composes_with_fedavg),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
