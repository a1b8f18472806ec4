/* SPDX-License-Identifier: MIT */
/*
 * lexp_privacy.c: fm.experiment's privacy = "dp_fixed" | { "dp_fixed",
 * clip = 1.0, noise_multiplier = 1.1 } and secure_noise = false: reads
 * the mechanism and refuses, at load time, every combination whose
 * guarantee would be void (docs/privacy.md, "Where privacy runs"):
 *   - parameters: clip <= 0, a negative noise multiplier, delta outside
 *     (0, 1), epsilon <= 0, epsilon and noise_multiplier both given;
 *   - topology: a mechanism that acts on an aggregating node's rows
 *     (central DP) on a peer-to-peer graph, which has none;
 *   - sampling: central DP rests on the uniform sampling of each round's
 *     clients; adversaries.per_round samples two groups apart;
 *   - what the server does with the noised mean: an aggregator that
 *     weights clients by what they report (FedNova's local steps), or
 *     that (or whose local rule) exchanges messages with the clients
 *     (SCAFFOLD's control variates: client data around the mechanism);
 *   - defences before central noise: only those that treat each update
 *     on its own (per-row clipping) keep one client's influence within
 *     the clip norm; selecting or combining updates by comparing them
 *     (Krum, medians, FLTrust, centered clipping) does not, so they are
 *     refused with central DP (with local DP they are post-processing).
 * Then the mechanism's instances are opened once as the run will open
 * them (server side, client or peer side), so that its own rules (e.g.
 * dp_adaptive's z < 2 sigma_b) fail here, at the script's line, and not
 * in round 1.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"
#include "privacy/accountant.h"
#include "privacy/noise.h"

#define PFN "fm.experiment"

/* luaL_error with the C library's formats (%g): raises the message. */
static int FM_PRINTF(2, 3)
priv_error(lua_State *L, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	luaL_where(L, 1);
	lua_pushstring(L, msg);
	lua_concat(L, 2);
	return lua_error(L);
}

/* Defences whose output row i depends on update i alone (and on data
 * the server holds), each row at most as long as before: the noise stays
 * calibrated to one client's clipped update after them. */
static const char *const priv_rowwise_defences[] = { "clipping", NULL };

/* Edge-level aggregators that weight each client by values it reports,
 * which the noised mean cannot carry (the server sees one update). */
static const char *const priv_reweighting_aggregators[] = { "fednova",
	NULL };

static int
priv_listed(const char *const *list, const char *name)
{
	for (int i = 0; list[i] != NULL; i++) {
		if (strcmp(list[i], name) == 0) {
			return 1;
		}
	}
	return 0;
}

/* The index of c's parameter `name`, or -1. */
static long
priv_param(const fmi_component *c, const char *name)
{
	size_t n = fmi_component_nparams(c);
	for (size_t i = 0; i < n; i++) {
		const fm_param_desc *d = (const fm_param_desc *)(const void *)
		    ((const char *)c->desc->params + i * c->desc->param_size);
		if (strcmp(d->name, name) == 0 && d->type != FM_PARAM_STRING) {
			return (long)i;
		}
	}
	return -1;
}

/* Whether the privacy table at t gives field k. */
static int
priv_given(lua_State *L, int t, const char *k)
{
	if (lua_type(L, t) != LUA_TTABLE) {
		return 0;
	}
	int given = lua_getfield(L, t, k) != LUA_TNIL;
	lua_pop(L, 1);
	return given;
}

/* The DP parameters a mechanism declares under their usual names. */
static void
priv_check_params(lua_State *L, int t, const lfm_comp *p)
{
	const char *nm = p->c->desc->name;
	static const struct {
		const char *name;
		int rule;          /* 0: > 0, 1: >= 0, 2: in (0, 1) */
		const char *what;
	} dp[] = {
		{ "clip", 0, "it bounds the L2 norm of every update, the "
		    "sensitivity the noise is calibrated to" },
		{ "initial_clip", 0, "the first round's clip norm" },
		{ "noise_multiplier", 1, "the noise std over the clip norm "
		    "cannot be negative" },
		{ "delta", 2, "a probability of failure: 0 needs infinite "
		    "noise, 1 guarantees nothing" },
	};
	for (size_t k = 0; k < FMI_ARRAY_LEN(dp); k++) {
		long i = priv_param(p->c, dp[k].name);
		double v = i >= 0 ? p->params[i].num : 0;
		int bad = i >= 0 && (dp[k].rule == 0 ? !(v > 0) :
		    dp[k].rule == 1 ? !(v >= 0) : !(v > 0 && v < 1));
		if (bad || (i >= 0 && !isfinite(v))) {
			priv_error(L, "%s: privacy '%s': %s = %g must be %s (%s)",
			    PFN, nm, dp[k].name, v, dp[k].rule == 0 ? "> 0" :
			    dp[k].rule == 1 ? ">= 0" : "in (0, 1)",
			    dp[k].what);
		}
	}
	long e = priv_param(p->c, "epsilon");
	if (e >= 0 && priv_given(L, t, "epsilon") && !(p->params[e].num > 0)) {
		priv_error(L, "%s: privacy '%s': epsilon = %g must be > 0 (the "
		    "privacy loss of one release; smaller is more private)",
		    PFN, nm, p->params[e].num);
	}
	if (e >= 0 && priv_param(p->c, "noise_multiplier") >= 0 &&
	    priv_given(L, t, "epsilon") && priv_given(L, t, "noise_multiplier")) {
		priv_error(L, "%s: privacy '%s': give epsilon (with delta) or "
		    "noise_multiplier, not both: each sets the noise", PFN, nm);
	}
}

/* Rules that depend on what else the experiment runs. */
static void
priv_check_combination(lua_State *L, const lexp *x)
{
	const fmi_fed_cfg *cfg = &x->cfg;
	const fmi_component *c = x->priv.c;
	const char *nm = c->desc->name;
	int central = fmi_component_privacy_central(c);
	if (!fmi_component_privacy_runs(c, FM_PRIVACY_CLIENT) &&
	    !fmi_component_privacy_runs(c, FM_PRIVACY_SERVER)) {
		priv_error(L, "%s: privacy '%s' declares neither a client nor a "
		    "server side (FM_PRIVACY_CLIENT, FM_PRIVACY_SERVER): it "
		    "would never run", PFN, nm);
	}
	if (x->graph != NULL) {
		if (central ||
		    !fmi_component_privacy_runs(c, FM_PRIVACY_CLIENT)) {
			priv_error(L, "%s: privacy '%s' acts on an aggregating "
			    "node (central DP), and a peer-to-peer topology has "
			    "none: every peer shares its own model, so only local "
			    "DP protects it, e.g. privacy = { \"dp_local\", clip "
			    "= 1, epsilon = 1, delta = 1e-5 }", PFN, nm);
		}
		return;
	}
	uint32_t edge = fmi_fed_levels(cfg) - 1;
	const fm_value *ap;
	const fmi_component *agg = fmi_fed_level_agg(cfg, edge, &ap);
	if (agg != NULL && fmi_component_handles_messages(agg)) {
		priv_error(L, "%s: privacy '%s': aggregator '%s' exchanges "
		    "messages with the clients, which carry client data the "
		    "mechanism does not cover; use an aggregator that only "
		    "sees the updates (fedavg, fedadam, ...)", PFN, nm,
		    agg->desc->name);
	}
	if (cfg->rule != NULL && fmi_component_handles_messages(cfg->rule)) {
		priv_error(L, "%s: privacy '%s': the local rule '%s' sends "
		    "client state to the server beside the update (SCAFFOLD's "
		    "control variates), outside the mechanism, which voids the "
		    "guarantee; use fedprox or plain local training", PFN, nm,
		    cfg->rule->desc->name);
	}
	if (!central) {
		return; /* local DP: what the server does is post-processing */
	}
	if (agg != NULL &&
	    priv_listed(priv_reweighting_aggregators, agg->desc->name)) {
		priv_error(L, "%s: privacy '%s': aggregator '%s' weights each "
		    "client by what it reports (its local steps); with central "
		    "DP the server aggregates one noised, unweighted mean, so "
		    "those weights cannot apply (and, applied to the clients' "
		    "rows, would break the sensitivity bound the noise is "
		    "calibrated to): use fedavg, fedavgm, fedadam, fedyogi or "
		    "fedadagrad", PFN, nm, agg->desc->name);
	}
	if (cfg->defence != NULL &&
	    !priv_listed(priv_rowwise_defences, cfg->defence->desc->name)) {
		priv_error(L, "%s: privacy '%s' adds noise calibrated to one "
		    "client's clipped update after the defence, but defence "
		    "'%s' selects or combines updates by comparing them, so one "
		    "client can change what the others contribute and the "
		    "noise no longer covers it. Use the per-update 'clipping' "
		    "defence with central DP, or local DP (dp_local: any defence "
		    "is then post-processing)", PFN, nm, cfg->defence->desc->name);
	}
	if (cfg->adv_fixed) {
		priv_error(L, "%s: privacy '%s' (central DP) rests on every "
		    "round sampling its clients_per_round clients uniformly "
		    "(the sampling rate its accounting uses), but "
		    "adversaries.per_round = true samples adversaries and "
		    "honest clients apart; drop per_round", PFN, nm);
	}
}

/* Opens the mechanism's instances as the run will, and closes them. */
static void
priv_try_open(lua_State *L, const lexp *x)
{
	const fmi_fed_cfg *cfg = &x->cfg;
	const fmi_component *c = x->priv.c;
	size_t dim = cfg->arch.nparams;
	fm_error e;
	fmi_priv *p = NULL;
	if (x->graph != NULL) {
		fmi_open_args a = { x->priv.params, dim, FM_ROLE_PEER, 0,
			cfg->seed, 1, 0, NULL };
		if (fmi_priv_open(&p, c, &a, &e) != FM_OK) {
			priv_error(L, "%s: %s", PFN, e.msg);
		}
		fmi_priv_close(p);
		return;
	}
	uint32_t edge = fmi_fed_levels(cfg) - 1;
	uint32_t most = FMI_MIN(cfg->clients_per_round,
	    fmi_fed_fanout(cfg, edge));
	fmi_open_args s = { x->priv.params, dim, edge == 0 ? FM_ROLE_SERVER :
		FM_ROLE_EDGE, FM_NODE_SERVER, cfg->seed, most, 0, NULL };
	fmi_open_args k = { x->priv.params, dim, FM_ROLE_CLIENT, 1, cfg->seed,
		1, 0, NULL };
	const fmi_open_args *side[2] = {
		fmi_component_privacy_runs(c, FM_PRIVACY_SERVER) ? &s : NULL,
		fmi_component_privacy_runs(c, FM_PRIVACY_CLIENT) ? &k : NULL };
	for (int i = 0; i < 2; i++) {
		if (side[i] != NULL && fmi_priv_open(&p, c, side[i], &e) != FM_OK) {
			priv_error(L, "%s: %s", PFN, e.msg);
		}
		fmi_priv_close(p);
		p = NULL;
	}
}

/* A numeric parameter of the mechanism by name (its default when the
 * script gave none), or def when it has no such parameter. */
static double
priv_num(const lexp *x, const char *name, double def)
{
	long i = priv_param(x->priv.c, name);
	return i >= 0 ? x->priv.params[i].num : def;
}

/* Poisson sampling draws a varying number of clients in one star. */
static void
priv_check_poisson(lua_State *L, const lexp *x)
{
	const fmi_fed_cfg *cfg = &x->cfg;
	const char *why = x->graph != NULL ? "a peer-to-peer topology samples "
	    "no clients" : cfg->hier.levels > 1 ? "a hierarchy samples each "
	    "edge's share of a fixed number" : fmi_faults_on(cfg) ? "simulated "
	    "faults are planned for a fixed number of clients" :
	    cfg->adv_fixed ? "adversaries.per_round fixes how many of each "
	    "kind a round samples" : NULL;
	if (why != NULL) {
		priv_error(L, "%s: client_sampling = \"poisson\" runs in a star "
		    "with no simulated faults and no adversaries.per_round, but "
		    "%s; use client_sampling = \"uniform\" (fixed-size sampling, "
		    "accounted with the RDP accountant)", PFN, why);
	}
}

/* The accounting of the mechanism (node/dp_budget.h). */
static void
priv_read_accounting(lua_State *L, lexp *x, int prv, int has_delta,
    double delta, double max_eps)
{
	fmi_fed_cfg *cfg = &x->cfg;
	fmi_dp_acct_cfg *a = &cfg->dp_acct;
	const char *nm = x->priv.c->desc->name;
	int central = fmi_component_privacy_central(x->priv.c);
	a->accountant = prv ? FMI_ACCT_PRV : FMI_ACCT_RDP;
	a->max_epsilon = max_eps;
	if (central) {
		a->mode = FMI_DP_CENTRAL;
		a->z = priv_num(x, "noise_multiplier", 0);
		a->delta = has_delta ? delta : 1e-5;
		if (cfg->hier.levels > 1) {
			priv_error(L, "%s: privacy '%s' (central DP) in a hierarchy: "
			    "every edge would noise its own mean of a varying share "
			    "of the round's clients, and no accountant here covers "
			    "that; use local DP (dp_local) in a hierarchy, or a "
			    "star", PFN, nm);
		}
		if (prv && !cfg->poisson_sampling) {
			priv_error(L, "%s: accountant = \"prv\" assumes Poisson "
			    "sampling (each client joins a round independently), "
			    "but this run samples exactly clients_per_round: set "
			    "client_sampling = \"poisson\", or use accountant = "
			    "\"rdp\", which accounts fixed-size sampling", PFN);
		}
	} else {
		a->mode = FMI_DP_LOCAL;
		double d = priv_num(x, "delta", 1e-5), z = priv_num(x,
		    "noise_multiplier", 0), e = priv_num(x, "epsilon", 1);
		a->delta = has_delta ? delta : d;
		a->z = z > 0 ? z : sqrt(2 * log(1.25 / d)) / e;
	}
	if (!(a->z > 0)) {
		priv_error(L, "%s: privacy '%s' with noise_multiplier = 0 adds no "
		    "noise, so no epsilon is finite; give noise_multiplier > 0",
		    PFN, nm);
	}
	if (max_eps > 0) {
		double eps;
		fm_error e;
		double q = a->mode == FMI_DP_LOCAL ? 1 :
		    (double)cfg->clients_per_round / cfg->part->nclients;
		if (fmi_dp_epsilon(q, a->z, 1, cfg->poisson_sampling ||
		    a->mode == FMI_DP_LOCAL, a->accountant, a->delta, &eps,
		    &e) != FM_OK) {
			priv_error(L, "%s: %s", PFN, e.msg);
		}
		if (eps > max_eps) {
			priv_error(L, "%s: max_epsilon = %g is spent by the first "
			    "round alone (epsilon %.4g at delta %g with noise "
			    "multiplier %g): raise max_epsilon or the noise", PFN,
			    max_eps, eps, a->delta, a->z);
		}
	}
}

/* DP-SGD's noise from the secure sampler (secure_noise = true). */
static int
priv_secure_noise(void *ud, float *x, size_t n, double std)
{
	fm_error e;
	(void)ud;
	int rv = fmi_dp_noise_add(x, n, std, NULL, &e);
	if (rv != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-DP-NOISE", "%s", e.msg);
	}
	return rv;
}

/* Example-level DP-SGD alone (local_training.dp, no mechanism): its
 * accounting is the run's epsilon. */
static void
priv_read_dpsgd(lua_State *L, lexp *x, int prv, double delta, double max_eps)
{
	fmi_fed_cfg *cfg = &x->cfg;
	if (prv) {
		priv_error(L, "%s: accountant = \"prv\" accounts a privacy "
		    "mechanism; DP-SGD's example-level epsilon (each client its "
		    "own rate and steps) is accounted with RDP: drop accountant",
		    PFN);
	}
	if (cfg->site_data || x->graph != NULL) {
		fm_log(FM_LOG_WARN, "FM-DP-ACCOUNT", "local_training.dp %s: no "
		    "epsilon is reported (the example counts are the %s)",
		    x->graph != NULL ? "on peers" : "on sites that bring their "
		    "own data", x->graph != NULL ? "peers' own" : "sites'");
		if (max_eps > 0) {
			priv_error(L, "%s: max_epsilon needs an epsilon, and this "
			    "run reports none for local_training.dp", PFN);
		}
		return;
	}
	if (!(cfg->local.dp.noise_multiplier > 0)) {
		fm_log(FM_LOG_WARN, "FM-DP-ACCOUNT", "local_training.dp with "
		    "noise_multiplier = 0 clips each example's gradient but adds "
		    "no noise: no privacy, and no epsilon is reported");
		if (max_eps > 0) {
			priv_error(L, "%s: max_epsilon with local_training.dp "
			    "noise_multiplier = 0: no noise, no finite epsilon",
			    PFN);
		}
		return;
	}
	cfg->dp_acct = (fmi_dp_acct_cfg) { FMI_DP_EXAMPLE, FMI_ACCT_RDP,
		cfg->local.dp.noise_multiplier, delta, max_eps };
}

double
lfm_p2p_epsilon(const lexp *x, uint32_t round)
{
	const fmi_dp_acct_cfg *a = &x->cfg.dp_acct;
	double eps;
	fm_error e;
	if (a->mode == FMI_DP_NONE || fmi_dp_epsilon(1, a->z, round, 1,
	    a->accountant, a->delta, &eps, &e) != FM_OK) {
		return NAN;
	}
	return eps;
}

/* Peer-to-peer: max_epsilon is a number of rounds (every peer releases
 * its model once a round), so the run is cut to it before it starts. */
static void
priv_p2p_budget(lexp *x)
{
	double max = x->cfg.dp_acct.max_epsilon;
	uint32_t lo = 1, hi = x->cfg.rounds; /* epsilon(lo) <= max */
	if (max <= 0 || lfm_p2p_epsilon(x, hi) <= max) {
		return;
	}
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		*(lfm_p2p_epsilon(x, mid) <= max ? &lo : &hi) = mid;
	}
	fm_log(FM_LOG_INFO, "FM-DP-BUDGET", "max_epsilon = %g allows %u of "
	    "the %u rounds (each peer's local DP releases compose to epsilon "
	    "%.4g at delta %g); the run stops there", max, lo, x->cfg.rounds,
	    lfm_p2p_epsilon(x, lo), x->cfg.dp_acct.delta);
	x->cfg.rounds = lo;
}

void
lfm_read_privacy(lua_State *L, lexp *x)
{
	fmi_fed_cfg *cfg = &x->cfg;
	cfg->secure_noise = lfm_opt_bool(L, 1, PFN, "secure_noise", 0);
	const char *smp = lfm_opt_str(L, 1, PFN, "client_sampling", "uniform");
	if (strcmp(smp, "poisson") != 0 && strcmp(smp, "uniform") != 0) {
		priv_error(L, "%s: client_sampling = \"%s\": use \"uniform\" "
		    "(exactly clients_per_round a round, without replacement) or "
		    "\"poisson\" (each client with probability clients_per_round "
		    "/ clients)", PFN, smp);
	}
	cfg->poisson_sampling = strcmp(smp, "poisson") == 0;
	if (cfg->poisson_sampling) {
		priv_check_poisson(L, x);
	}
	const char *acc = lfm_opt_str(L, 1, PFN, "accountant", "rdp");
	if (strcmp(acc, "rdp") != 0 && strcmp(acc, "prv") != 0) {
		priv_error(L, "%s: accountant = \"%s\": use \"rdp\" (Renyi DP, "
		    "Mironov et al. 2019) or \"prv\" (privacy random variables, "
		    "Gopi et al. 2021: tighter, Poisson sampling only)", PFN, acc);
	}
	int has_delta = priv_given(L, 1, "delta");
	double delta = lfm_opt_num(L, 1, PFN, "delta", 1e-5, 0, 1);
	if (has_delta && !(delta > 0 && delta < 1)) {
		priv_error(L, "%s: delta = %g must be in (0, 1), and below 1 / "
		    "clients for a meaningful guarantee", PFN, delta);
	}
	double max_eps = lfm_opt_num(L, 1, PFN, "max_epsilon", 0, 0, HUGE_VAL);
	if (priv_given(L, 1, "max_epsilon") && !(max_eps > 0)) {
		priv_error(L, "%s: max_epsilon = %g must be > 0 (the budget the "
		    "run may spend)", PFN, max_eps);
	}
	const fmi_dpsgd *sgd = &cfg->local.dp;
	if (sgd->clip > 0 && cfg->secure_noise) {
		cfg->local.dp.noise = priv_secure_noise;
	}
	if (lua_getfield(L, 1, "privacy") == LUA_TNIL && sgd->clip > 0) {
		lua_pop(L, 1);
		priv_read_dpsgd(L, x, strcmp(acc, "prv") == 0, has_delta ? delta :
		    1e-5, max_eps);
		return;
	}
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		const char *k = priv_given(L, 1, "max_epsilon") ? "max_epsilon" :
		    has_delta ? "delta" : priv_given(L, 1, "accountant") ?
		    "accountant" : cfg->secure_noise ? "secure_noise" : NULL;
		if (k != NULL) {
			priv_error(L, "%s: %s is set but the experiment has no "
			    "privacy mechanism; add privacy = { \"dp_fixed\", clip "
			    "= 1, noise_multiplier = 1 } (or dp_adaptive, dp_local)",
			    PFN, k);
		}
		return;
	}
	int t = lua_gettop(L);
	lfm_read_component(L, t, FM_KIND_PRIVACY, PFN, "privacy", "dp_fixed",
	    &x->priv);
	cfg->privacy = x->priv.c;
	cfg->priv_params = x->priv.params;
	priv_check_params(L, t, &x->priv);
	priv_check_combination(L, x);
	priv_read_accounting(L, x, strcmp(acc, "prv") == 0, has_delta, delta,
	    max_eps);
	if (sgd->clip > 0 && cfg->site_data) {
		fm_log(FM_LOG_WARN, "FM-DP-ACCOUNT", "local_training.dp on sites "
		    "that bring their own data: the server does not know their "
		    "sizes, so no example_epsilon is reported");
	}
	if (x->graph != NULL) {
		priv_p2p_budget(x);
	}
	priv_try_open(L, x);
	lua_pop(L, 1);
}
