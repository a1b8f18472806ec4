-- fmnist_test.lua: FedAvg MLP on the real Fashion-MNIST, a short run
-- (3 rounds, E = 1) that must already be well above chance.
local fm = require "fedmesh"

local train, test = fm.data.fashion_mnist()
assert(#train == 60000 and #test == 10000 and train:dim() == 784)
local parts = fm.partition.iid(train, { clients = 100, seed = 1 })
local result = fm.experiment {
  model = fm.model.mlp { 784, 200, 200, 10 }, train = parts, test = test,
  rounds = 3, clients_per_round = 10, seed = 1,
  local_training = { epochs = 1, batch = 32, lr = 0.05 },
}:simulate()
print(string.format("accuracy after 3 rounds: %.4f", result.accuracy))
assert(result.accuracy > 0.70, "FedAvg on Fashion-MNIST should pass 70% in 3 rounds")
