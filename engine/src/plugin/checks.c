/* SPDX-License-Identifier: MIT */
/* checks.c: what the loader checks in a plugin's descriptor, shared by
 * the 2.0 loader (loader.c) and the 1.x layer (abi1.c): names, parameter
 * declarations, the ELF size of the descriptor symbol. */
#define _GNU_SOURCE /* dladdr1 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#if defined(__GLIBC__)
#include <link.h>
#endif

#include "core/core.h"
#include "plugin/plugin_int.h"

int
fmi_nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* Component names: 1..63 of [A-Za-z0-9_.-]. */
int
fmi_component_name_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n > FMI_PLUGIN_MAX_NAME) {
		return 0;
	}
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_.-") == n;
}

/* Parameter names: snake_case, 1..63 characters. */
int
fmi_param_name_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n > FMI_PLUGIN_MAX_NAME || s[0] < 'a' || s[0] > 'z') {
		return 0;
	}
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* The ELF size of a data symbol, or 0 when the platform cannot tell. */
size_t
fmi_sym_size(const void *sym)
{
#if defined(__GLIBC__)
	Dl_info info;
	const ElfW(Sym) *es = NULL;
	if (dladdr1(sym, &info, (void **)&es, RTLD_DL_SYMENT) != 0 &&
	    es != NULL) {
		return (size_t)es->st_size;
	}
#else
	(void)sym;
#endif
	return 0;
}

/* Why a parameter declaration is wrong (into why), or 0 if it is fine. */
int
fmi_param_desc_bad(const fm_param_desc *p, const fm_param_desc *prev, size_t n,
    char *why, size_t size)
{
	int numeric = p->type == FM_PARAM_INT || p->type == FM_PARAM_REAL;
	if (!fmi_param_name_ok(p->name)) {
		snprintf(why, size, "name is not snake_case (1..63 of [a-z0-9_])");
	} else if (p->type < FM_PARAM_INT || p->type > FM_PARAM_STRING) {
		snprintf(why, size, "unknown type %d", (int)p->type);
	} else if (numeric && !(p->min <= p->def && p->def <= p->max)) {
		snprintf(why, size, "default %g is not in [%g, %g]", p->def,
		    p->min, p->max);
	} else if (p->type == FM_PARAM_INT && p->def != floor(p->def)) {
		snprintf(why, size, "integer default %g", p->def);
	} else if (p->type == FM_PARAM_BOOL && p->def != 0 && p->def != 1) {
		snprintf(why, size, "boolean default %g is not 0 or 1", p->def);
	} else {
		for (size_t j = 0; j < n; j++) {
			if (strcmp(prev[j].name, p->name) == 0) {
				snprintf(why, size, "declared twice");
				return 1;
			}
		}
		return 0;
	}
	return 1;
}
