/* SPDX-License-Identifier: MIT */
/*
 * jobs.c: the job state machine of storage.h: push, pull, ack, nack,
 * term, extend, redrive, tick, next_due, and browsing (message get, list,
 * delete). Every transition rewrites the message record, moves its one
 * index entry (ready, timers or dead) and adjusts the queue's counters in
 * the transaction's cache; a failed attempt (nack, lease expiry, term)
 * also appends to the message's bounded history. Request errors are found
 * before the first write; nothing here allocates per operation (records
 * are encoded into the store's scratch buffer) and nothing scans: each
 * step is a few O(log n) lookups, except listing and redriving, which walk
 * one queue's key range, bounded per call.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *state_name(uint8_t s)
{
	switch (s) {
	case STORE_STATE_READY:
		return "READY";
	case STORE_STATE_DELAYED:
		return "DELAYED";
	case STORE_STATE_LEASED:
		return "LEASED";
	case STORE_STATE_DEAD:
		return "DEAD";
	default:
		return "?";
	}
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - 1 - b ? UINT64_MAX - 1 : a + b;
}

mq_status store_msg_put(store_txn *t, uint32_t qid, uint64_t id, const rec_msg *m,
                        const store_header *h, size_t nh, const uint8_t **rec, store_err *err)
{
	uint8_t k[KEY_MSG_LEN];
	size_t n = store_rec_msg_size(m, h, nh);
	uint8_t *buf = store_scratch(t, n, err);

	if (!buf)
		return MQ_RESOURCE_EXHAUSTED;
	store_rec_msg_encode(buf, m, h, nh);
	key_msg(k, qid, id);
	if (rec)
		*rec = buf;
	return tx_put(t, KV_MSGS, k, sizeof(k), buf, n, err);
}

/* put_index adds the index entry of a message in state m->state. */
static mq_status put_index(store_txn *t, uint32_t qid, uint64_t id, const rec_msg *m,
                           store_err *err)
{
	uint8_t k[KEY_TIMER_LEN];

	switch (m->state) {
	case STORE_STATE_READY:
		key_ready(k, qid, m->priority, id);
		return tx_put(t, KV_READY, k, KEY_READY_LEN, "", 0, err);
	case STORE_STATE_DEAD:
		key_msg(k, qid, id);
		return tx_put(t, KV_DEAD, k, KEY_DEAD_LEN, "", 0, err);
	default:
		key_timer(k, m->due_ms, qid, id);
		return tx_put(t, KV_TIMERS, k, KEY_TIMER_LEN, "", 0, err);
	}
}

kv_db store_index_key(uint8_t k[KEY_TIMER_LEN], size_t *klen, uint32_t qid, uint64_t id,
                      const rec_msg *m)
{
	switch (m->state) {
	case STORE_STATE_READY:
		key_ready(k, qid, m->priority, id);
		*klen = KEY_READY_LEN;
		return KV_READY;
	case STORE_STATE_DEAD:
		key_msg(k, qid, id);
		*klen = KEY_DEAD_LEN;
		return KV_DEAD;
	default:
		key_timer(k, m->due_ms, qid, id);
		*klen = KEY_TIMER_LEN;
		return KV_TIMERS;
	}
}

/* msg_view fills a store_msg from an encoded record. */
static mq_status msg_view(store_txn *t, const qent *q, uint64_t id, const rec_msg *r, store_msg *m,
                          store_err *err)
{
	store_header *h = NULL;

	m->n_history = r->n_hist;
	if (r->n_hist && !store_rec_history_decode(r, m->history))
		return store_fail(t, err, MQ_DATA_LOSS, "message %" PRIu64 " history is corrupted",
		                  id);
	if (r->n_headers) {
		if (!(h = store_hdr_scratch(t, r->n_headers, err)))
			return MQ_RESOURCE_EXHAUSTED;
		if (!store_rec_headers_decode(r, h))
			return store_fail(t, err, MQ_DATA_LOSS,
			                  "message %" PRIu64 " headers are corrupted", id);
	}
	m->id = id;
	m->queue = q->name;
	m->payload = r->payload;
	m->payload_len = r->payload_len;
	m->attempts = r->attempts;
	m->state = r->state;
	m->lease_token = r->state == STORE_STATE_LEASED ? r->lease_token : 0;
	m->lease_expiry_ms = r->state == STORE_STATE_LEASED ? r->due_ms : 0;
	m->enqueued_ms = r->enqueued_ms;
	m->not_before_ms = r->state == STORE_STATE_DELAYED ? r->due_ms : 0;
	m->priority = r->priority;
	m->dedup_key = r->dedup;
	m->group = r->group;
	m->expire_ms = r->expire_ms;
	m->type = r->type;
	m->headers = h;
	m->n_headers = r->n_headers;
	m->error = r->error;
	m->dead_reason = r->state == STORE_STATE_DEAD ? r->reason : "";
	return MQ_OK;
}

/* ---- push ----------------------------------------------------------------- */

static mq_status push_check(const store_push_msg *m, size_t *dlen, size_t *tlen, size_t *glen,
                            store_err *err)
{
	if (!m)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "push: no message");
	if (m->payload_len && !m->payload)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "push: payload is NULL");
	if (m->delay_ms && m->not_before_ms)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "push: give a delay or a not-before time, not both");
	*glen = m->group ? strlen(m->group) : 0;
	if (*glen > STORE_GROUP_MAX)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "push: the group key is longer than %u bytes", STORE_GROUP_MAX);
	if (m->dedup_mode != STORE_DEDUP_IGNORE && m->dedup_mode != STORE_DEDUP_REPLACE &&
	    m->dedup_mode != STORE_DEDUP_DEBOUNCE)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "push: unknown dedup mode %d",
		                    (int)m->dedup_mode);
	*dlen = m->dedup_key ? strlen(m->dedup_key) : 0;
	if (*dlen > STORE_DEDUP_MAX)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "push: the dedup key is longer than %u bytes", STORE_DEDUP_MAX);
	*tlen = m->type ? strlen(m->type) : 0;
	if (*tlen > STORE_TYPE_MAX)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "push: the type is longer than %u bytes", STORE_TYPE_MAX);
	if (m->n_headers && !m->headers)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "push: headers are NULL");
	for (size_t i = 0; i < m->n_headers; i++)
		if (!m->headers[i].key || !m->headers[i].key[0] || !m->headers[i].value)
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "push: header %zu has no key or value", i);
		else if (strcmp(m->headers[i].key, STORE_ORIGIN_HEADER) == 0)
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "push: header %s is reserved (dead-letter origin)",
			                    STORE_ORIGIN_HEADER);
	return MQ_OK;
}

/* push_replace applies a REPLACE or DEBOUNCE push to the holder id of the
 * dedup key. The holder keeps its id, attempts, history, expiry and its
 * group and place in it; a holder waiting behind its group's head stays
 * there (only its record changes). DEBOUNCE keeps the later of the two
 * not-before times. */
static mq_status push_replace(store_txn *t, qent *q, uint64_t id, rec_msg *nm,
                              const store_push_msg *m, store_err *err)
{
	uint8_t ok[KEY_TIMER_LEN];
	size_t olen;
	kv_db odb;
	rec_msg old;
	uint8_t ostate;
	bool waiting;
	mq_status st;

	st = store_msg_get(t, q->qid, id, &old, err);
	if (st == MQ_NOT_FOUND)
		return store_fail(t, err, MQ_DATA_LOSS,
		                  "dedup key of queue %s names missing message %" PRIu64, q->name,
		                  id);
	if (st != MQ_OK)
		return st;
	if (old.state == STORE_STATE_LEASED)
		return MQ_OK; /* a leased holder is left as is */
	if (old.state != STORE_STATE_READY && old.state != STORE_STATE_DELAYED)
		return store_fail(t, err, MQ_DATA_LOSS,
		                  "dedup key of queue %s held by a %s message %" PRIu64, q->name,
		                  state_name(old.state), id);
	ostate = old.state;
	waiting = (old.flags & REC_MF_GROUP_WAIT) != 0;
	odb = store_index_key(ok, &olen, q->qid, id, &old);
	if (m->dedup_mode == STORE_DEDUP_DEBOUNCE && old.due_ms > nm->due_ms) {
		nm->due_ms = old.due_ms;
		nm->state = old.due_ms > t->now ? STORE_STATE_DELAYED : STORE_STATE_READY;
	}
	nm->attempts = old.attempts;
	nm->enqueued_ms = old.enqueued_ms;
	nm->error = old.error;
	nm->error_len = old.error_len;
	nm->hist = old.hist;
	nm->hist_len = old.hist_len;
	nm->n_hist = old.n_hist;
	nm->group = old.group;
	nm->group_len = old.group_len;
	nm->group_seq = old.group_seq;
	nm->flags = old.flags;
	nm->expire_ms = old.expire_ms;
	/* Encode first: old points into the store, which writes may move. */
	if ((st = store_msg_put(t, q->qid, id, nm, m->headers, m->n_headers, NULL, err)) != MQ_OK)
		return st;
	if (!waiting &&
	    (nm->state != ostate || nm->due_ms != old.due_ms || nm->priority != old.priority)) {
		if ((st = store_del_must(t, odb, ok, olen, err)) != MQ_OK ||
		    (st = put_index(t, q->qid, id, nm, err)) != MQ_OK)
			return st;
	}
	(*store_q_counter(q, ostate))--;
	(*store_q_counter(q, nm->state))++;
	if (nm->state == STORE_STATE_READY && !waiting)
		store_notify_ready(t, q);
	return MQ_OK;
}

/* push_limit_check refuses a push into a queue at its max_length. */
static mq_status push_limit_check(const qent *q, store_err *err)
{
	const store_queue_stats *s = &q->rec.stats;
	uint64_t live = s->ready + s->delayed + s->in_flight;

	if (q->rec.max_length && live >= q->rec.max_length)
		return store_seterr(err, MQ_RESOURCE_EXHAUSTED,
		                    "queue %s is full: it holds %" PRIu64
		                    " messages, its max_length is %" PRIu64,
		                    q->name, live, q->rec.max_length);
	return MQ_OK;
}

mq_status store_push(store_txn *t, const char *queue, bool auto_create, const store_push_msg *m,
                     store_push_result *r, store_err *err)
{
	store_err local;
	store_push_result rlocal;
	uint8_t dk[KEY_DEDUP_MAX], idv[8];
	size_t dlen = 0, tlen = 0, glen = 0, dklen = 0;
	uint64_t due = 0;
	rec_msg nm;
	qent *q;
	uint64_t id;
	mq_status st;

	if (!err)
		err = &local;
	if (!r)
		r = &rlocal;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = store_name_check(queue, err)) != MQ_OK ||
	    (st = push_check(m, &dlen, &tlen, &glen, err)) != MQ_OK)
		return st;
	if (m->delay_ms)
		due = add_sat(t->now, m->delay_ms);
	else if (m->not_before_ms > t->now)
		due = m->not_before_ms; /* a time past is ready now */
	nm = (rec_msg){
	    .state = due ? STORE_STATE_DELAYED : STORE_STATE_READY,
	    .priority = m->priority,
	    .enqueued_ms = t->now,
	    .due_ms = due,
	    .dedup = m->dedup_key,
	    .dedup_len = (uint32_t)dlen,
	    .type = m->type,
	    .type_len = (uint32_t)tlen,
	    .error = "",
	    .reason = "",
	    .group = glen ? m->group : "",
	    .group_len = (uint32_t)glen,
	    .payload = m->payload,
	    .payload_len = (uint32_t)m->payload_len,
	};
	if (m->payload_len > UINT32_MAX || store_rec_msg_size(&nm, m->headers, m->n_headers) == 0)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "push: message too large");
	/* the record, its index entries and dedup key (issue 5: map full) */
	if ((st = store_room(t, store_rec_msg_size(&nm, m->headers, m->n_headers) + 2 * dlen + 128,
	                     false, err)) != MQ_OK)
		return st;
	st = store_q_get(t, queue, &q, err);
	if (st == MQ_NOT_FOUND && auto_create)
		st = store_q_create(t, queue, NULL, &q, err);
	if (st != MQ_OK)
		return st;
	if (dlen) {
		bool completed;

		st = store_dedup_lookup(t, q, m->dedup_key, dlen, &id, &completed, err);
		if (st == MQ_OK) {
			q->rec.stats.deduplicated_total++;
			q->dirty = true;
			r->id = id;
			r->duplicate = true;
			if (m->dedup_mode != STORE_DEDUP_IGNORE && !completed)
				return push_replace(t, q, id, &nm, m, err);
			return MQ_OK;
		}
		if (st != MQ_NOT_FOUND)
			return st;
		dklen = key_dedup(dk, q->qid, m->dedup_key, dlen);
	}
	if ((st = push_limit_check(q, err)) != MQ_OK)
		return st;
	id = t->next_id++;
	nm.expire_ms = store_expiry_of(q, t->now, m->ttl_ms);
	if ((st = store_group_place(t, q->qid, &nm, id, err)) != MQ_OK ||
	    (st = store_group_add(t, q->qid, id, m->group, glen, id, err)) != MQ_OK ||
	    (st = store_msg_put(t, q->qid, id, &nm, m->headers, m->n_headers, NULL, err)) !=
	        MQ_OK ||
	    (!(nm.flags & REC_MF_GROUP_WAIT) &&
	     (st = put_index(t, q->qid, id, &nm, err)) != MQ_OK) ||
	    (st = store_expiry_put(t, q->qid, id, nm.expire_ms, err)) != MQ_OK)
		return st;
	if (dlen) {
		le64_put(idv, id);
		if ((st = tx_put(t, KV_DEDUP, dk, dklen, idv, sizeof(idv), err)) != MQ_OK)
			return st;
	}
	q->rec.stats.pushed_total++;
	(*store_q_counter(q, nm.state))++;
	q->dirty = true;
	r->id = id;
	r->duplicate = false;
	if (nm.state == STORE_STATE_READY && !(nm.flags & REC_MF_GROUP_WAIT))
		store_notify_ready(t, q);
	return MQ_OK;
}

/* ---- pull ------------------------------------------------------------------- */

/* PULL_ROUND: ready entries store_pull reads (and has fetched) at once. */
#define PULL_ROUND 64u

static mq_status pull_one(store_txn *t, qent *q, const uint8_t rk[KEY_READY_LEN], uint32_t lease,
                          store_msg_cb cb, void *arg, bool *stop, store_err *err);

mq_status store_pull(store_txn *t, const char *queue, uint32_t max, uint32_t lease_ms,
                     store_msg_cb cb, void *arg, uint32_t *n, store_err *err)
{
	store_err local;
	uint32_t count = 0, lease;
	uint8_t pfx[4];
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if (n)
		*n = 0;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = store_q_get(t, queue, &q, err)) != MQ_OK)
		return st;
	if (q->rec.paused)
		return MQ_OK; /* nothing is handed out; resume wakes the waiters */
	lease = store_q_lease_ms(t, q, lease_ms);
	be32_put(pfx, q->qid);
	while (count < max) {
		/* A round: the next ready entries (one index walk), their
		 * records fetched together where the engine can (kv prefetch),
		 * then each one leased. Leasing adds nothing to the ready index,
		 * so the entries walked stay the head of the queue. */
		uint8_t rks[PULL_ROUND][KEY_READY_LEN], mks[PULL_ROUND][KEY_MSG_LEN];
		kv_val keys[PULL_ROUND];
		uint32_t want = max - count < PULL_ROUND ? max - count : PULL_ROUND, got = 0;
		kv_val k, v;

		for (st = tx_seek(t, KV_READY, pfx, sizeof(pfx), &k, &v, err);
		     st == MQ_OK && got < want; st = tx_next(t, KV_READY, &k, &v, err)) {
			if (k.len != KEY_READY_LEN || memcmp(k.data, pfx, sizeof(pfx)) != 0)
				break;
			memcpy(rks[got], k.data, KEY_READY_LEN);
			key_msg(mks[got], q->qid, be64_get(rks[got] + 8));
			keys[got].data = mks[got];
			keys[got].len = KEY_MSG_LEN;
			got++;
		}
		if (st != MQ_OK && st != MQ_NOT_FOUND)
			return st;
		if (got == 0)
			break;
		if (got > 1 && t->s->ops->prefetch &&
		    (st = tx_chk(t, t->s->ops->prefetch(t->kv, KV_MSGS, keys, got, err))) != MQ_OK)
			return st;
		for (uint32_t i = 0; i < got; i++) {
			bool stop = false;

			if ((st = pull_one(t, q, rks[i], lease, cb, arg, &stop, err)) != MQ_OK)
				return count ? (store_txn_failed(t) ? st : MQ_OK) : st;
			if (stop)
				return MQ_OK;
			count++;
			if (n)
				*n = count;
		}
		if (got < want)
			break; /* the queue ran dry */
	}
	return MQ_OK;
}

/* pull_one leases the message of ready entry rk (see store_pull); *stop
 * when cb refused it (nothing written). A room refusal is returned as is:
 * the caller keeps what it leased so far. */
static mq_status pull_one(store_txn *t, qent *q, const uint8_t rk[KEY_READY_LEN], uint32_t lease,
                          store_msg_cb cb, void *arg, bool *stop, store_err *err)
{
	{
		char dkey[STORE_DEDUP_MAX];
		size_t dlen;
		const uint8_t *enc;
		rec_msg mr;
		uint64_t id = be64_get(rk + 8);
		mq_status st;

		st = store_msg_get(t, q->qid, id, &mr, err);
		if (st == MQ_NOT_FOUND || (st == MQ_OK && mr.state != STORE_STATE_READY))
			return store_fail(t, err, MQ_DATA_LOSS,
			                  "ready index of queue %s names a missing or non-ready "
			                  "message %" PRIu64,
			                  q->name, id);
		if (st != MQ_OK)
			return st;
		/* the record is written again: at the size limit, lease what fits */
		if ((st = store_room_rewrite(t, &mr, err)) != MQ_OK)
			return st;
		mr.state = STORE_STATE_LEASED;
		mr.attempts++;
		mr.lease_token = t->next_token;
		mr.due_ms = add_sat(t->now, lease);
		if (cb) {
			store_msg view;

			/* The caller sees the message as it will be once leased, before
			 * anything is written: a refusal leaves it untouched. The view
			 * points into the record as read (valid until the first write). */
			if ((st = msg_view(t, q, id, &mr, &view, err)) != MQ_OK)
				return st;
			if (cb(arg, &view) != 0) {
				*stop = true;
				return MQ_OK;
			}
		}
		t->next_token++;
		dlen = mr.dedup_len;
		if (dlen && store_q_dedup_scope(q) == STORE_DEDUP_SCOPE_WAITING)
			memcpy(dkey, mr.dedup, dlen);
		else
			dlen = 0;
		if ((st = store_msg_put(t, q->qid, id, &mr, NULL, 0, &enc, err)) != MQ_OK ||
		    (st = store_del_must(t, KV_READY, rk, KEY_READY_LEN, err)) != MQ_OK ||
		    (st = put_index(t, q->qid, id, &mr, err)) != MQ_OK ||
		    (st = store_dedup_release(t, q, dkey, dlen, id, err)) != MQ_OK)
			return st;
		q->rec.stats.ready--;
		q->rec.stats.in_flight++;
		q->dirty = true;
	}
	return MQ_OK;
}

/* ---- ack, nack, extend -------------------------------------------------------- */

mq_status store_prefetch_messages(store_txn *t, const char *queue, const uint64_t *ids, size_t n,
                                  store_err *err)
{
	uint8_t mks[STORE_PREFETCH_MAX][KEY_MSG_LEN];
	kv_val keys[STORE_PREFETCH_MAX];
	store_err local;
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if (!t->s->ops->prefetch || n < 2)
		return MQ_OK;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	if ((st = store_q_get(t, queue, &q, err)) != MQ_OK)
		return store_txn_failed(t) ? st : MQ_OK;
	if (n > STORE_PREFETCH_MAX)
		n = STORE_PREFETCH_MAX;
	for (size_t i = 0; i < n; i++) {
		key_msg(mks[i], q->qid, ids[i]);
		keys[i].data = mks[i];
		keys[i].len = KEY_MSG_LEN;
	}
	return tx_chk(t, t->s->ops->prefetch(t->kv, KV_MSGS, keys, n, err));
}

/* lease_find checks that id is leased in queue with token, live by the
 * store clock. */
static mq_status lease_find(store_txn *t, const char *queue, uint64_t id, uint64_t token, qent **q,
                            rec_msg *m, store_err *err)
{
	mq_status st;

	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = store_q_get(t, queue, q, err)) != MQ_OK)
		return st;
	st = store_msg_get(t, (*q)->qid, id, m, err);
	if (st == MQ_NOT_FOUND)
		return store_seterr(err, MQ_NOT_FOUND, "message %" PRIu64 " not found in queue %s",
		                    id, queue);
	if (st != MQ_OK)
		return st;
	if (m->state != STORE_STATE_LEASED)
		return store_seterr(err, MQ_FAILED_PRECONDITION,
		                    "message %" PRIu64 " is not leased (it is %s)", id,
		                    state_name(m->state));
	if (token != m->lease_token)
		return store_seterr(err, MQ_FAILED_PRECONDITION,
		                    "lease token %" PRIu64 " is not the current lease of message "
		                    "%" PRIu64,
		                    token, id);
	if (m->due_ms <= t->now)
		return store_seterr(err, MQ_FAILED_PRECONDITION,
		                    "the lease of message %" PRIu64 " expired", id);
	return MQ_OK;
}

mq_status store_ack(store_txn *t, const char *queue, uint64_t id, uint64_t token, store_err *err)
{
	store_err local;
	char dkey[STORE_DEDUP_MAX];
	size_t dlen;
	qent *q;
	rec_msg m;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = lease_find(t, queue, id, token, &q, &m, err)) != MQ_OK)
		return st;
	dlen = m.dedup_len;
	memcpy(dkey, m.dedup, dlen);
	if ((st = store_msg_remove(t, q, id, &m, err)) != MQ_OK ||
	    (st = store_dedup_complete(t, q, dkey, dlen, id, err)) != MQ_OK)
		return st;
	q->rec.stats.acked_total++;
	return MQ_OK;
}

static mq_status msg_headers(store_txn *t, const rec_msg *m, uint64_t id, size_t extra,
                             store_header **h, store_err *err);
static bool drop_origin(store_header *h, size_t *n);

/* ---- dead-letter queues ---------------------------------------------------------- */

/* store_dlq_of finds q's dead-letter queue: *dlq NULL when it has none, names
 * itself, or names a queue that no longer exists (its dead messages then
 * stay in q). */
mq_status store_dlq_of(store_txn *t, qent *q, qent **dlq, store_err *err)
{
	const char *name = q->rec.dlq;
	mq_status st;

	*dlq = NULL;
	if (!name[0] || strcmp(name, q->name) == 0)
		return MQ_OK;
	st = store_q_get(t, name, dlq, err);
	if (st == MQ_NOT_FOUND) {
		*dlq = NULL;
		return MQ_OK;
	}
	return st;
}

/* store_dead_letter moves message id of q (record m, now DEAD, whose index
 * entry is still the old one at okey in odb; oklen 0 = none) into dlq as a DEAD message, with
 * the origin header naming q, and counts it. Reason, history, payload and
 * id are kept. The caller frees its dedup key, expiry entry and group
 * place in q. */
mq_status store_dead_letter(store_txn *t, qent *q, qent *dlq, uint64_t id, rec_msg *m,
                            uint8_t ostate, kv_db odb, const uint8_t *okey, size_t oklen,
                            store_err *err)
{
	uint8_t mk[KEY_MSG_LEN];
	size_t nh = m->n_headers;
	store_header *h;
	mq_status st;

	if ((st = msg_headers(t, m, id, 1, &h, err)) != MQ_OK)
		return st;
	drop_origin(h, &nh);
	h[nh].key = STORE_ORIGIN_HEADER;
	h[nh++].value = q->name;
	key_msg(mk, q->qid, id);
	/* Encode first: m points into the store, which writes may move. */
	if ((st = store_msg_put(t, dlq->qid, id, m, h, nh, NULL, err)) != MQ_OK ||
	    (oklen && (st = store_del_must(t, odb, okey, oklen, err)) != MQ_OK) ||
	    (st = store_del_must(t, KV_MSGS, mk, sizeof(mk), err)) != MQ_OK ||
	    (st = put_index(t, dlq->qid, id, m, err)) != MQ_OK)
		return st;
	(*store_q_counter(q, ostate))--;
	q->rec.stats.dead_total++;
	dlq->rec.stats.dead++;
	q->dirty = dlq->dirty = true;
	return MQ_OK;
}

/* settle moves message id (record m, whose index entry is still the old
 * one at okey) to m->state. A message back from a lease past its expiry
 * goes DEAD ("expired") instead. Going DEAD frees its dedup key, its
 * expiry entry and its place in its group (the next one is promoted), and
 * in a queue with a dead-letter queue moves the message there; back to
 * waiting in the WAITING scope, it takes its key again if free. */
static mq_status settle(store_txn *t, qent *q, uint64_t id, rec_msg *m, uint8_t ostate,
                        const uint8_t *okey, store_err *err)
{
	char dkey[STORE_DEDUP_MAX], gkey[STORE_GROUP_MAX];
	size_t dlen = m->dedup_len, glen = m->group_len;
	uint64_t seq = m->group_seq, exp = m->expire_ms;
	qent *dlq = NULL;
	mq_status st;

	if (ostate == STORE_STATE_LEASED && m->state != STORE_STATE_DEAD && store_expired(t, m))
		store_mark_expired(m);
	memcpy(dkey, m->dedup, dlen);
	memcpy(gkey, m->group, glen);
	if (m->state == STORE_STATE_DEAD && (st = store_dlq_of(t, q, &dlq, err)) != MQ_OK)
		return st;
	if (dlq != NULL) {
		if ((st = store_dead_letter(t, q, dlq, id, m, ostate, KV_TIMERS, okey,
		                            KEY_TIMER_LEN, err)) != MQ_OK)
			return st;
	} else if ((st = store_msg_put(t, q->qid, id, m, NULL, 0, NULL, err)) != MQ_OK ||
	           (st = store_del_must(t, KV_TIMERS, okey, KEY_TIMER_LEN, err)) != MQ_OK ||
	           (st = put_index(t, q->qid, id, m, err)) != MQ_OK) {
		return st;
	}
	if (m->state == STORE_STATE_DEAD) {
		if ((st = store_dedup_release(t, q, dkey, dlen, id, err)) != MQ_OK ||
		    (st = store_expiry_del(t, q->qid, id, exp, err)) != MQ_OK ||
		    (st = store_group_leave(t, q, gkey, glen, seq, true, err)) != MQ_OK)
			return st;
	} else if (ostate == STORE_STATE_LEASED &&
	           store_q_dedup_scope(q) == STORE_DEDUP_SCOPE_WAITING &&
	           (st = store_dedup_take(t, q, dkey, dlen, id, err)) != MQ_OK) {
		return st;
	}
	if (dlq == NULL) { /* store_dead_letter counted a moved message */
		(*store_q_counter(q, ostate))--;
		(*store_q_counter(q, m->state))++;
		if (m->state == STORE_STATE_DEAD)
			q->rec.stats.dead_total++;
	}
	q->dirty = true;
	if (m->state == STORE_STATE_READY)
		store_notify_ready(t, q);
	return MQ_OK;
}

/* fail_attempt records a failed attempt of leased message m (history
 * entry into hist) and sets its next state: DEAD with reason when dead (a
 * printf format with the queue's max attempts), else READY or DELAYED. */
static void fail_attempt(store_txn *t, rec_msg *m, uint8_t *hist, uint32_t outcome,
                         const char *error, bool dead, const char *reason, uint64_t delay_ms)
{
	m->hist_len = store_rec_history_append(hist, m, t->now, outcome, error, &m->n_hist);
	m->hist = hist;
	if (dead) {
		m->state = STORE_STATE_DEAD;
		m->due_ms = 0;
		m->reason = reason;
		m->reason_len = (uint32_t)strlen(reason);
	} else if (delay_ms) {
		m->state = STORE_STATE_DELAYED;
		m->due_ms = add_sat(t->now, delay_ms);
	} else {
		m->state = STORE_STATE_READY;
		m->due_ms = 0;
	}
	m->lease_token = 0;
}

/* retry_delay is the backoff of a nack without delay at attempt n (>= 1):
 * min(base * 2^(n-1), max) with +-20% jitter; 0 when the queue has none.
 * The jitter is a hash of the message, attempt and time: no global state,
 * spread across messages failing together. */
static uint64_t retry_delay(const store_txn *t, const qent *q, uint64_t id, uint32_t n)
{
	uint64_t base = q->rec.retry_base_ms, max = q->rec.retry_max_ms, d, x;

	if (!base)
		return 0;
	if (!max)
		max = STORE_MAX_RETRY_MS;
	d = n > 1 && n - 1 < 40 ? base << (n - 1) : base;
	if (n - 1 >= 40 || d > max)
		d = max;
	/* splitmix64 */
	x = id ^ ((uint64_t)n << 48) ^ t->now;
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	/* d * [0.8, 1.2] */
	d = d * 8 / 10 + (d * 4 / 10 ? x % (d * 4 / 10 + 1) : 0);
	return d ? d : 1;
}

mq_status store_nack(store_txn *t, const char *queue, uint64_t id, uint64_t token,
                     uint64_t delay_ms, const char *error, store_err *err)
{
	store_err local;
	uint8_t okey[KEY_TIMER_LEN], hist[STORE_HIST_BUF_MAX];
	char reason[64];
	size_t elen = error ? strlen(error) : 0;
	uint32_t max;
	qent *q;
	rec_msg m;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = lease_find(t, queue, id, token, &q, &m, err)) != MQ_OK)
		return st;
	key_timer(okey, m.due_ms, q->qid, id);
	max = store_q_max_attempts(t, q);
	snprintf(reason, sizeof(reason), "max attempts reached (%" PRIu32 ")", max);
	if (!delay_ms)
		delay_ms = retry_delay(t, q, id, m.attempts);
	fail_attempt(t, &m, hist, STORE_OUTCOME_NACKED, error, m.attempts >= max, reason, delay_ms);
	m.error = error ? error : "";
	m.error_len = (uint32_t)(elen > STORE_ERROR_MAX ? STORE_ERROR_MAX : elen);
	q->rec.stats.nacked_total++;
	return settle(t, q, id, &m, STORE_STATE_LEASED, okey, err);
}

mq_status store_term(store_txn *t, const char *queue, uint64_t id, uint64_t token,
                     const char *reason, store_err *err)
{
	store_err local;
	uint8_t okey[KEY_TIMER_LEN], hist[STORE_HIST_BUF_MAX];
	char why[STORE_REASON_MAX + 16];
	size_t rlen = reason ? strlen(reason) : 0;
	qent *q;
	rec_msg m;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = lease_find(t, queue, id, token, &q, &m, err)) != MQ_OK)
		return st;
	if (rlen > STORE_REASON_MAX)
		rlen = STORE_REASON_MAX;
	snprintf(why, sizeof(why), "termed: %.*s", (int)rlen, reason ? reason : "");
	key_timer(okey, m.due_ms, q->qid, id);
	fail_attempt(t, &m, hist, STORE_OUTCOME_TERMED, reason, true, why, 0);
	m.error = reason ? reason : "";
	m.error_len = (uint32_t)(rlen > STORE_ERROR_MAX ? STORE_ERROR_MAX : rlen);
	return settle(t, q, id, &m, STORE_STATE_LEASED, okey, err);
}

mq_status store_snooze(store_txn *t, const char *queue, uint64_t id, uint64_t token,
                       uint64_t delay_ms, store_err *err)
{
	store_err local;
	uint8_t okey[KEY_TIMER_LEN];
	qent *q;
	rec_msg m;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = lease_find(t, queue, id, token, &q, &m, err)) != MQ_OK)
		return st;
	key_timer(okey, m.due_ms, q->qid, id);
	if (m.attempts)
		m.attempts--; /* the pull counted this delivery: give it back */
	m.lease_token = 0;
	if (delay_ms) {
		m.state = STORE_STATE_DELAYED;
		m.due_ms = add_sat(t->now, delay_ms);
	} else {
		m.state = STORE_STATE_READY;
		m.due_ms = 0;
	}
	return settle(t, q, id, &m, STORE_STATE_LEASED, okey, err);
}

mq_status store_extend(store_txn *t, const char *queue, uint64_t id, uint64_t token,
                       uint32_t lease_ms, uint64_t *expiry_ms, store_err *err)
{
	store_err local;
	uint8_t okey[KEY_TIMER_LEN];
	uint64_t due;
	qent *q;
	rec_msg m;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = lease_find(t, queue, id, token, &q, &m, err)) != MQ_OK)
		return st;
	due = add_sat(t->now, store_q_lease_ms(t, q, lease_ms));
	if (due != m.due_ms) {
		key_timer(okey, m.due_ms, q->qid, id);
		m.due_ms = due;
		if ((st = store_msg_put(t, q->qid, id, &m, NULL, 0, NULL, err)) != MQ_OK ||
		    (st = store_del_must(t, KV_TIMERS, okey, sizeof(okey), err)) != MQ_OK ||
		    (st = put_index(t, q->qid, id, &m, err)) != MQ_OK)
			return st;
	}
	if (expiry_ms)
		*expiry_ms = due;
	return MQ_OK;
}

/* ---- browsing --------------------------------------------------------------- */

mq_status store_message_get(store_txn *t, const char *queue, uint64_t id, store_msg_cb cb,
                            void *arg, store_err *err)
{
	store_err local;
	store_msg view;
	qent *q;
	rec_msg m;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = store_q_get(t, queue, &q, err)) != MQ_OK)
		return st;
	st = store_msg_get(t, q->qid, id, &m, err);
	if (st == MQ_NOT_FOUND)
		return store_seterr(err, MQ_NOT_FOUND, "message %" PRIu64 " not found in queue %s",
		                    id, queue);
	if (st != MQ_OK || (st = msg_view(t, q, id, &m, &view, err)) != MQ_OK)
		return st;
	if (cb)
		cb(arg, &view);
	return MQ_OK;
}

mq_status store_message_list(store_txn *t, const char *queue, uint32_t state_mask,
                             uint64_t after_id, uint32_t limit, store_msg_cb cb, void *arg,
                             uint64_t *next_after, bool *more, store_err *err)
{
	store_err local;
	uint32_t count = 0, scanned = 0;
	uint64_t last = after_id;
	bool dead_only, has_more = false;
	uint8_t key[KEY_MSG_LEN];
	kv_db db;
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	if (state_mask & ~STORE_STATE_ALL)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "list: unknown state bits 0x%x",
		                    (unsigned)(state_mask & ~STORE_STATE_ALL));
	if (!cb || limit == 0)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "list: a callback and a limit of 1 or more are required");
	if ((st = store_q_get(t, queue, &q, err)) != MQ_OK)
		return st;
	if (state_mask == 0)
		state_mask = STORE_STATE_ALL;
	/* DEAD alone has its own index with the same keys (qid | id). */
	dead_only = state_mask == STORE_STATE_DEAD;
	db = dead_only ? KV_DEAD : KV_MSGS;
	while (after_id != UINT64_MAX) {
		store_msg view;
		kv_val k, v;
		rec_msg m;
		uint64_t id;

		key_msg(key, q->qid, last + 1);
		st = tx_seek(t, db, key, sizeof(key), &k, &v, err);
		if (st == MQ_NOT_FOUND)
			break;
		if (st != MQ_OK)
			return st;
		if (k.len != KEY_MSG_LEN || be32_get(k.data) != q->qid)
			break;
		if (count == limit || scanned == STORE_LIST_SCAN_MAX) {
			has_more = true;
			break;
		}
		id = be64_get((const uint8_t *)k.data + 4);
		scanned++;
		if (dead_only) {
			st = store_msg_get(t, q->qid, id, &m, err);
			if (st == MQ_NOT_FOUND)
				return store_fail(t, err, MQ_DATA_LOSS,
				                  "dead index names missing message %" PRIu64, id);
			if (st != MQ_OK)
				return st;
		} else if (!store_rec_msg_decode(&m, v.data, v.len)) {
			return store_fail(t, err, MQ_DATA_LOSS,
			                  "message %" PRIu64 " record is corrupted", id);
		}
		if (m.state & state_mask) {
			if ((st = msg_view(t, q, id, &m, &view, err)) != MQ_OK)
				return st;
			if (cb(arg, &view) != 0) {
				has_more = true; /* refused: the next page starts with it */
				break;
			}
			count++;
		}
		last = id;
		if (id == UINT64_MAX)
			break;
	}
	if (next_after)
		*next_after = last;
	if (more)
		*more = has_more;
	return MQ_OK;
}

mq_status store_message_delete(store_txn *t, const char *queue, uint64_t id, uint32_t *state,
                               store_err *err)
{
	store_err local;
	qent *q;
	rec_msg m;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = store_q_get(t, queue, &q, err)) != MQ_OK)
		return st;
	st = store_msg_get(t, q->qid, id, &m, err);
	if (st == MQ_NOT_FOUND)
		return store_seterr(err, MQ_NOT_FOUND, "message %" PRIu64 " not found in queue %s",
		                    id, queue);
	if (st != MQ_OK)
		return st;
	if (state)
		*state = m.state;
	return store_msg_remove(t, q, id, &m, err);
}

/* ---- redrive ------------------------------------------------------------------ */

/* msg_headers decodes the headers of m into the header scratch. */
static mq_status msg_headers(store_txn *t, const rec_msg *m, uint64_t id, size_t extra,
                             store_header **h, store_err *err)
{
	*h = store_hdr_scratch(t, m->n_headers + extra, err);
	if (!*h)
		return MQ_RESOURCE_EXHAUSTED;
	if (!store_rec_headers_decode(m, *h))
		return store_fail(t, err, MQ_DATA_LOSS, "message %" PRIu64 " headers are corrupted",
		                  id);
	return MQ_OK;
}

/* drop_origin removes STORE_ORIGIN_HEADER from h[0..*n); true if it was there. */
static bool drop_origin(store_header *h, size_t *n)
{
	bool found = false;
	size_t j = 0;

	for (size_t i = 0; i < *n; i++) {
		if (strcmp(h[i].key, STORE_ORIGIN_HEADER) == 0)
			found = true;
		else
			h[j++] = h[i];
	}
	*n = j;
	return found;
}

/* redrive_one moves DEAD message id of q (record m) to READY in queue to.
 * A grouped message rejoins its group at the back (a fresh seq); its
 * expiry clock restarts (the same time to live, from now); the origin
 * header goes. */
static mq_status redrive_one(store_txn *t, qent *q, qent *to, uint64_t id, rec_msg *m,
                             store_err *err)
{
	uint8_t mk[KEY_MSG_LEN], dk[KEY_DEDUP_MAX], idv[8];
	char gkey[STORE_GROUP_MAX];
	size_t dklen = 0, glen, nh = m->n_headers;
	store_header *h = NULL;
	kv_val v;
	mq_status st;

	if (nh) {
		if ((st = msg_headers(t, m, id, 0, &h, err)) != MQ_OK)
			return st;
		if (!drop_origin(h, &nh))
			h = NULL; /* unchanged: copy the encoded headers */
	}
	if (m->dedup_len) {
		dklen = key_dedup(dk, to->qid, m->dedup, m->dedup_len);
		st = tx_get(t, KV_DEDUP, dk, dklen, &v, err);
		if (st == MQ_OK) { /* held by another job: drop it from this one */
			m->dedup_len = 0;
			m->dedup = "";
			dklen = 0;
		} else if (st != MQ_NOT_FOUND) {
			return st;
		}
	}
	m->state = STORE_STATE_READY;
	m->attempts = 0;
	m->due_ms = 0;
	m->lease_token = 0;
	m->reason = "";
	m->reason_len = 0;
	if (m->expire_ms)
		m->expire_ms = add_sat(
		    t->now, m->expire_ms > m->enqueued_ms ? m->expire_ms - m->enqueued_ms : 1);
	key_msg(mk, q->qid, id);
	glen = m->group_len;
	memcpy(gkey, m->group, glen);
	if ((st = store_group_place(t, to->qid, m, glen ? t->next_id++ : 0, err)) != MQ_OK)
		return st;
	/* Encode first: m points into the store, which writes may move. */
	if ((st = store_msg_put(t, to->qid, id, m, h, nh, NULL, err)) != MQ_OK ||
	    (st = store_group_add(t, to->qid, id, gkey, glen, m->group_seq, err)) != MQ_OK ||
	    (st = store_del_must(t, KV_DEAD, mk, KEY_DEAD_LEN, err)) != MQ_OK ||
	    (to != q && (st = store_del_must(t, KV_MSGS, mk, sizeof(mk), err)) != MQ_OK) ||
	    (!(m->flags & REC_MF_GROUP_WAIT) &&
	     (st = put_index(t, to->qid, id, m, err)) != MQ_OK) ||
	    (st = store_expiry_put(t, to->qid, id, m->expire_ms, err)) != MQ_OK)
		return st;
	if (dklen) {
		le64_put(idv, id);
		if ((st = tx_put(t, KV_DEDUP, dk, dklen, idv, sizeof(idv), err)) != MQ_OK)
			return st;
	}
	q->rec.stats.dead--;
	q->rec.stats.redriven_total++;
	to->rec.stats.ready++;
	q->dirty = to->dirty = true;
	return MQ_OK;
}

uint64_t store_dead_time(const store_msg *m)
{
	return m->n_history ? m->history[m->n_history - 1].time_ms : m->enqueued_ms;
}

/* redrive_match tells whether DEAD record m passes the filter of o. */
static mq_status redrive_match(store_txn *t, const store_redrive_opts *o, uint64_t id,
                               const rec_msg *m, bool *match, store_err *err)
{
	*match = false;
	if (o->reason_prefix && o->reason_prefix[0] &&
	    strncmp(m->reason, o->reason_prefix, strlen(o->reason_prefix)) != 0)
		return MQ_OK;
	if (o->type && o->type[0] && strcmp(m->type, o->type) != 0)
		return MQ_OK;
	if (o->dead_since_ms) {
		store_attempt h[STORE_HISTORY_MAX];
		uint64_t when = m->enqueued_ms;

		if (m->n_hist) {
			if (!store_rec_history_decode(m, h))
				return store_fail(t, err, MQ_DATA_LOSS,
				                  "message %" PRIu64 " history is corrupted", id);
			when = h[m->n_hist - 1].time_ms;
		}
		if (when < o->dead_since_ms)
			return MQ_OK;
	}
	*match = true;
	return MQ_OK;
}

/* redrive_target finds (or creates) the queue DEAD message id of q goes
 * to. It may write (a created queue): the caller reads the record again. */
static mq_status redrive_target(store_txn *t, qent *q, const store_redrive_opts *o, uint64_t id,
                                const rec_msg *m, qent **to, store_err *err)
{
	char name[MQ_NAME_MAX + 1] = "";
	mq_status st;

	if (o->to_queue && o->to_queue[0]) {
		snprintf(name, sizeof(name), "%s", o->to_queue);
	} else if (m->n_headers) {
		store_header *h;

		if ((st = msg_headers(t, m, id, 0, &h, err)) != MQ_OK)
			return st;
		for (size_t i = 0; i < m->n_headers; i++)
			if (strcmp(h[i].key, STORE_ORIGIN_HEADER) == 0 && mq_name_valid(h[i].value))
				snprintf(name, sizeof(name), "%s", h[i].value);
	}
	if (!name[0] || strcmp(name, q->name) == 0) {
		*to = q;
		return MQ_OK;
	}
	st = store_q_get(t, name, to, err);
	if (st == MQ_NOT_FOUND && o->auto_create)
		st = store_q_create(t, name, NULL, to, err);
	if (st == MQ_NOT_FOUND && !(o->to_queue && o->to_queue[0]))
		return store_seterr(err, MQ_NOT_FOUND,
		                    "message %" PRIu64
		                    " came from queue %s, which no longer exists "
		                    "(redrive it into a named queue)",
		                    id, name);
	return st;
}

/* notify_once tells the broker that queue to got ready messages, once per
 * run of messages to the same queue. */
static void notify_once(store_txn *t, qent *to, qent **notified)
{
	if (*notified != to)
		store_notify_ready(t, to);
	*notified = to;
}

/* redrive_get reads DEAD message id of q; DATA_LOSS when indexed but gone. */
static mq_status redrive_get(store_txn *t, qent *q, uint64_t id, rec_msg *m, store_err *err)
{
	mq_status st = store_msg_get(t, q->qid, id, m, err);

	if (st == MQ_NOT_FOUND || (st == MQ_OK && m->state != STORE_STATE_DEAD))
		return store_fail(t, err, MQ_DATA_LOSS,
		                  "dead index of queue %s names a missing or live message %" PRIu64,
		                  q->name, id);
	return st;
}

/* redrive_ids checks every id before moving any, then moves them. */
static mq_status redrive_ids(store_txn *t, qent *q, const store_redrive_opts *o,
                             store_redrive_result *r, store_err *err)
{
	qent *notified = NULL;
	rec_msg m;
	qent *to;
	mq_status st;

	for (size_t i = 0; i < o->n_ids; i++) {
		st = store_msg_get(t, q->qid, o->ids[i], &m, err);
		if (st == MQ_NOT_FOUND)
			return store_seterr(err, MQ_NOT_FOUND,
			                    "message %" PRIu64 " not found in queue %s", o->ids[i],
			                    q->name);
		if (st != MQ_OK)
			return st;
		if (m.state != STORE_STATE_DEAD)
			return store_seterr(err, MQ_FAILED_PRECONDITION,
			                    "message %" PRIu64 " is not dead (it is %s)", o->ids[i],
			                    state_name(m.state));
		for (size_t j = 0; j < i; j++)
			if (o->ids[j] == o->ids[i])
				return store_seterr(err, MQ_INVALID_ARGUMENT,
				                    "redrive: message %" PRIu64 " is listed twice",
				                    o->ids[i]);
	}
	for (size_t i = 0; i < o->n_ids; i++) {
		if ((st = redrive_get(t, q, o->ids[i], &m, err)) != MQ_OK ||
		    (st = redrive_target(t, q, o, o->ids[i], &m, &to, err)) != MQ_OK ||
		    (st = redrive_get(t, q, o->ids[i], &m, err)) != MQ_OK ||
		    (st = redrive_one(t, q, to, o->ids[i], &m, err)) != MQ_OK)
			return st;
		notify_once(t, to, &notified);
		r->moved++;
		r->next_after = o->ids[i];
	}
	return MQ_OK;
}

/* redrive_scan walks the dead index from after_id, moving matches. */
static mq_status redrive_scan(store_txn *t, qent *q, const store_redrive_opts *o, uint32_t max,
                              store_redrive_result *r, store_err *err)
{
	uint64_t last = o->after_id;
	uint32_t scanned = 0;
	qent *notified = NULL;
	uint8_t key[KEY_DEAD_LEN];
	mq_status st;

	while (last != UINT64_MAX) {
		kv_val k, v;
		rec_msg m;
		qent *to;
		uint64_t id;
		bool match;

		key_msg(key, q->qid, last + 1);
		st = tx_seek(t, KV_DEAD, key, sizeof(key), &k, &v, err);
		if (st == MQ_NOT_FOUND)
			break;
		if (st != MQ_OK)
			return st;
		if (k.len != KEY_DEAD_LEN || be32_get(k.data) != q->qid)
			break;
		if (r->moved == max || scanned == STORE_LIST_SCAN_MAX) {
			r->more = true;
			break;
		}
		id = be64_get((const uint8_t *)k.data + 4);
		scanned++;
		if ((st = redrive_get(t, q, id, &m, err)) != MQ_OK ||
		    (st = redrive_match(t, o, id, &m, &match, err)) != MQ_OK)
			return st;
		if (match) {
			if ((st = redrive_target(t, q, o, id, &m, &to, err)) != MQ_OK ||
			    (st = redrive_get(t, q, id, &m, err)) != MQ_OK ||
			    (st = redrive_one(t, q, to, id, &m, err)) != MQ_OK)
				return st;
			notify_once(t, to, &notified);
			r->moved++;
		}
		last = id;
	}
	r->next_after = last;
	return MQ_OK;
}

mq_status store_redrive_ex(store_txn *t, const char *queue, const store_redrive_opts *o,
                           store_redrive_result *r, store_err *err)
{
	store_err local;
	store_redrive_result rlocal;
	uint32_t max;
	bool sp = false;
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if (!r)
		r = &rlocal;
	*r = (store_redrive_result){.next_after = o ? o->after_id : 0};
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	if (!o)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "redrive: no options");
	if (o->n_ids > STORE_REDRIVE_MAX)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "redrive: at most %u ids per call, not %zu", STORE_REDRIVE_MAX,
		                    o->n_ids);
	if (o->n_ids && !o->ids)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "redrive: ids is NULL");
	max = o->max == 0 || o->max > STORE_REDRIVE_MAX ? STORE_REDRIVE_MAX : o->max;
	if ((st = store_q_get(t, queue, &q, err)) != MQ_OK)
		return st;
	if (o->to_queue && o->to_queue[0]) {
		qent *to;

		if ((st = store_name_check(o->to_queue, err)) != MQ_OK)
			return st;
		st = store_q_get(t, o->to_queue, &to, err);
		if (st == MQ_NOT_FOUND && o->auto_create)
			st = store_q_create(t, o->to_queue, NULL, &to, err);
		if (st != MQ_OK)
			return st;
	}
	/* All or nothing: a request error found after the first move (a
	 * missing origin queue) undoes the moves. Inside a caller's savepoint
	 * the caller's own rollback does. */
	if (!t->sp_active) {
		if ((st = store_savepoint(t, err)) != MQ_OK)
			return st;
		sp = true;
	}
	st = o->n_ids ? redrive_ids(t, q, o, r, err) : redrive_scan(t, q, o, max, r, err);
	if (sp) {
		if (st != MQ_OK && !store_txn_failed(t)) {
			store_rollback(t);
			r->moved = 0;
			r->more = false;
			r->next_after = o->after_id;
			return st;
		}
		if (st == MQ_OK)
			st = store_release(t, err);
	}
	return st;
}

mq_status store_redrive(store_txn *t, const char *queue, const uint64_t *ids, size_t n_ids,
                        const char *to_queue, bool auto_create, uint32_t max, uint64_t *moved,
                        bool *more, store_err *err)
{
	store_redrive_opts o = {
	    .ids = ids,
	    .n_ids = n_ids,
	    .to_queue = to_queue,
	    .auto_create = auto_create,
	    .max = max,
	};
	store_redrive_result r;
	mq_status st = store_redrive_ex(t, queue, &o, &r, err);

	if (moved)
		*moved = st == MQ_OK ? r.moved : 0;
	if (more)
		*more = st == MQ_OK && r.more;
	return st;
}

/* ---- oldest ready age ------------------------------------------------------------ */

mq_status store_q_oldest_ready(store_txn *t, const qent *q, uint64_t *age_ms, store_err *err)
{
	uint8_t key[KEY_READY_LEN];
	uint64_t oldest = UINT64_MAX;
	uint32_t prio_key = 0;
	mq_status st;

	*age_ms = 0;
	if (q->rec.stats.ready == 0)
		return MQ_OK;
	for (uint32_t level = 0; level < STORE_OLDEST_PRIO_MAX; level++) {
		kv_val k, v;
		rec_msg m;
		uint64_t id;

		/* The first key at or after (qid, prio_key, 0): the oldest message
		 * of the next priority level. */
		be32_put(key, q->qid);
		be32_put(key + 4, prio_key);
		be64_put(key + 8, 0);
		st = tx_seek(t, KV_READY, key, sizeof(key), &k, &v, err);
		if (st == MQ_NOT_FOUND)
			break;
		if (st != MQ_OK)
			return st;
		if (k.len != KEY_READY_LEN || be32_get(k.data) != q->qid)
			break;
		prio_key = be32_get((const uint8_t *)k.data + 4);
		id = be64_get((const uint8_t *)k.data + 8);
		st = store_msg_get(t, q->qid, id, &m, err);
		if (st == MQ_NOT_FOUND)
			return store_fail(t, err, MQ_DATA_LOSS,
			                  "ready index of queue %s names missing message %" PRIu64,
			                  q->name, id);
		if (st != MQ_OK)
			return st;
		if (m.enqueued_ms < oldest)
			oldest = m.enqueued_ms;
		if (prio_key == UINT32_MAX)
			break;
		prio_key++;
	}
	if (oldest != UINT64_MAX) {
		uint64_t now = store_now(t->s);
		*age_ms = now > oldest ? now - oldest : 0;
	}
	return MQ_OK;
}

/* ---- timers --------------------------------------------------------------------- */

static const char LEASE_EXPIRED[] = "lease expired";

mq_status store_tick(store_txn *t, uint32_t max_items, uint32_t *handled, store_err *err)
{
	store_err local;
	uint32_t count = 0;
	mq_status st;

	if (!err)
		err = &local;
	if (handled)
		*handled = 0;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	while (!max_items || count < max_items) {
		uint8_t tk[KEY_TIMER_LEN], hist[STORE_HIST_BUF_MAX];
		char reason[96];
		kv_val k, v;
		rec_msg m;
		qent *q;
		uint64_t due, id;
		uint8_t ostate;

		st = tx_seek(t, KV_TIMERS, NULL, 0, &k, &v, err);
		if (st == MQ_NOT_FOUND)
			break;
		if (st != MQ_OK)
			return st;
		if (k.len != KEY_TIMER_LEN)
			return store_fail(t, err, MQ_DATA_LOSS, "a timer key is corrupted");
		memcpy(tk, k.data, sizeof(tk));
		due = be64_get(tk);
		if (due > t->now)
			break;
		id = be64_get(tk + 12);
		if ((st = store_q_by_qid(t, be32_get(tk + 8), &q, err)) != MQ_OK)
			return st;
		st = store_msg_get(t, q->qid, id, &m, err);
		if (st == MQ_NOT_FOUND || (st == MQ_OK && m.due_ms != due))
			return store_fail(t, err, MQ_DATA_LOSS,
			                  "timer names a missing or rescheduled message %" PRIu64,
			                  id);
		if (st != MQ_OK)
			return st;
		if (store_room_rewrite(t, &m, err) != MQ_OK)
			break; /* at the size limit: the rest in later transactions */
		ostate = m.state;
		if (ostate == STORE_STATE_LEASED) {
			uint32_t max = store_q_max_attempts(t, q);

			q->rec.stats.expired_total++;
			snprintf(reason, sizeof(reason),
			         "max attempts reached (%" PRIu32 "); the last lease expired", max);
			fail_attempt(t, &m, hist, STORE_OUTCOME_EXPIRED, LEASE_EXPIRED,
			             m.attempts >= max, reason, 0);
			if (m.state == STORE_STATE_DEAD) {
				m.error = LEASE_EXPIRED;
				m.error_len = sizeof(LEASE_EXPIRED) - 1;
			}
		} else if (ostate == STORE_STATE_DELAYED) {
			m.state = STORE_STATE_READY;
		} else {
			return store_fail(t, err, MQ_DATA_LOSS,
			                  "timer names message %" PRIu64 " in state %s", id,
			                  state_name(ostate));
		}
		m.due_ms = 0;
		m.lease_token = 0;
		if ((st = settle(t, q, id, &m, ostate, tk, err)) != MQ_OK)
			return st;
		count++;
		if (handled)
			*handled = count;
	}
	if ((st = store_tick_ext(t, max_items, &count, err)) != MQ_OK)
		return st;
	if (handled)
		*handled = count;
	return MQ_OK;
}

mq_status store_next_due(store_txn *t, uint64_t *due_ms, store_err *err)
{
	store_err local;
	kv_val k, v;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	*due_ms = UINT64_MAX;
	if (t->s->ops->preseek) {
		/* every timer index, and the schedules' (read next by the
		 * broker), in one go where reads are round trips */
		static const kv_db dbs[4] = {KV_TIMERS, KV_EXPIRY, KV_DEDUPEXP, KV_SCHED_DUE};

		if ((st = tx_chk(t, t->s->ops->preseek(t->kv, dbs, 4, err))) != MQ_OK)
			return st;
	}
	st = tx_seek(t, KV_TIMERS, NULL, 0, &k, &v, err);
	if (st == MQ_NOT_FOUND)
		return store_next_due_ext(t, due_ms, err);
	if (st != MQ_OK)
		return st;
	if (k.len != KEY_TIMER_LEN)
		return store_fail(t, err, MQ_DATA_LOSS, "a timer key is corrupted");
	*due_ms = be64_get(k.data);
	return store_next_due_ext(t, due_ms, err);
}
