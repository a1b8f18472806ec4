/* SPDX-License-Identifier: MIT */
/* server_hierarchy.c: the levels above the edges: each aggregates its
 * children's models every few rounds and hands the result down (HierFAVG). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"

/* Child c of aggregator n as an update: its model minus n's, weighted by
 * what its subtree trained since n last aggregated (or its data size). */
static void
srv_feed_child(fmi_server *s, srv_agg *n, const srv_agg *c, uint32_t round)
{
	for (size_t d = 0; d < s->dim; d++) {
		s->delta[d] = c->model[d] - n->model[d];
	}
	fm_update u = { sizeof u, c->id, round, 0, s->delta, s->dim,
		c->since ? c->since : c->data,
		c->since ? c->loss_sum / (double)c->since : 0, 0 };
	(void)fmi_pipe_add(&n->pipe, &u); /* a refusal is logged there */
}

/* Copies aggregator i (position j of level l) down its subtree. */
static void
srv_copy_down(fmi_server *s, uint32_t i, uint32_t l, uint32_t j)
{
	uint64_t width = 1;
	for (uint32_t m = l + 1; m < s->levels; m++) {
		width *= s->fan[m - 1];
		uint32_t k0 = s->first[m] + (uint32_t)(j * width);
		for (uint32_t k = k0; k < k0 + width; k++) {
			memcpy(s->nodes[k].model, s->nodes[i].model,
			    s->dim * sizeof(float));
		}
	}
	if (l == 0) {
		s->root_done = 1;
		for (uint32_t k = s->first[s->levels - 1]; k < s->nnodes; k++) {
			s->nodes[k].since_root = 0;
		}
	}
}

/* Aggregator j of level l aggregates its children's models, then hands
 * the result down to its whole subtree (HierFAVG). */
static void
srv_aggregate_node(fmi_server *s, uint32_t l, uint32_t j)
{
	uint32_t i = s->first[l] + j, c0 = s->first[l + 1] + j * s->fan[l];
	uint32_t round = (uint32_t)(s->round / s->period[l]);
	srv_agg *n = &s->nodes[i];
	char name[64];
	for (uint32_t k = 0; k < s->fan[l]; k++) {
		s->cids[k] = s->nodes[c0 + k].id;
	}
	n->r = (fm_round) { sizeof n->r, round, s->fan[l], s->fan[l],
		s->cids, n->model, s->dim, s->lr_scale, (double)s->fan[l] };
	int rv = fmi_pipe_begin(&n->pipe, &n->r);
	if (rv != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-HIER", "round %u: %s: %s; model kept",
		    s->round, srv_node_name(s, i, name, sizeof name),
		    n->pipe.why);
		return;
	}
	for (uint32_t k = 0; k < s->fan[l]; k++) {
		srv_feed_child(s, n, &s->nodes[c0 + k], round);
	}
	if (srv_finish(s, i, 1) != FM_OK) {
		return;
	}
	for (uint32_t k = 0; k < s->fan[l]; k++) {
		s->nodes[c0 + k].since = 0;
		s->nodes[c0 + k].loss_sum = 0;
	}
	srv_copy_down(s, i, l, j);
}

/* The edge models' mean, weighted by what each trained since the root
 * last aggregated (or its data size), into avg/avgd; returns the mean L2
 * distance of the edge models from it. */
static double
srv_edge_mean(fmi_server *s)
{
	uint32_t e0 = s->first[s->levels - 1];
	double w = 0, dist = 0;
	memset(s->avgd, 0, s->dim * sizeof(double));
	for (uint32_t i = e0; i < s->nnodes; i++) {
		const srv_agg *n = &s->nodes[i];
		double wi = (double)(n->since_root ? n->since_root : n->data);
		for (size_t d = 0; d < s->dim; d++) {
			s->avgd[d] += wi * n->model[d];
		}
		w += wi;
	}
	for (size_t d = 0; d < s->dim; d++) {
		s->avgd[d] = w > 0 ? s->avgd[d] / w : s->global[d];
		s->avg[d] = (float)s->avgd[d];
	}
	for (uint32_t i = e0; i < s->nnodes; i++) {
		double sq = 0;
		for (size_t d = 0; d < s->dim; d++) {
			double x = s->nodes[i].model[d] - s->avgd[d];
			sq += x * x;
		}
		dist += sqrt(sq);
	}
	return dist / (double)(s->nnodes - e0);
}

/* After the edges: every level whose period divides the round aggregates,
 * bottom-up. The model evaluated is the root's right after it aggregated,
 * otherwise the edges' weighted mean (what the root would get by FedAvg). */
void
srv_hier_round(fmi_server *s)
{
	s->root_done = 0;
	if (s->levels == 1) {
		s->view = s->global;
		return;
	}
	for (uint32_t l = s->levels - 1; l-- > 0;) {
		if (s->round % s->period[l] != 0) {
			continue;
		}
		for (uint32_t j = 0; j < s->first[l + 1] - s->first[l]; j++) {
			srv_aggregate_node(s, l, j);
		}
	}
	double div = srv_edge_mean(s);
	s->view = s->root_done ? s->global : s->avg;
	srv_metric(s, "edge_divergence", div);
	srv_metric(s, "root_aggregated", s->root_done);
}
