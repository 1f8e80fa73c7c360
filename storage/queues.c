/* SPDX-License-Identifier: MIT */
/*
 * queues.c: queue records: create, get, list, purge and delete. Purge and
 * delete touch only the key ranges of the queue concerned (record.h).
 */
#include <inttypes.h>
#include <string.h>

#include "internal.h"
#include "topics.h"

mq_status store_queue_config_check(const char *name, const store_queue_config *cfg, store_err *err)
{
	store_err local;

	if (!err)
		err = &local;
	if (!cfg)
		return MQ_OK;
	if (cfg->lease_ms > STORE_MAX_LEASE_MS)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "lease_ms %" PRIu32 " is above the maximum of %u ms",
		                    cfg->lease_ms, STORE_MAX_LEASE_MS);
	if (cfg->retry_base_ms > STORE_MAX_RETRY_MS || cfg->retry_max_ms > STORE_MAX_RETRY_MS)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "retry_base_ms and retry_max_ms are at most %u ms (24 h)",
		                    STORE_MAX_RETRY_MS);
	if (cfg->retry_max_ms && cfg->retry_max_ms < cfg->retry_base_ms)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "retry_max_ms %" PRIu32 " is below retry_base_ms %" PRIu32,
		                    cfg->retry_max_ms, cfg->retry_base_ms);
	if (cfg->max_age_ms > STORE_MAX_AGE_MS || cfg->dedup_window_ms > STORE_MAX_AGE_MS)
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "max_age_ms and dedup_window_ms are at most %llu ms (366 days)",
		                    (unsigned long long)STORE_MAX_AGE_MS);
	if (cfg->dedup_scope > STORE_DEDUP_SCOPE_WINDOW)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "unknown dedup scope %" PRIu32,
		                    cfg->dedup_scope);
	if (cfg->dead_letter_queue[0]) {
		if (memchr(cfg->dead_letter_queue, 0, sizeof(cfg->dead_letter_queue)) == NULL ||
		    !mq_name_valid(cfg->dead_letter_queue))
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "invalid dead-letter queue name: a name is 1 to %d "
			                    "characters of [A-Za-z0-9._-]",
			                    MQ_NAME_MAX);
		if (name && strcmp(name, cfg->dead_letter_queue) == 0)
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "queue %s cannot be its own dead-letter queue", name);
	}
	return MQ_OK;
}

mq_status store_queue_create(store_txn *t, const char *name, const store_queue_config *cfg,
                             bool if_not_exists, store_queue_info *info, bool *created,
                             store_err *err)
{
	store_err local;
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = store_name_check(name, err)) != MQ_OK ||
	    (st = store_queue_config_check(name, cfg, err)) != MQ_OK)
		return st;
	st = store_q_get(t, name, &q, err);
	if (st == MQ_OK) {
		if (!if_not_exists)
			return store_seterr(err, MQ_ALREADY_EXISTS, "queue %s already exists",
			                    name);
		if (created)
			*created = false;
		store_q_info(q, info);
		return MQ_OK;
	}
	if (st != MQ_NOT_FOUND)
		return st;
	if ((st = store_q_create(t, name, cfg, &q, err)) != MQ_OK)
		return st;
	if (created)
		*created = true;
	store_q_info(q, info);
	return MQ_OK;
}

mq_status store_queue_update(store_txn *t, const char *name, const store_queue_config *cfg,
                             uint32_t mask, store_queue_info *info, store_err *err)
{
	store_err local;
	store_queue_config c;
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	if (!cfg || !(mask & STORE_QCFG_ALL) || (mask & ~STORE_QCFG_ALL))
		return store_seterr(err, MQ_INVALID_ARGUMENT,
		                    "update: no config or no valid field to change");
	if ((st = store_q_get(t, name, &q, err)) != MQ_OK)
		return st;
	/* Check the config as it will be, whole: base <= max across fields. */
	{
		rec_queue r = q->rec;

		store_q_set_config(&r, cfg, mask);
		store_q_get_config(&r, &c);
	}
	if ((st = store_queue_config_check(name, &c, err)) != MQ_OK)
		return st;
	store_q_set_config(&q->rec, cfg, mask);
	q->dirty = true;
	store_q_info(q, info);
	/* A looser limit can make messages deliverable. */
	if (q->rec.stats.ready && !q->rec.paused)
		store_notify_ready(t, q);
	return MQ_OK;
}

mq_status store_queue_pause(store_txn *t, const char *name, bool paused, store_queue_info *info,
                            store_err *err)
{
	store_err local;
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = store_q_get(t, name, &q, err)) != MQ_OK)
		return st;
	if (q->rec.paused != paused) {
		q->rec.paused = paused;
		q->dirty = true;
		if (!paused && q->rec.stats.ready)
			store_notify_ready(t, q);
	}
	store_q_info(q, info);
	return MQ_OK;
}

mq_status store_queue_rate_limit(store_txn *t, const char *name, uint32_t *rate, store_err *err)
{
	store_err local;
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = store_q_get(t, name, &q, err)) != MQ_OK)
		return st;
	*rate = q->rec.rate_limit;
	return MQ_OK;
}

mq_status store_queue_get(store_txn *t, const char *name, store_queue_info *info, store_err *err)
{
	store_err local;
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = store_q_get(t, name, &q, err)) != MQ_OK)
		return st;
	store_q_info(q, info);
	return store_q_oldest_ready(t, q, &info->stats.oldest_ready_age_ms, err);
}

mq_status store_queue_list(store_txn *t, const char *after, uint32_t limit, store_queue_cb cb,
                           void *arg, bool *more, store_err *err)
{
	store_err local;
	char key[MQ_NAME_MAX + 2], name[MQ_NAME_MAX + 1];
	size_t klen = 0;
	uint32_t count = 0;
	bool stop = false;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	if (!cb)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "store_queue_list: no callback");
	if (after && after[0]) {
		klen = strlen(after);
		if (klen > MQ_NAME_MAX)
			return store_seterr(err, MQ_INVALID_ARGUMENT,
			                    "list: after is longer than a queue name");
		/* The first key strictly after `after`: names hold no NUL. */
		memcpy(key, after, klen);
		key[klen++] = 0;
	}
	if (more)
		*more = false;
	for (;;) {
		store_queue_info info;
		kv_val k, v;
		qent *q;

		st = tx_seek(t, KV_QUEUES, key, klen, &k, &v, err);
		if (st == MQ_NOT_FOUND)
			break;
		if (st != MQ_OK)
			return st;
		if (stop || (limit && count == limit)) {
			if (more)
				*more = true;
			break;
		}
		if (k.len == 0 || k.len > MQ_NAME_MAX)
			return store_fail(t, err, MQ_DATA_LOSS, "a queue name is corrupted");
		memcpy(name, k.data, k.len);
		name[k.len] = 0;
		/* Through the cache: it has this transaction's counters. */
		if ((st = store_q_get(t, name, &q, err)) != MQ_OK)
			return st;
		store_q_info(q, &info);
		if ((st = store_q_oldest_ready(t, q, &info.stats.oldest_ready_age_ms, err)) !=
		    MQ_OK)
			return st;
		count++;
		stop = cb(arg, &info) != 0;
		memcpy(key, name, k.len);
		key[k.len] = 0;
		klen = k.len + 1;
	}
	return MQ_OK;
}

mq_status store_msg_remove(store_txn *t, qent *q, uint64_t id, const rec_msg *m, store_err *err)
{
	uint8_t mk[KEY_MSG_LEN], ik[KEY_TIMER_LEN];
	char dk[STORE_DEDUP_MAX], gk[STORE_GROUP_MAX];
	size_t ilen = 0, dlen = 0, glen = 0;
	kv_db idb = KV_READY;
	uint8_t state = m->state;
	bool waiting = (m->flags & REC_MF_GROUP_WAIT) != 0;
	uint64_t seq = m->group_seq, exp = m->expire_ms;
	mq_status st;

	key_msg(mk, q->qid, id);
	switch (state) {
	case STORE_STATE_READY:
		idb = KV_READY;
		key_ready(ik, q->qid, m->priority, id);
		ilen = KEY_READY_LEN;
		break;
	case STORE_STATE_DELAYED:
	case STORE_STATE_LEASED:
		idb = KV_TIMERS;
		key_timer(ik, m->due_ms, q->qid, id);
		ilen = KEY_TIMER_LEN;
		break;
	case STORE_STATE_DEAD:
		idb = KV_DEAD;
		key_msg(ik, q->qid, id);
		ilen = KEY_DEAD_LEN;
		break;
	default:
		return store_fail(t, err, MQ_DATA_LOSS, "message %" PRIu64 " has a bad state %u",
		                  id, state);
	}
	/* A DEAD message's dedup key, expiry and group place were freed when
	 * it died; a message waiting in its group is in no state index. */
	if (state != STORE_STATE_DEAD) {
		dlen = m->dedup_len;
		glen = m->group_len;
		memcpy(dk, m->dedup, dlen);
		memcpy(gk, m->group, glen);
	} else {
		exp = 0;
	}
	/* m is not used past this point: writes may move what it points at. */
	if ((!waiting && (st = store_del_must(t, idb, ik, ilen, err)) != MQ_OK) ||
	    (st = store_del_must(t, KV_MSGS, mk, sizeof(mk), err)) != MQ_OK ||
	    (st = store_dedup_release(t, q, dk, dlen, id, err)) != MQ_OK ||
	    (st = store_expiry_del(t, q->qid, id, exp, err)) != MQ_OK)
		return st;
	(*store_q_counter(q, state))--;
	q->dirty = true;
	return store_group_leave(t, q, gk, glen, seq, !waiting, err);
}

/* A purge run: which states go, and how much one call may do. A bounded
 * run (store_queue_purge_ex with a limit) stops once it removed `limit`
 * messages or walked `scan` records, and says where to resume, so a huge
 * purge is many short write transactions rather than one long one. */
typedef struct purge_run {
	uint32_t mask;
	uint64_t limit; /* removals left allowed; UINT64_MAX = unbounded */
	uint64_t scan;  /* message records the id walk may still read */
	uint64_t n;     /* removed so far */
	bool stopped;   /* the budget ran out with work left */
} purge_run;

static bool purge_full(purge_run *r)
{
	if (r->n >= r->limit) {
		r->stopped = true;
		return true;
	}
	return false;
}

/* purge_waiting removes the messages of q waiting behind their group's
 * head whose state is in mask (their heads may be leased or delayed). */
static mq_status purge_waiting(store_txn *t, qent *q, purge_run *r, store_err *err)
{
	uint8_t key[KEY_GROUP_MAX + 1];
	size_t klen = 4;
	mq_status st;

	be32_put(key, q->qid);
	for (;;) {
		kv_val k, v;
		rec_msg m;
		uint64_t id;

		st = tx_seek(t, KV_GROUPS, key, klen, &k, &v, err);
		if (st == MQ_NOT_FOUND)
			return MQ_OK;
		if (st != MQ_OK)
			return st;
		if (k.len < 13 || k.len > KEY_GROUP_MAX || be32_get(k.data) != q->qid)
			return MQ_OK;
		if (v.len != 8)
			return store_fail(t, err, MQ_DATA_LOSS, "a group entry is corrupted");
		if (purge_full(r))
			return MQ_OK;
		id = le64_get(v.data);
		/* Next time, seek just past this key: the key with a 0 added. */
		memcpy(key, k.data, k.len);
		key[k.len] = 0;
		klen = k.len + 1;
		st = store_msg_get(t, q->qid, id, &m, err);
		if (st == MQ_NOT_FOUND)
			return store_fail(t, err, MQ_DATA_LOSS,
			                  "group entry for missing message %" PRIu64, id);
		if (st != MQ_OK)
			return st;
		if ((m.flags & REC_MF_GROUP_WAIT) && (m.state & r->mask)) {
			if ((st = store_msg_remove(t, q, id, &m, err)) != MQ_OK)
				return st;
			r->n++;
		}
	}
}

/* purge_index removes the messages listed in a per-queue index (ready or
 * dead), whose keys are qid | ... | id (id in the last 8 bytes). */
static mq_status purge_index(store_txn *t, qent *q, kv_db db, size_t klen, purge_run *r,
                             store_err *err)
{
	uint8_t pfx[4];
	mq_status st;

	be32_put(pfx, q->qid);
	for (;;) {
		kv_val k, v;
		rec_msg m;
		uint64_t id;

		st = tx_seek(t, db, pfx, sizeof(pfx), &k, &v, err);
		if (st == MQ_NOT_FOUND)
			return MQ_OK;
		if (st != MQ_OK)
			return st;
		if (k.len != klen || memcmp(k.data, pfx, sizeof(pfx)) != 0)
			return MQ_OK;
		if (purge_full(r))
			return MQ_OK;
		id = be64_get((const uint8_t *)k.data + klen - 8);
		st = store_msg_get(t, q->qid, id, &m, err);
		if (st == MQ_NOT_FOUND)
			return store_fail(t, err, MQ_DATA_LOSS,
			                  "index entry for missing message %" PRIu64, id);
		if (st != MQ_OK || (st = store_msg_remove(t, q, id, &m, err)) != MQ_OK)
			return st;
		r->n++;
	}
}

/* purge_walk walks the queue's messages in id order from *cursor and
 * removes those whose state is in the mask (delayed and leased messages are
 * indexed only by time). *cursor ends at the next id to read, or
 * UINT64_MAX once the walk is complete. */
static mq_status purge_walk(store_txn *t, qent *q, purge_run *r, uint64_t *cursor, store_err *err)
{
	uint8_t key[KEY_MSG_LEN];
	mq_status st;

	for (;;) {
		kv_val k, v;
		rec_msg m;
		uint64_t id;

		key_msg(key, q->qid, *cursor);
		st = tx_seek(t, KV_MSGS, key, sizeof(key), &k, &v, err);
		if (st == MQ_NOT_FOUND)
			break;
		if (st != MQ_OK)
			return st;
		if (k.len != KEY_MSG_LEN || be32_get(k.data) != q->qid)
			break;
		id = be64_get((const uint8_t *)k.data + 4);
		if (r->scan == 0 || purge_full(r)) {
			r->stopped = true;
			*cursor = id;
			return MQ_OK;
		}
		r->scan--;
		if (!store_rec_msg_decode(&m, v.data, v.len))
			return store_fail(t, err, MQ_DATA_LOSS,
			                  "message %" PRIu64 " record is corrupted", id);
		if (m.state & r->mask) {
			if ((st = store_msg_remove(t, q, id, &m, err)) != MQ_OK)
				return st;
			r->n++;
		}
		if (id == UINT64_MAX - 1)
			break;
		*cursor = id + 1;
	}
	*cursor = UINT64_MAX;
	return MQ_OK;
}

static mq_status q_purge(store_txn *t, qent *q, purge_run *r, uint64_t *cursor, store_err *err)
{
	mq_status st = MQ_OK;

	if (r->mask & (STORE_STATE_DELAYED | STORE_STATE_LEASED)) {
		if (*cursor != UINT64_MAX && (st = purge_walk(t, q, r, cursor, err)) != MQ_OK)
			return st;
		/* A waiting message promoted past the walk may be READY now. */
		if (!r->stopped && (r->mask & STORE_STATE_READY))
			st = purge_index(t, q, KV_READY, KEY_READY_LEN, r, err);
		return st;
	}
	*cursor = 0;
	if ((r->mask & STORE_STATE_READY) && (st = purge_waiting(t, q, r, err)) != MQ_OK)
		return st;
	if (!r->stopped && (r->mask & STORE_STATE_READY) &&
	    (st = purge_index(t, q, KV_READY, KEY_READY_LEN, r, err)) != MQ_OK)
		return st;
	if (!r->stopped && (r->mask & STORE_STATE_DEAD))
		st = purge_index(t, q, KV_DEAD, KEY_DEAD_LEN, r, err);
	return st;
}

mq_status store_q_purge(store_txn *t, qent *q, uint32_t mask, uint64_t *purged, store_err *err)
{
	purge_run r = {.mask = mask, .limit = UINT64_MAX, .scan = UINT64_MAX};
	uint64_t cursor = 0;
	mq_status st = q_purge(t, q, &r, &cursor, err);

	if (purged)
		*purged = r.n;
	return st;
}

mq_status store_queue_purge_ex(store_txn *t, const char *name, uint32_t state_mask, uint32_t limit,
                               uint64_t *cursor, uint64_t *purged, bool *more, store_err *err)
{
	store_err local;
	purge_run r = {.mask = state_mask, .limit = UINT64_MAX, .scan = UINT64_MAX};
	uint64_t cur = cursor ? *cursor : 0;
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if (purged)
		*purged = 0;
	if (more)
		*more = false;
	if ((st = store_txn_check(t, err)) != MQ_OK)
		return st;
	if (state_mask & ~STORE_STATE_ALL)
		return store_seterr(err, MQ_INVALID_ARGUMENT, "purge: unknown state bits 0x%x",
		                    (unsigned)(state_mask & ~STORE_STATE_ALL));
	if ((st = store_q_get(t, name, &q, err)) != MQ_OK)
		return st;
	if (limit) {
		/* The walk reads at most this many records, matching or not, so a
		 * step stays short even when few messages match. */
		r.limit = limit;
		r.scan = (uint64_t)limit * STORE_PURGE_SCAN_FACTOR;
	}
	if ((st = q_purge(t, q, &r, &cur, err)) != MQ_OK)
		return st;
	if (purged)
		*purged = r.n;
	if (more)
		*more = r.stopped;
	if (cursor)
		*cursor = r.stopped ? cur : 0;
	return MQ_OK;
}

mq_status store_queue_purge(store_txn *t, const char *name, uint32_t state_mask, uint64_t *purged,
                            store_err *err)
{
	return store_queue_purge_ex(t, name, state_mask, 0, NULL, purged, NULL, err);
}

mq_status store_queue_delete(store_txn *t, const char *name, store_err *err)
{
	store_err local;
	uint8_t k[4];
	qent *q;
	mq_status st;

	if (!err)
		err = &local;
	if ((st = store_txn_check(t, err)) != MQ_OK ||
	    (st = store_q_get(t, name, &q, err)) != MQ_OK)
		return st;
	if ((st = store_q_purge(t, q, STORE_STATE_ALL, NULL, err)) != MQ_OK)
		return st;
	/* A subscription's queue leaves its topic (topics.c). */
	if ((st = store_topic_queue_deleted(t, q->name, err)) != MQ_OK)
		return st;
	be32_put(k, q->qid);
	if ((st = store_del_must(t, KV_QUEUES, q->name, q->name_len, err)) != MQ_OK ||
	    (st = store_del_must(t, KV_QIDS, k, sizeof(k), err)) != MQ_OK)
		return st;
	q->deleted = true;
	q->dirty = false;
	return MQ_OK;
}
