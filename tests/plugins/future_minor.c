/* SPDX-License-Identifier: MIT */
/* future_minor.c: a plugin built against a newer minor ABI (1.x+1) that
 * appended fields to the descriptor and the ops table: it must load, the
 * host reading only the prefix it knows. */
#include "tp_common.h"

/* What a future header would declare: the 1.0 structs plus new fields. */
typedef struct future_info {
	fm_plugin_info v1;
	const char *homepage;
} future_info;

typedef struct future_ops {
	fm_aggregator_ops v1;
	int (*a_future_call)(void *st);
} future_ops;

static const fm_component_desc comps[] = { TP_COMPONENT("future") };

/* Exported under the entry name, with the larger type (the plugin.h
 * declaration of fm_plugin_descriptor is not used in this file). */
FM_PLUGIN_EXPORT const future_info future_descriptor
    __asm__(FM_PLUGIN_DESCRIPTOR_SYMBOL) = {
	{ FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR + 1,
	    (uint32_t)sizeof(future_info), FM_PLUGIN_BUILD_SIG, "future_minor",
	    "1.0.0", "MIT", "built for a newer minor ABI", comps, 1, 0,
	    { NULL, NULL, NULL, NULL } },
	"https://example.org/future"
};

static int
future_call(void *st)
{
	(void)st;
	return FM_OK;
}

FM_PLUGIN_INIT(r, host)
{
	static const future_ops ops = { TP_OPS("future"), future_call };
	static future_ops sized;
	sized = ops;
	sized.v1.a_struct_size = (uint32_t)sizeof(future_ops);
	return host->register_component(r, &sized, sizeof sized);
}
