/* SPDX-License-Identifier: MIT */
/*
 * state.h: writing and reading the bytes of fm_ops.save/load, shared by
 * the built-in plugins (header only: each plugin stays one self-contained
 * .so). Every saved state starts with a version byte (the plugin's own
 * format number) and holds fixed-width fields in host byte order (a
 * checkpoint is restored on the node that wrote it, or one of the same
 * build signature).
 *
 * save: fm_sw w = FM_SW_INIT(buf, cap); fm_sw_u8(&w, VERSION); ...;
 *       return fm_sw_done(&w, len);   (FM_ERANGE with *len the size
 *                                      needed when buf is NULL or small)
 * load: fm_sr r = FM_SR_INIT(buf, len); v = fm_sr_u8(&r); ...;
 *       if (!fm_sr_done(&r)) refuse (short, or bytes left over).
 */
#ifndef FM_PLUGINS_STATE_H
#define FM_PLUGINS_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fedmesh/plugin.h"

typedef struct fm_sw {
	unsigned char *buf; /* NULL: only count */
	size_t cap, len;
} fm_sw;

#define FM_SW_INIT(b, c) { (unsigned char *)(b), (b) != NULL ? (c) : 0, 0 }

static inline void
fm_sw_put(fm_sw *w, const void *p, size_t n)
{
	if (w->len <= w->cap && n <= w->cap - w->len && n > 0) {
		memcpy(w->buf + w->len, p, n);
	}
	w->len += n;
}

static inline void
fm_sw_u8(fm_sw *w, uint8_t v)
{
	fm_sw_put(w, &v, 1);
}

static inline void
fm_sw_u64(fm_sw *w, uint64_t v)
{
	fm_sw_put(w, &v, sizeof v);
}

static inline void
fm_sw_f64(fm_sw *w, double v)
{
	fm_sw_put(w, &v, sizeof v);
}

/* *len = the bytes the state takes; FM_ERANGE when they did not fit. */
static inline int
fm_sw_done(const fm_sw *w, size_t *len)
{
	*len = w->len;
	return w->buf == NULL || w->len > w->cap ? FM_ERANGE : FM_OK;
}

typedef struct fm_sr {
	const unsigned char *buf;
	size_t len, pos;
	int bad; /* a read went past the end */
} fm_sr;

#define FM_SR_INIT(b, l) { (const unsigned char *)(b), (b) != NULL ? (l) : 0, \
		0, 0 }

/* n bytes into p (zeros, and bad set, past the end). */
static inline void
fm_sr_get(fm_sr *r, void *p, size_t n)
{
	if (r->bad || r->len - r->pos < n) {
		r->bad = 1;
		memset(p, 0, n);
		return;
	}
	if (n > 0) {
		memcpy(p, r->buf + r->pos, n);
	}
	r->pos += n;
}

static inline uint8_t
fm_sr_u8(fm_sr *r)
{
	uint8_t v;
	fm_sr_get(r, &v, 1);
	return v;
}

static inline uint64_t
fm_sr_u64(fm_sr *r)
{
	uint64_t v;
	fm_sr_get(r, &v, sizeof v);
	return v;
}

static inline double
fm_sr_f64(fm_sr *r)
{
	double v;
	fm_sr_get(r, &v, sizeof v);
	return v;
}

/* Bytes not read yet (0 once bad). */
static inline size_t
fm_sr_left(const fm_sr *r)
{
	return r->bad ? 0 : r->len - r->pos;
}

/* Every byte read, none missing. */
static inline int
fm_sr_done(const fm_sr *r)
{
	return !r->bad && r->pos == r->len;
}

/* Says why a load is refused (host->set_error when the host has it). */
#define FM_STATE_REFUSE(inst, ...)                                          \
	do {                                                                \
		if ((inst) != NULL && FM_HOST_HAS((inst)->host, set_error)) { \
			(inst)->host->set_error((inst), __VA_ARGS__);       \
		}                                                           \
	} while (0)

/* Reads the version byte a save wrote first: FM_OK when it is `want`,
 * else FM_EVERSION with the reason set (who: the plugin, for it). */
static inline int
fm_sr_version(fm_sr *r, const fm_instance *inst, uint8_t want,
    const char *who)
{
	uint8_t version = fm_sr_u8(r);
	if (r->bad || version != want) {
		FM_STATE_REFUSE(inst, "saved state has format version %u, this "
		    "%s reads %u: restart without the checkpoint",
		    (unsigned)version, who, (unsigned)want);
		return FM_EVERSION;
	}
	return FM_OK;
}

#endif /* FM_PLUGINS_STATE_H */
