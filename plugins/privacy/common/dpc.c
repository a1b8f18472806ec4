/* SPDX-License-Identifier: MIT */
/* dpc.c: shared helpers of the differential-privacy plugins (dpc.h). */
#include "dpc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

void
dpc_error(const dpc_base *b, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	b->host->log(FM_LOG_ERR, b->logid, "%s", buf);
	if (b->inst != NULL && FM_HOST_HAS(b->host, set_error)) {
		size_t n = strlen(b->name);
		const char *why = strncmp(buf, b->name, n) == 0 &&
		    buf[n] == ':' && buf[n + 1] == ' ' ? buf + n + 2 : buf;
		b->host->set_error(b->inst, "%s", why);
	}
}

int
dpc_init(dpc_base *b, const fm_instance *inst, const char *name,
    const char *logid, uint32_t nparams)
{
	b->host = inst->host;
	b->inst = inst;
	b->name = name;
	b->logid = logid;
	b->dim = inst->dim;
	b->server = inst->role == FM_ROLE_SERVER || inst->role == FM_ROLE_EDGE;
	if (!FM_HOST_HAS(b->host, gauss_noise)) {
		b->host->log(FM_LOG_ERR, logid, "%s: this host has no "
		    "gauss_noise (plugin ABI 2.2); run it with a newer fedmesh",
		    name);
		return FM_ENOTSUP;
	}
	if (b->dim == 0) {
		dpc_error(b, "%s: empty model", name);
		return FM_EINVAL;
	}
	if (inst->nparams != nparams || (nparams > 0 && inst->params == NULL)) {
		dpc_error(b, "%s: %u parameters, want %u", name, inst->nparams,
		    nparams);
		return FM_EINVAL;
	}
	return FM_OK;
}

int
dpc_positive(const dpc_base *b, const char *param, double v, const char *what)
{
	if (!(v > 0) || !isfinite(v)) {
		dpc_error(b, "%s: parameter '%s' = %g must be > 0 (%s)", b->name,
		    param, v, what);
		return FM_EINVAL;
	}
	return FM_OK;
}

int
dpc_nonneg(const dpc_base *b, const char *param, double v, const char *what)
{
	if (!(v >= 0) || !isfinite(v)) {
		dpc_error(b, "%s: parameter '%s' = %g must be >= 0 (%s)", b->name,
		    param, v, what);
		return FM_EINVAL;
	}
	return FM_OK;
}

int
dpc_open01(const dpc_base *b, const char *param, double v, const char *what)
{
	if (!(v > 0 && v < 1)) {
		dpc_error(b, "%s: parameter '%s' = %g must be in (0, 1) (%s)",
		    b->name, param, v, what);
		return FM_EINVAL;
	}
	return FM_OK;
}

double
dpc_clip(const dpc_base *b, float *x, size_t n, double c, int *clipped)
{
	double norm = b->host->nrm2(n, x);
	int over = isfinite(norm) && norm > c;
	if (over) {
		b->host->scal(n, (float)(c / norm), x);
	}
	if (clipped != NULL) {
		*clipped = over;
	}
	return norm;
}

int
dpc_noise(const dpc_base *b, float *x, size_t n, double std, uint64_t seed)
{
	return b->host->gauss_noise(b->inst, x, n, std, seed);
}

/* ---- messages ------------------------------------------------------------ */

static void
put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (unsigned char)(v >> (8 * i));
	}
}

static uint64_t
get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) {
		v |= (uint64_t)p[i] << (8 * i);
	}
	return v;
}

void
dpc_put_clip(unsigned char buf[DPC_CLIP_LEN], double c)
{
	uint64_t u;
	memcpy(&u, &c, sizeof u);
	buf[0] = DPC_MSG_CLIP;
	put_le64(buf + 1, u);
}

void
dpc_put_bit(unsigned char buf[DPC_BIT_LEN], int clipped)
{
	buf[0] = DPC_MSG_BIT;
	buf[1] = clipped != 0;
}

int
dpc_get_clip(const fm_message *m, double *c)
{
	const unsigned char *p = m->data;
	if (m->len != DPC_CLIP_LEN || p == NULL || p[0] != DPC_MSG_CLIP) {
		return FM_EPROTO;
	}
	uint64_t u = get_le64(p + 1);
	memcpy(c, &u, sizeof *c);
	return *c > 0 && isfinite(*c) ? FM_OK : FM_EPROTO;
}

int
dpc_get_bit(const fm_message *m, int *clipped)
{
	const unsigned char *p = m->data;
	if (m->len != DPC_BIT_LEN || p == NULL || p[0] != DPC_MSG_BIT ||
	    p[1] > 1) {
		return FM_EPROTO;
	}
	*clipped = p[1];
	return FM_OK;
}

/* ---- a round on the aggregating node -------------------------------------- */

static int
cmp_id(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

int
dpc_round_begin(const dpc_base *b, dpc_round *d, const fm_round *r)
{
	if (r->dim != b->dim || (r->nclients > 0 && r->clients == NULL)) {
		dpc_error(b, "%s: round %u: %u clients of %zu parameters, this "
		    "instance has %zu", b->name, r->round, r->nclients, r->dim,
		    b->dim);
		return FM_EINVAL;
	}
	if (r->nclients > d->cap) {
		b->host->free(d->ids);
		b->host->free(d->bit);
		d->ids = b->host->alloc(r->nclients * sizeof *d->ids);
		d->bit = b->host->alloc(r->nclients * sizeof *d->bit);
		d->cap = d->ids != NULL && d->bit != NULL ? r->nclients : 0;
		if (d->cap == 0) {
			return FM_ENOMEM;
		}
	}
	d->round = r->round;
	d->m = r->nclients;
	/* the fixed denominator: the mean count of sampled clients (Poisson
	 * sampling: the count varies, the sensitivity bound needs a fixed
	 * one), from hosts of ABI 2.2 on */
	d->denom = r->struct_size >= offsetof(fm_round, expected_clients) +
	    sizeof r->expected_clients && r->expected_clients > 0 ?
	    r->expected_clients : (double)r->nclients;
	if (d->m > 0) {
		memcpy(d->ids, r->clients, d->m * sizeof *d->ids);
		qsort(d->ids, d->m, sizeof *d->ids, cmp_id);
		memset(d->bit, -1, d->m * sizeof *d->bit);
	}
	return FM_OK;
}

/* The position of client id in the round, or -1. */
static long
round_find(const dpc_round *d, int32_t id)
{
	const int32_t *p = d->m > 0 ?
	    bsearch(&id, d->ids, d->m, sizeof *d->ids, cmp_id) : NULL;
	return p != NULL ? (long)(p - d->ids) : -1;
}

int
dpc_round_bit(const dpc_base *b, dpc_round *d, const fm_message *m)
{
	int clipped;
	long k = round_find(d, m->from);
	if (dpc_get_bit(m, &clipped) != FM_OK || m->round != d->round ||
	    k < 0) {
		b->host->log(FM_LOG_WARN, b->logid, "%s: dropped a message of "
		    "%zu bytes from node %d for round %u (round %u under way)",
		    b->name, m->len, (int)m->from, m->round, d->round);
		return FM_EPROTO;
	}
	d->bit[k] = (int8_t)clipped;
	return FM_OK;
}

void
dpc_round_free(const dpc_base *b, dpc_round *d)
{
	if (b->host != NULL) {
		b->host->free(d->ids);
		b->host->free(d->bit);
	}
	memset(d, 0, sizeof *d);
}

int
dpc_central(const dpc_base *b, dpc_round *d, fm_rows *r, double c, double z,
    dpc_stats *st)
{
	memset(st, 0, sizeof *st);
	if (r->dim != b->dim || (r->n > 0 && r->deltas == NULL) ||
	    r->nkeep > r->n || r->round != d->round) {
		dpc_error(b, "%s: round %u: rows do not match the round begun "
		    "(%u, %zu parameters)", b->name, r->round, d->round, b->dim);
		return FM_EINVAL;
	}
	uint32_t out = UINT32_MAX;
	uint64_t examples = 0;
	float *sum = NULL;
	for (uint32_t k = 0; k < r->nkeep; k++) {
		uint32_t i = r->keep[k];
		const fm_update *u = FM_AT(const fm_update, r->updates, i);
		float *x = r->deltas + (size_t)i * r->stride;
		int over;
		if (!isfinite(dpc_clip(b, x, r->dim, c, &over))) {
			b->host->log(FM_LOG_WARN, b->logid, "%s: round %u: the "
			    "update of client %d is not finite, left out",
			    b->name, r->round, (int)u->client);
			continue;
		}
		long at = round_find(d, u->client);
		int clipped = at >= 0 && d->bit[at] >= 0 ? d->bit[at] : over;
		st->clipped += clipped != 0;
		st->unclipped += clipped == 0;
		st->rows++;
		examples += r->keep_examples[k];
		if (sum == NULL) {
			out = i;
			sum = x;
		} else {
			b->host->axpy(r->dim, 1.0f, x, sum);
		}
	}
	r->nkeep = 0;
	if (sum == NULL || d->m == 0) {
		return FM_OK; /* nothing passes: the model stays */
	}
	int rv = dpc_noise(b, sum, r->dim, z * c, r->seed);
	if (rv != FM_OK) {
		return rv;
	}
	b->host->scal(r->dim, (float)(1.0 / d->denom), sum);
	st->std_mean = z * c / d->denom;
	r->keep[0] = out;
	r->keep_examples[0] = examples > 0 ? examples : 1;
	r->nkeep = 1;
	return FM_OK;
}
