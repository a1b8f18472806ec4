/* SPDX-License-Identifier: MIT */
/*
 * dp_local.c: local differential privacy of every update that leaves a
 * client (or a peer): the Gaussian mechanism on its own update.
 *
 * Client (a peer on a peer-to-peer topology): the update is clipped to L2
 * norm `clip` (flat) and N(0, s^2) is added to every coordinate, with
 *   s = clip sqrt(2 ln(1.25 / delta)) / epsilon   (Dwork & Roth, The
 *       Algorithmic Foundations of Differential Privacy, Thm A.1; Flower's
 *       LocalDpMod), or
 *   s = noise_multiplier clip                     when noise_multiplier > 0.
 * The classical bound holds for epsilon <= 1 only, so a larger epsilon is
 * refused (give noise_multiplier and account with an RDP accountant
 * instead); with noise_multiplier, the per-release epsilon it implies by
 * that bound, sqrt(2 ln(1.25 / delta)) / noise_multiplier, is reported
 * when it is <= 1 and a warning says it is not otherwise.
 *
 * Guarantee: each release (one update of one client in one round) is
 * (epsilon, delta)-DP with respect to that client's data, whatever the
 * server or the neighbours do with it: nothing needs trusting, and every
 * defence and aggregator after it is post-processing.
 *
 * Server side: begin only, to report the metrics of the round (no row is
 * touched, the updates stream): dp_clip, dp_noise_std (s, per coordinate
 * of each update), dp_epsilon and dp_delta (per release). A peer reports
 * them itself. No dp_clipped_fraction: the count would leave the clients
 * unprotected.
 */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#include "../common/dpc.h"

#define DPL_LOG "FM-DP-LOCAL"

enum { P_CLIP, P_EPS, P_DELTA, P_Z, P_COUNT };

typedef struct dpl {
	dpc_base b;
	double clip, std;
	double eps, delta; /* per release; eps NAN when not reported */
} dpl;

static int
dpl_init(void *st, const fm_instance *inst)
{
	dpl *p = st;
	int rv = dpc_init(&p->b, inst, "dp_local", DPL_LOG, P_COUNT);
	if (rv != FM_OK) {
		return rv;
	}
	const fm_value *v = inst->params;
	double z = v[P_Z].num;
	p->clip = v[P_CLIP].num;
	p->eps = v[P_EPS].num;
	p->delta = v[P_DELTA].num;
	rv = dpc_positive(&p->b, "clip", p->clip, "the L2 bound of an update");
	rv = rv ? rv : dpc_open01(&p->b, "delta", p->delta, "the per-release "
	    "delta");
	rv = rv ? rv : dpc_nonneg(&p->b, "noise_multiplier", z, "0 derives "
	    "the noise from epsilon and delta");
	if (rv != FM_OK) {
		return rv;
	}
	double k = sqrt(2 * log(1.25 / p->delta));
	if (z > 0) {
		p->std = z * p->clip;
		p->eps = k / z;
		if (!(p->eps <= 1)) {
			if (p->b.server ||
			    (inst->role == FM_ROLE_PEER && inst->node_id <= 1)) {
				p->b.host->log(FM_LOG_INFO, DPL_LOG, "dp_local: "
				    "noise_multiplier %g: the classical bound "
				    "(epsilon %g per release) holds for epsilon "
				    "<= 1 only, so dp_epsilon is not reported; "
				    "the run's epsilon metric (RDP accounting "
				    "of the Gaussian) is", z, p->eps);
			}
			p->eps = NAN;
		}
		return FM_OK;
	}
	rv = dpc_positive(&p->b, "epsilon", p->eps, "the per-release epsilon");
	if (rv == FM_OK && p->eps > 1) {
		dpc_error(&p->b, "dp_local: epsilon = %g: the Gaussian "
		    "mechanism's classical bound std = clip sqrt(2 ln(1.25 / "
		    "delta)) / epsilon holds for epsilon <= 1 only; give "
		    "noise_multiplier instead and account for it with an RDP "
		    "accountant", p->eps);
		rv = FM_EINVAL;
	}
	p->std = rv == FM_OK ? p->clip * k / p->eps : 0;
	return rv;
}

static void
dpl_fini(void *st)
{
	(void)st;
}

static void
dpl_metrics(const dpl *p)
{
	const fm_host_api *h = p->b.host;
	h->metric(p->b.inst, "dp_clip", p->clip);
	h->metric(p->b.inst, "dp_noise_std", p->std);
	if (!isnan(p->eps)) {
		h->metric(p->b.inst, "dp_epsilon", p->eps);
	}
	h->metric(p->b.inst, "dp_delta", p->delta);
}

static int
dpl_begin(void *st, const fm_round *r)
{
	dpl *p = st;
	if (r->dim != p->b.dim) {
		dpc_error(&p->b, "dp_local: round %u has %zu parameters, the "
		    "model %zu", r->round, r->dim, p->b.dim);
		return FM_EINVAL;
	}
	if (p->b.server || p->b.inst->role == FM_ROLE_PEER) {
		dpl_metrics(p);
	}
	return FM_OK;
}

static int
dpl_client(void *st, fm_private_update *u)
{
	dpl *p = st;
	if (u->dim != p->b.dim) {
		dpc_error(&p->b, "dp_local: the update has %zu parameters, the "
		    "model %zu", u->dim, p->b.dim);
		return FM_EINVAL;
	}
	if (!isfinite(dpc_clip(&p->b, u->delta, u->dim, p->clip, NULL))) {
		dpc_error(&p->b, "dp_local: round %u: the update of client %d "
		    "is not finite", u->round, (int)u->client);
		return FM_ERANGE;
	}
	return dpc_noise(&p->b, u->delta, u->dim, p->std, u->seed);
}

static const fm_privacy_ops dpl_ops = {
	.base = FM_OPS(fm_privacy_ops, FM_KIND_PRIVACY, dpl, dpl_init,
	    dpl_fini),
	.begin = dpl_begin,
	.client = dpl_client,
};

static const fm_param_desc dpl_params[] = {
	{ "clip", FM_PARAM_REAL, 1.0, 0, 1e30, NULL,
	    "L2 norm bound of an update (> 0): the sensitivity." },
	{ "epsilon", FM_PARAM_REAL, 1.0, 0, 1e6, NULL,
	    "Per-release epsilon in (0, 1] (ignored with noise_multiplier)." },
	{ "delta", FM_PARAM_REAL, 1e-5, 0, 1, NULL,
	    "Per-release delta in (0, 1)." },
	{ "noise_multiplier", FM_PARAM_REAL, 0, 0, 1e6, NULL,
	    "z > 0: noise std z clip instead of the one epsilon and delta "
	    "give; 0: from epsilon and delta." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc dpl_components[] = {
	FM_COMPONENT(FM_KIND_PRIVACY, "dp_local",
	    "Local DP: every update clipped and Gaussian-noised on its "
	    "client", dpl_params, dpl_ops,
	    FM_PRIVACY_CLIENT | FM_PRIVACY_SERVER | FM_COMP_STATELESS),
};

FM_PLUGIN("dp_local", "1.0.0", "MIT",
    "Local differential privacy (Gaussian mechanism per update)",
    dpl_components, NULL);
