/* SPDX-License-Identifier: MIT */
/* no_init.c: a valid descriptor but no fm_plugin_init. */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("no_init") };

FM_PLUGIN_DEFINE("no_init", "1.0.0", "MIT", "no entry point", comps);
