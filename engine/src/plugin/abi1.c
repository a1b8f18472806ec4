/* SPDX-License-Identifier: MIT */
/*
 * abi1.c: ABI 1.x plugins behind 2.0 ops tables.
 *
 * fmi_abi1_load checks a 1.x descriptor as a 1.4 host did, runs the file's
 * fm_plugin_init with a 1.x host table and a registrar of its own, checks
 * each registered 1.x ops table, and builds one 2.0 component per 1.x one.
 * Each 2.0 ops table sits in an abi1_comp next to a host-sized copy of the
 * 1.x table; the thunks find it from the instance (init: host_data is the
 * host's fmi_inst_head, whose comp->desc->ops is the 2.0 table) and then
 * from their state, which is
 *
 *   [abi1_state: bookkeeping, the 1.x fm_instance and host table, scratch]
 *   [the 1.x plugin's own state, aligned to max_align_t]
 *
 * and translate every call's structs to their 1.x layouts.
 */
#define _GNU_SOURCE /* dladdr1: the ELF size of the descriptor symbol */
#include <dlfcn.h>
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <link.h>
#endif

#include "core/core.h"
#include "plugin/abi1.h"
#include "plugin/plugin_int.h"

/* the 1.4 host's limits are the 2.0 host's */
#define ABI1_MAX_COMPONENTS FMI_MAX_COMPONENTS
#define ABI1_MAX_NAME FMI_PLUGIN_MAX_NAME
#define ABI1_MAX_PARAMS FMI_MAX_PARAMS
#define ABI1_MAGIC 0x31494241u /* "ABI1": an abi1_comp */

/* The 1.x kinds: names and the smallest ops table the 1.4 host took (0:
 * no ops in 1.x, so no 1.x file can provide one). */
static const struct {
	const char *name;
	size_t ops_min;
} abi1_kinds[] = {
	{ "unknown", 0 },
	{ "aggregator", FM1_AGG_OPS_SIZE_1_0 },
	{ "defence", FM1_DEF_OPS_SIZE_1_1 },
	{ "privacy", 0 },
	{ "consensus", FM1_CONS_OPS_SIZE_1_1 },
	{ "compressor", 0 },
	{ "attack", FM1_ATK_OPS_SIZE_1_1 },
};

/* What every 1.x ops table starts with; read with memcpy. */
typedef struct abi1_head {
	uint32_t size;
	uint32_t kind;
	const char *name;
	size_t state_size;
} abi1_head;

_Static_assert(offsetof(fm1_aggregator_ops, a_kind) ==
    offsetof(abi1_head, kind), "1.x head: kind");
_Static_assert(offsetof(fm1_aggregator_ops, a_name) ==
    offsetof(abi1_head, name), "1.x head: name");
_Static_assert(offsetof(fm1_defence_ops, d_state_size) ==
    offsetof(abi1_head, state_size), "1.x head: state size");
_Static_assert(offsetof(fm1_attack_ops, t_name) ==
    offsetof(abi1_head, name), "1.x head: name");
_Static_assert(offsetof(fm1_consensus_ops, c_state_size) ==
    offsetof(abi1_head, state_size), "1.x head: state size");

/* One translated component. */
typedef struct abi1_comp {
	union { /* the 2.0 table: fm_component_desc.ops points here */
		fm_ops base;
		fm_aggregator_ops agg;
		fm_defence_ops def;
		fm_attack_ops atk;
		fm_consensus_ops cons;
	} ops;
	uint32_t magic; /* ABI1_MAGIC */
	uint32_t kind;
	int registered;
	union { /* host-sized copy of the 1.x table: what it lacks is NULL */
		fm1_aggregator_ops agg;
		fm1_defence_ops def;
		fm1_attack_ops atk;
		fm1_consensus_ops cons;
	} ops1;
	size_t state1_size;
} abi1_comp;

struct fmi_abi1 {
	uint32_t n;
	abi1_comp *comps;         /* [n], in declaration order */
	fm_component_desc *descs; /* [n] */
	/* The 1.x table fm_plugin_init got: plugins may keep the pointer. */
	fm_host_api host;
};

/* One load: the registrar handed to fm_plugin_init is this. */
typedef struct abi1_load {
	const fm1_plugin_info *info;
	const char *path;
	fmi_abi1 *a;
	int rv; /* first refusal of a registration, with its reason */
	char why[400];
} abi1_load;

/* The load whose fm_plugin_init runs on this thread: registering outside
 * it is refused. */
static _Thread_local abi1_load *abi1_active;

/* An instance's state, before the 1.x plugin's own. */
typedef struct abi1_state {
	const abi1_comp *c; /* NULL until init found it */
	fm_instance inst;   /* what the 1.x plugin sees */
	fm_host_api host;   /* its host table */
	fm1_update *ups;    /* scratch, grown on demand, freed by fini */
	uint32_t nups;
	uint32_t nstatus;
	int *status;
	fm1_peer_model *peers;
	uint32_t npeers;
} abi1_state;

#define ABI1_STATE1_OFF                                                     \
	((sizeof(abi1_state) + alignof(max_align_t) - 1) /                  \
	    alignof(max_align_t) * alignof(max_align_t))

static void *
state1(abi1_state *s)
{
	return (char *)s + ABI1_STATE1_OFF;
}

static int abi1_register(fm_registrar *r, const void *ops, size_t ops_size);

/* ---- small helpers -------------------------------------------------------- */

static const char *
kind1_name(uint32_t kind)
{
	return kind < FMI_ARRAY_LEN(abi1_kinds) ? abi1_kinds[kind].name :
						  "unknown";
}




/* The 1.x host table: the 2.0 one, as 1.4 knew it. */
static void
host1_make(fm_host_api *h1, const fm_host_api *h2)
{
	memset(h1, 0, sizeof *h1);
	if (h2 != NULL) {
		memcpy(h1, h2, FMI_MIN((size_t)h2->struct_size, sizeof *h1));
	}
	h1->struct_size = (uint32_t)offsetof(fm_host_api, parallel_for);
	h1->abi_major = 1;
	h1->abi_minor = 4;
	h1->register_component = abi1_register;
	h1->parallel_for = NULL;
	h1->limits = NULL;
}


/* ---- the descriptor, as the 1.4 host checked it ---------------------------- */

static int FM_PRINTF(4, 5)
ld_fail(const abi1_load *ld, fm_error *e, int code, const char *fmt, ...)
{
	char why[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return fm_error_set(e, code, "%s: %s", ld->path, why);
}


static int
check_params(const abi1_load *ld, const fm1_component_desc *c, fm_error *e)
{
	const fm_param_desc *p = c->params;
	char why[160];
	for (size_t n = 0; p != NULL && p[n].name != NULL; n++) {
		if (n == ABI1_MAX_PARAMS) {
			return ld_fail(ld, e, FM_EPLUGIN, "component '%s' "
			    "declares more than %d parameters (is the array "
			    "ended by { NULL }?)", c->name, ABI1_MAX_PARAMS);
		}
		if (fmi_param_desc_bad(&p[n], p, n, why, sizeof why)) {
			return ld_fail(ld, e, FM_EPLUGIN, "component '%s', "
			    "parameter '%s': %s", c->name, p[n].name, why);
		}
	}
	return FM_OK;
}

static int
check_comp(const abi1_load *ld, uint32_t i, fm_error *e)
{
	const fm1_component_desc *c = &ld->info->components[i];
	if (c->kind == 0 || c->kind >= FMI_ARRAY_LEN(abi1_kinds)) {
		return ld_fail(ld, e, FM_EPLUGIN, "component %u has unknown "
		    "kind %u", i, c->kind);
	}
	if (!fmi_component_name_ok(c->name) || !fmi_nonempty(c->description)) {
		return ld_fail(ld, e, FM_EPLUGIN, "component %u needs a name "
		    "(1..%d of [A-Za-z0-9_.-]) and a description", i,
		    ABI1_MAX_NAME);
	}
	if (abi1_kinds[c->kind].ops_min == 0) {
		return ld_fail(ld, e, FM_EPLUGIN, "component '%s' is a %s, "
		    "which plugin ABI 1.x cannot run; rebuild it against ABI "
		    "2.0", c->name, kind1_name(c->kind));
	}
	for (uint32_t j = 0; j < i; j++) {
		const fm1_component_desc *o = &ld->info->components[j];
		if (o->kind == c->kind && strcmp(o->name, c->name) == 0) {
			return ld_fail(ld, e, FM_EPLUGIN, "declares %s '%s' "
			    "twice", kind1_name(c->kind), c->name);
		}
	}
	return check_params(ld, c, e);
}

static int
check_info(const abi1_load *ld, fm_error *e)
{
	const fm1_plugin_info *in = ld->info;
	size_t symsize = fmi_sym_size(in);
	if (in->info_size < FM1_PLUGIN_INFO_SIZE_1_0) {
		return ld_fail(ld, e, FM_EVERSION, "descriptor size %u is "
		    "smaller than the ABI 1.0 descriptor (%zu bytes); rebuild "
		    "the plugin against ABI 2.0", in->info_size,
		    (size_t)FM1_PLUGIN_INFO_SIZE_1_0);
	}
	if (symsize != 0 && in->info_size > symsize) {
		return ld_fail(ld, e, FM_EPLUGIN, "descriptor claims %u bytes "
		    "but the symbol has %zu", in->info_size, symsize);
	}
	if (!fmi_nonempty(in->name) || !fmi_nonempty(in->version) ||
	    !fmi_nonempty(in->description)) {
		return ld_fail(ld, e, FM_EPLUGIN, "the descriptor needs a "
		    "name, a version and a description");
	}
	if (in->components == NULL || in->ncomponents == 0 ||
	    in->ncomponents > ABI1_MAX_COMPONENTS) {
		return ld_fail(ld, e, FM_EPLUGIN, "declares %u components "
		    "(want 1..%d)", in->ncomponents, ABI1_MAX_COMPONENTS);
	}
	for (uint32_t i = 0; i < in->ncomponents; i++) {
		int rv = check_comp(ld, i, e);
		if (rv != FM_OK) {
			return rv;
		}
	}
	return FM_OK;
}

/* ---- registration: host->register_component of the 1.x table -------------- */

static int FM_PRINTF(3, 4)
rr_fail(abi1_load *ld, int code, const char *fmt, ...)
{
	if (ld->rv == FM_OK) { /* the first refusal is the one reported */
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ld->why, sizeof ld->why, fmt, ap);
		va_end(ap);
		ld->rv = code;
	}
	return code;
}

/* Size, kind and name of a 1.x ops table, read without trusting it. */
static int
rr_head(abi1_load *ld, const void *ops, size_t size, abi1_head *h)
{
	if (ops == NULL || size < sizeof *h) {
		return rr_fail(ld, FM_EPLUGIN, "ops table %s (%zu bytes)",
		    ops == NULL ? "is NULL" : "too small", size);
	}
	memcpy(h, ops, sizeof *h);
	if (h->size != size) {
		return rr_fail(ld, FM_EPLUGIN, "ops struct size %u does not "
		    "match the %zu bytes passed to register_component",
		    h->size, size);
	}
	if (h->kind == 0 || h->kind >= FMI_ARRAY_LEN(abi1_kinds)) {
		return rr_fail(ld, FM_EPLUGIN, "ops of unknown kind %u",
		    h->kind);
	}
	if (!fmi_nonempty(h->name)) {
		return rr_fail(ld, FM_EPLUGIN, "ops without a name");
	}
	return FM_OK;
}

/* Index of the declared component the table is for. */
static int
rr_declared(abi1_load *ld, const abi1_head *h, uint32_t *idx)
{
	const fm1_plugin_info *in = ld->info;
	for (uint32_t i = 0; i < in->ncomponents; i++) {
		if (strcmp(in->components[i].name, h->name) != 0) {
			continue;
		}
		if (in->components[i].kind == h->kind) {
			*idx = i;
			return FM_OK;
		}
		return rr_fail(ld, FM_EPLUGIN, "'%s' is declared as %s but its "
		    "ops have kind %s", h->name,
		    kind1_name(in->components[i].kind), kind1_name(h->kind));
	}
	return rr_fail(ld, FM_EPLUGIN, "registers %s '%s', which the "
	    "descriptor does not declare", kind1_name(h->kind), h->name);
}

/* The calls a 1.x ops table of each kind must have, as the 1.4 host
 * required them: offsets and names. */
typedef struct rr_req {
	size_t off;
	const char *name;
} rr_req;

#define RQ(T, f) { offsetof(T, f), #f }
static const rr_req rq_agg[] = { RQ(fm1_aggregator_ops, a_init),
	RQ(fm1_aggregator_ops, a_fini), RQ(fm1_aggregator_ops, a_begin),
	RQ(fm1_aggregator_ops, a_accept), RQ(fm1_aggregator_ops, a_finish),
	{ 0, NULL } };
static const rr_req rq_def[] = { RQ(fm1_defence_ops, d_init),
	RQ(fm1_defence_ops, d_fini), RQ(fm1_defence_ops, d_apply),
	{ 0, NULL } };
static const rr_req rq_atk[] = { RQ(fm1_attack_ops, t_init),
	RQ(fm1_attack_ops, t_fini), { 0, NULL } };
static const rr_req rq_cons[] = { RQ(fm1_consensus_ops, c_init),
	RQ(fm1_consensus_ops, c_fini), RQ(fm1_consensus_ops, c_mix),
	{ 0, NULL } };

/* The 1.x table as a host-sized copy (what an older minor lacks reads as
 * NULL), with the calls its kind requires; then the kind's own rules
 * (2.0 moved the local-training hooks; an attack must attack). */
static int
rr_copy(abi1_load *ld, abi1_comp *c, uint32_t kind, const char *name,
    const void *ops, size_t size)
{
	const rr_req *req = kind == FM_KIND_AGGREGATOR ? rq_agg :
	    kind == FM_KIND_DEFENCE ? rq_def : kind == FM_KIND_ATTACK ?
	    rq_atk : rq_cons;
	memcpy(&c->ops1, ops, FMI_MIN(size, sizeof c->ops1));
	for (const rr_req *q = req; q->name != NULL; q++) {
		void (*fn)(void);
		memcpy(&fn, (const char *)&c->ops1 + q->off, sizeof fn);
		if (fn == NULL) {
			return rr_fail(ld, FM_EPLUGIN, "%s '%s' has no %s "
			    "(required)", kind1_name(kind), name, q->name);
		}
	}
	const fm1_aggregator_ops *a = &c->ops1.agg;
	if (kind == FM_KIND_AGGREGATOR && (a->a_local_begin != NULL ||
	    a->a_local_grad != NULL || a->a_local_step != NULL ||
	    a->a_local_end != NULL)) {
		return rr_fail(ld, FM_EVERSION, "component '%s' uses the ABI "
		    "1.2 local-training hooks, which 2.0 moved to the local "
		    "kind: rebuild it against ABI 2.0 (docs/plugin-guide.md, "
		    "'ABI 1.x plugins')", name);
	}
	const fm1_attack_ops *t = &c->ops1.atk;
	if (kind == FM_KIND_ATTACK && t->t_poison_data == NULL &&
	    t->t_poison_updates == NULL) {
		return rr_fail(ld, FM_EPLUGIN, "attack '%s' has neither "
		    "t_poison_data nor t_poison_updates", name);
	}
	return FM_OK;
}

static int
abi1_register(fm_registrar *r, const void *ops, size_t ops_size)
{
	abi1_load *ld = (abi1_load *)(void *)r;
	abi1_head h;
	uint32_t idx = 0;
	if (ld == NULL || ld != abi1_active) {
		fm_log(FM_LOG_ERR, "FM-PLUGIN-OPS", "register_component called "
		    "outside fm_plugin_init; refused");
		return FM_ESTATE;
	}
	int rv = rr_head(ld, ops, ops_size, &h);
	if (rv == FM_OK) {
		rv = rr_declared(ld, &h, &idx);
	}
	if (rv == FM_OK && ops_size < abi1_kinds[h.kind].ops_min) {
		rv = rr_fail(ld, FM_EPLUGIN, "%s ops for '%s' are %zu bytes; "
		    "plugin ABI %s needs at least %zu", kind1_name(h.kind),
		    h.name, ops_size, h.kind == FM_KIND_AGGREGATOR ? "1.0" :
		    "1.1", abi1_kinds[h.kind].ops_min);
	}
	abi1_comp *c = rv == FM_OK ? &ld->a->comps[idx] : NULL;
	if (c != NULL && c->registered) {
		rv = rr_fail(ld, FM_EPLUGIN, "registers %s '%s' twice",
		    kind1_name(h.kind), h.name);
	}
	if (rv == FM_OK && h.state_size > SIZE_MAX - ABI1_STATE1_OFF) {
		rv = rr_fail(ld, FM_EPLUGIN, "%s '%s' asks for %zu bytes of "
		    "state", kind1_name(h.kind), h.name, h.state_size);
	}
	if (rv == FM_OK) {
		memset(&c->ops1, 0, sizeof c->ops1);
		rv = rr_copy(ld, c, h.kind, h.name, ops, ops_size);
	}
	if (rv != FM_OK) {
		return rv;
	}
	c->kind = h.kind;
	c->state1_size = h.state_size;
	c->registered = 1;
	return FM_OK;
}

/* ---- the thunks: every kind --------------------------------------------- */

/* The component behind an instance being opened. */
static const abi1_comp *
comp_of(const fm_instance *inst)
{
	const fmi_inst_head *h = inst != NULL ? inst->host_data : NULL;
	if (h == NULL || h->comp == NULL || h->comp->desc == NULL ||
	    h->comp->desc->ops == NULL) {
		return NULL;
	}
	const abi1_comp *c = (const abi1_comp *)(const void *)
	    ((const char *)h->comp->desc->ops - offsetof(abi1_comp, ops));
	return c->magic == ABI1_MAGIC ? c : NULL;
}

/* host->set_error for the instance, if the host has it. */
static void FM_PRINTF(2, 3)
st_error(abi1_state *s, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	if (s->host.set_error == NULL) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	s->host.set_error(&s->inst, "%s", why);
}

static int
t_init(void *st, const fm_instance *inst)
{
	abi1_state *s = st;
	const abi1_comp *c = comp_of(inst);
	if (c == NULL) {
		if (inst != NULL && inst->host != NULL &&
		    inst->host->set_error != NULL) {
			inst->host->set_error(inst, "an ABI 1.x component was "
			    "opened without the instance head its translation "
			    "needs (fm_instance.host_data)");
		}
		return FM_EINTERNAL;
	}
	host1_make(&s->host, inst->host);
	s->inst = *inst;
	s->inst.host = &s->host;
	s->c = c;
	switch (c->kind) {
	case FM_KIND_AGGREGATOR:
		return c->ops1.agg.a_init(state1(s), &s->inst);
	case FM_KIND_DEFENCE:
		return c->ops1.def.d_init(state1(s), &s->inst);
	case FM_KIND_ATTACK:
		return c->ops1.atk.t_init(state1(s), &s->inst);
	default:
		return c->ops1.cons.c_init(state1(s), &s->inst);
	}
}

static void
t_fini(void *st)
{
	abi1_state *s = st;
	const abi1_comp *c = s->c;
	if (c != NULL) { /* the 1.x init ran: its fini runs, as in 1.x */
		switch (c->kind) {
		case FM_KIND_AGGREGATOR:
			c->ops1.agg.a_fini(state1(s));
			break;
		case FM_KIND_DEFENCE:
			c->ops1.def.d_fini(state1(s));
			break;
		case FM_KIND_ATTACK:
			c->ops1.atk.t_fini(state1(s));
			break;
		default:
			c->ops1.cons.c_fini(state1(s));
			break;
		}
	}
	free(s->ups);
	free(s->status);
	free(s->peers);
	s->ups = NULL;
	s->status = NULL;
	s->peers = NULL;
	s->nups = s->nstatus = s->npeers = 0;
	s->c = NULL;
}

typedef int (*abi1_msg_fn)(void *st, const fm1_message *m);
typedef int (*abi1_timer_fn)(void *st, uint64_t tag);

static abi1_msg_fn
msg_fn(const abi1_comp *c)
{
	switch (c->kind) {
	case FM_KIND_AGGREGATOR:
		return c->ops1.agg.a_on_message;
	case FM_KIND_DEFENCE:
		return c->ops1.def.d_on_message;
	case FM_KIND_CONSENSUS:
		return c->ops1.cons.c_on_message;
	default:
		return NULL; /* 1.x attacks had no messages */
	}
}

static abi1_timer_fn
timer_fn(const abi1_comp *c)
{
	switch (c->kind) {
	case FM_KIND_AGGREGATOR:
		return c->ops1.agg.a_on_timer;
	case FM_KIND_DEFENCE:
		return c->ops1.def.d_on_timer;
	case FM_KIND_CONSENSUS:
		return c->ops1.cons.c_on_timer;
	default:
		return NULL;
	}
}

static int
t_on_message(void *st, const fm_message *m)
{
	abi1_state *s = st;
	abi1_msg_fn fn = s->c != NULL ? msg_fn(s->c) : NULL;
	if (fn == NULL) {
		return FM_ENOTSUP;
	}
	if (m == NULL) {
		return FM_EINVAL;
	}
	fm1_message m1 = { m->from, m->round, m->data, m->len };
	return fn(state1(s), &m1);
}

static int
t_on_timer(void *st, uint64_t tag)
{
	abi1_state *s = st;
	abi1_timer_fn fn = s->c != NULL ? timer_fn(s->c) : NULL;
	return fn != NULL ? fn(state1(s), tag) : FM_ENOTSUP;
}

/* ---- scratch and struct translation --------------------------------------- */

/* Grows a scratch array p of *cap elements of elem bytes to hold n; NULL
 * (p untouched) when out of memory. */
static void *
scratch(void *p, uint32_t *cap, uint32_t n, size_t elem)
{
	if (n <= *cap && p != NULL) {
		return p;
	}
	if ((size_t)n > SIZE_MAX / elem) {
		return NULL;
	}
	void *q = realloc(p, (size_t)n * elem);
	if (q != NULL) {
		*cap = n;
	}
	return q;
}

static void
update1(fm1_update *o, const fm_update *u)
{
	o->client = u->client;
	o->round = u->round;
	o->delta = u->delta;
	o->dim = u->dim;
	o->num_examples = u->num_examples;
	o->loss = u->loss;
	o->steps = FM_HAS(u, fm_update, steps) ? u->steps : 0;
}

/* s->ups[0..n) from u[0..n) (FM_AT-stepped). */
static int
updates1(abi1_state *s, const fm_update *u, uint32_t n)
{
	if (n == 0) {
		return FM_OK;
	}
	if (u == NULL) {
		return FM_EINVAL;
	}
	fm1_update *ups = scratch(s->ups, &s->nups, n, sizeof *ups);
	if (ups == NULL) {
		return FM_ENOMEM;
	}
	s->ups = ups;
	for (uint32_t k = 0; k < n; k++) {
		update1(&ups[k], FM_AT(const fm_update, u, k));
	}
	return FM_OK;
}

static void
peer1(fm1_peer_model *o, const fm_peer_model *p)
{
	o->peer = p->peer;
	o->out_degree = p->out_degree;
	o->params = p->params;
	o->weight = p->weight;
	o->mass = p->mass;
	o->num_examples = p->num_examples;
}

/* ---- aggregator ------------------------------------------------------------ */

static int
agg_begin(void *st, const fm_round *r)
{
	abi1_state *s = st;
	if (s->c == NULL) {
		return FM_ESTATE;
	}
	if (r == NULL) {
		return FM_EINVAL;
	}
	fm1_round r1 = { r->round, r->nclients, r->clients, r->global, r->dim,
		FM_HAS(r, fm_round, population) ? r->population : 0,
		FM_HAS(r, fm_round, lr_scale) ? r->lr_scale : 1.0 };
	return s->c->ops1.agg.a_begin(state1(s), &r1);
}

/* As the 1.4 host's accept_many: a_accept_many when the plugin has it and
 * there are several, status preset to FM_EPLUGIN unless the plugin says;
 * else a_accept per update, its result in status. */
static int
agg_accept(void *st, const fm_update *u, uint32_t n, int *status)
{
	abi1_state *s = st;
	if (s->c == NULL) {
		return FM_ESTATE;
	}
	const fm1_aggregator_ops *o = &s->c->ops1.agg;
	if (n == 0) {
		return FM_OK;
	}
	if (status == NULL) {
		int *own = scratch(s->status, &s->nstatus, n, sizeof *own);
		if (own == NULL) {
			return FM_ENOMEM;
		}
		s->status = status = own;
	}
	int rv = updates1(s, u, n);
	if (rv != FM_OK) {
		for (uint32_t k = 0; k < n; k++) {
			status[k] = rv;
		}
		return rv;
	}
	if (o->a_accept_many != NULL && n > 1) {
		for (uint32_t k = 0; k < n; k++) {
			status[k] = FM_EPLUGIN;
		}
		return o->a_accept_many(state1(s), s->ups, n, status);
	}
	for (uint32_t k = 0; k < n; k++) {
		status[k] = o->a_accept(state1(s), &s->ups[k]);
	}
	return FM_OK;
}

/* 1.x wrote the model in place: out holds a copy of global on entry. */
static int
agg_finish(void *st, const float *global, float *out, size_t dim)
{
	abi1_state *s = st;
	(void)global;
	if (s->c == NULL) {
		return FM_ESTATE;
	}
	return s->c->ops1.agg.a_finish(state1(s), out, dim);
}

/* A round's rows for a 1.x defence or attack: their updates in the 1.x
 * layout (s->ups). */
static int
rows1(abi1_state *s, const fm_rows *r)
{
	if (s->c == NULL) {
		return FM_ESTATE;
	}
	if (r == NULL) {
		return FM_EINVAL;
	}
	return updates1(s, r->updates, r->n);
}

/* ---- defence ----------------------------------------------------------------- */

static int
def_apply(void *st, fm_rows *r)
{
	abi1_state *s = st;
	int rv = rows1(s, r);
	if (rv != FM_OK) {
		return rv;
	}
	fm1_defence_round d = { (uint32_t)sizeof d, r->round, r->n, 0, r->dim,
		r->deltas, r->stride, r->n > 0 ? s->ups : NULL, r->global,
		r->server_delta, r->keep, r->keep_examples, r->nkeep, 0 };
	rv = s->c->ops1.def.d_apply(state1(s), &d);
	if (d.nkeep > r->n) {
		st_error(s, "defence '%s' passed %u rows of %u",
		    s->c->ops1.def.d_name, d.nkeep, r->n);
		return rv != FM_OK ? rv : FM_EPLUGIN;
	}
	r->nkeep = d.nkeep;
	return rv;
}

/* ---- attack ------------------------------------------------------------------ */

static int
atk_poison_data(void *st, fm_attack_data *d)
{
	abi1_state *s = st;
	if (s->c == NULL) {
		return FM_ESTATE;
	}
	return s->c->ops1.atk.t_poison_data(state1(s), d);
}

static int
atk_poison_updates(void *st, fm_rows *r)
{
	abi1_state *s = st;
	int rv = rows1(s, r);
	if (rv != FM_OK) {
		return rv;
	}
	fm1_attack_round a = { (uint32_t)sizeof a, r->round, r->n, r->nadv,
		r->dim, r->deltas, r->stride, r->n > 0 ? s->ups : NULL,
		r->adversarial, r->global, r->seed };
	return s->c->ops1.atk.t_poison_updates(state1(s), &a);
}

/* ---- consensus --------------------------------------------------------------- */

static int
cons_outgoing(void *st, uint32_t round, uint32_t out_degree, double *mass)
{
	abi1_state *s = st;
	if (s->c == NULL) {
		return FM_ESTATE;
	}
	return s->c->ops1.cons.c_outgoing(state1(s), round, out_degree, mass);
}

static int
cons_mix(void *st, const fm_mix *m, float *model, size_t dim)
{
	abi1_state *s = st;
	if (s->c == NULL) {
		return FM_ESTATE;
	}
	if (m == NULL || m->own == NULL ||
	    (m->nneighbours > 0 && m->neighbours == NULL)) {
		return FM_EINVAL;
	}
	uint32_t nn = m->nneighbours;
	fm1_peer_model own;
	peer1(&own, m->own);
	if (nn > 0) {
		fm1_peer_model *p = scratch(s->peers, &s->npeers, nn,
		    sizeof *p);
		if (p == NULL) {
			return FM_ENOMEM;
		}
		s->peers = p;
		for (uint32_t k = 0; k < nn; k++) {
			peer1(&p[k], FM_AT(const fm_peer_model, m->neighbours,
			    k));
		}
	}
	fm1_mix m1 = { m->round, m->self, m->in_degree, m->out_degree, &own,
		nn > 0 ? s->peers : NULL, nn, 0 };
	return s->c->ops1.cons.c_mix(state1(s), &m1, model, dim);
}

/* ---- building the 2.0 components ------------------------------------------ */

static void
build_comp(abi1_comp *c, fm_component_desc *d, const fm1_component_desc *cd)
{
	fm_ops base = { 0, c->kind, ABI1_STATE1_OFF + c->state1_size, t_init,
		t_fini, msg_fn(c) != NULL ? t_on_message : NULL,
		timer_fn(c) != NULL ? t_on_timer : NULL, NULL, NULL };
	uint32_t size;
	switch (c->kind) {
	case FM_KIND_AGGREGATOR:
		size = (uint32_t)sizeof c->ops.agg;
		c->ops.agg.begin = agg_begin;
		c->ops.agg.accept = agg_accept;
		c->ops.agg.finish = agg_finish;
		break;
	case FM_KIND_DEFENCE:
		size = (uint32_t)sizeof c->ops.def;
		c->ops.def.apply = def_apply;
		break;
	case FM_KIND_ATTACK:
		size = (uint32_t)sizeof c->ops.atk;
		c->ops.atk.poison_data = c->ops1.atk.t_poison_data != NULL ?
		    atk_poison_data : NULL;
		c->ops.atk.poison_updates =
		    c->ops1.atk.t_poison_updates != NULL ? atk_poison_updates :
		    NULL;
		break;
	default:
		size = (uint32_t)sizeof c->ops.cons;
		c->ops.cons.outgoing = c->ops1.cons.c_outgoing != NULL ?
		    cons_outgoing : NULL;
		c->ops.cons.mix = cons_mix;
		break;
	}
	base.struct_size = size;
	c->ops.base = base;
	c->magic = ABI1_MAGIC;
	*d = (fm_component_desc) { (uint32_t)sizeof *d, c->kind, cd->name,
		cd->description, cd->params, (uint32_t)sizeof(fm_param_desc), 0,
		&c->ops, size, 0 };
}

void
fmi_abi1_free(fmi_abi1 *a)
{
	if (a == NULL) {
		return;
	}
	free(a->comps);
	free(a->descs);
	free(a);
}

typedef int (*abi1_init_fn)(fm_registrar *r, const fm_host_api *host);

/* Runs fm_plugin_init with ld as the registrar; every declared component
 * must come out registered. */
static int
run_init(abi1_load *ld, void *init, fm_error *e)
{
	abi1_init_fn fn;
	memcpy(&fn, &init, sizeof fn); /* POSIX: dlsym yields functions */
	abi1_load *prev = abi1_active;
	abi1_active = ld;
	int rv = fn((fm_registrar *)(void *)ld, &ld->a->host);
	abi1_active = prev;
	if (ld->rv != FM_OK) {
		return ld_fail(ld, e, ld->rv, "%s", ld->why);
	}
	if (rv != FM_OK) {
		return ld_fail(ld, e, FM_EPLUGIN, FM_PLUGIN_INIT_SYMBOL
		    " failed: %s (%d)", fm_strerror(rv), rv);
	}
	for (uint32_t i = 0; i < ld->info->ncomponents; i++) {
		if (!ld->a->comps[i].registered) {
			const fm1_component_desc *c = &ld->info->components[i];
			return ld_fail(ld, e, FM_EPLUGIN, "declares %s '%s' but "
			    FM_PLUGIN_INIT_SYMBOL " did not register it",
			    kind1_name(c->kind), c->name);
		}
	}
	return FM_OK;
}

int
fmi_abi1_load(const void *descriptor, void *init, const char *path,
    fmi_abi1 **out, const fm_component_desc **descs, size_t *n,
    fm_error *err)
{
	abi1_load ld = { .info = descriptor,
		.path = path != NULL ? path : "(no path)" };
	if (out != NULL) {
		*out = NULL;
	}
	if (descs != NULL) {
		*descs = NULL;
	}
	if (n != NULL) {
		*n = 0;
	}
	if (descriptor == NULL || out == NULL || descs == NULL || n == NULL) {
		return ld_fail(&ld, err, FM_EINVAL, "no descriptor or nowhere "
		    "to put the components");
	}
	int rv = check_info(&ld, err);
	if (rv != FM_OK) {
		return rv;
	}
	if (init == NULL) {
		return ld_fail(&ld, err, FM_EPLUGIN, "no entry point "
		    FM_PLUGIN_INIT_SYMBOL);
	}
	uint32_t nc = ld.info->ncomponents;
	fmi_abi1 *a = calloc(1, sizeof *a);
	if (a != NULL) {
		a->n = nc;
		a->comps = calloc(nc, sizeof *a->comps);
		a->descs = calloc(nc, sizeof *a->descs);
	}
	if (a == NULL || a->comps == NULL || a->descs == NULL) {
		fmi_abi1_free(a);
		return ld_fail(&ld, err, FM_ENOMEM, "out of memory");
	}
	host1_make(&a->host, fmi_host_api());
	ld.a = a;
	rv = run_init(&ld, init, err);
	if (rv != FM_OK) {
		fmi_abi1_free(a);
		return rv;
	}
	for (uint32_t i = 0; i < nc; i++) {
		build_comp(&a->comps[i], &a->descs[i],
		    &ld.info->components[i]);
	}
	*out = a;
	*descs = a->descs;
	*n = nc;
	return FM_OK;
}
