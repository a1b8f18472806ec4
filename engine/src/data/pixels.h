/* SPDX-License-Identifier: MIT */
/*
 * pixels.h (private to engine/src/data): byte storage of datasets and
 * the IDX image files it is loaded from, directly or through the cache.
 */
#ifndef FMI_DATA_PIXELS_H
#define FMI_DATA_PIXELS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "data/data.h"

/* What a source file was when its dataset was loaded. */
typedef struct fmi_file_id {
	uint64_t size, ino;
	int64_t sec, nsec; /* mtime */
} fmi_file_id;

/* An IDX image file a lazy dataset reads its rows from. */
typedef struct fmi_idx_src {
	char *path;  /* the image file (absolute when realpath() worked) */
	fmi_file_id id;
	int gz;      /* compressed (else mapped directly) */
	uint32_t n;
	size_t dim;  /* rows x cols */
	char *cache; /* the cache file, or NULL: rows are streamed from the
	              * .gz (no cache folder, a small file, a write failure) */
} fmi_idx_src;

/* Byte storage: x8 lives in own, or in a read-only mapping; src is where
 * a lazy dataset's rows come from (NULL once there is none to load). */
struct fmi_pixels {
	pthread_mutex_t mtx; /* serialises loading */
	uint8_t *own;
	void *map;
	size_t maplen;
	fmi_idx_src *src;
	float lut[256]; /* lut[b] = (float)b / div: what gathering reads */
};

/* dataset.c: a lazy byte dataset of src's n rows of dim bytes (features
 * byte / div), labels uninitialised; takes src (freed on failure too). */
int fmi_dataset_new_lazy(fmi_dataset **out, fmi_idx_src *src, float div);

/* idx.c: the source's rows. */
/* Opens the image file and reads its header (n, dim); on FM_OK
 * *out is a source to free with fmi_idx_src_free. */
int fmi_idx_src_open(fmi_idx_src **out, const char *path, fm_error *err);
/* Checks the whole image file: its size when plain; a .gz through the
 * cache when it can (a valid entry, or one built now), else by
 * decompressing it once. */
int fmi_idx_src_check(fmi_idx_src *s, fm_error *err);
void fmi_idx_src_free(fmi_idx_src *s);
/* Every row, for byte storage px: maps the plain file or the cache
 * (checking every row's hash), else decodes into px->own. *x8 is set. */
int fmi_idx_src_load(fmi_idx_src *s, fmi_pixels *px, const uint8_t **x8,
    fm_error *err);
/* Rows rows[0..n) (each < s->n) into out[n x dim], reading only those
 * (through a mapping) or streaming the .gz once. */
int fmi_idx_src_rows(fmi_idx_src *s, const uint32_t *rows, size_t n,
    uint8_t *out, fm_error *err);
/* Streams the pixel rows of the .gz: fn(ud, first, count, bytes) for
 * consecutive runs of whole rows (fn may be NULL: only checks the file);
 * truncation, trailing bytes and a changed header are errors. */
typedef int (*fmi_rows_fn)(void *ud, size_t first, size_t count,
    const uint8_t *px);
int fmi_idx_stream(const fmi_idx_src *s, fmi_rows_fn fn, void *ud,
    fm_error *err);

/* idx_cache.c: decompressed copies of .gz image files. */
/* The cache file for source path (absolute) in buf, or FM_ENOENT when
 * caching is off (empty FEDMESH_CACHE_DIR, no HOME); creates the folder. */
int fmi_cache_path(char *buf, size_t size, const char *path);
/* Makes sure s->cache is a valid entry: checks it, else builds it from
 * the source under a lock (one process builds, the others wait and use
 * it). Source errors are returned as such; when the entry cannot be
 * written (read-only folder, full disk) *nocache is set and FM_OK
 * returned if the source itself was fine. */
int fmi_cache_ensure(const fmi_idx_src *s, int *nocache, fm_error *err);
/* Maps a valid entry read-only, every page at once (for a reader of all
 * rows); *data is the first row's pixels. */
int fmi_cache_map(const fmi_idx_src *s, void **map, size_t *len,
    const uint8_t **data, fm_error *err);
/* Checks every row of a mapped entry against its stored hash; FM_EPROTO
 * names the first bad row. */
int fmi_cache_verify(const fmi_idx_src *s, const void *map, fm_error *err);
/* Reads rows want[0..n) (row << 32 | output position, ascending rows)
 * into out with pread, checking each against its hash: page faults cost
 * far more than reads on virtual machines, and a host reads only its
 * clients' rows. */
int fmi_cache_read_rows(const fmi_idx_src *s, const uint64_t *want,
    size_t n, uint8_t *out, fm_error *err);
/* Removes a damaged entry so the next fmi_cache_ensure rebuilds it. */
void fmi_cache_discard(const fmi_idx_src *s);

/* A 64-bit hash of n bytes (4 lanes of multiply-xor; not cryptographic:
 * it finds damage, not forgery). */
uint64_t fmi_hash_bytes(const void *p, size_t n, uint64_t seed);

#endif /* FMI_DATA_PIXELS_H */
