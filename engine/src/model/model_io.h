/* SPDX-License-Identifier: MIT */
/*
 * model_io.h: model files (architecture + float32 parameters), written by
 * model:save / result:save_model and read by fm.model.load.
 *
 * Format version 1, every integer little-endian (docs/model-format.md):
 *
 *   offset     size  field
 *   0          8     magic "FMMODEL\0"
 *   8          4     format version (1)
 *   12         4     header size H = 36 + 4 n (bytes before the parameters)
 *   16         4     kind: 1 mlp, 2 logreg, 3 cnn
 *   20         4     n, the number of shape values
 *   24         4 n   shape: mlp/logreg the widths (inputs, hidden..., classes);
 *                    cnn side, kernel, channels1, channels2, hidden, classes
 *   24 + 4 n   8     nparams P
 *   32 + 4 n   4     CRC-32 (zlib) of bytes [0, 32 + 4 n)
 *   H          4 P   the parameters, IEEE float32, in the model's slice order
 *   H + 4 P    4     CRC-32 of the parameter bytes
 *
 * The file is exactly H + 4 P + 4 bytes. The header has its own checksum so
 * that a truncated file is told apart from a damaged header.
 */
#ifndef FMI_MODEL_IO_H
#define FMI_MODEL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define FMI_MODEL_FORMAT_VERSION 1u

/* "mlp 784-200-200-10", "cnn 1x28x28-32c5-p2-64c5-p2-512-10" into buf. */
void fmi_arch_describe(const fmi_arch *a, char *buf, size_t n);
/* 1 when a and b are the same architecture (kind, shape and size). */
int fmi_arch_same(const fmi_arch *a, const fmi_arch *b);

/* Bytes of the file fmi_model_save writes for a. */
size_t fmi_model_file_size(const fmi_arch *a);

/* Writes a and params[a->nparams] to path atomically: a temporary file in
 * the same folder, fsync, rename, fsync of the folder; on failure path is
 * unchanged. FM_EINVAL for an architecture the format cannot describe,
 * FM_EIO for I/O errors (err names the file and the reason). */
int fmi_model_save(const char *path, const fmi_arch *a, const float *params,
    fm_error *err);

/* Reads path into *a and a new buffer *params of a->nparams floats (free
 * it with free()). Refuses, with err saying what is wrong and what to do:
 * FM_ENOENT (no such file), FM_EIO (unreadable), FM_EPROTO (not a model
 * file, truncated or longer than its header says, damaged header or
 * parameters, architecture inconsistent with nparams), FM_EVERSION (a newer
 * format). On failure *a and *params are untouched. */
int fmi_model_load(const char *path, fmi_arch *a, float **params,
    fm_error *err);

#endif /* FMI_MODEL_IO_H */
