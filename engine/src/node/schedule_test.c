/* SPDX-License-Identifier: MIT */
/* schedule_test.c: learning-rate schedule formulas and the fault plan. */
#include <math.h>
#include <string.h>

#include "fm_test.h"

#include "core/core.h"
#include "node/node.h"

static int
near(double a, double b)
{
	return fabs(a - b) <= 1e-12 * fmax(1.0, fabs(b));
}

static void
test_factors(void **state)
{
	(void)state;
	fmi_lr_schedule none = { 0 }, cst = { FMI_LR_CONSTANT, 0, 0, 0, 0 };
	fmi_lr_schedule step = { FMI_LR_STEP, 10, 0, 0.5, 0 };
	fmi_lr_schedule ex = { FMI_LR_EXP, 0, 0, 0.98, 0 };
	fmi_lr_schedule cosine = { FMI_LR_COSINE, 0, 50, 0, 0.01 };
	for (uint32_t r = 1; r <= 120; r++) {
		assert_true(fmi_lr_factor(NULL, r) == 1.0);
		assert_true(fmi_lr_factor(&none, r) == 1.0);
		assert_true(fmi_lr_factor(&cst, r) == 1.0);
		assert_true(near(fmi_lr_factor(&step, r),
		    pow(0.5, (double)((r - 1) / 10))));
		assert_true(near(fmi_lr_factor(&ex, r), pow(0.98, r - 1.0)));
		double t = r - 1.0 < 50 ? r - 1.0 : 50;
		assert_true(near(fmi_lr_factor(&cosine, r),
		    0.01 + 0.99 * (1 + cos(3.14159265358979323846 * t / 50)) / 2));
	}
	/* landmarks */
	assert_true(fmi_lr_factor(&step, 10) == 1.0);
	assert_true(fmi_lr_factor(&step, 11) == 0.5);
	assert_true(fmi_lr_factor(&step, 21) == 0.25);
	assert_true(fmi_lr_factor(&cosine, 1) == 1.0);
	assert_true(near(fmi_lr_factor(&cosine, 26), 0.505));
	assert_true(near(fmi_lr_factor(&cosine, 51), 0.01));
	assert_true(near(fmi_lr_factor(&cosine, 99), 0.01)); /* stays */
	assert_true(fmi_lr_factor(&ex, 1) == 1.0);
}

static void
test_check(void **state)
{
	(void)state;
	fm_error e;
	fmi_lr_schedule s = { FMI_LR_STEP, 0, 0, 0.5, 0 };
	assert_int_equal(fmi_lr_check(&s, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "'every'"));
	s.every = 3;
	FMT_PASS(fmi_lr_check(&s, &e));
	s.gamma = 1.5;
	assert_int_equal(fmi_lr_check(&s, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "'gamma'"));
	s = (fmi_lr_schedule){ FMI_LR_EXP, 0, 0, 0, 0 };
	assert_int_equal(fmi_lr_check(&s, &e), FM_EINVAL);
	s = (fmi_lr_schedule){ FMI_LR_COSINE, 0, 0, 0, 0 };
	assert_int_equal(fmi_lr_check(&s, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "'rounds'"));
	s.rounds = 5;
	s.floor = 2;
	assert_int_equal(fmi_lr_check(&s, &e), FM_EINVAL);
	s.floor = 0;
	FMT_PASS(fmi_lr_check(&s, &e));
}

/* Exactly round(fraction k) of each kind, disjoint, the same for the same
 * seed and round, another choice for another round. */
static void
test_fault_plan(void **state)
{
	(void)state;
	fmi_fed_cfg cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.faults = (fmi_faults){ 0.1, 0.25, 7 };
	uint8_t a[40], b[40];
	int differ = 0;
	for (uint32_t r = 1; r <= 20; r++) {
		FMT_PASS(fmi_fault_plan(&cfg, r, 40, a));
		FMT_PASS(fmi_fault_plan(&cfg, r, 40, b));
		assert_memory_equal(a, b, sizeof a);
		uint32_t nd = 0, ns = 0;
		for (int i = 0; i < 40; i++) {
			nd += a[i] == FMI_FAULT_DROPOUT;
			ns += a[i] == FMI_FAULT_STRAGGLER;
		}
		assert_int_equal(nd, 4);
		assert_int_equal(ns, 10);
		FMT_PASS(fmi_fault_plan(&cfg, r + 1, 40, b));
		differ += memcmp(a, b, sizeof a) != 0;
	}
	assert_true(differ > 0);
	cfg.faults = (fmi_faults){ 0.6, 0.6, 7 }; /* clamped to k */
	FMT_PASS(fmi_fault_plan(&cfg, 1, 5, a));
	uint32_t n = 0;
	for (int i = 0; i < 5; i++) {
		n += a[i] != FMI_FAULT_NONE;
	}
	assert_int_equal(n, 5);
	/* the configuration check refuses what fm.experiment refuses */
	fm_error e;
	assert_int_equal(fmi_fed_validate_rounds(&cfg, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "faults:"));
	cfg.faults = (fmi_faults){ 0.5, 0.5, 7 };
	FMT_PASS(fmi_fed_validate_rounds(&cfg, &e));
	cfg.server_lr_sched = (fmi_lr_schedule){ FMI_LR_EXP, 0, 0, 2, 0 };
	assert_int_equal(fmi_fed_validate_rounds(&cfg, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "server_lr_schedule: exponential"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_factors),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_fault_plan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
