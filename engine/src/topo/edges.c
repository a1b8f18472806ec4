/* SPDX-License-Identifier: MIT */
/*
 * edges.c: edge buffers (the lists of pairs the builders fill) and edge
 * sets (hash sets of undirected edges, for the random builders).
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "topo/graph_int.h"

int
fmi_graph_oom(fm_error *err)
{
	return fm_error_set(err, FM_ENOMEM, "graph: out of memory");
}

int
fmi_eb_push(ebuf *b, uint32_t u, uint32_t v, fm_error *err)
{
	if (b->len == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		uint32_t *nv = realloc(b->v, cap * 2 * sizeof *nv);
		if (nv == NULL) {
			return fmi_graph_oom(err);
		}
		b->v = nv;
		b->cap = cap;
	}
	b->v[2 * b->len] = u;
	b->v[2 * b->len + 1] = v;
	b->len++;
	return FM_OK;
}

#define ESET_EMPTY UINT64_MAX
#define ESET_TOMB (UINT64_MAX - 1)

static uint64_t
ekey(uint32_t u, uint32_t v)
{
	return u < v ? (uint64_t)u << 32 | v : (uint64_t)v << 32 | u;
}

void
fmi_eset_clear(eset *s)
{
	memset(s->slot, 0xff, (s->mask + 1) * sizeof *s->slot);
}

/* Room for `edges` insertions plus as many deletions at load <= 1/2. */
int
fmi_eset_init(eset *s, size_t edges, fm_error *err)
{
	size_t cap = 16;
	while (cap < 4 * edges + 16) {
		cap *= 2;
	}
	s->slot = malloc(cap * sizeof *s->slot);
	if (s->slot == NULL) {
		return fmi_graph_oom(err);
	}
	s->mask = cap - 1;
	fmi_eset_clear(s);
	return FM_OK;
}

int
fmi_eset_has(const eset *s, uint32_t u, uint32_t v)
{
	uint64_t k = ekey(u, v);
	for (size_t i = fmi_hash64(k) & s->mask;; i = (i + 1) & s->mask) {
		if (s->slot[i] == k) {
			return 1;
		}
		if (s->slot[i] == ESET_EMPTY) {
			return 0;
		}
	}
}

/* The edge must not be in the set. */
void
fmi_eset_add(eset *s, uint32_t u, uint32_t v)
{
	uint64_t k = ekey(u, v);
	size_t i = fmi_hash64(k) & s->mask;
	while (s->slot[i] != ESET_EMPTY && s->slot[i] != ESET_TOMB) {
		i = (i + 1) & s->mask;
	}
	s->slot[i] = k;
}

/* The edge must be in the set. */
void
fmi_eset_del(eset *s, uint32_t u, uint32_t v)
{
	uint64_t k = ekey(u, v);
	size_t i = fmi_hash64(k) & s->mask;
	while (s->slot[i] != k) {
		i = (i + 1) & s->mask;
	}
	s->slot[i] = ESET_TOMB;
}
