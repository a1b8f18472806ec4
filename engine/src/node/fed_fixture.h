/* SPDX-License-Identifier: MIT */
/* fed_fixture.h: a small FedAvg federation on Synthetic data for node tests. */
#ifndef FMI_NODE_FED_FIXTURE_H
#define FMI_NODE_FED_FIXTURE_H

#include "fm_test.h"

#include "node/node.h"

typedef struct fed_fixture {
	fmi_registry *reg;
	fmi_dataset *train, *test;
	fmi_partition *part;
	fmi_fed_cfg cfg;
} fed_fixture;

/*
 * Synthetic(1, 1) over `devices` devices (at most `per_device` samples
 * each), one client per device, the model of widths[nw], the built-in
 * fedavg (FEDMESH_BUILTIN_PLUGIN_DIR), one worker. The caller sets the
 * schedule (rounds, clients_per_round, local, seed).
 */
static inline void
fed_fixture_open(fed_fixture *f, uint32_t devices, uint32_t per_device,
    uint64_t seed, const uint32_t *widths, uint32_t nw)
{
	fm_error e;
	fmi_synthetic_cfg sc = { 1.0, 1.0, devices, 60, 10, per_device, 0,
		seed };
	memset(f, 0, sizeof *f);
	FMT_PASS(fmi_registry_new(&f->reg));
	FMT_PASS(fmi_registry_load_dir(f->reg,
	    getenv("FEDMESH_BUILTIN_PLUGIN_DIR"), NULL, &e));
	FMT_PASS(fmi_synthetic(&f->train, &f->test, &sc, &e));
	FMT_PASS(fmi_partition_natural(&f->part, f->train, &e));
	FMT_PASS(fmi_arch_mlp(&f->cfg.arch, widths, nw, &e));
	f->cfg.train = f->train;
	f->cfg.test = f->test;
	f->cfg.part = f->part;
	f->cfg.workers = 1;
	f->cfg.aggregator = fmi_registry_find(f->reg, FM_KIND_AGGREGATOR,
	    "fedavg");
	assert_non_null(f->cfg.aggregator);
}

static inline void
fed_fixture_close(fed_fixture *f)
{
	fmi_partition_unref(f->part);
	fmi_dataset_unref(f->train);
	fmi_dataset_unref(f->test);
	fmi_registry_free(f->reg);
}

#endif /* FMI_NODE_FED_FIXTURE_H */
