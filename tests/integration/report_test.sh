#!/bin/sh
# SPDX-License-Identifier: MIT
# report_test.sh FEDMESH SRCDIR [browser]: `fedmesh report` on two real
# --metrics files: the HTML page (a chart per metric, legends, tables),
# the standalone SVG, escaping, skipped missing values and the error exits.
# With "browser", renders the page in headless Chromium instead: the DOM
# must hold the charts, and the screenshot must not be blank (exit 77
# when Chromium is not installed).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
FM=$1
SRC=$2
MODE=${3:-}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

if [ "$MODE" = browser ]; then
	CHROME=$(command -v chromium || command -v chromium-browser || true)
	if [ -z "$CHROME" ]; then
		echo "SKIP: no chromium (Debian package chromium)"
		exit 77
	fi
fi

# Two real runs (options before the script).
"$FM" run --metrics a.jsonl "$SRC/scripts/quickstart.lua" rounds=4 >run.log 2>&1
check "run a writes metrics" test -s a.jsonl
"$FM" run --metrics b.jsonl "$SRC/scripts/quickstart.lua" rounds=4 seed=2 >>run.log 2>&1
check "run b writes metrics" test -s b.jsonl

"$FM" report a.jsonl b.jsonl -o r.html >out 2>&1
check "report writes a page" test $? -eq 0 -a -s r.html
# the metrics the rows have, "round" aside
metrics=$(tr ',{}' '\n\n\n' <a.jsonl | sed -n 's/^"\([^"]*\)":-\{0,1\}[0-9].*/\1/p' |
	grep -vx round | sort -u)
nm=$(echo "$metrics" | wc -l)
check "the rows have the usual metrics" test "$nm" -ge 9
for m in $metrics; do
	check "page has a section for $m" grep -q "<h3>$m</h3>" r.html
done
check "two charts per metric (round, time)" test "$(grep -c '<svg xmlns=[^>]*class="chart"' r.html)" -eq $((2 * nm))
check "charts against round" grep -q '>accuracy vs round</text>' r.html
check "charts against time" grep -q '>time (s, cumulative)</text>' r.html
check "bytes charts" grep -q '>bytes_received vs round</text>' r.html
check "a polyline per run and chart" test "$(grep -c '<polyline' r.html)" -eq $((4 * nm))
check "legend label a" grep -q '<g class="entry"><title>a</title>' r.html
check "legend label b" grep -q '<g class="entry"><title>b</title>' r.html
check "runs table" grep -q '<table class="runs">' r.html
check "settings table" grep -q '<table class="settings">' r.html
check "constant fields are settings" grep -q '<tr><td>clients</td><td>10</td><td>10</td></tr>' r.html
check "final and best accuracy" grep -q 'round 4)</td>' r.html
check "self-contained: no scripts" test "$(grep -ci '<script' r.html)" -eq 0
check "self-contained: nothing fetched" test "$(grep -Eci '<link|src=|url\(|@import' r.html)" -eq 0
check "self-contained: no address but the SVG namespace" test \
	"$(grep -o 'https\?://[^"]*' r.html | grep -vc '^http://www.w3.org/2000/svg$')" -eq 0

# the standalone SVG: accuracy against round by default
"$FM" report a.jsonl b.jsonl -o c.svg >out 2>&1
check "report writes an SVG" test $? -eq 0 -a -s c.svg
check "SVG starts with the XML declaration" test "$(head -c 5 c.svg)" = "<?xml"
check "SVG has the namespace" grep -q '^<svg xmlns="http://www.w3.org/2000/svg"' c.svg
check "SVG is one chart" test "$(grep -c '<svg' c.svg)" -eq 1
check "SVG ends with </svg>" test "$(tail -n 1 c.svg)" = "</svg>"
check "SVG default: accuracy vs round" grep -q '>accuracy vs round</text>' c.svg
check "SVG has both runs" test "$(grep -c '<polyline' c.svg)" -eq 2
if command -v python3 >/dev/null 2>&1; then
	check "SVG is well-formed XML" python3 -c \
		'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' c.svg
fi
"$FM" report a.jsonl b.jsonl -o l.svg --metric loss --x seconds >out 2>&1
check "--metric loss --x seconds" grep -q '>loss vs time</text>' l.svg
"$FM" report --x round --metric train_loss a.jsonl -o t.html >out 2>&1
check "a page limited to one metric and one axis" test "$(grep -c '<svg xmlns' t.html)" -eq 1

# absent values are skipped, not drawn as 0; settings lines; future rows
cat >e.jsonl <<'EOF'
{"settings":{"aggregator":"fedavg","local":{"epochs":5}},"script":"q.lua"}
{"round":1,"accuracy":null,"loss":2,"seconds":1,"extra":{"hist":[1,2,3]},"tag":"x"}
{"round":2,"accuracy":0.5,"loss":1.5,"seconds":1,"tag":"x"}

{"round":3,"loss":1.2,"seconds":1,"tag":"x","new":[{"deep":[]}]}
{"round":4,"accuracy":0.75,"loss":1,"seconds":1,"tag":"x"}
EOF
"$FM" report e.jsonl -o e.svg >out 2>&1
check "rows with null, absent and nested values are read" test $? -eq 0
check "accuracy drawn only where present (2 points)" grep -Eq 'points="[0-9.]+,[0-9.]+ [0-9.]+,[0-9.]+"' e.svg
"$FM" report e.jsonl -o e.html >out 2>&1
check "settings line flattened" grep -q '<td>settings.local.epochs</td><td>5</td>' e.html
check "constant string field is a setting" grep -q '<td>tag</td><td>x</td>' e.html
check "nested values are not metrics" test "$(grep -c '<h3>extra</h3>' e.html)" -eq 0

# the engine's own gaps: accuracy only every eval_every rounds (and the last)
cat >ev.lua <<'LUA'
local fm = require "fedmesh"
local tr, te = fm.data.synthetic { devices = 6 }
fm.experiment { model = fm.model.logreg { tr:dim(), tr:classes() },
  train = fm.partition.natural(tr), test = te, rounds = 5, eval_every = 2,
  clients_per_round = 3, quiet = true }:simulate()
LUA
"$FM" run --metrics ev.jsonl ev.lua >run.log 2>&1
check "eval_every=2 leaves accuracy null in rounds 1 and 3" test "$(grep -c '"accuracy":null' ev.jsonl)" -eq 2
"$FM" report ev.jsonl -o ev.svg >out 2>&1
check "accuracy drawn at rounds 2, 4 and 5 only" grep -Eq 'points="[0-9.]+,[0-9.]+ [0-9.]+,[0-9.]+ [0-9.]+,[0-9.]+"' ev.svg

# user text is escaped
mkdir d1 d2
printf '{"round":1,"<i>m</i>":1,"accuracy":0.1}\n{"round":2,"<i>m</i>":2}\n' >'d1/x&<y>.jsonl'
cp a.jsonl d2/'x&<y>.jsonl'
"$FM" report 'd1/x&<y>.jsonl' 'd2/x&<y>.jsonl' -o s.html >out 2>&1
check "odd names report" test $? -eq 0
check "metric names are escaped" grep -q '<h3>&lt;i&gt;m&lt;/i&gt;</h3>' s.html
check "no markup from the data" test "$(grep -c '<i>m</i>\|<y>' s.html)" -eq 0
check "same file names: labelled by path" grep -q '<title>d1/x&amp;&lt;y&gt;.jsonl</title>' s.html

# errors: data errors exit 1, usage errors 2, with what to do
"$FM" report missing.jsonl -o x.html >out 2>&1
check "missing file exits 1" test $? -eq 1
check "missing file is named" grep -q "cannot open 'missing.jsonl'" out
printf '{"round":1,"accuracy":0.5}\n{"round":2 "loss":1}\n' >bad.jsonl
"$FM" report bad.jsonl -o x.html >out 2>&1
check "malformed line exits 1" test $? -eq 1
check "malformed line: file, line, column" grep -q "report: bad.jsonl:2: expected ',' or '}' at column 12" out
printf '{"round":1}\n{"round":2,"loss":1\n' >cut.jsonl
"$FM" report cut.jsonl -o x.html >out 2>&1
check "a cut-off line exits 1" grep -q "cut.jsonl:2: expected ',' or '}' at column 20 (the end of the line)" out
: >empty.jsonl
"$FM" report empty.jsonl -o x.html >out 2>&1
check "no rows exits 1" test $? -eq 1
check "no rows is said" grep -q "empty.jsonl: no rows" out
check "nothing written on errors" test ! -e x.html
"$FM" report a.jsonl >out 2>&1
check "no -o exits 2" test $? -eq 2
check "no -o says what to do" grep -q "add -o report.html" out
"$FM" report a.jsonl -o x.svg --metric acuracy >out 2>&1
check "unknown metric exits 2" test $? -eq 2
check "unknown metric: suggestion and list" grep -q "no metric 'acuracy' in these runs (did you mean 'accuracy'?); choose one with --metric NAME: accuracy, loss" out
"$FM" report a.jsonl -o x.svg --x time >out 2>&1
check "bad --x exits 2" test $? -eq 2
"$FM" report a.jsonl -o x.png >out 2>&1
check "other output names exit 2" test $? -eq 2
"$FM" report a.jsonl -o x.svg --metric loss --metric accuracy >out 2>&1
check "two metrics in an SVG exit 2" test $? -eq 2
"$FM" report a.jsonl -o x.svg --bogus >out 2>&1
check "unknown option exits 2" test $? -eq 2
"$FM" report >out 2>&1
check "no arguments exit 2" test $? -eq 2
"$FM" report --help >out 2>&1
check "--help exits 0 with usage" grep -q "^usage: fedmesh report FILE.jsonl" out
check "--help shows the flags" grep -q -- "--metric NAME.*--x round|seconds" out
"$FM" --help >out 2>&1
check "fedmesh --help lists report" grep -q "^  report FILE.jsonl" out

# garbage never crashes it: exit 1 with a message
head -c 20000 /dev/urandom >junk.jsonl
"$FM" report junk.jsonl -o x.html >out 2>&1
check "random bytes exit 1" test $? -eq 1
awk 'BEGIN { s = "{\"round\":1,\"a\":"; for (i = 0; i < 100000; i++) s = s "["; print s }' >deep.jsonl
"$FM" report deep.jsonl -o x.html >out 2>&1
check "deep nesting exits 1" grep -q "nesting deeper than 64 levels" out

if [ "$MODE" = browser ]; then
	export HOME="$T/home"
	mkdir -p "$HOME"
	chrome() {
		timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu \
			--hide-scrollbars --no-first-run --user-data-dir="$T/profile" "$@"
	}
	chrome --dump-dom "file://$T/r.html" >dom.html 2>chrome.log
	check "chromium renders the page" test -s dom.html
	check "DOM: two charts per metric" test "$(grep -o '<svg xmlns=[^>]*class="chart"' dom.html | wc -l)" -eq $((2 * nm))
	check "DOM: the polylines" test "$(grep -o '<polyline' dom.html | wc -l)" -eq $((4 * nm))
	check "DOM: legend entries" test "$(grep -o '<g class="entry">' dom.html | wc -l)" -eq $((4 * nm))
	chrome --screenshot="$T/shot.png" --window-size=1200,2000 "file://$T/r.html" >>chrome.log 2>&1
	printf '<!DOCTYPE html><title>blank</title>\n' >blank.html
	chrome --screenshot="$T/blank.png" --window-size=1200,2000 "file://$T/blank.html" >>chrome.log 2>&1
	chrome --screenshot="$T/svg.png" --window-size=740,400 "file://$T/c.svg" >>chrome.log 2>&1
	chrome --screenshot="$T/blank2.png" --window-size=740,400 "file://$T/blank.html" >>chrome.log 2>&1
	check "screenshot is a PNG" test "$(head -c 4 shot.png | tail -c 3)" = "PNG"
	shot=$(wc -c <shot.png)
	blank=$(wc -c <blank.png)
	echo "screenshot $shot bytes, blank page $blank bytes"
	check "screenshot is not blank (5x a blank page's PNG)" test "$shot" -gt $((5 * blank))
	check "the SVG renders, not blank" test "$(wc -c <svg.png)" -gt $((5 * $(wc -c <blank2.png)))
	if command -v python3 >/dev/null 2>&1; then
		# the first two colours of the palette (runs a and b) are drawn
		check "page screenshot: both runs' colours" python3 \
			"$HERE/png_colours.py" shot.png 0072b2 e69f00
		check "SVG screenshot: both runs' colours" python3 \
			"$HERE/png_colours.py" svg.png 0072b2 e69f00
	fi
	if [ -n "${FEDMESH_REPORT_KEEP:-}" ]; then
		cp shot.png svg.png r.html c.svg "$FEDMESH_REPORT_KEEP"/
	fi
	[ $fails -eq 0 ] || cat chrome.log
fi

if [ $fails -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all report checks passed"
