/* SPDX-License-Identifier: MIT */
/*
 * registry.h: loading plugins (dlopen), validating them, resolving user
 * parameters, and opening component instances.
 *
 * Load sequence for one file: dlopen(RTLD_NOW | RTLD_LOCAL) -> read the
 * data descriptor (magic, ABI major/minor, info_size, build_sig, names,
 * components, parameter declarations) -> find fm_plugin_init -> call it;
 * each ops table it registers is checked (struct size, kind, name declared,
 * required functions non-NULL) -> every declared component registered ->
 * commit. Any failure logs "FM-PLUGIN-*" with the file and reason, rolls
 * back what that file registered, dlcloses it, and leaves the registry as
 * it was. Plugins stay loaded until the registry is freed.
 */
#ifndef FMI_PLUGIN_REGISTRY_H
#define FMI_PLUGIN_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"
#include "fedmesh/plugin.h"

typedef struct fmi_registry fmi_registry;

typedef struct fmi_component {
	uint32_t kind;
	const fm_component_desc *desc; /* in the plugin's descriptor */
	const void *ops;               /* registered ops table */
	const fm_plugin_info *plugin;
	const char *path;              /* file it came from */
} fmi_component;

int fmi_registry_new(fmi_registry **out);
void fmi_registry_free(fmi_registry *r); /* dlcloses everything; NULL ok */

/* Loads one plugin file. On failure returns FM_EPLUGIN/FM_EVERSION/
 * FM_ENOENT/FM_EEXIST/FM_EINVAL with err naming the file and the reason;
 * the registry is unchanged. */
int fmi_registry_load_file(fmi_registry *r, const char *path, fm_error *err);
/* Loads every *.so in dir (sorted by name); bad files are logged and
 * skipped. *nloaded (may be NULL) counts the good ones. A missing dir is
 * FM_ENOENT. */
int fmi_registry_load_dir(fmi_registry *r, const char *dir, size_t *nloaded,
    fm_error *err);
/* Loads the built-in plugin dir (next to libfedmesh) and every dir in
 * FEDMESH_PLUGIN_PATH (colon-separated). Missing dirs are skipped. */
int fmi_registry_load_defaults(fmi_registry *r, fm_error *err);

/* kind 0 matches any kind. NULL when absent. */
const fmi_component *fmi_registry_find(const fmi_registry *r, uint32_t kind,
    const char *name);
size_t fmi_registry_count(const fmi_registry *r);
const fmi_component *fmi_registry_at(const fmi_registry *r, size_t i);

const char *fmi_kind_name(uint32_t kind); /* "aggregator", ... */
uint32_t fmi_kind_from_name(const char *name); /* 0 if unknown */

/*
 * A user-supplied parameter (from Lua or a config). is_str selects str,
 * otherwise num (booleans as 0/1).
 */
typedef struct fmi_param_in {
	const char *name;
	int is_str;
	double num;
	const char *str;
} fmi_param_in;

/*
 * Resolves user parameters against the component's declarations into
 * out[nparams] (declaration order; defaults for what is not given).
 * Unknown names, wrong types, non-integers for FM_PARAM_INT, and values out
 * of [min, max] are FM_EINVAL; the message names the component and the
 * parameter and lists the valid parameters with their ranges. Strings in
 * out point into in[] or the descriptor (no copies).
 */
size_t fmi_component_nparams(const fmi_component *c);
int fmi_params_resolve(const fmi_component *c, const fmi_param_in *in,
    size_t nin, fm_value *out, fm_error *err);

/* The host API table handed to plugins (static, process-wide). */
const fm_host_api *fmi_host_api(void);

/*
 * How an instance reaches the node it runs on: the node sets these before
 * opening an instance; host->send/timer/metric forward to them. All may be
 * NULL (then send/timer return FM_ENOTSUP and metric is dropped).
 */
typedef struct fmi_node_link {
	void *node;
	int (*send)(void *node, const char *component, int32_t to,
	    const void *data, size_t len);
	int (*timer)(void *node, const char *component, uint32_t ms,
	    uint64_t tag);
	void (*metric)(void *node, const char *name, double value);
	void *(*state)(void *node, const char *component, size_t size);
} fmi_node_link;

/* What every open instance has; fm_instance.host_data points here. */
typedef struct fmi_inst_head {
	const fmi_component *comp;
	fmi_node_link link;
	void *state;      /* ops->*_state_size zeroed bytes */
	fm_value *params; /* a copy, strings included */
	fm_instance inst;
	char error[256];  /* host->set_error's reason, "" when none */
} fmi_inst_head;

/* The reason the plugin gave (host->set_error) for the call that just
 * failed, copied to buf and cleared; "" when it gave none. */
const char *fmi_inst_error(fmi_inst_head *h, char *buf, size_t size);

/* An open aggregator instance. */
typedef struct fmi_agg {
	fmi_inst_head h;
	const fm_aggregator_ops *ops;
} fmi_agg;

/* Opens an instance: allocates ops->a_state_size zeroed bytes, copies the
 * params, calls a_init. On failure calls a_fini, frees, and returns the
 * code with err set. */
int fmi_agg_open(fmi_agg **out, const fmi_component *c, const fm_value *params,
    size_t dim, uint32_t role, int32_t node_id, uint64_t seed,
    const fmi_node_link *link, fm_error *err);
void fmi_agg_close(fmi_agg *a); /* NULL ok */
/* Whether an aggregator takes part in its clients' local training (any
 * of the ABI 1.2 a_local_* calls). */
int fmi_agg_trains(const fm_aggregator_ops *o);

/* Accepts u[0..n) in order: one a_accept_many call when the plugin has
 * it, else n calls of a_accept; status[k] is what u[k] got. Returns FM_OK
 * or the error of an a_accept_many that failed as a whole. */
int fmi_agg_accept_many(fmi_agg *a, const fm_update *u, uint32_t n,
    int *status);

/* An open consensus instance of peer `peer` (role FM_ROLE_PEER). */
typedef struct fmi_cons {
	fmi_inst_head h;
	const fm_consensus_ops *ops;
} fmi_cons;

int fmi_cons_open(fmi_cons **out, const fmi_component *c,
    const fm_value *params, size_t dim, int32_t peer, uint64_t seed,
    const fmi_node_link *link, fm_error *err);
void fmi_cons_close(fmi_cons *c); /* NULL ok */

/* An open defence instance on an aggregating node. */
typedef struct fmi_def {
	fmi_inst_head h;
	const fm_defence_ops *ops;
} fmi_def;

/* max_updates and flags: fm_instance's (1.4), what the defence may see. */
int fmi_def_open(fmi_def **out, const fmi_component *c,
    const fm_value *params, size_t dim, uint32_t role, int32_t node_id,
    uint64_t seed, uint32_t max_updates, uint32_t flags, fm_error *err);
void fmi_def_close(fmi_def *d); /* NULL ok */

/* An open attack instance (on a client host or an aggregating node). */
typedef struct fmi_atk {
	fmi_inst_head h;
	const fm_attack_ops *ops;
} fmi_atk;

int fmi_atk_open(fmi_atk **out, const fmi_component *c,
    const fm_value *params, size_t dim, uint32_t role, int32_t node_id,
    uint64_t seed, fm_error *err);
void fmi_atk_close(fmi_atk *t); /* NULL ok */

#endif /* FMI_PLUGIN_REGISTRY_H */
