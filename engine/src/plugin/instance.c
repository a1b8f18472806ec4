/* SPDX-License-Identifier: MIT */
/*
 * instance.c: component instances for a node: one open and one close for
 * every kind, and the typed calls through which the engine reaches a
 * plugin (no code outside plugin/ touches an ops table).
 */
#include <stddef.h>
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

/* Maps an init result to an error naming the component. */
static int
inst_init_failed(const fmi_inst_head *h, int rv, fm_error *err)
{
	if (rv < 0) {
		rv = FM_EPLUGIN;
	}
	if (h->error[0] != '\0') { /* the plugin said why (host->set_error) */
		return fm_error_set(err, rv, "%s '%s': %s",
		    fmi_kind_name(h->comp->kind), h->comp->desc->name,
		    h->error);
	}
	return fm_error_set(err, rv, "%s '%s' (%s): init failed: %s",
	    fmi_kind_name(h->comp->kind), h->comp->desc->name, h->comp->path,
	    fm_strerror(rv));
}

/*
 * Opens an instance of c, which must be of kind `kind`, into a block of
 * `size` bytes that starts with the fmi_inst_head and has the ops pointer
 * at ops_off (the FMI_KIND_INSTANCE structs).
 */
static int
inst_open(void **out, size_t size, size_t ops_off, uint32_t kind,
    const fmi_component *c, const fmi_open_args *a, fm_error *err)
{
	if (out == NULL || c == NULL || a == NULL || c->kind != kind ||
	    c->ops == NULL) {
		return fm_error_set(err, FM_EINVAL, "not a%s %s",
		    kind == FM_KIND_AGGREGATOR || kind == FM_KIND_ATTACK ?
		    "n" : "", fmi_kind_name(kind));
	}
	fmi_inst_head *h = calloc(1, size);
	if (h == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	h->comp = c;
	h->base = c->ops;
	memcpy((char *)h + ops_off, &c->ops, sizeof c->ops);
	size_t np = fmi_component_nparams(c);
	int rv = inst_copy_params(h, a->params, np, err);
	if (rv == FM_OK) {
		size_t ss = h->base->state_size;
		h->state = calloc(1, ss != 0 ? ss : 1);
		rv = h->state != NULL ? FM_OK : fm_error_set(err, FM_ENOMEM,
		    "%s '%s': no memory for %zu bytes of state",
		    fmi_kind_name(c->kind), c->desc->name, ss);
	}
	if (a->link != NULL) {
		h->link = *a->link;
	}
	h->inst = (fm_instance) { fmi_host_api(), h->params, (uint32_t)np,
		a->role, a->node_id, (uint32_t)sizeof(fm_instance), a->dim,
		a->seed, h, a->max_updates, a->flags };
	if (rv == FM_OK) {
		rv = h->base->init(h->state, &h->inst);
		if (rv != FM_OK) {
			h->base->fini(h->state); /* runs even if init failed */
			rv = inst_init_failed(h, rv, err);
		}
	}
	if (rv != FM_OK) {
		inst_free(h);
		return rv;
	}
	*out = h;
	return FM_OK;
}

static void
inst_close(fmi_inst_head *h)
{
	if (h != NULL) {
		h->base->fini(h->state);
		inst_free(h);
	}
}

#define FMI_KIND_DEFINE(T, KIND)                                            \
	int T##_open(T **out, const fmi_component *c,                       \
	    const fmi_open_args *a, fm_error *err)                          \
	{                                                                   \
		return inst_open((void **)out, sizeof(T), offsetof(T, ops), \
		    KIND, c, a, err);                                       \
	}                                                                   \
	void T##_close(T *x)                                                \
	{                                                                   \
		inst_close(x != NULL ? &x->h : NULL);                       \
	}

FMI_KIND_DEFINE(fmi_agg, FM_KIND_AGGREGATOR)
FMI_KIND_DEFINE(fmi_def, FM_KIND_DEFENCE)
FMI_KIND_DEFINE(fmi_atk, FM_KIND_ATTACK)
FMI_KIND_DEFINE(fmi_cons, FM_KIND_CONSENSUS)
FMI_KIND_DEFINE(fmi_loc, FM_KIND_LOCAL)
FMI_KIND_DEFINE(fmi_priv, FM_KIND_PRIVACY)
FMI_KIND_DEFINE(fmi_cmp, FM_KIND_COMPRESSOR)

/* ---- every kind ------------------------------------------------------ */

int
fmi_inst_message(fmi_inst_head *h, const fm_message *m)
{
	return h->base->on_message != NULL ?
	    h->base->on_message(h->state, m) : FM_ENOTSUP;
}

int
fmi_inst_timer(fmi_inst_head *h, uint64_t tag)
{
	return h->base->on_timer != NULL ?
	    h->base->on_timer(h->state, tag) : FM_ENOTSUP;
}

int
fmi_inst_handles_messages(const fmi_inst_head *h)
{
	return h->base->on_message != NULL;
}

int
fmi_component_handles_messages(const fmi_component *c)
{
	return ((const fm_ops *)c->ops)->on_message != NULL;
}

int
fmi_component_poisons_updates(const fmi_component *c)
{
	return c->kind == FM_KIND_ATTACK &&
	    ((const fm_attack_ops *)c->ops)->poison_updates != NULL;
}

int
fmi_component_privacy_runs(const fmi_component *c, uint32_t side)
{
	return c->kind == FM_KIND_PRIVACY && (c->desc->flags & side) != 0;
}

int
fmi_component_privacy_central(const fmi_component *c)
{
	return fmi_component_privacy_runs(c, FM_PRIVACY_SERVER) &&
	    ((const fm_privacy_ops *)c->ops)->server != NULL;
}

int
fmi_inst_saves(const fmi_inst_head *h)
{
	return h->base->save != NULL && h->base->load != NULL;
}

int
fmi_inst_save(fmi_inst_head *h, void *buf, size_t cap, size_t *len)
{
	return fmi_inst_saves(h) ? h->base->save(h->state, buf, cap, len) :
	    FM_ENOTSUP;
}

int
fmi_inst_load(fmi_inst_head *h, const void *buf, size_t len)
{
	return fmi_inst_saves(h) ? h->base->load(h->state, buf, len) :
	    FM_ENOTSUP;
}

/* ---- per kind -------------------------------------------------------- */

int
fmi_agg_begin(fmi_agg *a, const fm_round *r)
{
	return a->ops->begin(a->h.state, r);
}

int
fmi_agg_accept(fmi_agg *a, const fm_update *u, uint32_t n, int *status)
{
	return n == 0 ? FM_OK : a->ops->accept(a->h.state, u, n, status);
}

int
fmi_agg_finish(fmi_agg *a, const float *global, float *out, size_t dim)
{
	return a->ops->finish(a->h.state, global, out, dim);
}

int
fmi_def_apply(fmi_def *d, fm_rows *r)
{
	return d->ops->apply(d->h.state, r);
}

int
fmi_def_begin(fmi_def *d, const fm_round *r)
{
	return d->ops->begin != NULL ? d->ops->begin(d->h.state, r) : FM_OK;
}

int
fmi_atk_poisons_data(const fmi_atk *t)
{
	return t->ops->poison_data != NULL;
}

int
fmi_atk_poisons_updates(const fmi_atk *t)
{
	return t->ops->poison_updates != NULL;
}

int
fmi_atk_poison_data(fmi_atk *t, fm_attack_data *d)
{
	return t->ops->poison_data != NULL ?
	    t->ops->poison_data(t->h.state, d) : FM_ENOTSUP;
}

int
fmi_atk_poison_updates(fmi_atk *t, fm_rows *r)
{
	return t->ops->poison_updates != NULL ?
	    t->ops->poison_updates(t->h.state, r) : FM_ENOTSUP;
}

int
fmi_cons_outgoing(fmi_cons *k, uint32_t round, uint32_t out_degree,
    double *mass)
{
	if (mass == NULL) {
		return FM_EINVAL;
	}
	*mass = 0;
	return k->ops->outgoing != NULL ?
	    k->ops->outgoing(k->h.state, round, out_degree, mass) : FM_OK;
}

int
fmi_cons_mix(fmi_cons *k, const fm_mix *m, float *model, size_t dim)
{
	return k->ops->mix(k->h.state, m, model, dim);
}

int
fmi_cons_has_outgoing(const fmi_cons *k)
{
	return k->ops->outgoing != NULL;
}

int
fmi_loc_has_grad(const fmi_loc *l)
{
	return l->ops->grad != NULL;
}

int
fmi_loc_has_step(const fmi_loc *l)
{
	return l->ops->step != NULL;
}

int
fmi_loc_begin(fmi_loc *l, const fm_local_task *t)
{
	return l->ops->begin != NULL ? l->ops->begin(l->h.state, t) : FM_OK;
}

const float *
fmi_loc_grad(fmi_loc *l, const float *w, size_t dim)
{
	return l->ops->grad != NULL ? l->ops->grad(l->h.state, w, dim) : NULL;
}

void
fmi_loc_step(fmi_loc *l, float *w, size_t dim, double lr)
{
	if (l->ops->step != NULL) {
		l->ops->step(l->h.state, w, dim, lr);
	}
}

int
fmi_loc_end(fmi_loc *l, const fm_local_result *r)
{
	return l->ops->end != NULL ? l->ops->end(l->h.state, r) : FM_OK;
}

int
fmi_loc_round_begin(fmi_loc *l, const fm_round *r)
{
	return l->ops->round_begin != NULL ?
	    l->ops->round_begin(l->h.state, r) : FM_OK;
}

int
fmi_loc_accepted(fmi_loc *l, const fm_update *u, uint32_t n)
{
	return l->ops->accepted != NULL && n > 0 ?
	    l->ops->accepted(l->h.state, u, n) : FM_OK;
}

int
fmi_loc_round_end(fmi_loc *l, const fm_round *r, const float *global,
    float *out, size_t dim)
{
	return l->ops->round_end != NULL ?
	    l->ops->round_end(l->h.state, r, global, out, dim) : FM_OK;
}

int
fmi_priv_begin(fmi_priv *p, const fm_round *r)
{
	return p->ops->begin != NULL ? p->ops->begin(p->h.state, r) : FM_OK;
}

int
fmi_priv_client(fmi_priv *p, fm_private_update *u)
{
	return p->ops->client != NULL ? p->ops->client(p->h.state, u) : FM_OK;
}

int
fmi_priv_server(fmi_priv *p, fm_rows *r)
{
	return p->ops->server != NULL ? p->ops->server(p->h.state, r) : FM_OK;
}

size_t
fmi_cmp_bound(fmi_cmp *z, size_t dim)
{
	return z->ops->bound(z->h.state, dim);
}

int
fmi_cmp_encode(fmi_cmp *z, fm_codec *c)
{
	return z->ops->encode(z->h.state, c);
}

int
fmi_cmp_decode(fmi_cmp *z, fm_codec *c)
{
	return z->ops->decode(z->h.state, c);
}
