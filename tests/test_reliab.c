/* SPDX-License-Identifier: MIT */
/*
 * test_reliab.c: storage failures seen from a client of the real mqd.
 *  - map full: with a small --map-size-max, pushes get RESOURCE_EXHAUSTED
 *    with a clear message while pulls, acks, purges and deletes keep
 *    working; after draining, pushes work again; after a restart every
 *    message is intact;
 *  - disk errors on commit (fdatasync failing with EIO, through the
 *    faultshim LD_PRELOAD library, so LMDB's real commit path fails): the
 *    client gets an error, never OK, and a later read shows that nothing
 *    answered with an error was applied (an ack that failed leaves its
 *    message leased).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest.h"

static mqtest_broker b;

static int teardown(void **state)
{
	(void)state;
	mqtest_broker_cleanup(&b);
	return 0;
}

static void open_client(mq_client **c)
{
	mq_client_opts o;

	mq_client_opts_init(&o);
	o.connect_timeout_ms = 10000;
	o.timeout_ms = 20000;
	assert_mq_ok(mq_client_open(c, b.url, &o));
}

#define PAYLOAD 16000

static void payload_for(char *buf, int seq)
{
	memset(buf, 'a' + seq % 26, PAYLOAD);
	snprintf(buf, 32, "seq=%d;", seq);
}

/* push_until_full pushes until RESOURCE_EXHAUSTED; returns the count. */
static int push_until_full(mq_client *c, const char *q, int *seq)
{
	static char buf[PAYLOAD];
	int n = 0;

	for (int i = 0; i < 10000; i++) {
		mq_status st;

		payload_for(buf, *seq);
		st = mq_push(c, q, buf, PAYLOAD, NULL, NULL, NULL);
		if (st == MQ_RESOURCE_EXHAUSTED) {
			assert_non_null(strstr(mq_errmsg(), "full"));
			printf("full after %d pushes: %s\n", n, mq_errmsg());
			return n;
		}
		assert_mq_ok(st);
		(*seq)++;
		n++;
	}
	fail_msg("never full");
	return -1;
}

/* drain pulls and acks everything of q, checking payloads; returns the
 * count. A pull refused for room (RESOURCE_EXHAUSTED) is retried. */
static int drain(mq_client *c, const char *q)
{
	mq_message *msgs[16];
	int total = 0, refused = 0;

	for (int round = 0; round < 100000; round++) {
		size_t n = 0;
		mq_status st = mq_pull(c, q, NULL, msgs, 16, &n);

		if (st == MQ_RESOURCE_EXHAUSTED) {
			assert_true(++refused < 3);
			continue;
		}
		assert_mq_ok(st);
		refused = 0;
		if (n == 0)
			return total;
		for (size_t i = 0; i < n; i++) {
			static char want[PAYLOAD];
			size_t len;
			const char *p = mq_message_payload(msgs[i], &len);
			int seq = -1;

			assert_int_equal(len, PAYLOAD);
			assert_int_equal(sscanf(p, "seq=%d;", &seq), 1);
			payload_for(want, seq);
			assert_memory_equal(p, want, PAYLOAD);
			assert_mq_ok(mq_ack(c, msgs[i]));
			mq_message_free(msgs[i]);
			total++;
		}
	}
	fail_msg("drain did not end");
	return -1;
}

static void test_reliab_map_full_drains(void **state)
{
	mq_client *c;
	mq_queue_info qi;
	int seq = 0, n1, n2, n3;
	uint64_t purged = 0;
	static char buf[PAYLOAD];

	(void)state;
	mqtest_broker_start(&b, "--map-size=1M", "--map-size-max=2M", NULL);
	open_client(&c);
	n1 = push_until_full(c, "full.a", &seq);
	assert_true(n1 > 10);
	/* pushes of another queue are refused too; the broker keeps serving */
	payload_for(buf, 0);
	assert_mq_status(mq_push(c, "full.b", buf, PAYLOAD, NULL, NULL, NULL),
	                 MQ_RESOURCE_EXHAUSTED);
	assert_mq_ok(mq_ping(c, NULL));
	/* at the maximum: drain it all, pull + ack */
	assert_int_equal(drain(c, "full.a"), n1);
	assert_mq_ok(mq_queue_get(c, "full.a", &qi));
	assert_int_equal(qi.stats.ready + qi.stats.in_flight, 0);
	assert_int_equal(qi.stats.acked_total, (uint64_t)n1);
	/* full again; purge; full again; delete the queue; then push again */
	n2 = push_until_full(c, "full.a", &seq);
	assert_true(n2 > n1 / 2);
	assert_mq_ok(mq_queue_purge(c, "full.a", 0, &purged));
	assert_int_equal(purged, (uint64_t)n2);
	n3 = push_until_full(c, "full.c", &seq);
	assert_true(n3 > n1 / 2);
	assert_mq_ok(mq_queue_delete(c, "full.c"));
	payload_for(buf, seq);
	assert_mq_ok(mq_push(c, "full.a", buf, PAYLOAD, NULL, NULL, NULL));
	seq++;
	n3 = 1 + push_until_full(c, "full.a", &seq);
	mq_client_close(c);
	/* restart at the same maximum: every message intact */
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_restart(&b, "--map-size=1M", "--map-size-max=2M", NULL);
	open_client(&c);
	assert_mq_ok(mq_queue_get(c, "full.a", &qi));
	assert_int_equal(qi.stats.ready, (uint64_t)n3);
	assert_int_equal(drain(c, "full.a"), n3);
	printf("map full at 2 MiB: %d, %d and %d pushes of %d bytes stored; drained, purged, "
	       "deleted\n",
	       n1, n2, n3, PAYLOAD);
	mq_client_close(c);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

static bool is_error_status(mq_status st)
{
	return st == MQ_UNAVAILABLE || st == MQ_INTERNAL || st == MQ_DATA_LOSS;
}

static void test_reliab_commit_eio_is_an_error(void **state)
{
	const char *shim = getenv("MQ_FAULTSHIM");
	char fault[400], preload[600], asan[600];
	const char *old_asan = getenv("ASAN_OPTIONS");
	mq_client *c;
	mq_message *m = NULL, *g = NULL;
	size_t n = 0;
	uint64_t id_before, id_during = 0;
	mq_queue_info qi;
	mq_status st;
	FILE *f;

	(void)state;
	if (shim == NULL || !*shim)
		fail_msg("MQ_FAULTSHIM is not set (meson's test() sets it)");
	mqtest_tmpdir(fault, sizeof(fault));
	mqtest_rmtree(fault); /* the name only: the fault is on while it exists */
	/* mqd (not this process) gets the shim. An ASan-built mqd must be told
	 * that a preloaded library before its runtime is fine. */
	snprintf(preload, sizeof(preload), "%s", shim);
	snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0", old_asan ? old_asan : "",
	         old_asan && *old_asan ? ":" : "");
	setenv("MQ_FAULT_FILE", fault, 1);
	setenv("LD_PRELOAD", preload, 1);
	setenv("ASAN_OPTIONS", asan, 1);
	mqtest_broker_start(&b, NULL);
	unsetenv("LD_PRELOAD");
	open_client(&c);

	assert_mq_ok(mq_push(c, "eio", "before", 6, NULL, &id_before, NULL));
	assert_mq_ok(mq_pull(c, "eio", NULL, &m, 1, &n));
	assert_int_equal(n, 1);
	assert_int_equal(mq_message_id(m), id_before);

	/* the disk fails: a push and an ack are answered with errors */
	f = fopen(fault, "w");
	assert_non_null(f);
	fclose(f);
	st = mq_push(c, "eio", "during", 6, NULL, &id_during, NULL);
	printf("push while fdatasync fails: %s: %s\n", mq_status_name(st), mq_errmsg());
	assert_true(is_error_status(st));
	assert_true(strlen(mq_errmsg()) > 0);
	st = mq_ack(c, m);
	printf("ack while fdatasync fails: %s: %s\n", mq_status_name(st), mq_errmsg());
	assert_true(is_error_status(st));

	/* the disk is back: the failed ack was not applied (the message is
	 * still leased under the same token) and the failed push is not
	 * there; the broker goes on */
	assert_int_equal(unlink(fault), 0);
	assert_mq_ok(mq_message_get(c, "eio", id_before, &g));
	assert_int_equal(mq_message_state(g), MQ_STATE_LEASED);
	mq_message_free(g);
	assert_mq_ok(mq_queue_get(c, "eio", &qi));
	assert_int_equal(qi.stats.pushed_total, 1);
	assert_int_equal(qi.stats.in_flight, 1);
	assert_int_equal(qi.stats.ready, 0);
	assert_mq_ok(mq_ack(c, m));
	mq_message_free(m);
	assert_mq_ok(mq_push(c, "eio", "after", 5, NULL, NULL, NULL));
	mq_client_close(c);

	/* and so after a restart */
	assert_int_equal(mqtest_broker_stop(&b), 0);
	if (old_asan)
		setenv("ASAN_OPTIONS", old_asan, 1);
	else
		unsetenv("ASAN_OPTIONS");
	mqtest_broker_restart(&b, NULL);
	open_client(&c);
	assert_mq_ok(mq_queue_get(c, "eio", &qi));
	assert_int_equal(qi.stats.pushed_total, 2);
	assert_int_equal(qi.stats.acked_total, 1);
	assert_int_equal(qi.stats.ready, 1);
	assert_mq_ok(mq_pull(c, "eio", NULL, &m, 1, &n));
	assert_int_equal(n, 1);
	assert_memory_equal(mq_message_payload(m, NULL), "after", 5);
	mq_message_free(m);
	mq_client_close(c);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
	unsetenv("MQ_FAULT_FILE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_reliab_map_full_drains, teardown),
	    cmocka_unit_test_teardown(test_reliab_commit_eio_is_an_error, teardown),
	};
	return cmocka_run_group_tests_name("reliab", tests, NULL, NULL);
}
