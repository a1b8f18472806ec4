-- robust_test.lua: defences and attacks inside a federation (simulation):
-- an attack by 20% of the clients ruins FedAvg and a defence built for it
-- holds; the backdoor reports its success rate; attack, defence and root
-- data are checked up front; fm.aggregate runs a defence followed by
-- FedAvg.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 0, beta = 0, devices = 20, seed = 7 }
local parts = fm.partition.iid(tr, { clients = 20, seed = 7 })

local function run(t)
  local cfg = {
    model = fm.model.logreg { 60, 10 }, train = parts, test = te,
    rounds = 12, clients_per_round = 20, seed = 7, quiet = true,
    round_timeout = 60,
    local_training = { epochs = 2, batch = 10, lr = 0.01 },
  }
  for k, v in pairs(t or {}) do cfg[k] = v end
  return fm.experiment(cfg):simulate()
end

local clean = run()
print(string.format("clean FedAvg: %.4f", clean.accuracy))
assert(clean.accuracy > 0.6)

-- 1. model poisoning by 4 of 20 clients: FedAvg falls, robust rules hold
local adv = { fraction = 0.2 }
-- (sign flipping at scale 1 barely hurts FedAvg with 20%: scale 4 does)
local cases = {
  { { "sign_flip", scale = 4 }, { "median" } },
  { { "sign_flip", scale = 4 }, { "krum", f = 4 } },
  { "gaussian", { "trimmed_mean", beta = 0.2 } },
  { "gaussian", { "multikrum", f = 4, m = 16 } },
  { { "ipm", epsilon = 10 }, { "bulyan", f = 4 } },
  { "scaling", { "centered_clipping" } },
  { "gaussian", { "geomedian" } },
}
for _, c in ipairs(cases) do
  local attack, defence = c[1], c[2]
  local plain = run { attack = attack, adversaries = adv }
  local robust = run { attack = attack, adversaries = adv, defence = defence }
  local aname = type(attack) == "table" and attack[1] or attack
  print(string.format("%-10s FedAvg %.4f, %s %.4f", aname, plain.accuracy,
    defence[1], robust.accuracy))
  assert(robust.accuracy > clean.accuracy - 0.08,
    defence[1] .. " holds against " .. aname)
  if plain.accuracy < clean.accuracy - 0.1 then -- the attack hurt
    assert(robust.accuracy > plain.accuracy + 0.05,
      defence[1] .. " beats FedAvg under " .. aname)
  end
  assert(robust.rounds[1].defence_kept ~= nil, "defence_kept is reported")
end

-- 2. clients are marked deterministically: same seed, same result
local a1 = run { attack = "alie", adversaries = adv, defence = "median" }
local a2 = run { attack = "alie", adversaries = adv, defence = "median" }
assert(a1.accuracy == a2.accuracy, "attacks are reproducible")

-- 3. FLTrust with server root data
local fl = run { attack = { "sign_flip", scale = 4 }, adversaries = adv,
  defence = "fltrust",
  root_data = tr:sample(100, 7) }
print(string.format("sign_flip  FLTrust %.4f", fl.accuracy))
assert(fl.accuracy > clean.accuracy - 0.08, "FLTrust holds")

-- 4. the backdoor needs images; on Fashion-MNIST it reports its success
-- rate (triggered test images classified as the target)
local ok, err = pcall(run, { attack = "backdoor", adversaries = adv })
assert(not ok and tostring(err):find("backdoor"), "backdoor needs images: " .. tostring(err))
local ftr, fte = fm.data.fashion_mnist()
local bd = fm.experiment {
  model = fm.model.logreg { 784, 10 }, test = fte, rounds = 4, seed = 7,
  train = fm.partition.iid(ftr, { clients = 10, seed = 7 }),
  clients_per_round = 10, quiet = true,
  local_training = { epochs = 1, batch = 32, lr = 0.05 },
  attack = { "backdoor", target = 0 }, adversaries = { fraction = 0.5 },
}:simulate()
local asr = bd.rounds[4].attack_success
print(string.format("backdoor: accuracy %.4f, attack success %.4f", bd.accuracy, asr))
assert(asr and asr > 0.5 and asr <= 1, "the backdoor is learnt by FedAvg")

-- 5. mistakes
local function fails(pat, t)
  local ok2, e = pcall(run, t)
  assert(not ok2 and tostring(e):find(pat),
    "expected /" .. pat .. "/, got: " .. tostring(e))
end
fails("unknown defence plugin 'krumm'", { defence = "krumm" })
fails("unknown attack plugin 'alee'", { attack = "alee", adversaries = adv })
fails("'attack' and 'adversaries' go together", { attack = "alie" })
fails("root_data' must be a fedmesh.Dataset", { defence = "fltrust", root_data = 3 })
fails("clients%[1%] must be a client id 1..20", { attack = "alie",
  adversaries = { clients = { 21 } } })

-- 6. fm.aggregate: a defence alone is followed by FedAvg
local ups = {}
for i = 1, 5 do ups[i] = { weights = { i, i }, num_examples = 1 } end
ups[6] = { weights = { 1e6, -1e6 }, num_examples = 1 }
local med = fm.aggregate("median", ups, {})
assert(med[1] == 3.5 and med[2] == 2.5, "median of 1..5 and +-1e6: " .. med[1] .. ", " .. med[2])
local kr = fm.aggregate("krum", ups, { f = 1 })
assert(kr[1] >= 1 and kr[1] <= 5, "krum picks an honest update")
print("robust: all checks passed")
