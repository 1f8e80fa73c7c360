/* SPDX-License-Identifier: MIT */
/* async.c: pipelined pushes (<mq/async.h>). Each call in flight holds one
 * operation: an nng_ctx on the client's req0 socket and an nng_aio whose
 * callback drives it (send, then receive, then decode and invoke the user's
 * callback), so no thread waits for a reply. Operations are pooled per
 * client and reused; they are freed only at close. It builds requests with
 * rpc.c's envelope code and reaches the socket through client.c's hooks
 * (mqc.h); it does not touch the synchronous path (mqc_transact).
 *
 * Locking: a->mtx guards the pool, the in-flight count, the limit and the
 * closing flag. It is never held while calling nng or the user's callback.
 * An operation is counted in flight from its submission until after its
 * user callback returned, so mq_client_flush and mqc_async_free see every
 * callback finished. The aio callback may still be unwinding after it gave
 * its operation back; nng_aio_free (at close) waits for that.
 *
 * Coalescing: a single-message mq_push_async() made while a push request
 * of this client is on the wire does not get a request of its own: it waits
 * (a copy of its inputs, counted in flight) on the pending list, and when a
 * request on the wire completes, everything pending for one queue (up to
 * MQC_COALESCE_MAX) leaves as one Push request of many messages, each with
 * its own result and callback. A producer keeping W pushes in flight then
 * sends about one request per round trip instead of W: the broker stores
 * them in one transaction either way (group commit), but each request
 * costs both sides system calls and thread wake-ups that a message inside
 * a request does not. A push made while nothing is on the wire goes out at
 * once, so a lone push waits for nothing. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "mq.pb-c.h"
#include "rpc.h"

/* mqc_in_cb is set while this thread runs a user callback of any client:
 * blocking calls are refused there (they could wait on themselves). */
static _Thread_local bool mqc_in_cb;

enum mqc_aop_state { MQC_AOP_SEND, MQC_AOP_RECV };

/* MQC_COALESCE_MAX is the most pending pushes sent in one request, and
 * MQC_COALESCE_BYTES about the most payload bytes: a coalesced request must
 * stay far below the broker's request limit (--max-request), which a
 * single push of the largest payload fits on its own. */
#define MQC_COALESCE_MAX   64
#define MQC_COALESCE_BYTES (256 * 1024)

/* mqc_pend is one single-message push waiting to be coalesced: a copy of
 * its inputs (payload, strings and headers follow it in one allocation). */
struct mqc_pend {
	struct mqc_pend *next;
	mq_push_cb cb;
	void *arg;
	const void *payload;
	size_t len;
	mq_push_opts o;
};

/* mqc_aop is one async call; on the pool while idle. */
struct mqc_aop {
	struct mqc_async *a;
	nng_ctx ctx;
	nng_aio *aio;
	enum mqc_aop_state state;
	nng_time deadline;
	const ProtobufCMethodDescriptor *method;
	size_t n;                /* messages of the request */
	mq_push_result *results; /* n results, or &one */
	mq_push_result one;
	bool answered; /* results hold the broker's per-message outcomes */
	mq_push_cb cb;
	mq_push_batch_cb bcb;
	void *arg;
	struct mqc_pend *items;   /* a coalesced request: n pushes, in order */
	char **errs;              /* items: the failing messages' reasons, or NULL */
	struct mqc_aop *next;     /* in the pool */
	struct mqc_aop *next_all; /* in a->all; set once, before publication */
};

struct mqc_async {
	mq_client *c;
	pthread_mutex_t mtx;
	pthread_cond_t cv; /* broadcast on a completion while waiters > 0 */
	struct mqc_aop *pool;
	struct mqc_aop *all; /* every operation made, newest first */
	uint32_t inflight;   /* calls: each pending push counts one */
	uint32_t max_inflight;
	uint32_t waiters;
	uint32_t wire; /* operations sent and not finished */
	bool closing;
	struct mqc_pend *pend_head, *pend_tail; /* pushes waiting to be coalesced */
	uint32_t pend_n;
	char pend_queue[MQ_NAME_MAX + 1]; /* the queue of every pending push */
};

static struct timespec mqc_deadline_ts(int32_t ms);
static void mqc_pend_fail(struct mqc_async *a, struct mqc_pend *p, mq_status st);

struct mqc_async *mqc_async_new(mq_client *c)
{
	struct mqc_async *a = calloc(1, sizeof(*a));
	pthread_condattr_t ca;

	if (a == NULL)
		return NULL;
	a->c = c;
	a->max_inflight = MQ_ASYNC_MAX_INFLIGHT_DEFAULT;
	pthread_mutex_init(&a->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	return a;
}

/* mqc_async_closing cancels every call in flight and waits for their
 * callbacks, before client.c closes the socket: nng_close is then never
 * racing with operations on our contexts. A callback that was starting its
 * receive as we passed is caught by the next pass (a->all only grows at the
 * head and operations live until mqc_async_free, so it is walked unlocked). */
bool mqc_async_closing(struct mqc_async *a)
{
	struct mqc_pend *pend;
	struct mqc_aop *op, *head;
	struct timespec ts;
	bool had;

	if (a == NULL)
		return false;
	pthread_mutex_lock(&a->mtx);
	a->closing = true;
	pend = a->pend_head;
	a->pend_head = a->pend_tail = NULL;
	a->pend_n = 0;
	pthread_mutex_unlock(&a->mtx);
	/* Pushes waiting to be coalesced never went out. */
	if (pend != NULL)
		mqc_pend_fail(a, pend, mqc_fail(MQ_CANCELLED, "Push: client closed"));
	pthread_mutex_lock(&a->mtx);
	a->waiters++;
	had = a->inflight > 0;
	while (a->inflight > 0) {
		head = a->all;
		pthread_mutex_unlock(&a->mtx);
		for (op = head; op != NULL; op = op->next_all)
			nng_aio_cancel(op->aio);
		pthread_mutex_lock(&a->mtx);
		if (a->inflight == 0)
			break;
		ts = mqc_deadline_ts(20);
		pthread_cond_timedwait(&a->cv, &a->mtx, &ts);
	}
	a->waiters--;
	pthread_mutex_unlock(&a->mtx);
	/* Contexts are closed here, idle, rather than by the socket close. */
	for (op = a->all; op != NULL; op = op->next_all)
		nng_ctx_close(op->ctx);
	return had;
}

void mqc_async_free(struct mqc_async *a)
{
	struct mqc_aop *op = NULL;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mtx);
	a->closing = true;
	a->waiters++;
	while (a->inflight > 0)
		pthread_cond_wait(&a->cv, &a->mtx);
	a->waiters--;
	pthread_mutex_unlock(&a->mtx);
	/* Every operation is idle now, but an aio callback may still be
	 * returning: nng_aio_free waits for it. The socket is closed, which
	 * closed the contexts. */
	while ((op = a->all) != NULL) {
		a->all = op->next_all;
		nng_aio_free(op->aio);
		free(op);
	}
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mtx);
	free(a);
}

/* mqc_deadline_ts returns CLOCK_MONOTONIC now + ms. */
static struct timespec mqc_deadline_ts(int32_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static void mqc_pend_send(struct mqc_async *a, const char *queue, struct mqc_pend *items,
                          uint32_t n);

/* mqc_pend_take detaches up to MQC_COALESCE_MAX pending pushes (with
 * a->mtx held); *n gets how many, queue their queue's name. */
static struct mqc_pend *mqc_pend_take(struct mqc_async *a, uint32_t *n, char *queue)
{
	struct mqc_pend *head = a->pend_head, *p = head;
	uint32_t k = 1;
	size_t bytes;

	*n = 0;
	if (head == NULL)
		return NULL;
	bytes = head->len;
	while (k < MQC_COALESCE_MAX && p->next != NULL &&
	       bytes + p->next->len <= MQC_COALESCE_BYTES) {
		p = p->next;
		bytes += p->len;
		k++;
	}
	a->pend_head = p->next;
	p->next = NULL;
	if (a->pend_head == NULL)
		a->pend_tail = NULL;
	a->pend_n -= k;
	*n = k;
	memcpy(queue, a->pend_queue, MQ_NAME_MAX + 1);
	return head;
}

/* mqc_pend_fail invokes the callbacks of pushes that never went out with
 * @p st (its reason is the thread's mq_errmsg) and uncounts them. */
static void mqc_pend_fail(struct mqc_async *a, struct mqc_pend *p, mq_status st)
{
	uint32_t n = 0;
	bool was = mqc_in_cb;

	mqc_in_cb = true;
	for (struct mqc_pend *next; p != NULL; p = next, n++) {
		mq_push_result r = {.status = st};

		next = p->next;
		p->cb(p->arg, st, &r);
		free(p);
	}
	mqc_in_cb = was;
	pthread_mutex_lock(&a->mtx);
	a->inflight -= n;
	if (a->waiters > 0)
		pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mtx);
}

/* mqc_aop_finish invokes the user's callbacks, then gives the operation
 * back and uncounts it; then sends what waits to be coalesced. Nothing may
 * touch op after the unlock. */
static void mqc_aop_finish(struct mqc_aop *op, mq_status st)
{
	struct mqc_async *a = op->a;
	struct mqc_pend *next_batch = NULL;
	uint32_t calls = 1, next_n = 0;
	char next_queue[MQ_NAME_MAX + 1];

	if (!op->answered) {
		for (size_t i = 0; i < op->n; i++)
			op->results[i] = (mq_push_result){.status = st};
	}
	mqc_in_cb = true;
	if (op->items != NULL) {
		struct mqc_pend *p = op->items, *next;

		for (size_t i = 0; p != NULL; p = next, i++) {
			mq_status rs = op->results[i].status;

			next = p->next;
			/* Each callback's mq_errmsg is its own message's. */
			if (op->answered)
				(void)(rs == MQ_OK
				           ? mqc_ok()
				           : mqc_fail(rs, "%s",
				                      op->errs && op->errs[i] ? op->errs[i] : ""));
			p->cb(p->arg, rs, &op->results[i]);
			free(p);
			if (op->errs)
				free(op->errs[i]);
		}
		calls = (uint32_t)op->n;
		free(op->errs);
		op->errs = NULL;
		op->items = NULL;
	} else if (op->bcb != NULL)
		op->bcb(op->arg, st, op->n, op->results);
	else
		op->cb(op->arg, st, &op->results[0]);
	mqc_in_cb = false;
	if (op->results != &op->one)
		free(op->results);
	op->results = NULL;
	op->cb = NULL;
	op->bcb = NULL;
	pthread_mutex_lock(&a->mtx);
	op->next = a->pool;
	a->pool = op;
	a->inflight -= calls;
	a->wire--;
	if (!a->closing)
		next_batch = mqc_pend_take(a, &next_n, next_queue);
	if (a->waiters > 0)
		pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mtx);
	if (next_batch != NULL)
		mqc_pend_send(a, next_queue, next_batch, next_n);
}

/* mqc_aop_error maps a transport error; after mq_client_close began, every
 * such error is the close aborting the call. */
static mq_status mqc_aop_error(struct mqc_aop *op, int rv, const char *what)
{
	struct mqc_async *a = op->a;
	bool closing;

	pthread_mutex_lock(&a->mtx);
	closing = a->closing;
	pthread_mutex_unlock(&a->mtx);
	if (closing || rv == NNG_ECANCELED)
		return mqc_fail(MQ_CANCELLED, "%s: client closed", what);
	return mqc_nng_status(a->c, rv, what);
}

/* mqc_aop_decode reads a PushReply into op->results and returns the
 * call's status (the first failing message's, as mq_push_batch). */
static mq_status mqc_aop_decode(struct mqc_aop *op, nng_msg *msg)
{
	Mq__PushReply *rep = NULL;
	mq_status st, first = MQ_OK;
	const char *first_msg = "";

	st = mqc_rpc_decode_reply(op->method, nng_msg_body(msg), nng_msg_len(msg),
	                          (ProtobufCMessage **)&rep);
	if (st != MQ_OK)
		return st;
	if (rep->n_results != op->n) {
		st = mqc_fail(MQ_INTERNAL, "Push: %zu results for %zu messages", rep->n_results,
		              op->n);
		mq__push_reply__free_unpacked(rep, NULL);
		return st;
	}
	for (size_t i = 0; i < op->n; i++) {
		const Mq__PushResult *res = rep->results[i];
		mq_status rs =
		    res->status > MQ_UNAUTHENTICATED ? MQ_UNKNOWN : (mq_status)res->status;

		if (rs != MQ_OK && first == MQ_OK) {
			first = rs;
			first_msg = res->message;
		}
		op->results[i].status = rs;
		op->results[i].id = res->id;
		op->results[i].duplicate = res->duplicate;
		if (rs != MQ_OK && op->items != NULL) {
			if (op->errs == NULL)
				op->errs = calloc(op->n, sizeof(*op->errs));
			if (op->errs != NULL)
				op->errs[i] = strdup(res->message);
		}
	}
	op->answered = true;
	st = first == MQ_OK ? mqc_ok() : mqc_fail(first, "%s", first_msg);
	mq__push_reply__free_unpacked(rep, NULL);
	return st;
}

/* mqc_aop_cb drives one operation: the send completed, then the receive. */
static void mqc_aop_cb(void *arg)
{
	struct mqc_aop *op = arg;
	int rv = nng_aio_result(op->aio);
	nng_msg *msg;
	nng_time now;
	mq_status st;
	bool closing;

	if (op->state == MQC_AOP_SEND) {
		if (rv != 0) {
			/* On a failed send the message is still ours. */
			nng_msg_free(nng_aio_get_msg(op->aio));
			nng_aio_set_msg(op->aio, NULL);
			mqc_aop_finish(op, mqc_aop_error(op, rv, "Push: send request"));
			return;
		}
		pthread_mutex_lock(&op->a->mtx);
		closing = op->a->closing;
		pthread_mutex_unlock(&op->a->mtx);
		if (closing) {
			mqc_aop_finish(op, mqc_fail(MQ_CANCELLED, "Push: client closed"));
			return;
		}
		op->state = MQC_AOP_RECV;
		now = nng_clock();
		nng_aio_set_timeout(op->aio,
		                    op->deadline > now ? (nng_duration)(op->deadline - now) : 1);
		nng_ctx_recv(op->ctx, op->aio);
		return;
	}
	if (rv != 0) {
		/* The context stays usable: its next send abandons this
		 * request and a late reply to it is dropped by request id. */
		mqc_aop_finish(op, mqc_aop_error(op, rv, "Push: receive reply"));
		return;
	}
	msg = nng_aio_get_msg(op->aio);
	nng_aio_set_msg(op->aio, NULL);
	st = mqc_aop_decode(op, msg);
	nng_msg_free(msg);
	mqc_aop_finish(op, st);
}

/* mqc_inflight_wait waits (with a->mtx held) until one more call fits the
 * limit, when @p block (never from a callback); then the caller counts it. */
static mq_status mqc_inflight_wait(struct mqc_async *a, bool block)
{
	block = block && !mqc_in_cb;
	while (!a->closing && a->inflight >= a->max_inflight) {
		if (!block)
			return mqc_fail(MQ_RESOURCE_EXHAUSTED,
			                "mq_push_async: %u calls in flight (the client's limit)",
			                (unsigned)a->max_inflight);
		a->waiters++;
		pthread_cond_wait(&a->cv, &a->mtx);
		a->waiters--;
	}
	if (a->closing)
		return mqc_fail(MQ_FAILED_PRECONDITION, "mq_push_async: client is closing");
	return MQ_OK;
}

/* mqc_aop_take takes an idle operation (or makes one) and counts it on
 * the wire; @p calls more calls are counted in flight on success (0 for a
 * coalesced request, whose pushes were counted when they were made). */
static mq_status mqc_aop_take(struct mqc_async *a, uint32_t calls, struct mqc_aop **out)
{
	struct mqc_aop *op = NULL;
	int rv;

	pthread_mutex_lock(&a->mtx);
	a->inflight += calls;
	a->wire++;
	op = a->pool;
	if (op != NULL)
		a->pool = op->next;
	pthread_mutex_unlock(&a->mtx);
	if (op != NULL) {
		*out = op;
		return MQ_OK;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		rv = NNG_ENOMEM;
		goto fail;
	}
	op->a = a;
	if ((rv = nng_aio_alloc(&op->aio, mqc_aop_cb, op)) != 0) {
		free(op);
		goto fail;
	}
	if ((rv = mqc_ctx_open(a->c, &op->ctx)) != 0) {
		nng_aio_free(op->aio);
		free(op);
		goto fail;
	}
	pthread_mutex_lock(&a->mtx);
	op->next_all = a->all;
	a->all = op;
	pthread_mutex_unlock(&a->mtx);
	*out = op;
	return MQ_OK;
fail:
	pthread_mutex_lock(&a->mtx);
	a->inflight -= calls;
	a->wire--;
	if (a->waiters > 0)
		pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mtx);
	return mqc_nng_status(a->c, rv, "mq_push_async: new context");
}

/* mqc_aop_get counts one call in flight and takes an idle operation,
 * waiting at the limit when @p block (never from a callback). */
static mq_status mqc_aop_get(struct mqc_async *a, bool block, struct mqc_aop **out)
{
	mq_status st;

	pthread_mutex_lock(&a->mtx);
	st = mqc_inflight_wait(a, block);
	if (st == MQ_OK)
		a->inflight++;
	pthread_mutex_unlock(&a->mtx);
	if (st != MQ_OK)
		return st;
	if ((st = mqc_aop_take(a, 0, out)) != MQ_OK) {
		pthread_mutex_lock(&a->mtx);
		a->inflight--;
		if (a->waiters > 0)
			pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mtx);
	}
	return st;
}

/* mqc_async_encode builds the Push request of n messages as an nng_msg. */
static mq_status mqc_async_encode(mq_client *c, const char *queue, size_t n,
                                  const void *const *payloads, const size_t *lens,
                                  const mq_push_opts *opts, bool opts_array, nng_msg **out,
                                  const ProtobufCMethodDescriptor **method)
{
	Mq__PushRequest req = MQ__PUSH_REQUEST__INIT;
	Mq__PushMessage one, *pm = &one, *one_p = &one, **pms = &one_p;
	Mq__Header *one_hps = NULL, **one_hpp = NULL;
	Mq__Header **hps = &one_hps, ***hpp = &one_hpp;
	mqc_rpc_req rr;
	size_t filled = 0;
	mq_status st;
	int rv;

	if (n > 1) {
		pm = calloc(n, sizeof(*pm));
		pms = calloc(n, sizeof(*pms));
		hps = calloc(n, sizeof(*hps));
		hpp = calloc(n, sizeof(*hpp));
		if (pm == NULL || pms == NULL || hps == NULL || hpp == NULL) {
			st = mqc_fail(MQ_INTERNAL, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const mq_push_opts *o = opts == NULL ? NULL : opts_array ? &opts[i] : opts;

		st = mqc_push_fill(&pm[i], payloads[i], lens[i], o, &hps[i], &hpp[i]);
		filled = i + 1;
		if (st != MQ_OK)
			goto out;
		pms[i] = &pm[i];
	}
	req.queue = (char *)queue;
	req.n_messages = n;
	req.messages = pms;
	if ((st = mqc_rpc_prepare(c, &req.base, &rr)) != MQ_OK)
		goto out;
	*method = rr.method;
	if ((rv = nng_msg_alloc(out, rr.len)) != 0) {
		st = mqc_nng_status(c, rv, "allocate request");
		goto out;
	}
	mqc_rpc_pack(&rr, nng_msg_body(*out));
	st = MQ_OK;
out:
	for (size_t i = 0; i < filled; i++) {
		free(hps[i]);
		free(hpp[i]);
	}
	if (n > 1) {
		free(pm);
		free(pms);
		free(hps);
		free(hpp);
	}
	return st;
}

/* mqc_pend_new copies one push's inputs into one allocation; NULL when out
 * of memory. */
/* mqc_pend_str copies the string s (NULL stays NULL) to *at and moves *at
 * past it. */
static const char *mqc_pend_str(char **at, const char *s)
{
	size_t n;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	memcpy(*at, s, n);
	*at += n;
	return *at - n;
}

static struct mqc_pend *mqc_pend_new(const void *payload, size_t len, const mq_push_opts *opts,
                                     mq_push_cb cb, void *arg)
{
	static const mq_push_opts none;
	const mq_push_opts *o = opts != NULL ? opts : &none;
	size_t size = sizeof(struct mqc_pend) + o->n_headers * sizeof(mq_header) + len;
	struct mqc_pend *p;
	char *at;

#define MQC_STR_SIZE(s) ((s) != NULL ? strlen(s) + 1 : 0)
	size += MQC_STR_SIZE(o->dedup_key) + MQC_STR_SIZE(o->type) + MQC_STR_SIZE(o->group);
	for (size_t i = 0; i < o->n_headers; i++)
		size += MQC_STR_SIZE(o->headers[i].key) + MQC_STR_SIZE(o->headers[i].value);
#undef MQC_STR_SIZE
	if ((p = malloc(size)) == NULL)
		return NULL;
	p->next = NULL;
	p->cb = cb;
	p->arg = arg;
	p->o = *o;
	p->len = len;
	/* Layout after the struct: headers, their strings, the payload, the
	 * dedup key, the type, the group. */
	at = (char *)(p + 1);
	if (o->n_headers > 0) {
		mq_header *h = (mq_header *)(void *)at;

		at += o->n_headers * sizeof(mq_header);
		for (size_t i = 0; i < o->n_headers; i++) {
			h[i].key = mqc_pend_str(&at, o->headers[i].key);
			h[i].value = mqc_pend_str(&at, o->headers[i].value);
		}
		p->o.headers = h;
	}
	if (len > 0)
		memcpy(at, payload, len);
	p->payload = at;
	at += len;
	p->o.dedup_key = mqc_pend_str(&at, o->dedup_key);
	p->o.type = mqc_pend_str(&at, o->type);
	p->o.group = mqc_pend_str(&at, o->group);
	return p;
}

/* mqc_pend_send sends @p n pending pushes of @p queue as one request; on
 * an error before the send, their callbacks get it. */
static void mqc_pend_send(struct mqc_async *a, const char *queue, struct mqc_pend *items,
                          uint32_t n)
{
	const void *payloads[MQC_COALESCE_MAX];
	size_t lens[MQC_COALESCE_MAX];
	mq_push_opts opts[MQC_COALESCE_MAX];
	const ProtobufCMethodDescriptor *method;
	mq_push_result *results;
	struct mqc_aop *op;
	nng_msg *msg = NULL;
	struct mqc_pend *p = items;
	int32_t tmo;
	mq_status st;

	for (uint32_t i = 0; i < n; i++, p = p->next) {
		payloads[i] = p->payload;
		lens[i] = p->len;
		opts[i] = p->o;
	}
	if ((results = calloc(n, sizeof(*results))) == NULL) {
		mqc_pend_fail(a, items, mqc_fail(MQ_INTERNAL, "out of memory"));
		return;
	}
	st = mqc_async_encode(a->c, queue, n, payloads, lens, opts, true, &msg, &method);
	if (st == MQ_OK && (st = mqc_aop_take(a, 0, &op)) != MQ_OK)
		nng_msg_free(msg);
	if (st != MQ_OK) {
		free(results);
		mqc_pend_fail(a, items, st);
		return;
	}
	op->state = MQC_AOP_SEND;
	op->answered = false;
	op->method = method;
	op->n = n;
	op->results = results;
	op->items = items;
	op->errs = NULL;
	op->cb = NULL;
	op->bcb = NULL;
	op->arg = NULL;
	tmo = mqc_timeout_ms(a->c);
	op->deadline = nng_clock() + (nng_time)tmo;
	nng_aio_set_msg(op->aio, msg);
	nng_aio_set_timeout(op->aio, (nng_duration)tmo);
	nng_ctx_send(op->ctx, op->aio);
}

/* mqc_push_coalesce is a single-message push made while a request is on
 * the wire: it waits on the pending list (see the top of this file).
 * Returns MQ_OK when pending, MQ_NOT_FOUND (nothing set) when it must go
 * out on its own, or an error for the caller. */
static mq_status mqc_push_coalesce(struct mqc_async *a, const char *queue, const void *payload,
                                   size_t len, const mq_push_opts *opts, mq_push_cb cb, void *arg,
                                   bool block)
{
	struct mqc_pend *p;
	mq_status st;

	pthread_mutex_lock(&a->mtx);
	if (a->closing || a->wire == 0 || (a->pend_n > 0 && strcmp(a->pend_queue, queue) != 0)) {
		pthread_mutex_unlock(&a->mtx);
		return MQ_NOT_FOUND;
	}
	pthread_mutex_unlock(&a->mtx);
	if ((p = mqc_pend_new(payload, len, opts, cb, arg)) == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");
	pthread_mutex_lock(&a->mtx);
	st = mqc_inflight_wait(a, block);
	/* Waiting released the lock: look again. Pending only while a
	 * request is on the wire, whose completion sends the list. */
	if (st == MQ_OK &&
	    (a->closing || a->wire == 0 || (a->pend_n > 0 && strcmp(a->pend_queue, queue) != 0)))
		st = MQ_NOT_FOUND;
	if (st == MQ_OK) {
		if (a->pend_n == 0)
			snprintf(a->pend_queue, sizeof(a->pend_queue), "%s", queue);
		if (a->pend_tail != NULL)
			a->pend_tail->next = p;
		else
			a->pend_head = p;
		a->pend_tail = p;
		a->pend_n++;
		a->inflight++;
	}
	pthread_mutex_unlock(&a->mtx);
	if (st != MQ_OK)
		free(p);
	return st == MQ_OK ? mqc_ok() : st;
}

/* mqc_push_async is every async push: validate and encode (errors return
 * before anything is in flight), take an operation, send. */
static mq_status mqc_push_async(mq_client *c, const char *queue, size_t n,
                                const void *const *payloads, const size_t *lens,
                                const mq_push_opts *opts, bool opts_array, mq_push_cb cb,
                                mq_push_batch_cb bcb, void *arg, bool block)
{
	const ProtobufCMethodDescriptor *method;
	mq_push_result *results = NULL;
	struct mqc_async *a;
	struct mqc_aop *op = NULL;
	nng_msg *msg = NULL;
	int32_t tmo;
	mq_status st;

	if (c == NULL || (cb == NULL && bcb == NULL))
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_push_async: client and cb are required");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	if (n == 0 || n > MQ_PUSH_BATCH_MAX || payloads == NULL || lens == NULL)
		return mqc_fail(
		    MQ_INVALID_ARGUMENT,
		    "mq_push_batch_async: n must be 1 to %d, payloads and lens not NULL",
		    MQ_PUSH_BATCH_MAX);
	if (n > 1 && (results = calloc(n, sizeof(*results))) == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");
	st = mqc_async_encode(c, queue, n, payloads, lens, opts, opts_array, &msg, &method);
	if (st != MQ_OK) {
		free(results);
		return st;
	}
	a = mqc_async_of(c);
	if (n == 1 && cb != NULL) {
		/* Valid (it encoded): coalesce it when a request is on the wire. */
		st = mqc_push_coalesce(a, queue, payloads[0], lens[0], opts, cb, arg, block);
		if (st != MQ_NOT_FOUND) {
			nng_msg_free(msg);
			return st;
		}
	}
	if ((st = mqc_aop_get(a, block, &op)) != MQ_OK) {
		nng_msg_free(msg);
		free(results);
		return st;
	}
	op->state = MQC_AOP_SEND;
	op->answered = false;
	op->method = method;
	op->n = n;
	op->results = results != NULL ? results : &op->one;
	op->cb = cb;
	op->bcb = bcb;
	op->arg = arg;
	/* One deadline for send (which waits for a connection) and receive. */
	tmo = mqc_timeout_ms(c);
	op->deadline = nng_clock() + (nng_time)tmo;
	nng_aio_set_msg(op->aio, msg);
	nng_aio_set_timeout(op->aio, (nng_duration)tmo);
	nng_ctx_send(op->ctx, op->aio);
	return mqc_ok();
}

mq_status mq_push_async(mq_client *c, const char *queue, const void *payload, size_t len,
                        const mq_push_opts *opts, mq_push_cb cb, void *arg)
{
	if (cb == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_push_async: cb is required");
	return mqc_push_async(c, queue, 1, &payload, &len, opts, false, cb, NULL, arg, true);
}

mq_status mq_push_async_try(mq_client *c, const char *queue, const void *payload, size_t len,
                            const mq_push_opts *opts, mq_push_cb cb, void *arg)
{
	if (cb == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_push_async_try: cb is required");
	return mqc_push_async(c, queue, 1, &payload, &len, opts, false, cb, NULL, arg, false);
}

mq_status mq_push_batch_async(mq_client *c, const char *queue, size_t n,
                              const void *const *payloads, const size_t *lens,
                              const mq_push_opts *opts, mq_push_batch_cb cb, void *arg)
{
	if (cb == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_push_batch_async: cb is required");
	return mqc_push_async(c, queue, n, payloads, lens, opts, true, NULL, cb, arg, true);
}

mq_status mq_client_set_max_inflight(mq_client *c, uint32_t max)
{
	struct mqc_async *a;

	if (c == NULL || max < 1 || max > MQ_ASYNC_MAX_INFLIGHT_MAX)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_client_set_max_inflight: want a client and 1 to %d",
		                MQ_ASYNC_MAX_INFLIGHT_MAX);
	a = mqc_async_of(c);
	pthread_mutex_lock(&a->mtx);
	a->max_inflight = max;
	if (a->waiters > 0)
		pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mtx);
	return mqc_ok();
}

uint32_t mq_client_inflight(mq_client *c)
{
	struct mqc_async *a;
	uint32_t n;

	if (c == NULL)
		return 0;
	a = mqc_async_of(c);
	pthread_mutex_lock(&a->mtx);
	n = a->inflight;
	pthread_mutex_unlock(&a->mtx);
	return n;
}

mq_status mq_client_flush(mq_client *c, int32_t timeout_ms)
{
	struct mqc_async *a;
	struct timespec ts;
	uint32_t left;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_client_flush: client is NULL");
	if (mqc_in_cb)
		return mqc_fail(MQ_FAILED_PRECONDITION,
		                "mq_client_flush: not allowed from an async callback");
	a = mqc_async_of(c);
	if (timeout_ms >= 0)
		ts = mqc_deadline_ts(timeout_ms);
	pthread_mutex_lock(&a->mtx);
	a->waiters++;
	while (a->inflight > 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&a->cv, &a->mtx);
		else if (pthread_cond_timedwait(&a->cv, &a->mtx, &ts) == ETIMEDOUT)
			break;
	}
	a->waiters--;
	left = a->inflight;
	pthread_mutex_unlock(&a->mtx);
	if (left > 0)
		return mqc_fail(MQ_DEADLINE_EXCEEDED, "mq_client_flush: %u calls still in flight",
		                (unsigned)left);
	return mqc_ok();
}
