/* SPDX-License-Identifier: MIT */
/* queue.c: administration calls: queues (create, get, list, purge,
 * delete) and the server (ping, info). Converts wire QueueInfo and
 * ServerInfoReply into the plain structs of <mq/mq.h>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mq.pb-c.h"
#include "rpc.h"

static void mqc_queue_info_from(mq_queue_info *dst, const Mq__QueueInfo *w)
{
	memset(dst, 0, sizeof(*dst));
	snprintf(dst->name, sizeof(dst->name), "%s", w->name);
	dst->created_ms = w->created_ms;
	if (w->config != NULL) {
		dst->config.lease_ms = w->config->lease_ms;
		dst->config.max_attempts = w->config->max_attempts;
		dst->config.retry_base_ms = w->config->retry_base_ms;
		dst->config.retry_max_ms = w->config->retry_max_ms;
		dst->config.max_length = w->config->max_length;
		dst->config.max_age_ms = w->config->max_age_ms;
		dst->config.rate_limit = w->config->rate_limit;
		dst->config.dedup_scope = (uint32_t)w->config->dedup_scope;
		dst->config.dedup_window_ms = w->config->dedup_window_ms;
		snprintf(dst->config.dead_letter_queue, sizeof(dst->config.dead_letter_queue), "%s",
		         w->config->dead_letter_queue);
	}
	dst->paused = w->paused;
	if (w->stats != NULL) {
		const Mq__QueueStats *s = w->stats;

		dst->stats.ready = s->ready;
		dst->stats.delayed = s->delayed;
		dst->stats.in_flight = s->in_flight;
		dst->stats.dead = s->dead;
		dst->stats.pushed_total = s->pushed_total;
		dst->stats.acked_total = s->acked_total;
		dst->stats.nacked_total = s->nacked_total;
		dst->stats.expired_total = s->expired_total;
		dst->stats.deduplicated_total = s->deduplicated_total;
		dst->stats.dead_total = s->dead_total;
		dst->stats.redriven_total = s->redriven_total;
		dst->stats.oldest_ready_age_ms = s->oldest_ready_age_ms;
	}
}

/* mqc_queue_config_to fills a wire config from @p cfg; it points into cfg. */
static void mqc_queue_config_to(Mq__QueueConfig *qc, const mq_queue_config *cfg)
{
	qc->lease_ms = cfg->lease_ms;
	qc->max_attempts = cfg->max_attempts;
	qc->retry_base_ms = cfg->retry_base_ms;
	qc->retry_max_ms = cfg->retry_max_ms;
	qc->max_length = cfg->max_length;
	qc->max_age_ms = cfg->max_age_ms;
	qc->rate_limit = cfg->rate_limit;
	qc->dedup_scope = (Mq__DedupScope)cfg->dedup_scope;
	qc->dedup_window_ms = cfg->dedup_window_ms;
	qc->dead_letter_queue = (char *)cfg->dead_letter_queue;
}

/* mqc_dlq_check refuses a dead-letter queue name that is not one. */
static mq_status mqc_dlq_check(const mq_queue_config *cfg)
{
	if (memchr(cfg->dead_letter_queue, 0, sizeof(cfg->dead_letter_queue)) == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "dead_letter_queue is not NUL-terminated");
	if (cfg->dead_letter_queue[0] != '\0')
		return mqc_check_name("dead-letter queue name", cfg->dead_letter_queue);
	return MQ_OK;
}

/* Replies whose only field is the queue: Update, Pause, Resume. */
static mq_status mqc_queue_reply(mq_client *c, const ProtobufCMessage *req, mq_queue_info *info)
{
	ProtobufCMessage *rep;
	const ProtobufCFieldDescriptor *f;
	Mq__QueueInfo *qi;
	mq_status st;

	if ((st = mqc_rpc(c, req, 0, &rep)) != MQ_OK)
		return st;
	f = protobuf_c_message_descriptor_get_field_by_name(rep->descriptor, "queue");
	qi = f ? *(Mq__QueueInfo **)((char *)rep + f->offset) : NULL;
	if (qi == NULL) {
		protobuf_c_message_free_unpacked(rep, NULL);
		return mqc_fail(MQ_INTERNAL, "%s: reply without a queue", req->descriptor->name);
	}
	if (info != NULL)
		mqc_queue_info_from(info, qi);
	protobuf_c_message_free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_queue_update(mq_client *c, const char *name, const mq_queue_config *cfg,
                          uint32_t fields, mq_queue_info *info)
{
	static const char *const names[] = {
	    "lease_ms",   "max_attempts", "retry_base_ms", "retry_max_ms",    "max_length",
	    "max_age_ms", "rate_limit",   "dedup_scope",   "dedup_window_ms", "dead_letter_queue"};
	Mq__UpdateQueueRequest req = MQ__UPDATE_QUEUE_REQUEST__INIT;
	Mq__QueueConfig qc = MQ__QUEUE_CONFIG__INIT;
	char *list[sizeof(names) / sizeof(names[0])];
	size_t n = 0;
	mq_status st;

	if (c == NULL || cfg == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_queue_update: client and cfg are required");
	if ((st = mqc_check_name("queue name", name)) != MQ_OK ||
	    (st = mqc_dlq_check(cfg)) != MQ_OK)
		return st;
	if (fields == 0 || (fields >> (sizeof(names) / sizeof(names[0]))) != 0)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_queue_update: fields must name at least one MQ_QCFG_* field "
		                "and nothing else");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (fields & (1u << i))
			list[n++] = (char *)names[i];
	mqc_queue_config_to(&qc, cfg);
	req.name = (char *)name;
	req.config = &qc;
	req.fields = list;
	req.n_fields = n;
	return mqc_queue_reply(c, &req.base, info);
}

mq_status mq_queue_pause(mq_client *c, const char *name, mq_queue_info *info)
{
	Mq__PauseQueueRequest req = MQ__PAUSE_QUEUE_REQUEST__INIT;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_queue_pause: client is NULL");
	if ((st = mqc_check_name("queue name", name)) != MQ_OK)
		return st;
	req.name = (char *)name;
	return mqc_queue_reply(c, &req.base, info);
}

mq_status mq_queue_resume(mq_client *c, const char *name, mq_queue_info *info)
{
	Mq__ResumeQueueRequest req = MQ__RESUME_QUEUE_REQUEST__INIT;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_queue_resume: client is NULL");
	if ((st = mqc_check_name("queue name", name)) != MQ_OK)
		return st;
	req.name = (char *)name;
	return mqc_queue_reply(c, &req.base, info);
}

mq_status mq_queue_create(mq_client *c, const char *name, const mq_queue_config *cfg,
                          bool if_not_exists, bool *created)
{
	Mq__CreateQueueRequest req = MQ__CREATE_QUEUE_REQUEST__INIT;
	Mq__QueueConfig qc = MQ__QUEUE_CONFIG__INIT;
	Mq__CreateQueueReply *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_queue_create: client is NULL");
	if ((st = mqc_check_name("queue name", name)) != MQ_OK)
		return st;
	if (cfg != NULL) {
		if ((st = mqc_dlq_check(cfg)) != MQ_OK)
			return st;
		mqc_queue_config_to(&qc, cfg);
	}
	req.name = (char *)name;
	req.config = &qc;
	req.if_not_exists = if_not_exists;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (created != NULL)
		*created = rep->created;
	mq__create_queue_reply__free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_queue_get(mq_client *c, const char *name, mq_queue_info *info)
{
	Mq__GetQueueRequest req = MQ__GET_QUEUE_REQUEST__INIT;
	Mq__GetQueueReply *rep;
	mq_status st;

	if (c == NULL || info == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_queue_get: client and info are required");
	if ((st = mqc_check_name("queue name", name)) != MQ_OK)
		return st;
	req.name = (char *)name;
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (rep->queue == NULL) {
		mq__get_queue_reply__free_unpacked(rep, NULL);
		return mqc_fail(MQ_INTERNAL, "GetQueue: reply without a queue");
	}
	mqc_queue_info_from(info, rep->queue);
	mq__get_queue_reply__free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_queue_list(mq_client *c, mq_queue_info **infos, size_t *n)
{
	Mq__ListQueuesRequest req = MQ__LIST_QUEUES_REQUEST__INIT;
	Mq__ListQueuesReply *rep;
	char after[MQ_NAME_MAX + 1] = "";
	mq_queue_info *all = NULL, *grown;
	size_t count = 0;
	bool more;
	mq_status st;

	if (c == NULL || infos == NULL || n == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_queue_list: client, infos and n are required");
	do {
		req.after = after;
		req.limit = 0; /* the broker's page size */
		if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK) {
			free(all);
			return st;
		}
		more = rep->more;
		if (more && rep->n_queues == 0) {
			mq__list_queues_reply__free_unpacked(rep, NULL);
			free(all);
			return mqc_fail(MQ_INTERNAL, "ListQueues: empty page with more=true");
		}
		/* +1 so that an empty list is still a non-NULL array. */
		grown = realloc(all, (count + rep->n_queues + 1) * sizeof(*all));
		if (grown == NULL) {
			mq__list_queues_reply__free_unpacked(rep, NULL);
			free(all);
			return mqc_fail(MQ_INTERNAL, "out of memory");
		}
		all = grown;
		for (size_t i = 0; i < rep->n_queues; i++)
			mqc_queue_info_from(&all[count++], rep->queues[i]);
		if (rep->n_queues > 0)
			snprintf(after, sizeof(after), "%s", all[count - 1].name);
		mq__list_queues_reply__free_unpacked(rep, NULL);
	} while (more);
	*infos = all;
	*n = count;
	return mqc_ok();
}

void mq_queue_list_free(mq_queue_info *infos)
{
	free(infos);
}

mq_status mq_queue_purge_ex(mq_client *c, const char *name, const mq_purge_opts *opts,
                            uint64_t *purged, bool *more, uint64_t *next_cursor)
{
	static const struct {
		uint32_t bit;
		Mq__MessageState state;
	} map[] = {
	    {MQ_STATE_READY, MQ__MESSAGE_STATE__STATE_READY},
	    {MQ_STATE_DELAYED, MQ__MESSAGE_STATE__STATE_DELAYED},
	    {MQ_STATE_LEASED, MQ__MESSAGE_STATE__STATE_LEASED},
	    {MQ_STATE_DEAD, MQ__MESSAGE_STATE__STATE_DEAD},
	};
	static const mq_purge_opts none;
	Mq__PurgeQueueRequest req = MQ__PURGE_QUEUE_REQUEST__INIT;
	Mq__MessageState states[sizeof(map) / sizeof(map[0])];
	Mq__PurgeQueueReply *rep;
	uint32_t state_mask;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_queue_purge: client is NULL");
	if (opts == NULL)
		opts = &none;
	state_mask = opts->state_mask;
	if ((st = mqc_check_name("queue name", name)) != MQ_OK)
		return st;
	if ((state_mask & ~MQ_STATE_ALL) != 0)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_queue_purge: unknown state bits 0x%x",
		                state_mask & ~MQ_STATE_ALL);
	req.name = (char *)name;
	req.states = states;
	req.limit = opts->max;
	req.cursor = opts->cursor;
	/* Mask 0 and MQ_STATE_ALL both send no states: every state. */
	if (state_mask != MQ_STATE_ALL) {
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
			if (state_mask & map[i].bit)
				states[req.n_states++] = map[i].state;
		}
	}
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (purged != NULL)
		*purged = rep->purged;
	if (more != NULL)
		*more = rep->more;
	if (next_cursor != NULL)
		*next_cursor = rep->cursor;
	mq__purge_queue_reply__free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_queue_purge(mq_client *c, const char *name, uint32_t state_mask, uint64_t *purged)
{
	mq_purge_opts o = {.state_mask = state_mask};

	return mq_queue_purge_ex(c, name, &o, purged, NULL, NULL);
}

mq_status mq_queue_delete(mq_client *c, const char *name)
{
	Mq__DeleteQueueRequest req = MQ__DELETE_QUEUE_REQUEST__INIT;
	ProtobufCMessage *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_queue_delete: client is NULL");
	if ((st = mqc_check_name("queue name", name)) != MQ_OK)
		return st;
	req.name = (char *)name;
	if ((st = mqc_rpc(c, &req.base, 0, &rep)) != MQ_OK)
		return st;
	protobuf_c_message_free_unpacked(rep, NULL);
	return mqc_ok();
}

/* ---- Server ------------------------------------------------------------ */

mq_status mq_ping(mq_client *c, uint64_t *now_ms)
{
	Mq__PingRequest req = MQ__PING_REQUEST__INIT;
	Mq__PingReply *rep;
	mq_status st;

	if (c == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_ping: client is NULL");
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	if (now_ms != NULL)
		*now_ms = rep->now_ms;
	mq__ping_reply__free_unpacked(rep, NULL);
	return mqc_ok();
}

mq_status mq_server_info_get(mq_client *c, mq_server_info *info)
{
	Mq__ServerInfoRequest req = MQ__SERVER_INFO_REQUEST__INIT;
	Mq__ServerInfoReply *rep;
	mq_status st;

	if (c == NULL || info == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_server_info_get: client and info are required");
	if ((st = mqc_rpc(c, &req.base, 0, (ProtobufCMessage **)&rep)) != MQ_OK)
		return st;
	memset(info, 0, sizeof(*info));
	snprintf(info->version, sizeof(info->version), "%s", rep->version);
	snprintf(info->storage_engine, sizeof(info->storage_engine), "%s", rep->storage_engine);
	snprintf(info->durability, sizeof(info->durability), "%s", rep->durability);
	info->protocol_version = rep->protocol_version;
	info->uptime_ms = rep->uptime_ms;
	info->max_payload_bytes = rep->max_payload_bytes;
	info->now_ms = rep->now_ms;
	info->auto_create_queues = rep->auto_create_queues;
	info->default_lease_ms = rep->default_lease_ms;
	info->default_max_attempts = rep->default_max_attempts;
	mq__server_info_reply__free_unpacked(rep, NULL);
	return mqc_ok();
}
