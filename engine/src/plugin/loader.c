/* SPDX-License-Identifier: MIT */
/*
 * loader.c: loading one plugin file. dlopen(RTLD_NOW | RTLD_LOCAL) -> read
 * the data descriptor (magic, ABI major/minor, sizes, build signature,
 * names, components, parameter declarations, ops tables) and check all of
 * it before any plugin code runs -> the descriptor's optional init ->
 * commit to the registry. An ABI 1.x file goes through abi1.c, which
 * turns it into 2.0 components that then pass the same checks. Any
 * failure logs "FM-PLUGIN-*" with the file and reason, dlcloses it, and
 * leaves the registry as it was.
 */
#define _GNU_SOURCE /* dladdr1: the ELF size of the descriptor symbol */
#include <dlfcn.h>
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
#include "plugin/abi1.h"
#include "plugin/plugin_int.h"

/* The frozen descriptor prefix: magic, abi_major, abi_minor, info_size. */
#define FMI_INFO_PREFIX (offsetof(fm_plugin_info, info_size) + sizeof(uint32_t))

/* One load attempt. */
typedef struct reg_load {
	fmi_registry *reg;
	const char *path;
	void *dl;
	const fm_plugin_info *info;
	size_t symsize;  /* ELF size of the descriptor, 0 if unknown */
	const char *id;  /* log id of the failure */
	fmi_abi1 *legacy; /* a 1.x file's translation */
	const fm_component_desc *descs; /* the components, ... */
	size_t ndescs, desc_size;       /* ... this far apart */
	reg_comp **pending;             /* [ndescs] */
} reg_load;




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
	ld->symsize = fmi_sym_size(sym);
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
	if (in->abi_major != FM_PLUGIN_ABI_MAJOR && in->abi_major != 1) {
		return ld_fail(ld, e, "FM-PLUGIN-ABI", FM_EVERSION, "built for "
		    "plugin ABI %u.%u, but fedmesh %s speaks plugin ABI %d.%d; "
		    "rebuild the plugin against fedmesh %s (plugins built for "
		    "ABI 1.x load too)",
		    in->abi_major, in->abi_minor, FM_VERSION_STRING,
		    FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, FM_VERSION_STRING);
	}
	if (in->abi_major == FM_PLUGIN_ABI_MAJOR &&
	    in->info_size < sizeof(fm_plugin_info)) {
		return ld_fail(ld, e, "FM-PLUGIN-ABI", FM_EVERSION, "descriptor "
		    "size %u is smaller than the ABI %d.0 descriptor (%zu "
		    "bytes); rebuild the plugin against fedmesh %s",
		    in->info_size, FM_PLUGIN_ABI_MAJOR, sizeof(fm_plugin_info),
		    FM_VERSION_STRING);
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


/* The declared parameters of c, stepped by c->param_size, into a
 * host-sized, NULL-terminated copy (*out, NULL when c declares none). */
static int
ld_check_params(reg_load *ld, const fm_component_desc *c, fm_param_desc **out,
    fm_error *e)
{
	char why[160];
	*out = NULL;
	if (c->params == NULL) {
		return FM_OK;
	}
	if (c->param_size < sizeof(fm_param_desc)) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN, "component "
		    "'%s': param_size %u is smaller than fm_param_desc (%zu "
		    "bytes); declare it with FM_COMPONENT", c->name,
		    c->param_size, sizeof(fm_param_desc));
	}
	fm_param_desc p[FMI_MAX_PARAMS + 1];
	size_t n = 0;
	for (;; n++) {
		if (n == FMI_MAX_PARAMS + 1) {
			return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN,
			    "component '%s' declares more than %d parameters "
			    "(is the array ended by { NULL }?)", c->name,
			    FMI_MAX_PARAMS);
		}
		memcpy(&p[n], (const char *)c->params + n * c->param_size,
		    sizeof p[n]);
		if (p[n].name == NULL) {
			break;
		}
		if (fmi_param_desc_bad(&p[n], p, n, why, sizeof why)) {
			return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN,
			    "component '%s', parameter '%s': %s", c->name,
			    p[n].name, why);
		}
	}
	*out = malloc((n + 1) * sizeof **out);
	if (*out == NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_ENOMEM,
		    "out of memory");
	}
	memcpy(*out, p, (n + 1) * sizeof **out);
	return FM_OK;
}

/* Component i of the file (stepped by the file's component size). */
static const fm_component_desc *
ld_comp(const reg_load *ld, size_t i)
{
	return (const fm_component_desc *)(const void *)
	    ((const char *)ld->descs + i * ld->desc_size);
}

/* The ops table of c: present, big enough, of c's kind, with every
 * required call; copied host-sized into rc. */
static int
ld_check_ops(reg_load *ld, const fm_component_desc *c, reg_comp *rc,
    fm_error *e)
{
	size_t need = fmi_kind_ops_size(c->kind);
	fm_ops base;
	if (c->ops == NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-OPS", FM_EPLUGIN, "%s '%s' has "
		    "no ops table", fmi_kind_name(c->kind), c->name);
	}
	if (c->ops_size < need) {
		return ld_fail(ld, e, "FM-PLUGIN-OPS", FM_EPLUGIN, "%s ops for "
		    "'%s' are %u bytes; plugin ABI %d.0 needs at least %zu",
		    fmi_kind_name(c->kind), c->name, c->ops_size,
		    FM_PLUGIN_ABI_MAJOR, need);
	}
	memcpy(&base, c->ops, sizeof base);
	if (base.struct_size != c->ops_size) {
		return ld_fail(ld, e, "FM-PLUGIN-OPS", FM_EPLUGIN, "ops struct "
		    "size %u of '%s' does not match the component's ops_size "
		    "%u", base.struct_size, c->name, c->ops_size);
	}
	if (base.kind != c->kind) {
		return ld_fail(ld, e, "FM-PLUGIN-OPS", FM_EPLUGIN, "'%s' is "
		    "declared as %s but its ops have kind %s", c->name,
		    fmi_kind_name(c->kind), fmi_kind_name(base.kind));
	}
	memcpy(&rc->ops, c->ops, FMI_MIN(c->ops_size, sizeof rc->ops));
	rc->ops.base.struct_size = (uint32_t)need;
	const char *missing = fmi_kind_missing(c->kind, &rc->ops);
	if (missing != NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-OPS", FM_EPLUGIN, "%s '%s' has "
		    "no %s (required)", fmi_kind_name(c->kind), c->name,
		    missing);
	}
	return FM_OK;
}

static int
ld_check_comp(reg_load *ld, size_t i, fm_error *e)
{
	const fm_component_desc *c = ld_comp(ld, i);
	if (c->struct_size < sizeof *c) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN, "component "
		    "%zu: struct_size %u is smaller than fm_component_desc "
		    "(%zu bytes); declare it with FM_COMPONENT", i,
		    c->struct_size, sizeof *c);
	}
	if (fmi_kind_ops_size(c->kind) == 0) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN, "component "
		    "%zu has unknown kind %u", i, c->kind);
	}
	if (!fmi_component_name_ok(c->name) || !fmi_nonempty(c->description)) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN, "component "
		    "%zu needs a name (1..%d of [A-Za-z0-9_.-]) and a "
		    "description", i, FMI_PLUGIN_MAX_NAME);
	}
	for (size_t j = 0; j < i; j++) {
		const fm_component_desc *o = ld_comp(ld, j);
		if (o->kind == c->kind && strcmp(o->name, c->name) == 0) {
			return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN,
			    "declares %s '%s' twice", fmi_kind_name(c->kind),
			    c->name);
		}
	}
	const fmi_component *o = fmi_registry_find(ld->reg, c->kind, c->name);
	if (o != NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-DUP", FM_EEXIST, "%s '%s' is "
		    "already provided by %s (the first one loaded wins)",
		    fmi_kind_name(c->kind), c->name, o->path);
	}
	reg_comp *rc = calloc(1, sizeof *rc);
	if (rc == NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_ENOMEM,
		    "out of memory");
	}
	ld->pending[i] = rc;
	int rv = ld_check_params(ld, c, &rc->params, e);
	if (rv == FM_OK) {
		rv = ld_check_ops(ld, c, rc, e);
	}
	if (rv == FM_OK) {
		memcpy(&rc->desc, c, sizeof rc->desc);
		rc->desc.struct_size = (uint32_t)sizeof rc->desc;
		rc->desc.params = rc->params;
		rc->desc.param_size = (uint32_t)sizeof(fm_param_desc);
		rc->desc.ops = &rc->ops;
		rc->desc.ops_size = rc->ops.base.struct_size;
		rc->c = (fmi_component) { c->kind, &rc->desc, &rc->ops,
			ld->info, NULL,
			ld->info->abi_major, ld->info->abi_minor };
		if (ld->legacy != NULL) {
			/* abi1.c's thunks find their 1.x table from its own
			 * desc and ops, already in the host's layout */
			rc->c.desc = c;
			rc->c.ops = c->ops;
		}
	}
	return rv;
}

/* A 2.0 file's components, straight from its descriptor. */
static int
ld_components(reg_load *ld, fm_error *e)
{
	const fm_plugin_info *in = ld->info;
	if (in->components == NULL || in->ncomponents == 0 ||
	    in->ncomponents > FMI_MAX_COMPONENTS) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN, "declares "
		    "%u components (want 1..%d)", in->ncomponents,
		    FMI_MAX_COMPONENTS);
	}
	if (in->component_size < sizeof(fm_component_desc)) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN,
		    "component_size %u is smaller than fm_component_desc (%zu "
		    "bytes); declare the plugin with FM_PLUGIN",
		    in->component_size, sizeof(fm_component_desc));
	}
	ld->descs = in->components;
	ld->ndescs = in->ncomponents;
	ld->desc_size = in->component_size;
	return FM_OK;
}

/* A 1.x file's components: abi1.c runs its fm_plugin_init and translates. */
static int
ld_legacy(reg_load *ld, fm_error *e)
{
	dlerror();
	void *init = dlsym(ld->dl, FM_PLUGIN_INIT_SYMBOL);
	if (init == NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-ENTRY", FM_EPLUGIN, "an ABI "
		    "1.x plugin without its entry point " FM_PLUGIN_INIT_SYMBOL);
	}
	int rv = fmi_abi1_load(ld->info, init, ld->path, &ld->legacy,
	    &ld->descs, &ld->ndescs, e);
	if (rv != FM_OK) {
		ld->id = "FM-PLUGIN-ABI1";
		return rv;
	}
	ld->desc_size = sizeof(fm_component_desc);
	return FM_OK;
}

static int
ld_check_desc(reg_load *ld, fm_error *e)
{
	const fm_plugin_info *in = ld->info;
	if (!fmi_nonempty(in->name) || !fmi_nonempty(in->version) ||
	    !fmi_nonempty(in->description)) {
		return ld_fail(ld, e, "FM-PLUGIN-DESC", FM_EPLUGIN, "the "
		    "descriptor needs a name, a version and a description");
	}
	int rv = in->abi_major == 1 ? ld_legacy(ld, e) : ld_components(ld, e);
	if (rv == FM_OK) {
		ld->pending = calloc(ld->ndescs, sizeof *ld->pending);
		rv = ld->pending != NULL ? FM_OK : ld_fail(ld, e,
		    "FM-PLUGIN-DESC", FM_ENOMEM, "out of memory");
	}
	for (size_t i = 0; rv == FM_OK && i < ld->ndescs; i++) {
		rv = ld_check_comp(ld, i, e);
	}
	return rv;
}

/* The descriptor's optional init, once everything checked out. */
static int
ld_init(reg_load *ld, fm_error *e)
{
	if (ld->legacy != NULL || ld->info->init == NULL) {
		return FM_OK;
	}
	int rv = ld->info->init(fmi_host_api());
	if (rv != FM_OK) {
		return ld_fail(ld, e, "FM-PLUGIN-INIT", FM_EPLUGIN, "its init "
		    "failed: %s (%d)", fm_strerror(rv), rv);
	}
	return FM_OK;
}

static int
ld_commit(reg_load *ld, fm_error *e)
{
	fmi_registry *r = ld->reg;
	char *path = NULL;
	if (fmi_registry_reserve(r, ld->ndescs) != FM_OK ||
	    (path = strdup(ld->path)) == NULL) {
		return ld_fail(ld, e, "FM-PLUGIN-INIT", FM_ENOMEM,
		    "out of memory");
	}
	for (size_t i = 0; i < ld->ndescs; i++) {
		ld->pending[i]->c.path = path;
		r->comps[r->ncomps++] = ld->pending[i];
		ld->pending[i] = NULL;
	}
	r->plugins[r->nplugins++] = (reg_plugin) { ld->dl, path, ld->legacy };
	ld->dl = NULL; /* owned by the registry now */
	ld->legacy = NULL;
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

/* Rolls back whatever a failed load prepared, then unloads the file. */
static void
ld_cleanup(reg_load *ld)
{
	for (size_t i = 0; ld->pending != NULL && i < ld->ndescs; i++) {
		if (ld->pending[i] != NULL) {
			free(ld->pending[i]->params);
			free(ld->pending[i]);
		}
	}
	free(ld->pending);
	fmi_abi1_free(ld->legacy);
	if (ld->dl != NULL) {
		dlclose(ld->dl);
	}
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
