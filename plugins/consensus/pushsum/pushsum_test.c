/* SPDX-License-Identifier: MIT */
/* pushsum_test.c: conformance of the built-in pushsum consensus plugin
 * (push-sum / SGP), loaded as a .so, against gossip on directed graphs. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../testnet.h"

#define DIM 3
#define NP 5

typedef struct fixture {
	fmi_registry *reg;
	const fmi_component *c, *gossip;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, "pushsum.so") != FM_OK ||
	    fmt_plugin_load(f->reg, "gossip.so") != FM_OK) {
		return -1;
	}
	f->c = fmi_registry_find(f->reg, FM_KIND_CONSENSUS, "pushsum");
	f->gossip = fmi_registry_find(f->reg, FM_KIND_CONSENSUS, "gossip");
	*state = f;
	return f->c != NULL && f->gossip != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	fmi_registry_free(f->reg);
	free(f);
	return 0;
}

static double
outgoing(fmi_cons *k, uint32_t out_degree)
{
	double mass = -1;
	FMT_PASS(fmi_cons_outgoing(k, 1, out_degree, &mass));
	return mass;
}

static void
test_abi(void **state)
{
	const fixture *f = *state;
	const fm_plugin_info *in = f->c->plugin;
	const fm_consensus_ops *ops = f->c->ops;
	assert_int_equal(in->magic, FM_PLUGIN_MAGIC);
	assert_int_equal(in->abi_major, FM_PLUGIN_ABI_MAJOR);
	assert_string_equal(in->name, "pushsum");
	assert_int_equal(in->ncomponents, 1);
	assert_int_equal(ops->base.kind, FM_KIND_CONSENSUS);
	assert_string_equal(f->c->desc->name, "pushsum");
	assert_non_null(ops->outgoing);
	assert_null(ops->base.on_message);
	assert_int_equal(fmi_component_nparams(f->c), 0);
}

/*
 * w = 1, out-degree 2: mass 1/3, own share s = 1/3. Own z { 1, 2, 3 },
 * peer 1 sends { 2, 4, 6 } with mass 1/2, peer 3 { -4, 0, 8 } with 1/4:
 * w' = 13/12, z' = ({ 1/3, 2/3, 1 } + { 1, 2, 3 } + { -1, 0, 2 }) / w'
 *    = { 4, 32, 72 } / 13; then with out-degree 1 the mass is w' / 2.
 */
static void
test_hand_computed(void **state)
{
	const fixture *f = *state;
	const float z[DIM] = { 1, 2, 3 }, a[DIM] = { 2, 4, 6 },
		    b[DIM] = { -4, 0, 8 };
	const float want[DIM] = { 4.0f / 13, 32.0f / 13, 72.0f / 13 };
	fm_peer_model nb[2] = { PT_PEER(1, 1, a, 0.5, 0.5, 1),
		PT_PEER(3, 3, b, 0.5, 0.25, 1) };
	fm_peer_model own = PT_PEER(0, 2, z, 0.5, 1.0 / 3, 1);
	fm_mix m = PT_MIX(1, 0, 2, 2, &own, nb, 2, 0);
	float x[DIM];
	fmi_cons *k = tn_open(f->c, NULL, 0, DIM, 0);
	assert_true(fabs(outgoing(k, 2) - 1.0 / 3) < 1e-15);
	assert_true(outgoing(k, 0) == 1.0); /* nothing sent: all of w */
	memcpy(x, z, sizeof x);
	FMT_PASS(tn_mix(k, &m, x, DIM));
	FMT_NEAR(x, want, DIM, 1e-6);
	assert_true(fabs(outgoing(k, 1) - 13.0 / 24) < 1e-15);
	/* nothing arrives: z stays (bit for bit), w shrinks to its share */
	m = (fm_mix)PT_MIX(2, 0, 2, 1, &own, NULL, 0, 0);
	memcpy(x, want, sizeof x);
	FMT_PASS(tn_mix(k, &m, x, DIM));
	assert_memory_equal(x, want, sizeof x);
	assert_true(fabs(outgoing(k, 1) - 13.0 / 48) < 1e-15);
	fmi_cons_close(k);
}

/* Directed ring 0 -> 1 -> ... -> 4 -> 0 plus the chord 0 -> 2 (or, with
 * flip, the reversed ring plus 3 -> 0): strongly connected, irregular, so
 * 1/(1 + in_i) weights are row- but not column-stochastic. */
static void
directed(tn_net *t, int flip)
{
	memset(t->edge, 0, sizeof t->edge);
	for (uint32_t i = 0; i < NP; i++) {
		uint32_t j = (i + 1) % NP;
		tn_edge(t, flip ? j : i, flip ? i : j, 0);
	}
	tn_edge(t, flip ? 3 : 0, flip ? 0 : 2, 0);
	tn_weights_row(t);
}

static const float x0[NP][DIM] = { { 1, 0, -3 }, { 4, 2, 0 }, { -2, 8, 1 },
	{ 0, 0, 10 }, { 7, -5, 2 } };

static void
start(tn_net *t, const fmi_component *c, double *avg)
{
	tn_init(t, NP, DIM, c, NULL, 0);
	memcpy(t->x, x0, sizeof x0);
	for (size_t k = 0; k < DIM; k++) {
		avg[k] = tn_mean(t, k);
	}
	directed(t, 0);
}

/* sum_i w_i, read back through c_outgoing (mass * (out_degree + 1)). */
static double
total_weight(const tn_net *t)
{
	double s = 0;
	for (uint32_t i = 0; i < t->n; i++) {
		s += outgoing(t->c[i], 0);
	}
	return s;
}

static void
test_directed_exact_average(void **state)
{
	const fixture *f = *state;
	tn_net ps, g;
	double avg[DIM];
	start(&ps, f->c, avg);
	start(&g, f->gossip, avg);
	for (int r = 0; r < 200; r++) {
		tn_round(&ps);
		tn_round(&g);
		if (r == 0) {
			assert_true(fabs(total_weight(&ps) - NP) < 1e-12);
		}
	}
	double e_ps = tn_max_err(&ps, avg), e_g = tn_max_err(&g, avg);
	printf("directed ring+chord, 200 rounds: push-sum max |z_i - avg| = "
	    "%.3g; row-stochastic gossip spread %.3g, off the average by "
	    "%.3g; sum w = %.17g\n", e_ps, tn_spread(&g), e_g,
	    total_weight(&ps));
	assert_true(e_ps < 1e-5);
	assert_true(fabs(total_weight(&ps) - NP) < 1e-12);
	assert_true(tn_spread(&g) < 1e-5); /* gossip agrees ... */
	assert_true(e_g > 0.05);           /* ... on the wrong value */
	tn_fini(&ps);
	tn_fini(&g);
}

/* Every peer's weight, saved after 5 rounds and loaded into fresh
 * instances, gives round 6 (models and weights) bit for bit; a state of
 * another length or a non-positive weight is refused. */
static void
test_save_load(void **state)
{
	const fixture *f = *state;
	static tn_net a, b;
	double avg[DIM];
	start(&a, f->c, avg);
	for (int r = 0; r < 5; r++) {
		tn_round(&a);
	}
	b = a;
	for (uint32_t i = 0; i < a.n; i++) {
		size_t len;
		void *s = pt_save(&a.c[i]->h, &len);
		b.c[i] = tn_open(f->c, NULL, 0, DIM, (int32_t)i);
		pt_load_checked(&b.c[i]->h, s, len);
		free(s);
	}
	tn_round(&a);
	tn_round(&b);
	assert_memory_equal(a.x, b.x, sizeof a.x);
	for (uint32_t i = 0; i < a.n; i++) {
		size_t la, lb;
		void *sa = pt_save(&a.c[i]->h, &la), *sb = pt_save(&b.c[i]->h,
		    &lb);
		assert_int_equal(la, lb);
		assert_memory_equal(sa, sb, la);
		unsigned char bad[9];
		double w = -1;
		memcpy(bad, sa, 1);
		memcpy(bad + 1, &w, sizeof w);
		assert_int_not_equal(fmi_inst_load(&b.c[i]->h, bad, 9), FM_OK);
		free(sa);
		free(sb);
	}
	tn_fini(&a);
	tn_fini(&b);
}

/* The graph changes every round (two different directed graphs). */
static void
test_time_varying(void **state)
{
	const fixture *f = *state;
	tn_net t;
	double avg[DIM];
	start(&t, f->c, avg);
	for (int r = 0; r < 300; r++) {
		directed(&t, r % 2);
		tn_round(&t);
	}
	double e = tn_max_err(&t, avg);
	printf("time-varying directed graphs, 300 rounds: push-sum max "
	    "|z_i - avg| = %.3g\n", e);
	assert_true(e < 1e-5);
	tn_fini(&t);
}

/* Round 1 loses 0 -> 1: peer 0's mass share 1/3 is gone for good. The
 * peers still agree, on another (weighted) average; sum w stays 5 - 1/3. */
static void
test_lost_mass(void **state)
{
	const fixture *f = *state;
	tn_net t;
	double avg[DIM];
	start(&t, f->c, avg);
	t.lost[1][0] = 1;
	tn_round(&t);
	t.lost[1][0] = 0;
	assert_true(fabs(total_weight(&t) - (NP - 1.0 / 3)) < 1e-12);
	for (int r = 0; r < 300; r++) {
		tn_round(&t);
	}
	double e = tn_max_err(&t, avg);
	printf("one message lost: push-sum spread %.3g, off the average by "
	    "%.3g, sum w = %.17g\n", tn_spread(&t), e, total_weight(&t));
	assert_true(tn_spread(&t) < 1e-5);
	assert_true(e > 1e-3);
	assert_true(fabs(total_weight(&t) - (NP - 1.0 / 3)) < 1e-12);
	tn_fini(&t);
}

/*
 * Dropouts as a deployed host reports them (ABI 2.1), on the directed
 * graph of start(): a peer that is down neither sends nor mixes, and a
 * send to it fails, so its sender's m.out_sent leaves it out; a delayed
 * model reaches its receiver in the next round, as m.late. Peer 2 saves
 * its state (save), is down in rounds 4-9 and comes back from the saved
 * state (a fresh instance + load); the model 0 -> 1 of round 5 is one
 * round late. The network's mass, sum w over the peers that are up plus
 * the saved peer's plus what is in flight, is N = 5 after every round
 * (to rounding), and the numerators too, so once everyone is back the
 * peers reach the exact average of the initial values.
 *
 * legacy: the same with a 2.0-sized fm_mix (no out_sent, no late: every
 * share counts as delivered, a late model is dropped): the mass shares
 * sent to peer 2 while it is down, and the late one, are lost.
 */
typedef struct dropnet {
	tn_net t;
	uint8_t down[NP];
	double saved_w;        /* peer 2's saved w while it is down */
	uint8_t saved[64];     /* its saved state */
	size_t saved_len;
	float late_y[DIM];     /* the delayed model 0 -> 1, if any */
	double late_mass;
	int late_pending;
} dropnet;

static double
drop_total(dropnet *d)
{
	double s = d->late_pending ? d->late_mass : 0;
	for (uint32_t i = 0; i < NP; i++) {
		s += d->down[i] ? (i == 2 ? d->saved_w : 0) :
		                  outgoing(d->t.c[i], 0);
	}
	return s;
}

/* One round; delay: the model 0 -> 1 arrives a round late. */
static void
drop_round(dropnet *d, int delay, int legacy)
{
	tn_net *t = &d->t;
	float y[NP][TN_MAXDIM];
	int late_now = d->late_pending;
	float late_y[DIM];
	double late_mass = d->late_mass;
	memcpy(late_y, d->late_y, sizeof late_y);
	d->late_pending = 0;
	t->round++;
	memcpy(y, t->x, sizeof y);
	for (uint32_t i = 0; i < NP; i++) {
		t->mass[i] = 0;
		if (!d->down[i]) {
			FMT_PASS(fmi_cons_outgoing(t->c[i], t->round,
			    tn_out_degree(t, i), &t->mass[i]));
		}
	}
	for (uint32_t i = 0; i < NP; i++) {
		if (d->down[i]) {
			continue;
		}
		fm_peer_model nb[TN_MAXP], lt[1];
		uint32_t nnb = 0, sent = 0, nlate = 0;
		for (uint32_t j = 0; j < NP; j++) {
			if (j != i && t->edge[i][j] && !d->down[j] &&
			    !(delay && i == 1 && j == 0)) {
				nb[nnb++] = (fm_peer_model) PT_PEER((int32_t)j,
				    tn_out_degree(t, j), y[j], t->w[i][j],
				    t->mass[j], 10);
			}
			sent += j != i && t->edge[j][i] && !d->down[j];
		}
		if (i == 1 && late_now && !legacy) {
			lt[nlate++] = (fm_peer_model) PT_PEER(0, 1, late_y, 0,
			    late_mass, 10);
		}
		fm_peer_model own = PT_PEER((int32_t)i, tn_out_degree(t, i),
		    y[i], t->w[i][i], t->mass[i], 10);
		fm_mix m = PT_MIX(t->round, (int32_t)i, tn_in_degree(t, i),
		    tn_out_degree(t, i), &own, nb, nnb, 0);
		m.out_sent = sent;
		m.nlate = nlate;
		m.late = nlate ? lt : NULL;
		if (legacy) {
			m.struct_size = (uint32_t)offsetof(fm_mix, out_sent);
		}
		memcpy(t->x[i], y[i], t->dim * sizeof(float));
		FMT_PASS(tn_mix(t->c[i], &m, t->x[i], t->dim));
	}
	if (delay && !d->down[0]) {
		memcpy(d->late_y, y[0], sizeof d->late_y);
		d->late_mass = t->mass[0];
		d->late_pending = 1;
	}
}

static double
drop_run(const fixture *f, int legacy, double *err)
{
	dropnet d;
	double avg[DIM], worst = 0;
	memset(&d, 0, sizeof d);
	start(&d.t, f->c, avg);
	for (int r = 1; r <= 300; r++) {
		if (r == 4) { /* peer 2 goes down; its state is on disk */
			d.saved_w = outgoing(d.t.c[2], 0);
			FMT_PASS(fmi_inst_save(&d.t.c[2]->h, d.saved,
			    sizeof d.saved, &d.saved_len));
			fmi_cons_close(d.t.c[2]);
			d.t.c[2] = NULL;
			d.down[2] = 1;
		}
		if (r == 10) { /* restarted from its state */
			d.t.c[2] = tn_open(f->c, NULL, 0, DIM, 2);
			FMT_PASS(fmi_inst_load(&d.t.c[2]->h, d.saved,
			    d.saved_len));
			d.down[2] = 0;
		}
		drop_round(&d, r == 5, legacy);
		worst = fmax(worst, fabs(drop_total(&d) - NP));
	}
	*err = tn_max_err(&d.t, avg);
	tn_fini(&d.t);
	return worst;
}

static void
test_mass_under_dropouts(void **state)
{
	const fixture *f = *state;
	double err, lerr;
	double drift = drop_run(f, 0, &err);
	double ldrift = drop_run(f, 1, &lerr);
	printf("peer down 6 rounds + a late model: sum w off N by at most "
	    "%.3g, off the average by %.3g (2.0 host: %.3g and %.3g)\n",
	    drift, err, ldrift, lerr);
	assert_true(drift < 1e-12);
	assert_true(err < 1e-5);
	assert_true(ldrift > 0.5); /* what the old host semantics lost */
	assert_true(lerr > 1e-3);
}

/* A mix that fails leaves the model and w alone. */
static void
refused(fmi_cons *k, double mass, size_t dim, int want)
{
	const float z[DIM] = { 1, 2, 3 }, a[DIM] = { 9, 9, 9 };
	fm_peer_model nb = PT_PEER(1, 1, a, 0.5, mass, 1);
	fm_peer_model own = PT_PEER(0, 1, z, 0.5, 0.5, 1);
	fm_mix m = PT_MIX(1, 0, 1, 1, &own, &nb, 1, 0);
	float x[DIM];
	double w = outgoing(k, 0);
	memcpy(x, z, sizeof x);
	FMT_FAIL(tn_mix(k, &m, x, dim), want);
	assert_memory_equal(x, z, sizeof x);
	assert_true(outgoing(k, 0) == w);
}

static void
test_guards(void **state)
{
	const fixture *f = *state;
	fmi_cons *k = tn_open(f->c, NULL, 0, DIM, 0);
	double mass;
	fmt_logcap cap;
	tn_quiet(&cap); /* the warnings are expected */
	refused(k, -0.5, DIM, FM_ERANGE);
	refused(k, NAN, DIM, FM_ERANGE);
	refused(k, INFINITY, DIM, FM_ERANGE);
	refused(k, 0.5, DIM - 1, FM_EINVAL);
	FMT_FAIL(fmi_cons_outgoing(k, 1, 1, NULL), FM_EINVAL);
	/* Isolated (nothing ever arrives), out-degree 1: w halves every
	 * round, reaches the smallest subnormal 2^-1074 after 1074 mixes;
	 * the 1075th would make it 0 and is refused. */
	const float z[DIM] = { 1, 2, 3 };
	fm_peer_model own = PT_PEER(0, 1, z, 1, 0, 1);
	float x[DIM];
	memcpy(x, z, sizeof x);
	int n = 0, rv = FM_OK;
	while (rv == FM_OK && n < 2000) {
		fm_mix m = PT_MIX((uint32_t)n + 1, 0, 0, 1, &own, NULL, 0, 0);
		rv = tn_mix(k, &m, x, DIM);
		n++;
	}
	tn_loud();
	assert_int_equal(rv, FM_ERANGE);
	assert_int_equal(n, 1075);
	assert_memory_equal(x, z, sizeof x);
	FMT_PASS(fmi_cons_outgoing(k, 1, 0, &mass));
	assert_true(mass == ldexp(1.0, -1074));
	fmi_cons_close(k);
}

static void
test_bad_open(void **state)
{
	const fixture *f = *state;
	const fmi_param_in in = { "step", 0, 0.5, NULL };
	fm_value v[1];
	fm_error e;
	fmi_cons *k = NULL;
	FMT_FAIL(fmi_params_resolve(f->c, &in, 1, v, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "no parameter 'step'"));
	fmt_logcap cap = { .n = 0 };
	tn_quiet(&cap);
	int rv = fmi_cons_open(&k, f->c,
	    &(fmi_open_args){ .params = NULL, .dim = 0, .role = FM_ROLE_PEER,
	    .node_id = 0, .seed = 1 },
	    &e); /* dim 0 */
	tn_loud();
	FMT_FAIL(rv, FM_EINVAL);
	assert_null(k);
	assert_non_null(strstr(e.msg, "init failed"));
	int i = fmt_logcap_find(&cap, "FM-PUSHSUM");
	assert_true(i >= 0);
	assert_non_null(strstr(cap.lines[i], "empty model"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_hand_computed),
		cmocka_unit_test(test_directed_exact_average),
		cmocka_unit_test(test_time_varying),
		cmocka_unit_test(test_lost_mass),
		cmocka_unit_test(test_mass_under_dropouts),
		cmocka_unit_test(test_guards),
		cmocka_unit_test(test_bad_open),
		cmocka_unit_test(test_save_load),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
