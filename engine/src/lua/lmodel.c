/* SPDX-License-Identifier: MIT */
/* lmodel.c: fm.model (architectures, fm.model.load) and the Model type:
 * parameters, evaluate, predict, save. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"
#include "model/model_io.h"

lfm_model *
lfm_check_model(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, LFM_MODEL);
}

/* A new, empty Model userdata at the top of the stack (its metatable is
 * set by the caller once the architecture is filled in). */
static lfm_model *
model_new(lua_State *L)
{
	lfm_model *m = lua_newuserdatauv(L, sizeof *m, 0);
	memset(m, 0, sizeof *m);
	return m;
}

static int
new_model(lua_State *L, const char *fn, const char *kind)
{
	uint32_t w[FMI_MAX_LAYERS + 1];
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 1);
	if (n < 2 || n > FMI_MAX_LAYERS + 1) {
		return luaL_error(L, "%s: expected a list of 2 to %d layer "
		    "widths, e.g. %s", fn, FMI_MAX_LAYERS + 1,
		    strcmp(kind, "mlp") == 0 ? "{ 784, 200, 200, 10 }"
		                             : "{ 60, 10 }");
	}
	if (strcmp(kind, "logreg") == 0 && n != 2) {
		return luaL_error(L, "%s: expected { inputs, classes }", fn);
	}
	for (lua_Integer i = 1; i <= n; i++) {
		int ok;
		lua_rawgeti(L, 1, i);
		lua_Integer v = lua_tointegerx(L, -1, &ok);
		if (ok && v > 1 << 24) {
			return luaL_error(L, "%s: width #%I = %I is too large "
			    "(at most %d)", fn, i, v, 1 << 24);
		}
		if (!ok || v < 1) {
			return luaL_error(L, "%s: width #%I must be a positive "
			    "integer, not %s", fn, i, luaL_tolstring(L, -1, NULL));
		}
		w[i - 1] = (uint32_t)v;
		lua_pop(L, 1);
	}
	lfm_model *m = model_new(L);
	fm_error e;
	if (fmi_arch_mlp(&m->arch, w, (uint32_t)n, &e) != FM_OK) {
		return lfm_raise(L, fn, &e);
	}
	fmi_strlcpy(m->arch.kind, kind, sizeof m->arch.kind);
	luaL_setmetatable(L, LFM_MODEL);
	return 1;
}

/* fm.model.mlp{ 784, 200, 200, 10 } */
static int
l_mlp(lua_State *L)
{
	return new_model(L, "fm.model.mlp", "mlp");
}

/* fm.model.logreg{ inputs, classes }: softmax regression */
static int
l_logreg(lua_State *L)
{
	return new_model(L, "fm.model.logreg", "logreg");
}

/* Reads a list field of t: n integers in [min, max] into out (when set). */
static void
cnn_read_list(lua_State *L, int t, const char *fn, const char *k,
    uint32_t *out, int n, lua_Integer max, const char *example)
{
	int ty = t ? lua_getfield(L, t, k) : LUA_TNIL;
	if (ty == LUA_TNIL) {
		lua_pop(L, t ? 1 : 0);
		return;
	}
	if (ty != LUA_TTABLE || luaL_len(L, -1) != n) {
		luaL_error(L, "%s: field '%s' must be a list of %d integers, e.g. "
		    "%s", fn, k, n, example);
	}
	for (int i = 1; i <= n; i++) {
		int ok;
		lua_rawgeti(L, -1, i);
		lua_Integer v = lua_tointegerx(L, -1, &ok);
		if (!ok || v < 1 || v > max) {
			luaL_error(L, "%s: %s[%d] must be an integer in [1, %I]",
			    fn, k, i, max);
		}
		out[i - 1] = (uint32_t)v;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* fm.model.cnn{ channels = { 32, 64 }, hidden = 512, classes = 10 }: the
 * CNN of McMahan et al. 2017 for one-channel 28x28 images (the defaults:
 * fm.model.cnn()). */
static int
l_cnn(lua_State *L)
{
	static const char *const fields[] = { "channels", "hidden", "classes",
		"input", NULL };
	const char *fn = "fm.model.cnn";
	int t = lua_isnoneornil(L, 1) ? 0 : 1;
	if (t) {
		luaL_checktype(L, 1, LUA_TTABLE);
		lfm_check_fields(L, 1, fn, fields);
		if (luaL_len(L, 1) != 0) {
			return luaL_error(L, "%s: takes an option table, e.g. "
			    "fm.model.cnn { channels = { 32, 64 }, hidden = 512, "
			    "classes = 10 }", fn);
		}
	}
	fmi_cnn_shape s = { 28, 5, { 32, 64 }, 512, 10 };
	uint32_t in[3] = { 1, 28, 28 };
	cnn_read_list(L, t, fn, "input", in, 3, 1 << 16, "{ 1, 28, 28 }");
	if (in[0] != 1 || in[1] != 28 || in[2] != 28) {
		return luaL_error(L, "%s: input %dx%dx%d is not supported; the "
		    "CNN takes one-channel 28x28 images (input = { 1, 28, 28 }, "
		    "as Fashion-MNIST)", fn, (int)in[0], (int)in[1], (int)in[2]);
	}
	cnn_read_list(L, t, fn, "channels", s.ch, 2, 1024, "{ 32, 64 }");
	s.hidden = (uint32_t)lfm_opt_int(L, t, fn, "hidden", 512, 1, 1 << 20);
	s.classes = (uint32_t)lfm_opt_int(L, t, fn, "classes", 10, 1, 1 << 16);
	lfm_model *m = model_new(L);
	fm_error e;
	if (fmi_arch_cnn(&m->arch, &s, &e) != FM_OK) {
		return lfm_raise(L, fn, &e);
	}
	luaL_setmetatable(L, LFM_MODEL);
	return 1;
}

static int
md_params(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lfm_check_model(L, 1)->arch.nparams);
	return 1;
}

/* m:layers() -> { {name, offset, rows, cols}, ... } */
static int
md_layers(lua_State *L)
{
	const fmi_arch *a = &lfm_check_model(L, 1)->arch;
	lua_createtable(L, (int)a->nslices, 0);
	for (uint32_t i = 0; i < a->nslices; i++) {
		lua_createtable(L, 0, 4);
		lfm_set_str(L, "name", a->slices[i].name);
		lfm_set_int(L, "offset", (lua_Integer)a->slices[i].offset);
		lfm_set_int(L, "rows", (lua_Integer)a->slices[i].rows);
		lfm_set_int(L, "cols", (lua_Integer)a->slices[i].cols);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

static int
md_tostring(lua_State *L)
{
	const fmi_arch *a = &lfm_check_model(L, 1)->arch;
	char d[160];
	fmi_arch_describe(a, d, sizeof d);
	lua_pushfstring(L, "fedmesh.Model(%s, %I parameters)", d,
	    (lua_Integer)a->nparams);
	return 1;
}

/* ---- parameters: evaluate, predict, save, load, init --------------------- */

static int
md_gc(lua_State *L)
{
	lfm_model *m = lfm_check_model(L, 1);
	free(m->params);
	m->params = NULL;
	return 0;
}

void
lfm_push_model(lua_State *L, const fmi_arch *a, float *params)
{
	lfm_model *m = model_new(L);
	m->arch = *a;
	m->params = params;
	luaL_setmetatable(L, LFM_MODEL);
}

void
lfm_model_check_data(lua_State *L, const fmi_arch *a, const fmi_dataset *d,
    const char *fn, const char *what)
{
	char desc[160];
	uint32_t in = a->widths[0], out = a->widths[a->nlayers];
	if (d->dim == in && d->nclasses <= out) {
		return;
	}
	fmi_arch_describe(a, desc, sizeof desc);
	if (d->dim != in) {
		luaL_error(L, "%s: model input size %d does not match the data's "
		    "%d features (model %s; %s '%s': %d features, %d classes)",
		    fn, (int)in, (int)d->dim, desc, what, d->name, (int)d->dim,
		    (int)d->nclasses);
	}
	luaL_error(L, "%s: the model has %d outputs but the data has %d "
	    "classes (model %s; %s '%s': %d features, %d classes)", fn,
	    (int)out, (int)d->nclasses, desc, what, d->name, (int)d->dim,
	    (int)d->nclasses);
}

/* The model at 1 with parameters; raises for an architecture only. */
static lfm_model *
model_trained(lua_State *L, const char *fn)
{
	lfm_model *m = lfm_check_model(L, 1);
	if (m->params == NULL) {
		char desc[160];
		fmi_arch_describe(&m->arch, desc, sizeof desc);
		luaL_error(L, "%s: model %s has no parameters: fm.model.%s{...} "
		    "is an architecture; use a trained model (result.model, "
		    "fm.model.load(path)) or m:init(seed) for the initial model "
		    "an experiment with that seed starts from", fn, desc,
		    m->arch.kind);
	}
	return m;
}

/* Evaluates the model at 1 on the dataset at 2 (pred: its classes, or
 * NULL). Raises on errors, freeing pred. */
static fmi_eval
model_eval(lua_State *L, const char *fn, int32_t **pred)
{
	lfm_model *m = model_trained(L, fn);
	const fmi_dataset *d = lfm_check_dataset(L, 2)->d;
	lfm_model_check_data(L, &m->arch, d, fn, "dataset");
	fmi_eval ev = { 0, 0, 0 };
	fmi_trainer *t = NULL;
	int rv = fmi_trainer_new(&t, &m->arch, 1024); /* as the server */
	if (rv == FM_OK && pred != NULL &&
	    (*pred = malloc((d->n ? d->n : 1) * sizeof **pred)) == NULL) {
		rv = FM_ENOMEM;
	}
	if (rv == FM_OK) {
		/* one BLAS thread, as in a simulation: the same bits as the
		 * server's evaluation, whatever the thread count */
		int blas = fmi_blas_get_threads();
		fmi_blas_set_threads(1);
		rv = fmi_evaluate_pred(t, m->params, d, NULL, 0, &ev,
		    pred ? *pred : NULL);
		fmi_blas_set_threads(blas);
	}
	fmi_trainer_free(t);
	if (rv != FM_OK) {
		if (pred != NULL) {
			free(*pred);
			*pred = NULL;
		}
		luaL_error(L, "%s: %s", fn, fm_strerror(rv));
	}
	return ev;
}

/* m:evaluate(dataset) -> { accuracy, loss, examples } */
static int
md_evaluate(lua_State *L)
{
	fmi_eval ev = model_eval(L, "evaluate", NULL);
	lua_createtable(L, 0, 3);
	lfm_set_num(L, "accuracy", ev.accuracy);
	lfm_set_num(L, "loss", ev.loss);
	lfm_set_int(L, "examples", (lua_Integer)ev.n);
	return 1;
}

/* m:predict(dataset) -> { class of example 1, ... } (classes from 0, as
 * the dataset's labels) */
static int
md_predict(lua_State *L)
{
	int32_t *pred = NULL;
	fmi_eval ev = model_eval(L, "predict", &pred);
	if (!lua_checkstack(L, 4)) {
		free(pred);
		return luaL_error(L, "predict: out of memory");
	}
	lua_createtable(L, (int)FMI_MIN(ev.n, (uint64_t)INT32_MAX), 0);
	for (uint64_t i = 0; i < ev.n; i++) {
		lua_pushinteger(L, pred[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	free(pred);
	return 1;
}

/* m:save(path) -> m */
static int
md_save(lua_State *L)
{
	lfm_model *m = model_trained(L, "save");
	const char *path = luaL_checkstring(L, 2);
	fm_error e;
	if (fmi_model_save(path, &m->arch, m->params, &e) != FM_OK) {
		return lfm_raise(L, "save", &e);
	}
	lua_settop(L, 1);
	return 1;
}

/* m:trained() -> true when m has parameters (not an architecture only) */
static int
md_trained(lua_State *L)
{
	lua_pushboolean(L, lfm_check_model(L, 1)->params != NULL);
	return 1;
}

/* m:init([seed]) -> a new Model with the parameters an experiment with
 * this seed starts from (PyTorch's default init, the server's stream). */
static int
md_init(lua_State *L)
{
	lfm_model *m = lfm_check_model(L, 1);
	lua_Integer seed = luaL_optinteger(L, 2, 1);
	luaL_argcheck(L, seed >= 0, 2, "the seed must be >= 0");
	float *p = malloc(m->arch.nparams * sizeof *p);
	if (p == NULL) {
		return luaL_error(L, "init: out of memory");
	}
	fm_rng r;
	fmi_rng_seed(&r, (uint64_t)seed, 0x696e6974); /* "init", as server.c */
	fmi_arch_init_params(&m->arch, p, &r);
	lfm_push_model(L, &m->arch, p);
	return 1;
}

/* fm.model.load(path) -> Model */
static int
l_load(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	fmi_arch a;
	float *p = NULL;
	fm_error e;
	if (fmi_model_load(path, &a, &p, &e) != FM_OK) {
		return lfm_raise(L, "fm.model.load", &e);
	}
	lfm_push_model(L, &a, p);
	return 1;
}
static const luaL_Reg model_funcs[] = {
	{ "mlp", l_mlp },
	{ "logreg", l_logreg },
	{ "cnn", l_cnn },
	{ "load", l_load },
	{ NULL, NULL },
};

void
lfm_open_model(lua_State *L)
{
	static const luaL_Reg methods[] = { { "params", md_params },
		{ "layers", md_layers }, { "evaluate", md_evaluate },
		{ "predict", md_predict }, { "save", md_save },
		{ "init", md_init }, { "trained", md_trained }, { NULL, NULL } };
	if (luaL_newmetatable(L, LFM_MODEL)) {
		lua_pushcfunction(L, md_tostring);
		lua_setfield(L, -2, "__tostring");
		lua_pushcfunction(L, md_gc);
		lua_setfield(L, -2, "__gc");
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_newlib(L, model_funcs);
}
