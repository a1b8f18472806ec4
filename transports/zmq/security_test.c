/* SPDX-License-Identifier: MIT */
/* security_test.c: key generation, key files, Z85 checks, ZAP set-up. */
#define _DEFAULT_SOURCE /* mkdtemp, mode_t */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "fm_test.h"

#include "core/core.h"
#include "transports/zmq/security.h"
#include "transports/transport.h"
#include "transports/zmq/zmq_transport.h"

typedef struct tmpdir {
	char path[64];
} tmpdir;

static int
dir_setup(void **state)
{
	tmpdir *d = calloc(1, sizeof *d);
	snprintf(d->path, sizeof d->path, "/tmp/fm-keys-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	*state = d;
	return 0;
}

static int
dir_teardown(void **state)
{
	tmpdir *d = *state;
	DIR *dh = opendir(d->path);
	struct dirent *e;
	char p[512];
	while (dh != NULL && (e = readdir(dh)) != NULL) {
		if (e->d_name[0] != '.' || strlen(e->d_name) > 2) {
			snprintf(p, sizeof p, "%s/%s", d->path, e->d_name);
			unlink(p);
		}
	}
	if (dh != NULL) {
		closedir(dh);
	}
	rmdir(d->path);
	free(d);
	return 0;
}

static void
path_of(char *buf, size_t n, const tmpdir *d, const char *file)
{
	snprintf(buf, n, "%s/%s", d->path, file);
}

static int
count_entries(const char *dir)
{
	DIR *dh = opendir(dir);
	int n = 0;
	for (struct dirent *e; dh != NULL && (e = readdir(dh)) != NULL;) {
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	}
	if (dh != NULL) {
		closedir(dh);
	}
	return n;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_keygen_round_trip(void **state)
{
	tmpdir *d = *state;
	fmi_keypair kp, back;
	char path[256], pub[FMI_Z85_KEY_LEN + 1];
	struct stat st;
	FMT_PASS(fmi_keygen(&kp, NULL));
	assert_int_equal(strlen(kp.public_z85), FMI_Z85_KEY_LEN);
	assert_string_not_equal(kp.public_z85, kp.secret_z85);
	FMT_PASS(fmi_key_write(d->path, "alice", &kp, 0, NULL));
	path_of(path, sizeof path, d, "alice.key");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	FMT_PASS(fmi_key_read_secret(path, &back, NULL));
	assert_string_equal(back.public_z85, kp.public_z85);
	assert_string_equal(back.secret_z85, kp.secret_z85);
	FMT_PASS(fmi_key_read_public(path, pub, NULL));
	assert_string_equal(pub, kp.public_z85);
	path_of(path, sizeof path, d, "alice.pub");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	FMT_PASS(fmi_key_read_public(path, pub, NULL));
	assert_string_equal(pub, kp.public_z85);
	/* a .pub holds no secret, so it is no secret key file */
	fm_error e;
	assert_int_equal(chmod(path, 0600), 0);
	FMT_FAIL(fmi_key_read_secret(path, &back, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "no `secret"));
	assert_int_equal(count_entries(d->path), 2); /* no temp files left */
}

static void
test_key_file_format(void **state)
{
	tmpdir *d = *state;
	fmi_keypair kp;
	char path[256], text[512], want[512];
	FMT_PASS(fmi_keygen(&kp, NULL));
	FMT_PASS(fmi_key_write(d->path, "n1", &kp, 0, NULL));
	path_of(path, sizeof path, d, "n1.key");
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	snprintf(want, sizeof want, "# fedmesh CURVE key pair for n1; keep "
	    "secret\npublic = %s\nsecret = %s\n", kp.public_z85,
	    kp.secret_z85);
	assert_string_equal(text, want);
}

static void
test_no_silent_overwrite(void **state)
{
	tmpdir *d = *state;
	fmi_keypair a, b, back;
	fm_error e;
	char path[256];
	FMT_PASS(fmi_keygen(&a, NULL));
	FMT_PASS(fmi_keygen(&b, NULL));
	FMT_PASS(fmi_key_write(d->path, "n", &a, 0, NULL));
	FMT_FAIL(fmi_key_write(d->path, "n", &b, 0, &e), FM_EEXIST);
	assert_non_null(strstr(e.msg, "--force"));
	path_of(path, sizeof path, d, "n.key");
	FMT_PASS(fmi_key_read_secret(path, &back, NULL));
	assert_string_equal(back.secret_z85, a.secret_z85);
	FMT_PASS(fmi_key_write(d->path, "n", &b, 1, NULL));
	FMT_PASS(fmi_key_read_secret(path, &back, NULL));
	assert_string_equal(back.secret_z85, b.secret_z85);
	assert_int_equal(count_entries(d->path), 2);
}

static void
test_creates_private_dir(void **state)
{
	tmpdir *d = *state;
	fmi_keypair kp;
	char sub[256], path[300];
	struct stat st;
	path_of(sub, sizeof sub, d, "keys");
	FMT_PASS(fmi_keygen(&kp, NULL));
	FMT_PASS(fmi_key_write(sub, "s", &kp, 0, NULL));
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof path, "%s/s.key", sub);
	unlink(path);
	snprintf(path, sizeof path, "%s/s.pub", sub);
	unlink(path);
	rmdir(sub);
}

static void
test_permission_refused(void **state)
{
	tmpdir *d = *state;
	fmi_keypair kp, back;
	fm_error e;
	char path[256], want[300];
	FMT_PASS(fmi_keygen(&kp, NULL));
	FMT_PASS(fmi_key_write(d->path, "open", &kp, 0, NULL));
	path_of(path, sizeof path, d, "open.key");
	snprintf(want, sizeof want, "chmod 600 %s", path);
	const mode_t modes[] = { 0640, 0604, 0660, 0610, 0601 };
	for (size_t i = 0; i < FMI_ARRAY_LEN(modes); i++) {
		assert_int_equal(chmod(path, modes[i]), 0);
		FMT_FAIL(fmi_key_read_secret(path, &back, &e), FM_EINVAL);
		assert_non_null(strstr(e.msg, want));
		assert_string_equal(back.secret_z85, ""); /* wiped */
	}
	/* the public half may be read from it all the same */
	char pub[FMI_Z85_KEY_LEN + 1];
	FMT_PASS(fmi_key_read_public(path, pub, NULL));
	assert_int_equal(chmod(path, 0400), 0);
	FMT_PASS(fmi_key_read_secret(path, &back, NULL));
}

static void
test_bad_z85(void **state)
{
	(void)state;
	uint8_t raw[FMI_KEY_BYTES];
	fm_error e;
	fmi_keypair kp;
	FMT_PASS(fmi_keygen(&kp, NULL));
	FMT_PASS(fmi_z85_key_decode(raw, kp.public_z85, NULL));
	char k[64];
	snprintf(k, sizeof k, "%.39s", kp.public_z85); /* 39 characters */
	FMT_FAIL(fmi_z85_key_decode(raw, k, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "40"));
	snprintf(k, sizeof k, "%sA", kp.public_z85); /* 41 */
	FMT_FAIL(fmi_z85_key_decode(raw, k, &e), FM_EINVAL);
	snprintf(k, sizeof k, "%s", kp.public_z85);
	k[7] = '~'; /* not in the alphabet */
	FMT_FAIL(fmi_z85_key_decode(raw, k, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "character 8"));
	k[7] = ' ';
	FMT_FAIL(fmi_z85_key_decode(raw, k, &e), FM_EINVAL);
	/* alphabet characters, but the group "#####" overflows 32 bits */
	memset(k, '#', 40);
	k[40] = '\0';
	FMT_FAIL(fmi_z85_key_decode(raw, k, &e), FM_EINVAL);
	FMT_FAIL(fmi_z85_key_decode(raw, "", &e), FM_EINVAL);
	FMT_FAIL(fmi_z85_key_decode(raw, NULL, &e), FM_EINVAL);
}

static void
test_bad_key_files(void **state)
{
	tmpdir *d = *state;
	fmi_keypair a, b, back;
	fm_error e;
	char path[256], text[512];
	FMT_PASS(fmi_keygen(&a, NULL));
	FMT_PASS(fmi_keygen(&b, NULL));
	path_of(path, sizeof path, d, "bad.key");
	/* a damaged public key, with its line number */
	snprintf(text, sizeof text, "# c\npublic = %.39s~\nsecret = %s\n",
	    a.public_z85, a.secret_z85);
	write_file(path, text, 0600);
	FMT_FAIL(fmi_key_read_secret(path, &back, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "bad.key:2:"));
	/* keys of two different pairs */
	snprintf(text, sizeof text, "public = %s\nsecret = %s\n", a.public_z85,
	    b.secret_z85);
	write_file(path, text, 0600);
	FMT_FAIL(fmi_key_read_secret(path, &back, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "does not belong"));
	/* unknown entry, duplicate entry, no public key */
	write_file(path, "private = x\n", 0600);
	FMT_FAIL(fmi_key_read_secret(path, &back, &e), FM_EINVAL);
	snprintf(text, sizeof text, "public = %s\npublic = %s\n", a.public_z85,
	    a.public_z85);
	write_file(path, text, 0600);
	FMT_FAIL(fmi_key_read_public(path, back.public_z85, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "twice"));
	write_file(path, "# nothing\n\n", 0600);
	FMT_FAIL(fmi_key_read_public(path, back.public_z85, &e), FM_EINVAL);
	path_of(path, sizeof path, d, "missing.key");
	FMT_FAIL(fmi_key_read_secret(path, &back, &e), FM_ENOENT);
	assert_non_null(strstr(e.msg, "fedmesh keygen"));
	FMT_FAIL(fmi_key_read_public(d->path, back.public_z85, &e), FM_EINVAL);
}

static void
test_bad_names(void **state)
{
	tmpdir *d = *state;
	fmi_keypair kp;
	fm_error e;
	FMT_PASS(fmi_keygen(&kp, NULL));
	const char *bad[] = { "", "../x", "a/b", ".hidden", "-x", "a b" };
	for (size_t i = 0; i < FMI_ARRAY_LEN(bad); i++) {
		FMT_FAIL(fmi_key_write(d->path, bad[i], &kp, 0, &e), FM_EINVAL);
	}
	fmi_keypair broken = kp;
	broken.secret_z85[3] = '~';
	FMT_FAIL(fmi_key_write(d->path, "ok", &broken, 0, &e), FM_EINVAL);
	assert_int_equal(count_entries(d->path), 0);
}

static void
test_zap_setup(void **state)
{
	(void)state;
	void *zctx = zmq_ctx_new();
	fmi_tran_ctx *tc;
	FMT_PASS(fmi_tran_zmq_wrap(&tc, zctx, NULL));
	fmi_keypair a, b;
	fmi_zap *z, *z2;
	fm_error e;
	FMT_PASS(fmi_keygen(&a, NULL));
	FMT_PASS(fmi_keygen(&b, NULL));
	const char *bad_keys[] = { a.public_z85, "short" };
	const char *dup_keys[] = { a.public_z85, a.public_z85 };
	const char *names[] = { "a", "b" };
	FMT_FAIL(fmi_zap_start(&z, zctx, bad_keys, names, 2, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "of b"));
	FMT_FAIL(fmi_zap_start(&z, zctx, dup_keys, names, 2, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "same public key"));
	assert_false(fmi_zap_running(zctx));

	/* no handler: a CURVE server refuses to start (libzmq would accept
	 * every key); inproc:// cannot carry CURVE at all */
	fmi_tran *t;
	fmi_tran_security sec = { &a, NULL };
	FMT_FAIL(fmi_tran_listen_secure(&t, tc, "tcp://127.0.0.1:*", &sec,
	    &e), FM_ESTATE);
	assert_non_null(strstr(e.msg, "fmi_zap_start"));

	const char *keys[] = { a.public_z85, b.public_z85 };
	FMT_PASS(fmi_zap_start(&z, zctx, keys, names, 2, &e));
	assert_true(fmi_zap_running(zctx));
	FMT_FAIL(fmi_tran_listen_secure(&t, tc, "inproc://x", &sec, &e),
	    FM_EINVAL);
	/* one handler per context */
	assert_int_not_equal(fmi_zap_start(&z2, zctx, keys, names, 2, &e),
	    FM_OK);
	assert_non_null(strstr(e.msg, "one per context"));
	/* a client needs the server's key and its own name */
	FMT_FAIL(fmi_tran_dial_secure(&t, tc, "tcp://127.0.0.1:1", "a", &sec,
	    &e), FM_EINVAL);
	sec.server_public = b.public_z85;
	FMT_FAIL(fmi_tran_dial_secure(&t, tc, "tcp://127.0.0.1:1", NULL, &sec,
	    &e), FM_EINVAL);
	fmi_zap_stop(z);
	assert_false(fmi_zap_running(zctx));
	fmi_zap_stop(NULL);
	fmi_tran_ctx_free(tc);
	zmq_ctx_term(zctx);
}

/* fmi_zap_stop returns when the context was shut down under it. */
static void
test_zap_stop_after_shutdown(void **state)
{
	(void)state;
	void *zctx = zmq_ctx_new();
	fmi_zap *z;
	FMT_PASS(fmi_zap_start(&z, zctx, NULL, NULL, 0, NULL));
	zmq_ctx_shutdown(zctx);
	fmi_zap_stop(z);
	zmq_ctx_term(zctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keygen_round_trip,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_key_file_format, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_no_silent_overwrite,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_creates_private_dir,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_permission_refused,
		    dir_setup, dir_teardown),
		cmocka_unit_test(test_bad_z85),
		cmocka_unit_test_setup_teardown(test_bad_key_files, dir_setup,
		    dir_teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, dir_setup,
		    dir_teardown),
		cmocka_unit_test(test_zap_setup),
		cmocka_unit_test(test_zap_stop_after_shutdown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
