/* SPDX-License-Identifier: MIT */
/* bad_magic.c: a descriptor whose magic is wrong. */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("bad_magic") };

FM_PLUGIN_EXPORT const fm_plugin_info fm_plugin_descriptor = {
	0xdeadbeefu, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR,
	(uint32_t)sizeof(fm_plugin_info), FM_PLUGIN_BUILD_SIG, "bad_magic",
	"1.0.0", "MIT", "wrong magic", comps, 1, 0, { NULL, NULL, NULL, NULL }
};

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = TP_OPS("bad_magic");
	return host->register_component(r, &ops, sizeof ops);
}
