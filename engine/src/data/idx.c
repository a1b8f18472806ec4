/* SPDX-License-Identifier: MIT */
/*
 * idx.c: IDX (MNIST format) image/label loader, gzip or plain, and
 * Fashion-MNIST. Labels are read at once; images become the rows of a
 * lazy byte dataset, read when needed: mapped from a plain file or from
 * the decompressed cache (idx_cache.c), else streamed from the .gz.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/core.h"
#include "data/data.h"
#include "data/pixels.h"

#define IDX_MAGIC_IMAGES 0x00000803u /* ubyte, 3 dims */
#define IDX_MAGIC_LABELS 0x00000801u /* ubyte, 1 dim */
#define IDX_CHUNK ((size_t)1 << 16)
/* zlib's buffers: large to stream pixels, small for headers and labels
 * (every node reads those; untouched memory costs no page faults) */
#define IDX_BIG_BUF (1u << 17)
#define IDX_SMALL_BUF (1u << 13)
#define IDX_MAX_PIXELS ((uint64_t)1 << 24) /* per image */
#define FMNIST_HINT "install it with `apt-get install dataset-fashion-mnist`"

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int
idx_open(gzFile *f, const char *path, unsigned bufsize, fm_error *err)
{
	errno = 0;
	*f = gzopen(path, "rb");
	if (*f == NULL) {
		int e = errno;
		return fm_error_set(err, e == ENOENT ? FM_ENOENT : FM_EIO,
		    "cannot open %s: %s", path,
		    e ? strerror(e) : "out of memory");
	}
	gzbuffer(*f, bufsize);
	return FM_OK;
}

/* Reads up to n bytes; *got says how many arrived before end of file. */
static int
idx_read(gzFile f, const char *path, void *buf, size_t n, size_t *got,
    fm_error *err)
{
	*got = 0;
	while (*got < n) {
		unsigned want = (unsigned)FMI_MIN(n - *got, IDX_CHUNK);
		int r = gzread(f, (char *)buf + *got, want);
		if (r <= 0) {
			break;
		}
		*got += (size_t)r;
	}
	int zerr;
	const char *msg = gzerror(f, &zerr);
	if (zerr == Z_BUF_ERROR) {
		return fm_error_set(err, FM_EPROTO, "%s is truncated: the gzip "
		    "stream ends early; the file is incomplete, download it "
		    "again", path);
	}
	if (zerr != Z_OK && zerr != Z_STREAM_END) {
		return fm_error_set(err, FM_EIO, "cannot read %s: %s", path,
		    zerr == Z_ERRNO ? strerror(errno) : msg);
	}
	return FM_OK;
}

static int
idx_read_full(gzFile f, const char *path, void *buf, size_t n,
    const char *what, fm_error *err)
{
	size_t got;
	int rv = idx_read(f, path, buf, n, &got, err);
	if (rv == FM_OK && got < n) {
		rv = fm_error_set(err, FM_EPROTO, "%s is truncated: expected %zu "
		    "more bytes of %s, found %zu; the file is incomplete, "
		    "download it again", path, n, what, got);
	}
	return rv;
}

static int
idx_expect_eof(gzFile f, const char *path, fm_error *err)
{
	unsigned char extra;
	size_t got;
	int rv = idx_read(f, path, &extra, 1, &got, err);
	if (rv == FM_OK && got != 0) {
		rv = fm_error_set(err, FM_EPROTO, "%s has trailing bytes after "
		    "the data its header announces; it is not a valid IDX "
		    "file", path);
	}
	return rv;
}

static int
idx_check_magic(const char *path, uint32_t magic, uint32_t want,
    fm_error *err)
{
	if (magic == want) {
		return FM_OK;
	}
	const char *hint = "";
	if (want == IDX_MAGIC_IMAGES && magic == IDX_MAGIC_LABELS) {
		hint = " (it looks like a label file: are images and labels "
		       "swapped?)";
	} else if (want == IDX_MAGIC_LABELS && magic == IDX_MAGIC_IMAGES) {
		hint = " (it looks like an image file: are images and labels "
		       "swapped?)";
	}
	return fm_error_set(err, FM_EPROTO, "%s: bad IDX magic 0x%08x, "
	    "expected 0x%08x (unsigned-byte %s)%s", path, magic, want,
	    want == IDX_MAGIC_IMAGES ? "images" : "labels", hint);
}

/* Reads the image header: count and pixels per image. */
static int
idx_image_header(gzFile f, const char *path, uint32_t *n, size_t *dim,
    fm_error *err)
{
	unsigned char h[16];
	int rv = idx_read_full(f, path, h, 4, "header", err);
	rv = rv ? rv : idx_check_magic(path, be32(h), IDX_MAGIC_IMAGES, err);
	rv = rv ? rv : idx_read_full(f, path, h + 4, 12, "header", err);
	if (rv != FM_OK) {
		return rv;
	}
	uint32_t rows = be32(h + 8), cols = be32(h + 12);
	*n = be32(h + 4);
	if (*n == 0 || rows == 0 || cols == 0 ||
	    (uint64_t)rows * cols > IDX_MAX_PIXELS) {
		return fm_error_set(err, FM_EPROTO, "%s: bad image dimensions "
		    "%u x %u x %u (count x rows x cols); each must be >= 1 and "
		    "rows x cols <= %llu", path, *n, rows, cols,
		    (unsigned long long)IDX_MAX_PIXELS);
	}
	*dim = (size_t)rows * cols;
	return FM_OK;
}

static int
idx_label_header(gzFile f, const char *path, uint32_t *n, fm_error *err)
{
	unsigned char h[8];
	int rv = idx_read_full(f, path, h, 4, "header", err);
	rv = rv ? rv : idx_check_magic(path, be32(h), IDX_MAGIC_LABELS, err);
	rv = rv ? rv : idx_read_full(f, path, h + 4, 4, "header", err);
	if (rv == FM_OK) {
		*n = be32(h + 4);
	}
	return rv;
}

/* Reads n labels into d->y and sets d->nclasses = max label + 1. */
static int
idx_read_labels(gzFile f, const char *path, fmi_dataset *d, fm_error *err)
{
	unsigned char *buf = malloc(d->n);
	if (buf == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory reading %s",
		    path);
	}
	int rv = idx_read_full(f, path, buf, d->n, "labels", err);
	uint32_t maxl = 0;
	for (size_t i = 0; rv == FM_OK && i < d->n; i++) {
		d->y[i] = buf[i]; /* unsigned bytes: always < 256 */
		maxl = FMI_MAX(maxl, (uint32_t)buf[i]);
	}
	d->nclasses = maxl + 1;
	free(buf);
	return rv;
}

static void
idx_name(fmi_dataset *d, const char *images)
{
	const char *base = strrchr(images, '/');
	snprintf(d->name, sizeof d->name, "%s", base ? base + 1 : images);
}

/* ---- image sources ------------------------------------------------------- */

static void
file_id_of(const struct stat *st, fmi_file_id *id)
{
	id->size = (uint64_t)st->st_size;
	id->ino = (uint64_t)st->st_ino;
	id->sec = (int64_t)st->st_mtim.tv_sec;
	id->nsec = (int64_t)st->st_mtim.tv_nsec;
}

static int
file_id_eq(const fmi_file_id *a, const fmi_file_id *b)
{
	return a->size == b->size && a->ino == b->ino && a->sec == b->sec &&
	    a->nsec == b->nsec;
}

void
fmi_idx_src_free(fmi_idx_src *s)
{
	if (s != NULL) {
		free(s->path);
		free(s->cache);
		free(s);
	}
}

/* The file has not changed since it was opened. */
static int
src_unchanged(const fmi_idx_src *s, fm_error *err)
{
	struct stat st;
	fmi_file_id now;
	if (stat(s->path, &st) != 0) {
		return fm_error_set(err, errno == ENOENT ? FM_ENOENT : FM_EIO,
		    "cannot read %s: %s", s->path, strerror(errno));
	}
	file_id_of(&st, &now);
	if (!file_id_eq(&now, &s->id)) {
		return fm_error_set(err, FM_EPROTO, "%s changed after its "
		    "dataset was loaded (size, time or inode differ); load the "
		    "data again", s->path);
	}
	return FM_OK;
}

int
fmi_idx_src_open(fmi_idx_src **out, const char *path, fm_error *err)
{
	gzFile f = NULL;
	int rv = idx_open(&f, path, IDX_SMALL_BUF, err); /* a header */
	if (rv != FM_OK) {
		return rv;
	}
	fmi_idx_src *s = calloc(1, sizeof *s);
	char *abs = realpath(path, NULL);
	if (s == NULL || (s->path = strdup(abs ? abs : path)) == NULL) {
		rv = fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	free(abs);
	struct stat st;
	if (rv == FM_OK && stat(s->path, &st) != 0) {
		rv = fm_error_set(err, FM_EIO, "cannot stat %s: %s", path,
		    strerror(errno));
	}
	if (rv == FM_OK) {
		file_id_of(&st, &s->id);
		rv = idx_image_header(f, path, &s->n, &s->dim, err);
	}
	if (rv == FM_OK) {
		s->gz = !gzdirect(f);
	}
	gzclose(f);
	if (rv != FM_OK) {
		fmi_idx_src_free(s);
		return rv;
	}
	*out = s;
	return FM_OK;
}

static int
idx_truncated(const fmi_idx_src *s, size_t done, fm_error *err)
{
	return fm_error_set(err, FM_EPROTO, "%s is truncated: expected %zu "
	    "bytes of pixel data (%u images of %zu pixels), found %zu; the file "
	    "is incomplete, download it again", s->path, (size_t)s->n * s->dim,
	    s->n, s->dim, done);
}

int
fmi_idx_stream(const fmi_idx_src *s, fmi_rows_fn fn, void *ud, fm_error *err)
{
	gzFile f = NULL;
	uint32_t n = 0;
	size_t dim = 0;
	int rv = src_unchanged(s, err);
	rv = rv ? rv : idx_open(&f, s->path, IDX_BIG_BUF, err);
	rv = rv ? rv : idx_image_header(f, s->path, &n, &dim, err);
	if (rv == FM_OK && (n != s->n || dim != s->dim)) {
		rv = fm_error_set(err, FM_EPROTO, "%s changed after its dataset "
		    "was loaded (%u images of %zu pixels, now %u of %zu); load "
		    "the data again", s->path, s->n, s->dim, n, dim);
	}
	size_t per = FMI_MAX((size_t)1, IDX_CHUNK / s->dim);
	unsigned char *buf = rv == FM_OK ? malloc(per * s->dim) : NULL;
	if (rv == FM_OK && buf == NULL) {
		rv = fm_error_set(err, FM_ENOMEM, "out of memory reading %s",
		    s->path);
	}
	for (size_t r = 0; rv == FM_OK && r < s->n; r += per) {
		size_t k = FMI_MIN(per, s->n - r), got;
		rv = idx_read(f, s->path, buf, k * s->dim, &got, err);
		if (rv == FM_OK && got < k * s->dim) {
			rv = idx_truncated(s, r * s->dim + got, err);
		}
		if (rv == FM_OK && fn != NULL) {
			rv = fn(ud, r, k, buf);
		}
	}
	rv = rv ? rv : idx_expect_eof(f, s->path, err);
	free(buf);
	if (f != NULL) {
		gzclose(f);
	}
	return rv;
}

int
fmi_idx_src_check(fmi_idx_src *s, fm_error *err)
{
	size_t bytes = (size_t)s->n * s->dim;
	if (!s->gz) { /* plain: its size says it all */
		size_t have = s->id.size > 16 ? (size_t)s->id.size - 16 : 0;
		if (have < bytes) {
			return idx_truncated(s, have, err);
		}
		if (have > bytes) {
			return fm_error_set(err, FM_EPROTO, "%s has trailing bytes "
			    "after the data its header announces; it is not a "
			    "valid IDX file", s->path);
		}
		return FM_OK;
	}
	char path[PATH_MAX + 64];
	if (bytes >= FMI_IDX_CACHE_MIN &&
	    fmi_cache_path(path, sizeof path, s->path) == FM_OK &&
	    (s->cache = strdup(path)) != NULL) {
		int nocache = 0;
		int rv = fmi_cache_ensure(s, &nocache, err);
		if (rv != FM_OK || !nocache) {
			return rv;
		}
		free(s->cache);
		s->cache = NULL;
	}
	return fmi_idx_stream(s, NULL, NULL, err);
}

/* Maps the plain image file; *data is its first pixel. */
static int
map_plain(const fmi_idx_src *s, void **map, size_t *len, const uint8_t **data,
    fm_error *err)
{
	int rv = src_unchanged(s, err);
	FILE *f = rv == FM_OK ? fopen(s->path, "rb") : NULL;
	if (rv == FM_OK && f == NULL) {
		rv = fm_error_set(err, FM_EIO, "cannot open %s: %s", s->path,
		    strerror(errno));
	}
	if (rv == FM_OK) {
		*len = 16 + (size_t)s->n * s->dim;
		*map = mmap(NULL, *len, PROT_READ, MAP_SHARED | MAP_POPULATE,
		    fileno(f), 0);
		if (*map == MAP_FAILED) {
			*map = NULL;
			rv = fm_error_set(err, FM_EIO, "cannot map %s: %s",
			    s->path, strerror(errno));
		} else {
			*data = (const uint8_t *)*map + 16;
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	return rv;
}

/* Reads rows want[0..n) (row << 32 | output position, ascending) of the
 * plain image file. */
static int
read_plain(const fmi_idx_src *s, const uint64_t *want, size_t n,
    uint8_t *out, fm_error *err)
{
	int rv = src_unchanged(s, err);
	FILE *f = rv == FM_OK ? fopen(s->path, "rb") : NULL;
	if (rv == FM_OK && f == NULL) {
		rv = fm_error_set(err, FM_EIO, "cannot open %s: %s", s->path,
		    strerror(errno));
	}
	for (size_t i = 0; rv == FM_OK && i < n; i++) {
		size_t r = (size_t)(want[i] >> 32);
		uint8_t *dst = out + (size_t)(want[i] & 0xffffffffu) * s->dim;
		if (pread(fileno(f), dst, s->dim, (off_t)(16 + r * s->dim)) !=
		    (ssize_t)s->dim) {
			rv = fm_error_set(err, FM_EIO, "cannot read %s: %s",
			    s->path, strerror(errno));
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	return rv;
}

/* Runs op on the cache entry (made valid first); a damaged entry is
 * discarded and rebuilt once. FM_ENOENT: there is no cache (any more):
 * stream the .gz. */
typedef int (*cache_op)(fmi_idx_src *s, void *ud, fm_error *err);
static int
with_cache(fmi_idx_src *s, cache_op op, void *ud, fm_error *err)
{
	for (int attempt = 0; s->cache != NULL; attempt++) {
		int nocache = 0, rv = fmi_cache_ensure(s, &nocache, err);
		if (rv != FM_OK) {
			return rv;
		}
		if (nocache) {
			break;
		}
		if ((rv = op(s, ud, err)) != FM_EPROTO || attempt > 0) {
			return rv;
		}
		fm_log(FM_LOG_WARN, "FM-DATA-CACHE", "%s; rebuilding it",
		    err != NULL ? err->msg : "a damaged cache entry");
		fmi_cache_discard(s);
	}
	free(s->cache);
	s->cache = NULL;
	return FM_ENOENT;
}

typedef struct map_ctx {
	void *map;
	size_t len;
	const uint8_t *data;
} map_ctx;

static int
op_map_all(fmi_idx_src *s, void *ud, fm_error *err)
{
	map_ctx *m = ud;
	int rv = fmi_cache_map(s, &m->map, &m->len, &m->data, err);
	if (rv == FM_OK && (rv = fmi_cache_verify(s, m->map, err)) != FM_OK) {
		munmap(m->map, m->len);
		m->map = NULL;
	}
	return rv;
}

typedef struct copy_ctx {
	size_t dim;
	uint8_t *out;
} copy_ctx;

static int
copy_all(void *ud, size_t first, size_t count, const uint8_t *px)
{
	copy_ctx *c = ud;
	memcpy(c->out + first * c->dim, px, count * c->dim);
	return FM_OK;
}

int
fmi_idx_src_load(fmi_idx_src *s, fmi_pixels *px, const uint8_t **x8,
    fm_error *err)
{
	map_ctx m = { NULL, 0, NULL };
	int rv = !s->gz ? map_plain(s, &m.map, &m.len, &m.data, err)
	                : with_cache(s, op_map_all, &m, err);
	if (rv == FM_OK) {
		px->map = m.map;
		px->maplen = m.len;
		*x8 = m.data;
		return FM_OK;
	}
	if (rv != FM_ENOENT) {
		return rv;
	}
	copy_ctx c = { s->dim, malloc((size_t)s->n * s->dim + 1) };
	if (c.out == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for the %u "
		    "images of %s", s->n, s->path);
	}
	rv = fmi_idx_stream(s, copy_all, &c, err);
	if (rv != FM_OK) {
		free(c.out);
		return rv;
	}
	px->own = c.out;
	*x8 = c.out;
	return FM_OK;
}

/* Rows to read: want[] (row << 32 | output position), ascending. */
typedef struct pick_ctx {
	size_t dim;
	const uint64_t *want;
	size_t n, at;
	uint8_t *out;
} pick_ctx;

static int
pick_rows(void *ud, size_t first, size_t count, const uint8_t *px)
{
	pick_ctx *p = ud;
	for (; p->at < p->n && (p->want[p->at] >> 32) < first + count; p->at++) {
		size_t r = (size_t)(p->want[p->at] >> 32);
		size_t pos = (size_t)(p->want[p->at] & 0xffffffffu);
		memcpy(p->out + pos * p->dim, px + (r - first) * p->dim, p->dim);
	}
	return FM_OK;
}

static int
op_read_rows(fmi_idx_src *s, void *ud, fm_error *err)
{
	pick_ctx *p = ud;
	return fmi_cache_read_rows(s, p->want, p->n, p->out, err);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

int
fmi_idx_src_rows(fmi_idx_src *s, const uint32_t *rows, size_t n,
    uint8_t *out, fm_error *err)
{
	if (n > UINT32_MAX) {
		return fm_error_set(err, FM_EINVAL, "%zu rows are too many", n);
	}
	uint64_t *want = malloc(n * sizeof *want + 1);
	if (want == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		want[i] = (uint64_t)rows[i] << 32 | i;
	}
	qsort(want, n, sizeof *want, cmp_u64); /* read in file order */
	pick_ctx p = { s->dim, want, n, 0, out };
	int rv = !s->gz ? read_plain(s, want, n, out, err)
	                : with_cache(s, op_read_rows, &p, err);
	if (rv == FM_ENOENT) {
		rv = fmi_idx_stream(s, pick_rows, &p, err);
	}
	free(want);
	return rv;
}

/* ---- IDX pairs ------------------------------------------------------------- */

/* Takes src (freed on failure). */
static int
idx_load_files(fmi_dataset **out, fmi_idx_src *src, gzFile fl,
    const char *images, const char *labels, fm_error *err)
{
	uint32_t nl = 0;
	int rv = idx_label_header(fl, labels, &nl, err);
	if (rv == FM_OK && src->n != nl) {
		rv = fm_error_set(err, FM_EPROTO, "%s has %u images but %s has "
		    "%u labels; pass matching image and label files", images,
		    src->n, labels, nl);
	}
	rv = rv ? rv : fmi_idx_src_check(src, err);
	if (rv != FM_OK) {
		fmi_idx_src_free(src);
		return rv;
	}
	fmi_dataset *d = NULL;
	if (fmi_dataset_new_lazy(&d, src, 255.0f) != FM_OK) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for %u "
		    "labels from %s", nl, labels);
	}
	rv = idx_read_labels(fl, labels, d, err);
	rv = rv ? rv : idx_expect_eof(fl, labels, err);
	if (rv != FM_OK) {
		fmi_dataset_unref(d);
		return rv;
	}
	idx_name(d, images);
	*out = d;
	return FM_OK;
}

int
fmi_idx_load(fmi_dataset **out, const char *images, const char *labels,
    fm_error *err)
{
	if (out == NULL || images == NULL || labels == NULL) {
		return fm_error_set(err, FM_EINVAL, "fmi_idx_load: out, images "
		    "and labels must not be NULL");
	}
	fmi_idx_src *src = NULL;
	gzFile fl = NULL;
	int rv = fmi_idx_src_open(&src, images, err);
	if (rv == FM_OK && (rv = idx_open(&fl, labels, IDX_SMALL_BUF, err)) !=
	    FM_OK) {
		fmi_idx_src_free(src);
	}
	if (rv == FM_OK) {
		rv = idx_load_files(out, src, fl, images, labels, err);
	}
	if (fl != NULL) {
		gzclose(fl);
	}
	return rv;
}

/* ---- Fashion-MNIST ----------------------------------------------------- */

/* Finds dir/base.gz or dir/base. */
static int
fmnist_path(char *buf, size_t size, const char *dir, const char *src,
    const char *base, fm_error *err)
{
	snprintf(buf, size, "%s/%s.gz", dir, base);
	if (access(buf, F_OK) == 0) {
		return FM_OK;
	}
	snprintf(buf, size, "%s/%s", dir, base);
	if (access(buf, F_OK) == 0) {
		return FM_OK;
	}
	return fm_error_set(err, FM_ENOENT, "Fashion-MNIST not found: neither "
	    "%s/%s.gz nor %s/%s exists (directory from %s); " FMNIST_HINT
	    ", or point FEDMESH_FMNIST_DIR (or the dir argument) at a "
	    "directory holding the four IDX files", dir, base, dir, base, src);
}

/* Loads one split and names it; appends a reinstall hint on failure. */
static int
fmnist_split(fmi_dataset **out, const char *dir, const char *src,
    const char *prefix, const char *name, fm_error *err)
{
	char img[4096], lab[4096], base[64];
	snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
	int rv = fmnist_path(img, sizeof img, dir, src, base, err);
	snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
	rv = rv ? rv : fmnist_path(lab, sizeof lab, dir, src, base, err);
	rv = rv ? rv : fmi_idx_load(out, img, lab, err);
	if (rv == FM_OK) {
		snprintf((*out)->name, sizeof (*out)->name, "%s", name);
	} else if (rv != FM_ENOENT && err != NULL) {
		size_t len = strlen(err->msg);
		snprintf(err->msg + len, sizeof err->msg - len, " (reinstall "
		    "with `apt-get install --reinstall dataset-fashion-mnist`)");
	}
	return rv;
}

int
fmi_fmnist_load(fmi_dataset **train, fmi_dataset **test, const char *dir,
    fm_error *err)
{
	const char *src = "the dir argument";
	if (dir == NULL || dir[0] == '\0') {
		dir = getenv("FEDMESH_FMNIST_DIR");
		src = "FEDMESH_FMNIST_DIR";
	}
	if (dir == NULL || dir[0] == '\0') {
		dir = FMI_FMNIST_DEFAULT_DIR;
		src = "the default";
	}
	fmi_dataset *tr = NULL, *te = NULL;
	int rv = fmnist_split(&tr, dir, src, "train", "fashion-mnist-train", err);
	rv = rv ? rv : fmnist_split(&te, dir, src, "t10k", "fashion-mnist-test",
	    err);
	if (rv == FM_OK && tr->dim != te->dim) {
		rv = fm_error_set(err, FM_EPROTO, "Fashion-MNIST in %s: train "
		    "images have %zu pixels but test images %zu", dir, tr->dim,
		    te->dim);
	}
	if (rv != FM_OK) {
		fmi_dataset_unref(tr);
		fmi_dataset_unref(te);
		return rv;
	}
	/* Both splits share one label space. */
	tr->nclasses = te->nclasses = FMI_MAX(tr->nclasses, te->nclasses);
	*train = tr;
	*test = te;
	return FM_OK;
}
