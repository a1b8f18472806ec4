/* SPDX-License-Identifier: MIT */
/* laggregate.c: fm.aggregate: run an aggregator plugin on Lua vectors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"
#include "node/pipeline.h"

/* Reads the Lua array at idx into x[n] (n = its length, checked). */
static void
read_vector(lua_State *L, int idx, const char *what, float *x, size_t n)
{
	if (!lua_istable(L, idx) || (size_t)luaL_len(L, idx) != n) {
		luaL_error(L, "fm.aggregate: %s must be a list of %d numbers", what,
		    (int)n);
	}
	for (size_t i = 0; i < n; i++) {
		int ok;
		lua_rawgeti(L, idx, (lua_Integer)i + 1);
		x[i] = (float)lua_tonumberx(L, -1, &ok);
		lua_pop(L, 1);
		if (!ok) {
			luaL_error(L, "fm.aggregate: %s[%d] is not a number", what,
			    (int)i + 1);
		}
	}
}

/* The model size: #global, else #updates[1].weights. */
static size_t
model_dim(lua_State *L)
{
	if (!lua_isnoneornil(L, 4)) {
		return (size_t)luaL_len(L, 4);
	}
	lua_rawgeti(L, 2, 1);
	if (!lua_istable(L, -1) || lua_getfield(L, -1, "weights") != LUA_TTABLE) {
		luaL_error(L, "fm.aggregate: updates[1].weights must be a list");
	}
	size_t n = (size_t)luaL_len(L, -1);
	lua_pop(L, 2);
	return n;
}

/* Reads every update as a delta from global into d[n x dim] and its
 * example count into ne[n]. Raises on bad input, before any plugin code
 * runs, so nothing leaks. */
static void
read_updates(lua_State *L, const float *global, float *d, uint64_t *ne,
    size_t dim, lua_Integer n)
{
	for (lua_Integer k = 1; k <= n; k++) {
		float *w = d + (size_t)(k - 1) * dim;
		lua_rawgeti(L, 2, k);
		if (!lua_istable(L, -1) ||
		    lua_getfield(L, -1, "weights") != LUA_TTABLE) {
			luaL_error(L, "fm.aggregate: updates[%d] must be { weights "
			    "= {...}, num_examples = n }", (int)k);
		}
		read_vector(L, -1, "weights", w, dim);
		lua_getfield(L, -2, "num_examples");
		lua_Integer e = luaL_optinteger(L, -1, 1);
		lua_pop(L, 3);
		ne[k - 1] = (uint64_t)FMI_MAX(e, 0);
		for (size_t i = 0; i < dim; i++) {
			w[i] -= global[i];
		}
	}
}

/* One round through the aggregation pipeline, as on a server: the
 * defence (if any), then the aggregator, over deltas[n][dim]; the new
 * model into global. No Lua errors in here; why gets the reason. */
static int
run_round(fmi_agg *a, fmi_def *d, fmi_loc *l, float *global,
    const float *deltas, const uint64_t *ne, int32_t *ids, size_t dim,
    lua_Integer n, const float *server_delta, char *why, size_t nwhy)
{
	fmi_pipe p = { .def = d, .agg = a, .loc = l };
	fm_error e;
	for (lua_Integer i = 0; i < n; i++) {
		ids[i] = (int32_t)i + 1;
	}
	fm_round r = { sizeof r, 1, (uint32_t)n, (uint32_t)n, ids, global,
		dim, 1.0, (double)n };
	int rv = fmi_pipe_init(&p, dim, (uint32_t)n, 0, &e);
	if (rv == FM_OK) {
		rv = fmi_pipe_begin(&p, &r);
	}
	for (lua_Integer k = 0; rv == FM_OK && k < n; k++) {
		fm_update u = { sizeof u, (int32_t)k + 1, 1, 0,
			deltas + (size_t)k * dim, dim, ne[k], 0.0, 0 };
		rv = fmi_pipe_add(&p, &u);
	}
	fmi_pipe_ctx c = { global, server_delta, NULL, 0, NULL, NULL, 0 };
	if (rv == FM_OK) {
		rv = fmi_pipe_run(&p, &c);
	}
	for (uint32_t k = 0; rv == FM_OK && fmi_pipe_holds(&p) && k < p.n;
	    k++) {
		rv = p.row_status[k] == FMI_ROW_UNUSED ? FM_EINVAL : FM_OK;
	}
	if (rv == FM_OK) {
		rv = fmi_pipe_finish(&p, &r, global, "the");
	}
	snprintf(why, nwhy, "%s", p.why[0] != '\0' ? p.why : fm_strerror(rv));
	fmi_pipe_fini(&p);
	return rv;
}

/* An optional 5th argument: the server's own model trained on its root
 * data (FLTrust), as a delta from global into out[dim]. */
static const float *
read_server_delta(lua_State *L, const float *global, size_t dim)
{
	if (lua_isnoneornil(L, 5)) {
		return NULL;
	}
	float *sd = lua_newuserdatauv(L, dim * sizeof *sd, 0);
	read_vector(L, 5, "server_model", sd, dim);
	for (size_t i = 0; i < dim; i++) {
		sd[i] -= global[i];
	}
	return sd;
}

/* fm.aggregate(name, updates, params [, global [, server_model]]) ->
 * new global (list). updates: { { weights = {...}, num_examples = n },
 * ... } client models; global: the current model (zeros when omitted).
 * name is an aggregator (one round of it), a defence (the defence, then
 * FedAvg over the updates it keeps) or a local-training rule (FedAvg and
 * the rule's server side: SCAFFOLD's step size); server_model is
 * FLTrust's model trained on the server's root data. */
int
lfm_aggregate(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 5); /* absent arguments are nil, whatever we push */
	lua_Integer n = luaL_len(L, 2);
	fmi_param_in in[64];
	size_t nin = lua_istable(L, 3)
	    ? lfm_read_params(L, 3, "fm.aggregate", name, in, 64) : 0;
	const fmi_component *c = fmi_registry_find(lfm_registry(L),
	    FM_KIND_AGGREGATOR, name);
	if (c == NULL) {
		c = fmi_registry_find(lfm_registry(L), FM_KIND_DEFENCE, name);
	}
	if (c == NULL) { /* a local rule's server side, beside FedAvg */
		c = fmi_registry_find(lfm_registry(L), FM_KIND_LOCAL, name);
	}
	if (c == NULL) {
		return luaL_error(L, "fm.aggregate: unknown aggregator or defence "
		    "'%s', nor a local-training rule of that name (see "
		    "fedmesh plugins)", name);
	}
	size_t dim = n > 0 || !lua_isnoneornil(L, 4) ? model_dim(L) : 0;
	if (dim == 0) {
		return luaL_error(L, "fm.aggregate: no model (give updates or a "
		    "global model)");
	}
	float *global = lua_newuserdatauv(L, dim * sizeof(float), 0);
	uint64_t *ne = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *ne, 0);
	int32_t *ids = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *ids, 0);
	memset(global, 0, dim * sizeof(float));
	if (!lua_isnoneornil(L, 4)) {
		read_vector(L, 4, "global", global, dim);
	}
	/* dense; the pipeline holds them as aligned rows when a stage needs */
	float *deltas = lua_newuserdatauv(L, (size_t)(n + 1) * dim *
	    sizeof *deltas, 0);
	read_updates(L, global, deltas, ne, dim, n);
	const float *sdelta = read_server_delta(L, global, dim);
	fm_value *vals = lua_newuserdatauv(L, (fmi_component_nparams(c) + 1) *
	    sizeof *vals, 0);
	fm_error e;
	int rv;
	if (fmi_params_resolve(c, in, nin, vals, &e) != FM_OK) {
		return lfm_raise(L, "fm.aggregate", &e);
	}
	/* As on a server: one BLAS thread, so the numbers match an
	 * experiment's. */
	int blas = fmi_blas_get_threads();
	fmi_blas_set_threads(1);
	fmi_agg *a = NULL;
	fmi_def *d = NULL;
	fmi_loc *l = NULL;
	char why[256];
	const fmi_component *avg = c->kind != FM_KIND_AGGREGATOR ?
	    fmi_registry_find(lfm_registry(L), FM_KIND_AGGREGATOR, "fedavg") :
	    c;
	fmi_open_args oa = { c == avg ? vals : NULL, dim, FM_ROLE_SERVER,
		FM_NODE_SERVER, 1, (uint32_t)n, 0, NULL };
	fmi_open_args od = { vals, dim, FM_ROLE_SERVER, FM_NODE_SERVER, 1,
		(uint32_t)n, sdelta != NULL ? FM_INST_ROOT_DATA : 0, NULL };
	rv = avg == NULL ? fm_error_set(&e, FM_ENOENT, "a defence is "
	    "followed by FedAvg, and the fedavg plugin is not loaded") :
	    fmi_agg_open(&a, avg, &oa, &e);
	if (rv == FM_OK && c->kind == FM_KIND_DEFENCE) {
		rv = fmi_def_open(&d, c, &od, &e);
	}
	if (rv == FM_OK && c->kind == FM_KIND_LOCAL) {
		od.flags = 0;
		rv = fmi_loc_open(&l, c, &od, &e);
	}
	int opened = rv == FM_OK;
	if (opened) {
		rv = run_round(a, d, l, global, deltas, ne, ids, dim, n,
		    sdelta, why, sizeof why);
	}
	fmi_loc_close(l);
	fmi_def_close(d);
	fmi_agg_close(a);
	fmi_blas_set_threads(blas);
	if (!opened) {
		return lfm_raise(L, "fm.aggregate", &e);
	}
	if (rv != FM_OK) {
		return luaL_error(L, "fm.aggregate: %s failed: %s", name, why);
	}
	lua_createtable(L, (int)dim, 0);
	for (size_t i = 0; i < dim; i++) {
		lua_pushnumber(L, global[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}
