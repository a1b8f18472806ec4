/* SPDX-License-Identifier: MIT */
/*
 * fm_plugin_test.h: what the built-in plugins' conformance tests share:
 * loading a built plugin (.so) through the registry, from
 * FEDMESH_BUILTIN_PLUGIN_DIR or the build's plugin directory, and a
 * cmocka fixture holding the registry and one component. Test-only;
 * include after fm_test.h, in a test that defines _DEFAULT_SOURCE or
 * otherwise gets PATH_MAX.
 */
#ifndef FMT_PLUGIN_TEST_H
#define FMT_PLUGIN_TEST_H

#include <limits.h>

#include "core/core.h"
#include "plugin/registry.h"

#ifndef FM_PLUGIN_OUT_DIR
#define FM_PLUGIN_OUT_DIR "lib/fedmesh/plugins"
#endif

/* Loads the built plugin file (e.g. "fedavg.so") into reg. */
static inline int
fmt_plugin_load(fmi_registry *reg, const char *file)
{
	const char *dir = getenv("FEDMESH_BUILTIN_PLUGIN_DIR");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s",
	    dir != NULL ? dir : FM_PLUGIN_OUT_DIR, file);
	return fmi_registry_load_file(reg, path, NULL);
}

/* A registry with one plugin loaded, and the component under test. */
typedef struct fmt_plugin_fixture {
	fmi_registry *reg;
	const fmi_component *c;
} fmt_plugin_fixture;

/* For a cmocka group setup: *state becomes a fixture with file loaded and
 * c the component (kind, name); 0 on success. */
static inline int
fmt_plugin_setup(void **state, const char *file, uint32_t kind,
    const char *name)
{
	fmt_plugin_fixture *f = calloc(1, sizeof *f);
	*state = f;
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, file) != FM_OK) {
		return -1;
	}
	f->c = fmi_registry_find(f->reg, kind, name);
	return f->c != NULL ? 0 : -1;
}

static inline int
fmt_plugin_teardown(void **state)
{
	fmt_plugin_fixture *f = *state;
	if (f != NULL) {
		fmi_registry_free(f->reg);
		free(f);
	}
	return 0;
}

#endif /* FMT_PLUGIN_TEST_H */
