/* SPDX-License-Identifier: MIT */
/* model_io_test.c: the model file format: round trips, layout, refusals. */
#define _DEFAULT_SOURCE /* mkdtemp, DIR */
#include "fm_test.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/core.h"
#include "model/model_io.h"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/fm-model-io-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	return rmdir(dir);
}

static const char *
path_of(const char *name)
{
	static char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return p;
}

static fmi_arch
mlp(const uint32_t *w, uint32_t n)
{
	fmi_arch a;
	fm_error e;
	FMT_PASS(fmi_arch_mlp(&a, w, n, &e));
	return a;
}

static float *
random_params(const fmi_arch *a, uint64_t seed)
{
	float *p = malloc(a->nparams * sizeof *p);
	assert_non_null(p);
	fm_rng r;
	fmi_rng_seed(&r, seed, 0);
	fmi_arch_init_params(a, p, &r);
	p[0] = -0.0f; /* bits, not values, must survive */
	return p;
}

static unsigned char *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	rewind(f);
	unsigned char *b = malloc(*n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, *n, f), *n);
	fclose(f);
	return b;
}

static void
spit(const char *path, const unsigned char *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

static void
round_trip(const fmi_arch *a, const char *name)
{
	float *p = random_params(a, 7), *q = NULL;
	fmi_arch b;
	fm_error e;
	FMT_PASS(fmi_model_save(path_of(name), a, p, &e));
	FMT_PASS(fmi_model_load(path_of(name), &b, &q, &e));
	assert_true(fmi_arch_same(a, &b));
	assert_string_equal(a->kind, b.kind);
	assert_int_equal(memcmp(a->slices, b.slices, sizeof a->slices), 0);
	assert_int_equal(memcmp(p, q, a->nparams * sizeof *p), 0);
	size_t n;
	free(slurp(path_of(name), &n));
	assert_int_equal(n, fmi_model_file_size(a));
	free(p);
	free(q);
}

static void
test_round_trip(void **state)
{
	(void)state;
	const uint32_t w[] = { 784, 200, 200, 10 }, lr[] = { 5, 3 };
	fmi_arch a = mlp(w, 4), l = mlp(lr, 2), c;
	fmi_strlcpy(l.kind, "logreg", sizeof l.kind);
	round_trip(&a, "mlp.fmm");
	/* 52-byte header, 199,210 floats, 4-byte checksum */
	assert_int_equal(fmi_model_file_size(&a), 52 + 4 * 199210 + 4);
	round_trip(&l, "logreg.fmm");
	fmi_strlcpy(l.kind, "mlp", sizeof l.kind); /* fm.model.mlp{5, 3} */
	round_trip(&l, "mlp1.fmm");
	fmi_cnn_shape s = { 8, 3, { 2, 3 }, 4, 3 };
	fm_error e;
	FMT_PASS(fmi_arch_cnn(&c, &s, &e));
	round_trip(&c, "cnn.fmm");
	char d[96];
	fmi_arch_describe(&a, d, sizeof d);
	assert_string_equal(d, "mlp 784-200-200-10");
	fmi_arch_describe(&c, d, sizeof d);
	assert_string_equal(d, "cnn 1x8x8-2c3-p2-3c3-p2-4-3");
	assert_false(fmi_arch_same(&a, &c));
}

/* The bytes of the documented layout, little-endian. */
static void
test_layout(void **state)
{
	(void)state;
	const uint32_t w[] = { 4, 3, 2 };
	fmi_arch a = mlp(w, 3);
	float *p = random_params(&a, 1);
	fm_error e;
	FMT_PASS(fmi_model_save(path_of("l.fmm"), &a, p, &e));
	size_t n;
	unsigned char *b = slurp(path_of("l.fmm"), &n);
	assert_int_equal(n, 48 + 4 * 23 + 4);
	assert_memory_equal(b, "FMMODEL\0", 8);
	const unsigned char fixed[] = { 1, 0, 0, 0, 48, 0, 0, 0, 1, 0, 0, 0, 3,
		0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 23, 0, 0, 0, 0, 0, 0,
		0 };
	assert_memory_equal(b + 8, fixed, sizeof fixed);
	uint32_t hc = (uint32_t)crc32(0, b, 44), pc = (uint32_t)crc32(0, b + 48,
	    4 * 23);
	unsigned char le[4] = { (unsigned char)hc, (unsigned char)(hc >> 8),
		(unsigned char)(hc >> 16), (unsigned char)(hc >> 24) };
	assert_memory_equal(b + 44, le, 4);
	unsigned char lp[4] = { (unsigned char)pc, (unsigned char)(pc >> 8),
		(unsigned char)(pc >> 16), (unsigned char)(pc >> 24) };
	assert_memory_equal(b + n - 4, lp, 4);
	free(b);
	free(p);
}

/* Loads name expecting code and a message containing want. */
static void
expect_refused(const char *name, int code, const char *want)
{
	fmi_arch a;
	memset(&a, 0x5a, sizeof a);
	float *q = (float *)&a; /* must stay untouched */
	fm_error e;
	FMT_FAIL(fmi_model_load(path_of(name), &a, &q, &e), code);
	if (strstr(e.msg, want) == NULL) {
		print_error("message '%s' lacks '%s'\n", e.msg, want);
		fail();
	}
	assert_ptr_equal(q, (float *)&a);
	assert_int_equal(((unsigned char *)&a)[0], 0x5a);
}

static void
put32(unsigned char *b, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		b[i] = (unsigned char)(v >> (8 * i));
	}
}

static void
test_refusals(void **state)
{
	(void)state;
	const uint32_t w[] = { 4, 3, 2 };
	fmi_arch a = mlp(w, 3);
	float *p = random_params(&a, 3);
	fm_error e;
	FMT_PASS(fmi_model_save(path_of("ok.fmm"), &a, p, &e));
	size_t n;
	unsigned char *b = slurp(path_of("ok.fmm"), &n), *c = malloc(n + 8);
	assert_non_null(c);

	expect_refused("missing.fmm", FM_ENOENT, "No such file");
	spit(path_of("short.fmm"), b, n - 10);
	expect_refused("short.fmm", FM_EPROTO, "truncated: expected 144 "
	    "bytes, got 134");
	spit(path_of("hdr.fmm"), b, 30);
	expect_refused("hdr.fmm", FM_EPROTO, "truncated: expected at least 48");
	spit(path_of("empty.fmm"), b, 0);
	expect_refused("empty.fmm", FM_EPROTO, "truncated");
	memcpy(c, b, n);
	memcpy(c + n, "trailing", 8);
	spit(path_of("long.fmm"), c, n + 8);
	expect_refused("long.fmm", FM_EPROTO, "expected 144 bytes, got 152");

	memcpy(c, b, n);
	c[60] ^= 0x01; /* a parameter bit */
	spit(path_of("flip.fmm"), c, n);
	expect_refused("flip.fmm", FM_EPROTO, "checksum does not match");
	memcpy(c, b, n);
	c[26] ^= 0x01; /* a width */
	spit(path_of("flip2.fmm"), c, n);
	expect_refused("flip2.fmm", FM_EPROTO, "damaged header (checksum");
	memcpy(c, b, n);
	c[0] = 'X';
	spit(path_of("magic.fmm"), c, n);
	expect_refused("magic.fmm", FM_EPROTO, "not a fedmesh model file");
	spit(path_of("text.fmm"), (const unsigned char *)"hello", 5);
	expect_refused("text.fmm", FM_EPROTO, "not a fedmesh model file");

	memcpy(c, b, n);
	put32(c + 8, 2);
	spit(path_of("v2.fmm"), c, n);
	expect_refused("v2.fmm", FM_EVERSION, "format version 2, newer");

	/* widths 4-3-3 (27 parameters) with nparams 23 and a valid header
	 * checksum: written by something else */
	memcpy(c, b, n);
	put32(c + 32, 3);
	put32(c + 44, (uint32_t)crc32(0, c, 44));
	spit(path_of("incons.fmm"), c, n);
	expect_refused("incons.fmm", FM_EPROTO, "architecture mlp 4-3-3 has "
	    "27 parameters but the file holds 23");
	memcpy(c, b, n);
	put32(c + 16, 9);
	put32(c + 44, (uint32_t)crc32(0, c, 44));
	spit(path_of("kind.fmm"), c, n);
	expect_refused("kind.fmm", FM_EPROTO, "unknown model kind 9");
	expect_refused("", FM_EIO, "cannot");
	free(b);
	free(c);
	free(p);
}

/* A failed save leaves the old file and no temporary behind. */
static void
test_atomic(void **state)
{
	(void)state;
	const uint32_t w[] = { 4, 3, 2 };
	fmi_arch a = mlp(w, 3);
	float *p = random_params(&a, 3), *q = NULL;
	fm_error e;
	FMT_FAIL(fmi_model_save(path_of("no/such/dir.fmm"), &a, p, &e), FM_EIO);
	assert_non_null(strstr(e.msg, "cannot write model file"));
	FMT_PASS(fmi_model_save(path_of("m.fmm"), &a, p, &e));
	p[1] = 42.0f;
	FMT_PASS(fmi_model_save(path_of("m.fmm"), &a, p, &e)); /* replaces */
	fmi_arch b;
	FMT_PASS(fmi_model_load(path_of("m.fmm"), &b, &q, &e));
	assert_true(q[1] == 42.0f);
	free(q);
	/* a directory in the way: the rename fails, nothing is lost */
	char sub[300];
	snprintf(sub, sizeof sub, "%s", path_of("sub.fmm"));
	assert_int_equal(mkdir(sub, 0700), 0);
	FMT_FAIL(fmi_model_save(sub, &a, p, &e), FM_EIO);
	assert_int_equal(rmdir(sub), 0);
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		assert_null(strstr(de->d_name, ".tmp"));
	}
	closedir(d);
	fmi_arch bad = a;
	bad.nlayers = 0;
	FMT_FAIL(fmi_model_save(path_of("bad.fmm"), &bad, p, &e), FM_EINVAL);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_atomic),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
