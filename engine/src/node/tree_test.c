/* SPDX-License-Identifier: MIT */
/* tree_test.c: hierarchies deployed as a tree of processes, in one process:
 * the root, every edge aggregator (edge.c) and every client host run as
 * threads over inproc://, exactly the nodes `fedmesh launch` starts. Their
 * rounds must equal the simulation's bit for bit (every metric, every
 * client's outcome, the model), for FedAvg edges under another root
 * aggregator, three levels, a defence, simulated faults with a quorum and
 * SCAFFOLD (whose edges talk to their clients). Then what edges and the
 * root do with each other's bad messages and with an edge that is gone. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core/core.h"
#include "node/fed_fixture.h"

typedef fed_fixture fixture;

#define RIG_MAX 32

typedef struct rig rig;

typedef struct rig_edge {
	rig *g;
	uint32_t j;
	pthread_t th;
	int started;
	int rv;
	fm_error err;
} rig_edge;

typedef struct rig_host {
	rig *g;
	uint32_t i;
	pthread_t th;
	int started;
} rig_host;

/* The nodes of one deployment: client host i holds client i, so host i
 * belongs to edge i / fanout. */
struct rig {
	const fmi_fed_cfg *cfg;
	fmi_tran_ctx *tc;
	uint32_t nedges, nhosts, fan;
	char root_url[64];
	char edge_url[RIG_MAX][64];
	char edge_name[RIG_MAX][FMI_PEER_MAX + 1];
	rig_edge edges[RIG_MAX];
	rig_host hosts[RIG_MAX];
	uint32_t skip_edge; /* 1-based: this edge never starts */
};

static void *
edge_main(void *arg)
{
	rig_edge *re = arg;
	rig *g = re->g;
	fmi_tran *clients = NULL, *up = NULL;
	char (*names)[FMI_PEER_MAX + 1] = calloc(g->fan, sizeof *names);
	uint32_t *ids = calloc(g->fan, sizeof *ids);
	assert_non_null(names);
	assert_non_null(ids);
	for (uint32_t k = 0; k < g->fan; k++) {
		ids[k] = re->j * g->fan + k;
		snprintf(names[k], sizeof names[k], "h%u", ids[k] + 1);
	}
	fmi_server_hosts hosts = { .names = names, .n = g->fan, .pinned = 1,
	    .join_timeout = 10 };
	fmi_edge_opts o = { 50, 0, 5, g->nhosts, ids };
	re->rv = fmi_tran_listen(&clients, g->tc, g->edge_url[re->j], &re->err);
	if (re->rv == FM_OK) {
		re->rv = fmi_tran_dial(&up, g->tc, g->root_url,
		    g->edge_name[re->j], &re->err);
	}
	if (re->rv == FM_OK) {
		re->rv = fmi_edge_run(g->cfg, clients, &hosts, up,
		    g->edge_name[re->j], re->j, &o, &re->err);
	}
	fmi_tran_close(up);
	fmi_tran_close(clients);
	free(names);
	free(ids);
	return NULL;
}

static void *
host_main(void *arg)
{
	rig_host *rh = arg;
	rig *g = rh->g;
	fmi_tran *t = NULL;
	fm_error e;
	char name[16];
	snprintf(name, sizeof name, "h%u", rh->i + 1);
	if (fmi_tran_dial(&t, g->tc, g->edge_url[rh->i / g->fan], name, &e) ==
	    FM_OK) {
		fmi_client_opts o = { 0 };
		(void)fmi_client_host_run(g->cfg, t, name, &o, &e);
	}
	fmi_tran_close(t);
	return NULL;
}

static atomic_uint rig_counter;

/* Starts the edges and client hosts of cfg on their own threads (edge
 * skip, 1-based, and its hosts do not start; with only, just that edge
 * and its hosts do), and listens as their root. */
static rig *
rig_open(const fmi_fed_cfg *cfg, uint32_t skip, uint32_t only,
    fmi_tran **root, char (**names)[FMI_PEER_MAX + 1])
{
	fm_error e;
	rig *g = calloc(1, sizeof *g);
	assert_non_null(g);
	uint32_t levels = fmi_fed_levels(cfg);
	g->cfg = cfg;
	g->fan = fmi_fed_fanout(cfg, levels - 1);
	g->nhosts = cfg->part->nclients;
	g->nedges = g->nhosts / g->fan;
	g->skip_edge = skip;
	assert_true(g->nhosts <= RIG_MAX && g->nedges <= RIG_MAX);
	uint32_t id = atomic_fetch_add(&rig_counter, 1);
	snprintf(g->root_url, sizeof g->root_url, "inproc://tree-%u-root", id);
	*names = calloc(g->nedges, sizeof **names);
	assert_non_null(*names);
	for (uint32_t j = 0; j < g->nedges; j++) {
		snprintf(g->edge_url[j], sizeof g->edge_url[j],
		    "inproc://tree-%u-e%u", id, j + 1);
		snprintf(g->edge_name[j], sizeof g->edge_name[j], "e%u", j + 1);
		memcpy((*names)[j], g->edge_name[j], sizeof (*names)[j]);
	}
	FMT_PASS(fmi_tran_ctx_new(&g->tc, NULL, &e));
	FMT_PASS(fmi_tran_listen(root, g->tc, g->root_url, &e));
	for (uint32_t j = 0; j < g->nedges; j++) {
		g->edges[j].g = g;
		g->edges[j].j = j;
		if (j + 1 != skip && (only == 0 || j + 1 == only)) {
			assert_int_equal(pthread_create(&g->edges[j].th, NULL,
			    edge_main, &g->edges[j]), 0);
			g->edges[j].started = 1;
		}
	}
	for (uint32_t i = 0; i < g->nhosts; i++) {
		uint32_t j = i / g->fan + 1;
		g->hosts[i].g = g;
		g->hosts[i].i = i;
		if (j != skip && (only == 0 || j == only)) {
			assert_int_equal(pthread_create(&g->hosts[i].th, NULL,
			    host_main, &g->hosts[i]), 0);
			g->hosts[i].started = 1;
		}
	}
	return g;
}

/* Joins the threads; every edge must have ended well. */
static void
rig_close(rig *g, fmi_tran *root, char (*names)[FMI_PEER_MAX + 1])
{
	for (uint32_t j = 0; j < g->nedges; j++) {
		if (g->edges[j].started) {
			pthread_join(g->edges[j].th, NULL);
			if (g->edges[j].rv != FM_OK) {
				print_error("edge %u: %s\n", j + 1,
				    g->edges[j].err.msg);
			}
			assert_int_equal(g->edges[j].rv, FM_OK);
		}
	}
	for (uint32_t i = 0; i < g->nhosts; i++) {
		if (g->hosts[i].started) {
			pthread_join(g->hosts[i].th, NULL);
		}
	}
	fmi_tran_close(root);
	fmi_tran_ctx_free(g->tc);
	free(names);
	free(g);
}

/* Runs cfg as a tree of threads: the root here, the edges and hosts on
 * their own threads. */
static int
tree_run(const fmi_fed_cfg *cfg, uint32_t skip_edge, fmi_fed_result *res,
    fm_error *err)
{
	fmi_tran *root = NULL;
	char (*names)[FMI_PEER_MAX + 1] = NULL;
	rig *g = rig_open(cfg, skip_edge, 0, &root, &names);
	fmi_server_hosts hosts = { .names = names, .n = g->nedges, .pinned = 1,
	    .join_timeout = 2, .edges = 1, .edge_timeout = 2 };
	int blas = fmi_blas_get_threads();
	fmi_blas_set_threads(1);
	int rv = fmi_server_run(cfg, root, &hosts, res, err);
	fmi_blas_set_threads(blas);
	rig_close(g, root, names);
	return rv;
}

static int
setup(void **state)
{
	static const uint32_t w[] = { 60, 10 };
	fixture *f = calloc(1, sizeof *f);
	fed_fixture_open(f, 12, 200, 4, w, 2);
	f->cfg.rounds = 6;
	f->cfg.clients_per_round = 5;
	f->cfg.local = (fmi_local_cfg) { .epochs = 2, .batch = 10,
		.opt = { 0.05f, 0, 0 } };
	f->cfg.seed = 9;
	f->cfg.client_detail = 1;
	f->cfg.round_timeout_ms = 20000;
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

static void
set_tree(fmi_fed_cfg *c, const uint32_t *fan, const uint32_t *every,
    uint32_t n)
{
	memset(&c->hier, 0, sizeof c->hier);
	c->hier.levels = n;
	for (uint32_t l = 0; l < n; l++) {
		c->hier.level[l].fanout = fan[l];
		c->hier.level[l].every = every[l];
	}
}

static int
same(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

/* Every metric but traffic and time, every client's outcome, the model. */
static void
assert_same_run(const fmi_fed_result *a, const fmi_fed_result *b)
{
	assert_int_equal(a->nrounds, b->nrounds);
	for (uint32_t r = 0; r < a->nrounds; r++) {
		const fmi_round_metrics *x = &a->rounds[r], *y = &b->rounds[r];
		if (!same(x->accuracy, y->accuracy) || !same(x->loss, y->loss) ||
		    !same(x->train_loss, y->train_loss)) {
			print_error("round %u: accuracy %.17g / %.17g, loss %.17g "
			    "/ %.17g, train_loss %.17g / %.17g\n", r + 1,
			    x->accuracy, y->accuracy, x->loss, y->loss,
			    x->train_loss, y->train_loss);
			fail();
		}
		assert_int_equal(x->sampled, y->sampled);
		assert_int_equal(x->updates, y->updates);
		assert_int_equal(x->dropped, y->dropped);
		assert_int_equal(x->stragglers, y->stragglers);
		assert_int_equal(x->evaluated, y->evaluated);
		assert_int_equal(x->aggregated, y->aggregated);
		assert_true(x->lr == y->lr);
		if (x->nextra != y->nextra) {
			print_error("round %u: %u metrics, %u\n", r + 1, x->nextra,
			    y->nextra);
		}
		assert_int_equal(x->nextra, y->nextra);
		for (uint32_t k = 0; k < x->nextra; k++) {
			assert_string_equal(x->extra[k].name, y->extra[k].name);
			if (!same(x->extra[k].value, y->extra[k].value)) {
				print_error("round %u: %s %.17g / %.17g\n", r + 1,
				    x->extra[k].name, x->extra[k].value,
				    y->extra[k].value);
				fail();
			}
		}
		assert_int_equal(x->nclients, y->nclients);
		for (uint32_t k = 0; k < x->nclients; k++) {
			const fmi_client_detail *p = &x->clients[k],
			                        *q = &y->clients[k];
			assert_int_equal(p->client, q->client);
			assert_int_equal(p->status, q->status);
			assert_true(p->examples == q->examples);
			assert_true(same(p->loss, q->loss));
			assert_true(same(p->norm, q->norm));
			assert_int_equal(p->adversary, q->adversary);
		}
	}
	assert_int_equal(a->nparams, b->nparams);
	assert_memory_equal(a->params, b->params, a->nparams * sizeof(float));
}

static double
extra(const fmi_round_metrics *m, const char *name)
{
	for (uint32_t i = 0; i < m->nextra; i++) {
		if (strcmp(m->extra[i].name, name) == 0) {
			return m->extra[i].value;
		}
	}
	return NAN;
}

static void
run_both(const fmi_fed_cfg *c, fmi_fed_result *sim, fmi_fed_result *tree)
{
	fm_error e;
	FMT_PASS(fmi_fed_simulate(c, sim, &e));
	int rv = tree_run(c, 0, tree, &e);
	if (rv != FM_OK) {
		print_error("tree: %s\n", e.msg);
	}
	FMT_PASS(rv);
	assert_same_run(sim, tree);
}

/* Two levels, FedAvg edges under a FedAdam root that aggregates every 2
 * rounds: the edges drift apart in between. */
static void
test_two_levels_fedadam_root(void **state)
{
	fixture *f = *state;
	fmi_fed_result sim, tree;
	fmi_fed_cfg c = f->cfg;
	const fm_value adam[] = { { 0.01, NULL }, { 0.9, NULL },
		{ 0.99, NULL }, { 1e-3, NULL } };
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 2, 1 }, 2);
	c.hier.level[0].aggregator = fmi_registry_find(f->reg,
	    FM_KIND_AGGREGATOR, "fedadam");
	assert_non_null(c.hier.level[0].aggregator);
	c.hier.level[0].agg_params = adam;
	run_both(&c, &sim, &tree);
	for (uint32_t r = 0; r < c.rounds; r++) {
		int root = (r + 1) % 2 == 0;
		assert_true(extra(&tree.rounds[r], "root_aggregated") == root);
		double div = extra(&tree.rounds[r], "edge_divergence");
		assert_true(root ? div == 0 : div > 1e-4);
	}
	fmi_fed_result_free(&sim);
	fmi_fed_result_free(&tree);
}

/* Three levels: the middle one stays in the root's process. */
static void
test_three_levels_fedavgm(void **state)
{
	fixture *f = *state;
	fmi_fed_result sim, tree;
	fmi_fed_cfg c = f->cfg;
	const fm_value avgm[] = { { 1.0, NULL }, { 0.9, NULL } };
	c.rounds = 8;
	c.clients_per_round = 6;
	set_tree(&c, (uint32_t[]) { 2, 2, 3 }, (uint32_t[]) { 2, 2, 1 }, 3);
	c.hier.level[0].aggregator = fmi_registry_find(f->reg,
	    FM_KIND_AGGREGATOR, "fedavgm");
	assert_non_null(c.hier.level[0].aggregator);
	c.hier.level[0].agg_params = avgm;
	run_both(&c, &sim, &tree);
	assert_true(extra(&tree.rounds[3], "root_aggregated") == 1);
	assert_true(tree.rounds[7].accuracy > 0.2);
	fmi_fed_result_free(&sim);
	fmi_fed_result_free(&tree);
}

/* A defence at the edges (updates held as rows), simulated dropouts and
 * stragglers, and a quorum some rounds miss. */
static void
test_defence_faults_quorum(void **state)
{
	fixture *f = *state;
	fmi_fed_result sim, tree;
	fmi_fed_cfg c = f->cfg;
	const fm_value med[] = { { 0, NULL } };
	c.rounds = 8;
	c.clients_per_round = 8;
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 3, 1 }, 2);
	c.defence = fmi_registry_find(f->reg, FM_KIND_DEFENCE, "median");
	assert_non_null(c.defence);
	c.def_params = med;
	c.faults = (fmi_faults){ 0.25, 0.125, 7 };
	/* 8 - 2 dropouts - 1 straggler = 5 updates a round: below a quorum
	 * of 6 no round aggregates, an error in both (the simulation sees it
	 * up front; the root, which does not check the plan, at the end) */
	c.min_updates = 6;
	fm_error e1, e2;
	FMT_FAIL(fmi_fed_simulate(&c, &sim, &e1), FM_EINVAL);
	FMT_FAIL(tree_run(&c, 0, &tree, &e2), FM_EINVAL);
	assert_non_null(strstr(e1.msg, "below the quorum of 6"));
	assert_non_null(strstr(e2.msg, "the quorum (min_updates) is 6"));
	fmi_fed_result_free(&sim);
	fmi_fed_result_free(&tree);
	c.min_updates = 5;
	run_both(&c, &sim, &tree);
	for (uint32_t r = 0; r < c.rounds; r++) {
		assert_int_equal(tree.rounds[r].dropped, 2);
		assert_int_equal(tree.rounds[r].stragglers, 1);
		assert_int_equal(tree.rounds[r].updates, 5);
	}
	for (uint32_t r = 0; r < c.rounds; r++) {
		assert_true(tree.rounds[r].aggregated);
		assert_false(isnan(extra(&tree.rounds[r], "defence_kept")));
	}
	fmi_fed_result_free(&sim);
	fmi_fed_result_free(&tree);
}

/* SCAFFOLD at the edges: its server side sends c to each client and gets
 * dc back (plugin messages between the edge and its clients), and its
 * metric comes from the edges. */
static void
test_scaffold_edges_talk(void **state)
{
	fixture *f = *state;
	fmi_fed_result sim, tree;
	fmi_fed_cfg c = f->cfg;
	const fm_value lr[] = { { 1.0, NULL } };
	c.clients_per_round = 8;
	set_tree(&c, (uint32_t[]) { 2, 6 }, (uint32_t[]) { 2, 1 }, 2);
	c.rule = fmi_registry_find(f->reg, FM_KIND_LOCAL, "scaffold");
	if (c.rule == NULL) {
		skip();
	}
	c.rule_params = lr;
	run_both(&c, &sim, &tree);
	assert_false(isnan(extra(&tree.rounds[c.rounds - 1],
	    "scaffold_c_norm")));
	fmi_fed_result_free(&sim);
	fmi_fed_result_free(&tree);
}

/* An edge that never comes: the root starts without it, its sampled
 * clients drop out every round, the others go on with the quorum. */
static void
test_missing_edge(void **state)
{
	fixture *f = *state;
	fmi_fed_result tree;
	fm_error e;
	fmi_fed_cfg c = f->cfg;
	c.rounds = 3;
	c.clients_per_round = 12;
	c.min_updates = 1;
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 1, 1 }, 2);
	FMT_PASS(tree_run(&c, 2, &tree, &e));
	for (uint32_t r = 0; r < c.rounds; r++) {
		assert_int_equal(tree.rounds[r].dropped, 4);
		assert_int_equal(tree.rounds[r].updates, 8);
		assert_true(tree.rounds[r].aggregated);
		for (uint32_t k = 4; k < 8; k++) { /* edge 2's clients */
			assert_int_equal(tree.rounds[r].clients[k].status,
			    FMI_CLIENT_DROPPED);
		}
	}
	fmi_fed_result_free(&tree);
}

/* ---- bad input ---------------------------------------------------------- */

/* Log lines by reason, from every thread. */
typedef struct reasons {
	atomic_int wire, round, edge, sender;
} reasons;

static void
count_sink(void *ud, int level, const char *id, const char *line)
{
	reasons *c = ud;
	(void)level;
	(void)line;
	atomic_fetch_add(&c->wire, strcmp(id, "FM-WIRE") == 0);
	atomic_fetch_add(&c->round, strcmp(id, "FM-ROUND") == 0);
	atomic_fetch_add(&c->edge, strcmp(id, "FM-EDGE") == 0);
	atomic_fetch_add(&c->sender, strcmp(id, "FM-SENDER") == 0);
}

static void
hdr(fmi_msg *m, uint32_t type, uint32_t round, int32_t from, int32_t to)
{
	static uint64_t seq;
	memset(m, 0, sizeof *m);
	m->type = type;
	m->fed = fmi_fed_id(9);
	m->round = round;
	m->from = from;
	m->to = to;
	m->seq = ++seq;
}

/* Sends type with model[nf] (or nothing) then body b; body_len overrides
 * the header's body size when nonzero (a lie). */
static void
send_body(fmi_tran *t, const char *peer, fmi_msg *m, const float *model,
    size_t nf, const fmi_edge_body *b, uint64_t body_len)
{
	size_t bound = fmi_edge_body_bound(m->type, b->nclients, b->nmetrics);
	fmi_payload *p = fmi_payload_new(nf * 4 + bound);
	size_t blen;
	assert_non_null(p);
	if (nf > 0) {
		memcpy(p->data, model, nf * 4);
	}
	FMT_PASS(fmi_edge_body_encode(m->type, b, (char *)p->data + nf * 4,
	    bound, &blen));
	p->len = nf * 4 + blen;
	m->n = nf;
	m->body = body_len ? body_len : blen;
	FMT_PASS(fmi_tran_send(t, peer, m, p));
	fmi_payload_unref(p);
}

static void
send_raw(fmi_tran *t, const char *peer, fmi_msg *m, const void *data,
    size_t len, uint64_t nf, uint64_t body)
{
	m->n = nf;
	m->body = body;
	FMT_PASS(fmi_tran_send_bytes(t, peer, m, data, len));
}

/* The next message of type (heartbeats skipped), within 20 s. */
static void
expect(fmi_tran *t, uint32_t type, fmi_rmsg *r)
{
	double until = fmi_now() + 20;
	while (fmi_now() < until) {
		if (fmi_tran_recv(t, r, 100, NULL) != FM_OK) {
			continue;
		}
		if (r->m.type == type) {
			return;
		}
		fmi_rmsg_close(r);
	}
	fail_msg("no %s message", fmi_msg_type_name(type));
}

typedef struct rogue {
	const fmi_fed_cfg *cfg;
	fmi_tran_ctx *tc;
	char url[64];
	int32_t id;
	uint32_t rounds;
} rogue;

/* Edge e2 played by hand: every mistake an edge can make, then a correct
 * answer in which all its clients dropped out. */
static void *
rogue_edge_main(void *arg)
{
	rogue *rg = arg;
	size_t dim = rg->cfg->arch.nparams;
	fmi_tran *t = NULL;
	fm_error e;
	fmi_msg m;
	fmi_edge_client c[8], got[8];
	float *bad = calloc(dim, sizeof *bad);
	assert_non_null(bad);
	bad[dim / 2] = NAN;
	FMT_PASS(fmi_tran_dial(&t, rg->tc, rg->url, "e2", &e));
	hdr(&m, FMI_MSG_HELLO, 0, rg->id, 0);
	FMT_PASS(fmi_tran_send(t, NULL, &m, NULL));
	for (;;) {
		fmi_rmsg r;
		if (fmi_tran_recv(t, &r, 20000, NULL) != FM_OK) {
			break;
		}
		if (r.m.type == FMI_MSG_SHUTDOWN) {
			fmi_rmsg_close(&r);
			break;
		}
		if (r.m.type != FMI_MSG_EDGE_ROUND) {
			fmi_rmsg_close(&r);
			continue;
		}
		const void *model, *body;
		fmi_edge_body rb = { got, 0, 8, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			"" };
		FMT_PASS(fmi_edge_payload(&r.m, fmi_rmsg_data(&r),
		    fmi_rmsg_len(&r), dim, &model, &body, &e));
		FMT_PASS(fmi_edge_body_decode(FMI_MSG_EDGE_ROUND, body, r.m.body,
		    &rb, &e));
		uint32_t round = r.m.round, n = rb.nclients;
		fmi_rmsg_close(&r);
		assert_true(n > 0);
		for (uint32_t i = 0; i < n; i++) {
			c[i] = (fmi_edge_client){ got[i].client, 0,
				FMI_CLIENT_DROPPED, 0, 0, NAN, NAN };
		}
		fmi_edge_body ok = { c, n, 8, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			"" };
		/* before the verdict: stale, too many, not its id, early */
		hdr(&m, FMI_MSG_EDGE_COLLECTED, round + 7, rg->id, 0);
		FMT_PASS(fmi_tran_send(t, NULL, &m, NULL));
		hdr(&m, FMI_MSG_EDGE_COLLECTED, round, rg->id, 0);
		m.updates = n + 1;
		FMT_PASS(fmi_tran_send(t, NULL, &m, NULL));
		hdr(&m, FMI_MSG_EDGE_COLLECTED, round, rg->id + 1, 0);
		FMT_PASS(fmi_tran_send(t, NULL, &m, NULL));
		hdr(&m, FMI_MSG_EDGE_RESULT, round, rg->id, 0);
		send_body(t, NULL, &m, NULL, 0, &ok, 0);
		hdr(&m, FMI_MSG_EDGE_COLLECTED, round, rg->id, 0);
		FMT_PASS(fmi_tran_send(t, NULL, &m, NULL));
		fmi_rmsg v;
		expect(t, FMI_MSG_EDGE_VERDICT, &v);
		fmi_rmsg_close(&v);
		/* after it: broken bodies and payloads, wrong contents */
		hdr(&m, FMI_MSG_EDGE_RESULT, round, rg->id, 0);
		send_raw(t, NULL, &m, "\xc1", 1, 0, 1);
		hdr(&m, FMI_MSG_EDGE_RESULT, round, rg->id, 0);
		send_raw(t, NULL, &m, "\x80\x80\x80", 3, 0, 5);
		hdr(&m, FMI_MSG_EDGE_RESULT, round, rg->id, 0);
		ok.finished = 1;
		send_body(t, NULL, &m, bad, dim, &ok, 0); /* NaN */
		hdr(&m, FMI_MSG_EDGE_RESULT, round, rg->id, 0);
		send_body(t, NULL, &m, NULL, 0, &ok, 0); /* no model */
		ok.finished = 0;
		c[0].client++;
		hdr(&m, FMI_MSG_EDGE_RESULT, round, rg->id, 0);
		send_body(t, NULL, &m, NULL, 0, &ok, 0); /* another client */
		c[0].client--;
		c[0].counted = 1;
		c[0].loss = 0.5;
		hdr(&m, FMI_MSG_EDGE_RESULT, round, rg->id, 0);
		send_body(t, NULL, &m, NULL, 0, &ok, 0); /* counts 1 of 0 */
		c[0].counted = 0;
		c[0].loss = NAN;
		hdr(&m, FMI_MSG_EDGE_RESULT, round, rg->id, 0);
		send_body(t, NULL, &m, NULL, 0, &ok, 0); /* at last, right */
		rg->rounds++;
	}
	fmi_tran_close(t);
	free(bad);
	return NULL;
}

/* The root, told every kind of nonsense by an edge, logs each with its
 * reason, drops it and goes on: its rounds are those of a run in which
 * that edge's clients all dropped out (here: a run without the edge). */
static void
test_rogue_edge(void **state)
{
	fixture *f = *state;
	fmi_fed_result ref, got;
	fm_error e;
	reasons cnt;
	fmi_fed_cfg c = f->cfg;
	c.rounds = 3;
	c.clients_per_round = 12;
	c.min_updates = 1;
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 1, 1 }, 2);
	FMT_PASS(tree_run(&c, 2, &ref, &e));

	fmi_tran *root = NULL;
	char (*names)[FMI_PEER_MAX + 1] = NULL;
	rig *g = rig_open(&c, 2, 0, &root, &names);
	rogue rg = { &c, g->tc, "", (int32_t)(c.part->nclients + 2), 0 };
	snprintf(rg.url, sizeof rg.url, "%s", g->root_url);
	pthread_t th;
	memset(&cnt, 0, sizeof cnt);
	fm_log_set_sink(count_sink, &cnt);
	assert_int_equal(pthread_create(&th, NULL, rogue_edge_main, &rg), 0);
	fmi_server_hosts hosts = { .names = names, .n = g->nedges, .pinned = 1,
	    .join_timeout = 5, .edges = 1, .edge_timeout = 2 };
	int rv = fmi_server_run(&c, root, &hosts, &got, &e);
	pthread_join(th, NULL);
	fm_log_set_sink(NULL, NULL);
	rig_close(g, root, names);
	FMT_PASS(rv);
	assert_int_equal(rg.rounds, c.rounds);
	assert_same_run(&ref, &got);
	print_message("rogue edge: %d FM-ROUND, %d FM-EDGE, %d FM-SENDER, %d "
	    "FM-WIRE\n", atomic_load(&cnt.round), atomic_load(&cnt.edge),
	    atomic_load(&cnt.sender), atomic_load(&cnt.wire));
	assert_true(atomic_load(&cnt.round) >= 2 * (int)c.rounds);
	assert_true(atomic_load(&cnt.edge) >= 4 * (int)c.rounds);
	assert_true(atomic_load(&cnt.sender) >= (int)c.rounds);
	assert_true(atomic_load(&cnt.wire) >= 3 * (int)c.rounds);
	fmi_fed_result_free(&ref);
	fmi_fed_result_free(&got);
}

/* Waits (at most 20 s, draining t) until *count exceeds before. */
static void
wait_count(fmi_tran *t, atomic_int *count, int before)
{
	for (double until = fmi_now() + 20;
	    atomic_load(count) == before && fmi_now() < until;) {
		fmi_rmsg r;
		if (fmi_tran_recv(t, &r, 10, NULL) == FM_OK) {
			fmi_rmsg_close(&r); /* heartbeats */
		}
	}
	assert_true(atomic_load(count) > before);
}

/* Sends an EDGE_ROUND to e1 and waits until the edge logged its verdict
 * on it (count: the counter that must grow). */
static void
round_to_edge(fmi_tran *t, uint32_t round, int32_t to, const int32_t *ids,
    uint32_t n, const float *model, size_t nf, atomic_int *count)
{
	fmi_edge_client c[8];
	fmi_msg m;
	for (uint32_t i = 0; i < n; i++) {
		c[i] = (fmi_edge_client){ ids[i], 0, 0, 0, 0, NAN, NAN };
	}
	fmi_edge_body b = { c, n, 8, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, "" };
	int before = count != NULL ? atomic_load(count) : 0;
	hdr(&m, FMI_MSG_EDGE_ROUND, round, FM_NODE_SERVER, to);
	m.lr = 0.05f;
	m.lr_scale = 1;
	send_body(t, "e1", &m, model, nf, &b, 0);
	if (count != NULL) {
		wait_count(t, count, before);
	}
}

/* An edge told nonsense by its parent logs each with its reason, drops
 * it and serves the next correct round. */
static void
test_rogue_parent(void **state)
{
	fixture *f = *state;
	fmi_fed_cfg c = f->cfg;
	size_t dim = c.arch.nparams;
	reasons cnt;
	set_tree(&c, (uint32_t[]) { 3, 4 }, (uint32_t[]) { 1, 1 }, 2);
	fmi_tran *root = NULL;
	char (*names)[FMI_PEER_MAX + 1] = NULL;
	memset(&cnt, 0, sizeof cnt);
	fm_log_set_sink(count_sink, &cnt);
	rig *g = rig_open(&c, 0, 1, &root, &names);
	int32_t id = (int32_t)c.part->nclients + 1;
	float *w = malloc(dim * sizeof *w), *bad = calloc(dim, sizeof *bad);
	assert_non_null(w);
	assert_non_null(bad);
	for (size_t i = 0; i < dim; i++) {
		w[i] = 0.01f * (float)((i % 7) - 3);
	}
	bad[3] = INFINITY;
	fmi_rmsg r;
	fmi_msg m;
	expect(root, FMI_MSG_HELLO, &r);
	assert_string_equal(r.peer, "e1");
	fmi_rmsg_close(&r);
	const int32_t mine[4] = { 1, 2, 3, 4 }, other[2] = { 1, 5 },
	              unsorted[2] = { 2, 1 };
	/* a body that is not msgpack; no model yet; a model not finite;
	 * another edge's client; clients out of order */
	hdr(&m, FMI_MSG_EDGE_ROUND, 1, FM_NODE_SERVER, id);
	m.lr = 0.05f;
	int before = atomic_load(&cnt.wire);
	send_raw(root, "e1", &m, "\xc1", 1, 0, 1);
	wait_count(root, &cnt.wire, before);
	round_to_edge(root, 1, id, mine, 4, NULL, 0, &cnt.edge);
	round_to_edge(root, 1, id, mine, 4, bad, dim, &cnt.wire);
	round_to_edge(root, 1, id, other, 2, w, dim, &cnt.wire);
	round_to_edge(root, 1, id, unsorted, 2, w, dim, &cnt.wire);
	/* not from the parent; a verdict nobody waits for; a message an
	 * edge never gets */
	hdr(&m, FMI_MSG_EDGE_VERDICT, 1, 3, id);
	before = atomic_load(&cnt.sender);
	FMT_PASS(fmi_tran_send(root, "e1", &m, NULL));
	hdr(&m, FMI_MSG_EDGE_VERDICT, 1, FM_NODE_SERVER, id);
	m.ok = 1;
	FMT_PASS(fmi_tran_send(root, "e1", &m, NULL));
	hdr(&m, FMI_MSG_ROUND_END, 1, FM_NODE_SERVER, id);
	int wire = atomic_load(&cnt.wire);
	FMT_PASS(fmi_tran_send(root, "e1", &m, NULL));
	/* then a correct round: all four train, the verdict says aggregate */
	round_to_edge(root, 1, id, mine, 4, w, dim, NULL);
	expect(root, FMI_MSG_EDGE_COLLECTED, &r);
	assert_int_equal(r.m.round, 1);
	assert_int_equal(r.m.updates, 4);
	fmi_rmsg_close(&r);
	assert_true(atomic_load(&cnt.sender) > before);
	assert_true(atomic_load(&cnt.wire) > wire);
	hdr(&m, FMI_MSG_EDGE_VERDICT, 1, FM_NODE_SERVER, id);
	m.ok = 1;
	FMT_PASS(fmi_tran_send(root, "e1", &m, NULL));
	expect(root, FMI_MSG_EDGE_RESULT, &r);
	const void *model, *body;
	fmi_edge_client got[8];
	fmi_edge_metric x[48];
	fmi_edge_body b = { got, 0, 8, x, 0, 48, 0, 0, 0, 0, 0, 0, 0, "" };
	fm_error e;
	FMT_PASS(fmi_edge_payload(&r.m, fmi_rmsg_data(&r), fmi_rmsg_len(&r),
	    dim, &model, &body, &e));
	FMT_PASS(fmi_edge_body_decode(FMI_MSG_EDGE_RESULT, body, r.m.body, &b,
	    &e));
	assert_int_equal(b.nclients, 4);
	assert_true(b.finished);
	assert_non_null(model);
	assert_true(memcmp(model, w, dim * sizeof *w) != 0); /* it moved */
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(got[i].client, mine[i]);
		assert_int_equal(got[i].status, FMI_CLIENT_KEPT);
		assert_true(got[i].counted && got[i].examples > 0);
	}
	fmi_rmsg_close(&r);
	/* round 2 needs no model now; the quorum fails: nothing moves */
	round_to_edge(root, 2, id, mine + 1, 1, NULL, 0, NULL);
	expect(root, FMI_MSG_EDGE_COLLECTED, &r);
	fmi_rmsg_close(&r);
	hdr(&m, FMI_MSG_EDGE_VERDICT, 2, FM_NODE_SERVER, id);
	m.ok = 0;
	FMT_PASS(fmi_tran_send(root, "e1", &m, NULL));
	expect(root, FMI_MSG_EDGE_RESULT, &r);
	FMT_PASS(fmi_edge_payload(&r.m, fmi_rmsg_data(&r), fmi_rmsg_len(&r),
	    dim, &model, &body, &e));
	FMT_PASS(fmi_edge_body_decode(FMI_MSG_EDGE_RESULT, body, r.m.body, &b,
	    &e));
	assert_null(model);
	assert_false(b.finished);
	assert_int_equal(b.nclients, 1);
	assert_int_equal(got[0].status, FMI_CLIENT_UNUSED);
	fmi_rmsg_close(&r);
	hdr(&m, FMI_MSG_SHUTDOWN, 2, FM_NODE_SERVER, -1);
	FMT_PASS(fmi_tran_send(root, "e1", &m, NULL));
	rig_close(g, root, names); /* the edge and its hosts end well */
	fm_log_set_sink(NULL, NULL);
	free(w);
	free(bad);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_levels_fedadam_root,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_three_levels_fedavgm, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_defence_faults_quorum, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_scaffold_edges_talk, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_edge, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rogue_edge, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rogue_parent, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
