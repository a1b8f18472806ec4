#!/bin/sh
# SPDX-License-Identifier: MIT
# sdk_test.sh BUILD_DIR SOURCE_DIR [C_COMPILER]: installs fedmesh from
# BUILD_DIR into a temporary prefix, builds tests/sdk/example_plugin against
# it as a third party would, checks that the plugin exports only its
# descriptor (ABI 2.0: fm_plugin_descriptor, no fm_plugin_init), and
# (when the installed CLI exists) that fedmesh lists it.
set -u
B=$1
SRC=$2
CC_ARG=${3:+-DCMAKE_C_COMPILER=$3}
CMAKE=${CMAKE:-cmake}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P="$T/prefix"
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...
	d=$1
	shift
	if "$@" >"$T/out" 2>&1; then ok "$d"; else bad "$d"; cat "$T/out"; fi
}

# 1. install the SDK
if ! "$CMAKE" --install "$B" --prefix "$P" >"$T/install.log" 2>&1; then
	cat "$T/install.log"
	echo "FAIL cmake --install"
	exit 1
fi
ok "cmake --install into a fresh prefix"
for f in include/fedmesh/fedmesh.h include/fedmesh/plugin.h \
    include/fedmesh/errors.h include/fedmesh/version.h; do
	check "installed $f" test -f "$P/$f"
done
cfg=$(find "$P" -name fedmesh-config.cmake | head -n 1)
check "installed fedmesh-config.cmake" test -n "$cfg"
for f in fedmesh-config-version.cmake fedmesh-targets.cmake \
    fedmesh-plugin.cmake; do
	check "installed $f" test -f "$(dirname "${cfg:-/x}")/$f"
done

# 2. configure and build the example against the prefix only
E="$SRC/tests/sdk/example_plugin"
if ! "$CMAKE" -S "$E" -B "$T/build" -DCMAKE_PREFIX_PATH="$P" $CC_ARG \
    -DCMAKE_BUILD_TYPE=Release >"$T/cfg.log" 2>&1; then
	cat "$T/cfg.log"
	echo "FAIL configure the example with find_package(fedmesh)"
	exit 1
fi
ok "configure the example with find_package(fedmesh)"
if ! "$CMAKE" --build "$T/build" >"$T/build.log" 2>&1; then
	cat "$T/build.log"
	echo "FAIL build the example plugin"
	exit 1
fi
SO=$(find "$T/build" -name myavg.so | head -n 1)
check "built myavg.so" test -n "$SO"

# 3. only the descriptor is exported; libfedmesh is not linked
nm -D --defined-only "$SO" | awk '{ print $3 }' | sort >"$T/syms"
printf 'fm_plugin_descriptor\n' >"$T/want"
if cmp -s "$T/syms" "$T/want"; then
	ok "exports exactly fm_plugin_descriptor"
else
	bad "exports exactly fm_plugin_descriptor; got:"
	cat "$T/syms"
fi
if command -v readelf >/dev/null 2>&1; then
	readelf -d "$SO" >"$T/dyn"
	check "does not link libfedmesh" sh -c "! grep -q libfedmesh '$T/dyn'"
fi

# 4. the installed CLI finds it through FEDMESH_PLUGIN_PATH
D=$(dirname "$SO")
if [ -x "$P/bin/fedmesh" ]; then
	FEDMESH_PLUGIN_PATH="$D" "$P/bin/fedmesh" plugins >"$T/list" 2>&1
	check "fedmesh plugins lists myavg" grep -Eq '^myavg +aggregator' "$T/list"
	check "fedmesh plugins lists the installed fedavg" \
		grep -Eq '^fedavg +aggregator' "$T/list"
	FEDMESH_PLUGIN_PATH="$D" "$P/bin/fedmesh" plugins --describe myavg \
		>"$T/desc" 2>&1
	check "describe myavg shows server_lr" grep -q server_lr "$T/desc"
	[ $fails -eq 0 ] || cat "$T/list" "$T/desc"
else
	echo "note: $P/bin/fedmesh not installed; skipped the CLI listing"
fi

if [ $fails -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "sdk: all checks passed"
