/* SPDX-License-Identifier: MIT */
/* server_sampling.c: which clients a round samples (seeded, the same
 * on every run; adversaries per round when the experiment fixes them). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Moves k of the n ids in a to its front, a seeded uniform choice
 * (partial Fisher-Yates). */
static void
srv_draw(fm_rng *r, uint32_t *a, uint32_t n, uint32_t k)
{
	for (uint32_t i = 0; i < k; i++) {
		uint32_t j = i + (uint32_t)fmi_rng_below(r, n - i);
		uint32_t tmp = a[i];
		a[i] = a[j];
		a[j] = tmp;
	}
}

/* With cfg->adv_fixed, a round's adversaries and honest clients must both
 * be there to sample. */
int
srv_check_sampling(const fmi_fed_cfg *cfg, fm_error *err)
{
	uint32_t n = cfg->part->nclients, k = cfg->clients_per_round, na = 0;
	if (!cfg->adv_fixed) {
		return FM_OK;
	}
	if (cfg->adversarial == NULL) {
		return fm_error_set(err, FM_EINVAL, "adv_fixed: a fixed number "
		    "of adversaries per round needs adversarial clients");
	}
	for (uint32_t c = 0; c < n; c++) {
		na += cfg->adversarial[c] != 0;
	}
	if (cfg->adv_per_round > k || cfg->adv_per_round > na ||
	    k - cfg->adv_per_round > n - na) {
		return fm_error_set(err, FM_EINVAL, "adv_per_round: %u "
		    "adversaries and %u honest clients per round, but %u of the "
		    "%u clients are adversarial", cfg->adv_per_round,
		    k - FMI_MIN(k, cfg->adv_per_round), na, n);
	}
	return FM_OK;
}

/* Samples clients_per_round distinct clients, ascending: uniformly, or
 * (adv_fixed) adv_per_round adversaries and the rest honest clients. */
int
fmi_fed_sample(const fmi_fed_cfg *cfg, uint32_t round, uint32_t *picked)
{
	uint32_t n = cfg->part->nclients, k = cfg->clients_per_round;
	uint32_t *all = malloc(n * sizeof *all);
	fm_rng r;
	if (all == NULL) {
		return FM_ENOMEM;
	}
	fmi_rng_seed(&r, cfg->seed, 0x73616d706c65ULL ^ round);
	if (cfg->adv_fixed) {
		/* adversaries in all[0, na), honest clients after them */
		uint32_t na = 0, ka = cfg->adv_per_round;
		for (uint32_t i = 0; i < n; i++) {
			na += cfg->adversarial[i] != 0;
		}
		for (uint32_t i = 0, a = 0, h = na; i < n; i++) {
			all[cfg->adversarial[i] ? a++ : h++] = i;
		}
		srv_draw(&r, all, na, ka);
		srv_draw(&r, all + na, n - na, k - ka);
		memmove(all + ka, all + na, (k - ka) * sizeof *all);
	} else {
		for (uint32_t i = 0; i < n; i++) {
			all[i] = i;
		}
		srv_draw(&r, all, n, k);
	}
	memcpy(picked, all, k * sizeof *picked);
	free(all);
	qsort(picked, k, sizeof *picked, cmp_u32);
	return FM_OK;
}

uint32_t
fmi_fed_cap(const fmi_fed_cfg *cfg)
{
	return cfg->poisson_sampling ? cfg->part->nclients
	                             : cfg->clients_per_round;
}

int
fmi_fed_sample_k(const fmi_fed_cfg *cfg, uint32_t round, uint32_t *picked,
    uint32_t *k)
{
	if (!cfg->poisson_sampling) {
		*k = cfg->clients_per_round;
		return fmi_fed_sample(cfg, round, picked);
	}
	/* one seeded coin per client and round, in id order: ascending */
	uint32_t n = cfg->part->nclients;
	double q = (double)cfg->clients_per_round / (double)n;
	fm_rng r;
	fmi_rng_seed(&r, cfg->seed, 0x706f6973736fULL ^ round);
	*k = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (fmi_rng_uniform(&r) < q) {
			picked[(*k)++] = i;
		}
	}
	return FM_OK;
}

int
srv_sample(fmi_server *s, uint32_t *picked)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t k = 0;
	int rv = fmi_fed_sample_k(cfg, s->round, picked, &k);
	s->nround = k;
	if (s->m != NULL) {
		s->m->sampled = k;
	}
	if (rv == FM_OK && cfg->adversarial != NULL) {
		uint32_t nadv = 0;
		for (uint32_t i = 0; i < k; i++) {
			nadv += cfg->adversarial[picked[i]] != 0;
		}
		srv_metric(s, "adversaries", nadv);
	}
	return rv;
}
