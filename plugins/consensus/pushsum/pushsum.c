/* SPDX-License-Identifier: MIT */
/*
 * pushsum.c: push-sum averaging (Kempe, Dobra & Gehrke, FOCS 2003), the
 * mixing step of subgradient-push (Nedic & Olshevsky, IEEE TAC 2016) and
 * stochastic gradient push, SGP (Assran et al., ICML 2019). It reaches the
 * exact average on directed and time-varying graphs, where gossip with
 * row-stochastic weights only reaches a weighted average.
 *
 * Every peer keeps a scalar weight w (1 at the start). The model the host
 * trains, sends and evaluates is the de-biased z = x / w; the push-sum
 * numerator x = w z is never stored. Per round:
 *
 *   c_outgoing  mass = w / (out_degree + 1), the same to every out-neighbour
 *   c_mix       s  = w / (m->out_degree + 1)            (the share kept)
 *               w' = s + sum_{j received} mass_j
 *               z' = (s z_own + sum_j mass_j z_j) / w'
 *
 * which is x' = x / (d + 1) + sum_j x_j / (d_j + 1) on the numerators.
 * With every message delivered, sum_i w_i stays N and sum_i x_i stays the
 * initial sum, so every z_i tends to the average.
 *
 * Missing neighbours: mass sent to a peer that is dead or too late is lost
 * (this ABI has no acknowledgement), together with its share of x. The
 * peers still agree, but on a weighted average of the initial values
 * instead of the exact one, and sum_i w_i shrinks. The weights W_ij of the
 * topology are not used.
 *
 * Guards: negative or non-finite masses, or w' <= 0 / non-finite (all mass
 * lost for ~1075 rounds in a row underflows w), fail the mix with
 * FM_ERANGE, leaving the model and w unchanged.
 */
#include <math.h>

#include "fedmesh/plugin.h"

#define PUSHSUM_LOG "FM-PUSHSUM"

typedef struct pushsum {
	const fm_host_api *host;
	size_t dim;
	double w; /* push-sum weight */
} pushsum;

static int
pushsum_init(void *st, const fm_instance *inst)
{
	pushsum *p = st;
	p->host = inst->host;
	p->dim = inst->dim;
	p->w = 1.0;
	if (p->dim == 0) {
		p->host->log(FM_LOG_ERR, PUSHSUM_LOG, "pushsum: empty model");
		return FM_EINVAL;
	}
	return FM_OK;
}

static void
pushsum_fini(void *st)
{
	(void)st; /* nothing allocated */
}

static int
pushsum_outgoing(void *st, uint32_t round, uint32_t out_degree, double *mass)
{
	const pushsum *p = st;
	(void)round;
	if (mass == NULL) {
		return FM_EINVAL;
	}
	*mass = p->w / ((double)out_degree + 1.0);
	return FM_OK;
}

/* w' = s + sum of the received masses; FM_ERANGE if any is bad. */
static int
pushsum_weight(const pushsum *p, const fm_mix *m, double s, double *wn)
{
	double w = s;
	for (uint32_t k = 0; k < m->nneighbours; k++) {
		const fm_peer_model *nb = &m->neighbours[k];
		if (nb->params == NULL) {
			return FM_EINVAL;
		}
		if (!isfinite(nb->mass) || nb->mass < 0) {
			p->host->log(FM_LOG_WARN, PUSHSUM_LOG, "peer %d round "
			    "%u: peer %d sent mass %g", (int)m->self, m->round,
			    (int)nb->peer, nb->mass);
			return FM_ERANGE;
		}
		w += nb->mass;
	}
	if (!(w > 0) || !isfinite(w)) {
		p->host->log(FM_LOG_WARN, PUSHSUM_LOG, "peer %d round %u: "
		    "push-sum weight %g after the mix", (int)m->self, m->round,
		    w);
		return FM_ERANGE;
	}
	*wn = w;
	return FM_OK;
}

static int
pushsum_mix(void *st, const fm_mix *m, float *model, size_t dim)
{
	pushsum *p = st;
	double wn = 0;
	if (m == NULL || model == NULL || dim != p->dim ||
	    (m->nneighbours > 0 && m->neighbours == NULL)) {
		return FM_EINVAL;
	}
	double s = p->w / ((double)m->out_degree + 1.0);
	int rv = pushsum_weight(p, m, s, &wn);
	if (rv != FM_OK) {
		return rv;
	}
	p->host->scal(dim, (float)(s / wn), model);
	for (uint32_t k = 0; k < m->nneighbours; k++) {
		const fm_peer_model *nb = &m->neighbours[k];
		p->host->axpy(dim, (float)(nb->mass / wn), nb->params, model);
	}
	p->w = wn;
	return FM_OK;
}

static const fm_consensus_ops pushsum_ops = {
	.c_struct_size = sizeof(fm_consensus_ops),
	.c_kind = FM_KIND_CONSENSUS,
	.c_name = "pushsum",
	.c_state_size = sizeof(pushsum),
	.c_init = pushsum_init,
	.c_fini = pushsum_fini,
	.c_outgoing = pushsum_outgoing,
	.c_mix = pushsum_mix,
};

static const fm_component_desc pushsum_components[] = {
	{ FM_KIND_CONSENSUS, "pushsum",
	    "Push-sum / stochastic gradient push for directed and "
	    "time-varying graphs (Kempe et al., 2003; Assran et al., 2019)",
	    NULL },
};

FM_PLUGIN_DEFINE("pushsum", "1.0.0", "MIT",
    "Push-sum averaging for directed and time-varying graphs",
    pushsum_components);

FM_PLUGIN_INIT(r, host)
{
	return host->register_component(r, &pushsum_ops, sizeof pushsum_ops);
}
