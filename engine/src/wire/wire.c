/* SPDX-License-Identifier: MIT */
/* wire.c: msgpack header encoding, strict decoding, and payload checks. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "wire/wire.h"

/*
 * Error codes of the decoder:
 *   FM_EPROTO    not a well-formed fedmesh header: size, msgpack syntax,
 *                structure, keys, a missing field, a field of the wrong
 *                msgpack type, an unknown message type, a bad plugin name;
 *   FM_EVERSION  "v" is an integer other than FMI_WIRE_VERSION;
 *   FM_ERANGE    a numeric field of the right type with a value outside
 *                its range (including NaN/Inf).
 */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define WIRE_BIG_ENDIAN 1
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WIRE_BIG_ENDIAN 0
#else
#error "unknown byte order: define __BYTE_ORDER__"
#endif

#define WIRE_MAX_KEYS 64                 /* map entries in one header */
#define WIRE_MAX_N (UINT64_C(1) << 34)    /* payload elements */
#define WIRE_MAX_NE (UINT64_C(1) << 53)   /* num_examples: exact in double */
#define WIRE_MAX_BODY (UINT64_C(1) << 28) /* an EDGE_* body's bytes */

/* ---- field table ------------------------------------------------------- */

enum wire_kind { WK_U64, WK_U32, WK_I32, WK_F32, WK_F64, WK_NAME };

#define WT(t) (1u << (t))
#define WT_ALL 0xFFFEu
#define WT_TENSOR (WT(FMI_MSG_TRAIN) | WT(FMI_MSG_UPDATE) | WT(FMI_MSG_EVALUATE))
#define WT_STATS (WT(FMI_MSG_UPDATE) | WT(FMI_MSG_GOSSIP) | WT(FMI_MSG_REPORT))
#define WT_EDGE_BODY (WT(FMI_MSG_EDGE_ROUND) | WT(FMI_MSG_EDGE_RESULT))

typedef struct wire_field {
	const char *key;
	uint8_t kind;
	uint16_t types;  /* WT() mask of the message types carrying it */
	uint8_t nonneg;  /* floats: must be >= 0 */
	uint16_t off;    /* offsetof(fmi_msg, ...) */
	int64_t min;     /* integers: inclusive range */
	uint64_t max;
} wire_field;

#define WF_INT(k, kind, types, member, lo, hi) \
	{ k, kind, types, 0, offsetof(fmi_msg, member), lo, hi }
#define WF_FLT(k, kind, types, member, nonneg) \
	{ k, kind, types, nonneg, offsetof(fmi_msg, member), 0, 0 }

/* The order is the encoding order, after "v" and "t". */
static const wire_field wire_fields[] = {
	WF_INT("fed", WK_U64, WT_ALL, fed, 0, UINT64_MAX),
	WF_INT("round", WK_U32, WT_ALL, round, 0, UINT32_MAX),
	WF_INT("from", WK_I32, WT_ALL, from, INT32_MIN, INT32_MAX),
	WF_INT("to", WK_I32, WT_ALL, to, INT32_MIN, INT32_MAX),
	WF_INT("seq", WK_U64, WT_ALL, seq, 0, UINT64_MAX),
	WF_INT("epochs", WK_U32, WT(FMI_MSG_TRAIN), epochs, 1, 10000),
	WF_INT("batch", WK_U32, WT(FMI_MSG_TRAIN), batch, 1, 1000000),
	WF_FLT("lr", WK_F32, WT(FMI_MSG_TRAIN) | WT(FMI_MSG_EDGE_ROUND), lr, 1),
	WF_FLT("momentum", WK_F32, WT(FMI_MSG_TRAIN), momentum, 1),
	WF_FLT("wd", WK_F32, WT(FMI_MSG_TRAIN), weight_decay, 1),
	WF_INT("seed", WK_U64, WT(FMI_MSG_TRAIN), seed, 0, UINT64_MAX),
	WF_INT("ne", WK_U64, WT_STATS | WT(FMI_MSG_HELLO) | WT(FMI_MSG_EVAL),
	    num_examples, 0, WIRE_MAX_NE),
	WF_INT("nt", WK_U64, WT(FMI_MSG_HELLO), num_test, 0, WIRE_MAX_NE),
	WF_FLT("loss", WK_F64, WT_STATS, loss, 0),
	WF_INT("steps", WK_U64, WT(FMI_MSG_UPDATE), steps, 0, WIRE_MAX_NE),
	WF_FLT("mass", WK_F64, WT(FMI_MSG_GOSSIP), mass, 0),
	WF_FLT("acc", WK_F64, WT(FMI_MSG_REPORT) | WT(FMI_MSG_EVAL), acc, 0),
	WF_FLT("tloss", WK_F64, WT(FMI_MSG_REPORT) | WT(FMI_MSG_EVAL),
	    test_loss, 0),
	{ "plugin", WK_NAME, WT(FMI_MSG_PLUGIN), 0, 0, 0, 0 },
	WF_INT("n", WK_U64, WT_TENSOR | WT(FMI_MSG_PLUGIN) | WT(FMI_MSG_GOSSIP) |
	    WT(FMI_MSG_REPORT) | WT_EDGE_BODY, n, 0, WIRE_MAX_N),
	WF_FLT("lrs", WK_F64, WT(FMI_MSG_EDGE_ROUND), lr_scale, 1),
	WF_INT("upd", WK_U32, WT(FMI_MSG_EDGE_COLLECTED), updates, 0,
	    UINT32_MAX),
	WF_INT("ok", WK_U32, WT(FMI_MSG_EDGE_VERDICT), ok, 0, 1),
	WF_INT("nb", WK_U64, WT_EDGE_BODY, body, 1, WIRE_MAX_BODY),
};

#define WIRE_NFIELDS (sizeof wire_fields / sizeof wire_fields[0])
#define WIRE_SLOT_V 0 /* slots: "v", "t", then wire_fields[i] at 2 + i */
#define WIRE_SLOT_T 1
#define WIRE_NSLOTS (2 + WIRE_NFIELDS)

static const char *const wire_type_names[] = { "?", "hello", "train",
	"update", "plugin", "round_end", "shutdown", "heartbeat", "gossip",
	"report", "evaluate", "eval", "edge_round", "edge_collected",
	"edge_verdict", "edge_result" };

const char *
fmi_msg_type_name(uint32_t type)
{
	return type <= FMI_MSG_MAX ? wire_type_names[type] : "?";
}

static int
wire_type_ok(uint32_t type)
{
	return type >= 1 && type <= FMI_MSG_MAX;
}

static int
wire_has(const wire_field *f, uint32_t type)
{
	return (f->types & WT(type)) != 0;
}

/* ---- encoding ---------------------------------------------------------- */

typedef struct wire_buf {
	unsigned char *p;
	size_t cap, len;
	int full; /* sticky: once a write is refused, all are */
} wire_buf;

static int
wire_write(void *data, const char *b, size_t n)
{
	wire_buf *w = data;
	if (w->full || n > w->cap - w->len) {
		w->full = 1;
		return -1;
	}
	memcpy(w->p + w->len, b, n);
	w->len += n;
	return 0;
}

static int
wire_pack_key(msgpack_packer *pk, const char *key)
{
	size_t n = strlen(key);
	return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, key, n);
}

static int
wire_pack_field(msgpack_packer *pk, const wire_field *f, const fmi_msg *m)
{
	const char *base = (const char *)m + f->off;
	int bad = wire_pack_key(pk, f->key);
	switch (f->kind) {
	case WK_U64:
		return bad | msgpack_pack_uint64(pk, *(const uint64_t *)base);
	case WK_U32:
		return bad | msgpack_pack_uint32(pk, *(const uint32_t *)base);
	case WK_I32:
		return bad | msgpack_pack_int32(pk, *(const int32_t *)base);
	case WK_F32:
		return bad | msgpack_pack_float(pk, *(const float *)base);
	case WK_F64:
		return bad | msgpack_pack_double(pk, *(const double *)base);
	default: {
		size_t n = strlen(m->plugin);
		return bad | msgpack_pack_str(pk, n) |
		    msgpack_pack_str_body(pk, m->plugin, n);
	}
	}
}

static size_t
wire_count(uint32_t type)
{
	size_t n = 2;
	for (size_t i = 0; i < WIRE_NFIELDS; i++) {
		n += wire_has(&wire_fields[i], type);
	}
	return n;
}

int
fmi_msg_encode(const fmi_msg *m, void *buf, size_t cap, size_t *len)
{
	if (m == NULL || len == NULL || (buf == NULL && cap > 0) ||
	    !wire_type_ok(m->type)) {
		return FM_EINVAL;
	}
	if (m->type == FMI_MSG_PLUGIN && (m->plugin[0] == '\0' ||
	    memchr(m->plugin, '\0', sizeof m->plugin) == NULL)) {
		return FM_EINVAL; /* empty or unterminated name */
	}
	wire_buf w = { buf, cap, 0, 0 };
	msgpack_packer pk;
	msgpack_packer_init(&pk, &w, wire_write);
	int bad = msgpack_pack_map(&pk, wire_count(m->type));
	bad |= wire_pack_key(&pk, "v") |
	    msgpack_pack_uint32(&pk, FMI_WIRE_VERSION);
	bad |= wire_pack_key(&pk, "t") | msgpack_pack_uint32(&pk, m->type);
	for (size_t i = 0; i < WIRE_NFIELDS; i++) {
		if (wire_has(&wire_fields[i], m->type)) {
			bad |= wire_pack_field(&pk, &wire_fields[i], m);
		}
	}
	if (bad || w.full) {
		return FM_ERANGE;
	}
	*len = w.len;
	return FM_OK;
}

/* ---- pre-scan ------------------------------------------------------------
 * msgpack-c allocates a container's elements as soon as it reads the count,
 * so a 5-byte header claiming 2^32 elements would ask for ~100 GB. Before
 * unpacking we walk the tokens once: the object must be complete, end
 * exactly at len, and never promise more elements than bytes remain (each
 * element takes at least one byte). msgpack-c then allocates O(len).
 */

enum { PS_BAD, PS_FIXED, PS_BLOB, PS_ARRAY, PS_MAP };

typedef struct ps_code {
	uint8_t kind, width, extra; /* width: bytes of value/length/count */
} ps_code;

/* Codes 0xc0..0xdf. */
static const ps_code ps_codes[32] = {
	{ PS_FIXED, 0, 0 }, { PS_BAD, 0, 0 }, { PS_FIXED, 0, 0 },
	{ PS_FIXED, 0, 0 },                                      /* c0-c3 */
	{ PS_BLOB, 1, 0 }, { PS_BLOB, 2, 0 }, { PS_BLOB, 4, 0 }, /* bin */
	{ PS_BLOB, 1, 1 }, { PS_BLOB, 2, 1 }, { PS_BLOB, 4, 1 }, /* ext */
	{ PS_FIXED, 4, 0 }, { PS_FIXED, 8, 0 },                  /* float */
	{ PS_FIXED, 1, 0 }, { PS_FIXED, 2, 0 }, { PS_FIXED, 4, 0 },
	{ PS_FIXED, 8, 0 },                                      /* uint */
	{ PS_FIXED, 1, 0 }, { PS_FIXED, 2, 0 }, { PS_FIXED, 4, 0 },
	{ PS_FIXED, 8, 0 },                                      /* int */
	{ PS_FIXED, 2, 0 }, { PS_FIXED, 3, 0 }, { PS_FIXED, 5, 0 },
	{ PS_FIXED, 9, 0 }, { PS_FIXED, 17, 0 },                 /* fixext */
	{ PS_BLOB, 1, 0 }, { PS_BLOB, 2, 0 }, { PS_BLOB, 4, 0 }, /* str */
	{ PS_ARRAY, 2, 0 }, { PS_ARRAY, 4, 0 },                  /* array */
	{ PS_MAP, 2, 0 }, { PS_MAP, 4, 0 },                      /* map */
};

typedef struct ps_state {
	const unsigned char *p;
	size_t len, pos;
	uint64_t pending; /* elements still expected */
} ps_state;

static uint32_t
ps_be(const unsigned char *p, unsigned width)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < width; i++) {
		v = (v << 8) | p[i];
	}
	return v;
}

static int
ps_truncated(const ps_state *s, fm_error *err)
{
	return fm_error_set(err, FM_EPROTO,
	    "truncated msgpack: the header ends at byte %zu mid-object",
	    s->len);
}

/* Decodes the code at s->pos into kind and size (payload bytes, or element
 * count for containers), advancing past the code and its length field. */
static int
ps_code_at(ps_state *s, uint8_t *kind, uint64_t *size, fm_error *err)
{
	uint8_t b = s->p[s->pos++];
	ps_code c = { PS_FIXED, 0, 0 };
	*size = 0;
	if (b >= 0x80 && b <= 0x9f) {
		c.kind = b <= 0x8f ? PS_MAP : PS_ARRAY;
		*size = b & 0x0f;
	} else if (b >= 0xa0 && b <= 0xbf) {
		*size = b & 0x1f;
	} else if (b >= 0xc0 && b <= 0xdf) {
		c = ps_codes[b - 0xc0];
		if (c.kind == PS_BAD) {
			return fm_error_set(err, FM_EPROTO, "invalid msgpack "
			    "byte 0x%02x at offset %zu", b, s->pos - 1);
		}
		if (c.width > s->len - s->pos) {
			return ps_truncated(s, err);
		}
		if (c.kind != PS_FIXED) {
			*size = (uint64_t)ps_be(s->p + s->pos, c.width) + c.extra;
			s->pos += c.width;
		} else {
			*size = c.width;
		}
	}
	*kind = c.kind;
	return FM_OK;
}

static int
ps_step(ps_state *s, fm_error *err)
{
	size_t at = s->pos;
	uint8_t kind = PS_BAD;
	uint64_t size = 0;
	int rv = ps_code_at(s, &kind, &size, err);
	if (rv != FM_OK) {
		return rv;
	}
	s->pending--;
	size_t left = s->len - s->pos;
	if (kind == PS_ARRAY || kind == PS_MAP) {
		s->pending += kind == PS_MAP ? 2 * size : size;
		if (s->pending > left) {
			int map = kind == PS_MAP;
			return fm_error_set(err, FM_EPROTO, "msgpack %s at "
			    "offset %zu claims %" PRIu64 " %s but only %zu "
			    "bytes remain", map ? "map" : "array", at, size,
			    map ? "entries" : "elements", left);
		}
	} else if (size > left) {
		return fm_error_set(err, FM_EPROTO, "msgpack value at offset "
		    "%zu claims %" PRIu64 " bytes but only %zu remain", at,
		    size, left);
	} else {
		s->pos += (size_t)size;
	}
	return FM_OK;
}

int
fmi_wire_scan(const void *buf, size_t len, fm_error *err)
{
	ps_state s = { buf, len, 0, 1 };
	while (s.pending > 0) {
		if (s.pos >= s.len) {
			return ps_truncated(&s, err);
		}
		int rv = ps_step(&s, err);
		if (rv != FM_OK) {
			return rv;
		}
	}
	if (s.pos != len) {
		return fm_error_set(err, FM_EPROTO, "%zu trailing bytes after "
		    "the header object (%zu bytes)", len - s.pos, s.pos);
	}
	return FM_OK;
}

/* ---- decoding helpers ------------------------------------------------- */

const char *
fmi_wire_obj_name(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return "nil";
	case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return "a float";
	case MSGPACK_OBJECT_STR: return "a string";
	case MSGPACK_OBJECT_ARRAY: return "an array";
	case MSGPACK_OBJECT_MAP: return "a map";
	case MSGPACK_OBJECT_BIN: return "binary data";
	default: return "an extension value";
	}
}

static int
wire_type_err(fm_error *err, const char *key, const msgpack_object *o,
    const char *want)
{
	return fm_error_set(err, FM_EPROTO, "field '%s' is %s, expected %s",
	    key, fmi_wire_obj_name(o), want);
}

/* Copies a key for an error message, escaping what is not printable. */
static const char *
wire_key_text(const msgpack_object_str *k, char *out, size_t cap)
{
	size_t j = 0;
	for (uint32_t i = 0; i < k->size && j + 5 < cap; i++) {
		unsigned char c = (unsigned char)k->ptr[i];
		if (c >= 0x20 && c < 0x7f) {
			out[j++] = (char)c;
		} else {
			j += (size_t)snprintf(out + j, cap - j, "\\x%02x", c);
		}
	}
	out[j] = '\0';
	return out;
}

static int
wire_key_is(const msgpack_object_str *k, const char *s)
{
	return k->size == strlen(s) && memcmp(k->ptr, s, k->size) == 0;
}

static int
wire_slot_of(const msgpack_object_str *k)
{
	if (wire_key_is(k, "v")) {
		return WIRE_SLOT_V;
	}
	if (wire_key_is(k, "t")) {
		return WIRE_SLOT_T;
	}
	for (size_t i = 0; i < WIRE_NFIELDS; i++) {
		if (wire_key_is(k, wire_fields[i].key)) {
			return 2 + (int)i;
		}
	}
	return -1;
}

static int
wire_key_dup(const msgpack_object_map *map, uint32_t i)
{
	const msgpack_object_str *k = &map->ptr[i].key.via.str;
	for (uint32_t j = 0; j < i; j++) {
		const msgpack_object_str *o = &map->ptr[j].key.via.str;
		if (o->size == k->size && memcmp(o->ptr, k->ptr, k->size) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Checks the keys and points slots[] at the values of the known ones. */
static int
wire_index(const msgpack_object *top, const msgpack_object **slots,
    fm_error *err)
{
	if (top->type != MSGPACK_OBJECT_MAP) {
		return fm_error_set(err, FM_EPROTO, "header is %s, expected a "
		    "map", fmi_wire_obj_name(top));
	}
	const msgpack_object_map *map = &top->via.map;
	if (map->size > WIRE_MAX_KEYS) {
		return fm_error_set(err, FM_EPROTO, "header has %u keys, limit "
		    "%d", map->size, WIRE_MAX_KEYS);
	}
	for (uint32_t i = 0; i < map->size; i++) {
		const msgpack_object *k = &map->ptr[i].key;
		char text[64];
		if (k->type != MSGPACK_OBJECT_STR) {
			return fm_error_set(err, FM_EPROTO, "header key #%u is "
			    "%s, expected a string", i + 1, fmi_wire_obj_name(k));
		}
		if (wire_key_dup(map, i)) {
			return fm_error_set(err, FM_EPROTO, "duplicate key '%s' "
			    "in header", wire_key_text(&k->via.str, text,
			    sizeof text));
		}
		int slot = wire_slot_of(&k->via.str);
		if (slot >= 0) {
			slots[slot] = &map->ptr[i].val;
		}
	}
	return FM_OK;
}

/* An integer as sign + magnitude. */
typedef struct wire_int {
	int neg;
	uint64_t u; /* when !neg */
	int64_t i;  /* when neg */
} wire_int;

static int
wire_get_int(const msgpack_object *o, const char *key, wire_int *out,
    fm_error *err)
{
	*out = (wire_int){ o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER, 0, 0 };
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		out->u = o->via.u64;
	} else if (out->neg) {
		out->i = o->via.i64;
	} else {
		return wire_type_err(err, key, o, "an integer");
	}
	return FM_OK;
}

static const char *
wire_int_text(const wire_int *v, char *out, size_t cap)
{
	if (v->neg) {
		snprintf(out, cap, "%" PRId64, v->i);
	} else {
		snprintf(out, cap, "%" PRIu64, v->u);
	}
	return out;
}

static int
wire_int_in(const wire_int *v, int64_t min, uint64_t max)
{
	if (v->neg) {
		return min < 0 && v->i >= min;
	}
	return v->u <= max && (min <= 0 || v->u >= (uint64_t)min);
}

/* ---- decoding fields ---------------------------------------------------- */

static int
wire_dec_int(const wire_field *f, const msgpack_object *o, fmi_msg *m,
    fm_error *err)
{
	wire_int v;
	char text[32];
	int rv = wire_get_int(o, f->key, &v, err);
	if (rv != FM_OK) {
		return rv;
	}
	if (!wire_int_in(&v, f->min, f->max)) {
		return fm_error_set(err, FM_ERANGE, "field '%s' is %s, allowed "
		    "%" PRId64 "..%" PRIu64, f->key,
		    wire_int_text(&v, text, sizeof text), f->min, f->max);
	}
	char *dst = (char *)m + f->off;
	if (f->kind == WK_U64) {
		*(uint64_t *)dst = v.u;
	} else if (f->kind == WK_U32) {
		*(uint32_t *)dst = (uint32_t)v.u;
	} else {
		*(int32_t *)dst = v.neg ? (int32_t)v.i : (int32_t)v.u;
	}
	return FM_OK;
}

/* Why x is not acceptable for f, or NULL. */
static const char *
wire_float_why(const wire_field *f, double x)
{
	if (!isfinite(x)) {
		return "expected a finite number";
	}
	if (f->nonneg && x < 0) {
		return "must be >= 0";
	}
	if (f->kind == WK_F32 && fabs(x) > FLT_MAX) {
		return "beyond the float32 range";
	}
	return NULL;
}

static int
wire_dec_float(const wire_field *f, const msgpack_object *o, fmi_msg *m,
    fm_error *err)
{
	double x;
	if (o->type == MSGPACK_OBJECT_FLOAT32 ||
	    o->type == MSGPACK_OBJECT_FLOAT64) {
		x = o->via.f64;
	} else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		x = (double)o->via.u64;
	} else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		x = (double)o->via.i64;
	} else {
		return wire_type_err(err, f->key, o, "a number");
	}
	const char *why = wire_float_why(f, x);
	if (why != NULL) {
		return fm_error_set(err, FM_ERANGE, "field '%s' is %g, %s",
		    f->key, x, why);
	}
	char *dst = (char *)m + f->off;
	if (f->kind == WK_F32) {
		*(float *)dst = (float)x;
	} else {
		*(double *)dst = x;
	}
	return FM_OK;
}

static int
wire_dec_name(const wire_field *f, const msgpack_object *o, fmi_msg *m,
    fm_error *err)
{
	if (o->type != MSGPACK_OBJECT_STR) {
		return wire_type_err(err, f->key, o, "a string");
	}
	const msgpack_object_str *s = &o->via.str;
	if (s->size == 0 || s->size > FMI_WIRE_MAX_NAME) {
		return fm_error_set(err, FM_EPROTO, "field '%s' is %u bytes, "
		    "expected 1..%d", f->key, s->size, FMI_WIRE_MAX_NAME);
	}
	for (uint32_t i = 0; i < s->size; i++) {
		unsigned char c = (unsigned char)s->ptr[i];
		if (c < 0x20 || c >= 0x7f) {
			return fm_error_set(err, FM_EPROTO, "field '%s' has a "
			    "non-printable byte 0x%02x at %u", f->key, c, i);
		}
	}
	memcpy(m->plugin, s->ptr, s->size);
	m->plugin[s->size] = '\0';
	return FM_OK;
}

static int
wire_dec_field(const wire_field *f, const msgpack_object *o, fmi_msg *m,
    fm_error *err)
{
	if (o == NULL) {
		return fm_error_set(err, FM_EPROTO, "missing field '%s' in a "
		    "%s message", f->key, fmi_msg_type_name(m->type));
	}
	switch (f->kind) {
	case WK_F32:
	case WK_F64:
		return wire_dec_float(f, o, m, err);
	case WK_NAME:
		return wire_dec_name(f, o, m, err);
	default:
		return wire_dec_int(f, o, m, err);
	}
}

static int
wire_dec_version(const msgpack_object *o, fm_error *err)
{
	wire_int v;
	char text[32];
	if (o == NULL) {
		return fm_error_set(err, FM_EPROTO, "missing field 'v' (wire "
		    "version)");
	}
	int rv = wire_get_int(o, "v", &v, err);
	if (rv == FM_OK && (v.neg || v.u != FMI_WIRE_VERSION)) {
		rv = fm_error_set(err, FM_EVERSION, "wire version %s, expected "
		    "%d: the peer runs another fedmesh version",
		    wire_int_text(&v, text, sizeof text), FMI_WIRE_VERSION);
	}
	return rv;
}

static int
wire_dec_type(const msgpack_object *o, fmi_msg *m, fm_error *err)
{
	wire_int v;
	char text[32];
	if (o == NULL) {
		return fm_error_set(err, FM_EPROTO, "missing field 't' "
		    "(message type)");
	}
	int rv = wire_get_int(o, "t", &v, err);
	if (rv != FM_OK) {
		return rv;
	}
	if (!wire_int_in(&v, 1, FMI_MSG_MAX)) {
		return fm_error_set(err, FM_EPROTO, "unknown message type %s",
		    wire_int_text(&v, text, sizeof text));
	}
	m->type = (uint32_t)v.u;
	return FM_OK;
}

static int
wire_dec_object(const msgpack_object *top, fmi_msg *m, fm_error *err)
{
	const msgpack_object *slots[WIRE_NSLOTS] = { NULL };
	int rv = wire_index(top, slots, err);
	if (rv == FM_OK) {
		rv = wire_dec_version(slots[WIRE_SLOT_V], err);
	}
	if (rv == FM_OK) {
		rv = wire_dec_type(slots[WIRE_SLOT_T], m, err);
	}
	for (size_t i = 0; i < WIRE_NFIELDS && rv == FM_OK; i++) {
		if (wire_has(&wire_fields[i], m->type)) {
			rv = wire_dec_field(&wire_fields[i], slots[2 + i], m,
			    err);
		}
	}
	return rv;
}

static int
wire_unpack_err(msgpack_unpack_return ur, fm_error *err)
{
	switch (ur) {
	case MSGPACK_UNPACK_CONTINUE:
		return fm_error_set(err, FM_EPROTO, "truncated msgpack");
	case MSGPACK_UNPACK_EXTRA_BYTES:
		return fm_error_set(err, FM_EPROTO, "trailing bytes after the "
		    "header object");
	case MSGPACK_UNPACK_NOMEM_ERROR:
		return fm_error_set(err, FM_EPROTO, "msgpack nested too deeply "
		    "(or out of memory)");
	default:
		return fm_error_set(err, FM_EPROTO, "invalid msgpack");
	}
}

int
fmi_msg_decode(fmi_msg *m, const void *buf, size_t len, fm_error *err)
{
	if (m == NULL || (buf == NULL && len > 0)) {
		return fm_error_set(err, FM_EINVAL, "fmi_msg_decode: NULL "
		    "argument");
	}
	if (len == 0) {
		return fm_error_set(err, FM_EPROTO, "empty header");
	}
	if (len > FMI_WIRE_MAX_HEADER) {
		return fm_error_set(err, FM_EPROTO, "header is %zu bytes, limit "
		    "%d", len, FMI_WIRE_MAX_HEADER);
	}
	int rv = fmi_wire_scan(buf, len, err);
	if (rv != FM_OK) {
		return rv;
	}
	memset(m, 0, sizeof *m);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	msgpack_unpack_return ur = msgpack_unpack_next(&u, buf, len, &off);
	if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
		rv = wire_unpack_err(ur == MSGPACK_UNPACK_SUCCESS ?
		    MSGPACK_UNPACK_EXTRA_BYTES : ur, err);
	} else {
		rv = wire_dec_object(&u.data, m, err);
	}
	msgpack_unpacked_destroy(&u);
	return rv;
}

/* ---- payloads ------------------------------------------------------------ */

static uint32_t
wire_bswap32(uint32_t u)
{
	return (u >> 24) | ((u >> 8) & 0xff00u) | ((u << 8) & 0xff0000u) |
	    (u << 24);
}

/* Reads a little-endian float32 at any alignment as its bit pattern. */
static uint32_t
wire_le32(const unsigned char *p)
{
	uint32_t u;
	memcpy(&u, p, sizeof u);
	return WIRE_BIG_ENDIAN ? wire_bswap32(u) : u;
}

static int
wire_check_finite(const fmi_msg *m, const unsigned char *p, size_t n,
    fm_error *err)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t u = wire_le32(p + 4 * i);
		if ((u & 0x7f800000u) == 0x7f800000u) {
			const char *what = (u & 0x007fffffu) ? "NaN" :
			    (u >> 31) ? "-Inf" : "Inf";
			return fm_error_set(err, FM_ERANGE, "%s contains %s at "
			    "index %zu", fmi_msg_type_name(m->type), what, i);
		}
	}
	return FM_OK;
}

int
fmi_msg_check_tensor(const fmi_msg *m, const void *payload, size_t len,
    size_t dim, fm_error *err)
{
	if (m == NULL) {
		return fm_error_set(err, FM_EINVAL, "fmi_msg_check_tensor: NULL "
		    "message");
	}
	const char *name = fmi_msg_type_name(m->type);
	if (m->n != dim) {
		return fm_error_set(err, FM_EPROTO, "%s has %" PRIu64 " floats, "
		    "model has %zu", name, m->n, dim);
	}
	if (dim > 0 && payload == NULL) {
		return fm_error_set(err, FM_EPROTO, "%s has no payload, expected "
		    "%zu floats", name, dim);
	}
	if (len % 4 != 0 || len / 4 != dim) {
		return fm_error_set(err, FM_EPROTO, "%s payload is %zu bytes, "
		    "expected %zu (%zu floats)", name, len, dim * 4, dim);
	}
	return wire_check_finite(m, payload, dim, err);
}

void
fmi_plugin_msg(fmi_msg *m, uint64_t fed, uint32_t round, int32_t from,
    int32_t to, uint64_t seq, const char *component, size_t len)
{
	memset(m, 0, sizeof *m);
	m->type = FMI_MSG_PLUGIN;
	m->fed = fed;
	m->round = round;
	m->from = from;
	m->to = to;
	m->seq = seq;
	snprintf(m->plugin, sizeof m->plugin, "%s", component);
	m->n = len;
}

void
fmi_f32_to_le(float *x, size_t n)
{
#if WIRE_BIG_ENDIAN
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &x[i], sizeof u);
		u = wire_bswap32(u);
		memcpy(&x[i], &u, sizeof u);
	}
#else
	(void)x;
	(void)n;
#endif
}

void
fmi_f32_from_le(float *x, size_t n)
{
	fmi_f32_to_le(x, n); /* a byte swap is its own inverse */
}
