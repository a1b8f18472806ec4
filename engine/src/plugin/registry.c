/* SPDX-License-Identifier: MIT */
/* registry.c: the plugin loader (dlopen + checks), the registry, parameters. */
#define _GNU_SOURCE /* dladdr1: the ELF size of the descriptor symbol */
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if defined(__GLIBC__)
#include <link.h>
#endif

#include "core/core.h"
#include "plugin/plugin_int.h"

#define FMI_MAX_COMPONENTS 64 /* per plugin file */
#define FMI_MAX_PATH_DIRS 32  /* distinct directories load_defaults visits */

/* The frozen descriptor prefix: magic, abi_major, abi_minor, info_size. */
#define FMI_INFO_PREFIX (offsetof(fm_plugin_info, info_size) + sizeof(uint32_t))

/* ---- private types ------------------------------------------------------ */

/* What the host knows about each kind: its name and the 1.0 size of its ops
 * table (0: this ABI defines no ops for it, so it cannot be loaded yet). */
typedef struct reg_kind {
	const char *name;
	size_t ops_min;
} reg_kind;

static const reg_kind reg_kinds[] = {
	{ "unknown", 0 },
	{ "aggregator", FMI_AGG_OPS_SIZE_1_0 },
	{ "defence", FMI_DEF_OPS_SIZE_1_1 },
	{ "privacy", 0 },
	{ "consensus", FMI_CONS_OPS_SIZE_1_1 },
	{ "compressor", 0 },
	{ "attack", FMI_ATK_OPS_SIZE_1_1 },
};

/* The prefix every ops table starts with (plugin.h: size, kind, name,
 * state size). Read with memcpy, never through a cast. */
typedef struct reg_ops_head {
	uint32_t size;
	uint32_t kind;
	const char *name;
	size_t state_size;
} reg_ops_head;

_Static_assert(offsetof(fm_aggregator_ops, a_kind) ==
    offsetof(reg_ops_head, kind), "ops head: kind");
_Static_assert(offsetof(fm_aggregator_ops, a_name) ==
    offsetof(reg_ops_head, name), "ops head: name");
_Static_assert(offsetof(fm_aggregator_ops, a_state_size) ==
    offsetof(reg_ops_head, state_size), "ops head: state size");
_Static_assert(offsetof(fm_attack_ops, t_kind) ==
    offsetof(reg_ops_head, kind), "attack head: kind");
_Static_assert(offsetof(fm_attack_ops, t_name) ==
    offsetof(reg_ops_head, name), "attack head: name");
_Static_assert(offsetof(fm_attack_ops, t_state_size) ==
    offsetof(reg_ops_head, state_size), "attack head: state size");
_Static_assert(offsetof(fm_defence_ops, d_kind) ==
    offsetof(reg_ops_head, kind), "defence head: kind");
_Static_assert(offsetof(fm_defence_ops, d_name) ==
    offsetof(reg_ops_head, name), "defence head: name");
_Static_assert(offsetof(fm_defence_ops, d_state_size) ==
    offsetof(reg_ops_head, state_size), "defence head: state size");
_Static_assert(offsetof(fm_consensus_ops, c_kind) ==
    offsetof(reg_ops_head, kind), "consensus head: kind");
_Static_assert(offsetof(fm_consensus_ops, c_name) ==
    offsetof(reg_ops_head, name), "consensus head: name");
_Static_assert(offsetof(fm_consensus_ops, c_state_size) ==
    offsetof(reg_ops_head, state_size), "consensus head: state size");

/* A registered component with a host-sized copy of its ops table: fields
 * the plugin did not know (older minor) read as NULL/0. */
typedef struct reg_comp {
	fmi_component c; /* first: handed out as const fmi_component * */
	union {
		fm_aggregator_ops agg;
		fm_consensus_ops cons;
		fm_defence_ops def;
		fm_attack_ops atk;
	} ops;
} reg_comp;

typedef struct reg_plugin {
	void *dl;
	char *path; /* shared by the plugin's components */
} reg_plugin;

struct fmi_registry {
	reg_comp **comps;
	size_t ncomps, capc;
	reg_plugin *plugins;
	size_t nplugins, capp;
};

/* Collects the ops tables one fm_plugin_init call registers. */
struct fm_registrar {
	const fm_plugin_info *info;
	reg_comp **pending; /* [ncomponents]; NULL until registered */
	int rv;             /* first refusal, with its log id and reason */
	const char *id;
	char why[400];
};

/* The registrar of the fm_plugin_init running on this thread: a plugin
 * that registers outside its init is refused without being trusted. */
static _Thread_local fm_registrar *reg_active;

/* One load attempt. */
typedef struct reg_load {
	fmi_registry *reg;
	const char *path;
	void *dl;
	const fm_plugin_info *info;
	size_t symsize; /* ELF size of the descriptor, 0 if unknown */
	const char *id; /* log id of the failure */
	fm_registrar rr;
} reg_load;

/* ---- small helpers ------------------------------------------------------ */

static int
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* Component names: 1..63 of [A-Za-z0-9_.-]. */
static int
valid_name(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n > FMI_PLUGIN_MAX_NAME) {
		return 0;
	}
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_.-") == n;
}

/* Parameter names: snake_case, 1..63 characters. */
static int
snake_name(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n > FMI_PLUGIN_MAX_NAME || s[0] < 'a' || s[0] > 'z') {
		return 0;
	}
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

const char *
fmi_kind_name(uint32_t kind)
{
	return kind < FMI_ARRAY_LEN(reg_kinds) ? reg_kinds[kind].name :
						 "unknown";
}

uint32_t
fmi_kind_from_name(const char *name)
{
	for (uint32_t k = 1; name != NULL && k < FMI_ARRAY_LEN(reg_kinds);
	     k++) {
		if (strcmp(reg_kinds[k].name, name) == 0) {
			return k;
		}
	}
	return 0;
}

/* Appends to buf[size] at *at, never past the end. */
static void FM_PRINTF(4, 5)
sappend(char *buf, size_t size, size_t *at, const char *fmt, ...)
{
	va_list ap;
	if (*at + 1 >= size) {
		return;
	}
	va_start(ap, fmt);
	int n = vsnprintf(buf + *at, size - *at, fmt, ap);
	va_end(ap);
	if (n > 0) {
		*at = FMI_MIN(*at + (size_t)n, size - 1);
	}
}

/* ---- the load steps ----------------------------------------------------- */

/* Records a refusal: err names the file and the reason. */
static int FM_PRINTF(5, 6)
ld_fail(reg_load *ld, fm_error *e, const char *id, int code, const char *fmt,
    ...)
{
	char why[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	ld->id = id;
	return fm_error_set(e, code, "plugin %s: %s", ld->path, why);
}

static int
ld_open(reg_load *ld, fm_error *e)
{
	struct stat st;
	if (ld->path[0] == '\0') {
		return ld_fail(ld, e, "FM-PLUGIN-OPEN", FM_EINVAL, "empty path");
	}
	if (strchr(ld->path, '/') == NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-OPEN", FM_EINVAL, "not a path "
		    "(fedmesh never searches for plugins; write ./%s for a "
		    "file in the working directory)", ld->path);
	}
	if (stat(ld->path, &st) != 0) {
		return ld_fail(ld, e, "FM-PLUGIN-OPEN", FM_ENOENT,
		    "no such file");
	}
	if (!S_ISREG(st.st_mode)) {
		return ld_fail(ld, e, "FM-PLUGIN-OPEN", FM_EPLUGIN,
		    "not a regular file");
	}
	dlerror();
	ld->dl = dlopen(ld->path, RTLD_NOW | RTLD_LOCAL);
	if (ld->dl == NULL) {
		const char *d = dlerror();
		return ld_fail(ld, e, "FM-PLUGIN-OPEN", FM_EPLUGIN, "cannot be "
		    "loaded: %s", d != NULL ? d : "dlopen failed");
	}
	return FM_OK;
}

/* The ELF size of a data symbol, or 0 when the platform cannot tell. */
static size_t
sym_size(const void *sym)
{
#if defined(__GLIBC__)
	Dl_info info;
	const ElfW(Sym) *es = NULL;
	if (dladdr1(sym, &info, (void **)&es, RTLD_DL_SYMENT) != 0 &&
	    es != NULL) {
		return (size_t)es->st_size;
	}
#else
	(void)sym;
#endif
	return 0;
}

static int
ld_descriptor(reg_load *ld, fm_error *e)
{
	dlerror();
	void *sym = dlsym(ld->dl, FM_PLUGIN_DESCRIPTOR_SYMBOL);
	if (sym == NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-ENTRY", FM_EPLUGIN, "not a "
		    "fedmesh plugin (no " FM_PLUGIN_DESCRIPTOR_SYMBOL
		    " symbol)");
	}
	ld->info = sym;
	ld->symsize = sym_size(sym);
	return FM_OK;
}

/* Magic, ABI major, descriptor size, build signature: in this order, each
 * read only once the previous ones say the next field exists. */
static int
ld_check_abi(reg_load *ld, fm_error *e)
{
	const fm_plugin_info *in = ld->info;
	if (ld->symsize != 0 && ld->symsize < FMI_INFO_PREFIX) {
		return ld_fail(ld, e, "FM-PLUGIN-ABI", FM_EPLUGIN, "not a "
		    "fedmesh plugin (descriptor is only %zu bytes)", ld->symsize);
	}
	if (in->magic != FM_PLUGIN_MAGIC) {
		return ld_fail(ld, e, "FM-PLUGIN-ABI", FM_EPLUGIN, "not a "
		    "fedmesh plugin (descriptor magic 0x%08x, want 0x%08x)",
		    in->magic, FM_PLUGIN_MAGIC);
	}
	if (in->abi_major != FM_PLUGIN_ABI_MAJOR) {
		return ld_fail(ld, e, "FM-PLUGIN-ABI", FM_EVERSION, "built for "
		    "plugin ABI %u.%u, but fedmesh %s speaks plugin ABI %d.%d; "
		    "rebuild the plugin against fedmesh %s", in->abi_major,
		    in->abi_minor, FM_VERSION_STRING, FM_PLUGIN_ABI_MAJOR,
		    FM_PLUGIN_ABI_MINOR, FM_VERSION_STRING);
	}
	if (in->info_size < FMI_PLUGIN_INFO_SIZE_1_0) {
		return ld_fail(ld, e, "FM-PLUGIN-ABI", FM_EVERSION, "descriptor "
		    "size %u is smaller than the ABI %d.0 descriptor (%zu "
		    "bytes); rebuild the plugin against fedmesh %s",
		    in->info_size, FM_PLUGIN_ABI_MAJOR,
		    (size_t)FMI_PLUGIN_INFO_SIZE_1_0, FM_VERSION_STRING);
	}
	if (ld->symsize != 0 && in->info_size > ld->symsize) {
		return ld_fail(ld, e, "FM-PLUGIN-ABI", FM_EPLUGIN, "descriptor "
		    "claims %u bytes but the symbol has %zu", in->info_size,
		    ld->symsize);
	}
	if (in->build_sig != FM_PLUGIN_BUILD_SIG) {
		return ld_fail(ld, e, "FM-PLUGIN-ABI", FM_EPLUGIN, "build "
		    "signature 0x%08x does not match this host's 0x%08x (sizes "
		    "of pointers, size_t, float or double differ); rebuild the "
		    "plugin for this platform", in->build_sig,
		    (unsigned)FM_PLUGIN_BUILD_SIG);
	}
	return FM_OK;
}

/* Why a parameter declaration is wrong (into why), or 0 if it is fine. */
static int
param_desc_bad(const fm_param_desc *p, const fm_param_desc *prev, size_t n,
    char *why, size_t size)
{
	int numeric = p->type == FM_PARAM_INT || p->type == FM_PARAM_REAL;
	if (!snake_name(p->name)) {
		snprintf(why, size, "name is not snake_case (1..63 of [a-z0-9_])");
	} else if (p->type < FM_PARAM_INT || p->type > FM_PARAM_STRING) {
		snprintf(why, size, "unknown type %d", (int)p->type);
	} else if (numeric && !(p->min <= p->def && p->def <= p->max)) {
		snprintf(why, size, "default %g is not in [%g, %g]", p->def,
		    p->min, p->max);
	} else if (p->type == FM_PARAM_INT && p->def != floor(p->def)) {
		snprintf(why, size, "integer default %g", p->def);
	} else if (p->type == FM_PARAM_BOOL && p->def != 0 && p->def != 1) {
		snprintf(why, size, "boolean default %g is not 0 or 1", p->def);
	} else {
		for (size_t j = 0; j < n; j++) {
			if (strcmp(prev[j].name, p->name) == 0) {
				snprintf(why, size, "declared twice");
				return 1;
			}
		}
		return 0;
	}
	return 1;
}

static int
ld_check_params(reg_load *ld, const fm_component_desc *c, fm_error *e)
{
	const fm_param_desc *p = c->params;
	char why[160];
	for (size_t n = 0; p != NULL && p[n].name != NULL; n++) {
		if (n == FMI_MAX_PARAMS) {
			return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN,
			    "component '%s' declares more than %d parameters "
			    "(is the array ended by { NULL }?)", c->name,
			    FMI_MAX_PARAMS);
		}
		if (param_desc_bad(&p[n], p, n, why, sizeof why)) {
			return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN,
			    "component '%s', parameter '%s': %s", c->name,
			    p[n].name, why);
		}
	}
	return FM_OK;
}

static const fmi_component *
reg_find_comp(const fmi_registry *r, uint32_t kind, const char *name)
{
	for (size_t i = 0; i < r->ncomps; i++) {
		const fmi_component *c = &r->comps[i]->c;
		if ((kind == 0 || c->kind == kind) &&
		    strcmp(c->desc->name, name) == 0) {
			return c;
		}
	}
	return NULL;
}

static int
ld_check_comp(reg_load *ld, uint32_t i, fm_error *e)
{
	const fm_component_desc *c = &ld->info->components[i];
	if (c->kind == 0 || c->kind >= FMI_ARRAY_LEN(reg_kinds)) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN, "component "
		    "%u has unknown kind %u", i, c->kind);
	}
	if (!valid_name(c->name) || !nonempty(c->description)) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN, "component "
		    "%u needs a name (1..%d of [A-Za-z0-9_.-]) and a "
		    "description", i, FMI_PLUGIN_MAX_NAME);
	}
	if (reg_kinds[c->kind].ops_min == 0) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN, "component "
		    "'%s' is a %s, which plugin ABI %d.%d cannot run yet",
		    c->name, reg_kinds[c->kind].name, FM_PLUGIN_ABI_MAJOR,
		    FM_PLUGIN_ABI_MINOR);
	}
	for (uint32_t j = 0; j < i; j++) {
		const fm_component_desc *o = &ld->info->components[j];
		if (o->kind == c->kind && strcmp(o->name, c->name) == 0) {
			return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN,
			    "declares %s '%s' twice", fmi_kind_name(c->kind),
			    c->name);
		}
	}
	return ld_check_params(ld, c, e);
}

/* Names already in the registry: refused before any plugin code runs. */
static int
ld_check_dups(reg_load *ld, fm_error *e)
{
	for (uint32_t i = 0; i < ld->info->ncomponents; i++) {
		const fm_component_desc *c = &ld->info->components[i];
		const fmi_component *o = reg_find_comp(ld->reg, c->kind,
		    c->name);
		if (o != NULL) {
			return ld_fail(ld, e, "FM-PLUGIN-DUP", FM_EEXIST, "%s "
			    "'%s' is already provided by %s (the first one "
			    "loaded wins)", fmi_kind_name(c->kind), c->name,
			    o->path);
		}
	}
	return FM_OK;
}

static int
ld_check_desc(reg_load *ld, fm_error *e)
{
	const fm_plugin_info *in = ld->info;
	if (!nonempty(in->name) || !nonempty(in->version) ||
	    !nonempty(in->description)) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN, "the "
		    "descriptor needs a name, a version and a description");
	}
	if (in->components == NULL || in->ncomponents == 0 ||
	    in->ncomponents > FMI_MAX_COMPONENTS) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN, "declares "
		    "%u components (want 1..%d)", in->ncomponents,
		    FMI_MAX_COMPONENTS);
	}
	for (uint32_t i = 0; i < in->ncomponents; i++) {
		int rv = ld_check_comp(ld, i, e);
		if (rv != FM_OK) {
			return rv;
		}
	}
	return ld_check_dups(ld, e);
}

/* ---- registration (host->register_component) ---------------------------- */

static int FM_PRINTF(4, 5)
rr_fail(fm_registrar *r, const char *id, int code, const char *fmt, ...)
{
	if (r->rv == FM_OK) { /* the first refusal is the one reported */
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->why, sizeof r->why, fmt, ap);
		va_end(ap);
		r->rv = code;
		r->id = id;
	}
	return code;
}

/* Index of the declared component the ops table is for. */
static int
rr_declared(fm_registrar *r, const reg_ops_head *h, uint32_t *idx)
{
	const fm_plugin_info *in = r->info;
	for (uint32_t i = 0; i < in->ncomponents; i++) {
		if (strcmp(in->components[i].name, h->name) != 0) {
			continue;
		}
		if (in->components[i].kind == h->kind) {
			*idx = i;
			return FM_OK;
		}
		return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "'%s' is "
		    "declared as %s but its ops have kind %s", h->name,
		    fmi_kind_name(in->components[i].kind),
		    fmi_kind_name(h->kind));
	}
	return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "registers %s '%s', "
	    "which the descriptor does not declare", fmi_kind_name(h->kind),
	    h->name);
}

/* Size, kind and name of an ops table, read without trusting it. */
static int
rr_check_head(fm_registrar *r, const void *ops, size_t size, reg_ops_head *h)
{
	if (ops == NULL || size < sizeof *h) {
		return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "ops table %s "
		    "(%zu bytes)", ops == NULL ? "is NULL" : "too small", size);
	}
	memcpy(h, ops, sizeof *h);
	if (h->size != size) {
		return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "ops struct size "
		    "%u does not match the %zu bytes passed to "
		    "register_component", h->size, size);
	}
	if (h->kind == 0 || h->kind >= FMI_ARRAY_LEN(reg_kinds)) {
		return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "ops of unknown "
		    "kind %u", h->kind);
	}
	if (!nonempty(h->name)) {
		return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "ops without a "
		    "name");
	}
	return FM_OK;
}

/* After rr_declared: the kind is one this host runs. */
static int
rr_check_size(fm_registrar *r, const reg_ops_head *h, size_t size)
{
	if (size < reg_kinds[h->kind].ops_min) {
		return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "%s ops for '%s' "
		    "are %zu bytes; plugin ABI %d.0 needs at least %zu",
		    fmi_kind_name(h->kind), h->name, size, FM_PLUGIN_ABI_MAJOR,
		    reg_kinds[h->kind].ops_min);
	}
	return FM_OK;
}

/* Copies the ops into a host-sized table and checks the required calls. */
static int
rr_copy_agg(fm_registrar *r, reg_comp *rc, const void *ops, size_t size)
{
	fm_aggregator_ops *a = &rc->ops.agg;
	const char *missing = NULL;
	memcpy(a, ops, FMI_MIN(size, sizeof *a)); /* keeps a_struct_size */
	if (a->a_init == NULL) {
		missing = "a_init";
	} else if (a->a_fini == NULL) {
		missing = "a_fini";
	} else if (a->a_begin == NULL) {
		missing = "a_begin";
	} else if (a->a_accept == NULL) {
		missing = "a_accept";
	} else if (a->a_finish == NULL) {
		missing = "a_finish";
	}
	if (missing != NULL) {
		return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "aggregator '%s' "
		    "has no %s (required)", a->a_name, missing);
	}
	rc->c.ops = a;
	return FM_OK;
}

static int
rr_copy_atk(fm_registrar *r, reg_comp *rc, const void *ops, size_t size)
{
	fm_attack_ops *t = &rc->ops.atk;
	memcpy(t, ops, FMI_MIN(size, sizeof *t));
	if (t->t_init == NULL || t->t_fini == NULL) {
		return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "attack '%s' has "
		    "no %s (required)", t->t_name,
		    t->t_init == NULL ? "t_init" : "t_fini");
	}
	if (t->t_poison_data == NULL && t->t_poison_updates == NULL) {
		return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "attack '%s' has "
		    "neither t_poison_data nor t_poison_updates", t->t_name);
	}
	rc->c.ops = t;
	return FM_OK;
}

static int
rr_copy_def(fm_registrar *r, reg_comp *rc, const void *ops, size_t size)
{
	fm_defence_ops *d = &rc->ops.def;
	const char *missing = NULL;
	memcpy(d, ops, FMI_MIN(size, sizeof *d));
	if (d->d_init == NULL) {
		missing = "d_init";
	} else if (d->d_fini == NULL) {
		missing = "d_fini";
	} else if (d->d_apply == NULL) {
		missing = "d_apply";
	}
	if (missing != NULL) {
		return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "defence '%s' "
		    "has no %s (required)", d->d_name, missing);
	}
	rc->c.ops = d;
	return FM_OK;
}

static int
rr_copy_cons(fm_registrar *r, reg_comp *rc, const void *ops, size_t size)
{
	fm_consensus_ops *c = &rc->ops.cons;
	const char *missing = NULL;
	memcpy(c, ops, FMI_MIN(size, sizeof *c));
	if (c->c_init == NULL) {
		missing = "c_init";
	} else if (c->c_fini == NULL) {
		missing = "c_fini";
	} else if (c->c_mix == NULL) {
		missing = "c_mix";
	}
	if (missing != NULL) {
		return rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "consensus '%s' "
		    "has no %s (required)", c->c_name, missing);
	}
	rc->c.ops = c;
	return FM_OK;
}

int
fmi_registrar_register(fm_registrar *r, const void *ops, size_t ops_size)
{
	reg_ops_head h;
	uint32_t idx = 0;
	if (r == NULL || r != reg_active) {
		fm_log(FM_LOG_ERR, "FM-PLUGIN-OPS", "register_component called "
		    "outside fm_plugin_init; refused");
		return FM_ESTATE;
	}
	int rv = rr_check_head(r, ops, ops_size, &h);
	if (rv == FM_OK) {
		rv = rr_declared(r, &h, &idx);
	}
	if (rv == FM_OK) {
		rv = rr_check_size(r, &h, ops_size);
	}
	if (rv == FM_OK && r->pending[idx] != NULL) {
		rv = rr_fail(r, "FM-PLUGIN-OPS", FM_EPLUGIN, "registers %s "
		    "'%s' twice", fmi_kind_name(h.kind), h.name);
	}
	reg_comp *rc = rv == FM_OK ? calloc(1, sizeof *rc) : NULL;
	if (rv == FM_OK && rc == NULL) {
		rv = rr_fail(r, "FM-PLUGIN-OPS", FM_ENOMEM, "out of memory");
	}
	if (rv == FM_OK) {
		rv = h.kind == FM_KIND_CONSENSUS ?
		    rr_copy_cons(r, rc, ops, ops_size) :
		    h.kind == FM_KIND_DEFENCE ?
		    rr_copy_def(r, rc, ops, ops_size) :
		    h.kind == FM_KIND_ATTACK ?
		    rr_copy_atk(r, rc, ops, ops_size) :
		    rr_copy_agg(r, rc, ops, ops_size);
	}
	if (rv != FM_OK) {
		free(rc);
		return rv;
	}
	rc->c.kind = h.kind;
	rc->c.desc = &r->info->components[idx];
	rc->c.plugin = r->info;
	r->pending[idx] = rc;
	return FM_OK;
}

/* ---- init and commit ---------------------------------------------------- */

typedef int (*reg_init_fn)(fm_registrar *, const fm_host_api *);

static int
ld_run_init(reg_load *ld, reg_init_fn init, fm_error *e)
{
	fm_registrar *prev = reg_active;
	reg_active = &ld->rr;
	int rv = init(&ld->rr, fmi_host_api());
	reg_active = prev;
	if (ld->rr.rv != FM_OK) {
		return ld_fail(ld, e, ld->rr.id, ld->rr.rv, "%s", ld->rr.why);
	}
	if (rv != FM_OK) {
		return ld_fail(ld, e, "FM-PLUGIN-INIT", FM_EPLUGIN,
		    FM_PLUGIN_INIT_SYMBOL " failed: %s (%d)", fm_strerror(rv),
		    rv);
	}
	for (uint32_t i = 0; i < ld->info->ncomponents; i++) {
		if (ld->rr.pending[i] == NULL) {
			const fm_component_desc *c = &ld->info->components[i];
			return ld_fail(ld, e, "FM-PLUGIN-OPS", FM_EPLUGIN,
			    "declares %s '%s' but " FM_PLUGIN_INIT_SYMBOL
			    " did not register it", fmi_kind_name(c->kind),
			    c->name);
		}
	}
	return FM_OK;
}

static int
ld_init(reg_load *ld, fm_error *e)
{
	reg_init_fn init;
	dlerror();
	void *sym = dlsym(ld->dl, FM_PLUGIN_INIT_SYMBOL);
	if (sym == NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-ENTRY", FM_EPLUGIN, "no entry "
		    "point " FM_PLUGIN_INIT_SYMBOL);
	}
	memcpy(&init, &sym, sizeof init); /* POSIX: dlsym yields functions */
	ld->rr.info = ld->info;
	ld->rr.pending = calloc(ld->info->ncomponents, sizeof *ld->rr.pending);
	if (ld->rr.pending == NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-INIT", FM_ENOMEM,
		    "out of memory");
	}
	return ld_run_init(ld, init, e);
}

static int
reg_reserve(fmi_registry *r, size_t ncomps)
{
	if (ncomps > r->capc) {
		size_t cap = FMI_MAX(ncomps, 2 * r->capc);
		reg_comp **c = realloc(r->comps, cap * sizeof *c);
		if (c == NULL) {
			return FM_ENOMEM;
		}
		r->comps = c;
		r->capc = cap;
	}
	if (r->nplugins + 1 > r->capp) {
		size_t cap = FMI_MAX(8, 2 * r->capp);
		reg_plugin *p = realloc(r->plugins, cap * sizeof *p);
		if (p == NULL) {
			return FM_ENOMEM;
		}
		r->plugins = p;
		r->capp = cap;
	}
	return FM_OK;
}

static int
ld_commit(reg_load *ld, fm_error *e)
{
	fmi_registry *r = ld->reg;
	uint32_t n = ld->info->ncomponents;
	char *path = NULL;
	if (reg_reserve(r, r->ncomps + n) != FM_OK ||
	    (path = strdup(ld->path)) == NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-INIT", FM_ENOMEM,
		    "out of memory");
	}
	for (uint32_t i = 0; i < n; i++) {
		ld->rr.pending[i]->c.path = path;
		r->comps[r->ncomps++] = ld->rr.pending[i];
		ld->rr.pending[i] = NULL;
	}
	r->plugins[r->nplugins++] = (reg_plugin) { ld->dl, path };
	ld->dl = NULL; /* owned by the registry now */
	return FM_OK;
}

static int
ld_run(reg_load *ld, fm_error *e)
{
	int rv = ld_open(ld, e);
	if (rv == FM_OK) {
		rv = ld_descriptor(ld, e);
	}
	if (rv == FM_OK) {
		rv = ld_check_abi(ld, e);
	}
	if (rv == FM_OK) {
		rv = ld_check_desc(ld, e);
	}
	if (rv == FM_OK) {
		rv = ld_init(ld, e);
	}
	if (rv == FM_OK) {
		rv = ld_commit(ld, e);
	}
	return rv;
}

/* Rolls back whatever a failed load registered, then unloads the file. */
static void
ld_cleanup(reg_load *ld)
{
	if (ld->rr.pending != NULL) {
		for (uint32_t i = 0; i < ld->info->ncomponents; i++) {
			free(ld->rr.pending[i]);
		}
		free(ld->rr.pending);
	}
	if (ld->dl != NULL) {
		dlclose(ld->dl);
	}
}

/* ---- the registry ------------------------------------------------------- */

int
fmi_registry_new(fmi_registry **out)
{
	fmi_registry *r = calloc(1, sizeof *r);
	if (r == NULL) {
		return FM_ENOMEM;
	}
	*out = r;
	return FM_OK;
}

void
fmi_registry_free(fmi_registry *r)
{
	if (r == NULL) {
		return;
	}
	for (size_t i = 0; i < r->ncomps; i++) {
		free(r->comps[i]);
	}
	for (size_t i = r->nplugins; i-- > 0;) {
		dlclose(r->plugins[i].dl);
		free(r->plugins[i].path);
	}
	free(r->comps);
	free(r->plugins);
	free(r);
}

int
fmi_registry_load_file(fmi_registry *r, const char *path, fm_error *err)
{
	reg_load ld = { .reg = r, .path = path != NULL ? path : "" };
	fm_error e;
	int rv;
	if (r == NULL) {
		rv = ld_fail(&ld, &e, "FM-PLUGIN-OPEN", FM_EINVAL,
		    "no registry");
	} else {
		rv = ld_run(&ld, &e);
	}
	ld_cleanup(&ld);
	if (rv != FM_OK) {
		fm_log(FM_LOG_WARN, ld.id, "%s", e.msg);
		if (err != NULL) {
			*err = e;
		}
		return rv;
	}
	fm_log(FM_LOG_DEBUG, "FM-PLUGIN-LOAD", "loaded %s %s from %s",
	    ld.info->name, ld.info->version, ld.path);
	return FM_OK;
}

const fmi_component *
fmi_registry_find(const fmi_registry *r, uint32_t kind, const char *name)
{
	if (r == NULL || name == NULL) {
		return NULL;
	}
	return reg_find_comp(r, kind, name);
}

size_t
fmi_registry_count(const fmi_registry *r)
{
	return r != NULL ? r->ncomps : 0;
}

const fmi_component *
fmi_registry_at(const fmi_registry *r, size_t i)
{
	return r != NULL && i < r->ncomps ? &r->comps[i]->c : NULL;
}

/* ---- directories -------------------------------------------------------- */

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
is_so_name(const char *s)
{
	size_t n = strlen(s);
	return s[0] != '.' && n > 3 && strcmp(s + n - 3, ".so") == 0;
}

static void
free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
	}
	free(names);
}

/* The *.so names in dir, sorted. */
static int
list_so(const char *dir, char ***out, size_t *nout, fm_error *err)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	if (d == NULL) {
		return fm_error_set(err, FM_ENOENT, "plugin directory %s: cannot "
		    "be opened", dir);
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_so_name(de->d_name)) {
			continue;
		}
		char **nn = names;
		if (n == cap) {
			cap = FMI_MAX(16, 2 * cap);
			nn = realloc(names, cap * sizeof *nn);
		}
		if (nn == NULL || (nn[n] = strdup(de->d_name)) == NULL) {
			closedir(d);
			free_names(nn != NULL ? nn : names, n);
			return fm_error_set(err, FM_ENOMEM, "out of memory");
		}
		names = nn;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_names);
	*out = names;
	*nout = n;
	return FM_OK;
}

static int
load_one(fmi_registry *r, const char *dir, const char *name)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);
	const char *sep = len > 0 && dir[len - 1] == '/' ? "" : "/";
	if (snprintf(path, sizeof path, "%s%s%s", dir, sep, name) >=
	    (int)sizeof path) {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-OPEN", "plugin %s/%s: path too "
		    "long, skipped", dir, name);
		return FM_ERANGE;
	}
	return fmi_registry_load_file(r, path, NULL);
}

int
fmi_registry_load_dir(fmi_registry *r, const char *dir, size_t *nloaded,
    fm_error *err)
{
	char **names = NULL;
	size_t n = 0, good = 0;
	if (nloaded != NULL) {
		*nloaded = 0;
	}
	if (r == NULL || dir == NULL || dir[0] == '\0') {
		return fm_error_set(err, FM_EINVAL, "plugin directory: no "
		    "directory given");
	}
	int rv = list_so(dir, &names, &n, err);
	if (rv != FM_OK) {
		return rv;
	}
	for (size_t i = 0; i < n; i++) {
		good += load_one(r, dir, names[i]) == FM_OK;
	}
	free_names(names, n);
	if (nloaded != NULL) {
		*nloaded = good;
	}
	return FM_OK;
}

/* Directories already visited by one load_defaults call (by realpath). */
typedef struct reg_seen {
	char dirs[FMI_MAX_PATH_DIRS][PATH_MAX];
	int n;
} reg_seen;

/* Loads dir unless it was seen; a missing dir is skipped (logged when the
 * user named it). */
static int
load_default_dir(fmi_registry *r, const char *dir, reg_seen *seen,
    int user)
{
	char real[PATH_MAX];
	fm_error e;
	if (realpath(dir, real) == NULL) {
		if (user) {
			fm_log(FM_LOG_WARN, "FM-PLUGIN-PATH", "plugin directory "
			    "%s (FEDMESH_PLUGIN_PATH) not found, skipped", dir);
		}
		return FM_OK;
	}
	for (int i = 0; i < seen->n; i++) {
		if (strcmp(seen->dirs[i], real) == 0) {
			return FM_OK;
		}
	}
	if (seen->n < FMI_MAX_PATH_DIRS) {
		memcpy(seen->dirs[seen->n++], real, sizeof real);
	}
	int rv = fmi_registry_load_dir(r, real, NULL, &e);
	if (rv == FM_ENOMEM) {
		return rv;
	}
	if (rv != FM_OK && user) {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-PATH", "%s, skipped", e.msg);
	}
	return FM_OK;
}

/* Each absolute entry of a ':'-separated list. Empty and relative entries
 * are ignored: the working directory is never searched. */
static int
load_path_list(fmi_registry *r, const char *list, reg_seen *seen)
{
	char dir[PATH_MAX];
	while (*list != '\0') {
		size_t n = strcspn(list, ":");
		if (n > 0 && n < sizeof dir && list[0] == '/') {
			memcpy(dir, list, n);
			dir[n] = '\0';
			if (load_default_dir(r, dir, seen, 1) == FM_ENOMEM) {
				return FM_ENOMEM;
			}
		} else if (n > 0) {
			fm_log(FM_LOG_WARN, "FM-PLUGIN-PATH", "FEDMESH_PLUGIN_PATH "
			    "entry '%.*s' is not an absolute directory, ignored",
			    (int)FMI_MIN(n, 200), list);
		}
		list += n;
		list += *list == ':';
	}
	return FM_OK;
}

int
fmi_registry_load_defaults(fmi_registry *r, fm_error *err)
{
	const char *builtin = fmi_builtin_plugin_dir();
	const char *env = getenv("FEDMESH_PLUGIN_PATH");
	if (r == NULL) {
		return fm_error_set(err, FM_EINVAL, "no registry");
	}
	reg_seen *seen = calloc(1, sizeof *seen);
	int rv = seen == NULL ? FM_ENOMEM : FM_OK;
	if (rv == FM_OK && builtin != NULL) {
		rv = load_default_dir(r, builtin, seen, 0);
	}
	if (rv == FM_OK && env != NULL) {
		rv = load_path_list(r, env, seen);
	}
	free(seen);
	if (rv != FM_OK) {
		return fm_error_set(err, rv, "loading plugins: out of memory");
	}
	return FM_OK;
}

/* ---- parameters --------------------------------------------------------- */

size_t
fmi_component_nparams(const fmi_component *c)
{
	const fm_param_desc *p = c != NULL ? c->desc->params : NULL;
	size_t n = 0;
	while (p != NULL && p[n].name != NULL) {
		n++;
	}
	return n;
}

/* "lr (real in [0, 10], default 0.1), flag (bool, default false)". */
static void
params_list(const fm_param_desc *p, size_t n, char *buf, size_t size)
{
	size_t at = 0;
	buf[0] = '\0';
	if (n == 0) {
		sappend(buf, size, &at, "none");
	}
	for (size_t i = 0; i < n; i++) {
		const char *sep = i > 0 ? ", " : "";
		if (p[i].type == FM_PARAM_STRING) {
			sappend(buf, size, &at, "%s%s (string, default \"%s\")",
			    sep, p[i].name, p[i].def_str ? p[i].def_str : "");
		} else if (p[i].type == FM_PARAM_BOOL) {
			sappend(buf, size, &at, "%s%s (bool, default %s)", sep,
			    p[i].name, p[i].def != 0 ? "true" : "false");
		} else {
			sappend(buf, size, &at, "%s%s (%s in [%g, %g], default "
			    "%g)", sep, p[i].name, p[i].type == FM_PARAM_INT ?
			    "int" : "real", p[i].min, p[i].max, p[i].def);
		}
	}
}

static int FM_PRINTF(3, 4)
params_fail(const fmi_component *c, fm_error *err, const char *fmt, ...)
{
	char why[200], list[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	params_list(c->desc->params, fmi_component_nparams(c), list,
	    sizeof list);
	return fm_error_set(err, FM_EINVAL, "%s '%s': %s; valid parameters: "
	    "%s", fmi_kind_name(c->kind), c->desc->name, why, list);
}

static size_t
param_index(const fm_param_desc *p, size_t n, const char *name)
{
	size_t i = 0;
	while (i < n && strcmp(p[i].name, name) != 0) {
		i++;
	}
	return i;
}

static int
param_unknown(const fmi_component *c, size_t np, const char *name,
    fm_error *err)
{
	const char *cand[FMI_MAX_PARAMS + 1];
	for (size_t i = 0; i < np; i++) {
		cand[i] = c->desc->params[i].name;
	}
	cand[np] = NULL;
	const char *near = fmi_closest(name, cand);
	if (near != NULL) {
		return params_fail(c, err, "no parameter '%s' (did you mean "
		    "'%s'?)", name, near);
	}
	return params_fail(c, err, "no parameter '%s'", name);
}

/* Type and range of one user value against its declaration. */
static int
param_check(const fmi_component *c, const fm_param_desc *d,
    const fmi_param_in *in, fm_error *err)
{
	static const char *const tn[] = { "?", "an integer", "a real number",
		"a boolean", "a string" };
	if ((d->type == FM_PARAM_STRING) != (in->is_str != 0)) {
		return params_fail(c, err, "parameter '%s' must be %s, got %s",
		    d->name, tn[d->type], in->is_str ? "a string" : "a number");
	}
	if (d->type == FM_PARAM_STRING) {
		return in->str != NULL ? FM_OK : params_fail(c, err,
		    "parameter '%s' is a NULL string", d->name);
	}
	if (!isfinite(in->num)) {
		return params_fail(c, err, "parameter '%s' must be finite",
		    d->name);
	}
	if (d->type == FM_PARAM_INT && in->num != floor(in->num)) {
		return params_fail(c, err, "parameter '%s' must be an integer, "
		    "got %g", d->name, in->num);
	}
	if (d->type == FM_PARAM_BOOL) {
		return in->num == 0 || in->num == 1 ? FM_OK : params_fail(c,
		    err, "parameter '%s' must be a boolean (true/false or "
		    "0/1), got %g", d->name, in->num);
	}
	if (in->num < d->min || in->num > d->max) {
		return params_fail(c, err, "parameter '%s' = %g is out of range "
		    "[%g, %g]", d->name, in->num, d->min, d->max);
	}
	return FM_OK;
}

/* Checks every user value; out is untouched. */
static int
params_check_all(const fmi_component *c, size_t np, const fmi_param_in *in,
    size_t nin, fm_error *err)
{
	const fm_param_desc *d = c->desc->params;
	for (size_t i = 0; i < nin; i++) {
		if (in[i].name == NULL) {
			return params_fail(c, err, "a parameter without a name");
		}
		size_t k = param_index(d, np, in[i].name);
		if (k == np) {
			return param_unknown(c, np, in[i].name, err);
		}
		for (size_t j = 0; j < i; j++) {
			if (in[j].name && strcmp(in[j].name, in[i].name) == 0) {
				return params_fail(c, err, "parameter '%s' given "
				    "twice", in[i].name);
			}
		}
		int rv = param_check(c, &d[k], &in[i], err);
		if (rv != FM_OK) {
			return rv;
		}
	}
	return FM_OK;
}

int
fmi_params_resolve(const fmi_component *c, const fmi_param_in *in,
    size_t nin, fm_value *out, fm_error *err)
{
	if (c == NULL || (nin > 0 && in == NULL)) {
		return fm_error_set(err, FM_EINVAL, "parameters: bad arguments");
	}
	size_t np = fmi_component_nparams(c);
	const fm_param_desc *d = c->desc->params;
	int rv = params_check_all(c, np, in, nin, err);
	if (rv != FM_OK) {
		return rv;
	}
	for (size_t k = 0; k < np; k++) {
		out[k].num = d[k].def;
		out[k].str = d[k].type == FM_PARAM_STRING ? d[k].def_str : NULL;
	}
	for (size_t i = 0; i < nin; i++) {
		size_t k = param_index(d, np, in[i].name);
		out[k].num = in[i].is_str ? 0 : in[i].num;
		out[k].str = in[i].is_str ? in[i].str : NULL;
	}
	return FM_OK;
}
