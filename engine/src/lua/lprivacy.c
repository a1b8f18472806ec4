/* SPDX-License-Identifier: MIT */
/*
 * lprivacy.c: fm.privacy: differential-privacy accounting of the
 * subsampled Gaussian mechanism from scripts (engine/src/privacy):
 *   fm.privacy.epsilon { noise_multiplier, sample_rate, steps, delta,
 *       accountant = "rdp" | "prv", sampling = "poisson" | "fixed" }
 *       -> epsilon [, best RDP order]
 *   fm.privacy.rdp { noise_multiplier, sample_rate, steps, orders,
 *       sampling } -> { rdp per order }, { orders }
 *   fm.privacy.noise_multiplier { epsilon, delta, sample_rate, steps,
 *       accountant, sampling } -> noise multiplier
 * Every wrong field raises an error naming the function, the field and
 * the rule.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lfm.h"
#include "privacy/accountant.h"

/* at most this many orders in fm.privacy.rdp */
#define LP_MAX_ORDERS 100000

/* The option table (argument 1), or an error saying what it must hold. */
static void
check_table(lua_State *L, const char *fn, const char *const *fields,
    const char *usage)
{
	if (lua_type(L, 1) != LUA_TTABLE) {
		luaL_error(L, "%s: expects a table { %s }, got %s", fn, usage,
		    luaL_typename(L, 1));
	}
	lfm_check_fields(L, 1, fn, fields);
}

/* A required number field; rule says what it must be. */
static double
req_num(lua_State *L, const char *fn, const char *k, const char *rule)
{
	int ty = lua_getfield(L, 1, k);
	if (ty == LUA_TNIL) {
		luaL_error(L, "%s: field '%s' is required (%s)", fn, k, rule);
	}
	if (ty != LUA_TNUMBER) {
		luaL_error(L, "%s: field '%s' must be a number (%s), got %s", fn,
		    k, rule, luaL_typename(L, -1));
	}
	double v = (double)lua_tonumber(L, -1);
	lua_pop(L, 1);
	return v;
}

/* The required integer field 'steps', at least min. */
static uint64_t
req_steps(lua_State *L, const char *fn, lua_Integer min)
{
	const char *rule = min > 0 ? "an integer >= 1: the number of steps "
	    "of the sampled mechanism" : "an integer >= 0: the number of "
	    "steps of the sampled mechanism";
	int ty = lua_getfield(L, 1, "steps");
	if (ty == LUA_TNIL) {
		luaL_error(L, "%s: field 'steps' is required (%s)", fn, rule);
	}
	int ok = 0;
	lua_Integer v = lua_tointegerx(L, -1, &ok);
	if (ty != LUA_TNUMBER || !ok) {
		double f = ty == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : 0;
		luaL_error(L, "%s: field 'steps' must be %s, got %s", fn, rule,
		    ty != LUA_TNUMBER ? luaL_typename(L, -1) :
		    f == floor(f) ? "a number out of the integers' range" :
		    "a fraction");
	}
	if (v < min) {
		luaL_error(L, "%s: field 'steps' = %I must be %s", fn, v, rule);
	}
	lua_pop(L, 1);
	return (uint64_t)v;
}

/* Raises "<fn>: <message>" when rc is an error. */
static void
check_rc(lua_State *L, const char *fn, int rc, const fm_error *e)
{
	if (rc != FM_OK) {
		lfm_raise(L, fn, e);
	}
}

static void
read_q_sigma(lua_State *L, const char *fn, double *q, double *z)
{
	fm_error e;
	*z = req_num(L, fn, "noise_multiplier", "a finite number >= 0: noise "
	    "std / L2 sensitivity");
	check_rc(L, fn, fmi_dp_check_sigma(*z, "noise_multiplier", &e), &e);
	*q = req_num(L, fn, "sample_rate", "a number in [0, 1]: batch size "
	    "/ dataset size");
	check_rc(L, fn, fmi_dp_check_q(*q, "sample_rate", &e), &e);
}

static double
read_delta(lua_State *L, const char *fn)
{
	fm_error e;
	double d = req_num(L, fn, "delta", "a number in (0, 1), below 1 / "
	    "dataset size, e.g. 1e-5");
	check_rc(L, fn, fmi_dp_check_delta(d, "delta", &e), &e);
	return d;
}

static fmi_sampling
read_sampling(lua_State *L, const char *fn)
{
	const char *s = lfm_opt_str(L, 1, fn, "sampling", "poisson");
	if (strcmp(s, "poisson") == 0) {
		return FMI_SAMPLE_POISSON;
	}
	if (strcmp(s, "fixed") == 0) {
		return FMI_SAMPLE_FIXED;
	}
	luaL_error(L, "%s: field 'sampling' = '%s' must be \"poisson\" "
	    "(each example in each step with probability sample_rate) or "
	    "\"fixed\" (batches of a fixed size drawn without replacement)",
	    fn, s);
	return FMI_SAMPLE_POISSON;
}

/* The accountant and sampling fields together: PRV with fixed-size
 * sampling is refused, naming the fix. */
static fmi_acct_kind
read_accountant(lua_State *L, const char *fn, fmi_sampling *samp)
{
	const char *a = lfm_opt_str(L, 1, fn, "accountant", "rdp");
	fmi_acct_kind k;
	if (strcmp(a, "rdp") == 0) {
		k = FMI_ACCT_RDP;
	} else if (strcmp(a, "prv") == 0) {
		k = FMI_ACCT_PRV;
	} else {
		luaL_error(L, "%s: field 'accountant' = '%s' must be \"rdp\" "
		    "(Renyi DP, as dp_accounting) or \"prv\" (privacy random "
		    "variables, as Opacus)", fn, a);
		k = FMI_ACCT_RDP;
	}
	*samp = read_sampling(L, fn);
	if (k == FMI_ACCT_PRV && *samp == FMI_SAMPLE_FIXED) {
		luaL_error(L, "%s: accountant = \"prv\" supports sampling = "
		    "\"poisson\" only; with sampling = \"fixed\" use accountant "
		    "= \"rdp\"", fn);
	}
	return k;
}

/* fm.privacy.epsilon { noise_multiplier, sample_rate, steps, delta
 * [, accountant] [, sampling] } -> eps [, best order] */
static int
l_epsilon(lua_State *L)
{
	static const char *const fields[] = { "noise_multiplier",
		"sample_rate", "steps", "delta", "accountant", "sampling", NULL };
	const char *fn = "fm.privacy.epsilon";
	check_table(L, fn, fields, "noise_multiplier = z, sample_rate = q, "
	    "steps = T, delta = d [, accountant] [, sampling]");
	double q, z;
	read_q_sigma(L, fn, &q, &z);
	uint64_t steps = req_steps(L, fn, 0);
	double delta = read_delta(L, fn);
	fmi_sampling samp;
	fmi_acct_kind k = read_accountant(L, fn, &samp);
	fm_error e;
	if (k == FMI_ACCT_PRV) {
		fmi_dp_event ev = { q, z, steps };
		double eps[3];
		check_rc(L, fn, fmi_prv_epsilon(&ev, 1, delta, 0, 0, eps, &e),
		    &e);
		lua_pushnumber(L, eps[2]);
		return 1;
	}
	double rdp[FMI_RDP_NDEFAULT_ORDERS], order;
	fmi_rdp_compose(q, z, steps, samp == FMI_SAMPLE_FIXED,
	    fmi_rdp_default_orders, FMI_RDP_NDEFAULT_ORDERS, rdp);
	double eps = fmi_rdp_to_eps(fmi_rdp_default_orders, rdp,
	    FMI_RDP_NDEFAULT_ORDERS, delta, &order);
	lua_pushnumber(L, eps);
	lua_pushnumber(L, order);
	return 2;
}

/* The orders field of fm.privacy.rdp, copied into a userdata left on the
 * stack (collected with it, also when an error is raised), or the default
 * orders. */
static const double *
read_orders(lua_State *L, const char *fn, size_t *n)
{
	int ty = lua_getfield(L, 1, "orders");
	if (ty == LUA_TNIL) {
		lua_pop(L, 1);
		*n = FMI_RDP_NDEFAULT_ORDERS;
		return fmi_rdp_default_orders;
	}
	lua_Unsigned len = ty == LUA_TTABLE ? lua_rawlen(L, -1) : 0;
	if (ty != LUA_TTABLE || len == 0 || len > LP_MAX_ORDERS) {
		luaL_error(L, "%s: field 'orders' must be a list of 1 to %d RDP "
		    "orders (numbers > 1), got %s", fn, LP_MAX_ORDERS,
		    ty == LUA_TTABLE ? (len == 0 ? "an empty table"
		                                 : "too many") :
		    luaL_typename(L, -1));
	}
	double *o = lua_newuserdatauv(L, (size_t)len * sizeof *o, 0);
	for (lua_Unsigned i = 1; i <= len; i++) {
		int et = lua_rawgeti(L, -2, (lua_Integer)i);
		double a = et == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : NAN;
		if (et != LUA_TNUMBER) {
			luaL_error(L, "%s: field 'orders': orders[%I] must be a "
			    "number > 1 (an RDP order alpha), got %s", fn,
			    (lua_Integer)i, luaL_typename(L, -1));
		}
		if (!(a > 1)) {
			char msg[64];
			snprintf(msg, sizeof msg, "%g", a);
			luaL_error(L, "%s: field 'orders': orders[%I] = %s must be "
			    "a number > 1 (an RDP order alpha; math.huge is "
			    "allowed)", fn, (lua_Integer)i, msg);
		}
		o[i - 1] = a;
		lua_pop(L, 1);
	}
	*n = (size_t)len;
	return o;
}

static void
push_list(lua_State *L, const double *v, size_t n)
{
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_pushnumber(L, v[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

/* fm.privacy.rdp { noise_multiplier, sample_rate, steps [, orders]
 * [, sampling] } -> { rdp }, { orders } */
static int
l_rdp(lua_State *L)
{
	static const char *const fields[] = { "noise_multiplier",
		"sample_rate", "steps", "orders", "sampling", NULL };
	const char *fn = "fm.privacy.rdp";
	check_table(L, fn, fields, "noise_multiplier = z, sample_rate = q, "
	    "steps = T [, orders = { ... }] [, sampling]");
	double q, z;
	read_q_sigma(L, fn, &q, &z);
	uint64_t steps = req_steps(L, fn, 0);
	fmi_sampling samp = read_sampling(L, fn);
	size_t n;
	const double *orders = read_orders(L, fn, &n);
	double *rdp = lua_newuserdatauv(L, n * sizeof *rdp, 0);
	fmi_rdp_compose(q, z, steps, samp == FMI_SAMPLE_FIXED, orders, n, rdp);
	for (size_t i = 0; i < n; i++) {
		if (isnan(rdp[i])) {
			luaL_error(L, "%s: out of memory computing the RDP of "
			    "%d orders", fn, (int)n);
		}
	}
	push_list(L, rdp, n);
	push_list(L, orders, n);
	return 2;
}

/* fm.privacy.noise_multiplier { epsilon, delta, sample_rate, steps
 * [, accountant] [, sampling] } -> z */
static int
l_noise_multiplier(lua_State *L)
{
	static const char *const fields[] = { "epsilon", "delta",
		"sample_rate", "steps", "accountant", "sampling", NULL };
	const char *fn = "fm.privacy.noise_multiplier";
	check_table(L, fn, fields, "epsilon = e, delta = d, sample_rate = q, "
	    "steps = T [, accountant] [, sampling]");
	fm_error e;
	double eps = req_num(L, fn, "epsilon", "the target epsilon, a finite "
	    "number > 0");
	if (!(eps > 0) || isinf(eps)) {
		char msg[64];
		snprintf(msg, sizeof msg, "%g", eps);
		luaL_error(L, "%s: field 'epsilon' = %s must be a finite number "
		    "> 0 (the target epsilon)", fn, msg);
	}
	double delta = read_delta(L, fn);
	double q = req_num(L, fn, "sample_rate", "a number in [0, 1]: batch "
	    "size / dataset size");
	check_rc(L, fn, fmi_dp_check_q(q, "sample_rate", &e), &e);
	uint64_t steps = req_steps(L, fn, 1);
	fmi_sampling samp;
	fmi_acct_kind k = read_accountant(L, fn, &samp);
	double z;
	check_rc(L, fn, fmi_dp_noise_multiplier(eps, delta, q, steps, k, samp,
	    &z, &e), &e);
	lua_pushnumber(L, z);
	return 1;
}

void
lfm_open_privacy(lua_State *L)
{
	static const luaL_Reg f[] = {
		{ "epsilon", l_epsilon },
		{ "rdp", l_rdp },
		{ "noise_multiplier", l_noise_multiplier },
		{ NULL, NULL },
	};
	luaL_newlib(L, f);
}
