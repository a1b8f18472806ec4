/* SPDX-License-Identifier: MIT */
/* transport.c: payload buffers and the fmi_tran_* calls, dispatched to the
 * ops of each endpoint's context (transport.h). */
#include <stdlib.h>

#include "transports/transport_impl.h"

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

int
fmi_tran_ctx_new(fmi_tran_ctx **out, const fmi_tran_ops *ops, fm_error *err)
{
	*out = NULL;
	return (ops != NULL ? ops : &fmi_tran_zmq_ops)->ctx_new(out, err);
}

void
fmi_tran_ctx_free(fmi_tran_ctx *c)
{
	if (c != NULL) {
		c->ops->ctx_free(c);
	}
}

int
fmi_tran_allow(fmi_tran_ctx *c, const char *const *keys,
    const char *const *names, size_t n, fm_error *err)
{
	return c->ops->allow(c, keys, names, n, err);
}

int
fmi_tran_listen_with(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const fmi_tran_listen_opts *o, fm_error *err)
{
	static const fmi_tran_listen_opts none = { NULL, 0, 0 };
	*out = NULL;
	return c->ops->listen(out, c, url, o != NULL ? o : &none, err);
}

int
fmi_tran_dial_with(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const char *identity, const fmi_tran_dial_opts *o, fm_error *err)
{
	static const fmi_tran_dial_opts none = { NULL, 0 };
	*out = NULL;
	return c->ops->dial(out, c, url, identity, o != NULL ? o : &none, err);
}

int
fmi_tran_listen_limited(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const fmi_tran_security *sec, size_t max_frame, fm_error *err)
{
	fmi_tran_listen_opts o = { sec, max_frame, 0 };
	return fmi_tran_listen_with(out, c, url, &o, err);
}

int
fmi_tran_listen_secure(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const fmi_tran_security *sec, fm_error *err)
{
	return fmi_tran_listen_limited(out, c, url, sec, 0, err);
}

int
fmi_tran_listen(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    fm_error *err)
{
	return fmi_tran_listen_limited(out, c, url, NULL, 0, err);
}

int
fmi_tran_dial_lossy(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const char *identity, const fmi_tran_security *sec, int queue,
    fm_error *err)
{
	fmi_tran_dial_opts o = { sec, queue };
	return fmi_tran_dial_with(out, c, url, identity, &o, err);
}

int
fmi_tran_dial_secure(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const char *identity, const fmi_tran_security *sec, fm_error *err)
{
	return fmi_tran_dial_lossy(out, c, url, identity, sec, 0, err);
}

int
fmi_tran_dial(fmi_tran **out, fmi_tran_ctx *c, const char *url,
    const char *identity, fm_error *err)
{
	return fmi_tran_dial_lossy(out, c, url, identity, NULL, 0, err);
}

void
fmi_tran_close(fmi_tran *t)
{
	if (t != NULL) {
		t->ops->close(t);
	}
}

int
fmi_tran_endpoint(fmi_tran *t, char *buf, size_t n)
{
	return t->ops->endpoint(t, buf, n);
}

int
fmi_tran_send(fmi_tran *t, const char *peer, const fmi_msg *m, fmi_payload *p)
{
	return t->ops->send(t, peer, m, p);
}

int
fmi_tran_send_bytes(fmi_tran *t, const char *peer, const fmi_msg *m,
    const void *data, size_t len)
{
	return t->ops->send_bytes(t, peer, m, data, len);
}

int
fmi_tran_recv(fmi_tran *t, fmi_rmsg *out, int timeout_ms, fm_error *err)
{
	return t->ops->recv(t, out, timeout_ms, err);
}

const void *
fmi_rmsg_data(fmi_rmsg *r)
{
	return r->has_payload ? r->payload->data : NULL;
}

size_t
fmi_rmsg_len(fmi_rmsg *r)
{
	return r->has_payload ? r->payload->len : 0;
}

void
fmi_rmsg_close(fmi_rmsg *r)
{
	if (r->has_payload) {
		r->payload->ops->rbuf_free(r->payload);
		r->has_payload = 0;
	}
	r->payload = NULL;
}

void
fmi_tran_get_stats(const fmi_tran *t, fmi_tran_stats *s)
{
	t->ops->stats(t, s);
}
