-- dp_fedavg_fmnist.lua: differentially private FedAvg on the real
-- Fashion-MNIST (docs/privacy.md). MLP 784-200-200-10, `clients` clients
-- sampled `per_round` a round (Poisson sampling by default, what the
-- accountant assumes), E = 1, B = 32, and one privacy mechanism:
--   mechanism=dp_fixed     central DP-FedAvg, clip C (McMahan et al. 2018)
--   mechanism=dp_adaptive  the clip follows the median update norm
--                          (Andrew et al. 2021)
--   mechanism=dp_local     each client noises its own update (eps_local
--                          per release, or z)
--   mechanism=none         plain FedAvg, the baseline
-- Every round reports epsilon at delta; max_epsilon stops the run.
--
--   fedmesh run scripts/dp_fedavg_fmnist.lua [mechanism=dp_fixed] [z=1.0]
--       [clip=1.0] [clients=1000] [per_round=100] [rounds=100]
--       [partition=iid|dirichlet] [alpha=0.5] [min_size=10] [max_epsilon=0]
--       [accountant=rdp|prv] [sampling=poisson|uniform] [delta=0]
--       [secure_noise=false] [server_lr=1.0] [seed=1] [--metrics dp.jsonl]
--
-- delta=0 picks 1 / clients^1.1 (below 1 / clients, as user-level DP
-- needs). The same script deploys with `fedmesh launch` (4 client hosts).
local fm = require "fedmesh"

local opt = fm.args {
  mechanism = "dp_fixed", z = 1.0, clip = 1.0, eps_local = 1.0,
  clients = 1000, per_round = 100, rounds = 100, epochs = 1, batch = 32,
  lr = 0.05, server_lr = 1.0, partition = "iid", alpha = 0.5, min_size = 10,
  max_epsilon = 0, accountant = "rdp", sampling = "poisson", delta = 0,
  secure_noise = false, seed = 1, host = "127.0.0.1", port = 5570,
  keys = "keys",
}

local train, test = fm.data.fashion_mnist()
local parts = opt.partition == "dirichlet" and
  fm.partition.dirichlet(train, { clients = opt.clients, alpha = opt.alpha,
    seed = opt.seed, min_size = opt.min_size }) or
  fm.partition.iid(train, { clients = opt.clients, seed = opt.seed })

local privacy
if opt.mechanism == "dp_fixed" then
  privacy = { "dp_fixed", clip = opt.clip, noise_multiplier = opt.z }
elseif opt.mechanism == "dp_adaptive" then
  privacy = { "dp_adaptive", noise_multiplier = opt.z,
    -- Flower: sampled / 20; it must exceed z / 2
    clipped_count_stddev = math.max(opt.per_round / 20, opt.z) }
elseif opt.mechanism == "dp_local" then
  privacy = { "dp_local", clip = opt.clip, epsilon = opt.eps_local }
elseif opt.mechanism ~= "none" then
  error("mechanism must be dp_fixed, dp_adaptive, dp_local or none, not " ..
    opt.mechanism)
end
local delta = opt.delta > 0 and opt.delta or 1 / opt.clients ^ 1.1

local e = {
  model = fm.model.mlp { 784, 200, 200, 10 },
  train = parts, test = test, rounds = opt.rounds,
  clients_per_round = opt.per_round, seed = opt.seed,
  local_training = { epochs = opt.epochs, batch = opt.batch, lr = opt.lr },
  -- the noised mean is an update: a server learning rate scales it
  aggregator = opt.server_lr ~= 1.0 and { "fedavgm", lr = opt.server_lr,
    momentum = 0 } or "fedavg",
  deploy = {
    transport = "tcp", server = opt.host .. ":" .. opt.port,
    clients = { "c1", "c2", "c3", "c4" }, keys = opt.keys,
  },
}
if privacy then
  e.privacy = privacy
  e.client_sampling = opt.sampling
  e.accountant = opt.accountant
  e.delta = delta
  e.secure_noise = opt.secure_noise
  if opt.max_epsilon > 0 then e.max_epsilon = opt.max_epsilon end
end
local r = fm.experiment(e):run()
if r.accuracy then
  print(string.format("%s: final accuracy %.4f after %d rounds%s",
    opt.mechanism, r.accuracy, #r.rounds, r.epsilon and
    string.format(", epsilon %.3f at delta %.3g", r.epsilon, r.delta) or ""))
end
