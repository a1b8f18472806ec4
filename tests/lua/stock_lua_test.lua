-- stock_lua_test.lua: require "fedmesh" from Debian's lua5.4 (LUA_CPATH
-- points at the build's lib/lua/5.4) and run a small federation.
local fm = require "fedmesh"
local tr, te = fm.data.synthetic { devices = 10, seed = 1 }
local result = fm.experiment {
  model = fm.model.logreg { 60, 10 }, train = fm.partition.natural(tr),
  test = te, rounds = 3, clients_per_round = 4, quiet = true,
}:simulate()
assert(#result.rounds == 3 and result.accuracy > 0)
local found = false
for _, p in ipairs(fm.plugins()) do found = found or p.name == "fedavg" end
assert(found, "the module finds its built-in plugins next to libfedmesh")
print("stock lua5.4 ok")
