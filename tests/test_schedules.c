/* SPDX-License-Identifier: MIT */
/* test_schedules.c: recurring schedules against the real mqd through
 * libmqclient and mqctl: a 200 ms interval schedule fires, survives a
 * restart with downtime (one catch-up firing, missed slots counted and
 * logged, no slot fired twice), pause/resume/delete/list, validation of
 * cron expressions and time zones. Waits are bounded polls; the only
 * sleep makes downtime (a lower bound, never an assertion on speed). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest_fx.h"

typedef mqtest_fx fx;

/* wait_fired polls until schedule name has fired at least n times (10 s
 * at most) and returns its info. */
static mq_schedule_info wait_fired(fx *f, const char *name, uint64_t n)
{
	mq_schedule_info si;
	uint64_t t0 = mqtest_now_ms();

	for (;;) {
		assert_mq_ok(mq_schedule_get(f->c, name, &si));
		if (si.fired_total >= n)
			return si;
		if (mqtest_now_ms() - t0 > 10000)
			fail_msg("schedule %s fired %" PRIu64 " times in 10 s, want %" PRIu64, name,
			         si.fired_total, n);
		usleep(20000);
	}
}

/* drain pulls and acks every ready message of queue, recording the slot
 * header of each in slots[*n]. */
static void drain(fx *f, const char *queue, const char *sched, uint64_t *slots, size_t *n,
                  size_t max)
{
	mq_pull_opts po = {.wait_ms = 0};
	mq_message *msgs[64];
	size_t got;

	do {
		assert_mq_ok(mq_pull(f->c, queue, &po, msgs, 64, &got));
		for (size_t i = 0; i < got; i++) {
			const char *slot = NULL, *name = NULL;

			for (size_t h = 0; h < mq_message_header_count(msgs[i]); h++) {
				mq_header hd = mq_message_header(msgs[i], h);

				if (strcmp(hd.key, "mq-schedule-slot") == 0)
					slot = hd.value;
				if (strcmp(hd.key, "mq-schedule") == 0)
					name = hd.value;
			}
			assert_non_null(slot);
			assert_non_null(name);
			assert_string_equal(name, sched);
			assert_string_equal(mq_message_type(msgs[i]), "tick");
			assert_string_equal(mq_message_payload(msgs[i], NULL), "hello");
			assert_true(*n < max);
			slots[(*n)++] = strtoull(slot, NULL, 10);
			assert_mq_ok(mq_ack(f->c, msgs[i]));
			mq_message_free(msgs[i]);
		}
	} while (got > 0);
}

static void create_tick(fx *f, const char *name, const char *queue, uint64_t every, bool paused,
                        mq_schedule_info *si)
{
	mq_header hdr[1] = {{"k", "v"}};
	mq_push_opts po = {.type = "tick", .headers = hdr, .n_headers = 1, .priority = 2};
	mq_schedule_spec sp = {.interval_ms = every, .paused = paused};
	bool created = false;

	assert_mq_ok(
	    mq_schedule_create(f->c, name, queue, &sp, "hello", 5, &po, false, si, &created));
	assert_true(created);
}

static void test_schedule_fires_and_survives_restart(void **state)
{
	fx *f = *state;
	static uint64_t slots[4096];
	size_t n = 0;
	mq_schedule_info si, before;
	mq_queue_info qi;
	uint64_t period = 200;
	char cmd[1024];

	create_tick(f, "tick", "ticks", period, false, &si);
	assert_string_equal(si.queue, "ticks");
	assert_int_equal(si.interval_ms, period);
	assert_int_equal(si.next_fire_ms, si.created_ms + period);
	assert_int_equal(si.n_headers, 1);
	assert_int_equal(si.payload_len, 5);
	assert_int_equal(si.priority, 2);
	si = wait_fired(f, "tick", 3);
	drain(f, "ticks", "tick", slots, &n, 4096);
	assert_true(n >= 3);

	/* Stop, stay down for 1 s (at least 4 slots), start again. */
	assert_mq_ok(mq_schedule_get(f->c, "tick", &before));
	mq_client_close(f->c);
	f->c = NULL;
	assert_int_equal(mqtest_broker_stop(&f->b), 0);
	usleep(1000 * 1000);
	mqtest_broker_restart(&f->b, NULL);
	mqtest_fx_connect(f);
	si = wait_fired(f, "tick", before.fired_total + 3);
	/* The catch-up fired once for the latest missed slot; the rest count. */
	assert_true(si.missed_total >= 1);
	drain(f, "ticks", "tick", slots, &n, 4096);
	assert_mq_ok(mq_schedule_get(f->c, "tick", &si));
	assert_mq_ok(mq_queue_get(f->c, "ticks", &qi));
	/* Every firing pushed exactly one message; no slot fired twice; slots
	 * are on the schedule's grid and increase. */
	assert_int_equal(qi.stats.pushed_total, si.fired_total);
	assert_true(n <= si.fired_total);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal((slots[i] - si.created_ms) % period, 0);
		if (i > 0 && slots[i] <= slots[i - 1])
			fail_msg("slot %zu (%" PRIu64 ") not after slot %zu (%" PRIu64 ")", i,
			         slots[i], i - 1, slots[i - 1]);
	}
	/* A gap in the slots after the restart matches missed_total. */
	{
		uint64_t gaps = 0;

		for (size_t i = 1; i < n; i++)
			gaps += (slots[i] - slots[i - 1]) / period - 1;
		assert_true(gaps >= si.missed_total);
	}
	/* and the broker said so in its log */
	snprintf(cmd, sizeof(cmd), "grep -c 'schedule tick: .* slot(s) missed' '%s'", f->b.log);
	assert_int_equal(mqtest_run(f->out, sizeof(f->out), "%s", cmd), 0);

	/* mqctl shows the counter */
	if (f->mqctl != NULL) {
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' schedule get tick", f->mqctl,
		                            f->b.url),
		                 0);
		assert_non_null(strstr(f->out, "missed:"));
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' --json schedule list", f->mqctl,
		                            f->b.url),
		                 0);
		assert_non_null(strstr(f->out, "\"missed_total\""));
		assert_non_null(strstr(f->out, "\"tick\""));
	}
}

static void test_schedule_pause_resume_delete(void **state)
{
	fx *f = *state;
	mq_schedule_info si, *all;
	mq_queue_info qi;
	size_t n;

	create_tick(f, "paused", "pq", 100, true, &si);
	assert_true(si.paused);
	assert_int_equal(si.next_fire_ms, 0);
	create_tick(f, "other", "oq", 60000, false, &si);
	assert_mq_ok(mq_schedule_list(f->c, &all, &n));
	assert_int_equal(n, 2);
	assert_string_equal(all[0].name, "other");
	assert_string_equal(all[1].name, "paused");
	assert_true(all[1].paused);
	mq_schedule_list_free(all);
	/* resume: it fires */
	assert_mq_ok(mq_schedule_resume(f->c, "paused", &si));
	assert_false(si.paused);
	assert_true(si.next_fire_ms > 0);
	si = wait_fired(f, "paused", 2);
	/* pause: it stops; a later get shows the same count */
	assert_mq_ok(mq_schedule_pause(f->c, "paused", &si));
	assert_true(si.paused);
	assert_mq_ok(mq_schedule_pause(f->c, "paused", NULL)); /* idempotent */
	usleep(300 * 1000);
	{
		mq_schedule_info again;

		assert_mq_ok(mq_schedule_get(f->c, "paused", &again));
		assert_int_equal(again.fired_total, si.fired_total);
		assert_mq_ok(mq_queue_get(f->c, "pq", &qi));
		assert_int_equal(qi.stats.pushed_total, si.fired_total);
	}
	assert_mq_ok(mq_schedule_delete(f->c, "paused"));
	assert_mq_status(mq_schedule_get(f->c, "paused", &si), MQ_NOT_FOUND);
	assert_mq_status(mq_schedule_delete(f->c, "paused"), MQ_NOT_FOUND);
	assert_mq_status(mq_schedule_resume(f->c, "paused", NULL), MQ_NOT_FOUND);
	/* the messages it pushed stay */
	assert_mq_ok(mq_queue_get(f->c, "pq", &qi));
	assert_int_equal(qi.stats.ready, si.fired_total);
}

static void test_schedule_cron_and_errors(void **state)
{
	fx *f = *state;
	mq_schedule_spec sp = {.cron = "* * * * *", .time_zone = "Europe/Paris"};
	mq_schedule_info si;
	uint64_t now;
	bool created = true;

	assert_mq_ok(mq_ping(f->c, &now));
	assert_mq_ok(
	    mq_schedule_create(f->c, "minutely", "cq", &sp, "x", 1, NULL, false, &si, NULL));
	assert_string_equal(si.cron, "* * * * *");
	assert_string_equal(si.time_zone, "Europe/Paris");
	assert_true(si.next_fire_ms > now && si.next_fire_ms <= now + 61000);
	assert_int_equal(si.next_fire_ms % 60000, 0);
	/* if_not_exists keeps the existing one */
	sp.cron = "0 9 * * MON-FRI";
	assert_mq_ok(
	    mq_schedule_create(f->c, "minutely", "cq", &sp, "x", 1, NULL, true, &si, &created));
	assert_false(created);
	assert_string_equal(si.cron, "* * * * *");
	assert_mq_status(
	    mq_schedule_create(f->c, "minutely", "cq", &sp, "x", 1, NULL, false, NULL, NULL),
	    MQ_ALREADY_EXISTS);
	sp.time_zone = "Europe/Atlantis";
	assert_mq_status(mq_schedule_create(f->c, "s2", "cq", &sp, "x", 1, NULL, false, NULL, NULL),
	                 MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(mq_errmsg(), "time zone"));
	sp.time_zone = "UTC";
	sp.cron = "0 25 * * *";
	assert_mq_status(mq_schedule_create(f->c, "s2", "cq", &sp, "x", 1, NULL, false, NULL, NULL),
	                 MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(mq_errmsg(), "hour"));
	sp.cron = "0 0 * * *";
	sp.interval_ms = 1000;
	assert_mq_status(mq_schedule_create(f->c, "s2", "cq", &sp, "x", 1, NULL, false, NULL, NULL),
	                 MQ_INVALID_ARGUMENT);
	sp = (mq_schedule_spec){0};
	assert_mq_status(mq_schedule_create(f->c, "s2", "cq", &sp, "x", 1, NULL, false, NULL, NULL),
	                 MQ_INVALID_ARGUMENT);
	sp.interval_ms = 1000;
	assert_mq_status(
	    mq_schedule_create(f->c, "bad name", "cq", &sp, "x", 1, NULL, false, NULL, NULL),
	    MQ_INVALID_ARGUMENT);
	/* mqctl: a bad zone is an error (exit 1), a good cron schedule lists */
	if (f->mqctl != NULL) {
		assert_int_equal(
		    mqtest_run(f->out, sizeof(f->out),
		               "'%s' --url '%s' schedule create s3 cq --cron '0 9 * * 1-5' "
		               "--tz Nowhere/Nope x 2>&1",
		               f->mqctl, f->b.url),
		    1);
		assert_non_null(strstr(f->out, "INVALID_ARGUMENT"));
		assert_int_equal(
		    mqtest_run(f->out, sizeof(f->out),
		               "'%s' --url '%s' schedule create s3 cq --cron '0 9 * * 1-5' "
		               "--tz America/New_York --type report x",
		               f->mqctl, f->b.url),
		    0);
		assert_int_equal(mqtest_run(f->out, sizeof(f->out), "'%s' --url '%s' schedule list",
		                            f->mqctl, f->b.url),
		                 0);
		assert_non_null(strstr(f->out, "America/New_York"));
		assert_non_null(strstr(f->out, "minutely"));
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' --json schedule pause s3", f->mqctl,
		                            f->b.url),
		                 0);
		assert_non_null(strstr(f->out, "\"paused\": true"));
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' schedule resume s3", f->mqctl,
		                            f->b.url),
		                 0);
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' schedule delete s3", f->mqctl,
		                            f->b.url),
		                 0);
		assert_mq_status(mq_schedule_get(f->c, "s3", &si), MQ_NOT_FOUND);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_schedule_fires_and_survives_restart,
	                                    mqtest_fx_setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_schedule_pause_resume_delete, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_schedule_cron_and_errors, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
