/* SPDX-License-Identifier: MIT */
/*
 * test_pg_multi.c: issue 10's multi-instance tests. Three real mqd
 * (--storage postgres) on one PostgreSQL database and schema, each on its
 * own ipc:// socket, serve the same queues:
 *  - cross-instance push, pull, ack, nack, queue admin, ServerInfo;
 *  - fencing: a lease that ran out and was taken again through another
 *    instance leaves a stale token FAILED_PRECONDITION through every one;
 *  - wake-up: a long poll parked on B gets a push made through A before
 *    its long poll times out (the latency is printed, not asserted);
 *  - dedup keys and ordering groups under concurrent pushes and pulls
 *    through the three instances;
 *  - a schedule fires once per slot with three writers able to fire it;
 *  - kill -9 of one instance under load: every acknowledged push is still
 *    there, and its leases come back through the others;
 *  - PostgreSQL stopped and started again under load: UNAVAILABLE with a
 *    message meanwhile, every mqd keeps running and serves again by
 *    itself, no acknowledged push lost.
 * Each test gets its own PostgreSQL schema (a fresh set of queues) in the
 * cluster started by tests/pg.sh run, which sets MQ_TEST_PG (conninfo),
 * MQ_TEST_PGDIR and MQ_TEST_PGSH (meson suite 'postgres'). Worker threads
 * only record; every assert runs on the main thread; every wait is a
 * bounded poll.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest_fx.h"

#define N_INST   3
#define PROD_MAX 20000 /* pushes one producer thread makes at most */

typedef struct cluster {
	mqtest_fx *in[N_INST]; /* A, B, C */
	char pg[600];          /* --pg=CONNINFO (the fixtures keep pointers to these) */
	char schema[96];       /* --pg-schema=NAME */
	int http_port;         /* B's HTTP listener (for /metrics); 0 = none */
} cluster;

static const char *env_or_fail(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0')
		fail_msg("%s is not set: run this test through `tests/pg.sh run` (meson test "
		         "--suite postgres does)",
		         name);
	return v;
}

/* http_port_of reads the port of "http listening on http://127.0.0.1:P"
 * from an mqd's log. */
static int http_port_of(const mqtest_broker *b)
{
	const char *pat = "http listening on http://127.0.0.1:";
	char line[1024];
	int port = 0;
	FILE *log = fopen(b->log, "r");

	assert_non_null(log);
	while (fgets(line, sizeof(line), log) != NULL) {
		char *p = strstr(line, pat);
		if (p != NULL)
			port = atoi(p + strlen(pat));
	}
	fclose(log);
	assert_true(port > 0);
	return port;
}

static int schema_counter;

/* cluster_setup: three instances on a fresh schema; B also listens on
 * HTTP; `debug` logs at debug level (schedule firings). */
static int cluster_setup(void **state, bool debug)
{
	cluster *cl = calloc(1, sizeof(*cl));
	const char *lvl = debug ? "--log-level=debug" : NULL;

	assert_non_null(cl);
	snprintf(cl->pg, sizeof(cl->pg), "--pg=%s", env_or_fail("MQ_TEST_PG"));
	snprintf(cl->schema, sizeof(cl->schema), "--pg-schema=mqt_%d_%d", (int)getpid(),
	         ++schema_counter);
	for (int i = 0; i < N_INST; i++)
		cl->in[i] =
		    i == 1 ? mqtest_fx_open("--storage=postgres", cl->pg, cl->schema,
		                            "--http-listen=http://127.0.0.1:0", lvl, NULL)
		           : mqtest_fx_open("--storage=postgres", cl->pg, cl->schema, lvl, NULL);
	cl->http_port = http_port_of(&cl->in[1]->b);
	*state = cl;
	return 0;
}

static int setup(void **state)
{
	return cluster_setup(state, false);
}

static int setup_debug(void **state)
{
	return cluster_setup(state, true);
}

static int teardown(void **state)
{
	cluster *cl = *state;

	for (int i = 0; i < N_INST; i++)
		mqtest_fx_close(cl->in[i]);
	free(cl);
	return 0;
}

static const char *const inst_name[N_INST] = {"A", "B", "C"};

static uint64_t push_s(mqtest_fx *f, const char *q, const char *payload, const mq_push_opts *o,
                       bool *dup)
{
	uint64_t id = 0;

	assert_mq_ok(mq_push(f->c, q, payload, strlen(payload), o, &id, dup));
	return id;
}

static void queue_stats(mqtest_fx *f, const char *q, mq_queue_stats *st)
{
	mq_queue_info qi;

	assert_mq_ok(mq_queue_get(f->c, q, &qi));
	*st = qi.stats;
}

static bool payload_is(const mq_message *m, const char *want)
{
	size_t len = 0;
	const char *p = mq_message_payload(m, &len);

	return len == strlen(want) && memcmp(p, want, len) == 0;
}

static mq_client *client_to(const mqtest_fx *f, int32_t timeout_ms)
{
	mq_client_opts o;
	mq_client *c = NULL;

	mq_client_opts_init(&o);
	o.connect_timeout_ms = 5000;
	o.timeout_ms = timeout_ms;
	assert_mq_ok(mq_client_open(&c, f->b.url, &o));
	return c;
}

/* ---- cross-instance push / pull / ack ------------------------------------ */

static void test_cross_instance(void **state)
{
	cluster *cl = *state;
	mqtest_fx *a = cl->in[0], *b = cl->in[1], *c = cl->in[2];
	mq_queue_config cfg = {.lease_ms = 30000, .max_attempts = 5};
	mq_queue_info qi;
	mq_queue_stats st;
	uint64_t ids[30];
	size_t got = 0;
	mq_message *m;

	for (int i = 0; i < N_INST; i++) {
		mq_server_info si;
		assert_mq_ok(mq_server_info_get(cl->in[i]->c, &si));
		assert_string_equal(si.storage_engine, "postgres");
	}
	assert_int_equal(mqtest_ctl(b, "info"), 0);
	assert_non_null(strstr(b->out, "postgres"));

	/* A queue made through A exists, with its config, through B and C. */
	assert_mq_ok(mq_queue_create(a->c, "xq", &cfg, false, NULL));
	for (int i = 1; i < N_INST; i++) {
		assert_mq_ok(mq_queue_get(cl->in[i]->c, "xq", &qi));
		assert_int_equal(qi.config.lease_ms, 30000);
		assert_int_equal(qi.config.max_attempts, 5);
	}
	assert_mq_status(mq_queue_create(c->c, "xq", &cfg, false, NULL), MQ_ALREADY_EXISTS);

	/* Pushed through A, pulled through B in push order, acked through C. */
	for (int i = 0; i < 30; i++) {
		char p[16];
		snprintf(p, sizeof(p), "m%02d", i);
		ids[i] = push_s(a, "xq", p, NULL, NULL);
	}
	for (int round = 0; round < 30 && got < 30; round++) {
		mq_pull_opts po = {.wait_ms = 2000};
		mq_message *ms[30];
		size_t n = 0;
		assert_mq_ok(mq_pull(b->c, "xq", &po, ms, 30 - got, &n));
		for (size_t i = 0; i < n; i++, got++) {
			char p[16];
			snprintf(p, sizeof(p), "m%02zu", got);
			assert_int_equal(mq_message_id(ms[i]), ids[got]);
			assert_true(payload_is(ms[i], p));
			assert_int_equal(mq_message_attempts(ms[i]), 1);
			assert_mq_ok(mq_ack_id(c->c, "xq", mq_message_id(ms[i]),
			                       mq_message_lease_token(ms[i])));
			mq_message_free(ms[i]);
		}
	}
	assert_int_equal(got, 30);
	queue_stats(a, "xq", &st);
	assert_int_equal(st.ready + st.delayed + st.in_flight, 0);
	assert_int_equal(st.pushed_total, 30);
	assert_int_equal(st.acked_total, 30);

	/* Pushed through C, leased through A, nacked through B, delivered
	 * again through C, acked through A; B then finds it gone. */
	uint64_t id = push_s(c, "xq", "again", NULL, NULL);
	m = mqtest_pull1(a, "xq", 0);
	assert_int_equal(mq_message_id(m), id);
	assert_mq_ok(mq_nack_id(b->c, "xq", id, mq_message_lease_token(m), 0, "through B"));
	mq_message_free(m);
	m = mqtest_pull1(c, "xq", 0);
	assert_int_equal(mq_message_id(m), id);
	assert_int_equal(mq_message_attempts(m), 2);
	assert_true(payload_is(m, "again"));
	assert_mq_ok(mq_ack_id(a->c, "xq", id, mq_message_lease_token(m)));
	assert_mq_status(mq_ack_id(b->c, "xq", id, mq_message_lease_token(m)), MQ_NOT_FOUND);
	mq_message_free(m);
	assert_mq_ok(mq_queue_get(c->c, "xq", &qi));
	assert_int_equal(qi.stats.nacked_total, 1);
	assert_int_equal(qi.stats.acked_total, 31);

	/* mqctl through C sees the queue; deleted through B, gone for A. */
	assert_int_equal(mqtest_ctl(c, "queue list"), 0);
	assert_non_null(strstr(c->out, "xq"));
	assert_mq_ok(mq_queue_delete(b->c, "xq"));
	assert_mq_status(mq_queue_get(a->c, "xq", &qi), MQ_NOT_FOUND);
}

/* ---- fencing ------------------------------------------------------------- */

static void test_fencing(void **state)
{
	cluster *cl = *state;
	mqtest_fx *a = cl->in[0], *b = cl->in[1], *c = cl->in[2];
	mq_queue_config cfg = {.lease_ms = 60000, .max_attempts = 10};
	mq_message *m1, *m2 = NULL, *g;
	uint64_t id, t1, t2, exp = 0;

	assert_mq_ok(mq_queue_create(b->c, "fq", &cfg, false, NULL));
	id = push_s(c, "fq", "f", NULL, NULL);
	m1 = mqtest_pull1(a, "fq", 300); /* a 300 ms lease through A */
	assert_int_equal(mq_message_id(m1), id);
	t1 = mq_message_lease_token(m1);
	/* Its lease runs out (database time) and B leases it again. */
	for (int i = 0; i < 100 && m2 == NULL; i++)
		m2 = mqtest_try_pull(b, "fq", 300);
	assert_non_null(m2);
	assert_int_equal(mq_message_id(m2), id);
	t2 = mq_message_lease_token(m2);
	assert_true(t2 != t1);
	assert_int_equal(mq_message_attempts(m2), 2);

	/* The stale token fails through every instance, whatever the call. */
	for (int i = 0; i < N_INST; i++) {
		mq_client *x = cl->in[i]->c;
		mq_lease_ref ref = {.id = id, .token = t1};
		mq_lease_result res;
		print_message("stale token through %s\n", inst_name[i]);
		assert_mq_status(mq_ack_id(x, "fq", id, t1), MQ_FAILED_PRECONDITION);
		assert_mq_status(mq_nack_id(x, "fq", id, t1, 0, "stale"), MQ_FAILED_PRECONDITION);
		assert_mq_status(mq_extend_lease_id(x, "fq", id, t1, 60000, NULL),
		                 MQ_FAILED_PRECONDITION);
		assert_mq_status(mq_snooze_id(x, "fq", id, t1, 0), MQ_FAILED_PRECONDITION);
		assert_mq_status(mq_term_id(x, "fq", id, t1, "stale"), MQ_FAILED_PRECONDITION);
		assert_mq_status(mq_ack_batch(x, "fq", &ref, 1, &res), MQ_FAILED_PRECONDITION);
		assert_int_equal(res.status, MQ_FAILED_PRECONDITION);
	}
	/* None of them touched it: still leased, under t2. */
	assert_mq_ok(mq_message_get(a->c, "fq", id, &g));
	assert_int_equal(mq_message_state(g), MQ_STATE_LEASED);
	mq_message_free(g);
	/* The holder's token works through any instance. */
	assert_mq_ok(mq_extend_lease_id(c->c, "fq", id, t2, 60000, &exp));
	assert_true(exp > 0);
	assert_mq_ok(mq_ack_id(a->c, "fq", id, t2));
	assert_mq_status(mq_ack_id(b->c, "fq", id, t2), MQ_NOT_FOUND);
	mq_message_free(m1);
	mq_message_free(m2);
}

/* ---- cross-instance wake-up ---------------------------------------------- */

typedef struct poller {
	mq_client *c;
	const char *queue; /* NULL = "wq" */
	uint32_t wait_ms;
	mq_status st;
	size_t n;
	mq_message *m;
	uint64_t returned_ms; /* mqtest_now_ms() when the pull returned */
} poller;

static void *poll_thread(void *arg)
{
	poller *p = arg;
	mq_pull_opts po = {.wait_ms = p->wait_ms};

	p->st = mq_pull(p->c, p->queue ? p->queue : "wq", &po, &p->m, 1, &p->n);
	p->returned_ms = mqtest_now_ms();
	return NULL;
}

/* parked_pulls reads mq_parked_pulls from B's /metrics. */
static long parked_pulls(cluster *cl)
{
	char out[65536];
	const char *pat = "\nmq_parked_pulls ";
	char *p;

	if (mqtest_run(out, sizeof(out), "curl -fsS http://127.0.0.1:%d/metrics", cl->http_port) !=
	    0)
		fail_msg("GET /metrics on B failed");
	p = strstr(out, pat);
	assert_non_null(p);
	return strtol(p + strlen(pat), NULL, 10);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

#define WAKE_ROUNDS 7
#define WAKE_WAIT   20000 /* the long poll's wait, ms */

/* wake_rounds: B's long poll, woken by pushes through `pusher`; returns
 * the latencies (push call made -> pull returned), sorted. */
static void wake_rounds(cluster *cl, mqtest_fx *pusher, uint64_t *lat)
{
	mqtest_fx *b = cl->in[1], *c = cl->in[2];

	for (int r = 0; r < WAKE_ROUNDS; r++) {
		poller p = {.c = b->c, .wait_ms = WAKE_WAIT};
		pthread_t th;
		char payload[32];
		uint64_t t0;
		int i;

		snprintf(payload, sizeof(payload), "wake-%d", r);
		assert_int_equal(pthread_create(&th, NULL, poll_thread, &p), 0);
		/* Push only once B has the pull parked (bounded: 10 s). */
		for (i = 0; i < 400 && parked_pulls(cl) < 1; i++)
			usleep(25 * 1000);
		if (i == 400) {
			pthread_join(th, NULL);
			fail_msg("B's long poll never showed in mq_parked_pulls (pull: %s)",
			         mq_status_name(p.st));
		}
		t0 = mqtest_now_ms();
		push_s(pusher, "wq", payload, NULL, NULL);
		pthread_join(th, NULL);
		assert_mq_ok(p.st);
		assert_int_equal(p.n, 1); /* it came before the long poll timed out */
		assert_true(payload_is(p.m, payload));
		lat[r] = p.returned_ms - t0;
		assert_true(lat[r] < WAKE_WAIT);
		assert_mq_ok(
		    mq_ack_id(c->c, "wq", mq_message_id(p.m), mq_message_lease_token(p.m)));
		mq_message_free(p.m);
	}
	qsort(lat, WAKE_ROUNDS, sizeof(lat[0]), cmp_u64);
}

static void test_wakeup(void **state)
{
	cluster *cl = *state;
	uint64_t cross[WAKE_ROUNDS], local[WAKE_ROUNDS];

	mqtest_make_queue(cl->in[0], "wq", 30000, 0);
	wake_rounds(cl, cl->in[0], cross); /* pushed through A */
	wake_rounds(cl, cl->in[1], local); /* pushed through B itself */
	print_message("wake-up of a long poll on B, push call -> pull returned, %d rounds: "
	              "pushed through A min %" PRIu64 " median %" PRIu64 " max %" PRIu64
	              " ms; pushed through B min %" PRIu64 " median %" PRIu64 " max %" PRIu64
	              " ms\n",
	              WAKE_ROUNDS, cross[0], cross[WAKE_ROUNDS / 2], cross[WAKE_ROUNDS - 1],
	              local[0], local[WAKE_ROUNDS / 2], local[WAKE_ROUNDS - 1]);
}

/* ---- dedup keys and ordering groups under concurrency ---------------- */

#define DEDUP_KEYS 60

typedef struct dedup_pusher {
	mq_client *c;
	int idx;
	pthread_barrier_t *go;
	mq_status st[DEDUP_KEYS];
	uint64_t id[DEDUP_KEYS];
	bool dup[DEDUP_KEYS];
} dedup_pusher;

static void *dedup_thread(void *arg)
{
	dedup_pusher *p = arg;

	pthread_barrier_wait(p->go);
	for (int k = 0; k < DEDUP_KEYS; k++) {
		char key[32], payload[32];
		mq_push_opts o = {.dedup_key = key};
		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(payload, sizeof(payload), "%d:%d", p->idx, k);
		p->st[k] = mq_push(p->c, "dq", payload, strlen(payload), &o, &p->id[k], &p->dup[k]);
	}
	return NULL;
}

static void test_dedup_concurrent(void **state)
{
	cluster *cl = *state;
	dedup_pusher p[N_INST];
	pthread_t th[N_INST];
	pthread_barrier_t go;
	mq_queue_stats st;

	mqtest_make_queue(cl->in[0], "dq", 30000, 0);
	assert_int_equal(pthread_barrier_init(&go, NULL, N_INST), 0);
	for (int i = 0; i < N_INST; i++) {
		p[i] = (dedup_pusher){.c = cl->in[i]->c, .idx = i, .go = &go};
		assert_int_equal(pthread_create(&th[i], NULL, dedup_thread, &p[i]), 0);
	}
	for (int i = 0; i < N_INST; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	/* Exactly one holder per key: one push stored it, the other two got
	 * its id back as duplicates, and it carries the winner's payload. */
	for (int k = 0; k < DEDUP_KEYS; k++) {
		int winners = 0, w = -1;
		mq_message *m;
		char want[32];
		for (int i = 0; i < N_INST; i++) {
			assert_mq_ok(p[i].st[k]);
			assert_int_equal(p[i].id[k], p[0].id[k]);
			if (!p[i].dup[k]) {
				winners++;
				w = i;
			}
		}
		assert_int_equal(winners, 1);
		assert_mq_ok(mq_message_get(cl->in[k % N_INST]->c, "dq", p[0].id[k], &m));
		snprintf(want, sizeof(want), "%d:%d", w, k);
		assert_true(payload_is(m, want));
		mq_message_free(m);
	}
	queue_stats(cl->in[2], "dq", &st);
	assert_int_equal(st.ready, DEDUP_KEYS);
	assert_int_equal(st.deduplicated_total, (N_INST - 1) * DEDUP_KEYS);
	assert_int_equal(st.pushed_total, DEDUP_KEYS);
}

#define GROUPS     4
#define GROUP_PUSH 40 /* per producer */
#define GROUP_ALL  (N_INST * GROUP_PUSH)

typedef struct group_log {
	pthread_mutex_t mu;
	uint64_t holder[GROUPS]; /* the message of each group a consumer holds, 0 = none */
	int violations;          /* a second message of a held group was handed out */
	char violation[256];
	int n;                         /* deliveries logged */
	int dup_deliveries;            /* a (producer, seq) delivered twice */
	int group[GROUP_ALL * 2];      /* per delivery: group, */
	uint64_t id[GROUP_ALL * 2];    /* message id, */
	int prod[GROUP_ALL * 2];       /* producer, */
	int seq[GROUP_ALL * 2];        /* and its sequence number */
	bool seen[N_INST][GROUP_PUSH]; /* by (producer, seq) */
	atomic_int pushed_ok, push_err, ack_err, pull_err;
	atomic_int producers_done;
} group_log;

typedef struct group_worker {
	mq_client *c;
	int idx;
	group_log *log;
} group_worker;

static void *group_producer(void *arg)
{
	group_worker *w = arg;

	for (int s = 0; s < GROUP_PUSH; s++) {
		char g[8], payload[32];
		mq_push_opts o = {.group = g, .priority = s % 3}; /* priorities do not reorder */
		snprintf(g, sizeof(g), "g%d", (s + w->idx) % GROUPS);
		snprintf(payload, sizeof(payload), "%d:%d", w->idx, s);
		if (mq_push(w->c, "gq", payload, strlen(payload), &o, NULL, NULL) == MQ_OK)
			atomic_fetch_add(&w->log->pushed_ok, 1);
		else
			atomic_fetch_add(&w->log->push_err, 1);
	}
	atomic_fetch_add(&w->log->producers_done, 1);
	return NULL;
}

static void *group_consumer(void *arg)
{
	group_worker *w = arg;
	group_log *L = w->log;
	int idle = 0;

	for (int round = 0; round < 5000; round++) {
		mq_pull_opts po = {.wait_ms = 200};
		mq_message *ms[4];
		size_t n = 0;
		bool done;

		pthread_mutex_lock(&L->mu);
		done = L->n >= GROUP_ALL;
		pthread_mutex_unlock(&L->mu);
		if (done || idle > 25)
			break;
		if (mq_pull(w->c, "gq", &po, ms, 4, &n) != MQ_OK) {
			atomic_fetch_add(&L->pull_err, 1);
			continue;
		}
		if (n == 0) {
			if (atomic_load(&L->producers_done) == N_INST)
				idle++;
			continue;
		}
		idle = 0;
		pthread_mutex_lock(&L->mu);
		for (size_t i = 0; i < n; i++) {
			int g = atoi(mq_message_group(ms[i]) + 1), pr = -1, s = -1;
			const char *pl = mq_message_payload(ms[i], NULL);
			if (sscanf(pl, "%d:%d", &pr, &s) != 2 || pr < 0 || pr >= N_INST || s < 0 ||
			    s >= GROUP_PUSH || g < 0 || g >= GROUPS) {
				L->violations++;
				snprintf(L->violation, sizeof(L->violation), "bad message %s/%s",
				         mq_message_group(ms[i]), pl);
				continue;
			}
			if (L->holder[g] != 0) {
				L->violations++;
				snprintf(L->violation, sizeof(L->violation),
				         "group g%d: %" PRIu64 " handed out while %" PRIu64
				         " is leased",
				         g, mq_message_id(ms[i]), L->holder[g]);
			}
			L->holder[g] = mq_message_id(ms[i]);
			if (L->seen[pr][s])
				L->dup_deliveries++;
			L->seen[pr][s] = true;
			if (L->n < GROUP_ALL * 2) {
				L->group[L->n] = g;
				L->id[L->n] = mq_message_id(ms[i]);
				L->prod[L->n] = pr;
				L->seq[L->n] = s;
				L->n++;
			}
		}
		pthread_mutex_unlock(&L->mu);
		for (size_t i = 0; i < n; i++) {
			int g = atoi(mq_message_group(ms[i]) + 1);
			usleep(1000); /* "work": widens the window a second lease would show in */
			pthread_mutex_lock(&L->mu);
			if (g >= 0 && g < GROUPS && L->holder[g] == mq_message_id(ms[i]))
				L->holder[g] = 0; /* released before the ack: no false alarm */
			pthread_mutex_unlock(&L->mu);
			if (mq_ack(w->c, ms[i]) != MQ_OK)
				atomic_fetch_add(&L->ack_err, 1);
			mq_message_free(ms[i]);
		}
	}
	return NULL;
}

static void test_groups_concurrent(void **state)
{
	cluster *cl = *state;
	static group_log L; /* large: not on the stack */
	group_worker prod[N_INST], cons[N_INST];
	pthread_t pt[N_INST], ct[N_INST];
	int last_seq[GROUPS][N_INST];
	uint64_t last_id[GROUPS] = {0};
	mq_message *head, *none;

	memset(&L, 0, sizeof(L));
	pthread_mutex_init(&L.mu, NULL);
	mqtest_make_queue(cl->in[0], "gq", 60000, 0);

	/* Deterministic first: a group's head leased through A blocks the
	 * group for B and C, until it is acked through C. */
	{
		mq_push_opts o = {.group = "solo"};
		uint64_t id1 = push_s(cl->in[0], "gq", "solo-1", &o, NULL);
		uint64_t id2 = push_s(cl->in[1], "gq", "solo-2", &o, NULL);
		head = mqtest_pull1(cl->in[0], "gq", 0);
		assert_int_equal(mq_message_id(head), id1);
		assert_null(none = mqtest_try_pull(cl->in[1], "gq", 0));
		assert_null(none = mqtest_try_pull(cl->in[2], "gq", 0));
		assert_mq_ok(mq_ack_id(cl->in[2]->c, "gq", mq_message_id(head),
		                       mq_message_lease_token(head)));
		mq_message_free(head);
		head = mqtest_pull1(cl->in[1], "gq", 0);
		assert_int_equal(mq_message_id(head), id2);
		assert_mq_ok(mq_ack(cl->in[1]->c, head));
		mq_message_free(head);
	}

	/* Then three producers and three consumers at once, one of each per
	 * instance. */
	for (int i = 0; i < N_INST; i++) {
		prod[i] = (group_worker){.c = cl->in[i]->c, .idx = i, .log = &L};
		cons[i] = (group_worker){.c = client_to(cl->in[i], 10000), .idx = i, .log = &L};
	}
	for (int i = 0; i < N_INST; i++) {
		assert_int_equal(pthread_create(&ct[i], NULL, group_consumer, &cons[i]), 0);
		assert_int_equal(pthread_create(&pt[i], NULL, group_producer, &prod[i]), 0);
	}
	for (int i = 0; i < N_INST; i++) {
		pthread_join(pt[i], NULL);
		pthread_join(ct[i], NULL);
		mq_client_close(cons[i].c);
	}
	print_message("groups: %d pushed, %d delivered, %d push / %d pull / %d ack errors\n",
	              atomic_load(&L.pushed_ok), L.n, atomic_load(&L.push_err),
	              atomic_load(&L.pull_err), atomic_load(&L.ack_err));
	if (L.violations)
		fail_msg("%d group violation(s), e.g. %s", L.violations, L.violation);
	assert_int_equal(atomic_load(&L.push_err), 0);
	assert_int_equal(atomic_load(&L.ack_err), 0);
	assert_int_equal(atomic_load(&L.pushed_ok), GROUP_ALL);
	assert_int_equal(L.n, GROUP_ALL);
	assert_int_equal(L.dup_deliveries, 0);
	/* Group order: within a group, deliveries in id (= commit) order,
	 * and each producer's pushes in the order it made them. */
	for (int g = 0; g < GROUPS; g++)
		for (int i = 0; i < N_INST; i++)
			last_seq[g][i] = -1;
	for (int d = 0; d < L.n; d++) {
		int g = L.group[d];
		if (L.id[d] <= last_id[g])
			fail_msg("group g%d: %" PRIu64 " delivered after %" PRIu64, g, L.id[d],
			         last_id[g]);
		last_id[g] = L.id[d];
		if (L.seq[d] <= last_seq[g][L.prod[d]])
			fail_msg("group g%d: producer %d's push %d delivered after its push %d", g,
			         L.prod[d], L.seq[d], last_seq[g][L.prod[d]]);
		last_seq[g][L.prod[d]] = L.seq[d];
	}
	pthread_mutex_destroy(&L.mu);
}

/* ---- a schedule fires once per slot -------------------------------------- */

#define SCHED_INTERVAL 100 /* ms */
#define SCHED_FIRINGS  15

static void test_schedule_once(void **state)
{
	cluster *cl = *state;
	mq_schedule_spec spec = {.interval_ms = SCHED_INTERVAL};
	mq_schedule_info si;
	uint64_t slots[1000], created, after = 0;
	size_t n_slots = 0;
	bool more = true;
	int i;

	mqtest_make_queue(cl->in[0], "sq", 60000, 0);
	assert_mq_ok(
	    mq_schedule_create(cl->in[0]->c, "tick", "sq", &spec, "t", 1, NULL, false, &si, NULL));
	created = si.created_ms;
	/* Three writers could fire it; let it fire a while (bounded: 60 s). */
	for (i = 0; i < 600; i++) {
		assert_mq_ok(mq_schedule_get(cl->in[i % N_INST]->c, "tick", &si));
		if (si.fired_total >= SCHED_FIRINGS)
			break;
		usleep(100 * 1000);
	}
	assert_true(si.fired_total >= SCHED_FIRINGS);
	assert_mq_ok(mq_schedule_pause(cl->in[1]->c, "tick", &si));
	assert_mq_ok(mq_schedule_get(cl->in[2]->c, "tick", &si));

	/* Every message it pushed, through C: one per slot fired. */
	while (more) {
		mq_list_opts lo = {.after_id = after};
		mq_message *ms[100];
		size_t n = 0;
		assert_mq_ok(mq_message_list(cl->in[2]->c, "sq", &lo, ms, 100, &n, &after, &more));
		for (size_t k = 0; k < n; k++) {
			const char *slot = NULL;
			for (size_t h = 0; h < mq_message_header_count(ms[k]); h++) {
				mq_header hd = mq_message_header(ms[k], h);
				if (strcmp(hd.key, "mq-schedule-slot") == 0)
					slot = hd.value;
			}
			assert_non_null(slot);
			assert_true(n_slots < 1000);
			slots[n_slots++] = strtoull(slot, NULL, 10);
			mq_message_free(ms[k]);
		}
	}
	qsort(slots, n_slots, sizeof(slots[0]), cmp_u64);
	print_message("schedule: %zu messages, fired_total %" PRIu64 ", missed_total %" PRIu64
	              ", last slot %" PRIu64 " = created + %" PRIu64 " ms\n",
	              n_slots, si.fired_total, si.missed_total, si.last_slot_ms,
	              si.last_slot_ms - created);
	assert_int_equal(n_slots, si.fired_total);
	for (size_t k = 0; k < n_slots; k++) {
		assert_true(slots[k] > created);
		assert_int_equal((slots[k] - created) % SCHED_INTERVAL, 0);
		if (k > 0 && slots[k] == slots[k - 1])
			fail_msg("slot %" PRIu64 " fired twice", slots[k]);
	}
	assert_int_equal(slots[n_slots - 1], si.last_slot_ms);
	/* Which instance fired each slot (their debug logs, written in the
	 * transaction: no commit fails here): exactly one. */
	{
		int by[N_INST] = {0}, total = 0;
		const char *pat = "schedule tick: slot ";
		for (int in = 0; in < N_INST; in++) {
			char line[1024];
			FILE *log = fopen(cl->in[in]->b.log, "r");
			assert_non_null(log);
			while (fgets(line, sizeof(line), log) != NULL) {
				char *p = strstr(line, pat);
				uint64_t slot;
				if (p == NULL)
					continue;
				slot = strtoull(p + strlen(pat), NULL, 10);
				if (bsearch(&slot, slots, n_slots, sizeof(slots[0]), cmp_u64) ==
				    NULL)
					fail_msg("%s logs slot %" PRIu64 ", not in the queue",
					         inst_name[in], slot);
				by[in]++;
			}
			fclose(log);
			total += by[in];
		}
		print_message("schedule: slots fired by A %d, B %d, C %d\n", by[0], by[1], by[2]);
		assert_int_equal(total, n_slots);
	}
	/* Every slot up to the last was fired once or counted missed. */
	assert_int_equal((si.last_slot_ms - created) / SCHED_INTERVAL,
	                 si.fired_total + si.missed_total);
}

/* ---- producers that record what was acknowledged ------------------------ */

typedef struct producer {
	mq_client *c;
	const char *queue;
	int idx;
	atomic_int *stop;
	bool stop_on_error;
	atomic_int n_ok, n_unavail, n_other, n_tried;
	uint64_t ok_id[PROD_MAX];
	int ok_seq[PROD_MAX];
	mq_status other_status;
	char unavail_msg[256], other_msg[256];
} producer;

static void *producer_thread(void *arg)
{
	producer *p = arg;

	for (int s = 0; s < PROD_MAX && !atomic_load(p->stop); s++) {
		char payload[32];
		uint64_t id = 0;
		mq_status st;

		snprintf(payload, sizeof(payload), "%d:%d", p->idx, s);
		atomic_fetch_add(&p->n_tried, 1);
		st = mq_push(p->c, p->queue, payload, strlen(payload), NULL, &id, NULL);
		if (st == MQ_OK) {
			int n = atomic_load(&p->n_ok);
			p->ok_id[n] = id;
			p->ok_seq[n] = s;
			atomic_store(&p->n_ok, n + 1);
			continue;
		}
		if (st == MQ_UNAVAILABLE) {
			if (atomic_fetch_add(&p->n_unavail, 1) == 0)
				snprintf(p->unavail_msg, sizeof(p->unavail_msg), "%s", mq_errmsg());
		} else if (atomic_fetch_add(&p->n_other, 1) == 0) {
			p->other_status = st;
			snprintf(p->other_msg, sizeof(p->other_msg), "%s", mq_errmsg());
		}
		if (p->stop_on_error)
			break;
		usleep(20 * 1000); /* pace the retries while the store is away */
	}
	return NULL;
}

/* wait_ok waits (bounded) until every producer in mask has n_ok >= want[i]. */
static void wait_ok(producer *p, unsigned mask, const int *want, const char *what)
{
	for (int t = 0; t < 1200; t++) {
		bool all = true;
		for (int i = 0; i < N_INST; i++)
			if ((mask & (1u << i)) && atomic_load(&p[i].n_ok) < want[i])
				all = false;
		if (all)
			return;
		usleep(50 * 1000);
	}
	for (int i = 0; i < N_INST; i++)
		fprintf(stderr, "producer %s: %d ok (want %d), %d unavailable, %d other (%s: %s)\n",
		        inst_name[i], atomic_load(&p[i].n_ok), want[i],
		        atomic_load(&p[i].n_unavail), atomic_load(&p[i].n_other),
		        mq_status_name(p[i].other_status), p[i].other_msg);
	fail_msg("producers did not reach %s within 60 s", what);
}

/* all_present reads every message of q through f and checks that every
 * push the producers saw acknowledged is there once, with its payload.
 * Returns how many messages the queue holds. */
static size_t all_present(mqtest_fx *f, const char *q, producer *p)
{
	static uint64_t ids[N_INST * PROD_MAX + 1000];
	static char found[N_INST][PROD_MAX];
	size_t n_all = 0;
	uint64_t after = 0;
	bool more = true;

	memset(found, 0, sizeof(found));
	for (int pages = 0; more && pages < 10000; pages++) {
		mq_list_opts lo = {.after_id = after};
		mq_message *ms[500];
		size_t n = 0;
		assert_mq_ok(mq_message_list(f->c, q, &lo, ms, 500, &n, &after, &more));
		for (size_t k = 0; k < n; k++) {
			int pr, s;
			const char *pl = mq_message_payload(ms[k], NULL);
			assert_int_equal(sscanf(pl, "%d:%d", &pr, &s), 2);
			assert_true(pr >= 0 && pr < N_INST && s >= 0 && s < PROD_MAX);
			if (found[pr][s])
				fail_msg("push %d:%d is in the queue twice", pr, s);
			found[pr][s] = 1;
			assert_true(n_all < sizeof(ids) / sizeof(ids[0]));
			ids[n_all++] = mq_message_id(ms[k]);
			mq_message_free(ms[k]);
		}
	}
	assert_false(more);
	qsort(ids, n_all, sizeof(ids[0]), cmp_u64);
	for (int i = 0; i < N_INST; i++) {
		int n_ok = atomic_load(&p[i].n_ok);
		for (int k = 0; k < n_ok; k++) {
			uint64_t *hit;
			if (!found[i][p[i].ok_seq[k]])
				fail_msg("acknowledged push %d:%d (id %" PRIu64 ") is lost", i,
				         p[i].ok_seq[k], p[i].ok_id[k]);
			hit = bsearch(&p[i].ok_id[k], ids, n_all, sizeof(ids[0]), cmp_u64);
			if (hit == NULL)
				fail_msg("acknowledged push %d:%d has lost its id %" PRIu64, i,
				         p[i].ok_seq[k], p[i].ok_id[k]);
		}
	}
	return n_all;
}

/* ---- kill -9 of one instance under load ----------------------------------- */

static void test_kill9(void **state)
{
	cluster *cl = *state;
	static producer p[N_INST];
	pthread_t th[N_INST];
	atomic_int stop = 0;
	mq_message *leased[10];
	size_t n_leased = 0, returned = 0, n_all;
	mq_pull_opts po = {.wait_ms = 2000, .lease_ms = 1500};
	int want[N_INST];

	mqtest_make_queue(cl->in[0], "kq", 60000, 0);
	for (int i = 0; i < N_INST; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].c = client_to(cl->in[i], 3000);
		p[i].queue = "kq";
		p[i].idx = i;
		p[i].stop = &stop;
		p[i].stop_on_error = i == 0; /* A's producer stops at its first failure */
		want[i] = 50;
	}
	for (int i = 0; i < N_INST; i++)
		assert_int_equal(pthread_create(&th[i], NULL, producer_thread, &p[i]), 0);
	wait_ok(p, 7, want, "50 pushes each");
	/* A consumer of A leases 10 messages (1.5 s) and never answers. */
	assert_mq_ok(mq_pull(cl->in[0]->c, "kq", &po, leased, 10, &n_leased));
	assert_int_equal(n_leased, 10);

	mqtest_broker_kill(&cl->in[0]->b);
	print_message("killed A (-9) after %d/%d/%d acknowledged pushes\n", atomic_load(&p[0].n_ok),
	              atomic_load(&p[1].n_ok), atomic_load(&p[2].n_ok));
	for (int i = 1; i < N_INST; i++)
		want[i] = atomic_load(&p[i].n_ok) + 100;
	wait_ok(p, 6, want, "100 more pushes through B and C after the kill");
	atomic_store(&stop, 1);
	for (int i = 0; i < N_INST; i++)
		pthread_join(th[i], NULL);
	print_message("A's producer: %d ok, then %s (%s); B and C: %d and %d ok, %d/%d errors\n",
	              atomic_load(&p[0].n_ok),
	              atomic_load(&p[0].n_unavail) ? "UNAVAILABLE"
	                                           : mq_status_name(p[0].other_status),
	              atomic_load(&p[0].n_unavail) ? p[0].unavail_msg : p[0].other_msg,
	              atomic_load(&p[1].n_ok), atomic_load(&p[2].n_ok),
	              atomic_load(&p[1].n_unavail) + atomic_load(&p[1].n_other),
	              atomic_load(&p[2].n_unavail) + atomic_load(&p[2].n_other));
	for (int i = 1; i < N_INST; i++) {
		assert_int_equal(atomic_load(&p[i].n_unavail), 0);
		assert_int_equal(atomic_load(&p[i].n_other), 0);
	}

	/* Every acknowledged push is there (through B), A's leased ones included. */
	n_all = all_present(cl->in[1], "kq", p);
	assert_true(n_all >= (size_t)(atomic_load(&p[0].n_ok) + atomic_load(&p[1].n_ok) +
	                              atomic_load(&p[2].n_ok)));

	/* A's leases run out and its messages come back through B and C. */
	for (int r = 0; r < 200 && returned < n_leased; r++) {
		mqtest_fx *f = cl->in[1 + r % 2];
		mq_message *ms[100];
		mq_pull_opts dp = {.wait_ms = 500};
		size_t n = 0;
		assert_mq_ok(mq_pull(f->c, "kq", &dp, ms, 100, &n));
		for (size_t k = 0; k < n; k++) {
			for (size_t j = 0; j < n_leased; j++)
				if (mq_message_id(ms[k]) == mq_message_id(leased[j])) {
					assert_int_equal(mq_message_attempts(ms[k]), 2);
					returned++;
				}
			assert_mq_ok(mq_ack(f->c, ms[k]));
			mq_message_free(ms[k]);
		}
	}
	assert_int_equal(returned, n_leased);
	for (size_t j = 0; j < n_leased; j++)
		mq_message_free(leased[j]);
	for (int i = 0; i < N_INST; i++)
		mq_client_close(p[i].c);
}

/* ---- PostgreSQL stopped and started under load ----------------------------- */

/* A consumer runtime (libmqclient's) on C that rides the outage out. */
#define CQ_EACH 20 /* messages pushed to cq before the stop and after the start */

typedef struct cq_seen {
	atomic_int handled, errors, unavailable;
	atomic_bool seen[2 * CQ_EACH];
	pthread_mutex_t mu;
	char other[300]; /* the first error other than UNAVAILABLE */
} cq_seen;

static mq_outcome cq_handler(void *arg, const mq_message *m, mq_result *r)
{
	cq_seen *cs = arg;
	int k = atoi(mq_message_payload(m, NULL));

	(void)r;
	if (k >= 0 && k < 2 * CQ_EACH)
		atomic_store(&cs->seen[k], true);
	atomic_fetch_add(&cs->handled, 1);
	return MQ_OUTCOME_DONE;
}

static void cq_error(void *arg, mq_status st, const char *msg)
{
	cq_seen *cs = arg;

	(void)msg;
	atomic_fetch_add(&cs->errors, 1);
	if (st == MQ_UNAVAILABLE) {
		atomic_fetch_add(&cs->unavailable, 1);
		return;
	}
	pthread_mutex_lock(&cs->mu);
	if (!cs->other[0])
		snprintf(cs->other, sizeof(cs->other), "%s: %s", mq_status_name(st), msg);
	pthread_mutex_unlock(&cs->mu);
}

static void cq_push(mqtest_fx *f, int from)
{
	for (int k = from; k < from + CQ_EACH; k++) {
		char p[16];
		snprintf(p, sizeof(p), "%d", k);
		push_s(f, "cq", p, NULL, NULL);
	}
}

/* cq_wait waits (bounded: 60 s) until the consumer acked n messages. */
static void cq_wait(mq_consumer *cons, cq_seen *cs, uint64_t n)
{
	mq_consumer_stats st;

	for (int t = 0; t < 1200; t++) {
		mq_consumer_stats_get(cons, &st);
		if (st.acked >= n)
			return;
		usleep(50 * 1000);
	}
	fail_msg("the consumer acked %" PRIu64 " of %" PRIu64 " (handled %d, %d errors)", st.acked,
	         n, atomic_load(&cs->handled), atomic_load(&cs->errors));
}

/* mentions_postgres: the message names PostgreSQL (any case). */
static bool mentions_postgres(const char *msg)
{
	for (const char *p = msg; *p; p++)
		if (strncasecmp(p, "postgres", 8) == 0)
			return true;
	return false;
}

static void test_pg_restart(void **state)
{
	cluster *cl = *state;
	static producer p[N_INST];
	pthread_t th[N_INST];
	atomic_int stop = 0;
	const char *pgsh = env_or_fail("MQ_TEST_PGSH"), *pgdir = env_or_fail("MQ_TEST_PGDIR");
	char out[4096];
	int want[N_INST], rc, t_park;
	poller parked = {0};
	pthread_t pth;
	static cq_seen cs;
	const char *cq[] = {"cq"};
	mq_consumer_opts co;
	mq_consumer *cons = NULL;
	mq_client *cc = client_to(cl->in[2], 5000);

	mqtest_make_queue(cl->in[0], "rq", 60000, 0);
	mqtest_make_queue(cl->in[0], "cq", 60000, 0);
	memset(&cs, 0, sizeof(cs));
	pthread_mutex_init(&cs.mu, NULL);
	mq_consumer_opts_init(&co);
	co.queues = cq;
	co.n_queues = 1;
	co.wait_ms = 1000;
	co.on_error = cq_error;
	co.on_error_arg = &cs;
	assert_mq_ok(mq_consumer_open(&cons, cc, &co));
	assert_mq_ok(mq_consumer_handle_default(cons, cq_handler, &cs));
	assert_mq_ok(mq_consumer_start(cons));
	cq_push(cl->in[0], 0);
	cq_wait(cons, &cs, CQ_EACH);
	for (int i = 0; i < N_INST; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].c = client_to(cl->in[i], 5000);
		p[i].queue = "rq";
		p[i].idx = i;
		p[i].stop = &stop;
		want[i] = 30;
	}
	for (int i = 0; i < N_INST; i++)
		assert_int_equal(pthread_create(&th[i], NULL, producer_thread, &p[i]), 0);
	wait_ok(p, 7, want, "30 pushes each");

	/* A long poll parked on B when PostgreSQL goes away ends on time. */
	parked.c = client_to(cl->in[1], 5000);
	parked.wait_ms = 3000;
	parked.queue = "pq";
	mqtest_make_queue(cl->in[0], "pq", 60000, 0);
	assert_int_equal(pthread_create(&pth, NULL, poll_thread, &parked), 0);
	for (t_park = 0; t_park < 400 && parked_pulls(cl) < 1; t_park++)
		usleep(25 * 1000);
	if (t_park == 400) {
		pthread_join(pth, NULL);
		fail_msg("B's long poll never showed in mq_parked_pulls (pull: %s)",
		         mq_status_name(parked.st));
	}

	rc = mqtest_run(out, sizeof(out), "'%s' stop '%s' 2>&1", pgsh, pgdir);
	if (rc != 0)
		fail_msg("pg.sh stop: %d: %s", rc, out);
	print_message("PostgreSQL stopped after %d/%d/%d acknowledged pushes\n",
	              atomic_load(&p[0].n_ok), atomic_load(&p[1].n_ok), atomic_load(&p[2].n_ok));
	/* Every instance answers UNAVAILABLE, with a message, and keeps running. */
	for (int t = 0; t < 600; t++) {
		bool all = true;
		for (int i = 0; i < N_INST; i++)
			if (atomic_load(&p[i].n_unavail) < 3)
				all = false;
		if (all)
			break;
		usleep(50 * 1000);
	}
	for (int i = 0; i < N_INST; i++) {
		mq_queue_info qi;
		mq_message *m = NULL;
		mq_pull_opts po = {0};
		size_t n = 0;
		if (atomic_load(&p[i].n_unavail) < 3)
			fail_msg(
			    "producer %s: %d UNAVAILABLE within 30 s of the stop (%d other: %s: "
			    "%s)",
			    inst_name[i], atomic_load(&p[i].n_unavail), atomic_load(&p[i].n_other),
			    mq_status_name(p[i].other_status), p[i].other_msg);
		assert_mq_status(mq_queue_get(cl->in[i]->c, "rq", &qi), MQ_UNAVAILABLE);
		print_message("%s while PostgreSQL is down: GetQueue: UNAVAILABLE: %s\n",
		              inst_name[i], mq_errmsg());
		assert_true(mentions_postgres(mq_errmsg()));
		assert_mq_status(mq_pull(cl->in[i]->c, "rq", &po, &m, 1, &n), MQ_UNAVAILABLE);
		assert_true(mentions_postgres(mq_errmsg()));
		assert_true(mentions_postgres(p[i].unavail_msg));
		assert_int_equal(waitpid(cl->in[i]->b.pid, NULL, WNOHANG), 0); /* still running */
	}
	/* The parked pull was answered when its wait ended, empty or
	 * UNAVAILABLE, not left to the client's timeout. */
	pthread_join(pth, NULL);
	print_message("long poll parked on B across the stop: %s, %zu message(s)\n",
	              mq_status_name(parked.st), parked.n);
	if (parked.st != MQ_OK && parked.st != MQ_UNAVAILABLE)
		fail_msg("a long poll parked across the stop got %s, want OK (empty) or "
		         "UNAVAILABLE",
		         mq_status_name(parked.st));
	assert_int_equal(parked.n, 0);
	mq_client_close(parked.c);
	/* The consumer's pulls fail meanwhile (bounded: 30 s). */
	for (int t = 0; t < 600 && atomic_load(&cs.unavailable) == 0; t++)
		usleep(50 * 1000);
	assert_true(atomic_load(&cs.unavailable) > 0);

	rc = mqtest_run(out, sizeof(out), "'%s' start '%s' 2>&1", pgsh, pgdir);
	if (rc != 0)
		fail_msg("pg.sh start: %d: %s", rc, out);
	for (int i = 0; i < N_INST; i++)
		want[i] = atomic_load(&p[i].n_ok) + 30;
	wait_ok(p, 7, want, "30 more pushes each after PostgreSQL came back");
	/* The same consumer, never restarted, takes what comes now. */
	cq_push(cl->in[1], CQ_EACH);
	cq_wait(cons, &cs, 2 * CQ_EACH);
	assert_mq_ok(mq_consumer_stop(cons, 10000));
	for (int k = 0; k < 2 * CQ_EACH; k++)
		if (!atomic_load(&cs.seen[k]))
			fail_msg("the consumer never handled cq message %d", k);
	print_message("consumer on C: %d handled, %d runtime errors (%d UNAVAILABLE) during the "
	              "outage%s%s\n",
	              atomic_load(&cs.handled), atomic_load(&cs.errors),
	              atomic_load(&cs.unavailable), cs.other[0] ? "; first other: " : "", cs.other);
	if (cs.other[0])
		fail_msg("the consumer runtime got %s during the outage: only UNAVAILABLE expected",
		         cs.other);
	mq_consumer_close(cons);
	mq_client_close(cc);
	pthread_mutex_destroy(&cs.mu);
	atomic_store(&stop, 1);
	for (int i = 0; i < N_INST; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < N_INST; i++) {
		print_message("producer %s: %d tried, %d ok, %d UNAVAILABLE, %d other%s%s%s\n",
		              inst_name[i], atomic_load(&p[i].n_tried), atomic_load(&p[i].n_ok),
		              atomic_load(&p[i].n_unavail), atomic_load(&p[i].n_other),
		              atomic_load(&p[i].n_other) ? " (first: " : "",
		              atomic_load(&p[i].n_other) ? mq_status_name(p[i].other_status) : "",
		              atomic_load(&p[i].n_other) ? ")" : "");
		if (atomic_load(&p[i].n_other))
			fail_msg("producer %s got %s (%s): only OK or UNAVAILABLE expected",
			         inst_name[i], mq_status_name(p[i].other_status), p[i].other_msg);
		assert_int_equal(waitpid(cl->in[i]->b.pid, NULL, WNOHANG), 0);
	}
	/* No acknowledged push lost, read through each instance. */
	for (int i = 0; i < N_INST; i++)
		all_present(cl->in[i], "rq", p);
	for (int i = 0; i < N_INST; i++)
		mq_client_close(p[i].c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_cross_instance, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fencing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wakeup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dedup_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_groups_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schedule_once, setup_debug, teardown),
	    cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pg_restart, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
