/* SPDX-License-Identifier: MIT */
/* cmd_bench.c: `fedmesh bench train`: local training throughput as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "data/data.h"
#include "model/model.h"

const char fmi_bench_usage[] =
    "usage: fedmesh bench train [--model mlp|logreg|cnn] [--batch B] [--threads T]\n"
    "                           [--seconds S] [--lr LR] [--data DIR]\n"
    "                           [--dp-clip C] [--dp-noise Z]\n"
    "\n"
    "Trains on Fashion-MNIST (SGD, one model) for about S seconds (default 5)\n"
    "and prints one JSON line with samples_per_s. --threads sets the BLAS\n"
    "threads of the training process. mlp is 784-200-200-10, logreg 784-10,\n"
    "cnn the CNN of McMahan et al. 2017 (conv 5x5 32, pool, conv 5x5 64, pool,\n"
    "dense 512, 10; 1,663,370 parameters). --dp-clip C > 0 trains with\n"
    "DP-SGD: each example's gradient clipped to L2 norm C, Gaussian noise of\n"
    "std Z C (--dp-noise, default 0) added to each batch's sum.\n";

typedef struct bench_opts {
	const char *model, *data;
	long batch, threads;
	double seconds, lr;
	double dp_clip, dp_noise;
} bench_opts;

static int
parse_fail(const char *why)
{
	fprintf(stderr, "fedmesh bench: %s\n%s", why, fmi_bench_usage);
	return 2;
}

static int
parse(int argc, char **argv, bench_opts *o)
{
	/* each option and the field it sets: a string, an integer or a
	 * number */
	const struct {
		const char *name;
		const char **str;
		long *num_l;
		double *num_d;
	} opts[] = {
		{ "--model", &o->model, NULL, NULL },
		{ "--data", &o->data, NULL, NULL },
		{ "--batch", NULL, &o->batch, NULL },
		{ "--threads", NULL, &o->threads, NULL },
		{ "--seconds", NULL, NULL, &o->seconds },
		{ "--lr", NULL, NULL, &o->lr },
		{ "--dp-clip", NULL, NULL, &o->dp_clip },
		{ "--dp-noise", NULL, NULL, &o->dp_noise },
	};
	static const char *const models[] = { "mlp", "logreg", "cnn", NULL };
	char why[200];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		size_t k = 0;
		if (fmi_cli_is_help(a)) {
			fputs(fmi_bench_usage, stdout);
			return 0;
		}
		while (k < FMI_ARRAY_LEN(opts) && strcmp(a, opts[k].name) != 0) {
			k++;
		}
		if (k == FMI_ARRAY_LEN(opts)) {
			snprintf(why, sizeof why, "unknown argument '%s'", a);
			return parse_fail(why);
		}
		if (v == NULL) {
			snprintf(why, sizeof why, "%s needs a value", a);
			return parse_fail(why);
		}
		i++;
		char *end = NULL;
		if (opts[k].str != NULL) {
			*opts[k].str = v;
		} else if (opts[k].num_l != NULL) {
			*opts[k].num_l = strtol(v, &end, 10);
		} else {
			*opts[k].num_d = strtod(v, &end);
		}
		if (end != NULL && (end == v || *end != '\0')) {
			snprintf(why, sizeof why, "%s takes a number, not '%s'",
			    a, v);
			return parse_fail(why);
		}
	}
	size_t m = 0;
	while (models[m] != NULL && strcmp(o->model, models[m]) != 0) {
		m++;
	}
	if (models[m] == NULL) {
		const char *near = fmi_closest(o->model, models);
		snprintf(why, sizeof why, "--model '%s' is not a model this "
		    "benchmark has (mlp, logreg or cnn%s%s%s)", o->model,
		    near ? "; did you mean '" : "", near ? near : "",
		    near ? "'?" : "");
	} else if (o->batch < 1 || o->batch > 65536) {
		snprintf(why, sizeof why, "--batch takes 1 to 65536, not %ld",
		    o->batch);
	} else if (o->threads < 1 || o->threads > 256) {
		snprintf(why, sizeof why, "--threads takes 1 to 256, not %ld",
		    o->threads);
	} else if (!(o->seconds > 0)) {
		snprintf(why, sizeof why, "--seconds must be positive");
	} else if (!(o->dp_clip >= 0) || !(o->dp_noise >= 0) ||
	    (o->dp_noise > 0 && o->dp_clip == 0)) {
		snprintf(why, sizeof why, "--dp-clip and --dp-noise take numbers "
		    ">= 0, and --dp-noise needs --dp-clip > 0");
	} else {
		return -1;
	}
	return parse_fail(why);
}

static int
bench_arch(fmi_arch *a, const char *model, fm_error *e)
{
	static const uint32_t mlp[] = { 784, 200, 200, 10 }, lr[] = { 784, 10 };
	static const fmi_cnn_shape cnn = { 28, 5, { 32, 64 }, 512, 10 };
	if (strcmp(model, "cnn") == 0) {
		return fmi_arch_cnn(a, &cnn, e);
	}
	int is_mlp = strcmp(model, "mlp") == 0;
	return fmi_arch_mlp(a, is_mlp ? mlp : lr, is_mlp ? 4 : 2, e);
}

static int
bench_train(const bench_opts *o)
{
	fmi_dataset *tr, *te;
	fm_error e;
	if (fmi_fmnist_load(&tr, &te, o->data, &e) != FM_OK) {
		fprintf(stderr, "fedmesh bench: %s\n", e.msg);
		return 1;
	}
	fmi_arch a;
	fmi_trainer *t = NULL;
	int rv = bench_arch(&a, o->model, &e);
	if (rv == FM_OK) {
		rv = fmi_trainer_new(&t, &a, (size_t)o->batch);
	}
	uint32_t *idx = malloc(tr->n * sizeof *idx);
	if (rv != FM_OK || idx == NULL) {
		fprintf(stderr, "fedmesh bench: cannot set up the model\n");
		rv = 1;
		goto out;
	}
	fm_rng rng;
	fmi_rng_seed(&rng, 1, 0);
	fmi_arch_init_params(&a, fmi_trainer_params(t), &rng);
	for (size_t i = 0; i < tr->n; i++) {
		idx[i] = (uint32_t)i;
	}
	fmi_blas_set_threads((int)o->threads);
	fmi_local_cfg lc = { .epochs = 1, .batch = (uint32_t)o->batch,
		.opt = { (float)o->lr, 0, 0 },
		.dp = { .clip = o->dp_clip, .noise_multiplier = o->dp_noise } };
	size_t chunk = (size_t)o->batch * 64, samples = 0, off = 0;
	uint64_t clipped = 0;
	double norm_sum = 0;
	fmi_train_stats st;
	rv = fmi_train_local(t, tr, idx, chunk, &lc, &rng, &st); /* warm up */
	double t0 = fmi_now(), el = 0;
	while (rv == FM_OK && el < o->seconds) {
		size_t n = FMI_MIN(chunk, tr->n - off);
		rv = fmi_train_local(t, tr, idx + off, n, &lc, &rng, &st);
		samples += n;
		clipped += st.dp_clipped;
		norm_sum += st.dp_mean_norm * (double)n;
		off = (off + n) % tr->n;
		el = fmi_now() - t0;
	}
	if (rv != FM_OK) {
		fprintf(stderr, "fedmesh bench: training failed: %s\n",
		    fm_strerror(rv));
		rv = 1;
		goto out;
	}
	printf("{\"bench\":\"train\",\"model\":\"%s\",\"params\":%zu,"
	    "\"batch\":%ld,\"threads\":%ld,\"samples\":%zu,\"seconds\":%.3f,"
	    "\"samples_per_s\":%.1f,\"last_loss\":%.4f", o->model, a.nparams,
	    o->batch, o->threads, samples, el, (double)samples / el, st.loss);
	if (o->dp_clip > 0) {
		printf(",\"dp_clip\":%g,\"dp_noise\":%g,\"dp_clipped_frac\":%.4f,"
		    "\"dp_mean_norm\":%.4f", o->dp_clip, o->dp_noise,
		    samples ? (double)clipped / (double)samples : 0.0,
		    samples ? norm_sum / (double)samples : 0.0);
	}
	printf("}\n");
	rv = 0;
out:
	free(idx);
	fmi_trainer_free(t);
	fmi_dataset_unref(tr);
	fmi_dataset_unref(te);
	return rv;
}

int
fmi_cmd_bench(int argc, char **argv)
{
	bench_opts o = { "mlp", NULL, 32, 1, 5.0, 0.05, 0.0, 0.0 };
	if (argc < 2 || fmi_cli_is_help(argv[1])) {
		fputs(fmi_bench_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "train") != 0) {
		fprintf(stderr, "fedmesh bench: unknown benchmark '%s'\n%s",
		    argv[1], fmi_bench_usage);
		return 2;
	}
	int rv = parse(argc, argv, &o);
	return rv >= 0 ? rv : bench_train(&o);
}
