#!/bin/sh
# SPDX-License-Identifier: MIT
# train_vs_torch.sh [--model mlp|cnn] [SECONDS]: local training throughput of
# fedmesh against PyTorch's CPU build (Debian python3-torch) on this machine,
# side by side, 1 and 2 threads: the MLP 784-200-200-10 at batch 32 and 128
# (default), or the CNN of McMahan et al. 2017 at batch 32 (--model cnn).
# PyTorch is tried under several OMP_NUM_THREADS / OPENBLAS_NUM_THREADS
# settings, and with the OPENBLAS_CORETYPE kernels fedmesh may select
# (Debian's torch uses the same OpenBLAS), and its best figure is kept.
# fedmesh is run REPS times (default 3, env REPS) and its best kept too.
# Prints JSON lines, then one summary line per setting with the ratio
# fedmesh / best PyTorch.
set -eu
cd "$(dirname "$0")/.."
MODEL=mlp
if [ "${1:-}" = "--model" ]; then
	MODEL=${2:?--model needs mlp or cnn}
	shift 2
fi
case "$MODEL" in
mlp) BATCHES="32 128" ;;
cnn) BATCHES="32" ;;
*) echo "train_vs_torch.sh: --model mlp or cnn, not '$MODEL'" >&2; exit 2 ;;
esac
S=${1:-3}
REPS=${REPS:-3}
FM=${FEDMESH:-./build/bin/fedmesh}
PY=/usr/bin/python3
if ! $PY -c "import torch" 2>/dev/null; then
	echo "installing python3-torch for the baseline" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-numpy >/dev/null
fi
rate() { sed 's/.*"samples_per_s": *\([0-9.]*\).*/\1/'; }
max2() { echo "$1 $2" | awk '{print ($1 > $2) ? $1 : $2}'; }
best_fedmesh() { # best_fedmesh BATCH THREADS
	best=0
	for r in $(seq "$REPS"); do
		line=$($FM bench train --model "$MODEL" --batch "$1" --threads "$2" \
			--seconds "$S")
		echo "$line" >&2
		best=$(max2 "$(echo "$line" | rate)" "$best")
	done
	echo "$best"
}
best_torch() { # best_torch BATCH THREADS
	best=0
	for ct in unset SkylakeX Haswell; do
		for omp in 1 2 unset; do
			for ob in 1 unset; do
				env_args=""
				[ "$ct" != unset ] && env_args="$env_args OPENBLAS_CORETYPE=$ct"
				[ "$omp" != unset ] && env_args="$env_args OMP_NUM_THREADS=$omp"
				[ "$ob" != unset ] && env_args="$env_args OPENBLAS_NUM_THREADS=$ob"
				line=$(env $env_args $PY bench/torch_train.py --model "$MODEL" \
					--batch "$1" --threads "$2" --seconds "$S" 2>/dev/null) || continue
				echo "{\"env\":\"$env_args\",\"pytorch\":$line}" >&2
				best=$(max2 "$(echo "$line" | rate)" "$best")
			done
		done
	done
	echo "$best"
}
for b in $BATCHES; do
	for t in 1 2; do
		fm=$(best_fedmesh $b $t)
		tb=$(best_torch $b $t)
		echo "{\"bench\":\"train_vs_torch\",\"model\":\"$MODEL\",\"batch\":$b,\"threads\":$t,\"fedmesh_samples_per_s\":$fm,\"pytorch_best_samples_per_s\":$tb,\"ratio\":$(echo "$fm $tb" | awk '{printf "%.2f", $1 / $2}')}"
	done
done
