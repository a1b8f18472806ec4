/* SPDX-License-Identifier: MIT */
/* server_collect.c: collecting a round's updates until the quorum or the
 * deadline; late, malformed and misrouted messages. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"

/* L2 norm of x[n], summed in double in a fixed order. */
double
srv_norm(const float *x, size_t n)
{
	double sq = 0;
	for (size_t i = 0; i < n; i++) {
		sq += (double)x[i] * (double)x[i];
	}
	return sqrt(sq);
}

/* The slot of node id `client` in this round, or NULL. */
srv_slot *
srv_slot_of(fmi_server *s, int32_t client)
{
	if (client < 1 || (uint32_t)client > s->cfg->part->nclients ||
	    s->order[client - 1] == 0) {
		return NULL;
	}
	return &s->slots[s->order[client - 1] - 1];
}

static int
srv_accept(fmi_server *s, srv_slot *slot)
{
	const fmi_msg *m = &slot->msg.m;
	const void *data = fmi_rmsg_data(&slot->msg);
	const float *delta = data;
	if (((uintptr_t)data & (sizeof(float) - 1)) != 0) {
		memcpy(s->scratch, data, s->dim * sizeof(float));
		delta = s->scratch;
	}
	fm_update u = { sizeof u, m->from, m->round, 0, delta, s->dim,
		m->num_examples, m->loss, m->steps };
	srv_agg *n = &s->nodes[slot->edge];
	slot->ne = m->num_examples;
	slot->loss = m->loss;
	if (s->cfg->client_detail) {
		slot->norm = srv_norm(delta, s->dim);
	}
	/* held as a row until the round closes, or streamed */
	int rv = fmi_pipe_add(&n->pipe, &u);
	slot->status = rv == FM_OK ? FMI_CLIENT_KEPT : FMI_CLIENT_UNUSED;
	if (rv == FM_OK) {
		s->ne_sum += m->num_examples;
		s->loss_sum += m->loss * (double)m->num_examples;
		n->rne += m->num_examples;
		n->rloss += m->loss * (double)m->num_examples;
		s->m->updates++;
	}
	fmi_rmsg_close(&slot->msg);
	slot->state = 2;
	return rv;
}

/* Feeds arrived updates to the aggregator in sampled order; with final,
 * skips the ones that never came. */
static void
srv_flush(fmi_server *s, int final)
{
	while (s->next < s->nslots) {
		srv_slot *slot = &s->slots[s->next];
		if (slot->state == 1) {
			(void)srv_accept(s, slot);
		} else if (!final) {
			break;
		} else if (slot->state == 0 || slot->state == 3) {
			s->m->dropped++;
			slot->status = FMI_CLIENT_DROPPED;
			if (slot->state == 0 && slot->fault != FMI_FAULT_NONE) {
				fm_log(FM_LOG_DEBUG, "FM-DROPOUT", "round %u: client "
				    "%u: simulated %s", s->round, slot->client + 1,
				    slot->fault == FMI_FAULT_DROPOUT ? "dropout"
				                                     : "straggler");
			} else if (slot->state == 0) {
				fm_log(FM_LOG_WARN, "FM-DROPOUT", "round %u: client "
				    "%u sent no update before the deadline",
				    s->round, slot->client + 1);
			}
		}
		s->next++;
	}
}

/* Why a message claiming to be from client r->m.from cannot be: the
 * client is not of this round, or it came through another host than the
 * one the client was sent to. NULL when it can. (Updates and plugin
 * messages alike.) */
const char *
srv_sender_why(const fmi_server *s, const fmi_rmsg *r, char *why, size_t n)
{
	int32_t c = r->m.from - 1;
	if (c < 0 || (uint32_t)c >= s->cfg->part->nclients || s->order[c] == 0) {
		snprintf(why, n, "client %d was not sampled", r->m.from);
		return why;
	}
	const srv_slot *slot = &s->slots[s->order[c] - 1];
	if (strcmp(r->peer, s->hosts->names[slot->host]) != 0) {
		snprintf(why, n, "it came from '%s', but the client was sent to "
		    "'%s'", r->peer, s->hosts->names[slot->host]);
		return why;
	}
	return NULL;
}

/* Why an update cannot be used, or NULL. Content first (round, size,
 * finiteness), then who sent it. */
static const char *
srv_reject(fmi_server *s, fmi_rmsg *r, int tensor, char *why, size_t n)
{
	char spare[sizeof ((fm_error *)0)->msg]; /* the longest reason fits */
	if (why == NULL) { /* only the verdict is wanted */
		why = spare;
		n = sizeof spare;
	}
	fm_error e;
	const fmi_msg *m = &r->m;
	int32_t c = m->from - 1;
	if (m->round != s->round) {
		snprintf(why, n, "it is for round %u during round %u (stale or "
		    "replayed)", m->round, s->round);
		return "FM-ROUND";
	}
	if (tensor && fmi_msg_check_tensor(m, fmi_rmsg_data(r),
	        fmi_rmsg_len(r), s->dim, &e) != FM_OK) {
		snprintf(why, n, "%s", e.msg);
		return "FM-UPDATE";
	}
	if (srv_sender_why(s, r, why, n) != NULL) {
		return "FM-SENDER";
	}
	const srv_slot *slot = &s->slots[s->order[c] - 1];
	if (slot->state != 0) {
		snprintf(why, n, "the client already answered");
		return "FM-SENDER";
	}
	return NULL;
}

/* An update (or a failed client's word) after the round closed: a
 * straggler's, counted and dropped. (The slot was counted as dropped at
 * the deadline.) */
static void
srv_on_late(fmi_server *s, srv_slot *slot, fmi_rmsg *r, int failed)
{
	if (slot->fault == FMI_FAULT_STRAGGLER && s->late_expect > 0) {
		s->late_expect--;
	}
	if (failed) {
		slot->state = 3;
		fmi_rmsg_close(r);
		return;
	}
	const float *delta = fmi_rmsg_data(r);
	if (((uintptr_t)delta & (sizeof(float) - 1)) != 0) {
		memcpy(s->scratch, delta, s->dim * sizeof(float));
		delta = s->scratch;
	}
	slot->state = 4;
	slot->status = FMI_CLIENT_STRAGGLER;
	slot->ne = r->m.num_examples;
	slot->loss = r->m.loss;
	if (s->cfg->client_detail) {
		slot->norm = srv_norm(delta, s->dim);
	}
	s->m->dropped--;
	s->m->stragglers++;
	fm_log(slot->fault != FMI_FAULT_NONE ? FM_LOG_DEBUG : FM_LOG_WARN,
	    "FM-STRAGGLER", "round %u: the update of client %d came after the "
	    "deadline; dropped", s->round, r->m.from);
	fmi_rmsg_close(r);
}

static void
srv_on_update(fmi_server *s, fmi_rmsg *r)
{
	char why[512];
	/* An update of no floats is a client saying its training failed:
	 * its slot drops out now instead of at the deadline. */
	int failed = r->m.n == 0 && fmi_rmsg_len(r) == 0;
	const char *id = srv_reject(s, r, !failed, why, sizeof why);
	if (id != NULL && strcmp(id, "FM-UPDATE") == 0 &&
	    srv_reject(s, r, 0, NULL, 0) == NULL) {
		/* the right host sent a broken update (e.g. not finite): the
		 * client is out of this round, nobody waits for it */
		fm_log(FM_LOG_WARN, id, "dropped update of client %d from '%s': "
		    "%s; it drops out of round %u", r->m.from, r->peer, why,
		    s->round);
		failed = 1;
		id = NULL;
	}
	if (id != NULL) {
		fm_log(FM_LOG_WARN, id, "dropped update of client %d from '%s': "
		    "%s", r->m.from, r->peer, why);
		fmi_rmsg_close(r);
		return;
	}
	srv_slot *slot = &s->slots[s->order[r->m.from - 1] - 1];
	if (s->closed) {
		srv_on_late(s, slot, r, failed);
		return;
	}
	if (failed) {
		fm_log(FM_LOG_WARN, "FM-DROPOUT", "round %u: client %d has no "
		    "usable update (its training failed)", s->round, r->m.from);
		fmi_rmsg_close(r);
		slot->state = 3;
		srv_unwait(s, slot);
		srv_flush(s, 0);
		return;
	}
	slot->msg = *r; /* takes the payload */
	r->has_payload = 0;
	slot->state = 1;
	srv_unwait(s, slot);
	srv_flush(s, 0);
}

void
srv_dispatch(fmi_server *s, fmi_rmsg *r)
{
	int h = srv_host_index(s, r->peer);
	if (h >= 0) {
		s->heard[h] = fmi_now();
	}
	switch (r->m.type) {
	case FMI_MSG_UPDATE:
		srv_on_update(s, r);
		break;
	case FMI_MSG_PLUGIN:
		srv_on_plugin(s, r);
		break;
	case FMI_MSG_EVAL:
		srv_on_eval(s, r);
		break;
	case FMI_MSG_HELLO:
		if (h >= 0) { /* a host joining late, or coming back */
			fm_log(FM_LOG_INFO, "FM-JOIN", "round %u: client host %s "
			    "said hello: it gets work from the next round",
			    s->round, r->peer);
		}
		srv_on_hello(s, h, &r->m);
		fmi_rmsg_close(r);
		break;
	case FMI_MSG_HEARTBEAT:
		fmi_rmsg_close(r);
		break;
	default:
		fm_log(FM_LOG_WARN, "FM-WIRE", "server: unexpected %s message "
		    "from %s", fmi_msg_type_name(r->m.type), r->peer);
		fmi_rmsg_close(r);
	}
}

void
srv_collect(fmi_server *s)
{
	uint32_t tmo = s->cfg->round_timeout_ms ? s->cfg->round_timeout_ms
	                                        : 3600 * 1000;
	double deadline = fmi_now() + tmo / 1000.0;

	s->deadline = deadline;
	while (s->waiting > 0) {
		double left = deadline - fmi_now();
		if (left <= 0) {
			break;
		}
		int wait = fmi_timers_wait_ms(&s->timers, (int)(left * 1000) + 1);
		fmi_rmsg r;
		if (fmi_tran_recv(s->t, &r, wait, NULL) == FM_OK) {
			srv_dispatch(s, &r);
		}
		fmi_timers_fire(&s->timers);
	}
	srv_flush(s, 1);
}

/* After the round closed: the updates that come late (stragglers). With
 * simulated stragglers, waits for their hosts to answer (they do once
 * they hear the round ended, up to the round's deadline); then takes
 * what is already queued, without waiting. */
static void
srv_collect_late(fmi_server *s)
{
	fmi_rmsg r;
	s->closed = 1;
	s->late_expect = 0; /* planned stragglers that were sent their task */
	for (uint32_t i = 0; i < s->nslots; i++) {
		s->late_expect += s->slots[i].fault == FMI_FAULT_STRAGGLER &&
		    s->slots[i].state == 0;
	}
	while (s->late_expect > 0) {
		double left = s->deadline - fmi_now();
		if (left <= 0) {
			break;
		}
		if (fmi_tran_recv(s->t, &r, (int)(left * 1000) + 1, NULL) ==
		    FM_OK) {
			srv_dispatch(s, &r);
		}
	}
	for (;;) {
		int rv = fmi_tran_recv(s->t, &r, 0, NULL);
		if (rv == FM_OK) {
			srv_dispatch(s, &r);
		} else if (rv != FM_EPROTO && rv != FM_EVERSION) {
			break; /* nothing more queued */
		}
	}
	s->closed = 0;
}

void
srv_end_round(fmi_server *s)
{
	/* One per sampled client node (not per host), so the traffic does not
	 * depend on how many threads host the clients. */
	for (uint32_t i = 0; i < s->nslots; i++) {
		fmi_msg m;
		srv_msg(s, &m, FMI_MSG_ROUND_END, (int32_t)s->slots[i].client + 1);
		(void)fmi_tran_send(s->t, s->hosts->names[s->slots[i].host], &m,
		    NULL);
	}
	srv_collect_late(s);
	for (uint32_t i = 0; i < s->nslots; i++) {
		fmi_rmsg_close(&s->slots[i].msg);
		s->order[s->slots[i].client] = 0;
	}
}
