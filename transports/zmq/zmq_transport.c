/* SPDX-License-Identifier: MIT */
/*
 * zmq_transport.c: the ZeroMQ implementation of transport.h.
 *
 * A listening endpoint is a ROUTER socket that binds; a dialing one is a
 * DEALER with a routing identity that connects. A payload is handed to
 * ZeroMQ without copying (zmq_msg_init_data); a received one stays in its
 * zmq_msg_t (zmq_rbuf) until released.
 *
 * Every socket runs ZMTP heartbeats, a 5 s handshake deadline and, on
 * tcp://, TCP keepalive (set_common). libzmq counts only complete frames
 * as traffic: a single frame that takes longer than the heartbeat
 * timeout to cross the link gets its connection dropped mid-transfer.
 * A header frame over FMI_WIRE_MAX_HEADER is refused by the decoder, but
 * only after ZeroMQ received (and allocated) all of it.
 *
 * Identities with CURVE. A ROUTER routes by the routing id each peer
 * chooses itself, so the routing id proves nothing: with handover, a
 * listed node that dialled under another's name would take that node's
 * pipe and receive what the server sends it. A CURVE server therefore
 * never takes a peer's word for who it is:
 *   - a message's sender (fmi_rmsg.peer) is the node name the ZAP handler
 *     gave the connection's key (its User-Id), never the routing id;
 *   - the routing id a CURVE dialer sends is "NAME/NONCE": its own name
 *     (the claim, checked: a message whose claim is not its User-Id is
 *     dropped and logged, FM-AUTH) and 128 random bits drawn per socket,
 *     which travel only inside the encrypted handshake, so no other node
 *     can present them;
 *   - the server keeps name -> routing id (routes), learnt from messages
 *     that authenticated as that name, and a send to a name goes to the
 *     connection its latest such message came from. A restarted node
 *     dials with a fresh nonce: its first message (HELLO) moves its name
 *     to the new connection. Handover now only lets a dialer's own
 *     reconnection (same nonce) replace its stale pipe at once.
 * An impostor can thus only ever speak, and be spoken to, as itself.
 * Without CURVE (inproc://, ipc:// or tcp:// with no keys) nothing is
 * authenticated: the routing id is the name, as before.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include <zmq.h>

#include "transports/transport_impl.h"
#include "transports/zmq/security.h"
#include "transports/zmq/zmq_transport.h"

typedef struct zmq_ctx {
	fmi_tran_ctx base;
	void *zctx;
	fmi_zap *zap; /* fmi_tran_allow's, or NULL */
	int borrowed; /* zctx is the caller's (fmi_tran_zmq_wrap) */
} zmq_ctx;

#define RID_MAX 255 /* ZMTP's limit on a routing id */
#define NONCE_BYTES 16 /* of a CURVE dialer's routing id */

/* Where a CURVE server reaches node `name`: the routing id of the
 * connection its latest authenticated message came from. */
typedef struct zmq_route {
	char name[FMI_PEER_MAX + 1];
	uint8_t rid[RID_MAX];
	size_t len;
} zmq_route;

/* Impostor drops logged lately (one line a minute per sender and claim:
 * a client host heartbeats every second). */
#define IMPOSTOR_RECENT 8
#define IMPOSTOR_QUIET_S 60.0
typedef struct zmq_impostor {
	char user[FMI_PEER_MAX + 1], claim[FMI_PEER_MAX + 1];
	double last;
	unsigned long repeats;
} zmq_impostor;

typedef struct zmq_tran {
	fmi_tran base;
	void *sock;
	int is_server, secure;
	char url[256];
	fmi_tran_stats stats;
	/* CURVE server: the routing id of the message being received, and
	 * the routes learnt (a linear list: a deployment has at most a few
	 * thousand names, each allowed by the ZAP handler) */
	uint8_t rid[RID_MAX];
	size_t rid_len;
	zmq_route *routes;
	size_t nroutes, cap;
	char claim[FMI_PEER_MAX + 1]; /* of the last refused message */
	zmq_impostor impostors[IMPOSTOR_RECENT];
} zmq_tran;

typedef struct zmq_rbuf {
	fmi_rbuf base;
	zmq_msg_t msg;
} zmq_rbuf;

static int
zerr(void)
{
	return FM_ETRANERR | zmq_errno();
}

static int
url_is(const char *url, const char *scheme)
{
	return strncmp(url, scheme, strlen(scheme)) == 0;
}

/* Options for every socket: queues, linger, liveness, identity. */
static int
set_common(zmq_tran *t, const char *identity)
{
	static const struct {
		int opt, val;
	} opts[] = {
		{ ZMQ_SNDHWM, 100000 }, { ZMQ_RCVHWM, 100000 },
		/* libzmq counts only whole frames as traffic, so the timeout
		 * must exceed the time one model frame takes on the slowest
		 * link (80 MB at 10 Mbit/s: 64 s); silent hosts are caught
		 * sooner by the server's own heartbeat check (FM-SILENT). */
		{ ZMQ_LINGER, 500 }, { ZMQ_HEARTBEAT_IVL, 5000 },
		{ ZMQ_HEARTBEAT_TIMEOUT, 120000 }, { ZMQ_HEARTBEAT_TTL, 120000 },
		{ ZMQ_HANDSHAKE_IVL, 5000 },
	};
	int rc = 0, one = 1;
	for (size_t i = 0; i < FMI_ARRAY_LEN(opts) && rc == 0; i++) {
		rc = zmq_setsockopt(t->sock, opts[i].opt, &opts[i].val,
		    sizeof opts[i].val);
	}
	if (rc == 0 && url_is(t->url, "tcp://")) {
		rc = zmq_setsockopt(t->sock, ZMQ_TCP_KEEPALIVE, &one, sizeof one);
	}
	if (rc == 0 && t->is_server) {
		rc = zmq_setsockopt(t->sock, ZMQ_ROUTER_MANDATORY, &one,
		    sizeof one);
	} else if (rc == 0 && identity != NULL) {
		rc = zmq_setsockopt(t->sock, ZMQ_ROUTING_ID, identity,
		    strlen(identity));
	}
	return rc;
}

/* Key options; the keys were validated by check_secure (40 chars + NUL,
 * which is how libzmq takes Z85 keys). */
static int
set_curve(zmq_tran *t, const fmi_tran_security *sec)
{
	const size_t zl = FMI_Z85_KEY_LEN + 1;
	const fmi_keypair *kp = sec->self;
	int one = 1;
	if (t->is_server) {
		return zmq_setsockopt(t->sock, ZMQ_CURVE_SERVER, &one,
			   sizeof one) ||
		    zmq_setsockopt(t->sock, ZMQ_CURVE_SECRETKEY, kp->secret_z85,
			zl) ||
		    zmq_setsockopt(t->sock, ZMQ_ZAP_DOMAIN, "fedmesh", 7);
	}
	return zmq_setsockopt(t->sock, ZMQ_CURVE_SERVERKEY, sec->server_public,
		   zl) ||
	    zmq_setsockopt(t->sock, ZMQ_CURVE_PUBLICKEY, kp->public_z85, zl) ||
	    zmq_setsockopt(t->sock, ZMQ_CURVE_SECRETKEY, kp->secret_z85, zl);
}

static int
check_key(const char *z85, const char *what, fm_error *err)
{
	uint8_t raw[FMI_KEY_BYTES];
	int rv = fmi_z85_key_decode(raw, z85, err);
	sodium_memzero(raw, sizeof raw);
	if (rv != FM_OK) {
		char why[sizeof err->msg];
		fmi_strlcpy(why, err->msg, sizeof why);
		return fm_error_set(err, rv, "%s: %s", what, why);
	}
	return FM_OK;
}

static int
check_keys(const fmi_tran_security *sec, int server, fm_error *err)
{
	if (sec->self == NULL) {
		return fm_error_set(err, FM_EINVAL, "CURVE needs this node's key "
		    "pair; load its .key file (fmi_key_read_secret)");
	}
	int rv = check_key(sec->self->public_z85, "own public key", err);
	if (rv == FM_OK) {
		rv = check_key(sec->self->secret_z85, "own secret key", err);
	}
	if (rv == FM_OK && !server) {
		rv = check_key(sec->server_public, "server public key", err);
	}
	return rv;
}

static int
check_secure(void *zctx, const char *url, const fmi_tran_security *sec,
    int server, fm_error *err)
{
	if (!zmq_has("curve")) {
		return fm_error_set(err, FM_ENOTSUP, "this libzmq has no CURVE "
		    "support; install a libzmq built with libsodium");
	}
	if (!url_is(url, "tcp://") && !url_is(url, "ipc://")) {
		return fm_error_set(err, FM_EINVAL, "CURVE secures tcp:// and "
		    "ipc:// endpoints, not %s; use the plain transport in "
		    "process", url);
	}
	if (server && !fmi_zap_running(zctx)) {
		return fm_error_set(err, FM_ESTATE, "cannot listen on %s with "
		    "CURVE: no ZAP handler runs on this ZeroMQ context, and "
		    "without one libzmq accepts every client key; call "
		    "fmi_zap_start with the deployment's keys first", url);
	}
	return check_keys(sec, server, err);
}

/* Frames above max_frame bytes close the connection. */
static int
set_max_frame(zmq_tran *t, size_t max_frame)
{
	/* a CURVE MESSAGE command is the frame + 33 bytes */
	int64_t max = (int64_t)FMI_MIN(max_frame, (size_t)INT64_MAX - 64) + 64;
	return zmq_setsockopt(t->sock, ZMQ_MAXMSGSIZE, &max, sizeof max);
}

/* A send queue of at most queue messages that never blocks and holds
 * nothing while the peer is not connected (ZMQ_IMMEDIATE): set before
 * zmq_connect, so it applies to the pipe the connection creates. */
static int
set_lossy(zmq_tran *t, int queue)
{
	int zero = 0, immediate = queue > 0, hwm = queue > 0 ? queue : -queue;
	/* A link that silently loses every packet (cable cut, partition)
	 * would otherwise stall in TCP's retransmission backoff for long
	 * after it heals: give up on a connection whose data goes
	 * unacknowledged for 5 s, and retry connecting every ~2 s. A slow
	 * link that still acknowledges is not affected. */
	int maxrt = 5000, cto = 2000;
	int rc = zmq_setsockopt(t->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
	    zmq_setsockopt(t->sock, ZMQ_SNDTIMEO, &zero, sizeof zero) ||
	    zmq_setsockopt(t->sock, ZMQ_IMMEDIATE, &immediate,
		sizeof immediate);
	if (rc == 0 && url_is(t->url, "tcp://")) {
		rc = zmq_setsockopt(t->sock, ZMQ_TCP_MAXRT, &maxrt,
			 sizeof maxrt) ||
		    zmq_setsockopt(t->sock, ZMQ_CONNECT_TIMEOUT, &cto,
			sizeof cto);
	}
	return rc;
}

static void z_close(fmi_tran *bt);

/* A CURVE dialer's routing id: "NAME/" and NONCE_BYTES random bytes in
 * hex (see the top of this file). */
static int
secure_identity(char *buf, size_t n, const char *name, fm_error *err)
{
	uint8_t nonce[NONCE_BYTES];
	if (sodium_init() < 0) {
		return fm_error_set(err, FM_ECRYPTO, "libsodium failed to "
		    "initialise; no random connection nonce");
	}
	randombytes_buf(nonce, sizeof nonce);
	size_t len = (size_t)snprintf(buf, n, "%s/", name);
	for (size_t i = 0; i < sizeof nonce && len + 2 < n; i++) {
		len += (size_t)snprintf(buf + len, n - len, "%02x", nonce[i]);
	}
	sodium_memzero(nonce, sizeof nonce);
	return FM_OK;
}

/* Opens a ROUTER (listen) or DEALER (dial) socket with the options. */
static int
tran_open(fmi_tran **out, zmq_ctx *c, int type, const char *url,
    const char *identity, const fmi_tran_security *sec, size_t max_frame,
    int queue, int handover, fm_error *err)
{
	int server = type == ZMQ_ROUTER, one = 1;
	char rid[FMI_PEER_MAX + 2 + 2 * NONCE_BYTES];
	int rv = sec != NULL ? check_secure(c->zctx, url, sec, server, err) :
	                       FM_OK;
	if (rv == FM_OK && sec != NULL && !server) {
		rv = secure_identity(rid, sizeof rid, identity, err);
		identity = rid;
	}
	if (rv != FM_OK) {
		return rv;
	}
	zmq_tran *t = calloc(1, sizeof *t);
	if (t == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	t->base.ops = &fmi_tran_zmq_ops;
	t->is_server = server;
	t->secure = sec != NULL;
	fmi_strlcpy(t->url, url, sizeof t->url);
	t->sock = zmq_socket(c->zctx, type);
	int rc = t->sock == NULL ? -1 : set_common(t, identity);
	if (rc == 0 && max_frame > 0) {
		rc = set_max_frame(t, max_frame);
	}
	if (rc == 0 && queue != 0) {
		rc = set_lossy(t, queue);
	}
	if (rc == 0 && handover) {
		rc = zmq_setsockopt(t->sock, ZMQ_ROUTER_HANDOVER, &one,
		    sizeof one);
	}
	if (rc == 0 && sec != NULL) {
		rc = set_curve(t, sec);
	}
	if (rc == 0) {
		rc = server ? zmq_bind(t->sock, url) : zmq_connect(t->sock, url);
	}
	if (rc != 0) {
		int zerrno = zmq_errno(), e = zerr();
		fm_error_set(err, e, "cannot %s %s: %s%s",
		    server ? "listen on" : "connect to", url,
		    zmq_strerror(zerrno),
		    zerrno == EADDRINUSE ? " (another process holds this "
		    "port: stop it, or choose another port)" : "");
		z_close(&t->base);
		return e;
	}
	*out = &t->base;
	return FM_OK;
}

static int
z_listen(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const fmi_tran_listen_opts *o, fm_error *err)
{
	return tran_open(out, (zmq_ctx *)c, ZMQ_ROUTER, url, NULL, o->sec,
	    o->max_frame, 0, o->handover, err);
}

static int
z_dial(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const char *identity, const fmi_tran_dial_opts *o, fm_error *err)
{
	if (identity != NULL &&
	    (identity[0] == '\0' || strlen(identity) > FMI_PEER_MAX)) {
		return fm_error_set(err, FM_EINVAL,
		    "node identity must be 1..%d characters", FMI_PEER_MAX);
	}
	if (o->sec != NULL && identity == NULL) {
		return fm_error_set(err, FM_EINVAL, "a CURVE client dials with "
		    "its node name as identity (the server checks it against "
		    "the name its key is listed under)");
	}
	return tran_open(out, (zmq_ctx *)c, ZMQ_DEALER, url, identity, o->sec,
	    0, o->queue, 0, err);
}

static int
z_endpoint(fmi_tran *bt, char *buf, size_t n)
{
	zmq_tran *t = (zmq_tran *)bt;
	size_t sz = n;
	if (zmq_getsockopt(t->sock, ZMQ_LAST_ENDPOINT, buf, &sz) != 0) {
		return zmq_errno() == EINVAL ? FM_ERANGE : zerr();
	}
	return FM_OK;
}

static void
z_close(fmi_tran *bt)
{
	zmq_tran *t = (zmq_tran *)bt;
	if (t->sock != NULL) {
		zmq_close(t->sock);
	}
	free(t->routes);
	free(t);
}

/* ---- routes of a CURVE server ----------------------------------------- */

static zmq_route *
route_find(zmq_tran *t, const char *name)
{
	for (size_t i = 0; i < t->nroutes; i++) {
		if (strcmp(t->routes[i].name, name) == 0) {
			return &t->routes[i];
		}
	}
	return NULL;
}

/* name's messages now come from the connection of t->rid. */
static void
route_learn(zmq_tran *t, const char *name)
{
	zmq_route *r = route_find(t, name);
	if (r != NULL && r->len == t->rid_len &&
	    memcmp(r->rid, t->rid, r->len) == 0) {
		return;
	}
	if (r == NULL && t->nroutes == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		zmq_route *g = realloc(t->routes, cap * sizeof *g);
		if (g == NULL) {
			fm_log(FM_LOG_WARN, "FM-AUTH", "%s: out of memory for "
			    "the route to %s; it cannot be sent to", t->url,
			    name);
			return;
		}
		t->routes = g;
		t->cap = cap;
	}
	if (r == NULL) {
		r = &t->routes[t->nroutes++];
		fmi_strlcpy(r->name, name, sizeof r->name);
	} else {
		fm_log(FM_LOG_INFO, "FM-AUTH", "%s: %s is on a new connection "
		    "(reconnected or restarted); messages to it go there",
		    t->url, name);
	}
	memcpy(r->rid, t->rid, t->rid_len);
	r->len = t->rid_len;
}

static void
payload_free(void *data, void *hint)
{
	(void)data;
	fmi_payload_unref(hint);
}

static int
send_frame(zmq_tran *t, const void *data, size_t len, int more)
{
	if (zmq_send(t->sock, data, len, more ? ZMQ_SNDMORE : 0) < 0) {
		if (errno == EAGAIN) {
			return FM_EBUSY; /* a lossy queue is full */
		}
		return errno == EHOSTUNREACH ? FM_ENOENT : zerr();
	}
	t->stats.bytes_sent += len;
	return FM_OK;
}

static int
send_head(zmq_tran *t, const char *peer, const fmi_msg *m, int more)
{
	uint8_t hdr[FMI_WIRE_MAX_HEADER];
	size_t hlen;
	int rv = fmi_msg_encode(m, hdr, sizeof hdr, &hlen);

	if (rv == FM_OK && t->is_server) {
		if (peer == NULL) {
			return FM_EINVAL;
		}
		/* The routing frame addresses the peer; ROUTER consumes it
		 * and it does not travel as data. With CURVE, the peer is a
		 * node name and goes to the connection it last spoke on. */
		const void *rid = peer;
		size_t len = strlen(peer);
		if (t->secure) {
			const zmq_route *r = route_find(t, peer);
			if (r == NULL) {
				return FM_ENOENT; /* it has not spoken yet */
			}
			rid = r->rid;
			len = r->len;
		}
		if (zmq_send(t->sock, rid, len, ZMQ_SNDMORE) < 0) {
			return errno == EHOSTUNREACH ? FM_ENOENT : zerr();
		}
	}
	if (rv == FM_OK) {
		rv = send_frame(t, hdr, hlen, more);
	}
	return rv;
}

static int
z_send(fmi_tran *bt, const char *peer, const fmi_msg *m, fmi_payload *p)
{
	zmq_tran *t = (zmq_tran *)bt;
	int rv = send_head(t, peer, m, p != NULL);
	if (rv != FM_OK || p == NULL) {
		t->stats.msgs_sent += rv == FM_OK;
		return rv;
	}
	zmq_msg_t msg;
	fmi_payload_ref(p);
	if (zmq_msg_init_data(&msg, p->data, p->len, payload_free, p) != 0) {
		fmi_payload_unref(p);
		return zerr();
	}
	if (zmq_msg_send(&msg, t->sock, 0) < 0) {
		zmq_msg_close(&msg); /* drops our reference */
		return zerr();
	}
	t->stats.bytes_sent += p->len;
	t->stats.msgs_sent++;
	return FM_OK;
}

static int
z_send_bytes(fmi_tran *bt, const char *peer, const fmi_msg *m,
    const void *data, size_t len)
{
	zmq_tran *t = (zmq_tran *)bt;
	int rv = send_head(t, peer, m, 1);
	if (rv == FM_OK) {
		rv = send_frame(t, data, len, 0);
	}
	t->stats.msgs_sent += rv == FM_OK;
	return rv;
}

static int
more_frames(void *sock)
{
	int more = 0;
	size_t sz = sizeof more;
	zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
	return more;
}

/* Reads and discards the rest of a multipart message. */
static void
drain(zmq_tran *t)
{
	while (more_frames(t->sock)) {
		zmq_msg_t f;
		zmq_msg_init(&f);
		if (zmq_msg_recv(&f, t->sock, 0) >= 0) {
			t->stats.bytes_received += zmq_msg_size(&f);
		}
		zmq_msg_close(&f);
	}
}

static int
recv_frame(zmq_tran *t, zmq_msg_t *f)
{
	zmq_msg_init(f);
	if (zmq_msg_recv(f, t->sock, 0) < 0) {
		zmq_msg_close(f);
		return zerr();
	}
	return FM_OK;
}

static int
wait_readable(zmq_tran *t, int timeout_ms)
{
	zmq_pollitem_t it = { t->sock, 0, ZMQ_POLLIN, 0 };
	int n = zmq_poll(&it, 1, timeout_ms);
	if (n < 0) {
		return zmq_errno() == EINTR ? FM_ETIMEDOUT : zerr();
	}
	return n == 0 ? FM_ETIMEDOUT : FM_OK;
}

static int
recv_peer(zmq_tran *t, fmi_rmsg *out, fm_error *err)
{
	zmq_msg_t f;
	int rv = recv_frame(t, &f);
	if (rv != FM_OK) {
		return rv;
	}
	size_t n = zmq_msg_size(&f);
	size_t max = t->secure ? RID_MAX : FMI_PEER_MAX;
	if (n == 0 || n > max || !more_frames(t->sock)) {
		zmq_msg_close(&f);
		return fm_error_set(err, FM_EPROTO,
		    "bad routing identity (%zu bytes) or empty message", n);
	}
	if (t->secure) { /* the sender is its key's name (check_user) */
		memcpy(t->rid, zmq_msg_data(&f), n);
		t->rid_len = n;
	} else {
		memcpy(out->peer, zmq_msg_data(&f), n);
		out->peer[n] = '\0';
	}
	zmq_msg_close(&f);
	return FM_OK;
}

/* On a CURVE server: the sender is the node name the ZAP handler gave
 * the connection's key (User-Id). The name the routing id claims (up to
 * its '/') must be that name, so a listed node cannot speak as another
 * one; a message that passes teaches the route to its sender. */
static int
check_user(zmq_tran *t, zmq_msg_t *h, fmi_rmsg *out, fm_error *err)
{
	const char *user = zmq_msg_gets(h, "User-Id");
	if (user == NULL || user[0] == '\0' || strlen(user) > FMI_PEER_MAX) {
		return fm_error_set(err, FM_ECRYPTO, "the connection has no "
		    "node name (no ZAP User-Id)");
	}
	fmi_strlcpy(out->peer, user, sizeof out->peer);
	const uint8_t *slash = memchr(t->rid, '/', t->rid_len);
	size_t n = slash != NULL ? (size_t)(slash - t->rid) : t->rid_len;
	if (n == strlen(user) && memcmp(t->rid, user, n) == 0) {
		route_learn(t, user);
		return FM_OK;
	}
	char *claim = t->claim;
	n = FMI_MIN(n, sizeof t->claim - 1);
	for (size_t i = 0; i < n; i++) { /* the peer's bytes, printable */
		claim[i] = t->rid[i] >= 0x20 && t->rid[i] < 0x7f ?
		    (char)t->rid[i] : '?';
	}
	claim[n] = '\0';
	return fm_error_set(err, FM_ECRYPTO, "identity '%s' is not the node "
	    "name its key is listed under ('%s'); a node must dial with its "
	    "own name", claim, user);
}

/* Whether to log this impostor's drop now (the first one, then one a
 * minute with the count in between, appended to why). */
static int
impostor_log_due(zmq_tran *t, const char *user, char *why, size_t n)
{
	zmq_impostor *e = &t->impostors[0];
	for (int i = 0; i < IMPOSTOR_RECENT; i++) {
		zmq_impostor *x = &t->impostors[i];
		if (strcmp(x->user, user) == 0 &&
		    strcmp(x->claim, t->claim) == 0) {
			e = x;
			break;
		}
		e = x->last < e->last ? x : e;
	}
	if (strcmp(e->user, user) != 0 || strcmp(e->claim, t->claim) != 0) {
		fmi_strlcpy(e->user, user, sizeof e->user);
		fmi_strlcpy(e->claim, t->claim, sizeof e->claim);
		e->last = -IMPOSTOR_QUIET_S;
		e->repeats = 0;
	}
	double now = fmi_now();
	if (now - e->last < IMPOSTOR_QUIET_S) {
		e->repeats++;
		return 0;
	}
	size_t len = strlen(why);
	if (e->repeats > 0 && len < n) {
		snprintf(why + len, n - len, " (dropped %lu more since the last "
		    "report)", e->repeats);
	}
	e->last = now;
	e->repeats = 0;
	return 1;
}

static int
recv_body(zmq_tran *t, fmi_rmsg *out, fm_error *err)
{
	zmq_msg_t h;
	int rv = recv_frame(t, &h);
	if (rv != FM_OK) {
		return rv;
	}
	t->stats.bytes_received += zmq_msg_size(&h);
	rv = t->secure && t->is_server ? check_user(t, &h, out, err) : FM_OK;
	if (rv == FM_OK) {
		rv = fmi_msg_decode(&out->m, zmq_msg_data(&h), zmq_msg_size(&h),
		    err);
	}
	zmq_msg_close(&h);
	if (rv != FM_OK || !more_frames(t->sock)) {
		return rv;
	}
	zmq_rbuf *b = malloc(sizeof *b);
	if (b == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for a %s "
		    "payload", fmi_msg_type_name(out->m.type));
	}
	rv = recv_frame(t, &b->msg);
	if (rv != FM_OK) {
		free(b);
		return rv;
	}
	b->base = (fmi_rbuf) { &fmi_tran_zmq_ops, zmq_msg_data(&b->msg),
		zmq_msg_size(&b->msg) };
	out->payload = &b->base;
	out->has_payload = 1;
	t->stats.bytes_received += b->base.len;
	if (more_frames(t->sock)) {
		return fm_error_set(err, FM_EPROTO,
		    "%s message has more than one payload frame",
		    fmi_msg_type_name(out->m.type));
	}
	return FM_OK;
}

static int
z_recv(fmi_tran *bt, fmi_rmsg *out, int timeout_ms, fm_error *errp)
{
	zmq_tran *t = (zmq_tran *)bt;
	fm_error local = { 0, "" };
	fm_error *err = errp != NULL ? errp : &local;

	err->msg[0] = '\0';
	memset(out, 0, sizeof *out);
	int rv = wait_readable(t, timeout_ms);
	if (rv != FM_OK) {
		return rv;
	}
	if (t->is_server) {
		rv = recv_peer(t, out, err);
	}
	if (rv == FM_OK) {
		rv = recv_body(t, out, err);
	}
	if (rv != FM_OK) {
		drain(t);
		fmi_rmsg_close(out);
		t->stats.msgs_dropped++;
		if (rv != FM_ECRYPTO || out->peer[0] == '\0' ||
		    impostor_log_due(t, out->peer, err->msg, sizeof err->msg)) {
			fm_log(FM_LOG_WARN, rv == FM_ECRYPTO ? "FM-AUTH" :
			    "FM-WIRE", "%s: dropped message from %s: %s",
			    t->url, out->peer[0] ? out->peer : "peer",
			    err->msg[0] ? err->msg : fm_strerror(rv));
		}
		return rv;
	}
	t->stats.msgs_received++;
	return FM_OK;
}

static void
z_rbuf_free(fmi_rbuf *bb)
{
	zmq_rbuf *b = (zmq_rbuf *)bb;
	zmq_msg_close(&b->msg);
	free(b);
}

static void
z_stats(const fmi_tran *bt, fmi_tran_stats *s)
{
	*s = ((const zmq_tran *)bt)->stats;
}

/* ---- contexts -------------------------------------------------------- */

int
fmi_tran_zmq_wrap(fmi_tran_ctx **out, void *zctx, fm_error *err)
{
	zmq_ctx *c = zctx != NULL ? calloc(1, sizeof *c) : NULL;
	if (c == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for a "
		    "ZeroMQ context");
	}
	c->base.ops = &fmi_tran_zmq_ops;
	c->zctx = zctx;
	c->borrowed = 1;
	*out = &c->base;
	return FM_OK;
}

static int
z_ctx_new(fmi_tran_ctx **out, fm_error *err)
{
	void *zctx = zmq_ctx_new();
	int rv = fmi_tran_zmq_wrap(out, zctx, err);
	if (rv == FM_OK) {
		((zmq_ctx *)*out)->borrowed = 0;
	} else if (zctx != NULL) {
		zmq_ctx_term(zctx);
	}
	return rv;
}

static void
z_ctx_free(fmi_tran_ctx *bc)
{
	zmq_ctx *c = (zmq_ctx *)bc;
	fmi_zap_stop(c->zap); /* after the CURVE servers, before the term */
	if (!c->borrowed) {
		zmq_ctx_term(c->zctx);
	}
	free(c);
}

static int
z_allow(fmi_tran_ctx *bc, const char *const *keys, const char *const *names,
    size_t n, fm_error *err)
{
	zmq_ctx *c = (zmq_ctx *)bc;
	if (c->zap != NULL) {
		return fm_error_set(err, FM_ESTATE, "this transport context "
		    "already has an authenticator");
	}
	return fmi_zap_start(&c->zap, c->zctx, keys, names, n, err);
}

void *
fmi_tran_zmq_context(fmi_tran_ctx *c)
{
	return c->ops == &fmi_tran_zmq_ops ? ((zmq_ctx *)c)->zctx : NULL;
}

void *
fmi_tran_zmq_socket(fmi_tran *t)
{
	return t->ops == &fmi_tran_zmq_ops ? ((zmq_tran *)t)->sock : NULL;
}

const fmi_tran_ops fmi_tran_zmq_ops = {
	.name = "zmq",
	.ctx_new = z_ctx_new,
	.ctx_free = z_ctx_free,
	.allow = z_allow,
	.listen = z_listen,
	.dial = z_dial,
	.send = z_send,
	.send_bytes = z_send_bytes,
	.recv = z_recv,
	.endpoint = z_endpoint,
	.stats = z_stats,
	.close = z_close,
	.rbuf_free = z_rbuf_free,
};
