/* SPDX-License-Identifier: MIT */
/* dp_budget.c: epsilon after every round, and the stop at max_epsilon
 * (dp_budget.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/dp_budget.h"
#include "node/fed.h"
#include "privacy/accountant.h"

int
fmi_dp_epsilon(double q, double z, uint64_t steps, int poisson,
    int accountant, double delta, double *eps, fm_error *err)
{
	*eps = 0;
	if (steps == 0 || q == 0) {
		return FM_OK;
	}
	if (accountant == FMI_ACCT_PRV && poisson) {
		fmi_dp_event ev = { q, z, steps };
		double e[3];
		int rv = fmi_prv_epsilon(&ev, 1, delta, 0, 0, e, err);
		if (rv == FM_OK) {
			*eps = e[2];
		}
		return rv;
	}
	double rdp[FMI_RDP_NDEFAULT_ORDERS];
	fmi_rdp_compose(q, z, steps, !poisson && q < 1,
	    fmi_rdp_default_orders, FMI_RDP_NDEFAULT_ORDERS, rdp);
	*eps = fmi_rdp_to_eps(fmi_rdp_default_orders, rdp,
	    FMI_RDP_NDEFAULT_ORDERS, delta, NULL);
	if (isnan(*eps)) {
		return fm_error_set(err, FM_EINVAL, "privacy accounting: no "
		    "epsilon for q = %g, noise multiplier %g, %llu steps, delta "
		    "%g", q, z, (unsigned long long)steps, delta);
	}
	return FM_OK;
}

int
fmi_dp_budget_open(fmi_dp_budget *b, const fmi_fed_cfg *cfg, fm_error *err)
{
	memset(b, 0, sizeof *b);
	b->c = cfg->dp_acct;
	b->on = b->c.mode != FMI_DP_NONE;
	if (!b->on) {
		return FM_OK;
	}
	b->n = cfg->part->nclients;
	b->poisson = cfg->poisson_sampling;
	b->q = (double)cfg->clients_per_round / (double)b->n;
	if (cfg->local.dp.clip > 0 && b->c.delta > 0) {
		b->ex_on = 1;
		b->ex_main = b->c.mode == FMI_DP_EXAMPLE;
		b->ex_z = cfg->local.dp.noise_multiplier;
		b->ex_epochs = cfg->local.epochs;
		b->ex_rounds = calloc(b->n ? b->n : 1, sizeof *b->ex_rounds);
		b->ex_steps = calloc(b->n ? b->n : 1, sizeof *b->ex_steps);
		b->ex_q = calloc(b->n ? b->n : 1, sizeof *b->ex_q);
		if (!b->ex_rounds || !b->ex_steps || !b->ex_q) {
			fmi_dp_budget_close(b);
			return fm_error_set(err, FM_ENOMEM, "out of memory");
		}
		for (uint32_t c = 0; c < b->n; c++) {
			size_t nc = cfg->part->off[c + 1] - cfg->part->off[c];
			uint32_t bs = cfg->local.batch;
			b->ex_steps[c] = (uint64_t)cfg->local.epochs *
			    ((nc + bs - 1) / bs);
			b->ex_q[c] = nc ? FMI_MIN(1.0, (double)bs / nc) : 0;
		}
	}
	if (b->c.mode == FMI_DP_LOCAL) {
		b->count = calloc(b->n ? b->n : 1, sizeof *b->count);
		if (b->count == NULL) {
			return fm_error_set(err, FM_ENOMEM, "out of memory");
		}
	}
	return FM_OK;
}

void
fmi_dp_budget_close(fmi_dp_budget *b)
{
	free(b->count);
	free(b->ex_rounds);
	free(b->ex_steps);
	free(b->ex_q);
	b->count = NULL;
	b->ex_rounds = NULL;
	b->ex_steps = NULL;
	b->ex_q = NULL;
}

/* epsilon of steps Poisson-sampled steps at rate q (RDP), from a cache
 * of per-step RDP vectors. */
static double
ex_epsilon(fmi_dp_budget *b, double q, uint64_t steps)
{
	enum { NO = FMI_RDP_NDEFAULT_ORDERS };
	_Static_assert(NO == 156, "ex_crdp holds the default orders");
	uint32_t i = 0;
	while (i < b->ex_cn && b->ex_cq[i] != q) {
		i++;
	}
	if (i == b->ex_cn) {
		i = b->ex_cn < 8 ? b->ex_cn++ : (uint32_t)(fmi_hash64(
		    (uint64_t)(q * 1e15)) % 8);
		b->ex_cq[i] = q;
		fmi_rdp_compose(q, b->ex_z, 1, 0, fmi_rdp_default_orders, NO,
		    b->ex_crdp[i]);
	}
	double rdp[NO];
	for (uint32_t o = 0; o < NO; o++) {
		rdp[o] = b->ex_crdp[i][o] * (double)steps;
	}
	double e = fmi_rdp_to_eps(fmi_rdp_default_orders, rdp, NO, b->c.delta,
	    NULL);
	return isnan(e) ? INFINITY : e;
}

/* Client c's example-level epsilon after rounds rounds of training, and
 * the no-amplification bound. */
static void
ex_client(fmi_dp_budget *b, uint32_t c, uint32_t rounds, double *eps,
    double *bound)
{
	*eps = *bound = 0;
	if (rounds == 0 || b->ex_q[c] == 0) {
		return;
	}
	*eps = ex_epsilon(b, b->ex_q[c], b->ex_steps[c] * rounds);
	*bound = ex_epsilon(b, 1.0, (uint64_t)b->ex_epochs * rounds);
}

void
fmi_dp_budget_example(const fmi_dp_budget *b, double *eps, double *bound)
{
	*eps = b->ex_eps;
	*bound = b->ex_bound;
}

int
fmi_dp_budget_peek(fmi_dp_budget *b, const uint32_t *picked,
    uint32_t k, double *eps, fm_error *err)
{
	*eps = 0;
	if (!b->on) {
		return FM_OK;
	}
	if (b->c.mode == FMI_DP_CENTRAL) {
		return fmi_dp_epsilon(b->q, b->c.z, (uint64_t)b->rounds + 1,
		    b->poisson, b->c.accountant, b->c.delta, eps, err);
	}
	if (b->c.mode == FMI_DP_EXAMPLE) {
		double most = b->ex_eps, e, bound;
		for (uint32_t i = 0; i < k; i++) {
			ex_client(b, picked[i], b->ex_rounds[picked[i]] + 1, &e,
			    &bound);
			most = fmax(most, e);
		}
		*eps = most;
		return FM_OK;
	}
	uint32_t most = b->most;
	for (uint32_t i = 0; i < k; i++) {
		most = FMI_MAX(most, b->count[picked[i]] + 1);
	}
	return fmi_dp_epsilon(1, b->c.z, most, 1, b->c.accountant, b->c.delta,
	    eps, err);
}

void
fmi_dp_budget_commit(fmi_dp_budget *b, const uint32_t *picked, uint32_t k)
{
	if (!b->on) {
		return;
	}
	b->rounds++;
	for (uint32_t i = 0; b->count != NULL && i < k; i++) {
		b->most = FMI_MAX(b->most, ++b->count[picked[i]]);
	}
	for (uint32_t i = 0; b->ex_on && i < k; i++) {
		double e, bound;
		uint32_t c = picked[i];
		ex_client(b, c, ++b->ex_rounds[c], &e, &bound);
		b->ex_eps = fmax(b->ex_eps, e);
		b->ex_bound = fmax(b->ex_bound, bound);
	}
}

int
fmi_dp_budget_replay(fmi_dp_budget *b, const fmi_fed_cfg *cfg, uint32_t upto,
    fm_error *err)
{
	if (!b->on) {
		return FM_OK;
	}
	uint32_t *picked = malloc((b->n ? b->n : 1) * sizeof *picked);
	if (picked == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	int rv = FM_OK;
	for (uint32_t r = 1; r <= upto && rv == FM_OK; r++) {
		uint32_t k = 0;
		rv = fmi_fed_sample_k(cfg, r, picked, &k);
		if (rv == FM_OK) {
			fmi_dp_budget_commit(b, picked, k);
		}
	}
	free(picked);
	return rv == FM_OK ? rv : fm_error_set(err, rv, "out of memory");
}
