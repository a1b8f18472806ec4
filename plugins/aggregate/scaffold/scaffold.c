/* SPDX-License-Identifier: MIT */
/*
 * scaffold.c: SCAFFOLD (Karimireddy et al., "SCAFFOLD: Stochastic
 * Controlled Averaging for Federated Learning", ICML 2020), Algorithm 1
 * with option II for the client control variate.
 *
 * The server keeps a control variate c, each client i its own c_i (zero at
 * first). In a round with sampled set S, from the global model x:
 *
 *   server -> client   c (a plugin message from a_begin, so it arrives
 *                      before the client trains)
 *   client             K local steps  y <- y - eta_l (g(y) + c - c_i)
 *                      (the correction after each optimizer step, outside
 *                      any momentum)
 *                      c_i+ = c_i - c + (x - y) / (K eta_l)     (option II)
 *   client -> server   dc_i = c_i+ - c_i (a message from a_local_end, so it
 *                      arrives before the update dy_i = y - x), then
 *                      c_i <- c_i+ (kept by its host: host->client_state)
 *   server             x <- x + eta_g sum n_i dy_i / sum n_i
 *                      c <- c + (1/N) sum_{i in S} dc_i
 *
 * The server holds each dc_i until the host accepts that client's update
 * and adds it then: the sum runs in the host's fixed update order (results
 * do not depend on message timing), and a client whose update is not used
 * does not move c either. So the server holds up to one model-sized row per
 * sampled client in a round.
 *
 * N is fm_round.population (all the clients this aggregator serves). The
 * model step weights clients by example count, as FedAvg here and the
 * NIID-Bench implementation do; the paper's unweighted mean is the same
 * with equal shards. eta_g = lr, default 1 (the paper's experiments).
 * With momentum or weight decay in local training the option II estimate
 * uses the plain-SGD step count K and eta_l as the paper defines it.
 *
 * Messages carry a 16-byte header (magic "SCF1", kind, dim) and dim
 * float32 in the host's byte order; a wrong magic (another byte order),
 * kind or size is refused and logged. A client that did not get c this
 * round fails its training rather than train without it.
 */
#include <string.h>

#include "fedmesh/plugin.h"

#include "../accumulate.h"

#define SCF_MAGIC 0x31464353u /* "SCF1" */
#define SCF_LOG "FM-SCAFFOLD"

enum { SCF_DOWN = 1, SCF_UP = 2 }; /* c to a client; dc_i to the server */

typedef struct scf_head {
	uint32_t magic, kind;
	uint64_t dim;
} scf_head;

typedef struct scaffold {
	const fm_host_api *host;
	const fm_instance *self;
	size_t dim;
	double lr;       /* eta_g */
	double scale;    /* this round's server lr schedule factor (ABI 1.4) */
	uint32_t round;  /* the current round (server) or task's (client) */
	/* server */
	float *acc;      /* [dim] sum n_i dy_i */
	float *c;        /* [dim] the server control variate */
	float *dcsum;    /* [dim] sum of dc_i this round */
	void *msg;       /* header + c, sent to each sampled client */
	double weight;
	fm_acc pool;     /* a helper thread for large models */
	uint32_t ndc, population;
	uint32_t n, cap; /* sampled clients this round; rows allocated */
	int32_t *ids;    /* [cap] their node ids */
	float *rows;     /* [cap][dim] dc_i that came, held until accepted */
	uint8_t *have;   /* [cap] row i holds client ids[i]'s dc_i */
	/* client */
	void *cmsg;      /* the server's message: header + c */
	uint32_t c_round;/* round of cmsg; 0: none yet */
	void *out;       /* header + h during training, dc_i after */
	float *ci;       /* [dim] c_i, host-kept across rounds */
	const float *x;  /* the round's global model, during training */
} scaffold;

static size_t
scf_msg_len(size_t dim)
{
	return sizeof(scf_head) + dim * sizeof(float);
}

static float *
scf_floats(void *msg)
{
	return (float *)((char *)msg + sizeof(scf_head));
}

static void *
scf_msg_new(const scaffold *s, uint32_t kind)
{
	scf_head *h = s->host->calloc(1, scf_msg_len(s->dim));
	if (h != NULL) {
		h->magic = SCF_MAGIC;
		h->kind = kind;
		h->dim = s->dim;
	}
	return h;
}

static int
scf_check(const scaffold *s, const fm_message *m, uint32_t kind)
{
	scf_head h;
	if (m->len != scf_msg_len(s->dim)) {
		s->host->log(FM_LOG_WARN, SCF_LOG, "message from node %d: %zu "
		    "bytes, want %zu (a model of %zu floats)", m->from, m->len,
		    scf_msg_len(s->dim), s->dim);
		return FM_EPROTO;
	}
	memcpy(&h, m->data, sizeof h);
	if (h.magic != SCF_MAGIC || h.kind != kind || h.dim != s->dim) {
		s->host->log(FM_LOG_WARN, SCF_LOG, "message from node %d: bad "
		    "header (magic %08x kind %u dim %llu)", m->from, h.magic,
		    h.kind, (unsigned long long)h.dim);
		return FM_EPROTO;
	}
	return FM_OK;
}

static int
scaffold_init(void *st, const fm_instance *inst)
{
	scaffold *s = st;
	s->host = inst->host;
	s->self = inst;
	s->dim = inst->dim;
	if (s->dim == 0 || inst->nparams != 1 || inst->params == NULL) {
		return FM_EINVAL;
	}
	s->lr = inst->params[0].num;
	if (inst->role == FM_ROLE_CLIENT) {
		return FM_OK; /* buffers come with the messages and training */
	}
	s->acc = s->host->calloc(s->dim, sizeof(float));
	fm_acc_start(&s->pool, s->dim >= FM_ACC_SPLIT_MIN ? 2 : 1);
	s->c = s->host->calloc(s->dim, sizeof(float));
	s->dcsum = s->host->calloc(s->dim, sizeof(float));
	s->msg = scf_msg_new(s, SCF_DOWN);
	return s->acc && s->c && s->dcsum && s->msg ? FM_OK : FM_ENOMEM;
}

static void
scaffold_fini(void *st)
{
	scaffold *s = st;
	if (s->host != NULL) {
		fm_acc_stop(&s->pool);
		s->host->free(s->acc);
		s->host->free(s->c);
		s->host->free(s->dcsum);
		s->host->free(s->msg);
		s->host->free(s->ids);
		s->host->free(s->rows);
		s->host->free(s->have);
		s->host->free(s->cmsg);
		s->host->free(s->out);
	}
}

/* ---- server --------------------------------------------------------- */

static int
scaffold_begin(void *st, const fm_round *r)
{
	scaffold *s = st;
	if (r->dim != s->dim || s->acc == NULL) {
		return FM_EINVAL;
	}
	memset(s->acc, 0, s->dim * sizeof(float));
	memset(s->dcsum, 0, s->dim * sizeof(float));
	s->weight = 0;
	s->ndc = 0;
	s->round = r->round;
	s->scale = s->host->abi_minor >= 4 ? r->lr_scale : 1.0; /* ABI 1.4 */
	s->population = r->population;
	if (s->population == 0) { /* a host that does not say: all sampled */
		s->population = r->nclients;
	}
	if (r->nclients > s->cap) {
		s->host->free(s->ids);
		s->host->free(s->rows);
		s->host->free(s->have);
		s->cap = 0;
		s->ids = s->host->alloc(r->nclients * sizeof *s->ids);
		s->rows = s->host->alloc(r->nclients * s->dim * sizeof(float));
		s->have = s->host->alloc(r->nclients);
		if (s->ids == NULL || s->rows == NULL || s->have == NULL) {
			return FM_ENOMEM;
		}
		s->cap = r->nclients;
	}
	s->n = r->nclients;
	if (s->n > 0) {
		memcpy(s->ids, r->clients, s->n * sizeof *s->ids);
		memset(s->have, 0, s->n);
	}
	memcpy(scf_floats(s->msg), s->c, s->dim * sizeof(float));
	for (uint32_t i = 0; i < r->nclients; i++) {
		int rv = s->host->send(s->self, r->clients[i], s->msg,
		    scf_msg_len(s->dim));
		/* ENOENT: a dropout; ENOTSUP: no node (fm.aggregate), the
		 * server step alone */
		if (rv != FM_OK && rv != FM_ENOENT && rv != FM_ENOTSUP) {
			s->host->log(FM_LOG_ERR, SCF_LOG, "round %u: c to client "
			    "%d: %s", r->round, r->clients[i],
			    s->host->strerror(rv));
			return rv;
		}
	}
	return FM_OK;
}

/* The row of a sampled client, or -1. */
static int64_t
scf_row(const scaffold *s, int32_t client)
{
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->ids[i] == client) {
			return i;
		}
	}
	return -1;
}

/* The dc_i of an accepted update's client joins the sum, in the host's
 * order. */
static void
scf_take_dc(scaffold *s, const fm_update *u)
{
	int64_t i = scf_row(s, u->client);
	if (i >= 0 && s->have[i]) {
		s->host->axpy(s->dim, 1.0f, s->rows + (size_t)i * s->dim,
		    s->dcsum);
		s->have[i] = 0;
		s->ndc++;
	}
}

static int
scaffold_accept(void *st, const fm_update *u)
{
	scaffold *s = st;
	int rv = fm_accumulate(&s->pool, s->acc, &s->weight, s->dim, u);
	if (rv == FM_OK) {
		scf_take_dc(s, u);
	}
	return rv;
}

static int
scaffold_accept_many(void *st, const fm_update *u, uint32_t n, int *status)
{
	scaffold *s = st;
	int rv = fm_accumulate_many(&s->pool, s->acc, &s->weight, s->dim, u,
	    n, status);
	for (uint32_t k = 0; rv == FM_OK && k < n; k++) {
		if (status[k] == FM_OK) {
			scf_take_dc(s, &u[k]);
		}
	}
	return rv;
}

static int
scaffold_finish(void *st, float *global, size_t dim)
{
	scaffold *s = st;
	if (dim != s->dim || s->acc == NULL) {
		return FM_EINVAL;
	}
	if (s->weight > 0) {
		s->host->axpy(dim, (float)(s->lr * s->scale / s->weight),
		    s->acc, global);
	}
	if (s->ndc > 0 && s->population > 0) {
		s->host->axpy(dim, (float)(1.0 / s->population), s->dcsum, s->c);
	}
	s->host->metric(s->self, "scaffold_c_norm",
	    s->host->nrm2(dim, s->c));
	return FM_OK;
}

/* ---- messages: c down to a client, dc_i up to the server ----------- */

static int
scaffold_on_message(void *st, const fm_message *m)
{
	scaffold *s = st;
	if (s->self->role == FM_ROLE_CLIENT) {
		int rv = scf_check(s, m, SCF_DOWN);
		if (rv != FM_OK) {
			return rv;
		}
		if (s->cmsg == NULL &&
		    (s->cmsg = s->host->alloc(m->len)) == NULL) {
			return FM_ENOMEM;
		}
		memcpy(s->cmsg, m->data, m->len);
		s->c_round = m->round;
		return FM_OK;
	}
	if (m->round != s->round || s->dcsum == NULL) {
		return FM_EPROTO;
	}
	int rv = scf_check(s, m, SCF_UP);
	if (rv != FM_OK) {
		return rv;
	}
	int64_t i = scf_row(s, m->from);
	if (i < 0 || s->have[i]) {
		s->host->log(FM_LOG_WARN, SCF_LOG, "round %u: dc_i from node %d, "
		    "which %s", s->round, m->from, i < 0 ? "is not sampled" :
		    "already sent one");
		return FM_EPROTO;
	}
	memcpy(s->rows + (size_t)i * s->dim, (const char *)m->data +
	    sizeof(scf_head), s->dim * sizeof(float));
	s->have[i] = 1;
	return FM_OK;
}

/* ---- client: local training ---------------------------------------- */

static int
scaffold_local_begin(void *st, const fm_local_task *t)
{
	scaffold *s = st;
	if (t->struct_size < sizeof *t || t->dim != s->dim ||
	    t->global == NULL) {
		return FM_EINVAL;
	}
	if (s->cmsg == NULL || s->c_round != t->round) {
		s->host->log(FM_LOG_ERR, SCF_LOG, "client %d: no control "
		    "variate c from the server for round %u", s->self->node_id,
		    t->round);
		return FM_EPROTO;
	}
	s->ci = s->host->client_state(s->self, s->dim * sizeof(float));
	if (s->ci == NULL) {
		s->host->log(FM_LOG_ERR, SCF_LOG, "client %d: the host keeps "
		    "no state of %zu bytes for it", s->self->node_id,
		    s->dim * sizeof(float));
		return FM_ENOMEM;
	}
	if (s->out == NULL && (s->out = scf_msg_new(s, SCF_UP)) == NULL) {
		return FM_ENOMEM;
	}
	/* h = c - c_i, constant through local training */
	const float *c = scf_floats(s->cmsg);
	float *h = scf_floats(s->out);
	for (size_t i = 0; i < s->dim; i++) {
		h[i] = c[i] - s->ci[i];
	}
	s->x = t->global;
	s->round = t->round;
	return FM_OK;
}

/* After each local step: w -= lr (c - c_i). Outside the momentum, as the
 * reference implementations apply it (NIID-Bench; with plain SGD it is the
 * same as adding c - c_i to the gradient): option II's c_i measures the
 * mean displacement per step over lr, momentum included, so the correction
 * must not be amplified by the momentum once more. */
static void
scaffold_local_step(void *st, float *w, size_t dim, double lr)
{
	scaffold *s = st;
	if (dim == s->dim && s->out != NULL && s->x != NULL) {
		s->host->axpy(dim, (float)-lr, scf_floats(s->out), w);
	}
}

static int
scaffold_local_end(void *st, const fm_local_result *r)
{
	scaffold *s = st;
	if (r->struct_size < sizeof *r || r->dim != s->dim || s->x == NULL ||
	    s->ci == NULL) {
		return FM_EINVAL;
	}
	s->x = NULL;
	if (r->steps == 0 || r->lr <= 0) {
		return FM_OK; /* nothing trained: c_i stays, no dc_i */
	}
	/* dc_i = c_i+ - c_i = -c + (x - y) / (K eta_l) */
	const float *c = scf_floats(s->cmsg);
	const float *x = r->global, *y = r->params;
	float *dc = scf_floats(s->out);
	const double k = 1.0 / ((double)r->steps * r->lr);
	for (size_t i = 0; i < s->dim; i++) {
		dc[i] = (float)((double)(x[i] - y[i]) * k) - c[i];
	}
	int rv = s->host->send(s->self, FM_NODE_SERVER, s->out,
	    scf_msg_len(s->dim));
	if (rv != FM_OK) { /* c_i stays: the server will not count dc_i */
		s->host->log(FM_LOG_WARN, SCF_LOG, "client %d: dc_i to the "
		    "server: %s", s->self->node_id, s->host->strerror(rv));
		return rv;
	}
	for (size_t i = 0; i < s->dim; i++) {
		s->ci[i] += dc[i];
	}
	return FM_OK;
}

static const fm_aggregator_ops scaffold_ops = {
	.a_struct_size = sizeof(fm_aggregator_ops),
	.a_kind = FM_KIND_AGGREGATOR,
	.a_name = "scaffold",
	.a_state_size = sizeof(scaffold),
	.a_init = scaffold_init,
	.a_fini = scaffold_fini,
	.a_begin = scaffold_begin,
	.a_accept = scaffold_accept,
	.a_accept_many = scaffold_accept_many,
	.a_finish = scaffold_finish,
	.a_on_message = scaffold_on_message,
	.a_local_begin = scaffold_local_begin,
	.a_local_step = scaffold_local_step,
	.a_local_end = scaffold_local_end,
};

static const fm_param_desc scaffold_params[] = {
	{ "lr", FM_PARAM_REAL, 1.0, 0, 1e3, NULL,
	    "Server learning rate eta_g on the averaged client delta." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc scaffold_components[] = {
	{ FM_KIND_AGGREGATOR, "scaffold",
	    "SCAFFOLD: control variates on clients and server correct "
	    "client drift", scaffold_params },
};

FM_PLUGIN_DEFINE("scaffold", "1.0.0", "MIT",
    "SCAFFOLD (Karimireddy et al., ICML 2020)", scaffold_components);

FM_PLUGIN_INIT(r, host)
{
	if (host->abi_minor < 2) { /* local-training hooks, client state */
		host->log(FM_LOG_ERR, SCF_LOG, "scaffold needs plugin ABI 1.2 "
		    "(local-training hooks and client state); this host "
		    "speaks 1.%u", host->abi_minor);
		return FM_EVERSION;
	}
	return host->register_component(r, &scaffold_ops, sizeof scaffold_ops);
}
