/* SPDX-License-Identifier: MIT */
/* dup_fedavg.c: an impostor declaring the built-in fedavg's name. */
#include "tp_common.h"

static const fm_component_desc comps[] = { TP_COMPONENT("fedavg") };

FM_PLUGIN("dup_fedavg", "6.6.6", "MIT", "claims to be fedavg", comps, NULL);
