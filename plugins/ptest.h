/* SPDX-License-Identifier: MIT */
/*
 * ptest.h: what the built-in plugins' tests share on top of
 * fm_plugin_test.h: opening instances with fmi_open_args, the ABI 2.0
 * structs with their sizes set, one-update accept and in-place finish
 * through the typed calls of plugin/registry.h, and the save -> fresh
 * instance -> load round trip. Test-only; include after fm_plugin_test.h.
 */
#ifndef FM_PLUGINS_PTEST_H
#define FM_PLUGINS_PTEST_H

#include <stdlib.h>
#include <string.h>

#include "plugin/registry.h"

/* fmi_open_args of an instance on a node of role with id, no link. */
static inline fmi_open_args
pt_args(const fm_value *params, size_t dim, uint32_t role, int32_t node_id,
    uint64_t seed)
{
	fmi_open_args a;
	memset(&a, 0, sizeof a);
	a.params = params;
	a.dim = dim;
	a.role = role;
	a.node_id = node_id;
	a.seed = seed;
	return a;
}

/* 1.x's positional field order, sizes set. */
#define PT_ROUND(rnd, ncl, cl, gl, d, pop, lrs)                             \
	{ .struct_size = sizeof(fm_round), .round = (rnd),                   \
		.nclients = (ncl), .population = (pop), .clients = (cl),     \
		.global = (gl), .dim = (d), .lr_scale = (lrs) }
#define PT_UPDATE(cl, rnd, dl, d, n, los, st)                               \
	{ .struct_size = sizeof(fm_update), .client = (cl), .round = (rnd),  \
		.delta = (dl), .dim = (d), .num_examples = (n), .loss = (los), \
		.steps = (st) }
#define PT_MESSAGE(fr, rnd, dat, ln)                                        \
	{ .struct_size = sizeof(fm_message), .from = (fr), .round = (rnd),   \
		.data = (dat), .len = (ln) }
#define PT_PEER(pr, od, par, w, ms, ne)                                     \
	{ .struct_size = sizeof(fm_peer_model), .peer = (pr),                \
		.out_degree = (od), .params = (par), .weight = (w),         \
		.mass = (ms), .num_examples = (ne) }

/* 1.x's fm_mix order: round, self, in_degree, out_degree, own,
 * neighbours, nneighbours, reserved. Every send went out, none late. */
#define PT_MIX(rnd, slf, ind, outd, ow, nbs, nnb, rsv)                      \
	{ .struct_size = sizeof(fm_mix), .round = (rnd), .self = (slf),      \
		.in_degree = (ind), .out_degree = (outd),                  \
		.nneighbours = (nnb), .own = (ow), .neighbours = (nbs),     \
		.out_sent = (outd), .nlate = 0, .late = NULL }
/* 1.x's fm_attack_round order: struct_size, round, n, nadv, dim, deltas,
 * stride, updates, adversarial, global, seed. */
#define PT_ATTACK_ROWS(sz, rnd, nn, nad, d, dl, str, up, adv, gl, sd)        \
	{ .struct_size = sizeof(fm_rows), .round = (rnd), .n = (nn),         \
		.nadv = (nad), .dim = (d), .deltas = (dl), .stride = (str),  \
		.updates = (up), .adversarial = (adv), .global = (gl),      \
		.seed = (sd) }

/* One update through fmi_agg_accept; what its status says. */
static inline int
pt_agg_accept1(fmi_agg *a, const fm_update *u)
{
	int st = FM_EINTERNAL;
	int rv = fmi_agg_accept(a, u, 1, &st);
	return rv != FM_OK ? rv : st;
}

/* finish in place, as 1.x did: out = global (a copy) and global[] gets
 * the new model. */
static inline int
pt_agg_finish(fmi_agg *a, float *global, size_t dim)
{
	float *old = malloc((dim > 0 ? dim : 1) * sizeof(float));
	if (old == NULL) {
		return FM_ENOMEM;
	}
	memcpy(old, global, dim * sizeof(float));
	int rv = fmi_agg_finish(a, old, global, dim);
	free(old);
	return rv;
}

/* The saved state of h (malloc'ed; *len its size), asserting that the
 * size query and the save agree. */
static inline void *
pt_save(fmi_inst_head *h, size_t *len)
{
	size_t need = 0, got = 0;
	assert_true(fmi_inst_saves(h));
	assert_int_equal(fmi_inst_save(h, NULL, 0, &need), FM_ERANGE);
	assert_true(need > 0);
	if (need > 1) { /* one byte short is refused too */
		unsigned char small[1];
		assert_int_equal(fmi_inst_save(h, small, 1, &got), FM_ERANGE);
		assert_int_equal(got, need);
	}
	void *buf = malloc(need);
	assert_non_null(buf);
	assert_int_equal(fmi_inst_save(h, buf, need, &got), FM_OK);
	assert_int_equal(got, need);
	*len = need;
	return buf;
}

/* load refuses a wrong version byte, a truncated and an overlong state,
 * and then takes the good one. */
static inline void
pt_load_checked(fmi_inst_head *h, const void *buf, size_t len)
{
	unsigned char *bad = malloc(len + 1);
	assert_non_null(bad);
	memcpy(bad, buf, len);
	bad[0] ^= 0x7f; /* another format version */
	assert_int_not_equal(fmi_inst_load(h, bad, len), FM_OK);
	bad[0] ^= 0x7f;
	assert_int_not_equal(fmi_inst_load(h, bad, len - 1), FM_OK);
	bad[len] = 0;
	assert_int_not_equal(fmi_inst_load(h, bad, len + 1), FM_OK);
	assert_int_not_equal(fmi_inst_load(h, NULL, 0), FM_OK);
	free(bad);
	assert_int_equal(fmi_inst_load(h, buf, len), FM_OK);
}

#endif /* FM_PLUGINS_PTEST_H */
