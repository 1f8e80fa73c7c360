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
};

/* ---- Push -------------------------------------------------------------- */

/* push_fill sets pm from one message's payload and options, allocating its
 * header arrays (*hps, *hpp; freed by the caller). */
static mq_status push_fill(Mq__PushMessage *pm, const void *payload, size_t len,
                           const mq_push_opts *opts, Mq__Header **hps, Mq__Header ***hpp)
{
	mq__push_message__init(pm);
	*hps = NULL;
	*hpp = NULL;
	if (payload == NULL && len > 0)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_push: payload is NULL but len is %zu",
		                len);
	if (opts != NULL) {
		if (opts->dedup_mode != MQ_DEDUP_IGNORE && opts->dedup_mode != MQ_DEDUP_REPLACE)
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
		pm->dedup_mode = opts->dedup_mode == MQ_DEDUP_REPLACE
		                     ? MQ__DEDUP_MODE__DEDUP_REPLACE
		                     : MQ__DEDUP_MODE__DEDUP_IGNORE;
		pm->delay_ms = opts->delay_ms;
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
		st = push_fill(&pm[i], payloads[i], lens[i], opts != NULL ? &opts[i] : NULL,
		               &hps[i], &hpp[i]);
		if (st != MQ_OK)
			goto out;
		pms[i] = &pm[i];
	}
	req.queue = (char *)queue;
	req.n_messages = n;
	req.messages = pms;
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
		if (rs != MQ_OK && first == MQ_OK) {
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

/* mqc_message_from copies a wire message into one heap block. */
static mq_message *mqc_message_from(const Mq__Message *w)
{
	size_t size = sizeof(mq_message) + w->n_headers * sizeof(mq_header);
	mq_message *m;
	char *p;

	size += strlen(w->queue) + 1 + strlen(w->dedup_key) + 1 + strlen(w->type) + 1;
	size += w->payload.len + 1;
	for (size_t i = 0; i < w->n_headers; i++)
		size += strlen(w->headers[i]->key) + 1 + strlen(w->headers[i]->value) + 1;
	if ((m = malloc(size)) == NULL)
		return NULL;
	m->id = w->id;
	m->lease_token = w->lease_token;
	m->lease_expiry_ms = w->lease_expiry_ms;
	m->enqueued_ms = w->enqueued_ms;
	m->attempts = w->attempts;
	m->priority = w->priority;
	m->n_headers = w->n_headers;
	m->headers = (mq_header *)(m + 1);
	p = (char *)(m->headers + w->n_headers);
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
