/* SPDX-License-Identifier: MIT */
/*
 * ckfile.h: crash-safe, checksummed files (server checkpoints, client
 * hosts' state files).
 *
 * A writer writes path.tmp, appends a BLAKE2b-256 checksum of everything
 * written, fsyncs it, renames it over path and fsyncs the folder: a crash
 * leaves the previous file or the new one, never a torn one, and a failed
 * write leaves the previous file as it was.
 *
 * A reader streams a file and, at the end, checks that every byte was
 * read and that the checksum matches: a truncated, extended or corrupted
 * file is refused (FM_EPROTO) with a message naming it.
 */
#ifndef FMI_NODE_CKFILE_H
#define FMI_NODE_CKFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <sodium.h>

#include "fedmesh/fedmesh.h"

#define FMI_CKFILE_SUM 32 /* checksum bytes at the end of the file */

typedef struct fmi_ckw {
	const char *path;
	char tmp[4096];
	int fd, bad, err;
	crypto_generichash_state h;
	unsigned char buf[1 << 15];
	size_t nbuf;
} fmi_ckw;

/* Starts writing path (through path.tmp). */
int fmi_ckw_open(fmi_ckw *w, const char *path, fm_error *err);
/* Appends n bytes (errors are kept for commit). */
void fmi_ckw_put(fmi_ckw *w, const void *p, size_t n);
/* Checksum, fsync, rename, fsync of the folder; on failure path.tmp is
 * removed and path is left as it was. */
int fmi_ckw_commit(fmi_ckw *w, fm_error *err);
/* Gives up: removes path.tmp. */
void fmi_ckw_abort(fmi_ckw *w);

typedef struct fmi_ckr {
	const char *path;
	FILE *f;
	uint64_t left; /* bytes not read yet (the checksum excluded once
	                * fmi_ckr_summed was called) */
	int summed, bad;
	crypto_generichash_state h;
} fmi_ckr;

/* Opens path: FM_ENOENT when there is none, FM_EIO when it cannot be
 * read. */
int fmi_ckr_open(fmi_ckr *r, const char *path, fm_error *err);
/* The file ends with a checksum (call once, after the header that says
 * so): FM_EPROTO when the file is too short to hold one. */
int fmi_ckr_summed(fmi_ckr *r, fm_error *err);
/* Reads n bytes: 0, or -1 (and bad set) when the file ends first. */
int fmi_ckr_get(fmi_ckr *r, void *p, size_t n);
/* Bytes left to read. */
uint64_t fmi_ckr_left(const fmi_ckr *r);
/* Checks that the whole file was read and its checksum; closes it. */
int fmi_ckr_close(fmi_ckr *r, fm_error *err);

#endif /* FMI_NODE_CKFILE_H */
