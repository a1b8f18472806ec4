/* SPDX-License-Identifier: MIT */
/* host_api.c: the fm_host_api table plugins reach the host through. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <sodium.h>

#include "core/core.h"
#include "plugin/plugin_int.h"
#include "privacy/noise.h"

/* ---- memory: never NULL for a zero-size request ---------------------- */

static void *
host_alloc(size_t n)
{
	return malloc(n != 0 ? n : 1);
}

static void *
host_calloc(size_t n, size_t size)
{
	if (n == 0 || size == 0) {
		return calloc(1, 1);
	}
	return calloc(n, size);
}

static void
host_free(void *p)
{
	free(p);
}

/* ---- logging ----------------------------------------------------------- */

static void FM_PRINTF(3, 4)
host_log(int level, const char *id, const char *fmt, ...)
{
	va_list ap;
	if (fmt == NULL) {
		return;
	}
	va_start(ap, fmt);
	fmi_logv(level, id != NULL ? id : "FM-PLUGIN", fmt, ap);
	va_end(ap);
}

/* ---- CSPRNG: libsodium, initialised once ------------------------------ */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok;

static void
sodium_setup(void)
{
	sodium_ok = sodium_init() >= 0;
	if (!sodium_ok) {
		fm_log(FM_LOG_ERR, "FM-HOST-RANDOM", "sodium_init failed; "
		    "random_bytes falls back to getrandom(2)");
	}
}

/* Without libsodium: the kernel's CSPRNG; FM_ECRYPTO (and zeros) if even
 * that fails. */
static int
fallback_bytes(unsigned char *p, size_t n)
{
	unsigned char *start = p;
	size_t total = n;
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got <= 0) {
			memset(start, 0, total);
			fm_log(FM_LOG_ERR, "FM-HOST-RANDOM", "no source of "
			    "randomness for %zu bytes", total);
			return FM_ECRYPTO;
		}
		p += got;
		n -= (size_t)got;
	}
	return FM_OK;
}

static int
host_random_bytes(void *buf, size_t n)
{
	if (buf == NULL || n == 0) {
		return FM_OK;
	}
	pthread_once(&sodium_once, sodium_setup);
	if (sodium_ok) {
		randombytes_buf(buf, n);
		return FM_OK;
	}
	return fallback_bytes(buf, n);
}

/* ---- messaging, timers, metrics: through the instance's node link ----- */

/* The open instance behind self (fm_instance.host_data). */
static const fmi_inst_head *
host_agg(const fm_instance *self)
{
	return self != NULL ? self->host_data : NULL;
}

static int
host_send(const fm_instance *self, int32_t to, const void *data, size_t len)
{
	const fmi_inst_head *a = host_agg(self);
	if (a == NULL || (data == NULL && len > 0)) {
		return FM_EINVAL;
	}
	if (a->link.send == NULL) {
		return FM_ENOTSUP;
	}
	return a->link.send(a->link.node, a->comp->desc->name, to, data, len);
}

static int
host_timer(const fm_instance *self, uint32_t ms, uint64_t tag)
{
	const fmi_inst_head *a = host_agg(self);
	if (a == NULL) {
		return FM_EINVAL;
	}
	if (a->link.timer == NULL) {
		return FM_ENOTSUP;
	}
	return a->link.timer(a->link.node, a->comp->desc->name, ms, tag);
}

static void
host_metric(const fm_instance *self, const char *name, double value)
{
	const fmi_inst_head *a = host_agg(self);
	if (a != NULL && name != NULL && name[0] != '\0' &&
	    a->link.metric != NULL) {
		a->link.metric(a->link.node, name, value);
	}
}

static void *
host_client_state(const fm_instance *self, size_t size)
{
	const fmi_inst_head *a = host_agg(self);
	if (a == NULL || size == 0 || self->role != FM_ROLE_CLIENT ||
	    a->link.state == NULL) {
		return NULL;
	}
	return a->link.state(a->link.node, a->comp->desc->name, size);
}

static void host_set_error(const fm_instance *self, const char *fmt, ...)
    FM_PRINTF(2, 3);
static void
host_set_error(const fm_instance *self, const char *fmt, ...)
{
	fmi_inst_head *h = self != NULL ? self->host_data : NULL;
	va_list ap;
	if (h == NULL || fmt == NULL) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(h->error, sizeof h->error, fmt, ap);
	va_end(ap);
}

const char *
fmi_inst_error(fmi_inst_head *h, char *buf, size_t size)
{
	snprintf(buf, size, "%s", h != NULL ? h->error : "");
	if (h != NULL) {
		h->error[0] = '\0';
	}
	return buf;
}

/* ---- threads and limits ---------------------------------------------- */

/*
 * The host's worker pool for host->parallel_for: threads started on first
 * use (at most HOST_MAX_THREADS - 1; the caller is one more) and kept for
 * the process. One parallel_for runs on it at a time; a call that finds
 * it busy (another instance on another thread) runs its chunks on the
 * calling thread, which gives the same results: chunk bounds depend only
 * on n and the thread count, and a plugin's results may not depend on
 * how chunks are spread.
 */
#define HOST_MAX_THREADS 64

static struct host_pool {
	pthread_mutex_t busy; /* held by the parallel_for using the pool */
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	pthread_t th[HOST_MAX_THREADS];
	uint32_t nth;         /* workers started */
	uint64_t gen;         /* bumped per job */
	fm_task_fn fn;        /* the job: */
	void *ud;
	size_t n, k;          /* items, chunks */
	size_t next;          /* next chunk to take */
	size_t left;          /* chunks not finished */
} host_pool = { .busy = PTHREAD_MUTEX_INITIALIZER,
	.mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER };

/* Runs chunks of the current job until none is left; mu held on entry
 * and exit. */
static void
pool_work(struct host_pool *p)
{
	while (p->next < p->k) {
		size_t c = p->next++;
		fm_task_fn fn = p->fn;
		void *ud = p->ud;
		size_t lo = p->n * c / p->k, hi = p->n * (c + 1) / p->k;
		pthread_mutex_unlock(&p->mu);
		fn(ud, lo, hi);
		pthread_mutex_lock(&p->mu);
		if (--p->left == 0) {
			pthread_cond_broadcast(&p->done);
		}
	}
}

static void *
pool_main(void *arg)
{
	struct host_pool *p = arg;
	uint64_t seen = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->gen == seen) {
			pthread_cond_wait(&p->go, &p->mu);
		}
		seen = p->gen;
		pool_work(p);
	}
	return NULL;
}

/* A forked child has none of the parent's threads (fedmesh launch execs
 * right away, but a child may still get here). */
static void
pool_after_fork(void)
{
	host_pool.nth = 0;
	pthread_mutex_init(&host_pool.busy, NULL);
	pthread_mutex_init(&host_pool.mu, NULL);
	pthread_cond_init(&host_pool.go, NULL);
	pthread_cond_init(&host_pool.done, NULL);
}

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void
pool_register_fork(void)
{
	pthread_atfork(NULL, NULL, pool_after_fork);
}

/* Starts workers up to want (with mu held); fewer if threads cannot
 * start. */
static void
pool_grow(struct host_pool *p, uint32_t want)
{
	while (p->nth < want &&
	    pthread_create(&p->th[p->nth], NULL, pool_main, p) == 0) {
		pthread_detach(p->th[p->nth]);
		p->nth++;
	}
}

/* [0, n) in k equal chunks, k = the link's threads (at most n). */
static void
host_parallel_for(const fm_instance *self, size_t n, fm_task_fn fn, void *ud)
{
	const fmi_inst_head *h = host_agg(self);
	size_t k = h != NULL && h->link.threads > 1 ? h->link.threads : 1;
	k = FMI_MIN(FMI_MIN(k, n), (size_t)HOST_MAX_THREADS);
	if (fn == NULL || n == 0) {
		return;
	}
	struct host_pool *p = &host_pool;
	if (k <= 1 || pthread_mutex_trylock(&p->busy) != 0) {
		for (size_t c = 0; c < k; c++) { /* the same chunks, here */
			fn(ud, n * c / k, n * (c + 1) / k);
		}
		return;
	}
	pthread_once(&pool_once, pool_register_fork);
	pthread_mutex_lock(&p->mu);
	pool_grow(p, (uint32_t)k - 1);
	p->fn = fn;
	p->ud = ud;
	p->n = n;
	p->k = k;
	p->next = 0;
	p->left = k;
	p->gen++;
	pthread_cond_broadcast(&p->go);
	pool_work(p); /* the caller works too: all chunks run without workers */
	while (p->left > 0) {
		pthread_cond_wait(&p->done, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_unlock(&p->busy);
}

static void
host_limits(const fm_instance *self, fm_limits *out)
{
	const fmi_inst_head *h = host_agg(self);
	if (out == NULL) {
		return;
	}
	*out = (fm_limits) { (uint32_t)sizeof *out,
		h != NULL && h->link.threads > 1 ? h->link.threads : 1,
		h != NULL ? h->link.memory : 0, UINT32_MAX, 0 };
}

/* ---- differential-privacy noise (2.2) --------------------------------- */

/*
 * N(0, std^2) added to x[0..n) from the seeded generator: stream `seed`
 * of xoshiro256** with Box-Muller normals, so a simulation and a
 * deployment with the same run seed add the same noise. A run with
 * secure_noise = true (fmi_node_link.secure_noise) is routed to the
 * engine's secure sampler instead (fmi_dp_noise_add with no generator:
 * libsodium's randomness, an exact discrete Gaussian on a fine grid;
 * privacy/noise.h), and the seed is not used.
 */
#define HOST_NOISE_STREAM 0x6e6f697365ULL /* "noise" */

static int
host_gauss_noise(const fm_instance *self, float *x, size_t n, double std,
    uint64_t seed)
{
	fmi_inst_head *h = self != NULL ? self->host_data : NULL;
	if (!(std >= 0) || !isfinite(std) || (x == NULL && n > 0)) {
		if (h != NULL) {
			snprintf(h->error, sizeof h->error, "gauss_noise: the "
			    "noise standard deviation %g must be a finite "
			    "number >= 0", std);
		}
		return FM_EINVAL;
	}
	if (h != NULL && h->link.secure_noise) {
		/* libsodium's randomness, an exact discrete Gaussian on a
		 * grid (privacy/noise.h); the seed is not used */
		fm_error e;
		int rv = fmi_dp_noise_add(x, n, std, NULL, &e);
		if (rv != FM_OK) {
			fmi_strlcpy(h->error, e.msg, sizeof h->error);
		}
		return rv;
	}
	if (std == 0) {
		return FM_OK;
	}
	fm_rng g;
	fmi_rng_seed(&g, seed, HOST_NOISE_STREAM);
	for (size_t i = 0; i < n; i++) {
		x[i] = (float)((double)x[i] + std * fmi_rng_normal(&g));
	}
	return FM_OK;
}

/* 2.0 plugins declare their components; register_component is what 1.x
 * plugins call, and abi1.c gives them their own. */
static int
host_register_component(fm_registrar *r, const void *ops, size_t ops_size)
{
	(void)r;
	(void)ops;
	(void)ops_size;
	fm_log(FM_LOG_ERR, "FM-PLUGIN-OPS", "register_component is for ABI "
	    "1.x plugins, during their fm_plugin_init; a 2.0 plugin declares "
	    "its ops in its components");
	return FM_ESTATE;
}

/* ---- the table ----------------------------------------------------------- */

static const fm_host_api host_api = {
	.struct_size = (uint32_t)sizeof(fm_host_api),
	.abi_major = FM_PLUGIN_ABI_MAJOR,
	.abi_minor = FM_PLUGIN_ABI_MINOR,
	.alloc = host_alloc,
	.calloc = host_calloc,
	.free = host_free,
	.log = host_log,
	.strerror = fm_strerror,
	.rng_seed = fmi_rng_seed,
	.rng_u64 = fmi_rng_u64,
	.rng_uniform = fmi_rng_uniform,
	.rng_normal = fmi_rng_normal,
	.random_bytes = host_random_bytes,
	.axpy = fmi_axpy,
	.scal = fmi_scal,
	.dot = fmi_dot,
	.nrm2 = fmi_nrm2,
	.gemm = fmi_gemm,
	.register_component = host_register_component,
	.send = host_send,
	.timer = host_timer,
	.metric = host_metric,
	.client_state = host_client_state,
	.set_error = host_set_error,
	.parallel_for = host_parallel_for,
	.limits = host_limits,
	.gauss_noise = host_gauss_noise,
};

const fm_host_api *
fmi_host_api(void)
{
	return &host_api;
}
