/* SPDX-License-Identifier: MIT */
/* myavg.c: an out-of-tree aggregator: FedAvg with a server learning rate. */
#include <string.h>

#include <fedmesh/plugin.h>  /* the plugin ABI */

/* Parameters, in declaration order: fm_instance.params[i] matches. */
enum { P_SERVER_LR, P_MIN_EXAMPLES };

static const fm_param_desc myavg_params[] = {
	{ "server_lr", FM_PARAM_REAL, 1.0, 0.0, 10.0, NULL,
	    "Step applied to the averaged delta." },
	{ "min_examples", FM_PARAM_INT, 0, 0, 1e9, NULL,
	    "Updates trained on fewer examples are ignored." },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

/* Instance state: allocated (zeroed) and freed by the host. */
typedef struct myavg {
	const fm_host_api *host;
	float *acc; /* [dim]: sum of n_k * delta_k */
	size_t dim;
	double weight;
	float server_lr;
	uint64_t min_examples;
} myavg;

static int
myavg_init(void *st, const fm_instance *inst)
{
	myavg *m = st;
	m->host = inst->host;
	m->dim = inst->dim;
	m->server_lr = (float)inst->params[P_SERVER_LR].num;
	m->min_examples = (uint64_t)inst->params[P_MIN_EXAMPLES].num;
	m->acc = m->host->calloc(m->dim, sizeof(float));
	return m->acc != NULL ? FM_OK : FM_ENOMEM;
}

static void
myavg_fini(void *st) /* also runs after a failed init */
{
	myavg *m = st;
	if (m->host != NULL) {
		m->host->free(m->acc);
	}
}

static int
myavg_begin(void *st, const fm_round *r)
{
	myavg *m = st;
	if (r->dim != m->dim) {
		return FM_EINVAL;
	}
	memset(m->acc, 0, m->dim * sizeof(float));
	m->weight = 0;
	return FM_OK;
}

/* u[0..n) are borrowed, and stepped by their struct_size (FM_AT): a newer
 * host may pass larger structs. */
static int
myavg_accept(void *st, const fm_update *u, uint32_t n, int *status)
{
	myavg *m = st;
	for (uint32_t k = 0; k < n; k++) {
		const fm_update *uk = FM_AT(const fm_update, u, k);
		status[k] = uk->dim != m->dim || uk->delta == NULL ? FM_EINVAL :
		    FM_OK;
		if (status[k] != FM_OK || uk->num_examples == 0 ||
		    uk->num_examples < m->min_examples) {
			continue; /* refused, or weighs nothing */
		}
		m->host->axpy(m->dim, (float)uk->num_examples, uk->delta,
		    m->acc);
		m->weight += (double)uk->num_examples;
	}
	return FM_OK;
}

/* out holds a copy of global on entry: the new model goes there. */
static int
myavg_finish(void *st, const float *global, float *out, size_t dim)
{
	myavg *m = st;
	(void)global;
	if (dim != m->dim) {
		return FM_EINVAL;
	}
	if (m->weight > 0) {
		m->host->axpy(dim, (float)(m->server_lr / m->weight), m->acc,
		    out);
	}
	return FM_OK;
}

/* The ops table: fm_ops first (sizes, kind, state, init, fini), then the
 * aggregator's calls. */
static const fm_aggregator_ops myavg_ops = {
	.base = FM_OPS(fm_aggregator_ops, FM_KIND_AGGREGATOR, myavg,
	    myavg_init, myavg_fini),
	.begin = myavg_begin,
	.accept = myavg_accept,
	.finish = myavg_finish,
};

static const fm_component_desc myavg_components[] = {
	FM_COMPONENT(FM_KIND_AGGREGATOR, "myavg",
	    "FedAvg with a server learning rate", myavg_params, myavg_ops, 0),
};

FM_PLUGIN("myavg", "0.2.0", "MIT", "Example out-of-tree aggregator",
    myavg_components, NULL);
