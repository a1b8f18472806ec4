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
	FMI_MSG_MAX = 11
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

/* Little-endian float32 conversion (no-ops on little-endian hosts). */
void fmi_f32_to_le(float *x, size_t n);
void fmi_f32_from_le(float *x, size_t n);

#endif /* FMI_WIRE_H */
