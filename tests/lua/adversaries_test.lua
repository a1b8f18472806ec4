-- adversaries_test.lua: how many adversaries a round samples. By default
-- `fraction` marks that share of the whole population and rounds sample
-- clients uniformly, so a round's count varies (hypergeometric); with
-- per_round = true every round samples exactly round(fraction *
-- clients_per_round) adversaries and the rest honest clients. The
-- `adversaries` metric reports the count; mistakes name the field; and the
-- defences tuned for f adversaries hold at f and give way above it (why the
-- distinction matters).
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 0, beta = 0, devices = 40, seed = 3 }
local parts = fm.partition.iid(tr, { clients = 40, seed = 3 })

local function cfg(t)
  local c = {
    model = fm.model.logreg { 60, 10 }, train = parts, test = te,
    rounds = 10, clients_per_round = 10, seed = 3, quiet = true,
    threads = 2, round_timeout = 60, attack = "gaussian",
    local_training = { epochs = 1, batch = 20, lr = 0.01 },
  }
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end
local function run(t) return fm.experiment(cfg(t)):simulate() end

local function counts(r)
  local c = {}
  for i, row in ipairs(r.rounds) do c[i] = row.adversaries end
  return c
end

-- 1. population fraction (default): 8 of 40 clients are adversarial, a
-- round of 10 gets between 0 and 8 of them, not always the same number
local uni = run { adversaries = { fraction = 0.2 } }
local cu = counts(uni)
print("uniform sampling, adversaries per round: " .. table.concat(cu, " "))
local lo, hi = math.huge, -math.huge
for i, k in ipairs(cu) do
  assert(math.type(k) == "float" or math.type(k) == "integer",
    "round " .. i .. " reports adversaries")
  assert(k >= 0 and k <= 8, "round " .. i .. ": " .. k .. " adversaries")
  lo, hi = math.min(lo, k), math.max(hi, k)
end
assert(lo < hi, "uniform sampling: the count varies between rounds")

-- 2. per_round: exactly round(0.2 * 10) = 2 in every round, reproducibly
local fixed = run { adversaries = { fraction = 0.2, per_round = true } }
local cf = counts(fixed)
print("per_round sampling, adversaries per round: " .. table.concat(cf, " "))
assert(#cf == 10)
for i, k in ipairs(cf) do
  assert(k == 2, "per_round: round " .. i .. " has " .. k .. " adversaries")
  assert(fixed.rounds[i].clients == 10 and fixed.rounds[i].updates == 10,
    "per_round: round " .. i .. " trains 10 clients")
end
local again = run { adversaries = { fraction = 0.2, per_round = true } }
for i, row in ipairs(again.rounds) do
  assert(row.accuracy == fixed.rounds[i].accuracy, "per_round is seeded")
end
-- 0.25 * 10 = 2.5 rounds to 3; listed clients join the adversarial set
local f3 = run { rounds = 3, adversaries = { fraction = 0.25, per_round = true,
  clients = { 1, 2 } } }
for i, k in ipairs(counts(f3)) do assert(k == 3, "round " .. i .. ": " .. k) end
-- per_round = false is the default; a run without an attack has no count
local off = run { rounds = 3, adversaries = { fraction = 0.2, per_round = false } }
for i, k in ipairs(counts(off)) do assert(k == cu[i], "per_round = false") end
local plain = cfg { rounds = 1 }
plain.attack = nil
assert(fm.experiment(plain):simulate().rounds[1].adversaries == nil,
  "no adversaries, no count")

-- 3. hierarchical topologies sample the same way (edges take contiguous
-- client ranges of the ascending sample)
local h = run { rounds = 3, adversaries = { fraction = 0.3, per_round = true },
  topology = fm.topology.hierarchical { fanouts = { 4, 10 }, every = { 1, 1 } } }
for i, k in ipairs(counts(h)) do assert(k == 3, "hierarchical round " .. i) end

-- 4. mistakes name the field
local function fails(pat, t)
  local ok, e = pcall(fm.experiment, cfg(t))
  assert(not ok and tostring(e):find(pat),
    "expected /" .. pat .. "/, got: " .. tostring(e))
end
fails("adversaries: field 'per_round' must be a boolean",
  { adversaries = { fraction = 0.2, per_round = 1 } })
fails("adversaries: per_round = true needs 'fraction'",
  { adversaries = { clients = { 1, 2 }, per_round = true } })
local many = {}
for i = 1, 35 do many[i] = i end -- 35 adversarial leave 5 honest of 40
fails("adversaries: per_round: fraction 0.2 of clients_per_round 10 leaves "
  .. "8 honest clients a round, but only 5 of the 40 clients are honest",
  { adversaries = { fraction = 0.2, clients = many, per_round = true } })
fails("adversaries: unknown field 'per_rounds' %(did you mean 'per_round'%?%)",
  { adversaries = { fraction = 0.2, per_rounds = true } })
local ok, e = pcall(fm.experiment, {
  topology = fm.topology.ring { peers = 40 }, model = fm.model.logreg { 60, 10 },
  train = parts, test = te, quiet = true,
  adversaries = { fraction = 0.2, per_round = true },
})
assert(not ok and tostring(e):find("adversaries: 'per_round' is for star and "
  .. "hierarchical topologies", 1, true), tostring(e))

-- 5. why it matters: Multi-Krum (f = 4, m = 16) and trimmed mean (beta =
-- 0.2: 4 values cut from each end) of 20 updates drop 4 noise updates but
-- not 6 (5 of them on one side of a coordinate leave one in the mean)
local function updates(nadv)
  local u = {}
  for i = 1, 20 do
    local w = { 1 + i / 100, -1 - i / 100 }
    if i <= nadv then -- noise: all but one of them pushed up
      local s = i < nadv and 1e4 or -1e4
      w = { s * (1 + i / 10), s * (1 + i / 10) }
    end
    u[i] = { weights = w, num_examples = 1 }
  end
  return u
end
local function far(g) return math.abs(g[1]) > 10 or math.abs(g[2]) > 10 end
for _, d in ipairs { { "multikrum", f = 4, m = 16 }, { "trimmed_mean", beta = 0.2 } } do
  local name = d[1]
  d[1] = nil
  local g4 = fm.aggregate(name, updates(4), d)
  local g6 = fm.aggregate(name, updates(6), d)
  print(string.format("%s: 4 noise updates -> %.3g, %.3g; 6 -> %.3g, %.3g",
    name, g4[1], g4[2], g6[1], g6[2]))
  assert(not far(g4), name .. " drops 4 noise updates of 20")
  assert(far(g6), name .. " keeps noise when 6 of 20 are noise")
end
print("adversaries: all checks passed")
