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
 *   outgoing  mass = w / (out_degree + 1), the same to every out-neighbour
 *   mix       s  = w / (m->out_degree + 1)            (the share kept)
 *               w' = s + sum_{j received} mass_j
 *               z' = (s z_own + sum_j mass_j z_j) / w'
 *
 * which is x' = x / (d + 1) + sum_j x_j / (d_j + 1) on the numerators.
 * With every message delivered, sum_i w_i stays N and sum_i x_i stays the
 * initial sum, so every z_i tends to the average.
 *
 * Dropouts (ABI 2.1 hosts): the mass stays where it is.
 *   - A share that never left (the host says in m->out_sent how many
 *     out-neighbours got this round's model: a dead or unreachable one
 *     did not) stays with the sender: s = w (d + 1 - out_sent) / (d + 1),
 *     with its share of x.
 *   - A model that arrives after its round's mix, or that a catch-up
 *     jumped over (m->late), is mixed in when it comes: its mass and x
 *     share join the next mix like a neighbour's (push-sum tolerates
 *     delays; Kempe et al.'s invariant only needs every share counted
 *     once).
 *   - A restarted peer gets w back from save/load (the deployed peer
 *     keeps both in its state file).
 * So sum_i w_i over the peers plus the shares in flight stays N. What a
 * dead peer held (and what reached it in the round it died) goes with
 * it; the others still agree, on a weighted average of the live initial
 * values. A host before 2.1 passes no out_sent: every share counts as
 * delivered, as before. The weights W_ij of the topology are not used.
 *
 * Guards: negative or non-finite masses, or w' <= 0 / non-finite (all mass
 * lost for ~1075 rounds in a row underflows w), fail the mix with
 * FM_ERANGE, leaving the model and w unchanged.
 *
 * Metric "pushsum_weight": w after the mix (its mean over the peers that
 * report it, times N, is the network's mass: N when nothing is lost).
 *
 * save/load (checkpoints): version byte 1, then w as a double (the model
 * z is the host's). A load refuses another version, length, or a w that
 * is not positive and finite.
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#include "../../state.h"

/* Neighbour k of a mix (the array is stepped by its struct_size). */
#define NB(m, k) FM_AT(const fm_peer_model, (m)->neighbours, (k))

#define PUSHSUM_LOG "FM-PUSHSUM"
#define PUSHSUM_STATE_VERSION 1

typedef struct pushsum {
	const fm_host_api *host;
	const fm_instance *inst;
	size_t dim;
	double w; /* push-sum weight */
} pushsum;

static int
pushsum_init(void *st, const fm_instance *inst)
{
	pushsum *p = st;
	p->host = inst->host;
	p->inst = inst;
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

/* The delayed models of a mix (none from a host before 2.1). */
static uint32_t
pushsum_nlate(const fm_mix *m)
{
	return FM_HAS(m, fm_mix, late) && m->late != NULL ? m->nlate : 0;
}

/* The k-th received model: the round's neighbours, then the late ones. */
static const fm_peer_model *
pushsum_in(const fm_mix *m, uint32_t k)
{
	return k < m->nneighbours ? NB(m, k) :
	                            FM_AT(const fm_peer_model, m->late,
	                                k - m->nneighbours);
}

/* w' = s + sum of the received masses; FM_ERANGE if any is bad. */
static int
pushsum_weight(const pushsum *p, const fm_mix *m, double s, double *wn)
{
	double w = s;
	uint32_t n = m->nneighbours + pushsum_nlate(m);
	for (uint32_t k = 0; k < n; k++) {
		const fm_peer_model *nb = pushsum_in(m, k);
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
	/* the kept share, plus those that never left (exact when all did) */
	uint32_t sent = FM_HAS(m, fm_mix, late) ? m->out_sent : m->out_degree;
	uint32_t nlate = pushsum_nlate(m);
	if (sent > m->out_degree ||
	    (nlate > 0 && !FM_HAS(m->late, fm_peer_model, mass))) {
		return FM_EINVAL;
	}
	double s = p->w / ((double)m->out_degree + 1.0) *
	    (double)(m->out_degree + 1 - sent);
	int rv = pushsum_weight(p, m, s, &wn);
	if (rv != FM_OK) {
		return rv;
	}
	p->host->scal(dim, (float)(s / wn), model);
	for (uint32_t k = 0; k < m->nneighbours + nlate; k++) {
		const fm_peer_model *nb = pushsum_in(m, k);
		p->host->axpy(dim, (float)(nb->mass / wn), nb->params, model);
	}
	p->w = wn;
	/* the round's mean over the peers times N is the network's mass */
	p->host->metric(p->inst, "pushsum_weight", wn);
	return FM_OK;
}

static int
pushsum_save(void *st, void *buf, size_t cap, size_t *len)
{
	const pushsum *p = st;
	fm_sw w = FM_SW_INIT(buf, cap);
	fm_sw_u8(&w, PUSHSUM_STATE_VERSION);
	fm_sw_f64(&w, p->w);
	return fm_sw_done(&w, len);
}

static int
pushsum_load(void *st, const void *buf, size_t len)
{
	pushsum *p = st;
	fm_sr r = FM_SR_INIT(buf, len);
	if (fm_sr_version(&r, p->inst, PUSHSUM_STATE_VERSION, "pushsum") != FM_OK) {
		return FM_EVERSION;
	}
	double w = fm_sr_f64(&r);
	if (!fm_sr_done(&r) || !(w > 0) || !isfinite(w)) {
		FM_STATE_REFUSE(p->inst, "saved state (%zu bytes) is not a "
		    "push-sum weight (9 bytes, a positive finite w)", len);
		return FM_EINVAL;
	}
	p->w = w;
	return FM_OK;
}

static const fm_consensus_ops pushsum_ops = {
	.base = { sizeof(fm_consensus_ops), FM_KIND_CONSENSUS,
		sizeof(pushsum), pushsum_init, pushsum_fini, NULL, NULL,
		pushsum_save, pushsum_load },
	.outgoing = pushsum_outgoing,
	.mix = pushsum_mix,
};

static const fm_component_desc pushsum_components[] = {
	FM_COMPONENT(FM_KIND_CONSENSUS, "pushsum",
	    "Push-sum / stochastic gradient push for directed and "
	    "time-varying graphs (Kempe et al., 2003; Assran et al., 2019)",
	    NULL, pushsum_ops, 0),
};

FM_PLUGIN("pushsum", "2.1.0", "MIT",
    "Push-sum averaging for directed and time-varying graphs",
    pushsum_components, NULL);
