/* SPDX-License-Identifier: MIT */
/* mqc.h: internals of libmqclient shared between its files (prefix mqc_).
 *
 * Layers, top to bottom:
 * - message.c, queue.c: the public calls. They build protobuf requests and
 *   read protobuf replies; they never see nng.
 * - rpc.c: the Request/Reply envelope and the method table (taken from the
 *   generated service descriptor); it never sees nng either.
 * - client.c: the transport (one nng req0 socket, a pool of contexts), the
 *   one place where nng errors become mq_status codes.
 * - error.c: the thread-local mq_errmsg() buffer.
 * Nothing here is exported: the library is built with hidden visibility and
 * only MQ_API functions of <mq/mq.h> are visible. */
#ifndef MQC_H
#define MQC_H

#include <stddef.h>
#include <stdint.h>

#include "mq/mq.h"

#if defined(__GNUC__)
#define MQC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MQC_PRINTF(f, a)
#endif

/* mqc_fail stores a formatted reason for the calling thread's mq_errmsg()
 * and returns @p status, so call sites read `return mqc_fail(...)`. */
mq_status mqc_fail(mq_status status, const char *fmt, ...) MQC_PRINTF(2, 3);

/* mqc_ok clears the calling thread's mq_errmsg() and returns MQ_OK. */
mq_status mqc_ok(void);

/* mqc_check_name validates a queue name argument: MQ_OK or
 * MQ_INVALID_ARGUMENT with a message naming the argument. */
mq_status mqc_check_name(const char *what, const char *name);

/* mqc_encode_fn writes exactly the request's encoded bytes into @p dst. */
typedef void (*mqc_encode_fn)(void *arg, uint8_t *dst);

/* mqc_decode_fn reads a reply; @p data is valid only during the call. */
typedef mq_status (*mqc_decode_fn)(void *arg, const uint8_t *data, size_t len);

/* mqc_transact sends one request of @p len bytes (written by @p encode) and
 * hands the reply to @p decode. The call may take opts.timeout_ms plus
 * @p extra_ms (a long-poll wait). Safe from many threads at once.
 * @return MQ_OK or decode's status; MQ_DEADLINE_EXCEEDED, MQ_UNAVAILABLE,
 *   MQ_INTERNAL for transport failures (message set). */
mq_status mqc_transact(mq_client *c, size_t len, mqc_encode_fn encode, mqc_decode_fn decode,
                       void *arg, uint32_t extra_ms);

/* mqc_auth_token returns the client's auth token ("" when none). */
const char *mqc_auth_token(const mq_client *c);

/* ---- Hooks between client.c and async.c (pipelined calls) ---- */

struct mqc_async;
struct nng_ctx_s;

/* mqc_nng_status maps an nng error to an mq_status and sets the calling
 * thread's message (client.c). */
mq_status mqc_nng_status(mq_client *c, int rv, const char *what);

/* mqc_ctx_open opens a request context on the client's socket; returns the
 * nng error (0 on success). */
int mqc_ctx_open(mq_client *c, struct nng_ctx_s *ctx);

/* mqc_timeout_ms returns opts.timeout_ms of the client. */
int32_t mqc_timeout_ms(const mq_client *c);

/* mqc_async_of returns the client's async state (made by mqc_async_new at
 * open, freed by mqc_async_free at close). */
struct mqc_async *mqc_async_of(mq_client *c);

/* mqc_async_new allocates the async state of client @p c (async.c); NULL
 * when out of memory. */
struct mqc_async *mqc_async_new(mq_client *c);

/* mqc_async_closing marks @p a as closing, cancels its calls in flight
 * (their callbacks get MQ_CANCELLED unless already answered) and waits for
 * their callbacks; called before the socket is closed. Returns whether any
 * call was in flight. NULL is fine. */
bool mqc_async_closing(struct mqc_async *a);

/* mqc_async_free waits until every async call of @p a has completed (its
 * callback returned) and frees it; after the socket is closed. NULL is
 * fine. */
void mqc_async_free(struct mqc_async *a);

#endif
