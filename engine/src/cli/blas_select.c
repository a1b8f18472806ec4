/* SPDX-License-Identifier: MIT */
/*
 * blas_select.c: gives OpenBLAS the right kernel on CPUs it does not know.
 *
 * Debian 12's OpenBLAS (0.3.21) picks its kernel when the library loads,
 * from a table of CPU models. On CPUs newer than that table (Sapphire
 * Rapids here) it falls back to the generic SSE3 "Prescott" kernel: 3-4x
 * slower for our matrices, and it does not scale across threads. The
 * choice is made in OpenBLAS's constructor from OPENBLAS_CORETYPE, before
 * main() runs (and the environment cannot be changed earlier: glibc sets
 * it up after .preinit_array). So when OpenBLAS chose a pre-AVX2 kernel on
 * a CPU with AVX2 or AVX-512, the fedmesh command re-executes itself once
 * with OPENBLAS_CORETYPE set: AVX-512 (F, BW, DQ, VL) -> SkylakeX, AVX2 +
 * FMA -> Haswell. A value already in the environment is never changed, and
 * FEDMESH_BLAS_CORETYPE=keep turns this off.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

extern char *openblas_get_corename(void);

static const char *
best_coretype(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("avx512vl")) {
		return "SkylakeX";
	}
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
		return "Haswell";
	}
#endif
	return NULL;
}

/* Kernels OpenBLAS falls back to that use neither AVX2 nor AVX-512. */
static int
is_old_kernel(const char *core)
{
	static const char *const old[] = { "Prescott", "Core2", "Penryn",
		"Dunnington", "Nehalem", "Sandybridge", "Atom", "Katmai",
		"Coppermine", "Northwood", "Banias", "Barcelona", NULL };
	for (int i = 0; core != NULL && old[i] != NULL; i++) {
		if (strcmp(core, old[i]) == 0) {
			return 1;
		}
	}
	return 0;
}

void
fmi_cli_select_blas(char **argv)
{
	const char *keep = getenv("FEDMESH_BLAS_CORETYPE");
	if (getenv("OPENBLAS_CORETYPE") != NULL ||
	    (keep != NULL && strcmp(keep, "keep") == 0) ||
	    !is_old_kernel(openblas_get_corename())) {
		return;
	}
	const char *best = best_coretype();
	if (best != NULL && setenv("OPENBLAS_CORETYPE", best, 0) == 0) {
		execv("/proc/self/exe", argv);
		unsetenv("OPENBLAS_CORETYPE"); /* exec failed: go on as we are */
	}
}
