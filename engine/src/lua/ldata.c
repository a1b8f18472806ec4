/* SPDX-License-Identifier: MIT */
/* ldata.c: fm.data (datasets) and fm.partition (client shards) for Lua. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "lua/lfm.h"

/* ---- Dataset ----------------------------------------------------------- */

void
lfm_push_dataset(lua_State *L, fmi_dataset *d)
{
	lfm_dataset *u = lua_newuserdatauv(L, sizeof *u, 0);
	u->d = d;
	luaL_setmetatable(L, LFM_DATASET);
}

lfm_dataset *
lfm_check_dataset(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, LFM_DATASET);
}

static int
ds_gc(lua_State *L)
{
	lfm_dataset *u = lfm_check_dataset(L, 1);
	fmi_dataset_unref(u->d);
	u->d = NULL;
	return 0;
}

static int
ds_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lfm_check_dataset(L, 1)->d->n);
	return 1;
}

static int
ds_dim(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lfm_check_dataset(L, 1)->d->dim);
	return 1;
}

static int
ds_classes(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lfm_check_dataset(L, 1)->d->nclasses);
	return 1;
}

static int
ds_name(lua_State *L)
{
	lua_pushstring(L, lfm_check_dataset(L, 1)->d->name);
	return 1;
}

/* d:label_counts() -> { [label] = count } (labels from 0) */
static int
ds_label_counts(lua_State *L)
{
	const fmi_dataset *d = lfm_check_dataset(L, 1)->d;
	lua_createtable(L, 0, (int)d->nclasses);
	for (uint32_t c = 0; c < d->nclasses; c++) {
		lua_Integer n = 0;
		for (size_t i = 0; i < d->n; i++) {
			n += d->y[i] == (int32_t)c;
		}
		lua_pushinteger(L, n);
		lua_rawseti(L, -2, c);
	}
	return 1;
}

/* d:labels() -> { label of example 1, ... } (labels from 0) */
static int
ds_labels(lua_State *L)
{
	const fmi_dataset *d = lfm_check_dataset(L, 1)->d;
	lua_createtable(L, (int)FMI_MIN(d->n, (size_t)INT32_MAX), 0);
	for (size_t i = 0; i < d->n; i++) {
		lua_pushinteger(L, d->y[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* d:sample(n [, seed]) -> a new Dataset of n examples drawn without
 * replacement (seeded): e.g. the server's small clean root set for
 * FLTrust. */
static int
ds_sample(lua_State *L)
{
	const fmi_dataset *d = lfm_check_dataset(L, 1)->d;
	lua_Integer n = luaL_checkinteger(L, 2);
	lua_Integer seed = luaL_optinteger(L, 3, 1);
	if (n < 1 || (size_t)n > d->n) {
		return luaL_error(L, "sample: n must be 1..%I (the dataset's "
		    "size), not %I", (lua_Integer)d->n, n);
	}
	uint32_t *perm = malloc(d->n * sizeof *perm);
	if (perm == NULL) {
		return luaL_error(L, "sample: out of memory");
	}
	for (size_t i = 0; i < d->n; i++) {
		perm[i] = (uint32_t)i;
	}
	fm_rng r;
	fmi_rng_seed(&r, (uint64_t)seed, 0x73616d70); /* "samp" */
	fmi_rng_shuffle_u32(&r, perm, d->n);
	/* the same storage (bytes stay bytes); only these rows are read */
	fmi_dataset *o = NULL;
	fm_error e;
	int rv = fmi_dataset_subset(&o, d, perm, (size_t)n, &e);
	free(perm);
	if (rv != FM_OK) {
		return lfm_raise(L, "sample", &e);
	}
	snprintf(o->name, sizeof o->name, "%.40s sample", d->name);
	lfm_push_dataset(L, o);
	return 1;
}

static int
ds_tostring(lua_State *L)
{
	const fmi_dataset *d = lfm_check_dataset(L, 1)->d;
	lua_pushfstring(L, "fedmesh.Dataset(%s: %I samples, %I features, %I "
	    "classes)", d->name, (lua_Integer)d->n, (lua_Integer)d->dim,
	    (lua_Integer)d->nclasses);
	return 1;
}

static const luaL_Reg ds_methods[] = {
	{ "size", ds_len },
	{ "dim", ds_dim },
	{ "classes", ds_classes },
	{ "name", ds_name },
	{ "label_counts", ds_label_counts },
	{ "labels", ds_labels },
	{ "sample", ds_sample },
	{ NULL, NULL },
};

static const luaL_Reg ds_meta[] = {
	{ "__gc", ds_gc },
	{ "__len", ds_len },
	{ "__tostring", ds_tostring },
	{ NULL, NULL },
};

int
lfm_keep_rows(fmi_dataset **train, fmi_partition **part, uint32_t first,
    uint32_t step, const char *node, fm_error *err)
{
	const fmi_partition *p = *part;
	uint8_t *keep = calloc(p->nclients + 1, 1);
	if (keep == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	uint32_t nk = 0;
	for (uint32_t c = 0; c < p->nclients; c++) {
		keep[c] = c % step == first;
		nk += keep[c];
	}
	fmi_dataset *d = NULL;
	fmi_partition *q = NULL;
	int rv = fmi_dataset_keep_rows(&d, &q, *train, p, keep, err);
	free(keep);
	if (rv == FM_OK) {
		fm_log(FM_LOG_DEBUG, "FM-DATA", "%s holds the rows of its %u "
		    "clients: %zu of the %zu samples of %s", node, nk, d->n,
		    (*train)->n, d->name);
		*train = d;
		*part = q;
	}
	return rv;
}

/* ---- loaders ----------------------------------------------------------------- */

/* fm.data.fashion_mnist{ dir = ... } -> train, test */
static int
l_fashion_mnist(lua_State *L)
{
	static const char *const fields[] = { "dir", NULL };
	const char *fn = "fm.data.fashion_mnist";
	if (!lua_isnoneornil(L, 1)) {
		luaL_checktype(L, 1, LUA_TTABLE);
		lfm_check_fields(L, 1, fn, fields);
	}
	const char *dir = lfm_opt_str(L, 1, fn, "dir", NULL);
	fmi_dataset *tr, *te;
	fm_error e;
	if (fmi_fmnist_load(&tr, &te, dir, &e) != FM_OK) {
		return lfm_raise(L, fn, &e);
	}
	lfm_push_dataset(L, tr);
	lfm_push_dataset(L, te);
	return 2;
}

/* fm.data.idx{ images = path, labels = path } -> dataset */
static int
l_idx(lua_State *L)
{
	static const char *const fields[] = { "images", "labels", NULL };
	const char *fn = "fm.data.idx";
	luaL_checktype(L, 1, LUA_TTABLE);
	lfm_check_fields(L, 1, fn, fields);
	const char *img = lfm_opt_str(L, 1, fn, "images", NULL);
	const char *lab = lfm_opt_str(L, 1, fn, "labels", NULL);
	if (img == NULL || lab == NULL) {
		return luaL_error(L, "%s: fields 'images' and 'labels' (paths) "
		    "are required", fn);
	}
	fmi_dataset *d;
	fm_error e;
	if (fmi_idx_load(&d, img, lab, &e) != FM_OK) {
		return lfm_raise(L, fn, &e);
	}
	lfm_push_dataset(L, d);
	return 1;
}

/* fm.data.csv(path [, { sep = "," | ";" | "\t" }]) -> dataset */
static int
l_csv(lua_State *L)
{
	static const char *const fields[] = { "sep", NULL };
	fmi_dataset *d;
	fm_error e;
	char sep = 0;
	const char *path = luaL_checkstring(L, 1);
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		lfm_check_fields(L, 2, "fm.data.csv", fields);
		const char *s = lfm_opt_str(L, 2, "fm.data.csv", "sep", ",");
		if (strcmp(s, ",") != 0 && strcmp(s, ";") != 0 &&
		    strcmp(s, "\t") != 0) {
			return luaL_error(L, "fm.data.csv: sep must be \",\", "
			    "\";\" or \"\\t\", not \"%s\"", s);
		}
		sep = s[0];
	}
	if (fmi_csv_load_sep(&d, path, sep, &e) != FM_OK) {
		return lfm_raise(L, "fm.data.csv", &e);
	}
	lfm_push_dataset(L, d);
	return 1;
}

/* fm.data.synthetic{ alpha, beta, devices, seed, iid, dim, classes,
 * max_per_device } -> train, test (owner = device: fm.partition.natural) */
static int
l_synthetic(lua_State *L)
{
	static const char *const fields[] = { "alpha", "beta", "devices",
		"seed", "iid", "dim", "classes", "max_per_device", NULL };
	const char *fn = "fm.data.synthetic";
	if (lua_isnoneornil(L, 1)) {
		lua_newtable(L);
		lua_replace(L, 1);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	lfm_check_fields(L, 1, fn, fields);
	fmi_synthetic_cfg c;
	c.alpha = lfm_opt_num(L, 1, fn, "alpha", 1.0, 0.0, 100.0);
	c.beta = lfm_opt_num(L, 1, fn, "beta", 1.0, 0.0, 100.0);
	c.devices = (uint32_t)lfm_opt_int(L, 1, fn, "devices", 30, 1, 100000);
	c.seed = (uint64_t)lfm_opt_int(L, 1, fn, "seed", 1, 0, LUA_MAXINTEGER);
	c.iid = lfm_opt_bool(L, 1, fn, "iid", 0);
	c.dim = (uint32_t)lfm_opt_int(L, 1, fn, "dim", 60, 1, 100000);
	c.nclasses = (uint32_t)lfm_opt_int(L, 1, fn, "classes", 10, 2, 1000);
	c.max_per_device = (uint32_t)lfm_opt_int(L, 1, fn, "max_per_device", 0,
	    0, 100000000);
	fmi_dataset *tr, *te;
	fm_error e;
	if (fmi_synthetic(&tr, &te, &c, &e) != FM_OK) {
		return lfm_raise(L, fn, &e);
	}
	lfm_push_dataset(L, tr);
	lfm_push_dataset(L, te);
	return 2;
}

static const luaL_Reg data_funcs[] = {
	{ "fashion_mnist", l_fashion_mnist },
	{ "idx", l_idx },
	{ "csv", l_csv },
	{ "synthetic", l_synthetic },
	{ NULL, NULL },
};

static void
new_class(lua_State *L, const char *name, const luaL_Reg *meta,
    const luaL_Reg *methods)
{
	if (luaL_newmetatable(L, name)) {
		luaL_setfuncs(L, meta, 0);
		lua_newtable(L);
		luaL_setfuncs(L, methods, 0);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
}

void
lfm_open_data(lua_State *L)
{
	new_class(L, LFM_DATASET, ds_meta, ds_methods);
	luaL_newlib(L, data_funcs);
}

/* ---- Partition ----------------------------------------------------------------- */

lfm_partition *
lfm_check_partition(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, LFM_PARTITION);
}

static void
push_partition(lua_State *L, fmi_partition *p, fmi_dataset *d)
{
	lfm_partition *u = lua_newuserdatauv(L, sizeof *u, 0);
	u->p = p;
	u->d = d;
	fmi_dataset_ref(d);
	luaL_setmetatable(L, LFM_PARTITION);
}

static int
pt_gc(lua_State *L)
{
	lfm_partition *u = lfm_check_partition(L, 1);
	fmi_partition_unref(u->p);
	fmi_dataset_unref(u->d);
	u->p = NULL;
	u->d = NULL;
	return 0;
}

static int
pt_clients(lua_State *L)
{
	lua_pushinteger(L, lfm_check_partition(L, 1)->p->nclients);
	return 1;
}

/* p:sizes() -> { n1, n2, ... } */
static int
pt_sizes(lua_State *L)
{
	const fmi_partition *p = lfm_check_partition(L, 1)->p;
	lua_createtable(L, (int)p->nclients, 0);
	for (uint32_t c = 0; c < p->nclients; c++) {
		lua_pushinteger(L, (lua_Integer)fmi_partition_size(p, c));
		lua_rawseti(L, -2, c + 1);
	}
	return 1;
}

/* p:histogram(client) -> { [label] = count } for client 1..n */
static int
pt_histogram(lua_State *L)
{
	lfm_partition *u = lfm_check_partition(L, 1);
	lua_Integer c = luaL_checkinteger(L, 2);
	luaL_argcheck(L, c >= 1 && c <= u->p->nclients, 2,
	    "client out of range");
	uint32_t hist[1024] = { 0 };
	uint32_t nc = FMI_MIN(u->d->nclasses, 1024);
	fmi_partition_label_hist(u->p, u->d, (uint32_t)c - 1, hist);
	lua_createtable(L, 0, (int)nc);
	for (uint32_t k = 0; k < nc; k++) {
		lua_pushinteger(L, hist[k]);
		lua_rawseti(L, -2, k);
	}
	return 1;
}

/* p:summary() -> { clients, samples, min, max, mean, std,
 *                  labels_per_client (mean number of labels present) } */
static int
pt_summary(lua_State *L)
{
	lfm_partition *u = lfm_check_partition(L, 1);
	const fmi_partition *p = u->p;
	double sum = 0, sum2 = 0, labels = 0;
	size_t mn = (size_t)-1, mx = 0;
	uint32_t hist[1024];
	for (uint32_t c = 0; c < p->nclients; c++) {
		size_t n = fmi_partition_size(p, c);
		sum += (double)n;
		sum2 += (double)n * (double)n;
		mn = FMI_MIN(mn, n);
		mx = FMI_MAX(mx, n);
		if (u->d->nclasses <= 1024) {
			memset(hist, 0, sizeof hist);
			fmi_partition_label_hist(p, u->d, c, hist);
			for (uint32_t k = 0; k < u->d->nclasses; k++) {
				labels += hist[k] > 0;
			}
		}
	}
	double mean = sum / p->nclients;
	lua_createtable(L, 0, 7);
	lfm_set_int(L, "clients", p->nclients);
	lfm_set_int(L, "samples", (lua_Integer)sum);
	lfm_set_int(L, "min", (lua_Integer)mn);
	lfm_set_int(L, "max", (lua_Integer)mx);
	lfm_set_num(L, "mean", mean);
	lfm_set_num(L, "std", sqrt(FMI_MAX(0.0, sum2 / p->nclients - mean * mean)));
	lfm_set_num(L, "labels_per_client", labels / p->nclients);
	return 1;
}

static int
pt_dataset(lua_State *L)
{
	lfm_partition *u = lfm_check_partition(L, 1);
	fmi_dataset_ref(u->d);
	lfm_push_dataset(L, u->d);
	return 1;
}

/* p:sites() -> { Dataset of client 1, ... }: each client's samples as a
 * dataset of its own, in the partition's order; as train = p:sites(),
 * a simulation of sites that runs exactly as train = p. */
static int
pt_sites(lua_State *L)
{
	lfm_partition *u = lfm_check_partition(L, 1);
	const fmi_partition *p = u->p;
	fm_error e;
	lua_createtable(L, (int)FMI_MIN(p->nclients, (uint32_t)INT32_MAX), 0);
	for (uint32_t c = 0; c < p->nclients; c++) {
		fmi_dataset *o = NULL;
		if (fmi_dataset_subset(&o, u->d, p->idx + p->off[c],
		        fmi_partition_size(p, c), &e) != FM_OK) {
			return luaL_error(L, "sites: %s", e.msg);
		}
		snprintf(o->name, sizeof o->name, "%.40s client %u", u->d->name,
		    c + 1);
		lfm_push_dataset(L, o);
		lua_rawseti(L, -2, (lua_Integer)c + 1);
	}
	return 1;
}

static int
pt_tostring(lua_State *L)
{
	lfm_partition *u = lfm_check_partition(L, 1);
	lua_pushfstring(L, "fedmesh.Partition(%I clients of %s)",
	    (lua_Integer)u->p->nclients, u->d->name);
	return 1;
}

static const luaL_Reg pt_methods[] = {
	{ "clients", pt_clients },
	{ "sizes", pt_sizes },
	{ "histogram", pt_histogram },
	{ "summary", pt_summary },
	{ "dataset", pt_dataset },
	{ "sites", pt_sites },
	{ NULL, NULL },
};

static const luaL_Reg pt_meta[] = {
	{ "__gc", pt_gc },
	{ "__len", pt_clients },
	{ "__tostring", pt_tostring },
	{ NULL, NULL },
};

/* Reads (dataset, { clients, seed, ... }) common to the partitioners. */
static lfm_dataset *
pt_args(lua_State *L, const char *fn, const char *const *fields,
    uint32_t *nclients, uint64_t *seed)
{
	lfm_dataset *d = lfm_check_dataset(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	lfm_check_fields(L, 2, fn, fields);
	*nclients = (uint32_t)lfm_opt_int(L, 2, fn, "clients", 0, 1, 100000000);
	if (*nclients == 0) {
		luaL_error(L, "%s: field 'clients' (number of clients) is "
		    "required", fn);
	}
	*seed = (uint64_t)lfm_opt_int(L, 2, fn, "seed", 1, 0, LUA_MAXINTEGER);
	return d;
}

static int
pt_push_or_raise(lua_State *L, const char *fn, int rv, fmi_partition *p,
    fmi_dataset *d, const fm_error *e)
{
	if (rv != FM_OK) {
		return lfm_raise(L, fn, e);
	}
	push_partition(L, p, d);
	return 1;
}

/* fm.partition.iid(dataset, { clients = N, seed = s }) */
static int
l_iid(lua_State *L)
{
	static const char *const f[] = { "clients", "seed", NULL };
	uint32_t n;
	uint64_t seed;
	lfm_dataset *d = pt_args(L, "fm.partition.iid", f, &n, &seed);
	fmi_partition *p = NULL;
	fm_error e;
	int rv = fmi_partition_iid(&p, d->d, n, seed, &e);
	return pt_push_or_raise(L, "fm.partition.iid", rv, p, d->d, &e);
}

/* fm.partition.dirichlet(dataset, { clients, alpha, seed, min_size }) */
static int
l_dirichlet(lua_State *L)
{
	static const char *const f[] = { "clients", "seed", "alpha",
		"min_size", NULL };
	const char *fn = "fm.partition.dirichlet";
	uint32_t n;
	uint64_t seed;
	lfm_dataset *d = pt_args(L, fn, f, &n, &seed);
	double alpha = lfm_opt_num(L, 2, fn, "alpha", 0.5, 1e-6, 1e6);
	uint32_t min_size = (uint32_t)lfm_opt_int(L, 2, fn, "min_size", 10, 0,
	    1000000);
	fmi_partition *p = NULL;
	fm_error e;
	int rv = fmi_partition_dirichlet(&p, d->d, n, alpha, min_size, seed,
	    &e);
	return pt_push_or_raise(L, fn, rv, p, d->d, &e);
}

/* fm.partition.shards(dataset, { clients, shards = 2, seed }) */
static int
l_shards(lua_State *L)
{
	static const char *const f[] = { "clients", "seed", "shards", NULL };
	const char *fn = "fm.partition.shards";
	uint32_t n;
	uint64_t seed;
	lfm_dataset *d = pt_args(L, fn, f, &n, &seed);
	uint32_t k = (uint32_t)lfm_opt_int(L, 2, fn, "shards", 2, 1, 1000000);
	fmi_partition *p = NULL;
	fm_error e;
	int rv = fmi_partition_shards(&p, d->d, n, k, seed, &e);
	return pt_push_or_raise(L, fn, rv, p, d->d, &e);
}

/* fm.partition.natural(dataset): one client per generating device */
static int
l_natural(lua_State *L)
{
	lfm_dataset *d = lfm_check_dataset(L, 1);
	fmi_partition *p = NULL;
	fm_error e;
	int rv = fmi_partition_natural(&p, d->d, &e);
	return pt_push_or_raise(L, "fm.partition.natural", rv, p, d->d, &e);
}

static const luaL_Reg part_funcs[] = {
	{ "iid", l_iid },
	{ "dirichlet", l_dirichlet },
	{ "shards", l_shards },
	{ "natural", l_natural },
	{ NULL, NULL },
};

void
lfm_open_partition(lua_State *L)
{
	new_class(L, LFM_PARTITION, pt_meta, pt_methods);
	luaL_newlib(L, part_funcs);
}
