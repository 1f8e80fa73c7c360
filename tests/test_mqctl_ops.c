/* SPDX-License-Identifier: MIT */
/* test_mqctl_ops.c: mqctl's operator commands against a real mqd: top
 * (live depths and rates, human and JSON lines), bulk push with --lines,
 * and progress bars that appear on a terminal (a pty from script(1)) and
 * never when piped. */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest_fx.h"

typedef mqtest_fx fx;

/* lines_path: a file of 1200 lines (two empty ones more) in the broker's
 * temp dir, made by setup. */
static char lines_path[400];

static int setup(void **state)
{
	fx *f = mqtest_fx_open(NULL);
	FILE *fp;

	if (f->mqctl == NULL)
		fail_msg("MQCTL is not set");
	/* 1200 lines with two empty ones: 1200 messages, three batches */
	snprintf(lines_path, sizeof(lines_path), "%s/lines.txt", f->b.dir);
	fp = fopen(lines_path, "w");
	assert_non_null(fp);
	for (int i = 1; i <= 1200; i++)
		fprintf(fp, "job-%d\n%s", i, i == 10 || i == 700 ? "\n" : "");
	fclose(fp);
	*state = f;
	return 0;
}

/* test_mqctl_push_lines: each non-empty line is one message, in order;
 * the summary in both forms; usage errors. */
static void test_mqctl_push_lines(void **state)
{
	fx *f = *state;
	mq_queue_info qi;
	mq_pull_opts po = {.wait_ms = 0};
	mq_message *m[3];
	size_t n, len;

	assert_int_equal(mqtest_ctl(f, "push bulk --lines --file '%s' 2>&1", lines_path), 0);
	assert_string_equal(f->out, "pushed 1200 messages to bulk (0 duplicates, 0 failed)\n");
	assert_mq_ok(mq_queue_get(f->c, "bulk", &qi));
	assert_int_equal(qi.stats.ready, 1200);
	assert_mq_ok(mq_pull(f->c, "bulk", &po, m, 3, &n));
	assert_int_equal(n, 3);
	assert_memory_equal(mq_message_payload(m[0], &len), "job-1", 5);
	assert_int_equal(len, 5);
	assert_memory_equal(mq_message_payload(m[2], &len), "job-3", 5);
	for (size_t i = 0; i < n; i++)
		mq_message_free(m[i]);
	assert_int_equal(mqtest_ctl(f, "--json push bulk2 --lines --type t.x < '%s'", lines_path),
	                 0);
	assert_non_null(strstr(f->out, "\"pushed\": 1200"));
	assert_non_null(strstr(f->out, "\"failed\": 0"));
	/* with max_length, the excess fails: exit 1, counted, first reason */
	assert_int_equal(mqtest_ctl(f, "queue create small --max-length 1000"), 0);
	assert_int_equal(mqtest_ctl(f, "push small --lines --file '%s' 2>&1", lines_path), 1);
	assert_non_null(strstr(f->out, "pushed 1000 messages to small (0 duplicates, 200 failed)"));
	assert_non_null(strstr(f->out, "RESOURCE_EXHAUSTED: 200 messages failed"));
	assert_int_equal(mqtest_ctl(f, "push bulk DATA --lines 2>/dev/null"), 2);
	assert_int_equal(mqtest_ctl(f, "push bulk --lines --dedup-key k < /dev/null 2>/dev/null"),
	                 2);
}

/* test_mqctl_progress: a progress bar on a terminal, none when piped or
 * with --json; redrive shows one too. */
static void test_mqctl_progress(void **state)
{
	fx *f = *state;

	if (access("/usr/bin/script", X_OK) != 0)
		fail_msg("script(1) is missing (package bsdutils)");
	assert_int_equal(mqtest_run(f->out, sizeof(f->out),
	                            "script -qec \"'%s' --url '%s' push tty --lines --file '%s'\" "
	                            "/dev/null",
	                            f->mqctl, f->b.url, lines_path),
	                 0);
	assert_non_null(strstr(f->out, "\rpushing ["));
	assert_non_null(strstr(f->out, "] 100% 1200/1200"));
	assert_non_null(strstr(f->out, "pushed 1200 messages to tty"));
	/* piped: no bar on stderr */
	assert_int_equal(mqtest_ctl(f, "push piped --lines --file '%s' 2>&1", lines_path), 0);
	assert_null(strstr(f->out, "pushing"));
	/* redrive progress: make dead messages by purging nothing but terming */
	{
		mq_queue_config cfg = {.max_attempts = 1};
		mq_pull_opts po = {.wait_ms = 0};
		mq_message *m[100];
		size_t n;
		uint64_t id;

		assert_mq_ok(mq_queue_create(f->c, "dl", &cfg, false, NULL));
		for (int i = 0; i < 100; i++)
			assert_mq_ok(mq_push(f->c, "dl", "x", 1, NULL, &id, NULL));
		assert_mq_ok(mq_pull(f->c, "dl", &po, m, 100, &n));
		assert_int_equal(n, 100);
		for (size_t i = 0; i < n; i++) {
			assert_mq_ok(mq_nack(f->c, m[i], 0, "boom"));
			mq_message_free(m[i]);
		}
	}
	assert_int_equal(mqtest_run(f->out, sizeof(f->out),
	                            "script -qec \"'%s' --url '%s' dead redrive dl\" /dev/null",
	                            f->mqctl, f->b.url),
	                 0);
	assert_non_null(strstr(f->out, "\rredriving ["));
	assert_non_null(strstr(f->out, "100/100"));
	assert_non_null(strstr(f->out, "redrove 100 dead messages of dl to dl"));

	/* purge goes in steps of 10000: 10500 messages take two, with a bar */
	{
		char big[450];
		FILE *fp;

		snprintf(big, sizeof(big), "%s/big.txt", f->b.dir);
		fp = fopen(big, "w");
		assert_non_null(fp);
		for (int i = 0; i < 10500; i++)
			fprintf(fp, "m%d\n", i);
		fclose(fp);
		assert_int_equal(mqtest_ctl(f, "push big --lines --file '%s' >/dev/null", big), 0);
		assert_int_equal(mqtest_ctl(f, "push big2 --lines --file '%s' >/dev/null", big), 0);
		assert_int_equal(mqtest_ctl(f, "push big3 --lines --file '%s' >/dev/null", big), 0);
	}
	assert_int_equal(mqtest_run(f->out, sizeof(f->out),
	                            "script -qec \"'%s' --url '%s' queue purge big\" /dev/null",
	                            f->mqctl, f->b.url),
	                 0);
	assert_non_null(strstr(f->out, "\rpurging ["));
	assert_non_null(strstr(f->out, "]  95% 10000/10500"));
	assert_non_null(strstr(f->out, "] 100% 10500/10500"));
	assert_non_null(strstr(f->out, "purged 10500 messages from big"));
	/* piped and JSON: no bar, the step count in JSON */
	assert_int_equal(mqtest_ctl(f, "--json queue purge big2 2>&1"), 0);
	assert_null(strstr(f->out, "purging"));
	assert_non_null(strstr(f->out, "\"purged\": 10500"));
	assert_non_null(strstr(f->out, "\"steps\": 2"));
	{
		mq_queue_info qi;

		assert_mq_ok(mq_queue_get(f->c, "big", &qi));
		assert_int_equal(qi.stats.ready, 0);
		assert_mq_ok(mq_queue_get(f->c, "big2", &qi));
		assert_int_equal(qi.stats.ready, 0);
	}
	/* delete empties a large queue in steps first, with a bar */
	assert_int_equal(mqtest_run(f->out, sizeof(f->out),
	                            "script -qec \"'%s' --url '%s' queue delete big3\" /dev/null",
	                            f->mqctl, f->b.url),
	                 0);
	assert_non_null(strstr(f->out, "\remptying ["));
	assert_non_null(strstr(f->out, "] 100% 10500/10500"));
	assert_non_null(strstr(f->out, "deleted queue big3"));
	{
		mq_queue_info qi;

		assert_int_equal(mq_queue_get(f->c, "big3", &qi), MQ_NOT_FOUND);
	}
}

/* ---- every command in both forms ------------------------------------- */

#define MAX_COVERED 64

typedef struct forms {
	fx *f;
	char covered[MAX_COVERED][32];
	int n;
} forms;

/* both runs `mqctl ARGS` for the human form and `mqctl --json JARGS` for
 * the JSON one (each on its own object when the command changes state):
 * both exit 0, the text holds `needle`, the JSON parses and holds `key`. */
static void both(forms *fm, const char *name, const char *args, const char *needle,
                 const char *jargs, const char *key)
{
	fx *f = fm->f;
	json_error_t jerr;
	json_t *doc;
	int rc;

	rc = mqtest_ctl(f, "%s", args);
	if (rc != 0 || strstr(f->out, needle) == NULL)
		fail_msg("mqctl %s: exit %d, want \"%s\" in:\n%s", args, rc, needle, f->out);
	rc = mqtest_ctl(f, "--json %s", jargs);
	if (rc != 0)
		fail_msg("mqctl --json %s: exit %d: %s", jargs, rc, f->out);
	/* top --json prints JSON lines: the first document is enough. */
	doc = json_loads(f->out, JSON_DISABLE_EOF_CHECK, &jerr);
	if (doc == NULL || !json_is_object(doc) || json_object_get(doc, key) == NULL)
		fail_msg("mqctl --json %s: want an object with \"%s\", got: %s", jargs, key,
		         f->out);
	json_decref(doc);
	assert_true(fm->n < MAX_COVERED);
	snprintf(fm->covered[fm->n++], sizeof(fm->covered[0]), "%s", name);
}

/* lease pulls one message of q through the library. */
static void lease(fx *f, const char *q, uint64_t *id, uint64_t *token)
{
	mq_pull_opts po = {.wait_ms = 0, .lease_ms = 600000};
	mq_message *m;
	size_t n;

	assert_mq_ok(mq_pull(f->c, q, &po, &m, 1, &n));
	assert_int_equal(n, 1);
	*id = mq_message_id(m);
	*token = mq_message_lease_token(m);
	mq_message_free(m);
}

/* test_mqctl_both_forms: every command mqctl --help lists, run once for
 * its human output and once with --json; a command added without a case
 * here fails the test. */
static void test_mqctl_both_forms(void **state)
{
	fx *f = *state;
	forms fm = {.f = f};
	char a[256], j[256];
	uint64_t id[2], tok[2];
	char *line, *save;
	int listed = 0;

	both(&fm, "ping", "ping", "pong from ", "ping", "rtt_ms");
	both(&fm, "info", "info", "version:", "info", "version");
	both(&fm, "queue create", "queue create qa", "created queue qa", "queue create qb",
	     "created");
	both(&fm, "queue update", "queue update qa --max-length 100", "max length:    100",
	     "queue update qb --max-length 100", "config");
	both(&fm, "queue pause", "queue pause qa", "paused queue qa", "queue pause qb", "paused");
	both(&fm, "queue resume", "queue resume qa", "resumed queue qa", "queue resume qb",
	     "paused");
	both(&fm, "push", "push qa one", "pushed ", "push qa two", "id");
	for (int i = 0; i < 8; i++)
		assert_int_equal(mqtest_ctl(f, "push qa m%d >/dev/null", i), 0);
	both(&fm, "queue list", "queue list", "qa", "queue list", "queues");
	both(&fm, "queue stats", "queue stats qa", "ready:", "queue stats qa", "stats");
	both(&fm, "top", "top --count 1 --interval-ms 100", "QUEUE",
	     "top --count 1 --interval-ms 100", "queues");
	both(&fm, "messages", "messages qa", "PAYLOAD", "messages qa", "messages");
	both(&fm, "pull", "pull qa", "TOKEN", "pull qa", "messages");

	for (int i = 0; i < 2; i++)
		lease(f, "qa", &id[i], &tok[i]);
	snprintf(a, sizeof(a), "ack qa %" PRIu64 " %" PRIu64, id[0], tok[0]);
	snprintf(j, sizeof(j), "ack qa %" PRIu64 " %" PRIu64, id[1], tok[1]);
	both(&fm, "ack", a, "acked ", j, "acked");
	for (int i = 0; i < 2; i++)
		lease(f, "qa", &id[i], &tok[i]);
	snprintf(a, sizeof(a), "extend qa %" PRIu64 " %" PRIu64, id[0], tok[0]);
	snprintf(j, sizeof(j), "extend qa %" PRIu64 " %" PRIu64, id[1], tok[1]);
	both(&fm, "extend", a, "extended lease of ", j, "lease_expiry_ms");
	snprintf(a, sizeof(a), "nack qa %" PRIu64 " %" PRIu64 " --delay-ms 600000", id[0], tok[0]);
	snprintf(j, sizeof(j), "nack qa %" PRIu64 " %" PRIu64 " --delay-ms 600000", id[1], tok[1]);
	both(&fm, "nack", a, "nacked ", j, "nacked");
	for (int i = 0; i < 2; i++)
		lease(f, "qa", &id[i], &tok[i]);
	snprintf(a, sizeof(a), "snooze qa %" PRIu64 " %" PRIu64 " --delay-ms 600000", id[0],
	         tok[0]);
	snprintf(j, sizeof(j), "snooze qa %" PRIu64 " %" PRIu64 " --delay-ms 600000", id[1],
	         tok[1]);
	both(&fm, "snooze", a, "snoozed ", j, "snoozed");
	for (int i = 0; i < 2; i++)
		lease(f, "qa", &id[i], &tok[i]);
	snprintf(a, sizeof(a), "term qa %" PRIu64 " %" PRIu64 " --reason r1", id[0], tok[0]);
	snprintf(j, sizeof(j), "term qa %" PRIu64 " %" PRIu64 " --reason r2", id[1], tok[1]);
	both(&fm, "term", a, "termed ", j, "termed");
	both(&fm, "dead list", "dead list qa", "termed: r1", "dead list qa", "messages");
	snprintf(a, sizeof(a), "message get qa %" PRIu64, id[0]);
	both(&fm, "message get", a, "termed: r1", a, "dead_reason");
	snprintf(a, sizeof(a), "dead redrive qa --id %" PRIu64, id[0]);
	snprintf(j, sizeof(j), "dead redrive qa --id %" PRIu64, id[1]);
	both(&fm, "dead redrive", a, "redrove 1 dead message", j, "redriven");
	snprintf(a, sizeof(a), "message delete qa %" PRIu64, id[0]);
	snprintf(j, sizeof(j), "message delete qa %" PRIu64, id[1]);
	both(&fm, "message delete", a, "deleted ", j, "deleted");
	both(&fm, "queue purge", "queue purge qa --state ready", "purged ", "queue purge qb",
	     "purged");

	both(&fm, "schedule create", "schedule create sa qa --every-ms 3600000 tick",
	     "created schedule sa", "schedule create sb qb --every-ms 3600000 tick", "name");
	both(&fm, "schedule list", "schedule list", "sa", "schedule list", "schedules");
	both(&fm, "schedule get", "schedule get sa", "sa", "schedule get sa", "next_fire_ms");
	both(&fm, "schedule pause", "schedule pause sa", "paused schedule sa", "schedule pause sb",
	     "paused");
	both(&fm, "schedule resume", "schedule resume sa", "resumed schedule sa",
	     "schedule resume sb", "paused");
	both(&fm, "schedule delete", "schedule delete sa", "deleted schedule sa",
	     "schedule delete sb", "deleted");
	both(&fm, "topic create", "topic create ta", "created topic ta", "topic create tb",
	     "created");
	both(&fm, "sub create", "sub create ta sa1", "sa1", "sub create tb sb1", "created");
	both(&fm, "topic publish", "topic publish ta hi", "published to ta: 1 cop",
	     "topic publish tb hi", "copies");
	both(&fm, "topic list", "topic list", "ta", "topic list", "topics");
	both(&fm, "topic get", "topic get ta", "sa1", "topic get ta", "subscriptions");
	both(&fm, "sub delete", "sub delete ta sa1", "sa1", "sub delete tb sb1", "deleted");
	both(&fm, "topic delete", "topic delete ta", "deleted topic ta", "topic delete tb",
	     "deleted");
	both(&fm, "queue delete", "queue delete qa", "deleted queue qa", "queue delete qb",
	     "deleted");
	snprintf(a, sizeof(a), "backup '%.200s/both.mqb'", f->b.dir);
	snprintf(j, sizeof(j), "backup '%.200s/both-json.mqb'", f->b.dir);
	both(&fm, "backup", a, "backup written to ", j, "blake2b");

	/* Every command of mqctl --help has a case above. */
	assert_int_equal(mqtest_ctl(f, "--help"), 0);
	line = strstr(f->out, "Commands:\n");
	assert_non_null(line);
	line = strtok_r(line + strlen("Commands:\n"), "\n", &save);
	for (; line != NULL && strncmp(line, "  ", 2) == 0; line = strtok_r(NULL, "\n", &save)) {
		char name[32];
		const char *p = line + 2, *end;
		bool found = false;

		/* the name is one or two words before the description */
		end = strchr(p, ' ');
		assert_non_null(end);
		if (end[1] != ' ' && strncmp(p, "queue", 5) != 0 &&
		    strncmp(p, "schedule", 8) != 0 && strncmp(p, "topic", 5) != 0 &&
		    strncmp(p, "sub", 3) != 0 && strncmp(p, "message", 7) != 0 &&
		    strncmp(p, "dead", 4) != 0)
			; /* one word */
		else if (end[1] != ' ')
			end = strchr(end + 1, ' ');
		assert_non_null(end);
		snprintf(name, sizeof(name), "%.*s", (int)(end - p), p);
		for (int i = 0; i < fm.n && !found; i++)
			found = strcmp(fm.covered[i], name) == 0;
		if (!found)
			fail_msg("mqctl command '%s' has no both-forms case here", name);
		listed++;
	}
	/* and each case above is a listed command */
	assert_int_equal(listed, fm.n);
}

/* test_mqctl_top: depths and rates; human tables and JSON lines; bounded
 * by --count; usage errors. */
static void test_mqctl_top(void **state)
{
	fx *f = *state;
	char *second;

	assert_int_equal(mqtest_ctl(f, "push web --lines --file '%s' >/dev/null", lines_path), 0);
	assert_int_equal(mqtest_ctl(f, "queue pause web"), 0);
	assert_int_equal(mqtest_ctl(f, "top --count 2 --interval-ms 200"), 0);
	assert_non_null(strstr(f->out, "QUEUE  STATE   READY"));
	assert_non_null(strstr(f->out, "web    paused   1200"));
	/* the second refresh has rates: no push happened, so 0.0 */
	second = strstr(f->out + 1, "mq top:");
	assert_non_null(second);
	assert_non_null(strstr(second, "0.0"));
	/* the first has none yet */
	{
		char *dash = strstr(f->out, " - ");

		assert_non_null(dash);
		assert_true(dash < second);
	}
	assert_int_equal(mqtest_ctl(f, "--json top --count 2 --interval-ms 200"), 0);
	{
		/* two JSON lines, each a full object */
		char *nl = strchr(f->out, '\n');

		assert_non_null(nl);
		assert_non_null(strchr(nl + 1, '\n'));
		assert_non_null(strstr(f->out, "\"name\":\"web\""));
		assert_non_null(strstr(f->out, "\"paused\":true"));
		assert_non_null(strstr(f->out, "\"ready\":1200"));
		assert_non_null(strstr(f->out, "\"push_rate\":0.0"));
	}
	assert_int_equal(mqtest_ctl(f, "top --interval-ms 5 2>/dev/null"), 2);
	assert_int_equal(mqtest_ctl(f, "top --count 0 2>/dev/null"), 2);
	assert_int_equal(mqtest_ctl(f, "top extra 2>/dev/null"), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_mqctl_push_lines, setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mqctl_progress, setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mqctl_both_forms, setup, mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mqctl_top, setup, mqtest_fx_teardown),
	};

	return cmocka_run_group_tests_name("mqctl_ops", tests, NULL, NULL);
}
