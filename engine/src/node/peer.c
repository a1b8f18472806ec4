/* SPDX-License-Identifier: MIT */
/* peer.c: one peer of a decentralized federation: train, mix, evaluate. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/node.h"
#include "node/peer.h"

int
fmi_p2p_validate(const fmi_p2p_cfg *c, fm_error *err)
{
	if (c->train == NULL || c->part == NULL || c->graph == NULL ||
	    c->consensus == NULL) {
		return fm_error_set(err, FM_EINVAL, "a decentralized federation "
		    "needs train data, a partition, a graph and a consensus "
		    "plugin");
	}
	if (c->arch.nparams == 0 || c->arch.widths[0] != c->train->dim) {
		return fm_error_set(err, FM_EINVAL, "model input size %u does "
		    "not match the data's %zu features", c->arch.widths[0],
		    c->train->dim);
	}
	if (c->arch.widths[c->arch.nlayers] < c->train->nclasses) {
		return fm_error_set(err, FM_EINVAL, "model has %u outputs but "
		    "the data has %u classes", c->arch.widths[c->arch.nlayers],
		    c->train->nclasses);
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

int
fmi_peer_init(fmi_peer *p, const fmi_p2p_cfg *cfg, uint32_t id, fm_error *err)
{
	memset(p, 0, sizeof *p);
	p->id = id;
	p->dim = cfg->arch.nparams;
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
		NULL };
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
	uint32_t i = p->id;
	fm_peer_model own = { sizeof own, (int32_t)i,
		fmi_adj_out_degree(adj, i), 0, p->y, fmi_adj_weight(adj, i, i),
		p->mass, p->examples };
	for (uint32_t k = 0; k < nnb; k++) {
		nb[k].weight = fmi_adj_weight(adj, i, (uint32_t)nb[k].peer);
		nb[k].out_degree = fmi_adj_out_degree(adj, (uint32_t)nb[k].peer);
	}
	fm_mix m = { sizeof m, round, (int32_t)i, fmi_adj_in_degree(adj, i),
		fmi_adj_out_degree(adj, i), nnb, &own, nb };
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
