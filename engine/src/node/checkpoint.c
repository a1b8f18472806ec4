/* SPDX-License-Identifier: MIT */
/* checkpoint.c: atomic, versioned server checkpoints (model + round metrics). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "node/node.h"

#define CKPT_MAGIC 0x4b43464dU /* "FMCK" */
#define CKPT_VERSION 1

/* Fixed-size little-endian-host header; the format version covers the
 * layout of the header and of fmi_round_metrics. */
typedef struct ckpt_header {
	uint32_t magic, version, header_size, metrics_size;
	uint64_t seed, nparams;
	uint32_t nrounds, reserved;
} ckpt_header;

/* The rounds without their per-client detail (a pointer; not saved). */
static int
write_rounds(int fd, const fmi_round_metrics *rounds, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		fmi_round_metrics m = rounds[i];
		m.clients = NULL;
		m.nclients = 0;
		if (fmi_write_all(fd, &m, sizeof m)) {
			return -1;
		}
	}
	return 0;
}

int
fmi_checkpoint_write(const char *path, uint64_t seed, const float *params,
    size_t nparams, const fmi_round_metrics *rounds, uint32_t nrounds,
    fm_error *err)
{
	char tmp[4096];
	ckpt_header h = { CKPT_MAGIC, CKPT_VERSION, sizeof h,
		sizeof(fmi_round_metrics), seed, nparams, nrounds, 0 };
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		return fm_error_set(err, FM_EINVAL, "checkpoint path too long");
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int bad = fd < 0 || fmi_write_all(fd, &h, sizeof h) ||
	    fmi_write_all(fd, params, nparams * sizeof *params) ||
	    write_rounds(fd, rounds, nrounds) || fsync(fd) != 0;
	if (fd >= 0 && close(fd) != 0) {
		bad = 1;
	}
	if (bad || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return fm_error_set(err, FM_EIO, "cannot write checkpoint %s: %s",
		    path, strerror(e));
	}
	fmi_fsync_dir(path);
	return FM_OK;
}

static int
ckpt_check(const ckpt_header *h, const char *path, uint64_t seed,
    size_t nparams, uint32_t max_rounds, fm_error *err)
{
	if (h->magic != CKPT_MAGIC) {
		return fm_error_set(err, FM_EPROTO, "%s is not a fedmesh "
		    "checkpoint", path);
	}
	if (h->version != CKPT_VERSION || h->header_size != sizeof *h ||
	    h->metrics_size != sizeof(fmi_round_metrics)) {
		return fm_error_set(err, FM_EVERSION, "%s was written by another "
		    "fedmesh version (format %u, this one reads %u); delete it to "
		    "start over", path, h->version, CKPT_VERSION);
	}
	if (h->seed != seed || h->nparams != nparams) {
		return fm_error_set(err, FM_EINVAL, "%s belongs to another run "
		    "(seed %llu, %llu parameters; this run: seed %llu, %zu); "
		    "delete it or point the checkpoint elsewhere", path,
		    (unsigned long long)h->seed,
		    (unsigned long long)h->nparams,
		    (unsigned long long)seed, nparams);
	}
	if (h->nrounds > max_rounds) {
		return fm_error_set(err, FM_EINVAL, "%s holds %u rounds, more "
		    "than this run's %u", path, h->nrounds, max_rounds);
	}
	return FM_OK;
}

int
fmi_checkpoint_read(const char *path, uint64_t seed, float *params,
    size_t nparams, fmi_round_metrics *rounds, uint32_t max_rounds,
    uint32_t *nrounds, fm_error *err)
{
	FILE *f = fopen(path, "rb");
	ckpt_header h = { 0, 0, 0, 0, 0, 0, 0, 0 };
	if (f == NULL) {
		return fm_error_set(err, errno == ENOENT ? FM_ENOENT : FM_EIO,
		    "cannot read checkpoint %s: %s", path, strerror(errno));
	}
	int rv = fread(&h, sizeof h, 1, f) == 1
	    ? ckpt_check(&h, path, seed, nparams, max_rounds, err)
	    : fm_error_set(err, FM_EPROTO, "%s: truncated header", path);
	if (rv == FM_OK &&
	    (fread(params, sizeof *params, nparams, f) != nparams ||
	        fread(rounds, sizeof *rounds, h.nrounds, f) != h.nrounds ||
	        fgetc(f) != EOF)) {
		rv = fm_error_set(err, FM_EPROTO, "%s: wrong size for %llu "
		    "parameters and %u rounds", path,
		    (unsigned long long)nparams, h.nrounds);
	}
	fclose(f);
	for (uint32_t i = 0; i < h.nrounds && i < max_rounds; i++) {
		rounds[i].clients = NULL; /* never saved */
		rounds[i].nclients = 0;
	}
	if (rv == FM_OK) {
		*nrounds = h.nrounds;
	}
	return rv;
}
