/* SPDX-License-Identifier: MIT */
/*
 * broker.h: the parts of mqd and how a request flows through them.
 *
 *   server.c   nng REP socket, listeners, a growing pool of contexts
 *              (brk_work), each an aio callback state machine:
 *              RECV -> (decode, dispatch) -> [writer] -> SEND -> RECV.
 *   service.c  decode of the Request envelope; dispatch through the
 *              generated service descriptor of mq.Broker to typed handlers;
 *              replies. Ping and ServerInfo are answered at once; every
 *              storage method is handed to the writer with its apply step.
 *   writer.c   the single writer thread: it takes every call queued while
 *              the previous commit ran, applies them all in one storage
 *              transaction (group commit), commits, then replies (or,
 *              when more calls already wait, hands the replies to its
 *              replier thread and starts the next transaction). It also
 *              owns parked long polls and the timers (lease expiry, delayed
 *              messages, relaxed-mode syncs).
 *
 * Storage is touched only in the writer's role: by the writer thread, or,
 * when that thread is idle, by the one nng callback thread that submits a
 * call and runs it inline (writer.c). Nothing blocks on the network
 * (replies are sent with asynchronous aio).
 */
#ifndef BRK_BROKER_H
#define BRK_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include <bsd/sys/tree.h>
#include <protobuf-c/protobuf-c.h>

#include "config.h"
#include "mq.pb-c.h"
#include "storage.h"

typedef struct brk_server brk_server;
typedef struct brk_writer brk_writer;
typedef struct brk_work brk_work;
typedef struct brk_call brk_call;
typedef struct brk_waitq brk_waitq;

/* brk_apply_fn runs one call inside the writer's transaction. It either
 * sets the call's result (brk_call_set_*) or, for a long poll that found
 * nothing, parks it (brk_writer_park). */
typedef void (*brk_apply_fn)(brk_writer *w, store_txn *t, brk_call *c);

/* brk_call is one request in progress. It is embedded in its brk_work, so
 * a request costs no allocation of its own. */
struct brk_call {
	brk_work *work;
	Mq__Request *env;        /* unpacked envelope; owns the body bytes */
	ProtobufCMessage *input; /* unpacked method input */
	const ProtobufCMethodDescriptor *method;
	uint64_t start_ms; /* monotonic */

	/* Transport hooks (ops: http.c, metrics.c). on_finish, when set, answers
	 * the call instead of the nng context (work is then NULL); start_ns is
	 * the monotonic receipt time for the latency histogram; internal calls
	 * (made by /metrics) are not counted as requests. */
	void (*on_finish)(brk_call *c);
	uint64_t start_ns;
	bool internal;

	/* Writer side. */
	brk_apply_fn apply;
	brk_call *next;           /* in the writer's incoming list or a batch */
	brk_call *dnext;          /* in the list of calls a transaction answers */
	uint64_t batch_seq;       /* the transaction that took it from a batch */
	brk_call *wq_next;        /* in its queue's parked list */
	brk_waitq *wq;            /* parked on this queue, or NULL */
	uint64_t deadline_ms;     /* long-poll deadline, monotonic ms */
	uint32_t serve_cap;       /* parked pull served by the writer: at most this many; 0 = max */
	bool serving;             /* taken from its wait list by the writer to be served */
	RB_ENTRY(brk_call) tnode; /* in the writer's deadline tree */
	bool done;                /* a result is set */
	bool emit_failed;         /* a pull could not grow its reply (out of memory) */
	size_t reply_budget;      /* a pull's reply stops growing past this */

	/* Result: status, message and the packed reply body. */
	int status;
	char errmsg[STORE_ERR_MAX];
	uint8_t *body;
	size_t body_len, body_cap;

	/* Security and limits (auth.c, conn_limits.c). */
	uint32_t pipe_id;              /* the connection it came on (0 = unknown) */
	bool longpoll_held;            /* holds a parked-pull slot of pipe_id */
	const struct brk_token *token; /* the caller's token; NULL with auth off */
};

/* Server-wide facts the handlers need. */
typedef struct brk_info {
	const brk_config *cfg;
	store *store;
	brk_writer *writer;
	uint64_t start_ms;         /* monotonic */
	struct brk_auth *auth;     /* NULL = authentication off (auth.h) */
	struct brk_limits *limits; /* per-connection limits (conn_limits.h); set by the server */
	struct brk_backup *backup; /* backups (backup.h); NULL = none */
} brk_info;

/* ---- server.c ---- */
int brk_server_open(brk_server **out, const brk_config *cfg, brk_info *info);
/* brk_server_quiesce makes new requests answer UNAVAILABLE; calls already
 * taken in go on. */
void brk_server_quiesce(brk_server *s);
/* brk_server_close waits (bounded) for replies in flight, then closes the
 * listeners, connections and socket. */
void brk_server_close(brk_server *s);
/* brk_call_finish sends the call's result (status, errmsg, body) as the
 * Reply envelope and frees the request. Any thread. */
void brk_call_finish(brk_call *c);

/* ---- service.c ---- */
/* brk_service_init gives the service the server-wide facts; call it once,
 * before the first request. */
void brk_service_init(brk_info *info);
/* brk_service_dispatch decodes the request in msg (ownership taken) into
 * c and runs its handler; the handler ends in brk_call_finish, now or
 * later. */
void brk_service_dispatch(brk_info *info, brk_call *c, void *msg_body, size_t msg_len);
/* brk_call_set_error sets an error result. */
void brk_call_set_error(brk_call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* brk_call_set_reply packs reply as the call's OK result body. */
void brk_call_set_reply(brk_call *c, const ProtobufCMessage *reply);
/* brk_call_body_reserve makes room for n more body bytes; returns where. */
uint8_t *brk_call_body_reserve(brk_call *c, size_t n);
/* brk_call_reset_result clears a result (the writer re-runs a call). */
void brk_call_reset_result(brk_call *c);
/* brk_call_free_request frees the decoded request of c. */
void brk_call_free_request(brk_call *c);

/* ---- writer.c ---- */
/* brk_writer_start starts the writer thread; it sets info->writer too. */
int brk_writer_start(brk_writer **out, brk_info *info);
/* brk_writer_submit queues c for the next transaction. Returns -1 when the
 * writer is stopping (the caller answers UNAVAILABLE). */
int brk_writer_submit(brk_writer *w, brk_call *c);
/* brk_writer_stop applies what is queued, answers parked long polls with
 * what they have (nothing), and joins the thread. */
void brk_writer_stop(brk_writer *w);
void brk_writer_free(brk_writer *w);
/* brk_writer_park parks a pull until its queue gets a ready message or its
 * deadline passes. Only from an apply function. */
void brk_writer_park(brk_writer *w, brk_call *c, const char *queue);
/* brk_writer_has_parked tells whether pulls are parked on queue (new
 * pulls then queue up behind them, first come first served). */
bool brk_writer_has_parked(brk_writer *w, const char *queue);
/* brk_writer_mark marks queue for serving its parked pulls before the
 * current transaction commits (as a push to it does). */
void brk_writer_mark(brk_writer *w, const char *queue);
/* brk_writer_reply_budget is the most bytes a pull reply may carry. */
size_t brk_writer_reply_budget(const brk_writer *w);
/* brk_writer_config returns the broker's settings. */
const brk_config *brk_writer_config(const brk_writer *w);
/* brk_writer_store_ready is the store's on_ready callback; its argument
 * is the brk_info (whose writer is set by brk_writer_start). */
void brk_writer_store_ready(void *arg, const char *queue);
/* brk_writer_remote_ready is store_watch's callback (argument: the writer):
 * another mqd on a shared engine may have made messages ready in queue
 * (NULL: in any queue). Any thread; the writer serves the pulls parked on
 * it in a transaction of its own, and does nothing when none is parked. */
void brk_writer_remote_ready(void *arg, const char *queue);

/* Per-queue rate limits (queue config rate_limit): a token bucket per
 * queue, in the writer's memory (it starts full after a restart), burst =
 * rate. brk_writer_rate_avail refills it and returns how many messages
 * may be handed out now (UINT32_MAX when rate is 0); brk_writer_rate_used
 * takes n tokens; brk_writer_rate_wait makes the writer mark queue (serve
 * its parked pulls) when the next token is due. Only from apply steps. */
uint32_t brk_writer_rate_avail(brk_writer *w, const char *queue, uint32_t rate);
void brk_writer_rate_used(brk_writer *w, const char *queue, uint32_t n);
void brk_writer_rate_wait(brk_writer *w, const char *queue);

uint64_t brk_mono_ms(void);

#endif
