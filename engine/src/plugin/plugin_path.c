/* SPDX-License-Identifier: MIT */
/* plugin_path.c: where plugins are found: a directory's *.so files, the
 * built-in directory next to libfedmesh, and FEDMESH_PLUGIN_PATH. */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "plugin/plugin_int.h"

#define FMI_MAX_PATH_DIRS 32 /* distinct directories load_defaults visits */

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
is_so_name(const char *s)
{
	size_t n = strlen(s);
	return s[0] != '.' && n > 3 && strcmp(s + n - 3, ".so") == 0;
}

static void
free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
	}
	free(names);
}

/* The *.so names in dir, sorted. */
static int
list_so(const char *dir, char ***out, size_t *nout, fm_error *err)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	if (d == NULL) {
		return fm_error_set(err, FM_ENOENT, "plugin directory %s: cannot "
		    "be opened", dir);
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_so_name(de->d_name)) {
			continue;
		}
		char **nn = names;
		if (n == cap) {
			cap = FMI_MAX(16, 2 * cap);
			nn = realloc(names, cap * sizeof *nn);
		}
		if (nn == NULL || (nn[n] = strdup(de->d_name)) == NULL) {
			closedir(d);
			free_names(nn != NULL ? nn : names, n);
			return fm_error_set(err, FM_ENOMEM, "out of memory");
		}
		names = nn;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_names);
	*out = names;
	*nout = n;
	return FM_OK;
}

static int
load_one(fmi_registry *r, const char *dir, const char *name)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);
	const char *sep = len > 0 && dir[len - 1] == '/' ? "" : "/";
	if (snprintf(path, sizeof path, "%s%s%s", dir, sep, name) >=
	    (int)sizeof path) {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-OPEN", "plugin %s/%s: path too "
		    "long, skipped", dir, name);
		return FM_ERANGE;
	}
	return fmi_registry_load_file(r, path, NULL);
}

int
fmi_registry_load_dir(fmi_registry *r, const char *dir, size_t *nloaded,
    fm_error *err)
{
	char **names = NULL;
	size_t n = 0, good = 0;
	if (nloaded != NULL) {
		*nloaded = 0;
	}
	if (r == NULL || dir == NULL || dir[0] == '\0') {
		return fm_error_set(err, FM_EINVAL, "plugin directory: no "
		    "directory given");
	}
	int rv = list_so(dir, &names, &n, err);
	if (rv != FM_OK) {
		return rv;
	}
	for (size_t i = 0; i < n; i++) {
		good += load_one(r, dir, names[i]) == FM_OK;
	}
	free_names(names, n);
	if (nloaded != NULL) {
		*nloaded = good;
	}
	return FM_OK;
}

/* Directories already visited by one load_defaults call (by realpath). */
typedef struct reg_seen {
	char dirs[FMI_MAX_PATH_DIRS][PATH_MAX];
	int n;
} reg_seen;

/* Loads dir unless it was seen; a missing dir is skipped (logged when the
 * user named it). */
static int
load_default_dir(fmi_registry *r, const char *dir, reg_seen *seen,
    int user)
{
	char real[PATH_MAX];
	fm_error e;
	if (realpath(dir, real) == NULL) {
		if (user) {
			fm_log(FM_LOG_WARN, "FM-PLUGIN-PATH", "plugin directory "
			    "%s (FEDMESH_PLUGIN_PATH) not found, skipped", dir);
		}
		return FM_OK;
	}
	for (int i = 0; i < seen->n; i++) {
		if (strcmp(seen->dirs[i], real) == 0) {
			return FM_OK;
		}
	}
	if (seen->n < FMI_MAX_PATH_DIRS) {
		memcpy(seen->dirs[seen->n++], real, sizeof real);
	}
	int rv = fmi_registry_load_dir(r, real, NULL, &e);
	if (rv == FM_ENOMEM) {
		return rv;
	}
	if (rv != FM_OK && user) {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-PATH", "%s, skipped", e.msg);
	}
	return FM_OK;
}

/* Each absolute entry of a ':'-separated list. Empty and relative entries
 * are ignored: the working directory is never searched. */
static int
load_path_list(fmi_registry *r, const char *list, reg_seen *seen)
{
	char dir[PATH_MAX];
	while (*list != '\0') {
		size_t n = strcspn(list, ":");
		if (n > 0 && n < sizeof dir && list[0] == '/') {
			memcpy(dir, list, n);
			dir[n] = '\0';
			if (load_default_dir(r, dir, seen, 1) == FM_ENOMEM) {
				return FM_ENOMEM;
			}
		} else if (n > 0) {
			fm_log(FM_LOG_WARN, "FM-PLUGIN-PATH", "FEDMESH_PLUGIN_PATH "
			    "entry '%.*s' is not an absolute directory, ignored",
			    (int)FMI_MIN(n, 200), list);
		}
		list += n;
		list += *list == ':';
	}
	return FM_OK;
}

int
fmi_registry_load_defaults(fmi_registry *r, fm_error *err)
{
	const char *builtin = fmi_builtin_plugin_dir();
	const char *env = getenv("FEDMESH_PLUGIN_PATH");
	if (r == NULL) {
		return fm_error_set(err, FM_EINVAL, "no registry");
	}
	reg_seen *seen = calloc(1, sizeof *seen);
	int rv = seen == NULL ? FM_ENOMEM : FM_OK;
	if (rv == FM_OK && builtin != NULL) {
		rv = load_default_dir(r, builtin, seen, 0);
	}
	if (rv == FM_OK && env != NULL) {
		rv = load_path_list(r, env, seen);
	}
	free(seen);
	if (rv != FM_OK) {
		return fm_error_set(err, rv, "loading plugins: out of memory");
	}
	return FM_OK;
}

