/* SPDX-License-Identifier: MIT */
/* tp_common.h: a do-nothing aggregator the loader's test plugins build on
 * (ABI 2.0: the ops table is data in the component descriptor). */
#ifndef FMT_TP_COMMON_H
#define FMT_TP_COMMON_H

#include "fedmesh/plugin.h"

typedef struct tp_state {
	int unused;
} tp_state;

static inline int
tp_init(void *st, const fm_instance *inst)
{
	(void)st;
	(void)inst;
	return FM_OK;
}

static inline void
tp_fini(void *st)
{
	(void)st;
}

static inline int
tp_begin(void *st, const fm_round *r)
{
	(void)st;
	(void)r;
	return FM_OK;
}

static inline int
tp_accept(void *st, const fm_update *u, uint32_t n, int *status)
{
	(void)st;
	(void)u;
	for (uint32_t k = 0; k < n; k++) {
		status[k] = FM_OK;
	}
	return FM_OK;
}

static inline int
tp_finish(void *st, const float *global, float *out, size_t dim)
{
	(void)st;
	(void)global;
	(void)out;
	(void)dim;
	return FM_OK;
}

/* A complete, valid aggregator ops table. */
#define TP_OPS                                                              \
	{ .base = FM_OPS(fm_aggregator_ops, FM_KIND_AGGREGATOR, tp_state,    \
		tp_init, tp_fini),                                          \
		.begin = tp_begin, .accept = tp_accept, .finish = tp_finish }

static const fm_aggregator_ops tp_ops = TP_OPS;

/* A declared aggregator component without parameters, with tp_ops. */
#define TP_COMPONENT(nm)                                                    \
	FM_COMPONENT(FM_KIND_AGGREGATOR, nm, "test component " nm, NULL,     \
	    tp_ops, 0)

/* A hand-written descriptor (the refusal cases), fields in order. */
#define TP_INFO(magic, major, minor, isize, sig, nm, comps, n, csize)       \
	FM_PLUGIN_EXPORT const fm_plugin_info fm_plugin_descriptor = {       \
		(magic), (major), (minor), (isize), (sig), nm, "1.0.0",      \
		"MIT", "test plugin " nm, comps, (n), (csize), NULL,         \
		{ NULL, NULL, NULL, NULL } }

#endif /* FMT_TP_COMMON_H */
