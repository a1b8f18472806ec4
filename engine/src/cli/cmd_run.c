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
#include "core/core.h"
#include "lua/lfm.h"

#define OPTS_NOTE \
    "fedmesh's options may come before or after SCRIPT; `--` ends them\n" \
    "(what follows it reaches the script unchanged).\n"

const char fmi_run_usage[] =
    "usage: fedmesh run SCRIPT [--metrics FILE] [--threads N] [--resume] [ARGS...]\n"
    "\n"
    "Runs a Lua 5.4 experiment script with the fedmesh module preloaded\n"
    "(local fm = require \"fedmesh\"). ARGS reach the script in `arg`\n"
    "(arg[0] is the script) and as `...`, as with stock lua; the scripts in\n"
    "scripts/ read key=value ARGS with fm.args (e.g. rounds=10).\n"
    "\n"
    "  --metrics FILE   write one JSON object per round (JSON Lines) with\n"
    "                   round, accuracy, loss, bytes_sent, bytes_received,\n"
    "                   seconds, ... for every experiment the script runs\n"
    "  --threads N      worker threads for simulations (default: cores)\n"
    "  --resume         continue a simulation from its `checkpoint` file\n"
    "\n" OPTS_NOTE;

const char fmi_node_usage[] =
    "usage: fedmesh node SCRIPT --node NAME [--role ROLE] [--resume] [--metrics FILE] [--threads N] [ARGS...]\n"
    "\n"
    "Runs the script as one node of the deployment its experiment's `deploy`\n"
    "section describes: exp:run() makes this process the server or the\n"
    "named client host. Without --node, the node comes from the rank a\n"
    "cluster launcher gives the process (SLURM_PROCID, OMPI_COMM_WORLD_RANK\n"
    "or PMI_RANK): rank 0 is the server, rank k the k-th client.\n"
    "\n"
    "  --node NAME      the node to be (a name from the deploy section)\n"
    "  --role ROLE      what fm.node() tells the script before the deploy\n"
    "                   section is read: server, client, edge, peer or\n"
    "                   monitor (default: from the name; fedmesh launch\n"
    "                   gives every node its role)\n"
    "  --resume         server: continue after the last checkpointed round\n"
    "  --metrics FILE   server: JSON Lines metrics, as with fedmesh run\n"
    "  --threads N      worker threads of a client host (default: cores)\n"
    "\n" OPTS_NOTE;

const char fmi_launch_usage[] =
    "usage: fedmesh launch SCRIPT [--metrics FILE] [--resume] [--threads N] [ARGS...]\n"
    "\n"
    "Starts every node of the script's deployment as its own process on this\n"
    "host (fedmesh node ...), streams their output prefixed with the node\n"
    "name, and stops them all when the run ends, on Ctrl-C, or when this\n"
    "command dies. exp:run() returns the server's metrics, as a simulation\n"
    "would. Missing CURVE key pairs are created in the deployment's `keys`.\n"
    "\n"
    "  --metrics FILE   the server's JSON Lines metrics, as with fedmesh run\n"
    "  --resume         the server continues after its last checkpointed\n"
    "                   round (needs deploy.checkpoint)\n"
    "  --threads N      worker threads of each client node\n"
    "\n" OPTS_NOTE;

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

/* fedmesh's own options, each for some commands. */
enum { OPT_RUN = 1, OPT_NODE = 2, OPT_LAUNCH = 4 };
typedef struct run_opt {
	const char *name;
	int takes_value;
	int modes;
} run_opt;
static const run_opt run_opts[] = {
	{ "--metrics", 1, OPT_RUN | OPT_NODE | OPT_LAUNCH },
	{ "--threads", 1, OPT_RUN | OPT_NODE | OPT_LAUNCH },
	{ "--resume", 0, OPT_RUN | OPT_NODE | OPT_LAUNCH },
	{ "--node", 1, OPT_NODE },
	{ "--role", 1, OPT_NODE },
	{ NULL, 0, 0 },
};

/* The command line split: the script, and what reaches it. */
typedef struct run_args {
	const char *script;
	char **args; /* the script's arguments (fedmesh's options taken out) */
	int nargs;
} run_args;

static int
mode_bit(const char *mode)
{
	return strcmp(mode, "node") == 0 ? OPT_NODE
	    : strcmp(mode, "launch") == 0 ? OPT_LAUNCH : OPT_RUN;
}

/* Says what is wrong with option a (not one of this command's). */
static int
bad_option(const char *a, size_t len, const char *mode, const char *usage)
{
	const char *names[8];
	int n = 0;
	char opt[64];
	snprintf(opt, sizeof opt, "%.*s", (int)FMI_MIN(len, sizeof opt - 1), a);
	for (const run_opt *o = run_opts; o->name != NULL; o++) {
		if (o->modes & mode_bit(mode)) {
			names[n++] = o->name;
		}
	}
	names[n] = NULL;
	for (const run_opt *o = run_opts; o->name != NULL; o++) {
		if (strcmp(o->name, opt) == 0) { /* another command's */
			fprintf(stderr, "fedmesh %s: %s is an option of `fedmesh "
			    "%s`, not of `fedmesh %s`\n%s", mode, opt,
			    o->modes & OPT_NODE ? "node" : o->modes & OPT_LAUNCH
			    ? "launch" : "run", mode, usage);
			return 2;
		}
	}
	const char *near = fmi_closest(opt, names);
	fprintf(stderr, "fedmesh %s: unknown option '%s'", mode, opt);
	if (near != NULL && strlen(opt) > 2) {
		fprintf(stderr, " (did you mean '%s'?)", near);
	}
	fprintf(stderr, "; to pass it to the script, put it after `--`\n%s",
	    usage);
	return 2;
}

/* Takes option argv[*i] (and its value); returns -1 when taken, else the
 * exit status (0 after --help, 2 for a usage error). */
static int
take_opt(lua_State *L, int argc, char **argv, int *i, const char *mode,
    const char *usage)
{
	const char *a = argv[*i];
	const char *eq = strchr(a, '=');
	size_t len = eq ? (size_t)(eq - a) : strlen(a);
	const run_opt *o = run_opts;

	if (fmi_cli_is_help(a)) {
		fputs(usage, stdout);
		return 0;
	}
	while (o->name != NULL && !(strlen(o->name) == len &&
	    strncmp(o->name, a, len) == 0 && (o->modes & mode_bit(mode)))) {
		o++;
	}
	if (o->name == NULL) {
		return bad_option(a, len, mode, usage);
	}
	const char *val = NULL;
	if (o->takes_value) {
		if (eq != NULL) {
			val = eq + 1;
		} else if (*i + 1 < argc) {
			val = argv[++*i];
		}
		if (val == NULL || val[0] == '\0') {
			fprintf(stderr, "fedmesh %s: %s needs a value\n%s", mode,
			    o->name, usage);
			return 2;
		}
	} else if (eq != NULL) {
		fprintf(stderr, "fedmesh %s: %s takes no value\n", mode, o->name);
		return 2;
	}
	if (strcmp(o->name, "--resume") == 0) {
		lua_pushboolean(L, 1);
		lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.resume");
	} else if (strcmp(o->name, "--node") == 0) {
		lua_pushstring(L, val);
		lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.node");
	} else if (strcmp(o->name, "--role") == 0) {
		if (lfm_node_role_valid(val) == 0) {
			fprintf(stderr, "fedmesh %s: --role takes server, client, "
			    "edge, peer or monitor, not '%s'\n", mode, val);
			return 2;
		}
		lua_pushstring(L, val);
		lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.role");
	} else if (strcmp(o->name, "--metrics") == 0) {
		lua_pushstring(L, val);
		lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.metrics");
	} else { /* --threads */
		char *end;
		long n = strtol(val, &end, 10);
		if (*end != '\0' || n < 1 || n > 1024) {
			fprintf(stderr, "fedmesh %s: --threads takes a number "
			    "from 1 to 1024, not '%s'\n", mode, val);
			return 2;
		}
		lua_pushinteger(L, n);
		lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.threads");
	}
	return -1;
}

/*
 * fedmesh's options may stand before and after the script; `--` ends
 * them (what follows reaches the script as it is). Any other argument
 * after the script is the script's. Returns -1 to go on, else the exit
 * status (0 after --help, 2 for a usage error).
 */
static int
parse_opts(lua_State *L, int argc, char **argv, const char *mode,
    const char *usage, run_args *ra)
{
	int opts_done = 0;
	ra->script = NULL;
	ra->nargs = 0;
	ra->args = calloc((size_t)argc + 1, sizeof *ra->args);
	if (ra->args == NULL) {
		fputs("fedmesh: out of memory\n", stderr);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = 1;
		} else if (!opts_done && a[0] == '-' && a[1] != '\0') {
			int rv = take_opt(L, argc, argv, &i, mode, usage);
			if (rv >= 0) {
				return rv;
			}
		} else if (ra->script == NULL) {
			ra->script = a;
		} else {
			ra->args[ra->nargs++] = argv[i];
		}
	}
	if (ra->script == NULL) {
		fprintf(stderr, "fedmesh %s: no script given\n%s", mode, usage);
		return 2;
	}
	return -1;
}

/* arg = { [0] = script, ... } as stock lua does */
static void
set_args(lua_State *L, const run_args *ra)
{
	lua_createtable(L, ra->nargs, 1);
	lua_pushstring(L, ra->script);
	lua_rawseti(L, -2, 0);
	for (int i = 0; i < ra->nargs; i++) {
		lua_pushstring(L, ra->args[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setglobal(L, "arg");
}

static int
run_script(lua_State *L, const run_args *ra)
{
	lua_pushcfunction(L, msgh);
	if (luaL_loadfile(L, ra->script) != LUA_OK) {
		fprintf(stderr, "fedmesh: %s\n", lua_tostring(L, -1));
		return 1;
	}
	for (int i = 0; i < ra->nargs; i++) {
		lua_pushstring(L, ra->args[i]);
	}
	if (lua_pcall(L, ra->nargs, 0, 1) != LUA_OK) {
		fprintf(stderr, "fedmesh: %s\n", lua_tostring(L, -1));
		return 1;
	}
	return 0;
}

/* Settings exp:run() reads: the mode, this program, the script and its
 * arguments (to start nodes), and a cluster rank when there is one. */
static void
set_mode(lua_State *L, const char *mode, const run_args *ra)
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
	lua_pushstring(L, ra->script);
	lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.script");
	lua_createtable(L, ra->nargs, 0);
	for (int i = 0; i < ra->nargs; i++) {
		lua_pushstring(L, ra->args[i]);
		lua_rawseti(L, -2, i + 1);
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
	run_args ra = { NULL, NULL, 0 };
	if (L == NULL) {
		fputs("fedmesh: cannot create a Lua state\n", stderr);
		return 1;
	}
	int rv = parse_opts(L, argc, argv, mode, usage, &ra);
	if (rv < 0) {
		luaL_openlibs(L);
		luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
		lua_pushcfunction(L, fm_lua_open);
		lua_setfield(L, -2, "fedmesh");
		lua_pop(L, 1);
		set_mode(L, mode, &ra);
		set_args(L, &ra);
		rv = run_script(L, &ra);
	}
	lua_close(L);
	free(ra.args);
	return rv;
}

int
fmi_cmd_run(int argc, char **argv)
{
	return run_mode(argc, argv, "run", fmi_run_usage);
}

int
fmi_cmd_node(int argc, char **argv)
{
	return run_mode(argc, argv, "node", fmi_node_usage);
}

int
fmi_cmd_launch(int argc, char **argv)
{
	return run_mode(argc, argv, "launch", fmi_launch_usage);
}
