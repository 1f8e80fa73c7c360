/* SPDX-License-Identifier: MIT */
/**
 * @file mq/async.h
 * @brief libmqclient: pipelined (asynchronous) pushes. Included by
 * <mq/mq.h>; it can also be included on its own.
 *
 * A synchronous mq_push() holds its thread for a whole round trip (about
 * one durable commit on the broker), so one thread pushes at most about
 * 1 / round trip messages per second. mq_push_async() sends the request and
 * returns at once; the outcome arrives later through a callback. One thread
 * can so keep many pushes in flight, which lets the broker group them into
 * one commit, without a thread per request.
 *
 * Model:
 * - A call that returns MQ_OK is "in flight": its callback is invoked
 *   exactly once, later, on a thread of nng (never from inside the call),
 *   when the broker answers, the call times out (the client's
 *   mq_client_opts.timeout_ms, counted from the send), the connection
 *   fails, or the client is closed.
 * - A call that returns an error sent nothing and never invokes its
 *   callback.
 * - Each client allows a limited number of async calls in flight at once
 *   (mq_client_set_max_inflight(), default ::MQ_ASYNC_MAX_INFLIGHT_DEFAULT).
 *   At the limit, mq_push_async() blocks until one completes;
 *   mq_push_async_try() returns MQ_RESOURCE_EXHAUSTED instead.
 * - Callbacks of one client may run at the same time on several nng
 *   threads, in any order (not necessarily the order of the calls). They
 *   must be quick, must not block, and may not call mq_client_flush(),
 *   mq_client_close() or any synchronous call (mq_push(), mq_pull()...) of
 *   the library. They may call mq_push_async() / mq_push_batch_async(),
 *   which then never block: at the limit they return MQ_RESOURCE_EXHAUSTED.
 *   During a callback, mq_errmsg() on that thread gives the reason of a
 *   failure.
 * - Async and synchronous calls can be mixed on one client and from many
 *   threads; they share its connection.
 * - Coalescing: a single-message mq_push_async() made while another async
 *   push of the client is on the wire waits (counted in flight) and leaves
 *   with the other pushes waiting for the same queue, up to 64 messages or
 *   256 KiB, in one request when a request completes. Each keeps its own
 *   result, reason and callback, in push order; a push made while nothing
 *   is on the wire goes out at once. Its timeout counts from the send, so
 *   a push may wait up to one more round trip (at most one call timeout).
 */
#ifndef MQ_ASYNC_H
#define MQ_ASYNC_H

#include "mq/mq.h"

#ifdef __cplusplus
extern "C" {
#endif

/** MQ_ASYNC_MAX_INFLIGHT_DEFAULT is a client's default limit of async calls
 * in flight. */
#define MQ_ASYNC_MAX_INFLIGHT_DEFAULT 256

/** MQ_ASYNC_MAX_INFLIGHT_MAX is the highest limit mq_client_set_max_inflight()
 * accepts. */
#define MQ_ASYNC_MAX_INFLIGHT_MAX 65536

/**
 * mq_push_cb receives the outcome of one mq_push_async().
 * @param[in] arg  the arg given to mq_push_async()
 * @param[in] st   MQ_OK when the broker stored the message; else as for
 *                 mq_push(): MQ_INVALID_ARGUMENT (e.g. payload above the
 *                 broker's limit), MQ_NOT_FOUND, MQ_RESOURCE_EXHAUSTED,
 *                 MQ_DEADLINE_EXCEEDED, MQ_UNAVAILABLE, MQ_INTERNAL; or
 *                 MQ_CANCELLED when mq_client_close() aborted the call.
 * @param[in] r    never NULL; r->status == st; r->id and r->duplicate are
 *                 meaningful when st is MQ_OK. Borrowed: valid only during
 *                 the call.
 * @note Runs on an nng thread; see the rules at the top of this header.
 *   As with mq_push(), a push that failed with MQ_DEADLINE_EXCEEDED,
 *   MQ_UNAVAILABLE or MQ_CANCELLED may still have been stored.
 */
typedef void (*mq_push_cb)(void *arg, mq_status st, const mq_push_result *r);

/**
 * mq_push_batch_cb receives the outcome of one mq_push_batch_async().
 * @param[in] arg      the arg given to mq_push_batch_async()
 * @param[in] st       as the return value of mq_push_batch(): MQ_OK when
 *                     every message was stored, else the first failing
 *                     message's status or the request's own failure
 *                     (MQ_CANCELLED when mq_client_close() aborted it)
 * @param[in] n        the number of messages of the call
 * @param[in] results  never NULL: n results. When the request itself
 *                     failed, each has status st. Borrowed: valid only
 *                     during the call.
 */
typedef void (*mq_push_batch_cb)(void *arg, mq_status st, size_t n, const mq_push_result *results);

/**
 * mq_push_async encodes one push (as mq_push()) and sends it without
 * waiting for the reply; @p cb gets the outcome.
 * @param[in] c        the client
 * @param[in] queue    queue name; used only during the call
 * @param[in] payload,len  the message body; copied, so the caller may
 *                     reuse the buffer as soon as the call returns
 * @param[in] opts     options, or NULL for the defaults; used only during
 *                     the call
 * @param[in] cb       required; invoked exactly once iff this returns MQ_OK
 * @param[in] arg      passed to cb; owned by the caller, who keeps it valid
 *                     until cb has run
 * @return MQ_OK (in flight); MQ_INVALID_ARGUMENT (NULL client or cb, bad
 *   queue name, NULL payload with len > 0, bad options);
 *   MQ_RESOURCE_EXHAUSTED (only from a callback, at the in-flight limit);
 *   MQ_FAILED_PRECONDITION (the client is closing); MQ_INTERNAL (out of
 *   memory, nng failure). On error cb is never invoked.
 * @note Blocks while the client's in-flight limit is reached, until a call
 *   completes (never when called from a callback). Thread-safe.
 */
MQ_API mq_status mq_push_async(mq_client *c, const char *queue, const void *payload, size_t len,
                               const mq_push_opts *opts, mq_push_cb cb, void *arg);

/**
 * mq_push_async_try is mq_push_async() that never blocks: at the client's
 * in-flight limit it returns MQ_RESOURCE_EXHAUSTED (cb not invoked).
 * @return as mq_push_async().
 */
MQ_API mq_status mq_push_async_try(mq_client *c, const char *queue, const void *payload, size_t len,
                                   const mq_push_opts *opts, mq_push_cb cb, void *arg);

/**
 * mq_push_batch_async is mq_push_batch() without waiting: one request with
 * @p n messages, counted as one call against the in-flight limit.
 * @param[in] n          1 to MQ_PUSH_BATCH_MAX
 * @param[in] payloads   n bodies, lens their lengths; copied
 * @param[in] opts       NULL, or an array of n options; used only during
 *                       the call
 * @param[in] cb,arg     as for mq_push_async()
 * @return as mq_push_async().
 * @note Blocks at the in-flight limit as mq_push_async().
 */
MQ_API mq_status mq_push_batch_async(mq_client *c, const char *queue, size_t n,
                                     const void *const *payloads, const size_t *lens,
                                     const mq_push_opts *opts, mq_push_batch_cb cb, void *arg);

/**
 * mq_client_set_max_inflight sets how many async calls the client may have
 * in flight at once. Takes effect for the next calls; lowering it below the
 * number in flight only makes new calls wait.
 * @param[in] max  1 to MQ_ASYNC_MAX_INFLIGHT_MAX
 * @return MQ_OK; MQ_INVALID_ARGUMENT.
 * @note Thread-safe. Each call in flight holds one nng context and aio,
 *   kept for reuse until the client is closed.
 */
MQ_API mq_status mq_client_set_max_inflight(mq_client *c, uint32_t max);

/**
 * mq_client_inflight returns the number of async calls of @p c in flight
 * now (a snapshot). Thread-safe.
 */
MQ_API uint32_t mq_client_inflight(mq_client *c);

/**
 * mq_client_flush waits until every async call of @p c made before or
 * during the wait has completed and its callback has returned.
 * @param[in] timeout_ms  how long to wait; < 0 = no limit
 * @return MQ_OK (nothing in flight); MQ_DEADLINE_EXCEEDED (calls still in
 *   flight at the deadline; they go on); MQ_INVALID_ARGUMENT (NULL client);
 *   MQ_FAILED_PRECONDITION (called from a callback).
 * @note Blocks. Thread-safe, but calls made by other threads during the
 *   wait are waited for too. Call it before mq_client_close() to let calls
 *   finish: closing with calls in flight aborts them and their callbacks
 *   run with MQ_CANCELLED (or their real outcome if already answered)
 *   before mq_client_close() returns.
 */
MQ_API mq_status mq_client_flush(mq_client *c, int32_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
