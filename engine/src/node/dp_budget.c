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
	b->count = NULL;
}

int
fmi_dp_budget_peek(const fmi_dp_budget *b, const uint32_t *picked,
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
