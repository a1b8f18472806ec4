-- p2p_fmnist.lua: one configuration of bench/p2p_fmnist.sh, printed as one
-- JSON line on stdout (the experiment itself runs quiet).
--
--   fedmesh run --threads 2 bench/p2p_fmnist.lua mode=accuracy
--       topology=star|ring|torus|complete peers=16|64 [rounds=30]
--       [eval_samples=0] [label=TEXT]
--   fedmesh run --threads 2 bench/p2p_fmnist.lua mode=rate
--       topology=ring|torus|complete|kregular|matching|none peers=N
--       [max_rounds=600] [floor=1e-6] [seeds=16] (matching)
--
-- mode=accuracy: MLP 784-200-200-10 on IID Fashion-MNIST, E=1, B=32,
-- lr 0.05. star = FedAvg with all N clients every round; the graphs run
-- D-PSGD (consensus = "gossip", Metropolis-Hastings weights), every peer
-- evaluated on the test set (or on eval_samples of it). Per round: mean,
-- min and max peer accuracy, consensus distance, seconds.
--
-- mode=rate: pure gossip. Every peer starts from its own random model
-- (init = "independent") and trains with lr = 0, so only the mixing moves
-- the models. The consensus distance d_t (mean over peers of
-- ||x_i - mean x||) is measured per round and its per-round contraction
-- d_{t+1}/d_t compared with what the mixing matrix predicts:
--   * static graphs: slem of W (describe()), the asymptotic rate of
--     ||x - mean x|| once the faster modes have died out;
--   * matching (time-varying): describe() reports the slem of the mean of
--     64 sampled rounds' W (for matchings W = W^T W, so that is an estimate
--     of lambda_2(E[W^T W]), the expected contraction of the *squared*
--     distance); the norm's rate is about its square root. The exact
--     lambda_2(E[W]) of a uniform random perfect matching is
--     (N-2)/(2(N-1)) and is reported beside it.
-- The prediction for the very rounds and graphs run is computed by
-- replaying the gossip on the peers' covariance: independent init gives
-- Cov(x) = s2 * (I - J/N) across peers (s2 = sum of the parameters' init
-- variances), and each round maps Sigma -> W_t Sigma W_t^T; the predicted
-- distance is sqrt(s2) * mean_i sqrt(Sigma_ii). The replay decides the
-- measuring window (from the round where its one-step rate is within 1%
-- of the asymptotic one, in exponent, to 3 decades later, max_rounds, or
-- the round where the distance falls below floor * d0: float32 rounding
-- adds ~3e-8 d0 in quadrature, see the complete graph) and, run on the
-- same window, gives the transient-free comparison. mode=rate topology=none is the check
-- that lr = 0 leaves the models put: no edges, the distance must stay at
-- its initial value, which is compared with the analytic one.
local fm = require "fedmesh"

local opt = fm.args {
  mode = "accuracy", topology = "ring", peers = 16, rounds = 30,
  eval_samples = 0, lr = 0.05, epochs = 1, batch = 32, seed = 1, k = 4,
  max_rounds = 600, floor = 1e-6, seeds = 16,
  replay_seeds = 1000, label = "",
}

-- ---- JSON ------------------------------------------------------------------
local enc
local function num(x)
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  if math.type(x) == "integer" then return tostring(x) end
  return string.format("%.8g", x)
end
-- obj("k1", v1, "k2", v2, ...): an object that keeps its key order
local function obj(...)
  local o = { __keys = {} }
  for i = 1, select("#", ...), 2 do
    local k, v = select(i, ...)
    o.__keys[#o.__keys + 1] = k
    o[k] = v
  end
  return o
end
enc = function(v)
  local t = type(v)
  if v == nil then return "null"
  elseif t == "number" then return num(v)
  elseif t == "boolean" then return tostring(v)
  elseif t == "string" then return (string.format("%q", v):gsub("\\\n", "\\n"))
  elseif v.__keys then
    local s = {}
    for _, k in ipairs(v.__keys) do
      s[#s + 1] = string.format("%q", k) .. ":" .. enc(v[k])
    end
    return "{" .. table.concat(s, ",") .. "}"
  else
    local s = {}
    for i = 1, #v do s[i] = enc(v[i]) end
    return "[" .. table.concat(s, ",") .. "]"
  end
end

-- the 1-minute load average when a configuration starts (timings are only
-- meaningful on a quiet machine)
local function loadavg()
  local f = io.open("/proc/loadavg")
  if not f then return nil end
  local v = tonumber(f:read("l"):match("^(%S+)"))
  f:close()
  return v
end

-- ---- topologies ------------------------------------------------------------
local N = opt.peers
local function graph(kind)
  if kind == "torus" then
    local r = math.floor(math.sqrt(N) + 0.5)
    assert(r * r == N, "torus needs a square number of peers")
    return fm.topology.torus { rows = r, cols = r }, r .. "x" .. r
  elseif kind == "kregular" then
    return fm.topology.kregular { peers = N, k = opt.k, seed = opt.seed },
      "k=" .. opt.k
  elseif kind == "none" then
    return fm.topology.edges { peers = N, edges = {} }, "no edges"
  end
  return fm.topology[kind] { peers = N }, nil
end

local widths = { 784, 200, 200, 10 }
local train, test = fm.data.fashion_mnist()
local parts = fm.partition.iid(train, { clients = N, seed = opt.seed })

-- ---- mode=accuracy ---------------------------------------------------------
local function first_at(rows, key, level)
  for _, r in ipairs(rows) do
    if r[key] and r[key] >= level then return r.round end
  end
  return nil
end

local function accuracy()
  local star = opt.topology == "star"
  local topo, shape
  if star then
    topo = fm.topology.star { clients = N }
  else
    topo, shape = graph(opt.topology)
  end
  local d = topo:describe()
  local e = {
    topology = topo,
    model = fm.model.mlp(widths),
    train = parts, test = test,
    rounds = opt.rounds,
    local_training = { epochs = opt.epochs, batch = opt.batch, lr = opt.lr },
    seed = opt.seed,
    quiet = true,
  }
  if star then
    e.clients_per_round = N
    e.aggregator = "fedavg"
  else
    e.consensus = "gossip"
    e.eval_samples = opt.eval_samples > 0 and opt.eval_samples or nil
  end
  local t0 = os.time()
  local res = fm.experiment(e):simulate()
  local rows, secs = {}, 0
  for _, r in ipairs(res.rounds) do
    secs = secs + r.seconds
    rows[#rows + 1] = obj("round", r.round, "accuracy", r.accuracy,
      "accuracy_min", star and r.accuracy or r.accuracy_min,
      "accuracy_max", star and r.accuracy or r.accuracy_max,
      "consensus_distance", star and 0 or r.consensus_distance,
      "train_loss", r.train_loss, "seconds", r.seconds)
  end
  local last = res.rounds[#res.rounds]
  local nev = (star or opt.eval_samples == 0) and #test or opt.eval_samples
  print(enc(obj(
    "bench", "p2p_fmnist", "part", "accuracy",
    "label", opt.label ~= "" and opt.label or nil,
    "topology", opt.topology, "shape", shape, "peers", N,
    "method", star and "fedavg (star, all clients every round)"
      or "d-psgd (gossip, metropolis-hastings)",
    "rounds", #res.rounds, "epochs", opt.epochs, "batch", opt.batch,
    "lr", opt.lr, "partition", "iid", "seed", opt.seed,
    "slem", not star and d.slem or nil,
    "spectral_gap", not star and d.spectral_gap or nil,
    "diameter", d.diameter, "load_at_start", loadavg(),
    "eval_samples", nev,
    "eval_note", star and "the global model on the whole test set"
      or (nev < #test and string.format("each peer on the same %d-sample "
        .. "seeded subset of the test set", nev)
        or "each peer on the whole test set"),
    "final_accuracy", last.accuracy,
    "final_accuracy_min", star and last.accuracy or last.accuracy_min,
    "final_accuracy_max", star and last.accuracy or last.accuracy_max,
    "best_accuracy", res.best_accuracy, "best_round", res.best_round,
    "first_round_at_80", first_at(res.rounds, "accuracy", 0.80),
    "first_round_at_85", first_at(res.rounds, "accuracy", 0.85),
    "first_round_min_at_85", not star
      and first_at(res.rounds, "accuracy_min", 0.85) or
      first_at(res.rounds, "accuracy", 0.85),
    "final_consensus_distance", star and 0 or last.consensus_distance,
    "seconds_per_round", secs / #res.rounds, "total_seconds", secs,
    "wall_seconds", os.time() - t0,
    "per_round", rows)))
end

-- ---- mode=rate -------------------------------------------------------------
-- Sum over parameters of their init variance: weights and biases of layer
-- l are U(-b, b), b = 1/sqrt(fan_in) (model.c), variance b^2/3.
local function init_variance()
  local s = 0
  for l = 1, #widths - 1 do
    s = s + (widths[l] * widths[l + 1] + widths[l + 1]) / (3 * widths[l])
  end
  return s
end

-- One gossip round on the covariance: S <- W S W^T, W from the graph's
-- round-r weights (sparse rows).
local function replay_step(g, S, r)
  local rows = {}
  for i = 1, N do
    local nb = g:neighbours(i, r)
    local row = { { i, g:weight(i, i, r) } }
    for _, j in ipairs(nb) do row[#row + 1] = { j, g:weight(i, j, r) } end
    rows[i] = row
  end
  local T = {}
  for i = 1, N do -- T = W S
    local Ti = {}
    for c = 1, N do Ti[c] = 0 end
    for _, e in ipairs(rows[i]) do
      local Sj, w = S[e[1]], e[2]
      for c = 1, N do Ti[c] = Ti[c] + w * Sj[c] end
    end
    T[i] = Ti
  end
  local U = {}
  for i = 1, N do -- U = T W^T: U_ic = sum_k T_ik W_ck
    local Ti, Ui = T[i], {}
    for c = 1, N do
      local s = 0
      for _, e in ipairs(rows[c]) do s = s + Ti[e[1]] * e[2] end
      Ui[c] = s
    end
    U[i] = Ui
  end
  return U
end

local function replay_distance(S, s2)
  local m = 0
  for i = 1, N do m = m + math.sqrt(math.max(S[i][i], 0)) end
  return math.sqrt(s2) * m / N
end

-- geometric mean of d_{t+1}/d_t over [a, b], and the log-linear fit
local function rates(d, a, b)
  if not (a and b and b > a) then return nil, nil end
  local geo = (d[b] / d[a]) ^ (1 / (b - a))
  local n, st, sy, stt, sty = 0, 0, 0, 0, 0
  for t = a, b do
    local y = math.log(d[t])
    n, st, sy, stt, sty = n + 1, st + t, sy + y, stt + t * t, sty + t * y
  end
  local slope = (n * sty - st * sy) / (n * stt - st * st)
  return geo, math.exp(slope)
end

local function identity_minus_mean()
  local S = {}
  for i = 1, N do
    S[i] = {}
    for j = 1, N do S[i][j] = (i == j and 1 or 0) - 1 / N end
  end
  return S
end

-- Replays rounds 1, 2, ... of graph g on the covariance until stop(t,
-- pred) is true or max rounds. pred[t]: the predicted consensus distance
-- (the engine's metric, mean of the peers' norms); rms[t]: the root mean
-- square of the peers' norms.
local function replay(g, max, stop)
  local s2 = init_variance()
  local S = identity_minus_mean()
  local pred, rms = {}, {}
  pred[0] = replay_distance(S, s2)
  rms[0] = pred[0]
  for t = 1, max do
    S = replay_step(g, S, t)
    pred[t] = replay_distance(S, s2)
    local tr = 0
    for i = 1, N do tr = tr + S[i][i] end
    rms[t] = math.sqrt(s2 * math.max(tr, 0) / N)
    if stop and stop(t, pred) then break end
  end
  return pred, rms
end

-- The pure-gossip run: lr 0, independent initial models, no test set.
local function gossip_run(g, seed, rounds)
  local res = fm.experiment {
    topology = g,
    model = fm.model.mlp(widths),
    train = parts, -- no test set: nothing to evaluate
    rounds = rounds,
    local_training = { epochs = 1, batch = opt.batch, lr = 0 },
    consensus = "gossip",
    init = "independent",
    seed = seed,
    quiet = true,
  }:simulate()
  local dist, secs = {}, {}
  for _, r in ipairs(res.rounds) do
    dist[r.round] = r.consensus_distance
    secs[r.round] = r.seconds
  end
  return dist, secs
end

local function sum_seconds(secs)
  local s = 0
  for _, v in ipairs(secs) do s = s + v end
  return s
end

local function rows_of(dist, pred, secs)
  local rows = {}
  for t = 1, #dist do
    rows[t] = obj("round", t, "consensus_distance", dist[t],
      "predicted_distance", pred[t], "seconds", secs[t])
  end
  return rows
end

-- Static graphs (and the complete graph, and the no-edge check).
local function rate_static()
  local g, shape = graph(opt.topology)
  local d = g:describe()
  local asym = d.slem
  local d0 = replay(g, 0)[0]
  local t0, stopped
  local pred = replay(g, opt.max_rounds, function(t, p)
    if opt.topology == "complete" or opt.topology == "none" then
      return t >= 5
    end
    -- the window starts where the replay's one-step rate is within 1% (in
    -- exponent) of slem, and spans 3 decades (at least 20 rounds) or
    -- stops at floor * d0, well above the float32 rounding floor of the
    -- distance (~3e-8 d0, see the complete graph)
    if t0 == nil and t >= 2 and
        math.abs(math.log(p[t] / p[t - 1]) / math.log(asym) - 1) < 0.01 then
      t0 = t - 1
    end
    if p[t] < opt.floor * d0 then stopped = "floor"; return true end
    return t0 ~= nil and t >= t0 + math.max(20,
      math.ceil(3 * math.log(10) / -math.log(asym)))
  end)
  local rounds = #pred
  local t1 = rounds
  while stopped == "floor" and t1 > 1 and pred[t1] < opt.floor * d0 do
    t1 = t1 - 1
  end
  -- a clustered spectrum (random regular graphs) can reach the floor
  -- before the transient is gone: keep at least 10 rounds of window and
  -- report how far the replay's rate at its start still is from slem
  if t0 and t1 > 10 and t1 - t0 < 10 then t0 = t1 - 10 end
  local wall, load = os.time(), loadavg()
  local dist, secs = gossip_run(g, opt.seed, rounds)
  local out = obj(
    "bench", "p2p_fmnist", "part", "consensus_rate",
    "topology", opt.topology, "shape", shape, "peers", N,
    "time_varying", false, "rounds", rounds, "seed", opt.seed,
    "init", "independent", "lr", 0, "epochs", 1, "batch", opt.batch,
    "describe_slem", d.slem, "describe_spectral_gap", d.spectral_gap,
    "initial_distance_analytic", d0, "load_at_start", load,
    "seconds_per_round", sum_seconds(secs) / rounds,
    "wall_seconds", os.time() - wall)
  local function add(k, v)
    out.__keys[#out.__keys + 1] = k
    out[k] = v
  end
  if opt.topology == "none" then
    local same = true
    for t = 2, rounds do same = same and dist[t] == dist[1] end
    add("distance_unchanged_over_rounds", same)
    add("measured_over_analytic_initial_distance", dist[1] / d0)
  elseif opt.topology == "complete" then
    local m = 0
    for t = 1, rounds do m = math.max(m, dist[t] / d0) end
    add("predicted_rate", d.slem)
    add("distance_after_round_1_relative", dist[1] / d0)
    add("max_relative_distance_rounds_1_to_5", m)
    add("rate_ratio", nil)
    add("note", "W = J/N averages exactly in one round: the distance "
      .. "drops from the initial one to the float32 rounding floor and "
      .. "stays there, so a per-round rate (and its ratio) is not "
      .. "meaningful")
  else
    local geo, fit = rates(dist, t0, t1)
    local pgeo = rates(pred, t0, t1)
    add("predicted_rate", asym)
    add("window", { t0, t1 })
    add("measured_rate_geomean", geo)
    add("measured_rate_fit", fit)
    add("replayed_rate_window", pgeo)
    add("replayed_exponent_excess_at_window_start",
      math.log(pred[t0 + 1] / pred[t0]) / math.log(asym) - 1)
    add("rate_ratio", geo / asym)
    add("exponent_ratio", math.log(geo) / math.log(asym))
    add("rate_ratio_replay", geo / pgeo)
    add("exponent_ratio_replay", math.log(geo) / math.log(pgeo))
    add("measured_over_replayed_distance_first", dist[1] / pred[1])
    add("measured_over_replayed_distance_last", dist[t1] / pred[t1])
    add("rounds_per_10x_predicted", math.log(10) / -math.log(asym))
    add("rounds_per_10x_measured", math.log(10) / -math.log(geo))
  end
  add("per_round", rows_of(dist, pred, secs))
  print(enc(out))
end

-- Time-varying graphs: a fresh random matching every round. For a uniform
-- random perfect matching W is a projection (W = W^T W) and E[W] =
-- lambda I + (1 - lambda) J/N with lambda = (N-2)/(2(N-1)): whatever the
-- peers' models, E[ ||e_{t+1}||^2 | e_t ] = lambda ||e_t||^2. So the
-- arithmetic mean over rounds of the squared one-step contraction
-- (d_{t+1}/d_t)^2 estimates lambda (its square root is the predicted
-- rate of the norm), while the geometric mean (the typical rate, the
-- Lyapunov exponent) is lower by Jensen's inequality. The matching
-- sequence is random, so several seeds are pooled.
local function rate_matching()
  assert(N % 2 == 0, "rate for matching: even peers")
  local lambda = (N - 2) / (2 * (N - 1))
  local seeds, slems = {}, {}
  local sq, lg, n = 0, 0, 0          -- measured, pooled
  local psq, plg, prms, pn = 0, 0, 0, 0 -- replayed, pooled
  local wall, secs_all, rounds_all = os.time(), 0, 0
  local load = loadavg()
  for s = 1, opt.seeds do
    local g = fm.topology.matching { peers = N, seed = s }
    local d = g:describe()
    slems[s] = d.slem
    local d0
    local pred, rms = replay(g, opt.max_rounds, function(t, p)
      return p[t] < opt.floor * p[0]
    end)
    d0 = pred[0]
    local rounds = #pred
    local t1 = rounds - 1 -- the last round above floor * d0
    local dist, secs = gossip_run(g, s, rounds)
    secs_all, rounds_all = secs_all + sum_seconds(secs), rounds_all + rounds
    local msq, mlg, psq1 = 0, 0, 0
    for t = 1, t1 - 1 do
      local r = dist[t + 1] / dist[t]
      local pr = pred[t + 1] / pred[t]
      msq, mlg, psq1 = msq + r * r, mlg + math.log(r), psq1 + pr * pr
      sq, lg, n = sq + r * r, lg + math.log(r), n + 1
      psq, plg, pn = psq + pr * pr, plg + math.log(pr), pn + 1
      prms = prms + (rms[t + 1] / rms[t]) ^ 2
    end
    local k = t1 - 1
    seeds[s] = obj("seed", s, "rounds", rounds, "window", { 1, t1 },
      "describe_slem", d.slem,
      "mean_squared_contraction", msq / k,
      "replayed_mean_squared_contraction", psq1 / k,
      "typical_rate_geomean", math.exp(mlg / k),
      "measured_over_replayed_distance_last", dist[t1] / pred[t1],
      "per_round", rows_of(dist, pred, secs))
  end
  -- the replay alone, over many more matching sequences (seeds 1001..):
  -- the sampling error of the few measured sequences, and the exact
  -- expectation E[(rms_{t+1}/rms_t)^2] = lambda it converges to
  local rsq, rlg, rn = 0, 0, 0
  for s = 1001, 1000 + opt.replay_seeds do
    local g = fm.topology.matching { peers = N, seed = s }
    local _, rms = replay(g, 20)
    for t = 1, 19 do
      local r = rms[t + 1] / rms[t]
      rsq, rlg, rn = rsq + r * r, rlg + math.log(r), rn + 1
    end
  end
  local mslem = 0
  for _, v in ipairs(slems) do mslem = mslem + v end
  mslem = mslem / #slems
  local measured = math.sqrt(sq / n)
  print(enc(obj(
    "bench", "p2p_fmnist", "part", "consensus_rate",
    "topology", "matching", "peers", N, "time_varying", true,
    "seeds", opt.seeds, "load_at_start", load, "init", "independent", "lr", 0, "epochs", 1,
    "batch", opt.batch, "pooled_steps", n,
    "describe_slem_seed1", slems[1], "describe_slem_mean", mslem,
    "describe_samples", 64,
    "describe_note", "for time-varying graphs describe() reports the slem "
      .. "of the mean of the first 64 rounds' W: a sample estimate of "
      .. "lambda_2(E[W]) biased upwards (E[W] has N-1 equal eigenvalues "
      .. "on the disagreement space; sampling noise spreads them and slem "
      .. "takes the largest)",
    "exact_lambda2_EW", lambda,
    "predicted_rate", math.sqrt(lambda),
    "predicted_rate_from_describe", math.sqrt(slems[1]),
    "measured_mean_squared_contraction", sq / n,
    "measured_rate", measured,
    "rate_ratio", measured / math.sqrt(lambda),
    "exponent_ratio", math.log(measured) / math.log(math.sqrt(lambda)),
    "rate_ratio_vs_describe", measured / math.sqrt(slems[1]),
    "replayed_mean_squared_contraction", psq / pn,
    "replayed_mean_squared_contraction_rms", prms / pn,
    "replay_only_seeds", opt.replay_seeds,
    "replay_only_mean_squared_contraction_rms", rsq / rn,
    "replay_only_rate_rms", math.sqrt(rsq / rn),
    "replay_only_typical_rate_geomean", math.exp(rlg / rn),
    "measured_typical_rate_geomean", math.exp(lg / n),
    "replayed_typical_rate_geomean", math.exp(plg / pn),
    "seconds_per_round", secs_all / rounds_all,
    "wall_seconds", os.time() - wall,
    "per_seed", seeds)))
end

local function rate()
  if opt.topology == "matching" then
    rate_matching()
  else
    rate_static()
  end
end

if opt.mode == "accuracy" then
  accuracy()
elseif opt.mode == "rate" then
  rate()
else
  error("mode must be accuracy or rate, not " .. opt.mode)
end
