/* SPDX-License-Identifier: MIT */
/*
 * gossip.c: gossip averaging, the mixing step of D-PSGD (Lian et al., "Can
 * Decentralized Algorithms Outperform Centralized Algorithms?", NeurIPS
 * 2017):
 *
 *   x_i <- x_i + step * sum_{j received} W_ij (x_j - x_i)
 *        = (1 - step * S) x_i + step * sum_j W_ij x_j,   S = sum_j W_ij
 *
 * x_i is the peer's own trained model (model[] on entry), W_ij the weights
 * the topology gives the edges (Metropolis-Hastings on undirected graphs:
 * symmetric and doubly stochastic, so the network sum is preserved and all
 * peers converge to the average; 1/(1+in_i) on directed graphs: only row
 * stochastic, so peers agree on a weighted average; use pushsum there).
 *
 * A neighbour whose model did not arrive is simply left out of the sum:
 * its weight W_ij stays with the own model, so with step 1 the result is
 * the convex combination W_ii x_i + sum_j W_ij x_j renormalised onto what
 * arrived, and with step < 1 a convex combination too. No state, no
 * allocation.
 */
#include <math.h>

#include "fedmesh/plugin.h"

/* Neighbour k of a mix (the array is stepped by its struct_size). */
#define NB(m, k) FM_AT(const fm_peer_model, (m)->neighbours, (k))

#define GOSSIP_LOG "FM-GOSSIP"
#define GOSSIP_WEIGHT_SLACK 1e-9 /* rounding in host-computed weights */

enum { P_STEP, P_COUNT };

typedef struct gossip {
	const fm_host_api *host;
	size_t dim;
	double step; /* gamma in (0, 1] */
	int32_t self;
} gossip;

static int
gossip_init(void *st, const fm_instance *inst)
{
	gossip *g = st;
	g->host = inst->host;
	g->dim = inst->dim;
	g->self = inst->node_id;
	if (g->dim == 0) {
		g->host->log(FM_LOG_ERR, GOSSIP_LOG, "gossip: empty model");
		return FM_EINVAL;
	}
	if (inst->nparams != P_COUNT || inst->params == NULL) {
		g->host->log(FM_LOG_ERR, GOSSIP_LOG, "gossip: %u parameters, "
		    "want %d", inst->nparams, P_COUNT);
		return FM_EINVAL;
	}
	g->step = inst->params[P_STEP].num;
	if (!(g->step > 0 && g->step <= 1)) {
		g->host->log(FM_LOG_ERR, GOSSIP_LOG, "gossip: parameter 'step' "
		    "= %g must be in (0, 1]", g->step);
		return FM_EINVAL;
	}
	return FM_OK;
}

static void
gossip_fini(void *st)
{
	(void)st; /* nothing allocated */
}

/*
 * The received neighbours: models present, sorted by peer id without
 * duplicates or self, weights finite, non-negative, summing to at most 1.
 */
static int
gossip_check(const gossip *g, const fm_mix *m, double *sum)
{
	double s = 0;
	if (m->nneighbours > 0 && m->neighbours == NULL) {
		return FM_EINVAL;
	}
	for (uint32_t k = 0; k < m->nneighbours; k++) {
		const fm_peer_model *nb = NB(m, k);
		double w = nb->weight;
		if (nb->params == NULL || nb->peer == m->self ||
		    (k > 0 && nb->peer <= NB(m, k - 1)->peer) ||
		    !isfinite(w) || w < 0) {
			g->host->log(FM_LOG_WARN, GOSSIP_LOG, "peer %d round "
			    "%u: bad neighbour entry %u (peer %d, weight %g)",
			    (int)m->self, m->round, k, (int)nb->peer, w);
			return FM_EINVAL;
		}
		s += w;
	}
	if (s > 1 + GOSSIP_WEIGHT_SLACK) {
		g->host->log(FM_LOG_WARN, GOSSIP_LOG, "peer %d round %u: "
		    "neighbour weights sum to %.17g > 1", (int)m->self,
		    m->round, s);
		return FM_EINVAL;
	}
	*sum = s > 1 ? 1 : s;
	return FM_OK;
}

static int
gossip_mix(void *st, const fm_mix *m, float *model, size_t dim)
{
	gossip *g = st;
	double sum = 0;
	if (m == NULL || model == NULL || dim != g->dim) {
		return FM_EINVAL;
	}
	int rv = gossip_check(g, m, &sum);
	if (rv != FM_OK || m->nneighbours == 0) {
		return rv; /* nothing arrived: the own model stays */
	}
	g->host->scal(dim, (float)(1.0 - g->step * sum), model);
	for (uint32_t k = 0; k < m->nneighbours; k++) {
		const fm_peer_model *nb = NB(m, k);
		g->host->axpy(dim, (float)(g->step * nb->weight), nb->params,
		    model);
	}
	return FM_OK;
}

static const fm_consensus_ops gossip_ops = {
	.base = FM_OPS(fm_consensus_ops, FM_KIND_CONSENSUS, gossip, gossip_init,
	    gossip_fini),
	.mix = gossip_mix,
};

static const fm_param_desc gossip_params[] = {
	{ "step", FM_PARAM_REAL, 1.0, 0.0, 1.0, NULL,
	    "Consensus step size gamma in (0, 1]; 1 is plain gossip "
	    "averaging." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc gossip_components[] = {
	FM_COMPONENT(FM_KIND_CONSENSUS, "gossip",
	    "Gossip averaging with the topology's weights: D-PSGD "
	    "(Lian et al., 2017)",
	    gossip_params, gossip_ops, FM_COMP_STATELESS),
};

FM_PLUGIN("gossip", "2.0.0", "MIT",
    "Gossip averaging for decentralized learning (D-PSGD)",
    gossip_components, NULL);
