/* SPDX-License-Identifier: MIT */
/*
 * spectrum.c: describe()'s slem and spectral gap, from the eigenvalues of
 * W (LAPACK dsyev for a symmetric W, dgeev for a directed graph's).
 */
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "topo/graph_int.h"

/* LAPACK from OpenBLAS (Fortran ABI: trailing hidden string lengths). */
extern void dsyev_(const char *jobz, const char *uplo, const int *n,
    double *a, const int *lda, double *w, double *work, const int *lwork,
    int *info, size_t jobz_len, size_t uplo_len);
extern void dgeev_(const char *jobvl, const char *jobvr, const int *n,
    double *a, const int *lda, double *wr, double *wi, double *vl,
    const int *ldvl, double *vr, const int *ldvr, double *work,
    const int *lwork, int *info, size_t jobvl_len, size_t jobvr_len);

/* The second-largest of the moduli m[0..n). */
static double
second_modulus(const double *m, uint32_t n)
{
	double first = -1.0, second = 0.0;
	for (uint32_t i = 0; i < n; i++) {
		if (m[i] > first) {
			second = first < 0 ? 0.0 : first;
			first = m[i];
		} else if (m[i] > second) {
			second = m[i];
		}
	}
	return second;
}

static int
lapack_failed(const char *fn, int info, fm_error *err)
{
	return fm_error_set(err, FM_EINTERNAL, "describe: LAPACK %s failed "
	    "(info = %d)", fn, info);
}

/* Eigenvalue moduli of the symmetric w into m (w is destroyed). */
static int
moduli_sym(double *w, int n, double *m, fm_error *err)
{
	int lwork = -1, info = 0;
	double q;
	dsyev_("N", "U", &n, w, &n, m, &q, &lwork, &info, 1, 1);
	lwork = info == 0 ? (int)q : 3 * n;
	double *work = malloc((size_t)lwork * sizeof *work);
	if (work == NULL) {
		return fmi_graph_oom(err);
	}
	dsyev_("N", "U", &n, w, &n, m, work, &lwork, &info, 1, 1);
	free(work);
	if (info != 0) {
		return lapack_failed("dsyev", info, err);
	}
	for (int i = 0; i < n; i++) {
		m[i] = fabs(m[i]);
	}
	return FM_OK;
}

/* Eigenvalue moduli of the general w into m (w is destroyed; W and W^T
 * have the same eigenvalues, so row-major is fine). */
static int
moduli_gen(double *w, int n, double *m, fm_error *err)
{
	int lwork = -1, info = 0, one = 1;
	double q, dummy;
	double *wi = malloc((size_t)n * sizeof *wi);
	if (wi == NULL) {
		return fmi_graph_oom(err);
	}
	dgeev_("N", "N", &n, w, &n, m, wi, &dummy, &one, &dummy, &one, &q,
	    &lwork, &info, 1, 1);
	lwork = info == 0 ? (int)q : 4 * n;
	double *work = malloc((size_t)lwork * sizeof *work);
	if (work != NULL) {
		dgeev_("N", "N", &n, w, &n, m, wi, &dummy, &one, &dummy, &one,
		    work, &lwork, &info, 1, 1);
	}
	for (int i = 0; work != NULL && info == 0 && i < n; i++) {
		m[i] = hypot(m[i], wi[i]);
	}
	free(wi);
	free(work);
	if (work == NULL) {
		return fmi_graph_oom(err);
	}
	return info != 0 ? lapack_failed("dgeev", info, err) : FM_OK;
}

int
fmi_graph_spectrum(double *w, uint32_t n, int symmetric, fmi_graph_desc *d,
    fm_error *err)
{
	double *m = malloc((size_t)n * sizeof *m);
	if (m == NULL) {
		return fmi_graph_oom(err);
	}
	int rc = symmetric ? moduli_sym(w, (int)n, m, err)
	                   : moduli_gen(w, (int)n, m, err);
	if (rc == FM_OK) {
		d->slem = second_modulus(m, n);
		d->spectral_gap = 1.0 - d->slem;
	}
	free(m);
	return rc;
}
