/* SPDX-License-Identifier: MIT */
/* lfm.h: internal declarations shared by the Lua binding files. */
#ifndef FMI_LUA_LFM_H
#define FMI_LUA_LFM_H

#include <lauxlib.h>
#include <lua.h>

#include "data/data.h"
#include "model/model.h"
#include "node/fed.h"
#include "plugin/registry.h"

#define LFM_DATASET "fedmesh.Dataset"
#define LFM_PARTITION "fedmesh.Partition"
#define LFM_MODEL "fedmesh.Model"
#define LFM_EXPERIMENT "fedmesh.Experiment"
#define LFM_RESULT "fedmesh.Result"
#define LFM_GRAPH "fedmesh.Graph"

typedef struct lfm_dataset {
	fmi_dataset *d;
} lfm_dataset;

typedef struct lfm_partition {
	fmi_partition *p;
	fmi_dataset *d; /* the dataset it indexes (referenced) */
} lfm_partition;

/* A Model: an architecture (fm.model.mlp{...}), or one with parameters
 * (result.model, fm.model.load, m:init). */
typedef struct lfm_model {
	fmi_arch arch;
	float *params; /* [arch.nparams] (owned), or NULL: architecture only */
} lfm_model;

/* A plugin component chosen by name with parameters, as in
 * `aggregator = { "fedadam", lr = 0.01 }`. */
typedef struct lfm_comp {
	const fmi_component *c;
	fm_value *params; /* resolved, in declaration order */
	char **strs;      /* owned copies of string values */
	uint32_t nparams;
} lfm_comp;

/* Reads `"name"` or `{ "name", p = v, ... }` at index t (nil: def) as a
 * component of kind; raises a Lua error naming fn and field
 * (lexp_config.c). */
void lfm_read_component(lua_State *L, int t, uint32_t kind, const char *fn,
    const char *field, const char *def, lfm_comp *out);
void lfm_comp_free(lfm_comp *c);

/* An experiment (fedmesh.Experiment userdata). */
typedef struct lexp {
	fmi_fed_cfg cfg;
	fmi_arch arch;
	lfm_comp agg;
	lfm_comp rule; /* a local-training rule named as the aggregator */
	lfm_comp def; /* defence, or .c == NULL */
	lfm_comp atk; /* attack, or .c == NULL */
	lfm_comp priv; /* privacy mechanism, or .c == NULL */
	lfm_comp level_agg[FMI_HIER_MAX_LEVELS]; /* hierarchical: per level */
	/* decentralized (topology is a peer-to-peer graph) */
	struct fmi_graph *graph; /* owned by the topology value: */
	int graph_ref;           /* registry ref keeping it alive */
	lfm_comp cons;
	uint32_t eval_samples;
	uint8_t *byzantine; /* [peers] or NULL */
	int independent_init;
	int on_round; /* registry ref or LUA_NOREF */
	int quiet;
	char *metrics; /* JSONL path or NULL */
	/* while running */
	lua_State *L;
	FILE *mf;
	int rows; /* registry ref of the rows table */
	int best_round;
	double best_acc;
	/* on a terminal: one progress line redrawn in place */
	int live;
	double t_start, last_acc;
	uint32_t nseen;
	/* deployment (ldeploy.c) */
	int has_deploy;
	fmi_deploy_cfg deploy;
	char (*node_names)[FMI_NODE_NAME_MAX + 1];
	char (*peer_addrs)[256];
	/* deploy.edges: names, addresses and binds of the edge aggregators */
	char (*edge_names)[FMI_NODE_NAME_MAX + 1];
	char (*edge_addrs)[256];
	char (*edge_binds)[256];
	char *checkpoint;
	/* the top-level checkpoint (simulations) and resume = true */
	char *ckpt_path;
	int resume;
	float *init_params; /* warm start: the model's parameters, or NULL */
} lexp;

/* Decentralized experiments (lpeer.c). */
struct fmi_p2p_cfg;
void lfm_p2p_read(lua_State *L, lexp *x, int t, struct fmi_graph *g);
void lfm_p2p_cfg(const lexp *x, struct fmi_p2p_cfg *p);
/* The adversaries table at t: x->byzantine[n] marks a seeded `fraction`
 * of the n ids and those listed under `list` ("clients", "peers")
 * (lexp_config.c). */
void lfm_read_adversary_set(lua_State *L, int t, lexp *x, uint32_t n,
    const char *list, const char *fn);


/* lexp_run.c: runs a federation through run (simulation or deployed
 * server) with the per-round plumbing (progress, --metrics, on_round,
 * result table). */
typedef int (*lfm_runner)(lexp *x, fmi_fed_result *res, fm_error *err);
int lfm_exp_execute(lua_State *L, lexp *x, lfm_runner run, const char *what);
int lfm_exp_simulate(lua_State *L);           /* exp:simulate() */
/* lexperiment.c: pushes a result table built from the rows table at index
 * rows. */
void lfm_push_result(lua_State *L, int rows, double seconds, size_t nparams);
lexp *lfm_check_exp(lua_State *L, int idx);

/* ldeploy.c */
void lfm_read_deploy(lua_State *L, lexp *x);  /* field 'deploy' of arg 1 */
void lfm_release_deploy(lexp *x);
int lfm_exp_run(lua_State *L);                /* exp:run() */
int lfm_node(lua_State *L);                   /* fm.node() */
int lfm_node_role_valid(const char *role);    /* a --role value */
/* Reads a JSON Lines metrics file written by --metrics into a new table
 * of rows at the top of the stack. */
int lfm_read_jsonl(lua_State *L, const char *path);

/* ldata.c */
void lfm_open_data(lua_State *L);          /* pushes fm.data */
void lfm_open_partition(lua_State *L);     /* pushes fm.partition */
lfm_dataset *lfm_check_dataset(lua_State *L, int idx);
lfm_partition *lfm_check_partition(lua_State *L, int idx);
void lfm_push_dataset(lua_State *L, fmi_dataset *d); /* takes the ref */
/* A deployed node's own data: replaces *train and *part (borrowed) by a
 * compact dataset and partition (new references, for the caller to
 * release) holding only the rows of the clients c with c % step == first:
 * client host `first` of `step` hosts, or peer i of n (first i, step n).
 * The other rows are never read. */
int lfm_keep_rows(fmi_dataset **train, fmi_partition **part, uint32_t first,
    uint32_t step, const char *node, fm_error *err);

/* lmodel.c */
void lfm_open_model(lua_State *L);     /* pushes fm.model */
lfm_model *lfm_check_model(lua_State *L, int idx);
/* Pushes a Model of a owning params (malloc'd, or NULL). */
void lfm_push_model(lua_State *L, const fmi_arch *a, float *params);
/* Raises "<fn>: model input size N does not match the data's M features
 * (model <arch>; <what> '<name>': ...)" when d does not fit a. */
void lfm_model_check_data(lua_State *L, const fmi_arch *a,
    const fmi_dataset *d, const char *fn, const char *what);

/* lexp_config.c (fm.experiment), lexperiment.c (the Experiment and Result
 * metatables) */
void lfm_open_topology(lua_State *L);  /* pushes fm.topology (ltopology.c) */
/* The graph behind a fm.topology.<p2p builder> value at idx, or NULL when
 * the value is not a peer-to-peer graph (star, hierarchical, other). */
struct fmi_graph *lfm_to_graph(lua_State *L, int idx);
int lfm_experiment(lua_State *L);      /* fm.experiment{...} */
void lfm_register_experiment(lua_State *L);

/* lrounds.c: metrics = { clients = true }, faults, learning-rate
 * schedules (fields of fm.experiment's table at index 1), and the rows'
 * per-client list */
void lfm_read_metrics(lua_State *L, lexp *x);
void lfm_read_faults(lua_State *L, lexp *x);
/* privacy, secure_noise, client_sampling, accountant, delta and
 * max_epsilon (lexp_privacy.c): after the topology, aggregator, defence,
 * attack and deployment are read. */
void lfm_read_privacy(lua_State *L, lexp *x);
/* Peer-to-peer local DP: the epsilon a peer spent after its releases of
 * rounds 1..round; NaN without privacy. */
double lfm_p2p_epsilon(const lexp *x, uint32_t round);
void lfm_read_lr_schedule(lua_State *L, int t, const char *fn, double base,
    fmi_lr_schedule *out);
void lfm_read_server_lr(lua_State *L, lexp *x);
void lfm_refuse_p2p_rounds(lua_State *L, const lexp *x);
void lfm_push_participants(lua_State *L, const fmi_round_metrics *m);

/* lresult.c: metrics rows as CSV / JSON Lines */
#include <stdio.h>
/* Writes the row table at index row as one JSON object line. */
void lfm_write_row_json(lua_State *L, FILE *f, int row);
int lfm_result_write_csv(lua_State *L);   /* result:write_csv(path) */
int lfm_result_write_jsonl(lua_State *L); /* result:write_jsonl(path) */

/* lprivacy.c */
void lfm_open_privacy(lua_State *L);   /* pushes fm.privacy */

/* laggregate.c */
int lfm_aggregate(lua_State *L); /* fm.aggregate(name, updates, params [, global]) */

/* lfedmesh.c */
FM_API int fm_lua_open(lua_State *L); /* luaopen body of `fedmesh` */
fmi_registry *lfm_registry(lua_State *L); /* loads defaults on first use */
/* Settings from the CLI (--threads, --metrics), kept in the registry. */
int lfm_default_threads(lua_State *L);
const char *lfm_default_metrics(lua_State *L);

/* Helpers for option tables. */
/* Raises "<fn>: unknown field 'x' (did you mean 'y'?; valid: a, b, c)" for
 * any string key of table idx not in valid (NULL-terminated). */
void lfm_check_fields(lua_State *L, int idx, const char *fn,
    const char *const *valid);
lua_Integer lfm_opt_int(lua_State *L, int t, const char *fn, const char *k,
    lua_Integer def, lua_Integer min, lua_Integer max);
lua_Number lfm_opt_num(lua_State *L, int t, const char *fn, const char *k,
    lua_Number def, lua_Number min, lua_Number max);
int lfm_opt_bool(lua_State *L, int t, const char *fn, const char *k, int def);
const char *lfm_opt_str(lua_State *L, int t, const char *fn, const char *k,
    const char *def);
/* t[k] = v for the table at the top of the stack. */
void lfm_set_num(lua_State *L, const char *k, lua_Number v);
void lfm_set_int(lua_State *L, const char *k, lua_Integer v);
void lfm_set_str(lua_State *L, const char *k, const char *v);
/* Reads the string keys of table t as plugin parameters into in[max]
 * (integer keys, such as the plugin name at [1], are skipped). The
 * strings stay valid while the table does. */
size_t lfm_read_params(lua_State *L, int t, const char *fn,
    const char *plugin, fmi_param_in *in, size_t max);
/* Raises a Lua error from an fm_error, prefixed with the caller's line. */
int lfm_raise(lua_State *L, const char *fn, const fm_error *e);

#endif /* FMI_LUA_LFM_H */
