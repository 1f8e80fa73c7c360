/* SPDX-License-Identifier: MIT */
/* pubsub.c: the schedule and topic calls of <mq/pubsub.h>: they build
 * protobuf requests and convert wire ScheduleInfo and TopicInfo into the
 * plain structs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mq.pb-c.h"
#include "rpc.h"

/* ---- Schedules ------------------------------------------------------------ */

static void sched_from(mq_schedule_info *d, const Mq__ScheduleInfo *w)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", w->name);
	snprintf(d->queue, sizeof(d->queue), "%s", w->queue);
	snprintf(d->cron, sizeof(d->cron), "%s", w->cron);
	snprintf(d->time_zone, sizeof(d->time_zone), "%s", w->time_zone);
	d->interval_ms = w->interval_ms;
	d->paused = w->paused;
	d->created_ms = w->created_ms;
	d->next_fire_ms = w->next_fire_ms;
	d->last_slot_ms = w->last_slot_ms;
	d->last_fired_ms = w->last_fired_ms;
	d->fired_total = w->fired_total;
	d->missed_total = w->missed_total;
	d->last_message_id = w->last_message_id;
	snprintf(d->last_error, sizeof(d->last_error), "%s", w->last_error);
	if (w->message != NULL) {
		snprintf(d->type, sizeof(d->type), "%s", w->message->type);
		snprintf(d->dedup_key, sizeof(d->dedup_key), "%s", w->message->dedup_key);
		d->priority = w->message->priority;
		d->delay_ms = w->message->delay_ms;
		d->payload_len = w->message->payload.len;
		d->n_headers = w->message->n_headers;
	}
}

mq_status mq_schedule_create(mq_client *c, const char *name, const char *queue,
                             const mq_schedule_spec *spec, const void *payload, size_t len,
                             const mq_push_opts *msg, bool if_not_exists, mq_schedule_info *info,
                             bool *created)
{
	Mq__CreateScheduleRequest req = MQ__CREATE_SCHEDULE_REQUEST__INIT;
	Mq__PushMessage pm;
	Mq__Header *hps = NULL, **hpp = NULL;
	Mq__CreateScheduleReply *rep;
	mq_status st;

	if (c == NULL || spec == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_schedule_create: client and spec are required");
	if ((st = mqc_check_name("schedule name", name)) != MQ_OK ||
	    (st = mqc_check_name("queue name", queue)) != MQ_OK)
		return st;
	if ((st = mqc_push_fill(&pm, payload, len, msg, &hps, &hpp)) != MQ_OK)
		goto out;
	req.name = (char *)name;
	req.queue = (char *)queue;
	req.cron = (char *)(spec->cron != NULL ? spec->cron : "");
	req.time_zone = (char *)(spec->time_zone != NULL ? spec->time_zone : "");
	req.interval_ms = spec->interval_ms;
	req.paused = spec->paused;
	req.message = &pm;
	req.if_not_exists = if_not_exists;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		goto out;
	if (rep->schedule == NULL) {
		mq__create_schedule_reply__free_unpacked(rep, NULL);
		st = mqc_fail(MQ_INTERNAL, "CreateSchedule: reply without a schedule");
		goto out;
	}
	if (info != NULL)
		sched_from(info, rep->schedule);
	if (created != NULL)
		*created = rep->created;
	mq__create_schedule_reply__free_unpacked(rep, NULL);
	st = mqc_ok();
out:
	free(hps);
	free(hpp);
	return st;
}

/* sched_call runs Get, Pause or Resume: requests {name} whose reply is
 * {ScheduleInfo schedule = 1}. */
static mq_status sched_call(mq_client *c, const char *what, ProtobufCMessage *req,
                            mq_schedule_info *info)
{
	ProtobufCMessage *rep;
	const Mq__ScheduleInfo *si;
	mq_status st;

	if ((st = mqc_rpc(c, req, 0, &rep)) != MQ_OK)
		return st;
	/* The three replies have the same layout: field 1, a ScheduleInfo. */
	si = ((Mq__GetScheduleReply *)rep)->schedule;
	if (si == NULL) {
		protobuf_c_message_free_unpacked(rep, NULL);
		return mqc_fail(MQ_INTERNAL, "%s: reply without a schedule", what);
	}
	if (info != NULL)
		sched_from(info, si);
	protobuf_c_message_free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_schedule_get(mq_client *c, const char *name, mq_schedule_info *info)
{
	Mq__GetScheduleRequest req = MQ__GET_SCHEDULE_REQUEST__INIT;
	mq_status st;

	if (c == NULL || info == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_schedule_get: client and info are required");
	if ((st = mqc_check_name("schedule name", name)) != MQ_OK)
		return st;
	req.name = (char *)name;
	return sched_call(c, "GetSchedule", &req.base, info);
}

mq_status mq_schedule_pause(mq_client *c, const char *name, mq_schedule_info *info)
{
	Mq__PauseScheduleRequest req = MQ__PAUSE_SCHEDULE_REQUEST__INIT;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_schedule_pause: client is NULL");
	if ((st = mqc_check_name("schedule name", name)) != MQ_OK)
		return st;
	req.name = (char *)name;
	return sched_call(c, "PauseSchedule", &req.base, info);
}

mq_status mq_schedule_resume(mq_client *c, const char *name, mq_schedule_info *info)
{
	Mq__ResumeScheduleRequest req = MQ__RESUME_SCHEDULE_REQUEST__INIT;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_schedule_resume: client is NULL");
	if ((st = mqc_check_name("schedule name", name)) != MQ_OK)
		return st;
	req.name = (char *)name;
	return sched_call(c, "ResumeSchedule", &req.base, info);
}

mq_status mq_schedule_delete(mq_client *c, const char *name)
{
	Mq__DeleteScheduleRequest req = MQ__DELETE_SCHEDULE_REQUEST__INIT;
	ProtobufCMessage *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_schedule_delete: client is NULL");
	if ((st = mqc_check_name("schedule name", name)) != MQ_OK)
		return st;
	req.name = (char *)name;
	if ((st = mqc_rpc(c, &req.base, 0, &rep)) != MQ_OK)
		return st;
	protobuf_c_message_free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_schedule_list(mq_client *c, mq_schedule_info **infos, size_t *n)
{
	Mq__ListSchedulesRequest req = MQ__LIST_SCHEDULES_REQUEST__INIT;
	Mq__ListSchedulesReply *rep;
	char after[MQ_NAME_MAX + 1] = "";
	mq_schedule_info *all = NULL, *grown;
	size_t count = 0;
	bool more;
	mq_status st;

	if (c == NULL || infos == NULL || n == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_schedule_list: client, infos and n are required");
	do {
		req.after = after;
		if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK) {
			free(all);
			return st;
		}
		more = rep->more;
		if (more && rep->n_schedules == 0) {
			mq__list_schedules_reply__free_unpacked(rep, NULL);
			free(all);
			return mqc_fail(MQ_INTERNAL, "ListSchedules: empty page with more=true");
		}
		grown = realloc(all, (count + rep->n_schedules + 1) * sizeof(*all));
		if (grown == NULL) {
			mq__list_schedules_reply__free_unpacked(rep, NULL);
			free(all);
			return mqc_fail(MQ_INTERNAL, "out of memory");
		}
		all = grown;
		for (size_t i = 0; i < rep->n_schedules; i++)
			sched_from(&all[count++], rep->schedules[i]);
		if (rep->n_schedules > 0)
			snprintf(after, sizeof(after), "%s", all[count - 1].name);
		mq__list_schedules_reply__free_unpacked(rep, NULL);
	} while (more);
	*infos = all;
	*n = count;
	return mqc_ok();
}

void mq_schedule_list_free(mq_schedule_info *infos)
{
	free(infos);
}

/* ---- Topics ----------------------------------------------------------------- */

static void sub_from(mq_subscription_info *d, const Mq__SubscriptionInfo *w)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", w->name);
	if (w->config != NULL) {
		d->config.lease_ms = w->config->lease_ms;
		d->config.max_attempts = w->config->max_attempts;
		d->config.retry_base_ms = w->config->retry_base_ms;
		d->config.retry_max_ms = w->config->retry_max_ms;
		d->config.max_length = w->config->max_length;
		d->config.max_age_ms = w->config->max_age_ms;
		d->config.rate_limit = w->config->rate_limit;
		d->config.dedup_scope = (uint32_t)w->config->dedup_scope;
		d->config.dedup_window_ms = w->config->dedup_window_ms;
		snprintf(d->config.dead_letter_queue, sizeof(d->config.dead_letter_queue), "%s",
		         w->config->dead_letter_queue);
	}
	d->ready = w->ready;
	d->delayed = w->delayed;
	d->in_flight = w->in_flight;
	d->dead = w->dead;
	d->created_ms = w->created_ms;
}

/* topic_from fills d (allocating its subscriptions). */
static mq_status topic_from(mq_topic_info *d, const Mq__TopicInfo *w)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", w->name);
	d->created_ms = w->created_ms;
	d->published_total = w->published_total;
	d->copies_total = w->copies_total;
	d->subscriptions =
	    calloc(w->n_subscriptions ? w->n_subscriptions : 1, sizeof(*d->subscriptions));
	if (d->subscriptions == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");
	for (size_t i = 0; i < w->n_subscriptions; i++)
		sub_from(&d->subscriptions[i], w->subscriptions[i]);
	d->n_subscriptions = w->n_subscriptions;
	return MQ_OK;
}

void mq_topic_info_clear(mq_topic_info *info)
{
	if (info == NULL)
		return;
	free(info->subscriptions);
	info->subscriptions = NULL;
	info->n_subscriptions = 0;
}

mq_status mq_topic_create(mq_client *c, const char *name, bool if_not_exists, bool *created)
{
	Mq__CreateTopicRequest req = MQ__CREATE_TOPIC_REQUEST__INIT;
	Mq__CreateTopicReply *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_topic_create: client is NULL");
	if ((st = mqc_check_name("topic name", name)) != MQ_OK)
		return st;
	req.name = (char *)name;
	req.if_not_exists = if_not_exists;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (created != NULL)
		*created = rep->created;
	mq__create_topic_reply__free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_topic_delete(mq_client *c, const char *name, uint32_t *detached)
{
	Mq__DeleteTopicRequest req = MQ__DELETE_TOPIC_REQUEST__INIT;
	Mq__DeleteTopicReply *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_topic_delete: client is NULL");
	if ((st = mqc_check_name("topic name", name)) != MQ_OK)
		return st;
	req.name = (char *)name;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (detached != NULL)
		*detached = rep->detached;
	mq__delete_topic_reply__free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_topic_get(mq_client *c, const char *name, mq_topic_info *info)
{
	Mq__GetTopicRequest req = MQ__GET_TOPIC_REQUEST__INIT;
	Mq__GetTopicReply *rep;
	mq_status st;

	if (c == NULL || info == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_topic_get: client and info are required");
	if ((st = mqc_check_name("topic name", name)) != MQ_OK)
		return st;
	req.name = (char *)name;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (rep->topic == NULL)
		st = mqc_fail(MQ_INTERNAL, "GetTopic: reply without a topic");
	else
		st = topic_from(info, rep->topic);
	mq__get_topic_reply__free_unpacked(rep, NULL);
	return st == MQ_OK ? mqc_ok() : st;
}

void mq_topic_list_free(mq_topic_info *infos, size_t n)
{
	if (infos == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		mq_topic_info_clear(&infos[i]);
	free(infos);
}

mq_status mq_topic_list(mq_client *c, mq_topic_info **infos, size_t *n)
{
	Mq__ListTopicsRequest req = MQ__LIST_TOPICS_REQUEST__INIT;
	Mq__ListTopicsReply *rep;
	char after[MQ_NAME_MAX + 1] = "";
	mq_topic_info *all = NULL, *grown;
	size_t count = 0;
	bool more;
	mq_status st;

	if (c == NULL || infos == NULL || n == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_topic_list: client, infos and n are required");
	do {
		req.after = after;
		if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK) {
			mq_topic_list_free(all, count);
			return st;
		}
		more = rep->more;
		grown = (more && rep->n_topics == 0)
		            ? NULL
		            : realloc(all, (count + rep->n_topics + 1) * sizeof(*all));
		if (grown == NULL) {
			mq__list_topics_reply__free_unpacked(rep, NULL);
			mq_topic_list_free(all, count);
			return mqc_fail(MQ_INTERNAL, "ListTopics: out of memory or an empty page");
		}
		all = grown;
		for (size_t i = 0; i < rep->n_topics; i++) {
			if ((st = topic_from(&all[count], rep->topics[i])) != MQ_OK) {
				mq__list_topics_reply__free_unpacked(rep, NULL);
				mq_topic_list_free(all, count);
				return st;
			}
			count++;
		}
		if (rep->n_topics > 0)
			snprintf(after, sizeof(after), "%s", all[count - 1].name);
		mq__list_topics_reply__free_unpacked(rep, NULL);
	} while (more);
	*infos = all;
	*n = count;
	return mqc_ok();
}

mq_status mq_topic_sub_create(mq_client *c, const char *topic, const char *name,
                              const mq_queue_config *cfg, bool if_not_exists, bool *created)
{
	Mq__CreateSubscriptionRequest req = MQ__CREATE_SUBSCRIPTION_REQUEST__INIT;
	Mq__QueueConfig qc = MQ__QUEUE_CONFIG__INIT;
	Mq__CreateSubscriptionReply *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_topic_sub_create: client is NULL");
	if ((st = mqc_check_name("topic name", topic)) != MQ_OK ||
	    (st = mqc_check_name("subscription name", name)) != MQ_OK)
		return st;
	if (cfg != NULL) {
		if (memchr(cfg->dead_letter_queue, 0, sizeof(cfg->dead_letter_queue)) == NULL)
			return mqc_fail(MQ_INVALID_ARGUMENT,
			                "dead_letter_queue is not NUL-terminated");
		qc.lease_ms = cfg->lease_ms;
		qc.max_attempts = cfg->max_attempts;
		qc.retry_base_ms = cfg->retry_base_ms;
		qc.retry_max_ms = cfg->retry_max_ms;
		qc.max_length = cfg->max_length;
		qc.max_age_ms = cfg->max_age_ms;
		qc.rate_limit = cfg->rate_limit;
		qc.dedup_scope = (Mq__DedupScope)cfg->dedup_scope;
		qc.dedup_window_ms = cfg->dedup_window_ms;
		qc.dead_letter_queue = (char *)cfg->dead_letter_queue;
	}
	req.topic = (char *)topic;
	req.name = (char *)name;
	req.config = &qc;
	req.if_not_exists = if_not_exists;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (created != NULL)
		*created = rep->created;
	mq__create_subscription_reply__free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_topic_sub_delete(mq_client *c, const char *topic, const char *name)
{
	Mq__DeleteSubscriptionRequest req = MQ__DELETE_SUBSCRIPTION_REQUEST__INIT;
	ProtobufCMessage *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_topic_sub_delete: client is NULL");
	if ((st = mqc_check_name("topic name", topic)) != MQ_OK ||
	    (st = mqc_check_name("subscription name", name)) != MQ_OK)
		return st;
	req.topic = (char *)topic;
	req.name = (char *)name;
	if ((st = mqc_rpc(c, &req.base, 0, &rep)) != MQ_OK)
		return st;
	protobuf_c_message_free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_publish_batch(mq_client *c, const char *topic, size_t n, const void *const *payloads,
                           const size_t *lens, const mq_push_opts *opts, mq_publish_result *results)
{
	Mq__PublishRequest req = MQ__PUBLISH_REQUEST__INIT;
	Mq__PublishReply *rep = NULL;
	Mq__PushMessage *pm = NULL, **pms = NULL;
	Mq__Header **hps = NULL, ***hpp = NULL;
	mq_status st;

	if (c == NULL || payloads == NULL || lens == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_publish_batch: client, payloads and lens are required");
	if (n == 0 || n > MQ_PUSH_BATCH_MAX)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_publish_batch: n is %zu, want 1 to %d", n,
		                MQ_PUSH_BATCH_MAX);
	if ((st = mqc_check_name("topic name", topic)) != MQ_OK)
		return st;
	pm = calloc(n, sizeof(*pm));
	pms = calloc(n, sizeof(*pms));
	hps = calloc(n, sizeof(*hps));
	hpp = calloc(n, sizeof(*hpp));
	if (pm == NULL || pms == NULL || hps == NULL || hpp == NULL) {
		st = mqc_fail(MQ_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		st = mqc_push_fill(&pm[i], payloads[i], lens[i], opts != NULL ? &opts[i] : NULL,
		                   &hps[i], &hpp[i]);
		if (st != MQ_OK)
			goto out;
		pms[i] = &pm[i];
	}
	req.topic = (char *)topic;
	req.n_messages = n;
	req.messages = pms;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		goto out;
	if (rep->n_results != n) {
		st = mqc_fail(MQ_INTERNAL, "Publish: %zu results for %zu messages", rep->n_results,
		              n);
		goto out;
	}
	st = MQ_OK;
	for (size_t i = 0; i < n; i++) {
		const Mq__PublishResult *r = rep->results[i];

		if (results != NULL) {
			results[i].status = (mq_status)r->status;
			results[i].copies = r->n_copies;
		}
		if (r->status != MQ_OK && st == MQ_OK)
			st = mqc_fail((mq_status)r->status, "%s", r->message);
	}
	if (st == MQ_OK)
		st = mqc_ok();
out:
	if (rep != NULL)
		mq__publish_reply__free_unpacked(rep, NULL);
	for (size_t i = 0; hps != NULL && hpp != NULL && i < n; i++) {
		free(hps[i]);
		free(hpp[i]);
	}
	free(pm);
	free(pms);
	free(hps);
	free(hpp);
	return st;
}

mq_status mq_publish(mq_client *c, const char *topic, const void *payload, size_t len,
                     const mq_push_opts *opts, size_t *copies)
{
	mq_publish_result r = {0};
	const void *p[1] = {payload};
	mq_status st = mq_publish_batch(c, topic, 1, p, &len, opts, &r);

	if (st == MQ_OK && copies != NULL)
		*copies = r.copies;
	return st;
}
