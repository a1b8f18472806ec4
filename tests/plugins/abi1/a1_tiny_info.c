/* SPDX-License-Identifier: MIT */
/* a1_tiny_info.c: a 1.x descriptor whose info_size is smaller than the 1.0
 * descriptor's. */
#include "a1_avg.h"

static const fm_component_desc comps[] = {
	{ FM_KIND_AGGREGATOR, "a1_tiny_info", "descriptor too small", NULL },
};

FM_PLUGIN_EXPORT const fm_plugin_info fm_plugin_descriptor = {
	FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, 16,
	FM_PLUGIN_BUILD_SIG, "a1_tiny_info", "1.0.0", "MIT",
	"descriptor too small", comps, 1, 0, { NULL, NULL, NULL, NULL }
};

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = { sizeof(fm_aggregator_ops),
		FM_KIND_AGGREGATOR, "a1_tiny_info", sizeof(a1_avg), a1_avg_init,
		a1_avg_fini, a1_avg_begin, a1_avg_accept, a1_avg_finish, NULL,
		NULL, NULL, NULL, NULL, NULL, NULL };
	return host->register_component(r, &ops, sizeof ops);
}
