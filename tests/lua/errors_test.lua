-- errors_test.lua: script mistakes are reported with file:line and what
-- was expected, and nothing runs.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { devices = 10, seed = 1 }
local parts = fm.partition.natural(tr)
local model = fm.model.logreg { 60, 10 }

local function base()
  return { model = model, train = parts, test = te, rounds = 2,
           clients_per_round = 2, quiet = true }
end

local function expect_error(cfg, pattern)
  local ok, err = pcall(fm.experiment, cfg)
  assert(not ok, "expected an error matching " .. pattern)
  assert(err:find(pattern), "error '" .. err .. "' does not match " .. pattern)
  -- reported at the line of the call (inside expect_error's pcall caller)
  assert(err:find("errors_test.lua:%d+:") or err:find("fm.experiment"), err)
  return err
end

local c = base(); c.roundz = 3
local e = expect_error(c, "unknown field 'roundz' %(did you mean 'rounds'%?%)")
assert(e:find("valid fields:"), e)

c = base(); c.rounds = "ten"
expect_error(c, "field 'rounds' must be an integer, got string")

c = base(); c.rounds = 2.5
expect_error(c, "field 'rounds' must be an integer")

c = base(); c.clients_per_round = 11
expect_error(c, "out of range")

c = base(); c.aggregator = "fedavgg"
expect_error(c, "unknown aggregator plugin 'fedavgg'")

c = base(); c.aggregator = { "fedavg", bogus = 1 }
expect_error(c, "bogus")

c = base(); c.model = fm.model.logreg { 784, 10 }
expect_error(c, "model input size 784 does not match the data's 60 features")

c = base(); c.train = tr
expect_error(c, "field 'train' is one Dataset: that is a deployment's form")

c = base(); c.train = 5
expect_error(c, "field 'train' must be a fedmesh.Partition, a list of Datasets")

c = base(); c.local_training = { epochs = 1, lr = "fast" }
expect_error(c, "local_training: field 'lr' must be a number")

c = base(); c.topology = fm.topology.star { clients = 99 }
expect_error(c, "star topology has 99 clients but the partition 'train' has 10")

-- a direct call reports this file and line
local ok, err = pcall(function() return fm.experiment { model = model } end)
assert(not ok and err:find("errors_test.lua:%d+: fm.experiment: field 'train'"), err)

-- data errors name the file and what to do
ok, err = pcall(fm.data.idx, { images = "/nonexistent/x", labels = "/nonexistent/y" })
assert(not ok and err:find("/nonexistent/x"), err)
ok, err = pcall(fm.data.fashion_mnist, { dir = "/nonexistent" })
assert(not ok and err:find("dataset%-fashion%-mnist"), err)
ok, err = pcall(fm.partition.iid, tr, { clients = 0 })
assert(not ok, "zero clients refused")

-- an error raised in on_round stops the run and surfaces with its line
c = base()
c.on_round = function(r) if r.round == 1 then error("stop here") end end
local run = fm.experiment(c)
ok, err = pcall(run.simulate, run)
assert(not ok and err:find("errors_test.lua:%d+: stop here"), err)
print("errors ok")
