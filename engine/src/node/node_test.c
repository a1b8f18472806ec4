/* SPDX-License-Identifier: MIT */
/* node_test.c: the star round under hostile input, dropouts and quorum. */
#define _DEFAULT_SOURCE /* usleep */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <zmq.h> /* the rogue sends raw frames the transport would refuse */

#include "core/core.h"
#include "node/fed_fixture.h"
#include "transports/zmq/zmq_transport.h"

typedef fed_fixture fixture;

static int
setup(void **state)
{
	static const uint32_t w[] = { 60, 10 };
	fixture *f = calloc(1, sizeof *f);
	fed_fixture_open(f, 12, 200, 4, w, 2);
	f->cfg.rounds = 4;
	f->cfg.clients_per_round = 6;
	f->cfg.local = (fmi_local_cfg) { .epochs = 2, .batch = 10,
		.opt = { 0.05f, 0, 0 } };
	f->cfg.seed = 9;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fed_fixture_close(*state);
	free(*state);
	return 0;
}

/* ---- a hand-wired federation: server + named hosts on one URL -------- */

typedef struct host_arg {
	fmi_tran_ctx *zctx;
	const fmi_fed_cfg *cfg;
	const char *name;
	int mode; /* 0 honest, 1 ghost (hello, then silence), 2 rogue */
	atomic_int *sent; /* the rogue sets it after its first batch */
} host_arg;

static void
rogue_send(fmi_tran *t, uint32_t round, int32_t from, uint64_t n,
    float fill, size_t bytes)
{
	fmi_msg m = { .type = FMI_MSG_UPDATE, .round = round, .from = from,
		.num_examples = 1000000, .n = n };
	float *buf = calloc(bytes / 4 + 1, sizeof(float));
	for (size_t i = 0; i < bytes / 4; i++) {
		buf[i] = fill;
	}
	(void)fmi_tran_send_bytes(t, NULL, &m, buf, bytes);
	free(buf);
}

/* Bad input of every kind, for every client and round it can guess,
 * until the server says shutdown (bounded). */
static void
rogue(fmi_tran *t, const fmi_fed_cfg *cfg, atomic_int *sent)
{
	void *raw = fmi_tran_zmq_socket(t);
	size_t dim = cfg->arch.nparams;
	for (int k = 0; k < 5000; k++) {
		uint32_t round = 1 + (uint32_t)k % cfg->rounds;
		int32_t c = 1 + k % (int32_t)cfg->part->nclients;
		zmq_send(raw, "\x93\x01\x02", 3, 0);          /* not a map */
		zmq_send(raw, "\xde\xff\xff", 3, 0);          /* truncated */
		rogue_send(t, round, c, dim, 0.5f, dim * 4);   /* wrong sender */
		rogue_send(t, round, c, dim - 1, 0.5f, dim * 4 - 4); /* size */
		rogue_send(t, round, c, dim, NAN, dim * 4);    /* NaN */
		rogue_send(t, round, c, dim, INFINITY, dim * 4); /* Inf */
		rogue_send(t, 0, c, dim, 0.5f, dim * 4);       /* stale round */
		rogue_send(t, round, 999, dim, 0.5f, dim * 4); /* no such client */
		atomic_store(sent, 1);
		fmi_rmsg r;
		if (fmi_tran_recv(t, &r, 1, NULL) == FM_OK) {
			uint32_t ty = r.m.type;
			fmi_rmsg_close(&r);
			if (ty == FMI_MSG_SHUTDOWN) {
				return;
			}
		}
	}
}

static void *
host_main(void *p)
{
	host_arg *a = p;
	fmi_tran *t;
	fm_error e;
	if (fmi_tran_dial(&t, a->zctx, "inproc://node-test", a->name, &e) !=
	    FM_OK) {
		return NULL;
	}
	if (a->mode == 0) {
		(void)fmi_client_host_run(a->cfg, t, a->name, NULL, &e);
	} else {
		fmi_msg hello = { .type = FMI_MSG_HELLO, .from = -1 };
		(void)fmi_tran_send(t, NULL, &hello, NULL);
		if (a->mode == 2) {
			rogue(t, a->cfg, a->sent);
		}
		while (a->mode == 1) { /* ignore everything until shutdown */
			fmi_rmsg r;
			if (fmi_tran_recv(t, &r, 100, NULL) == FM_OK) {
				uint32_t ty = r.m.type;
				fmi_rmsg_close(&r);
				if (ty == FMI_MSG_SHUTDOWN) {
					break;
				}
			}
		}
	}
	fmi_tran_close(t);
	return NULL;
}

/* Runs the server with the named hosts; modes[i] for each. */
static int
run_wired(const fmi_fed_cfg *cfg, const char **names, const int *modes,
    uint32_t n, fmi_fed_result *res)
{
	fmi_tran_ctx *zctx;
	fmi_tran *srv;
	fm_error e;
	FMT_PASS(fmi_tran_ctx_new(&zctx, NULL, &e));
	pthread_t th[4];
	host_arg args[4];
	char(*hn)[FMI_PEER_MAX + 1] = calloc(n, sizeof *hn);
	FMT_PASS(fmi_tran_listen(&srv, zctx, "inproc://node-test", &e));
	uint32_t nserved = 0;
	atomic_int sent = 0;
	for (uint32_t i = 0; i < n; i++) {
		args[i] = (host_arg) { zctx, cfg, names[i], modes[i], &sent };
		pthread_create(&th[i], NULL, host_main, &args[i]);
		if (modes[i] != 2) { /* the rogue is no host of the server's */
			snprintf(hn[nserved++], FMI_PEER_MAX + 1, "%s", names[i]);
		}
	}
	/* A rogue's first batch is queued at the server before it starts
	 * (on a loaded machine the run could otherwise end before the rogue
	 * thread ran at all); bounded at 30 s. */
	for (int k = 0; modes[n - 1] == 2 && !atomic_load(&sent) && k < 3000;
	    k++) {
		usleep(10000);
	}
	fmi_server_hosts hosts = { hn, nserved, 0, 0, 0, NULL, 0, 0 };
	fmi_blas_set_threads(1);
	int rv = fmi_server_run(cfg, srv, &hosts, res, &e);
	if (modes[n - 1] == 2) { /* release the rogue */
		fmi_msg m = { .type = FMI_MSG_SHUTDOWN, .to = -1 };
		(void)fmi_tran_send(srv, names[n - 1], &m, NULL);
	}
	for (uint32_t i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
	}
	fmi_tran_close(srv);
	fmi_tran_ctx_free(zctx);
	free(hn);
	return rv;
}

static void
test_hostile_input_changes_nothing(void **state)
{
	fixture *f = *state;
	fmi_fed_result clean, attacked;
	fm_error e;
	fmt_logcap cap = { .n = 0 };
	FMT_PASS(fmi_fed_simulate(&f->cfg, &clean, &e));

	const char *names[] = { "worker-0", "rogue" };
	const int modes[] = { 0, 2 };
	fm_log_set_sink(fmt_logcap_sink, &cap);
	FMT_PASS(run_wired(&f->cfg, names, modes, 2, &attacked));
	fm_log_set_sink(NULL, NULL);
	assert_int_equal(attacked.nrounds, f->cfg.rounds);
	for (uint32_t r = 0; r < f->cfg.rounds; r++) {
		assert_int_equal(attacked.rounds[r].updates, 6);
		assert_true(attacked.rounds[r].accuracy == clean.rounds[r].accuracy);
	}
	/* the very same model, bit for bit */
	assert_memory_equal(attacked.params, clean.params,
	    clean.nparams * sizeof(float));
	/* and each kind of bad input was logged with its reason */
	assert_true(fmt_logcap_find(&cap, "FM-WIRE") >= 0);
	fmi_fed_result_free(&clean);
	fmi_fed_result_free(&attacked);
}

static void
test_dropouts_complete_the_round(void **state)
{
	fixture *f = *state;
	fmi_fed_result res;
	/* The ghost never answers, so every round lasts the whole deadline;
	 * it must be long enough for the honest host even on a loaded
	 * machine (nothing here depends on how fast that is). */
	f->cfg.rounds = 3;
	f->cfg.round_timeout_ms = 2500;
	f->cfg.min_updates = 1;
	const char *names[] = { "worker-0", "ghost" };
	const int modes[] = { 0, 1 };
	FMT_PASS(run_wired(&f->cfg, names, modes, 2, &res));
	assert_int_equal(res.nrounds, f->cfg.rounds);
	for (uint32_t r = 0; r < res.nrounds; r++) {
		const fmi_round_metrics *m = &res.rounds[r];
		assert_true(m->updates > 0 && m->dropped > 0);
		assert_int_equal(m->updates + m->dropped, 6);
		assert_true(m->evaluated);
	}
	assert_true(res.rounds[2].accuracy > 0.15); /* still learning */
	fmi_fed_result_free(&res);
}

static void
test_quorum_keeps_the_model(void **state)
{
	fixture *f = *state;
	fmi_fed_result res;
	f->cfg.round_timeout_ms = 200;
	f->cfg.min_updates = 6; /* impossible with a ghost host */
	f->cfg.rounds = 2;
	const char *names[] = { "worker-0", "ghost" };
	const int modes[] = { 0, 1 };
	/* no round aggregated: an error, not a result (the run's rows and
	 * its untouched model are still there to look at) */
	assert_int_equal(run_wired(&f->cfg, names, modes, 2, &res), FM_EINVAL);
	assert_int_equal(res.nrounds, 2);
	float *init = malloc(res.nparams * sizeof(float));
	fm_rng r;
	fmi_rng_seed(&r, f->cfg.seed, 0x696e6974);
	fmi_arch_init_params(&f->cfg.arch, init, &r);
	assert_memory_equal(res.params, init, res.nparams * sizeof(float));
	fmi_fed_result_free(&res);

	/* a stateful rule is not finished for such a round: SCAFFOLD's c
	 * does not move (no round_end, so no scaffold_c_norm either) */
	f->cfg.rule = fmi_registry_find(f->reg, FM_KIND_LOCAL, "scaffold");
	assert_non_null(f->cfg.rule);
	fm_value lr = { 1.0, NULL };
	f->cfg.rule_params = &lr;
	assert_int_equal(run_wired(&f->cfg, names, modes, 2, &res), FM_EINVAL);
	assert_memory_equal(res.params, init, res.nparams * sizeof(float));
	for (uint32_t k = 0; k < res.nrounds; k++) {
		assert_true(res.rounds[k].updates > 0); /* some came, too few */
		for (uint32_t m = 0; m < res.rounds[k].nextra; m++) {
			assert_string_not_equal(res.rounds[k].extra[m].name,
			    "scaffold_c_norm");
		}
	}
	free(init);
	fmi_fed_result_free(&res);
	f->cfg.rule = NULL;
	f->cfg.rule_params = NULL;
}

static void
test_validate(void **state)
{
	fixture *f = *state;
	fm_error e;
	fmi_fed_cfg c = f->cfg;
	c.clients_per_round = 13;
	FMT_FAIL(fmi_fed_validate(&c, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "clients_per_round"));
	c = f->cfg;
	c.arch.widths[0] = 61;
	FMT_FAIL(fmi_fed_validate(&c, &e), FM_EINVAL);
	c = f->cfg;
	c.min_updates = 7;
	FMT_FAIL(fmi_fed_validate(&c, &e), FM_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hostile_input_changes_nothing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropouts_complete_the_round,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_quorum_keeps_the_model,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
