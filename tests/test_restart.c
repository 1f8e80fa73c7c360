/* SPDX-License-Identifier: MIT */
/* test_restart.c: push, ack some, kill -9 mqd, start it again: every
 * acknowledged push is still there (delivered again), every acked message
 * is gone, ids keep increasing, and the stats add up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mq/mq.h"
#include "mqtest.h"

#define N_PUSH 300
#define N_PULL 100
#define N_ACK  60
#define QUEUE  "restart.jobs"

static void open_client(mq_client **c, const char *url)
{
	mq_client_opts o;

	mq_client_opts_init(&o);
	o.connect_timeout_ms = 5000;
	o.timeout_ms = 5000;
	assert_mq_ok(mq_client_open(c, url, &o));
}

static void test_restart_kill9_keeps_acknowledged(void **state)
{
	mqtest_broker b;
	mq_client *c;
	static uint64_t ids[N_PUSH];
	static char acked[N_PUSH], seen[N_PUSH];
	mq_message *msgs[N_PULL];
	mq_queue_info qi;
	size_t n, got = 0;
	uint64_t last_id = 0;

	(void)state;
	mqtest_broker_start(&b, NULL);
	open_client(&c, b.url);
	for (int i = 0; i < N_PUSH; i++) {
		char body[32];
		snprintf(body, sizeof(body), "job-%d", i);
		assert_mq_ok(mq_push(c, QUEUE, body, strlen(body), NULL, &ids[i], NULL));
		if (i > 0)
			assert_true(ids[i] > ids[i - 1]);
	}
	/* Long enough that the acks below land inside it on a loaded machine. */
	mq_pull_opts po = {.lease_ms = 3000};
	assert_mq_ok(mq_pull(c, QUEUE, &po, msgs, N_PULL, &n));
	assert_int_equal(n, N_PULL);
	for (size_t i = 0; i < n; i++) {
		if (i < N_ACK) {
			assert_mq_ok(mq_ack(c, msgs[i]));
			acked[mq_message_id(msgs[i]) - ids[0]] = 1;
		}
		mq_message_free(msgs[i]);
	}
	mq_client_close(c);

	mqtest_broker_kill(&b);
	mqtest_broker_restart(&b, NULL);
	open_client(&c, b.url);

	assert_mq_ok(mq_queue_get(c, QUEUE, &qi));
	assert_int_equal(qi.stats.pushed_total, N_PUSH);
	assert_int_equal(qi.stats.acked_total, N_ACK);
	assert_int_equal(qi.stats.ready + qi.stats.in_flight + qi.stats.delayed, N_PUSH - N_ACK);

	/* Everything not acked comes back: the leased ones once their 3 s
	 * lease, which survived the restart, has run out. */
	uint64_t t0 = mqtest_now_ms();
	mq_pull_opts po2 = {.wait_ms = 500, .lease_ms = 60000};
	while (got < N_PUSH - N_ACK && mqtest_now_ms() - t0 < 30000) {
		assert_mq_ok(mq_pull(c, QUEUE, &po2, msgs, N_PULL, &n));
		for (size_t i = 0; i < n; i++) {
			uint64_t id = mq_message_id(msgs[i]);
			assert_true(id >= ids[0] && id <= ids[N_PUSH - 1]);
			size_t k = id - ids[0];
			assert_false(acked[k]); /* an acked message never comes back */
			assert_false(seen[k]);  /* and nothing comes twice here */
			seen[k] = 1;
			char want[32];
			snprintf(want, sizeof(want), "job-%zu", k);
			size_t len;
			const char *p = mq_message_payload(msgs[i], &len);
			assert_int_equal(len, strlen(want));
			assert_memory_equal(p, want, len);
			assert_mq_ok(mq_ack(c, msgs[i]));
			mq_message_free(msgs[i]);
			got++;
		}
	}
	assert_int_equal(got, N_PUSH - N_ACK);

	/* Ids keep increasing after the restart. */
	assert_mq_ok(mq_push(c, QUEUE, "after", 5, NULL, &last_id, NULL));
	assert_true(last_id > ids[N_PUSH - 1]);

	assert_mq_ok(mq_queue_get(c, QUEUE, &qi));
	assert_int_equal(qi.stats.acked_total, N_PUSH);
	assert_int_equal(qi.stats.ready, 1);
	assert_int_equal(qi.stats.in_flight, 0);
	assert_true(qi.stats.expired_total >= N_PULL - N_ACK);
	mq_client_close(c);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_restart_kill9_keeps_acknowledged),
	};
	return cmocka_run_group_tests_name("restart", tests, NULL, NULL);
}
