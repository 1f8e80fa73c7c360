/* SPDX-License-Identifier: MIT */
/*
 * record_pubsub.h: the on-disk format of schedules and topics (schema 3),
 * in the conventions of record.h (whose checklist applies): big-endian
 * integers in keys, little-endian in values, "|" is concatenation.
 * record_pubsub.c encodes and decodes.
 *
 *   database   key                                  value
 *   ---------  -----------------------------------  ----------------------
 *   schedules  schedule name (no NUL)               schedule record (below)
 *   sched_due  next_ms u64 | schedule name          empty
 *   topics     topic name (no NUL)                  topic record (below)
 *   subs       topic name | 0x00 | queue name       u64 created_ms
 *   sub_topic  queue name                           topic name
 *
 * "sched_due" holds one key per active (not paused) schedule: its next
 * slot, so the due schedules are the first keys (O(log n) to find). A
 * topic's subscriptions are the "subs" keys with the prefix "topic\0"
 * (names hold no NUL), in name order; "sub_topic" maps a subscription's
 * queue back to its topic, so deleting the queue detaches it.
 *
 * Schedule record, version 1 (128 bytes + variable part):
 *   0 u8 version (1)  1 u8 kind (1 cron, 2 interval)  2 u8 flags (1 paused)
 *   3 u8 dedup mode  4 i32 priority  8 u32 n_headers  12 u32 zero
 *   16 u64 interval_ms  24 u64 anchor_ms (interval slots: anchor + k * it)
 *   32 u64 created_ms  40 u64 next_ms (0 when paused)  48 u64 last_slot_ms
 *   56 u64 last_fired_ms  64 u64 fired_total  72 u64 missed_total
 *   80 u64 delay_ms  88 u64 last_id
 *   96 u32 queue_len  100 u32 cron_len  104 u32 tz_len  108 u32 type_len
 *   112 u32 dedup_len  116 u32 error_len  120 u32 hdrs_len  124 u32 payload_len
 *   128 queue, NUL; cron, NUL; tz, NUL; type, NUL; dedup key, NUL;
 *       last error, NUL; headers (as in message records); payload
 *
 * Topic record, version 1 (32 bytes):
 *   0 u8 version (1)  1 u8[3] zero  4 u32 n_subs  8 u64 created_ms
 *   16 u64 published_total  24 u64 copies_total
 */
#ifndef MQ_STORAGE_RECORD_PUBSUB_H
#define MQ_STORAGE_RECORD_PUBSUB_H

#include "record.h"

#define REC_SCHED_VERSION 1u
#define REC_SCHED_FIXED   128u
#define REC_TOPIC_VERSION 1u
#define REC_TOPIC_SIZE    32u

#define REC_SCHED_CRON     1u
#define REC_SCHED_INTERVAL 2u
#define REC_SCHED_PAUSED   1u

#define KEY_SCHED_DUE_MAX (8u + MQ_NAME_MAX)
#define KEY_SUB_MAX       (2u * MQ_NAME_MAX + 1u)

/* rec_sched is a decoded schedule record; pointers borrow the value. */
typedef struct rec_sched {
	uint8_t kind;
	uint8_t flags;
	uint8_t dedup_mode;
	int32_t priority;
	uint32_t n_headers;
	uint64_t interval_ms, anchor_ms, created_ms, next_ms;
	uint64_t last_slot_ms, last_fired_ms, fired_total, missed_total;
	uint64_t delay_ms, last_id;
	const char *queue, *cron, *tz, *type, *dedup, *error;
	uint32_t queue_len, cron_len, tz_len, type_len, dedup_len, error_len;
	const uint8_t *hdrs; /* encoded headers */
	uint32_t hdrs_len;
	const void *payload;
	uint32_t payload_len;
} rec_sched;

typedef struct rec_topic {
	uint32_t n_subs;
	uint64_t created_ms, published_total, copies_total;
} rec_topic;

/* store_rec_sched_size is the encoded size of s with headers h[0..nh)
 * when h is not NULL, else s's encoded headers; 0 above 4 GiB. */
size_t store_rec_sched_size(const rec_sched *s, const store_header *h, size_t nh);
void store_rec_sched_encode(uint8_t *out, const rec_sched *s, const store_header *h, size_t nh);
bool store_rec_sched_decode(rec_sched *s, const void *data, size_t len);
/* store_rec_sched_headers fills h[0..s->n_headers) from s's headers. */
bool store_rec_sched_headers(const rec_sched *s, store_header *h);

void store_rec_topic_encode(uint8_t out[REC_TOPIC_SIZE], const rec_topic *t);
bool store_rec_topic_decode(rec_topic *t, const void *data, size_t len);

static inline size_t key_sched_due(uint8_t k[KEY_SCHED_DUE_MAX], uint64_t due, const char *name,
                                   size_t len)
{
	be64_put(k, due);
	memcpy(k + 8, name, len);
	return 8 + len;
}

static inline size_t key_sub(uint8_t k[KEY_SUB_MAX], const char *topic, size_t tlen,
                             const char *queue, size_t qlen)
{
	memcpy(k, topic, tlen);
	k[tlen] = 0;
	memcpy(k + tlen + 1, queue, qlen);
	return tlen + 1 + qlen;
}

#endif
