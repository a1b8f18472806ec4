-- robust_fmnist.lua: one cell of the robustness table (bench/robust_fmnist.sh).
-- Fashion-MNIST, MLP 784-200-200-10, 100 clients, Dirichlet(alpha = 0.5),
-- 20 clients per round, a fraction of adversarial clients running one
-- attack, the server aggregating with one defence followed by FedAvg.
--
--   fedmesh run bench/robust_fmnist.lua attack=alie defence=krum [rounds=30]
--       [per_round=1]
--
-- per_round=0 (default): the adversaries are `fraction` of the 100 clients
-- and rounds sample 20 clients uniformly, so a round gets 0..20 of them
-- (hypergeometric, 4 on average); per_round=1: every round samples exactly
-- round(fraction * 20) = 4 adversaries and 16 honest clients (the setting of
-- the Byzantine-robustness papers, f of n in every round).
--
-- Prints one JSON line: attack, defence, sampling mode, final and best
-- accuracy, the backdoor's attack success rate when the attack defines one,
-- and per round the adversaries sampled and the test accuracy.
local fm = require "fedmesh"

local opt = fm.args {
  attack = "none", defence = "none", rounds = 30, clients = 100,
  clients_per_round = 20, fraction = 0.2, alpha = 0.5, seed = 1,
  epochs = 1, batch = 32, lr = 0.05, f = 4, root = 100, per_round = 0,
}

local train, test = fm.data.fashion_mnist()
local parts = fm.partition.dirichlet(train,
  { clients = opt.clients, alpha = opt.alpha, seed = opt.seed })

-- f: adversaries a defence must tolerate among the sampled clients
-- (20% of 20 = 4 expected); the parameter each rule takes
local defences = {
  none = nil,
  krum = { "krum", f = opt.f },
  multikrum = { "multikrum", f = opt.f, m = opt.clients_per_round - opt.f },
  bulyan = { "bulyan", f = opt.f },
  median = { "median" },
  trimmed_mean = { "trimmed_mean", beta = opt.fraction },
  geomedian = { "geomedian" },
  centered_clipping = { "centered_clipping" },
  fltrust = { "fltrust" },
}
local defence = defences[opt.defence]
if opt.defence ~= "none" and defence == nil then
  error("unknown defence " .. opt.defence)
end

local cfg = {
  topology = fm.topology.star { clients = opt.clients },
  model = fm.model.mlp { 784, 200, 200, 10 },
  train = parts, test = test,
  rounds = opt.rounds, clients_per_round = opt.clients_per_round,
  local_training = { epochs = opt.epochs, batch = opt.batch, lr = opt.lr },
  aggregator = "fedavg", defence = defence, seed = opt.seed, quiet = true,
}
if opt.defence == "fltrust" then -- the server's clean root set (Cao et al.)
  cfg.root_data = train:sample(opt.root, opt.seed)
end
if opt.attack ~= "none" then
  cfg.attack = opt.attack
  cfg.adversaries = { fraction = opt.fraction,
    per_round = opt.per_round ~= 0 }
end

local r = fm.experiment(cfg):simulate()
local last = r.rounds[#r.rounds]
local adv, acc = {}, {}
for i, row in ipairs(r.rounds) do
  adv[i] = string.format("%d", row.adversaries or 0)
  acc[i] = row.accuracy and string.format("%.4f", row.accuracy) or "null"
end
print(string.format('{"attack":"%s","defence":"%s","per_round":%s,' ..
  '"rounds":%d,"accuracy":%.4f,"best_accuracy":%.4f,"attack_success":%s,' ..
  '"seconds":%.1f,"adversaries":[%s],"round_accuracy":[%s]}',
  opt.attack, opt.defence, opt.per_round ~= 0 and "true" or "false",
  #r.rounds, r.accuracy, r.best_accuracy,
  last.attack_success and string.format("%.4f", last.attack_success) or "null",
  r.seconds, table.concat(adv, ","), table.concat(acc, ",")))
