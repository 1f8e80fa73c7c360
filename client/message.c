/* SPDX-License-Identifier: MIT */
/* message.c: producing and consuming: mq_push, mq_pull, the mq_message
 * object and its accessors, ack/nack/extend. A pulled message is one heap
 * block (struct, header array, then every string and the payload), so it
 * owns copies of everything and one free releases it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mq.pb-c.h"
#include "rpc.h"

#define MQC_PULL_MAX 1000

struct mq_message {
	uint64_t id;
	uint64_t lease_token;
	uint64_t lease_expiry_ms;
	uint64_t enqueued_ms;
	uint32_t attempts;
	int32_t priority;
	const char *queue;
	const char *dedup_key;
	const char *type;
	const uint8_t *payload; /* followed by a NUL not counted in len */
	size_t payload_len;
	size_t n_headers;
	mq_header *headers;
	uint32_t state; /* MQ_STATE_* bit, 0 = unknown */
	uint64_t not_before_ms;
	uint64_t expires_ms;
	const char *group;
	const char *dead_reason;
	const char *last_error;
	size_t n_history;
	mq_attempt *history;
};

/* ---- Push -------------------------------------------------------------- */

mq_status mqc_push_fill(Mq__PushMessage *pm, const void *payload, size_t len,
                        const mq_push_opts *opts, Mq__Header **hps, Mq__Header ***hpp)
{
	mq__push_message__init(pm);
	*hps = NULL;
	*hpp = NULL;
	if (payload == NULL && len > 0)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_push: payload is NULL but len is %zu",
		                len);
	if (opts != NULL) {
		if (opts->dedup_mode != MQ_DEDUP_IGNORE && opts->dedup_mode != MQ_DEDUP_REPLACE &&
		    opts->dedup_mode != MQ_DEDUP_DEBOUNCE)
			return mqc_fail(MQ_INVALID_ARGUMENT, "mq_push: bad dedup_mode %d",
			                (int)opts->dedup_mode);
		if (opts->n_headers > 0 && opts->headers == NULL)
			return mqc_fail(MQ_INVALID_ARGUMENT, "mq_push: headers is NULL");
		for (size_t i = 0; i < opts->n_headers; i++) {
			if (opts->headers[i].key == NULL || opts->headers[i].value == NULL)
				return mqc_fail(MQ_INVALID_ARGUMENT,
				                "mq_push: header %zu has a NULL key or value", i);
		}
		pm->dedup_key = (char *)(opts->dedup_key != NULL ? opts->dedup_key : "");
		if (opts->delay_ms && opts->not_before_ms)
			return mqc_fail(MQ_INVALID_ARGUMENT,
			                "mq_push: give delay_ms or not_before_ms, not both");
		pm->dedup_mode =
		    opts->dedup_mode == MQ_DEDUP_REPLACE    ? MQ__DEDUP_MODE__DEDUP_REPLACE
		    : opts->dedup_mode == MQ_DEDUP_DEBOUNCE ? MQ__DEDUP_MODE__DEDUP_DEBOUNCE
		                                            : MQ__DEDUP_MODE__DEDUP_IGNORE;
		pm->delay_ms = opts->delay_ms;
		pm->group = (char *)(opts->group != NULL ? opts->group : "");
		pm->not_before_ms = opts->not_before_ms;
		pm->ttl_ms = opts->ttl_ms;
		pm->priority = opts->priority;
		pm->type = (char *)(opts->type != NULL ? opts->type : "");
		if (opts->n_headers > 0) {
			*hps = calloc(opts->n_headers, sizeof(**hps));
			*hpp = calloc(opts->n_headers, sizeof(**hpp));
			if (*hps == NULL || *hpp == NULL)
				return mqc_fail(MQ_INTERNAL, "out of memory");
			for (size_t i = 0; i < opts->n_headers; i++) {
				mq__header__init(&(*hps)[i]);
				(*hps)[i].key = (char *)opts->headers[i].key;
				(*hps)[i].value = (char *)opts->headers[i].value;
				(*hpp)[i] = &(*hps)[i];
			}
			pm->n_headers = opts->n_headers;
			pm->headers = *hpp;
		}
	}
	pm->payload.data = (uint8_t *)payload;
	pm->payload.len = len;
	return MQ_OK;
}

mq_status mq_push_batch(mq_client *c, const char *queue, size_t n, const void *const *payloads,
                        const size_t *lens, const mq_push_opts *opts, mq_push_result *results)
{
	return mq_push_batch_ex(c, queue, n, payloads, lens, opts, 0, results);
}

mq_status mq_push_batch_ex(mq_client *c, const char *queue, size_t n, const void *const *payloads,
                           const size_t *lens, const mq_push_opts *opts, uint32_t flags,
                           mq_push_result *results)
{
	Mq__PushRequest req = MQ__PUSH_REQUEST__INIT;
	Mq__PushMessage *pm = NULL, **pms = NULL;
	Mq__Header **hps = NULL, ***hpp = NULL;
	Mq__PushReply *rep = NULL;
	mq_status st, first = MQ_OK;
	char first_msg[256] = "";

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_push: client is NULL");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	if (flags & ~MQ_PUSH_ATOMIC)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_push_batch: unknown flags 0x%x",
		                (unsigned)(flags & ~MQ_PUSH_ATOMIC));
	if (n == 0 || n > MQ_PUSH_BATCH_MAX || payloads == NULL || lens == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_push_batch: n must be 1 to %d, payloads and lens not NULL",
		                MQ_PUSH_BATCH_MAX);
	pm = calloc(n, sizeof(*pm));
	pms = calloc(n, sizeof(*pms));
	hps = calloc(n, sizeof(*hps));
	hpp = calloc(n, sizeof(*hpp));
	if (pm == NULL || pms == NULL || hps == NULL || hpp == NULL) {
		st = mqc_fail(MQ_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		st = mqc_push_fill(&pm[i], payloads[i], lens[i], opts != NULL ? &opts[i] : NULL,
		                   &hps[i], &hpp[i]);
		if (st != MQ_OK)
			goto out;
		pms[i] = &pm[i];
	}
	req.queue = (char *)queue;
	req.n_messages = n;
	req.messages = pms;
	req.atomic = (flags & MQ_PUSH_ATOMIC) != 0;
	st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep);
	if (st != MQ_OK)
		goto out;
	if (rep->n_results != n) {
		st = mqc_fail(MQ_INTERNAL, "Push: %zu results for %zu messages", rep->n_results, n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const Mq__PushResult *res = rep->results[i];
		mq_status rs =
		    res->status > MQ_UNAUTHENTICATED ? MQ_UNKNOWN : (mq_status)res->status;
		/* An atomic push's own failure beats the ABORTED of the others. */
		if (rs != MQ_OK && (first == MQ_OK || (first == MQ_ABORTED && rs != MQ_ABORTED))) {
			first = rs;
			snprintf(first_msg, sizeof(first_msg), "%s", res->message);
		}
		if (results != NULL) {
			results[i].status = rs;
			results[i].id = res->id;
			results[i].duplicate = res->duplicate;
		}
	}
	st = first == MQ_OK ? mqc_ok() : mqc_fail(first, "%s", first_msg);
out:
	if (st != MQ_OK && results != NULL && rep == NULL) {
		for (size_t i = 0; i < n; i++)
			results[i] = (mq_push_result){.status = st};
	}
	for (size_t i = 0; hps != NULL && i < n; i++) {
		free(hps[i]);
		free(hpp[i]);
	}
	free(hps);
	free(hpp);
	free(pm);
	free(pms);
	if (rep != NULL)
		mq__push_reply__free_unpacked(rep, NULL);
	return st;
}

mq_status mq_push(mq_client *c, const char *queue, const void *payload, size_t len,
                  const mq_push_opts *opts, uint64_t *id, bool *duplicate)
{
	mq_push_result r;
	mq_status st = mq_push_batch(c, queue, 1, &payload, &len, opts, &r);

	if (st != MQ_OK)
		return st;
	if (id != NULL)
		*id = r.id;
	if (duplicate != NULL)
		*duplicate = r.duplicate;
	return MQ_OK;
}

/* ---- Messages ---------------------------------------------------------- */

/* mqc_state_bit maps a wire state to its MQ_STATE_* bit (0 = unknown). */
static uint32_t mqc_state_bit(Mq__MessageState s)
{
	switch (s) {
	case MQ__MESSAGE_STATE__STATE_READY:
		return MQ_STATE_READY;
	case MQ__MESSAGE_STATE__STATE_DELAYED:
		return MQ_STATE_DELAYED;
	case MQ__MESSAGE_STATE__STATE_LEASED:
		return MQ_STATE_LEASED;
	case MQ__MESSAGE_STATE__STATE_DEAD:
		return MQ_STATE_DEAD;
	default:
		return 0;
	}
}

/* mqc_message_from copies a wire message into one heap block. */
static mq_message *mqc_message_from(const Mq__Message *w)
{
	size_t size = sizeof(mq_message) + w->n_headers * sizeof(mq_header) +
	              w->n_history * sizeof(mq_attempt);
	mq_message *m;
	char *p;

	size += strlen(w->queue) + 1 + strlen(w->dedup_key) + 1 + strlen(w->type) + 1;
	size += strlen(w->dead_reason) + 1 + strlen(w->last_error) + 1 + strlen(w->group) + 1;
	size += w->payload.len + 1;
	for (size_t i = 0; i < w->n_headers; i++)
		size += strlen(w->headers[i]->key) + 1 + strlen(w->headers[i]->value) + 1;
	for (size_t i = 0; i < w->n_history; i++)
		size += strlen(w->history[i]->error) + 1;
	if ((m = malloc(size)) == NULL)
		return NULL;
	m->state = mqc_state_bit(w->state);
	m->not_before_ms = w->not_before_ms;
	m->expires_ms = w->expires_ms;
	m->n_history = w->n_history;
	m->history = (mq_attempt *)((mq_header *)(m + 1) + w->n_headers);
	m->id = w->id;
	m->lease_token = w->lease_token;
	m->lease_expiry_ms = w->lease_expiry_ms;
	m->enqueued_ms = w->enqueued_ms;
	m->attempts = w->attempts;
	m->priority = w->priority;
	m->n_headers = w->n_headers;
	m->headers = (mq_header *)(m + 1);
	p = (char *)(m->history + w->n_history);
#define MQC_COPY_STR_(dst, src)                                                                    \
	do {                                                                                       \
		size_t n_ = strlen(src) + 1;                                                       \
		memcpy(p, (src), n_);                                                              \
		(dst) = p;                                                                         \
		p += n_;                                                                           \
	} while (0)
	MQC_COPY_STR_(m->queue, w->queue);
	MQC_COPY_STR_(m->dedup_key, w->dedup_key);
	MQC_COPY_STR_(m->type, w->type);
	MQC_COPY_STR_(m->dead_reason, w->dead_reason);
	MQC_COPY_STR_(m->last_error, w->last_error);
	MQC_COPY_STR_(m->group, w->group);
	for (size_t i = 0; i < w->n_history; i++) {
		m->history[i].time_ms = w->history[i]->time_ms;
		switch (w->history[i]->outcome) {
		case MQ__ATTEMPT_OUTCOME__OUTCOME_NACKED:
			m->history[i].outcome = MQ_ATTEMPT_NACKED;
			break;
		case MQ__ATTEMPT_OUTCOME__OUTCOME_EXPIRED:
			m->history[i].outcome = MQ_ATTEMPT_EXPIRED;
			break;
		case MQ__ATTEMPT_OUTCOME__OUTCOME_TERMED:
			m->history[i].outcome = MQ_ATTEMPT_TERMED;
			break;
		default:
			m->history[i].outcome = MQ_ATTEMPT_UNKNOWN;
			break;
		}
		MQC_COPY_STR_(m->history[i].error, w->history[i]->error);
	}
	for (size_t i = 0; i < w->n_headers; i++) {
		MQC_COPY_STR_(m->headers[i].key, w->headers[i]->key);
		MQC_COPY_STR_(m->headers[i].value, w->headers[i]->value);
	}
#undef MQC_COPY_STR_
	if (w->payload.len > 0)
		memcpy(p, w->payload.data, w->payload.len);
	p[w->payload.len] = '\0';
	m->payload = (const uint8_t *)p;
	m->payload_len = w->payload.len;
	return m;
}

mq_status mq_pull(mq_client *c, const char *queue, const mq_pull_opts *opts, mq_message **msgs,
                  size_t max, size_t *n)
{
	Mq__PullRequest req = MQ__PULL_REQUEST__INIT;
	Mq__PullReply *rep = NULL;
	size_t got;
	mq_status st;

	if (c == NULL || msgs == NULL || n == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_pull: client, msgs and n are required");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	if (max < 1 || max > MQC_PULL_MAX)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_pull: max is %zu, want 1 to %d", max,
		                MQC_PULL_MAX);
	req.queue = (char *)queue;
	req.max_messages = (uint32_t)max;
	if (opts != NULL) {
		req.wait_ms = opts->wait_ms;
		req.lease_ms = opts->lease_ms;
	}
	if ((st = mqc_rpc(c, &req.base, req.wait_ms, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	/* A broker never sends more than asked; if one did, the extra leases
	 * simply expire. */
	got = rep->n_messages < max ? rep->n_messages : max;
	for (size_t i = 0; i < got; i++) {
		if ((msgs[i] = mqc_message_from(rep->messages[i])) == NULL) {
			while (i > 0)
				free(msgs[--i]);
			mq__pull_reply__free_unpacked(rep, NULL);
			return mqc_fail(MQ_INTERNAL, "out of memory");
		}
	}
	mq__pull_reply__free_unpacked(rep, NULL);
	*n = got;
	return mqc_ok();
}

void mq_message_free(mq_message *m)
{
	free(m);
}

uint64_t mq_message_id(const mq_message *m)
{
	return m->id;
}

const char *mq_message_queue(const mq_message *m)
{
	return m->queue;
}

const void *mq_message_payload(const mq_message *m, size_t *len)
{
	if (len != NULL)
		*len = m->payload_len;
	return m->payload;
}

uint32_t mq_message_attempts(const mq_message *m)
{
	return m->attempts;
}

uint64_t mq_message_lease_token(const mq_message *m)
{
	return m->lease_token;
}

uint64_t mq_message_lease_expiry_ms(const mq_message *m)
{
	return m->lease_expiry_ms;
}

uint64_t mq_message_enqueued_ms(const mq_message *m)
{
	return m->enqueued_ms;
}

int32_t mq_message_priority(const mq_message *m)
{
	return m->priority;
}

const char *mq_message_group(const mq_message *m)
{
	return m->group;
}

uint64_t mq_message_expires_ms(const mq_message *m)
{
	return m->expires_ms;
}

const char *mq_message_dedup_key(const mq_message *m)
{
	return m->dedup_key;
}

const char *mq_message_type(const mq_message *m)
{
	return m->type;
}

size_t mq_message_header_count(const mq_message *m)
{
	return m->n_headers;
}

mq_header mq_message_header(const mq_message *m, size_t i)
{
	mq_header none = {NULL, NULL};

	return i < m->n_headers ? m->headers[i] : none;
}

uint32_t mq_message_state(const mq_message *m)
{
	return m->state;
}

const char *mq_message_dead_reason(const mq_message *m)
{
	return m->dead_reason;
}

const char *mq_message_last_error(const mq_message *m)
{
	return m->last_error;
}

uint64_t mq_message_not_before_ms(const mq_message *m)
{
	return m->not_before_ms;
}

size_t mq_message_history_count(const mq_message *m)
{
	return m->n_history;
}

mq_attempt mq_message_history(const mq_message *m, size_t i)
{
	mq_attempt none = {0, MQ_ATTEMPT_UNKNOWN, ""};

	return i < m->n_history ? m->history[i] : none;
}

/* ---- Ack, nack, extend ------------------------------------------------- */

mq_status mq_ack_id(mq_client *c, const char *queue, uint64_t id, uint64_t token)
{
	Mq__AckRequest req = MQ__ACK_REQUEST__INIT;
	ProtobufCMessage *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_ack: client is NULL");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	req.queue = (char *)queue;
	req.id = id;
	req.lease_token = token;
	if ((st = mqc_rpc(c, &req.base, 0, &rep)) != MQ_OK)
		return st;
	protobuf_c_message_free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_nack_id(mq_client *c, const char *queue, uint64_t id, uint64_t token,
                     uint64_t delay_ms, const char *error)
{
	Mq__NackRequest req = MQ__NACK_REQUEST__INIT;
	ProtobufCMessage *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_nack: client is NULL");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	req.queue = (char *)queue;
	req.id = id;
	req.lease_token = token;
	req.delay_ms = delay_ms;
	req.error = (char *)(error != NULL ? error : "");
	if ((st = mqc_rpc(c, &req.base, 0, &rep)) != MQ_OK)
		return st;
	protobuf_c_message_free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_snooze_id(mq_client *c, const char *queue, uint64_t id, uint64_t token,
                       uint64_t delay_ms)
{
	Mq__SnoozeRequest req = MQ__SNOOZE_REQUEST__INIT;
	ProtobufCMessage *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_snooze: client is NULL");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	req.queue = (char *)queue;
	req.id = id;
	req.lease_token = token;
	req.delay_ms = delay_ms;
	if ((st = mqc_rpc(c, &req.base, 0, &rep)) != MQ_OK)
		return st;
	protobuf_c_message_free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_snooze(mq_client *c, const mq_message *m, uint64_t delay_ms)
{
	if (m == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_snooze: message is NULL");
	return mq_snooze_id(c, m->queue, m->id, m->lease_token, delay_ms);
}

mq_status mq_extend_lease_id(mq_client *c, const char *queue, uint64_t id, uint64_t token,
                             uint32_t lease_ms, uint64_t *expiry_ms)
{
	Mq__ExtendLeaseRequest req = MQ__EXTEND_LEASE_REQUEST__INIT;
	Mq__ExtendLeaseReply *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_extend_lease: client is NULL");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	req.queue = (char *)queue;
	req.id = id;
	req.lease_token = token;
	req.lease_ms = lease_ms;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (expiry_ms != NULL)
		*expiry_ms = rep->lease_expiry_ms;
	mq__extend_lease_reply__free_unpacked(rep, NULL);
	return mqc_ok();
}

/* ---- Batch ack, nack, extend ------------------------------------------- */

/* lease_batch sends one of AckBatch, NackBatch, ExtendBatch (req, whose
 * queue and items are set by the caller through q and it) and unpacks the
 * per-item results. */
static mq_status lease_batch(mq_client *c, const char *what, ProtobufCMessage *req, char **qfield,
                             size_t *nfield, Mq__LeaseRef ***ifield, const char *queue,
                             const mq_lease_ref *items, size_t n, mq_lease_result *results)
{
	Mq__LeaseRef *refs = NULL, **refp = NULL;
	Mq__AckBatchReply *rep = NULL; /* the three replies are alike */
	mq_status st, first = MQ_OK;
	char first_msg[256] = "";

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "%s: client is NULL", what);
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	if (n == 0 || n > MQ_LEASE_BATCH_MAX || items == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "%s: want 1 to %d leases (not NULL), not %zu",
		                what, MQ_LEASE_BATCH_MAX, n);
	refs = calloc(n, sizeof(*refs));
	refp = calloc(n, sizeof(*refp));
	if (refs == NULL || refp == NULL) {
		st = mqc_fail(MQ_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		mq__lease_ref__init(&refs[i]);
		refs[i].id = items[i].id;
		refs[i].lease_token = items[i].token;
		refp[i] = &refs[i];
	}
	*qfield = (char *)queue;
	*nfield = n;
	*ifield = refp;
	st = mqc_rpc(c, req, 0, (ProtobufCMessage **)&rep);
	if (st != MQ_OK)
		goto out;
	if (rep->n_results != n) {
		st = mqc_fail(MQ_INTERNAL, "%s: %zu results for %zu leases", what, rep->n_results,
		              n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const Mq__ItemResult *res = rep->results[i];
		mq_status rs =
		    res->status > MQ_UNAUTHENTICATED ? MQ_UNKNOWN : (mq_status)res->status;

		if (rs != MQ_OK && first == MQ_OK) {
			first = rs;
			snprintf(first_msg, sizeof(first_msg), "%s", res->message);
		}
		if (results != NULL) {
			results[i].status = rs;
			results[i].lease_expiry_ms = res->lease_expiry_ms;
		}
	}
	st = first == MQ_OK ? mqc_ok() : mqc_fail(first, "%s", first_msg);
out:
	if (st != MQ_OK && results != NULL && rep == NULL)
		for (size_t i = 0; i < n; i++)
			results[i] = (mq_lease_result){.status = st};
	free(refs);
	free(refp);
	if (rep != NULL)
		protobuf_c_message_free_unpacked(&rep->base, NULL);
	return st;
}

mq_status mq_ack_batch(mq_client *c, const char *queue, const mq_lease_ref *items, size_t n,
                       mq_lease_result *results)
{
	Mq__AckBatchRequest req = MQ__ACK_BATCH_REQUEST__INIT;

	return lease_batch(c, "mq_ack_batch", &req.base, &req.queue, &req.n_items, &req.items,
	                   queue, items, n, results);
}

mq_status mq_nack_batch(mq_client *c, const char *queue, const mq_lease_ref *items, size_t n,
                        uint64_t delay_ms, const char *error, mq_lease_result *results)
{
	Mq__NackBatchRequest req = MQ__NACK_BATCH_REQUEST__INIT;

	req.delay_ms = delay_ms;
	req.error = (char *)(error != NULL ? error : "");
	return lease_batch(c, "mq_nack_batch", &req.base, &req.queue, &req.n_items, &req.items,
	                   queue, items, n, results);
}

mq_status mq_extend_batch(mq_client *c, const char *queue, const mq_lease_ref *items, size_t n,
                          uint32_t lease_ms, mq_lease_result *results)
{
	Mq__ExtendBatchRequest req = MQ__EXTEND_BATCH_REQUEST__INIT;

	req.lease_ms = lease_ms;
	return lease_batch(c, "mq_extend_batch", &req.base, &req.queue, &req.n_items, &req.items,
	                   queue, items, n, results);
}

mq_status mq_ack(mq_client *c, const mq_message *m)
{
	if (m == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_ack: message is NULL");
	return mq_ack_id(c, m->queue, m->id, m->lease_token);
}

mq_status mq_nack(mq_client *c, const mq_message *m, uint64_t delay_ms, const char *error)
{
	if (m == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_nack: message is NULL");
	return mq_nack_id(c, m->queue, m->id, m->lease_token, delay_ms, error);
}

mq_status mq_extend_lease(mq_client *c, mq_message *m, uint32_t lease_ms)
{
	if (m == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_extend_lease: message is NULL");
	return mq_extend_lease_id(c, m->queue, m->id, m->lease_token, lease_ms,
	                          &m->lease_expiry_ms);
}

/* ---- Term ------------------------------------------------------------- */

#define MQC_REASON_MAX 1024

mq_status mq_term_id(mq_client *c, const char *queue, uint64_t id, uint64_t token,
                     const char *reason)
{
	Mq__TermRequest req = MQ__TERM_REQUEST__INIT;
	ProtobufCMessage *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_term: client is NULL");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	if (reason != NULL && strlen(reason) > MQC_REASON_MAX)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_term: the reason is longer than %d bytes",
		                MQC_REASON_MAX);
	req.queue = (char *)queue;
	req.id = id;
	req.lease_token = token;
	req.reason = (char *)(reason != NULL ? reason : "");
	if ((st = mqc_rpc(c, &req.base, 0, &rep)) != MQ_OK)
		return st;
	protobuf_c_message_free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_term(mq_client *c, const mq_message *m, const char *reason)
{
	if (m == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_term: message is NULL");
	return mq_term_id(c, m->queue, m->id, m->lease_token, reason);
}

/* ---- Inspecting: list, get, delete --------------------------------------- */

mq_status mq_message_list(mq_client *c, const char *queue, const mq_list_opts *opts,
                          mq_message **msgs, size_t max, size_t *n, uint64_t *next_after,
                          bool *more)
{
	Mq__ListMessagesRequest req = MQ__LIST_MESSAGES_REQUEST__INIT;
	Mq__ListMessagesReply *rep = NULL;
	size_t got;
	mq_status st;

	if (c == NULL || msgs == NULL || n == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_message_list: client, msgs and n are required");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	if (max < 1 || max > MQC_PULL_MAX)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_message_list: max is %zu, want 1 to %d",
		                max, MQC_PULL_MAX);
	req.queue = (char *)queue;
	req.limit = (uint32_t)max;
	if (opts != NULL) {
		switch (opts->state) {
		case 0:
			break;
		case MQ_STATE_READY:
			req.state = MQ__MESSAGE_STATE__STATE_READY;
			break;
		case MQ_STATE_DELAYED:
			req.state = MQ__MESSAGE_STATE__STATE_DELAYED;
			break;
		case MQ_STATE_LEASED:
			req.state = MQ__MESSAGE_STATE__STATE_LEASED;
			break;
		case MQ_STATE_DEAD:
			req.state = MQ__MESSAGE_STATE__STATE_DEAD;
			break;
		default:
			return mqc_fail(MQ_INVALID_ARGUMENT,
			                "mq_message_list: state 0x%x is not one MQ_STATE_* bit",
			                opts->state);
		}
		req.after_id = opts->after_id;
	}
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	got = rep->n_messages < max ? rep->n_messages : max;
	for (size_t i = 0; i < got; i++) {
		if ((msgs[i] = mqc_message_from(rep->messages[i])) == NULL) {
			while (i > 0)
				free(msgs[--i]);
			mq__list_messages_reply__free_unpacked(rep, NULL);
			return mqc_fail(MQ_INTERNAL, "out of memory");
		}
	}
	if (next_after != NULL)
		*next_after = got < rep->n_messages ? msgs[got - 1]->id : rep->next_after_id;
	if (more != NULL)
		*more = rep->more || got < rep->n_messages;
	mq__list_messages_reply__free_unpacked(rep, NULL);
	*n = got;
	return mqc_ok();
}

mq_status mq_message_get(mq_client *c, const char *queue, uint64_t id, mq_message **out)
{
	Mq__GetMessageRequest req = MQ__GET_MESSAGE_REQUEST__INIT;
	Mq__GetMessageReply *rep = NULL;
	mq_status st;

	if (c == NULL || out == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_message_get: client and out are required");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	req.queue = (char *)queue;
	req.id = id;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (rep->message == NULL) {
		mq__get_message_reply__free_unpacked(rep, NULL);
		return mqc_fail(MQ_INTERNAL, "mq_message_get: the reply holds no message");
	}
	*out = mqc_message_from(rep->message);
	mq__get_message_reply__free_unpacked(rep, NULL);
	if (*out == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");
	return mqc_ok();
}

mq_status mq_message_delete(mq_client *c, const char *queue, uint64_t id, uint32_t *state)
{
	Mq__DeleteMessageRequest req = MQ__DELETE_MESSAGE_REQUEST__INIT;
	Mq__DeleteMessageReply *rep = NULL;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_message_delete: client is NULL");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	req.queue = (char *)queue;
	req.id = id;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (state != NULL)
		*state = mqc_state_bit(rep->state);
	mq__delete_message_reply__free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_redrive(mq_client *c, const char *queue, const uint64_t *ids, size_t n_ids,
                     const char *to_queue, uint64_t *moved, bool *more)
{
	mq_redrive_opts o = {.ids = ids, .n_ids = n_ids, .to_queue = to_queue};

	return mq_redrive_ex(c, queue, &o, moved, more, NULL);
}

mq_status mq_redrive_ex(mq_client *c, const char *queue, const mq_redrive_opts *opts,
                        uint64_t *moved, bool *more, uint64_t *next_after)
{
	Mq__RedriveRequest req = MQ__REDRIVE_REQUEST__INIT;
	Mq__RedriveReply *rep = NULL;
	mq_redrive_opts none = {0};
	const mq_redrive_opts *o = opts != NULL ? opts : &none;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_redrive: client is NULL");
	if ((st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	if (o->to_queue != NULL && o->to_queue[0] != '\0' &&
	    (st = mqc_check_name("target queue name", o->to_queue)) != MQ_OK)
		return st;
	if (o->n_ids > MQ_REDRIVE_MAX || (o->n_ids > 0 && o->ids == NULL))
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_redrive: want 0 to %d ids (not NULL), not %zu", MQ_REDRIVE_MAX,
		                o->n_ids);
	req.queue = (char *)queue;
	req.ids = (uint64_t *)o->ids;
	req.n_ids = o->n_ids;
	req.to_queue = (char *)(o->to_queue != NULL ? o->to_queue : "");
	req.max = o->max;
	req.after_id = o->after_id;
	req.reason_prefix = (char *)(o->reason_prefix != NULL ? o->reason_prefix : "");
	req.type = (char *)(o->type != NULL ? o->type : "");
	req.dead_since_ms = o->dead_since_ms;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (moved != NULL)
		*moved = rep->redriven;
	if (more != NULL)
		*more = rep->more;
	if (next_after != NULL)
		*next_after = rep->next_after_id;
	mq__redrive_reply__free_unpacked(rep, NULL);
	return mqc_ok();
}
