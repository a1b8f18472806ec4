/* SPDX-License-Identifier: MIT */
/* main.c: `fedmesh`: dispatch to run, plugins, bench, report, version. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "fedmesh/fedmesh.h"
#include "fedmesh/plugin.h"

/* The commands, each with its synopsis from its own --help text (so the
 * two never disagree) and one line of what it does. */
static const struct command {
	const char *usage, *what;
} commands[] = {
	{ fmi_run_usage, "run a Lua experiment script" },
	{ fmi_node_usage, "run one node of the script's deployment" },
	{ fmi_launch_usage, "run every node of the deployment as a process here" },
	{ fmi_keygen_usage, "make CURVE key pairs for deployment nodes" },
	{ fmi_plugins_usage, "list plugins, or show one plugin's parameters" },
	{ fmi_bench_usage, "local training throughput on Fashion-MNIST (JSON)" },
	{ fmi_report_usage, "charts and tables of --metrics files (HTML or SVG)" },
	{ NULL, NULL },
};

static void
print_usage(FILE *f)
{
	fputs("usage: fedmesh <command> [options]\n\ncommands:\n", f);
	for (const struct command *c = commands; c->usage != NULL; c++) {
		/* "usage: fedmesh X ...\n   ...\n\n": the synopsis, its
		 * continuation lines joined */
		const char *p = c->usage + strlen("usage: fedmesh ");
		fputs("  ", f);
		while (*p != '\0' && !(p[0] == '\n' && p[1] == '\n')) {
			if (*p == '\n') {
				p++;
				while (*p == ' ') {
					p++;
				}
				fputc(' ', f);
				continue;
			}
			fputc(*p++, f);
		}
		fprintf(f, "\n                      %s\n", c->what);
	}
	fputs("  version             print the version\n"
	    "\n"
	    "Run `fedmesh <command> --help` for a command's options.\n"
	    "Environment: FEDMESH_PLUGIN_PATH (extra plugin directories, "
	    "':'-separated),\n"
	    "FEDMESH_FMNIST_DIR (Fashion-MNIST location), FEDMESH_LOG "
	    "(error|warn|info|debug),\n"
	    "FEDMESH_BLAS_CORETYPE=keep (keep OpenBLAS's own kernel choice).\n",
	    f);
}

int
fmi_cli_is_help(const char *a)
{
	return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2 || fmi_cli_is_help(argv[1])) {
		print_usage(argc < 2 ? stderr : stdout);
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
	fprintf(stderr, "fedmesh: unknown command '%s'\n\n", cmd);
	print_usage(stderr);
	return 2;
}
