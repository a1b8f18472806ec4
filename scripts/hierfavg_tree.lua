-- hierfavg_tree.lua: hierarchical FedAvg (HierFAVG) deployed as a tree of
-- processes. The edge aggregators run on their own hosts (deploy.edges):
-- each client host dials its edge, each edge aggregates its clients with
-- its own pipeline and sends one model up; the root (the cloud) drives the
-- rounds and aggregates the edges every `every` rounds with `root`
-- (FedAdam by default).
--
--   fedmesh run    scripts/hierfavg_tree.lua            simulate (one process)
--   fedmesh launch scripts/hierfavg_tree.lua            root + 2 edges + 8 client
--                                                       hosts on loopback TCP
--   fedmesh node   scripts/hierfavg_tree.lua --node e2  one node, on any host
--
-- All three give the same per-round metrics for the same seed. Arguments:
--   rounds=6 clients=8 edges=2 every=2 clients_per_round=0 (0: all)
--   levels=2 (3: a root, 2 regions and `edges` edges; the regions run in
--            the root's process) root=fedadam root_lr=0.01 (any aggregator
--            with an lr; fedavg; fedavgm also takes momentum=0.9)
--   data=fmnist (or synthetic: small generated data, quick to load)
--   epochs=1 batch=32 lr=0.05 alpha=0.5 seed=1
--   host=127.0.0.1 port=5600 (root on port, edge i on port + i)
--   subnet= (e.g. 10.0.0.: root at .1, edge i at .(1 + i), all on `port`)
--   keys=keys round_timeout=600 min_updates=0 edge_timeout=10
--   tree=1 (0: the edges live in the root's process, as without
--          deploy.edges)
-- Client k lives on client host ck (one client per host: with deploy.edges
-- a client host must hold clients of one edge only).
local fm = require "fedmesh"

local opt = fm.args {
  rounds = 6, clients = 8, edges = 2, every = 2, clients_per_round = 0,
  levels = 2, root = "fedadam", root_lr = 0.01, data = "fmnist",
  epochs = 1, batch = 32, lr = 0.05, alpha = 0.5, seed = 1,
  host = "127.0.0.1", port = 5600, subnet = "", keys = "keys",
  round_timeout = 600, min_updates = 0, edge_timeout = 10, tree = 1,
  swap = 0, heartbeat = 1.0, momentum = 0.9,
}
if opt.clients % opt.edges ~= 0 then
  error(string.format("clients (%d) must be a multiple of edges (%d)",
    opt.clients, opt.edges))
end

local train, test, parts, model
if opt.data == "synthetic" then
  train, test = fm.data.synthetic { devices = opt.clients, seed = opt.seed,
                                    max_per_device = 300 }
  parts = fm.partition.natural(train)
  model = fm.model.mlp { train:dim(), 32, 10 }
else
  train, test = fm.data.fashion_mnist()
  parts = fm.partition.dirichlet(train,
    { clients = opt.clients, alpha = opt.alpha, seed = opt.seed })
  model = fm.model.mlp { 784, 200, 200, 10 }
end

local per_edge = opt.clients // opt.edges
local root = { opt.root, lr = opt.root_lr }
if opt.root == "fedavg" then root = "fedavg" end
if opt.root == "fedavgm" then root.momentum = opt.momentum end
local topology
if opt.levels == 3 then
  assert(opt.edges % 2 == 0, "levels=3 needs an even number of edges")
  topology = fm.topology.hierarchical {
    fanouts = { 2, opt.edges // 2, per_edge }, -- root -> regions -> edges
    every = { 2, opt.every, 1 },
  }
  topology.aggregators = { root, "fedavg", "fedavg" }
else
  topology = fm.topology.hierarchical {
    fanouts = { opt.edges, per_edge },         -- root -> edges -> clients
    every = { opt.every, 1 },
  }
  topology.aggregators = { root, "fedavg" }
end

local function addr(i) -- 0: the root, i: edge i
  if opt.subnet ~= "" then
    return opt.subnet .. (1 + i) .. ":" .. opt.port
  end
  return opt.host .. ":" .. (opt.port + i)
end
local edges, hosts = {}, {}
for i = 1, opt.edges do
  edges[i] = { name = "e" .. i, address = addr(i) }
end
if opt.swap == 1 then -- a test's misconfigured client: edges in reverse
  for i = 1, opt.edges // 2 do
    edges[i], edges[opt.edges + 1 - i] = edges[opt.edges + 1 - i], edges[i]
  end
end
for k = 1, opt.clients do hosts[k] = "c" .. k end

local result = fm.experiment {
  topology = topology,
  model = model,
  train = parts,
  test = test,
  rounds = opt.rounds,
  clients_per_round = opt.clients_per_round > 0 and opt.clients_per_round
                      or opt.clients,
  local_training = { epochs = opt.epochs, batch = opt.batch, lr = opt.lr },
  seed = opt.seed,
  round_timeout = opt.round_timeout,
  min_updates = opt.min_updates,
  deploy = {
    transport = "tcp",
    server = addr(0),
    clients = hosts,
    edges = opt.tree == 1 and edges or nil,
    keys = opt.keys, -- fedmesh launch creates missing key pairs here
    edge_timeout = opt.edge_timeout,
    heartbeat = opt.heartbeat,
  },
}:run()

if result.accuracy then
  for _, r in ipairs(result.rounds) do
    if r.root_aggregated == 1 then
      print(string.format("cloud round after round %d: accuracy %.4f",
        r.round, r.accuracy))
    end
  end
  print(string.format("final accuracy %.4f after %d rounds", result.accuracy,
    #result.rounds))
end
