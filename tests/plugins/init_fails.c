/* SPDX-License-Identifier: MIT */
/* init_fails.c: registers one component, then fails: nothing may remain. */
#include "tp_common.h"

static const fm_component_desc comps[] = {
	TP_COMPONENT("rollback_one"),
	TP_COMPONENT("rollback_two"),
};

FM_PLUGIN_DEFINE("init_fails", "1.0.0", "MIT", "init fails midway", comps);

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops one = TP_OPS("rollback_one");
	int rv = host->register_component(r, &one, sizeof one);
	return rv != FM_OK ? rv : FM_EIO;
}
