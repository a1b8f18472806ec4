-- fedprox_scaffold_test.lua: the client-side aggregators inside a
-- federation (simulation): FedProx with mu = 0 is FedAvg bit for bit and a
-- large mu holds clients near the global model; SCAFFOLD's control
-- variates travel, persist per client whatever worker trains it, and cut
-- the test loss on heterogeneous data; parameters are checked.
local fm = require "fedmesh"

-- FedProx's synthetic(1, 1) (heterogeneous devices), labels skewed further
-- by a Dirichlet(0.1) partition
local tr, te = fm.data.synthetic { alpha = 1, beta = 1, devices = 30, seed = 3 }
local parts = fm.partition.dirichlet(tr, { clients = 30, alpha = 0.1, seed = 3 })

local function run(agg, extra)
  local cfg = {
    model = fm.model.logreg { 60, 10 }, train = parts, test = te,
    rounds = 20, clients_per_round = 10, seed = 3, quiet = true,
    round_timeout = 60, aggregator = agg,
    local_training = { epochs = 5, batch = 10, lr = 0.01 },
  }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return fm.experiment(cfg):simulate()
end

local function same(a, b, what)
  assert(#a.rounds == #b.rounds, what .. ": round count")
  for i, x in ipairs(a.rounds) do
    local y = b.rounds[i]
    assert(x.loss == y.loss and x.train_loss == y.train_loss and
      x.accuracy == y.accuracy, string.format("%s: round %d differs " ..
      "(loss %.9g vs %.9g)", what, i, x.loss, y.loss))
  end
end

local fedavg = run "fedavg"

-- 1. FedProx: mu = 0 adds nothing; mu > 0 changes the local steps
same(fedavg, run { "fedprox", mu = 0 }, "fedprox mu = 0 vs fedavg")
local prox = run { "fedprox", mu = 1 }
assert(prox.rounds[1].loss ~= fedavg.rounds[1].loss, "mu = 1 changes training")
-- lr mu = 0.5: each step pulls half-way back to the global model, so the
-- first round moves the model far less than FedAvg does
local tight = run { "fedprox", mu = 50 }
local init = run("fedavg", { rounds = 1, local_training = { epochs = 1,
  batch = 10, lr = 0 } }).rounds[1].loss
local moved_avg = math.abs(fedavg.rounds[1].loss - init)
local moved_tight = math.abs(tight.rounds[1].loss - init)
print(string.format("round-1 loss change: fedavg %.4f, fedprox mu=50 %.4f",
  moved_avg, moved_tight))
assert(moved_tight < 0.5 * moved_avg, "a large mu holds the model back")

-- 2. SCAFFOLD: the server's c grows from zero; the result does not depend
-- on which worker trained which client (the clients' c_i live in a store
-- shared by the workers)
local sc = run "scaffold"
assert(sc.rounds[1].scaffold_c_norm > 0, "c after round 1")
for i, r in ipairs(sc.rounds) do
  assert(r.updates == 10, string.format("round %d: %s updates", i,
    tostring(r.updates)))
end
same(sc, run("scaffold", { threads = 1 }), "scaffold, 1 thread")
same(sc, run("scaffold", { threads = 3 }), "scaffold, 3 threads")
print(string.format("test loss after 20 rounds: fedavg %.4f, fedprox(1) " ..
  "%.4f, scaffold %.4f", fedavg.rounds[20].loss, prox.rounds[20].loss,
  sc.rounds[20].loss))
-- drift correction on label-skewed clients: a clearly lower test loss
assert(sc.rounds[20].loss < 0.85 * fedavg.rounds[20].loss,
  "scaffold corrects client drift")
-- 100 clients a round on one worker: every client gets its c before its
-- task (the server sends each client's messages right before its TRAIN),
-- and one worker or two give the same result
local p100 = fm.partition.iid(tr, { clients = 100, seed = 3 })
local one = run("scaffold", { train = p100, clients_per_round = 100,
  rounds = 2, threads = 1 })
for i, r in ipairs(one.rounds) do
  assert(r.updates == 100, string.format("100 clients, round %d: %s " ..
    "updates", i, tostring(r.updates)))
end
same(one, run("scaffold", { train = p100, clients_per_round = 100,
  rounds = 2, threads = 2 }), "100 clients, 2 threads")

-- with the server step scaled, c still travels (lr = 0.5)
local half = run { "scaffold", lr = 0.5 }
assert(half.rounds[20].loss ~= sc.rounds[20].loss)

-- 3. parameters are checked up front
local function fails(agg, pattern)
  local ok, err = pcall(run, agg)
  assert(not ok, "expected an error matching " .. pattern)
  assert(err:find(pattern), "error '" .. err .. "' does not match " .. pattern)
end
fails({ "fedprox", mu = -1 }, "mu")
fails({ "fedprox", m = 1 }, "no parameter 'm' %(did you mean 'mu'%?%)")
fails({ "scaffold", lr = -0.5 }, "lr")
