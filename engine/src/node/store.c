/* SPDX-License-Identifier: MIT */
/* store.c: per-client plugin state, a small chained hash table, and its
 * serialized form (server checkpoints, client hosts' state files). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "node/ckfile.h"
#include "node/store.h"

typedef struct store_ent {
	struct store_ent *next;
	int32_t client;
	size_t size;
	void *data;
	const void *owner; /* the task holding it, or NULL */
	uint32_t round;    /* the last round a task took it for (0: none) */
	uint64_t taker;    /* that task's serial */
	void *prev;        /* with undo: its value before that round */
	char component[FMI_STORE_NAME_MAX];
} store_ent;

struct fmi_store {
	pthread_mutex_t mu;
	store_ent **bucket;
	size_t nbuckets, nents, bytes;
	int undo;  /* keep prev (fmi_store_keep_undo) */
	int dirty; /* taken for training since the last fmi_store_write */
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
			free(e->prev);
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

/* A new zeroed entry in bucket i (mutex held), or NULL. */
static store_ent *
store_add(fmi_store *s, size_t i, int32_t client, const char *component,
    size_t size)
{
	store_ent *e = calloc(1, sizeof *e);
	size_t rounded = (size + 63) & ~(size_t)63;
	if (e == NULL || (e->data = aligned_alloc(64, rounded)) == NULL) {
		free(e);
		return NULL;
	}
	memset(e->data, 0, rounded);
	e->client = client;
	e->size = size;
	fmi_strlcpy(e->component, component, sizeof e->component);
	e->next = s->bucket[i];
	s->bucket[i] = e;
	s->bytes += size;
	if (++s->nents > 2 * s->nbuckets) {
		store_grow(s);
	}
	return e;
}

/* Round `round` takes entry e (mutex held): with undo, a round taken
 * again (a restarted server running a round it lost once more) starts
 * from the value the entry had before that round's first training. */
static void
store_round(fmi_store *s, store_ent *e, uint32_t round, uint64_t serial)
{
	if (round == 0 || (e->round == round && e->taker == serial)) {
		return; /* untracked, or the same task asking again */
	}
	s->dirty = 1;
	e->taker = serial;
	fm_log(FM_LOG_DEBUG, "FM-STATE", "client %d: %s: taken for round %u",
	    e->client, e->component, round);
	if (e->round == round && e->prev != NULL) {
		memcpy(e->data, e->prev, e->size);
		fm_log(FM_LOG_INFO, "FM-STATE", "client %d: %s: round %u runs "
		    "again; its state from before that round is used",
		    e->client, e->component, round);
		return;
	}
	if (e->round > round) {
		fm_log(FM_LOG_WARN, "FM-STATE", "client %d: %s: the state is "
		    "from round %u, and the server now runs round %u (it "
		    "resumed from an older checkpoint): the state is used as "
		    "it is, so this client does not resume exactly", e->client,
		    e->component, e->round, round);
	} else if (s->undo) {
		if (e->prev == NULL) {
			e->prev = malloc(e->size);
		}
		if (e->prev != NULL) {
			memcpy(e->prev, e->data, e->size);
		}
	}
	e->round = round;
}

void *
fmi_store_take(fmi_store *s, int32_t client, const char *component,
    size_t size, const void *owner, uint32_t round, uint64_t serial)
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
			store_round(s, e, round, serial);
		}
	} else if ((e = store_add(s, i, client, component, size)) != NULL) {
		e->owner = owner;
		store_round(s, e, round, serial);
		data = e->data;
	}
	pthread_mutex_unlock(&s->mu);
	return data;
}

void *
fmi_store_get(fmi_store *s, int32_t client, const char *component,
    size_t size, const void *owner)
{
	return fmi_store_take(s, client, component, size, owner, 0, 0);
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

void
fmi_store_keep_undo(fmi_store *s, int on)
{
	pthread_mutex_lock(&s->mu);
	s->undo = on;
	pthread_mutex_unlock(&s->mu);
}

/* ---- serialized: the entries in (client, component) order ------------ */

#define STORE_FORMAT 1
#define STORE_PREV 1u /* an entry's flag: prev follows its data */

typedef struct store_rec {
	int32_t client;
	uint32_t round, flags, reserved;
	char component[FMI_STORE_NAME_MAX];
	uint64_t size;
} store_rec;

static int
ent_cmp(const void *a, const void *b)
{
	const store_ent *x = *(store_ent *const *)a;
	const store_ent *y = *(store_ent *const *)b;
	if (x->client != y->client) {
		return x->client < y->client ? -1 : 1;
	}
	return strcmp(x->component, y->component);
}

/* The entries, sorted (mutex held); NULL when there are none or memory
 * runs out (*n = 0, *oom set). */
static store_ent **
store_sorted(fmi_store *s, size_t *n, int *oom)
{
	store_ent **v = s->nents ? malloc(s->nents * sizeof *v) : NULL;
	*n = 0;
	*oom = s->nents > 0 && v == NULL;
	for (size_t i = 0; v != NULL && i < s->nbuckets; i++) {
		for (store_ent *e = s->bucket[i]; e != NULL; e = e->next) {
			v[(*n)++] = e;
		}
	}
	if (v != NULL) {
		qsort(v, *n, sizeof *v, ent_cmp);
	}
	return v;
}

typedef struct store_out {
	unsigned char *buf; /* NULL: count only */
	size_t cap, len;
	fmi_ckw *w;         /* or straight into a file */
} store_out;

static void
out_put(store_out *o, const void *p, size_t n)
{
	if (o->w != NULL) {
		fmi_ckw_put(o->w, p, n);
	} else if (o->buf != NULL && o->len <= o->cap && n <= o->cap - o->len &&
	    n > 0) {
		memcpy(o->buf + o->len, p, n);
	}
	o->len += n;
}

static int
store_emit(fmi_store *s, store_out *o)
{
	size_t n;
	int oom;
	pthread_mutex_lock(&s->mu);
	store_ent **v = store_sorted(s, &n, &oom);
	uint32_t head[2] = { STORE_FORMAT, (uint32_t)n };
	out_put(o, head, sizeof head);
	for (size_t k = 0; k < n; k++) {
		const store_ent *e = v[k];
		store_rec r;
		memset(&r, 0, sizeof r);
		r.client = e->client;
		r.round = e->round;
		r.flags = e->prev != NULL ? STORE_PREV : 0;
		memcpy(r.component, e->component, sizeof r.component);
		r.size = e->size;
		out_put(o, &r, sizeof r);
		out_put(o, e->data, e->size);
		if (e->prev != NULL) {
			out_put(o, e->prev, e->size);
		}
	}
	pthread_mutex_unlock(&s->mu);
	free(v);
	return oom ? FM_ENOMEM : FM_OK;
}

int
fmi_store_save(fmi_store *s, void *buf, size_t cap, size_t *len)
{
	store_out o = { buf, buf != NULL ? cap : 0, 0, NULL };
	int rv = store_emit(s, &o);
	*len = o.len;
	if (rv != FM_OK) {
		return rv;
	}
	return buf == NULL || o.len > cap ? FM_ERANGE : FM_OK;
}

typedef struct store_in {
	const unsigned char *buf; /* or */
	fmi_ckr *r;               /* from a file */
	size_t len, pos;
	int bad;
} store_in;

static void
in_get(store_in *in, void *p, size_t n)
{
	if (in->r != NULL) {
		in->bad |= fmi_ckr_get(in->r, p, n) != 0;
		return;
	}
	if (in->bad || in->len - in->pos < n) {
		in->bad = 1;
		memset(p, 0, n);
		return;
	}
	memcpy(p, in->buf + in->pos, n);
	in->pos += n;
}

static uint64_t
in_left(const store_in *in)
{
	return in->r != NULL ? fmi_ckr_left(in->r) :
	    in->bad ? 0 : in->len - in->pos;
}

/* Reads the entries into s (mutex held), which must have none yet. */
static int
store_parse(fmi_store *s, store_in *in, const char *what, fm_error *err)
{
	uint32_t head[2];
	in_get(in, head, sizeof head);
	if (in->bad || head[0] != STORE_FORMAT) {
		return fm_error_set(err, in->bad ? FM_EPROTO : FM_EVERSION,
		    "%s: client state %s", what, in->bad ? "is truncated" :
		    "has another format (written by another fedmesh version)");
	}
	if (s->nents != 0) {
		return fm_error_set(err, FM_EINVAL, "%s: the client state is "
		    "loaded once, into an empty store", what);
	}
	for (uint32_t k = 0; k < head[1]; k++) {
		store_rec r;
		size_t b;
		in_get(in, &r, sizeof r);
		uint64_t copies = (r.flags & STORE_PREV) ? 2 : 1;
		if (in->bad || r.size == 0 || r.size > in_left(in) / copies ||
		    (r.flags & ~STORE_PREV) != 0 || r.component[0] == '\0' ||
		    memchr(r.component, '\0', sizeof r.component) == NULL) {
			return fm_error_set(err, FM_EPROTO, "%s: client state "
			    "entry %u of %u is truncated or corrupt", what, k + 1,
			    head[1]);
		}
		if (store_find(s, r.client, r.component, &b) != NULL) {
			return fm_error_set(err, FM_EPROTO, "%s: client %d's %s "
			    "state appears twice", what, r.client, r.component);
		}
		store_ent *e = store_add(s, b, r.client, r.component,
		    (size_t)r.size);
		if (e == NULL || ((r.flags & STORE_PREV) &&
		    (e->prev = malloc(e->size)) == NULL)) {
			return fm_error_set(err, FM_ENOMEM, "out of memory for "
			    "client state");
		}
		e->round = r.round;
		in_get(in, e->data, e->size);
		if (e->prev != NULL) {
			in_get(in, e->prev, e->size);
		}
	}
	return in->bad ? fm_error_set(err, FM_EPROTO, "%s: client state is "
	    "truncated", what) : FM_OK;
}

/* Empties s (mutex held): after a load that failed half-way. */
static void
store_clear(fmi_store *s)
{
	for (size_t i = 0; i < s->nbuckets; i++) {
		for (store_ent *e = s->bucket[i], *n; e != NULL; e = n) {
			n = e->next;
			free(e->data);
			free(e->prev);
			free(e);
		}
		s->bucket[i] = NULL;
	}
	s->nents = s->bytes = 0;
}

int
fmi_store_load(fmi_store *s, const void *buf, size_t len, const char *what,
    fm_error *err)
{
	store_in in = { buf, NULL, buf != NULL ? len : 0, 0, 0 };
	pthread_mutex_lock(&s->mu);
	int rv = store_parse(s, &in, what, err);
	if (rv == FM_OK && in.pos != in.len) {
		rv = fm_error_set(err, FM_EPROTO, "%s: %zu bytes after the "
		    "client state", what, in.len - in.pos);
	}
	if (rv != FM_OK) {
		store_clear(s);
	}
	pthread_mutex_unlock(&s->mu);
	return rv;
}

/* ---- a client host's state file ---------------------------------------- */

#define STATE_MAGIC 0x5343464dU /* "FMCS" */
#define STATE_VERSION 1

typedef struct state_header {
	uint32_t magic, version;
	uint64_t fed, dim;
	char host[FMI_STORE_NAME_MAX];
} state_header;

int
fmi_store_dirty(fmi_store *s)
{
	pthread_mutex_lock(&s->mu);
	int d = s->dirty;
	pthread_mutex_unlock(&s->mu);
	return d;
}

int
fmi_store_write(fmi_store *s, const char *path, uint64_t fed, size_t dim,
    const char *host, fm_error *err)
{
	fmi_ckw *w = malloc(sizeof *w);
	state_header h;
	if (w == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	memset(&h, 0, sizeof h);
	h.magic = STATE_MAGIC;
	h.version = STATE_VERSION;
	h.fed = fed;
	h.dim = dim;
	fmi_strlcpy(h.host, host, sizeof h.host);
	int rv = fmi_ckw_open(w, path, err);
	if (rv == FM_OK) {
		store_out o = { NULL, 0, 0, w };
		fmi_ckw_put(w, &h, sizeof h);
		pthread_mutex_lock(&s->mu);
		s->dirty = 0; /* what is taken from now on is written next */
		pthread_mutex_unlock(&s->mu);
		rv = store_emit(s, &o);
		if (rv != FM_OK) {
			fmi_ckw_abort(w);
			fm_error_set(err, rv, "out of memory writing %s", path);
		} else {
			rv = fmi_ckw_commit(w, err);
		}
	}
	if (rv != FM_OK) {
		pthread_mutex_lock(&s->mu);
		s->dirty = 1;
		pthread_mutex_unlock(&s->mu);
	}
	free(w);
	return rv;
}

static int
state_check(const state_header *h, const char *path, uint64_t fed,
    size_t dim, const char *host, fm_error *err)
{
	if (h->magic != STATE_MAGIC) {
		return fm_error_set(err, FM_EPROTO, "%s is not a fedmesh client "
		    "state file", path);
	}
	if (h->version != STATE_VERSION) {
		return fm_error_set(err, FM_EVERSION, "%s has client state "
		    "format %u, this fedmesh reads %u: start this host with the "
		    "version that wrote it, or delete the file", path,
		    h->version, STATE_VERSION);
	}
	if (h->fed != fed || h->dim != dim) {
		return fm_error_set(err, FM_EINVAL, "%s belongs to another "
		    "federation (id %016llx, %llu parameters; this one: id "
		    "%016llx, %zu): another seed or model wrote it; delete it "
		    "or point deploy.client_state elsewhere", path,
		    (unsigned long long)h->fed, (unsigned long long)h->dim,
		    (unsigned long long)fed, dim);
	}
	if (memchr(h->host, '\0', sizeof h->host) == NULL ||
	    strcmp(h->host, host) != 0) {
		return fm_error_set(err, FM_EINVAL, "%s holds the state of "
		    "client host '%.64s', not of '%s'", path, h->host, host);
	}
	return FM_OK;
}

int
fmi_store_read(fmi_store *s, const char *path, uint64_t fed, size_t dim,
    const char *host, fm_error *err)
{
	fmi_ckr r;
	state_header h;
	int rv = fmi_ckr_open(&r, path, err);
	if (rv != FM_OK) {
		return rv;
	}
	rv = fmi_ckr_get(&r, &h, sizeof h) == 0
	    ? state_check(&h, path, fed, dim, host, err)
	    : fm_error_set(err, FM_EPROTO, "%s is not a fedmesh client state "
	        "file (shorter than a header)", path);
	if (rv == FM_OK) {
		rv = fmi_ckr_summed(&r, err);
	}
	if (rv == FM_OK) {
		store_in in = { NULL, &r, 0, 0, 0 };
		pthread_mutex_lock(&s->mu);
		rv = store_parse(s, &in, path, err);
		pthread_mutex_unlock(&s->mu);
	}
	int crv = fmi_ckr_close(&r, rv == FM_OK ? err : NULL);
	rv = rv != FM_OK ? rv : crv;
	if (rv != FM_OK) {
		pthread_mutex_lock(&s->mu);
		store_clear(s);
		pthread_mutex_unlock(&s->mu);
	}
	return rv;
}
