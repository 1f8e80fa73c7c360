/* SPDX-License-Identifier: MIT */
/*
 * conn_limits.h: per-connection limits of mqd (docs/security.md).
 *
 * - --max-connections: pipes (connections) are counted with nng's pipe
 *   notifications. A pipe beyond the limit is not dropped blindly: it is
 *   marked refused, every request it sends is answered RESOURCE_EXHAUSTED
 *   with the reason (so the client sees a clear error, not a timeout), and
 *   it is closed after REFUSED_LINGER_MS. The listener watchdog's own
 *   ipc:// probes (same process) are not counted.
 * - --max-parked-pulls: requests with a long-poll wait (an input field
 *   `wait_ms` > 0, as PullRequest has) held at once per connection; one
 *   more is answered at once with RESOURCE_EXHAUSTED.
 */
#ifndef BRK_LIMITS_H
#define BRK_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

struct brk_call;
typedef struct brk_limits brk_limits;

#define BRK_REFUSED_LINGER_MS 1000

brk_limits *brk_limits_new(uint32_t max_connections, uint32_t max_parked_pulls);
void brk_limits_free(brk_limits *l);

/* brk_limits_pipe_event is the nng pipe notification (ADD_PRE, REM_POST).
 * ADD_PRE, not ADD_POST: nng starts the protocol on a pipe before ADD_POST
 * runs, so a request could be served before a post-add check; REM_POST
 * comes for every pipe that saw ADD_PRE. */
void brk_limits_pipe_event(brk_limits *l, nng_pipe p, nng_pipe_ev ev);

/* brk_limits_refused tells whether pipe id was refused (over the limit);
 * the caller then answers with brk_limits_refuse_call. */
bool brk_limits_refused(brk_limits *l, uint32_t pipe_id);
void brk_limits_refuse_call(brk_limits *l, struct brk_call *c);

/* brk_limits_sweep closes refused pipes older than BRK_REFUSED_LINGER_MS
 * (they had time to read their answer). */
void brk_limits_sweep(brk_limits *l);

/* brk_limits_open_count is the number of counted (accepted) connections. */
uint32_t brk_limits_open_count(brk_limits *l);

/* brk_limits_longpoll_enter runs before a request's handler: for a
 * long-poll request (wait_ms > 0) it takes a slot of c's connection, or
 * sets c's RESOURCE_EXHAUSTED error and returns false. */
bool brk_limits_longpoll_enter(brk_limits *l, struct brk_call *c);
/* brk_limits_call_done gives back the slot of c, if it holds one. */
void brk_limits_call_done(brk_limits *l, struct brk_call *c);

#endif
