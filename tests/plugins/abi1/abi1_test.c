/* SPDX-License-Identifier: MIT */
/*
 * abi1_test.c: ABI 1.4 plugins (built against the frozen 1.4 header) loaded
 * through the translation layer, fmi_abi1_load, directly on dlopen'ed
 * files, and run through the 2.0 ops tables it builds: instances are
 * opened here as the host would (a zeroed fmi_inst_head whose comp->desc
 * is the translated desc, inst.host_data = the head) with a test host
 * table, so nothing of the registry is needed.
 */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "plugin/abi1.h" /* first: declares struct fm_host_api */

#include <dlfcn.h>
#include <limits.h>

#include "fm_test.h"

#include "plugin/registry.h"

#ifndef FM_ABI1_PLUGIN_DIR
#define FM_ABI1_PLUGIN_DIR "tests/plugins/abi1"
#endif

/* ---- a test host ------------------------------------------------------------ */

typedef struct metric_rec {
	char name[32];
	double value;
	const void *host_data;
} metric_rec;

static metric_rec metrics[64];
static int nmetrics;
static fmt_logcap logs;

static void *
th_alloc(size_t n)
{
	return malloc(n != 0 ? n : 1);
}

static void *
th_calloc(size_t n, size_t size)
{
	return n == 0 || size == 0 ? calloc(1, 1) : calloc(n, size);
}

static void
th_free(void *p)
{
	free(p);
}

static void FM_PRINTF(3, 4)
th_log(int level, const char *id, const char *fmt, ...)
{
	(void)level;
	(void)id;
	(void)fmt;
}

static double
th_nrm2(size_t n, const float *x)
{
	double s = 0;
	for (size_t i = 0; i < n; i++) {
		s += (double)x[i] * (double)x[i];
	}
	return sqrt(s);
}

static void
th_metric(const fm_instance *self, const char *name, double value)
{
	if (nmetrics < (int)(sizeof metrics / sizeof metrics[0])) {
		metric_rec *m = &metrics[nmetrics++];
		snprintf(m->name, sizeof m->name, "%s", name);
		m->value = value;
		m->host_data = self->host_data;
	}
}

static void FM_PRINTF(2, 3)
th_set_error(const fm_instance *self, const char *fmt, ...)
{
	fmi_inst_head *h = self->host_data;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->error, sizeof h->error, fmt, ap);
	va_end(ap);
}

static const fm_host_api test_host = {
	.struct_size = (uint32_t)sizeof(fm_host_api),
	.abi_major = FM_PLUGIN_ABI_MAJOR,
	.abi_minor = FM_PLUGIN_ABI_MINOR,
	.alloc = th_alloc,
	.calloc = th_calloc,
	.free = th_free,
	.log = th_log,
	.strerror = fm_strerror,
	.nrm2 = th_nrm2,
	.metric = th_metric,
	.set_error = th_set_error,
};

/* The last value of metric name reported by the instance with head h. */
static double
metric(const fmi_inst_head *h, const char *name)
{
	for (int i = nmetrics; i-- > 0;) {
		if (strcmp(metrics[i].name, name) == 0) {
			assert_ptr_equal(metrics[i].host_data, h);
			return metrics[i].value;
		}
	}
	fail_msg("no metric %s", name);
	return 0;
}

/* ---- loading ------------------------------------------------------------------ */

static const char *
so_path(const char *name)
{
	static char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s/fmt_%s.so", FM_ABI1_PLUGIN_DIR, name);
	return buf;
}

typedef struct loaded {
	void *dl;
	fmi_abi1 *a;
	const fm_component_desc *descs;
	size_t n;
	fm_error err;
} loaded;

/* dlopen + fmi_abi1_load; returns its code. */
static int
load(const char *name, loaded *l)
{
	memset(l, 0, sizeof *l);
	l->dl = dlopen(so_path(name), RTLD_NOW | RTLD_LOCAL);
	if (l->dl == NULL) {
		fail_msg("dlopen %s: %s", so_path(name), dlerror());
	}
	void *desc = dlsym(l->dl, FM_PLUGIN_DESCRIPTOR_SYMBOL);
	void *init = dlsym(l->dl, FM_PLUGIN_INIT_SYMBOL);
	assert_non_null(desc);
	const fm1_plugin_info *in = desc; /* what the registry checks */
	assert_int_equal(in->magic, FM_PLUGIN_MAGIC);
	assert_int_equal(in->abi_major, 1);
	return fmi_abi1_load(desc, init, so_path(name), &l->a, &l->descs,
	    &l->n, &l->err);
}

static void
unload(loaded *l)
{
	fmi_abi1_free(l->a);
	if (l->dl != NULL) {
		dlclose(l->dl);
	}
}

/* ---- instances, opened as the host opens them ------------------------------- */

typedef struct tinst {
	fmi_component comp;
	fmi_inst_head head;
	const fm_ops *base;
} tinst;

static int
topen(tinst **out, const fm_component_desc *d, const fm_value *params,
    size_t dim, uint32_t role, uint32_t max_updates)
{
	tinst *t = calloc(1, sizeof *t);
	assert_non_null(t);
	t->comp.kind = d->kind;
	t->comp.desc = d;
	t->comp.ops = d->ops;
	t->comp.abi_major = 1;
	t->comp.abi_minor = 4;
	t->base = d->ops;
	assert_int_equal(t->base->kind, d->kind);
	assert_int_equal(t->base->struct_size, d->ops_size);
	t->head.comp = &t->comp;
	t->head.base = t->base;
	t->head.state = calloc(1, t->base->state_size);
	assert_non_null(t->head.state);
	uint32_t np = 0;
	while (d->params != NULL && d->params[np].name != NULL) {
		np++;
	}
	t->head.inst = (fm_instance) { &test_host, params, np, role, 3,
		(uint32_t)sizeof(fm_instance), dim, 42, &t->head, max_updates,
		0 };
	int rv = t->base->init(t->head.state, &t->head.inst);
	if (rv != FM_OK) {
		t->base->fini(t->head.state); /* even if init failed */
	}
	*out = t;
	return rv;
}

static void
tclose(tinst *t)
{
	if (t != NULL) {
		t->base->fini(t->head.state);
		free(t->head.state);
		free(t);
	}
}

/* Same as tclose for an instance whose init failed (fini already ran). */
static void
tfree(tinst *t)
{
	free(t->head.state);
	free(t);
}

static const fm_aggregator_ops *
agg_ops(const tinst *t)
{
	return (const fm_aggregator_ops *)(const void *)t->base;
}

/* Updates spaced wider than fm_update, as a newer host may hand them. */
typedef struct wide_update {
	fm_update u;
	char pad[24];
} wide_update;

enum { DIM = 5, NU = 4 };

static const fm_value lr1[] = { { 1.0, NULL } }; /* a1_avg.h's lr */

static float deltas[NU][DIM];
static wide_update ups[NU];

static void
make_updates(const uint64_t *examples)
{
	for (int k = 0; k < NU; k++) {
		for (int i = 0; i < DIM; i++) {
			deltas[k][i] = (float)(k + 1) * 0.25f - (float)i * 0.5f;
		}
		memset(&ups[k], 0, sizeof ups[k]);
		ups[k].u = (fm_update) { (uint32_t)sizeof(wide_update), k + 1, 1,
			0, deltas[k], DIM, examples[k], 0.5, 10 };
	}
}

static fm_round
make_round(uint32_t round, double lr_scale, const float *global)
{
	static const int32_t clients[NU] = { 1, 2, 3, 4 };
	return (fm_round) { (uint32_t)sizeof(fm_round), round, NU, 10, clients,
		global, DIM, lr_scale, NU };
}

/* ---- aggregators ---------------------------------------------------------- */

static void
test_mean_desc(void **state)
{
	loaded l;
	(void)state;
	FMT_PASS(load("a1_mean", &l));
	assert_int_equal(l.n, 1);
	const fm_component_desc *d = &l.descs[0];
	assert_int_equal(d->struct_size, sizeof(fm_component_desc));
	assert_int_equal(d->kind, FM_KIND_AGGREGATOR);
	assert_string_equal(d->name, "a1_mean");
	assert_string_equal(d->description, "1.4 example-weighted mean");
	assert_string_equal(d->params[0].name, "lr");
	assert_null(d->params[1].name);
	assert_int_equal(d->param_size, sizeof(fm_param_desc));
	assert_int_equal(d->ops_size, sizeof(fm_aggregator_ops));
	const fm_aggregator_ops *o = d->ops;
	assert_non_null(o->base.init);
	assert_non_null(o->base.fini);
	assert_non_null(o->base.on_message);
	assert_non_null(o->base.on_timer);
	assert_null(o->base.save);
	assert_null(o->base.load);
	assert_non_null(o->begin);
	assert_non_null(o->accept);
	assert_non_null(o->finish);
	unload(&l);

	FMT_PASS(load("a1_many", &l)); /* without on_message/on_timer */
	o = l.descs[0].ops;
	assert_null(o->base.on_message);
	assert_null(o->base.on_timer);
	unload(&l);
}

static void
test_mean_aggregate(void **state)
{
	static const uint64_t ex[NU] = { 1, 2, 3, 4 };
	const fm_value params[] = { { 2.0, NULL } }; /* lr */
	float global[DIM] = { 1, -1, 0.5f, 0, 3 }, out[DIM], want[DIM];
	int status[NU];
	loaded l;
	tinst *t;
	(void)state;
	FMT_PASS(load("a1_mean", &l));
	nmetrics = 0;
	logs.n = 0;
	FMT_PASS(topen(&t, &l.descs[0], params, DIM, FM_ROLE_SERVER, NU));
	/* host_data passed through to the 1.x plugin: the host finds the
	 * instance (metric, set_error) */
	assert_true(metric(&t->head, "a1_init") == DIM);
	/* its a_init tried to register with the registrar of its
	 * fm_plugin_init, through the 1.x host table: refused and logged */
	assert_true(fmt_logcap_find(&logs, "FM-PLUGIN-OPS") >= 0);
	const fm_aggregator_ops *o = agg_ops(t);
	make_updates(ex);
	fm_round r = make_round(1, 0.5, global);
	FMT_PASS(o->begin(t->head.state, &r));
	FMT_PASS(o->accept(t->head.state, &ups[0].u, NU, status));
	for (int k = 0; k < NU; k++) {
		assert_int_equal(status[k], FM_OK);
	}
	memcpy(out, global, sizeof out);
	FMT_PASS(o->finish(t->head.state, global, out, DIM));
	/* by hand: global + lr * lr_scale * sum(n_k d_k) / sum(n_k) */
	for (int i = 0; i < DIM; i++) {
		double s = 0;
		for (int k = 0; k < NU; k++) {
			s += (double)ex[k] * deltas[k][i];
		}
		want[i] = global[i] + (float)(2.0 * 0.5 * s / 10.0);
	}
	FMT_NEAR(out, want, DIM, 1e-6);
	/* no update accepted: out stays */
	r.round = 2;
	FMT_PASS(o->begin(t->head.state, &r));
	memcpy(out, global, sizeof out);
	FMT_PASS(o->finish(t->head.state, global, out, DIM));
	assert_memory_equal(out, global, sizeof out);
	/* messages and timers reach the 1.x handlers */
	static const char payload[7] = "abcdef";
	fm_message m = { (uint32_t)sizeof m, 7, 2, 0, payload, sizeof payload };
	FMT_PASS(o->base.on_message(t->head.state, &m));
	assert_true(metric(&t->head, "a1_msg_from") == 7);
	assert_true(metric(&t->head, "a1_msg_len") == 7);
	FMT_PASS(o->base.on_timer(t->head.state, 99));
	assert_true(metric(&t->head, "a1_timer") == 99);
	tclose(t);
	unload(&l);
}

/* Aggregates ups[] with plugin name: once in one accept call, once in NU
 * calls of one update; both models and statuses must be the same, bit for
 * bit. Returns the many-call count the one-call instance reported. */
static double
accept_both_ways(const char *name, const uint64_t *ex, int *status1,
    int *statusn)
{
	float global[DIM] = { 0.5f, 0.25f, -2, 1, 0 }, out1[DIM], outn[DIM];
	loaded l;
	tinst *t1, *tn;
	FMT_PASS(load(name, &l));
	FMT_PASS(topen(&t1, &l.descs[0], lr1, DIM, FM_ROLE_SERVER, NU));
	FMT_PASS(topen(&tn, &l.descs[0], lr1, DIM, FM_ROLE_SERVER, NU));
	const fm_aggregator_ops *o = agg_ops(t1);
	make_updates(ex);
	fm_round r = make_round(1, 1.0, global);
	FMT_PASS(o->begin(t1->head.state, &r));
	FMT_PASS(o->begin(tn->head.state, &r));
	FMT_PASS(o->accept(t1->head.state, &ups[0].u, NU, status1));
	for (int k = 0; k < NU; k++) {
		FMT_PASS(o->accept(tn->head.state, &ups[k].u, 1, &statusn[k]));
	}
	memcpy(out1, global, sizeof out1);
	memcpy(outn, global, sizeof outn);
	nmetrics = 0;
	FMT_PASS(o->finish(tn->head.state, global, outn, DIM));
	assert_true(metric(&tn->head, "a1_many_calls") == 0);
	FMT_PASS(o->finish(t1->head.state, global, out1, DIM));
	double many = metric(&t1->head, "a1_many_calls");
	assert_memory_equal(out1, outn, sizeof out1);
	assert_memory_equal(status1, statusn, NU * sizeof *status1);
	tclose(t1);
	tclose(tn);
	unload(&l);
	return many;
}

static void
test_accept_n_equals_singles(void **state)
{
	static const uint64_t ex[NU] = { 3, 1, 4, 1 };
	int s1[NU], sn[NU];
	(void)state;
	assert_true(accept_both_ways("a1_mean", ex, s1, sn) == 0);
	assert_true(accept_both_ways("a1_many", ex, s1, sn) == 1);
	for (int k = 0; k < NU; k++) {
		assert_int_equal(s1[k], FM_OK);
	}
}

static void
test_failing_calls(void **state)
{
	static const uint64_t ex[NU] = { 2, 0, 5, 1 }; /* client 2: refused */
	float global[DIM] = { 0 };
	int s1[NU], sn[NU];
	loaded l;
	tinst *t;
	(void)state;
	/* per-update refusals come back in status, a_accept or a_accept_many */
	accept_both_ways("a1_mean", ex, s1, sn);
	assert_int_equal(s1[0], FM_OK);
	assert_int_equal(s1[1], FM_EINVAL);
	assert_int_equal(s1[2], FM_OK);
	assert_int_equal(s1[3], FM_OK);
	accept_both_ways("a1_many", ex, s1, sn);
	assert_int_equal(s1[1], FM_EINVAL);
	assert_int_equal(s1[3], FM_OK);

	/* a failing a_begin's code, and the reason set_error gave */
	FMT_PASS(load("a1_mean", &l));
	FMT_PASS(topen(&t, &l.descs[0], lr1, DIM, FM_ROLE_SERVER, NU));
	const fm_aggregator_ops *o = agg_ops(t);
	fm_round r = make_round(0, 1.0, global);
	FMT_FAIL(o->begin(t->head.state, &r), FM_ERANGE);
	r.round = 1;
	FMT_PASS(o->begin(t->head.state, &r));
	make_updates(ex);
	int st1;
	FMT_PASS(o->accept(t->head.state, &ups[1].u, 1, &st1));
	assert_int_equal(st1, FM_EINVAL);
	assert_string_equal(t->head.error, "update of client 2 has no "
	    "examples");
	tclose(t);
	unload(&l);

	/* a failing d_init: its code and its reason */
	FMT_PASS(load("a1_dropmax", &l));
	FMT_FAIL(topen(&t, &l.descs[0], NULL, DIM, FM_ROLE_SERVER, 1),
	    FM_EINVAL);
	assert_string_equal(t->head.error, "a1_dropmax needs at least 2 "
	    "updates a round but at most 1 arrives");
	tfree(t);
	unload(&l);
}

/* ---- defence and attack ------------------------------------------------------ */

enum { STRIDE = 8 };

static float rows[NU * STRIDE];

static void
make_rows(fm_rows *r, uint32_t *keep, uint64_t *keep_ex, uint8_t *adv,
    const float *global)
{
	static const uint64_t ex[NU] = { 10, 20, 30, 40 };
	static const float scale[NU] = { 1, 2, 5, 1.5f }; /* row 2: largest */
	for (int k = 0; k < NU; k++) {
		for (int i = 0; i < STRIDE; i++) {
			rows[k * STRIDE + i] = i < DIM ?
			    scale[k] * (float)(i + 1) * (k % 2 ? -1.0f : 1.0f) :
			    0;
		}
		ups[k].u = (fm_update) { (uint32_t)sizeof(wide_update), k + 1, 3,
			0, &rows[k * STRIDE], DIM, ex[k], 0.1, 0 };
		keep[k] = (uint32_t)k;
		keep_ex[k] = ex[k];
	}
	*r = (fm_rows) { (uint32_t)sizeof *r, 3, NU, 1, DIM, rows, STRIDE,
		&ups[0].u, global, NULL, adv, 77, keep, keep_ex, NU, 0 };
}

static void
test_defence(void **state)
{
	float global[DIM] = { 0 };
	uint32_t keep[NU];
	uint64_t keep_ex[NU];
	fm_rows r;
	loaded l;
	tinst *t;
	(void)state;
	FMT_PASS(load("a1_dropmax", &l));
	assert_int_equal(l.descs[0].kind, FM_KIND_DEFENCE);
	assert_int_equal(l.descs[0].ops_size, sizeof(fm_defence_ops));
	FMT_PASS(topen(&t, &l.descs[0], NULL, DIM, FM_ROLE_SERVER, NU));
	const fm_defence_ops *o = (const fm_defence_ops *)(const void *)t->base;
	assert_null(o->base.on_message);
	make_rows(&r, keep, keep_ex, NULL, global);
	FMT_PASS(o->apply(t->head.state, &r));
	assert_int_equal(r.nkeep, 3);
	assert_int_equal(keep[0], 0);
	assert_int_equal(keep[1], 1);
	assert_int_equal(keep[2], 3);
	assert_int_equal(keep_ex[0], 10);
	assert_int_equal(keep_ex[1], 20);
	assert_int_equal(keep_ex[2], 40);
	tclose(t);
	unload(&l);
}

static void
test_attack(void **state)
{
	float global[DIM] = { 0 }, before[NU * STRIDE];
	uint32_t keep[NU];
	uint64_t keep_ex[NU];
	uint8_t adv[NU] = { 0, 1, 0, 1 };
	fm_rows r;
	loaded l;
	tinst *t;
	(void)state;
	FMT_PASS(load("a1_negate", &l));
	FMT_PASS(topen(&t, &l.descs[0], NULL, DIM, FM_ROLE_SERVER, NU));
	const fm_attack_ops *o = (const fm_attack_ops *)(const void *)t->base;
	assert_non_null(o->poison_data);
	assert_non_null(o->poison_updates);
	make_rows(&r, keep, keep_ex, adv, global);
	r.nadv = 2;
	memcpy(before, rows, sizeof before);
	FMT_PASS(o->poison_updates(t->head.state, &r));
	for (int k = 0; k < NU; k++) {
		for (int i = 0; i < STRIDE; i++) {
			float want = adv[k] && i < DIM ? -before[k * STRIDE + i] :
			    before[k * STRIDE + i];
			assert_true(rows[k * STRIDE + i] == want);
		}
	}
	float x[3 * 2] = { 0 };
	int32_t y[3] = { 0, 3, 9 };
	fm_attack_data d = { (uint32_t)sizeof d, FM_ATTACK_EVAL, x, y, 3, 2,
		10, 0, 1, 0, 0, 5, 3, 0, 0 };
	FMT_PASS(o->poison_data(t->head.state, &d));
	assert_int_equal(y[0], 9);
	assert_int_equal(y[1], 6);
	assert_int_equal(y[2], 0);
	assert_int_equal(d.defined, 1);
	d.nclasses = 0; /* the plugin's refusal comes back */
	FMT_FAIL(o->poison_data(t->head.state, &d), FM_EINVAL);
	tclose(t);
	unload(&l);
}

/* ---- consensus --------------------------------------------------------------- */

typedef struct wide_peer {
	fm_peer_model p;
	double pad[3];
} wide_peer;

static void
test_mix(void **state)
{
	float own_p[DIM], nb_p[2][DIM], model[DIM], want[DIM];
	wide_peer nb[2];
	loaded l;
	tinst *t;
	(void)state;
	FMT_PASS(load("a1_wavg", &l));
	assert_int_equal(l.descs[0].kind, FM_KIND_CONSENSUS);
	FMT_PASS(topen(&t, &l.descs[0], NULL, DIM, FM_ROLE_PEER, 0));
	const fm_consensus_ops *o =
	    (const fm_consensus_ops *)(const void *)t->base;
	double mass = -1;
	FMT_PASS(o->outgoing(t->head.state, 1, 3, &mass));
	assert_true(mass == 0.25);
	for (int i = 0; i < DIM; i++) {
		own_p[i] = (float)i;
		nb_p[0][i] = 10.0f + (float)i;
		nb_p[1][i] = -4.0f * (float)i;
	}
	fm_peer_model own = { (uint32_t)sizeof own, 3, 2, 0, own_p, 0.5, 0, 7 };
	memset(nb, 0, sizeof nb);
	nb[0].p = (fm_peer_model) { (uint32_t)sizeof(wide_peer), 1, 2, 0,
		nb_p[0], 0.3, 0.125, 5 };
	nb[1].p = (fm_peer_model) { (uint32_t)sizeof(wide_peer), 4, 1, 0,
		nb_p[1], 0.1, 0.5, 9 };
	fm_mix m = { (uint32_t)sizeof m, 1, 3, 2, 2, 2, &own, &nb[0].p, 2, 0,
		NULL };
	memcpy(model, own_p, sizeof model);
	nmetrics = 0;
	FMT_PASS(o->mix(t->head.state, &m, model, DIM));
	for (int i = 0; i < DIM; i++) {
		want[i] = (float)((0.5 * own_p[i] + 0.3 * nb_p[0][i] +
		    0.1 * nb_p[1][i]) / 0.9);
	}
	FMT_NEAR(model, want, DIM, 1e-6);
	assert_true(metric(&t->head, "a1_mass") == 0.625);
	/* no neighbour arrived: the own model alone */
	m.nneighbours = 0;
	m.neighbours = NULL;
	FMT_PASS(o->mix(t->head.state, &m, model, DIM));
	FMT_NEAR(model, own_p, DIM, 1e-6);
	tclose(t);
	unload(&l);
}

/* ---- refusals ------------------------------------------------------------------ */

static void
test_local_hooks_refused(void **state)
{
	loaded l;
	char want[PATH_MAX + 256];
	(void)state;
	FMT_FAIL(load("a1_prox", &l), FM_EVERSION);
	assert_int_equal(l.err.code, FM_EVERSION);
	snprintf(want, sizeof want, "%s: component 'a1_prox' uses the ABI 1.2 "
	    "local-training hooks, which 2.0 moved to the local kind: rebuild "
	    "it against ABI 2.0 (docs/plugin-guide.md, 'ABI 1.x plugins')",
	    so_path("a1_prox"));
	assert_string_equal(l.err.msg, want);
	assert_null(l.a);
	assert_null(l.descs);
	assert_int_equal(l.n, 0);
	unload(&l);
}

static void
test_truncated_descriptor(void **state)
{
	loaded l;
	(void)state;
	FMT_FAIL(load("a1_tiny_info", &l), FM_EVERSION);
	assert_non_null(strstr(l.err.msg, so_path("a1_tiny_info")));
	assert_non_null(strstr(l.err.msg, "descriptor size 16 is smaller "
	    "than the ABI 1.0 descriptor"));
	assert_null(l.a);
	unload(&l);
#if defined(__GLIBC__)
	FMT_FAIL(load("a1_short_sym", &l), FM_EPLUGIN);
	/* the symbol is 16 bytes, more with a sanitizer's redzone */
	assert_non_null(strstr(l.err.msg, "descriptor claims"));
	assert_non_null(strstr(l.err.msg, "but the symbol has"));
	assert_null(l.a);
	unload(&l);
#endif
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mean_desc),
		cmocka_unit_test(test_mean_aggregate),
		cmocka_unit_test(test_accept_n_equals_singles),
		cmocka_unit_test(test_failing_calls),
		cmocka_unit_test(test_defence),
		cmocka_unit_test(test_attack),
		cmocka_unit_test(test_mix),
		cmocka_unit_test(test_local_hooks_refused),
		cmocka_unit_test(test_truncated_descriptor),
	};
	fm_log_set_sink(fmt_logcap_sink, &logs);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
