/* SPDX-License-Identifier: MIT */
/*
 * plugin.h: the fedmesh plugin ABI, version 2.2.
 *
 * A plugin is a shared object that exports one symbol, its descriptor:
 *
 *   const fm_plugin_info fm_plugin_descriptor;
 *
 * The descriptor is data: magic, ABI version, struct sizes, build
 * signature, names, and one fm_component_desc per component with its
 * declared parameters and its ops table (a table of function pointers is
 * data too). The host dlopen()s the file, checks all of it and refuses the
 * file if anything is off before running a single instruction of the
 * plugin; then it calls the descriptor's optional init, and the
 * components exist. Declare a component with FM_COMPONENT and the plugin
 * with FM_PLUGIN (below); see docs/plugin-guide.md.
 *
 * Plugins never link libfedmesh: everything they need from the host
 * (memory, logging, RNG, BLAS kernels, a thread pool, messaging, timers)
 * comes through fm_host_api.
 *
 * Sizes. Every struct that crosses the boundary starts with (or, for
 * fm_instance, carries) its struct_size, and every array is stepped by its
 * elements' struct_size (FM_AT below), never by the reader's sizeof: so a
 * struct can grow by appending fields in a minor version, and each side
 * reads only the prefix both know (a newer plugin checks the size before
 * reading a field the host may not have: FM_HAS).
 *
 * Evolution: FM_PLUGIN_ABI_MAJOR changes on any incompatible change;
 * FM_PLUGIN_ABI_MINOR grows when fields are appended. Changelog:
 *   1.0  aggregator kind, host API with messaging and timers.
 *   1.1  consensus, defence and attack kinds; fm_update.steps.
 *   1.2  client-side local training hooks in the aggregator table,
 *        host->client_state, fm_round.population.
 *   1.3  a_accept_many.
 *   1.4  host->set_error, fm_instance.max_updates and .flags,
 *        fm_round.lr_scale.
 *   2.0  One shape for every kind (this file): every ops table starts
 *        with fm_ops (state size, init, fini, on_message, on_timer,
 *        save, load), so a plugin of any kind can run a protocol with its
 *        counterparts on other nodes and keep state across a restart; a
 *        size in every struct and with every array; ops tables in the
 *        component descriptor (no fm_plugin_init, no registration call);
 *        aggregators accept n updates per call and write the new model
 *        into a host-owned buffer; the local-training hooks are their own
 *        kind (FM_KIND_LOCAL: FedProx and SCAFFOLD are FedAvg plus a
 *        local rule); one update-matrix struct (fm_rows) for attacks,
 *        defences and the server side of privacy; ops tables for the
 *        privacy and compressor kinds; host->parallel_for and
 *        host->limits. The host still loads 1.x plugins (see
 *        docs/plugin-guide.md, "ABI 1.x plugins").
 *   2.1  FM_COMP_STATELESS (a component flag of every kind);
 *        fm_mix.out_sent, .nlate, .late: what a peer's own model reached
 *        and the delayed models, so push-sum keeps its mass under
 *        dropouts.
 *   2.2  host->gauss_noise: Gaussian noise for differential privacy
 *        through the host's sampler; fm_round.expected_clients.
 */
#ifndef FEDMESH_PLUGIN_H
#define FEDMESH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FM_PLUGIN_MAGIC 0x4c504d46u /* "FMPL" little endian */
#define FM_PLUGIN_ABI_MAJOR 2
#define FM_PLUGIN_ABI_MINOR 2

/*
 * Build signature: anything a compile flag could change in the layout of
 * the ABI structs. A mismatch means the plugin was built for another
 * platform or configuration and is refused.
 */
#define FM_PLUGIN_BUILD_SIG                                                 \
	((uint32_t)(sizeof(void *) | (sizeof(size_t) << 8) |                \
	    (sizeof(float) << 16) | (sizeof(double) << 24)))

/* Component kinds. Permanent numbers; append only. */
enum fm_kind {
	FM_KIND_AGGREGATOR = 1, /* server optimizer: FedAvg, FedAdam, ... */
	FM_KIND_DEFENCE = 2,    /* robust filters: Krum, median, ...      */
	FM_KIND_PRIVACY = 3,    /* DP noise, secure aggregation           */
	FM_KIND_CONSENSUS = 4,  /* gossip, push-sum, BFT                  */
	FM_KIND_COMPRESSOR = 5, /* top-k, quantization                    */
	FM_KIND_ATTACK = 6,     /* adversarial client behaviour           */
	FM_KIND_LOCAL = 7       /* 2.0: local-training rule: FedProx, ... */
};

/* Node roles, as seen by a component instance. */
enum fm_role {
	FM_ROLE_SERVER = 1,
	FM_ROLE_CLIENT = 2,
	FM_ROLE_EDGE = 3,
	FM_ROLE_PEER = 4
};

/* Node id of the server in a star federation; clients are 1..N. */
#define FM_NODE_SERVER 0

/* Element i of an array whose elements start with their struct_size. */
#define FM_AT(T, arr, i)                                                    \
	((T *)(void *)((char *)(void *)(arr) +                              \
	    (size_t)(i) * (size_t)(arr)->struct_size))
/* Whether *p (a struct starting with struct_size) has field f. */
#define FM_HAS(p, T, f)                                                     \
	((p)->struct_size >= offsetof(T, f) + sizeof(((T *)0)->f))

/* Declared parameter types. */
typedef enum fm_param_type {
	FM_PARAM_INT = 1,  /* integer, stored in fm_value.num */
	FM_PARAM_REAL = 2, /* double, stored in fm_value.num */
	FM_PARAM_BOOL = 3, /* 0 or 1, stored in fm_value.num */
	FM_PARAM_STRING = 4 /* stored in fm_value.str */
} fm_param_type;

/*
 * A declared parameter. The host validates every value a user gives
 * (type, range) before the plugin sees it. Arrays end with name == NULL
 * and are stepped by fm_component_desc.param_size.
 */
typedef struct fm_param_desc {
	const char *name;    /* snake_case, e.g. "lr" */
	uint32_t type;       /* fm_param_type (fixed width across compilers) */
	double def;          /* default for numeric types */
	double min, max;     /* inclusive range for numeric types */
	const char *def_str; /* default for FM_PARAM_STRING (may be NULL) */
	const char *doc;     /* one sentence */
} fm_param_desc;

/* A resolved parameter value; instances receive one per declared param,
 * in declaration order. */
typedef struct fm_value {
	double num;
	const char *str;
} fm_value;

/* What a component is, as data. Declare it with FM_COMPONENT. */
typedef struct fm_component_desc {
	uint32_t struct_size;        /* sizeof(fm_component_desc) */
	uint32_t kind;               /* enum fm_kind */
	const char *name;            /* unique within its kind: "fedavg" */
	const char *description;     /* one line */
	const fm_param_desc *params; /* NULL-name terminated; may be NULL */
	uint32_t param_size;         /* sizeof(fm_param_desc) */
	uint32_t flags;              /* kind-specific FM_*_ flags below */
	const void *ops;             /* the kind's ops table (fm_ops first) */
	uint32_t ops_size;           /* sizeof that table */
	uint32_t reserved0;
} fm_component_desc;

/*
 * fm_component_desc.flags of every kind (2.1): the component keeps
 * nothing across rounds that a restart would need, so it needs no
 * base.save/load. A component with neither this flag nor save/load is
 * named in a warning when a run checkpoints or resumes: the resume is not
 * exact for it. (Kind-specific flags use the low bits.)
 */
#define FM_COMP_STATELESS 0x80000000u

struct fm_host_api;

/* The descriptor. The first five fields are frozen forever. */
typedef struct fm_plugin_info {
	uint32_t magic;     /* FM_PLUGIN_MAGIC */
	uint16_t abi_major; /* FM_PLUGIN_ABI_MAJOR at build time */
	uint16_t abi_minor; /* FM_PLUGIN_ABI_MINOR at build time */
	uint32_t info_size; /* sizeof(fm_plugin_info) at build time */
	uint32_t build_sig; /* FM_PLUGIN_BUILD_SIG at build time */
	const char *name;        /* plugin (file) name: "fedavg" */
	const char *version;     /* the plugin's own semver: "1.0.0" */
	const char *license;     /* SPDX id */
	const char *description; /* one line */
	const fm_component_desc *components; /* array (component_size apart) */
	uint32_t ncomponents;                /* ... of this length (>= 1) */
	uint32_t component_size;             /* sizeof(fm_component_desc) */
	/* Optional: runs once after the descriptor was checked, before any
	 * component is used (probe a CPU feature, read a table). Not FM_OK:
	 * the file is refused, with the reason given by host->log. */
	int (*init)(const struct fm_host_api *host);
	void *reserved[4];
} fm_plugin_info;

/* ------------------------------------------------------------------ */
/* Seeded random numbers (xoshiro256**), state owned by the caller.    */

typedef struct fm_rng {
	uint64_t s[4];
} fm_rng;

/* ------------------------------------------------------------------ */
/* Instances.                                                          */

/*
 * The context a component instance lives in. Owned by the host, valid from
 * init to fini. params has one entry per declared parameter. (Its layout
 * is 1.x's, with struct_size in what was a reserved field, so that 1.x
 * plugins run unchanged.)
 */
typedef struct fm_instance {
	const struct fm_host_api *host;
	const fm_value *params; /* in declaration order */
	uint32_t nparams;
	uint32_t role;    /* enum fm_role of the node running this instance */
	int32_t node_id;  /* FM_NODE_SERVER, a client id, or a peer id */
	uint32_t struct_size; /* sizeof(fm_instance) */
	size_t dim;       /* number of float32 model parameters */
	uint64_t seed;    /* per-instance seed derived from the run seed */
	void *host_data;  /* opaque, for the host only */
	/* the most updates this instance can see in one round (a star's
	 * clients_per_round, an edge's sampled children at most); 0: unknown */
	uint32_t max_updates;
	uint32_t flags;   /* FM_INST_* */
} fm_instance;

/* fm_instance.flags */
#define FM_INST_ROOT_DATA 1u /* the node holds root data (server_delta) */

/* One round, as seen by an aggregating node's component (or a client's
 * local rule and privacy mechanism: then nclients = 1, clients = self).
 * Borrowed. */
typedef struct fm_round {
	uint32_t struct_size;    /* sizeof(fm_round) */
	uint32_t round;          /* 1-based */
	uint32_t nclients;       /* sampled clients this round */
	uint32_t population;     /* clients this node serves, sampled or not
	                          * (its children, in a hierarchy); 0: unknown */
	const int32_t *clients;  /* their node ids, in aggregation order */
	const float *global;     /* current global model [dim] */
	size_t dim;
	double lr_scale;         /* the server learning-rate schedule: an
	                          * aggregator with a learning rate uses
	                          * lr * lr_scale this round; 1 without one */
	/* ABI 2.2: the mean number of clients a round samples here:
	 * nclients when every round samples that many; population times
	 * the rate with Poisson sampling, where nclients varies (a DP mean
	 * divides by this fixed number, McMahan et al. 2018); 0: unknown
	 * (use nclients). Check struct_size before reading it. */
	double expected_clients;
} fm_round;

/* One client's update, as seen by the aggregating node. Borrowed: valid
 * only during the call; copy with host->alloc to keep it. */
typedef struct fm_update {
	uint32_t struct_size;  /* sizeof(fm_update); arrays step by it */
	int32_t client;        /* node id */
	uint32_t round;
	uint32_t reserved0;
	const float *delta;    /* client model minus global [dim] */
	size_t dim;
	uint64_t num_examples; /* local training examples */
	double loss;           /* mean local training loss */
	uint64_t steps;        /* local SGD steps taken (0: unknown) */
} fm_update;

/* A message from a counterpart instance (same component) on another
 * node. Borrowed. */
typedef struct fm_message {
	uint32_t struct_size; /* sizeof(fm_message) */
	int32_t from;         /* sender node id */
	uint32_t round;
	uint32_t reserved0;
	const void *data;
	size_t len;
} fm_message;

/* ------------------------------------------------------------------ */
/* What every kind's ops table starts with.                            */

/*
 * fm_ops: the first member (named base) of every ops table. The host
 * allocates state_size zeroed bytes (aligned as malloc aligns) per
 * instance, calls init, the kind's calls, and fini. All calls for one
 * instance come from one thread, never two at once. Return FM_OK or an
 * fm_errno; say why a call fails with host->set_error.
 */
typedef struct fm_ops {
	uint32_t struct_size; /* sizeof the kind's whole ops table */
	uint32_t kind;        /* enum fm_kind, as the component's */
	size_t state_size;
	/* Required. Sets up state. fini is called even if init fails. */
	int (*init)(void *st, const fm_instance *inst);
	/* Required. Releases what init and the other calls allocated. */
	void (*fini)(void *st);
	/* Optional: a message host->send'd by a counterpart instance of the
	 * same component on another node (secure aggregation's rounds, a
	 * committee's votes, SCAFFOLD's control variates). Messages sent in
	 * a round's call arrive before the next call of that round on the
	 * receiving side (a server's begin before its clients' training). */
	int (*on_message)(void *st, const fm_message *m);
	/* Optional: a timer set with host->timer fired. */
	int (*on_timer)(void *st, uint64_t tag);
	/* Optional, both or neither: state that must survive a restart
	 * (checkpoints). save writes at most cap bytes to buf and sets *len;
	 * with buf NULL or cap too small it sets *len to the bytes needed and
	 * returns FM_ERANGE. load gets exactly what a save wrote (by this
	 * version of the plugin, or an older one: keep a version byte) on a
	 * freshly initialised instance. */
	int (*save)(void *st, void *buf, size_t cap, size_t *len);
	int (*load)(void *st, const void *buf, size_t len);
} fm_ops;

/* The fm_ops of an ops table of type T, for a state of type S. */
#define FM_OPS(T, knd, S, init_fn, fini_fn)                                 \
	{ (uint32_t)sizeof(T), (knd), sizeof(S), (init_fn), (fini_fn),      \
		NULL, NULL, NULL, NULL }

/* ------------------------------------------------------------------ */
/* Aggregator (server optimizer).                                      */

/*
 * On an aggregating node (server, edge), per round the host calls begin
 * once, accept with the round's accepted updates (in one or several calls,
 * in a fixed order), and finish once, unless the round missed its quorum:
 * then finish is skipped, the model stays, and the next begin starts a new
 * round. A failing call fails the round and the model stays.
 */
typedef struct fm_aggregator_ops {
	fm_ops base;
	/* Required. A new round starts; r is borrowed. */
	int (*begin)(void *st, const fm_round *r);
	/* Required. u[0..n) (FM_AT-stepped), in order: status[k] gets
	 * FM_OK when u[k] is taken or the reason it is not. Returns FM_OK,
	 * or an fm_errno if it failed as a whole (status says which it
	 * took). Summing in one pass reads the accumulator once. */
	int (*accept)(void *st, const fm_update *u, uint32_t n, int *status);
	/* Required. Writes the new global model into out[dim], which holds a
	 * copy of global on entry (the host's buffer: the model in use only
	 * changes when the whole round succeeded). No update accepted: leave
	 * out as it is. */
	int (*finish)(void *st, const float *global, float *out, size_t dim);
} fm_aggregator_ops;

/* ------------------------------------------------------------------ */
/* Local-training rule (client side, with an optional server side).    */

/* A client's local training, as its rule sees it. Borrowed. */
typedef struct fm_local_task {
	uint32_t struct_size;  /* sizeof(fm_local_task) */
	uint32_t round;
	const float *global;   /* the model training starts from [dim]; valid
	                        * until end returns */
	size_t dim;
	uint64_t num_examples; /* the client's training examples */
	uint32_t epochs, batch;
	double lr;             /* local learning rate */
} fm_local_task;

typedef struct fm_local_result {
	uint32_t struct_size;  /* sizeof(fm_local_result) */
	uint32_t round;
	const float *global;   /* where training started [dim] */
	const float *params;   /* the trained model [dim] */
	size_t dim;
	uint64_t steps;        /* local SGD steps taken */
	uint64_t num_examples;
	double lr;
	double loss;           /* mean local training loss */
} fm_local_result;

/*
 * A local rule changes how clients train (FedProx's proximal term,
 * SCAFFOLD's control variates) and runs beside any aggregator. An
 * experiment names it as local_training.rule, or as its aggregator (then
 * the aggregator is FedAvg). It has an instance on every client
 * (FM_ROLE_CLIENT) and one on every aggregating node (FM_ROLE_SERVER,
 * FM_ROLE_EDGE); the two talk through host->send and base.on_message.
 *
 * Client: begin once before training; around every local step grad
 * (before it) and step (after it); end once after training, before the
 * update leaves (what end sends reaches the server before the update).
 * Messages the server's instance sent from round_begin arrive before
 * begin. A failing call fails the client's training; the server drops
 * that client from the round.
 * Server: round_begin when a round starts (before the broadcast),
 * accepted with the updates the aggregator took, round_end after the
 * aggregator's finish, with the model before and after.
 */
typedef struct fm_local_ops {
	fm_ops base;
	/* client side, all optional */
	int (*begin)(void *st, const fm_local_task *t);
	/* A vector h[dim] the host adds to the minibatch gradient at the
	 * current local params w before the optimizer step (weight decay and
	 * momentum apply to the sum, as to a term of the loss), or NULL to
	 * add nothing this step. Plugin-owned; read before the next call.
	 * FedProx returns mu (w - global). */
	const float *(*grad)(void *st, const float *w, size_t dim);
	/* After each optimizer step: may move the params w[dim] directly, lr
	 * being the local learning rate (SCAFFOLD: w -= lr (c - c_i)). */
	void (*step)(void *st, float *w, size_t dim, double lr);
	int (*end)(void *st, const fm_local_result *r);
	/* server side, all optional */
	int (*round_begin)(void *st, const fm_round *r);
	int (*accepted)(void *st, const fm_update *u, uint32_t n);
	/* global: before the round; out: the aggregator's new model, which
	 * the rule may still change (SCAFFOLD's global step size). */
	int (*round_end)(void *st, const fm_round *r, const float *global,
	    float *out, size_t dim);
} fm_local_ops;

/* ------------------------------------------------------------------ */
/* The round's update matrix: attacks, defences, server-side privacy.  */

/*
 * On an aggregating node the round's accepted updates pass, as one
 * matrix, through: attack (adversarial rows) -> defence -> privacy ->
 * aggregator. Each stage may rewrite rows in place, and a defence or
 * privacy stage chooses which rows pass on and with what weight (or
 * replaces them by one: a median, an unmasked sum).
 */
typedef struct fm_rows {
	uint32_t struct_size;     /* sizeof(fm_rows) */
	uint32_t round;           /* 1-based */
	uint32_t n;               /* updates this round */
	uint32_t nadv;            /* attack: how many rows are adversarial */
	size_t dim;
	float *deltas;            /* [n][stride] row-major, 64-byte aligned
	                           * rows; writable */
	size_t stride;            /* floats between rows (>= dim) */
	const fm_update *updates; /* [n] (FM_AT): sender, examples, loss of
	                           * row i (updates[i].delta == row i) */
	const float *global;      /* the model the updates apply to [dim] */
	const float *server_delta; /* FLTrust's root-data update [dim], or
	                            * NULL when the node holds no root data */
	const uint8_t *adversarial; /* attack: [n], 1 = row i is an
	                             * adversary's; NULL for other stages */
	uint64_t seed;            /* for this round and stage */
	/* output (defence, privacy): rows passed on, in order, each with the
	 * example count it is weighted by. Both arrays hold n entries; on
	 * entry every row passes with its own count. */
	uint32_t *keep;
	uint64_t *keep_examples;
	uint32_t nkeep;           /* 0: nothing passes; the model stays */
	uint32_t reserved0;
} fm_rows;

/* ------------------------------------------------------------------ */
/* Defence (Byzantine-robust aggregation).                             */

/*
 * A defence sees all the round's accepted updates at once, before the
 * aggregator: it may rewrite them in place (clipping), replace them by one
 * robust update (median, geometric median, centered clipping), or choose
 * which pass and with what weight (Krum, Multi-Krum). Any defence composes
 * with any aggregator; a defence alone is followed by FedAvg.
 */
typedef struct fm_defence_ops {
	fm_ops base;
	/* Required. Fills keep/keep_examples/nkeep; may rewrite rows. */
	int (*apply)(void *st, fm_rows *r);
	/* Optional: a round starts on the aggregating node (before the
	 * broadcast: what it host->send's reaches the round's clients'
	 * instances before they train), for defences that run a protocol
	 * with their clients. A failure fails the round. */
	int (*begin)(void *st, const fm_round *r);
} fm_defence_ops;

/* ------------------------------------------------------------------ */
/* Attack (adversarial clients or peers, to evaluate defences).        */

enum fm_attack_purpose {
	FM_ATTACK_TRAIN = 1, /* an adversarial client's training examples */
	FM_ATTACK_EVAL = 2   /* the test set, to measure attack success */
};

typedef struct fm_attack_data {
	uint32_t struct_size; /* sizeof(fm_attack_data) */
	uint32_t purpose;     /* enum fm_attack_purpose */
	float *x;             /* [n][dim] features, writable copy */
	int32_t *y;           /* [n] labels, writable copy */
	size_t n, dim;
	uint32_t nclasses;
	int32_t client;       /* node id (FM_ATTACK_TRAIN), else 0 */
	uint32_t round;
	uint32_t width, height; /* image shape when known (28x28), else 0 */
	uint64_t seed;        /* for this client and round */
	size_t nkeep;         /* out, FM_ATTACK_EVAL: examples kept (the
	                       * first nkeep of x/y); defaults to n */
	int defined;          /* out, FM_ATTACK_EVAL: 1 if a success rate is
	                       * defined */
	uint32_t reserved0;
} fm_attack_data;

/*
 * An experiment marks some clients (or peers) adversarial; the attack acts
 * on them in two places:
 *   - poison_data, on the client before an adversarial client trains: it
 *     may rewrite a private copy of its examples (label flipping, a
 *     backdoor trigger). Called again once with FM_ATTACK_EVAL on a copy of
 *     the test set: an attack that defines a success rate rewrites it into
 *     its target set and sets defined = 1; the host then reports the
 *     metric "attack_success".
 *   - poison_updates, where the round's updates meet (the aggregating
 *     node, or an adversarial peer on its own update): it rewrites the
 *     adversarial rows of r and may read the honest ones (colluding
 *     attacks: ALIE, IPM, as the papers assume).
 */
typedef struct fm_attack_ops {
	fm_ops base;
	int (*poison_data)(void *st, fm_attack_data *d);  /* optional */
	int (*poison_updates)(void *st, fm_rows *r);      /* optional */
} fm_attack_ops;

/* ------------------------------------------------------------------ */
/* Privacy (differential privacy, secure aggregation).                 */

/* A client's update as it is about to leave the client. Borrowed. */
typedef struct fm_private_update {
	uint32_t struct_size; /* sizeof(fm_private_update) */
	uint32_t round;
	int32_t client;
	uint32_t reserved0;
	float *delta;         /* [dim] writable: clip, noise, mask in place */
	size_t dim;
	uint64_t num_examples; /* writable: the weight the server will use */
	uint64_t seed;        /* for this client and round */
} fm_private_update;

/* fm_component_desc.flags of a privacy component */
#define FM_PRIVACY_CLIENT 1u  /* runs on clients (client) */
#define FM_PRIVACY_SERVER 2u  /* runs on aggregating nodes (server) */
#define FM_PRIVACY_OPAQUE 4u  /* rows are not plaintext updates on the
                               * server (masked): no defence or
                               * update attack can run before it */

/*
 * A privacy mechanism has an instance on every client and on every
 * aggregating node. Per round: begin on both sides (a client's r has its
 * own id); client on the client, after training (and after an attack),
 * before compression; server on the aggregating node, after the defence
 * and before the aggregator, on the update matrix: it may clip rows, add
 * noise to their sum (to one row: the aggregator's sum is what carries
 * it), or replace masked rows by their unmasked sum (one row kept). A
 * protocol (secure aggregation's key exchange, dropout recovery) runs over
 * host->send, base.on_message and host->timer.
 */
typedef struct fm_privacy_ops {
	fm_ops base;
	int (*begin)(void *st, const fm_round *r);          /* optional */
	int (*client)(void *st, fm_private_update *u);      /* optional */
	int (*server)(void *st, fm_rows *r);                /* optional */
} fm_privacy_ops;

/* ------------------------------------------------------------------ */
/* Compressor (sparsification, quantization).                          */

/* One vector to encode (x -> buf) or decode (buf -> x). Borrowed. */
typedef struct fm_codec {
	uint32_t struct_size; /* sizeof(fm_codec) */
	uint32_t round;
	int32_t client;       /* whose update (the client's own on encode) */
	uint32_t reserved0;
	float *x;             /* [dim]: encode reads (and may rewrite with
	                       * what was not sent, for error feedback);
	                       * decode writes */
	size_t dim;
	void *buf;            /* encode writes at most cap bytes; decode
	                       * reads len bytes, and validates all of them */
	size_t cap;
	size_t len;           /* out on encode, in on decode */
	uint64_t seed;        /* for this client and round (random-k,
	                       * stochastic rounding) */
} fm_codec;

/*
 * A compressor has an instance on every client (encode: its update before
 * it leaves, after privacy) and on every aggregating node (decode, before
 * the defence). Error feedback keeps its residual in host->client_state.
 */
typedef struct fm_compressor_ops {
	fm_ops base;
	/* Required: the most bytes encode writes for dim floats. */
	size_t (*bound)(void *st, size_t dim);
	int (*encode)(void *st, fm_codec *c); /* required */
	int (*decode)(void *st, fm_codec *c); /* required */
} fm_compressor_ops;

/* ------------------------------------------------------------------ */
/* Consensus (decentralized learning, no server).                      */

/*
 * Every peer holds its own model. Each round a peer trains locally, sends
 * its model to its out-neighbours in the round's graph, waits for its
 * in-neighbours' models (until they all came or the round's deadline
 * passed) and calls mix to combine them into its next model. Peers are
 * numbered 0..N-1; a peer never sees more than its neighbours.
 */

/* One model in a mix: this peer's own or a neighbour's. Borrowed. */
typedef struct fm_peer_model {
	uint32_t struct_size; /* sizeof(fm_peer_model); arrays step by it */
	int32_t peer;         /* the sender's peer id */
	uint32_t out_degree;  /* the sender's out-neighbours this round */
	uint32_t reserved0;
	const float *params;  /* its model after local training [dim] */
	double weight;        /* mixing weight W_ij the topology gives this
	                       * edge (Metropolis-Hastings on undirected
	                       * graphs, 1/(in-degree+1) on directed ones);
	                       * for the own model W_ii */
	double mass;          /* what the sender's outgoing attached */
	uint64_t num_examples; /* the sender's local training examples */
} fm_peer_model;

/* One round's mix at one peer. Borrowed. */
typedef struct fm_mix {
	uint32_t struct_size; /* sizeof(fm_mix) */
	uint32_t round;       /* 1-based */
	int32_t self;         /* this peer's id */
	uint32_t in_degree;   /* in-neighbours this round (expected) */
	uint32_t out_degree;  /* out-neighbours this round */
	uint32_t nneighbours; /* models that arrived, ... */
	const fm_peer_model *own;        /* this peer's model, weight W_ii */
	const fm_peer_model *neighbours; /* ... sorted by peer id (FM_AT) */
	/* 2.1 (FM_HAS(m, fm_mix, late) before reading these). */
	/* The out-neighbours this round's own model (and its mass) actually
	 * left for: the others (dead, unreachable, a full link) never got
	 * their share, so it is still this peer's; a rule that conserves
	 * mass keeps it (push-sum). Equals out_degree without faults. */
	uint32_t out_sent;
	uint32_t nlate;       /* models of earlier rounds, ... */
	/* ... that reached this peer after their own round's mix, or that
	 * a catch-up jumped over (FM_AT-stepped, by arrival): delayed, not
	 * lost. A rule that conserves mass adds their mass (push-sum); the
	 * others ignore them. Only hosts whose rule attaches a mass
	 * (outgoing) pass any. */
	const fm_peer_model *late;
} fm_mix;

typedef struct fm_consensus_ops {
	fm_ops base;
	/* Optional: the scalar attached to this round's outgoing model (all
	 * out-neighbours get the same), e.g. push-sum's mass share. Without
	 * it the mass is 0. */
	int (*outgoing)(void *st, uint32_t round, uint32_t out_degree,
	    double *mass);
	/* Required. Writes the peer's next model into model[dim], which holds
	 * its own trained model (m->own->params) on entry. Neighbours whose
	 * model did not arrive in time are absent from m->neighbours: the
	 * rule decides what their weight becomes. */
	int (*mix)(void *st, const fm_mix *m, float *model, size_t dim);
} fm_consensus_ops;

/* ------------------------------------------------------------------ */
/* The host API table.                                                 */

typedef struct fm_registrar fm_registrar; /* opaque; ABI 1.x only */

/* What the node running an instance gives it (host->limits). */
typedef struct fm_limits {
	uint32_t struct_size; /* sizeof(fm_limits) */
	uint32_t threads;     /* worker threads host->parallel_for uses (the
	                       * run's --threads); start no threads of your
	                       * own */
	uint64_t memory;      /* bytes the node may use, 0: no limit known */
	uint32_t max_message; /* largest host->send payload, bytes (messages
	                       * travel as their own frames: UINT32_MAX) */
	uint32_t reserved0;
} fm_limits;

/* The work of host->parallel_for: items [begin, end) of the n. */
typedef void (*fm_task_fn)(void *ud, size_t begin, size_t end);

/* Layout: 1.x's, appended (1.x plugins get the same table). */
typedef struct fm_host_api {
	uint32_t struct_size;
	uint16_t abi_major, abi_minor;

	/* memory */
	void *(*alloc)(size_t n); /* NULL on failure */
	void *(*calloc)(size_t n, size_t size);
	void (*free)(void *p); /* accepts NULL */

	/* logging; id is a stable tag such as "FM-FEDAVG" */
	void (*log)(int level, const char *id, const char *fmt, ...)
	    FM_PRINTF(3, 4);
	const char *(*strerror)(int code);

	/* seeded RNG (deterministic) and CSPRNG */
	void (*rng_seed)(fm_rng *r, uint64_t seed, uint64_t stream);
	uint64_t (*rng_u64)(fm_rng *r);
	double (*rng_uniform)(fm_rng *r); /* [0, 1) */
	double (*rng_normal)(fm_rng *r);  /* N(0, 1) */
	/* Cryptographic randomness (libsodium); FM_OK or FM_ECRYPTO when no
	 * source of randomness works (buf is then zeroed). */
	int (*random_bytes)(void *buf, size_t n);

	/* BLAS kernels on float32 (OpenBLAS underneath) */
	void (*axpy)(size_t n, float a, const float *x, float *y); /* y += a x */
	void (*scal)(size_t n, float a, float *x);                 /* x *= a */
	double (*dot)(size_t n, const float *x, const float *y);
	double (*nrm2)(size_t n, const float *x);
	/* C[MxN] = alpha op(A) op(B) + beta C, row-major */
	void (*gemm)(int trans_a, int trans_b, size_t m, size_t n, size_t k,
	    float alpha, const float *a, size_t lda, const float *b, size_t ldb,
	    float beta, float *c, size_t ldc);

	/* ABI 1.x plugins only: registration during their fm_plugin_init */
	int (*register_component)(fm_registrar *r, const void *ops,
	    size_t ops_size);

	/* Messaging with counterpart instances (same component) on other
	 * nodes. Non-blocking; the host queues and delivers through
	 * base.on_message. Returns FM_OK, FM_ENOENT (unknown node),
	 * FM_ENOTSUP (the node has no link), FM_ECLOSED. */
	int (*send)(const fm_instance *self, int32_t to, const void *data,
	    size_t len);
	/* One-shot timer: base.on_timer(tag) after at least ms. */
	int (*timer)(const fm_instance *self, uint32_t ms, uint64_t tag);
	/* A per-round metric (shows in the round's metrics). */
	void (*metric)(const fm_instance *self, const char *name, double value);

	/* A buffer of size bytes that belongs to self's client (a client
	 * instance's node_id) and component, zeroed when first asked for and
	 * kept by the client's host across rounds (SCAFFOLD's control
	 * variate, a compressor's residual). Ask with the same size every
	 * time. NULL: not a client instance, another size, or out of memory. */
	void *(*client_state)(const fm_instance *self, size_t size);

	/* The reason the call of self that is failing fails, shown to the
	 * user in the error it causes (printf-style; one sentence that says
	 * what is wrong and what to do). Call it, then return the error. */
	void (*set_error)(const fm_instance *self, const char *fmt, ...)
	    FM_PRINTF(2, 3);

	/* 2.0: runs fn over [0, n) split into chunks on the node's worker
	 * threads (fn(ud, begin, end) per chunk, possibly at once on several
	 * threads; returns when all are done). The chunks depend on n and
	 * the thread count only, so write results per item to stay
	 * deterministic. May run everything on the calling thread. */
	void (*parallel_for)(const fm_instance *self, size_t n, fm_task_fn fn,
	    void *ud);
	/* 2.0: what the node gives self (threads, memory, message size). */
	void (*limits)(const fm_instance *self, fm_limits *out);
	/* 2.2: adds N(0, std^2) noise to x[0..n) in place, drawn from the
	 * stream `seed` names (a client's fm_private_update.seed, an
	 * aggregating node's fm_rows.seed), so the same seed gives the same
	 * noise. FM_OK, or FM_EINVAL for a std that is negative or not
	 * finite (x unchanged). Use it rather than rng_normal for DP noise:
	 * the host decides how the noise is sampled (a run with
	 * secure_noise = true samples it securely). FM_HOST_HAS before
	 * calling it. */
	int (*gauss_noise)(const fm_instance *self, float *x, size_t n,
	    double std, uint64_t seed);
	/* ABI 2.0+: append below this line only. */
} fm_host_api;

/* True when the running host provides the field (newer plugins, older
 * hosts). */
#define FM_HOST_HAS(host, field)                                            \
	((host)->struct_size >= offsetof(fm_host_api, field) +               \
	        sizeof((host)->field) &&                                     \
	    (host)->field != NULL)

/* ------------------------------------------------------------------ */
/* Declaring a plugin.                                                 */

#if defined(__GNUC__) || defined(__clang__)
#define FM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define FM_PLUGIN_EXPORT
#endif

/*
 * One component: FM_COMPONENT(kind, name, description, params, ops,
 * flags), ops being the (static const) ops table itself:
 *
 *   static const fm_aggregator_ops myavg_ops = {
 *       .base = FM_OPS(fm_aggregator_ops, FM_KIND_AGGREGATOR, myavg,
 *           myavg_init, myavg_fini),
 *       .begin = myavg_begin, .accept = myavg_accept,
 *       .finish = myavg_finish,
 *   };
 *   static const fm_component_desc myavg_components[] = {
 *       FM_COMPONENT(FM_KIND_AGGREGATOR, "myavg", "my average",
 *           myavg_params, myavg_ops, 0),
 *   };
 *   FM_PLUGIN("myavg", "1.0.0", "MIT", "An average", myavg_components,
 *       NULL);
 */
#define FM_COMPONENT(knd, nm, desc, params, ops, flags)                     \
	{ (uint32_t)sizeof(fm_component_desc), (knd), (nm), (desc), (params), \
		(uint32_t)sizeof(fm_param_desc), (flags), &(ops),            \
		(uint32_t)sizeof(ops), 0 }

/* The descriptor; init_fn is the optional fm_plugin_info.init (or NULL). */
#define FM_PLUGIN(nm, ver, lic, desc, comps, init_fn)                       \
	FM_PLUGIN_EXPORT const fm_plugin_info fm_plugin_descriptor = {       \
		FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR,   \
		(uint32_t)sizeof(fm_plugin_info), FM_PLUGIN_BUILD_SIG, nm,   \
		ver, lic, desc, comps,                                       \
		(uint32_t)(sizeof(comps) / sizeof((comps)[0])),              \
		(uint32_t)sizeof(fm_component_desc), (init_fn),              \
		{ NULL, NULL, NULL, NULL } }

/* What every plugin exports (declared here so plugin sources get the
 * prototype; the host never links against it). */
FM_PLUGIN_EXPORT extern const fm_plugin_info fm_plugin_descriptor;

/* Exported symbol name. */
#define FM_PLUGIN_DESCRIPTOR_SYMBOL "fm_plugin_descriptor"
/* ABI 1.x plugins also export this (int fm_plugin_init(fm_registrar *,
 * const fm_host_api *)). */
#define FM_PLUGIN_INIT_SYMBOL "fm_plugin_init"

#ifdef __cplusplus
}
#endif
#endif /* FEDMESH_PLUGIN_H */
