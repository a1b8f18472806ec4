#!/bin/sh
# SPDX-License-Identifier: MIT
# build.sh: one entry point for a fresh Debian 12 machine (run as root).
#
#   ./build.sh run     install packages, build, run the default experiment
#   ./build.sh test    install packages, build, run the whole test suite:
#                      a gcc build, then a clang build with ASan + UBSan
#   ./build.sh deps    only install the Debian packages
#   ./build.sh build   only build (into ./build)
set -eu
cd "$(dirname "$0")"

PACKAGES="cmake make gcc clang libclang-rt-14-dev pkg-config
  liblua5.4-dev lua5.4 libzmq3-dev libmsgpack-dev libsodium-dev
  libopenblas-dev zlib1g-dev libcmocka-dev dataset-fashion-mnist
  binutils iproute2"
# Only the test suite needs these: a real headless browser renders the
# HTML report (fm.integration.report_browser, which decodes its screenshot
# with python3); `script` gives the progress test a terminal.
TEST_PACKAGES="chromium bsdutils python3"
JOBS=$(nproc 2>/dev/null || echo 2)

deps() { # deps [EXTRA PACKAGES...]
	missing=""
	for p in $PACKAGES "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "build.sh: installing$missing"
		if [ "$(id -u)" -ne 0 ]; then
			echo "build.sh: run as root (or with sudo) to install packages" >&2
			exit 1
		fi
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $missing
	fi
}

build() { # build DIR [cmake args...]
	dir=$1
	shift
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j "$JOBS"
}

run_tests() { # run_tests DIR
	(cd "$1" && ctest --output-on-failure -j "$JOBS" --timeout 1200)
}

case "${1:-}" in
deps) deps ;;
build) deps; build build ;;
run)
	deps
	build build
	./build/bin/fedmesh run scripts/quickstart.lua
	;;
test)
	deps $TEST_PACKAGES
	build build
	run_tests build
	# Same suite under AddressSanitizer + UndefinedBehaviorSanitizer,
	# built with clang (so the tree is also checked with clang's -Werror).
	build build-asan -DCMAKE_C_COMPILER=clang \
		-DFEDMESH_SANITIZER=address,undefined
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_tests build-asan
	;;
*)
	sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
