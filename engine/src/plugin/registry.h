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
	const fm_component_desc *desc; /* in the plugin's descriptor (2.0);
	                                * for a 1.x plugin, the host's 2.0
	                                * translation of it */
	const void *ops;               /* desc->ops: starts with fm_ops */
	const fm_plugin_info *plugin;  /* for a 1.x plugin (abi_major 1),
	                                * only the fields up to description
	                                * (1.x's layout is the same so far) */
	const char *path;              /* file it came from */
	uint32_t abi_major;            /* what the plugin was built for */
	uint32_t abi_minor;
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
 * opening an instance; host->send/timer/metric/client_state
 * forward to them. All may be NULL (then send/timer return FM_ENOTSUP,
 * metric is dropped and client_state gives NULL).
 */
typedef struct fmi_node_link {
	void *node;
	int (*send)(void *node, const char *component, int32_t to,
	    const void *data, size_t len);
	int (*timer)(void *node, const char *component, uint32_t ms,
	    uint64_t tag);
	void (*metric)(void *node, const char *name, double value);
	void *(*state)(void *node, const char *component, size_t size);
	uint32_t threads;  /* fm_limits.threads, host->parallel_for's; 0: 1 */
	uint64_t memory;   /* fm_limits.memory; 0: unknown */
	int secure_noise;  /* host->gauss_noise uses the secure sampler */
} fmi_node_link;

/* What every open instance has; fm_instance.host_data points here. */
typedef struct fmi_inst_head {
	const fmi_component *comp;
	const fm_ops *base;  /* the component's ops, fm_ops part */
	fmi_node_link link;
	void *state;      /* base->state_size zeroed bytes */
	fm_value *params; /* a copy, strings included */
	fm_instance inst;
	char error[256];  /* host->set_error's reason, "" when none */
} fmi_inst_head;

/* The reason the plugin gave (host->set_error) for the call that just
 * failed, copied to buf and cleared; "" when it gave none. */
const char *fmi_inst_error(fmi_inst_head *h, char *buf, size_t size);

/* What an instance is opened with (fm_instance's fields). */
typedef struct fmi_open_args {
	const fm_value *params;  /* fmi_component_nparams(c) resolved values */
	size_t dim;
	uint32_t role;           /* enum fm_role */
	int32_t node_id;
	uint64_t seed;
	uint32_t max_updates;    /* fm_instance.max_updates; 0: unknown */
	uint32_t flags;          /* FM_INST_* */
	const fmi_node_link *link; /* NULL: no link */
} fmi_open_args;

/*
 * The calls every kind has (fm_ops). A message or timer for an instance
 * whose component has no handler is FM_ENOTSUP. save/load: FM_ENOTSUP
 * when the component keeps no state across restarts (fmi_inst_saves).
 */
int fmi_inst_message(fmi_inst_head *h, const fm_message *m);
int fmi_inst_timer(fmi_inst_head *h, uint64_t tag);
int fmi_inst_handles_messages(const fmi_inst_head *h);
/* Whether c's instances take messages (a protocol with counterparts). */
int fmi_component_handles_messages(const fmi_component *c);
/* Whether attack component c has poison_updates (model poisoning). */
int fmi_component_poisons_updates(const fmi_component *c);
/* Whether privacy component c runs on side FM_PRIVACY_CLIENT or
 * FM_PRIVACY_SERVER (its flags say so). */
int fmi_component_privacy_runs(const fmi_component *c, uint32_t side);
/* Whether privacy component c acts on an aggregating node's rows (it
 * runs there and has a server call): its guarantee needs that node
 * (central DP, secure aggregation), unlike local DP. */
int fmi_component_privacy_central(const fmi_component *c);
int fmi_inst_saves(const fmi_inst_head *h);
int fmi_inst_save(fmi_inst_head *h, void *buf, size_t cap, size_t *len);
int fmi_inst_load(fmi_inst_head *h, const void *buf, size_t len);

/*
 * One struct per kind, all opened the same way: allocates the state,
 * copies the params, calls init; on failure calls fini, frees, and
 * returns the code with err set (naming the component and its reason).
 * Close is NULL-safe. Call the plugin only through the typed calls below.
 */
#define FMI_KIND_INSTANCE(T, OPS)                                           \
	typedef struct T {                                                  \
		fmi_inst_head h;                                            \
		const OPS *ops;                                             \
	} T;                                                                \
	int T##_open(T **out, const fmi_component *c,                       \
	    const fmi_open_args *a, fm_error *err);                         \
	void T##_close(T *x)

FMI_KIND_INSTANCE(fmi_agg, fm_aggregator_ops);
FMI_KIND_INSTANCE(fmi_def, fm_defence_ops);
FMI_KIND_INSTANCE(fmi_atk, fm_attack_ops);
FMI_KIND_INSTANCE(fmi_cons, fm_consensus_ops);
FMI_KIND_INSTANCE(fmi_loc, fm_local_ops);
FMI_KIND_INSTANCE(fmi_priv, fm_privacy_ops);
FMI_KIND_INSTANCE(fmi_cmp, fm_compressor_ops);

/* Aggregator. accept: u[0..n) stepped by u->struct_size. */
int fmi_agg_begin(fmi_agg *a, const fm_round *r);
int fmi_agg_accept(fmi_agg *a, const fm_update *u, uint32_t n, int *status);
/* out[dim] must hold a copy of global (the pipeline's buffer). */
int fmi_agg_finish(fmi_agg *a, const float *global, float *out, size_t dim);

/* Defence. */
int fmi_def_apply(fmi_def *d, fm_rows *r);
int fmi_def_begin(fmi_def *d, const fm_round *r); /* FM_OK without one */

/* Attack: what the component can do, and the calls (FM_ENOTSUP when it
 * cannot). */
int fmi_atk_poisons_data(const fmi_atk *t);
int fmi_atk_poisons_updates(const fmi_atk *t);
int fmi_atk_poison_data(fmi_atk *t, fm_attack_data *d);
int fmi_atk_poison_updates(fmi_atk *t, fm_rows *r);

/* Consensus. outgoing: *mass = 0 and FM_OK when the rule has none. */
int fmi_cons_outgoing(fmi_cons *k, uint32_t round, uint32_t out_degree,
    double *mass);
int fmi_cons_mix(fmi_cons *k, const fm_mix *m, float *model, size_t dim);
/* The rule attaches a mass to its outgoing models (it has outgoing). */
int fmi_cons_has_outgoing(const fmi_cons *k);

/* Local-training rule; each call is FM_OK (grad: NULL) when the rule
 * does not have it. */
int fmi_loc_has_grad(const fmi_loc *l);
int fmi_loc_has_step(const fmi_loc *l);
int fmi_loc_begin(fmi_loc *l, const fm_local_task *t);
const float *fmi_loc_grad(fmi_loc *l, const float *w, size_t dim);
void fmi_loc_step(fmi_loc *l, float *w, size_t dim, double lr);
int fmi_loc_end(fmi_loc *l, const fm_local_result *r);
int fmi_loc_round_begin(fmi_loc *l, const fm_round *r);
int fmi_loc_accepted(fmi_loc *l, const fm_update *u, uint32_t n);
int fmi_loc_round_end(fmi_loc *l, const fm_round *r, const float *global,
    float *out, size_t dim);

/* Privacy; FM_OK when the mechanism has no such call. */
int fmi_priv_begin(fmi_priv *p, const fm_round *r);
int fmi_priv_client(fmi_priv *p, fm_private_update *u);
int fmi_priv_server(fmi_priv *p, fm_rows *r);

/* Compressor. */
size_t fmi_cmp_bound(fmi_cmp *z, size_t dim);
int fmi_cmp_encode(fmi_cmp *z, fm_codec *c);
int fmi_cmp_decode(fmi_cmp *z, fm_codec *c);

#endif /* FMI_PLUGIN_REGISTRY_H */
