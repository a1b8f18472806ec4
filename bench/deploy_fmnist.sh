#!/bin/bash
# SPDX-License-Identifier: MIT
# deploy_fmnist.sh [HOSTS] [ROUNDS]: a real deployment on this machine,
# `fedmesh launch bench/deploy_fmnist.lua`: 1 server and HOSTS (default
# 100) client hosts as processes on loopback TCP with CURVE, one client
# per host, Fashion-MNIST MLP 784-200-200-10, IID, E=1, B=32, lr 0.05,
# 10 clients per round, ROUNDS (default 30) rounds. The keys are made
# before the clock starts. The server evaluates on the test set only in
# the last round (eval_every = ROUNDS), so the per-round figures time the
# round itself.
#
# Prints one JSON line:
#   pss_mib: {server, client_mean, client_max, client_min} from
#     /proc/PID/smaps_rollup of every node, sampled when round SAMPLE
#     (default 5) has ended;
#   seconds_to_round1: launch start to the server's "HOSTS of HOSTS
#     joined" (it starts round 1 right then); seconds_round1_done: to
#     round 1's progress line;
#   seconds_per_round: mean of the server's per-round "seconds" over the
#     rounds without evaluation (2 .. ROUNDS-1); wall_per_round: wall time
#     from round SAMPLE's progress line to round ROUNDS-3's, per round;
#   seconds_last_round_with_eval: the last round, which also evaluates;
#   cpu_to_round1: {user, sys} seconds of all nodes together until round
#     1 starts, page_faults_to_round1 their minor page faults;
#     cpu_per_round: {user, sys, page_faults} of all nodes per round
#     between rounds SAMPLE and ROUNDS-3 (all from /proc/PID/stat; page
#     faults are dear on this machine's virtualisation, 10-60 us each);
#   cpu_total: {user, sys, wall} of the whole run (launcher and every
#     node, from /usr/bin/time).
# Environment: FEDMESH (binary, default ./build/bin/fedmesh), SAMPLE,
# PORT (default 5571), KEEP=1 keeps the output folder (named in "dir").
set -eu
cd "$(dirname "$0")/.."
N=${1:-100}
R=${2:-30}
S=${SAMPLE:-5}
PORT=${PORT:-5571}
FM=${FEDMESH:-./build/bin/fedmesh}
[ "$R" -gt $((S + 4)) ] || { echo "ROUNDS must exceed SAMPLE + 4" >&2; exit 2; }
OUT=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$OUT"' EXIT
TCK=$(getconf CLK_TCK)

names="server"
for i in $(seq 1 "$N"); do names="$names c$i"; done
# shellcheck disable=SC2086
$FM keygen --dir "$OUT/keys" $names >/dev/null 2>&1

# nodes: "pid name" of each node of this run: the processes whose
# arguments name this run's key folder (builtins only, like sample).
nodes() {
	local d args i
	for d in /proc/[0-9]*; do
		{ mapfile -d "" args <"$d/cmdline"; } 2>/dev/null || continue
		[ "${args[1]:-}" = node ] && [ "${args[2]:-}" = --node ] || continue
		for i in "${args[@]}"; do
			if [ "$i" = "keys=$OUT/keys" ]; then
				echo "${d#/proc/} ${args[3]}"
			fi
		done
	done
	return 0
}
# sample TAG [pss]: "user sys faults count" of the nodes together (CPU
# in seconds, minor page faults) into $OUT/cpu_TAG and, with pss,
# "name KiB" per node into $OUT/pss. Bash builtins only (no fork: on a
# loaded machine a fork can take longer than a round), so the sample is
# taken when the line arrived.
sample() {
	local pid name line f f1 f2 u=0 s=0 flt=0 k=0 pss=""
	while read -r pid name; do
		read -r line <"/proc/$pid/stat" 2>/dev/null || continue
		line=${line##*) }
		read -ra f <<<"$line"
		u=$((u + f[11])) s=$((s + f[12])) flt=$((flt + f[7])) k=$((k + 1))
		if [ "${2:-}" = pss ]; then
			while read -r f1 f2 _; do
				if [ "$f1" = Pss: ]; then
					pss="$pss$name $f2"$'\n'
					break
				fi
			done <"/proc/$pid/smaps_rollup"
		fi
	done <"$OUT/nodes"
	printf '%d.%03d %d.%03d %d %d\n' $((u / TCK)) $((u % TCK * 1000 / TCK)) \
		$((s / TCK)) $((s % TCK * 1000 / TCK)) "$flt" "$k" >"$OUT/cpu_$1"
	[ "${2:-}" != pss ] || printf '%s' "$pss" >"$OUT/pss"
}

PA=$(printf '[server] round %4d/%d ' "$S" "$R")
PB=$(printf '[server] round %4d/%d ' $((R - 3)) "$R")
T0=$EPOCHREALTIME
/usr/bin/time -f '%U %S %e' -o "$OUT/time" \
	$FM launch --metrics "$OUT/m.jsonl" bench/deploy_fmnist.lua -- \
	keys="$OUT/keys" hosts="$N" rounds="$R" eval_every="$R" port="$PORT" \
	2>&1 | {
	while IFS= read -r line; do
		now=$EPOCHREALTIME
		printf '%s %s\n' "$now" "$line" >>"$OUT/log"
		case $line in
		*"joined ($N of $N)"*)
			echo "$now" >"$OUT/t_join"
			nodes >"$OUT/nodes" # every node is up
			sample join ;;
		"[server] round    1/"*)
			echo "$now" >"$OUT/t_r1" ;;
		"$PA"*)
			echo "$now" >"$OUT/t_a"
			sample a pss ;;
		"$PB"*)
			echo "$now" >"$OUT/t_b"
			sample b ;;
		esac
	done
}
for f in t_join t_r1 t_a t_b pss cpu_a cpu_b cpu_join time; do
	[ -s "$OUT/$f" ] || { echo "deploy_fmnist: the run did not get far" \
		"enough (no $f); log in $OUT/log" >&2; trap - EXIT; exit 1; }
done

awk -v n="$N" -v r="$R" -v s="$S" -v t0="$T0" -v dir="$OUT" \
    -v tj="$(cat "$OUT/t_join")" -v t1="$(cat "$OUT/t_r1")" \
    -v ta="$(cat "$OUT/t_a")" -v tb="$(cat "$OUT/t_b")" \
    -v cj="$(cat "$OUT/cpu_join")" -v ca="$(cat "$OUT/cpu_a")" \
    -v cb="$(cat "$OUT/cpu_b")" -v tm="$(cat "$OUT/time")" '
FILENAME ~ /pss$/ {
	if ($1 == "server") srv = $2 / 1024
	else { c = $2 / 1024; nc++; sum += c
	       if (c > mx) mx = c; if (mn == "" || c < mn) mn = c }
	next }
{ # the metrics: one JSON object per round
	rd = $0; sub(/.*"round":/, "", rd); rd += 0
	sc = $0; sub(/.*"seconds":/, "", sc); sc += 0
	if (rd >= 2 && rd <= r - 1) { secs += sc; ns++ }
	if (rd == r) last = sc }
END {
	split(cj, j, " "); split(ca, a, " "); split(cb, b, " ")
	split(tm, w, " "); k = (r - 3) - s
	if (a[4] != b[4] || a[4] != n + 1) { # a node was gone: no figure
		print "deploy_fmnist: a CPU sample missed nodes" > "/dev/stderr"
		exit 1 }
	printf "{\"bench\":\"deploy_fmnist\",\"hosts\":%d,\"rounds\":%d," \
	    "\"clients_per_round\":%d,\"epochs\":1,\"eval_every\":%d," \
	    "\"pss_mib\":{\"server\":%.1f,\"client_mean\":%.1f," \
	    "\"client_max\":%.1f,\"client_min\":%.1f," \
	    "\"after_round\":%d},\"seconds_to_round1\":%.2f," \
	    "\"seconds_round1_done\":%.2f,\"seconds_per_round\":%.4f," \
	    "\"wall_per_round\":%.4f,\"seconds_last_round_with_eval\":%.4f," \
	    "\"cpu_to_round1\":{\"user\":%.2f,\"sys\":%.2f}," \
	    "\"cpu_per_round\":{\"user\":%.4f,\"sys\":%.4f," \
	    "\"page_faults\":%.0f},\"page_faults_to_round1\":%d," \
	    "\"cpu_total\":{\"user\":%.2f,\"sys\":%.2f,\"wall\":%.2f}," \
	    "\"dir\":\"%s\"}\n", n, r, n < 10 ? n : 10, r, srv, sum / nc,
	    mx, mn, s, tj - t0, t1 - t0, secs / ns, (tb - ta) / k, last,
	    j[1], j[2], (b[1] - a[1]) / k, (b[2] - a[2]) / k,
	    (b[3] - a[3]) / k, j[3],
	    w[1], w[2], w[3], dir }' "$OUT/pss" "$OUT/m.jsonl"
