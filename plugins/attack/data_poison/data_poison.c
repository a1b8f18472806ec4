/* SPDX-License-Identifier: MIT */
/*
 * data_poison.c: data-poisoning attacks. An adversarial client rewrites a
 * private copy of its training examples before it trains (poison_data
 * with FM_ATTACK_TRAIN); the aggregating node calls the same function once
 * on a copy of the test set (FM_ATTACK_EVAL) to build the set on which the
 * attack's success rate is measured.
 *
 *   label_flip  every label y becomes C - 1 - y (C classes): the all-class
 *               flip of Karimireddy, He & Jaggi (ICML 2021), y -> 9 - y on
 *               ten classes. It defines no success rate: FM_ATTACK_EVAL
 *               leaves the test set as it is.
 *   backdoor    pixel-pattern backdoor (BadNets, Gu et al. 2017), set up
 *               as Ozdayi, Kantarcioglu & Gel (AAAI 2021) do on
 *               Fashion-MNIST: floor(fraction n) of the n examples, chosen
 *               uniformly without replacement from fm_attack_data.seed,
 *               get a size x size square of the data's largest value two
 *               pixels in from the bottom-right corner, and the label
 *               target. FM_ATTACK_EVAL drops the examples of class
 *               target, stamps the others and labels them target, so the
 *               global model's accuracy on the set is the attack success
 *               rate.
 *
 * Images are width x height row-major with one value per pixel
 * (dim == width * height); when the host gives no shape, a dim that is a
 * perfect square is read as a square image and any other dim is refused.
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#define DP_LOG "FM-DATA-POISON"
#define DP_MARGIN 2              /* trigger's distance from the border */
#define DP_STREAM 0x6261636bULL  /* RNG stream of the example choice */

enum { ALGO_LABEL_FLIP = 1, ALGO_BACKDOOR };
enum { P_SIZE, P_TARGET, P_FRACTION, P_BACKDOOR_COUNT };

typedef struct dpoison {
	const fm_host_api *host;
	int algo;
	uint32_t size;   /* backdoor: side of the square trigger */
	int32_t target;  /* backdoor: label the trigger maps to */
	double fraction; /* backdoor: share of training examples poisoned */
} dpoison;

/* ---- common ------------------------------------------------------------ */

static const char *
dp_name(const dpoison *p)
{
	return p->algo == ALGO_LABEL_FLIP ? "label_flip" : "backdoor";
}

static int
dp_init_common(dpoison *p, const fm_instance *inst, int algo,
    uint32_t nparams)
{
	p->host = inst->host;
	p->algo = algo;
	if (inst->nparams != nparams || (nparams > 0 && inst->params == NULL)) {
		p->host->log(FM_LOG_ERR, DP_LOG, "%s: %u parameters, want %u",
		    dp_name(p), inst->nparams, nparams);
		return FM_EINVAL;
	}
	return FM_OK;
}

static void
dp_fini(void *st)
{
	(void)st; /* nothing allocated */
}

/* The parts of fm_attack_data every attack reads. */
static int
dp_check_data(const dpoison *p, const fm_attack_data *d)
{
	const char *why = NULL;
	if (d == NULL || d->struct_size < sizeof(fm_attack_data)) {
		why = "no data, or an older fm_attack_data";
	} else if (d->purpose != FM_ATTACK_TRAIN &&
	    d->purpose != FM_ATTACK_EVAL) {
		why = "unknown purpose";
	} else if (d->n > 0 && (d->x == NULL || d->y == NULL)) {
		why = "no examples";
	} else if (d->nclasses == 0) {
		why = "no classes";
	}
	if (why != NULL) {
		p->host->log(FM_LOG_ERR, DP_LOG, "%s: %s", dp_name(p), why);
		return FM_EINVAL;
	}
	return FM_OK;
}

/* Every label in [0, nclasses), so that a relabelling stays in range. */
static int
dp_check_labels(const dpoison *p, const fm_attack_data *d)
{
	for (size_t i = 0; i < d->n; i++) {
		if (d->y[i] < 0 || (uint32_t)d->y[i] >= d->nclasses) {
			p->host->log(FM_LOG_ERR, DP_LOG, "%s: example %zu has "
			    "label %d, not one of the %u classes", dp_name(p),
			    i, (int)d->y[i], d->nclasses);
			return FM_EINVAL;
		}
	}
	return FM_OK;
}

/* ---- label_flip -------------------------------------------------------- */

static int
label_flip_init(void *st, const fm_instance *inst)
{
	return dp_init_common(st, inst, ALGO_LABEL_FLIP, 0);
}

static int
label_flip_poison(void *st, fm_attack_data *d)
{
	const dpoison *p = st;
	int rv = dp_check_data(p, d);
	if (rv != FM_OK || d->purpose == FM_ATTACK_EVAL) {
		return rv; /* no success rate: the test set stays as it is */
	}
	if ((rv = dp_check_labels(p, d)) != FM_OK) {
		return rv;
	}
	for (size_t i = 0; i < d->n; i++) {
		d->y[i] = (int32_t)(d->nclasses - 1) - d->y[i];
	}
	return FM_OK;
}

/* ---- backdoor ---------------------------------------------------------- */

static int
backdoor_init(void *st, const fm_instance *inst)
{
	dpoison *p = st;
	int rv = dp_init_common(p, inst, ALGO_BACKDOOR, P_BACKDOOR_COUNT);
	if (rv != FM_OK) {
		return rv;
	}
	double size = inst->params[P_SIZE].num;
	double target = inst->params[P_TARGET].num;
	p->fraction = inst->params[P_FRACTION].num;
	if (!(size >= 1 && size <= 65536 && size == floor(size)) ||
	    !(target >= 0 && target <= 1e6 && target == floor(target)) ||
	    !(p->fraction >= 0 && p->fraction <= 1)) {
		p->host->log(FM_LOG_ERR, DP_LOG, "backdoor: size = %g must be "
		    "an integer >= 1, target = %g a label >= 0, fraction = %g "
		    "in [0, 1]", size, target, p->fraction);
		return FM_EINVAL;
	}
	p->size = (uint32_t)size;
	p->target = (int32_t)target;
	return FM_OK;
}

/* The image shape: the host's, or a square one when dim is a perfect
 * square; the trigger must fit inside the margin. */
static int
backdoor_shape(const dpoison *p, const fm_attack_data *d, uint32_t *w,
    uint32_t *h)
{
	*w = d->width;
	*h = d->height;
	if (*w == 0 && *h == 0) {
		size_t r = (size_t)sqrt((double)d->dim);
		while (r * r > d->dim) {
			r--;
		}
		while ((r + 1) * (r + 1) <= d->dim) {
			r++;
		}
		if (r * r != d->dim || r > UINT32_MAX) {
			p->host->log(FM_LOG_ERR, DP_LOG, "backdoor: examples "
			    "of %zu features are not a square image and no "
			    "image shape was given", d->dim);
			return FM_EINVAL;
		}
		*w = *h = (uint32_t)r;
	}
	if ((size_t)*w * *h != d->dim || *w == 0) {
		p->host->log(FM_LOG_ERR, DP_LOG, "backdoor: examples of %zu "
		    "features are not %ux%u images (one value per pixel)",
		    d->dim, *w, *h);
		return FM_EINVAL;
	}
	if (p->size + DP_MARGIN > *w || p->size + DP_MARGIN > *h) {
		p->host->log(FM_LOG_ERR, DP_LOG, "backdoor: a %ux%u trigger "
		    "%d pixels from the border does not fit in %ux%u images",
		    p->size, p->size, DP_MARGIN, *w, *h);
		return FM_EINVAL;
	}
	return FM_OK;
}

/* The largest finite feature value: the trigger's colour. */
static int
backdoor_value(const dpoison *p, const fm_attack_data *d, float *out)
{
	int found = 0;
	float mx = 0;
	for (size_t i = 0; i < d->n * d->dim; i++) {
		float v = d->x[i];
		if (isfinite(v) && (!found || v > mx)) {
			mx = v;
			found = 1;
		}
	}
	if (!found && d->n > 0) {
		p->host->log(FM_LOG_ERR, DP_LOG, "backdoor: no finite feature "
		    "value to draw the trigger with");
		return FM_EINVAL;
	}
	*out = mx;
	return FM_OK;
}

/* Stamps example i: the square of side size whose bottom-right pixel is
 * DP_MARGIN pixels in from the image's bottom-right corner; relabels. */
static void
backdoor_stamp(const dpoison *p, fm_attack_data *d, size_t i, uint32_t w,
    uint32_t h, float v)
{
	float *img = d->x + i * d->dim;
	uint32_t r0 = h - DP_MARGIN - p->size, c0 = w - DP_MARGIN - p->size;
	for (uint32_t r = r0; r < r0 + p->size; r++) {
		for (uint32_t c = c0; c < c0 + p->size; c++) {
			img[(size_t)r * w + c] = v;
		}
	}
	d->y[i] = p->target;
}

/* Training: floor(fraction n) examples by selection sampling (Knuth's
 * Algorithm S), so exactly that many, uniformly, without scratch. */
static void
backdoor_train(const dpoison *p, fm_attack_data *d, uint32_t w, uint32_t h,
    float v)
{
	size_t k = (size_t)floor(p->fraction * (double)d->n);
	fm_rng rng;
	p->host->rng_seed(&rng, d->seed, DP_STREAM);
	for (size_t i = 0; i < d->n && k > 0; i++) {
		if (p->host->rng_uniform(&rng) * (double)(d->n - i) <
		    (double)k) {
			backdoor_stamp(p, d, i, w, h, v);
			k--;
		}
	}
}

/* Success-rate set: the examples not of class target, moved to the
 * front, all stamped and labelled target. */
static void
backdoor_eval(const dpoison *p, fm_attack_data *d, uint32_t w, uint32_t h,
    float v)
{
	size_t keep = 0;
	for (size_t i = 0; i < d->n; i++) {
		if (d->y[i] == p->target) {
			continue;
		}
		if (keep != i) {
			memcpy(d->x + keep * d->dim, d->x + i * d->dim,
			    d->dim * sizeof(float));
		}
		backdoor_stamp(p, d, keep, w, h, v);
		keep++;
	}
	d->nkeep = keep;
	d->defined = 1;
}

static int
backdoor_poison(void *st, fm_attack_data *d)
{
	const dpoison *p = st;
	uint32_t w, h;
	float v;
	int rv = dp_check_data(p, d);
	if (rv == FM_OK && (uint32_t)p->target >= d->nclasses) {
		p->host->log(FM_LOG_ERR, DP_LOG, "backdoor: target %d is not "
		    "one of the %u classes", (int)p->target, d->nclasses);
		rv = FM_EINVAL;
	}
	if (rv != FM_OK || (rv = backdoor_shape(p, d, &w, &h)) != FM_OK ||
	    (rv = backdoor_value(p, d, &v)) != FM_OK) {
		return rv;
	}
	if (d->purpose == FM_ATTACK_EVAL) {
		backdoor_eval(p, d, w, h, v);
	} else {
		backdoor_train(p, d, w, h, v);
	}
	return FM_OK;
}

/* ---- registration ------------------------------------------------------ */

static const fm_attack_ops label_flip_ops = {
	.base = FM_OPS(fm_attack_ops, FM_KIND_ATTACK, dpoison, label_flip_init,
	    dp_fini),
	.poison_data = label_flip_poison,
};

static const fm_attack_ops backdoor_ops = {
	.base = FM_OPS(fm_attack_ops, FM_KIND_ATTACK, dpoison, backdoor_init,
	    dp_fini),
	.poison_data = backdoor_poison,
};

static const fm_param_desc backdoor_params[] = {
	{ "size", FM_PARAM_INT, 5, 1, 65536, NULL,
	    "Side of the square trigger, in pixels." },
	{ "target", FM_PARAM_INT, 0, 0, 1e6, NULL,
	    "Label that triggered examples are given." },
	{ "fraction", FM_PARAM_REAL, 0.5, 0, 1, NULL,
	    "Share of an adversarial client's examples that get the trigger." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc dp_components[] = {
	FM_COMPONENT(FM_KIND_ATTACK, "label_flip",
	    "Label flipping: y -> C-1-y (Karimireddy, He & Jaggi, 2021)",
	    NULL, label_flip_ops, 0),
	FM_COMPONENT(FM_KIND_ATTACK, "backdoor",
	    "Pixel-pattern backdoor (Gu et al., 2017; Ozdayi et al., 2021) "
	    "with its attack success rate",
	    backdoor_params, backdoor_ops, FM_COMP_STATELESS),
};

FM_PLUGIN("data_poison", "2.0.0", "MIT",
    "Data-poisoning attacks: label flipping, pixel-pattern backdoor",
    dp_components, NULL);
