/* SPDX-License-Identifier: MIT */
/*
 * idx_cache.c: decompressed copies of .gz IDX image files, one file per
 * source, mapped read-only by every process that needs rows of it (the
 * page cache shares the pages; each process pays only for the pages it
 * touches). Inflating Fashion-MNIST's 47 MB costs about 0.2 s of CPU; a
 * hundred node processes starting at once would spend 20 s on it.
 *
 * An entry: a header (magic, version, the source's identity: path hash,
 * size, mtime, inode; rows and row size; offsets; the header's own hash),
 * a table of one 32-bit hash per row, and the rows, page-aligned. (A
 * damaged table entry shows as its row not matching it, so the table
 * needs no hash of its own.) It is written to a temporary file, fsync'ed and
 * renamed into place under an flock, so readers see a whole entry or
 * none, and concurrent processes build it once. Readers check the header
 * on open and every row they use against the table: a stale entry (the
 * source changed) or a damaged one is rebuilt, never trusted.
 */
#define _GNU_SOURCE /* mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "data/pixels.h"

#define CACHE_MAGIC "FMIDXC1\n"
#define CACHE_VERSION 1u
#define CACHE_PAGE ((uint64_t)4096)

typedef struct cache_hdr {
	char magic[8];
	uint32_t version, hdr_size;
	uint64_t src_size, src_ino;
	int64_t src_sec, src_nsec;
	uint64_t path_hash;
	uint64_t n, dim;
	uint64_t table_off, data_off, file_size;
	uint64_t hdr_hash; /* of every byte before it */
} cache_hdr;

uint64_t
fmi_hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = p;
	const uint64_t m = 0x9e3779b97f4a7c15ULL;
	uint64_t h[4] = { seed ^ 0x243f6a8885a308d3ULL,
		seed ^ 0x13198a2e03707344ULL, seed ^ 0xa4093822299f31d0ULL,
		seed ^ 0x082efa98ec4e6c89ULL };
	size_t i = 0;
	for (; i + 32 <= n; i += 32) { /* four independent lanes */
		for (int k = 0; k < 4; k++) {
			uint64_t w;
			memcpy(&w, b + i + 8 * k, 8);
			h[k] = (h[k] ^ w) * m;
			h[k] ^= h[k] >> 29;
		}
	}
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		h[0] = (h[0] ^ w) * m;
		h[0] ^= h[0] >> 29;
	}
	uint64_t t = 0;
	for (; i < n; i++) {
		t = t << 8 | b[i];
	}
	h[1] = (h[1] ^ t) * m;
	uint64_t x = (uint64_t)n;
	for (int k = 0; k < 4; k++) {
		x = fmi_hash64(x ^ h[k]);
	}
	return x;
}

static uint32_t
row_hash(const uint8_t *row, size_t dim, size_t r)
{
	return (uint32_t)fmi_hash_bytes(row, dim, (uint64_t)r);
}

/* ---- where -------------------------------------------------------------------- */

/* mkdir -p, new folders 0700 (a cache may hold a site's private data). */
static int
mkdir_p(char *path)
{
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p == '/') {
			*p = '\0';
			int bad = mkdir(path, 0700) != 0 && errno != EEXIST;
			*p = '/';
			if (bad) {
				return FM_EIO;
			}
		}
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		return FM_EIO;
	}
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? FM_OK : FM_EIO;
}

static int
cache_dir(char *buf, size_t size)
{
	const char *e = getenv("FEDMESH_CACHE_DIR");
	int n;
	if (e != NULL) {
		if (e[0] == '\0') {
			return FM_ENOENT; /* caching turned off */
		}
		n = snprintf(buf, size, "%s", e);
	} else if ((e = getenv("XDG_CACHE_HOME")) != NULL && e[0] == '/') {
		n = snprintf(buf, size, "%s/fedmesh", e);
	} else if ((e = getenv("HOME")) != NULL && e[0] != '\0') {
		n = snprintf(buf, size, "%s/.cache/fedmesh", e);
	} else {
		return FM_ENOENT;
	}
	if (n <= 0 || (size_t)n >= size) {
		return FM_ENOENT;
	}
	if (mkdir_p(buf) != FM_OK) {
		static int said;
		int why = errno;
		if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED)) {
			fm_log(FM_LOG_WARN, "FM-DATA-CACHE", "cannot create the "
			    "cache folder %s (%s): reading .gz datasets directly, "
			    "which is slower; set FEDMESH_CACHE_DIR to a writable "
			    "folder (or to \"\" to turn the cache off)", buf,
			    strerror(why));
		}
		return FM_ENOENT;
	}
	return FM_OK;
}

int
fmi_cache_path(char *buf, size_t size, const char *path)
{
	char dir[PATH_MAX];
	if (cache_dir(dir, sizeof dir) != FM_OK) {
		return FM_ENOENT;
	}
	const char *base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	int n = snprintf(buf, size, "%s/%s.%016llx.u8", dir, base,
	    (unsigned long long)fmi_hash_bytes(path, strlen(path), 0));
	return n > 0 && (size_t)n < size ? FM_OK : FM_ENOENT;
}

/* ---- checking ------------------------------------------------------------------ */

/* The header an entry for s has, but for its two hashes. */
static void
expect_hdr(const fmi_idx_src *s, cache_hdr *h)
{
	memset(h, 0, sizeof *h);
	memcpy(h->magic, CACHE_MAGIC, 8);
	h->version = CACHE_VERSION;
	h->hdr_size = (uint32_t)sizeof *h;
	h->src_size = s->id.size;
	h->src_ino = s->id.ino;
	h->src_sec = s->id.sec;
	h->src_nsec = s->id.nsec;
	h->path_hash = fmi_hash_bytes(s->path, strlen(s->path), 0);
	h->n = s->n;
	h->dim = s->dim;
	h->table_off = CACHE_PAGE;
	h->data_off = (CACHE_PAGE + 4 * (uint64_t)s->n + CACHE_PAGE - 1) /
	    CACHE_PAGE * CACHE_PAGE;
	h->file_size = h->data_off + (uint64_t)s->n * s->dim;
}

static uint64_t
hdr_hash(const cache_hdr *h)
{
	return fmi_hash_bytes(h, offsetof(cache_hdr, hdr_hash), 0x68647221);
}

/* Checks the entry open on fd: FM_OK, or FM_EPROTO with the reason. */
static int
check_fd(int fd, const fmi_idx_src *s, fm_error *err)
{
	cache_hdr h, want;
	struct stat st;
	expect_hdr(s, &want);
	ssize_t got = pread(fd, &h, sizeof h, 0);
	if (got != (ssize_t)sizeof h || memcmp(h.magic, CACHE_MAGIC, 8) != 0 ||
	    h.version != CACHE_VERSION || h.hdr_size != sizeof h ||
	    hdr_hash(&h) != h.hdr_hash) {
		return fm_error_set(err, FM_EPROTO, "the cache entry %s is "
		    "damaged or of another version (bad header)", s->cache);
	}
	if (h.path_hash != want.path_hash || h.src_size != want.src_size ||
	    h.src_ino != want.src_ino || h.src_sec != want.src_sec ||
	    h.src_nsec != want.src_nsec || h.n != want.n ||
	    h.dim != want.dim) {
		return fm_error_set(err, FM_EPROTO, "the cache entry %s is "
		    "stale: %s changed since it was written", s->cache,
		    s->path);
	}
	if (h.table_off != want.table_off || h.data_off != want.data_off ||
	    h.file_size != want.file_size || fstat(fd, &st) != 0 ||
	    (uint64_t)st.st_size != h.file_size) {
		return fm_error_set(err, FM_EPROTO, "the cache entry %s is "
		    "damaged (its size is wrong)", s->cache);
	}
	return FM_OK;
}

/* FM_OK (valid), FM_ENOENT (none) or FM_EPROTO (stale or damaged). */
static int
cache_check(const fmi_idx_src *s, fm_error *err)
{
	int fd = open(s->cache, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return fm_error_set(err, FM_ENOENT, "no cache entry %s",
		    s->cache);
	}
	int rv = check_fd(fd, s, err);
	close(fd);
	return rv;
}

/* ---- building ------------------------------------------------------------------- */

/* Caching is not possible here: said once per process. */
static void
no_cache(const fmi_idx_src *s, const char *what, int e)
{
	static int said;
	if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED)) {
		fm_log(FM_LOG_WARN, "FM-DATA-CACHE", "cannot %s %s (%s): reading "
		    "%s from the .gz instead, which is slower; set "
		    "FEDMESH_CACHE_DIR to a writable folder", what, s->cache,
		    strerror(e), s->path);
	}
}

typedef struct build_ctx {
	int fd;
	size_t dim;
	uint32_t *table;
	int werr; /* errno of a failed write, else 0 */
} build_ctx;

static int
build_rows(void *ud, size_t first, size_t count, const uint8_t *px)
{
	build_ctx *b = ud;
	for (size_t i = 0; i < count; i++) {
		b->table[first + i] = row_hash(px + i * b->dim, b->dim, first + i);
	}
	if (fmi_write_all(b->fd, px, count * b->dim) != 0) {
		b->werr = errno ? errno : EIO;
		return FM_EIO;
	}
	return FM_OK;
}

/* Writes the header and table, syncs; sets b->werr on failure. */
static void
build_finish(build_ctx *b, cache_hdr *h, size_t n)
{
	size_t tb = n * sizeof *b->table;
	h->hdr_hash = hdr_hash(h);
	if (pwrite(b->fd, b->table, tb, (off_t)h->table_off) != (ssize_t)tb ||
	    pwrite(b->fd, h, sizeof *h, 0) != (ssize_t)sizeof *h ||
	    fsync(b->fd) != 0) {
		b->werr = errno ? errno : EIO;
	}
}

/* With the lock held: decompresses the source into a new entry. */
static int
cache_build(const fmi_idx_src *s, int *nocache, fm_error *err)
{
	size_t len = strlen(s->cache) + 8;
	char *tmp = malloc(len);
	build_ctx b = { -1, s->dim, malloc((size_t)s->n * 4 + 4), 0 };
	if (tmp == NULL || b.table == NULL) {
		free(tmp);
		free(b.table);
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	snprintf(tmp, len, "%s.XXXXXX", s->cache);
	cache_hdr h;
	expect_hdr(s, &h);
	b.fd = mkostemp(tmp, O_CLOEXEC);
	int rv = FM_OK;
	if (b.fd < 0) {
		b.werr = errno;
	} else if (lseek(b.fd, (off_t)h.data_off, SEEK_SET) < 0) {
		b.werr = errno;
	} else {
		double t0 = fmi_now();
		rv = fmi_idx_stream(s, build_rows, &b, err);
		if (rv == FM_OK) {
			build_finish(&b, &h, s->n);
		}
		if (rv == FM_OK && b.werr == 0) {
			fm_log(FM_LOG_INFO, "FM-DATA-CACHE", "decompressed %s "
			    "into the cache (%s, %.2f s; later loads map it)",
			    s->path, s->cache, fmi_now() - t0);
		}
	}
	if (b.fd >= 0) {
		close(b.fd);
	}
	if (rv == FM_OK && b.werr == 0 && rename(tmp, s->cache) != 0) {
		b.werr = errno;
	}
	if (rv == FM_OK && b.werr == 0) {
		fmi_fsync_dir(s->cache);
	} else if (b.fd >= 0) {
		unlink(tmp);
	}
	if (b.werr != 0) { /* the source may be fine: the caller streams it */
		no_cache(s, "write the cache entry", b.werr);
		*nocache = 1;
		rv = FM_OK;
	}
	free(tmp);
	free(b.table);
	return rv;
}

int
fmi_cache_ensure(const fmi_idx_src *s, int *nocache, fm_error *err)
{
	fm_error why = { 0, "" };
	*nocache = 0;
	if (cache_check(s, &why) == FM_OK) {
		return FM_OK;
	}
	size_t len = strlen(s->cache) + 6;
	char *lock = malloc(len);
	if (lock == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	snprintf(lock, len, "%s.lock", s->cache);
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(lock);
	if (fd < 0) {
		no_cache(s, "create the lock of", errno);
		*nocache = 1;
		return FM_OK;
	}
	while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
	}
	/* another process may have built it while this one waited */
	int rv = cache_check(s, &why);
	if (rv != FM_OK) {
		if (rv == FM_EPROTO) {
			fm_log(FM_LOG_INFO, "FM-DATA-CACHE", "%s; rebuilding it",
			    why.msg);
		}
		rv = cache_build(s, nocache, err);
	}
	close(fd); /* and the lock with it */
	return rv;
}

/* ---- reading ----------------------------------------------------------------------- */

int
fmi_cache_map(const fmi_idx_src *s, void **map, size_t *len,
    const uint8_t **data, fm_error *err)
{
	*map = NULL;
	int fd = open(s->cache, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return fm_error_set(err, FM_EPROTO, "cannot open the cache entry "
		    "%s: %s", s->cache, strerror(errno));
	}
	int rv = check_fd(fd, s, err);
	if (rv == FM_OK) {
		cache_hdr h;
		expect_hdr(s, &h);
		*len = (size_t)h.file_size;
		/* every page is read (checked, then trained on): one pass in
		 * the kernel instead of a fault per 64 KB */
		void *m = mmap(NULL, *len, PROT_READ, MAP_SHARED | MAP_POPULATE,
		    fd, 0);
		if (m == MAP_FAILED) {
			rv = fm_error_set(err, FM_EIO, "cannot map the cache "
			    "entry %s: %s", s->cache, strerror(errno));
		} else {
			*map = m;
			*data = (const uint8_t *)m + h.data_off;
		}
	}
	close(fd);
	return rv;
}

static int
damaged_row(const fmi_idx_src *s, size_t r, fm_error *err)
{
	return fm_error_set(err, FM_EPROTO, "the cache entry %s is damaged "
	    "(row %zu does not match its hash)", s->cache, r);
}

int
fmi_cache_verify(const fmi_idx_src *s, const void *map, fm_error *err)
{
	const cache_hdr *h = map;
	const uint32_t *table = (const uint32_t *)((const char *)map +
	    h->table_off);
	const uint8_t *data = (const uint8_t *)map + h->data_off;
	for (size_t r = 0; r < s->n; r++) {
		if (row_hash(data + r * s->dim, s->dim, r) != table[r]) {
			return damaged_row(s, r, err);
		}
	}
	return FM_OK;
}

/* pread all n bytes at off; FM_OK or an error naming the entry. */
static int
read_at(int fd, const fmi_idx_src *s, void *buf, size_t n, uint64_t off,
    fm_error *err)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = pread(fd, (char *)buf + got, n - got,
		    (off_t)(off + got));
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			return fm_error_set(err, FM_EPROTO, "cannot read the "
			    "cache entry %s: %s", s->cache,
			    r < 0 ? strerror(errno) : "it is shorter than its "
			    "header says");
		}
		got += (size_t)r;
	}
	return FM_OK;
}

int
fmi_cache_read_rows(const fmi_idx_src *s, const uint64_t *want, size_t n,
    uint8_t *out, fm_error *err)
{
	enum { TB = 4096 }; /* table entries read at a time */
	uint32_t tb[TB];
	size_t tb_first = SIZE_MAX;
	int fd = open(s->cache, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return fm_error_set(err, FM_EPROTO, "cannot open the cache entry "
		    "%s: %s", s->cache, strerror(errno));
	}
	cache_hdr h;
	expect_hdr(s, &h);
	int rv = check_fd(fd, s, err);
	for (size_t i = 0; rv == FM_OK && i < n; i++) {
		size_t r = (size_t)(want[i] >> 32);
		uint8_t *dst = out + (size_t)(want[i] & 0xffffffffu) * s->dim;
		if (tb_first == SIZE_MAX || r < tb_first || r >= tb_first + TB) {
			tb_first = r / TB * TB;
			size_t k = FMI_MIN((size_t)TB, s->n - tb_first);
			rv = read_at(fd, s, tb, k * sizeof *tb,
			    h.table_off + tb_first * sizeof *tb, err);
		}
		rv = rv ? rv : read_at(fd, s, dst, s->dim,
		    h.data_off + (uint64_t)r * s->dim, err);
		if (rv == FM_OK && row_hash(dst, s->dim, r) != tb[r - tb_first]) {
			rv = damaged_row(s, r, err);
		}
	}
	close(fd);
	return rv;
}

void
fmi_cache_discard(const fmi_idx_src *s)
{
	if (s->cache != NULL) {
		(void)unlink(s->cache);
	}
}
