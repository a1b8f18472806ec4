/* SPDX-License-Identifier: MIT */
/* loader_test.c: every loader refusal, directory loading, parameters and
 * plugin messaging, against the plugins in FEDMESH_TEST_PLUGIN_DIR. */
#define _DEFAULT_SOURCE /* setenv, mkstemps, PATH_MAX */
#include <limits.h>
#include <unistd.h>

#include "fm_test.h"

#include "core/core.h"
#include "plugin/registry.h"

#ifndef FM_PLUGIN_OUT_DIR
#define FM_PLUGIN_OUT_DIR "lib/fedmesh/plugins"
#endif

/* ---- helpers --------------------------------------------------------------- */

static const char *
test_dir(void)
{
	const char *d = getenv("FEDMESH_TEST_PLUGIN_DIR");
	assert_non_null(d);
	return d;
}

static const char *
builtin_dir(void)
{
	const char *d = getenv("FEDMESH_BUILTIN_PLUGIN_DIR");
	return d != NULL ? d : FM_PLUGIN_OUT_DIR;
}

/* <test dir>/fmt_<name>.so */
static const char *
tp(const char *name)
{
	static char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s/fmt_%s.so", test_dir(), name);
	return buf;
}

static const char *
fedavg_path(void)
{
	static char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s/fedavg.so", builtin_dir());
	return buf;
}

static int
setup(void **state)
{
	fmi_registry *r;
	fm_log_set_level(FM_LOG_INFO);
	if (fmi_registry_new(&r) != FM_OK ||
	    fmi_registry_load_file(r, fedavg_path(), NULL) != FM_OK) {
		return -1;
	}
	*state = r;
	return 0;
}

static int
teardown(void **state)
{
	fmi_registry_free(*state);
	return 0;
}

/* fedavg of one update with 2 examples: global += delta. */
static void
check_fedavg_usable(const fmi_registry *r)
{
	const fmi_component *c = fmi_registry_find(r, FM_KIND_AGGREGATOR,
	    "fedavg");
	float g[3] = { 1, 2, 3 }, d[3] = { 0.5f, -1, 2 }, want[3] = { 1.5f, 1, 5 };
	float out[3];
	int32_t ids[1] = { 1 };
	int st = -1;
	fmi_agg *a;
	assert_non_null(c);
	assert_non_null(strstr(c->path, "fedavg.so"));
	FMT_PASS(fmi_agg_open(&a, c, &(fmi_open_args){ .dim = 3,
	    .role = FM_ROLE_SERVER, .node_id = FM_NODE_SERVER, .seed = 1 },
	    NULL));
	fm_round rd = { .struct_size = sizeof rd, .round = 1, .nclients = 1,
		.population = 1, .clients = ids, .global = g, .dim = 3,
		.lr_scale = 1.0 };
	fm_update u = { .struct_size = sizeof u, .client = 1, .round = 1,
		.delta = d, .dim = 3, .num_examples = 2, .loss = 0.5 };
	FMT_PASS(fmi_agg_begin(a, &rd));
	FMT_PASS(fmi_agg_accept(a, &u, 1, &st));
	FMT_PASS(st);
	memcpy(out, g, sizeof g);
	FMT_PASS(fmi_agg_finish(a, g, out, 3));
	FMT_NEAR(out, want, 3, 1e-6);
	fmi_agg_close(a);
}

/* A refused load: the code, a log line with the id naming the file, err
 * naming the file and the reason, and an unchanged, working registry. */
static void
expect_refusal(fmi_registry *r, const char *path, int code, const char *id,
    const char *reason)
{
	fmt_logcap cap = { .n = 0 };
	fm_error e = { 0, "" };
	size_t before = fmi_registry_count(r);
	fm_log_set_sink(fmt_logcap_sink, &cap);
	int rv = fmi_registry_load_file(r, path, &e);
	fm_log_set_sink(NULL, NULL);
	FMT_FAIL(rv, code);
	assert_int_equal(e.code, code);
	int i = fmt_logcap_find(&cap, id);
	if (i < 0 || strstr(e.msg, path) == NULL ||
	    strstr(e.msg, reason) == NULL) {
		print_error("want id %s and '%s' in: %s (log: %s %s)\n", id,
		    reason, e.msg, cap.n ? cap.ids[0] : "-",
		    cap.n ? cap.lines[0] : "-");
		fail();
	}
	assert_non_null(strstr(cap.lines[i], path));
	assert_int_equal(fmi_registry_count(r), before);
	check_fedavg_usable(r);
}

/* ---- the built-in fedavg ---------------------------------------------------- */

static void
test_fedavg_loaded(void **state)
{
	fmi_registry *r = *state;
	assert_int_equal(fmi_registry_count(r), 1);
	const fmi_component *c = fmi_registry_at(r, 0);
	assert_int_equal(c->kind, FM_KIND_AGGREGATOR);
	assert_string_equal(c->desc->name, "fedavg");
	assert_string_equal(c->plugin->name, "fedavg");
	assert_non_null(c->plugin->version);
	assert_int_equal(fmi_component_nparams(c), 0);
	assert_ptr_equal(fmi_registry_find(r, 0, "fedavg"), c);
	assert_null(fmi_registry_find(r, FM_KIND_DEFENCE, "fedavg"));
	assert_null(fmi_registry_find(r, 0, "nosuch"));
	assert_null(fmi_registry_at(r, 1));
	check_fedavg_usable(r);
}

/* ---- refusals --------------------------------------------------------------- */

static void
test_refuse_open(void **state)
{
	char tmp[] = "/tmp/fmt_garbageXXXXXX.so";
	int fd = mkstemps(tmp, 3);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not ELF\n", 8), 8);
	close(fd);
	expect_refusal(*state, "/nonexistent/x.so", FM_ENOENT,
	    "FM-PLUGIN-OPEN", "no such file");
	expect_refusal(*state, "fedavg.so", FM_EINVAL, "FM-PLUGIN-OPEN",
	    "fedmesh never searches for plugins");
	expect_refusal(*state, tmp, FM_EPLUGIN, "FM-PLUGIN-OPEN",
	    "cannot be loaded");
	unlink(tmp);
	expect_refusal(*state, test_dir(), FM_EPLUGIN, "FM-PLUGIN-OPEN",
	    "not a regular file");
}

static void
test_refuse_not_a_plugin(void **state)
{
	expect_refusal(*state, tp("not_a_plugin"), FM_EPLUGIN,
	    "FM-PLUGIN-ENTRY",
	    "not a fedmesh plugin (no fm_plugin_descriptor symbol)");
}

static void
test_refuse_abi(void **state)
{
	char want[128];
	expect_refusal(*state, tp("bad_magic"), FM_EPLUGIN, "FM-PLUGIN-ABI",
	    "descriptor magic 0xdeadbeef");
	snprintf(want, sizeof want, "built for plugin ABI %d.0, but fedmesh "
	    "%s speaks plugin ABI %d.%d; rebuild the plugin against fedmesh %s",
	    FM_PLUGIN_ABI_MAJOR + 1, FM_VERSION_STRING, FM_PLUGIN_ABI_MAJOR,
	    FM_PLUGIN_ABI_MINOR, FM_VERSION_STRING);
	expect_refusal(*state, tp("bad_major"), FM_EVERSION, "FM-PLUGIN-ABI",
	    want);
	expect_refusal(*state, tp("bad_info_size"), FM_EVERSION,
	    "FM-PLUGIN-ABI", "descriptor size 16 is smaller");
	expect_refusal(*state, tp("bad_build_sig"), FM_EPLUGIN,
	    "FM-PLUGIN-ABI", "build signature");
}

/* The descriptor's arrays must be stepped by sizes the host knows. */
static void
test_refuse_sizes(void **state)
{
	fmi_registry *r = *state;
	expect_refusal(r, tp("bad_comp_size"), FM_EPLUGIN, "FM-PLUGIN-DESC",
	    "component_size");
	expect_refusal(r, tp("bad_param_size"), FM_EPLUGIN, "FM-PLUGIN-DESC",
	    "param_size");
	assert_null(fmi_registry_find(r, 0, "bad_param_size"));
}

static void
test_refuse_init_rollback(void **state)
{
	fmi_registry *r = *state;
	expect_refusal(r, tp("init_fails"), FM_EPLUGIN, "FM-PLUGIN-INIT",
	    "init failed");
	assert_null(fmi_registry_find(r, 0, "rollback_one"));
	assert_null(fmi_registry_find(r, 0, "rollback_two"));
}

static void
test_refuse_ops(void **state)
{
	fmi_registry *r = *state;
	expect_refusal(r, tp("null_op"), FM_EPLUGIN, "FM-PLUGIN-OPS",
	    "has no accept (required)");
	expect_refusal(r, tp("ops_kind"), FM_EPLUGIN, "FM-PLUGIN-OPS",
	    "'ops_kind' is declared as aggregator but its ops have kind "
	    "defence");
	expect_refusal(r, tp("ops_size"), FM_EPLUGIN, "FM-PLUGIN-OPS",
	    "plugin ABI 2.0 needs at least");
	expect_refusal(r, tp("null_ops"), FM_EPLUGIN, "FM-PLUGIN-OPS",
	    "'null_ops' has no ops table");
	assert_null(fmi_registry_find(r, 0, "null_ops"));
}

static void
test_refuse_desc(void **state)
{
	expect_refusal(*state, tp("bad_param_desc"), FM_EPLUGIN,
	    "FM-PLUGIN-DESC", "parameter 'lr': default 5 is not in [0, 1]");
}

static void
test_refuse_dup(void **state)
{
	fmi_registry *r = *state;
	expect_refusal(r, tp("dup_fedavg"), FM_EEXIST, "FM-PLUGIN-DUP",
	    "aggregator 'fedavg' is already provided by");
	expect_refusal(r, fedavg_path(), FM_EEXIST, "FM-PLUGIN-DUP",
	    "already provided");
	assert_string_equal(fmi_registry_find(r, 0, "fedavg")->plugin->version,
	    "2.0.0");
}

/* A plugin from a newer minor ABI loads (larger descriptor, component
 * descriptors and ops table); the host reads the 2.0 prefix of each and
 * ignores the fields it does not know. */
static void
test_newer_minor_loads(void **state)
{
	fmi_registry *r = *state;
	FMT_PASS(fmi_registry_load_file(r, tp("future_minor"), NULL));
	const fmi_component *c = fmi_registry_find(r, FM_KIND_AGGREGATOR,
	    "future");
	assert_non_null(c);
	assert_int_equal(c->plugin->abi_minor, FM_PLUGIN_ABI_MINOR + 1);
	assert_true(c->plugin->info_size > sizeof(fm_plugin_info));
	assert_true(c->plugin->component_size > sizeof(fm_component_desc));
	/* the plugin's tables are bigger; the host keeps host-sized copies */
	assert_true(c->plugin->components[0].ops_size >
	    sizeof(fm_aggregator_ops));
	const fm_aggregator_ops *ops = c->ops;
	assert_true(ops->base.struct_size == sizeof(fm_aggregator_ops));
	assert_true(c->desc->ops_size == sizeof(fm_aggregator_ops));
	assert_non_null(ops->finish);
	assert_null(ops->base.on_message);
	fmi_agg *a;
	FMT_PASS(fmi_agg_open(&a, c, &(fmi_open_args){ .dim = 2,
	    .role = FM_ROLE_SERVER, .seed = 1 }, NULL));
	fmi_agg_close(a);
	check_fedavg_usable(r);
}

static void
test_register_outside_init(void **state)
{
	fmt_logcap cap = { .n = 0 };
	(void)state;
	fm_log_set_sink(fmt_logcap_sink, &cap);
	/* A registrar that is not the one of a running fm_plugin_init is
	 * refused before it is dereferenced. */
	FMT_FAIL(fmi_host_api()->register_component((fm_registrar *)&cap,
	    NULL, 0), FM_ESTATE);
	FMT_FAIL(fmi_host_api()->register_component(NULL, NULL, 0),
	    FM_ESTATE);
	fm_log_set_sink(NULL, NULL);
	assert_true(fmt_logcap_find(&cap, "FM-PLUGIN-OPS") >= 0);
}

/* ---- directories ------------------------------------------------------------ */

static void
test_load_dir(void **state)
{
	fmi_registry *r = *state;
	fmt_logcap cap = { .n = 0 };
	size_t n = 99;
	fm_log_set_sink(fmt_logcap_sink, &cap);
	FMT_PASS(fmi_registry_load_dir(r, test_dir(), &n, NULL));
	fm_log_set_sink(NULL, NULL);
	/* Only future_minor, never_finishes, params, peerlink, pingpong,
	 * talkdef, tp_compressor and tp_privacy are good, in name order. */
	assert_int_equal(n, 8);
	assert_int_equal(fmi_registry_count(r), 9);
	assert_string_equal(fmi_registry_at(r, 1)->desc->name, "future");
	assert_string_equal(fmi_registry_at(r, 2)->desc->name,
	    "never_finishes");
	assert_string_equal(fmi_registry_at(r, 3)->desc->name, "paramtest");
	assert_string_equal(fmi_registry_at(r, 4)->desc->name, "peerlink");
	assert_string_equal(fmi_registry_at(r, 5)->desc->name, "pingpong");
	assert_string_equal(fmi_registry_at(r, 6)->desc->name, "talkdef");
	assert_string_equal(fmi_registry_at(r, 7)->desc->name, "int8");
	assert_string_equal(fmi_registry_at(r, 8)->desc->name, "clip_offset");
	assert_true(fmt_logcap_find(&cap, "FM-PLUGIN-ABI") >= 0);
	assert_true(fmt_logcap_find(&cap, "FM-PLUGIN-DUP") >= 0);
	check_fedavg_usable(r);
	FMT_FAIL(fmi_registry_load_dir(r, "/nonexistent", &n, NULL),
	    FM_ENOENT);
	assert_int_equal(n, 0);
	FMT_FAIL(fmi_registry_load_dir(r, NULL, NULL, NULL), FM_EINVAL);
}

/* First wins across FEDMESH_PLUGIN_PATH; bad entries are logged and
 * skipped; relative entries are never used. */
static void
test_load_defaults(void **state)
{
	char path[3 * PATH_MAX];
	fmt_logcap cap = { .n = 0 };
	fmi_registry *r;
	(void)state;
	snprintf(path, sizeof path, "plugins::%s:/nonexistent/fm:%s:%s",
	    builtin_dir(), test_dir(), builtin_dir());
	setenv("FEDMESH_PLUGIN_PATH", path, 1);
	FMT_PASS(fmi_registry_new(&r));
	fm_log_set_sink(fmt_logcap_sink, &cap);
	FMT_PASS(fmi_registry_load_defaults(r, NULL));
	fm_log_set_sink(NULL, NULL);
	unsetenv("FEDMESH_PLUGIN_PATH");
	/* every built-in component once (the built-in dir is listed twice)
	 * and the 8 good test plugins */
	fmi_registry *b;
	FMT_PASS(fmi_registry_new(&b));
	FMT_PASS(fmi_registry_load_dir(b, builtin_dir(), NULL, NULL));
	/* fedavg 1, fedopt 4, fednova 1, gossip 1, pushsum 1, robust 2,
	 * data_poison 2 and model_poison 5 (attacks), krum 3, coordinate 2,
	 * geomedian 1, clipping 2 and fltrust 1 (defences), fedprox 1 and
	 * scaffold 1 (local rules) */
	assert_true(fmi_registry_count(b) >= 28);
	assert_int_equal(fmi_registry_count(r), fmi_registry_count(b) + 8);
	fmi_registry_free(b);
	const fmi_component *c = fmi_registry_find(r, 0, "fedavg");
	assert_string_equal(c->plugin->name, "fedavg"); /* not the impostor */
	assert_non_null(fmi_registry_find(r, 0, "pingpong"));
	int i = fmt_logcap_find(&cap, "FM-PLUGIN-DUP");
	assert_true(i >= 0);
	assert_non_null(strstr(cap.lines[i], "fmt_dup_fedavg.so"));
	assert_true(fmt_logcap_find(&cap, "FM-PLUGIN-PATH") >= 0);
	check_fedavg_usable(r);
	fmi_registry_free(r);
}

/* ---- parameters ------------------------------------------------------------ */

static const fmi_component *
paramtest(fmi_registry *r)
{
	if (fmi_registry_find(r, 0, "paramtest") == NULL) {
		FMT_PASS(fmi_registry_load_file(r, tp("params"), NULL));
	}
	return fmi_registry_find(r, FM_KIND_AGGREGATOR, "paramtest");
}

static void
expect_param_error(const fmi_component *c, const fmi_param_in *in,
    size_t nin, const char *want)
{
	fm_value out[4] = { { 7, "x" }, { 7, "x" }, { 7, "x" }, { 7, "x" } };
	fm_error e;
	FMT_FAIL(fmi_params_resolve(c, in, nin, out, &e), FM_EINVAL);
	if (strstr(e.msg, want) == NULL ||
	    strstr(e.msg, "aggregator 'paramtest'") == NULL ||
	    strstr(e.msg, "valid parameters: k (int in [1, 10], default 3), "
	    "lr (real in [0, 1], default 0.1), nesterov (bool, default false), "
	    "mode (string, default \"fast\")") == NULL) {
		print_error("want '%s' in: %s\n", want, e.msg);
		fail();
	}
	for (int i = 0; i < 4; i++) { /* untouched on failure */
		assert_true(out[i].num == 7);
	}
}

static void
test_params_defaults(void **state)
{
	const fmi_component *c = paramtest(*state);
	fm_value out[4];
	assert_int_equal(fmi_component_nparams(c), 4);
	FMT_PASS(fmi_params_resolve(c, NULL, 0, out, NULL));
	assert_true(out[0].num == 3 && out[1].num == 0.1 && out[2].num == 0);
	assert_string_equal(out[3].str, "fast");
	fmi_param_in in[] = { { "mode", 1, 0, "slow" }, { "k", 0, 10, NULL },
		{ "nesterov", 0, 1, NULL } };
	FMT_PASS(fmi_params_resolve(c, in, 3, out, NULL));
	assert_true(out[0].num == 10 && out[1].num == 0.1 && out[2].num == 1);
	assert_string_equal(out[3].str, "slow");
}

static void
test_params_errors(void **state)
{
	const fmi_component *c = paramtest(*state);
	fmi_param_in unknown[] = { { "lrr", 0, 0.5, NULL } };
	expect_param_error(c, unknown, 1, "no parameter 'lrr' (did you mean "
	    "'lr'?)");
	fmi_param_in bogus[] = { { "bogus", 0, 1, NULL } };
	expect_param_error(c, bogus, 1, "no parameter 'bogus'");
	fmi_param_in str_for_real[] = { { "lr", 1, 0, "fast" } };
	expect_param_error(c, str_for_real, 1, "parameter 'lr' must be a real "
	    "number, got a string");
	fmi_param_in num_for_str[] = { { "mode", 0, 1, NULL } };
	expect_param_error(c, num_for_str, 1, "parameter 'mode' must be a "
	    "string, got a number");
	fmi_param_in high[] = { { "k", 0, 11, NULL } };
	expect_param_error(c, high, 1, "parameter 'k' = 11 is out of range "
	    "[1, 10]");
	fmi_param_in low[] = { { "lr", 0, -0.5, NULL } };
	expect_param_error(c, low, 1, "parameter 'lr' = -0.5 is out of range");
	fmi_param_in frac[] = { { "k", 0, 1.5, NULL } };
	expect_param_error(c, frac, 1, "parameter 'k' must be an integer, got "
	    "1.5");
	fmi_param_in two[] = { { "nesterov", 0, 2, NULL } };
	expect_param_error(c, two, 1, "parameter 'nesterov' must be a boolean");
	fmi_param_in nan_[] = { { "lr", 0, NAN, NULL } };
	expect_param_error(c, nan_, 1, "parameter 'lr' must be finite");
	fmi_param_in twice[] = { { "k", 0, 2, NULL }, { "k", 0, 3, NULL } };
	expect_param_error(c, twice, 2, "parameter 'k' given twice");
}

static void
test_params_none_declared(void **state)
{
	const fmi_component *c = fmi_registry_find(*state, 0, "fedavg");
	fmi_param_in in[] = { { "bogus", 0, 1, NULL } };
	fm_value out[1];
	fm_error e;
	FMT_FAIL(fmi_params_resolve(c, in, 1, out, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "aggregator 'fedavg': no parameter "
	    "'bogus'; valid parameters: none"));
	FMT_PASS(fmi_params_resolve(c, NULL, 0, out, &e));
}

/* ---- messaging: pingpong between in-process instances ------------------- */

#define PP_CLIENTS 3

typedef struct pp_msg {
	int32_t from, to;
	char data[8];
	size_t len;
} pp_msg;

typedef struct pp_net {
	pp_msg q[32];
	int head, tail;
	double pongs;
	int nmetric;
} pp_net;

typedef struct pp_end {
	pp_net *net;
	int32_t id;
} pp_end;

static int
pp_send(void *node, const char *comp, int32_t to, const void *data,
    size_t len)
{
	pp_end *e = node;
	assert_string_equal(comp, "pingpong");
	if (to < 0 || to > PP_CLIENTS || len > 8) {
		return FM_ENOENT;
	}
	pp_msg *m = &e->net->q[e->net->tail++ % 32];
	m->from = e->id;
	m->to = to;
	m->len = len;
	memcpy(m->data, data, len);
	return FM_OK;
}

static void
pp_metric(void *node, const char *name, double value)
{
	pp_end *e = node;
	assert_string_equal(name, "pongs");
	e->net->pongs = value;
	e->net->nmetric++;
}

/* Delivers queued messages until the network is quiet. */
static void
pp_pump(pp_net *net, fmi_agg **inst)
{
	while (net->head < net->tail) {
		pp_msg m = net->q[net->head++ % 32];
		fm_message msg = { .struct_size = sizeof msg, .from = m.from,
			.round = 1, .data = m.data, .len = m.len };
		fmi_agg *to = inst[m.to];
		FMT_PASS(fmi_inst_message(&to->h, &msg));
	}
}

static void
test_pingpong(void **state)
{
	fmi_registry *r = *state;
	pp_net net = { .head = 0 };
	pp_end ends[PP_CLIENTS + 1];
	fmi_agg *inst[PP_CLIENTS + 1];
	if (fmi_registry_find(r, 0, "pingpong") == NULL) {
		FMT_PASS(fmi_registry_load_file(r, tp("pingpong"), NULL));
	}
	const fmi_component *c = fmi_registry_find(r, 0, "pingpong");
	for (int32_t i = 0; i <= PP_CLIENTS; i++) {
		ends[i] = (pp_end) { &net, i };
		fmi_node_link link = { &ends[i], pp_send, NULL, pp_metric, NULL,
			1, 0, 0 };
		FMT_PASS(fmi_agg_open(&inst[i], c, &(fmi_open_args){ .dim = 2,
		    .role = i == 0 ? FM_ROLE_SERVER : FM_ROLE_CLIENT,
		    .node_id = i, .seed = 5, .link = &link }, NULL));
	}
	float g[2] = { 1, 1 }, d[2] = { 2, 4 }, want[2] = { 3, 5 };
	int32_t ids[PP_CLIENTS] = { 1, 2, 3 };
	float out[2];
	int st = -1;
	fm_round rd = { .struct_size = sizeof rd, .round = 1,
		.nclients = PP_CLIENTS, .population = PP_CLIENTS, .clients = ids,
		.global = g, .dim = 2, .lr_scale = 1.0 };
	fm_update u = { .struct_size = sizeof u, .client = 2, .round = 1,
		.delta = d, .dim = 2, .num_examples = 10 };
	FMT_PASS(fmi_agg_begin(inst[0], &rd));
	assert_int_equal(net.tail, PP_CLIENTS); /* one ping each */
	pp_pump(&net, inst);
	assert_int_equal(net.tail, 2 * PP_CLIENTS); /* and a pong back */
	FMT_PASS(fmi_agg_accept(inst[0], &u, 1, &st));
	FMT_PASS(st);
	memcpy(out, g, sizeof g);
	FMT_PASS(fmi_agg_finish(inst[0], g, out, 2));
	assert_int_equal(net.nmetric, 1);
	assert_true(net.pongs == PP_CLIENTS);
	FMT_NEAR(out, want, 2, 1e-6);
	for (int i = 0; i <= PP_CLIENTS; i++) {
		fmi_agg_close(inst[i]);
	}
}

/* ---- the privacy and compressor kinds -------------------------------------- */

/* tp_privacy's "clip_offset" through every fmi_priv_* call: begin on a
 * client and on the server, the client's clip (and example weight), the
 * server's seeded offset on row 0 (the same seed, the same bits). */
static void
test_privacy_kind(void **state)
{
	fmi_registry *r = *state;
	FMT_PASS(fmi_registry_load_file(r, tp("tp_privacy"), NULL));
	const fmi_component *c = fmi_registry_find(r, FM_KIND_PRIVACY,
	    "clip_offset");
	assert_non_null(c);
	assert_int_equal(c->desc->flags, FM_PRIVACY_CLIENT | FM_PRIVACY_SERVER);
	const fmi_param_in in = { "clip", 0, 1.0, NULL };
	fm_value v[1];
	FMT_PASS(fmi_params_resolve(c, &in, 1, v, NULL));
	fmi_priv *cl = NULL, *sv = NULL, *sv2 = NULL;
	FMT_PASS(fmi_priv_open(&cl, c, &(fmi_open_args){ .params = v,
	    .dim = 2, .role = FM_ROLE_CLIENT, .node_id = 1, .seed = 3 }, NULL));
	FMT_PASS(fmi_priv_open(&sv, c, &(fmi_open_args){ .params = v,
	    .dim = 2, .role = FM_ROLE_SERVER, .seed = 3 }, NULL));
	FMT_PASS(fmi_priv_open(&sv2, c, &(fmi_open_args){ .params = v,
	    .dim = 2, .role = FM_ROLE_SERVER, .seed = 3 }, NULL));
	float g[2] = { 0, 0 };
	int32_t self = 1;
	fm_round rc = { .struct_size = sizeof rc, .round = 4, .nclients = 1,
		.clients = &self, .global = g, .dim = 2, .lr_scale = 1.0 };
	/* client: (3, 4) clipped to norm 1, examples halved */
	float x[2] = { 3, 4 };
	fm_private_update pu = { .struct_size = sizeof pu, .round = 4,
		.client = 1, .delta = x, .dim = 2, .num_examples = 10,
		.seed = 9 };
	FMT_FAIL(fmi_priv_client(cl, &pu), FM_EINVAL); /* no begin yet */
	FMT_PASS(fmi_priv_begin(cl, &rc));
	FMT_PASS(fmi_priv_client(cl, &pu));
	const float want[2] = { 0.6f, 0.8f };
	FMT_NEAR(x, want, 2, 1e-6);
	assert_int_equal(pu.num_examples, 5);
	/* server: an offset in [0, 1) on row 0, the same for the same seed */
	float rows[2][16] = { { 1, 2 }, { 3, 4 } }, rows2[2][16];
	memcpy(rows2, rows, sizeof rows);
	fm_update up[2] = {
		{ .struct_size = sizeof(fm_update), .client = 1, .round = 4,
		    .delta = rows[0], .dim = 2, .num_examples = 1 },
		{ .struct_size = sizeof(fm_update), .client = 2, .round = 4,
		    .delta = rows[1], .dim = 2, .num_examples = 1 } };
	uint32_t keep[2] = { 0, 1 };
	uint64_t ke[2] = { 1, 1 };
	fm_rows m = { .struct_size = sizeof m, .round = 4, .n = 2, .dim = 2,
		.deltas = &rows[0][0], .stride = 16, .updates = up, .global = g,
		.seed = 77, .keep = keep, .keep_examples = ke, .nkeep = 2 };
	fm_rows m2 = m;
	m2.deltas = &rows2[0][0];
	fm_round rs = rc;
	rs.nclients = 2;
	FMT_PASS(fmi_priv_begin(sv, &rs));
	FMT_PASS(fmi_priv_server(sv, &m));
	FMT_PASS(fmi_priv_server(sv2, &m2));
	assert_memory_equal(rows, rows2, sizeof rows);
	assert_true(rows[0][0] >= 1 && rows[0][0] < 2);
	assert_true(rows[0][1] >= 2 && rows[0][1] < 3);
	assert_true(rows[1][0] == 3 && rows[1][1] == 4);
	assert_int_equal(m.nkeep, 2);
	assert_false(fmi_inst_saves(&sv->h));
	fmi_priv_close(cl);
	fmi_priv_close(sv);
	fmi_priv_close(sv2);
}

/* tp_compressor's "int8" through every fmi_cmp_* call: bound, encode
 * (with its residual), decode, and decode's refusals. */
static void
test_compressor_kind(void **state)
{
	fmi_registry *r = *state;
	FMT_PASS(fmi_registry_load_file(r, tp("tp_compressor"), NULL));
	const fmi_component *c = fmi_registry_find(r, FM_KIND_COMPRESSOR,
	    "int8");
	assert_non_null(c);
	fmi_cmp *enc = NULL, *dec = NULL;
	FMT_PASS(fmi_cmp_open(&enc, c, &(fmi_open_args){ .dim = 4,
	    .role = FM_ROLE_CLIENT, .node_id = 2, .seed = 1 }, NULL));
	FMT_PASS(fmi_cmp_open(&dec, c, &(fmi_open_args){ .dim = 4,
	    .role = FM_ROLE_SERVER, .seed = 1 }, NULL));
	size_t cap = fmi_cmp_bound(enc, 4);
	assert_int_equal(cap, 12 + 4);
	unsigned char buf[16];
	float x[4] = { 1.27f, -0.635f, 0, 0.01f }, y[4];
	const float x0[4] = { 1.27f, -0.635f, 0, 0.01f };
	fm_codec e = { .struct_size = sizeof e, .round = 1, .client = 2,
		.x = x, .dim = 4, .buf = buf, .cap = cap, .seed = 5 };
	FMT_PASS(fmi_cmp_encode(enc, &e));
	assert_int_equal(e.len, 16);
	fm_codec d = { .struct_size = sizeof d, .round = 1, .client = 2,
		.x = y, .dim = 4, .buf = buf, .cap = cap, .len = e.len };
	FMT_PASS(fmi_cmp_decode(dec, &d));
	for (int j = 0; j < 4; j++) { /* decoded + residual = input */
		assert_true(fabsf(y[j] + x[j] - x0[j]) < 1e-6f);
		assert_true(fabsf(y[j] - x0[j]) <= 0.01f / 2 + 1e-6f);
	}
	d.len = 15; /* short */
	FMT_FAIL(fmi_cmp_decode(dec, &d), FM_EPROTO);
	d.len = 16;
	buf[0] ^= 1; /* another dim */
	FMT_FAIL(fmi_cmp_decode(dec, &d), FM_EPROTO);
	e.cap = 15; /* below the bound */
	FMT_FAIL(fmi_cmp_encode(enc, &e), FM_ERANGE);
	fmi_cmp_close(enc);
	fmi_cmp_close(dec);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fedavg_loaded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_not_a_plugin, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refuse_abi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_init_rollback, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refuse_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_desc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_dup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_minor_loads, setup,
		    teardown),
		cmocka_unit_test(test_register_outside_init),
		cmocka_unit_test_setup_teardown(test_load_dir, setup, teardown),
		cmocka_unit_test(test_load_defaults),
		cmocka_unit_test_setup_teardown(test_params_defaults, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_params_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_params_none_declared, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pingpong, setup, teardown),
		cmocka_unit_test_setup_teardown(test_privacy_kind, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_compressor_kind, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
