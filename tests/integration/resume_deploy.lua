-- resume_deploy.lua: the deployment of resume_test.sh: Fashion-MNIST, the
-- MLP of scripts/deploy_local.lua, 8 clients on 4 client hosts (client k
-- on host k mod 4), a server checkpoint and the client hosts' state
-- folder. Arguments: rounds, clients_per_round, epochs, aggregator (a
-- name), lr_server (its lr), port, keys, checkpoint, client_state.
local fm = require "fedmesh"

local opt = fm.args {
  rounds = 6, seed = 3, clients = 8, clients_per_round = 8, epochs = 1,
  port = 32000, keys = "keys", checkpoint = "", client_state = "",
  aggregator = "fedadam", lr_server = 0.01, round_timeout = 600,
}

local train, test = fm.data.fashion_mnist()
local parts = fm.partition.iid(train, { clients = opt.clients, seed = opt.seed })
local agg = opt.aggregator
if agg ~= "scaffold" and agg ~= "fedavg" then
  agg = { opt.aggregator, lr = opt.lr_server }
end

fm.experiment {
  model = fm.model.mlp { 784, 200, 200, 10 },
  train = parts, test = test, seed = opt.seed,
  rounds = opt.rounds, clients_per_round = opt.clients_per_round,
  local_training = { epochs = opt.epochs, batch = 32, lr = 0.05 },
  aggregator = agg, round_timeout = opt.round_timeout,
  deploy = {
    transport = "tcp",
    server = "127.0.0.1:" .. opt.port,
    clients = { "c1", "c2", "c3", "c4" },
    keys = opt.keys,
    checkpoint = opt.checkpoint ~= "" and opt.checkpoint or nil,
    client_state = opt.client_state ~= "" and opt.client_state or nil,
  },
}:run()
