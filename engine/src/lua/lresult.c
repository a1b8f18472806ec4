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
	"updates", "dropped", "stragglers", "lr", NULL };

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

/* Sorts entries first..last of the list of strings on the stack top
 * (insertion sort: a row has few keys). */
static void
sort_strings(lua_State *L, lua_Integer first, lua_Integer last)
{
	for (lua_Integer i = first + 1; i <= last; i++) {
		for (lua_Integer j = i; j > first; j--) {
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

/* Pushes a sorted list of the columns of the row at index row; with
 * scalars, only those whose value is not a table (CSV has no nesting). */
static void
push_columns(lua_State *L, int row, int scalars)
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
		int nested = lua_type(L, -1) == LUA_TTABLE;
		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TSTRING &&
		    !is_fixed(lua_tostring(L, -1)) && !(scalars && nested)) {
			lua_pushvalue(L, -1);
			lua_rawseti(L, -3, ++n);
		}
	}
	sort_strings(L, first_extra, n);
}

static void write_string(FILE *f, const char *s);
static void write_nested(lua_State *L, FILE *f);

/* Pushes the sorted string keys of the table at t. */
static void
push_columns_of(lua_State *L, int t)
{
	lua_Integer n = 0;
	lua_newtable(L);
	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TSTRING) {
			lua_pushvalue(L, -1);
			lua_rawseti(L, -3, ++n);
		}
	}
	sort_strings(L, 1, n);
}

static void
write_value(lua_State *L, FILE *f, int json)
{
	if (lua_isinteger(L, -1)) {
		fprintf(f, "%lld", (long long)lua_tointeger(L, -1));
	} else if (lua_type(L, -1) == LUA_TNUMBER &&
	    isfinite(lua_tonumber(L, -1))) {
		fprintf(f, "%.10g", (double)lua_tonumber(L, -1));
	} else if (json && lua_type(L, -1) == LUA_TBOOLEAN) {
		fputs(lua_toboolean(L, -1) ? "true" : "false", f);
	} else if (json && lua_type(L, -1) == LUA_TSTRING) {
		write_string(f, lua_tostring(L, -1));
	} else if (json && lua_type(L, -1) == LUA_TTABLE) {
		write_nested(L, f);
	} else if (json) {
		fputs("null", f); /* absent, NaN or Inf */
	}
}

/* A JSON string (the names fedmesh writes need few escapes). */
static void
write_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			fprintf(f, "\\%c", c);
		} else if (c < 0x20) {
			fprintf(f, "\\u%04x", c);
		} else {
			fputc(c, f);
		}
	}
	fputc('"', f);
}

/* The table at the top as JSON: a list (1..n) as an array, otherwise an
 * object of its string keys, sorted (the same file for the same rows). */
static void
write_nested(lua_State *L, FILE *f)
{
	int t = lua_gettop(L);
	lua_Integer n = (lua_Integer)lua_rawlen(L, t);
	lua_pushnil(L);
	int empty = lua_next(L, t) == 0;
	lua_settop(L, t);
	if (n > 0 || empty) {
		fputc('[', f);
		for (lua_Integer i = 1; i <= n; i++) {
			fputs(i > 1 ? "," : "", f);
			lua_rawgeti(L, t, i);
			write_value(L, f, 1);
			lua_pop(L, 1);
		}
		fputc(']', f);
		return;
	}
	push_columns_of(L, t);
	lua_Integer nk = luaL_len(L, -1);
	fputc('{', f);
	for (lua_Integer i = 1; i <= nk; i++) {
		lua_rawgeti(L, -1, i);
		const char *k = lua_tostring(L, -1);
		fputs(i > 1 ? "," : "", f);
		write_string(f, k);
		fputc(':', f);
		lua_getfield(L, t, k);
		write_value(L, f, 1);
		lua_pop(L, 2);
	}
	fputc('}', f);
	lua_settop(L, t);
}

void
lfm_write_row_json(lua_State *L, FILE *f, int row)
{
	row = lua_absindex(L, row);
	push_columns(L, row, 0);
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
	push_columns(L, lua_gettop(L), 1);
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

/* Parses one JSON value at *pp (what the writers above produce: numbers,
 * null, booleans, strings, and arrays and objects of them) and pushes it
 * (null: nil). depth bounds the nesting. */
static int
parse_value(lua_State *L, const char **pp, int depth)
{
	const char *p = *pp;
	if (depth > 8 || !lua_checkstack(L, 4)) {
		return FM_EPROTO;
	}
	if (strncmp(p, "null", 4) == 0) {
		lua_pushnil(L);
		p += 4;
	} else if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
		lua_pushboolean(L, *p == 't');
		p += *p == 't' ? 4 : 5;
	} else if (*p == '"') {
		luaL_Buffer b;
		luaL_buffinit(L, &b);
		for (p++; *p != '"'; p++) {
			if (*p == '\0') {
				luaL_pushresult(&b);
				lua_pop(L, 1);
				return FM_EPROTO;
			}
			if (*p == '\\' && p[1] == 'u' && strlen(p) >= 6) {
				luaL_addchar(&b, (char)strtol((char[]){ p[4], p[5],
				    0 }, NULL, 16));
				p += 5;
				continue;
			}
			if (*p == '\\' && p[1] != '\0') {
				p++;
			}
			luaL_addchar(&b, *p);
		}
		luaL_pushresult(&b);
		p++;
	} else if (*p == '[' || *p == '{') {
		int obj = *p == '{';
		lua_Integer n = 0;
		lua_newtable(L);
		for (p++; *p != (obj ? '}' : ']');) {
			if (obj) {
				if (*p != '"' || parse_value(L, &p, depth + 1) != FM_OK) {
					return FM_EPROTO;
				}
				if (*p++ != ':') {
					return FM_EPROTO;
				}
			}
			if (parse_value(L, &p, depth + 1) != FM_OK) {
				return FM_EPROTO;
			}
			if (obj) {
				lua_settable(L, -3);
			} else {
				lua_rawseti(L, -2, ++n);
			}
			if (*p == ',') {
				p++;
			} else if (*p != (obj ? '}' : ']')) {
				return FM_EPROTO;
			}
		}
		p++;
	} else {
		char *end;
		double v = strtod(p, &end);
		if (end == p) {
			return FM_EPROTO;
		}
		if (v == (double)(lua_Integer)v &&
		    memchr(p, '.', (size_t)(end - p)) == NULL &&
		    memchr(p, 'e', (size_t)(end - p)) == NULL) {
			lua_pushinteger(L, (lua_Integer)v);
		} else {
			lua_pushnumber(L, v);
		}
		p = end;
	}
	*pp = p;
	return FM_OK;
}

/* Parses one row (an object) into a table at the top. */
static int
parse_row(lua_State *L, const char *p)
{
	int top = lua_gettop(L);
	if (*p != '{' || parse_value(L, &p, 0) != FM_OK) {
		lua_settop(L, top);
		lua_newtable(L);
		return FM_EPROTO;
	}
	return *p == '\0' || *p == '\n' || *p == '\r' ? FM_OK : FM_EPROTO;
}

int
lfm_read_jsonl(lua_State *L, const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		return FM_EIO;
	}
	lua_newtable(L);
	lua_Integer n = 0;
	int rv = FM_OK;
	/* rows with per-client detail are long: no line limit */
	while (rv == FM_OK && getline(&line, &cap, f) != -1) {
		rv = parse_row(L, line);
		if (rv == FM_OK) {
			lua_rawseti(L, -2, ++n);
		} else {
			lua_pop(L, 1);
		}
	}
	free(line);
	fclose(f);
	if (rv != FM_OK) {
		lua_pop(L, 1);
	}
	return rv;
}
