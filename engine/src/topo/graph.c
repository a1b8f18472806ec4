/* SPDX-License-Identifier: MIT */
/*
 * graph.c: the fmi_graph object: fmi_graph_new (kind, spec check, round 1
 * built), free, accessors, and fmi_graph_round (time-varying graphs rebuilt
 * round by round). The kinds are in builders.c, CSR in adjacency.c, the
 * mixing weights in mixing.c, describe() in describe.c.
 */
#include <stdlib.h>

#include "core/core.h"
#include "topo/graph_int.h"

static int
graph_build(fmi_graph *g, uint32_t round, fm_error *err)
{
	ebuf e = { 0 };
	csr in, out;
	int rc = g->ki->build(&g->s, round, &e, err);
	if (rc == FM_OK) {
		rc = fmi_adj_build(g->s.n, &e, g->s.directed, &in, &out, err);
	}
	free(e.v);
	if (rc == FM_OK) {
		fmi_adj_free(&g->in, &g->out);
		g->in = in;
		g->out = out;
		g->round = round;
	}
	return rc;
}

int
fmi_graph_new(const fmi_graph_spec *spec, fmi_graph **out, fm_error *err)
{
	*out = NULL;
	const kind_info *ki = fmi_graph_find_kind(spec->kind);
	if (ki == NULL) {
		return fm_error_set(err, FM_EINVAL, "kind: unknown graph kind "
		    "'%s' (valid: ring, torus, complete, kregular, erdos_renyi,"
		    " small_world, edges, star, matching, random_kregular)",
		    spec->kind ? spec->kind : "(null)");
	}
	fmi_graph *g = calloc(1, sizeof *g);
	if (g == NULL) {
		return fmi_graph_oom(err);
	}
	g->ki = ki;
	g->s = *spec;
	g->s.kind = ki->name;
	g->s.directed = spec->directed != 0;
	int rc = fmi_graph_check_spec(ki, &g->s, err);
	if (rc == FM_OK) {
		rc = graph_build(g, 1, err); /* time-varying: round 1 */
	}
	g->s.edges = NULL;
	g->s.nedges = 0;
	if (rc != FM_OK) {
		fmi_graph_free(g);
		return rc;
	}
	*out = g;
	return FM_OK;
}

void
fmi_graph_free(fmi_graph *g)
{
	if (g != NULL) {
		fmi_adj_free(&g->in, &g->out);
		free(g);
	}
}

uint32_t
fmi_graph_n(const fmi_graph *g)
{
	return g->s.n;
}

int
fmi_graph_directed(const fmi_graph *g)
{
	return g->s.directed;
}

int
fmi_graph_time_varying(const fmi_graph *g)
{
	return g->ki->time_varying;
}

const char *
fmi_graph_kind(const fmi_graph *g)
{
	return g->ki->name;
}

int
fmi_graph_round(fmi_graph *g, uint32_t round, fmi_adj *out, fm_error *err)
{
	if (round == 0) {
		return fm_error_set(err, FM_EINVAL, "round: rounds are "
		    "1-based (got 0)");
	}
	if (g->ki->time_varying && g->round != round) {
		int rc = graph_build(g, round, err);
		if (rc != FM_OK) {
			return rc;
		}
	}
	fmi_adj_view(g->s.n, g->s.directed, &g->in, &g->out, out);
	return FM_OK;
}
