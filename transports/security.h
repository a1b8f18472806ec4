/* SPDX-License-Identifier: MIT */
/*
 * security.h: node keys and transport security settings, independent of
 * the transport (the engine's view; transports/zmq/security.c implements
 * it with libsodium and libzmq's CURVE).
 *
 * Every node has one Curve25519 key pair (fedmesh keygen). On TCP every
 * link is encrypted and mutually authenticated: a client knows the
 * server's public key; the server (and every peer) runs an authenticator
 * (fmi_tran_allow in transport.h) that accepts only the public keys
 * listed in the deployment, and logs each refusal ("FM-AUTH") with the
 * offending key and address.
 */
#ifndef FMI_TRANSPORTS_SECURITY_H
#define FMI_TRANSPORTS_SECURITY_H

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
 * libzmq's decoder accepts. FM_EINVAL with the reason otherwise. */
int fmi_z85_key_decode(uint8_t out[FMI_KEY_BYTES], const char *z85,
    fm_error *err);

/* A fresh key pair. */
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

/* Transport security settings of a listening or dialing endpoint. */
typedef struct fmi_tran_security {
	const fmi_keypair *self;      /* this node's key pair */
	const char *server_public;    /* dialing side: the server's key */
} fmi_tran_security;

#endif /* FMI_TRANSPORTS_SECURITY_H */
