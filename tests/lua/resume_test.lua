-- resume_test.lua: a simulation stopped after round 3 and resumed to round
-- 6 from its checkpoint is the uninterrupted 6-round run, bit for bit
-- (every row and the final model file), for every stateful server
-- optimizer (FedAdam, FedYogi, FedAdagrad, FedAvgM with momentum),
-- SCAFFOLD (the server's c in the checkpoint, the simulated clients' c_i
-- in its client state), centered clipping's center, and hierarchical
-- trees (every aggregator's model and optimizer state). A model-only
-- (format 1) checkpoint is still read, and for a stateful plugin it gives
-- another run: the comparison can fail. Truncated, corrupt and foreign
-- checkpoints are refused, and the refusal leaves the file as it was.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 1, beta = 1, devices = 20, seed = 4 }
local parts = fm.partition.dirichlet(tr, { clients = 20, alpha = 0.3, seed = 4 })

local function exp(t)
  local cfg = {
    model = fm.model.mlp { 60, 16, 10 }, train = parts, test = te,
    rounds = 6, clients_per_round = 5, seed = 7, threads = 2, quiet = true,
    local_training = { epochs = 2, batch = 10, lr = 0.05 },
  }
  for k, v in pairs(t or {}) do cfg[k] = v end
  return fm.experiment(cfg)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function expect_error(f, pattern)
  local ok, err = pcall(f)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):find(pattern), "error '" .. tostring(err) ..
    "' does not match " .. pattern)
end

local keys = { "accuracy", "loss", "train_loss", "bytes_sent", "bytes_received",
  "updates", "dropped", "scaffold_c_norm", "edge_divergence", "root_aggregated",
  "defence_kept" }

-- the rows and the final model (its file) are the same bits
local function same(a, b, what)
  assert(#a.rounds == #b.rounds, what .. ": round count")
  for i, x in ipairs(a.rounds) do
    local y = b.rounds[i]
    for _, k in ipairs(keys) do
      assert(x[k] == y[k] or (x[k] ~= x[k] and y[k] ~= y[k]),
        string.format("%s: round %d %s: %.17g uninterrupted vs %.17g resumed",
          what, i, k, x[k] or -1, y[k] or -1))
    end
  end
  a.model:save("a.fmm")
  b.model:save("b.fmm")
  assert(read("a.fmm") == read("b.fmm"), what .. ": final models differ")
end

-- stop after round 3, resume to 6; returns the resumed result
local function resumed(t, path)
  os.remove(path)
  local first = {}
  for k, v in pairs(t) do first[k] = v end
  first.rounds, first.checkpoint = 3, path
  exp(first):simulate()
  local again = {}
  for k, v in pairs(t) do again[k] = v end
  again.checkpoint, again.resume = path, true
  return exp(again):simulate()
end

local cases = {
  { "fedadam", { aggregator = { "fedadam", lr = 0.02 } } },
  { "fedyogi", { aggregator = { "fedyogi", lr = 0.02 } } },
  { "fedadagrad", { aggregator = { "fedadagrad", lr = 0.05 } } },
  { "fedavgm", { aggregator = { "fedavgm", lr = 1, momentum = 0.9 } } },
  { "scaffold", { aggregator = "scaffold" } },
  { "centered_clipping", { defence = { "centered_clipping", tau = 1 } } },
}
local sizes = {}
for _, c in ipairs(cases) do
  local name, t = c[1], c[2]
  local straight = exp(t):simulate()
  same(straight, resumed(t, name .. ".ckpt"), name)
  sizes[#sizes + 1] = string.format("%s %d", name, #read(name .. ".ckpt"))
end

-- SCAFFOLD's clients come back (5 of 20 a round): c_i is what made the
-- resume exact. Without it (and without c: a model-only, format-1
-- checkpoint, as older fedmesh wrote) the resumed run is another one.
local function v1_of(path, nparams)
  local s = read(path)
  local metrics = string.unpack("<I4", s, 13)
  local nrounds = string.unpack("<I4", s, 33)
  local body = 40 + 4 * nparams + metrics * nrounds
  return s:sub(1, 4) .. string.pack("<I4", 1) .. s:sub(9, 36) ..
    string.pack("<I4", 0) .. s:sub(41, body)
end
local nparams = 60 * 16 + 16 + 16 * 10 + 10
for _, name in ipairs { "scaffold", "fedadam" } do
  local t = cases[name == "scaffold" and 5 or 1][2]
  local straight = exp(t):simulate()
  exp { rounds = 3, checkpoint = "v1.ckpt", aggregator = t.aggregator }:simulate()
  write("v1.ckpt", v1_of("v1.ckpt", nparams))
  local old = exp { checkpoint = "v1.ckpt", resume = true, aggregator = t.aggregator }:simulate()
  assert(#old.rounds == 6 and old.rounds[3].loss == straight.rounds[3].loss,
    name .. ": a format-1 checkpoint is read (model and rows)")
  assert(old.rounds[6].loss ~= straight.rounds[6].loss,
    name .. ": without the plugin state the resume is not exact")
end
-- a stateless run resumes exactly from a format-1 checkpoint too
exp { rounds = 3, checkpoint = "v1.ckpt" }:simulate()
write("v1.ckpt", v1_of("v1.ckpt", nparams))
same(exp():simulate(), exp { checkpoint = "v1.ckpt", resume = true }:simulate(),
  "fedavg from format 1")

-- hierarchical: cloud FedAdam over FedAvg edges with SCAFFOLD, the root
-- every 2 rounds; stopped after round 3 (the root did not aggregate:
-- the edges' mean is what the run reports) and after round 4
local function tree()
  local t = fm.topology.hierarchical { fanouts = { 4, 5 }, every = { 2, 1 } }
  t.aggregators = { { "fedadam", lr = 0.02 }, "fedavg" }
  return t
end
local h = { topology = tree(), aggregator = "scaffold", clients_per_round = 8 }
local hstraight = exp(h):simulate()
same(hstraight, resumed(h, "hier.ckpt"), "hierarchical")
sizes[#sizes + 1] = string.format("hierarchical %d", #read("hier.ckpt"))
local h4 = { topology = tree(), aggregator = "scaffold", clients_per_round = 8 }
os.remove("hier4.ckpt")
exp { topology = tree(), aggregator = "scaffold", clients_per_round = 8,
  rounds = 4, checkpoint = "hier4.ckpt" }:simulate()
h4.checkpoint, h4.resume = "hier4.ckpt", true
same(hstraight, exp(h4):simulate(), "hierarchical after a root round")
-- three levels, an inner FedYogi
local t3 = fm.topology.hierarchical { fanouts = { 2, 2, 5 }, every = { 3, 2, 1 } }
t3.aggregators = { "fedavg", { "fedyogi", lr = 0.02 }, "fedavg" }
local h3 = { topology = t3, clients_per_round = 6 }
same(exp(h3):simulate(), resumed(h3, "hier3.ckpt"), "three levels")
-- a finished run resumed: nothing left to run, the same final model (the
-- edges' mean of round 3)
os.remove("hier3r.ckpt")
local three = exp { topology = tree(), aggregator = "scaffold", clients_per_round = 8,
  rounds = 3, checkpoint = "hier3r.ckpt" }:simulate()
local done = exp { topology = tree(), aggregator = "scaffold", clients_per_round = 8,
  rounds = 3, checkpoint = "hier3r.ckpt", resume = true }:simulate()
same(three, done, "hierarchical, nothing left to run")
assert(three.rounds[3].root_aggregated == 0, "round 3 ends without the root")

-- refusals: each names the problem, and the checkpoint is left as it was
local good = read("fedadam.ckpt")
local adam = cases[1][2]
local function refused(bytes, pattern, t)
  write("bad.ckpt", bytes)
  local c = { checkpoint = "bad.ckpt", resume = true }
  for k, v in pairs(t or adam) do c[k] = v end
  expect_error(function() exp(c):simulate() end, pattern)
  assert(read("bad.ckpt") == bytes, "a refused checkpoint is not touched")
end
refused(good:sub(1, #good - 100), "truncated")
refused(good:sub(1, 20), "shorter than a header")
refused(good .. "x", "wrong size for what its header says")
local mid = #good // 2
refused(good:sub(1, mid - 1) .. string.char((good:byte(mid) + 1) % 256) ..
  good:sub(mid + 1), "is corrupt")
refused("not a checkpoint at all, just some text in a file of this size",
  "is not a fedmesh checkpoint")
refused(good:sub(1, 4) .. string.pack("<I4", 3) .. good:sub(9), "format 3")
refused(good, "belongs to a run with other plugins",
  { aggregator = { "fedyogi", lr = 0.02 } })
refused(good, "holds no state for defence 'centered_clipping'",
  { aggregator = adam.aggregator, defence = { "centered_clipping", tau = 1 } })
refused(good, "belongs to another run", { aggregator = adam.aggregator, seed = 8 })
local other = fm.topology.hierarchical { fanouts = { 2, 10 }, every = { 2, 1 } }
other.aggregators = { { "fedadam", lr = 0.02 }, "fedavg" }
refused(read("hier.ckpt"), "another federation shape",
  { topology = other, aggregator = "scaffold", clients_per_round = 8 })
refused(read("scaffold.ckpt"), "which this run does not have", { aggregator = "fedavg" })
-- format 1 holds no tree
write("v1h.ckpt", v1_of("hier.ckpt", nparams))
expect_error(function()
  exp { topology = tree(), aggregator = "scaffold", clients_per_round = 8,
    checkpoint = "v1h.ckpt", resume = true }:simulate()
end, "a hierarchical run needs every aggregator's model")

for _, f in ipairs { "fedadam", "fedyogi", "fedadagrad", "fedavgm", "scaffold",
  "centered_clipping", "v1", "hier", "hier4", "hier3", "hier3r", "bad", "v1h" } do
  os.remove(f .. ".ckpt")
end
os.remove("a.fmm")
os.remove("b.fmm")
print("resume exact; checkpoint bytes: " .. table.concat(sizes, ", "))
