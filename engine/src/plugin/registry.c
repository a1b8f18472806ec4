/* SPDX-License-Identifier: MIT */
/* registry.c: the registry of loaded components, and the kinds the host
 * runs (their names, ops sizes and required calls). Loading is loader.c,
 * the plugin path plugin_path.c, parameters params.c. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "plugin/abi1.h"
#include "plugin/plugin_int.h"

/* A required call of an ops table: its offset and name. */
typedef struct reg_req {
	size_t off;
	const char *name;
} reg_req;

#define REQ(T, f) { offsetof(T, f), #f }

static const reg_req req_agg[] = { REQ(fm_aggregator_ops, begin),
	REQ(fm_aggregator_ops, accept), REQ(fm_aggregator_ops, finish),
	{ 0, NULL } };
static const reg_req req_def[] = { REQ(fm_defence_ops, apply), { 0, NULL } };
static const reg_req req_cons[] = { REQ(fm_consensus_ops, mix), { 0, NULL } };
static const reg_req req_cmp[] = { REQ(fm_compressor_ops, bound),
	REQ(fm_compressor_ops, encode), REQ(fm_compressor_ops, decode),
	{ 0, NULL } };
static const reg_req req_none[] = { { 0, NULL } };

/* What the host knows about each kind: its name, the size of its ops
 * table in ABI 2.0 (all kinds have one), and the calls it requires
 * (besides base.init and base.fini). */
typedef struct reg_kind {
	const char *name;
	size_t ops_size;
	const reg_req *req;
} reg_kind;

static const reg_kind reg_kinds[] = {
	{ "unknown", 0, req_none },
	{ "aggregator", sizeof(fm_aggregator_ops), req_agg },
	{ "defence", sizeof(fm_defence_ops), req_def },
	{ "privacy", sizeof(fm_privacy_ops), req_none },
	{ "consensus", sizeof(fm_consensus_ops), req_cons },
	{ "compressor", sizeof(fm_compressor_ops), req_cmp },
	{ "attack", sizeof(fm_attack_ops), req_none },
	{ "local", sizeof(fm_local_ops), req_none },
};

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

size_t
fmi_kind_ops_size(uint32_t kind)
{
	return kind < FMI_ARRAY_LEN(reg_kinds) ? reg_kinds[kind].ops_size : 0;
}

const char *
fmi_kind_missing(uint32_t kind, const void *ops)
{
	const fm_ops *b = ops;
	if (b->init == NULL) {
		return "base.init";
	}
	if (b->fini == NULL) {
		return "base.fini";
	}
	if ((b->save == NULL) != (b->load == NULL)) {
		return b->save == NULL ? "base.save (it has base.load)" :
		    "base.load (it has base.save)";
	}
	for (const reg_req *q = reg_kinds[kind].req; q->name != NULL; q++) {
		void (*fn)(void);
		memcpy(&fn, (const char *)ops + q->off, sizeof fn);
		if (fn == NULL) {
			return q->name;
		}
	}
	return NULL;
}

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
		free(r->comps[i]->params);
		free(r->comps[i]);
	}
	for (size_t i = r->nplugins; i-- > 0;) {
		fmi_abi1_free(r->plugins[i].legacy);
		dlclose(r->plugins[i].dl);
		free(r->plugins[i].path);
	}
	free(r->comps);
	free(r->plugins);
	free(r);
}

int
fmi_registry_reserve(fmi_registry *r, size_t ncomps)
{
	if (r->ncomps + ncomps > r->capc) {
		size_t cap = FMI_MAX(r->ncomps + ncomps, 2 * r->capc);
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

const fmi_component *
fmi_registry_find(const fmi_registry *r, uint32_t kind, const char *name)
{
	for (size_t i = 0; r != NULL && name != NULL && i < r->ncomps; i++) {
		const fmi_component *c = &r->comps[i]->c;
		if ((kind == 0 || c->kind == kind) &&
		    strcmp(c->desc->name, name) == 0) {
			return c;
		}
	}
	return NULL;
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
