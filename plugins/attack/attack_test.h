/* SPDX-License-Identifier: MIT */
/*
 * attack_test.h: what the attack conformance tests share: loading a built
 * plugin through the registry, opening instances with fmi_atk_open,
 * capturing the log, and the refusal checks. Test-only; include after
 * fm_test.h.
 */
#ifndef FM_ATTACK_TEST_H
#define FM_ATTACK_TEST_H

#include <limits.h>

#include "core/core.h"
#include "plugin/registry.h"

#include "fm_plugin_test.h"

#include "../ptest.h"

/* Opens c with the given parameters (NULL/0: defaults) on a server. */
static inline fmi_atk *
at_open(const fmi_component *c, const fmi_param_in *in, size_t nin,
    size_t dim)
{
	fm_value v[8];
	fm_error e;
	fmi_atk *t = NULL;
	FMT_PASS(fmi_params_resolve(c, in, nin, v, &e));
	if (fmi_atk_open(&t, c,
	    &(fmi_open_args){ .params = v, .dim = dim, .role = FM_ROLE_SERVER,
	    .node_id = FM_NODE_SERVER, .seed = 42 },
	    &e) != FM_OK) {
		print_error("%s\n", e.msg);
		fail();
	}
	return t;
}

/* Opens c with one numeric parameter. */
static inline fmi_atk *
at_open1(const fmi_component *c, const char *name, double v, size_t dim)
{
	const fmi_param_in in = { name, 0, v, NULL };
	return at_open(c, &in, name != NULL ? 1 : 0, dim);
}

/* Captures (and so silences) the log while a test provokes refusals. */
static inline void
at_quiet(fmt_logcap *cap)
{
	cap->n = 0;
	fm_log_set_sink(fmt_logcap_sink, cap);
}

static inline void
at_loud(void)
{
	fm_log_set_sink(NULL, NULL);
}

/* The captured line with this id contains what. */
static inline void
at_logged(const fmt_logcap *cap, const char *id, const char *what)
{
	for (int i = 0; i < cap->n; i++) {
		if (strcmp(cap->ids[i], id) == 0 &&
		    strstr(cap->lines[i], what) != NULL) {
			return;
		}
	}
	print_error("no %s log line with \"%s\"; got %d lines%s%s\n", id,
	    what, cap->n, cap->n > 0 ? ", first: " : "",
	    cap->n > 0 ? cap->lines[0] : "");
	fail();
}

/* The resolver refuses one user value with a message containing what. */
static inline void
at_resolve_refused(const fmi_component *c, const char *name, double v,
    const char *what)
{
	const fmi_param_in in = { name, 0, v, NULL };
	fm_value out[8];
	fm_error e;
	FMT_FAIL(fmi_params_resolve(c, &in, 1, out, &e), FM_EINVAL);
	if (strstr(e.msg, what) == NULL) {
		print_error("message: %s\n", e.msg);
		fail();
	}
}

/* Raw values that get past no resolver: t_init refuses and logs what. */
static inline void
at_init_refused(const fmi_component *c, const fm_value *v, const char *id,
    const char *what)
{
	fmi_atk *t = NULL;
	fm_error e;
	fmt_logcap cap;
	at_quiet(&cap);
	int rv = fmi_atk_open(&t, c,
	    &(fmi_open_args){ .params = v, .dim = 4, .role = FM_ROLE_SERVER,
	    .node_id = FM_NODE_SERVER, .seed = 1 },
	    &e);
	at_loud();
	FMT_FAIL(rv, FM_EINVAL);
	assert_null(t);
	assert_non_null(strstr(e.msg, "init failed"));
	at_logged(&cap, id, what);
}

/* fini is safe on never-initialised state and twice after a failed
 * init (no parameters at all). */
static inline void
at_fini_safe(const fmi_component *c, const char *id)
{
	const fm_attack_ops *ops = c->ops;
	void *st = calloc(1, ops->base.state_size);
	assert_non_null(st);
	ops->base.fini(st);
	fm_instance inst = { fmi_host_api(), NULL, 7, FM_ROLE_CLIENT, 1,
	    (uint32_t)sizeof(fm_instance), 4, 1, NULL, 0, 0 };
	fmt_logcap cap;
	at_quiet(&cap);
	FMT_FAIL(ops->base.init(st, &inst), FM_EINVAL);
	at_loud();
	assert_true(fmt_logcap_find(&cap, id) >= 0);
	ops->base.fini(st);
	ops->base.fini(st);
	free(st);
}

#endif /* FM_ATTACK_TEST_H */
