/* SPDX-License-Identifier: MIT */
/*
 * server_ckpt.c: what a server checkpoint holds besides the global model
 * and the metrics (checkpoint.c has the file format), so that a resumed
 * run is the uninterrupted one, bit for bit:
 *
 *   ENGINE  the tree's shape (levels, aggregators, clients), the server's
 *           message counter, whether the root aggregated in the last
 *           round, and every aggregator's examples-since counters
 *           (hierarchies weigh children by them)
 *   MODEL   the model of every aggregator but the root (edges and inner
 *           levels), and the edges' mean the last round evaluated when
 *           the root did not aggregate (node FMI_CK_VIEW)
 *   PLUGIN  what every plugin instance the server runs saved through
 *           fm_ops.save: each aggregator's, each edge's defence and local
 *           rule (SCAFFOLD's c), the attack's on the server
 *   STORE   a simulation's client state (SCAFFOLD's c_i): its clients
 *           live in this process; deployed client hosts keep their own
 *           (deploy.client_state)
 *
 * Everything else a round needs is a function of the seed and the round
 * number (sampling, faults, task seeds, learning-rate schedules, the
 * attack's seeds), so it needs no saving. A plugin that keeps state but
 * cannot save it (no save/load, and not declared FM_COMP_STATELESS) is
 * named in a warning when the first checkpoint is written and on resume:
 * the resume is not exact for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"
#include "node/store.h"

#define CK_ENGINE_FORMAT 1
#define FMI_CK_VIEW UINT32_MAX /* MODEL section of the edges' mean */

typedef struct ck_engine {
	uint32_t format, levels, nnodes, nclients;
	uint64_t seq;
	uint32_t root_done, reserved;
} ck_engine;

typedef struct ck_node {
	uint64_t since, since_root;
	double loss_sum;
} ck_node;

/* One plugin instance the server runs, and where. */
typedef struct ck_inst {
	fmi_inst_head *h;
	uint32_t node, kind;
} ck_inst;

/* The server's instances, in a fixed order; returns how many (at most
 * 4 nnodes + 1). */
static uint32_t
ck_instances(fmi_server *s, ck_inst *v)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->nnodes; i++) {
		srv_agg *a = &s->nodes[i];
		if (a->agg != NULL) {
			v[n++] = (ck_inst){ &a->agg->h, i, FM_KIND_AGGREGATOR };
		}
		if (a->def != NULL) {
			v[n++] = (ck_inst){ &a->def->h, i, FM_KIND_DEFENCE };
		}
		if (a->loc != NULL) {
			v[n++] = (ck_inst){ &a->loc->h, i, FM_KIND_LOCAL };
		}
		if (a->priv != NULL) {
			v[n++] = (ck_inst){ &a->priv->h, i, FM_KIND_PRIVACY };
		}
	}
	if (s->atk != NULL) {
		v[n++] = (ck_inst){ &s->atk->h, 0, FM_KIND_ATTACK };
	}
	return n;
}

static int
ck_stateless(const fmi_inst_head *h)
{
	return (h->comp->desc->flags & FM_COMP_STATELESS) != 0;
}

/* "aggregator 'fedadam' (edge 2)" */
static const char *
ck_what(fmi_server *s, const ck_inst *c, char *buf, size_t n)
{
	char node[64];
	snprintf(buf, n, "%s '%s' (%s)", fmi_kind_name(c->kind),
	    c->h->comp->desc->name, srv_node_name(s, c->node, node,
	    sizeof node));
	return buf;
}

/* Warns once per component: it keeps state a checkpoint cannot hold. */
static void
ck_warn_unsaved(fmi_server *s, const ck_inst *v, uint32_t n, const char *why)
{
	for (uint32_t k = 0; k < n; k++) {
		const fmi_component *c = v[k].h->comp;
		int seen = 0;
		for (uint32_t j = 0; j < k && !seen; j++) {
			seen = v[j].h->comp == c;
		}
		if (!seen && !fmi_inst_saves(v[k].h) && !ck_stateless(v[k].h)) {
			char w[160];
			fm_log(FM_LOG_WARN, "FM-RESUME", "%s has no save/load and "
			    "does not declare itself stateless: state it keeps "
			    "across rounds is not in the checkpoint, so %s is not "
			    "exact for it", ck_what(s, &v[k], w, sizeof w), why);
		}
	}
}

/* ---- writing --------------------------------------------------------- */

typedef struct ck_out {
	fmi_ck_section *sec;
	uint8_t *owned; /* sec[i].data was malloc'ed here */
	uint32_t n;
} ck_out;

static fmi_ck_section *
ck_add(ck_out *o, uint32_t type, uint32_t node, uint32_t kind,
    const char *name, const void *data, size_t len, int owned)
{
	fmi_ck_section *c = &o->sec[o->n];
	memset(c, 0, sizeof *c);
	c->type = type;
	c->node = node;
	c->kind = kind;
	fmi_strlcpy(c->name, name != NULL ? name : "", sizeof c->name);
	c->data = (void *)(uintptr_t)data; /* only read when writing */
	c->len = len;
	o->owned[o->n++] = (uint8_t)owned;
	return c;
}

static void *
ck_engine_state(fmi_server *s, size_t *len)
{
	size_t n = sizeof(ck_engine) + s->nnodes * sizeof(ck_node);
	unsigned char *b = calloc(1, n);
	if (b == NULL) {
		return NULL;
	}
	ck_engine e = { CK_ENGINE_FORMAT, s->levels, s->nnodes,
		s->cfg->part->nclients, s->seq, (uint32_t)s->root_done, 0 };
	memcpy(b, &e, sizeof e);
	for (uint32_t i = 0; i < s->nnodes; i++) {
		ck_node c = { s->nodes[i].since, s->nodes[i].since_root,
			s->nodes[i].loss_sum };
		memcpy(b + sizeof e + i * sizeof c, &c, sizeof c);
	}
	*len = n;
	return b;
}

/* A plugin's saved state, malloc'ed. */
static int
ck_save_inst(fmi_server *s, const ck_inst *c, void **data, size_t *len,
    fm_error *err)
{
	char why[256], w[160];
	size_t need = 0;
	int rv = fmi_inst_save(c->h, NULL, 0, &need);
	*data = NULL;
	if (rv == FM_ERANGE) {
		*data = malloc(need ? need : 1);
		rv = *data != NULL ? fmi_inst_save(c->h, *data, need, len)
		                   : FM_ENOMEM;
	}
	if (rv != FM_OK) {
		free(*data);
		*data = NULL;
		fmi_inst_error(c->h, why, sizeof why);
		return fm_error_set(err, rv, "checkpoint: %s cannot save its "
		    "state: %s", ck_what(s, c, w, sizeof w),
		    why[0] ? why : fm_strerror(rv));
	}
	return FM_OK;
}

int
srv_ckpt_write(fmi_server *s, const fmi_fed_result *res, uint32_t nrounds,
    int first, fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	uint32_t cap = 4 * s->nnodes + 4, ni;
	ck_inst *v = calloc(4 * s->nnodes + 1, sizeof *v);
	ck_out o = { calloc(cap, sizeof *o.sec), calloc(cap, 1), 0 };
	size_t len = 0;
	void *eng = NULL;
	int rv = FM_OK;
	if (v == NULL || o.sec == NULL || o.owned == NULL ||
	    (eng = ck_engine_state(s, &len)) == NULL) {
		rv = fm_error_set(err, FM_ENOMEM, "out of memory for a "
		    "checkpoint");
		goto out;
	}
	ni = ck_instances(s, v);
	if (first) {
		ck_warn_unsaved(s, v, ni, "a resume from it");
	}
	ck_add(&o, FMI_CK_ENGINE, 0, 0, "", eng, len, 1);
	eng = NULL; /* the section's now */
	for (uint32_t i = 1; i < s->nnodes; i++) {
		ck_add(&o, FMI_CK_MODEL, i, 0, "", s->nodes[i].model,
		    s->dim * sizeof(float), 0);
	}
	if (s->levels > 1 && s->view != s->global) {
		ck_add(&o, FMI_CK_MODEL, FMI_CK_VIEW, 0, "", s->view,
		    s->dim * sizeof(float), 0);
	}
	for (uint32_t k = 0; k < ni && rv == FM_OK; k++) {
		void *data;
		if (!fmi_inst_saves(v[k].h)) {
			continue;
		}
		rv = ck_save_inst(s, &v[k], &data, &len, err);
		if (rv == FM_OK) {
			ck_add(&o, FMI_CK_PLUGIN, v[k].node, v[k].kind,
			    v[k].h->comp->desc->name, data, len, 1);
		}
	}
	if (rv == FM_OK && s->hosts->store != NULL) {
		void *data = NULL;
		rv = fmi_store_save(s->hosts->store, NULL, 0, &len);
		if (rv == FM_ERANGE && (data = malloc(len)) != NULL) {
			rv = fmi_store_save(s->hosts->store, data, len, &len);
		}
		if (rv == FM_OK) {
			ck_add(&o, FMI_CK_STORE, 0, 0, "", data, len, 1);
		} else {
			free(data);
			rv = fm_error_set(err, FM_ENOMEM, "out of memory for the "
			    "clients' state in a checkpoint");
		}
	}
	if (rv == FM_OK) {
		rv = fmi_checkpoint_write(cfg->checkpoint, cfg->seed, s->global,
		    s->dim, res->rounds, nrounds, o.sec, o.n, err);
	}
out:
	for (uint32_t i = 0; i < o.n; i++) {
		if (o.owned[i]) {
			free(o.sec[i].data);
		}
	}
	free(eng);
	free(o.sec);
	free(o.owned);
	free(v);
	return rv;
}

/* ---- reading ----------------------------------------------------------- */

static int
ck_load_engine(fmi_server *s, fmi_ck *ck, fm_error *err)
{
	const char *path = s->cfg->checkpoint;
	const fmi_ck_section *c = fmi_ck_find(ck, FMI_CK_ENGINE, 0, 0);
	ck_engine e;
	if (c == NULL || c->len < sizeof e) {
		return fm_error_set(err, FM_EPROTO, "%s is corrupt (no server "
		    "state in it)", path);
	}
	memcpy(&e, c->data, sizeof e);
	if (e.format != CK_ENGINE_FORMAT) {
		return fm_error_set(err, FM_EVERSION, "%s: server state format "
		    "%u, this fedmesh reads %u", path, e.format, CK_ENGINE_FORMAT);
	}
	if (e.levels != s->levels || e.nnodes != s->nnodes ||
	    e.nclients != s->cfg->part->nclients) {
		return fm_error_set(err, FM_EINVAL, "%s belongs to another "
		    "federation shape (%u levels, %u aggregators, %u clients; "
		    "this run: %u, %u, %u); delete it or point the checkpoint "
		    "elsewhere", path, e.levels, e.nnodes, e.nclients,
		    s->levels, s->nnodes, s->cfg->part->nclients);
	}
	if (c->len != sizeof e + s->nnodes * sizeof(ck_node)) {
		return fm_error_set(err, FM_EPROTO, "%s is corrupt (server "
		    "state of %zu bytes)", path, c->len);
	}
	for (uint32_t i = 0; i < s->nnodes; i++) {
		ck_node n;
		memcpy(&n, (const char *)c->data + sizeof e + i * sizeof n,
		    sizeof n);
		s->nodes[i].since = n.since;
		s->nodes[i].since_root = n.since_root;
		s->nodes[i].loss_sum = n.loss_sum;
	}
	s->seq = e.seq;
	s->root_done = (int)e.root_done;
	return FM_OK;
}

static int
ck_load_model(fmi_server *s, fmi_ck *ck, uint32_t node, float *into,
    fm_error *err)
{
	const fmi_ck_section *c = fmi_ck_find(ck, FMI_CK_MODEL, node, 0);
	if (c == NULL || c->len != s->dim * sizeof(float)) {
		char name[64];
		return fm_error_set(err, FM_EPROTO, "%s is corrupt (the model of "
		    "%s is %s)", s->cfg->checkpoint, node == FMI_CK_VIEW ?
		    "the edges' mean" : srv_node_name(s, node, name,
		    sizeof name), c == NULL ? "missing" : "of the wrong size");
	}
	memcpy(into, c->data, c->len);
	return FM_OK;
}

/* Every saving instance gets its section; every section its instance. */
static int
ck_load_plugins(fmi_server *s, fmi_ck *ck, const ck_inst *v, uint32_t n,
    fm_error *err)
{
	const char *path = s->cfg->checkpoint;
	char w[160], why[256], node[64];
	for (uint32_t k = 0; k < n; k++) {
		const fmi_ck_section *c = fmi_ck_find(ck, FMI_CK_PLUGIN,
		    v[k].node, v[k].kind);
		if (c != NULL && strcmp(c->name, v[k].h->comp->desc->name) != 0) {
			return fm_error_set(err, FM_EINVAL, "%s holds the state of "
			    "%s '%s' where this run has %s: it belongs to a run "
			    "with other plugins; resume with the same ones, or "
			    "delete it", path, fmi_kind_name(v[k].kind), c->name,
			    ck_what(s, &v[k], w, sizeof w));
		}
		if (!fmi_inst_saves(v[k].h)) {
			continue;
		}
		if (c == NULL) {
			return fm_error_set(err, FM_EINVAL, "%s holds no state for "
			    "%s: it belongs to a run with other plugins; resume "
			    "with the same ones, or delete it", path,
			    ck_what(s, &v[k], w, sizeof w));
		}
		int rv = fmi_inst_load(v[k].h, c->data, c->len);
		if (rv != FM_OK) {
			fmi_inst_error(v[k].h, why, sizeof why);
			return fm_error_set(err, rv, "%s: %s cannot load its saved "
			    "state: %s", path, ck_what(s, &v[k], w, sizeof w),
			    why[0] ? why : fm_strerror(rv));
		}
	}
	for (uint32_t i = 0; i < ck->nsections; i++) {
		const fmi_ck_section *c = &ck->sec[i];
		int found = 0;
		for (uint32_t k = 0; c->type == FMI_CK_PLUGIN && k < n && !found;
		    k++) {
			found = v[k].node == c->node && v[k].kind == c->kind;
		}
		if (c->type == FMI_CK_PLUGIN && !found) {
			return fm_error_set(err, FM_EINVAL, "%s holds the state of "
			    "%s '%s' (%s), which this run does not have: it "
			    "belongs to a run with other plugins; resume with the "
			    "same ones, or delete it", path, fmi_kind_name(c->kind),
			    c->name, c->node < s->nnodes ? srv_node_name(s,
			    c->node, node, sizeof node) : "no such aggregator");
		}
	}
	return FM_OK;
}

/* The simulated clients' state, when they live in this process. */
static int
ck_load_store(fmi_server *s, fmi_ck *ck, fm_error *err)
{
	const fmi_ck_section *c = fmi_ck_find(ck, FMI_CK_STORE, 0, 0);
	fmi_store *st = s->hosts->store;
	if (st == NULL) {
		if (c != NULL && c->len > 2 * sizeof(uint32_t)) {
			fm_log(FM_LOG_WARN, "FM-RESUME", "%s holds the simulated "
			    "clients' plugin state; deployed client hosts keep "
			    "their own (deploy.client_state), so it is not used",
			    s->cfg->checkpoint);
		}
		return FM_OK;
	}
	if (c == NULL) {
		if (s->cfg->rule != NULL) {
			fm_log(FM_LOG_WARN, "FM-RESUME", "%s holds no client state "
			    "(a deployed server wrote it): the clients' plugin "
			    "state (%s) starts from zero, so this resume is not "
			    "exact", s->cfg->checkpoint, s->cfg->rule->desc->name);
		}
		return FM_OK;
	}
	return fmi_store_load(st, c->data, c->len, s->cfg->checkpoint, err);
}

/* Format 1 held the global model only. */
static int
ck_load_v1(fmi_server *s, const ck_inst *v, uint32_t n, fm_error *err)
{
	char w[160];
	if (s->levels > 1) {
		return fm_error_set(err, FM_EVERSION, "%s has checkpoint format "
		    "1 (the global model only); a hierarchical run needs every "
		    "aggregator's model: delete it to start over",
		    s->cfg->checkpoint);
	}
	fm_log(FM_LOG_WARN, "FM-RESUME", "%s has checkpoint format 1 (the "
	    "model and metrics only, from an older fedmesh)",
	    s->cfg->checkpoint);
	for (uint32_t k = 0; k < n; k++) {
		if (fmi_inst_saves(v[k].h) || !ck_stateless(v[k].h)) {
			fm_log(FM_LOG_WARN, "FM-RESUME", "%s: its state is not in "
			    "a format-1 checkpoint and restarts, so this resume is "
			    "not exact for it", ck_what(s, &v[k], w, sizeof w));
		}
	}
	if (s->hosts->store != NULL && s->cfg->rule != NULL) {
		fm_log(FM_LOG_WARN, "FM-RESUME", "the clients' plugin state (%s) "
		    "is not in a format-1 checkpoint and starts from zero",
		    s->cfg->rule->desc->name);
	}
	return FM_OK;
}

int
srv_ckpt_resume(fmi_server *s, fmi_fed_result *res, uint32_t *nrounds,
    fm_error *err)
{
	const fmi_fed_cfg *cfg = s->cfg;
	fmi_ck ck;
	ck_inst *v = calloc(4 * s->nnodes + 1, sizeof *v);
	if (v == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	uint32_t ni = ck_instances(s, v);
	int rv = fmi_checkpoint_read(cfg->checkpoint, cfg->seed, s->global,
	    s->dim, res->rounds, cfg->rounds, &ck, err);
	if (rv == FM_OK && ck.version == 1) {
		rv = ck_load_v1(s, v, ni, err);
	} else if (rv == FM_OK) {
		rv = ck_load_engine(s, &ck, err);
		for (uint32_t i = 1; i < s->nnodes && rv == FM_OK; i++) {
			rv = ck_load_model(s, &ck, i, s->nodes[i].model, err);
		}
		if (rv == FM_OK && s->levels > 1 && !s->root_done) {
			rv = ck_load_model(s, &ck, FMI_CK_VIEW, s->avg, err);
			s->view = s->avg;
		}
		if (rv == FM_OK) {
			rv = ck_load_plugins(s, &ck, v, ni, err);
		}
		if (rv == FM_OK) {
			rv = ck_load_store(s, &ck, err);
		}
		if (rv == FM_OK) {
			ck_warn_unsaved(s, v, ni, "this resume");
		}
	}
	if (rv == FM_OK) {
		*nrounds = ck.nrounds;
	}
	fmi_ck_free(&ck);
	free(v);
	return rv;
}

/* A client host still holds the tasks a killed server sent for the round
 * the resumed one runs again, the plugin messages that came for them
 * (SCAFFOLD's c), and may still send what it computed for that server
 * (a dc_i, an update). ROUND_END of that round with no client (to -1)
 * makes every host drop those tasks and answer with a HEARTBEAT of that
 * round; everything it sent before is ahead of that answer on the same
 * ordered link, so the server drops what comes until every host it heard
 * from answered (or 10 s passed): the round then starts clean (an old
 * update taken without its dc_i would leave c short of it). The message
 * counter stays as the checkpoint had it, so a resumed simulation's
 * traffic is the uninterrupted one's. */
void
srv_ckpt_void_rounds(fmi_server *s, uint32_t start)
{
	uint32_t n = s->hosts->n, left = 0;
	uint8_t *wait = calloc(n, 1);
	for (uint32_t i = 0; i < n; i++) {
		fmi_msg m;
		srv_msg(s, &m, FMI_MSG_ROUND_END, -1);
		s->seq--;
		m.round = start;
		if (fmi_tran_send(s->t, s->hosts->names[i], &m, NULL) == FM_OK &&
		    wait != NULL && s->heard[i] > 0) {
			wait[i] = 1;
			left++;
		}
	}
	double deadline = fmi_now() + 10;
	uint32_t dropped = 0;
	while (left > 0 && fmi_now() < deadline) {
		fmi_rmsg r;
		if (fmi_tran_recv(s->t, &r, 100, NULL) != FM_OK) {
			continue;
		}
		int h = srv_host_index(s, r.peer);
		if (h >= 0) {
			s->heard[h] = fmi_now();
		}
		if (h >= 0 && wait[h] && r.m.type == FMI_MSG_HEARTBEAT &&
		    r.m.round == start) {
			wait[h] = 0;
			left--;
		} else if (r.m.type == FMI_MSG_UPDATE ||
		    r.m.type == FMI_MSG_PLUGIN) {
			dropped++;
		}
		fmi_rmsg_close(&r);
	}
	if (dropped > 0) {
		fm_log(FM_LOG_INFO, "FM-RESUME", "dropped %u messages the client "
		    "hosts sent for the server that stopped", dropped);
	}
	if (left > 0) {
		fm_log(FM_LOG_WARN, "FM-RESUME", "%u client hosts did not confirm "
		    "within 10 s that they dropped the rounds after %u; what "
		    "they still send of them may be taken", left, start - 1);
	}
	free(wait);
}
