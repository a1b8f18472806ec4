/* SPDX-License-Identifier: MIT */
/* store.c: per-client plugin state, a small chained hash table. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/store.h"

typedef struct store_ent {
	struct store_ent *next;
	int32_t client;
	size_t size;
	void *data;
	const void *owner; /* the task holding it, or NULL */
	char component[64];
} store_ent;

struct fmi_store {
	pthread_mutex_t mu;
	store_ent **bucket;
	size_t nbuckets, nents, bytes;
};

int
fmi_store_new(fmi_store **out)
{
	fmi_store *s = calloc(1, sizeof *s);
	*out = NULL;
	if (s == NULL) {
		return FM_ENOMEM;
	}
	s->nbuckets = 64;
	if ((s->bucket = calloc(s->nbuckets, sizeof *s->bucket)) == NULL) {
		free(s);
		return FM_ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	return FM_OK;
}

void
fmi_store_free(fmi_store *s)
{
	if (s == NULL) {
		return;
	}
	for (size_t i = 0; i < s->nbuckets; i++) {
		for (store_ent *e = s->bucket[i], *n; e != NULL; e = n) {
			n = e->next;
			free(e->data);
			free(e);
		}
	}
	free(s->bucket);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static size_t
store_hash(int32_t client, const char *component)
{
	uint64_t h = fmi_hash64((uint64_t)(uint32_t)client);
	for (const char *p = component; *p != '\0'; p++) {
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	}
	return (size_t)h;
}

/* Doubles the table when it averages two entries per bucket. */
static void
store_grow(fmi_store *s)
{
	size_t nb = s->nbuckets * 2;
	store_ent **b = calloc(nb, sizeof *b);
	if (b == NULL) {
		return; /* longer chains, still correct */
	}
	for (size_t i = 0; i < s->nbuckets; i++) {
		for (store_ent *e = s->bucket[i], *n; e != NULL; e = n) {
			n = e->next;
			size_t j = store_hash(e->client, e->component) % nb;
			e->next = b[j];
			b[j] = e;
		}
	}
	free(s->bucket);
	s->bucket = b;
	s->nbuckets = nb;
}

static store_ent *
store_find(fmi_store *s, int32_t client, const char *component, size_t *b)
{
	*b = store_hash(client, component) % s->nbuckets;
	store_ent *e = s->bucket[*b];
	while (e != NULL && (e->client != client ||
	    strcmp(e->component, component) != 0)) {
		e = e->next;
	}
	return e;
}

void *
fmi_store_get(fmi_store *s, int32_t client, const char *component,
    size_t size, const void *owner)
{
	void *data = NULL;
	size_t i;
	if (s == NULL || component == NULL || size == 0 ||
	    strlen(component) >= sizeof(((store_ent *)0)->component)) {
		return NULL;
	}
	pthread_mutex_lock(&s->mu);
	store_ent *e = store_find(s, client, component, &i);
	if (e != NULL) {
		if (e->size == size && (owner == NULL || e->owner == NULL ||
		    e->owner == owner)) {
			data = e->data;
			e->owner = owner != NULL ? owner : e->owner;
		}
	} else if ((e = calloc(1, sizeof *e)) != NULL) {
		size_t rounded = (size + 63) & ~(size_t)63;
		if ((e->data = aligned_alloc(64, rounded)) == NULL) {
			free(e);
		} else {
			memset(e->data, 0, rounded);
			e->client = client;
			e->size = size;
			e->owner = owner;
			fmi_strlcpy(e->component, component,
			    sizeof e->component);
			e->next = s->bucket[i];
			s->bucket[i] = e;
			s->bytes += size;
			data = e->data;
			if (++s->nents > 2 * s->nbuckets) {
				store_grow(s);
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	return data;
}

void
fmi_store_release(fmi_store *s, int32_t client, const char *component,
    const void *owner)
{
	size_t i;
	if (s == NULL || component == NULL || owner == NULL) {
		return;
	}
	pthread_mutex_lock(&s->mu);
	store_ent *e = store_find(s, client, component, &i);
	if (e != NULL && e->owner == owner) {
		e->owner = NULL;
	}
	pthread_mutex_unlock(&s->mu);
}

size_t
fmi_store_bytes(fmi_store *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = s->bytes;
	pthread_mutex_unlock(&s->mu);
	return n;
}
