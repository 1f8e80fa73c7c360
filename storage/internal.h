/* SPDX-License-Identifier: MIT */
/*
 * internal.h: what store.c, queues.c and jobs.c share: the store and
 * transaction structs, the per-transaction queue cache, and wrappers over
 * the kv backend that turn backend failures into a failed transaction.
 * Not included outside storage/.
 */
#ifndef MQ_STORAGE_INTERNAL_H
#define MQ_STORAGE_INTERNAL_H

#include "kv.h"
#include "record.h"
#include "storage.h"

/* qent is a queue in the transaction's cache. Counters change here and
 * reach the queues database once, at commit (dirty). A queue created in
 * the transaction is written at creation too, so that listings see it. */
typedef struct qent {
	uint32_t qid;
	bool dirty;
	bool deleted;
	uint8_t name_len;
	char name[MQ_NAME_MAX + 1];
	rec_queue rec;
} qent;

/* store_txn is the one transaction of a store, embedded in it: beginning
 * one allocates nothing. */
struct store_txn {
	store *s;
	kv_txn *kv;
	bool failed;
	uint64_t next_id;    /* the next message id to hand out */
	uint64_t next_token; /* the next lease token */
	uint32_t next_qid;
	uint64_t now; /* the clock, read once per operation */
	/* The queue cache: ents[0..n_ents) are this transaction's entries; the
	 * pool (cap_ents) is kept across transactions. Two open-addressing
	 * tables (by name hash and by qid) hold entry indexes; a slot is live
	 * only when its generation is gen, so a new transaction clears them
	 * in O(1). */
	qent **ents;
	uint32_t n_ents, cap_ents;
	uint32_t hcap; /* power of two, > 2 * n_ents */
	uint32_t gen;
	uint32_t *name_slot, *name_gen;
	uint32_t *qid_slot, *qid_gen;
	/* The savepoint (store_savepoint): the counters and cached queues as
	 * they were, restored by store_rollback. */
	bool sp_active;
	uint64_t sp_next_id, sp_next_token;
	uint32_t sp_next_qid;
	uint32_t sp_n_ents, sp_cap;
	qent *sp_ents;
};

struct store {
	const kv_ops *ops;
	kv_env *kv;
	store_config cfg;
	uint32_t lease_ms;            /* resolved defaults */
	uint32_t max_attempts;        /* resolved defaults */
	uint64_t next_id, next_token; /* committed values */
	uint32_t next_qid;
	bool txn_open;
	store_txn txn;
	uint8_t *buf; /* scratch for encoding, kept across operations */
	size_t buf_cap;
	store_header *hdrs; /* scratch for decoded headers */
	size_t hdrs_cap;
};

/* store_seterr writes a formatted reason into err and returns st. */
mq_status store_seterr(store_err *err, mq_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* store_fail marks t failed and writes the reason. */
mq_status store_fail(store_txn *t, store_err *err, mq_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* store_txn_check refuses operations on a failed or missing transaction. */
mq_status store_txn_check(store_txn *t, store_err *err);

/* store_room asks the backend for room for about `bytes` of new data
 * (kv_ops.room): a push (drain false) may not use the reserve kept for
 * draining; a pull or timer rewriting a record (drain true) may.
 * RESOURCE_EXHAUSTED is a request error: the transaction goes on. */
mq_status store_room(store_txn *t, size_t bytes, bool drain, store_err *err);

/* store_room_rewrite is store_room(drain) for rewriting record m. */
mq_status store_room_rewrite(store_txn *t, const rec_msg *m, store_err *err);

/* store_scratch returns a buffer of at least n bytes valid until the next
 * call; NULL (and t failed) when out of memory. */
uint8_t *store_scratch(store_txn *t, size_t n, store_err *err);
store_header *store_hdr_scratch(store_txn *t, size_t n, store_err *err);

/* Queue cache. store_q_get validates the name (INVALID_ARGUMENT) and
 * returns NOT_FOUND with a message for a missing queue. */
mq_status store_q_get(store_txn *t, const char *name, qent **out, store_err *err);
mq_status store_q_by_qid(store_txn *t, uint32_t qid, qent **out, store_err *err);
mq_status store_q_create(store_txn *t, const char *name, const store_queue_config *cfg, qent **out,
                         store_err *err);
mq_status store_name_check(const char *name, store_err *err);
/* store_q_set_config copies the fields of c named by mask into r;
 * store_q_get_config reads r's config into c. */
void store_q_set_config(rec_queue *r, const store_queue_config *c, uint32_t mask);
void store_q_get_config(const rec_queue *r, store_queue_config *c);
uint32_t store_q_lease_ms(const store_txn *t, const qent *q, uint32_t lease_ms);
uint32_t store_q_max_attempts(const store_txn *t, const qent *q);
void store_q_info(const qent *q, store_queue_info *info);
void store_notify_ready(store_txn *t, const qent *q);

/* store_q_purge removes every message of q with a state in mask, in one go. */
mq_status store_q_purge(store_txn *t, qent *q, uint32_t mask, uint64_t *purged, store_err *err);

/* kv wrappers: any backend failure marks the transaction failed. get and
 * seek/next pass MQ_NOT_FOUND through; del_must reports a missing key as
 * DATA_LOSS (an index out of step with the records). */
static inline mq_status tx_chk(store_txn *t, mq_status st)
{
	if (st != MQ_OK && st != MQ_NOT_FOUND)
		t->failed = true;
	return st;
}

static inline mq_status tx_get(store_txn *t, kv_db db, const void *k, size_t kl, kv_val *v,
                               store_err *err)
{
	return tx_chk(t, t->s->ops->get(t->kv, db, k, kl, v, err));
}

static inline mq_status tx_put(store_txn *t, kv_db db, const void *k, size_t kl, const void *v,
                               size_t vl, store_err *err)
{
	mq_status st = t->s->ops->put(t->kv, db, k, kl, v, vl, err);

	if (st != MQ_OK)
		t->failed = true;
	return st;
}

static inline mq_status tx_seek(store_txn *t, kv_db db, const void *k, size_t kl, kv_val *key,
                                kv_val *val, store_err *err)
{
	return tx_chk(t, t->s->ops->seek(t->kv, db, k, kl, key, val, err));
}

static inline mq_status tx_next(store_txn *t, kv_db db, kv_val *key, kv_val *val, store_err *err)
{
	return tx_chk(t, t->s->ops->next(t->kv, db, key, val, err));
}

/* store_q_counter is the queue's gauge for a message state. */
static inline uint64_t *store_q_counter(qent *q, uint8_t state)
{
	switch (state) {
	case STORE_STATE_READY:
		return &q->rec.stats.ready;
	case STORE_STATE_DELAYED:
		return &q->rec.stats.delayed;
	case STORE_STATE_LEASED:
		return &q->rec.stats.in_flight;
	default:
		return &q->rec.stats.dead;
	}
}

/* store_msg_remove deletes message id of q (record m) with its index
 * entry and, unless DEAD, its dedup key; fixes q's gauge. */
mq_status store_msg_remove(store_txn *t, qent *q, uint64_t id, const rec_msg *m, store_err *err);

/* STORE_OLDEST_PRIO_MAX bounds the priority levels store_q_oldest_ready
 * visits. */
#define STORE_OLDEST_PRIO_MAX 64u

/* store_q_oldest_ready sets *age_ms to now minus the enqueue time of q's
 * oldest READY message (0 when none): it reads the first entry of each
 * priority level of the ready index (oldest within its level), at most
 * STORE_OLDEST_PRIO_MAX levels, highest first; no queue scan. */
mq_status store_q_oldest_ready(store_txn *t, const qent *q, uint64_t *age_ms, store_err *err);

/* store_msg_put encodes message record m (with headers h[0..nh) when h is
 * not NULL, else m's encoded ones) into the scratch buffer and stores it;
 * *rec (if not NULL) gets the encoded bytes, valid until the next
 * encoding. store_index_key computes the state index entry of m (ready,
 * timers or dead): its database, key and *klen. Both in jobs.c. */
mq_status store_msg_put(store_txn *t, uint32_t qid, uint64_t id, const rec_msg *m,
                        const store_header *h, size_t nh, const uint8_t **rec, store_err *err);
kv_db store_index_key(uint8_t k[KEY_TIMER_LEN], size_t *klen, uint32_t qid, uint64_t id,
                      const rec_msg *m);

/* Dead-letter queues (jobs.c). store_dlq_of finds q's dead-letter queue
 * (*dlq NULL when none, or when it no longer exists). store_dead_letter
 * moves message id of q (record m, already DEAD, whose old index entry is
 * okey in odb, oklen 0 = none) into dlq, with the origin header, and counts
 * it in both queues; the caller frees its dedup key, expiry entry and group
 * place in q. */
mq_status store_dlq_of(store_txn *t, qent *q, qent **dlq, store_err *err);
mq_status store_dead_letter(store_txn *t, qent *q, qent *dlq, uint64_t id, rec_msg *m,
                            uint8_t ostate, kv_db odb, const uint8_t *okey, size_t oklen,
                            store_err *err);

mq_status store_del_must(store_txn *t, kv_db db, const void *k, size_t kl, store_err *err);

/* store_msg_get reads and decodes message id of queue qid: NOT_FOUND
 * (nothing written to err) when absent, DATA_LOSS when it does not parse. */
mq_status store_msg_get(store_txn *t, uint32_t qid, uint64_t id, rec_msg *m, store_err *err);

/* ---- groups.c: ordering groups, expiry (TTL), dedup scopes --------------- */

uint32_t store_q_dedup_scope(const qent *q);
uint64_t store_q_dedup_window_ms(const qent *q);
uint64_t store_q_max_age_ms(const qent *q);

/* store_del_opt deletes a key that may be missing. */
mq_status store_del_opt(store_txn *t, kv_db db, const void *k, size_t kl, store_err *err);

/* store_group_place places message m (m->group set) in its group at seq,
 * reading only: sets m->group_seq, and REC_MF_GROUP_WAIT when the group
 * already has a head (the message then goes in no other index). Then
 * store the record and store_group_add its entry. No-op without a group. */
mq_status store_group_place(store_txn *t, uint32_t qid, rec_msg *m, uint64_t seq, store_err *err);
mq_status store_group_add(store_txn *t, uint32_t qid, uint64_t id, const char *g, size_t glen,
                          uint64_t seq, store_err *err);
/* store_group_leave removes a message (group g, seq) from its group and,
 * when it was the head, promotes the next one. g must not point into the
 * store (copy it first). No-op when glen is 0. */
mq_status store_group_leave(store_txn *t, qent *q, const char *g, size_t glen, uint64_t seq,
                            bool was_head, store_err *err);

/* store_expiry_of is the expiry of a message pushed at now with ttl_ms
 * (0 = none) into q: the earlier of ttl and the queue's max age; 0 = never. */
uint64_t store_expiry_of(const qent *q, uint64_t now, uint64_t ttl_ms);
mq_status store_expiry_put(store_txn *t, uint32_t qid, uint64_t id, uint64_t expire_ms,
                           store_err *err);
mq_status store_expiry_del(store_txn *t, uint32_t qid, uint64_t id, uint64_t expire_ms,
                           store_err *err);
bool store_expired(const store_txn *t, const rec_msg *m);
/* store_mark_expired sets m DEAD with reason "expired" (record only). */
void store_mark_expired(rec_msg *m);

/* store_dedup_lookup finds the holder of a dedup key: MQ_OK with *id (and
 * *completed when it is a WINDOW record of an acked job), or NOT_FOUND
 * (a window that ended is freed on the way). */
mq_status store_dedup_lookup(store_txn *t, qent *q, const char *key, size_t len, uint64_t *id,
                             bool *completed, store_err *err);
/* store_dedup_release frees key when message id holds it. */
mq_status store_dedup_release(store_txn *t, const qent *q, const char *key, size_t len, uint64_t id,
                              store_err *err);
/* store_dedup_take gives key to message id when it is free. */
mq_status store_dedup_take(store_txn *t, const qent *q, const char *key, size_t len, uint64_t id,
                           store_err *err);
/* store_dedup_complete keeps key for the queue's window after message id
 * was acked (WINDOW scope; no-op otherwise). */
mq_status store_dedup_complete(store_txn *t, const qent *q, const char *key, size_t len,
                               uint64_t id, store_err *err);

/* store_tick_ext applies due expiries and dedup windows; *count goes on
 * counting toward budget (0 = none). */
mq_status store_tick_ext(store_txn *t, uint32_t budget, uint32_t *count, store_err *err);
/* store_next_due_ext lowers *due_ms to the earliest expiry or window end. */
mq_status store_next_due_ext(store_txn *t, uint64_t *due_ms, store_err *err);

#endif
