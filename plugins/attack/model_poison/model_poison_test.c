/* SPDX-License-Identifier: MIT */
/* model_poison_test.c: conformance of the built-in model_poison plugin
 * (sign_flip, gaussian, scaling, alie, ipm), loaded as a .so: results
 * checked by hand or recomputed independently here, honest rows
 * bit-identical after every attack, refusals. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../attack_test.h"

#define LOG_ID "FM-MODEL-POISON"
#define NCOMP 5
#define MAXN 100
#define PAD_VALUE 12345.0f /* in the stride padding, never to be touched */

enum { SIGN_FLIP, GAUSSIAN, SCALING, ALIE, IPM };
static const char *const names[NCOMP] = { "sign_flip", "gaussian",
	"scaling", "alie", "ipm" };

typedef struct fixture {
	fmi_registry *reg;
	const fmi_component *c[NCOMP];
} fixture;

/* A round's update matrix, its original copy and its metadata. */
typedef struct mat {
	uint32_t n;
	size_t dim, stride;
	float *x, *x0; /* [n][stride] */
	uint8_t adv[MAXN];
	fm_update up[MAXN];
	fm_rows r;
} mat;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, "model_poison.so") != FM_OK) {
		return -1;
	}
	for (int i = 0; i < NCOMP; i++) {
		f->c[i] = fmi_registry_find(f->reg, FM_KIND_ATTACK, names[i]);
		if (f->c[i] == NULL) {
			return -1;
		}
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	fmi_registry_free(f->reg);
	free(f);
	return 0;
}

/*
 * n rows of dim values drawn uniformly from [-1, 1) (seeded by fill),
 * stride rounded up to 16 with PAD_VALUE in the padding; the rows listed
 * in advs (ending with -1) adversarial; 10 examples each.
 */
static mat *
mat_new(uint32_t n, size_t dim, const int *advs, uint64_t fill)
{
	const fm_host_api *host = fmi_host_api();
	mat *m = calloc(1, sizeof *m);
	fm_rng rng;
	assert_non_null(m);
	m->n = n;
	m->dim = dim;
	m->stride = (dim + 16) & ~(size_t)15; /* always some padding */
	m->x = calloc((size_t)n * m->stride, sizeof(float));
	m->x0 = calloc((size_t)n * m->stride, sizeof(float));
	assert_true(m->x != NULL && m->x0 != NULL);
	host->rng_seed(&rng, fill, 0);
	for (size_t i = 0; i < (size_t)n * m->stride; i++) {
		m->x[i] = i % m->stride < dim ?
		    (float)(2 * host->rng_uniform(&rng) - 1) : PAD_VALUE;
	}
	memcpy(m->x0, m->x, (size_t)n * m->stride * sizeof(float));
	uint32_t nadv = 0;
	for (int k = 0; advs != NULL && advs[k] >= 0; k++) {
		m->adv[advs[k]] = 1;
		nadv++;
	}
	for (uint32_t i = 0; i < n; i++) {
		fm_update u = PT_UPDATE((int32_t)i + 1, 4,
		    m->x + i * m->stride, dim, 10, 0.5, 3);
		m->up[i] = u;
	}
	fm_rows r = PT_ATTACK_ROWS(sizeof r, 4, n, nadv, dim, m->x, m->stride,
	    m->up, m->adv, NULL, 77);
	m->r = r;
	return m;
}

static void
mat_free(mat *m)
{
	free(m->x);
	free(m->x0);
	free(m);
}

static float *
row(const mat *m, uint32_t i)
{
	return m->x + (size_t)i * m->stride;
}

static const float *
row0(const mat *m, uint32_t i)
{
	return m->x0 + (size_t)i * m->stride;
}

static int
attack(const fmi_component *c, const char *pname, double v, mat *m)
{
	fmi_atk *t = at_open1(c, pname, v, m->dim);
	int rv = fmi_atk_poison_updates(t, &m->r);
	fmi_atk_close(t);
	return rv;
}

/* Honest rows bit-identical, padding of every row untouched. */
static void
check_honest(const mat *m)
{
	for (uint32_t i = 0; i < m->n; i++) {
		size_t from = m->adv[i] ? m->dim : 0;
		if (memcmp(row(m, i) + from, row0(m, i) + from,
		    (m->stride - from) * sizeof(float)) != 0) {
			print_error("row %u (%s) was written\n", i,
			    m->adv[i] ? "padding of adversarial" : "honest");
			fail();
		}
	}
}

/* Coordinate-wise mean and sample standard deviation (n - 1) of the
 * honest rows, in long double, independently of the plugin. */
static void
honest_stats(const mat *m, size_t j, double *mu, double *sd)
{
	long double s = 0, q = 0, nh = 0;
	for (uint32_t i = 0; i < m->n; i++) {
		if (!m->adv[i]) {
			s += row0(m, i)[j];
			nh++;
		}
	}
	long double mean = s / nh;
	for (uint32_t i = 0; i < m->n; i++) {
		if (!m->adv[i]) {
			long double e = row0(m, i)[j] - mean;
			q += e * e;
		}
	}
	*mu = (double)mean;
	*sd = nh > 1 ? (double)sqrtl(q / (nh - 1)) : 0;
}

static void
test_abi(void **state)
{
	const fixture *f = *state;
	const fm_plugin_info *in = f->c[0]->plugin;
	static const char *const pn[NCOMP] = { "scale", "sigma", "boost", "z",
		"epsilon" };
	static const double def[NCOMP] = { 1, 200, 0, 0, 0.1 };
	assert_int_equal(in->magic, FM_PLUGIN_MAGIC);
	assert_int_equal(in->abi_major, FM_PLUGIN_ABI_MAJOR);
	assert_string_equal(in->name, "model_poison");
	assert_int_equal(in->ncomponents, NCOMP);
	for (int i = 0; i < NCOMP; i++) {
		const fm_attack_ops *ops = f->c[i]->ops;
		const fm_param_desc *p = f->c[i]->desc->params;
		assert_true(f->c[i]->plugin == in);
		assert_int_equal(ops->base.kind, FM_KIND_ATTACK);
		assert_string_equal(f->c[i]->desc->name, names[i]);
		assert_null(ops->poison_data);
		assert_non_null(ops->poison_updates);
		assert_int_equal(fmi_component_nparams(f->c[i]), 1);
		assert_string_equal(p[0].name, pn[i]);
		assert_int_equal(p[0].type, FM_PARAM_REAL);
		assert_true(p[0].def == def[i] && p[0].min == 0);
	}
}

/* nadv = 0: every attack leaves the whole matrix as it is. */
static void
test_no_adversary(void **state)
{
	const fixture *f = *state;
	for (int i = 0; i < NCOMP; i++) {
		mat *m = mat_new(4, 19, NULL, 1);
		FMT_PASS(attack(f->c[i], NULL, 0, m));
		assert_memory_equal(m->x, m->x0, 4 * m->stride * sizeof(float));
		mat_free(m);
	}
}

/* Adversarial rows are exactly (float)(g * original), honest ones
 * untouched. */
static void
check_scaled(const mat *m, double g)
{
	check_honest(m);
	for (uint32_t i = 0; i < m->n; i++) {
		for (size_t j = 0; m->adv[i] && j < m->dim; j++) {
			float want = (float)(g * (double)row0(m, i)[j]);
			if (row(m, i)[j] != want) {
				print_error("row %u [%zu]: %.9g, want %.9g\n",
				    i, j, (double)row(m, i)[j], (double)want);
				fail();
			}
		}
	}
}

static void
test_sign_flip(void **state)
{
	const fixture *f = *state;
	const int advs[] = { 0, 3, -1 };
	mat *m = mat_new(5, 21, advs, 2);
	FMT_PASS(attack(f->c[SIGN_FLIP], NULL, 0, m));
	check_scaled(m, -1);
	for (size_t j = 0; j < m->dim; j++) { /* -1: bit-exact negation */
		assert_true(row(m, 3)[j] == -row0(m, 3)[j]);
	}
	mat_free(m);
	m = mat_new(5, 21, advs, 2);
	FMT_PASS(attack(f->c[SIGN_FLIP], "scale", 2.5, m));
	check_scaled(m, -2.5);
	mat_free(m);
}

/* boost 3: x3. boost 0 (model replacement): 5 rows of 10 examples, 2
 * adversarial: 50/20 = 2.5; examples 10, 30, 20, 40, 0 with rows 1 and 3
 * adversarial: 100/70; no examples anywhere: n/nadv = 5/2. */
static void
test_scaling(void **state)
{
	const fixture *f = *state;
	const int advs[] = { 1, 3, -1 };
	const uint64_t ex[5] = { 10, 30, 20, 40, 0 };
	mat *m = mat_new(5, 17, advs, 3);
	FMT_PASS(attack(f->c[SCALING], "boost", 3, m));
	check_scaled(m, 3);
	mat_free(m);
	m = mat_new(5, 17, advs, 3);
	FMT_PASS(attack(f->c[SCALING], NULL, 0, m));
	check_scaled(m, 2.5);
	mat_free(m);
	m = mat_new(5, 17, advs, 3);
	for (int i = 0; i < 5; i++) {
		m->up[i].num_examples = ex[i];
	}
	FMT_PASS(attack(f->c[SCALING], NULL, 0, m));
	check_scaled(m, 100.0 / 70.0);
	mat_free(m);
	m = mat_new(5, 17, advs, 3);
	for (int i = 0; i < 5; i++) {
		m->up[i].num_examples = 0;
	}
	FMT_PASS(attack(f->c[SCALING], NULL, 0, m));
	check_scaled(m, 2.5);
	mat_free(m);
}

/* Mean and standard deviation of one row. */
static void
row_stats(const float *x, size_t n, double *mean, double *sd)
{
	double s = 0, q = 0;
	for (size_t j = 0; j < n; j++) {
		s += x[j];
	}
	*mean = s / (double)n;
	for (size_t j = 0; j < n; j++) {
		q += (x[j] - *mean) * (x[j] - *mean);
	}
	*sd = sqrt(q / (double)(n - 1));
}

/* Rows of 100000 N(0, sigma^2) values: the mean within 4 standard errors
 * (0.015 sigma: 4.7 sigma / sqrt(1e5)), the standard deviation within 2%
 * (its standard error is 0.22%); the two adversarial rows differ; the
 * same seed gives the same bits, another seed other values. */
static void
gaussian_case(const fixture *f, const char *p, double sigma)
{
	const int advs[] = { 0, 2, -1 };
	const size_t d = 100000;
	double mean, sd;
	mat *a = mat_new(3, d, advs, 4), *b = mat_new(3, d, advs, 4);
	mat *c = mat_new(3, d, advs, 4);
	c->r.seed = 78;
	FMT_PASS(attack(f->c[GAUSSIAN], p, sigma, a));
	FMT_PASS(attack(f->c[GAUSSIAN], p, sigma, b));
	FMT_PASS(attack(f->c[GAUSSIAN], p, sigma, c));
	check_honest(a);
	for (uint32_t i = 0; i < 3; i += 2) {
		row_stats(row(a, i), d, &mean, &sd);
		assert_true(fabs(mean) < 0.015 * sigma);
		assert_true(fabs(sd / sigma - 1) < 0.02);
	}
	assert_memory_not_equal(row(a, 0), row(a, 2), d * sizeof(float));
	assert_memory_equal(a->x, b->x, 3 * a->stride * sizeof(float));
	assert_memory_not_equal(row(a, 0), row(c, 0), d * sizeof(float));
	mat_free(a);
	mat_free(b);
	mat_free(c);
}

static void
test_gaussian(void **state)
{
	const fixture *f = *state;
	gaussian_case(f, NULL, 200);
	gaussian_case(f, "sigma", 1);
}

/* Every adversarial row equals want_j = mu_j - z sd_j (independently
 * computed) to float rounding. */
static void
check_alie(const mat *m, double z)
{
	check_honest(m);
	for (size_t j = 0; j < m->dim; j++) {
		double mu, sd;
		honest_stats(m, j, &mu, &sd);
		float want = (float)(mu - z * sd);
		for (uint32_t i = 0; i < m->n; i++) {
			if (m->adv[i]) {
				FMT_NEAR(&row(m, i)[j], &want, 1, 1e-6);
			}
		}
	}
}

/*
 * 7 rows, 2 adversarial: s = floor(7/2 + 1) - 2 = 2, z_max = Phi^-1(5/7)
 * = 0.56594882193286305 (scipy.stats.norm.ppf(5/7); mpmath, 30 digits:
 * 0.565948821932863046...). Then z = 1.5 given; one honest row: sd 0.
 */
static void
test_alie(void **state)
{
	const fixture *f = *state;
	const int advs[] = { 2, 5, -1 }, advs1[] = { 0, 1, 2, -1 };
	mat *m = mat_new(7, 33, advs, 5);
	FMT_PASS(attack(f->c[ALIE], NULL, 0, m));
	check_alie(m, 0.56594882193286305);
	mat_free(m);
	m = mat_new(7, 33, advs, 5);
	FMT_PASS(attack(f->c[ALIE], "z", 1.5, m));
	check_alie(m, 1.5);
	mat_free(m);
	m = mat_new(4, 9, advs1, 5);
	FMT_PASS(attack(f->c[ALIE], "z", 1.5, m));
	check_alie(m, 1.5); /* = the honest row */
	mat_free(m);
}

/*
 * z_max as the attack applies it, read back from coordinate 0, where the
 * honest values alternate +-1 (and a last 0 when their number is odd), so
 * mu = 0. The references are scipy.stats.norm.ppf((n - s) / n) with
 * s = floor(n/2 + 1) - nadv, recomputed with mpmath at 30 digits:
 *   n 50, nadv 10: s 16, ppf(0.68) = 0.46769879911450821
 *   n 50, nadv 12: s 14, ppf(0.72) = 0.58284150727121622 (REFERENCES 3.5:
 *     0.5828; the implementations' Phi^-1((n-m-s)/(n-m)) gives 0.3360)
 *   n 100, nadv 49: s 2, ppf(0.98) = 2.0537489106318231 (the tail branch
 *     of the approximation, then refined)
 *   n 10, nadv 2: s 4, ppf(0.6) = 0.25334710313579978
 *   n 10, nadv 1: s 5, ppf(0.5) = 0: the honest mean
 */
static void
zmax_case(const fixture *f, uint32_t n, uint32_t nadv, double want)
{
	int advs[MAXN + 1];
	double mu, sd;
	for (uint32_t k = 0; k < nadv; k++) {
		advs[k] = (int)(2 * k + 1); /* interleaved with honest rows */
	}
	advs[nadv] = -1;
	mat *m = mat_new(n, 4, advs, 6);
	uint32_t h = 0, nh = n - nadv;
	for (uint32_t i = 0; i < n; i++) {
		if (!m->adv[i]) {
			float v = h + 1 == nh && nh % 2 ? 0.0f :
			    (h % 2 ? -1.0f : 1.0f);
			row(m, i)[0] = m->x0[(size_t)i * m->stride] = v;
			h++;
		}
	}
	FMT_PASS(attack(f->c[ALIE], NULL, 0, m));
	check_alie(m, want);
	honest_stats(m, 0, &mu, &sd);
	assert_true(mu == 0 && sd > 0.99);
	double z = -(double)row(m, 1)[0] / sd;
	if (!(fabs(z - want) <= 1e-6)) {
		print_error("n %u nadv %u: z %.12g, want %.12g\n", n, nadv, z,
		    want);
		fail();
	}
	mat_free(m);
}

static void
test_alie_zmax(void **state)
{
	const fixture *f = *state;
	zmax_case(f, 50, 10, 0.46769879911450821);
	zmax_case(f, 50, 12, 0.58284150727121622);
	zmax_case(f, 100, 49, 2.0537489106318231);
	zmax_case(f, 10, 2, 0.25334710313579978);
	zmax_case(f, 10, 1, 0.0);
}

/* -epsilon times the honest mean, for the default 0.1 and 2. */
static void
ipm_case(const fixture *f, const char *p, double eps)
{
	const int advs[] = { 1, 4, 5, -1 };
	mat *m = mat_new(6, 29, advs, 7);
	FMT_PASS(attack(f->c[IPM], p, eps, m));
	check_honest(m);
	for (size_t j = 0; j < m->dim; j++) {
		double mu, sd;
		honest_stats(m, j, &mu, &sd);
		float want = (float)(-eps * mu);
		for (uint32_t i = 0; i < m->n; i++) {
			if (m->adv[i]) {
				FMT_NEAR(&row(m, i)[j], &want, 1, 1e-6);
			}
		}
	}
	mat_free(m);
}

static void
test_ipm(void **state)
{
	const fixture *f = *state;
	ipm_case(f, NULL, 0.1);
	ipm_case(f, "epsilon", 2);
}

/* An attack that must be refused: FM_EINVAL, a log line containing what,
 * the matrix unchanged. */
static void
refused(const fixture *f, int comp, const char *p, double v, mat *m,
    const char *what)
{
	fmt_logcap cap;
	at_quiet(&cap);
	int rv = attack(f->c[comp], p, v, m);
	at_loud();
	FMT_FAIL(rv, FM_EINVAL);
	at_logged(&cap, LOG_ID, what);
	assert_memory_equal(m->x, m->x0, m->n * m->stride * sizeof(float));
	mat_free(m);
}

static void
test_refusals(void **state)
{
	const fixture *f = *state;
	const int all[] = { 0, 1, 2, -1 }, most[] = { 0, 1, 2, -1 };
	refused(f, ALIE, NULL, 0, mat_new(3, 8, all, 1), "alie needs an "
	    "honest update to read, but all 3 rows are adversarial");
	refused(f, IPM, NULL, 0, mat_new(3, 8, all, 1), "ipm needs an honest "
	    "update to read, but all 3 rows are adversarial");
	refused(f, ALIE, NULL, 0, mat_new(5, 8, most, 1), "3 of 5 rows are "
	    "adversarial, a majority");
	refused(f, ALIE, NULL, 0, mat_new(5, 8, most, 1), "set the parameter "
	    "z");
	mat *m = mat_new(5, 8, most, 1);
	FMT_PASS(attack(f->c[ALIE], "z", 1, m)); /* a given z: fine */
	check_alie(m, 1);
	mat_free(m);
	for (int i = 0; i < NCOMP; i++) {
		m = mat_new(5, 8, most, 1);
		m->r.nadv = 2;
		refused(f, i, NULL, 0, m, "nadv does not match");
		m = mat_new(5, 8, most, 1);
		m->r.dim = 7;
		refused(f, i, NULL, 0, m, "do not have the model's size");
	}
}

static void
test_bad_params(void **state)
{
	const fixture *f = *state;
	at_resolve_refused(f->c[SIGN_FLIP], "scale", -1, "'scale' = -1 is out "
	    "of range");
	at_resolve_refused(f->c[GAUSSIAN], "sigma", -2, "'sigma' = -2 is out "
	    "of range");
	at_resolve_refused(f->c[SCALING], "boost", -1, "'boost' = -1 is out "
	    "of range");
	at_resolve_refused(f->c[ALIE], "z", 2000, "'z' = 2000 is out of "
	    "range");
	at_resolve_refused(f->c[IPM], "epsilon", -0.5, "'epsilon' = -0.5 is "
	    "out of range");
	at_resolve_refused(f->c[IPM], "sigma", 1, "no parameter 'sigma'");
	for (int i = 0; i < NCOMP; i++) {
		const fm_value neg = { -1, NULL };
		char what[64];
		snprintf(what, sizeof what, "%s: parameter '%s' = -1", names[i],
		    f->c[i]->desc->params[0].name);
		at_init_refused(f->c[i], &neg, LOG_ID, what);
	}
}

static void
test_fini_safe(void **state)
{
	const fixture *f = *state;
	for (int i = 0; i < NCOMP; i++) {
		at_fini_safe(f->c[i], LOG_ID);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_no_adversary),
		cmocka_unit_test(test_sign_flip),
		cmocka_unit_test(test_scaling),
		cmocka_unit_test(test_gaussian),
		cmocka_unit_test(test_alie),
		cmocka_unit_test(test_alie_zmax),
		cmocka_unit_test(test_ipm),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_fini_safe),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
