/* SPDX-License-Identifier: MIT */
/* ldeploy.c: the `deploy` section and exp:run() as simulation, node or launcher. */
#define _GNU_SOURCE /* mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "core/core.h"
#include "lua/lfm.h"
#include "node/peer.h"
#include "transports/security.h"

/* ---- the deploy table ---------------------------------------------------- */

static int
valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > FMI_NODE_NAME_MAX) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		        c == '.')) {
			return 0;
		}
	}
	return 1;
}

static void
copy_opt(lua_State *L, int t, const char *k, char *dst, size_t n,
    const char *def)
{
	const char *fn = "fm.experiment: deploy";
	const char *v = lfm_opt_str(L, t, fn, k, def);
	if (v != NULL && fmi_strlcpy(dst, v, n) != FM_OK) {
		luaL_error(L, "%s: field '%s' is too long", fn, k);
	}
}

static void
read_clients(lua_State *L, int t, lexp *x)
{
	const char *fn = "fm.experiment: deploy";
	fmi_deploy_cfg *d = &x->deploy;
	if (lua_getfield(L, t, "clients") != LUA_TTABLE || luaL_len(L, -1) < 1) {
		luaL_error(L, "%s: field 'clients' must list the client hosts' "
		    "names, e.g. { \"c1\", \"c2\" }", fn);
	}
	lua_Integer n = luaL_len(L, -1);
	x->node_names = calloc((size_t)n, sizeof *x->node_names);
	if (x->node_names == NULL) {
		luaL_error(L, "out of memory");
	}
	d->clients = x->node_names;
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		const char *s = lua_tostring(L, -1);
		if (s == NULL || !valid_name(s)) {
			luaL_error(L, "%s: client #%I must be a name of 1-%d "
			    "letters, digits, '-', '_' or '.'", fn, i,
			    FMI_NODE_NAME_MAX);
		}
		if (fmi_deploy_role(d, s) != 0) {
			luaL_error(L, "%s: node name '%s' is used twice", fn, s);
		}
		fmi_strlcpy(d->clients[i - 1], s, sizeof d->clients[0]);
		d->nclients = (uint32_t)i;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* Peer-to-peer: `peers` lists the address of every peer, in peer order;
 * `clients` (optional) their names, "peer1".. by default. */
static void
read_peers(lua_State *L, int t, lexp *x)
{
	const char *fn = "fm.experiment: deploy";
	fmi_deploy_cfg *d = &x->deploy;
	uint32_t n = fmi_graph_n(x->graph);
	if (lua_getfield(L, t, "peers") != LUA_TTABLE ||
	    luaL_len(L, -1) != (lua_Integer)n) {
		luaL_error(L, "%s: field 'peers' must list the %d peers' "
		    "addresses (host:port for tcp), in peer order", fn, (int)n);
	}
	x->peer_addrs = calloc(n, sizeof *x->peer_addrs);
	if (x->peer_addrs == NULL) {
		luaL_error(L, "out of memory");
	}
	for (uint32_t i = 0; i < n; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i + 1);
		const char *a = lua_tostring(L, -1);
		if (a == NULL || a[0] == '\0' ||
		    fmi_strlcpy(x->peer_addrs[i], a, sizeof x->peer_addrs[0])
		        != FM_OK) {
			luaL_error(L, "%s: peers[%d] must be an address such as "
			    "\"10.0.0.2:7101\"", fn, (int)i + 1);
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	d->peer_addrs = x->peer_addrs;
	d->npeers = n;
	if (lua_getfield(L, t, "clients") != LUA_TNIL) {
		lua_pop(L, 1);
		read_clients(L, t, x);
		if (d->nclients != n) {
			luaL_error(L, "%s: 'clients' names %d peers but the "
			    "topology has %d", fn, (int)d->nclients, (int)n);
		}
		return;
	}
	lua_pop(L, 1);
	x->node_names = calloc(n, sizeof *x->node_names);
	if (x->node_names == NULL) {
		luaL_error(L, "out of memory");
	}
	d->clients = x->node_names;
	for (uint32_t i = 0; i < n; i++) {
		snprintf(d->clients[i], sizeof d->clients[0], "peer%u", i + 1);
	}
	d->nclients = n;
}

/* One address field of an edge's table (or the entry itself). */
static void
edge_addr(lua_State *L, int t, const char *k, int i, char *dst, size_t n,
    int required)
{
	const char *fn = "fm.experiment: deploy";
	lua_getfield(L, t, k);
	const char *a = lua_tostring(L, -1);
	if ((a == NULL && required) || (a != NULL && (a[0] == '\0' ||
	    fmi_strlcpy(dst, a, n) != FM_OK))) {
		luaL_error(L, "%s: edges[%d].%s must be an address such as "
		    "\"10.0.1.1:5560\" (a socket path for ipc)", fn, i, k);
	}
	lua_pop(L, 1);
}

/* deploy.edges: the i-th entry is the hierarchy's i-th edge aggregator,
 * "host:port" (named "edge<i>") or { name = , address = [, bind = ] }. */
static void
read_edges(lua_State *L, int t, lexp *x)
{
	static const char *const ef[] = { "name", "address", "bind", NULL };
	const char *fn = "fm.experiment: deploy";
	fmi_deploy_cfg *d = &x->deploy;
	fm_error e;
	if (lua_getfield(L, t, "edges") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (x->cfg.hier.levels < 2) {
		luaL_error(L, "%s: 'edges' places the edge aggregators of a "
		    "hierarchical topology (fm.topology.hierarchical with two or "
		    "more levels); this experiment has none", fn);
	}
	uint64_t want = 1;
	for (uint32_t l = 0; l + 1 < x->cfg.hier.levels; l++) {
		want *= x->cfg.hier.level[l].fanout;
	}
	if (!lua_istable(L, -1) || (uint64_t)luaL_len(L, -1) != want) {
		luaL_error(L, "%s: 'edges' must list the topology's %d edge "
		    "aggregators in edge order, each \"host:port\" or { name = "
		    "\"e1\", address = \"host:port\" }; it lists %d", fn,
		    (int)want, lua_istable(L, -1) ? (int)luaL_len(L, -1) : 0);
	}
	uint32_t n = (uint32_t)want;
	x->edge_names = calloc(n, sizeof *x->edge_names);
	x->edge_addrs = calloc(n, sizeof *x->edge_addrs);
	x->edge_binds = calloc(n, sizeof *x->edge_binds);
	if (!x->edge_names || !x->edge_addrs || !x->edge_binds) {
		luaL_error(L, "out of memory");
	}
	d->edge_names = x->edge_names;
	d->edge_addrs = x->edge_addrs;
	d->edge_binds = x->edge_binds;
	for (uint32_t i = 0; i < n; i++) {
		char name[FMI_NODE_NAME_MAX + 1];
		int k = (int)i + 1;
		snprintf(name, sizeof name, "edge%u", i + 1);
		lua_rawgeti(L, -1, k);
		int et = lua_gettop(L);
		if (lua_type(L, et) == LUA_TTABLE) {
			lfm_check_fields(L, et, "fm.experiment: deploy.edges[i]", ef);
			lua_getfield(L, et, "name");
			const char *s = lua_tostring(L, -1);
			if (s != NULL && (!valid_name(s) ||
			    fmi_strlcpy(name, s, sizeof name) != FM_OK)) {
				luaL_error(L, "%s: edges[%d].name must be a name of "
				    "1-%d letters, digits, '-', '_' or '.'", fn, k,
				    FMI_NODE_NAME_MAX);
			}
			lua_pop(L, 1);
			edge_addr(L, et, "address", k, d->edge_addrs[i],
			    sizeof d->edge_addrs[0], 1);
			edge_addr(L, et, "bind", k, d->edge_binds[i],
			    sizeof d->edge_binds[0], 0);
		} else if (lua_type(L, et) == LUA_TSTRING) {
			const char *a = lua_tostring(L, et);
			if (a[0] == '\0' || fmi_strlcpy(d->edge_addrs[i], a,
			    sizeof d->edge_addrs[0]) != FM_OK) {
				luaL_error(L, "%s: edges[%d] must be an address such "
				    "as \"10.0.1.1:5560\" (a socket path for ipc)", fn,
				    k);
			}
		} else {
			luaL_error(L, "%s: edges[%d] must be \"host:port\" or { "
			    "name = \"e1\", address = \"host:port\" }", fn, k);
		}
		if (fmi_deploy_role(d, name) != 0) {
			luaL_error(L, "%s: node name '%s' is used twice", fn, name);
		}
		fmi_strlcpy(d->edge_names[i], name, sizeof d->edge_names[0]);
		d->nedges = i + 1;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	/* the hosts' placement, once the tree's shape is right (a wrong one
	 * is fm.experiment's to report) */
	if (want * x->cfg.hier.level[x->cfg.hier.levels - 1].fanout ==
	    x->cfg.part->nclients &&
	    fmi_deploy_check_edges(&x->cfg, d, &e) != FM_OK) {
		luaL_error(L, "fm.experiment: %s", e.msg);
	}
}

void
lfm_read_deploy(lua_State *L, lexp *x)
{
	static const char *const f[] = { "transport", "server", "bind",
		"server_name", "clients", "keys", "join_timeout",
		"idle_timeout", "heartbeat", "checkpoint", "peers",
		"client_state", "edges", "edge_timeout", NULL };
	const char *fn = "fm.experiment: deploy";
	fmi_deploy_cfg *d = &x->deploy;
	if (lua_getfield(L, 1, "deploy") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int t = lua_gettop(L);
	luaL_checktype(L, t, LUA_TTABLE);
	lfm_check_fields(L, t, fn, f);
	copy_opt(L, t, "transport", d->transport, sizeof d->transport, "tcp");
	copy_opt(L, t, "server", d->server, sizeof d->server, "");
	copy_opt(L, t, "bind", d->bind, sizeof d->bind, "");
	copy_opt(L, t, "server_name", d->server_name, sizeof d->server_name,
	    x->graph != NULL ? "monitor" : "server");
	copy_opt(L, t, "keys", d->keys, sizeof d->keys, "");
	copy_opt(L, t, "client_state", d->client_state,
	    sizeof d->client_state, "");
	if (d->server[0] == '\0') {
		luaL_error(L, "%s: field 'server' (host:port, or a socket path "
		    "for ipc) is required", fn);
	}
	if (strcmp(d->transport, "tcp") == 0 && d->keys[0] == '\0') {
		luaL_error(L, "%s: field 'keys' (a folder of CURVE keys) is "
		    "required for tcp: every TCP link is encrypted and "
		    "authenticated (fedmesh launch creates missing keys there; "
		    "see fedmesh keygen)", fn);
	}
	if (!valid_name(d->server_name)) {
		luaL_error(L, "%s: bad server_name '%s'", fn, d->server_name);
	}
	d->nclients = 0;
	if (x->graph != NULL && d->client_state[0] != '\0') {
		luaL_error(L, "%s: 'client_state' is for the client hosts of a "
		    "star deployment; peers keep no per-client state", fn);
	}
	if (x->graph != NULL) {
		read_peers(L, t, x);
	} else {
		if (lua_getfield(L, t, "peers") != LUA_TNIL) {
			luaL_error(L, "%s: 'peers' is for peer-to-peer topologies;"
			    " a star deployment lists its client hosts in "
			    "'clients'", fn);
		}
		lua_pop(L, 1);
		read_clients(L, t, x);
		read_edges(L, t, x);
	}
	if (x->graph != NULL && lua_getfield(L, t, "edges") != LUA_TNIL) {
		luaL_error(L, "%s: 'edges' is for hierarchical topologies; a "
		    "peer-to-peer deployment has no aggregators", fn);
	}
	if (x->graph != NULL) {
		lua_pop(L, 1);
	}
	d->edge_timeout = lfm_opt_num(L, t, fn, "edge_timeout", 10, 0.1, 86400);
	d->join_timeout = lfm_opt_num(L, t, fn, "join_timeout", 60, 0.1, 86400);
	d->idle_timeout = lfm_opt_num(L, t, fn, "idle_timeout", 600, 1, 1e7);
	d->heartbeat_ms = (uint32_t)(1000 * lfm_opt_num(L, t, fn, "heartbeat",
	    1.0, 0.01, 3600));
	const char *ck = lfm_opt_str(L, t, fn, "checkpoint", NULL);
	x->checkpoint = ck ? strdup(ck) : NULL;
	x->has_deploy = 1;
	lua_pop(L, 1);
}

void
lfm_release_deploy(lexp *x)
{
	free(x->node_names);
	free(x->checkpoint);
	free(x->peer_addrs);
	free(x->edge_names);
	free(x->edge_addrs);
	free(x->edge_binds);
	x->edge_names = NULL;
	x->edge_addrs = x->edge_binds = NULL;
	x->deploy.edge_names = NULL;
	x->deploy.edge_addrs = x->deploy.edge_binds = NULL;
	x->deploy.nedges = 0;
	x->peer_addrs = NULL;
	x->deploy.peer_addrs = NULL;
	x->node_names = NULL;
	x->checkpoint = NULL;
	x->deploy.clients = NULL;
	x->has_deploy = 0;
}

static const char *
reg_str(lua_State *L, const char *k)
{
	lua_getfield(L, LUA_REGISTRYINDEX, k);
	const char *s = lua_tostring(L, -1); /* anchored in the registry */
	lua_pop(L, 1);
	return s;
}

/* ---- fm.node() ------------------------------------------------------------ */

static const char *const node_roles[] = { "server", "client", "edge", "peer",
	"monitor", NULL };

int
lfm_node_role_valid(const char *role)
{
	for (int i = 0; node_roles[i] != NULL; i++) {
		if (strcmp(role, node_roles[i]) == 0) {
			return 1;
		}
	}
	return 0;
}

/* "peer3" -> 1 for prefix "peer": the default names of the roles. */
static int
numbered(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(name, prefix, n) != 0 || name[n] == '\0') {
		return 0;
	}
	for (const char *c = name + n; *c != '\0'; c++) {
		if (*c < '0' || *c > '9') {
			return 0;
		}
	}
	return 1;
}

/* The role this process was started for, before any deploy section is
 * read: --role, else the cluster rank (0: server), else the default
 * names ("server", "monitor", "edgeN", "peerN"; any other name is a
 * client host). NULL when this process is no node. */
static const char *
told_role(lua_State *L, const char **name)
{
	*name = reg_str(L, "fedmesh.node");
	const char *role = reg_str(L, "fedmesh.role");
	if (role != NULL) {
		return role;
	}
	if (*name == NULL) {
		lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.rank");
		int ok;
		lua_Integer rank = lua_tointegerx(L, -1, &ok);
		lua_pop(L, 1);
		return !ok ? NULL : rank == 0 ? "server" : "client";
	}
	return strcmp(*name, "server") == 0 ? "server"
	    : strcmp(*name, "monitor") == 0 ? "monitor"
	    : numbered(*name, "edge") ? "edge"
	    : numbered(*name, "peer") ? "peer" : "client";
}

/* fm.node() -> { name = "c2", role = "client" }: which node the script
 * runs as, so that a site loads its own data. { role = "simulation" }
 * under fedmesh run, { role = "launcher" } in the process of fedmesh
 * launch that starts the nodes. */
int
lfm_node(lua_State *L)
{
	const char *mode = reg_str(L, "fedmesh.mode");
	const char *name = NULL, *role = NULL;
	lua_newtable(L);
	if (mode == NULL || strcmp(mode, "run") == 0) {
		role = "simulation";
	} else if (strcmp(mode, "launch") == 0) {
		role = "launcher";
	} else {
		role = told_role(L, &name);
		if (role == NULL) {
			return luaL_error(L, "fm.node: this process has no node "
			    "name: start it with --node NAME (or under srun/"
			    "mpirun, which set a rank)");
		}
		if (name != NULL) {
			lfm_set_str(L, "name", name);
		}
		lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.rank");
		if (name == NULL && lua_isinteger(L, -1)) {
			lua_setfield(L, -2, "rank");
		} else {
			lua_pop(L, 1);
		}
		lua_pushstring(L, role);
		lua_setfield(L, LUA_REGISTRYINDEX, "fedmesh.told");
	}
	lfm_set_str(L, "role", role);
	return 1;
}

/* A node whose script asked fm.node() must be the role it was told. */
static void
check_told(lua_State *L, const char *name, const char *role)
{
	const char *told = reg_str(L, "fedmesh.told");
	int rank = reg_str(L, "fedmesh.node") == NULL &&
	    reg_str(L, "fedmesh.role") == NULL;
	if (told == NULL || strcmp(told, role) == 0 ||
	    (rank && strcmp(told, "server") == 0 && strcmp(role, "monitor") == 0) ||
	    (rank && strcmp(told, "client") == 0 && strcmp(role, "peer") == 0)) {
		return;
	}
	luaL_error(L, "run: fm.node() told the script that %s is a %s, but the "
	    "deploy section makes it a %s node: start it with --role %s (or "
	    "give it a name that says so)", name, told, role, role);
}

/* ---- node mode ------------------------------------------------------------- */

/* The node this process is: --node, else the cluster launcher's rank
 * (0 is the server, k the k-th client). */
static const char *
node_name(lua_State *L, lexp *x)
{
	const char *name = reg_str(L, "fedmesh.node");
	if (name != NULL) {
		return name;
	}
	lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.rank");
	int ok;
	lua_Integer rank = lua_tointegerx(L, -1, &ok);
	lua_pop(L, 1);
	if (!ok) {
		luaL_error(L, "run: give --node NAME (or start under srun/mpirun,"
		    " which set a rank)");
	}
	const fmi_deploy_cfg *d = &x->deploy;
	if (rank < 0 || rank > (lua_Integer)d->nclients + d->nedges) {
		luaL_error(L, "run: rank %I is outside this deployment (0 is the "
		    "server, 1..%d the clients%s)", rank, (int)d->nclients,
		    d->nedges ? ", then the edges" : "");
	}
	/* with deploy.edges, the edges come after the client hosts */
	return rank == 0 ? d->server_name : rank <= d->nclients ?
	    d->clients[rank - 1] : d->edge_names[rank - 1 - d->nclients];
}

static int
run_server(lexp *x, fmi_fed_result *res, fm_error *err)
{
	return fmi_deploy_run_server(&x->cfg, &x->deploy, res, err);
}

static int
run_monitor(lexp *x, fmi_fed_result *res, fm_error *err)
{
	fmi_p2p_cfg p;
	lfm_p2p_cfg(x, &p);
	return fmi_p2p_run_monitor(&p, &x->deploy, res, err);
}

/* A peer-to-peer deployment: the monitor or peer `name`. */
static int
run_p2p_node(lua_State *L, lexp *x, const char *name)
{
	fm_error e = { 0, "" };
	fmi_p2p_cfg p;
	if (strcmp(name, x->deploy.server_name) == 0) {
		check_told(L, name, "monitor");
		return lfm_exp_execute(L, x, run_monitor, "run");
	}
	for (uint32_t i = 0; i < x->deploy.nclients; i++) {
		if (strcmp(name, x->deploy.clients[i]) != 0) {
			continue;
		}
		check_told(L, name, "peer");
		lfm_p2p_cfg(x, &p);
		p.state_dir = x->checkpoint;
		lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.resume");
		p.resume = x->resume || lua_toboolean(L, -1);
		lua_pop(L, 1);
		/* only its own shard's rows (a site's own data is all its own) */
		int trim = !x->cfg.site_data && p.train != NULL;
		int rv = trim ? lfm_keep_rows(&p.train, &p.part, i,
		    p.part->nclients, name, &e) : FM_OK;
		if (rv == FM_OK) {
			rv = fmi_p2p_run_peer(&p, &x->deploy, i, &e);
			if (trim) {
				fmi_dataset_unref(p.train);
				fmi_partition_unref(p.part);
			}
		}
		if (rv != FM_OK) {
			return luaL_error(L, "run: %s", e.msg);
		}
		lua_newtable(L);
		lfm_push_result(L, -1, 0, x->cfg.arch.nparams);
		lfm_set_str(L, "node", name);
		lfm_set_str(L, "role", "peer");
		return 1;
	}
	return luaL_error(L, "run: no node named '%s' in the deployment "
	    "(monitor: %s, peers: %s, ...)", name, x->deploy.server_name,
	    x->deploy.clients[0]);
}

/* A client host: only its clients' rows (client k, 0-based, lives on
 * host k % nclients), then the host's loop. */
static int
run_client(lexp *x, const char *name, fm_error *e)
{
	fmi_fed_cfg c = x->cfg;
	uint32_t h = 0;
	while (h < x->deploy.nclients && strcmp(name, x->deploy.clients[h])) {
		h++;
	}
	if (x->cfg.site_data) { /* the host's own data: every row is its own */
		return fmi_deploy_run_client(&c, &x->deploy, name, e);
	}
	int rv = lfm_keep_rows(&c.train, &c.part, h, x->deploy.nclients, name,
	    e);
	if (rv == FM_OK) {
		rv = fmi_deploy_run_client(&c, &x->deploy, name, e);
		fmi_dataset_unref(c.train);
		fmi_partition_unref(c.part);
	}
	return rv;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Faults in a node's working set in one go, before round 1. A node's
 * buffers (the model, gradient, global model, update payload, ZeroMQ's
 * frames and their CURVE plaintext: about 10 model sizes) are written
 * for the first time in its first round, one page fault per 4 KiB page,
 * 5-60 us each on virtual machines; MADV_POPULATE_WRITE maps the same
 * pages without a trap per page. The block goes back to malloc's heap,
 * which keeps it (M_TRIM_THRESHOLD), and one arena serves every thread
 * (ZeroMQ's I/O thread allocates the frames), so the first round's
 * buffers are carved from pages already there. Measured with 100
 * client hosts on 2 cores: 3,300 page faults a round fewer over the
 * first 30 rounds, 0.097 -> 0.078 s a round. An older kernel without
 * MADV_POPULATE_WRITE skips it: the pages fault in as before, and so do
 * a large model's, whose buffers malloc maps and unmaps one by one. */
#define NODE_MMAP_MIN (64 << 20) /* malloc maps blocks this large itself */

static void
node_heap_warm(size_t bytes)
{
	mallopt(M_ARENA_MAX, 1);
	if (bytes >= NODE_MMAP_MIN) { /* its buffers are mapped one by one */
		return;
	}
	long pg = sysconf(_SC_PAGESIZE);
	char *p = malloc(bytes);
	if (p == NULL || pg <= 0) {
		free(p);
		return;
	}
	uintptr_t a = ((uintptr_t)p + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
	uintptr_t b = ((uintptr_t)p + bytes) & ~((uintptr_t)pg - 1);
	if (b > a && madvise((void *)a, b - a, MADV_POPULATE_WRITE) != 0) {
		fm_log(FM_LOG_DEBUG, "FM-DEPLOY", "the working set is not "
		    "faulted in ahead (%s): first rounds fault it in",
		    strerror(errno));
	}
	free(p);
}

static int
run_node(lua_State *L, lexp *x)
{
	const char *name = node_name(L, x);
	/* A node allocates and frees model-sized buffers every round
	 * (payloads, ZeroMQ's frames): glibc would return them to the
	 * kernel (mmap above 128 KB, trimming) and fault them in again, at
	 * 10-60 us a page on virtual machines like this project's. Keep
	 * them: 60% fewer page faults per round, a few MB more resident;
	 * and fault the working set in before round 1. */
	mallopt(M_MMAP_THRESHOLD, NODE_MMAP_MIN);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	node_heap_warm(10 * x->cfg.arch.nparams * sizeof(float));
	fm_error e = { 0, "" };
	if (x->graph != NULL) {
		return run_p2p_node(L, x, name);
	}
	lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.resume");
	x->cfg.resume = x->resume || lua_toboolean(L, -1);
	lua_pop(L, 1);
	x->cfg.checkpoint = x->checkpoint;
	switch (fmi_deploy_role(&x->deploy, name)) {
	case 1:
		check_told(L, name, "server");
		return lfm_exp_execute(L, x, run_server, "run");
	case 2:
		check_told(L, name, "client");
		if (run_client(x, name, &e) != FM_OK) {
			return luaL_error(L, "run: %s", e.msg);
		}
		lua_newtable(L);
		lfm_push_result(L, -1, 0, x->cfg.arch.nparams);
		lfm_set_str(L, "node", name);
		lfm_set_str(L, "role", "client");
		return 1;
	case 3:
		if (fmi_deploy_run_edge(&x->cfg, &x->deploy, name, &e) != FM_OK) {
			return luaL_error(L, "run: %s", e.msg);
		}
		lua_newtable(L);
		lfm_push_result(L, -1, 0, x->cfg.arch.nparams);
		lfm_set_str(L, "node", name);
		lfm_set_str(L, "role", "edge");
		return 1;
	default:
		return luaL_error(L, "run: no node named '%s' in the deployment "
		    "(server: %s, clients: %s, ...)", name,
		    x->deploy.server_name, x->deploy.clients[0]);
	}
}

/* ---- launch mode ------------------------------------------------------------ */

typedef struct launch_ctx {
	lua_State *L;
	lexp *x;
	const char *metrics;
	char *argv[256];
	int nargv;
	char threads[16];
} launch_ctx;

/* fedmesh node --node NAME [--metrics F] [--resume] [--threads N] SCRIPT
 * -- ARGS... */
static char **
launch_argv(void *ud, uint32_t i, const char *name)
{
	launch_ctx *c = ud;
	lua_State *L = c->L;
	int n = 0;
	c->argv[n++] = (char *)reg_str(L, "fedmesh.exe");
	c->argv[n++] = "node";
	c->argv[n++] = "--node";
	c->argv[n++] = (char *)name;
	c->argv[n++] = "--role";
	c->argv[n++] = (char *)(i == 0 ? (c->x->graph ? "monitor" : "server")
	                               : (c->x->graph ? "peer" : "client"));
	if (i == 0) {
		c->argv[n++] = "--metrics";
		c->argv[n++] = (char *)c->metrics;
		lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.resume");
		if (lua_toboolean(L, -1)) {
			c->argv[n++] = "--resume";
		}
		lua_pop(L, 1);
	}
	if (lfm_default_threads(L) > 0) {
		snprintf(c->threads, sizeof c->threads, "%d",
		    lfm_default_threads(L));
		c->argv[n++] = "--threads";
		c->argv[n++] = c->threads;
	}
	c->argv[n++] = (char *)reg_str(L, "fedmesh.script");
	c->argv[n++] = "--"; /* the script's own arguments, as given */
	lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.argv");
	lua_Integer na = lua_istable(L, -1) ? luaL_len(L, -1) : 0;
	for (lua_Integer k = 1; k <= na && n < 254; k++) {
		lua_rawgeti(L, -1, k);
		c->argv[n++] = (char *)lua_tostring(L, -1); /* anchored */
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	c->argv[n] = NULL;
	return c->argv;
}

/* Creates the key pairs the deployment lacks (one host: launch). */
static void
ensure_keys(lua_State *L, const fmi_deploy_cfg *d, const char *const *names,
    uint32_t n)
{
	char path[700];
	fm_error e;
	for (uint32_t i = 0; d->keys[0] != '\0' && i < n; i++) {
		char pub[700];
		snprintf(path, sizeof path, "%s/%s.key", d->keys, names[i]);
		snprintf(pub, sizeof pub, "%s/%s.pub", d->keys, names[i]);
		int has_key = access(path, F_OK) == 0;
		int has_pub = access(pub, F_OK) == 0;
		if (has_key && has_pub) {
			continue;
		}
		if (has_key != has_pub) { /* half a pair: never guess */
			luaL_error(L, "run: %s is missing but %s exists: node "
			    "%s has half a key pair. Restore %s, or make a new "
			    "pair with `fedmesh keygen --dir %s --force %s` and "
			    "give the new %s to every node that lists %s",
			    has_key ? pub : path, has_key ? path : pub,
			    names[i], has_key ? pub : path, d->keys, names[i],
			    pub, names[i]);
		}
		fmi_keypair kp;
		int rv = fmi_keygen(&kp, &e);
		if (rv == FM_OK) {
			rv = fmi_key_write(d->keys, names[i], &kp, 0, &e);
		}
		sodium_memzero(&kp, sizeof kp);
		if (rv != FM_OK) {
			luaL_error(L, "run: %s", e.msg);
		}
		fm_log(FM_LOG_INFO, "FM-KEYS", "created the CURVE key pair of "
		    "%s in %s/", names[i], d->keys);
	}
}

static int
run_launch(lua_State *L, lexp *x)
{
	const fmi_deploy_cfg *d = &x->deploy;
	const char *names[257];
	char tmp[] = "/tmp/fedmesh-launch-XXXXXX";
	char fdpath[64];
	int mfd = -1;
	launch_ctx c = { L, x, x->metrics, { NULL }, 0, "" };
	uint32_t n = d->nclients + d->nedges + 1;
	int status = -1;
	fm_error e = { 0, "" };

	if (reg_str(L, "fedmesh.exe") == NULL) {
		return luaL_error(L, "run: launch needs the fedmesh command");
	}
	if (n > 256) {
		return luaL_error(L, "run: fedmesh launch starts at most 256 "
		    "nodes on this host, this deployment has %d; start them with "
		    "fedmesh node", (int)n);
	}
	names[0] = d->server_name;
	for (uint32_t i = 0; i < d->nedges; i++) { /* edges, then hosts */
		names[1 + i] = d->edge_names[i];
	}
	for (uint32_t i = 0; i < d->nclients; i++) {
		names[1 + d->nedges + i] = d->clients[i];
	}
	ensure_keys(L, d, names, n);
	lua_getfield(L, LUA_REGISTRYINDEX, "fedmesh.resume");
	int resume = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (resume && x->checkpoint == NULL) {
		return luaL_error(L, "run: --resume needs a checkpoint to resume "
		    "from: set deploy.checkpoint (e.g. checkpoint = "
		    "\"server.ckpt\") and run without --resume first");
	}
	if (c.metrics == NULL) {
		/* The server's metrics come back through a file that has no
		 * name: it is unlinked at once, so nothing is left in /tmp
		 * however this process ends. The server opens /dev/fd/N. */
		mfd = mkostemp(tmp, O_CLOEXEC);
		if (mfd < 0) {
			return luaL_error(L, "run: cannot create a temporary file "
			    "in /tmp: %s", strerror(errno));
		}
		unlink(tmp);
		snprintf(fdpath, sizeof fdpath, "/dev/fd/%d", mfd);
		c.metrics = fdpath;
	}
	/* Nodes run BLAS on one thread (deploy.c): told before OpenBLAS
	 * loads, they start no BLAS threads that spin at start-up. */
	setenv("OPENBLAS_NUM_THREADS", "1", 0);
	double t0 = fmi_now();
	int rv = fmi_launch(names, n, launch_argv, &c, mfd, 10.0, &status, &e);
	int ok = rv == FM_OK && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	int got = ok ? lfm_read_jsonl(L, c.metrics) : FM_EIO;
	if (mfd >= 0) {
		close(mfd);
	}
	if (!ok || got != FM_OK) {
		return luaL_error(L, "run: the deployment failed: %s", rv != FM_OK
		    ? e.msg : "the server node did not finish (see its output)");
	}
	lfm_push_result(L, -1, fmi_now() - t0, x->cfg.arch.nparams);
	return 1;
}

/* exp:run(): simulate under `fedmesh run`; be one node under `fedmesh
 * node`; start every node under `fedmesh launch`. */
int
lfm_exp_run(lua_State *L)
{
	lexp *x = lfm_check_exp(L, 1);
	const char *mode = reg_str(L, "fedmesh.mode");
	if (mode == NULL || strcmp(mode, "run") == 0) {
		lua_getfield(L, 1, "simulate");
		lua_pushvalue(L, 1);
		lua_call(L, 1, 1);
		return 1;
	}
	if (!x->has_deploy) {
		return luaL_error(L, "run: this experiment has no 'deploy' "
		    "section, so it cannot run as separate nodes (use fedmesh "
		    "run to simulate it)");
	}
	return strcmp(mode, "launch") == 0 ? run_launch(L, x) : run_node(L, x);
}
