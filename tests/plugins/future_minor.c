/* SPDX-License-Identifier: MIT */
/* future_minor.c: a plugin built against a newer minor ABI (2.x+1) that
 * appended fields to the descriptor, the component descriptor and the ops
 * table: it must load, the host reading only the prefix it knows. */
#include "tp_common.h"

/* What a future header would declare: the 2.0 structs plus new fields. */
typedef struct future_info {
	fm_plugin_info v2;
	const char *homepage;
} future_info;

typedef struct future_comp {
	fm_component_desc v2;
	const char *url;
} future_comp;

typedef struct future_ops {
	fm_aggregator_ops v2;
	int (*future_call)(void *st);
} future_ops;

static int
future_call(void *st)
{
	(void)st;
	return FM_OK;
}

static const future_ops ops = {
	{ .base = FM_OPS(future_ops, FM_KIND_AGGREGATOR, tp_state, tp_init,
	    tp_fini),
	    .begin = tp_begin, .accept = tp_accept, .finish = tp_finish },
	future_call
};

static const future_comp comps[] = {
	{ { (uint32_t)sizeof(future_comp), FM_KIND_AGGREGATOR, "future",
	    "test component future", NULL, (uint32_t)sizeof(fm_param_desc), 0,
	    &ops, (uint32_t)sizeof ops, 0 }, "https://example.org/c" },
};

/* Exported under the entry name, with the larger type (the plugin.h
 * declaration of fm_plugin_descriptor is not used in this file). */
FM_PLUGIN_EXPORT const future_info future_descriptor
    __asm__(FM_PLUGIN_DESCRIPTOR_SYMBOL) = {
	{ FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR + 1,
	    (uint32_t)sizeof(future_info), FM_PLUGIN_BUILD_SIG, "future_minor",
	    "1.0.0", "MIT", "built for a newer minor ABI",
	    &comps[0].v2, 1, (uint32_t)sizeof(future_comp), NULL,
	    { NULL, NULL, NULL, NULL } },
	"https://example.org/future"
};
