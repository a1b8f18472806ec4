-- dp_experiment_test.lua: differential privacy inside fm.experiment
-- (docs/privacy.md): epsilon and delta in every round's metrics for each
-- mechanism and sampling, the stop at max_epsilon, Poisson sampling,
-- DP-SGD's example-level epsilon, seeded and secure noise, and the
-- load-time refusals.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 0, beta = 0, devices = 40, seed = 3 }
local parts = fm.partition.iid(tr, { clients = 40, seed = 3 })

local function cfg(t)
  local c = { model = fm.model.logreg { 60, 10 }, train = parts, test = te,
    rounds = 6, clients_per_round = 8, seed = 3, quiet = true,
    local_training = { epochs = 1, batch = 10, lr = 0.05 } }
  for k, v in pairs(t or {}) do
    if v == false then c[k] = nil else c[k] = v end -- false: leave it out
  end
  return c
end
local function run(t) return fm.experiment(cfg(t)):simulate() end
local function fails(t, want)
  local ok, err = pcall(run, t)
  assert(not ok, "expected an error containing: " .. want)
  assert(tostring(err):find(want, 1, true),
    "error '" .. tostring(err) .. "' does not say: " .. want)
end
local function increasing(rounds, key)
  for i = 2, #rounds do
    assert(rounds[i][key] >= rounds[i - 1][key],
      string.format("%s fell from %g to %g at round %d", key,
        rounds[i - 1][key], rounds[i][key], i))
  end
end

local fixed = { "dp_fixed", clip = 1, noise_multiplier = 1.1 }

-- 1. central DP, uniform (fixed-size) sampling: epsilon grows every round
-- (one release a round), delta is the default, the noise std on the
-- mean is z C / clients_per_round
local u = run { privacy = fixed }
for i, r in ipairs(u.rounds) do
  assert(r.epsilon > 0 and r.delta == 1e-5, "round " .. i)
  assert(math.abs(r.dp_noise_std - 1.1 / 8) < 1e-12, r.dp_noise_std)
  if i > 1 then assert(r.epsilon > u.rounds[i - 1].epsilon) end
end
assert(u.epsilon == u.rounds[#u.rounds].epsilon and u.budget_spent == false)
print(string.format("dp_fixed, uniform: epsilon %.4f after %d rounds",
  u.epsilon, #u.rounds))

-- 2. Poisson sampling: the count of a round varies around
-- clients_per_round; the same noise buys a smaller epsilon than
-- replace-one fixed-size sampling, and the PRV accountant's is smaller
-- still than RDP's
local p = run { privacy = fixed, client_sampling = "poisson", rounds = 30 }
local sum, differ = 0, false
for _, r in ipairs(p.rounds) do
  sum = sum + r.updates
  differ = differ or r.updates ~= p.rounds[1].updates
  -- the mean divides by the expected count, not the sampled one
  assert(math.abs(r.dp_noise_std - 1.1 / 8) < 1e-12, r.dp_noise_std)
end
assert(differ, "Poisson sampling drew the same count every round")
assert(math.abs(sum / 30 - 8) < 2.5, "mean count " .. sum / 30)
assert(p.rounds[6].epsilon < u.rounds[6].epsilon)
local v = run { privacy = fixed, client_sampling = "poisson",
  accountant = "prv" }
for i = 1, 6 do
  assert(v.rounds[i].epsilon < p.rounds[i].epsilon, "prv round " .. i)
  assert(v.rounds[i].accuracy == p.rounds[i].accuracy) -- accounting only
end
print(string.format("dp_fixed, Poisson: rdp %.4f, prv %.4f after 6 rounds",
  p.rounds[6].epsilon, v.rounds[6].epsilon))

-- the rows' epsilon is fm.privacy.epsilon of the same release (q = 8/40)
local function near(a, b) return math.abs(a - b) <= 1e-9 * math.max(1, b) end
for _, c in ipairs { { u, "fixed", "rdp" }, { p, "poisson", "rdp" },
    { v, "poisson", "prv" } } do
  local want = fm.privacy.epsilon { noise_multiplier = 1.1,
    sample_rate = 8 / 40, steps = 6, delta = 1e-5, sampling = c[2],
    accountant = c[3] }
  assert(near(c[1].rounds[6].epsilon, want), string.format("%s %s: %g vs %g",
    c[2], c[3], c[1].rounds[6].epsilon, want))
end

-- 3. max_epsilon: the run stops before the round that would exceed it
local cap = (u.rounds[3].epsilon + u.rounds[4].epsilon) / 2
local s = run { privacy = fixed, max_epsilon = cap }
assert(#s.rounds == 3 and s.budget_spent == true, #s.rounds)
assert(s.epsilon <= cap and u.rounds[4].epsilon > cap)
for i = 1, 3 do assert(s.rounds[i].accuracy == u.rounds[i].accuracy) end
fails({ privacy = fixed, max_epsilon = u.rounds[1].epsilon / 2 },
  "spent by the first round alone")

-- 4. adaptive clipping: the clip norm moves, epsilon is accounted
local a = run { privacy = { "dp_adaptive", noise_multiplier = 1.1,
  clipped_count_stddev = 2 } }
assert(a.rounds[6].dp_clip ~= a.rounds[1].dp_clip)
increasing(a.rounds, "epsilon")

-- 5. local DP: per-release noise, epsilon of the most releases any
-- client made (no amplification), never below one release's
local l = run { privacy = { "dp_local", clip = 1, epsilon = 1 } }
increasing(l.rounds, "epsilon")
assert(l.rounds[1].epsilon > 0 and l.rounds[1].epsilon <= 1)

-- 6. DP-SGD on the clients: example-level epsilon (and the bound without
-- amplification, above it), the same noise for the same seed, fresh
-- noise with secure_noise
local dp = { epochs = 1, batch = 10, lr = 0.05,
  dp = { clip = 1, noise_multiplier = 1.1 } }
local d1 = run { local_training = dp }
local d2 = run { local_training = dp }
local d3 = run { local_training = dp, secure_noise = true }
increasing(d1.rounds, "epsilon")
for i, r in ipairs(d1.rounds) do
  assert(r.epsilon_no_sampling > r.epsilon, "round " .. i)
  assert(r.accuracy == d2.rounds[i].accuracy, "seeded DP-SGD differs")
  assert(r.epsilon == d3.rounds[i].epsilon)
end
local same = true
for i = 1, 6 do same = same and d3.rounds[i].loss == d1.rounds[i].loss end
assert(not same, "secure noise repeated the seeded noise")
-- with a mechanism too: its epsilon is the run's, DP-SGD's beside it
local both = run { local_training = dp, privacy = fixed }
assert(both.rounds[6].epsilon == u.rounds[6].epsilon)
assert(both.rounds[6].example_epsilon == d1.rounds[6].epsilon)

-- 7. what is refused, and why
fails({ max_epsilon = 3 }, "no privacy mechanism")
fails({ privacy = fixed, accountant = "prv" }, "assumes Poisson")
fails({ privacy = fixed, accountant = "moments" }, "use \"rdp\"")
fails({ privacy = fixed, client_sampling = "stratified" }, "\"poisson\"")
fails({ privacy = fixed, delta = 1 }, "delta = 1 must be in (0, 1)")
fails({ privacy = fixed, max_epsilon = -1 }, "'max_epsilon' = -1 is out of range")
fails({ privacy = { "dp_fixed", clip = 0 } }, "clip")
fails({ privacy = fixed, defence = "krum" }, "defence 'krum'")
fails({ privacy = fixed, topology = fm.topology.hierarchical {
  fanouts = { 4, 10 } } }, "in a hierarchy")
fails({ client_sampling = "poisson", topology = fm.topology.hierarchical {
  fanouts = { 4, 10 } } }, "runs in a star")
fails({ local_training = { dp = { clip = 0 } } }, "clip must be > 0")
fails({ local_training = { dp = { clip = 1, sigma = 1 } } }, "sigma")
fails({ local_training = dp, accountant = "prv" }, "accounted with RDP")
fails({ privacy = fixed, topology = fm.topology.ring { peers = 40 },
  clients_per_round = false, consensus = "gossip" }, "only local DP")
-- local DP on peers: every peer releases once a round
local g = run { privacy = { "dp_local", clip = 1, noise_multiplier = 3 },
  topology = fm.topology.ring { peers = 40 }, clients_per_round = false,
  consensus = "gossip", rounds = 4 }
increasing(g.rounds, "epsilon")
assert(g.rounds[4].epsilon > g.rounds[1].epsilon)
print("dp_experiment: all checks passed")
