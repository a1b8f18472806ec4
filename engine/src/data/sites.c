/* SPDX-License-Identifier: MIT */
/*
 * sites.c: data that sites bring themselves. A federation of sites has one
 * client per site; simulated, the sites' datasets are stacked into one
 * with a natural partition (one client per site, in site order);
 * deployed, each client host holds only its own site's rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "data/data.h"

static fmi_partition *
sites_alloc(uint32_t nclients, size_t nidx)
{
	fmi_partition *p = calloc(1, sizeof *p);
	if (p == NULL) {
		return NULL;
	}
	p->nclients = nclients;
	p->refs = 1;
	p->off = calloc((size_t)nclients + 1, sizeof *p->off);
	p->idx = malloc(nidx * sizeof *p->idx + sizeof *p->idx);
	if (p->off == NULL || p->idx == NULL) {
		fmi_partition_unref(p);
		return NULL;
	}
	return p;
}

int
fmi_sites_stack(fmi_dataset *const *sites, uint32_t n, fmi_dataset **out,
    fmi_partition **part, fm_error *err)
{
	size_t rows = 0;
	uint32_t nclasses = 0;
	if (n == 0) {
		return fm_error_set(err, FM_EINVAL, "a list of sites needs at "
		    "least one dataset");
	}
	for (uint32_t i = 0; i < n; i++) {
		if (sites[i]->dim != sites[0]->dim) {
			return fm_error_set(err, FM_EINVAL, "site %u (%s) has %zu "
			    "features but site 1 (%s) has %zu: every site's data "
			    "must have the same columns", i + 1, sites[i]->name,
			    sites[i]->dim, sites[0]->name, sites[0]->dim);
		}
		rows += sites[i]->n;
		nclasses = FMI_MAX(nclasses, sites[i]->nclasses);
	}
	fmi_dataset *d = NULL;
	fmi_partition *p = sites_alloc(n, rows);
	if (p == NULL || fmi_dataset_new(&d, rows, sites[0]->dim, nclasses)
	        != FM_OK || (d->owner = malloc(rows * sizeof *d->owner +
	                         sizeof *d->owner)) == NULL) {
		fmi_partition_unref(p);
		fmi_dataset_unref(d);
		return fm_error_set(err, FM_ENOMEM, "out of memory for %zu "
		    "samples of %u sites", rows, n);
	}
	size_t at = 0, dim = sites[0]->dim;
	for (uint32_t i = 0; i < n; i++) {
		const fmi_dataset *s = sites[i];
		/* floats whatever the site's storage (bytes of an IDX file) */
		int rv = fmi_dataset_rows(s, NULL, s->n, d->x + at * dim, err);
		if (rv != FM_OK) {
			fmi_partition_unref(p);
			fmi_dataset_unref(d);
			return rv;
		}
		memcpy(d->y + at, s->y, s->n * sizeof *d->y);
		for (size_t k = 0; k < s->n; k++) {
			d->owner[at + k] = i;
			p->idx[at + k] = (uint32_t)(at + k);
		}
		at += s->n;
		p->off[i + 1] = at;
	}
	d->nowners = n;
	snprintf(d->name, sizeof d->name, "%u sites", n);
	*out = d;
	*part = p;
	return FM_OK;
}

int
fmi_sites_partition(fmi_partition **out, uint32_t nclients, int64_t site,
    size_t rows, fm_error *err)
{
	size_t own = site >= 0 ? rows : 0;
	fmi_partition *p = sites_alloc(nclients, own);
	if (p == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	for (uint32_t c = 0; c < nclients; c++) {
		p->off[c + 1] = (int64_t)c >= site && site >= 0 ? own : 0;
	}
	for (size_t i = 0; i < own; i++) {
		p->idx[i] = (uint32_t)i;
	}
	*out = p;
	return FM_OK;
}
