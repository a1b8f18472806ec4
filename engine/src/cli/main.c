/* SPDX-License-Identifier: MIT */
/* main.c: `fedmesh`: dispatch to run, plugins, bench, report, version. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "fedmesh/fedmesh.h"
#include "fedmesh/plugin.h"

static const char usage[] =
    "usage: fedmesh <command> [options]\n"
    "\n"
    "commands:\n"
    "  run SCRIPT [--metrics FILE] [--threads N] [ARGS...]\n"
    "                      run a Lua experiment script\n"
    "  node SCRIPT --node NAME [--resume] [--metrics FILE] [ARGS...]\n"
    "                      run one node of the script's deployment\n"
    "  launch SCRIPT [--metrics FILE] [ARGS...]\n"
    "                      run every node of the deployment as a process here\n"
    "  keygen [--dir DIR] [--force] NAME...\n"
    "                      make CURVE key pairs for deployment nodes\n"
    "  plugins [--describe NAME]\n"
    "                      list plugins, or show one plugin's parameters\n"
    "  bench train --model mlp|logreg --batch B --threads T [--seconds S]\n"
    "                      local training throughput on Fashion-MNIST (JSON)\n"
    "  report FILE.jsonl... -o OUT.html|OUT.svg [--metric M] [--x round|seconds]\n"
    "                      charts and tables of --metrics files (HTML or SVG)\n"
    "  version             print the version\n"
    "\n"
    "Run `fedmesh <command> --help` for a command's options.\n"
    "Environment: FEDMESH_PLUGIN_PATH (extra plugin directories, ':'-separated),\n"
    "FEDMESH_FMNIST_DIR (Fashion-MNIST location), FEDMESH_LOG (error|warn|info|debug),\n"
    "FEDMESH_BLAS_CORETYPE=keep (keep OpenBLAS's own kernel choice).\n";

int
fmi_cli_is_help(const char *a)
{
	return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2 || fmi_cli_is_help(argv[1])) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	fmi_cli_select_blas(argv);
	if (strcmp(cmd, "run") == 0) {
		return fmi_cmd_run(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "node") == 0) {
		return fmi_cmd_node(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "launch") == 0) {
		return fmi_cmd_launch(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "keygen") == 0) {
		return fmi_cmd_keygen(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "plugins") == 0) {
		return fmi_cmd_plugins(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "bench") == 0) {
		return fmi_cmd_bench(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "report") == 0) {
		return fmi_cmd_report(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		if (argc > 2 && fmi_cli_is_help(argv[2])) {
			puts("usage: fedmesh version\nPrints the engine version "
			     "and the plugin ABI version.");
			return 0;
		}
		printf("fedmesh %s (plugin ABI %d.%d)\n", fm_version(),
		    FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR);
		return 0;
	}
	fprintf(stderr, "fedmesh: unknown command '%s'\n\n%s", cmd, usage);
	return 2;
}
