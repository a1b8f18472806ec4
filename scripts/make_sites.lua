-- make_sites.lua: writes the label-skewed CSV files of a small federation
-- of sites, for scripts/sites_csv.lua. Each site sees only some labels
-- (site i of n: a window of the 10 labels, neighbours sharing one), as a
-- hospital sees only its own patients:
--
--   fedmesh run scripts/make_sites.lua [dir=data] [sites=3] [rows=600]
--       [test_rows=150] [seed=1]
--
-- writes DIR/c1.csv .. DIR/cN.csv (training), DIR/c1_test.csv .. (each
-- site's held-out rows, its own labels) and DIR/all_test.csv (every
-- label: no site holds this one). 20 features per row, label first: 10
-- Gaussian classes around seeded centres.
local fm = require "fedmesh"
local opt = fm.args { dir = "data", sites = 3, rows = 600, test_rows = 150,
  seed = 1, features = 20, spread = 0.6 }

math.randomseed(opt.seed)
local function normal()
  local u1, u2 = math.random(), math.random()
  return math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
end
local centre = {}
for c = 0, 9 do
  centre[c] = {}
  for j = 1, opt.features do centre[c][j] = opt.spread * normal() * 2 end
end
-- the labels of site i: a window of width 10 / n + 1
local function labels_of(i)
  local w = 10 // opt.sites
  local lo = (i - 1) * w
  local hi = i == opt.sites and 9 or math.min(9, lo + w)
  return lo, hi
end
local function write(path, n, lo, hi)
  local f = assert(io.open(path, "w"))
  f:write("label")
  for j = 1, opt.features do f:write(",x", j) end
  f:write("\n")
  for _ = 1, n do
    local y = math.random(lo, hi)
    f:write(y)
    for j = 1, opt.features do
      f:write(string.format(",%.5f", centre[y][j] + normal()))
    end
    f:write("\n")
  end
  f:close()
end
os.execute("mkdir -p '" .. opt.dir .. "'")
for i = 1, opt.sites do
  local lo, hi = labels_of(i)
  write(string.format("%s/c%d.csv", opt.dir, i), opt.rows, lo, hi)
  write(string.format("%s/c%d_test.csv", opt.dir, i), opt.test_rows, lo, hi)
  print(string.format("site c%d: labels %d-%d", i, lo, hi))
end
write(opt.dir .. "/all_test.csv", 1000, 0, 9)
print(string.format("wrote %d sites and all_test.csv to %s/", opt.sites, opt.dir))
