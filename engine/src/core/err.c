/* SPDX-License-Identifier: MIT */
/* err.c: error codes to text, and fm_error. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

static const struct {
	int code;
	const char *msg;
} err_table[] = {
	{ FM_OK, "Success" },
	{ FM_ENOMEM, "Out of memory" },
	{ FM_EINVAL, "Invalid argument" },
	{ FM_ENOTSUP, "Not supported" },
	{ FM_ENOENT, "Not found" },
	{ FM_EEXIST, "Already exists" },
	{ FM_ESTATE, "Invalid state" },
	{ FM_ETIMEDOUT, "Timed out" },
	{ FM_ECLOSED, "Closed" },
	{ FM_EPROTO, "Protocol error (malformed message)" },
	{ FM_EVERSION, "Version mismatch" },
	{ FM_ECRYPTO, "Cryptographic check failed" },
	{ FM_EPLUGIN, "Plugin error" },
	{ FM_ESCRIPT, "Script error" },
	{ FM_EBUSY, "Resource busy" },
	{ FM_EIO, "I/O error" },
	{ FM_ERANGE, "Value out of range" },
	{ FM_EINTERNAL, "Internal error" },
};

FM_API const char *
fm_strerror(int code)
{
	static _Thread_local char buf[96];

	for (size_t i = 0; i < FMI_ARRAY_LEN(err_table); i++) {
		if (err_table[i].code == code) {
			return err_table[i].msg;
		}
	}
	if (code & FM_ESYSERR) {
		return strerror(code & ~FM_ESYSERR);
	}
	if (code & FM_ETRANERR) {
		snprintf(buf, sizeof buf, "Transport error #%d",
		    code & ~FM_ETRANERR);
		return buf;
	}
	snprintf(buf, sizeof buf, "Unknown error #%d", code);
	return buf;
}

FM_API int
fm_error_set(fm_error *err, int code, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return code;
}

FM_API const char *
fm_version(void)
{
	return FM_VERSION_STRING;
}
