/* SPDX-License-Identifier: MIT */
/*
 * pubsub.h: the storage contract's part for recurring schedules and topics
 * (issue 3). Included by storage.h users that need it (the broker's
 * writer and its schedule and topic handlers); same rules as storage.h:
 * every call runs in a write transaction, request errors change nothing,
 * transaction failures leave only store_abort().
 *
 * Schedules (schedules.c). A schedule is named (queue name rules, its own
 * namespace) and pushes a templated message (store_push_msg: payload,
 * type, headers, priority, dedup key and mode, delay) into a queue at each
 * slot of a 5-field cron expression in an IANA time zone (cron.h), or
 * every interval_ms after its creation. The next slot is kept in a due
 * index keyed by time, so finding due schedules is O(log n).
 * store_schedule_tick, called by the broker's writer inside its
 * transaction with the store's clock, fires each due schedule: it pushes
 * one message and records the slot it fired for in the same transaction,
 * so a slot never fires twice, whatever crashes. When slots were missed
 * (the broker was down), it fires once, for the latest slot not after
 * now, and adds the slots it skipped to missed_total. A paused schedule
 * has no next slot; resuming it starts from the next slot after now (the
 * slots in between are neither fired nor counted as missed). The queue is
 * created with the default config if it is missing when a schedule fires.
 * A dedup key containing "{slot}" has it replaced by the slot (unix ms).
 * Each fired message carries the headers "mq-schedule" (the schedule's
 * name) and "mq-schedule-slot" (the slot, unix ms) after the template's.
 *
 * Topics (topics.c). A topic (its own namespace) has subscriptions; each
 * subscription is a queue of its own (named by the subscription, with its
 * own config), created with it. store_publish stores one copy of a
 * message in every subscription queue of the topic, in the caller's
 * transaction; a subscription created later sees only later messages.
 * Deleting a subscription deletes its queue and messages. Deleting a
 * queue that is a subscription (store_queue_delete) removes the
 * subscription from its topic. Deleting a topic detaches its
 * subscriptions: their queues stay, as plain queues, with their messages.
 */
#ifndef MQ_STORAGE_PUBSUB_H
#define MQ_STORAGE_PUBSUB_H

#include "storage.h"

/* ---- Schedules ------------------------------------------------------- */

#define STORE_CRON_MAX        128u                        /* longest cron expression, bytes */
#define STORE_TZ_MAX          64u                         /* longest time zone name, bytes */
#define STORE_SCHED_MIN_MS    10u                         /* the shortest interval, ms */
#define STORE_SCHED_MAX_MS    (366ull * 24 * 3600 * 1000) /* the longest, ms */
#define STORE_SCHED_NAME_HDR  "mq-schedule"
#define STORE_SCHED_SLOT_HDR  "mq-schedule-slot"
#define STORE_SCHED_SLOT_TAG  "{slot}"
#define STORE_SCHED_ERROR_MAX 200u /* a firing's error is truncated to this */

typedef struct store_schedule_spec {
	const char *queue;
	const char *cron;      /* NULL or "" for an interval schedule */
	const char *time_zone; /* IANA name for cron; NULL or "" = UTC */
	uint64_t interval_ms;  /* 0 for a cron schedule */
	bool paused;           /* created paused */
	store_push_msg msg;    /* the template */
} store_schedule_spec;

/* store_schedule_info is a borrowed view of a schedule, valid only during
 * the callback that receives it. */
typedef struct store_schedule_info {
	const char *name;
	const char *queue;
	const char *cron;      /* "" for an interval schedule */
	const char *time_zone; /* "" = UTC */
	uint64_t interval_ms;  /* 0 for a cron schedule */
	bool paused;
	uint64_t created_ms;
	uint64_t next_ms;       /* the next slot, unix ms; 0 when paused */
	uint64_t last_slot_ms;  /* the slot fired last; 0 = never fired */
	uint64_t last_fired_ms; /* when (the store's clock) */
	uint64_t last_id;       /* the message that firing pushed (0: none) */
	uint64_t fired_total;   /* firings */
	uint64_t missed_total;  /* slots skipped by catch-up */
	const char *last_error; /* the last firing's push error, "" if none */
	store_push_msg msg;     /* the template (borrowed) */
} store_schedule_info;

/* store_schedule_cb receives one schedule; return non-zero to stop early. */
typedef int (*store_schedule_cb)(void *arg, const store_schedule_info *info);

/* store_schedule_create creates schedule name. Exactly one of cron and
 * interval_ms (STORE_SCHED_MIN_MS to STORE_SCHED_MAX_MS) is set; the time
 * zone must name a zoneinfo file and is only for cron. A bad name,
 * expression, zone or template is INVALID_ARGUMENT, so is a cron
 * expression that never fires. A missing queue is NOT_FOUND unless
 * auto_create (then it is created when the schedule first fires). An
 * existing schedule is ALREADY_EXISTS, or OK with *created = false (its
 * spec unchanged) when if_not_exists. cb (may be NULL) sees the schedule. */
mq_status store_schedule_create(store_txn *t, const char *name, const store_schedule_spec *spec,
                                bool auto_create, bool if_not_exists, store_schedule_cb cb,
                                void *arg, bool *created, store_err *err);

/* store_schedule_get passes schedule name to cb; NOT_FOUND if none. */
mq_status store_schedule_get(store_txn *t, const char *name, store_schedule_cb cb, void *arg,
                             store_err *err);

/* store_schedule_list calls cb for up to limit (0 = all) schedules in name
 * order after the name `after` (NULL or "" = from the first); *more tells
 * whether more follow. */
mq_status store_schedule_list(store_txn *t, const char *after, uint32_t limit, store_schedule_cb cb,
                              void *arg, bool *more, store_err *err);

/* store_schedule_pause and _resume set the paused state (idempotent); cb
 * (may be NULL) sees the result. NOT_FOUND if none. */
mq_status store_schedule_pause(store_txn *t, const char *name, store_schedule_cb cb, void *arg,
                               store_err *err);
mq_status store_schedule_resume(store_txn *t, const char *name, store_schedule_cb cb, void *arg,
                                store_err *err);

/* store_schedule_delete deletes a schedule; NOT_FOUND if none. */
mq_status store_schedule_delete(store_txn *t, const char *name, store_err *err);

/* store_schedule_fire describes one firing, for the broker's log. */
typedef struct store_schedule_fire {
	const char *name;
	const char *queue;
	uint64_t slot_ms;  /* the slot it fired for */
	uint64_t missed;   /* slots skipped before it (catch-up) */
	uint64_t id;       /* the message pushed (the holder's for a duplicate) */
	bool duplicate;    /* the dedup key was held */
	mq_status status;  /* the push's result (not OK: a request error) */
	const char *error; /* its message, "" when OK */
	uint64_t next_ms;  /* the next slot (UINT64_MAX: none) */
} store_schedule_fire;

typedef void (*store_schedule_fire_fn)(void *arg, const store_schedule_fire *f);

/* store_schedule_tick fires the schedules whose next slot is due by the
 * store's clock, at most max_items (0 = no limit), calling cb (may be
 * NULL) for each firing. A push that fails with a request error still
 * uses up the slot (the error is kept in last_error). */
mq_status store_schedule_tick(store_txn *t, uint32_t max_items, store_schedule_fire_fn cb,
                              void *arg, uint32_t *fired, store_err *err);

/* store_schedule_next_due returns the earliest next slot of any schedule,
 * unix ms, or UINT64_MAX when none is active. */
mq_status store_schedule_next_due(store_txn *t, uint64_t *due_ms, store_err *err);

/* ---- Topics ----------------------------------------------------------- */

/* store_sub_info is one subscription: its queue's config and counters. */
typedef struct store_sub_info {
	char name[MQ_NAME_MAX + 1]; /* the subscription's queue */
	store_queue_config config;
	store_queue_stats stats;
	uint64_t created_ms;
} store_sub_info;

/* store_topic_info is a borrowed view, valid during the callback. */
typedef struct store_topic_info {
	const char *name;
	uint64_t created_ms;
	uint64_t published_total; /* messages published */
	uint64_t copies_total;    /* copies stored in subscriptions */
	size_t n_subs;
	const store_sub_info *subs; /* in name order */
} store_topic_info;

typedef int (*store_topic_cb)(void *arg, const store_topic_info *info);

/* store_topic_create creates a topic; an existing one is ALREADY_EXISTS,
 * or OK with *created = false when if_not_exists. */
mq_status store_topic_create(store_txn *t, const char *name, bool if_not_exists, bool *created,
                             store_err *err);

/* store_topic_delete deletes a topic and detaches its subscriptions (their
 * queues stay); *detached (may be NULL) counts them. NOT_FOUND if none. */
mq_status store_topic_delete(store_txn *t, const char *name, uint32_t *detached, store_err *err);

/* store_topic_get passes the topic with its subscriptions to cb. */
mq_status store_topic_get(store_txn *t, const char *name, store_topic_cb cb, void *arg,
                          store_err *err);

/* store_topic_list calls cb for up to limit (0 = all) topics in name
 * order after `after` (NULL or "" = from the first). */
mq_status store_topic_list(store_txn *t, const char *after, uint32_t limit, store_topic_cb cb,
                           void *arg, bool *more, store_err *err);

/* store_sub_create creates subscription name of topic: a new queue of
 * that name with cfg. NOT_FOUND (no topic); ALREADY_EXISTS when a queue of
 * that name exists, unless it is already this topic's subscription and
 * if_not_exists (then OK, *created = false). info (may be NULL) gets it. */
mq_status store_sub_create(store_txn *t, const char *topic, const char *name,
                           const store_queue_config *cfg, bool if_not_exists, store_sub_info *info,
                           bool *created, store_err *err);

/* store_sub_delete deletes subscription name of topic and its queue with
 * its messages. NOT_FOUND when it is not a subscription of topic. */
mq_status store_sub_delete(store_txn *t, const char *topic, const char *name, store_err *err);

/* store_publish_cb receives each copy stored by store_publish. */
typedef void (*store_publish_cb)(void *arg, const char *queue, const store_push_result *r);

/* store_publish pushes one copy of m into every subscription of topic, in
 * subscription name order; the message is checked first (a request error
 * stores no copy). *copies (may be NULL) counts the copies; 0 when the
 * topic has no subscription. NOT_FOUND when there is no topic. Dedup keys
 * apply per subscription queue. */
mq_status store_publish(store_txn *t, const char *topic, const store_push_msg *m,
                        store_publish_cb cb, void *arg, uint32_t *copies, store_err *err);

#endif
