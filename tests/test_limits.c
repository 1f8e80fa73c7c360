/* SPDX-License-Identifier: MIT */
/*
 * test_limits.c: the limits that protect mqd, each refused clearly while
 * the broker keeps serving others:
 *   --max-connections   a connection beyond it gets RESOURCE_EXHAUSTED
 *                       (not a timeout), is closed, and gets in once a
 *                       slot is free; the log says why
 *   --max-parked-pulls  a long-poll pull beyond it on one connection is
 *                       answered at once with RESOURCE_EXHAUSTED; other
 *                       connections still long-poll
 *   max batch           a push of more than 1000 messages: INVALID_ARGUMENT
 * (--max-request is covered by test_wire's frame_over_max_request.)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "mq.pb-c.h"
#include "mq/mq.h"
#include "mqtest.h"

static mq_client *open_client(const char *url)
{
	mq_client_opts o;
	mq_client *c;

	mq_client_opts_init(&o);
	o.timeout_ms = 5000;
	o.connect_timeout_ms = 5000;
	assert_mq_ok(mq_client_open(&c, url, &o));
	return c;
}

static void test_max_connections(void **state)
{
	mqtest_broker b;
	mq_client *c1, *c2, *c3, *c4;
	char out[256];
	mq_status st = MQ_OK;

	(void)state;
	mqtest_broker_start(&b, "--max-connections=2", NULL);
	c1 = open_client(b.url);
	c2 = open_client(b.url);
	assert_mq_ok(mq_ping(c1, NULL));
	assert_mq_ok(mq_ping(c2, NULL));

	/* The third connection is accepted by the transport, then every request
	 * on it is refused with the reason. */
	c3 = open_client(b.url);
	assert_mq_status(mq_push(c3, "lim.q", "x", 1, NULL, NULL, NULL), MQ_RESOURCE_EXHAUSTED);
	if (strstr(mq_errmsg(), "connection limit") == NULL ||
	    strstr(mq_errmsg(), "--max-connections=2") == NULL)
		fail_msg("unclear refusal: %s", mq_errmsg());
	/* The others are served all along. */
	assert_mq_ok(mq_push(c1, "lim.q", "x", 1, NULL, NULL, NULL));
	assert_mq_ok(mq_ping(c2, NULL));
	assert_int_equal(mqtest_run(out, sizeof(out),
	                            "grep -c 'connection refused: .*--max-connections' %s", b.log),
	                 0);

	/* A slot frees: the refused client gets in once mqd has closed its
	 * refused connection (after 1 s) and it has reconnected. Bounded (30 s,
	 * more under valgrind): a loaded machine can take several seconds. */
	mq_client_close(c1);
	for (int i = 0; i < 300 * mqtest_time_mult(); i++) {
		if ((st = mq_ping(c3, NULL)) == MQ_OK)
			break;
		/* Refused, or cut off as its refused connection closes. */
		if (st != MQ_RESOURCE_EXHAUSTED && st != MQ_UNAVAILABLE)
			fail_msg("ping: %s: %s", mq_status_name(st), mq_errmsg());
		usleep(100000);
	}
	assert_mq_ok(st);
	/* Full again: a fourth is refused, c2 and c3 served. */
	c4 = open_client(b.url);
	assert_mq_status(mq_ping(c4, NULL), MQ_RESOURCE_EXHAUSTED);
	assert_mq_ok(mq_ping(c2, NULL));
	assert_mq_ok(mq_ping(c3, NULL));
	mq_client_close(c4);
	mq_client_close(c3);
	mq_client_close(c2);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

/* A long-poll pull on a thread: it retries while refused (its own pull may
 * race the main thread's probes), then waits for a message. No cmocka
 * asserts here (not the main thread). */
typedef struct poller {
	mq_client *c;
	pthread_t th;
	mq_status st;
	size_t n;
	int refused;
} poller;

static void *poll_main(void *arg)
{
	poller *p = arg;
	mq_pull_opts po = {.wait_ms = 30000};
	mq_message *m[1];

	for (int i = 0; i < 1000; i++) {
		p->n = 0;
		p->st = mq_pull(p->c, "parked.q", &po, m, 1, &p->n);
		if (p->st != MQ_RESOURCE_EXHAUSTED)
			break;
		p->refused++;
		usleep(1000);
	}
	if (p->st == MQ_OK && p->n == 1) {
		mq_ack(p->c, m[0]);
		mq_message_free(m[0]);
	}
	return NULL;
}

static void test_max_parked_pulls(void **state)
{
	mqtest_broker b;
	mq_client *c, *other;
	poller p[2];
	mq_message *m[1];
	mq_pull_opts quick = {.wait_ms = 1};
	mq_status st = MQ_OK;
	size_t n;
	char why[512] = "";

	(void)state;
	mqtest_broker_start(&b, "--max-parked-pulls=2", NULL);
	c = open_client(b.url); /* one connection, shared by the threads */
	other = open_client(b.url);
	for (int i = 0; i < 2; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].c = c;
		assert_int_equal(pthread_create(&p[i].th, NULL, poll_main, &p[i]), 0);
	}
	/* Once both pollers are parked, a third long poll on the connection is
	 * refused at once. (Until then a probe may be admitted and return
	 * empty after 1 ms.) Bounded. */
	for (int i = 0; i < 5000; i++) {
		st = mq_pull(c, "parked.q", &quick, m, 1, &n);
		if (st == MQ_RESOURCE_EXHAUSTED) {
			snprintf(why, sizeof(why), "%s", mq_errmsg());
			break;
		}
		assert_mq_ok(st);
		assert_int_equal(n, 0);
		usleep(1000);
	}
	assert_int_equal(st, MQ_RESOURCE_EXHAUSTED);
	if (strstr(why, "long-poll") == NULL || strstr(why, "--max-parked-pulls is 2") == NULL)
		fail_msg("unclear refusal: %s", why);
	/* A pull that does not wait is no long poll: served. */
	assert_mq_ok(mq_pull(c, "parked.q", NULL, m, 1, &n));
	assert_int_equal(n, 0);
	/* Another connection long-polls as usual. */
	assert_mq_ok(mq_pull(other, "parked.q", &quick, m, 1, &n));
	assert_int_equal(n, 0);
	/* Two messages release the pollers, one each (two pulls parked on one
	 * queue are served in turn: a regression test for serve_marked, which
	 * used to queue the head call behind the others again). */
	assert_mq_ok(mq_push(other, "parked.q", "a", 1, NULL, NULL, NULL));
	assert_mq_ok(mq_push(other, "parked.q", "b", 1, NULL, NULL, NULL));
	for (int i = 0; i < 2; i++) {
		pthread_join(p[i].th, NULL);
		assert_mq_ok(p[i].st);
		assert_int_equal(p[i].n, 1);
	}
	/* Their slots are free again. */
	assert_mq_ok(mq_pull(c, "parked.q", &quick, m, 1, &n));
	mq_client_close(c);
	mq_client_close(other);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

static void test_max_batch(void **state)
{
	mqtest_broker b;
	Mq__PushRequest req = MQ__PUSH_REQUEST__INIT;
	Mq__Request env = MQ__REQUEST__INIT;
	Mq__PushMessage *msgs = calloc(1001, sizeof(*msgs)), **mp = calloc(1001, sizeof(*mp));
	Mq__Reply *reply;
	nng_socket sock;
	nng_msg *msg;
	uint8_t *body, *frame;
	size_t blen, flen;

	(void)state;
	assert_non_null(msgs);
	assert_non_null(mp);
	mqtest_broker_start(&b, NULL);
	for (int i = 0; i < 1001; i++) {
		mq__push_message__init(&msgs[i]);
		msgs[i].payload.data = (uint8_t *)"x";
		msgs[i].payload.len = 1;
		mp[i] = &msgs[i];
	}
	req.queue = "batch.q";
	req.n_messages = 1001;
	req.messages = mp;
	blen = mq__push_request__get_packed_size(&req);
	body = malloc(blen);
	mq__push_request__pack(&req, body);
	env.version = 1;
	env.method = "Push";
	env.body.data = body;
	env.body.len = blen;
	flen = mq__request__get_packed_size(&env);
	frame = malloc(flen);
	mq__request__pack(&env, frame);

	assert_int_equal(nng_req0_open(&sock), 0);
	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 10000);
	assert_int_equal(nng_dial(sock, b.url, NULL, 0), 0);
	assert_int_equal(nng_send(sock, frame, flen, 0), 0);
	assert_int_equal(nng_recvmsg(sock, &msg, 0), 0);
	reply = mq__reply__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
	assert_non_null(reply);
	assert_int_equal(reply->status, MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(reply->message, "at most 1000"));
	mq__reply__free_unpacked(reply, NULL);
	nng_msg_free(msg);
	nng_close(sock);
	{ /* Still serving, and nothing of the refused batch was stored. */
		mq_client *c = open_client(b.url);
		mq_queue_info qi;
		assert_mq_ok(mq_push(c, "batch.q", "ok", 2, NULL, NULL, NULL));
		assert_mq_ok(mq_queue_get(c, "batch.q", &qi));
		assert_int_equal(qi.stats.ready, 1);
		mq_client_close(c);
	}
	free(frame);
	free(body);
	free(mp);
	free(msgs);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_max_connections),
	    cmocka_unit_test(test_max_parked_pulls),
	    cmocka_unit_test(test_max_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
