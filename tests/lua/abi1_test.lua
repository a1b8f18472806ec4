-- abi1_test.lua: plugins built for ABI 1.4 (tests/plugins/abi1, against a
-- frozen copy of the 1.4 header) load through the real loader and run in
-- experiments beside 2.0 plugins: an aggregator, a defence, an attack
-- and a consensus rule. A 1.x aggregator with local-training hooks is
-- refused with the reason. arg[1]: the directory of the 1.4 plugins.
local fm = require "fedmesh"
local dir = assert(arg[1], "usage: abi1_test.lua DIR")

local function near(a, b, tol, what)
  assert(#a == #b, what .. ": lengths")
  for i = 1, #a do
    assert(math.abs(a[i] - b[i]) <= tol,
      string.format("%s [%d]: %.9g vs %.9g", what, i, a[i], b[i]))
  end
end

fm.plugin_path(dir)
local kinds = {}
for _, p in ipairs(fm.plugins()) do kinds[p.name] = p.kind end
assert(kinds.a1_mean == "aggregator" and kinds.a1_dropmax == "defence" and
  kinds.a1_negate == "attack" and kinds.a1_wavg == "consensus",
  "the 1.4 components are listed with their kinds")
assert(kinds.a1_prox == nil, "a 1.x aggregator with local hooks is refused")

-- 1. fm.aggregate: the 1.4 means equal FedAvg's (example-weighted)
local u = { { weights = { 1, 2, 3 }, num_examples = 1 },
            { weights = { 3, 4, 5 }, num_examples = 3 } }
near(fm.aggregate("a1_mean", u, {}), { 2.5, 3.5, 4.5 }, 1e-6, "a1_mean")
near(fm.aggregate("a1_many", u, {}), { 2.5, 3.5, 4.5 }, 1e-6, "a1_many")

-- 2. in a star experiment the 1.4 mean learns as FedAvg does
local tr, te = fm.data.synthetic { alpha = 0, beta = 0, devices = 10, seed = 4 }
local parts = fm.partition.iid(tr, { clients = 10, seed = 4 })
local function star(t)
  local c = { model = fm.model.logreg { 60, 10 }, train = parts, test = te,
    rounds = 4, clients_per_round = 5, seed = 4, quiet = true,
    local_training = { epochs = 1, batch = 10, lr = 0.05 } }
  for k, v in pairs(t or {}) do c[k] = v end
  return fm.experiment(c):simulate()
end
local ref, old = star(), star { aggregator = "a1_mean" }
for i = 1, 4 do
  assert(math.abs(ref.rounds[i].loss - old.rounds[i].loss) < 1e-4,
    string.format("round %d: a1_mean loss %.6f, fedavg %.6f", i,
      old.rounds[i].loss, ref.rounds[i].loss))
end

-- 3. a 1.4 defence after a 1.4 attack: the negated adversary is the
-- largest row, and a1_dropmax drops one row a round
local d = star { attack = "a1_negate", adversaries = { clients = { 1 } },
  defence = "a1_dropmax" }
for i, r in ipairs(d.rounds) do
  assert(r.defence_kept == r.updates - 1,
    string.format("round %d: kept %s of %s", i, tostring(r.defence_kept),
      tostring(r.updates)))
end

-- 4. a 1.4 consensus rule on a ring of peers
local p = fm.experiment { model = fm.model.logreg { 60, 10 }, train = parts,
  test = te, rounds = 6, seed = 4, quiet = true,
  local_training = { epochs = 1, batch = 10, lr = 0.05 },
  topology = fm.topology.ring { peers = 10 }, consensus = "a1_wavg" }:simulate()
assert(p.rounds[6].accuracy > p.rounds[1].accuracy, "1.4 consensus learns")
assert(p.rounds[6].consensus_distance < 10, "and the peers agree")
print(string.format("abi1: a1_mean %.4f (fedavg %.4f), dropmax kept %d, "
  .. "a1_wavg %.4f", old.accuracy, ref.accuracy, d.rounds[4].defence_kept,
  p.accuracy))
