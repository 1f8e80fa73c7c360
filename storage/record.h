/* SPDX-License-Identifier: MIT */
/*
 * record.h: the on-disk format of the storage engines: key layout of each
 * database and the encoding of its values. record.c encodes and decodes;
 * nothing else in storage/ knows byte offsets.
 *
 * Integers in keys are big-endian so that byte order is numeric order.
 * Integers in values are little-endian. "|" is concatenation.
 *
 *   database  key                                        value
 *   --------  -----------------------------------------  ------------------------
 *   meta      "schema"                                    u32 schema version
 *             "next_id"                                   u64 next message id
 *             "next_token"                                u64 next lease token
 *             "next_qid"                                  u32 next queue id
 *   queues    queue name (no NUL)                         queue record (below)
 *   qids      qid u32                                     queue name (no NUL)
 *   msgs      qid u32 | id u64                            message record (below)
 *   ready     qid u32 | ~(prio ^ 0x80000000) u32 | id u64 empty
 *   timers    due_ms u64 | qid u32 | id u64               empty
 *   dedup     qid u32 | dedup key bytes                   id u64
 *   dead      qid u32 | id u64                            empty
 *   groups    qid u32 | group bytes | 0 u8 | seq u64        id u64
 *   expiry    expire_ms u64 | qid u32 | id u64            empty
 *   dedupexp  expire_ms u64 | qid u32 | dedup key bytes   empty
 *   schedules, sched_due, topics, subs, sub_topic: record_pubsub.h (schema 3)
 *
 * Why: messages are keyed by queue first, so a queue's messages are one
 * key range (purge and delete never touch other queues) and ack/nack,
 * which name the queue, find the message in O(log n) with no extra index.
 * Message ids come from one store-wide counter: unique and increasing.
 * "ready" sorts a queue's ready messages highest priority first, then by
 * id (FIFO); pull takes the first keys after the qid prefix. "timers"
 * holds one key per DELAYED message (due = not-before) and per LEASED one
 * (due = lease expiry); tick takes keys from the start while due <= now.
 * "dead" lists a queue's DEAD messages. READY messages are in "ready";
 * DELAYED and LEASED in "timers"; DEAD in "dead": exactly one index each.
 * A dedup key is in "dedup" from push until ack, purge, delete or DEAD
 * (in the WAITING scope only while the holder is READY or DELAYED). Its
 * value is the holder's id (8 bytes), or, in the WINDOW scope after the
 * holder was acked, id u64 | expire_ms u64 (16 bytes: a completed key),
 * with an entry in "dedupexp" that the tick removes both through.
 *
 * Groups (schema 3): every live (not DEAD) message with a group key has an
 * entry in "groups", ordered by seq (its id, or a fresh id when it was
 * redriven: it rejoins at the back). The first entry of a group is its
 * head: the only message of the group in ready or timers. The others
 * carry REC_MF_GROUP_WAIT and are in no other index (state READY or
 * DELAYED as pushed; due_ms keeps their not-before time). When the head
 * leaves (ack, DEAD, delete, purge), the next one is promoted.
 * "expiry" holds one key per live message with an expiry (TTL), from push
 * until it is removed or goes DEAD; the tick drops the entry of a LEASED
 * message without changing it (it expires when it comes back).
 *
 * Queue record, version 1 (104 bytes):
 *   0 u8 version (1)  1 u8[3] zero  4 u32 qid  8 u32 lease_ms (0 = default)
 *   12 u32 max_attempts (0 = default)  16 u64 created_ms
 *   24 u64[10] ready, delayed, in_flight, dead, pushed_total, acked_total,
 *      nacked_total, expired_total, deduplicated_total, dead_total
 *
 * Queue record, version 2 (112 bytes): version 1 with
 *   0 u8 version (2)  104 u32 retry_base_ms  108 u32 retry_max_ms
 * Version 1 records decode with both 0 (no backoff).
 *
 * Queue record, version 3 (152 bytes + dead-letter queue name): version 2 with
 *   0 u8 version (3)  1 u8 flags (bit 0: paused)  2 u8 dedup_scope
 *   3 u8 dlq_len  112 u64 max_length  120 u64 max_age_ms
 *   128 u64 dedup_window_ms  136 u32 rate_limit  140 u32 zero
 *   144 u64 redriven_total  152 dead-letter queue name (dlq_len bytes, no NUL)
 * Versions 1 and 2 decode with every new field 0; writes are version 3.
 *
 * Message record, version 1 (60 bytes + variable part):
 *   0 u8 version (1)  1 u8 state (one STORE_STATE_* bit)  2 u16 zero
 *   4 u32 attempts  8 i32 priority  12 u32 n_headers  16 u64 enqueued_ms
 *   24 u64 due_ms (not-before when DELAYED, lease expiry when LEASED, else 0)
 *   32 u64 lease_token (0 unless LEASED)
 *   40 u32 dedup_len  44 u32 type_len  48 u32 error_len  52 u32 hdrs_len
 *   56 u32 payload_len
 *   60 dedup key, NUL; type, NUL; last error, NUL; headers; payload
 *   headers: n_headers times (u32 klen, key, NUL, u32 vlen, value, NUL)
 * Strings are stored with their NUL so that readers point into the value.
 *
 * Message record, version 2 (68 bytes + variable part): version 1 with
 *   0 u8 version (2)  2 u8 n_history  3 u8 zero
 *   60 u32 reason_len  64 u32 history_len
 *   68 dedup key, NUL; type, NUL; last error, NUL; dead reason, NUL;
 *      history; headers; payload
 *   history: n_history entries, oldest first (at most STORE_HISTORY_MAX):
 *      u64 time_ms, u32 outcome (STORE_OUTCOME_*), u32 elen, error, NUL
 *      (error truncated to STORE_HISTORY_ERROR_MAX bytes)
 * Version 1 records decode as version 2 with no reason and no history;
 * every write stores version 2 (schema 1 -> 2 needs no rewrite).
 *
 * Message record, version 3 (88 bytes + variable part): version 2 with
 *   0 u8 version (3)  3 u8 flags (REC_MF_*)
 *   68 u32 group_len  72 u64 expire_ms (0 = never)  80 u64 group_seq
 *   88 dedup key, NUL; type, NUL; last error, NUL; dead reason, NUL;
 *      group, NUL; history; headers; payload
 * Versions 1 and 2 decode with no group and no expiry; every write stores
 * version 3 (schema 2 -> 3 needs no rewrite: the new databases start
 * empty).
 *
 * How to change the format (checklist):
 *  1. Never change the meaning of an existing version. Add a new record
 *     version (REC_*_VERSION) or a new database; new code reads every
 *     older version.
 *  2. Bump STORE_SCHEMA_VERSION when an older binary could misread the
 *     store (new database, new key shape, new record version written).
 *  3. Write the upgrade in store.c (schema_check): old version -> new, in
 *     the open transaction, then store the new schema version.
 *  4. Update this comment, record.c and the tests (reopen tests in
 *     tests/test_storage.c read stores written by the current code).
 * A binary refuses (FAILED_PRECONDITION) a store whose schema version is
 * newer than the one it knows.
 */
#ifndef MQ_STORAGE_RECORD_H
#define MQ_STORAGE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "storage.h"

/* 3: queue and message records version 3; groups, expiry, dedupexp; schedules and topics
 * (record_pubsub.h) */
#define STORE_SCHEMA_VERSION 3u
#define REC_QUEUE_VERSION    3u
#define REC_QUEUE_VERSION_2  2u
#define REC_QUEUE_VERSION_1  1u
#define REC_MSG_VERSION      3u
#define REC_MSG_VERSION_2    2u
#define REC_MSG_VERSION_1    1u

#define REC_MF_GROUP_WAIT 0x01u /* grouped, not the head: only in "groups" */

#define REC_QUEUE_FIXED    152u
#define REC_QUEUE_SIZE_MAX (REC_QUEUE_FIXED + MQ_NAME_MAX)
#define REC_QUEUE_SIZE_2   112u
#define REC_QUEUE_SIZE_1   104u
#define REC_MSG_FIXED      88u
#define REC_MSG_FIXED_2    68u
#define REC_MSG_FIXED_1    60u
#define REC_HIST_FIXED     16u   /* time_ms, outcome, elen */
#define STORE_DEDUP_MAX    256u  /* longest dedup key, bytes (LMDB keys <= 511) */
#define STORE_TYPE_MAX     256u  /* longest type string, bytes */
#define STORE_ERROR_MAX    1024u /* a nack's error is truncated to this */

#define KEY_MSG_LEN      12u
#define KEY_READY_LEN    16u
#define KEY_TIMER_LEN    20u
#define KEY_DEAD_LEN     12u
#define KEY_DEDUP_MAX    (4u + STORE_DEDUP_MAX)
#define KEY_GROUP_MAX    (4u + STORE_GROUP_MAX + 1u + 8u)
#define KEY_EXPIRY_LEN   20u
#define KEY_DEDUPEXP_MAX (8u + 4u + STORE_DEDUP_MAX)

/* rec_queue is a decoded queue record. */
typedef struct rec_queue {
	uint32_t qid;
	uint32_t lease_ms;
	uint32_t max_attempts;
	uint32_t retry_base_ms;
	uint32_t retry_max_ms;
	uint64_t created_ms;
	store_queue_stats stats; /* oldest_ready_age_ms is not stored */
	/* Version 3: */
	bool paused;
	uint8_t dedup_scope;
	uint8_t dlq_len;
	uint64_t max_length;
	uint64_t max_age_ms;
	uint64_t dedup_window_ms;
	uint32_t rate_limit;
	char dlq[MQ_NAME_MAX + 1]; /* dead-letter queue, NUL-terminated; "" = none */
} rec_queue;

/* rec_msg is a decoded message record; pointers borrow the value. */
typedef struct rec_msg {
	uint8_t state;
	uint8_t flags; /* REC_MF_* */
	uint32_t attempts;
	int32_t priority;
	uint32_t n_headers;
	uint64_t enqueued_ms;
	uint64_t due_ms;
	uint64_t lease_token;
	const char *dedup;
	uint32_t dedup_len;
	const char *type;
	uint32_t type_len;
	const char *error;
	uint32_t error_len;
	const char *reason; /* dead reason; "" unless DEAD */
	uint32_t reason_len;
	const char *group; /* "" when none */
	uint32_t group_len;
	uint64_t expire_ms; /* 0 = never */
	uint64_t group_seq; /* its place in its group */
	uint8_t n_hist;
	const uint8_t *hist; /* encoded history */
	uint32_t hist_len;
	const uint8_t *hdrs; /* encoded headers */
	uint32_t hdrs_len;
	const void *payload;
	uint32_t payload_len;
} rec_msg;

static inline void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void be64_put(uint8_t *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

static inline uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t be64_get(const uint8_t *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

static inline void le32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void le64_put(uint8_t *p, uint64_t v)
{
	le32_put(p, (uint32_t)v);
	le32_put(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64_get(const uint8_t *p)
{
	return (uint64_t)le32_get(p) | (uint64_t)le32_get(p + 4) << 32;
}

static inline void key_msg(uint8_t k[KEY_MSG_LEN], uint32_t qid, uint64_t id)
{
	be32_put(k, qid);
	be64_put(k + 4, id);
}

static inline void key_ready(uint8_t k[KEY_READY_LEN], uint32_t qid, int32_t prio, uint64_t id)
{
	be32_put(k, qid);
	be32_put(k + 4, ~((uint32_t)prio ^ 0x80000000u));
	be64_put(k + 8, id);
}

static inline void key_timer(uint8_t k[KEY_TIMER_LEN], uint64_t due, uint32_t qid, uint64_t id)
{
	be64_put(k, due);
	be32_put(k + 8, qid);
	be64_put(k + 12, id);
}

/* key_dedup returns the key's length; len <= STORE_DEDUP_MAX. */
static inline size_t key_dedup(uint8_t k[KEY_DEDUP_MAX], uint32_t qid, const char *key, size_t len)
{
	be32_put(k, qid);
	memcpy(k + 4, key, len);
	return 4 + len;
}

/* key_group_pfx writes qid | group | 0 and returns its length. */
static inline size_t key_group_pfx(uint8_t k[KEY_GROUP_MAX], uint32_t qid, const char *g,
                                   size_t len)
{
	be32_put(k, qid);
	memcpy(k + 4, g, len);
	k[4 + len] = 0;
	return 5 + len;
}

/* key_group writes qid | group | 0 | seq and returns its length. */
static inline size_t key_group(uint8_t k[KEY_GROUP_MAX], uint32_t qid, const char *g, size_t len,
                               uint64_t seq)
{
	size_t n = key_group_pfx(k, qid, g, len);

	be64_put(k + n, seq);
	return n + 8;
}

static inline size_t key_dedupexp(uint8_t k[KEY_DEDUPEXP_MAX], uint64_t due, uint32_t qid,
                                  const char *key, size_t len)
{
	be64_put(k, due);
	be32_put(k + 8, qid);
	memcpy(k + 12, key, len);
	return 12 + len;
}

/* store_rec_queue_encode writes q into out and returns its length. */
size_t store_rec_queue_encode(uint8_t out[REC_QUEUE_SIZE_MAX], const rec_queue *q);
bool store_rec_queue_decode(rec_queue *q, const void *data, size_t len);

/* store_rec_msg_size is the encoded size of m, with headers h[0..nh) when
 * h is not NULL, else m's encoded headers. 0 if it would exceed 4 GiB. */
size_t store_rec_msg_size(const rec_msg *m, const store_header *h, size_t nh);
/* store_rec_msg_encode writes store_rec_msg_size() bytes into out. */
void store_rec_msg_encode(uint8_t *out, const rec_msg *m, const store_header *h, size_t nh);
bool store_rec_msg_decode(rec_msg *m, const void *data, size_t len);
/* store_rec_headers_decode fills h[0..m->n_headers) from m's headers. */
bool store_rec_headers_decode(const rec_msg *m, store_header *h);
/* store_rec_history_decode fills h[0..m->n_hist) from m's history. */
bool store_rec_history_decode(const rec_msg *m, store_attempt *h);
/* STORE_HIST_BUF_MAX bounds an encoded history. */
#define STORE_HIST_BUF_MAX (STORE_HISTORY_MAX * (REC_HIST_FIXED + STORE_HISTORY_ERROR_MAX + 1))
/* store_rec_history_append writes into out m's history with one more entry
 * at the end (the oldest dropped when STORE_HISTORY_MAX are kept); sets
 * *n and returns the encoded length. out has STORE_HIST_BUF_MAX bytes. */
uint32_t store_rec_history_append(uint8_t *out, const rec_msg *m, uint64_t time_ms,
                                  uint32_t outcome, const char *error, uint8_t *n);

#endif
