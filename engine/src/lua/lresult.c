/* SPDX-License-Identifier: MIT */
/* lresult.c: per-round metrics rows written as CSV or JSON Lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"

/* The fixed columns, in order; any other keys of the first row follow,
 * sorted. */
static const char *const fixed_cols[] = { "round", "accuracy", "loss",
	"train_loss", "bytes_sent", "bytes_received", "seconds", "clients",
	"updates", "dropped", NULL };

static int
is_fixed(const char *k)
{
	for (int i = 0; fixed_cols[i] != NULL; i++) {
		if (strcmp(k, fixed_cols[i]) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Pushes a sorted list of the columns of the row at index row. */
static void
push_columns(lua_State *L, int row)
{
	lua_Integer n = 0;
	lua_newtable(L);
	for (int i = 0; fixed_cols[i] != NULL; i++) {
		lua_pushstring(L, fixed_cols[i]);
		lua_rawseti(L, -2, ++n);
	}
	lua_Integer first_extra = n + 1;
	lua_pushnil(L);
	while (lua_next(L, row) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TSTRING && !is_fixed(lua_tostring(L, -1))) {
			lua_pushvalue(L, -1);
			lua_rawseti(L, -3, ++n);
		}
	}
	/* insertion sort of the extras (few) */
	for (lua_Integer i = first_extra + 1; i <= n; i++) {
		for (lua_Integer j = i; j > first_extra; j--) {
			lua_rawgeti(L, -1, j - 1);
			lua_rawgeti(L, -2, j);
			if (strcmp(lua_tostring(L, -2), lua_tostring(L, -1)) <= 0) {
				lua_pop(L, 2);
				break;
			}
			lua_rawseti(L, -3, j - 1);
			lua_rawseti(L, -2, j);
		}
	}
}

static void
write_value(lua_State *L, FILE *f, int json)
{
	if (lua_isinteger(L, -1)) {
		fprintf(f, "%lld", (long long)lua_tointeger(L, -1));
	} else if (lua_type(L, -1) == LUA_TNUMBER &&
	    isfinite(lua_tonumber(L, -1))) {
		fprintf(f, "%.10g", (double)lua_tonumber(L, -1));
	} else if (json) {
		fputs("null", f); /* absent, NaN or Inf */
	}
}

void
lfm_write_row_json(lua_State *L, FILE *f, int row)
{
	row = lua_absindex(L, row);
	push_columns(L, row);
	lua_Integer n = luaL_len(L, -1);
	fputc('{', f);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		const char *k = lua_tostring(L, -1);
		fprintf(f, "%s\"%s\":", i > 1 ? "," : "", k);
		lua_getfield(L, row, k);
		write_value(L, f, 1);
		lua_pop(L, 2);
	}
	fputs("}\n", f);
	lua_pop(L, 1);
}

/* True for the result of a client node, which holds no metrics: its
 * write_* calls do nothing, so a script run on every node leaves the
 * server's files alone. */
static int
is_client_result(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "role");
	int client = lua_isstring(L, -1) &&
	    strcmp(lua_tostring(L, -1), "client") == 0;
	lua_pop(L, 1);
	return client;
}

static FILE *
open_out(lua_State *L, const char *fn)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *path = luaL_checkstring(L, 2);
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		luaL_error(L, "%s: cannot write '%s'", fn, path);
	}
	if (lua_getfield(L, 1, "rounds") != LUA_TTABLE) {
		fclose(f);
		luaL_error(L, "%s: not a result (no 'rounds' table)", fn);
	}
	return f;
}

static int
close_out(lua_State *L, FILE *f, const char *fn)
{
	if (ferror(f) | (fclose(f) != 0)) {
		return luaL_error(L, "%s: write error", fn);
	}
	lua_pushvalue(L, 1);
	return 1;
}

/* result:write_jsonl(path) -> result */
int
lfm_result_write_jsonl(lua_State *L)
{
	if (is_client_result(L)) {
		lua_settop(L, 1);
		return 1;
	}
	FILE *f = open_out(L, "write_jsonl");
	int rows = lua_gettop(L);
	lua_Integer n = luaL_len(L, rows);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, rows, i);
		lfm_write_row_json(L, f, -1);
		lua_pop(L, 1);
	}
	return close_out(L, f, "write_jsonl");
}

/* result:write_csv(path) -> result; columns from the first row */
int
lfm_result_write_csv(lua_State *L)
{
	if (is_client_result(L)) {
		lua_settop(L, 1);
		return 1;
	}
	FILE *f = open_out(L, "write_csv");
	int rows = lua_gettop(L);
	lua_Integer n = luaL_len(L, rows);
	if (n == 0) {
		return close_out(L, f, "write_csv");
	}
	lua_rawgeti(L, rows, 1);
	push_columns(L, lua_gettop(L));
	int cols = lua_gettop(L);
	lua_Integer nc = luaL_len(L, cols);
	for (lua_Integer c = 1; c <= nc; c++) {
		lua_rawgeti(L, cols, c);
		fprintf(f, "%s%s", c > 1 ? "," : "", lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	fputc('\n', f);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, rows, i);
		for (lua_Integer c = 1; c <= nc; c++) {
			lua_rawgeti(L, cols, c);
			lua_gettable(L, -2);
			if (c > 1) {
				fputc(',', f);
			}
			write_value(L, f, 0);
			lua_pop(L, 1);
		}
		fputc('\n', f);
		lua_pop(L, 1);
	}
	return close_out(L, f, "write_csv");
}

/* ---- reading --metrics files back ------------------------------------------ */

/* Parses one flat object of numbers and nulls into a table at the top. */
static int
parse_row(lua_State *L, const char *p)
{
	lua_newtable(L);
	if (*p++ != '{') {
		return FM_EPROTO;
	}
	while (*p == '"') {
		const char *k = ++p;
		while (*p != '\0' && *p != '"') {
			p++;
		}
		if (*p != '"' || p[1] != ':') {
			return FM_EPROTO;
		}
		size_t klen = (size_t)(p - k);
		p += 2;
		char *end;
		if (strncmp(p, "null", 4) == 0) {
			end = (char *)p + 4;
		} else {
			double v = strtod(p, &end);
			if (end == p) {
				return FM_EPROTO;
			}
			lua_pushlstring(L, k, klen);
			if (v == (double)(lua_Integer)v && memchr(p, '.', (size_t)(end - p)) == NULL &&
			    memchr(p, 'e', (size_t)(end - p)) == NULL) {
				lua_pushinteger(L, (lua_Integer)v);
			} else {
				lua_pushnumber(L, v);
			}
			lua_settable(L, -3);
		}
		p = end;
		if (*p == ',') {
			p++;
		}
	}
	return *p == '}' ? FM_OK : FM_EPROTO;
}

int
lfm_read_jsonl(lua_State *L, const char *path)
{
	char line[8192];
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		return FM_EIO;
	}
	lua_newtable(L);
	lua_Integer n = 0;
	int rv = FM_OK;
	while (rv == FM_OK && fgets(line, sizeof line, f) != NULL) {
		rv = parse_row(L, line);
		if (rv == FM_OK) {
			lua_rawseti(L, -2, ++n);
		} else {
			lua_pop(L, 1);
		}
	}
	fclose(f);
	if (rv != FM_OK) {
		lua_pop(L, 1);
	}
	return rv;
}
