/* SPDX-License-Identifier: MIT */
/*
 * security.h: the ZeroMQ side of transport security: the ZAP handler.
 *
 * Internal to the ZeroMQ transport and its tests: the engine starts the
 * handler through fmi_tran_allow (transport.h), which runs one on the
 * context, and uses the keys of transports/security.h.
 */
#ifndef FMI_SECURITY_H
#define FMI_SECURITY_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"
#include "transports/security.h"

/*
 * An allowlist-based ZAP handler (one per ZeroMQ context): a thread that
 * answers libzmq's authentication requests. A CURVE client whose public
 * key is keys[i] is accepted with user id names[i] (its node name; the
 * transport requires it to equal the client's routing identity); any
 * other key, and any non-CURVE mechanism, is refused and logged
 * ("FM-AUTH", repeats of one refusal at most once a minute).
 *
 * Order matters: start the handler before listening with CURVE (the
 * transport refuses otherwise: libzmq built without its draft API accepts
 * every CURVE client when no handler runs), and stop it only after the
 * CURVE servers are closed and before zmq_ctx_term.
 */
typedef struct fmi_zap fmi_zap;
/* names[i] labels keys[i] in logs; both arrays have n entries. */
int fmi_zap_start(fmi_zap **out, void *zctx, const char *const *keys,
    const char *const *names, size_t n, fm_error *err);
/* Counters for tests and logs. */
size_t fmi_zap_accepted(const fmi_zap *z);
size_t fmi_zap_refused(const fmi_zap *z);
void fmi_zap_stop(fmi_zap *z); /* NULL ok; joins the thread */
/* True while a handler started by fmi_zap_start runs on zctx. */
int fmi_zap_running(void *zctx);

#endif /* FMI_SECURITY_H */
