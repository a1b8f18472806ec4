-- deploy_edges_test.lua: deploy.edges (a hierarchy's edge aggregators as
-- processes) is checked when the experiment is made: its entries, their
-- number, and client hosts that would span edges.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { devices = 8, seed = 1, max_per_device = 40 }
local parts = fm.partition.natural(tr)
local model = fm.model.logreg { 60, 10 }
local hosts = { "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8" }

local function cfg(edges, topology, clients)
  return { model = model, train = parts, test = te, rounds = 1, quiet = true,
    topology = topology or fm.topology.hierarchical { fanouts = { 2, 4 } },
    deploy = { transport = "tcp", server = "127.0.0.1:34990", keys = "k",
      clients = clients or hosts, edges = edges } }
end

local function expect_error(c, pattern)
  local ok, err = pcall(fm.experiment, c)
  assert(not ok, "expected an error matching " .. pattern)
  assert(err:find(pattern), "error '" .. err .. "' does not match " .. pattern)
end

-- accepted: addresses (named edge1, edge2) or tables, and a 3-level tree
assert(fm.experiment(cfg { "127.0.0.1:34991", "127.0.0.1:34992" }))
assert(fm.experiment(cfg { { name = "e1", address = "h1:1", bind = "*:1" },
                           { name = "e2", address = "h2:1" } }))
assert(fm.experiment(cfg({ "a:1", "b:1", "c:1", "d:1" },
  fm.topology.hierarchical { fanouts = { 2, 2, 2 }, every = { 2, 1, 1 } })))

expect_error(cfg { "a:1" },
  "'edges' must list the topology's 2 edge aggregators in edge order.*it lists 1")
expect_error(cfg { "a:1", "b:1", "c:1" }, "it lists 3")
expect_error(cfg("a:1"), "'edges' must list the topology's 2 edge aggregators")
expect_error(cfg { "a:1", 7 }, "edges%[2%] must be \"host:port\"")
expect_error(cfg { "a:1", "" }, "edges%[2%] must be an address")
expect_error(cfg { "a:1", { name = "e2" } }, "edges%[2%]%.address must be an address")
expect_error(cfg { "a:1", { name = "c3", address = "b:1" } },
  "node name 'c3' is used twice")
expect_error(cfg { "a:1", { name = "bad name", address = "b:1" } },
  "edges%[2%]%.name must be a name")
expect_error(cfg { "a:1", { address = "b:1", port = 3 } }, "unknown field 'port'")
expect_error(cfg({ "a:1" }, fm.topology.star { clients = 8 }),
  "'edges' places the edge aggregators of a hierarchical topology")
expect_error(cfg({ "a:1" }, fm.topology.hierarchical { fanouts = { 8 } }),
  "'edges' places the edge aggregators of a hierarchical topology")
-- client k on host clients[(k - 1) % #clients + 1]: 4 hosts span both edges
expect_error(cfg({ "a:1", "b:1" }, nil, { "c1", "c2", "c3", "c4" }),
  "client host 'c1' holds client 1 %(edge edge1%) and client 5 %(edge edge2%)")
expect_error(cfg({ "a:1", "b:1" }, nil, { "c1", "c2", "c3", "c4" }),
  "list one client host per client %(8 names in deploy.clients%)")
-- more hosts than clients: one would hold none
local nine = { table.unpack(hosts) }
nine[9] = "c9"
expect_error(cfg({ "a:1", "b:1" }, nil, nine), "client host 'c9' holds no client")
-- the edges' models live in the edge processes: no checkpoint of a tree
local ck = cfg { "a:1", "b:1" }
ck.checkpoint = "tree.ckpt"
expect_error(ck, "deploy.edges%) cannot be checkpointed")
ck = cfg { "a:1", "b:1" }
ck.deploy.checkpoint = "tree.ckpt"
expect_error(ck, "drop deploy.edges to run the tree in the server process")
print("deploy.edges checks passed")
