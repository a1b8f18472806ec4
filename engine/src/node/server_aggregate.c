/* SPDX-License-Identifier: MIT */
/* server_aggregate.c: every edge (a star's server) aggregates its
 * round's updates through its pipeline (pipeline.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"

/* Aggregator i's pipeline finishes its round into its model; the model
 * stays when a call fails, the quorum is not met, or the result is not
 * finite. */
int
srv_finish(fmi_server *s, uint32_t i, int quorum_ok)
{
	srv_agg *n = &s->nodes[i];
	char name[64];
	if (!quorum_ok) {
		/* Not finished at all: a stateful aggregator (FedAdam's
		 * moments, SCAFFOLD's c) must not move for a round whose
		 * model is thrown away; its next begin starts afresh. */
		return FM_ETIMEDOUT;
	}
	int rv = fmi_pipe_finish(&n->pipe, &n->r, n->model,
	    srv_node_name(s, i, name, sizeof name));
	if (rv != FM_OK) {
		srv_why(s, "%s", n->pipe.why);
	}
	return rv;
}

/* An edge's clients trained: count their examples up the tree. */
void
srv_credit(fmi_server *s, uint32_t i)
{
	srv_agg *e = &s->nodes[i];
	e->since_root += e->rne;
	for (; i > 0; i = srv_parent(s, i)) {
		s->nodes[i].since += e->rne;
		s->nodes[i].loss_sum += e->rloss;
	}
}

/* FLTrust's reference: the server trains edge i's model on its root
 * data (seeded like a client of this round) into s->sdelta. */
static const float *
srv_server_delta(fmi_server *s, const srv_agg *n)
{
	const fmi_fed_cfg *cfg = s->cfg;
	fmi_train_stats st;
	fm_rng rng;
	if (cfg->root_data == NULL) {
		return NULL;
	}
	float *w = fmi_trainer_params(s->eval);
	memcpy(w, n->model, s->dim * sizeof(float));
	fmi_rng_seed(&rng, fmi_task_seed(cfg->seed, s->round, 0), 0x726f6f74);
	fmi_trainer_reset_optimizer(s->eval);
	fmi_local_cfg lc = cfg->local;
	lc.opt.lr = s->lr; /* this round's, as the clients got it */
	if (fmi_train_local(s->eval, cfg->root_data, s->root_idx,
	        cfg->root_data->n, &lc, &rng, &st) != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-DEFENCE", "round %u: training on the "
		    "server's root data failed", s->round);
		return NULL;
	}
	for (size_t k = 0; k < s->dim; k++) {
		s->sdelta[k] = w[k] - n->model[k];
	}
	return s->sdelta;
}

/* Edge i's pipeline over its held rows (attack, defence, aggregator),
 * and what became of each row, by client. */
static void
srv_run_pipe(fmi_server *s, uint32_t i)
{
	const fmi_fed_cfg *cfg = s->cfg;
	srv_agg *n = &s->nodes[i];
	fmi_pipe *p = &n->pipe;
	const uint8_t *adv = cfg->attack != NULL ? cfg->adversarial : NULL;
	fmi_pipe_ctx c = { n->model,
		p->def != NULL ? srv_server_delta(s, n) : NULL, adv,
		fmi_task_seed(cfg->seed ^ 0x61746b, s->round, i),
		cfg->client_detail ? s->adv_norms : NULL, srv_norm,
		fmi_task_seed(cfg->seed ^ 0x70726976, s->round, i) };
	int rv = fmi_pipe_run(p, &c);
	if (rv != FM_OK) {
		srv_why(s, "%s", p->why);
	}
	s->fed += p->fed;
	s->def_ran |= p->defended;
	s->def_combined |= p->combined;
	for (uint32_t k = 0; k < p->n; k++) {
		srv_slot *slot = srv_slot_of(s, p->meta[k].client);
		if (slot == NULL) {
			continue;
		}
		if (c.adv_norms != NULL && p->adv[k]) {
			slot->norm = c.adv_norms[k];
		}
		slot->status = p->row_status[k] == FMI_ROW_KEPT ?
		    FMI_CLIENT_KEPT : p->row_status[k] == FMI_ROW_REJECTED ?
		    FMI_CLIENT_REJECTED : FMI_CLIENT_UNUSED;
		if (p->row_status[k] == FMI_ROW_REJECTED) {
			s->def_rej++;
			s->def_rej_adv += adv != NULL && adv[slot->client];
		}
	}
	if (rv == FM_OK && p->defended) {
		srv_metric(s, "defence_kept", (double)p->nkeep);
	}
}

/* Every edge with a sampled client aggregates its updates when ok (the
 * round met its quorum); returns how many edges' models moved. */
uint32_t
srv_aggregate_edges(fmi_server *s, int ok)
{
	uint32_t moved = 0;
	s->fed = 0;
	for (uint32_t i = s->first[s->levels - 1]; i < s->nnodes; i++) {
		int held = fmi_pipe_holds(&s->nodes[i].pipe);
		if (ok && held && s->nodes[i].pipe.n > 0) {
			srv_run_pipe(s, i);
		}
		if (s->nodes[i].nsampled > 0 && srv_finish(s, i, ok) == FM_OK) {
			moved++;
			srv_credit(s, i);
			/* streamed updates went in as they arrived */
			s->m->aggregated |= held ? s->fed > 0
			                         : s->m->updates > 0;
		} else {
			/* nothing of this edge's round is used */
			for (uint32_t k = 0; k < s->nodes[i].nsampled; k++) {
				srv_slot *slot = &s->slots[s->nodes[i].slot0 + k];
				if (slot->status == FMI_CLIENT_KEPT ||
				    slot->status == FMI_CLIENT_REJECTED) {
					slot->status = FMI_CLIENT_UNUSED;
				}
			}
		}
	}
	return moved;
}

/* Every edge with a sampled client aggregates its updates. */
void
srv_aggregate(fmi_server *s)
{
	uint32_t quorum = s->cfg->min_updates ? s->cfg->min_updates : s->nslots;
	int ok = s->m->updates >= quorum;
	if (!ok) {
		fm_log(FM_LOG_WARN, "FM-QUORUM", "round %u: %u updates, quorum "
		    "is %u; %s kept", s->round, s->m->updates, quorum,
		    s->levels == 1 ? "global model" : "edge models");
		srv_why(s, "%u updates arrived, the quorum (min_updates) is %u",
		    s->m->updates, quorum);
	}
	(void)srv_aggregate_edges(s, ok);
	srv_defence_metrics(s);
}
