/* SPDX-License-Identifier: MIT */
/* peer.c: one peer of a decentralized federation: train, mix, evaluate. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "node/node.h"
#include "node/peer.h"

int
fmi_p2p_validate(const fmi_p2p_cfg *c, fm_error *err)
{
	/* train is NULL only on the monitor of a deployment whose peers
	 * bring their own data: it trains nothing */
	if (c->part == NULL || c->graph == NULL || c->consensus == NULL) {
		return fm_error_set(err, FM_EINVAL, "a decentralized federation "
		    "needs train data, a partition, a graph and a consensus "
		    "plugin");
	}
	const fmi_dataset *fit = c->train != NULL ? c->train : c->test;
	if (c->arch.nparams == 0 ||
	    (fit != NULL && c->arch.widths[0] != fit->dim)) {
		return fm_error_set(err, FM_EINVAL, "model input size %u does "
		    "not match the data's %zu features", c->arch.widths[0],
		    fit != NULL ? fit->dim : 0);
	}
	if (fit != NULL && c->arch.widths[c->arch.nlayers] < fit->nclasses) {
		return fm_error_set(err, FM_EINVAL, "model has %u outputs but "
		    "the data has %u classes", c->arch.widths[c->arch.nlayers],
		    fit->nclasses);
	}
	if (c->part->nclients != fmi_graph_n(c->graph)) {
		return fm_error_set(err, FM_EINVAL, "the partition has %u "
		    "clients but the topology has %u peers: partition the data "
		    "into one shard per peer", c->part->nclients,
		    fmi_graph_n(c->graph));
	}
	int adversaries = 0;
	for (uint32_t i = 0; c->byzantine != NULL && i < c->part->nclients;
	    i++) {
		adversaries |= c->byzantine[i] != 0;
	}
	if (adversaries && c->attack == NULL) {
		return fm_error_set(err, FM_EINVAL, "adversarial peers need an "
		    "attack, e.g. attack = { \"gaussian\", sigma = 1 }");
	}
	if (c->attack != NULL && !fmi_component_poisons_updates(c->attack)) {
		return fm_error_set(err, FM_EINVAL, "attack '%s' does not poison "
		    "updates; adversarial peers run a model-poisoning attack "
		    "(sign_flip, gaussian, scaling, alie, ipm)",
		    c->attack->desc->name);
	}
	if (c->rounds < 1 || c->local.epochs < 1 || c->local.batch < 1) {
		return fm_error_set(err, FM_EINVAL, "rounds, epochs and batch "
		    "must be at least 1");
	}
	return FM_OK;
}

void
fmi_peer_initial_model(const fmi_p2p_cfg *cfg, uint32_t id, float *x)
{
	fm_rng r;
	uint64_t stream = 0x696e6974; /* "init", as the server */
	if (cfg->independent_init) {
		stream ^= (uint64_t)(id + 1) << 32;
	}
	fmi_rng_seed(&r, cfg->seed, stream);
	fmi_arch_init_params(&cfg->arch, x, &r);
	if (cfg->init_params != NULL) { /* warm start */
		memcpy(x, cfg->init_params, cfg->arch.nparams * sizeof(float));
	}
}

/* ---- the consensus instance's node link ------------------------------ */

int
fmi_peer_is_neighbour(const fmi_adj *a, uint32_t i, uint32_t j)
{
	for (uint32_t e = a->in_off[i]; e < a->in_off[i + 1]; e++) {
		if (a->in_adj[e] == j) {
			return j != i;
		}
	}
	for (uint32_t e = a->out_off[i]; e < a->out_off[i + 1]; e++) {
		if (a->out_adj[e] == j) {
			return j != i;
		}
	}
	return 0;
}

/* host->send: to a neighbour of the round's graph only (FM_ENOENT
 * otherwise, also before the first round). */
static int
peer_link_send(void *node, const char *comp, int32_t to, const void *data,
    size_t len)
{
	fmi_peer *p = node;
	fmi_msg m;
	if (p->adj == NULL || to < 0 || (uint32_t)to >= p->n ||
	    !fmi_peer_is_neighbour(p->adj, p->id, (uint32_t)to)) {
		return FM_ENOENT;
	}
	if (len > 0 && data == NULL) {
		return FM_EINVAL;
	}
	fmi_plugin_msg(&m, p->fed, p->round, (int32_t)p->id, to, ++p->seq,
	    comp, len);
	return p->net.send(p->net.ud, p->id, &m, data, len);
}

static int
peer_link_timer(void *node, const char *comp, uint32_t ms, uint64_t tag)
{
	fmi_peer *p = node;
	(void)comp; /* the consensus instance is the peer's only one linked */
	if (p->cons == NULL) {
		return FM_ESTATE; /* from init: the instance is not open yet */
	}
	return p->net.timer(p->net.ud, p->id, &p->cons->h, ms, tag);
}

static void
peer_link_metric(void *node, const char *name, double value)
{
	fmi_peer *p = node;
	fmi_peer_metrics *pm = &p->metrics;
	char key[sizeof pm->kv[0].name];
	fmi_strlcpy(key, name, sizeof key);
	for (uint32_t k = 0; k < pm->n; k++) {
		if (strcmp(pm->kv[k].name, key) == 0) {
			pm->kv[k].value = value; /* the last value counts */
			return;
		}
	}
	if (pm->n < FMI_MAX_EXTRA_METRICS) {
		memcpy(pm->kv[pm->n].name, key, sizeof key);
		pm->kv[pm->n++].value = value;
	}
}

void
fmi_peer_begin_round(fmi_peer *p, const fmi_adj *adj, uint32_t round)
{
	p->adj = adj;
	p->round = round;
	p->metrics.n = 0;
}

int
fmi_peer_deliver(fmi_peer *p, fmi_rmsg *r)
{
	const fmi_msg *m = &r->m;
	const char *why = NULL;
	const char *name = p->cons->h.comp->desc->name;
	if (m->type != FMI_MSG_PLUGIN || m->fed != p->fed ||
	    m->to != (int32_t)p->id) {
		why = "not for this peer of this federation";
	} else if (m->from < 0 || (uint32_t)m->from >= p->n ||
	    p->adj == NULL ||
	    !fmi_peer_is_neighbour(p->adj, p->id, (uint32_t)m->from)) {
		why = "the sender is no neighbour of this round";
	} else if (strcmp(m->plugin, name) != 0) {
		why = "the peer's consensus component is another";
	} else if (!fmi_inst_handles_messages(&p->cons->h)) {
		why = "the consensus component takes no messages";
	}
	if (why != NULL) {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-MSG", "round %u: peer %u dropped "
		    "a message for plugin '%s' from peer %d: %s", p->round,
		    p->id + 1, m->plugin, m->from + 1, why);
		return FM_EPROTO;
	}
	int rv = fmi_inst_deliver(&p->cons->h, r);
	if (rv != FM_OK) {
		fm_log(FM_LOG_DEBUG, "FM-PLUGIN-MSG", "round %u: peer %u: '%s' "
		    "refused a message from peer %d (%s)", p->round, p->id + 1,
		    name, m->from + 1, fm_strerror(rv));
	}
	return FM_OK;
}

void
fmi_peer_metrics_mean(fmi_round_metrics *m, const fmi_peer_metrics *pm,
    const uint8_t *use, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t k = 0; use[i] && k < pm[i].n; k++) {
			const char *name = pm[i].kv[k].name;
			int seen = 0;
			for (uint32_t q = 0; q < i && !seen; q++) {
				for (uint32_t l = 0; use[q] && l < pm[q].n; l++) {
					seen |= strcmp(pm[q].kv[l].name, name) == 0;
				}
			}
			if (seen) {
				continue; /* averaged at its first peer */
			}
			double sum = 0;
			uint32_t cnt = 0;
			for (uint32_t q = i; q < n; q++) {
				for (uint32_t l = 0; use[q] && l < pm[q].n; l++) {
					if (strcmp(pm[q].kv[l].name, name) == 0) {
						sum += pm[q].kv[l].value;
						cnt++;
					}
				}
			}
			fmi_round_metric(m, name, sum / cnt);
		}
	}
}

size_t
fmi_peer_metrics_encode(const fmi_peer_metrics *pm, uint8_t *buf)
{
	for (uint32_t k = 0; k < pm->n; k++) {
		uint8_t *e = buf + (size_t)k * FMI_PEER_METRIC_BYTES;
		uint64_t v;
		memset(e, 0, 32);
		memcpy(e, pm->kv[k].name, strlen(pm->kv[k].name));
		memcpy(&v, &pm->kv[k].value, sizeof v);
		for (int b = 0; b < 8; b++) {
			e[32 + b] = (uint8_t)(v >> (8 * b));
		}
	}
	return (size_t)pm->n * FMI_PEER_METRIC_BYTES;
}

int
fmi_peer_metrics_decode(fmi_peer_metrics *pm, const uint8_t *buf, size_t len)
{
	pm->n = 0;
	if (len % FMI_PEER_METRIC_BYTES != 0 || len > FMI_PEER_METRICS_MAX) {
		return FM_EPROTO;
	}
	for (size_t off = 0; off < len; off += FMI_PEER_METRIC_BYTES) {
		const uint8_t *e = buf + off;
		uint64_t v = 0;
		if (e[0] == '\0' || memchr(e, '\0', 32) == NULL) {
			pm->n = 0;
			return FM_EPROTO;
		}
		for (int b = 0; b < 8; b++) {
			v |= (uint64_t)e[32 + b] << (8 * b);
		}
		memcpy(pm->kv[pm->n].name, e, 32);
		memcpy(&pm->kv[pm->n++].value, &v, sizeof v);
	}
	return FM_OK;
}

int
fmi_peer_init(fmi_peer *p, const fmi_p2p_cfg *cfg, uint32_t id,
    const fmi_peer_net *net, fm_error *err)
{
	memset(p, 0, sizeof *p);
	p->id = id;
	p->dim = cfg->arch.nparams;
	p->n = fmi_graph_n(cfg->graph);
	p->fed = fmi_fed_id(cfg->seed);
	fmi_node_link link = { p, peer_link_send, peer_link_timer,
		peer_link_metric, NULL, 1, 0, cfg->secure_noise }; /* peers
		                                   * train on workers */
	/* privacy talks to no counterpart here (local DP): metrics only */
	fmi_node_link plink = { p, NULL, NULL, peer_link_metric, NULL, 1, 0,
		cfg->secure_noise };
	if (net != NULL) {
		p->net = *net;
	}
	p->x = malloc(p->dim * sizeof(float));
	p->y = malloc(p->dim * sizeof(float));
	if (p->x == NULL || p->y == NULL) {
		fmi_peer_fini(p);
		return fm_error_set(err, FM_ENOMEM, "peer %u: no memory for its "
		    "model (%zu parameters)", id + 1, p->dim);
	}
	fmi_peer_initial_model(cfg, id, p->x);
	fmi_open_args a = { cfg->cons_params, p->dim, FM_ROLE_PEER,
		(int32_t)id, fmi_hash64(cfg->seed ^ (0x70656572ULL + id)), 0, 0,
		net != NULL ? &link : NULL };
	int rv = fmi_cons_open(&p->cons, cfg->consensus, &a, err);
	if (rv == FM_OK && !fmi_p2p_honest(cfg, id)) {
		fmi_open_args t = { cfg->atk_params, p->dim, FM_ROLE_PEER,
			(int32_t)id + 1, fmi_hash64(cfg->seed ^ (0x61746bULL + id)),
			2, 0, NULL };
		p->stride = (p->dim + 15) & ~(size_t)15; /* 64-byte rows */
		p->rows = aligned_alloc(64, 2 * p->stride * sizeof(float));
		rv = p->rows != NULL ? fmi_atk_open(&p->atk, cfg->attack, &t,
		    err) : fm_error_set(err, FM_ENOMEM, "peer %u: no memory for "
		    "its attack", id + 1);
	}
	if (rv == FM_OK && cfg->privacy != NULL && fmi_p2p_honest(cfg, id)) {
		fmi_open_args pa = { cfg->priv_params, p->dim, FM_ROLE_PEER,
			(int32_t)id, fmi_hash64(cfg->seed ^ (0x70726976ULL + id)),
			1, 0, net != NULL ? &plink : NULL };
		rv = fmi_priv_open(&p->priv, cfg->privacy, &pa, err);
	}
	if (rv != FM_OK) {
		fmi_peer_fini(p);
	}
	return rv;
}

void
fmi_peer_fini(fmi_peer *p)
{
	fmi_cons_close(p->cons);
	fmi_atk_close(p->atk);
	fmi_priv_close(p->priv);
	free(p->rows);
	free(p->x);
	free(p->y);
	memset(p, 0, sizeof *p);
}

/*
 * An adversarial peer's update u = y - x goes through its attack plugin
 * as row 0 of a round (adversarial); row 1 is the same honest update, the
 * reference colluding attacks (alie, ipm) read, and carries no examples
 * (it is no participant: scaling's default boost stays 1). The peer then
 * sends y = x + row 0. A failed attack sends the honest model.
 */
static void
peer_poison(fmi_peer *p, const fmi_p2p_cfg *cfg, uint32_t round)
{
	float *u = p->rows, *ref = p->rows + p->stride;
	for (size_t k = 0; k < p->dim; k++) {
		u[k] = p->y[k] - p->x[k];
	}
	memcpy(ref, u, p->dim * sizeof(float));
	fm_update up[2] = {
		{ sizeof up[0], (int32_t)p->id + 1, round, 0, u, p->dim,
			p->examples, p->loss, 0 },
		{ sizeof up[1], (int32_t)p->id + 1, round, 0, ref, p->dim, 0,
			p->loss, 0 },
	};
	static const uint8_t adv[2] = { 1, 0 };
	uint32_t keep[2] = { 0, 1 };
	uint64_t keep_ne[2] = { p->examples, 0 };
	fm_rows r = { sizeof r, round, 2, 1, p->dim, p->rows, p->stride, up,
		p->x, NULL, adv,
		fmi_task_seed(cfg->seed ^ 0x61746b, round, p->id + 1), keep,
		keep_ne, 2, 0 };
	int rv = fmi_atk_poison_updates(p->atk, &r);
	if (rv != FM_OK) {
		fm_log(FM_LOG_WARN, "FM-ATTACK", "round %u, peer %u: attack "
		    "'%s' failed (%s); the peer sends its honest model", round,
		    p->id + 1, cfg->attack->desc->name, fm_strerror(rv));
		return;
	}
	for (size_t k = 0; k < p->dim; k++) {
		p->y[k] = p->x[k] + u[k];
	}
}

/*
 * Local DP on an honest peer: its update u = y - x goes through the
 * privacy mechanism's client side (begin, then client), and y becomes
 * x + u. The peer mixes this y too, not its raw one: x stays a function
 * of what it shared and what it received, so no later model it sends
 * carries an unprotected update. A failure fails the peer's round.
 */
static int
peer_private(fmi_peer *p, const fmi_p2p_cfg *cfg, uint32_t round)
{
	int32_t self = (int32_t)p->id;
	fm_round r = { sizeof r, round, 1, 0, &self, p->x, p->dim, 1.0, 1.0 };
	for (size_t k = 0; k < p->dim; k++) {
		p->y[k] -= p->x[k];
	}
	fm_private_update pu = { sizeof pu, round, self, 0, p->y, p->dim,
		p->examples, fmi_task_seed(cfg->seed ^ 0x70726976, round,
		p->id + 1) };
	int rv = fmi_priv_begin(p->priv, &r);
	if (rv == FM_OK) {
		rv = fmi_priv_client(p->priv, &pu);
	}
	if (rv == FM_OK && !fmi_all_finite(p->y, p->dim)) {
		rv = FM_ERANGE;
	}
	if (rv != FM_OK) {
		char b[256];
		fmi_inst_error(&p->priv->h, b, sizeof b);
		fm_log(FM_LOG_ERR, "FM-PRIVACY", "round %u, peer %u: %s failed: "
		    "%s", round, p->id + 1, cfg->privacy->desc->name,
		    b[0] ? b : fm_strerror(rv));
		return rv;
	}
	for (size_t k = 0; k < p->dim; k++) {
		p->y[k] += p->x[k];
	}
	p->examples = pu.num_examples;
	return FM_OK;
}

int
fmi_peer_train(fmi_peer *p, const fmi_p2p_cfg *cfg, fmi_trainer *tr,
    uint32_t round)
{
	const fmi_partition *part = cfg->part;
	float *w = fmi_trainer_params(tr);
	fmi_train_stats st;
	fm_rng rng;

	memcpy(w, p->x, p->dim * sizeof(float));
	fmi_rng_seed(&rng, fmi_task_seed(cfg->seed, round, p->id + 1), 0);
	fmi_trainer_reset_optimizer(tr);
	int rv = fmi_train_local(tr, cfg->train, part->idx + part->off[p->id],
	    fmi_partition_size(part, p->id), &cfg->local, &rng, &st);
	if (rv != FM_OK) {
		return rv;
	}
	memcpy(p->y, w, p->dim * sizeof(float));
	p->examples = st.examples;
	p->loss = st.loss;
	if (p->atk != NULL) {
		peer_poison(p, cfg, round);
	}
	if (p->priv != NULL && (rv = peer_private(p, cfg, round)) != FM_OK) {
		return rv;
	}
	p->mass = 0;
	return FM_OK;
}

/* The mass this peer attaches to its round's model (consensus plugin). */
static int
peer_outgoing(fmi_peer *p, uint32_t round, uint32_t out_degree)
{
	return fmi_cons_outgoing(p->cons, round, out_degree, &p->mass);
}

int
fmi_peer_mix(fmi_peer *p, const fmi_adj *adj, uint32_t round,
    fm_peer_model *nb, uint32_t nnb)
{
	return fmi_peer_mix_faults(p, adj, round, nb, nnb,
	    fmi_adj_out_degree(adj, p->id), NULL, 0);
}

int
fmi_peer_carries_mass(const fmi_peer *p)
{
	return fmi_cons_has_outgoing(p->cons);
}

int
fmi_peer_mix_faults(fmi_peer *p, const fmi_adj *adj, uint32_t round,
    fm_peer_model *nb, uint32_t nnb, uint32_t out_sent,
    const fm_peer_model *late, uint32_t nlate)
{
	uint32_t i = p->id;
	fm_peer_model own = { sizeof own, (int32_t)i,
		fmi_adj_out_degree(adj, i), 0, p->y, fmi_adj_weight(adj, i, i),
		p->mass, p->examples };
	for (uint32_t k = 0; k < nnb; k++) {
		nb[k].weight = fmi_adj_weight(adj, i, (uint32_t)nb[k].peer);
		nb[k].out_degree = fmi_adj_out_degree(adj, (uint32_t)nb[k].peer);
	}
	fm_mix m = { sizeof m, round, (int32_t)i, fmi_adj_in_degree(adj, i),
		fmi_adj_out_degree(adj, i), nnb, &own, nb,
		FMI_MIN(out_sent, fmi_adj_out_degree(adj, i)), nlate,
		nlate > 0 ? late : NULL };
	memcpy(p->x, p->y, p->dim * sizeof(float));
	int rv = fmi_cons_mix(p->cons, &m, p->x, p->dim);
	if (rv != FM_OK) {
		/* a failed mix keeps the peer's own trained model */
		memcpy(p->x, p->y, p->dim * sizeof(float));
		return rv;
	}
	for (size_t k = 0; k < p->dim; k++) {
		if (!isfinite(p->x[k])) {
			memcpy(p->x, p->y, p->dim * sizeof(float));
			return FM_ERANGE;
		}
	}
	return FM_OK;
}

int
fmi_peer_prepare_send(fmi_peer *p, const fmi_adj *adj, uint32_t round)
{
	return peer_outgoing(p, round, fmi_adj_out_degree(adj, p->id));
}

uint32_t *
fmi_peer_eval_subset(const fmi_p2p_cfg *cfg, size_t *n)
{
	size_t total = cfg->test != NULL ? cfg->test->n : 0;
	*n = total;
	if (cfg->eval_samples == 0 || cfg->eval_samples >= total) {
		return NULL;
	}
	uint32_t *idx = malloc(total * sizeof *idx);
	if (idx == NULL) {
		return NULL; /* falls back to the whole test set */
	}
	fm_rng r;
	fmi_rng_seed(&r, cfg->seed, 0x6576616c); /* "eval" */
	for (size_t i = 0; i < total; i++) {
		idx[i] = (uint32_t)i;
	}
	for (size_t i = 0; i < cfg->eval_samples; i++) {
		size_t j = i + (size_t)(fmi_rng_u64(&r) % (total - i));
		uint32_t t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
	}
	*n = cfg->eval_samples;
	return idx;
}

/* ---- GOSSIP messages ------------------------------------------------- */

fmi_payload *
fmi_peer_payload(const fmi_peer *p)
{
	fmi_payload *pl = fmi_payload_new(p->dim * sizeof(float));
	if (pl != NULL) {
		memcpy(pl->data, p->y, p->dim * sizeof(float));
		fmi_f32_to_le(pl->data, p->dim);
	}
	return pl;
}

void
fmi_peer_gossip(const fmi_peer *p, uint64_t fed, uint32_t round, uint32_t to,
    fmi_msg *m)
{
	*m = (fmi_msg) { .type = FMI_MSG_GOSSIP, .fed = fed, .round = round,
		.from = (int32_t)p->id, .to = (int32_t)to,
		.num_examples = p->examples,
		.loss = isfinite(p->loss) ? p->loss : 0, .mass = p->mass,
		.n = p->dim };
}

const char *
fmi_peer_gossip_check(fmi_rmsg *r, uint64_t fed, uint32_t n, size_t dim,
    char *why, size_t len)
{
	fm_error e;
	const fmi_msg *m = &r->m;
	if (m->type != FMI_MSG_GOSSIP || m->fed != fed) {
		snprintf(why, len, "a %s message of federation %016llx",
		    fmi_msg_type_name(m->type), (unsigned long long)m->fed);
		return "FM-WIRE";
	}
	if (m->from < 0 || (uint32_t)m->from >= n || m->to < 0 ||
	    (uint32_t)m->to >= n) {
		snprintf(why, len, "'%s' claims to be peer %d writing to peer "
		    "%d of %u", r->peer, m->from + 1, m->to + 1, n);
		return "FM-SENDER";
	}
	if (fmi_msg_check_tensor(m, fmi_rmsg_data(r), fmi_rmsg_len(r), dim,
	        &e) != FM_OK) {
		snprintf(why, len, "%s", e.msg);
		return "FM-UPDATE";
	}
	if (!isfinite(m->mass)) {
		snprintf(why, len, "its mass is not finite");
		return "FM-UPDATE";
	}
	return NULL;
}

fm_peer_model
fmi_peer_model_of(fmi_rmsg *r)
{
	return (fm_peer_model) { sizeof(fm_peer_model), r->m.from, 0, 0,
		fmi_rmsg_data(r), 0, r->m.mass, r->m.num_examples };
}

/* ---- a peer's state file --------------------------------------------- */

#define PSTATE_MAGIC 0x53504d46U /* "FMPS" */
#define PSTATE_VERSION 1
#define PSTATE_MAX_RULE (1u << 20) /* a consensus rule's saved state */

/* Host byte order, as the server checkpoint (the same host reads it). */
typedef struct pstate_header {
	uint32_t magic, version, header_size, peer;
	uint64_t fed, dim;
	uint32_t round, rule_len;
} pstate_header;

int
fmi_peer_state_write(fmi_peer *p, const char *path, uint32_t round,
    fm_error *err)
{
	char tmp[4096];
	size_t len = 0;
	uint8_t *rule = NULL;
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		return fm_error_set(err, FM_EINVAL, "peer state path too long");
	}
	if (fmi_inst_saves(&p->cons->h)) {
		(void)fmi_inst_save(&p->cons->h, NULL, 0, &len);
		rule = len <= PSTATE_MAX_RULE ? malloc(len ? len : 1) : NULL;
		int rv = rule == NULL ? FM_ENOMEM :
		    fmi_inst_save(&p->cons->h, rule, len, &len);
		if (rv != FM_OK) {
			free(rule);
			return fm_error_set(err, rv, "peer %u: its consensus rule "
			    "could not save its state (%s)", p->id + 1,
			    fm_strerror(rv));
		}
	}
	pstate_header h = { PSTATE_MAGIC, PSTATE_VERSION, sizeof h, p->id,
		p->fed, p->dim, round, (uint32_t)len };
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int bad = fd < 0 || fmi_write_all(fd, &h, sizeof h) ||
	    fmi_write_all(fd, p->x, p->dim * sizeof(float)) ||
	    (len > 0 && fmi_write_all(fd, rule, len)) || fsync(fd) != 0;
	int e = errno;
	free(rule);
	if (fd >= 0 && close(fd) != 0 && !bad) {
		bad = 1;
		e = errno;
	}
	if (bad || rename(tmp, path) != 0) {
		e = bad ? e : errno;
		unlink(tmp);
		return fm_error_set(err, FM_EIO, "cannot write peer state %s: %s",
		    path, strerror(e));
	}
	fmi_fsync_dir(path);
	return FM_OK;
}

static int
pstate_read_all(int fd, void *buf, size_t n)
{
	uint8_t *b = buf;
	while (n > 0) {
		ssize_t k = read(fd, b, n);
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			return -1;
		}
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

int
fmi_peer_state_read(fmi_peer *p, const char *path, uint32_t *round,
    fm_error *err)
{
	pstate_header h;
	uint8_t extra;
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		return fm_error_set(err, errno == ENOENT ? FM_ENOENT : FM_EIO,
		    "cannot read peer state %s: %s", path, strerror(errno));
	}
	int rv = FM_OK;
	float *x = malloc(p->dim * sizeof(float));
	uint8_t *rule = NULL;
	if (x == NULL) {
		rv = fm_error_set(err, FM_ENOMEM, "out of memory");
	} else if (pstate_read_all(fd, &h, sizeof h) || h.magic != PSTATE_MAGIC) {
		rv = fm_error_set(err, FM_EPROTO, "%s is not a fedmesh peer "
		    "state file", path);
	} else if (h.version != PSTATE_VERSION || h.header_size != sizeof h) {
		rv = fm_error_set(err, FM_EVERSION, "%s was written by another "
		    "fedmesh version (format %u, this one reads %u); delete it "
		    "to start the peer over", path, h.version, PSTATE_VERSION);
	} else if (h.peer != p->id || h.fed != p->fed || h.dim != p->dim) {
		rv = fm_error_set(err, FM_EINVAL, "%s belongs to another run "
		    "(peer %u, federation %016llx, %llu parameters; this is peer "
		    "%u, federation %016llx, %zu parameters)", path, h.peer + 1,
		    (unsigned long long)h.fed, (unsigned long long)h.dim,
		    p->id + 1, (unsigned long long)p->fed, p->dim);
	} else if (h.rule_len > PSTATE_MAX_RULE ||
	    (h.rule_len > 0) != (fmi_inst_saves(&p->cons->h) != 0)) {
		rv = fm_error_set(err, FM_EINVAL, "%s holds %u bytes of "
		    "consensus state, which this peer's rule does not take",
		    path, h.rule_len);
	} else if ((rule = malloc(h.rule_len ? h.rule_len : 1)) == NULL) {
		rv = fm_error_set(err, FM_ENOMEM, "out of memory");
	} else if (pstate_read_all(fd, x, p->dim * sizeof(float)) ||
	    pstate_read_all(fd, rule, h.rule_len) ||
	    pstate_read_all(fd, &extra, 1) == 0) {
		rv = fm_error_set(err, FM_EPROTO, "%s is truncated or too long",
		    path);
	}
	for (size_t k = 0; rv == FM_OK && k < p->dim; k++) {
		if (!isfinite(x[k])) {
			rv = fm_error_set(err, FM_ERANGE, "%s holds a model that "
			    "is not finite", path);
		}
	}
	if (rv == FM_OK && h.rule_len > 0 &&
	    (rv = fmi_inst_load(&p->cons->h, rule, h.rule_len)) != FM_OK) {
		fm_error_set(err, rv, "%s: the consensus rule refused its saved "
		    "state (%s)", path, fm_strerror(rv));
	}
	if (rv == FM_OK) {
		memcpy(p->x, x, p->dim * sizeof(float));
		*round = h.round;
	}
	close(fd);
	free(x);
	free(rule);
	return rv;
}
