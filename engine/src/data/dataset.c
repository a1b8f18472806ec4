/* SPDX-License-Identifier: MIT */
/* dataset.c: reference-counted datasets, float or byte storage (lazy), and
 * the one way to read their features: gathering rows as floats. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/core.h"
#include "data/data.h"
#include "data/pixels.h"

static fmi_dataset *
ds_alloc(size_t n, size_t dim, uint32_t nclasses, size_t elem)
{
	if (dim == 0 || (n > 0 && dim > SIZE_MAX / elem / n)) {
		return NULL;
	}
	fmi_dataset *d = calloc(1, sizeof *d);
	/* +1 keeps malloc(0) out of the picture for empty datasets. */
	int32_t *y = malloc(n * sizeof(int32_t) + sizeof(int32_t));
	if (d == NULL || y == NULL) {
		free(d);
		free(y);
		return NULL;
	}
	d->y = y;
	d->n = n;
	d->dim = dim;
	d->nclasses = nclasses;
	d->refs = 1;
	return d;
}

int
fmi_dataset_new(fmi_dataset **out, size_t n, size_t dim, uint32_t nclasses)
{
	fmi_dataset *d = ds_alloc(n, dim, nclasses, sizeof(float));
	if (d == NULL) {
		return dim == 0 ? FM_EINVAL : FM_ENOMEM;
	}
	d->x = malloc(n * dim * sizeof(float) + sizeof(float));
	if (d->x == NULL) {
		fmi_dataset_unref(d);
		return FM_ENOMEM;
	}
	*out = d;
	return FM_OK;
}

static fmi_pixels *
px_new(float div)
{
	fmi_pixels *px = calloc(1, sizeof *px);
	if (px == NULL) {
		return NULL;
	}
	if (pthread_mutex_init(&px->mtx, NULL) != 0) {
		free(px);
		return NULL;
	}
	for (int v = 0; v < 256; v++) {
		px->lut[v] = (float)v / div;
	}
	return px;
}

static void
px_free(fmi_pixels *px)
{
	if (px == NULL) {
		return;
	}
	if (px->map != NULL) {
		munmap(px->map, px->maplen);
	}
	free(px->own);
	fmi_idx_src_free(px->src);
	pthread_mutex_destroy(&px->mtx);
	free(px);
}

/* A byte dataset without its bytes yet. */
static fmi_dataset *
ds_new_bytes(size_t n, size_t dim, uint32_t nclasses, float div)
{
	if (!(div > 0.0f) || div > 1e30f) {
		return NULL;
	}
	fmi_dataset *d = ds_alloc(n, dim, nclasses, 1);
	if (d != NULL && (d->px = px_new(div)) == NULL) {
		fmi_dataset_unref(d);
		return NULL;
	}
	if (d != NULL) {
		d->x8_div = div;
	}
	return d;
}

int
fmi_dataset_new_u8(fmi_dataset **out, uint8_t **x8, size_t n, size_t dim,
    uint32_t nclasses, float div)
{
	fmi_dataset *d = ds_new_bytes(n, dim, nclasses, div);
	if (d == NULL) {
		return dim == 0 || !(div > 0.0f) ? FM_EINVAL : FM_ENOMEM;
	}
	d->px->own = malloc(n * dim + 1);
	if (d->px->own == NULL) {
		fmi_dataset_unref(d);
		return FM_ENOMEM;
	}
	d->x8 = d->px->own;
	*x8 = d->px->own;
	*out = d;
	return FM_OK;
}

int
fmi_dataset_new_lazy(fmi_dataset **out, fmi_idx_src *src, float div)
{
	fmi_dataset *d = ds_new_bytes(src->n, src->dim, 0, div);
	if (d == NULL) {
		fmi_idx_src_free(src);
		return FM_ENOMEM;
	}
	d->px->src = src;
	*out = d;
	return FM_OK;
}

void
fmi_dataset_ref(fmi_dataset *d)
{
	__atomic_fetch_add(&d->refs, 1, __ATOMIC_RELAXED);
}

void
fmi_dataset_unref(fmi_dataset *d)
{
	if (d == NULL || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) > 0) {
		return;
	}
	free(d->x);
	px_free(d->px);
	free(d->y);
	free(d->owner);
	free(d);
}

/* ---- reading features ------------------------------------------------------ */

int
fmi_dataset_loaded(const fmi_dataset *d)
{
	return d->x != NULL || __atomic_load_n(&d->x8, __ATOMIC_ACQUIRE) != NULL;
}

int
fmi_dataset_load(const fmi_dataset *cd, fm_error *err)
{
	if (fmi_dataset_loaded(cd)) {
		return FM_OK;
	}
	/* Loading fills in x8 of a dataset that readers share as const: once,
	 * under the lock, published with release semantics. */
	fmi_dataset *d = (fmi_dataset *)cd;
	fmi_pixels *px = d->px;
	if (px == NULL || px->src == NULL) {
		return fm_error_set(err, FM_EINVAL, "dataset %s holds no "
		    "features", d->name);
	}
	pthread_mutex_lock(&px->mtx);
	int rv = FM_OK;
	if (d->x8 == NULL) {
		const uint8_t *x8 = NULL;
		rv = fmi_idx_src_load(px->src, px, &x8, err);
		if (rv == FM_OK) {
			__atomic_store_n(&d->x8, x8, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&px->mtx);
	return rv;
}

void
fmi_dataset_gather(const fmi_dataset *d, const uint32_t *idx, size_t first,
    size_t b, float *out)
{
	size_t dim = d->dim;
	if (d->x != NULL) {
		for (size_t i = 0; i < b; i++) {
			size_t r = idx ? idx[i] : first + i;
			memcpy(out + i * dim, d->x + r * dim, dim * sizeof *out);
		}
		return;
	}
	const float *lut = d->px->lut;
	for (size_t i = 0; i < b; i++) {
		size_t r = idx ? idx[i] : first + i;
		const uint8_t *src = d->x8 + r * dim;
		float *o = out + i * dim;
		for (size_t j = 0; j < dim; j++) {
			o[j] = lut[src[j]];
		}
	}
}

int
fmi_dataset_rows(const fmi_dataset *d, const uint32_t *idx, size_t n,
    float *out, fm_error *err)
{
	int rv = fmi_dataset_load(d, err);
	if (rv == FM_OK) {
		fmi_dataset_gather(d, idx, 0, idx ? n : d->n, out);
	}
	return rv;
}

/* ---- subsets ----------------------------------------------------------------- */

static int
subset_bytes(uint8_t *x8, const fmi_dataset *d,
    const uint32_t *rows, size_t n, fm_error *err)
{
	size_t dim = d->dim;
	if (fmi_dataset_loaded(d)) {
		for (size_t i = 0; i < n; i++) {
			memcpy(x8 + i * dim, d->x8 + (size_t)rows[i] * dim, dim);
		}
		return FM_OK;
	}
	fmi_pixels *px = d->px;
	pthread_mutex_lock(&px->mtx);
	int rv = px->src != NULL ? fmi_idx_src_rows(px->src, rows, n, x8, err)
	                         : fm_error_set(err, FM_EINVAL, "dataset %s "
	                               "holds no features", d->name);
	pthread_mutex_unlock(&px->mtx);
	return rv;
}

int
fmi_dataset_subset(fmi_dataset **out, const fmi_dataset *d,
    const uint32_t *rows, size_t n, fm_error *err)
{
	for (size_t i = 0; i < n; i++) {
		if (rows[i] >= d->n) {
			return fm_error_set(err, FM_EINVAL, "row %u is outside "
			    "dataset %s of %zu samples", rows[i], d->name, d->n);
		}
	}
	fmi_dataset *o = NULL;
	uint8_t *x8 = NULL;
	int rv = d->x != NULL ? fmi_dataset_new(&o, n, d->dim, d->nclasses)
	                      : fmi_dataset_new_u8(&o, &x8, n, d->dim,
	                            d->nclasses, d->x8_div);
	if (rv == FM_OK && d->owner != NULL &&
	    (o->owner = malloc(n * sizeof *o->owner + 1)) == NULL) {
		rv = FM_ENOMEM;
	}
	if (rv != FM_OK) {
		fmi_dataset_unref(o);
		return rv == FM_ENOMEM ? fm_error_set(err, rv, "out of memory "
		    "for %zu samples of %s", n, d->name) : fm_error_set(err, rv,
		    "dataset %s: bad size", d->name);
	}
	if (d->x != NULL) {
		fmi_dataset_gather(d, rows, 0, n, o->x);
	} else if ((rv = subset_bytes(x8, d, rows, n, err)) != FM_OK) {
		fmi_dataset_unref(o);
		return rv;
	}
	for (size_t i = 0; i < n; i++) {
		o->y[i] = d->y[rows[i]];
		if (o->owner != NULL) {
			o->owner[i] = d->owner[rows[i]];
		}
	}
	o->nowners = d->nowners;
	memcpy(o->name, d->name, sizeof o->name);
	*out = o;
	return FM_OK;
}
