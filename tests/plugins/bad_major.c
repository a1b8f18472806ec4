/* SPDX-License-Identifier: MIT */
/* bad_major.c: a plugin built for a future, incompatible ABI (2.0). */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("bad_major") };

FM_PLUGIN_EXPORT const fm_plugin_info fm_plugin_descriptor = {
	FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR + 1, 0,
	(uint32_t)sizeof(fm_plugin_info), FM_PLUGIN_BUILD_SIG, "bad_major",
	"1.0.0", "MIT", "wrong ABI major", comps, 1, 0,
	{ NULL, NULL, NULL, NULL }
};

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = TP_OPS("bad_major");
	return host->register_component(r, &ops, sizeof ops);
}
