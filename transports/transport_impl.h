/* SPDX-License-Identifier: MIT */
/*
 * transport_impl.h: for implementations of transport.h only.
 *
 * An implementation's context, endpoint and received-payload structs
 * start with these heads (as their first member), so the dispatching
 * layer (transport.c) finds the ops and the bytes without knowing the
 * rest. Engine code includes transport.h, never this.
 */
#ifndef FMI_TRANSPORT_IMPL_H
#define FMI_TRANSPORT_IMPL_H

#include "transports/transport.h"

struct fmi_tran_ctx {
	const fmi_tran_ops *ops;
};

struct fmi_tran {
	const fmi_tran_ops *ops;
};

struct fmi_rbuf {
	const fmi_tran_ops *ops;
	const void *data;
	size_t len;
};

#endif /* FMI_TRANSPORT_IMPL_H */
