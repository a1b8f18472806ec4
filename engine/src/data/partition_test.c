/* SPDX-License-Identifier: MIT */
/* partition_test.c: IID, Dirichlet, shard and natural partitions. */
#include "fm_test.h"

#include "core/core.h"
#include "data/data.h"

/* n samples, label i % k shuffled, owner i % owners (or none). */
static fmi_dataset *
make_ds(size_t n, uint32_t k, uint32_t owners)
{
	fmi_dataset *d;
	FMT_PASS(fmi_dataset_new(&d, n, 1, k));
	uint32_t *perm = malloc(n * sizeof *perm);
	for (size_t i = 0; i < n; i++) {
		perm[i] = (uint32_t)i;
	}
	fm_rng r;
	fmi_rng_seed(&r, 1234, 0);
	fmi_rng_shuffle_u32(&r, perm, n);
	for (size_t i = 0; i < n; i++) {
		d->y[perm[i]] = (int32_t)(i % k);
		d->x[i] = (float)i;
	}
	free(perm);
	if (owners) {
		d->owner = malloc(n * sizeof *d->owner);
		d->nowners = owners;
		for (size_t i = 0; i < n; i++) {
			d->owner[i] = (uint32_t)(i % owners);
		}
	}
	snprintf(d->name, sizeof d->name, "toy");
	return d;
}

/* Every sample appears exactly once. */
static void
check_cover(const fmi_partition *p, size_t n)
{
	assert_int_equal(p->off[0], 0);
	assert_int_equal(p->off[p->nclients], n);
	uint8_t *seen = calloc(n, 1);
	for (size_t i = 0; i < n; i++) {
		assert_true(p->idx[i] < n);
		assert_int_equal(seen[p->idx[i]], 0);
		seen[p->idx[i]] = 1;
	}
	free(seen);
}

static int
same_partition(const fmi_partition *a, const fmi_partition *b)
{
	return a->nclients == b->nclients &&
	    memcmp(a->off, b->off, (a->nclients + 1) * sizeof *a->off) == 0 &&
	    memcmp(a->idx, b->idx, a->off[a->nclients] * sizeof *a->idx) == 0;
}

static void
check_hist_sums(const fmi_partition *p, const fmi_dataset *d)
{
	uint32_t hist[64];
	for (uint32_t c = 0; c < p->nclients; c++) {
		fmi_partition_label_hist(p, d, c, hist);
		size_t s = 0;
		for (uint32_t k = 0; k < d->nclasses; k++) {
			s += hist[k];
		}
		assert_int_equal(s, fmi_partition_size(p, c));
	}
}

static void
test_iid(void **state)
{
	(void)state;
	fmi_dataset *d = make_ds(1003, 10, 0);
	fmi_partition *p, *q, *o;
	fm_error e;
	FMT_PASS(fmi_partition_iid(&p, d, 10, 7, &e));
	check_cover(p, d->n);
	check_hist_sums(p, d);
	for (uint32_t c = 0; c < 10; c++) {
		size_t s = fmi_partition_size(p, c);
		assert_true(s == 100 || s == 101);
	}
	FMT_PASS(fmi_partition_iid(&q, d, 10, 7, &e));
	FMT_PASS(fmi_partition_iid(&o, d, 10, 8, &e));
	assert_true(same_partition(p, q));
	assert_false(same_partition(p, o));
	fmi_partition_ref(p);
	fmi_partition_unref(p);
	assert_int_equal(p->refs, 1);
	fmi_partition_unref(p);
	fmi_partition_unref(q);
	fmi_partition_unref(o);
	fmi_partition_unref(NULL);
	FMT_FAIL(fmi_partition_iid(&p, d, 0, 7, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "clients"));
	FMT_FAIL(fmi_partition_iid(&p, d, 1004, 7, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "1003"));
	FMT_PASS(fmi_partition_iid(&p, d, 1003, 7, &e)); /* one each */
	check_cover(p, d->n);
	fmi_partition_unref(p);
	fmi_dataset_unref(d);
}

/* Mean over clients of the entropy (bits) of the label histogram. */
static double
mean_entropy(const fmi_partition *p, const fmi_dataset *d)
{
	uint32_t hist[64];
	double sum = 0;
	for (uint32_t c = 0; c < p->nclients; c++) {
		fmi_partition_label_hist(p, d, c, hist);
		double n = (double)fmi_partition_size(p, c), h = 0;
		for (uint32_t k = 0; k < d->nclasses; k++) {
			if (hist[k]) {
				h -= hist[k] / n * log2(hist[k] / n);
			}
		}
		sum += h;
	}
	return sum / p->nclients;
}

static void
test_dirichlet(void **state)
{
	(void)state;
	fmi_dataset *d = make_ds(2000, 10, 0);
	fmi_partition *lo, *hi, *again, *other;
	fm_error e;
	FMT_PASS(fmi_partition_dirichlet(&lo, d, 20, 0.1, 10, 3, &e));
	FMT_PASS(fmi_partition_dirichlet(&hi, d, 20, 100, 10, 3, &e));
	FMT_PASS(fmi_partition_dirichlet(&again, d, 20, 0.1, 10, 3, &e));
	FMT_PASS(fmi_partition_dirichlet(&other, d, 20, 0.1, 10, 4, &e));
	check_cover(lo, d->n);
	check_cover(hi, d->n);
	check_hist_sums(lo, d);
	for (uint32_t c = 0; c < 20; c++) {
		assert_true(fmi_partition_size(lo, c) >= 10);
	}
	assert_true(same_partition(lo, again));
	assert_false(same_partition(lo, other));
	double elo = mean_entropy(lo, d), ehi = mean_entropy(hi, d);
	print_message("mean label entropy: alpha 0.1 %.2f, alpha 100 %.2f "
	    "bits\n", elo, ehi);
	assert_true(elo + 1.0 < ehi);
	assert_true(ehi > 3.0); /* near log2(10) = 3.32 */
	fmi_partition_unref(lo);
	fmi_partition_unref(hi);
	fmi_partition_unref(again);
	fmi_partition_unref(other);
	fmi_dataset_unref(d);
}

static void
test_dirichlet_errors(void **state)
{
	(void)state;
	fmi_dataset *d = make_ds(1000, 10, 0);
	fmi_partition *p = NULL;
	fm_error e;
	FMT_FAIL(fmi_partition_dirichlet(&p, d, 10, 0.0, 0, 1, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "alpha"));
	FMT_FAIL(fmi_partition_dirichlet(&p, d, 10, NAN, 0, 1, &e), FM_EINVAL);
	FMT_FAIL(fmi_partition_dirichlet(&p, d, 0, 1.0, 0, 1, &e), FM_EINVAL);
	FMT_FAIL(fmi_partition_dirichlet(&p, d, 10, 1.0, 101, 1, &e),
	    FM_EINVAL);
	assert_non_null(strstr(e.msg, "min_size"));
	/* Feasible on paper, hopeless in practice: hits the draw cap. */
	FMT_FAIL(fmi_partition_dirichlet(&p, d, 50, 0.01, 19, 1, &e),
	    FM_EINVAL);
	assert_non_null(strstr(e.msg, "draws"));
	assert_non_null(strstr(e.msg, "raise alpha"));
	assert_null(p);
	d->y[5] = 10;
	FMT_FAIL(fmi_partition_dirichlet(&p, d, 10, 1.0, 0, 1, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "label 10"));
	fmi_dataset_unref(d);
}

static void
test_shards(void **state)
{
	(void)state;
	fmi_dataset *d = make_ds(1000, 10, 0); /* 100 per class */
	fmi_partition *p, *q, *o;
	fm_error e;
	FMT_PASS(fmi_partition_shards(&p, d, 20, 2, 5, &e)); /* shards of 25 */
	FMT_PASS(fmi_partition_shards(&q, d, 20, 2, 5, &e));
	FMT_PASS(fmi_partition_shards(&o, d, 20, 2, 6, &e));
	check_cover(p, d->n);
	assert_true(same_partition(p, q));
	assert_false(same_partition(p, o));
	uint32_t hist[10];
	for (uint32_t c = 0; c < 20; c++) {
		assert_int_equal(fmi_partition_size(p, c), 50);
		fmi_partition_label_hist(p, d, c, hist);
		uint32_t labels = 0;
		for (int k = 0; k < 10; k++) {
			labels += hist[k] > 0;
		}
		assert_true(labels >= 1 && labels <= 2);
	}
	fmi_partition_unref(p);
	fmi_partition_unref(q);
	fmi_partition_unref(o);
	fmi_dataset_unref(d);
	d = make_ds(1003, 7, 0); /* uneven: shard sizes differ by one */
	FMT_PASS(fmi_partition_shards(&p, d, 9, 3, 5, &e));
	check_cover(p, d->n);
	fmi_partition_unref(p);
	FMT_FAIL(fmi_partition_shards(&p, d, 9, 0, 5, &e), FM_EINVAL);
	FMT_FAIL(fmi_partition_shards(&p, d, 500, 3, 5, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "500 x 3"));
	fmi_dataset_unref(d);
}

static void
test_natural(void **state)
{
	(void)state;
	fmi_dataset *d = make_ds(100, 3, 7);
	fmi_partition *p;
	fm_error e;
	FMT_PASS(fmi_partition_natural(&p, d, &e));
	assert_int_equal(p->nclients, 7);
	check_cover(p, d->n);
	for (uint32_t c = 0; c < 7; c++) {
		assert_int_equal(fmi_partition_size(p, c), c < 2 ? 15 : 14);
		for (size_t i = p->off[c]; i < p->off[c + 1]; i++) {
			assert_int_equal(d->owner[p->idx[i]], c);
		}
	}
	fmi_partition_unref(p);
	fmi_dataset_unref(d);
	d = make_ds(100, 3, 0);
	FMT_FAIL(fmi_partition_natural(&p, d, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "owners"));
	fmi_dataset_unref(d);
}

/* Natural partition of Synthetic: one client per device. */
static void
test_natural_synthetic(void **state)
{
	(void)state;
	fmi_synthetic_cfg c = { 0.5, 0.5, 12, 60, 10, 300, 0, 3 };
	fmi_dataset *tr, *te;
	fmi_partition *p;
	fm_error e;
	FMT_PASS(fmi_synthetic(&tr, &te, &c, &e));
	FMT_PASS(fmi_partition_natural(&p, tr, &e));
	assert_int_equal(p->nclients, 12);
	check_cover(p, tr->n);
	for (uint32_t k = 0; k < 12; k++) {
		assert_true(fmi_partition_size(p, k) >= 45);
	}
	fmi_partition_unref(p);
	fmi_dataset_unref(tr);
	fmi_dataset_unref(te);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iid),
		cmocka_unit_test(test_dirichlet),
		cmocka_unit_test(test_dirichlet_errors),
		cmocka_unit_test(test_shards),
		cmocka_unit_test(test_natural),
		cmocka_unit_test(test_natural_synthetic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
