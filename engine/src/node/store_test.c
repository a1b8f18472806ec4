/* SPDX-License-Identifier: MIT */
/* store_test.c: per-client plugin state (host->client_state's store). */
#include <pthread.h>

#include "fm_test.h"

#include "core/core.h"
#include "node/store.h"

/* Zeroed on creation, the same buffer every time, per (client, component);
 * a size other than the first is refused. */
static void
test_entries(void **state)
{
	(void)state;
	fmi_store *s;
	int a, b;
	FMT_PASS(fmi_store_new(&s));
	float *x = fmi_store_get(s, 3, "scaffold", 40, &a);
	assert_non_null(x);
	assert_true(((uintptr_t)x & 63) == 0);
	for (int i = 0; i < 10; i++) {
		assert_true(x[i] == 0.0f);
		x[i] = (float)i;
	}
	assert_ptr_equal(fmi_store_get(s, 3, "scaffold", 40, &a), x);
	assert_null(fmi_store_get(s, 3, "scaffold", 44, &a)); /* size */
	float *y = fmi_store_get(s, 4, "scaffold", 40, &b);
	float *z = fmi_store_get(s, 3, "other", 40, &b);
	assert_non_null(y);
	assert_non_null(z);
	assert_true(y != x && z != x && y != z);
	assert_true(y[9] == 0.0f && z[9] == 0.0f);
	assert_int_equal(fmi_store_bytes(s), 120);
	assert_null(fmi_store_get(s, 3, "", 0, &a));
	fmi_store_free(s);
	fmi_store_free(NULL);
}

/* An entry is its owner's until released: a second task of the same
 * client (an earlier round's, still training) gets NULL. */
static void
test_owner(void **state)
{
	(void)state;
	fmi_store *s;
	int t1, t2;
	FMT_PASS(fmi_store_new(&s));
	float *x = fmi_store_get(s, 1, "scaffold", 8, &t1);
	assert_non_null(x);
	assert_null(fmi_store_get(s, 1, "scaffold", 8, &t2));
	assert_ptr_equal(fmi_store_get(s, 1, "scaffold", 8, NULL), x); /* look */
	fmi_store_release(s, 1, "scaffold", &t2); /* not the owner: no-op */
	assert_null(fmi_store_get(s, 1, "scaffold", 8, &t2));
	fmi_store_release(s, 1, "scaffold", &t1);
	assert_ptr_equal(fmi_store_get(s, 1, "scaffold", 8, &t2), x);
	fmi_store_free(s);
}

typedef struct worker {
	fmi_store *s;
	int32_t first;
	int ok;
} worker;

static void *
worker_main(void *arg)
{
	worker *w = arg;
	w->ok = 1;
	for (int32_t c = w->first; c < w->first + 2000; c++) {
		int *p = fmi_store_get(w->s, c, "t", sizeof(int), w);
		if (p == NULL || *p != 0) {
			w->ok = 0;
			return NULL;
		}
		*p = c;
		fmi_store_release(w->s, c, "t", w);
	}
	return NULL;
}

/* Workers creating entries at once (the table grows under them). */
static void
test_threads(void **state)
{
	(void)state;
	fmi_store *s;
	pthread_t th[4];
	worker w[4];
	FMT_PASS(fmi_store_new(&s));
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){ s, i * 2000, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]),
		    0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_true(w[i].ok);
	}
	for (int32_t c = 0; c < 8000; c++) {
		int *p = fmi_store_get(s, c, "t", sizeof(int), NULL);
		assert_non_null(p);
		assert_int_equal(*p, c);
	}
	assert_int_equal(fmi_store_bytes(s), 8000 * sizeof(int));
	fmi_store_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
