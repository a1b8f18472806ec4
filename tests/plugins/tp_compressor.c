/* SPDX-License-Identifier: MIT */
/* tp_compressor.c: "int8", a test compressor that exercises every call of
 * the compressor kind: float32 -> int8 with one scale per vector.
 *
 * Encoding: dim (u64), scale (float32, max |x| / 127), then dim int8
 * q_j = round(x_j / scale); bound(dim) = 12 + dim. encode rewrites x with
 * what was not sent (x - q scale: error feedback's residual); decode
 * validates every byte it reads (length, dim, a finite non-negative
 * scale) and writes x = q scale. */
#include <math.h>
#include <string.h>

#include "fedmesh/plugin.h"

#define TPC_HEAD 12

typedef struct tp_cmp {
	size_t dim;
} tp_cmp;

static int
tpc_init(void *st, const fm_instance *inst)
{
	tp_cmp *z = st;
	z->dim = inst->dim;
	return z->dim > 0 ? FM_OK : FM_EINVAL;
}

static void
tpc_fini(void *st)
{
	(void)st;
}

static size_t
tpc_bound(void *st, size_t dim)
{
	(void)st;
	return TPC_HEAD + dim;
}

static int
tpc_encode(void *st, fm_codec *c)
{
	tp_cmp *z = st;
	uint64_t d = c->dim;
	float mx = 0, scale;
	unsigned char *b = c->buf;
	if (c->dim != z->dim || c->x == NULL || b == NULL ||
	    c->cap < TPC_HEAD + c->dim) {
		return FM_ERANGE;
	}
	for (size_t j = 0; j < c->dim; j++) {
		float a = fabsf(c->x[j]);
		if (!isfinite(a)) {
			return FM_ERANGE;
		}
		mx = a > mx ? a : mx;
	}
	scale = mx / 127.0f;
	memcpy(b, &d, 8);
	memcpy(b + 8, &scale, 4);
	for (size_t j = 0; j < c->dim; j++) {
		float q = scale > 0 ? roundf(c->x[j] / scale) : 0;
		q = q > 127 ? 127 : q < -127 ? -127 : q;
		b[TPC_HEAD + j] = (unsigned char)(int8_t)q;
		c->x[j] -= q * scale; /* the residual */
	}
	c->len = TPC_HEAD + c->dim;
	return FM_OK;
}

static int
tpc_decode(void *st, fm_codec *c)
{
	tp_cmp *z = st;
	uint64_t d;
	float scale;
	const unsigned char *b = c->buf;
	if (c->dim != z->dim || c->x == NULL || b == NULL ||
	    c->len != TPC_HEAD + c->dim) {
		return FM_EPROTO;
	}
	memcpy(&d, b, 8);
	memcpy(&scale, b + 8, 4);
	if (d != c->dim || !isfinite(scale) || scale < 0) {
		return FM_EPROTO;
	}
	for (size_t j = 0; j < c->dim; j++) {
		c->x[j] = (float)(int8_t)b[TPC_HEAD + j] * scale;
	}
	return FM_OK;
}

static const fm_compressor_ops tpc_ops = {
	.base = FM_OPS(fm_compressor_ops, FM_KIND_COMPRESSOR, tp_cmp,
	    tpc_init, tpc_fini),
	.bound = tpc_bound,
	.encode = tpc_encode,
	.decode = tpc_decode,
};

static const fm_component_desc tpc_components[] = {
	FM_COMPONENT(FM_KIND_COMPRESSOR, "int8",
	    "test: float32 to int8 with one scale per vector", NULL, tpc_ops,
	    0),
};

FM_PLUGIN("tp_compressor", "1.0.0", "MIT", "compressor kind test plugin",
    tpc_components, NULL);
