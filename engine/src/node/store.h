/* SPDX-License-Identifier: MIT */
/* store.h: per-client plugin state kept across rounds (host->client_state). */
#ifndef FMI_NODE_STORE_H
#define FMI_NODE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"

/*
 * A client's state lives where the client trains: one store per client
 * host, or one shared by all the worker threads of a simulation (where any
 * worker may train any client). Entries are keyed by (client, component),
 * zeroed on creation, and freed with the store. Thread-safe.
 */
typedef struct fmi_store fmi_store;

#define FMI_STORE_NAME_MAX 64 /* component names, host names */

int fmi_store_new(fmi_store **out);
void fmi_store_free(fmi_store *s); /* accepts NULL */
/*
 * The entry of (client, component) of size bytes, 64-byte aligned, for
 * owner (a task): it stays the owner's until fmi_store_release, and
 * another owner gets NULL meanwhile (a client still training an earlier
 * round on another worker must not share it). owner NULL only looks.
 * NULL also when size differs from the entry's first size or memory runs
 * out.
 */
void *fmi_store_get(fmi_store *s, int32_t client, const char *component,
    size_t size, const void *owner);
/*
 * fmi_store_get for the training of round `round` (> 0) by the task of
 * serial `serial` (unique per task on this host): the store notes the
 * round, and with undo (fmi_store_keep_undo) keeps the entry's value from
 * before it, so that another task of the same round (a restarted server
 * running a round it lost once more) starts from that value, not from one
 * that already holds the lost round's training.
 */
void *fmi_store_take(fmi_store *s, int32_t client, const char *component,
    size_t size, const void *owner, uint32_t round, uint64_t serial);
/* Keep every entry's value from before its last round (a deployed client
 * host: the server may run that round again). Off by default. */
void fmi_store_keep_undo(fmi_store *s, int on);
/* Ends owner's hold on (client, component), if it holds it. */
void fmi_store_release(fmi_store *s, int32_t client, const char *component,
    const void *owner);
/* Bytes held by all entries. */
size_t fmi_store_bytes(fmi_store *s);

/*
 * Serialized (for a checkpoint): every entry in (client, component) order
 * with its round and, with undo, its earlier value. save writes at most
 * cap bytes and sets *len (FM_ERANGE with the size needed when buf is
 * NULL or small). load fills an empty store from what save wrote; bad
 * input is FM_EPROTO / FM_EVERSION with err naming `what`, and leaves the
 * store empty. Call them while no task holds an entry.
 */
int fmi_store_save(fmi_store *s, void *buf, size_t cap, size_t *len);
int fmi_store_load(fmi_store *s, const void *buf, size_t len, const char *what,
    fm_error *err);

/*
 * A client host's state file (deploy.client_state): the serialized
 * entries behind a header naming the federation (fed id, model size) and
 * the host, written crash-safely (ckfile.h). read refuses a file of
 * another federation, model size or host, and a truncated or corrupt one
 * (FM_ENOENT: no file), leaving the store empty. dirty: a task took an
 * entry for training since the last write.
 */
int fmi_store_write(fmi_store *s, const char *path, uint64_t fed, size_t dim,
    const char *host, fm_error *err);
int fmi_store_read(fmi_store *s, const char *path, uint64_t fed, size_t dim,
    const char *host, fm_error *err);
int fmi_store_dirty(fmi_store *s);

#endif /* FMI_NODE_STORE_H */
