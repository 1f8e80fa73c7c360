/* SPDX-License-Identifier: MIT */
/*
 * test_store_pubsub.c: schedules and topics of storage/pubsub.h against
 * one engine named by argv[1] ("lmdb" or "memory"), with a controllable
 * clock: firing, catch-up after downtime (missed slots counted), no double
 * fire after a reopen (lmdb), pause/resume, cron firing, validation;
 * topics: fan-out in one transaction, later subscriptions, detaching.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub.h"

#include "storefx.h"

#define JAN1_2024 1704067200000ull

static int setup_2024(void **state)
{
	return storefx_setup_at(state, JAN1_2024);
}

/* sched_copy keeps what a callback saw. */
typedef struct sched_copy {
	char queue[MQ_NAME_MAX + 1], cron[STORE_CRON_MAX + 1], tz[STORE_TZ_MAX + 1];
	char type[64], dedup[64], payload[64], error[256];
	uint64_t interval_ms, next_ms, last_slot_ms, fired_total, missed_total, last_id;
	bool paused;
	size_t n_headers;
	int calls;
} sched_copy;

static int sched_cb(void *arg, const store_schedule_info *i)
{
	sched_copy *c = arg;

	snprintf(c->queue, sizeof(c->queue), "%s", i->queue);
	snprintf(c->cron, sizeof(c->cron), "%s", i->cron);
	snprintf(c->tz, sizeof(c->tz), "%s", i->time_zone);
	snprintf(c->type, sizeof(c->type), "%s", i->msg.type);
	snprintf(c->dedup, sizeof(c->dedup), "%s", i->msg.dedup_key);
	snprintf(c->payload, sizeof(c->payload), "%.*s", (int)i->msg.payload_len,
	         (const char *)i->msg.payload);
	snprintf(c->error, sizeof(c->error), "%s", i->last_error);
	c->interval_ms = i->interval_ms;
	c->next_ms = i->next_ms;
	c->last_slot_ms = i->last_slot_ms;
	c->fired_total = i->fired_total;
	c->missed_total = i->missed_total;
	c->last_id = i->last_id;
	c->paused = i->paused;
	c->n_headers = i->msg.n_headers;
	c->calls++;
	return 0;
}

static sched_copy get_sched(fx *f, const char *name)
{
	sched_copy c = {0};
	store_txn *t = begin(f);

	OK(store_schedule_get(t, name, sched_cb, &c, &E));
	store_abort(t);
	return c;
}

static uint32_t tick_f(fx *f)
{
	uint32_t n = 0;
	store_txn *t = begin(f);

	OK(store_schedule_tick(t, 0, NULL, NULL, &n, &E));
	commit(t);
	return n;
}

static uint64_t next_due_f(fx *f)
{
	uint64_t d;
	store_txn *t = begin(f);

	OK(store_schedule_next_due(t, &d, &E));
	store_abort(t);
	return d;
}

/* msg_copy is one message as browsed. */
typedef struct msg_copy {
	char payload[64], slot[32], sched[64], dedup[64];
	int n;
} msg_copy;

static int msg_cb(void *arg, const store_msg *m)
{
	msg_copy *c = arg;

	snprintf(c->payload, sizeof(c->payload), "%.*s", (int)m->payload_len,
	         (const char *)m->payload);
	snprintf(c->dedup, sizeof(c->dedup), "%s", m->dedup_key);
	for (size_t i = 0; i < m->n_headers; i++) {
		if (strcmp(m->headers[i].key, STORE_SCHED_SLOT_HDR) == 0)
			snprintf(c->slot, sizeof(c->slot), "%s", m->headers[i].value);
		if (strcmp(m->headers[i].key, STORE_SCHED_NAME_HDR) == 0)
			snprintf(c->sched, sizeof(c->sched), "%s", m->headers[i].value);
	}
	c->n++;
	return 0;
}

static store_queue_info qinfo(fx *f, const char *q)
{
	store_queue_info i;
	store_txn *t = begin(f);

	OK(store_queue_get(t, q, &i, &E));
	store_abort(t);
	return i;
}

static void create_interval(fx *f, const char *name, const char *queue, uint64_t every)
{
	store_schedule_spec sp = {
	    .queue = queue,
	    .interval_ms = every,
	    .msg = {.payload = "tick", .payload_len = 4, .type = "cron.tick"},
	};
	store_txn *t = begin(f);

	OK(store_schedule_create(t, name, &sp, true, false, NULL, NULL, NULL, &E));
	commit(t);
}

static void test_sched_interval_fires_once_per_slot(void **state)
{
	fx *f = *state;
	store_header h[1] = {{"k", "v"}};
	store_schedule_spec sp = {
	    .queue = "jobs",
	    .interval_ms = 200,
	    .msg = {.payload = "tick",
	            .payload_len = 4,
	            .type = "t",
	            .priority = 3,
	            .headers = h,
	            .n_headers = 1},
	};
	sched_copy c = {0};
	msg_copy m = {0};
	store_txn *t;
	bool created = false;

	t = begin(f);
	OK(store_schedule_create(t, "every", &sp, true, false, sched_cb, &c, &created, &E));
	commit(t);
	assert_true(created);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.next_ms, JAN1_2024 + 200);
	assert_int_equal(c.n_headers, 1);
	assert_int_equal(next_due_f(f), JAN1_2024 + 200);
	/* not yet */
	f->now = JAN1_2024 + 199;
	assert_int_equal(tick_f(f), 0);
	/* due: one firing, one message in a queue created for it */
	f->now = JAN1_2024 + 200;
	assert_int_equal(tick_f(f), 1);
	assert_int_equal(tick_f(f), 0); /* the slot is used up */
	assert_int_equal(qinfo(f, "jobs").stats.ready, 1);
	c = get_sched(f, "every");
	t = begin(f);
	OK(store_message_get(t, "jobs", c.last_id, msg_cb, &m, &E));
	store_abort(t);
	assert_string_equal(m.payload, "tick");
	assert_string_equal(m.sched, "every");
	assert_string_equal(m.slot, "1704067200200");
	c = get_sched(f, "every");
	assert_int_equal(c.fired_total, 1);
	assert_int_equal(c.missed_total, 0);
	assert_int_equal(c.last_slot_ms, JAN1_2024 + 200);
	assert_int_equal(c.next_ms, JAN1_2024 + 400);
	assert_int_equal(next_due_f(f), JAN1_2024 + 400);
	/* late by 50 ms: the slot still fires, slots stay on the grid */
	f->now = JAN1_2024 + 450;
	assert_int_equal(tick_f(f), 1);
	assert_int_equal(get_sched(f, "every").next_ms, JAN1_2024 + 600);
	assert_int_equal(qinfo(f, "jobs").stats.pushed_total, 2);
}

static void test_sched_catch_up_and_reopen(void **state)
{
	fx *f = *state;
	sched_copy c;

	create_interval(f, "s", "q", 200);
	f->now = JAN1_2024 + 200;
	assert_int_equal(tick_f(f), 1);
	/* "down" for 1 s: slots 400..1200 passed; one catch-up firing for the
	 * latest (1200), four missed */
	f->now = JAN1_2024 + 1250;
	if (is_durable()) {
		store_close(f->s);
		OK(store_open(&f->s, &f->cfg, &E));
	}
	assert_int_equal(tick_f(f), 1);
	c = get_sched(f, "s");
	assert_int_equal(c.fired_total, 2);
	assert_int_equal(c.missed_total, 4);
	assert_int_equal(c.last_slot_ms, JAN1_2024 + 1200);
	assert_int_equal(c.next_ms, JAN1_2024 + 1400);
	assert_int_equal(qinfo(f, "q").stats.pushed_total, 2);
	if (is_durable()) {
		/* what was committed stays fired: no double fire after a reopen */
		store_close(f->s);
		OK(store_open(&f->s, &f->cfg, &E));
		assert_int_equal(tick_f(f), 0);
		c = get_sched(f, "s");
		assert_int_equal(c.fired_total, 2);
		assert_int_equal(c.last_slot_ms, JAN1_2024 + 1200);
		assert_int_equal(qinfo(f, "q").stats.pushed_total, 2);
	}
	/* an aborted firing fires again (slot and push are one transaction) */
	f->now = JAN1_2024 + 1400;
	{
		store_txn *t = begin(f);
		uint32_t n = 0;

		OK(store_schedule_tick(t, 0, NULL, NULL, &n, &E));
		assert_int_equal(n, 1);
		store_abort(t);
	}
	assert_int_equal(qinfo(f, "q").stats.pushed_total, 2);
	assert_int_equal(tick_f(f), 1);
	assert_int_equal(qinfo(f, "q").stats.pushed_total, 3);
	assert_int_equal(get_sched(f, "s").last_slot_ms, JAN1_2024 + 1400);
}

static void test_sched_pause_resume_delete(void **state)
{
	fx *f = *state;
	sched_copy c = {0};
	store_txn *t;

	create_interval(f, "p", "q", 1000);
	t = begin(f);
	OK(store_schedule_pause(t, "p", sched_cb, &c, &E));
	OK(store_schedule_pause(t, "p", NULL, NULL, &E)); /* idempotent */
	commit(t);
	assert_true(c.paused);
	assert_int_equal(c.next_ms, 0);
	assert_true(next_due_f(f) == UINT64_MAX);
	f->now = JAN1_2024 + 5500;
	assert_int_equal(tick_f(f), 0);
	/* resume: the next slot after now, on the grid; paused slots are
	 * neither fired nor missed */
	t = begin(f);
	OK(store_schedule_resume(t, "p", sched_cb, &c, &E));
	commit(t);
	assert_false(c.paused);
	assert_int_equal(c.next_ms, JAN1_2024 + 6000);
	f->now = JAN1_2024 + 6000;
	assert_int_equal(tick_f(f), 1);
	c = get_sched(f, "p");
	assert_int_equal(c.missed_total, 0);
	assert_int_equal(c.fired_total, 1);
	t = begin(f);
	OK(store_schedule_delete(t, "p", &E));
	ST(store_schedule_delete(t, "p", &E), MQ_NOT_FOUND);
	ST(store_schedule_get(t, "p", NULL, NULL, &E), MQ_NOT_FOUND);
	ST(store_schedule_pause(t, "p", NULL, NULL, &E), MQ_NOT_FOUND);
	commit(t);
	assert_true(next_due_f(f) == UINT64_MAX);
	f->now = JAN1_2024 + 60000;
	assert_int_equal(tick_f(f), 0);
}

static void test_sched_cron(void **state)
{
	fx *f = *state;
	store_schedule_spec sp = {
	    .queue = "reports",
	    .cron = "0 9 * * MON-FRI",
	    .time_zone = "Europe/Paris",
	    .msg = {.payload = "r", .payload_len = 1, .dedup_key = "report-{slot}"},
	};
	sched_copy c = {0};
	msg_copy m = {0};
	store_txn *t;
	uint64_t mon9 = 1704096000000ull; /* Mon 2024-01-01 09:00 CET */

	t = begin(f);
	ST(store_queue_create(t, "reports", NULL, false, NULL, NULL, &E), MQ_OK);
	OK(store_schedule_create(t, "daily", &sp, false, false, sched_cb, &c, NULL, &E));
	commit(t);
	assert_string_equal(c.cron, "0 9 * * MON-FRI");
	assert_string_equal(c.tz, "Europe/Paris");
	assert_int_equal(c.next_ms, mon9);
	f->now = mon9;
	assert_int_equal(tick_f(f), 1);
	c = get_sched(f, "daily");
	assert_int_equal(c.next_ms, mon9 + 86400000ull); /* Tuesday */
	t = begin(f);
	OK(store_message_get(t, "reports", c.last_id, msg_cb, &m, &E));
	store_abort(t);
	assert_string_equal(m.dedup, "report-1704096000000");
	/* Down from Tuesday 08:00 to Monday 10:00: Tue..Fri missed... the
	 * latest slot (Mon 8th 09:00) fires, the 4 weekdays before it are
	 * counted as missed. */
	f->now = mon9 + 7 * 86400000ull + 3600000ull;
	assert_int_equal(tick_f(f), 1);
	c = get_sched(f, "daily");
	assert_int_equal(c.last_slot_ms, mon9 + 7 * 86400000ull);
	assert_int_equal(c.missed_total, 4);
	assert_int_equal(c.fired_total, 2);
	assert_int_equal(c.next_ms, mon9 + 8 * 86400000ull);
}

static void test_sched_errors(void **state)
{
	fx *f = *state;
	store_schedule_spec sp = {.queue = "q", .interval_ms = 1000};
	store_txn *t = begin(f);
	bool created = true;

	ST(store_schedule_create(t, "bad name", &sp, true, false, NULL, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT);
	sp.queue = "";
	ST(store_schedule_create(t, "s", &sp, true, false, NULL, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT);
	sp.queue = "q";
	sp.cron = "* * * * *";
	ST(store_schedule_create(t, "s", &sp, true, false, NULL, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT); /* both */
	sp.interval_ms = 0;
	sp.cron = NULL;
	ST(store_schedule_create(t, "s", &sp, true, false, NULL, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT); /* neither */
	sp.interval_ms = 5;
	ST(store_schedule_create(t, "s", &sp, true, false, NULL, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT); /* too short */
	sp.interval_ms = 1000;
	sp.time_zone = "Europe/Paris";
	ST(store_schedule_create(t, "s", &sp, true, false, NULL, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT); /* a zone for an interval */
	sp.interval_ms = 0;
	sp.cron = "61 * * * *";
	ST(store_schedule_create(t, "s", &sp, true, false, NULL, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(E.msg, "minute"));
	sp.cron = "0 0 30 2 *";
	ST(store_schedule_create(t, "s", &sp, true, false, NULL, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(E.msg, "never"));
	sp.cron = "0 9 * * *";
	sp.time_zone = "Europe/Atlantis";
	ST(store_schedule_create(t, "s", &sp, true, false, NULL, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(E.msg, "time zone"));
	sp.time_zone = "Asia/Tokyo";
	ST(store_schedule_create(t, "s", &sp, false, false, NULL, NULL, NULL, &E), MQ_NOT_FOUND);
	OK(store_schedule_create(t, "s", &sp, true, false, NULL, NULL, &created, &E));
	assert_true(created);
	ST(store_schedule_create(t, "s", &sp, true, false, NULL, NULL, NULL, &E),
	   MQ_ALREADY_EXISTS);
	OK(store_schedule_create(t, "s", &sp, true, true, NULL, NULL, &created, &E));
	assert_false(created);
	commit(t);
}

static int count_cb(void *arg, const store_schedule_info *i)
{
	(void)i;
	(*(int *)arg)++;
	return 0;
}

static void test_sched_list(void **state)
{
	fx *f = *state;
	store_txn *t;
	bool more = false;
	int n = 0;

	create_interval(f, "a", "q", 1000);
	create_interval(f, "b", "q", 1000);
	create_interval(f, "c", "q", 1000);
	t = begin(f);
	OK(store_schedule_list(t, NULL, 2, count_cb, &n, &more, &E));
	assert_int_equal(n, 2);
	assert_true(more);
	n = 0;
	OK(store_schedule_list(t, "b", 0, count_cb, &n, &more, &E));
	assert_int_equal(n, 1);
	assert_false(more);
	store_abort(t);
}

/* ---- topics ---------------------------------------------------------------- */

typedef struct topic_copy {
	char subs[8][MQ_NAME_MAX + 1];
	uint64_t ready[8], created_ms;
	uint32_t lease[8];
	size_t n_subs;
	uint64_t published, copies;
} topic_copy;

static int topic_cb(void *arg, const store_topic_info *i)
{
	topic_copy *c = arg;

	c->n_subs = i->n_subs;
	c->published = i->published_total;
	c->copies = i->copies_total;
	c->created_ms = i->created_ms;
	for (size_t k = 0; k < i->n_subs && k < 8; k++) {
		snprintf(c->subs[k], sizeof(c->subs[k]), "%s", i->subs[k].name);
		c->ready[k] = i->subs[k].stats.ready;
		c->lease[k] = i->subs[k].config.lease_ms;
	}
	return 0;
}

static topic_copy get_topic(fx *f, const char *name)
{
	topic_copy c = {0};
	store_txn *t = begin(f);

	OK(store_topic_get(t, name, topic_cb, &c, &E));
	store_abort(t);
	return c;
}

static uint32_t publish(fx *f, const char *topic, const char *body)
{
	store_push_msg m = {.payload = body, .payload_len = strlen(body)};
	uint32_t n = 99;
	store_txn *t = begin(f);

	OK(store_publish(t, topic, &m, NULL, NULL, &n, &E));
	commit(t);
	return n;
}

static void sub(fx *f, const char *topic, const char *name, uint32_t lease_ms)
{
	store_queue_config cfg = {.lease_ms = lease_ms};
	store_sub_info si;
	bool created = false;
	store_txn *t = begin(f);

	OK(store_sub_create(t, topic, name, &cfg, false, &si, &created, &E));
	commit(t);
	assert_true(created);
	assert_string_equal(si.name, name);
	assert_int_equal(si.config.lease_ms, lease_ms);
}

static void test_topic_fanout(void **state)
{
	fx *f = *state;
	topic_copy c;
	store_txn *t;
	bool created = false;
	uint32_t detached = 0;

	t = begin(f);
	OK(store_topic_create(t, "orders", false, &created, &E));
	assert_true(created);
	ST(store_topic_create(t, "orders", false, NULL, &E), MQ_ALREADY_EXISTS);
	OK(store_topic_create(t, "orders", true, &created, &E));
	assert_false(created);
	ST(store_topic_create(t, "no way", false, NULL, &E), MQ_INVALID_ARGUMENT);
	commit(t);
	/* no subscription: OK, no copy */
	assert_int_equal(publish(f, "orders", "m0"), 0);
	sub(f, "orders", "orders.billing", 1000);
	sub(f, "orders", "orders.shipping", 2000);
	assert_int_equal(publish(f, "orders", "m1"), 2);
	/* a later subscription sees only later messages */
	sub(f, "orders", "orders.audit", 0);
	assert_int_equal(publish(f, "orders", "m2"), 3);
	c = get_topic(f, "orders");
	assert_int_equal(c.n_subs, 3);
	assert_string_equal(c.subs[0], "orders.audit");
	assert_string_equal(c.subs[1], "orders.billing");
	assert_int_equal(c.ready[0], 1);
	assert_int_equal(c.ready[1], 2);
	assert_int_equal(c.ready[2], 2);
	assert_int_equal(c.lease[2], 2000);
	assert_int_equal(c.published, 3);
	assert_int_equal(c.copies, 5);
	if (is_durable()) {
		store_close(f->s);
		OK(store_open(&f->s, &f->cfg, &E));
		c = get_topic(f, "orders");
		assert_int_equal(c.n_subs, 3);
		assert_int_equal(c.ready[1], 2);
	}
	/* subscription errors */
	t = begin(f);
	ST(store_sub_create(t, "orders", "orders.billing", NULL, false, NULL, NULL, &E),
	   MQ_ALREADY_EXISTS);
	OK(store_sub_create(t, "orders", "orders.billing", NULL, true, NULL, &created, &E));
	assert_false(created);
	OK(store_queue_create(t, "plain", NULL, false, NULL, NULL, &E));
	ST(store_sub_create(t, "orders", "plain", NULL, true, NULL, NULL, &E), MQ_ALREADY_EXISTS);
	ST(store_sub_create(t, "nope", "x", NULL, false, NULL, NULL, &E), MQ_NOT_FOUND);
	ST(store_sub_delete(t, "orders", "plain", &E), MQ_NOT_FOUND);
	ST(store_publish(t, "nope", &(store_push_msg){0}, NULL, NULL, NULL, &E), MQ_NOT_FOUND);
	/* a bad message stores no copy */
	ST(store_publish(t, "orders",
	                 &(store_push_msg){.headers = (store_header[]){{"", "v"}}, .n_headers = 1},
	                 NULL, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT);
	commit(t);
	assert_int_equal(qinfo(f, "orders.audit").stats.pushed_total, 1);
	/* deleting the queue detaches the subscription */
	t = begin(f);
	OK(store_queue_delete(t, "orders.audit", &E));
	commit(t);
	c = get_topic(f, "orders");
	assert_int_equal(c.n_subs, 2);
	assert_int_equal(publish(f, "orders", "m3"), 2);
	/* deleting a subscription deletes its queue */
	t = begin(f);
	OK(store_sub_delete(t, "orders", "orders.shipping", &E));
	ST(store_queue_get(t, "orders.shipping", NULL, &E), MQ_NOT_FOUND);
	commit(t);
	assert_int_equal(get_topic(f, "orders").n_subs, 1);
	/* deleting the topic detaches the rest; their queues stay */
	t = begin(f);
	OK(store_topic_delete(t, "orders", &detached, &E));
	ST(store_topic_get(t, "orders", topic_cb, &c, &E), MQ_NOT_FOUND);
	commit(t);
	assert_int_equal(detached, 1);
	assert_int_equal(qinfo(f, "orders.billing").stats.ready, 3);
	/* the detached queue is a plain queue: it can join a new topic's
	 * name space only by being deleted and recreated */
	t = begin(f);
	OK(store_topic_create(t, "orders", false, NULL, &E));
	ST(store_sub_create(t, "orders", "orders.billing", NULL, true, NULL, NULL, &E),
	   MQ_ALREADY_EXISTS);
	OK(store_queue_delete(t, "orders.billing", &E)); /* no topic link left */
	commit(t);
}

/* A copy refused by a queue limit takes back the copies already made:
 * the message is stored in no subscription. */
static void test_topic_publish_all_or_nothing(void **state)
{
	fx *f = *state;
	store_queue_config small = {.max_length = 1};
	store_push_msg m = {.payload = "x", .payload_len = 1};
	store_txn *t;
	uint32_t n = 99;

	t = begin(f);
	OK(store_topic_create(t, "t", false, NULL, &E));
	OK(store_sub_create(t, "t", "t.a", NULL, false, NULL, NULL, &E));
	OK(store_sub_create(t, "t", "t.b", &small, false, NULL, NULL, &E));
	OK(store_sub_create(t, "t", "t.c", NULL, false, NULL, NULL, &E));
	OK(store_publish(t, "t", &m, NULL, NULL, &n, &E));
	assert_int_equal(n, 3);
	ST(store_publish(t, "t", &m, NULL, NULL, &n, &E), MQ_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(E.msg, "t.b"));
	assert_false(store_txn_failed(t));
	commit(t);
	assert_int_equal(qinfo(f, "t.a").stats.ready, 1);
	assert_int_equal(qinfo(f, "t.a").stats.pushed_total, 1);
	assert_int_equal(qinfo(f, "t.b").stats.ready, 1);
	assert_int_equal(qinfo(f, "t.c").stats.ready, 1);
	assert_int_equal(get_topic(f, "t").published, 1);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sched_interval_fires_once_per_slot, setup_2024,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_sched_catch_up_and_reopen, setup_2024, teardown),
	    cmocka_unit_test_setup_teardown(test_sched_pause_resume_delete, setup_2024, teardown),
	    cmocka_unit_test_setup_teardown(test_sched_cron, setup_2024, teardown),
	    cmocka_unit_test_setup_teardown(test_sched_errors, setup_2024, teardown),
	    cmocka_unit_test_setup_teardown(test_sched_list, setup_2024, teardown),
	    cmocka_unit_test_setup_teardown(test_topic_fanout, setup_2024, teardown),
	    cmocka_unit_test_setup_teardown(test_topic_publish_all_or_nothing, setup_2024,
	                                    teardown),
	};

	if (argc > 1)
		g_engine = argv[1];
	if (!storefx_engine_ok())
		return 2;
	return cmocka_run_group_tests_name(g_engine, tests, NULL, NULL);
}
