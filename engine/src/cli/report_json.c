/* SPDX-License-Identifier: MIT */
/*
 * report_json.c: a strict JSON parser for one object per line (RFC 8259),
 * enough for the rows `--metrics` writes and for whatever later rows add:
 * every value is parsed and checked, the top-level members are handed to
 * a callback, nested values as their raw text. No recursion beyond
 * FMI_JSON_MAX_DEPTH, no reads past the end, no fixed limits on lengths.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/report.h"

typedef struct jbuf {
	char *p;
	size_t len, cap;
} jbuf;

typedef struct jp {
	const unsigned char *s;
	size_t n, i;
	fmi_jerror *err;
	jbuf key, val; /* top-level keys; every other string and numbers */
	int oom;
} jp;

static int
jp_fail(jp *p, const char *what)
{
	size_t col = fmi_utf8_chars((const char *)p->s, p->i) + 1;
	if (p->err != NULL) {
		p->err->column = col;
		snprintf(p->err->msg, sizeof p->err->msg, "%s at column %zu%s",
		    what, col, p->i >= p->n ? " (the end of the line)" : "");
	}
	return FM_EPROTO;
}

static int
jb_add(jp *p, jbuf *b, const void *src, size_t n)
{
	if (b->cap - b->len <= n) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap - b->len <= n) {
			cap *= 2;
		}
		char *q = realloc(b->p, cap);
		if (q == NULL) {
			p->oom = 1;
			return FM_ENOMEM;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
	b->p[b->len] = '\0';
	return FM_OK;
}

static void
skip_ws(jp *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
	    p->s[p->i] == '\n' || p->s[p->i] == '\r')) {
		p->i++;
	}
}

static int
peek(const jp *p)
{
	return p->i < p->n ? p->s[p->i] : -1;
}

size_t
fmi_utf8_seq(const unsigned char *s, size_t n)
{
	if (n == 0) {
		return 0;
	}
	unsigned c = s[0];
	size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 :
	    c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
	if (len == 0 || len > n) {
		return 0;
	}
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xC0) != 0x80) {
			return 0;
		}
	}
	/* overlong 3- and 4-byte forms, surrogates, beyond U+10FFFF */
	if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) ||
	    (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F)) {
		return 0;
	}
	return len;
}

static size_t
utf8_put(unsigned long cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Four hex digits at s[i, i + 4), or -1. */
static long
hex4(const jp *p, size_t i)
{
	long v = 0;
	if (i > p->n || p->n - i < 4) {
		return -1;
	}
	for (size_t k = i; k < i + 4; k++) {
		int c = p->s[k];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
		    c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0) {
			return -1;
		}
		v = v * 16 + d;
	}
	return v;
}

/* \uXXXX (and its low surrogate) at p->i, which points at the 'u'. */
static int
parse_u_escape(jp *p, jbuf *b)
{
	long hi = hex4(p, p->i + 1);
	if (hi < 0) {
		return jp_fail(p, "invalid \\u escape (4 hex digits expected)");
	}
	unsigned long cp = (unsigned long)hi;
	p->i += 5;
	if (hi >= 0xDC00 && hi <= 0xDFFF) {
		p->i -= 6;
		return jp_fail(p, "unpaired low surrogate in a \\u escape");
	}
	if (hi >= 0xD800 && hi <= 0xDBFF) {
		long lo = p->n - p->i >= 6 && p->s[p->i] == '\\' &&
		    p->s[p->i + 1] == 'u' ? hex4(p, p->i + 2) : -1;
		if (lo < 0xDC00 || lo > 0xDFFF) {
			p->i -= 6;
			return jp_fail(p, "unpaired high surrogate in a \\u "
			    "escape");
		}
		cp = 0x10000 + (((unsigned long)hi - 0xD800) << 10) +
		    ((unsigned long)lo - 0xDC00);
		p->i += 6;
	}
	char o[4];
	return jb_add(p, b, o, utf8_put(cp, o));
}

/* A string at p->i (the opening quote), decoded into b. */
static int
parse_string(jp *p, jbuf *b)
{
	static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
	b->len = 0;
	if (jb_add(p, b, "", 0) != FM_OK) {
		return FM_ENOMEM;
	}
	p->i++;
	for (;;) {
		if (p->i >= p->n) {
			return jp_fail(p, "unterminated string");
		}
		unsigned c = p->s[p->i];
		if (c == '"') {
			p->i++;
			return FM_OK;
		}
		if (c < 0x20) {
			return jp_fail(p, "control character in a string "
			    "(escape it)");
		}
		int rv;
		if (c == '\\') {
			const char *e = p->i + 1 < p->n && p->s[p->i + 1] != 0 ?
			    strchr(esc_in, p->s[p->i + 1]) : NULL;
			p->i++;
			if (p->i < p->n && p->s[p->i] == 'u') {
				rv = parse_u_escape(p, b);
			} else if (e == NULL) {
				return jp_fail(p, "invalid escape in a string");
			} else {
				rv = jb_add(p, b, &esc_out[e - esc_in], 1);
				p->i++;
			}
		} else {
			size_t len = fmi_utf8_seq(p->s + p->i, p->n - p->i);
			if (len == 0) {
				return jp_fail(p, "invalid UTF-8 in a string");
			}
			rv = jb_add(p, b, p->s + p->i, len);
			p->i += len;
		}
		if (rv != FM_OK) {
			return rv;
		}
	}
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static size_t
skip_digits(jp *p)
{
	size_t start = p->i;
	while (p->i < p->n && is_digit(p->s[p->i])) {
		p->i++;
	}
	return p->i - start;
}

/* A number at p->i: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
parse_number(jp *p, double *out)
{
	size_t start = p->i;
	if (peek(p) == '-') {
		p->i++;
	}
	if (peek(p) == '0') {
		p->i++;
		if (is_digit(peek(p))) {
			return jp_fail(p, "invalid number (leading zero)");
		}
	} else if (skip_digits(p) == 0) {
		return jp_fail(p, "invalid number (a digit expected)");
	}
	if (peek(p) == '.') {
		p->i++;
		if (skip_digits(p) == 0) {
			return jp_fail(p, "invalid number (a digit expected "
			    "after '.')");
		}
	}
	if (peek(p) == 'e' || peek(p) == 'E') {
		p->i++;
		if (peek(p) == '+' || peek(p) == '-') {
			p->i++;
		}
		if (skip_digits(p) == 0) {
			return jp_fail(p, "invalid number (a digit expected "
			    "in the exponent)");
		}
	}
	/* strtod on a terminated copy: it must not read past the number */
	p->val.len = 0;
	if (jb_add(p, &p->val, p->s + start, p->i - start) != FM_OK) {
		return FM_ENOMEM;
	}
	*out = strtod(p->val.p, NULL);
	return FM_OK;
}

static int
parse_literal(jp *p, const char *word)
{
	size_t len = strlen(word);
	if (p->n - p->i < len || memcmp(p->s + p->i, word, len) != 0) {
		return jp_fail(p, "expected a value (a number, string, "
		    "true, false, null, array or object)");
	}
	p->i += len;
	return FM_OK;
}

typedef struct jval {
	fmi_jtype type;
	double num;
} jval;

static int parse_value(jp *p, int depth, jval *v);

/* An array or object at p->i: its opening bracket. */
static int
parse_container(jp *p, int depth, int object)
{
	int close = object ? '}' : ']';
	if (depth > FMI_JSON_MAX_DEPTH) {
		return jp_fail(p, "nesting deeper than 64 levels");
	}
	p->i++;
	skip_ws(p);
	if (peek(p) == close) {
		p->i++;
		return FM_OK;
	}
	for (;;) {
		jval v;
		int rv;
		skip_ws(p);
		if (object) {
			if (peek(p) != '"') {
				return jp_fail(p, "expected a string key");
			}
			if ((rv = parse_string(p, &p->val)) != FM_OK) {
				return rv;
			}
			skip_ws(p);
			if (peek(p) != ':') {
				return jp_fail(p, "expected ':'");
			}
			p->i++;
		}
		if ((rv = parse_value(p, depth + 1, &v)) != FM_OK) {
			return rv;
		}
		skip_ws(p);
		if (peek(p) == close) {
			p->i++;
			return FM_OK;
		}
		if (peek(p) != ',') {
			return jp_fail(p, object ? "expected ',' or '}'" :
			    "expected ',' or ']'");
		}
		p->i++;
	}
}

/* Any value at p->i (after whitespace); strings decode into p->val. */
static int
parse_value(jp *p, int depth, jval *v)
{
	skip_ws(p);
	v->num = 0;
	switch (peek(p)) {
	case '"':
		v->type = FMI_J_STRING;
		return parse_string(p, &p->val);
	case '{':
	case '[':
		v->type = peek(p) == '{' ? FMI_J_OBJECT : FMI_J_ARRAY;
		return parse_container(p, depth, peek(p) == '{');
	case 't':
		v->type = FMI_J_BOOL;
		v->num = 1;
		return parse_literal(p, "true");
	case 'f':
		v->type = FMI_J_BOOL;
		return parse_literal(p, "false");
	case 'n':
		v->type = FMI_J_NULL;
		return parse_literal(p, "null");
	default:
		if (peek(p) == '-' || is_digit(peek(p))) {
			v->type = FMI_J_NUMBER;
			return parse_number(p, &v->num);
		}
		return jp_fail(p, "expected a value (a number, string, true, "
		    "false, null, array or object)");
	}
}

/* One member of the top-level object, handed to fn. */
static int
parse_member(jp *p, fmi_jmember_fn fn, void *ud)
{
	int rv;
	if (peek(p) != '"') {
		return jp_fail(p, "expected a string key");
	}
	if ((rv = parse_string(p, &p->key)) != FM_OK) {
		return rv;
	}
	skip_ws(p);
	if (peek(p) != ':') {
		return jp_fail(p, "expected ':'");
	}
	p->i++;
	skip_ws(p);
	size_t start = p->i;
	jval v;
	if ((rv = parse_value(p, 1, &v)) != FM_OK) {
		return rv;
	}
	fmi_jmember m = { p->key.p, p->key.len, v.type, v.num, NULL, 0 };
	if (v.type == FMI_J_STRING) {
		m.str = p->val.p;
		m.str_len = p->val.len;
	} else if (v.type == FMI_J_ARRAY || v.type == FMI_J_OBJECT) {
		m.str = (const char *)p->s + start;
		m.str_len = p->i - start;
	}
	return fn(ud, &m);
}

static int
parse_object(jp *p, fmi_jmember_fn fn, void *ud)
{
	skip_ws(p);
	if (peek(p) != '{') {
		return jp_fail(p, "expected '{' (each line must be one JSON "
		    "object)");
	}
	p->i++;
	skip_ws(p);
	if (peek(p) == '}') {
		p->i++;
	} else {
		for (;;) {
			int rv = parse_member(p, fn, ud);
			if (rv != FM_OK) {
				return rv;
			}
			skip_ws(p);
			if (peek(p) == '}') {
				p->i++;
				break;
			}
			if (peek(p) != ',') {
				return jp_fail(p, "expected ',' or '}'");
			}
			p->i++;
			skip_ws(p);
		}
	}
	skip_ws(p);
	return p->i < p->n ? jp_fail(p, "unexpected text after the object") :
	    FM_OK;
}

int
fmi_json_object(const char *text, size_t len, fmi_jmember_fn fn, void *ud,
    fmi_jerror *err)
{
	jp p = { (const unsigned char *)text, len, 0, err, { NULL, 0, 0 },
		{ NULL, 0, 0 }, 0 };
	if (err != NULL) {
		err->column = 0;
		err->msg[0] = '\0';
	}
	int rv = parse_object(&p, fn, ud);
	free(p.key.p);
	free(p.val.p);
	return p.oom ? FM_ENOMEM : rv;
}

int
fmi_json_blank(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' &&
		    text[i] != '\r') {
			return 0;
		}
	}
	return 1;
}
