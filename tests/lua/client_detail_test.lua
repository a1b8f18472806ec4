-- client_detail_test.lua: metrics = { clients = true } gives every round
-- row a `participants` list (one entry per sampled client: id, status,
-- examples, loss, update norm, adversary), in the rows and in the JSONL
-- file, never in the CSV; with a defence and an attack, the rows carry
-- the defence's detection precision and recall.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 0, beta = 0, devices = 20, seed = 7 }
local parts = fm.partition.iid(tr, { clients = 20, seed = 7 })
local sizes = parts:sizes()

local function cfg(t)
  local c = {
    model = fm.model.logreg { 60, 10 }, train = parts, test = te,
    rounds = 4, clients_per_round = 10, seed = 7, quiet = true,
    local_training = { epochs = 1, batch = 10, lr = 0.05 },
  }
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end
local function run(t) return fm.experiment(cfg(t)):simulate() end

local function count(row, status)
  local n = 0
  for _, p in ipairs(row.participants) do
    if p.status == status then n = n + 1 end
  end
  return n
end

-- 1. off by default
local plain = run()
assert(plain.rounds[1].participants == nil, "the detail is opt-in")

-- 2. a defence with known adversaries: Multi-Krum keeps m = 5 of 10
os.remove("detail.jsonl")
local r = run {
  metrics = { file = "detail.jsonl", clients = true },
  attack = { "sign_flip", scale = 4 }, adversaries = { fraction = 0.3 },
  defence = { "multikrum", f = 2, m = 5 },
}
local precisions = 0
for _, row in ipairs(r.rounds) do
  local ps = row.participants
  assert(#ps == row.clients and row.clients == 10, "one entry per client")
  assert(count(row, "kept") + count(row, "rejected") + count(row, "unused")
    == row.updates, "the updates")
  assert(count(row, "dropped") == row.dropped and row.dropped == 0)
  assert(count(row, "straggler") == row.stragglers and row.stragglers == 0)
  assert(count(row, "kept") == row.defence_kept and row.defence_kept == 5,
    "kept matches defence_kept")
  assert(count(row, "rejected") == 5)
  local last, nadv, rej, rej_adv = 0, 0, 0, 0
  for _, p in ipairs(ps) do
    assert(p.client > last, "ascending ids") ; last = p.client
    assert(p.examples == sizes[p.client], "examples are the shard size")
    assert(p.loss > 0 and p.norm > 0, "loss and norm")
    if p.adversary then nadv = nadv + 1 else assert(p.adversary == nil) end
    if p.status == "rejected" then
      rej = rej + 1
      if p.adversary then rej_adv = rej_adv + 1 end
    end
  end
  assert(nadv == row.adversaries, "adversary flags")
  -- precision and recall from the detail, by hand
  if rej > 0 then
    assert(row.defence_precision == rej_adv / rej, "precision")
    precisions = precisions + 1
  else
    assert(row.defence_precision == nil)
  end
  if nadv > 0 then
    assert(row.defence_recall == rej_adv / nadv, "recall")
  else
    assert(row.defence_recall == nil, "no adversaries: no recall")
  end
  -- sign flipping at scale 4: the adversaries' updates are the long ones
  for _, p in ipairs(ps) do
    for _, q in ipairs(ps) do
      if p.adversary and not q.adversary then assert(p.norm > q.norm) end
    end
  end
end
assert(precisions == #r.rounds)
-- the detail does not change the run
local same = run {
  attack = { "sign_flip", scale = 4 }, adversaries = { fraction = 0.3 },
  defence = { "multikrum", f = 2, m = 5 },
}
for i, row in ipairs(r.rounds) do
  assert(row.loss == same.rounds[i].loss, "same model with the detail")
  assert(same.rounds[i].defence_precision == row.defence_precision)
end

-- 3. the JSONL has the nested list; the CSV leaves it out
local f = assert(io.open("detail.jsonl"))
local lines = 0
for line in f:lines() do
  lines = lines + 1
  assert(line:find('"participants":%[{"'), line)
  assert(line:find('"status":"rejected"'), line)
  assert(line:find('"adversary":true'), line)
  assert(line:find('"defence_recall":'), line)
  local entries = select(2, line:gsub('"client":', ""))
  assert(entries == 10, "ten entries in the line")
end
f:close()
assert(lines == 4)
r:write_csv("detail.csv")
f = assert(io.open("detail.csv"))
local header = f:read("l")
f:close()
assert(not header:find("participants"), header)
assert(header:find("stragglers,lr"), header)
r:write_jsonl("detail2.jsonl")
f = assert(io.open("detail2.jsonl"))
assert(f:read("l"):find('"participants":%['))
f:close()

-- 4. a defence returning one combined update (median): every update went
-- in; it rejects none by name, so no precision or recall
local med = run {
  metrics = { clients = true }, defence = "median",
  attack = "gaussian", adversaries = { fraction = 0.3 },
}
for _, row in ipairs(med.rounds) do
  assert(count(row, "kept") == 10 and row.defence_kept == 1)
  assert(row.defence_precision == nil and row.defence_recall == nil)
end

-- 5. no defence: every update is kept; a round that misses its quorum
-- uses none ("unused")
local nod = run { metrics = { clients = true } }
for _, row in ipairs(nod.rounds) do
  assert(count(row, "kept") == 10 and row.defence_precision == nil)
end

-- 6. refusals
local function refuses(t, pattern)
  local c = cfg(t)
  if c.topology then c.clients_per_round = nil end -- peer-to-peer
  local ok, err = pcall(fm.experiment, c)
  assert(not ok, "expected an error matching " .. pattern)
  assert(err:find(pattern), "error '" .. err .. "' does not match " .. pattern)
end
refuses({ metrics = 5 }, "field 'metrics' must be a JSON Lines path or "
  .. "{ file = \"path\", clients = true }, got number")
refuses({ metrics = { clients = 1 } },
  "metrics: field 'clients' must be a boolean, got number")
refuses({ metrics = { file = 3 } }, "metrics: field 'file' must be a string")
refuses({ metrics = { client = true } },
  "metrics: unknown field 'client' %(did you mean 'clients'%?%)")
refuses({ metrics = { clients = true }, topology = fm.topology.ring { peers = 20 } },
  "metrics.clients is for star and hierarchical federations")
-- the string form still works
os.remove("plain.jsonl")
run { metrics = "plain.jsonl", rounds = 1 }
f = assert(io.open("plain.jsonl"))
assert(not f:read("a"):find("participants"))
f:close()
print("client detail: ok")
