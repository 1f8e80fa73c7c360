/* SPDX-License-Identifier: MIT */
/**
 * @file mq/mq.h
 * @brief libmqclient: the client library of the mq job-queue broker.
 *
 * Link with `pkg-config --cflags --libs mqclient`.
 *
 * Conventions:
 * - Every fallible call returns an ::mq_status (MQ_OK = 0). On failure,
 *   mq_errmsg() returns the reason (the broker's message when the broker
 *   answered with an error) for the calling thread.
 * - Out-parameters are written only on success.
 * - Handles are opaque. Each `_open`/`_alloc` has exactly one `_close`/
 *   `_free`, which accepts NULL.
 * - Strings passed in are copied or used only during the call, unless
 *   stated otherwise. Strings and buffers returned by accessors are
 *   borrowed from the object they were read from and valid until that
 *   object is freed.
 * - A ::mq_client is safe to use from many threads at once; each call
 *   blocks the calling thread only.
 */
#ifndef MQ_MQ_H
#define MQ_MQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** MQ_PROTOCOL_VERSION is the wire protocol version this library speaks. */
#define MQ_PROTOCOL_VERSION 1

/**
 * mq_version returns the library's version string, e.g. "0.1.0".
 */
MQ_API const char *mq_version(void);

/**
 * mq_errmsg returns the reason for the last failed mq_* call made by the
 * calling thread: the broker's message when it answered with an error, else
 * a description of the local failure. Never NULL ("" when none).
 * @note Thread-local; valid until this thread's next mq_* call.
 */
MQ_API const char *mq_errmsg(void);

/* ---- Client ------------------------------------------------------------ */

/** An open connection (or set of connections) to one broker. */
typedef struct mq_client mq_client;

/** Options of mq_client_open(); initialise with mq_client_opts_init(). */
typedef struct mq_client_opts {
	/** Time limit of one call, ms, beyond any long-poll wait it asks for.
	 * A call that runs out returns MQ_DEADLINE_EXCEEDED. Default 10000. */
	int32_t timeout_ms;
	/** How long mq_client_open() waits for the first connection, ms; 0 =
	 * return at once and connect in the background (calls made before the
	 * connection is up wait for it within their own timeout). Default 0. */
	int32_t connect_timeout_ms;
	/** Token sent with every request; a broker with authentication on
	 * answers MQ_UNAUTHENTICATED without a valid one and
	 * MQ_PERMISSION_DENIED outside its permissions (docs/security.md).
	 * NULL = none. Copied. Default NULL. */
	const char *auth_token;
	/* ---- TLS: used by tls+tcp:// URLs only (docs/security.md). The files
	 * are read by mq_client_open(); the strings are not kept. */
	/** PEM file of the CA certificate(s) the broker's certificate must
	 * chain to. Required for tls+tcp:// (there is no unverified mode). */
	const char *tls_ca_file;
	/** PEM client certificate and its key, for brokers that ask for one
	 * (mutual TLS); both or neither. Default NULL. */
	const char *tls_cert_file;
	const char *tls_key_file;
	/** Name the broker's certificate must carry; NULL = the URL's host.
	 * (Debian's nng uses mbed TLS 2.28, which matches DNS names only, not
	 * IP addresses: with tls+tcp://127.0.0.1:PORT set "localhost" or
	 * whatever DNS name the certificate holds.) */
	const char *tls_server_name;
	/** Reserved for future options; keep zero. */
	uint64_t reserved[8];
} mq_client_opts;

/** mq_client_opts_init sets every option of @p opts to its default. */
MQ_API void mq_client_opts_init(mq_client_opts *opts);

/**
 * mq_client_open creates a client for the broker at @p url.
 * @param[out] out   the new client, to close with mq_client_close()
 * @param[in]  url   nng URL: "tcp://127.0.0.1:7450", "ipc:///path/mq.sock"
 * @param[in]  opts  options, or NULL for the defaults
 * @return MQ_OK; MQ_INVALID_ARGUMENT for a bad URL or option; MQ_UNAVAILABLE
 *   when connect_timeout_ms > 0 and no connection came up in time;
 *   MQ_INTERNAL when out of memory or nng fails.
 * @note The client reconnects on its own when the broker restarts.
 */
MQ_API mq_status mq_client_open(mq_client **out, const char *url, const mq_client_opts *opts);

/**
 * mq_client_close closes the client and frees it. No synchronous call on it
 * may be in progress or follow. Asynchronous calls still in flight
 * (<mq/async.h>) are cancelled: each callback runs once, with MQ_CANCELLED
 * or its real result, before this returns; call mq_client_flush() first to
 * let them finish instead. When some were cancelled, the close then makes
 * one ping round trip (at most 2 s) so that no request is left half-sent
 * on the connection. NULL is fine.
 */
MQ_API void mq_client_close(mq_client *c);

/* ---- Messages ---------------------------------------------------------- */

/** A delivered message. Owned by the caller of mq_pull() until
 * mq_message_free(). */
typedef struct mq_message mq_message;

/** Dedup modes of mq_push_opts.dedup_mode. */
typedef enum mq_dedup_mode {
	/** Keep the job already holding the key; the push returns its id and
	 * sets *duplicate. */
	MQ_DEDUP_IGNORE = 0,
	/** Replace the payload and options of the waiting (not yet leased) job
	 * holding the key; the push returns its id and sets *duplicate. */
	MQ_DEDUP_REPLACE = 1,
	/** As MQ_DEDUP_REPLACE, and the job's not-before time becomes the later
	 * of its own and this push's (delay_ms or not_before_ms): a burst of
	 * pushes runs once, after the last one's delay (debounce). */
	MQ_DEDUP_DEBOUNCE = 2,
} mq_dedup_mode;

/** A message header (key, value), both NUL-terminated strings. */
typedef struct mq_header {
	const char *key;
	const char *value;
} mq_header;

/** Options of mq_push(); all-zero (or NULL) means the defaults. */
typedef struct mq_push_opts {
	/** Dedup key: while a job with this key is queued or leased, another
	 * push with it is a duplicate. NULL = no dedup. Default NULL. */
	const char *dedup_key;
	/** What a duplicate does. Default MQ_DEDUP_IGNORE. */
	mq_dedup_mode dedup_mode;
	/** Deliver no earlier than this many ms from now. Default 0. */
	uint64_t delay_ms;
	/** Higher is delivered first; FIFO within a priority. Default 0. */
	int32_t priority;
	/** Application message type, delivered with the message. NULL = none. */
	const char *type;
	/** Headers delivered with the message; n_headers entries. */
	const mq_header *headers;
	size_t n_headers;
	/** Ordering group (at most 128 bytes): at most one message of a group
	 * is leased at a time, and a group's messages are delivered in push
	 * order, whatever their priorities. NULL = none. Default NULL. */
	const char *group;
	/** Deliver no earlier than this unix time, ms; 0 = not set. Not with
	 * delay_ms (MQ_INVALID_ARGUMENT); a time past is ready now. Default 0. */
	uint64_t not_before_ms;
	/** Time to live, ms from the push: the message then goes dead with
	 * reason "expired" (the queue's max_age_ms applies too, whichever is
	 * sooner). 0 = the queue's only. Default 0. */
	uint64_t ttl_ms;
	/** Reserved for future options; keep zero. */
	uint64_t reserved[5];
} mq_push_opts;

/**
 * mq_push stores one message durably in @p queue: it returns MQ_OK only
 * after the broker has the message on disk.
 * @param[in]  payload,len  the message body; any bytes (len may be 0)
 * @param[in]  opts        options, or NULL for the defaults
 * @param[out] id          the message id (the existing job's for a
 *                         duplicate); may be NULL
 * @param[out] duplicate   set when the dedup key was already held; may be NULL
 * @return MQ_OK; MQ_INVALID_ARGUMENT (bad queue name, payload above the
 *   broker's limit); MQ_NOT_FOUND (no such queue and the broker does not
 *   create queues on push); MQ_RESOURCE_EXHAUSTED (storage full);
 *   MQ_DEADLINE_EXCEEDED; MQ_UNAVAILABLE.
 * @note A push whose reply was lost (timeout, broker crash) may or may not
 *   have been stored; push with a dedup key to make retries safe.
 */
MQ_API mq_status mq_push(mq_client *c, const char *queue, const void *payload, size_t len,
                         const mq_push_opts *opts, uint64_t *id, bool *duplicate);

/** MQ_PUSH_BATCH_MAX is the most messages one mq_push_batch() carries. */
#define MQ_PUSH_BATCH_MAX 1000

/** The outcome of one message of mq_push_batch(). */
typedef struct mq_push_result {
	mq_status status; /**< MQ_OK when stored */
	uint64_t id;      /**< the message id (the holder's for a duplicate) */
	bool duplicate;   /**< the dedup key was already held */
} mq_push_result;

/**
 * mq_push_batch stores @p n messages in @p queue with one request and one
 * durable commit on the broker: far cheaper per message than n mq_push()
 * calls. Each message succeeds or fails on its own.
 * @param[in]  n         1 to MQ_PUSH_BATCH_MAX
 * @param[in]  payloads  n bodies; lens gives their lengths
 * @param[in]  opts      NULL for the defaults, or an array of n options
 * @param[out] results   NULL, or an array of n results, written whenever
 *                       the broker answered (also when some failed)
 * @return MQ_OK when every message was stored; else the first failing
 *   message's status (its message in mq_errmsg()), or the request's own
 *   failure (MQ_INVALID_ARGUMENT, MQ_DEADLINE_EXCEEDED, MQ_UNAVAILABLE...).
 */
MQ_API mq_status mq_push_batch(mq_client *c, const char *queue, size_t n,
                               const void *const *payloads, const size_t *lens,
                               const mq_push_opts *opts, mq_push_result *results);

/** Flags of mq_push_batch_ex(). */
#define MQ_PUSH_ATOMIC 1u /**< all or nothing */

/**
 * mq_push_batch_ex is mq_push_batch() with @p flags. With MQ_PUSH_ATOMIC
 * the batch is all or nothing: when any message fails (validation, a queue
 * limit, a missing queue) none is stored; each failing message's result has
 * its own status, every other one MQ_ABORTED, and the return value is the
 * first failure's status (its reason in mq_errmsg()).
 */
MQ_API mq_status mq_push_batch_ex(mq_client *c, const char *queue, size_t n,
                                  const void *const *payloads, const size_t *lens,
                                  const mq_push_opts *opts, uint32_t flags,
                                  mq_push_result *results);

/** Options of mq_pull(); all-zero (or NULL) means the defaults. */
typedef struct mq_pull_opts {
	/** Long polling: when no message is ready, wait up to this many ms for
	 * one. Default 0 (return at once). */
	uint32_t wait_ms;
	/** Lease time of the pulled messages, ms. Default 0 = the queue's. */
	uint32_t lease_ms;
	/** Reserved for future options; keep zero. */
	uint64_t reserved[8];
} mq_pull_opts;

/**
 * mq_pull leases up to @p max messages from @p queue. Each is invisible to
 * other consumers until it is acked, nacked, or its lease ends.
 * @param[out] msgs  an array of at least @p max pointers; the first *n are
 *                   set to messages owned by the caller (mq_message_free)
 * @param[in]  max   1 to 1000
 * @param[out] n     how many messages were leased (0 when none were ready
 *                   within opts->wait_ms)
 * @return MQ_OK (also when *n == 0); MQ_INVALID_ARGUMENT; MQ_NOT_FOUND (no
 *   such queue, when the broker does not create queues on push);
 *   MQ_DEADLINE_EXCEEDED; MQ_UNAVAILABLE.
 */
MQ_API mq_status mq_pull(mq_client *c, const char *queue, const mq_pull_opts *opts,
                         mq_message **msgs, size_t max, size_t *n);

/** mq_message_free frees a message. NULL is fine. */
MQ_API void mq_message_free(mq_message *m);

/** mq_message_id returns the message's id. */
MQ_API uint64_t mq_message_id(const mq_message *m);
/** mq_message_queue returns the queue name (borrowed from @p m). */
MQ_API const char *mq_message_queue(const mq_message *m);
/** mq_message_payload returns the body (borrowed from @p m) and its length
 * in *len (len may be NULL). The body is followed by a NUL byte that is not
 * counted, so text payloads can be used as C strings. */
MQ_API const void *mq_message_payload(const mq_message *m, size_t *len);
/** mq_message_attempts returns the delivery count, this delivery included. */
MQ_API uint32_t mq_message_attempts(const mq_message *m);
/** mq_message_lease_token returns the token that proves this lease. */
MQ_API uint64_t mq_message_lease_token(const mq_message *m);
/** mq_message_lease_expiry_ms returns when the lease ends, unix ms. */
MQ_API uint64_t mq_message_lease_expiry_ms(const mq_message *m);
/** mq_message_enqueued_ms returns when the message was pushed, unix ms. */
MQ_API uint64_t mq_message_enqueued_ms(const mq_message *m);
/** mq_message_priority returns the message's priority. */
MQ_API int32_t mq_message_priority(const mq_message *m);
/** mq_message_dedup_key returns the dedup key, "" when none (borrowed). */
MQ_API const char *mq_message_dedup_key(const mq_message *m);
/** mq_message_type returns the type name, "" when none (borrowed). */
MQ_API const char *mq_message_type(const mq_message *m);
/** mq_message_group returns the ordering group, "" when none (borrowed). */
MQ_API const char *mq_message_group(const mq_message *m);
/** mq_message_expires_ms returns when the message expires (TTL), unix ms;
 * 0 = never. */
MQ_API uint64_t mq_message_expires_ms(const mq_message *m);
/** mq_message_header_count returns the number of headers. */
MQ_API size_t mq_message_header_count(const mq_message *m);
/** mq_message_header returns header @p i (0-based; borrowed), or
 * {NULL, NULL} when i is out of range. */
MQ_API mq_header mq_message_header(const mq_message *m, size_t i);

/**
 * mq_ack acknowledges a leased message: the broker deletes it.
 * @return MQ_OK; MQ_FAILED_PRECONDITION when the lease is no longer this
 *   one (it expired and the message may have gone to another consumer);
 *   MQ_NOT_FOUND when the message no longer exists.
 */
MQ_API mq_status mq_ack(mq_client *c, const mq_message *m);

/**
 * mq_nack gives a leased message back: it is ready again now, or after
 * @p delay_ms. The delivery counts as an attempt: a message that reached
 * its queue's max attempts goes dead instead.
 * @param[in] error  why the handler failed, kept with the message; may be NULL
 * @return as mq_ack().
 */
MQ_API mq_status mq_nack(mq_client *c, const mq_message *m, uint64_t delay_ms, const char *error);

/**
 * mq_extend_lease makes the lease of @p m end @p lease_ms from now
 * (0 = the queue's lease time). On success the message's lease expiry is
 * updated (mq_message_lease_expiry_ms).
 * @return as mq_ack().
 */
MQ_API mq_status mq_extend_lease(mq_client *c, mq_message *m, uint32_t lease_ms);

/**
 * mq_snooze gives a leased message back for @p delay_ms (0 = ready at once)
 * without spending an attempt: its attempt count is as before this
 * delivery, nothing is added to its history, and it is not counted as a
 * nack. A group's head stays its group's head.
 * @return as mq_ack().
 */
MQ_API mq_status mq_snooze(mq_client *c, const mq_message *m, uint64_t delay_ms);
/** mq_snooze_id is mq_snooze() by queue, id and lease token. */
MQ_API mq_status mq_snooze_id(mq_client *c, const char *queue, uint64_t id, uint64_t token,
                              uint64_t delay_ms);

/** mq_ack_id is mq_ack() by queue, id and lease token. */
MQ_API mq_status mq_ack_id(mq_client *c, const char *queue, uint64_t id, uint64_t token);
/** mq_nack_id is mq_nack() by queue, id and lease token. */
MQ_API mq_status mq_nack_id(mq_client *c, const char *queue, uint64_t id, uint64_t token,
                            uint64_t delay_ms, const char *error);
/** mq_extend_lease_id is mq_extend_lease() by queue, id and lease token;
 * @p expiry_ms (may be NULL) receives the new lease end, unix ms. */
MQ_API mq_status mq_extend_lease_id(mq_client *c, const char *queue, uint64_t id, uint64_t token,
                                    uint32_t lease_ms, uint64_t *expiry_ms);

/* ---- Batch ack / nack / extend ------------------------------------------ */

/** MQ_LEASE_BATCH_MAX is the most leases one batch call names. */
#define MQ_LEASE_BATCH_MAX 1000

/** A lease: message id and lease token (as pulled). */
typedef struct mq_lease_ref {
	uint64_t id;
	uint64_t token;
} mq_lease_ref;

/** The outcome of one lease of a batch call. */
typedef struct mq_lease_result {
	mq_status status;         /**< MQ_OK, or as mq_ack() would answer alone */
	uint64_t lease_expiry_ms; /**< mq_extend_batch(): the new lease end */
} mq_lease_result;

/**
 * mq_ack_batch acknowledges @p n leases of @p queue in one request and one
 * commit. Each lease succeeds or fails on its own, exactly as mq_ack_id()
 * would (a stale token is MQ_FAILED_PRECONDITION for that one only).
 * @param[in]  n        1 to MQ_LEASE_BATCH_MAX
 * @param[out] results  NULL, or an array of n results, written whenever the
 *                      broker answered (also when some failed)
 * @return MQ_OK when every lease succeeded; else the first failing lease's
 *   status (its reason in mq_errmsg()), or the request's own failure.
 */
MQ_API mq_status mq_ack_batch(mq_client *c, const char *queue, const mq_lease_ref *items, size_t n,
                              mq_lease_result *results);
/** mq_nack_batch is mq_nack_id() for n leases, with one delay and error for
 * all; results and return value as mq_ack_batch(). */
MQ_API mq_status mq_nack_batch(mq_client *c, const char *queue, const mq_lease_ref *items, size_t n,
                               uint64_t delay_ms, const char *error, mq_lease_result *results);
/** mq_extend_batch is mq_extend_lease_id() for n leases, one lease time for
 * all; each result's lease_expiry_ms gets the new end. Results and return
 * value as mq_ack_batch(). */
MQ_API mq_status mq_extend_batch(mq_client *c, const char *queue, const mq_lease_ref *items,
                                 size_t n, uint32_t lease_ms, mq_lease_result *results);

/**
 * mq_term fails a leased message for good: it goes dead at once, whatever
 * its attempts, with the dead reason "termed: <reason>" (see
 * mq_message_dead_reason()). Use it for a message that can never succeed
 * (a malformed payload); use mq_nack() for one that may succeed later.
 * @param[in] reason  why, kept with the message; may be NULL; at most
 *                    1024 bytes
 * @return as mq_ack(); MQ_INVALID_ARGUMENT for a longer reason.
 */
MQ_API mq_status mq_term(mq_client *c, const mq_message *m, const char *reason);
/** mq_term_id is mq_term() by queue, id and lease token. */
MQ_API mq_status mq_term_id(mq_client *c, const char *queue, uint64_t id, uint64_t token,
                            const char *reason);

/* ---- Inspecting messages ------------------------------------------------ */

/** How a delivery attempt failed (mq_attempt.outcome). */
typedef enum mq_attempt_outcome {
	MQ_ATTEMPT_UNKNOWN = 0, /**< from a newer broker */
	MQ_ATTEMPT_NACKED = 1,  /**< the consumer nacked it */
	MQ_ATTEMPT_EXPIRED = 2, /**< the lease ran out */
	MQ_ATTEMPT_TERMED = 3,  /**< the consumer termed it (mq_term) */
} mq_attempt_outcome;

/** One failed attempt of a message; error is borrowed from the message. */
typedef struct mq_attempt {
	uint64_t time_ms; /**< when it failed, unix ms */
	mq_attempt_outcome outcome;
	const char *error; /**< the consumer's error, "" when none */
} mq_attempt;

/** mq_message_state returns the message's state as one MQ_STATE_* bit
 * (MQ_STATE_LEASED for a pulled message); 0 when unknown. */
MQ_API uint32_t mq_message_state(const mq_message *m);
/** mq_message_dead_reason returns why a dead message died, e.g.
 * "max attempts reached (5)" or "termed: bad input"; "" unless the message
 * came from mq_message_get() or mq_message_list() and is dead (borrowed). */
MQ_API const char *mq_message_dead_reason(const mq_message *m);
/** mq_message_last_error returns the error of the last nack or term, ""
 * when none or for a pulled message (borrowed). */
MQ_API const char *mq_message_last_error(const mq_message *m);
/** mq_message_not_before_ms returns when a delayed message gets ready,
 * unix ms; 0 unless delayed (and for a pulled message). */
MQ_API uint64_t mq_message_not_before_ms(const mq_message *m);
/** mq_message_history_count returns how many failed attempts the message
 * keeps (the last 8 at most); 0 for a pulled message. */
MQ_API size_t mq_message_history_count(const mq_message *m);
/** mq_message_history returns failed attempt @p i, oldest first (0-based;
 * its error is borrowed from @p m), or a zeroed entry with error "" when
 * i is out of range. */
MQ_API mq_attempt mq_message_history(const mq_message *m, size_t i);

/** Options of mq_message_list(); a NULL pointer means all zero. */
typedef struct mq_list_opts {
	uint32_t state;       /**< one MQ_STATE_* bit; 0 = every state */
	uint64_t after_id;    /**< list ids above this one; 0 = from the first */
	uint64_t reserved[8]; /**< reserved for future options; keep zero */
} mq_list_opts;

/**
 * mq_message_list reads up to @p max messages of @p queue in id order
 * without leasing them (state, attempts, dead reason and history
 * included). Page with opts->after_id = *next_after while *more.
 * @param[out] msgs        receives up to @p max messages, each owned by the
 *                         caller (free each with mq_message_free())
 * @param[in]  max         1 to 1000
 * @param[out] n           how many were stored in msgs
 * @param[out] next_after  (may be NULL) the after_id of the next page
 * @param[out] more        (may be NULL) whether more may follow; a page can
 *                         be short (large payloads) and still have more
 * @return MQ_OK; MQ_INVALID_ARGUMENT; MQ_NOT_FOUND (no such queue).
 */
MQ_API mq_status mq_message_list(mq_client *c, const char *queue, const mq_list_opts *opts,
                                 mq_message **msgs, size_t max, size_t *n, uint64_t *next_after,
                                 bool *more);

/**
 * mq_message_get reads message @p id of @p queue without leasing it.
 * @param[out] out  the message, owned by the caller (mq_message_free())
 * @return MQ_OK; MQ_NOT_FOUND (no such queue or message).
 */
MQ_API mq_status mq_message_get(mq_client *c, const char *queue, uint64_t id, mq_message **out);

/**
 * mq_message_delete deletes message @p id of @p queue in any state and
 * frees its dedup key; a consumer holding its lease then gets MQ_NOT_FOUND
 * from mq_ack().
 * @param[out] state  (may be NULL) the MQ_STATE_* bit it had
 * @return MQ_OK; MQ_NOT_FOUND (no such queue or message).
 */
MQ_API mq_status mq_message_delete(mq_client *c, const char *queue, uint64_t id, uint32_t *state);

/** MQ_REDRIVE_MAX is the most messages one mq_redrive() call moves. */
#define MQ_REDRIVE_MAX 10000

/**
 * mq_redrive moves dead messages of @p queue back to ready: attempts reset
 * to 0, dead reason cleared, history kept.
 * @param[in]  ids       the messages to move (each must be dead, else none
 *                       moves: MQ_NOT_FOUND or MQ_FAILED_PRECONDITION), at
 *                       most MQ_REDRIVE_MAX; NULL/0 = the oldest dead
 *                       messages, at most MQ_REDRIVE_MAX per call
 * @param[in]  to_queue  where they go; NULL or "" = @p queue. Created if
 *                       missing when the broker creates queues on push.
 * @param[out] moved     (may be NULL) how many moved
 * @param[out] more      (may be NULL) dead messages remain (all-dead mode):
 *                       call again
 * A message's dedup key is taken again when free in the target queue,
 * else dropped from the message.
 * @return MQ_OK; MQ_INVALID_ARGUMENT; MQ_NOT_FOUND; MQ_FAILED_PRECONDITION.
 */
MQ_API mq_status mq_redrive(mq_client *c, const char *queue, const uint64_t *ids, size_t n_ids,
                            const char *to_queue, uint64_t *moved, bool *more);

/** Options of mq_redrive_ex(); a NULL pointer means all zero. */
typedef struct mq_redrive_opts {
	/** Exactly these dead messages (as mq_redrive()); NULL/0 = a scan of
	 * the dead messages in id order, filtered by the fields below. */
	const uint64_t *ids;
	size_t n_ids;
	/** Where they go: NULL or "" = each message's origin queue when it was
	 * dead-lettered from another queue (see docs/semantics.md), else
	 * @p queue. */
	const char *to_queue;
	/** Move at most this many in this call; 0 = MQ_REDRIVE_MAX. */
	uint32_t max;
	/** Only ids above this one (resume with *next_after). */
	uint64_t after_id;
	/** Only messages whose dead reason starts with this; NULL/"" = any. */
	const char *reason_prefix;
	/** Only messages of this type; NULL/"" = any. */
	const char *type;
	/** Only messages that went dead at or after this unix ms (the time of
	 * their last failed attempt); 0 = any. */
	uint64_t dead_since_ms;
	uint64_t reserved[8]; /**< keep zero */
} mq_redrive_opts;

/**
 * mq_redrive_ex moves dead messages of @p queue back to ready, by ids or by
 * filter, at most opts->max per call. All or nothing per call. A filtered
 * call reads at most 100000 dead messages; page with opts->after_id =
 * *next_after while *more. For a rate (N per second) call it with max = N
 * once a second (mqctl dead redrive --rate does).
 * @param[out] moved, more, next_after  (each may be NULL)
 * @return MQ_OK; MQ_INVALID_ARGUMENT; MQ_NOT_FOUND; MQ_FAILED_PRECONDITION.
 */
MQ_API mq_status mq_redrive_ex(mq_client *c, const char *queue, const mq_redrive_opts *opts,
                               uint64_t *moved, bool *more, uint64_t *next_after);

/* ---- Queues ------------------------------------------------------------ */

/** Queue configuration; 0 in a field means the broker's default. */
typedef struct mq_queue_config {
	uint32_t lease_ms;     /**< default lease time of a pull */
	uint32_t max_attempts; /**< deliveries before a message goes dead */
	/** Backoff of a nack without delay: the message waits
	 * min(retry_base_ms * 2^(attempts-1), retry_max_ms) ms, +-20% jitter.
	 * 0 = no backoff (ready again at once). At most 24 h. */
	uint32_t retry_base_ms;
	/** Cap of that backoff (0 = 24 h); >= retry_base_ms when set. */
	uint32_t retry_max_ms;
	/** Messages (ready + delayed + leased) beyond which a push fails with
	 * MQ_RESOURCE_EXHAUSTED; 0 = unlimited. Dead messages do not count. */
	uint64_t max_length;
	/** Message TTL: older messages go dead with reason "expired"; 0 = none.
	 * At most 366 days. */
	uint64_t max_age_ms;
	/** At most this many messages handed out per second; 0 = no limit. */
	uint32_t rate_limit;
	/** How long a dedup key is held (mq_dedup_scope). */
	uint32_t dedup_scope;
	/** MQ_DEDUP_SCOPE_WINDOW: how long after the ack; 0 = 5 min. */
	uint64_t dedup_window_ms;
	/** Queue that receives this queue's dead messages; "" = they stay. */
	char dead_letter_queue[MQ_NAME_MAX + 1];
	uint64_t reserved[4]; /**< keep zero */
} mq_queue_config;

/** How long a dedup key is held by the job that pushed it
 * (mq_queue_config.dedup_scope). */
typedef enum mq_dedup_scope {
	MQ_DEDUP_SCOPE_ACKED = 0,   /**< while it waits or is leased (default) */
	MQ_DEDUP_SCOPE_WAITING = 1, /**< only while it waits (ready or delayed) */
	MQ_DEDUP_SCOPE_WINDOW = 2,  /**< until acked, then dedup_window_ms more */
} mq_dedup_scope;

/** Queue counters: current depths and totals since creation. */
typedef struct mq_queue_stats {
	uint64_t ready, delayed, in_flight, dead;
	uint64_t pushed_total, acked_total, nacked_total, expired_total;
	uint64_t deduplicated_total, dead_total;
	uint64_t redriven_total;      /**< dead messages moved back by redrive */
	uint64_t oldest_ready_age_ms; /**< age of the oldest ready message; 0 = none */
	uint64_t reserved[6];
} mq_queue_stats;

/** A queue's name, config and stats (plain data, owned by the caller). */
typedef struct mq_queue_info {
	char name[MQ_NAME_MAX + 1];
	mq_queue_config config;
	mq_queue_stats stats;
	uint64_t created_ms; /**< unix ms */
	bool paused;         /**< pushes accepted, nothing handed out */
} mq_queue_info;

/**
 * mq_queue_create creates a queue.
 * @param[in]  cfg            config, or NULL for the defaults
 * @param[in]  if_not_exists  succeed (with *created = false) when it exists
 * @param[out] created        may be NULL
 * @return MQ_OK; MQ_ALREADY_EXISTS; MQ_INVALID_ARGUMENT (bad name).
 */
MQ_API mq_status mq_queue_create(mq_client *c, const char *name, const mq_queue_config *cfg,
                                 bool if_not_exists, bool *created);

/** Fields of mq_queue_config, for mq_queue_update()'s mask. */
#define MQ_QCFG_LEASE_MS          (1u << 0)
#define MQ_QCFG_MAX_ATTEMPTS      (1u << 1)
#define MQ_QCFG_RETRY_BASE_MS     (1u << 2)
#define MQ_QCFG_RETRY_MAX_MS      (1u << 3)
#define MQ_QCFG_MAX_LENGTH        (1u << 4)
#define MQ_QCFG_MAX_AGE_MS        (1u << 5)
#define MQ_QCFG_RATE_LIMIT        (1u << 6)
#define MQ_QCFG_DEDUP_SCOPE       (1u << 7)
#define MQ_QCFG_DEDUP_WINDOW_MS   (1u << 8)
#define MQ_QCFG_DEAD_LETTER_QUEUE (1u << 9)

/**
 * mq_queue_update changes the fields of a queue's config named by
 * @p fields (MQ_QCFG_* bits) to their values in @p cfg; the others keep
 * theirs (a field named with value 0 goes back to the default). Messages
 * already stored keep what was decided for them (a not-before time, a
 * lease); new values apply to their later transitions.
 * @param[out] info  the queue after the change; may be NULL
 * @return MQ_OK; MQ_NOT_FOUND; MQ_INVALID_ARGUMENT (no field, a bad value:
 *         the queue is unchanged).
 */
MQ_API mq_status mq_queue_update(mq_client *c, const char *name, const mq_queue_config *cfg,
                                 uint32_t fields, mq_queue_info *info);

/**
 * mq_queue_pause stops a queue handing out messages: pushes, acks, nacks
 * and admin calls go on, pulls get nothing (long polls wait).
 * mq_queue_resume undoes it and wakes waiting consumers. Both are
 * idempotent and survive a broker restart.
 * @param[out] info  the queue after the change; may be NULL
 * @return MQ_OK; MQ_NOT_FOUND; MQ_INVALID_ARGUMENT.
 */
MQ_API mq_status mq_queue_pause(mq_client *c, const char *name, mq_queue_info *info);
/** See mq_queue_pause(). */
MQ_API mq_status mq_queue_resume(mq_client *c, const char *name, mq_queue_info *info);

/** mq_queue_get reads a queue's config and stats into @p info.
 * @return MQ_OK; MQ_NOT_FOUND; MQ_INVALID_ARGUMENT. */
MQ_API mq_status mq_queue_get(mq_client *c, const char *name, mq_queue_info *info);

/**
 * mq_queue_list lists all queues in name order.
 * @param[out] infos  an array allocated by the library, to free with
 *                    mq_queue_list_free()
 * @param[out] n      number of entries
 */
MQ_API mq_status mq_queue_list(mq_client *c, mq_queue_info **infos, size_t *n);

/** mq_queue_list_free frees an array from mq_queue_list(). NULL is fine. */
MQ_API void mq_queue_list_free(mq_queue_info *infos);

/** Message states, for mq_queue_purge() masks. */
#define MQ_STATE_READY   (1u << 0)
#define MQ_STATE_DELAYED (1u << 1)
#define MQ_STATE_LEASED  (1u << 2)
#define MQ_STATE_DEAD    (1u << 3)
#define MQ_STATE_ALL     0xfu

/**
 * mq_queue_purge deletes the queue's messages in the states of
 * @p state_mask (MQ_STATE_*; 0 = all).
 * @param[out] purged  how many were deleted; may be NULL
 */
MQ_API mq_status mq_queue_purge(mq_client *c, const char *name, uint32_t state_mask,
                                uint64_t *purged);

/** Options of mq_queue_purge_ex(); a NULL pointer means all zero. */
typedef struct mq_purge_opts {
	/** MQ_STATE_* bits of the messages to delete; 0 = all states. */
	uint32_t state_mask;
	/** Delete at most this many in this call (one short transaction);
	 * 0 = all of them in one call and one transaction. */
	uint32_t max;
	/** Where this step starts: 0 for the first, then the *next_cursor of
	 * the previous step. Opaque. */
	uint64_t cursor;
	uint64_t reserved[6]; /**< keep zero */
} mq_purge_opts;

/**
 * mq_queue_purge_ex is one bounded step of a purge, for queues too large to
 * purge in one transaction (mqctl queue purge steps 10000 at a time and
 * draws a progress bar). Loop while *more, passing *next_cursor back as
 * opts->cursor. Each step is durable on its own; a message that changes
 * state while a purge is under way may be missed or deleted by the step
 * that meets it.
 * @param[out] purged       (may be NULL) how many this step deleted
 * @param[out] more         (may be NULL) messages may remain: call again
 * @param[out] next_cursor  (may be NULL) opts->cursor for the next step
 * @return MQ_OK; MQ_INVALID_ARGUMENT; MQ_NOT_FOUND (no such queue).
 */
MQ_API mq_status mq_queue_purge_ex(mq_client *c, const char *name, const mq_purge_opts *opts,
                                   uint64_t *purged, bool *more, uint64_t *next_cursor);

/** mq_queue_delete deletes a queue and all its messages.
 * @return MQ_OK; MQ_NOT_FOUND. */
MQ_API mq_status mq_queue_delete(mq_client *c, const char *name);

/* ---- Server ------------------------------------------------------------ */

/** mq_ping checks the broker answers; *now_ms (may be NULL) gets its clock. */
MQ_API mq_status mq_ping(mq_client *c, uint64_t *now_ms);

/** What the broker says about itself (plain data). */
typedef struct mq_server_info {
	char version[32];
	uint32_t protocol_version;
	char storage_engine[32]; /**< "lmdb", "memory" */
	char durability[32];     /**< "durable", "relaxed", "none" */
	uint64_t uptime_ms;
	uint64_t max_payload_bytes;
	uint64_t now_ms;
	bool auto_create_queues;
	uint32_t default_lease_ms;
	uint32_t default_max_attempts;
	uint64_t reserved[8];
} mq_server_info;

/** mq_server_info_get reads the broker's ServerInfo into @p info. */
MQ_API mq_status mq_server_info_get(mq_client *c, mq_server_info *info);

/* ---- Backup (docs/backup.md) -------------------------------------------- */

/** mq_backup_progress_fn is told how many of the backup's @p total bytes
 * are written so far: once with 0 when the broker's copy is ready, then
 * after each chunk. It runs on the thread calling mq_backup. */
typedef void (*mq_backup_progress_fn)(void *arg, uint64_t done, uint64_t total);

/** Options of mq_backup; zeroed = the defaults. */
typedef struct mq_backup_opts {
	/** How long the broker may take to make its copy (before the first
	 * byte comes), ms; 0 = 1 hour. Added to the client's timeout_ms. */
	uint32_t copy_timeout_ms;
	/** Bytes asked per BackupRead; 0 = 1 MiB (the most). */
	uint32_t chunk_bytes;
	mq_backup_progress_fn progress; /**< NULL = none */
	void *progress_arg;
	uint64_t reserved[4];
} mq_backup_opts;

/** What mq_backup wrote (plain data). */
typedef struct mq_backup_info {
	uint64_t size;           /**< bytes written to the fd */
	uint32_t schema_version; /**< storage schema of the copy */
	uint64_t created_ms;     /**< unix ms of the copy's snapshot */
	uint8_t checksum[32];    /**< BLAKE2b-256 of the bytes written, verified */
	uint64_t reserved[4];
} mq_backup_info;

/** mq_backup takes a hot backup of the broker's whole store and writes it
 * to @p fd. The broker makes a consistent, compacted copy (LMDB's hot copy:
 * every push acknowledged before the call is in it) while it goes on
 * serving, then the copy is streamed in chunks, and its BLAKE2b-256
 * checksum is verified over every byte written; the broker's temporary
 * file is deleted before this returns, whatever the outcome. The file is
 * restored with `mqd --restore FILE` (docs/backup.md).
 *
 * Ownership: @p fd stays the caller's: it is written with write(2) from its
 * current position, neither synced nor closed. On failure it may hold part
 * of a backup: discard it (mqctl writes FILE.tmp and renames it only after
 * success and fsync). Needs the admin permission on "*" when the broker
 * uses tokens.
 * @param opts NULL = defaults
 * @param info may be NULL
 * @return MQ_OK; MQ_UNIMPLEMENTED (the broker's memory engine);
 *   MQ_RESOURCE_EXHAUSTED (another backup is in progress); MQ_DATA_LOSS
 *   (checksum or length mismatch); MQ_INTERNAL with errno's text when
 *   writing to @p fd fails; the broker's and transport errors. */
MQ_API mq_status mq_backup(mq_client *c, int fd, const mq_backup_opts *opts, mq_backup_info *info);

/* ---- Consumer runtime -------------------------------------------------- */

/*
 * A consumer runs handlers on messages pulled from one or more queues: a
 * fetcher thread pulls in batches with long polling, N worker threads run
 * the handlers, and a heartbeat thread extends the leases of handlers that
 * run long. Each handler's outcome becomes an ack or a nack. It is built on
 * mq_pull(), mq_ack(), mq_nack() and mq_extend_lease_id(), so delivery stays
 * at least once: handlers must be idempotent.
 */

/** A running set of handlers over a client; see mq_consumer_open(). */
typedef struct mq_consumer mq_consumer;

/** What a handler decided about its message. */
typedef enum mq_outcome {
	/** Done: the message is acked (deleted). */
	MQ_OUTCOME_DONE = 0,
	/** Try again: the message is nacked with mq_result.delay_ms and
	 * mq_result.error; the queue's max_attempts still applies. */
	MQ_OUTCOME_RETRY = 1,
	/** Failed for good: the message is termed (mq_term), so it goes dead
	 * at once with mq_result.error as its reason; no retry. */
	MQ_OUTCOME_FAIL = 2,
	/** Not now: the message is snoozed (mq_snooze) for mq_result.delay_ms
	 * without spending an attempt. */
	MQ_OUTCOME_SNOOZE = 3,
} mq_outcome;

/** MQ_RESULT_ERROR_MAX is the size of mq_result.error, NUL included. */
#define MQ_RESULT_ERROR_MAX 256

/** What a handler may add to its outcome. Zeroed before each handler call;
 * owned by the consumer. */
typedef struct mq_result {
	/** RETRY, SNOOZE: deliver again no earlier than this many ms from now. */
	uint64_t delay_ms;
	/** RETRY, FAIL: why, kept with the message (NUL-terminated; "" =
	 * none). Write it with e.g. snprintf(r->error, sizeof(r->error), ...). */
	char error[MQ_RESULT_ERROR_MAX];
	/** Reserved; ignored. */
	uint64_t reserved[4];
} mq_result;

/**
 * mq_handler_fn processes one message. It runs on a worker thread of the
 * consumer, possibly at the same time as other handlers (including itself
 * on other messages).
 * @param[in]  arg  the arg given at registration
 * @param[in]  m    the message, borrowed: valid only during the call; the
 *                  consumer acks or nacks it after the handler returns. Do
 *                  not ack, nack or extend it yourself. Its lease expiry
 *                  (mq_message_lease_expiry_ms) is the one it was pulled with:
 *                  heartbeat extensions do not update it.
 * @param[out] r    optional delay and error for RETRY and FAIL
 * @return what to do with the message.
 */
typedef mq_outcome (*mq_handler_fn)(void *arg, const mq_message *m, mq_result *r);

/**
 * mq_consumer_error_fn reports a failure of the runtime itself (a pull, ack,
 * nack or extend that failed; a handler that ran over max_processing_ms).
 * It runs on the consumer's threads, possibly from several at once: it must
 * be thread-safe and quick. @p msg is valid only during the call.
 */
typedef void (*mq_consumer_error_fn)(void *arg, mq_status st, const char *msg);

/** Options of mq_consumer_open(); initialise with mq_consumer_opts_init(). */
typedef struct mq_consumer_opts {
	/** Queues to consume from, n_queues (1 to 64) names. Copied. The
	 * fetcher pulls from each in turn. Required. */
	const char *const *queues;
	size_t n_queues;
	/** Worker threads, i.e. handlers running at once; 1 to 256. Default 4. */
	uint32_t workers;
	/** Messages leased but not yet started, at most; -1 = as many as
	 * workers. 0 to 1000. The consumer never holds more than workers +
	 * prefetch leases at once. Default -1. */
	int32_t prefetch;
	/** Lease time asked for on each pull and extension, ms; 0 = the queue's.
	 * Default 0. */
	uint32_t lease_ms;
	/** Long-poll wait of one pull, ms. Default 5000. */
	uint32_t wait_ms;
	/** Extend the lease of a running handler when a third of it remains.
	 * Default true. */
	bool heartbeat;
	/** Stop extending a handler's lease once it has run this long, ms, so a
	 * stuck handler's message goes back to the queue; 0 = extend for as long
	 * as it runs. Default 900000 (15 min). */
	uint32_t max_processing_ms;
	/** Called on runtime failures (see mq_consumer_error_fn); NULL = none.
	 * Default NULL. */
	mq_consumer_error_fn on_error;
	void *on_error_arg;
	/** Reserved for future options; keep zero. */
	uint64_t reserved[8];
} mq_consumer_opts;

/** mq_consumer_opts_init sets every option of @p opts to its default (no
 * queues). */
MQ_API void mq_consumer_opts_init(mq_consumer_opts *opts);

/**
 * mq_consumer_open creates a consumer over @p c. Nothing runs until
 * mq_consumer_start().
 * @param[out] out   the new consumer, to close with mq_consumer_close()
 * @param[in]  c     the client, still owned by the caller; it must outlive
 *                   the consumer (close the consumer first)
 * @param[in]  opts  options; queues are required
 * @return MQ_OK; MQ_INVALID_ARGUMENT (no queues, a bad queue name, an option
 *   out of range); MQ_INTERNAL when out of memory.
 */
MQ_API mq_status mq_consumer_open(mq_consumer **out, mq_client *c, const mq_consumer_opts *opts);

/**
 * mq_consumer_handle registers @p fn for messages whose mq_message_type()
 * is @p type ("" for messages without a type). Only before
 * mq_consumer_start().
 * @param[in] type  copied
 * @param[in] arg   passed to fn; owned by the caller, must outlive the
 *                  consumer's run
 * @return MQ_OK; MQ_INVALID_ARGUMENT (NULL argument); MQ_ALREADY_EXISTS (a
 *   handler for the type is registered); MQ_FAILED_PRECONDITION (started);
 *   MQ_INTERNAL when out of memory.
 */
MQ_API mq_status mq_consumer_handle(mq_consumer *cons, const char *type, mq_handler_fn fn,
                                    void *arg);

/**
 * mq_consumer_handle_default registers @p fn for messages whose type has no
 * handler (replacing any earlier default). Without a default such messages
 * are nacked with the error "no handler for type X" and counted as failed.
 * Only before mq_consumer_start().
 * @return MQ_OK; MQ_INVALID_ARGUMENT; MQ_FAILED_PRECONDITION (started).
 */
MQ_API mq_status mq_consumer_handle_default(mq_consumer *cons, mq_handler_fn fn, void *arg);

/**
 * mq_consumer_start starts the fetcher, worker and heartbeat threads and
 * returns. A consumer starts at most once.
 * @return MQ_OK; MQ_FAILED_PRECONDITION (already started); MQ_INTERNAL
 *   (threads could not be created; nothing is left running).
 */
MQ_API mq_status mq_consumer_start(mq_consumer *cons);

/** MQ_CONSUMER_NO_DEADLINE makes mq_consumer_stop() wait for every running
 * handler however long it takes. */
#define MQ_CONSUMER_NO_DEADLINE UINT32_MAX

/**
 * mq_consumer_stop stops pulling, nacks (delay 0, so they are ready again
 * at once) the messages that were leased but not started, and waits up to
 * @p deadline_ms for running handlers to finish (their outcomes are acked
 * or nacked as usual, and their leases kept extended meanwhile). It also
 * waits for a pull in flight (at most min(wait_ms, 1000) ms plus the
 * client's timeout), whose messages are nacked too. Idempotent; a no-op on
 * a consumer never started.
 * @return MQ_OK when no handler is running any more; MQ_DEADLINE_EXCEEDED
 *   when some still were at the deadline: they keep running and their
 *   outcome is still sent, but their leases are no longer extended (the
 *   message may be delivered again elsewhere); mq_consumer_close() waits for
 *   them.
 * @note Not from a handler, nor at the same time as another stop or close
 *   of the same consumer.
 */
MQ_API mq_status mq_consumer_stop(mq_consumer *cons, uint32_t deadline_ms);

/**
 * mq_consumer_close stops the consumer if needed (as mq_consumer_stop() with
 * MQ_CONSUMER_NO_DEADLINE: it waits for running handlers), joins its
 * threads and frees it. Not from a handler. The client is left open. NULL
 * is fine.
 */
MQ_API void mq_consumer_close(mq_consumer *cons);

/** Counters of a consumer since it was opened (plain data). */
typedef struct mq_consumer_stats {
	uint64_t received;    /**< messages leased by the fetcher */
	uint64_t acked;       /**< DONE outcomes acked */
	uint64_t retried;     /**< RETRY outcomes nacked */
	uint64_t failed;      /**< FAIL outcomes and unhandled types, nacked */
	uint64_t extended;    /**< successful lease extensions */
	uint64_t errors;      /**< failures reported through on_error */
	uint64_t in_progress; /**< handlers running now */
	uint64_t snoozed;     /**< SNOOZE outcomes given back */
	uint64_t reserved[7];
} mq_consumer_stats;

/** mq_consumer_stats reads the counters into @p out (each read atomically;
 * the set is not one snapshot). Safe from any thread. */
MQ_API void mq_consumer_stats_get(const mq_consumer *cons, mq_consumer_stats *out);

#include "mq/async.h"
#include "mq/pubsub.h"

#ifdef __cplusplus
}
#endif
#endif
