-- gossip_ring.lua: decentralized learning with no server. D-PSGD (Lian et
-- al. 2017) on a ring of 16 peers over the real Fashion-MNIST: every round
-- each peer trains its own MLP 784-200-200-10 on its shard, sends it to
-- its two neighbours, and averages with Metropolis-Hastings weights
-- (the `gossip` consensus plugin). Metrics: accuracy is the mean over
-- peers, with accuracy_min, accuracy_max and consensus_distance (mean L2
-- distance of the peers' models from their average).
--
--   fedmesh run scripts/gossip_ring.lua [rounds=30] [peers=16]
--       [topology=ring|torus|complete|kregular|small_world|matching]
--       [consensus=gossip|pushsum|clipped_gossip|trimmed_gossip]
--       [partition=iid|dirichlet] [alpha=0.5] [epochs=1] [seed=1]
--       [--metrics gossip.jsonl]
--
-- The same script deploys: `fedmesh launch scripts/gossip_ring.lua` runs
-- one process per peer plus a monitor on loopback TCP (peer i listens on
-- port+i, the monitor on port; CURVE keys in keys/, created on first use),
-- and `fedmesh node scripts/gossip_ring.lua --node peer3` runs one peer on
-- any host. With subnet=10.0.0. the monitor is 10.0.0.1:port and peer i
-- 10.0.0.(i+1):port (one host or namespace per peer); otherwise everything
-- is on host (default 127.0.0.1), peer i on port+i. checkpoint=DIR keeps
-- each peer's state (its model, push-sum's weight) in DIR after every
-- round; a peer restarted with `fedmesh node --resume` goes on from it.
local fm = require "fedmesh"

local opt = fm.args {
  rounds = 30, peers = 16, topology = "ring", consensus = "gossip",
  partition = "iid", alpha = 0.5, epochs = 1, batch = 32, lr = 0.05,
  seed = 1, k = 4, eval_every = 1, eval_samples = 0, host = "127.0.0.1",
  port = 7100, keys = "keys", round_timeout = 60, adversaries = 0,
  subnet = "", init = "same", checkpoint = "",
}

local topo
if opt.topology == "torus" then
  local r = math.floor(math.sqrt(opt.peers))
  assert(r * r == opt.peers, "torus needs a square number of peers")
  topo = fm.topology.torus { rows = r, cols = r }
elseif opt.topology == "kregular" then
  topo = fm.topology.kregular { peers = opt.peers, k = opt.k, seed = opt.seed }
elseif opt.topology == "small_world" then
  topo = fm.topology.small_world { peers = opt.peers, k = opt.k, rewire = 0.2,
                                   seed = opt.seed }
else -- ring, complete, matching
  topo = fm.topology[opt.topology] { peers = opt.peers }
end
local d = topo:describe()
print(string.format("%s: %d peers, degree %d-%d, diameter %s, spectral gap %.4f",
  d.kind, d.nodes, d.degree_min, d.degree_max, tostring(d.diameter),
  d.spectral_gap))

local train, test = fm.data.fashion_mnist()
local parts
if opt.partition == "dirichlet" then
  parts = fm.partition.dirichlet(train,
    { clients = opt.peers, alpha = opt.alpha, seed = opt.seed })
else
  parts = fm.partition.iid(train, { clients = opt.peers, seed = opt.seed })
end

local addrs, monitor = {}, opt.host .. ":" .. opt.port
for i = 1, opt.peers do
  if opt.subnet ~= "" then
    addrs[i] = opt.subnet .. (i + 1) .. ":" .. opt.port
  else
    addrs[i] = opt.host .. ":" .. (opt.port + i)
  end
end
if opt.subnet ~= "" then monitor = opt.subnet .. "1:" .. opt.port end

local result = fm.experiment {
  topology = topo,
  model = fm.model.mlp { 784, 200, 200, 10 },
  train = parts,
  test = test,
  rounds = opt.rounds,
  local_training = { epochs = opt.epochs, batch = opt.batch, lr = opt.lr },
  consensus = opt.consensus,
  attack = opt.adversaries > 0 and { "gaussian", sigma = 1 } or nil,
  adversaries = opt.adversaries > 0 and { fraction = opt.adversaries } or nil,
  seed = opt.seed,
  init = opt.init,
  eval_every = opt.eval_every,
  eval_samples = opt.eval_samples > 0 and opt.eval_samples or nil,
  round_timeout = opt.round_timeout,
  deploy = { -- used by fedmesh launch / fedmesh node only
    transport = "tcp", server = monitor, peers = addrs,
    keys = opt.keys,
    -- a folder: each peer keeps its state there (restart it with --resume)
    checkpoint = opt.checkpoint ~= "" and opt.checkpoint or nil,
  },
}:run()

if result.accuracy then
  local last = result.rounds[#result.rounds]
  print(string.format("final mean peer accuracy %.4f (min %.4f, max %.4f), "
    .. "consensus distance %.4g", result.accuracy, last.accuracy_min or 0,
    last.accuracy_max or 0, last.consensus_distance or 0))
end
