/* SPDX-License-Identifier: MIT */
/* fedmesh.h: the public embedding API of libfedmesh (errors, logging, version). */
#ifndef FEDMESH_FEDMESH_H
#define FEDMESH_FEDMESH_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FM_API __attribute__((visibility("default")))
#define FM_NODISCARD __attribute__((warn_unused_result))
#define FM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FM_API
#define FM_NODISCARD
#define FM_PRINTF(a, b)
#endif

/*
 * Error codes. The numbers are permanent: they cross the plugin ABI and the
 * wire. Never renumber, never reuse; append only.
 */
enum fm_errno {
	FM_OK = 0,
	FM_ENOMEM = 1,    /* out of memory */
	FM_EINVAL = 2,    /* invalid argument or parameter */
	FM_ENOTSUP = 3,   /* not supported */
	FM_ENOENT = 4,    /* no such file, plugin or entry */
	FM_EEXIST = 5,    /* already exists (e.g. duplicate plugin name) */
	FM_ESTATE = 6,    /* operation not valid in this state */
	FM_ETIMEDOUT = 7, /* a deadline passed */
	FM_ECLOSED = 8,   /* object or peer closed */
	FM_EPROTO = 9,    /* malformed or unexpected message */
	FM_EVERSION = 10, /* ABI, wire or file format version mismatch */
	FM_ECRYPTO = 11,  /* authentication or decryption failed */
	FM_EPLUGIN = 12,  /* plugin refused or failed */
	FM_ESCRIPT = 13,  /* Lua script error */
	FM_EBUSY = 14,    /* resource busy */
	FM_EIO = 15,      /* I/O error (file, socket) */
	FM_ERANGE = 16,   /* value out of range (e.g. NaN/Inf, too large) */
	FM_EINTERNAL = 1000,
	FM_ESYSERR = 0x10000000, /* OR'd with errno */
	FM_ETRANERR = 0x20000000 /* OR'd with a ZeroMQ errno */
};

/* Returns a static, never-NULL description of an error code. */
FM_API const char *fm_strerror(int code);

/* An error with a detailed message, filled by functions that take one. */
typedef struct fm_error {
	int code;
	char msg[512];
} fm_error;

/* Fills err (may be NULL) and returns code. */
FM_API int fm_error_set(fm_error *err, int code, const char *fmt, ...)
    FM_PRINTF(3, 4);

/* Log levels. */
enum fm_log_level {
	FM_LOG_ERR = 0,
	FM_LOG_WARN = 1,
	FM_LOG_INFO = 2,
	FM_LOG_DEBUG = 3
};

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
