/* SPDX-License-Identifier: MIT */
/*
 * dp_budget.h: the privacy budget of a federation (docs/privacy.md,
 * "Accounting"): epsilon after every round for the run's mechanism, and
 * the stop at max_epsilon.
 *
 *   central DP (dp_fixed, dp_adaptive): user-level; one release per
 *     round of the sampled Gaussian mechanism with noise multiplier z on
 *     the clipped updates, rate q = clients_per_round / clients; Poisson
 *     sampling (add/remove a client) or fixed-size sampling without
 *     replacement (replace one client), as the run samples. T rounds
 *     compose: epsilon(q, z, T).
 *   local DP (dp_local): each client's own releases, seen by the server
 *     with who sent them, so no amplification by sampling: a client that
 *     took part in n rounds spent epsilon(1, z, n); the run reports the
 *     most any client spent.
 *   example-level DP-SGD (local_training.dp, with no mechanism above or
 *     beside one as example_epsilon): client c with n_c examples takes
 *     epochs * ceil(n_c / batch) noised steps per round it is in, each
 *     batch a fraction q_c = batch / n_c of its data; accounted as Poisson
 *     sampling at q_c (the convention of Abadi et al., TF Privacy and
 *     Opacus), the most any client spent. Batches are shuffled, not
 *     Poisson-sampled, so that number is the customary approximation
 *     (Chua et al. 2024 show it can understate epsilon);
 *     epsilon_no_sampling is a bound that holds for shuffling: no
 *     amplification, each epoch one release of the example.
 *
 * Everything here is a function of the configuration and of which
 * clients each round sampled (seeded), so a resumed run rebuilds it by
 * replaying the sampling (fmi_dp_budget_replay) and needs nothing in the
 * checkpoint.
 */
#ifndef FMI_NODE_DP_BUDGET_H
#define FMI_NODE_DP_BUDGET_H

#include <stdint.h>

#include "fedmesh/fedmesh.h"

enum { FMI_DP_NONE = 0, FMI_DP_CENTRAL = 1, FMI_DP_LOCAL = 2,
	FMI_DP_EXAMPLE = 3 };

typedef struct fmi_dp_acct_cfg {
	int mode;           /* FMI_DP_* */
	int accountant;     /* fmi_acct_kind: FMI_ACCT_RDP or FMI_ACCT_PRV */
	double z;           /* noise multiplier of one release */
	double delta;       /* the delta epsilon is reported at */
	double max_epsilon; /* stop before a round would spend more; 0: none */
} fmi_dp_acct_cfg;

struct fmi_fed_cfg;

typedef struct fmi_dp_budget {
	fmi_dp_acct_cfg c;
	int on;
	int poisson;     /* clients are Poisson-sampled */
	double q;        /* sampling rate */
	uint32_t n;      /* clients */
	uint32_t rounds; /* rounds accounted */
	uint32_t *count; /* [n] local DP: releases of each client */
	uint32_t most;   /* local DP: the largest count */
	/* example-level DP-SGD (ex_on): rounds each client trained in, its
	 * steps a round and rate, and the largest epsilons so far */
	int ex_on, ex_main; /* ex_main: its epsilon is the run's */
	double ex_z;
	uint32_t ex_epochs;
	uint32_t *ex_rounds;   /* [n] */
	uint64_t *ex_steps;    /* [n] per round */
	double *ex_q;          /* [n] */
	double ex_eps, ex_bound;
	/* per-step RDP at the default orders of the last rates seen (most
	 * partitions have a few client sizes) */
	double ex_cq[8];
	double ex_crdp[8][156];
	uint32_t ex_cn;
} fmi_dp_budget;

/* epsilon of steps releases at rate q, noise multiplier z, delta. */
int fmi_dp_epsilon(double q, double z, uint64_t steps, int poisson,
    int accountant, double delta, double *eps, fm_error *err);

int fmi_dp_budget_open(fmi_dp_budget *b, const struct fmi_fed_cfg *cfg,
    fm_error *err);
void fmi_dp_budget_close(fmi_dp_budget *b);
/* epsilon once the round that samples picked[0..k) is accounted too
 * (nothing is accounted; only a cache changes). */
int fmi_dp_budget_peek(fmi_dp_budget *b, const uint32_t *picked,
    uint32_t k, double *eps, fm_error *err);
/* Accounts the round. */
void fmi_dp_budget_commit(fmi_dp_budget *b, const uint32_t *picked,
    uint32_t k);
/* Example-level DP-SGD after a committed round: the sampled-rate epsilon
 * and the no-amplification bound (both the most of any client). */
void fmi_dp_budget_example(const fmi_dp_budget *b, double *eps,
    double *bound);
/* Accounts rounds 1..upto as the run sampled them (a resumed run). */
int fmi_dp_budget_replay(fmi_dp_budget *b, const struct fmi_fed_cfg *cfg,
    uint32_t upto, fm_error *err);

#endif /* FMI_NODE_DP_BUDGET_H */
