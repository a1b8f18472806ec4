/* SPDX-License-Identifier: MIT */
/*
 * wire.h: the fedmesh wire format.
 *
 * A message is one msgpack header frame, optionally followed by one payload
 * frame. The header is a map with short string keys; the first two keys
 * are always "v" (wire version) and "t" (type). Tensor payloads are raw
 * little-endian float32, sent as their own ZeroMQ frame so they are never
 * copied into the header; plugin payloads are opaque bytes.
 *
 * Every decoder validates before use: wire version, type, presence and
 * msgpack type of each required field, ranges, string lengths, header size,
 * and (fmi_msg_check_tensor) payload length against the expected model size
 * and finiteness. Anything off returns FM_EPROTO/FM_EVERSION/FM_ERANGE with a
 * reason in err; the caller logs it and drops the message.
 */
#ifndef FMI_WIRE_H
#define FMI_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"

#define FMI_WIRE_VERSION 1
#define FMI_WIRE_MAX_HEADER 4096      /* bytes; larger headers are refused */
#define FMI_WIRE_MAX_NAME 63          /* plugin / node name length */

enum fmi_msg_type {
	FMI_MSG_HELLO = 1,     /* client -> server: I am node `from` */
	FMI_MSG_TRAIN = 2,     /* server -> client: global model + config */
	FMI_MSG_UPDATE = 3,    /* client -> server: delta + num_examples */
	FMI_MSG_PLUGIN = 4,    /* plugin <-> counterpart: opaque bytes */
	FMI_MSG_ROUND_END = 5, /* server -> clients: round closed */
	FMI_MSG_SHUTDOWN = 6,  /* server -> clients: run over */
	FMI_MSG_HEARTBEAT = 7, /* either way: I am alive */
	FMI_MSG_GOSSIP = 8,    /* peer -> peer: trained model + mass */
	FMI_MSG_REPORT = 9,    /* peer -> monitor: round metrics + sketch */
	FMI_MSG_EVALUATE = 10, /* server -> client: evaluate this model */
	FMI_MSG_EVAL = 11,     /* client -> server: its held-out results */
	/* a hierarchy deployed as a tree of processes (wire_edge.c) */
	FMI_MSG_EDGE_ROUND = 12,     /* parent -> edge: the round's clients,
	                              * lr, lr scale [+ the edge's model] */
	FMI_MSG_EDGE_COLLECTED = 13, /* edge -> parent: updates collected */
	FMI_MSG_EDGE_VERDICT = 14,   /* parent -> edge: quorum met or not */
	FMI_MSG_EDGE_RESULT = 15,    /* edge -> parent: per-client outcome,
	                              * stats, metrics [+ its new model] */
	FMI_MSG_MAX = 15
};

/*
 * A decoded header. Which fields are meaningful depends on type:
 *   all:       v, t, fed, round, from, to, seq
 *   HELLO:     num_examples (train examples the host's clients hold),
 *              num_test (their held-out examples)
 *   EVALUATE:  client (= to), n (floats in the payload)
 *   EVAL:      client (= from), num_examples (held-out examples), acc,
 *              test_loss
 *   TRAIN:     client (= to), epochs, batch, lr, momentum, weight_decay,
 *              seed, n (floats in the payload)
 *   UPDATE:    client (= from), num_examples, loss, n
 *   PLUGIN:    plugin (component name), n (payload bytes)
 *   EDGE_ROUND:     lr, lr_scale, n (model floats: 0 or the model's),
 *                   body (bytes of the msgpack body after the floats)
 *   EDGE_COLLECTED: updates
 *   EDGE_VERDICT:   ok
 *   EDGE_RESULT:    n, body (as EDGE_ROUND)
 * Encoders write only the fields that belong to the type.
 */
typedef struct fmi_msg {
	uint32_t type;
	uint64_t fed;   /* federation id (run seed hash) */
	uint32_t round;
	int32_t from, to;
	uint64_t seq;
	/* TRAIN */
	uint32_t epochs, batch;
	float lr, momentum, weight_decay;
	uint64_t seed;
	/* UPDATE, GOSSIP, REPORT */
	uint64_t num_examples;
	double loss;
	/* UPDATE: local SGD steps taken (FedNova normalizes by them) */
	uint64_t steps;
	/* GOSSIP: the consensus plugin's scalar (push-sum mass) */
	double mass;
	/* REPORT: test accuracy and loss of the peer's model (-1: not
	 * evaluated this round); EVAL: of the global model on a client's
	 * held-out data */
	double acc, test_loss;
	/* HELLO: held-out examples (federated evaluation) */
	uint64_t num_test;
	/* PLUGIN */
	char plugin[FMI_WIRE_MAX_NAME + 1];
	/* payload element count (floats for TRAIN/UPDATE, bytes for PLUGIN) */
	uint64_t n;
	/* EDGE_*: the aggregators' learning-rate factor (fm_round.lr_scale),
	 * the updates an edge collected, the parent's verdict (1: aggregate),
	 * and the bytes of the msgpack body after the n floats */
	double lr_scale;
	uint32_t updates;
	uint32_t ok;
	uint64_t body;
} fmi_msg;

const char *fmi_msg_type_name(uint32_t type); /* "train", ..., "?" */

/* Encodes m's header into buf[cap]; *len gets the size. FM_ERANGE if it
 * does not fit, FM_EINVAL for an unknown type. */
int fmi_msg_encode(const fmi_msg *m, void *buf, size_t cap, size_t *len);

/* Decodes and validates a header. On failure m is unspecified and err
 * says why (e.g. "wire version 7, expected 1", "field 'lr' is a string,
 * expected a number", "truncated msgpack"). */
int fmi_msg_decode(fmi_msg *m, const void *buf, size_t len, fm_error *err);

/* Checks a TRAIN/UPDATE payload: present, len == m->n * 4, m->n == dim,
 * every value finite. */
int fmi_msg_check_tensor(const fmi_msg *m, const void *payload, size_t len,
    size_t dim, fm_error *err);

/* The header of a PLUGIN message: len bytes from node `from` to node
 * `to` for component `component` (cut to FMI_WIRE_MAX_NAME). */
void fmi_plugin_msg(fmi_msg *m, uint64_t fed, uint32_t round, int32_t from,
    int32_t to, uint64_t seq, const char *component, size_t len);

/* ---- the bodies of EDGE_ROUND and EDGE_RESULT (wire_edge.c) ----------
 *
 * Their payload is n little-endian float32 (the model, or nothing) then a
 * msgpack map of `body` bytes:
 *   EDGE_ROUND:  "c": [client node ids, ascending], "f": [their simulated
 *                fault, enum fmi_fault: 0 none, 1 dropout, 2 straggler]
 *   EDGE_RESULT: "c": [[id, status, counted, examples, loss, norm], ...]
 *                (status: enum fmi_client_status 1..5; counted: 1 when its
 *                update entered the pipeline; loss, norm: NaN for none),
 *                "x": [[phase, name, value], ...] the metrics the edge's
 *                plugins set (phase 0 begin, 1 collecting, 2 aggregating),
 *                "fin": 1 when the edge's model moved (its floats
 *                follow), "held", "dr", "dc" (0/1: updates held as rows,
 *                the defence ran, it combined all), "fed", "rej", "ra"
 *                (rows the aggregator took; rows the defence rejected,
 *                adversaries among them), "why" (why it failed, or "").
 * Unknown keys are ignored, as in headers; known ones are checked for
 * type and range. Which clients may appear is the node's check.
 */
#define FMI_EDGE_METRIC_NAME 31
#define FMI_EDGE_WHY 255

typedef struct fmi_edge_client {
	int32_t client;    /* node id (partition index + 1) */
	uint8_t fault;     /* EDGE_ROUND */
	uint8_t status;    /* EDGE_RESULT, and what follows */
	uint8_t counted;
	uint64_t examples;
	double loss, norm;
} fmi_edge_client;

typedef struct fmi_edge_metric {
	uint8_t phase;
	char name[FMI_EDGE_METRIC_NAME + 1];
	double value;
} fmi_edge_metric;

typedef struct fmi_edge_body {
	fmi_edge_client *clients; /* [cap_clients], the caller's */
	uint32_t nclients, cap_clients;
	fmi_edge_metric *metrics; /* [cap_metrics] (EDGE_RESULT) */
	uint32_t nmetrics, cap_metrics;
	uint8_t finished, held, def_ran, def_combined;
	uint32_t fed, rejected, rejected_adv;
	char why[FMI_EDGE_WHY + 1];
} fmi_edge_body;

/* Most bytes the body of type with nclients and nmetrics can take. */
size_t fmi_edge_body_bound(uint32_t type, uint32_t nclients,
    uint32_t nmetrics);
/* Encodes b as the body of type (EDGE_ROUND or EDGE_RESULT) into
 * buf[cap]; FM_ERANGE if it does not fit, FM_EINVAL for another type or
 * a field out of range (a name of no or too many bytes). */
int fmi_edge_body_encode(uint32_t type, const fmi_edge_body *b, void *buf,
    size_t cap, size_t *len);
/* Decodes and validates a body into b (its arrays and caps set by the
 * caller; more entries than a cap are refused). */
int fmi_edge_body_decode(uint32_t type, const void *buf, size_t len,
    fmi_edge_body *b, fm_error *err);
/* Splits the payload of an EDGE_ROUND / EDGE_RESULT header m: its length
 * must be 4 m->n + m->body, m->n 0 or dim, every float finite. *model
 * gets the floats (NULL when n is 0; any alignment), *body the body. */
int fmi_edge_payload(const fmi_msg *m, const void *payload, size_t len,
    size_t dim, const void **model, const void **body, fm_error *err);

/* Pre-scan of one msgpack object in buf[len] (wire.c): complete, ending
 * exactly at len, no container promising more elements than bytes. */
int fmi_wire_scan(const void *buf, size_t len, fm_error *err);

/* Little-endian float32 conversion (no-ops on little-endian hosts). */
void fmi_f32_to_le(float *x, size_t n);
void fmi_f32_from_le(float *x, size_t n);

/* What a decoded msgpack value is, for error messages ("an integer",
 * "a map", ...): the wire's and the edge protocol's decoders say it. */
struct msgpack_object;
const char *fmi_wire_obj_name(const struct msgpack_object *o);

#endif /* FMI_WIRE_H */
