-- aggregate_test.lua: fm.aggregate runs an aggregator plugin on Lua
-- vectors (one round), for users' own checks and notebooks.
local fm = require "fedmesh"

local function near(a, b, tol)
  assert(#a == #b, "lengths " .. #a .. " vs " .. #b)
  for i = 1, #a do
    assert(math.abs(a[i] - b[i]) <= (tol or 1e-6),
      string.format("[%d] %.9g vs %.9g", i, a[i], b[i]))
  end
end

local updates = {
  { weights = { 1, 2, 3 }, num_examples = 1 },
  { weights = { 4, 5, 6 }, num_examples = 3 },
}
-- FedAvg: the example-weighted mean of the client models
near(fm.aggregate("fedavg", updates, {}), { 3.25, 4.25, 5.25 })
-- with a global model the result is the same (deltas are relative to it)
near(fm.aggregate("fedavg", updates, {}, { 10, 10, 10 }), { 3.25, 4.25, 5.25 }, 1e-5)
-- FedAvgM with lr 1 and no momentum is FedAvg
near(fm.aggregate("fedavgm", updates, { lr = 1.0, momentum = 0.0 }), { 3.25, 4.25, 5.25 })
-- a server learning rate of 0.5 moves half way from the global model
near(fm.aggregate("fedavgm", updates, { lr = 0.5 }, { 1, 1, 1 }), { 2.125, 2.625, 3.125 }, 1e-5)
-- no updates: the global model stays
near(fm.aggregate("fedavg", {}, {}, { 7, 8 }), { 7, 8 })

local function fails(pattern, ...)
  local ok, err = pcall(fm.aggregate, ...)
  assert(not ok and err:find(pattern), tostring(err))
end
fails("unknown aggregator or defence 'nosuch'", "nosuch", updates, {})
fails("must be a list of 3 numbers", "fedavg",
  { { weights = { 1, 2, 3 } }, { weights = { 1, 2 } } }, {})
fails("momentum", "fedavgm", updates, { momentum = 7 })
fails("no model", "fedavg", {}, {})
print("aggregate ok")

-- aggregators with a client side: their server step alone
do
  local u = { { weights = { 1, 2 }, num_examples = 1 },
              { weights = { 3, 4 }, num_examples = 3 } }
  local p = fm.aggregate("fedprox", u, { mu = 0.5 })
  assert(p[1] == 2.5 and p[2] == 3.5, "fedprox's server step is FedAvg")
  local s = fm.aggregate("scaffold", u, { lr = 0.5 }, { 0, 0 })
  assert(s[1] == 1.25 and s[2] == 1.75, "scaffold: lr times FedAvg's move")
end
