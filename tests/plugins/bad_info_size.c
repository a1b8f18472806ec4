/* SPDX-License-Identifier: MIT */
/* bad_info_size.c: a descriptor claiming to be smaller than the 1.0 one. */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("bad_info_size") };

FM_PLUGIN_EXPORT const fm_plugin_info fm_plugin_descriptor = {
	FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, 16,
	FM_PLUGIN_BUILD_SIG, "bad_info_size", "1.0.0", "MIT",
	"descriptor too small", comps, 1, 0, { NULL, NULL, NULL, NULL }
};

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = TP_OPS("bad_info_size");
	return host->register_component(r, &ops, sizeof ops);
}
