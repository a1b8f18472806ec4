-- fedavg_fmnist.lua: FedAvg on the real Fashion-MNIST (Debian package
-- dataset-fashion-mnist), MLP 784-200-200-10, 100 clients, 10 sampled per
-- round, E = 5 local epochs, B = 32, lr = 0.05, 50 rounds (McMahan et al.
-- 2017's 2NN on Fashion-MNIST). Writes per-round metrics as CSV and JSONL.
--
--   fedmesh run scripts/fedavg_fmnist.lua [rounds=50] [partition=iid|dirichlet|shards]
--       [alpha=0.5] [seed=1] [csv=fedavg_fmnist.csv] [jsonl=fedavg_fmnist.jsonl]
--
-- The same script deploys: `fedmesh launch scripts/fedavg_fmnist.lua` runs
-- a server and 4 client hosts as processes on loopback TCP (CURVE keys in
-- keys/, created on first use) and gives the same model and metrics as
-- the simulation for the same seed (see docs/deployment.md).
local fm = require "fedmesh"

local opt = fm.args {
  rounds = 50, clients = 100, clients_per_round = 10, epochs = 5, batch = 32,
  lr = 0.05, momentum = 0.0, seed = 1, partition = "iid", alpha = 0.5,
  shards = 2, csv = "fedavg_fmnist.csv", jsonl = "fedavg_fmnist.jsonl",
  host = "127.0.0.1", port = 5556, keys = "keys",
}

local train, test = fm.data.fashion_mnist()
local parts
if opt.partition == "iid" then
  parts = fm.partition.iid(train, { clients = opt.clients, seed = opt.seed })
elseif opt.partition == "dirichlet" then
  parts = fm.partition.dirichlet(train,
    { clients = opt.clients, alpha = opt.alpha, seed = opt.seed })
elseif opt.partition == "shards" then
  parts = fm.partition.shards(train,
    { clients = opt.clients, shards = opt.shards, seed = opt.seed })
else
  error("partition must be iid, dirichlet or shards, not " .. opt.partition)
end

local s = parts:summary()
print(string.format("%s: %d %s clients, %d-%d samples, %.1f labels each",
  tostring(train), s.clients, opt.partition, s.min, s.max, s.labels_per_client))

local result = fm.experiment {
  topology = fm.topology.star { clients = opt.clients },
  model = fm.model.mlp { 784, 200, 200, 10 },
  train = parts,
  test = test,
  rounds = opt.rounds,
  clients_per_round = opt.clients_per_round,
  local_training = { epochs = opt.epochs, batch = opt.batch, lr = opt.lr,
                     momentum = opt.momentum },
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
  print(string.format("final accuracy %.4f; metrics in %s and %s",
    result.accuracy, opt.csv, opt.jsonl))
end
