#!/bin/sh
# SPDX-License-Identifier: MIT
# p2p_fmnist.sh [ROUNDS] [PART]: decentralized (peer-to-peer) learning on
# Fashion-MNIST against star FedAvg, and the consensus rate of pure gossip
# against the spectral prediction. One JSON line per configuration (each
# with its per-round rows in "per_round"), written by bench/p2p_fmnist.lua
# under `fedmesh run --threads 2`, one configuration at a time.
#
# PART accuracy (ROUNDS rounds, default 30): MLP 784-200-200-10, IID,
#   E=1, B=32, lr 0.05, for 16 and 64 peers: star FedAvg (all N clients
#   every round) vs D-PSGD (consensus = "gossip") on a ring, a torus (4x4,
#   8x8) and a complete graph. 64-peer graphs evaluate each peer on a
#   seeded 2,000-sample subset of the test set (eval_samples); 16-peer
#   graphs and the star on the whole 10,000; one more run, the complete
#   64-peer graph on the whole test set, measures the subset's bias.
# PART rate: pure gossip (init = "independent", lr = 0): ring 16 and 64,
#   torus 4x4 and 8x8, complete 16, random 4-regular 64, random matchings
#   16 (16 seeds), and a no-edge graph (the check that lr = 0 leaves the
#   models put). Rounds are chosen per graph (see bench/p2p_fmnist.lua);
#   ROUNDS does not apply.
# PART all (default): both.
set -eu
cd "$(dirname "$0")/.."
R=${1:-30}
PART=${2:-all}
FM=${FEDMESH:-./build/bin/fedmesh}
run() { $FM run --threads 2 bench/p2p_fmnist.lua "$@"; }
case $PART in all|accuracy|rate) ;; *)
	echo "usage: $0 [ROUNDS] [all|accuracy|rate]" >&2; exit 2 ;;
esac
if [ "$PART" != rate ]; then
	for n in 16 64; do
		es=0
		[ "$n" = 64 ] && es=2000
		for t in star ring torus complete; do
			echo "accuracy: $t, $n peers, $R rounds" >&2
			run mode=accuracy topology=$t peers=$n rounds="$R" \
				eval_samples=$es
		done
	done
	# the 2,000-sample subset against the whole test set: on the complete
	# graph all peers hold the same model, so this run measures the
	# subset's bias (the 64-peer star is evaluated on the whole set)
	echo "accuracy: complete, 64 peers, whole test set" >&2
	run mode=accuracy topology=complete peers=64 rounds="$R" \
		eval_samples=0 label=whole_test_set_calibration
fi
if [ "$PART" != accuracy ]; then
	for c in "none 16" "ring 16" "ring 64" "torus 16" "torus 64" \
	    "complete 16" "kregular 64" "matching 16"; do
		set -- $c
		echo "consensus rate: $1, $2 peers" >&2
		run mode=rate topology="$1" peers="$2"
	done
fi
