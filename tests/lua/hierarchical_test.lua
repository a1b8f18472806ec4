-- hierarchical_test.lua: hierarchical federations (HierFAVG, Liu et al.
-- 2020): a one-level tree is the star bit for bit; every = { 1, 1 } with
-- FedAvg at both levels and every client each round is the star's FedAvg
-- (up to float rounding); with every = { k, 1 } the edge models drift
-- apart between root rounds and coincide right after one; per-level
-- aggregators; mistakes are named; and HierFAVG learns on non-IID data.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 1, beta = 1, devices = 20, seed = 5 }
local parts = fm.partition.natural(tr)  -- 20 non-IID clients
local model = fm.model.mlp { 60, 16, 10 }

local function cfg(topology, extra)
  local c = {
    topology = topology, model = model, train = parts, test = te,
    rounds = 6, clients_per_round = 7, seed = 11, quiet = true, threads = 2,
    local_training = { epochs = 2, batch = 10, lr = 0.02 },
  }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local function run(topology, extra)
  return fm.experiment(cfg(topology, extra)):simulate()
end

local keys = { "accuracy", "loss", "train_loss", "bytes_sent", "bytes_received",
               "updates", "clients", "dropped" }

local function same(a, b, what)
  assert(#a.rounds == #b.rounds, what)
  for i, x in ipairs(a.rounds) do
    local y = b.rounds[i]
    for _, k in ipairs(keys) do
      assert(x[k] == y[k], string.format("%s: round %d %s: %.17g vs %.17g",
        what, i, k, x[k], y[k]))
    end
  end
end

local function hier(fanouts, every)
  -- the builder when there is one, else the same table by hand
  if fm.topology.hierarchical then
    return fm.topology.hierarchical { fanouts = fanouts, every = every }
  end
  return { kind = "hierarchical", fanouts = fanouts, every = every }
end

-- 1. one level: the root aggregates the 20 clients: the star, bit for bit
local star = run(fm.topology.star { clients = 20 })
local one = run(hier({ 20 }, { 1 }))
same(star, one, "fanouts = { 20 } vs star")
assert(one.rounds[1].edge_divergence == nil, "a star's rows are unchanged")
local adam = { "fedadam", lr = 0.01 }
same(run(nil, { aggregator = adam }),
     run({ kind = "hierarchical", fanouts = { 20 } }, { aggregator = adam }),
     "fedadam: one level vs star")

-- 2. every = { 1, 1 }, FedAvg at both levels, all 20 clients each round:
-- the root's step sum_e N_e (sum_k n_k d_k / N_e) / sum_e N_e is FedAvg's
local full = { clients_per_round = 20 }
local star_full = run(nil, full)
local h11 = run(hier({ 4, 5 }, { 1, 1 }), full)
for i, x in ipairs(star_full.rounds) do
  local y = h11.rounds[i]
  assert(math.abs(x.loss - y.loss) < 1e-4 and math.abs(x.train_loss - y.train_loss) < 1e-6,
    string.format("every {1,1}: round %d loss %.9g vs star %.9g", i, y.loss, x.loss))
  assert(math.abs(x.accuracy - y.accuracy) <= 2 / #te, "every {1,1}: accuracy")
  assert(y.edge_divergence == 0 and y.root_aggregated == 1)
end

-- 3. every = { 3, 1 }: edges drift apart, a root round brings them together
local h31 = run(hier({ 4, 5 }, { 3, 1 }))
for i, r in ipairs(h31.rounds) do
  local root = i % 3 == 0
  assert(r.root_aggregated == (root and 1 or 0), "root_aggregated")
  if root then
    assert(r.edge_divergence == 0, string.format("round %d: edges coincide", i))
  else
    assert(r.edge_divergence > 1e-3, string.format("round %d: edges differ (%g)",
      i, r.edge_divergence))
  end
  assert(r.updates == 7 and r.accuracy)
end
-- the same table written by hand, and with other worker counts
same(h31, run({ kind = "hierarchical", fanouts = { 4, 5 }, every = { 3, 1 } }, { threads = 1 }),
  "by hand, 1 thread")
same(h31, run(hier({ 4, 5 }, { 3, 1 }), { threads = 3 }), "3 threads")

-- three levels: the middle aggregates every 2 rounds, the root every 2 x 2
local h3 = run({ kind = "hierarchical", fanouts = { 2, 2, 5 }, every = { 2, 2, 1 } },
  { rounds = 8 })
for i, r in ipairs(h3.rounds) do
  assert(r.root_aggregated == (i % 4 == 0 and 1 or 0), "3 levels: root every 4")
  assert((r.edge_divergence == 0) == (i % 4 == 0), "3 levels: divergence")
end

-- 4. one aggregator per level, each node its own instance
local t = fm.topology.hierarchical { fanouts = { 4, 5 }, every = { 3, 1 },
  aggregators = { { "fedadam", lr = 0.01 }, "fedavg" } }
local mixed = run(t)
for i = 1, 2 do -- the edges run FedAvg as before; the root differs
  assert(mixed.rounds[i].loss == h31.rounds[i].loss, "edge rounds unchanged")
end
assert(mixed.rounds[3].loss ~= h31.rounds[3].loss, "FedAdam at the root")
t = hier({ 4, 5 }, { 2, 1 })
t.aggregators = { "fedavg", "pingpong" } -- edges talk to their clients
for i, r in ipairs(run(t, { rounds = 4 }).rounds) do
  assert(r.updates == 7 and r.pongs and r.pongs >= 1,
    string.format("round %d: pingpong at the edges (%s pongs)", i, tostring(r.pongs)))
end

-- 5. mistakes name the field
local function fails(pattern, topology, extra)
  local ok, err = pcall(fm.experiment, cfg(topology, extra))
  assert(not ok, "expected an error matching " .. pattern)
  assert(err:find(pattern), "error '" .. err .. "' does not match " .. pattern)
end
fails("topology.fanouts: the fan%-outs multiply to 24 clients, but the partition has 20",
  { kind = "hierarchical", fanouts = { 4, 6 } })
fails("topology.every%[2%] must be 1", { kind = "hierarchical", fanouts = { 4, 5 }, every = { 2, 3 } })
fails("field 'every' must list 2", { kind = "hierarchical", fanouts = { 4, 5 }, every = { 2 } })
fails("field 'aggregators' must list 2", { kind = "hierarchical", fanouts = { 4, 5 },
  aggregators = { "fedavg" } })
fails("unknown aggregator plugin 'fedavgg'", { kind = "hierarchical", fanouts = { 4, 5 },
  aggregators = { "fedavg", "fedavgg" } })
fails("unknown field 'aggregator' %(did you mean 'aggregators'%?%)",
  { kind = "hierarchical", fanouts = { 4, 5 }, aggregator = "fedavg" })
fails("needs 'fanouts'", { kind = "hierarchical" })
-- client-side aggregators (local-training hooks) belong to the edge level
do
  local t = hier({ 4, 5 }, { 2, 1 })
  t.aggregators = { "fedavg", "scaffold" }
  for i, r in ipairs(run(t, { rounds = 4 }).rounds) do
    assert(r.updates == 7 and r.scaffold_c_norm and r.scaffold_c_norm > 0,
      string.format("round %d: scaffold at the edges", i))
  end
end
fails("topology.aggregators%[1%]: 'scaffold' changes how clients train",
  { kind = "hierarchical", fanouts = { 4, 5 }, aggregators = { "scaffold",
  "fedavg" } })
fails("aggregator: 'fedprox' changes how clients train",
  { kind = "hierarchical", fanouts = { 4, 5 } }, { aggregator = "fedprox" })
fails("the hierarchical topology has 10 clients", { kind = "hierarchical", fanouts = { 4, 5 },
  clients = 10 })
-- a tree checkpoints like a star (tests/lua/resume_test.lua resumes one)
assert(pcall(fm.experiment, cfg(hier({ 4, 5 }, { 2, 1 }),
  { deploy = { transport = "ipc", server = "hier.sock", clients = { "c1" },
               checkpoint = "hier.ckpt" } })), "deploy.checkpoint on a tree")

-- 6. HierFAVG learns on non-IID data: 4 edges of 5 clients, root every 5
local h = run(hier({ 4, 5 }, { 5, 1 }), { rounds = 20, clients_per_round = 10 })
print(string.format("HierFAVG synthetic(1,1): accuracy %.4f after 20 rounds", h.accuracy))
assert(h.accuracy > 0.5, "HierFAVG should beat 50% (chance is 10%)")

-- and on Fashion-MNIST with a Dirichlet(0.5) label skew
local ftr, fte = fm.data.fashion_mnist()
local fparts = fm.partition.dirichlet(ftr, { clients = 20, alpha = 0.5, seed = 1 })
local f = fm.experiment {
  topology = hier({ 4, 5 }, { 2, 1 }),
  model = fm.model.mlp { 784, 32, 10 }, train = fparts, test = fte,
  rounds = 4, clients_per_round = 8, seed = 1, quiet = true,
  local_training = { epochs = 1, batch = 32, lr = 0.05 },
}:simulate()
print(string.format("HierFAVG Fashion-MNIST, Dirichlet 0.5: accuracy %.4f after 4 rounds",
  f.accuracy))
assert(f.accuracy > 0.5, "HierFAVG on non-IID Fashion-MNIST is far above chance (10%)")
print("hierarchical ok")
