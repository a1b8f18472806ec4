/* SPDX-License-Identifier: MIT */
/*
 * lexperiment.c: the Experiment and Result types: their metatables and
 * methods tables, __gc and __tostring, the result table (lfm_push_result)
 * and result:save_model. fm.experiment{...} reads its fields in
 * lexp_config.c; exp:simulate and the run's per-round plumbing are in
 * lexp_run.c, exp:run in ldeploy.c, result:write_csv and write_jsonl in
 * lresult.c.
 */
#include <stdlib.h>
#include <string.h>

#include "lua/lfm.h"

lexp *
lfm_check_exp(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, LFM_EXPERIMENT);
}

static void
exp_release(lua_State *L, lexp *x)
{
	fmi_dataset_unref(x->cfg.train);
	fmi_dataset_unref(x->cfg.test);
	fmi_partition_unref(x->cfg.part);
	fmi_dataset_unref(x->cfg.client_test);
	fmi_partition_unref(x->cfg.client_test_part);
	x->cfg.client_test = NULL;
	x->cfg.client_test_part = NULL;
	x->cfg.train = x->cfg.test = NULL;
	x->cfg.part = NULL;
	lfm_comp_free(&x->agg);
	lfm_comp_free(&x->rule);
	lfm_comp_free(&x->def);
	lfm_comp_free(&x->atk);
	lfm_comp_free(&x->priv);
	fmi_dataset_unref(x->cfg.root_data);
	x->cfg.root_data = NULL;
	for (int i = 0; i < FMI_HIER_MAX_LEVELS; i++) {
		lfm_comp_free(&x->level_agg[i]);
	}
	lfm_comp_free(&x->cons);
	free(x->byzantine);
	free(x->metrics);
	free(x->init_params);
	free(x->ckpt_path);
	x->byzantine = NULL;
	x->metrics = NULL;
	x->init_params = NULL;
	x->ckpt_path = NULL;
	luaL_unref(L, LUA_REGISTRYINDEX, x->graph_ref);
	x->graph_ref = LUA_NOREF;
	x->graph = NULL;
	luaL_unref(L, LUA_REGISTRYINDEX, x->on_round);
	x->on_round = LUA_NOREF;
	lfm_release_deploy(x);
}

static int
exp_gc(lua_State *L)
{
	exp_release(L, lfm_check_exp(L, 1));
	return 0;
}

/* Result fields from the rows: the last evaluated round's accuracy and
 * loss, and the best accuracy with its round. */
void
lfm_push_result(lua_State *L, int rows, double seconds, size_t nparams)
{
	double best = 0, acc = 0, loss = 0;
	lua_Integer best_round = 0, n;
	int have = 0;
	rows = lua_absindex(L, rows);
	n = luaL_len(L, rows);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, rows, i);
		if (lua_getfield(L, -1, "accuracy") == LUA_TNUMBER) {
			acc = lua_tonumber(L, -1);
			lua_getfield(L, -2, "loss");
			loss = lua_tonumber(L, -1);
			lua_pop(L, 1);
			have = 1;
			if (acc > best) {
				best = acc;
				best_round = i;
			}
		}
		lua_pop(L, 2);
	}
	lua_createtable(L, 0, 8);
	lua_pushvalue(L, rows);
	lua_setfield(L, -2, "rounds");
	if (have) {
		lfm_set_num(L, "accuracy", acc);
		lfm_set_num(L, "loss", loss);
	}
	lfm_set_num(L, "best_accuracy", best);
	lfm_set_int(L, "best_round", best_round);
	lfm_set_num(L, "seconds", seconds);
	lfm_set_int(L, "params", (lua_Integer)nparams);
	luaL_setmetatable(L, LFM_RESULT);
}

/* result:save_model(path) -> result. Like write_csv, it does nothing
 * where the script runs as a client or peer node, or as the launcher of
 * `fedmesh launch` (whose server node, running the same line, saves it). */
static int
result_save_model(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checkstring(L, 2);
	if (lua_getfield(L, 1, "model") != LUA_TUSERDATA) {
		int node = lua_getfield(L, 1, "role") == LUA_TSTRING;
		lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.mode");
		const char *mode = lua_tostring(L, -1);
		if (node || (mode != NULL && strcmp(mode, "launch") == 0)) {
			lua_settop(L, 1);
			return 1;
		}
		return luaL_error(L, "save_model: this result has no model (the "
		    "monitor of a peer-to-peer deployment only collects metrics; "
		    "each peer keeps its own model)");
	}
	lua_getfield(L, -1, "save");
	lua_insert(L, -2);
	lua_pushvalue(L, 2);
	lua_call(L, 2, 0);
	lua_settop(L, 1);
	return 1;
}

static int
exp_tostring(lua_State *L)
{
	lexp *x = lfm_check_exp(L, 1);
	lua_pushfstring(L, "fedmesh.Experiment(%s, %d clients, %d per round, "
	    "%d rounds)", x->cfg.aggregator ? x->cfg.aggregator->desc->name
	                                     : "?",
	    (int)(x->cfg.part ? x->cfg.part->nclients : 0),
	    (int)x->cfg.clients_per_round, (int)x->cfg.rounds);
	return 1;
}

void
lfm_register_experiment(lua_State *L)
{
	static const luaL_Reg methods[] = { { "simulate", lfm_exp_simulate },
		{ "run", lfm_exp_run }, { NULL, NULL } };
	static const luaL_Reg rmethods[] = {
		{ "write_csv", lfm_result_write_csv },
		{ "write_jsonl", lfm_result_write_jsonl },
		{ "save_model", result_save_model }, { NULL, NULL } };
	if (luaL_newmetatable(L, LFM_EXPERIMENT)) {
		lua_pushcfunction(L, exp_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, exp_tostring);
		lua_setfield(L, -2, "__tostring");
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, LFM_RESULT)) {
		luaL_newlib(L, rmethods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
}
