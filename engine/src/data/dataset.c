/* SPDX-License-Identifier: MIT */
/* dataset.c: reference-counted in-memory datasets. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "data/data.h"

int
fmi_dataset_new(fmi_dataset **out, size_t n, size_t dim, uint32_t nclasses)
{
	if (dim == 0 || (n > 0 && dim > SIZE_MAX / sizeof(float) / n)) {
		return FM_EINVAL;
	}
	fmi_dataset *d = calloc(1, sizeof *d);
	if (d == NULL) {
		return FM_ENOMEM;
	}
	/* +1 keeps malloc(0) out of the picture for empty datasets. */
	d->x = malloc(n * dim * sizeof(float) + sizeof(float));
	d->y = malloc(n * sizeof(int32_t) + sizeof(int32_t));
	if (d->x == NULL || d->y == NULL) {
		free(d->x);
		free(d->y);
		free(d);
		return FM_ENOMEM;
	}
	d->n = n;
	d->dim = dim;
	d->nclasses = nclasses;
	d->refs = 1;
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
	free(d->y);
	free(d->owner);
	free(d);
}
