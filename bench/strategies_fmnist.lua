-- strategies_fmnist.lua: one cell of bench/strategies_fmnist.sh, printed as
-- one JSON line on stdout (the experiment runs quiet).
--
--   fedmesh run --threads 2 bench/strategies_fmnist.lua strategy=scaffold
--       partition=dirichlet|shards [alpha=0.5] [shards=2] [rounds=50]
--
-- NIID-Bench's setting (Li et al., ICDE 2022) scaled to this machine:
-- Fashion-MNIST, 10 clients, all of them every round, SGD with lr 0.01 and
-- momentum 0.9, batch 64; the MLP 784-200-200-10 instead of NIID-Bench's
-- small CNN, and E = 2 local epochs instead of 10 (see bench/README.md).
-- partition=dirichlet is label skew Dir(alpha); partition=shards with
-- shards=2 gives every client two label shards (NIID-Bench's #C=2 is two
-- labels per client). Prints final and best accuracy, the accuracy every
-- 10 rounds, the rounds to reach 80%, bytes per round and seconds.
local fm = require "fedmesh"

local opt = fm.args {
  strategy = "fedavg", partition = "dirichlet", alpha = 0.5, shards = 2,
  clients = 10, rounds = 50, epochs = 2, batch = 64, lr = 0.01,
  momentum = 0.9, seed = 1, mu = 0.01, target = 0.8,
}

local strategies = {
  fedavg = "fedavg",
  fedprox = { "fedprox", mu = opt.mu },
  scaffold = "scaffold",
  fednova = "fednova",
  fedavgm = { "fedavgm", lr = 1.0, momentum = 0.9 },
  fedadam = { "fedadam", lr = 0.01 },
}
local agg = strategies[opt.strategy]
if agg == nil then error("unknown strategy " .. opt.strategy) end

local train, test = fm.data.fashion_mnist()
local parts
if opt.partition == "dirichlet" then
  parts = fm.partition.dirichlet(train,
    { clients = opt.clients, alpha = opt.alpha, seed = opt.seed })
elseif opt.partition == "shards" then
  parts = fm.partition.shards(train,
    { clients = opt.clients, shards = opt.shards, seed = opt.seed })
else
  error("partition must be dirichlet or shards")
end

local r = fm.experiment {
  model = fm.model.mlp { 784, 200, 200, 10 },
  train = parts, test = test,
  rounds = opt.rounds, clients_per_round = opt.clients,
  local_training = { epochs = opt.epochs, batch = opt.batch, lr = opt.lr,
    momentum = opt.momentum },
  aggregator = agg, seed = opt.seed, quiet = true,
}:simulate()

local every, reach = {}, "null"
for i, row in ipairs(r.rounds) do
  if i % 10 == 0 then every[#every + 1] = string.format("%.4f", row.accuracy) end
  if reach == "null" and row.accuracy >= opt.target then reach = tostring(i) end
end
local last = r.rounds[#r.rounds]
print(string.format('{"strategy":"%s","partition":"%s","alpha":%s,' ..
  '"shards":%d,"clients":%d,"rounds":%d,"epochs":%d,"accuracy":%.4f,' ..
  '"best_accuracy":%.4f,"accuracy_every_10":[%s],"rounds_to_%d":%s,' ..
  '"bytes_per_round":%d,"seconds":%.1f}',
  opt.strategy, opt.partition, opt.partition == "dirichlet" and
  tostring(opt.alpha) or "null", opt.partition == "shards" and opt.shards or 0,
  opt.clients, #r.rounds, opt.epochs, r.accuracy, r.best_accuracy,
  table.concat(every, ","), math.floor(opt.target * 100 + 0.5), reach,
  last.bytes_sent + last.bytes_received, r.seconds))
