-- privacy_test.lua: fm.privacy (accounting of the subsampled Gaussian
-- mechanism) against published values, round trips and every error.
local fm = require "fedmesh"
local P = fm.privacy

local function near(got, want, tol, what)
  assert(math.abs(got - want) <= tol,
    ("%s = %.10g, want %.10g +- %g"):format(what, got, want, tol))
end

-- MNIST DP-SGD (TF Privacy's tutorial): q = 256/60000, sigma = 1.1, 60
-- epochs = 14063 steps, delta = 1e-5
local q, z, T, d = 256 / 60000, 1.1, 14063, 1e-5
local mnist = { noise_multiplier = z, sample_rate = q, steps = T, delta = d }

-- the RDP accountant at dp_accounting's default orders (Balle et al. 2020
-- conversion): 2.5967; the best order is returned second
local eps, order = P.epsilon(mnist)
near(eps, 2.5967, 5e-4, "rdp epsilon")
assert(order >= 6 and order <= 12, order)
local eps2 = P.epsilon { noise_multiplier = z, sample_rate = q, steps = T,
  delta = d, accountant = "rdp", sampling = "poisson" }
assert(eps2 == eps, "the defaults are rdp and poisson")

-- TF Privacy's orders through fm.privacy.rdp: 2.5971 with the conversion
-- of Balle et al. 2020, 3.0092 with Mironov 2017's (the number TF Privacy
-- printed for years)
local tfp = { 1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, 5 }
for a = 6, 63 do tfp[#tfp + 1] = a end
for _, a in ipairs { 128, 256, 512 } do tfp[#tfp + 1] = a end
local rdp, orders = P.rdp { noise_multiplier = z, sample_rate = q, steps = T,
  orders = tfp }
assert(#rdp == #tfp and #orders == #tfp and orders[1] == 1.25)
local modern, basic = math.huge, math.huge
for i, a in ipairs(orders) do
  modern = math.min(modern, rdp[i] + math.log(1 - 1 / a)
    - math.log(d * a) / (a - 1))
  basic = math.min(basic, rdp[i] - math.log(d) / (a - 1))
end
near(modern, 2.5971, 5e-4, "modern conversion")
near(basic, 3.0092, 5e-4, "basic conversion")

-- default orders: dp_accounting's 156, returned second
local r2, o2 = P.rdp { noise_multiplier = z, sample_rate = q, steps = T }
assert(#r2 == 156 and #o2 == 156, #o2)
assert(o2[1] == 1.1 and o2[100] == 11 and o2[153] == 128 and o2[156] == 1024)
for i = 2, #r2 do assert(r2[i] > r2[i - 1], "RDP grows with the order") end
-- a fractional order: 50 steps of q = 0.01, sigma = 2.5 at alpha = 1.5
local rf = P.rdp { noise_multiplier = 2.5, sample_rate = 0.01, steps = 50,
  orders = { 1.5 } }
near(rf[1], 6.5007e-4, 6.5007e-8, "alpha 1.5")
-- q = 1 is the Gaussian mechanism: alpha / (2 sigma^2) per step
local rg = P.rdp { noise_multiplier = 2, sample_rate = 1, steps = 3,
  orders = { 2, 10, math.huge } }
near(rg[1], 3 * 2 / 8, 1e-15, "q = 1")
near(rg[2], 3 * 10 / 8, 1e-14, "q = 1")
assert(rg[3] == math.huge)
-- nothing sampled or no steps: nothing spent
local r0 = P.rdp { noise_multiplier = 1, sample_rate = 0, steps = 10 }
for _, v in ipairs(r0) do assert(v == 0) end
assert(P.epsilon { noise_multiplier = 1, sample_rate = 0.1, steps = 0,
  delta = d } == 0)
-- no noise: infinite
assert(P.epsilon { noise_multiplier = 0, sample_rate = 0.1, steps = 1,
  delta = d } == math.huge)

-- fixed-size batches (replace-one): more expensive than Poisson
local ef = P.epsilon { noise_multiplier = z, sample_rate = q, steps = T,
  delta = d, sampling = "fixed" }
assert(ef > eps and ef < 4 * eps, ef)
local rw = P.rdp { noise_multiplier = z, sample_rate = q, steps = T,
  sampling = "fixed" }
for i = 1, #rw do assert(rw[i] >= r2[i]) end

-- the PRV accountant (Gopi et al. 2021, as Opacus): below RDP
local ep = P.epsilon { noise_multiplier = z, sample_rate = q, steps = T,
  delta = d, accountant = "prv" }
assert(ep < eps and ep > 0.8 * eps, ep)
local e1, e2 = P.epsilon { noise_multiplier = z, sample_rate = q, steps = T,
  delta = d, accountant = "prv" }
assert(e1 == ep and e2 == nil, "prv returns one value")
-- an Opacus test vector: sigma 0.8, q 0.001, 100 steps, delta 1e-6
near(P.epsilon { noise_multiplier = 0.8, sample_rate = 0.001, steps = 100,
  delta = 1e-6, accountant = "prv" }, 0.270403364058, 3e-7, "Opacus PRV")

-- monotone in steps, rate and noise
local function e(zz, qq, tt)
  return (P.epsilon { noise_multiplier = zz, sample_rate = qq, steps = tt,
    delta = d })
end
assert(e(1, 0.01, 200) > e(1, 0.01, 100))
assert(e(1, 0.02, 100) > e(1, 0.01, 100))
assert(e(1.5, 0.01, 100) < e(1, 0.01, 100))

-- calibration round trips: epsilon of the returned sigma in [e - 0.01, e]
local steps15 = 15 * 60000 // 256
for _, target in ipairs { 1, 3, 8 } do
  local zz = P.noise_multiplier { epsilon = target, delta = d,
    sample_rate = q, steps = steps15 }
  local got = P.epsilon { noise_multiplier = zz, sample_rate = q,
    steps = steps15, delta = d }
  assert(got <= target and got >= target - 0.01, ("%g: %g"):format(target, got))
end
local z1 = P.noise_multiplier { epsilon = 1, delta = d, sample_rate = q,
  steps = steps15 }
local z8 = P.noise_multiplier { epsilon = 8, delta = d, sample_rate = q,
  steps = steps15 }
assert(z1 > z8, "more budget, less noise")
-- Opacus's test_get_noise_multiplier_rdp_epochs: eps 8, q 0.04, 2250
-- steps: 1.416
near(P.noise_multiplier { epsilon = 8, delta = 1e-5, sample_rate = 0.04,
  steps = 2250 }, 1.416, 1e-4, "Opacus get_noise_multiplier")
for _, s in ipairs { "poisson", "fixed" } do
  local zf = P.noise_multiplier { epsilon = 2, delta = d, sample_rate = 0.01,
    steps = 500, sampling = s }
  local got = P.epsilon { noise_multiplier = zf, sample_rate = 0.01,
    steps = 500, delta = d, sampling = s }
  assert(got <= 2 and got >= 1.99, s .. ": " .. got)
end
local zp = P.noise_multiplier { epsilon = 2, delta = d, sample_rate = 0.01,
  steps = 500, accountant = "prv" }
local gp = P.epsilon { noise_multiplier = zp, sample_rate = 0.01, steps = 500,
  delta = d, accountant = "prv" }
assert(gp <= 2 and gp >= 1.99, gp)
assert(zp < P.noise_multiplier { epsilon = 2, delta = d, sample_rate = 0.01,
  steps = 500 }, "PRV needs less noise than RDP")

-- errors: each names the function, the field and the rule
local function fails(f, arg, ...)
  local ok, err = pcall(f, arg)
  assert(not ok, "no error for " .. table.concat({ ... }, " | "))
  for _, s in ipairs { ... } do
    assert(err:find(s, 1, true), ("%q does not say %q"):format(err, s))
  end
end
local function with(base, k, v)
  local t = {}
  for kk, vv in pairs(base) do t[kk] = vv end
  t[k] = v
  return t
end
local E, R, N = P.epsilon, P.rdp, P.noise_multiplier
local fe, fr, fn = "fm.privacy.epsilon: ", "fm.privacy.rdp: ",
  "fm.privacy.noise_multiplier: "
local calib = { epsilon = 3, delta = d, sample_rate = q, steps = 100 }
local rbase = { noise_multiplier = z, sample_rate = q, steps = 10 }

fails(E, nil, fe .. "expects a table { noise_multiplier = z", "got nil")
fails(R, 5, fr .. "expects a table", "got number")
fails(N, "x", fn .. "expects a table { epsilon = e", "got string")
-- unknown keys, with a suggestion and the valid fields
fails(E, with(mnist, "noise_multipler", 1), fe .. "unknown field " ..
  "'noise_multipler' (did you mean 'noise_multiplier'?)", "valid fields: " ..
  "noise_multiplier, sample_rate, steps, delta, accountant, sampling")
fails(R, with(rbase, "delta", d), fr .. "unknown field 'delta'")
fails(N, with(calib, "noise_multiplier", 1), fn ..
  "unknown field 'noise_multiplier'")
fails(E, with(mnist, "epochs", 3), fe .. "unknown field 'epochs'")
-- missing
for _, k in ipairs { "noise_multiplier", "sample_rate", "steps", "delta" } do
  fails(E, with(mnist, k, nil), fe .. "field '" .. k .. "' is required")
end
for _, k in ipairs { "epsilon", "delta", "sample_rate", "steps" } do
  fails(N, with(calib, k, nil), fn .. "field '" .. k .. "' is required")
end
fails(R, with(rbase, "steps", nil), fr .. "field 'steps' is required " ..
  "(an integer >= 0")
-- wrong types
fails(E, with(mnist, "noise_multiplier", "1.1"), fe ..
  "field 'noise_multiplier' must be a number", "got string")
fails(E, with(mnist, "sample_rate", {}), fe ..
  "field 'sample_rate' must be a number", "got table")
fails(E, with(mnist, "delta", true), fe .. "field 'delta' must be a number",
  "got boolean")
fails(E, with(mnist, "steps", "10"), fe .. "field 'steps' must be an integer",
  "got string")
fails(E, with(mnist, "steps", 10.5), fe .. "field 'steps' must be an integer",
  "got a fraction")
fails(E, with(mnist, "accountant", 1), fe ..
  "field 'accountant' must be a string, got number")
fails(E, with(mnist, "sampling", false), fe ..
  "field 'sampling' must be a string, got boolean")
fails(N, with(calib, "epsilon", "3"), fn .. "field 'epsilon' must be a number")
-- out of range
fails(E, with(mnist, "noise_multiplier", -1), fe .. "noise_multiplier = -1 " ..
  "must be a finite noise multiplier >= 0")
fails(E, with(mnist, "noise_multiplier", math.huge), fe ..
  "noise_multiplier = inf must be a finite")
fails(E, with(mnist, "noise_multiplier", 0 / 0), fe .. "noise_multiplier = ")
fails(E, with(mnist, "sample_rate", 1.5), fe .. "sample_rate = 1.5 must be " ..
  "a sampling rate in [0, 1]")
fails(E, with(mnist, "sample_rate", -0.1), fe .. "sample_rate = -0.1")
fails(E, with(mnist, "delta", 0), fe .. "delta = 0 must be in (0, 1)")
fails(E, with(mnist, "delta", 1), fe .. "delta = 1 must be in (0, 1)")
fails(E, with(mnist, "steps", -1), fe .. "field 'steps' = -1 must be an " ..
  "integer >= 0")
fails(N, with(calib, "steps", 0), fn .. "field 'steps' = 0 must be an " ..
  "integer >= 1")
fails(N, with(calib, "epsilon", 0), fn .. "field 'epsilon' = 0 must be a " ..
  "finite number > 0")
fails(N, with(calib, "epsilon", math.huge), fn .. "field 'epsilon' = inf")
fails(N, with(calib, "sample_rate", 2), fn .. "sample_rate = 2 must be")
fails(N, with(calib, "delta", -1), fn .. "delta = -1 must be in (0, 1)")
fails(R, with(rbase, "noise_multiplier", -2), fr .. "noise_multiplier = -2")
-- choices
fails(E, with(mnist, "accountant", "moments"), fe .. "field 'accountant' = " ..
  "'moments' must be \"rdp\"", "\"prv\"")
fails(E, with(mnist, "sampling", "shuffle"), fe .. "field 'sampling' = " ..
  "'shuffle' must be \"poisson\"", "\"fixed\"")
fails(R, with(rbase, "sampling", "Poisson"), fr .. "field 'sampling' = " ..
  "'Poisson'")
fails(N, with(calib, "accountant", "gdp"), fn .. "field 'accountant' = 'gdp'")
-- PRV with fixed-size sampling: the fix is named
local pf = with(with(mnist, "accountant", "prv"), "sampling", "fixed")
fails(E, pf, fe .. "accountant = \"prv\" supports sampling = \"poisson\" only",
  "with sampling = \"fixed\" use accountant = \"rdp\"")
fails(N, with(with(calib, "accountant", "prv"), "sampling", "fixed"), fn ..
  "accountant = \"prv\" supports sampling = \"poisson\" only",
  "use accountant = \"rdp\"")
-- orders
fails(R, with(rbase, "orders", {}), fr .. "field 'orders' must be a list of " ..
  "1 to 100000 RDP orders (numbers > 1), got an empty table")
fails(R, with(rbase, "orders", 8), fr .. "field 'orders' must be a list",
  "got number")
fails(R, with(rbase, "orders", { 2, 0.5 }), fr .. "field 'orders': " ..
  "orders[2] = 0.5 must be a number > 1")
fails(R, with(rbase, "orders", { 1 }), fr ..
  "field 'orders': orders[1] = 1 must be a number > 1")
fails(R, with(rbase, "orders", { 2, "3" }), fr ..
  "field 'orders': orders[2] must be a number > 1", "got string")
fails(R, with(rbase, "orders", { 2, 0 / 0 }), fr ..
  "field 'orders': orders[2] = ", "must be a number > 1")
-- a budget no noise meets, and a loss the PRV grid cannot hold
fails(N, { epsilon = 0.01, delta = 1e-10, sample_rate = 1, steps = 1000000000 },
  fn .. "epsilon = 0.01 at delta = 1e-10 cannot be met")
fails(E, { noise_multiplier = 0.3, sample_rate = 0.5, steps = 100000,
  delta = d, accountant = "prv" }, fe .. "PRV accountant",
  "use accountant = \"rdp\"")
print("privacy ok")
