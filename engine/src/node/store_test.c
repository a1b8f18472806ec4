/* SPDX-License-Identifier: MIT */
/* store_test.c: per-client plugin state (host->client_state's store). */
#define _GNU_SOURCE /* mkdtemp */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* With undo, a round taken again by another task (a restarted server
 * running a round it lost) starts from the value before that round; the
 * same task asking again keeps its own; without undo nothing rolls back. */
static void
test_undo(void **state)
{
	(void)state;
	fmi_store *s;
	int t;
	FMT_PASS(fmi_store_new(&s));
	fmi_store_keep_undo(s, 1);
	float *x = fmi_store_take(s, 1, "scaffold", 8, &t, 3, 10);
	x[0] = 1; /* round 3 trains */
	assert_ptr_equal(fmi_store_take(s, 1, "scaffold", 8, &t, 3, 10), x);
	assert_true(x[0] == 1); /* the same task: its own value */
	fmi_store_release(s, 1, "scaffold", &t);
	x = fmi_store_take(s, 1, "scaffold", 8, &t, 4, 11);
	x[0] = 2; /* round 4 trains, then the server dies, resumes at 4 */
	fmi_store_release(s, 1, "scaffold", &t);
	x = fmi_store_take(s, 1, "scaffold", 8, &t, 4, 12);
	assert_true(x[0] == 1); /* round 3's value again */
	x[0] = 5;
	fmi_store_release(s, 1, "scaffold", &t);
	x = fmi_store_take(s, 1, "scaffold", 8, &t, 5, 13);
	assert_true(x[0] == 5); /* and round 5 goes on from the rerun */
	fmi_store_release(s, 1, "scaffold", &t);
	/* a new entry's value before its first round is zero */
	float *y = fmi_store_take(s, 2, "scaffold", 8, &t, 4, 14);
	y[1] = 7;
	fmi_store_release(s, 2, "scaffold", &t);
	y = fmi_store_take(s, 2, "scaffold", 8, &t, 4, 15);
	assert_true(y[1] == 0);
	fmi_store_release(s, 2, "scaffold", &t);
	fmi_store_free(s);

	FMT_PASS(fmi_store_new(&s)); /* a simulation's: no undo */
	x = fmi_store_take(s, 1, "scaffold", 8, &t, 4, 1);
	x[0] = 2;
	fmi_store_release(s, 1, "scaffold", &t);
	x = fmi_store_take(s, 1, "scaffold", 8, &t, 4, 2);
	assert_true(x[0] == 2);
	fmi_store_free(s);
}

static fmi_store *
filled(int undo)
{
	fmi_store *s;
	int t;
	if (fmi_store_new(&s) != FM_OK) {
		return NULL;
	}
	fmi_store_keep_undo(s, undo);
	for (int32_t c = 9; c >= 0; c--) { /* saved in client order anyway */
		float *x = fmi_store_take(s, c, "scaffold", 12, &t, 2, 1);
		x[0] = (float)c;
		x[2] = 0.5f;
		fmi_store_release(s, c, "scaffold", &t);
		x = fmi_store_take(s, c, "scaffold", 12, &t, 3, 2);
		x[0] += 100;
		fmi_store_release(s, c, "scaffold", &t);
		int *e = fmi_store_get(s, c, "ef", sizeof(int), NULL);
		*e = -c;
	}
	return s;
}

/* save then load: the same entries, rounds and earlier values; the bytes
 * do not depend on the order entries were made in; bad input is refused
 * and leaves the store empty. */
static void
test_serialize(void **state)
{
	(void)state;
	fmi_store *a = filled(1), *b, *c;
	size_t need, len;
	int t;
	assert_int_equal(fmi_store_save(a, NULL, 0, &need), FM_ERANGE);
	unsigned char *buf = malloc(need), *buf2 = malloc(need);
	assert_int_equal(fmi_store_save(a, buf, need - 1, &len), FM_ERANGE);
	FMT_PASS(fmi_store_save(a, buf, need, &len));
	assert_int_equal(len, need);
	FMT_PASS(fmi_store_new(&b));
	fmi_store_keep_undo(b, 1);
	FMT_PASS(fmi_store_load(b, buf, len, "test", NULL));
	FMT_PASS(fmi_store_save(b, buf2, need, &len));
	assert_memory_equal(buf, buf2, need);
	assert_int_equal(fmi_store_bytes(b), fmi_store_bytes(a));
	float *x = fmi_store_take(b, 7, "scaffold", 12, &t, 4, 9);
	assert_true(x[0] == 107 && x[2] == 0.5f);
	fmi_store_release(b, 7, "scaffold", &t);
	/* an older round than the entry's (the server resumed from an older
	 * checkpoint): used as it is, with a warning */
	x = fmi_store_take(b, 7, "scaffold", 12, &t, 3, 10);
	assert_true(x[0] == 107);
	fmi_store_release(b, 7, "scaffold", &t);
	x = fmi_store_take(b, 6, "scaffold", 12, &t, 3, 11); /* rerun of 3 */
	assert_true(x[0] == 6);
	fmi_store_release(b, 6, "scaffold", &t);
	int *e = fmi_store_get(b, 4, "ef", sizeof(int), NULL);
	assert_int_equal(*e, -4);
	FMT_FAIL(fmi_store_load(b, buf, need, "test", NULL), FM_EINVAL);

	fm_error err;
	FMT_PASS(fmi_store_new(&c));
	FMT_FAIL(fmi_store_load(c, buf, need - 1, "test", &err), FM_EPROTO);
	assert_non_null(strstr(err.msg, "truncated"));
	assert_int_equal(fmi_store_bytes(c), 0);
	memcpy(buf2, buf, need);
	buf2[0] = 9; /* format */
	FMT_FAIL(fmi_store_load(c, buf2, need, "test", &err), FM_EVERSION);
	memcpy(buf2, buf, need);
	buf2[8 + 16] = 0; /* the first entry's component name: empty */
	FMT_FAIL(fmi_store_load(c, buf2, need, "test", &err), FM_EPROTO);
	assert_non_null(strstr(err.msg, "corrupt"));
	unsigned char *longer = calloc(1, need + 3);
	memcpy(longer, buf, need);
	FMT_FAIL(fmi_store_load(c, longer, need + 3, "test", &err), FM_EPROTO);
	assert_int_equal(fmi_store_bytes(c), 0);
	free(longer);
	fmi_store_free(c);
	free(buf);
	free(buf2);
	fmi_store_free(a);
	fmi_store_free(b);
}

static char *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *b = malloc(1 << 16);
	*n = f != NULL ? fread(b, 1, 1 << 16, f) : 0;
	if (f != NULL) {
		fclose(f);
	}
	return b;
}

static void
spill(const char *path, const char *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

/* A client host's state file: written crash-safely, read back whole;
 * another federation, model size or host, a truncated, extended or
 * corrupted file are refused, the store left empty and the file as it
 * was. */
static void
test_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/fm_store_XXXXXX", path[128], tmp[160];
	fm_error err;
	fmi_store *a = filled(1), *b;
	size_t n, m;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/c1.state", dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	assert_true(fmi_store_dirty(a));
	FMT_PASS(fmi_store_write(a, path, 42, 100, "c1", &err));
	assert_false(fmi_store_dirty(a));
	assert_int_not_equal(access(tmp, F_OK), 0); /* renamed away */
	FMT_PASS(fmi_store_new(&b));
	FMT_FAIL(fmi_store_read(b, "/nonexistent/x.state", 42, 100, "c1",
	    &err), FM_ENOENT);
	FMT_PASS(fmi_store_read(b, path, 42, 100, "c1", &err));
	assert_int_equal(fmi_store_bytes(b), fmi_store_bytes(a));
	assert_false(fmi_store_dirty(b));
	fmi_store_free(b);

	char *good = slurp(path, &n);
	struct {
		uint64_t fed, dim;
		const char *host, *why;
	} bad[] = {
		{ 43, 100, "c1", "another federation" },
		{ 42, 101, "c1", "another federation" },
		{ 42, 100, "c2", "of client host 'c1', not of 'c2'" },
	};
	for (size_t i = 0; i < FMI_ARRAY_LEN(bad); i++) {
		FMT_PASS(fmi_store_new(&b));
		FMT_FAIL(fmi_store_read(b, path, bad[i].fed, bad[i].dim,
		    bad[i].host, &err), FM_EINVAL);
		assert_non_null(strstr(err.msg, bad[i].why));
		assert_int_equal(fmi_store_bytes(b), 0);
		fmi_store_free(b);
	}
	struct {
		size_t len;
		size_t flip; /* 0: none */
		const char *why;
	} broken[] = {
		{ 10, 0, "shorter than a header" },
		{ n - 1, 0, "corrupt" },        /* the checksum shifts */
		{ n - 40, 0, "truncated" },
		{ n, n / 2, "corrupt" },
	};
	for (size_t i = 0; i < FMI_ARRAY_LEN(broken); i++) {
		char *c = malloc(n);
		memcpy(c, good, n);
		if (broken[i].flip) {
			c[broken[i].flip] ^= 0x10;
		}
		spill(path, c, broken[i].len);
		FMT_PASS(fmi_store_new(&b));
		assert_int_not_equal(fmi_store_read(b, path, 42, 100, "c1",
		    &err), FM_OK);
		if (strstr(err.msg, broken[i].why) == NULL) {
			print_error("case %zu: '%s' lacks '%s'\n", i, err.msg,
			    broken[i].why);
			fail();
		}
		assert_int_equal(fmi_store_bytes(b), 0);
		fmi_store_free(b);
		char *after = slurp(path, &m);
		assert_int_equal(m, broken[i].len);
		assert_memory_equal(after, c, m); /* untouched */
		free(after);
		free(c);
	}
	/* a folder that cannot be written: an error, the old file stays */
	spill(path, good, n);
	char nodir[200];
	snprintf(nodir, sizeof nodir, "%s/no/such/c1.state", dir);
	assert_int_equal(fmi_store_write(a, nodir, 42, 100, "c1", &err),
	    FM_EIO);
	assert_true(fmi_store_dirty(a)); /* still to be written */
	unlink(path);
	rmdir(dir);
	free(good);
	fmi_store_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_undo),
		cmocka_unit_test(test_serialize),
		cmocka_unit_test(test_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
