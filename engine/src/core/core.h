/* SPDX-License-Identifier: MIT */
/* core.h: internal core utilities: RNG, kernels, time, paths, strings. */
#ifndef FMI_CORE_H
#define FMI_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"
#include "fedmesh/plugin.h"

#define FMI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FMI_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FMI_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- RNG: xoshiro256** seeded through splitmix64 (rng.c) ----------- */
/* Streams make independent sequences from one seed: e.g. stream =
 * (round << 32) | client gives every client in every round its own. */
void fmi_rng_seed(fm_rng *r, uint64_t seed, uint64_t stream);
uint64_t fmi_rng_u64(fm_rng *r);
void fmi_rng_fill_u64(fm_rng *r, uint64_t *out, size_t n); /* n draws of fmi_rng_u64 */
double fmi_rng_uniform(fm_rng *r);            /* [0, 1) */
double fmi_rng_normal(fm_rng *r);             /* N(0, 1), Box-Muller */
uint64_t fmi_rng_below(fm_rng *r, uint64_t n); /* uniform in [0, n), n > 0 */
double fmi_rng_gamma(fm_rng *r, double shape); /* Gamma(shape, 1), shape > 0 */
void fmi_rng_shuffle_u32(fm_rng *r, uint32_t *a, size_t n); /* Fisher-Yates */
uint64_t fmi_hash64(uint64_t x);              /* splitmix64 finaliser */

/* ---- kernels over OpenBLAS, with naive reference twins (kernels.c) - */
/* Row-major. Outputs first in the naming sense: y, c are written. */
void fmi_axpy(size_t n, float a, const float *x, float *y); /* y += a x */
void fmi_scal(size_t n, float a, float *x);                 /* x *= a */
double fmi_dot(size_t n, const float *x, const float *y);
double fmi_nrm2(size_t n, const float *x);
/* C[m x n] = alpha op(A) op(B) + beta C; op(A) is m x k, op(B) k x n. */
void fmi_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
    float alpha, const float *a, size_t lda, const float *b, size_t ldb,
    float beta, float *c, size_t ldc);
void fmi_gemm_ref(int trans_a, int trans_b, size_t m, size_t n, size_t k,
    float alpha, const float *a, size_t lda, const float *b, size_t ldb,
    float beta, float *c, size_t ldc);
/* BLAS thread count for the calling process (OpenBLAS is process-wide). */
void fmi_blas_set_threads(int n);
int fmi_blas_get_threads(void);
/* True when every element is finite. */
bool fmi_all_finite(const float *x, size_t n);

/* ---- time (util.c) ------------------------------------------------- */
double fmi_now(void); /* monotonic seconds */
int fmi_ncores(void);

/* ---- paths and strings (util.c) ------------------------------------ */
/* Directory of the loaded libfedmesh (realpath, no trailing slash), or
 * NULL. Static storage. */
const char *fmi_lib_dir(void);
/* The built-in plugin directory: <libdir>/fedmesh/plugins. */
const char *fmi_builtin_plugin_dir(void);
/* snprintf that reports truncation as FM_ERANGE. */
int fmi_strlcpy(char *dst, const char *src, size_t size);
/* Square images: width = height = sqrt(dim) when dim is a perfect
 * square (784 -> 28x28), else 0x0. */
void fmi_image_shape(size_t dim, uint32_t *width, uint32_t *height);
/* Writes all n bytes (retrying short writes and EINTR); 0, or -1 with
 * errno set. */
int fmi_write_all(int fd, const void *buf, size_t n);
/* fsync()s the folder holding path, so a rename into it is durable. */
void fmi_fsync_dir(const char *path);

/* Suggests the closest of candidates (NULL-terminated) to s, or NULL. */
const char *fmi_closest(const char *s, const char *const *candidates);

/* ---- logging internals (log.c) ------------------------------------- */
void fmi_logv(int level, const char *id, const char *fmt, va_list ap)
    FM_PRINTF(3, 0);

#endif /* FMI_CORE_H */
