/* SPDX-License-Identifier: MIT */
/* data_test.c: IDX, Fashion-MNIST, CSV and Synthetic loaders. */
#define _XOPEN_SOURCE 700 /* mkdtemp, setenv, truncate, realpath */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "fm_test.h"

#include "core/core.h"
#include "data/data.h"
#include "data/pixels.h"

static char tmpdir[256];

static int
setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/fm_data_test.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
remove_dir(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *
tpath(const char *name)
{
	static char buf[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static void
write_bytes(const char *path, int gz, const void *data, size_t len)
{
	if (gz) {
		gzFile f = gzopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
		assert_int_equal(gzclose(f), Z_OK);
	} else {
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(data, 1, len, f), len);
		fclose(f);
	}
}

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Writes an IDX image file of n images of rows x cols, pixel (i, j) =
 * (7 i + j) % 256, keeping only the first keep bytes when keep != 0. */
static void
write_images(const char *path, int gz, uint32_t magic, uint32_t n,
    uint32_t rows, uint32_t cols, size_t keep)
{
	size_t px = (size_t)n * rows * cols, len = 16 + px;
	unsigned char *b = malloc(len);
	put_be32(b, magic);
	put_be32(b + 4, n);
	put_be32(b + 8, rows);
	put_be32(b + 12, cols);
	for (size_t i = 0; i < px; i++) {
		b[16 + i] = (unsigned char)((7 * (i / (rows * cols)) +
		    i % (rows * cols)) % 256);
	}
	write_bytes(path, gz, b, keep ? keep : len);
	free(b);
}

static void
write_labels(const char *path, int gz, uint32_t magic, uint32_t n,
    size_t extra)
{
	size_t len = 8 + n + extra;
	unsigned char *b = calloc(1, len);
	put_be32(b, magic);
	put_be32(b + 4, n);
	for (uint32_t i = 0; i < n; i++) {
		b[8 + i] = (unsigned char)(i % 4);
	}
	write_bytes(path, gz, b, len);
	free(b);
}

/* ---- IDX ------------------------------------------------------------------ */

/* Every feature of d as floats (freed by the caller). */
static float *
all_rows(const fmi_dataset *d)
{
	float *x = malloc(d->n * d->dim * sizeof *x + 1);
	assert_non_null(x);
	fm_error e;
	FMT_PASS(fmi_dataset_rows(d, NULL, d->n, x, &e));
	return x;
}

static void
check_small(const fmi_dataset *d)
{
	assert_int_equal(d->n, 5);
	assert_int_equal(d->dim, 6);
	assert_int_equal(d->nclasses, 4); /* labels 0..3 */
	assert_int_equal(d->refs, 1);
	assert_null(d->owner);
	assert_null(d->x); /* images are bytes */
	float *x = all_rows(d);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(d->y[i], (int32_t)(i % 4));
		for (size_t j = 0; j < 6; j++) {
			float want = (float)((7 * i + j) % 256) / 255.0f;
			assert_true(x[i * 6 + j] == want);
			assert_int_equal(d->x8[i * 6 + j], (7 * i + j) % 256);
		}
	}
	free(x);
}

static void
test_idx_roundtrip(void **state)
{
	(void)state;
	for (int gz = 0; gz < 2; gz++) {
		const char *img = tpath(gz ? "i.gz" : "i"),
		           *lab = tpath(gz ? "l.gz" : "l");
		write_images(img, gz, 0x803, 5, 2, 3, 0);
		write_labels(lab, !gz, 0x801, 5, 0); /* mixed on purpose */
		fmi_dataset *d = NULL;
		fm_error e;
		FMT_PASS(fmi_idx_load(&d, img, lab, &e));
		check_small(d);
		assert_string_equal(d->name, gz ? "i.gz" : "i");
		fmi_dataset_ref(d);
		fmi_dataset_unref(d);
		assert_int_equal(d->refs, 1);
		fmi_dataset_unref(d);
	}
	fmi_dataset_unref(NULL);
}

static void
test_idx_scaling(void **state)
{
	(void)state;
	/* one 16 x 16 image holding every byte value */
	unsigned char b[16 + 256];
	put_be32(b, 0x803);
	put_be32(b + 4, 1);
	put_be32(b + 8, 16);
	put_be32(b + 12, 16);
	for (int i = 0; i < 256; i++) {
		b[16 + i] = (unsigned char)i;
	}
	write_bytes(tpath("all"), 1, b, sizeof b);
	unsigned char l[9] = { 0, 0, 8, 1, 0, 0, 0, 1, 255 };
	write_bytes(tpath("all-l"), 0, l, sizeof l);
	fmi_dataset *d;
	fm_error e;
	FMT_PASS(fmi_idx_load(&d, tpath("all"), tpath("all-l"), &e));
	float *x = all_rows(d);
	assert_true(x[0] == 0.0f && x[255] == 1.0f);
	assert_true(fabsf(x[51] - 0.2f) < 1e-7f);
	for (int v = 0; v < 256; v++) { /* what the float loader computed */
		assert_true(x[v] == (float)v / 255.0f);
	}
	free(x);
	assert_int_equal(d->y[0], 255);
	assert_int_equal(d->nclasses, 256);
	fmi_dataset_unref(d);
}

/* Loads img/lab expecting failure code with every needle in the message. */
static void
expect_idx_fail(const char *img, const char *lab, int code,
    const char *needle1, const char *needle2)
{
	fmi_dataset *d = (fmi_dataset *)(uintptr_t)0x1;
	fm_error e = { 0, "" };
	FMT_FAIL(fmi_idx_load(&d, img, lab, &e), code);
	assert_true(d == (fmi_dataset *)(uintptr_t)0x1); /* untouched */
	assert_int_equal(e.code, code);
	if (strstr(e.msg, needle1) == NULL ||
	    (needle2 && strstr(e.msg, needle2) == NULL)) {
		print_error("message: %s\n", e.msg);
		fail();
	}
}

static void
test_idx_truncated(void **state)
{
	(void)state;
	write_labels(tpath("l"), 0, 0x801, 5, 0);
	/* plain, cut inside the pixels */
	write_images(tpath("tr"), 0, 0x803, 5, 2, 3, 16 + 20);
	expect_idx_fail(tpath("tr"), tpath("l"), FM_EPROTO, "truncated",
	    tpath("tr"));
	/* plain, cut inside the header */
	write_images(tpath("th"), 0, 0x803, 5, 2, 3, 10);
	expect_idx_fail(tpath("th"), tpath("l"), FM_EPROTO, "truncated",
	    "header");
	/* gzip with its stream cut short */
	write_images(tpath("big.gz"), 1, 0x803, 400, 28, 28, 0);
	struct stat st;
	assert_int_equal(stat(tpath("big.gz"), &st), 0);
	assert_int_equal(truncate(tpath("big.gz"), st.st_size / 2), 0);
	write_labels(tpath("l400"), 0, 0x801, 400, 0);
	fmi_dataset *d;
	fm_error e;
	int rv = fmi_idx_load(&d, tpath("big.gz"), tpath("l400"), &e);
	assert_true(rv == FM_EPROTO || rv == FM_EIO);
	assert_non_null(strstr(e.msg, tpath("big.gz")));
	/* labels short */
	write_images(tpath("i"), 0, 0x803, 5, 2, 3, 0);
	write_labels(tpath("ls"), 0, 0x801, 5, 0);
	assert_int_equal(truncate(tpath("ls"), 10), 0);
	expect_idx_fail(tpath("i"), tpath("ls"), FM_EPROTO, "truncated",
	    "labels");
	/* trailing garbage */
	write_labels(tpath("lx"), 0, 0x801, 5, 3);
	expect_idx_fail(tpath("i"), tpath("lx"), FM_EPROTO, "trailing", NULL);
}

static void
test_idx_bad_header(void **state)
{
	(void)state;
	write_images(tpath("i"), 0, 0x803, 5, 2, 3, 0);
	write_labels(tpath("l"), 0, 0x801, 5, 0);
	write_images(tpath("bm"), 1, 0x12345678, 5, 2, 3, 0);
	expect_idx_fail(tpath("bm"), tpath("l"), FM_EPROTO, "magic",
	    "0x12345678");
	expect_idx_fail(tpath("l"), tpath("i"), FM_EPROTO, "swapped", NULL);
	write_labels(tpath("l6"), 0, 0x801, 6, 0);
	expect_idx_fail(tpath("i"), tpath("l6"), FM_EPROTO, "5 images",
	    "6 labels");
	write_images(tpath("z"), 0, 0x803, 5, 0, 3, 16);
	expect_idx_fail(tpath("z"), tpath("l"), FM_EPROTO, "dimensions", NULL);
	expect_idx_fail(tpath("nope"), tpath("l"), FM_ENOENT, "nope",
	    "No such file");
}

/* ---- Fashion-MNIST -------------------------------------------------------- */

static void
test_fmnist_missing(void **state)
{
	(void)state;
	fmi_dataset *tr, *te;
	fm_error e;
	FMT_FAIL(fmi_fmnist_load(&tr, &te, tpath("empty"), &e), FM_ENOENT);
	assert_non_null(strstr(e.msg, "apt-get install dataset-fashion-mnist"));
	assert_non_null(strstr(e.msg, "train-images-idx3-ubyte"));
	assert_non_null(strstr(e.msg, "FEDMESH_FMNIST_DIR"));
}

static void
test_fmnist_env_dir(void **state)
{
	(void)state;
	char dir[512];
	snprintf(dir, sizeof dir, "%s", tpath("fm"));
	assert_int_equal(mkdir(dir, 0700), 0);
	char p[600];
	snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
	write_images(p, 1, 0x803, 5, 2, 3, 0);
	snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", dir);
	write_labels(p, 1, 0x801, 5, 0);
	snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", dir); /* plain */
	write_images(p, 0, 0x803, 3, 2, 3, 0);
	snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", dir);
	write_labels(p, 0, 0x801, 3, 0);
	setenv("FEDMESH_FMNIST_DIR", dir, 1);
	fmi_dataset *tr, *te;
	fm_error e;
	FMT_PASS(fmi_fmnist_load(&tr, &te, NULL, &e));
	unsetenv("FEDMESH_FMNIST_DIR");
	check_small(tr);
	assert_int_equal(te->n, 3);
	assert_int_equal(te->nclasses, 4); /* shared with train */
	assert_string_equal(tr->name, "fashion-mnist-train");
	assert_string_equal(te->name, "fashion-mnist-test");
	fmi_dataset_unref(tr);
	fmi_dataset_unref(te);
	/* a broken file names itself and suggests reinstalling */
	snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", dir);
	write_labels(p, 0, 0x801, 4, 0);
	FMT_FAIL(fmi_fmnist_load(&tr, &te, dir, &e), FM_EPROTO);
	assert_non_null(strstr(e.msg, "t10k-labels"));
	assert_non_null(strstr(e.msg, "--reinstall dataset-fashion-mnist"));
}

static void
test_fmnist_real(void **state)
{
	(void)state;
	struct stat st;
	if (stat(FMI_FMNIST_DEFAULT_DIR, &st) != 0) {
		skip();
	}
	fmi_dataset *tr, *te;
	fm_error e;
	FMT_PASS(fmi_fmnist_load(&tr, &te, FMI_FMNIST_DEFAULT_DIR, &e));
	assert_int_equal(tr->n, 60000);
	assert_int_equal(te->n, 10000);
	assert_int_equal(tr->dim, 784);
	assert_int_equal(te->dim, 784);
	assert_int_equal(tr->nclasses, 10);
	assert_int_equal(te->nclasses, 10);
	uint32_t hist[10] = { 0 };
	float mx = 0;
	for (size_t i = 0; i < tr->n; i++) {
		hist[tr->y[i]]++;
	}
	float *x = all_rows(tr);
	for (size_t i = 0; i < tr->n * tr->dim; i++) {
		mx = fmaxf(mx, x[i]);
	}
	free(x);
	for (int c = 0; c < 10; c++) {
		assert_int_equal(hist[c], 6000); /* FMNIST is balanced */
	}
	assert_true(mx == 1.0f);
	fmi_dataset_unref(tr);
	fmi_dataset_unref(te);
}


/* ---- byte storage, subsets, client hosts' rows, the cache ------------------ */

/* rows of a and b equal bit for bit, as floats */
static void
assert_rows_equal(const fmi_dataset *a, const uint32_t *ia,
    const fmi_dataset *b, const uint32_t *ib, size_t n)
{
	assert_int_equal(a->dim, b->dim);
	float *x = malloc(n * a->dim * sizeof *x + 1);
	float *y = malloc(n * a->dim * sizeof *y + 1);
	fm_error e;
	FMT_PASS(fmi_dataset_rows(a, ia, n, x, &e));
	FMT_PASS(fmi_dataset_rows(b, ib, n, y, &e));
	assert_memory_equal(x, y, n * a->dim * sizeof *x);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(a->y[ia ? ia[i] : i], b->y[ib ? ib[i] : i]);
	}
	free(x);
	free(y);
}

static void
test_bytes_gather(void **state)
{
	(void)state;
	/* the same 7 x 300 features as floats and as bytes / 255 */
	fmi_dataset *f, *b;
	uint8_t *x8;
	FMT_PASS(fmi_dataset_new(&f, 7, 300, 3));
	FMT_PASS(fmi_dataset_new_u8(&b, &x8, 7, 300, 3, 255.0f));
	assert_null(b->x);
	assert_true(fmi_dataset_loaded(b));
	for (size_t i = 0; i < 7 * 300; i++) {
		x8[i] = (uint8_t)(i * 37 % 256);
		f->x[i] = (float)x8[i] / 255.0f;
	}
	for (size_t i = 0; i < 7; i++) {
		f->y[i] = b->y[i] = (int32_t)(i % 3);
	}
	assert_rows_equal(f, NULL, b, NULL, 7);
	const uint32_t rows[] = { 6, 1, 1, 0, 4 };
	assert_rows_equal(f, rows, b, rows, 5);
	float r[2 * 300], g[2 * 300];
	fmi_dataset_gather(b, NULL, 3, 2, r); /* a range */
	fmi_dataset_gather(f, (const uint32_t[]){ 3, 4 }, 0, 2, g);
	assert_memory_equal(r, g, sizeof r);
	/* subsets keep the storage and equal the rows they took */
	fmi_dataset *fs, *bs;
	fm_error e;
	FMT_PASS(fmi_dataset_subset(&fs, f, rows, 5, &e));
	FMT_PASS(fmi_dataset_subset(&bs, b, rows, 5, &e));
	assert_non_null(fs->x);
	assert_null(bs->x);
	assert_non_null(bs->x8);
	assert_rows_equal(fs, NULL, f, rows, 5);
	assert_rows_equal(bs, NULL, b, rows, 5);
	FMT_FAIL(fmi_dataset_subset(&fs, f, (const uint32_t[]){ 7 }, 1, &e),
	    FM_EINVAL);
	assert_non_null(strstr(e.msg, "outside"));
	uint8_t *bad;
	FMT_FAIL(fmi_dataset_new_u8(&fs, &bad, 1, 1, 1, 0.0f), FM_EINVAL);
	fmi_dataset_unref(fs);
	fmi_dataset_unref(bs);
	fmi_dataset_unref(f);
	fmi_dataset_unref(b);
}

/* A client host's rows: the compact dataset equals the full one's rows of
 * the kept clients, the others are empty and not held, and the full lazy
 * dataset was never loaded for it. */
static void
check_keep_rows(const fmi_dataset *d)
{
	fmi_partition *p, *q;
	fmi_dataset *c;
	fm_error e;
	FMT_PASS(fmi_partition_iid(&p, d, 4, 3, &e));
	const uint8_t keep[4] = { 0, 1, 0, 1 };
	assert_false(fmi_dataset_loaded(d));
	FMT_PASS(fmi_dataset_keep_rows(&c, &q, d, p, keep, &e));
	assert_false(fmi_dataset_loaded(d));
	assert_int_equal(q->nclients, 4);
	assert_int_equal(c->n, fmi_partition_size(p, 1) +
	    fmi_partition_size(p, 3));
	assert_int_equal(c->nclasses, d->nclasses);
	assert_null(c->x); /* still bytes */
	assert_null(p->held);
	for (uint32_t k = 0; k < 4; k++) {
		assert_int_equal(fmi_partition_holds(q, k), keep[k]);
		assert_true(fmi_partition_holds(p, k));
		if (!keep[k]) {
			assert_int_equal(fmi_partition_size(q, k), 0);
			continue;
		}
		size_t n = fmi_partition_size(p, k);
		assert_int_equal(fmi_partition_size(q, k), n);
		assert_rows_equal(c, q->idx + q->off[k], d, p->idx + p->off[k],
		    n);
	}
	fmi_dataset_unref(c);
	fmi_partition_unref(q);
	fmi_partition_unref(p);
}

/* 1500 images of 28 x 28 (1.2 MB: cached) to path; salt varies them. */
static void
write_big(const char *path, int salt)
{
	size_t n = 1500, dim = 784, len = 16 + n * dim;
	unsigned char *b = malloc(len);
	put_be32(b, 0x803);
	put_be32(b + 4, (uint32_t)n);
	put_be32(b + 8, 28);
	put_be32(b + 12, 28);
	for (size_t i = 0; i < n * dim; i++) {
		b[16 + i] = (unsigned char)((i / dim * 13 + i % dim + salt) % 251);
	}
	write_bytes(path, 1, b, len);
	free(b);
}

static fmi_dataset *
load_big(void)
{
	fmi_dataset *d;
	fm_error e;
	FMT_PASS(fmi_idx_load(&d, tpath("big.gz"), tpath("big-l"), &e));
	return d;
}

/* big.gz's pixel (i, j) as loaded and as written. */
static void
check_big(const fmi_dataset *d, int salt)
{
	float *x = all_rows(d);
	for (size_t i = 0; i < 1500; i += 7) {
		for (size_t j = 0; j < 784; j += 5) {
			float want = (float)((i * 13 + j + salt) % 251) / 255.0f;
			assert_true(x[i * 784 + j] == want);
		}
	}
	free(x);
}

static unsigned char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	unsigned char *b = malloc(*len + 1);
	assert_int_equal(fread(b, 1, *len, f), *len);
	fclose(f);
	return b;
}

static ino_t
ino_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* Flips one byte of path at offset off (from the end when negative),
 * keeping its size and, with keep_time, its mtime. */
static void
flip_byte(const char *path, long off, int keep_time)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	off_t at = off >= 0 ? off : st.st_size + off;
	unsigned char c;
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	if (keep_time) {
		struct timespec t[2] = { st.st_atim, st.st_mtim };
		assert_int_equal(futimens(fd, t), 0);
	}
	close(fd);
}

static void
test_cache(void **state)
{
	(void)state;
	char dir[600], entry[PATH_MAX + 64];
	snprintf(dir, sizeof dir, "%s", tpath("cache"));
	setenv("FEDMESH_CACHE_DIR", dir, 1);
	write_big(tpath("big.gz"), 0);
	write_labels(tpath("big-l"), 0, 0x801, 1500, 0);
	char *abs = realpath(tpath("big.gz"), NULL);
	assert_non_null(abs);
	FMT_PASS(fmi_cache_path(entry, sizeof entry, abs));
	free(abs);

	/* first load: builds the entry; the rows come from it */
	fmi_dataset *d = load_big();
	ino_t first = ino_of(entry);
	assert_true(first != 0);
	check_keep_rows(d);
	check_big(d, 0);
	fmi_dataset_unref(d);
	check_keep_rows(d = load_big()); /* subsets read only their rows */
	fmi_dataset_unref(d);

	/* the entry is used: with the .gz damaged behind its back (same size,
	 * mtime and inode), loads still give the rows it held */
	write_big(tpath("big.gz"), 0);
	d = load_big(); /* new source inode: the entry is rebuilt */
	fmi_dataset_unref(d);
	first = ino_of(entry);
	flip_byte(tpath("big.gz"), -6, 1); /* its CRC */
	d = load_big();
	check_big(d, 0);
	fmi_dataset_unref(d);
	assert_true(ino_of(entry) == first); /* not rewritten */

	/* stale: the source changed (its mtime moved): the entry is not
	 * trusted, so the damaged .gz is read, and its damage reported */
	struct timespec later[2] = { { 0, UTIME_OMIT }, { 2000000000, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, tpath("big.gz"), later, 0), 0);
	fm_error e;
	int rv = fmi_idx_load(&d, tpath("big.gz"), tpath("big-l"), &e);
	assert_true(rv == FM_EPROTO || rv == FM_EIO);
	assert_non_null(strstr(e.msg, "big.gz"));
	write_big(tpath("big.gz"), 3); /* other pixels */
	d = load_big();
	assert_true(ino_of(entry) != first); /* rebuilt */
	check_big(d, 3);
	fmi_dataset_unref(d);

	/* Damage: found when rows are read (or the header checked), the
	 * entry rebuilt (entries are deterministic: byte for byte the good
	 * one again) and the rows right. */
	size_t glen;
	unsigned char *good = read_file(entry, &glen);
	static const long where[] = { -1, -1, 4096, 40, -2, 0 };
	for (int k = 0; k < 6; k++) {
		if (k == 5) {
			write_bytes(entry, 0, "not a cache entry", 17);
		} else {
			flip_byte(entry, where[k], 1); /* a row, table, header */
		}
		if (k == 4) {
			assert_int_equal(truncate(entry, 10000), 0);
		}
		d = load_big();
		if (k == 1) { /* a subset meets it first */
			check_keep_rows(d);
		}
		check_big(d, 3);
		fmi_dataset_unref(d);
		size_t len;
		unsigned char *now = read_file(entry, &len);
		assert_int_equal(len, glen);
		assert_memory_equal(now, good, glen);
		free(now);
	}
	free(good);

	/* no cache: an unusable folder, or turned off; rows streamed */
	char nodir[700];
	snprintf(nodir, sizeof nodir, "%s/sub", tpath("big-l")); /* a file */
	for (int k = 0; k < 2; k++) {
		setenv("FEDMESH_CACHE_DIR", k ? "" : nodir, 1);
		d = load_big();
		check_keep_rows(d);
		check_big(d, 3);
		fmi_dataset_unref(d);
	}

	/* processes starting together build the entry once */
	setenv("FEDMESH_CACHE_DIR", tpath("cache2"), 1);
	pid_t kids[4];
	for (int k = 0; k < 4; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			fmi_dataset *c;
			fm_error ce;
			int ok = fmi_idx_load(&c, tpath("big.gz"), tpath("big-l"),
			    &ce) == FM_OK && fmi_dataset_load(c, &ce) == FM_OK &&
			    c->x8[784 * 1499 + 3] == (1499 * 13 + 3 + 3) % 251;
			_exit(ok ? 0 : 1);
		}
	}
	for (int k = 0; k < 4; k++) {
		int st;
		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	char cmd[900];
	snprintf(cmd, sizeof cmd, "test $(ls '%s' | grep -c '\\.u8$') = 1 && "
	    "test $(ls '%s' | wc -l) = 2", tpath("cache2"), tpath("cache2"));
	assert_int_equal(system(cmd), 0); /* the entry and its lock */
	unsetenv("FEDMESH_CACHE_DIR");
}

/* Small files are not cached: their rows are streamed. */
static void
test_keep_rows_small(void **state)
{
	(void)state;
	write_images(tpath("k.gz"), 1, 0x803, 41, 4, 5, 0);
	write_labels(tpath("k-l"), 0, 0x801, 41, 0);
	write_images(tpath("k"), 0, 0x803, 41, 4, 5, 0);
	fmi_dataset *d;
	fm_error e;
	for (int plain = 0; plain < 2; plain++) {
		FMT_PASS(fmi_idx_load(&d, tpath(plain ? "k" : "k.gz"),
		    tpath("k-l"), &e));
		check_keep_rows(d);
		fmi_dataset_unref(d);
	}
	/* a float dataset too */
	FMT_PASS(fmi_dataset_new(&d, 9, 2, 2));
	for (size_t i = 0; i < 18; i++) {
		d->x[i] = (float)i;
	}
	for (size_t i = 0; i < 9; i++) {
		d->y[i] = (int32_t)(i % 2);
	}
	fmi_partition *p, *q;
	fmi_dataset *c;
	FMT_PASS(fmi_partition_iid(&p, d, 3, 1, &e));
	FMT_PASS(fmi_dataset_keep_rows(&c, &q, d, p, (const uint8_t[]){ 1, 0,
	    0 }, &e));
	assert_non_null(c->x);
	assert_int_equal(c->n, fmi_partition_size(p, 0));
	assert_rows_equal(c, NULL, d, p->idx, c->n);
	fmi_dataset_unref(c);
	fmi_partition_unref(q);
	fmi_partition_unref(p);
	fmi_dataset_unref(d);
}

/* ---- CSV ------------------------------------------------------------------ */

static void
write_text(const char *name, const char *text)
{
	write_bytes(tpath(name), 0, text, strlen(text));
}

static void
test_csv_good(void **state)
{
	(void)state;
	write_text("h.csv", "label,a,b\r\n2, 0.5 ,-1\r\n0,1e2,3\r\n\n1,0,0\n");
	fmi_dataset *d;
	fm_error e;
	FMT_PASS(fmi_csv_load(&d, tpath("h.csv"), &e));
	assert_int_equal(d->n, 3);
	assert_int_equal(d->dim, 2);
	assert_int_equal(d->nclasses, 3);
	assert_string_equal(d->name, "h.csv");
	const float x[] = { 0.5f, -1, 100, 3, 0, 0 };
	const int32_t y[] = { 2, 0, 1 };
	assert_memory_equal(d->x, x, sizeof x);
	assert_memory_equal(d->y, y, sizeof y);
	fmi_dataset_unref(d);
	write_text("n.csv", "4,1.5\n0,2.5"); /* no header, no final newline */
	FMT_PASS(fmi_csv_load(&d, tpath("n.csv"), &e));
	assert_int_equal(d->n, 2);
	assert_int_equal(d->nclasses, 5);
	assert_true(d->x[1] == 2.5f);
	fmi_dataset_unref(d);
	/* ';' and tab separators: the same rows, header or not (a ';' file
	 * was taken as one header line of unparsable fields before) */
	const char *const seps[][2] = {
		{ "s1.csv", "label;a;b\n2; 0.5 ;-1\n0;1e2;3\n1;0;0\n" },
		{ "s2.csv", "2;0.5;-1\n0;1e2;3\n1;0;0\n" },
		{ "s3.csv", "label\ta\tb\n2\t0.5\t-1\n0\t1e2\t3\n1\t0\t0\n" },
	};
	for (size_t k = 0; k < 3; k++) {
		write_text(seps[k][0], seps[k][1]);
		FMT_PASS(fmi_csv_load(&d, tpath(seps[k][0]), &e));
		assert_int_equal(d->n, 3);
		assert_int_equal(d->dim, 2);
		assert_memory_equal(d->x, x, sizeof x);
		assert_memory_equal(d->y, y, sizeof y);
		fmi_dataset_unref(d);
	}
	/* a given separator is used as given: a ',' file read with ';' */
	FMT_FAIL(fmi_csv_load_sep(&d, tpath("n.csv"), ';', &e), FM_EPROTO);
	assert_non_null(strstr(e.msg, ":2:1: expected a finite number"));
	write_text("s4.csv", "1;0,5\n2;0,25\n"); /* decimal commas */
	FMT_FAIL(fmi_csv_load(&d, tpath("s4.csv"), &e), FM_EPROTO);
	assert_non_null(strstr(e.msg, "'.' as the decimal point"));
}

static void
expect_csv_fail(const char *name, const char *text, int code,
    const char *needle)
{
	write_text(name, text);
	fmi_dataset *d;
	fm_error e = { 0, "" };
	FMT_FAIL(fmi_csv_load(&d, tpath(name), &e), code);
	char want[600];
	snprintf(want, sizeof want, "%s%s", tpath(name), needle);
	if (strstr(e.msg, want) == NULL) {
		print_error("want '%s' in: %s\n", want, e.msg);
		fail();
	}
}

static void
test_csv_bad(void **state)
{
	(void)state;
	expect_csv_fail("b1.csv", "1,2,3\n0,4,x5\n", FM_EPROTO, ":2:5:");
	expect_csv_fail("b2.csv", "h,e\n1,2\n0,,3\n", FM_EPROTO, ":3:3:");
	expect_csv_fail("b3.csv", "1,2,3\n0,4\n", FM_EPROTO, ":2: row has 2");
	expect_csv_fail("b4.csv", "-1,2\n", FM_EPROTO, ":1:1: label");
	expect_csv_fail("b5.csv", "1.5,2\n", FM_EPROTO, ":1:1: label");
	expect_csv_fail("b6.csv", "a,b\n", FM_EPROTO, ": no data rows");
	expect_csv_fail("b7.csv", "", FM_EPROTO, ": no data rows");
	expect_csv_fail("b8.csv", "1\n", FM_EPROTO, ":1: a row needs");
	expect_csv_fail("b9.csv", "0,1\n1,nan\n", FM_EPROTO, ":2:3:");
	expect_csv_fail("b10.csv", "1,1e39\n", FM_ERANGE, ":1: column 2");
	expect_csv_fail("b11.csv", "x,y\nlabel,2\n", FM_EPROTO, ":2:1:");
	fmi_dataset *d;
	fm_error e;
	FMT_FAIL(fmi_csv_load(&d, tpath("missing.csv"), &e), FM_ENOENT);
	assert_non_null(strstr(e.msg, "missing.csv"));
}

/* ---- Synthetic ------------------------------------------------------------ */

static fmi_synthetic_cfg
syn_cfg(double alpha, double beta, uint64_t seed)
{
	fmi_synthetic_cfg c = { alpha, beta, 30, 60, 10, 0, 0, seed };
	return c;
}

static void
count_owner(const fmi_dataset *d, uint32_t *cnt)
{
	for (size_t i = 0; i < d->n; i++) {
		assert_true(d->owner[i] < d->nowners);
		cnt[d->owner[i]]++;
	}
}

static void
check_synthetic(const fmi_dataset *tr, const fmi_dataset *te,
    const fmi_synthetic_cfg *c)
{
	assert_int_equal(tr->dim, c->dim);
	assert_int_equal(tr->nclasses, c->nclasses);
	assert_int_equal(tr->nowners, c->devices);
	assert_non_null(te->owner);
	uint32_t ntr[64] = { 0 }, nte[64] = { 0 }, hist[16] = { 0 };
	count_owner(tr, ntr);
	count_owner(te, nte);
	for (uint32_t k = 0; k < c->devices; k++) {
		uint32_t n = ntr[k] + nte[k];
		assert_true(n >= FMI_MIN(50u, c->max_per_device ?
		    c->max_per_device : 50u));
		assert_true(c->max_per_device == 0 || n <= c->max_per_device);
		assert_int_equal(ntr[k], (uint32_t)(0.9 * n));
	}
	for (size_t i = 0; i < tr->n; i++) {
		assert_true(tr->y[i] >= 0 && (uint32_t)tr->y[i] < c->nclasses);
		hist[tr->y[i]]++;
	}
	uint32_t used = 0;
	for (uint32_t k = 0; k < c->nclasses; k++) {
		used += hist[k] > 0;
	}
	assert_true(used >= 3);
	assert_true(fmi_all_finite(tr->x, tr->n * tr->dim));
}

static void
test_synthetic(void **state)
{
	(void)state;
	fmi_synthetic_cfg c = syn_cfg(1, 1, 5);
	c.max_per_device = 2000;
	fmi_dataset *tr, *te, *tr2, *te2, *tr3, *te3;
	fm_error e;
	FMT_PASS(fmi_synthetic(&tr, &te, &c, &e));
	check_synthetic(tr, te, &c);
	assert_string_equal(tr->name, "synthetic(1,1)-train");
	FMT_PASS(fmi_synthetic(&tr2, &te2, &c, &e));
	assert_int_equal(tr2->n, tr->n);
	assert_memory_equal(tr->x, tr2->x, tr->n * tr->dim * sizeof(float));
	assert_memory_equal(te->y, te2->y, te->n * sizeof(int32_t));
	c.seed = 6;
	FMT_PASS(fmi_synthetic(&tr3, &te3, &c, &e));
	assert_true(tr3->n != tr->n ||
	    memcmp(tr->x, tr3->x, tr->n * tr->dim * sizeof(float)) != 0);
	fmi_dataset_unref(tr);
	fmi_dataset_unref(te);
	fmi_dataset_unref(tr2);
	fmi_dataset_unref(te2);
	fmi_dataset_unref(tr3);
	fmi_dataset_unref(te3);
}

/* With beta = 0 and no cap, the mean of x on a device is near B_k = 0. */
static void
test_synthetic_iid_and_cap(void **state)
{
	(void)state;
	fmi_synthetic_cfg c = syn_cfg(0, 0, 9);
	c.iid = 1;
	c.max_per_device = 80;
	c.devices = 7;
	c.dim = 12;
	c.nclasses = 4;
	fmi_dataset *tr, *te;
	fm_error e;
	FMT_PASS(fmi_synthetic(&tr, &te, &c, &e));
	check_synthetic(tr, te, &c);
	assert_string_equal(te->name, "synthetic-iid-test");
	double m0 = 0; /* feature 0: N(0, 1) in IID mode */
	for (size_t i = 0; i < tr->n; i++) {
		m0 += tr->x[i * tr->dim];
	}
	assert_true(fabs(m0 / (double)tr->n) < 0.25);
	fmi_dataset_unref(tr);
	fmi_dataset_unref(te);
	c.devices = 0;
	FMT_FAIL(fmi_synthetic(&tr, &te, &c, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "devices"));
	c = syn_cfg(-1, 0, 1);
	FMT_FAIL(fmi_synthetic(&tr, &te, &c, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "alpha"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idx_roundtrip),
		cmocka_unit_test(test_idx_scaling),
		cmocka_unit_test(test_idx_truncated),
		cmocka_unit_test(test_idx_bad_header),
		cmocka_unit_test(test_fmnist_missing),
		cmocka_unit_test(test_fmnist_env_dir),
		cmocka_unit_test(test_fmnist_real),
		cmocka_unit_test(test_bytes_gather),
		cmocka_unit_test(test_keep_rows_small),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_csv_good),
		cmocka_unit_test(test_csv_bad),
		cmocka_unit_test(test_synthetic),
		cmocka_unit_test(test_synthetic_iid_and_cap),
	};
	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
