/* SPDX-License-Identifier: MIT */
/* partition.c: IID, Dirichlet, shard and natural client partitions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "data/data.h"

/* RNG streams, one per partitioner. */
enum { PART_IID = 0x11D, PART_DIR = 0xD1C, PART_SHARDS = 0x5AD };
/* Dirichlet redraws before giving up on min_size. */
#define DIR_MAX_TRIES 1000

static fmi_partition *
part_alloc(uint32_t nclients, size_t total)
{
	fmi_partition *p = calloc(1, sizeof *p);
	if (p == NULL) {
		return NULL;
	}
	p->off = calloc((size_t)nclients + 1, sizeof *p->off);
	p->idx = malloc((total + 1) * sizeof *p->idx);
	if (p->off == NULL || p->idx == NULL) {
		free(p->off);
		free(p->idx);
		free(p);
		return NULL;
	}
	p->nclients = nclients;
	p->refs = 1;
	return p;
}

void
fmi_partition_ref(fmi_partition *p)
{
	__atomic_fetch_add(&p->refs, 1, __ATOMIC_RELAXED);
}

void
fmi_partition_unref(fmi_partition *p)
{
	if (p == NULL || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0) {
		return;
	}
	free(p->off);
	free(p->idx);
	free(p->held);
	free(p);
}

int
fmi_dataset_keep_rows(fmi_dataset **dout, fmi_partition **pout,
    const fmi_dataset *d, const fmi_partition *p, const uint8_t *keep,
    fm_error *err)
{
	size_t total = 0;
	for (uint32_t c = 0; c < p->nclients; c++) {
		total += keep[c] ? fmi_partition_size(p, c) : 0;
	}
	fmi_partition *q = part_alloc(p->nclients, total);
	if (q == NULL || (q->held = calloc(p->nclients, 1)) == NULL) {
		fmi_partition_unref(q);
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	size_t at = 0;
	for (uint32_t c = 0; c < p->nclients; c++) {
		q->off[c] = at;
		if (keep[c]) {
			size_t n = fmi_partition_size(p, c);
			memcpy(q->idx + at, p->idx + p->off[c], n * sizeof *q->idx);
			at += n;
			q->held[c] = 1;
		}
	}
	q->off[p->nclients] = at;
	fmi_dataset *o = NULL;
	int rv = fmi_dataset_subset(&o, d, q->idx, total, err);
	if (rv != FM_OK) {
		fmi_partition_unref(q);
		return rv;
	}
	for (size_t i = 0; i < total; i++) {
		q->idx[i] = (uint32_t)i;
	}
	*dout = o;
	*pout = q;
	return FM_OK;
}

void
fmi_partition_label_hist(const fmi_partition *p, const fmi_dataset *d,
    uint32_t c, uint32_t *hist)
{
	memset(hist, 0, d->nclasses * sizeof *hist);
	for (size_t i = p->off[c]; i < p->off[c + 1]; i++) {
		int32_t y = d->y[p->idx[i]];
		if (y >= 0 && (uint32_t)y < d->nclasses) {
			hist[y]++;
		}
	}
}

static int
part_check(const fmi_dataset *d, uint32_t nclients, const char *fn,
    fm_error *err)
{
	if (d == NULL || d->n == 0) {
		return fm_error_set(err, FM_EINVAL, "%s: the dataset is empty",
		    fn);
	}
	if (d->n > UINT32_MAX) {
		return fm_error_set(err, FM_ERANGE, "%s: dataset %s has %zu "
		    "samples; partitions index at most %u", fn, d->name, d->n,
		    UINT32_MAX);
	}
	if (nclients == 0 || nclients > d->n) {
		return fm_error_set(err, FM_EINVAL, "%s: need 1 <= clients <= "
		    "%zu (the samples in %s), got %u", fn, d->n, d->name,
		    nclients);
	}
	return FM_OK;
}

/* Counting sort of sample indices by key (stable): order[n], start[k+1]. */
static int
part_bucket(const uint32_t *keyu, const int32_t *keyi, size_t n, uint32_t k,
    uint32_t **order, size_t **start)
{
	*order = malloc(n * sizeof **order);
	*start = calloc((size_t)k + 2, sizeof **start);
	if (*order == NULL || *start == NULL) {
		free(*order);
		free(*start);
		return FM_ENOMEM;
	}
	size_t *s = *start;
	for (size_t i = 0; i < n; i++) {
		s[(keyu ? keyu[i] : (uint32_t)keyi[i]) + 1]++;
	}
	for (uint32_t c = 0; c < k; c++) {
		s[c + 1] += s[c];
	}
	for (size_t i = 0; i < n; i++) {
		(*order)[s[keyu ? keyu[i] : (uint32_t)keyi[i]]++] = (uint32_t)i;
	}
	memmove(s + 1, s, k * sizeof *s); /* the fill shifted every start */
	s[0] = 0;
	return FM_OK;
}

static int
part_check_labels(const fmi_dataset *d, const char *fn, fm_error *err)
{
	for (size_t i = 0; i < d->n; i++) {
		if (d->y[i] < 0 || (uint32_t)d->y[i] >= d->nclasses) {
			return fm_error_set(err, FM_EINVAL, "%s: dataset %s: "
			    "sample %zu has label %d outside [0, %u)", fn,
			    d->name, i, d->y[i], d->nclasses);
		}
	}
	return FM_OK;
}

/* ---- IID ------------------------------------------------------------------ */

int
fmi_partition_iid(fmi_partition **out, const fmi_dataset *d,
    uint32_t nclients, uint64_t seed, fm_error *err)
{
	int rv = part_check(d, nclients, "partition.iid", err);
	if (rv != FM_OK) {
		return rv;
	}
	fmi_partition *p = part_alloc(nclients, d->n);
	if (p == NULL) {
		return fm_error_set(err, FM_ENOMEM, "partition.iid: out of "
		    "memory");
	}
	for (size_t i = 0; i < d->n; i++) {
		p->idx[i] = (uint32_t)i;
	}
	fm_rng r;
	fmi_rng_seed(&r, seed, PART_IID);
	fmi_rng_shuffle_u32(&r, p->idx, d->n);
	for (uint32_t c = 0; c <= nclients; c++) {
		p->off[c] = (size_t)((uint64_t)c * d->n / nclients);
	}
	*out = p;
	return FM_OK;
}

/* ---- Dirichlet ------------------------------------------------------------ */

typedef struct dir_state {
	const fmi_dataset *d;
	uint32_t nclients;
	double alpha;
	uint32_t *order;  /* sample indices grouped by label */
	size_t *start;    /* [nclasses + 1] */
	uint32_t *asg;    /* [n] client of order[i] */
	size_t *size;     /* [nclients] */
	double *prop;     /* [nclients] */
	fm_rng rng;
} dir_state;

/* Draws the proportions; clients already holding >= n/nclients get 0. */
static void
dir_props(dir_state *s)
{
	double sum = 0, cap = (double)s->d->n / s->nclients;
	uint32_t eligible = 0;
	for (uint32_t c = 0; c < s->nclients; c++) {
		double g = fmi_rng_gamma(&s->rng, s->alpha);
		int ok = (double)s->size[c] < cap;
		s->prop[c] = ok ? g : 0.0;
		sum += s->prop[c];
		eligible += (uint32_t)ok;
	}
	if (sum > 0) {
		for (uint32_t c = 0; c < s->nclients; c++) {
			s->prop[c] /= sum;
		}
		return;
	}
	/* Every draw underflowed (tiny alpha): the limit is one client. */
	uint64_t pick = fmi_rng_below(&s->rng, eligible ? eligible : 1);
	for (uint32_t c = 0; c < s->nclients; c++) {
		int ok = eligible == 0 || (double)s->size[c] < cap;
		s->prop[c] = (ok && pick-- == 0) ? 1.0 : 0.0;
	}
}

/* Shuffles class k and splits it by cumulative proportions. */
static void
dir_split_class(dir_state *s, uint32_t k)
{
	size_t lo = s->start[k], len = s->start[k + 1] - lo;
	if (len == 0) {
		return;
	}
	fmi_rng_shuffle_u32(&s->rng, s->order + lo, len);
	dir_props(s);
	double cum = 0;
	size_t from = 0;
	for (uint32_t c = 0; c < s->nclients; c++) {
		cum += s->prop[c];
		size_t to = c + 1 == s->nclients ? len
		                                 : (size_t)(cum * (double)len);
		to = FMI_MIN(FMI_MAX(to, from), len);
		for (size_t i = from; i < to; i++) {
			s->asg[lo + i] = c;
		}
		s->size[c] += to - from;
		from = to;
	}
}

/* One NIID-Bench round over all classes; returns the smallest client. */
static size_t
dir_round(dir_state *s)
{
	memset(s->size, 0, s->nclients * sizeof *s->size);
	for (uint32_t k = 0; k < s->d->nclasses; k++) {
		dir_split_class(s, k);
	}
	size_t min = SIZE_MAX;
	for (uint32_t c = 0; c < s->nclients; c++) {
		min = FMI_MIN(min, s->size[c]);
	}
	return min;
}

/* Builds the partition from the assignment and shuffles each client. */
static void
dir_build(dir_state *s, fmi_partition *p)
{
	for (uint32_t c = 0; c < s->nclients; c++) {
		p->off[c + 1] = p->off[c] + s->size[c];
	}
	memset(s->size, 0, s->nclients * sizeof *s->size);
	for (size_t i = 0; i < s->d->n; i++) {
		uint32_t c = s->asg[i];
		p->idx[p->off[c] + s->size[c]++] = s->order[i];
	}
	for (uint32_t c = 0; c < s->nclients; c++) {
		fmi_rng_shuffle_u32(&s->rng, p->idx + p->off[c], s->size[c]);
	}
}

static int
dir_check(const fmi_dataset *d, uint32_t nclients, double alpha,
    uint32_t min_size, fm_error *err)
{
	const char *fn = "partition.dirichlet";
	int rv = part_check(d, nclients, fn, err);
	if (rv == FM_OK && !(alpha > 0 && isfinite(alpha))) {
		rv = fm_error_set(err, FM_EINVAL, "%s: alpha must be > 0 and "
		    "finite, got %g (small alpha: more skew, e.g. 0.1; large: "
		    "near IID, e.g. 100)", fn, alpha);
	}
	if (rv == FM_OK && (uint64_t)min_size * nclients > d->n) {
		rv = fm_error_set(err, FM_EINVAL, "%s: %u clients of at least "
		    "%u samples need %llu samples, but %s has %zu; lower "
		    "min_size or the client count", fn, nclients, min_size,
		    (unsigned long long)min_size * nclients, d->name, d->n);
	}
	return rv ? rv : part_check_labels(d, fn, err);
}

static int
dir_run(dir_state *s, uint32_t min_size, fmi_partition **out, fm_error *err)
{
	size_t min = 0;
	int tries = 0;
	do {
		min = dir_round(s);
	} while (min < min_size && ++tries < DIR_MAX_TRIES);
	if (min < min_size) {
		return fm_error_set(err, FM_EINVAL, "partition.dirichlet: after "
		    "%d draws some client still holds fewer than min_size = %u "
		    "samples (alpha %g, %u clients, %zu samples); raise alpha, "
		    "lower min_size or use fewer clients", DIR_MAX_TRIES,
		    min_size, s->alpha, s->nclients, s->d->n);
	}
	fmi_partition *p = part_alloc(s->nclients, s->d->n);
	if (p == NULL) {
		return fm_error_set(err, FM_ENOMEM, "partition.dirichlet: out "
		    "of memory");
	}
	dir_build(s, p);
	*out = p;
	return FM_OK;
}

int
fmi_partition_dirichlet(fmi_partition **out, const fmi_dataset *d,
    uint32_t nclients, double alpha, uint32_t min_size, uint64_t seed,
    fm_error *err)
{
	int rv = dir_check(d, nclients, alpha, min_size, err);
	if (rv != FM_OK) {
		return rv;
	}
	dir_state s = { .d = d, .nclients = nclients, .alpha = alpha };
	fmi_rng_seed(&s.rng, seed, PART_DIR);
	rv = part_bucket(NULL, d->y, d->n, d->nclasses, &s.order, &s.start);
	s.asg = malloc(d->n * sizeof *s.asg);
	s.size = malloc(nclients * sizeof *s.size);
	s.prop = malloc(nclients * sizeof *s.prop);
	if (rv != FM_OK || !s.asg || !s.size || !s.prop) {
		rv = fm_error_set(err, FM_ENOMEM, "partition.dirichlet: out of "
		    "memory");
	} else {
		rv = dir_run(&s, min_size, out, err);
	}
	free(s.order);
	free(s.start);
	free(s.asg);
	free(s.size);
	free(s.prop);
	return rv;
}

/* ---- shards --------------------------------------------------------------- */

/* Deals shards (label-sorted runs of order) to clients. */
static void
shards_deal(fmi_partition *p, const uint32_t *order, size_t n,
    const uint32_t *deck, uint32_t spc)
{
	uint64_t nshards = (uint64_t)p->nclients * spc;
	size_t at = 0;
	for (uint32_t c = 0; c < p->nclients; c++) {
		for (uint32_t j = 0; j < spc; j++) {
			uint64_t s = deck[(size_t)c * spc + j];
			size_t lo = (size_t)(s * n / nshards);
			size_t hi = (size_t)((s + 1) * n / nshards);
			memcpy(p->idx + at, order + lo, (hi - lo) * sizeof *order);
			at += hi - lo;
		}
		p->off[c + 1] = at;
	}
}

int
fmi_partition_shards(fmi_partition **out, const fmi_dataset *d,
    uint32_t nclients, uint32_t shards_per_client, uint64_t seed,
    fm_error *err)
{
	const char *fn = "partition.shards";
	int rv = part_check(d, nclients, fn, err);
	uint64_t nshards = (uint64_t)nclients * shards_per_client;
	if (rv == FM_OK && (shards_per_client == 0 || nshards > d->n)) {
		rv = fm_error_set(err, FM_EINVAL, "%s: need 1 <= clients x "
		    "shards_per_client <= %zu (the samples in %s), got %u x %u",
		    fn, d->n, d->name, nclients, shards_per_client);
	}
	rv = rv ? rv : part_check_labels(d, fn, err);
	if (rv != FM_OK) {
		return rv;
	}
	uint32_t *order = NULL, *deck = malloc(nshards * sizeof *deck);
	size_t *start = NULL;
	fmi_partition *p = part_alloc(nclients, d->n);
	rv = part_bucket(NULL, d->y, d->n, d->nclasses, &order, &start);
	if (rv != FM_OK || deck == NULL || p == NULL) {
		fmi_partition_unref(p);
		rv = fm_error_set(err, FM_ENOMEM, "%s: out of memory", fn);
	} else {
		for (uint32_t s = 0; s < nshards; s++) {
			deck[s] = s;
		}
		fm_rng r;
		fmi_rng_seed(&r, seed, PART_SHARDS);
		fmi_rng_shuffle_u32(&r, deck, nshards);
		shards_deal(p, order, d->n, deck, shards_per_client);
		*out = p;
	}
	free(order);
	free(start);
	free(deck);
	return rv;
}

/* ---- natural -------------------------------------------------------------- */

int
fmi_partition_natural(fmi_partition **out, const fmi_dataset *d,
    fm_error *err)
{
	const char *fn = "partition.natural";
	if (d == NULL || d->owner == NULL || d->nowners == 0) {
		return fm_error_set(err, FM_EINVAL, "%s: dataset %s has no "
		    "natural owners (only datasets such as Synthetic that record "
		    "each sample's device have them); use iid, dirichlet or "
		    "shards", fn, d ? d->name : "(null)");
	}
	int rv = part_check(d, 1, fn, err);
	for (size_t i = 0; rv == FM_OK && i < d->n; i++) {
		if (d->owner[i] >= d->nowners) {
			rv = fm_error_set(err, FM_EINVAL, "%s: dataset %s: sample "
			    "%zu has owner %u outside [0, %u)", fn, d->name, i,
			    d->owner[i], d->nowners);
		}
	}
	if (rv != FM_OK) {
		return rv;
	}
	fmi_partition *p = part_alloc(d->nowners, 0);
	uint32_t *order = NULL;
	size_t *start = NULL;
	if (p == NULL ||
	    part_bucket(d->owner, NULL, d->n, d->nowners, &order, &start)) {
		fmi_partition_unref(p);
		return fm_error_set(err, FM_ENOMEM, "%s: out of memory", fn);
	}
	free(p->idx);
	p->idx = order; /* already grouped by owner, ascending within each */
	memcpy(p->off, start, ((size_t)d->nowners + 1) * sizeof *start);
	free(start);
	*out = p;
	return FM_OK;
}
