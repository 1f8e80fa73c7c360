/* SPDX-License-Identifier: MIT */
/* test_client.c: libmqclient against the real mqd (started by mqtest on an
 * ipc:// address in a temp dir): round trips, leases, dedup, queue admin,
 * errors, many threads on one client, and an unreachable broker. One broker
 * serves the whole group; each test uses its own queue names. Timing
 * bounds are loose (noisy 2-core VMs) but each still tells the behaviour
 * apart from its absence. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest.h"

/* As mqtest.h's, plus the library's reason (mq_errmsg) for the failure. */
#undef assert_mq_ok
#define assert_mq_ok(expr)                                                                         \
	do {                                                                                       \
		int rv_ = (expr);                                                                  \
		if (rv_ != 0)                                                                      \
			fail_msg("%s = %s: %s", #expr, mq_status_name(rv_), mq_errmsg());          \
	} while (0)
#undef assert_mq_status
#define assert_mq_status(expr, want)                                                               \
	do {                                                                                       \
		int rv_ = (expr);                                                                  \
		if (rv_ != (int)(want))                                                            \
			fail_msg("%s = %s (%s), want %s", #expr, mq_status_name(rv_), mq_errmsg(), \
			         mq_status_name(want));                                            \
	} while (0)

struct fixture {
	mqtest_broker broker;
	mq_client *c;
};

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

/* make_queue creates a queue with the given lease and max attempts. */
static void make_queue(mq_client *c, const char *name, uint32_t lease_ms, uint32_t max_attempts)
{
	mq_queue_config cfg = {.lease_ms = lease_ms, .max_attempts = max_attempts};
	bool created = false;

	assert_mq_ok(mq_queue_create(c, name, &cfg, false, &created));
	assert_true(created);
}

static void push_text(mq_client *c, const char *queue, const char *text, uint64_t *id)
{
	assert_mq_ok(mq_push(c, queue, text, strlen(text), NULL, id, NULL));
}

/* pull_one pulls at most one message, waiting up to wait_ms. */
static mq_message *pull_one(mq_client *c, const char *queue, uint32_t wait_ms)
{
	mq_pull_opts po = {.wait_ms = wait_ms};
	mq_message *m = NULL;
	size_t n = 0;

	assert_mq_ok(mq_pull(c, queue, &po, &m, 1, &n));
	return n == 1 ? m : NULL;
}

static void test_client_version_and_server(void **state)
{
	struct fixture *f = *state;
	mq_server_info si;
	uint64_t now = 0;

	assert_string_equal(mq_version(), MQ_TEST_VERSION);
	assert_mq_ok(mq_ping(f->c, &now));
	assert_true(now > 1600000000000ull); /* unix ms, after 2020 */
	assert_string_equal(mq_errmsg(), "");
	assert_mq_ok(mq_server_info_get(f->c, &si));
	assert_int_equal(si.protocol_version, MQ_PROTOCOL_VERSION);
	assert_true(si.version[0] != '\0');
	assert_true(si.storage_engine[0] != '\0');
	assert_true(si.default_lease_ms > 0);
	assert_true(si.max_payload_bytes > 0);
}

static void test_client_round_trip(void **state)
{
	struct fixture *f = *state;
	mq_header hs[] = {{"trace", "abc-123"}, {"lang", "fr"}};
	mq_push_opts po = {.dedup_key = "rt-1",
	                   .priority = 7,
	                   .type = "email.send",
	                   .headers = hs,
	                   .n_headers = 2};
	const char *body = "hello, queue";
	uint64_t id = 0, id2 = 0;
	bool dup = true;
	mq_message *m;
	mq_header h;
	size_t len;
	const char *p;

	make_queue(f->c, "rt", 0, 0);
	assert_mq_ok(mq_push(f->c, "rt", body, strlen(body), &po, &id, &dup));
	assert_false(dup);
	assert_true(id > 0);
	push_text(f->c, "rt", "low priority", &id2);
	assert_true(id2 > id);

	m = pull_one(f->c, "rt", 0);
	assert_non_null(m);
	assert_int_equal(mq_message_id(m), id); /* priority 7 beats 0 */
	assert_string_equal(mq_message_queue(m), "rt");
	p = mq_message_payload(m, &len);
	assert_int_equal(len, strlen(body));
	assert_memory_equal(p, body, len);
	assert_int_equal(p[len], '\0');
	assert_int_equal(mq_message_attempts(m), 1);
	assert_int_equal(mq_message_priority(m), 7);
	assert_string_equal(mq_message_type(m), "email.send");
	assert_string_equal(mq_message_dedup_key(m), "rt-1");
	assert_int_equal(mq_message_header_count(m), 2);
	h = mq_message_header(m, 0);
	assert_string_equal(h.key, "trace");
	assert_string_equal(h.value, "abc-123");
	h = mq_message_header(m, 1);
	assert_string_equal(h.key, "lang");
	assert_string_equal(h.value, "fr");
	h = mq_message_header(m, 2);
	assert_null(h.key);
	assert_null(h.value);
	assert_true(mq_message_enqueued_ms(m) > 0);
	assert_true(mq_message_lease_expiry_ms(m) > mq_message_enqueued_ms(m));
	assert_mq_ok(mq_ack(f->c, m));
	/* Acking twice: the message is gone. */
	assert_mq_status(mq_ack(f->c, m), MQ_NOT_FOUND);
	assert_true(mq_errmsg()[0] != '\0');
	mq_message_free(m);

	m = pull_one(f->c, "rt", 0);
	assert_non_null(m);
	assert_int_equal(mq_message_id(m), id2);
	assert_string_equal(mq_message_type(m), "");
	assert_string_equal(mq_message_dedup_key(m), "");
	assert_int_equal(mq_message_header_count(m), 0);
	assert_mq_ok(mq_ack_id(f->c, "rt", mq_message_id(m), mq_message_lease_token(m)));
	mq_message_free(m);
	assert_null(pull_one(f->c, "rt", 0));
	mq_message_free(NULL);
}

static void test_client_binary_payloads(void **state)
{
	struct fixture *f = *state;
	unsigned char bin[256 * 4];
	const unsigned char *p;
	mq_message *msgs[4];
	size_t n, len;

	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 7);
	make_queue(f->c, "bin", 0, 0);
	assert_mq_ok(mq_push(f->c, "bin", bin, sizeof(bin), NULL, NULL, NULL));
	assert_mq_ok(mq_push(f->c, "bin", NULL, 0, NULL, NULL, NULL)); /* empty is fine */
	assert_mq_ok(mq_pull(f->c, "bin", NULL, msgs, 4, &n));
	assert_int_equal(n, 2);
	p = mq_message_payload(msgs[0], &len);
	assert_int_equal(len, sizeof(bin));
	assert_memory_equal(p, bin, sizeof(bin));
	assert_int_equal(p[len], 0);
	p = mq_message_payload(msgs[1], &len);
	assert_int_equal(len, 0);
	assert_int_equal(p[0], 0);
	for (size_t i = 0; i < n; i++) {
		assert_mq_ok(mq_ack(f->c, msgs[i]));
		mq_message_free(msgs[i]);
	}
}

static void test_client_empty_pull_is_fast(void **state)
{
	struct fixture *f = *state;
	mq_message *m = NULL;
	uint64_t t0;
	size_t n = 99;

	make_queue(f->c, "empty", 0, 0);
	t0 = mqtest_now_ms();
	assert_mq_ok(mq_pull(f->c, "empty", NULL, &m, 1, &n));
	assert_int_equal(n, 0);
	assert_true(mqtest_now_ms() - t0 < 1000);
}

struct poller {
	mq_client *c;
	mq_status st;
	size_t n;
	uint64_t elapsed_ms;
	uint64_t id;
};

static void *poll_thread(void *arg)
{
	struct poller *p = arg;
	mq_pull_opts po = {.wait_ms = 5000};
	mq_message *m = NULL;
	uint64_t t0 = mqtest_now_ms();

	p->st = mq_pull(p->c, "longpoll", &po, &m, 1, &p->n);
	p->elapsed_ms = mqtest_now_ms() - t0;
	if (p->st == MQ_OK && p->n == 1) {
		p->id = mq_message_id(m);
		p->st = mq_ack(p->c, m);
		mq_message_free(m);
	}
	return NULL;
}

static void test_client_long_poll_wakes_up(void **state)
{
	struct fixture *f = *state;
	struct poller p = {.c = f->c};
	pthread_t th;
	uint64_t id;

	make_queue(f->c, "longpoll", 0, 0);
	assert_int_equal(pthread_create(&th, NULL, poll_thread, &p), 0);
	usleep(200 * 1000);
	push_text(f->c, "longpoll", "wake up", &id);
	pthread_join(th, NULL);
	assert_mq_ok(p.st);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.id, id);
	/* Pushed after ~200 ms; a poller that slept out its 5 s wait fails. */
	assert_true(p.elapsed_ms >= 150);
	assert_true(p.elapsed_ms < 3000);
}

static void test_client_long_poll_times_out_empty(void **state)
{
	struct fixture *f = *state;
	mq_pull_opts po = {.wait_ms = 400};
	mq_message *m = NULL;
	uint64_t t0, dt;
	size_t n = 99;

	make_queue(f->c, "longpoll-empty", 0, 0);
	t0 = mqtest_now_ms();
	assert_mq_ok(mq_pull(f->c, "longpoll-empty", &po, &m, 1, &n));
	dt = mqtest_now_ms() - t0;
	assert_int_equal(n, 0);
	assert_true(dt >= 300);
	assert_true(dt < 4000);
}

static void test_client_nack(void **state)
{
	struct fixture *f = *state;
	mq_message *m;
	uint64_t id, t0;

	make_queue(f->c, "nack", 0, 10);
	push_text(f->c, "nack", "retry me", &id);

	/* Immediate nack: ready again at once, as the next attempt. */
	m = pull_one(f->c, "nack", 0);
	assert_non_null(m);
	assert_mq_ok(mq_nack(f->c, m, 0, "transient"));
	/* The old lease is over. */
	assert_int_not_equal(mq_ack(f->c, m), MQ_OK);
	mq_message_free(m);
	m = pull_one(f->c, "nack", 0);
	assert_non_null(m);
	assert_int_equal(mq_message_id(m), id);
	assert_int_equal(mq_message_attempts(m), 2);

	/* Nack with a delay: not pullable before it, pullable after. */
	t0 = mqtest_now_ms();
	assert_mq_ok(mq_nack(f->c, m, 1000, NULL));
	mq_message_free(m);
	m = pull_one(f->c, "nack", 0);
	if (m != NULL && mqtest_now_ms() - t0 < 900)
		fail_msg("delayed message delivered after %llu ms",
		         (unsigned long long)(mqtest_now_ms() - t0));
	if (m == NULL)
		m = pull_one(f->c, "nack", 5000);
	assert_non_null(m);
	assert_true(mqtest_now_ms() - t0 >= 900);
	assert_int_equal(mq_message_id(m), id);
	assert_int_equal(mq_message_attempts(m), 3);
	assert_mq_ok(mq_ack(f->c, m));
	mq_message_free(m);
}

static void test_client_lease_expiry_redelivers(void **state)
{
	struct fixture *f = *state;
	mq_message *m1, *m2;
	mq_queue_info qi;
	uint64_t id;

	make_queue(f->c, "expiry", 300, 5);
	push_text(f->c, "expiry", "slow job", &id);
	m1 = pull_one(f->c, "expiry", 0);
	assert_non_null(m1);
	assert_int_equal(mq_message_attempts(m1), 1);
	/* Not acked: after 300 ms the lease ends and it is delivered again. */
	m2 = pull_one(f->c, "expiry", 5000);
	assert_non_null(m2);
	assert_int_equal(mq_message_id(m2), id);
	assert_int_equal(mq_message_attempts(m2), 2);
	assert_int_not_equal(mq_message_lease_token(m1), mq_message_lease_token(m2));
	/* The first consumer's token is stale now. */
	assert_mq_status(mq_ack(f->c, m1), MQ_FAILED_PRECONDITION);
	assert_true(mq_errmsg()[0] != '\0');
	assert_mq_status(mq_extend_lease(f->c, m1, 1000), MQ_FAILED_PRECONDITION);
	assert_mq_ok(mq_ack(f->c, m2));
	assert_mq_ok(mq_queue_get(f->c, "expiry", &qi));
	assert_true(qi.stats.expired_total >= 1);
	assert_int_equal(qi.stats.acked_total, 1);
	mq_message_free(m1);
	mq_message_free(m2);
}

static void test_client_extend_lease(void **state)
{
	struct fixture *f = *state;
	uint64_t id, before, expiry = 0;
	mq_message *m;

	make_queue(f->c, "extend", 300, 5);
	push_text(f->c, "extend", "long job", &id);
	m = pull_one(f->c, "extend", 0);
	assert_non_null(m);
	before = mq_message_lease_expiry_ms(m);
	assert_mq_ok(mq_extend_lease(f->c, m, 5000));
	assert_true(mq_message_lease_expiry_ms(m) >= before + 4000);
	/* Past the original 300 ms lease, it is still ours. */
	usleep(800 * 1000);
	assert_null(pull_one(f->c, "extend", 0));
	assert_mq_ok(
	    mq_extend_lease_id(f->c, "extend", id, mq_message_lease_token(m), 5000, &expiry));
	assert_true(expiry >= before);
	assert_mq_ok(mq_ack(f->c, m));
	mq_message_free(m);
}

static void test_client_max_attempts_dead(void **state)
{
	struct fixture *f = *state;
	mq_queue_info qi;
	mq_message *m;
	uint64_t id;

	make_queue(f->c, "dead", 0, 2);
	push_text(f->c, "dead", "poison", &id);
	for (int i = 1; i <= 2; i++) {
		m = pull_one(f->c, "dead", 0);
		assert_non_null(m);
		assert_int_equal(mq_message_attempts(m), i);
		assert_mq_ok(mq_nack(f->c, m, 0, "boom"));
		mq_message_free(m);
	}
	assert_null(pull_one(f->c, "dead", 0));
	assert_mq_ok(mq_queue_get(f->c, "dead", &qi));
	assert_int_equal(qi.stats.dead, 1);
	assert_int_equal(qi.stats.ready, 0);
	assert_int_equal(qi.stats.in_flight, 0);
	assert_int_equal(qi.stats.dead_total, 1);
	assert_int_equal(qi.config.max_attempts, 2);
}

static void test_client_dedup(void **state)
{
	struct fixture *f = *state;
	mq_push_opts ign = {.dedup_key = "k1"};
	mq_push_opts rep = {.dedup_key = "k2", .dedup_mode = MQ_DEDUP_REPLACE};
	uint64_t id1, id2, id3, id4;
	bool dup;
	mq_message *m;
	mq_queue_info qi;

	make_queue(f->c, "dedup", 0, 0);
	assert_mq_ok(mq_push(f->c, "dedup", "first", 5, &ign, &id1, &dup));
	assert_false(dup);
	assert_mq_ok(mq_push(f->c, "dedup", "second", 6, &ign, &id2, &dup));
	assert_true(dup);
	assert_int_equal(id1, id2);
	m = pull_one(f->c, "dedup", 0);
	assert_non_null(m);
	assert_string_equal(mq_message_payload(m, NULL), "first");
	assert_mq_ok(mq_ack(f->c, m));
	mq_message_free(m);

	assert_mq_ok(mq_push(f->c, "dedup", "old", 3, &rep, &id3, &dup));
	assert_false(dup);
	assert_mq_ok(mq_push(f->c, "dedup", "new", 3, &rep, &id4, &dup));
	assert_true(dup);
	assert_int_equal(id3, id4);
	m = pull_one(f->c, "dedup", 0);
	assert_non_null(m);
	assert_int_equal(mq_message_id(m), id3);
	assert_string_equal(mq_message_payload(m, NULL), "new");
	assert_mq_ok(mq_ack(f->c, m));
	mq_message_free(m);
	assert_null(pull_one(f->c, "dedup", 0));

	/* Once acked, the key is free again. */
	assert_mq_ok(mq_push(f->c, "dedup", "again", 5, &ign, &id2, &dup));
	assert_false(dup);
	assert_true(id2 != id1);
	assert_mq_ok(mq_queue_get(f->c, "dedup", &qi));
	assert_int_equal(qi.stats.deduplicated_total, 2);
}

static void test_client_queue_admin(void **state)
{
	struct fixture *f = *state;
	mq_queue_config cfg = {.lease_ms = 12345, .max_attempts = 7};
	mq_queue_info qi, *all;
	bool created = true;
	uint64_t purged = 99;
	size_t n, a = SIZE_MAX, b = SIZE_MAX;
	mq_message *m;

	assert_mq_ok(mq_queue_create(f->c, "admin-b", &cfg, false, &created));
	assert_true(created);
	assert_mq_status(mq_queue_create(f->c, "admin-b", &cfg, false, &created),
	                 MQ_ALREADY_EXISTS);
	assert_true(mq_errmsg()[0] != '\0');
	assert_mq_ok(mq_queue_create(f->c, "admin-b", NULL, true, &created));
	assert_false(created);
	assert_string_equal(mq_errmsg(), "");
	make_queue(f->c, "admin-a", 0, 0);

	assert_mq_ok(mq_queue_get(f->c, "admin-b", &qi));
	assert_string_equal(qi.name, "admin-b");
	assert_int_equal(qi.config.lease_ms, 12345);
	assert_int_equal(qi.config.max_attempts, 7);
	assert_true(qi.created_ms > 0);

	assert_mq_ok(mq_queue_list(f->c, &all, &n));
	for (size_t i = 0; i < n; i++) {
		if (strcmp(all[i].name, "admin-a") == 0)
			a = i;
		if (strcmp(all[i].name, "admin-b") == 0)
			b = i;
		if (i > 0)
			assert_true(strcmp(all[i - 1].name, all[i].name) < 0);
	}
	assert_true(a != SIZE_MAX && b != SIZE_MAX && a < b);
	assert_int_equal(all[b].config.lease_ms, 12345);
	mq_queue_list_free(all);
	mq_queue_list_free(NULL);

	/* Purge: ready and delayed messages, by state. */
	push_text(f->c, "admin-b", "r1", NULL);
	push_text(f->c, "admin-b", "r2", NULL);
	{
		mq_push_opts d = {.delay_ms = 60000};
		assert_mq_ok(mq_push(f->c, "admin-b", "d1", 2, &d, NULL, NULL));
	}
	m = pull_one(f->c, "admin-b", 0);
	assert_non_null(m);
	assert_mq_ok(mq_queue_get(f->c, "admin-b", &qi));
	assert_int_equal(qi.stats.ready, 1);
	assert_int_equal(qi.stats.delayed, 1);
	assert_int_equal(qi.stats.in_flight, 1);
	assert_mq_ok(mq_queue_purge(f->c, "admin-b", MQ_STATE_DELAYED, &purged));
	assert_int_equal(purged, 1);
	assert_mq_ok(mq_queue_purge(f->c, "admin-b", 0, &purged));
	assert_int_equal(purged, 2);
	/* The leased message was purged: its ack finds nothing. */
	assert_mq_status(mq_ack(f->c, m), MQ_NOT_FOUND);
	mq_message_free(m);
	assert_mq_status(mq_queue_purge(f->c, "admin-b", 0x10, NULL), MQ_INVALID_ARGUMENT);

	assert_mq_ok(mq_queue_delete(f->c, "admin-b"));
	assert_mq_status(mq_queue_get(f->c, "admin-b", &qi), MQ_NOT_FOUND);
	assert_true(mq_errmsg()[0] != '\0');
	assert_mq_status(mq_queue_delete(f->c, "admin-b"), MQ_NOT_FOUND);
	assert_mq_ok(mq_queue_delete(f->c, "admin-a"));
}

static void test_client_errors(void **state)
{
	struct fixture *f = *state;
	char longname[MQ_NAME_MAX + 2];
	mq_message *msgs[2];
	mq_queue_info qi;
	size_t n;

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_mq_status(mq_push(f->c, "bad name", "x", 1, NULL, NULL, NULL), MQ_INVALID_ARGUMENT);
	assert_true(strstr(mq_errmsg(), "bad name") != NULL);
	assert_mq_status(mq_push(f->c, "", "x", 1, NULL, NULL, NULL), MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_push(f->c, longname, "x", 1, NULL, NULL, NULL), MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_push(f->c, NULL, "x", 1, NULL, NULL, NULL), MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_queue_create(f->c, "a/b", NULL, false, NULL), MQ_INVALID_ARGUMENT);
	assert_true(mq_errmsg()[0] != '\0');
	assert_mq_status(mq_pull(f->c, "bad!", NULL, msgs, 1, &n), MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_queue_get(f->c, "", &qi), MQ_INVALID_ARGUMENT);

	make_queue(f->c, "errs", 0, 0);
	assert_mq_status(mq_push(f->c, "errs", NULL, 3, NULL, NULL, NULL), MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_pull(f->c, "errs", NULL, msgs, 0, &n), MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_pull(f->c, "errs", NULL, msgs, 1001, &n), MQ_INVALID_ARGUMENT);
	assert_true(mq_errmsg()[0] != '\0');

	assert_mq_status(mq_queue_get(f->c, "no-such-queue", &qi), MQ_NOT_FOUND);
	assert_true(mq_errmsg()[0] != '\0');
	assert_mq_status(mq_ack_id(f->c, "errs", 987654321, 1), MQ_NOT_FOUND);
	assert_mq_status(mq_extend_lease_id(f->c, "errs", 987654321, 1, 0, NULL), MQ_NOT_FOUND);
	/* Success clears the message. */
	assert_mq_ok(mq_ping(f->c, NULL));
	assert_string_equal(mq_errmsg(), "");
}

#define NTHREADS 8
#define NPUSHES  200

struct pusher {
	mq_client *c;
	int idx;
	mq_status st;
	char err[256];
	uint64_t ids[NPUSHES];
};

static void *push_thread(void *arg)
{
	struct pusher *p = arg;
	char buf[32];

	for (int i = 0; i < NPUSHES; i++) {
		int len = snprintf(buf, sizeof(buf), "t%d-%d", p->idx, i);

		p->st = mq_push(p->c, "threads", buf, (size_t)len, NULL, &p->ids[i], NULL);
		if (p->st != MQ_OK) {
			snprintf(p->err, sizeof(p->err), "%s", mq_errmsg());
			break;
		}
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_client_many_threads(void **state)
{
	struct fixture *f = *state;
	static struct pusher ps[NTHREADS];
	static uint64_t all[NTHREADS * NPUSHES];
	pthread_t th[NTHREADS];
	mq_queue_info qi;

	make_queue(f->c, "threads", 0, 0);
	for (int i = 0; i < NTHREADS; i++) {
		ps[i] = (struct pusher){.c = f->c, .idx = i};
		assert_int_equal(pthread_create(&th[i], NULL, push_thread, &ps[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NTHREADS; i++) {
		if (ps[i].st != MQ_OK)
			fail_msg("thread %d: %s: %s", i, mq_status_name(ps[i].st), ps[i].err);
		memcpy(&all[i * NPUSHES], ps[i].ids, sizeof(ps[i].ids));
	}
	qsort(all, NTHREADS * NPUSHES, sizeof(all[0]), cmp_u64);
	for (int i = 1; i < NTHREADS * NPUSHES; i++)
		assert_true(all[i - 1] < all[i]);
	assert_mq_ok(mq_queue_get(f->c, "threads", &qi));
	assert_int_equal(qi.stats.ready, NTHREADS * NPUSHES);
	assert_int_equal(qi.stats.pushed_total, NTHREADS * NPUSHES);

	/* Drain in batches, from the same client. */
	{
		static mq_message *msgs[1000];
		size_t n, total = 0;

		do {
			assert_mq_ok(mq_pull(f->c, "threads", NULL, msgs, 1000, &n));
			for (size_t i = 0; i < n; i++) {
				assert_mq_ok(mq_ack(f->c, msgs[i]));
				mq_message_free(msgs[i]);
			}
			total += n;
		} while (n > 0);
		assert_int_equal(total, NTHREADS * NPUSHES);
	}
}

/* The client reconnects by itself when the broker restarts. */
static void test_client_reconnects_after_restart(void **state)
{
	struct fixture *f = *state;
	mq_message *m;
	uint64_t id;

	make_queue(f->c, "restart", 0, 0);
	push_text(f->c, "restart", "survives", &id);
	assert_int_equal(mqtest_broker_stop(&f->broker), 0);
	mqtest_broker_restart(&f->broker, NULL);
	/* Same client, no reopen: the first call waits for the reconnect. */
	assert_mq_ok(mq_ping(f->c, NULL));
	m = pull_one(f->c, "restart", 0);
	assert_non_null(m);
	assert_int_equal(mq_message_id(m), id);
	assert_string_equal(mq_message_payload(m, NULL), "survives");
	assert_mq_ok(mq_ack(f->c, m));
	mq_message_free(m);
}

static void test_client_unreachable(void **state)
{
	struct fixture *f = *state;
	char url[400];
	mq_client_opts opts;
	mq_client *c = NULL;
	uint64_t t0, dt;
	mq_status st;

	snprintf(url, sizeof(url), "ipc://%s/nobody-here.sock", f->broker.dir);
	mq_client_opts_init(&opts);
	opts.timeout_ms = 500;
	/* connect_timeout_ms = 0: open succeeds, the call fails in time. */
	assert_mq_ok(mq_client_open(&c, url, &opts));
	t0 = mqtest_now_ms();
	st = mq_ping(c, NULL);
	dt = mqtest_now_ms() - t0;
	if (st != MQ_UNAVAILABLE && st != MQ_DEADLINE_EXCEEDED)
		fail_msg("ping = %s, want UNAVAILABLE or DEADLINE_EXCEEDED", mq_status_name(st));
	assert_true(mq_errmsg()[0] != '\0');
	assert_true(dt >= 400 && dt < 3000);
	st = mq_push(c, "q", "x", 1, NULL, NULL, NULL);
	assert_true(st == MQ_UNAVAILABLE || st == MQ_DEADLINE_EXCEEDED);
	mq_client_close(c);

	/* With a connect timeout, open itself says UNAVAILABLE. */
	c = NULL;
	opts.connect_timeout_ms = 300;
	t0 = mqtest_now_ms();
	assert_mq_status(mq_client_open(&c, url, &opts), MQ_UNAVAILABLE);
	assert_null(c);
	assert_true(mqtest_now_ms() - t0 < 3000);

	assert_mq_status(mq_client_open(&c, "nonsense://x", NULL), MQ_INVALID_ARGUMENT);
	assert_true(mq_errmsg()[0] != '\0');
	opts.timeout_ms = 0;
	assert_mq_status(mq_client_open(&c, url, &opts), MQ_INVALID_ARGUMENT);
	mq_client_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client_version_and_server),
	    cmocka_unit_test(test_client_round_trip),
	    cmocka_unit_test(test_client_binary_payloads),
	    cmocka_unit_test(test_client_empty_pull_is_fast),
	    cmocka_unit_test(test_client_long_poll_wakes_up),
	    cmocka_unit_test(test_client_long_poll_times_out_empty),
	    cmocka_unit_test(test_client_nack),
	    cmocka_unit_test(test_client_lease_expiry_redelivers),
	    cmocka_unit_test(test_client_extend_lease),
	    cmocka_unit_test(test_client_max_attempts_dead),
	    cmocka_unit_test(test_client_dedup),
	    cmocka_unit_test(test_client_queue_admin),
	    cmocka_unit_test(test_client_errors),
	    cmocka_unit_test(test_client_many_threads),
	    cmocka_unit_test(test_client_reconnects_after_restart),
	    cmocka_unit_test(test_client_unreachable),
	};

	return cmocka_run_group_tests_name("client", tests, group_setup, group_teardown);
}
