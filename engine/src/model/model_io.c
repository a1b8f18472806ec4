/* SPDX-License-Identifier: MIT */
/* model_io.c: versioned, checksummed model files (format in model_io.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/core.h"
#include "model/model_io.h"

#define MIO_MAGIC "FMMODEL"   /* 7 characters and the NUL: 8 bytes */
#define MIO_MAGIC_LEN 8
#define MIO_KIND_MLP 1u
#define MIO_KIND_LOGREG 2u
#define MIO_KIND_CNN 3u
#define MIO_CNN_SHAPE 6u
#define MIO_MAX_SHAPE (FMI_MAX_LAYERS + 1)
#define MIO_HDR_FIXED 36u /* header bytes besides the shape values */
#define MIO_HDR_MAX (MIO_HDR_FIXED + 4 * MIO_MAX_SHAPE)
#define MIO_CHUNK 16384   /* floats per read or write */
#define MIO_HINT "model files are written by model:save(path) or " \
	"result:save_model(path)"

/* ---- little-endian fields and checksums ----------------------------------- */

static void
put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint32_t
crc_add(uint32_t crc, const void *buf, size_t n)
{
	return (uint32_t)crc32(crc, buf, (uInt)n); /* n <= MIO_CHUNK floats */
}

/* Float bytes in file order (little-endian) <-> host order, in place. */
static void
to_le(float *x, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	for (size_t i = 0; i < n; i++) {
		uint32_t v;
		memcpy(&v, &x[i], 4);
		v = __builtin_bswap32(v);
		memcpy(&x[i], &v, 4);
	}
#else
	(void)x;
	(void)n;
#endif
}

/* ---- architectures -------------------------------------------------------- */

void
fmi_arch_describe(const fmi_arch *a, char *buf, size_t n)
{
	if (fmi_arch_is_cnn(a)) {
		const fmi_cnn_shape *s = &a->cnn;
		snprintf(buf, n, "cnn 1x%ux%u-%uc%u-p2-%uc%u-p2-%u-%u", s->side,
		    s->side, s->ch[0], s->kernel, s->ch[1], s->kernel, s->hidden,
		    s->classes);
		return;
	}
	size_t k = (size_t)snprintf(buf, n, "%s ", a->kind);
	for (uint32_t i = 0; i <= a->nlayers && k < n; i++) {
		k += (size_t)snprintf(buf + k, n - k, i ? "-%u" : "%u",
		    a->widths[i]);
	}
}

int
fmi_arch_same(const fmi_arch *a, const fmi_arch *b)
{
	if (strcmp(a->kind, b->kind) != 0 || a->nlayers != b->nlayers ||
	    a->nparams != b->nparams) {
		return 0;
	}
	if (fmi_arch_is_cnn(a)) {
		return memcmp(&a->cnn, &b->cnn, sizeof a->cnn) == 0;
	}
	return memcmp(a->widths, b->widths, (a->nlayers + 1) *
	    sizeof *a->widths) == 0;
}

/* The kind code and shape values of a; 0 when the format cannot hold it. */
static uint32_t
arch_shape(const fmi_arch *a, uint32_t *shape, uint32_t *n)
{
	if (fmi_arch_is_cnn(a)) {
		const fmi_cnn_shape *s = &a->cnn;
		uint32_t v[MIO_CNN_SHAPE] = { s->side, s->kernel, s->ch[0],
			s->ch[1], s->hidden, s->classes };
		memcpy(shape, v, sizeof v);
		*n = MIO_CNN_SHAPE;
		return MIO_KIND_CNN;
	}
	if (a->nlayers < 1 || a->nlayers > FMI_MAX_LAYERS) {
		return 0;
	}
	*n = a->nlayers + 1;
	memcpy(shape, a->widths, *n * sizeof *shape);
	if (strcmp(a->kind, "mlp") == 0) {
		return MIO_KIND_MLP;
	}
	return strcmp(a->kind, "logreg") == 0 && a->nlayers == 1
	    ? MIO_KIND_LOGREG : 0;
}

/* Rebuilds the architecture a header describes. */
static int
arch_from_shape(fmi_arch *a, uint32_t kind, const uint32_t *shape,
    uint32_t n, fm_error *err)
{
	if (kind == MIO_KIND_CNN) {
		if (n != MIO_CNN_SHAPE) {
			return fm_error_set(err, FM_EPROTO, "a cnn has %u shape "
			    "values, not %u", MIO_CNN_SHAPE, n);
		}
		fmi_cnn_shape s = { shape[0], shape[1], { shape[2], shape[3] },
			shape[4], shape[5] };
		return fmi_arch_cnn(a, &s, err);
	}
	if (kind != MIO_KIND_MLP && kind != MIO_KIND_LOGREG) {
		return fm_error_set(err, FM_EPROTO, "unknown model kind %u (this "
		    "fedmesh knows 1 mlp, 2 logreg, 3 cnn)", kind);
	}
	if (kind == MIO_KIND_LOGREG && n != 2) {
		return fm_error_set(err, FM_EPROTO, "a logreg has 2 widths "
		    "(inputs, classes), not %u", n);
	}
	int rv = fmi_arch_mlp(a, shape, n, err);
	if (rv == FM_OK) {
		fmi_strlcpy(a->kind, kind == MIO_KIND_MLP ? "mlp" : "logreg",
		    sizeof a->kind);
	}
	return rv;
}

size_t
fmi_model_file_size(const fmi_arch *a)
{
	uint32_t shape[MIO_MAX_SHAPE], n = 0;
	if (arch_shape(a, shape, &n) == 0) {
		return 0;
	}
	return MIO_HDR_FIXED + 4 * (size_t)n + 4 * a->nparams + 4;
}

/* ---- writing -------------------------------------------------------------- */

/* The header of a into h; its length. */
static size_t
encode_header(const fmi_arch *a, uint8_t *h, uint32_t kind,
    const uint32_t *shape, uint32_t n)
{
	size_t len = MIO_HDR_FIXED + 4 * (size_t)n;
	memset(h, 0, len);
	memcpy(h, MIO_MAGIC, MIO_MAGIC_LEN);
	put_u32(h + 8, FMI_MODEL_FORMAT_VERSION);
	put_u32(h + 12, (uint32_t)len);
	put_u32(h + 16, kind);
	put_u32(h + 20, n);
	for (uint32_t i = 0; i < n; i++) {
		put_u32(h + 24 + 4 * i, shape[i]);
	}
	put_u64(h + 24 + 4 * n, a->nparams);
	put_u32(h + len - 4, crc_add(0, h, len - 4));
	return len;
}

/* Header, parameters and their checksum into fd. */
static int
write_model(int fd, const uint8_t *h, size_t hlen, const float *params,
    size_t np)
{
	float *buf = malloc(MIO_CHUNK * sizeof *buf);
	uint32_t crc = 0;
	int bad = buf == NULL || fmi_write_all(fd, h, hlen);
	for (size_t i = 0; !bad && i < np; i += MIO_CHUNK) {
		size_t k = FMI_MIN((size_t)MIO_CHUNK, np - i);
		memcpy(buf, params + i, k * sizeof *buf);
		to_le(buf, k);
		crc = crc_add(crc, buf, k * sizeof *buf);
		bad = fmi_write_all(fd, buf, k * sizeof *buf);
	}
	free(buf);
	uint8_t tail[4];
	put_u32(tail, crc);
	return bad || fmi_write_all(fd, tail, sizeof tail) || fsync(fd) != 0;
}

int
fmi_model_save(const char *path, const fmi_arch *a, const float *params,
    fm_error *err)
{
	static atomic_uint counter;
	uint32_t shape[MIO_MAX_SHAPE], n = 0;
	uint8_t h[MIO_HDR_MAX];
	char tmp[4096];
	uint32_t kind = arch_shape(a, shape, &n);
	if (kind == 0 || a->nparams == 0 || params == NULL) {
		return fm_error_set(err, FM_EINVAL, "cannot save model %s: kind "
		    "'%s' with %u layers has no model file encoding", path,
		    a->kind, a->nlayers);
	}
	size_t hlen = encode_header(a, h, kind, shape, n);
	if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld-%u", path, (long)getpid(),
	        atomic_fetch_add(&counter, 1)) >= (int)sizeof tmp) {
		return fm_error_set(err, FM_EINVAL, "model path too long: %.64s...",
		    path);
	}
	errno = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	int bad = fd < 0 || write_model(fd, h, hlen, params, a->nparams);
	int e = errno;
	if (fd >= 0 && close(fd) != 0 && !bad) {
		bad = 1;
		e = errno;
	}
	if (!bad && rename(tmp, path) != 0) {
		bad = 1;
		e = errno;
	}
	if (bad) {
		if (fd >= 0) {
			unlink(tmp);
		}
		return fm_error_set(err, FM_EIO, "cannot write model file %s: %s "
		    "(any existing file there is unchanged)", path,
		    e ? strerror(e) : "out of memory");
	}
	fmi_fsync_dir(path);
	return FM_OK;
}

/* ---- reading -------------------------------------------------------------- */

typedef struct mio_hdr {
	uint32_t version, hsize, kind, n;
	uint32_t shape[MIO_MAX_SHAPE];
	uint64_t nparams;
} mio_hdr;

static int
truncated(const char *path, unsigned long long want, long long got,
    const char *what, fm_error *err)
{
	return fm_error_set(err, FM_EPROTO, "model file %s is truncated: "
	    "expected %s%llu bytes, got %lld; it was cut short (an interrupted "
	    "save, copy or download): copy or save it again", path, what, want,
	    got);
}

static int
damaged_header(const char *path, const char *why, fm_error *err)
{
	return fm_error_set(err, FM_EPROTO, "model file %s has a damaged "
	    "header (%s); it was changed after it was written: copy or save it "
	    "again", path, why);
}

/* Magic, version, sizes and the header checksum. */
static int
read_header(FILE *f, const char *path, long long size, mio_hdr *hd,
    fm_error *err)
{
	uint8_t h[MIO_HDR_MAX];
	size_t got = fread(h, 1, 24, f);
	if (got == 0) {
		return fm_error_set(err, FM_EPROTO, "model file %s is empty: it "
		    "was truncated to 0 bytes (an interrupted save, copy or "
		    "download?): copy or save it again", path);
	}
	if (memcmp(h, MIO_MAGIC, FMI_MIN(got, (size_t)MIO_MAGIC_LEN)) != 0) {
		return fm_error_set(err, FM_EPROTO, "%s is not a fedmesh model "
		    "file (it does not start with the FMMODEL magic); %s", path,
		    MIO_HINT);
	}
	if (got < 24) {
		return truncated(path, 24, size, "at least ", err);
	}
	hd->version = get_u32(h + 8);
	if (hd->version > FMI_MODEL_FORMAT_VERSION) {
		return fm_error_set(err, FM_EVERSION, "model file %s has format "
		    "version %u, newer than this fedmesh %s reads (version %u); "
		    "load it with a newer fedmesh", path, hd->version,
		    fm_version(), FMI_MODEL_FORMAT_VERSION);
	}
	hd->hsize = get_u32(h + 12);
	hd->kind = get_u32(h + 16);
	hd->n = get_u32(h + 20);
	if (hd->version == 0 || hd->n < 1 || hd->n > MIO_MAX_SHAPE ||
	    hd->hsize != MIO_HDR_FIXED + 4 * hd->n) {
		return damaged_header(path, hd->version == 0 ? "format version 0"
		    : "impossible header size", err);
	}
	if (size < (long long)hd->hsize) {
		return truncated(path, hd->hsize, size, "at least ", err);
	}
	if (fread(h + 24, 1, hd->hsize - 24, f) != hd->hsize - 24) {
		return fm_error_set(err, FM_EIO, "cannot read model file %s: %s",
		    path, strerror(errno));
	}
	uint32_t want = get_u32(h + hd->hsize - 4);
	if (crc_add(0, h, hd->hsize - 4) != want) {
		return damaged_header(path, "checksum mismatch", err);
	}
	for (uint32_t i = 0; i < hd->n; i++) {
		hd->shape[i] = get_u32(h + 24 + 4 * i);
	}
	hd->nparams = get_u64(h + 24 + 4 * hd->n);
	return FM_OK;
}

/* The file's size against the header's; the architecture against
 * nparams. */
static int
check_body(const char *path, long long size, const mio_hdr *hd,
    fmi_arch *a, fm_error *err)
{
	char desc[160];
	if (hd->nparams == 0 || hd->nparams > ((uint64_t)1 << 40)) {
		return damaged_header(path, "impossible parameter count", err);
	}
	unsigned long long want = hd->hsize + 4 * hd->nparams + 4;
	if ((unsigned long long)size < want) {
		return truncated(path, want, size, "", err);
	}
	if ((unsigned long long)size > want) {
		return fm_error_set(err, FM_EPROTO, "model file %s is longer than "
		    "its header says: expected %llu bytes, got %lld (data was "
		    "appended to it): copy or save it again", path, want, size);
	}
	fm_error e;
	if (arch_from_shape(a, hd->kind, hd->shape, hd->n, &e) != FM_OK) {
		return fm_error_set(err, FM_EPROTO, "model file %s describes an "
		    "impossible architecture: %s; it was not written by "
		    "fedmesh: %s", path, e.msg, MIO_HINT);
	}
	if (a->nparams != hd->nparams) {
		fmi_arch_describe(a, desc, sizeof desc);
		return fm_error_set(err, FM_EPROTO, "model file %s is "
		    "inconsistent: its architecture %s has %zu parameters but "
		    "the file holds %llu; it was not written by fedmesh: %s",
		    path, desc, a->nparams, (unsigned long long)hd->nparams,
		    MIO_HINT);
	}
	return FM_OK;
}

/* The parameters and their checksum. */
static int
read_params(FILE *f, const char *path, float *p, size_t np, fm_error *err)
{
	uint32_t crc = 0;
	uint8_t tail[4];
	for (size_t i = 0; i < np; i += MIO_CHUNK) {
		size_t k = FMI_MIN((size_t)MIO_CHUNK, np - i);
		if (fread(p + i, sizeof *p, k, f) != k) {
			return fm_error_set(err, FM_EIO, "cannot read model file "
			    "%s: %s", path, ferror(f) ? strerror(errno)
			                              : "it shrank while read");
		}
		crc = crc_add(crc, p + i, k * sizeof *p);
	}
	if (fread(tail, 1, 4, f) != 4) {
		return fm_error_set(err, FM_EIO, "cannot read model file %s: "
		    "the checksum is missing", path);
	}
	if (get_u32(tail) != crc) {
		return fm_error_set(err, FM_EPROTO, "model file %s is damaged: "
		    "the parameters' checksum does not match (stored %08x, "
		    "computed %08x); it was changed after it was written: copy "
		    "or save it again", path, get_u32(tail), crc);
	}
	to_le(p, np);
	return FM_OK;
}

int
fmi_model_load(const char *path, fmi_arch *a, float **params, fm_error *err)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (f == NULL) {
		int e = errno;
		return fm_error_set(err, e == ENOENT ? FM_ENOENT : FM_EIO,
		    "cannot open model file %s: %s%s", path, strerror(e),
		    e == ENOENT ? " (check the path; " MIO_HINT ")" : "");
	}
	int rv = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? FM_OK
	    : fm_error_set(err, FM_EIO, "cannot read model file %s: not a "
	        "regular file", path);
	long long size = (long long)st.st_size;
	mio_hdr hd;
	fmi_arch arch;
	float *p = NULL;
	if (rv == FM_OK) {
		rv = read_header(f, path, size, &hd, err);
	}
	if (rv == FM_OK) {
		rv = check_body(path, size, &hd, &arch, err);
	}
	if (rv == FM_OK && (p = malloc(arch.nparams * sizeof *p)) == NULL) {
		rv = fm_error_set(err, FM_ENOMEM, "model file %s: no memory for "
		    "%zu parameters", path, arch.nparams);
	}
	if (rv == FM_OK) {
		rv = read_params(f, path, p, arch.nparams, err);
	}
	fclose(f);
	if (rv != FM_OK) {
		free(p);
		return rv;
	}
	*a = arch;
	*params = p;
	return FM_OK;
}
