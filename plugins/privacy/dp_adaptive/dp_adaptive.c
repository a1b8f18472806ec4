/* SPDX-License-Identifier: MIT */
/*
 * dp_adaptive.c: central DP-FedAvg with adaptive clipping (Andrew,
 * Thakkar, McMahan & Ramaswamy, "Differentially Private Learning with
 * Adaptive Clipping", NeurIPS 2021; TF Privacy's
 * QuantileAdaptiveClipSumQuery).
 *
 * The clip norm C follows the target quantile gamma of the clients'
 * update norms. Each round, on the aggregating node:
 *   1. begin: C goes to every sampled client (host->send, dpc.h);
 *   2. a client clips its update to C and sends back its bit
 *      clipped_i = 1[||delta_i|| > C] before the update;
 *   3. server: the rows are clipped again to C, summed unweighted, the
 *      sum gets N(0, (z_delta C)^2), and the mean is over the m clients
 *      sampled at this node (as dp_fixed); the unclipped bits
 *      b_i = 1 - clipped_i give the noised fraction
 *        b = (sum_i (b_i - 1/2) + N(0, sigma_b^2)) / m + 1/2
 *      (centered bits: sensitivity 1/2, as the paper and TF Privacy), and
 *        C <- C exp(-eta_C (b - gamma)),
 *      so C shrinks when more than gamma of the updates were within it
 *      and grows when fewer were (too many clipped): the paper's
 *      geometric update, TF Privacy's
 *      clip *= exp(-lr (unclipped_quantile - target)).
 * The update's noise multiplier is corrected so that the pair (update
 * sum, bit count) has the privacy of one Gaussian mechanism of
 * multiplier z (the paper's Theorem 1 composition):
 *   z_delta = (z^-2 - (2 sigma_b)^-2)^(-1/2), which needs z < 2 sigma_b
 * (Flower: z = 3, sigma_b = 5 -> 3.1448545). sigma_b defaults to the
 * most clients this node samples a round over 20 (Flower's
 * num_sampled / 20).
 *
 * C is the server's state across rounds (base.save/load: version byte 1,
 * C as a double).
 *
 * Metrics per round: dp_clip (the C used), dp_clipped_fraction (the true
 * share clipped: a diagnostic outside the guarantee), dp_unclipped_noised
 * (b, what C learns from), dp_noise_std (z_delta C / m, on the mean).
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#include "../common/dpc.h"
#include "../../state.h"

#define DPA_LOG "FM-DP-ADAPTIVE"
#define DPA_STATE_VERSION 1
#define DPA_BIT_STREAM 0x62697473ULL /* "bits" */

enum { P_Z, P_C0, P_GAMMA, P_ETA, P_SIGMA_B, P_COUNT };

typedef struct dpa {
	dpc_base b;
	double z, gamma, eta;
	double sigma_b;  /* the bits' noise std */
	double z_delta;  /* the update's corrected noise multiplier */
	double clip;     /* server: C, learnt; client: this round's C */
	uint32_t clip_round; /* client: the round clip came for (0: none) */
	dpc_round rd;
} dpa;

/* (z^-2 - (2 sigma_b)^-2)^(-1/2); z = 0 stays 0 (no noise). */
static double
dpa_z_delta(double z, double sigma_b)
{
	if (z == 0) {
		return 0;
	}
	return 1.0 / sqrt(1.0 / (z * z) - 1.0 / (4.0 * sigma_b * sigma_b));
}

static int
dpa_init(void *st, const fm_instance *inst)
{
	dpa *p = st;
	int rv = dpc_init(&p->b, inst, "dp_adaptive", DPA_LOG, P_COUNT);
	if (rv != FM_OK) {
		return rv;
	}
	const fm_value *v = inst->params;
	p->z = v[P_Z].num;
	p->clip = v[P_C0].num;
	p->gamma = v[P_GAMMA].num;
	p->eta = v[P_ETA].num;
	p->sigma_b = v[P_SIGMA_B].num;
	rv = dpc_nonneg(&p->b, "noise_multiplier", p->z, "the noise std over "
	    "the clip norm");
	rv = rv ? rv : dpc_positive(&p->b, "initial_clip", p->clip, "the "
	    "first round's clip norm C0");
	rv = rv ? rv : dpc_open01(&p->b, "target_quantile", p->gamma, "the "
	    "share of updates meant to be within the clip norm");
	rv = rv ? rv : dpc_nonneg(&p->b, "clip_lr", p->eta, "the learning "
	    "rate of the clip norm; 0 keeps it fixed");
	rv = rv ? rv : dpc_nonneg(&p->b, "clipped_count_stddev", p->sigma_b,
	    "0 means the default, sampled clients / 20");
	if (rv != FM_OK || !p->b.server) {
		p->clip_round = 0;
		return rv;
	}
	if (p->sigma_b == 0) {
		if (inst->max_updates == 0) {
			dpc_error(&p->b, "dp_adaptive: this node does not know "
			    "how many clients it samples a round, so "
			    "clipped_count_stddev has no default: set it");
			return FM_EINVAL;
		}
		p->sigma_b = inst->max_updates / 20.0;
	}
	if (p->z > 0 && !(p->z < 2 * p->sigma_b)) {
		dpc_error(&p->b, "dp_adaptive: noise_multiplier %g needs "
		    "clipped_count_stddev > %g (z < 2 sigma_b), but it is %g%s: "
		    "raise clipped_count_stddev, sample more clients a round, "
		    "or lower noise_multiplier", p->z, p->z / 2, p->sigma_b,
		    v[P_SIGMA_B].num == 0 ? " (the default: sampled clients / "
		    "20)" : "");
		return FM_EINVAL;
	}
	p->z_delta = dpa_z_delta(p->z, p->sigma_b);
	return FM_OK;
}

static void
dpa_fini(void *st)
{
	dpa *p = st;
	dpc_round_free(&p->b, &p->rd);
}

/* Server: the round's clients get C before they train. */
static int
dpa_begin(void *st, const fm_round *r)
{
	dpa *p = st;
	unsigned char msg[DPC_CLIP_LEN];
	if (!p->b.server) {
		return FM_OK;
	}
	int rv = dpc_round_begin(&p->b, &p->rd, r);
	if (rv != FM_OK) {
		return rv;
	}
	dpc_put_clip(msg, p->clip);
	for (uint32_t k = 0; k < r->nclients; k++) {
		int sv = p->b.host->send(p->b.inst, r->clients[k], msg,
		    sizeof msg);
		if (sv != FM_OK) {
			dpc_error(&p->b, "dp_adaptive: round %u: the clip norm "
			    "cannot reach client %d (%s)", r->round,
			    (int)r->clients[k], p->b.host->strerror(sv));
			return sv;
		}
	}
	if (r->nclients > 0) {
		p->b.host->metric(p->b.inst, "dp_clip", p->clip);
		p->b.host->metric(p->b.inst, "dp_noise_std",
		    p->z_delta * p->clip / p->rd.denom);
	}
	return FM_OK;
}

static int
dpa_on_message(void *st, const fm_message *m)
{
	dpa *p = st;
	if (p->b.server) {
		return dpc_round_bit(&p->b, &p->rd, m);
	}
	double c;
	if (dpc_get_clip(m, &c) != FM_OK || m->from != FM_NODE_SERVER) {
		p->b.host->log(FM_LOG_WARN, DPA_LOG, "dp_adaptive: dropped a "
		    "message of %zu bytes from node %d", m->len, (int)m->from);
		return FM_EPROTO;
	}
	p->clip = c;
	p->clip_round = m->round;
	return FM_OK;
}

static int
dpa_client(void *st, fm_private_update *u)
{
	dpa *p = st;
	int clipped;
	unsigned char msg[DPC_BIT_LEN];
	if (u->dim != p->b.dim) {
		dpc_error(&p->b, "dp_adaptive: the update has %zu parameters, "
		    "the model %zu", u->dim, p->b.dim);
		return FM_EINVAL;
	}
	if (p->clip_round != u->round) {
		dpc_error(&p->b, "dp_adaptive: client %d has no clip norm from "
		    "its server for round %u (it sends one before every round); "
		    "the update is not sent", (int)u->client, u->round);
		return FM_EPROTO;
	}
	if (!isfinite(dpc_clip(&p->b, u->delta, u->dim, p->clip, &clipped))) {
		dpc_error(&p->b, "dp_adaptive: round %u: the update of client "
		    "%d is not finite", u->round, (int)u->client);
		return FM_ERANGE;
	}
	dpc_put_bit(msg, clipped);
	int rv = p->b.host->send(p->b.inst, FM_NODE_SERVER, msg, sizeof msg);
	if (rv != FM_OK) {
		dpc_error(&p->b, "dp_adaptive: client %d: its clipped bit cannot "
		    "reach the server (%s)", (int)u->client,
		    p->b.host->strerror(rv));
	}
	return rv;
}

static int
dpa_server(void *st, fm_rows *r)
{
	dpa *p = st;
	dpc_stats s;
	uint32_t m = p->rd.m;
	int rv = dpc_central(&p->b, &p->rd, r, p->clip, p->z_delta, &s);
	if (rv != FM_OK || s.rows == 0 || m == 0) {
		return rv;
	}
	float noise = 0;
	rv = dpc_noise(&p->b, &noise, 1, p->sigma_b, r->seed ^ DPA_BIT_STREAM);
	if (rv != FM_OK) {
		return rv;
	}
	double centered = (double)s.unclipped - 0.5 * s.rows + noise;
	double b = centered / p->rd.denom + 0.5; /* m, or the expected count */
	p->b.host->metric(p->b.inst, "dp_clipped_fraction",
	    (double)s.clipped / s.rows);
	p->b.host->metric(p->b.inst, "dp_unclipped_noised", b);
	p->clip *= exp(-p->eta * (b - p->gamma));
	return FM_OK;
}

static int
dpa_save(void *st, void *buf, size_t cap, size_t *len)
{
	const dpa *p = st;
	fm_sw w = FM_SW_INIT(buf, cap);
	fm_sw_u8(&w, DPA_STATE_VERSION);
	fm_sw_f64(&w, p->clip);
	return fm_sw_done(&w, len);
}

static int
dpa_load(void *st, const void *buf, size_t len)
{
	dpa *p = st;
	fm_sr r = FM_SR_INIT(buf, len);
	if (fm_sr_version(&r, p->b.inst, DPA_STATE_VERSION, "dp_adaptive") !=
	    FM_OK) {
		return FM_EVERSION;
	}
	double c = fm_sr_f64(&r);
	if (!fm_sr_done(&r) || !(c > 0) || !isfinite(c)) {
		FM_STATE_REFUSE(p->b.inst, "dp_adaptive: saved state (%zu bytes) "
		    "is not a clip norm", len);
		return FM_EINVAL;
	}
	p->clip = c;
	return FM_OK;
}

static const fm_privacy_ops dpa_ops = {
	.base = { sizeof(fm_privacy_ops), FM_KIND_PRIVACY, sizeof(dpa),
		dpa_init, dpa_fini, dpa_on_message, NULL, dpa_save, dpa_load },
	.begin = dpa_begin,
	.client = dpa_client,
	.server = dpa_server,
};

static const fm_param_desc dpa_params[] = {
	{ "noise_multiplier", FM_PARAM_REAL, 1.0, 0, 1e6, NULL,
	    "z: the noise multiplier of the (update sum, clipped count) pair; "
	    "needs z < 2 clipped_count_stddev." },
	{ "initial_clip", FM_PARAM_REAL, 0.1, 0, 1e30, NULL,
	    "C0, the first round's clip norm (> 0)." },
	{ "target_quantile", FM_PARAM_REAL, 0.5, 0, 1, NULL,
	    "gamma in (0, 1): the share of updates meant to be within C." },
	{ "clip_lr", FM_PARAM_REAL, 0.2, 0, 1e3, NULL,
	    "eta_C: C <- C exp(-eta_C (unclipped share - gamma))." },
	{ "clipped_count_stddev", FM_PARAM_REAL, 0, 0, 1e9, NULL,
	    "sigma_b, the noise std of the unclipped count; 0: the most "
	    "clients sampled a round / 20." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc dpa_components[] = {
	FM_COMPONENT(FM_KIND_PRIVACY, "dp_adaptive",
	    "Central DP-FedAvg with adaptive clipping to a norm quantile "
	    "(Andrew et al., 2021)", dpa_params, dpa_ops,
	    FM_PRIVACY_CLIENT | FM_PRIVACY_SERVER),
};

FM_PLUGIN("dp_adaptive", "1.0.0", "MIT",
    "Central differential privacy with adaptive clipping", dpa_components,
    NULL);
