/* SPDX-License-Identifier: MIT */
/* bad_param_desc.c: a parameter whose default lies outside its range. */
#include "tp_common.h"

static const fm_param_desc params[] = {
	{ "lr", FM_PARAM_REAL, 5.0, 0.0, 1.0, NULL, "out of its own range" },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc comps[] = {
	{ FM_KIND_AGGREGATOR, "bad_param_desc", "bad declaration", params },
};

FM_PLUGIN_DEFINE("bad_param_desc", "1.0.0", "MIT", "bad parameter "
    "declaration", comps);

FM_PLUGIN_INIT(r, host)
{
	static const fm_aggregator_ops ops = TP_OPS("bad_param_desc");
	return host->register_component(r, &ops, sizeof ops);
}
