-- pinned_test.lua: the metrics of a few small runs, pinned bit for bit.
-- The runs cover every path a refactoring of the engine could change: the
-- star server (aggregators with and without client hooks, defences after
-- attacks, faults, a server learning-rate schedule), hierarchy levels,
-- peer-to-peer mixing with Byzantine peers, and fm.aggregate. The digest
-- of every run is compared with pinned_expected.txt (written by running
-- this script with FEDMESH_PIN_WRITE=path on the commit before a change);
-- a refactoring that changes one bit of one metric fails here and names
-- the run, the round and the key.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 0.5, beta = 0.5, devices = 12, seed = 21 }
local parts = fm.partition.dirichlet(tr, { clients = 12, alpha = 0.5, seed = 21 })

local function star(t)
  local c = {
    model = fm.model.logreg { 60, 10 }, train = parts, test = te,
    rounds = 4, clients_per_round = 8, seed = 21, quiet = true,
    local_training = { epochs = 1, batch = 10, lr = 0.05 },
  }
  for k, v in pairs(t or {}) do c[k] = v end
  if c.clients_per_round == false then c.clients_per_round = nil end
  return fm.experiment(c):simulate()
end

local keys = { "accuracy", "loss", "train_loss", "updates", "clients",
  "dropped", "stragglers", "defence_kept", "consensus_distance",
  "accuracy_min", "accuracy_max", "lr", "bytes_sent", "bytes_received" }

local lines = {}
local function pin(name, res)
  for i, row in ipairs(res.rounds) do
    local parts_ = {}
    for _, k in ipairs(keys) do
      local v = row[k]
      if v ~= nil then
        parts_[#parts_ + 1] = k .. "=" .. (math.type(v) == "integer" and
          tostring(v) or string.format("%.17g", v))
      end
    end
    lines[#lines + 1] = string.format("%s round %d %s", name, i,
      table.concat(parts_, " "))
  end
end
local function pinvec(name, v)
  local t = {}
  for i = 1, #v do t[i] = string.format("%.9g", v[i]) end
  lines[#lines + 1] = name .. " " .. table.concat(t, " ")
end

pin("fedavg", star())
pin("fedadam_krum_signflip", star { aggregator = { "fedadam", lr = 0.02 },
  defence = { "krum", f = 1 }, attack = { "sign_flip", scale = 4 },
  adversaries = { fraction = 0.2 } })
pin("fedprox", star { aggregator = { "fedprox", mu = 0.1 } })
pin("scaffold", star { aggregator = "scaffold" })
pin("median_labelflip", star { defence = "trimmed_mean",
  attack = "label_flip", adversaries = { fraction = 0.25 } })
pin("faults_schedule", star { faults = { dropout = 0.25, straggler = 0.125, seed = 3 },
  min_updates = 4, aggregator = { "fedavgm", lr = 1.0, momentum = 0.9 },
  server_lr_schedule = { "step", every = 2, gamma = 0.5 } })
pin("hierarchical", star { topology = fm.topology.hierarchical {
  fanouts = { 3, 4 }, every = { 2, 1 } }, clients_per_round = false })

local p2p = function(t)
  local c = { topology = fm.topology.ring { peers = 12 }, rounds = 4 }
  for k, v in pairs(t or {}) do c[k] = v end
  c.clients_per_round = false
  return star(c)
end
pin("gossip_ring", p2p())
pin("pushsum_gaussian_peer", p2p { consensus = "pushsum",
  attack = { "gaussian", sigma = 10 }, adversaries = { peers = { 2 } } })
pin("trimmed_signflip_peer", p2p { consensus = { "trimmed_gossip", b = 1 },
  attack = { "sign_flip", scale = 3 }, adversaries = { peers = { 5 } } })

local raw = {
  { 1, 2, 3, 4 }, { 2, 1, 0, -1 }, { 0.5, 0.25, 8, 2 }, { 9, -9, 1, 0 },
  { 1.5, 2.5, 3.5, 4.5 },
}
local ups = {}
for i, w in ipairs(raw) do ups[i] = { weights = w, num_examples = i } end
pinvec("aggregate_fedadam", fm.aggregate("fedadam", ups, { lr = 0.1 }, { 0.5, 1, 1.5, 2 }))
pinvec("aggregate_median", fm.aggregate("median", ups, {}))
pinvec("aggregate_multikrum", fm.aggregate("multikrum", ups, { f = 1, m = 3 }))

local out = table.concat(lines, "\n") .. "\n"
local write = os.getenv("FEDMESH_PIN_WRITE")
if write then
  local f = assert(io.open(write, "w"))
  f:write(out)
  f:close()
  print("wrote " .. write)
  return
end
local dir = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "."
local f = assert(io.open(dir .. "/pinned_expected.txt"))
local want = f:read("a")
f:close()
local i = 0
local got = {}
for l in out:gmatch("[^\n]+") do got[#got + 1] = l end
for l in want:gmatch("[^\n]+") do
  i = i + 1
  assert(got[i] == l, string.format("pinned run changed:\n  want %s\n  got  %s",
    l, tostring(got[i])))
end
assert(#got == i, "pinned runs: " .. #got .. " lines, want " .. i)
print(string.format("%d pinned lines match bit for bit", i))
