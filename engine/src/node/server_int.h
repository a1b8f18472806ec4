/* SPDX-License-Identifier: MIT */
/*
 * server_int.h: what the server's files share (private): the tree of
 * aggregators, a round's slots, and the server's functions across files
 * (prefix srv_; see server.c for which file holds what).
 */
#ifndef FMI_NODE_SERVER_INT_H
#define FMI_NODE_SERVER_INT_H

#include "node/node.h"
#include "node/pipeline.h"

typedef struct srv_job {
	size_t size;
	uint32_t slot;
} srv_job;

/* One sampled client's slot in the round. */
typedef struct srv_slot {
	uint32_t client; /* partition index; node id is client + 1 */
	uint32_t host;
	uint32_t edge;   /* its edge aggregator (index into nodes) */
	int state;       /* 0 waiting, 1 arrived, 2 fed, 3 unreachable,
	                  * 4 came late (after the round closed) */
	int awaited;     /* counted in fmi_server.waiting */
	uint8_t fault;   /* simulated: enum fmi_fault */
	uint8_t status;  /* enum fmi_client_status, 0 until known */
	uint64_t ne;     /* its update's examples, loss and norm */
	double loss, norm;
	fmi_rmsg msg;
} srv_slot;

struct fmi_server;

/* One aggregator of the tree: the root (a star's server), an
 * intermediate one, or an edge (whose children are clients). */
typedef struct srv_agg {
	struct fmi_server *s;
	fmi_agg *agg;
	fmi_def *def;        /* edges: the defence before agg, or NULL */
	fmi_loc *loc;        /* edges: the local rule's server side, or NULL */
	fmi_priv *priv;      /* edges: the privacy mechanism's server side
	                      * (every one that runs there), or NULL */
	fmi_pipe pipe;       /* attack -> defence -> agg (pipeline.h) */
	fm_round r;          /* the round it is aggregating */
	float *model;        /* the root's is the server's global model */
	uint32_t level;
	int32_t id;          /* FM_NODE_SERVER, or nclients + its index */
	uint64_t data;       /* examples its subtree holds */
	uint64_t since;      /* examples its subtree trained since its
	                      * parent last aggregated it */
	double loss_sum;     /* their losses times examples */
	uint64_t since_root; /* edges: examples since the root aggregated */
	uint64_t rne;        /* edges: this round's accepted examples */
	double rloss;        /* and their losses times examples */
	uint32_t slot0, nsampled; /* edges: this round's slots */
} srv_agg;

typedef struct fmi_server {
	const fmi_fed_cfg *cfg;
	fmi_tran *t;
	const fmi_server_hosts *hosts;
	srv_agg *nodes;
	uint32_t nnodes, levels;
	uint32_t first[FMI_HIER_MAX_LEVELS + 1]; /* first node of each level */
	uint32_t fan[FMI_HIER_MAX_LEVELS];
	uint64_t period[FMI_HIER_MAX_LEVELS]; /* aggregates every k rounds */
	fmi_trainer *eval;
	float *global;  /* the root's model */
	float *scratch; /* an unaligned payload, copied */
	const float *view; /* the model evaluated (global, or avg) */
	float *delta, *avg; /* hierarchies: a child's update; edge mean */
	double *avgd;       /* the edge mean, accumulated */
	int32_t *cids;      /* hierarchies: ids of an aggregator's children */
	int root_done;      /* the root aggregated this round */
	size_t dim;
	uint32_t round;
	srv_slot *slots;
	/* What the edge aggregators send from a_begin, held until each
	 * client's TRAIN goes out right behind its own messages. */
	struct srv_held *held;
	uint32_t nheld, capheld;
	int holding;
	uint32_t nslots, next;
	uint32_t nround;  /* clients the round sampled (srv_sample) */
	fmi_dp_budget dp; /* the privacy budget (dp_budget.h) */
	double dp_eps;    /* epsilon after the last round run */
	uint32_t waiting; /* slots neither arrived nor unreachable */
	uint32_t *order; /* client index -> slot + 1 (0: not sampled) */
	int32_t *ids;    /* node ids of the sampled clients */
	uint64_t *load;  /* per host, for placement */
	double *heard;   /* per host, when it last sent anything */
	srv_job *jobs;
	uint64_t ne_sum;
	double loss_sum;
	fmi_round_metrics *m;
	fmi_timers timers;
	uint64_t seq;
	/* the edges' pipelines hold the round's updates as rows here, each
	 * edge at its first slot (an edge's clients are contiguous) */
	float *rows;        /* [clients_per_round][stride], or NULL */
	double *adv_norms;  /* [clients_per_round] for client detail */
	float *sdelta;      /* the server's root-data update (FLTrust) */
	uint32_t *root_idx;
	/* attacks: model poisoning on held rows, and a success-rate set */
	fmi_atk *atk;
	fmi_dataset *asr;   /* the attack's target set, or NULL */
	/* why the first round that moved no model failed (a run in which
	 * none aggregated is an error, not a result) */
	uint32_t fed;        /* rows an aggregator took, this round */
	char why[320];
	/* issue 9: the round's learning rates, simulated faults, and what
	 * the defences decided */
	float lr;           /* local, sent in TRAIN */
	double lr_scale;    /* of the aggregators' lr (fm_round.lr_scale) */
	uint8_t *plan;      /* [clients_per_round] fault plan, or NULL */
	uint32_t late_expect; /* planned stragglers not heard from yet */
	int closed;         /* past the deadline: updates come late */
	double deadline;
	int def_ran, def_combined;
	uint32_t def_rej, def_rej_adv; /* rows rejected; adversaries among */
	/* issue 11: site data and federated evaluation (server_fedeval.c) */
	uint64_t *site_ne, *site_nt; /* per client = host, from its HELLO */
	struct srv_evalr *evals;     /* this round's evaluators */
	uint32_t nevals, eval_waiting;
	int eval_open;
	/* A hierarchy deployed as a tree of processes: in the root's
	 * process the edges are remote (tree is set, their nodes hold only
	 * the root's copy of their models; server_tree.c); in an edge's
	 * process only aggregator `own` is opened (edge.c). */
	struct srv_tree *tree;
	uint32_t own;
} fmi_server;

/* server.c */
int srv_open(fmi_server *s, fm_error *err);
void srv_close(fmi_server *s);
int srv_begin_edges(fmi_server *s);
uint32_t srv_edge_of(const fmi_server *s, uint32_t c);
uint32_t srv_parent(const fmi_server *s, uint32_t i);
const char *srv_node_name(const fmi_server *s, uint32_t i, char *buf,
    size_t n);

/* server_links.c */
void srv_msg(fmi_server *s, fmi_msg *m, uint32_t type, int32_t to);
void srv_flush_held(fmi_server *s, int32_t to, const char *host);
void srv_drop_held(fmi_server *s);
int srv_plugin_send(void *node, const char *comp, int32_t to, const void *data,
    size_t len);
int srv_plugin_timer(void *node, const char *comp, uint32_t ms, uint64_t tag);
void srv_plugin_metric(void *node, const char *name, double value);
fmi_inst_head *srv_node_instance(srv_agg *n, const char *name);
void srv_on_plugin(fmi_server *s, fmi_rmsg *r);

/* server_fedeval.c */
int srv_fedeval_open(fmi_server *s, fm_error *err);
void srv_fedeval_close(fmi_server *s);
void srv_on_hello(fmi_server *s, int host, const fmi_msg *m);
void srv_on_eval(fmi_server *s, fmi_rmsg *r);
void srv_fedeval(fmi_server *s); /* after the round's own evaluation */

/* server_hosts.c */
int srv_host_index(const fmi_server *s, const char *peer);
int srv_wait_hosts(fmi_server *s, fm_error *err);
void srv_await_hellos(fmi_server *s);
void srv_unwait(fmi_server *s, srv_slot *slot);
void srv_assign_hosts(fmi_server *s);
int srv_broadcast(fmi_server *s);

/* server_sampling.c */
int srv_check_sampling(const fmi_fed_cfg *cfg, fm_error *err);
int srv_sample(fmi_server *s, uint32_t *picked);
int srv_round_counters(fmi_server *s);

/* server_collect.c */
double srv_norm(const float *x, size_t n);
srv_slot *srv_slot_of(fmi_server *s, int32_t client);
const char *srv_sender_why(const fmi_server *s, const fmi_rmsg *r,
    char *why, size_t n);
void srv_dispatch(fmi_server *s, fmi_rmsg *r);
void srv_collect(fmi_server *s);
void srv_dispatch(fmi_server *s, fmi_rmsg *r); /* any message of a round */
void srv_end_round(fmi_server *s);

/* server_aggregate.c */
int srv_finish(fmi_server *s, uint32_t i, int quorum_ok);
void srv_credit(fmi_server *s, uint32_t i);
uint32_t srv_aggregate_edges(fmi_server *s, int quorum_ok);
void srv_aggregate(fmi_server *s);

/* server_tree.c: the root of a tree of processes */
int srv_tree_open(fmi_server *s, fm_error *err);
void srv_tree_close(fmi_server *s);
int srv_tree_wait(fmi_server *s, fm_error *err);
int srv_tree_round(fmi_server *s, uint32_t *picked);
void srv_tree_end_round(fmi_server *s);

/* server_hierarchy.c */
void srv_hier_round(fmi_server *s);

/* server_ckpt.c: the checkpoint after round nrounds (first: round 1's,
 * which warns about plugins whose state it cannot hold; a resume warns
 * itself), and a resume from one (FM_ENOENT: there is none). */
int srv_ckpt_write(fmi_server *s, const fmi_fed_result *res, uint32_t nrounds,
    int first, fm_error *err);
int srv_ckpt_resume(fmi_server *s, fmi_fed_result *res, uint32_t *nrounds,
    fm_error *err);
/* Before the first round of a resumed run: the client hosts drop what
 * they hold of rounds >= start (an earlier server's tasks and messages). */
void srv_ckpt_void_rounds(fmi_server *s, uint32_t start);

/* server_metrics.c */
void srv_why(fmi_server *s, const char *fmt, ...) FM_PRINTF(2, 3);
void srv_metric(fmi_server *s, const char *name, double value);
void srv_defence_metrics(fmi_server *s);
void srv_evaluate(fmi_server *s, fmi_round_metrics *m);
int srv_detail(fmi_server *s, fmi_round_metrics *m);

#endif /* FMI_NODE_SERVER_INT_H */
