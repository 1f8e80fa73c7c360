/* SPDX-License-Identifier: MIT */
/* test_queues.c: queue control against the real mqd (issue 3): the full
 * queue config (every field round-trips and survives a restart), update
 * by field, pause and resume (a parked consumer is woken by the resume),
 * max length; through libmqclient and mqctl. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest_fx.h"

typedef mqtest_fx fx;

/* test_queues_config: every config field round-trips through create, get,
 * list and a restart; bad values are refused with a reason. */
static void test_queues_config(void **state)
{
	fx *f = *state;
	mq_queue_config cfg = {.lease_ms = 1500,
	                       .max_attempts = 4,
	                       .retry_base_ms = 100,
	                       .retry_max_ms = 800,
	                       .max_length = 1000,
	                       .max_age_ms = 3600000,
	                       .rate_limit = 50,
	                       .dedup_scope = MQ_DEDUP_SCOPE_WINDOW,
	                       .dedup_window_ms = 60000,
	                       .dead_letter_queue = "qc.dead"};
	mq_queue_info qi, *all;
	size_t n;

	assert_mq_ok(mq_queue_create(f->c, "qc.main", &cfg, false, NULL));
	mqtest_fx_restart(f);
	assert_mq_ok(mq_queue_get(f->c, "qc.main", &qi));
	assert_int_equal(qi.config.lease_ms, 1500);
	assert_int_equal(qi.config.max_attempts, 4);
	assert_int_equal(qi.config.retry_base_ms, 100);
	assert_int_equal(qi.config.retry_max_ms, 800);
	assert_int_equal(qi.config.max_length, 1000);
	assert_int_equal(qi.config.max_age_ms, 3600000);
	assert_int_equal(qi.config.rate_limit, 50);
	assert_int_equal(qi.config.dedup_scope, MQ_DEDUP_SCOPE_WINDOW);
	assert_int_equal(qi.config.dedup_window_ms, 60000);
	assert_string_equal(qi.config.dead_letter_queue, "qc.dead");
	assert_false(qi.paused);
	/* the dead-letter queue was created on demand (the broker auto-creates
	 * queues): "qc.dead" sorts before "qc.main" */
	assert_mq_ok(mq_queue_list(f->c, &all, &n));
	assert_int_equal(n, 2);
	assert_string_equal(all[0].name, "qc.dead");
	assert_string_equal(all[1].config.dead_letter_queue, "qc.dead");
	mq_queue_list_free(all);

	/* refused, with the reason */
	strcpy(cfg.dead_letter_queue, "qc.self");
	assert_mq_status(mq_queue_create(f->c, "qc.self", &cfg, false, NULL), MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(mq_errmsg(), "own dead-letter queue"));
	strcpy(cfg.dead_letter_queue, "bad name");
	assert_mq_status(mq_queue_create(f->c, "qc.x", &cfg, false, NULL), MQ_INVALID_ARGUMENT);
	cfg.dead_letter_queue[0] = 0;
	cfg.dedup_scope = 7;
	assert_mq_status(mq_queue_create(f->c, "qc.x", &cfg, false, NULL), MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(mq_errmsg(), "dedup scope"));
	cfg.dedup_scope = 0;
	cfg.max_age_ms = 400ull * 24 * 3600 * 1000;
	assert_mq_status(mq_queue_create(f->c, "qc.x", &cfg, false, NULL), MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_queue_get(f->c, "qc.x", &qi), MQ_NOT_FOUND);
}

/* test_queues_update: only the named fields change; the whole result is
 * checked; max_length refuses pushes beyond it and loosening it lets them
 * in again. */
static void test_queues_update(void **state)
{
	fx *f = *state;
	mq_queue_config cfg = {.lease_ms = 2000, .retry_base_ms = 100, .retry_max_ms = 200};
	mq_queue_info qi;
	uint64_t id;

	assert_mq_ok(mq_queue_create(f->c, "qu", &cfg, false, NULL));
	memset(&cfg, 0, sizeof(cfg));
	cfg.max_length = 2;
	cfg.lease_ms = 9999; /* not named: kept */
	assert_mq_ok(mq_queue_update(f->c, "qu", &cfg, MQ_QCFG_MAX_LENGTH, &qi));
	assert_int_equal(qi.config.max_length, 2);
	assert_int_equal(qi.config.lease_ms, 2000);
	assert_mq_ok(mq_push(f->c, "qu", "a", 1, NULL, &id, NULL));
	assert_mq_ok(mq_push(f->c, "qu", "b", 1, NULL, &id, NULL));
	assert_mq_status(mq_push(f->c, "qu", "c", 1, NULL, &id, NULL), MQ_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(mq_errmsg(), "max_length is 2"));
	/* a leased message still counts; an acked one no longer does */
	{
		mq_pull_opts po = {.wait_ms = 1000};
		mq_message *m;
		size_t n;

		assert_mq_ok(mq_pull(f->c, "qu", &po, &m, 1, &n));
		assert_int_equal(n, 1);
		assert_mq_status(mq_push(f->c, "qu", "c", 1, NULL, &id, NULL),
		                 MQ_RESOURCE_EXHAUSTED);
		assert_mq_ok(mq_ack(f->c, m));
		mq_message_free(m);
		assert_mq_ok(mq_push(f->c, "qu", "c", 1, NULL, &id, NULL));
	}
	mqtest_fx_restart(f);
	assert_mq_status(mq_push(f->c, "qu", "d", 1, NULL, &id, NULL), MQ_RESOURCE_EXHAUSTED);
	cfg.max_length = 0;
	assert_mq_ok(mq_queue_update(f->c, "qu", &cfg, MQ_QCFG_MAX_LENGTH, &qi));
	assert_mq_ok(mq_push(f->c, "qu", "d", 1, NULL, &id, NULL));
	/* checked whole: a base above the stored cap is refused, nothing changes */
	cfg.retry_base_ms = 500;
	assert_mq_status(mq_queue_update(f->c, "qu", &cfg, MQ_QCFG_RETRY_BASE_MS, &qi),
	                 MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(mq_errmsg(), "below retry_base_ms"));
	assert_mq_ok(mq_queue_get(f->c, "qu", &qi));
	assert_int_equal(qi.config.retry_base_ms, 100);
	assert_mq_status(mq_queue_update(f->c, "qu", &cfg, 0, &qi), MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_queue_update(f->c, "nope", &cfg, MQ_QCFG_LEASE_MS, &qi), MQ_NOT_FOUND);
}

typedef struct waiter {
	mq_client *c;
	mq_status st;
	size_t n;
	char payload[16];
} waiter;

static void *wait_pull(void *arg)
{
	waiter *w = arg;
	mq_pull_opts po = {.wait_ms = 8000};
	mq_message *m = NULL;

	w->st = mq_pull(w->c, "qp", &po, &m, 1, &w->n);
	if (w->st == MQ_OK && w->n == 1) {
		size_t len;
		const void *p = mq_message_payload(m, &len);

		snprintf(w->payload, sizeof(w->payload), "%.*s", (int)len, (const char *)p);
		w->st = mq_ack(w->c, m);
		mq_message_free(m);
	}
	return NULL;
}

/* test_queues_pause: a paused queue takes pushes and hands nothing out,
 * across a restart; resume wakes a consumer parked in a long poll. */
static void test_queues_pause(void **state)
{
	fx *f = *state;
	mq_pull_opts now = {.wait_ms = 0};
	mq_queue_info qi;
	mq_message *m = NULL;
	waiter w = {0};
	pthread_t th;
	uint64_t id;
	size_t n = 9;

	assert_mq_ok(mq_queue_create(f->c, "qp", NULL, false, NULL));
	assert_mq_ok(mq_queue_pause(f->c, "qp", &qi));
	assert_true(qi.paused);
	assert_mq_ok(mq_queue_pause(f->c, "qp", &qi)); /* idempotent */
	assert_mq_ok(mq_push(f->c, "qp", "one", 3, NULL, &id, NULL));
	assert_mq_ok(mq_pull(f->c, "qp", &now, &m, 1, &n));
	assert_int_equal(n, 0);
	mqtest_fx_restart(f);
	assert_mq_ok(mq_queue_get(f->c, "qp", &qi));
	assert_true(qi.paused);
	assert_int_equal(qi.stats.ready, 1);
	assert_mq_ok(mq_pull(f->c, "qp", &now, &m, 1, &n));
	assert_int_equal(n, 0);

	/* a consumer parks in a long poll; resume must hand it the message */
	{
		mq_client_opts o;

		mq_client_opts_init(&o);
		o.connect_timeout_ms = 5000;
		o.timeout_ms = 15000;
		assert_mq_ok(mq_client_open(&w.c, f->b.url, &o));
	}
	assert_int_equal(pthread_create(&th, NULL, wait_pull, &w), 0);
	usleep(300 * 1000); /* let it park; if not yet parked, it pulls at once */
	assert_mq_ok(mq_queue_resume(f->c, "qp", &qi));
	assert_false(qi.paused);
	pthread_join(th, NULL);
	mq_client_close(w.c);
	assert_mq_ok(w.st);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.payload, "one");
	assert_mq_status(mq_queue_pause(f->c, "nope", NULL), MQ_NOT_FOUND);
	assert_mq_status(mq_queue_resume(f->c, "bad name", NULL), MQ_INVALID_ARGUMENT);
}

/* test_queues_mqctl: queue create/update/pause/resume/stats from mqctl,
 * human and JSON output, usage errors. */
static void test_queues_mqctl(void **state)
{
	fx *f = *state;

	if (f->mqctl == NULL)
		fail_msg("MQCTL is not set");
	assert_int_equal(mqtest_ctl(f, "queue create qm --max-length 10 --max-age-ms 60000 "
	                               "--rate-limit 5 --dedup-scope window --dedup-window-ms 2000 "
	                               "--dead-letter-queue qm.dlq"),
	                 0);
	assert_int_equal(mqtest_ctl(f, "queue stats qm"), 0);
	assert_non_null(strstr(f->out, "state:         active"));
	assert_non_null(strstr(f->out, "max length:    10\n"));
	assert_non_null(strstr(f->out, "max age:       1m00s"));
	assert_non_null(strstr(f->out, "rate limit:    5/s"));
	assert_non_null(strstr(f->out, "dedup scope:   window (2.0s after the ack)"));
	assert_non_null(strstr(f->out, "dead letters:  qm.dlq"));
	assert_int_equal(mqtest_ctl(f, "queue update qm --rate-limit 0 --dead-letter-queue ''"), 0);
	assert_non_null(strstr(f->out, "rate limit:    none"));
	assert_non_null(strstr(f->out, "dead letters:  kept in this queue"));
	assert_non_null(strstr(f->out, "max length:    10\n"));
	assert_int_equal(mqtest_ctl(f, "queue pause qm"), 0);
	assert_string_equal(f->out, "paused queue qm\n");
	assert_int_equal(mqtest_ctl(f, "--json queue stats qm"), 0);
	assert_non_null(strstr(f->out, "\"paused\": true"));
	assert_non_null(strstr(f->out, "\"dedup_scope\": \"window\""));
	assert_non_null(strstr(f->out, "\"max_length\": 10"));
	assert_non_null(strstr(f->out, "\"redriven_total\": 0"));
	assert_int_equal(mqtest_ctl(f, "--json queue resume qm"), 0);
	assert_non_null(strstr(f->out, "\"paused\": false"));
	/* usage errors: exit 2; broker errors: exit 1 */
	assert_int_equal(mqtest_ctl(f, "queue update qm 2>/dev/null"), 2);
	assert_int_equal(mqtest_ctl(f, "queue update qm --dedup-scope forever 2>/dev/null"), 2);
	assert_int_equal(mqtest_ctl(f, "queue update qm --dead-letter-queue 'a b' 2>/dev/null"), 2);
	assert_int_equal(mqtest_ctl(f, "queue update nope --max-length 1 2>/dev/null"), 1);
	assert_int_equal(mqtest_ctl(f, "queue pause nope 2>&1"), 1);
	assert_non_null(strstr(f->out, "not found"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_queues_config, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_queues_update, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_queues_pause, mqtest_fx_setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_queues_mqctl, mqtest_fx_setup, mqtest_fx_teardown),
	};

	return cmocka_run_group_tests_name("queues", tests, NULL, NULL);
}
