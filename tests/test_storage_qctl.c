/* SPDX-License-Identifier: MIT */
/*
 * test_storage_qctl.c: storage-level queue control, run against one engine
 * named by argv[1] ("lmdb" or "memory"): savepoints, dead-letter queues
 * (with their origin header and redrive back), filtered redrive, and the
 * oldest ready age. Stores are reopened on LMDB where state matters.
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

#include "storefx.h"

/* reopen commits t, closes and reopens the store (LMDB: from disk) and
 * returns a new transaction. */
static store_txn *reopen(fx *f, store_txn *t)
{
	OK(store_commit(t, &E));
	if (is_durable()) {
		store_close(f->s);
		OK(store_open(&f->s, &f->cfg, &E));
	}
	return begin(f);
}

static uint64_t push_h(store_txn *t, const char *q, const char *body, int32_t prio,
                       const store_header *h, size_t nh, const char *dedup)
{
	store_push_msg m = {.payload = body,
	                    .payload_len = strlen(body),
	                    .priority = prio,
	                    .headers = h,
	                    .n_headers = nh,
	                    .dedup_key = dedup};
	store_push_result r;

	OK(store_push(t, q, true, &m, &r, &E));
	return r.id;
}

typedef struct seen {
	uint64_t id, token;
	uint32_t state;
	char reason[128];
	char origin[MQ_NAME_MAX + 1];
	size_t n_headers, n_history;
	char queue[MQ_NAME_MAX + 1];
	char payload[64];
} seen;

static int see(void *arg, const store_msg *m)
{
	seen *s = arg;

	memset(s, 0, sizeof(*s));
	s->id = m->id;
	s->token = m->lease_token;
	s->state = m->state;
	snprintf(s->reason, sizeof(s->reason), "%s", m->dead_reason);
	snprintf(s->queue, sizeof(s->queue), "%s", m->queue);
	snprintf(s->payload, sizeof(s->payload), "%.*s", (int)m->payload_len,
	         (const char *)m->payload);
	s->n_headers = m->n_headers;
	s->n_history = m->n_history;
	for (size_t i = 0; i < m->n_headers; i++)
		if (strcmp(m->headers[i].key, STORE_ORIGIN_HEADER) == 0)
			snprintf(s->origin, sizeof(s->origin), "%s", m->headers[i].value);
	return 0;
}

static seen get(store_txn *t, const char *q, uint64_t id)
{
	seen s;

	OK(store_message_get(t, q, id, see, &s, &E));
	return s;
}

static seen pull_seen(store_txn *t, const char *q)
{
	seen s = {0};
	uint32_t n = 0;

	OK(store_pull(t, q, 1, 0, see, &s, &n, &E));
	assert_int_equal(n, 1);
	return s;
}

static store_queue_info qinfo(store_txn *t, const char *q)
{
	store_queue_info qi;

	OK(store_queue_get(t, q, &qi, &E));
	return qi;
}

/* test_savepoint: a rollback undoes records, counters, created queues and
 * ids; a release keeps them; both engines; survives a reopen. */
static void test_savepoint(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	uint64_t a, b, b2;

	a = push_h(t, "sp.q", "a", 0, NULL, 0, "ka");
	OK(store_savepoint(t, &E));
	ST(store_savepoint(t, &E), MQ_FAILED_PRECONDITION); /* one level */
	b = push_h(t, "sp.q", "b", 0, NULL, 0, "kb");
	push_h(t, "sp.new", "c", 0, NULL, 0, NULL);
	assert_int_equal(qinfo(t, "sp.q").stats.ready, 2);
	store_rollback(t);
	ST(store_queue_get(t, "sp.new", NULL, &E), MQ_NOT_FOUND);
	assert_int_equal(qinfo(t, "sp.q").stats.ready, 1);
	assert_int_equal(qinfo(t, "sp.q").stats.pushed_total, 1);
	ST(store_message_get(t, "sp.q", b, NULL, NULL, &E), MQ_NOT_FOUND);
	b2 = push_h(t, "sp.q", "b2", 0, NULL, 0, "kb"); /* key kb is free again */
	assert_int_equal(b2, b);                        /* the id is handed out again */
	OK(store_savepoint(t, &E));
	push_h(t, "sp.new", "c", 0, NULL, 0, NULL);
	OK(store_release(t, &E));
	ST(store_release(t, &E), MQ_FAILED_PRECONDITION);
	t = reopen(f, t);
	assert_int_equal(qinfo(t, "sp.q").stats.ready, 2);
	assert_int_equal(qinfo(t, "sp.new").stats.ready, 1);
	assert_string_equal(get(t, "sp.q", a).payload, "a");
	assert_string_equal(get(t, "sp.q", b).payload, "b2");
	/* a savepoint left open is released by the commit */
	OK(store_savepoint(t, &E));
	push_h(t, "sp.q", "d", 0, NULL, 0, NULL);
	t = reopen(f, t);
	assert_int_equal(qinfo(t, "sp.q").stats.ready, 3);
	OK(store_commit(t, &E));
}

/* test_dead_letter: nack at max attempts, term and lease expiry move the
 * message into the dead-letter queue as DEAD, with reason, history and the
 * origin header; its dedup key is freed; redrive without a target sends it
 * back to its origin without the header; survives a reopen. */
static void test_dead_letter(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_queue_config cfg = {.max_attempts = 1, .lease_ms = 1000};
	store_header h = {"tenant", "acme"};
	uint64_t id1, id2, id3, moved;
	bool more;
	seen s;

	snprintf(cfg.dead_letter_queue, sizeof(cfg.dead_letter_queue), "dl.dlq");
	OK(store_queue_create(t, "dl.dlq", NULL, false, NULL, NULL, &E));
	OK(store_queue_create(t, "dl.src", &cfg, false, NULL, NULL, &E));
	id1 = push_h(t, "dl.src", "one", 0, &h, 1, "k1");
	id2 = push_h(t, "dl.src", "two", 0, NULL, 0, NULL);
	id3 = push_h(t, "dl.src", "three", 0, NULL, 0, NULL);
	s = pull_seen(t, "dl.src");
	assert_int_equal(s.id, id1);
	OK(store_nack(t, "dl.src", id1, s.token, 0, "boom", &E));
	s = pull_seen(t, "dl.src");
	OK(store_term(t, "dl.src", id2, s.token, "bad", &E));
	s = pull_seen(t, "dl.src");
	assert_int_equal(s.id, id3);
	f->now += 5000; /* the lease of id3 runs out */
	OK(store_tick(t, 0, NULL, &E));
	ST(store_message_get(t, "dl.src", id1, NULL, NULL, &E), MQ_NOT_FOUND);
	assert_int_equal(qinfo(t, "dl.src").stats.dead, 0);
	assert_int_equal(qinfo(t, "dl.src").stats.dead_total, 3);
	assert_int_equal(qinfo(t, "dl.src").stats.in_flight, 0);
	assert_int_equal(qinfo(t, "dl.dlq").stats.dead, 3);
	/* the key k1 is free in the source queue */
	{
		store_push_msg m = {.payload = "x", .payload_len = 1, .dedup_key = "k1"};
		store_push_result r;
		OK(store_push(t, "dl.src", false, &m, &r, &E));
		assert_false(r.duplicate);
		OK(store_message_delete(t, "dl.src", r.id, NULL, &E));
	}
	t = reopen(f, t);
	s = get(t, "dl.dlq", id1);
	assert_int_equal(s.state, STORE_STATE_DEAD);
	assert_string_equal(s.queue, "dl.dlq");
	assert_string_equal(s.origin, "dl.src");
	assert_string_equal(s.reason, "max attempts reached (1)");
	assert_int_equal(s.n_history, 1);
	assert_int_equal(s.n_headers, 2); /* tenant + origin */
	assert_non_null(strstr(get(t, "dl.dlq", id2).reason, "termed: bad"));
	assert_non_null(strstr(get(t, "dl.dlq", id3).reason, "lease expired"));
	/* browsing the DLQ by state */
	/* redrive id1 back to its origin: READY there, header gone */
	OK(store_redrive(t, "dl.dlq", &id1, 1, NULL, false, 0, &moved, &more, &E));
	assert_int_equal(moved, 1);
	s = get(t, "dl.src", id1);
	assert_int_equal(s.state, STORE_STATE_READY);
	assert_string_equal(s.origin, "");
	assert_int_equal(s.n_headers, 1);
	assert_int_equal(qinfo(t, "dl.dlq").stats.redriven_total, 1);
	/* into a named queue instead */
	OK(store_redrive(t, "dl.dlq", &id2, 1, "dl.other", true, 0, &moved, &more, &E));
	assert_int_equal(get(t, "dl.other", id2).state, STORE_STATE_READY);
	/* origin deleted: NOT_FOUND and nothing moves, unless auto-create */
	OK(store_queue_delete(t, "dl.src", &E));
	ST(store_redrive(t, "dl.dlq", NULL, 0, NULL, false, 0, &moved, &more, &E), MQ_NOT_FOUND);
	assert_non_null(strstr(E.msg, "dl.src"));
	assert_int_equal(qinfo(t, "dl.dlq").stats.dead, 1);
	OK(store_redrive(t, "dl.dlq", NULL, 0, NULL, true, 0, &moved, &more, &E));
	assert_int_equal(moved, 1);
	assert_int_equal(get(t, "dl.src", id3).state, STORE_STATE_READY);
	/* a deleted DLQ: dead messages stay in their queue */
	OK(store_queue_delete(t, "dl.dlq", &E));
	s = pull_seen(t, "dl.src");
	OK(store_term(t, "dl.src", s.id, s.token, "x", &E));
	assert_int_equal(get(t, "dl.src", s.id).state, STORE_STATE_DEAD);
	assert_string_equal(get(t, "dl.src", s.id).origin, "");
	OK(store_commit(t, &E));
}

/* test_redrive_filter_paging: a filter scans the dead index in id order,
 * bounded by max, resumed from next_after; all or nothing. */
static void test_redrive_filter_paging(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_queue_config cfg = {.max_attempts = 1};
	store_redrive_opts o = {0};
	store_redrive_result r;
	uint64_t ids[6];

	OK(store_queue_create(t, "rf.q", &cfg, false, NULL, NULL, &E));
	for (int i = 0; i < 6; i++)
		ids[i] = push_h(t, "rf.q", "m", 0, NULL, 0, NULL);
	for (int i = 0; i < 6; i++) {
		seen s = pull_seen(t, "rf.q");
		f->now += 10;
		OK(store_term(t, "rf.q", s.id, s.token, i % 2 ? "odd" : "even", &E));
	}
	o.reason_prefix = "termed: odd";
	o.max = 2;
	OK(store_redrive_ex(t, "rf.q", &o, &r, &E));
	assert_int_equal(r.moved, 2);
	assert_true(r.more);
	assert_int_equal(r.next_after, ids[3]);
	o.after_id = r.next_after;
	OK(store_redrive_ex(t, "rf.q", &o, &r, &E));
	assert_int_equal(r.moved, 1);
	assert_false(r.more);
	/* dead since: the evens died at T0 + 10, 30, 50 */
	o = (store_redrive_opts){.dead_since_ms = T0 + 51};
	OK(store_redrive_ex(t, "rf.q", &o, &r, &E));
	assert_int_equal(r.moved, 0);
	o.dead_since_ms = T0 + 45;
	OK(store_redrive_ex(t, "rf.q", &o, &r, &E));
	assert_int_equal(r.moved, 1);
	assert_int_equal(get(t, "rf.q", ids[4]).state, STORE_STATE_READY);
	assert_int_equal(qinfo(t, "rf.q").stats.dead, 2);
	assert_int_equal(qinfo(t, "rf.q").stats.redriven_total, 4);
	OK(store_commit(t, &E));
}

/* test_oldest_ready_age: the age of the oldest READY message across
 * priorities, 0 when none; computed on read. */
static void test_oldest_ready_age(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	seen s;

	OK(store_queue_create(t, "oa.q", NULL, false, NULL, NULL, &E));
	assert_int_equal(qinfo(t, "oa.q").stats.oldest_ready_age_ms, 0);
	push_h(t, "oa.q", "low", 0, NULL, 0, NULL);
	f->now += 100;
	push_h(t, "oa.q", "high", 9, NULL, 0, NULL);
	f->now += 50;
	assert_int_equal(qinfo(t, "oa.q").stats.oldest_ready_age_ms, 150);
	s = pull_seen(t, "oa.q"); /* "high" */
	assert_string_equal(s.payload, "high");
	assert_int_equal(qinfo(t, "oa.q").stats.oldest_ready_age_ms, 150);
	s = pull_seen(t, "oa.q");
	assert_int_equal(qinfo(t, "oa.q").stats.oldest_ready_age_ms, 0);
	/* nacked back: its enqueue time counts */
	OK(store_nack(t, "oa.q", s.id, s.token, 0, NULL, &E));
	f->now += 10;
	t = reopen(f, t);
	assert_int_equal(qinfo(t, "oa.q").stats.oldest_ready_age_ms, 160);
	OK(store_commit(t, &E));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_savepoint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dead_letter, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_redrive_filter_paging, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oldest_ready_age, setup, teardown),
	};

	if (argc > 1)
		g_engine = argv[1];
	if (!storefx_engine_ok())
		return 2;
	return cmocka_run_group_tests_name(g_engine, tests, NULL, NULL);
}
