-- peer_messaging_test.lua: a peer's consensus instance talks to its
-- neighbours through the node link (host->send, timer, metric), in the
-- simulation, deterministically (docs/plugin-guide.md, "Consensus").
-- The "peerlink" test consensus (tests/plugins/peerlink.c) averages as
-- gossip with step 1 and, each round, messages its in-neighbours, arms a
-- 0 ms and a 1500 ms timer, and reports what came as metrics.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 0, beta = 0, devices = 6, seed = 7 }
local parts = fm.partition.iid(tr, { clients = 6, seed = 7 })
local rounds = 5

local function run(t)
  local cfg = {
    topology = fm.topology.ring { peers = 6 }, model = fm.model.logreg { 60, 10 },
    train = parts, test = te, rounds = rounds, seed = 7, quiet = true,
    local_training = { epochs = 1, batch = 10, lr = 0.01 },
    consensus = "peerlink",
  }
  for k, v in pairs(t or {}) do cfg[k] = v end
  return fm.experiment(cfg):simulate()
end

local names = { "accuracy", "loss", "train_loss", "consensus_distance",
  "accuracy_min", "accuracy_max", "peer_msgs", "peer_early", "peer_timers",
  "peer_late_timers", "peer_bad", "peer_send_failed", "peer_enoent" }

local one, three = run { threads = 1 }, run { threads = 3 }
for i = 1, rounds do
  for _, k in ipairs(names) do
    assert(one.rounds[i][k] == three.rounds[i][k], string.format(
      "round %d: %s is %s with 1 thread, %s with 3", i, k,
      tostring(one.rounds[i][k]), tostring(three.rounds[i][k])))
  end
end

-- Every peer of the ring has 2 in- and 2 out-neighbours. What peer i sends
-- to an in-neighbour while mixing in round r arrives by the end of round
-- r (counted in round r + 1); what it sends from outgoing arrives before
-- the receiver's mix of the same round; a 0 ms timer fires at the end of
-- the round it was set in, a 1500 ms one at the end of the next.
local function want(i)
  return {
    peer_msgs = i >= 2 and 2 or 0, peer_early = i >= 2 and 2 or 0,
    peer_timers = i >= 2 and 1 or 0, peer_late_timers = i >= 3 and 1 or 0,
    peer_bad = 0, peer_send_failed = 0, peer_enoent = 3,
  }
end
for i, r in ipairs(one.rounds) do
  for k, v in pairs(want(i)) do
    assert(r[k] == v, string.format("round %d: %s = %s, want %s", i, k,
      tostring(r[k]), tostring(v)))
  end
end

-- The messages change nothing in the models: the same as gossip (step 1).
local g = run { consensus = { "gossip", step = 1 }, threads = 2 }
for i = 1, rounds do
  assert(g.rounds[i].consensus_distance == one.rounds[i].consensus_distance
    and g.rounds[i].accuracy == one.rounds[i].accuracy,
    "round " .. i .. ": peerlink mixes as gossip")
  assert(g.rounds[i].peer_msgs == nil, "gossip reports no peer metrics")
end
print("peer messaging ok")
