/* SPDX-License-Identifier: MIT */
/*
 * transport.h: message transport over ZeroMQ (inproc://, ipc://, tcp://).
 *
 * A server endpoint is a ROUTER socket that binds; a client endpoint is a
 * DEALER socket with a routing identity that connects. A message is a
 * msgpack header frame (see wire.h) plus at most one payload frame.
 * Payloads are reference-counted buffers handed to ZeroMQ without copying
 * (zmq_msg_init_data), so one global model goes to many clients as one
 * buffer over inproc://. Every received header is decoded and validated
 * before the caller sees it; malformed messages are drained, counted,
 * logged with the reason and reported as FM_EPROTO, and the socket keeps
 * working.
 */
#ifndef FMI_TRANSPORT_H
#define FMI_TRANSPORT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "fedmesh/fedmesh.h"
#include "wire/wire.h"

#define FMI_PEER_MAX 64

/* A refcounted, 64-byte aligned buffer. */
typedef struct fmi_payload {
	atomic_int refs;
	size_t len;
	void *data;
} fmi_payload;

fmi_payload *fmi_payload_new(size_t len); /* refs = 1; NULL on ENOMEM */
fmi_payload *fmi_payload_ref(fmi_payload *p);
void fmi_payload_unref(fmi_payload *p); /* NULL ok */

typedef struct fmi_tran fmi_tran;

/* Byte counters (frames as handed to/from ZeroMQ: header + payload). */
typedef struct fmi_tran_stats {
	uint64_t bytes_sent, bytes_received;
	uint64_t msgs_sent, msgs_received, msgs_dropped;
} fmi_tran_stats;

int fmi_tran_listen(fmi_tran **out, void *zctx, const char *url,
    fm_error *err);
int fmi_tran_dial(fmi_tran **out, void *zctx, const char *url,
    const char *identity, fm_error *err);
void fmi_tran_close(fmi_tran *t); /* NULL ok */

/*
 * Sends header m plus optional payload p (a reference is taken: the caller
 * keeps its own). peer names the destination identity on a server (ROUTER)
 * endpoint and must be NULL on a client. Returns FM_OK or a transport
 * error; FM_ENOENT when a ROUTER peer is unknown.
 */
int fmi_tran_send(fmi_tran *t, const char *peer, const fmi_msg *m,
    fmi_payload *p);
/* As fmi_tran_send with a payload copied from bytes (for small ones). */
int fmi_tran_send_bytes(fmi_tran *t, const char *peer, const fmi_msg *m,
    const void *data, size_t len);

/* A received message; release with fmi_rmsg_close. */
typedef struct fmi_rmsg {
	char peer[FMI_PEER_MAX + 1]; /* sender identity (ROUTER side) */
	fmi_msg m;
	zmq_msg_t payload;
	int has_payload;
} fmi_rmsg;

/*
 * Waits up to timeout_ms (-1: forever, 0: poll) for one message.
 * FM_OK: *out holds it. FM_ETIMEDOUT: nothing came. FM_EPROTO/FM_EVERSION:
 * a malformed message was received, logged with its reason ("FM-WIRE")
 * and dropped (out is empty); call again.
 */
int fmi_tran_recv(fmi_tran *t, fmi_rmsg *out, int timeout_ms, fm_error *err);
const void *fmi_rmsg_data(fmi_rmsg *r);
size_t fmi_rmsg_len(fmi_rmsg *r);
void fmi_rmsg_close(fmi_rmsg *r);

void fmi_tran_get_stats(const fmi_tran *t, fmi_tran_stats *s);
void *fmi_tran_socket(fmi_tran *t); /* for zmq_poll */

#endif /* FMI_TRANSPORT_H */
