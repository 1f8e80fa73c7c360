/* SPDX-License-Identifier: MIT */
/*
 * service.c: the methods of service mq.Broker.
 *
 * A request is decoded here: the Request envelope, then its body with the
 * input descriptor of the method named in the envelope, looked up in the
 * generated service descriptor (mq__broker__descriptor). The call is then
 * run through the generated service's invoke, which indexes the typed
 * handlers of `broker_service` below: the method table is the generated
 * one, never a hand-kept list of names.
 *
 * Handlers of methods that touch storage do not run storage themselves:
 * they set the call's apply step and hand it to the writer, which runs the
 * step inside a group-commit transaction and replies after the commit.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "backup.h"
#include "broker.h"
#include "conn_limits.h"
#include "log.h"
#include "svc_pubsub.h"

#ifndef MQ_VERSION_STRING
#define MQ_VERSION_STRING "unknown"
#endif

#define PROTOCOL_VERSION 1u
#define LIST_LIMIT_MAX   1000u

typedef struct brk_service {
	Mq__Broker_Service base;
	brk_info *info;
} brk_service;

/* ---- Call results ------------------------------------------------------ */

void brk_call_set_error(brk_call *c, int status, const char *fmt, ...)
{
	va_list ap;

	c->status = status;
	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
	c->body_len = 0;
	c->done = true;
}

uint8_t *brk_call_body_reserve(brk_call *c, size_t n)
{
	if (c->body == NULL || c->body_len + n > c->body_cap) {
		size_t cap = c->body_cap ? c->body_cap : 256;
		while (cap < c->body_len + n)
			cap *= 2;
		uint8_t *b = realloc(c->body, cap);
		if (b == NULL)
			return NULL;
		c->body = b;
		c->body_cap = cap;
	}
	return c->body + c->body_len;
}

void brk_call_set_reply(brk_call *c, const ProtobufCMessage *reply)
{
	size_t n = protobuf_c_message_get_packed_size(reply);
	uint8_t *p;

	c->body_len = 0;
	p = brk_call_body_reserve(c, n);
	if (p == NULL) {
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "out of memory packing the reply");
		return;
	}
	c->body_len = protobuf_c_message_pack(reply, p);
	c->status = MQ_OK;
	c->errmsg[0] = '\0';
	c->done = true;
}

void brk_call_reset_result(brk_call *c)
{
	c->status = MQ_OK;
	c->errmsg[0] = '\0';
	c->body_len = 0;
	c->done = false;
}

void brk_call_free_request(brk_call *c)
{
	if (c->input != NULL && c->method != NULL)
		protobuf_c_message_free_unpacked(c->input, NULL);
	c->input = NULL;
	if (c->env != NULL)
		mq__request__free_unpacked(c->env, NULL);
	c->env = NULL;
	c->method = NULL;
	c->apply = NULL;
}

/* reply_closure completes a call answered without the writer. */
static void reply_closure(const ProtobufCMessage *reply, void *data)
{
	brk_call *c = data;

	if (reply != NULL)
		brk_call_set_reply(c, reply);
	brk_call_finish(c);
}

static void submit(brk_service *svc, brk_call *c, brk_apply_fn apply)
{
	c->apply = apply;
	if (brk_writer_submit(svc->info->writer, c) != 0) {
		brk_call_set_error(c, MQ_UNAVAILABLE, "the broker is shutting down");
		brk_call_finish(c);
	}
}

/* set_store_error records a failed store operation: a request error is the
 * call's answer; a transaction failure only notes the status, and the writer
 * replays the call. */
static void set_store_error(brk_call *c, store_txn *t, int rv, const store_err *err)
{
	if (store_txn_failed(t)) {
		c->status = rv;
		c->done = false;
		return;
	}
	brk_call_set_error(c, rv, "%s", err->msg);
}

/* store_result ends an apply step: the reply on success, else the error. */
static void store_result(brk_call *c, store_txn *t, int rv, const store_err *err,
                         const ProtobufCMessage *reply)
{
	if (rv == MQ_OK)
		brk_call_set_reply(c, reply);
	else
		set_store_error(c, t, rv, err);
}

/* SUBMIT_ONLY defines the typed handler of a method whose request needs no
 * check before the writer runs its apply step. */
#define SUBMIT_ONLY(name, Req, Closure, apply)                                                     \
	static void svc_##name(Mq__Broker_Service *base, const Req *in, Closure closure,           \
	                       void *data)                                                         \
	{                                                                                          \
		(void)in;                                                                          \
		(void)closure;                                                                     \
		submit((brk_service *)base, data, apply);                                          \
	}

/* ---- Conversions ----------------------------------------------------- */

static void queue_info_to_pb(const store_queue_info *in, Mq__QueueInfo *out, Mq__QueueConfig *cfg,
                             Mq__QueueStats *st)
{
	mq__queue_info__init(out);
	mq__queue_config__init(cfg);
	mq__queue_stats__init(st);
	out->name = (char *)in->name;
	out->created_ms = in->created_ms;
	cfg->lease_ms = in->config.lease_ms;
	cfg->max_attempts = in->config.max_attempts;
	cfg->retry_base_ms = in->config.retry_base_ms;
	cfg->retry_max_ms = in->config.retry_max_ms;
	cfg->max_length = in->config.max_length;
	cfg->max_age_ms = in->config.max_age_ms;
	cfg->rate_limit = in->config.rate_limit;
	cfg->dedup_scope = (Mq__DedupScope)in->config.dedup_scope;
	cfg->dedup_window_ms = in->config.dedup_window_ms;
	cfg->dead_letter_queue = (char *)in->config.dead_letter_queue;
	out->paused = in->paused;
	st->redriven_total = in->stats.redriven_total;
	st->oldest_ready_age_ms = in->stats.oldest_ready_age_ms;
	st->ready = in->stats.ready;
	st->delayed = in->stats.delayed;
	st->in_flight = in->stats.in_flight;
	st->dead = in->stats.dead;
	st->pushed_total = in->stats.pushed_total;
	st->acked_total = in->stats.acked_total;
	st->nacked_total = in->stats.nacked_total;
	st->expired_total = in->stats.expired_total;
	st->deduplicated_total = in->stats.deduplicated_total;
	st->dead_total = in->stats.dead_total;
	out->config = cfg;
	out->stats = st;
}

/* states_to_mask maps the requested states to STORE_STATE_* bits: no state
 * at all means every state; states given but none known is 0 (an error). */
static uint32_t states_to_mask(size_t n, const Mq__MessageState *states)
{
	uint32_t mask = 0;

	if (n == 0)
		return STORE_STATE_ALL;
	for (size_t i = 0; i < n; i++) {
		switch (states[i]) {
		case MQ__MESSAGE_STATE__STATE_READY:
			mask |= STORE_STATE_READY;
			break;
		case MQ__MESSAGE_STATE__STATE_DELAYED:
			mask |= STORE_STATE_DELAYED;
			break;
		case MQ__MESSAGE_STATE__STATE_LEASED:
			mask |= STORE_STATE_LEASED;
			break;
		case MQ__MESSAGE_STATE__STATE_DEAD:
			mask |= STORE_STATE_DEAD;
			break;
		default:
			break;
		}
	}
	return mask;
}

static Mq__MessageState state_to_pb(uint32_t state)
{
	switch (state) {
	case STORE_STATE_READY:
		return MQ__MESSAGE_STATE__STATE_READY;
	case STORE_STATE_DELAYED:
		return MQ__MESSAGE_STATE__STATE_DELAYED;
	case STORE_STATE_LEASED:
		return MQ__MESSAGE_STATE__STATE_LEASED;
	case STORE_STATE_DEAD:
		return MQ__MESSAGE_STATE__STATE_DEAD;
	}
	return MQ__MESSAGE_STATE__STATE_UNSPECIFIED;
}

/* ---- Push ---------------------------------------------------------- */

/* push_atomic_end ends an atomic push's savepoint: kept when every message
 * was stored, else rolled back, with ABORTED for the messages that had
 * succeeded (their ids are void). */
static void push_atomic_end(store_txn *t, brk_call *c, size_t n, Mq__PushResult *res, size_t *n_ok)
{
	store_err err;
	size_t first = n;

	for (size_t i = 0; i < n && first == n; i++)
		if (res[i].status != MQ_OK)
			first = i;
	if (first == n) {
		int rv = store_release(t, &err);
		if (rv != MQ_OK)
			c->status = rv; /* the transaction failed: replayed */
		return;
	}
	store_rollback(t);
	for (size_t i = 0; i < n; i++) {
		if (res[i].status != MQ_OK)
			continue;
		res[i].status = MQ_ABORTED;
		res[i].id = 0;
		res[i].duplicate = false;
		snprintf(c->errmsg, sizeof(c->errmsg),
		         "not stored: message %zu of this atomic push failed (%s)", first,
		         res[first].message ? res[first].message
		                            : mq_status_name((int)res[first].status));
		res[i].message = strdup(c->errmsg);
	}
	c->errmsg[0] = '\0';
	*n_ok = 0;
}

static void apply_push(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__PushRequest *in = (const Mq__PushRequest *)c->input;
	const brk_config *cfg = brk_writer_config(w);
	Mq__PushResult *res, **resp;
	Mq__PushReply reply = MQ__PUSH_REPLY__INIT;
	store_header hdr_stack[16], *hdrs = hdr_stack;
	size_t n_ok = 0;

	res = calloc(in->n_messages ? in->n_messages : 1, sizeof(*res));
	resp = calloc(in->n_messages ? in->n_messages : 1, sizeof(*resp));
	if (res == NULL || resp == NULL) {
		free(res);
		free(resp);
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (in->atomic) {
		store_err err;
		int rv = store_savepoint(t, &err);

		if (rv != MQ_OK) {
			free(res);
			free(resp);
			set_store_error(c, t, rv, &err);
			return;
		}
	}
	for (size_t i = 0; i < in->n_messages; i++) {
		const Mq__PushMessage *pm = in->messages[i];
		store_push_msg m = {0};
		store_push_result r = {0};
		store_err err;
		int rv;

		mq__push_result__init(&res[i]);
		res[i].message = NULL; /* init points it at a static "" */
		resp[i] = &res[i];
		if (pm->payload.len > cfg->max_payload) {
			res[i].status = MQ_INVALID_ARGUMENT;
			snprintf(c->errmsg, sizeof(c->errmsg),
			         "payload of %zu bytes is larger than the limit of %" PRIu64
			         " bytes (mqd --max-payload)",
			         pm->payload.len, cfg->max_payload);
			res[i].message = strdup(c->errmsg);
			continue;
		}
		if (pm->n_headers > 16) {
			hdrs = calloc(pm->n_headers, sizeof(*hdrs));
			if (hdrs == NULL) {
				res[i].status = MQ_RESOURCE_EXHAUSTED;
				res[i].message = strdup("out of memory");
				hdrs = hdr_stack;
				continue;
			}
		}
		for (size_t h = 0; h < pm->n_headers; h++) {
			hdrs[h].key = pm->headers[h]->key;
			hdrs[h].value = pm->headers[h]->value;
		}
		m.payload = pm->payload.data;
		m.payload_len = pm->payload.len;
		m.dedup_key = pm->dedup_key;
		m.dedup_mode = pm->dedup_mode == MQ__DEDUP_MODE__DEDUP_REPLACE ? STORE_DEDUP_REPLACE
		               : pm->dedup_mode == MQ__DEDUP_MODE__DEDUP_DEBOUNCE
		                   ? STORE_DEDUP_DEBOUNCE
		                   : STORE_DEDUP_IGNORE;
		m.group = pm->group;
		m.not_before_ms = pm->not_before_ms;
		m.ttl_ms = pm->ttl_ms;
		m.delay_ms = pm->delay_ms;
		m.priority = pm->priority;
		m.type = pm->type;
		m.headers = hdrs;
		m.n_headers = pm->n_headers;
		rv = store_push(t, in->queue, brk_writer_config(w)->auto_create, &m, &r, &err);
		if (hdrs != hdr_stack) {
			free(hdrs);
			hdrs = hdr_stack;
		}
		if (rv != MQ_OK) {
			res[i].status = (uint32_t)rv;
			res[i].message = strdup(err.msg);
			if (store_txn_failed(t))
				break;
			continue;
		}
		res[i].id = r.id;
		res[i].duplicate = r.duplicate;
		n_ok++;
	}
	if (in->atomic && !store_txn_failed(t))
		push_atomic_end(t, c, in->n_messages, res, &n_ok);
	if (!store_txn_failed(t)) {
		if (in->atomic && n_ok < in->n_messages) {
			/* Every result says why: the reply carries them all. */
			reply.n_results = in->n_messages;
			reply.results = resp;
			brk_call_set_reply(c, &reply.base);
		} else if (n_ok == 0 && in->n_messages > 0) {
			brk_call_set_error(c, (int)res[0].status, "%s",
			                   res[0].message ? res[0].message : "push failed");
		} else {
			reply.n_results = in->n_messages;
			reply.results = resp;
			brk_call_set_reply(c, &reply.base);
		}
	} else {
		c->status = MQ_RESOURCE_EXHAUSTED;
		for (size_t i = 0; i < in->n_messages; i++)
			if (res[i].status != 0)
				c->status = (int)res[i].status;
		c->done = false;
	}
	for (size_t i = 0; i < in->n_messages; i++)
		free(res[i].message);
	free(res);
	free(resp);
}

static void svc_push(Mq__Broker_Service *base, const Mq__PushRequest *in,
                     Mq__PushReply_Closure closure, void *data)
{
	brk_call *c = data;

	if (in->n_messages > BRK_MAX_BATCH) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "a push carries at most %u messages; this one has %zu",
		                   BRK_MAX_BATCH, in->n_messages);
		closure(NULL, c);
		return;
	}
	submit((brk_service *)base, c, apply_push);
}

/* ---- Pull ---------------------------------------------------------- */

static Mq__AttemptOutcome outcome_to_pb(uint32_t outcome)
{
	switch (outcome) {
	case STORE_OUTCOME_NACKED:
		return MQ__ATTEMPT_OUTCOME__OUTCOME_NACKED;
	case STORE_OUTCOME_EXPIRED:
		return MQ__ATTEMPT_OUTCOME__OUTCOME_EXPIRED;
	case STORE_OUTCOME_TERMED:
		return MQ__ATTEMPT_OUTCOME__OUTCOME_TERMED;
	default:
		return MQ__ATTEMPT_OUTCOME__OUTCOME_UNSPECIFIED;
	}
}

/* emit_message appends one message to the reply body as field 1 (the
 * repeated Message of PullReply and ListMessagesReply, the Message of
 * GetMessageReply): tag, length, the packed Message. Packing here, while
 * the store's view is valid, avoids copying each message into an
 * intermediate structure. inspect adds what browsing shows (dead reason,
 * history, last error, not-before time). Returns 1 when the message does
 * not fit the reply budget (or memory ran out: c->emit_failed). */
static int emit_message(brk_call *c, const store_msg *sm, bool inspect)
{
	Mq__Message m = MQ__MESSAGE__INIT;
	Mq__Header hdr_stack[16], *hdrs = hdr_stack;
	Mq__Header *hp_stack[16], **hps = hp_stack;
	Mq__Attempt att[STORE_HISTORY_MAX], *attp[STORE_HISTORY_MAX];
	size_t n, need;
	uint8_t *p;

	if (sm->n_headers > 16) {
		hdrs = calloc(sm->n_headers, sizeof(*hdrs));
		hps = calloc(sm->n_headers, sizeof(*hps));
		if (hdrs == NULL || hps == NULL) {
			free(hdrs);
			free(hps);
			c->emit_failed = true;
			return 1;
		}
	}
	for (size_t i = 0; i < sm->n_headers; i++) {
		mq__header__init(&hdrs[i]);
		hdrs[i].key = (char *)sm->headers[i].key;
		hdrs[i].value = (char *)sm->headers[i].value;
		hps[i] = &hdrs[i];
	}
	m.id = sm->id;
	m.queue = (char *)sm->queue;
	m.payload.data = (uint8_t *)sm->payload;
	m.payload.len = sm->payload_len;
	m.attempts = sm->attempts;
	m.lease_token = sm->lease_token;
	m.lease_expiry_ms = sm->lease_expiry_ms;
	m.enqueued_ms = sm->enqueued_ms;
	m.priority = sm->priority;
	m.dedup_key = (char *)sm->dedup_key;
	m.group = (char *)sm->group;
	m.expires_ms = sm->expire_ms;
	m.type = (char *)sm->type;
	m.n_headers = sm->n_headers;
	m.headers = hps;
	m.state = state_to_pb(sm->state);
	if (inspect) {
		size_t nh = sm->n_history < STORE_HISTORY_MAX ? sm->n_history : STORE_HISTORY_MAX;

		for (size_t i = 0; i < nh; i++) {
			mq__attempt__init(&att[i]);
			att[i].time_ms = sm->history[i].time_ms;
			att[i].outcome = outcome_to_pb(sm->history[i].outcome);
			att[i].error = (char *)sm->history[i].error;
			attp[i] = &att[i];
		}
		m.n_history = nh;
		m.history = attp;
		m.dead_reason = (char *)sm->dead_reason;
		m.last_error = (char *)sm->error;
		m.not_before_ms = sm->not_before_ms;
	}

	n = protobuf_c_message_get_packed_size(&m.base);
	need = 1 + 10 + n;
	/* Refusing leaves the message unleased (store_pull's contract): a reply
	 * never grows past the budget, except by its first message. */
	if (c->body_len > 0 && c->body_len + need > c->reply_budget)
		p = NULL;
	else if ((p = brk_call_body_reserve(c, need)) == NULL)
		c->emit_failed = true;
	if (p != NULL) {
		uint8_t *q = p;
		uint64_t v = n;
		*q++ = (1u << 3) | 2u; /* field 1, length-delimited */
		do {
			*q = (uint8_t)(v & 0x7f);
			v >>= 7;
			if (v)
				*q |= 0x80;
			q++;
		} while (v);
		q += protobuf_c_message_pack(&m.base, q);
		c->body_len += (size_t)(q - p);
	}
	if (hdrs != hdr_stack) {
		free(hdrs);
		free(hps);
	}
	return p == NULL;
}

static int pull_emit(void *arg, const store_msg *sm)
{
	return emit_message(arg, sm, false);
}

/* append_varint_field appends a varint field to the reply body. */
static bool append_varint_field(brk_call *c, unsigned field, uint64_t v)
{
	uint8_t *p = brk_call_body_reserve(c, 11), *q;

	if (p == NULL)
		return false;
	q = p;
	*q++ = (uint8_t)(field << 3); /* wire type 0 */
	do {
		*q = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			*q |= 0x80;
		q++;
	} while (v);
	c->body_len += (size_t)(q - p);
	return true;
}

static void apply_pull(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__PullRequest *in = (const Mq__PullRequest *)c->input;
	uint32_t max = in->max_messages ? in->max_messages : 1;
	uint32_t n = 0, rate = 0;
	bool limited = false;
	store_err err;
	int rv;

	/* (A parked pull being served is not a newcomer: it must not queue up
	 * behind the others again, or a wait list of two never gets served.) */
	if (c->wq == NULL && !c->serving && in->wait_ms > 0 &&
	    brk_writer_has_parked(w, in->queue) && brk_mono_ms() < c->deadline_ms) {
		/* First come, first served: queue up behind the parked pulls; the
		 * writer serves them in order before this transaction commits. */
		brk_writer_park(w, c, in->queue);
		brk_writer_mark(w, in->queue);
		return;
	}
	if (c->serve_cap && max > c->serve_cap)
		max = c->serve_cap; /* a parked pull takes its fair share */
	c->body_len = 0;
	c->emit_failed = false;
	c->reply_budget = brk_writer_reply_budget(w);
	rv = store_queue_rate_limit(t, in->queue, &rate, &err);
	if (rv == MQ_OK && rate != 0) {
		uint32_t avail = brk_writer_rate_avail(w, in->queue, rate);
		if (avail < max) {
			max = avail;
			limited = true;
		}
	}
	if (rv == MQ_OK && max > 0)
		rv = store_pull(t, in->queue, max, in->lease_ms, pull_emit, c, &n, &err);
	if (rv == MQ_NOT_FOUND && brk_writer_config(w)->auto_create)
		rv = MQ_OK; /* a queue made by its first push: wait for it */
	if (rv != MQ_OK) {
		set_store_error(c, t, rv, &err);
		return;
	}
	if (rate != 0)
		brk_writer_rate_used(w, in->queue, n);
	if (n == 0 && limited)
		brk_writer_rate_wait(w, in->queue); /* served again at the next token */
	if (n == 0 && c->emit_failed) {
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "out of memory building the reply");
		return;
	}
	if (n == 0 && in->wait_ms > 0 && brk_mono_ms() < c->deadline_ms) {
		brk_writer_park(w, c, in->queue);
		return;
	}
	c->status = MQ_OK;
	c->done = true;
}

static void svc_pull(Mq__Broker_Service *base, const Mq__PullRequest *in,
                     Mq__PullReply_Closure closure, void *data)
{
	brk_call *c = data;

	if (in->max_messages > BRK_MAX_BATCH) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "a pull asks for at most %u messages, not %u", BRK_MAX_BATCH,
		                   in->max_messages);
		closure(NULL, c);
		return;
	}
	if (!mq_name_valid(in->queue)) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "invalid queue name '%.64s': use 1-%d of A-Z a-z 0-9 . _ -",
		                   in->queue, MQ_NAME_MAX);
		closure(NULL, c);
		return;
	}
	c->deadline_ms = c->start_ms + in->wait_ms;
	submit((brk_service *)base, c, apply_pull);
}

/* ---- Ack, Nack, ExtendLease ------------------------------------------- */

static void apply_ack(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__AckRequest *in = (const Mq__AckRequest *)c->input;
	Mq__AckReply reply = MQ__ACK_REPLY__INIT;
	store_err err;
	int rv;

	(void)w;
	rv = store_ack(t, in->queue, in->id, in->lease_token, &err);
	store_result(c, t, rv, &err, &reply.base);
}

SUBMIT_ONLY(ack, Mq__AckRequest, Mq__AckReply_Closure, apply_ack)

static void apply_nack(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__NackRequest *in = (const Mq__NackRequest *)c->input;
	Mq__NackReply reply = MQ__NACK_REPLY__INIT;
	store_err err;
	int rv;

	(void)w;
	rv = store_nack(t, in->queue, in->id, in->lease_token, in->delay_ms, in->error, &err);
	store_result(c, t, rv, &err, &reply.base);
}

SUBMIT_ONLY(nack, Mq__NackRequest, Mq__NackReply_Closure, apply_nack)

static void apply_extend(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__ExtendLeaseRequest *in = (const Mq__ExtendLeaseRequest *)c->input;
	Mq__ExtendLeaseReply reply = MQ__EXTEND_LEASE_REPLY__INIT;
	store_err err;
	int rv;

	(void)w;
	rv = store_extend(t, in->queue, in->id, in->lease_token, in->lease_ms,
	                  &reply.lease_expiry_ms, &err);
	store_result(c, t, rv, &err, &reply.base);
}

SUBMIT_ONLY(extend_lease, Mq__ExtendLeaseRequest, Mq__ExtendLeaseReply_Closure, apply_extend)

/* ---- AckBatch, NackBatch, ExtendBatch ----------------------------------- */

enum batch_kind { BATCH_ACK, BATCH_NACK, BATCH_EXTEND };

/* apply_lease_batch runs one store call per (id, token) pair; each gets
 * its own result, as Push's messages do. */
static void apply_lease_batch(store_txn *t, brk_call *c, enum batch_kind kind, const char *queue,
                              size_t n, Mq__LeaseRef **items, uint64_t delay_ms, const char *error,
                              uint32_t lease_ms)
{
	Mq__ItemResult *res = calloc(n ? n : 1, sizeof(*res));
	Mq__ItemResult **resp = calloc(n ? n : 1, sizeof(*resp));
	Mq__AckBatchReply reply = MQ__ACK_BATCH_REPLY__INIT; /* the three replies are alike */

	if (res == NULL || resp == NULL) {
		free(res);
		free(resp);
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		store_err err;
		int rv;

		if (i % STORE_PREFETCH_MAX == 0 && n - i > 1) {
			/* engines with a round trip per read fetch the next
			 * records together (a no-op for LMDB) */
			uint64_t ids[STORE_PREFETCH_MAX];
			size_t m = n - i < STORE_PREFETCH_MAX ? n - i : STORE_PREFETCH_MAX;

			for (size_t j = 0; j < m; j++)
				ids[j] = items[i + j]->id;
			if (store_prefetch_messages(t, queue, ids, m, &err) != MQ_OK &&
			    store_txn_failed(t)) {
				c->status = MQ_UNAVAILABLE;
				c->done = false; /* the writer replays the batch */
				goto out;
			}
		}
		mq__item_result__init(&res[i]);
		res[i].message = NULL;
		resp[i] = &res[i];
		switch (kind) {
		case BATCH_ACK:
			rv = store_ack(t, queue, items[i]->id, items[i]->lease_token, &err);
			break;
		case BATCH_NACK:
			rv = store_nack(t, queue, items[i]->id, items[i]->lease_token, delay_ms,
			                error, &err);
			break;
		default:
			rv = store_extend(t, queue, items[i]->id, items[i]->lease_token, lease_ms,
			                  &res[i].lease_expiry_ms, &err);
			break;
		}
		if (store_txn_failed(t)) {
			c->status = rv;
			c->done = false; /* the writer replays the batch */
			goto out;
		}
		res[i].status = (uint32_t)rv;
		if (rv != MQ_OK)
			res[i].message = strdup(err.msg);
	}
	/* The reply always carries every item's result, even when all failed
	 * (unlike Push, whose one-message form reads like a plain call). */
	reply.n_results = n;
	reply.results = resp;
	brk_call_set_reply(c, &reply.base);
out:
	for (size_t i = 0; i < n; i++)
		free(res[i].message);
	free(res);
	free(resp);
}

static void apply_ack_batch(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__AckBatchRequest *in = (const Mq__AckBatchRequest *)c->input;

	(void)w;
	apply_lease_batch(t, c, BATCH_ACK, in->queue, in->n_items, in->items, 0, NULL, 0);
}

static void apply_nack_batch(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__NackBatchRequest *in = (const Mq__NackBatchRequest *)c->input;

	(void)w;
	apply_lease_batch(t, c, BATCH_NACK, in->queue, in->n_items, in->items, in->delay_ms,
	                  in->error, 0);
}

static void apply_extend_batch(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__ExtendBatchRequest *in = (const Mq__ExtendBatchRequest *)c->input;

	(void)w;
	apply_lease_batch(t, c, BATCH_EXTEND, in->queue, in->n_items, in->items, 0, NULL,
	                  in->lease_ms);
}

/* check_lease_batch checks what every batch request shares. */
static bool check_lease_batch(brk_call *c, const char *queue, size_t n)
{
	if (!mq_name_valid(queue)) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "invalid queue name '%.64s': use 1-%d of A-Z a-z 0-9 . _ -",
		                   queue, MQ_NAME_MAX);
		return false;
	}
	if (n > BRK_MAX_BATCH) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "a batch names at most %u messages; this one names %zu",
		                   BRK_MAX_BATCH, n);
		return false;
	}
	return true;
}

#define SUBMIT_LEASE_BATCH(name, Req, Closure, apply)                                              \
	static void svc_##name(Mq__Broker_Service *base, const Req *in, Closure closure,           \
	                       void *data)                                                         \
	{                                                                                          \
		brk_call *c = data;                                                                \
		if (!check_lease_batch(c, in->queue, in->n_items)) {                               \
			closure(NULL, c);                                                          \
			return;                                                                    \
		}                                                                                  \
		submit((brk_service *)base, c, apply);                                             \
	}

SUBMIT_LEASE_BATCH(ack_batch, Mq__AckBatchRequest, Mq__AckBatchReply_Closure, apply_ack_batch)
SUBMIT_LEASE_BATCH(nack_batch, Mq__NackBatchRequest, Mq__NackBatchReply_Closure, apply_nack_batch)
SUBMIT_LEASE_BATCH(extend_batch, Mq__ExtendBatchRequest, Mq__ExtendBatchReply_Closure,
                   apply_extend_batch)

static void apply_term(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__TermRequest *in = (const Mq__TermRequest *)c->input;
	Mq__TermReply reply = MQ__TERM_REPLY__INIT;
	store_err err;
	int rv;

	(void)w;
	rv = store_term(t, in->queue, in->id, in->lease_token, in->reason, &err);
	store_result(c, t, rv, &err, &reply.base);
}

static void svc_term(Mq__Broker_Service *base, const Mq__TermRequest *in,
                     Mq__TermReply_Closure closure, void *data)
{
	brk_call *c = data;

	if (!mq_name_valid(in->queue)) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "invalid queue name '%.64s': use 1-%d of A-Z a-z 0-9 . _ -",
		                   in->queue, MQ_NAME_MAX);
		closure(NULL, c);
		return;
	}
	if (strlen(in->reason) > STORE_REASON_MAX) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "the term reason is longer than %u bytes", STORE_REASON_MAX);
		closure(NULL, c);
		return;
	}
	submit((brk_service *)base, c, apply_term);
}

/* ---- ListMessages, GetMessage, DeleteMessage ----------------------------- */

#define LIST_MESSAGES_DEFAULT 100u

static int inspect_emit(void *arg, const store_msg *sm)
{
	return emit_message(arg, sm, true);
}

static void apply_list_messages(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__ListMessagesRequest *in = (const Mq__ListMessagesRequest *)c->input;
	uint32_t limit = in->limit ? in->limit : LIST_MESSAGES_DEFAULT;
	uint32_t mask = in->state == MQ__MESSAGE_STATE__STATE_UNSPECIFIED
	                    ? STORE_STATE_ALL
	                    : states_to_mask(1, &in->state);
	uint64_t next = 0;
	bool more = false;
	store_err err;
	int rv;

	c->body_len = 0;
	c->emit_failed = false;
	c->reply_budget = brk_writer_reply_budget(w);
	rv = store_message_list(t, in->queue, mask, in->after_id, limit, inspect_emit, c, &next,
	                        &more, &err);
	if (rv != MQ_OK) {
		set_store_error(c, t, rv, &err);
		return;
	}
	if (c->emit_failed) {
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "out of memory building the reply");
		return;
	}
	if ((more && !append_varint_field(c, 2, 1)) || !append_varint_field(c, 3, next)) {
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "out of memory building the reply");
		return;
	}
	c->status = MQ_OK;
	c->errmsg[0] = '\0';
	c->done = true;
}

static bool check_queue_name(brk_call *c, const char *name)
{
	if (mq_name_valid(name))
		return true;
	brk_call_set_error(c, MQ_INVALID_ARGUMENT,
	                   "invalid queue name '%.64s': use 1-%d of A-Z a-z 0-9 . _ -", name,
	                   MQ_NAME_MAX);
	return false;
}

/* SUBMIT_NAMED defines the typed handler of a method whose only check
 * before the writer is the queue name of the request. */
#define SUBMIT_NAMED(name, Req, Closure, apply)                                                    \
	static void svc_##name(Mq__Broker_Service *base, const Req *in, Closure closure,           \
	                       void *data)                                                         \
	{                                                                                          \
		brk_call *c = data;                                                                \
		if (!check_queue_name(c, in->queue)) {                                             \
			closure(NULL, c);                                                          \
			return;                                                                    \
		}                                                                                  \
		submit((brk_service *)base, c, apply);                                             \
	}

static void svc_list_messages(Mq__Broker_Service *base, const Mq__ListMessagesRequest *in,
                              Mq__ListMessagesReply_Closure closure, void *data)
{
	brk_call *c = data;

	if (!check_queue_name(c, in->queue)) {
		closure(NULL, c);
		return;
	}
	if (in->limit > LIST_LIMIT_MAX) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "a message listing returns at most %u messages, not %u",
		                   LIST_LIMIT_MAX, in->limit);
		closure(NULL, c);
		return;
	}
	if (in->state != MQ__MESSAGE_STATE__STATE_UNSPECIFIED &&
	    states_to_mask(1, &in->state) == 0) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "unknown message state %d (READY, DELAYED, LEASED, DEAD)",
		                   (int)in->state);
		closure(NULL, c);
		return;
	}
	submit((brk_service *)base, c, apply_list_messages);
}

static void apply_get_message(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__GetMessageRequest *in = (const Mq__GetMessageRequest *)c->input;
	store_err err;
	int rv;

	c->body_len = 0;
	c->emit_failed = false;
	c->reply_budget = brk_writer_reply_budget(w);
	rv = store_message_get(t, in->queue, in->id, inspect_emit, c, &err);
	if (rv != MQ_OK) {
		set_store_error(c, t, rv, &err);
		return;
	}
	if (c->emit_failed || c->body_len == 0) {
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "out of memory building the reply");
		return;
	}
	c->status = MQ_OK;
	c->errmsg[0] = '\0';
	c->done = true;
}

SUBMIT_NAMED(get_message, Mq__GetMessageRequest, Mq__GetMessageReply_Closure, apply_get_message)

static void apply_delete_message(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__DeleteMessageRequest *in = (const Mq__DeleteMessageRequest *)c->input;
	Mq__DeleteMessageReply reply = MQ__DELETE_MESSAGE_REPLY__INIT;
	uint32_t state = 0;
	store_err err;
	int rv;

	(void)w;
	rv = store_message_delete(t, in->queue, in->id, &state, &err);
	if (rv != MQ_OK) {
		set_store_error(c, t, rv, &err);
		return;
	}
	reply.state = state_to_pb(state);
	brk_call_set_reply(c, &reply.base);
}

SUBMIT_NAMED(delete_message, Mq__DeleteMessageRequest, Mq__DeleteMessageReply_Closure,
             apply_delete_message)

/* ---- Snooze ------------------------------------------------------------ */

static void apply_snooze(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__SnoozeRequest *in = (const Mq__SnoozeRequest *)c->input;
	Mq__SnoozeReply reply = MQ__SNOOZE_REPLY__INIT;
	store_err err;
	int rv;

	(void)w;
	rv = store_snooze(t, in->queue, in->id, in->lease_token, in->delay_ms, &err);
	store_result(c, t, rv, &err, &reply.base);
}

SUBMIT_NAMED(snooze, Mq__SnoozeRequest, Mq__SnoozeReply_Closure, apply_snooze)

/* ---- Redrive ------------------------------------------------------------ */

static void apply_redrive(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__RedriveRequest *in = (const Mq__RedriveRequest *)c->input;
	Mq__RedriveReply reply = MQ__REDRIVE_REPLY__INIT;
	store_err err;
	bool more = false;
	int rv;

	store_redrive_opts o = {
	    .ids = in->ids,
	    .n_ids = in->n_ids,
	    .to_queue = in->to_queue,
	    .auto_create = brk_writer_config(w)->auto_create,
	    .max = in->max,
	    .after_id = in->after_id,
	    .reason_prefix = in->reason_prefix,
	    .type = in->type,
	    .dead_since_ms = in->dead_since_ms,
	};
	store_redrive_result r;

	rv = store_redrive_ex(t, in->queue, &o, &r, &err);
	if (rv != MQ_OK) {
		set_store_error(c, t, rv, &err);
		return;
	}
	reply.redriven = r.moved;
	more = r.more;
	reply.next_after_id = r.next_after;
	reply.more = more;
	brk_call_set_reply(c, &reply.base);
}

static void svc_redrive(Mq__Broker_Service *base, const Mq__RedriveRequest *in,
                        Mq__RedriveReply_Closure closure, void *data)
{
	brk_call *c = data;

	if (!check_queue_name(c, in->queue) ||
	    (in->to_queue[0] != '\0' && !check_queue_name(c, in->to_queue))) {
		closure(NULL, c);
		return;
	}
	if (in->n_ids > STORE_REDRIVE_MAX) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "a redrive names at most %u messages; this one names %zu",
		                   STORE_REDRIVE_MAX, in->n_ids);
		closure(NULL, c);
		return;
	}
	submit((brk_service *)base, c, apply_redrive);
}

/* ---- Queues -------------------------------------------------------- */

/* config_copy converts a request's queue config (in may be NULL: all 0);
 * false (and c's error set) when the dead-letter queue name is too long
 * to be one. */
static bool config_copy(brk_call *c, const Mq__QueueConfig *in, store_queue_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	if (in == NULL)
		return true;
	if (strlen(in->dead_letter_queue) > MQ_NAME_MAX) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "invalid dead-letter queue name: longer than %d characters",
		                   MQ_NAME_MAX);
		return false;
	}
	cfg->lease_ms = in->lease_ms;
	cfg->max_attempts = in->max_attempts;
	cfg->retry_base_ms = in->retry_base_ms;
	cfg->retry_max_ms = in->retry_max_ms;
	cfg->max_length = in->max_length;
	cfg->max_age_ms = in->max_age_ms;
	cfg->rate_limit = in->rate_limit;
	cfg->dedup_scope = (uint32_t)in->dedup_scope;
	cfg->dedup_window_ms = in->dedup_window_ms;
	strcpy(cfg->dead_letter_queue, in->dead_letter_queue);
	return true;
}

/* config_from_pb converts and checks a new queue's config; false (and c's
 * error set) when it cannot be stored as given. */
static bool config_from_pb(brk_call *c, const char *name, const Mq__QueueConfig *in,
                           store_queue_config *cfg)
{
	store_err err;
	mq_status st;

	if (!config_copy(c, in, cfg))
		return false;
	if ((st = store_queue_config_check(name, cfg, &err)) != MQ_OK) {
		brk_call_set_error(c, st, "%s", err.msg);
		return false;
	}
	return true;
}

/* reply_queue_info answers c with a reply whose only field is a QueueInfo
 * (field `queue`), the shape of Update, Pause and Resume replies. */
static void reply_queue_info(brk_call *c, ProtobufCMessage *reply, Mq__QueueInfo **slot,
                             const store_queue_info *info)
{
	Mq__QueueInfo qi;
	Mq__QueueConfig qc;
	Mq__QueueStats qs;

	queue_info_to_pb(info, &qi, &qc, &qs);
	*slot = &qi;
	brk_call_set_reply(c, reply);
}

/* ensure_dlq makes sure the dead-letter queue that cfg names (for queue
 * name) exists: created with the defaults when the broker creates queues
 * on push, else NOT_FOUND. Run inside a savepoint, so that a later request
 * error of the call undoes a creation. */
static int ensure_dlq(brk_writer *w, store_txn *t, const char *name, const store_queue_config *cfg,
                      store_err *err)
{
	store_queue_info info;
	int rv;

	if (!cfg->dead_letter_queue[0] || strcmp(cfg->dead_letter_queue, name) == 0)
		return MQ_OK; /* none, or refused by the config check */
	rv = store_queue_get(t, cfg->dead_letter_queue, &info, err);
	if (rv != MQ_NOT_FOUND)
		return rv;
	if (!brk_writer_config(w)->auto_create) {
		snprintf(err->msg, sizeof(err->msg),
		         "dead-letter queue %s does not exist (create it first)",
		         cfg->dead_letter_queue);
		return MQ_NOT_FOUND;
	}
	return store_queue_create(t, cfg->dead_letter_queue, NULL, true, NULL, NULL, err);
}

/* with_dlq runs a queue create or update after ensure_dlq, all or nothing. */
static int with_dlq(brk_writer *w, store_txn *t, const char *name, const store_queue_config *cfg,
                    bool check, store_err *err, int (*op)(store_txn *, void *), void *arg)
{
	int rv;

	if (!check)
		return op(t, arg);
	if ((rv = store_savepoint(t, err)) != MQ_OK)
		return rv;
	rv = ensure_dlq(w, t, name, cfg, err);
	if (rv == MQ_OK)
		rv = op(t, arg);
	if (rv != MQ_OK) {
		if (!store_txn_failed(t))
			store_rollback(t);
		return rv;
	}
	return store_release(t, err);
}

struct create_op {
	const char *name;
	const store_queue_config *cfg;
	bool if_not_exists;
	store_queue_info *info;
	bool *created;
	store_err *err;
	uint32_t mask; /* update */
};

static int create_op(store_txn *t, void *arg)
{
	struct create_op *o = arg;

	return store_queue_create(t, o->name, o->cfg, o->if_not_exists, o->info, o->created,
	                          o->err);
}

static int update_op(store_txn *t, void *arg)
{
	struct create_op *o = arg;

	return store_queue_update(t, o->name, o->cfg, o->mask, o->info, o->err);
}

static void apply_create_queue(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__CreateQueueRequest *in = (const Mq__CreateQueueRequest *)c->input;
	Mq__CreateQueueReply reply = MQ__CREATE_QUEUE_REPLY__INIT;
	store_queue_config cfg;
	store_queue_info info;
	store_err err;
	bool created = false;
	int rv;

	if (!config_from_pb(c, in->name, in->config, &cfg))
		return;
	{
		struct create_op o = {in->name, &cfg, in->if_not_exists, &info, &created, &err, 0};
		rv = with_dlq(w, t, in->name, &cfg, cfg.dead_letter_queue[0] != '\0', &err,
		              create_op, &o);
	}
	if (rv != MQ_OK) {
		set_store_error(c, t, rv, &err);
		return;
	}
	reply.created = created;
	reply_queue_info(c, &reply.base, &reply.queue, &info);
}

static void svc_create_queue(Mq__Broker_Service *base, const Mq__CreateQueueRequest *in,
                             Mq__CreateQueueReply_Closure closure, void *data)
{
	brk_call *c = data;
	store_queue_config cfg;

	if (!config_from_pb(c, in->name, in->config, &cfg)) {
		closure(NULL, c);
		return;
	}
	submit((brk_service *)base, c, apply_create_queue);
}

/* fields_to_mask maps QueueConfig field names to STORE_QCFG_* bits, which
 * follow the field numbers (bit n-1 for field n); 0 and c's error set when
 * a name is unknown or none is given. */
static uint32_t fields_to_mask(brk_call *c, size_t n, char **fields)
{
	uint32_t mask = 0;

	if (n == 0) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "UpdateQueue names no field to change (fields is empty)");
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(
		    &mq__queue_config__descriptor, fields[i]);

		if (f == NULL || f->id < 1 || f->id > 10) {
			brk_call_set_error(c, MQ_INVALID_ARGUMENT,
			                   "UpdateQueue: '%.64s' is not a field of QueueConfig",
			                   fields[i]);
			return 0;
		}
		mask |= 1u << (f->id - 1);
	}
	return mask;
}

static void apply_update_queue(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__UpdateQueueRequest *in = (const Mq__UpdateQueueRequest *)c->input;
	Mq__UpdateQueueReply reply = MQ__UPDATE_QUEUE_REPLY__INIT;
	store_queue_config cfg;
	store_queue_info info;
	store_err err;
	uint32_t mask;
	int rv;

	/* The named fields are checked with the stored ones, in the store. */
	if ((mask = fields_to_mask(c, in->n_fields, in->fields)) == 0 ||
	    !config_copy(c, in->config, &cfg))
		return;
	{
		struct create_op o = {in->name, &cfg, false, &info, NULL, &err, mask};
		rv = with_dlq(w, t, in->name, &cfg,
		              (mask & STORE_QCFG_DEAD_LETTER_QUEUE) &&
		                  cfg.dead_letter_queue[0] != '\0',
		              &err, update_op, &o);
	}
	if (rv != MQ_OK) {
		set_store_error(c, t, rv, &err);
		return;
	}
	reply_queue_info(c, &reply.base, &reply.queue, &info);
}

static void svc_update_queue(Mq__Broker_Service *base, const Mq__UpdateQueueRequest *in,
                             Mq__UpdateQueueReply_Closure closure, void *data)
{
	brk_call *c = data;

	if (fields_to_mask(c, in->n_fields, in->fields) == 0) {
		closure(NULL, c);
		return;
	}
	submit((brk_service *)base, c, apply_update_queue);
}

static void apply_pause(store_txn *t, brk_call *c, const char *name, bool paused,
                        ProtobufCMessage *reply, Mq__QueueInfo **slot)
{
	store_queue_info info;
	store_err err;
	int rv = store_queue_pause(t, name, paused, &info, &err);

	if (rv != MQ_OK) {
		set_store_error(c, t, rv, &err);
		return;
	}
	reply_queue_info(c, reply, slot, &info);
}

static void apply_pause_queue(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__PauseQueueRequest *in = (const Mq__PauseQueueRequest *)c->input;
	Mq__PauseQueueReply reply = MQ__PAUSE_QUEUE_REPLY__INIT;

	(void)w;
	apply_pause(t, c, in->name, true, &reply.base, &reply.queue);
}

SUBMIT_ONLY(pause_queue, Mq__PauseQueueRequest, Mq__PauseQueueReply_Closure, apply_pause_queue)

static void apply_resume_queue(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__ResumeQueueRequest *in = (const Mq__ResumeQueueRequest *)c->input;
	Mq__ResumeQueueReply reply = MQ__RESUME_QUEUE_REPLY__INIT;

	(void)w;
	apply_pause(t, c, in->name, false, &reply.base, &reply.queue);
}

SUBMIT_ONLY(resume_queue, Mq__ResumeQueueRequest, Mq__ResumeQueueReply_Closure, apply_resume_queue)

static void apply_get_queue(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__GetQueueRequest *in = (const Mq__GetQueueRequest *)c->input;
	Mq__GetQueueReply reply = MQ__GET_QUEUE_REPLY__INIT;
	store_queue_info info;
	store_err err;
	int rv;

	(void)w;
	rv = store_queue_get(t, in->name, &info, &err);
	if (rv != MQ_OK) {
		set_store_error(c, t, rv, &err);
		return;
	}
	reply_queue_info(c, &reply.base, &reply.queue, &info);
}

SUBMIT_ONLY(get_queue, Mq__GetQueueRequest, Mq__GetQueueReply_Closure, apply_get_queue)

typedef struct list_acc {
	store_queue_info *infos;
	size_t n, cap;
} list_acc;

static int list_one(void *arg, const store_queue_info *info)
{
	list_acc *a = arg;

	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		store_queue_info *p = realloc(a->infos, cap * sizeof(*p));
		if (p == NULL)
			return 1;
		a->infos = p;
		a->cap = cap;
	}
	a->infos[a->n++] = *info;
	return 0;
}

static void apply_list_queues(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__ListQueuesRequest *in = (const Mq__ListQueuesRequest *)c->input;
	Mq__ListQueuesReply reply = MQ__LIST_QUEUES_REPLY__INIT;
	uint32_t limit = in->limit ? in->limit : LIST_LIMIT_MAX;
	list_acc acc = {0};
	store_err err;
	bool more = false;
	int rv;

	(void)w;
	if (limit > LIST_LIMIT_MAX)
		limit = LIST_LIMIT_MAX;
	rv = store_queue_list(t, in->after, limit, list_one, &acc, &more, &err);
	if (rv != MQ_OK) {
		set_store_error(c, t, rv, &err);
		free(acc.infos);
		return;
	}
	/* With auth on, only the queues the caller's token may see (auth.c);
	 * pages are read on until `limit` visible queues or the end. */
	for (size_t kept = 0, rounds = 0;;) {
		char last[MQ_NAME_MAX + 1] = "";
		if (acc.n > kept)
			snprintf(last, sizeof(last), "%s", acc.infos[acc.n - 1].name);
		for (size_t i = kept; i < acc.n; i++)
			if (brk_auth_visible(c, acc.infos[i].name))
				acc.infos[kept++] = acc.infos[i];
		acc.n = kept;
		if (!more || kept >= limit || last[0] == '\0' || ++rounds > 1000)
			break;
		rv = store_queue_list(t, last, limit - (uint32_t)kept, list_one, &acc, &more, &err);
		if (rv != MQ_OK) {
			set_store_error(c, t, rv, &err);
			free(acc.infos);
			return;
		}
	}
	Mq__QueueInfo *qi = calloc(acc.n ? acc.n : 1, sizeof(*qi));
	Mq__QueueConfig *qc = calloc(acc.n ? acc.n : 1, sizeof(*qc));
	Mq__QueueStats *qs = calloc(acc.n ? acc.n : 1, sizeof(*qs));
	Mq__QueueInfo **qp = calloc(acc.n ? acc.n : 1, sizeof(*qp));
	if (qi && qc && qs && qp) {
		for (size_t i = 0; i < acc.n; i++) {
			queue_info_to_pb(&acc.infos[i], &qi[i], &qc[i], &qs[i]);
			qp[i] = &qi[i];
		}
		reply.n_queues = acc.n;
		reply.queues = qp;
		reply.more = more;
		brk_call_set_reply(c, &reply.base);
	} else {
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "out of memory");
	}
	free(qi);
	free(qc);
	free(qs);
	free(qp);
	free(acc.infos);
}

SUBMIT_ONLY(list_queues, Mq__ListQueuesRequest, Mq__ListQueuesReply_Closure, apply_list_queues)

static void apply_purge_queue(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__PurgeQueueRequest *in = (const Mq__PurgeQueueRequest *)c->input;
	Mq__PurgeQueueReply reply = MQ__PURGE_QUEUE_REPLY__INIT;
	store_err err;
	bool more = false;
	int rv;

	(void)w;
	reply.cursor = in->cursor;
	rv = store_queue_purge_ex(t, in->name, states_to_mask(in->n_states, in->states), in->limit,
	                          &reply.cursor, &reply.purged, &more, &err);
	reply.more = more;
	store_result(c, t, rv, &err, &reply.base);
}

static void svc_purge_queue(Mq__Broker_Service *base, const Mq__PurgeQueueRequest *in,
                            Mq__PurgeQueueReply_Closure closure, void *data)
{
	brk_call *c = data;

	if (states_to_mask(in->n_states, in->states) == 0) {
		/* Never widen an unknown state into "purge everything". */
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "no known message state among the %zu given (READY, DELAYED, "
		                   "LEASED, DEAD)",
		                   in->n_states);
		closure(NULL, c);
		return;
	}
	submit((brk_service *)base, c, apply_purge_queue);
}

static void apply_delete_queue(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__DeleteQueueRequest *in = (const Mq__DeleteQueueRequest *)c->input;
	Mq__DeleteQueueReply reply = MQ__DELETE_QUEUE_REPLY__INIT;
	store_err err;
	int rv;

	(void)w;
	rv = store_queue_delete(t, in->name, &err);
	store_result(c, t, rv, &err, &reply.base);
}

SUBMIT_ONLY(delete_queue, Mq__DeleteQueueRequest, Mq__DeleteQueueReply_Closure, apply_delete_queue)

/* ---- Ping, ServerInfo (no storage) ---------------------------------- */

static void svc_ping(Mq__Broker_Service *base, const Mq__PingRequest *in,
                     Mq__PingReply_Closure closure, void *data)
{
	brk_service *svc = (brk_service *)base;
	Mq__PingReply reply = MQ__PING_REPLY__INIT;

	(void)in;
	reply.now_ms = store_now(svc->info->store);
	closure(&reply, data);
}

static void svc_server_info(Mq__Broker_Service *base, const Mq__ServerInfoRequest *in,
                            Mq__ServerInfoReply_Closure closure, void *data)
{
	brk_service *svc = (brk_service *)base;
	const brk_config *cfg = svc->info->cfg;
	Mq__ServerInfoReply reply = MQ__SERVER_INFO_REPLY__INIT;

	(void)in;
	reply.version = (char *)MQ_VERSION_STRING;
	reply.protocol_version = PROTOCOL_VERSION;
	reply.storage_engine = (char *)store_engine(svc->info->store);
	reply.durability = (char *)store_durability_name(svc->info->store);
	reply.uptime_ms = brk_mono_ms() - svc->info->start_ms;
	reply.max_payload_bytes = cfg->max_payload;
	reply.now_ms = store_now(svc->info->store);
	reply.auto_create_queues = cfg->auto_create;
	reply.default_lease_ms = cfg->default_lease_ms;
	reply.default_max_attempts = cfg->default_max_attempts;
	closure(&reply, data);
}

static brk_service broker_service = {
    .base = MQ__BROKER__INIT(svc_),
    .info = NULL,
};

/* ---- Dispatch ------------------------------------------------------ */

void brk_service_init(brk_info *info)
{
	broker_service.info = info;
	svc_pubsub_init(info);
	svc_backup_init(info);
}

void brk_service_dispatch(brk_info *info, brk_call *c, void *msg_body, size_t msg_len)
{
	const ProtobufCServiceDescriptor *desc = &mq__broker__descriptor;
	const ProtobufCMethodDescriptor *m;

	brk_call_reset_result(c);
	c->start_ms = brk_mono_ms();
	c->env = mq__request__unpack(NULL, msg_len, msg_body);
	if (c->env == NULL) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "undecodable request: %zu bytes that are not an mq.Request "
		                   "envelope",
		                   msg_len);
		brk_call_finish(c);
		return;
	}
	if (c->env->version != PROTOCOL_VERSION) {
		brk_call_set_error(c, MQ_FAILED_PRECONDITION,
		                   "protocol version %u is not supported; this broker speaks "
		                   "version %u",
		                   c->env->version, PROTOCOL_VERSION);
		brk_call_finish(c);
		return;
	}
	m = protobuf_c_service_descriptor_get_method_by_name(desc, c->env->method);
	if (m == NULL) {
		brk_call_set_error(c, MQ_UNIMPLEMENTED, "unknown method '%.64s' of %s",
		                   c->env->method, desc->name);
		brk_call_finish(c);
		return;
	}
	c->input = protobuf_c_message_unpack(m->input, NULL, c->env->body.len, c->env->body.data);
	if (c->input == NULL) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "undecodable body: %zu bytes that are not an %s",
		                   c->env->body.len, m->input->name);
		brk_call_finish(c);
		return;
	}
	c->method = m;
	/* Security and limits: the token and its permissions (auth.c), the
	 * connection's parked long polls (conn_limits.c). */
	if (!brk_auth_check(info->auth, c) || !brk_limits_longpoll_enter(info->limits, c)) {
		brk_call_finish(c);
		return;
	}
	brk_debug("request %s", m->name);
	broker_service.base.base.invoke(&broker_service.base.base, (unsigned)(m - desc->methods),
	                                c->input, (ProtobufCClosure)reply_closure, c);
}
