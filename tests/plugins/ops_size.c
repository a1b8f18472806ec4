/* SPDX-License-Identifier: MIT */
/* ops_size.c: an aggregator ops table cut short (an "ABI 0.9" table). */
#include <stddef.h>

#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("ops_size") };

FM_PLUGIN_DEFINE("ops_size", "1.0.0", "MIT", "ops struct too small",
    comps);

FM_PLUGIN_INIT(r, host)
{
	static fm_aggregator_ops ops = TP_OPS("ops_size");
	/* Claims to end before a_finish, as an older struct would. */
	ops.a_struct_size = (uint32_t)offsetof(fm_aggregator_ops, a_finish);
	return host->register_component(r, &ops, ops.a_struct_size);
}
