/* SPDX-License-Identifier: MIT */
/* fedmesh.h: the public embedding API of libfedmesh (errors, logging, version). */
#ifndef FEDMESH_FEDMESH_H
#define FEDMESH_FEDMESH_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/errors.h"
#include "fedmesh/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Returns a static, never-NULL description of an error code. */
FM_API const char *fm_strerror(int code);

/* Fills err (may be NULL) and returns code. */
FM_API int fm_error_set(fm_error *err, int code, const char *fmt, ...)
    FM_PRINTF(3, 4);

/*
 * Logs a message with a stable identifier, e.g.
 * fm_log(FM_LOG_WARN, "FM-WIRE-VER", "peer speaks v%u", v).
 * Thread-safe. Messages above the current level are dropped.
 */
FM_API void fm_log(int level, const char *id, const char *fmt, ...)
    FM_PRINTF(3, 4);

/* Sets the maximum level printed (default FM_LOG_INFO, or FEDMESH_LOG). */
FM_API void fm_log_set_level(int level);
FM_API int fm_log_get_level(void);

/*
 * Replaces the log sink (default: stderr). The sink receives the formatted
 * line without a trailing newline. Pass NULL to restore the default.
 */
typedef void (*fm_log_sink)(void *ud, int level, const char *id,
    const char *line);
FM_API void fm_log_set_sink(fm_log_sink sink, void *ud);

/* The library's version string, e.g. "0.1.0". */
FM_API const char *fm_version(void);

#ifdef __cplusplus
}
#endif
#endif /* FEDMESH_FEDMESH_H */
