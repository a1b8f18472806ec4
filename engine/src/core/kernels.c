/* SPDX-License-Identifier: MIT */
/* kernels.c: float32 vector/matrix kernels over OpenBLAS, with naive twins. */
#include <cblas.h>
#include <math.h>

#include "core/core.h"

/* OpenBLAS extension (declared in its cblas.h, repeated for clarity). */
extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);

/* BLAS takes int sizes; callers stay below INT_MAX per call, and vector
 * ops are chunked so any n works. */
#define FMI_BLAS_CHUNK ((size_t)1 << 30)

void
fmi_axpy(size_t n, float a, const float *x, float *y)
{
	for (size_t o = 0; o < n; o += FMI_BLAS_CHUNK) {
		size_t m = FMI_MIN(FMI_BLAS_CHUNK, n - o);
		cblas_saxpy((int)m, a, x + o, 1, y + o, 1);
	}
}

void
fmi_scal(size_t n, float a, float *x)
{
	for (size_t o = 0; o < n; o += FMI_BLAS_CHUNK) {
		size_t m = FMI_MIN(FMI_BLAS_CHUNK, n - o);
		cblas_sscal((int)m, a, x + o, 1);
	}
}

double
fmi_dot(size_t n, const float *x, const float *y)
{
	double s = 0;
	for (size_t o = 0; o < n; o += FMI_BLAS_CHUNK) {
		size_t m = FMI_MIN(FMI_BLAS_CHUNK, n - o);
		s += cblas_dsdot((int)m, x + o, 1, y + o, 1);
	}
	return s;
}

double
fmi_nrm2(size_t n, const float *x)
{
	return sqrt(fmi_dot(n, x, x));
}

void
fmi_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
    const float *a, size_t lda, const float *b, size_t ldb, float beta,
    float *c, size_t ldc)
{
	if (m == 0 || n == 0) {
		return;
	}
	cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
	    trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha,
	    a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void
fmi_gemm_ref(int trans_a, int trans_b, size_t m, size_t n, size_t k,
    float alpha, const float *a, size_t lda, const float *b, size_t ldb,
    float beta, float *c, size_t ldc)
{
	for (size_t i = 0; i < m; i++) {
		for (size_t j = 0; j < n; j++) {
			double s = 0;
			for (size_t p = 0; p < k; p++) {
				float av = trans_a ? a[p * lda + i] : a[i * lda + p];
				float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
				s += (double)av * bv;
			}
			float prev = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
			c[i * ldc + j] = (float)(alpha * s) + prev;
		}
	}
}

void
fmi_blas_set_threads(int n)
{
	openblas_set_num_threads(n < 1 ? 1 : n);
}

int
fmi_blas_get_threads(void)
{
	return openblas_get_num_threads();
}

bool
fmi_all_finite(const float *x, size_t n)
{
	/* Branch-free accumulate: any NaN/Inf makes x*0 NaN. */
	float acc = 0.0f;
	for (size_t i = 0; i < n; i++) {
		acc += x[i] * 0.0f;
	}
	return acc == 0.0f;
}
