/* SPDX-License-Identifier: MIT */
/* node.h: internal pieces shared by the server, the client host and timers. */
#ifndef FMI_NODE_NODE_H
#define FMI_NODE_NODE_H


#include "node/fed.h"
#include "transports/transport.h"

/* ---- plugin timers and messages (plugin_link.c) ---------------------- */
/* A received FMI_MSG_PLUGIN to instance h (its on_message's result). */
int fmi_inst_deliver(fmi_inst_head *h, fmi_rmsg *r);

#define FMI_MAX_TIMERS 64
typedef struct fmi_timer {
	double due;
	uint64_t tag;
	fmi_inst_head *inst;
} fmi_timer;
typedef struct fmi_timers {
	fmi_timer t[FMI_MAX_TIMERS];
	int n;
} fmi_timers;
int fmi_timers_add(fmi_timers *ts, fmi_inst_head *inst, uint32_t ms,
    uint64_t tag);
/* A timer due at `due` on a clock of the caller's (fmi_timers_fire_until);
 * fmi_timers_add's clock is fmi_now(). FM_EBUSY when FMI_MAX_TIMERS are
 * armed. */
int fmi_timers_add_at(fmi_timers *ts, fmi_inst_head *inst, double due,
    uint64_t tag);
/* Fires the timers due at `now` that were armed before the call, in a
 * deterministic order: by due time, then tag, then the order they were
 * set (timers their callbacks arm wait for the next call). Returns how
 * many fired. Keep to this or to fmi_timers_fire on one fmi_timers:
 * fmi_timers_fire does not keep the order set. */
int fmi_timers_fire_until(fmi_timers *ts, double now);
/* Milliseconds until the next timer (capped at cap_ms), 0 if one is due. */
int fmi_timers_wait_ms(const fmi_timers *ts, int cap_ms);
/* Fires due timers; drops those of instance inst (NULL: none) first. */
void fmi_timers_fire(fmi_timers *ts);
void fmi_timers_drop(fmi_timers *ts, const fmi_inst_head *inst);

/* ---- the server (server.c) ------------------------------------------ */
typedef struct fmi_server fmi_server;
/*
 * The client hosts the server talks to: worker threads in a simulation,
 * client processes in a deployment. The server starts round 1 once every
 * host has said something (HELLO or HEARTBEAT), or after join_timeout
 * seconds if at least one has. With pinned, logical client c always runs
 * on host c % n (its data lives there); otherwise the server balances
 * clients over hosts each round. Results never depend on placement.
 */
typedef struct fmi_server_hosts {
	char (*names)[FMI_PEER_MAX + 1];
	uint32_t n;
	int pinned;
	double join_timeout;   /* seconds; 0: 30 */
	double silent_timeout; /* a host not heard from for this long (s) at
	                        * the start of a round is not sent work: its
	                        * clients drop out at once; 0: never */
	struct fmi_store *store; /* the hosts' shared client state when they
	                          * run in this process (a simulation): it
	                          * goes into the server's checkpoints */
	/* A hierarchy deployed as a tree of processes: the hosts are the
	 * edge aggregators (names in the hierarchy's edge order), and this
	 * server runs the levels above them (server_tree.c). */
	int edges;
	double edge_timeout; /* seconds an edge may take beyond
	                      * round_timeout to report; 0: 10 */
} fmi_server_hosts;

int fmi_server_run(const fmi_fed_cfg *cfg, fmi_tran *t,
    const fmi_server_hosts *hosts, fmi_fed_result *res, fm_error *err);

/* ---- an edge aggregator of a tree of processes (edge.c) --------------- */
typedef struct fmi_edge_opts {
	uint32_t heartbeat_ms; /* HEARTBEAT to the parent when idle; 0: none */
	double idle_timeout;   /* give up after this long without a word from
	                        * the parent (seconds); 0: never */
	double edge_timeout;   /* the parent's edge_timeout (s); 0: 10 */
	/* Client c lives on client host c % nhosts of the deployment;
	 * host_ids[i] is the deployment's index of hosts->names[i]. */
	uint32_t nhosts;
	const uint32_t *host_ids;
} fmi_edge_opts;

/* Runs edge aggregator j (0-based, in the hierarchy's edge order) for
 * its client hosts (`hosts`, pinned, listening on `clients`) under its
 * parent (`up`, dialed as `name`), until the parent's SHUTDOWN (FM_OK,
 * passed on to the client hosts) or the idle timeout (FM_ETIMEDOUT). */
int fmi_edge_run(const fmi_fed_cfg *cfg, fmi_tran *clients,
    const fmi_server_hosts *hosts, fmi_tran *up, const char *name,
    uint32_t j, const fmi_edge_opts *o, fm_error *err);

/* ---- checkpoints (checkpoint.c) -------------------------------------- */
/*
 * A server checkpoint: the global model, the metrics of every completed
 * round, and sections for everything else a resumed run needs (what they
 * hold: server_ckpt.c), tied to the run by its seed and model size.
 * Written atomically and checksummed (ckfile.h): a crash leaves the
 * previous checkpoint or the new one, never a torn file, and a truncated
 * or corrupt file is refused.
 */
#define FMI_CK_NAME_MAX 64
enum fmi_ck_type {
	FMI_CK_ENGINE = 1, /* the server's own state (server_ckpt.c) */
	FMI_CK_MODEL = 2,  /* the model of aggregator `node` (> 0) */
	FMI_CK_PLUGIN = 3, /* what plugin `name` of kind `kind` on
	                    * aggregator `node` saved (fm_ops.save) */
	FMI_CK_STORE = 4   /* the simulated clients' plugin state */
};
typedef struct fmi_ck_section {
	uint32_t type, node, kind; /* enum fmi_ck_type; kind: enum fm_kind */
	char name[FMI_CK_NAME_MAX];
	void *data;
	size_t len;
} fmi_ck_section;
/* A checkpoint as read: its format, and its sections (malloc'ed). */
typedef struct fmi_ck {
	uint32_t version; /* 1: model and metrics only; 2: sections too */
	uint32_t nrounds, nsections;
	fmi_ck_section *sec;
	uint32_t cursor; /* where fmi_ck_find looks first */
} fmi_ck;

int fmi_checkpoint_write(const char *path, uint64_t seed, const float *params,
    size_t nparams, const fmi_round_metrics *rounds, uint32_t nrounds,
    const fmi_ck_section *sec, uint32_t nsec, fm_error *err);
/* Reads a checkpoint into params[nparams], rounds[max_rounds] and ck
 * (free it with fmi_ck_free); refuses one from another run (seed, model
 * size), another format version or build, and a truncated or corrupt
 * one. FM_ENOENT when there is no file. */
int fmi_checkpoint_read(const char *path, uint64_t seed, float *params,
    size_t nparams, fmi_round_metrics *rounds, uint32_t max_rounds,
    fmi_ck *ck, fm_error *err);
/* The section (type, node, kind), or NULL. */
const fmi_ck_section *fmi_ck_find(fmi_ck *ck, uint32_t type, uint32_t node,
    uint32_t kind);
void fmi_ck_free(fmi_ck *ck);

/* ---- deployment links (deploy.c) ------------------------------------- */
/* Listens on url as node self; with d->keys, CURVE and c's authenticator
 * allowing d->clients' keys (fmi_tran_allow: once per context), and
 * frames above max_frame + header are refused. handover: a node that
 * reconnects under its name takes it back (fmi_tran_listen_opts). */
int fmi_deploy_listen(fmi_tran_ctx *c, const fmi_deploy_cfg *d,
    const char *self, const char *url, size_t max_frame, int handover,
    fmi_tran **t, fm_error *err);
/* As fmi_deploy_listen, accepting the keys of the nodes allow[nallow]
 * (deploy.edges: the server accepts its edges', an edge its client
 * hosts'). */
int fmi_deploy_listen_allow(fmi_tran_ctx *c, const fmi_deploy_cfg *d,
    const char *self, const char *url, char (*allow)[FMI_NODE_NAME_MAX + 1],
    uint32_t nallow, size_t max_frame, int handover, fmi_tran **t,
    fm_error *err);
/* The node client host `host` dials (*to: its edge with deploy.edges,
 * else the server) and its url. */
int fmi_deploy_parent_of(const fmi_fed_cfg *cfg, const fmi_deploy_cfg *d,
    const char *host, const char **to, char *url, size_t n, fm_error *err);
/* Dials node `to` at url as node self (CURVE with to's public key when
 * d->keys is set); queue > 0 makes the link lossy (fmi_tran_dial_lossy). */
int fmi_deploy_dial(fmi_tran_ctx *c, const fmi_deploy_cfg *d, const char *self,
    const char *to, const char *url, int queue, fmi_tran **t, fm_error *err);

/* ---- a client host (client.c) --------------------------------------- */
/* Options of a client host; all zero in a simulation. */
typedef struct fmi_client_opts {
	uint32_t heartbeat_ms; /* HEARTBEAT to the server when idle; 0: none */
	double idle_timeout;   /* give up after this long without a word from
	                        * the server (seconds); 0: never */
	struct fmi_store *store; /* per-client plugin state shared with other
	                          * hosts (a simulation's workers); NULL: the
	                          * host keeps its own */
	/* deploy.client_state: the host's own store is kept in this file
	 * (FOLDER/NAME.state) and loaded from it at start; NULL: memory only */
	const char *state_file;
	const char *state_host; /* NAME, recorded in the file */
} fmi_client_opts;

/* Serves TRAIN requests for any client of cfg->part until SHUTDOWN (FM_OK)
 * or the idle timeout (FM_ETIMEDOUT). opts may be NULL. */
int fmi_client_host_run(const fmi_fed_cfg *cfg, fmi_tran *t,
    const char *name, const fmi_client_opts *opts, fm_error *err);

/* client_state.c: a client host's own store (not a simulation's shared
 * one). load prepares it at start: it keeps every entry's value from
 * before its last round (a restarted server may run that round again),
 * and with opts->state_file it is filled from that file (none yet: the
 * clients start from zero; a file of another federation or a bad one is
 * an error, and the file is left as it is). save writes the file when a
 * task took state since the last write: after each client trained,
 * before its update leaves, so the file holds every change the server
 * can have counted; a failure is logged and the host goes on. */
int fmi_client_state_load(struct fmi_store *st, const fmi_fed_cfg *cfg,
    const fmi_client_opts *opts, fm_error *err);
void fmi_client_state_save(struct fmi_store *st, const fmi_fed_cfg *cfg,
    const fmi_client_opts *opts);

/* Per-task seeds and streams derived from the run seed. */
uint64_t fmi_fed_id(uint64_t seed);
uint64_t fmi_task_seed(uint64_t seed, uint32_t round, uint32_t client);

#endif /* FMI_NODE_NODE_H */
