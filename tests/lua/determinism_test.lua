-- determinism_test.lua: the same script and seed give identical metrics
-- and models with 1 or 2 worker threads (fixed aggregation order,
-- per-client RNG streams), and a different seed gives different ones.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 0.5, beta = 0.5, devices = 24, seed = 5 }
local parts = fm.partition.dirichlet(tr, { clients = 24, alpha = 0.5, seed = 5, min_size = 5 })

local function run(threads, seed)
  return fm.experiment {
    model = fm.model.mlp { 60, 32, 10 }, train = parts, test = te,
    rounds = 8, clients_per_round = 6, seed = seed, threads = threads,
    local_training = { epochs = 2, batch = 16, lr = 0.05, momentum = 0.9 },
    quiet = true,
  }:simulate()
end

local a, b, c = run(1, 11), run(2, 11), run(2, 12)
for i = 1, 8 do
  local x, y = a.rounds[i], b.rounds[i]
  for _, k in ipairs { "accuracy", "loss", "train_loss", "bytes_sent", "bytes_received" } do
    assert(x[k] == y[k], string.format("round %d %s: %.17g (1 thread) vs %.17g (2 threads)",
      i, k, x[k], y[k]))
  end
end
assert(a.rounds[8].train_loss ~= c.rounds[8].train_loss, "seed matters")
print(string.format("determinism ok: final accuracy %.6f with 1 and 2 threads", a.accuracy))
