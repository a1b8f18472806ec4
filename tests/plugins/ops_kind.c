/* SPDX-License-Identifier: MIT */
/* ops_kind.c: aggregator ops registered with the defence kind. */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("ops_kind") };

FM_PLUGIN_DEFINE("ops_kind", "1.0.0", "MIT", "ops of the wrong kind",
    comps);

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = { sizeof(fm_aggregator_ops),
		FM_KIND_DEFENCE, "ops_kind", 8, tp_init, tp_fini, tp_begin,
		tp_accept, tp_finish, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
	return host->register_component(r, &ops, sizeof ops);
}
