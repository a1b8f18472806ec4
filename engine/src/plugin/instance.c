/* SPDX-License-Identifier: MIT */
/* instance.c: opening and closing component instances for a node. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "plugin/plugin_int.h"

/* Copies params[np] and their strings into one block owned by h. NULL
 * params means the declared defaults. */
static int
inst_copy_params(fmi_inst_head *h, const fm_value *params, size_t np,
    fm_error *err)
{
	fm_value def[FMI_MAX_PARAMS];
	size_t size = np * sizeof(fm_value) + 1;
	if (params == NULL) {
		int rv = np <= FMI_ARRAY_LEN(def) ?
		    fmi_params_resolve(h->comp, NULL, 0, def, err) : FM_EINVAL;
		if (rv != FM_OK) {
			return fm_error_set(err, rv, "%s: cannot resolve default "
			    "parameters", h->comp->desc->name);
		}
		params = def;
	}
	for (size_t i = 0; i < np; i++) {
		size += params[i].str != NULL ? strlen(params[i].str) + 1 : 0;
	}
	h->params = malloc(size);
	if (h->params == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	char *s = (char *)(h->params + np);
	for (size_t i = 0; i < np; i++) {
		h->params[i] = params[i];
		if (params[i].str != NULL) {
			size_t n = strlen(params[i].str) + 1;
			memcpy(s, params[i].str, n);
			h->params[i].str = s;
			s += n;
		}
	}
	return FM_OK;
}

static void
inst_free(fmi_inst_head *h)
{
	free(h->state);
	free(h->params);
	free(h);
}

/* What an instance needs before its init call: params, zeroed state, the
 * fm_instance. h->comp is set by the caller. */
static int
inst_prepare(fmi_inst_head *h, size_t state_size, const fm_value *params,
    size_t dim, uint32_t role, int32_t node_id, uint64_t seed,
    const fmi_node_link *link, fm_error *err)
{
	const fmi_component *c = h->comp;
	size_t np = fmi_component_nparams(c);
	int rv = inst_copy_params(h, params, np, err);
	if (rv == FM_OK) {
		h->state = calloc(1, state_size != 0 ? state_size : 1);
		rv = h->state != NULL ? FM_OK : fm_error_set(err, FM_ENOMEM,
		    "%s '%s': no memory for %zu bytes of state",
		    fmi_kind_name(c->kind), c->desc->name, state_size);
	}
	if (link != NULL) {
		h->link = *link;
	}
	h->inst = (fm_instance) { fmi_host_api(), h->params, (uint32_t)np,
		role, node_id, 0, dim, seed, h, 0, 0 };
	return rv;
}

/* Maps an init result to an error naming the component. */
static int
inst_init_failed(const fmi_inst_head *h, const char *call, int rv,
    fm_error *err)
{
	if (rv < 0) {
		rv = FM_EPLUGIN;
	}
	if (h->error[0] != '\0') { /* the plugin said why (host->set_error) */
		return fm_error_set(err, rv, "%s '%s': %s",
		    fmi_kind_name(h->comp->kind), h->comp->desc->name,
		    h->error);
	}
	return fm_error_set(err, rv, "%s '%s' (%s): %s failed: %s",
	    fmi_kind_name(h->comp->kind), h->comp->desc->name, h->comp->path,
	    call, fm_strerror(rv));
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
	a->h.comp = c;
	a->ops = c->ops;
	int rv = inst_prepare(&a->h, a->ops->a_state_size, params, dim, role,
	    node_id, seed, link, err);
	if (rv == FM_OK) {
		rv = a->ops->a_init(a->h.state, &a->h.inst);
		if (rv != FM_OK) {
			a->ops->a_fini(a->h.state); /* runs even if init failed */
			rv = inst_init_failed(&a->h, "a_init", rv, err);
		}
	}
	if (rv != FM_OK) {
		inst_free(&a->h);
		return rv;
	}
	*out = a;
	return FM_OK;
}

int
fmi_agg_trains(const fm_aggregator_ops *o)
{
	return o->a_local_begin != NULL || o->a_local_grad != NULL ||
	    o->a_local_step != NULL || o->a_local_end != NULL;
}

int
fmi_agg_accept_many(fmi_agg *a, const fm_update *u, uint32_t n, int *status)
{
	if (a->ops->a_accept_many != NULL && n > 1) {
		for (uint32_t k = 0; k < n; k++) {
			status[k] = FM_EPLUGIN; /* unless the plugin says */
		}
		return a->ops->a_accept_many(a->h.state, u, n, status);
	}
	for (uint32_t k = 0; k < n; k++) {
		status[k] = a->ops->a_accept(a->h.state, &u[k]);
	}
	return FM_OK;
}

void
fmi_agg_close(fmi_agg *a)
{
	if (a == NULL) {
		return;
	}
	a->ops->a_fini(a->h.state);
	inst_free(&a->h);
}

int
fmi_cons_open(fmi_cons **out, const fmi_component *c, const fm_value *params,
    size_t dim, int32_t peer, uint64_t seed, const fmi_node_link *link,
    fm_error *err)
{
	if (out == NULL || c == NULL || c->kind != FM_KIND_CONSENSUS ||
	    c->ops == NULL) {
		return fm_error_set(err, FM_EINVAL, "not a consensus component");
	}
	fmi_cons *k = calloc(1, sizeof *k);
	if (k == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	k->h.comp = c;
	k->ops = c->ops;
	int rv = inst_prepare(&k->h, k->ops->c_state_size, params, dim,
	    FM_ROLE_PEER, peer, seed, link, err);
	if (rv == FM_OK) {
		rv = k->ops->c_init(k->h.state, &k->h.inst);
		if (rv != FM_OK) {
			k->ops->c_fini(k->h.state);
			rv = inst_init_failed(&k->h, "c_init", rv, err);
		}
	}
	if (rv != FM_OK) {
		inst_free(&k->h);
		return rv;
	}
	*out = k;
	return FM_OK;
}

void
fmi_cons_close(fmi_cons *k)
{
	if (k == NULL) {
		return;
	}
	k->ops->c_fini(k->h.state);
	inst_free(&k->h);
}

int
fmi_def_open(fmi_def **out, const fmi_component *c, const fm_value *params,
    size_t dim, uint32_t role, int32_t node_id, uint64_t seed,
    uint32_t max_updates, uint32_t flags, fm_error *err)
{
	if (out == NULL || c == NULL || c->kind != FM_KIND_DEFENCE ||
	    c->ops == NULL) {
		return fm_error_set(err, FM_EINVAL, "not a defence");
	}
	fmi_def *d = calloc(1, sizeof *d);
	if (d == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	d->h.comp = c;
	d->ops = c->ops;
	int rv = inst_prepare(&d->h, d->ops->d_state_size, params, dim, role,
	    node_id, seed, NULL, err);
	d->h.inst.max_updates = max_updates;
	d->h.inst.flags = flags;
	if (rv == FM_OK) {
		rv = d->ops->d_init(d->h.state, &d->h.inst);
		if (rv != FM_OK) {
			d->ops->d_fini(d->h.state);
			rv = inst_init_failed(&d->h, "d_init", rv, err);
		}
	}
	if (rv != FM_OK) {
		inst_free(&d->h);
		return rv;
	}
	*out = d;
	return FM_OK;
}

void
fmi_def_close(fmi_def *d)
{
	if (d == NULL) {
		return;
	}
	d->ops->d_fini(d->h.state);
	inst_free(&d->h);
}

int
fmi_atk_open(fmi_atk **out, const fmi_component *c, const fm_value *params,
    size_t dim, uint32_t role, int32_t node_id, uint64_t seed, fm_error *err)
{
	if (out == NULL || c == NULL || c->kind != FM_KIND_ATTACK ||
	    c->ops == NULL) {
		return fm_error_set(err, FM_EINVAL, "not an attack");
	}
	fmi_atk *t = calloc(1, sizeof *t);
	if (t == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	t->h.comp = c;
	t->ops = c->ops;
	int rv = inst_prepare(&t->h, t->ops->t_state_size, params, dim, role,
	    node_id, seed, NULL, err);
	if (rv == FM_OK) {
		rv = t->ops->t_init(t->h.state, &t->h.inst);
		if (rv != FM_OK) {
			t->ops->t_fini(t->h.state);
			rv = inst_init_failed(&t->h, "t_init", rv, err);
		}
	}
	if (rv != FM_OK) {
		inst_free(&t->h);
		return rv;
	}
	*out = t;
	return FM_OK;
}

void
fmi_atk_close(fmi_atk *t)
{
	if (t == NULL) {
		return;
	}
	t->ops->t_fini(t->h.state);
	inst_free(&t->h);
}
