/* SPDX-License-Identifier: MIT */
/* abi1.h: loading ABI 1.x plugins through a translation layer (private). */
#ifndef FMI_PLUGIN_ABI1_H
#define FMI_PLUGIN_ABI1_H

#include <stddef.h>

#include "fedmesh/fedmesh.h"
#include "fedmesh/plugin.h"

typedef struct fmi_abi1 fmi_abi1; /* what one 1.x file became */

/*
 * descriptor: the file's fm_plugin_descriptor (the caller checked magic,
 * abi_major == 1 and build_sig); init: its fm_plugin_init. Calls init
 * with a 1.x host table, checks every registered 1.x ops table as the 1.4
 * host did, and builds one 2.0 fm_component_desc per component whose ops
 * translate every call to the 1.x table. On success *descs and *n stay valid
 * until fmi_abi1_free. Failure: FM_EPLUGIN or FM_EVERSION with err naming
 * path and the reason, nothing allocated.
 */
int fmi_abi1_load(const void *descriptor, void *init, const char *path,
    fmi_abi1 **out, const fm_component_desc **descs, size_t *n,
    fm_error *err);
void fmi_abi1_free(fmi_abi1 *a); /* NULL ok */

#endif /* FMI_PLUGIN_ABI1_H */
