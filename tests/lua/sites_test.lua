-- sites_test.lua: sites that bring their own data, simulated; federated
-- evaluation; fm.node(); and the mistakes a user can make with them.
local fm = require "fedmesh"

-- fm.node() under fedmesh run
local me = fm.node()
assert(me.role == "simulation" and me.name == nil, me.role)

local tr, te = fm.data.synthetic { devices = 12, seed = 3 }
local parts = fm.partition.natural(tr)
local tparts = fm.partition.natural(te)
local model = fm.model.logreg { 60, 10 }
local function base(over)
  local c = { model = model, train = parts, rounds = 4, clients_per_round = 5,
              local_training = { epochs = 1, batch = 10, lr = 0.05 },
              seed = 7, quiet = true, threads = 2 }
  for k, v in pairs(over or {}) do c[k] = v end
  return c
end
local function cols(r)
  local out = {}
  for _, row in ipairs(r.rounds) do
    out[#out + 1] = string.format("%.17g %.17g %s %s %s", row.train_loss,
      row.client_accuracy or -1, tostring(row.client_accuracy_min),
      tostring(row.client_accuracy_max), tostring(row.client_evals))
  end
  return table.concat(out, "\n")
end

-- 1. a list of the clients' own datasets runs exactly as the partition
local sites, tsites = parts:sites(), tparts:sites()
assert(#sites == 12 and #sites[3] == parts:sizes()[3], "one dataset per client")
local a = fm.experiment(base { client_test = tparts }):simulate()
local b = fm.experiment(base { train = sites, client_test = tsites }):simulate()
assert(cols(a) == cols(b), "sites as a list differ from the partition:\n" ..
  cols(a) .. "\n--\n" .. cols(b))

-- 2. federated evaluation: every client evaluates, the mean lies within
-- the spread, and the weights are the held-out counts
local total = 0
for _, d in ipairs(tsites) do total = total + #d end
for _, row in ipairs(a.rounds) do
  assert(row.client_evals == 12, row.client_evals)
  assert(row.client_eval_examples == total, row.client_eval_examples)
  assert(row.client_accuracy_min <= row.client_accuracy and
    row.client_accuracy <= row.client_accuracy_max, "mean outside the spread")
  assert(row.client_loss > 0)
end
-- the mean is the example-weighted one: recompute it from the final model
local final, hits = a.model, 0
for _, d in ipairs(tsites) do hits = hits + final:evaluate(d).accuracy * #d end
local last = a.rounds[#a.rounds]
assert(math.abs(hits / total - last.client_accuracy) < 1e-9,
  string.format("weighted mean %.12f, reported %.12f", hits / total, last.client_accuracy))
local lo, hi = 1, 0
for _, d in ipairs(tsites) do
  local acc = final:evaluate(d).accuracy
  lo, hi = math.min(lo, acc), math.max(hi, acc)
end
assert(math.abs(lo - last.client_accuracy_min) < 1e-12 and
  math.abs(hi - last.client_accuracy_max) < 1e-12, "spread differs")

-- a fraction of the clients, every eval_every rounds (and the last)
local c = fm.experiment(base { client_test = tparts, client_eval_fraction = 0.25,
  eval_every = 3 }):simulate()
assert(c.rounds[1].client_evals == nil and c.rounds[3].client_evals == 3 and
  c.rounds[4].client_evals == 3, "0.25 of 12 clients, rounds 3 and 4")
local none = fm.experiment(base { client_test = tparts, client_eval_fraction = 0 }):simulate()
assert(none.rounds[1].client_accuracy == nil, "fraction 0 evaluates nowhere")
local plain = fm.experiment(base()):simulate()
assert(plain.rounds[1].client_accuracy == nil, "no client_test, no evaluation")
local function losses(r)
  local out = {}
  for _, row in ipairs(r.rounds) do out[#out + 1] = string.format("%.17g", row.train_loss) end
  return table.concat(out, " ")
end
assert(losses(plain) == losses(a), "evaluation changed training")

-- 3. mistakes
local function expect_error(cfg, pattern)
  local ok, err = pcall(fm.experiment, cfg)
  assert(not ok, "expected an error matching " .. pattern)
  assert(err:find(pattern), "error '" .. err .. "' does not match " .. pattern)
end
expect_error(base { train = tr }, "that is a deployment's form")
expect_error(base { train = tr }, "train = { d1, d2, d3 }")
local missing = base()
missing.train = nil
expect_error(missing, "field 'train' is missing")
expect_error(base { train = {} }, "empty list")
expect_error(base { train = { tr, 5 } }, "train%[2%] must be a fedmesh.Dataset")
local other = fm.data.synthetic { devices = 2, seed = 1, dim = 30 }
expect_error(base { train = { tr, other } }, "must have the same columns")
expect_error(base { client_test = tsites }, "must have the form of 'train'")
expect_error(base { client_test = fm.partition.iid(te, { clients = 5 }) },
  "'client_test' has 5 clients but 'train' has 12")
expect_error(base { client_eval_fraction = 2 }, "client_eval_fraction")
print("sites_test: ok")
