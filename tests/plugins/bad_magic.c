/* SPDX-License-Identifier: MIT */
/* bad_magic.c: a descriptor whose magic is wrong. */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("bad_magic") };

TP_INFO(0xdeadbeefu, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR,
    (uint32_t)sizeof(fm_plugin_info), FM_PLUGIN_BUILD_SIG, "bad_magic",
    comps, 1, (uint32_t)sizeof(fm_component_desc));
