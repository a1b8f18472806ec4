/* SPDX-License-Identifier: MIT */
/* log.c: leveled, thread-safe logging with stable message ids. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

static atomic_int log_level = -1;
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;
static fm_log_sink log_sink;
static void *log_sink_ud;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static int
level_from_env(void)
{
	const char *s = getenv("FEDMESH_LOG");
	if (s == NULL) {
		return FM_LOG_INFO;
	}
	for (int i = 0; i < 4; i++) {
		if (s[0] == level_names[i][0]) {
			return i;
		}
	}
	return FM_LOG_INFO;
}

FM_API int
fm_log_get_level(void)
{
	int l = atomic_load(&log_level);
	if (l < 0) {
		l = level_from_env();
		atomic_store(&log_level, l);
	}
	return l;
}

FM_API void
fm_log_set_level(int level)
{
	atomic_store(&log_level, FMI_MAX(0, FMI_MIN(level, FM_LOG_DEBUG)));
}

FM_API void
fm_log_set_sink(fm_log_sink sink, void *ud)
{
	pthread_mutex_lock(&log_mtx);
	log_sink = sink;
	log_sink_ud = ud;
	pthread_mutex_unlock(&log_mtx);
}

void
fmi_logv(int level, const char *id, const char *fmt, va_list ap)
{
	char line[1024];

	if (level > fm_log_get_level()) {
		return;
	}
	vsnprintf(line, sizeof line, fmt, ap);
	pthread_mutex_lock(&log_mtx);
	if (log_sink != NULL) {
		log_sink(log_sink_ud, level, id, line);
	} else {
		int l = FMI_MAX(0, FMI_MIN(level, FM_LOG_DEBUG));
		fprintf(stderr, "fedmesh %s [%s] %s\n", level_names[l],
		    id ? id : "-", line);
	}
	pthread_mutex_unlock(&log_mtx);
}

FM_API void
fm_log(int level, const char *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fmi_logv(level, id, fmt, ap);
	va_end(ap);
}
