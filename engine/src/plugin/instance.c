/* SPDX-License-Identifier: MIT */
/* instance.c: opening and closing aggregator instances for a node. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "plugin/plugin_int.h"

/* Copies params[np] and their strings into one block owned by a. NULL
 * params means the declared defaults. */
static int
agg_copy_params(fmi_agg *a, const fm_value *params, size_t np, fm_error *err)
{
	fm_value def[FMI_MAX_PARAMS];
	size_t size = np * sizeof(fm_value) + 1;
	if (params == NULL) {
		int rv = np <= FMI_ARRAY_LEN(def) ?
		    fmi_params_resolve(a->comp, NULL, 0, def, err) : FM_EINVAL;
		if (rv != FM_OK) {
			return fm_error_set(err, rv, "%s: cannot resolve default "
			    "parameters", a->comp->desc->name);
		}
		params = def;
	}
	for (size_t i = 0; i < np; i++) {
		size += params[i].str != NULL ? strlen(params[i].str) + 1 : 0;
	}
	a->params = malloc(size);
	if (a->params == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	char *s = (char *)(a->params + np);
	for (size_t i = 0; i < np; i++) {
		a->params[i] = params[i];
		if (params[i].str != NULL) {
			size_t n = strlen(params[i].str) + 1;
			memcpy(s, params[i].str, n);
			a->params[i].str = s;
			s += n;
		}
	}
	return FM_OK;
}

static void
agg_free(fmi_agg *a)
{
	free(a->state);
	free(a->params);
	free(a);
}

static int
agg_init(fmi_agg *a, fm_error *err)
{
	int rv = a->ops->a_init(a->state, &a->inst);
	if (rv == FM_OK) {
		return FM_OK;
	}
	a->ops->a_fini(a->state); /* fini runs even when init failed */
	if (rv < 0) {
		rv = FM_EPLUGIN;
	}
	return fm_error_set(err, rv, "aggregator '%s' (%s): a_init failed: %s",
	    a->comp->desc->name, a->comp->path, fm_strerror(rv));
}

int
fmi_agg_open(fmi_agg **out, const fmi_component *c, const fm_value *params,
    size_t dim, uint32_t role, int32_t node_id, uint64_t seed,
    const fmi_node_link *link, fm_error *err)
{
	if (out == NULL || c == NULL || c->kind != FM_KIND_AGGREGATOR ||
	    c->ops == NULL) {
		return fm_error_set(err, FM_EINVAL, "not an aggregator");
	}
	fmi_agg *a = calloc(1, sizeof *a);
	if (a == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	a->comp = c;
	a->ops = c->ops;
	size_t np = fmi_component_nparams(c);
	int rv = agg_copy_params(a, params, np, err);
	if (rv == FM_OK) {
		size_t ss = a->ops->a_state_size;
		a->state = calloc(1, ss != 0 ? ss : 1);
		rv = a->state != NULL ? FM_OK : fm_error_set(err, FM_ENOMEM,
		    "aggregator '%s': no memory for %zu bytes of state",
		    c->desc->name, ss);
	}
	if (link != NULL) {
		a->link = *link;
	}
	a->inst = (fm_instance) { fmi_host_api(), a->params, (uint32_t)np,
		role, node_id, 0, dim, seed, a };
	if (rv == FM_OK) {
		rv = agg_init(a, err);
	}
	if (rv != FM_OK) {
		agg_free(a);
		return rv;
	}
	*out = a;
	return FM_OK;
}

void
fmi_agg_close(fmi_agg *a)
{
	if (a == NULL) {
		return;
	}
	a->ops->a_fini(a->state);
	agg_free(a);
}
