/* SPDX-License-Identifier: MIT */
/* lpeer.c: the decentralized (peer-to-peer) side of fm.experiment. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"
#include "node/peer.h"

/* adversaries = { peers = { 3, 7 } | fraction = 0.2, attack = "noise",
 *                 scale = 1.0 } */
static void
p2p_read_adversaries(lua_State *L, lexp *x, uint32_t n)
{
	static const char *const f[] = { "peers", "fraction", "attack",
		"scale", NULL };
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
	lfm_read_adversary_set(L, t, x, n, "peers", fn);
	static const char *const kinds[] = { "noise", "sign_flip", NULL };
	const char *a = lfm_opt_str(L, t, fn, "attack", "noise");
	x->byz_kind = strcmp(a, kinds[1]) == 0 ? FMI_BYZ_SIGN_FLIP :
	    strcmp(a, kinds[0]) == 0 ? FMI_BYZ_NOISE : 0;
	if (x->byz_kind == 0) {
		luaL_error(L, "%s: attack '%s' is not one of \"noise\", "
		    "\"sign_flip\"", fn, a);
	}
	x->byz_scale = lfm_opt_num(L, t, fn, "scale", 1.0, 0, 1e12);
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
	    lua_getfield(L, 1, "defence") != LUA_TNIL ||
	    lua_getfield(L, 1, "attack") != LUA_TNIL) {
		luaL_error(L, "%s: 'aggregator', 'clients_per_round', "
		    "'defence' and 'attack' are for star and hierarchical "
		    "topologies; peers of a %s graph all train every round and "
		    "mix with 'consensus' (e.g. consensus = \"gossip\", or "
		    "\"trimmed_gossip\" against Byzantine neighbours, with "
		    "adversaries = { fraction = 0.2, attack = \"noise\" })", fn,
		    fmi_graph_kind(g));
	}
	lua_pop(L, 4);
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
		p2p_read_adversaries(L, x, fmi_graph_n(g));
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
	p->byz_kind = x->byz_kind;
	p->byz_scale = x->byz_scale;
	p->independent_init = x->independent_init;
	p->init_params = x->cfg.init_params;
	p->round_timeout_ms = c->round_timeout_ms;
	p->on_round = c->on_round;
	p->ud = c->ud;
}
