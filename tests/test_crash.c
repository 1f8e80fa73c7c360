/* SPDX-License-Identifier: MIT */
/*
 * test_crash.c: producers and consumers run against the real mqd while the
 * test kills it with SIGKILL at random moments and starts it again, many
 * times. From the clients' own records it checks:
 *  - every push answered OK is delivered (at least once) until acked;
 *  - no message whose ack was answered OK is ever delivered again (an ack
 *    whose reply was lost to a kill may or may not have been applied: only
 *    acks answered OK count);
 *  - no message appears that was never pushed (payloads carry a unique
 *    producer/sequence id), and a message keeps its id;
 *  - after the last restart and a full drain, the queue's stats add up:
 *    nothing left, pushed_total == acked_total == the distinct messages
 *    delivered, between the pushes answered OK and the pushes tried.
 * Worker threads only record; every assert runs on the main thread.
 *
 * Environment: MQ_CRASH_KILLS (default 15) and MQ_CRASH_SEED.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest.h"

#define QUEUE    "crash.jobs"
#define N_PROD   3
#define N_CONS   3
#define MAX_SEQ  20000
#define LEASE_MS 1500
#define DRAIN_MS 60000 /* bound of the final drain */
#define PULL_MAX 8

typedef struct rec {
	atomic_int tried;        /* a push call was made */
	atomic_int push_ok;      /* the push was answered OK */
	atomic_uint_fast64_t id; /* the id of the push answered OK, or of the first delivery */
	atomic_int deliveries;
	atomic_int acked_ok;           /* an ack was answered OK */
	atomic_uint_fast64_t acked_at; /* the stamp taken when that ack returned */
	atomic_int late;               /* delivered after an ack answered OK */
	atomic_int id_changed;         /* delivered under another id */
} rec;

static rec recs[N_PROD][MAX_SEQ];
static atomic_int stop_producers, stop_consumers;
static atomic_long n_push_ok, n_push_err, n_ack_ok, n_ack_err, n_deliveries;
static atomic_long n_unknown; /* payloads that no producer made */
/* stamps order the clients' events: a pull sent after an ack of the same
 * message was answered OK must not deliver it (a delivery merely processed
 * after that ack, by a slow consumer whose lease had run out, is fine). */
static atomic_uint_fast64_t stamp;
static char url[400];

static void client_open(mq_client **c)
{
	mq_client_opts o;

	mq_client_opts_init(&o);
	o.timeout_ms = 1500;
	o.connect_timeout_ms = 0;
	if (mq_client_open(c, url, &o) != MQ_OK)
		*c = NULL;
}

static void *producer(void *arg)
{
	int p = (int)(intptr_t)arg;
	mq_client *c;

	client_open(&c);
	if (c == NULL)
		return NULL;
	for (int seq = 0; seq < MAX_SEQ && !atomic_load(&stop_producers); seq++) {
		char body[64];
		uint64_t id = 0;
		rec *r = &recs[p][seq];

		snprintf(body, sizeof(body), "crash p=%d s=%d", p, seq);
		atomic_store(&r->tried, 1);
		if (mq_push(c, QUEUE, body, strlen(body), NULL, &id, NULL) == MQ_OK) {
			uint_fast64_t zero = 0;

			/* a consumer may have recorded the id first */
			if (!atomic_compare_exchange_strong(&r->id, &zero, id) && zero != id)
				atomic_store(&r->id_changed, 1);
			atomic_store(&r->push_ok, 1);
			atomic_fetch_add(&n_push_ok, 1);
		} else {
			atomic_fetch_add(&n_push_err, 1);
			usleep(20000); /* the broker is down: do not spin */
		}
	}
	mq_client_close(c);
	return NULL;
}

static rec *parse(const void *data, size_t len)
{
	char buf[64];
	int p, s;

	if (len >= sizeof(buf))
		return NULL;
	memcpy(buf, data, len);
	buf[len] = 0;
	if (sscanf(buf, "crash p=%d s=%d", &p, &s) != 2 || p < 0 || p >= N_PROD || s < 0 ||
	    s >= MAX_SEQ)
		return NULL;
	return &recs[p][s];
}

static void *consumer(void *arg)
{
	mq_client *c;
	mq_message *msgs[PULL_MAX];

	(void)arg;
	client_open(&c);
	if (c == NULL)
		return NULL;
	while (!atomic_load(&stop_consumers)) {
		mq_pull_opts po = {.wait_ms = 200, .lease_ms = LEASE_MS};
		size_t n = 0;
		uint64_t sent = atomic_fetch_add(&stamp, 1) + 1;

		if (mq_pull(c, QUEUE, &po, msgs, PULL_MAX, &n) != MQ_OK) {
			usleep(20000);
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			size_t len;
			const void *data = mq_message_payload(msgs[i], &len);
			rec *r = parse(data, len);
			uint64_t id = mq_message_id(msgs[i]);

			atomic_fetch_add(&n_deliveries, 1);
			if (r == NULL || !atomic_load(&r->tried)) {
				atomic_fetch_add(&n_unknown, 1);
			} else {
				uint_fast64_t zero = 0;

				atomic_fetch_add(&r->deliveries, 1);
				uint64_t at = atomic_load(&r->acked_at);

				if (at != 0 && at < sent)
					atomic_store(&r->late, 1);
				if (!atomic_compare_exchange_strong(&r->id, &zero, id) &&
				    zero != id)
					atomic_store(&r->id_changed, 1);
			}
			if (mq_ack(c, msgs[i]) == MQ_OK) {
				atomic_fetch_add(&n_ack_ok, 1);
				if (r != NULL) {
					uint_fast64_t zero = 0;

					atomic_store(&r->acked_ok, 1);
					atomic_compare_exchange_strong(
					    &r->acked_at, &zero, atomic_fetch_add(&stamp, 1) + 1);
				}
			} else {
				atomic_fetch_add(&n_ack_err, 1);
			}
			mq_message_free(msgs[i]);
		}
	}
	mq_client_close(c);
	return NULL;
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v != NULL && *v ? atoi(v) : def;
}

/* all_delivered tells whether every push answered OK was delivered. */
static bool all_delivered(void)
{
	for (int p = 0; p < N_PROD; p++)
		for (int s = 0; s < MAX_SEQ; s++)
			if (atomic_load(&recs[p][s].push_ok) &&
			    !atomic_load(&recs[p][s].deliveries))
				return false;
	return true;
}

static mqtest_broker b; /* a group fixture, so that a failure still stops mqd */

static int teardown(void **state)
{
	(void)state;
	mqtest_broker_cleanup(&b);
	return 0;
}

static void test_crash_kill9_loop(void **state)
{
	pthread_t prod[N_PROD], cons[N_CONS];
	int kills = env_int("MQ_CRASH_KILLS", 15);
	unsigned seed = (unsigned)env_int("MQ_CRASH_SEED", (int)time(NULL));
	mq_client *c = NULL;
	mq_queue_info qi;
	uint64_t t0 = mqtest_now_ms(), deadline;
	long tried = 0, push_ok = 0, distinct = 0, late = 0, id_changed = 0, lost = 0;
	long redeliveries;
	bool drained = false;

	(void)state;
	srand(seed);
	printf("crash: seed %u (MQ_CRASH_SEED), %d kills (MQ_CRASH_KILLS)\n", seed, kills);
	mqtest_broker_start(&b, "--default-max-attempts=1000000", NULL);
	snprintf(url, sizeof(url), "%s", b.url);
	for (int i = 0; i < N_PROD; i++)
		assert_int_equal(pthread_create(&prod[i], NULL, producer, (void *)(intptr_t)i), 0);
	for (int i = 0; i < N_CONS; i++)
		assert_int_equal(pthread_create(&cons[i], NULL, consumer, NULL), 0);

	for (int k = 0; k < kills; k++) {
		usleep((useconds_t)(100 + rand() % 500) * 1000u);
		mqtest_broker_kill(&b);
		usleep((useconds_t)(rand() % 100) * 1000u);
		mqtest_broker_restart(&b, "--default-max-attempts=1000000", NULL);
	}
	usleep(300000);
	atomic_store(&stop_producers, 1);
	for (int i = 0; i < N_PROD; i++)
		pthread_join(prod[i], NULL);

	/* Drain: consumers go on until every push answered OK was delivered
	 * and the queue holds nothing. (An ack whose reply a kill took may
	 * have been applied: then the message is gone without an ack answered
	 * OK; if it was not applied the message comes back when its lease
	 * ends. Either way the queue ends empty.) */
	{
		mq_client_opts o;

		mq_client_opts_init(&o);
		o.connect_timeout_ms = 5000;
		o.timeout_ms = 5000;
		assert_mq_ok(mq_client_open(&c, b.url, &o));
	}
	deadline = mqtest_now_ms() + DRAIN_MS;
	while (mqtest_now_ms() < deadline) {
		if (all_delivered() && mq_queue_get(c, QUEUE, &qi) == MQ_OK &&
		    qi.stats.ready == 0 && qi.stats.in_flight == 0 && qi.stats.delayed == 0) {
			drained = true;
			break;
		}
		usleep(100000);
	}
	atomic_store(&stop_consumers, 1);
	for (int i = 0; i < N_CONS; i++)
		pthread_join(cons[i], NULL);

	for (int p = 0; p < N_PROD; p++)
		for (int s = 0; s < MAX_SEQ; s++) {
			rec *r = &recs[p][s];

			tried += atomic_load(&r->tried);
			push_ok += atomic_load(&r->push_ok);
			distinct += atomic_load(&r->deliveries) > 0;
			late += atomic_load(&r->late);
			id_changed += atomic_load(&r->id_changed);
			if (atomic_load(&r->push_ok) && !atomic_load(&r->deliveries)) {
				if (lost < 5)
					printf("crash: p=%d s=%d pushed OK (id %" PRIu64
					       ") but never delivered\n",
					       p, s, (uint64_t)atomic_load(&r->id));
				lost++;
			}
		}
	redeliveries = atomic_load(&n_deliveries) - distinct;
	assert_mq_ok(mq_queue_get(c, QUEUE, &qi));
	printf("crash: %d kills in %.1f s; pushes: %ld tried, %ld answered OK, %ld failed; "
	       "deliveries %ld (%ld distinct messages, %ld redeliveries); acks: %ld OK, %ld "
	       "failed\n",
	       kills, (double)(mqtest_now_ms() - t0) / 1000.0, tried, push_ok,
	       atomic_load(&n_push_err), atomic_load(&n_deliveries), distinct, redeliveries,
	       atomic_load(&n_ack_ok), atomic_load(&n_ack_err));
	printf("crash: final stats: ready %" PRIu64 " delayed %" PRIu64 " in_flight %" PRIu64
	       " dead %" PRIu64 " pushed_total %" PRIu64 " acked_total %" PRIu64
	       " expired_total %" PRIu64 " (acks applied whose reply a kill took: %" PRId64 ")\n",
	       qi.stats.ready, qi.stats.delayed, qi.stats.in_flight, qi.stats.dead,
	       qi.stats.pushed_total, qi.stats.acked_total, qi.stats.expired_total,
	       (int64_t)qi.stats.acked_total - (int64_t)atomic_load(&n_ack_ok));
	mq_client_close(c);

	assert_int_equal(atomic_load(&n_unknown), 0); /* nothing that was never pushed */
	assert_int_equal(id_changed, 0);              /* a message keeps its id */
	assert_int_equal(late, 0);                    /* no delivery after an ack answered OK */
	assert_int_equal(lost, 0);                    /* every push answered OK got delivered */
	assert_true(drained);
	assert_true(push_ok > 0);
	assert_true(atomic_load(&n_ack_ok) > 0);
	/* the stats add up */
	assert_int_equal(qi.stats.ready + qi.stats.delayed + qi.stats.in_flight + qi.stats.dead, 0);
	assert_int_equal(qi.stats.pushed_total, qi.stats.acked_total);
	assert_int_equal(qi.stats.pushed_total, (uint64_t)distinct);
	assert_true(qi.stats.pushed_total >= (uint64_t)push_ok);
	assert_true(qi.stats.pushed_total <= (uint64_t)tried);
	assert_true(qi.stats.acked_total >= (uint64_t)atomic_load(&n_ack_ok));

	assert_int_equal(mqtest_broker_stop(&b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crash_kill9_loop),
	};
	return cmocka_run_group_tests_name("crash", tests, NULL, teardown);
}
