/* SPDX-License-Identifier: MIT */
/* transport_bench.c: FL rounds over loopback TCP: fedmesh vs raw ZeroMQ,
 * each plain and with CURVE. */
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <zmq.h>

#include "core/core.h"
#include "transports/zmq/security.h"
#include "transports/transport.h"
#include "transports/zmq/zmq_transport.h"

/*
 * One round: the server sends the model (a header frame + a float32
 * payload frame) to each client; each client checks it and answers with
 * an update of the same size; the server validates every update as the
 * real server does (type, round, sender, size, finiteness scan). Raw
 * ZeroMQ does the same exchange with bare payload frames, no headers and
 * no checks; raw_zmq_curve is raw_zmq with CURVE on the bare sockets
 * (fresh zmq_curve_keypair pairs, no ZAP handler, so any client key is
 * accepted), the baseline for fedmesh_curve. Every client has its own ZeroMQ context (its own I/O thread,
 * as a separate process would). Bytes are counted twice at the server:
 * frames handed to ZeroMQ (fmi_tran stats) and TCP payload bytes from
 * TCP_INFO (ZMTP framing, CURVE boxes and heartbeats included).
 */

#define MAX_CLIENTS 64
#define MAX_ROUNDS 1000
#define MIN_ROUNDS 3
#define RECV_MS 120000 /* a dead bench fails instead of hanging */

enum { MODE_RAW, MODE_RAW_CURVE, MODE_PLAIN, MODE_CURVE, NMODES };
static const char *const mode_names[] = { "raw_zmq", "raw_zmq_curve",
	"fedmesh_plain", "fedmesh_curve" };

#define IS_RAW(mode) ((mode) == MODE_RAW || (mode) == MODE_RAW_CURVE)

static const char usage[] =
    "usage: fedmesh-bench-transport [--clients N] [--seconds S]\n"
    "                               [--params N[,N...]] [--io-threads N]\n"
    "\n"
    "Times FL rounds over loopback TCP for raw ZeroMQ and the fedmesh\n"
    "transport, each without CURVE and with CURVE. Defaults: 10 clients,\n"
    "about 3 s per configuration (at least 3 rounds),\n"
    "200000,2000000,20000000 float32 parameters, 1 ZeroMQ I/O thread per\n"
    "context. Prints one JSON line per configuration and a summary line.\n";

typedef struct bench {
	int mode, nclients, io_threads;
	size_t dim;
	char ep[128];
	fmi_keypair server_kp, client_kp[MAX_CLIENTS];
	char raw_server_pub[41]; /* raw_zmq_curve: fresh pair per config */
	fmi_payload *model;
	atomic_int failed;
} bench;

typedef struct result {
	int rounds, misaligned;
	double median_s, min_s, frame_bytes, tcp_bytes;
} result;

/* ---- helpers ----------------------------------------------------------- */

static void *
ctx_new(const bench *b)
{
	void *zctx = zmq_ctx_new();
	if (zctx != NULL) {
		zmq_ctx_set(zctx, ZMQ_IO_THREADS, b->io_threads);
	}
	return zctx;
}

static fmi_payload *
payload_filled(size_t dim, float v)
{
	fmi_payload *p = fmi_payload_new(dim * sizeof(float));
	if (p != NULL) {
		float *x = p->data;
		for (size_t i = 0; i < dim; i++) {
			x[i] = v * (float)(i % 1000);
		}
		fmi_f32_to_le(x, dim);
	}
	return p;
}

static void
no_free(void *data, void *hint)
{
	(void)data;
	(void)hint;
}

/* Sends [routing id] + a zero-copy frame, like fmi_tran_send does. */
static int
raw_send(void *sock, const char *peer, const void *data, size_t len)
{
	zmq_msg_t m;
	if (peer != NULL && zmq_send(sock, peer, strlen(peer), ZMQ_SNDMORE) < 0) {
		return -1;
	}
	zmq_msg_init_data(&m, (void *)data, len, no_free, NULL);
	if (zmq_msg_send(&m, sock, 0) < 0) {
		zmq_msg_close(&m);
		return -1;
	}
	return 0;
}

static int
wait_in(void *sock, int ms)
{
	zmq_pollitem_t it = { sock, 0, ZMQ_POLLIN, 0 };
	return zmq_poll(&it, 1, ms) == 1 ? 0 : -1;
}

/* ---- clients ----------------------------------------------------------- */

typedef struct client {
	bench *b;
	int idx;
	pthread_t th;
} client;

static int
fm_client_loop(bench *b, fmi_tran *t, int idx, fmi_payload *upd)
{
	fmi_msg hello = { .type = FMI_MSG_HELLO, .from = idx };
	fmi_rmsg r;
	fm_error e;
	if (fmi_tran_send(t, NULL, &hello, NULL) != FM_OK) {
		return -1;
	}
	for (;;) {
		if (fmi_tran_recv(t, &r, RECV_MS, &e) != FM_OK) {
			fprintf(stderr, "client %d: %s\n", idx, e.msg);
			return -1;
		}
		if (r.m.type == FMI_MSG_SHUTDOWN) {
			return 0;
		}
		int rv = fmi_msg_check_tensor(&r.m, fmi_rmsg_data(&r),
		    fmi_rmsg_len(&r), b->dim, &e);
		fmi_msg u = { .type = FMI_MSG_UPDATE, .round = r.m.round,
			.from = idx, .num_examples = 600, .loss = 0.5,
			.n = b->dim };
		fmi_rmsg_close(&r);
		if (rv != FM_OK || fmi_tran_send(t, NULL, &u, upd) != FM_OK) {
			return -1;
		}
	}
}

static int
raw_client_loop(bench *b, void *sock, fmi_payload *upd)
{
	zmq_msg_t m;
	if (zmq_send(sock, "hi", 2, 0) < 0) {
		return -1;
	}
	for (;;) {
		if (wait_in(sock, RECV_MS) != 0) {
			return -1;
		}
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, 0) < 0) {
			return -1;
		}
		size_t n = zmq_msg_size(&m);
		zmq_msg_close(&m);
		if (n == 0) {
			return 0; /* shutdown */
		}
		if (raw_send(sock, NULL, upd->data, upd->len) != 0) {
			return -1;
		}
	}
}

static void *
client_main(void *arg)
{
	client *c = arg;
	bench *b = c->b;
	char name[16];
	snprintf(name, sizeof name, "c%d", c->idx);
	void *zctx = ctx_new(b);
	fmi_payload *upd = payload_filled(b->dim, 1e-3f * (float)(c->idx + 1));
	int rv = -1;
	if (IS_RAW(b->mode) && zctx != NULL && upd != NULL) {
		void *s = zmq_socket(zctx, ZMQ_DEALER);
		zmq_setsockopt(s, ZMQ_ROUTING_ID, name, strlen(name));
		int ok = 1;
		if (b->mode == MODE_RAW_CURVE) {
			char pub[41], sec[41];
			ok = zmq_curve_keypair(pub, sec) == 0 &&
			    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY,
				b->raw_server_pub, 40) == 0 &&
			    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40) == 0 &&
			    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40) == 0;
		}
		rv = ok && zmq_connect(s, b->ep) == 0 ?
		    raw_client_loop(b, s, upd) : -1;
		zmq_close(s);
	} else if (zctx != NULL && upd != NULL) {
		fmi_tran *t;
		fmi_tran_ctx *tc = NULL;
		fmi_tran_security sec = { &b->client_kp[c->idx],
			b->server_kp.public_z85 };
		fm_error e;
		if (fmi_tran_zmq_wrap(&tc, zctx, &e) == FM_OK &&
		    fmi_tran_dial_secure(&t, tc, b->ep, name,
			b->mode == MODE_CURVE ? &sec : NULL, &e) == FM_OK) {
			rv = fm_client_loop(b, t, c->idx, upd);
			fmi_tran_close(t);
		} else {
			fprintf(stderr, "client %d: %s\n", c->idx, e.msg);
		}
		fmi_tran_ctx_free(tc);
	}
	if (rv != 0) {
		atomic_store(&b->failed, 1);
	}
	fmi_payload_unref(upd);
	zmq_ctx_term(zctx);
	return NULL;
}

/* ---- server ------------------------------------------------------------ */

typedef struct server {
	bench *b;
	void *zctx, *raw, *mon;
	fmi_tran_ctx *tc;
	fmi_tran *t;
	fmi_zap *zap;
	int fds[MAX_CLIENTS], nfds;
	int misaligned;
} server;

/* TCP payload bytes both ways on the server's accepted connections. */
static double
tcp_bytes(const server *s)
{
	double sum = 0;
	for (int i = 0; i < s->nfds; i++) {
		struct tcp_info ti;
		socklen_t len = sizeof ti;
		memset(&ti, 0, sizeof ti);
		if (getsockopt(s->fds[i], IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
			sum += (double)ti.tcpi_bytes_acked +
			    (double)ti.tcpi_bytes_received;
		}
	}
	return sum;
}

static double
frame_bytes(const server *s)
{
	fmi_tran_stats st;
	if (s->t == NULL) {
		return 0; /* raw: computed from the frame sizes */
	}
	fmi_tran_get_stats(s->t, &st);
	return (double)(st.bytes_sent + st.bytes_received);
}

/* Reads ACCEPTED events: the file descriptors of the connections. */
static void
collect_fds(server *s)
{
	zmq_msg_t m;
	while (s->nfds < s->b->nclients && wait_in(s->mon, 5000) == 0) {
		uint16_t ev;
		int32_t val;
		zmq_msg_init(&m);
		zmq_msg_recv(&m, s->mon, 0);
		memcpy(&ev, zmq_msg_data(&m), sizeof ev);
		memcpy(&val, (char *)zmq_msg_data(&m) + 2, sizeof val);
		zmq_msg_recv(&m, s->mon, 0);
		zmq_msg_close(&m);
		if (ev == ZMQ_EVENT_ACCEPTED) {
			s->fds[s->nfds++] = val;
		}
	}
}

static int
server_open(server *s, fm_error *e)
{
	bench *b = s->b;
	void *sock;
	int rv = FM_OK;
	if (b->mode == MODE_CURVE) {
		const char *keys[MAX_CLIENTS], *names[MAX_CLIENTS];
		static char nm[MAX_CLIENTS][16];
		for (int i = 0; i < b->nclients; i++) {
			snprintf(nm[i], sizeof nm[i], "c%d", i);
			keys[i] = b->client_kp[i].public_z85;
			names[i] = nm[i];
		}
		rv = fmi_zap_start(&s->zap, s->zctx, keys, names,
		    (size_t)b->nclients, e);
	}
	if (rv == FM_OK && IS_RAW(b->mode)) {
		s->raw = zmq_socket(s->zctx, ZMQ_ROUTER);
		int one = 1;
		zmq_setsockopt(s->raw, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
		if (b->mode == MODE_RAW_CURVE) {
			char sec[41];
			if (zmq_curve_keypair(b->raw_server_pub, sec) != 0 ||
			    zmq_setsockopt(s->raw, ZMQ_CURVE_SERVER, &one,
				sizeof one) != 0 ||
			    zmq_setsockopt(s->raw, ZMQ_CURVE_SECRETKEY, sec,
				40) != 0) {
				fmi_strlcpy(e->msg, "raw CURVE setup failed",
				    sizeof e->msg);
				return FM_EIO;
			}
		}
		rv = zmq_bind(s->raw, "tcp://127.0.0.1:*") == 0 ? FM_OK : FM_EIO;
	} else if (rv == FM_OK) {
		fmi_tran_security sec = { &b->server_kp, NULL };
		rv = fmi_tran_zmq_wrap(&s->tc, s->zctx, e);
		rv = rv == FM_OK ? fmi_tran_listen_secure(&s->t, s->tc,
		    "tcp://127.0.0.1:*", b->mode == MODE_CURVE ? &sec : NULL,
		    e) : rv;
	}
	if (rv != FM_OK) {
		return rv;
	}
	sock = s->raw != NULL ? s->raw : fmi_tran_zmq_socket(s->t);
	size_t n = sizeof b->ep;
	zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, b->ep, &n);
	zmq_socket_monitor(sock, "inproc://bench-mon", ZMQ_EVENT_ACCEPTED);
	s->mon = zmq_socket(s->zctx, ZMQ_PAIR);
	zmq_connect(s->mon, "inproc://bench-mon");
	return FM_OK;
}

/* Waits for every client's hello (then all handshakes are done). */
static int
server_join(server *s)
{
	for (int got = 0; got < s->b->nclients; got++) {
		if (s->raw != NULL) {
			zmq_msg_t m;
			int more = 1;
			while (more) {
				if (wait_in(s->raw, RECV_MS) != 0) {
					return -1;
				}
				zmq_msg_init(&m);
				zmq_msg_recv(&m, s->raw, 0);
				more = zmq_msg_more(&m);
				zmq_msg_close(&m);
			}
		} else {
			fmi_rmsg r;
			if (fmi_tran_recv(s->t, &r, RECV_MS, NULL) != FM_OK) {
				return -1;
			}
			fmi_rmsg_close(&r);
		}
	}
	collect_fds(s);
	return 0;
}

static int
send_model(server *s, int k, uint32_t round)
{
	char peer[16];
	snprintf(peer, sizeof peer, "c%d", k);
	if (s->raw != NULL) {
		return raw_send(s->raw, peer, s->b->model->data,
		    s->b->model->len);
	}
	fmi_msg m = { .type = FMI_MSG_TRAIN, .round = round, .to = k,
		.epochs = 1, .batch = 32, .lr = 0.05f, .seed = round,
		.n = s->b->dim };
	return fmi_tran_send(s->t, peer, &m, s->b->model) == FM_OK ? 0 : -1;
}

/* The server's checks on an update (see srv_check in node/server.c). */
static int
check_update(server *s, fmi_rmsg *r, uint32_t round, char *answered)
{
	fm_error e;
	int k = r->m.from;
	char want[16];
	if (k < 0 || k >= s->b->nclients) {
		return -1;
	}
	snprintf(want, sizeof want, "c%d", k);
	if (r->m.type != FMI_MSG_UPDATE || r->m.round != round ||
	    strcmp(r->peer, want) != 0 || answered[k] ||
	    fmi_msg_check_tensor(&r->m, fmi_rmsg_data(r), fmi_rmsg_len(r),
		s->b->dim, &e) != FM_OK) {
		return -1;
	}
	s->misaligned += ((uintptr_t)fmi_rmsg_data(r) & 3) != 0;
	answered[k] = 1;
	return 0;
}

static int
recv_update(server *s, uint32_t round, char *answered)
{
	if (s->raw != NULL) {
		zmq_msg_t m;
		for (int f = 0; f < 2; f++) { /* routing id, payload */
			if (wait_in(s->raw, RECV_MS) != 0) {
				return -1;
			}
			zmq_msg_init(&m);
			zmq_msg_recv(&m, s->raw, 0);
			zmq_msg_close(&m);
		}
		return 0;
	}
	fmi_rmsg r;
	fm_error e;
	if (fmi_tran_recv(s->t, &r, RECV_MS, &e) != FM_OK) {
		fprintf(stderr, "server: %s\n", e.msg);
		return -1;
	}
	int rv = check_update(s, &r, round, answered);
	fmi_rmsg_close(&r);
	return rv;
}

static int
one_round(server *s, uint32_t round)
{
	char answered[MAX_CLIENTS] = { 0 };
	for (int k = 0; k < s->b->nclients; k++) {
		if (send_model(s, k, round) != 0) {
			return -1;
		}
	}
	for (int k = 0; k < s->b->nclients; k++) {
		if (recv_update(s, round, answered) != 0) {
			return -1;
		}
	}
	return 0;
}

static void
server_shutdown(server *s)
{
	for (int k = 0; k < s->b->nclients; k++) {
		char peer[16];
		snprintf(peer, sizeof peer, "c%d", k);
		if (s->raw != NULL) {
			zmq_send(s->raw, peer, strlen(peer), ZMQ_SNDMORE);
			zmq_send(s->raw, "", 0, 0);
		} else {
			fmi_msg m = { .type = FMI_MSG_SHUTDOWN };
			(void)fmi_tran_send(s->t, peer, &m, NULL);
		}
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* A warm-up round, then rounds until target_s has passed (>= 3). */
static int
run_rounds(server *s, double target_s, result *res)
{
	static double times[MAX_ROUNDS];
	if (one_round(s, 0) != 0) {
		return -1;
	}
	double fb0 = frame_bytes(s), tb0 = tcp_bytes(s), start = fmi_now();
	int n = 0;
	while (n < MIN_ROUNDS ||
	    (fmi_now() - start < target_s && n < MAX_ROUNDS)) {
		double t0 = fmi_now();
		if (one_round(s, (uint32_t)n + 1) != 0) {
			return -1;
		}
		times[n++] = fmi_now() - t0;
	}
	qsort(times, (size_t)n, sizeof times[0], cmp_double);
	res->rounds = n;
	res->median_s = n % 2 ? times[n / 2] :
	    (times[n / 2 - 1] + times[n / 2]) / 2;
	res->min_s = times[0];
	res->frame_bytes = (frame_bytes(s) - fb0) / n;
	res->tcp_bytes = (tcp_bytes(s) - tb0) / n;
	res->misaligned = s->misaligned;
	return 0;
}

static void
server_close(server *s)
{
	if (s->mon != NULL) {
		zmq_close(s->mon);
	}
	if (s->raw != NULL) {
		zmq_close(s->raw);
	}
	fmi_tran_close(s->t);
	fmi_zap_stop(s->zap);
	fmi_tran_ctx_free(s->tc);
	zmq_ctx_term(s->zctx);
}

static int
run_config(bench *b, double target_s, result *res)
{
	server s = { .b = b };
	client cl[MAX_CLIENTS];
	fm_error e = { 0, "" };
	int started = 0, rv = -1;
	s.zctx = ctx_new(b);
	atomic_store(&b->failed, 0);
	if (server_open(&s, &e) != FM_OK) {
		fprintf(stderr, "fedmesh-bench-transport: %s\n", e.msg);
		server_close(&s);
		return -1;
	}
	for (; started < b->nclients; started++) {
		cl[started] = (client){ b, started, 0 };
		if (pthread_create(&cl[started].th, NULL, client_main,
			&cl[started]) != 0) {
			break;
		}
	}
	if (started == b->nclients && server_join(&s) == 0) {
		rv = run_rounds(&s, target_s, res);
	}
	server_shutdown(&s);
	for (int i = 0; i < started; i++) {
		pthread_join(cl[i].th, NULL);
	}
	server_close(&s);
	return rv == 0 && !atomic_load(&b->failed) ? 0 : -1;
}

/* ---- main -------------------------------------------------------------- */

typedef struct opts {
	int clients, io_threads;
	double seconds;
	size_t params[8];
	int nparams;
} opts;

static int
parse_params(const char *v, opts *o)
{
	char buf[256], *save = NULL;
	fmi_strlcpy(buf, v, sizeof buf);
	o->nparams = 0;
	for (char *t = strtok_r(buf, ",", &save); t != NULL && o->nparams < 8;
	     t = strtok_r(NULL, ",", &save)) {
		long long x = atoll(t);
		if (x < 1 || x > 500000000LL) {
			return -1;
		}
		o->params[o->nparams++] = (size_t)x;
	}
	return o->nparams > 0 ? 0 : -1;
}

/* Options come in pairs: --name value. */
static int
parse(int argc, char **argv, opts *o)
{
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(a, "--clients") == 0) {
			o->clients = atoi(v);
		} else if (strcmp(a, "--seconds") == 0) {
			o->seconds = atof(v);
		} else if (strcmp(a, "--io-threads") == 0) {
			o->io_threads = atoi(v);
		} else if (strcmp(a, "--params") != 0 || parse_params(v, o)) {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (o->clients < 1 || o->clients > MAX_CLIENTS || o->seconds <= 0 ||
	    o->io_threads < 1 || o->io_threads > 16) {
		fputs(usage, stderr);
		return 2;
	}
	return -1;
}

static void
print_result(const bench *b, const result *r, double raw_s, double rawc_s)
{
	double payload = 2.0 * (double)b->nclients * (double)b->dim * 4.0;
	double fb = IS_RAW(b->mode) ? payload : r->frame_bytes;
	printf("{\"bench\":\"transport\",\"mode\":\"%s\",\"params\":%zu,"
	    "\"clients\":%d,\"rounds\":%d,\"s_per_round\":%.4f,"
	    "\"s_min\":%.4f,\"payload_bytes\":%.0f,\"bytes_per_round\":%.0f,"
	    "\"bytes_ratio\":%.5f,\"tcp_bytes_per_round\":%.0f,"
	    "\"tcp_bytes_ratio\":%.5f,\"time_ratio_vs_raw\":%.3f,"
	    "\"time_ratio_vs_raw_curve\":%.3f,"
	    "\"misaligned_updates\":%d}\n", mode_names[b->mode], b->dim,
	    b->nclients, r->rounds, r->median_s, r->min_s, payload, fb,
	    fb / payload, r->tcp_bytes, r->tcp_bytes / payload,
	    raw_s > 0 ? r->median_s / raw_s : 0.0,
	    rawc_s > 0 ? r->median_s / rawc_s : 0.0, r->misaligned);
	fflush(stdout);
}

static void
print_summary(const opts *o, double ratio[][NMODES], double cc,
    double max_bytes)
{
	int last = o->nparams - 1;
	double p = ratio[last][MODE_PLAIN], c = ratio[last][MODE_CURVE];
	printf("{\"bench\":\"transport_summary\",\"largest_params\":%zu,"
	    "\"max_tcp_bytes_ratio\":%.5f,\"bytes_goal\":1.02,"
	    "\"bytes_ok\":%s,\"plain_time_ratio\":%.3f,\"curve_time_ratio\":"
	    "%.3f,\"curve_time_ratio_vs_raw_curve\":%.3f,\"time_goal\":1.3,"
	    "\"plain_time_ok\":%s,\"curve_time_ok\":%s}\n",
	    o->params[last], max_bytes, max_bytes <= 1.02 ? "true" : "false",
	    p, c, cc, p <= 1.3 ? "true" : "false",
	    c <= 1.3 ? "true" : "false");
}

static int
run_all(bench *b, const opts *o)
{
	double ratio[8][NMODES], max_bytes = 0, cc = 0;
	for (int i = 0; i < o->nparams; i++) {
		double raw_s = 0, rawc_s = 0;
		b->dim = o->params[i];
		b->model = payload_filled(b->dim, 1e-4f);
		for (int mode = 0; mode < NMODES && b->model != NULL; mode++) {
			result r;
			b->mode = mode;
			if (run_config(b, o->seconds, &r) != 0) {
				fprintf(stderr, "fedmesh-bench-transport: %s with "
				    "%zu parameters failed\n", mode_names[mode],
				    b->dim);
				fmi_payload_unref(b->model);
				return 1;
			}
			raw_s = mode == MODE_RAW ? r.median_s : raw_s;
			rawc_s = mode == MODE_RAW_CURVE ? r.median_s : rawc_s;
			ratio[i][mode] = r.median_s / raw_s;
			cc = mode == MODE_CURVE ? r.median_s / rawc_s : cc;
			double payload = 2.0 * b->nclients * (double)b->dim * 4;
			max_bytes = FMI_MAX(max_bytes, r.tcp_bytes / payload);
			print_result(b, &r, raw_s, rawc_s);
		}
		fmi_payload_unref(b->model);
	}
	print_summary(o, ratio, cc, max_bytes);
	return 0;
}

int
main(int argc, char **argv)
{
	opts o = { 10, 1, 3.0, { 200000, 2000000, 20000000 }, 3 };
	int rv = parse(argc, argv, &o);
	if (rv >= 0) {
		return rv;
	}
	static bench b;
	b.nclients = o.clients;
	b.io_threads = o.io_threads;
	fm_error e;
	int ok = fmi_keygen(&b.server_kp, &e) == FM_OK;
	for (int i = 0; ok && i < o.clients; i++) {
		ok = fmi_keygen(&b.client_kp[i], &e) == FM_OK;
	}
	if (!ok) {
		fprintf(stderr, "fedmesh-bench-transport: %s\n", e.msg);
		return 1;
	}
	return run_all(&b, &o);
}
