/* SPDX-License-Identifier: MIT */
/* params.c: a component's parameters: resolving what a user gives
 * against the declarations (names, types, ranges, defaults). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "plugin/plugin_int.h"

/* Appends to buf[size] at *at, never past the end. */
static void FM_PRINTF(4, 5)
sappend(char *buf, size_t size, size_t *at, const char *fmt, ...)
{
	va_list ap;
	if (*at + 1 >= size) {
		return;
	}
	va_start(ap, fmt);
	int n = vsnprintf(buf + *at, size - *at, fmt, ap);
	va_end(ap);
	if (n > 0) {
		*at = FMI_MIN(*at + (size_t)n, size - 1);
	}
}

size_t
fmi_component_nparams(const fmi_component *c)
{
	const fm_param_desc *p = c != NULL ? c->desc->params : NULL;
	size_t n = 0;
	while (p != NULL && p[n].name != NULL) {
		n++;
	}
	return n;
}

/* "lr (real in [0, 10], default 0.1), flag (bool, default false)". */
static void
params_list(const fm_param_desc *p, size_t n, char *buf, size_t size)
{
	size_t at = 0;
	buf[0] = '\0';
	if (n == 0) {
		sappend(buf, size, &at, "none");
	}
	for (size_t i = 0; i < n; i++) {
		const char *sep = i > 0 ? ", " : "";
		if (p[i].type == FM_PARAM_STRING) {
			sappend(buf, size, &at, "%s%s (string, default \"%s\")",
			    sep, p[i].name, p[i].def_str ? p[i].def_str : "");
		} else if (p[i].type == FM_PARAM_BOOL) {
			sappend(buf, size, &at, "%s%s (bool, default %s)", sep,
			    p[i].name, p[i].def != 0 ? "true" : "false");
		} else {
			sappend(buf, size, &at, "%s%s (%s in [%g, %g], default "
			    "%g)", sep, p[i].name, p[i].type == FM_PARAM_INT ?
			    "int" : "real", p[i].min, p[i].max, p[i].def);
		}
	}
}

static int FM_PRINTF(3, 4)
params_fail(const fmi_component *c, fm_error *err, const char *fmt, ...)
{
	char why[200], list[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	params_list(c->desc->params, fmi_component_nparams(c), list,
	    sizeof list);
	return fm_error_set(err, FM_EINVAL, "%s '%s': %s; valid parameters: "
	    "%s", fmi_kind_name(c->kind), c->desc->name, why, list);
}

static size_t
param_index(const fm_param_desc *p, size_t n, const char *name)
{
	size_t i = 0;
	while (i < n && strcmp(p[i].name, name) != 0) {
		i++;
	}
	return i;
}

static int
param_unknown(const fmi_component *c, size_t np, const char *name,
    fm_error *err)
{
	const char *cand[FMI_MAX_PARAMS + 1];
	for (size_t i = 0; i < np; i++) {
		cand[i] = c->desc->params[i].name;
	}
	cand[np] = NULL;
	const char *near = fmi_closest(name, cand);
	if (near != NULL) {
		return params_fail(c, err, "no parameter '%s' (did you mean "
		    "'%s'?)", name, near);
	}
	return params_fail(c, err, "no parameter '%s'", name);
}

/* Type and range of one user value against its declaration. */
static int
param_check(const fmi_component *c, const fm_param_desc *d,
    const fmi_param_in *in, fm_error *err)
{
	static const char *const tn[] = { "?", "an integer", "a real number",
		"a boolean", "a string" };
	if ((d->type == FM_PARAM_STRING) != (in->is_str != 0)) {
		return params_fail(c, err, "parameter '%s' must be %s, got %s",
		    d->name, tn[d->type], in->is_str ? "a string" : "a number");
	}
	if (d->type == FM_PARAM_STRING) {
		return in->str != NULL ? FM_OK : params_fail(c, err,
		    "parameter '%s' is a NULL string", d->name);
	}
	if (!isfinite(in->num)) {
		return params_fail(c, err, "parameter '%s' must be finite",
		    d->name);
	}
	if (d->type == FM_PARAM_INT && in->num != floor(in->num)) {
		return params_fail(c, err, "parameter '%s' must be an integer, "
		    "got %g", d->name, in->num);
	}
	if (d->type == FM_PARAM_BOOL) {
		return in->num == 0 || in->num == 1 ? FM_OK : params_fail(c,
		    err, "parameter '%s' must be a boolean (true/false or "
		    "0/1), got %g", d->name, in->num);
	}
	if (in->num < d->min || in->num > d->max) {
		return params_fail(c, err, "parameter '%s' = %g is out of range "
		    "[%g, %g]", d->name, in->num, d->min, d->max);
	}
	return FM_OK;
}

/* Checks every user value; out is untouched. */
static int
params_check_all(const fmi_component *c, size_t np, const fmi_param_in *in,
    size_t nin, fm_error *err)
{
	const fm_param_desc *d = c->desc->params;
	for (size_t i = 0; i < nin; i++) {
		if (in[i].name == NULL) {
			return params_fail(c, err, "a parameter without a name");
		}
		size_t k = param_index(d, np, in[i].name);
		if (k == np) {
			return param_unknown(c, np, in[i].name, err);
		}
		for (size_t j = 0; j < i; j++) {
			if (in[j].name && strcmp(in[j].name, in[i].name) == 0) {
				return params_fail(c, err, "parameter '%s' given "
				    "twice", in[i].name);
			}
		}
		int rv = param_check(c, &d[k], &in[i], err);
		if (rv != FM_OK) {
			return rv;
		}
	}
	return FM_OK;
}

int
fmi_params_resolve(const fmi_component *c, const fmi_param_in *in,
    size_t nin, fm_value *out, fm_error *err)
{
	if (c == NULL || (nin > 0 && in == NULL)) {
		return fm_error_set(err, FM_EINVAL, "parameters: bad arguments");
	}
	size_t np = fmi_component_nparams(c);
	const fm_param_desc *d = c->desc->params;
	int rv = params_check_all(c, np, in, nin, err);
	if (rv != FM_OK) {
		return rv;
	}
	for (size_t k = 0; k < np; k++) {
		out[k].num = d[k].def;
		out[k].str = d[k].type == FM_PARAM_STRING ? d[k].def_str : NULL;
	}
	for (size_t i = 0; i < nin; i++) {
		size_t k = param_index(d, np, in[i].name);
		out[k].num = in[i].is_str ? 0 : in[i].num;
		out[k].str = in[i].is_str ? in[i].str : NULL;
	}
	return FM_OK;
}
