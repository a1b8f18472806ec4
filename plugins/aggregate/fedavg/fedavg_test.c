/* SPDX-License-Identifier: MIT */
/* fedavg_test.c: conformance of the built-in fedavg plugin, loaded as a .so. */
#define _DEFAULT_SOURCE /* PATH_MAX */

#include <pthread.h>

#include "fm_test.h"

#include "fm_plugin_test.h"

#include "../../ptest.h"
#include "../accumulate.h" /* the kernels, to compare them directly */

#define DIM 4

typedef fmt_plugin_fixture fixture;

static int
setup(void **state)
{
	return fmt_plugin_setup(state, "fedavg.so", FM_KIND_AGGREGATOR,
	    "fedavg");
}

static fmi_agg *
open_agg(const fixture *f, size_t dim)
{
	fmi_agg *a = NULL;
	fmi_open_args args = pt_args(NULL, dim, FM_ROLE_SERVER,
	    FM_NODE_SERVER, 42);
	FMT_PASS(fmi_agg_open(&a, f->c, &args, NULL));
	return a;
}

/* One round: begin, accept deltas[k] (weights n[k]), poisoning each
 * delta after its call, then finish into global. */
static void
run_round(fmi_agg *a, float *global, const float (*deltas)[DIM],
    const uint64_t *n, uint32_t nup)
{
	int32_t ids[8];
	float buf[DIM];
	fm_round r = PT_ROUND(1, nup, ids, global, DIM, 0, 1.0);
	for (uint32_t k = 0; k < nup; k++) {
		ids[k] = (int32_t)k + 1;
	}
	FMT_PASS(fmi_agg_begin(a, &r));
	for (uint32_t k = 0; k < nup; k++) {
		memcpy(buf, deltas[k], sizeof buf);
		fm_update u = PT_UPDATE(ids[k], 1, buf, DIM, n[k], 0.1, 0);
		FMT_PASS(pt_agg_accept1(a, &u));
		for (int i = 0; i < DIM; i++) { /* borrowed: must not be kept */
			buf[i] = NAN;
		}
	}
	FMT_PASS(pt_agg_finish(a, global, DIM));
}

static void
test_abi(void **state)
{
	const fixture *f = *state;
	const fm_plugin_info *in = f->c->plugin;
	assert_int_equal(in->magic, FM_PLUGIN_MAGIC);
	assert_int_equal(in->abi_major, FM_PLUGIN_ABI_MAJOR);
	assert_int_equal(in->info_size, sizeof(fm_plugin_info));
	assert_int_equal(in->build_sig, FM_PLUGIN_BUILD_SIG);
	assert_int_equal(in->ncomponents, 1);
	assert_non_null(f->c->desc->params); /* declared, empty */
	assert_int_equal(fmi_component_nparams(f->c), 0);
	assert_int_equal(in->component_size, sizeof(fm_component_desc));
	const fm_aggregator_ops *ops = f->c->ops;
	assert_int_equal(ops->base.struct_size, sizeof(fm_aggregator_ops));
	assert_int_equal(ops->base.kind, FM_KIND_AGGREGATOR);
	assert_int_equal(f->c->desc->kind, FM_KIND_AGGREGATOR);
	assert_string_equal(f->c->desc->name, "fedavg");
	assert_null(ops->base.on_message); /* no client-side instance needed */
	assert_null(ops->base.save); /* no state across rounds */
}

/* global += sum_k n_k delta_k / sum_k n_k, computed by hand. */
static void
test_weighted_average(void **state)
{
	const float d[3][DIM] = { { 1, 0, -1, 2 }, { 3, 3, 3, 3 },
		{ 100, 100, 100, 100 } };
	const uint64_t n[3] = { 1, 3, 0 }; /* the third weighs nothing */
	float g[DIM] = { 1, 2, 3, 4 };
	const float want[DIM] = { 3.5f, 4.25f, 5.0f, 6.75f };
	fmi_agg *a = open_agg(*state, DIM);
	run_round(a, g, d, n, 3);
	FMT_NEAR(g, want, DIM, 1e-6);
	fmi_agg_close(a);
}

static void
test_single_update_passes_through(void **state)
{
	const float d[1][DIM] = { { 0.25f, -0.5f, 1e-3f, 7 } };
	const uint64_t n[1] = { 17 };
	float g[DIM] = { 1, 1, 1, 1 };
	const float want[DIM] = { 1.25f, 0.5f, 1.001f, 8 };
	fmi_agg *a = open_agg(*state, DIM);
	run_round(a, g, d, n, 1);
	FMT_NEAR(g, want, DIM, 1e-6);
	fmi_agg_close(a);
}

static void
test_empty_round_leaves_global(void **state)
{
	const float d[1][DIM] = { { 5, 5, 5, 5 } };
	const uint64_t n[1] = { 0 };
	float g[DIM] = { 1, -2, 3, -4 }, orig[DIM];
	memcpy(orig, g, sizeof g);
	fmi_agg *a = open_agg(*state, DIM);
	run_round(a, g, d, n, 0);
	assert_memory_equal(g, orig, sizeof g);
	run_round(a, g, d, n, 1); /* only zero-example updates */
	assert_memory_equal(g, orig, sizeof g);
	fmi_agg_close(a);
}

/* Same inputs, same bits; and rounds do not leak into each other. */
static void
test_deterministic(void **state)
{
	const float d[2][DIM] = { { 0.1f, 0.2f, 0.3f, 0.4f },
		{ -0.3f, 0.7f, 1.1f, 0.05f } };
	const uint64_t n[2] = { 13, 29 };
	float g1[DIM] = { 0.5f, 0.5f, 0.5f, 0.5f }, g2[DIM], g3[DIM];
	memcpy(g2, g1, sizeof g1);
	fmi_agg *a = open_agg(*state, DIM), *b = open_agg(*state, DIM);
	run_round(a, g1, d, n, 2);
	run_round(b, g2, d, n, 2);
	assert_memory_equal(g1, g2, sizeof g1);
	memcpy(g3, g1, sizeof g1);
	run_round(a, g1, d, n, 2); /* round 2 on a used instance ... */
	fmi_agg *c = open_agg(*state, DIM);
	run_round(c, g3, d, n, 2); /* ... equals round 1 on a fresh one */
	assert_memory_equal(g1, g3, sizeof g1);
	fmi_agg_close(a);
	fmi_agg_close(b);
	fmi_agg_close(c);
}

static void
test_wrong_dims_refused(void **state)
{
	float g[DIM] = { 0 }, d[DIM] = { 1, 1, 1, 1 };
	int32_t id = 1;
	fmi_agg *a = open_agg(*state, DIM);
	fm_round bad = PT_ROUND(1, 1, &id, g, DIM + 1, 0, 1.0),
	    ok = PT_ROUND(1, 1, &id, g, DIM, 0, 1.0);
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

/* A node link with `threads` workers: host->parallel_for runs the chunks
 * on that many threads (the plugin starts none). */
static uint32_t pf_nthreads[4] = { 1, 2, 3, 8 };
static fmi_node_link pf_link[4];

static fmi_agg *
open_agg_threads(const fixture *f, size_t dim, int which)
{
	fmi_node_link *l = &pf_link[which];
	memset(l, 0, sizeof *l);
	l->threads = pf_nthreads[which]; /* host->parallel_for's */
	fmi_open_args args = pt_args(NULL, dim, FM_ROLE_SERVER,
	    FM_NODE_SERVER, 42);
	args.link = l;
	fmi_agg *a = NULL;
	FMT_PASS(fmi_agg_open(&a, f->c, &args, NULL));
	return a;
}

/* A model large enough for host->parallel_for (chunks of the coordinates
 * on the node's worker threads) gives the same bits on 1, 2, 3 and 8
 * threads as one fused multiply-add per update in order, by hand. */
static void
test_two_threads_same_bits(void **state)
{
	const fixture *f = *state;
	const fm_host_api *host = fmi_host_api();
	const size_t dim = 70000 + 37;
	const uint64_t n[3] = { 7, 1, 30 };
	float *d = malloc(3 * dim * sizeof(float));
	float *g = malloc(dim * sizeof(float)), *want = malloc(dim * sizeof(float));
	float *acc = calloc(dim, sizeof(float));
	int32_t ids[3] = { 1, 2, 3 };
	assert_non_null(d);
	assert_non_null(g);
	assert_non_null(want);
	assert_non_null(acc);
	for (size_t i = 0; i < 3 * dim; i++) {
		d[i] = (float)((i * 2654435761u) % 1000) / 997.0f - 0.5f;
	}
	for (size_t i = 0; i < dim; i++) {
		g[i] = want[i] = 0.25f;
	}
	for (int k = 0; k < 3; k++) { /* what fedavg does, on one thread */
		for (size_t i = 0; i < dim; i++) {
			acc[i] = fmaf((float)n[k], d[k * dim + i], acc[i]);
		}
	}
	host->axpy(dim, (float)(1.0 / 38.0), acc, want);
	for (int t = 0; t < 4; t++) {
		fmi_agg *a = open_agg_threads(f, dim, t);
		for (size_t i = 0; i < dim; i++) {
			g[i] = 0.25f;
		}
		fm_round r = PT_ROUND(1, 3, ids, g, dim, 3, 1.0);
		FMT_PASS(fmi_agg_begin(a, &r));
		for (int k = 0; k < 3; k++) {
			fm_update u = PT_UPDATE(ids[k], 1, d + k * dim, dim,
			    n[k], 0, 0);
			FMT_PASS(pt_agg_accept1(a, &u));
		}
		FMT_PASS(pt_agg_finish(a, g, dim));
		assert_memory_equal(g, want, dim * sizeof(float));
		fmi_agg_close(a);
	}
	free(acc);
	free(d);
	free(g);
	free(want);
}

/* One round over nup updates of dim floats, through accept one by one
 * (many = 0) or all in one accept call (many = 1), on threads[which]
 * worker threads; the new global model. */
static float *
avg_round(const fixture *f, const float *d, const uint64_t *n,
    const size_t *dims, uint32_t nup, size_t dim, int many, int which,
    int *status)
{
	int32_t ids[40];
	fm_update u[40];
	float *g = malloc(dim * sizeof(float));
	assert_non_null(g);
	for (size_t i = 0; i < dim; i++) {
		g[i] = 0.5f;
	}
	fmi_agg *a = open_agg_threads(f, dim, which);
	for (uint32_t k = 0; k < nup; k++) {
		ids[k] = (int32_t)k + 1;
		u[k] = (fm_update)PT_UPDATE(ids[k], 1, d + k * dim, dims[k],
		    n[k], 0, 0);
	}
	fm_round r = PT_ROUND(1, nup, ids, g, dim, nup, 1.0);
	FMT_PASS(fmi_agg_begin(a, &r));
	if (many) {
		FMT_PASS(fmi_agg_accept(a, u, nup, status));
	} else {
		for (uint32_t k = 0; k < nup; k++) {
			status[k] = pt_agg_accept1(a, &u[k]);
		}
	}
	FMT_PASS(pt_agg_finish(a, g, dim));
	fmi_agg_close(a);
	return g;
}

/* What the plugin must give: x[k] of the updates with status FM_OK and
 * examples, summed by kernel in passes of at most FM_ACC_GROUP, then
 * out = 0.5 + acc / weight. */
static float *
kernel_round(fm_acc_kernel kernel, const float *d, const uint64_t *n,
    const int *status, uint32_t nup, size_t dim)
{
	float *acc = calloc(dim, sizeof(float)), *g = malloc(dim * sizeof(float));
	float w[FM_ACC_GROUP];
	const float *x[FM_ACC_GROUP];
	double weight = 0;
	uint32_t k = 0;
	assert_non_null(acc);
	assert_non_null(g);
	for (uint32_t i = 0; i < nup; i++) {
		if (status[i] != FM_OK || n[i] == 0) {
			continue;
		}
		w[k] = (float)n[i];
		x[k++] = d + i * dim;
		weight += (double)n[i];
		if (k == FM_ACC_GROUP) {
			kernel(acc, 0, dim, k, w, x);
			k = 0;
		}
	}
	if (k > 0) {
		kernel(acc, 0, dim, k, w, x);
	}
	for (size_t i = 0; i < dim; i++) {
		g[i] = 0.5f;
	}
	fmi_host_api()->axpy(dim, (float)(1.0 / weight), acc, g);
	free(acc);
	return g;
}

/* accept of n updates at once is accept in a loop, bit for bit (1.x's
 * a_accept_many against a_accept): more updates than one pass sums
 * (40 > 16), a size the vector kernels end unevenly on, 1 and 3 worker
 * threads, zero-example and wrong-size updates (status says which); and
 * the plain C and AVX2 kernels (called directly: the plugin reads no
 * environment to be forced onto one) give the same bits as the plugin,
 * which runs the CPU's widest one. */
static void
test_accept_many_same_bits(void **state)
{
	const fixture *f = *state;
	const uint32_t nup = 40;
	const size_t dims_big[] = { 70000 + 13, 61 };
	for (int t = 0; t < 2; t++) {
		size_t dim = dims_big[t];
		float *d = malloc(nup * dim * sizeof(float));
		uint64_t n[40];
		size_t dims[40];
		int st1[40], st2[40], st3[40];
		assert_non_null(d);
		for (size_t i = 0; i < nup * dim; i++) {
			d[i] = (float)((i * 2654435761u) % 1000) / 997.0f - 0.5f;
		}
		for (uint32_t k = 0; k < nup; k++) {
			n[k] = k % 7 == 3 ? 0 : 1 + (k * 37) % 500;
			dims[k] = k == 5 ? dim - 1 : dim; /* refused */
		}
		float *g1 = avg_round(f, d, n, dims, nup, dim, 0, 0, st1);
		float *g2 = avg_round(f, d, n, dims, nup, dim, 1, 0, st2);
		float *g3 = avg_round(f, d, n, dims, nup, dim, 1, 2, st3);
		float *g4 = kernel_round(fm_acc_sum_c, d, n, st1, nup, dim);
#ifdef FM_ACC_X86
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx2") &&
		    __builtin_cpu_supports("fma")) {
			float *g5 = kernel_round(fm_acc_sum_avx2, d, n, st1,
			    nup, dim);
			assert_memory_equal(g1, g5, dim * sizeof(float));
			free(g5);
		}
		if (__builtin_cpu_supports("avx512f")) {
			float *g5 = kernel_round(fm_acc_sum_avx512, d, n, st1,
			    nup, dim);
			assert_memory_equal(g1, g5, dim * sizeof(float));
			free(g5);
		}
#endif
		for (uint32_t k = 0; k < nup; k++) {
			assert_int_equal(st1[k], k == 5 ? FM_EINVAL : FM_OK);
			assert_int_equal(st2[k], st1[k]);
			assert_int_equal(st3[k], st1[k]);
		}
		assert_memory_equal(g1, g2, dim * sizeof(float));
		assert_memory_equal(g1, g3, dim * sizeof(float));
		assert_memory_equal(g1, g4, dim * sizeof(float));
		assert_true(g1[0] != 0.5f); /* the round did move the model */
		free(g1);
		free(g2);
		free(g3);
		free(g4);
		free(d);
	}
}

static void *
no_calloc(size_t n, size_t size)
{
	(void)n;
	(void)size;
	return NULL;
}

/* fini is safe after a failed init and on never-initialised state. */
static void
test_init_fini_after_failure(void **state)
{
	const fixture *f = *state;
	const fm_aggregator_ops *ops = f->c->ops;
	fmi_agg *a = (fmi_agg *)0x1;
	fm_error e;
	FMT_FAIL(fmi_agg_open(&a, f->c,
	    &(fmi_open_args){ .params = NULL, .dim = 0, .role = FM_ROLE_SERVER,
	    .node_id = 0, .seed = 1 },
	    &e), FM_EINVAL);
	assert_true(a == (fmi_agg *)0x1);
	assert_non_null(strstr(e.msg, "fedavg"));

	fm_host_api host = *fmi_host_api();
	host.calloc = no_calloc;
	fm_instance inst = { &host, NULL, 0, FM_ROLE_SERVER, 0, (uint32_t)sizeof(fm_instance), DIM, 1, NULL, 0, 0 };
	void *st = calloc(1, ops->base.state_size);
	assert_non_null(st);
	FMT_FAIL(ops->base.init(st, &inst), FM_ENOMEM);
	ops->base.fini(st);
	memset(st, 0, ops->base.state_size);
	ops->base.fini(st);
	free(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_weighted_average),
		cmocka_unit_test(test_two_threads_same_bits),
		cmocka_unit_test(test_accept_many_same_bits),
		cmocka_unit_test(test_single_update_passes_through),
		cmocka_unit_test(test_empty_round_leaves_global),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_wrong_dims_refused),
		cmocka_unit_test(test_init_fini_after_failure),
	};
	return cmocka_run_group_tests(tests, setup, fmt_plugin_teardown);
}
