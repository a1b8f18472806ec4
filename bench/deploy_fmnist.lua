-- deploy_fmnist.lua: the deployment bench/deploy_fmnist.sh runs with
-- `fedmesh launch`: a star of 1 server and `hosts` client hosts on loopback
-- TCP (CURVE), one client per host (client k on host ck), Fashion-MNIST,
-- MLP 784-200-200-10, IID, E=1, B=32, lr 0.05, 10 clients per round.
-- The server evaluates on the test set only every `eval_every` rounds (and
-- the last), so most rounds time the round itself.
--
--   fedmesh launch bench/deploy_fmnist.lua -- keys=DIR [hosts=100]
--       [rounds=30] [eval_every=1000] [port=5571]
local fm = require "fedmesh"

local opt = fm.args {
  hosts = 100, rounds = 30, clients_per_round = 10, epochs = 1, batch = 32,
  lr = 0.05, seed = 1, eval_every = 1000, port = 5571, keys = "keys",
  round_timeout = 120,
}

local names = {}
for i = 1, opt.hosts do names[i] = "c" .. i end

local train, test = fm.data.fashion_mnist()
local parts = fm.partition.iid(train, { clients = opt.hosts, seed = opt.seed })

fm.experiment {
  model = fm.model.mlp { 784, 200, 200, 10 },
  train = parts, test = test,
  rounds = opt.rounds,
  clients_per_round = math.min(opt.clients_per_round, opt.hosts),
  local_training = { epochs = opt.epochs, batch = opt.batch, lr = opt.lr },
  aggregator = "fedavg", seed = opt.seed,
  eval_every = math.min(opt.eval_every, opt.rounds),
  round_timeout = opt.round_timeout,
  deploy = {
    transport = "tcp", server = "127.0.0.1:" .. opt.port,
    clients = names, keys = opt.keys, join_timeout = 120,
  },
}:run()
