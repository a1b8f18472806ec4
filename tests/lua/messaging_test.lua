-- messaging_test.lua: a plugin talks to its counterparts on other nodes
-- through the host (host->send / a_on_message) and reports a metric.
-- The "pingpong" test aggregator pings every sampled client from the
-- server; each client-side instance answers; the server counts the pongs.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { devices = 12, seed = 2 }
local parts = fm.partition.natural(tr)
local result = fm.experiment {
  model = fm.model.logreg { 60, 10 }, train = parts, test = te,
  rounds = 3, clients_per_round = 5, seed = 2, quiet = true, threads = 2,
  local_training = { epochs = 1, batch = 10, lr = 0.01 },
  aggregator = "pingpong",
}:simulate()

for i, r in ipairs(result.rounds) do
  assert(r.pongs == 5, string.format("round %d: %s pongs, want 5", i, tostring(r.pongs)))
end
print("messaging ok")

-- every kind has a node link: the "talkdef" test defence says hello to
-- the round's clients from its begin, their client-side instances ack,
-- its 0 ms timer fires while the round collects, and its apply counts
-- both
local talk = fm.experiment {
  model = fm.model.logreg { 60, 10 }, train = parts, test = te,
  rounds = 3, clients_per_round = 5, seed = 2, quiet = true, threads = 2,
  local_training = { epochs = 1, batch = 10, lr = 0.01 },
  defence = "talkdef",
}:simulate()
for i, r in ipairs(talk.rounds) do
  assert(r.acks == 5, string.format("round %d: %s acks, want 5", i, tostring(r.acks)))
  assert(r.defence_kept == 5, "talkdef keeps every update")
  assert(r.def_timers == i, string.format("round %d: %s timers fired",
    i, tostring(r.def_timers)))
end
print("defence messaging ok")
