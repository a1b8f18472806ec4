/* SPDX-License-Identifier: MIT */
/* cmd_plugins.c: `fedmesh plugins [--describe NAME]`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "plugin/registry.h"

const char fmi_plugins_usage[] =
    "usage: fedmesh plugins [--describe NAME]\n"
    "\n"
    "Lists the plugins found in the built-in plugin directory and in the\n"
    "directories of FEDMESH_PLUGIN_PATH (':'-separated): name, kind,\n"
    "version and description. --describe shows one plugin's parameters\n"
    "with their types, defaults, ranges and documentation.\n";

static const char *const type_names[] = { "?", "int", "real", "bool",
	"string" };

static void
list(const fmi_registry *r)
{
	size_t n = fmi_registry_count(r);
	printf("%-20s %-12s %-9s %s\n", "NAME", "KIND", "VERSION",
	    "DESCRIPTION");
	for (size_t i = 0; i < n; i++) {
		const fmi_component *c = fmi_registry_at(r, i);
		printf("%-20s %-12s %-9s %s\n", c->desc->name,
		    fmi_kind_name(c->kind), c->plugin->version,
		    c->desc->description);
	}
	if (n == 0) {
		printf("(no plugins found; is FEDMESH_PLUGIN_PATH right?)\n");
	}
}

static void
print_default(const fm_param_desc *p)
{
	if (p->type == FM_PARAM_STRING) {
		printf("\"%s\"", p->def_str ? p->def_str : "");
	} else if (p->type == FM_PARAM_BOOL) {
		printf("%s", p->def != 0 ? "true" : "false");
	} else {
		printf("%g", p->def);
	}
}

static int
describe(const fmi_registry *r, const char *name)
{
	const fmi_component *c = fmi_registry_find(r, 0, name);
	if (c == NULL) {
		fprintf(stderr, "fedmesh plugins: no plugin named '%s' (run "
		    "`fedmesh plugins` to list them)\n", name);
		return 1;
	}
	printf("%s (%s) %s\n  %s\n  plugin: %s, license %s\n  file: %s\n",
	    c->desc->name, fmi_kind_name(c->kind), c->plugin->version,
	    c->desc->description, c->plugin->name, c->plugin->license,
	    c->path);
	const fm_param_desc *p = c->desc->params;
	printf("parameters:%s\n", p == NULL || p->name == NULL ? " none" : "");
	for (; p != NULL && p->name != NULL; p++) {
		printf("  %-16s %-6s default ", p->name,
		    type_names[p->type <= 4 ? p->type : 0]);
		print_default(p);
		if (p->type == FM_PARAM_INT || p->type == FM_PARAM_REAL) {
			printf(", range [%g, %g]", p->min, p->max);
		}
		printf("\n      %s\n", p->doc ? p->doc : "");
	}
	return 0;
}

int
fmi_cmd_plugins(int argc, char **argv)
{
	const char *name = NULL;
	for (int i = 1; i < argc; i++) {
		if (fmi_cli_is_help(argv[i])) {
			fputs(fmi_plugins_usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "--describe") == 0 && i + 1 < argc) {
			name = argv[++i];
		} else {
			fprintf(stderr, "fedmesh plugins: bad argument '%s'\n%s",
			    argv[i], fmi_plugins_usage);
			return 2;
		}
	}
	fmi_registry *r;
	fm_error e;
	if (fmi_registry_new(&r) != FM_OK) {
		return 1;
	}
	if (fmi_registry_load_defaults(r, &e) != FM_OK) {
		fprintf(stderr, "fedmesh plugins: %s\n", e.msg);
	}
	int rv = 0;
	if (name != NULL) {
		rv = describe(r, name);
	} else {
		list(r);
	}
	fmi_registry_free(r);
	return rv;
}
