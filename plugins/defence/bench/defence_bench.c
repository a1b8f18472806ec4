/* SPDX-License-Identifier: MIT */
/*
 * defence_bench.c: seconds per aggregation of every built-in defence at
 * n updates of d parameters (default n = 100, d = 1M, the issue's
 * benchmark), against FedAvg through the fedavg plugin (its effective
 * GB/s: one pass over the updates). Run by hand (not a test):
 *
 *   cmake --build build --target fm_defence_bench
 *   build/tests/bin/fm_defence_bench [n] [d] [reps]
 *
 * Prints one JSON object per line. Every defence gets a fresh copy of the
 * updates (defences rewrite rows); the copy is not timed. Threads: the
 * defences' default (2); BLAS (Krum's Gram matrix) uses OpenBLAS's own
 * pool (OPENBLAS_NUM_THREADS, OPENBLAS_CORETYPE apply).
 */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedmesh/fedmesh.h"

#include "core/core.h"
#include "plugin/registry.h"

/* OpenBLAS (linked through libfedmesh): which kernels it picked. */
char *openblas_get_corename(void);

#ifndef FM_PLUGIN_OUT_DIR
#define FM_PLUGIN_OUT_DIR "lib/fedmesh/plugins"
#endif

typedef struct bench {
	fmi_registry *reg;
	uint32_t n, reps;
	size_t d, stride;
	float *x, *work, *global, *root;
	fm_update *up;
	uint32_t *keep;
	uint64_t *ke;
	double fedavg;
} bench;

static int
bench_load(bench *b, const char *file)
{
	const char *dir = getenv("FEDMESH_BUILTIN_PLUGIN_DIR");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s",
	    dir != NULL ? dir : FM_PLUGIN_OUT_DIR, file);
	fm_error e;
	int rv = fmi_registry_load_file(b->reg, path, &e);
	if (rv != FM_OK) {
		fprintf(stderr, "defence_bench: %s\n", e.msg);
	}
	return rv;
}

static int
bench_alloc(bench *b)
{
	size_t bytes = (size_t)b->n * b->stride * sizeof(float);
	b->x = aligned_alloc(64, bytes);
	b->work = aligned_alloc(64, bytes);
	b->global = calloc(b->d, sizeof(float));
	b->root = calloc(b->d, sizeof(float));
	b->up = calloc(b->n, sizeof *b->up);
	b->keep = calloc(b->n, sizeof *b->keep);
	b->ke = calloc(b->n, sizeof *b->ke);
	if (!b->x || !b->work || !b->global || !b->root || !b->up ||
	    !b->keep || !b->ke) {
		return FM_ENOMEM;
	}
	fm_rng g;
	fmi_rng_seed(&g, 1, 0);
	for (uint32_t i = 0; i < b->n; i++) {
		float *row = b->x + (size_t)i * b->stride;
		for (size_t j = 0; j < b->d; j++) {
			row[j] = (float)(0.01 * fmi_rng_normal(&g)) + 0.001f;
		}
		b->up[i] = (fm_update){ .client = (int32_t)i + 1, .round = 1,
			.dim = b->d, .num_examples = 100 + i, .loss = 0.5 };
	}
	for (size_t j = 0; j < b->d; j++) {
		b->root[j] = 0.001f;
	}
	return FM_OK;
}

/* FedAvg through its plugin: the reference time. */
static void
bench_fedavg(bench *b)
{
	double best = INFINITY, gb = (double)b->n * b->d * 4 / 1e9;
	const fmi_component *c = fmi_registry_find(b->reg, FM_KIND_AGGREGATOR,
	    "fedavg");
	fm_value v[1];
	fmi_agg *a = NULL;
	if (c == NULL || fmi_params_resolve(c, NULL, 0, v, NULL) != FM_OK ||
	    fmi_agg_open(&a, c, v, b->d, FM_ROLE_SERVER, FM_NODE_SERVER, 1,
	    NULL, NULL) != FM_OK) {
		return;
	}
	for (uint32_t rep = 0; rep < b->reps; rep++) {
		int32_t ids[1] = { 1 };
		fm_round r = { .round = rep + 1, .nclients = 1, .clients = ids,
			.global = b->global, .dim = b->d };
		double t = fmi_now();
		a->ops->a_begin(a->h.state, &r);
		for (uint32_t i = 0; i < b->n; i++) {
			fm_update u = b->up[i];
			u.delta = b->x + (size_t)i * b->stride;
			a->ops->a_accept(a->h.state, &u);
		}
		a->ops->a_finish(a->h.state, b->global, b->d);
		t = fmi_now() - t;
		best = t < best ? t : best;
	}
	b->fedavg = best;
	printf("{\"bench\":\"fedavg\",\"n\":%u,\"d\":%zu,\"seconds\":%.4f,"
	    "\"gb_per_s\":%.2f}\n", b->n, b->d, best, gb / best);
	fmi_agg_close(a);
}

static void
bench_defence(bench *b, const char *name, const fmi_param_in *in, size_t nin,
    const char *label)
{
	const fmi_component *c = fmi_registry_find(b->reg, FM_KIND_DEFENCE,
	    name);
	fm_value v[16];
	fmi_def *d = NULL;
	fm_error e;
	if (c == NULL || fmi_params_resolve(c, in, nin, v, &e) != FM_OK ||
	    fmi_def_open(&d, c, v, b->d, FM_ROLE_SERVER, FM_NODE_SERVER, 1,
	    &e) != FM_OK) {
		fprintf(stderr, "defence_bench: %s: cannot open\n", name);
		return;
	}
	double best = INFINITY;
	int rv = FM_OK;
	for (uint32_t rep = 0; rep < b->reps && rv == FM_OK; rep++) {
		memcpy(b->work, b->x, (size_t)b->n * b->stride * sizeof(float));
		for (uint32_t i = 0; i < b->n; i++) {
			b->up[i].delta = b->work + (size_t)i * b->stride;
		}
		fm_defence_round r = { .struct_size = sizeof r,
			.round = rep + 1, .n = b->n, .dim = b->d,
			.deltas = b->work, .stride = b->stride,
			.updates = b->up,
			.global = b->global, .server_delta = b->root,
			.keep = b->keep, .keep_examples = b->ke };
		double t = fmi_now();
		rv = d->ops->d_apply(d->h.state, &r);
		t = fmi_now() - t;
		best = t < best ? t : best;
	}
	printf("{\"bench\":\"%s\",\"n\":%u,\"d\":%zu,\"seconds\":%.4f,"
	    "\"x_fedavg\":%.2f,\"ok\":%s}\n", label, b->n, b->d, best,
	    best / b->fedavg, rv == FM_OK ? "true" : "false");
	fmi_def_close(d);
}

static void
bench_all(bench *b)
{
	const fmi_param_in f10 = { "f", 0, 10, NULL };
	const fmi_param_in one = { "threads", 0, 1, NULL };
	bench_defence(b, "krum", &f10, 1, "krum f=10");
	bench_defence(b, "multikrum", &f10, 1, "multikrum f=10");
	bench_defence(b, "bulyan", &f10, b->n >= 43 ? 1 : 0,
	    b->n >= 43 ? "bulyan f=10" : "bulyan f=1");
	bench_defence(b, "median", &one, 1, "median threads=1");
	bench_defence(b, "median", NULL, 0, "median threads=2");
	bench_defence(b, "trimmed_mean", NULL, 0, "trimmed_mean threads=2");
	const fmi_param_in ftol0 = { "ftol", 0, 0, NULL };
	bench_defence(b, "geomedian", NULL, 0, "geomedian");
	bench_defence(b, "geomedian", &ftol0, 1, "geomedian ftol=0 (10 iters)");
	bench_defence(b, "clipping", NULL, 0, "clipping");
	bench_defence(b, "centered_clipping", NULL, 0, "centered_clipping");
	bench_defence(b, "fltrust", NULL, 0, "fltrust");
}

int
main(int argc, char **argv)
{
	bench b = { .n = 100, .reps = 3, .d = 1000000 };
	if (argc > 1) {
		b.n = (uint32_t)strtoul(argv[1], NULL, 10);
	}
	if (argc > 2) {
		b.d = (size_t)strtoull(argv[2], NULL, 10);
	}
	if (argc > 3) {
		b.reps = (uint32_t)strtoul(argv[3], NULL, 10);
	}
	b.stride = (b.d + 15) / 16 * 16;
	const char *files[] = { "fedavg.so", "krum.so", "coordinate.so",
		"geomedian.so", "clipping.so", "fltrust.so" };
	if (b.n < 1 || b.d < 1 || b.reps < 1 ||
	    fmi_registry_new(&b.reg) != FM_OK || bench_alloc(&b) != FM_OK) {
		fprintf(stderr, "usage: fm_defence_bench [n] [d] [reps]\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		if (bench_load(&b, files[i]) != FM_OK) {
			return 1;
		}
	}
	printf("{\"bench\":\"env\",\"blas_core\":\"%s\","
	    "\"blas_threads\":%d}\n", openblas_get_corename(),
	    fmi_blas_get_threads());
	bench_fedavg(&b);
	bench_all(&b);
	fmi_registry_free(b.reg);
	free(b.x);
	free(b.work);
	free(b.global);
	free(b.root);
	free(b.up);
	free(b.keep);
	free(b.ke);
	return 0;
}
