/* SPDX-License-Identifier: MIT */
/*
 * scaffold.c: SCAFFOLD (Karimireddy et al., "SCAFFOLD: Stochastic
 * Controlled Averaging for Federated Learning", ICML 2020), Algorithm 1
 * with option II for the client control variate, as a local-training rule
 * (FM_KIND_LOCAL) that runs beside the aggregator FedAvg (an experiment's
 * aggregator = {"scaffold", lr = ...} is FedAvg plus this rule with lr).
 *
 * The server keeps a control variate c, each client i its own c_i (zero at
 * first). In a round with sampled set S, from the global model x:
 *
 *   server -> client   c (a message from round_begin, so it arrives
 *                      before the client trains)
 *   client             K local steps  y <- y - eta_l (g(y) + c - c_i)
 *                      (step: the correction after each optimizer step,
 *                      outside any momentum)
 *                      c_i+ = c_i - c + (x - y) / (K eta_l)     (option II)
 *   client -> server   dc_i = c_i+ - c_i (a message from end, so it
 *                      arrives before the update dy_i = y - x), then
 *                      c_i <- c_i+ (kept by its host: host->client_state)
 *   server             FedAvg: mean = sum n_i dy_i / sum n_i, out = x + mean
 *                      round_end: x + eta_g mean, i.e. out = global +
 *                      lr * lr_scale * (out - global) (with lr = lr_scale
 *                      = 1 out is left untouched: exactly FedAvg's model,
 *                      bit for bit), and c <- c + (1/N) sum_{i in S} dc_i
 *
 * The server holds each dc_i until the host reports (accepted) that the
 * aggregator took that client's update and adds it then: the sum runs in
 * the aggregator's fixed update order (results do not depend on message
 * timing), and a client whose update is not used does not move c either.
 * So the server holds up to one model-sized row per sampled client.
 *
 * What the engine must do with the server side (the aggregating node's
 * instance of this component, role FM_ROLE_SERVER or FM_ROLE_EDGE):
 *   - round_begin with the round's sampled clients (fm_round.clients) and
 *     population before it broadcasts the model: the c message goes to
 *     each sampled client and must reach it before its begin;
 *   - deliver each client's dc_i (base.on_message, m->round = the round)
 *     before that client's update is accepted;
 *   - accepted with exactly the updates the aggregator took (status FM_OK),
 *     in the order it took them, as it saw them (after a defence, the kept
 *     rows: their fm_update.client says whose dc_i counts);
 *   - round_end only after the aggregator's finish succeeded, with out the
 *     aggregator's new model and global the round's old one (a round that
 *     missed its quorum or failed has no round_end: c stays, and the next
 *     round_begin drops what this round held);
 *   - save/load with the rest of a checkpoint (c is the server's state).
 * Clients answer the node the c message came from (m->from), so an edge
 * of a hierarchy gets its own children's dc_i.
 *
 * N is fm_round.population (all the clients this aggregating node serves).
 * The model step weights clients by example count, as FedAvg here and the
 * NIID-Bench implementation do; the paper's unweighted mean is the same
 * with equal shards. eta_g = lr, default 1 (the paper's experiments).
 * With momentum or weight decay in local training the option II estimate
 * uses the plain-SGD step count K and eta_l as the paper defines it.
 *
 * Messages carry a 16-byte header (magic "SCF1", kind, dim) and dim
 * float32 in the host's byte order; a wrong magic (another byte order),
 * kind or size is refused and logged. A client that did not get c this
 * round fails its training rather than train without it. The metric
 * scaffold_c_norm is ||c|| after each round_end.
 *
 * save/load: version byte 1, a byte that says whether c follows (1 on an
 * aggregating node, 0 on a client: c_i lives in the client's host state),
 * dim (u64), then c[dim] (float32).
 */
#include <string.h>

#include "fedmesh/plugin.h"

#include "../../state.h"

#define SCF_MAGIC 0x31464353u /* "SCF1" */
#define SCF_LOG "FM-SCAFFOLD"
#define SCF_STATE_VERSION 1

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
	uint32_t round;  /* the current round (server) or task's (client) */
	/* server */
	float *c;        /* [dim] the server control variate */
	float *dcsum;    /* [dim] sum of dc_i this round */
	void *msg;       /* header + c, sent to each sampled client */
	uint32_t ndc, population;
	uint32_t n, cap; /* sampled clients this round; rows allocated */
	int32_t *ids;    /* [cap] their node ids */
	float *rows;     /* [cap][dim] dc_i that came, held until accepted */
	uint8_t *have;   /* [cap] row i holds client ids[i]'s dc_i */
	/* client */
	void *cmsg;      /* the server's message: header + c */
	uint32_t c_round;/* round of cmsg; 0: none yet */
	int32_t c_from;  /* the node cmsg came from: dc_i goes there */
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
	s->c = s->host->calloc(s->dim, sizeof(float));
	s->dcsum = s->host->calloc(s->dim, sizeof(float));
	s->msg = scf_msg_new(s, SCF_DOWN);
	return s->c && s->dcsum && s->msg ? FM_OK : FM_ENOMEM;
}

static void
scaffold_fini(void *st)
{
	scaffold *s = st;
	if (s->host != NULL) {
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
scaffold_round_begin(void *st, const fm_round *r)
{
	scaffold *s = st;
	if (r->dim != s->dim || s->c == NULL) {
		return FM_EINVAL;
	}
	memset(s->dcsum, 0, s->dim * sizeof(float));
	s->ndc = 0;
	s->round = r->round;
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

/* The updates the aggregator took, in its order: their clients' dc_i
 * join the sum. */
static int
scaffold_accepted(void *st, const fm_update *u, uint32_t n)
{
	scaffold *s = st;
	if (s->c == NULL) {
		return FM_EINVAL; /* not an aggregating node's instance */
	}
	for (uint32_t k = 0; k < n; k++) {
		scf_take_dc(s, FM_AT(const fm_update, u, k));
	}
	return FM_OK;
}

/* After the aggregator (FedAvg): out = global + mean on entry. SCAFFOLD's
 * server step x + eta_g * mean with eta_g = lr * lr_scale; then
 * c += (1/N) sum dc_i. */
static int
scaffold_round_end(void *st, const fm_round *r, const float *global,
    float *out, size_t dim)
{
	scaffold *s = st;
	if (dim != s->dim || s->c == NULL || global == NULL || out == NULL) {
		return FM_EINVAL;
	}
	double eta = s->lr * (r != NULL ? r->lr_scale : 1.0);
	if (eta != 1.0) { /* eta 1: FedAvg's model, untouched */
		for (size_t i = 0; i < dim; i++) {
			out[i] = (float)((double)global[i] +
			    eta * ((double)out[i] - (double)global[i]));
		}
	}
	if (s->ndc > 0 && s->population > 0) {
		s->host->axpy(dim, (float)(1.0 / s->population), s->dcsum, s->c);
	}
	s->ndc = 0;
	s->host->metric(s->self, "scaffold_c_norm",
	    s->host->nrm2(dim, s->c));
	return FM_OK;
}

static int
scaffold_save(void *st, void *buf, size_t cap, size_t *len)
{
	const scaffold *s = st;
	fm_sw w = FM_SW_INIT(buf, cap);
	fm_sw_u8(&w, SCF_STATE_VERSION);
	fm_sw_u8(&w, s->c != NULL);
	fm_sw_u64(&w, s->dim);
	if (s->c != NULL) {
		fm_sw_put(&w, s->c, s->dim * sizeof(float));
	}
	return fm_sw_done(&w, len);
}

static int
scaffold_load(void *st, const void *buf, size_t len)
{
	scaffold *s = st;
	fm_sr r = FM_SR_INIT(buf, len);
	if (fm_sr_version(&r, s->self, SCF_STATE_VERSION, "scaffold") != FM_OK) {
		return FM_EVERSION;
	}
	uint8_t has_c = fm_sr_u8(&r);
	uint64_t dim = fm_sr_u64(&r);
	if (r.bad || has_c != (s->c != NULL) || dim != s->dim ||
	    fm_sr_left(&r) != (has_c ? s->dim * sizeof(float) : 0)) {
		FM_STATE_REFUSE(s->self, "saved state (%zu bytes) is not the "
		    "state of a scaffold %s instance of %zu parameters", len,
		    s->c != NULL ? "server" : "client", s->dim);
		return FM_EINVAL;
	}
	if (has_c) {
		fm_sr_get(&r, s->c, s->dim * sizeof(float));
	}
	return fm_sr_done(&r) ? FM_OK : FM_EINVAL;
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
		s->c_from = m->from;
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
scaffold_begin(void *st, const fm_local_task *t)
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
scaffold_step(void *st, float *w, size_t dim, double lr)
{
	scaffold *s = st;
	if (dim == s->dim && s->out != NULL && s->x != NULL) {
		s->host->axpy(dim, (float)-lr, scf_floats(s->out), w);
	}
}

static int
scaffold_end(void *st, const fm_local_result *r)
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
	int rv = s->host->send(s->self, s->c_from, s->out,
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

static const fm_local_ops scaffold_ops = {
	.base = { sizeof(fm_local_ops), FM_KIND_LOCAL, sizeof(scaffold),
		scaffold_init, scaffold_fini, scaffold_on_message, NULL,
		scaffold_save, scaffold_load },
	.begin = scaffold_begin,
	.step = scaffold_step,
	.end = scaffold_end,
	.round_begin = scaffold_round_begin,
	.accepted = scaffold_accepted,
	.round_end = scaffold_round_end,
};

static const fm_param_desc scaffold_params[] = {
	{ "lr", FM_PARAM_REAL, 1.0, 0, 1e3, NULL,
	    "Server learning rate eta_g on the averaged client delta." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc scaffold_components[] = {
	FM_COMPONENT(FM_KIND_LOCAL, "scaffold",
	    "SCAFFOLD: control variates on clients and server correct "
	    "client drift (with FedAvg on the server)", scaffold_params,
	    scaffold_ops, 0),
};

FM_PLUGIN("scaffold", "2.0.0", "MIT",
    "SCAFFOLD (Karimireddy et al., ICML 2020)", scaffold_components, NULL);
