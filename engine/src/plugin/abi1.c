/* SPDX-License-Identifier: MIT */
/* abi1.c: placeholder until the 1.x translation layer lands. */
#include "plugin/abi1.h"

int
fmi_abi1_load(const void *descriptor, void *init, const char *path,
    fmi_abi1 **out, const fm_component_desc **descs, size_t *n,
    fm_error *err)
{
	(void)descriptor;
	(void)init;
	*out = NULL;
	*descs = NULL;
	*n = 0;
	return fm_error_set(err, FM_EVERSION, "plugin %s: built for plugin "
	    "ABI 1.x; rebuild it against ABI 2.0", path);
}

void
fmi_abi1_free(fmi_abi1 *a)
{
	(void)a;
}
