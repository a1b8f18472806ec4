/* SPDX-License-Identifier: MIT */
/*
 * errors.h: error codes, log levels and attribute macros shared by the
 * embedding API (fedmesh.h) and the plugin ABI (plugin.h). Declares no
 * functions, so plugins can include it without any link to libfedmesh.
 */
#ifndef FEDMESH_ERRORS_H
#define FEDMESH_ERRORS_H

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

/* An error with a detailed message, filled by functions that take one. */
typedef struct fm_error {
	int code;
	char msg[512];
} fm_error;

/* Log levels. */
enum fm_log_level {
	FM_LOG_ERR = 0,
	FM_LOG_WARN = 1,
	FM_LOG_INFO = 2,
	FM_LOG_DEBUG = 3
};

#ifdef __cplusplus
}
#endif
#endif /* FEDMESH_ERRORS_H */
