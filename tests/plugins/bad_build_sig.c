/* SPDX-License-Identifier: MIT */
/* bad_build_sig.c: a plugin whose build signature is another platform's. */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("bad_build_sig") };

TP_INFO(FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR,
    (uint32_t)sizeof(fm_plugin_info), FM_PLUGIN_BUILD_SIG ^ 0x0c,
    "bad_build_sig", comps, 1, (uint32_t)sizeof(fm_component_desc));
