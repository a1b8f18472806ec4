/* SPDX-License-Identifier: MIT */
/* bad_build_sig.c: a plugin whose build signature is another platform's. */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("bad_build_sig") };

FM_PLUGIN_EXPORT const fm_plugin_info fm_plugin_descriptor = {
	FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR,
	(uint32_t)sizeof(fm_plugin_info), FM_PLUGIN_BUILD_SIG ^ 0x0c,
	"bad_build_sig", "1.0.0", "MIT", "wrong build signature", comps, 1,
	0, { NULL, NULL, NULL, NULL }
};

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = TP_OPS("bad_build_sig");
	return host->register_component(r, &ops, sizeof ops);
}
