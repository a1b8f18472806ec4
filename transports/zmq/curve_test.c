/* SPDX-License-Identifier: MIT */
/* curve_test.c: CURVE + ZAP over tcp://127.0.0.1: who gets in, who not. */
#define _DEFAULT_SOURCE /* usleep, sockets */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zmq.h>

#include "fm_test.h"

#include "core/core.h"
#include "transports/zmq/security.h"
#include "transports/transport.h"
#include "transports/zmq/zmq_transport.h"

#define WAIT_MS 10000 /* liveness bound; passing runs take milliseconds */
#define NFLOATS 1000

/* Log capture read while the ZAP thread may still log. */
typedef struct logcap {
	pthread_mutex_t mu;
	fmt_logcap c;
} logcap;

static logcap cap = { PTHREAD_MUTEX_INITIALIZER, { .n = 0 } };

static void
cap_sink(void *ud, int level, const char *id, const char *line)
{
	logcap *c = ud;
	pthread_mutex_lock(&c->mu);
	fmt_logcap_sink(&c->c, level, id, line);
	pthread_mutex_unlock(&c->mu);
}

/* True when a line logged under id contains s. */
static int
cap_has(const char *id, const char *s)
{
	int found = 0;
	pthread_mutex_lock(&cap.mu);
	for (int i = 0; i < cap.c.n && !found; i++) {
		found = strcmp(cap.c.ids[i], id) == 0 &&
		    strstr(cap.c.lines[i], s) != NULL;
	}
	pthread_mutex_unlock(&cap.mu);
	return found;
}

typedef struct fx {
	void *zctx;
	fmi_tran_ctx *tc;
	fmi_zap *zap;
	fmi_keypair srv_kp, alice, bob, mallory;
	fmi_tran *srv;
	fmi_tran *cli[8]; /* closed by teardown, also after a failure */
	int ncli;
	char ep[128];
	int port;
} fx;

static int
fx_open_with(void **state, size_t max_frame, int handover)
{
	fx *f = calloc(1, sizeof *f);
	f->zctx = zmq_ctx_new();
	FMT_PASS(fmi_tran_zmq_wrap(&f->tc, f->zctx, NULL));
	FMT_PASS(fmi_keygen(&f->srv_kp, NULL));
	FMT_PASS(fmi_keygen(&f->alice, NULL));
	FMT_PASS(fmi_keygen(&f->bob, NULL));
	FMT_PASS(fmi_keygen(&f->mallory, NULL));
	const char *keys[] = { f->alice.public_z85, f->bob.public_z85 };
	const char *names[] = { "alice", "bob" };
	FMT_PASS(fmi_zap_start(&f->zap, f->zctx, keys, names, 2, NULL));
	fmi_tran_security sec = { &f->srv_kp, NULL };
	if (handover) { /* as a deployed server listens */
		fmi_tran_listen_opts o = { &sec, max_frame, 1 };
		FMT_PASS(fmi_tran_listen_with(&f->srv, f->tc,
		    "tcp://127.0.0.1:*", &o, NULL));
	} else if (max_frame > 0) {
		FMT_PASS(fmi_tran_listen_limited(&f->srv, f->tc,
		    "tcp://127.0.0.1:*", &sec, max_frame, NULL));
	} else {
		FMT_PASS(fmi_tran_listen_secure(&f->srv, f->tc,
		    "tcp://127.0.0.1:*", &sec, NULL));
	}
	FMT_PASS(fmi_tran_endpoint(f->srv, f->ep, sizeof f->ep));
	const char *colon = strrchr(f->ep, ':');
	assert_non_null(colon);
	f->port = atoi(colon + 1);
	assert_true(f->port > 0);
	pthread_mutex_lock(&cap.mu);
	cap.c.n = 0;
	pthread_mutex_unlock(&cap.mu);
	fm_log_set_sink(cap_sink, &cap);
	*state = f;
	return 0;
}

static int
fx_open(void **state, size_t max_frame)
{
	return fx_open_with(state, max_frame, 0);
}

static int
fx_setup(void **state)
{
	return fx_open(state, 0);
}

static int
fx_setup_handover(void **state)
{
	return fx_open_with(state, 0, 1);
}

#define LIMIT (64 * 1024) /* frames the limited server takes */

static int
fx_setup_limited(void **state)
{
	return fx_open(state, LIMIT);
}

static int
fx_teardown(void **state)
{
	fx *f = *state;
	fm_log_set_sink(NULL, NULL);
	for (int i = 0; i < f->ncli; i++) {
		fmi_tran_close(f->cli[i]);
	}
	fmi_tran_close(f->srv);
	fmi_zap_stop(f->zap);
	fmi_tran_ctx_free(f->tc);
	zmq_ctx_term(f->zctx);
	free(f);
	return 0;
}

/* Dials with kp as the client's key pair and server_key as the server's
 * (NULL kp: no CURVE). The fixture owns the client. */
static fmi_tran *
dial_with(fx *f, const char *identity, const fmi_keypair *kp,
    const char *server_key)
{
	fmi_tran *t;
	fmi_tran_security sec = { kp, server_key };
	assert_true(f->ncli < (int)FMI_ARRAY_LEN(f->cli));
	FMT_PASS(fmi_tran_dial_secure(&t, f->tc, f->ep, identity,
	    kp != NULL ? &sec : NULL, NULL));
	int linger = 0; /* refused clients would hold zmq_ctx_term */
	zmq_setsockopt(fmi_tran_zmq_socket(t), ZMQ_LINGER, &linger, sizeof linger);
	f->cli[f->ncli++] = t;
	return t;
}

static fmi_tran *
dial(fx *f, const char *identity, const fmi_keypair *kp)
{
	return dial_with(f, identity, kp, f->srv_kp.public_z85);
}

/* Closes a client before the end of the test. */
static void
hang_up(fx *f, fmi_tran *t)
{
	for (int i = 0; i < f->ncli; i++) {
		if (f->cli[i] == t) {
			fmi_tran_close(t);
			f->cli[i] = f->cli[--f->ncli];
			return;
		}
	}
	fail_msg("hang_up: not a client of this fixture");
}

static void
send_update(fmi_tran *t, uint32_t round)
{
	float v[NFLOATS];
	for (int i = 0; i < NFLOATS; i++) {
		v[i] = (float)(i + round);
	}
	fmi_msg m = { .type = FMI_MSG_UPDATE, .round = round, .from = 1,
		.num_examples = 5, .n = NFLOATS };
	FMT_PASS(fmi_tran_send_bytes(t, NULL, &m, v, sizeof v));
}

/* The server gets one update from who, and who gets the answer. */
static void
exchange(fx *f, fmi_tran *cli, const char *who, uint32_t round)
{
	fmi_rmsg r;
	fm_error e;
	send_update(cli, round);
	FMT_PASS(fmi_tran_recv(f->srv, &r, WAIT_MS, &e));
	assert_string_equal(r.peer, who);
	assert_int_equal(r.m.type, FMI_MSG_UPDATE);
	assert_int_equal(r.m.round, round);
	FMT_PASS(fmi_msg_check_tensor(&r.m, fmi_rmsg_data(&r), fmi_rmsg_len(&r),
	    NFLOATS, &e));
	float last; /* over tcp:// the payload need not be 4-byte aligned */
	memcpy(&last, (const char *)fmi_rmsg_data(&r) + 4 * (NFLOATS - 1), 4);
	assert_true(last == (float)(NFLOATS - 1 + round));
	fmi_rmsg_close(&r);
	fmi_msg end = { .type = FMI_MSG_ROUND_END, .round = round };
	FMT_PASS(fmi_tran_send(f->srv, who, &end, NULL));
	FMT_PASS(fmi_tran_recv(cli, &r, WAIT_MS, &e));
	assert_int_equal(r.m.type, FMI_MSG_ROUND_END);
	assert_int_equal(r.m.round, round);
}

/* Nothing (more) is waiting at the server. */
static void
assert_server_idle(fx *f)
{
	fmi_rmsg r;
	FMT_FAIL(fmi_tran_recv(f->srv, &r, 0, NULL), FM_ETIMEDOUT);
}

static void
test_listed_client_exchanges(void **state)
{
	fx *f = *state;
	fmi_tran *a = dial(f, "alice", &f->alice);
	fmi_tran *b = dial(f, "bob", &f->bob);
	for (uint32_t round = 1; round <= 3; round++) {
		exchange(f, a, "alice", round);
		exchange(f, b, "bob", round);
	}
	assert_int_equal(fmi_zap_accepted(f->zap), 2);
	assert_int_equal(fmi_zap_refused(f->zap), 0);
	fmi_tran_stats st;
	fmi_tran_get_stats(f->srv, &st);
	assert_int_equal(st.msgs_received, 6);
	assert_int_equal(st.msgs_dropped, 0);
	hang_up(f, a);
	hang_up(f, b);
}

/* Waits until the ZAP handler refused n requests. */
static void
wait_refused(fx *f, size_t n)
{
	double t0 = fmi_now();
	while (fmi_zap_refused(f->zap) < n && fmi_now() - t0 < WAIT_MS / 1e3) {
		usleep(2000);
	}
	assert_true(fmi_zap_refused(f->zap) >= n);
}

static void
test_unlisted_key_refused(void **state)
{
	fx *f = *state;
	fmi_tran *m = dial(f, "mallory", &f->mallory);
	send_update(m, 1);
	wait_refused(f, 1);
	char want[128];
	snprintf(want, sizeof want, "refused connection from 127.0.0.1: key %s "
	    "is not in the deployment", f->mallory.public_z85);
	assert_true(cap_has("FM-AUTH", want));
	/* mallory's update never made it; the honest client's does */
	fmi_tran *a = dial(f, "alice", &f->alice);
	exchange(f, a, "alice", 1);
	assert_server_idle(f);
	hang_up(f, m);
	hang_up(f, a);
	assert_int_equal(fmi_zap_accepted(f->zap), 1);
}

/* A listed key cannot speak under another node's name. */
static void
test_identity_bound_to_key(void **state)
{
	fx *f = *state;
	fmi_tran *fake = dial(f, "alice", &f->bob);
	fmi_rmsg r;
	fm_error e;
	send_update(fake, 1);
	FMT_FAIL(fmi_tran_recv(f->srv, &r, WAIT_MS, &e), FM_ECRYPTO);
	assert_non_null(strstr(e.msg, "identity 'alice' is not the node name "
	    "its key is listed under ('bob')"));
	/* the log names the sender by its key, not by its claim */
	assert_true(cap_has("FM-AUTH", "dropped message from bob"));
	fmi_tran_stats st;
	fmi_tran_get_stats(f->srv, &st);
	assert_int_equal(st.msgs_dropped, 1);
	hang_up(f, fake);
	fmi_tran *b = dial(f, "bob", &f->bob);
	exchange(f, b, "bob", 2);
	hang_up(f, b);
}

/*
 * The server listens with handover, as deployed. While alice is
 * connected, bob (his own listed key) dials under alice's name: his
 * message is dropped (FM-AUTH), and what the server sends to alice still
 * reaches alice, never him. A name that never spoke cannot be sent to.
 * Alice restarted (a new socket: a new connection) gets her messages on
 * the new connection from her first message on; bob as himself works.
 */
static void
test_impostor_cannot_take_a_slot(void **state)
{
	fx *f = *state;
	fmi_rmsg r;
	fm_error e;
	fmi_tran *a = dial(f, "alice", &f->alice);
	exchange(f, a, "alice", 1);
	fmi_tran *fake = dial(f, "alice", &f->bob);
	send_update(fake, 2);
	FMT_FAIL(fmi_tran_recv(f->srv, &r, WAIT_MS, &e), FM_ECRYPTO);
	assert_true(cap_has("FM-AUTH", "identity 'alice' is not the node name "
	    "its key is listed under ('bob')"));
	/* the impostor's connection is up and handed over nothing: the
	 * server's next message for alice goes to alice */
	exchange(f, a, "alice", 3);
	exchange(f, a, "alice", 4);
	FMT_FAIL(fmi_tran_recv(fake, &r, 100, NULL), FM_ETIMEDOUT);
	fmi_msg end = { .type = FMI_MSG_ROUND_END, .round = 4 };
	FMT_FAIL(fmi_tran_send(f->srv, "carol", &end, NULL), FM_ENOENT);
	FMT_FAIL(fmi_tran_send(f->srv, "bob", &end, NULL), FM_ENOENT);
	/* alice restarts: her old connection dies, a new one speaks */
	hang_up(f, a);
	fmi_tran *a2 = dial(f, "alice", &f->alice);
	exchange(f, a2, "alice", 5);
	FMT_FAIL(fmi_tran_recv(fake, &r, 0, NULL), FM_ETIMEDOUT);
	fmi_tran *b = dial(f, "bob", &f->bob);
	exchange(f, b, "bob", 6);
	exchange(f, a2, "alice", 7);
	fmi_tran_stats st;
	fmi_tran_get_stats(f->srv, &st);
	assert_int_equal(st.msgs_dropped, 1);
	hang_up(f, fake);
	hang_up(f, a2);
	hang_up(f, b);
}

/* Waits for one monitor event on the server; returns its number. */
static int
wait_event(void *mon)
{
	zmq_pollitem_t it = { mon, 0, ZMQ_POLLIN, 0 };
	assert_int_equal(zmq_poll(&it, 1, WAIT_MS), 1);
	zmq_msg_t m;
	uint16_t ev;
	zmq_msg_init(&m);
	assert_true(zmq_msg_recv(&m, mon, 0) >= 6);
	memcpy(&ev, zmq_msg_data(&m), sizeof ev);
	assert_true(zmq_msg_recv(&m, mon, 0) >= 0); /* endpoint frame */
	zmq_msg_close(&m);
	return ev;
}

static void *
mon_start(fx *f)
{
	void *sock = fmi_tran_zmq_socket(f->srv);
	assert_int_equal(zmq_socket_monitor(sock, "inproc://curve-test-mon",
	    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
		ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
		ZMQ_EVENT_HANDSHAKE_FAILED_AUTH), 0);
	void *mon = zmq_socket(f->zctx, ZMQ_PAIR);
	assert_int_equal(zmq_connect(mon, "inproc://curve-test-mon"), 0);
	return mon;
}

static void
mon_stop(fx *f, void *mon)
{
	zmq_socket_monitor(fmi_tran_zmq_socket(f->srv), NULL, 0);
	zmq_close(mon);
}

static void
test_plain_client_refused(void **state)
{
	fx *f = *state;
	void *mon = mon_start(f);
	fmi_tran *p = dial(f, "alice", NULL); /* no CURVE at all */
	send_update(p, 1);
	/* libzmq drops it at the greeting (mechanism NULL, not CURVE), before
	 * any ZAP request */
	assert_int_equal(wait_event(mon),
	    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
	mon_stop(f, mon);
	fmi_tran *a = dial(f, "alice", &f->alice);
	exchange(f, a, "alice", 1);
	assert_server_idle(f);
	assert_int_equal(fmi_zap_refused(f->zap), 0);
	hang_up(f, p);
	hang_up(f, a);
}

static int
raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

/* Sends what it can: the server may hang up half way, which is fine. */
static void
raw_send(int fd, const void *buf, size_t len)
{
	(void)send(fd, buf, len, MSG_NOSIGNAL);
}

/* A ZMTP 3.0 greeting announcing CURVE, then a command frame claiming
 * size bytes: a peer that got past the greeting and lies about sizes. */
static void
raw_greeting_then_lie(int fd, uint64_t size)
{
	uint8_t g[64 + 9] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0 };
	memcpy(g + 12, "CURVE", 5);
	g[64] = 0x06; /* long command frame, 8-byte big-endian size */
	for (int i = 0; i < 8; i++) {
		g[65 + i] = (uint8_t)(size >> (56 - 8 * i));
	}
	raw_send(fd, g, sizeof g);
}

/* Random bytes, a silent connection and a size liar, all holding no
 * key, while an honest client works. The liar claims lie bytes. */
static void
hostile_tcp(fx *f, uint64_t lie)
{
	static uint8_t junk[65536];
	fm_rng rng;
	fmi_rng_seed(&rng, 7, 0);
	for (size_t i = 0; i < sizeof junk; i += 8) {
		uint64_t x = fmi_rng_u64(&rng);
		memcpy(junk + i, &x, 8);
	}
	int noisy = raw_connect(f->port), silent = raw_connect(f->port);
	int liar = raw_connect(f->port);
	raw_send(noisy, junk, sizeof junk);
	raw_greeting_then_lie(liar, lie);
	fmi_tran *a = dial(f, "alice", &f->alice);
	for (uint32_t round = 1; round <= 5; round++) {
		exchange(f, a, "alice", round);
		raw_send(noisy, junk, 4096);
	}
	close(noisy);
	close(silent);
	close(liar);
	exchange(f, a, "alice", 6); /* still serving after they left */
	assert_server_idle(f);
	fmi_tran_stats st;
	fmi_tran_get_stats(f->srv, &st);
	assert_int_equal(st.msgs_received, 6);
	assert_int_equal(st.msgs_dropped, 0);
	hang_up(f, a);
}

static void
test_hostile_tcp_does_not_disturb(void **state)
{
	/* libzmq allocates what the liar claims: keep it small here */
	hostile_tcp(*state, 1u << 20);
}

/* With a frame limit, a claim of 2^62 bytes closes the connection before
 * anything is allocated (under ASan, an allocation of that size aborts,
 * so this also proves none was tried). */
static void
test_hostile_tcp_limited(void **state)
{
	hostile_tcp(*state, (uint64_t)1 << 62);
}

/* An honest frame over the limit costs its connection, not the server;
 * the client reconnects and goes on. */
static void
test_frame_over_limit(void **state)
{
	fx *f = *state;
	void *sock = fmi_tran_zmq_socket(f->srv);
	assert_int_equal(zmq_socket_monitor(sock, "inproc://curve-test-disc",
	    ZMQ_EVENT_DISCONNECTED), 0);
	void *mon = zmq_socket(f->zctx, ZMQ_PAIR);
	assert_int_equal(zmq_connect(mon, "inproc://curve-test-disc"), 0);
	fmi_tran *a = dial(f, "alice", &f->alice);
	exchange(f, a, "alice", 1);
	static float big[LIMIT / 4 + 16];
	fmi_msg m = { .type = FMI_MSG_UPDATE, .round = 2, .from = 1,
		.num_examples = 1, .n = FMI_ARRAY_LEN(big) };
	FMT_PASS(fmi_tran_send_bytes(a, NULL, &m, big, sizeof big));
	assert_int_equal(wait_event(mon), ZMQ_EVENT_DISCONNECTED);
	zmq_socket_monitor(sock, NULL, 0);
	zmq_close(mon);
	exchange(f, a, "alice", 3);
	assert_server_idle(f);
}

/* A client holding the wrong server key never gets through either: the
 * server cannot open its HELLO, so the handshake fails before ZAP. */
static void
test_wrong_server_key(void **state)
{
	fx *f = *state;
	void *mon = mon_start(f);
	fmi_tran *t = dial_with(f, "alice", &f->alice, f->mallory.public_z85);
	send_update(t, 1);
	assert_int_equal(wait_event(mon),
	    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
	mon_stop(f, mon);
	hang_up(f, t);
	fmi_tran *a = dial(f, "alice", &f->alice);
	exchange(f, a, "alice", 2);
	assert_server_idle(f);
	assert_int_equal(fmi_zap_accepted(f->zap), 1);
	hang_up(f, a);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_listed_client_exchanges),
		T(test_unlisted_key_refused),
		T(test_identity_bound_to_key),
		cmocka_unit_test_setup_teardown(
		    test_impostor_cannot_take_a_slot, fx_setup_handover,
		    fx_teardown),
		T(test_plain_client_refused),
		T(test_hostile_tcp_does_not_disturb),
		T(test_wrong_server_key),
		cmocka_unit_test_setup_teardown(test_hostile_tcp_limited,
		    fx_setup_limited, fx_teardown),
		cmocka_unit_test_setup_teardown(test_frame_over_limit,
		    fx_setup_limited, fx_teardown),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
