-- fmnist_test.lua: FedAvg MLP on the real Fashion-MNIST with the paper
-- settings (E = 5, B = 32, lr 0.05), a short run of 5 rounds that must
-- already be far above chance (the full 50-round run is in bench/).
local fm = require "fedmesh"

local train, test = fm.data.fashion_mnist()
assert(#train == 60000 and #test == 10000 and train:dim() == 784)
local parts = fm.partition.iid(train, { clients = 100, seed = 1 })
local result = fm.experiment {
  model = fm.model.mlp { 784, 200, 200, 10 }, train = parts, test = test,
  rounds = 5, clients_per_round = 10, seed = 1,
  local_training = { epochs = 5, batch = 32, lr = 0.05 },
}:simulate()
print(string.format("accuracy after 5 rounds: %.4f", result.accuracy))
assert(result.accuracy > 0.74, "FedAvg on Fashion-MNIST should pass 74% in 5 rounds")
assert(result.rounds[5].train_loss < result.rounds[1].train_loss)
