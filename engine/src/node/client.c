/* SPDX-License-Identifier: MIT */
/* client.c: a client host: trains the clients the server asks for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/node.h"
#include "node/store.h"

typedef struct cli_host cli_host;

#define CLI_EARLY_MAX 64

/* A client of the current round hosted here: its TRAIN request (until
 * trained) and, for plugins that talk, its client-side instance. Tasks are
 * heap-allocated so plugin links can point at them. */
typedef struct cli_task {
	cli_host *h;
	int32_t client;
	uint32_t round;
	int trained;
	uint64_t serial; /* unique among this process's tasks (store.h) */
	uint64_t seq; /* this client's message counter */
	fmi_rmsg req;
	fmi_loc *inst; /* the local rule's client side, or NULL */
	fmi_agg *agg;  /* the aggregator's client side, when it talks */
	fmi_def *def;  /* the defence's client side, when it talks */
	fmi_priv *priv; /* the privacy mechanism's client side, or NULL */
	const char *state_comp; /* holds this component's client state */
	/* a simulated straggler: its update (or its failure) leaves only
	 * once the server said the round ended */
	int late, failed;
	fmi_msg late_msg;
	fmi_payload *late_data;
} cli_task;

struct cli_host {
	const fmi_fed_cfg *cfg;
	fmi_tran *t;
	fmi_trainer *tr;
	float *global;
	size_t dim;
	cli_task **tasks;
	uint32_t ntasks, cap;
	fmi_timers timers;
	uint64_t seq;
	int done;
	fmi_atk *atk; /* opened on the first adversarial task */
	fmi_client_opts opts;
	double last_heard, last_sent;
	/* Plugin messages that came before their client's TRAIN request (a
	 * server aggregator talks from a_begin, before the models go out):
	 * held until the task opens its instance, or its round ends. */
	fmi_rmsg early[CLI_EARLY_MAX];
	uint32_t nearly;
	fmi_store *store, *own_store; /* host->client_state */
	/* simulated faults: the plan of round fround, by sampled slot */
	uint32_t fround;
	uint32_t *fpicked;
	uint8_t *fplan;
};

/* seq counts per client node (from the round), not per host, so messages
 * are the same whichever thread hosts the client. */
static uint64_t
cli_seq(uint32_t round, uint64_t *seq)
{
	return ((uint64_t)round << 20) + ++*seq;
}

static void
cli_msg(cli_host *h, fmi_msg *m, uint32_t type, uint32_t round, int32_t from,
    uint64_t *seq)
{
	memset(m, 0, sizeof *m);
	m->type = type;
	m->fed = fmi_fed_id(h->cfg->seed);
	m->round = round;
	m->from = from;
	m->to = FM_NODE_SERVER;
	m->seq = cli_seq(round, seq);
}

/* Tells the server this client's training failed (an update of no
 * floats), so its round need not wait for the deadline. */
static void
cli_send_failed(cli_host *h, cli_task *task)
{
	fmi_msg u;
	if (task->late) { /* a straggler fails late too */
		task->failed = 1;
		return;
	}
	cli_msg(h, &u, FMI_MSG_UPDATE, task->round, task->client, &task->seq);
	u.n = 0;
	(void)fmi_tran_send(h->t, NULL, &u, NULL);
}

/* The simulated fault of client (node id) in round: the server's plan,
 * worked out the same way here (cached per round). */
static int
cli_fault(cli_host *h, uint32_t round, int32_t client)
{
	const fmi_fed_cfg *cfg = h->cfg;
	uint32_t k = cfg->clients_per_round, c = (uint32_t)client - 1;
	if (!fmi_faults_on(cfg)) {
		return FMI_FAULT_NONE;
	}
	if (h->fpicked == NULL) {
		h->fpicked = malloc(k * sizeof *h->fpicked);
		h->fplan = malloc(k);
		h->fround = 0;
	}
	if (h->fpicked == NULL || h->fplan == NULL) {
		return FMI_FAULT_NONE; /* out of memory: no simulated faults */
	}
	if (h->fround != round) {
		if (fmi_fed_sample(cfg, round, h->fpicked) != FM_OK ||
		    fmi_fault_plan(cfg, round, k, h->fplan) != FM_OK) {
			h->fround = 0;
			return FMI_FAULT_NONE;
		}
		h->fround = round;
	}
	uint32_t lo = 0, hi = k; /* fpicked is ascending */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (h->fpicked[mid] < c) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo < k && h->fpicked[lo] == c ? h->fplan[lo] : FMI_FAULT_NONE;
}

static cli_task *
cli_find(cli_host *h, int32_t client)
{
	for (uint32_t i = 0; i < h->ntasks; i++) {
		if (h->tasks[i]->client == client) {
			return h->tasks[i];
		}
	}
	return NULL;
}

/* ---- plugin links: a client-side instance talks to the server --------- */

static int
cli_plugin_send(void *node, const char *comp, int32_t to, const void *data,
    size_t len)
{
	cli_task *task = node;
	fmi_msg m;
	if (to != FM_NODE_SERVER) {
		return FM_ENOENT; /* a star client only reaches the server */
	}
	fmi_plugin_msg(&m, fmi_fed_id(task->h->cfg->seed), task->round,
	    task->client, FM_NODE_SERVER,
	    cli_seq(task->round, &task->seq), comp, len);
	return fmi_tran_send_bytes(task->h->t, NULL, &m, data, len);
}

/* The task's client-side instances: local rule, aggregator, defence,
 * privacy mechanism (NULL where it has none). */
#define CLI_TALKERS 4
static void
cli_talkers(const cli_task *task, fmi_inst_head *out[CLI_TALKERS])
{
	out[0] = task->inst != NULL ? &task->inst->h : NULL;
	out[1] = task->agg != NULL ? &task->agg->h : NULL;
	out[2] = task->def != NULL ? &task->def->h : NULL;
	out[3] = task->priv != NULL ? &task->priv->h : NULL;
}

/* The task's client-side instance of component `name`, or NULL. */
static fmi_inst_head *
cli_instance(cli_task *task, const char *name)
{
	fmi_inst_head *h[CLI_TALKERS];
	cli_talkers(task, h);
	for (int i = 0; i < CLI_TALKERS; i++) {
		if (h[i] != NULL && strcmp(name, h[i]->comp->desc->name) == 0) {
			return h[i];
		}
	}
	return NULL;
}

static int
cli_plugin_timer(void *node, const char *comp, uint32_t ms, uint64_t tag)
{
	cli_task *task = node;
	(void)comp;
	fmi_inst_head *h = cli_instance(task, comp);
	return h != NULL ? fmi_timers_add(&task->h->timers, h, ms, tag) :
	    FM_ENOTSUP;
}

static void *
cli_plugin_state(void *node, const char *comp, size_t size)
{
	cli_task *task = node;
	void *p = fmi_store_take(task->h->store, task->client, comp, size, task,
	    task->round, task->serial);
	if (p != NULL) {
		task->state_comp = comp; /* released with the task */
	} else {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-STATE", "client %d: %s: no "
		    "state of %zu bytes (out of memory, another size than "
		    "before, or held by the client's task of an earlier round "
		    "still training)", task->client, comp, size);
	}
	return p;
}

/* Opens the client sides of the experiment's local rule and privacy
 * mechanism, and of its aggregator and defence when they talk to their
 * clients (protocol plugins). */
static int
cli_open_instance(cli_host *h, cli_task *task)
{
	const fmi_fed_cfg *cfg = h->cfg;
	fmi_node_link link = { task, cli_plugin_send, cli_plugin_timer, NULL,
		cli_plugin_state, 1, 0, cfg->secure_noise }; /* clients train on
		                                               * workers already */
	fmi_open_args a = { cfg->rule_params, h->dim, FM_ROLE_CLIENT,
		task->client,
		fmi_task_seed(cfg->seed, task->round, (uint32_t)task->client),
		1, 0, &link };
	fm_error e;
	const fm_value *params;
	const fmi_component *ac = fmi_fed_level_agg(cfg, fmi_fed_levels(cfg) - 1,
	    &params);
	int rv = FM_OK;
	if (ac != NULL && fmi_component_handles_messages(ac)) {
		fmi_open_args aa = a;
		aa.params = params;
		rv = fmi_agg_open(&task->agg, ac, &aa, &e);
	}
	if (rv == FM_OK && cfg->defence != NULL &&
	    fmi_component_handles_messages(cfg->defence)) {
		fmi_open_args da = a;
		da.params = cfg->def_params;
		rv = fmi_def_open(&task->def, cfg->defence, &da, &e);
	}
	if (rv == FM_OK && cfg->rule != NULL) {
		rv = fmi_loc_open(&task->inst, cfg->rule, &a, &e);
	}
	if (rv == FM_OK && cfg->privacy != NULL &&
	    fmi_component_privacy_runs(cfg->privacy, FM_PRIVACY_CLIENT)) {
		fmi_open_args pa = a;
		pa.params = cfg->priv_params;
		pa.seed = fmi_hash64(a.seed ^ 0x70726976ULL);
		rv = fmi_priv_open(&task->priv, cfg->privacy, &pa, &e);
	}
	if (rv != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-PLUGIN", "client %d: %s", task->client,
		    e.msg);
	}
	return rv;
}

static void
cli_task_free(cli_host *h, cli_task *task)
{
	fmi_store_release(h->store, task->client, task->state_comp, task);
	fmi_inst_head *talk[CLI_TALKERS];
	cli_talkers(task, talk);
	for (int i = 0; i < CLI_TALKERS; i++) {
		if (talk[i] != NULL) {
			fmi_timers_drop(&h->timers, talk[i]);
		}
	}
	fmi_loc_close(task->inst);
	fmi_agg_close(task->agg);
	fmi_def_close(task->def);
	fmi_priv_close(task->priv);
	fmi_rmsg_close(&task->req);
	fmi_payload_unref(task->late_data);
	free(task);
}

/* Removes one task. */
static void
cli_drop_task(cli_host *h, cli_task *task)
{
	for (uint32_t i = 0; i < h->ntasks; i++) {
		if (h->tasks[i] == task) {
			h->tasks[i] = h->tasks[--h->ntasks];
			break;
		}
	}
	cli_task_free(h, task);
}

/* Drops every task, and every held message, of rounds <= round. */
static void
cli_end_round(cli_host *h, uint32_t round)
{
	uint32_t j = 0;
	for (uint32_t i = 0; i < h->ntasks; i++) {
		if (h->tasks[i]->round <= round) {
			cli_task_free(h, h->tasks[i]);
		} else {
			h->tasks[j++] = h->tasks[i];
		}
	}
	h->ntasks = j;
	j = 0;
	for (uint32_t i = 0; i < h->nearly; i++) {
		if (h->early[i].m.round <= round) {
			fmi_rmsg_close(&h->early[i]);
		} else {
			h->early[j++] = h->early[i];
		}
	}
	h->nearly = j;
}

/* ---- requests ------------------------------------------------------------ */

static int
cli_check_train(cli_host *h, fmi_rmsg *r, fm_error *e)
{
	const fmi_msg *m = &r->m;
	if (m->to < 1 || (uint32_t)m->to > h->cfg->part->nclients) {
		return fm_error_set(e, FM_EPROTO, "no client %d here (1..%u)",
		    m->to, h->cfg->part->nclients);
	}
	if (!fmi_partition_holds(h->cfg->part, (uint32_t)m->to - 1)) {
		return fm_error_set(e, FM_EPROTO, "client %d does not live on "
		    "this host (its data is not here)", m->to);
	}
	if (m->batch > h->cfg->local.batch) {
		return fm_error_set(e, FM_EPROTO, "batch %u exceeds this host's "
		    "%u", m->batch, h->cfg->local.batch);
	}
	return fmi_msg_check_tensor(m, fmi_rmsg_data(r), fmi_rmsg_len(r),
	    h->dim, e);
}

static int
cli_grow(cli_host *h)
{
	if (h->ntasks < h->cap) {
		return FM_OK;
	}
	uint32_t cap = h->cap ? 2 * h->cap : 16;
	cli_task **nt = realloc(h->tasks, cap * sizeof *nt);
	if (nt == NULL) {
		return FM_ENOMEM;
	}
	h->tasks = nt;
	h->cap = cap;
	return FM_OK;
}

static void cli_deliver_early(cli_host *h, cli_task *task);
static void cli_send_late(cli_host *h, uint32_t round);

static void
cli_on_train(cli_host *h, fmi_rmsg *r)
{
	fm_error e;
	cli_task *task = NULL, *old;
	if (cli_check_train(h, r, &e) != FM_OK) {
		fm_log(FM_LOG_WARN, "FM-TRAIN", "dropped train request: %s",
		    e.msg);
		fmi_rmsg_close(r);
		return;
	}
	int fault = cli_fault(h, r->m.round, r->m.to);
	if (fault == FMI_FAULT_DROPOUT) { /* simulated: it never answers */
		fm_log(FM_LOG_DEBUG, "FM-FAULT", "client %d: simulated dropout "
		    "in round %u", r->m.to, r->m.round);
		fmi_rmsg_close(r);
		return;
	}
	if ((old = cli_find(h, r->m.to)) != NULL) {
		/* A restarted server asks again: the new request wins. */
		fm_log(FM_LOG_INFO, "FM-TRAIN", "client %d: round %u request "
		    "replaces the one of round %u", r->m.to, r->m.round,
		    old->round);
		cli_drop_task(h, old);
	}
	if (cli_grow(h) != FM_OK || (task = calloc(1, sizeof *task)) == NULL) {
		fm_log(FM_LOG_ERR, "FM-TRAIN", "client %d: out of memory",
		    r->m.to);
		fmi_rmsg_close(r);
		return;
	}
	fm_log(FM_LOG_DEBUG, "FM-TRAIN", "client %d: round %u model received",
	    r->m.to, r->m.round);
	static atomic_uint_fast64_t serials;
	task->h = h;
	task->serial = atomic_fetch_add(&serials, 1) + 1;
	task->client = r->m.to;
	task->round = r->m.round;
	task->late = fault == FMI_FAULT_STRAGGLER;
	task->req = *r;
	r->has_payload = 0;
	h->tasks[h->ntasks++] = task;
	(void)cli_open_instance(h, task);
	cli_deliver_early(h, task);
}

static void
cli_deliver(cli_task *task, fmi_rmsg *r)
{
	fmi_inst_head *to = cli_instance(task, r->m.plugin);
	if (to == NULL || !fmi_inst_handles_messages(to)) {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-MSG", "dropped message for "
		    "plugin '%s' of client %d", r->m.plugin, r->m.to);
	} else {
		(void)fmi_inst_deliver(to, r);
	}
	fmi_rmsg_close(r);
}

static void
cli_on_plugin(cli_host *h, fmi_rmsg *r)
{
	cli_task *task = cli_find(h, r->m.to);
	if (task != NULL && task->round == r->m.round) {
		cli_deliver(task, r);
	} else if ((task == NULL || task->round < r->m.round) &&
	    h->nearly < CLI_EARLY_MAX) {
		h->early[h->nearly++] = *r; /* its TRAIN request follows */
		r->has_payload = 0;
	} else {
		fm_log(FM_LOG_WARN, "FM-PLUGIN-MSG", "dropped message for "
		    "plugin '%s' of client %d (round %u)", r->m.plugin,
		    r->m.to, r->m.round);
		fmi_rmsg_close(r);
	}
}

/* Hands a new task the plugin messages that came before it, in order. */
static void
cli_deliver_early(cli_host *h, cli_task *task)
{
	uint32_t j = 0;
	for (uint32_t i = 0; i < h->nearly; i++) {
		fmi_rmsg *r = &h->early[i];
		if (r->m.to == task->client && r->m.round == task->round) {
			cli_deliver(task, r);
		} else {
			h->early[j++] = *r;
		}
	}
	h->nearly = j;
}

/* Federated evaluation: the global model on client `to`'s held-out
 * shard (0 examples when it has none here), answered at once. */
static void
cli_on_evaluate(cli_host *h, fmi_rmsg *r)
{
	const fmi_fed_cfg *cfg = h->cfg;
	const fmi_partition *p = cfg->client_test_part;
	fm_error e = { 0, "" };
	fmi_eval ev = { 0, 0, 0 };
	int32_t c = r->m.to;
	if (c < 1 || (uint32_t)c > cfg->part->nclients) {
		fm_log(FM_LOG_WARN, "FM-WIRE", "client host: dropped evaluate: no "
		    "client %d here (1..%u)", c, cfg->part->nclients);
		return;
	}
	if (fmi_msg_check_tensor(&r->m, fmi_rmsg_data(r), fmi_rmsg_len(r),
	        h->dim, &e) != FM_OK) {
		fm_log(FM_LOG_WARN, "FM-WIRE", "client %d: dropped evaluate: %s",
		    c, e.msg);
		return;
	}
	if (cfg->client_test != NULL && p != NULL &&
	    fmi_partition_size(p, (uint32_t)c - 1) > 0) {
		memcpy(h->global, fmi_rmsg_data(r), h->dim * sizeof(float));
		fmi_f32_from_le(h->global, h->dim);
		if (fmi_evaluate(h->tr, h->global, cfg->client_test,
		        p->idx + p->off[c - 1], fmi_partition_size(p,
		        (uint32_t)c - 1), &ev) != FM_OK) {
			fm_log(FM_LOG_ERR, "FM-EVAL", "client %d: evaluation "
			    "failed", c);
			ev.n = 0;
		}
	}
	fmi_msg m;
	cli_msg(h, &m, FMI_MSG_EVAL, r->m.round, c, &h->seq);
	m.num_examples = ev.n;
	m.acc = ev.n ? ev.accuracy : 0;
	m.test_loss = ev.n ? ev.loss : 0;
	(void)fmi_tran_send(h->t, NULL, &m, NULL);
	h->last_sent = fmi_now();
}

static void
cli_dispatch(cli_host *h, fmi_rmsg *r)
{
	switch (r->m.type) {
	case FMI_MSG_TRAIN:
		cli_on_train(h, r);
		return;
	case FMI_MSG_EVALUATE:
		cli_on_evaluate(h, r);
		break;
	case FMI_MSG_PLUGIN:
		cli_on_plugin(h, r);
		return;
	case FMI_MSG_ROUND_END:
		cli_send_late(h, r->m.round);
		cli_end_round(h, r->m.round);
		if (r->m.to == -1) { /* a resumed server voids the round: all
		                      * this host sent before is ahead of this */
			fmi_msg m;
			cli_msg(h, &m, FMI_MSG_HEARTBEAT, r->m.round, -1, &h->seq);
			(void)fmi_tran_send(h->t, NULL, &m, NULL);
		}
		break;
	case FMI_MSG_SHUTDOWN:
		h->done = 1;
		break;
	case FMI_MSG_HEARTBEAT:
		break;
	default:
		fm_log(FM_LOG_WARN, "FM-WIRE", "client host: unexpected %s "
		    "message", fmi_msg_type_name(r->m.type));
	}
	fmi_rmsg_close(r);
}

/* ---- training -------------------------------------------------------------- */

/* An adversarial client's poisoned private copy of its shard, or NULL
 * (then it trains on its own data); *rv gets an error. */
static fmi_dataset *
cli_poisoned(cli_host *h, uint32_t c, uint32_t round, uint64_t seed, int *rv)
{
	const fmi_fed_cfg *cfg = h->cfg;
	const fmi_partition *p = cfg->part;
	const fmi_dataset *d = cfg->train;
	fmi_dataset *copy = NULL;
	fm_error e;
	*rv = FM_OK;
	if (cfg->attack == NULL || cfg->adversarial == NULL ||
	    !cfg->adversarial[c]) {
		return NULL;
	}
	fmi_open_args oa = { cfg->atk_params, h->dim, FM_ROLE_CLIENT,
		(int32_t)c + 1, fmi_hash64(cfg->seed ^ 0x61746b), 1, 0, NULL };
	if (h->atk == NULL &&
	    (*rv = fmi_atk_open(&h->atk, cfg->attack, &oa, &e)) != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-ATTACK", "%s", e.msg);
		return NULL;
	}
	if (!fmi_atk_poisons_data(h->atk)) {
		return NULL;
	}
	size_t n = fmi_partition_size(p, c);
	if ((*rv = fmi_dataset_new(&copy, n, d->dim, d->nclasses)) != FM_OK) {
		return NULL;
	}
	if ((*rv = fmi_dataset_rows(d, p->idx + p->off[c], n, copy->x, &e))
	    != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-DATA", "client %u: %s", c + 1, e.msg);
		fmi_dataset_unref(copy);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		copy->y[i] = d->y[p->idx[p->off[c] + i]];
	}
	fm_attack_data a = { sizeof a, FM_ATTACK_TRAIN, copy->x, copy->y, n,
		d->dim, d->nclasses, (int32_t)c + 1, round, 0, 0, seed, n, 0,
		0 };
	fmi_image_shape(d->dim, &a.width, &a.height);
	*rv = fmi_atk_poison_data(h->atk, &a);
	if (*rv != FM_OK) {
		fmi_dataset_unref(copy);
		return NULL;
	}
	return copy;
}

static const float *
cli_hook_grad(void *user, const float *w, size_t n)
{
	cli_task *task = user;
	return fmi_loc_grad(task->inst, w, n);
}

static void
cli_hook_step(void *user, float *w, size_t n, float lr)
{
	cli_task *task = user;
	fmi_loc_step(task->inst, w, n, lr);
}

/* Before local training: the local rule's begin, and its gradient term
 * and step as the trainer's hooks. */
static int
cli_local_begin(cli_host *h, cli_task *task, uint64_t n)
{
	const fmi_msg *m = &task->req.m;
	const fmi_component *c = h->cfg->rule;
	if (c == NULL) {
		return FM_OK;
	}
	if (task->inst == NULL) { /* it failed to open: already logged */
		return FM_EPLUGIN;
	}
	fm_local_task lt = { sizeof lt, m->round, h->global, h->dim, n,
		m->epochs, m->batch, m->lr };
	int rv = fmi_loc_begin(task->inst, &lt);
	if (rv != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-PLUGIN", "client %d: %s: begin failed: "
		    "%s", task->client, c->desc->name, fm_strerror(rv));
		return rv;
	}
	fmi_trainer_set_grad_hook(h->tr, (fmi_grad_hook){
		fmi_loc_has_grad(task->inst) ? cli_hook_grad : NULL,
		fmi_loc_has_step(task->inst) ? cli_hook_step : NULL, task });
	return FM_OK;
}

/* After local training: a_local_end sees the result. */
static int
cli_local_end(cli_host *h, cli_task *task, const fmi_train_stats *st)
{
	const fmi_msg *m = &task->req.m;
	if (task->inst == NULL) {
		return FM_OK;
	}
	fm_local_result lr = { sizeof lr, m->round, h->global,
		fmi_trainer_params(h->tr), h->dim, st->steps, st->examples,
		m->lr, st->loss };
	int rv = fmi_loc_end(task->inst, &lr);
	if (rv != FM_OK) {
		fm_log(FM_LOG_ERR, "FM-PLUGIN", "client %d: %s: end failed: "
		    "%s", task->client,
		    task->inst->h.comp->desc->name, fm_strerror(rv));
	}
	return rv;
}

/* The privacy mechanism's client side: begin (before training, as the
 * client's own round: nclients 1, itself), then client on the update
 * delta[dim] right before it leaves; it may rewrite the delta and the
 * example count *ne. A mechanism that should run here and did not open
 * fails the training (nothing unprotected leaves). */
static int
cli_private_begin(cli_host *h, cli_task *task)
{
	const fmi_fed_cfg *cfg = h->cfg;
	if (cfg->privacy == NULL ||
	    !fmi_component_privacy_runs(cfg->privacy, FM_PRIVACY_CLIENT)) {
		return FM_OK;
	}
	if (task->priv == NULL) { /* it failed to open: already logged */
		return FM_EPLUGIN;
	}
	fm_round r = { sizeof r, task->round, 1, 0, &task->client, h->global,
		h->dim, 1.0, 1.0 };
	int rv = fmi_priv_begin(task->priv, &r);
	if (rv != FM_OK) {
		char b[256];
		fmi_inst_error(&task->priv->h, b, sizeof b);
		fm_log(FM_LOG_ERR, "FM-PRIVACY", "client %d: %s: begin failed: "
		    "%s", task->client, cfg->privacy->desc->name,
		    b[0] ? b : fm_strerror(rv));
	}
	return rv;
}

static int
cli_private(cli_task *task, float *delta, size_t dim, uint64_t *ne)
{
	if (task->priv == NULL) {
		return FM_OK;
	}
	const fmi_msg *m = &task->req.m;
	fm_private_update pu = { sizeof pu, task->round, task->client, 0,
		delta, dim, *ne, fmi_hash64(m->seed ^ 0x70726976ULL) };
	int rv = fmi_priv_client(task->priv, &pu);
	if (rv == FM_OK && !fmi_all_finite(delta, dim)) {
		rv = FM_ERANGE;
		snprintf(task->priv->h.error, sizeof task->priv->h.error,
		    "the update it returned is not finite");
	}
	if (rv != FM_OK) {
		char b[256];
		fmi_inst_error(&task->priv->h, b, sizeof b);
		fm_log(FM_LOG_ERR, "FM-PRIVACY", "client %d: %s failed on its "
		    "update, which is not sent: %s", task->client,
		    task->priv->h.comp->desc->name, b[0] ? b : fm_strerror(rv));
		return rv;
	}
	*ne = pu.num_examples;
	return FM_OK;
}

/* Trains the task's client on its shard (or on its poisoned copy). */
static int
cli_train_shard(cli_host *h, cli_task *task, const fmi_local_cfg *lc,
    fm_rng *rng, fmi_train_stats *st)
{
	const fmi_msg *m = &task->req.m;
	uint32_t c = (uint32_t)task->client - 1;
	const fmi_partition *p = h->cfg->part;
	int rv;
	fmi_dataset *bad = cli_poisoned(h, c, m->round, m->seed, &rv);
	if (rv == FM_OK && bad != NULL) {
		uint32_t *all = malloc(bad->n * sizeof *all);
		for (size_t i = 0; all != NULL && i < bad->n; i++) {
			all[i] = (uint32_t)i;
		}
		rv = all != NULL ? fmi_train_local(h->tr, bad, all, bad->n, lc,
		    rng, st) : FM_ENOMEM;
		free(all);
		fmi_dataset_unref(bad);
	} else if (rv == FM_OK) {
		rv = fmi_train_local(h->tr, h->cfg->train, p->idx + p->off[c],
		    fmi_partition_size(p, c), lc, rng, st);
	}
	return rv;
}

static int
cli_train(cli_host *h, cli_task *task)
{
	const fmi_msg *m = &task->req.m;
	uint32_t c = (uint32_t)task->client - 1;
	/* DP-SGD's clip and noise are the experiment's (every host runs
	 * the same script), the rest the server's TRAIN message */
	fmi_local_cfg lc = { .epochs = m->epochs, .batch = m->batch,
		.opt = { m->lr, m->momentum, m->weight_decay },
		.dp = h->cfg->local.dp };
	float *w = fmi_trainer_params(h->tr);
	fmi_train_stats st = { .loss = 0.0 };
	fm_rng rng;

	memcpy(h->global, fmi_rmsg_data(&task->req), h->dim * sizeof(float));
	fmi_f32_from_le(h->global, h->dim);
	memcpy(w, h->global, h->dim * sizeof(float));
	fmi_rmsg_close(&task->req); /* the model buffer is no longer needed */
	fmi_rng_seed(&rng, m->seed, 0);
	fmi_trainer_reset_optimizer(h->tr);
	int rv = cli_private_begin(h, task);
	if (rv == FM_OK) {
		rv = cli_local_begin(h, task,
		    fmi_partition_size(h->cfg->part, c));
	}
	if (rv == FM_OK) {
		rv = cli_train_shard(h, task, &lc, &rng, &st);
	}
	fmi_trainer_set_grad_hook(h->tr, (fmi_grad_hook){ NULL, NULL, NULL });
	if (rv == FM_OK) {
		rv = cli_local_end(h, task, &st);
	}
	/* The client's state is free before its update leaves: the next
	 * round may train this client on another worker. */
	fmi_store_release(h->store, task->client, task->state_comp, task);
	task->state_comp = NULL;
	if (rv == FM_OK) { /* on disk before the update leaves */
		fmi_client_state_save(h->store, h->cfg, &h->opts);
	}
	fmi_payload *d = rv == FM_OK ? fmi_payload_new(h->dim * sizeof(float))
	                             : NULL;
	if (d == NULL) {
		return rv != FM_OK ? rv : FM_ENOMEM;
	}
	float *delta = d->data;
	for (size_t i = 0; i < h->dim; i++) {
		delta[i] = w[i] - h->global[i];
	}
	uint64_t ne = st.examples;
	if ((rv = cli_private(task, delta, h->dim, &ne)) != FM_OK) {
		fmi_payload_unref(d);
		return rv;
	}
	fmi_f32_to_le(delta, h->dim);
	fmi_msg u;
	cli_msg(h, &u, FMI_MSG_UPDATE, m->round, task->client, &task->seq);
	u.num_examples = ne;
	u.loss = st.loss;
	u.steps = st.steps;
	u.n = h->dim;
	if (task->late) { /* held until the round ends */
		task->late_msg = u;
		task->late_data = d;
		return FM_OK;
	}
	rv = fmi_tran_send(h->t, NULL, &u, d);
	fmi_payload_unref(d);
	return rv;
}

/* The round ended at the server: simulated stragglers of rounds <= round
 * answer now (training first if they had not got to it). */
static void
cli_send_late(cli_host *h, uint32_t round)
{
	for (uint32_t i = 0; i < h->ntasks; i++) {
		cli_task *task = h->tasks[i];
		if (!task->late || task->round > round) {
			continue;
		}
		if (!task->trained) {
			task->trained = 1;
			if (cli_train(h, task) != FM_OK) {
				task->failed = 1;
			}
		}
		task->late = 0;
		if (task->late_data != NULL && !task->failed) {
			(void)fmi_tran_send(h->t, NULL, &task->late_msg,
			    task->late_data);
		} else {
			cli_send_failed(h, task);
		}
		fmi_payload_unref(task->late_data);
		task->late_data = NULL;
	}
}

static cli_task *
cli_next_task(cli_host *h)
{
	for (uint32_t i = 0; i < h->ntasks; i++) {
		if (!h->tasks[i]->trained) {
			return h->tasks[i];
		}
	}
	return NULL;
}

/* Idle: says it is alive, and gives up when the server has been silent
 * for too long. */
static int
cli_idle(cli_host *h)
{
	double now = fmi_now();
	if (h->opts.idle_timeout > 0 &&
	    now - h->last_heard > h->opts.idle_timeout) {
		return FM_ETIMEDOUT;
	}
	if (h->opts.heartbeat_ms > 0 &&
	    (now - h->last_sent) * 1000 >= h->opts.heartbeat_ms) {
		fmi_msg m;
		cli_msg(h, &m, FMI_MSG_HEARTBEAT, 0, -1, &h->seq);
		(void)fmi_tran_send(h->t, NULL, &m, NULL);
		h->last_sent = now;
	}
	return FM_OK;
}

static int
cli_loop(cli_host *h)
{
	int cap = h->opts.heartbeat_ms ? (int)h->opts.heartbeat_ms : 1000;
	while (!h->done) {
		cli_task *task = cli_next_task(h);
		/* Drain what is queued before training; block when idle. */
		int wait = fmi_timers_wait_ms(&h->timers, task ? 0 : cap);
		fmi_rmsg r;
		int rv = fmi_tran_recv(h->t, &r, wait, NULL);
		if (rv == FM_OK) {
			h->last_heard = fmi_now();
			cli_dispatch(h, &r);
			continue;
		}
		fmi_timers_fire(&h->timers);
		if (rv == FM_ETIMEDOUT && task != NULL) {
			task->trained = 1;
			rv = cli_train(h, task);
			h->last_sent = fmi_now();
			if (rv != FM_OK) {
				fm_log(FM_LOG_ERR, "FM-TRAIN", "client %d: "
				    "training failed: %s", task->client,
				    fm_strerror(rv));
				cli_send_failed(h, task);
			}
		} else if (rv == FM_ETIMEDOUT && cli_idle(h) != FM_OK) {
			return FM_ETIMEDOUT;
		}
	}
	return FM_OK;
}

int
fmi_client_host_run(const fmi_fed_cfg *cfg, fmi_tran *t, const char *name,
    const fmi_client_opts *opts, fm_error *err)
{
	cli_host h;
	memset(&h, 0, sizeof h);
	if (opts != NULL) {
		h.opts = *opts;
	}
	h.last_heard = h.last_sent = fmi_now();
	h.store = h.opts.store;
	if (h.store == NULL && fmi_store_new(&h.own_store) != FM_OK) {
		return fm_error_set(err, FM_ENOMEM, "client host %s: out of "
		    "memory", name);
	}
	h.store = h.store != NULL ? h.store : h.own_store;
	int lrv = h.own_store != NULL ?
	    fmi_client_state_load(h.own_store, cfg, &h.opts, err) : FM_OK;
	if (lrv != FM_OK) {
		fmi_store_free(h.own_store);
		return lrv;
	}
	h.cfg = cfg;
	h.t = t;
	h.dim = cfg->arch.nparams;
	h.global = malloc(h.dim * sizeof(float));
	int rv = fmi_trainer_new(&h.tr, &cfg->arch, cfg->local.batch);
	if (rv == FM_OK && h.global == NULL) {
		rv = FM_ENOMEM;
	}
	if (rv == FM_OK) {
		fmi_msg hello;
		cli_msg(&h, &hello, FMI_MSG_HELLO, 0, -1, &h.seq);
		if (cfg->site_data) { /* this host's site: its rows alone */
			hello.num_examples = cfg->part->off[cfg->part->nclients];
			hello.num_test = cfg->client_test_part == NULL ? 0
			    : cfg->client_test_part->off[cfg->part->nclients];
		}
		rv = fmi_tran_send(t, NULL, &hello, NULL);
	}
	if (rv == FM_OK) {
		rv = cli_loop(&h);
		if (rv == FM_ETIMEDOUT) {
			fm_error_set(err, rv, "client host %s: no word from the "
			    "server for %.0f s; giving up", name,
			    h.opts.idle_timeout);
		}
	} else {
		fm_error_set(err, rv, "client host %s could not start: %s", name,
		    fm_strerror(rv));
	}
	cli_end_round(&h, UINT32_MAX);
	free(h.fpicked);
	free(h.fplan);
	fmi_store_free(h.own_store);
	fmi_atk_close(h.atk);
	free(h.tasks);
	free(h.global);
	fmi_trainer_free(h.tr);
	return rv;
}
