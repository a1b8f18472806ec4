/* SPDX-License-Identifier: MIT */
/* init_fails.c: the descriptor's init fails (after saying why): none of
 * its components may remain. */
#include "tp_common.h"

static int
init_fails(const fm_host_api *host)
{
	host->log(FM_LOG_WARN, "FM-TEST-INIT", "init_fails: no such CPU");
	return FM_EIO;
}

static const fm_component_desc comps[] = {
	TP_COMPONENT("rollback_one"),
	TP_COMPONENT("rollback_two"),
};

FM_PLUGIN("init_fails", "1.0.0", "MIT", "init fails", comps, init_fails);
