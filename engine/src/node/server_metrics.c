/* SPDX-License-Identifier: MIT */
/* server_metrics.c: seeds (federation id, per-task seeds), per-round
 * metrics, the defences' detection rates, evaluation and client detail. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"

/* Remembers the first reason a round did not aggregate. */
void
srv_why(fmi_server *s, const char *fmt, ...)
{
	va_list ap;
	if (s->why[0] != '\0') {
		return;
	}
	int n = snprintf(s->why, sizeof s->why, "round %u: ", s->round);
	va_start(ap, fmt);
	vsnprintf(s->why + n, sizeof s->why - (size_t)n, fmt, ap);
	va_end(ap);
}

void
fmi_round_metric(fmi_round_metrics *m, const char *name, double value)
{
	for (uint32_t i = 0; i < m->nextra; i++) {
		if (strcmp(m->extra[i].name, name) == 0) {
			m->extra[i].value = value;
			return;
		}
	}
	if (m->nextra < FMI_MAX_EXTRA_METRICS) {
		fmi_strlcpy(m->extra[m->nextra].name, name,
		    sizeof m->extra[0].name);
		m->extra[m->nextra++].value = value;
	}
}

double
fmi_round_metric_get(const fmi_round_metrics *m, const char *name)
{
	for (uint32_t i = 0; i < m->nextra; i++) {
		if (strcmp(m->extra[i].name, name) == 0) {
			return m->extra[i].value;
		}
	}
	return NAN;
}

uint64_t
fmi_fed_id(uint64_t seed)
{
	return fmi_hash64(seed ^ 0x66656d6573680000ULL);
}

uint64_t
fmi_task_seed(uint64_t seed, uint32_t round, uint32_t client)
{
	return fmi_hash64(seed ^ fmi_hash64(((uint64_t)round << 32) | client));
}

/* Sets a per-round metric of the current round. */
void
srv_metric(fmi_server *s, const char *name, double value)
{
	if (s->m != NULL) {
		fmi_round_metric(s->m, name, value);
	}
}

/* With a defence and an attack: how well the defence told the round's
 * adversaries apart. precision = rejected adversaries / rejected, recall
 * = rejected adversaries / adversaries sampled; each left out when its
 * denominator is 0, both when no defence rejected by name. */
void
srv_defence_metrics(fmi_server *s)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t nadv = 0;
	if (cfg->defence == NULL || cfg->attack == NULL ||
	    cfg->adversarial == NULL || !s->def_ran || s->def_combined) {
		return;
	}
	for (uint32_t i = 0; i < s->nslots; i++) {
		nadv += cfg->adversarial[s->slots[i].client] != 0;
	}
	if (s->def_rej > 0) {
		srv_metric(s, "defence_precision",
		    (double)s->def_rej_adv / (double)s->def_rej);
	}
	if (nadv > 0) {
		srv_metric(s, "defence_recall",
		    (double)s->def_rej_adv / (double)nadv);
	}
}

void
srv_evaluate(fmi_server *s, fmi_round_metrics *m)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t every = cfg->eval_every ? cfg->eval_every : 1;
	fmi_eval ev;
	if (cfg->test == NULL || (s->round % every != 0 && s->round != cfg->rounds)) {
		return;
	}
	if (fmi_evaluate(s->eval, s->view, cfg->test, NULL, 0, &ev) == FM_OK) {
		m->accuracy = ev.accuracy;
		m->loss = ev.loss;
		m->evaluated = 1;
	}
	if (s->asr != NULL &&
	    fmi_evaluate(s->eval, s->view, s->asr, NULL, 0, &ev) == FM_OK) {
		srv_metric(s, "attack_success", ev.accuracy);
	}
}

/* The round's per-client detail, from its slots. */
int
srv_detail(fmi_server *s, fmi_round_metrics *m)
{
	const uint8_t *adv = s->cfg->attack != NULL ? s->cfg->adversarial
	                                           : NULL;
	m->clients = malloc(FMI_MAX(s->nslots, 1) * sizeof *m->clients);
	if (m->clients == NULL) {
		return FM_ENOMEM;
	}
	m->nclients = s->nslots;
	for (uint32_t i = 0; i < s->nslots; i++) {
		const srv_slot *slot = &s->slots[i];
		fmi_client_detail *d = &m->clients[i];
		d->client = slot->client + 1;
		d->status = slot->status ? slot->status : FMI_CLIENT_DROPPED;
		d->examples = slot->ne;
		d->loss = slot->loss;
		d->norm = slot->norm;
		d->adversary = adv != NULL && adv[slot->client] != 0;
	}
	return FM_OK;
}
