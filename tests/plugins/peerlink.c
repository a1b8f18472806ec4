/* SPDX-License-Identifier: MIT */
/* peerlink.c: a gossip average whose peers also talk to each other. */
#include <stdint.h>
#include <string.h>

#include "fedmesh/plugin.h"

/*
 * A consensus component for the peers' node link (host->send, timer,
 * metric; docs/plugin-guide.md, "Consensus"). Mixing is gossip with step
 * 1: model = (1 - S) own + sum_j W_ij x_j over the neighbours that
 * arrived (S = sum_j W_ij). Besides, at peer i:
 *   - outgoing(r) sends "O" r to the in-neighbours of i's last mix: they
 *     get it before their mix of round r;
 *   - mix(r) sends "M" r to its in-neighbours (they get it by their mix of
 *     round r + 1), arms a timer of 0 ms (tag r) and one of 1500 ms (tag
 *     LATE + r), and tries three peers it may not send to (-1, itself,
 *     i + 3: none is a neighbour on a ring of 6 or more);
 *   - before that, mix(r) reports the metrics of what came: "peer_msgs"
 *     (the "M" r - 1 received), "peer_early" (the "O" r), "peer_timers"
 *     (timer r - 1 fired), "peer_late_timers" (timer LATE + r - 2 fired),
 *     "peer_bad" (messages whose header round is not their payload's, or
 *     malformed), "peer_send_failed" (sends to neighbours that failed, so
 *     far) and "peer_enoent" (of the three sends, those refused with
 *     FM_ENOENT).
 * Counts are kept by round in a small ring, so it does not matter when
 * in a round a message or timer comes, only that it comes before the mix
 * that reports it.
 */

#define NB(m, k) FM_AT(const fm_peer_model, (m)->neighbours, (k))
#define LATE 1000000u
#define SLOTS 8
#define MAX_NB 64

typedef struct slot {
	uint32_t round, count;
} slot;

typedef struct peerlink {
	const fm_instance *self;
	const fm_host_api *host;
	size_t dim;
	slot msgs[SLOTS], early[SLOTS], timers[SLOTS], late[SLOTS];
	uint32_t bad;
	uint32_t failed; /* sends to neighbours that failed (a deployed
	                  * link full or down): counted, not fatal */
	int32_t in_nb[MAX_NB]; /* in-neighbours of the last mix */
	uint32_t nin;
} peerlink;

static void
slot_add(slot *s, uint32_t round)
{
	slot *x = &s[round % SLOTS];
	if (x->round != round) {
		x->round = round;
		x->count = 0;
	}
	x->count++;
}

static uint32_t
slot_get(const slot *s, uint32_t round)
{
	const slot *x = &s[round % SLOTS];
	return x->round == round ? x->count : 0;
}

static int
pl_init(void *st, const fm_instance *inst)
{
	peerlink *p = st;
	p->self = inst;
	p->host = inst->host;
	p->dim = inst->dim;
	return inst->role == FM_ROLE_PEER && p->dim > 0 ? FM_OK : FM_EINVAL;
}

static void
pl_fini(void *st)
{
	(void)st;
}

static int
pl_send(peerlink *p, int32_t to, char kind, uint32_t round)
{
	uint8_t b[5] = { (uint8_t)kind, (uint8_t)round, (uint8_t)(round >> 8),
		(uint8_t)(round >> 16), (uint8_t)(round >> 24) };
	return p->host->send(p->self, to, b, sizeof b);
}

static int
pl_on_message(void *st, const fm_message *m)
{
	peerlink *p = st;
	const uint8_t *b = m->data;
	if (m->len != 5 || b == NULL) {
		p->bad++;
		return FM_EPROTO;
	}
	uint32_t r = (uint32_t)b[1] | (uint32_t)b[2] << 8 |
	    (uint32_t)b[3] << 16 | (uint32_t)b[4] << 24;
	if (r != m->round || (b[0] != 'M' && b[0] != 'O')) {
		p->bad++;
		return FM_EPROTO;
	}
	slot_add(b[0] == 'M' ? p->msgs : p->early, r);
	return FM_OK;
}

static int
pl_on_timer(void *st, uint64_t tag)
{
	peerlink *p = st;
	if (tag >= LATE) {
		slot_add(p->late, (uint32_t)(tag - LATE));
	} else {
		slot_add(p->timers, (uint32_t)tag);
	}
	return FM_OK;
}

static int
pl_outgoing(void *st, uint32_t round, uint32_t out_degree, double *mass)
{
	peerlink *p = st;
	(void)out_degree;
	*mass = 0;
	for (uint32_t k = 0; k < p->nin; k++) {
		p->failed += pl_send(p, p->in_nb[k], 'O', round) != FM_OK;
	}
	return FM_OK;
}

static int
pl_mix(void *st, const fm_mix *m, float *model, size_t dim)
{
	peerlink *p = st;
	uint32_t r = m->round;
	double sum = 0;
	if (dim != p->dim || m->nneighbours > MAX_NB) {
		return FM_EINVAL;
	}
	const fm_host_api *h = p->host;
	h->metric(p->self, "peer_msgs", slot_get(p->msgs, r - 1));
	h->metric(p->self, "peer_early", slot_get(p->early, r));
	h->metric(p->self, "peer_timers", slot_get(p->timers, r - 1));
	h->metric(p->self, "peer_late_timers",
	    r >= 2 ? slot_get(p->late, r - 2) : 0);
	h->metric(p->self, "peer_bad", p->bad);
	h->metric(p->self, "peer_send_failed", p->failed);
	for (uint32_t k = 0; k < m->nneighbours; k++) {
		sum += NB(m, k)->weight;
	}
	h->scal(dim, (float)(1.0 - sum), model);
	p->nin = 0;
	for (uint32_t k = 0; k < m->nneighbours; k++) {
		const fm_peer_model *nb = NB(m, k);
		h->axpy(dim, (float)nb->weight, nb->params, model);
		p->in_nb[p->nin++] = nb->peer;
		p->failed += pl_send(p, nb->peer, 'M', r) != FM_OK;
	}
	int enoent = (pl_send(p, -1, 'M', r) == FM_ENOENT) +
	    (pl_send(p, m->self, 'M', r) == FM_ENOENT) +
	    (pl_send(p, m->self + 3, 'M', r) == FM_ENOENT);
	h->metric(p->self, "peer_enoent", enoent);
	int rv = h->timer(p->self, 0, r);
	if (rv == FM_OK) {
		rv = h->timer(p->self, 1500, LATE + r);
	}
	if (rv != FM_OK) {
		h->set_error(p->self, "timer: %s", h->strerror(rv));
	}
	return rv;
}

static const fm_consensus_ops pl_ops = {
	.base = { sizeof(fm_consensus_ops), FM_KIND_CONSENSUS,
		sizeof(peerlink), pl_init, pl_fini, pl_on_message, pl_on_timer,
		NULL, NULL },
	.outgoing = pl_outgoing,
	.mix = pl_mix,
};

static const fm_component_desc pl_components[] = {
	FM_COMPONENT(FM_KIND_CONSENSUS, "peerlink",
	    "test: gossip whose peers message each other and set timers",
	    NULL, pl_ops, 0),
};

FM_PLUGIN("peerlink", "1.0.0", "MIT", "peer messaging test consensus",
    pl_components, NULL);
