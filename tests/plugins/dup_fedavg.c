/* SPDX-License-Identifier: MIT */
/* dup_fedavg.c: an impostor declaring the built-in fedavg's name. */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("fedavg") };

FM_PLUGIN_DEFINE("dup_fedavg", "6.6.6", "MIT", "claims to be fedavg",
    comps);

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = TP_OPS("fedavg");
	return host->register_component(r, &ops, sizeof ops);
}
