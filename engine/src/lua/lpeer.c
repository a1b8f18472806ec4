/* SPDX-License-Identifier: MIT */
/* lpeer.c: the decentralized (peer-to-peer) side of fm.experiment. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"
#include "node/peer.h"

/* Refuses an attack that does not poison updates (data poisoning: a
 * peer's training runs without the attack hooks a client host has). */
static void
p2p_check_attack(lua_State *L, const lexp *x, const char *fn)
{
	if (!fmi_component_poisons_updates(x->atk.c)) {
		luaL_error(L, "%s: peers of a graph run \"gaussian\" (their "
		    "update replaced by N(0, sigma^2) noise), \"sign_flip\" "
		    "(their update reversed, times scale) or another attack "
		    "that poisons updates (scaling, alie, ipm), not '%s', which "
		    "poisons training data", fn, x->atk.c->desc->name);
	}
}

/* attack = "gaussian" | { "gaussian", sigma = 1 } | "sign_flip" |
 * { "sign_flip", scale = 1 } | any attack plugin with poison_updates,
 * as star experiments give it. A Byzantine peer's update y - x goes
 * through the plugin and the peer sends x + the result (peer.c). */
static void
p2p_read_attack(lua_State *L, lexp *x, int t)
{
	const char *fn = "fm.experiment: attack";
	if (lua_type(L, t) != LUA_TTABLE && lua_type(L, t) != LUA_TSTRING) {
		luaL_error(L, "%s: expected a plugin name or { \"name\", "
		    "param = value }, got %s", fn, luaL_typename(L, t));
	}
	lfm_read_component(L, t, FM_KIND_ATTACK, "fm.experiment", "attack",
	    "gaussian", &x->atk);
	p2p_check_attack(L, x, fn);
}

/* adversaries = { peers = { 3, 7 } | clients = { 3, 7 } | fraction = 0.2 }
 * (the old form also took attack = "noise" | "sign_flip" and scale here;
 * still read, with a deprecation note). */
static void
p2p_read_adversaries(lua_State *L, lexp *x, uint32_t n, int has_attack)
{
	static const char *const f[] = { "peers", "clients", "fraction",
		"attack", "scale", NULL };
	const char *fn = "fm.experiment: adversaries";
	int t = lua_gettop(L);
	luaL_checktype(L, t, LUA_TTABLE);
	if (lua_getfield(L, t, "per_round") != LUA_TNIL) {
		luaL_error(L, "%s: 'per_round' is for star and hierarchical "
		    "topologies, where a server samples clients_per_round "
		    "clients each round; every peer of a %s graph trains every "
		    "round, so its adversaries are already the same peers in "
		    "every round", fn, fmi_graph_kind(x->graph));
	}
	lua_pop(L, 1);
	lfm_check_fields(L, t, fn, f);
	int has_clients = lua_getfield(L, t, "clients") != LUA_TNIL;
	int has_peers = lua_getfield(L, t, "peers") != LUA_TNIL;
	lua_pop(L, 2);
	if (has_clients && has_peers) {
		luaL_error(L, "%s: give 'peers' or 'clients' (the same list), "
		    "not both", fn);
	}
	lfm_read_adversary_set(L, t, x, n, has_clients ? "clients" : "peers",
	    fn);
	int old = lua_getfield(L, t, "attack") != LUA_TNIL;
	old |= lua_getfield(L, t, "scale") != LUA_TNIL;
	lua_pop(L, 2);
	if (old && has_attack) {
		luaL_error(L, "%s: the attack is the experiment's 'attack' field; "
		    "drop 'attack' and 'scale' from adversaries", fn);
	}
	if (has_attack) {
		return;
	}
	/* the old form maps onto the plugins: "noise" of std scale is the
	 * gaussian attack with sigma = scale */
	const char *a = lfm_opt_str(L, t, fn, "attack", "noise");
	int noise = strcmp(a, "noise") == 0;
	if (!noise && strcmp(a, "sign_flip") != 0) {
		luaL_error(L, "%s: attack '%s' is not one of \"noise\", "
		    "\"sign_flip\"", fn, a);
	}
	double scale = lfm_opt_num(L, t, fn, "scale", 1.0, 0, 1e12);
	const char *name = noise ? "gaussian" : "sign_flip";
	const char *param = noise ? "sigma" : "scale";
	fm_log(FM_LOG_WARN, "FM-DEPRECATED", "adversaries = { attack = \"%s\", "
	    "scale = %g } is the old form; write attack = { \"%s\", %s = %g }, "
	    "adversaries = { ... } as star experiments do", a, scale, name,
	    param, scale);
	lua_createtable(L, 1, 1);
	lua_pushstring(L, name);
	lua_rawseti(L, -2, 1);
	lua_pushnumber(L, scale);
	lua_setfield(L, -2, param);
	lfm_read_component(L, -1, FM_KIND_ATTACK, "fm.experiment", "attack",
	    name, &x->atk);
	lua_pop(L, 1);
}

/* Called by fm.experiment when `topology` (at index t) is a graph. */
void
lfm_p2p_read(lua_State *L, lexp *x, int t, struct fmi_graph *g)
{
	const char *fn = "fm.experiment";
	x->graph = g;
	lua_pushvalue(L, t);
	x->graph_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	if (fmi_graph_n(g) != x->cfg.part->nclients) {
		luaL_error(L, "%s: the topology has %d peers but the partition "
		    "'train' has %d clients: partition the data into one "
		    "shard per peer", fn, (int)fmi_graph_n(g),
		    (int)x->cfg.part->nclients);
	}
	if (lua_getfield(L, 1, "aggregator") != LUA_TNIL ||
	    lua_getfield(L, 1, "clients_per_round") != LUA_TNIL ||
	    lua_getfield(L, 1, "defence") != LUA_TNIL) {
		luaL_error(L, "%s: 'aggregator', 'clients_per_round' and "
		    "'defence' are for star and hierarchical topologies; peers "
		    "of a %s graph all train every round and mix with "
		    "'consensus' (e.g. consensus = \"gossip\", or "
		    "\"trimmed_gossip\" against Byzantine neighbours, with "
		    "attack = \"gaussian\", adversaries = { fraction = 0.2 })",
		    fn, fmi_graph_kind(g));
	}
	lua_pop(L, 3);
	int has_attack = lua_getfield(L, 1, "attack") != LUA_TNIL;
	if (has_attack) {
		p2p_read_attack(L, x, lua_gettop(L));
	}
	lua_pop(L, 1);
	lua_getfield(L, 1, "consensus");
	lfm_read_component(L, -1, FM_KIND_CONSENSUS, fn, "consensus",
	    "gossip", &x->cons);
	lua_pop(L, 1);
	x->eval_samples = (uint32_t)lfm_opt_int(L, 1, fn, "eval_samples", 0,
	    0, 100000000);
	const char *init = lfm_opt_str(L, 1, fn, "init", "same");
	if (strcmp(init, "same") != 0 && strcmp(init, "independent") != 0) {
		luaL_error(L, "%s: init must be \"same\" (every peer starts "
		    "from one model) or \"independent\", not \"%s\"", fn, init);
	}
	x->independent_init = strcmp(init, "independent") == 0;
	if (x->independent_init && x->init_params != NULL) {
		luaL_error(L, "%s: init = \"independent\" gives each peer its "
		    "own seeded model, but 'model' has parameters (a warm start "
		    "from one model): use init = \"same\", or an architecture "
		    "such as fm.model.mlp{...}", fn);
	}
	if (lua_getfield(L, 1, "adversaries") != LUA_TNIL) {
		p2p_read_adversaries(L, x, fmi_graph_n(g), has_attack);
	} else if (has_attack) {
		luaL_error(L, "%s: 'attack' and 'adversaries' go together: the "
		    "attack is what the adversarial peers do, e.g. attack = "
		    "\"gaussian\", adversaries = { fraction = 0.2 }", fn);
	}
	lua_pop(L, 1);
}

void
lfm_p2p_cfg(const lexp *x, fmi_p2p_cfg *p)
{
	const fmi_fed_cfg *c = &x->cfg;
	memset(p, 0, sizeof *p);
	p->arch = c->arch;
	p->train = c->train;
	p->test = c->test;
	p->part = c->part;
	p->graph = x->graph;
	p->rounds = c->rounds;
	p->local = c->local;
	p->seed = c->seed;
	p->consensus = x->cons.c;
	p->cons_params = x->cons.params;
	p->workers = c->workers;
	p->eval_every = c->eval_every;
	p->eval_samples = x->eval_samples;
	p->byzantine = x->byzantine;
	p->attack = x->atk.c;
	p->atk_params = x->atk.params;
	p->independent_init = x->independent_init;
	p->init_params = x->cfg.init_params;
	p->round_timeout_ms = c->round_timeout_ms;
	p->on_round = c->on_round;
	p->ud = c->ud;
	p->privacy = c->privacy;
	p->priv_params = c->priv_params;
	p->secure_noise = c->secure_noise;
}
