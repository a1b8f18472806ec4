/* SPDX-License-Identifier: MIT */
/*
 * tcp_input_test.c: a deployed server on real TCP sockets keeps serving
 * its honest client host while a hostile peer sends every kind of bad
 * input; each is logged with its reason and dropped, and the run ends with
 * the very model of a clean simulation.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zmq.h> /* a raw client sends what the transport would refuse */

#include "core/core.h"
#include "node/fed_fixture.h"

typedef struct fixture {
	fed_fixture fx;
	fmi_fed_cfg cfg;
	fmi_deploy_cfg dep;
	char names[1][FMI_NODE_NAME_MAX + 1];
	int port;
} fixture;

static atomic_int stop_rogue;

/* Counts log lines by the reason they give. */
typedef struct reasons {
	atomic_int wire, version, oversize, round, size, nan, inf, sender;
} reasons;

static void
count_sink(void *ud, int level, const char *id, const char *line)
{
	reasons *c = ud;
	(void)level;
	if (strcmp(id, "FM-WIRE") == 0) {
		atomic_fetch_add(&c->wire, 1);
		atomic_fetch_add(&c->version, strstr(line, "version") != NULL);
		atomic_fetch_add(&c->oversize, strstr(line, "4096") != NULL);
	} else if (strcmp(id, "FM-ROUND") == 0) {
		atomic_fetch_add(&c->round, 1);
	} else if (strcmp(id, "FM-UPDATE") == 0) {
		atomic_fetch_add(&c->size, strstr(line, "floats") != NULL);
		atomic_fetch_add(&c->nan, strstr(line, "NaN") != NULL);
		atomic_fetch_add(&c->inf, strstr(line, "Inf") != NULL);
	} else if (strcmp(id, "FM-SENDER") == 0) {
		atomic_fetch_add(&c->sender, 1);
	}
}

static int
setup(void **state)
{
	static const uint32_t w[] = { 60, 256, 10 }; /* rounds long enough
	                                               * to overlap */
	fixture *f = calloc(1, sizeof *f);
	fed_fixture_open(&f->fx, 10, 150, 5, w, 3);
	f->cfg = f->fx.cfg;
	f->cfg.rounds = 5;
	f->cfg.clients_per_round = 5;
	f->cfg.seed = 3;
	f->cfg.local = (fmi_local_cfg) { .epochs = 5, .batch = 10,
		.opt = { 0.05f, 0, 0 } };
	f->port = 30000 + (int)(getpid() % 20000);
	snprintf(f->names[0], sizeof f->names[0], "c1");
	snprintf(f->dep.transport, sizeof f->dep.transport, "tcp");
	snprintf(f->dep.server, sizeof f->dep.server, "127.0.0.1:%d", f->port);
	snprintf(f->dep.server_name, sizeof f->dep.server_name, "server");
	f->dep.clients = f->names;
	f->dep.nclients = 1;
	f->dep.join_timeout = 30;
	f->dep.idle_timeout = 60;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	fed_fixture_close(&f->fx);
	free(f);
	return 0;
}

static reasons *heard; /* the counts of the run in progress */

/* The honest host joins only once the server has logged some of the
 * rogue's junk (bounded at 30 s): under load the five rounds could
 * otherwise end before any of it arrived, and nothing would be tested. */
static void *
honest_main(void *p)
{
	fixture *f = p;
	fm_error e;
	for (int k = 0; k < 3000 && atomic_load(&heard->wire) == 0; k++) {
		usleep(10000);
	}
	(void)fmi_deploy_run_client(&f->cfg, &f->dep, "c1", &e);
	return NULL;
}

/* ---- the hostile peer ---------------------------------------------------- */

static void
send_update(void *sock, uint32_t v, uint32_t round, int32_t from, uint64_t n,
    float fill, size_t floats)
{
	fmi_msg m = { .type = FMI_MSG_UPDATE, .round = round, .from = from,
		.num_examples = 100, .n = n };
	uint8_t hdr[FMI_WIRE_MAX_HEADER];
	size_t hlen;
	assert_int_equal(fmi_msg_encode(&m, hdr, sizeof hdr, &hlen), FM_OK);
	if (v != FMI_WIRE_VERSION) {
		hdr[3] = (uint8_t)v; /* first key: fixmap, fixstr "v", value */
	}
	float *x = calloc(floats + 1, sizeof *x);
	for (size_t i = 0; i < floats; i++) {
		x[i] = fill;
	}
	zmq_send(sock, hdr, hlen, ZMQ_SNDMORE);
	zmq_send(sock, x, floats * sizeof *x, 0);
	free(x);
}

/* One burst of every kind of bad input. */
static void
burst(void *sock, fm_rng *r, uint32_t round, size_t dim)
{
	uint8_t junk[512];
	for (size_t i = 0; i < sizeof junk; i++) {
		junk[i] = (uint8_t)fmi_rng_u64(r);
	}
	zmq_send(sock, junk, 1 + fmi_rng_below(r, sizeof junk), 0); /* random */
	zmq_send(sock, "\x8a\xa1v\x01\xa1t", 6, 0);              /* truncated */
	send_update(sock, 9, round, 1, dim, 0.1f, dim);          /* version */
	send_update(sock, 1, round, 1, dim + 1, 0.1f, dim + 1);  /* size */
	send_update(sock, 1, round, 1, dim, NAN, dim);           /* NaN */
	send_update(sock, 1, round, 1, dim, INFINITY, dim);      /* Inf */
	send_update(sock, 1, round > 1 ? round - 1 : 0, 1, dim, 0.1f, dim);
	send_update(sock, 1, round, 1, dim, 0.1f, dim);          /* not its host */
	char *big = calloc(FMI_WIRE_MAX_HEADER + 100, 1);
	big[0] = (char)0xde; /* map16 with a huge header */
	zmq_send(sock, big, FMI_WIRE_MAX_HEADER + 100, 0);       /* oversized */
	free(big);
}

/* A TCP connection that never completes its handshake. */
static int
silent_connection(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
		(void)write(fd, "\xff\x00", 2); /* half a greeting, then silence */
	}
	return fd;
}

static void *
rogue_main(void *p)
{
	fixture *f = p;
	char url[64];
	void *zctx = zmq_ctx_new();
	void *sock = zmq_socket(zctx, ZMQ_DEALER);
	fm_rng r;
	int linger = 0;
	fmi_rng_seed(&r, 77, 0);
	zmq_setsockopt(sock, ZMQ_ROUTING_ID, "mallory", 7);
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", f->port);
	zmq_connect(sock, url);
	int silent = silent_connection(f->port);
	for (int k = 0; k < 2000 && !atomic_load(&stop_rogue); k++) {
		for (uint32_t round = 1; round <= f->cfg.rounds; round++) {
			burst(sock, &r, round, f->cfg.arch.nparams);
		}
		usleep(5000);
	}
	if (silent >= 0) {
		close(silent);
	}
	zmq_close(sock);
	zmq_ctx_term(zctx);
	return NULL;
}

static void
test_bad_input_over_tcp(void **state)
{
	fixture *f = *state;
	fmi_fed_result clean, attacked;
	fm_error e;
	reasons cnt;
	pthread_t honest, rogue;

	FMT_PASS(fmi_fed_simulate(&f->cfg, &clean, &e));
	fm_log_set_level(FM_LOG_WARN);
	memset(&cnt, 0, sizeof cnt);
	heard = &cnt;
	fm_log_set_sink(count_sink, &cnt);
	atomic_store(&stop_rogue, 0);
	pthread_create(&rogue, NULL, rogue_main, f);
	pthread_create(&honest, NULL, honest_main, f);
	int rv = fmi_deploy_run_server(&f->cfg, &f->dep, &attacked, &e);
	atomic_store(&stop_rogue, 1);
	pthread_join(honest, NULL);
	pthread_join(rogue, NULL);
	fm_log_set_sink(NULL, NULL);
	FMT_PASS(rv);
	assert_int_equal(attacked.nrounds, f->cfg.rounds);
	for (uint32_t i = 0; i < attacked.nrounds; i++) {
		assert_int_equal(attacked.rounds[i].updates, 5);
		assert_true(attacked.rounds[i].accuracy == clean.rounds[i].accuracy);
	}
	assert_memory_equal(attacked.params, clean.params,
	    clean.nparams * sizeof(float));
	/* each kind of bad input was logged with its reason */
	assert_true(atomic_load(&cnt.wire) > 0);
	assert_true(atomic_load(&cnt.version) > 0);
	assert_true(atomic_load(&cnt.oversize) > 0);
	assert_true(atomic_load(&cnt.round) > 0);
	assert_true(atomic_load(&cnt.size) > 0);
	assert_true(atomic_load(&cnt.nan) > 0);
	assert_true(atomic_load(&cnt.inf) > 0);
	assert_true(atomic_load(&cnt.sender) > 0);
	fmi_fed_result_free(&clean);
	fmi_fed_result_free(&attacked);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_input_over_tcp, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
