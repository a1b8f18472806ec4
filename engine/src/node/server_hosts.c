/* SPDX-License-Identifier: MIT */
/* server_hosts.c: the client hosts: waiting for them to say hello,
 * placing a round's clients on them, broadcasting the round. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "node/server_int.h"

int
srv_host_index(const fmi_server *s, const char *peer)
{
	for (uint32_t i = 0; i < s->hosts->n; i++) {
		if (strcmp(peer, s->hosts->names[i]) == 0) {
			return (int)i;
		}
	}
	return -1;
}

/* Waits until every host has said something (HELLO or HEARTBEAT), or the
 * join timeout passed with at least one. */
int
srv_wait_hosts(fmi_server *s, fm_error *err)
{
	uint32_t seen = 0;
	char *got = calloc(s->hosts->n, 1);
	double tmo = s->hosts->join_timeout > 0 ? s->hosts->join_timeout : 30;
	double deadline = fmi_now() + tmo;

	while (got != NULL && seen < s->hosts->n && fmi_now() < deadline) {
		fmi_rmsg r;
		if (fmi_tran_recv(s->t, &r, 100, NULL) != FM_OK) {
			continue;
		}
		int h = srv_host_index(s, r.peer);
		if (h >= 0) {
			s->heard[h] = fmi_now();
		}
		if (h >= 0 && r.m.type == FMI_MSG_HELLO) {
			srv_on_hello(s, h, &r.m);
		}
		if (h < 0) {
			fm_log(FM_LOG_WARN, "FM-SENDER", "ignored %s message from "
			    "'%s': not a node of this federation",
			    fmi_msg_type_name(r.m.type), r.peer);
		} else if (!got[h]) {
			got[h] = 1;
			seen++;
			/* worker threads of a simulation are no news */
			fm_log(s->hosts->pinned ? FM_LOG_INFO : FM_LOG_DEBUG,
			    "FM-JOIN", "client host %s joined (%u of %u)",
			    r.peer, seen, s->hosts->n);
		}
		fmi_rmsg_close(&r);
	}
	free(got);
	if (seen == 0) {
		return fm_error_set(err, FM_ETIMEDOUT, "no client host joined "
		    "within %.0f s; are the clients running and pointed at this "
		    "server?", tmo);
	}
	if (seen < s->hosts->n) {
		fm_log(FM_LOG_WARN, "FM-JOIN", "starting with %u of %u client "
		    "hosts; the others can join later", seen, s->hosts->n);
	}
	return FM_OK;
}

/* A run that fails before its first round: lets the hosts connect (up
 * to 5 s) so the SHUTDOWN that follows reaches them; a host that is not
 * connected yet would never hear it. */
void
srv_await_hellos(fmi_server *s)
{
	uint32_t n = s->hosts->n, seen = 0;
	char *got = calloc(n, 1);
	double deadline = fmi_now() + 5;
	while (got != NULL && seen < n && fmi_now() < deadline) {
		fmi_rmsg r;
		if (fmi_tran_recv(s->t, &r, 50, NULL) != FM_OK) {
			continue;
		}
		int h = srv_host_index(s, r.peer);
		if (h >= 0 && !got[h]) {
			got[h] = 1;
			seen++;
		}
		fmi_rmsg_close(&r);
	}
	free(got);
}

/* Slot i no longer counts towards the clients the round waits for. */
void
srv_unwait(fmi_server *s, srv_slot *slot)
{
	if (slot->awaited) {
		slot->awaited = 0;
		s->waiting--;
	}
}

static int
cmp_job(const void *a, const void *b)
{
	const srv_job *x = a, *y = b;
	if (x->size != y->size) {
		return x->size > y->size ? -1 : 1;
	}
	return (x->slot > y->slot) - (x->slot < y->slot);
}

/* Longest shard first onto the least-loaded host: balanced and
 * deterministic (placement never changes results, only speed). */
void
srv_assign_hosts(fmi_server *s)
{
	srv_job *jobs = s->jobs;
	uint32_t nh = s->hosts->n;

	if (s->hosts->pinned) { /* the client's data lives on its home host */
		for (uint32_t i = 0; i < s->nslots; i++) {
			s->slots[i].host = s->slots[i].client % nh;
		}
		return;
	}

	for (uint32_t i = 0; i < s->nslots; i++) {
		jobs[i].size = fmi_partition_size(s->cfg->part, s->slots[i].client);
		jobs[i].slot = i;
	}
	qsort(jobs, s->nslots, sizeof *jobs, cmp_job);
	memset(s->load, 0, nh * sizeof *s->load);
	for (uint32_t i = 0; i < s->nslots; i++) {
		uint32_t h = 0;
		for (uint32_t j = 1; j < nh; j++) {
			h = s->load[j] < s->load[h] ? j : h;
		}
		s->slots[jobs[i].slot].host = h;
		s->load[h] += jobs[i].size + 1;
	}
}

/* The model of aggregator i as one shared TRAIN payload. */
static fmi_payload *
srv_payload(const fmi_server *s, uint32_t i)
{
	fmi_payload *p = fmi_payload_new(s->dim * sizeof(float));
	if (p != NULL) {
		memcpy(p->data, s->nodes[i].model, p->len);
		fmi_f32_to_le(p->data, s->dim);
	}
	return p;
}

/* Sends each sampled client its edge's model: one shared payload per
 * edge (a star's one edge is the root). */
int
srv_broadcast(fmi_server *s)
{
	fmi_payload *p = NULL;
	const fmi_local_cfg *lc = &s->cfg->local;
	int rv = FM_OK;
	for (uint32_t i = 0; i < s->nslots && rv == FM_OK; i++) {
		fmi_msg m;
		uint32_t c = s->slots[i].client;
		if (i == 0 || s->slots[i].edge != s->slots[i - 1].edge) {
			fmi_payload_unref(p);
			if ((p = srv_payload(s, s->slots[i].edge)) == NULL) {
				srv_drop_held(s);
				return FM_ENOMEM;
			}
		}
		srv_msg(s, &m, FMI_MSG_TRAIN, (int32_t)c + 1);
		m.epochs = lc->epochs;
		m.batch = lc->batch;
		m.lr = s->lr;
		m.momentum = lc->opt.momentum;
		m.weight_decay = lc->opt.weight_decay;
		m.seed = fmi_task_seed(s->cfg->seed, s->round, c);
		m.n = s->dim;
		uint32_t h = s->slots[i].host;
		double quiet = fmi_now() - s->heard[h];
		if (s->hosts->silent_timeout > 0 &&
		    quiet > s->hosts->silent_timeout) {
			fm_log(FM_LOG_WARN, "FM-SILENT", "round %u: client %u: "
			    "its host %s has been silent for %.1f s", s->round,
			    c + 1, s->hosts->names[h], quiet);
			s->slots[i].state = 3;
			srv_unwait(s, &s->slots[i]);
			srv_flush_held(s, (int32_t)c + 1, NULL);
			continue;
		}
		/* what its aggregator said in a_begin, then the task */
		srv_flush_held(s, (int32_t)c + 1, s->hosts->names[h]);
		rv = fmi_tran_send(s->t, s->hosts->names[h], &m, p);
		if (rv == FM_ENOENT) { /* host not connected: a dropout */
			fm_log(FM_LOG_WARN, "FM-DROPOUT", "round %u: client %u: "
			    "its host %s is not connected", s->round, c + 1,
			    s->hosts->names[s->slots[i].host]);
			s->slots[i].state = 3;
			srv_unwait(s, &s->slots[i]);
			rv = FM_OK;
		}
	}
	fmi_payload_unref(p);
	srv_drop_held(s);
	return rv;
}
