/* SPDX-License-Identifier: MIT */
/* lfedmesh.c: the `fedmesh` Lua module: entry point, plugins, option helpers. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"

#define LFM_REGISTRY_KEY "fedmesh.registry"

/* ---- option tables ----------------------------------------------------- */

int
lfm_raise(lua_State *L, const char *fn, const fm_error *e)
{
	return luaL_error(L, "%s: %s", fn, e->msg);
}

static int
in_list(const char *s, const char *const *valid)
{
	for (size_t i = 0; valid[i] != NULL; i++) {
		if (strcmp(s, valid[i]) == 0) {
			return 1;
		}
	}
	return 0;
}

static void
push_valid_list(lua_State *L, const char *const *valid)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (size_t i = 0; valid[i] != NULL; i++) {
		if (i > 0) {
			luaL_addstring(&b, ", ");
		}
		luaL_addstring(&b, valid[i]);
	}
	luaL_pushresult(&b);
}

void
lfm_check_fields(lua_State *L, int idx, const char *fn,
    const char *const *valid)
{
	idx = lua_absindex(L, idx);
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			continue; /* array part, checked by the caller */
		}
		const char *k = lua_tostring(L, -1);
		if (!in_list(k, valid)) {
			const char *near = fmi_closest(k, valid);
			push_valid_list(L, valid);
			luaL_error(L, "%s: unknown field '%s'%s%s%s (valid fields: %s)",
			    fn, k, near ? " (did you mean '" : "", near ? near : "",
			    near ? "'?)" : "", lua_tostring(L, -1));
		}
	}
}

static int
get_field(lua_State *L, int t, const char *k)
{
	if (t == 0 || lua_isnoneornil(L, t)) {
		lua_pushnil(L);
		return LUA_TNIL;
	}
	return lua_getfield(L, t, k);
}

lua_Number
lfm_opt_num(lua_State *L, int t, const char *fn, const char *k,
    lua_Number def, lua_Number min, lua_Number max)
{
	int ty = get_field(L, t, k);
	lua_Number v = def;
	if (ty != LUA_TNIL) {
		int ok;
		v = lua_tonumberx(L, -1, &ok);
		if (!ok || ty != LUA_TNUMBER) {
			luaL_error(L, "%s: field '%s' must be a number, got %s", fn,
			    k, luaL_typename(L, -1));
		}
		if (!(v >= min && v <= max)) {
			/* lua_pushfstring has no %g */
			char msg[160];
			snprintf(msg, sizeof msg, "= %g is out of range [%g, %g]",
			    (double)v, (double)min, (double)max);
			luaL_error(L, "%s: field '%s' %s", fn, k, msg);
		}
	}
	lua_pop(L, 1);
	return v;
}

lua_Integer
lfm_opt_int(lua_State *L, int t, const char *fn, const char *k,
    lua_Integer def, lua_Integer min, lua_Integer max)
{
	int ty = get_field(L, t, k);
	lua_Integer v = def;
	if (ty != LUA_TNIL) {
		int ok;
		v = lua_tointegerx(L, -1, &ok);
		if (!ok || ty != LUA_TNUMBER) {
			luaL_error(L, "%s: field '%s' must be an integer, got %s",
			    fn, k, ty == LUA_TNUMBER ? "a fraction"
			                            : luaL_typename(L, -1));
		}
		if (v < min || v > max) {
			luaL_error(L, "%s: field '%s' = %I is out of range "
			    "[%I, %I]", fn, k, v, min, max);
		}
	}
	lua_pop(L, 1);
	return v;
}

int
lfm_opt_bool(lua_State *L, int t, const char *fn, const char *k, int def)
{
	int ty = get_field(L, t, k);
	int v = def;
	if (ty != LUA_TNIL) {
		if (ty != LUA_TBOOLEAN) {
			luaL_error(L, "%s: field '%s' must be a boolean, got %s",
			    fn, k, luaL_typename(L, -1));
		}
		v = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

/* The string stays valid while the option table does. */
const char *
lfm_opt_str(lua_State *L, int t, const char *fn, const char *k,
    const char *def)
{
	int ty = get_field(L, t, k);
	const char *v = def;
	if (ty != LUA_TNIL) {
		if (ty != LUA_TSTRING) {
			luaL_error(L, "%s: field '%s' must be a string, got %s",
			    fn, k, luaL_typename(L, -1));
		}
		v = lua_tostring(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

void
lfm_set_num(lua_State *L, const char *k, lua_Number v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, k);
}

void
lfm_set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

void
lfm_set_str(lua_State *L, const char *k, const char *v)
{
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

size_t
lfm_read_params(lua_State *L, int t, const char *fn, const char *plugin,
    fmi_param_in *in, size_t max)
{
	size_t n = 0;
	t = lua_absindex(L, t);
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			lua_pop(L, 1); /* the plugin name at [1] */
			continue;
		}
		if (n == max) {
			luaL_error(L, "%s: more than %d parameters for %s", fn,
			    (int)max, plugin);
		}
		fmi_param_in *p = &in[n++];
		int ty = lua_type(L, -1);
		p->name = lua_tostring(L, -2); /* anchored by the table */
		p->is_str = ty == LUA_TSTRING;
		p->str = p->is_str ? lua_tostring(L, -1) : NULL;
		p->num = ty == LUA_TBOOLEAN ? lua_toboolean(L, -1)
		                            : lua_tonumber(L, -1);
		if (ty != LUA_TSTRING && ty != LUA_TNUMBER &&
		    ty != LUA_TBOOLEAN) {
			luaL_error(L, "%s: parameter '%s' of %s must be a number, "
			    "boolean or string", fn, p->name, plugin);
		}
		lua_pop(L, 1);
	}
	return n;
}

/* ---- CLI settings --------------------------------------------------------- */

int
lfm_default_threads(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.threads");
	int n = (int)lua_tointeger(L, -1);
	lua_pop(L, 1);
	return n;
}

const char *
lfm_default_metrics(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.metrics");
	const char *s = lua_tostring(L, -1); /* anchored in the registry */
	lua_pop(L, 1);
	return s;
}

/* ---- plugins ----------------------------------------------------------------- */

static int
registry_gc(lua_State *L)
{
	fmi_registry **rp = lua_touserdata(L, 1);
	fmi_registry_free(*rp);
	*rp = NULL;
	return 0;
}

fmi_registry *
lfm_registry(lua_State *L)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, LFM_REGISTRY_KEY) ==
	    LUA_TUSERDATA) {
		fmi_registry *r = *(fmi_registry **)lua_touserdata(L, -1);
		lua_pop(L, 1);
		return r;
	}
	lua_pop(L, 1);
	fmi_registry **rp = lua_newuserdatauv(L, sizeof *rp, 0);
	*rp = NULL;
	lua_newtable(L);
	lua_pushcfunction(L, registry_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	fm_error e;
	if (fmi_registry_new(rp) != FM_OK) {
		luaL_error(L, "fedmesh: out of memory");
	}
	if (fmi_registry_load_defaults(*rp, &e) != FM_OK) {
		fm_log(FM_LOG_WARN, "FM-PLUGIN", "%s", e.msg);
	}
	lua_setfield(L, LUA_REGISTRYINDEX, LFM_REGISTRY_KEY);
	return *rp;
}

/* fm.plugin_path(dir): loads every plugin in dir. Returns the count. */
static int
l_plugin_path(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	size_t n = 0;
	fm_error e;
	if (fmi_registry_load_dir(lfm_registry(L), dir, &n, &e) != FM_OK) {
		return lfm_raise(L, "fm.plugin_path", &e);
	}
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

static void
push_params(lua_State *L, const fm_param_desc *p)
{
	static const char *const types[] = { "?", "int", "real", "bool",
		"string" };
	lua_newtable(L);
	for (int i = 0; p != NULL && p[i].name != NULL; i++) {
		lua_createtable(L, 0, 6);
		lfm_set_str(L, "name", p[i].name);
		lfm_set_str(L, "type", types[p[i].type <= 4 ? p[i].type : 0]);
		if (p[i].type == FM_PARAM_STRING) {
			lua_pushstring(L, p[i].def_str ? p[i].def_str : "");
		} else {
			lua_pushnumber(L, p[i].def);
		}
		lua_setfield(L, -2, "default");
		lfm_set_num(L, "min", p[i].min);
		lfm_set_num(L, "max", p[i].max);
		lfm_set_str(L, "doc", p[i].doc ? p[i].doc : "");
		lua_rawseti(L, -2, i + 1);
	}
}

static void
push_component(lua_State *L, const fmi_component *c)
{
	lua_createtable(L, 0, 7);
	lfm_set_str(L, "name", c->desc->name);
	lfm_set_str(L, "kind", fmi_kind_name(c->kind));
	lfm_set_str(L, "version", c->plugin->version);
	lfm_set_str(L, "description", c->desc->description);
	lfm_set_str(L, "plugin", c->plugin->name);
	lfm_set_str(L, "path", c->path);
	push_params(L, c->desc->params);
	lua_setfield(L, -2, "params");
}

/* fm.plugins() -> list of { name, kind, version, description, path,
 * params = { {name, type, default, min, max, doc}, ... } } */
static int
l_plugins(lua_State *L)
{
	fmi_registry *r = lfm_registry(L);
	size_t n = fmi_registry_count(r);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		push_component(L, fmi_registry_at(r, i));
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* ---- script arguments ------------------------------------------------------ */

/* Converts the string at the top to the type of the default at idx. */
static void
args_convert(lua_State *L, int def, const char *key, const char *val)
{
	int ok = 1;
	switch (lua_type(L, def)) {
	case LUA_TNUMBER:
		ok = lua_stringtonumber(L, val) != 0;
		break;
	case LUA_TBOOLEAN:
		ok = strcmp(val, "true") == 0 || strcmp(val, "false") == 0;
		lua_pushboolean(L, strcmp(val, "true") == 0);
		break;
	default:
		lua_pushstring(L, val);
	}
	if (!ok) {
		luaL_error(L, "fm.args: %s=%s: expected a %s like %s", key, val,
		    luaL_typename(L, def), luaL_tolstring(L, def, NULL));
	}
}

/* An unknown key of fm.args: says which keys there are, and the nearest. */
static int
args_unknown(lua_State *L, const char *a, size_t klen)
{
	const char *keys[65];
	luaL_Buffer b;
	int n = 0;
	lua_pushlstring(L, a, klen);
	const char *key = lua_tostring(L, -1);
	luaL_buffinit(L, &b);
	lua_pushnil(L);
	while (n < 64 && lua_next(L, 1) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TSTRING) {
			keys[n++] = lua_tostring(L, -1); /* anchored in defaults */
		}
	}
	if (n == 64) {
		lua_pop(L, 1);
	}
	keys[n] = NULL;
	/* sorted, so the message is the same every run */
	for (int i = 1; i < n; i++) {
		for (int j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
			const char *t = keys[j];
			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	}
	for (int i = 0; i < n; i++) {
		luaL_addstring(&b, i ? ", " : "");
		luaL_addstring(&b, keys[i]);
	}
	luaL_pushresult(&b);
	const char *near = fmi_closest(key, keys);
	return luaL_error(L, "fm.args: unknown option '%s' in '%s' (%s%s%s"
	    "options: %s)", key, a, near ? "did you mean '" : "",
	    near ? near : "", near ? "'?; " : "", lua_tostring(L, -1));
}

/* fm.args(defaults [, argv]) -> options: a copy of defaults where every
 * "key=value" of argv (default: the global `arg`) overrides its key, with
 * the default's type. Unknown keys and bad values are errors. */
static int
l_args(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_isnoneornil(L, 2)) {
		lua_settop(L, 1);
		lua_getglobal(L, "arg");
	}
	lua_newtable(L); /* 3: result */
	lua_pushnil(L);
	while (lua_next(L, 1) != 0) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_settable(L, 3);
	}
	lua_Integer n = lua_istable(L, 2) ? luaL_len(L, 2) : 0;
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 2, i);
		const char *a = lua_tostring(L, -1), *eq = a ? strchr(a, '=') : NULL;
		if (eq == NULL || eq == a) {
			return luaL_error(L, "fm.args: argument '%s' is not "
			    "key=value", a ? a : "?");
		}
		lua_pushlstring(L, a, (size_t)(eq - a)); /* key */
		if (lua_rawget(L, 1) == LUA_TNIL) {
			return args_unknown(L, a, (size_t)(eq - a));
		}
		lua_pushlstring(L, a, (size_t)(eq - a));
		args_convert(L, lua_gettop(L) - 1, lua_tostring(L, -1), eq + 1);
		lua_setfield(L, 3, lua_tostring(L, -2));
		lua_pop(L, 3);
	}
	lua_settop(L, 3);
	return 1;
}

/* ---- module ---------------------------------------------------------------- */

static int
l_log(lua_State *L)
{
	static const char *const levels[] = { "error", "warn", "info",
		"debug", NULL };
	int lvl = luaL_checkoption(L, 1, NULL, levels);
	fm_log(lvl, "FM-LUA", "%s", luaL_checkstring(L, 2));
	return 0;
}

static const luaL_Reg fm_funcs[] = {
	{ "plugins", l_plugins },
	{ "plugin_path", l_plugin_path },
	{ "experiment", lfm_experiment },
	{ "log", l_log },
	{ "args", l_args },
	{ "aggregate", lfm_aggregate },
	{ "node", lfm_node },
	{ NULL, NULL },
};

FM_API int
fm_lua_open(lua_State *L)
{
	luaL_checkversion(L);
	lfm_register_experiment(L);
	luaL_newlib(L, fm_funcs);
	lfm_open_data(L);
	lua_setfield(L, -2, "data");
	lfm_open_partition(L);
	lua_setfield(L, -2, "partition");
	lfm_open_model(L);
	lua_setfield(L, -2, "model");
	lfm_open_topology(L);
	lua_setfield(L, -2, "topology");
	lfm_open_privacy(L);
	lua_setfield(L, -2, "privacy");
	lfm_set_str(L, "version", fm_version());
	return 1;
}
