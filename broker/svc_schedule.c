/* SPDX-License-Identifier: MIT */
/*
 * svc_schedule.c: the schedule methods of mq.Broker (CreateSchedule,
 * GetSchedule, ListSchedules, PauseSchedule, ResumeSchedule,
 * DeleteSchedule) and the helpers svc_topic.c shares. Replies that carry
 * schedules are built by packing each ScheduleInfo straight into the reply
 * body (field 1 of every such reply) while the store's view is valid.
 * Firing is the writer's (writer.c, store_schedule_tick).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "pubsub.h"
#include "svc_pubsub.h"

#define SCHED_LIST_MAX 1000u

static brk_info *ps_info;

void svc_pubsub_init(brk_info *info)
{
	ps_info = info;
}

/* ---- Shared helpers --------------------------------------------------- */

void svc_ps_submit(brk_call *c, brk_apply_fn apply)
{
	c->apply = apply;
	if (brk_writer_submit(ps_info->writer, c) != 0) {
		brk_call_set_error(c, MQ_UNAVAILABLE, "the broker is shutting down");
		brk_call_finish(c);
	}
}

void svc_ps_store_error(brk_call *c, store_txn *t, int rv, const store_err *err)
{
	c->body_len = 0;
	if (store_txn_failed(t)) {
		c->status = rv;
		c->done = false;
		return;
	}
	brk_call_set_error(c, rv, "%s", err->msg);
}

bool svc_ps_check_name(brk_call *c, const char *what, const char *name)
{
	if (mq_name_valid(name))
		return true;
	brk_call_set_error(c, MQ_INVALID_ARGUMENT,
	                   "invalid %s name '%.64s': use 1-%d of A-Z a-z 0-9 . _ -", what, name,
	                   MQ_NAME_MAX);
	brk_call_finish(c);
	return false;
}

static bool put_varint(brk_call *c, uint64_t v)
{
	uint8_t *p = brk_call_body_reserve(c, 10), *q;

	if (p == NULL)
		return false;
	q = p;
	do {
		*q = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			*q |= 0x80;
		q++;
	} while (v);
	c->body_len += (size_t)(q - p);
	return true;
}

bool svc_ps_append_varint(brk_call *c, unsigned field, uint64_t v)
{
	return put_varint(c, (uint64_t)field << 3) && put_varint(c, v);
}

bool svc_ps_append_msg(brk_call *c, unsigned field, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *p;

	if (!put_varint(c, (uint64_t)field << 3 | 2u) || !put_varint(c, n))
		return false;
	if ((p = brk_call_body_reserve(c, n ? n : 1)) == NULL)
		return false;
	c->body_len += protobuf_c_message_pack(m, p);
	return true;
}

void svc_ps_body_done(brk_call *c)
{
	c->status = MQ_OK;
	c->errmsg[0] = '\0';
	c->done = true;
}

/* ---- Conversions -------------------------------------------------------- */

/* sched_emit packs each schedule it sees as field 1 of the reply body. */
typedef struct sched_emit {
	brk_call *c;
	bool failed;
} sched_emit;

static int sched_emit_cb(void *arg, const store_schedule_info *i)
{
	sched_emit *e = arg;
	Mq__ScheduleInfo o = MQ__SCHEDULE_INFO__INIT;
	Mq__PushMessage pm = MQ__PUSH_MESSAGE__INIT;
	Mq__Header *hdrs = NULL, **hps = NULL;

	if (i->msg.n_headers) {
		hdrs = calloc(i->msg.n_headers, sizeof(*hdrs));
		hps = calloc(i->msg.n_headers, sizeof(*hps));
		if (hdrs == NULL || hps == NULL) {
			free(hdrs);
			free(hps);
			e->failed = true;
			return 1;
		}
	}
	for (size_t k = 0; k < i->msg.n_headers; k++) {
		mq__header__init(&hdrs[k]);
		hdrs[k].key = (char *)i->msg.headers[k].key;
		hdrs[k].value = (char *)i->msg.headers[k].value;
		hps[k] = &hdrs[k];
	}
	pm.payload.data = (uint8_t *)i->msg.payload;
	pm.payload.len = i->msg.payload_len;
	pm.dedup_key = (char *)i->msg.dedup_key;
	pm.dedup_mode = i->msg.dedup_mode == STORE_DEDUP_REPLACE ? MQ__DEDUP_MODE__DEDUP_REPLACE
	                                                         : MQ__DEDUP_MODE__DEDUP_IGNORE;
	pm.delay_ms = i->msg.delay_ms;
	pm.priority = i->msg.priority;
	pm.type = (char *)i->msg.type;
	pm.n_headers = i->msg.n_headers;
	pm.headers = hps;
	o.name = (char *)i->name;
	o.queue = (char *)i->queue;
	o.cron = (char *)i->cron;
	o.time_zone = (char *)i->time_zone;
	o.interval_ms = i->interval_ms;
	o.message = &pm;
	o.paused = i->paused;
	o.created_ms = i->created_ms;
	o.next_fire_ms = i->next_ms;
	o.last_slot_ms = i->last_slot_ms;
	o.last_fired_ms = i->last_fired_ms;
	o.fired_total = i->fired_total;
	o.missed_total = i->missed_total;
	o.last_error = (char *)i->last_error;
	o.last_message_id = i->last_id;
	if (!svc_ps_append_msg(e->c, 1, &o.base))
		e->failed = true;
	free(hdrs);
	free(hps);
	return e->failed;
}

/* sched_finish ends an apply step whose body sched_emit built: extra is a
 * varint field 2 (created, more) when non-zero. */
static void sched_finish(brk_call *c, store_txn *t, int rv, const store_err *err,
                         const sched_emit *e, uint64_t field2)
{
	if (rv != MQ_OK) {
		svc_ps_store_error(c, t, rv, err);
		return;
	}
	if (e->failed || (field2 && !svc_ps_append_varint(c, 2, field2))) {
		c->body_len = 0;
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "out of memory building the reply");
		return;
	}
	svc_ps_body_done(c);
}

/* ---- CreateSchedule --------------------------------------------------------- */

static void apply_create_schedule(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__CreateScheduleRequest *in = (const Mq__CreateScheduleRequest *)c->input;
	const Mq__PushMessage *pm = in->message;
	store_header hdr_stack[16], *hdrs = hdr_stack;
	store_schedule_spec spec = {0};
	sched_emit e = {.c = c};
	store_err err;
	bool created = false;
	int rv;

	c->body_len = 0;
	if (pm != NULL && pm->n_headers > 16 &&
	    (hdrs = calloc(pm->n_headers, sizeof(*hdrs))) == NULL) {
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	spec.queue = in->queue;
	spec.cron = in->cron;
	spec.time_zone = in->time_zone;
	spec.interval_ms = in->interval_ms;
	spec.paused = in->paused;
	if (pm != NULL) {
		for (size_t h = 0; h < pm->n_headers; h++) {
			hdrs[h].key = pm->headers[h]->key;
			hdrs[h].value = pm->headers[h]->value;
		}
		spec.msg.payload = pm->payload.data;
		spec.msg.payload_len = pm->payload.len;
		spec.msg.dedup_key = pm->dedup_key;
		spec.msg.dedup_mode = pm->dedup_mode == MQ__DEDUP_MODE__DEDUP_REPLACE
		                          ? STORE_DEDUP_REPLACE
		                          : STORE_DEDUP_IGNORE;
		spec.msg.delay_ms = pm->delay_ms;
		spec.msg.priority = pm->priority;
		spec.msg.type = pm->type;
		spec.msg.headers = hdrs;
		spec.msg.n_headers = pm->n_headers;
	}
	rv = store_schedule_create(t, in->name, &spec, brk_writer_config(w)->auto_create,
	                           in->if_not_exists, sched_emit_cb, &e, &created, &err);
	if (hdrs != hdr_stack)
		free(hdrs);
	sched_finish(c, t, rv, &err, &e, created);
}

void svc_create_schedule(Mq__Broker_Service *base, const Mq__CreateScheduleRequest *in,
                         Mq__CreateScheduleReply_Closure closure, void *data)
{
	brk_call *c = data;

	(void)base;
	(void)closure;
	if (!svc_ps_check_name(c, "schedule", in->name) ||
	    !svc_ps_check_name(c, "queue", in->queue))
		return;
	if (in->message != NULL && in->message->payload.len > ps_info->cfg->max_payload) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "payload of %zu bytes is larger than the limit of %" PRIu64
		                   " bytes (mqd --max-payload)",
		                   in->message->payload.len, ps_info->cfg->max_payload);
		brk_call_finish(c);
		return;
	}
	svc_ps_submit(c, apply_create_schedule);
}

/* ---- Get, Pause, Resume, Delete ------------------------------------------------ */

static void apply_get_schedule(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__GetScheduleRequest *in = (const Mq__GetScheduleRequest *)c->input;
	sched_emit e = {.c = c};
	store_err err;
	int rv;

	(void)w;
	c->body_len = 0;
	rv = store_schedule_get(t, in->name, sched_emit_cb, &e, &err);
	sched_finish(c, t, rv, &err, &e, 0);
}

static void apply_pause_schedule(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__PauseScheduleRequest *in = (const Mq__PauseScheduleRequest *)c->input;
	sched_emit e = {.c = c};
	store_err err;
	int rv;

	(void)w;
	c->body_len = 0;
	rv = store_schedule_pause(t, in->name, sched_emit_cb, &e, &err);
	sched_finish(c, t, rv, &err, &e, 0);
}

static void apply_resume_schedule(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__ResumeScheduleRequest *in = (const Mq__ResumeScheduleRequest *)c->input;
	sched_emit e = {.c = c};
	store_err err;
	int rv;

	(void)w;
	c->body_len = 0;
	rv = store_schedule_resume(t, in->name, sched_emit_cb, &e, &err);
	sched_finish(c, t, rv, &err, &e, 0);
}

static void apply_delete_schedule(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__DeleteScheduleRequest *in = (const Mq__DeleteScheduleRequest *)c->input;
	sched_emit e = {.c = c};
	store_err err;
	int rv;

	(void)w;
	c->body_len = 0;
	rv = store_schedule_delete(t, in->name, &err);
	sched_finish(c, t, rv, &err, &e, 0);
}

/* NAMED_SCHEDULE defines a handler whose only check is the name. */
#define NAMED_SCHEDULE(fn, Req, Closure, apply)                                                    \
	void svc_##fn(Mq__Broker_Service *base, const Req *in, Closure closure, void *data)        \
	{                                                                                          \
		(void)base;                                                                        \
		(void)closure;                                                                     \
		if (svc_ps_check_name(data, "schedule", in->name))                                 \
			svc_ps_submit(data, apply);                                                \
	}

NAMED_SCHEDULE(get_schedule, Mq__GetScheduleRequest, Mq__GetScheduleReply_Closure,
               apply_get_schedule)
NAMED_SCHEDULE(pause_schedule, Mq__PauseScheduleRequest, Mq__PauseScheduleReply_Closure,
               apply_pause_schedule)
NAMED_SCHEDULE(resume_schedule, Mq__ResumeScheduleRequest, Mq__ResumeScheduleReply_Closure,
               apply_resume_schedule)
NAMED_SCHEDULE(delete_schedule, Mq__DeleteScheduleRequest, Mq__DeleteScheduleReply_Closure,
               apply_delete_schedule)

/* ---- ListSchedules ---------------------------------------------------------- */

static void apply_list_schedules(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__ListSchedulesRequest *in = (const Mq__ListSchedulesRequest *)c->input;
	uint32_t limit = in->limit && in->limit < SCHED_LIST_MAX ? in->limit : SCHED_LIST_MAX;
	sched_emit e = {.c = c};
	store_err err;
	bool more = false;
	int rv;

	(void)w;
	c->body_len = 0;
	rv = store_schedule_list(t, in->after, limit, sched_emit_cb, &e, &more, &err);
	sched_finish(c, t, rv, &err, &e, more);
}

void svc_list_schedules(Mq__Broker_Service *base, const Mq__ListSchedulesRequest *in,
                        Mq__ListSchedulesReply_Closure closure, void *data)
{
	(void)base;
	(void)in;
	(void)closure;
	svc_ps_submit(data, apply_list_schedules);
}
