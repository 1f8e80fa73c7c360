/* SPDX-License-Identifier: MIT */
/* test_wire.c: the real mqd, spoken to over nng with hand-made frames:
 * every kind of bad input gets the right status and a message, and the
 * broker keeps serving a good client meanwhile. Also: long-poll wake-up,
 * clean SIGTERM, and the data-directory lock. */
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "mq.pb-c.h"
#include "mqtest.h"

typedef struct wire {
	nng_socket sock;
} wire;

static mqtest_broker broker;

static void wire_open(wire *w, const char *url)
{
	int rv;

	if ((rv = nng_req0_open(&w->sock)) != 0)
		fail_msg("nng_req0_open: %s", nng_strerror(rv));
	nng_socket_set_ms(w->sock, NNG_OPT_RECVTIMEO, 10000);
	nng_socket_set_ms(w->sock, NNG_OPT_SENDTIMEO, 10000);
	nng_socket_set_ms(w->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if ((rv = nng_dial(w->sock, url, NULL, 0)) != 0)
		fail_msg("nng_dial %s: %s", url, nng_strerror(rv));
}

static void wire_close(wire *w)
{
	nng_close(w->sock);
}

/* wire_raw sends raw bytes and returns the decoded Reply (or NULL if the
 * connection dropped / timed out). */
static Mq__Reply *wire_raw(wire *w, const void *data, size_t len)
{
	nng_msg *msg;
	Mq__Reply *r;
	int rv;

	nng_msg_alloc(&msg, 0);
	nng_msg_append(msg, data, len);
	if ((rv = nng_sendmsg(w->sock, msg, 0)) != 0) {
		nng_msg_free(msg);
		return NULL;
	}
	if ((rv = nng_recvmsg(w->sock, &msg, 0)) != 0)
		return NULL;
	r = mq__reply__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
	nng_msg_free(msg);
	assert_non_null(r);
	return r;
}

/* wire_call packs body as method's input in a Request envelope. */
static Mq__Reply *wire_call(wire *w, uint32_t version, const char *method,
                            const ProtobufCMessage *body)
{
	Mq__Request req = MQ__REQUEST__INIT;
	uint8_t *bbuf = NULL, *rbuf;
	size_t n;
	Mq__Reply *r;

	req.version = version;
	req.method = (char *)method;
	if (body != NULL) {
		n = protobuf_c_message_get_packed_size(body);
		bbuf = malloc(n + 1);
		req.body.len = protobuf_c_message_pack(body, bbuf);
		req.body.data = bbuf;
	}
	n = mq__request__get_packed_size(&req);
	rbuf = malloc(n);
	mq__request__pack(&req, rbuf);
	r = wire_raw(w, rbuf, n);
	free(rbuf);
	free(bbuf);
	return r;
}

static void expect_status(Mq__Reply *r, int want, const char *msg_part)
{
	assert_non_null(r);
	if ((int)r->status != want)
		fail_msg("status %s (%s), want %s", mq_status_name((int)r->status), r->message,
		         mq_status_name(want));
	if (want != 0) {
		assert_non_null(r->message);
		assert_true(strlen(r->message) > 0);
		if (msg_part != NULL && strstr(r->message, msg_part) == NULL)
			fail_msg("message '%s' lacks '%s'", r->message, msg_part);
	}
	mq__reply__free_unpacked(r, NULL);
}

/* push_one pushes one payload; returns the id (fails on error). */
static uint64_t push_one(wire *w, const char *queue, const char *payload)
{
	Mq__PushRequest req = MQ__PUSH_REQUEST__INIT;
	Mq__PushMessage m = MQ__PUSH_MESSAGE__INIT, *mp = &m;
	Mq__Reply *r;
	Mq__PushReply *pr;
	uint64_t id;

	req.queue = (char *)queue;
	m.payload.data = (uint8_t *)payload;
	m.payload.len = strlen(payload);
	req.n_messages = 1;
	req.messages = &mp;
	r = wire_call(w, 1, "Push", &req.base);
	assert_non_null(r);
	if (r->status != 0)
		fail_msg("push: %s: %s", mq_status_name((int)r->status), r->message);
	pr = mq__push_reply__unpack(NULL, r->body.len, r->body.data);
	assert_non_null(pr);
	assert_int_equal(pr->n_results, 1);
	assert_int_equal(pr->results[0]->status, 0);
	id = pr->results[0]->id;
	mq__push_reply__free_unpacked(pr, NULL);
	mq__reply__free_unpacked(r, NULL);
	return id;
}

static Mq__PullReply *pull(wire *w, const char *queue, uint32_t max, uint32_t wait_ms)
{
	Mq__PullRequest req = MQ__PULL_REQUEST__INIT;
	Mq__Reply *r;
	Mq__PullReply *pr;

	req.queue = (char *)queue;
	req.max_messages = max;
	req.wait_ms = wait_ms;
	r = wire_call(w, 1, "Pull", &req.base);
	assert_non_null(r);
	if (r->status != 0)
		fail_msg("pull: %s: %s", mq_status_name((int)r->status), r->message);
	pr = mq__pull_reply__unpack(NULL, r->body.len, r->body.data);
	assert_non_null(pr);
	mq__reply__free_unpacked(r, NULL);
	return pr;
}

static int setup(void **state)
{
	(void)state;
	mqtest_broker_start(&broker, "--max-payload=1M", "--max-request=4M", NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	int st = mqtest_broker_stop(&broker);
	mqtest_broker_cleanup(&broker);
	return st == 0 ? 0 : -1;
}

static void test_wire_garbage_bytes(void **state)
{
	wire w;
	const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99};

	(void)state;
	wire_open(&w, broker.url);
	expect_status(wire_raw(&w, junk, sizeof(junk)), MQ_INVALID_ARGUMENT, "mq.Request");
	/* The same connection is still served. */
	assert_true(push_one(&w, "wire.after-garbage", "x") > 0);
	wire_close(&w);
}

static void test_wire_unknown_method(void **state)
{
	wire w;

	(void)state;
	wire_open(&w, broker.url);
	expect_status(wire_call(&w, 1, "Explode", NULL), MQ_UNIMPLEMENTED, "Explode");
	expect_status(wire_call(&w, 1, "", NULL), MQ_UNIMPLEMENTED, NULL);
	wire_close(&w);
}

static void test_wire_bad_version(void **state)
{
	wire w;
	Mq__PingRequest ping = MQ__PING_REQUEST__INIT;

	(void)state;
	wire_open(&w, broker.url);
	expect_status(wire_call(&w, 99, "Ping", &ping.base), MQ_FAILED_PRECONDITION, "version");
	expect_status(wire_call(&w, 1, "Ping", &ping.base), MQ_OK, NULL);
	wire_close(&w);
}

static void test_wire_undecodable_body(void **state)
{
	wire w;
	Mq__Request req = MQ__REQUEST__INIT;
	uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0x7f}, buf[64];
	size_t n;

	(void)state;
	wire_open(&w, broker.url);
	req.version = 1;
	req.method = "Push";
	req.body.data = junk;
	req.body.len = sizeof(junk);
	n = mq__request__pack(&req, buf);
	expect_status(wire_raw(&w, buf, n), MQ_INVALID_ARGUMENT, "mq.PushRequest");
	wire_close(&w);
}

static void test_wire_oversized_payload(void **state)
{
	wire w;
	Mq__PushRequest req = MQ__PUSH_REQUEST__INIT;
	Mq__PushMessage m = MQ__PUSH_MESSAGE__INIT, *mp = &m;
	size_t big = (1u << 20) + 1;
	uint8_t *payload = calloc(1, big);

	(void)state;
	wire_open(&w, broker.url);
	req.queue = "wire.big";
	m.payload.data = payload;
	m.payload.len = big;
	req.n_messages = 1;
	req.messages = &mp;
	expect_status(wire_call(&w, 1, "Push", &req.base), MQ_INVALID_ARGUMENT, "1048576");
	/* Exactly at the limit is fine. */
	m.payload.len = 1u << 20;
	expect_status(wire_call(&w, 1, "Push", &req.base), MQ_OK, NULL);
	free(payload);
	wire_close(&w);
}

static void test_wire_frame_over_max_request(void **state)
{
	wire bad, good;
	size_t n = 5u << 20; /* above --max-request=4M: nng drops the frame */
	uint8_t *junk = calloc(1, n);
	nng_msg *msg;

	(void)state;
	wire_open(&bad, broker.url);
	wire_open(&good, broker.url);
	nng_socket_set_ms(bad.sock, NNG_OPT_RECVTIMEO, 500);
	nng_msg_alloc(&msg, 0);
	nng_msg_append(msg, junk, n);
	if (nng_sendmsg(bad.sock, msg, 0) != 0)
		nng_msg_free(msg);
	else
		assert_int_not_equal(nng_recvmsg(bad.sock, &msg, 0), 0); /* no reply */
	assert_true(push_one(&good, "wire.survivor", "still here") > 0);
	free(junk);
	wire_close(&bad);
	wire_close(&good);
}

static void test_wire_bad_names(void **state)
{
	wire w;
	Mq__PushRequest req = MQ__PUSH_REQUEST__INIT;
	Mq__PushMessage m = MQ__PUSH_MESSAGE__INIT, *mp = &m;
	Mq__CreateQueueRequest cq = MQ__CREATE_QUEUE_REQUEST__INIT;
	Mq__PullRequest pr = MQ__PULL_REQUEST__INIT;
	char long_name[200];

	(void)state;
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	wire_open(&w, broker.url);
	req.n_messages = 1;
	req.messages = &mp;
	m.payload.data = (uint8_t *)"x";
	m.payload.len = 1;
	const char *bad[] = {"", "has space", "slash/no", "ünïcode", long_name, "semi;colon"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req.queue = (char *)bad[i];
		expect_status(wire_call(&w, 1, "Push", &req.base), MQ_INVALID_ARGUMENT, NULL);
		cq.name = (char *)bad[i];
		expect_status(wire_call(&w, 1, "CreateQueue", &cq.base), MQ_INVALID_ARGUMENT, NULL);
		pr.queue = (char *)bad[i];
		expect_status(wire_call(&w, 1, "Pull", &pr.base), MQ_INVALID_ARGUMENT, NULL);
	}
	/* 128 characters is the longest valid name. */
	long_name[128] = '\0';
	req.queue = long_name;
	expect_status(wire_call(&w, 1, "Push", &req.base), MQ_OK, NULL);
	wire_close(&w);
}

static void test_wire_stale_token(void **state)
{
	wire w;
	Mq__AckRequest ack = MQ__ACK_REQUEST__INIT;
	Mq__PullReply *pr;

	(void)state;
	wire_open(&w, broker.url);
	push_one(&w, "wire.tokens", "t");
	pr = pull(&w, "wire.tokens", 1, 0);
	assert_int_equal(pr->n_messages, 1);
	ack.queue = "wire.tokens";
	ack.id = pr->messages[0]->id;
	ack.lease_token = pr->messages[0]->lease_token + 1;
	expect_status(wire_call(&w, 1, "Ack", &ack.base), MQ_FAILED_PRECONDITION, NULL);
	ack.lease_token = pr->messages[0]->lease_token;
	expect_status(wire_call(&w, 1, "Ack", &ack.base), MQ_OK, NULL);
	expect_status(wire_call(&w, 1, "Ack", &ack.base), MQ_NOT_FOUND, NULL);
	mq__pull_reply__free_unpacked(pr, NULL);
	wire_close(&w);
}

typedef struct garbage_arg {
	const char *url;
	atomic_int stop;
	atomic_int sent;
	atomic_int errors_answered;
} garbage_arg;

static void *garbage_loop(void *p)
{
	garbage_arg *g = p;
	nng_socket s;
	uint8_t junk[64];
	unsigned seed = 42;

	if (nng_req0_open(&s) != 0)
		return NULL;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	if (nng_dial(s, g->url, NULL, 0) != 0) {
		nng_close(s);
		return NULL;
	}
	for (int i = 0; i < 2000 && !atomic_load(&g->stop); i++) {
		nng_msg *msg;
		for (size_t j = 0; j < sizeof(junk); j++)
			junk[j] = (uint8_t)(rand_r(&seed) & 0xff);
		if (nng_send(s, junk, (size_t)(i % (int)sizeof(junk)), 0) != 0)
			break;
		if (nng_recvmsg(s, &msg, 0) != 0)
			break;
		Mq__Reply *r = mq__reply__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
		if (r != NULL) {
			if (r->status != 0)
				atomic_fetch_add(&g->errors_answered, 1);
			mq__reply__free_unpacked(r, NULL);
		}
		nng_msg_free(msg);
		atomic_fetch_add(&g->sent, 1);
	}
	nng_close(s);
	return NULL;
}

/* A client sending random frames does not stop a good client. */
static void test_wire_good_client_served_during_garbage(void **state)
{
	pthread_t th;
	garbage_arg g = {.url = broker.url};
	wire w;

	(void)state;
	pthread_create(&th, NULL, garbage_loop, &g);
	wire_open(&w, broker.url);
	/* The garbage flows before and while the good client pushes: wait
	 * (bounded) for its first answered frame, so a fast broker cannot
	 * serve all 100 pushes before the garbage client has connected. */
	for (int i = 0; i < 1000 * mqtest_time_mult() && atomic_load(&g.sent) == 0; i++)
		usleep(10000);
	assert_true(atomic_load(&g.sent) > 0);
	for (int i = 0; i < 100; i++)
		assert_true(push_one(&w, "wire.good", "ok") > 0);
	atomic_store(&g.stop, 1);
	pthread_join(th, NULL);
	/* Random bytes are mostly not valid requests: each got an error reply. */
	assert_true(atomic_load(&g.errors_answered) > 0);
	assert_true(atomic_load(&g.errors_answered) <= atomic_load(&g.sent));
	wire_close(&w);
}

typedef struct poll_arg {
	const char *url;
	const char *queue;
	uint32_t wait_ms; /* 0 = 8000 */
	uint64_t took_ms;
	size_t got;
	int status; /* reply status, or -1: no reply */
} poll_arg;

/* long_poll runs on its own thread, so it never calls cmocka's asserts
 * (they longjmp into the main thread's stack); the caller checks. */
static void *long_poll(void *p)
{
	poll_arg *a = p;
	Mq__PullRequest req = MQ__PULL_REQUEST__INIT;
	Mq__Request env = MQ__REQUEST__INIT;
	nng_socket s;
	nng_msg *msg;
	uint8_t body[256], buf[512];
	uint64_t t0 = mqtest_now_ms();

	a->status = -1;
	req.queue = (char *)a->queue;
	req.max_messages = 1;
	req.wait_ms = a->wait_ms ? a->wait_ms : 8000;
	env.version = 1;
	env.method = "Pull";
	env.body.len = mq__pull_request__pack(&req, body);
	env.body.data = body;
	size_t n = mq__request__pack(&env, buf);
	if (nng_req0_open(&s) != 0)
		return NULL;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 15000);
	if (nng_dial(s, a->url, NULL, 0) == 0 && nng_send(s, buf, n, 0) == 0 &&
	    nng_recvmsg(s, &msg, 0) == 0) {
		Mq__Reply *r = mq__reply__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
		if (r != NULL) {
			a->status = (int)r->status;
			Mq__PullReply *pr = mq__pull_reply__unpack(NULL, r->body.len, r->body.data);
			if (pr != NULL) {
				a->got = pr->n_messages;
				mq__pull_reply__free_unpacked(pr, NULL);
			}
			mq__reply__free_unpacked(r, NULL);
		}
		nng_msg_free(msg);
	}
	a->took_ms = mqtest_now_ms() - t0;
	nng_close(s);
	return NULL;
}

static void test_wire_long_poll_wakeup(void **state)
{
	pthread_t th;
	poll_arg a = {.url = broker.url, .queue = "wire.longpoll"};
	wire w;

	(void)state;
	pthread_create(&th, NULL, long_poll, &a);
	usleep(300000);
	wire_open(&w, broker.url);
	push_one(&w, "wire.longpoll", "wake");
	pthread_join(th, NULL);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.got, 1);
	/* Woken by the push (~300 ms), not by the 8 s deadline. */
	if (a.took_ms > 4000)
		fail_msg("long poll took %llu ms", (unsigned long long)a.took_ms);
	wire_close(&w);
}

static void test_wire_long_poll_timeout(void **state)
{
	wire w;
	uint64_t t0;
	Mq__PullReply *pr;

	(void)state;
	wire_open(&w, broker.url);
	t0 = mqtest_now_ms();
	pr = pull(&w, "wire.empty", 1, 400);
	uint64_t took = mqtest_now_ms() - t0;
	assert_int_equal(pr->n_messages, 0);
	if (took < 350 || took > 5000)
		fail_msg("a 400 ms long poll took %llu ms", (unsigned long long)took);
	mq__pull_reply__free_unpacked(pr, NULL);
	wire_close(&w);
}

/* SIGTERM answers a parked long poll, exits 0, and keeps acknowledged data. */
static void test_wire_sigterm_clean(void **state)
{
	mqtest_broker b;
	pthread_t th;
	poll_arg a;
	wire w;
	Mq__PullReply *pr;

	(void)state;
	mqtest_broker_start(&b, NULL);
	a = (poll_arg){.url = b.url, .queue = "wire.parked"};
	wire_open(&w, b.url);
	push_one(&w, "wire.kept", "durable");
	wire_close(&w);
	pthread_create(&th, NULL, long_poll, &a);
	usleep(300000);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	pthread_join(th, NULL);
	assert_int_equal(a.status, 0); /* answered, not dropped */
	assert_int_equal(a.got, 0);
	assert_true(a.took_ms < 5000);
	mqtest_broker_restart(&b, NULL);
	wire_open(&w, b.url);
	pr = pull(&w, "wire.kept", 1, 0);
	assert_int_equal(pr->n_messages, 1);
	assert_memory_equal(pr->messages[0]->payload.data, "durable", 7);
	mq__pull_reply__free_unpacked(pr, NULL);
	wire_close(&w);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

/* A second mqd on the same data dir refuses to start, with a clear message. */
static void test_wire_second_broker_refused(void **state)
{
	char out[4096];
	int rc;

	(void)state;
	rc = mqtest_run(out, sizeof(out), "'%s' --listen=ipc://%s/second.sock --data-dir=%s 2>&1",
	                getenv("MQD"), broker.dir, broker.data);
	assert_int_not_equal(rc, 0);
	if (strstr(out, "in use") == NULL)
		fail_msg("second mqd said: %s", out);
	/* The first one still serves. */
	wire w;
	wire_open(&w, broker.url);
	assert_true(push_one(&w, "wire.first", "x") > 0);
	wire_close(&w);
}

/* Peers that connect and hang up before the handshake must not lock
 * others out (nng 1.5.2 bug 1518 stops the listener; mqd's watchdog
 * restarts it): a new client is served again within seconds. */
static void test_wire_handshake_hangups_do_not_lock_out(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint64_t t0;
	bool served = false;

	(void)state;
	const char *path = broker.url + strlen("ipc://");
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (int i = 0; i < 5; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_true(fd >= 0);
		assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(fd);
	}
	t0 = mqtest_now_ms();
	/* the watchdog retries a failed ping with a longer timeout before it
	 * restarts a listener: about 8 s, more under valgrind */
	while (!served && mqtest_now_ms() - t0 < 30000ull * (uint64_t)mqtest_time_mult()) {
		nng_socket s;
		nng_msg *msg;
		Mq__Request env = MQ__REQUEST__INIT;
		uint8_t buf[64];
		size_t n;

		env.version = 1;
		env.method = "Ping";
		n = mq__request__pack(&env, buf);
		assert_int_equal(nng_req0_open(&s), 0);
		nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 1000);
		nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 1000);
		if (nng_dial(s, broker.url, NULL, NNG_FLAG_NONBLOCK) == 0 &&
		    nng_send(s, buf, n, 0) == 0 && nng_recvmsg(s, &msg, 0) == 0) {
			nng_msg_free(msg);
			served = true;
		}
		nng_close(s);
	}
	if (!served)
		fail_msg("no client was served for %d s after handshake hang-ups",
		         30 * mqtest_time_mult());
	print_message("served again after %llu ms\n", (unsigned long long)(mqtest_now_ms() - t0));
}

/* The watchdog must not mistake a broker whose contexts are all held by
 * long polls for a stuck listener (restarting it would drop everyone). */
static void test_wire_watchdog_quiet_when_contexts_busy(void **state)
{
	mqtest_broker b;
	pthread_t th[6];
	poll_arg a[6];
	char out[256];

	(void)state;
	mqtest_broker_start(&b, "--contexts=4", "--max-contexts=4", NULL);
	for (int i = 0; i < 6; i++) {
		a[i] = (poll_arg){.url = b.url, .queue = "wire.busy", .wait_ms = 5000};
		pthread_create(&th[i], NULL, long_poll, &a[i]);
	}
	for (int i = 0; i < 6; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 6; i++)
		assert_int_equal(a[i].status, 0); /* answered, never reset */
	assert_int_equal(mqtest_run(out, sizeof(out), "grep -c 'restarting it' '%s'", b.log), 1);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

/* A purge naming no known state is refused, never widened to "all". */
static void test_wire_purge_unknown_state(void **state)
{
	wire w;
	Mq__PurgeQueueRequest req = MQ__PURGE_QUEUE_REQUEST__INIT;
	Mq__MessageState bogus[] = {(Mq__MessageState)9};
	Mq__PullReply *pr;

	(void)state;
	wire_open(&w, broker.url);
	push_one(&w, "wire.purge", "keep me");
	req.name = "wire.purge";
	req.n_states = 1;
	req.states = bogus;
	expect_status(wire_call(&w, 1, "PurgeQueue", &req.base), MQ_INVALID_ARGUMENT, "state");
	bogus[0] = MQ__MESSAGE_STATE__STATE_UNSPECIFIED;
	expect_status(wire_call(&w, 1, "PurgeQueue", &req.base), MQ_INVALID_ARGUMENT, "state");
	pr = pull(&w, "wire.purge", 1, 0);
	assert_int_equal(pr->n_messages, 1); /* still there */
	mq__pull_reply__free_unpacked(pr, NULL);
	wire_close(&w);
}

/* A pull reply stops growing at the request-size budget (4 MiB here); the
 * messages left out stay ready, not leased to nobody. */
static void test_wire_pull_reply_budget(void **state)
{
	wire w;
	Mq__PushRequest req = MQ__PUSH_REQUEST__INIT;
	Mq__PushMessage m = MQ__PUSH_MESSAGE__INIT, *mp = &m;
	Mq__GetQueueRequest gq = MQ__GET_QUEUE_REQUEST__INIT;
	Mq__PullReply *pr;
	Mq__Reply *r;
	size_t big = 1u << 20;
	uint8_t *payload = calloc(1, big);

	(void)state;
	wire_open(&w, broker.url);
	req.queue = "wire.budget";
	m.payload.data = payload;
	m.payload.len = big;
	req.n_messages = 1;
	req.messages = &mp;
	for (int i = 0; i < 6; i++)
		expect_status(wire_call(&w, 1, "Push", &req.base), MQ_OK, NULL);
	pr = pull(&w, "wire.budget", 10, 0);
	assert_true(pr->n_messages >= 1 && pr->n_messages < 6);
	size_t got = pr->n_messages;
	mq__pull_reply__free_unpacked(pr, NULL);
	gq.name = "wire.budget";
	r = wire_call(&w, 1, "GetQueue", &gq.base);
	assert_int_equal(r->status, 0);
	Mq__GetQueueReply *g = mq__get_queue_reply__unpack(NULL, r->body.len, r->body.data);
	assert_int_equal(g->queue->stats->in_flight, got);
	assert_int_equal(g->queue->stats->ready, 6 - got);
	mq__get_queue_reply__free_unpacked(g, NULL);
	mq__reply__free_unpacked(r, NULL);
	free(payload);
	wire_close(&w);
}

/* Storage full: pushes get RESOURCE_EXHAUSTED with a clear message (the
 * writer's failed batch is replayed, then run call by call), the broker
 * keeps answering, and every push answered OK is kept: after the operator
 * raises --map-size-max as the message says, all of it drains.
 * (Draining while still at the maximum needs free-page headroom: issue 5.) */
static void test_wire_storage_full(void **state)
{
	mqtest_broker b;
	wire w;
	Mq__PushRequest req = MQ__PUSH_REQUEST__INIT;
	Mq__PushMessage m = MQ__PUSH_MESSAGE__INIT, *mp = &m;
	Mq__PingRequest ping = MQ__PING_REQUEST__INIT;
	Mq__AckRequest ack = MQ__ACK_REQUEST__INIT;
	size_t sz = 200u << 10;
	uint8_t *payload = calloc(1, sz);
	int ok = 0, full = 0, drained = 0;

	(void)state;
	mqtest_broker_start(&b, "--map-size=1M", "--map-size-max=2M", "--max-payload=256K", NULL);
	wire_open(&w, b.url);
	req.queue = "wire.full";
	m.payload.data = payload;
	m.payload.len = sz;
	req.n_messages = 1;
	req.messages = &mp;
	for (int i = 0; i < 40 && !full; i++) {
		Mq__Reply *r = wire_call(&w, 1, "Push", &req.base);
		assert_non_null(r);
		if (r->status == 0)
			ok++;
		else if (r->status == MQ_RESOURCE_EXHAUSTED && strstr(r->message, "full") != NULL)
			full = 1;
		else
			fail_msg("push %d: %s: %s", i, mq_status_name((int)r->status), r->message);
		mq__reply__free_unpacked(r, NULL);
	}
	assert_true(full);
	assert_true(ok >= 2);
	expect_status(wire_call(&w, 1, "Ping", &ping.base), MQ_OK, NULL); /* still serving */
	wire_close(&w);
	assert_int_equal(mqtest_broker_stop(&b), 0);

	mqtest_broker_restart(&b, "--map-size=1M", "--map-size-max=16M", "--max-payload=256K",
	                      NULL);
	wire_open(&w, b.url);
	ack.queue = "wire.full";
	for (;;) {
		Mq__PullReply *pr = pull(&w, "wire.full", 1, 0);
		if (pr->n_messages == 0) {
			mq__pull_reply__free_unpacked(pr, NULL);
			break;
		}
		ack.id = pr->messages[0]->id;
		ack.lease_token = pr->messages[0]->lease_token;
		expect_status(wire_call(&w, 1, "Ack", &ack.base), MQ_OK, NULL);
		mq__pull_reply__free_unpacked(pr, NULL);
		drained++;
	}
	assert_int_equal(drained, ok); /* every push answered OK, none other */
	wire_close(&w);
	free(payload);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

static char *server_durability(const char *url)
{
	wire w;
	Mq__ServerInfoRequest req = MQ__SERVER_INFO_REQUEST__INIT;
	Mq__Reply *r;
	Mq__ServerInfoReply *si;
	char *d;

	wire_open(&w, url);
	r = wire_call(&w, 1, "ServerInfo", &req.base);
	assert_non_null(r);
	assert_int_equal(r->status, 0);
	si = mq__server_info_reply__unpack(NULL, r->body.len, r->body.data);
	assert_non_null(si);
	d = strdup(si->durability);
	mq__server_info_reply__free_unpacked(si, NULL);
	mq__reply__free_unpacked(r, NULL);
	wire_close(&w);
	return d;
}

/* The default keeps every LMDB sync (the name is read from the live LMDB
 * flags, not from the setting): only --durability=relaxed weakens it. */
static void test_wire_durability_default_and_relaxed(void **state)
{
	mqtest_broker b;
	char *d;

	(void)state;
	d = server_durability(broker.url);
	assert_string_equal(d, "durable");
	free(d);
	mqtest_broker_start(&b, "--durability=relaxed", NULL);
	d = server_durability(b.url);
	assert_string_equal(d, "relaxed");
	free(d);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wire_garbage_bytes),
	    cmocka_unit_test(test_wire_unknown_method),
	    cmocka_unit_test(test_wire_bad_version),
	    cmocka_unit_test(test_wire_undecodable_body),
	    cmocka_unit_test(test_wire_oversized_payload),
	    cmocka_unit_test(test_wire_frame_over_max_request),
	    cmocka_unit_test(test_wire_bad_names),
	    cmocka_unit_test(test_wire_stale_token),
	    cmocka_unit_test(test_wire_good_client_served_during_garbage),
	    cmocka_unit_test(test_wire_long_poll_wakeup),
	    cmocka_unit_test(test_wire_long_poll_timeout),
	    cmocka_unit_test(test_wire_second_broker_refused),
	    cmocka_unit_test(test_wire_handshake_hangups_do_not_lock_out),
	    cmocka_unit_test(test_wire_watchdog_quiet_when_contexts_busy),
	    cmocka_unit_test(test_wire_purge_unknown_state),
	    cmocka_unit_test(test_wire_pull_reply_budget),
	    cmocka_unit_test(test_wire_storage_full),
	    cmocka_unit_test(test_wire_durability_default_and_relaxed),
	    cmocka_unit_test(test_wire_sigterm_clean),
	};
	return cmocka_run_group_tests_name("wire", tests, setup, teardown);
}
