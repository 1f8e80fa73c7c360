/* SPDX-License-Identifier: MIT */
/* test_groups.c: ordering groups, dedup debounce and scopes, snooze,
 * absolute not-before times, message TTL and the fair wake-up of parked
 * pulls, against the real mqd through libmqclient and mqctl, with mqd
 * restarted in the middle where the state matters (groups, delayed, dedup
 * window, TTL). Waits are bounded polls, never timed assertions. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest_fx.h"

typedef mqtest_fx fx;

static uint64_t push_o(fx *f, const char *q, const char *payload, const mq_push_opts *o, bool *dup)
{
	uint64_t id = 0;

	assert_mq_ok(mq_push(f->c, q, payload, strlen(payload), o, &id, dup));
	return id;
}

static uint32_t state_of(fx *f, const char *q, uint64_t id)
{
	mq_message *m = NULL;
	uint32_t s;

	assert_mq_ok(mq_message_get(f->c, q, id, &m));
	s = mq_message_state(m);
	mq_message_free(m);
	return s;
}

/* wait_state polls (bounded: 20 s) until message id is in state s. */
static void wait_state(fx *f, const char *q, uint64_t id, uint32_t s)
{
	for (int i = 0; i < 400 && state_of(f, q, id) != s; i++)
		usleep(50 * 1000);
	assert_int_equal(state_of(f, q, id), s);
}

/* test_groups_order: one message of a group at a time, in push order over
 * priorities; other groups flow; a nacked head blocks its group; the state
 * survives a restart with the head leased. */
static void test_groups_order(void **state)
{
	fx *f = *state;
	mq_push_opts g1 = {.group = "g1"}, g1hi = {.group = "g1", .priority = 9},
	             g2 = {.group = "g2"};
	mq_message *a, *m, *x;
	uint64_t ida, idb, idc;

	mqtest_make_queue(f, "grp", 0, 5);
	ida = push_o(f, "grp", "a", &g1, NULL);
	idb = push_o(f, "grp", "b", &g1hi, NULL);
	push_o(f, "grp", "x", &g2, NULL);
	idc = push_o(f, "grp", "c", &g1, NULL);
	a = mqtest_pull1(f, "grp", 60000);
	assert_int_equal(mq_message_id(a), ida);
	assert_string_equal(mq_message_group(a), "g1");
	x = mqtest_pull1(f, "grp", 60000);
	assert_string_equal(mq_message_group(x), "g2");
	assert_null(mqtest_try_pull(f, "grp", 0)); /* b waits behind a */
	assert_mq_ok(mq_nack(f->c, a, 0, "again"));
	mq_message_free(a);
	a = mqtest_pull1(f, "grp", 60000);
	assert_int_equal(mq_message_id(a), ida); /* the nacked head comes back first */
	mqtest_fx_restart(f);
	assert_null(mqtest_try_pull(f, "grp", 0)); /* still blocked after the restart */
	assert_mq_ok(mq_ack(f->c, a));
	mq_message_free(a);
	m = mqtest_pull1(f, "grp", 60000);
	assert_int_equal(mq_message_id(m), idb);
	assert_null(mqtest_try_pull(f, "grp", 0));
	assert_mq_ok(mq_ack(f->c, m));
	mq_message_free(m);
	mqtest_fx_restart(f);
	m = mqtest_pull1(f, "grp", 60000);
	assert_int_equal(mq_message_id(m), idc);
	assert_mq_ok(mq_ack(f->c, m));
	mq_message_free(m);
	assert_mq_ok(mq_ack(f->c, x));
	mq_message_free(x);
	/* mqctl push --group; the listing shows the group */
	assert_int_equal(mqtest_ctl(f, "push grp one --group G"), 0);
	assert_int_equal(mqtest_ctl(f, "push grp two --group G"), 0);
	assert_int_equal(mqtest_ctl(f, "--json messages grp"), 0);
	assert_non_null(strstr(f->out, "\"group\": \"G\""));
	assert_int_equal(mqtest_ctl(f, "--json pull grp --max 10"), 0);
	assert_non_null(strstr(f->out, "one"));
	assert_null(strstr(f->out, "two"));
}

/* test_groups_not_before: an absolute time (mqctl --at, RFC 3339 and unix
 * ms; libmqclient not_before_ms) delays a message across a restart; with
 * delay_ms too it is refused; a past time is ready now. */
static void test_groups_not_before(void **state)
{
	fx *f = *state;
	mq_push_opts o = {0};
	mq_message *m;
	uint64_t now = 0, id;
	char at[64];
	time_t secs;
	struct tm tm;

	assert_mq_ok(mq_ping(f->c, &now));
	o.not_before_ms = now + 1500;
	o.delay_ms = 5;
	assert_mq_status(mq_push(f->c, "nb", "x", 1, &o, NULL, NULL), MQ_INVALID_ARGUMENT);
	o.delay_ms = 0;
	id = push_o(f, "nb", "later", &o, NULL);
	assert_mq_ok(mq_message_get(f->c, "nb", id, &m));
	assert_int_equal(mq_message_state(m), MQ_STATE_DELAYED);
	assert_int_equal(mq_message_not_before_ms(m), now + 1500);
	mq_message_free(m);
	o.not_before_ms = now - 1000;
	push_o(f, "nb", "past", &o, NULL);
	m = mqtest_pull1(f, "nb", 0);
	assert_string_equal(mq_message_payload(m, NULL), "past");
	assert_mq_ok(mq_ack(f->c, m));
	mq_message_free(m);
	/* mqctl --at, RFC 3339 far ahead and unix ms */
	secs = (time_t)(now / 1000) + 3600;
	gmtime_r(&secs, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S.250Z", &tm);
	assert_int_equal(mqtest_ctl(f, "--json push nb rfc --at %s", at), 0);
	assert_int_equal(mqtest_ctl(f, "--json messages nb --state delayed"), 0);
	snprintf(at, sizeof(at), "\"not_before_ms\": %" PRIu64, (uint64_t)secs * 1000 + 250);
	assert_non_null(strstr(f->out, at));
	assert_int_equal(mqtest_ctl(f, "push nb bad --at 2030-13-01T00:00:00Z"), 2);
	assert_int_equal(mqtest_ctl(f, "push nb ms --at %" PRIu64, now + 1500), 0);
	mqtest_fx_restart(f);
	m = mqtest_pull1(f, "nb", 0); /* pull1 waits up to 2 s */
	if (m == NULL)
		m = mqtest_pull1(f, "nb", 0);
	assert_int_equal(mq_message_id(m), id);
	mq_message_free(m);
}

/* test_groups_snooze: a snooze gives the message back without spending an
 * attempt, from libmqclient and mqctl. */
static void test_groups_snooze(void **state)
{
	fx *f = *state;
	mq_message *m, *g;

	mqtest_make_queue(f, "snz", 0, 1);
	push_o(f, "snz", "s", NULL, NULL);
	m = mqtest_pull1(f, "snz", 0);
	assert_int_equal(mq_message_attempts(m), 1);
	assert_mq_ok(mq_snooze(f->c, m, 0));
	assert_mq_status(mq_snooze(f->c, m, 0), MQ_FAILED_PRECONDITION);
	mq_message_free(m);
	m = mqtest_pull1(f, "snz", 0);
	assert_int_equal(mq_message_attempts(m), 1); /* not 2 */
	assert_int_equal(mqtest_ctl(f, "snooze snz %" PRIu64 " %" PRIu64 " --delay-ms 600000",
	                            mq_message_id(m), mq_message_lease_token(m)),
	                 0);
	assert_non_null(strstr(f->out, "snoozed"));
	assert_mq_ok(mq_message_get(f->c, "snz", mq_message_id(m), &g));
	assert_int_equal(mq_message_state(g), MQ_STATE_DELAYED);
	assert_int_equal(mq_message_attempts(g), 0);
	assert_int_equal(mq_message_history_count(g), 0);
	mq_message_free(g);
	mq_message_free(m);
}

/* test_groups_dedup: debounce keeps the later time; WAITING lets a push in
 * while the holder is leased; WINDOW holds the key after the ack across a
 * restart. */
static void test_groups_dedup(void **state)
{
	fx *f = *state;
	mq_queue_config wait = {.dedup_scope = MQ_DEDUP_SCOPE_WAITING};
	mq_queue_config win = {.dedup_scope = MQ_DEDUP_SCOPE_WINDOW, .dedup_window_ms = 600000};
	mq_push_opts o = {.dedup_key = "k", .delay_ms = 600000};
	mq_message *m;
	mq_queue_info qi;
	uint64_t id, id2, nb;
	bool dup = false;

	id = push_o(f, "deb", "v1", &o, NULL);
	assert_mq_ok(mq_message_get(f->c, "deb", id, &m));
	nb = mq_message_not_before_ms(m);
	mq_message_free(m);
	o.dedup_mode = MQ_DEDUP_DEBOUNCE;
	o.delay_ms = 1000;
	assert_int_equal(push_o(f, "deb", "v2", &o, &dup), id);
	assert_true(dup);
	assert_mq_ok(mq_message_get(f->c, "deb", id, &m));
	assert_string_equal(mq_message_payload(m, NULL), "v2");
	assert_int_equal(mq_message_not_before_ms(m), nb); /* the later one kept */
	mq_message_free(m);
	assert_int_equal(
	    mqtest_ctl(f, "push deb v3 --dedup-key k --dedup-mode debounce --delay-ms 900000"), 0);
	assert_mq_ok(mq_message_get(f->c, "deb", id, &m));
	assert_string_equal(mq_message_payload(m, NULL), "v3");
	assert_true(mq_message_not_before_ms(m) > nb); /* pushed back */
	mq_message_free(m);

	assert_mq_ok(mq_queue_create(f->c, "dw", &wait, false, NULL));
	o = (mq_push_opts){.dedup_key = "k"};
	id = push_o(f, "dw", "a", &o, NULL);
	m = mqtest_pull1(f, "dw", 0);
	id2 = push_o(f, "dw", "b", &o, &dup);
	assert_false(dup);
	assert_true(id2 != id);
	mq_message_free(m);

	assert_mq_ok(mq_queue_create(f->c, "dwin", &win, false, NULL));
	id = push_o(f, "dwin", "a", &o, NULL);
	m = mqtest_pull1(f, "dwin", 0);
	assert_mq_ok(mq_ack(f->c, m));
	mq_message_free(m);
	mqtest_fx_restart(f);
	assert_int_equal(push_o(f, "dwin", "again", &o, &dup), id);
	assert_true(dup);
	assert_mq_ok(mq_queue_get(f->c, "dwin", &qi));
	assert_int_equal(qi.stats.deduplicated_total, 1);
	assert_int_equal(qi.stats.ready, 0);
}

/* test_groups_ttl: a message past its TTL goes dead ("expired") by the
 * broker's timer, across a restart; a leased one finishes its lease. */
static void test_groups_ttl(void **state)
{
	fx *f = *state;
	mq_queue_config cfg = {.max_age_ms = 600000};
	mq_push_opts o = {.ttl_ms = 1500};
	mq_message *m, *l;
	mq_queue_info qi;
	uint64_t id, lid;

	assert_mq_ok(mq_queue_create(f->c, "ttl", &cfg, false, NULL));
	lid = push_o(f, "ttl", "leased", &o, NULL);
	l = mqtest_pull1(f, "ttl", 60000);
	assert_int_equal(mq_message_id(l), lid);
	id = push_o(f, "ttl", "short", &o, NULL);
	assert_mq_ok(mq_message_get(f->c, "ttl", id, &m));
	assert_true(mq_message_expires_ms(m) > 0);
	mq_message_free(m);
	assert_int_equal(mqtest_ctl(f, "push ttl viactl --ttl-ms 1500"), 0);
	mqtest_fx_restart(f);
	wait_state(f, "ttl", id, MQ_STATE_DEAD);
	assert_mq_ok(mq_message_get(f->c, "ttl", id, &m));
	assert_string_equal(mq_message_dead_reason(m), "expired");
	mq_message_free(m);
	assert_int_equal(state_of(f, "ttl", lid), MQ_STATE_LEASED);
	assert_mq_ok(mq_nack(f->c, l, 0, NULL)); /* back past its TTL: dead */
	mq_message_free(l);
	assert_int_equal(state_of(f, "ttl", lid), MQ_STATE_DEAD);
	for (int i = 0; i < 400; i++) {
		assert_mq_ok(mq_queue_get(f->c, "ttl", &qi));
		if (qi.stats.dead == 3)
			break;
		usleep(50 * 1000);
	}
	assert_int_equal(qi.stats.dead, 3);
	assert_int_equal(qi.stats.dead_total, 3);
}

/* ---- fair wake-up --------------------------------------------------------------- */

#define PULLERS 4

typedef struct puller {
	const char *url;
	size_t got;
	mq_status st;
	pthread_t th;
} puller;

static void *puller_main(void *arg)
{
	puller *p = arg;
	mq_client_opts o;
	mq_client *c = NULL;
	mq_pull_opts po = {.wait_ms = 20000};
	mq_message *ms[PULLERS];

	mq_client_opts_init(&o);
	o.connect_timeout_ms = 5000;
	o.timeout_ms = 30000;
	if ((p->st = mq_client_open(&c, p->url, &o)) != MQ_OK)
		return NULL;
	p->st = mq_pull(c, "burst", &po, ms, PULLERS, &p->got);
	for (size_t i = 0; p->st == MQ_OK && i < p->got; i++)
		mq_message_free(ms[i]);
	mq_client_close(c);
	return NULL;
}

/* test_groups_fair_wakeup: N pulls parked on a queue, each asking for N
 * messages; a burst of N pushes in one request wakes every one of them
 * with one message (not all N to the first). */
static void test_groups_fair_wakeup(void **state)
{
	fx *f = *state;
	puller p[PULLERS];
	const void *pl[PULLERS];
	size_t lens[PULLERS];
	size_t total = 0;

	assert_mq_ok(mq_queue_create(f->c, "burst", NULL, false, NULL));
	for (int i = 0; i < PULLERS; i++) {
		p[i] = (puller){.url = f->b.url};
		assert_int_equal(pthread_create(&p[i].th, NULL, puller_main, &p[i]), 0);
		pl[i] = "m";
		lens[i] = 1;
	}
	/* Let the pulls park (they wait up to 20 s; nothing is ready). */
	sleep(1);
	assert_mq_ok(mq_push_batch(f->c, "burst", PULLERS, pl, lens, NULL, NULL));
	for (int i = 0; i < PULLERS; i++) {
		pthread_join(p[i].th, NULL);
		assert_mq_ok(p[i].st);
		total += p[i].got;
	}
	assert_int_equal(total, PULLERS);
	for (int i = 0; i < PULLERS; i++)
		assert_int_equal(p[i].got, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_groups_order, mqtest_fx_setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_groups_not_before, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_groups_snooze, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_groups_dedup, mqtest_fx_setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_groups_ttl, mqtest_fx_setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_groups_fair_wakeup, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
