/* SPDX-License-Identifier: MIT */
/* test_consumer.c: the consumer runtime (mq_consumer) against the real mqd:
 * a pool of workers over many messages, routing by type, retry, lease
 * heartbeats, graceful stop and a broker killed mid-run. Handlers run on
 * the consumer's threads, so they only update atomics; every cmocka check
 * is made on the test's own thread. One broker serves the group (each test
 * has its own queues); the restart test starts its own. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest.h"

#undef assert_mq_ok
#define assert_mq_ok(expr)                                                                         \
	do {                                                                                       \
		int rv_ = (expr);                                                                  \
		if (rv_ != 0)                                                                      \
			fail_msg("%s = %s: %s", #expr, mq_status_name(rv_), mq_errmsg());          \
	} while (0)

#define MAX_MSGS 2000

struct fixture {
	mqtest_broker broker;
	mq_client *c;
};

/* counts is what handlers record; handlers touch nothing else. */
struct counts {
	atomic_int handled[MAX_MSGS]; /* per payload index */
	atomic_int calls;
	atomic_int by_a, by_b, by_default;
	atomic_uint max_attempts_seen;
	atomic_uint_fast64_t first_ms, second_ms; /* retry timing */
	int sleep_ms;
};

static atomic_int on_error_calls;

static void on_error(void *arg, mq_status st, const char *msg)
{
	(void)arg;
	(void)st;
	(void)msg;
	atomic_fetch_add(&on_error_calls, 1);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int group_setup(void **state)
{
	static struct fixture f;
	mq_client_opts opts;

	memset(&f, 0, sizeof(f));
	mqtest_broker_start(&f.broker, NULL);
	mq_client_opts_init(&opts);
	opts.connect_timeout_ms = 5000;
	if (mq_client_open(&f.c, f.broker.url, &opts) != MQ_OK) {
		fprintf(stderr, "mq_client_open(%s): %s\n", f.broker.url, mq_errmsg());
		mqtest_broker_cleanup(&f.broker);
		return -1;
	}
	*state = &f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;

	mq_client_close(f->c);
	mqtest_broker_cleanup(&f->broker);
	return 0;
}

static void make_queue(mq_client *c, const char *name, uint32_t lease_ms, uint32_t max_attempts)
{
	mq_queue_config cfg = {.lease_ms = lease_ms, .max_attempts = max_attempts};

	assert_mq_ok(mq_queue_create(c, name, &cfg, false, NULL));
}

/* push_n pushes messages whose payloads are "0", "1", ... "n-1". */
static void push_n(mq_client *c, const char *queue, int n, const char *type)
{
	static char bufs[MQ_PUSH_BATCH_MAX][16];
	const void *ps[MQ_PUSH_BATCH_MAX];
	size_t lens[MQ_PUSH_BATCH_MAX];
	mq_push_opts po[MQ_PUSH_BATCH_MAX];

	for (int done = 0; done < n;) {
		int k = n - done > MQ_PUSH_BATCH_MAX ? MQ_PUSH_BATCH_MAX : n - done;
		for (int i = 0; i < k; i++) {
			lens[i] = (size_t)snprintf(bufs[i], sizeof(bufs[i]), "%d", done + i);
			ps[i] = bufs[i];
			po[i] = (mq_push_opts){.type = type};
		}
		assert_mq_ok(mq_push_batch(c, queue, (size_t)k, ps, lens, po, NULL));
		done += k;
	}
}

static void push_typed(mq_client *c, const char *queue, int idx, const char *type)
{
	char buf[16];
	mq_push_opts po = {.type = type};

	snprintf(buf, sizeof(buf), "%d", idx);
	assert_mq_ok(mq_push(c, queue, buf, strlen(buf), &po, NULL, NULL));
}

static void record(struct counts *k, const mq_message *m)
{
	int idx = atoi(mq_message_payload(m, NULL));
	unsigned a = mq_message_attempts(m), seen = atomic_load(&k->max_attempts_seen);

	if (idx >= 0 && idx < MAX_MSGS)
		atomic_fetch_add(&k->handled[idx], 1);
	atomic_fetch_add(&k->calls, 1);
	while (a > seen && !atomic_compare_exchange_weak(&k->max_attempts_seen, &seen, a))
		;
}

static mq_outcome h_noop(void *arg, const mq_message *m, mq_result *r)
{
	(void)r;
	record(arg, m);
	return MQ_OUTCOME_DONE;
}

static mq_outcome h_sleep(void *arg, const mq_message *m, mq_result *r)
{
	struct counts *k = arg;

	(void)r;
	sleep_ms(k->sleep_ms);
	record(k, m);
	return MQ_OUTCOME_DONE;
}

static mq_consumer *open_consumer(mq_client *c, const char *queue, uint32_t workers,
                                  int32_t prefetch, uint32_t lease_ms)
{
	const char *qs[] = {queue};
	mq_consumer_opts co;
	mq_consumer *cons = NULL;

	mq_consumer_opts_init(&co);
	co.queues = qs; /* copied by open */
	co.n_queues = 1;
	co.workers = workers;
	co.prefetch = prefetch;
	co.lease_ms = lease_ms;
	co.wait_ms = 500;
	co.on_error = on_error;
	assert_mq_ok(mq_consumer_open(&cons, c, &co));
	return cons;
}

/* wait_acked waits until the consumer counted want acks (or timeout). */
static mq_consumer_stats wait_acked(mq_consumer *cons, uint64_t want, uint64_t timeout_ms)
{
	uint64_t until = mqtest_now_ms() + timeout_ms;
	mq_consumer_stats s;

	for (;;) {
		mq_consumer_stats_get(cons, &s);
		if (s.acked >= want || mqtest_now_ms() > until)
			return s;
		sleep_ms(5);
	}
}

static void queue_stats(mq_client *c, const char *queue, mq_queue_stats *st)
{
	mq_queue_info qi;

	assert_mq_ok(mq_queue_get(c, queue, &qi));
	*st = qi.stats;
}

static void test_consumer_options(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {"no spaces"};
	const char *good[] = {"opts"};
	mq_consumer_opts co;
	mq_consumer *cons = NULL;

	mq_consumer_opts_init(&co);
	assert_int_equal(co.workers, 4);
	assert_int_equal(co.prefetch, -1);
	assert_int_equal(co.wait_ms, 5000);
	assert_true(co.heartbeat);
	assert_int_equal(co.max_processing_ms, 900000);
	assert_int_equal(mq_consumer_open(&cons, f->c, &co), MQ_INVALID_ARGUMENT); /* no queues */
	co.queues = bad;
	co.n_queues = 1;
	assert_int_equal(mq_consumer_open(&cons, f->c, &co), MQ_INVALID_ARGUMENT);
	co.queues = good;
	co.workers = 0;
	assert_int_equal(mq_consumer_open(&cons, f->c, &co), MQ_INVALID_ARGUMENT);
	co.workers = 2;
	assert_mq_ok(mq_consumer_open(&cons, f->c, &co));
	assert_mq_ok(mq_consumer_handle(cons, "t", h_noop, NULL));
	assert_int_equal(mq_consumer_handle(cons, "t", h_noop, NULL), MQ_ALREADY_EXISTS);
	/* Never started: stop is a no-op, close frees. */
	assert_mq_ok(mq_consumer_stop(cons, 0));
	mq_consumer_close(cons);
	mq_consumer_close(NULL);
}

/* Four workers, 200 messages, a no-op handler: each acked exactly once. */
static void test_consumer_pool_acks_all(void **state)
{
	struct fixture *f = *state;
	static struct counts k;
	mq_consumer_stats s;
	mq_queue_stats qs;
	mq_consumer *cons;

	memset(&k, 0, sizeof(k));
	make_queue(f->c, "pool", 0, 0);
	push_n(f->c, "pool", 200, NULL);
	cons = open_consumer(f->c, "pool", 4, -1, 0);
	assert_mq_ok(mq_consumer_handle_default(cons, h_noop, &k));
	assert_mq_ok(mq_consumer_start(cons));
	assert_int_equal(mq_consumer_start(cons), MQ_FAILED_PRECONDITION);
	assert_int_equal(mq_consumer_handle(cons, "late", h_noop, &k), MQ_FAILED_PRECONDITION);
	s = wait_acked(cons, 200, 30000);
	assert_mq_ok(mq_consumer_stop(cons, 5000));
	mq_consumer_stats_get(cons, &s);
	mq_consumer_close(cons);

	assert_int_equal(s.acked, 200);
	assert_int_equal(s.received, 200);
	assert_int_equal(s.in_progress, 0);
	assert_int_equal(s.errors, 0);
	for (int i = 0; i < 200; i++) {
		if (atomic_load(&k.handled[i]) != 1)
			fail_msg("message %d handled %d times", i, atomic_load(&k.handled[i]));
	}
	queue_stats(f->c, "pool", &qs);
	assert_int_equal(qs.acked_total, 200);
	assert_int_equal(qs.ready, 0);
	assert_int_equal(qs.in_flight, 0);
	assert_int_equal(qs.nacked_total, 0);
}

static mq_outcome h_a(void *arg, const mq_message *m, mq_result *r)
{
	(void)r;
	(void)m;
	atomic_fetch_add(&((struct counts *)arg)->by_a, 1);
	return MQ_OUTCOME_DONE;
}

static mq_outcome h_b(void *arg, const mq_message *m, mq_result *r)
{
	(void)r;
	(void)m;
	atomic_fetch_add(&((struct counts *)arg)->by_b, 1);
	return MQ_OUTCOME_DONE;
}

static mq_outcome h_dflt(void *arg, const mq_message *m, mq_result *r)
{
	(void)r;
	(void)m;
	atomic_fetch_add(&((struct counts *)arg)->by_default, 1);
	return MQ_OUTCOME_DONE;
}

static mq_outcome h_fail(void *arg, const mq_message *m, mq_result *r)
{
	(void)arg;
	(void)m;
	snprintf(r->error, sizeof(r->error), "bad input");
	return MQ_OUTCOME_FAIL;
}

/* Per-type handlers, the default for the rest; without a default an
 * unknown type is nacked ("no handler"); FAIL terms the message (dead at
 * once, the handler's error as the reason). */
static void test_consumer_routing(void **state)
{
	struct fixture *f = *state;
	static struct counts k;
	const char *qs2[] = {"route2"};
	mq_consumer_opts co;
	mq_consumer_stats s;
	mq_queue_stats qs;
	mq_consumer *cons;
	uint64_t until;

	memset(&k, 0, sizeof(k));
	make_queue(f->c, "route", 0, 0);
	for (int i = 0; i < 5; i++)
		push_typed(f->c, "route", i, "a");
	for (int i = 5; i < 8; i++)
		push_typed(f->c, "route", i, "b");
	for (int i = 8; i < 10; i++)
		push_typed(f->c, "route", i, "other");
	push_typed(f->c, "route", 10, NULL);
	cons = open_consumer(f->c, "route", 2, -1, 0);
	assert_mq_ok(mq_consumer_handle(cons, "a", h_a, &k));
	assert_mq_ok(mq_consumer_handle(cons, "b", h_b, &k));
	assert_mq_ok(mq_consumer_handle_default(cons, h_dflt, &k));
	assert_mq_ok(mq_consumer_start(cons));
	s = wait_acked(cons, 11, 20000);
	mq_consumer_close(cons);
	assert_int_equal(s.acked, 11);
	assert_int_equal(atomic_load(&k.by_a), 5);
	assert_int_equal(atomic_load(&k.by_b), 3);
	assert_int_equal(atomic_load(&k.by_default), 3);

	/* Two queues, max_attempts 1 so a nack sends the message dead: an
	 * unhandled type and a FAIL outcome. */
	make_queue(f->c, "route2", 0, 1);
	push_typed(f->c, "route2", 0, "unknown");
	push_typed(f->c, "route2", 1, "bad");
	push_typed(f->c, "route", 2, "a");
	mq_consumer_opts_init(&co);
	const char *both[] = {"route", "route2"};
	co.queues = both;
	co.n_queues = 2;
	co.wait_ms = 200;
	assert_mq_ok(mq_consumer_open(&cons, f->c, &co));
	assert_mq_ok(mq_consumer_handle(cons, "a", h_a, &k));
	assert_mq_ok(mq_consumer_handle(cons, "bad", h_fail, &k));
	assert_mq_ok(mq_consumer_start(cons));
	until = mqtest_now_ms() + 20000;
	do {
		sleep_ms(10);
		mq_consumer_stats_get(cons, &s);
	} while ((s.failed < 2 || s.acked < 1) && mqtest_now_ms() < until);
	mq_consumer_close(cons);
	assert_int_equal(s.failed, 2);
	assert_int_equal(s.acked, 1);
	assert_int_equal(atomic_load(&k.by_a), 6);
	queue_stats(f->c, qs2[0], &qs);
	assert_int_equal(qs.dead, 2);
	assert_int_equal(qs.ready, 0);
	/* The FAIL one was termed, not nacked: its reason is the handler's. */
	mq_list_opts lo = {.state = MQ_STATE_DEAD};
	mq_message *dead[4];
	size_t nd = 0;
	int termed = 0;
	assert_mq_ok(mq_message_list(f->c, qs2[0], &lo, dead, 4, &nd, NULL, NULL));
	assert_int_equal(nd, 2);
	for (size_t i = 0; i < nd; i++) {
		if (strcmp(mq_message_type(dead[i]), "bad") == 0) {
			assert_string_equal(mq_message_dead_reason(dead[i]), "termed: bad input");
			termed++;
		}
		mq_message_free(dead[i]);
	}
	assert_int_equal(termed, 1);
}

static mq_outcome h_retry_once(void *arg, const mq_message *m, mq_result *r)
{
	struct counts *k = arg;

	record(k, m);
	if (mq_message_attempts(m) == 1) {
		atomic_store(&k->first_ms, mqtest_now_ms());
		r->delay_ms = 400;
		snprintf(r->error, sizeof(r->error), "try later");
		return MQ_OUTCOME_RETRY;
	}
	atomic_store(&k->second_ms, mqtest_now_ms());
	return MQ_OUTCOME_DONE;
}

static void test_consumer_retry_then_done(void **state)
{
	struct fixture *f = *state;
	static struct counts k;
	mq_consumer_stats s;
	mq_queue_stats qs;
	mq_consumer *cons;

	memset(&k, 0, sizeof(k));
	make_queue(f->c, "retry", 0, 5);
	push_typed(f->c, "retry", 0, NULL);
	cons = open_consumer(f->c, "retry", 2, -1, 0);
	assert_mq_ok(mq_consumer_handle_default(cons, h_retry_once, &k));
	assert_mq_ok(mq_consumer_start(cons));
	s = wait_acked(cons, 1, 20000);
	mq_consumer_close(cons);
	assert_int_equal(s.acked, 1);
	assert_int_equal(s.retried, 1);
	assert_int_equal(atomic_load(&k.calls), 2);
	assert_int_equal(atomic_load(&k.max_attempts_seen), 2);
	assert_true(atomic_load(&k.second_ms) - atomic_load(&k.first_ms) >= 350);
	queue_stats(f->c, "retry", &qs);
	assert_int_equal(qs.acked_total, 1);
	assert_int_equal(qs.nacked_total, 1);
}

static mq_outcome h_snooze_once(void *arg, const mq_message *m, mq_result *r)
{
	struct counts *k = arg;

	record(k, m);
	if (atomic_load(&k->calls) == 1) {
		atomic_store(&k->first_ms, mqtest_now_ms());
		r->delay_ms = 400;
		return MQ_OUTCOME_SNOOZE;
	}
	atomic_store(&k->second_ms, mqtest_now_ms());
	return MQ_OUTCOME_DONE;
}

/* SNOOZE: back after the delay without spending an attempt, so even a
 * queue with max_attempts 1 delivers it again instead of killing it. */
static void test_consumer_snooze(void **state)
{
	struct fixture *f = *state;
	static struct counts k;
	mq_consumer_stats s;
	mq_queue_stats qs;
	mq_consumer *cons;

	memset(&k, 0, sizeof(k));
	make_queue(f->c, "snooze", 0, 1);
	push_typed(f->c, "snooze", 0, NULL);
	cons = open_consumer(f->c, "snooze", 2, -1, 0);
	assert_mq_ok(mq_consumer_handle_default(cons, h_snooze_once, &k));
	assert_mq_ok(mq_consumer_start(cons));
	s = wait_acked(cons, 1, 20000);
	mq_consumer_close(cons);
	assert_int_equal(s.acked, 1);
	assert_int_equal(s.snoozed, 1);
	assert_int_equal(s.retried, 0);
	assert_int_equal(s.failed, 0);
	assert_int_equal(atomic_load(&k.calls), 2);
	assert_true(atomic_load(&k.second_ms) - atomic_load(&k.first_ms) >= 350);
	queue_stats(f->c, "snooze", &qs);
	assert_int_equal(qs.acked_total, 1);
	assert_int_equal(qs.dead_total, 0);
	assert_int_equal(qs.dead, 0);
}

/* A 1.5 s job on a 600 ms lease: the heartbeat keeps it leased. */
static void test_consumer_heartbeat_extends(void **state)
{
	struct fixture *f = *state;
	static struct counts k;
	mq_consumer_stats s;
	mq_queue_stats qs;
	mq_consumer *cons;

	memset(&k, 0, sizeof(k));
	k.sleep_ms = 1500;
	make_queue(f->c, "long", 0, 0);
	push_typed(f->c, "long", 0, NULL);
	/* Two workers: a redelivery would find an idle one. */
	cons = open_consumer(f->c, "long", 2, -1, 600);
	assert_mq_ok(mq_consumer_handle_default(cons, h_sleep, &k));
	assert_mq_ok(mq_consumer_start(cons));
	s = wait_acked(cons, 1, 20000);
	sleep_ms(700); /* time for a wrong redelivery to show */
	mq_consumer_stats_get(cons, &s);
	mq_consumer_close(cons);
	assert_int_equal(s.acked, 1);
	assert_true(s.extended >= 1);
	assert_int_equal(s.errors, 0);
	assert_int_equal(atomic_load(&k.calls), 1);
	assert_int_equal(atomic_load(&k.max_attempts_seen), 1);
	queue_stats(f->c, "long", &qs);
	assert_int_equal(qs.acked_total, 1);
	assert_int_equal(qs.expired_total, 0);
	assert_int_equal(qs.in_flight, 0);
}

/* Stop with a slow handler: running ones finish and are acked, prefetched
 * ones are nacked and ready at once; nothing is lost. */
static void test_consumer_graceful_stop(void **state)
{
	struct fixture *f = *state;
	static struct counts k;
	mq_message *msgs[64];
	mq_pull_opts po = {0};
	mq_consumer_stats s;
	mq_queue_stats qs;
	mq_consumer *cons;
	uint64_t until, t0;
	size_t n = 0;

	memset(&k, 0, sizeof(k));
	k.sleep_ms = 400;
	make_queue(f->c, "stop", 0, 0);
	push_n(f->c, "stop", 20, NULL);
	cons = open_consumer(f->c, "stop", 2, 4, 0);
	assert_mq_ok(mq_consumer_handle_default(cons, h_sleep, &k));
	assert_mq_ok(mq_consumer_start(cons));
	until = mqtest_now_ms() + 10000;
	do {
		sleep_ms(5);
		mq_consumer_stats_get(cons, &s);
	} while ((s.in_progress < 2 || s.received < 6) && mqtest_now_ms() < until);
	assert_int_equal(s.in_progress, 2);
	/* Never more than workers + prefetch leases held. */
	assert_true(s.received >= 6 && s.received - s.acked <= 6);
	t0 = mqtest_now_ms();
	assert_mq_ok(mq_consumer_stop(cons, 5000));
	assert_true(mqtest_now_ms() - t0 < 3000);
	mq_consumer_stats_get(cons, &s);
	mq_consumer_close(cons);
	assert_int_equal(s.in_progress, 0);
	assert_true(s.acked >= 2);
	assert_int_equal((uint64_t)atomic_load(&k.calls), s.acked);

	queue_stats(f->c, "stop", &qs);
	assert_int_equal(qs.in_flight, 0);
	assert_int_equal(qs.acked_total, s.acked);
	assert_int_equal(qs.acked_total + qs.ready, 20);
	/* The nacked ones are pullable at once. */
	assert_mq_ok(mq_pull(f->c, "stop", &po, msgs, 64, &n));
	assert_int_equal(n, 20 - s.acked);
	for (size_t i = 0; i < n; i++) {
		assert_mq_ok(mq_ack(f->c, msgs[i]));
		mq_message_free(msgs[i]);
	}
}

/* A stop deadline shorter than the handler: DEADLINE_EXCEEDED, the
 * handler's outcome is still sent, close waits for it. */
static void test_consumer_stop_deadline(void **state)
{
	struct fixture *f = *state;
	static struct counts k;
	mq_consumer_stats s;
	mq_queue_stats qs;
	mq_consumer *cons;
	uint64_t until;

	memset(&k, 0, sizeof(k));
	k.sleep_ms = 800;
	make_queue(f->c, "stopdl", 0, 0);
	push_n(f->c, "stopdl", 1, NULL);
	cons = open_consumer(f->c, "stopdl", 1, 0, 0);
	assert_mq_ok(mq_consumer_handle_default(cons, h_sleep, &k));
	assert_mq_ok(mq_consumer_start(cons));
	until = mqtest_now_ms() + 10000;
	do {
		sleep_ms(5);
		mq_consumer_stats_get(cons, &s);
	} while (s.in_progress < 1 && mqtest_now_ms() < until);
	assert_int_equal(mq_consumer_stop(cons, 50), MQ_DEADLINE_EXCEEDED);
	mq_consumer_close(cons); /* waits for the handler */
	assert_int_equal(atomic_load(&k.calls), 1);
	queue_stats(f->c, "stopdl", &qs);
	assert_int_equal(qs.acked_total, 1);
}

/* Throughput of 4 workers with a no-op handler (printed, not asserted). */
static void test_consumer_throughput(void **state)
{
	struct fixture *f = *state;
	static struct counts k;
	mq_consumer_stats s;
	mq_consumer *cons;
	uint64_t t0, dt;

	memset(&k, 0, sizeof(k));
	make_queue(f->c, "tput", 0, 0);
	push_n(f->c, "tput", 2000, NULL);
	cons = open_consumer(f->c, "tput", 4, -1, 0);
	assert_mq_ok(mq_consumer_handle_default(cons, h_noop, &k));
	t0 = mqtest_now_ms();
	assert_mq_ok(mq_consumer_start(cons));
	s = wait_acked(cons, 2000, 60000);
	dt = mqtest_now_ms() - t0;
	mq_consumer_close(cons);
	assert_int_equal(s.acked, 2000);
	print_message("consumer throughput: 2000 messages, 4 workers, no-op handler: %llu ms, "
	              "%.0f msg/s\n",
	              (unsigned long long)dt, 2000.0 * 1000.0 / (double)(dt > 0 ? dt : 1));
}

/* mqd killed mid-run and started again: the consumer backs off, reports
 * errors, and every message is eventually handled (at least once). */
static void test_consumer_broker_restart(void **state)
{
	static struct counts k;
	mqtest_broker b;
	mq_client_opts opts;
	mq_client *c = NULL;
	mq_consumer_stats s;
	mq_queue_stats qs;
	mq_consumer *cons;
	uint64_t until;
	int n = 300, errs_before;

	(void)state;
	memset(&k, 0, sizeof(k));
	k.sleep_ms = 2;
	mqtest_broker_start(&b, NULL);
	mq_client_opts_init(&opts);
	opts.connect_timeout_ms = 5000;
	opts.timeout_ms = 1000;
	assert_mq_ok(mq_client_open(&c, b.url, &opts));
	make_queue(c, "rs", 0, 100);
	push_n(c, "rs", n, NULL);
	errs_before = atomic_load(&on_error_calls);
	/* Short leases so what was leased at the kill comes back soon. */
	cons = open_consumer(c, "rs", 4, -1, 1000);
	assert_mq_ok(mq_consumer_handle_default(cons, h_sleep, &k));
	assert_mq_ok(mq_consumer_start(cons));
	s = wait_acked(cons, 50, 20000);
	assert_true(s.acked >= 50);
	mqtest_broker_kill(&b);
	sleep_ms(500); /* the consumer finds no broker for a while */
	mqtest_broker_restart(&b, NULL);

	until = mqtest_now_ms() + 60000;
	for (;;) {
		queue_stats(c, "rs", &qs);
		if (qs.ready + qs.delayed + qs.in_flight == 0 || mqtest_now_ms() > until)
			break;
		sleep_ms(50);
	}
	assert_mq_ok(mq_consumer_stop(cons, 5000));
	mq_consumer_stats_get(cons, &s);
	mq_consumer_close(cons);
	mq_client_close(c);
	mqtest_broker_cleanup(&b);

	assert_int_equal(qs.ready + qs.delayed + qs.in_flight, 0);
	assert_int_equal(qs.dead, 0);
	for (int i = 0; i < n; i++) {
		if (atomic_load(&k.handled[i]) < 1)
			fail_msg("message %d never handled", i);
	}
	assert_true(s.errors > 0);
	assert_true(atomic_load(&on_error_calls) > errs_before);
	/* Backing off, not spinning: 0.5 s down is a handful of errors. */
	if (s.errors > 200)
		fail_msg("%llu errors: the fetcher spins", (unsigned long long)s.errors);
	print_message("broker restart: %d messages, %d handler calls, %llu errors reported\n", n,
	              atomic_load(&k.calls), (unsigned long long)s.errors);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_consumer_options),
	    cmocka_unit_test(test_consumer_pool_acks_all),
	    cmocka_unit_test(test_consumer_routing),
	    cmocka_unit_test(test_consumer_snooze),
	    cmocka_unit_test(test_consumer_retry_then_done),
	    cmocka_unit_test(test_consumer_heartbeat_extends),
	    cmocka_unit_test(test_consumer_graceful_stop),
	    cmocka_unit_test(test_consumer_stop_deadline),
	    cmocka_unit_test(test_consumer_throughput),
	    cmocka_unit_test(test_consumer_broker_restart),
	};

	return cmocka_run_group_tests_name("consumer", tests, group_setup, group_teardown);
}
