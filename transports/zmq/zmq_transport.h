/* SPDX-License-Identifier: MIT */
/*
 * zmq_transport.h: what only ZeroMQ-aware code needs of the ZeroMQ
 * transport (its ops table is fmi_tran_zmq_ops in transport.h).
 *
 * For this folder's code and for tests that must speak raw ZeroMQ (a
 * fuzzer sending malformed frames); the engine does not include it.
 */
#ifndef FMI_ZMQ_TRANSPORT_H
#define FMI_ZMQ_TRANSPORT_H

#include "transports/transport.h"

/* A transport context on the caller's ZeroMQ context zctx (tuned with
 * zmq_ctx_set, or shared with raw sockets); fmi_tran_ctx_free leaves
 * zctx to the caller to terminate. */
int fmi_tran_zmq_wrap(fmi_tran_ctx **out, void *zctx, fm_error *err);
/* The ZeroMQ context behind c (NULL if c is not a ZeroMQ one). */
void *fmi_tran_zmq_context(fmi_tran_ctx *c);
/* The socket of endpoint t, for zmq_poll, monitors and socket options in
 * tests (NULL if t is not a ZeroMQ endpoint). */
void *fmi_tran_zmq_socket(fmi_tran *t);

#endif /* FMI_ZMQ_TRANSPORT_H */
