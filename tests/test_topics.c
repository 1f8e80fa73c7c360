/* SPDX-License-Identifier: MIT */
/* test_topics.c: topics against the real mqd through libmqclient and
 * mqctl: fan-out to every subscription (each a full queue with its own
 * lease and dead letters), later subscriptions see only later messages,
 * counts per subscription, a restart in the middle (subscriptions and
 * their messages survive), and what deleting a queue, a subscription or a
 * topic does. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest_fx.h"

typedef mqtest_fx fx;

static const mq_subscription_info *sub_of(const mq_topic_info *t, const char *name)
{
	for (size_t i = 0; i < t->n_subscriptions; i++)
		if (strcmp(t->subscriptions[i].name, name) == 0)
			return &t->subscriptions[i];
	fail_msg("topic %s has no subscription %s", t->name, name);
	return NULL;
}

static void test_topic_fanout_restart(void **state)
{
	fx *f = *state;
	mq_queue_config billing = {.lease_ms = 60000, .max_attempts = 1};
	mq_queue_config ship = {.lease_ms = 30000, .max_attempts = 5};
	mq_topic_info ti, *all;
	mq_publish_result pr[3];
	mq_message *m;
	size_t copies = 99, n;
	bool created = false;

	assert_mq_ok(mq_topic_create(f->c, "orders", false, &created));
	assert_true(created);
	assert_mq_status(mq_topic_create(f->c, "orders", false, NULL), MQ_ALREADY_EXISTS);
	assert_mq_ok(mq_topic_create(f->c, "orders", true, &created));
	assert_false(created);
	/* no subscription yet: OK, no copy */
	assert_mq_ok(mq_publish(f->c, "orders", "early", 5, NULL, &copies));
	assert_int_equal(copies, 0);
	assert_mq_ok(mq_topic_sub_create(f->c, "orders", "orders.billing", &billing, false, NULL));
	assert_mq_ok(mq_topic_sub_create(f->c, "orders", "orders.ship", &ship, false, NULL));
	{
		mq_header h[1] = {{"region", "eu"}};
		mq_push_opts po = {.type = "order.created", .headers = h, .n_headers = 1};

		assert_mq_ok(mq_publish(f->c, "orders", "o1", 2, &po, &copies));
		assert_int_equal(copies, 2);
	}
	/* a later subscription gets only later messages */
	assert_mq_ok(mq_topic_sub_create(f->c, "orders", "orders.audit", NULL, false, NULL));
	{
		const void *p[3] = {"o2", "o3", "o4"};
		size_t l[3] = {2, 2, 2};

		assert_mq_ok(mq_publish_batch(f->c, "orders", 3, p, l, NULL, pr));
		for (int i = 0; i < 3; i++) {
			assert_mq_ok(pr[i].status);
			assert_int_equal(pr[i].copies, 3);
		}
	}
	/* each subscription is a full queue: its own lease and dead letters */
	m = mqtest_pull1(f, "orders.billing", 0);
	assert_string_equal(mq_message_payload(m, NULL), "o1");
	assert_string_equal(mq_message_type(m), "order.created");
	assert_int_equal(mq_message_header_count(m), 1);
	assert_true(mq_message_lease_expiry_ms(m) >= mq_message_enqueued_ms(m) + 50000);
	assert_mq_ok(mq_nack(f->c, m, 0, "card declined")); /* max_attempts 1: dead */
	mq_message_free(m);
	m = mqtest_pull1(f, "orders.ship", 0);
	assert_string_equal(mq_message_payload(m, NULL), "o1");
	mq_message_free(m); /* leased, in flight */
	m = mqtest_pull1(f, "orders.audit", 0);
	assert_string_equal(mq_message_payload(m, NULL), "o2");
	assert_mq_ok(mq_ack(f->c, m));
	mq_message_free(m);

	assert_mq_ok(mq_topic_get(f->c, "orders", &ti));
	assert_int_equal(ti.n_subscriptions, 3);
	assert_string_equal(ti.subscriptions[0].name, "orders.audit");
	assert_int_equal(ti.published_total, 5);
	assert_int_equal(ti.copies_total, 11);
	assert_int_equal(sub_of(&ti, "orders.billing")->dead, 1);
	assert_int_equal(sub_of(&ti, "orders.billing")->ready, 3);
	assert_int_equal(sub_of(&ti, "orders.ship")->in_flight, 1);
	assert_int_equal(sub_of(&ti, "orders.ship")->ready, 3);
	assert_int_equal(sub_of(&ti, "orders.ship")->config.lease_ms, 30000);
	assert_int_equal(sub_of(&ti, "orders.audit")->ready, 2);
	mq_topic_info_clear(&ti);

	/* restart: subscriptions, messages and counts survive */
	mq_client_close(f->c);
	f->c = NULL;
	assert_int_equal(mqtest_broker_stop(&f->b), 0);
	mqtest_broker_restart(&f->b, NULL);
	mqtest_fx_connect(f);
	assert_mq_ok(mq_topic_list(f->c, &all, &n));
	assert_int_equal(n, 1);
	assert_string_equal(all[0].name, "orders");
	assert_int_equal(all[0].n_subscriptions, 3);
	assert_int_equal(sub_of(&all[0], "orders.billing")->dead, 1);
	assert_int_equal(sub_of(&all[0], "orders.ship")->in_flight, 1);
	assert_int_equal(sub_of(&all[0], "orders.audit")->ready, 2);
	mq_topic_list_free(all, n);
	assert_mq_ok(mq_publish(f->c, "orders", "o5", 2, NULL, &copies));
	assert_int_equal(copies, 3);
	m = mqtest_pull1(f, "orders.billing", 0);
	assert_string_equal(mq_message_payload(m, NULL), "o2");
	assert_mq_ok(mq_ack(f->c, m));
	mq_message_free(m);

	/* mqctl sees the same */
	if (f->mqctl != NULL) {
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' --json topic get orders", f->mqctl,
		                            f->b.url),
		                 0);
		assert_non_null(strstr(f->out, "\"orders.audit\""));
		assert_non_null(strstr(f->out, "\"published_total\": 6"));
		assert_int_equal(mqtest_run(f->out, sizeof(f->out), "'%s' --url '%s' topic list",
		                            f->mqctl, f->b.url),
		                 0);
		assert_non_null(strstr(f->out, "orders.ship"));
	}
}

static void test_topic_deletes(void **state)
{
	fx *f = *state;
	mq_topic_info ti;
	mq_queue_info qi;
	uint32_t detached = 0;
	size_t copies = 0;

	assert_mq_ok(mq_topic_create(f->c, "ev", false, NULL));
	assert_mq_ok(mq_topic_sub_create(f->c, "ev", "ev.a", NULL, false, NULL));
	assert_mq_ok(mq_topic_sub_create(f->c, "ev", "ev.b", NULL, false, NULL));
	assert_mq_ok(mq_topic_sub_create(f->c, "ev", "ev.c", NULL, false, NULL));
	assert_mq_ok(mq_publish(f->c, "ev", "1", 1, NULL, &copies));
	assert_int_equal(copies, 3);
	/* errors */
	assert_mq_status(mq_topic_sub_create(f->c, "ev", "ev.a", NULL, false, NULL),
	                 MQ_ALREADY_EXISTS);
	assert_mq_ok(mq_queue_create(f->c, "plain", NULL, false, NULL));
	assert_mq_status(mq_topic_sub_create(f->c, "ev", "plain", NULL, true, NULL),
	                 MQ_ALREADY_EXISTS);
	assert_mq_status(mq_topic_sub_create(f->c, "nope", "x", NULL, false, NULL), MQ_NOT_FOUND);
	assert_mq_status(mq_publish(f->c, "nope", "1", 1, NULL, NULL), MQ_NOT_FOUND);
	assert_mq_status(mq_topic_sub_delete(f->c, "ev", "plain"), MQ_NOT_FOUND);
	assert_mq_status(mq_topic_get(f->c, "bad name", &ti), MQ_INVALID_ARGUMENT);
	/* deleting the queue directly removes the subscription */
	assert_mq_ok(mq_queue_delete(f->c, "ev.a"));
	assert_mq_ok(mq_publish(f->c, "ev", "2", 1, NULL, &copies));
	assert_int_equal(copies, 2);
	/* deleting a subscription deletes its queue */
	assert_mq_ok(mq_topic_sub_delete(f->c, "ev", "ev.b"));
	assert_mq_status(mq_queue_get(f->c, "ev.b", &qi), MQ_NOT_FOUND);
	assert_mq_ok(mq_topic_get(f->c, "ev", &ti));
	assert_int_equal(ti.n_subscriptions, 1);
	assert_string_equal(ti.subscriptions[0].name, "ev.c");
	mq_topic_info_clear(&ti);
	/* deleting the topic detaches: the queue stays with its messages */
	assert_mq_ok(mq_topic_delete(f->c, "ev", &detached));
	assert_int_equal(detached, 1);
	assert_mq_status(mq_topic_get(f->c, "ev", &ti), MQ_NOT_FOUND);
	assert_mq_ok(mq_queue_get(f->c, "ev.c", &qi));
	assert_int_equal(qi.stats.ready, 2);
	/* mqctl: the topic and sub commands */
	if (f->mqctl != NULL) {
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' topic create t2", f->mqctl, f->b.url),
		                 0);
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' sub create t2 t2.x --lease-ms 5000",
		                            f->mqctl, f->b.url),
		                 0);
		assert_int_equal(
		    mqtest_run(f->out, sizeof(f->out),
		               "'%s' --url '%s' --json topic publish t2 hello --type greet",
		               f->mqctl, f->b.url),
		    0);
		assert_non_null(strstr(f->out, "\"copies\": 1"));
		assert_mq_ok(mq_queue_get(f->c, "t2.x", &qi));
		assert_int_equal(qi.stats.ready, 1);
		assert_int_equal(qi.config.lease_ms, 5000);
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' sub delete t2 t2.x", f->mqctl,
		                            f->b.url),
		                 0);
		assert_mq_status(mq_queue_get(f->c, "t2.x", &qi), MQ_NOT_FOUND);
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' topic delete t2", f->mqctl, f->b.url),
		                 0);
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' topic get t2 2>&1", f->mqctl,
		                            f->b.url),
		                 1);
		assert_non_null(strstr(f->out, "NOT_FOUND"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_topic_fanout_restart, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_topic_deletes, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
