/* SPDX-License-Identifier: MIT */
/* plugin_int.h: glue between the host API table and the loader (private). */
#ifndef FMI_PLUGIN_INT_H
#define FMI_PLUGIN_INT_H

#include <stddef.h>

#include "plugin/registry.h"

/* Longest component name: it travels in the wire's plugin-name field. */
#define FMI_PLUGIN_MAX_NAME 63
/* Most parameters a component may declare. */
#define FMI_MAX_PARAMS 64

/* The 1.0 sizes: the smallest structs a plugin may hand the host. */
#define FMI_PLUGIN_INFO_SIZE_1_0 \
	(offsetof(fm_plugin_info, reserved) + 4 * sizeof(void *))
#define FMI_AGG_OPS_SIZE_1_0 \
	(offsetof(fm_aggregator_ops, a_on_timer) + sizeof(void (*)(void)))
/* Defence, attack and consensus ops arrived in 1.1. */
#define FMI_ATK_OPS_SIZE_1_1 \
	(offsetof(fm_attack_ops, t_poison_updates) + sizeof(void (*)(void)))
#define FMI_DEF_OPS_SIZE_1_1 \
	(offsetof(fm_defence_ops, d_on_timer) + sizeof(void (*)(void)))
#define FMI_CONS_OPS_SIZE_1_1 \
	(offsetof(fm_consensus_ops, c_on_timer) + sizeof(void (*)(void)))

/* host->register_component: validates ops and queues it on the registrar
 * of the fm_plugin_init call in progress (registry.c). */
int fmi_registrar_register(fm_registrar *r, const void *ops, size_t ops_size);

#endif /* FMI_PLUGIN_INT_H */
