#!/bin/sh
# SPDX-License-Identifier: MIT
# defence_throughput.sh [REPS] [N] [D]: defence throughput of issue 5 (n = 100
# updates of d = 1M parameters by default) against this machine's memory
# bandwidth, measured in the same run. Builds fm_defence_bench if needed
# (plugins/defence/bench/defence_bench.c, which documents every field) and
# runs it twice: with 1 OpenBLAS thread (what the engine's server uses:
# simulation, deployment and peer-to-peer nodes set 1) and with 2. Each run
# prints JSON lines: env, membw (read and triad, 1 and 2 threads), flops
# (FMA peak, sgemm), then one "defence" line per rule with seconds (best and
# median of REPS, default 9), GB/s over the n*d*4 bytes every rule must
# read, the fraction of the best read bandwidth and the ratio to FedAvg.
#
# The build directory is FEDMESH_BUILD (default: build/ next to bench/).
# OPENBLAS_CORETYPE is set as the fedmesh command sets it (Debian's
# OpenBLAS 0.3.21 falls back to SSE3 kernels on CPUs it does not know):
# SkylakeX with AVX-512, Haswell with AVX2 + FMA; a value already set is
# kept, and FEDMESH_BLAS_CORETYPE=keep leaves it unset. Run on a quiet
# machine: the load average is printed to stderr before each run.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${FEDMESH_BUILD:-$HERE/../build}
REPS=${1:-9}
N=${2:-100}
D=${3:-1000000}
cmake --build "$BUILD" --target fm_defence_bench >&2
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ "${FEDMESH_BLAS_CORETYPE:-}" != keep ]; then
	flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
	has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
	if has avx512f && has avx512bw && has avx512dq && has avx512vl; then
		export OPENBLAS_CORETYPE=SkylakeX
	elif has avx2 && has fma; then
		export OPENBLAS_CORETYPE=Haswell
	fi
fi
for bt in 1 2; do
	echo "defence_throughput: blas_threads=$bt, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
	"$BUILD/tests/bin/fm_defence_bench" "$N" "$D" "$REPS" "$bt"
done
