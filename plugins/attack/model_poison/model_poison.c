/* SPDX-License-Identifier: MIT */
/*
 * model_poison.c: model-poisoning attacks. On the aggregating node, before
 * any defence, poison_updates rewrites the round's adversarial rows
 * (fm_rows.adversarial[i] == 1) and may read the honest ones, as
 * the colluding attacks assume. Honest rows are never written; a round
 * without adversarial rows is left as it is.
 *
 *   sign_flip  row <- -scale row: each adversary sends its own update
 *              reversed (bit flipping in Karimireddy, He & Jaggi, ICML
 *              2021). scale 1.
 *   gaussian   row <- N(0, sigma^2) per coordinate, drawn from the
 *              round's seed (the Gaussian attack of Xie, Koyejo & Gupta,
 *              "Generalized Byzantine-tolerant SGD", 2018). sigma 200.
 *   scaling    row <- boost row: model replacement (Bagdasaryan et al.,
 *              AISTATS 2020). boost 0 (default) uses gamma = n / eta with
 *              eta = 1 spread over the colluders and FedAvg's weights:
 *              sum of all rows' num_examples / sum of the adversarial
 *              rows' (n / nadv when no row carries examples).
 *   alie       every adversarial row <- mu - z sigma, coordinate-wise over
 *              the honest rows (sample standard deviation; 0 with one
 *              honest row): A Little Is Enough (Baruch, Baruch & Goldberg,
 *              NeurIPS 2019). z 0 (default) uses the paper's
 *              z_max = Phi^-1((n - s) / n), s = floor(n/2 + 1) - nadv.
 *   ipm        every adversarial row <- -epsilon mean(honest rows):
 *              inner-product manipulation (Xie, Koyejo & Gupta, UAI
 *              2019). epsilon 0.1.
 *
 * Statistics are accumulated in double and rounded to float once.
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#define MP_LOG "FM-MODEL-POISON"
#define MP_STREAM 0x6761757373ULL /* RNG stream of the gaussian attack */
#define MP_SQRT_2PI 2.50662827463100050242

enum { ALGO_SIGN_FLIP = 1, ALGO_GAUSSIAN, ALGO_SCALING, ALGO_ALIE, ALGO_IPM };

typedef struct mpoison {
	const fm_host_api *host;
	size_t dim;
	int algo;
	double a;        /* the parameter: scale, sigma, boost, z, epsilon */
	double *mu, *sd; /* [dim] alie/ipm scratch, allocated at first use */
} mpoison;

static const char *const mp_names[] = { "", "sign_flip", "gaussian",
	"scaling", "alie", "ipm" };
static const char *const mp_pnames[] = { "", "scale", "sigma", "boost", "z",
	"epsilon" };

/* ---- common ------------------------------------------------------------ */

static int
mp_init(mpoison *p, const fm_instance *inst, int algo)
{
	p->host = inst->host;
	p->dim = inst->dim;
	p->algo = algo;
	if (p->dim == 0 || inst->nparams != 1 || inst->params == NULL) {
		p->host->log(FM_LOG_ERR, MP_LOG, "%s: empty model or %u "
		    "parameters (want 1)", mp_names[algo], inst->nparams);
		return FM_EINVAL;
	}
	p->a = inst->params[0].num;
	if (!(p->a >= 0 && isfinite(p->a))) {
		p->host->log(FM_LOG_ERR, MP_LOG, "%s: parameter '%s' = %g must "
		    "be finite and >= 0", mp_names[algo], mp_pnames[algo],
		    p->a);
		return FM_EINVAL;
	}
	return FM_OK;
}

static int
sign_flip_init(void *st, const fm_instance *inst)
{
	return mp_init(st, inst, ALGO_SIGN_FLIP);
}

static int
gaussian_init(void *st, const fm_instance *inst)
{
	return mp_init(st, inst, ALGO_GAUSSIAN);
}

static int
scaling_init(void *st, const fm_instance *inst)
{
	return mp_init(st, inst, ALGO_SCALING);
}

static int
alie_init(void *st, const fm_instance *inst)
{
	return mp_init(st, inst, ALGO_ALIE);
}

static int
ipm_init(void *st, const fm_instance *inst)
{
	return mp_init(st, inst, ALGO_IPM);
}

static void
mp_fini(void *st)
{
	mpoison *p = st;
	if (p->host != NULL) { /* NULL: init never ran */
		p->host->free(p->mu);
		p->host->free(p->sd);
		p->mu = p->sd = NULL;
	}
}

/* Checks the round; *nh gets the number of honest rows. FM_EINVAL when
 * the matrix does not match the instance or nadv the flags. */
static int
mp_check(const mpoison *p, const fm_rows *r, uint32_t *nh)
{
	const char *why = NULL;
	uint32_t nadv = 0;
	if (r == NULL || r->struct_size < sizeof(fm_rows)) {
		why = "no round, or an truncated fm_rows";
	} else if (r->dim != p->dim || r->stride < r->dim) {
		why = "the rows do not have the model's size";
	} else if (r->n > 0 && (r->deltas == NULL || r->adversarial == NULL)) {
		why = "no update matrix";
	}
	for (uint32_t i = 0; why == NULL && i < r->n; i++) {
		nadv += r->adversarial[i] != 0;
	}
	if (why == NULL && nadv != r->nadv) {
		why = "nadv does not match the adversarial flags";
	}
	if (why != NULL) {
		p->host->log(FM_LOG_ERR, MP_LOG, "%s: %s", mp_names[p->algo],
		    why);
		return FM_EINVAL;
	}
	*nh = r->n - nadv;
	return FM_OK;
}

static float *
mp_row(const fm_rows *r, uint32_t i)
{
	return r->deltas + (size_t)i * r->stride;
}

/* Every adversarial row <- g row. */
static void
mp_scale_rows(const fm_rows *r, double g)
{
	for (uint32_t i = 0; i < r->n; i++) {
		float *row = mp_row(r, i);
		for (size_t j = 0; r->adversarial[i] && j < r->dim; j++) {
			row[j] = (float)(g * (double)row[j]);
		}
	}
}

/* Every adversarial row <- the same vector v (double). */
static void
mp_set_rows(const fm_rows *r, const double *v)
{
	for (uint32_t i = 0; i < r->n; i++) {
		float *row = mp_row(r, i);
		for (size_t j = 0; r->adversarial[i] && j < r->dim; j++) {
			row[j] = (float)v[j];
		}
	}
}

/* ---- sign_flip, scaling, gaussian -------------------------------------- */

static int
sign_flip_poison(void *st, fm_rows *r)
{
	const mpoison *p = st;
	uint32_t nh;
	int rv = mp_check(p, r, &nh);
	if (rv == FM_OK && r->nadv > 0) {
		mp_scale_rows(r, -p->a);
	}
	return rv;
}

/* Model replacement's gamma = n / eta (eta = 1) shared by the colluders
 * under FedAvg's weights: all examples over the adversaries' examples. */
static double
scaling_boost(const fm_rows *r)
{
	double all = 0, adv = 0;
	for (uint32_t i = 0; r->updates != NULL && i < r->n; i++) {
		double w = (double)FM_AT(const fm_update, r->updates,
		    i)->num_examples;
		all += w;
		adv += r->adversarial[i] ? w : 0;
	}
	return adv > 0 ? all / adv : (double)r->n / (double)r->nadv;
}

static int
scaling_poison(void *st, fm_rows *r)
{
	const mpoison *p = st;
	uint32_t nh;
	int rv = mp_check(p, r, &nh);
	if (rv == FM_OK && r->nadv > 0) {
		mp_scale_rows(r, p->a > 0 ? p->a : scaling_boost(r));
	}
	return rv;
}

static int
gaussian_poison(void *st, fm_rows *r)
{
	const mpoison *p = st;
	uint32_t nh;
	fm_rng rng;
	int rv = mp_check(p, r, &nh);
	if (rv != FM_OK || r->nadv == 0) {
		return rv;
	}
	p->host->rng_seed(&rng, r->seed, MP_STREAM);
	for (uint32_t i = 0; i < r->n; i++) {
		float *row = mp_row(r, i);
		for (size_t j = 0; r->adversarial[i] && j < r->dim; j++) {
			row[j] = (float)(p->a * p->host->rng_normal(&rng));
		}
	}
	return FM_OK;
}

/* ---- statistics of the honest rows ------------------------------------- */

/* Allocates the scratch the colluding attacks need. */
static int
mp_scratch(mpoison *p, int need_sd)
{
	if (p->mu == NULL) {
		p->mu = p->host->alloc(p->dim * sizeof(double));
	}
	if (need_sd && p->sd == NULL) {
		p->sd = p->host->alloc(p->dim * sizeof(double));
	}
	return p->mu != NULL && (!need_sd || p->sd != NULL) ? FM_OK :
	    FM_ENOMEM;
}

/* A colluding attack needs at least one honest row to read. */
static int
mp_need_honest(const mpoison *p, const fm_rows *r, uint32_t nh)
{
	if (nh > 0) {
		return FM_OK;
	}
	p->host->log(FM_LOG_ERR, MP_LOG, "round %u: %s needs an honest "
	    "update to read, but all %u rows are adversarial", r->round,
	    mp_names[p->algo], r->n);
	return FM_EINVAL;
}

/* mu <- coordinate-wise mean of the nh honest rows. */
static void
mp_mean(const mpoison *p, const fm_rows *r, uint32_t nh)
{
	memset(p->mu, 0, p->dim * sizeof(double));
	for (uint32_t i = 0; i < r->n; i++) {
		const float *row = mp_row(r, i);
		for (size_t j = 0; !r->adversarial[i] && j < p->dim; j++) {
			p->mu[j] += (double)row[j];
		}
	}
	for (size_t j = 0; j < p->dim; j++) {
		p->mu[j] /= (double)nh;
	}
}

/* sd <- coordinate-wise sample standard deviation (n - 1) of the honest
 * rows around mu; 0 with a single honest row. */
static void
mp_stddev(const mpoison *p, const fm_rows *r, uint32_t nh)
{
	memset(p->sd, 0, p->dim * sizeof(double));
	for (uint32_t i = 0; nh > 1 && i < r->n; i++) {
		const float *row = mp_row(r, i);
		for (size_t j = 0; !r->adversarial[i] && j < p->dim; j++) {
			double e = (double)row[j] - p->mu[j];
			p->sd[j] += e * e;
		}
	}
	for (size_t j = 0; nh > 1 && j < p->dim; j++) {
		p->sd[j] = sqrt(p->sd[j] / (double)(nh - 1));
	}
}

/* ---- alie -------------------------------------------------------------- */

/*
 * The standard normal quantile Phi^-1(q), 0 < q < 1: Acklam's rational
 * approximation (relative error below 1.2e-9), then one Halley step on
 * erfc, which brings it to double precision.
 */
static double
mp_probit(double q)
{
	static const double a[6] = { -3.969683028665376e+01,
		2.209460984245205e+02, -2.759285104469687e+02,
		1.383577518672690e+02, -3.066479806614716e+01,
		2.506628277459239e+00 };
	static const double b[5] = { -5.447609879822406e+01,
		1.615858368580409e+02, -1.556989798598866e+02,
		6.680131188771972e+01, -1.328068155288572e+01 };
	static const double c[6] = { -7.784894002430293e-03,
		-3.223964580411365e-01, -2.400758277161838e+00,
		-2.549732539343734e+00, 4.374664141464968e+00,
		2.938163982698783e+00 };
	static const double d[4] = { 7.784695709041462e-03,
		3.224671290700398e-01, 2.445134137142996e+00,
		3.754408661907416e+00 };
	const double lo = 0.02425;
	double x;
	if (q < lo || q > 1 - lo) {
		double t = sqrt(-2 * log(q < lo ? q : 1 - q));
		x = (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) *
		    t + c[5]) / ((((d[0] * t + d[1]) * t + d[2]) * t + d[3]) *
		    t + 1);
		x = q < lo ? x : -x;
	} else {
		double t = q - 0.5, s = t * t;
		x = (((((a[0] * s + a[1]) * s + a[2]) * s + a[3]) * s + a[4]) *
		    s + a[5]) * t / (((((b[0] * s + b[1]) * s + b[2]) * s +
		    b[3]) * s + b[4]) * s + 1);
	}
	double e = 0.5 * erfc(-x / sqrt(2.0)) - q;
	double u = e * MP_SQRT_2PI * exp(x * x / 2);
	return x - u / (1 + x * u / 2);
}

/* The paper's z_max for n rows of which nadv adversarial; FM_EINVAL when
 * the adversaries are a majority (s <= 0: z_max is infinite). */
static int
alie_zmax(const mpoison *p, const fm_rows *r, double *z)
{
	long long n = r->n, s = n / 2 + 1 - (long long)r->nadv;
	if (s <= 0) {
		p->host->log(FM_LOG_ERR, MP_LOG, "round %u: alie: %u of %u "
		    "rows are adversarial, a majority: z_max = Phi^-1((n - "
		    "s) / n) with s = floor(n/2 + 1) - nadv = %lld is "
		    "infinite; set the parameter z", r->round, r->nadv, r->n,
		    s);
		return FM_EINVAL;
	}
	*z = mp_probit((double)(n - s) / (double)n);
	return FM_OK;
}

static int
alie_poison(void *st, fm_rows *r)
{
	mpoison *p = st;
	uint32_t nh;
	double z = p->a;
	int rv = mp_check(p, r, &nh);
	if (rv != FM_OK || r->nadv == 0) {
		return rv;
	}
	if ((rv = mp_need_honest(p, r, nh)) != FM_OK ||
	    (!(z > 0) && (rv = alie_zmax(p, r, &z)) != FM_OK) ||
	    (rv = mp_scratch(p, 1)) != FM_OK) {
		return rv;
	}
	mp_mean(p, r, nh);
	mp_stddev(p, r, nh);
	for (size_t j = 0; j < p->dim; j++) {
		p->mu[j] -= z * p->sd[j];
	}
	mp_set_rows(r, p->mu);
	return FM_OK;
}

/* ---- ipm --------------------------------------------------------------- */

static int
ipm_poison(void *st, fm_rows *r)
{
	mpoison *p = st;
	uint32_t nh;
	int rv = mp_check(p, r, &nh);
	if (rv != FM_OK || r->nadv == 0) {
		return rv;
	}
	if ((rv = mp_need_honest(p, r, nh)) != FM_OK ||
	    (rv = mp_scratch(p, 0)) != FM_OK) {
		return rv;
	}
	mp_mean(p, r, nh);
	for (size_t j = 0; j < p->dim; j++) {
		p->mu[j] *= -p->a;
	}
	mp_set_rows(r, p->mu);
	return FM_OK;
}

/* ---- registration ------------------------------------------------------ */

#define MP_OPS(init, poison)                                                \
	{                                                                   \
		.base = FM_OPS(fm_attack_ops, FM_KIND_ATTACK, mpoison, init, \
		    mp_fini),                                               \
		.poison_updates = poison,                                   \
	}

static const fm_attack_ops sign_flip_ops = MP_OPS(sign_flip_init,
    sign_flip_poison);
static const fm_attack_ops gaussian_ops = MP_OPS(gaussian_init,
    gaussian_poison);
static const fm_attack_ops scaling_ops = MP_OPS(scaling_init,
    scaling_poison);
static const fm_attack_ops alie_ops = MP_OPS(alie_init, alie_poison);
static const fm_attack_ops ipm_ops = MP_OPS(ipm_init, ipm_poison);

#define MP_PARAM(nm, def, max, doc)                                         \
	static const fm_param_desc nm##_params[] = {                        \
		{ #nm, FM_PARAM_REAL, def, 0, max, NULL, doc },             \
		{ NULL, 0, 0, 0, 0, NULL, NULL },                           \
	}

/* Each component's one parameter, named after the array: scale_params
 * declares "scale". */
MP_PARAM(scale, 1.0, 1e6, "Adversarial rows become -scale times themselves.");
MP_PARAM(sigma, 200.0, 1e9, "Standard deviation of the Gaussian rows.");
MP_PARAM(boost, 0.0, 1e6, "Factor on adversarial rows; 0: model "
    "replacement, all examples over the adversaries' examples.");
MP_PARAM(z, 0.0, 1e3, "Standard deviations below the honest mean; 0: the "
    "paper's z_max from n and nadv.");
MP_PARAM(epsilon, 0.1, 1e6, "Adversarial rows become -epsilon times the "
    "honest mean.");

static const fm_component_desc mp_components[] = {
	FM_COMPONENT(FM_KIND_ATTACK, "sign_flip",
	    "Sign flipping: adversaries send -scale times their update",
	    scale_params, sign_flip_ops, FM_COMP_STATELESS),
	FM_COMPONENT(FM_KIND_ATTACK, "gaussian",
	    "Gaussian noise updates N(0, sigma^2) (Xie et al., 2018)",
	    sigma_params, gaussian_ops, FM_COMP_STATELESS),
	FM_COMPONENT(FM_KIND_ATTACK, "scaling",
	    "Scaling / model replacement (Bagdasaryan et al., 2020)",
	    boost_params, scaling_ops, FM_COMP_STATELESS),
	FM_COMPONENT(FM_KIND_ATTACK, "alie",
	    "A Little Is Enough: mu - z sigma of the honest updates "
	    "(Baruch et al., 2019)",
	    z_params, alie_ops, FM_COMP_STATELESS),
	FM_COMPONENT(FM_KIND_ATTACK, "ipm",
	    "Inner-product manipulation: -epsilon times the honest mean "
	    "(Xie et al., 2019)",
	    epsilon_params, ipm_ops, FM_COMP_STATELESS),
};

FM_PLUGIN("model_poison", "2.0.0", "MIT",
    "Model-poisoning attacks: sign flip, Gaussian, scaling, ALIE, IPM",
    mp_components, NULL);
