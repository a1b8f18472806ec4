/* SPDX-License-Identifier: MIT */
/* unregistered.c: declares two components but registers only one. */
#include "tp_common.h"

static const fm_component_desc comps[] = {
	TP_COMPONENT("unreg_one"),
	TP_COMPONENT("unreg_two"),
};

FM_PLUGIN_DEFINE("unregistered", "1.0.0", "MIT", "forgets a component",
    comps);

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops one = TP_OPS("unreg_one");
	return host->register_component(r, &one, sizeof one);
}
