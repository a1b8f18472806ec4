/* SPDX-License-Identifier: MIT */
/* ckfile.c: crash-safe, checksummed files (see ckfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "node/ckfile.h"

int
fmi_ckw_open(fmi_ckw *w, const char *path, fm_error *err)
{
	w->path = path;
	w->bad = w->err = 0;
	w->nbuf = 0;
	w->fd = -1;
	if (snprintf(w->tmp, sizeof w->tmp, "%s.tmp", path) >=
	    (int)sizeof w->tmp) {
		return fm_error_set(err, FM_EINVAL, "path too long: %s", path);
	}
	if (sodium_init() < 0) {
		return fm_error_set(err, FM_ECRYPTO, "libsodium cannot start");
	}
	crypto_generichash_init(&w->h, NULL, 0, FMI_CKFILE_SUM);
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		return fm_error_set(err, FM_EIO, "cannot write %s: %s", w->tmp,
		    strerror(errno));
	}
	return FM_OK;
}

static void
ckw_flush(fmi_ckw *w)
{
	if (w->nbuf > 0 && !w->bad && fmi_write_all(w->fd, w->buf, w->nbuf)) {
		w->bad = 1;
		w->err = errno;
	}
	w->nbuf = 0;
}

void
fmi_ckw_put(fmi_ckw *w, const void *p, size_t n)
{
	const unsigned char *b = p;
	if (n == 0 || w->bad) {
		return;
	}
	crypto_generichash_update(&w->h, b, n);
	while (n > 0) {
		if (w->nbuf == sizeof w->buf) {
			ckw_flush(w);
		}
		size_t k = FMI_MIN(n, sizeof w->buf - w->nbuf);
		if (k == sizeof w->buf) { /* large: straight to the file */
			if (fmi_write_all(w->fd, b, n)) {
				w->bad = 1;
				w->err = errno;
			}
			return;
		}
		memcpy(w->buf + w->nbuf, b, k);
		w->nbuf += k;
		b += k;
		n -= k;
	}
}

void
fmi_ckw_abort(fmi_ckw *w)
{
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
		unlink(w->tmp);
	}
}

int
fmi_ckw_commit(fmi_ckw *w, fm_error *err)
{
	unsigned char sum[FMI_CKFILE_SUM];
	crypto_generichash_final(&w->h, sum, sizeof sum);
	ckw_flush(w);
	if (!w->bad && fmi_write_all(w->fd, sum, sizeof sum)) {
		w->bad = 1;
		w->err = errno;
	}
	if (!w->bad && fsync(w->fd) != 0) {
		w->bad = 1;
		w->err = errno;
	}
	if (close(w->fd) != 0 && !w->bad) {
		w->bad = 1;
		w->err = errno;
	}
	w->fd = -1;
	if (!w->bad && rename(w->tmp, w->path) != 0) {
		w->bad = 1;
		w->err = errno;
	}
	if (w->bad) {
		unlink(w->tmp);
		return fm_error_set(err, FM_EIO, "cannot write %s: %s", w->path,
		    strerror(w->err));
	}
	fmi_fsync_dir(w->path);
	return FM_OK;
}

int
fmi_ckr_open(fmi_ckr *r, const char *path, fm_error *err)
{
	struct stat st;
	memset(r, 0, sizeof *r);
	r->path = path;
	r->f = fopen(path, "rb");
	if (r->f == NULL) {
		int e = errno;
		return fm_error_set(err, e == ENOENT ? FM_ENOENT : FM_EIO,
		    "cannot read %s: %s", path, strerror(e));
	}
	if (fstat(fileno(r->f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(r->f);
		r->f = NULL;
		return fm_error_set(err, FM_EIO, "cannot read %s: not a regular "
		    "file", path);
	}
	if (sodium_init() < 0) {
		fclose(r->f);
		r->f = NULL;
		return fm_error_set(err, FM_ECRYPTO, "libsodium cannot start");
	}
	r->left = (uint64_t)st.st_size;
	crypto_generichash_init(&r->h, NULL, 0, FMI_CKFILE_SUM);
	return FM_OK;
}

int
fmi_ckr_summed(fmi_ckr *r, fm_error *err)
{
	if (r->left < FMI_CKFILE_SUM) {
		r->bad = 1;
		return fm_error_set(err, FM_EPROTO, "%s is truncated (no "
		    "checksum at its end)", r->path);
	}
	r->left -= FMI_CKFILE_SUM;
	r->summed = 1;
	return FM_OK;
}

int
fmi_ckr_get(fmi_ckr *r, void *p, size_t n)
{
	if (r->bad || n > r->left || fread(p, 1, n, r->f) != n) {
		r->bad = 1;
		memset(p, 0, n);
		return -1;
	}
	crypto_generichash_update(&r->h, p, n);
	r->left -= n;
	return 0;
}

uint64_t
fmi_ckr_left(const fmi_ckr *r)
{
	return r->bad ? 0 : r->left;
}

int
fmi_ckr_close(fmi_ckr *r, fm_error *err)
{
	unsigned char want[FMI_CKFILE_SUM], got[FMI_CKFILE_SUM];
	int rv = FM_OK;
	if (r->f == NULL) {
		return FM_OK;
	}
	if (r->bad || r->left != 0) {
		rv = fm_error_set(err, FM_EPROTO, "%s is truncated or has the "
		    "wrong size for what its header says", r->path);
	} else if (r->summed) {
		crypto_generichash_final(&r->h, want, sizeof want);
		if (fread(got, 1, sizeof got, r->f) != sizeof got ||
		    sodium_memcmp(want, got, sizeof got) != 0) {
			rv = fm_error_set(err, FM_EPROTO, "%s is corrupt (its "
			    "checksum does not match its contents)", r->path);
		}
	}
	fclose(r->f);
	r->f = NULL;
	return rv;
}
