/* SPDX-License-Identifier: MIT */
/*
 * lexp_run.c: running an experiment: the per-round plumbing every run
 * shares (rows, progress lines or the live line, --metrics, on_round, the
 * summary and the result; lfm_exp_execute), and exp:simulate(). exp:run()
 * (deployments) is in ldeploy.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "lua/lfm.h"
#include "node/peer.h"

static void
push_row(lua_State *L, const fmi_round_metrics *m)
{
	lua_createtable(L, 0, 12 + (int)m->nextra);
	lfm_set_int(L, "round", m->round);
	if (m->evaluated) {
		lfm_set_num(L, "accuracy", m->accuracy);
		lfm_set_num(L, "loss", m->loss);
	}
	lfm_set_num(L, "train_loss", m->train_loss);
	lfm_set_int(L, "bytes_sent", (lua_Integer)m->bytes_sent);
	lfm_set_int(L, "bytes_received", (lua_Integer)m->bytes_received);
	lfm_set_num(L, "seconds", m->seconds);
	lfm_set_int(L, "clients", m->sampled);
	lfm_set_int(L, "updates", m->updates);
	lfm_set_int(L, "dropped", m->dropped);
	lfm_set_int(L, "stragglers", m->stragglers);
	for (uint32_t i = 0; i < m->nextra; i++) {
		lua_pushnumber(L, m->extra[i].value);
		lua_setfield(L, -2, m->extra[i].name);
	}
	lfm_push_participants(L, m);
}

/* The round's metric name, or NAN. */
static double
extra_metric(const fmi_round_metrics *m, const char *name)
{
	for (uint32_t i = 0; i < m->nextra; i++) {
		if (strcmp(m->extra[i].name, name) == 0) {
			return m->extra[i].value;
		}
	}
	return NAN;
}

static void
print_progress(const lexp *x, const fmi_round_metrics *m)
{
	char acc[128] = "";
	double cacc = extra_metric(m, "client_accuracy");
	int n = 0;
	if (m->evaluated) {
		n = snprintf(acc, sizeof acc, "  acc %.4f  loss %.4f",
		    m->accuracy, m->loss);
	}
	if (!isnan(cacc)) { /* federated evaluation */
		n += snprintf(acc + n, sizeof acc - (size_t)n, "  client_acc "
		    "%.4f [%.4f, %.4f]", cacc, extra_metric(m,
		    "client_accuracy_min"), extra_metric(m,
		    "client_accuracy_max"));
	}
	double eps = x->graph != NULL ? lfm_p2p_epsilon(x, m->round) :
	                                extra_metric(m, "epsilon");
	if (!isnan(eps) && n < (int)sizeof acc) { /* a private run */
		snprintf(acc + n, sizeof acc - (size_t)n, "  eps %.3f", eps);
	}
	printf("round %4u/%u%s  train_loss %.4f  sent %.2f MB  recv %.2f MB  "
	    "%.2f s\n", m->round, x->cfg.rounds, acc, m->train_loss,
	    (double)m->bytes_sent / 1e6, (double)m->bytes_received / 1e6,
	    m->seconds);
	fflush(stdout);
}

static int
msgh(lua_State *L)
{
	luaL_traceback(L, L, lua_tostring(L, 1), 1);
	return 1;
}

/* h:mm:ss or m:ss */
static void
fmt_hms(char *buf, size_t size, double s)
{
	long t = s > 0 && s < 1e9 ? (long)(s + 0.5) : 0;
	if (t >= 3600) {
		snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60,
		    t % 60);
	} else {
		snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
	}
}

/* On a terminal: "round k/n [####....] acc 0.8123  elapsed 0:12  ETA 0:38",
 * redrawn in place (a per-round line would scroll thousands of lines
 * away for a long run). The line is cleared before anything else prints:
 * on_round's output, the summary, an error. */
static void
live_draw(lexp *x, const fmi_round_metrics *m)
{
	enum { BAR = 20 };
	char bar[BAR + 1], el[32], eta[32], acc[32] = "";
	uint32_t n = x->cfg.rounds ? x->cfg.rounds : 1;
	uint32_t fill = (uint32_t)((uint64_t)m->round * BAR / n);
	for (uint32_t i = 0; i < BAR; i++) {
		bar[i] = i < fill ? '#' : '.';
	}
	bar[BAR] = '\0';
	double spent = fmi_now() - x->t_start;
	fmt_hms(el, sizeof el, spent);
	fmt_hms(eta, sizeof eta, x->nseen ? spent / x->nseen *
	    (double)(n - FMI_MIN(m->round, n)) : 0);
	if (x->last_acc >= 0) {
		snprintf(acc, sizeof acc, "  acc %.4f", x->last_acc);
	}
	printf("\r\033[Kround %u/%u [%s]%s  elapsed %s  ETA %s", m->round, n,
	    bar, acc, el, eta);
	fflush(stdout);
}

static void
live_clear(lexp *x)
{
	if (x->live) {
		fputs("\r\033[K", stdout);
		fflush(stdout);
	}
}

/* Called by the server after every round, on this thread. */
static int
exp_on_round(void *ud, const fmi_round_metrics *m)
{
	lexp *x = ud;
	lua_State *L = x->L;
	if (m->evaluated && m->accuracy > x->best_acc) {
		x->best_acc = m->accuracy;
		x->best_round = (int)m->round;
	}
	x->nseen++;
	if (m->evaluated) {
		x->last_acc = m->accuracy;
	}
	if (x->live) {
		live_clear(x);
	} else if (!x->quiet) {
		print_progress(x, m);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, x->rows);
	push_row(L, m);
	/* the clients' local learning rate (peer-to-peer: constant) */
	lfm_set_num(L, "lr", x->graph != NULL ? x->cfg.local.opt.lr : m->lr);
	if (x->graph != NULL && x->cfg.dp_acct.mode != FMI_DP_NONE) {
		/* local DP on peers: every peer released once a round */
		lfm_set_num(L, "epsilon", lfm_p2p_epsilon(x, m->round));
		lfm_set_num(L, "delta", x->cfg.dp_acct.delta);
	}
	if (x->mf != NULL) {
		lfm_write_row_json(L, x->mf, lua_gettop(L));
		fflush(x->mf);
	}
	lua_pushvalue(L, -1);
	lua_rawseti(L, -3, (lua_Integer)m->round);
	int rv = 0;
	if (x->on_round != LUA_NOREF) {
		lua_pushcfunction(L, msgh);
		lua_rawgeti(L, LUA_REGISTRYINDEX, x->on_round);
		lua_pushvalue(L, -3);
		if (lua_pcall(L, 1, 0, -3) != LUA_OK) {
			lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.cb_error");
			rv = 1;
		}
		lua_pop(L, 1); /* msgh */
	}
	lua_pop(L, 2); /* row, rows */
	if (x->live && rv == 0) {
		live_draw(x, m);
	}
	return rv;
}

static void
print_summary(const lexp *x, const fmi_fed_result *res)
{
	uint64_t sent = 0, recv = 0;
	for (uint32_t i = 0; i < res->nrounds; i++) {
		sent += res->rounds[i].bytes_sent;
		recv += res->rounds[i].bytes_received;
	}
	char best[96] = "no test set here";
	if (x->best_round > 0) {
		snprintf(best, sizeof best, "best accuracy %.4f at round %d",
		    x->best_acc, x->best_round);
	}
	for (uint32_t i = res->nrounds; i-- > 0;) {
		double c = extra_metric(&res->rounds[i], "client_accuracy");
		if (!isnan(c)) {
			size_t k = strlen(best);
			snprintf(best + k, sizeof best - k, "; clients' accuracy "
			    "%.4f at round %u", c, res->rounds[i].round);
			break;
		}
	}
	char eps[160] = "";
	double e = res->nrounds == 0 ? NAN : x->graph != NULL ?
	    lfm_p2p_epsilon(x, res->nrounds) :
	    extra_metric(&res->rounds[res->nrounds - 1], "epsilon");
	if (!isnan(e)) {
		snprintf(eps, sizeof eps, "; epsilon %.4g at delta %g%s", e,
		    x->cfg.dp_acct.delta, res->budget_spent ? " (the budget, "
		    "max_epsilon, is spent)" : "");
	}
	printf("done: %u rounds in %.1f s; %s; %.1f MB sent, %.1f MB "
	    "received; %zu parameters%s\n", res->nrounds, res->seconds, best,
	    (double)sent / 1e6, (double)recv / 1e6, res->nparams, eps);
	fflush(stdout);
}

int
lfm_exp_execute(lua_State *L, lexp *x, lfm_runner run, const char *what)
{
	fmi_fed_result res;
	fm_error e = { 0, "" };
	memset(&res, 0, sizeof res); /* freed below even if run fails early */
	if (x->metrics != NULL && (x->mf = fopen(x->metrics, "w")) == NULL) {
		return luaL_error(L, "%s: cannot write metrics to '%s'", what,
		    x->metrics);
	}
	lua_newtable(L);
	x->rows = luaL_ref(L, LUA_REGISTRYINDEX);
	x->L = L;
	x->best_acc = 0;
	x->best_round = 0;
	x->t_start = fmi_now();
	x->last_acc = -1;
	x->nseen = 0;
	/* a terminal gets one line redrawn in place, a pipe or file the
	 * per-round lines (FEDMESH_PROGRESS=lines keeps those anywhere) */
	const char *pr = getenv("FEDMESH_PROGRESS");
	x->live = !x->quiet && isatty(STDOUT_FILENO) &&
	    !(pr != NULL && strcmp(pr, "lines") == 0);
	x->cfg.on_round = exp_on_round;
	x->cfg.ud = x;
	int rv = run(x, &res, &e);
	live_clear(x);
	if (x->live && res.nrounds > 0) { /* the last round stays on screen */
		print_progress(x, &res.rounds[res.nrounds - 1]);
	}
	if (x->mf != NULL) {
		fclose(x->mf);
		x->mf = NULL;
	}
	if (rv == FM_OK) {
		if (!x->quiet) {
			print_summary(x, &res);
		}
		lua_rawgeti(L, LUA_REGISTRYINDEX, x->rows);
		lfm_push_result(L, -1, res.seconds, res.nparams);
		if (x->cfg.dp_acct.mode != FMI_DP_NONE && res.nrounds > 0) {
			lfm_set_num(L, "epsilon", x->graph != NULL ?
			    lfm_p2p_epsilon(x, res.nrounds) :
			    extra_metric(&res.rounds[res.nrounds - 1], "epsilon"));
			lfm_set_num(L, "delta", x->cfg.dp_acct.delta);
			lua_pushboolean(L, res.budget_spent);
			lua_setfield(L, -2, "budget_spent");
		}
		if (res.params != NULL && res.nparams == x->cfg.arch.nparams) {
			lfm_push_model(L, &x->cfg.arch, res.params);
			res.params = NULL; /* now the Model's */
			lua_setfield(L, -2, "model");
		}
	}
	fmi_fed_result_free(&res);
	luaL_unref(L, LUA_REGISTRYINDEX, x->rows);
	if (rv == FM_OK) {
		return 1;
	}
	if (lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.cb_error") !=
	    LUA_TNIL) {
		lua_pushnil(L);
		lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.cb_error");
		return lua_error(L); /* the callback's own error */
	}
	return luaL_error(L, "%s: %s", what, e.msg);
}

static int
run_simulation(lexp *x, fmi_fed_result *res, fm_error *err)
{
	lua_getfield(x->L, LUA_REGISTRYINDEX, "fedmesh.resume");
	int flag = lua_toboolean(x->L, -1);
	lua_pop(x->L, 1);
	if (x->graph != NULL && !flag) {
		fmi_p2p_cfg p;
		lfm_p2p_cfg(x, &p);
		return fmi_p2p_simulate(&p, res, err);
	}
	fmi_fed_cfg c = x->cfg;
	c.checkpoint = x->ckpt_path;
	if (flag && c.checkpoint == NULL) {
		return fm_error_set(err, FM_EINVAL, "--resume: this experiment has "
		    "no checkpoint to continue from; give it checkpoint = path "
		    "(deploy.checkpoint serves only the deployed server), or run "
		    "without --resume");
	}
	c.resume = x->resume || flag;
	return fmi_fed_simulate(&c, res, err);
}

/* exp:simulate() -> result table { rounds = {...}, accuracy, loss,
 * best_accuracy, best_round, seconds, params } */
int
lfm_exp_simulate(lua_State *L)
{
	return lfm_exp_execute(L, lfm_check_exp(L, 1), run_simulation,
	    "simulate");
}
