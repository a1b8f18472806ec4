/* SPDX-License-Identifier: MIT */
/* not_a_plugin.c: a shared object without fm_plugin_descriptor. */
#include "fedmesh/plugin.h"

FM_PLUGIN_EXPORT int fmt_not_a_plugin(void);

FM_PLUGIN_EXPORT int
fmt_not_a_plugin(void)
{
	return 42;
}
