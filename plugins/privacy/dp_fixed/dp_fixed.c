/* SPDX-License-Identifier: MIT */
/*
 * dp_fixed.c: central DP-FedAvg with fixed clipping (McMahan, Ramage,
 * Talwar & Zhang, "Learning Differentially Private Recurrent Language
 * Models", ICLR 2018; Flower's fixed-clipping strategies).
 *
 * Client: its update is clipped to L2 norm `clip` (flat: scale =
 * min(1, clip / ||delta||)) and a one-byte message tells the server
 * whether it was clipped (dpc.h), before the update leaves.
 * Server (each edge of a hierarchy, a star's server): every row that
 * passed the defence is clipped again to `clip` (a no-op for an honest
 * client: the bound holds whatever a client did), the rows are summed
 * with unit weights, N(0, (noise_multiplier clip)^2) is added to the sum,
 * and the sum is divided by the number m of clients sampled at this node
 * this round (a fixed denominator). The noise on the mean thus has std
 * noise_multiplier clip / m (Flower: (1.0, 0.5, 10) -> 0.05). The result
 * replaces the rows: one update, which any aggregator (FedAvg, FedAdam)
 * post-processes.
 *
 * Guarantee: user-level (client-level) central DP of every round's
 * aggregate at that node, for a trusted server, with the Gaussian
 * mechanism of noise multiplier z on the sum's sensitivity `clip`
 * (add/remove one client); the accountant turns rounds and the sampling
 * rate into (epsilon, delta).
 *
 * Metrics per round: dp_clip, dp_clipped_fraction (the share of the
 * aggregated clients whose update was clipped: a diagnostic, not
 * covered by the guarantee), dp_noise_std (on the mean).
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#include "../common/dpc.h"

#define DPF_LOG "FM-DP-FIXED"

enum { P_CLIP, P_Z, P_COUNT };

typedef struct dpf {
	dpc_base b;
	double clip, z;
	dpc_round rd;
} dpf;

static int
dpf_init(void *st, const fm_instance *inst)
{
	dpf *p = st;
	int rv = dpc_init(&p->b, inst, "dp_fixed", DPF_LOG, P_COUNT);
	if (rv != FM_OK) {
		return rv;
	}
	p->clip = inst->params[P_CLIP].num;
	p->z = inst->params[P_Z].num;
	rv = dpc_positive(&p->b, "clip", p->clip, "the L2 bound of a client's "
	    "update");
	return rv ? rv : dpc_nonneg(&p->b, "noise_multiplier", p->z, "the "
	    "noise std over the clip norm; 0 adds no noise (no guarantee)");
}

static void
dpf_fini(void *st)
{
	dpf *p = st;
	dpc_round_free(&p->b, &p->rd);
}

static int
dpf_begin(void *st, const fm_round *r)
{
	dpf *p = st;
	if (!p->b.server) {
		return FM_OK;
	}
	int rv = dpc_round_begin(&p->b, &p->rd, r);
	if (rv == FM_OK && r->nclients > 0) {
		p->b.host->metric(p->b.inst, "dp_clip", p->clip);
		p->b.host->metric(p->b.inst, "dp_noise_std",
		    p->z * p->clip / p->rd.denom);
	}
	return rv;
}

static int
dpf_on_message(void *st, const fm_message *m)
{
	dpf *p = st;
	return p->b.server ? dpc_round_bit(&p->b, &p->rd, m) : FM_EPROTO;
}

static int
dpf_client(void *st, fm_private_update *u)
{
	dpf *p = st;
	int clipped;
	unsigned char msg[DPC_BIT_LEN];
	if (u->dim != p->b.dim) {
		dpc_error(&p->b, "dp_fixed: the update has %zu parameters, the "
		    "model %zu", u->dim, p->b.dim);
		return FM_EINVAL;
	}
	if (!isfinite(dpc_clip(&p->b, u->delta, u->dim, p->clip, &clipped))) {
		dpc_error(&p->b, "dp_fixed: round %u: the update of client %d "
		    "is not finite", u->round, (int)u->client);
		return FM_ERANGE;
	}
	dpc_put_bit(msg, clipped);
	int rv = p->b.host->send(p->b.inst, FM_NODE_SERVER, msg, sizeof msg);
	if (rv != FM_OK && rv != FM_ENOTSUP) { /* no link: a peer, a test */
		p->b.host->log(FM_LOG_WARN, DPF_LOG, "dp_fixed: client %d: the "
		    "clipped bit did not go out (%s); the server counts it from "
		    "the update", (int)u->client, p->b.host->strerror(rv));
	}
	return FM_OK;
}

static int
dpf_server(void *st, fm_rows *r)
{
	dpf *p = st;
	dpc_stats s;
	int rv = dpc_central(&p->b, &p->rd, r, p->clip, p->z, &s);
	if (rv == FM_OK && s.rows > 0) {
		p->b.host->metric(p->b.inst, "dp_clipped_fraction",
		    (double)s.clipped / s.rows);
	}
	return rv;
}

static const fm_privacy_ops dpf_ops = {
	.base = { sizeof(fm_privacy_ops), FM_KIND_PRIVACY, sizeof(dpf),
		dpf_init, dpf_fini, dpf_on_message, NULL, NULL, NULL },
	.begin = dpf_begin,
	.client = dpf_client,
	.server = dpf_server,
};

static const fm_param_desc dpf_params[] = {
	{ "clip", FM_PARAM_REAL, 1.0, 0, 1e30, NULL,
	    "L2 norm bound C of a client's update (> 0), flat clipping." },
	{ "noise_multiplier", FM_PARAM_REAL, 1.0, 0, 1e6, NULL,
	    "z: the noise on the sum of the clipped updates has std z C "
	    "(on the mean: z C / sampled clients)." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc dpf_components[] = {
	FM_COMPONENT(FM_KIND_PRIVACY, "dp_fixed",
	    "Central DP-FedAvg with fixed clipping (McMahan et al., 2018)",
	    dpf_params, dpf_ops,
	    FM_PRIVACY_CLIENT | FM_PRIVACY_SERVER | FM_COMP_STATELESS),
};

FM_PLUGIN("dp_fixed", "1.0.0", "MIT",
    "Central differential privacy with fixed clipping", dpf_components,
    NULL);
