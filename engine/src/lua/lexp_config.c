/* SPDX-License-Identifier: MIT */
/*
 * lexp_config.c: fm.experiment{...}: reads and checks the fields of its
 * table (data, model, local_training, scalars, topology, aggregator,
 * defence, attack and adversaries, checkpoint) into an Experiment, and the
 * plugin components such fields name. Per-round options (metrics, faults,
 * learning-rate schedules): lrounds.c; peer-to-peer fields: lpeer.c;
 * deploy: ldeploy.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"
#include "node/peer.h"

void
lfm_comp_free(lfm_comp *c)
{
	for (uint32_t i = 0; c->strs != NULL && i < c->nparams; i++) {
		free(c->strs[i]);
	}
	free(c->strs);
	free(c->params);
	memset(c, 0, sizeof *c);
}

void
lfm_read_component(lua_State *L, int t, uint32_t kind, const char *fn,
    const char *field, const char *def, lfm_comp *out)
{
	fmi_param_in in[64];
	size_t nin = 0;
	const char *name = def;
	const char *kn = fmi_kind_name(kind);

	t = lua_absindex(L, t);
	if (lua_type(L, t) == LUA_TSTRING) {
		name = lua_tostring(L, t);
	} else if (lua_type(L, t) == LUA_TTABLE) {
		lua_rawgeti(L, t, 1);
		name = lua_tostring(L, -1); /* anchored by the table */
		lua_pop(L, 1);
		if (name == NULL) {
			luaL_error(L, "%s: the %s table needs the plugin name "
			    "first, e.g. { \"%s\" }", fn, field, def);
		}
		nin = lfm_read_params(L, t, fn, name, in, 64);
	} else if (!lua_isnil(L, t)) {
		luaL_error(L, "%s: field '%s' must be a plugin name or "
		    "{ name, param = value, ... }", fn, field);
	}
	const fmi_component *c = fmi_registry_find(lfm_registry(L), kind,
	    name);
	if (c == NULL) {
		luaL_error(L, "%s: unknown %s plugin '%s' (run `fedmesh "
		    "plugins` to list the available ones; add directories with "
		    "FEDMESH_PLUGIN_PATH or fm.plugin_path)", fn, kn, name);
	}
	lfm_comp_free(out);
	out->c = c;
	out->nparams = (uint32_t)fmi_component_nparams(c);
	out->params = calloc(out->nparams + 1, sizeof *out->params);
	out->strs = calloc(out->nparams + 1, sizeof *out->strs);
	fm_error e;
	if (out->params == NULL || out->strs == NULL ||
	    fmi_params_resolve(c, in, nin, out->params, &e) != FM_OK) {
		luaL_error(L, "%s: %s", fn, out->params ? e.msg :
		    "out of memory");
	}
	for (uint32_t i = 0; i < out->nparams; i++) { /* own the strings */
		if (out->params[i].str != NULL) {
			out->strs[i] = strdup(out->params[i].str);
			out->params[i].str = out->strs[i];
		}
	}
}

static void
exp_read_local(lua_State *L, lexp *x)
{
	static const char *const f[] = { "epochs", "batch", "lr", "momentum",
		"weight_decay", "lr_schedule", "dp", NULL };
	const char *fn = "fm.experiment: local_training";
	int t = lua_gettop(L);
	if (!lua_isnil(L, t)) {
		luaL_checktype(L, t, LUA_TTABLE);
		lfm_check_fields(L, t, fn, f);
	}
	fmi_local_cfg *c = &x->cfg.local;
	c->epochs = (uint32_t)lfm_opt_int(L, t, fn, "epochs", 1, 1, 100000);
	c->batch = (uint32_t)lfm_opt_int(L, t, fn, "batch", 32, 1, 65536);
	c->opt.lr = (float)lfm_opt_num(L, t, fn, "lr", 0.05, 0, 1e6);
	c->opt.momentum = (float)lfm_opt_num(L, t, fn, "momentum", 0, 0, 1);
	c->opt.weight_decay = (float)lfm_opt_num(L, t, fn, "weight_decay", 0,
	    0, 1e3);
	if (!lua_isnil(L, t) && lua_getfield(L, t, "lr_schedule") != LUA_TNIL) {
		lfm_read_lr_schedule(L, -1, "fm.experiment: local_training."
		    "lr_schedule", c->opt.lr, &x->cfg.lr_sched);
	}
	lua_settop(L, t);
	if (!lua_isnil(L, t) && lua_getfield(L, t, "dp") != LUA_TNIL) {
		/* example-level DP-SGD (Abadi et al. 2016) */
		static const char *const df[] = { "clip", "noise_multiplier",
			NULL };
		const char *dfn = "fm.experiment: local_training.dp";
		int d = lua_gettop(L);
		luaL_checktype(L, d, LUA_TTABLE);
		lfm_check_fields(L, d, dfn, df);
		c->dp.clip = lfm_opt_num(L, d, dfn, "clip", 1.0, 0, 1e30);
		c->dp.noise_multiplier = lfm_opt_num(L, d, dfn,
		    "noise_multiplier", 1.0, 0, 1e6);
		if (!(c->dp.clip > 0)) {
			luaL_error(L, "%s: clip must be > 0 (the L2 bound of each "
			    "example's gradient)", dfn);
		}
	}
	lua_settop(L, t - 1);
}

/* Reads list field k ("fanouts" or "every") of the hierarchy at t: n
 * integers >= 1 (nil: all 1), one per level, into h. */
static void
exp_read_levels(lua_State *L, int t, const char *k, lua_Integer n,
    fmi_hier_cfg *h)
{
	const char *fn = "fm.experiment: topology";
	int ty = lua_getfield(L, t, k);
	if (ty != LUA_TNIL && (ty != LUA_TTABLE || luaL_len(L, -1) != n)) {
		luaL_error(L, "%s: field '%s' must list %d integers, one per "
		    "level of 'fanouts' (top-down)", fn, k, (int)n);
	}
	for (lua_Integer i = 1; i <= n; i++) {
		int ok = 1;
		lua_Integer v = 1;
		if (ty != LUA_TNIL) {
			lua_rawgeti(L, -1, i);
			v = lua_tointegerx(L, -1, &ok);
			lua_pop(L, 1);
		}
		if (!ok || v < 1 || v > 100000000) {
			luaL_error(L, "%s: %s[%d] must be an integer >= 1", fn, k,
			    (int)i);
		}
		if (k[0] == 'e') {
			h->level[i - 1].every = (uint32_t)v;
		} else {
			h->level[i - 1].fanout = (uint32_t)v;
		}
	}
	lua_pop(L, 1);
}

/* The plugin name of the component spec at idx ("x" or { "x", ... }), or
 * NULL. */
static const char *
exp_spec_name(lua_State *L, int idx)
{
	const char *name = NULL;
	idx = lua_absindex(L, idx);
	if (lua_type(L, idx) == LUA_TSTRING) {
		return lua_tostring(L, idx);
	}
	if (lua_type(L, idx) == LUA_TTABLE) {
		lua_rawgeti(L, idx, 1);
		name = lua_tostring(L, -1); /* anchored by the table */
		lua_pop(L, 1);
	}
	return name;
}

/*
 * An aggregator spec at idx. One that names a local-training rule
 * (FedProx, SCAFFOLD: FM_KIND_LOCAL) means FedAvg plus that rule on the
 * clients, which only the edge level's clients can run (edge_ok); where
 * is the field's name for messages.
 */
static void
exp_read_agg_spec(lua_State *L, lexp *x, int idx, const char *fn,
    const char *where, int edge_ok, lfm_comp *agg)
{
	const char *name = exp_spec_name(L, idx);
	fmi_registry *reg = lfm_registry(L);
	if (name == NULL ||
	    fmi_registry_find(reg, FM_KIND_AGGREGATOR, name) != NULL ||
	    fmi_registry_find(reg, FM_KIND_LOCAL, name) == NULL) {
		lfm_read_component(L, idx, FM_KIND_AGGREGATOR, fn, where,
		    "fedavg", agg);
		return;
	}
	if (!edge_ok) {
		luaL_error(L, "%s: %s: '%s' changes how clients train, so it "
		    "works only at the edge level (the last); above the edges "
		    "its children are aggregators. Set topology.aggregators, "
		    "e.g. { \"fedavg\", \"%s\" }", fn, where, name, name);
	}
	lfm_read_component(L, idx, FM_KIND_LOCAL, fn, where, name, &x->rule);
	x->cfg.rule = x->rule.c;
	x->cfg.rule_params = x->rule.params;
	lua_pushnil(L);
	lfm_read_component(L, -1, FM_KIND_AGGREGATOR, fn, where, "fedavg",
	    agg);
	lua_pop(L, 1);
}

/* The per-level aggregators of the hierarchy at t (nil: the experiment's
 * `aggregator` everywhere). */
static void
exp_read_level_aggs(lua_State *L, lexp *x, int t, lua_Integer n)
{
	const char *fn = "fm.experiment: topology";
	char field[48];
	int ty = lua_getfield(L, t, "aggregators");
	if (ty != LUA_TNIL && (ty != LUA_TTABLE || luaL_len(L, -1) != n)) {
		luaL_error(L, "%s: field 'aggregators' must list %d aggregators, "
		    "one per level of 'fanouts' (top-down), e.g. { \"fedavg\", "
		    "{ \"fedadam\", lr = 0.01 } }", fn, (int)n);
	}
	for (lua_Integer i = 1; ty != LUA_TNIL && i <= n; i++) {
		snprintf(field, sizeof field, "topology.aggregators[%d]", (int)i);
		lua_rawgeti(L, -1, i);
		exp_read_agg_spec(L, x, -1, "fm.experiment", field, i == n,
		    &x->level_agg[i - 1]);
		lua_pop(L, 1);
		x->cfg.hier.level[i - 1].aggregator = x->level_agg[i - 1].c;
		x->cfg.hier.level[i - 1].agg_params = x->level_agg[i - 1].params;
	}
	lua_pop(L, 1);
}

/* topology = fm.topology.hierarchical{ fanouts, every } (or such a table
 * written by hand), optionally with aggregators = { one per level }. */
static void
exp_read_hier(lua_State *L, lexp *x, int t)
{
	static const char *const f[] = { "kind", "fanouts", "every",
		"aggregators", "clients", "levels", "describe", NULL };
	const char *fn = "fm.experiment: topology";
	lfm_check_fields(L, t, fn, f);
	if (lua_getfield(L, t, "fanouts") != LUA_TTABLE) {
		luaL_error(L, "%s: a hierarchical topology needs 'fanouts', a "
		    "list of fan-outs, top-down, e.g. { 4, 25 }", fn);
	}
	lua_Integer n = luaL_len(L, -1);
	lua_pop(L, 1);
	if (n < 1 || n > FMI_HIER_MAX_LEVELS) {
		luaL_error(L, "%s: field 'fanouts' must list 1 to %d fan-outs",
		    fn, FMI_HIER_MAX_LEVELS);
	}
	memset(&x->cfg.hier, 0, sizeof x->cfg.hier);
	x->cfg.hier.levels = (uint32_t)n;
	exp_read_levels(L, t, "fanouts", n, &x->cfg.hier);
	exp_read_levels(L, t, "every", n, &x->cfg.hier);
	exp_read_level_aggs(L, x, t, n);
}

/* Checks the topology table against the partition. */
static void
exp_read_topology(lua_State *L, lexp *x)
{
	int t = lua_gettop(L);
	struct fmi_graph *g = lfm_to_graph(L, t);
	if (g != NULL) {
		lfm_p2p_read(L, x, t, g);
	} else if (!lua_isnil(L, t)) {
		if (!lua_istable(L, t)) {
			luaL_error(L, "fm.experiment: field 'topology' must be "
			    "made by fm.topology (e.g. topology = "
			    "fm.topology.star { clients = 100 }, or "
			    "fm.topology.ring { peers = 16 }), not a %s%s%s%s",
			    luaL_typename(L, t), lua_type(L, t) == LUA_TSTRING
			    ? " ('" : "", lua_type(L, t) == LUA_TSTRING
			    ? lua_tostring(L, t) : "", lua_type(L, t) ==
			    LUA_TSTRING ? "')" : "");
		}
		const char *kind = lfm_opt_str(L, t, "fm.experiment: topology",
		    "kind", "star");
		if (strcmp(kind, "hierarchical") == 0) {
			exp_read_hier(L, x, t);
		} else if (strcmp(kind, "star") != 0) {
			luaL_error(L, "fm.experiment: topology '%s' is not "
			    "supported by this version (use fm.topology.star, "
			    "hierarchical or a peer-to-peer graph)", kind);
		}
		lua_Integer n = lfm_opt_int(L, t, "fm.experiment: topology",
		    "clients", 0, 0, 100000000);
		if (n != 0 && (uint32_t)n != x->cfg.part->nclients) {
			luaL_error(L, "fm.experiment: the %s topology has %I "
			    "clients but the partition 'train' has %d", kind, n,
			    (int)x->cfg.part->nclients);
		}
	}
	lua_pop(L, 1);
}

/* defence = "krum" | { "multikrum", f = 2, m = 5 }, and root_data (a
 * Dataset the server trains on, for FLTrust). */
static void
exp_read_defence(lua_State *L, lexp *x)
{
	if (lua_getfield(L, 1, "defence") != LUA_TNIL) {
		lfm_read_component(L, -1, FM_KIND_DEFENCE, "fm.experiment",
		    "defence", "krum", &x->def);
		x->cfg.defence = x->def.c;
		x->cfg.def_params = x->def.params;
	}
	lua_pop(L, 1);
	if (lua_getfield(L, 1, "root_data") != LUA_TNIL) {
		if (luaL_testudata(L, -1, LFM_DATASET) == NULL) {
			luaL_error(L, "fm.experiment: field 'root_data' must be a "
			    "fedmesh.Dataset (the server's own clean data, for "
			    "FLTrust), got %s", luaL_typename(L, -1));
		}
		x->cfg.root_data = ((lfm_dataset *)lua_touserdata(L, -1))->d;
		fmi_dataset_ref(x->cfg.root_data);
	}
	lua_pop(L, 1);
}

void
lfm_read_adversary_set(lua_State *L, int t, lexp *x, uint32_t n,
    const char *list, const char *fn)
{
	x->byzantine = calloc(n, 1);
	uint32_t *perm = malloc(n * sizeof *perm);
	if (x->byzantine == NULL || perm == NULL) {
		free(perm);
		luaL_error(L, "%s: out of memory", fn);
	}
	for (uint32_t i = 0; i < n; i++) {
		perm[i] = i;
	}
	fm_rng r;
	fmi_rng_seed(&r, x->cfg.seed, 0x616476); /* "adv" */
	fmi_rng_shuffle_u32(&r, perm, n);
	double frac = lfm_opt_num(L, t, fn, "fraction", 0, 0, 1);
	uint32_t k = (uint32_t)(frac * n + 0.5);
	for (uint32_t i = 0; i < k; i++) {
		x->byzantine[perm[i]] = 1;
	}
	free(perm);
	if (lua_getfield(L, t, list) != LUA_TNIL) {
		luaL_checktype(L, -1, LUA_TTABLE);
		for (lua_Integer i = 1; i <= luaL_len(L, -1); i++) {
			lua_rawgeti(L, -1, i);
			lua_Integer c = lua_tointeger(L, -1);
			if (!lua_isinteger(L, -1) || c < 1 || c > (lua_Integer)n) {
				/* "peers" -> "a peer id" */
				char noun[16];
				snprintf(noun, sizeof noun, "%.*s",
				    (int)strlen(list) - 1, list);
				luaL_error(L, "%s: %s[%I] must be a %s id 1..%d", fn,
				    list, i, noun, (int)n);
			}
			x->byzantine[c - 1] = 1;
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
}

/* adversaries = { fraction = 0.2 } | { clients = { 3, 17 } }: which
 * clients the attack controls (a seeded choice for a fraction); with
 * per_round = true, every round samples round(fraction *
 * clients_per_round) of them and the rest from the honest clients. */
static void
exp_read_adversaries(lua_State *L, lexp *x)
{
	static const char *const f[] = { "fraction", "clients", "per_round",
		NULL };
	const char *fn = "fm.experiment: adversaries";
	int t = lua_gettop(L);
	luaL_checktype(L, t, LUA_TTABLE);
	lfm_check_fields(L, t, fn, f);
	uint32_t n = x->cfg.part->nclients, k = x->cfg.clients_per_round;
	lfm_read_adversary_set(L, t, x, n, "clients", fn);
	x->cfg.adversarial = x->byzantine;
	x->cfg.adv_fixed = lfm_opt_bool(L, t, fn, "per_round", 0);
	if (!x->cfg.adv_fixed) {
		return;
	}
	if (lua_getfield(L, t, "fraction") == LUA_TNIL) {
		luaL_error(L, "%s: per_round = true needs 'fraction', the share "
		    "of each round's clients_per_round that is adversarial "
		    "(e.g. { fraction = 0.2, per_round = true })", fn);
	}
	lua_pop(L, 1);
	double frac = lfm_opt_num(L, t, fn, "fraction", 0, 0, 1);
	uint32_t ka = (uint32_t)(frac * k + 0.5), na = 0;
	for (uint32_t c = 0; c < n; c++) {
		na += x->byzantine[c] != 0;
	}
	char fs[32];
	snprintf(fs, sizeof fs, "%g", frac);
	if (ka > na) {
		luaL_error(L, "%s: per_round: fraction %s of clients_per_round "
		    "%d is %d adversaries a round, but only %d of the %d clients "
		    "are adversarial", fn, fs, (int)k, (int)ka, (int)na, (int)n);
	}
	if (k - ka > n - na) {
		luaL_error(L, "%s: per_round: fraction %s of clients_per_round "
		    "%d leaves %d honest clients a round, but only %d of the %d "
		    "clients are honest", fn, fs, (int)k, (int)(k - ka),
		    (int)(n - na), (int)n);
	}
	x->cfg.adv_per_round = ka;
}

/* attack = "alie" | { "backdoor", target = 0 } with adversaries. */
static void
exp_read_attack(lua_State *L, lexp *x)
{
	int has_atk = lua_getfield(L, 1, "attack") != LUA_TNIL;
	if (has_atk) {
		lfm_read_component(L, -1, FM_KIND_ATTACK, "fm.experiment",
		    "attack", "sign_flip", &x->atk);
		x->cfg.attack = x->atk.c;
		x->cfg.atk_params = x->atk.params;
	}
	lua_pop(L, 1);
	int has_adv = lua_getfield(L, 1, "adversaries") != LUA_TNIL;
	if (has_adv != has_atk) {
		luaL_error(L, "fm.experiment: 'attack' and 'adversaries' go "
		    "together: the attack plugin acts for the adversarial "
		    "clients, e.g. attack = \"alie\", adversaries = { "
		    "fraction = 0.2 }");
	}
	if (has_adv) {
		exp_read_adversaries(L, x);
	}
	lua_pop(L, 1);
}

/* Fields that only a peer-to-peer topology understands. */
static void
exp_read_star_only(lua_State *L)
{
	static const char *const p2p[] = { "consensus", "eval_samples",
		"init", NULL };
	for (int i = 0; p2p[i] != NULL; i++) {
		if (lua_getfield(L, 1, p2p[i]) != LUA_TNIL) {
			luaL_error(L, "fm.experiment: '%s' is for peer-to-peer "
			    "topologies (fm.topology.ring{...}, torus, ...); a "
			    "star federation aggregates with 'aggregator'",
			    p2p[i]);
		}
		lua_pop(L, 1);
	}
}

/* The deployment's client names (deploy.clients, or "peer<i>" for each
 * of deploy.peers) and where this node is among them: *site is its
 * 0-based index, -1 for a server, edge, monitor or the launcher. 0 when
 * arg 1 has no deploy section. */
static int
exp_sites(lua_State *L, uint32_t *nsites, int64_t *site)
{
	const char *me = NULL;
	int rank_ok = 0;
	lua_Integer rank = 0;
	*nsites = 0;
	*site = -1;
	if (lua_getfield(L, 1, "deploy") != LUA_TTABLE) {
		lua_pop(L, 1);
		return 0;
	}
	lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.node");
	me = lua_tostring(L, -1); /* anchored in the registry */
	lua_pop(L, 1);
	lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.rank");
	rank = lua_tointegerx(L, -1, &rank_ok);
	lua_pop(L, 1);
	if (lua_getfield(L, -1, "clients") == LUA_TTABLE) {
		*nsites = (uint32_t)FMI_MIN(luaL_len(L, -1), UINT32_MAX);
		for (uint32_t i = 0; me != NULL && i < *nsites; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i + 1);
			const char *n = lua_tostring(L, -1);
			if (n != NULL && strcmp(n, me) == 0) {
				*site = i;
			}
			lua_pop(L, 1);
		}
	} else if (lua_getfield(L, -2, "peers") == LUA_TTABLE) {
		*nsites = (uint32_t)FMI_MIN(luaL_len(L, -1), UINT32_MAX);
		for (uint32_t i = 0; me != NULL && i < *nsites; i++) {
			char n[32];
			snprintf(n, sizeof n, "peer%u", i + 1);
			*site = strcmp(n, me) == 0 ? (int64_t)i : *site;
		}
		lua_pop(L, 1);
	} else {
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
	if (me == NULL && rank_ok && rank >= 1 && rank <= *nsites) {
		*site = rank - 1;
	}
	return 1;
}

/* How the experiment's data reached this process (x->data_form). */
enum { DATA_PARTITION = 0, DATA_SITES = 1, DATA_SITE = 2 };

/* A list of Datasets at idx, one per site, stacked (simulated sites). */
static void
exp_stack_sites(lua_State *L, int idx, const char *field, fmi_dataset **d,
    fmi_partition **p)
{
	lua_Integer n = luaL_len(L, idx);
	fm_error e;
	if (n < 1 || n > 1000000) {
		luaL_error(L, "fm.experiment: field '%s' is an empty list; give "
		    "one Dataset per site, e.g. { fm.data.csv(\"a.csv\"), "
		    "fm.data.csv(\"b.csv\") }", field);
	}
	fmi_dataset **ds = lua_newuserdatauv(L, (size_t)n * sizeof *ds, 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, i);
		lfm_dataset *u = luaL_testudata(L, -1, LFM_DATASET);
		if (u == NULL) {
			luaL_error(L, "fm.experiment: %s[%I] must be a "
			    "fedmesh.Dataset (one per site), got %s", field, i,
			    luaL_typename(L, -1));
		}
		ds[i - 1] = u->d;
		lua_pop(L, 1);
	}
	if (fmi_sites_stack(ds, (uint32_t)n, d, p, &e) != FM_OK) {
		luaL_error(L, "fm.experiment: %s: %s", field, e.msg);
	}
	lua_pop(L, 1);
}

/*
 * train and client_test: a Partition (every client's share of one
 * dataset), a list of Datasets (one client per site: a simulation of
 * sites, or a replay of one on every node), or, deployed, the Dataset of
 * this site alone (nil where no training happens: server, edges, the
 * launcher). The value is at the top of the stack; *form says which.
 */
static void
exp_read_part(lua_State *L, const char *field, fmi_dataset **d,
    fmi_partition **p, int *form)
{
	uint32_t nsites;
	int64_t site;
	fm_error e;
	int top = lua_gettop(L);
	*d = NULL;
	*p = NULL;
	if (luaL_testudata(L, top, LFM_PARTITION) != NULL) {
		lfm_partition *u = lua_touserdata(L, top);
		*p = u->p;
		*d = u->d;
		fmi_partition_ref(*p);
		fmi_dataset_ref(*d);
		*form = DATA_PARTITION;
		return;
	}
	if (lua_type(L, top) == LUA_TTABLE) {
		exp_stack_sites(L, top, field, d, p);
		*form = DATA_SITES;
		return;
	}
	lfm_dataset *u = luaL_testudata(L, top, LFM_DATASET);
	if (u == NULL && !lua_isnil(L, top)) {
		luaL_error(L, "fm.experiment: field '%s' must be a "
		    "fedmesh.Partition, a list of Datasets (one per site) or, "
		    "in a deployment, this site's Dataset; got %s", field,
		    luaL_typename(L, top));
	}
	lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.mode");
	const char *mode = lua_tostring(L, -1);
	int deployed = mode != NULL && strcmp(mode, "run") != 0;
	lua_pop(L, 1);
	if (!exp_sites(L, &nsites, &site) || !deployed || nsites == 0) {
		luaL_error(L, "fm.experiment: field '%s' is %s: that is a "
		    "deployment's form, where each client host brings its own "
		    "data (fedmesh node / launch with a deploy section). To "
		    "simulate the sites, give them all as a list: %s = { d1, "
		    "d2, d3 } (one client each)%s", field,
		    u != NULL ? "one Dataset" : "missing", field,
		    strcmp(field, "train") == 0 ? ", or a Partition such as "
		    "fm.partition.iid(data, { clients = 100 })" : "");
	}
	if (site >= 0 && u == NULL && strcmp(field, "train") == 0) {
		luaL_error(L, "fm.experiment: this client host has no train "
		    "data: give it its own Dataset (e.g. train = fm.data.csv("
		    "\"data/\" .. fm.node().name .. \".csv\"))");
	}
	if (site < 0 && u != NULL) {
		fm_log(FM_LOG_INFO, "FM-DATA", "%s: not used on this node (only "
		    "clients train and evaluate on their own data)", field);
	}
	if (site >= 0 && u != NULL) {
		*d = u->d;
		fmi_dataset_ref(*d);
	}
	if (fmi_sites_partition(p, nsites, site, *d ? (*d)->n : 0, &e) != FM_OK) {
		luaL_error(L, "fm.experiment: %s: %s", field, e.msg);
	}
	*form = DATA_SITE;
}

static void
exp_read_data(lua_State *L, lexp *x)
{
	int form;
	lua_getfield(L, 1, "train");
	exp_read_part(L, "train", &x->cfg.train, &x->cfg.part, &form);
	x->cfg.site_data = form == DATA_SITE;
	lua_pop(L, 1);
	if (lua_getfield(L, 1, "test") != LUA_TNIL) {
		if (luaL_testudata(L, -1, LFM_DATASET) == NULL) {
			luaL_error(L, "fm.experiment: field 'test' must be a "
			    "fedmesh.Dataset, got %s", luaL_typename(L, -1));
		}
		x->cfg.test = ((lfm_dataset *)lua_touserdata(L, -1))->d;
		fmi_dataset_ref(x->cfg.test);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, 1, "client_test") != LUA_TNIL ||
	    x->cfg.site_data) {
		int tform;
		exp_read_part(L, "client_test", &x->cfg.client_test,
		    &x->cfg.client_test_part, &tform);
		if (tform != form && !(tform == DATA_SITE && form == DATA_SITE)) {
			luaL_error(L, "fm.experiment: 'client_test' must have the "
			    "form of 'train' (a Partition, a list of sites, or "
			    "this site's Dataset)");
		}
		if (x->cfg.client_test_part->nclients != x->cfg.part->nclients) {
			luaL_error(L, "fm.experiment: 'client_test' has %d clients "
			    "but 'train' has %d", (int)x->cfg.client_test_part->
			    nclients, (int)x->cfg.part->nclients);
		}
		/* a site without held-out data, or a node that has none */
		if (x->cfg.client_test == NULL) {
			fmi_partition_unref(x->cfg.client_test_part);
			x->cfg.client_test_part = NULL;
		}
	}
	lua_pop(L, 1);
}

/* model = fm.model.mlp{...} (an architecture: training starts from the
 * seeded init) or a Model with parameters (result.model, fm.model.load:
 * training starts from them, a warm start). */
static void
exp_read_model(lua_State *L, lexp *x)
{
	if (lua_getfield(L, 1, "model") == LUA_TNIL ||
	    luaL_testudata(L, -1, LFM_MODEL) == NULL) {
		luaL_error(L, "fm.experiment: field 'model' must be a model, e.g."
		    " fm.model.mlp{ 784, 200, 200, 10 }; got %s",
		    luaL_typename(L, -1));
	}
	const lfm_model *m = lua_touserdata(L, -1);
	x->cfg.arch = m->arch;
	if (x->cfg.train != NULL) { /* a site deployment's server has none */
		lfm_model_check_data(L, &m->arch, x->cfg.train,
		    "fm.experiment", "train data");
	}
	if (x->cfg.client_test != NULL) {
		lfm_model_check_data(L, &m->arch, x->cfg.client_test,
		    "fm.experiment", "client_test data");
	}
	if (x->cfg.test != NULL) {
		lfm_model_check_data(L, &m->arch, x->cfg.test, "fm.experiment",
		    "test data");
	}
	if (m->params != NULL) {
		size_t bytes = m->arch.nparams * sizeof(float);
		if ((x->init_params = malloc(bytes)) == NULL) {
			luaL_error(L, "fm.experiment: out of memory");
		}
		memcpy(x->init_params, m->params, bytes);
		x->cfg.init_params = x->init_params;
	}
	lua_pop(L, 1);
}

/* checkpoint = path, resume = true: the file the server writes after
 * every round (simulated, and deployed unless deploy.checkpoint names
 * another), and whether to continue after its last round. */
static void
exp_read_checkpoint(lua_State *L, lexp *x)
{
	const char *fn = "fm.experiment";
	const char *ck = lfm_opt_str(L, 1, fn, "checkpoint", NULL);
	x->resume = lfm_opt_bool(L, 1, fn, "resume", 0);
	if ((ck != NULL || x->checkpoint != NULL) && x->deploy.nedges > 0) {
		luaL_error(L, "%s: checkpoint: a hierarchy whose edges run as "
		    "their own processes (deploy.edges) cannot be checkpointed "
		    "yet (the edges' models and plugin state live in the edge "
		    "processes); remove 'checkpoint', or drop deploy.edges to "
		    "run the tree in the server process, which checkpoints", fn);
	}
	if (ck == NULL) {
		if (x->resume) {
			luaL_error(L, "%s: resume = true needs checkpoint = path, "
			    "the file the run checkpoints to", fn);
		}
		return;
	}
	if (x->graph != NULL) {
		luaL_error(L, "%s: checkpoint: peer-to-peer experiments cannot "
		    "be checkpointed or resumed yet (the peers' models and "
		    "consensus states are not saved); remove 'checkpoint'", fn);
	}
	if (x->checkpoint != NULL && strcmp(x->checkpoint, ck) != 0) {
		luaL_error(L, "%s: checkpoint '%s' and deploy.checkpoint '%s' "
		    "differ; give the checkpoint once (the top-level one also "
		    "serves the deployed server)", fn, ck, x->checkpoint);
	}
	x->ckpt_path = strdup(ck);
	if (x->checkpoint == NULL) {
		x->checkpoint = strdup(ck);
	}
	if (x->ckpt_path == NULL || x->checkpoint == NULL) {
		luaL_error(L, "%s: out of memory", fn);
	}
}

static void
exp_read_scalars(lua_State *L, lexp *x)
{
	const char *fn = "fm.experiment";
	fmi_fed_cfg *c = &x->cfg;
	c->rounds = (uint32_t)lfm_opt_int(L, 1, fn, "rounds", 10, 1, 10000000);
	c->clients_per_round = (uint32_t)lfm_opt_int(L, 1, fn,
	    "clients_per_round", FMI_MIN(10, c->part->nclients), 1,
	    c->part->nclients);
	c->seed = (uint64_t)lfm_opt_int(L, 1, fn, "seed", 1, 0, LUA_MAXINTEGER);
	c->workers = (uint32_t)lfm_opt_int(L, 1, fn, "threads",
	    lfm_default_threads(L), 0, 1024);
	c->round_timeout_ms = (uint32_t)(1000 * lfm_opt_num(L, 1, fn,
	    "round_timeout", 3600, 0.001, 86400));
	c->min_updates = (uint32_t)lfm_opt_int(L, 1, fn, "min_updates", 0, 0,
	    c->clients_per_round);
	c->eval_every = (uint32_t)lfm_opt_int(L, 1, fn, "eval_every", 1, 1,
	    1000000);
	c->client_eval_fraction = lfm_opt_num(L, 1, fn, "client_eval_fraction",
	    1, 0, 1);
	x->quiet = lfm_opt_bool(L, 1, fn, "quiet", 0);
	lfm_read_metrics(L, x);
	lfm_read_faults(L, x);
}

/* fm.experiment{ ... } -> Experiment; validates everything up front so
 * mistakes are reported at the line that made them. */
int
lfm_experiment(lua_State *L)
{
	static const char *const fields[] = { "topology", "model", "train",
		"test", "rounds", "clients_per_round", "local_training",
		"aggregator", "seed", "on_round", "threads", "round_timeout",
		"min_updates", "eval_every", "quiet", "metrics", "deploy",
		"consensus", "eval_samples", "adversaries", "init", "defence",
		"root_data", "attack", "faults", "server_lr_schedule",
		"checkpoint", "resume", "client_test", "client_eval_fraction",
		"privacy", "secure_noise", "client_sampling", "accountant",
		"delta", "max_epsilon", NULL };
	luaL_checktype(L, 1, LUA_TTABLE);
	lfm_check_fields(L, 1, "fm.experiment", fields);
	lexp *x = lua_newuserdatauv(L, sizeof *x, 0);
	memset(x, 0, sizeof *x);
	x->on_round = LUA_NOREF;
	x->graph_ref = LUA_NOREF;
	luaL_setmetatable(L, LFM_EXPERIMENT);
	exp_read_data(L, x);
	exp_read_model(L, x);
	lua_getfield(L, 1, "local_training");
	exp_read_local(L, x);
	exp_read_scalars(L, x); /* before the topology: seeds adversaries */
	lua_getfield(L, 1, "topology");
	exp_read_topology(L, x);
	if (x->graph == NULL) {
		exp_read_star_only(L);
		/* in a hierarchy, the experiment's aggregator works at the
		 * levels that name none */
		int edge_ok = 1;
		for (uint32_t l = 0; l + 1 < x->cfg.hier.levels; l++) {
			edge_ok &= x->cfg.hier.level[l].aggregator != NULL;
		}
		lua_getfield(L, 1, "aggregator");
		exp_read_agg_spec(L, x, -1, "fm.experiment", "aggregator",
		    edge_ok, &x->agg);
		lua_pop(L, 1);
		x->cfg.aggregator = x->agg.c;
		x->cfg.agg_params = x->agg.params;
		exp_read_defence(L, x);
		exp_read_attack(L, x);
		lfm_read_server_lr(L, x);
	} else {
		lfm_refuse_p2p_rounds(L, x);
	}
	lfm_read_deploy(L, x);
	exp_read_checkpoint(L, x);
	lfm_read_privacy(L, x);
	if (lua_getfield(L, 1, "on_round") != LUA_TNIL) {
		luaL_checktype(L, -1, LUA_TFUNCTION);
		x->on_round = luaL_ref(L, LUA_REGISTRYINDEX);
	} else {
		lua_pop(L, 1);
	}
	fm_error e;
	fmi_p2p_cfg p;
	lfm_p2p_cfg(x, &p);
	fmi_fed_cfg c = x->cfg; /* with the deployment's checkpoint */
	c.checkpoint = x->checkpoint;
	if ((x->graph != NULL ? fmi_p2p_validate(&p, &e) :
	    fmi_fed_validate(&c, &e)) != FM_OK) {
		return lfm_raise(L, "fm.experiment", &e);
	}
	return 1;
}
