/* SPDX-License-Identifier: MIT */
/* cmd_keygen.c: `fedmesh keygen [--dir DIR] [--force] NAME...`. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "cli/cli.h"
#include "core/core.h"
#include "transports/security.h"

int fmi_cmd_keygen(int argc, char **argv);

const char fmi_keygen_usage[] =
    "usage: fedmesh keygen [--dir DIR] [--force] NAME...\n"
    "\n"
    "Makes a CURVE key pair for each node NAME and writes DIR/NAME.key\n"
    "(public and secret key, mode 0600: copy it to that node only) and\n"
    "DIR/NAME.pub (the public key, for the other nodes). DIR defaults to\n"
    "./keys and is created with mode 0700. Existing keys are never\n"
    "replaced unless --force is given; then every node listing the old\n"
    "public key needs the new one. Prints `NAME PUBLIC-KEY` per node.\n";

typedef struct keygen_opts {
	const char *dir;
	int force;
	char **names;
	int nnames;
} keygen_opts;

static int usage_error(const char *fmt, ...) FM_PRINTF(1, 2);

static int
usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fedmesh keygen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", fmi_keygen_usage);
	return 2;
}

/* -1: go on; else the exit status. Names stay in argv order. */
static int
parse(int argc, char **argv, keygen_opts *o)
{
	int opts = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (opts && fmi_cli_is_help(a)) {
			fputs(fmi_keygen_usage, stdout);
			return 0;
		} else if (opts && strcmp(a, "--dir") == 0) {
			if (i + 1 >= argc || argv[i + 1][0] == '\0') {
				return usage_error("--dir needs a directory");
			}
			o->dir = argv[++i];
		} else if (opts && strcmp(a, "--force") == 0) {
			o->force = 1;
		} else if (opts && strcmp(a, "--") == 0) {
			opts = 0;
		} else if (opts && a[0] == '-') {
			return usage_error("unknown option '%s'", a);
		} else {
			o->names[o->nnames++] = argv[i];
		}
	}
	if (o->nnames == 0) {
		return usage_error("give at least one node name");
	}
	return -1;
}

/* Every name valid and listed once; without --force, no key exists yet:
 * so either every pair is written or none. */
static int
check_names(const keygen_opts *o)
{
	fm_error e;
	for (int i = 0; i < o->nnames; i++) {
		if (fmi_key_name_check(o->names[i], &e) != FM_OK) {
			return usage_error("%s", e.msg);
		}
		for (int j = 0; j < i; j++) {
			if (strcmp(o->names[i], o->names[j]) == 0) {
				return usage_error("node '%s' is listed twice",
				    o->names[i]);
			}
		}
	}
	for (int i = 0; i < o->nnames && !o->force; i++) {
		char path[4096];
		struct stat st;
		for (int k = 0; k < 2; k++) {
			snprintf(path, sizeof path, "%s/%s.%s", o->dir,
			    o->names[i], k ? "pub" : "key");
			if (stat(path, &st) == 0) {
				fprintf(stderr, "fedmesh keygen: %s already exists; "
				    "nothing written (pass --force to replace "
				    "it, then give the nodes the new public "
				    "key)\n", path);
				return 1;
			}
		}
	}
	return -1;
}

static int
make_pair(const keygen_opts *o, const char *name)
{
	fmi_keypair kp;
	fm_error e;
	int rv = fmi_keygen(&kp, &e);
	if (rv == FM_OK) {
		rv = fmi_key_write(o->dir, name, &kp, o->force, &e);
	}
	if (rv == FM_OK) {
		printf("%s %s\n", name, kp.public_z85);
	} else {
		fprintf(stderr, "fedmesh keygen: %s: %s\n", name, e.msg);
	}
	sodium_memzero(&kp, sizeof kp);
	return rv;
}

static int
make_all(const keygen_opts *o)
{
	for (int i = 0; i < o->nnames; i++) {
		if (make_pair(o, o->names[i]) != FM_OK) {
			return 1;
		}
	}
	fprintf(stderr, "fedmesh keygen: wrote %d key pair%s to %s/; copy each "
	    "NAME.key to its node only, and the .pub files to the nodes that "
	    "talk to it\n", o->nnames, o->nnames == 1 ? "" : "s", o->dir);
	return 0;
}

int
fmi_cmd_keygen(int argc, char **argv)
{
	keygen_opts o = { "keys", 0, calloc((size_t)argc + 1, sizeof(char *)),
		0 };
	if (o.names == NULL) {
		fputs("fedmesh keygen: out of memory\n", stderr);
		return 1;
	}
	int rv = parse(argc, argv, &o);
	if (rv < 0) {
		rv = check_names(&o);
	}
	if (rv < 0) {
		rv = make_all(&o);
	}
	free(o.names);
	return rv;
}
