/* SPDX-License-Identifier: MIT */
/*
 * svc_topic.c: the topic methods of mq.Broker (CreateTopic, DeleteTopic,
 * GetTopic, ListTopics, CreateSubscription, DeleteSubscription, Publish).
 * TopicInfo replies are packed straight into the body (field 1), as in
 * svc_schedule.c, whose helpers this file uses.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "pubsub.h"
#include "svc_pubsub.h"

#define TOPIC_LIST_MAX 1000u

static void sub_to_pb(const store_sub_info *s, Mq__SubscriptionInfo *o, Mq__QueueConfig *qc)
{
	mq__subscription_info__init(o);
	mq__queue_config__init(qc);
	qc->lease_ms = s->config.lease_ms;
	qc->max_attempts = s->config.max_attempts;
	qc->retry_base_ms = s->config.retry_base_ms;
	qc->retry_max_ms = s->config.retry_max_ms;
	qc->max_length = s->config.max_length;
	qc->max_age_ms = s->config.max_age_ms;
	qc->rate_limit = s->config.rate_limit;
	qc->dedup_scope = (Mq__DedupScope)s->config.dedup_scope;
	qc->dedup_window_ms = s->config.dedup_window_ms;
	qc->dead_letter_queue = (char *)s->config.dead_letter_queue;
	o->name = (char *)s->name;
	o->config = qc;
	o->ready = s->stats.ready;
	o->delayed = s->stats.delayed;
	o->in_flight = s->stats.in_flight;
	o->dead = s->stats.dead;
	o->created_ms = s->created_ms;
}

typedef struct topic_emit {
	brk_call *c;
	bool failed;
} topic_emit;

static int topic_emit_cb(void *arg, const store_topic_info *i)
{
	topic_emit *e = arg;
	Mq__TopicInfo o = MQ__TOPIC_INFO__INIT;
	size_t n = i->n_subs ? i->n_subs : 1;
	Mq__SubscriptionInfo *subs = calloc(n, sizeof(*subs));
	Mq__SubscriptionInfo **sp = calloc(n, sizeof(*sp));
	Mq__QueueConfig *qc = calloc(n, sizeof(*qc));

	if (subs && sp && qc) {
		for (size_t k = 0; k < i->n_subs; k++) {
			sub_to_pb(&i->subs[k], &subs[k], &qc[k]);
			sp[k] = &subs[k];
		}
		o.name = (char *)i->name;
		o.created_ms = i->created_ms;
		o.published_total = i->published_total;
		o.copies_total = i->copies_total;
		o.n_subscriptions = i->n_subs;
		o.subscriptions = sp;
		if (!svc_ps_append_msg(e->c, 1, &o.base))
			e->failed = true;
	} else {
		e->failed = true;
	}
	free(subs);
	free(sp);
	free(qc);
	return e->failed;
}

static void topic_finish(brk_call *c, store_txn *t, int rv, const store_err *err,
                         const topic_emit *e, uint64_t field2)
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

/* ---- CreateTopic, GetTopic, ListTopics, DeleteTopic ---------------------------- */

static void apply_create_topic(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__CreateTopicRequest *in = (const Mq__CreateTopicRequest *)c->input;
	topic_emit e = {.c = c};
	store_err err;
	bool created = false;
	int rv;

	(void)w;
	c->body_len = 0;
	rv = store_topic_create(t, in->name, in->if_not_exists, &created, &err);
	if (rv == MQ_OK)
		rv = store_topic_get(t, in->name, topic_emit_cb, &e, &err);
	topic_finish(c, t, rv, &err, &e, created);
}

static void apply_get_topic(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__GetTopicRequest *in = (const Mq__GetTopicRequest *)c->input;
	topic_emit e = {.c = c};
	store_err err;
	int rv;

	(void)w;
	c->body_len = 0;
	rv = store_topic_get(t, in->name, topic_emit_cb, &e, &err);
	topic_finish(c, t, rv, &err, &e, 0);
}

static void apply_delete_topic(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__DeleteTopicRequest *in = (const Mq__DeleteTopicRequest *)c->input;
	topic_emit e = {.c = c};
	store_err err;
	uint32_t detached = 0;
	int rv;

	(void)w;
	c->body_len = 0;
	rv = store_topic_delete(t, in->name, &detached, &err);
	if (rv == MQ_OK && detached && !svc_ps_append_varint(c, 1, detached))
		e.failed = true;
	topic_finish(c, t, rv, &err, &e, 0);
}

#define NAMED_TOPIC(fn, Req, Closure, apply)                                                       \
	void svc_##fn(Mq__Broker_Service *base, const Req *in, Closure closure, void *data)        \
	{                                                                                          \
		(void)base;                                                                        \
		(void)closure;                                                                     \
		if (svc_ps_check_name(data, "topic", in->name))                                    \
			svc_ps_submit(data, apply);                                                \
	}

NAMED_TOPIC(create_topic, Mq__CreateTopicRequest, Mq__CreateTopicReply_Closure, apply_create_topic)
NAMED_TOPIC(get_topic, Mq__GetTopicRequest, Mq__GetTopicReply_Closure, apply_get_topic)
NAMED_TOPIC(delete_topic, Mq__DeleteTopicRequest, Mq__DeleteTopicReply_Closure, apply_delete_topic)

static void apply_list_topics(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__ListTopicsRequest *in = (const Mq__ListTopicsRequest *)c->input;
	uint32_t limit = in->limit && in->limit < TOPIC_LIST_MAX ? in->limit : TOPIC_LIST_MAX;
	topic_emit e = {.c = c};
	store_err err;
	bool more = false;
	int rv;

	(void)w;
	c->body_len = 0;
	rv = store_topic_list(t, in->after, limit, topic_emit_cb, &e, &more, &err);
	topic_finish(c, t, rv, &err, &e, more);
}

void svc_list_topics(Mq__Broker_Service *base, const Mq__ListTopicsRequest *in,
                     Mq__ListTopicsReply_Closure closure, void *data)
{
	(void)base;
	(void)in;
	(void)closure;
	svc_ps_submit(data, apply_list_topics);
}

/* ---- Subscriptions ---------------------------------------------------------- */

static void apply_create_subscription(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__CreateSubscriptionRequest *in = (const Mq__CreateSubscriptionRequest *)c->input;
	Mq__CreateSubscriptionReply reply = MQ__CREATE_SUBSCRIPTION_REPLY__INIT;
	Mq__SubscriptionInfo si;
	Mq__QueueConfig qc;
	store_queue_config cfg = {0};
	store_sub_info info;
	store_err err;
	bool created = false;
	int rv;

	(void)w;
	if (in->config != NULL) {
		cfg.lease_ms = in->config->lease_ms;
		cfg.max_attempts = in->config->max_attempts;
		cfg.retry_base_ms = in->config->retry_base_ms;
		cfg.retry_max_ms = in->config->retry_max_ms;
		cfg.max_length = in->config->max_length;
		cfg.max_age_ms = in->config->max_age_ms;
		cfg.rate_limit = in->config->rate_limit;
		cfg.dedup_scope = (uint32_t)in->config->dedup_scope;
		cfg.dedup_window_ms = in->config->dedup_window_ms;
		snprintf(cfg.dead_letter_queue, sizeof(cfg.dead_letter_queue), "%s",
		         in->config->dead_letter_queue);
	}
	rv = store_sub_create(t, in->topic, in->name, &cfg, in->if_not_exists, &info, &created,
	                      &err);
	if (rv != MQ_OK) {
		svc_ps_store_error(c, t, rv, &err);
		return;
	}
	sub_to_pb(&info, &si, &qc);
	reply.subscription = &si;
	reply.created = created;
	brk_call_set_reply(c, &reply.base);
}

void svc_create_subscription(Mq__Broker_Service *base, const Mq__CreateSubscriptionRequest *in,
                             Mq__CreateSubscriptionReply_Closure closure, void *data)
{
	brk_call *c = data;

	(void)base;
	(void)closure;
	if (!svc_ps_check_name(c, "topic", in->topic) ||
	    !svc_ps_check_name(c, "subscription", in->name))
		return;
	if (in->config != NULL && in->config->dead_letter_queue[0] != '\0' &&
	    !svc_ps_check_name(c, "dead-letter queue", in->config->dead_letter_queue))
		return;
	svc_ps_submit(c, apply_create_subscription);
}

static void apply_delete_subscription(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__DeleteSubscriptionRequest *in = (const Mq__DeleteSubscriptionRequest *)c->input;
	Mq__DeleteSubscriptionReply reply = MQ__DELETE_SUBSCRIPTION_REPLY__INIT;
	store_err err;
	int rv;

	(void)w;
	rv = store_sub_delete(t, in->topic, in->name, &err);
	if (rv != MQ_OK)
		svc_ps_store_error(c, t, rv, &err);
	else
		brk_call_set_reply(c, &reply.base);
}

void svc_delete_subscription(Mq__Broker_Service *base, const Mq__DeleteSubscriptionRequest *in,
                             Mq__DeleteSubscriptionReply_Closure closure, void *data)
{
	(void)base;
	(void)closure;
	if (svc_ps_check_name(data, "topic", in->topic) &&
	    svc_ps_check_name(data, "subscription", in->name))
		svc_ps_submit(data, apply_delete_subscription);
}

/* ---- Publish -------------------------------------------------------------------- */

/* pub_acc collects the copies of one message. */
typedef struct pub_acc {
	Mq__PublishCopy *copies;
	size_t n, cap;
	bool failed;
} pub_acc;

static void pub_copy_cb(void *arg, const char *queue, const store_push_result *r)
{
	pub_acc *a = arg;

	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 8;
		Mq__PublishCopy *p = realloc(a->copies, cap * sizeof(*p));

		if (p == NULL) {
			a->failed = true;
			return;
		}
		a->copies = p;
		a->cap = cap;
	}
	mq__publish_copy__init(&a->copies[a->n]);
	a->copies[a->n].queue = strdup(queue);
	a->copies[a->n].id = r->id;
	a->copies[a->n].duplicate = r->duplicate;
	if (a->copies[a->n].queue == NULL)
		a->failed = true;
	a->n++;
}

static void apply_publish(brk_writer *w, store_txn *t, brk_call *c)
{
	const Mq__PublishRequest *in = (const Mq__PublishRequest *)c->input;
	const brk_config *cfg = brk_writer_config(w);
	size_t nm = in->n_messages ? in->n_messages : 1;
	Mq__PublishReply reply = MQ__PUBLISH_REPLY__INIT;
	Mq__PublishResult *res = calloc(nm, sizeof(*res));
	Mq__PublishResult **resp = calloc(nm, sizeof(*resp));
	Mq__PublishCopy ***cpp = calloc(nm, sizeof(*cpp));
	pub_acc *accs = calloc(nm, sizeof(*accs));
	size_t n_ok = 0;
	bool oom = res == NULL || resp == NULL || cpp == NULL || accs == NULL;
	int first_rv = MQ_OK;

	for (size_t i = 0; !oom && i < in->n_messages; i++) {
		const Mq__PushMessage *pm = in->messages[i];
		store_header hdr_stack[16], *hdrs = hdr_stack;
		store_push_msg m = {0};
		store_err err;
		uint32_t copies = 0;
		int rv;

		mq__publish_result__init(&res[i]);
		res[i].message = NULL;
		resp[i] = &res[i];
		if (pm->payload.len > cfg->max_payload) {
			res[i].status = MQ_INVALID_ARGUMENT;
			snprintf(err.msg, sizeof(err.msg),
			         "payload of %zu bytes is larger than the limit of %" PRIu64
			         " bytes (mqd --max-payload)",
			         pm->payload.len, cfg->max_payload);
			res[i].message = strdup(err.msg);
			if (first_rv == MQ_OK)
				first_rv = MQ_INVALID_ARGUMENT;
			continue;
		}
		if (pm->n_headers > 16 && (hdrs = calloc(pm->n_headers, sizeof(*hdrs))) == NULL) {
			oom = true;
			break;
		}
		for (size_t h = 0; h < pm->n_headers; h++) {
			hdrs[h].key = pm->headers[h]->key;
			hdrs[h].value = pm->headers[h]->value;
		}
		m.payload = pm->payload.data;
		m.payload_len = pm->payload.len;
		m.dedup_key = pm->dedup_key;
		m.dedup_mode = pm->dedup_mode == MQ__DEDUP_MODE__DEDUP_REPLACE ? STORE_DEDUP_REPLACE
		                                                               : STORE_DEDUP_IGNORE;
		m.delay_ms = pm->delay_ms;
		m.priority = pm->priority;
		m.type = pm->type;
		m.headers = hdrs;
		m.n_headers = pm->n_headers;
		rv = store_publish(t, in->topic, &m, pub_copy_cb, &accs[i], &copies, &err);
		if (hdrs != hdr_stack)
			free(hdrs);
		if (store_txn_failed(t)) {
			c->status = rv;
			c->done = false;
			goto out;
		}
		if (accs[i].failed) {
			oom = true;
			break;
		}
		if (rv != MQ_OK) {
			res[i].status = (uint32_t)rv;
			res[i].message = strdup(err.msg);
			if (first_rv == MQ_OK)
				first_rv = rv;
			continue;
		}
		cpp[i] = calloc(accs[i].n ? accs[i].n : 1, sizeof(**cpp));
		if (cpp[i] == NULL) {
			oom = true;
			break;
		}
		for (size_t k = 0; k < accs[i].n; k++)
			cpp[i][k] = &accs[i].copies[k];
		res[i].n_copies = accs[i].n;
		res[i].copies = cpp[i];
		reply.copies += accs[i].n;
		n_ok++;
	}
	if (oom) {
		/* Some messages may be stored already (their copies all). */
		brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED,
		                   "out of memory building the reply (some messages may have been "
		                   "published)");
		goto out;
	}
	if (n_ok == 0 && in->n_messages > 0) {
		brk_call_set_error(c, first_rv, "%s",
		                   res[0].message ? res[0].message : "publish failed");
	} else {
		reply.n_results = in->n_messages;
		reply.results = resp;
		brk_call_set_reply(c, &reply.base);
	}
out:
	for (size_t i = 0; accs != NULL && i < in->n_messages; i++) {
		for (size_t k = 0; k < accs[i].n; k++)
			free(accs[i].copies[k].queue);
		free(accs[i].copies);
		if (cpp != NULL)
			free(cpp[i]);
		if (res != NULL)
			free(res[i].message);
	}
	free(res);
	free(resp);
	free(cpp);
	free(accs);
}

void svc_publish(Mq__Broker_Service *base, const Mq__PublishRequest *in,
                 Mq__PublishReply_Closure closure, void *data)
{
	brk_call *c = data;

	(void)base;
	(void)closure;
	if (!svc_ps_check_name(c, "topic", in->topic))
		return;
	if (in->n_messages > BRK_MAX_BATCH) {
		brk_call_set_error(c, MQ_INVALID_ARGUMENT,
		                   "a publish carries at most %u messages; this one has %zu",
		                   BRK_MAX_BATCH, in->n_messages);
		brk_call_finish(c);
		return;
	}
	svc_ps_submit(c, apply_publish);
}
