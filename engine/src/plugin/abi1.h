/* SPDX-License-Identifier: MIT */
/* abi1.h: loading ABI 1.x plugins through a translation layer (private). */
#ifndef FMI_PLUGIN_ABI1_H
#define FMI_PLUGIN_ABI1_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/errors.h"
#include "fedmesh/plugin.h"

/* ---- ABI 1.4's layouts, under other names ---------------------------------
 *
 * Copied field for field from the 1.4 plugin.h (git show of the commit
 * before ABI 2.0). Never change them: they describe files already built.
 * fm_instance, fm_param_desc, fm_value, fm_attack_data and fm_host_api kept
 * their 1.x layouts in 2.0 (fm_instance's struct_size sits in 1.x's
 * reserved0; fm_host_api only appended parallel_for and limits), so 1.x
 * code uses the 2.0 types for those.
 */

typedef struct fm1_component_desc {
	uint32_t kind;
	const char *name;
	const char *description;
	const fm_param_desc *params; /* NULL-name terminated; may be NULL */
} fm1_component_desc;

typedef struct fm1_plugin_info {
	uint32_t magic;
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t info_size;
	uint32_t build_sig;
	const char *name;
	const char *version;
	const char *license;
	const char *description;
	const fm1_component_desc *components; /* sizeof(fm1_component_desc)
	                                       * apart */
	uint32_t ncomponents;
	uint32_t reserved0;
	void *reserved[4];
} fm1_plugin_info;

typedef struct fm1_round {
	uint32_t round;
	uint32_t nclients;
	const int32_t *clients;
	const float *global;
	size_t dim;
	uint32_t population; /* 1.2 */
	double lr_scale;     /* 1.4 */
} fm1_round;

typedef struct fm1_update {
	int32_t client;
	uint32_t round;
	const float *delta;
	size_t dim;
	uint64_t num_examples;
	double loss;
	uint64_t steps; /* 1.1 */
} fm1_update;

typedef struct fm1_message {
	int32_t from;
	uint32_t round;
	const void *data;
	size_t len;
} fm1_message;

typedef struct fm1_local_task {
	uint32_t struct_size;
	uint32_t round;
	const float *global;
	size_t dim;
	uint64_t num_examples;
	uint32_t epochs, batch;
	double lr;
} fm1_local_task;

typedef struct fm1_local_result {
	uint32_t struct_size;
	uint32_t round;
	const float *global;
	const float *params;
	size_t dim;
	uint64_t steps;
	uint64_t num_examples;
	double lr;
	double loss;
} fm1_local_result;

typedef struct fm1_aggregator_ops {
	uint32_t a_struct_size;
	uint32_t a_kind;
	const char *a_name;
	size_t a_state_size;
	int (*a_init)(void *st, const fm_instance *inst);
	void (*a_fini)(void *st);
	int (*a_begin)(void *st, const fm1_round *r);
	int (*a_accept)(void *st, const fm1_update *u);
	int (*a_finish)(void *st, float *global, size_t dim);
	int (*a_on_message)(void *st, const fm1_message *m);
	int (*a_on_timer)(void *st, uint64_t tag);
	/* 1.2 */
	int (*a_local_begin)(void *st, const fm1_local_task *t);
	const float *(*a_local_grad)(void *st, const float *w, size_t dim);
	void (*a_local_step)(void *st, float *w, size_t dim, double lr);
	int (*a_local_end)(void *st, const fm1_local_result *r);
	/* 1.3 */
	int (*a_accept_many)(void *st, const fm1_update *u, uint32_t n,
	    int *status);
} fm1_aggregator_ops;

typedef struct fm1_peer_model {
	int32_t peer;
	uint32_t out_degree;
	const float *params;
	double weight;
	double mass;
	uint64_t num_examples;
} fm1_peer_model;

typedef struct fm1_mix {
	uint32_t round;
	int32_t self;
	uint32_t in_degree;
	uint32_t out_degree;
	const fm1_peer_model *own;
	const fm1_peer_model *neighbours;
	uint32_t nneighbours;
	uint32_t reserved0;
} fm1_mix;

typedef struct fm1_consensus_ops {
	uint32_t c_struct_size;
	uint32_t c_kind;
	const char *c_name;
	size_t c_state_size;
	int (*c_init)(void *st, const fm_instance *inst);
	void (*c_fini)(void *st);
	int (*c_outgoing)(void *st, uint32_t round, uint32_t out_degree,
	    double *mass);
	int (*c_mix)(void *st, const fm1_mix *m, float *model, size_t dim);
	int (*c_on_message)(void *st, const fm1_message *m);
	int (*c_on_timer)(void *st, uint64_t tag);
} fm1_consensus_ops;

typedef struct fm1_defence_round {
	uint32_t struct_size;
	uint32_t round;
	uint32_t n;
	uint32_t reserved0;
	size_t dim;
	float *deltas;
	size_t stride;
	const fm1_update *updates;
	const float *global;
	const float *server_delta;
	uint32_t *keep;
	uint64_t *keep_examples;
	uint32_t nkeep;
	uint32_t reserved1;
} fm1_defence_round;

typedef struct fm1_defence_ops {
	uint32_t d_struct_size;
	uint32_t d_kind;
	const char *d_name;
	size_t d_state_size;
	int (*d_init)(void *st, const fm_instance *inst);
	void (*d_fini)(void *st);
	int (*d_apply)(void *st, fm1_defence_round *r);
	int (*d_on_message)(void *st, const fm1_message *m);
	int (*d_on_timer)(void *st, uint64_t tag);
} fm1_defence_ops;

typedef struct fm1_attack_round {
	uint32_t struct_size;
	uint32_t round;
	uint32_t n;
	uint32_t nadv;
	size_t dim;
	float *deltas;
	size_t stride;
	const fm1_update *updates;
	const uint8_t *adversarial;
	const float *global;
	uint64_t seed;
} fm1_attack_round;

typedef struct fm1_attack_ops {
	uint32_t t_struct_size;
	uint32_t t_kind;
	const char *t_name;
	size_t t_state_size;
	int (*t_init)(void *st, const fm_instance *inst);
	void (*t_fini)(void *st);
	int (*t_poison_data)(void *st, fm_attack_data *d);
	int (*t_poison_updates)(void *st, fm1_attack_round *r);
} fm1_attack_ops;

/* The smallest tables a 1.x file may hand over, as a 1.4 host took them:
 * the 1.0 descriptor and aggregator ops, the 1.1 tables of the kinds that
 * arrived in 1.1. */
#define FM1_PLUGIN_INFO_SIZE_1_0 \
	(offsetof(fm1_plugin_info, reserved) + 4 * sizeof(void *))
#define FM1_AGG_OPS_SIZE_1_0 \
	(offsetof(fm1_aggregator_ops, a_on_timer) + sizeof(void (*)(void)))
#define FM1_DEF_OPS_SIZE_1_1 \
	(offsetof(fm1_defence_ops, d_on_timer) + sizeof(void (*)(void)))
#define FM1_ATK_OPS_SIZE_1_1 \
	(offsetof(fm1_attack_ops, t_poison_updates) + sizeof(void (*)(void)))
#define FM1_CONS_OPS_SIZE_1_1 \
	(offsetof(fm1_consensus_ops, c_on_timer) + sizeof(void (*)(void)))

/* Layout checks: a few offsets of the 1.4 header (the same on ILP32 and
 * LP64). */
_Static_assert(offsetof(fm1_plugin_info, name) == 16, "fm1_plugin_info");
_Static_assert(offsetof(fm1_plugin_info, ncomponents) ==
    offsetof(fm1_plugin_info, components) + sizeof(void *),
    "fm1_plugin_info.ncomponents");
_Static_assert(offsetof(fm1_aggregator_ops, a_name) == 8, "fm1 ops head");
_Static_assert(offsetof(fm1_aggregator_ops, a_state_size) ==
    offsetof(fm1_defence_ops, d_state_size), "fm1 ops head");
_Static_assert(offsetof(fm1_attack_ops, t_state_size) ==
    offsetof(fm1_consensus_ops, c_state_size), "fm1 ops head");
_Static_assert(offsetof(fm1_aggregator_ops, a_accept_many) ==
    offsetof(fm1_aggregator_ops, a_local_end) + sizeof(void (*)(void)),
    "fm1_aggregator_ops.a_accept_many");
_Static_assert(offsetof(fm1_update, delta) == 8, "fm1_update.delta");
_Static_assert(offsetof(fm1_round, population) ==
    offsetof(fm1_round, dim) + sizeof(size_t), "fm1_round.population");
_Static_assert(offsetof(fm1_mix, own) == 16, "fm1_mix.own");
_Static_assert(offsetof(fm1_defence_round, keep) ==
    offsetof(fm1_defence_round, server_delta) + sizeof(void *),
    "fm1_defence_round.keep");
_Static_assert(offsetof(fm1_attack_round, adversarial) ==
    offsetof(fm1_attack_round, updates) + sizeof(void *),
    "fm1_attack_round.adversarial");
/* What 1.x and 2.0 share. */
_Static_assert(offsetof(fm_instance, struct_size) ==
    offsetof(fm_instance, node_id) + sizeof(int32_t),
    "fm_instance.struct_size is 1.x's reserved0");
_Static_assert(offsetof(fm_instance, host_data) ==
    offsetof(fm_instance, seed) + sizeof(uint64_t), "fm_instance 1.x");
_Static_assert(offsetof(fm_host_api, set_error) ==
    offsetof(fm_host_api, client_state) + sizeof(void (*)(void)),
    "fm_host_api 1.x prefix");
_Static_assert(sizeof(fm1_local_task) == sizeof(fm_local_task),
    "fm_local_task");

/* ---- the translation layer ------------------------------------------------ */

typedef struct fmi_abi1 fmi_abi1; /* what one 1.x file became */

/*
 * descriptor: the file's fm_plugin_descriptor symbol (the caller checked
 * magic, abi_major == 1, build_sig; this checks the rest of the 1.x
 * descriptor as a 1.4 host did: info_size >= the 1.0 size, names,
 * components, params);
 * init: its fm_plugin_init symbol (int (*)(fm_registrar *,
 * const fm_host_api *)).
 * Calls init with a 1.x host table and its own registrar, checks every
 * registered 1.x ops table as the 1.4 host did (sizes per kind: 1.0 sizes
 * for aggregators, 1.1 for the others; kind; name declared; required
 * functions non-NULL), and builds one 2.0 fm_component_desc per component
 * whose ops (2.0 tables) translate every call to the 1.x table. On success
 * *descs and *n stay valid until fmi_abi1_free (which must come before the
 * file is dlclosed: names and parameters point into it). Failure:
 * FM_EPLUGIN or FM_EVERSION (a descriptor smaller than 1.0's, or an
 * aggregator with the 1.2 local-training hooks, which must be rebuilt
 * against 2.0), FM_ENOMEM, or FM_EINVAL for NULL arguments, with err
 * naming path and the reason; nothing allocated, *out and *descs NULL, *n 0.
 *
 * The translated components' instances must be opened by the host with
 * fm_instance.host_data pointing to the instance's fmi_inst_head, whose
 * comp->desc is one of *descs (registry.h).
 */
int fmi_abi1_load(const void *descriptor, void *init, const char *path,
    fmi_abi1 **out, const fm_component_desc **descs, size_t *n,
    fm_error *err);
void fmi_abi1_free(fmi_abi1 *a); /* NULL ok */

#endif /* FMI_PLUGIN_ABI1_H */
