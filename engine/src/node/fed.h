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
 */
#ifndef FMI_NODE_FED_H
#define FMI_NODE_FED_H

#include <stdint.h>

#include "data/data.h"
#include "model/model.h"
#include "plugin/registry.h"

#define FMI_MAX_EXTRA_METRICS 16

typedef struct fmi_metric_kv {
	char name[32];
	double value;
} fmi_metric_kv;

typedef struct fmi_round_metrics {
	uint32_t round;
	double accuracy, loss; /* global model on the test set */
	double train_loss;     /* example-weighted mean of client losses */
	uint64_t bytes_sent, bytes_received; /* at the server, this round */
	double seconds;
	uint32_t sampled, updates, dropped;
	int evaluated; /* accuracy/loss are from this round */
	uint32_t nextra;
	fmi_metric_kv extra[FMI_MAX_EXTRA_METRICS];
} fmi_round_metrics;

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
	uint32_t workers;          /* simulation worker threads; 0: cores */
	uint32_t round_timeout_ms; /* per-round deadline; 0: 1 hour */
	uint32_t min_updates;      /* quorum; 0: every sampled client */
	uint32_t eval_every;       /* evaluate every k rounds and the last */
	const char *checkpoint;    /* server checkpoint file, or NULL */
	int resume;                /* start after the checkpoint's round */
	/* Called after every round on the calling thread; nonzero stops the
	 * run with FM_ESCRIPT (e.g. an error raised in a Lua callback). */
	int (*on_round)(void *ud, const fmi_round_metrics *m);
	void *ud;
} fmi_fed_cfg;

typedef struct fmi_fed_result {
	fmi_round_metrics *rounds;
	uint32_t nrounds;
	float *params; /* final global model */
	size_t nparams;
	double seconds;
} fmi_fed_result;

/* Checks a configuration; err says which field is wrong and why. */
int fmi_fed_validate(const fmi_fed_cfg *cfg, fm_error *err);

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
	double join_timeout;   /* server: wait for hosts (s) */
	double idle_timeout;   /* client: give up without the server (s) */
	uint32_t heartbeat_ms; /* client: idle heartbeat period */
} fmi_deploy_cfg;

/* 1 for the server, 2 for a client host, 0 for a name not in the
 * deployment. */
int fmi_deploy_role(const fmi_deploy_cfg *d, const char *name);
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
 * SIGTERM to this process stops every node. *server_status gets the
 * server's exit status.
 */
typedef char **(*fmi_launch_argv_fn)(void *ud, uint32_t i, const char *name);
int fmi_launch(const char *const *names, uint32_t n, fmi_launch_argv_fn argv_for,
    void *ud, double grace, int *server_status, fm_error *err);

#endif /* FMI_NODE_FED_H */
