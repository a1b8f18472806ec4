/* SPDX-License-Identifier: MIT */
/* a1_negate.c: an ABI 1.4 attack: negates the adversarial rows, and flips
 * labels (y -> nclasses - 1 - y; on the test set it also defines a success
 * rate). */
#include "fedmesh_plugin_1_4.h"

typedef struct a1_negate {
	int unused;
} a1_negate;

static int
ng_init(void *st, const fm_instance *inst)
{
	(void)st;
	(void)inst;
	return FM_OK;
}

static void
ng_fini(void *st)
{
	(void)st;
}

static int
ng_poison_data(void *st, fm_attack_data *d)
{
	(void)st;
	if (d->nclasses == 0) {
		return FM_EINVAL;
	}
	for (size_t i = 0; i < d->n; i++) {
		d->y[i] = (int32_t)d->nclasses - 1 - d->y[i];
	}
	if (d->purpose == FM_ATTACK_EVAL) {
		d->defined = 1;
	}
	return FM_OK;
}

static int
ng_poison_updates(void *st, fm_attack_round *r)
{
	(void)st;
	for (uint32_t i = 0; i < r->n; i++) {
		if (!r->adversarial[i]) {
			continue;
		}
		float *row = r->deltas + i * r->stride;
		for (size_t j = 0; j < r->dim; j++) {
			row[j] = -row[j];
		}
	}
	return FM_OK;
}

static const fm_component_desc a1_negate_components[] = {
	{ FM_KIND_ATTACK, "a1_negate", "1.4 attack: negate, flip labels",
	    NULL },
};

FM_PLUGIN_DEFINE("a1_negate", "1.0.0", "MIT", "ABI 1.4 test attack",
    a1_negate_components);

FM_PLUGIN_INIT(r, host)
{
	static const fm_attack_ops ops = { sizeof(fm_attack_ops),
		FM_KIND_ATTACK, "a1_negate", sizeof(a1_negate), ng_init, ng_fini,
		ng_poison_data, ng_poison_updates };
	return host->register_component(r, &ops, sizeof ops);
}
