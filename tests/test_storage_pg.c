/* SPDX-License-Identifier: MIT */
/*
 * test_storage_pg.c: what the postgres engine adds to the storage contract
 * (storage.h): several stores (processes) on one schema share ids, leases
 * and fencing tokens; store_watch tells one what another made ready; time
 * comes from the database; an unreachable or restarted server is
 * UNAVAILABLE, then served again without reopening; a newer schema or
 * table layout is refused. The common contract runs against postgres in
 * test_storage and friends (argv "postgres"). Needs MQ_TEST_PG, and for
 * the restart MQ_TEST_PGSH and MQ_TEST_PGDIR: run through tests/pg.sh run.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "storefx.h"

/* A second store on the fixture's schema: another mqd, as far as the
 * database can tell. */
static store *open_peer(fx *f)
{
	store *s = NULL;

	OK(store_open(&s, &f->cfg, &E));
	return s;
}

static store_txn *begin_s(store *s)
{
	store_txn *t = NULL;

	OK(store_begin(s, &t, &E));
	return t;
}

static PGconn *sql_conn(void)
{
	PGconn *c = PQconnectdb(getenv("MQ_TEST_PG"));

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	return c;
}

static void sql(PGconn *c, const char *q)
{
	PGresult *r = PQexec(c, q);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", q, PQresultErrorMessage(r));
	PQclear(r);
}

/* ---- shared ids, leases and fencing --------------------------------------- */

static void test_pg_two_stores_share(void **state)
{
	fx *f = *state;
	store *b = open_peer(f);
	store_txn *t;
	uint64_t ids[6];
	got g, g2;

	/* ids from both stores, interleaved: unique and increasing */
	for (int i = 0; i < 6; i++) {
		t = i % 2 ? begin_s(b) : begin(f);
		ids[i] = push(t, "q", i % 2 ? "from b" : "from a");
		commit(t);
		if (i > 0)
			assert_true(ids[i] > ids[i - 1]);
	}
	/* a push through a is pulled through b, acked through b */
	t = begin_s(b);
	g = pull1(t, "q", 1000);
	assert_int_equal(g.id, ids[0]);
	assert_string_equal(g.payload, "from a");
	OK(store_ack(t, "q", g.id, g.token, &E));
	commit(t);
	/* a lease taken through a, then expired and leased again through b:
	 * the first token is stale through both stores */
	t = begin(f);
	g = pull1(t, "q", 1000);
	assert_int_equal(g.id, ids[1]);
	commit(t);
	f->now += 1001;
	t = begin_s(b);
	assert_int_equal(tick(t, 0), 1);
	g2 = pull1(t, "q", 1000);
	assert_int_equal(g2.id, g.id);
	assert_true(g2.token != g.token);
	assert_int_equal(g2.attempts, 2);
	commit(t);
	t = begin(f);
	ST(store_ack(t, "q", g.id, g.token, &E), MQ_FAILED_PRECONDITION);
	commit(t);
	t = begin_s(b);
	ST(store_ack(t, "q", g.id, g.token, &E), MQ_FAILED_PRECONDITION);
	ST(store_extend(t, "q", g.id, g.token, 0, &(uint64_t){0}, &E), MQ_FAILED_PRECONDITION);
	commit(t);
	/* the live token works through the other store */
	t = begin(f);
	OK(store_ack(t, "q", g2.id, g2.token, &E));
	assert_gauges(t, "q", 4, 0, 0, 0);
	assert_int_equal(stats(t, "q").pushed_total, 6);
	assert_int_equal(stats(t, "q").acked_total, 2);
	commit(t);
	/* queues created through one are there in the other */
	t = begin_s(b);
	create(t, "made-in-b", 0, 0);
	commit(t);
	t = begin(f);
	ST(store_queue_create(t, "made-in-b", NULL, false, NULL, NULL, &E), MQ_ALREADY_EXISTS);
	commit(t);
	store_close(b);
}

/* ---- store_watch ------------------------------------------------------------ */

typedef struct watched {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char names[16][MQ_NAME_MAX + 1];
	int n;
	int any; /* NULL queue: anything may be ready */
} watched;

static void on_watch(void *arg, const char *queue)
{
	watched *w = arg;

	pthread_mutex_lock(&w->mu);
	if (!queue)
		w->any++;
	else if (w->n < 16)
		snprintf(w->names[w->n++], sizeof(w->names[0]), "%s", queue);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* wait_for waits (at most 10 s) until w saw n queues or `any` reached
 * any; true if it did. */
static bool wait_for(watched *w, int n, int any)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&w->mu);
	while ((w->n < n || w->any < any) && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0)
		;
	ok = w->n >= n && w->any >= any;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

/* wait_name waits (at most 10 s) until w heard queue; true if it did. */
static bool wait_name(watched *w, const char *queue)
{
	struct timespec ts;
	bool seen = false;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		for (int i = 0; i < w->n && !seen; i++)
			seen = strcmp(w->names[i], queue) == 0;
		if (seen || pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&w->mu);
	return seen;
}

static void test_pg_watch(void **state)
{
	fx *f = *state;
	store *b = open_peer(f);
	watched wa = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	watched wb = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	store_txn *t;

	OK(store_watch(f->s, on_watch, &wa, &E));
	OK(store_watch(b, on_watch, &wb, &E));
	/* The LISTEN connections come up on their own threads: push until
	 * b hears of one (bounded), then count from a clean state. */
	for (int i = 0; i < 50 && !wait_for(&wb, 1, 0); i++) {
		t = begin(f);
		push(t, "warmup", "x");
		commit(t);
	}
	assert_true(wb.n >= 1);
	assert_string_equal(wb.names[0], "warmup");
	/* A session's notifications arrive in commit order: once b heard
	 * "sync-a" (and a "sync-b"), every warm-up push was heard. */
	pthread_mutex_lock(&wb.mu);
	wb.n = 0;
	pthread_mutex_unlock(&wb.mu);
	t = begin(f);
	push(t, "sync-a", "x");
	commit(t);
	assert_true(wait_name(&wb, "sync-a"));
	t = begin_s(b);
	push(t, "sync-b", "x");
	commit(t);
	assert_true(wait_name(&wa, "sync-b")); /* a hears b's push */
	pthread_mutex_lock(&wa.mu);
	wa.n = 0;
	pthread_mutex_unlock(&wa.mu);
	pthread_mutex_lock(&wb.mu);
	wb.n = 0;
	pthread_mutex_unlock(&wb.mu);

	/* a push through a: b hears "orders" (a does not hear itself) */
	t = begin(f);
	push(t, "orders", "x");
	push(t, "orders", "y"); /* one notification per queue and commit */
	commit(t);
	assert_true(wait_for(&wb, 1, 0));
	/* then a push through b, which a hears: had a heard its own, that
	 * would have come first */
	t = begin_s(b);
	push(t, "mails", "x");
	commit(t);
	assert_true(wait_for(&wa, 1, 0));
	assert_string_equal(wa.names[0], "mails");
	assert_string_equal(wb.names[0], "orders");
	/* an aborted transaction tells nobody; a delayed push neither */
	t = begin(f);
	push(t, "aborted", "x");
	store_abort(t);
	t = begin(f);
	push_x(t, "later", "x", 0, 60000);
	commit(t);
	t = begin(f);
	push(t, "marker", "x");
	commit(t);
	assert_true(wait_for(&wb, 2, 0));
	assert_string_equal(wb.names[1], "marker");
	/* the ready callback inside the transaction still runs as before */
	assert_true(f->ready_calls > 0);
	store_unwatch(f->s);
	store_unwatch(b);
	store_close(b);
}

/* ---- time -------------------------------------------------------------------- */

static void test_pg_database_clock(void **state)
{
	fx *f = *state;
	store_config c = f->cfg;
	store *s = NULL;
	store_txn *t;
	struct timeval tv;
	uint64_t wall, now;
	got g;

	c.clock = NULL; /* the engine's own: the database's */
	OK(store_open(&s, &c, &E));
	t = begin_s(s);
	g = pull1((push(t, "q", "x"), t), "q", 5000);
	commit(t);
	gettimeofday(&tv, NULL);
	wall = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
	now = store_now(s);
	/* same machine: the database's clock is ours, give or take the
	 * round trip; a broken offset would be far off */
	assert_true(now + 2000 > wall && now < wall + 2000);
	assert_true(g.enqueued + 2000 > wall && g.enqueued <= now);
	assert_true(g.expiry >= g.enqueued + 5000 && g.expiry < now + 5000 + 2000);
	store_close(s);
}

/* ---- failures ------------------------------------------------------------------ */

static void test_pg_unreachable(void **state)
{
	fx *f = *state;
	store_config c = f->cfg;
	store *s = (store *)1;

	c.pg_conninfo = "host=127.0.0.1 port=1 user=mq dbname=mq connect_timeout=2";
	ST(store_open(&s, &c, &E), MQ_UNAVAILABLE);
	assert_null(s);
	assert_non_null(strstr(E.msg, "postgres"));
	c.pg_conninfo = NULL;
	ST(store_open(&s, &c, &E), MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(E.msg, "--pg"));
	c.pg_conninfo = f->cfg.pg_conninfo;
	c.pg_schema = "Bad-Name";
	ST(store_open(&s, &c, &E), MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(E.msg, "schema"));
}

static void run_pgsh(const char *verb)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "'%s' %s '%s' >/dev/null", getenv("MQ_TEST_PGSH"), verb,
	         getenv("MQ_TEST_PGDIR"));
	assert_int_equal(system(cmd), 0);
}

static void test_pg_server_restart(void **state)
{
	fx *f = *state;
	watched w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	store_txn *t = NULL;
	mq_status st = MQ_UNAVAILABLE;
	uint64_t id;
	int tries;

	if (!getenv("MQ_TEST_PGSH") || !getenv("MQ_TEST_PGDIR"))
		fail_msg("MQ_TEST_PGSH / MQ_TEST_PGDIR not set: run through tests/pg.sh run");
	OK(store_watch(f->s, on_watch, &w, &E));
	t = begin(f);
	id = push(t, "q", "committed before");
	commit(t);
	run_pgsh("stop");
	/* down: UNAVAILABLE, with a reason, and nothing else breaks */
	st = store_begin(f->s, &t, &E);
	assert_int_equal(st, MQ_UNAVAILABLE);
	assert_non_null(strstr(E.msg, "postgres"));
	assert_non_null(strstr(E.msg, "retryable"));
	run_pgsh("start");
	/* back: served again by the same store, within a bounded wait */
	for (tries = 0; tries < 100; tries++) {
		if ((st = store_begin(f->s, &t, &E)) == MQ_OK)
			break;
		assert_int_equal(st, MQ_UNAVAILABLE);
		usleep(100 * 1000);
	}
	assert_int_equal(st, MQ_OK);
	{
		got g = pull1(t, "q", 1000);

		assert_int_equal(g.id, id);
		assert_string_equal(g.payload, "committed before");
	}
	commit(t);
	/* the watch reconnected and said "anything may be ready" */
	assert_true(wait_for(&w, 0, 1));
	store_unwatch(f->s);
}

static long long wal_syncs(PGconn *c)
{
	PGresult *r = PQexec(c, "SELECT wal_sync FROM pg_stat_wal");
	long long n;

	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

/* Durable: every commit waits for a WAL flush that covers it (the
 * transaction commits asynchronously, a barrier after it synchronously);
 * relaxed: none. Counted by PostgreSQL's own WAL statistics, which a
 * backend reports when it exits (the store's close). */
static void test_pg_commits_flush(void **state)
{
	fx *f = *state;
	PGconn *c = sql_conn();
	long long before, after = 0, relaxed_after = 0;
	store_txn *t;

	for (int mode = 0; mode < 2; mode++) {
		store_close(f->s);
		f->cfg.durability = mode ? STORE_RELAXED : STORE_DURABLE;
		fx_open(f);
		before = wal_syncs(c);
		for (int i = 0; i < 20; i++) {
			t = begin(f);
			push(t, "q", "x");
			commit(t);
		}
		store_close(f->s);
		f->s = NULL;
		/* the exiting backend's statistics arrive soon after (bounded) */
		for (int i = 0; i < 50; i++) {
			PQclear(PQexec(c, "SELECT pg_stat_clear_snapshot()"));
			if (wal_syncs(c) - before >= 20)
				break;
			usleep(100 * 1000);
		}
		if (mode == 0)
			after = wal_syncs(c) - before;
		else
			relaxed_after = wal_syncs(c) - before;
	}
	print_message("WAL flushes for 20 commits: durable %lld, relaxed %lld\n", after,
	              relaxed_after);
	assert_true(after >= 20);
	/* relaxed commits leave the flushes to PostgreSQL's WAL writer */
	assert_true(relaxed_after < 20);
	f->cfg.durability = STORE_DURABLE;
	fx_open(f);
	PQfinish(c);
}

static void test_pg_newer_refused(void **state)
{
	fx *f = *state;
	PGconn *c = sql_conn();
	store *s = NULL;
	char q[512];

	store_close(f->s);
	f->s = NULL;
	/* the store's schema version (meta "schema", le32) from the future */
	snprintf(q, sizeof(q),
	         "UPDATE \"%s\".meta SET v = '\\x63000000'::bytea WHERE k = 'schema'::bytea",
	         f->schema);
	sql(c, q);
	ST(store_open(&s, &f->cfg, &E), MQ_FAILED_PRECONDITION);
	assert_null(s);
	assert_non_null(strstr(E.msg, "99"));
	/* and the tables' layout from the future */
	snprintf(q, sizeof(q),
	         "UPDATE \"%s\".meta SET v = '\\x03000000'::bytea WHERE k = 'schema'::bytea; "
	         "UPDATE \"%s\".meta SET v = '\\x07000000'::bytea WHERE k = 'pg_layout'::bytea",
	         f->schema, f->schema);
	sql(c, q);
	ST(store_open(&s, &f->cfg, &E), MQ_FAILED_PRECONDITION);
	assert_non_null(strstr(E.msg, "layout 7"));
	PQfinish(c);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pg_two_stores_share, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pg_watch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pg_database_clock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pg_commits_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pg_unreachable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pg_newer_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pg_server_restart, setup, teardown),
	};

	(void)argc;
	(void)argv;
	g_engine = "postgres";
	if (!storefx_engine_ok())
		return 2;
	return cmocka_run_group_tests_name("storage-pg", tests, NULL, NULL);
}
