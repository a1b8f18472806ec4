/* SPDX-License-Identifier: MIT */
/* data.h: datasets (IDX, CSV, Synthetic(alpha, beta)) and partitioners. */
#ifndef FMI_DATA_H
#define FMI_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"

/* Default location of Debian's dataset-fashion-mnist; FEDMESH_FMNIST_DIR
 * overrides it, and so does an explicit dir argument. */
#define FMI_FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

/*
 * A dataset: n samples of dim float32 features (row-major, one contiguous
 * block) and int32 labels in [0, nclasses). owner, when not NULL, gives each
 * sample's natural client (e.g. the Synthetic device that generated it).
 * Datasets are reference counted because Lua values and running
 * federations share them; partitions index into them, never copy.
 */
typedef struct fmi_dataset {
	char name[64];
	size_t n, dim;
	uint32_t nclasses;
	float *x;        /* [n x dim] */
	int32_t *y;      /* [n] */
	uint32_t *owner; /* [n] or NULL */
	uint32_t nowners;
	int refs;
} fmi_dataset;

/* Allocates a dataset with refs = 1, x and y uninitialised. */
int fmi_dataset_new(fmi_dataset **out, size_t n, size_t dim,
    uint32_t nclasses);
void fmi_dataset_ref(fmi_dataset *d);
void fmi_dataset_unref(fmi_dataset *d); /* frees at 0; accepts NULL */

/*
 * Loads an IDX image/label pair (MNIST/Fashion-MNIST format, gzip or plain,
 * detected by content). Pixels are scaled to [0, 1]. Validates magic,
 * dimensions, counts and label range; on failure *out is untouched and err
 * names the file and the problem.
 */
int fmi_idx_load(fmi_dataset **out, const char *images, const char *labels,
    fm_error *err);

/* Loads Fashion-MNIST train and test from dir (NULL: FEDMESH_FMNIST_DIR or
 * the Debian default). The error says which package to install. */
int fmi_fmnist_load(fmi_dataset **train, fmi_dataset **test, const char *dir,
    fm_error *err);

/*
 * Loads a CSV file: one sample per line, label first, then features.
 * A first line that does not parse as numbers is taken as a header.
 * nclasses = max label + 1. Errors give the file, line and column.
 */
int fmi_csv_load(fmi_dataset **out, const char *path, fm_error *err);
/* The same with the separator given: ',', ';' or '\t'; 0 takes it from
 * the first line (';' if it has one, else ',' or, with neither, a tab). */
int fmi_csv_load_sep(fmi_dataset **out, const char *path, char sep,
    fm_error *err);

/*
 * Synthetic(alpha, beta) of Li et al. 2020 (FedProx), as in its
 * generate_synthetic.py: devices devices, dim 60, 10 classes; per device
 * u_k ~ N(0, alpha), B_k ~ N(0, beta), v_k[j] ~ N(B_k, 1), W_k ~ N(u_k, 1)
 * [60 x 10], b_k ~ N(u_k, 1); x ~ N(v_k, diag(j^-1.2)); y = argmax(x W + b);
 * samples per device int(lognormal(4, 2)) + 50 (capped at max_per_device
 * when nonzero). iid != 0 gives Synthetic-IID (one W, b ~ N(0,1); v = 0).
 * Each device's samples are split 90/10 into train and test; owner is the
 * device in both.
 */
typedef struct fmi_synthetic_cfg {
	double alpha, beta;
	uint32_t devices;
	uint32_t dim;      /* 60 in the paper */
	uint32_t nclasses; /* 10 in the paper */
	uint32_t max_per_device; /* 0: no cap */
	int iid;
	uint64_t seed;
} fmi_synthetic_cfg;
int fmi_synthetic(fmi_dataset **train, fmi_dataset **test,
    const fmi_synthetic_cfg *cfg, fm_error *err);

/*
 * A partition: for each client, a list of sample indices into one dataset.
 * All lists live in one array idx; client c owns idx[off[c] .. off[c+1]).
 */
typedef struct fmi_partition {
	uint32_t nclients;
	size_t *off;  /* [nclients + 1] */
	uint32_t *idx; /* [off[nclients]] */
	int refs;
} fmi_partition;

void fmi_partition_ref(fmi_partition *p);
void fmi_partition_unref(fmi_partition *p);
static inline size_t
fmi_partition_size(const fmi_partition *p, uint32_t c)
{
	return p->off[c + 1] - p->off[c];
}

/* IID: a seeded shuffle dealt into nclients near-equal parts. */
int fmi_partition_iid(fmi_partition **out, const fmi_dataset *d,
    uint32_t nclients, uint64_t seed, fm_error *err);
/* Dirichlet(alpha) label skew (NIID-Bench procedure): per class draw
 * p ~ Dir(alpha); clients that already hold >= n/nclients get 0; split the
 * class by p; repeat until every client holds >= min_size samples. */
int fmi_partition_dirichlet(fmi_partition **out, const fmi_dataset *d,
    uint32_t nclients, double alpha, uint32_t min_size, uint64_t seed,
    fm_error *err);
/* Shards (McMahan et al. 2017): sort by label (stably), cut into
 * nclients * shards_per_client equal shards, deal shards_per_client random
 * shards to each client. When the shard count does not divide n, shard
 * sizes differ by one so that every sample is still dealt. */
int fmi_partition_shards(fmi_partition **out, const fmi_dataset *d,
    uint32_t nclients, uint32_t shards_per_client, uint64_t seed,
    fm_error *err);
/* Natural: one client per owner value (needs d->owner). */
int fmi_partition_natural(fmi_partition **out, const fmi_dataset *d,
    fm_error *err);
/* hist[nclasses]: label counts of client c. */
void fmi_partition_label_hist(const fmi_partition *p, const fmi_dataset *d,
    uint32_t c, uint32_t *hist);

/* ---- sites: data each site brings itself (sites.c) ---------------------- */

/* Stacks the datasets of n sites (same features) into one, with owner =
 * site and *part one client per site (its rows, in order): a simulation
 * of n sites. nclasses is the largest of the sites'. */
int fmi_sites_stack(fmi_dataset *const *sites, uint32_t n, fmi_dataset **out,
    fmi_partition **part, fm_error *err);
/* A deployed node's view of a federation of nclients sites: client site
 * (0-based) holds rows 0..rows-1 of this host's own dataset, every other
 * client nothing here. site < 0 (a server or an edge): every client is
 * empty, their sizes come from the clients themselves. */
int fmi_sites_partition(fmi_partition **out, uint32_t nclients, int64_t site,
    size_t rows, fm_error *err);
/* A new dataset of rows idx[0..n) of d, in that order (same classes). */
int fmi_dataset_rows(const fmi_dataset *d, const uint32_t *idx, size_t n,
    fmi_dataset **out, fm_error *err);

#endif /* FMI_DATA_H */
