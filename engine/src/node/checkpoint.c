/* SPDX-License-Identifier: MIT */
/*
 * checkpoint.c: atomic, versioned, checksummed server checkpoints: the
 * global model, every round's metrics, and sections for the rest of what
 * a resumed run needs (server_ckpt.c fills them: plugin states, the other
 * aggregators' models, the simulation's client state).
 *
 * Format 2 (host byte order; a checkpoint is read back on the machine
 * that wrote it, or one of the same build):
 *   header   magic "FMCK", version 2, header size, size of one
 *            fmi_round_metrics, seed, nparams, nrounds, nsections
 *   float    params[nparams]                       the global model
 *   metrics  rounds[nrounds] (without per-client detail)
 *   nsections x { type, node, kind, reserved (u32 each), name[64],
 *            len (u64), len bytes }
 *   BLAKE2b-256 of everything before it
 * Format 1 (fedmesh before plugin state was saved) is the same up to the
 * metrics, with no sections and no checksum; it is still read (the
 * caller decides what a model-only checkpoint means for its run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/ckfile.h"
#include "node/node.h"

#define CKPT_MAGIC 0x4b43464dU /* "FMCK" */
#define CKPT_VERSION 2
#define CKPT_MAX_SECTIONS (1u << 20)

typedef struct ckpt_header {
	uint32_t magic, version, header_size, metrics_size;
	uint64_t seed, nparams;
	uint32_t nrounds, nsections; /* format 1: nsections is 0 */
} ckpt_header;

typedef struct ckpt_sec_head {
	uint32_t type, node, kind, reserved;
	char name[FMI_CK_NAME_MAX];
	uint64_t len;
} ckpt_sec_head;

int
fmi_checkpoint_write(const char *path, uint64_t seed, const float *params,
    size_t nparams, const fmi_round_metrics *rounds, uint32_t nrounds,
    const fmi_ck_section *sec, uint32_t nsec, fm_error *err)
{
	fmi_ckw w;
	ckpt_header h = { CKPT_MAGIC, CKPT_VERSION, sizeof h,
		sizeof(fmi_round_metrics), seed, nparams, nrounds, nsec };
	int rv = fmi_ckw_open(&w, path, err);
	if (rv != FM_OK) {
		return fm_error_set(err, rv, "cannot write checkpoint: %s",
		    err != NULL ? err->msg : fm_strerror(rv));
	}
	fmi_ckw_put(&w, &h, sizeof h);
	fmi_ckw_put(&w, params, nparams * sizeof *params);
	for (uint32_t i = 0; i < nrounds; i++) {
		fmi_round_metrics m = rounds[i];
		m.clients = NULL; /* the per-client detail is not saved */
		m.nclients = 0;
		fmi_ckw_put(&w, &m, sizeof m);
	}
	for (uint32_t i = 0; i < nsec; i++) {
		ckpt_sec_head sh;
		memset(&sh, 0, sizeof sh);
		sh.type = sec[i].type;
		sh.node = sec[i].node;
		sh.kind = sec[i].kind;
		fmi_strlcpy(sh.name, sec[i].name, sizeof sh.name);
		sh.len = sec[i].len;
		fmi_ckw_put(&w, &sh, sizeof sh);
		fmi_ckw_put(&w, sec[i].data, sec[i].len);
	}
	rv = fmi_ckw_commit(&w, err);
	return rv == FM_OK ? FM_OK : fm_error_set(err, rv, "cannot write "
	    "checkpoint: %s", err != NULL ? err->msg : fm_strerror(rv));
}

static int
ckpt_check(const ckpt_header *h, const char *path, uint64_t seed,
    size_t nparams, uint32_t max_rounds, fm_error *err)
{
	if (h->magic != CKPT_MAGIC) {
		return fm_error_set(err, FM_EPROTO, "%s is not a fedmesh "
		    "checkpoint", path);
	}
	if (h->version < 1 || h->version > CKPT_VERSION) {
		return fm_error_set(err, FM_EVERSION, "%s has checkpoint format "
		    "%u; this fedmesh reads formats 1 to %u (a newer fedmesh "
		    "wrote it?): resume with that version, or delete it to start "
		    "over", path, h->version, CKPT_VERSION);
	}
	if (h->header_size != sizeof *h ||
	    h->metrics_size != sizeof(fmi_round_metrics)) {
		return fm_error_set(err, FM_EVERSION, "%s was written by another "
		    "fedmesh build (header of %u bytes, round metrics of %u; "
		    "this one: %zu and %zu); resume with that build, or delete "
		    "it to start over", path, h->header_size, h->metrics_size,
		    sizeof *h, sizeof(fmi_round_metrics));
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
	if ((h->version == 1 && h->nsections != 0) ||
	    h->nsections > CKPT_MAX_SECTIONS) {
		return fm_error_set(err, FM_EPROTO, "%s is corrupt (%u "
		    "sections)", path, h->nsections);
	}
	return FM_OK;
}

/* The sections of a format-2 file, each into its own buffer. */
static int
ckpt_read_sections(fmi_ckr *r, fmi_ck *ck, uint32_t n, fm_error *err)
{
	if (n == 0) {
		return FM_OK;
	}
	if ((ck->sec = calloc(n, sizeof *ck->sec)) == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < n; i++) {
		ckpt_sec_head sh;
		fmi_ck_section *s = &ck->sec[i];
		if (fmi_ckr_get(r, &sh, sizeof sh) != 0 ||
		    sh.len > fmi_ckr_left(r) ||
		    memchr(sh.name, '\0', sizeof sh.name) == NULL) {
			return fm_error_set(err, FM_EPROTO, "%s is truncated or "
			    "corrupt (section %u of %u)", r->path, i + 1, n);
		}
		s->type = sh.type;
		s->node = sh.node;
		s->kind = sh.kind;
		memcpy(s->name, sh.name, sizeof s->name);
		s->len = (size_t)sh.len;
		if ((s->data = malloc(s->len ? s->len : 1)) == NULL) {
			return fm_error_set(err, FM_ENOMEM, "out of memory for "
			    "%zu bytes of checkpoint", s->len);
		}
		ck->nsections = i + 1;
		(void)fmi_ckr_get(r, s->data, s->len);
	}
	return FM_OK;
}

int
fmi_checkpoint_read(const char *path, uint64_t seed, float *params,
    size_t nparams, fmi_round_metrics *rounds, uint32_t max_rounds,
    fmi_ck *ck, fm_error *err)
{
	fmi_ckr r;
	ckpt_header h;
	memset(ck, 0, sizeof *ck);
	int rv = fmi_ckr_open(&r, path, err);
	if (rv != FM_OK) {
		return fm_error_set(err, rv, "cannot read checkpoint: %s",
		    err != NULL ? err->msg : fm_strerror(rv));
	}
	rv = fmi_ckr_get(&r, &h, sizeof h) == 0
	    ? ckpt_check(&h, path, seed, nparams, max_rounds, err)
	    : fm_error_set(err, FM_EPROTO, "%s is not a fedmesh checkpoint "
	        "(shorter than a header)", path);
	if (rv == FM_OK && h.version >= 2) {
		rv = fmi_ckr_summed(&r, err);
	}
	if (rv == FM_OK) {
		(void)fmi_ckr_get(&r, params, nparams * sizeof *params);
		for (uint32_t i = 0; i < h.nrounds; i++) {
			(void)fmi_ckr_get(&r, &rounds[i], sizeof rounds[i]);
			rounds[i].clients = NULL; /* never saved */
			rounds[i].nclients = 0;
		}
		rv = ckpt_read_sections(&r, ck, h.nsections, err);
	}
	int crv = fmi_ckr_close(&r, rv == FM_OK ? err : NULL);
	rv = rv != FM_OK ? rv : crv;
	if (rv != FM_OK) {
		fmi_ck_free(ck);
		return rv;
	}
	ck->version = h.version;
	ck->nrounds = h.nrounds;
	return FM_OK;
}

const fmi_ck_section *
fmi_ck_find(fmi_ck *ck, uint32_t type, uint32_t node, uint32_t kind)
{
	/* sections are usually looked up in the order they were written */
	for (uint32_t k = 0; k < ck->nsections; k++) {
		uint32_t i = (ck->cursor + k) % ck->nsections;
		const fmi_ck_section *s = &ck->sec[i];
		if (s->type == type && s->node == node && s->kind == kind) {
			ck->cursor = i + 1;
			return s;
		}
	}
	return NULL;
}

void
fmi_ck_free(fmi_ck *ck)
{
	for (uint32_t i = 0; ck->sec != NULL && i < ck->nsections; i++) {
		free(ck->sec[i].data);
	}
	free(ck->sec);
	memset(ck, 0, sizeof *ck);
}
