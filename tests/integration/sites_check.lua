-- sites_check.lua: the model a federation of label-skewed sites learnt,
-- on a test set of every label that no site held: prints the accuracy of
-- each label and fails unless every label is learnt.
--   fedmesh run sites_check.lua model=FILE data=all_test.csv [min=0.5]
local fm = require "fedmesh"
local opt = fm.args { model = "model.fm", data = "all_test.csv", min = 0.5 }
local m = fm.model.load(opt.model)
local d = fm.data.csv(opt.data)
local pred, labels = m:predict(d), d:labels()
local hit, seen = {}, {}
for i, y in ipairs(labels) do
  seen[y] = (seen[y] or 0) + 1
  if pred[i] == y then hit[y] = (hit[y] or 0) + 1 end
end
local worst = 1
for y = 0, 9 do
  local a = (hit[y] or 0) / (seen[y] or 1)
  worst = math.min(worst, a)
  print(string.format("label %d: accuracy %.3f (%d examples)", y, a, seen[y] or 0))
end
print(string.format("all labels: accuracy %.4f; worst label %.3f",
  m:evaluate(d).accuracy, worst))
if worst < opt.min then
  error(string.format("a label is not learnt: worst label accuracy %.3f < %.2f", worst, opt.min))
end
