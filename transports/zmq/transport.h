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
 *
 * Every socket runs ZMTP heartbeats (PING each 1 s; a connection that
 * completes no frame within 5 s of a PING is dropped, and peers drop one
 * silent for 10 s), a 5 s handshake deadline and, on tcp://, TCP
 * keepalive. libzmq counts only complete frames as traffic: a single
 * frame that takes over 5 s to cross the link (an 80 MB model below
 * ~130 Mbit/s) gets its connection dropped mid-transfer.
 *
 * There is no frame size limit unless fmi_tran_listen_limited sets one
 * (models are large); a header frame over FMI_WIRE_MAX_HEADER is
 * refused by the decoder, but only after ZeroMQ received (and allocated)
 * all of it.
 */
#ifndef FMI_TRANSPORT_H
#define FMI_TRANSPORT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "fedmesh/fedmesh.h"
#include "transports/zmq/security.h"
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

/* Plain endpoints (no CURVE): inproc://, ipc:// and trusted networks. */
int fmi_tran_listen(fmi_tran **out, void *zctx, const char *url,
    fm_error *err);
int fmi_tran_dial(fmi_tran **out, void *zctx, const char *url,
    const char *identity, fm_error *err);

/*
 * CURVE endpoints (tcp:// or ipc://; sec NULL = plain, as above). A server
 * uses sec->self as its key pair and needs a ZAP handler (fmi_zap_start)
 * running on zctx, or it refuses with FM_ESTATE; it accepts a message
 * only when the client's routing identity equals the node name its key
 * is listed under (FM_ECRYPTO, logged "FM-AUTH", otherwise). A client
 * uses sec->self and sec->server_public.
 */
int fmi_tran_listen_secure(fmi_tran **out, void *zctx, const char *url,
    const fmi_tran_security *sec, fm_error *err);
int fmi_tran_dial_secure(fmi_tran **out, void *zctx, const char *url,
    const char *identity, const fmi_tran_security *sec, fm_error *err);
/*
 * As fmi_tran_listen_secure, with a limit on the frames peers may send
 * (0: none). libzmq allocates a frame at the size its sender announces,
 * before the CURVE handshake is over: without a limit, a peer holding no
 * key can make the server buffer what it sends in the 5 s handshake
 * window (measured: 1.4 GB per connection on loopback). Pass the model's
 * bytes + FMI_WIRE_MAX_HEADER; a larger frame closes its connection (and
 * the sender's message is lost).
 */
int fmi_tran_listen_limited(fmi_tran **out, void *zctx, const char *url,
    const fmi_tran_security *sec, size_t max_frame, fm_error *err);
/*
 * A client whose send queue holds at most `queue` messages, nothing while
 * the peer is not connected, and never blocks: a send to an unreachable
 * peer or into a full queue fails at once with FM_EBUSY (nothing was
 * sent; try again later). For peer-to-peer links, where a dead neighbour
 * must not stall a peer, fill its memory, or receive stale rounds when it
 * comes back. A negative queue holds up to -queue messages while the peer
 * is not connected yet (for reports that may wait).
 */
int fmi_tran_dial_lossy(fmi_tran **out, void *zctx, const char *url,
    const char *identity, const fmi_tran_security *sec, int queue,
    fm_error *err);
void fmi_tran_close(fmi_tran *t); /* NULL ok */

/* The endpoint a server is bound to (e.g. tcp://127.0.0.1:41234 after
 * listening on tcp://127.0.0.1:*). FM_ERANGE if buf is too small. */
int fmi_tran_endpoint(fmi_tran *t, char *buf, size_t n);

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
