/* SPDX-License-Identifier: MIT */
/*
 * transport.h: the message transport every node talks through.
 *
 * This is the interface; transports/zmq/ is its implementation (ZeroMQ:
 * inproc://, ipc://, tcp://, CURVE). Nothing here names ZeroMQ: the
 * engine (node/, lua/, cli/) includes this header and
 * transports/security.h only, and reaches the implementation through an
 * ops table (fmi_tran_ops) chosen when a context is made. Another
 * transport (a test double, MPI, QUIC) is one more ops table.
 *
 * A context (fmi_tran_ctx) owns what endpoints share: the ZeroMQ context,
 * the authenticator (fmi_tran_allow). A listening endpoint is a server: it
 * receives from many named peers and sends to one by name. A dialing
 * endpoint is a client with a routing identity (its node name). A message
 * is a msgpack header (see wire.h) plus at most one payload. Payloads are
 * reference-counted buffers handed to the transport without copying, so
 * one global model goes to many clients as one buffer in process. Every
 * received header is decoded and validated before the caller sees it;
 * malformed messages are drained, counted, logged with the reason and
 * reported as FM_EPROTO, and the endpoint keeps working.
 *
 * The ZeroMQ implementation runs heartbeats, a handshake deadline and TCP
 * keepalive on every link; see transports/zmq/zmq_transport.c for the
 * numbers. There is no frame size limit unless listen sets one (models
 * are large); a header over FMI_WIRE_MAX_HEADER is refused by the decoder.
 *
 * The fmi_tran_* functions below dispatch to the ops of the endpoint's
 * context: callers never touch the table.
 */
#ifndef FMI_TRANSPORT_H
#define FMI_TRANSPORT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"
#include "transports/security.h"
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

typedef struct fmi_tran_ctx fmi_tran_ctx; /* shared by endpoints */
typedef struct fmi_tran fmi_tran;         /* one endpoint */
typedef struct fmi_rbuf fmi_rbuf;         /* a received payload (opaque) */

/* Byte counters (header + payload as handed to/from the transport). */
typedef struct fmi_tran_stats {
	uint64_t bytes_sent, bytes_received;
	uint64_t msgs_sent, msgs_received, msgs_dropped;
} fmi_tran_stats;

/* A received message; release with fmi_rmsg_close. The payload is read
 * through fmi_rmsg_data/len. A copy of the struct that takes over the
 * payload clears has_payload in the original (which then releases
 * nothing). */
typedef struct fmi_rmsg {
	char peer[FMI_PEER_MAX + 1]; /* sender identity (listening side) */
	fmi_msg m;
	fmi_rbuf *payload; /* opaque; valid while has_payload */
	int has_payload;
} fmi_rmsg;

/* Options of a listening endpoint; zero = plain, no limit, no handover. */
typedef struct fmi_tran_listen_opts {
	/* CURVE (tcp:// or ipc://): sec->self is the key pair; the context
	 * needs an authenticator (fmi_tran_allow) or listen refuses with
	 * FM_ESTATE. A message's sender (fmi_rmsg.peer) is then the node
	 * name its key is listed under, never what the client claims; a
	 * message whose claimed identity is another name is dropped
	 * (FM_ECRYPTO, logged "FM-AUTH", once a minute per impostor). A
	 * send to a name goes to the connection that name's latest message
	 * came from, and FM_ENOENT before it spoke (see zmq_transport.c). */
	const fmi_tran_security *sec;
	/* Limit on the frames peers may send (0: none). Without one, a
	 * ZeroMQ peer holding no key can make the server buffer what it
	 * sends in the 5 s CURVE handshake window (measured: 1.4 GB per
	 * connection on loopback). Pass the model's bytes +
	 * FMI_WIRE_MAX_HEADER; a larger frame closes its connection (and
	 * the sender's message is lost). */
	size_t max_frame;
	/* A new connection under a routing id already connected takes it
	 * over (a reconnecting node gets its messages); otherwise it is
	 * ignored while the old one lives. Without CURVE the routing id is
	 * the node name, unauthenticated: whoever dials under a name takes
	 * it. With CURVE it carries a secret per-connection nonce, so only
	 * the same client's reconnection can take a connection over. */
	int handover;
} fmi_tran_listen_opts;

/* Options of a dialing endpoint; zero = plain, reliable. */
typedef struct fmi_tran_dial_opts {
	/* CURVE: sec->self and sec->server_public; needs an identity (the
	 * node name; the routing id sent is "NAME/NONCE", 128 random bits
	 * per endpoint, see zmq_transport.c). */
	const fmi_tran_security *sec;
	/* 0: reliable (queues while the peer is away). > 0: a send queue of
	 * at most `queue` messages, nothing while the peer is not
	 * connected, and never blocking: a send to an unreachable peer or
	 * into a full queue fails at once with FM_EBUSY (nothing was sent;
	 * try again later). For peer-to-peer links, where a dead neighbour
	 * must not stall a peer, fill its memory, or receive stale rounds
	 * when it comes back. < 0: holds up to -queue messages while the
	 * peer is not connected yet (for reports that may wait). */
	int queue;
} fmi_tran_dial_opts;

/* A transport implementation. Every field is required. */
typedef struct fmi_tran_ops {
	const char *name; /* "zmq" */
	int (*ctx_new)(fmi_tran_ctx **out, fm_error *err);
	/* Stops the authenticator; every endpoint must be closed first. */
	void (*ctx_free)(fmi_tran_ctx *c);
	/* Starts the context's authenticator: CURVE clients whose public
	 * key is keys[i] are accepted as names[i]; any other key is refused
	 * and logged ("FM-AUTH"). Once per context. */
	int (*allow)(fmi_tran_ctx *c, const char *const *keys,
	    const char *const *names, size_t n, fm_error *err);
	int (*listen)(fmi_tran **out, fmi_tran_ctx *c, const char *url,
	    const fmi_tran_listen_opts *o, fm_error *err);
	int (*dial)(fmi_tran **out, fmi_tran_ctx *c, const char *url,
	    const char *identity, const fmi_tran_dial_opts *o, fm_error *err);
	int (*send)(fmi_tran *t, const char *peer, const fmi_msg *m,
	    fmi_payload *p);
	int (*send_bytes)(fmi_tran *t, const char *peer, const fmi_msg *m,
	    const void *data, size_t len);
	int (*recv)(fmi_tran *t, fmi_rmsg *out, int timeout_ms, fm_error *err);
	int (*endpoint)(fmi_tran *t, char *buf, size_t n);
	void (*stats)(const fmi_tran *t, fmi_tran_stats *s);
	void (*close)(fmi_tran *t);
	/* Releases a payload that recv handed out. */
	void (*rbuf_free)(fmi_rbuf *b);
} fmi_tran_ops;

/* ZeroMQ (transports/zmq/), the default. */
extern const fmi_tran_ops fmi_tran_zmq_ops;

/* ---- contexts -------------------------------------------------------- */
/* A context of transport ops (NULL: the default, ZeroMQ). */
int fmi_tran_ctx_new(fmi_tran_ctx **out, const fmi_tran_ops *ops,
    fm_error *err);
void fmi_tran_ctx_free(fmi_tran_ctx *c); /* NULL ok; endpoints closed first */
/* See fmi_tran_ops.allow: start it before listening with CURVE. */
int fmi_tran_allow(fmi_tran_ctx *c, const char *const *keys,
    const char *const *names, size_t n, fm_error *err);

/* ---- endpoints ------------------------------------------------------- */
/* o NULL: all options zero. */
int fmi_tran_listen_with(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const fmi_tran_listen_opts *o, fm_error *err);
int fmi_tran_dial_with(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const char *identity, const fmi_tran_dial_opts *o, fm_error *err);
/* Shorthands of the two above. */
int fmi_tran_listen(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    fm_error *err);
int fmi_tran_listen_secure(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const fmi_tran_security *sec, fm_error *err);
int fmi_tran_listen_limited(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const fmi_tran_security *sec, size_t max_frame, fm_error *err);
int fmi_tran_dial(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const char *identity, fm_error *err);
int fmi_tran_dial_secure(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const char *identity, const fmi_tran_security *sec, fm_error *err);
int fmi_tran_dial_lossy(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const char *identity, const fmi_tran_security *sec, int queue,
    fm_error *err);
void fmi_tran_close(fmi_tran *t); /* NULL ok */

/* The endpoint a server is bound to (e.g. tcp://127.0.0.1:41234 after
 * listening on tcp://127.0.0.1:*). FM_ERANGE if buf is too small. */
int fmi_tran_endpoint(fmi_tran *t, char *buf, size_t n);

/*
 * Sends header m plus optional payload p (a reference is taken: the caller
 * keeps its own). peer names the destination identity on a listening
 * endpoint and must be NULL on a dialing one. Returns FM_OK or a
 * transport error; FM_ENOENT when a listening side's peer is unknown.
 */
int fmi_tran_send(fmi_tran *t, const char *peer, const fmi_msg *m,
    fmi_payload *p);
/* As fmi_tran_send with a payload copied from bytes (for small ones). */
int fmi_tran_send_bytes(fmi_tran *t, const char *peer, const fmi_msg *m,
    const void *data, size_t len);

/*
 * Waits up to timeout_ms (-1: forever, 0: poll) for one message.
 * FM_OK: *out holds it. FM_ETIMEDOUT: nothing came. FM_EPROTO/FM_EVERSION:
 * a malformed message was received, logged with its reason ("FM-WIRE")
 * and dropped (out is empty); call again.
 */
int fmi_tran_recv(fmi_tran *t, fmi_rmsg *out, int timeout_ms, fm_error *err);
const void *fmi_rmsg_data(fmi_rmsg *r); /* NULL without a payload */
size_t fmi_rmsg_len(fmi_rmsg *r);
void fmi_rmsg_close(fmi_rmsg *r); /* releases the payload */

void fmi_tran_get_stats(const fmi_tran *t, fmi_tran_stats *s);

#endif /* FMI_TRANSPORT_H */
