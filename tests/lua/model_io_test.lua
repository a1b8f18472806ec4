-- model_io_test.lua: result.model, model:evaluate / predict / save / init,
-- fm.model.load and its refusals, warm starts, and resuming a simulation
-- from its checkpoint.
local fm = require "fedmesh"

local tr, te = fm.data.synthetic { alpha = 0.5, beta = 0.5, devices = 20, seed = 3 }
local parts = fm.partition.iid(tr, { clients = 20, seed = 3 })

local function exp(t)
  local cfg = {
    model = fm.model.mlp { 60, 32, 10 }, train = parts, test = te,
    rounds = 6, clients_per_round = 5, seed = 9, threads = 2, quiet = true,
    local_training = { epochs = 1, batch = 16, lr = 0.05 },
  }
  for k, v in pairs(t or {}) do cfg[k] = v end
  return fm.experiment(cfg)
end

local function expect_error(f, pattern, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):find(pattern), "error '" .. tostring(err) .. "' does not match " .. pattern)
  return err
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- ---- the final model ------------------------------------------------------
local r = exp():simulate()
assert(r.model, "result.model")
assert(tostring(r.model) == "fedmesh.Model(mlp 60-32-10, 2282 parameters)", tostring(r.model))
assert(r.model:trained() and not fm.model.mlp { 60, 32, 10 }:trained())
local ev = r.model:evaluate(te)
assert(ev.examples == #te, ev.examples)
-- the same evaluation as the server's last round
assert(ev.accuracy == r.accuracy and ev.loss == r.loss,
  string.format("evaluate %.17g %.17g vs result %.17g %.17g", ev.accuracy, ev.loss,
    r.accuracy, r.loss))

-- predict agrees with evaluate; classes from 0, like the labels
local pred, labels = r.model:predict(te), te:labels()
assert(#pred == #te and #labels == #te)
local hits = 0
for i = 1, #pred do
  assert(math.type(pred[i]) == "integer" and pred[i] >= 0 and pred[i] < 10, pred[i])
  if pred[i] == labels[i] then hits = hits + 1 end
end
assert(hits / #te == ev.accuracy, string.format("%d / %d vs %.17g", hits, #te, ev.accuracy))
local counts = te:label_counts()
local n0 = 0
for i = 1, #labels do if labels[i] == 0 then n0 = n0 + 1 end end
assert(n0 == counts[0], "labels() and label_counts() agree")

-- ---- save / load round trip -------------------------------------------------
assert(r:save_model("m.fmm") == r)
local bytes = read("m.fmm")
assert(#bytes == 48 + 4 * 2282 + 4, #bytes) -- header with 3 widths, params, CRC
assert(bytes:sub(1, 8) == "FMMODEL\0")
local m = fm.model.load("m.fmm")
assert(tostring(m) == tostring(r.model))
local ev2 = m:evaluate(te)
assert(ev2.accuracy == ev.accuracy and ev2.loss == ev.loss, "bit-identical parameters")
assert(m:save("m2.fmm") == m)
assert(read("m2.fmm") == bytes, "saving a loaded model writes the same bytes")
for i, l in ipairs(m:layers()) do
  assert(l.name == r.model:layers()[i].name)
end

-- CNN and logreg round trips (architecture only, no training)
local cnn = fm.model.cnn { channels = { 2, 3 }, hidden = 8, classes = 10 }:init(4)
cnn:save("cnn.fmm")
local c2 = fm.model.load("cnn.fmm")
assert(tostring(c2) == tostring(cnn), tostring(c2))
assert(read("cnn.fmm") == (c2:save("cnn2.fmm") and read("cnn2.fmm")))
local lg = fm.model.logreg { 60, 10 }:init(1)
lg:save("lg.fmm")
assert(tostring(fm.model.load("lg.fmm")) == "fedmesh.Model(logreg 60-10, 610 parameters)")

-- ---- refusals -----------------------------------------------------------------
expect_error(fm.model.load, "cannot open model file nope.fmm: No such file", "nope.fmm")
write("short.fmm", bytes:sub(1, #bytes - 100))
expect_error(fm.model.load, "model file short.fmm is truncated: expected " .. #bytes ..
  " bytes, got " .. (#bytes - 100), "short.fmm")
write("short2.fmm", bytes:sub(1, 20))
expect_error(fm.model.load, "truncated: expected at least", "short2.fmm")
local function flip(s, i)
  return s:sub(1, i - 1) .. string.char(s:byte(i) ~ 1) .. s:sub(i + 1)
end
write("flip.fmm", flip(bytes, 500))
expect_error(fm.model.load, "flip.fmm is damaged: the parameters' checksum does not match",
  "flip.fmm")
write("flip2.fmm", flip(bytes, 26))
expect_error(fm.model.load, "damaged header %(checksum mismatch%)", "flip2.fmm")
write("magic.fmm", "PK\3\4" .. bytes:sub(5))
expect_error(fm.model.load, "magic.fmm is not a fedmesh model file", "magic.fmm")
write("v9.fmm", bytes:sub(1, 8) .. "\9\0\0\0" .. bytes:sub(13))
expect_error(fm.model.load, "format version 9, newer than this fedmesh", "v9.fmm")
write("long.fmm", bytes .. "xx")
expect_error(fm.model.load, "longer than its header says", "long.fmm")

-- a header that passes its checksum but whose widths (60-32-11) do not
-- give its parameter count: recompute the CRC-32 in Lua
local function crc32(s)
  local c = 0xffffffff
  for i = 1, #s do
    c = c ~ s:byte(i)
    for _ = 1, 8 do
      c = (c >> 1) ~ (0xedb88320 & -(c & 1))
    end
  end
  return (~c) & 0xffffffff
end
local h = bytes:sub(1, 32) .. string.pack("<I4", 11) .. bytes:sub(37, 44)
write("incons.fmm", h .. string.pack("<I4", crc32(h)) .. bytes:sub(49))
expect_error(fm.model.load, "inconsistent: its architecture mlp 60%-32%-11 has 2315 " ..
  "parameters but the file holds 2282", "incons.fmm")
assert(crc32(bytes:sub(1, 44)) == string.unpack("<I4", bytes, 45), "the CRC is zlib's")

-- wrong data for the model, naming both
local other = fm.data.synthetic { devices = 4, seed = 1, dim = 30 }
local e = expect_error(m.evaluate, "model input size 60 does not match the data's 30 features",
  m, other)
assert(e:find("model mlp 60%-32%-10"), e)
expect_error(m.predict, "model input size 60 does not match the data's 30 features", m, other)
expect_error(function()
  fm.experiment { model = m, train = fm.partition.iid(other, { clients = 4 }), quiet = true }
end, "model input size 60 does not match the data's 30 features %(model mlp 60%-32%-10")
expect_error(fm.model.mlp { 60, 10 }.evaluate, "has no parameters: fm.model.mlp{...} is an " ..
  "architecture", fm.model.mlp { 60, 10 }, te)
expect_error(fm.model.mlp { 60, 10 }.save, "has no parameters", fm.model.mlp { 60, 10 }, "x.fmm")
expect_error(m.save, "cannot write model file no/such/dir.fmm", m, "no/such/dir.fmm")
assert(read("m.fmm") == bytes, "refusals changed nothing")

-- ---- init and warm starts -------------------------------------------------------
-- m:init(seed) is the model an experiment with that seed starts from: with
-- lr = 0 FedAvg keeps it
local arch = fm.model.mlp { 60, 32, 10 }
local frozen = exp { rounds = 1, local_training = { lr = 0 } }:simulate()
local i9 = arch:init(9):evaluate(te)
assert(i9.accuracy == frozen.accuracy and i9.loss == frozen.loss, "init(seed) = round 0")
assert(arch:init(8):evaluate(te).loss ~= i9.loss, "the seed matters")
-- warm start: 3 rounds from the loaded 6-round model continue its training
local warm = exp { model = m, rounds = 1, local_training = { lr = 0 } }:simulate()
assert(warm.accuracy == ev.accuracy and warm.loss == ev.loss, "training starts from the model")
local more = exp { model = fm.model.load("m.fmm"), rounds = 3, seed = 10 }:simulate()
assert(more.rounds[1].train_loss < r.rounds[1].train_loss, "warm start trains from the model")

-- ---- resume a simulation ----------------------------------------------------------
os.remove("run.ckpt")
local straight = exp():simulate()
-- interrupted after round 3 (an error in on_round), then resumed
local err = expect_error(function()
  exp { checkpoint = "run.ckpt", on_round = function(row)
    if row.round == 3 then error("stop here") end
  end }:simulate()
end, "stop here")
local seen = {}
local resumed = exp { checkpoint = "run.ckpt", resume = true,
  on_round = function(row) seen[#seen + 1] = row.round end }:simulate()
assert(#resumed.rounds == 6 and #seen == 6, "checkpointed rounds are replayed, then 4..6 run")
for i = 1, 6 do
  local a, b = straight.rounds[i], resumed.rounds[i]
  for _, k in ipairs { "accuracy", "loss", "train_loss", "bytes_sent", "updates" } do
    assert(a[k] == b[k], string.format("round %d %s: %.17g straight vs %.17g resumed",
      i, k, a[k], b[k]))
  end
end
assert(resumed.model:evaluate(te).loss == straight.model:evaluate(te).loss)
-- the same with a run that ended at round 3 and is extended to 6
os.remove("run3.ckpt")
exp { checkpoint = "run3.ckpt", rounds = 3 }:simulate()
local ext = exp { checkpoint = "run3.ckpt", resume = true }:simulate()
for i = 1, 6 do
  assert(ext.rounds[i].accuracy == straight.rounds[i].accuracy and
         ext.rounds[i].loss == straight.rounds[i].loss, "extended run, round " .. i)
end
-- a finished checkpoint: nothing left to run, same model
local again = exp { checkpoint = "run3.ckpt", resume = true }:simulate()
assert(again.model:evaluate(te).loss == straight.model:evaluate(te).loss)
-- resume without a checkpoint file starts from round 1
os.remove("fresh.ckpt")
local fresh = exp { checkpoint = "fresh.ckpt", resume = true }:simulate()
assert(fresh.rounds[6].loss == straight.rounds[6].loss)

-- the --resume flag (fedmesh run --resume sets this registry key)
local reg = debug.getregistry()
reg["fedmesh.resume"] = true
expect_error(function() exp():simulate() end,
  "%-%-resume: this experiment has no checkpoint to continue from")
local viaflag = exp { checkpoint = "run.ckpt" }:simulate() -- holds 6 rounds
reg["fedmesh.resume"] = nil
assert(viaflag.rounds[6].loss == straight.rounds[6].loss, "--resume")

-- checkpoint refusals
expect_error(function() exp { resume = true } end, "resume = true needs checkpoint = path")
expect_error(function()
  fm.experiment { model = fm.model.mlp { 60, 32, 10 }, train = parts, test = te,
    topology = fm.topology.ring { peers = 20 }, checkpoint = "p.ckpt" }
end, "peer%-to%-peer experiments cannot be checkpointed")
expect_error(function()
  exp { checkpoint = "other.ckpt", model = fm.model.mlp { 60, 10 } }:simulate()
  exp { checkpoint = "other.ckpt", resume = true }:simulate()
end, "belongs to another run")

-- hierarchical and peer-to-peer results carry a model too
local hr = exp { topology = fm.topology.hierarchical { fanouts = { 4, 5 }, every = { 2, 1 } },
  rounds = 4 }:simulate()
local hev = hr.model:evaluate(te)
assert(hev.accuracy == hr.accuracy and hev.loss == hr.loss, "hierarchical: the root's model")
local pr = fm.experiment { model = fm.model.mlp { 60, 32, 10 }, train = parts, test = te,
  topology = fm.topology.ring { peers = 20 }, rounds = 2, quiet = true }:simulate()
assert(pr.model and pr.model:evaluate(te).examples == #te, "peer-to-peer: the peers' mean")

for _, f in ipairs { "m.fmm", "m2.fmm", "cnn.fmm", "cnn2.fmm", "lg.fmm", "short.fmm",
  "short2.fmm", "flip.fmm", "flip2.fmm", "magic.fmm", "v9.fmm", "long.fmm", "incons.fmm",
  "run.ckpt", "run3.ckpt", "fresh.ckpt", "other.ckpt" } do
  os.remove(f)
end
print(string.format("model io ok: %d-byte model file, accuracy %.4f, resume exact over 6 rounds",
  #bytes, ev.accuracy))
