/* SPDX-License-Identifier: MIT */
/* test_semantics.c: job semantics against the real mqd (issue 3): Term,
 * dead reasons and attempt histories, browsing (ListMessages, GetMessage,
 * DeleteMessage), through the client library and mqctl, with restarts of
 * mqd where the state matters. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest_fx.h"

typedef mqtest_fx fx;

/* test_semantics_term: Term sends a leased message dead at once with its
 * reason; stale tokens are refused; the reason and history survive a
 * restart; mqctl term and message get show the same. */
static void test_semantics_term(void **state)
{
	fx *f = *state;
	mq_push_opts po = {.dedup_key = "k1"};
	mq_message *m, *g;
	mq_queue_info qi;
	uint64_t id, id2;
	mq_attempt a;

	mqtest_make_queue(f, "sem.term", 0, 5);
	assert_mq_ok(mq_push(f->c, "sem.term", "bad", 3, &po, &id, NULL));
	m = mqtest_pull1(f, "sem.term", 0);
	assert_int_equal(mq_message_id(m), id);
	assert_int_equal(mq_message_state(m), MQ_STATE_LEASED);
	assert_mq_status(mq_term_id(f->c, "sem.term", id, mq_message_lease_token(m) + 1, "x"),
	                 MQ_FAILED_PRECONDITION);
	assert_mq_status(mq_term_id(f->c, "no-such", id, 1, "x"), MQ_NOT_FOUND);
	assert_mq_status(mq_term_id(f->c, "bad name!", id, 1, "x"), MQ_INVALID_ARGUMENT);
	assert_mq_ok(mq_term(f->c, m, "malformed payload"));
	assert_mq_status(mq_ack(f->c, m), MQ_FAILED_PRECONDITION);
	mq_message_free(m);
	assert_mq_ok(mq_queue_get(f->c, "sem.term", &qi));
	assert_int_equal(qi.stats.dead, 1);
	assert_int_equal(qi.stats.in_flight, 0);
	assert_int_equal(qi.stats.dead_total, 1);
	/* the dedup key was freed */
	assert_mq_ok(mq_push(f->c, "sem.term", "good", 4, &po, &id2, NULL));
	assert_true(id2 > id);

	mqtest_fx_restart(f);
	assert_mq_ok(mq_message_get(f->c, "sem.term", id, &g));
	assert_int_equal(mq_message_state(g), MQ_STATE_DEAD);
	assert_string_equal(mq_message_dead_reason(g), "termed: malformed payload");
	assert_string_equal(mq_message_last_error(g), "malformed payload");
	assert_int_equal(mq_message_attempts(g), 1);
	assert_int_equal(mq_message_history_count(g), 1);
	a = mq_message_history(g, 0);
	assert_int_equal(a.outcome, MQ_ATTEMPT_TERMED);
	assert_string_equal(a.error, "malformed payload");
	assert_true(a.time_ms > 0);
	a = mq_message_history(g, 1);
	assert_int_equal(a.outcome, MQ_ATTEMPT_UNKNOWN);
	assert_string_equal(a.error, "");
	mq_message_free(g);

	/* mqctl term, then message get --json */
	if (f->mqctl == NULL)
		return;
	m = mqtest_pull1(f, "sem.term", 0);
	assert_int_equal(mqtest_ctl(f,
	                            "term sem.term %" PRIu64 " %" PRIu64 " --reason 'no such user'",
	                            mq_message_id(m), mq_message_lease_token(m)),
	                 0);
	assert_non_null(strstr(f->out, "termed"));
	assert_int_equal(mqtest_ctl(f, "--json message get sem.term %" PRIu64, mq_message_id(m)),
	                 0);
	assert_non_null(strstr(f->out, "\"dead_reason\": \"termed: no such user\""));
	assert_non_null(strstr(f->out, "\"outcome\": \"termed\""));
	assert_non_null(strstr(f->out, "\"state\": \"dead\""));
	assert_int_equal(mqtest_ctl(f, "message get sem.term %" PRIu64, mq_message_id(m)), 0);
	assert_non_null(strstr(f->out, "dead reason:  termed: no such user"));
	/* a stale token: exit 1 */
	assert_int_equal(mqtest_ctl(f, "term sem.term %" PRIu64 " %" PRIu64 " 2>/dev/null",
	                            mq_message_id(m), mq_message_lease_token(m)),
	                 1);
	mq_message_free(m);
}

/* test_semantics_history: nack and lease expiry build the history; the
 * last allowed attempt sends the message dead with "max attempts
 * reached"; it all survives a restart. */
static void test_semantics_history(void **state)
{
	fx *f = *state;
	mq_message *m, *g;
	uint64_t id, t0;
	mq_attempt a;

	mqtest_make_queue(f, "sem.hist", 0, 3);
	assert_mq_ok(mq_push(f->c, "sem.hist", "job", 3, NULL, &id, NULL));
	m = mqtest_pull1(f, "sem.hist", 0);
	assert_mq_ok(mq_nack(f->c, m, 0, "first failure"));
	mq_message_free(m);
	m = mqtest_pull1(f, "sem.hist", 200); /* left to expire */
	mq_message_free(m);
	t0 = mqtest_now_ms();
	m = mqtest_pull1(f, "sem.hist", 0); /* comes back once the lease ran out */
	assert_true(mqtest_now_ms() - t0 >= 100);
	assert_int_equal(mq_message_attempts(m), 3);
	/* history while leased */
	assert_mq_ok(mq_message_get(f->c, "sem.hist", id, &g));
	assert_int_equal(mq_message_state(g), MQ_STATE_LEASED);
	assert_int_equal(mq_message_history_count(g), 2);
	assert_string_equal(mq_message_dead_reason(g), "");
	mq_message_free(g);
	assert_mq_ok(mq_nack(f->c, m, 0, "third failure"));
	mq_message_free(m);

	mqtest_fx_restart(f);
	assert_mq_ok(mq_message_get(f->c, "sem.hist", id, &g));
	assert_int_equal(mq_message_state(g), MQ_STATE_DEAD);
	assert_string_equal(mq_message_dead_reason(g), "max attempts reached (3)");
	assert_int_equal(mq_message_history_count(g), 3);
	a = mq_message_history(g, 0);
	assert_int_equal(a.outcome, MQ_ATTEMPT_NACKED);
	assert_string_equal(a.error, "first failure");
	a = mq_message_history(g, 1);
	assert_int_equal(a.outcome, MQ_ATTEMPT_EXPIRED);
	assert_string_equal(a.error, "lease expired");
	a = mq_message_history(g, 2);
	assert_int_equal(a.outcome, MQ_ATTEMPT_NACKED);
	assert_string_equal(a.error, "third failure");
	assert_true(mq_message_history(g, 0).time_ms <= mq_message_history(g, 2).time_ms);
	mq_message_free(g);
}

static void free_all(mq_message **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mq_message_free(msgs[i]);
}

/* test_semantics_browse: ListMessages pages in id order and filters by
 * state without leasing; GetMessage and DeleteMessage; mqctl messages,
 * dead list and message delete. */
static void test_semantics_browse(void **state)
{
	fx *f = *state;
	mq_message *msgs[16], *m, *l1, *l2;
	mq_list_opts lo = {0};
	mq_queue_info qi;
	uint64_t ids[5], next = 0;
	bool more = true;
	size_t n = 0;
	uint32_t st = 0;
	char body[16];

	mqtest_make_queue(f, "sem.browse", 0, 1);
	for (int i = 0; i < 5; i++) {
		mq_push_opts po = {.delay_ms = i == 4 ? 600000 : 0};

		snprintf(body, sizeof(body), "m%d", i);
		assert_mq_ok(mq_push(f->c, "sem.browse", body, strlen(body), &po, &ids[i], NULL));
	}
	assert_mq_ok(mq_push(f->c, "sem.other", "x", 1, NULL, NULL, NULL));
	l1 = mqtest_pull1(f, "sem.browse", 0); /* m0: leased */
	l2 = mqtest_pull1(f, "sem.browse", 0); /* m1: nacked, dead (max 1) */
	assert_mq_ok(mq_nack(f->c, l2, 0, "boom"));
	mq_message_free(l2);
	/* now: m0 LEASED, m1 DEAD, m2 READY, m3 READY, m4 DELAYED */

	assert_mq_ok(mq_message_list(f->c, "sem.browse", NULL, msgs, 16, &n, &next, &more));
	assert_int_equal(n, 5);
	assert_false(more);
	assert_int_equal(next, ids[4]);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(mq_message_id(msgs[i]), ids[i]);
	assert_int_equal(mq_message_state(msgs[0]), MQ_STATE_LEASED);
	assert_int_equal(mq_message_state(msgs[1]), MQ_STATE_DEAD);
	assert_string_equal(mq_message_dead_reason(msgs[1]), "max attempts reached (1)");
	assert_int_equal(mq_message_state(msgs[2]), MQ_STATE_READY);
	assert_int_equal(mq_message_state(msgs[4]), MQ_STATE_DELAYED);
	assert_true(mq_message_not_before_ms(msgs[4]) > 0);
	assert_int_equal(mq_message_lease_token(msgs[2]), 0);
	free_all(msgs, n);
	/* paging by 2 */
	lo.after_id = 0;
	assert_mq_ok(mq_message_list(f->c, "sem.browse", &lo, msgs, 2, &n, &next, &more));
	assert_int_equal(n, 2);
	assert_true(more);
	free_all(msgs, n);
	lo.after_id = next;
	assert_mq_ok(mq_message_list(f->c, "sem.browse", &lo, msgs, 2, &n, &next, &more));
	assert_int_equal(n, 2);
	assert_int_equal(mq_message_id(msgs[0]), ids[2]);
	free_all(msgs, n);
	lo.after_id = next;
	assert_mq_ok(mq_message_list(f->c, "sem.browse", &lo, msgs, 2, &n, &next, &more));
	assert_int_equal(n, 1);
	assert_false(more);
	free_all(msgs, n);
	/* by state */
	lo = (mq_list_opts){.state = MQ_STATE_READY};
	assert_mq_ok(mq_message_list(f->c, "sem.browse", &lo, msgs, 16, &n, NULL, NULL));
	assert_int_equal(n, 2);
	free_all(msgs, n);
	lo.state = MQ_STATE_DEAD;
	assert_mq_ok(mq_message_list(f->c, "sem.browse", &lo, msgs, 16, &n, NULL, NULL));
	assert_int_equal(n, 1);
	assert_int_equal(mq_message_id(msgs[0]), ids[1]);
	free_all(msgs, n);
	/* listing leased nothing */
	assert_mq_ok(mq_queue_get(f->c, "sem.browse", &qi));
	assert_int_equal(qi.stats.ready, 2);
	assert_int_equal(qi.stats.in_flight, 1);
	/* bad arguments */
	lo.state = MQ_STATE_READY | MQ_STATE_DEAD;
	assert_mq_status(mq_message_list(f->c, "sem.browse", &lo, msgs, 16, &n, NULL, NULL),
	                 MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_message_list(f->c, "sem.browse", NULL, msgs, 1001, &n, NULL, NULL),
	                 MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_message_list(f->c, "sem.none", NULL, msgs, 10, &n, NULL, NULL),
	                 MQ_NOT_FOUND);
	assert_mq_status(mq_message_get(f->c, "sem.browse", 999999, &m), MQ_NOT_FOUND);
	assert_mq_status(mq_message_get(f->c, "sem.other", ids[0], &m), MQ_NOT_FOUND);

	/* get, delete */
	assert_mq_ok(mq_message_get(f->c, "sem.browse", ids[2], &m));
	assert_int_equal(mq_message_state(m), MQ_STATE_READY);
	assert_memory_equal(mq_message_payload(m, NULL), "m2", 2);
	mq_message_free(m);
	assert_mq_ok(mq_message_delete(f->c, "sem.browse", ids[0], &st));
	assert_int_equal(st, MQ_STATE_LEASED);
	assert_mq_status(mq_ack(f->c, l1), MQ_NOT_FOUND);
	mq_message_free(l1);
	assert_mq_status(mq_message_delete(f->c, "sem.browse", ids[0], NULL), MQ_NOT_FOUND);
	assert_mq_ok(mq_queue_get(f->c, "sem.browse", &qi));
	assert_int_equal(qi.stats.in_flight, 0);
	assert_int_equal(qi.stats.dead, 1);

	mqtest_fx_restart(f);
	lo = (mq_list_opts){.state = MQ_STATE_DEAD};
	assert_mq_ok(mq_message_list(f->c, "sem.browse", &lo, msgs, 16, &n, NULL, NULL));
	assert_int_equal(n, 1);
	assert_string_equal(mq_message_dead_reason(msgs[0]), "max attempts reached (1)");
	assert_int_equal(mq_message_history_count(msgs[0]), 1);
	assert_string_equal(mq_message_history(msgs[0], 0).error, "boom");
	free_all(msgs, n);

	if (f->mqctl == NULL)
		return;
	assert_int_equal(mqtest_ctl(f, "messages sem.browse"), 0);
	assert_non_null(strstr(f->out, "STATE"));
	assert_non_null(strstr(f->out, "delayed"));
	assert_non_null(strstr(f->out, "max attempts reached (1)"));
	assert_int_equal(mqtest_ctl(f, "--json messages sem.browse --state ready --limit 1"), 0);
	assert_non_null(strstr(f->out, "\"more\": true"));
	assert_non_null(strstr(f->out, "\"payload\": \"m2\""));
	assert_null(strstr(f->out, "\"payload\": \"m3\""));
	assert_int_equal(mqtest_ctl(f, "--json dead list sem.browse"), 0);
	assert_non_null(strstr(f->out, "\"error\": \"boom\""));
	assert_int_equal(mqtest_ctl(f, "message delete sem.browse %" PRIu64, ids[1]), 0);
	assert_non_null(strstr(f->out, "(dead)"));
	assert_int_equal(mqtest_ctl(f, "dead list sem.browse"), 0);
	assert_non_null(strstr(f->out, "no dead messages"));
	assert_int_equal(mqtest_ctl(f, "messages sem.browse --state bogus 2>/dev/null"), 2);
	assert_int_equal(mqtest_ctl(f, "message get sem.browse 999999 2>/dev/null"), 1);
}

/* test_semantics_redrive: dead messages go back to ready (by id, all, or
 * into another queue) with attempts reset and history kept, after a
 * restart; mqctl dead redrive. */
static void test_semantics_redrive(void **state)
{
	fx *f = *state;
	mq_message *m, *msgs[8];
	mq_list_opts lo = {.state = MQ_STATE_DEAD};
	mq_queue_info qi;
	uint64_t ids[4], moved = 0, live;
	bool more = true;
	size_t n;

	mqtest_make_queue(f, "sem.rd", 0, 1);
	for (int i = 0; i < 4; i++) {
		assert_mq_ok(mq_push(f->c, "sem.rd", "job", 3, NULL, &ids[i], NULL));
		m = mqtest_pull1(f, "sem.rd", 0);
		assert_mq_ok(mq_nack(f->c, m, 0, "broken"));
		mq_message_free(m);
	}
	assert_mq_ok(mq_push(f->c, "sem.rd", "live", 4, NULL, &live, NULL));

	mqtest_fx_restart(f);
	/* a live message cannot be redriven; nothing moves */
	{
		uint64_t two[2] = {ids[0], live};

		assert_mq_status(mq_redrive(f->c, "sem.rd", two, 2, NULL, &moved, NULL),
		                 MQ_FAILED_PRECONDITION);
	}
	assert_mq_status(mq_redrive(f->c, "sem.rd", NULL, 0, "bad name!", &moved, NULL),
	                 MQ_INVALID_ARGUMENT);
	assert_mq_ok(mq_redrive(f->c, "sem.rd", &ids[0], 1, NULL, &moved, &more));
	assert_int_equal(moved, 1);
	assert_false(more);
	assert_mq_ok(mq_message_get(f->c, "sem.rd", ids[0], &m));
	assert_int_equal(mq_message_state(m), MQ_STATE_READY);
	assert_int_equal(mq_message_attempts(m), 0);
	assert_string_equal(mq_message_dead_reason(m), "");
	assert_int_equal(mq_message_history_count(m), 1);
	assert_string_equal(mq_message_history(m, 0).error, "broken");
	mq_message_free(m);
	/* the rest into another queue, created on the way */
	assert_mq_ok(mq_redrive(f->c, "sem.rd", NULL, 0, "sem.rd.retry", &moved, &more));
	assert_int_equal(moved, 3);
	assert_false(more);
	assert_mq_ok(mq_queue_get(f->c, "sem.rd", &qi));
	assert_int_equal(qi.stats.dead, 0);
	assert_int_equal(qi.stats.ready, 2);
	assert_mq_ok(mq_queue_get(f->c, "sem.rd.retry", &qi));
	assert_int_equal(qi.stats.ready, 3);
	m = mqtest_pull1(f, "sem.rd.retry", 0);
	assert_int_equal(mq_message_id(m), ids[1]);
	assert_int_equal(mq_message_attempts(m), 1);
	assert_mq_ok(mq_term(f->c, m, "still broken"));
	mq_message_free(m);

	mqtest_fx_restart(f);
	assert_mq_ok(mq_message_list(f->c, "sem.rd.retry", &lo, msgs, 8, &n, NULL, NULL));
	assert_int_equal(n, 1);
	assert_string_equal(mq_message_dead_reason(msgs[0]), "termed: still broken");
	assert_int_equal(mq_message_history_count(msgs[0]), 2);
	assert_int_equal(mq_message_history(msgs[0], 0).outcome, MQ_ATTEMPT_NACKED);
	assert_int_equal(mq_message_history(msgs[0], 1).outcome, MQ_ATTEMPT_TERMED);
	free_all(msgs, n);

	if (f->mqctl == NULL)
		return;
	assert_int_equal(mqtest_ctl(f, "--json dead redrive sem.rd.retry --to sem.rd"), 0);
	assert_non_null(strstr(f->out, "\"redriven\": 1"));
	assert_int_equal(mqtest_ctl(f, "dead redrive sem.rd --id %" PRIu64 " 2>/dev/null", live),
	                 1);
	assert_int_equal(mqtest_ctl(f, "dead redrive sem.rd"), 0);
	assert_non_null(strstr(f->out, "redrove 0 dead messages of sem.rd to sem.rd"));
	assert_mq_ok(mq_queue_get(f->c, "sem.rd", &qi));
	assert_int_equal(qi.stats.ready, 3);
}

/* test_semantics_retry_backoff: a queue's retry backoff delays a nack
 * without delay; the config survives a restart; mqctl sets it. */
static void test_semantics_retry_backoff(void **state)
{
	fx *f = *state;
	mq_queue_config cfg = {.max_attempts = 10, .retry_base_ms = 300, .retry_max_ms = 300};
	mq_pull_opts now = {.wait_ms = 0};
	mq_queue_info qi;
	mq_message *m, *g;
	uint64_t t0, id;
	size_t n = 9;

	assert_mq_ok(mq_queue_create(f->c, "sem.backoff", &cfg, false, NULL));
	cfg.retry_max_ms = 100;
	assert_mq_status(mq_queue_create(f->c, "sem.bad", &cfg, false, NULL), MQ_INVALID_ARGUMENT);

	mqtest_fx_restart(f);
	assert_mq_ok(mq_queue_get(f->c, "sem.backoff", &qi));
	assert_int_equal(qi.config.retry_base_ms, 300);
	assert_int_equal(qi.config.retry_max_ms, 300);
	assert_mq_ok(mq_push(f->c, "sem.backoff", "x", 1, NULL, &id, NULL));
	m = mqtest_pull1(f, "sem.backoff", 0);
	t0 = mqtest_now_ms();
	assert_mq_ok(mq_nack(f->c, m, 0, "flaky"));
	mq_message_free(m);
	assert_mq_ok(mq_pull(f->c, "sem.backoff", &now, &m, 1, &n));
	assert_int_equal(n, 0);
	assert_mq_ok(mq_message_get(f->c, "sem.backoff", id, &g));
	assert_int_equal(mq_message_state(g), MQ_STATE_DELAYED);
	assert_true(mq_message_not_before_ms(g) > 0);
	mq_message_free(g);
	m = mqtest_pull1(f, "sem.backoff", 0);
	assert_true(mqtest_now_ms() - t0 >= 200); /* 300 ms - 20% jitter, less slack */
	/* an explicit delay wins over the backoff: 0 is "none", so use 1 ms */
	assert_mq_ok(mq_nack(f->c, m, 1, NULL));
	mq_message_free(m);

	if (f->mqctl == NULL)
		return;
	assert_int_equal(
	    mqtest_ctl(f, "queue create sem.b2 --retry-base-ms 1000 --retry-max-ms 60000"), 0);
	assert_int_equal(mqtest_ctl(f, "--json queue stats sem.b2"), 0);
	assert_non_null(strstr(f->out, "\"retry_base_ms\": 1000"));
	assert_non_null(strstr(f->out, "\"retry_max_ms\": 60000"));
	assert_int_equal(mqtest_ctl(f, "queue stats sem.b2"), 0);
	assert_non_null(strstr(f->out, "retry backoff: 1.0s doubling, up to 1m00s"));
	assert_int_equal(
	    mqtest_ctl(f, "queue create sem.b3 --retry-base-ms 5 --retry-max-ms 4 2>/dev/null"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_semantics_term, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_semantics_history, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_semantics_browse, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_semantics_redrive, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_semantics_retry_backoff, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	};

	return cmocka_run_group_tests_name("semantics", tests, NULL, NULL);
}
