/* SPDX-License-Identifier: MIT */
/* lrounds.c: fm.experiment's per-round options (metrics = { clients =
 * true }, faults, learning-rate schedules) and the per-client rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"

/* metrics = "path" | { file = "path", clients = true } */
void
lfm_read_metrics(lua_State *L, lexp *x)
{
	static const char *const f[] = { "file", "clients", NULL };
	const char *fn = "fm.experiment: metrics";
	const char *path = lfm_default_metrics(L);
	int ty = lua_getfield(L, 1, "metrics");
	int t = lua_gettop(L);
	if (ty == LUA_TSTRING) {
		path = lua_tostring(L, t);
	} else if (ty == LUA_TTABLE) {
		lfm_check_fields(L, t, fn, f);
		path = lfm_opt_str(L, t, fn, "file", path);
		x->cfg.client_detail = lfm_opt_bool(L, t, fn, "clients", 0);
	} else if (ty != LUA_TNIL) {
		luaL_error(L, "fm.experiment: field 'metrics' must be a JSON "
		    "Lines path or { file = \"path\", clients = true }, got %s",
		    luaL_typename(L, t));
	}
	free(x->metrics);
	x->metrics = path != NULL ? strdup(path) : NULL;
	lua_pop(L, 1);
}

/* faults = { dropout = 0.1, straggler = 0.1, seed = 3 } */
void
lfm_read_faults(lua_State *L, lexp *x)
{
	static const char *const f[] = { "dropout", "straggler", "seed",
		NULL };
	const char *fn = "fm.experiment: faults";
	fmi_faults *ft = &x->cfg.faults;
	if (lua_getfield(L, 1, "faults") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int t = lua_gettop(L);
	if (!lua_istable(L, t)) {
		luaL_error(L, "%s: expected a table, e.g. { dropout = 0.1, "
		    "straggler = 0.1, seed = 7 }", fn);
	}
	lfm_check_fields(L, t, fn, f);
	ft->dropout = lfm_opt_num(L, t, fn, "dropout", 0, 0, 1);
	ft->straggler = lfm_opt_num(L, t, fn, "straggler", 0, 0, 1);
	ft->seed = (uint64_t)lfm_opt_int(L, t, fn, "seed",
	    (lua_Integer)x->cfg.seed, 0, LUA_MAXINTEGER);
	if (ft->dropout + ft->straggler > 1) {
		char msg[96];
		snprintf(msg, sizeof msg, "%g + %g", ft->dropout, ft->straggler);
		luaL_error(L, "%s: dropout + straggler = %s is more than all "
		    "the sampled clients (at most 1)", fn, msg);
	}
	lua_pop(L, 1);
}

/* A required number field k of the schedule at t in (lo, hi] (open at lo
 * when lo_open). */
static double
sched_num(lua_State *L, int t, const char *fn, const char *kind,
    const char *k, double lo, int lo_open, double hi, const char *example)
{
	if (lua_getfield(L, t, k) == LUA_TNIL) {
		luaL_error(L, "%s: \"%s\" needs '%s', e.g. %s", fn, kind, k,
		    example);
	}
	lua_pop(L, 1);
	double v = lfm_opt_num(L, t, fn, k, 0, -HUGE_VAL, HUGE_VAL);
	if (!(lo_open ? v > lo : v >= lo) || !(v <= hi)) {
		char msg[128];
		snprintf(msg, sizeof msg, "%s%g, %g], got %g", lo_open ? "(" :
		    "[", lo, hi, v);
		luaL_error(L, "%s: '%s' must be in %s", fn, k, msg);
	}
	return v;
}

/*
 * The schedule table at t: { "step", every = 10, gamma = 0.5 },
 * { "exponential", gamma = 0.98 }, { "cosine", rounds = 50, min_lr =
 * 0.001 } (server: min_scale = 0.01), { "constant" }. base is the local
 * lr, or < 0 for the server's (whose cosine floor is a fraction).
 */
void
lfm_read_lr_schedule(lua_State *L, int t, const char *fn, double base,
    fmi_lr_schedule *out)
{
	static const char *const fstep[] = { "every", "gamma", NULL };
	static const char *const fexp[] = { "gamma", NULL };
	static const char *const fcos_local[] = { "rounds", "min_lr", NULL };
	static const char *const fcos_server[] = { "rounds", "min_scale",
		NULL };
	static const char *const fnone[] = { NULL };
	t = lua_absindex(L, t);
	memset(out, 0, sizeof *out);
	if (!lua_istable(L, t)) {
		luaL_error(L, "%s: expected { kind, ... }, e.g. { \"cosine\", "
		    "rounds = 50%s }, { \"step\", every = 10, gamma = 0.5 } or "
		    "{ \"exponential\", gamma = 0.98 }", fn,
		    base >= 0 ? ", min_lr = 0.001" : "");
	}
	const char *kind = lua_rawgeti(L, t, 1) == LUA_TSTRING ?
	    lua_tostring(L, -1) : NULL;
	lua_pop(L, 1); /* the table anchors the string */
	if (kind == NULL) {
		luaL_error(L, "%s: the schedule's kind comes first: \"step\", "
		    "\"exponential\", \"cosine\" or \"constant\"", fn);
	}
	if (strcmp(kind, "step") == 0) {
		lfm_check_fields(L, t, fn, fstep);
		out->kind = FMI_LR_STEP;
		out->every = (uint32_t)lfm_opt_int(L, t, fn, "every", 0, 1,
		    100000000);
		if (out->every == 0) {
			luaL_error(L, "%s: \"step\" needs 'every' (rounds between "
			    "two decays), e.g. { \"step\", every = 10, gamma = "
			    "0.5 }", fn);
		}
		out->gamma = sched_num(L, t, fn, kind, "gamma", 0, 1, 1,
		    "{ \"step\", every = 10, gamma = 0.5 }");
	} else if (strcmp(kind, "exponential") == 0) {
		lfm_check_fields(L, t, fn, fexp);
		out->kind = FMI_LR_EXP;
		out->gamma = sched_num(L, t, fn, kind, "gamma", 0, 1, 1,
		    "{ \"exponential\", gamma = 0.98 }");
	} else if (strcmp(kind, "cosine") == 0) {
		lfm_check_fields(L, t, fn, base >= 0 ? fcos_local : fcos_server);
		out->kind = FMI_LR_COSINE;
		out->rounds = (uint32_t)lfm_opt_int(L, t, fn, "rounds", 0, 1,
		    100000000);
		if (out->rounds == 0) {
			luaL_error(L, "%s: \"cosine\" needs 'rounds' (from the "
			    "base learning rate to the final one), e.g. { "
			    "\"cosine\", rounds = 50 }", fn);
		}
		if (base >= 0) {
			double lo = lfm_opt_num(L, t, fn, "min_lr", 0, 0, HUGE_VAL);
			if (lo > base) {
				char msg[96];
				snprintf(msg, sizeof msg, "%g exceeds lr = %g", lo,
				    base);
				luaL_error(L, "%s: min_lr = %s (the final learning "
				    "rate is at most the base one)", fn, msg);
			}
			out->floor = base > 0 ? lo / base : 0;
		} else {
			out->floor = lfm_opt_num(L, t, fn, "min_scale", 0, 0, 1);
		}
	} else if (strcmp(kind, "constant") == 0) {
		lfm_check_fields(L, t, fn, fnone);
		out->kind = FMI_LR_CONSTANT;
	} else {
		luaL_error(L, "%s: unknown schedule '%s' (step, exponential, "
		    "cosine, constant)", fn, kind);
	}
	fm_error e;
	if (fmi_lr_check(out, &e) != FM_OK) {
		luaL_error(L, "%s: %s", fn, e.msg);
	}
}

/* True when component c declares a parameter named "lr". */
static int
has_lr(const fmi_component *c)
{
	for (const fm_param_desc *p = c != NULL ? c->desc->params : NULL;
	    p != NULL && p->name != NULL; p++) {
		if (strcmp(p->name, "lr") == 0) {
			return 1;
		}
	}
	return 0;
}

/* server_lr_schedule = { ... }: scales the lr of the aggregators that
 * have one. */
void
lfm_read_server_lr(lua_State *L, lexp *x)
{
	const char *fn = "fm.experiment: server_lr_schedule";
	if (lua_getfield(L, 1, "server_lr_schedule") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	lfm_read_lr_schedule(L, -1, fn, -1, &x->cfg.server_lr_sched);
	lua_pop(L, 1);
	int any = has_lr(x->agg.c) || has_lr(x->rule.c);
	for (uint32_t l = 0; l < x->cfg.hier.levels; l++) {
		any |= has_lr(x->cfg.hier.level[l].aggregator);
	}
	if (!any) {
		luaL_error(L, "%s: aggregator '%s' has no server learning rate "
		    "(lr) to schedule; fedavgm, fedadam, fedadagrad, fedyogi and "
		    "scaffold have one", fn, x->rule.c != NULL ?
		    x->rule.c->desc->name : x->agg.c != NULL ?
		    x->agg.c->desc->name : "?");
	}
}

/* The per-round options a peer-to-peer federation does not take. */
void
lfm_refuse_p2p_rounds(lua_State *L, const lexp *x)
{
	static const char *const f[] = { "faults", "server_lr_schedule",
		NULL };
	for (int i = 0; f[i] != NULL; i++) {
		if (lua_getfield(L, 1, f[i]) != LUA_TNIL) {
			luaL_error(L, "fm.experiment: '%s' is for star and "
			    "hierarchical federations, not peer-to-peer "
			    "topologies", f[i]);
		}
		lua_pop(L, 1);
	}
	if (x->cfg.lr_sched.kind != FMI_LR_NONE) {
		luaL_error(L, "fm.experiment: local_training.lr_schedule is for "
		    "star and hierarchical federations, not peer-to-peer "
		    "topologies");
	}
	if (x->cfg.client_detail) {
		luaL_error(L, "fm.experiment: metrics.clients is for star and "
		    "hierarchical federations, not peer-to-peer topologies");
	}
}

static const char *
status_name(uint32_t s)
{
	switch (s) {
	case FMI_CLIENT_KEPT:
		return "kept";
	case FMI_CLIENT_REJECTED:
		return "rejected";
	case FMI_CLIENT_STRAGGLER:
		return "straggler";
	case FMI_CLIENT_UNUSED:
		return "unused";
	default:
		return "dropped";
	}
}

/* row.participants = { { client, status, examples, loss, norm,
 * adversary }, ... } into the row at the top. */
void
lfm_push_participants(lua_State *L, const fmi_round_metrics *m)
{
	if (m->clients == NULL) {
		return;
	}
	lua_createtable(L, (int)m->nclients, 0);
	for (uint32_t i = 0; i < m->nclients; i++) {
		const fmi_client_detail *d = &m->clients[i];
		int has = d->status == FMI_CLIENT_KEPT ||
		    d->status == FMI_CLIENT_REJECTED ||
		    d->status == FMI_CLIENT_STRAGGLER ||
		    d->status == FMI_CLIENT_UNUSED;
		lua_createtable(L, 0, 6);
		lfm_set_int(L, "client", d->client);
		lfm_set_str(L, "status", status_name(d->status));
		if (has) {
			lfm_set_int(L, "examples", (lua_Integer)d->examples);
			lfm_set_num(L, "loss", d->loss);
			if (!isnan(d->norm)) {
				lfm_set_num(L, "norm", d->norm);
			}
		}
		if (d->adversary) {
			lua_pushboolean(L, 1);
			lua_setfield(L, -2, "adversary");
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "participants");
}
