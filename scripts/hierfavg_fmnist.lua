-- hierfavg_fmnist.lua: hierarchical FedAvg (HierFAVG, Liu et al. 2020,
-- "Client-Edge-Cloud Hierarchical Federated Learning") on the real
-- Fashion-MNIST: 100 clients under 4 edge aggregators of 25, label skew
-- from a Dirichlet(0.5) partition, MLP 784-200-200-10, 20 clients sampled
-- per round (E = 5, B = 32, lr = 0.05). Each round the sampled clients
-- train from their edge's model and each edge averages its clients; every
-- 5 rounds the cloud (root) averages the 4 edge models and sends the
-- result back down. Rows carry `edge_divergence` (mean L2 distance of the
-- edge models from their weighted mean: 0 right after a cloud round) and
-- `root_aggregated`.
--
--   fedmesh run scripts/hierfavg_fmnist.lua [rounds=30] [every=5] [edges=4]
--       [clients_per_round=20] [alpha=0.5] [root=fedavg] [seed=1]
--       [csv=hierfavg_fmnist.csv] [jsonl=hierfavg_fmnist.jsonl]
--
-- `root=fedadam` (or any aggregator plugin) changes the cloud's aggregator
-- only; the edges keep FedAvg. `fedmesh launch` runs the server (with the
-- edge tier inside it) and 4 client hosts as processes on loopback TCP;
-- scripts/hierfavg_tree.lua deploys the edges as processes of their own
-- (deploy.edges).
local fm = require "fedmesh"

local opt = fm.args {
  rounds = 30, clients = 100, edges = 4, every = 5, clients_per_round = 20,
  epochs = 5, batch = 32, lr = 0.05, alpha = 0.5, seed = 1, root = "fedavg",
  csv = "hierfavg_fmnist.csv", jsonl = "hierfavg_fmnist.jsonl",
  host = "127.0.0.1", port = 5557, keys = "keys",
}
if opt.clients % opt.edges ~= 0 then
  error(string.format("clients (%d) must be a multiple of edges (%d)",
    opt.clients, opt.edges))
end

local train, test = fm.data.fashion_mnist()
local parts = fm.partition.dirichlet(train,
  { clients = opt.clients, alpha = opt.alpha, seed = opt.seed })
local s = parts:summary()
print(string.format("%s: %d Dirichlet(%.2f) clients, %d-%d samples, %.1f labels each",
  tostring(train), s.clients, opt.alpha, s.min, s.max, s.labels_per_client))

local topology = fm.topology.hierarchical {
  fanouts = { opt.edges, opt.clients // opt.edges }, -- cloud -> edges -> clients
  every = { opt.every, 1 },                          -- cloud every k edge rounds
}
topology.aggregators = { opt.root, "fedavg" }        -- cloud, edges

local result = fm.experiment {
  topology = topology,
  model = fm.model.mlp { 784, 200, 200, 10 },
  train = parts,
  test = test,
  rounds = opt.rounds,
  clients_per_round = opt.clients_per_round,
  local_training = { epochs = opt.epochs, batch = opt.batch, lr = opt.lr },
  aggregator = "fedavg",
  seed = opt.seed,
  deploy = { -- used by fedmesh launch / fedmesh node only
    transport = "tcp", server = opt.host .. ":" .. opt.port,
    clients = { "c1", "c2", "c3", "c4" }, keys = opt.keys,
  },
}:run()

result:write_csv(opt.csv)   -- client nodes hold no metrics: no-ops there
result:write_jsonl(opt.jsonl)
if result.accuracy then
  for _, r in ipairs(result.rounds) do
    if r.root_aggregated == 1 then
      print(string.format("cloud round after round %d: accuracy %.4f", r.round, r.accuracy))
    end
  end
  print(string.format("final accuracy %.4f (best %.4f at round %d); metrics in %s and %s",
    result.accuracy, result.best_accuracy, result.best_round, opt.csv, opt.jsonl))
end
