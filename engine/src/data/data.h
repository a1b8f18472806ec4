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
 * A dataset: n samples of dim features and int32 labels in [0, nclasses).
 * Features are stored one of two ways:
 * - float32 rows in x (row-major, one block), x8 NULL (CSV, Synthetic);
 * - bytes in x8, x NULL (IDX images): feature = (float)byte / x8_div, the
 *   value the float loaders computed, so results do not change. Byte
 *   datasets are lazy: x8 stays NULL until fmi_dataset_load (or a reader
 *   that loads) needs the rows, and a process that never reads them (a
 *   deployment's server and its train set) never decodes them. Rows come
 *   from a cache mapped read-only, shared between processes (idx.c).
 * Read features through fmi_dataset_gather (floats for any storage).
 * owner, when not NULL, gives each sample's natural client (e.g. the
 * Synthetic device that generated it). Datasets are reference counted
 * because Lua values and running federations share them; partitions index
 * into them, never copy.
 */
typedef struct fmi_pixels fmi_pixels; /* private: byte storage (dataset.c) */
typedef struct fmi_dataset {
	char name[64];
	size_t n, dim;
	uint32_t nclasses;
	float *x;          /* [n x dim] float features, or NULL */
	const uint8_t *x8; /* [n x dim] byte features, NULL until loaded */
	float x8_div;      /* byte b is the feature (float)b / x8_div */
	int32_t *y;        /* [n] */
	uint32_t *owner;   /* [n] or NULL */
	uint32_t nowners;
	int refs;
	fmi_pixels *px;    /* byte storage (and a lazy one's source), or NULL */
} fmi_dataset;

/* Allocates a dataset with refs = 1, x and y uninitialised. */
int fmi_dataset_new(fmi_dataset **out, size_t n, size_t dim,
    uint32_t nclasses);
/* The same with byte storage: *x8 (n x dim bytes, uninitialised) is the
 * writable view of (*out)->x8; features are byte / div (div > 0). */
int fmi_dataset_new_u8(fmi_dataset **out, uint8_t **x8, size_t n,
    size_t dim, uint32_t nclasses, float div);
void fmi_dataset_ref(fmi_dataset *d);
void fmi_dataset_unref(fmi_dataset *d); /* frees at 0; accepts NULL */

/* Makes every row of d readable: a lazy dataset maps (or decodes) its
 * rows. Thread-safe; returns at once when loaded. On failure err (may be
 * NULL) names the file and the problem. */
int fmi_dataset_load(const fmi_dataset *d, fm_error *err);
/* True when fmi_dataset_gather may read d without loading. */
int fmi_dataset_loaded(const fmi_dataset *d);
/* Rows idx[0..b) of a loaded dataset (idx NULL: rows first..first+b) as
 * float32 into out[b x dim]; indices are not checked. */
void fmi_dataset_gather(const fmi_dataset *d, const uint32_t *idx,
    size_t first, size_t b, float *out);
/* Loads d and gathers rows idx[0..n) (idx NULL: all rows) into out. */
int fmi_dataset_rows(const fmi_dataset *d, const uint32_t *idx, size_t n,
    float *out, fm_error *err);

/* A new dataset of rows rows[0..n) of d, in that order (indices < d->n,
 * repeats allowed), with the same storage, labels, owners and classes.
 * Reads only those rows: a lazy dataset does not load the others. */
int fmi_dataset_subset(fmi_dataset **out, const fmi_dataset *d,
    const uint32_t *rows, size_t n, fm_error *err);

/*
 * Loads an IDX image/label pair (MNIST/Fashion-MNIST format, gzip or plain,
 * detected by content) as a lazy byte dataset: features are pixel / 255,
 * in [0, 1]. Validates magic, dimensions, counts, label range and the
 * whole image file (truncated or trailing data) now; on failure *out is
 * untouched and err names the file and the problem. The labels are read
 * now, the pixels when rows are needed: from the image file itself when
 * it is plain, else from a decompressed cache file written once
 * (atomically) and mapped read-only, shared by every process of the
 * machine. The cache lives in $FEDMESH_CACHE_DIR, else
 * $XDG_CACHE_HOME/fedmesh, else ~/.cache/fedmesh; an empty
 * FEDMESH_CACHE_DIR, an unwritable folder or a small file (under
 * FMI_IDX_CACHE_MIN bytes of pixels) reads the .gz instead. A cache
 * entry is keyed by the source's path, size, mtime and inode, and every
 * row it serves is checked against its stored hash: a stale or damaged
 * entry is rebuilt, never trusted.
 */
#define FMI_IDX_CACHE_MIN ((size_t)1 << 20)
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
	/* [nclients] or NULL (every client's rows are here): 0 marks a
	 * client whose rows this process does not hold (its shard is empty
	 * here; fmi_dataset_keep_rows) */
	uint8_t *held;
} fmi_partition;

void fmi_partition_ref(fmi_partition *p);
void fmi_partition_unref(fmi_partition *p);
static inline size_t
fmi_partition_size(const fmi_partition *p, uint32_t c)
{
	return p->off[c + 1] - p->off[c];
}

/* True when client c's rows are in this process. */
static inline int
fmi_partition_holds(const fmi_partition *p, uint32_t c)
{
	return c < p->nclients && (p->held == NULL || p->held[c]);
}

/*
 * A client host's own data: a compact dataset *dout of only the rows of
 * the clients c with keep[c] != 0 (their shards in client order) and a
 * partition *pout over it with p's nclients, those clients' shards
 * renumbered and every other client's empty and not held. A lazy d reads
 * only those rows from its source.
 */
int fmi_dataset_keep_rows(fmi_dataset **dout, fmi_partition **pout,
    const fmi_dataset *d, const fmi_partition *p, const uint8_t *keep,
    fm_error *err);

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

#endif /* FMI_DATA_H */
