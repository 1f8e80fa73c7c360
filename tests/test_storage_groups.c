/* SPDX-License-Identifier: MIT */
/*
 * test_storage_groups.c: what schema 3 adds to the job state machine,
 * against one engine named by argv[1] ("lmdb" or "memory"): ordering
 * groups, dedup modes (debounce) and scopes (ACKED, WAITING, WINDOW),
 * snooze, absolute not-before times, message expiry (TTL), and reading
 * version-2 message records. Reopen tests run only for "lmdb".
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
#include <unistd.h>

#include <lmdb.h>

#include "storefx.h"

/* ---- helpers of this file ------------------------------------------------ */

typedef struct pushx {
	const char *group;
	const char *dedup;
	store_dedup_mode mode;
	int32_t prio;
	uint64_t delay_ms, not_before_ms, ttl_ms;
} pushx;

static store_push_result push_o(store_txn *t, const char *q, const char *payload, pushx o)
{
	store_push_msg m = {
	    .payload = payload,
	    .payload_len = strlen(payload),
	    .dedup_key = o.dedup,
	    .dedup_mode = o.mode,
	    .priority = o.prio,
	    .delay_ms = o.delay_ms,
	    .group = o.group,
	    .not_before_ms = o.not_before_ms,
	    .ttl_ms = o.ttl_ms,
	};
	store_push_result r = {0};

	OK(store_push(t, q, true, &m, &r, &E));
	return r;
}

static uint64_t push_g(store_txn *t, const char *q, const char *payload, const char *group,
                       int32_t prio)
{
	store_push_result r = push_o(t, q, payload, (pushx){.group = group, .prio = prio});

	assert_false(r.duplicate);
	return r.id;
}

typedef struct insp {
	uint32_t state, attempts;
	uint64_t not_before, expire;
	char payload[64], group[32], reason[64], dedup[32];
	size_t n_hist;
} insp;

static int insp_cb(void *arg, const store_msg *m)
{
	insp *x = arg;

	x->state = m->state;
	x->attempts = m->attempts;
	x->not_before = m->not_before_ms;
	x->expire = m->expire_ms;
	x->n_hist = m->n_history;
	snprintf(x->payload, sizeof(x->payload), "%.*s", (int)m->payload_len,
	         (const char *)m->payload);
	snprintf(x->group, sizeof(x->group), "%s", m->group);
	snprintf(x->reason, sizeof(x->reason), "%s", m->dead_reason);
	snprintf(x->dedup, sizeof(x->dedup), "%s", m->dedup_key);
	return 0;
}

static insp get_msg(store_txn *t, const char *q, uint64_t id)
{
	insp x = {0};

	OK(store_message_get(t, q, id, insp_cb, &x, &E));
	return x;
}

/* pull_all leases every message pullable now (up to 64) into gs. */
static uint32_t pull_all(store_txn *t, const char *q, gots *gs)
{
	return pull(t, q, 64, 0, gs);
}

static const got *find(const gots *gs, const char *p)
{
	for (uint32_t i = 0; i < gs->n; i++)
		if (strcmp(gs->g[i].payload, p) == 0)
			return &gs->g[i];
	return NULL;
}

static void create_cfg(store_txn *t, const char *q, store_queue_config c)
{
	bool created = false;

	OK(store_queue_create(t, q, &c, false, NULL, &created, &E));
	assert_true(created);
}

static void reopen(fx *f)
{
	store_close(f->s);
	f->s = NULL;
	fx_open(f);
}

/* ---- groups ------------------------------------------------------------------ */

/* A group hands out one message at a time, in push order whatever the
 * priorities; other groups and ungrouped messages flow; a nacked or
 * expired head blocks its group until it is redelivered; the next one
 * comes when the head is acked or goes dead. */
static void test_groups_order(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	gots gs = {0};
	uint64_t b, c;
	got a, g;

	create(t, "q", 1000, 3);
	push_g(t, "q", "a", "g1", 0);
	b = push_g(t, "q", "b", "g1", 9); /* a higher priority does not jump ahead */
	c = push_g(t, "q", "c", "g1", 0);
	push_g(t, "q", "x", "g2", 0);
	push_g(t, "q", "u", NULL, 0);
	assert_gauges(t, "q", 5, 0, 0, 0); /* waiting ones count as ready */
	assert_int_equal(pull_all(t, "q", &gs), 3);
	assert_non_null(find(&gs, "a"));
	assert_non_null(find(&gs, "x"));
	assert_non_null(find(&gs, "u"));
	a = *find(&gs, "a");
	assert_gauges(t, "q", 2, 0, 3, 0);
	assert_int_equal(get_msg(t, "q", b).state, STORE_STATE_READY);
	assert_string_equal(get_msg(t, "q", b).group, "g1");
	assert_int_equal(pull_all(t, "q", &gs), 0); /* b waits behind leased a */
	/* nack: a is back, still the head; b still waits */
	OK(store_nack(t, "q", a.id, a.token, 0, "once", &E));
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, a.id);
	assert_int_equal(pull_all(t, "q", &gs), 0);
	/* lease expiry: a is back (attempt 2 next) */
	f->now += 1000;
	assert_int_equal(tick(t, 0), 3); /* a, x, u */
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, a.id);
	/* a goes dead (max attempts 3): b is promoted */
	OK(store_nack(t, "q", g.id, g.token, 0, "twice", &E));
	assert_int_equal(get_msg(t, "q", a.id).state, STORE_STATE_DEAD);
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, b);
	assert_int_equal(pull_all(t, "q", &gs), 2); /* x and u came back; c waits */
	OK(store_ack(t, "q", g.id, g.token, &E));
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, c);
	OK(store_ack(t, "q", g.id, g.token, &E));
	/* the group is empty: a new push is its head at once */
	g.id = push_g(t, "q", "d", "g1", 0);
	assert_int_equal(pull1(t, "q", 0).id, g.id);
	commit(t);
}

/* A delayed retry of the head keeps its group blocked; a message pushed
 * with a delay into a busy group waits for both its turn and its time. */
static void test_groups_delays(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	gots gs = {0};
	uint64_t b, c;
	got a;
	insp x;

	create(t, "q", 0, 5);
	push_g(t, "q", "a", "g", 0);
	b = push_g(t, "q", "b", "g", 0);
	c = push_o(t, "q", "c", (pushx){.group = "g", .delay_ms = 5000}).id;
	a = pull1(t, "q", 0);
	OK(store_nack(t, "q", a.id, a.token, 500, NULL, &E));
	assert_int_equal(pull_all(t, "q", &gs), 0);
	assert_gauges(t, "q", 1, 2, 0, 0);
	f->now += 500;
	assert_int_equal(tick(t, 0), 1);
	a = pull1(t, "q", 0);
	OK(store_ack(t, "q", a.id, a.token, &E));
	a = pull1(t, "q", 0);
	assert_int_equal(a.id, b);
	OK(store_ack(t, "q", a.id, a.token, &E));
	/* c is the head now but its time has not come */
	x = get_msg(t, "q", c);
	assert_int_equal(x.state, STORE_STATE_DELAYED);
	assert_int_equal(x.not_before, T0 + 5000);
	assert_int_equal(pull_all(t, "q", &gs), 0);
	assert_int_equal(next_due(t), T0 + 5000);
	f->now = T0 + 5000;
	assert_int_equal(tick(t, 0), 1);
	assert_int_equal(pull1(t, "q", 0).id, c);
	commit(t);
}

/* Deleting or purging the head promotes the next; purging ready messages
 * also removes those waiting behind a leased head. */
static void test_groups_delete_purge(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	gots gs = {0};
	uint64_t a, b, purged = 0;
	uint32_t was;
	got g;

	a = push_g(t, "q", "a", "g", 0);
	b = push_g(t, "q", "b", "g", 0);
	push_g(t, "q", "c", "g", 0);
	OK(store_message_delete(t, "q", a, &was, &E));
	assert_int_equal(was, STORE_STATE_READY);
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, b);
	/* b leased, c waits: purge READY takes c, leaves b */
	OK(store_queue_purge(t, "q", STORE_STATE_READY, &purged, &E));
	assert_int_equal(purged, 1);
	assert_gauges(t, "q", 0, 0, 1, 0);
	OK(store_ack(t, "q", g.id, g.token, &E));
	/* purge of a leased head promotes the next, which a READY purge in
	 * the same call takes too */
	push_g(t, "q", "d", "h", 0);
	push_g(t, "q", "e", "h", 0);
	push_o(t, "q", "f", (pushx){.group = "h", .delay_ms = 100});
	g = pull1(t, "q", 0);
	OK(store_queue_purge(t, "q", STORE_STATE_LEASED, &purged, &E));
	assert_int_equal(purged, 1);
	ST(store_ack(t, "q", g.id, g.token, &E), MQ_NOT_FOUND);
	assert_string_equal(pull1(t, "q", 0).payload, "e"); /* promoted */
	OK(store_queue_purge(t, "q", 0 /* none */, &purged, &E));
	OK(store_queue_purge(t, "q", STORE_STATE_ALL, &purged, &E));
	assert_int_equal(purged, 2);
	assert_gauges(t, "q", 0, 0, 0, 0);
	/* the group is free again */
	push_g(t, "q", "z", "h", 0);
	assert_int_equal(pull_all(t, "q", &gs), 1);
	OK(store_queue_delete(t, "q", &E));
	commit(t);
}

/* REPLACE and DEBOUNCE on a grouped message keep its group and place; a
 * redriven dead message rejoins its group at the back. */
static void test_groups_replace_redrive(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_result r;
	uint64_t a, b, moved = 0;
	got g;
	insp x;

	create(t, "q", 0, 1);
	a = push_o(t, "q", "a", (pushx){.group = "g", .dedup = "ka"}).id;
	b = push_o(t, "q", "b1", (pushx){.group = "g", .dedup = "kb"}).id;
	/* replace the waiting b, naming another group and a priority: the
	 * group and place are kept */
	r = push_o(
	    t, "q", "b2",
	    (pushx){.group = "other", .dedup = "kb", .mode = STORE_DEDUP_REPLACE, .prio = 5});
	assert_true(r.duplicate);
	assert_int_equal(r.id, b);
	x = get_msg(t, "q", b);
	assert_string_equal(x.payload, "b2");
	assert_string_equal(x.group, "g");
	assert_int_equal(x.state, STORE_STATE_READY);
	/* replace the head a while ready */
	r = push_o(t, "q", "a2", (pushx){.dedup = "ka", .mode = STORE_DEDUP_REPLACE});
	assert_int_equal(r.id, a);
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, a);
	assert_string_equal(g.payload, "a2");
	/* a goes dead (max attempts 1), b is promoted and leased, then a is
	 * redriven: it rejoins behind b */
	OK(store_nack(t, "q", g.id, g.token, 0, NULL, &E));
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, b);
	OK(store_redrive(t, "q", &a, 1, NULL, false, 0, &moved, NULL, &E));
	assert_int_equal(moved, 1);
	assert_int_equal(get_msg(t, "q", a).state, STORE_STATE_READY);
	{
		gots gs = {0};

		assert_int_equal(pull_all(t, "q", &gs), 0);
	}
	OK(store_ack(t, "q", g.id, g.token, &E));
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, a);
	commit(t);
}

/* Many groups: each operation touches only its group. */
static void test_groups_many(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	char gname[16];
	gots gs = {0};

	for (int i = 0; i < 200; i++) {
		snprintf(gname, sizeof(gname), "g%d", i % 50);
		push_g(t, "q", gname, gname, 0);
	}
	assert_int_equal(pull(t, "q", 64, 0, &gs), 50);
	for (uint32_t i = 0; i < gs.n; i++)
		OK(store_ack(t, "q", gs.g[i].id, gs.g[i].token, &E));
	assert_int_equal(pull(t, "q", 64, 0, &gs), 50);
	commit(t);
}

/* Groups survive a reopen: the head stays leased, the others wait. */
static void test_groups_reopen(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	gots gs = {0};
	uint64_t b;
	got a;

	push_g(t, "q", "a", "g", 0);
	b = push_g(t, "q", "b", "g", 0);
	a = pull1(t, "q", 0);
	commit(t);
	reopen(f);
	t = begin(f);
	assert_int_equal(pull_all(t, "q", &gs), 0);
	OK(store_ack(t, "q", a.id, a.token, &E));
	commit(t);
	reopen(f);
	t = begin(f);
	assert_int_equal(pull1(t, "q", 0).id, b);
	commit(t);
}

/* ---- dedup modes and scopes ------------------------------------------------------ */

/* DEBOUNCE: replace, and the not-before time becomes the later one. */
static void test_dedup_debounce(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_result r;
	uint64_t id;
	insp x;
	got g;

	id = push_o(t, "q", "v1", (pushx){.dedup = "k", .delay_ms = 1000}).id;
	f->now += 200;
	r = push_o(t, "q", "v2",
	           (pushx){.dedup = "k", .mode = STORE_DEDUP_DEBOUNCE, .delay_ms = 500});
	assert_true(r.duplicate);
	assert_int_equal(r.id, id);
	x = get_msg(t, "q", id);
	assert_string_equal(x.payload, "v2");
	assert_int_equal(x.not_before, T0 + 1000); /* not earlier */
	r = push_o(t, "q", "v3",
	           (pushx){.dedup = "k", .mode = STORE_DEDUP_DEBOUNCE, .delay_ms = 2000});
	x = get_msg(t, "q", id);
	assert_string_equal(x.payload, "v3");
	assert_int_equal(x.not_before, T0 + 200 + 2000); /* pushed back */
	/* REPLACE takes the push's time as is: ready now */
	r = push_o(t, "q", "v4", (pushx){.dedup = "k", .mode = STORE_DEDUP_REPLACE});
	x = get_msg(t, "q", id);
	assert_int_equal(x.state, STORE_STATE_READY);
	/* DEBOUNCE of a ready holder with a delay delays it */
	r = push_o(t, "q", "v5",
	           (pushx){.dedup = "k", .mode = STORE_DEDUP_DEBOUNCE, .delay_ms = 100});
	x = get_msg(t, "q", id);
	assert_int_equal(x.state, STORE_STATE_DELAYED);
	assert_int_equal(x.not_before, T0 + 300);
	assert_gauges(t, "q", 0, 1, 0, 0);
	assert_int_equal(stats(t, "q").deduplicated_total, 4);
	f->now = T0 + 300;
	tick(t, 0);
	g = pull1(t, "q", 0);
	assert_string_equal(g.payload, "v5");
	/* a leased holder is left as is */
	r = push_o(t, "q", "v6", (pushx){.dedup = "k", .mode = STORE_DEDUP_DEBOUNCE});
	assert_true(r.duplicate);
	assert_string_equal(get_msg(t, "q", id).payload, "v5");
	commit(t);
}

/* WAITING scope: a key is held only while its job is ready or delayed. */
static void test_dedup_scope_waiting(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_result r;
	uint64_t a, b;
	got g;

	create_cfg(t, "q", (store_queue_config){.dedup_scope = STORE_DEDUP_SCOPE_WAITING});
	a = push_o(t, "q", "a", (pushx){.dedup = "k", .delay_ms = 100}).id;
	r = push_o(t, "q", "a2", (pushx){.dedup = "k"}); /* delayed: held */
	assert_true(r.duplicate);
	f->now += 100;
	tick(t, 0);
	r = push_o(t, "q", "a3", (pushx){.dedup = "k"}); /* ready: held */
	assert_true(r.duplicate);
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, a);
	r = push_o(t, "q", "b", (pushx){.dedup = "k"}); /* leased: a new job */
	assert_false(r.duplicate);
	b = r.id;
	/* a comes back while b holds the key: both wait; acking either leaves
	 * the key with b */
	OK(store_nack(t, "q", g.id, g.token, 0, NULL, &E));
	r = push_o(t, "q", "c", (pushx){.dedup = "k"});
	assert_true(r.duplicate);
	assert_int_equal(r.id, b);
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, a);
	OK(store_ack(t, "q", g.id, g.token, &E));
	assert_int_equal(push_o(t, "q", "d", (pushx){.dedup = "k"}).id, b);
	/* b leased, then nacked: it takes the free key back */
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, b);
	OK(store_nack(t, "q", g.id, g.token, 0, NULL, &E));
	r = push_o(t, "q", "e", (pushx){.dedup = "k"});
	assert_true(r.duplicate);
	assert_int_equal(r.id, b);
	commit(t);
}

/* WINDOW scope: held until acked, then dedup_window_ms more; the tick
 * frees it through the window index. Dead frees the key at once. */
static void test_dedup_scope_window(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_result r;
	uint64_t a;
	got g;

	create_cfg(t, "q",
	           (store_queue_config){.dedup_scope = STORE_DEDUP_SCOPE_WINDOW,
	                                .dedup_window_ms = 1000,
	                                .max_attempts = 1});
	a = push_o(t, "q", "a", (pushx){.dedup = "k"}).id;
	g = pull1(t, "q", 0);
	assert_true(push_o(t, "q", "x", (pushx){.dedup = "k"}).duplicate); /* leased */
	OK(store_ack(t, "q", g.id, g.token, &E));
	f->now += 999;
	r = push_o(t, "q", "x", (pushx){.dedup = "k", .mode = STORE_DEDUP_REPLACE});
	assert_true(r.duplicate); /* completed, in the window: replace does nothing */
	assert_int_equal(r.id, a);
	assert_gauges(t, "q", 0, 0, 0, 0);
	assert_int_equal(next_due(t), T0 + 1000);
	commit(t);
	if (is_durable())
		reopen(f);
	t = begin(f);
	assert_true(push_o(t, "q", "x", (pushx){.dedup = "k"}).duplicate);
	f->now = T0 + 1000;
	assert_int_equal(tick(t, 0), 1);
	assert_int_equal(next_due(t), UINT64_MAX);
	r = push_o(t, "q", "b", (pushx){.dedup = "k"});
	assert_false(r.duplicate);
	/* dead frees the key at once, even in WINDOW */
	g = pull1(t, "q", 0);
	OK(store_nack(t, "q", g.id, g.token, 0, NULL, &E));
	assert_false(push_o(t, "q", "c", (pushx){.dedup = "k"}).duplicate);
	/* an ended window not yet ticked is freed by the push itself */
	g = pull1(t, "q", 0);
	OK(store_ack(t, "q", g.id, g.token, &E));
	f->now += 5000;
	assert_false(push_o(t, "q", "d", (pushx){.dedup = "k"}).duplicate);
	assert_int_equal(tick(t, 0), 0);
	/* a deleted queue's window records are cleaned by the tick */
	g = pull1(t, "q", 0);
	OK(store_ack(t, "q", g.id, g.token, &E));
	OK(store_queue_delete(t, "q", &E));
	f->now += 1000;
	assert_int_equal(tick(t, 0), 1);
	assert_int_equal(next_due(t), UINT64_MAX);
	commit(t);
}

/* ---- snooze, not-before ---------------------------------------------------------------- */

static void test_snooze(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_queue_stats s;
	insp x;
	got g;

	create(t, "q", 0, 1);
	push(t, "q", "a");
	g = pull1(t, "q", 0);
	assert_int_equal(g.attempts, 1);
	OK(store_snooze(t, "q", g.id, g.token, 1000, &E));
	ST(store_snooze(t, "q", g.id, g.token, 1000, &E), MQ_FAILED_PRECONDITION);
	x = get_msg(t, "q", g.id);
	assert_int_equal(x.state, STORE_STATE_DELAYED);
	assert_int_equal(x.attempts, 0);
	assert_int_equal(x.n_hist, 0);
	assert_int_equal(x.not_before, T0 + 1000);
	f->now += 1000;
	tick(t, 0);
	/* max attempts 1: a snooze spent none, so the next nack is the first */
	g = pull1(t, "q", 0);
	assert_int_equal(g.attempts, 1);
	OK(store_snooze(t, "q", g.id, g.token, 0, &E)); /* ready at once */
	g = pull1(t, "q", 0);
	assert_int_equal(g.attempts, 1);
	s = stats(t, "q");
	assert_int_equal(s.nacked_total, 0);
	OK(store_nack(t, "q", g.id, g.token, 0, NULL, &E));
	assert_int_equal(get_msg(t, "q", g.id).state, STORE_STATE_DEAD);
	commit(t);
}

static void test_not_before(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_push_msg m = {.payload = "x", .payload_len = 1, .delay_ms = 1, .not_before_ms = T0};
	uint64_t id;

	ST(store_push(t, "q", true, &m, NULL, &E), MQ_INVALID_ARGUMENT);
	id = push_o(t, "q", "past", (pushx){.not_before_ms = T0 - 5}).id;
	assert_int_equal(get_msg(t, "q", id).state, STORE_STATE_READY);
	id = push_o(t, "q", "now", (pushx){.not_before_ms = T0}).id;
	assert_int_equal(get_msg(t, "q", id).state, STORE_STATE_READY);
	id = push_o(t, "q", "later", (pushx){.not_before_ms = T0 + 777}).id;
	assert_int_equal(get_msg(t, "q", id).state, STORE_STATE_DELAYED);
	assert_int_equal(get_msg(t, "q", id).not_before, T0 + 777);
	assert_int_equal(next_due(t), T0 + 777);
	commit(t);
}

/* ---- expiry (TTL) ---------------------------------------------------------------------------- */

/* Ready, delayed and group-waiting messages expire to DEAD ("expired");
 * a leased one finishes its lease and expires when it comes back; an
 * expiring head lets its group move on. */
static void test_ttl(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	uint64_t r, d, w, h2, keep, moved = 0;
	store_queue_stats s;
	insp x;
	got l, g;

	create_cfg(t, "q", (store_queue_config){.max_age_ms = 1000});
	r = push(t, "q", "ready");
	d = push_x(t, "q", "delayed", 0, 5000);
	l.id = push_o(t, "q", "leased", (pushx){.group = "g"}).id;
	w = push_o(t, "q", "waiting", (pushx){.group = "g"}).id;
	keep = push_o(t, "q", "short", (pushx){.ttl_ms = 10, .dedup = "k"}).id;
	x = get_msg(t, "q", r);
	assert_int_equal(x.expire, T0 + 1000);
	assert_int_equal(get_msg(t, "q", keep).expire, T0 + 10);
	assert_int_equal(next_due(t), T0 + 10);
	f->now = T0 + 10;
	assert_int_equal(tick(t, 0), 1);
	x = get_msg(t, "q", keep);
	assert_int_equal(x.state, STORE_STATE_DEAD);
	assert_string_equal(x.reason, "expired");
	assert_false(push_o(t, "q", "k2", (pushx){.dedup = "k", .ttl_ms = 100000}).duplicate);
	{
		gots gs = {0};

		assert_int_equal(pull(t, "q", 64, 60000, &gs), 3);
		l = *find(&gs, "leased");
		OK(store_nack(t, "q", find(&gs, "ready")->id, find(&gs, "ready")->token, 0, NULL,
		              &E));
		g = *find(&gs, "k2");
	}
	f->now = T0 + 1000;
	tick(t, 0);
	assert_string_equal(get_msg(t, "q", r).reason, "expired");
	assert_string_equal(get_msg(t, "q", d).reason, "expired");
	assert_string_equal(get_msg(t, "q", w).reason, "expired");
	assert_int_equal(get_msg(t, "q", l.id).state, STORE_STATE_LEASED);
	assert_int_equal(get_msg(t, "q", g.id).state, STORE_STATE_LEASED);
	/* the leased one expires when it comes back */
	OK(store_nack(t, "q", l.id, l.token, 0, "late", &E));
	x = get_msg(t, "q", l.id);
	assert_int_equal(x.state, STORE_STATE_DEAD);
	assert_string_equal(x.reason, "expired");
	/* one that did not reach its expiry is acked normally */
	OK(store_ack(t, "q", g.id, g.token, &E));
	s = stats(t, "q");
	assert_int_equal(s.dead, 5);
	assert_int_equal(s.dead_total, 5);
	assert_gauges(t, "q", 0, 0, 0, 5);
	/* an expiring head lets its group go on */
	h2 = push_o(t, "q", "h", (pushx){.group = "G", .ttl_ms = 50}).id;
	w = push_o(t, "q", "w", (pushx){.group = "G"}).id;
	f->now += 50;
	tick(t, 0);
	assert_int_equal(get_msg(t, "q", h2).state, STORE_STATE_DEAD);
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, w);
	/* redrive restarts the clock: same time to live, from now */
	OK(store_redrive(t, "q", &h2, 1, NULL, false, 0, &moved, NULL, &E));
	assert_int_equal(get_msg(t, "q", h2).expire, f->now + 50);
	commit(t);
}

/* Expiry survives a reopen (lmdb). */
static void test_ttl_reopen(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	uint64_t id;

	id = push_o(t, "q", "x", (pushx){.ttl_ms = 100}).id;
	commit(t);
	reopen(f);
	t = begin(f);
	assert_int_equal(next_due(t), T0 + 100);
	f->now += 100;
	assert_int_equal(tick(t, 0), 1);
	assert_string_equal(get_msg(t, "q", id).reason, "expired");
	commit(t);
}

/* A store with version-2 message records (schema 2) still reads. */
static void test_record_v2_reads(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	uint64_t id;
	insp x;
	got g;

	id = push_o(t, "q", "two", (pushx){.dedup = "k", .delay_ms = 100}).id;
	commit(t);
	store_close(f->s);
	f->s = NULL;
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi meta, msgs;
		MDB_cursor *cur;
		MDB_val k = {6, "schema"}, v, mk, mv;
		uint8_t ver[4] = {2, 0, 0, 0}, out[512];
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
			/* dedup, type, error, reason with their NULs */
			strs = (size_t)(p[40] + p[44] + p[48] + p[60]) + 4;
			memcpy(out, p, 68);
			out[0] = 2;
			out[3] = 0;
			memcpy(out + 68, p + 88, strs);
			n = 88 + strs + 1 + p[68]; /* skip the group */
			memcpy(out + 68 + strs, p + n, mv.mv_size - n);
			v.mv_data = out;
			v.mv_size = 68 + strs + (mv.mv_size - n);
			assert_int_equal(mdb_cursor_put(cur, &mk, &v, MDB_CURRENT), 0);
		}
		mdb_cursor_close(cur);
		assert_int_equal(mdb_txn_commit(txn), 0);
		mdb_env_close(env);
	}
	fx_open(f);
	t = begin(f);
	x = get_msg(t, "q", id);
	assert_string_equal(x.payload, "two");
	assert_string_equal(x.dedup, "k");
	assert_string_equal(x.group, "");
	assert_int_equal(x.expire, 0);
	assert_true(push_o(t, "q", "dup", (pushx){.dedup = "k"}).duplicate);
	f->now += 100;
	tick(t, 0);
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, id);
	OK(store_ack(t, "q", g.id, g.token, &E)); /* rewritten as version 3 on the way */
	commit(t);
}

/* test_dlq_groups_ttl: with a dead-letter queue, a grouped head that runs
 * out of attempts and messages that expire (ready, delayed, waiting in a
 * group) all move there; the group moves on; dedup keys are freed; a
 * redrive sends them back into their origin (the grouped one rejoins its
 * group). */
static void test_dlq_groups_ttl(void **state)
{
	fx *f = *state;
	store_txn *t = begin(f);
	store_redrive_opts ro = {0};
	store_redrive_result rr = {0};
	store_queue_stats s;
	uint64_t g1, g2, g3, r, d;
	insp x;
	got g;

	create_cfg(t, "dlq", (store_queue_config){0});
	create_cfg(t, "q",
	           (store_queue_config){
	               .max_age_ms = 1000, .max_attempts = 1, .dead_letter_queue = "dlq"});
	g1 = push_g(t, "q", "g1", "g", 0);
	g2 = push_g(t, "q", "g2", "g", 0);
	g3 = push_g(t, "q", "g3", "g", 0);
	r = push_o(t, "q", "r", (pushx){.dedup = "kr"}).id;
	d = push_x(t, "q", "d", 0, 5000);
	g = pull1(t, "q", 60000);
	assert_int_equal(g.id, g1);
	OK(store_nack(t, "q", g.id, g.token, 0, "boom", &E)); /* max attempts 1: dead */
	ST(store_message_get(t, "q", g1, insp_cb, &(insp){0}, &E), MQ_NOT_FOUND);
	x = get_msg(t, "dlq", g1);
	assert_int_equal(x.state, STORE_STATE_DEAD);
	assert_string_equal(x.reason, "max attempts reached (1)");
	assert_string_equal(x.group, "g");
	s = stats(t, "q");
	assert_int_equal(s.dead, 0);
	assert_int_equal(s.dead_total, 1);
	assert_int_equal(stats(t, "dlq").dead, 1);
	/* the group moved on: g2 is its head now */
	assert_int_equal(get_msg(t, "q", g2).state, STORE_STATE_READY);
	/* TTL: g2 (head), g3 (waiting), r (ready), d (delayed) expire into dlq */
	f->now = T0 + 1000;
	assert_int_equal(tick(t, 0), 4);
	assert_gauges(t, "q", 0, 0, 0, 0);
	s = stats(t, "q");
	assert_int_equal(s.dead_total, 5);
	assert_int_equal(stats(t, "dlq").dead, 5);
	assert_string_equal(get_msg(t, "dlq", g3).reason, "expired");
	assert_string_equal(get_msg(t, "dlq", r).reason, "expired");
	assert_string_equal(get_msg(t, "dlq", d).reason, "expired");
	assert_false(push_o(t, "q", "r2", (pushx){.dedup = "kr"}).duplicate); /* key freed */
	commit(t);
	if (is_durable())
		reopen(f);
	t = begin(f);
	/* redrive everything back to its origin; the grouped ones rejoin "g" in
	 * order of redrive (ids ascending): g1 first, then g2, g3 behind it */
	OK(store_redrive_ex(t, "dlq", &ro, &rr, &E));
	assert_int_equal(rr.moved, 5);
	assert_int_equal(stats(t, "dlq").dead, 0);
	assert_int_equal(stats(t, "dlq").redriven_total, 5);
	assert_int_equal(get_msg(t, "q", g1).state, STORE_STATE_READY);
	{
		gots gs = {0};

		/* g1 (head of g), r, d, r2: g2 and g3 wait behind g1 */
		assert_int_equal(pull_all(t, "q", &gs), 4);
		assert_non_null(find(&gs, "g1"));
		assert_null(find(&gs, "g2"));
		OK(store_ack(t, "q", find(&gs, "g1")->id, find(&gs, "g1")->token, &E));
	}
	g = pull1(t, "q", 0);
	assert_int_equal(g.id, g2);
	commit(t);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest both[] = {
	    cmocka_unit_test_setup_teardown(test_groups_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_groups_delays, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_groups_delete_purge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_groups_replace_redrive, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_groups_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dedup_debounce, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dedup_scope_waiting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dedup_scope_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snooze, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_before, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
	};
	const struct CMUnitTest lmdb_only[] = {
	    cmocka_unit_test_setup_teardown(test_groups_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ttl_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_record_v2_reads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dlq_groups_ttl, setup, teardown),
	};
	int failed;

	if (argc > 1)
		g_engine = argv[1];
	if (!storefx_engine_ok())
		return 2;
	failed = cmocka_run_group_tests_name(g_engine, both, NULL, NULL);
	if (is_lmdb())
		failed += cmocka_run_group_tests_name("lmdb-only", lmdb_only, NULL, NULL);
	return failed;
}
