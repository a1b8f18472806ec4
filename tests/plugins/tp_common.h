/* SPDX-License-Identifier: MIT */
/* tp_common.h: a do-nothing aggregator the loader's test plugins build on. */
#ifndef FMT_TP_COMMON_H
#define FMT_TP_COMMON_H

#include "fedmesh/plugin.h"

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
tp_accept(void *st, const fm_update *u)
{
	(void)st;
	(void)u;
	return FM_OK;
}

static inline int
tp_finish(void *st, float *global, size_t dim)
{
	(void)st;
	(void)global;
	(void)dim;
	return FM_OK;
}

/* A complete, valid aggregator ops table named nm. */
#define TP_OPS(nm)                                                          \
	{ sizeof(fm_aggregator_ops), FM_KIND_AGGREGATOR, nm, 8, tp_init,     \
		tp_fini, tp_begin, tp_accept, tp_finish, NULL, NULL, NULL, NULL, NULL,\
		NULL, NULL }

/* A declared aggregator component without parameters. */
#define TP_COMPONENT(nm)                                                    \
	{ FM_KIND_AGGREGATOR, nm, "test component " nm, NULL }

#endif /* FMT_TP_COMMON_H */
