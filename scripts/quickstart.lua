-- quickstart.lua: the default experiment. FedAvg on a star of 30 clients
-- over Synthetic(1, 1) (Li et al. 2020, the FedProx paper's generator),
-- built into the engine: no files needed, runs in seconds.
--
--   fedmesh run scripts/quickstart.lua [rounds=N] [seed=S] [csv=out.csv]
local fm = require "fedmesh"

local opt = fm.args {
  rounds = 40, seed = 1, clients_per_round = 10, alpha = 1.0, beta = 1.0,
  epochs = 20, batch = 10, lr = 0.01, csv = "",
}

-- 30 devices, each with its own data distribution (non-IID by design);
-- every device's samples are split 90/10 into train and test.
local train, test = fm.data.synthetic {
  alpha = opt.alpha, beta = opt.beta, devices = 30, seed = opt.seed,
}
local parts = fm.partition.natural(train) -- one client per device
local s = parts:summary()
print(string.format("data: %s; %d clients, %d to %d samples each (mean %.0f)",
  tostring(train), s.clients, s.min, s.max, s.mean))

local run = fm.experiment {
  topology = fm.topology.star { clients = parts:clients() },
  model = fm.model.logreg { train:dim(), train:classes() },
  train = parts,
  test = test,
  rounds = opt.rounds,
  clients_per_round = opt.clients_per_round,
  -- the FedProx paper's synthetic setup: E = 20, B = 10, lr = 0.01
  local_training = { epochs = opt.epochs, batch = opt.batch, lr = opt.lr },
  aggregator = "fedavg",
  seed = opt.seed,
}

local result = run:simulate()
print(string.format("final test accuracy %.4f (best %.4f at round %d)",
  result.accuracy, result.best_accuracy, result.best_round))
if opt.csv ~= "" then result:write_csv(opt.csv) end
