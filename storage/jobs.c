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

/* put_msg encodes m into the scratch buffer and stores it; *rec (if not
 * NULL) gets the encoded bytes, valid until the next encoding. */
static mq_status put_msg(store_txn *t, uint32_t qid, uint64_t id, const rec_msg *m,
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

/* index_key computes the index entry of m: its database and key. */
static kv_db index_key(uint8_t k[KEY_TIMER_LEN], size_t *klen, uint32_t qid, uint64_t id,
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
	m->type = r->type;
	m->headers = h;
	m->n_headers = r->n_headers;
	m->error = r->error;
	m->dead_reason = r->state == STORE_STATE_DEAD ? r->reason : "";
	return MQ_OK;
}

/* ---- push ----------------------------------------------------------------- */

static mq_status push_check(const store_push_msg *m, size_t *dlen, size_t *tlen, store_err *err)
{
	if (!m)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "push: no message");
	if (m->payload_len && !m->payload)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "push: payload is NULL");
	if (m->dedup_mode != STORE_DEDUP_IGNORE && m->dedup_mode != STORE_DEDUP_REPLACE)
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
	return MQ_OK;
}

/* push_replace applies a REPLACE push to the holder id of the dedup key. */
static mq_status push_replace(store_txn *t, qent *q, uint64_t id, rec_msg *nm,
                              const store_push_msg *m, store_err *err)
{
	uint8_t ok[KEY_TIMER_LEN];
	size_t olen;
	kv_db odb;
	rec_msg old;
	uint8_t ostate;
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
	odb = index_key(ok, &olen, q->qid, id, &old);
	nm->attempts = old.attempts;
	nm->enqueued_ms = old.enqueued_ms;
	nm->error = old.error;
	nm->error_len = old.error_len;
	nm->hist = old.hist;
	nm->hist_len = old.hist_len;
	nm->n_hist = old.n_hist;
	/* Encode first: old points into the store, which writes may move. */
	if ((st = put_msg(t, q->qid, id, nm, m->headers, m->n_headers, NULL, err)) != MQ_OK)
		return st;
	if (nm->state != ostate || nm->due_ms != old.due_ms || nm->priority != old.priority) {
		if ((st = store_del_must(t, odb, ok, olen, err)) != MQ_OK ||
		    (st = put_index(t, q->qid, id, nm, err)) != MQ_OK)
			return st;
	}
	(*store_q_counter(q, ostate))--;
	(*store_q_counter(q, nm->state))++;
	if (nm->state == STORE_STATE_READY)
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
	size_t dlen = 0, tlen = 0, dklen = 0;
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
	    (st = push_check(m, &dlen, &tlen, err)) != MQ_OK)
		return st;
	nm = (rec_msg){
	    .state = m->delay_ms ? STORE_STATE_DELAYED : STORE_STATE_READY,
	    .priority = m->priority,
	    .enqueued_ms = t->now,
	    .due_ms = m->delay_ms ? add_sat(t->now, m->delay_ms) : 0,
	    .dedup = m->dedup_key,
	    .dedup_len = (uint32_t)dlen,
	    .type = m->type,
	    .type_len = (uint32_t)tlen,
	    .error = "",
	    .reason = "",
	    .payload = m->payload,
	    .payload_len = (uint32_t)m->payload_len,
	};
	if (m->payload_len > UINT32_MAX || store_rec_msg_size(&nm, m->headers, m->n_headers) == 0)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "push: message too large");
	st = store_q_get(t, queue, &q, err);
	if (st == MQ_NOT_FOUND && auto_create)
		st = store_q_create(t, queue, NULL, &q, err);
	if (st != MQ_OK)
		return st;
	if (dlen) {
		kv_val v;

		dklen = key_dedup(dk, q->qid, m->dedup_key, dlen);
		st = tx_get(t, KV_DEDUP, dk, dklen, &v, err);
		if (st == MQ_OK) {
			if (v.len != 8)
				return store_fail(t, err, MQ_DATA_LOSS, "dedup record corrupted");
			id = le64_get(v.data);
			q->rec.stats.deduplicated_total++;
			q->dirty = true;
			r->id = id;
			r->duplicate = true;
			if (m->dedup_mode == STORE_DEDUP_REPLACE)
				return push_replace(t, q, id, &nm, m, err);
			return MQ_OK;
		}
		if (st != MQ_NOT_FOUND)
			return st;
	}
	if ((st = push_limit_check(q, err)) != MQ_OK)
		return st;
	id = t->next_id++;
	if ((st = put_msg(t, q->qid, id, &nm, m->headers, m->n_headers, NULL, err)) != MQ_OK ||
	    (st = put_index(t, q->qid, id, &nm, err)) != MQ_OK)
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
	if (nm.state == STORE_STATE_READY)
		store_notify_ready(t, q);
	return MQ_OK;
}

/* ---- pull ------------------------------------------------------------------- */

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
		uint8_t rk[KEY_READY_LEN];
		const uint8_t *enc;
		kv_val k, v;
		rec_msg mr;
		uint64_t id;

		st = tx_seek(t, KV_READY, pfx, sizeof(pfx), &k, &v, err);
		if (st == MQ_NOT_FOUND)
			break;
		if (st != MQ_OK)
			return st;
		if (k.len != KEY_READY_LEN || memcmp(k.data, pfx, sizeof(pfx)) != 0)
			break;
		memcpy(rk, k.data, sizeof(rk));
		id = be64_get(rk + 8);
		st = store_msg_get(t, q->qid, id, &mr, err);
		if (st == MQ_NOT_FOUND || (st == MQ_OK && mr.state != STORE_STATE_READY))
			return store_fail(t, err, MQ_DATA_LOSS,
			                  "ready index of queue %s names a missing or non-ready "
			                  "message %" PRIu64,
			                  q->name, id);
		if (st != MQ_OK)
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
			if (cb(arg, &view) != 0)
				break;
		}
		t->next_token++;
		if ((st = put_msg(t, q->qid, id, &mr, NULL, 0, &enc, err)) != MQ_OK ||
		    (st = store_del_must(t, KV_READY, rk, sizeof(rk), err)) != MQ_OK ||
		    (st = put_index(t, q->qid, id, &mr, err)) != MQ_OK)
			return st;
		q->rec.stats.ready--;
		q->rec.stats.in_flight++;
		q->dirty = true;
		count++;
		if (n)
			*n = count;
	}
	return MQ_OK;
}

/* ---- ack, nack, extend -------------------------------------------------------- */

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
	qent *q;
	rec_msg m;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = lease_find(t, queue, id, token, &q, &m, err)) != MQ_OK)
		return st;
	if ((st = store_msg_remove(t, q, id, &m, err)) != MQ_OK)
		return st;
	q->rec.stats.acked_total++;
	return MQ_OK;
}

/* settle moves message id (record m, whose index entry is still the old
 * one at okey) to m->state; frees the dedup key when it goes DEAD. */
static mq_status settle(store_txn *t, qent *q, uint64_t id, rec_msg *m, uint8_t ostate,
                        const uint8_t *okey, store_err *err)
{
	uint8_t dk[KEY_DEDUP_MAX];
	size_t dklen = 0;
	mq_status st;

	if (m->state == STORE_STATE_DEAD && m->dedup_len)
		dklen = key_dedup(dk, q->qid, m->dedup, m->dedup_len);
	if ((st = put_msg(t, q->qid, id, m, NULL, 0, NULL, err)) != MQ_OK ||
	    (st = store_del_must(t, KV_TIMERS, okey, KEY_TIMER_LEN, err)) != MQ_OK ||
	    (st = put_index(t, q->qid, id, m, err)) != MQ_OK ||
	    (dklen && (st = store_del_must(t, KV_DEDUP, dk, dklen, err)) != MQ_OK))
		return st;
	(*store_q_counter(q, ostate))--;
	(*store_q_counter(q, m->state))++;
	if (m->state == STORE_STATE_DEAD)
		q->rec.stats.dead_total++;
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
		if ((st = put_msg(t, q->qid, id, &m, NULL, 0, NULL, err)) != MQ_OK ||
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

/* redrive_one moves DEAD message id of q (record m) to READY in queue to. */
static mq_status redrive_one(store_txn *t, qent *q, qent *to, uint64_t id, rec_msg *m,
                             store_err *err)
{
	uint8_t mk[KEY_MSG_LEN], dk[KEY_DEDUP_MAX], idv[8];
	size_t dklen = 0;
	kv_val v;
	mq_status st;

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
	key_msg(mk, q->qid, id);
	/* Encode first: m points into the store, which writes may move. */
	if ((st = put_msg(t, to->qid, id, m, NULL, 0, NULL, err)) != MQ_OK ||
	    (st = store_del_must(t, KV_DEAD, mk, KEY_DEAD_LEN, err)) != MQ_OK ||
	    (to != q && (st = store_del_must(t, KV_MSGS, mk, sizeof(mk), err)) != MQ_OK) ||
	    (st = put_index(t, to->qid, id, m, err)) != MQ_OK)
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

mq_status store_redrive(store_txn *t, const char *queue, const uint64_t *ids, size_t n_ids,
                        const char *to_queue, bool auto_create, uint32_t max, uint64_t *moved,
                        bool *more, store_err *err)
{
	store_err local;
	uint64_t count = 0;
	uint8_t pfx[4];
	qent *q, *to;
	rec_msg m;
	mq_status st;

	if (!err)
		err = &local;
	if (moved)
		*moved = 0;
	if (more)
		*more = false;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	if (n_ids > STORE_REDRIVE_MAX)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "redrive: at most %u ids per call, not %zu", STORE_REDRIVE_MAX,
		                    n_ids);
	if (n_ids && !ids)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "redrive: ids is NULL");
	if (max == 0 || max > STORE_REDRIVE_MAX)
		max = STORE_REDRIVE_MAX;
	if ((st = store_q_get(t, queue, &q, err)) != MQ_OK)
		return st;
	if (to_queue && to_queue[0] && (st = store_name_check(to_queue, err)) != MQ_OK)
		return st;
	/* Check every id before the first write: a request error moves none. */
	for (size_t i = 0; i < n_ids; i++) {
		st = store_msg_get(t, q->qid, ids[i], &m, err);
		if (st == MQ_NOT_FOUND)
			return store_seterr(err, MQ_NOT_FOUND,
			                    "message %" PRIu64 " not found in queue %s", ids[i],
			                    queue);
		if (st != MQ_OK)
			return st;
		if (m.state != STORE_STATE_DEAD)
			return store_seterr(err, MQ_FAILED_PRECONDITION,
			                    "message %" PRIu64 " is not dead (it is %s)", ids[i],
			                    state_name(m.state));
		for (size_t j = 0; j < i; j++)
			if (ids[j] == ids[i])
				return store_seterr(err, MQ_INVALID_ARGUMENT,
				                    "redrive: message %" PRIu64 " is listed twice",
				                    ids[i]);
	}
	to = q;
	if (to_queue && to_queue[0] && strcmp(to_queue, queue) != 0) {
		st = store_q_get(t, to_queue, &to, err);
		if (st == MQ_NOT_FOUND && auto_create)
			st = store_q_create(t, to_queue, NULL, &to, err);
		if (st != MQ_OK)
			return st;
	}
	if (n_ids) {
		for (size_t i = 0; i < n_ids; i++) {
			if ((st = store_msg_get(t, q->qid, ids[i], &m, err)) != MQ_OK ||
			    (st = redrive_one(t, q, to, ids[i], &m, err)) != MQ_OK)
				return st == MQ_NOT_FOUND ? store_fail(t, err, MQ_DATA_LOSS,
				                                       "redrive lost a message")
				                          : st;
			count++;
		}
	} else {
		be32_put(pfx, q->qid);
		for (;;) {
			kv_val k, v;
			uint64_t id;

			st = tx_seek(t, KV_DEAD, pfx, sizeof(pfx), &k, &v, err);
			if (st == MQ_NOT_FOUND)
				break;
			if (st != MQ_OK)
				return st;
			if (k.len != KEY_DEAD_LEN || memcmp(k.data, pfx, sizeof(pfx)) != 0)
				break;
			if (count == max) {
				if (more)
					*more = true;
				break;
			}
			id = be64_get((const uint8_t *)k.data + 4);
			st = store_msg_get(t, q->qid, id, &m, err);
			if (st == MQ_NOT_FOUND || (st == MQ_OK && m.state != STORE_STATE_DEAD))
				return store_fail(t, err, MQ_DATA_LOSS,
				                  "dead index of queue %s names a missing or live "
				                  "message %" PRIu64,
				                  q->name, id);
			if (st != MQ_OK || (st = redrive_one(t, q, to, id, &m, err)) != MQ_OK)
				return st;
			count++;
		}
	}
	if (moved)
		*moved = count;
	if (count)
		store_notify_ready(t, to);
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
	st = tx_seek(t, KV_TIMERS, NULL, 0, &k, &v, err);
	if (st == MQ_NOT_FOUND) {
		*due_ms = UINT64_MAX;
		return MQ_OK;
	}
	if (st != MQ_OK)
		return st;
	if (k.len != KEY_TIMER_LEN)
		return store_fail(t, err, MQ_DATA_LOSS, "a timer key is corrupted");
	*due_ms = be64_get(k.data);
	return MQ_OK;
}
