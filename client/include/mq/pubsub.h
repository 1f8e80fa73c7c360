/* SPDX-License-Identifier: MIT */
/**
 * @file mq/pubsub.h
 * @brief libmqclient: recurring schedules and topics (publish/subscribe).
 *
 * Included by <mq/mq.h>; same conventions (mq_status results, mq_errmsg(),
 * out-parameters written only on success). docs/semantics.md ("Schedules",
 * "Topics") describes the behaviour; docs/client.md the calls.
 */
#ifndef MQ_PUBSUB_H
#define MQ_PUBSUB_H

#include "mq/mq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Schedules ------------------------------------------------------------ */

#define MQ_CRON_MAX 128 /**< longest cron expression, bytes */
#define MQ_TZ_MAX   64  /**< longest time zone name, bytes */

/** When a schedule fires: a cron expression (with a time zone) or a fixed
 * interval; set exactly one of cron and interval_ms. */
typedef struct mq_schedule_spec {
	/** 5-field cron expression "MIN HOUR DOM MON DOW" (ranges, steps,
	 * lists, JAN-DEC, SUN-SAT, @daily...); NULL for an interval. */
	const char *cron;
	/** IANA time zone of cron, e.g. "Europe/Paris"; NULL or "" = UTC. */
	const char *time_zone;
	/** Fire every interval_ms from the schedule's creation (10 ms to 366
	 * days); 0 for cron. */
	uint64_t interval_ms;
	/** Create it paused. */
	bool paused;
	uint64_t reserved[8]; /**< keep zero */
} mq_schedule_spec;

/** A schedule as the broker reports it (plain data). */
typedef struct mq_schedule_info {
	char name[MQ_NAME_MAX + 1];
	char queue[MQ_NAME_MAX + 1];
	char cron[MQ_CRON_MAX + 1];    /**< "" for an interval schedule */
	char time_zone[MQ_TZ_MAX + 1]; /**< "" = UTC */
	uint64_t interval_ms;          /**< 0 for a cron schedule */
	bool paused;
	uint64_t created_ms;
	uint64_t next_fire_ms;    /**< the next slot, unix ms; 0 when paused */
	uint64_t last_slot_ms;    /**< the slot fired last; 0 = never */
	uint64_t last_fired_ms;   /**< when it fired (broker clock) */
	uint64_t fired_total;     /**< firings */
	uint64_t missed_total;    /**< slots skipped by catch-up after downtime */
	uint64_t last_message_id; /**< the message the last firing pushed */
	char last_error[256];     /**< the last firing's push error, "" if none */
	/** The template's type, dedup key, priority and delay; its payload
	 * and headers are counted only. */
	char type[257];
	char dedup_key[257];
	int32_t priority;
	uint64_t delay_ms;
	size_t payload_len;
	size_t n_headers;
	uint64_t reserved[8];
} mq_schedule_info;

/**
 * mq_schedule_create creates schedule @p name, which pushes the message
 * (@p payload, @p len, @p msg: type, headers, priority, dedup key and mode,
 * delay) into @p queue at each slot of @p spec. Each pushed message also
 * carries the headers "mq-schedule" (the name) and "mq-schedule-slot"
 * (the slot, unix ms); "{slot}" in the dedup key becomes the slot.
 * @param[out] info     the schedule (may be NULL)
 * @param[out] created  false when it existed and if_not_exists (may be NULL)
 * @return MQ_OK; MQ_INVALID_ARGUMENT (bad name, expression, time zone,
 *   interval, template); MQ_ALREADY_EXISTS; MQ_NOT_FOUND (no such queue and
 *   the broker does not create queues on push).
 */
MQ_API mq_status mq_schedule_create(mq_client *c, const char *name, const char *queue,
                                    const mq_schedule_spec *spec, const void *payload, size_t len,
                                    const mq_push_opts *msg, bool if_not_exists,
                                    mq_schedule_info *info, bool *created);

/** mq_schedule_get reads schedule @p name. @return MQ_OK; MQ_NOT_FOUND. */
MQ_API mq_status mq_schedule_get(mq_client *c, const char *name, mq_schedule_info *info);

/** mq_schedule_list lists every schedule in name order into an array
 * allocated by the library (free with mq_schedule_list_free()). */
MQ_API mq_status mq_schedule_list(mq_client *c, mq_schedule_info **infos, size_t *n);

/** mq_schedule_list_free frees an array of mq_schedule_list(); NULL is fine. */
MQ_API void mq_schedule_list_free(mq_schedule_info *infos);

/** mq_schedule_pause stops a schedule firing (idempotent); @p info (may be
 * NULL) gets its new state. @return MQ_OK; MQ_NOT_FOUND. */
MQ_API mq_status mq_schedule_pause(mq_client *c, const char *name, mq_schedule_info *info);

/** mq_schedule_resume makes a paused schedule fire again from its next slot
 * after now (paused slots are neither fired nor counted missed);
 * idempotent. @return MQ_OK; MQ_NOT_FOUND. */
MQ_API mq_status mq_schedule_resume(mq_client *c, const char *name, mq_schedule_info *info);

/** mq_schedule_delete deletes a schedule (messages it pushed stay).
 * @return MQ_OK; MQ_NOT_FOUND. */
MQ_API mq_status mq_schedule_delete(mq_client *c, const char *name);

/* ---- Topics ------------------------------------------------------------- */

/** One subscription of a topic: its queue's config and depths. */
typedef struct mq_subscription_info {
	char name[MQ_NAME_MAX + 1]; /**< the subscription's queue */
	mq_queue_config config;
	uint64_t ready, delayed, in_flight, dead;
	uint64_t created_ms;
	uint64_t reserved[4];
} mq_subscription_info;

/** A topic with its subscriptions; subscriptions is owned by the info
 * (free with mq_topic_info_clear() or mq_topic_list_free()). */
typedef struct mq_topic_info {
	char name[MQ_NAME_MAX + 1];
	uint64_t created_ms;
	uint64_t published_total; /**< messages published */
	uint64_t copies_total;    /**< copies stored in subscriptions */
	size_t n_subscriptions;
	mq_subscription_info *subscriptions; /**< in name order */
	uint64_t reserved[4];
} mq_topic_info;

/** mq_topic_create creates topic @p name.
 * @return MQ_OK; MQ_ALREADY_EXISTS (unless if_not_exists: then
 *   *created = false); MQ_INVALID_ARGUMENT. */
MQ_API mq_status mq_topic_create(mq_client *c, const char *name, bool if_not_exists, bool *created);

/** mq_topic_delete deletes a topic; its subscriptions' queues stay, as
 * plain queues with their messages (*detached, may be NULL, counts them).
 * @return MQ_OK; MQ_NOT_FOUND. */
MQ_API mq_status mq_topic_delete(mq_client *c, const char *name, uint32_t *detached);

/** mq_topic_get reads a topic and its subscriptions into @p info; release
 * it with mq_topic_info_clear(). @return MQ_OK; MQ_NOT_FOUND. */
MQ_API mq_status mq_topic_get(mq_client *c, const char *name, mq_topic_info *info);

/** mq_topic_info_clear frees what mq_topic_get() allocated in @p info. */
MQ_API void mq_topic_info_clear(mq_topic_info *info);

/** mq_topic_list lists every topic in name order into an array allocated
 * by the library (free with mq_topic_list_free(infos, n)). */
MQ_API mq_status mq_topic_list(mq_client *c, mq_topic_info **infos, size_t *n);

/** mq_topic_list_free frees an array of mq_topic_list(); NULL is fine. */
MQ_API void mq_topic_list_free(mq_topic_info *infos, size_t n);

/** mq_topic_sub_create creates subscription @p name of @p topic: a new
 * queue named @p name with @p cfg (NULL = defaults), which receives a copy
 * of every message published after this call. Consumers pull and ack it
 * as any queue.
 * @return MQ_OK; MQ_NOT_FOUND (no topic); MQ_ALREADY_EXISTS (a queue of that
 *   name exists; with if_not_exists, OK and *created = false when it is
 *   already this topic's subscription). */
MQ_API mq_status mq_topic_sub_create(mq_client *c, const char *topic, const char *name,
                                     const mq_queue_config *cfg, bool if_not_exists, bool *created);

/** mq_topic_sub_delete deletes subscription @p name of @p topic and its
 * queue with its messages. @return MQ_OK; MQ_NOT_FOUND. */
MQ_API mq_status mq_topic_sub_delete(mq_client *c, const char *topic, const char *name);

/** mq_publish stores one copy of the message in every subscription of
 * @p topic, in one durable transaction.
 * @param[out] copies  how many copies were stored (0 when the topic has no
 *                     subscription); may be NULL
 * @return MQ_OK; MQ_NOT_FOUND (no topic); MQ_INVALID_ARGUMENT. */
MQ_API mq_status mq_publish(mq_client *c, const char *topic, const void *payload, size_t len,
                            const mq_push_opts *opts, size_t *copies);

/** The outcome of one message of mq_publish_batch(). */
typedef struct mq_publish_result {
	mq_status status; /**< MQ_OK when its copies were stored */
	size_t copies;    /**< copies stored */
} mq_publish_result;

/** mq_publish_batch publishes @p n (1 to MQ_PUSH_BATCH_MAX) messages in one
 * request and one commit; each succeeds or fails on its own (results, may
 * be NULL). @return as mq_push_batch(). */
MQ_API mq_status mq_publish_batch(mq_client *c, const char *topic, size_t n,
                                  const void *const *payloads, const size_t *lens,
                                  const mq_push_opts *opts, mq_publish_result *results);

#ifdef __cplusplus
}
#endif
#endif
