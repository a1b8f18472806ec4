/* SPDX-License-Identifier: MIT */
/* plugin_link.c: what every node does for its plugin instances: one-shot
 * timers for its event loop, and delivering a received plugin message. */
#include <stdlib.h>

#include "core/core.h"
#include "node/node.h"

int
fmi_timers_add_at(fmi_timers *ts, fmi_inst_head *inst, double due,
    uint64_t tag)
{
	if (ts->n >= FMI_MAX_TIMERS) {
		return FM_EBUSY;
	}
	ts->t[ts->n++] = (fmi_timer) { due, tag, inst };
	return FM_OK;
}

int
fmi_timers_add(fmi_timers *ts, fmi_inst_head *inst, uint32_t ms,
    uint64_t tag)
{
	return fmi_timers_add_at(ts, inst, fmi_now() + ms / 1000.0, tag);
}

typedef struct timer_due {
	fmi_timer t;
	int order; /* position among the armed timers: the order set */
} timer_due;

static int
timer_due_cmp(const void *pa, const void *pb)
{
	const timer_due *a = pa, *b = pb;
	if (a->t.due != b->t.due) {
		return a->t.due < b->t.due ? -1 : 1;
	}
	if (a->t.tag != b->t.tag) {
		return a->t.tag < b->t.tag ? -1 : 1;
	}
	return (a->order > b->order) - (a->order < b->order);
}

int
fmi_timers_fire_until(fmi_timers *ts, double now)
{
	timer_due due[FMI_MAX_TIMERS];
	int nd = 0, j = 0;
	for (int i = 0; i < ts->n; i++) { /* keeps the order set */
		if (ts->t[i].due <= now) {
			due[nd] = (timer_due) { ts->t[i], nd };
			nd++;
		} else {
			ts->t[j++] = ts->t[i];
		}
	}
	ts->n = j;
	qsort(due, (size_t)nd, sizeof due[0], timer_due_cmp);
	for (int i = 0; i < nd; i++) {
		(void)fmi_inst_timer(due[i].t.inst, due[i].t.tag);
	}
	return nd;
}

int
fmi_timers_wait_ms(const fmi_timers *ts, int cap_ms)
{
	double now = fmi_now();
	int wait = cap_ms;
	for (int i = 0; i < ts->n; i++) {
		double ms = (ts->t[i].due - now) * 1000.0;
		int w = ms <= 0 ? 0 : (int)ms + 1;
		wait = w < wait ? w : wait;
	}
	return wait;
}

void
fmi_timers_drop(fmi_timers *ts, const fmi_inst_head *inst)
{
	int j = 0;
	for (int i = 0; i < ts->n; i++) {
		if (ts->t[i].inst != inst) {
			ts->t[j++] = ts->t[i];
		}
	}
	ts->n = j;
}

void
fmi_timers_fire(fmi_timers *ts)
{
	double now = fmi_now();
	for (int i = 0; i < ts->n;) {
		if (ts->t[i].due > now) {
			i++;
			continue;
		}
		fmi_timer t = ts->t[i];
		ts->t[i] = ts->t[--ts->n]; /* remove before the callback */
		{
			(void)fmi_inst_timer(t.inst, t.tag);
		}
	}
}

int
fmi_inst_deliver(fmi_inst_head *h, fmi_rmsg *r)
{
	fm_message msg = { sizeof msg, r->m.from, r->m.round, 0,
		fmi_rmsg_data(r), fmi_rmsg_len(r) };
	return fmi_inst_message(h, &msg);
}
