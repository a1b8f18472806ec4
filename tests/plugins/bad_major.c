/* SPDX-License-Identifier: MIT */
/* bad_major.c: a plugin built for a future, incompatible ABI (3.0). */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("bad_major") };

TP_INFO(FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR + 1, 0,
    (uint32_t)sizeof(fm_plugin_info), FM_PLUGIN_BUILD_SIG, "bad_major",
    comps, 1, (uint32_t)sizeof(fm_component_desc));
