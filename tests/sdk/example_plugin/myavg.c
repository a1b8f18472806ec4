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

static int
myavg_accept(void *st, const fm_update *u) /* u is borrowed */
{
	myavg *m = st;
	if (u->dim != m->dim) {
		return FM_EINVAL;
	}
	if (u->num_examples == 0 || u->num_examples < m->min_examples) {
		return FM_OK;
	}
	m->host->axpy(m->dim, (float)u->num_examples, u->delta, m->acc);
	m->weight += (double)u->num_examples;
	return FM_OK;
}

static int
myavg_finish(void *st, float *global, size_t dim)
{
	myavg *m = st;
	if (m->weight > 0) {
		m->host->axpy(dim, (float)(m->server_lr / m->weight), m->acc,
		    global);
	}
	return FM_OK;
}

static const fm_aggregator_ops myavg_ops = {
	.a_struct_size = sizeof(fm_aggregator_ops),
	.a_kind = FM_KIND_AGGREGATOR,
	.a_name = "myavg",
	.a_state_size = sizeof(myavg),
	.a_init = myavg_init,
	.a_fini = myavg_fini,
	.a_begin = myavg_begin,
	.a_accept = myavg_accept,
	.a_finish = myavg_finish,
};

static const fm_component_desc myavg_components[] = {
	{ FM_KIND_AGGREGATOR, "myavg", "FedAvg with a server learning rate",
	    myavg_params },
};

FM_PLUGIN_DEFINE("myavg", "0.1.0", "MIT", "Example out-of-tree aggregator",
    myavg_components);

FM_PLUGIN_INIT(r, host)
{
	return host->register_component(r, &myavg_ops, sizeof myavg_ops);
}
