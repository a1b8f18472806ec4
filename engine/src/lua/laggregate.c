/* SPDX-License-Identifier: MIT */
/* laggregate.c: fm.aggregate: run an aggregator plugin on Lua vectors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"

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

/* One round through the instance; no Lua errors in here. */
static int
run_round(fmi_agg *a, float *global, const float *d, const uint64_t *ne,
    int32_t *ids, size_t dim, lua_Integer n)
{
	for (lua_Integer i = 0; i < n; i++) {
		ids[i] = (int32_t)i + 1;
	}
	fm_round r = { 1, (uint32_t)n, ids, global, dim, (uint32_t)n, 1.0 };
	/* all updates in one call, as the server passes held rows */
	fm_update *u = malloc((size_t)(n + 1) * sizeof *u);
	int *status = malloc((size_t)(n + 1) * sizeof *status);
	int rv = u != NULL && status != NULL ? a->ops->a_begin(a->h.state, &r)
	                                     : FM_ENOMEM;
	for (lua_Integer k = 0; rv == FM_OK && k < n; k++) {
		u[k] = (fm_update) { (int32_t)k + 1, 1, d + (size_t)k * dim,
			dim, ne[k], 0.0, 0 };
	}
	if (rv == FM_OK) {
		rv = fmi_agg_accept_many(a, u, (uint32_t)n, status);
	}
	for (lua_Integer k = 0; rv == FM_OK && k < n; k++) {
		rv = status[k];
	}
	free(u);
	free(status);
	return rv == FM_OK ? a->ops->a_finish(a->h.state, global, dim) : rv;
}

/* A defence on rows of stride floats, then FedAvg over what it keeps. */
static int
run_defence(lua_State *L, fmi_def *d, float *global, float *rows,
    size_t stride, const uint64_t *ne, int32_t *ids, size_t dim,
    lua_Integer n, const float *server_delta)
{
	fm_update *u = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *u, 0);
	uint32_t *keep = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *keep, 0);
	uint64_t *kne = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *kne, 0);
	float *kept = lua_newuserdatauv(L, (size_t)(n + 1) * dim * sizeof *kept,
	    0);
	uint64_t *kept_ne = lua_newuserdatauv(L, (size_t)(n + 1) *
	    sizeof *kept_ne, 0);
	for (lua_Integer k = 0; k < n; k++) {
		u[k] = (fm_update) { (int32_t)k + 1, 1, rows + (size_t)k * stride,
			dim, ne[k], 0.0, 0 };
	}
	fm_defence_round r = { sizeof r, 1, (uint32_t)n, 0, dim, rows, stride,
		u, global, server_delta, keep, kne, 0, 0 };
	int rv = d->ops->d_apply(d->h.state, &r);
	for (uint32_t k = 0; rv == FM_OK && k < r.nkeep; k++) {
		if (r.nkeep > r.n || keep[k] >= r.n) {
			rv = FM_EPLUGIN;
			break;
		}
		memcpy(kept + (size_t)k * dim, u[keep[k]].delta,
		    dim * sizeof(float));
		kept_ne[k] = kne[k];
	}
	if (rv != FM_OK) {
		return rv;
	}
	const fmi_component *c = fmi_registry_find(lfm_registry(L),
	    FM_KIND_AGGREGATOR, "fedavg");
	fmi_agg *a = NULL;
	fm_error e;
	if (c == NULL || fmi_agg_open(&a, c, NULL, dim, FM_ROLE_SERVER,
	    FM_NODE_SERVER, 1, NULL, &e) != FM_OK) {
		return FM_ENOENT;
	}
	rv = run_round(a, global, kept, kept_ne, ids, dim, r.nkeep);
	fmi_agg_close(a);
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
 * name is an aggregator (one round of it) or a defence (the defence, then
 * FedAvg over the updates it keeps); server_model is FLTrust's model
 * trained on the server's root data. */
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
	if (c == NULL) {
		return luaL_error(L, "fm.aggregate: unknown aggregator or defence "
		    "'%s' (see fedmesh plugins)", name);
	}
	size_t dim = n > 0 || !lua_isnoneornil(L, 4) ? model_dim(L) : 0;
	if (dim == 0) {
		return luaL_error(L, "fm.aggregate: no model (give updates or a "
		    "global model)");
	}
	/* rows of stride floats, 64-byte aligned, as defences get them */
	size_t stride = (dim + 15) & ~(size_t)15;
	size_t cells = (size_t)(n + 1) * stride + 16;
	char *raw = lua_newuserdatauv(L, cells * sizeof(float) + 64, 0);
	float *deltas = (float *)(raw + (64 - ((uintptr_t)raw & 63)));
	float *global = lua_newuserdatauv(L, dim * sizeof(float), 0);
	uint64_t *ne = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *ne, 0);
	int32_t *ids = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *ids, 0);
	memset(global, 0, dim * sizeof(float));
	if (!lua_isnoneornil(L, 4)) {
		read_vector(L, 4, "global", global, dim);
	}
	float *tmp = lua_newuserdatauv(L, (size_t)(n + 1) * dim * sizeof *tmp,
	    0);
	read_updates(L, global, tmp, ne, dim, n);
	for (lua_Integer k = 0; k < n; k++) {
		memcpy(deltas + (size_t)k * stride, tmp + (size_t)k * dim,
		    dim * sizeof(float));
	}
	const float *sdelta = read_server_delta(L, global, dim);
	fm_value *vals = lua_newuserdatauv(L, (fmi_component_nparams(c) + 1) *
	    sizeof *vals, 0);
	fm_error e;
	int rv;
	if (fmi_params_resolve(c, in, nin, vals, &e) != FM_OK) {
		return lfm_raise(L, "fm.aggregate", &e);
	}
	/* As on a server: one BLAS thread (the plugins bring their own
	 * threads), so the numbers match an experiment's. */
	int blas = fmi_blas_get_threads();
	fmi_blas_set_threads(1);
	rv = FM_OK;
	if (c->kind == FM_KIND_DEFENCE) {
		fmi_def *d = NULL;
		if (fmi_def_open(&d, c, vals, dim, FM_ROLE_SERVER,
		    FM_NODE_SERVER, 1, (uint32_t)n,
		    sdelta != NULL ? FM_INST_ROOT_DATA : 0, &e) != FM_OK) {
			fmi_blas_set_threads(blas);
			return lfm_raise(L, "fm.aggregate", &e);
		}
		rv = run_defence(L, d, global, deltas, stride, ne, ids, dim, n,
		    sdelta);
		fmi_def_close(d);
	} else {
		fmi_agg *a = NULL;
		if (fmi_agg_open(&a, c, vals, dim, FM_ROLE_SERVER,
		    FM_NODE_SERVER, 1, NULL, &e) != FM_OK) {
			fmi_blas_set_threads(blas);
			return lfm_raise(L, "fm.aggregate", &e);
		}
		rv = run_round(a, global, tmp, ne, ids, dim, n);
		fmi_agg_close(a);
	}
	fmi_blas_set_threads(blas);
	if (rv != FM_OK) {
		return luaL_error(L, "fm.aggregate: %s failed: %s", name,
		    fm_strerror(rv));
	}
	lua_createtable(L, (int)dim, 0);
	for (size_t i = 0; i < dim; i++) {
		lua_pushnumber(L, global[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}
