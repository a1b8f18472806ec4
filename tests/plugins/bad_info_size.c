/* SPDX-License-Identifier: MIT */
/* bad_info_size.c: a descriptor claiming to be smaller than the 1.0 one. */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("bad_info_size") };

TP_INFO(FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, 16,
    FM_PLUGIN_BUILD_SIG, "bad_info_size", comps, 1,
    (uint32_t)sizeof(fm_component_desc));
