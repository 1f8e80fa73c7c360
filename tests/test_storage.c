/* SPDX-License-Identifier: MIT */
/*
 * test_storage.c: the job state machine of storage/storage.h, run against
 * one engine named by argv[1] ("lmdb" or "memory"). Every test uses a
 * fresh temp dir and a controllable clock. LMDB-only tests (reopen, lock,
 * map growth and map full, schema version) run only for "lmdb".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>
#include <sys/stat.h>

#include "storefx.h"

/* ---- tests: both engines ------------------------------------------------ */

static void test_storage_open_info(void **state)
{
	fx *f = *state;
	uint64_t used = 1, map = 1;

	assert_string_equal(store_engine(f->s), g_engine);
	assert_string_equal(store_durability_name(f->s), is_durable() ? "durable" : "none");
	assert_int_equal(store_now(f->s), T0);
	OK(store_sync(f->s, &E));
	store_usage(f->s, &used, &map);
	if (is_lmdb()) {
		assert_true(used > 0 && used <= map);
		assert_int_equal(map, STORE_DEFAULT_MAP_SIZE);
	} else {
		assert_int_equal(used, 0);
		assert_int_equal(map, 0);
	}
}

static void test_storage_open_errors(void **state)
{
	fx *f = *state;
	store *s2 = (store *)1;
	store_config c = f->cfg;

	c.engine = "sqlite";
	ST(store_open(&s2, &c, &E), MQ_INVALID_ARGUMENT);
	assert_null(s2);
	assert_non_null(strstr(E.msg, "sqlite"));
	c.engine = "lmdb";
	c.path = NULL;
	ST(store_open(&s2, &c, &E), MQ_INVALID_ARGUMENT);
}

static void test_storage_names(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_msg m = {.payload = "x", .payload_len = 1};
	store_push_result r;
	store_queue_info info;
	store_queue_config big = qcfg(STORE_MAX_LEASE_MS + 1, 0);
	char longname[MQ_NAME_MAX + 2];
	const char *bad[] = {"", "a b", "q/1", "é", longname, NULL};
	uint32_t n;
	bool created = true;

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	for (int i = 0; i < 6; i++) {
		ST(store_queue_create(t, bad[i], NULL, false, NULL, NULL, &E), MQ_INVALID_ARGUMENT);
		assert_non_null(strstr(E.msg, "[A-Za-z0-9._-]"));
		ST(store_push(t, bad[i], true, &m, &r, &E), MQ_INVALID_ARGUMENT);
		ST(store_pull(t, bad[i], 1, 0, collect, NULL, &n, &E), MQ_INVALID_ARGUMENT);
		ST(store_queue_get(t, bad[i], &info, &E), MQ_INVALID_ARGUMENT);
	}
	longname[MQ_NAME_MAX] = 0; /* exactly MQ_NAME_MAX: valid */
	OK(store_queue_create(t, longname, NULL, false, &info, &created, &E));
	assert_true(created);
	assert_string_equal(info.name, longname);
	ST(store_queue_create(t, "q", &big, false, NULL, NULL, &E), MQ_INVALID_ARGUMENT);
	ST(store_queue_get(t, "q", &info, &E), MQ_NOT_FOUND);
	assert_false(store_txn_failed(t));
	commit(t);
}

static void test_storage_queue_create_get(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_queue_config c = qcfg(5000, 7);
	store_queue_info info;
	bool created = false;

	OK(store_queue_create(t, "jobs", &c, false, &info, &created, &E));
	assert_true(created);
	assert_int_equal(info.config.lease_ms, 5000);
	assert_int_equal(info.config.max_attempts, 7);
	assert_int_equal(info.created_ms, T0);
	ST(store_queue_create(t, "jobs", NULL, false, NULL, NULL, &E), MQ_ALREADY_EXISTS);
	assert_non_null(strstr(E.msg, "jobs"));
	f->now += 10;
	OK(store_queue_create(t, "jobs", NULL, true, &info, &created, &E));
	assert_false(created);
	assert_int_equal(info.config.lease_ms, 5000);
	assert_int_equal(info.created_ms, T0);
	commit(t);
	t = begin(f);
	memset(&info, 0xff, sizeof(info));
	OK(store_queue_get(t, "jobs", &info, &E));
	assert_string_equal(info.name, "jobs");
	assert_int_equal(info.config.max_attempts, 7);
	assert_int_equal(info.stats.pushed_total, 0);
	assert_int_equal(info.stats.ready, 0);
	ST(store_queue_get(t, "nope", &info, &E), MQ_NOT_FOUND);
	assert_non_null(strstr(E.msg, "nope"));
	commit(t);
}

static void test_storage_auto_create(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_msg m = {.payload = "x", .payload_len = 1};
	store_push_result r = {0};
	store_queue_info info;

	ST(store_push(t, "a", false, &m, &r, &E), MQ_NOT_FOUND);
	ST(store_queue_get(t, "a", &info, &E), MQ_NOT_FOUND);
	OK(store_push(t, "a", true, &m, &r, &E));
	OK(store_queue_get(t, "a", &info, &E));
	assert_int_equal(info.config.lease_ms, 0);
	assert_int_equal(info.config.max_attempts, 0);
	assert_int_equal(info.stats.ready, 1);
	assert_int_equal(info.stats.pushed_total, 1);
	OK(store_push(t, "a", false, &m, &r, &E));
	commit(t);
	t = begin(f);
	assert_gauges(t, "a", 2, 0, 0, 0);
	commit(t);
}

static void test_storage_push_pull_ack(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_header h[2] = {{"k1", "v1"}, {"k2", ""}};
	store_push_msg m = {
	    .payload = "hello\0world",
	    .payload_len = 11,
	    .type = "email",
	    .headers = h,
	    .n_headers = 2,
	    .priority = 3,
	};
	store_push_result r = {0};
	uint64_t id2, prev;
	got g;
	gots gs = {0};

	create(t, "q", 0, 0);
	f->ready_calls = 0;
	OK(store_push(t, "q", false, &m, &r, &E));
	assert_false(r.duplicate);
	assert_int_equal(f->ready_calls, 1);
	assert_string_equal(f->last_ready, "q");
	id2 = push(t, "q", "second");
	assert_true(id2 > r.id);
	commit(t);

	t = begin(f);
	f->now += 5;
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, r.id);
	assert_string_equal(g.queue, "q");
	assert_int_equal(g.payload_len, 11);
	assert_memory_equal(g.payload, "hello", 6);
	assert_string_equal(g.type, "email");
	assert_string_equal(g.dedup, "");
	assert_int_equal(g.n_headers, 2);
	assert_string_equal(g.hk[0], "k1");
	assert_string_equal(g.hv[0], "v1");
	assert_string_equal(g.hk[1], "k2");
	assert_string_equal(g.hv[1], "");
	assert_int_equal(g.attempts, 1);
	assert_int_equal(g.state, STORE_STATE_LEASED);
	assert_int_equal(g.prio, 3);
	assert_int_equal(g.enqueued, T0);
	assert_int_equal(g.expiry, f->now + STORE_DEFAULT_LEASE_MS);
	assert_true(g.token != 0);
	assert_gauges(t, "q", 1, 0, 1, 0);
	OK(store_ack(t, "q", g.id, g.token, &E));
	ST(store_ack(t, "q", g.id, g.token, &E), MQ_NOT_FOUND);
	assert_gauges(t, "q", 1, 0, 0, 0);
	commit(t);

	/* ids keep increasing, across queues too */
	t = begin(f);
	prev = id2;
	for (int i = 0; i < 5; i++) {
		uint64_t id = push(t, i % 2 ? "q" : "other", "x");

		assert_true(id > prev);
		prev = id;
	}
	assert_int_equal(pull(t, "q", 10, 0, &gs), 3);
	assert_int_equal(gs.g[0].id, id2);
	for (uint32_t i = 0; i < gs.n; i++)
		OK(store_ack(t, "q", gs.g[i].id, gs.g[i].token, &E));
	{
		store_queue_stats s = stats(t, "q");

		assert_int_equal(s.pushed_total, 4);
		assert_int_equal(s.acked_total, 4);
		assert_int_equal(s.ready + s.delayed + s.in_flight + s.dead, 0);
		assert_int_equal(s.nacked_total + s.expired_total + s.dead_total, 0);
	}
	/* an empty queue pulls nothing; a missing one is NOT_FOUND */
	assert_int_equal(pull(t, "q", 10, 0, &gs), 0);
	ST(store_pull(t, "missing", 1, 0, collect, &gs, NULL, &E), MQ_NOT_FOUND);
	ST(store_ack(t, "missing", 1, 1, &E), MQ_NOT_FOUND);
	commit(t);
}

static void test_storage_priority_fifo(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	const int32_t prios[] = {0, 5, 0, 5, -3, 10, INT32_MIN, INT32_MAX, -3};
	uint64_t ids[9];
	const int want[] = {7, 5, 1, 3, 0, 2, 4, 8, 6}; /* indexes, in pull order */
	gots gs = {0};

	for (int i = 0; i < 9; i++)
		ids[i] = push_x(t, "q", "p", prios[i], 0);
	commit(t);
	t = begin(f);
	/* two pulls: the order holds across them */
	assert_int_equal(pull(t, "q", 4, 0, &gs), 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(gs.g[i].id, ids[want[i]]);
		assert_int_equal(gs.g[i].prio, prios[want[i]]);
	}
	assert_int_equal(pull(t, "q", 100, 0, &gs), 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(gs.g[i].id, ids[want[4 + i]]);
	commit(t);
}

static void test_storage_pull_stop_and_lease(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	gots gs = {.stop_after = 2};
	uint32_t n = 0;
	got g;

	create(t, "q", 2000, 0);
	for (int i = 0; i < 5; i++)
		push(t, "q", "x");
	OK(store_pull(t, "q", 5, 0, collect, &gs, &n, &E));
	assert_int_equal(n, 2); /* the third was offered, refused, not leased */
	assert_int_equal(gs.n, 2);
	assert_gauges(t, "q", 3, 0, 2, 0);
	assert_int_equal(gs.g[0].expiry, T0 + 2000); /* queue default */
	assert_int_equal(gs.g[1].token, gs.g[0].token + 1);
	g = pull1(t, "q", 100);
	assert_int_equal(g.expiry, T0 + 100);
	g = pull1(t, "q", UINT32_MAX);
	assert_int_equal(g.expiry, T0 + STORE_MAX_LEASE_MS);
	OK(store_pull(t, "q", 0, 0, collect, &gs, &n, &E));
	assert_int_equal(n, 0);
	assert_gauges(t, "q", 1, 0, 4, 0);
	commit(t);
}

static void test_storage_store_defaults(void **state)
{
	fx *f = *state;
	store_txn *t;
	got g;

	store_close(f->s);
	f->cfg.default_lease_ms = 700;
	f->cfg.default_max_attempts = 1;
	f->cfg.engine = g_engine;
	rmtree(f->dir);
	fx_fresh(f);
	fx_open(f);
	t = begin(f);
	push(t, "q", "x");
	g = pull1(t, "q", 0);
	assert_int_equal(g.expiry, T0 + 700);
	OK(store_nack(t, "q", g.id, g.token, 0, "boom", &E));
	assert_gauges(t, "q", 0, 0, 0, 1); /* max_attempts 1: dead at once */
	commit(t);
}

static void test_storage_delay_and_promotion(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	gots gs = {0};
	uint64_t id;
	store_queue_stats s;

	f->ready_calls = 0;
	id = push_x(t, "q", "later", 0, 1000);
	assert_int_equal(f->ready_calls, 0);
	assert_gauges(t, "q", 0, 1, 0, 0);
	assert_int_equal(pull(t, "q", 10, 0, &gs), 0);
	assert_int_equal(next_due(t), T0 + 1000);
	commit(t);

	t = begin(f);
	f->now = T0 + 999;
	assert_int_equal(tick(t, 0), 0);
	assert_gauges(t, "q", 0, 1, 0, 0);
	f->now = T0 + 1000;
	assert_int_equal(tick(t, 0), 1);
	assert_int_equal(f->ready_calls, 1);
	assert_string_equal(f->last_ready, "q");
	assert_gauges(t, "q", 1, 0, 0, 0);
	assert_int_equal(next_due(t), UINT64_MAX);
	assert_int_equal(pull(t, "q", 10, 0, &gs), 1);
	assert_int_equal(gs.g[0].id, id);
	assert_int_equal(gs.g[0].attempts, 1);
	s = stats(t, "q");
	assert_int_equal(s.expired_total, 0);
	assert_int_equal(s.pushed_total, 1);
	commit(t);
}

static void test_storage_tick_bounded(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);

	for (int i = 0; i < 10; i++)
		push_x(t, "q", "d", 0, 100 + (uint64_t)i);
	push_x(t, "q", "far", 0, 100000);
	f->now = T0 + 500;
	assert_int_equal(tick(t, 3), 3);
	assert_gauges(t, "q", 3, 8, 0, 0);
	assert_int_equal(next_due(t), T0 + 103);
	assert_int_equal(tick(t, 0), 7);
	assert_gauges(t, "q", 10, 1, 0, 0);
	assert_int_equal(next_due(t), T0 + 100000);
	commit(t);
}

static void test_storage_lease_expiry(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	uint64_t exp;
	store_queue_stats s;
	got g, g2, g3;

	create(t, "q", 100, 3);
	push(t, "q", "job");
	g = pull1(t, "q", 0);
	assert_int_equal(next_due(t), T0 + 100);
	commit(t);

	/* expired by the clock, not yet ticked: every lease op is refused */
	t = begin(f);
	f->now = T0 + 100;
	ST(store_ack(t, "q", g.id, g.token, &E), MQ_FAILED_PRECONDITION);
	assert_non_null(strstr(E.msg, "expired"));
	ST(store_nack(t, "q", g.id, g.token, 0, NULL, &E), MQ_FAILED_PRECONDITION);
	ST(store_extend(t, "q", g.id, g.token, 1000, &exp, &E), MQ_FAILED_PRECONDITION);
	assert_false(store_txn_failed(t));
	assert_gauges(t, "q", 0, 0, 1, 0);
	f->ready_calls = 0;
	assert_int_equal(tick(t, 0), 1);
	assert_int_equal(f->ready_calls, 1);
	assert_gauges(t, "q", 1, 0, 0, 0);
	s = stats(t, "q");
	assert_int_equal(s.expired_total, 1);
	assert_int_equal(s.acked_total, 0);
	commit(t);

	/* redelivery: attempts count, a fresh token; the old one is stale */
	t = begin(f);
	g2 = pull1(t, "q", 0);
	assert_int_equal(g2.id, g.id);
	assert_int_equal(g2.attempts, 2);
	assert_true(g2.token != g.token);
	ST(store_ack(t, "q", g.id, g.token, &E), MQ_FAILED_PRECONDITION);
	f->now += 100;
	assert_int_equal(tick(t, 0), 1);
	g3 = pull1(t, "q", 0);
	assert_int_equal(g3.attempts, 3);
	f->now += 100;
	/* third expiry at max_attempts 3: DEAD */
	assert_int_equal(tick(t, 0), 1);
	assert_gauges(t, "q", 0, 0, 0, 1);
	s = stats(t, "q");
	assert_int_equal(s.expired_total, 3);
	assert_int_equal(s.dead_total, 1);
	assert_int_equal(next_due(t), UINT64_MAX);
	ST(store_ack(t, "q", g3.id, g3.token, &E), MQ_FAILED_PRECONDITION);
	assert_non_null(strstr(E.msg, "DEAD"));
	commit(t);
}

static void test_storage_nack(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_queue_stats s;
	got g;

	create(t, "q", 0, 3);
	push(t, "q", "job");
	g = pull1(t, "q", 0);
	f->ready_calls = 0;
	OK(store_nack(t, "q", g.id, g.token, 0, "try again", &E));
	assert_int_equal(f->ready_calls, 1);
	assert_gauges(t, "q", 1, 0, 0, 0);
	assert_int_equal(next_due(t), UINT64_MAX);
	ST(store_nack(t, "q", g.id, g.token, 0, NULL, &E), MQ_FAILED_PRECONDITION);
	commit(t);

	t = begin(f);
	g = pull1(t, "q", 0);
	assert_int_equal(g.attempts, 2);
	OK(store_nack(t, "q", g.id, g.token, 500, NULL, &E));
	assert_int_equal(f->ready_calls, 1);
	assert_gauges(t, "q", 0, 1, 0, 0);
	assert_int_equal(next_due(t), T0 + 500);
	f->now = T0 + 500;
	assert_int_equal(tick(t, 0), 1);
	assert_int_equal(f->ready_calls, 2);
	g = pull1(t, "q", 0);
	assert_int_equal(g.attempts, 3);
	OK(store_nack(t, "q", g.id, g.token, 0, "final", &E));
	assert_int_equal(f->ready_calls, 2); /* dead: not ready */
	assert_gauges(t, "q", 0, 0, 0, 1);
	s = stats(t, "q");
	assert_int_equal(s.nacked_total, 3);
	assert_int_equal(s.dead_total, 1);
	assert_int_equal(s.expired_total, 0);
	assert_int_equal(next_due(t), UINT64_MAX);
	commit(t);
}

static void test_storage_stale_tokens(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_queue_stats before, after;
	uint64_t exp = 0;
	uint64_t ready_id;
	got g;

	push(t, "q", "a");
	push(t, "other", "b");
	g = pull1(t, "q", 0);
	ready_id = push(t, "q", "c");
	commit(t);

	t = begin(f);
	before = stats(t, "q");
	ST(store_ack(t, "q", g.id, g.token + 1, &E), MQ_FAILED_PRECONDITION);
	assert_non_null(strstr(E.msg, "token"));
	ST(store_ack(t, "q", g.id, 0, &E), MQ_FAILED_PRECONDITION);
	ST(store_nack(t, "q", g.id, g.token + 1, 0, NULL, &E), MQ_FAILED_PRECONDITION);
	ST(store_extend(t, "q", g.id, g.token - 1, 0, &exp, &E), MQ_FAILED_PRECONDITION);
	ST(store_ack(t, "q", ready_id, 0, &E), MQ_FAILED_PRECONDITION);
	assert_non_null(strstr(E.msg, "READY"));
	ST(store_ack(t, "other", g.id, g.token, &E), MQ_NOT_FOUND); /* another queue */
	ST(store_ack(t, "q", 999999, g.token, &E), MQ_NOT_FOUND);
	assert_false(store_txn_failed(t));
	after = stats(t, "q");
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(next_due(t), g.expiry);
	OK(store_ack(t, "q", g.id, g.token, &E)); /* the holder still can */
	commit(t);
}

static void test_storage_extend(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	uint64_t exp = 0;
	got g;

	create(t, "q", 1000, 0);
	push(t, "q", "a");
	g = pull1(t, "q", 0);
	assert_int_equal(g.expiry, T0 + 1000);
	f->now = T0 + 900;
	OK(store_extend(t, "q", g.id, g.token, 5000, &exp, &E));
	assert_int_equal(exp, T0 + 5900);
	assert_int_equal(next_due(t), T0 + 5900);
	commit(t);

	t = begin(f);
	f->now = T0 + 1000;
	assert_int_equal(tick(t, 0), 0); /* the old expiry is gone */
	assert_gauges(t, "q", 0, 0, 1, 0);
	OK(store_extend(t, "q", g.id, g.token, 0, &exp, &E)); /* queue default */
	assert_int_equal(exp, T0 + 2000);
	OK(store_extend(t, "q", g.id, g.token, UINT32_MAX, &exp, &E));
	assert_int_equal(exp, T0 + 1000 + STORE_MAX_LEASE_MS);
	f->now = T0 + 3000;
	OK(store_ack(t, "q", g.id, g.token, &E));
	assert_gauges(t, "q", 0, 0, 0, 0);
	assert_int_equal(next_due(t), UINT64_MAX);
	commit(t);
}

static void test_storage_dedup_ignore(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_result r1, r2;
	store_queue_stats s;
	got g;

	r1 = push_dedup(t, "q", "one", "k", STORE_DEDUP_IGNORE, 0, 0);
	assert_false(r1.duplicate);
	f->ready_calls = 0;
	r2 = push_dedup(t, "q", "two", "k", STORE_DEDUP_IGNORE, 9, 0);
	assert_true(r2.duplicate);
	assert_int_equal(r2.id, r1.id);
	assert_int_equal(f->ready_calls, 0);
	/* the same key in another queue is another key */
	r2 = push_dedup(t, "q2", "x", "k", STORE_DEDUP_IGNORE, 0, 0);
	assert_false(r2.duplicate);
	s = stats(t, "q");
	assert_int_equal(s.pushed_total, 1);
	assert_int_equal(s.deduplicated_total, 1);
	assert_int_equal(s.ready, 1);
	commit(t);
	t = begin(f);
	g = pull1(t, "q", 0);
	assert_string_equal(g.payload, "one");
	assert_string_equal(g.dedup, "k");
	assert_int_equal(g.prio, 0);
	commit(t);
}

static void test_storage_dedup_replace_ready(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_result r;
	uint64_t other;
	store_queue_stats s;
	gots gs = {0};

	r = push_dedup(t, "q", "old", "k", STORE_DEDUP_REPLACE, 0, 0);
	other = push_x(t, "q", "other", 5, 0);
	r = push_dedup(t, "q", "new", "k", STORE_DEDUP_REPLACE, 10, 0);
	assert_true(r.duplicate);
	s = stats(t, "q");
	assert_int_equal(s.pushed_total, 2);
	assert_int_equal(s.deduplicated_total, 1);
	assert_int_equal(s.ready, 2);
	commit(t);
	t = begin(f);
	/* the new priority 10 now sorts before "other" (5) */
	assert_int_equal(pull(t, "q", 10, 0, &gs), 2);
	assert_int_equal(gs.g[0].id, r.id);
	assert_string_equal(gs.g[0].payload, "new");
	assert_int_equal(gs.g[0].prio, 10);
	assert_int_equal(gs.g[1].id, other);
	commit(t);
}

static void test_storage_dedup_replace_delayed(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_result r;
	gots gs = {0};

	r = push_dedup(t, "q", "old", "k", STORE_DEDUP_REPLACE, 0, 1000);
	assert_gauges(t, "q", 0, 1, 0, 0);
	/* DELAYED -> DELAYED with a new not-before */
	push_dedup(t, "q", "mid", "k", STORE_DEDUP_REPLACE, 0, 3000);
	assert_int_equal(next_due(t), T0 + 3000);
	assert_gauges(t, "q", 0, 1, 0, 0);
	/* DELAYED -> READY */
	f->ready_calls = 0;
	push_dedup(t, "q", "now", "k", STORE_DEDUP_REPLACE, 0, 0);
	assert_int_equal(f->ready_calls, 1);
	assert_gauges(t, "q", 1, 0, 0, 0);
	assert_int_equal(next_due(t), UINT64_MAX);
	/* READY -> DELAYED */
	push_dedup(t, "q", "again", "k", STORE_DEDUP_REPLACE, 0, 50);
	assert_gauges(t, "q", 0, 1, 0, 0);
	assert_int_equal(pull(t, "q", 10, 0, &gs), 0);
	f->now = T0 + 50;
	assert_int_equal(tick(t, 0), 1);
	assert_int_equal(pull(t, "q", 10, 0, &gs), 1);
	assert_int_equal(gs.g[0].id, r.id);
	assert_string_equal(gs.g[0].payload, "again");
	assert_int_equal(stats(t, "q").deduplicated_total, 3);
	assert_int_equal(stats(t, "q").pushed_total, 1);
	commit(t);
}

static void test_storage_dedup_leased_then_acked(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_result r, r2;
	got g;

	r = push_dedup(t, "q", "orig", "k", STORE_DEDUP_REPLACE, 0, 0);
	g = pull1(t, "q", 0);
	r2 = push_dedup(t, "q", "repl", "k", STORE_DEDUP_REPLACE, 7, 0);
	assert_true(r2.duplicate);
	assert_int_equal(r2.id, r.id);
	assert_gauges(t, "q", 0, 0, 1, 0); /* left as is */
	assert_int_equal(next_due(t), g.expiry);
	OK(store_ack(t, "q", g.id, g.token, &E));
	/* acked: the key is free again */
	r2 = push_dedup(t, "q", "fresh", "k", STORE_DEDUP_IGNORE, 0, 0);
	assert_false(r2.duplicate);
	assert_true(r2.id > r.id);
	assert_int_equal(stats(t, "q").deduplicated_total, 1);
	commit(t);
	t = begin(f);
	g = pull1(t, "q", 0);
	assert_string_equal(g.payload, "fresh");
	commit(t);
}

static void test_storage_dedup_dead(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_result r, r2, r3;
	uint64_t purged = 0;
	got g;

	create(t, "q", 0, 1);
	r = push_dedup(t, "q", "a", "k", STORE_DEDUP_IGNORE, 0, 0);
	g = pull1(t, "q", 0);
	OK(store_nack(t, "q", g.id, g.token, 0, "bad", &E));
	assert_gauges(t, "q", 0, 0, 0, 1);
	r2 = push_dedup(t, "q", "b", "k", STORE_DEDUP_IGNORE, 0, 0);
	assert_false(r2.duplicate);
	assert_true(r2.id != r.id);
	/* purging the dead one must not free the key the new job holds */
	OK(store_queue_purge(t, "q", STORE_STATE_DEAD, &purged, &E));
	assert_int_equal(purged, 1);
	r3 = push_dedup(t, "q", "c", "k", STORE_DEDUP_IGNORE, 0, 0);
	assert_true(r3.duplicate);
	assert_int_equal(r3.id, r2.id);
	/* dead by expiry frees the key too */
	g = pull1(t, "q", 100);
	f->now += 100;
	assert_int_equal(tick(t, 0), 1);
	assert_gauges(t, "q", 0, 0, 0, 1);
	r3 = push_dedup(t, "q", "d", "k", STORE_DEDUP_IGNORE, 0, 0);
	assert_false(r3.duplicate);
	commit(t);
}

static void test_storage_purge(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	uint64_t purged = 0;
	store_push_result r;
	got g1, g2;

	create(t, "q", 0, 1);
	for (int i = 0; i < 4; i++)
		push(t, "q", "r");
	g1 = pull1(t, "q", 0);
	g2 = pull1(t, "q", 0);
	OK(store_nack(t, "q", g2.id, g2.token, 0, NULL, &E)); /* dead */
	push_x(t, "q", "d", 0, 1000);
	push_dedup(t, "q", "dd", "dk", STORE_DEDUP_IGNORE, 0, 2000);
	push_dedup(t, "q", "rk", "rk", STORE_DEDUP_IGNORE, 0, 0);
	for (int i = 0; i < 3; i++)
		push_x(t, "other", "o", 0, i ? 0 : 10);
	pull1(t, "other", 0);
	commit(t);

	t = begin(f);
	assert_gauges(t, "q", 3, 2, 1, 1);
	ST(store_queue_purge(t, "q", 0x10, &purged, &E), MQ_INVALID_ARGUMENT);
	ST(store_queue_purge(t, "nope", STORE_STATE_ALL, &purged, &E), MQ_NOT_FOUND);
	OK(store_queue_purge(t, "q", STORE_STATE_READY, &purged, &E));
	assert_int_equal(purged, 3);
	assert_gauges(t, "q", 0, 2, 1, 1);
	r = push_dedup(t, "q", "rk2", "rk", STORE_DEDUP_IGNORE, 0, 0); /* key freed */
	assert_false(r.duplicate);
	OK(store_queue_purge(t, "q", STORE_STATE_DEAD, &purged, &E));
	assert_int_equal(purged, 1);
	assert_gauges(t, "q", 1, 2, 1, 0);
	OK(store_queue_purge(t, "q", STORE_STATE_DELAYED | STORE_STATE_LEASED, &purged, &E));
	assert_int_equal(purged, 3);
	assert_gauges(t, "q", 1, 0, 0, 0);
	r = push_dedup(t, "q", "dd2", "dk", STORE_DEDUP_IGNORE, 0, 0);
	assert_false(r.duplicate);
	ST(store_ack(t, "q", g1.id, g1.token, &E), MQ_NOT_FOUND);
	OK(store_queue_purge(t, "q", STORE_STATE_ALL, &purged, &E));
	assert_int_equal(purged, 2);
	assert_gauges(t, "q", 0, 0, 0, 0);
	/* the other queue is untouched; its timers remain */
	assert_gauges(t, "other", 1, 1, 1, 0);
	assert_int_equal(next_due(t), T0 + 10);
	assert_int_equal(stats(t, "q").pushed_total, 9);
	commit(t);
}

/* purge_steps purges q's messages in mask in steps of at most limit, each
 * step its own transaction, and returns the total; *steps counts them. */
static uint64_t purge_steps(fx *f, const char *q, uint32_t mask, uint32_t limit, int *steps)
{
	uint64_t cursor = 0, total = 0;
	bool more = true;

	*steps = 0;
	while (more) {
		store_txn *t = begin(f);
		uint64_t n = 99;

		assert_true(*steps < 1000); /* bounded: a purge that never ends fails */
		OK(store_queue_purge_ex(t, q, mask, limit, &cursor, &n, &more, &E));
		assert_true(n <= limit);
		total += n;
		(*steps)++;
		commit(t);
	}
	return total;
}

static void test_storage_purge_steps(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	uint64_t cursor = 0, n = 0;
	bool more = true;
	int steps;
	got g;

	create(t, "q", 0, 1);
	for (int i = 0; i < 25; i++)
		push(t, "q", "r");
	for (int i = 0; i < 10; i++)
		push_x(t, "q", "d", 0, 1000 + i);
	for (int i = 0; i < 5; i++)
		pull1(t, "q", 0); /* leased */
	for (int i = 0; i < 4; i++) {
		g = pull1(t, "q", 0);
		OK(store_nack(t, "q", g.id, g.token, 0, NULL, &E)); /* dead */
	}
	push(t, "other", "o");
	commit(t);

	t = begin(f);
	assert_gauges(t, "q", 16, 10, 5, 4);
	ST(store_queue_purge_ex(t, "nope", STORE_STATE_ALL, 3, &cursor, &n, &more, &E),
	   MQ_NOT_FOUND);
	ST(store_queue_purge_ex(t, "q", 0x20, 3, &cursor, &n, &more, &E), MQ_INVALID_ARGUMENT);
	commit(t);

	/* Leased only, one per step: the walk reads at most 8 records a step,
	 * so it crosses the 16 ready ones that do not match in bounded steps
	 * and leaves them alone. */
	assert_int_equal(purge_steps(f, "q", STORE_STATE_LEASED, 1, &steps), 5);
	assert_true(steps >= 5);
	t = begin(f);
	assert_gauges(t, "q", 16, 10, 0, 4);
	commit(t);

	/* Ready only, 4 a step: 16 in 4 full steps (the 4th finds nothing
	 * after it, so no empty 5th step). */
	assert_int_equal(purge_steps(f, "q", STORE_STATE_READY, 4, &steps), 16);
	assert_int_equal(steps, 4);
	t = begin(f);
	assert_gauges(t, "q", 0, 10, 0, 4);
	commit(t);

	/* Everything left, 3 a step: 10 delayed and 4 dead. */
	assert_int_equal(purge_steps(f, "q", STORE_STATE_ALL, 3, &steps), 14);
	assert_true(steps >= 5);
	t = begin(f);
	assert_gauges(t, "q", 0, 0, 0, 0);
	assert_gauges(t, "other", 1, 0, 0, 0);
	/* limit 0 is the one-transaction purge; the cursor comes back 0 */
	cursor = 7;
	OK(store_queue_purge_ex(t, "other", STORE_STATE_ALL, 0, &cursor, &n, &more, &E));
	assert_int_equal(n, 1);
	assert_false(more);
	assert_int_equal(cursor, 0);
	commit(t);
}

static void test_storage_delete_queue(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_queue_info info;
	store_push_result r;
	gots gs = {0};
	got g;

	create(t, "q", 0, 1);
	push(t, "q", "r");
	push_x(t, "q", "d", 0, 50);
	g = pull1(t, "q", 0);
	OK(store_nack(t, "q", g.id, g.token, 0, NULL, &E)); /* dead */
	push_dedup(t, "q", "k", "key", STORE_DEDUP_IGNORE, 0, 0);
	g = pull1(t, "q", 0);
	push(t, "keep", "x");
	commit(t);

	t = begin(f);
	ST(store_queue_delete(t, "nope", &E), MQ_NOT_FOUND);
	OK(store_queue_delete(t, "q", &E));
	ST(store_queue_get(t, "q", &info, &E), MQ_NOT_FOUND);
	ST(store_ack(t, "q", g.id, g.token, &E), MQ_NOT_FOUND);
	ST(store_queue_delete(t, "q", &E), MQ_NOT_FOUND);
	assert_int_equal(next_due(t), UINT64_MAX);
	commit(t);

	t = begin(f);
	f->now += 100000;
	assert_int_equal(tick(t, 0), 0);
	create(t, "q", 0, 0);
	assert_gauges(t, "q", 0, 0, 0, 0);
	assert_int_equal(stats(t, "q").pushed_total, 0);
	assert_int_equal(pull(t, "q", 10, 0, &gs), 0);
	r = push_dedup(t, "q", "k2", "key", STORE_DEDUP_IGNORE, 0, 0);
	assert_false(r.duplicate);
	assert_gauges(t, "keep", 1, 0, 0, 0);
	/* delete and create in the same transaction */
	OK(store_queue_delete(t, "keep", &E));
	create(t, "keep", 0, 0);
	assert_gauges(t, "keep", 0, 0, 0, 0);
	commit(t);
	t = begin(f);
	assert_gauges(t, "keep", 0, 0, 0, 0);
	assert_gauges(t, "q", 1, 0, 0, 0);
	commit(t);
}

typedef struct listed {
	char names[64][MQ_NAME_MAX + 1];
	uint64_t ready[64];
	int n;
	int stop_at;
} listed;

static int list_cb(void *arg, const store_queue_info *info)
{
	listed *l = arg;

	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", info->name);
	l->ready[l->n] = info->stats.ready;
	l->n++;
	return l->stop_at && l->n >= l->stop_at;
}

static void test_storage_list_paging(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	listed l = {0};
	bool more = false;
	char name[16], after[16] = "";
	int total = 0;

	for (int i = 24; i >= 0; i--) {
		snprintf(name, sizeof(name), "q%02d", i);
		create(t, name, 0, 0);
	}
	commit(t);

	t = begin(f);
	push(t, "q03", "x"); /* uncommitted counters show in the listing */
	for (int page = 0; page < 3; page++) {
		l.n = 0;
		OK(store_queue_list(t, after, 10, list_cb, &l, &more, &E));
		assert_int_equal(l.n, page < 2 ? 10 : 5);
		assert_int_equal(more, page < 2);
		for (int i = 0; i < l.n; i++) {
			snprintf(name, sizeof(name), "q%02d", total + i);
			assert_string_equal(l.names[i], name);
			assert_int_equal(l.ready[i], total + i == 3 ? 1 : 0);
		}
		total += l.n;
		snprintf(after, sizeof(after), "%s", l.names[l.n - 1]);
	}
	/* exactly at the end */
	l.n = 0;
	OK(store_queue_list(t, "q14", 10, list_cb, &l, &more, &E));
	assert_int_equal(l.n, 10);
	assert_false(more);
	/* after a name that is not a queue */
	l.n = 0;
	OK(store_queue_list(t, "q05x", 2, list_cb, &l, &more, &E));
	assert_string_equal(l.names[0], "q06");
	assert_true(more);
	/* the callback stops early */
	l.n = 0;
	l.stop_at = 3;
	OK(store_queue_list(t, NULL, 0, list_cb, &l, &more, &E));
	assert_int_equal(l.n, 3);
	assert_true(more);
	l.n = 0;
	l.stop_at = 0;
	OK(store_queue_list(t, "", 0, list_cb, &l, &more, &E));
	assert_int_equal(l.n, 25);
	assert_false(more);
	commit(t);
}

static void test_storage_request_errors_change_nothing(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	char key[300];
	store_header bad_h[1] = {{NULL, "v"}};
	store_push_msg m = {.payload = "x", .payload_len = 1};
	store_push_result r;
	store_queue_info info;

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = 0;
	m.dedup_key = key;
	ST(store_push(t, "newq", true, &m, &r, &E), MQ_INVALID_ARGUMENT);
	m.dedup_key = NULL;
	m.headers = bad_h;
	m.n_headers = 1;
	ST(store_push(t, "newq", true, &m, &r, &E), MQ_INVALID_ARGUMENT);
	m.headers = NULL;
	ST(store_push(t, "newq", true, &m, &r, &E), MQ_INVALID_ARGUMENT);
	m.n_headers = 0;
	m.dedup_mode = (store_dedup_mode)7;
	ST(store_push(t, "newq", true, &m, &r, &E), MQ_INVALID_ARGUMENT);
	ST(store_push(t, "newq", true, NULL, &r, &E), MQ_INVALID_ARGUMENT);
	ST(store_queue_get(t, "newq", &info, &E), MQ_NOT_FOUND); /* not auto-created */
	assert_false(store_txn_failed(t));
	commit(t);
}

typedef struct snapshot {
	listed l;
	store_queue_stats q, o;
	uint64_t due;
} snapshot;

static void snap(store_txn *t, snapshot *s)
{
	bool more;

	memset(s, 0, sizeof(*s));
	OK(store_queue_list(t, NULL, 0, list_cb, &s->l, &more, &E));
	s->q = stats(t, "q");
	s->o = stats(t, "o");
	s->due = next_due(t);
}

static void test_storage_abort_restores(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	snapshot a, b;
	uint64_t last_id, purged, exp;
	store_push_result r;
	gots gs = {0};
	got g, lg;

	create(t, "q", 0, 2);
	push(t, "q", "r1");
	push_x(t, "q", "r2", 3, 0);
	push_x(t, "q", "d", 0, 500);
	push_dedup(t, "q", "k", "key", STORE_DEDUP_IGNORE, 0, 0);
	lg = pull1(t, "q", 0);
	last_id = push(t, "o", "other");
	commit(t);

	t = begin(f);
	snap(t, &a);
	commit(t);

	/* everything, then abort */
	t = begin(f);
	for (int i = 0; i < 50; i++)
		push(t, "q", "tmp");
	push(t, "newq", "x");
	create(t, "new2", 0, 0);
	g = pull1(t, "q", 0);
	OK(store_ack(t, "q", g.id, g.token, &E));
	g = pull1(t, "q", 0);
	OK(store_nack(t, "q", g.id, g.token, 0, "x", &E));
	OK(store_extend(t, "q", lg.id, lg.token, 99999, &exp, &E));
	r = push_dedup(t, "q", "k2", "key", STORE_DEDUP_REPLACE, 9, 0);
	assert_true(r.duplicate);
	f->now += 1000;
	tick(t, 0);
	OK(store_queue_purge(t, "q", STORE_STATE_READY, &purged, &E));
	OK(store_queue_delete(t, "o", &E));
	f->now = T0;
	store_abort(t);

	t = begin(f);
	snap(t, &b);
	assert_int_equal(b.l.n, a.l.n);
	for (int i = 0; i < a.l.n; i++)
		assert_string_equal(b.l.names[i], a.l.names[i]);
	assert_memory_equal(&a.q, &b.q, sizeof(a.q));
	assert_memory_equal(&a.o, &b.o, sizeof(a.o));
	assert_int_equal(a.due, b.due);
	/* the lease from before is intact; the ids go on above the committed ones */
	assert_true(push(t, "q", "after") > last_id);
	assert_int_equal(lg.prio, 3);
	assert_int_equal(pull(t, "q", 10, 0, &gs), 3);
	assert_string_equal(gs.g[0].payload, "r1");
	assert_string_equal(gs.g[1].payload, "k");
	assert_int_equal(gs.g[1].attempts, 1);
	assert_string_equal(gs.g[2].payload, "after");
	for (uint32_t i = 0; i < gs.n; i++)
		assert_true(gs.g[i].token > lg.token);
	OK(store_ack(t, "q", lg.id, lg.token, &E));
	r = push_dedup(t, "q", "k3", "key", STORE_DEDUP_IGNORE, 0, 0);
	assert_true(r.duplicate); /* held by the leased "k" */
	OK(store_ack(t, "q", gs.g[1].id, gs.g[1].token, &E));
	r = push_dedup(t, "q", "k3", "key", STORE_DEDUP_IGNORE, 0, 0);
	assert_false(r.duplicate); /* acked: freed */
	commit(t);
}

static void test_storage_next_due(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	got g;

	assert_int_equal(next_due(t), UINT64_MAX);
	push_x(t, "q", "d", 0, 800);
	assert_int_equal(next_due(t), T0 + 800);
	push(t, "q", "r");
	g = pull1(t, "q", 300);
	assert_int_equal(next_due(t), T0 + 300);
	OK(store_ack(t, "q", g.id, g.token, &E));
	assert_int_equal(next_due(t), T0 + 800);
	commit(t);
}

static void test_storage_txn_rules(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f), *t2 = NULL;

	ST(store_begin(f->s, &t2, &E), MQ_FAILED_PRECONDITION);
	assert_false(store_txn_failed(t));
	store_abort(t);
	t = begin(f);
	commit(t);
}

static void test_storage_many(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	char name[16];
	gots gs = {0};
	uint64_t total = 0;

	/* many queues in one transaction: the cache grows */
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "m%03d", i);
		for (int j = 0; j < 3; j++)
			push(t, name, "x");
	}
	commit(t);
	t = begin(f);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "m%03d", i);
		total += pull(t, name, 64, 0, &gs);
		for (uint32_t j = 0; j < gs.n; j++)
			OK(store_ack(t, name, gs.g[j].id, gs.g[j].token, &E));
		assert_gauges(t, name, 0, 0, 0, 0);
	}
	assert_int_equal(total, 900);
	commit(t);
}

/* ---- tests: lmdb only ------------------------------------------------------ */

/* Lease tokens jump ahead at every open, so a token handed out by commits
 * that a relaxed-mode crash lost can never be issued again. */
static void test_storage_tokens_jump_on_reopen(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	got g1, g2;

	create(t, "q", 0, 0);
	push(t, "q", "a");
	push(t, "q", "b");
	g1 = pull1(t, "q", 0);
	commit(t);
	store_close(f->s);
	f->s = NULL;
	fx_open(f);
	t = begin(f);
	g2 = pull1(t, "q", 0);
	commit(t);
	assert_true(g2.token >= g1.token + (1ull << 32));
}

static void test_storage_reopen(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_queue_stats before, after;
	uint64_t last_id, exp;
	store_push_result r;
	store_queue_info info;
	got leased, g;

	create(t, "q", 5000, 2);
	push_x(t, "q", "ready", 4, 0);
	push_x(t, "q", "delayed", 0, 700);
	push_dedup(t, "q", "held", "key", STORE_DEDUP_IGNORE, 0, 0);
	leased = pull1(t, "q", 0); /* priority 4 first */
	push_x(t, "q", "to-die", 2, 0);
	g = pull1(t, "q", 0);
	assert_string_equal(g.payload, "to-die");
	OK(store_nack(t, "q", g.id, g.token, 0, NULL, &E));
	g = pull1(t, "q", 0);
	OK(store_nack(t, "q", g.id, g.token, 0, NULL, &E)); /* attempts 2: dead */
	last_id = push_x(t, "q", "last", 1, 0);
	g = pull1(t, "q", 0);
	OK(store_ack(t, "q", g.id, g.token, &E));
	before = stats(t, "q");
	assert_int_equal(before.dead, 1);
	commit(t);
	store_close(f->s);
	f->s = NULL;

	fx_open(f);
	t = begin(f);
	OK(store_queue_get(t, "q", &info, &E));
	after = info.stats;
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(info.config.lease_ms, 5000);
	assert_int_equal(info.config.max_attempts, 2);
	assert_int_equal(info.created_ms, T0);
	assert_int_equal(next_due(t), T0 + 700);
	OK(store_extend(t, "q", leased.id, leased.token, 0, &exp, &E));
	r = push_dedup(t, "q", "dup", "key", STORE_DEDUP_IGNORE, 0, 0);
	assert_true(r.duplicate);
	assert_true(push(t, "q", "new") > last_id);
	g = pull1(t, "q", 0);
	assert_true(g.token > leased.token);
	assert_string_equal(g.payload, "held");
	OK(store_ack(t, "q", leased.id, leased.token, &E));
	f->now = T0 + 700;
	assert_int_equal(tick(t, 0), 1);
	commit(t);
}

static void test_storage_lock(void **state)
{
	fx *f = *state;
	store *s2 = NULL;
	char want[64];

	ST(store_open(&s2, &f->cfg, &E), MQ_FAILED_PRECONDITION);
	assert_null(s2);
	snprintf(want, sizeof(want), "in use by another process (pid %ld)", (long)getpid());
	assert_non_null(strstr(E.msg, want));
	assert_non_null(strstr(E.msg, f->dir));
	store_close(f->s);
	f->s = NULL;
	fx_open(f); /* released at close */
}

static void test_storage_relaxed(void **state)
{
	fx *f = *state;
	store_txn *t;

	store_close(f->s);
	f->cfg.durability = STORE_RELAXED;
	fx_open(f);
	assert_string_equal(store_durability_name(f->s), "relaxed");
	t = begin(f);
	push(t, "q", "x");
	commit(t);
	OK(store_sync(f->s, &E));
}

static void test_storage_map_growth(void **state)
{
	fx *f = *state;
	static char payload[60000];
	uint64_t used, map;
	int pushed = 0, fails = 0;
	gots gs = {0};

	store_close(f->s);
	rmtree(f->dir);
	f->cfg.map_size = 1 << 20;
	f->cfg.map_size_max = 16 << 20;
	fx_open(f);
	memset(payload, 'p', sizeof(payload) - 1);
	while (pushed < 64 && fails < 20) {
		store_txn *t = begin(f);
		mq_status st = MQ_OK;

		for (int i = 0; i < 8 && st == MQ_OK; i++) {
			store_push_msg m = {.payload = payload, .payload_len = sizeof(payload)};
			store_push_result r;

			st = store_push(t, "big", true, &m, &r, &E);
		}
		if (st == MQ_OK)
			st = store_commit(t, &E);
		else
			store_abort(t);
		if (st == MQ_OK) {
			pushed += 8;
		} else {
			ST(st, MQ_RESOURCE_EXHAUSTED);
			fails++;
		}
	}
	assert_int_equal(pushed, 64);
	store_usage(f->s, &used, &map);
	assert_true(map > (1u << 20));
	assert_true(map <= (16u << 20));
	assert_true(used > 60000u * 64);
	{
		store_txn *t = begin(f);
		uint32_t total = 0;

		while (pull(t, "big", 16, 0, &gs) > 0) {
			total += gs.n;
			for (uint32_t i = 0; i < gs.n; i++)
				assert_int_equal(gs.g[i].payload_len, sizeof(payload));
		}
		assert_int_equal(total, 64);
		store_abort(t);
	}
}

/* fill pushes payloads of len bytes ("m<seq>" then 'x') into q, per_txn
 * per transaction, until a push is refused with RESOURCE_EXHAUSTED: a
 * request error (the transaction goes on and commits what it pushed).
 * Returns how many were stored; *seq numbers them on. */
static int fill(fx *f, const char *q, size_t len, int per_txn, int *seq)
{
	static char payload[64 << 10];
	int stored = 0;
	bool full = false;

	assert_true(len <= sizeof(payload) && len >= 16);
	for (int round = 0; !full && round < 100000; round++) {
		store_txn *t = begin(f);
		int n = 0;

		for (; n < per_txn; n++) {
			store_push_msg m = {.payload = payload, .payload_len = len};
			store_push_result r;
			mq_status st;

			memset(payload, 'x', len);
			snprintf(payload, 16, "m%d", *seq);
			st = store_push(t, q, true, &m, &r, &E);
			if (st == MQ_RESOURCE_EXHAUSTED) {
				assert_false(store_txn_failed(t));
				assert_non_null(strstr(E.msg, "full"));
				assert_non_null(strstr(E.msg, "maximum"));
				full = true;
				break;
			}
			OK(st);
			(*seq)++;
		}
		commit(t);
		stored += n;
	}
	assert_true(full);
	return stored;
}

/* drain pulls and acks every message of q, up to per_txn per transaction,
 * checks each payload and returns how many there were. At the size limit
 * a pull leases what fits; one that fits nothing is RESOURCE_EXHAUSTED (a
 * request error) and the next transaction but one has the pages the acks
 * freed (LMDB reuses them from then on): that may happen, not twice in a
 * row. */
static int drain(fx *f, const char *q, uint32_t per_txn, size_t len)
{
	gots gs = {0};
	int total = 0, refused = 0;

	for (int round = 0; round < 100000; round++) {
		store_txn *t = begin(f);
		uint32_t n = 0;
		mq_status st;

		gs.n = 0;
		st = store_pull(t, q, per_txn, 0, collect, &gs, &n, &E);
		if (st == MQ_RESOURCE_EXHAUSTED) {
			assert_false(store_txn_failed(t));
			assert_non_null(strstr(E.msg, "full"));
			assert_true(++refused < 2);
			commit(t);
			continue;
		}
		OK(st);
		refused = 0;
		assert_int_equal(n, gs.n);
		for (uint32_t i = 0; i < n; i++) {
			assert_int_equal(gs.g[i].payload_len, len);
			assert_int_equal(gs.g[i].payload[0], 'm');
			OK(store_ack(t, q, gs.g[i].id, gs.g[i].token, &E));
		}
		commit(t);
		total += (int)n;
		if (n == 0)
			return total;
	}
	fail_msg("drain did not end");
	return -1;
}

static void reopen(fx *f)
{
	store_close(f->s);
	f->s = NULL;
	fx_open(f);
}

/* At map_size_max, pushes are refused (a request error: the transaction
 * goes on) while the rest of the map is kept free for draining: pulls,
 * acks, nacks, purges and deletes all work, then pushes work again;
 * nothing stored is damaged (checked after reopening). Big payloads
 * (overflow pages) and small ones (many per leaf page). */
static void map_full_case(fx *f, size_t len, int per_txn)
{
	store_txn *t;
	got g1, g2, g3;
	int seq = 0, n1, n2, drained;
	uint64_t purged = 0, used, map;

	store_close(f->s);
	rmtree(f->dir);
	f->cfg.map_size = 1 << 20;
	f->cfg.map_size_max = 2 << 20;
	fx_open(f);
	t = begin(f);
	for (int i = 0; i < 3; i++)
		push(t, "small", "small");
	g1 = pull1(t, "small", 0);
	g2 = pull1(t, "small", 0);
	g3 = pull1(t, "small", 0);
	commit(t);

	n1 = fill(f, "q", len, per_txn, &seq);
	assert_true(n1 > 1);
	store_usage(f->s, &used, &map);
	assert_int_equal(map, 2 << 20);
	/* reopened at the maximum: refused again (after the pages that the
	 * last transactions freed), the contents intact */
	reopen(f);
	n1 += fill(f, "q", len, per_txn, &seq);
	t = begin(f);
	assert_gauges(t, "q", (uint64_t)n1, 0, 0, 0);
	assert_int_equal(stats(t, "q").pushed_total, (uint64_t)n1);
	/* at the maximum: ack, nack, term, delete and extend all work */
	OK(store_ack(t, "small", g1.id, g1.token, &E));
	OK(store_nack(t, "small", g2.id, g2.token, 0, "again", &E));
	OK(store_term(t, "small", g3.id, g3.token, "bad", &E));
	commit(t);
	t = begin(f);
	g2 = pull1(t, "small", 0);
	OK(store_extend(t, "small", g2.id, g2.token, 60000, &g2.expiry, &E));
	OK(store_message_delete(t, "small", g2.id, NULL, &E));
	assert_gauges(t, "small", 0, 0, 0, 1);
	commit(t);
	/* pull and ack everything, a batch per transaction */
	drained = drain(f, "q", 64, len);
	assert_int_equal(drained, n1);
	/* full again, then one purge of everything in one transaction */
	n2 = fill(f, "q", len, per_txn, &seq);
	assert_true(n2 >= n1 / 2);
	t = begin(f);
	OK(store_queue_purge(t, "q", STORE_STATE_ALL, &purged, &E));
	assert_int_equal(purged, (uint64_t)n2);
	commit(t);
	/* full again, then a queue delete */
	assert_true(fill(f, "q2", len, per_txn, &seq) > 1);
	t = begin(f);
	OK(store_queue_delete(t, "q2", &E));
	commit(t);
	/* room again: pushes work; reopen and verify */
	n2 = fill(f, "q", len, per_txn, &seq);
	assert_true(n2 >= n1 / 2);
	reopen(f);
	t = begin(f);
	assert_gauges(t, "q", (uint64_t)n2, 0, 0, 0);
	assert_gauges(t, "small", 0, 0, 0, 1);
	commit(t);
	assert_int_equal(drain(f, "q", 64, len), n2);
	print_message("map full (%zu-byte payloads): %d stored at the maximum, drained, "
	              "purged, refilled %d\n",
	              len, n1, n2);
}

static void test_storage_map_full(void **state)
{
	map_full_case(*state, 64 << 10, 4);
}

static void test_storage_map_full_small(void **state)
{
	map_full_case(*state, 200, 500);
}

static void test_storage_failed_commit(void **state)
{
	fx *f = *state;
	static char payload[64 << 10];
	store_txn *t;
	mq_status st = MQ_OK;

	store_close(f->s);
	rmtree(f->dir);
	f->cfg.map_size = 1 << 20; /* the map grows only between transactions */
	f->cfg.map_size_max = 16 << 20;
	fx_open(f);
	t = begin(f);
	for (int i = 0; i < 100 && st == MQ_OK; i++) {
		store_push_msg m = {.payload = payload, .payload_len = sizeof(payload)};
		store_push_result r;

		st = store_push(t, "q", true, &m, &r, &E);
	}
	assert_true(store_txn_failed(t));
	/* commit of a failed transaction keeps nothing and frees it */
	ST(store_commit(t, &E), MQ_ABORTED);
	t = begin(f);
	{
		store_queue_info info;

		ST(store_queue_get(t, "q", &info, &E), MQ_NOT_FOUND);
	}
	commit(t);
}

static void test_storage_schema_newer(void **state)
{
	fx *f = *state;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {6, "schema"}, v;
	uint8_t ver[4] = {99, 0, 0, 0};
	store *s2 = NULL;

	store_close(f->s);
	f->s = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, f->dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	assert_int_equal(v.mv_size, 4);
	assert_int_equal(((uint8_t *)v.mv_data)[0], 3); /* STORE_SCHEMA_VERSION */
	v.mv_data = ver;
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	ST(store_open(&s2, &f->cfg, &E), MQ_FAILED_PRECONDITION);
	assert_null(s2);
	assert_non_null(strstr(E.msg, "99"));
	/* the lock was released: a second try fails on the schema again */
	ST(store_open(&s2, &f->cfg, &E), MQ_FAILED_PRECONDITION);
	assert_non_null(strstr(E.msg, "schema"));
	assert_null(strstr(E.msg, "in use"));
}

/* ---- tests: term, dead reason, history, browsing (issue 3) --------------- */

typedef struct insp {
	uint64_t id;
	uint32_t state, attempts;
	char payload[64], error[64], reason[128];
	size_t n_hist;
	uint64_t hist_time[STORE_HISTORY_MAX];
	uint32_t hist_outcome[STORE_HISTORY_MAX];
	char hist_error[STORE_HISTORY_MAX][32];
} insp;

typedef struct insps {
	insp m[32];
	uint32_t n;
} insps;

static int inspect_one(void *arg, const store_msg *m)
{
	insps *is = arg;
	insp *x;

	if (is->n == 32)
		return 1;
	x = &is->m[is->n++];
	x->id = m->id;
	x->state = m->state;
	x->attempts = m->attempts;
	snprintf(x->payload, sizeof(x->payload), "%.*s", (int)m->payload_len,
	         (const char *)m->payload);
	snprintf(x->error, sizeof(x->error), "%s", m->error);
	snprintf(x->reason, sizeof(x->reason), "%s", m->dead_reason);
	x->n_hist = m->n_history;
	for (size_t i = 0; i < m->n_history; i++) {
		x->hist_time[i] = m->history[i].time_ms;
		x->hist_outcome[i] = m->history[i].outcome;
		snprintf(x->hist_error[i], sizeof(x->hist_error[i]), "%s", m->history[i].error);
	}
	return 0;
}

static insp get_msg(store_txn *t, const char *q, uint64_t id)
{
	insps is = {0};

	OK(store_message_get(t, q, id, inspect_one, &is, &E));
	assert_int_equal(is.n, 1);
	return is.m[0];
}

static void test_storage_term(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_result r;
	store_queue_stats s;
	insp x;
	got g;

	create(t, "q", 0, 5);
	r = push_dedup(t, "q", "a", "k", STORE_DEDUP_IGNORE, 0, 0);
	g = pull1(t, "q", 0);
	ST(store_term(t, "q", g.id, g.token + 1, "x", &E), MQ_FAILED_PRECONDITION);
	ST(store_term(t, "q", g.id + 100, g.token, "x", &E), MQ_NOT_FOUND);
	ST(store_term(t, "nope", g.id, g.token, "x", &E), MQ_NOT_FOUND);
	assert_gauges(t, "q", 0, 0, 1, 0);
	f->now += 5;
	OK(store_term(t, "q", g.id, g.token, "bad payload", &E));
	assert_gauges(t, "q", 0, 0, 0, 1);
	s = stats(t, "q");
	assert_int_equal(s.dead_total, 1);
	assert_int_equal(s.nacked_total, 0);
	/* not leased any more */
	ST(store_term(t, "q", g.id, g.token, "again", &E), MQ_FAILED_PRECONDITION);
	ST(store_ack(t, "q", g.id, g.token, &E), MQ_FAILED_PRECONDITION);
	x = get_msg(t, "q", r.id);
	assert_int_equal(x.state, STORE_STATE_DEAD);
	assert_int_equal(x.attempts, 1);
	assert_string_equal(x.reason, "termed: bad payload");
	assert_string_equal(x.error, "bad payload");
	assert_int_equal(x.n_hist, 1);
	assert_int_equal(x.hist_outcome[0], STORE_OUTCOME_TERMED);
	assert_int_equal(x.hist_time[0], T0 + 5);
	assert_string_equal(x.hist_error[0], "bad payload");
	/* the dedup key was freed */
	r = push_dedup(t, "q", "b", "k", STORE_DEDUP_IGNORE, 0, 0);
	assert_false(r.duplicate);
	/* no reason at all */
	g = pull1(t, "q", 0);
	OK(store_term(t, "q", g.id, g.token, NULL, &E));
	x = get_msg(t, "q", g.id);
	assert_string_equal(x.reason, "termed: ");
	commit(t);
}

static void test_storage_history(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	char err[16];
	uint64_t id;
	insp x;
	got g;

	create(t, "q", 1000, 3);
	id = push(t, "q", "a");
	g = pull1(t, "q", 0);
	OK(store_nack(t, "q", g.id, g.token, 0, "e1", &E));
	x = get_msg(t, "q", id);
	assert_int_equal(x.state, STORE_STATE_READY);
	assert_string_equal(x.reason, "");
	assert_int_equal(x.n_hist, 1);
	g = pull1(t, "q", 0);
	f->now += 1000;
	assert_int_equal(tick(t, 0), 1); /* lease expired: READY again */
	g = pull1(t, "q", 0);
	f->now += 1;
	OK(store_nack(t, "q", g.id, g.token, 0, "e3", &E)); /* attempts 3: dead */
	x = get_msg(t, "q", id);
	assert_int_equal(x.state, STORE_STATE_DEAD);
	assert_string_equal(x.reason, "max attempts reached (3)");
	assert_int_equal(x.n_hist, 3);
	assert_int_equal(x.hist_outcome[0], STORE_OUTCOME_NACKED);
	assert_string_equal(x.hist_error[0], "e1");
	assert_int_equal(x.hist_time[0], T0);
	assert_int_equal(x.hist_outcome[1], STORE_OUTCOME_EXPIRED);
	assert_string_equal(x.hist_error[1], "lease expired");
	assert_int_equal(x.hist_time[1], T0 + 1000);
	assert_int_equal(x.hist_outcome[2], STORE_OUTCOME_NACKED);
	assert_string_equal(x.hist_error[2], "e3");
	assert_int_equal(x.hist_time[2], T0 + 1001);

	/* dead by lease expiry */
	create(t, "q1", 100, 1);
	id = push(t, "q1", "b");
	g = pull1(t, "q1", 0);
	f->now += 100;
	assert_int_equal(tick(t, 0), 1);
	x = get_msg(t, "q1", id);
	assert_int_equal(x.state, STORE_STATE_DEAD);
	assert_string_equal(x.reason, "max attempts reached (1); the last lease expired");
	assert_int_equal(x.n_hist, 1);
	assert_int_equal(x.hist_outcome[0], STORE_OUTCOME_EXPIRED);

	/* the history keeps the last STORE_HISTORY_MAX attempts */
	create(t, "q2", 0, 100);
	id = push(t, "q2", "c");
	for (int i = 1; i <= 12; i++) {
		g = pull1(t, "q2", 0);
		snprintf(err, sizeof(err), "e%d", i);
		OK(store_nack(t, "q2", g.id, g.token, i == 12 ? 50 : 0, err, &E));
	}
	x = get_msg(t, "q2", id);
	assert_int_equal(x.state, STORE_STATE_DELAYED);
	assert_int_equal(x.attempts, 12);
	assert_int_equal(x.n_hist, STORE_HISTORY_MAX);
	assert_string_equal(x.hist_error[0], "e5");
	assert_string_equal(x.hist_error[STORE_HISTORY_MAX - 1], "e12");
	assert_string_equal(x.error, "e12");
	/* a long error is truncated in the history */
	{
		char big[2000];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		f->now += 50;
		assert_int_equal(tick(t, 0), 1);
		g = pull1(t, "q2", 0);
		OK(store_nack(t, "q2", g.id, g.token, 0, big, &E));
		x = get_msg(t, "q2", id);
		assert_int_equal(x.n_hist, STORE_HISTORY_MAX);
		assert_string_equal(x.hist_error[0], "e6");
	}
	commit(t);
	/* a dedup REPLACE keeps the history */
	t = begin(f);
	{
		store_push_result r;

		create(t, "q3", 0, 5);
		r = push_dedup(t, "q3", "a", "k", STORE_DEDUP_IGNORE, 0, 0);
		g = pull1(t, "q3", 0);
		OK(store_nack(t, "q3", g.id, g.token, 0, "oops", &E));
		r = push_dedup(t, "q3", "b", "k", STORE_DEDUP_REPLACE, 0, 0);
		assert_true(r.duplicate);
		x = get_msg(t, "q3", r.id);
		assert_string_equal(x.payload, "b");
		assert_int_equal(x.n_hist, 1);
		assert_string_equal(x.hist_error[0], "oops");
	}
	commit(t);
}

static uint32_t list(store_txn *t, const char *q, uint32_t mask, uint64_t after, uint32_t limit,
                     insps *is, uint64_t *next, bool *more)
{
	is->n = 0;
	OK(store_message_list(t, q, mask, after, limit, inspect_one, is, next, more, &E));
	return is->n;
}

static void test_storage_message_browse(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	uint64_t ids[6], next = 0;
	store_push_result r;
	bool more = true;
	insps is = {0};
	got g;

	create(t, "q", 0, 1);
	push(t, "other", "o1");
	ids[0] = push(t, "q", "ready");
	ids[1] = push_x(t, "q", "delayed", 0, 500);
	ids[2] = push(t, "q", "leased");
	ids[3] = push(t, "q", "dead");
	push(t, "other", "o2");
	r = push_dedup(t, "q", "held", "k", STORE_DEDUP_IGNORE, -1, 0);
	ids[4] = r.id;
	/* lease "ready" and "leased"; nack "ready" back; kill "dead" */
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, ids[0]);
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, ids[2]);
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, ids[3]);
	OK(store_nack(t, "q", g.id, g.token, 0, "boom", &E));
	/* ids[0] is still leased: nack it back to READY would kill it (max 1),
	 * so state is: 0 LEASED, 1 DELAYED, 2 LEASED, 3 DEAD, 4 READY */

	assert_int_equal(list(t, "q", 0, 0, 100, &is, &next, &more), 5);
	assert_false(more);
	assert_int_equal(next, ids[4]);
	for (int i = 0; i < 5; i++)
		assert_int_equal(is.m[i].id, ids[i]);
	assert_int_equal(is.m[0].state, STORE_STATE_LEASED);
	assert_int_equal(is.m[1].state, STORE_STATE_DELAYED);
	assert_int_equal(is.m[3].state, STORE_STATE_DEAD);
	assert_string_equal(is.m[3].reason, "max attempts reached (1)");
	assert_int_equal(is.m[4].state, STORE_STATE_READY);
	/* paging */
	assert_int_equal(list(t, "q", 0, 0, 2, &is, &next, &more), 2);
	assert_true(more);
	assert_int_equal(next, ids[1]);
	assert_int_equal(list(t, "q", 0, next, 2, &is, &next, &more), 2);
	assert_int_equal(is.m[0].id, ids[2]);
	assert_true(more);
	assert_int_equal(list(t, "q", 0, next, 2, &is, &next, &more), 1);
	assert_int_equal(is.m[0].id, ids[4]);
	assert_false(more);
	/* by state */
	assert_int_equal(list(t, "q", STORE_STATE_DEAD, 0, 10, &is, NULL, &more), 1);
	assert_int_equal(is.m[0].id, ids[3]);
	assert_int_equal(list(t, "q", STORE_STATE_DEAD, ids[3], 10, &is, NULL, &more), 0);
	assert_int_equal(list(t, "q", STORE_STATE_LEASED, 0, 10, &is, NULL, &more), 2);
	assert_int_equal(
	    list(t, "q", STORE_STATE_READY | STORE_STATE_DELAYED, 0, 10, &is, NULL, &more), 2);
	assert_int_equal(list(t, "other", 0, 0, 10, &is, NULL, &more), 2);
	/* errors */
	ST(store_message_list(t, "q", 0x40, 0, 10, inspect_one, &is, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT);
	ST(store_message_list(t, "q", 0, 0, 0, inspect_one, &is, NULL, NULL, &E),
	   MQ_INVALID_ARGUMENT);
	ST(store_message_list(t, "nope", 0, 0, 10, inspect_one, &is, NULL, NULL, &E), MQ_NOT_FOUND);
	ST(store_message_get(t, "q", 999999, inspect_one, &is, &E), MQ_NOT_FOUND);
	ST(store_message_get(t, "other", ids[0], inspect_one, &is, &E), MQ_NOT_FOUND);

	/* delete in every state: gauges follow, dedup key freed, ack fails */
	{
		uint32_t st = 0;

		assert_gauges(t, "q", 1, 1, 2, 1);
		OK(store_message_delete(t, "q", ids[0], &st, &E));
		assert_int_equal(st, STORE_STATE_LEASED);
		ST(store_ack(t, "q", ids[0], 1, &E), MQ_NOT_FOUND);
		OK(store_message_delete(t, "q", ids[1], NULL, &E));
		OK(store_message_delete(t, "q", ids[3], &st, &E));
		assert_int_equal(st, STORE_STATE_DEAD);
		OK(store_message_delete(t, "q", ids[4], &st, &E));
		assert_int_equal(st, STORE_STATE_READY);
		assert_gauges(t, "q", 0, 0, 1, 0);
		ST(store_message_delete(t, "q", ids[4], NULL, &E), MQ_NOT_FOUND);
		r = push_dedup(t, "q", "again", "k", STORE_DEDUP_IGNORE, 0, 0);
		assert_false(r.duplicate);
		assert_int_equal(next_due(t), T0 + STORE_DEFAULT_LEASE_MS);
	}
	commit(t);
}

static void test_storage_redrive(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	uint64_t ids[4], moved = 9, one;
	store_push_result r;
	bool more = true;
	insps is = {0};
	insp x;
	got g;

	create(t, "q", 0, 1);
	for (int i = 0; i < 4; i++) {
		char key[8];

		snprintf(key, sizeof(key), "k%d", i);
		ids[i] = push_dedup(t, "q", "p", key, STORE_DEDUP_IGNORE, 0, 0).id;
		g = pull1(t, "q", 0);
		OK(store_nack(t, "q", g.id, g.token, 0, "e", &E));
	}
	one = push(t, "q", "live");
	assert_gauges(t, "q", 1, 0, 0, 4);
	/* k1 is taken by a new job meanwhile: the redriven one loses its key */
	r = push_dedup(t, "q", "new", "k1", STORE_DEDUP_IGNORE, 0, 0);
	assert_false(r.duplicate);

	/* errors move nothing */
	{
		uint64_t bad[2] = {ids[0], one};
		uint64_t twice[2] = {ids[0], ids[0]};
		uint64_t missing[1] = {999999};

		ST(store_redrive(t, "q", bad, 2, NULL, false, 0, &moved, NULL, &E),
		   MQ_FAILED_PRECONDITION);
		ST(store_redrive(t, "q", twice, 2, NULL, false, 0, &moved, NULL, &E),
		   MQ_INVALID_ARGUMENT);
		ST(store_redrive(t, "q", missing, 1, NULL, false, 0, &moved, NULL, &E),
		   MQ_NOT_FOUND);
		ST(store_redrive(t, "nope", NULL, 0, NULL, false, 0, &moved, NULL, &E),
		   MQ_NOT_FOUND);
		ST(store_redrive(t, "q", NULL, 0, "other", false, 0, &moved, NULL, &E),
		   MQ_NOT_FOUND);
		ST(store_redrive(t, "q", NULL, 0, "bad name", true, 0, &moved, NULL, &E),
		   MQ_INVALID_ARGUMENT);
		assert_gauges(t, "q", 2, 0, 0, 4);
	}
	/* by id, same queue */
	OK(store_redrive(t, "q", &ids[1], 1, NULL, false, 0, &moved, &more, &E));
	assert_int_equal(moved, 1);
	assert_false(more);
	assert_gauges(t, "q", 3, 0, 0, 3);
	x = get_msg(t, "q", ids[1]);
	assert_int_equal(x.state, STORE_STATE_READY);
	assert_int_equal(x.attempts, 0);
	assert_string_equal(x.reason, "");
	assert_int_equal(x.n_hist, 1); /* kept */
	/* all, bounded, into another (auto-created) queue */
	f->ready_calls = 0;
	OK(store_redrive(t, "q", NULL, 0, "q.retry", true, 2, &moved, &more, &E));
	assert_int_equal(moved, 2);
	assert_true(more);
	assert_int_equal(f->ready_calls, 1);
	assert_string_equal(f->last_ready, "q.retry");
	assert_gauges(t, "q", 3, 0, 0, 1);
	assert_gauges(t, "q.retry", 2, 0, 0, 0);
	assert_int_equal(list(t, "q.retry", 0, 0, 10, &is, NULL, NULL), 2);
	assert_int_equal(is.m[0].id, ids[0]);
	assert_int_equal(is.m[1].id, ids[2]);
	ST(store_message_get(t, "q", ids[0], NULL, NULL, &E), MQ_NOT_FOUND);
	OK(store_redrive(t, "q", NULL, 0, "q.retry", true, 0, &moved, &more, &E));
	assert_int_equal(moved, 1);
	assert_false(more);
	assert_gauges(t, "q", 3, 0, 0, 0);
	/* dedup keys: k0 taken again in q.retry, k1 lost (held by "new") */
	r = push_dedup(t, "q.retry", "dup", "k0", STORE_DEDUP_IGNORE, 0, 0);
	assert_true(r.duplicate);
	assert_int_equal(r.id, ids[0]);
	r = push_dedup(t, "q", "dup", "k1", STORE_DEDUP_IGNORE, 0, 0);
	assert_true(r.duplicate);
	assert_true(r.id != ids[1]);
	/* redriven messages are delivered and ackable in their new queue */
	g = pull1(t, "q.retry", 0);
	assert_int_equal(g.id, ids[0]);
	assert_int_equal(g.attempts, 1);
	OK(store_ack(t, "q.retry", g.id, g.token, &E));
	/* nothing left */
	OK(store_redrive(t, "q", NULL, 0, NULL, false, 0, &moved, &more, &E));
	assert_int_equal(moved, 0);
	commit(t);
}

static void test_storage_retry_backoff(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_queue_config c = {.max_attempts = 10, .retry_base_ms = 100, .retry_max_ms = 1000};
	store_queue_info info;
	uint64_t id, due;
	got g;

	OK(store_queue_create(t, "q", &c, false, &info, NULL, &E));
	assert_int_equal(info.config.retry_base_ms, 100);
	assert_int_equal(info.config.retry_max_ms, 1000);
	id = push(t, "q", "a");
	for (uint32_t n = 1; n <= 6; n++) {
		uint64_t want = 100ull << (n - 1);

		if (want > 1000)
			want = 1000;
		g = pull1(t, "q", 0);
		assert_int_equal(g.attempts, n);
		OK(store_nack(t, "q", g.id, g.token, 0, "again", &E));
		assert_gauges(t, "q", 0, 1, 0, 0);
		due = next_due(t) - f->now;
		if (due < want * 8 / 10 || due > want * 12 / 10)
			fail_msg("attempt %u: backoff %" PRIu64 " not within 20%% of %" PRIu64, n,
			         due, want);
		f->now += due;
		assert_int_equal(tick(t, 0), 1);
	}
	/* an explicit delay wins */
	g = pull1(t, "q", 0);
	OK(store_nack(t, "q", id, g.token, 50, NULL, &E));
	assert_int_equal(next_due(t), f->now + 50);
	/* no backoff: ready at once, as before */
	create(t, "q0", 0, 5);
	push(t, "q0", "b");
	g = pull1(t, "q0", 0);
	OK(store_nack(t, "q0", g.id, g.token, 0, NULL, &E));
	assert_gauges(t, "q0", 1, 0, 0, 0);
	/* validation */
	c = (store_queue_config){.retry_base_ms = 500, .retry_max_ms = 100};
	ST(store_queue_create(t, "bad", &c, false, NULL, NULL, &E), MQ_INVALID_ARGUMENT);
	c = (store_queue_config){.retry_base_ms = STORE_MAX_RETRY_MS + 1};
	ST(store_queue_create(t, "bad", &c, false, NULL, NULL, &E), MQ_INVALID_ARGUMENT);
	/* base only: capped at STORE_MAX_RETRY_MS */
	c = (store_queue_config){.max_attempts = 100, .retry_base_ms = STORE_MAX_RETRY_MS / 2};
	OK(store_queue_create(t, "big", &c, false, NULL, NULL, &E));
	push(t, "big", "c");
	for (int i = 0; i < 3; i++) {
		g = pull1(t, "big", 0);
		OK(store_nack(t, "big", g.id, g.token, 0, NULL, &E));
		f->now += (uint64_t)STORE_MAX_RETRY_MS * 2;
		assert_true(tick(t, 0) >= 1);
	}
	commit(t);
}

/* test_storage_semantics_reopen: dead reasons and histories survive a
 * reopen; a store of schema 1 (version-1 message records) is upgraded in
 * place and its records still read. */
static void test_storage_semantics_reopen(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	uint64_t dead_id, ready_id;
	insp x;
	got g;

	create(t, "q", 0, 2);
	dead_id = push(t, "q", "d");
	g = pull1(t, "q", 0);
	OK(store_term(t, "q", g.id, g.token, "nope", &E));
	ready_id = push(t, "q", "r");
	g = pull1(t, "q", 0);
	OK(store_nack(t, "q", g.id, g.token, 0, "once", &E));
	commit(t);
	store_close(f->s);
	f->s = NULL;
	fx_open(f);
	t = begin(f);
	x = get_msg(t, "q", dead_id);
	assert_string_equal(x.reason, "termed: nope");
	assert_int_equal(x.n_hist, 1);
	x = get_msg(t, "q", ready_id);
	assert_int_equal(x.n_hist, 1);
	assert_string_equal(x.hist_error[0], "once");
	commit(t);
	store_close(f->s);
	f->s = NULL;

	/* rewrite the store as schema 1: records as version 1 (no reason, no
	 * history), as an older mq wrote them */
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi meta, msgs;
		MDB_cursor *cur;
		MDB_val k = {6, "schema"}, v, mk, mv;
		uint8_t ver[4] = {1, 0, 0, 0}, out[512];
		int rc;

		assert_int_equal(mdb_env_create(&env), 0);
		assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
		assert_int_equal(mdb_env_open(env, f->dir, 0, 0644), 0);
		assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
		assert_int_equal(mdb_dbi_open(txn, "msgs", 0, &msgs), 0);
		v.mv_data = ver;
		v.mv_size = 4;
		assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
		assert_int_equal(mdb_cursor_open(txn, msgs, &cur), 0);
		for (rc = mdb_cursor_get(cur, &mk, &mv, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &mk, &mv, MDB_NEXT)) {
			const uint8_t *p = mv.mv_data;
			size_t strs, n;

			assert_true(mv.mv_size <= sizeof(out) && p[0] == 3);
			/* dedup, type, error with their NULs; then the reason's NUL */
			strs = (size_t)(p[40] + p[44] + p[48]) + 3;
			memcpy(out, p, 60);
			out[0] = 1;
			out[2] = 0;
			out[3] = 0;
			memcpy(out + 60, p + 88, strs);
			/* skip the reason, the group and the history (their lengths
			 * at 60, 68, 64) */
			n = 88 + strs + 1 + p[60] + 1 + p[68] + p[64];
			memcpy(out + 60 + strs, p + n, mv.mv_size - n);
			v.mv_data = out;
			v.mv_size = 60 + strs + (mv.mv_size - n);
			assert_int_equal(mdb_cursor_put(cur, &mk, &v, MDB_CURRENT), 0);
		}
		mdb_cursor_close(cur);
		/* queue records as version 1: 104 bytes */
		assert_int_equal(mdb_dbi_open(txn, "queues", 0, &msgs), 0);
		assert_int_equal(mdb_cursor_open(txn, msgs, &cur), 0);
		for (rc = mdb_cursor_get(cur, &mk, &mv, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &mk, &mv, MDB_NEXT)) {
			assert_true(mv.mv_size >= 152); /* version 3 */
			memcpy(out, mv.mv_data, 104);
			out[0] = 1;
			out[1] = out[2] = out[3] = 0;
			v.mv_data = out;
			v.mv_size = 104;
			assert_int_equal(mdb_cursor_put(cur, &mk, &v, MDB_CURRENT), 0);
		}
		mdb_cursor_close(cur);
		assert_int_equal(mdb_txn_commit(txn), 0);
		mdb_env_close(env);
	}
	fx_open(f);
	t = begin(f);
	x = get_msg(t, "q", dead_id);
	assert_int_equal(x.state, STORE_STATE_DEAD);
	assert_string_equal(x.reason, "");
	assert_int_equal(x.n_hist, 0);
	assert_string_equal(x.error, "nope");
	x = get_msg(t, "q", ready_id);
	assert_string_equal(x.payload, "r");
	{
		store_queue_info info;

		OK(store_queue_get(t, "q", &info, &E));
		assert_int_equal(info.config.max_attempts, 2);
		assert_int_equal(info.config.retry_base_ms, 0);
	}
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, ready_id);
	OK(store_nack(t, "q", g.id, g.token, 0, "twice", &E));
	x = get_msg(t, "q", ready_id);
	assert_string_equal(x.reason, "max attempts reached (2)");
	assert_int_equal(x.n_hist, 1);
	commit(t);
	store_close(f->s);
	f->s = NULL;
	fx_open(f); /* the schema is now 3 */
}

/* Queue config v3: every field round-trips, updates by mask, pause stops
 * pulls (and resume wakes), max_length refuses pushes; all after reopen. */
static void test_storage_queue_config_v3(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_queue_config c = {.lease_ms = 1000,
	                        .max_attempts = 3,
	                        .retry_base_ms = 10,
	                        .retry_max_ms = 20,
	                        .max_length = 2,
	                        .max_age_ms = 60000,
	                        .rate_limit = 7,
	                        .dedup_scope = STORE_DEDUP_SCOPE_WINDOW,
	                        .dedup_window_ms = 9000,
	                        .dead_letter_queue = "dlq"};
	store_queue_config u = {0};
	store_queue_info info;
	store_push_msg m = {.payload = "x", .payload_len = 1};
	store_push_result r;
	uint32_t n;
	int calls;
	gots gs = {0};

	OK(store_queue_create(t, "q", &c, false, &info, NULL, &E));
	assert_false(info.paused);
	assert_int_equal(info.config.max_length, 2);
	assert_int_equal(info.config.max_age_ms, 60000);
	assert_int_equal(info.config.rate_limit, 7);
	assert_int_equal(info.config.dedup_scope, STORE_DEDUP_SCOPE_WINDOW);
	assert_int_equal(info.config.dedup_window_ms, 9000);
	assert_string_equal(info.config.dead_letter_queue, "dlq");
	/* max_length: 2 live messages, the third push is refused */
	push(t, "q", "a");
	push(t, "q", "b");
	ST(store_push(t, "q", false, &m, &r, &E), MQ_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(E.msg, "max_length"));
	assert_int_equal(stats(t, "q").pushed_total, 2);
	/* pause: pulls get nothing, pushes still go in (under the limit) */
	OK(store_queue_pause(t, "q", true, &info, &E));
	assert_true(info.paused);
	assert_int_equal(pull(t, "q", 10, 0, &gs), 0);
	commit(t);
	if (is_durable()) {
		store_close(f->s);
		f->s = NULL;
		fx_open(f);
	}
	t = begin(f);
	OK(store_queue_get(t, "q", &info, &E));
	if (is_durable()) {
		assert_true(info.paused);
		assert_string_equal(info.config.dead_letter_queue, "dlq");
		assert_int_equal(info.config.dedup_window_ms, 9000);
		assert_int_equal(pull(t, "q", 10, 0, &gs), 0);
	}
	calls = f->ready_calls;
	OK(store_queue_pause(t, "q", false, &info, &E));
	assert_false(info.paused);
	assert_true(f->ready_calls > calls); /* resume wakes consumers */
	/* update by mask: only the named fields change */
	u.max_length = 0;    /* back to unlimited */
	u.lease_ms = 123456; /* not in the mask: kept */
	u.rate_limit = 0;
	OK(store_queue_update(t, "q", &u, STORE_QCFG_MAX_LENGTH | STORE_QCFG_RATE_LIMIT, &info,
	                      &E));
	assert_int_equal(info.config.max_length, 0);
	assert_int_equal(info.config.rate_limit, 0);
	assert_int_equal(info.config.lease_ms, 1000);
	assert_string_equal(info.config.dead_letter_queue, "dlq");
	OK(store_push(t, "q", false, &m, &r, &E));
	n = pull(t, "q", 10, 0, &gs);
	assert_true(n >= 1);
	/* an update is checked whole: base above the stored max is refused */
	u.retry_base_ms = 50;
	ST(store_queue_update(t, "q", &u, STORE_QCFG_RETRY_BASE_MS, NULL, &E), MQ_INVALID_ARGUMENT);
	/* its own dead-letter queue, a bad name, an unknown scope, no mask */
	strcpy(u.dead_letter_queue, "q");
	ST(store_queue_update(t, "q", &u, STORE_QCFG_DEAD_LETTER_QUEUE, NULL, &E),
	   MQ_INVALID_ARGUMENT);
	strcpy(u.dead_letter_queue, "bad name");
	ST(store_queue_update(t, "q", &u, STORE_QCFG_DEAD_LETTER_QUEUE, NULL, &E),
	   MQ_INVALID_ARGUMENT);
	u.dedup_scope = 9;
	ST(store_queue_update(t, "q", &u, STORE_QCFG_DEDUP_SCOPE, NULL, &E), MQ_INVALID_ARGUMENT);
	ST(store_queue_update(t, "q", &u, 0, NULL, &E), MQ_INVALID_ARGUMENT);
	ST(store_queue_update(t, "nope", &u, STORE_QCFG_LEASE_MS, NULL, &E), MQ_NOT_FOUND);
	ST(store_queue_pause(t, "nope", true, NULL, &E), MQ_NOT_FOUND);
	u.dead_letter_queue[0] = 0;
	OK(store_queue_update(t, "q", &u, STORE_QCFG_DEAD_LETTER_QUEUE, &info, &E));
	assert_string_equal(info.config.dead_letter_queue, "");
	c.max_age_ms = STORE_MAX_AGE_MS + 1;
	ST(store_queue_create(t, "q2", &c, false, NULL, NULL, &E), MQ_INVALID_ARGUMENT);
	commit(t);
}

/* ---- backup and restore (issue 7) ------------------------------------------ */

/* test_storage_backup: store_backup writes a consistent snapshot (what was
 * committed before it, not a transaction still open), store_restore brings
 * it back into a new directory with the same contents; damaged, foreign and
 * newer files and non-empty targets are refused. The memory engine answers
 * UNIMPLEMENTED. */
static void test_storage_backup(void **state)
{
	fx *f = *state;
	char file[400], target[400], cmd[1200];
	store_backup_info bi, ri;
	store_config rc;
	store_queue_info info;
	store_txn *t;
	store *r = NULL;
	got g, leased;
	uint64_t id_ready, id_uncommitted;
	FILE *fp;
	int fd;

	snprintf(file, sizeof(file), "%s/backup.mqb", f->dir);
	if (!is_lmdb()) {
		ST(store_backup_check(f->s, &E), MQ_UNIMPLEMENTED);
		assert_non_null(strstr(E.msg, g_engine));
		fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		ST(store_backup(f->s, fd, &bi, &E), MQ_UNIMPLEMENTED);
		close(fd);
		return;
	}
	OK(store_backup_check(f->s, &E));
	t = begin(f);
	create(t, "bq", 7000, 3);
	id_ready = push_x(t, "bq", "ready", 2, 0);
	push_x(t, "bq", "leased", 9, 0);
	leased = pull1(t, "bq", 0);
	assert_string_equal(leased.payload, "leased");
	commit(t);

	/* A transaction open during the backup is not in it. */
	t = begin(f);
	id_uncommitted = push(t, "bq", "uncommitted");
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	OK(store_backup(f->s, fd, &bi, &E));
	close(fd);
	commit(t);
	assert_int_equal(bi.schema_version, 3);
	assert_true(bi.size > STORE_BACKUP_HEADER_LEN + STORE_BACKUP_TRAILER_LEN);
	assert_int_equal(bi.size, bi.data_len + STORE_BACKUP_HEADER_LEN + STORE_BACKUP_TRAILER_LEN);
	OK(store_backup_read_info(file, &ri, &E));
	assert_int_equal(ri.size, bi.size);
	assert_memory_equal(ri.checksum, bi.checksum, sizeof(bi.checksum));

	/* Restore into a new directory and compare. */
	snprintf(target, sizeof(target), "%s/restored", f->dir);
	OK(store_restore(file, target, &ri, &E));
	rc = f->cfg;
	rc.path = target;
	OK(store_open(&r, &rc, &E));
	OK(store_begin(r, &t, &E));
	OK(store_queue_get(t, "bq", &info, &E));
	assert_int_equal(info.config.lease_ms, 7000);
	assert_int_equal(info.config.max_attempts, 3);
	assert_int_equal(info.stats.ready, 1);
	assert_int_equal(info.stats.in_flight, 1);
	assert_int_equal(info.stats.pushed_total, 2);
	ST(store_message_get(t, "bq", id_uncommitted, NULL, NULL, &E), MQ_NOT_FOUND);
	OK(store_ack(t, "bq", leased.id, leased.token, &E)); /* the lease came along */
	g = pull1(t, "bq", 0);
	assert_int_equal(g.id, id_ready);
	assert_string_equal(g.payload, "ready");
	OK(store_commit(t, &E));
	store_close(r);

	/* Refusals: a non-empty target, a file that is not a backup, a damaged
	 * one, one from a newer schema. Nothing is left behind. */
	ST(store_restore(file, target, NULL, &E), MQ_FAILED_PRECONDITION);
	assert_non_null(strstr(E.msg, "not empty"));
	snprintf(target, sizeof(target), "%s/restored2", f->dir);
	snprintf(cmd, sizeof(cmd), "%s/garbage", f->dir);
	fp = fopen(cmd, "w");
	assert_non_null(fp);
	fputs("this is not a backup\n", fp);
	fclose(fp);
	ST(store_restore(cmd, target, NULL, &E), MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(E.msg, "not an mq backup"));
	assert_int_equal(access(target, F_OK), -1);
	/* a flipped byte in the data */
	fd = open(file, O_RDWR);
	assert_true(fd >= 0);
	{
		uint8_t b;
		assert_int_equal(pread(fd, &b, 1, STORE_BACKUP_HEADER_LEN + 100), 1);
		b ^= 0x40;
		assert_int_equal(pwrite(fd, &b, 1, STORE_BACKUP_HEADER_LEN + 100), 1);
		ST(store_restore(file, target, NULL, &E), MQ_DATA_LOSS);
		assert_non_null(strstr(E.msg, "checksum"));
		b ^= 0x40;
		assert_int_equal(pwrite(fd, &b, 1, STORE_BACKUP_HEADER_LEN + 100), 1);
		/* a truncated file */
		assert_int_equal(ftruncate(fd, (off_t)bi.size - 1), 0);
		ST(store_restore(file, target, NULL, &E), MQ_DATA_LOSS);
		assert_non_null(strstr(E.msg, "truncated"));
	}
	close(fd);
	assert_int_equal(access(target, F_OK), -1);
	/* a newer schema (the header says 99) */
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	OK(store_backup(f->s, fd, &bi, &E));
	{
		uint8_t v[4] = {99, 0, 0, 0};
		assert_int_equal(pwrite(fd, v, 4, 12), 4);
	}
	close(fd);
	ST(store_restore(file, target, NULL, &E), MQ_FAILED_PRECONDITION);
	assert_non_null(strstr(E.msg, "schema version 99"));
	assert_int_equal(access(target, F_OK), -1);
	/* A file whose header and checksum are right around data that is not
	 * an LMDB file: only opening it (in the staging directory) finds out;
	 * an existing empty target stays empty. */
	assert_int_equal(mkdir(target, 0755), 0);
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	{
		uint8_t hdr[STORE_BACKUP_HEADER_LEN] = "MQBACKUP", data[16384], sum[32];
		crypto_generichash_state hs;

		hdr[8] = STORE_BACKUP_FORMAT;
		hdr[12] = 3;
		memcpy(hdr + 16, "lmdb", 4);
		hdr[32] = (uint8_t)(sizeof(data) & 0xff);
		hdr[33] = (uint8_t)(sizeof(data) >> 8);
		for (size_t i = 0; i < sizeof(data); i++)
			data[i] = (uint8_t)(i * 7 + 3);
		crypto_generichash_init(&hs, NULL, 0, sizeof(sum));
		crypto_generichash_update(&hs, hdr, sizeof(hdr));
		crypto_generichash_update(&hs, data, sizeof(data));
		crypto_generichash_final(&hs, sum, sizeof(sum));
		assert_int_equal(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
		assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
		assert_int_equal(write(fd, sum, sizeof(sum)), (ssize_t)sizeof(sum));
	}
	close(fd);
	OK(store_backup_read_info(file, NULL, &E)); /* the envelope is right */
	ST(store_restore(file, target, NULL, &E), MQ_DATA_LOSS);
	assert_non_null(strstr(E.msg, "does not open as an mq store"));
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", target);
	assert_int_equal(system(cmd), 0); /* still empty: no staging directory left */
	/* and a staging directory left by an interrupted restore does not
	 * make it non-empty */
	snprintf(cmd, sizeof(cmd),
	         "mkdir '%s/.restore-abc123' && touch '%s/.restore-abc123/data.mdb'", target,
	         target);
	assert_int_equal(system(cmd), 0);
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	OK(store_backup(f->s, fd, NULL, &E));
	close(fd);
	OK(store_restore(file, target, NULL, &E));
	snprintf(cmd, sizeof(cmd), "test \"$(ls -A '%s')\" = data.mdb", target);
	assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest both[] = {
	    cmocka_unit_test_setup_teardown(test_storage_open_info, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_open_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_queue_create_get, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_auto_create, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_push_pull_ack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_priority_fifo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_pull_stop_and_lease, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_store_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_delay_and_promotion, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_tick_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_lease_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_nack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_stale_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_extend, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_dedup_ignore, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_dedup_replace_ready, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_dedup_replace_delayed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_dedup_leased_then_acked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_dedup_dead, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_purge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_purge_steps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_delete_queue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_list_paging, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_request_errors_change_nothing, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_storage_abort_restores, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_next_due, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_txn_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_term, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_history, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_message_browse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_redrive, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_retry_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_backup, setup, teardown),
	};
	const struct CMUnitTest lmdb_only[] = {
	    cmocka_unit_test_setup_teardown(test_storage_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_tokens_jump_on_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_lock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_relaxed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_map_growth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_map_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_map_full_small, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_failed_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_schema_newer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_semantics_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_storage_queue_config_v3, setup, teardown),
	};
	int failed;

	char name[64];

	if (argc > 1)
		g_engine = argv[1];
	if (!storefx_engine_ok())
		return 2;
	snprintf(name, sizeof(name), "storage-%s", g_engine);
	failed = _cmocka_run_group_tests(name, both, sizeof(both) / sizeof(both[0]), NULL, NULL);
	if (is_lmdb())
		failed +=
		    _cmocka_run_group_tests("storage-lmdb-only", lmdb_only,
		                            sizeof(lmdb_only) / sizeof(lmdb_only[0]), NULL, NULL);
	return failed;
}
