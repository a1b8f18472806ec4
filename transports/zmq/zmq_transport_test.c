/* SPDX-License-Identifier: MIT */
/* zmq_transport_test.c: round trips, zero-copy payloads, malformed input. */
#include <zmq.h>

#include "fm_test.h"

#include "core/core.h"
#include "transports/transport.h"
#include "transports/zmq/zmq_transport.h"

typedef struct pair {
	void *zctx;
	fmi_tran_ctx *tc;
	fmi_tran *srv, *cli;
} pair;

static int
pair_setup(void **state)
{
	static int n;
	char url[64];
	pair *p = calloc(1, sizeof *p);
	p->zctx = zmq_ctx_new();
	FMT_PASS(fmi_tran_zmq_wrap(&p->tc, p->zctx, NULL));
	snprintf(url, sizeof url, "inproc://tran-test-%d", n++);
	FMT_PASS(fmi_tran_listen(&p->srv, p->tc, url, NULL));
	FMT_PASS(fmi_tran_dial(&p->cli, p->tc, url, "alice", NULL));
	*state = p;
	return 0;
}

static int
pair_teardown(void **state)
{
	pair *p = *state;
	fmi_tran_close(p->cli);
	fmi_tran_close(p->srv);
	fmi_tran_ctx_free(p->tc);
	zmq_ctx_term(p->zctx);
	free(p);
	return 0;
}

static void
hello(fmi_msg *m, uint32_t type)
{
	memset(m, 0, sizeof *m);
	m->type = type;
	m->round = 3;
	m->from = 1;
}

static void
test_round_trip_payload(void **state)
{
	pair *p = *state;
	fmi_msg m;
	fmi_rmsg r;
	hello(&m, FMI_MSG_UPDATE);
	m.num_examples = 10;
	m.n = 4;
	fmi_payload *pl = fmi_payload_new(16);
	float v[4] = { 1, 2, 3, 4 };
	memcpy(pl->data, v, 16);
	FMT_PASS(fmi_tran_send(p->cli, NULL, &m, pl));
	fmi_payload_unref(pl);
	FMT_PASS(fmi_tran_recv(p->srv, &r, 1000, NULL));
	assert_string_equal(r.peer, "alice");
	assert_int_equal(r.m.type, FMI_MSG_UPDATE);
	assert_int_equal(r.m.round, 3);
	assert_int_equal(fmi_rmsg_len(&r), 16);
	assert_memory_equal(fmi_rmsg_data(&r), v, 16);
	fmi_rmsg_close(&r);
	/* and back, addressed by identity */
	hello(&m, FMI_MSG_ROUND_END);
	FMT_PASS(fmi_tran_send(p->srv, "alice", &m, NULL));
	FMT_PASS(fmi_tran_recv(p->cli, &r, 1000, NULL));
	assert_int_equal(r.m.type, FMI_MSG_ROUND_END);
	assert_false(r.has_payload);
	fmi_tran_stats st;
	fmi_tran_get_stats(p->cli, &st);
	assert_true(st.bytes_sent > 16);
	assert_int_equal(st.msgs_sent, 1);
}

static void
test_zero_copy_inproc(void **state)
{
	pair *p = *state;
	fmi_msg m;
	fmi_rmsg r;
	hello(&m, FMI_MSG_TRAIN);
	m.epochs = 1;
	m.batch = 1;
	m.n = 256;
	fmi_payload *pl = fmi_payload_new(1024);
	memset(pl->data, 0, 1024);
	FMT_PASS(fmi_tran_send(p->srv, "alice", &m, pl));
	FMT_PASS(fmi_tran_recv(p->cli, &r, 1000, NULL));
	/* inproc hands over the very buffer: no copy was made */
	assert_ptr_equal(fmi_rmsg_data(&r), pl->data);
	assert_int_equal(atomic_load(&pl->refs), 2);
	fmi_rmsg_close(&r);
	assert_int_equal(atomic_load(&pl->refs), 1);
	fmi_payload_unref(pl);
}

static void
test_unknown_peer(void **state)
{
	pair *p = *state;
	fmi_msg m;
	hello(&m, FMI_MSG_ROUND_END);
	FMT_FAIL(fmi_tran_send(p->srv, "nobody", &m, NULL), FM_ENOENT);
}

static void
test_malformed_is_dropped(void **state)
{
	pair *p = *state;
	fm_error e;
	fmi_rmsg r;
	fmt_logcap cap = { .n = 0 };
	fm_log_set_sink(fmt_logcap_sink, &cap);
	/* garbage header, then three frames, then a good message */
	void *raw = fmi_tran_zmq_socket(p->cli);
	zmq_send(raw, "\xc1\xc1garbage", 9, 0);
	zmq_send(raw, "a", 1, ZMQ_SNDMORE);
	zmq_send(raw, "b", 1, ZMQ_SNDMORE);
	zmq_send(raw, "c", 1, 0);
	fmi_msg m;
	hello(&m, FMI_MSG_HEARTBEAT);
	FMT_PASS(fmi_tran_send(p->cli, NULL, &m, NULL));
	assert_int_not_equal(fmi_tran_recv(p->srv, &r, 1000, &e), FM_OK);
	assert_true(strlen(e.msg) > 0);
	assert_int_not_equal(fmi_tran_recv(p->srv, &r, 1000, &e), FM_OK);
	FMT_PASS(fmi_tran_recv(p->srv, &r, 1000, &e));
	assert_int_equal(r.m.type, FMI_MSG_HEARTBEAT);
	fm_log_set_sink(NULL, NULL);
	assert_true(fmt_logcap_find(&cap, "FM-WIRE") >= 0);
	fmi_tran_stats st;
	fmi_tran_get_stats(p->srv, &st);
	assert_int_equal(st.msgs_dropped, 2);
}

static void
test_timeout(void **state)
{
	pair *p = *state;
	fmi_rmsg r;
	FMT_FAIL(fmi_tran_recv(p->srv, &r, 10, NULL), FM_ETIMEDOUT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_payload,
		    pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_zero_copy_inproc,
		    pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_peer, pair_setup,
		    pair_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_is_dropped,
		    pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_timeout, pair_setup,
		    pair_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
