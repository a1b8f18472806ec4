-- cnn_fmnist_test.lua: fm.model.cnn() (McMahan et al.'s CNN) in a short
-- FedAvg simulation on the real Fashion-MNIST: 4 of 100 IID clients per
-- round, E = 1, B = 32, 2 rounds, evaluated on 2,000 test images. It must
-- be well above chance (10%) and learning. Also the Model's API.
local fm = require "fedmesh"

local m = fm.model.cnn()
assert(m:params() == 1663370, "McMahan's CNN has 1,663,370 parameters")
assert(tostring(m):find("cnn 1x28x28%-32c5%-p2%-64c5%-p2%-512%-10"), tostring(m))
local names = {}
for i, l in ipairs(m:layers()) do names[i] = l.name end
assert(table.concat(names, " ") == "conv1.weight conv1.bias conv2.weight " ..
  "conv2.bias fc1.weight fc1.bias fc2.weight fc2.bias")
local l = m:layers()
assert(l[1].rows == 32 and l[1].cols == 25 and l[3].rows == 64 and
  l[3].cols == 800 and l[5].rows == 512 and l[5].cols == 3136)
assert(l[8].offset + l[8].cols == m:params())
assert(fm.model.cnn { channels = { 2, 3 }, hidden = 8 }:params() ==
  (25 + 1) * 2 + (50 + 1) * 3 + (147 + 1) * 8 + (8 + 1) * 10)
assert(fm.model.cnn { input = { 1, 28, 28 } }:params() == 1663370)
local ok, err = pcall(fm.model.cnn, { input = { 3, 32, 32 } })
assert(not ok and err:find("1, 28, 28"), err)
ok, err = pcall(fm.model.cnn, { channels = { 32 } })
assert(not ok and err:find("channels"), err)

local train, test = fm.data.fashion_mnist()
local parts = fm.partition.iid(train, { clients = 100, seed = 1 })
local result = fm.experiment {
  model = m, train = parts, test = test:sample(2000, 1),
  rounds = 2, clients_per_round = 4, seed = 1,
  local_training = { epochs = 1, batch = 32, lr = 0.05 },
}:simulate()
print(string.format("cnn: accuracy %.4f after 2 rounds (%.4f after 1)",
  result.accuracy, result.rounds[1].accuracy))
assert(result.accuracy > 0.4, "the CNN should be far above chance after 2 rounds")
assert(result.rounds[2].train_loss < result.rounds[1].train_loss)
