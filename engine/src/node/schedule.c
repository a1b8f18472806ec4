/* SPDX-License-Identifier: MIT */
/* schedule.c: learning-rate schedules and the simulated fault plan. */
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "node/node.h"

double
fmi_lr_factor(const fmi_lr_schedule *s, uint32_t round)
{
	uint32_t t = round > 0 ? round - 1 : 0; /* rounds since the first */
	if (s == NULL) {
		return 1.0;
	}
	switch (s->kind) {
	case FMI_LR_STEP:
		return pow(s->gamma, (double)(t / (s->every ? s->every : 1)));
	case FMI_LR_EXP:
		return pow(s->gamma, (double)t);
	case FMI_LR_COSINE: {
		uint32_t n = s->rounds ? s->rounds : 1;
		double x = (double)FMI_MIN(t, n) / (double)n;
		return s->floor + (1.0 - s->floor) * 0.5 *
		    (1.0 + cos(3.14159265358979323846 * x));
	}
	default:
		return 1.0;
	}
}

int
fmi_lr_check(const fmi_lr_schedule *s, fm_error *err)
{
	switch (s->kind) {
	case FMI_LR_NONE:
	case FMI_LR_CONSTANT:
		return FM_OK;
	case FMI_LR_STEP:
	case FMI_LR_EXP:
		if (s->kind == FMI_LR_STEP && s->every < 1) {
			return fm_error_set(err, FM_EINVAL, "step: 'every' must "
			    "be at least 1 round");
		}
		if (!(s->gamma > 0 && s->gamma <= 1)) {
			return fm_error_set(err, FM_EINVAL, "%s: 'gamma' must be "
			    "in (0, 1] (a decay factor), not %g",
			    s->kind == FMI_LR_STEP ? "step" : "exponential",
			    s->gamma);
		}
		return FM_OK;
	case FMI_LR_COSINE:
		if (s->rounds < 1) {
			return fm_error_set(err, FM_EINVAL, "cosine: 'rounds' "
			    "must be at least 1");
		}
		if (!(s->floor >= 0 && s->floor <= 1)) {
			return fm_error_set(err, FM_EINVAL, "cosine: the final "
			    "learning rate must be between 0 and the base one");
		}
		return FM_OK;
	default:
		return fm_error_set(err, FM_EINVAL, "unknown schedule kind %u",
		    s->kind);
	}
}

float
fmi_round_lr(const fmi_fed_cfg *cfg, uint32_t round)
{
	return (float)((double)cfg->local.opt.lr *
	    fmi_lr_factor(&cfg->lr_sched, round));
}

/* How many of k: round(frac * k). */
static uint32_t
fault_count(double frac, uint32_t k)
{
	double n = floor(frac * (double)k + 0.5);
	return n <= 0 ? 0 : n >= k ? k : (uint32_t)n;
}

int
fmi_fed_validate_rounds(const fmi_fed_cfg *c, fm_error *err)
{
	const fmi_faults *f = &c->faults;
	if (!(f->dropout >= 0 && f->dropout <= 1 && f->straggler >= 0 &&
	    f->straggler <= 1 && f->dropout + f->straggler <= 1)) {
		return fm_error_set(err, FM_EINVAL, "faults: dropout and "
		    "straggler are fractions of the sampled clients (each in "
		    "[0, 1], together at most 1), not %g and %g", f->dropout,
		    f->straggler);
	}
	if (fmi_faults_on(c) && c->clients_per_round > 0) {
		/* the plan is exact: so many fail in every round, so a quorum
		 * above what is left fails every round; say so before round 1 */
		uint32_t k = c->clients_per_round;
		uint32_t nd = fault_count(f->dropout, k);
		uint32_t ns = FMI_MIN(fault_count(f->straggler, k), k - nd);
		uint32_t left = k - nd - ns;
		uint32_t quorum = c->min_updates ? c->min_updates : k;
		if (left < quorum) { /* quorum >= 1 */
			return fm_error_set(err, FM_EINVAL, "faults: %u of the %u "
			    "clients sampled each round drop out and %u arrive "
			    "late, so %u updates a round arrive in time, %s the "
			    "quorum of %u (min_updates%s): no round could "
			    "aggregate; %s", nd, k, ns, left, left < quorum ?
			    "below" : "and", quorum, c->min_updates ? "" :
			    ", by default every sampled client", left > 0 ?
			    "set min_updates to at most the updates that arrive"
			    : "lower dropout and straggler");
		}
	}
	fm_error e;
	if (fmi_lr_check(&c->lr_sched, &e) != FM_OK) {
		return fm_error_set(err, FM_EINVAL, "local lr_schedule: %s",
		    e.msg);
	}
	if (fmi_lr_check(&c->server_lr_sched, &e) != FM_OK) {
		return fm_error_set(err, FM_EINVAL, "server_lr_schedule: %s",
		    e.msg);
	}
	return FM_OK;
}

int
fmi_faults_on(const fmi_fed_cfg *cfg)
{
	return cfg->faults.dropout > 0 || cfg->faults.straggler > 0;
}

int
fmi_fault_plan(const fmi_fed_cfg *cfg, uint32_t round, uint32_t k,
    uint8_t *plan)
{
	uint32_t nd = fault_count(cfg->faults.dropout, k);
	uint32_t ns = fault_count(cfg->faults.straggler, k);
	ns = FMI_MIN(ns, k - nd);
	for (uint32_t i = 0; i < k; i++) {
		plan[i] = FMI_FAULT_NONE;
	}
	if (nd + ns == 0) {
		return FM_OK;
	}
	uint32_t *perm = malloc(k * sizeof *perm);
	if (perm == NULL) {
		return FM_ENOMEM;
	}
	for (uint32_t i = 0; i < k; i++) {
		perm[i] = i;
	}
	fm_rng r;
	fmi_rng_seed(&r, cfg->faults.seed, 0x6661756c74ULL ^ /* "fault" */
	    ((uint64_t)round << 40));
	for (uint32_t i = 0; i < nd + ns; i++) { /* partial Fisher-Yates */
		uint32_t j = i + (uint32_t)fmi_rng_below(&r, k - i);
		uint32_t tmp = perm[i];
		perm[i] = perm[j];
		perm[j] = tmp;
		plan[perm[i]] = i < nd ? FMI_FAULT_DROPOUT : FMI_FAULT_STRAGGLER;
	}
	free(perm);
	return FM_OK;
}
