/* SPDX-License-Identifier: MIT */
/*
 * fedmesh_plugin_1_4.h: FROZEN copy of engine/include/fedmesh/plugin.h as
 * it was at plugin ABI 1.4 (the commit before ABI 2.0), verbatim below this
 * comment. The ABI 1.x test plugins build against it, as plugins built
 * before 2.0 did. Never edit it.
 */
/*
 * plugin.h: the fedmesh plugin ABI.
 *
 * A plugin is a shared object that exports exactly two symbols:
 *
 *   const fm_plugin_info fm_plugin_descriptor;      data, read before any code
 *   int fm_plugin_init(fm_registrar *r, const fm_host_api *host);
 *
 * The host dlopen()s the file, reads the descriptor (magic, ABI version,
 * struct sizes, build signature, name, version, description, components and
 * their declared parameters) and refuses the file if anything is off, before
 * running a single instruction of the plugin. Only then does it call
 * fm_plugin_init, which registers one ops table per declared component with
 * host->register_component. Use FM_PLUGIN_DEFINE below to get both right.
 *
 * Plugins never link libfedmesh: everything they need from the host (memory,
 * logging, RNG, BLAS kernels, messaging, timers) comes through fm_host_api.
 *
 * Evolution: FM_PLUGIN_ABI_MAJOR changes on any incompatible change and must
 * match exactly. FM_PLUGIN_ABI_MINOR grows when fields are appended to the
 * end of a struct; each struct records its size so either side reads only
 * the prefix both know. Changelog:
 *   1.0  first version: aggregator kind, host API with messaging and timers.
 *   1.1  consensus kind (fm_consensus_ops, fm_peer_model, fm_mix) for
 *        decentralized (peer-to-peer) federations; defence kind
 *        (fm_defence_ops, fm_defence_round) for Byzantine-robust
 *        aggregation; attack kind (fm_attack_ops, fm_attack_data) to
 *        evaluate defences.
 *   1.2  client-side local training hooks for aggregators (a_local_begin,
 *        a_local_grad, a_local_step, a_local_end with fm_local_task,
 *        fm_local_result)
 *        and per-client state kept across rounds (host->client_state), for
 *        FedProx and SCAFFOLD; fm_round.population. A 1.2 plugin reading a
 *        1.2 field of a struct without a size (fm_round) checks
 *        host->abi_minor >= 2 first.
 *   1.3  a_accept_many: several updates accepted in one call, so an
 *        aggregator can sum them in one pass over its accumulator.
 *   1.4  host->set_error: a failing call says why, in words the user
 *        sees; fm_instance.max_updates and fm_instance.flags
 *        (FM_INST_ROOT_DATA), so a defence can refuse in d_init a
 *        configuration that could never aggregate (Krum's n >= 2f + 3,
 *        FLTrust without root data) before round 1. Like fm_round's
 *        1.2 field, read them only when host->abi_minor >= 4.
 *        Also fm_round.lr_scale (appended): the round's factor of a
 *        server learning-rate schedule, read the same way.
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
#define FM_PLUGIN_ABI_MAJOR 1
#define FM_PLUGIN_ABI_MINOR 4

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
	FM_KIND_ATTACK = 6      /* adversarial client behaviour           */
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

/* Declared parameter types. */
typedef enum fm_param_type {
	FM_PARAM_INT = 1,  /* integer, stored in fm_value.num */
	FM_PARAM_REAL = 2, /* double, stored in fm_value.num */
	FM_PARAM_BOOL = 3, /* 0 or 1, stored in fm_value.num */
	FM_PARAM_STRING = 4 /* stored in fm_value.str */
} fm_param_type;

/*
 * A declared parameter. The host validates every value a user gives
 * (type, range) before the plugin sees it. Arrays end with name == NULL.
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

/* What a component is, as data. */
typedef struct fm_component_desc {
	uint32_t kind;              /* enum fm_kind */
	const char *name;           /* unique within its kind: "fedavg" */
	const char *description;    /* one line */
	const fm_param_desc *params; /* NULL-name terminated; may be NULL */
} fm_component_desc;

/* The descriptor. The first four fields are frozen forever. */
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
	const fm_component_desc *components; /* array ... */
	uint32_t ncomponents;                /* ... of this length (>= 1) */
	uint32_t reserved0;
	void *reserved[4];
} fm_plugin_info;

/* ------------------------------------------------------------------ */
/* Seeded random numbers (xoshiro256**), state owned by the caller.    */

typedef struct fm_rng {
	uint64_t s[4];
} fm_rng;

/* ------------------------------------------------------------------ */
/* Instances.                                                          */

struct fm_host_api;

/*
 * The context a component instance lives in. Owned by the host, valid from
 * init to fini. params has one entry per declared parameter.
 */
typedef struct fm_instance {
	const struct fm_host_api *host;
	const fm_value *params; /* in declaration order */
	uint32_t nparams;
	uint32_t role;    /* enum fm_role of the node running this instance */
	int32_t node_id;  /* FM_NODE_SERVER or a client id */
	uint32_t reserved0;
	size_t dim;       /* number of float32 model parameters */
	uint64_t seed;    /* per-instance seed derived from the run seed */
	void *host_data;  /* opaque, for the host only */
	/* 1.4 (check host->abi_minor >= 4 first): the most updates this
	 * instance can see in one round (a star's clients_per_round, an
	 * edge's sampled children at most); 0: unknown */
	uint32_t max_updates;
	uint32_t flags;   /* 1.4: FM_INST_* */
} fm_instance;

/* fm_instance.flags (1.4) */
#define FM_INST_ROOT_DATA 1u /* the node holds root data (server_delta) */

/* One round, as seen by a server-side component. Borrowed. */
typedef struct fm_round {
	uint32_t round;          /* 1-based */
	uint32_t nclients;       /* sampled clients this round */
	const int32_t *clients;  /* their node ids, in aggregation order */
	const float *global;     /* current global model [dim] */
	size_t dim;
	uint32_t population;     /* 1.2: clients this aggregator serves, sampled
	                          * or not (its children, in a hierarchy);
	                          * 0: unknown */
	double lr_scale;         /* 1.4: the experiment's server learning-rate
	                          * schedule: an aggregator with a learning rate
	                          * (server step size) uses lr * lr_scale this
	                          * round; 1 without a schedule. Read it only
	                          * when host->abi_minor >= 4. */
} fm_round;

/* One client's update, as seen by the server. Borrowed: valid only during
 * the call; copy with host->alloc to keep it. */
typedef struct fm_update {
	int32_t client;        /* node id */
	uint32_t round;
	const float *delta;    /* client model minus global [dim] */
	size_t dim;
	uint64_t num_examples; /* local training examples */
	double loss;           /* mean local training loss */
	uint64_t steps;        /* 1.1: local SGD steps taken (0: unknown) */
} fm_update;

/* A message from a counterpart instance on another node. Borrowed. */
typedef struct fm_message {
	int32_t from;      /* sender node id */
	uint32_t round;
	const void *data;
	size_t len;
} fm_message;

/* 1.2: a client's local training as its aggregator's client-side instance
 * sees it (FedProx, SCAFFOLD). Borrowed for the call. */
typedef struct fm_local_task {
	uint32_t struct_size;  /* sizeof(fm_local_task) */
	uint32_t round;
	const float *global;   /* the model training starts from [dim]; valid
	                        * until a_local_end returns */
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

/* ------------------------------------------------------------------ */
/* Ops tables: one per kind. Each starts with size, kind, name, state.  */

/*
 * Aggregator (server optimizer). On the server, per round the host calls
 * a_begin once, a_accept once per accepted update in a fixed order, and
 * a_finish once, unless the round missed its quorum (min_updates): then
 * a_finish is skipped, the model stays, and the next a_begin starts a new
 * round. All calls for one instance come from one thread.
 * Return FM_OK or an fm_errno; a failing call fails the round, whose global
 * model then stays as it was.
 */
typedef struct fm_aggregator_ops {
	uint32_t a_struct_size; /* sizeof(fm_aggregator_ops) */
	uint32_t a_kind;        /* FM_KIND_AGGREGATOR */
	const char *a_name;     /* matches a declared component */
	size_t a_state_size;    /* host allocates this many bytes, zeroed,
	                         * aligned as malloc aligns */

	/* Required. Sets up state. fini is called even if init fails. */
	int (*a_init)(void *st, const fm_instance *inst);
	/* Required. Releases what init and the other calls allocated. */
	void (*a_fini)(void *st);
	/* Required. A new round starts; r is borrowed. */
	int (*a_begin)(void *st, const fm_round *r);
	/* Required. One update; u is borrowed. */
	int (*a_accept)(void *st, const fm_update *u);
	/* Required. Writes the new global model into global[dim] in place
	 * (it holds the current one on entry). naccepted may be 0: then leave
	 * global unchanged. */
	int (*a_finish)(void *st, float *global, size_t dim);

	/* Optional: a message from a counterpart on another node. */
	int (*a_on_message)(void *st, const fm_message *m);
	/* Optional: a timer set with host->timer fired. */
	int (*a_on_timer)(void *st, uint64_t tag);

	/*
	 * ABI 1.2, all optional: client-side local training. On a client
	 * instance (FM_ROLE_CLIENT) of a task, the host calls a_local_begin
	 * once before training; around every local step a_local_grad (before
	 * it) and a_local_step (after it); and a_local_end once after
	 * training, before the update leaves (so what a_local_end sends
	 * reaches the server before the update). Messages the server instance
	 * sent from a_begin arrive before a_local_begin. A failing call fails
	 * the client's training; the server drops that client from the round.
	 */
	int (*a_local_begin)(void *st, const fm_local_task *t);
	/* A vector h[dim] the host adds to the minibatch gradient at the
	 * current local params w before the optimizer step (weight decay and
	 * momentum apply to the sum, as to a term of the loss), or NULL to
	 * add nothing this step. Plugin-owned; read before the next call.
	 * FedProx returns mu (w - global). */
	const float *(*a_local_grad)(void *st, const float *w, size_t dim);
	/* After each optimizer step: may move the params w[dim] directly, lr
	 * being the local learning rate (SCAFFOLD: w -= lr (c - c_i), outside
	 * the momentum, as its reference implementations do). */
	void (*a_local_step)(void *st, float *w, size_t dim, double lr);
	int (*a_local_end)(void *st, const fm_local_result *r);

	/*
	 * ABI 1.3, optional: u[0..n) at once, exactly as n calls of a_accept
	 * in that order would take them: status[k] gets what a_accept(u[k])
	 * would have returned, and the resulting model must be the same, bit
	 * for bit (sum per coordinate in the same order). The host calls it
	 * when it holds several updates (a defence's rows, fm.aggregate); an
	 * aggregator summing n updates in one pass reads its accumulator
	 * once instead of n times. Returns FM_OK, or an fm_errno if it failed
	 * as a whole (then status says which updates it took). u is borrowed.
	 */
	int (*a_accept_many)(void *st, const fm_update *u, uint32_t n,
	    int *status);
	/* ABI 1.3+: append below this line only. */
} fm_aggregator_ops;

/*
 * Consensus (decentralized learning, no server). Every peer holds its own
 * model. Each round a peer trains locally, sends its model to its
 * out-neighbours in the round's graph, waits for its in-neighbours' models
 * (until they all came or the round's deadline passed) and calls c_mix to
 * combine them into its next model. Peers are numbered 0..N-1 in the
 * topology; a peer never sees more than its neighbours.
 */

/* One model in a mix: this peer's own or a neighbour's. Borrowed. */
typedef struct fm_peer_model {
	int32_t peer;        /* the sender's peer id */
	uint32_t out_degree; /* the sender's out-neighbours this round */
	const float *params; /* its model after local training [dim] */
	double weight;       /* mixing weight W_ij the topology gives this edge
	                      * (Metropolis-Hastings on undirected graphs,
	                      * 1/(in-degree+1) on directed ones); for the own
	                      * model W_ii */
	double mass;         /* what the sender's c_outgoing attached */
	uint64_t num_examples; /* the sender's local training examples */
} fm_peer_model;

/* One round's mix at one peer. Borrowed. */
typedef struct fm_mix {
	uint32_t round;      /* 1-based */
	int32_t self;        /* this peer's id */
	uint32_t in_degree;  /* in-neighbours this round (expected) */
	uint32_t out_degree; /* out-neighbours this round */
	const fm_peer_model *own;        /* this peer's model, weight W_ii */
	const fm_peer_model *neighbours; /* the models that arrived, */
	uint32_t nneighbours;            /* sorted by peer id */
	uint32_t reserved0;
} fm_mix;

typedef struct fm_consensus_ops {
	uint32_t c_struct_size; /* sizeof(fm_consensus_ops) */
	uint32_t c_kind;        /* FM_KIND_CONSENSUS */
	const char *c_name;
	size_t c_state_size;    /* allocated and zeroed by the host */

	/* Required. inst->node_id is the peer id, inst->role FM_ROLE_PEER. */
	int (*c_init)(void *st, const fm_instance *inst);
	/* Required. */
	void (*c_fini)(void *st);
	/* Optional: the scalar attached to this round's outgoing model (all
	 * out-neighbours get the same), e.g. push-sum's mass share. Without
	 * it the mass is 0. */
	int (*c_outgoing)(void *st, uint32_t round, uint32_t out_degree,
	    double *mass);
	/* Required. Writes the peer's next model into model[dim], which holds
	 * its own trained model (m->own->params) on entry. Neighbours whose
	 * model did not arrive in time are absent from m->neighbours: the
	 * rule decides what their weight becomes (gossip gives it to the own
	 * model, so the mix stays an average). */
	int (*c_mix)(void *st, const fm_mix *m, float *model, size_t dim);

	/* Optional, as for aggregators. */
	int (*c_on_message)(void *st, const fm_message *m);
	int (*c_on_timer)(void *st, uint64_t tag);
	/* append below this line only. */
} fm_consensus_ops;

/*
 * Defence (Byzantine-robust aggregation). On an aggregating node, a
 * defence sees all the round's accepted updates at once, before the
 * aggregator: it may rewrite them in place (clipping), replace them by one
 * robust update (median, geometric median, centered clipping), or choose
 * which pass and with what weight (Krum, Multi-Krum). The rows it passes
 * go to the aggregator's a_accept in the order given, so any defence
 * composes with any aggregator (Multi-Krum then FedAdam). A defence alone
 * is followed by FedAvg.
 */
typedef struct fm_defence_round {
	uint32_t struct_size;    /* sizeof(fm_defence_round) */
	uint32_t round;          /* 1-based */
	uint32_t n;              /* updates this round */
	uint32_t reserved0;
	size_t dim;
	float *deltas;           /* [n][dim] row-major, 64-byte aligned rows
	                          * (dim rounded up: row i starts at
	                          * deltas + i * stride); writable */
	size_t stride;           /* floats between rows (>= dim) */
	const fm_update *updates; /* [n]: sender, examples, loss of row i
	                           * (updates[i].delta == row i) */
	const float *global;     /* the model the updates apply to [dim] */
	const float *server_delta; /* FLTrust's root-data update [dim], or
	                            * NULL when the server holds no root data */
	/* output: rows passed on to the aggregator, in order, each with the
	 * example count it is weighted by. Both arrays hold n entries. */
	uint32_t *keep;
	uint64_t *keep_examples;
	uint32_t nkeep;          /* 0: nothing passes; the model stays */
	uint32_t reserved1;
} fm_defence_round;

typedef struct fm_defence_ops {
	uint32_t d_struct_size; /* sizeof(fm_defence_ops) */
	uint32_t d_kind;        /* FM_KIND_DEFENCE */
	const char *d_name;
	size_t d_state_size;

	/* Required. */
	int (*d_init)(void *st, const fm_instance *inst);
	/* Required. */
	void (*d_fini)(void *st);
	/* Required. Fills keep/keep_examples/nkeep; may rewrite rows. An
	 * error fails the round (the model stays). */
	int (*d_apply)(void *st, fm_defence_round *r);

	/* Optional, as for aggregators. */
	int (*d_on_message)(void *st, const fm_message *m);
	int (*d_on_timer)(void *st, uint64_t tag);
	/* append below this line only. */
} fm_defence_ops;

/*
 * Attack (adversarial clients, to evaluate defences). An experiment marks
 * some clients adversarial; the attack acts on them in two places:
 *   - t_poison_data, on the client, before an adversarial client trains:
 *     it may rewrite a private copy of the client's examples (label
 *     flipping, a backdoor trigger). Called again once with purpose
 *     FM_ATTACK_EVAL on a copy of the test set: an attack that defines a
 *     success rate (a backdoor) rewrites it into its target set and sets
 *     *defined = 1; the host then reports the global model's accuracy on
 *     it as the metric "attack_success".
 *   - t_poison_updates, on the aggregating node, before any defence: it
 *     rewrites the adversarial rows of the round's update matrix and may
 *     read the honest ones (colluding attacks: ALIE, IPM, as the papers
 *     assume).
 */
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
	                       * first nkeep of x/y; e.g. the backdoor drops
	                       * the target class); defaults to n */
	int defined;          /* out, FM_ATTACK_EVAL: 1 if a success rate is
	                       * defined */
	uint32_t reserved0;
} fm_attack_data;

/* The round's updates at the aggregating node, as for defences. */
typedef struct fm_attack_round {
	uint32_t struct_size;
	uint32_t round;
	uint32_t n;
	uint32_t nadv;            /* how many rows are adversarial */
	size_t dim;
	float *deltas;            /* [n][stride], writable */
	size_t stride;
	const fm_update *updates; /* [n] */
	const uint8_t *adversarial; /* [n]: 1 = row i is an adversary's */
	const float *global;
	uint64_t seed;            /* for this round */
} fm_attack_round;

typedef struct fm_attack_ops {
	uint32_t t_struct_size; /* sizeof(fm_attack_ops) */
	uint32_t t_kind;        /* FM_KIND_ATTACK */
	const char *t_name;
	size_t t_state_size;

	/* Required. */
	int (*t_init)(void *st, const fm_instance *inst);
	/* Required. */
	void (*t_fini)(void *st);
	/* Optional (data poisoning). */
	int (*t_poison_data)(void *st, fm_attack_data *d);
	/* Optional (model poisoning). */
	int (*t_poison_updates)(void *st, fm_attack_round *r);
	/* append below this line only. */
} fm_attack_ops;

/* ------------------------------------------------------------------ */
/* The host API table.                                                 */

typedef struct fm_registrar fm_registrar; /* opaque */

typedef struct fm_host_api {
	uint32_t struct_size;
	uint16_t abi_major, abi_minor;

	/* 1.0: memory */
	void *(*alloc)(size_t n); /* NULL on failure */
	void *(*calloc)(size_t n, size_t size);
	void (*free)(void *p); /* accepts NULL */

	/* 1.0: logging; id is a stable tag such as "FM-FEDAVG" */
	void (*log)(int level, const char *id, const char *fmt, ...)
	    FM_PRINTF(3, 4);
	const char *(*strerror)(int code);

	/* 1.0: seeded RNG (deterministic) and CSPRNG */
	void (*rng_seed)(fm_rng *r, uint64_t seed, uint64_t stream);
	uint64_t (*rng_u64)(fm_rng *r);
	double (*rng_uniform)(fm_rng *r); /* [0, 1) */
	double (*rng_normal)(fm_rng *r);  /* N(0, 1) */
	/* Cryptographic randomness (libsodium); FM_OK or FM_ECRYPTO when no
	 * source of randomness works (buf is then zeroed). */
	int (*random_bytes)(void *buf, size_t n);

	/* 1.0: BLAS kernels on float32 (OpenBLAS underneath) */
	void (*axpy)(size_t n, float a, const float *x, float *y); /* y += a x */
	void (*scal)(size_t n, float a, float *x);                 /* x *= a */
	double (*dot)(size_t n, const float *x, const float *y);
	double (*nrm2)(size_t n, const float *x);
	/* C[MxN] = alpha op(A) op(B) + beta C, row-major */
	void (*gemm)(int trans_a, int trans_b, size_t m, size_t n, size_t k,
	    float alpha, const float *a, size_t lda, const float *b, size_t ldb,
	    float beta, float *c, size_t ldc);

	/* 1.0: registration, only during fm_plugin_init */
	int (*register_component)(fm_registrar *r, const void *ops,
	    size_t ops_size);

	/* 1.0: messaging with counterpart instances (same component name) on
	 * other nodes. Non-blocking; the host queues and delivers through
	 * *_on_message. Returns FM_OK, FM_ENOENT (unknown node), FM_ECLOSED. */
	int (*send)(const fm_instance *self, int32_t to, const void *data,
	    size_t len);
	/* 1.0: one-shot timer: *_on_timer(tag) after at least ms. */
	int (*timer)(const fm_instance *self, uint32_t ms, uint64_t tag);
	/* 1.0: report a per-round metric (shows in the round's metrics). */
	void (*metric)(const fm_instance *self, const char *name, double value);

	/* 1.2: a buffer of size bytes that belongs to self's client (a client
	 * instance's node_id) and component, zeroed when first asked for and
	 * kept by the client's host across rounds (SCAFFOLD's control
	 * variate). Ask with the same size every time. NULL: not a client
	 * instance, a different size than before, or out of memory. */
	void *(*client_state)(const fm_instance *self, size_t size);

	/* 1.4: the reason the call of self that is failing fails, shown to
	 * the user in the error it causes (printf-style; one sentence that
	 * says what is wrong and what to do, e.g. "f = 3 needs at least
	 * 2f + 3 = 9 updates a round but at most 5 arrive: lower f or sample
	 * more clients"). Call it, then return the error code. A reason set
	 * by a call that then succeeds is discarded. */
	void (*set_error)(const fm_instance *self, const char *fmt, ...)
	    FM_PRINTF(2, 3);
	/* ABI 1.4+: append below this line only. */
} fm_host_api;

/* True when the running host provides the field (newer plugins, older
 * hosts). */
#define FM_HOST_HAS(host, field)                                            \
	((host)->struct_size >= offsetof(fm_host_api, field) +               \
	        sizeof((host)->field) &&                                     \
	    (host)->field != NULL)

/* ------------------------------------------------------------------ */
/* Definition helper.                                                  */

#if defined(__GNUC__) || defined(__clang__)
#define FM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define FM_PLUGIN_EXPORT
#endif

/*
 * FM_PLUGIN_DEFINE(name, version, license, description, components)
 * emits the descriptor; define fm_plugin_init yourself with
 * FM_PLUGIN_INIT(r, host) { ... }.
 */
#define FM_PLUGIN_DEFINE(nm, ver, lic, desc, comps)                         \
	FM_PLUGIN_EXPORT const fm_plugin_info fm_plugin_descriptor = {       \
		FM_PLUGIN_MAGIC, FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR,   \
		(uint32_t)sizeof(fm_plugin_info), FM_PLUGIN_BUILD_SIG, nm, ver,      \
		lic, desc, comps,                                            \
		(uint32_t)(sizeof(comps) / sizeof((comps)[0])), 0,           \
		{ NULL, NULL, NULL, NULL } }

#define FM_PLUGIN_INIT(r, host)                                             \
	FM_PLUGIN_EXPORT int fm_plugin_init(fm_registrar *r,                  \
	    const fm_host_api *host)

/* What every plugin exports (declared here so plugin sources get the
 * prototypes; the host never links against them). */
FM_PLUGIN_EXPORT extern const fm_plugin_info fm_plugin_descriptor;
FM_PLUGIN_EXPORT int fm_plugin_init(fm_registrar *r, const fm_host_api *host);

/* Exported symbol names. */
#define FM_PLUGIN_DESCRIPTOR_SYMBOL "fm_plugin_descriptor"
#define FM_PLUGIN_INIT_SYMBOL "fm_plugin_init"

#ifdef __cplusplus
}
#endif
#endif /* FEDMESH_PLUGIN_H */
