/* SPDX-License-Identifier: MIT */
/* test_async.c: pipelined pushes (<mq/async.h>) against the real mqd:
 * many pushes in flight from one thread, flush, synchronous and
 * asynchronous errors, the in-flight limit, a broker killed under load, and
 * close with calls in flight. Callbacks run on nng threads, so they only
 * record into atomics; every check is made on the test's thread after
 * mq_client_flush or mq_client_close. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#undef assert_mq_status
#define assert_mq_status(expr, want)                                                               \
	do {                                                                                       \
		int rv_ = (expr);                                                                  \
		if (rv_ != (int)(want))                                                            \
			fail_msg("%s = %s (%s), want %s", #expr, mq_status_name(rv_), mq_errmsg(), \
			         mq_status_name(want));                                            \
	} while (0)

/* rec is what the callback of one call saw. */
struct rec {
	atomic_int calls;
	atomic_int st;
	atomic_uint_fast64_t id;
};

static atomic_int total_calls;

static void rec_cb(void *arg, mq_status st, const mq_push_result *r)
{
	struct rec *rc = arg;

	atomic_store(&rc->st, (int)st);
	atomic_store(&rc->id, r != NULL ? r->id : UINT64_MAX);
	if (r == NULL || r->status != st)
		atomic_store(&rc->st, -1);
	atomic_fetch_add(&rc->calls, 1);
	atomic_fetch_add(&total_calls, 1);
}

static struct rec *recs_new(size_t n)
{
	struct rec *r = calloc(n, sizeof(*r));

	assert_non_null(r);
	atomic_store(&total_calls, 0);
	return r;
}

static mq_client *open_client(const char *url, int32_t timeout_ms)
{
	mq_client_opts opts;
	mq_client *c = NULL;

	mq_client_opts_init(&opts);
	opts.connect_timeout_ms = 5000;
	opts.timeout_ms = timeout_ms;
	assert_mq_ok(mq_client_open(&c, url, &opts));
	return c;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* held_broker starts mqd with the faultshim preloaded: while the file
 * hold[] exists, its commits wait in fsync (tests/faultshim.c). Holding a
 * commit keeps calls in flight however fast the broker is, without
 * stopping the process (SIGSTOP left nng 1.5.2's close hanging in mqd's
 * shutdown: nanomsg/nng#648). */
typedef struct held_broker {
	mqtest_broker b;
	char dir[256], hold[300], held[310];
} held_broker;

static void held_start(held_broker *h)
{
	char asan_old[512];

	mqtest_tmpdir(h->dir, sizeof(h->dir));
	snprintf(h->hold, sizeof(h->hold), "%s/hold", h->dir);
	snprintf(h->held, sizeof(h->held), "%s.held", h->hold);
	mqtest_faultshim_env(h->hold, asan_old, sizeof(asan_old));
	mqtest_broker_start(&h->b, NULL);
	mqtest_faultshim_clear(asan_old);
}

/* held_on makes the next commit wait (and returns once one does, when
 * wait_held); held_off lets it go. */
static void held_on(held_broker *h)
{
	FILE *f = fopen(h->hold, "w");

	assert_non_null(f);
	fclose(f);
}

static void held_off(held_broker *h)
{
	unlink(h->hold);
	unlink(h->held);
}

static void held_cleanup(held_broker *h)
{
	held_off(h);
	mqtest_broker_cleanup(&h->b);
	mqtest_rmtree(h->dir);
}

#define NPUSH 2000

/* 2000 pushes from one thread, 64 in flight: each callback once, OK,
 * distinct ids; the broker counted 2000. */
static void test_async_many_in_flight(void **state)
{
	mqtest_broker b;
	struct rec *r = recs_new(NPUSH);
	uint64_t *ids = calloc(NPUSH, sizeof(*ids));
	uint32_t peak = 0;
	mq_queue_info qi;
	mq_client *c;
	char buf[32];

	(void)state;
	mqtest_broker_start(&b, NULL);
	c = open_client(b.url, 10000);
	assert_mq_ok(mq_queue_create(c, "async", NULL, false, NULL));
	assert_mq_ok(mq_client_set_max_inflight(c, 64));
	for (int i = 0; i < NPUSH; i++) {
		int len = snprintf(buf, sizeof(buf), "m%d", i);
		uint32_t now;

		/* buf is reused at once: the payload was copied. */
		assert_mq_ok(mq_push_async(c, "async", buf, (size_t)len, NULL, rec_cb, &r[i]));
		now = mq_client_inflight(c);
		assert_true(now <= 64);
		if (now > peak)
			peak = now;
	}
	assert_true(peak > 1); /* really pipelined */
	assert_mq_ok(mq_client_flush(c, 30000));
	/* flush returned: every callback has run. */
	assert_int_equal(atomic_load(&total_calls), NPUSH);
	assert_int_equal(mq_client_inflight(c), 0);
	for (int i = 0; i < NPUSH; i++) {
		assert_int_equal(atomic_load(&r[i].calls), 1);
		assert_int_equal(atomic_load(&r[i].st), MQ_OK);
		ids[i] = atomic_load(&r[i].id);
	}
	qsort(ids, NPUSH, sizeof(*ids), cmp_u64);
	for (int i = 1; i < NPUSH; i++)
		assert_true(ids[i] != ids[i - 1]);
	assert_mq_ok(mq_queue_get(c, "async", &qi));
	assert_int_equal(qi.stats.pushed_total, NPUSH);
	assert_int_equal(qi.stats.ready, NPUSH);
	/* A flush with nothing in flight returns at once. */
	assert_mq_ok(mq_client_flush(c, 0));
	mq_client_close(c);
	mqtest_broker_cleanup(&b);
	free(ids);
	free(r);
}

struct batch_rec {
	atomic_int calls;
	atomic_int st;
	atomic_int n_ok;
};

static void batch_cb(void *arg, mq_status st, size_t n, const mq_push_result *res)
{
	struct batch_rec *br = arg;
	int ok = 0;

	for (size_t i = 0; i < n; i++)
		ok += res[i].status == MQ_OK;
	atomic_store(&br->st, (int)st);
	atomic_store(&br->n_ok, ok);
	atomic_fetch_add(&br->calls, 1);
}

/* Errors: bad arguments fail at once without a callback; a payload over
 * the broker's limit reaches the callback as INVALID_ARGUMENT; batches. */
static void test_async_errors_and_batch(void **state)
{
	struct batch_rec br[3];
	const void *pl[3] = {"a", "b", "c"};
	size_t lens[3] = {1, 1, 1};
	struct rec *r = recs_new(4);
	mqtest_broker b;
	mq_queue_info qi;
	mq_client *c;
	char *big;

	(void)state;
	memset(br, 0, sizeof(br));
	mqtest_broker_start(&b, "--max-payload=1024", NULL);
	c = open_client(b.url, 10000);
	assert_mq_ok(mq_queue_create(c, "aerr", NULL, false, NULL));
	assert_mq_status(mq_push_async(c, "bad name", "x", 1, NULL, rec_cb, &r[0]),
	                 MQ_INVALID_ARGUMENT);
	assert_true(strstr(mq_errmsg(), "bad name") != NULL);
	assert_mq_status(mq_push_async(c, "aerr", NULL, 3, NULL, rec_cb, &r[0]),
	                 MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_push_async(c, "aerr", "x", 1, NULL, NULL, NULL), MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_push_async(NULL, "aerr", "x", 1, NULL, rec_cb, &r[0]),
	                 MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_push_batch_async(c, "aerr", 0, pl, lens, NULL, batch_cb, &br[0]),
	                 MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_client_set_max_inflight(c, 0), MQ_INVALID_ARGUMENT);
	assert_mq_status(mq_client_flush(NULL, 0), MQ_INVALID_ARGUMENT);

	big = calloc(1, 4096);
	assert_non_null(big);
	assert_mq_ok(mq_push_async(c, "aerr", big, 4096, NULL, rec_cb, &r[1]));
	assert_mq_ok(mq_push_async(c, "aerr", "ok", 2, NULL, rec_cb, &r[2]));
	assert_mq_ok(mq_push_batch_async(c, "aerr", 3, pl, lens, NULL, batch_cb, &br[1]));
	pl[1] = big;
	lens[1] = 4096;
	assert_mq_ok(mq_push_batch_async(c, "aerr", 3, pl, lens, NULL, batch_cb, &br[2]));
	assert_mq_ok(mq_client_flush(c, 20000));

	assert_int_equal(atomic_load(&r[0].calls), 0); /* errors: never called */
	assert_int_equal(atomic_load(&br[0].calls), 0);
	assert_int_equal(atomic_load(&r[1].calls), 1);
	assert_int_equal(atomic_load(&r[1].st), MQ_INVALID_ARGUMENT);
	assert_int_equal(atomic_load(&r[2].calls), 1);
	assert_int_equal(atomic_load(&r[2].st), MQ_OK);
	assert_int_equal(atomic_load(&br[1].calls), 1);
	assert_int_equal(atomic_load(&br[1].st), MQ_OK);
	assert_int_equal(atomic_load(&br[1].n_ok), 3);
	assert_int_equal(atomic_load(&br[2].calls), 1);
	assert_int_equal(atomic_load(&br[2].st), MQ_INVALID_ARGUMENT);
	assert_int_equal(atomic_load(&br[2].n_ok), 2);
	assert_int_equal(atomic_load(&total_calls), 2);
	assert_mq_ok(mq_queue_get(c, "aerr", &qi));
	assert_int_equal(qi.stats.pushed_total, 1 + 3 + 2);
	mq_client_close(c);
	mqtest_broker_cleanup(&b);
	free(big);
	free(r);
}

/* The limit: try fails fast when full; a call with no broker times out
 * into its callback (UNAVAILABLE), and flush honours its own timeout. */
static void test_async_limit_and_timeout(void **state)
{
	struct rec *r = recs_new(3);
	char dir[256], url[320];
	mq_client_opts opts;
	mq_client *c;
	uint64_t t0;

	(void)state;
	mqtest_tmpdir(dir, sizeof(dir));
	snprintf(url, sizeof(url), "ipc://%s/none.sock", dir);
	mq_client_opts_init(&opts);
	opts.timeout_ms = 700;
	assert_mq_ok(mq_client_open(&c, url, &opts));
	assert_mq_ok(mq_client_set_max_inflight(c, 1));
	assert_mq_ok(mq_push_async(c, "q", "x", 1, NULL, rec_cb, &r[0]));
	assert_mq_status(mq_push_async_try(c, "q", "y", 1, NULL, rec_cb, &r[1]),
	                 MQ_RESOURCE_EXHAUSTED);
	assert_mq_status(mq_client_flush(c, 50), MQ_DEADLINE_EXCEEDED);
	/* The blocking call waits for the first to time out. */
	t0 = mqtest_now_ms();
	assert_mq_ok(mq_push_async(c, "q", "z", 1, NULL, rec_cb, &r[2]));
	assert_true(mqtest_now_ms() - t0 >= 300);
	assert_int_equal(atomic_load(&r[0].calls), 1);
	assert_int_equal(atomic_load(&r[0].st), MQ_UNAVAILABLE);
	assert_mq_ok(mq_client_flush(c, 10000));
	assert_int_equal(atomic_load(&r[1].calls), 0);
	assert_int_equal(atomic_load(&r[2].calls), 1);
	assert_int_equal(atomic_load(&r[2].st), MQ_UNAVAILABLE);
	mq_client_close(c);
	mqtest_rmtree(dir);
	free(r);
}

#define NKILL   600
#define KILL_AT 250

/* The broker dies with pushes in flight: every callback still runs exactly
 * once, and every push reported OK is on disk after a restart. */
static void test_async_broker_killed(void **state)
{
	struct rec *r = recs_new(NKILL);
	int ok = 0, failed = 0;
	mqtest_broker b;
	mq_queue_info qi;
	mq_client *c;

	(void)state;
	mqtest_broker_start(&b, NULL);
	c = open_client(b.url, 1000);
	assert_mq_ok(mq_queue_create(c, "akill", NULL, false, NULL));
	assert_mq_ok(mq_client_set_max_inflight(c, 64));
	for (int i = 0; i < NKILL; i++) {
		if (i == KILL_AT)
			mqtest_broker_kill(&b);
		assert_mq_ok(mq_push_async(c, "akill", "k", 1, NULL, rec_cb, &r[i]));
	}
	assert_mq_ok(mq_client_flush(c, 60000));
	assert_int_equal(atomic_load(&total_calls), NKILL);
	for (int i = 0; i < NKILL; i++) {
		int st = atomic_load(&r[i].st);

		assert_int_equal(atomic_load(&r[i].calls), 1);
		if (st == MQ_OK)
			ok++;
		else if (st == MQ_UNAVAILABLE || st == MQ_DEADLINE_EXCEEDED)
			failed++;
		else
			fail_msg("push %d: unexpected %s", i, mq_status_name(st));
		if (i >= KILL_AT)
			assert_int_not_equal(st, MQ_OK); /* sent after the kill */
	}
	assert_int_equal(ok + failed, NKILL);
	assert_true(ok <= KILL_AT);
	assert_true(failed >= NKILL - KILL_AT - 64);
	mqtest_broker_restart(&b, NULL);
	/* The client reconnects in the background (back-off up to 1 s). */
	for (int i = 0; i < 20 && mq_queue_get(c, "akill", &qi) != MQ_OK; i++)
		usleep(100000);
	assert_mq_ok(mq_queue_get(c, "akill", &qi));
	/* Durable: each OK is stored; a lost reply may have been stored too. */
	assert_true(qi.stats.ready >= (uint64_t)ok);
	assert_true(qi.stats.ready <= (uint64_t)KILL_AT);
	mq_client_close(c);
	mqtest_broker_cleanup(&b);
	free(r);
}

#define NCLOSE 500

/* Close with calls in flight: every callback runs exactly once before
 * close returns, with OK (answered in time) or CANCELLED. */
static void test_async_close_in_flight(void **state)
{
	struct rec *r = recs_new(NCLOSE);
	int cancelled = 0;
	held_broker h;
	mq_client *c;

	(void)state;
	held_start(&h);
	c = open_client(h.b.url, 10000);
	assert_mq_ok(mq_queue_create(c, "aclose", NULL, false, NULL));
	assert_mq_ok(mq_client_set_max_inflight(c, NCLOSE));
	/* Commits are held from halfway on: the second half cannot be
	 * answered before the close, however fast the broker. */
	for (int i = 0; i < NCLOSE; i++) {
		if (i == NCLOSE / 2)
			held_on(&h);
		assert_mq_ok(mq_push_async(c, "aclose", "c", 1, NULL, rec_cb, &r[i]));
	}
	mqtest_wait_file(h.held);
	mq_client_close(c);
	held_off(&h);
	assert_int_equal(atomic_load(&total_calls), NCLOSE);
	for (int i = 0; i < NCLOSE; i++) {
		int st = atomic_load(&r[i].st);

		assert_int_equal(atomic_load(&r[i].calls), 1);
		if (st == MQ_CANCELLED)
			cancelled++;
		else if (st != MQ_OK)
			fail_msg("push %d: unexpected %s", i, mq_status_name(st));
	}
	/* The pushes behind the held commit were cancelled. */
	assert_true(cancelled > 0);
	held_cleanup(&h);
	free(r);
}

/* crec is what one callback of the coalescing test saw. */
struct crec {
	atomic_int calls, st, dup;
	atomic_uint_fast64_t id;
	char err[160]; /* written before calls is incremented */
};

static void crec_cb(void *arg, mq_status st, const mq_push_result *r)
{
	struct crec *rc = arg;

	atomic_store(&rc->st, r != NULL && r->status == st ? (int)st : -1);
	atomic_store(&rc->id, r != NULL ? r->id : UINT64_MAX);
	atomic_store(&rc->dup, r != NULL && r->duplicate);
	snprintf(rc->err, sizeof(rc->err), "%s", st == MQ_OK ? "" : mq_errmsg());
	atomic_fetch_add(&rc->calls, 1);
}

#define NCOAL 150

/* Pushes made while a request is on the wire are coalesced into shared
 * requests (the broker is stopped so that they all wait): each still gets
 * its own result, status, reason and callback, in push order; a dedup hit
 * and a queue limit fall on exactly the messages they would alone; closing
 * with pushes still waiting cancels each once. */
static void test_async_coalesced(void **state)
{
	struct crec *r = calloc(NCOAL, sizeof(*r));
	mq_queue_config cfg = {.max_length = 100};
	mq_push_opts dedup = {.dedup_key = "k"};
	char tbuf[8] = "ty.pe", vbuf[8] = "t-20";
	mq_header hdr[2] = {{"trace", vbuf}, {"empty", ""}};
	mq_push_opts typed = {.type = tbuf, .headers = hdr, .n_headers = 2, .priority = 3};
	mq_message *got;
	uint64_t last = 0;
	int ok = 0, full = 0, dups = 0;
	held_broker h;
	mq_client *c;

	(void)state;
	assert_non_null(r);
	held_start(&h);
	c = open_client(h.b.url, 20000);
	assert_mq_ok(mq_queue_create(c, "acoal", &cfg, false, NULL));
	assert_mq_ok(mq_client_set_max_inflight(c, NCOAL));
	for (int i = 0; i < NCOAL; i++) {
		char body[16];

		if (i == 0) /* #0's commit is held: the rest must wait */
			held_on(&h);
		if (i == 1)
			mqtest_wait_file(h.held);
		snprintf(body, sizeof(body), "m%d", i);
		assert_mq_ok(mq_push_async(c, "acoal", body, strlen(body),
		                           i == 10 || i == 11 ? &dedup
		                           : i == 20          ? &typed
		                                              : NULL,
		                           crec_cb, &r[i]));
		if (i == 20) { /* the library keeps copies: the caller's buffers are free */
			memset(tbuf, 'X', sizeof(tbuf) - 1);
			memset(vbuf, 'X', sizeof(vbuf) - 1);
			hdr[0].key = "scribbled";
		}
	}
	held_off(&h);
	assert_mq_ok(mq_client_flush(c, 20000 * mqtest_time_mult()));
	for (int i = 0; i < NCOAL; i++) {
		int st = atomic_load(&r[i].st);

		assert_int_equal(atomic_load(&r[i].calls), 1);
		if (st == MQ_OK && atomic_load(&r[i].dup)) {
			dups++;
			assert_int_equal(i, 11);
			assert_int_equal(atomic_load(&r[i].id), atomic_load(&r[10].id));
		} else if (st == MQ_OK) {
			/* stored in push order, across the shared requests */
			assert_true(atomic_load(&r[i].id) > last);
			last = atomic_load(&r[i].id);
			assert_int_equal(full, 0);
			ok++;
		} else if (st == MQ_RESOURCE_EXHAUSTED) {
			if (strstr(r[i].err, "max_length is 100") == NULL)
				fail_msg("push %d: reason '%s'", i, r[i].err);
			full++;
		} else
			fail_msg("push %d: %s (%s)", i, mq_status_name(st), r[i].err);
	}
	assert_int_equal(ok, 100);
	assert_int_equal(dups, 1);
	assert_int_equal(full, NCOAL - 101);
	/* #20 waited as a copy: its type, headers and priority arrived. */
	assert_mq_ok(mq_message_get(c, "acoal", atomic_load(&r[20].id), &got));
	assert_string_equal(mq_message_type(got), "ty.pe");
	assert_int_equal(mq_message_priority(got), 3);
	assert_int_equal(mq_message_header_count(got), 2);
	assert_string_equal(mq_message_header(got, 0).key, "trace");
	assert_string_equal(mq_message_header(got, 0).value, "t-20");
	assert_string_equal(mq_message_header(got, 1).value, "");
	assert_memory_equal(mq_message_payload(got, NULL), "m20", 3);
	mq_message_free(got);

	/* Closing with pushes waiting: every callback once, cancelled. */
	memset(r, 0, NCOAL * sizeof(*r));
	assert_mq_ok(mq_queue_purge(c, "acoal", MQ_STATE_ALL, NULL));
	held_on(&h);
	assert_mq_ok(mq_push_async(c, "acoal", "w", 1, NULL, crec_cb, &r[0]));
	mqtest_wait_file(h.held);
	for (int i = 1; i < 20; i++)
		assert_mq_ok(mq_push_async(c, "acoal", "p", 1, NULL, crec_cb, &r[i]));
	mq_client_close(c);
	held_off(&h);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(atomic_load(&r[i].calls), 1);
		if (i > 0 || atomic_load(&r[i].st) != MQ_OK)
			assert_int_equal(atomic_load(&r[i].st), MQ_CANCELLED);
	}
	held_cleanup(&h);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_async_many_in_flight),
	    cmocka_unit_test(test_async_errors_and_batch),
	    cmocka_unit_test(test_async_limit_and_timeout),
	    cmocka_unit_test(test_async_broker_killed),
	    cmocka_unit_test(test_async_close_in_flight),
	    cmocka_unit_test(test_async_coalesced),
	};

	return cmocka_run_group_tests_name("async", tests, NULL, NULL);
}
