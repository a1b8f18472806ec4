/* SPDX-License-Identifier: MIT */
/* util.c: time, core count, library location, small string helpers. */
#define _GNU_SOURCE /* dladdr1 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <link.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

double
fmi_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int
fmi_ncores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (int)n;
}

static char lib_dir[PATH_MAX];
static char plugin_dir[PATH_MAX + 32];
static pthread_once_t dir_once = PTHREAD_ONCE_INIT;

static void
find_dirs(void)
{
	Dl_info info;
	struct link_map *lm = NULL;
	char real[PATH_MAX];

	if (dladdr1((void *)fmi_lib_dir, &info, (void **)&lm,
	        RTLD_DL_LINKMAP) == 0) {
		return;
	}
	/* In the main program (the engine linked into bin/fedmesh), the
	 * dynamic linker's file name is argv[0] as typed: "fedmesh" when
	 * found through PATH, relative to a directory we may not be in.
	 * Only the kernel knows where the executable is. */
	int in_main = lm == NULL || lm->l_name == NULL || lm->l_name[0] == '\0';
	if (in_main) {
		ssize_t n = readlink("/proc/self/exe", real, sizeof real - 1);
		if (n <= 0) {
			return;
		}
		real[n] = '\0';
	} else if (info.dli_fname == NULL ||
	    realpath(info.dli_fname, real) == NULL) {
		return;
	}
	char *slash = strrchr(real, '/');
	if (slash == NULL) {
		return;
	}
	*slash = '\0';
	snprintf(lib_dir, sizeof lib_dir, "%s", real);
	/* An executable linking the engine statically sits in bin/: its
	 * plugins are in ../<libdir> once installed (lib/x86_64-linux-gnu
	 * on Debian), ../lib in the build tree. */
	size_t len = strlen(lib_dir);
	if (len >= 4 && strcmp(lib_dir + len - 4, "/bin") == 0) {
		struct stat st;
		snprintf(plugin_dir, sizeof plugin_dir, "%.*s/%s/%s",
		    (int)(len - 4), lib_dir, FM_INSTALL_LIBDIR,
		    FM_INSTALL_PLUGIN_SUBDIR);
		if (stat(plugin_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(plugin_dir, sizeof plugin_dir, "%.*s/lib/%s",
			    (int)(len - 4), lib_dir, FM_INSTALL_PLUGIN_SUBDIR);
		}
	} else {
		snprintf(plugin_dir, sizeof plugin_dir, "%s/%s", lib_dir,
		    FM_INSTALL_PLUGIN_SUBDIR);
	}
}

const char *
fmi_lib_dir(void)
{
	pthread_once(&dir_once, find_dirs);
	return lib_dir[0] ? lib_dir : NULL;
}

const char *
fmi_builtin_plugin_dir(void)
{
	pthread_once(&dir_once, find_dirs);
	return plugin_dir[0] ? plugin_dir : NULL;
}

int
fmi_strlcpy(char *dst, const char *src, size_t size)
{
	int n = snprintf(dst, size, "%s", src);
	return (n < 0 || (size_t)n >= size) ? FM_ERANGE : FM_OK;
}

/* Levenshtein distance, capped at 64 characters per string. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = FMI_MIN(strlen(a), 64), lb = FMI_MIN(strlen(b), 64);
	size_t row[65];

	for (size_t j = 0; j <= lb; j++) {
		row[j] = j;
	}
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t sub = prev + (a[i - 1] != b[j - 1]);
			row[j] = FMI_MIN(FMI_MIN(row[j] + 1, row[j - 1] + 1), sub);
			prev = cur;
		}
	}
	return row[lb];
}

const char *
fmi_closest(const char *s, const char *const *candidates)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1;

	for (size_t i = 0; candidates[i] != NULL; i++) {
		size_t d = edit_distance(s, candidates[i]);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	/* Only suggest plausible typos. */
	return (best != NULL && best_d <= 1 + strlen(s) / 3) ? best : NULL;
}

void
fmi_image_shape(size_t dim, uint32_t *width, uint32_t *height)
{
	size_t r = 0;
	while ((r + 1) * (r + 1) <= dim) {
		r++;
	}
	*width = *height = r * r == dim ? (uint32_t)r : 0;
}

int
fmi_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void
fmi_fsync_dir(const char *path)
{
	char copy[4096];
	snprintf(copy, sizeof copy, "%s", path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}
