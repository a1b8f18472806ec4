/* SPDX-License-Identifier: MIT */
/* wire_test.c: header round trips, malformed headers, fuzzing, payloads. */
#include "fm_test.h"

#include <msgpack.h>

#include "core/core.h"
#include "wire/wire.h"

/* ---- fixtures ------------------------------------------------------------ */

static void
sample_msg(fmi_msg *m, uint32_t type)
{
	memset(m, 0, sizeof *m);
	m->type = type;
	m->fed = UINT64_C(0x9e3779b97f4a7c15);
	m->round = 12;
	m->from = type == FMI_MSG_UPDATE ? 37 : 0;
	m->to = type == FMI_MSG_TRAIN ? 37 : -5;
	m->seq = 123456789;
	if (type == FMI_MSG_TRAIN) {
		m->epochs = 5;
		m->batch = 64;
		m->lr = 0.05f;
		m->momentum = 0.9f;
		m->weight_decay = 5e-4f;
		m->seed = UINT64_C(0xdeadbeefcafebabe);
		m->n = 199210;
	} else if (type == FMI_MSG_UPDATE) {
		m->num_examples = 600;
		m->loss = 0.123456789012345;
		m->steps = 95;
		m->n = 199210;
	} else if (type == FMI_MSG_PLUGIN) {
		snprintf(m->plugin, sizeof m->plugin, "secagg");
		m->n = 4096;
	} else if (type == FMI_MSG_GOSSIP) {
		m->num_examples = 3750;
		m->loss = 0.25;
		m->mass = 0.0625;
		m->n = 199210;
	} else if (type == FMI_MSG_REPORT) {
		m->num_examples = 3750;
		m->loss = 0.5;
		m->acc = 0.8125;
		m->test_loss = 0.375;
		m->n = 1024;
	} else if (type == FMI_MSG_HELLO) {
		m->num_examples = 2000;
		m->num_test = 250;
	} else if (type == FMI_MSG_EVALUATE) {
		m->to = 3;
		m->n = 199210;
	} else if (type == FMI_MSG_EVAL) {
		m->from = 3;
		m->num_examples = 250;
		m->acc = 0.625;
		m->test_loss = 0.875;
	} else if (type == FMI_MSG_EDGE_ROUND) {
		m->lr = 0.05f;
		m->lr_scale = 0.5;
		m->n = 199210;
		m->body = 77;
	} else if (type == FMI_MSG_EDGE_COLLECTED) {
		m->updates = 17;
	} else if (type == FMI_MSG_EDGE_VERDICT) {
		m->ok = 1;
	} else if (type == FMI_MSG_EDGE_RESULT) {
		m->n = 0;
		m->body = 1234;
	}
}

/* True when a and b agree on every field that type carries (the decoder
 * zeroes the rest). */
static int
msg_equal(const fmi_msg *a, const fmi_msg *b)
{
	return a->type == b->type && a->fed == b->fed &&
	    a->round == b->round && a->from == b->from && a->to == b->to &&
	    a->seq == b->seq && a->epochs == b->epochs &&
	    a->batch == b->batch && a->lr == b->lr &&
	    a->momentum == b->momentum &&
	    a->weight_decay == b->weight_decay && a->seed == b->seed &&
	    a->num_examples == b->num_examples && a->loss == b->loss &&
	    a->mass == b->mass && a->acc == b->acc && a->steps == b->steps &&
	    a->test_loss == b->test_loss && a->num_test == b->num_test &&
	    strcmp(a->plugin, b->plugin) == 0 && a->n == b->n &&
	    a->lr_scale == b->lr_scale && a->updates == b->updates &&
	    a->ok == b->ok && a->body == b->body;
}

static size_t
encode(const fmi_msg *m, uint8_t *buf, size_t cap)
{
	size_t len = 0;
	FMT_PASS(fmi_msg_encode(m, buf, cap, &len));
	return len;
}

static void
assert_reason(int rv, int code, const fm_error *e, const char *why)
{
	if (rv != code || strstr(e->msg, why) == NULL) {
		print_error("got %s (%d) \"%s\", want %s (%d) with \"%s\"\n",
		    fm_strerror(rv), rv, rv ? e->msg : "", fm_strerror(code),
		    code, why);
		fail();
	}
}

/* ---- round trips ---------------------------------------------------------- */

static void
test_roundtrip(void **state)
{
	(void)state;
	for (uint32_t t = 1; t <= FMI_MSG_MAX; t++) {
		fmi_msg m, d;
		uint8_t buf[FMI_WIRE_MAX_HEADER];
		fm_error e;
		sample_msg(&m, t);
		size_t len = encode(&m, buf, sizeof buf);
		FMT_PASS(fmi_msg_decode(&d, buf, len, &e));
		assert_true(msg_equal(&m, &d));
		/* "v" and "t" come first. */
		assert_memory_equal(buf + 1, "\xa1v\x01\xa1t", 5);
		assert_int_equal(buf[6], t);
		if (t == FMI_MSG_TRAIN || t == FMI_MSG_UPDATE) {
			print_message("%s header: %zu bytes\n",
			    fmi_msg_type_name(t), len);
		}
	}
}

static void
test_roundtrip_extremes(void **state)
{
	(void)state;
	fmi_msg m, d;
	uint8_t buf[FMI_WIRE_MAX_HEADER];
	fm_error e;
	sample_msg(&m, FMI_MSG_TRAIN);
	m.fed = UINT64_MAX;
	m.round = UINT32_MAX;
	m.from = INT32_MIN;
	m.to = INT32_MAX;
	m.seq = UINT64_MAX;
	m.epochs = 10000;
	m.batch = 1000000;
	m.lr = 3.4e38f;
	m.momentum = 0;
	m.weight_decay = 1e-30f;
	m.n = UINT64_C(1) << 34;
	FMT_PASS(fmi_msg_decode(&d, buf, encode(&m, buf, sizeof buf), &e));
	assert_true(msg_equal(&m, &d));

	sample_msg(&m, FMI_MSG_UPDATE);
	m.loss = -1e300;
	m.num_examples = UINT64_C(1) << 53;
	FMT_PASS(fmi_msg_decode(&d, buf, encode(&m, buf, sizeof buf), &e));
	assert_true(msg_equal(&m, &d));

	sample_msg(&m, FMI_MSG_PLUGIN);
	memset(m.plugin, '~', FMI_WIRE_MAX_NAME);
	m.plugin[FMI_WIRE_MAX_NAME] = '\0';
	FMT_PASS(fmi_msg_decode(&d, buf, encode(&m, buf, sizeof buf), &e));
	assert_true(msg_equal(&m, &d));
}

static void
test_type_names(void **state)
{
	(void)state;
	assert_string_equal(fmi_msg_type_name(FMI_MSG_HELLO), "hello");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_TRAIN), "train");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_UPDATE), "update");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_PLUGIN), "plugin");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_ROUND_END),
	    "round_end");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_SHUTDOWN), "shutdown");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_HEARTBEAT),
	    "heartbeat");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_GOSSIP), "gossip");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_REPORT), "report");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_EDGE_ROUND),
	    "edge_round");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_EDGE_COLLECTED),
	    "edge_collected");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_EDGE_VERDICT),
	    "edge_verdict");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_EDGE_RESULT),
	    "edge_result");
	assert_string_equal(fmi_msg_type_name(0), "?");
	assert_string_equal(fmi_msg_type_name(FMI_MSG_MAX + 1), "?");
	assert_string_equal(fmi_msg_type_name(UINT32_MAX), "?");
}

/* ---- encoding errors ------------------------------------------------------ */

static void
test_encode_overflow(void **state)
{
	(void)state;
	for (uint32_t t = 1; t <= FMI_MSG_MAX; t++) {
		fmi_msg m;
		uint8_t full[FMI_WIRE_MAX_HEADER], buf[FMI_WIRE_MAX_HEADER];
		sample_msg(&m, t);
		size_t len = encode(&m, full, sizeof full), got = 0;
		for (size_t cap = 0; cap < len; cap++) {
			FMT_FAIL(fmi_msg_encode(&m, buf, cap, &got), FM_ERANGE);
		}
		FMT_PASS(fmi_msg_encode(&m, buf, len, &got));
		assert_int_equal(got, len);
		assert_memory_equal(buf, full, len);
	}
}

static void
test_encode_invalid(void **state)
{
	(void)state;
	fmi_msg m;
	uint8_t buf[256];
	size_t len;
	sample_msg(&m, FMI_MSG_HELLO);
	m.type = 0;
	FMT_FAIL(fmi_msg_encode(&m, buf, sizeof buf, &len), FM_EINVAL);
	m.type = FMI_MSG_MAX + 1;
	FMT_FAIL(fmi_msg_encode(&m, buf, sizeof buf, &len), FM_EINVAL);
	sample_msg(&m, FMI_MSG_PLUGIN);
	m.plugin[0] = '\0';
	FMT_FAIL(fmi_msg_encode(&m, buf, sizeof buf, &len), FM_EINVAL);
	memset(m.plugin, 'a', sizeof m.plugin); /* unterminated */
	FMT_FAIL(fmi_msg_encode(&m, buf, sizeof buf, &len), FM_EINVAL);
	FMT_FAIL(fmi_msg_encode(NULL, buf, sizeof buf, &len), FM_EINVAL);
}

/* ---- hand-built headers --------------------------------------------------- */

enum { K_OMIT, K_UINT, K_INT, K_F32, K_F64, K_STR, K_NIL, K_BOOL, K_MAP };

/* A key and value to write; dup appends even when the key exists. */
typedef struct kv {
	const char *key;
	int kind;
	uint64_t u;
	int64_t i;
	double d;
	const char *s;
	int dup;
} kv;

static size_t
base_kvs(uint32_t type, kv *out)
{
	fmi_msg m;
	size_t n = 0;
	sample_msg(&m, type);
	out[n++] = (kv){ .key = "v", .kind = K_UINT, .u = FMI_WIRE_VERSION };
	out[n++] = (kv){ .key = "t", .kind = K_UINT, .u = type };
	out[n++] = (kv){ .key = "fed", .kind = K_UINT, .u = m.fed };
	out[n++] = (kv){ .key = "round", .kind = K_UINT, .u = m.round };
	out[n++] = (kv){ .key = "from", .kind = K_INT, .i = m.from };
	out[n++] = (kv){ .key = "to", .kind = K_INT, .i = m.to };
	out[n++] = (kv){ .key = "seq", .kind = K_UINT, .u = m.seq };
	if (type == FMI_MSG_TRAIN) {
		out[n++] = (kv){ .key = "epochs", .kind = K_UINT, .u = 5 };
		out[n++] = (kv){ .key = "batch", .kind = K_UINT, .u = 64 };
		out[n++] = (kv){ .key = "lr", .kind = K_F32, .d = 0.05 };
		out[n++] = (kv){ .key = "momentum", .kind = K_F32, .d = 0.9 };
		out[n++] = (kv){ .key = "wd", .kind = K_F32, .d = 5e-4 };
		out[n++] = (kv){ .key = "seed", .kind = K_UINT, .u = 7 };
	} else if (type == FMI_MSG_UPDATE) {
		out[n++] = (kv){ .key = "ne", .kind = K_UINT, .u = 600 };
		out[n++] = (kv){ .key = "loss", .kind = K_F64, .d = 0.5 };
		out[n++] = (kv){ .key = "steps", .kind = K_UINT, .u = 19 };
	} else if (type == FMI_MSG_PLUGIN) {
		out[n++] = (kv){ .key = "plugin", .kind = K_STR, .s = "secagg" };
	} else if (type == FMI_MSG_HELLO) {
		out[n++] = (kv){ .key = "ne", .kind = K_UINT, .u = 600 };
		out[n++] = (kv){ .key = "nt", .kind = K_UINT, .u = 100 };
	} else if (type == FMI_MSG_EVAL) {
		out[n++] = (kv){ .key = "ne", .kind = K_UINT, .u = 100 };
		out[n++] = (kv){ .key = "acc", .kind = K_F64, .d = 0.75 };
		out[n++] = (kv){ .key = "tloss", .kind = K_F64, .d = 0.6 };
	}
	if (type == FMI_MSG_TRAIN || type == FMI_MSG_UPDATE ||
	    type == FMI_MSG_PLUGIN || type == FMI_MSG_EVALUATE) {
		out[n++] = (kv){ .key = "n", .kind = K_UINT, .u = 10 };
	}
	if (type == FMI_MSG_EDGE_ROUND) {
		out[n++] = (kv){ .key = "lr", .kind = K_F32, .d = 0.05 };
		out[n++] = (kv){ .key = "lrs", .kind = K_F64, .d = 1 };
	} else if (type == FMI_MSG_EDGE_COLLECTED) {
		out[n++] = (kv){ .key = "upd", .kind = K_UINT, .u = 3 };
	} else if (type == FMI_MSG_EDGE_VERDICT) {
		out[n++] = (kv){ .key = "ok", .kind = K_UINT, .u = 1 };
	}
	if (type == FMI_MSG_EDGE_ROUND || type == FMI_MSG_EDGE_RESULT) {
		out[n++] = (kv){ .key = "n", .kind = K_UINT, .u = 10 };
		out[n++] = (kv){ .key = "nb", .kind = K_UINT, .u = 40 };
	}
	return n;
}

static void
pack_value(msgpack_packer *pk, const kv *e)
{
	switch (e->kind) {
	case K_UINT: msgpack_pack_uint64(pk, e->u); break;
	case K_INT: msgpack_pack_int64(pk, e->i); break;
	case K_F32: msgpack_pack_float(pk, (float)e->d); break;
	case K_F64: msgpack_pack_double(pk, e->d); break;
	case K_STR:
		msgpack_pack_str(pk, strlen(e->s));
		msgpack_pack_str_body(pk, e->s, strlen(e->s));
		break;
	case K_BOOL: msgpack_pack_true(pk); break;
	case K_MAP:
		msgpack_pack_map(pk, 1);
		msgpack_pack_str(pk, 1);
		msgpack_pack_str_body(pk, "a", 1);
		msgpack_pack_array(pk, 2);
		msgpack_pack_int(pk, -1);
		msgpack_pack_nil(pk);
		break;
	default: msgpack_pack_nil(pk); break;
	}
}

/* Builds the sample header of type with overrides ov (key == NULL ends). */
static size_t
build(uint32_t type, const kv *ov, uint8_t *out, size_t cap)
{
	kv list[48];
	size_t n = base_kvs(type, list), used = 0;
	for (; ov != NULL && ov->key != NULL; ov++) {
		size_t j = 0;
		while (j < n && (ov->dup || strcmp(list[j].key, ov->key) != 0)) {
			j++;
		}
		list[j] = *ov;
		n += j == n;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	for (size_t j = 0; j < n; j++) {
		used += list[j].kind != K_OMIT;
	}
	msgpack_pack_map(&pk, used);
	for (size_t j = 0; j < n; j++) {
		if (list[j].kind != K_OMIT) {
			msgpack_pack_str(&pk, strlen(list[j].key));
			msgpack_pack_str_body(&pk, list[j].key,
			    strlen(list[j].key));
			pack_value(&pk, &list[j]);
		}
	}
	assert_true(sb.size <= cap);
	memcpy(out, sb.data, sb.size);
	size_t len = sb.size;
	msgpack_sbuffer_destroy(&sb);
	return len;
}

typedef struct bad_case {
	uint32_t type;
	kv ov[3];
	int code;
	const char *why;
} bad_case;

#define T_TR FMI_MSG_TRAIN
#define T_UP FMI_MSG_UPDATE
#define T_PL FMI_MSG_PLUGIN
#define T_ER FMI_MSG_EDGE_ROUND
#define T_EC FMI_MSG_EDGE_COLLECTED
#define T_EV FMI_MSG_EDGE_VERDICT
#define T_ES FMI_MSG_EDGE_RESULT
#define UI(k, v) { .key = k, .kind = K_UINT, .u = (v) }
#define SI(k, v) { .key = k, .kind = K_INT, .i = (v) }
#define DB(k, v) { .key = k, .kind = K_F64, .d = (v) }
#define ST(k, v) { .key = k, .kind = K_STR, .s = (v) }
#define OMIT(k) { .key = k, .kind = K_OMIT }

static const bad_case bad_cases[] = {
	{ T_TR, { OMIT("v") }, FM_EPROTO, "missing field 'v'" },
	{ T_TR, { UI("v", 7) }, FM_EVERSION,
	    "wire version 7, expected 1: the peer runs another fedmesh" },
	{ T_TR, { SI("v", -1) }, FM_EVERSION, "wire version -1, expected 1" },
	{ T_TR, { ST("v", "1") }, FM_EPROTO,
	    "field 'v' is a string, expected an integer" },
	{ T_TR, { OMIT("t") }, FM_EPROTO, "missing field 't'" },
	{ T_TR, { UI("t", 0) }, FM_EPROTO, "unknown message type 0" },
	{ T_TR, { UI("t", 16) }, FM_EPROTO, "unknown message type 16" },
	{ FMI_MSG_HELLO, { { .key = "nt", .kind = K_OMIT } }, FM_EPROTO,
	    "'nt'" },
	{ FMI_MSG_EVAL, { ST("acc", "x") }, FM_EPROTO, "'acc'" },
	{ FMI_MSG_EVALUATE, { { .key = "n", .kind = K_OMIT } }, FM_EPROTO,
	    "'n'" },
	{ T_TR, { SI("t", -3) }, FM_EPROTO, "unknown message type -3" },
	{ T_TR, { DB("t", 2) }, FM_EPROTO, "field 't' is a float" },
	{ FMI_MSG_HELLO, { OMIT("seq") }, FM_EPROTO,
	    "missing field 'seq' in a hello message" },
	{ FMI_MSG_HEARTBEAT, { OMIT("fed") }, FM_EPROTO,
	    "missing field 'fed'" },
	{ T_TR, { OMIT("epochs") }, FM_EPROTO,
	    "missing field 'epochs' in a train message" },
	{ T_TR, { OMIT("wd") }, FM_EPROTO, "missing field 'wd'" },
	{ T_UP, { OMIT("ne") }, FM_EPROTO, "missing field 'ne'" },
	{ T_UP, { OMIT("loss") }, FM_EPROTO, "missing field 'loss'" },
	{ T_UP, { OMIT("steps") }, FM_EPROTO, "missing field 'steps'" },
	{ T_UP, { OMIT("n") }, FM_EPROTO, "missing field 'n'" },
	{ T_PL, { OMIT("plugin") }, FM_EPROTO, "missing field 'plugin'" },
	{ T_TR, { ST("lr", "fast") }, FM_EPROTO,
	    "field 'lr' is a string, expected a number" },
	{ T_TR, { { .key = "seq", .kind = K_NIL } }, FM_EPROTO,
	    "field 'seq' is nil, expected an integer" },
	{ T_TR, { { .key = "fed", .kind = K_BOOL } }, FM_EPROTO,
	    "field 'fed' is a boolean" },
	{ T_TR, { { .key = "round", .kind = K_MAP } }, FM_EPROTO,
	    "field 'round' is a map" },
	{ T_TR, { DB("epochs", 3) }, FM_EPROTO,
	    "field 'epochs' is a float, expected an integer" },
	{ T_TR, { DB("lr", -0.5) }, FM_ERANGE, "field 'lr' is -0.5, must be" },
	{ T_TR, { SI("momentum", -1) }, FM_ERANGE, "field 'momentum'" },
	{ T_TR, { DB("wd", -1e-9) }, FM_ERANGE, "field 'wd'" },
	{ T_TR, { DB("lr", NAN) }, FM_ERANGE, "field 'lr' is nan" },
	{ T_TR, { DB("lr", INFINITY) }, FM_ERANGE, "field 'lr' is inf" },
	{ T_TR, { DB("lr", 1e300) }, FM_ERANGE, "float32" },
	{ T_UP, { DB("loss", NAN) }, FM_ERANGE, "field 'loss' is nan" },
	{ T_UP, { DB("loss", -INFINITY) }, FM_ERANGE, "field 'loss'" },
	{ T_TR, { UI("epochs", 0) }, FM_ERANGE,
	    "field 'epochs' is 0, allowed 1..10000" },
	{ T_TR, { UI("epochs", 10001) }, FM_ERANGE, "field 'epochs' is 10001" },
	{ T_TR, { SI("epochs", -2) }, FM_ERANGE, "field 'epochs' is -2" },
	{ T_TR, { UI("batch", 0) }, FM_ERANGE, "field 'batch' is 0" },
	{ T_TR, { UI("batch", 1000001) }, FM_ERANGE, "field 'batch'" },
	{ T_TR, { UI("round", UINT64_C(1) << 32) }, FM_ERANGE,
	    "field 'round' is 4294967296" },
	{ T_TR, { SI("round", -1) }, FM_ERANGE, "field 'round' is -1" },
	{ T_TR, { UI("from", UINT64_C(1) << 31) }, FM_ERANGE,
	    "field 'from' is 2147483648" },
	{ T_TR, { SI("to", (int64_t)INT32_MIN - 1) }, FM_ERANGE,
	    "field 'to' is -2147483649" },
	{ T_TR, { SI("fed", -1) }, FM_ERANGE, "field 'fed' is -1" },
	{ T_TR, { UI("n", (UINT64_C(1) << 34) + 1) }, FM_ERANGE,
	    "field 'n' is 17179869185" },
	{ T_UP, { UI("ne", (UINT64_C(1) << 53) + 1) }, FM_ERANGE,
	    "field 'ne'" },
	{ T_PL, { ST("plugin", "") }, FM_EPROTO, "field 'plugin' is 0 bytes" },
	{ T_PL, { ST("plugin", "0123456789012345678901234567890123456789"
	    "012345678901234567890123") }, FM_EPROTO,
	    "field 'plugin' is 64 bytes, expected 1..63" },
	{ T_PL, { ST("plugin", "sec\nagg") }, FM_EPROTO,
	    "non-printable byte 0x0a at 3" },
	{ T_PL, { ST("plugin", "sec\x7f") }, FM_EPROTO, "non-printable" },
	{ T_PL, { UI("plugin", 1) }, FM_EPROTO,
	    "field 'plugin' is an integer, expected a string" },
	{ T_TR, { { .key = "lr", .kind = K_F32, .d = 0.1, .dup = 1 } },
	    FM_EPROTO, "duplicate key 'lr'" },
	{ T_ER, { OMIT("lrs") }, FM_EPROTO,
	    "missing field 'lrs' in a edge_round message" },
	{ T_ER, { DB("lrs", -0.5) }, FM_ERANGE, "field 'lrs' is -0.5, must" },
	{ T_ER, { DB("lrs", NAN) }, FM_ERANGE, "field 'lrs' is nan" },
	{ T_ER, { SI("lr", -1) }, FM_ERANGE, "field 'lr' is -1" },
	{ T_ER, { OMIT("nb") }, FM_EPROTO, "missing field 'nb'" },
	{ T_ER, { UI("nb", 0) }, FM_ERANGE, "field 'nb' is 0, allowed 1.." },
	{ T_ES, { UI("nb", (UINT64_C(1) << 28) + 1) }, FM_ERANGE,
	    "field 'nb' is 268435457" },
	{ T_ES, { OMIT("n") }, FM_EPROTO, "missing field 'n' in a edge_result" },
	{ T_EC, { OMIT("upd") }, FM_EPROTO, "missing field 'upd'" },
	{ T_EC, { SI("upd", -1) }, FM_ERANGE, "field 'upd' is -1" },
	{ T_EC, { ST("upd", "3") }, FM_EPROTO, "field 'upd' is a string" },
	{ T_EV, { UI("ok", 2) }, FM_ERANGE, "field 'ok' is 2, allowed 0..1" },
	{ T_EV, { OMIT("ok") }, FM_EPROTO, "missing field 'ok'" },
	{ T_UP, { { .key = "zz", .kind = K_NIL, .dup = 1 },
	    { .key = "zz", .kind = K_UINT, .dup = 1 } }, FM_EPROTO,
	    "duplicate key 'zz'" },
	{ T_UP, { { .key = "\x01q", .kind = K_NIL, .dup = 1 },
	    { .key = "\x01q", .kind = K_NIL, .dup = 1 } }, FM_EPROTO,
	    "duplicate key '\\x01q'" },
};

static void
test_bad_fields(void **state)
{
	(void)state;
	for (size_t i = 0; i < FMI_ARRAY_LEN(bad_cases); i++) {
		const bad_case *c = &bad_cases[i];
		uint8_t buf[FMI_WIRE_MAX_HEADER];
		fmi_msg m;
		fm_error e = { 0, "" };
		size_t len = build(c->type, c->ov, buf, sizeof buf);
		int rv = fmi_msg_decode(&m, buf, len, &e);
		if (rv != c->code || strstr(e.msg, c->why) == NULL) {
			print_error("case %zu (%s): ", i, c->ov[0].key);
		}
		assert_reason(rv, c->code, &e, c->why);
	}
}

static const bad_case good_cases[] = {
	{ T_TR, { SI("lr", 1), UI("momentum", 0) }, 0, NULL },
	{ T_TR, { UI("epochs", 10000), UI("batch", 1000000) }, 0, NULL },
	{ T_TR, { SI("from", INT32_MIN), UI("round", UINT32_MAX) }, 0, NULL },
	{ T_TR, { { .key = "future", .kind = K_MAP, .dup = 1 },
	    { .key = "x", .kind = K_NIL, .dup = 1 } }, 0, NULL },
	{ T_UP, { SI("loss", -3), DB("ne", 0) }, FM_EPROTO, "'ne'" },
	{ T_UP, { SI("loss", -3) }, 0, NULL },
	{ T_PL, { ST("plugin", "a b~!") }, 0, NULL },
	/* A HELLO ignores fields of other types, even malformed ones. */
	{ FMI_MSG_HELLO, { ST("lr", "x"), SI("epochs", -1) }, 0, NULL },
};

static void
test_edge_fields(void **state)
{
	(void)state;
	for (size_t i = 0; i < FMI_ARRAY_LEN(good_cases); i++) {
		const bad_case *c = &good_cases[i];
		uint8_t buf[FMI_WIRE_MAX_HEADER];
		fmi_msg m;
		fm_error e = { 0, "" };
		size_t len = build(c->type, c->ov, buf, sizeof buf);
		int rv = fmi_msg_decode(&m, buf, len, &e);
		if (c->code == FM_OK) {
			FMT_PASS(rv);
			assert_int_equal(m.type, c->type);
		} else {
			assert_reason(rv, c->code, &e, c->why);
		}
	}
	fmi_msg m;
	fm_error e;
	uint8_t buf[FMI_WIRE_MAX_HEADER];
	kv ov[] = { SI("lr", 2), SI("from", -7), { 0 } };
	FMT_PASS(fmi_msg_decode(&m, buf, build(T_TR, ov, buf, sizeof buf),
	    &e));
	assert_true(m.lr == 2.0f && m.from == -7 && m.epochs == 5);
}

/* ---- raw bytes ------------------------------------------------------------ */

typedef struct raw_case {
	const char *bytes;
	size_t len;
	const char *why;
} raw_case;

#define RAW(s, why) { s, sizeof(s) - 1, why }

static const raw_case raw_cases[] = {
	RAW("\x92\x01\x02", "header is an array, expected a map"),
	RAW("\x07", "header is an integer, expected a map"),
	RAW("\xa3" "abc", "header is a string"),
	RAW("\x80", "missing field 'v'"),
	RAW("\x81\x01\x02", "header key #1 is an integer, expected a string"),
	RAW("\x81\xc0\x02", "header key #1 is nil"),
	RAW("\x81\x91\x01\x02", "header key #1 is an array"),
	RAW("\x81\xa1v\x01\x00", "1 trailing bytes"),
	RAW("\x81\xa1v", "truncated msgpack"),
	RAW("\x81\xa1v\xcd\x01", "truncated msgpack"),
	RAW("\x81\xa1v\xc1", "invalid msgpack byte 0xc1 at offset 3"),
	RAW("\xc1", "invalid msgpack byte 0xc1 at offset 0"),
	RAW("\xdd\xff\xff\xff\xff\x00",
	    "msgpack array at offset 0 claims 4294967295 elements but only "
	    "1 bytes remain"),
	RAW("\xdf\xff\xff\xff\xff", "msgpack map at offset 0 claims"),
	RAW("\xde\xff\xff", "msgpack map at offset 0 claims 65535"),
	RAW("\x81\xa2zz\xdd\xff\xff\xff\xff", "msgpack array at offset 4"),
	RAW("\x81\xa2zz\xdf\x7f\xff\xff\xff\xc0\xc0", "claims 2147483647"),
	RAW("\x81\xa1v\xdb\xff\xff\xff\xff" "a", "claims 4294967295 bytes"),
	RAW("\x81\xa1v\xc6\x80\x00\x00\x00", "claims 2147483648 bytes"),
	RAW("\x81\xa1v\xc9\xff\xff\xff\xff\x01", "claims 4294967296 bytes"),
	RAW("\x81\xa1v\xd8\x01", "truncated msgpack"),
	RAW("\x82\xa1v\x01", "msgpack map at offset 0 claims 2 entries"),
};

static void
test_raw_bytes(void **state)
{
	(void)state;
	for (size_t i = 0; i < FMI_ARRAY_LEN(raw_cases); i++) {
		fmi_msg m;
		fm_error e = { 0, "" };
		int rv = fmi_msg_decode(&m, raw_cases[i].bytes, raw_cases[i].len,
		    &e);
		if (rv != FM_EPROTO || strstr(e.msg, raw_cases[i].why) == NULL) {
			print_error("raw case %zu: ", i);
		}
		assert_reason(rv, FM_EPROTO, &e, raw_cases[i].why);
	}
}

static void
test_sizes(void **state)
{
	(void)state;
	static uint8_t big[FMI_WIRE_MAX_HEADER + 64];
	fmi_msg m;
	fm_error e;
	/* A header of exactly the limit (padded by an unknown key) is fine;
	 * one byte more is not. */
	size_t base = build(T_UP, NULL, big, sizeof big);
	size_t pad = FMI_WIRE_MAX_HEADER - base - 3 - 3; /* key, str16 head */
	char *s = malloc(pad + 1);
	assert_non_null(s);
	memset(s, 'x', pad);
	s[pad] = '\0';
	kv ov[] = { { .key = "pd", .kind = K_STR, .s = s, .dup = 1 }, { 0 } };
	size_t len = build(T_UP, ov, big, sizeof big);
	assert_int_equal(len, FMI_WIRE_MAX_HEADER);
	FMT_PASS(fmi_msg_decode(&m, big, len, &e));
	big[len] = 0xc0;
	assert_reason(fmi_msg_decode(&m, big, len + 1, &e), FM_EPROTO, &e,
	    "header is 4097 bytes, limit 4096");
	free(s);
	assert_reason(fmi_msg_decode(&m, big, 0, &e), FM_EPROTO, &e,
	    "empty header");
	assert_reason(fmi_msg_decode(&m, NULL, 0, &e), FM_EPROTO, &e,
	    "empty header");
	FMT_FAIL(fmi_msg_decode(NULL, big, len, &e), FM_EINVAL);
	FMT_FAIL(fmi_msg_decode(&m, NULL, 5, NULL), FM_EINVAL);
}

static void
test_structure_limits(void **state)
{
	(void)state;
	uint8_t buf[FMI_WIRE_MAX_HEADER];
	fmi_msg m;
	fm_error e;
	/* {"zz": [[[...40 deep...]]]} */
	size_t n = 0;
	memcpy(buf, "\x81\xa2zz", 4);
	n = 4;
	for (int i = 0; i < 40; i++) {
		buf[n++] = 0x91;
	}
	buf[n++] = 0x00;
	assert_reason(fmi_msg_decode(&m, buf, n, &e), FM_EPROTO, &e,
	    "nested too deeply");
	/* 65 distinct unknown keys. */
	n = 0;
	buf[n++] = 0xde;
	buf[n++] = 0;
	buf[n++] = 65;
	for (int i = 0; i < 65; i++) {
		n += (size_t)snprintf((char *)buf + n, 5, "\xa3k%02d", i);
		buf[n++] = 0xc0;
	}
	assert_reason(fmi_msg_decode(&m, buf, n, &e), FM_EPROTO, &e,
	    "header has 65 keys, limit 64");
	/* Two concatenated valid messages. */
	fmi_msg s;
	sample_msg(&s, FMI_MSG_HEARTBEAT);
	size_t one = encode(&s, buf, sizeof buf);
	memcpy(buf + one, buf, one);
	assert_reason(fmi_msg_decode(&m, buf, 2 * one, &e), FM_EPROTO, &e,
	    "trailing bytes");
}

/* ---- fuzzing ---------------------------------------------------------------- */

/* Any decode succeeds consistently or fails with a decoder code. */
static void
check_decode(const uint8_t *buf, size_t len)
{
	fmi_msg m, d;
	fm_error e = { 0, "" };
	int rv = fmi_msg_decode(&m, buf, len, &e);
	if (rv != FM_OK) {
		assert_true(rv == FM_EPROTO || rv == FM_EVERSION ||
		    rv == FM_ERANGE);
		assert_int_equal(e.code, rv);
		assert_true(e.msg[0] != '\0');
		return;
	}
	assert_true(m.type >= 1 && m.type <= FMI_MSG_MAX);
	assert_true(m.n <= UINT64_C(1) << 34);
	if (m.type == FMI_MSG_TRAIN) {
		assert_true(m.epochs >= 1 && m.epochs <= 10000);
		assert_true(m.batch >= 1 && m.batch <= 1000000);
		assert_true(isfinite(m.lr) && m.lr >= 0);
	}
	if (m.type == FMI_MSG_PLUGIN) {
		assert_true(strlen(m.plugin) >= 1);
	}
	uint8_t again[FMI_WIRE_MAX_HEADER];
	size_t n2 = encode(&m, again, sizeof again);
	FMT_PASS(fmi_msg_decode(&d, again, n2, &e));
	assert_true(msg_equal(&m, &d));
}

static void
test_fuzz_random_bytes(void **state)
{
	(void)state;
	fm_rng r;
	fmi_rng_seed(&r, 20240601, 1);
	static uint8_t buf[FMI_WIRE_MAX_HEADER + 16];
	for (int it = 0; it < 20000; it++) {
		size_t len = (size_t)fmi_rng_below(&r, it % 100 == 0 ?
		    sizeof buf : 300);
		for (size_t i = 0; i < len; i++) {
			buf[i] = (uint8_t)fmi_rng_u64(&r);
		}
		if (len > 0 && it % 2) {
			buf[0] = (uint8_t)(0x80 | (buf[0] & 0x0f)); /* a map */
		}
		/* An exact-size heap copy lets ASan see any overread. */
		uint8_t *p = malloc(len ? len : 1);
		assert_non_null(p);
		memcpy(p, buf, len);
		check_decode(p, len);
		free(p);
	}
}

static void
mutate(fm_rng *r, uint8_t *buf, size_t *len, size_t cap)
{
	size_t at = *len ? (size_t)fmi_rng_below(r, *len) : 0;
	switch (fmi_rng_below(r, 5)) {
	case 0: /* random byte */
		if (*len) {
			buf[at] = (uint8_t)fmi_rng_u64(r);
		}
		break;
	case 1: /* bit flip */
		if (*len) {
			buf[at] ^= (uint8_t)(1u << fmi_rng_below(r, 8));
		}
		break;
	case 2: /* insert */
		if (*len < cap) {
			memmove(buf + at + 1, buf + at, *len - at);
			buf[at] = (uint8_t)fmi_rng_u64(r);
			(*len)++;
		}
		break;
	case 3: /* delete */
		if (*len) {
			memmove(buf + at, buf + at + 1, *len - at - 1);
			(*len)--;
		}
		break;
	default: /* truncate */
		*len = at;
		break;
	}
}

static void
test_fuzz_mutations(void **state)
{
	(void)state;
	fm_rng r;
	fmi_rng_seed(&r, 7, 2);
	for (uint32_t t = 1; t <= FMI_MSG_MAX; t++) {
		fmi_msg m;
		uint8_t orig[FMI_WIRE_MAX_HEADER], buf[FMI_WIRE_MAX_HEADER];
		sample_msg(&m, t);
		size_t olen = encode(&m, orig, sizeof orig);
		/* Every strict prefix is incomplete msgpack. */
		for (size_t k = 0; k < olen; k++) {
			fm_error e;
			uint8_t *p = malloc(k ? k : 1);
			assert_non_null(p);
			memcpy(p, orig, k);
			FMT_FAIL(fmi_msg_decode(&m, p, k, &e), FM_EPROTO);
			free(p);
		}
		for (int it = 0; it < 4000; it++) {
			size_t len = olen;
			memcpy(buf, orig, olen);
			int rounds = 1 + (int)fmi_rng_below(&r, 4);
			for (int k = 0; k < rounds; k++) {
				mutate(&r, buf, &len, sizeof buf);
			}
			uint8_t *p = malloc(len ? len : 1);
			assert_non_null(p);
			memcpy(p, buf, len);
			check_decode(p, len);
			free(p);
		}
	}
}

/* Random maps of known and unknown keys with values of every msgpack
 * type: reaches the field checks far more often than random bytes. */
static void
pack_random_value(fm_rng *r, msgpack_packer *pk)
{
	static const double fl[] = { 0, -0.0, 0.5, -2, 1e300, NAN, INFINITY,
		3.4e38, 1e-45 };
	uint64_t u = fmi_rng_u64(r) >> fmi_rng_below(r, 64);
	switch (fmi_rng_below(r, 9)) {
	case 0: msgpack_pack_uint64(pk, fmi_rng_below(r, 12)); break;
	case 1: msgpack_pack_uint64(pk, u); break;
	case 2: msgpack_pack_int64(pk, -(int64_t)(u >> 1) - 1); break;
	case 3: msgpack_pack_float(pk, (float)fl[fmi_rng_below(r, 9)]); break;
	case 4: msgpack_pack_double(pk, fl[fmi_rng_below(r, 9)]); break;
	case 5:
		msgpack_pack_str(pk, u % 70);
		for (size_t i = 0; i < u % 70; i++) {
			char c = (char)(0x1f + fmi_rng_below(r, 0x62));
			msgpack_pack_str_body(pk, &c, 1);
		}
		break;
	case 6: msgpack_pack_nil(pk); break;
	case 7: msgpack_pack_array(pk, 1); msgpack_pack_true(pk); break;
	default: msgpack_pack_bin(pk, 2); msgpack_pack_bin_body(pk, "ab", 2);
	}
}

static const char *const fz_keys[] = { "fed", "round", "from", "to", "seq",
	"epochs", "batch", "lr", "momentum", "wd", "seed", "ne", "loss",
	"steps", "mass", "acc", "tloss", "plugin", "n", "x", "lrs", "upd",
	"ok", "nb", "" };

/* Mostly a plausible value for key k, sometimes anything. */
static void
pack_field_value(fm_rng *r, msgpack_packer *pk, const char *k)
{
	if (fmi_rng_below(r, 10) == 0) {
		pack_random_value(r, pk);
	} else if (strcmp(k, "plugin") == 0) {
		msgpack_pack_str(pk, 2);
		msgpack_pack_str_body(pk, "pl", 2);
	} else {
		msgpack_pack_uint64(pk, 1 + fmi_rng_below(r, 100));
	}
}

static void
pack_random_header(fm_rng *r, msgpack_packer *pk)
{
	uint32_t order[FMI_ARRAY_LEN(fz_keys)];
	size_t nk = FMI_ARRAY_LEN(fz_keys), n = fmi_rng_below(r, nk + 1);
	int dup = fmi_rng_below(r, 16) == 0 && n > 0;
	for (uint32_t i = 0; i < nk; i++) {
		order[i] = i;
	}
	fmi_rng_shuffle_u32(r, order, nk);
	msgpack_pack_map(pk, 2 + n + (size_t)dup);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "v", 1);
	if (fmi_rng_below(r, 16)) {
		msgpack_pack_uint32(pk, FMI_WIRE_VERSION);
	} else {
		pack_random_value(r, pk);
	}
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "t", 1);
	if (fmi_rng_below(r, 16)) {
		msgpack_pack_uint32(pk, 1 + (uint32_t)fmi_rng_below(r,
		    FMI_MSG_MAX));
	} else {
		pack_random_value(r, pk);
	}
	for (size_t i = 0; i < n + (size_t)dup; i++) {
		const char *k = fz_keys[order[i < n ? i : 0]];
		msgpack_pack_str(pk, strlen(k));
		msgpack_pack_str_body(pk, k, strlen(k));
		pack_field_value(r, pk, k);
	}
}

static void
test_fuzz_structured(void **state)
{
	(void)state;
	fm_rng r;
	fmi_rng_seed(&r, 99, 3);
	int ok = 0;
	for (int it = 0; it < 20000; it++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		pack_random_header(&r, &pk);
		fmi_msg m;
		ok += fmi_msg_decode(&m, sb.data, sb.size, NULL) == FM_OK;
		check_decode((const uint8_t *)sb.data, sb.size);
		msgpack_sbuffer_destroy(&sb);
	}
	print_message("structured fuzz: %d of 20000 headers accepted\n", ok);
	assert_true(ok > 0);
}

/* ---- payloads -------------------------------------------------------------- */

/* dim floats 0.5 * i in little-endian at an odd address inside *base. */
static uint8_t *
le_payload(size_t dim, uint8_t **base)
{
	float *f = malloc((dim ? dim : 1) * sizeof *f);
	assert_non_null(f);
	for (size_t i = 0; i < dim; i++) {
		f[i] = 0.5f * (float)i;
	}
	fmi_f32_to_le(f, dim);
	*base = malloc(dim * 4 + 1);
	assert_non_null(*base);
	memcpy(*base + 1, f, dim * 4);
	free(f);
	return *base + 1;
}

static void
put_f32(uint8_t *p, size_t i, float v)
{
	fmi_f32_to_le(&v, 1);
	memcpy(p + 4 * i, &v, 4);
}

static void
test_tensor(void **state)
{
	(void)state;
	fmi_msg m;
	fm_error e;
	uint8_t *base;
	sample_msg(&m, FMI_MSG_UPDATE);
	m.n = 1000;
	uint8_t *p = le_payload(1000, &base);
	FMT_PASS(fmi_msg_check_tensor(&m, p, 4000, 1000, &e));
	assert_reason(fmi_msg_check_tensor(&m, p, 4000, 199210, &e),
	    FM_EPROTO, &e, "update has 1000 floats, model has 199210");
	assert_reason(fmi_msg_check_tensor(&m, p, 3999, 1000, &e),
	    FM_EPROTO, &e, "update payload is 3999 bytes, expected 4000");
	assert_reason(fmi_msg_check_tensor(&m, p, 4004, 1000, &e),
	    FM_EPROTO, &e, "expected 4000");
	assert_reason(fmi_msg_check_tensor(&m, p, 0, 1000, &e),
	    FM_EPROTO, &e, "payload is 0 bytes");
	assert_reason(fmi_msg_check_tensor(&m, NULL, 0, 1000, &e),
	    FM_EPROTO, &e, "update has no payload");
	put_f32(p, 17, NAN);
	assert_reason(fmi_msg_check_tensor(&m, p, 4000, 1000, &e),
	    FM_ERANGE, &e, "update contains NaN at index 17");
	put_f32(p, 17, 1.0f);
	put_f32(p, 999, INFINITY);
	m.type = FMI_MSG_TRAIN;
	assert_reason(fmi_msg_check_tensor(&m, p, 4000, 1000, &e),
	    FM_ERANGE, &e, "train contains Inf at index 999");
	put_f32(p, 0, -INFINITY);
	assert_reason(fmi_msg_check_tensor(&m, p, 4000, 1000, &e),
	    FM_ERANGE, &e, "contains -Inf at index 0");
	free(base);
	m.n = 0;
	FMT_PASS(fmi_msg_check_tensor(&m, NULL, 0, 0, &e));
	assert_reason(fmi_msg_check_tensor(&m, NULL, 4, 0, &e), FM_EPROTO,
	    &e, "payload is 4 bytes");
	m.n = UINT64_C(1) << 62; /* n * 4 wraps to 0 */
	FMT_FAIL(fmi_msg_check_tensor(&m, "abcd", 0, (size_t)m.n, &e),
	    FM_EPROTO);
	FMT_FAIL(fmi_msg_check_tensor(NULL, NULL, 0, 0, &e), FM_EINVAL);
}

static void
test_tensor_every_offset(void **state)
{
	(void)state;
	fmi_msg m;
	fm_error e;
	sample_msg(&m, FMI_MSG_UPDATE);
	m.n = 64;
	for (size_t off = 0; off < 4; off++) {
		uint8_t *raw = malloc(64 * 4 + off);
		assert_non_null(raw);
		uint8_t *base;
		uint8_t *p = le_payload(64, &base);
		memcpy(raw + off, p, 64 * 4);
		free(base);
		FMT_PASS(fmi_msg_check_tensor(&m, raw + off, 256, 64, &e));
		raw[off + 4 * 9 + 3] = 0x7f; /* exponent bits set */
		raw[off + 4 * 9 + 2] = 0xc0;
		assert_reason(fmi_msg_check_tensor(&m, raw + off, 256, 64, &e),
		    FM_ERANGE, &e, "NaN at index 9");
		free(raw);
	}
}

static void
test_f32_le(void **state)
{
	(void)state;
	float x[3] = { 1.0f, -2.5f, 3e-7f };
	float y[3];
	memcpy(y, x, sizeof x);
	fmi_f32_to_le(y, 3);
	uint8_t b[4];
	memcpy(b, &y[0], 4); /* 1.0f = 0x3f800000 */
	assert_memory_equal(b, "\x00\x00\x80\x3f", 4);
	fmi_f32_from_le(y, 3);
	assert_memory_equal(x, y, sizeof x);
	fmi_f32_to_le(NULL, 0);
}

/* ---- edge bodies (wire_edge.c) ------------------------------------------- */

static void
sample_result(fmi_edge_body *b, fmi_edge_client *c, fmi_edge_metric *x)
{
	memset(b, 0, sizeof *b);
	c[0] = (fmi_edge_client){ 5, 0, 1, 1, 600, 0.25, 3.5 };
	c[1] = (fmi_edge_client){ 7, 0, 3, 0, 0, NAN, NAN };
	c[2] = (fmi_edge_client){ 9, 0, 2, 1, UINT64_C(1) << 53,
		0.1234567890123, 1e-300 };
	x[0] = (fmi_edge_metric){ 0, "scaffold_c_norm", 0.125 };
	x[1] = (fmi_edge_metric){ 2, "defence_kept", 2 };
	memset(x[2].name, 'n', FMI_EDGE_METRIC_NAME);
	x[2].name[FMI_EDGE_METRIC_NAME] = '\0';
	x[2].phase = 1;
	x[2].value = -INFINITY;
	b->clients = c;
	b->nclients = b->cap_clients = 3;
	b->metrics = x;
	b->nmetrics = b->cap_metrics = 3;
	b->finished = 1;
	b->held = 1;
	b->def_ran = 1;
	b->fed = 2;
	b->rejected = 1;
	b->rejected_adv = 1;
	snprintf(b->why, sizeof b->why, "round 3: defence krum: ünicode ok");
}

static int
same_double(double a, double b)
{
	return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

static void
test_edge_body_roundtrip(void **state)
{
	(void)state;
	fmi_edge_client c[3], dc[8];
	fmi_edge_metric x[3], dx[8];
	fmi_edge_body b, d = { dc, 0, 8, dx, 0, 8, 0, 0, 0, 0, 0, 0, 0, "" };
	uint8_t buf[2048];
	size_t len;
	fm_error e;
	sample_result(&b, c, x);
	FMT_PASS(fmi_edge_body_encode(FMI_MSG_EDGE_RESULT, &b, buf, sizeof buf,
	    &len));
	assert_true(len <= fmi_edge_body_bound(FMI_MSG_EDGE_RESULT, 3, 3));
	FMT_PASS(fmi_edge_body_decode(FMI_MSG_EDGE_RESULT, buf, len, &d, &e));
	assert_int_equal(d.nclients, 3);
	assert_int_equal(d.nmetrics, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(dc[i].client, c[i].client);
		assert_int_equal(dc[i].status, c[i].status);
		assert_int_equal(dc[i].counted, c[i].counted);
		assert_true(dc[i].examples == c[i].examples);
		assert_true(same_double(dc[i].loss, c[i].loss));
		assert_true(same_double(dc[i].norm, c[i].norm));
		assert_int_equal(dx[i].phase, x[i].phase);
		assert_string_equal(dx[i].name, x[i].name);
		assert_true(same_double(dx[i].value, x[i].value));
	}
	assert_true(d.finished == 1 && d.held == 1 && d.def_ran == 1 &&
	    d.def_combined == 0 && d.fed == 2 && d.rejected == 1 &&
	    d.rejected_adv == 1);
	assert_string_equal(d.why, b.why);
	/* every cap below the encoded size fails cleanly */
	for (size_t cap = 0; cap < len; cap++) {
		size_t got;
		FMT_FAIL(fmi_edge_body_encode(FMI_MSG_EDGE_RESULT, &b, buf, cap,
		    &got), FM_ERANGE);
	}
	/* a list longer than the receiver's cap is refused */
	d.cap_clients = 2;
	FMT_PASS(fmi_edge_body_encode(FMI_MSG_EDGE_RESULT, &b, buf, sizeof buf,
	    &len));
	assert_reason(fmi_edge_body_decode(FMI_MSG_EDGE_RESULT, buf, len, &d,
	    &e), FM_ERANGE, &e, "'c' has 3 entries, at most 2 expected");
	assert_int_equal(d.nclients, 0);

	/* EDGE_ROUND: ids and faults */
	fmi_edge_client rc[3] = { { 1, 0, 0, 0, 0, 0, 0 },
		{ 4, 2, 0, 0, 0, 0, 0 }, { INT32_MAX, 1, 0, 0, 0, 0, 0 } };
	fmi_edge_body r = { rc, 3, 3, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, "" };
	FMT_PASS(fmi_edge_body_encode(FMI_MSG_EDGE_ROUND, &r, buf, sizeof buf,
	    &len));
	assert_true(len <= fmi_edge_body_bound(FMI_MSG_EDGE_ROUND, 3, 0));
	d.cap_clients = 8;
	FMT_PASS(fmi_edge_body_decode(FMI_MSG_EDGE_ROUND, buf, len, &d, &e));
	assert_int_equal(d.nclients, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(dc[i].client, rc[i].client);
		assert_int_equal(dc[i].fault, rc[i].fault);
	}
	/* encoder refusals */
	FMT_FAIL(fmi_edge_body_encode(FMI_MSG_TRAIN, &r, buf, sizeof buf, &len),
	    FM_EINVAL);
	x[0].name[0] = '\0';
	FMT_FAIL(fmi_edge_body_encode(FMI_MSG_EDGE_RESULT, &b, buf, sizeof buf,
	    &len), FM_EINVAL);
}

/* Bodies built by hand, each wrong in one way. */
static void
pack_bad_body(msgpack_packer *pk, int k)
{
#define KEY(s) (msgpack_pack_str(pk, strlen(s)), \
	msgpack_pack_str_body(pk, s, strlen(s)))
	switch (k) {
	case 0: msgpack_pack_array(pk, 0); return;
	case 1: msgpack_pack_map(pk, 1); KEY("f"); msgpack_pack_array(pk, 0);
		return;
	case 2: msgpack_pack_map(pk, 2); KEY("c"); msgpack_pack_uint8(pk, 1);
		KEY("f"); msgpack_pack_array(pk, 0); return;
	case 3: case 4: case 5: case 6:
		msgpack_pack_map(pk, 2); KEY("c"); msgpack_pack_array(pk, 2);
		msgpack_pack_int32(pk, 3);
		if (k == 3) { msgpack_pack_int32(pk, 0); }
		else if (k == 4) { msgpack_pack_int32(pk, -4); }
		else { msgpack_pack_double(pk, 4.0); }
		KEY("f"); msgpack_pack_array(pk, k == 6 ? 1 : 2);
		msgpack_pack_uint8(pk, 0);
		if (k != 6) { msgpack_pack_uint8(pk, 0); }
		return;
	case 7: msgpack_pack_map(pk, 2); KEY("c"); msgpack_pack_array(pk, 1);
		msgpack_pack_int32(pk, 3); KEY("f"); msgpack_pack_array(pk, 1);
		msgpack_pack_uint8(pk, 3); return;
	case 8: msgpack_pack_map(pk, 3); KEY("c"); msgpack_pack_array(pk, 0);
		KEY("f"); msgpack_pack_array(pk, 0); KEY("c");
		msgpack_pack_array(pk, 0); return;
	case 9: msgpack_pack_map(pk, 1); msgpack_pack_uint8(pk, 1);
		msgpack_pack_nil(pk); return;
	default: break;
	}
	/* EDGE_RESULT bodies: one client, then the rest correct */
	static const double loss[14] = { 0.5, -1, INFINITY, NAN, 0.5, 0.5,
		0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5 };
	int j = k - 10;
	msgpack_pack_map(pk, 10);
	KEY("c");
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, j == 4 ? 5 : 6);
	msgpack_pack_int32(pk, 2);
	msgpack_pack_uint8(pk, j == 5 ? 6 : j == 6 ? 0 : 1);
	msgpack_pack_uint8(pk, j == 7 ? 2 : 1);
	msgpack_pack_uint64(pk, j == 8 ? (UINT64_C(1) << 53) + 1 : 10);
	msgpack_pack_double(pk, loss[j]);
	if (j != 4) {
		msgpack_pack_double(pk, j == 9 ? -0.5 : 1);
	}
	KEY("x");
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, j == 10 ? 3 : 0);
	if (j == 11) {
		msgpack_pack_str(pk, 32);
		msgpack_pack_str_body(pk, "0123456789abcdef0123456789abcdef", 32);
	} else {
		msgpack_pack_str(pk, j == 12 ? 3 : 2);
		msgpack_pack_str_body(pk, j == 12 ? "a\nb" : "ab", j == 12 ? 3 : 2);
	}
	msgpack_pack_double(pk, 1);
	KEY("fin"); msgpack_pack_uint8(pk, 1);
	KEY("held"); msgpack_pack_uint8(pk, 0);
	KEY("dr"); msgpack_pack_uint8(pk, 0);
	KEY("dc"); msgpack_pack_uint8(pk, 0);
	KEY("fed"); msgpack_pack_uint8(pk, 1);
	KEY("rej"); msgpack_pack_uint8(pk, j == 13 ? 2 : 0);
	KEY("ra"); msgpack_pack_uint8(pk, 0);
	KEY("why"); msgpack_pack_str(pk, 0);
#undef KEY
}

static const struct {
	int code;
	const char *why;
} bad_bodies[] = {
	{ FM_EPROTO, "body is an array, expected a map" },
	{ FM_EPROTO, "missing field 'c' in an edge_round message" },
	{ FM_EPROTO, "'c' is an integer, expected an array" },
	{ FM_ERANGE, "client #2 is 0, allowed 1..2147483647" },
	{ FM_ERANGE, "client #2 is -4" },
	{ FM_EPROTO, "client #2 is a float, expected an integer" },
	{ FM_EPROTO, "'f' has 1 entries for 2 clients" },
	{ FM_ERANGE, "fault #1 is 3, allowed 0..2" },
	{ FM_EPROTO, "duplicate key 'c' in body" },
	{ FM_EPROTO, "body key #1 is an integer" },
	{ 0, NULL }, /* 10: a good result */
	{ FM_ERANGE, "client 2: loss is -1, expected a finite number >= 0" },
	{ FM_ERANGE, "client 2: loss is inf" },
	{ FM_ERANGE, "client 2 was counted but has no loss" },
	{ FM_EPROTO, "client #1 has 5 fields, expected 6" },
	{ FM_ERANGE, "client 2: status is 6, allowed 1..5" },
	{ FM_ERANGE, "client 2: status is 0" },
	{ FM_ERANGE, "client 2: counted is 2, allowed 0..1" },
	{ FM_ERANGE, "client 2: examples is 9007199254740993" },
	{ FM_ERANGE, "client 2: norm is -0.5" },
	{ FM_ERANGE, "metric #1 is 3, allowed 0..2" },
	{ FM_EPROTO, "metric #1 is 32 bytes, expected 1..31" },
	{ FM_EPROTO, "metric #1 has a control byte 0x0a at 1" },
	{ FM_ERANGE, "2 rows rejected, 0 of them adversaries, of 1 clients" },
};

static void
test_edge_body_bad(void **state)
{
	(void)state;
	fmi_edge_client dc[4];
	fmi_edge_metric dx[4];
	for (size_t i = 0; i < FMI_ARRAY_LEN(bad_bodies); i++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		pack_bad_body(&pk, (int)i);
		fmi_edge_body d = { dc, 0, 4, dx, 0, 4, 0, 0, 0, 0, 0, 0, 0, "" };
		fm_error e = { 0, "" };
		uint32_t type = i < 10 ? FMI_MSG_EDGE_ROUND : FMI_MSG_EDGE_RESULT;
		int rv = fmi_edge_body_decode(type, sb.data, sb.size, &d, &e);
		if (bad_bodies[i].code == 0) {
			FMT_PASS(rv);
			assert_int_equal(d.nclients, 1);
			assert_string_equal(dx[0].name, "ab");
		} else {
			if (rv != bad_bodies[i].code ||
			    strstr(e.msg, bad_bodies[i].why) == NULL) {
				print_error("bad body %zu: ", i);
			}
			assert_reason(rv, bad_bodies[i].code, &e,
			    bad_bodies[i].why);
			assert_int_equal(d.nclients, 0);
		}
		msgpack_sbuffer_destroy(&sb);
	}
	fmi_edge_body d = { dc, 0, 4, dx, 0, 4, 0, 0, 0, 0, 0, 0, 0, "" };
	fm_error e;
	assert_reason(fmi_edge_body_decode(FMI_MSG_EDGE_RESULT, "", 0, &d, &e),
	    FM_EPROTO, &e, "empty body");
	assert_reason(fmi_edge_body_decode(FMI_MSG_EDGE_ROUND,
	    "\x81\xa1" "c\xdd\xff\xff\xff\xff", 8, &d, &e), FM_EPROTO, &e,
	    "body: msgpack array at offset 3 claims 4294967295");
	assert_reason(fmi_edge_body_decode(FMI_MSG_EDGE_ROUND, "\x80\x00", 2,
	    &d, &e), FM_EPROTO, &e, "body: 1 trailing bytes");
	FMT_FAIL(fmi_edge_body_decode(FMI_MSG_UPDATE, "\x80", 1, &d, &e),
	    FM_EINVAL);
}

/* Mutated result bodies: a clean refusal with a reason, or a body whose
 * fields are in range and that encodes back to what decodes the same. */
static void
test_edge_body_fuzz(void **state)
{
	(void)state;
	fmi_edge_client c[3], dc[4], dc2[4];
	fmi_edge_metric x[3], dx[4], dx2[4];
	fmi_edge_body b;
	uint8_t orig[2048], buf[2048], again[4096];
	size_t olen;
	fm_rng r;
	int ok = 0;
	sample_result(&b, c, x);
	FMT_PASS(fmi_edge_body_encode(FMI_MSG_EDGE_RESULT, &b, orig,
	    sizeof orig, &olen));
	fmi_rng_seed(&r, 4242, 5);
	for (int it = 0; it < 20000; it++) {
		size_t len = olen;
		memcpy(buf, orig, olen);
		for (int k = 0, n = 1 + (int)fmi_rng_below(&r, 3); k < n; k++) {
			mutate(&r, buf, &len, sizeof buf);
		}
		uint8_t *p = malloc(len ? len : 1);
		assert_non_null(p);
		memcpy(p, buf, len);
		fmi_edge_body d = { dc, 0, 4, dx, 0, 4, 0, 0, 0, 0, 0, 0, 0, "" };
		fm_error e = { 0, "" };
		int rv = fmi_edge_body_decode(FMI_MSG_EDGE_RESULT, p, len, &d, &e);
		free(p);
		if (rv != FM_OK) {
			assert_true(rv == FM_EPROTO || rv == FM_ERANGE);
			assert_true(e.msg[0] != '\0');
			continue;
		}
		ok++;
		for (uint32_t i = 0; i < d.nclients; i++) {
			assert_true(dc[i].client >= 1);
			assert_true(dc[i].status >= 1 && dc[i].status <= 5);
		}
		assert_true(d.rejected <= d.nclients);
		size_t n2;
		FMT_PASS(fmi_edge_body_encode(FMI_MSG_EDGE_RESULT, &d, again,
		    sizeof again, &n2));
		fmi_edge_body d2 = { dc2, 0, 4, dx2, 0, 4, 0, 0, 0, 0, 0, 0, 0,
			"" };
		FMT_PASS(fmi_edge_body_decode(FMI_MSG_EDGE_RESULT, again, n2, &d2,
		    &e));
		assert_int_equal(d2.nclients, d.nclients);
		assert_int_equal(d2.nmetrics, d.nmetrics);
		assert_string_equal(d2.why, d.why);
	}
	print_message("edge body fuzz: %d of 20000 mutations accepted\n", ok);
}

static void
test_edge_payload(void **state)
{
	(void)state;
	fmi_msg m;
	fm_error e;
	const void *model, *body;
	uint8_t *buf = malloc(4 * 5 + 3 + 1);
	assert_non_null(buf);
	uint8_t *p = buf + 1; /* floats at an odd address */
	for (int i = 0; i < 5; i++) {
		float f = 0.5f * (float)i;
		uint32_t u;
		memcpy(&u, &f, sizeof u);
		for (int k = 0; k < 4; k++) {
			p[4 * i + k] = (uint8_t)(u >> (8 * k));
		}
	}
	memcpy(p + 20, "\x80xy", 3);
	sample_msg(&m, FMI_MSG_EDGE_ROUND);
	m.n = 5;
	m.body = 3;
	FMT_PASS(fmi_edge_payload(&m, p, 23, 5, &model, &body, &e));
	assert_ptr_equal(model, p);
	assert_ptr_equal(body, p + 20);
	assert_reason(fmi_edge_payload(&m, p, 22, 5, &model, &body, &e),
	    FM_EPROTO, &e, "payload is 22 bytes, expected 23");
	assert_reason(fmi_edge_payload(&m, p, 23, 6, &model, &body, &e),
	    FM_EPROTO, &e, "carries 5 floats, the model has 6");
	assert_reason(fmi_edge_payload(&m, NULL, 0, 5, &model, &body, &e),
	    FM_EPROTO, &e, "payload is 0 bytes");
	m.n = 0;
	FMT_PASS(fmi_edge_payload(&m, p + 20, 3, 5, &model, &body, &e));
	assert_null(model);
	assert_ptr_equal(body, p + 20);
	m.n = 5;
	p[4 * 3 + 3] = 0x7f; /* float 3 becomes NaN */
	p[4 * 3 + 2] = 0xc0;
	assert_reason(fmi_edge_payload(&m, p, 23, 5, &model, &body, &e),
	    FM_ERANGE, &e, "edge_round model is not finite at index 3");
	m.type = FMI_MSG_UPDATE;
	FMT_FAIL(fmi_edge_payload(&m, p, 23, 5, &model, &body, &e), FM_EINVAL);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_roundtrip_extremes),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_encode_overflow),
		cmocka_unit_test(test_encode_invalid),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_edge_fields),
		cmocka_unit_test(test_raw_bytes),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_structure_limits),
		cmocka_unit_test(test_fuzz_random_bytes),
		cmocka_unit_test(test_fuzz_mutations),
		cmocka_unit_test(test_fuzz_structured),
		cmocka_unit_test(test_tensor),
		cmocka_unit_test(test_tensor_every_offset),
		cmocka_unit_test(test_f32_le),
		cmocka_unit_test(test_edge_body_roundtrip),
		cmocka_unit_test(test_edge_body_bad),
		cmocka_unit_test(test_edge_body_fuzz),
		cmocka_unit_test(test_edge_payload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
