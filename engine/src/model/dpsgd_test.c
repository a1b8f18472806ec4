/* SPDX-License-Identifier: MIT */
/*
 * dpsgd_test.c: DP-SGD in local training. Per-example norms and the
 * clipped sum against a naive loop of batch-size-1 backward passes (MLP,
 * logistic regression, CNN in one chunk and in several); DP-SGD with
 * z = 0 and a huge clip against plain SGD; each example's contribution
 * bounded by the clip; the noise's distribution, where it goes and the
 * callback; bad parameters refused.
 */
#include "fm_test.h"

#include "core/core.h"
#include "model/model_impl.h"

/* ---- helpers -------------------------------------------------------------- */

enum { M_LOGREG, M_MLP, M_CNN_SMALL, M_CNN_FULL, M_COUNT };

static fmi_arch
make_model(int which)
{
	static const uint32_t lr[] = { 12, 5 }, mlp[] = { 12, 9, 7, 5 };
	static const fmi_cnn_shape small = { 8, 3, { 3, 4 }, 6, 5 };
	static const fmi_cnn_shape full = { 28, 5, { 32, 64 }, 512, 10 };
	fmi_arch a;
	fm_error e;
	switch (which) {
	case M_LOGREG:
		FMT_PASS(fmi_arch_mlp(&a, lr, 2, &e));
		break;
	case M_MLP:
		FMT_PASS(fmi_arch_mlp(&a, mlp, 4, &e));
		break;
	case M_CNN_SMALL:
		FMT_PASS(fmi_arch_cnn(&a, &small, &e));
		break;
	default:
		FMT_PASS(fmi_arch_cnn(&a, &full, &e));
		break;
	}
	return a;
}

static void
fill_normal(float *x, size_t n, fm_rng *r, double sd)
{
	for (size_t i = 0; i < n; i++) {
		x[i] = (float)(sd * fmi_rng_normal(r));
	}
}

/* Parameters N(0, (scale / sqrt(fan_in))^2) per layer, so that every
 * layer's gradient carries signal. */
static void
fill_params(const fmi_arch *a, float *p, fm_rng *r, double scale)
{
	int cnn = fmi_arch_is_cnn(a);
	for (uint32_t s = 0; s < a->nslices; s++) {
		const fmi_slice *sl = &a->slices[s];
		const fmi_slice *w = &a->slices[s & ~1u];
		size_t fan_in = cnn ? w->cols : w->rows;
		fill_normal(p + sl->offset, sl->rows * sl->cols, r,
		    scale / sqrt((double)fan_in));
	}
}

static fmi_dataset *
random_data(const fmi_arch *a, size_t n, uint64_t seed)
{
	fmi_dataset *d;
	uint32_t k = a->widths[a->nlayers];
	FMT_PASS(fmi_dataset_new(&d, n, a->widths[0], k));
	fm_rng r;
	fmi_rng_seed(&r, seed, 0);
	fill_normal(d->x, n * a->widths[0], &r, 1.0);
	for (size_t i = 0; i < n; i++) {
		d->y[i] = (int32_t)fmi_rng_below(&r, k);
	}
	return d;
}

static fmi_trainer *
make_trainer(const fmi_arch *a, size_t max_batch, uint64_t seed)
{
	fmi_trainer *t;
	FMT_PASS(fmi_trainer_new(&t, a, max_batch));
	fm_rng r;
	fmi_rng_seed(&r, seed, 1);
	fill_params(a, fmi_trainer_params(t), &r, 1.5);
	return t;
}

static uint32_t *
iota(size_t n)
{
	uint32_t *idx = malloc(n * sizeof *idx);
	for (size_t i = 0; i < n; i++) {
		idx[i] = (uint32_t)i;
	}
	return idx;
}

static double
norm_d(const float *x, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++) {
		s += (double)x[i] * x[i];
	}
	return sqrt(s);
}

/* |a - b| / |b| over n floats. */
static double
rel_diff(const float *a, const float *b, size_t n)
{
	double d = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		double e = (double)a[i] - b[i];
		d += e * e;
		s += (double)b[i] * b[i];
	}
	return sqrt(d) / (sqrt(s) > 0 ? sqrt(s) : 1.0);
}

/* The reference: one backward pass per example (batch size 1), each
 * example's gradient norm in double, then sum_i min(1, clip / |g_i|) g_i
 * (clip <= 0: norms only). */
static void
ref_clipped(fmi_trainer *t, const fmi_dataset *d, size_t b, double clip,
    double *norms, float *sum)
{
	size_t np = fmi_trainer_arch(t)->nparams, dim = d->dim;
	double *acc = calloc(np, sizeof *acc);
	for (size_t i = 0; i < b; i++) {
		double loss = fmi_trainer_loss_grad(t, d->x + i * dim, d->y + i, 1);
		assert_true(isfinite(loss));
		const float *g = fmi_trainer_grad(t);
		norms[i] = norm_d(g, np);
		double f = clip > 0 && norms[i] > clip ? clip / norms[i] : 1.0;
		for (size_t j = 0; j < np; j++) {
			acc[j] += f * g[j];
		}
	}
	for (size_t j = 0; sum != NULL && j < np; j++) {
		sum[j] = (float)acc[j];
	}
	free(acc);
}

static int
cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

static double
median(const double *v, size_t n)
{
	double *s = malloc(n * sizeof *s);
	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_double);
	double m = s[n / 2];
	free(s);
	return m;
}

/* ---- per-example norms and the clipped sum --------------------------------- */

static void
check_against_reference(int which, size_t b)
{
	fmi_arch a = make_model(which);
	fmi_trainer *t = make_trainer(&a, b, 100 + (uint64_t)which);
	fmi_dataset *d = random_data(&a, b, 200 + (uint64_t)which);
	size_t np = a.nparams;
	double *rn = malloc(b * sizeof *rn), *dn = malloc(b * sizeof *dn);
	float *rsum = malloc(np * sizeof *rsum);
	ref_clipped(t, d, b, 0, rn, NULL);
	double clip = median(rn, b); /* about half of them get clipped */
	ref_clipped(t, d, b, clip, rn, rsum);
	size_t over = 0;
	for (size_t i = 0; i < b; i++) {
		over += rn[i] > clip * (1 + 1e-6);
	}
	assert_true(over > 0 && over < b);
	double ref_loss = fmi_trainer_loss_grad(t, d->x, d->y, b);
	double loss = fmi_trainer_dp_grad(t, d->x, d->y, b, clip, dn);
	assert_true(isfinite(loss) && fabs(loss - ref_loss) < 1e-5);
	double worst = 0;
	for (size_t i = 0; i < b; i++) {
		double e = fabs(dn[i] - rn[i]) / rn[i];
		worst = e > worst ? e : worst;
	}
	double sd = rel_diff(fmi_trainer_grad(t), rsum, np);
	print_message("%s b=%zu: %zu of %zu clipped at %.4g; norms rel err "
	    "%.2e, clipped sum rel err %.2e\n", a.kind, b, over, b, clip, worst,
	    sd);
	assert_true(worst < 1e-5);
	assert_true(sd < 1e-5);
	/* every slice of the parameters (biases too) carries gradient */
	for (uint32_t s = 0; s < a.nslices; s++) {
		const fmi_slice *sl = &a.slices[s];
		assert_true(norm_d(fmi_trainer_grad(t) + sl->offset,
		    sl->rows * sl->cols) > 0);
	}
	free(rn);
	free(dn);
	free(rsum);
	fmi_dataset_unref(d);
	fmi_trainer_free(t);
}

static void
test_norms_and_sum_mlp(void **state)
{
	(void)state;
	check_against_reference(M_MLP, 11);
	check_against_reference(M_LOGREG, 11);
}

static void
test_norms_and_sum_cnn(void **state)
{
	(void)state;
	check_against_reference(M_CNN_SMALL, 9);
	check_against_reference(M_CNN_SMALL, 70); /* chunks of 64 and 6 */
	check_against_reference(M_CNN_FULL, 4);
}

/* ---- z = 0 and a huge clip is plain SGD ------------------------------------ */

static void
check_plain_equal(int which, const fmi_sgd *opt)
{
	fmi_arch a = make_model(which);
	size_t n = 21; /* batches of 8, 8, 5 */
	fmi_trainer *t1 = make_trainer(&a, 8, 7), *t2 = make_trainer(&a, 8, 7);
	fmi_dataset *d = random_data(&a, n, 8);
	uint32_t *idx = iota(n);
	fmi_local_cfg cfg = { .epochs = 2, .batch = 8, .opt = *opt };
	fm_rng r1, r2;
	fmi_rng_seed(&r1, 3, 0);
	fmi_rng_seed(&r2, 3, 0);
	fmi_train_stats s1, s2;
	FMT_PASS(fmi_train_local(t1, d, idx, n, &cfg, &r1, &s1));
	cfg.dp.clip = 1e30;
	FMT_PASS(fmi_train_local(t2, d, idx, n, &cfg, &r2, &s2));
	assert_int_equal(s1.steps, 6);
	assert_int_equal(s2.steps, 6);
	assert_true(fabs(s1.loss - s2.loss) < 1e-6);
	assert_int_equal(s1.dp_clipped, 0);
	assert_true(s1.dp_mean_norm == 0);
	assert_int_equal(s2.dp_clipped, 0);
	assert_true(s2.dp_mean_norm > 0);
	double rd = rel_diff(fmi_trainer_params(t2), fmi_trainer_params(t1),
	    a.nparams);
	print_message("%s lr %g mom %g wd %g: DP (z 0, C huge) vs SGD rel diff "
	    "%.2e\n", a.kind, (double)opt->lr, (double)opt->momentum,
	    (double)opt->weight_decay, rd);
	assert_true(rd < 1e-6);
	FMT_NEAR(fmi_trainer_params(t2), fmi_trainer_params(t1), a.nparams,
	    1e-6);
	free(idx);
	fmi_dataset_unref(d);
	fmi_trainer_free(t1);
	fmi_trainer_free(t2);
}

static void
test_huge_clip_is_sgd(void **state)
{
	(void)state;
	const fmi_sgd plain = { 0.1f, 0.0f, 0.0f }, wd = { 0.1f, 0.0f, 0.01f };
	const fmi_sgd mom = { 0.1f, 0.9f, 0.01f };
	for (int m = M_LOGREG; m <= M_CNN_SMALL; m++) {
		check_plain_equal(m, &plain);
		check_plain_equal(m, &wd);
		check_plain_equal(m, &mom);
	}
}

/* expected_batch divides instead of the batch size: with 2 b, DP-SGD
 * (z 0, C huge, no weight decay) is plain SGD at half the rate. */
static void
test_expected_batch(void **state)
{
	(void)state;
	fmi_arch a = make_model(M_MLP);
	fmi_trainer *t1 = make_trainer(&a, 8, 9), *t2 = make_trainer(&a, 8, 9);
	fmi_dataset *d = random_data(&a, 24, 10);
	uint32_t *idx = iota(24);
	fmi_local_cfg c1 = { .epochs = 1, .batch = 8, .opt = { 0.05f, 0, 0 } };
	fmi_local_cfg c2 = { .epochs = 1, .batch = 8, .opt = { 0.1f, 0, 0 },
		.dp = { .clip = 1e30, .expected_batch = 16 } };
	fm_rng r1, r2;
	fmi_rng_seed(&r1, 5, 0);
	fmi_rng_seed(&r2, 5, 0);
	fmi_train_stats st;
	FMT_PASS(fmi_train_local(t1, d, idx, 24, &c1, &r1, &st));
	FMT_PASS(fmi_train_local(t2, d, idx, 24, &c2, &r2, &st));
	assert_true(rel_diff(fmi_trainer_params(t2), fmi_trainer_params(t1),
	    a.nparams) < 1e-6);
	free(idx);
	fmi_dataset_unref(d);
	fmi_trainer_free(t1);
	fmi_trainer_free(t2);
}

/* ---- a small clip bounds every example's contribution ---------------------- */

static void
check_contribution_bounded(int which)
{
	fmi_arch a = make_model(which);
	size_t b = 6, np = a.nparams, dim = a.widths[0];
	fmi_trainer *t = make_trainer(&a, b, 11);
	fmi_dataset *d = random_data(&a, b, 12);
	double norms[6];
	ref_clipped(t, d, b, 0, norms, NULL);
	double lo = norms[0];
	for (size_t i = 1; i < b; i++) {
		lo = norms[i] < lo ? norms[i] : lo;
	}
	double clip = 0.05 * lo; /* every example is clipped */
	float *all = malloc(np * sizeof *all), *part = malloc(np * sizeof *part);
	float *x = malloc((b - 1) * dim * sizeof *x);
	int32_t y[6];
	assert_true(isfinite(fmi_trainer_dp_grad(t, d->x, d->y, b, clip, NULL)));
	memcpy(all, fmi_trainer_grad(t), np * sizeof *all);
	assert_true(norm_d(all, np) <= b * clip * (1 + 1e-5));
	for (size_t i = 0; i < b; i++) { /* the batch without example i */
		for (size_t j = 0, k = 0; j < b; j++) {
			if (j != i) {
				memcpy(x + k * dim, d->x + j * dim, dim * sizeof *x);
				y[k++] = d->y[j];
			}
		}
		assert_true(isfinite(fmi_trainer_dp_grad(t, x, y, b - 1, clip,
		    NULL)));
		memcpy(part, fmi_trainer_grad(t), np * sizeof *part);
		fmi_axpy(np, -1.0f, part, all);
		double c = norm_d(all, np); /* example i's contribution */
		fmi_axpy(np, 1.0f, part, all);
		assert_true(c <= clip * (1 + 1e-4));
		assert_true(c >= clip * (1 - 1e-3)); /* clipped to C, not less */
	}
	/* the training statistics count them */
	uint32_t *idx = iota(b);
	fmi_local_cfg cfg = { .epochs = 1, .batch = (uint32_t)b,
		.opt = { 0.1f, 0, 0 }, .dp = { .clip = clip } };
	fm_rng r;
	fmi_rng_seed(&r, 1, 0);
	fmi_train_stats st;
	FMT_PASS(fmi_train_local(t, d, idx, b, &cfg, &r, &st));
	assert_int_equal(st.steps, 1);
	assert_int_equal(st.dp_clipped, b);
	double mean = 0;
	for (size_t i = 0; i < b; i++) {
		mean += norms[i] / (double)b;
	}
	assert_true(fabs(st.dp_mean_norm - mean) < 1e-5 * mean);
	free(idx);
	free(all);
	free(part);
	free(x);
	fmi_dataset_unref(d);
	fmi_trainer_free(t);
}

static void
test_small_clip_bounds(void **state)
{
	(void)state;
	check_contribution_bounded(M_LOGREG);
	check_contribution_bounded(M_MLP);
	check_contribution_bounded(M_CNN_SMALL);
}

/* ---- noise ------------------------------------------------------------------ */

static double
normal_cdf(double x)
{
	return 0.5 * erfc(-x / sqrt(2.0));
}

static int
cmp_float(const void *x, const void *y)
{
	float a = *(const float *)x, b = *(const float *)y;
	return (a > b) - (a < b);
}

/* The generator's draws: moments, tails, Kolmogorov-Smirnov distance to
 * N(mu, sd^2), no correlation within and between pairs, added to x. */
static void
test_gauss_distribution(void **state)
{
	(void)state;
	size_t n = 1000001; /* odd: the last draw is a half pair */
	float *x = malloc(n * sizeof *x);
	for (size_t i = 0; i < n; i++) {
		x[i] = 5.0f;
	}
	fm_rng r;
	fmi_rng_seed(&r, 42, 0);
	fmi_dp_gauss_add(&r, x, n, 2.0f);
	double m1 = 0, m2 = 0, m4 = 0, c_in = 0, c_lag = 0, maxabs = 0;
	size_t t1 = 0, t2 = 0, t3 = 0;
	for (size_t i = 0; i < n; i++) {
		double z = (x[i] - 5.0) / 2.0;
		m1 += z;
		m2 += z * z;
		m4 += z * z * z * z;
		t1 += fabs(z) > 1;
		t2 += fabs(z) > 2;
		t3 += fabs(z) > 3;
		maxabs = fabs(z) > maxabs ? fabs(z) : maxabs;
		if (i + 1 < n) {
			double z1 = (x[i + 1] - 5.0) / 2.0;
			if (i % 2 == 0) {
				c_in += z * z1;
			} else {
				c_lag += z * z1;
			}
		}
	}
	double dn = (double)n, half = (double)(n / 2);
	m1 /= dn;
	m2 /= dn;
	m4 /= dn;
	c_in /= half;
	c_lag /= half;
	print_message("gauss: mean %.2e var %.5f kurt %.4f >1sd %.5f >2sd %.5f "
	    ">3sd %.6f max %.2f corr %.1e %.1e\n", m1, m2, m4 / (m2 * m2),
	    t1 / dn, t2 / dn, t3 / dn, maxabs, c_in, c_lag);
	assert_true(fabs(m1) < 4.0 / sqrt(dn));
	assert_true(fabs(m2 - 1.0) < 4.0 * sqrt(2.0 / dn));
	assert_true(fabs(m4 / (m2 * m2) - 3.0) < 4.0 * sqrt(24.0 / dn));
	assert_true(fabs(t1 / dn - 0.317311) < 0.002);
	assert_true(fabs(t2 / dn - 0.0455003) < 0.0009);
	assert_true(fabs(t3 / dn - 0.0026998) < 0.0002);
	assert_true(maxabs > 4.0 && maxabs < 6.7);
	assert_true(fabs(c_in) < 4.0 / sqrt(half));
	assert_true(fabs(c_lag) < 4.0 / sqrt(half));
	qsort(x, n, sizeof *x, cmp_float);
	double ks = 0;
	for (size_t i = 0; i < n; i++) {
		double f = normal_cdf((x[i] - 5.0) / 2.0);
		double e = fmax(fabs(f - (double)i / dn),
		    fabs((double)(i + 1) / dn - f));
		ks = e > ks ? e : ks;
	}
	print_message("gauss: Kolmogorov-Smirnov D %.2e (1%% level %.2e)\n", ks,
	    1.63 / sqrt(dn));
	assert_true(ks < 1.63 / sqrt(dn));
	/* the same seed, the same draws; a small n changes every entry */
	float a[7] = { 0 }, b[7] = { 0 };
	fmi_rng_seed(&r, 43, 0);
	fmi_dp_gauss_add(&r, a, 7, 1.0f);
	fmi_rng_seed(&r, 43, 0);
	fmi_dp_gauss_add(&r, b, 7, 1.0f);
	assert_memory_equal(a, b, sizeof a);
	for (int i = 0; i < 7; i++) {
		assert_true(a[i] != 0.0f);
	}
	/* the SSE2 path draws the same numbers as the AVX2 one (where the
	 * CPU has it), whatever the length's remainder */
	size_t m = 1000 + 27;
	float *v1 = calloc(m, sizeof *v1), *v2 = calloc(m, sizeof *v2);
	fmi_rng_seed(&r, 44, 0);
	fmi_dp_gauss_add(&r, v1, m, 0.5f);
	fmi_dp_gauss_simd(1);
	fmi_rng_seed(&r, 44, 0);
	fmi_dp_gauss_add(&r, v2, m, 0.5f);
	fmi_dp_gauss_simd(0);
	assert_memory_equal(v1, v2, m * sizeof *v1);
	free(v1);
	free(v2);
	free(x);
}

/* The update's noise: the difference of one step with z > 0 and the same
 * step with z = 0 is lr N(0, (z C / b)^2) per coordinate, plain and with
 * momentum. */
static void
check_update_noise(float momentum)
{
	static const uint32_t w[] = { 100, 300, 10 };
	fmi_arch a;
	fm_error e;
	FMT_PASS(fmi_arch_mlp(&a, w, 3, &e));
	size_t b = 8, np = a.nparams;
	fmi_trainer *t1 = make_trainer(&a, b, 21), *t2 = make_trainer(&a, b, 21);
	fmi_dataset *d = random_data(&a, b, 22);
	uint32_t *idx = iota(b);
	double clip = 0.5, z = 1.3, lr = 0.2;
	fmi_local_cfg cfg = { .epochs = 1, .batch = (uint32_t)b,
		.opt = { (float)lr, momentum, 0.001f }, .dp = { .clip = clip } };
	fm_rng r1, r2;
	fmi_rng_seed(&r1, 23, 0);
	fmi_rng_seed(&r2, 23, 0);
	fmi_train_stats st;
	FMT_PASS(fmi_train_local(t1, d, idx, b, &cfg, &r1, &st));
	cfg.dp.noise_multiplier = z;
	FMT_PASS(fmi_train_local(t2, d, idx, b, &cfg, &r2, &st));
	const float *p1 = fmi_trainer_params(t1), *p2 = fmi_trainer_params(t2);
	double sd = lr * z * clip / (double)b, m1 = 0, m2 = 0, m4 = 0;
	for (size_t i = 0; i < np; i++) {
		double v = ((double)p2[i] - p1[i]) / sd;
		m1 += v;
		m2 += v * v;
		m4 += v * v * v * v;
	}
	double dn = (double)np;
	m1 /= dn;
	m2 /= dn;
	m4 /= dn;
	print_message("momentum %g: update noise / (lr z C / b): mean %.2e var "
	    "%.4f kurt %.3f over %zu\n", (double)momentum, m1, m2,
	    m4 / (m2 * m2), np);
	assert_true(fabs(m1) < 5.0 / sqrt(dn));
	assert_true(fabs(m2 - 1.0) < 5.0 * sqrt(2.0 / dn));
	assert_true(fabs(m4 / (m2 * m2) - 3.0) < 5.0 * sqrt(24.0 / dn));
	free(idx);
	fmi_dataset_unref(d);
	fmi_trainer_free(t1);
	fmi_trainer_free(t2);
}

static void
test_update_noise(void **state)
{
	(void)state;
	check_update_noise(0.0f);
	check_update_noise(0.9f);
}

/* A noise callback: called once a step with the std the step needs, on
 * the parameters (plain SGD: lr z C / b) or the momentum state (z C / b);
 * its error stops the training. */
typedef struct noise_rec {
	int calls;
	double std;
	size_t n;
	int fail;
} noise_rec;

static int
fixed_noise(void *ud, float *x, size_t n, double std)
{
	noise_rec *r = ud;
	r->calls++;
	r->std = std;
	r->n = n;
	if (r->fail) {
		return FM_EIO;
	}
	for (size_t i = 0; i < n; i++) {
		x[i] += (float)(std * (double)((int)(i % 7) - 3));
	}
	return FM_OK;
}

static void
check_callback(float momentum)
{
	fmi_arch a = make_model(M_MLP);
	size_t b = 5, np = a.nparams;
	fmi_trainer *t1 = make_trainer(&a, b, 31), *t2 = make_trainer(&a, b, 31);
	fmi_dataset *d = random_data(&a, 10, 32);
	uint32_t *idx = iota(10);
	double clip = 0.3, z = 2.0, lr = (double)0.1f; /* as the trainer has it */
	noise_rec rec = { 0, 0, 0, 0 };
	fmi_local_cfg cfg = { .epochs = 1, .batch = (uint32_t)b,
		.opt = { (float)lr, momentum, 0 }, .dp = { .clip = clip } };
	fm_rng r1, r2;
	fmi_rng_seed(&r1, 33, 0);
	fmi_rng_seed(&r2, 33, 0);
	fmi_train_stats st;
	/* one step of b = 5: the first batch of the same shuffle */
	FMT_PASS(fmi_train_local(t1, d, idx, b, &cfg, &r1, &st));
	cfg.dp.noise_multiplier = z;
	cfg.dp.noise = fixed_noise;
	cfg.dp.ud = &rec;
	FMT_PASS(fmi_train_local(t2, d, idx, b, &cfg, &r2, &st));
	assert_int_equal(rec.calls, 1);
	assert_int_equal(rec.n, np);
	double want = (momentum > 0 ? 1.0 : lr) * z * clip / (double)b;
	assert_true(fabs(rec.std - want) < 1e-12 * want);
	/* the update moved by lr z C / b times the fixed pattern, up to
	 * sign: + on the params, - through the velocity */
	double step = lr * z * clip / (double)b;
	double sign = momentum > 0 ? -1.0 : 1.0;
	const float *p1 = fmi_trainer_params(t1), *p2 = fmi_trainer_params(t2);
	for (size_t i = 0; i < np; i++) {
		double got = (double)p2[i] - p1[i];
		double exp = sign * step * (double)((int)(i % 7) - 3);
		assert_true(fabs(got - exp) < 1e-6);
	}
	/* two steps: two calls */
	rec.calls = 0;
	FMT_PASS(fmi_train_local(t2, d, idx, 10, &cfg, &r2, &st));
	assert_int_equal(rec.calls, 2);
	/* an error stops it with that code, logged */
	rec.fail = 1;
	rec.calls = 0;
	fmt_logcap cap = { .n = 0 };
	fm_log_set_sink(fmt_logcap_sink, &cap);
	FMT_FAIL(fmi_train_local(t2, d, idx, 10, &cfg, &r2, &st), FM_EIO);
	fm_log_set_sink(NULL, NULL);
	assert_int_equal(rec.calls, 1);
	assert_true(fmt_logcap_find(&cap, "FM-MODEL-DP") >= 0);
	free(idx);
	fmi_dataset_unref(d);
	fmi_trainer_free(t1);
	fmi_trainer_free(t2);
}

static void
test_noise_callback(void **state)
{
	(void)state;
	check_callback(0.0f);
	check_callback(0.9f);
}

/* ---- bad parameters ------------------------------------------------------- */

static void
test_bad_parameters(void **state)
{
	(void)state;
	const struct {
		fmi_dpsgd dp;
		const char *names; /* the field the message must name */
	} bad[] = {
		{ { .clip = -1.0 }, "clip" },
		{ { .clip = NAN }, "clip" },
		{ { .clip = INFINITY }, "clip" },
		{ { .clip = 1.0, .noise_multiplier = -0.5 }, "noise_multiplier" },
		{ { .clip = 1.0, .noise_multiplier = NAN }, "noise_multiplier" },
		{ { .clip = 1.0, .noise_multiplier = INFINITY },
		    "noise_multiplier" },
		{ { .clip = 0.0, .noise_multiplier = 1.0 }, "clip is 0" },
		{ { .clip = 0.0, .noise = fixed_noise }, "clip is 0" },
		{ { .clip = 1.0, .expected_batch = -8 }, "expected_batch" },
		{ { .clip = 1.0, .expected_batch = NAN }, "expected_batch" },
	};
	fmi_arch a = make_model(M_MLP);
	fmi_trainer *t = make_trainer(&a, 4, 41);
	fmi_dataset *d = random_data(&a, 8, 42);
	uint32_t *idx = iota(8);
	float *p0 = malloc(a.nparams * sizeof *p0);
	memcpy(p0, fmi_trainer_params(t), a.nparams * sizeof *p0);
	fm_rng r;
	fmi_rng_seed(&r, 1, 0);
	fmi_train_stats st;
	for (size_t k = 0; k < FMI_ARRAY_LEN(bad); k++) {
		fm_error e;
		FMT_FAIL(fmi_dpsgd_check(&bad[k].dp, &e), FM_EINVAL);
		print_message("refused: %s\n", e.msg);
		assert_non_null(strstr(e.msg, bad[k].names));
		fmi_local_cfg cfg = { .epochs = 1, .batch = 4,
			.opt = { 0.1f, 0, 0 }, .dp = bad[k].dp };
		fmt_logcap cap = { .n = 0 };
		fm_log_set_sink(fmt_logcap_sink, &cap);
		FMT_FAIL(fmi_train_local(t, d, idx, 8, &cfg, &r, &st),
		    FM_EINVAL);
		fm_log_set_sink(NULL, NULL);
		int at = fmt_logcap_find(&cap, "FM-MODEL-DP");
		assert_true(at >= 0);
		assert_non_null(strstr(cap.lines[at], bad[k].names));
		assert_int_equal(st.steps, 0);
		assert_memory_equal(fmi_trainer_params(t), p0,
		    a.nparams * sizeof *p0);
	}
	/* off, and on with or without noise: accepted */
	const fmi_dpsgd good[] = { { .clip = 0 }, { .clip = 1.0 },
		{ .clip = 1.0, .noise_multiplier = 1.1, .expected_batch = 4 } };
	for (size_t k = 0; k < FMI_ARRAY_LEN(good); k++) {
		fm_error e;
		FMT_PASS(fmi_dpsgd_check(&good[k], &e));
		fmi_local_cfg cfg = { .epochs = 1, .batch = 4,
			.opt = { 0.1f, 0, 0 }, .dp = good[k] };
		FMT_PASS(fmi_train_local(t, d, idx, 8, &cfg, &r, &st));
		assert_int_equal(st.steps, 2);
	}
	FMT_PASS(fmi_dpsgd_check(NULL, NULL));
	/* the gradient call refuses a batch out of range or no clip */
	assert_true(isnan(fmi_trainer_dp_grad(t, d->x, d->y, 0, 1.0, NULL)));
	assert_true(isnan(fmi_trainer_dp_grad(t, d->x, d->y, 5, 1.0, NULL)));
	assert_true(isnan(fmi_trainer_dp_grad(t, d->x, d->y, 4, 0.0, NULL)));
	assert_true(isnan(fmi_trainer_dp_grad(t, d->x, d->y, 4, NAN, NULL)));
	free(p0);
	free(idx);
	fmi_dataset_unref(d);
	fmi_trainer_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_norms_and_sum_mlp),
		cmocka_unit_test(test_norms_and_sum_cnn),
		cmocka_unit_test(test_huge_clip_is_sgd),
		cmocka_unit_test(test_expected_batch),
		cmocka_unit_test(test_small_clip_bounds),
		cmocka_unit_test(test_gauss_distribution),
		cmocka_unit_test(test_update_noise),
		cmocka_unit_test(test_noise_callback),
		cmocka_unit_test(test_bad_parameters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
