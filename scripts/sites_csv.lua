-- sites_csv.lua: a federation of sites that each bring their own data.
-- Every site (a hospital, a bank) holds its own CSV file, readable by it
-- alone; the server holds none. The same script simulates the federation
-- and deploys it:
--
--   fedmesh run scripts/make_sites.lua dir=data      # the sites' files
--   fedmesh run scripts/sites_csv.lua                # simulated: every file here
--   fedmesh launch scripts/sites_csv.lua             # 1 server + 3 site processes
--   fedmesh node scripts/sites_csv.lua --node c2     # site c2, on its own host
--
-- fm.node() says which node the script runs as, so each site loads
-- data/<its name>.csv (and its held-out data/<name>_test.csv, on which it
-- evaluates the global model: federated evaluation). Simulated, the
-- script gives every site's dataset as a list, one client each, and the
-- metrics are those of the deployment.
--
-- Arguments: rounds=N dir=DIR host=H port=P keys=DIR round_timeout=S
-- eval_every=K save=FILE (the final model, saved by the server).
local fm = require "fedmesh"

local opt = fm.args { rounds = 20, dir = "data", sites = 3, host = "127.0.0.1",
  port = 5560, keys = "keys", save = "", eval_every = 1, seed = 1,
  round_timeout = 60 }

local names = {}
for i = 1, opt.sites do names[i] = "c" .. i end
local function site(name, suffix)
  return fm.data.csv(string.format("%s/%s%s.csv", opt.dir, name, suffix or ""))
end

local me = fm.node()
local train, held -- nil on the server: it holds no data
if me.role == "simulation" then
  train, held = {}, {}
  for i, n in ipairs(names) do train[i], held[i] = site(n), site(n, "_test") end
elseif me.role == "client" then
  train, held = site(me.name), site(me.name, "_test")
end

local result = fm.experiment {
  model = fm.model.mlp { 20, 32, 10 },
  train = train,          -- a list of sites (simulated), or this site's Dataset
  client_test = held,     -- each site's held-out data: federated evaluation
  rounds = opt.rounds, clients_per_round = #names, seed = opt.seed,
  eval_every = opt.eval_every,
  local_training = { epochs = 2, batch = 16, lr = 0.05 },
  round_timeout = opt.round_timeout, -- seconds the server waits for the sites
  deploy = {
    transport = "tcp",
    server = opt.host .. ":" .. opt.port,
    clients = names,
    keys = opt.keys,
  },
}:run()

if opt.save ~= "" then result:save_model(opt.save) end
local last = result.rounds[#result.rounds]
if last and last.client_accuracy then
  print(string.format("round %d: clients' accuracy %.4f (min %.4f, max %.4f)",
    last.round, last.client_accuracy, last.client_accuracy_min,
    last.client_accuracy_max))
end
