/* SPDX-License-Identifier: MIT */
/* client_state.c: a deployed client host's per-client plugin state on disk
 * (deploy.client_state): FOLDER/NAME.state, loaded at start and written
 * after each client it trains, before that client's update leaves. */
#include <string.h>

#include "core/core.h"
#include "node/node.h"
#include "node/store.h"

int
fmi_client_state_load(fmi_store *st, const fmi_fed_cfg *cfg,
    const fmi_client_opts *opts, fm_error *err)
{
	fmi_store_keep_undo(st, 1);
	if (opts->state_file == NULL) {
		return FM_OK;
	}
	const char *host = opts->state_host != NULL ? opts->state_host : "";
	int rv = fmi_store_read(st, opts->state_file, fmi_fed_id(cfg->seed),
	    cfg->arch.nparams, host, err);
	if (rv == FM_ENOENT) {
		fm_log(FM_LOG_INFO, "FM-STATE", "client host %s: no state file "
		    "%s yet: its clients' plugin state starts from zero", host,
		    opts->state_file);
		return FM_OK;
	}
	if (rv != FM_OK) {
		return fm_error_set(err, rv, "client host %s: %s", host,
		    err != NULL ? err->msg : fm_strerror(rv));
	}
	fm_log(FM_LOG_INFO, "FM-STATE", "client host %s: clients' plugin "
	    "state loaded from %s (%zu bytes)", host, opts->state_file,
	    fmi_store_bytes(st));
	return FM_OK;
}

void
fmi_client_state_save(fmi_store *st, const fmi_fed_cfg *cfg,
    const fmi_client_opts *opts)
{
	fm_error e;
	if (opts->state_file == NULL || !fmi_store_dirty(st)) {
		return;
	}
	const char *host = opts->state_host != NULL ? opts->state_host : "";
	if (fmi_store_write(st, opts->state_file, fmi_fed_id(cfg->seed),
	        cfg->arch.nparams, host, &e) != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-STATE", "client host %s: %s (its clients' "
		    "plugin state will not survive a restart)", host, e.msg);
	}
}
