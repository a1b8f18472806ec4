/* SPDX-License-Identifier: MIT */
/*
 * security.h: CURVE keys and authentication for tcp:// deployments.
 *
 * Every node has one Curve25519 key pair (fedmesh keygen). On TCP every
 * link is CURVE-encrypted and mutually authenticated: a client knows the
 * server's public key; the server (and later every peer) runs a ZAP handler
 * that accepts only the public keys listed in the deployment, and logs each
 * refusal ("FM-AUTH") with the offending key and address.
 */
#ifndef FMI_SECURITY_H
#define FMI_SECURITY_H

#include <stddef.h>
#include <stdint.h>

#include "fedmesh/fedmesh.h"

#define FMI_Z85_KEY_LEN 40 /* Z85 text of a 32-byte key */
#define FMI_KEY_BYTES 32   /* a Curve25519 key */

typedef struct fmi_keypair {
	char public_z85[FMI_Z85_KEY_LEN + 1];
	char secret_z85[FMI_Z85_KEY_LEN + 1];
} fmi_keypair;

/* Decodes a Z85 key: exactly 40 characters of the Z85 alphabet that
 * zmq_z85_decode accepts. FM_EINVAL with the reason otherwise. */
int fmi_z85_key_decode(uint8_t out[FMI_KEY_BYTES], const char *z85,
    fm_error *err);

/* A fresh key pair (libsodium / libzmq CURVE). */
int fmi_keygen(fmi_keypair *kp, fm_error *err);

/* A key name (the node's name): 1..63 of [A-Za-z0-9_.-], not starting
 * with '.' or '-', so it is a plain file name. */
int fmi_key_name_check(const char *name, fm_error *err);

/*
 * Writes dir/name.key (both keys, mode 0600, written atomically) and
 * dir/name.pub (public key only). Creates dir (0700) if missing. Refuses
 * to overwrite an existing key unless overwrite is set.
 */
int fmi_key_write(const char *dir, const char *name, const fmi_keypair *kp,
    int overwrite, fm_error *err);
/* Reads a .key file (secret + public). Refuses a file readable by group
 * or others, with a message saying to chmod 600 it. */
int fmi_key_read_secret(const char *path, fmi_keypair *kp, fm_error *err);
/* Reads the public key from a .pub or .key file. */
int fmi_key_read_public(const char *path, char out[FMI_Z85_KEY_LEN + 1],
    fm_error *err);

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

/* Transport security settings for fmi_tran_listen_secure/dial_secure. */
typedef struct fmi_tran_security {
	const fmi_keypair *self;      /* this node's key pair */
	const char *server_public;    /* dialing side: the server's key */
} fmi_tran_security;

#endif /* FMI_SECURITY_H */
