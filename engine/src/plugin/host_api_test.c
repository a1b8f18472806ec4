/* SPDX-License-Identifier: MIT */
/* host_api_test.c: the host table, instances and their node links. */
#include "fm_test.h"

#include <math.h>
#include <pthread.h>

#include "core/core.h"
#include "plugin/registry.h"

/* ---- a fake aggregator, compiled in (no dlopen) -------------------------- */

typedef struct fake {
	const fm_instance *inst;
	int init_rv;
	int *fini_calls;
} fake;

static int fake_init_rv;
static int fake_fini_calls;

static int
fake_init(void *st, const fm_instance *inst)
{
	fake *f = st;
	f->inst = inst;
	f->fini_calls = &fake_fini_calls;
	return fake_init_rv;
}

static void
fake_fini(void *st)
{
	fake *f = st;
	(*f->fini_calls)++;
}

static int
fake_begin(void *st, const fm_round *r)
{
	(void)st;
	(void)r;
	return FM_OK;
}

static int
fake_accept(void *st, const fm_update *u, uint32_t n, int *status)
{
	(void)st;
	(void)u;
	for (uint32_t k = 0; k < n; k++) {
		status[k] = FM_OK;
	}
	return FM_OK;
}

static int
fake_finish(void *st, const float *g, float *out, size_t dim)
{
	(void)st;
	(void)g;
	(void)out;
	(void)dim;
	return FM_OK;
}

static const fm_aggregator_ops fake_ops = {
	.base = FM_OPS(fm_aggregator_ops, FM_KIND_AGGREGATOR, fake, fake_init,
	    fake_fini),
	.begin = fake_begin, .accept = fake_accept, .finish = fake_finish,
};

static const fm_param_desc fake_params[] = {
	{ "lr", FM_PARAM_REAL, 0.5, 0, 1, NULL, "step" },
	{ "mode", FM_PARAM_STRING, 0, 0, 0, "fast", "mode" },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};

static const fm_component_desc fake_desc = FM_COMPONENT(FM_KIND_AGGREGATOR,
    "fake", "a fake aggregator", fake_params, fake_ops, 0);

static const fmi_component fake_comp = { FM_KIND_AGGREGATOR, &fake_desc,
	&fake_ops, NULL, "(compiled in)", FM_PLUGIN_ABI_MAJOR,
	FM_PLUGIN_ABI_MINOR };

/* The instance's open arguments, as a node gives them. */
static fmi_open_args
args(const fm_value *params, size_t dim, uint32_t role, int32_t id,
    uint64_t seed, const fmi_node_link *link)
{
	return (fmi_open_args) { params, dim, role, id, seed, 0, 0, link };
}

/* ---- a fake node ----------------------------------------------------------- */

typedef struct fake_node {
	char comp[64];
	int32_t to;
	char data[16];
	size_t len;
	uint32_t ms;
	uint64_t tag;
	char metric[32];
	double value;
} fake_node;

static int
node_send(void *node, const char *comp, int32_t to, const void *data,
    size_t len)
{
	fake_node *n = node;
	snprintf(n->comp, sizeof n->comp, "%s", comp);
	n->to = to;
	n->len = len;
	memcpy(n->data, data, len < sizeof n->data ? len : sizeof n->data);
	return FM_OK;
}

static int
node_timer(void *node, const char *comp, uint32_t ms, uint64_t tag)
{
	fake_node *n = node;
	snprintf(n->comp, sizeof n->comp, "%s", comp);
	n->ms = ms;
	n->tag = tag;
	return FM_OK;
}

static void
node_metric(void *node, const char *name, double value)
{
	fake_node *n = node;
	snprintf(n->metric, sizeof n->metric, "%s", name);
	n->value = value;
}

/* ---- tests ------------------------------------------------------------------ */

static void
test_table(void **state)
{
	const fm_host_api *h = fmi_host_api();
	(void)state;
	assert_int_equal(h->struct_size, sizeof(fm_host_api));
	assert_int_equal(h->abi_major, FM_PLUGIN_ABI_MAJOR);
	assert_int_equal(h->abi_minor, FM_PLUGIN_ABI_MINOR);
	assert_true(FM_HOST_HAS(h, metric));
	assert_true(FM_HOST_HAS(h, random_bytes));
	assert_string_equal(h->strerror(FM_EPLUGIN), fm_strerror(FM_EPLUGIN));
}

static void
test_memory(void **state)
{
	const fm_host_api *h = fmi_host_api();
	(void)state;
	void *p = h->alloc(0), *q = h->calloc(0, 8);
	assert_non_null(p);
	assert_non_null(q);
	h->free(p);
	h->free(q);
	h->free(NULL);
	unsigned char *z = h->calloc(16, 4);
	for (int i = 0; i < 64; i++) {
		assert_int_equal(z[i], 0);
	}
	h->free(z);
}

static void
test_log(void **state)
{
	fmt_logcap cap = { .n = 0 };
	(void)state;
	fm_log_set_sink(fmt_logcap_sink, &cap);
	fmi_host_api()->log(FM_LOG_WARN, "FM-TEST-X", "value %d", 42);
	fm_log_set_sink(NULL, NULL);
	int i = fmt_logcap_find(&cap, "FM-TEST-X");
	assert_true(i >= 0);
	assert_non_null(strstr(cap.lines[i], "value 42"));
}

static void
test_rng_and_kernels(void **state)
{
	const fm_host_api *h = fmi_host_api();
	fm_rng a, b;
	(void)state;
	h->rng_seed(&a, 7, 3);
	fmi_rng_seed(&b, 7, 3);
	assert_true(h->rng_u64(&a) == fmi_rng_u64(&b));
	double u = h->rng_uniform(&a);
	assert_true(u >= 0 && u < 1);
	float x[3] = { 1, 2, 3 }, y[3] = { 1, 1, 1 }, want[3] = { 3, 5, 7 };
	h->axpy(3, 2.0f, x, y);
	FMT_NEAR(y, want, 3, 1e-6);
	assert_true(fabs(h->dot(3, x, x) - 14.0) < 1e-6);
	assert_true(fabs(h->nrm2(3, x) - sqrt(14.0)) < 1e-6);
	h->scal(3, 0.5f, x);
	assert_true(x[2] == 1.5f);
}

static void
test_random_bytes(void **state)
{
	unsigned char a[32] = { 0 }, b[32] = { 0 }, zero[32] = { 0 };
	(void)state;
	FMT_PASS(fmi_host_api()->random_bytes(a, sizeof a));
	FMT_PASS(fmi_host_api()->random_bytes(b, sizeof b));
	assert_true(memcmp(a, zero, sizeof a) != 0);
	assert_true(memcmp(a, b, sizeof a) != 0);
	FMT_PASS(fmi_host_api()->random_bytes(NULL, 0));
}

static void
test_open_forwards(void **state)
{
	fake_node n = { .to = -1 };
	fmi_node_link link = { &n, node_send, node_timer, node_metric, NULL,
		3, 1u << 20, 0 };
	fmi_agg *a = NULL;
	fm_error e;
	(void)state;
	fake_init_rv = FM_OK;
	fmi_open_args oa = args(NULL, 10, FM_ROLE_SERVER, FM_NODE_SERVER, 99,
	    &link);
	FMT_PASS(fmi_agg_open(&a, &fake_comp, &oa, &e));
	const fake *f = a->h.state;
	const fm_instance *in = f->inst;
	assert_int_equal(in->dim, 10);
	assert_int_equal(in->nparams, 2);
	assert_true(in->params[0].num == 0.5);
	assert_string_equal(in->params[1].str, "fast");
	assert_true(in->seed == 99);
	assert_int_equal(in->struct_size, sizeof(fm_instance));
	fm_limits lim;
	in->host->limits(in, &lim);
	assert_int_equal(lim.struct_size, sizeof lim);
	assert_int_equal(lim.threads, 3);
	assert_true(lim.memory == 1u << 20);
	FMT_PASS(in->host->send(in, 3, "hi", 2));
	assert_string_equal(n.comp, "fake");
	assert_int_equal(n.to, 3);
	assert_memory_equal(n.data, "hi", 2);
	FMT_PASS(in->host->timer(in, 50, 77));
	assert_true(n.ms == 50 && n.tag == 77);
	in->host->metric(in, "pongs", 4);
	assert_string_equal(n.metric, "pongs");
	assert_true(n.value == 4);
	FMT_FAIL(in->host->send(NULL, 3, "hi", 2), FM_EINVAL);
	fake_fini_calls = 0;
	fmi_agg_close(a);
	assert_int_equal(fake_fini_calls, 1);
	fmi_agg_close(NULL);
}

static void
test_no_link(void **state)
{
	fmi_agg *a = NULL;
	(void)state;
	fake_init_rv = FM_OK;
	fmi_open_args oa = args(NULL, 4, FM_ROLE_CLIENT, 2, 1, NULL);
	FMT_PASS(fmi_agg_open(&a, &fake_comp, &oa, NULL));
	const fm_instance *in = ((const fake *)a->h.state)->inst;
	FMT_FAIL(in->host->send(in, 0, "x", 1), FM_ENOTSUP);
	FMT_FAIL(in->host->timer(in, 1, 1), FM_ENOTSUP);
	in->host->metric(in, "dropped", 1); /* no-op */
	fmi_agg_close(a);
}

/* Params are copied, strings included: the caller's may go away. */
static void
test_params_copied(void **state)
{
	char mode[8] = "slow";
	fm_value v[2] = { { 0.25, NULL }, { 0, mode } };
	fmi_agg *a = NULL;
	(void)state;
	fake_init_rv = FM_OK;
	fmi_open_args oa = args(v, 4, FM_ROLE_SERVER, 0, 1, NULL);
	FMT_PASS(fmi_agg_open(&a, &fake_comp, &oa, NULL));
	memset(mode, 'X', sizeof mode - 1);
	v[0].num = 9;
	const fm_instance *in = ((const fake *)a->h.state)->inst;
	assert_true(in->params[0].num == 0.25);
	assert_string_equal(in->params[1].str, "slow");
	fmi_agg_close(a);
}

static void
test_init_failure_calls_fini(void **state)
{
	fmi_agg *a = (fmi_agg *)0x1;
	fm_error e;
	(void)state;
	fake_init_rv = FM_EINVAL;
	fake_fini_calls = 0;
	fmi_open_args oa = args(NULL, 4, FM_ROLE_SERVER, 0, 1, NULL);
	FMT_FAIL(fmi_agg_open(&a, &fake_comp, &oa, &e), FM_EINVAL);
	assert_int_equal(fake_fini_calls, 1);
	assert_true(a == (fmi_agg *)0x1); /* untouched on failure */
	assert_non_null(strstr(e.msg, "fake"));
	fake_init_rv = FM_OK;
}

/* host->parallel_for: every item once, in chunks that depend only on n
 * and the thread count; limits() says the count. */
typedef struct pf_job {
	uint32_t hits[1000];
	size_t chunks[8][2];
	size_t nchunks;
	pthread_mutex_t mu;
} pf_job;

static void
pf_task(void *ud, size_t begin, size_t end)
{
	pf_job *j = ud;
	for (size_t i = begin; i < end; i++) {
		j->hits[i]++;
	}
	pthread_mutex_lock(&j->mu);
	if (j->nchunks < 8) {
		j->chunks[j->nchunks][0] = begin;
		j->chunks[j->nchunks++][1] = end;
	}
	pthread_mutex_unlock(&j->mu);
}

static void
test_parallel_for(void **state)
{
	(void)state;
	for (uint32_t threads = 0; threads <= 4; threads++) {
		fmi_node_link link = { NULL, NULL, NULL, NULL, NULL, threads,
			0, 0 };
		fmi_open_args oa = args(NULL, 4, FM_ROLE_SERVER, 0, 1, &link);
		fmi_agg *a = NULL;
		FMT_PASS(fmi_agg_open(&a, &fake_comp, &oa, NULL));
		const fm_instance *in = ((const fake *)a->h.state)->inst;
		pf_job *j = calloc(1, sizeof *j);
		assert_non_null(j);
		pthread_mutex_init(&j->mu, NULL);
		in->host->parallel_for(in, 1000, pf_task, j);
		size_t want = threads > 1 ? threads : 1;
		assert_int_equal(j->nchunks, want);
		size_t covered = 0;
		for (size_t k = 0; k < j->nchunks; k++) {
			covered += j->chunks[k][1] - j->chunks[k][0];
		}
		assert_int_equal(covered, 1000);
		for (size_t i = 0; i < 1000; i++) {
			assert_int_equal(j->hits[i], 1);
		}
		in->host->parallel_for(in, 0, pf_task, j); /* nothing to do */
		assert_int_equal(j->nchunks, want);
		fm_limits lim;
		in->host->limits(in, &lim);
		assert_int_equal(lim.threads, want);
		pthread_mutex_destroy(&j->mu);
		free(j);
		fmi_agg_close(a);
	}
}

/* 2.2 gauss_noise: the same seed gives the same noise, another seed other
 * noise, the sample has the asked std, 0 adds nothing, a bad std is
 * refused with the reason and x is left as it was; a secure_noise run
 * draws other noise on every call, of the asked std. */
static void
test_gauss_noise(void **state)
{
	enum { N = 20000 };
	const fm_host_api *h = fmi_host_api();
	float *a = calloc(N, sizeof *a), *b = calloc(N, sizeof *b);
	fmi_agg *g = NULL, *sec = NULL;
	fm_error e;
	char why[256];
	(void)state;
	assert_true(a != NULL && b != NULL);
	assert_true(FM_HOST_HAS(h, gauss_noise));
	fake_init_rv = FM_OK;
	fmi_open_args oa = args(NULL, N, FM_ROLE_CLIENT, 3, 5, NULL);
	FMT_PASS(fmi_agg_open(&g, &fake_comp, &oa, &e));
	const fm_instance *in = ((const fake *)g->h.state)->inst;
	FMT_PASS(h->gauss_noise(in, a, N, 0.5, 42));
	FMT_PASS(h->gauss_noise(in, b, N, 0.5, 42));
	assert_memory_equal(a, b, N * sizeof *a);
	double s = 0, ss = 0;
	for (int i = 0; i < N; i++) {
		s += a[i];
		ss += (double)a[i] * a[i];
	}
	double mean = s / N, sd = sqrt(ss / N - mean * mean);
	assert_true(fabs(mean) < 4 * 0.5 / sqrt(N));
	assert_true(fabs(sd - 0.5) < 0.02);
	memset(b, 0, N * sizeof *b);
	FMT_PASS(h->gauss_noise(in, b, N, 0.5, 43));
	assert_true(memcmp(a, b, N * sizeof *a) != 0);
	memcpy(b, a, N * sizeof *a);
	FMT_PASS(h->gauss_noise(in, b, N, 0, 42));
	assert_memory_equal(a, b, N * sizeof *a);
	FMT_FAIL(h->gauss_noise(in, b, N, -1, 42), FM_EINVAL);
	assert_non_null(strstr(fmi_inst_error(&g->h, why, sizeof why), "-1"));
	FMT_FAIL(h->gauss_noise(in, b, N, NAN, 42), FM_EINVAL);
	assert_memory_equal(a, b, N * sizeof *a);
	fmi_node_link link = { .secure_noise = 1 };
	oa.link = &link;
	FMT_PASS(fmi_agg_open(&sec, &fake_comp, &oa, &e));
	in = ((const fake *)sec->h.state)->inst;
	/* secure noise: the seed does not matter (libsodium's randomness),
	 * the std does, and a bad value leaves x as it was */
	memset(a, 0, N * sizeof *a);
	memset(b, 0, N * sizeof *b);
	FMT_PASS(h->gauss_noise(in, a, N, 0.5, 42));
	FMT_PASS(h->gauss_noise(in, b, N, 0.5, 42));
	assert_true(memcmp(a, b, N * sizeof *a) != 0);
	s = ss = 0;
	for (int i = 0; i < N; i++) {
		s += a[i];
		ss += (double)a[i] * a[i];
	}
	mean = s / N;
	sd = sqrt(ss / N - mean * mean);
	assert_true(fabs(mean) < 4 * 0.5 / sqrt(N));
	assert_true(fabs(sd - 0.5) < 0.02);
	memcpy(b, a, N * sizeof *a);
	b[7] = NAN;
	FMT_FAIL(h->gauss_noise(in, b, N, 0.5, 42), FM_ERANGE);
	assert_non_null(strstr(fmi_inst_error(&sec->h, why, sizeof why),
	    "value 7"));
	b[7] = a[7];
	assert_memory_equal(a, b, N * sizeof *a);
	fmi_agg_close(g);
	fmi_agg_close(sec);
	free(a);
	free(b);
}

static void
test_kind_names(void **state)
{
	(void)state;
	assert_string_equal(fmi_kind_name(FM_KIND_AGGREGATOR), "aggregator");
	assert_string_equal(fmi_kind_name(FM_KIND_ATTACK), "attack");
	assert_string_equal(fmi_kind_name(999), "unknown");
	assert_int_equal(fmi_kind_from_name("defence"), FM_KIND_DEFENCE);
	assert_string_equal(fmi_kind_name(FM_KIND_LOCAL), "local");
	assert_string_equal(fmi_kind_name(FM_KIND_PRIVACY), "privacy");
	assert_string_equal(fmi_kind_name(FM_KIND_COMPRESSOR), "compressor");
	assert_int_equal(fmi_kind_from_name("nope"), 0);
	assert_int_equal(fmi_kind_from_name(NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_log),
		cmocka_unit_test(test_rng_and_kernels),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_open_forwards),
		cmocka_unit_test(test_no_link),
		cmocka_unit_test(test_params_copied),
		cmocka_unit_test(test_init_failure_calls_fini),
		cmocka_unit_test(test_parallel_for),
		cmocka_unit_test(test_gauss_noise),
		cmocka_unit_test(test_kind_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
