/* SPDX-License-Identifier: MIT */
/* test_qctl.c: queue control against the real mqd (issue 3): batch
 * ack / nack / extend, atomic batch push, redrive by filter and at a rate,
 * dead-letter queues, per-queue rate limits and the oldest ready age,
 * through the client library and mqctl, with restarts of mqd where the
 * state matters. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest_fx.h"

typedef mqtest_fx fx;

static int setup(void **state)
{
	*state = mqtest_fx_open("--max-payload", "1024", NULL);
	return 0;
}

static void push(fx *f, const char *q, const char *body, const char *type, uint64_t *id)
{
	mq_push_opts po = {.type = type};

	assert_mq_ok(mq_push(f->c, q, body, strlen(body), &po, id, NULL));
}

/* pull_n leases exactly n messages of q (bounded waits). */
static void pull_n(fx *f, const char *q, mq_message **msgs, size_t n, uint32_t lease_ms)
{
	mq_pull_opts po = {.wait_ms = 2000, .lease_ms = lease_ms};
	size_t got = 0;

	for (int tries = 0; got < n && tries < 50; tries++) {
		size_t k = 0;

		assert_mq_ok(mq_pull(f->c, q, &po, msgs + got, n - got, &k));
		got += k;
	}
	assert_int_equal(got, n);
}

static mq_queue_info qinfo(fx *f, const char *q)
{
	mq_queue_info qi;

	assert_mq_ok(mq_queue_get(f->c, q, &qi));
	return qi;
}

/* test_batch_lease: AckBatch / NackBatch / ExtendBatch answer per lease;
 * stale and wrong tokens fail alone, good ones go through; mqctl ack/nack/
 * extend take several ID:TOKEN pairs. */
static void test_batch_lease(void **state)
{
	fx *f = *state;
	mq_message *m[6];
	mq_lease_ref refs[6];
	mq_lease_result res[6];
	mq_queue_info qi;
	uint64_t id;
	char ids[512];

	mqtest_make_queue(f, "qc.batch", 60000, 5);
	for (int i = 0; i < 6; i++) {
		char b[16];
		snprintf(b, sizeof(b), "m%d", i);
		push(f, "qc.batch", b, NULL, &id);
	}
	pull_n(f, "qc.batch", m, 6, 60000);
	for (int i = 0; i < 6; i++)
		refs[i] = (mq_lease_ref){mq_message_id(m[i]), mq_message_lease_token(m[i])};

	/* extend: a wrong token fails alone; the others get a new expiry */
	refs[1].token += 1000;
	assert_mq_status(mq_extend_batch(f->c, "qc.batch", refs, 3, 120000, res),
	                 MQ_FAILED_PRECONDITION);
	assert_int_equal(res[0].status, MQ_OK);
	assert_int_equal(res[1].status, MQ_FAILED_PRECONDITION);
	assert_int_equal(res[2].status, MQ_OK);
	assert_true(res[0].lease_expiry_ms > mq_message_lease_expiry_ms(m[0]));
	assert_true(res[2].lease_expiry_ms >= res[0].lease_expiry_ms);
	assert_int_equal(res[1].lease_expiry_ms, 0);
	refs[1].token -= 1000;

	/* ack 0 and 1; 0 again is stale (not found: it is deleted) */
	assert_mq_ok(mq_ack_batch(f->c, "qc.batch", refs, 2, res));
	assert_int_equal(res[0].status, MQ_OK);
	assert_int_equal(res[1].status, MQ_OK);
	{
		mq_lease_ref mix[3] = {refs[0], refs[2], {999999, 1}};
		assert_mq_status(mq_ack_batch(f->c, "qc.batch", mix, 3, res), MQ_NOT_FOUND);
		assert_int_equal(res[0].status, MQ_NOT_FOUND);
		assert_int_equal(res[1].status, MQ_OK);
		assert_int_equal(res[2].status, MQ_NOT_FOUND);
	}
	/* nack 3 (good) and 4 with a stale token: only 3 goes back */
	{
		mq_lease_ref mix[2] = {refs[3], {refs[4].id, refs[4].token + 7}};
		assert_mq_status(mq_nack_batch(f->c, "qc.batch", mix, 2, 0, "batch err", res),
		                 MQ_FAILED_PRECONDITION);
		assert_int_equal(res[0].status, MQ_OK);
		assert_int_equal(res[1].status, MQ_FAILED_PRECONDITION);
	}
	/* every item failing: the call's status is the first failure's */
	{
		mq_lease_ref bad[2] = {refs[3], refs[0]};
		assert_mq_status(mq_ack_batch(f->c, "qc.batch", bad, 2, res),
		                 MQ_FAILED_PRECONDITION);
		assert_int_equal(res[0].status, MQ_FAILED_PRECONDITION);
		assert_int_equal(res[1].status, MQ_NOT_FOUND);
	}
	qi = qinfo(f, "qc.batch");
	assert_int_equal(qi.stats.acked_total, 3);
	assert_int_equal(qi.stats.nacked_total, 1);
	assert_int_equal(qi.stats.ready, 1);
	assert_int_equal(qi.stats.in_flight, 2);
	/* bad arguments are refused locally */
	assert_mq_status(mq_ack_batch(f->c, "qc.batch", refs, 0, res), MQ_INVALID_ARGUMENT);

	/* mqctl: ack 4 with a good pair and 5 with a stale one */
	snprintf(ids, sizeof(ids), "ack qc.batch %" PRIu64 ":%" PRIu64 " %" PRIu64 ":%" PRIu64,
	         refs[4].id, refs[4].token, refs[5].id, refs[5].token + 1);
	assert_int_equal(mqtest_ctl(f, "%s 2>/dev/null", ids), 1);
	assert_non_null(strstr(f->out, "acked"));
	assert_non_null(strstr(f->out, "FAILED_PRECONDITION"));
	snprintf(ids, sizeof(ids),
	         "--json extend qc.batch %" PRIu64 ":%" PRIu64 " --lease-ms 90000", refs[5].id,
	         refs[5].token);
	assert_int_equal(mqtest_ctl(f, "%s", ids), 0);
	assert_non_null(strstr(f->out, "\"lease_expiry_ms\""));
	snprintf(ids, sizeof(ids), "nack qc.batch %" PRIu64 ":%" PRIu64 " --error e", refs[5].id,
	         refs[5].token);
	assert_int_equal(mqtest_ctl(f, "%s", ids), 0);
	assert_non_null(strstr(f->out, "nacked"));
	assert_int_equal(mqtest_ctl(f, "ack qc.batch 1:x 2>/dev/null"), 2);
	qi = qinfo(f, "qc.batch");
	assert_int_equal(qi.stats.acked_total, 4);
	assert_int_equal(qi.stats.ready, 2);
	assert_int_equal(qi.stats.in_flight, 0);
	for (int i = 0; i < 6; i++)
		mq_message_free(m[i]);
}

/* test_atomic_push: an atomic batch with one bad message stores nothing
 * (even into a queue it would have created) and says why per message; the
 * same batch without atomic stores the good ones; mqctl push --atomic. */
static void test_atomic_push(void **state)
{
	fx *f = *state;
	static char big[2048];
	const void *payloads[3] = {"a", big, "c"};
	size_t lens[3] = {1, sizeof(big), 1};
	mq_push_result r[3];
	mq_queue_info qi;
	FILE *fp;
	char path[512];

	memset(big, 'x', sizeof(big));
	/* the queue does not exist: the broker would create it on push */
	assert_mq_status(
	    mq_push_batch_ex(f->c, "qc.atomic", 3, payloads, lens, NULL, MQ_PUSH_ATOMIC, r),
	    MQ_INVALID_ARGUMENT);
	assert_int_equal(r[0].status, MQ_ABORTED);
	assert_int_equal(r[1].status, MQ_INVALID_ARGUMENT);
	assert_int_equal(r[2].status, MQ_ABORTED);
	assert_int_equal(r[0].id, 0);
	assert_mq_status(mq_queue_get(f->c, "qc.atomic", &qi), MQ_NOT_FOUND);
	/* a reserved header fails too, after good messages of the batch */
	{
		mq_header h = {"x-mq-origin-queue", "elsewhere"};
		mq_push_opts o[2] = {{0}, {.headers = &h, .n_headers = 1}};
		const void *p2[2] = {"a", "b"};
		size_t l2[2] = {1, 1};

		mqtest_make_queue(f, "qc.atomic", 0, 0);
		assert_mq_status(
		    mq_push_batch_ex(f->c, "qc.atomic", 2, p2, l2, o, MQ_PUSH_ATOMIC, r),
		    MQ_INVALID_ARGUMENT);
		assert_int_equal(r[0].status, MQ_ABORTED);
		assert_int_equal(r[1].status, MQ_INVALID_ARGUMENT);
		assert_non_null(strstr(mq_errmsg(), "reserved"));
	}
	qi = qinfo(f, "qc.atomic");
	assert_int_equal(qi.stats.ready, 0);
	assert_int_equal(qi.stats.pushed_total, 0);
	/* not atomic: the good ones are stored */
	assert_mq_status(mq_push_batch(f->c, "qc.atomic", 3, payloads, lens, NULL, r),
	                 MQ_INVALID_ARGUMENT);
	assert_int_equal(r[0].status, MQ_OK);
	assert_int_equal(r[2].status, MQ_OK);
	assert_true(r[2].id > r[0].id);
	/* atomic and all good: all stored, ids in order */
	lens[1] = 5;
	assert_mq_ok(
	    mq_push_batch_ex(f->c, "qc.atomic", 3, payloads, lens, NULL, MQ_PUSH_ATOMIC, r));
	assert_true(r[0].id < r[1].id && r[1].id < r[2].id);
	qi = qinfo(f, "qc.atomic");
	assert_int_equal(qi.stats.ready, 5);

	/* mqctl push --atomic: several DATA, and --lines FILE */
	assert_int_equal(mqtest_ctl(f, "push qc.atomic --atomic one two three"), 0);
	assert_non_null(strstr(f->out, "message 2: pushed"));
	snprintf(path, sizeof(path), "%s/lines.txt", f->b.dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "l1\nl2\n");
	for (int i = 0; i < 1100; i++)
		fputc('y', fp);
	fputc('\n', fp);
	fclose(fp);
	assert_int_equal(
	    mqtest_ctl(f, "--json push qc.atomic --atomic --lines --file '%s' 2>/dev/null", path),
	    1);
	assert_non_null(strstr(f->out, "\"ABORTED\""));
	assert_non_null(strstr(f->out, "\"INVALID_ARGUMENT\""));
	qi = qinfo(f, "qc.atomic");
	assert_int_equal(qi.stats.ready, 8);
	assert_int_equal(mqtest_ctl(f, "push qc.atomic --lines --file '%s' 2>/dev/null", path), 1);
	qi = qinfo(f, "qc.atomic");
	assert_int_equal(qi.stats.ready, 10);
}

/* kill_n makes n messages of q dead: pulled and termed with reason. */
static void term_all(fx *f, const char *q, size_t n, const char *reason)
{
	mq_message *m[16];

	assert_true(n <= 16);
	pull_n(f, q, m, n, 60000);
	for (size_t i = 0; i < n; i++) {
		assert_mq_ok(mq_term(f->c, m[i], reason));
		mq_message_free(m[i]);
	}
}

/* test_redrive_filter: redrive by dead reason prefix, by type, by dead
 * time, bounded and paged; the dead survive a restart in between; mqctl
 * dead redrive --rate moves at most N per step. */
static void test_redrive_filter(void **state)
{
	fx *f = *state;
	mq_redrive_opts o = {0};
	mq_message *m[4];
	mq_queue_info qi;
	uint64_t id, moved = 0, next = 0, t0;
	bool more = true;

	mqtest_make_queue(f, "qc.rd", 60000, 1);
	/* 3 of type a termed "bad input", 2 of type b failing by nack */
	for (int i = 0; i < 3; i++)
		push(f, "qc.rd", "a", "a", &id);
	term_all(f, "qc.rd", 3, "bad input");
	assert_mq_ok(mq_ping(f->c, &t0));
	for (int i = 0; i < 2; i++)
		push(f, "qc.rd", "b", "b", &id);
	pull_n(f, "qc.rd", m, 2, 60000);
	for (int i = 0; i < 2; i++) {
		assert_mq_ok(mq_nack(f->c, m[i], 0, "timeout"));
		mq_message_free(m[i]);
	}
	qi = qinfo(f, "qc.rd");
	assert_int_equal(qi.stats.dead, 5);
	mqtest_fx_restart(f);

	/* reason prefix, bounded to 2 per call: paged by after_id */
	o.reason_prefix = "termed:";
	o.max = 2;
	o.to_queue = "qc.rd.out";
	assert_mq_ok(mq_redrive_ex(f->c, "qc.rd", &o, &moved, &more, &next));
	assert_int_equal(moved, 2);
	assert_true(more);
	o.after_id = next;
	assert_mq_ok(mq_redrive_ex(f->c, "qc.rd", &o, &moved, &more, &next));
	assert_int_equal(moved, 1);
	assert_false(more);
	qi = qinfo(f, "qc.rd.out");
	assert_int_equal(qi.stats.ready, 3);
	/* type: none of type a is left dead */
	o = (mq_redrive_opts){.type = "a"};
	assert_mq_ok(mq_redrive_ex(f->c, "qc.rd", &o, &moved, &more, NULL));
	assert_int_equal(moved, 0);
	/* dead since: the 2 of type b died after t0; nothing died in the future */
	o = (mq_redrive_opts){.dead_since_ms = t0 + 3600 * 1000};
	assert_mq_ok(mq_redrive_ex(f->c, "qc.rd", &o, &moved, &more, NULL));
	assert_int_equal(moved, 0);
	qi = qinfo(f, "qc.rd");
	assert_int_equal(qi.stats.dead, 2);
	/* a filter matching nothing leaves them; then mqctl --rate 1 moves
	 * them one per step (2 steps at least: a count, not a timing) */
	assert_int_equal(mqtest_ctl(f, "dead redrive qc.rd --reason-prefix nope"), 0);
	assert_non_null(strstr(f->out, "redrove 0"));
	assert_int_equal(
	    mqtest_ctl(f,
	               "--json dead redrive qc.rd --reason-prefix 'max attempts' --rate 1 "
	               "--dead-since-ms %" PRIu64,
	               t0),
	    0);
	assert_non_null(strstr(f->out, "\"redriven\": 2"));
	assert_non_null(strstr(f->out, "\"steps\": 2"));
	qi = qinfo(f, "qc.rd");
	assert_int_equal(qi.stats.dead, 0);
	assert_int_equal(qi.stats.ready, 2);
	/* ids with filters is a usage error */
	assert_int_equal(mqtest_ctl(f, "dead redrive qc.rd --id 1 --type a 2>/dev/null"), 2);
}

/* test_dead_letter_queue: a queue's dead messages (attempts exhausted,
 * termed) move into its dead-letter queue with reason, history and origin;
 * the target must exist unless the broker auto-creates it and may not be
 * the queue itself; after a restart redrive sends them back to the origin
 * (or into a named queue); mqctl shows and redrives them. */
static void test_dead_letter_queue(void **state)
{
	fx *f = *state;
	mq_queue_config cfg = {.max_attempts = 1, .lease_ms = 60000};
	mq_message *m[2], *g;
	mq_queue_info qi;
	uint64_t id1, id2, moved;
	bool more;

	/* validation: itself is refused; a missing target is auto-created here */
	snprintf(cfg.dead_letter_queue, sizeof(cfg.dead_letter_queue), "qc.src");
	assert_mq_status(mq_queue_create(f->c, "qc.src", &cfg, false, NULL), MQ_INVALID_ARGUMENT);
	snprintf(cfg.dead_letter_queue, sizeof(cfg.dead_letter_queue), "qc.dlq");
	assert_mq_ok(mq_queue_create(f->c, "qc.src", &cfg, false, NULL));
	qi = qinfo(f, "qc.dlq"); /* created on demand (the broker auto-creates) */
	assert_string_equal(qinfo(f, "qc.src").config.dead_letter_queue, "qc.dlq");

	push(f, "qc.src", "one", "t1", &id1);
	push(f, "qc.src", "two", "t2", &id2);
	pull_n(f, "qc.src", m, 2, 60000);
	assert_mq_ok(mq_nack(f->c, m[0], 0, "smtp down"));
	assert_mq_ok(mq_term(f->c, m[1], "bad input"));
	mq_message_free(m[0]);
	mq_message_free(m[1]);
	qi = qinfo(f, "qc.src");
	assert_int_equal(qi.stats.dead, 0);
	assert_int_equal(qi.stats.dead_total, 2);
	qi = qinfo(f, "qc.dlq");
	assert_int_equal(qi.stats.dead, 2);
	mqtest_fx_restart(f);

	assert_mq_ok(mq_message_get(f->c, "qc.dlq", id1, &g));
	assert_int_equal(mq_message_state(g), MQ_STATE_DEAD);
	assert_string_equal(mq_message_dead_reason(g), "max attempts reached (1)");
	assert_int_equal(mq_message_history_count(g), 1);
	assert_string_equal(mq_message_history(g, 0).error, "smtp down");
	assert_int_equal(mq_message_header_count(g), 1);
	assert_string_equal(mq_message_header(g, 0).key, "x-mq-origin-queue");
	assert_string_equal(mq_message_header(g, 0).value, "qc.src");
	mq_message_free(g);
	assert_mq_status(mq_message_get(f->c, "qc.src", id1, &g), MQ_NOT_FOUND);
	assert_int_equal(mqtest_ctl(f, "dead list qc.dlq"), 0);
	assert_non_null(strstr(f->out, "termed: bad input"));

	/* redrive by filter, no target: back to the origin */
	{
		mq_redrive_opts o = {.reason_prefix = "termed:"};
		assert_mq_ok(mq_redrive_ex(f->c, "qc.dlq", &o, &moved, &more, NULL));
		assert_int_equal(moved, 1);
	}
	assert_mq_ok(mq_message_get(f->c, "qc.src", id2, &g));
	assert_int_equal(mq_message_state(g), MQ_STATE_READY);
	assert_int_equal(mq_message_header_count(g), 0);
	mq_message_free(g);
	/* mqctl into a named queue */
	assert_int_equal(mqtest_ctl(f, "dead redrive qc.dlq --to qc.retry"), 0);
	assert_non_null(strstr(f->out, "redrove 1"));
	qi = qinfo(f, "qc.dlq");
	assert_int_equal(qi.stats.dead, 0);
	assert_int_equal(qi.stats.redriven_total, 2);
	assert_int_equal(qinfo(f, "qc.retry").stats.ready, 1);
	/* mqctl queue update sets a DLQ; a missing target without
	 * auto-create is NOT_FOUND (restart without it) */
	mq_client_close(f->c);
	f->c = NULL;
	assert_int_equal(mqtest_broker_stop(&f->b), 0);
	mqtest_broker_restart(&f->b, "--max-payload", "1024", "--auto-create", "false", NULL);
	mqtest_fx_connect(f);
	assert_int_equal(
	    mqtest_ctl(f, "queue update qc.retry --dead-letter-queue qc.none 2>/dev/null"), 1);
	assert_int_equal(mqtest_ctl(f, "queue update qc.retry --dead-letter-queue qc.dlq"), 0);
	assert_string_equal(qinfo(f, "qc.retry").config.dead_letter_queue, "qc.dlq");
}

/* test_rate_limit: a queue with rate_limit 5 hands out at most
 * 5 * elapsed + 5 (burst) messages over a bounded window however fast it
 * is pulled; a parked long poll is served when tokens come back. */
static void test_rate_limit(void **state)
{
	fx *f = *state;
	mq_queue_config cfg = {.rate_limit = 5, .lease_ms = 60000};
	const void *p[100];
	size_t l[100];
	mq_pull_opts po = {0};
	mq_message *m[50];
	uint64_t start, elapsed, got = 0;
	size_t n;

	assert_mq_ok(mq_queue_create(f->c, "qc.rate", &cfg, false, NULL));
	for (int i = 0; i < 100; i++) {
		p[i] = "r";
		l[i] = 1;
	}
	assert_mq_ok(mq_push_batch(f->c, "qc.rate", 100, p, l, NULL, NULL));
	start = mqtest_now_ms();
	for (int i = 0; i < 2000 && mqtest_now_ms() - start < 1000; i++) {
		assert_mq_ok(mq_pull(f->c, "qc.rate", &po, m, 50, &n));
		got += n;
		for (size_t k = 0; k < n; k++)
			mq_message_free(m[k]);
	}
	elapsed = mqtest_now_ms() - start;
	assert_true(got >= 5);                              /* the burst at least */
	assert_true(got <= 5 * (elapsed + 999) / 1000 + 5); /* never above the limit */
	/* a long poll with no token left waits for one and gets a message */
	po.wait_ms = 5000;
	assert_mq_ok(mq_pull(f->c, "qc.rate", &po, m, 50, &n));
	assert_true(n >= 1 && n <= 5);
	for (size_t k = 0; k < n; k++)
		mq_message_free(m[k]);
	/* oldest ready age is shown by GetQueue and mqctl */
	assert_true(qinfo(f, "qc.rate").stats.oldest_ready_age_ms >= 1);
	assert_int_equal(mqtest_ctl(f, "--json queue stats qc.rate"), 0);
	assert_non_null(strstr(f->out, "\"oldest_ready_age_ms\""));
	assert_non_null(strstr(f->out, "\"rate_limit\": 5"));
	/* lifting the limit hands out the rest at once */
	{
		mq_queue_config none = {0};
		assert_mq_ok(mq_queue_update(f->c, "qc.rate", &none, MQ_QCFG_RATE_LIMIT, NULL));
	}
	po.wait_ms = 0;
	assert_mq_ok(mq_pull(f->c, "qc.rate", &po, m, 50, &n));
	assert_int_equal(n, 50);
	for (size_t k = 0; k < n; k++)
		mq_message_free(m[k]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_batch_lease, setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_atomic_push, setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_redrive_filter, setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dead_letter_queue, setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rate_limit, setup, mqtest_fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
