-- topology_test.lua: fm.topology builders, describe() against closed
-- forms, neighbours and mixing weights, and the errors bad options give.
local fm = require "fedmesh"
local T = fm.topology

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= (tol or 1e-9),
    string.format("%s: %.17g vs %.17g", what or "value", a, b))
end

local function eq(a, b, what)
  assert(a == b, string.format("%s: %s vs %s", what or "value", tostring(a),
    tostring(b)))
end

-- ring of 16: degree 2, diameter 8, slem = 1/3 + 2/3 cos(2 pi / 16)
local ring = T.ring { peers = 16 }
eq(tostring(ring), "fedmesh.Graph(ring, 16 peers)", "tostring")
eq(ring.kind, "ring", "kind")
eq(ring.peers, 16, "peers")
eq(#ring, 16, "#ring")
local d = ring:describe()
eq(d.kind, "ring", "describe kind")
eq(d.nodes, 16, "nodes")
eq(d.edges, 16, "edges")
eq(d.degree_min, 2, "degree_min")
eq(d.degree_max, 2, "degree_max")
near(d.degree_mean, 2, 0, "degree_mean")
eq(d.connected, true, "connected")
eq(d.diameter, 8, "diameter")
assert(math.type(d.diameter) == "integer", "diameter is an integer")
eq(d.directed, false, "directed")
eq(d.time_varying, false, "time_varying")
eq(d.samples, 1, "samples")
local slem = 0
for k = 1, 15 do
  slem = math.max(slem, math.abs(1 / 3 + 2 / 3 * math.cos(2 * math.pi * k / 16)))
end
near(d.slem, slem, 1e-9, "ring slem")
near(d.spectral_gap, 1 - slem, 1e-9, "ring spectral gap")

-- neighbours and Metropolis-Hastings weights (1-based peers)
local nb = ring:neighbours(1)
eq(#nb, 2, "#neighbours")
eq(nb[1], 2, "neighbour 1")
eq(nb[2], 16, "neighbour 2")
near(ring:weight(1, 2), 1 / 3, 1e-15, "W_12")
near(ring:weight(1, 1), 1 / 3, 1e-15, "W_11")
eq(ring:weight(1, 5), 0, "W_15")
eq(ring:weight(16, 1), ring:weight(1, 16), "symmetric W")

-- complete graph: W = J / n, spectral gap 1
local c = T.complete { peers = 8 }
d = c:describe()
near(d.spectral_gap, 1, 1e-12, "complete gap")
eq(d.diameter, 1, "complete diameter")
eq(d.edges, 28, "complete edges")
near(c:weight(3, 5), 1 / 8, 1e-15, "complete W")

-- torus 4 x 4: degree 4, diameter 2 + 2
local tor = T.torus { rows = 4, cols = 4 }
d = tor:describe()
eq(tor.peers, 16, "torus peers")
eq(d.degree_min, 4, "torus degree_min")
eq(d.degree_max, 4, "torus degree_max")
eq(d.diameter, 4, "torus diameter")
eq(d.edges, 32, "torus edges")

-- every row of W sums to 1
for _, g in ipairs { ring, tor, T.kregular { peers = 10, k = 3, seed = 2 },
                     T.edges { peers = 4, edges = { { 1, 2 }, { 2, 3 }, { 2, 4 } } } } do
  for i = 1, g.peers do
    local s = 0
    for j = 1, g.peers do s = s + g:weight(i, j) end
    near(s, 1, 1e-12, "row sum of " .. tostring(g))
  end
end

-- random k-regular: all degrees k; seeded
local kr = T.kregular { peers = 20, k = 3, seed = 4 }
for i = 1, 20 do eq(#kr:neighbours(i), 3, "kregular degree") end
local function same(g, h)
  for i = 1, g.peers do
    if table.concat(g:neighbours(i), ",") ~= table.concat(h:neighbours(i), ",") then
      return false
    end
  end
  return true
end
assert(same(kr, T.kregular { peers = 20, k = 3, seed = 4 }), "same seed, same graph")
assert(not same(kr, T.kregular { peers = 20, k = 3, seed = 5 }), "another seed")

-- small world keeps n k / 2 edges
d = T.small_world { peers = 30, k = 4, rewire = 0.3, seed = 1 }:describe()
eq(d.edges, 60, "small_world edges")

-- Erdos-Renyi at a tiny p: disconnected, infinite diameter
local er = T.erdos_renyi { peers = 20, p = 0.001 }
d = er:describe()
eq(d.connected, false, "ER connected")
eq(d.diameter, math.huge, "ER diameter")
near(d.spectral_gap, 0, 1e-12, "disconnected gap")

-- explicit edges: undirected path; directed cycle and path
local path = T.edges { peers = 3, edges = { { 1, 2 }, { 2, 3 }, { 2, 1 } } }
d = path:describe()
eq(d.edges, 2, "duplicates collapse")
eq(d.diameter, 2, "path diameter")
local cyc = T.edges { peers = 3, edges = { { 1, 2 }, { 2, 3 }, { 3, 1 } }, directed = true }
d = cyc:describe()
eq(d.directed, true, "directed")
eq(d.connected, true, "strongly connected")
eq(d.diameter, 2, "cycle diameter")
eq(#cyc:neighbours(2), 1, "in-neighbours")
eq(cyc:neighbours(2)[1], 1, "in-neighbour of 2")
near(cyc:weight(2, 1), 0.5, 1e-15, "directed W")
d = T.edges { peers = 3, edges = { { 1, 2 }, { 2, 3 } }, directed = true }:describe()
eq(d.connected, false, "directed path not strongly connected")
eq(d.diameter, math.huge, "directed path diameter")

-- time-varying: a perfect matching every round, deterministic per round
local m = T.matching { peers = 8, seed = 3 }
d = m:describe()
eq(d.time_varying, true, "time_varying")
eq(d.samples, 64, "samples")
local differ = false
for r = 1, 10 do
  for i = 1, 8 do
    local n = m:neighbours(i, r)
    eq(#n, 1, "matched")
    eq(m:neighbours(n[1], r)[1], i, "mutual")
    near(m:weight(i, n[1], r), 0.5, 1e-15, "matching W")
  end
  differ = differ or table.concat(m:neighbours(1, r), ",") ~= table.concat(m:neighbours(1, 1), ",")
end
assert(differ, "the matching changes between rounds")
local m2 = T.matching { peers = 8, seed = 3 }
eq(m2:neighbours(5, 7)[1], m:neighbours(5, 7)[1], "matching deterministic")
d = T.random_kregular { peers = 12, k = 3, seed = 1 }:describe()
eq(d.time_varying, true, "random_kregular time_varying")
assert(d.degree_min > 3, "the union of 64 rounds has more edges")

-- star and hierarchical federations stay tables, with describe()
local s = T.star { clients = 10 }
eq(s.kind, "star", "star kind")
eq(s.clients, 10, "star clients")
d = s:describe()
eq(d.nodes, 11, "star nodes")
eq(d.degree_max, 10, "star hub")
eq(d.diameter, 2, "star diameter")
assert(d.spectral_gap > 0 and d.spectral_gap < 1, "star gap")
d = T.star { clients = 5000 }:describe()
eq(d.nodes, 5001, "big star")
assert(d.slem == nil and d.spectral_gap == nil, "no spectra past 4096 nodes")

local h = T.hierarchical { fanouts = { 4, 25 }, every = { 5, 1 } }
eq(h.kind, "hierarchical", "hierarchical kind")
eq(h.clients, 100, "hierarchical clients")
eq(h.fanouts[1], 4, "fanouts")
eq(h.every[1], 5, "every")
eq(h.every[2], 1, "every edge")
d = h:describe()
eq(d.nodes, 105, "hierarchy nodes")
eq(d.edges, 104, "hierarchy edges")
eq(d.levels, 2, "levels")
eq(d.diameter, 4, "hierarchy diameter")
eq(d.degree_max, 26, "edge aggregator degree")
eq(T.hierarchical { fanouts = { 2, 3, 4 } }.every[2], 1, "every defaults to 1")
eq(T.hierarchical { fanouts = { 2, 3, 4 } }.clients, 24, "3 levels")

-- mistakes name the call's line, the builder and the field
local function fails(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(err:find(pattern), "error '" .. tostring(err) .. "' does not match " .. pattern)
  return err
end
local e = fails("topology_test.lua:%d+: fm.topology.ring: unknown field 'peer' %(did you mean 'peers'%?%)",
  function() return T.ring { peer = 16 } end)
assert(e:find("valid fields: peers"), e)
fails("fm.topology.ring: field 'peers' is required", function() return T.ring {} end)
fails("fm.topology.torus: unknown field 'row' %(did you mean 'rows'%?%)",
  function() return T.torus { row = 4, cols = 4 } end)
fails("fm.topology.kregular: k = 3 .*odd", function() return T.kregular { peers = 5, k = 3 } end)
fails("fm.topology.kregular: k = 5 must be less than", function() return T.kregular { peers = 5, k = 5 } end)
fails("fm.topology.erdos_renyi: field 'p' = 1.5.* out of range",
  function() return T.erdos_renyi { peers = 5, p = 1.5 } end)
fails("fm.topology.erdos_renyi: field 'p' = .* out of range",
  function() return T.erdos_renyi { peers = 5, p = 0 / 0 } end)
fails("fm.topology.small_world: field 'rewire' must be a number, got string",
  function() return T.small_world { peers = 10, k = 4, rewire = "0.1" } end)
fails("fm.topology.small_world: k = 3 must be even",
  function() return T.small_world { peers = 10, k = 3, rewire = 0.1 } end)
fails("fm.topology.small_world: field 'rewire' is required",
  function() return T.small_world { peers = 10, k = 4 } end)
fails("fm.topology.edges: edges%[2%] = { 3, 3 } is a self%-loop",
  function() return T.edges { peers = 3, edges = { { 1, 2 }, { 3, 3 } } } end)
fails("fm.topology.edges: edges%[1%]%[2%] must be a peer in 1..3",
  function() return T.edges { peers = 3, edges = { { 1, 4 } } } end)
fails("fm.topology.matching: field 'seed' must be an integer",
  function() return T.matching { peers = 4, seed = "x" } end)
fails("fm.topology.hierarchical: every%[2%] must be 1",
  function() return T.hierarchical { fanouts = { 4, 25 }, every = { 5, 2 } } end)
fails("fm.topology.hierarchical: fanouts%[2%] must be an integer",
  function() return T.hierarchical { fanouts = { 4, 0 } } end)
fails("fm.topology.hierarchical: field 'every' must list 2 periods",
  function() return T.hierarchical { fanouts = { 4, 25 }, every = { 5 } } end)
fails("fm.topology.hierarchical: field 'fanouts'.* is required",
  function() return T.hierarchical {} end)
fails("peer 0 is outside 1..16", function() return ring:neighbours(0) end)
fails("peer 17 is outside 1..16", function() return ring:weight(1, 17) end)
fails("describe: .*clients", function() return T.star {}:describe() end)
print("topology ok")

-- time-varying graphs: the spectrum of the exact E[W] (a random perfect
-- matching of 16 peers: E[W] = 1/2 I + 1/30 (J - I), slem (N-2)/(2(N-1)))
do
  local d = fm.topology.matching { peers = 16 }:describe()
  assert(math.abs(d.slem - 14 / 30) < 1e-9, "matching slem " .. d.slem)
  assert(d.time_varying and d.samples == 64)
end
