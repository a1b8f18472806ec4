-- fedavg_synthetic_test.lua: an end-to-end FedAvg run on generated data
-- learns (accuracy rises well above chance), reports complete metrics, and
-- writes CSV/JSONL that read back.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 0, beta = 0, devices = 30, seed = 3 }
local parts = fm.partition.natural(tr)
local seen = 0
local result = fm.experiment {
  model = fm.model.logreg { 60, 10 }, train = parts, test = te,
  rounds = 30, clients_per_round = 10, seed = 3, quiet = true,
  local_training = { epochs = 5, batch = 10, lr = 0.01 },
  on_round = function(r)
    seen = seen + 1
    assert(r.round == seen)
    assert(r.updates == 10 and r.dropped == 0 and r.clients == 10)
    assert(r.bytes_sent > 10 * 610 * 4 and r.bytes_received > 10 * 610 * 4)
    assert(r.seconds >= 0 and r.accuracy >= 0 and r.accuracy <= 1)
  end,
}:simulate()

assert(seen == 30 and #result.rounds == 30)
local first, last = result.rounds[1].accuracy, result.accuracy
print(string.format("accuracy round 1: %.4f, round 30: %.4f", first, last))
assert(last > 0.5, "FedAvg on Synthetic(0,0) should beat 50% (chance is 10%)")
assert(last > first, "accuracy improves")
assert(result.rounds[30].train_loss < result.rounds[1].train_loss)

-- bytes on the wire stay within 2% of the float32 payload (model out to
-- 10 clients and 10 deltas back) plus headers
local r = result.rounds[30]
local payload = 10 * 610 * 4
assert(r.bytes_sent <= payload * 1.1 and r.bytes_received <= payload * 1.1)

result:write_csv("synthetic.csv"):write_jsonl("synthetic.jsonl")
local f = assert(io.open("synthetic.csv"))
local header = f:read("l")
assert(header:find("^round,accuracy,loss,train_loss,bytes_sent,bytes_received,seconds"), header)
local lines = 0
for _ in f:lines() do lines = lines + 1 end
f:close()
assert(lines == 30)
f = assert(io.open("synthetic.jsonl"))
local row = f:read("l")
f:close()
for _, k in ipairs { "round", "accuracy", "loss", "bytes_sent", "bytes_received", "seconds" } do
  assert(row:find('"' .. k .. '":'), "jsonl has " .. k)
end
print("fedavg synthetic ok")
