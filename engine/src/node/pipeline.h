/* SPDX-License-Identifier: MIT */
/*
 * pipeline.h: one round of aggregation on an aggregating node, the same
 * for a star's server, every level of a hierarchy and fm.aggregate.
 *
 *   begin -> add (each update) -> run: attack -> defence -> privacy ->
 *   aggregator -> finish: aggregator's new model into the pipeline's own
 *   buffer, the local rule's round_end, a finiteness check, and only then
 *   the node's model changes.
 *
 * When no stage needs the round's updates at once (no attack on updates,
 * no defence, no privacy stage), add feeds each update to the aggregator
 * as it comes and holds nothing (FedAvg streams: one accumulator).
 * Otherwise add copies it into a 64-byte aligned row and run passes the
 * rows through the stages. The node opens and closes the instances; the
 * pipeline borrows them.
 */
#ifndef FMI_NODE_PIPELINE_H
#define FMI_NODE_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"
#include "plugin/registry.h"

/* What became of a row (fmi_pipe.row_status). */
enum fmi_row_status {
	FMI_ROW_KEPT = 1,     /* aggregated (alone or in a combination) */
	FMI_ROW_REJECTED = 2, /* a defence left it out */
	FMI_ROW_UNUSED = 3    /* a stage failed or the aggregator refused */
};

typedef struct fmi_pipe {
	fmi_atk *atk;   /* model poisoning (poison_updates), or NULL */
	fmi_def *def;   /* or NULL */
	fmi_priv *priv; /* server side, or NULL; the rows wait for it when it
	                 * has a server call (central DP) */
	fmi_agg *agg;   /* required */
	fmi_loc *loc;   /* a local rule's server side, or NULL */
	size_t dim, stride;
	uint32_t cap;   /* most rows a round */
	uint32_t n;     /* rows held this round */
	float *rows;    /* [cap][stride], or NULL when updates stream */
	int borrowed;   /* rows belong to the caller (fmi_pipe_set_rows) */
	fm_update *meta; /* [cap] row i's update */
	uint32_t *keep;
	uint64_t *keep_ne;
	fm_update *kept;
	int *status;
	uint8_t *adv;        /* [cap] row i is an adversary's */
	uint8_t *row_status; /* [cap] enum fmi_row_status, after run */
	float *out;          /* [dim] the round's new model */
	uint32_t fed;        /* updates the aggregator took this round */
	int defended;        /* the defence ran this round */
	int combined;        /* ... and returned one combination of all */
	uint32_t nkeep;      /* rows the defence passed on */
	uint32_t round;
	char why[256];       /* why the round's last failure failed */
} fmi_pipe;

/* What run needs from the node. */
typedef struct fmi_pipe_ctx {
	const float *global;       /* the model the updates apply to */
	const float *server_delta; /* FLTrust's root-data update, or NULL */
	const uint8_t *adversarial; /* [clients] by node id - 1, or NULL */
	uint64_t attack_seed;
	double *adv_norms;         /* [cap] or NULL: an adversarial row's
	                            * norm after the attack, by norm() */
	double (*norm)(const float *x, size_t n);
	uint64_t priv_seed;        /* fm_rows.seed of the privacy stage */
} fmi_pipe_ctx;

/* Set the stage pointers first: updates wait as rows when an attack on
 * updates, a defence or a privacy stage is set. With borrow, the rows are
 * the caller's, given every round with fmi_pipe_set_rows (nodes that
 * share one row buffer, as a hierarchy's edges do). */
int fmi_pipe_init(fmi_pipe *p, size_t dim, uint32_t cap, int borrow,
    fm_error *err);
/* Whether updates wait as rows. */
int fmi_pipe_holds(const fmi_pipe *p);
/* The round's rows: rows[cap][stride] (stride as p->stride); cap <= the
 * init cap. Call before begin. */
void fmi_pipe_set_rows(fmi_pipe *p, float *rows, uint32_t cap);
void fmi_pipe_fini(fmi_pipe *p);

int fmi_pipe_begin(fmi_pipe *p, const fm_round *r);
/* One update (u->delta is copied when rows are held). FM_OK, or the
 * aggregator's refusal of a streamed update (logged). */
int fmi_pipe_add(fmi_pipe *p, const fm_update *u);
/* The stages over the held rows, then the aggregator (no-op when
 * streaming). Fills row_status; FM_OK or the failing stage's error. */
int fmi_pipe_run(fmi_pipe *p, const fmi_pipe_ctx *c);
/* The aggregator's (and local rule's) new model into p->out, then into
 * model[dim] when everything succeeded and it is finite; model is left
 * as it was otherwise (p->why says why). name: the node, for logs. */
int fmi_pipe_finish(fmi_pipe *p, const fm_round *r, float *model,
    const char *name);

#endif /* FMI_NODE_PIPELINE_H */
