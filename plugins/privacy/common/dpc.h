/* SPDX-License-Identifier: MIT */
/*
 * dpc.h: what the differential-privacy plugins share (compiled into each
 * .so, never exported): errors with the reason for the user, flat L2
 * clipping, Gaussian noise through the host (host->gauss_noise, ABI 2.2),
 * the messages between a mechanism's server and client instances, and
 * the central-DP server step (clip every row, one unweighted noised mean).
 *
 * Messages (host->send, little endian, the round in fm_message.round):
 *   server -> client  DPC_MSG_CLIP, then the clip norm as an IEEE double
 *                     (9 bytes): the bound the client clips to this round
 *   client -> server  DPC_MSG_BIT, then 1 if the client's update was
 *                     clipped, 0 if its norm was within the bound (2
 *                     bytes); sent before the update, on the same
 *                     ordered connection, so it arrives first
 */
#ifndef FM_PRIVACY_DPC_H
#define FM_PRIVACY_DPC_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/plugin.h"

#define DPC_MSG_CLIP 1
#define DPC_MSG_BIT 2
#define DPC_CLIP_LEN 9
#define DPC_BIT_LEN 2

/* What every DP instance starts with. */
typedef struct dpc_base {
	const fm_host_api *host;
	const fm_instance *inst;
	const char *name;  /* component name, for logs */
	const char *logid; /* stable log id, e.g. "FM-DP-FIXED" */
	size_t dim;
	int server;        /* runs on an aggregating node (server, edge) */
} dpc_base;

/* Logs an error and gives it (host->set_error) as the reason of the
 * failing call, without a leading "<name>: ". */
void dpc_error(const dpc_base *b, const char *fmt, ...) FM_PRINTF(2, 3);

/* Sets b up; refuses an empty model, another parameter count than
 * nparams, and a host without gauss_noise (ABI < 2.2). */
int dpc_init(dpc_base *b, const fm_instance *inst, const char *name,
    const char *logid, uint32_t nparams);

/* Checks of numeric parameters; each says which is wrong and why. */
int dpc_positive(const dpc_base *b, const char *param, double v,
    const char *what);
int dpc_nonneg(const dpc_base *b, const char *param, double v,
    const char *what);
int dpc_open01(const dpc_base *b, const char *param, double v,
    const char *what);

/* Flat clipping: x[n] scaled to L2 norm at most c (scale = min(1,
 * c / ||x||)). Returns the norm before; *clipped (may be NULL) gets 1 when
 * it was scaled. A norm that is not finite is returned as is, x
 * untouched: refuse the update. */
double dpc_clip(const dpc_base *b, float *x, size_t n, double c,
    int *clipped);

/* N(0, std^2) on x[n] from stream seed, through host->gauss_noise. */
int dpc_noise(const dpc_base *b, float *x, size_t n, double std,
    uint64_t seed);

/* The messages (buf of DPC_CLIP_LEN / DPC_BIT_LEN bytes). */
void dpc_put_clip(unsigned char buf[DPC_CLIP_LEN], double c);
void dpc_put_bit(unsigned char buf[DPC_BIT_LEN], int clipped);
/* A message's clip norm (> 0, finite), or its bit; FM_EPROTO when it is
 * not such a message. */
int dpc_get_clip(const fm_message *m, double *c);
int dpc_get_bit(const fm_message *m, int *clipped);

/* ---- a round on the aggregating node (central DP) ----------------------- */

/*
 * The clients of a round and the clipped bits they sent: begin records
 * the sampled clients (their count is the mean's fixed denominator),
 * on_message their bits; rows of clients that sent none count by what
 * the server's own clipping found.
 */
typedef struct dpc_round {
	uint32_t round;
	uint32_t m;          /* clients sampled at this node this round */
	double denom;        /* the mean's denominator: m, or the expected
	                      * count with Poisson sampling */
	uint32_t cap;
	int32_t *ids;        /* [m] sorted node ids */
	int8_t *bit;         /* [m] -1: none came; 0 within the bound; 1 clipped */
} dpc_round;

/* A new round (r->clients[0..r->nclients)); FM_ENOMEM, FM_EINVAL. */
int dpc_round_begin(const dpc_base *b, dpc_round *d, const fm_round *r);
/* A client's bit for the round under way (others are dropped, logged). */
int dpc_round_bit(const dpc_base *b, dpc_round *d, const fm_message *m);
void dpc_round_free(const dpc_base *b, dpc_round *d);

/* What dpc_central did. */
typedef struct dpc_stats {
	uint32_t rows;      /* rows that went into the mean */
	uint32_t clipped;   /* of them clipped (the client's bit, else the
	                     * server's clipping) */
	uint32_t unclipped; /* ... and within the bound */
	double std_mean;    /* noise std on the mean, per coordinate */
} dpc_stats;

/*
 * Central DP with a fixed denominator (McMahan et al. 2018, the f~_f
 * estimator with unit weights): every row that passed the defence
 * (keep[0..nkeep)) is clipped to c at the server (a no-op for a client
 * that clipped already; the bound holds whatever the client did), the
 * rows are summed unweighted, N(0, (z c)^2) is added to the sum (stream
 * r->seed) and the result divided by d->denom, the clients sampled at
 * this node (their expected count with Poisson sampling). It replaces the first kept row, which passes alone with the
 * round's total examples: any aggregator then starts from the noised
 * mean (post-processing). Nothing kept: nothing passes.
 */
int dpc_central(const dpc_base *b, dpc_round *d, fm_rows *r, double c,
    double z, dpc_stats *st);

#endif /* FM_PRIVACY_DPC_H */
