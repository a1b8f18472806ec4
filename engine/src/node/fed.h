/* SPDX-License-Identifier: MIT */
/*
 * fed.h: star federations (server + clients) over the transport.
 *
 * The server and the clients are nodes that only exchange messages (see
 * wire.h). In a one-process simulation, the clients are hosted by a pool of
 * worker threads, each with its own inproc:// socket: a sampled client gets
 * a model copy only while a worker trains it, so 10,000 idle clients cost
 * their index lists and nothing else. Each round:
 *   1. the server samples clients (seeded), sends each a TRAIN message (the
 *      global model travels as one shared, zero-copy payload);
 *   2. a client trains locally on its shard and answers with UPDATE (the
 *      delta, its example count and loss);
 *   3. the server validates every update (round, sender, size, finiteness),
 *      feeds them to the aggregator in sampled order (so results do not
 *      depend on which worker finishes first), until all arrived or the
 *      deadline passed with a quorum; then evaluates the new global model.
 *
 * Hierarchical federations (HierFAVG, Liu et al. 2020) run in the same
 * server: a tree of aggregators (root, intermediate levels, edges), each
 * with its own model and its own aggregator instance, lives logically in
 * the server process. A sampled client trains from its edge's model and
 * its update goes to its edge's aggregator; every `every` rounds of the
 * level below, an aggregator aggregates its children's models (update =
 * child - parent) and copies the result down its subtree. A star is the
 * tree of one level.
 */
#ifndef FMI_NODE_FED_H
#define FMI_NODE_FED_H

#include <stdint.h>

#include "data/data.h"
#include "model/model.h"
#include "node/dp_budget.h"
#include "plugin/registry.h"

#define FMI_MAX_EXTRA_METRICS 16

typedef struct fmi_metric_kv {
	char name[32];
	double value;
} fmi_metric_kv;

/* What became of a sampled client's round (fmi_client_detail.status). */
enum fmi_client_status {
	FMI_CLIENT_KEPT = 1,     /* its update was aggregated (with a defence:
	                          * the defence passed it on) */
	FMI_CLIENT_REJECTED = 2, /* the defence left it out */
	FMI_CLIENT_DROPPED = 3,  /* no usable update by the deadline (silent,
	                          * training failed, broken update) */
	FMI_CLIENT_STRAGGLER = 4, /* its update came after the deadline */
	FMI_CLIENT_UNUSED = 5    /* on time, but not aggregated: the round
	                          * missed its quorum, or the aggregator or the
	                          * defence failed on it */
};

/* One sampled client of a round (fmi_fed_cfg.client_detail). */
typedef struct fmi_client_detail {
	uint32_t client;   /* node id: partition index + 1 */
	uint32_t status;   /* enum fmi_client_status */
	uint64_t examples; /* what its update said; 0 without an update */
	double loss;       /* its mean local training loss; NAN without */
	double norm;       /* L2 norm of its update as the server got it
	                    * (after a model-poisoning attack, before any
	                    * defence); NAN without an update */
	int adversary;     /* an adversary of the experiment's attack */
} fmi_client_detail;

typedef struct fmi_round_metrics {
	uint32_t round;
	double accuracy, loss; /* global model on the test set */
	double train_loss;     /* example-weighted mean of client losses */
	uint64_t bytes_sent, bytes_received; /* at the server, this round */
	double seconds;
	uint32_t sampled, updates, dropped;
	int evaluated; /* accuracy/loss are from this round */
	int aggregated; /* a model moved (not when the quorum was missed or
	                 * the defence or aggregator failed) */
	uint32_t nextra;
	fmi_metric_kv extra[FMI_MAX_EXTRA_METRICS];
	uint32_t stragglers; /* updates that came after the deadline (not in
	                      * dropped: sampled = updates + dropped +
	                      * stragglers) */
	double lr;           /* the clients' local learning rate this round */
	/* with fmi_fed_cfg.client_detail: one entry per sampled client, in
	 * sampled (ascending id) order; malloc'ed, freed with the result.
	 * NULL otherwise (and in checkpoints: not saved). */
	fmi_client_detail *clients;
	uint32_t nclients;
} fmi_round_metrics;

/* A learning-rate schedule: the round's learning rate is the base one
 * times fmi_lr_factor(). Rounds are 1-based; round 1 has factor 1. */
enum fmi_lr_kind {
	FMI_LR_NONE = 0,     /* factor 1 */
	FMI_LR_CONSTANT = 1, /* factor 1 */
	FMI_LR_STEP = 2,     /* gamma^floor((r - 1) / every) */
	FMI_LR_EXP = 3,      /* gamma^(r - 1) */
	FMI_LR_COSINE = 4    /* floor + (1 - floor) (1 + cos(pi t / rounds))
	                      * / 2, t = min(r - 1, rounds) */
};
typedef struct fmi_lr_schedule {
	uint32_t kind;   /* enum fmi_lr_kind */
	uint32_t every;  /* step: rounds between two decays (>= 1) */
	uint32_t rounds; /* cosine: rounds from the base to the floor (>= 1) */
	double gamma;    /* step, exponential: decay factor in (0, 1] */
	double floor;    /* cosine: the final factor in [0, 1] */
} fmi_lr_schedule;

/* The factor of round r (>= 1); 1 for a NULL or empty schedule. */
double fmi_lr_factor(const fmi_lr_schedule *s, uint32_t round);
/* Checks a schedule's parameters; err names the bad one. */
int fmi_lr_check(const fmi_lr_schedule *s, fm_error *err);

/* Simulated client faults: each round, round(dropout * k) of the k
 * sampled clients never answer and round(straggler * k) others answer
 * only after the round closed; which ones is a seeded choice among the
 * sampled clients (fmi_fault_plan). */
typedef struct fmi_faults {
	double dropout, straggler; /* fractions in [0, 1], sum <= 1 */
	uint64_t seed;
} fmi_faults;

enum fmi_fault { FMI_FAULT_NONE = 0, FMI_FAULT_DROPOUT = 1,
	FMI_FAULT_STRAGGLER = 2 };

/* One level of aggregators in a hierarchical federation (top-down: level
 * 0 is the root, the last level the edges, whose children are clients). */
#define FMI_HIER_MAX_LEVELS 16
typedef struct fmi_hier_level {
	uint32_t fanout; /* children of each aggregator of this level */
	uint32_t every;  /* aggregates every k rounds of the level below; the
	                  * edges' (last) must be 1 */
	const fmi_component *aggregator; /* NULL: fmi_fed_cfg.aggregator */
	const fm_value *agg_params;      /* with aggregator */
} fmi_hier_level;

/* The tree; levels == 0 is a star (the server aggregates all clients). */
typedef struct fmi_hier_cfg {
	uint32_t levels;
	fmi_hier_level level[FMI_HIER_MAX_LEVELS];
} fmi_hier_cfg;

/* Sets metric name of a round (replacing its value if already there);
 * beyond FMI_MAX_EXTRA_METRICS new names are dropped. */
void fmi_round_metric(fmi_round_metrics *m, const char *name, double value);
/* The extra metric name of m, or NaN. */
double fmi_round_metric_get(const fmi_round_metrics *m, const char *name);

typedef struct fmi_fed_cfg {
	fmi_arch arch;
	fmi_dataset *train, *test;
	fmi_partition *part;
	uint32_t rounds;
	uint32_t clients_per_round;
	fmi_local_cfg local;
	uint64_t seed;
	const fmi_component *aggregator;
	const fm_value *agg_params;
	fmi_hier_cfg hier;         /* hierarchical tree; levels 0: star */
	/* Byzantine-robust aggregation: a defence plugin applied to each
	 * edge's (a star's: the server's) updates before its aggregator */
	const fmi_component *defence;
	const fm_value *def_params;
	fmi_dataset *root_data;    /* server-held data (FLTrust), or NULL */
	/* attacks, to evaluate defences: adversarial[c] != 0 marks client c
	 * (0-based) as an adversary of the attack plugin */
	const fmi_component *attack;
	const fm_value *atk_params;
	const uint8_t *adversarial; /* [part->nclients] or NULL */
	/* with adversarial, how rounds sample: adv_fixed 0 draws the
	 * clients_per_round clients uniformly (a round's adversaries vary,
	 * hypergeometric); 1 draws exactly adv_per_round of them from the
	 * adversarial clients and the rest from the honest ones, every round
	 * (the Byzantine-robustness papers' setting: f of n per round) */
	int adv_fixed;
	uint32_t adv_per_round;
	uint32_t workers;          /* simulation worker threads; 0: cores */
	uint32_t round_timeout_ms; /* per-round deadline; 0: 1 hour */
	uint32_t min_updates;      /* quorum; 0: every sampled client */
	uint32_t eval_every;       /* evaluate every k rounds and the last */
	const char *checkpoint;    /* server checkpoint file, or NULL */
	int resume;                /* start after the checkpoint's round */
	/* warm start: the initial global model [arch.nparams], or NULL for
	 * the seeded init */
	const float *init_params;
	/* Called after every round on the calling thread; nonzero stops the
	 * run with FM_ESCRIPT (e.g. an error raised in a Lua callback). */
	int (*on_round)(void *ud, const fmi_round_metrics *m);
	void *ud;
	/* appended for issue 9 */
	int client_detail;          /* fill fmi_round_metrics.clients */
	fmi_faults faults;          /* all zero: no simulated faults */
	fmi_lr_schedule lr_sched;   /* local learning rate (local.opt.lr) */
	fmi_lr_schedule server_lr_sched; /* scales the aggregators' lr
	                                  * (fm_round.lr_scale) */
	/* issue 10: a local-training rule (FedProx, SCAFFOLD), with an
	 * instance on every client and on every edge (a star's server) */
	const fmi_component *rule;  /* FM_KIND_LOCAL, or NULL */
	const fm_value *rule_params;
	/* issue 11: sites bring their own data. With site_data, client k
	 * (0-based) is the site of client host k alone and reports its
	 * example count in HELLO; the server and edges have train == NULL
	 * and a partition of empty clients (fmi_sites_partition). */
	int site_data;
	/* Federated evaluation: every eval_every rounds (and the last), the
	 * server sends the new global model to a seeded client_eval_fraction
	 * of the clients (0: none), which evaluate it on their shard of
	 * client_test_part over client_test (held-out data; a client with
	 * none there answers with 0 examples). */
	fmi_dataset *client_test;
	fmi_partition *client_test_part;
	double client_eval_fraction;
	/* issue 12: a privacy mechanism (differential privacy). Its client
	 * side runs on every client after training, before the update
	 * leaves; its server side on every edge (a star's server) after the
	 * defence, before the aggregator. secure_noise routes host->
	 * gauss_noise to the secure sampler. */
	const fmi_component *privacy; /* FM_KIND_PRIVACY, or NULL */
	const fm_value *priv_params;
	int secure_noise;
	/* epsilon and delta in every round's metrics, and the stop at
	 * max_epsilon (dp_budget.h); mode FMI_DP_NONE: not accounted */
	fmi_dp_acct_cfg dp_acct;
	/* Poisson sampling: each client joins a round with probability
	 * clients_per_round / clients, independently (the count varies);
	 * 0: exactly clients_per_round, uniformly without replacement.
	 * A star only. */
	int poisson_sampling;
} fmi_fed_cfg;

typedef struct fmi_fed_result {
	fmi_round_metrics *rounds;
	uint32_t nrounds;
	float *params; /* final global model */
	size_t nparams;
	double seconds;
	int budget_spent; /* stopped before cfg->rounds at max_epsilon */
} fmi_fed_result;

/* Checks a configuration; err says which field is wrong and why. */
int fmi_fed_validate(const fmi_fed_cfg *cfg, fm_error *err);

/* Levels of aggregators: 1 for a star, hier.levels otherwise. */
uint32_t fmi_fed_levels(const fmi_fed_cfg *cfg);
/* Fan-out and aggregator (with parameters) of level l < fmi_fed_levels()
 * (a star's one level: every client, cfg->aggregator). The clients'
 * counterpart instances run the last (edge) level's aggregator. */
uint32_t fmi_fed_fanout(const fmi_fed_cfg *cfg, uint32_t l);
const fmi_component *fmi_fed_level_agg(const fmi_fed_cfg *cfg, uint32_t l,
    const fm_value **params);

/* The clients round r samples (cfg->clients_per_round of them,
 * ascending), as the server draws them. */
int fmi_fed_sample(const fmi_fed_cfg *cfg, uint32_t round, uint32_t *picked);
/* How many clients a round can sample: clients_per_round, or every
 * client with Poisson sampling. */
uint32_t fmi_fed_cap(const fmi_fed_cfg *cfg);
/* The same with Poisson sampling too: *k clients (picked has room for
 * every client when cfg->poisson_sampling). */
int fmi_fed_sample_k(const fmi_fed_cfg *cfg, uint32_t round,
    uint32_t *picked, uint32_t *k);
/* plan[i] (enum fmi_fault) for the i-th of the k clients sampled in round
 * r, from cfg->faults. FM_ENOMEM only. */
int fmi_fault_plan(const fmi_fed_cfg *cfg, uint32_t round, uint32_t k,
    uint8_t *plan);
/* Checks cfg's faults and learning-rate schedules (fmi_fed_validate
 * calls it). */
int fmi_fed_validate_rounds(const fmi_fed_cfg *cfg, fm_error *err);
/* True when cfg->faults simulates any. */
int fmi_faults_on(const fmi_fed_cfg *cfg);
/* The local learning rate of round r (the float that travels in TRAIN). */
float fmi_round_lr(const fmi_fed_cfg *cfg, uint32_t round);

/* Runs the whole federation in this process. */
int fmi_fed_simulate(const fmi_fed_cfg *cfg, fmi_fed_result *res,
    fm_error *err);
void fmi_fed_result_free(fmi_fed_result *res);

/* ---- deployments: every node its own process (deploy.c) ------------- */

#define FMI_NODE_NAME_MAX 64

typedef struct fmi_deploy_cfg {
	char transport[8];  /* "tcp" or "ipc" */
	char server[256];   /* tcp: host:port the clients dial; ipc: a path */
	char bind[256];     /* tcp: host:port the server binds (default server) */
	char server_name[FMI_NODE_NAME_MAX + 1]; /* default "server" */
	char (*clients)[FMI_NODE_NAME_MAX + 1];  /* client host names */
	uint32_t nclients;
	char keys[512];     /* CURVE key folder; "" for no CURVE (ipc only) */
	/* peer-to-peer: the address (host:port, or a path for ipc) peer i
	 * listens on and its neighbours dial; clients[i] is its name and
	 * `server` the monitor that collects metrics */
	char (*peer_addrs)[256];
	uint32_t npeers;
	double join_timeout;   /* server: wait for hosts (s) */
	double idle_timeout;   /* client: give up without the server (s) */
	uint32_t heartbeat_ms; /* client: idle heartbeat period */
	/* client hosts: a folder where host NAME keeps its clients' plugin
	 * state (NAME.state, client_state.c); "" for none */
	char client_state[512];
	/* deploy.edges: a hierarchy's edge aggregators as processes, in the
	 * hierarchy's edge order: their names, the addresses their client
	 * hosts dial (host:port, or a path for ipc), and where they listen
	 * ("" : the address) */
	char (*edge_names)[FMI_NODE_NAME_MAX + 1];
	char (*edge_addrs)[256];
	char (*edge_binds)[256];
	uint32_t nedges;
	double edge_timeout;   /* server: how long an edge may take beyond
	                        * round_timeout (s); 0: 10 */
} fmi_deploy_cfg;

/* 1 for the server, 2 for a client host, 3 for an edge aggregator, 0
 * for a name not in the deployment. */
int fmi_deploy_role(const fmi_deploy_cfg *d, const char *name);

/* ---- deploy.edges: a hierarchy as a tree of processes (deploy_edge.c) - */
/* The position of edge `name` in d->edge_names, or -1. */
int fmi_deploy_edge_index(const fmi_deploy_cfg *d, const char *name);
/* The edge (0-based) client host h (index into d->clients) belongs to:
 * client k (1-based) lives on host clients[(k - 1) % nclients + 1]. */
uint32_t fmi_deploy_host_edge(const fmi_fed_cfg *cfg,
    const fmi_deploy_cfg *d, uint32_t h);
/* Checks d->edges against the hierarchy: one entry per edge aggregator,
 * and every client host holding clients of exactly one edge (err says
 * which host spans which edges and how to fix it). */
int fmi_deploy_check_edges(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d,
    fm_error *err);
/* Runs this process as edge aggregator `name`. */
int fmi_deploy_run_edge(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d,
    const char *name, fm_error *err);
/* Runs this process as the deployment's server / as client host name. */
int fmi_deploy_run_server(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d,
    fmi_fed_result *res, fm_error *err);
int fmi_deploy_run_client(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d,
    const char *name, fm_error *err);

/* ---- launching a deployment on this host (launch.c) ------------------ */
/*
 * Starts one process per node: argv_for(ud, i, name) gives the command
 * line of node i (0 is the server). Their output is streamed to stdout,
 * each line prefixed with "[name] ". Returns when the server exits (the
 * clients get until grace seconds to finish, then SIGTERM); SIGINT or
 * SIGTERM (or SIGHUP) to this process stops every node, and so does a
 * closed stdout (`fedmesh launch ... | head`); every node dies with this
 * process, even a SIGKILLed one. server_fd (or -1) is a descriptor the
 * server node inherits. *server_status gets the server's exit status.
 */
typedef char **(*fmi_launch_argv_fn)(void *ud, uint32_t i, const char *name);
int fmi_launch(const char *const *names, uint32_t n, fmi_launch_argv_fn argv_for,
    void *ud, int server_fd, double grace, int *server_status, fm_error *err);

#endif /* FMI_NODE_FED_H */
