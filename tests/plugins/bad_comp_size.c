/* SPDX-License-Identifier: MIT */
/* bad_comp_size.c: a descriptor whose component_size is smaller than a
 * 2.0 fm_component_desc (the array could not be stepped safely). */
#include <stddef.h>

#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("bad_comp_size") };

TP_INFO(FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR,
    (uint32_t)sizeof(fm_plugin_info), FM_PLUGIN_BUILD_SIG, "bad_comp_size",
    comps, 1, (uint32_t)offsetof(fm_component_desc, ops));
