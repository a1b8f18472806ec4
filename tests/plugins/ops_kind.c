/* SPDX-License-Identifier: MIT */
/* ops_kind.c: an aggregator component whose ops.base.kind says defence. */
#include "tp_common.h"

static const fm_aggregator_ops ops = {
	.base = FM_OPS(fm_aggregator_ops, FM_KIND_DEFENCE, tp_state, tp_init,
	    tp_fini),
	.begin = tp_begin, .accept = tp_accept, .finish = tp_finish,
};

static const fm_component_desc comps[] = {
	FM_COMPONENT(FM_KIND_AGGREGATOR, "ops_kind", "ops of the wrong kind",
	    NULL, ops, 0),
};

FM_PLUGIN("ops_kind", "1.0.0", "MIT", "ops of the wrong kind", comps, NULL);
