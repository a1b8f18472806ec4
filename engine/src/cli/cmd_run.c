/* SPDX-License-Identifier: MIT */
/* cmd_run.c: `fedmesh run SCRIPT [--metrics FILE] [--threads N] [ARGS...]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cli/cli.h"
#include "lua/lfm.h"

static const char run_usage[] =
    "usage: fedmesh run SCRIPT [--metrics FILE] [--threads N] [ARGS...]\n"
    "\n"
    "Runs a Lua 5.4 experiment script with the fedmesh module preloaded\n"
    "(local fm = require \"fedmesh\"). ARGS reach the script in `arg`\n"
    "(arg[0] is the script) and as `...`, as with stock lua.\n"
    "\n"
    "  --metrics FILE   write one JSON object per round (JSON Lines) with\n"
    "                   round, accuracy, loss, bytes_sent, bytes_received,\n"
    "                   seconds, ... for every experiment the script runs\n"
    "  --threads N      worker threads for simulations (default: cores)\n";

static int
msgh(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		msg = lua_pushfstring(L, "(error object is a %s value)",
		    luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* Returns -1 to go on with the script at argv[*first], else the exit
 * status (0 after --help, 2 for a usage error). */
static int
parse_opts(lua_State *L, int argc, char **argv, int *first)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (fmi_cli_is_help(argv[i])) {
			fputs(run_usage, stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "fedmesh run: %s needs a value\n", argv[i]);
			return 2;
		}
		if (strcmp(argv[i], "--metrics") == 0) {
			lua_pushstring(L, argv[++i]);
			lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.metrics");
		} else if (strcmp(argv[i], "--threads") == 0) {
			char *end;
			long n = strtol(argv[++i], &end, 10);
			if (*end != '\0' || n < 1 || n > 1024) {
				fprintf(stderr, "fedmesh run: --threads takes a "
				    "number from 1 to 1024, not '%s'\n", argv[i]);
				return 2;
			}
			lua_pushinteger(L, n);
			lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.threads");
		} else {
			fprintf(stderr, "fedmesh run: unknown option '%s'\n%s",
			    argv[i], run_usage);
			return 2;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "fedmesh run: no script given\n%s", run_usage);
		return 2;
	}
	*first = i;
	return -1;
}

/* arg = { [0] = script, ... } as stock lua does */
static void
set_args(lua_State *L, int argc, char **argv, int script)
{
	lua_createtable(L, argc - script - 1, 1);
	for (int i = script; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - script);
	}
	lua_setglobal(L, "arg");
}

static int
run_script(lua_State *L, int argc, char **argv, int script)
{
	lua_pushcfunction(L, msgh);
	if (luaL_loadfile(L, argv[script]) != LUA_OK) {
		fprintf(stderr, "fedmesh: %s\n", lua_tostring(L, -1));
		return 1;
	}
	for (int i = script + 1; i < argc; i++) {
		lua_pushstring(L, argv[i]);
	}
	if (lua_pcall(L, argc - script - 1, 0, 1) != LUA_OK) {
		fprintf(stderr, "fedmesh: %s\n", lua_tostring(L, -1));
		return 1;
	}
	return 0;
}

int
fmi_cmd_run(int argc, char **argv)
{
	lua_State *L = luaL_newstate();
	int first = 0;
	if (L == NULL) {
		fputs("fedmesh: cannot create a Lua state\n", stderr);
		return 1;
	}
	int rv = parse_opts(L, argc, argv, &first);
	if (rv < 0) {
		luaL_openlibs(L);
		luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
		lua_pushcfunction(L, fm_lua_open);
		lua_setfield(L, -2, "fedmesh");
		lua_pop(L, 1);
		set_args(L, argc, argv, first);
		rv = run_script(L, argc, argv, first);
	}
	lua_close(L);
	return rv;
}
