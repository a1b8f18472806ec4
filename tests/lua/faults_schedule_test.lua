-- faults_schedule_test.lua: simulated dropouts and stragglers (faults =
-- { ... }), deterministic whatever the thread count; learning-rate
-- schedules for local training (the lr travels to the clients) and for
-- server optimizers (fm_round.lr_scale reaches the plugin).
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 0, beta = 0, devices = 20, seed = 3 }
local parts = fm.partition.iid(tr, { clients = 20, seed = 3 })
local sizes = parts:sizes()

local function cfg(t)
  local c = {
    model = fm.model.logreg { 60, 10 }, train = parts, test = te,
    rounds = 5, clients_per_round = 10, seed = 3, quiet = true,
    local_training = { epochs = 1, batch = 10, lr = 0.05 },
  }
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end
local function run(t) return fm.experiment(cfg(t)):simulate() end
local function count(row, status)
  local n = 0
  for _, p in ipairs(row.participants) do
    if p.status == status then n = n + 1 end
  end
  return n
end

-- 1. faults: round(0.2 * 10) = 2 dropouts and round(0.1 * 10) = 1
-- straggler every round; the quorum of 5 is met, the round proceeds
local faults = { dropout = 0.2, straggler = 0.1, seed = 11 }
local function faulty(threads, extra)
  local t = { faults = faults, min_updates = 5, threads = threads,
              metrics = { clients = true } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return run(t)
end
local a, b = faulty(1), faulty(2)
for i, row in ipairs(a.rounds) do
  assert(row.clients == 10 and row.updates == 7, "7 updates")
  assert(row.dropped == 2 and row.stragglers == 1, "2 dropped, 1 late")
  assert(count(row, "dropped") == 2 and count(row, "straggler") == 1)
  assert(count(row, "kept") == 7)
  for _, p in ipairs(row.participants) do
    if p.status == "dropped" then
      assert(p.examples == nil and p.loss == nil and p.norm == nil)
    else -- stragglers trained too: their update came late
      assert(p.examples == sizes[p.client] and p.norm > 0)
    end
  end
  -- the same with two threads, bit for bit
  local o = b.rounds[i]
  for _, k in ipairs { "accuracy", "loss", "train_loss", "updates", "dropped",
                       "stragglers", "bytes_sent", "bytes_received", "lr" } do
    assert(row[k] == o[k], k .. " depends on the thread count")
  end
  for j, p in ipairs(row.participants) do
    local q = o.participants[j]
    assert(p.client == q.client and p.status == q.status and
           p.norm == q.norm and p.loss == q.loss, "participants")
  end
end
-- another fault seed picks other clients; the run seed's samples stay
local c2 = faulty(2, { faults = { dropout = 0.2, straggler = 0.1, seed = 12 } })
local differ = false
for i, row in ipairs(a.rounds) do
  assert(c2.rounds[i].dropped == 2 and c2.rounds[i].stragglers == 1)
  for j, p in ipairs(row.participants) do
    local q = c2.rounds[i].participants[j]
    assert(p.client == q.client, "same clients sampled")
    if p.status ~= q.status then differ = true end
  end
end
assert(differ, "the fault seed chooses")
-- the faults change the run (fewer updates aggregated)
local clean = run { min_updates = 5 }
assert(clean.rounds[5].loss ~= a.rounds[5].loss)
-- A run in which no round aggregated is an error (its rows still reach
-- on_round): rows of such runs, and the error's reason.
local function failing(t, why)
  local rows = {}
  t.on_round = function(r) rows[#rows + 1] = r end
  local ok, err = pcall(run, t)
  assert(not ok and tostring(err):find("no round of 5 aggregated", 1, true)
    and tostring(err):find(why, 1, true), tostring(err))
  assert(#rows == 5)
  return rows
end
-- A quorum that the fault plan leaves out of reach is refused before
-- round 1 (so many fail in every round: no round could aggregate).
local function refused(t, why)
  local ok, err = pcall(run, t)
  assert(not ok and tostring(err):find(why, 1, true), tostring(err))
end
refused({ faults = { dropout = 0.1 } }, "faults: 1 of the 10 clients sampled "
  .. "each round drop out and 0 arrive late, so 9 updates a round arrive in "
  .. "time, below the quorum of 10 (min_updates, by default every sampled "
  .. "client): no round could aggregate")
refused({ faults = { dropout = 0.5, straggler = 0.5 }, min_updates = 1 },
  "so 0 updates a round arrive in time, below the quorum of 1 (min_updates): no round could aggregate; lower dropout and straggler")
-- updates that arrived in time but were not aggregated are "unused": an
-- aggregator that fails every round (the test plugin never_finishes)
local q = failing({ aggregator = "never_finishes", metrics = { clients = true } },
  "aggregator never_finishes failed: never_finishes never finishes")
for _, row in ipairs(q) do
  assert(row.updates == 10 and row.dropped == 0 and row.stragglers == 0)
  assert(row.loss == q[1].loss, "the model stays")
  assert(count(row, "unused") == 10 and count(row, "kept") == 0,
    "on time but not aggregated")
end

-- 2. local learning-rate schedules: the row's lr follows the formula
local function near(x, y) return math.abs(x - y) <= 1e-6 * math.abs(y) end
local base = 0.05
local scheds = {
  { { "step", every = 2, gamma = 0.5 },
    function(r) return base * 0.5 ^ ((r - 1) // 2) end },
  { { "exponential", gamma = 0.9 },
    function(r) return base * 0.9 ^ (r - 1) end },
  { { "cosine", rounds = 3, min_lr = 0.01 },
    function(r)
      local t = math.min(r - 1, 3)
      return 0.01 + (base - 0.01) * (1 + math.cos(math.pi * t / 3)) / 2
    end },
  { { "constant" }, function() return base end },
}
local none_sched = run()
for _, s in ipairs(scheds) do
  local res = run { local_training = { epochs = 1, batch = 10, lr = base,
                                       lr_schedule = s[1] } }
  for r, row in ipairs(res.rounds) do
    assert(near(row.lr, s[2](r)), string.format("%s round %d: lr %g, want %g",
      s[1][1], r, row.lr, s[2](r)))
  end
  if s[1][1] == "constant" then -- bit-identical to no schedule
    for r, row in ipairs(res.rounds) do
      assert(row.loss == none_sched.rounds[r].loss)
      assert(row.train_loss == none_sched.rounds[r].train_loss)
    end
  else -- the clients train with it
    assert(res.rounds[1].train_loss == none_sched.rounds[1].train_loss)
    assert(res.rounds[5].loss ~= none_sched.rounds[5].loss, s[1][1])
  end
end
for _, row in ipairs(none_sched.rounds) do assert(near(row.lr, base)) end

-- 3. server learning-rate schedules reach the plugin (fm_round.lr_scale)
local agg = { "fedavgm", lr = 1.0, momentum = 0.9 }
local m0 = run { aggregator = agg }
local m1 = run { aggregator = agg, server_lr_schedule = { "exponential", gamma = 0.5 } }
local mc = run { aggregator = agg, server_lr_schedule = { "constant" } }
local m2 = run { aggregator = agg, server_lr_schedule = { "cosine", rounds = 4, min_scale = 0.1 } }
assert(m1.rounds[1].loss == m0.rounds[1].loss, "round 1 has scale 1")
assert(m1.rounds[5].loss ~= m0.rounds[5].loss, "the schedule is used")
assert(m2.rounds[5].loss ~= m0.rounds[5].loss and m2.rounds[5].loss ~= m1.rounds[5].loss)
for r, row in ipairs(mc.rounds) do
  assert(row.loss == m0.rounds[r].loss and row.accuracy == m0.rounds[r].accuracy,
    "constant schedule: the same bits")
  assert(near(row.lr, base), "lr is the local one")
end
local s0 = run { aggregator = { "scaffold", lr = 1.0 } }
local s1 = run { aggregator = { "scaffold", lr = 1.0 },
                 server_lr_schedule = { "step", every = 1, gamma = 0.5 } }
assert(s1.rounds[5].loss ~= s0.rounds[5].loss, "scaffold scales its lr")

-- 4. refusals, each with its message
local function refuses(t, pattern)
  local c = cfg(t)
  if c.topology then c.clients_per_round = nil end -- peer-to-peer
  local ok, err = pcall(fm.experiment, c)
  assert(not ok, "expected an error matching " .. pattern)
  assert(err:find(pattern, 1, true), "error '" .. err .. "' does not match " .. pattern)
end
local function lsched(s) return { local_training = { lr = 0.1, lr_schedule = s } } end
local L = "fm.experiment: local_training.lr_schedule: "
refuses(lsched("cosine"), L .. "expected { kind, ... }, e.g. { \"cosine\", rounds = 50, min_lr = 0.001 }")
refuses(lsched({ rounds = 5 }), L .. "the schedule's kind comes first: \"step\", \"exponential\", \"cosine\" or \"constant\"")
refuses(lsched({ "linear" }), L .. "unknown schedule 'linear' (step, exponential, cosine, constant)")
refuses(lsched({ "step", gamma = 0.5 }), L .. "\"step\" needs 'every' (rounds between two decays)")
refuses(lsched({ "step", every = 0, gamma = 0.5 }), L .. "field 'every' = 0 is out of range [1, 100000000]")
refuses(lsched({ "step", every = 2 }), L .. "\"step\" needs 'gamma', e.g. { \"step\", every = 10, gamma = 0.5 }")
refuses(lsched({ "step", every = 2, gamma = 0 }), L .. "'gamma' must be in (0, 1], got 0")
refuses(lsched({ "exponential", gamma = 1.5 }), L .. "'gamma' must be in (0, 1], got 1.5")
refuses(lsched({ "exponential", gamma = "fast" }), L .. "field 'gamma' must be a number, got string")
refuses(lsched({ "exponential", gamma = 0.9, every = 3 }), L .. "unknown field 'every'")
refuses(lsched({ "cosine", min_lr = 0.01 }), L .. "\"cosine\" needs 'rounds'")
refuses(lsched({ "cosine", rounds = 10, min_lr = 0.5 }), L .. "min_lr = 0.5 exceeds lr = 0.1")
refuses(lsched({ "cosine", rounds = 10, min_lr = -1 }), L .. "field 'min_lr' = -1 is out of range")
refuses(lsched({ "cosine", rounds = 10, min_scale = 0.1 }), L .. "unknown field 'min_scale'")
refuses(lsched({ "constant", gamma = 1 }), L .. "unknown field 'gamma'")
local S = "fm.experiment: server_lr_schedule: "
refuses({ aggregator = agg, server_lr_schedule = { "cosine", rounds = 5, min_lr = 0.1 } },
  S .. "unknown field 'min_lr' (valid fields: rounds, min_scale)")
refuses({ aggregator = agg, server_lr_schedule = { "cosine", rounds = 5, min_scale = 2 } },
  S .. "field 'min_scale' = 2 is out of range [0, 1]")
refuses({ server_lr_schedule = { "constant" } },
  S .. "aggregator 'fedavg' has no server learning rate (lr) to schedule")
refuses({ aggregator = "fedprox", server_lr_schedule = { "constant" } },
  S .. "aggregator 'fedprox' has no server learning rate (lr) to schedule")
local F = "fm.experiment: faults: "
refuses({ faults = 0.1 }, F .. "expected a table, e.g. { dropout = 0.1, straggler = 0.1, seed = 7 }")
refuses({ faults = { dropout = 1.5 } }, F .. "field 'dropout' = 1.5 is out of range [0, 1]")
refuses({ faults = { straggler = -0.1 } }, F .. "field 'straggler' = -0.1 is out of range [0, 1]")
refuses({ faults = { dropout = 0.6, straggler = 0.5 } },
  F .. "dropout + straggler = 0.6 + 0.5 is more than all the sampled clients (at most 1)")
refuses({ faults = { dropuot = 0.1 } }, F .. "unknown field 'dropuot' (did you mean 'dropout'?)")
refuses({ faults = { seed = 1.5 } }, F .. "field 'seed' must be an integer, got a fraction")
local ring = fm.topology.ring { peers = 20 }
refuses({ topology = ring, faults = { dropout = 0.1 } },
  "fm.experiment: 'faults' is for star and hierarchical federations, not peer-to-peer topologies")
refuses({ topology = ring, local_training = { lr_schedule = { "constant" } } },
  "fm.experiment: local_training.lr_schedule is for star and hierarchical federations")
print("faults and schedules: ok")
