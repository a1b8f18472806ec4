/* SPDX-License-Identifier: MIT */
/* abi_layout.c: the plugin ABI's layout, compared with abi_layout.exp. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fedmesh/fedmesh.h"
#include "fedmesh/plugin.h"

/*
 * Usage: abi_layout            prints the layout
 *        abi_layout FILE       compares it with FILE (exit 1 on change,
 *                              77 = skipped on a platform FILE is not for)
 * A change here is an ABI change: append-only changes bump
 * FM_PLUGIN_ABI_MINOR, anything else FM_PLUGIN_ABI_MAJOR; then regenerate
 * the golden file with `abi_layout > tests/abi/abi_layout.exp`.
 */

/* The frozen descriptor prefix: readable by every host, forever. */
_Static_assert(offsetof(fm_plugin_info, magic) == 0, "frozen: magic");
_Static_assert(offsetof(fm_plugin_info, abi_major) == 4, "frozen: major");
_Static_assert(offsetof(fm_plugin_info, abi_minor) == 6, "frozen: minor");
_Static_assert(offsetof(fm_plugin_info, info_size) == 8, "frozen: size");
_Static_assert(sizeof(((fm_plugin_info *)0)->magic) == 4, "magic: u32");
_Static_assert(sizeof(((fm_plugin_info *)0)->abi_major) == 2, "major: u16");
_Static_assert(sizeof(((fm_plugin_info *)0)->abi_minor) == 2, "minor: u16");
_Static_assert(sizeof(((fm_plugin_info *)0)->info_size) == 4, "size: u32");
_Static_assert(offsetof(fm_plugin_info, build_sig) == 12, "build_sig");
_Static_assert(FM_PLUGIN_MAGIC == 0x4c504d46u, "magic is 'FMPL'");
/* Every ops table starts with fm_ops (its size, then its kind), and the
 * host table with its size and version. */
_Static_assert(offsetof(fm_ops, struct_size) == 0, "ops size");
_Static_assert(offsetof(fm_ops, kind) == 4, "ops kind");
_Static_assert(offsetof(fm_aggregator_ops, base) == 0, "ops base");
_Static_assert(offsetof(fm_local_ops, base) == 0, "ops base");
_Static_assert(offsetof(fm_defence_ops, base) == 0, "ops base");
_Static_assert(offsetof(fm_attack_ops, base) == 0, "ops base");
_Static_assert(offsetof(fm_privacy_ops, base) == 0, "ops base");
_Static_assert(offsetof(fm_compressor_ops, base) == 0, "ops base");
_Static_assert(offsetof(fm_consensus_ops, base) == 0, "ops base");
/* Every struct stepped in an array or grown by appending starts with
 * its size. */
_Static_assert(offsetof(fm_component_desc, struct_size) == 0, "comp size");
_Static_assert(offsetof(fm_round, struct_size) == 0, "round size");
_Static_assert(offsetof(fm_update, struct_size) == 0, "update size");
_Static_assert(offsetof(fm_message, struct_size) == 0, "message size");
_Static_assert(offsetof(fm_rows, struct_size) == 0, "rows size");
_Static_assert(offsetof(fm_peer_model, struct_size) == 0, "peer size");
_Static_assert(offsetof(fm_mix, struct_size) == 0, "mix size");
_Static_assert(offsetof(fm_local_task, struct_size) == 0, "task size");
_Static_assert(offsetof(fm_local_result, struct_size) == 0, "result size");
_Static_assert(offsetof(fm_private_update, struct_size) == 0, "pu size");
_Static_assert(offsetof(fm_codec, struct_size) == 0, "codec size");
_Static_assert(offsetof(fm_limits, struct_size) == 0, "limits size");
_Static_assert(offsetof(fm_host_api, struct_size) == 0, "host size");
_Static_assert(offsetof(fm_host_api, abi_major) == 4, "host major");
_Static_assert(offsetof(fm_host_api, abi_minor) == 6, "host minor");
/* fm_instance keeps 1.x's layout (1.x plugins run unchanged): struct_size
 * sits where 1.x had reserved0. */
_Static_assert(offsetof(fm_instance, struct_size) == 28, "instance size");
_Static_assert(offsetof(fm_instance, dim) == 32, "instance dim");
/* The 1.x host table is a prefix of 2.0's. */
_Static_assert(offsetof(fm_host_api, set_error) <
    offsetof(fm_host_api, parallel_for), "host: appended");

static char out[65536];
static size_t used;

static void
line(const char *s, size_t a, size_t b)
{
	int n = snprintf(out + used, sizeof out - used, "%s %zu %zu\n", s, a, b);
	if (n > 0 && (size_t)n < sizeof out - used) {
		used += (size_t)n;
	}
}

static void
val(const char *s, long long v)
{
	int n = snprintf(out + used, sizeof out - used, "%s = %lld\n", s, v);
	if (n > 0 && (size_t)n < sizeof out - used) {
		used += (size_t)n;
	}
}

/* "T size align" and "T.field offset size". */
#define S(T) line(#T, sizeof(T), _Alignof(T))
#define F(T, f) line(#T "." #f, offsetof(T, f), sizeof(((T *)0)->f))
#define V(c) val(#c, (long long)(c))

static void
print_descriptor(void)
{
	S(fm_param_desc);
	F(fm_param_desc, name);
	F(fm_param_desc, type);
	F(fm_param_desc, def);
	F(fm_param_desc, min);
	F(fm_param_desc, max);
	F(fm_param_desc, def_str);
	F(fm_param_desc, doc);
	S(fm_value);
	F(fm_value, num);
	F(fm_value, str);
	S(fm_component_desc);
	F(fm_component_desc, struct_size);
	F(fm_component_desc, kind);
	F(fm_component_desc, name);
	F(fm_component_desc, description);
	F(fm_component_desc, params);
	F(fm_component_desc, param_size);
	F(fm_component_desc, flags);
	F(fm_component_desc, ops);
	F(fm_component_desc, ops_size);
	F(fm_component_desc, reserved0);
	S(fm_plugin_info);
	F(fm_plugin_info, magic);
	F(fm_plugin_info, abi_major);
	F(fm_plugin_info, abi_minor);
	F(fm_plugin_info, info_size);
	F(fm_plugin_info, build_sig);
	F(fm_plugin_info, name);
	F(fm_plugin_info, version);
	F(fm_plugin_info, license);
	F(fm_plugin_info, description);
	F(fm_plugin_info, components);
	F(fm_plugin_info, ncomponents);
	F(fm_plugin_info, component_size);
	F(fm_plugin_info, init);
	F(fm_plugin_info, reserved);
}

static void
print_instance(void)
{
	S(fm_rng);
	F(fm_rng, s);
	S(fm_instance);
	F(fm_instance, host);
	F(fm_instance, params);
	F(fm_instance, nparams);
	F(fm_instance, role);
	F(fm_instance, node_id);
	F(fm_instance, struct_size);
	F(fm_instance, dim);
	F(fm_instance, seed);
	F(fm_instance, host_data);
	F(fm_instance, max_updates);
	F(fm_instance, flags);
	S(fm_round);
	F(fm_round, struct_size);
	F(fm_round, round);
	F(fm_round, nclients);
	F(fm_round, population);
	F(fm_round, clients);
	F(fm_round, global);
	F(fm_round, dim);
	F(fm_round, lr_scale);
	F(fm_round, expected_clients);
	S(fm_update);
	F(fm_update, struct_size);
	F(fm_update, client);
	F(fm_update, round);
	F(fm_update, reserved0);
	F(fm_update, delta);
	F(fm_update, dim);
	F(fm_update, num_examples);
	F(fm_update, loss);
	F(fm_update, steps);
	S(fm_message);
	F(fm_message, struct_size);
	F(fm_message, from);
	F(fm_message, round);
	F(fm_message, reserved0);
	F(fm_message, data);
	F(fm_message, len);
}

static void
print_ops(void)
{
	S(fm_ops);
	F(fm_ops, struct_size);
	F(fm_ops, kind);
	F(fm_ops, state_size);
	F(fm_ops, init);
	F(fm_ops, fini);
	F(fm_ops, on_message);
	F(fm_ops, on_timer);
	F(fm_ops, save);
	F(fm_ops, load);
	S(fm_aggregator_ops);
	F(fm_aggregator_ops, base);
	F(fm_aggregator_ops, begin);
	F(fm_aggregator_ops, accept);
	F(fm_aggregator_ops, finish);
	S(fm_local_task);
	F(fm_local_task, struct_size);
	F(fm_local_task, round);
	F(fm_local_task, global);
	F(fm_local_task, dim);
	F(fm_local_task, num_examples);
	F(fm_local_task, epochs);
	F(fm_local_task, batch);
	F(fm_local_task, lr);
	S(fm_local_result);
	F(fm_local_result, struct_size);
	F(fm_local_result, round);
	F(fm_local_result, global);
	F(fm_local_result, params);
	F(fm_local_result, dim);
	F(fm_local_result, steps);
	F(fm_local_result, num_examples);
	F(fm_local_result, lr);
	F(fm_local_result, loss);
	S(fm_local_ops);
	F(fm_local_ops, base);
	F(fm_local_ops, begin);
	F(fm_local_ops, grad);
	F(fm_local_ops, step);
	F(fm_local_ops, end);
	F(fm_local_ops, round_begin);
	F(fm_local_ops, accepted);
	F(fm_local_ops, round_end);
	S(fm_rows);
	F(fm_rows, struct_size);
	F(fm_rows, round);
	F(fm_rows, n);
	F(fm_rows, nadv);
	F(fm_rows, dim);
	F(fm_rows, deltas);
	F(fm_rows, stride);
	F(fm_rows, updates);
	F(fm_rows, global);
	F(fm_rows, server_delta);
	F(fm_rows, adversarial);
	F(fm_rows, seed);
	F(fm_rows, keep);
	F(fm_rows, keep_examples);
	F(fm_rows, nkeep);
	F(fm_rows, reserved0);
	S(fm_defence_ops);
	F(fm_defence_ops, base);
	F(fm_defence_ops, apply);
	S(fm_attack_data);
	F(fm_attack_data, struct_size);
	F(fm_attack_data, purpose);
	F(fm_attack_data, x);
	F(fm_attack_data, y);
	F(fm_attack_data, n);
	F(fm_attack_data, dim);
	F(fm_attack_data, nclasses);
	F(fm_attack_data, client);
	F(fm_attack_data, round);
	F(fm_attack_data, width);
	F(fm_attack_data, height);
	F(fm_attack_data, seed);
	F(fm_attack_data, nkeep);
	F(fm_attack_data, defined);
	F(fm_attack_data, reserved0);
	S(fm_attack_ops);
	F(fm_attack_ops, base);
	F(fm_attack_ops, poison_data);
	F(fm_attack_ops, poison_updates);
	S(fm_private_update);
	F(fm_private_update, struct_size);
	F(fm_private_update, round);
	F(fm_private_update, client);
	F(fm_private_update, reserved0);
	F(fm_private_update, delta);
	F(fm_private_update, dim);
	F(fm_private_update, num_examples);
	F(fm_private_update, seed);
	S(fm_privacy_ops);
	F(fm_privacy_ops, base);
	F(fm_privacy_ops, begin);
	F(fm_privacy_ops, client);
	F(fm_privacy_ops, server);
	S(fm_codec);
	F(fm_codec, struct_size);
	F(fm_codec, round);
	F(fm_codec, client);
	F(fm_codec, reserved0);
	F(fm_codec, x);
	F(fm_codec, dim);
	F(fm_codec, buf);
	F(fm_codec, cap);
	F(fm_codec, len);
	F(fm_codec, seed);
	S(fm_compressor_ops);
	F(fm_compressor_ops, base);
	F(fm_compressor_ops, bound);
	F(fm_compressor_ops, encode);
	F(fm_compressor_ops, decode);
	S(fm_peer_model);
	F(fm_peer_model, struct_size);
	F(fm_peer_model, peer);
	F(fm_peer_model, out_degree);
	F(fm_peer_model, reserved0);
	F(fm_peer_model, params);
	F(fm_peer_model, weight);
	F(fm_peer_model, mass);
	F(fm_peer_model, num_examples);
	S(fm_mix);
	F(fm_mix, struct_size);
	F(fm_mix, round);
	F(fm_mix, self);
	F(fm_mix, in_degree);
	F(fm_mix, out_degree);
	F(fm_mix, nneighbours);
	F(fm_mix, own);
	F(fm_mix, neighbours);
	F(fm_mix, out_sent);
	F(fm_mix, nlate);
	F(fm_mix, late);
	S(fm_consensus_ops);
	F(fm_consensus_ops, base);
	F(fm_consensus_ops, outgoing);
	F(fm_consensus_ops, mix);
}

static void
print_host(void)
{
	S(fm_limits);
	F(fm_limits, struct_size);
	F(fm_limits, threads);
	F(fm_limits, memory);
	F(fm_limits, max_message);
	F(fm_limits, reserved0);
	S(fm_host_api);
	F(fm_host_api, struct_size);
	F(fm_host_api, abi_major);
	F(fm_host_api, abi_minor);
	F(fm_host_api, alloc);
	F(fm_host_api, calloc);
	F(fm_host_api, free);
	F(fm_host_api, log);
	F(fm_host_api, strerror);
	F(fm_host_api, rng_seed);
	F(fm_host_api, rng_u64);
	F(fm_host_api, rng_uniform);
	F(fm_host_api, rng_normal);
	F(fm_host_api, random_bytes);
	F(fm_host_api, axpy);
	F(fm_host_api, scal);
	F(fm_host_api, dot);
	F(fm_host_api, nrm2);
	F(fm_host_api, gemm);
	F(fm_host_api, register_component);
	F(fm_host_api, send);
	F(fm_host_api, timer);
	F(fm_host_api, metric);
	F(fm_host_api, client_state);
	F(fm_host_api, set_error);
	F(fm_host_api, parallel_for);
	F(fm_host_api, limits);
	F(fm_host_api, gauss_noise);
}

/* Numbers that cross the ABI: permanent. */
static void
print_values(void)
{
	V(FM_PLUGIN_MAGIC);
	V(FM_PLUGIN_ABI_MAJOR);
	V(FM_INST_ROOT_DATA);
	V(FM_PLUGIN_ABI_MINOR);
	V(FM_KIND_AGGREGATOR);
	V(FM_KIND_DEFENCE);
	V(FM_KIND_PRIVACY);
	V(FM_KIND_CONSENSUS);
	V(FM_KIND_COMPRESSOR);
	V(FM_KIND_ATTACK);
	V(FM_KIND_LOCAL);
	V(FM_PRIVACY_CLIENT);
	V(FM_PRIVACY_SERVER);
	V(FM_PRIVACY_OPAQUE);
	V(FM_COMP_STATELESS);
	V(FM_ATTACK_TRAIN);
	V(FM_ATTACK_EVAL);
	V(FM_ROLE_SERVER);
	V(FM_ROLE_CLIENT);
	V(FM_ROLE_EDGE);
	V(FM_ROLE_PEER);
	V(FM_NODE_SERVER);
	V(FM_PARAM_INT);
	V(FM_PARAM_REAL);
	V(FM_PARAM_BOOL);
	V(FM_PARAM_STRING);
	V(FM_OK);
	V(FM_ENOMEM);
	V(FM_EINVAL);
	V(FM_ENOTSUP);
	V(FM_ENOENT);
	V(FM_EEXIST);
	V(FM_ESTATE);
	V(FM_ETIMEDOUT);
	V(FM_ECLOSED);
	V(FM_EPROTO);
	V(FM_EVERSION);
	V(FM_ECRYPTO);
	V(FM_EPLUGIN);
	V(FM_ESCRIPT);
	V(FM_EBUSY);
	V(FM_EIO);
	V(FM_ERANGE);
	V(FM_EINTERNAL);
	V(FM_ESYSERR);
	V(FM_ETRANERR);
	V(FM_LOG_ERR);
	V(FM_LOG_WARN);
	V(FM_LOG_INFO);
	V(FM_LOG_DEBUG);
}

/* Compares out with the golden file, line by line. */
static int
compare(const char *path)
{
	static char exp[16384];
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "abi_layout: cannot open %s\n", path);
		return 1;
	}
	size_t n = fread(exp, 1, sizeof exp - 1, f);
	fclose(f);
	exp[n] = '\0';
	const char *a = out, *b = exp;
	for (int ln = 1; *a != '\0' || *b != '\0'; ln++) {
		size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
		if (la != lb || memcmp(a, b, la) != 0) {
			fprintf(stderr, "abi_layout: line %d differs\n  got:  "
			    "%.*s\n  want: %.*s\nThe plugin ABI changed: bump "
			    "FM_PLUGIN_ABI_MINOR (fields appended) or "
			    "FM_PLUGIN_ABI_MAJOR (anything else) in plugin.h, "
			    "then regenerate %s.\n", ln, (int)la, a, (int)lb, b,
			    path);
			return 1;
		}
		a += la + (a[la] != '\0');
		b += lb + (b[lb] != '\0');
	}
	printf("abi_layout: %s matches\n", path);
	return 0;
}

int
main(int argc, char **argv)
{
	used = (size_t)snprintf(out, sizeof out, "# fedmesh plugin ABI layout "
	    "(LP64): name offset size | type size align | NAME = value\n");
	print_descriptor();
	print_instance();
	print_ops();
	print_host();
	print_values();
	if (argc < 2) {
		fputs(out, stdout);
		return 0;
	}
	if (sizeof(void *) != 8 || sizeof(size_t) != 8 || sizeof(long) != 8) {
		printf("abi_layout: golden file is for LP64; skipped\n");
		return 77;
	}
	return compare(argv[1]);
}
