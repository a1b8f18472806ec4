/* SPDX-License-Identifier: MIT */
/* a1_short_sym.c: a truncated 1.x descriptor: the symbol holds only the
 * frozen prefix (magic, ABI 1.4, info_size, build_sig) but info_size claims
 * the whole 1.x descriptor. Built without the header, whose declaration of
 * fm_plugin_descriptor it contradicts. */
#include <stddef.h>
#include <stdint.h>

#define A1_INFO_SIZE_1_X (4 * 4 + 5 * sizeof(void *) + 8 + 4 * sizeof(void *))

struct a1_prefix {
	uint32_t magic;
	uint16_t abi_major, abi_minor;
	uint32_t info_size;
	uint32_t build_sig;
};

__attribute__((visibility("default"))) const struct a1_prefix
    fm_plugin_descriptor = { 0x4c504d46u, 1, 4, (uint32_t)A1_INFO_SIZE_1_X,
	(uint32_t)(sizeof(void *) | (sizeof(size_t) << 8) |
	    (sizeof(float) << 16) | (sizeof(double) << 24)) };
