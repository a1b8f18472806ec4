/* SPDX-License-Identifier: MIT */
/* idx.c: IDX (MNIST format) image/label loader, gzip or plain, and Fashion-MNIST. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/core.h"
#include "data/data.h"

#define IDX_MAGIC_IMAGES 0x00000803u /* ubyte, 3 dims */
#define IDX_MAGIC_LABELS 0x00000801u /* ubyte, 1 dim */
#define IDX_CHUNK ((size_t)1 << 16)
#define IDX_MAX_PIXELS ((uint64_t)1 << 24) /* per image */
#define FMNIST_HINT "install it with `apt-get install dataset-fashion-mnist`"

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int
idx_open(gzFile *f, const char *path, fm_error *err)
{
	errno = 0;
	*f = gzopen(path, "rb");
	if (*f == NULL) {
		int e = errno;
		return fm_error_set(err, e == ENOENT ? FM_ENOENT : FM_EIO,
		    "cannot open %s: %s", path,
		    e ? strerror(e) : "out of memory");
	}
	gzbuffer(*f, 1u << 17);
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

/* Streams the pixels into d->x, scaled to [0, 1]. */
static int
idx_read_pixels(gzFile f, const char *path, fmi_dataset *d, fm_error *err)
{
	float lut[256];
	for (int v = 0; v < 256; v++) {
		lut[v] = (float)v / 255.0f;
	}
	unsigned char *buf = malloc(IDX_CHUNK);
	if (buf == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory reading %s",
		    path);
	}
	size_t total = d->n * d->dim, done = 0;
	int rv = FM_OK;
	while (rv == FM_OK && done < total) {
		size_t m = FMI_MIN(IDX_CHUNK, total - done), got;
		rv = idx_read(f, path, buf, m, &got, err);
		for (size_t i = 0; i < got; i++) {
			d->x[done + i] = lut[buf[i]];
		}
		done += got;
		if (rv == FM_OK && got < m) {
			rv = fm_error_set(err, FM_EPROTO, "%s is truncated: "
			    "expected %zu bytes of pixel data (%zu images of %zu "
			    "pixels), found %zu; the file is incomplete, download "
			    "it again", path, total, d->n, d->dim, done);
		}
	}
	free(buf);
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

static int
idx_load_files(fmi_dataset **out, gzFile fi, gzFile fl, const char *images,
    const char *labels, fm_error *err)
{
	uint32_t ni = 0, nl = 0;
	size_t dim = 0;
	int rv = idx_image_header(fi, images, &ni, &dim, err);
	if (rv == FM_OK) {
		rv = idx_label_header(fl, labels, &nl, err);
	}
	if (rv == FM_OK && ni != nl) {
		rv = fm_error_set(err, FM_EPROTO, "%s has %u images but %s has "
		    "%u labels; pass matching image and label files", images,
		    ni, labels, nl);
	}
	if (rv != FM_OK) {
		return rv;
	}
	fmi_dataset *d;
	if (fmi_dataset_new(&d, ni, dim, 0) != FM_OK) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for %u "
		    "images of %zu pixels from %s", ni, dim, images);
	}
	rv = idx_read_pixels(fi, images, d, err);
	rv = rv ? rv : idx_expect_eof(fi, images, err);
	rv = rv ? rv : idx_read_labels(fl, labels, d, err);
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
	gzFile fi = NULL, fl = NULL;
	int rv = idx_open(&fi, images, err);
	if (rv == FM_OK) {
		rv = idx_open(&fl, labels, err);
	}
	if (rv == FM_OK) {
		rv = idx_load_files(out, fi, fl, images, labels, err);
	}
	if (fi != NULL) {
		gzclose(fi);
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
