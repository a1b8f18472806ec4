/* SPDX-License-Identifier: MIT */
/* accumulate.h: the example-weighted sum of client deltas, shared by the
 * aggregator plugins (header only: each plugin stays one self-contained .so). */
#ifndef FM_PLUGINS_ACCUMULATE_H
#define FM_PLUGINS_ACCUMULATE_H

#include "fedmesh/plugin.h"

/* acc[dim] += n_k * delta_k and *weight += n_k for one update. Updates with
 * zero examples weigh nothing; a wrong size or a missing delta is
 * FM_EINVAL. */
static inline int
fm_accumulate_update(const fm_host_api *host, float *acc, double *weight,
    size_t dim, const fm_update *u)
{
	if (u->dim != dim || u->delta == NULL || acc == NULL) {
		return FM_EINVAL;
	}
	if (u->num_examples > 0) {
		host->axpy(dim, (float)u->num_examples, u->delta, acc);
		*weight += (double)u->num_examples;
	}
	return FM_OK;
}

#endif /* FM_PLUGINS_ACCUMULATE_H */
