#!/bin/sh
# SPDX-License-Identifier: MIT
# usage_test.sh FEDMESH SRCDIR BUILDDIR TESTPLUGINS: the command line as a
# new user types it (issue 9): fedmesh found through PATH (build tree and
# an install), fedmesh's options after the script, the launcher leaving
# no orphans or files behind, a half key pair, configurations refused
# before round 1, runs that aggregate nothing, and the small messages.
# Every wait is bounded; every process started is killed on exit.
set -u
. "$(dirname "$0")/lib.sh"
FM=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$2" && pwd)
BUILD=$(cd "$3" && pwd)
TPLUG=$(cd "$4" && pwd)
T=$(mktemp -d)
PORT=$(free_ports 27000 40)
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
Q="$SRC/scripts/quickstart.lua"

# ---- 1. through PATH, from another directory ---------------------------
mkdir -p "$T/elsewhere"
BIN=$(dirname "$FM")
cat >"$T/plug.lua" <<'LUA'
local fm = require "fedmesh"
local tr, te = fm.data.synthetic { devices = 10 }
local r = fm.experiment { train = fm.partition.natural(tr), test = te,
  model = fm.model.logreg { 60, 10 }, rounds = 2, clients_per_round = 9,
  aggregator = "fedadam", defence = { "multikrum", f = 1 } }:simulate()
print("plugins-ok", #r.rounds)
LUA
(cd "$T/elsewhere" && PATH="$BIN:$PATH" fedmesh plugins) >"$T/p" 2>&1
check "build tree through PATH: plugins found" grep -Eq "^fedavg +aggregator" "$T/p"
(cd "$T/elsewhere" && PATH="$BIN:$PATH" fedmesh run "$Q" rounds=2) >"$T/o" 2>&1
check "build tree through PATH: the quickstart runs" grep -q "^done: 2 rounds" "$T/o"
if cmake --install "$BUILD" --prefix "$T/inst" >"$T/install.log" 2>&1; then
	(cd "$T/elsewhere" && PATH="$T/inst/bin:$PATH" fedmesh plugins) >"$T/p" 2>&1
	check "installed through PATH: plugins found" grep -Eq "^krum +defence" "$T/p"
	(cd "$T/elsewhere" && PATH="$T/inst/bin:$PATH" fedmesh run \
	    "$T/plug.lua") >"$T/o" 2>&1
	check "installed through PATH: fedadam after multikrum runs" grep -q "^plugins-ok	2" "$T/o"
else
	check "cmake --install works" false
	cat "$T/install.log"
fi

# ---- 2. fedmesh's options before and after the script ------------------
"$FM" run "$Q" --metrics "$T/a.jsonl" rounds=3 >"$T/o" 2>&1
check "run SCRIPT --metrics F: exit 0" test $? -eq 0
check "run SCRIPT --metrics F: one row per round" test "$(wc -l <"$T/a.jsonl")" -eq 3
"$FM" run "$Q" rounds=3 --threads 1 --metrics="$T/b.jsonl" >"$T/o" 2>&1
check "run SCRIPT ARGS --threads 1 --metrics=F" test "$(wc -l <"$T/b.jsonl" 2>/dev/null)" = 3
acc() { sed 's/.*"accuracy":\([^,}]*\).*/\1/' "$1"; }
acc "$T/a.jsonl" >"$T/a4"
acc "$T/b.jsonl" >"$T/b4"
check "the same accuracies with 1 thread as with all" cmp -s "$T/a4" "$T/b4"
cat >"$T/args.lua" <<'LUA'
print("args:", table.concat(arg, "|"))
LUA
"$FM" run "$T/args.lua" x=1 -- --metrics y >"$T/o" 2>&1
check "after --, options reach the script" grep -q "^args:	x=1|--metrics|y$" "$T/o"
"$FM" run "$T/args.lua" --metric y >"$T/o" 2>&1
rc=$?
check "a misspelt option after the script exits 2" test $rc -eq 2
check "... and names the near option" grep -q "unknown option '--metric' (did you mean '--metrics'?)" "$T/o"
"$FM" run "$T/args.lua" --node c1 >"$T/o" 2>&1
check "--node is refused by run, saying whose it is" grep -q "is an option of .fedmesh node." "$T/o"
"$FM" node "$SRC/scripts/deploy_local.lua" --node nosuch rounds=1 >"$T/o" 2>&1
check "node SCRIPT --node NAME reads the name" grep -q "no node named 'nosuch'" "$T/o"
"$FM" run "$T/args.lua" --threads >"$T/o" 2>&1
check "an option without its value exits 2" test $? -eq 2

# ---- 3. fedmesh --help agrees with every command's --help --------------
"$FM" --help >"$T/top" 2>&1
for c in run node launch keygen plugins bench report; do
	"$FM" $c --help 2>&1 | sed -n '1,/^$/p' | sed 's/^usage: fedmesh //' |
	    tr -s ' \n' '  ' | sed 's/ *$//' >"$T/syn"
	tr -s ' \n' '  ' <"$T/top" >"$T/top1"
	check "fedmesh --help shows $c's synopsis" grep -qF "$(cat "$T/syn")" "$T/top1"
done

# docs/guide.md's synopsis block says what each --help says
awk '/^## The command line/ { on = 1; next } on && /^```$/ { n++; if (n == 2) exit; next }
    on && n == 1 && /^fedmesh [a-z]/ && !/^fedmesh version/' "$SRC/docs/guide.md" >"$T/doc.syn"
check "docs/guide.md lists 7 command synopses" test "$(wc -l <"$T/doc.syn")" -eq 7
while IFS= read -r line; do
	c=$(echo "$line" | cut -d' ' -f2)
	"$FM" $c --help 2>&1 | sed -n '1,/^$/p' | sed 's/^usage: //' |
	    tr -s ' \n' '  ' | sed 's/ *$//' >"$T/syn"
	check "docs/guide.md's '$c' synopsis is its --help's" test "$line" = "$(cat "$T/syn")"
done <"$T/doc.syn"

# ---- 4. the launcher: no orphans, no files, a half key pair -----------
cat >"$T/dep.lua" <<'LUA'
local fm = require "fedmesh"
local o = fm.args { rounds = 200, port = 0, keys = "keys", checkpoint = "",
  width = 0 }
local tr, te = fm.data.synthetic { devices = 8 }
fm.experiment {
  model = o.width > 0 and fm.model.mlp { 60, o.width, o.width, 10 }
    or fm.model.logreg { 60, 10 },
  train = fm.partition.natural(tr),
  test = te, rounds = o.rounds, clients_per_round = 4, seed = 1,
  deploy = { transport = "tcp", server = "127.0.0.1:" .. o.port,
    clients = { "h1", "h2" }, keys = o.keys,
    checkpoint = o.checkpoint ~= "" and o.checkpoint or nil },
}:run()
LUA
cd "$T" || exit 1
ls /tmp | grep '^fedmesh-launch-' | sort >"$T/tmp.before"
# nodes of this test's launches: their command lines name dep.lua
nodes_alive() { pgrep -f "fedmesh node .*$T/dep.lua" | wc -l; }
timeout 120 sh -c "\"$FM\" launch \"$T/dep.lua\" port=$PORT | head -3" >"$T/head.out" 2>"$T/head.err"
check "launch | head -3 prints 3 lines" test "$(wc -l <"$T/head.out")" -eq 3
i=0
while [ "$(nodes_alive)" -gt 0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "launch | head: no node lives on" test "$(nodes_alive)" -eq 0
ls /tmp | grep '^fedmesh-launch-' | sort >"$T/tmp.after"
check "launch | head: no temporary file left" cmp -s "$T/tmp.before" "$T/tmp.after"
"$FM" launch "$T/dep.lua" port=$((PORT + 1)) rounds=5000 width=1000 >"$T/k.out" 2>&1 &
LP=$!
PIDS="$PIDS $LP"
wait_for "$T/k.out" "round " 60
check "a long launch is running its nodes" test "$(nodes_alive)" -eq 3
kill -9 $LP
i=0
while [ "$(nodes_alive)" -gt 0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "launcher killed with SIGKILL: its nodes die too" test "$(nodes_alive)" -eq 0
rm -f keys/h2.key
"$FM" launch "$T/dep.lua" port=$((PORT + 2)) rounds=1 >"$T/o" 2>&1
check "half a key pair: launch exits non-zero" test $? -ne 0
check "half a key pair names the missing file and the fix" grep -q "keys/h2.key is missing but keys/h2.pub exists.*fedmesh keygen --dir keys --force h2" "$T/o"
"$FM" keygen --dir keys --force h2 >/dev/null 2>&1
"$FM" launch "$T/dep.lua" --resume port=$((PORT + 3)) rounds=1 >"$T/o" 2>&1
check "launch --resume without deploy.checkpoint is refused" grep -q "resume needs a checkpoint to resume from: set deploy.checkpoint" "$T/o"
"$FM" launch "$T/dep.lua" port=$((PORT + 4)) rounds=2 --threads 1 >"$T/o" 2>&1
check "launch SCRIPT ARGS --threads 1 runs to the end" grep -q "^\[server\] done: 2 rounds" "$T/o"
cd - >/dev/null || exit 1

# ---- 5. refused before round 1; nothing aggregated is an error ---------
cat >"$T/cfg.lua" <<'LUA'
local fm = require "fedmesh"
local w = ...
local tr, te = fm.data.synthetic { devices = 10 }
local e = { train = fm.partition.natural(tr), test = te,
  model = fm.model.logreg { 60, 10 }, rounds = 3, clients_per_round = 5 }
if w == "multikrum" then e.defence = { "multikrum", f = 3 } end
if w == "bulyan" then e.defence = { "bulyan", f = 1 } end
if w == "fltrust" then e.defence = "fltrust" end
if w == "trimmed" then e.defence = { "trimmed_mean", beta = 0.5 } end
if w == "never" then e.aggregator = "never_finishes" end
if w == "topology" then e.topology = "star" end
fm.experiment(e):simulate()
LUA
"$FM" run "$T/cfg.lua" multikrum >"$T/o" 2>&1
rc=$?
check "multikrum f=3 with 5 a round: exit 1" test $rc -eq 1
check "... before round 1" sh -c "! grep -q '^round ' '$T/o'"
check "... saying why and what to do" grep -q "defence 'multikrum': f = 3 needs at least 2f + 3 = 9 updates a round, but at most 5 arrive.*lower f to 1 or sample at least 9" "$T/o"
"$FM" run "$T/cfg.lua" bulyan >"$T/o" 2>&1
check "bulyan f=1 with 5 a round (needs 4f+3 = 7) is refused" grep -q "bulyan': f = 1 needs at least 4f + 3 = 7" "$T/o"
"$FM" run "$T/cfg.lua" fltrust >"$T/o" 2>&1
check "fltrust without root_data is refused before round 1" grep -q "fltrust needs root data on the server.*root_data = train:sample(100)" "$T/o"
check "... before round 1" sh -c "! grep -q '^round ' '$T/o'"
"$FM" run "$T/cfg.lua" trimmed >"$T/o" 2>&1
check "trimmed_mean beta=0.5: the error gives the plugin's reason" grep -q "^fedmesh: .*defence 'trimmed_mean': parameter 'beta' = 0.5 must be in \[0, 0.5)" "$T/o"
check "... not 'd_init failed'" sh -c "! grep -q 'd_init failed' '$T/o'"
FEDMESH_PLUGIN_PATH=$TPLUG FEDMESH_LOG=error "$FM" run "$T/cfg.lua" never >"$T/o" 2>&1
rc=$?
check "a run in which no round aggregated exits 1" test $rc -eq 1
check "... and says why" grep -q "no round of 3 aggregated, so there is no trained model (round 1: aggregator never_finishes failed: never_finishes never finishes)" "$T/o"
"$FM" run "$T/cfg.lua" topology >"$T/o" 2>&1
check "topology = \"star\" names the field" grep -q "field 'topology' must be made by fm.topology.*not a string ('star')" "$T/o"

# ---- 6. smaller messages ----------------------------------------------
cat >"$T/small.lua" <<'LUA'
local fm = require "fedmesh"
local w, path = ...
if w == "mlp" then fm.model.mlp { 784, 1e8, 10 } end
if w == "args" then fm.args({ rounds = 1, seed = 1 }, { "round=3" }) end
if w == "csv" then
  local d = fm.data.csv(path)
  print("csv:", d:size())
end
LUA
"$FM" run "$T/small.lua" mlp >"$T/o" 2>&1
check "an MLP width too large says so" grep -q "width #2 = 100000000 is too large (at most 16777216)" "$T/o"
"$FM" run "$T/small.lua" args >"$T/o" 2>&1
check "fm.args suggests the near key" grep -q "unknown option 'round' in 'round=3' (did you mean 'rounds'?; options: rounds, seed)" "$T/o"
printf 'label;a;b\n1;0.5;0.25\n0;1;2\n2;3;4\n' >"$T/semi.csv"
"$FM" run "$T/small.lua" csv "$T/semi.csv" >"$T/o" 2>&1
check "a ';'-separated CSV is read as data, not a header" grep -q "^csv:	3$" "$T/o"
"$FM" bench train --model resnet >"$T/o" 2>&1
rc=$?
check "bench train --model resnet exits 2" test $rc -eq 2
check "... naming the bad value" grep -q "model 'resnet' is not a model this benchmark has" "$T/o"

# ---- 7. progress: redrawn in place on a terminal, lines elsewhere -------
if command -v script >/dev/null 2>&1; then
	script -qc "\"$FM\" run \"$Q\" rounds=4" /dev/null >"$T/tty.out" 2>&1
	check "on a terminal: a progress line with the ETA" grep -q "ETA" "$T/tty.out"
	check "... redrawn in place (carriage return, clear line)" grep -q "$(printf '\r\033\\[K')round 4/4" "$T/tty.out"
	check "... and the summary" grep -q "^done: 4 rounds" "$T/tty.out"
fi
"$FM" run "$Q" rounds=4 >"$T/o" 2>&1
check "not a terminal: per-round lines, no ETA" sh -c "grep -q '^round    4/4' '$T/o' && ! grep -q ETA '$T/o'"

if [ $fails -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all usage checks passed"
