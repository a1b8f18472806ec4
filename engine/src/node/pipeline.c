/* SPDX-License-Identifier: MIT */
/* pipeline.c: one round of aggregation on an aggregating node (see
 * pipeline.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/pipeline.h"

static void FM_PRINTF(2, 3)
pipe_why(fmi_pipe *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->why, sizeof p->why, fmt, ap);
	va_end(ap);
}

/* The plugin's reason for its failing call, else the code's. */
static const char *
pipe_reason(fmi_inst_head *h, int rv, char *buf, size_t n)
{
	fmi_inst_error(h, buf, n);
	return buf[0] != '\0' ? buf : fm_strerror(rv);
}

/* The privacy stage acts on the rows (central DP); one that only begins
 * here (local DP's metrics) lets the updates stream. */
static int
pipe_central(const fmi_pipe *p)
{
	return p->priv != NULL && fmi_component_privacy_central(p->priv->h.comp);
}

int
fmi_pipe_holds(const fmi_pipe *p)
{
	return p->def != NULL || pipe_central(p) ||
	    (p->atk != NULL && fmi_atk_poisons_updates(p->atk));
}

void
fmi_pipe_set_rows(fmi_pipe *p, float *rows, uint32_t cap)
{
	p->rows = rows;
	p->cap = cap;
}

int
fmi_pipe_init(fmi_pipe *p, size_t dim, uint32_t cap, int borrow,
    fm_error *err)
{
	p->dim = dim;
	p->cap = cap;
	p->stride = (dim + 15) & ~(size_t)15; /* 64-byte rows */
	p->out = malloc(FMI_MAX(dim, 1) * sizeof(float));
	p->status = calloc(FMI_MAX(cap, 1), sizeof *p->status);
	if (p->out == NULL || p->status == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	if (!fmi_pipe_holds(p)) {
		return FM_OK;
	}
	size_t n = FMI_MAX(cap, 1);
	p->borrowed = borrow;
	p->rows = borrow ? NULL :
	    aligned_alloc(64, n * p->stride * sizeof(float));
	p->meta = calloc(n, sizeof *p->meta);
	p->keep = calloc(n, sizeof *p->keep);
	p->keep_ne = calloc(n, sizeof *p->keep_ne);
	p->kept = calloc(n, sizeof *p->kept);
	p->adv = calloc(n, 1);
	p->row_status = calloc(n, 1);
	if ((!borrow && !p->rows) || !p->meta || !p->keep || !p->keep_ne || !p->kept ||
	    !p->adv || !p->row_status) {
		return fm_error_set(err, FM_ENOMEM, "out of memory for %u "
		    "updates of %zu parameters (defence or attack)", cap, dim);
	}
	return FM_OK;
}

void
fmi_pipe_fini(fmi_pipe *p)
{
	free(p->out);
	free(p->status);
	if (!p->borrowed) {
		free(p->rows);
	}
	free(p->meta);
	free(p->keep);
	free(p->keep_ne);
	free(p->kept);
	free(p->adv);
	free(p->row_status);
	p->out = p->rows = NULL;
	p->status = NULL;
	p->meta = p->kept = NULL;
	p->keep = NULL;
	p->keep_ne = NULL;
	p->adv = p->row_status = NULL;
}

int
fmi_pipe_begin(fmi_pipe *p, const fm_round *r)
{
	p->n = 0;
	p->fed = 0;
	p->defended = p->combined = 0;
	p->nkeep = 0;
	p->round = r->round;
	p->why[0] = '\0';
	int rv = fmi_agg_begin(p->agg, r);
	if (rv != FM_OK) {
		char b[256];
		pipe_why(p, "aggregator %s failed to begin: %s",
		    p->agg->h.comp->desc->name,
		    pipe_reason(&p->agg->h, rv, b, sizeof b));
		return rv;
	}
	if (p->loc != NULL && (rv = fmi_loc_round_begin(p->loc, r)) != FM_OK) {
		char b[256];
		pipe_why(p, "local rule %s failed to begin: %s",
		    p->loc->h.comp->desc->name,
		    pipe_reason(&p->loc->h, rv, b, sizeof b));
	}
	if (rv == FM_OK && p->def != NULL &&
	    (rv = fmi_def_begin(p->def, r)) != FM_OK) {
		char b[256];
		pipe_why(p, "defence %s failed to begin: %s",
		    p->def->h.comp->desc->name,
		    pipe_reason(&p->def->h, rv, b, sizeof b));
	}
	if (rv == FM_OK && p->priv != NULL &&
	    (rv = fmi_priv_begin(p->priv, r)) != FM_OK) {
		char b[256];
		pipe_why(p, "privacy %s failed to begin: %s",
		    p->priv->h.comp->desc->name,
		    pipe_reason(&p->priv->h, rv, b, sizeof b));
	}
	return rv;
}

/* Feeds u[0..k) to the aggregator, then what it took to the local rule. */
static int
pipe_feed(fmi_pipe *p, const fm_update *u, uint32_t k)
{
	int rv = fmi_agg_accept(p->agg, u, k, p->status);
	const char *an = p->agg->h.comp->desc->name;
	for (uint32_t i = 0; i < k; i++) {
		if (rv != FM_OK || p->status[i] != FM_OK) {
			fm_log(FM_LOG_WARN, "FM-AGG", "aggregator %s refused the "
			    "update of client %d: %s", an, u[i].client,
			    fm_strerror(p->status[i] != FM_OK ? p->status[i]
			                                     : rv));
			continue;
		}
		p->fed++;
		if (p->loc != NULL) { /* in the order the aggregator took them */
			int lv = fmi_loc_accepted(p->loc, &u[i], 1);
			if (lv != FM_OK) {
				fm_log(FM_LOG_WARN, "FM-AGG", "local rule %s "
				    "failed on the update of client %d: %s",
				    p->loc->h.comp->desc->name, u[i].client,
				    fm_strerror(lv));
			}
		}
	}
	if (rv != FM_OK && k > 1) {
		fm_log(FM_LOG_WARN, "FM-AGG", "round %u: aggregator %s failed on "
		    "the round's updates: %s", p->round, an, fm_strerror(rv));
	}
	return rv != FM_OK ? rv : k == 1 ? p->status[0] : FM_OK;
}

int
fmi_pipe_add(fmi_pipe *p, const fm_update *u)
{
	if (!fmi_pipe_holds(p)) {
		return pipe_feed(p, u, 1);
	}
	if (p->rows == NULL || p->n == p->cap || u->dim != p->dim) {
		return FM_ERANGE;
	}
	float *row = p->rows + (size_t)p->n * p->stride;
	memcpy(row, u->delta, p->dim * sizeof(float));
	p->meta[p->n] = *u;
	p->meta[p->n].struct_size = (uint32_t)sizeof(fm_update);
	p->meta[p->n].delta = row;
	p->n++;
	return FM_OK;
}

/* The round's matrix as the stages see it. */
static fm_rows
pipe_rows(fmi_pipe *p, const fmi_pipe_ctx *c)
{
	for (uint32_t k = 0; k < p->n; k++) {
		p->keep[k] = k;
		p->keep_ne[k] = p->meta[k].num_examples;
	}
	return (fm_rows) { (uint32_t)sizeof(fm_rows), p->round, p->n, 0,
		p->dim, p->rows, p->stride, p->meta, c->global, c->server_delta,
		NULL, 0, p->keep, p->keep_ne, p->n, 0 };
}

/* Model poisoning: the attack rewrites the adversarial rows (it sees the
 * honest ones). A failing attack is logged; the round goes on. */
static void
pipe_attack(fmi_pipe *p, const fmi_pipe_ctx *c)
{
	if (p->atk == NULL || !fmi_atk_poisons_updates(p->atk) ||
	    c->adversarial == NULL) {
		return;
	}
	fm_rows r = pipe_rows(p, c);
	for (uint32_t k = 0; k < p->n; k++) {
		p->adv[k] = c->adversarial[p->meta[k].client - 1] != 0;
		r.nadv += p->adv[k];
	}
	r.adversarial = p->adv;
	r.seed = c->attack_seed;
	int rv = r.nadv > 0 ? fmi_atk_poison_updates(p->atk, &r) : FM_OK;
	if (rv != FM_OK) {
		char b[256];
		fm_log(FM_LOG_WARN, "FM-ATTACK", "round %u: attack '%s' failed: "
		    "%s", p->round, p->atk->h.comp->desc->name,
		    pipe_reason(&p->atk->h, rv, b, sizeof b));
	}
	for (uint32_t k = 0; c->adv_norms != NULL && k < p->n; k++) {
		if (p->adv[k]) { /* as the defence sees it */
			c->adv_norms[k] = c->norm(p->rows + (size_t)k * p->stride,
			    p->dim);
		}
	}
}

/* A defence or privacy stage's output: keep[0..nkeep) must name rows. */
static int
pipe_check_keep(const fm_rows *r)
{
	if (r->nkeep > r->n) {
		return FM_EPLUGIN;
	}
	for (uint32_t k = 0; k < r->nkeep; k++) {
		if (r->keep[k] >= r->n) {
			return FM_EPLUGIN;
		}
	}
	return FM_OK;
}

/* A row-selecting stage (defence or privacy); on failure every row is
 * unused and nothing is aggregated. */
static int
pipe_select(fmi_pipe *p, fmi_inst_head *h, const char *what, fm_rows *r,
    int rv)
{
	if (rv == FM_OK) {
		rv = pipe_check_keep(r);
	}
	if (rv != FM_OK) {
		char b[256];
		const char *why = pipe_reason(h, rv, b, sizeof b);
		fm_log(FM_LOG_ERR, "FM-DEFENCE", "round %u: %s '%s' failed "
		    "(%s); no update is aggregated", p->round, what,
		    h->comp->desc->name, why);
		pipe_why(p, "%s '%s' failed: %s", what, h->comp->desc->name,
		    why);
	}
	return rv;
}

/* Which rows the defence kept: one combined update (keep = { 0 } with
 * another weight than row 0's own: median, trimmed mean, ...) keeps them
 * all in that combination. */
static void
pipe_defence_status(fmi_pipe *p, const fm_rows *r)
{
	p->defended = 1;
	p->combined = r->n > 1 && r->nkeep == 1 && r->keep[0] == 0 &&
	    r->keep_examples[0] != p->meta[0].num_examples;
	p->nkeep = r->nkeep;
	for (uint32_t k = 0; k < r->n; k++) {
		p->row_status[k] = p->combined ? FMI_ROW_KEPT : FMI_ROW_REJECTED;
	}
	for (uint32_t k = 0; !p->combined && k < r->nkeep; k++) {
		p->row_status[r->keep[k]] = FMI_ROW_KEPT;
	}
}

int
fmi_pipe_run(fmi_pipe *p, const fmi_pipe_ctx *c)
{
	if (!fmi_pipe_holds(p) || p->n == 0) {
		return FM_OK;
	}
	memset(p->row_status, FMI_ROW_KEPT, p->n);
	pipe_attack(p, c);
	fm_rows r = pipe_rows(p, c);
	int rv = FM_OK;
	if (p->def != NULL) {
		rv = pipe_select(p, &p->def->h, "defence", &r,
		    fmi_def_apply(p->def, &r));
		if (rv == FM_OK) {
			pipe_defence_status(p, &r);
		}
	}
	if (rv == FM_OK && pipe_central(p)) {
		r.seed = c->priv_seed;
		rv = pipe_select(p, &p->priv->h, "privacy", &r,
		    fmi_priv_server(p->priv, &r));
	}
	if (rv != FM_OK) {
		memset(p->row_status, FMI_ROW_UNUSED, p->n);
		return rv;
	}
	for (uint32_t k = 0; k < r.nkeep; k++) {
		p->kept[k] = p->meta[r.keep[k]];
		p->kept[k].num_examples = r.keep_examples[k];
	}
	int fv = pipe_feed(p, p->kept, r.nkeep);
	for (uint32_t k = 0; k < r.nkeep; k++) {
		if (fv != FM_OK || p->status[k] != FM_OK) {
			p->row_status[r.keep[k]] = FMI_ROW_UNUSED;
		}
	}
	return FM_OK;
}

int
fmi_pipe_finish(fmi_pipe *p, const fm_round *r, float *model,
    const char *name)
{
	char b[256];
	memcpy(p->out, model, p->dim * sizeof(float));
	int rv = fmi_agg_finish(p->agg, model, p->out, p->dim);
	fmi_inst_head *h = &p->agg->h;
	if (rv == FM_OK && p->loc != NULL) {
		rv = fmi_loc_round_end(p->loc, r, model, p->out, p->dim);
		h = &p->loc->h;
	}
	if (rv == FM_OK && !fmi_all_finite(p->out, p->dim)) {
		fm_log(FM_LOG_ERR, "FM-AGG", "round %u: aggregate is not finite;"
		    " %s model kept", p->round, name);
		pipe_why(p, "aggregator %s failed: %s",
		    p->agg->h.comp->desc->name, fm_strerror(FM_ERANGE));
		return FM_ERANGE;
	}
	if (rv != FM_OK) {
		const char *why = pipe_reason(h, rv, b, sizeof b);
		fm_log(FM_LOG_ERR, "FM-AGG", "round %u: aggregator failed: %s; "
		    "%s model kept", p->round, why, name);
		pipe_why(p, "%s %s failed: %s", h == &p->agg->h ? "aggregator" :
		    "local rule", h->comp->desc->name, why);
		return rv;
	}
	memcpy(model, p->out, p->dim * sizeof(float));
	return FM_OK;
}
