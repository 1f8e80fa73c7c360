/* SPDX-License-Identifier: MIT */
/*
 * groups.c: what schema 3 adds to the job state machine of jobs.c, kept
 * apart from it: ordering groups (the "groups" index, head promotion),
 * message expiry (TTL: the "expiry" index and its tick), and dedup scopes
 * (WAITING releases a key at lease time, WINDOW keeps a completed key for
 * dedup_window_ms after the ack: the "dedupexp" index and its tick).
 * record.h documents the keys. Every step is a few O(log n) lookups;
 * nothing scans.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char EXPIRED[] = "expired";

uint32_t store_q_dedup_scope(const qent *q)
{
	return q->rec.dedup_scope;
}

uint64_t store_q_dedup_window_ms(const qent *q)
{
	return q->rec.dedup_window_ms ? q->rec.dedup_window_ms : STORE_DEDUP_WINDOW_DEFAULT_MS;
}

uint64_t store_q_max_age_ms(const qent *q)
{
	return q->rec.max_age_ms;
}

mq_status store_del_opt(store_txn *t, kv_db db, const void *k, size_t kl, store_err *err)
{
	mq_status st = t->s->ops->del_later ? t->s->ops->del_later(t->kv, db, k, kl, false, err)
	                                    : t->s->ops->del(t->kv, db, k, kl, err);

	if (st == MQ_NOT_FOUND)
		return MQ_OK;
	if (st != MQ_OK)
		t->failed = true;
	return st;
}

/* ---- groups ------------------------------------------------------------------- */

mq_status store_group_place(store_txn *t, uint32_t qid, rec_msg *m, uint64_t seq, store_err *err)
{
	uint8_t k[KEY_GROUP_MAX];
	size_t pl;
	kv_val key, val;
	mq_status st;

	m->flags &= (uint8_t)~REC_MF_GROUP_WAIT;
	m->group_seq = seq;
	if (!m->group_len)
		return MQ_OK;
	pl = key_group_pfx(k, qid, m->group, m->group_len);
	st = tx_seek(t, KV_GROUPS, k, pl, &key, &val, err);
	if (st == MQ_OK && key.len == pl + 8 && memcmp(key.data, k, pl) == 0)
		m->flags |= REC_MF_GROUP_WAIT; /* the group has a head: wait behind it */
	else if (st != MQ_OK && st != MQ_NOT_FOUND)
		return st;
	return MQ_OK;
}

mq_status store_group_add(store_txn *t, uint32_t qid, uint64_t id, const char *g, size_t glen,
                          uint64_t seq, store_err *err)
{
	uint8_t k[KEY_GROUP_MAX], idv[8];
	size_t kl;

	if (!glen)
		return MQ_OK;
	kl = key_group(k, qid, g, glen, seq);
	le64_put(idv, id);
	return tx_put(t, KV_GROUPS, k, kl, idv, sizeof(idv), err);
}

/* group_promote makes the first waiting message of group g (if any) its
 * head: READY (into ready) or, when its not-before time is still ahead,
 * DELAYED (into timers). */
static mq_status group_promote(store_txn *t, qent *q, const char *g, size_t glen, store_err *err)
{
	uint8_t k[KEY_GROUP_MAX], ik[KEY_TIMER_LEN];
	size_t pl, il;
	kv_db idb;
	kv_val key, val;
	rec_msg m;
	uint64_t id;
	uint8_t ostate;
	mq_status st;

	pl = key_group_pfx(k, q->qid, g, glen);
	st = tx_seek(t, KV_GROUPS, k, pl, &key, &val, err);
	if (st == MQ_NOT_FOUND)
		return MQ_OK;
	if (st != MQ_OK)
		return st;
	if (key.len != pl + 8 || memcmp(key.data, k, pl) != 0)
		return MQ_OK; /* the group is empty */
	if (val.len != 8)
		return store_fail(t, err, MQ_DATA_LOSS, "a group entry is corrupted");
	id = le64_get(val.data);
	st = store_msg_get(t, q->qid, id, &m, err);
	if (st == MQ_NOT_FOUND)
		return store_fail(t, err, MQ_DATA_LOSS,
		                  "group index of queue %s names missing message %" PRIu64, q->name,
		                  id);
	if (st != MQ_OK)
		return st;
	if (!(m.flags & REC_MF_GROUP_WAIT))
		return MQ_OK; /* already the head (a redriven message joined an empty group) */
	ostate = m.state;
	m.flags &= (uint8_t)~REC_MF_GROUP_WAIT;
	if (m.due_ms > t->now) {
		m.state = STORE_STATE_DELAYED;
	} else {
		m.state = STORE_STATE_READY;
		m.due_ms = 0;
	}
	idb = store_index_key(ik, &il, q->qid, id, &m);
	if ((st = store_msg_put(t, q->qid, id, &m, NULL, 0, NULL, err)) != MQ_OK ||
	    (st = tx_put(t, idb, ik, il, "", 0, err)) != MQ_OK)
		return st;
	(*store_q_counter(q, ostate))--;
	(*store_q_counter(q, m.state))++;
	q->dirty = true;
	if (m.state == STORE_STATE_READY)
		store_notify_ready(t, q);
	return MQ_OK;
}

mq_status store_group_leave(store_txn *t, qent *q, const char *g, size_t glen, uint64_t seq,
                            bool was_head, store_err *err)
{
	uint8_t k[KEY_GROUP_MAX];
	size_t kl;
	mq_status st;

	if (!glen)
		return MQ_OK;
	kl = key_group(k, q->qid, g, glen, seq);
	if ((st = store_del_must(t, KV_GROUPS, k, kl, err)) != MQ_OK)
		return st;
	return was_head ? group_promote(t, q, g, glen, err) : MQ_OK;
}

/* ---- expiry -------------------------------------------------------------------- */

uint64_t store_expiry_of(const qent *q, uint64_t now, uint64_t ttl_ms)
{
	uint64_t age = store_q_max_age_ms(q);

	if (ttl_ms && (!age || ttl_ms < age))
		age = ttl_ms;
	if (!age)
		return 0;
	return now > UINT64_MAX - 1 - age ? UINT64_MAX - 1 : now + age;
}

mq_status store_expiry_put(store_txn *t, uint32_t qid, uint64_t id, uint64_t expire_ms,
                           store_err *err)
{
	uint8_t k[KEY_EXPIRY_LEN];

	if (!expire_ms)
		return MQ_OK;
	key_timer(k, expire_ms, qid, id);
	return tx_put(t, KV_EXPIRY, k, sizeof(k), "", 0, err);
}

mq_status store_expiry_del(store_txn *t, uint32_t qid, uint64_t id, uint64_t expire_ms,
                           store_err *err)
{
	uint8_t k[KEY_EXPIRY_LEN];

	if (!expire_ms)
		return MQ_OK;
	key_timer(k, expire_ms, qid, id);
	/* The tick drops the entry of a LEASED message: it may be gone. */
	return store_del_opt(t, KV_EXPIRY, k, sizeof(k), err);
}

bool store_expired(const store_txn *t, const rec_msg *m)
{
	return m->expire_ms && m->expire_ms <= t->now;
}

void store_mark_expired(rec_msg *m)
{
	m->state = STORE_STATE_DEAD;
	m->due_ms = 0;
	m->lease_token = 0;
	m->reason = EXPIRED;
	m->reason_len = sizeof(EXPIRED) - 1;
}

/* expire_one sends READY or DELAYED message id of q (record m, head or
 * waiting in its group) DEAD with reason "expired". */
static mq_status expire_one(store_txn *t, qent *q, uint64_t id, rec_msg *m, store_err *err)
{
	uint8_t ik[KEY_TIMER_LEN], dk[STORE_DEDUP_MAX], gk[STORE_GROUP_MAX];
	size_t il = 0, dl = m->dedup_len, gl = m->group_len;
	uint64_t seq = m->group_seq;
	bool waiting = (m->flags & REC_MF_GROUP_WAIT) != 0;
	kv_db idb = KV_READY;
	uint8_t ostate = m->state;
	qent *dlq;
	mq_status st;

	if ((st = store_dlq_of(t, q, &dlq, err)) != MQ_OK)
		return st;
	if (!waiting)
		idb = store_index_key(ik, &il, q->qid, id, m);
	memcpy(dk, m->dedup, dl);
	memcpy(gk, m->group, gl);
	m->flags &= (uint8_t)~REC_MF_GROUP_WAIT;
	store_mark_expired(m);
	if (dlq != NULL) {
		/* moved into the queue's dead-letter queue, counted there */
		if ((st = store_dead_letter(t, q, dlq, id, m, ostate, idb, ik, waiting ? 0 : il,
		                            err)) != MQ_OK)
			return st;
	} else {
		if ((st = store_msg_put(t, q->qid, id, m, NULL, 0, NULL, err)) != MQ_OK ||
		    (!waiting && (st = store_del_must(t, idb, ik, il, err)) != MQ_OK))
			return st;
		key_msg(ik, q->qid, id);
		if ((st = tx_put(t, KV_DEAD, ik, KEY_DEAD_LEN, "", 0, err)) != MQ_OK)
			return st;
		(*store_q_counter(q, ostate))--;
		q->rec.stats.dead++;
		q->rec.stats.dead_total++;
	}
	if ((st = store_dedup_release(t, q, (const char *)dk, dl, id, err)) != MQ_OK)
		return st;
	q->dirty = true;
	return store_group_leave(t, q, (const char *)gk, gl, seq, !waiting, err);
}

static mq_status tick_expiry(store_txn *t, uint32_t budget, uint32_t *count, store_err *err)
{
	while (!budget || *count < budget) {
		uint8_t k[KEY_EXPIRY_LEN];
		kv_val key, val;
		rec_msg m;
		qent *q;
		uint64_t id;
		mq_status st;

		st = tx_seek(t, KV_EXPIRY, NULL, 0, &key, &val, err);
		if (st == MQ_NOT_FOUND)
			return MQ_OK;
		if (st != MQ_OK)
			return st;
		if (key.len != KEY_EXPIRY_LEN)
			return store_fail(t, err, MQ_DATA_LOSS, "an expiry key is corrupted");
		memcpy(k, key.data, sizeof(k));
		if (be64_get(k) > t->now)
			return MQ_OK;
		id = be64_get(k + 12);
		if ((st = store_q_by_qid(t, be32_get(k + 8), &q, err)) != MQ_OK)
			return st;
		st = store_msg_get(t, q->qid, id, &m, err);
		if (st == MQ_NOT_FOUND ||
		    (st == MQ_OK && (m.expire_ms != be64_get(k) || m.state == STORE_STATE_DEAD)))
			return store_fail(t, err, MQ_DATA_LOSS,
			                  "expiry index names a missing or dead message %" PRIu64,
			                  id);
		if (st != MQ_OK || (st = store_del_must(t, KV_EXPIRY, k, sizeof(k), err)) != MQ_OK)
			return st;
		/* A leased message finishes its lease; it expires when it comes
		 * back (settle). */
		if (m.state != STORE_STATE_LEASED && (st = expire_one(t, q, id, &m, err)) != MQ_OK)
			return st;
		(*count)++;
	}
	return MQ_OK;
}

/* ---- dedup scopes ----------------------------------------------------------------- */

mq_status store_dedup_lookup(store_txn *t, qent *q, const char *key, size_t len, uint64_t *id,
                             bool *completed, store_err *err)
{
	uint8_t dk[KEY_DEDUP_MAX], xk[KEY_DEDUPEXP_MAX];
	size_t dl = key_dedup(dk, q->qid, key, len);
	uint64_t exp;
	kv_val v;
	mq_status st;

	*completed = false;
	st = tx_get(t, KV_DEDUP, dk, dl, &v, err);
	if (st != MQ_OK)
		return st;
	if (v.len == 8) {
		*id = le64_get(v.data);
		return MQ_OK;
	}
	if (v.len != 16)
		return store_fail(t, err, MQ_DATA_LOSS, "dedup record corrupted");
	*id = le64_get(v.data);
	exp = le64_get((const uint8_t *)v.data + 8);
	if (exp > t->now) {
		*completed = true;
		return MQ_OK;
	}
	/* The window ended and the tick has not got to it yet: free it now. */
	if ((st = store_del_must(t, KV_DEDUP, dk, dl, err)) != MQ_OK)
		return st;
	dl = key_dedupexp(xk, exp, q->qid, key, len);
	if ((st = store_del_must(t, KV_DEDUPEXP, xk, dl, err)) != MQ_OK)
		return st;
	return MQ_NOT_FOUND;
}

mq_status store_dedup_release(store_txn *t, const qent *q, const char *key, size_t len, uint64_t id,
                              store_err *err)
{
	uint8_t dk[KEY_DEDUP_MAX];
	size_t dl;
	kv_val v;
	mq_status st;

	if (!len)
		return MQ_OK;
	dl = key_dedup(dk, q->qid, key, len);
	st = tx_get(t, KV_DEDUP, dk, dl, &v, err);
	if (st == MQ_NOT_FOUND)
		return MQ_OK;
	if (st != MQ_OK)
		return st;
	/* Only the holder frees a key: in the WAITING scope another job may
	 * hold it now. */
	if (v.len != 8 || le64_get(v.data) != id)
		return MQ_OK;
	return store_del_must(t, KV_DEDUP, dk, dl, err);
}

mq_status store_dedup_take(store_txn *t, const qent *q, const char *key, size_t len, uint64_t id,
                           store_err *err)
{
	uint8_t dk[KEY_DEDUP_MAX], idv[8];
	size_t dl;
	kv_val v;
	mq_status st;

	if (!len)
		return MQ_OK;
	dl = key_dedup(dk, q->qid, key, len);
	st = tx_get(t, KV_DEDUP, dk, dl, &v, err);
	if (st == MQ_OK)
		return MQ_OK; /* held by another job (or completed): that one keeps it */
	if (st != MQ_NOT_FOUND)
		return st;
	le64_put(idv, id);
	return tx_put(t, KV_DEDUP, dk, dl, idv, sizeof(idv), err);
}

mq_status store_dedup_complete(store_txn *t, const qent *q, const char *key, size_t len,
                               uint64_t id, store_err *err)
{
	uint8_t dk[KEY_DEDUP_MAX], xk[KEY_DEDUPEXP_MAX], v[16];
	uint64_t exp;
	size_t dl, xl;
	kv_val old;
	mq_status st;

	if (!len || store_q_dedup_scope(q) != STORE_DEDUP_SCOPE_WINDOW)
		return MQ_OK;
	dl = key_dedup(dk, q->qid, key, len);
	st = tx_get(t, KV_DEDUP, dk, dl, &old, err);
	if (st == MQ_OK)
		return MQ_OK; /* another job holds it */
	if (st != MQ_NOT_FOUND)
		return st;
	exp = t->now + store_q_dedup_window_ms(q);
	le64_put(v, id);
	le64_put(v + 8, exp);
	xl = key_dedupexp(xk, exp, q->qid, key, len);
	if ((st = tx_put(t, KV_DEDUP, dk, dl, v, sizeof(v), err)) != MQ_OK)
		return st;
	return tx_put(t, KV_DEDUPEXP, xk, xl, "", 0, err);
}

static mq_status tick_dedup(store_txn *t, uint32_t budget, uint32_t *count, store_err *err)
{
	while (!budget || *count < budget) {
		uint8_t xk[KEY_DEDUPEXP_MAX], dk[KEY_DEDUP_MAX];
		size_t xl, dl;
		kv_val key, val;
		uint64_t exp;
		mq_status st;

		st = tx_seek(t, KV_DEDUPEXP, NULL, 0, &key, &val, err);
		if (st == MQ_NOT_FOUND)
			return MQ_OK;
		if (st != MQ_OK)
			return st;
		if (key.len < 12 || key.len > KEY_DEDUPEXP_MAX)
			return store_fail(t, err, MQ_DATA_LOSS, "a dedup window key is corrupted");
		xl = key.len;
		memcpy(xk, key.data, xl);
		exp = be64_get(xk);
		if (exp > t->now)
			return MQ_OK;
		if ((st = store_del_must(t, KV_DEDUPEXP, xk, xl, err)) != MQ_OK)
			return st;
		/* The dedup key itself (qid | key) follows the time in xk. Its
		 * queue may be gone: the qid is never reused, so no lookup. */
		dl = xl - 8;
		memcpy(dk, xk + 8, dl);
		st = tx_get(t, KV_DEDUP, dk, dl, &val, err);
		if (st == MQ_OK && val.len == 16 && le64_get((const uint8_t *)val.data + 8) == exp)
			st = store_del_must(t, KV_DEDUP, dk, dl, err);
		else if (st == MQ_NOT_FOUND)
			st = MQ_OK;
		if (st != MQ_OK)
			return st;
		(*count)++;
	}
	return MQ_OK;
}

/* ---- timers --------------------------------------------------------------------------- */

mq_status store_tick_ext(store_txn *t, uint32_t budget, uint32_t *count, store_err *err)
{
	mq_status st = tick_expiry(t, budget, count, err);

	return st == MQ_OK ? tick_dedup(t, budget, count, err) : st;
}

mq_status store_next_due_ext(store_txn *t, uint64_t *due_ms, store_err *err)
{
	static const kv_db dbs[2] = {KV_EXPIRY, KV_DEDUPEXP};

	for (int i = 0; i < 2; i++) {
		kv_val k, v;
		mq_status st = tx_seek(t, dbs[i], NULL, 0, &k, &v, err);

		if (st == MQ_NOT_FOUND)
			continue;
		if (st != MQ_OK)
			return st;
		if (k.len < 8)
			return store_fail(t, err, MQ_DATA_LOSS, "a timer key is corrupted");
		if (be64_get(k.data) < *due_ms)
			*due_ms = be64_get(k.data);
	}
	return MQ_OK;
}
