/* SPDX-License-Identifier: MIT */
/* cmd_run.c: `fedmesh run|node|launch SCRIPT [options] [ARGS...]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static const char node_usage[] =
    "usage: fedmesh node SCRIPT --node NAME [--resume] [--metrics FILE] [ARGS...]\n"
    "\n"
    "Runs the script as one node of the deployment its experiment's `deploy`\n"
    "section describes: exp:run() makes this process the server or the\n"
    "named client host. Without --node, the node comes from the rank a\n"
    "cluster launcher gives the process (SLURM_PROCID, OMPI_COMM_WORLD_RANK\n"
    "or PMI_RANK): rank 0 is the server, rank k the k-th client.\n"
    "\n"
    "  --node NAME      the node to be (a name from the deploy section)\n"
    "  --resume         server: continue after the last checkpointed round\n"
    "  --metrics FILE   server: JSON Lines metrics, as with fedmesh run\n";

static const char launch_usage[] =
    "usage: fedmesh launch SCRIPT [--metrics FILE] [--resume] [ARGS...]\n"
    "\n"
    "Starts every node of the script's deployment as its own process on this\n"
    "host (fedmesh node ...), streams their output prefixed with the node\n"
    "name, and stops them all when the run ends or on Ctrl-C. exp:run()\n"
    "returns the server's metrics, as a simulation would.\n";

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
parse_opts(lua_State *L, int argc, char **argv, int *first, const char *usage)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (fmi_cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--resume") == 0) {
			lua_pushboolean(L, 1);
			lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.resume");
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "fedmesh: %s needs a value\n", argv[i]);
			return 2;
		}
		if (strcmp(argv[i], "--node") == 0) {
			lua_pushstring(L, argv[++i]);
			lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.node");
		} else if (strcmp(argv[i], "--metrics") == 0) {
			lua_pushstring(L, argv[++i]);
			lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.metrics");
		} else if (strcmp(argv[i], "--threads") == 0) {
			char *end;
			long n = strtol(argv[++i], &end, 10);
			if (*end != '\0' || n < 1 || n > 1024) {
				fprintf(stderr, "fedmesh: --threads takes a "
				    "number from 1 to 1024, not '%s'\n", argv[i]);
				return 2;
			}
			lua_pushinteger(L, n);
			lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.threads");
		} else {
			fprintf(stderr, "fedmesh: unknown option '%s'\n%s",
			    argv[i], usage);
			return 2;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "fedmesh: no script given\n%s", usage);
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

/* Settings exp:run() reads: the mode, this program, the script and its
 * arguments (to start nodes), and a cluster rank when there is one. */
static void
set_mode(lua_State *L, const char *mode, int argc, char **argv, int script)
{
	static const char *const rank_vars[] = { "SLURM_PROCID",
		"OMPI_COMM_WORLD_RANK", "PMI_RANK", NULL };
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	lua_pushstring(L, mode);
	lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.mode");
	if (n > 0) {
		exe[n] = '\0';
		lua_pushstring(L, exe);
		lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.exe");
	}
	lua_pushstring(L, argv[script]);
	lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.script");
	lua_createtable(L, argc - script - 1, 0);
	for (int i = script + 1; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - script);
	}
	lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.argv");
	for (int i = 0; rank_vars[i] != NULL; i++) {
		const char *r = getenv(rank_vars[i]);
		if (r != NULL && r[0] != '\0') {
			lua_pushinteger(L, strtol(r, NULL, 10));
			lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.rank");
			break;
		}
	}
}

static int
run_mode(int argc, char **argv, const char *mode, const char *usage)
{
	lua_State *L = luaL_newstate();
	int first = 0;
	if (L == NULL) {
		fputs("fedmesh: cannot create a Lua state\n", stderr);
		return 1;
	}
	int rv = parse_opts(L, argc, argv, &first, usage);
	if (rv < 0) {
		luaL_openlibs(L);
		luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
		lua_pushcfunction(L, fm_lua_open);
		lua_setfield(L, -2, "fedmesh");
		lua_pop(L, 1);
		set_mode(L, mode, argc, argv, first);
		set_args(L, argc, argv, first);
		rv = run_script(L, argc, argv, first);
	}
	lua_close(L);
	return rv;
}

int
fmi_cmd_run(int argc, char **argv)
{
	return run_mode(argc, argv, "run", run_usage);
}

int
fmi_cmd_node(int argc, char **argv)
{
	return run_mode(argc, argv, "node", node_usage);
}

int
fmi_cmd_launch(int argc, char **argv)
{
	return run_mode(argc, argv, "launch", launch_usage);
}
