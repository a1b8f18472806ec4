-- many_clients_test.lua: 10,000 clients on Fashion-MNIST in one process.
-- Idle clients hold no model copy: peak memory stays near the size of the
-- dataset, not 10,000 models (which would be 8 GB for this MLP).
local fm = require "fedmesh"

local function peak_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

local train, test = fm.data.fashion_mnist()
local parts = fm.partition.iid(train, { clients = 10000, seed = 1 })
assert(parts:clients() == 10000 and parts:summary().min == 6)
local result = fm.experiment {
  model = fm.model.mlp { 784, 200, 200, 10 }, train = parts, test = test,
  rounds = 3, clients_per_round = 50, seed = 1, quiet = true,
  local_training = { epochs = 1, batch = 6, lr = 0.05 },
}:simulate()
assert(#result.rounds == 3 and result.rounds[3].updates == 50)
local mb = peak_kb() / 1024
print(string.format("10,000 clients: peak RSS %.0f MB, accuracy %.4f", mb, result.accuracy))
-- data ~230 MB; 10,000 model copies would be ~8,000 MB
assert(mb < 1500, "peak memory " .. mb .. " MB suggests per-client model copies")
