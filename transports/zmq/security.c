/* SPDX-License-Identifier: MIT */
/* security.c: CURVE key pairs, key files and the allowlist ZAP handler. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "core/core.h"
#include "transports/zmq/security.h"
#include "transports/transport.h"

#define KEYFILE_MAX 4096 /* a key file is ~150 bytes; refuse anything big */

static const char z85_alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ".-:+=^!/*?&<>()[]{}@%$#";

/* ---- Z85 keys -------------------------------------------------------- */

int
fmi_z85_key_decode(uint8_t out[FMI_KEY_BYTES], const char *z85,
    fm_error *err)
{
	size_t n = z85 != NULL ? strnlen(z85, FMI_Z85_KEY_LEN + 1) : 0;
	if (n != FMI_Z85_KEY_LEN) {
		return fm_error_set(err, FM_EINVAL, "a CURVE key is %d Z85 "
		    "characters, this one has %s%zu; copy the whole "
		    "`public = ...` value from the key file", FMI_Z85_KEY_LEN,
		    n > FMI_Z85_KEY_LEN ? "more than " : "", n);
	}
	size_t ok = strspn(z85, z85_alphabet);
	if (ok != FMI_Z85_KEY_LEN) {
		return fm_error_set(err, FM_EINVAL, "character %zu of the CURVE "
		    "key is not in the Z85 alphabet; the key is damaged, copy "
		    "it again from the key file", ok + 1);
	}
	if (zmq_z85_decode(out, z85) == NULL) {
		return fm_error_set(err, FM_EINVAL, "the CURVE key is not valid "
		    "Z85 (a 5-character group overflows); copy it again from "
		    "the key file");
	}
	return FM_OK;
}

int
fmi_keygen(fmi_keypair *kp, fm_error *err)
{
	if (!zmq_has("curve")) {
		return fm_error_set(err, FM_ENOTSUP, "this libzmq was built "
		    "without CURVE support; install a libzmq built with "
		    "libsodium (Debian's libzmq5 is)");
	}
	if (zmq_curve_keypair(kp->public_z85, kp->secret_z85) != 0) {
		return fm_error_set(err, FM_ECRYPTO, "cannot generate a CURVE "
		    "key pair: %s", zmq_strerror(zmq_errno()));
	}
	return FM_OK;
}

/* ---- key files: writing ---------------------------------------------- */

int
fmi_key_name_check(const char *name, fm_error *err)
{
	size_t n = name != NULL ? strlen(name) : 0;
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	if (n == 0 || n > FMI_WIRE_MAX_NAME || strspn(name, ok) != n ||
	    name[0] == '.' || name[0] == '-') {
		return fm_error_set(err, FM_EINVAL, "key name '%s' is not valid: "
		    "use 1..%d letters, digits, '_', '.' or '-', not starting "
		    "with '.' or '-'", name != NULL ? name : "",
		    FMI_WIRE_MAX_NAME);
	}
	return FM_OK;
}

static int
ensure_dir(const char *dir, fm_error *err)
{
	struct stat st;
	if (mkdir(dir, 0700) == 0) {
		return FM_OK;
	}
	if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
		return FM_OK;
	}
	return fm_error_set(err, FM_EIO, "cannot create key directory %s: %s",
	    dir, errno == EEXIST ? "a file of that name exists" :
	    errno == ENOENT ? "its parent directory does not exist" :
	    strerror(errno));
}

/* Moves tmp to path: rename (replaces) or link (refuses to replace). */
static int
publish(const char *tmp, const char *path, int overwrite, fm_error *err)
{
	if (overwrite ? rename(tmp, path) : link(tmp, path)) {
		int e = errno;
		unlink(tmp);
		if (e == EEXIST) {
			return fm_error_set(err, FM_EEXIST, "%s already exists; "
			    "pass --force (overwrite) to replace it, and then "
			    "update every node that lists the old key", path);
		}
		return fm_error_set(err, FM_EIO, "cannot create %s: %s", path,
		    strerror(e));
	}
	if (!overwrite) {
		unlink(tmp);
	}
	return FM_OK;
}

/* Writes text to dir/file through a temp file: mode, fsync, then publish. */
static int
write_atomic(const char *dir, const char *file, const char *text,
    mode_t mode, int overwrite, fm_error *err)
{
	char tmp[4096], path[4096];
	if (snprintf(path, sizeof path, "%s/%s", dir, file) >=
		(int)sizeof path ||
	    snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, file) >=
		(int)sizeof tmp) {
		return fm_error_set(err, FM_ERANGE, "key path %s/%s is too long",
		    dir, file);
	}
	int fd = mkstemp(tmp); /* mode 0600 */
	if (fd < 0) {
		return fm_error_set(err, FM_EIO, "cannot write in %s: %s", dir,
		    strerror(errno));
	}
	int bad = fchmod(fd, mode) != 0 || fmi_write_all(fd, text, strlen(text)) ||
	    fsync(fd) != 0;
	int e = errno;
	bad |= close(fd) != 0;
	if (bad) {
		unlink(tmp);
		return fm_error_set(err, FM_EIO, "cannot write %s: %s", path,
		    strerror(e));
	}
	int rv = publish(tmp, path, overwrite, err);
	if (rv == FM_OK) {
		fmi_fsync_dir(path);
	}
	return rv;
}

static int
refuse_existing(const char *dir, const char *name, const char *ext,
    fm_error *err)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s%s", dir, name, ext);
	if (lstat(path, &st) == 0) {
		return fm_error_set(err, FM_EEXIST, "%s already exists; pass "
		    "--force (overwrite) to replace it, and then update every "
		    "node that lists the old key", path);
	}
	return FM_OK;
}

int
fmi_key_write(const char *dir, const char *name, const fmi_keypair *kp,
    int overwrite, fm_error *err)
{
	uint8_t raw[FMI_KEY_BYTES];
	int rv = fmi_key_name_check(name, err);
	if (rv == FM_OK) {
		rv = fmi_z85_key_decode(raw, kp->public_z85, err);
	}
	if (rv == FM_OK) {
		rv = fmi_z85_key_decode(raw, kp->secret_z85, err);
		sodium_memzero(raw, sizeof raw);
	}
	if (rv == FM_OK) {
		rv = ensure_dir(dir, err);
	}
	if (rv == FM_OK && !overwrite) {
		rv = refuse_existing(dir, name, ".key", err);
		rv = rv != FM_OK ? rv : refuse_existing(dir, name, ".pub", err);
	}
	if (rv != FM_OK) {
		return rv;
	}
	char text[512], file[FMI_WIRE_MAX_NAME + 8];
	snprintf(text, sizeof text, "# fedmesh CURVE key pair for %s; keep "
	    "secret\npublic = %s\nsecret = %s\n", name, kp->public_z85,
	    kp->secret_z85);
	snprintf(file, sizeof file, "%s.key", name);
	rv = write_atomic(dir, file, text, 0600, overwrite, err);
	sodium_memzero(text, sizeof text);
	if (rv == FM_OK) {
		snprintf(text, sizeof text, "# fedmesh CURVE public key for "
		    "%s\npublic = %s\n", name, kp->public_z85);
		snprintf(file, sizeof file, "%s.pub", name);
		rv = write_atomic(dir, file, text, 0644, overwrite, err);
	}
	return rv;
}

/* ---- key files: reading ---------------------------------------------- */

/* Reads a small file into buf (NUL-terminated). With private set, refuses
 * a file that group or others can access. */
static int
read_small(const char *path, char *buf, size_t cap, int private,
    fm_error *err)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0) {
		return fm_error_set(err, errno == ENOENT ? FM_ENOENT : FM_EIO,
		    "cannot open key file %s: %s%s", path, strerror(errno),
		    errno == ENOENT ? " (create one with `fedmesh keygen`)" :
		    "");
	}
	int rv = FM_OK;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rv = fm_error_set(err, FM_EINVAL, "%s is not a regular file; "
		    "give the path of a .key or .pub file", path);
	} else if (private && (st.st_mode & 077) != 0) {
		rv = fm_error_set(err, FM_EINVAL, "%s holds a secret key but "
		    "group or others can access it (mode %03o); run `chmod "
		    "600 %s`", path, (unsigned)(st.st_mode & 0777), path);
	} else if ((size_t)st.st_size >= cap) {
		rv = fm_error_set(err, FM_EINVAL, "%s is %lld bytes, too big for "
		    "a key file; give the path of a .key or .pub file", path,
		    (long long)st.st_size);
	}
	ssize_t n = rv == FM_OK ? read(fd, buf, cap - 1) : 0;
	if (n < 0) {
		rv = fm_error_set(err, FM_EIO, "cannot read %s: %s", path,
		    strerror(errno));
	}
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return rv;
}

static char *
trim(char *s)
{
	while (*s == ' ' || *s == '\t') {
		s++;
	}
	size_t n = strlen(s);
	while (n > 0 && strchr(" \t\r", s[n - 1]) != NULL) {
		s[--n] = '\0';
	}
	return s;
}

/* Stores one `key = value` line into kp. */
static int
parse_line(char *line, int lineno, const char *path, fmi_keypair *kp,
    fm_error *err)
{
	char *eq = strchr(line, '=');
	if (eq == NULL) {
		return fm_error_set(err, FM_EINVAL, "%s:%d: expected `public = "
		    "<key>` or `secret = <key>`", path, lineno);
	}
	*eq = '\0';
	char *k = trim(line), *v = trim(eq + 1), *dst;
	if (strcmp(k, "public") == 0) {
		dst = kp->public_z85;
	} else if (strcmp(k, "secret") == 0) {
		dst = kp->secret_z85;
	} else {
		return fm_error_set(err, FM_EINVAL, "%s:%d: unknown entry '%.32s' "
		    "(a key file has `public` and `secret`)", path, lineno, k);
	}
	if (dst[0] != '\0') {
		return fm_error_set(err, FM_EINVAL, "%s:%d: '%s' appears twice",
		    path, lineno, k);
	}
	uint8_t raw[FMI_KEY_BYTES];
	int rv = fmi_z85_key_decode(raw, v, err);
	sodium_memzero(raw, sizeof raw);
	if (rv != FM_OK) {
		char why[sizeof err->msg];
		fmi_strlcpy(why, err->msg, sizeof why);
		return fm_error_set(err, rv, "%s:%d: %s", path, lineno, why);
	}
	memcpy(dst, v, FMI_Z85_KEY_LEN + 1);
	return FM_OK;
}

static int
parse_keyfile(char *text, const char *path, fmi_keypair *kp, fm_error *err)
{
	int lineno = 0, rv = FM_OK;
	memset(kp, 0, sizeof *kp);
	for (char *l = text, *nl; l != NULL && rv == FM_OK; l = nl) {
		nl = strchr(l, '\n');
		if (nl != NULL) {
			*nl++ = '\0';
		}
		lineno++;
		char *s = trim(l);
		if (*s != '\0' && *s != '#') {
			rv = parse_line(s, lineno, path, kp, err);
		}
	}
	if (rv == FM_OK && kp->public_z85[0] == '\0') {
		rv = fm_error_set(err, FM_EINVAL, "%s has no `public = <key>` "
		    "line; is it a fedmesh key file?", path);
	}
	return rv;
}

/* The public key derived from the secret must be the one in the file. */
static int
check_pair(const fmi_keypair *kp, const char *path, fm_error *err)
{
	char derived[FMI_Z85_KEY_LEN + 1];
	if (zmq_curve_public(derived, kp->secret_z85) != 0 ||
	    strcmp(derived, kp->public_z85) != 0) {
		return fm_error_set(err, FM_EINVAL, "%s: the public key does not "
		    "belong to the secret key; regenerate the pair with "
		    "`fedmesh keygen --force`", path);
	}
	return FM_OK;
}

int
fmi_key_read_secret(const char *path, fmi_keypair *kp, fm_error *err)
{
	char buf[KEYFILE_MAX];
	int rv = read_small(path, buf, sizeof buf, 1, err);
	if (rv == FM_OK) {
		rv = parse_keyfile(buf, path, kp, err);
	}
	sodium_memzero(buf, sizeof buf);
	if (rv == FM_OK && kp->secret_z85[0] == '\0') {
		rv = fm_error_set(err, FM_EINVAL, "%s has no `secret = <key>` "
		    "line; give the node's .key file, not its .pub", path);
	}
	if (rv == FM_OK) {
		rv = check_pair(kp, path, err);
	}
	if (rv != FM_OK) {
		sodium_memzero(kp, sizeof *kp);
	}
	return rv;
}

int
fmi_key_read_public(const char *path, char out[FMI_Z85_KEY_LEN + 1],
    fm_error *err)
{
	char buf[KEYFILE_MAX];
	fmi_keypair kp;
	int rv = read_small(path, buf, sizeof buf, 0, err);
	if (rv == FM_OK) {
		rv = parse_keyfile(buf, path, &kp, err);
	}
	sodium_memzero(buf, sizeof buf);
	if (rv == FM_OK) {
		memcpy(out, kp.public_z85, sizeof kp.public_z85);
	}
	sodium_memzero(&kp, sizeof kp);
	return rv;
}

/* ---- ZAP handler ----------------------------------------------------- */

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES 8 /* 6 + CURVE's one credential frame, + slack */
#define ZAP_RECENT 16    /* refusals remembered for log rate limiting */
#define ZAP_QUIET_S 60.0 /* a repeated refusal is logged once a minute */

/* A refusal already logged: a refused client reconnects every 100 ms, so
 * repeats are counted and summarised instead of logged each time. */
typedef struct zap_recent {
	uint8_t key[FMI_KEY_BYTES];
	char addr[64];
	char mech[24];
	double last;
	unsigned long repeats;
} zap_recent;

struct fmi_zap {
	void *zctx, *rep, *ctl, *ctl_peer;
	pthread_t thread;
	size_t n;
	uint8_t (*keys)[FMI_KEY_BYTES];
	char (*names)[FMI_PEER_MAX + 1];
	atomic_size_t accepted, refused;
	zap_recent recent[ZAP_RECENT]; /* handler thread only */
	fmi_zap *next;                 /* registry */
};

/* Handlers by context, so a CURVE server can check one is running. */
static pthread_mutex_t zap_lock = PTHREAD_MUTEX_INITIALIZER;
static fmi_zap *zap_list;

int
fmi_zap_running(void *zctx)
{
	pthread_mutex_lock(&zap_lock);
	fmi_zap *z = zap_list;
	while (z != NULL && z->zctx != zctx) {
		z = z->next;
	}
	pthread_mutex_unlock(&zap_lock);
	return z != NULL;
}

static void
registry_add(fmi_zap *z)
{
	pthread_mutex_lock(&zap_lock);
	z->next = zap_list;
	zap_list = z;
	pthread_mutex_unlock(&zap_lock);
}

static void
registry_remove(fmi_zap *z)
{
	pthread_mutex_lock(&zap_lock);
	fmi_zap **pp = &zap_list;
	while (*pp != NULL && *pp != z) {
		pp = &(*pp)->next;
	}
	if (*pp != NULL) {
		*pp = z->next;
	}
	pthread_mutex_unlock(&zap_lock);
}

typedef struct zap_req {
	zmq_msg_t f[ZAP_MAX_FRAMES];
	int n;
} zap_req;

static void
req_close(zap_req *r)
{
	for (int i = 0; i < r->n; i++) {
		zmq_msg_close(&r->f[i]);
	}
	r->n = 0;
}

/* Receives one request; frames past ZAP_MAX_FRAMES are discarded. */
static int
req_recv(void *sock, zap_req *r)
{
	zmq_msg_t extra;
	int more = 1;
	r->n = 0;
	while (more) {
		zmq_msg_t *m = r->n < ZAP_MAX_FRAMES ? &r->f[r->n] : &extra;
		zmq_msg_init(m);
		if (zmq_msg_recv(m, sock, 0) < 0) {
			zmq_msg_close(m);
			req_close(r);
			return -1;
		}
		more = zmq_msg_more(m);
		if (m == &extra) {
			zmq_msg_close(m);
		} else {
			r->n++;
		}
	}
	return 0;
}

static int
frame_is(zmq_msg_t *m, const char *s)
{
	size_t n = strlen(s);
	return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

/* Copies a frame as printable text (it came from the network). */
static void
frame_text(zmq_msg_t *m, char *buf, size_t cap)
{
	size_t n = FMI_MIN(zmq_msg_size(m), cap - 1);
	const unsigned char *d = zmq_msg_data(m);
	for (size_t i = 0; i < n; i++) {
		buf[i] = d[i] >= 0x20 && d[i] < 0x7f ? (char)d[i] : '?';
	}
	buf[n] = '\0';
}

static zap_recent *
recent_slot(fmi_zap *z, const uint8_t *key, const char *addr,
    const char *mech)
{
	zap_recent *oldest = &z->recent[0];
	for (int i = 0; i < ZAP_RECENT; i++) {
		zap_recent *e = &z->recent[i];
		if (memcmp(e->key, key, FMI_KEY_BYTES) == 0 &&
		    strcmp(e->addr, addr) == 0 && strcmp(e->mech, mech) == 0) {
			return e;
		}
		oldest = e->last < oldest->last ? e : oldest;
	}
	memcpy(oldest->key, key, FMI_KEY_BYTES);
	fmi_strlcpy(oldest->addr, addr, sizeof oldest->addr);
	fmi_strlcpy(oldest->mech, mech, sizeof oldest->mech);
	oldest->last = -ZAP_QUIET_S;
	oldest->repeats = 0;
	return oldest;
}

/* Logs a refusal unless the same one was logged in the last minute. */
static void
log_refusal(fmi_zap *z, const uint8_t *key, const char *addr,
    const char *mech)
{
	zap_recent *e = recent_slot(z, key, addr, mech);
	double now = fmi_now();
	if (now - e->last < ZAP_QUIET_S) {
		e->repeats++;
		return;
	}
	char why[128], more[96] = "";
	if (strcmp(mech, "CURVE") == 0) {
		char z85[FMI_Z85_KEY_LEN + 1];
		zmq_z85_encode(z85, key, FMI_KEY_BYTES);
		snprintf(why, sizeof why, "key %s is not in the deployment",
		    z85);
	} else if (strcmp(mech, "CURVE?") == 0) {
		snprintf(why, sizeof why, "malformed CURVE credentials");
	} else {
		snprintf(why, sizeof why, "no CURVE credentials (mechanism "
		    "%s)", mech);
	}
	if (e->repeats > 0) {
		snprintf(more, sizeof more, " (refused %lu more times since the "
		    "last report)", e->repeats);
	}
	fm_log(FM_LOG_WARN, "FM-AUTH", "refused connection from %s: %s%s",
	    addr, why, more);
	e->last = now;
	e->repeats = 0;
}

/* Index of the listed key equal to key, or -1. */
static long
find_key(const fmi_zap *z, const uint8_t *key)
{
	for (size_t i = 0; i < z->n; i++) {
		if (sodium_memcmp(z->keys[i], key, FMI_KEY_BYTES) == 0) {
			return (long)i;
		}
	}
	return -1;
}

/* Decides on a well-formed request: 200 with the node's name, or 400. */
static const char *
zap_decide(fmi_zap *z, zap_req *r, const char **user)
{
	char addr[64], mech[24];
	uint8_t none[FMI_KEY_BYTES] = { 0 };
	frame_text(&r->f[3], addr, sizeof addr);
	frame_text(&r->f[5], mech, sizeof mech);
	*user = "";
	if (!frame_is(&r->f[5], "CURVE")) {
		log_refusal(z, none, addr, mech);
		return "400";
	}
	if (r->n != 7 || zmq_msg_size(&r->f[6]) != FMI_KEY_BYTES) {
		log_refusal(z, none, addr, "CURVE?");
		return "400";
	}
	const uint8_t *key = zmq_msg_data(&r->f[6]);
	long i = find_key(z, key);
	if (i < 0) {
		log_refusal(z, key, addr, mech);
		return "400";
	}
	*user = z->names[i];
	fm_log(FM_LOG_DEBUG, "FM-AUTH", "accepted %s from %s", *user, addr);
	return "200";
}

static int
send_str(void *sock, const char *s, int more)
{
	return zmq_send(sock, s, strlen(s), more ? ZMQ_SNDMORE : 0) < 0 ? -1
									 : 0;
}

/* Answers one request (ZAP 1.0, RFC 27). A REP socket must always reply,
 * so a malformed request gets 500. */
static int
zap_serve(fmi_zap *z)
{
	zap_req r;
	if (req_recv(z->rep, &r) != 0) {
		return -1;
	}
	const char *status = "500", *user = "", *text = "malformed request";
	if (r.n >= 6 && frame_is(&r.f[0], "1.0")) {
		status = zap_decide(z, &r, &user);
		text = status[0] == '2' ? "OK" : "not in the deployment";
	} else {
		fm_log(FM_LOG_WARN, "FM-AUTH", "malformed ZAP request (%d frames)"
		    "; refused", r.n);
	}
	atomic_fetch_add(status[0] == '2' ? &z->accepted : &z->refused, 1);
	zmq_msg_t id;
	zmq_msg_init(&id);
	if (r.n >= 2) {
		zmq_msg_copy(&id, &r.f[1]);
	}
	int rc = send_str(z->rep, "1.0", 1);
	rc = rc ? rc : (zmq_msg_send(&id, z->rep, ZMQ_SNDMORE) < 0 ? -1 : 0);
	rc = rc ? rc : send_str(z->rep, status, 1);
	rc = rc ? rc : send_str(z->rep, text, 1);
	rc = rc ? rc : send_str(z->rep, user, 1);
	rc = rc ? rc : send_str(z->rep, "", 0);
	zmq_msg_close(&id);
	req_close(&r);
	return rc;
}

static void *
zap_main(void *arg)
{
	fmi_zap *z = arg;
	for (;;) {
		zmq_pollitem_t it[2] = { { z->rep, 0, ZMQ_POLLIN, 0 },
			{ z->ctl_peer, 0, ZMQ_POLLIN, 0 } };
		if (zmq_poll(it, 2, -1) < 0) {
			if (zmq_errno() == EINTR) {
				continue;
			}
			break; /* ETERM: the context is shutting down */
		}
		if (it[1].revents != 0 ||
		    ((it[0].revents & ZMQ_POLLIN) && zap_serve(z) != 0 &&
			zmq_errno() == ETERM)) {
			break;
		}
	}
	zmq_close(z->rep);
	zmq_close(z->ctl_peer);
	return NULL;
}

static void
zap_free(fmi_zap *z)
{
	free(z->keys);
	free(z->names);
	free(z);
}

/* Decodes the allowlist into z. */
static int
zap_load(fmi_zap *z, const char *const *keys, const char *const *names,
    size_t n, fm_error *err)
{
	z->keys = calloc(n ? n : 1, sizeof *z->keys);
	z->names = calloc(n ? n : 1, sizeof *z->names);
	if (z->keys == NULL || z->names == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const char *nm = names[i] != NULL ? names[i] : "";
		if (nm[0] == '\0' ||
		    fmi_strlcpy(z->names[i], nm, sizeof z->names[i]) != FM_OK) {
			return fm_error_set(err, FM_EINVAL, "allowlist entry %zu: "
			    "node name '%s' must be 1..%d characters", i, nm,
			    FMI_PEER_MAX);
		}
		int rv = fmi_z85_key_decode(z->keys[i], keys[i], err);
		if (rv != FM_OK) {
			char why[sizeof err->msg];
			fmi_strlcpy(why, err->msg, sizeof why);
			return fm_error_set(err, rv, "allowlist key of %s: %s", nm,
			    why);
		}
		long dup = (z->n = i, find_key(z, z->keys[i]));
		if (dup >= 0) {
			return fm_error_set(err, FM_EINVAL, "allowlist: %s and %s "
			    "have the same public key; give every node its own "
			    "key pair", z->names[dup], nm);
		}
	}
	z->n = n;
	return FM_OK;
}

/* Binds the ZAP endpoint and the stop channel on the caller's thread. */
static int
zap_sockets(fmi_zap *z, fm_error *err)
{
	char ctl_url[64];
	snprintf(ctl_url, sizeof ctl_url, "inproc://fedmesh-zap-ctl-%p",
	    (void *)z);
	z->rep = zmq_socket(z->zctx, ZMQ_REP);
	z->ctl = zmq_socket(z->zctx, ZMQ_PAIR);
	z->ctl_peer = zmq_socket(z->zctx, ZMQ_PAIR);
	int linger = 0;
	if (z->rep == NULL || z->ctl == NULL || z->ctl_peer == NULL) {
		return fm_error_set(err, FM_ETRANERR | zmq_errno(), "cannot "
		    "create the ZAP handler's sockets: %s",
		    zmq_strerror(zmq_errno()));
	}
	zmq_setsockopt(z->rep, ZMQ_LINGER, &linger, sizeof linger);
	if (zmq_bind(z->rep, ZAP_ENDPOINT) != 0) {
		int e = zmq_errno();
		return fm_error_set(err, FM_ETRANERR | e, "cannot start the ZAP "
		    "handler: %s%s", zmq_strerror(e), e == EADDRINUSE ?
		    " (another ZAP handler runs on this ZeroMQ context; start "
		    "one per context)" : "");
	}
	if (zmq_bind(z->ctl, ctl_url) != 0 ||
	    zmq_connect(z->ctl_peer, ctl_url) != 0) {
		return fm_error_set(err, FM_ETRANERR | zmq_errno(), "cannot "
		    "set up the ZAP handler: %s", zmq_strerror(zmq_errno()));
	}
	return FM_OK;
}

static void
zap_close_sockets(fmi_zap *z)
{
	void *s[3] = { z->rep, z->ctl, z->ctl_peer };
	for (int i = 0; i < 3; i++) {
		if (s[i] != NULL) {
			zmq_close(s[i]);
		}
	}
}

int
fmi_zap_start(fmi_zap **out, void *zctx, const char *const *keys,
    const char *const *names, size_t n, fm_error *err)
{
	if (n > 0 && (keys == NULL || names == NULL)) {
		return fm_error_set(err, FM_EINVAL, "fmi_zap_start: keys and "
		    "names must both be given");
	}
	fmi_zap *z = calloc(1, sizeof *z);
	if (z == NULL) {
		return fm_error_set(err, FM_ENOMEM, "out of memory");
	}
	z->zctx = zctx;
	atomic_init(&z->accepted, 0);
	atomic_init(&z->refused, 0);
	int rv = zap_load(z, keys, names, n, err);
	rv = rv != FM_OK ? rv : zap_sockets(z, err);
	if (rv == FM_OK && pthread_create(&z->thread, NULL, zap_main, z) != 0) {
		rv = fm_error_set(err, FM_ESYSERR | EAGAIN, "cannot start the "
		    "ZAP handler thread");
	}
	if (rv != FM_OK) {
		zap_close_sockets(z);
		zap_free(z);
		return rv;
	}
	registry_add(z);
	*out = z;
	return FM_OK;
}

size_t
fmi_zap_accepted(const fmi_zap *z)
{
	return atomic_load(&((fmi_zap *)z)->accepted);
}

size_t
fmi_zap_refused(const fmi_zap *z)
{
	return atomic_load(&((fmi_zap *)z)->refused);
}

void
fmi_zap_stop(fmi_zap *z)
{
	if (z == NULL) {
		return;
	}
	registry_remove(z);
	/* Fails only when the context is shutting down, and then the thread
	 * has seen ETERM and is leaving on its own. */
	(void)zmq_send(z->ctl, "", 0, ZMQ_DONTWAIT);
	pthread_join(z->thread, NULL);
	zmq_close(z->ctl);
	zap_free(z);
}
