/* SPDX-License-Identifier: MIT */
/* node.h: internal pieces shared by the server, the client host and timers. */
#ifndef FMI_NODE_NODE_H
#define FMI_NODE_NODE_H

#include "node/fed.h"
#include "transports/zmq/transport.h"

/* ---- plugin timers (timers.c) --------------------------------------- */
#define FMI_MAX_TIMERS 64
typedef struct fmi_timer {
	double due;
	uint64_t tag;
	fmi_agg *inst;
} fmi_timer;
typedef struct fmi_timers {
	fmi_timer t[FMI_MAX_TIMERS];
	int n;
} fmi_timers;
int fmi_timers_add(fmi_timers *ts, fmi_agg *inst, uint32_t ms, uint64_t tag);
/* Milliseconds until the next timer (capped at cap_ms), 0 if one is due. */
int fmi_timers_wait_ms(const fmi_timers *ts, int cap_ms);
/* Fires due timers; drops those of instance inst (NULL: none) first. */
void fmi_timers_fire(fmi_timers *ts);
void fmi_timers_drop(fmi_timers *ts, const fmi_agg *inst);

/* ---- the server (server.c) ------------------------------------------ */
typedef struct fmi_server fmi_server;
/*
 * hosts: routing identities of the client hosts (worker threads in a
 * simulation); the server waits for a HELLO from each before round 1.
 * route(ud, client_index, sampled_order) returns the host index that will
 * run that client this round.
 */
typedef struct fmi_server_hosts {
	char (*names)[FMI_PEER_MAX + 1];
	uint32_t n;
} fmi_server_hosts;

int fmi_server_run(const fmi_fed_cfg *cfg, fmi_tran *t,
    const fmi_server_hosts *hosts, fmi_fed_result *res, fm_error *err);

/* ---- a client host (client.c) --------------------------------------- */
/* Serves TRAIN requests for any client of cfg->part until SHUTDOWN. */
int fmi_client_host_run(const fmi_fed_cfg *cfg, fmi_tran *t,
    const char *name, fm_error *err);

/* Per-task seeds and streams derived from the run seed. */
uint64_t fmi_fed_id(uint64_t seed);
uint64_t fmi_task_seed(uint64_t seed, uint32_t round, uint32_t client);

#endif /* FMI_NODE_NODE_H */
