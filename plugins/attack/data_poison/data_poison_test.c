/* SPDX-License-Identifier: MIT */
/* data_poison_test.c: conformance of the built-in data_poison plugin
 * (label_flip, backdoor), loaded as a .so, against hand-checked results. */
#define _DEFAULT_SOURCE /* PATH_MAX */
#include "fm_test.h"

#include "../attack_test.h"

#define LOG_ID "FM-DATA-POISON"
#define W 10
#define H 10
#define DIM (W * H)
#define NMAX 40
#define VMAX 0.75f /* the largest feature value of every test set */

typedef struct fixture {
	fmi_registry *reg;
	const fmi_component *flip, *bd;
} fixture;

/* A data set and its original copy. */
typedef struct set {
	float x[NMAX * DIM], x0[NMAX * DIM];
	int32_t y[NMAX], y0[NMAX];
	fm_attack_data d;
} set;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (f == NULL || fmi_registry_new(&f->reg) != FM_OK ||
	    fmt_plugin_load(f->reg, "data_poison.so") != FM_OK) {
		return -1;
	}
	f->flip = fmi_registry_find(f->reg, FM_KIND_ATTACK, "label_flip");
	f->bd = fmi_registry_find(f->reg, FM_KIND_ATTACK, "backdoor");
	*state = f;
	return f->flip && f->bd ? 0 : -1;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	fmi_registry_free(f->reg);
	free(f);
	return 0;
}

/*
 * n examples of DIM features in [0, 0.5), the largest (VMAX) at pixel 0 of
 * example 0, labels from lab (or 1 + i % 9: never class 0); an image
 * shape of w x h and the given seed.
 */
static set *
set_new(size_t n, const int32_t *lab, uint32_t purpose, uint32_t w,
    uint32_t h, uint64_t seed)
{
	const fm_host_api *host = fmi_host_api();
	set *s = calloc(1, sizeof *s);
	fm_rng rng;
	assert_non_null(s);
	host->rng_seed(&rng, 99, 0);
	for (size_t i = 0; i < n * DIM; i++) {
		s->x[i] = (float)(0.5 * host->rng_uniform(&rng));
	}
	s->x[0] = VMAX;
	for (size_t i = 0; i < n; i++) {
		s->y[i] = lab != NULL ? lab[i] : 1 + (int32_t)(i % 9);
	}
	memcpy(s->x0, s->x, sizeof s->x);
	memcpy(s->y0, s->y, sizeof s->y);
	fm_attack_data d = { sizeof d, purpose, s->x, s->y, n, DIM, 10, 3, 2,
		w, h, seed, n, 0, 0 };
	s->d = d;
	return s;
}

static int
poison(const fmi_component *c, const fmi_param_in *in, size_t nin, set *s)
{
	fmi_atk *t = at_open(c, in, nin, 7);
	int rv = fmi_atk_poison_data(t, &s->d);
	fmi_atk_close(t);
	return rv;
}

static int
in_trigger(size_t px, uint32_t size)
{
	size_t r = px / W, c = px % W;
	return r >= H - 2 - size && r < H - 2 && c >= W - 2 - size &&
	    c < W - 2;
}

/* Image k of s is image i of the original with exactly the size x size
 * trigger (VMAX) stamped, or untouched when !stamped. */
static void
check_image(const set *s, size_t k, size_t i, uint32_t size, int stamped)
{
	const float *img = s->x + k * DIM, *o = s->x0 + i * DIM;
	for (size_t px = 0; px < DIM; px++) {
		float want = stamped && in_trigger(px, size) ? VMAX : o[px];
		if (img[px] != want) {
			print_error("image %zu (was %zu) pixel %zu: %g, want "
			    "%g\n", k, i, px, (double)img[px], (double)want);
			fail();
		}
	}
}

/* Training poisoning: which examples were stamped (label changed to 0);
 * each is exactly the original plus the trigger, the others untouched. */
static size_t
check_train(const set *s, uint32_t size, uint8_t *stamped)
{
	size_t k = 0;
	for (size_t i = 0; i < s->d.n; i++) {
		stamped[i] = s->y[i] != s->y0[i];
		assert_int_equal(s->y[i], stamped[i] ? 0 : s->y0[i]);
		check_image(s, i, i, size, stamped[i]);
		k += stamped[i];
	}
	return k;
}

static void
check_param(const fmi_component *c, size_t i, const char *name,
    uint32_t type, double def)
{
	const fm_param_desc *p = &c->desc->params[i];
	assert_string_equal(p->name, name);
	assert_int_equal(p->type, type);
	assert_true(p->def == def);
}

static void
test_abi(void **state)
{
	const fixture *f = *state;
	const fm_plugin_info *in = f->flip->plugin;
	assert_int_equal(in->magic, FM_PLUGIN_MAGIC);
	assert_int_equal(in->abi_major, FM_PLUGIN_ABI_MAJOR);
	assert_string_equal(in->name, "data_poison");
	assert_int_equal(in->ncomponents, 2);
	assert_true(f->bd->plugin == in);
	const fmi_component *c[2] = { f->flip, f->bd };
	for (int i = 0; i < 2; i++) {
		const fm_attack_ops *ops = c[i]->ops;
		assert_int_equal(ops->base.kind, FM_KIND_ATTACK);
		assert_ptr_equal(c[i]->ops, c[i]->desc->ops); /* the table is the descriptor's */
		assert_non_null(ops->poison_data);
		assert_null(ops->poison_updates);
	}
	assert_int_equal(fmi_component_nparams(f->flip), 0);
	assert_int_equal(fmi_component_nparams(f->bd), 3);
	check_param(f->bd, 0, "size", FM_PARAM_INT, 5);
	check_param(f->bd, 1, "target", FM_PARAM_INT, 0);
	check_param(f->bd, 2, "fraction", FM_PARAM_REAL, 0.5);
}

/* y -> 9 - y on ten classes, 2 - y on three; features untouched; the
 * test set is left alone (no success rate). */
static void
test_label_flip(void **state)
{
	const fixture *f = *state;
	const int32_t lab[6] = { 0, 1, 2, 9, 5, 4 };
	const int32_t want[6] = { 9, 8, 7, 0, 4, 5 };
	set *s = set_new(6, lab, FM_ATTACK_TRAIN, W, H, 1);
	FMT_PASS(poison(f->flip, NULL, 0, s));
	assert_memory_equal(s->y, want, sizeof want);
	assert_memory_equal(s->x, s->x0, sizeof s->x);
	free(s);

	const int32_t lab3[3] = { 0, 1, 2 }, want3[3] = { 2, 1, 0 };
	s = set_new(3, lab3, FM_ATTACK_TRAIN, W, H, 1);
	s->d.nclasses = 3;
	FMT_PASS(poison(f->flip, NULL, 0, s));
	assert_memory_equal(s->y, want3, sizeof want3);
	free(s);

	s = set_new(6, lab, FM_ATTACK_EVAL, W, H, 1);
	FMT_PASS(poison(f->flip, NULL, 0, s));
	assert_memory_equal(s->y, lab, sizeof lab);
	assert_memory_equal(s->x, s->x0, sizeof s->x);
	assert_int_equal(s->d.defined, 0);
	assert_int_equal(s->d.nkeep, 6);
	free(s);
}

/* Default backdoor on 40 examples: exactly 20 stamped with the 5x5
 * trigger (rows and columns 3..7 of a 10x10 image) and labelled 0; the
 * same set for the same seed, another set for another seed; a square
 * image is also recognised from dim alone. */
static void
test_backdoor_train(void **state)
{
	const fixture *f = *state;
	uint8_t m1[NMAX], m2[NMAX], m3[NMAX];
	set *a = set_new(NMAX, NULL, FM_ATTACK_TRAIN, W, H, 11);
	set *b = set_new(NMAX, NULL, FM_ATTACK_TRAIN, 0, 0, 11);
	set *c = set_new(NMAX, NULL, FM_ATTACK_TRAIN, W, H, 12);
	FMT_PASS(poison(f->bd, NULL, 0, a));
	FMT_PASS(poison(f->bd, NULL, 0, b));
	FMT_PASS(poison(f->bd, NULL, 0, c));
	assert_int_equal(check_train(a, 5, m1), NMAX / 2);
	assert_int_equal(check_train(b, 5, m2), NMAX / 2);
	assert_int_equal(check_train(c, 5, m3), NMAX / 2);
	assert_memory_equal(m1, m2, NMAX);
	assert_memory_equal(a->x, b->x, sizeof a->x);
	assert_memory_not_equal(m1, m3, NMAX);
	free(a);
	free(b);
	free(c);
}

/* Parameters: size 3, fraction 0.25 -> floor(10) of 40; fraction 1: all;
 * fraction 0: none; 7 examples at 0.5: floor(3.5) = 3. */
static void
bd_count(const fixture *f, size_t n, double fraction, uint32_t size,
    size_t want)
{
	uint8_t m[NMAX];
	const fmi_param_in in[2] = { { "fraction", 0, fraction, NULL },
		{ "size", 0, size, NULL } };
	set *s = set_new(n, NULL, FM_ATTACK_TRAIN, W, H, 5);
	FMT_PASS(poison(f->bd, in, 2, s));
	assert_int_equal(check_train(s, size, m), want);
	free(s);
}

static void
test_backdoor_params(void **state)
{
	const fixture *f = *state;
	bd_count(f, NMAX, 0.25, 3, 10);
	bd_count(f, NMAX, 1, 1, NMAX);
	bd_count(f, NMAX, 0, 3, 0);
	bd_count(f, 7, 0.5, 8, 3); /* 8 + 2 = 10: the largest that fits */
}

/* Test set, target 0: the four class-0 examples go, the six others move
 * to the front in order, stamped and labelled 0; defined is set. */
static void
test_backdoor_eval(void **state)
{
	const fixture *f = *state;
	const int32_t lab[10] = { 0, 3, 0, 5, 7, 0, 1, 2, 0, 9 };
	const size_t kept[6] = { 1, 3, 4, 6, 7, 9 };
	set *s = set_new(10, lab, FM_ATTACK_EVAL, W, H, 3);
	FMT_PASS(poison(f->bd, NULL, 0, s));
	assert_int_equal(s->d.defined, 1);
	assert_int_equal(s->d.nkeep, 6);
	for (size_t k = 0; k < 6; k++) {
		assert_int_equal(s->y[k], 0);
		check_image(s, k, kept[k], 5, 1);
	}
	free(s);

	/* target 3: only example 1 goes; VMAX (in example 0) still draws */
	const fmi_param_in in = { "target", 0, 3, NULL };
	s = set_new(10, lab, FM_ATTACK_EVAL, W, H, 3);
	FMT_PASS(poison(f->bd, &in, 1, s));
	assert_int_equal(s->d.defined, 1);
	assert_int_equal(s->d.nkeep, 9);
	for (size_t k = 0; k < 9; k++) {
		assert_int_equal(s->y[k], 3);
		check_image(s, k, k == 0 ? 0 : k + 1, 5, 1);
	}
	free(s);
}

/* A poisoning that must be refused: FM_EINVAL, a log line containing
 * what, and the data unchanged. */
static void
refused(const fmi_component *c, const fmi_param_in *in, size_t nin, set *s,
    const char *what)
{
	fmt_logcap cap;
	at_quiet(&cap);
	int rv = poison(c, in, nin, s);
	at_loud();
	FMT_FAIL(rv, FM_EINVAL);
	at_logged(&cap, LOG_ID, what);
	assert_memory_equal(s->x, s->x0, sizeof s->x);
	assert_memory_equal(s->y, s->y0, sizeof s->y);
	assert_int_equal(s->d.defined, 0);
	free(s);
}

static void
test_refusals(void **state)
{
	const fixture *f = *state;
	const int32_t bad[3] = { 1, 10, 2 };
	const fmi_param_in big = { "size", 0, 9, NULL };
	const fmi_param_in tgt = { "target", 0, 10, NULL };
	refused(f->flip, NULL, 0, set_new(3, bad, FM_ATTACK_TRAIN, W, H, 1),
	    "example 1 has label 10, not one of the 10 classes");
	refused(f->bd, &big, 1, set_new(4, NULL, FM_ATTACK_TRAIN, W, H, 1),
	    "a 9x9 trigger 2 pixels from the border does not fit in 10x10");
	refused(f->bd, &tgt, 1, set_new(4, NULL, FM_ATTACK_EVAL, W, H, 1),
	    "target 10 is not one of the 10 classes");
	refused(f->bd, NULL, 0, set_new(4, NULL, FM_ATTACK_TRAIN, 10, 5, 1),
	    "examples of 100 features are not 10x5 images");
	set *s = set_new(4, NULL, FM_ATTACK_TRAIN, 0, 0, 1);
	s->d.dim = 50; /* 4 examples of 50 features: not a square */
	refused(f->bd, NULL, 0, s, "50 features are not a square image and "
	    "no image shape was given");
	s = set_new(4, NULL, FM_ATTACK_TRAIN, W, H, 1);
	s->d.purpose = 9;
	refused(f->bd, NULL, 0, s, "unknown purpose");
}

static void
test_bad_params(void **state)
{
	const fixture *f = *state;
	at_resolve_refused(f->bd, "size", 0, "'size' = 0 is out of range");
	at_resolve_refused(f->bd, "size", 2.5, "'size' must be an integer");
	at_resolve_refused(f->bd, "target", -1, "'target' = -1 is out of "
	    "range");
	at_resolve_refused(f->bd, "fraction", 1.5, "'fraction' = 1.5 is out "
	    "of range [0, 1]");
	at_resolve_refused(f->flip, "target", 1, "no parameter 'target'");
	const fm_value frac[3] = { { 5, NULL }, { 0, NULL }, { 2, NULL } };
	const fm_value size[3] = { { 0.5, NULL }, { 0, NULL }, { 0.5, NULL } };
	at_init_refused(f->bd, frac, LOG_ID, "fraction = 2 in [0, 1]");
	at_init_refused(f->bd, size, LOG_ID, "size = 0.5 must be an integer");
}

static void
test_fini_safe(void **state)
{
	const fixture *f = *state;
	at_fini_safe(f->flip, LOG_ID);
	at_fini_safe(f->bd, LOG_ID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi),
		cmocka_unit_test(test_label_flip),
		cmocka_unit_test(test_backdoor_train),
		cmocka_unit_test(test_backdoor_params),
		cmocka_unit_test(test_backdoor_eval),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_fini_safe),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
