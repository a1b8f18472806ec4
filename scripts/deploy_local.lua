-- deploy_local.lua: FedAvg on Fashion-MNIST with 1 server and 4 client
-- hosts on loopback TCP. The same script runs three ways:
--
--   fedmesh run scripts/deploy_local.lua            one-process simulation
--   fedmesh launch scripts/deploy_local.lua         5 processes on this host
--   fedmesh node scripts/deploy_local.lua --node c2 one node (any host)
--
-- All three give the same per-round accuracy for the same seed. The 100
-- logical clients are spread over the 4 client hosts (client k lives on
-- host k mod 4). Arguments: rounds=N seed=S clients_per_round=K,
-- aggregator=NAME (any aggregator plugin without parameters: fedavg,
-- fedprox, scaffold, fednova...), and
-- host=H port=P (where clients reach the server), bind=ADDR:PORT (where
-- the server listens; default host:port), keys=DIR (CURVE keys, default
-- ./keys: `fedmesh launch` creates them on first use; for `fedmesh node`
-- on several hosts, see docs/security.md).
local fm = require "fedmesh"

local opt = fm.args {
  rounds = 10, seed = 1, clients = 100, clients_per_round = 10, epochs = 5,
  batch = 32, lr = 0.05, port = 5555, host = "127.0.0.1", bind = "",
  checkpoint = "", round_timeout = 600, min_updates = 0, keys = "keys",
  aggregator = "fedavg",
}

local train, test = fm.data.fashion_mnist()
local parts = fm.partition.iid(train, { clients = opt.clients, seed = opt.seed })

local result = fm.experiment {
  model = fm.model.mlp { 784, 200, 200, 10 },
  train = parts, test = test,
  rounds = opt.rounds, clients_per_round = opt.clients_per_round,
  local_training = { epochs = opt.epochs, batch = opt.batch, lr = opt.lr },
  aggregator = opt.aggregator, seed = opt.seed,
  round_timeout = opt.round_timeout, min_updates = opt.min_updates,
  deploy = {
    transport = "tcp",
    server = opt.host .. ":" .. opt.port,
    bind = opt.bind ~= "" and opt.bind or nil,
    clients = { "c1", "c2", "c3", "c4" },
    keys = opt.keys, -- CURVE key pairs; fedmesh launch creates missing ones
    checkpoint = opt.checkpoint ~= "" and opt.checkpoint or nil,
  },
}:run()

if result.accuracy then
  print(string.format("final accuracy %.4f after %d rounds", result.accuracy, #result.rounds))
end
