/* SPDX-License-Identifier: MIT */
/* zmq_transport.c: ROUTER/DEALER endpoints carrying msgpack headers + payloads. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "transports/zmq/transport.h"

struct fmi_tran {
	void *sock;
	int is_server;
	char url[256];
	fmi_tran_stats stats;
};

fmi_payload *
fmi_payload_new(size_t len)
{
	fmi_payload *p = malloc(sizeof *p);
	if (p == NULL) {
		return NULL;
	}
	size_t cap = (len + 63) & ~(size_t)63;
	p->data = aligned_alloc(64, cap ? cap : 64);
	if (p->data == NULL) {
		free(p);
		return NULL;
	}
	atomic_init(&p->refs, 1);
	p->len = len;
	return p;
}

fmi_payload *
fmi_payload_ref(fmi_payload *p)
{
	atomic_fetch_add(&p->refs, 1);
	return p;
}

void
fmi_payload_unref(fmi_payload *p)
{
	if (p != NULL && atomic_fetch_sub(&p->refs, 1) == 1) {
		free(p->data);
		free(p);
	}
}

static int
zerr(void)
{
	return FM_ETRANERR | zmq_errno();
}

static int
tran_open(fmi_tran **out, void *zctx, int type, const char *url,
    const char *identity, fm_error *err)
{
	fmi_tran *t = calloc(1, sizeof *t);
	if (t == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	t->is_server = type == ZMQ_ROUTER;
	fmi_strlcpy(t->url, url, sizeof t->url);
	t->sock = zmq_socket(zctx, type);
	int hwm = 100000, one = 1, linger = 500;
	int rc = t->sock == NULL ? -1 : 0;
	if (rc == 0) {
		zmq_setsockopt(t->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
		zmq_setsockopt(t->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
		zmq_setsockopt(t->sock, ZMQ_LINGER, &linger, sizeof linger);
		if (t->is_server) {
			rc = zmq_setsockopt(t->sock, ZMQ_ROUTER_MANDATORY, &one,
			    sizeof one);
		} else if (identity != NULL) {
			rc = zmq_setsockopt(t->sock, ZMQ_ROUTING_ID, identity,
			    strlen(identity));
		}
	}
	if (rc == 0) {
		rc = t->is_server ? zmq_bind(t->sock, url) : zmq_connect(t->sock, url);
	}
	if (rc != 0) {
		int e = zerr();
		fm_error_set(err, e, "cannot %s %s: %s",
		    t->is_server ? "listen on" : "connect to", url,
		    zmq_strerror(zmq_errno()));
		fmi_tran_close(t);
		return e;
	}
	*out = t;
	return FM_OK;
}

int
fmi_tran_listen(fmi_tran **out, void *zctx, const char *url, fm_error *err)
{
	return tran_open(out, zctx, ZMQ_ROUTER, url, NULL, err);
}

int
fmi_tran_dial(fmi_tran **out, void *zctx, const char *url,
    const char *identity, fm_error *err)
{
	if (identity != NULL &&
	    (identity[0] == '\0' || strlen(identity) > FMI_PEER_MAX)) {
		return fm_error_set(err, FM_EINVAL,
		    "node identity must be 1..%d characters", FMI_PEER_MAX);
	}
	return tran_open(out, zctx, ZMQ_DEALER, url, identity, err);
}

void
fmi_tran_close(fmi_tran *t)
{
	if (t == NULL) {
		return;
	}
	if (t->sock != NULL) {
		zmq_close(t->sock);
	}
	free(t);
}

static void
payload_free(void *data, void *hint)
{
	(void)data;
	fmi_payload_unref(hint);
}

static int
send_frame(fmi_tran *t, const void *data, size_t len, int more)
{
	if (zmq_send(t->sock, data, len, more ? ZMQ_SNDMORE : 0) < 0) {
		return errno == EHOSTUNREACH ? FM_ENOENT : zerr();
	}
	t->stats.bytes_sent += len;
	return FM_OK;
}

static int
send_head(fmi_tran *t, const char *peer, const fmi_msg *m, int more)
{
	uint8_t hdr[FMI_WIRE_MAX_HEADER];
	size_t hlen;
	int rv = fmi_msg_encode(m, hdr, sizeof hdr, &hlen);

	if (rv == FM_OK && t->is_server) {
		if (peer == NULL) {
			return FM_EINVAL;
		}
		/* The routing frame addresses the peer; ROUTER consumes it
		 * and it does not travel as data. */
		if (zmq_send(t->sock, peer, strlen(peer), ZMQ_SNDMORE) < 0) {
			return errno == EHOSTUNREACH ? FM_ENOENT : zerr();
		}
	}
	if (rv == FM_OK) {
		rv = send_frame(t, hdr, hlen, more);
	}
	return rv;
}

int
fmi_tran_send(fmi_tran *t, const char *peer, const fmi_msg *m, fmi_payload *p)
{
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

int
fmi_tran_send_bytes(fmi_tran *t, const char *peer, const fmi_msg *m,
    const void *data, size_t len)
{
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
drain(fmi_tran *t)
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
recv_frame(fmi_tran *t, zmq_msg_t *f)
{
	zmq_msg_init(f);
	if (zmq_msg_recv(f, t->sock, 0) < 0) {
		zmq_msg_close(f);
		return zerr();
	}
	return FM_OK;
}

static int
wait_readable(fmi_tran *t, int timeout_ms)
{
	zmq_pollitem_t it = { t->sock, 0, ZMQ_POLLIN, 0 };
	int n = zmq_poll(&it, 1, timeout_ms);
	if (n < 0) {
		return zmq_errno() == EINTR ? FM_ETIMEDOUT : zerr();
	}
	return n == 0 ? FM_ETIMEDOUT : FM_OK;
}

static int
recv_peer(fmi_tran *t, fmi_rmsg *out, fm_error *err)
{
	zmq_msg_t f;
	int rv = recv_frame(t, &f);
	if (rv != FM_OK) {
		return rv;
	}
	size_t n = zmq_msg_size(&f);
	if (n == 0 || n > FMI_PEER_MAX || !more_frames(t->sock)) {
		zmq_msg_close(&f);
		return fm_error_set(err, FM_EPROTO,
		    "bad routing identity (%zu bytes) or empty message", n);
	}
	memcpy(out->peer, zmq_msg_data(&f), n);
	out->peer[n] = '\0';
	zmq_msg_close(&f);
	return FM_OK;
}

static int
recv_body(fmi_tran *t, fmi_rmsg *out, fm_error *err)
{
	zmq_msg_t h;
	int rv = recv_frame(t, &h);
	if (rv != FM_OK) {
		return rv;
	}
	t->stats.bytes_received += zmq_msg_size(&h);
	rv = fmi_msg_decode(&out->m, zmq_msg_data(&h), zmq_msg_size(&h), err);
	zmq_msg_close(&h);
	if (rv != FM_OK || !more_frames(t->sock)) {
		return rv;
	}
	rv = recv_frame(t, &out->payload);
	if (rv != FM_OK) {
		return rv;
	}
	out->has_payload = 1;
	t->stats.bytes_received += zmq_msg_size(&out->payload);
	if (more_frames(t->sock)) {
		return fm_error_set(err, FM_EPROTO,
		    "%s message has more than one payload frame",
		    fmi_msg_type_name(out->m.type));
	}
	return FM_OK;
}

int
fmi_tran_recv(fmi_tran *t, fmi_rmsg *out, int timeout_ms, fm_error *errp)
{
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
		fm_log(FM_LOG_WARN, "FM-WIRE", "%s: dropped message from %s: %s",
		    t->url, out->peer[0] ? out->peer : "peer",
		    err->msg[0] ? err->msg : fm_strerror(rv));
		return rv;
	}
	t->stats.msgs_received++;
	return FM_OK;
}

const void *
fmi_rmsg_data(fmi_rmsg *r)
{
	return r->has_payload ? zmq_msg_data(&r->payload) : NULL;
}

size_t
fmi_rmsg_len(fmi_rmsg *r)
{
	return r->has_payload ? zmq_msg_size(&r->payload) : 0;
}

void
fmi_rmsg_close(fmi_rmsg *r)
{
	if (r->has_payload) {
		zmq_msg_close(&r->payload);
		r->has_payload = 0;
	}
}

void
fmi_tran_get_stats(const fmi_tran *t, fmi_tran_stats *s)
{
	*s = t->stats;
}

void *
fmi_tran_socket(fmi_tran *t)
{
	return t->sock;
}
