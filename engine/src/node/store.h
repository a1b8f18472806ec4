/* SPDX-License-Identifier: MIT */
/* store.h: per-client plugin state kept across rounds (host->client_state). */
#ifndef FMI_NODE_STORE_H
#define FMI_NODE_STORE_H

#include <stddef.h>
#include <stdint.h>

/*
 * A client's state lives where the client trains: one store per client
 * host, or one shared by all the worker threads of a simulation (where any
 * worker may train any client). Entries are keyed by (client, component),
 * zeroed on creation, and freed with the store. Thread-safe.
 */
typedef struct fmi_store fmi_store;

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
/* Ends owner's hold on (client, component), if it holds it. */
void fmi_store_release(fmi_store *s, int32_t client, const char *component,
    const void *owner);
/* Bytes held by all entries. */
size_t fmi_store_bytes(fmi_store *s);

#endif /* FMI_NODE_STORE_H */
