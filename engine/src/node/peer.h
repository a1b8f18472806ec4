/* SPDX-License-Identifier: MIT */
/*
 * peer.h: decentralized federations (no server).
 *
 * Every peer holds its own model and its own data shard (client i of the
 * partition is peer i of the graph). Round r at peer i:
 *   1. train: y_i = local training of x_i on shard i (seeded by run seed,
 *      peer and round, so results never depend on placement); an
 *      adversarial peer's attack plugin then rewrites y_i - x_i;
 *   2. send y_i (and the consensus plugin's mass) to the out-neighbours of
 *      round r's graph;
 *   3. receive the in-neighbours' y_j until all came or the round's
 *      deadline passed;
 *   4. mix: x_i = c_mix(own y_i, received y_j) through the consensus
 *      plugin (gossip, push-sum, robust gossip, ...);
 *   5. evaluate x_i on the test set (every eval_every rounds).
 * The simulation (p2p_sim.c) runs every peer in one process with worker
 * threads, its models travelling over inproc://; a deployment runs each
 * peer as its own process (p2p_peer_node.c) over tcp:// or ipc://, and a
 * monitor (p2p_monitor.c) collects their metrics. Both use the functions
 * below and the same GOSSIP messages, so for the same seed and no faults
 * they compute the same models.
 */
#ifndef FMI_NODE_PEER_H
#define FMI_NODE_PEER_H

#include <stdint.h>

#include "node/fed.h"
#include "topo/graph.h"
#include "transports/transport.h"

typedef struct fmi_p2p_cfg {
	fmi_arch arch;
	fmi_dataset *train, *test;
	fmi_partition *part; /* nclients == graph peers */
	fmi_graph *graph;
	uint32_t rounds;
	fmi_local_cfg local;
	uint64_t seed;
	const fmi_component *consensus;
	const fm_value *cons_params;
	uint32_t workers;      /* simulation threads; 0: cores */
	uint32_t eval_every;   /* evaluate every k rounds and the last; 0: 1 */
	uint32_t eval_samples; /* test examples per evaluation; 0: all */
	const uint8_t *byzantine; /* [peers] or NULL: 1 = adversarial */
	/* What an adversarial (Byzantine) peer sends: an attack plugin with
	 * t_poison_updates (sign_flip, gaussian, scaling, alie, ipm) rewrites
	 * its update y - x, and it sends x + the poisoned update. */
	const fmi_component *attack;
	const fm_value *atk_params;
	int independent_init; /* each peer draws its own initial model */
	const float *init_params; /* warm start: every peer's initial model
	                           * [arch.nparams], or NULL */
	uint32_t round_timeout_ms; /* deployments: wait for neighbours */
	/* deployments: a folder where each peer keeps NAME.state after every
	 * round (NULL: none), and whether to start from it (--resume) */
	const char *state_dir;
	int resume;
	int (*on_round)(void *ud, const fmi_round_metrics *m);
	void *ud;
	/* issue 12: local differential privacy: the client side of a
	 * privacy mechanism runs on every peer's update before its model is
	 * shared (and mixed: the peer keeps only what it could share) */
	const fmi_component *privacy; /* FM_KIND_PRIVACY, or NULL */
	const fm_value *priv_params;
	int secure_noise;
} fmi_p2p_cfg;

int fmi_p2p_validate(const fmi_p2p_cfg *cfg, fm_error *err);

/* Peer i is not an adversary (adversaries are left out of metrics). */
static inline int
fmi_p2p_honest(const fmi_p2p_cfg *cfg, uint32_t i)
{
	return cfg->byzantine == NULL || !cfg->byzantine[i];
}

/*
 * Runs every peer in this process. res->params holds the mean of the
 * honest peers' final models. Metrics per round: accuracy and loss are
 * the means over honest peers, extras accuracy_min, accuracy_max and
 * consensus_distance (mean L2 distance of honest peers' models from
 * their average).
 */
int fmi_p2p_simulate(const fmi_p2p_cfg *cfg, fmi_fed_result *res,
    fm_error *err);

/* ---- deployed: every peer its own process --------------------------- */
#define FMI_P2P_SKETCH 2048 /* count-sketch buckets of a REPORT */
/* url = "<d->transport>://addr" (tcp or ipc). */
int fmi_p2p_url(const fmi_deploy_cfg *d, const char *addr, char *url,
    size_t n, fm_error *err);
/* (p2p_peer_node.c) */
/* Runs this process as peer `peer` (0-based) of deployment d: it listens
 * on d->peer_addrs[peer] under the name d->clients[peer]. */
int fmi_p2p_run_peer(const fmi_p2p_cfg *cfg, const fmi_deploy_cfg *d,
    uint32_t peer, fm_error *err);
/* (p2p_monitor.c) Runs the monitor (d->server_name at d->server): collects the peers'
 * reports into round metrics (res, cfg->on_round) until the last round. */
int fmi_p2p_run_monitor(const fmi_p2p_cfg *cfg, const fmi_deploy_cfg *d,
    fmi_fed_result *res, fm_error *err);

/* ---- one peer (peer.c) ---------------------------------------------- */

/*
 * The consensus instance's node link (host->send, timer, metric, limits):
 * peer.c checks and builds, the node moves the bytes. send gets a
 * complete FMI_MSG_PLUGIN (fmi_plugin_msg) for peer m->to, a neighbour of
 * the round's graph; timer arms a one-shot timer of the peer's consensus
 * instance h (the simulation on its round clock, a deployment on the wall
 * clock). Both return FM_OK or an fm_errno the plugin gets back.
 */
typedef struct fmi_peer_net {
	void *ud;
	int (*send)(void *ud, uint32_t from, const fmi_msg *m,
	    const void *data, size_t len);
	int (*timer)(void *ud, uint32_t peer, fmi_inst_head *h, uint32_t ms,
	    uint64_t tag);
} fmi_peer_net;

/* What a peer's consensus instance reported this round (host->metric):
 * one value per name, the last one given. */
typedef struct fmi_peer_metrics {
	uint32_t n;
	fmi_metric_kv kv[FMI_MAX_EXTRA_METRICS];
} fmi_peer_metrics;

typedef struct fmi_peer {
	uint32_t id;
	size_t dim;
	float *x;  /* current model */
	float *y;  /* trained model of this round (what is sent) */
	double mass;
	uint64_t examples;
	double loss; /* mean local training loss this round */
	fmi_cons *cons;
	fmi_atk *atk;  /* an adversarial peer's attack instance, or NULL */
	fmi_priv *priv; /* an honest peer's local privacy, or NULL */
	float *rows;   /* its attack's update rows [2][stride] */
	size_t stride;
	/* the node link (net NULL: none) */
	fmi_peer_net net;
	uint64_t fed, seq;  /* FMI_MSG_PLUGIN headers */
	uint32_t n;         /* peers */
	uint32_t round;     /* the round under way */
	const fmi_adj *adj; /* its graph (neighbours), NULL before round 1 */
	fmi_peer_metrics metrics;
} fmi_peer;

/* net NULL: the consensus instance has no node link (send and timer are
 * FM_ENOTSUP, metrics are dropped). */
int fmi_peer_init(fmi_peer *p, const fmi_p2p_cfg *cfg, uint32_t id,
    const fmi_peer_net *net, fm_error *err);
/* Starts round `round` with graph adj (kept by pointer until the next
 * call; plugin messages go to and come from its neighbours) and clears
 * the round's plugin metrics. */
void fmi_peer_begin_round(fmi_peer *p, const fmi_adj *adj, uint32_t round);
/* j is an in- or out-neighbour of peer i in a (j != i). */
int fmi_peer_is_neighbour(const fmi_adj *a, uint32_t i, uint32_t j);
/*
 * A received FMI_MSG_PLUGIN for peer p: delivered to its consensus
 * instance (fmi_inst_message) when it is of this federation, for this
 * peer, from a neighbour of p's current round's graph and for the
 * consensus component (which takes messages); otherwise dropped and
 * logged (FM-PLUGIN-MSG). Returns FM_OK when delivered. Does not close r.
 */
int fmi_peer_deliver(fmi_peer *p, fmi_rmsg *r);
/* The mean over the peers with use[i] of metrics[i] into m's extras, per
 * name (a name counts the peers that reported it), names in the order
 * they first appear by peer id. */
void fmi_peer_metrics_mean(fmi_round_metrics *m,
    const fmi_peer_metrics *metrics, const uint8_t *use, uint32_t n);
/* The metrics as bytes (a REPORT's payload after the sketch): per metric
 * 32 bytes of NUL-padded name and a little-endian double. encode returns
 * the bytes written into buf (FMI_PEER_METRICS_MAX); decode is
 * FM_EPROTO for a length that is no whole number of entries or a bad
 * name. */
#define FMI_PEER_METRIC_BYTES 40
#define FMI_PEER_METRICS_MAX (FMI_MAX_EXTRA_METRICS * FMI_PEER_METRIC_BYTES)
size_t fmi_peer_metrics_encode(const fmi_peer_metrics *pm, uint8_t *buf);
int fmi_peer_metrics_decode(fmi_peer_metrics *pm, const uint8_t *buf,
    size_t len);
void fmi_peer_fini(fmi_peer *p);
/* Peer id's initial model: the same seeded model for every peer (as the
 * star server's), or its own with cfg->independent_init. */
void fmi_peer_initial_model(const fmi_p2p_cfg *cfg, uint32_t id, float *x);
/* Step 1 (and the mass of step 2). tr is a trainer for cfg->arch. */
int fmi_peer_train(fmi_peer *p, const fmi_p2p_cfg *cfg, fmi_trainer *tr,
    uint32_t round);
/* Step 2: asks the consensus plugin for the mass sent with y. */
int fmi_peer_prepare_send(fmi_peer *p, const fmi_adj *adj, uint32_t round);
/* Step 4: nb[0..nnb) are the neighbours' models that arrived, sorted by
 * peer id (weights are filled in here from adj). */
int fmi_peer_mix(fmi_peer *p, const fmi_adj *adj, uint32_t round,
    fm_peer_model *nb, uint32_t nnb);
/* The same when not every send went out or models came late (deployed
 * peers): the own model went to out_sent out-neighbours only, and
 * late[0..nlate) are models of earlier rounds received since their
 * round's mix (fm_mix.out_sent, .late). */
int fmi_peer_mix_faults(fmi_peer *p, const fmi_adj *adj, uint32_t round,
    fm_peer_model *nb, uint32_t nnb, uint32_t out_sent,
    const fm_peer_model *late, uint32_t nlate);
/* The peer's consensus rule attaches a mass to its models (push-sum):
 * then a late model still counts, and its state must survive a
 * restart. */
int fmi_peer_carries_mass(const fmi_peer *p);
/*
 * The GOSSIP message that carries a peer's round model y to a neighbour,
 * in the simulation (p2p_sim.c, inproc://) as in a deployment
 * (p2p_peer_node.c, tcp://). fmi_peer_payload: y as little-endian floats
 * (NULL on ENOMEM), one buffer for every neighbour. fmi_peer_gossip: the
 * header from p to peer `to`.
 */
fmi_payload *fmi_peer_payload(const fmi_peer *p);
void fmi_peer_gossip(const fmi_peer *p, uint64_t fed, uint32_t round,
    uint32_t to, fmi_msg *m);
/* Why a received message is no usable GOSSIP of federation fed among n
 * peers with dim parameters (its log id, the reason in why), or NULL. */
const char *fmi_peer_gossip_check(fmi_rmsg *r, uint64_t fed, uint32_t n,
    size_t dim, char *why, size_t len);
/* A checked GOSSIP as the neighbour model fmi_peer_mix takes; its payload
 * must be in host byte order (fmi_f32_from_le) and outlive the mix. */
fm_peer_model fmi_peer_model_of(fmi_rmsg *r);

/*
 * A peer's state file (deployed peers with deploy.checkpoint): its model
 * x after the mix of `round` and its consensus rule's saved state (push-
 * sum's w), written atomically (temporary file, fsync, rename). read
 * restores both into a freshly initialised peer and gives the round;
 * FM_ENOENT when there is none, and a clear error for a file of another
 * run, peer or format (nothing is changed then).
 */
int fmi_peer_state_write(fmi_peer *p, const char *path, uint32_t round,
    fm_error *err);
int fmi_peer_state_read(fmi_peer *p, const char *path, uint32_t *round,
    fm_error *err);

/* Evaluation subset of cfg->test (NULL: all of it); free with free(). */
uint32_t *fmi_peer_eval_subset(const fmi_p2p_cfg *cfg, size_t *n);

#endif /* FMI_NODE_PEER_H */
