/* SPDX-License-Identifier: MIT */
/*
 * svc_pubsub.h: the handlers of the schedule and topic methods of
 * mq.Broker (svc_schedule.c, svc_topic.c), for service.c's method table
 * (MQ__BROKER__INIT(svc_)). Each checks its request and hands an apply
 * step to the writer, as service.c's handlers do.
 */
#ifndef BRK_SVC_PUBSUB_H
#define BRK_SVC_PUBSUB_H

#include "broker.h"

#define SVC_DECL(name, Req, Closure)                                                               \
	void svc_##name(Mq__Broker_Service *base, const Req *in, Closure closure, void *data)

SVC_DECL(create_schedule, Mq__CreateScheduleRequest, Mq__CreateScheduleReply_Closure);
SVC_DECL(get_schedule, Mq__GetScheduleRequest, Mq__GetScheduleReply_Closure);
SVC_DECL(list_schedules, Mq__ListSchedulesRequest, Mq__ListSchedulesReply_Closure);
SVC_DECL(pause_schedule, Mq__PauseScheduleRequest, Mq__PauseScheduleReply_Closure);
SVC_DECL(resume_schedule, Mq__ResumeScheduleRequest, Mq__ResumeScheduleReply_Closure);
SVC_DECL(delete_schedule, Mq__DeleteScheduleRequest, Mq__DeleteScheduleReply_Closure);

SVC_DECL(create_topic, Mq__CreateTopicRequest, Mq__CreateTopicReply_Closure);
SVC_DECL(delete_topic, Mq__DeleteTopicRequest, Mq__DeleteTopicReply_Closure);
SVC_DECL(get_topic, Mq__GetTopicRequest, Mq__GetTopicReply_Closure);
SVC_DECL(list_topics, Mq__ListTopicsRequest, Mq__ListTopicsReply_Closure);
SVC_DECL(create_subscription, Mq__CreateSubscriptionRequest, Mq__CreateSubscriptionReply_Closure);
SVC_DECL(delete_subscription, Mq__DeleteSubscriptionRequest, Mq__DeleteSubscriptionReply_Closure);
SVC_DECL(publish, Mq__PublishRequest, Mq__PublishReply_Closure);

#undef SVC_DECL

/* svc_pubsub_init gives the handlers the server-wide facts (called by
 * brk_service_init). */
void svc_pubsub_init(brk_info *info);

/* Helpers the two files share (svc_schedule.c). */

/* svc_ps_submit hands c to the writer with apply, or answers UNAVAILABLE. */
void svc_ps_submit(brk_call *c, brk_apply_fn apply);
/* svc_ps_store_error records a failed store call (request error: the
 * answer; transaction failure: the writer replays the call). */
void svc_ps_store_error(brk_call *c, store_txn *t, int rv, const store_err *err);
/* svc_ps_check_name answers INVALID_ARGUMENT (via closure) for a bad
 * name; returns false then. */
bool svc_ps_check_name(brk_call *c, const char *what, const char *name);
/* svc_ps_append_msg appends a packed message as a length-delimited field
 * to c's body; svc_ps_append_varint a varint field. false when out of
 * memory. */
bool svc_ps_append_msg(brk_call *c, unsigned field, const ProtobufCMessage *m);
bool svc_ps_append_varint(brk_call *c, unsigned field, uint64_t v);
/* svc_ps_body_done makes c's body (built by the appends) its OK result. */
void svc_ps_body_done(brk_call *c);

#endif
