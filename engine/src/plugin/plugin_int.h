/* SPDX-License-Identifier: MIT */
/* plugin_int.h: what the files of plugin/ share (private): the registry's
 * types, the kinds the host runs, and the loader's hooks. */
#ifndef FMI_PLUGIN_INT_H
#define FMI_PLUGIN_INT_H

#include <stddef.h>

#include "plugin/registry.h"

/* Longest component name: it travels in the wire's plugin-name field. */
#define FMI_PLUGIN_MAX_NAME 63
/* Most parameters a component may declare. */
#define FMI_MAX_PARAMS 64
/* Most components per plugin file. */
#define FMI_MAX_COMPONENTS 64

/* A registered component with host-sized copies of its descriptor, its
 * parameters and its ops table: fields a plugin built for an older minor
 * did not know read as NULL/0, and the rest of the host indexes them as
 * plain C arrays. */
typedef struct reg_comp {
	fmi_component c; /* first: handed out as const fmi_component * */
	fm_component_desc desc;
	fm_param_desc *params; /* [n + 1], NULL-name terminated; or NULL */
	union {
		fm_ops base;
		fm_aggregator_ops agg;
		fm_consensus_ops cons;
		fm_defence_ops def;
		fm_attack_ops atk;
		fm_local_ops loc;
		fm_privacy_ops priv;
		fm_compressor_ops cmp;
	} ops;
} reg_comp;

typedef struct reg_plugin {
	void *dl;
	char *path;    /* shared by the plugin's components */
	void *legacy;  /* fmi_abi1 of a 1.x plugin, or NULL */
} reg_plugin;

struct fmi_registry {
	reg_comp **comps;
	size_t ncomps, capc;
	reg_plugin *plugins;
	size_t nplugins, capp;
};

/* Room for ncomps more components and one more plugin. */
int fmi_registry_reserve(fmi_registry *r, size_t ncomps);

/* The ops table a kind has in this ABI: its size (0: none), and the name
 * of the first required call that ops lacks (NULL: none lacks). */
size_t fmi_kind_ops_size(uint32_t kind);
const char *fmi_kind_missing(uint32_t kind, const void *ops);

/* checks.c: descriptor checks the 2.0 loader and the 1.x layer share */
int fmi_nonempty(const char *s);
int fmi_component_name_ok(const char *s); /* 1..63 of [A-Za-z0-9_.-] */
int fmi_param_name_ok(const char *s);     /* snake_case, 1..63 */
size_t fmi_sym_size(const void *sym);      /* ELF size, 0 if unknown */
/* Why declaration p (after prev[0..n)) is wrong, into why; 0 if fine. */
int fmi_param_desc_bad(const fm_param_desc *p, const fm_param_desc *prev,
    size_t n, char *why, size_t size);

#endif /* FMI_PLUGIN_INT_H */
