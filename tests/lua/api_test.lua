-- api_test.lua: the data, partition, model and args parts of the Lua API.
local fm = require "fedmesh"

assert(type(fm.version) == "string" and fm.version:match("^%d+%.%d+%.%d+"))

-- Synthetic(alpha, beta): reproducible, 60 features, 10 classes
local tr, te = fm.data.synthetic { alpha = 1, beta = 1, devices = 20, seed = 7 }
assert(tr:dim() == 60 and tr:classes() == 10, tostring(tr))
assert(#tr > #te and #te > 0)
local tr2 = fm.data.synthetic { alpha = 1, beta = 1, devices = 20, seed = 7 }
assert(#tr2 == #tr, "same seed, same data")
local tr3 = fm.data.synthetic { alpha = 1, beta = 1, devices = 20, seed = 8 }
assert(#tr3 ~= #tr, "another seed, other sample counts")

-- natural partition: one client per device; every sample exactly once
local nat = fm.partition.natural(tr)
assert(nat:clients() == 20 and #nat == 20)
local total = 0
for _, n in ipairs(nat:sizes()) do total = total + n end
assert(total == #tr, "natural partition covers the data")

-- IID and Dirichlet
local iid = fm.partition.iid(tr, { clients = 10, seed = 1 })
local s = iid:summary()
assert(s.clients == 10 and s.samples == #tr and s.max - s.min <= 1, "iid sizes")
local dir = fm.partition.dirichlet(tr, { clients = 10, alpha = 0.1, seed = 1, min_size = 5 })
assert(dir:summary().samples == #tr)
assert(dir:summary().labels_per_client < iid:summary().labels_per_client,
  "Dirichlet(0.1) is more label-skewed than IID")
local h = iid:histogram(1)
local hn = 0
for k = 0, 9 do hn = hn + (h[k] or 0) end
assert(hn == iid:sizes()[1], "histogram sums to the client's size")

-- models: parameter counts as in McMahan et al. (2NN: 199,210)
local mlp = fm.model.mlp { 784, 200, 200, 10 }
assert(mlp:params() == 199210, mlp:params())
assert(#mlp:layers() == 6 and mlp:layers()[1].name == "fc1.weight")
assert(fm.model.logreg { 60, 10 }:params() == 610)
assert(tostring(mlp):find("784%-200%-200%-10"))

-- fm.args: key=value overrides with the default's type
local o = fm.args({ rounds = 5, name = "x", flag = false }, { "rounds=7", "flag=true" })
assert(o.rounds == 7 and o.flag == true and o.name == "x")
local ok, err = pcall(fm.args, { rounds = 5 }, { "roundz=3" })
assert(not ok and err:find("unknown option 'roundz' in 'roundz=3' (did you mean 'rounds'?; options: rounds)", 1, true), err)
ok, err = pcall(fm.args, { rounds = 5 }, { "rounds=abc" })
assert(not ok and err:find("expected a number"), err)

-- plugins: fedavg is built in
local found
for _, p in ipairs(fm.plugins()) do
  if p.name == "fedavg" then found = p end
end
assert(found and found.kind == "aggregator" and found.version and found.path, "fedavg listed")
print("api ok")
