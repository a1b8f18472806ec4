/* SPDX-License-Identifier: MIT */
/* undeclared.c: registers a component its descriptor does not declare. */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("declared") };

FM_PLUGIN_DEFINE("undeclared", "1.0.0", "MIT", "registers an undeclared "
    "name", comps);

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ok = TP_OPS("declared");
	static const fm_aggregator_ops sneaky = TP_OPS("sneaky");
	int rv = host->register_component(r, &ok, sizeof ok);
	if (rv == FM_OK) {
		rv = host->register_component(r, &sneaky, sizeof sneaky);
	}
	return rv;
}
