/* SPDX-License-Identifier: MIT */
/*
 * wire_edge.c: the bodies of EDGE_ROUND and EDGE_RESULT, the messages
 * between a deployed edge aggregator and its parent (see wire.h), and
 * their payloads: n float32 (a model, or nothing) then a msgpack map.
 *
 * The decoder is as strict as the header's: a pre-scan first (so msgpack-c
 * never allocates for counts the bytes cannot hold), then every known key
 * checked for its type and range; a cap on every list.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "wire/wire.h"

#define EB_MAX_NE (UINT64_C(1) << 53)
#define EB_MAX_KEYS 32

/* ---- encoding ----------------------------------------------------------- */

typedef struct eb_buf {
	unsigned char *p;
	size_t cap, len;
	int full;
} eb_buf;

static int
eb_write(void *data, const char *b, size_t n)
{
	eb_buf *w = data;
	if (w->full || n > w->cap - w->len) {
		w->full = 1;
		return -1;
	}
	memcpy(w->p + w->len, b, n);
	w->len += n;
	return 0;
}

static int
eb_str(msgpack_packer *pk, const char *s, size_t n)
{
	return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

static int
eb_key(msgpack_packer *pk, const char *k)
{
	return eb_str(pk, k, strlen(k));
}

static int
eb_round(msgpack_packer *pk, const fmi_edge_body *b)
{
	int bad = msgpack_pack_map(pk, 2) | eb_key(pk, "c") |
	    msgpack_pack_array(pk, b->nclients);
	for (uint32_t i = 0; i < b->nclients; i++) {
		bad |= msgpack_pack_int32(pk, b->clients[i].client);
	}
	bad |= eb_key(pk, "f") | msgpack_pack_array(pk, b->nclients);
	for (uint32_t i = 0; i < b->nclients; i++) {
		bad |= msgpack_pack_uint8(pk, b->clients[i].fault);
	}
	return bad;
}

static int
eb_u(msgpack_packer *pk, const char *k, uint64_t v)
{
	return eb_key(pk, k) | msgpack_pack_uint64(pk, v);
}

static int
eb_result(msgpack_packer *pk, const fmi_edge_body *b)
{
	int bad = msgpack_pack_map(pk, 10) | eb_key(pk, "c") |
	    msgpack_pack_array(pk, b->nclients);
	for (uint32_t i = 0; i < b->nclients; i++) {
		const fmi_edge_client *c = &b->clients[i];
		bad |= msgpack_pack_array(pk, 6) |
		    msgpack_pack_int32(pk, c->client) |
		    msgpack_pack_uint8(pk, c->status) |
		    msgpack_pack_uint8(pk, c->counted) |
		    msgpack_pack_uint64(pk, c->examples) |
		    msgpack_pack_double(pk, c->loss) |
		    msgpack_pack_double(pk, c->norm);
	}
	bad |= eb_key(pk, "x") | msgpack_pack_array(pk, b->nmetrics);
	for (uint32_t i = 0; i < b->nmetrics; i++) {
		const fmi_edge_metric *x = &b->metrics[i];
		bad |= msgpack_pack_array(pk, 3) |
		    msgpack_pack_uint8(pk, x->phase) |
		    eb_str(pk, x->name, strlen(x->name)) |
		    msgpack_pack_double(pk, x->value);
	}
	bad |= eb_u(pk, "fin", b->finished) | eb_u(pk, "held", b->held) |
	    eb_u(pk, "dr", b->def_ran) | eb_u(pk, "dc", b->def_combined) |
	    eb_u(pk, "fed", b->fed) | eb_u(pk, "rej", b->rejected) |
	    eb_u(pk, "ra", b->rejected_adv);
	return bad | eb_key(pk, "why") | eb_str(pk, b->why, strlen(b->why));
}

size_t
fmi_edge_body_bound(uint32_t type, uint32_t nclients, uint32_t nmetrics)
{
	if (type == FMI_MSG_EDGE_ROUND) {
		return 16 + 7 * (size_t)nclients;
	}
	/* per client: array 1, id 5, status 2, counted 2, examples 9, two
	 * doubles 18; per metric: array 1, phase 2, name 1 + 31, double 9 */
	return 128 + 37 * (size_t)nclients + 44 * (size_t)nmetrics +
	    FMI_EDGE_WHY + 3;
}

int
fmi_edge_body_encode(uint32_t type, const fmi_edge_body *b, void *buf,
    size_t cap, size_t *len)
{
	if (b == NULL || len == NULL || (buf == NULL && cap > 0) ||
	    (type != FMI_MSG_EDGE_ROUND && type != FMI_MSG_EDGE_RESULT) ||
	    (b->nclients > 0 && b->clients == NULL) ||
	    (b->nmetrics > 0 && b->metrics == NULL) ||
	    strnlen(b->why, sizeof b->why) > FMI_EDGE_WHY) {
		return FM_EINVAL;
	}
	for (uint32_t i = 0; type == FMI_MSG_EDGE_RESULT && i < b->nmetrics;
	    i++) {
		size_t n = strnlen(b->metrics[i].name, sizeof b->metrics[i].name);
		if (n == 0 || n > FMI_EDGE_METRIC_NAME) {
			return FM_EINVAL;
		}
	}
	eb_buf w = { buf, cap, 0, 0 };
	msgpack_packer pk;
	msgpack_packer_init(&pk, &w, eb_write);
	int bad = type == FMI_MSG_EDGE_ROUND ? eb_round(&pk, b)
	                                     : eb_result(&pk, b);
	if (bad || w.full) {
		return FM_ERANGE;
	}
	*len = w.len;
	return FM_OK;
}

/* ---- decoding ----------------------------------------------------------- */

static int
eb_type_err(fm_error *err, const char *what, const msgpack_object *o,
    const char *want)
{
	return fm_error_set(err, FM_EPROTO, "body: %s is %s, expected %s",
	    what, fmi_wire_obj_name(o), want);
}

/* An unsigned integer in [lo, hi]. */
static int
eb_uint(const msgpack_object *o, const char *what, uint64_t lo, uint64_t hi,
    uint64_t *out, fm_error *err)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		return fm_error_set(err, FM_ERANGE, "body: %s is %" PRId64
		    ", allowed %" PRIu64 "..%" PRIu64, what, o->via.i64, lo, hi);
	}
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		return eb_type_err(err, what, o, "an integer");
	}
	if (o->via.u64 < lo || o->via.u64 > hi) {
		return fm_error_set(err, FM_ERANGE, "body: %s is %" PRIu64
		    ", allowed %" PRIu64 "..%" PRIu64, what, o->via.u64, lo, hi);
	}
	*out = o->via.u64;
	return FM_OK;
}

/* A float; with stat, finite and >= 0, or NaN (none). */
static int
eb_float(const msgpack_object *o, const char *what, int stat, double *out,
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
		return eb_type_err(err, what, o, "a number");
	}
	if (stat && !isnan(x) && (!isfinite(x) || x < 0)) {
		return fm_error_set(err, FM_ERANGE, "body: %s is %g, expected a "
		    "finite number >= 0 (or NaN for none)", what, x);
	}
	*out = x;
	return FM_OK;
}

/* A string of 1..max printable bytes (0..max with empty_ok) into out. */
static int
eb_text(const msgpack_object *o, const char *what, size_t max, int empty_ok,
    char *out, fm_error *err)
{
	if (o->type != MSGPACK_OBJECT_STR) {
		return eb_type_err(err, what, o, "a string");
	}
	const msgpack_object_str *s = &o->via.str;
	if ((!empty_ok && s->size == 0) || s->size > max) {
		return fm_error_set(err, FM_EPROTO, "body: %s is %u bytes, "
		    "expected %d..%zu", what, s->size, !empty_ok, max);
	}
	for (uint32_t i = 0; i < s->size; i++) {
		unsigned char c = (unsigned char)s->ptr[i];
		if (c < 0x20 || c == 0x7f) {
			return fm_error_set(err, FM_EPROTO, "body: %s has a "
			    "control byte 0x%02x at %u", what, c, i);
		}
	}
	memcpy(out, s->ptr, s->size);
	out[s->size] = '\0';
	return FM_OK;
}

/* An array of at most cap elements. */
static int
eb_array(const msgpack_object *o, const char *what, uint32_t cap,
    fm_error *err)
{
	if (o->type != MSGPACK_OBJECT_ARRAY) {
		return eb_type_err(err, what, o, "an array");
	}
	if (o->via.array.size > cap) {
		return fm_error_set(err, FM_ERANGE, "body: %s has %u entries, "
		    "at most %u expected", what, o->via.array.size, cap);
	}
	return FM_OK;
}

static int
eb_id(const msgpack_object *o, const char *what, int32_t *out, fm_error *err)
{
	uint64_t v;
	int rv = eb_uint(o, what, 1, INT32_MAX, &v, err);
	if (rv == FM_OK) {
		*out = (int32_t)v;
	}
	return rv;
}

static int
eb_dec_result_client(const msgpack_object *o, uint32_t i, fmi_edge_client *c,
    fm_error *err)
{
	char what[48];
	uint64_t v;
	snprintf(what, sizeof what, "client #%u", i + 1);
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 6) {
		return o->type != MSGPACK_OBJECT_ARRAY ?
		    eb_type_err(err, what, o, "an array") :
		    fm_error_set(err, FM_EPROTO, "body: %s has %u fields, "
		    "expected 6", what, o->via.array.size);
	}
	const msgpack_object *f = o->via.array.ptr;
	int rv = eb_id(&f[0], what, &c->client, err);
	if (rv == FM_OK) {
		snprintf(what, sizeof what, "client %d: status", c->client);
		rv = eb_uint(&f[1], what, 1, 5, &v, err);
		c->status = (uint8_t)v;
	}
	if (rv == FM_OK) {
		snprintf(what, sizeof what, "client %d: counted", c->client);
		rv = eb_uint(&f[2], what, 0, 1, &v, err);
		c->counted = (uint8_t)v;
	}
	if (rv == FM_OK) {
		snprintf(what, sizeof what, "client %d: examples", c->client);
		rv = eb_uint(&f[3], what, 0, EB_MAX_NE, &c->examples, err);
	}
	if (rv == FM_OK) {
		snprintf(what, sizeof what, "client %d: loss", c->client);
		rv = eb_float(&f[4], what, 1, &c->loss, err);
	}
	if (rv == FM_OK) {
		snprintf(what, sizeof what, "client %d: norm", c->client);
		rv = eb_float(&f[5], what, 1, &c->norm, err);
	}
	if (rv == FM_OK && c->counted && isnan(c->loss)) {
		rv = fm_error_set(err, FM_ERANGE, "body: client %d was counted "
		    "but has no loss", c->client);
	}
	return rv;
}

static int
eb_dec_metric(const msgpack_object *o, uint32_t i, fmi_edge_metric *x,
    fm_error *err)
{
	char what[48];
	uint64_t v;
	snprintf(what, sizeof what, "metric #%u", i + 1);
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3) {
		return o->type != MSGPACK_OBJECT_ARRAY ?
		    eb_type_err(err, what, o, "an array") :
		    fm_error_set(err, FM_EPROTO, "body: %s has %u fields, "
		    "expected 3", what, o->via.array.size);
	}
	const msgpack_object *f = o->via.array.ptr;
	int rv = eb_uint(&f[0], what, 0, 2, &v, err);
	x->phase = (uint8_t)v;
	if (rv == FM_OK) {
		rv = eb_text(&f[1], what, FMI_EDGE_METRIC_NAME, 0, x->name, err);
	}
	return rv == FM_OK ? eb_float(&f[2], what, 0, &x->value, err) : rv;
}

/* The slots of a body's known keys. */
enum { EK_C, EK_F, EK_X, EK_FIN, EK_HELD, EK_DR, EK_DC, EK_FED, EK_REJ,
	EK_RA, EK_WHY, EK_N };
static const char *const eb_keys[EK_N] = { "c", "f", "x", "fin", "held",
	"dr", "dc", "fed", "rej", "ra", "why" };

static int
eb_index(const msgpack_object *top, const msgpack_object **slot,
    fm_error *err)
{
	if (top->type != MSGPACK_OBJECT_MAP) {
		return fm_error_set(err, FM_EPROTO, "body is %s, expected a map",
		    fmi_wire_obj_name(top));
	}
	const msgpack_object_map *map = &top->via.map;
	if (map->size > EB_MAX_KEYS) {
		return fm_error_set(err, FM_EPROTO, "body has %u keys, limit %d",
		    map->size, EB_MAX_KEYS);
	}
	for (uint32_t i = 0; i < map->size; i++) {
		const msgpack_object *k = &map->ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR) {
			return fm_error_set(err, FM_EPROTO, "body key #%u is %s, "
			    "expected a string", i + 1, fmi_wire_obj_name(k));
		}
		for (int j = 0; j < EK_N; j++) {
			if (k->via.str.size != strlen(eb_keys[j]) ||
			    memcmp(k->via.str.ptr, eb_keys[j], k->via.str.size)) {
				continue;
			}
			if (slot[j] != NULL) {
				return fm_error_set(err, FM_EPROTO, "duplicate key "
				    "'%s' in body", eb_keys[j]);
			}
			slot[j] = &map->ptr[i].val;
		}
	}
	return FM_OK;
}

static int
eb_need(const msgpack_object **slot, int k, uint32_t type, fm_error *err)
{
	if (slot[k] == NULL) {
		return fm_error_set(err, FM_EPROTO, "body: missing field '%s' in "
		    "an %s message", eb_keys[k], fmi_msg_type_name(type));
	}
	return FM_OK;
}

static int
eb_dec_round(const msgpack_object **slot, fmi_edge_body *b, fm_error *err)
{
	const uint32_t t = FMI_MSG_EDGE_ROUND;
	int rv = eb_need(slot, EK_C, t, err);
	if (rv == FM_OK) {
		rv = eb_need(slot, EK_F, t, err);
	}
	if (rv == FM_OK) {
		rv = eb_array(slot[EK_C], "'c'", b->cap_clients, err);
	}
	if (rv == FM_OK) {
		rv = eb_array(slot[EK_F], "'f'", b->cap_clients, err);
	}
	if (rv == FM_OK && slot[EK_F]->via.array.size !=
	    slot[EK_C]->via.array.size) {
		rv = fm_error_set(err, FM_EPROTO, "body: 'f' has %u entries "
		    "for %u clients", slot[EK_F]->via.array.size,
		    slot[EK_C]->via.array.size);
	}
	uint32_t n = rv == FM_OK ? slot[EK_C]->via.array.size : 0;
	for (uint32_t i = 0; i < n && rv == FM_OK; i++) {
		char what[32];
		uint64_t v;
		fmi_edge_client *c = &b->clients[i];
		memset(c, 0, sizeof *c);
		snprintf(what, sizeof what, "client #%u", i + 1);
		rv = eb_id(&slot[EK_C]->via.array.ptr[i], what, &c->client, err);
		if (rv == FM_OK) {
			snprintf(what, sizeof what, "fault #%u", i + 1);
			rv = eb_uint(&slot[EK_F]->via.array.ptr[i], what, 0, 2, &v,
			    err);
			c->fault = (uint8_t)v;
		}
		c->loss = c->norm = NAN;
	}
	b->nclients = n;
	return rv;
}

static int
eb_flag(const msgpack_object **slot, int k, uint64_t hi, uint32_t *out,
    fm_error *err)
{
	char what[16];
	uint64_t v;
	int rv = eb_need(slot, k, FMI_MSG_EDGE_RESULT, err);
	if (rv == FM_OK) {
		snprintf(what, sizeof what, "'%s'", eb_keys[k]);
		rv = eb_uint(slot[k], what, 0, hi, &v, err);
	}
	if (rv == FM_OK) {
		*out = (uint32_t)v;
	}
	return rv;
}

static int
eb_dec_result(const msgpack_object **slot, fmi_edge_body *b, fm_error *err)
{
	const uint32_t t = FMI_MSG_EDGE_RESULT;
	uint32_t v[7] = { 0 };
	static const int flags[7] = { EK_FIN, EK_HELD, EK_DR, EK_DC, EK_FED,
		EK_REJ, EK_RA };
	int rv = eb_need(slot, EK_C, t, err);
	if (rv == FM_OK) {
		rv = eb_array(slot[EK_C], "'c'", b->cap_clients, err);
	}
	uint32_t n = rv == FM_OK ? slot[EK_C]->via.array.size : 0;
	for (uint32_t i = 0; i < n && rv == FM_OK; i++) {
		memset(&b->clients[i], 0, sizeof b->clients[i]);
		rv = eb_dec_result_client(&slot[EK_C]->via.array.ptr[i], i,
		    &b->clients[i], err);
	}
	b->nclients = n;
	if (rv == FM_OK) {
		rv = eb_need(slot, EK_X, t, err);
	}
	if (rv == FM_OK) {
		rv = eb_array(slot[EK_X], "'x'", b->cap_metrics, err);
	}
	uint32_t nx = rv == FM_OK ? slot[EK_X]->via.array.size : 0;
	for (uint32_t i = 0; i < nx && rv == FM_OK; i++) {
		rv = eb_dec_metric(&slot[EK_X]->via.array.ptr[i], i,
		    &b->metrics[i], err);
	}
	b->nmetrics = nx;
	for (int i = 0; i < 7 && rv == FM_OK; i++) {
		rv = eb_flag(slot, flags[i], i < 4 ? 1 : UINT32_MAX, &v[i], err);
	}
	if (rv == FM_OK && (v[5] > n || v[6] > v[5])) {
		rv = fm_error_set(err, FM_ERANGE, "body: %u rows rejected, %u of "
		    "them adversaries, of %u clients", v[5], v[6], n);
	}
	if (rv == FM_OK) {
		rv = eb_need(slot, EK_WHY, t, err);
	}
	if (rv == FM_OK) {
		rv = eb_text(slot[EK_WHY], "'why'", FMI_EDGE_WHY, 1, b->why, err);
	}
	b->finished = (uint8_t)v[0];
	b->held = (uint8_t)v[1];
	b->def_ran = (uint8_t)v[2];
	b->def_combined = (uint8_t)v[3];
	b->fed = v[4];
	b->rejected = v[5];
	b->rejected_adv = v[6];
	return rv;
}

int
fmi_edge_body_decode(uint32_t type, const void *buf, size_t len,
    fmi_edge_body *b, fm_error *err)
{
	if (b == NULL || (buf == NULL && len > 0) ||
	    (type != FMI_MSG_EDGE_ROUND && type != FMI_MSG_EDGE_RESULT) ||
	    (b->cap_clients > 0 && b->clients == NULL) ||
	    (b->cap_metrics > 0 && b->metrics == NULL)) {
		return fm_error_set(err, FM_EINVAL, "fmi_edge_body_decode: bad "
		    "arguments");
	}
	b->nclients = b->nmetrics = 0;
	b->finished = b->held = b->def_ran = b->def_combined = 0;
	b->fed = b->rejected = b->rejected_adv = 0;
	b->why[0] = '\0';
	if (len == 0) {
		return fm_error_set(err, FM_EPROTO, "empty body");
	}
	int rv = fmi_wire_scan(buf, len, err);
	if (rv != FM_OK) {
		char why[sizeof err->msg];
		snprintf(why, sizeof why, "%s", err->msg);
		return fm_error_set(err, rv, "body: %s", why);
	}
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	msgpack_unpack_return ur = msgpack_unpack_next(&u, buf, len, &off);
	if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
		rv = fm_error_set(err, FM_EPROTO, "body: invalid msgpack");
	} else {
		const msgpack_object *slot[EK_N] = { NULL };
		rv = eb_index(&u.data, slot, err);
		if (rv == FM_OK) {
			rv = type == FMI_MSG_EDGE_ROUND ? eb_dec_round(slot, b, err)
			                                : eb_dec_result(slot, b, err);
		}
	}
	msgpack_unpacked_destroy(&u);
	if (rv != FM_OK) {
		b->nclients = b->nmetrics = 0;
	}
	return rv;
}

/* ---- payloads ------------------------------------------------------------ */

int
fmi_edge_payload(const fmi_msg *m, const void *payload, size_t len,
    size_t dim, const void **model, const void **body, fm_error *err)
{
	*model = *body = NULL;
	const char *name = fmi_msg_type_name(m->type);
	if (m->type != FMI_MSG_EDGE_ROUND && m->type != FMI_MSG_EDGE_RESULT) {
		return fm_error_set(err, FM_EINVAL, "%s carries no edge body",
		    name);
	}
	if (m->n != 0 && m->n != dim) {
		return fm_error_set(err, FM_EPROTO, "%s carries %" PRIu64 " "
		    "floats, the model has %zu", name, m->n, dim);
	}
	size_t want = (size_t)m->n * 4 + (size_t)m->body;
	if (payload == NULL || len != want) {
		return fm_error_set(err, FM_EPROTO, "%s payload is %zu bytes, "
		    "expected %zu (%" PRIu64 " floats and a body of %" PRIu64
		    ")", name, payload ? len : 0, want, m->n, m->body);
	}
	const unsigned char *p = payload;
	for (size_t i = 0; i < m->n; i++) {
		uint32_t u;
		memcpy(&u, p + 4 * i, sizeof u);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		u = __builtin_bswap32(u);
#endif
		if ((u & 0x7f800000u) == 0x7f800000u) {
			return fm_error_set(err, FM_ERANGE, "%s model is not "
			    "finite at index %zu", name, i);
		}
	}
	*model = m->n > 0 ? payload : NULL;
	*body = p + m->n * 4;
	return FM_OK;
}
