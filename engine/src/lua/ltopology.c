/* SPDX-License-Identifier: MIT */
/*
 * ltopology.c: fm.topology: star and hierarchical federations (plain
 * tables the experiment reads) and peer-to-peer graphs (fedmesh.Graph
 * userdata owning an fmi_graph). Lua numbers peers 1..N, C 0..N-1.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"
#include "topo/graph.h"

#define TOPO_MAX_CLIENTS 100000000
#define TOPO_MAX_LEVELS 16
#define TOPO_MAX_FANOUT 1000000

typedef struct lfm_graph {
	fmi_graph *g; /* NULL once collected */
} lfm_graph;

struct fmi_graph *
lfm_to_graph(lua_State *L, int idx)
{
	lfm_graph *u = luaL_testudata(L, idx, LFM_GRAPH);
	return u != NULL ? u->g : NULL;
}

static fmi_graph *
check_graph(lua_State *L, int idx)
{
	lfm_graph *u = luaL_checkudata(L, idx, LFM_GRAPH);
	if (u->g == NULL) {
		luaL_error(L, "fedmesh.Graph: the graph was released");
	}
	return u->g;
}

/* ---- describe() tables -------------------------------------------------- */

static void
set_bool(lua_State *L, const char *k, int v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, k);
}

/* The describe() table; NaN spectral values (not computed) stay nil. */
static void
push_desc(lua_State *L, const char *kind, const fmi_graph_desc *d,
    int directed, int time_varying)
{
	lua_createtable(L, 0, 14);
	lfm_set_str(L, "kind", kind);
	lfm_set_int(L, "nodes", d->nodes);
	lfm_set_int(L, "edges", (lua_Integer)d->edges);
	lfm_set_int(L, "degree_min", d->degree_min);
	lfm_set_int(L, "degree_max", d->degree_max);
	lfm_set_num(L, "degree_mean", d->degree_mean);
	set_bool(L, "connected", d->connected);
	if (d->diameter == UINT32_MAX) {
		lfm_set_num(L, "diameter", HUGE_VAL);
	} else {
		lfm_set_int(L, "diameter", d->diameter);
	}
	if (!isnan(d->slem)) {
		lfm_set_num(L, "slem", d->slem);
		lfm_set_num(L, "spectral_gap", d->spectral_gap);
	}
	set_bool(L, "directed", directed);
	set_bool(L, "time_varying", time_varying);
	lfm_set_int(L, "samples", d->samples);
}

/* ---- fedmesh.Graph methods ---------------------------------------------- */

static int
gr_describe(lua_State *L)
{
	fmi_graph *g = check_graph(L, 1);
	fmi_graph_desc d;
	fm_error e;
	if (fmi_graph_describe(g, &d, &e) != FM_OK) {
		return lfm_raise(L, "fedmesh.Graph:describe", &e);
	}
	push_desc(L, fmi_graph_kind(g), &d, fmi_graph_directed(g),
	    fmi_graph_time_varying(g));
	return 1;
}

/* #g -> N (g.peers reads the same) */
static int
gr_len(lua_State *L)
{
	lua_pushinteger(L, fmi_graph_n(check_graph(L, 1)));
	return 1;
}

/* Peer argument i (1-based) as a 0-based id. */
static uint32_t
check_peer(lua_State *L, fmi_graph *g, int arg)
{
	lua_Integer i = luaL_checkinteger(L, arg);
	luaL_argcheck(L, i >= 1 && i <= (lua_Integer)fmi_graph_n(g), arg,
	    lua_pushfstring(L, "peer %I is outside 1..%d", i,
	    (int)fmi_graph_n(g)));
	return (uint32_t)(i - 1);
}

static void
round_adj(lua_State *L, fmi_graph *g, int arg, fmi_adj *a)
{
	lua_Integer r = luaL_optinteger(L, arg, 1);
	luaL_argcheck(L, r >= 1 && r <= UINT32_MAX, arg,
	    "rounds are numbered from 1");
	fm_error e;
	if (fmi_graph_round(g, (uint32_t)r, a, &e) != FM_OK) {
		lfm_raise(L, "fedmesh.Graph", &e);
	}
}

/* g:neighbours(i [, round]) -> sorted in-neighbours of i, 1-based */
static int
gr_neighbours(lua_State *L)
{
	fmi_graph *g = check_graph(L, 1);
	uint32_t i = check_peer(L, g, 2);
	fmi_adj a;
	round_adj(L, g, 3, &a);
	uint32_t k = fmi_adj_in_degree(&a, i);
	lua_createtable(L, (int)k, 0);
	for (uint32_t p = 0; p < k; p++) {
		lua_pushinteger(L, (lua_Integer)a.in_adj[a.in_off[i] + p] + 1);
		lua_rawseti(L, -2, p + 1);
	}
	return 1;
}

/* g:weight(i, j [, round]) -> W_ij */
static int
gr_weight(lua_State *L)
{
	fmi_graph *g = check_graph(L, 1);
	uint32_t i = check_peer(L, g, 2), j = check_peer(L, g, 3);
	fmi_adj a;
	round_adj(L, g, 4, &a);
	lua_pushnumber(L, fmi_adj_weight(&a, i, j));
	return 1;
}

static int
gr_tostring(lua_State *L)
{
	fmi_graph *g = check_graph(L, 1);
	lua_pushfstring(L, "fedmesh.Graph(%s, %d peers)", fmi_graph_kind(g),
	    (int)fmi_graph_n(g));
	return 1;
}

static int
gr_gc(lua_State *L)
{
	lfm_graph *u = luaL_checkudata(L, 1, LFM_GRAPH);
	fmi_graph_free(u->g);
	u->g = NULL;
	return 0;
}

/* __index: the fields kind and peers, else the methods (upvalue 1). */
static int
gr_index(lua_State *L)
{
	fmi_graph *g = check_graph(L, 1);
	const char *k = lua_tostring(L, 2);
	if (k != NULL && strcmp(k, "kind") == 0) {
		lua_pushstring(L, fmi_graph_kind(g));
	} else if (k != NULL && strcmp(k, "peers") == 0) {
		lua_pushinteger(L, fmi_graph_n(g));
	} else {
		lua_pushvalue(L, 2);
		lua_gettable(L, lua_upvalueindex(1));
	}
	return 1;
}

static void
register_graph(lua_State *L)
{
	static const luaL_Reg methods[] = { { "describe", gr_describe },
		{ "neighbours", gr_neighbours }, { "weight", gr_weight },
		{ NULL, NULL } };
	if (luaL_newmetatable(L, LFM_GRAPH)) {
		lua_pushcfunction(L, gr_tostring);
		lua_setfield(L, -2, "__tostring");
		lua_pushcfunction(L, gr_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, gr_len);
		lua_setfield(L, -2, "__len");
		luaL_newlib(L, methods);
		lua_pushcclosure(L, gr_index, 1);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
}

/* ---- peer-to-peer builders --------------------------------------------- */

/* Builds s into a new fedmesh.Graph at the top of the stack. */
static int
push_graph(lua_State *L, const char *fn, const fmi_graph_spec *s)
{
	lfm_graph *u = lua_newuserdatauv(L, sizeof *u, 0);
	u->g = NULL;
	luaL_setmetatable(L, LFM_GRAPH);
	fm_error e;
	if (fmi_graph_new(s, &u->g, &e) != FM_OK) {
		size_t k = strlen(s->kind); /* "ring: n = ..." -> "n = ..." */
		if (strncmp(e.msg, s->kind, k) == 0 && e.msg[k] == ':') {
			memmove(e.msg, e.msg + k + 2, strlen(e.msg + k + 2) + 1);
		}
		return lfm_raise(L, fn, &e);
	}
	return 1;
}

static void
require_field(lua_State *L, const char *fn, const char *k)
{
	int ty = lua_getfield(L, 1, k);
	lua_pop(L, 1);
	if (ty == LUA_TNIL) {
		luaL_error(L, "%s: field '%s' is required", fn, k);
	}
}

static lua_Integer
req_int(lua_State *L, const char *fn, const char *k, lua_Integer min,
    lua_Integer max)
{
	require_field(L, fn, k);
	return lfm_opt_int(L, 1, fn, k, min, min, max);
}

/* A probability (lfm_opt_num's range message uses %g, which
 * lua_pushfstring does not know). */
static double
req_prob(lua_State *L, const char *fn, const char *k)
{
	require_field(L, fn, k);
	int ty = lua_getfield(L, 1, k);
	lua_Number v = lua_tonumber(L, -1);
	if (ty != LUA_TNUMBER) {
		luaL_error(L, "%s: field '%s' must be a number, got %s", fn, k,
		    luaL_typename(L, -1));
	}
	if (!(v >= 0 && v <= 1)) {
		luaL_error(L, "%s: field '%s' = %f is out of range [0, 1]", fn,
		    k, v);
	}
	lua_pop(L, 1);
	return v;
}

/* Reads field k of the options (argument 1) into s. */
static void
read_field(lua_State *L, const char *fn, const char *k, fmi_graph_spec *s)
{
	if (strcmp(k, "peers") == 0) {
		s->n = (uint32_t)req_int(L, fn, k, 1, FMI_GRAPH_MAX_N);
	} else if (strcmp(k, "rows") == 0) {
		s->rows = (uint32_t)req_int(L, fn, k, 1, FMI_GRAPH_MAX_N);
	} else if (strcmp(k, "cols") == 0) {
		s->cols = (uint32_t)req_int(L, fn, k, 1, FMI_GRAPH_MAX_N);
	} else if (strcmp(k, "k") == 0) {
		s->k = (uint32_t)req_int(L, fn, k, 0, FMI_GRAPH_MAX_N);
	} else if (strcmp(k, "p") == 0 || strcmp(k, "rewire") == 0) {
		s->p = req_prob(L, fn, k);
	} else if (strcmp(k, "seed") == 0) {
		s->seed = (uint64_t)lfm_opt_int(L, 1, fn, k, 1, 0,
		    LUA_MAXINTEGER);
	}
}

/* fm.topology.<kind>{ fields... }: checks the option table and reads the
 * fields the kind takes. */
static void
read_spec(lua_State *L, const char *fn, const char *const *fields,
    fmi_graph_spec *s)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lfm_check_fields(L, 1, fn, fields);
	s->seed = 1;
	for (size_t i = 0; fields[i] != NULL; i++) {
		read_field(L, fn, fields[i], s);
	}
}

static int
build(lua_State *L, const char *kind, const char *const *fields)
{
	char fn[64];
	snprintf(fn, sizeof fn, "fm.topology.%s", kind);
	fmi_graph_spec s = { .kind = kind };
	read_spec(L, fn, fields, &s);
	return push_graph(L, fn, &s);
}

/* fm.topology.ring{ peers = N } */
static int
l_ring(lua_State *L)
{
	static const char *const f[] = { "peers", NULL };
	return build(L, "ring", f);
}

/* fm.topology.torus{ rows = R, cols = C } */
static int
l_torus(lua_State *L)
{
	static const char *const f[] = { "rows", "cols", NULL };
	return build(L, "torus", f);
}

/* fm.topology.complete{ peers = N } */
static int
l_complete(lua_State *L)
{
	static const char *const f[] = { "peers", NULL };
	return build(L, "complete", f);
}

/* fm.topology.kregular{ peers = N, k = K, seed = 1 } */
static int
l_kregular(lua_State *L)
{
	static const char *const f[] = { "peers", "k", "seed", NULL };
	return build(L, "kregular", f);
}

/* fm.topology.erdos_renyi{ peers = N, p = P, seed = 1 } */
static int
l_erdos_renyi(lua_State *L)
{
	static const char *const f[] = { "peers", "p", "seed", NULL };
	return build(L, "erdos_renyi", f);
}

/* fm.topology.small_world{ peers = N, k = K, rewire = P, seed = 1 } */
static int
l_small_world(lua_State *L)
{
	static const char *const f[] = { "peers", "k", "rewire", "seed",
		NULL };
	return build(L, "small_world", f);
}

/* fm.topology.matching{ peers = N, seed = 1 }: time-varying */
static int
l_matching(lua_State *L)
{
	static const char *const f[] = { "peers", "seed", NULL };
	return build(L, "matching", f);
}

/* fm.topology.random_kregular{ peers = N, k = K, seed = 1 }: time-varying */
static int
l_random_kregular(lua_State *L)
{
	static const char *const f[] = { "peers", "k", "seed", NULL };
	return build(L, "random_kregular", f);
}

/* Entry e (1-based) of the edge list at index t: two peers in 1..n. */
static void
read_edge(lua_State *L, int t, lua_Integer e, uint32_t n, uint32_t *out)
{
	const char *fn = "fm.topology.edges";
	if (lua_rawgeti(L, t, e) != LUA_TTABLE || luaL_len(L, -1) != 2) {
		luaL_error(L, "%s: edges[%I] must be a pair of peers, e.g. "
		    "{ 1, 2 }", fn, e);
	}
	for (int k = 0; k < 2; k++) {
		int ok;
		lua_rawgeti(L, -1, k + 1);
		lua_Integer v = lua_tointegerx(L, -1, &ok);
		if (!ok || v < 1 || v > (lua_Integer)n) {
			luaL_error(L, "%s: edges[%I][%d] must be a peer in 1..%d",
			    fn, e, k + 1, (int)n);
		}
		out[k] = (uint32_t)(v - 1);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if (out[0] == out[1]) {
		luaL_error(L, "%s: edges[%I] = { %d, %d } is a self-loop", fn, e,
		    (int)out[0] + 1, (int)out[1] + 1);
	}
}

/* fm.topology.edges{ peers = N, edges = { {1, 2}, ... }, directed = false } */
static int
l_edges(lua_State *L)
{
	static const char *const f[] = { "peers", "edges", "directed", NULL };
	const char *fn = "fm.topology.edges";
	fmi_graph_spec s = { .kind = "edges" };
	read_spec(L, fn, f, &s);
	s.directed = lfm_opt_bool(L, 1, fn, "directed", 0);
	if (lua_getfield(L, 1, "edges") != LUA_TTABLE) {
		return luaL_error(L, "%s: field 'edges' must be a list of pairs "
		    "of peers, e.g. { {1, 2}, {2, 3} }", fn);
	}
	int t = lua_gettop(L);
	lua_Integer m = luaL_len(L, t);
	luaL_argcheck(L, m < (lua_Integer)(UINT32_MAX / 4), 1, "too many edges");
	uint32_t *pairs = lua_newuserdatauv(L, 2 * sizeof *pairs *
	    (size_t)(m + 1), 0); /* freed by the GC, even on errors */
	for (lua_Integer e = 1; e <= m; e++) {
		read_edge(L, t, e, s.n, pairs + 2 * (e - 1));
	}
	s.edges = pairs;
	s.nedges = (size_t)m;
	return push_graph(L, fn, &s);
}

/* ---- star and hierarchical federations ---------------------------------- */

/* Reads the fan-outs list at index t into f; returns the number of levels
 * and sets *clients to their product. */
static int
read_fanouts(lua_State *L, int t, const char *fn, lua_Integer *f,
    lua_Integer *clients)
{
	lua_Integer n = luaL_len(L, t);
	if (n < 1 || n > TOPO_MAX_LEVELS) {
		luaL_error(L, "%s: field 'fanouts' must list 1 to %d fan-outs, "
		    "top-down, e.g. { 4, 25 }", fn, TOPO_MAX_LEVELS);
	}
	*clients = 1;
	for (lua_Integer i = 1; i <= n; i++) {
		int ok;
		lua_rawgeti(L, t, i);
		lua_Integer v = lua_tointegerx(L, -1, &ok);
		lua_pop(L, 1);
		if (!ok || v < 1 || v > TOPO_MAX_FANOUT) {
			luaL_error(L, "%s: fanouts[%I] must be an integer in "
			    "1..%d", fn, i, TOPO_MAX_FANOUT);
		}
		f[i - 1] = v;
		if (*clients > TOPO_MAX_CLIENTS / v) {
			luaL_error(L, "%s: the fan-outs give more than %d "
			    "clients", fn, TOPO_MAX_CLIENTS);
		}
		*clients *= v;
	}
	return (int)n;
}

/* Reads `every` (nil: all 1) into a new list at the top of the stack. */
static void
push_every(lua_State *L, const char *fn, int levels)
{
	int ty = lua_getfield(L, 1, "every");
	if (ty != LUA_TNIL && (ty != LUA_TTABLE || luaL_len(L, -1) != levels)) {
		luaL_error(L, "%s: field 'every' must list %d periods, one per "
		    "level of 'fanouts' (top-down), e.g. { 5, 1 }", fn, levels);
	}
	lua_createtable(L, levels, 0);
	for (int i = 1; i <= levels; i++) {
		lua_Integer v = 1;
		int ok = 1;
		if (ty != LUA_TNIL) {
			lua_rawgeti(L, -2, i);
			v = lua_tointegerx(L, -1, &ok);
			lua_pop(L, 1);
		}
		if (!ok || v < 1 || v > 1000000) {
			luaL_error(L, "%s: every[%d] must be an integer >= 1",
			    fn, i);
		}
		if (i == levels && v != 1) {
			luaL_error(L, "%s: every[%d] must be 1: the edge "
			    "aggregators aggregate their clients every round",
			    fn, i);
		}
		lua_pushinteger(L, v);
		lua_rawseti(L, -2, i);
	}
	lua_remove(L, -2);
}

static int tree_describe(lua_State *L);

static void
set_describe(lua_State *L)
{
	lua_pushcfunction(L, tree_describe);
	lua_setfield(L, -2, "describe");
}

/* fm.topology.star{ clients = N } -> { kind = "star", clients = N,
 * describe = f } */
static int
l_star(lua_State *L)
{
	static const char *const f[] = { "clients", NULL };
	luaL_checktype(L, 1, LUA_TTABLE);
	lfm_check_fields(L, 1, "fm.topology.star", f);
	lua_Integer n = lfm_opt_int(L, 1, "fm.topology.star", "clients", 0, 1,
	    TOPO_MAX_CLIENTS);
	lua_createtable(L, 0, 3);
	lua_pushliteral(L, "star");
	lua_setfield(L, -2, "kind");
	if (n > 0) {
		lfm_set_int(L, "clients", n);
	}
	set_describe(L);
	return 1;
}

/* fm.topology.hierarchical{ fanouts = { 4, 25 }, every = { 5, 1 }
 * [, aggregators = { "fedavg", { "fedadam", lr = 0.01 } }] } ->
 * { kind = "hierarchical", fanouts, every, [aggregators,] clients = 100,
 *   describe = f }; fm.experiment checks the aggregators. */
static int
l_hierarchical(lua_State *L)
{
	static const char *const f[] = { "fanouts", "every", "aggregators",
		NULL };
	const char *fn = "fm.topology.hierarchical";
	lua_Integer fan[TOPO_MAX_LEVELS], clients;
	luaL_checktype(L, 1, LUA_TTABLE);
	lfm_check_fields(L, 1, fn, f);
	if (lua_getfield(L, 1, "fanouts") != LUA_TTABLE) {
		return luaL_error(L, "%s: field 'fanouts' (a list of fan-outs, "
		    "top-down, e.g. { 4, 25 }) is required", fn);
	}
	int levels = read_fanouts(L, -1, fn, fan, &clients);
	lua_pop(L, 1);
	lua_createtable(L, 0, 5);
	lua_pushliteral(L, "hierarchical");
	lua_setfield(L, -2, "kind");
	lua_createtable(L, levels, 0);
	for (int i = 0; i < levels; i++) {
		lua_pushinteger(L, fan[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "fanouts");
	push_every(L, fn, levels);
	lua_setfield(L, -2, "every");
	lfm_set_int(L, "clients", clients);
	if (lua_getfield(L, 1, "aggregators") != LUA_TNIL) {
		if (!lua_istable(L, -1) || luaL_len(L, -1) != levels) {
			return luaL_error(L, "%s: field 'aggregators' must list "
			    "one aggregator per level (%d), top-down, e.g. "
			    "{ \"fedavg\", \"fedavg\" }", fn, levels);
		}
		lua_setfield(L, -2, "aggregators");
	} else {
		lua_pop(L, 1);
	}
	set_describe(L);
	return 1;
}

/* The tree of a hierarchy: nodes numbered level by level from the root
 * (0); pairs (parent, child) into a buffer at the top of the stack. */
static uint32_t *
tree_edges(lua_State *L, const lua_Integer *fan, int levels, uint32_t *n)
{
	uint64_t nodes = 1, width = 1;
	for (int l = 0; l < levels; l++) {
		width *= (uint64_t)fan[l];
		nodes += width;
	}
	if (nodes > FMI_GRAPH_MAX_N) {
		luaL_error(L, "describe: a tree of %d nodes is too large (at "
		    "most %d)", (int)nodes, (int)FMI_GRAPH_MAX_N);
	}
	uint32_t *pairs = lua_newuserdatauv(L, 2 * sizeof *pairs * nodes, 0);
	uint32_t up = 0, first = 1, at = 0; /* first id of each level */
	width = 1;
	for (int l = 0; l < levels; l++) {
		for (uint64_t j = 0; j < width * (uint64_t)fan[l]; j++) {
			pairs[at++] = up + (uint32_t)(j / (uint64_t)fan[l]);
			pairs[at++] = first + (uint32_t)j;
		}
		up = first;
		width *= (uint64_t)fan[l];
		first += (uint32_t)width;
	}
	*n = (uint32_t)nodes;
	return pairs;
}

/* Builds the tree of the star or hierarchy table at index 1. */
static int
tree_graph(lua_State *L, const char *kind, fmi_graph **g, int *levels,
    fm_error *e)
{
	fmi_graph_spec s = { .kind = "star" };
	lua_Integer fan[TOPO_MAX_LEVELS], clients;
	*levels = 1;
	if (strcmp(kind, "star") == 0) {
		clients = lfm_opt_int(L, 1, "describe", "clients", 0, 0,
		    TOPO_MAX_CLIENTS);
		if (clients == 0) {
			luaL_error(L, "describe: the star has no clients: "
			    "fm.topology.star{ clients = N }");
		}
		s.n = (uint32_t)clients + 1;
		return fmi_graph_new(&s, g, e);
	}
	if (lua_getfield(L, 1, "fanouts") != LUA_TTABLE) {
		luaL_error(L, "describe: field 'fanouts' is missing");
	}
	*levels = read_fanouts(L, -1, "describe", fan, &clients);
	s.kind = "edges";
	s.edges = tree_edges(L, fan, *levels, &s.n);
	s.nedges = s.n - 1;
	return fmi_graph_new(&s, g, e);
}

/* t:describe() for star and hierarchical tables: the tree of the
 * federation; spectral values only up to FMI_GRAPH_DESCRIBE_MAX_N nodes. */
static int
tree_describe(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *kind = lfm_opt_str(L, 1, "describe", "kind", "star");
	if (strcmp(kind, "star") != 0 && strcmp(kind, "hierarchical") != 0) {
		return luaL_error(L, "describe: unknown topology kind '%s'",
		    kind);
	}
	fmi_graph *g = NULL;
	fmi_graph_desc d;
	fm_error e;
	int levels;
	int rc = tree_graph(L, kind, &g, &levels, &e);
	if (rc == FM_OK) {
		unsigned fl = fmi_graph_n(g) > FMI_GRAPH_DESCRIBE_MAX_N
		    ? FMI_GRAPH_DESCRIBE_NO_SPECTRAL : 0;
		rc = fmi_graph_describe_ex(g, fl, &d, &e);
	}
	fmi_graph_free(g);
	if (rc != FM_OK) {
		return lfm_raise(L, "describe", &e);
	}
	push_desc(L, kind, &d, 0, 0);
	lfm_set_int(L, "levels", levels);
	return 1;
}

void
lfm_open_topology(lua_State *L)
{
	static const luaL_Reg f[] = {
		{ "star", l_star },
		{ "hierarchical", l_hierarchical },
		{ "ring", l_ring },
		{ "torus", l_torus },
		{ "complete", l_complete },
		{ "kregular", l_kregular },
		{ "erdos_renyi", l_erdos_renyi },
		{ "small_world", l_small_world },
		{ "edges", l_edges },
		{ "matching", l_matching },
		{ "random_kregular", l_random_kregular },
		{ NULL, NULL },
	};
	register_graph(L);
	luaL_newlib(L, f);
}
