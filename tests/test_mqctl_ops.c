/* SPDX-License-Identifier: MIT */
/* test_mqctl_ops.c: mqctl's operator commands against a real mqd: top
 * (live depths and rates, human and JSON lines), bulk push with --lines,
 * and progress bars that appear on a terminal (a pty from script(1)) and
 * never when piped. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest.h"

typedef struct fx {
	mqtest_broker b;
	mq_client *c;
	const char *mqctl;
	char path[400];
	char out[65536];
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	FILE *fp;

	if (f == NULL)
		return -1;
	f->mqctl = getenv("MQCTL");
	if (f->mqctl == NULL)
		fail_msg("MQCTL is not set");
	mqtest_broker_start(&f->b, NULL);
	assert_mq_ok(mq_client_open(&f->c, f->b.url, NULL));
	/* 1200 lines with two empty ones: 1200 messages, three batches */
	snprintf(f->path, sizeof(f->path), "%s/lines.txt", f->b.dir);
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	for (int i = 1; i <= 1200; i++)
		fprintf(fp, "job-%d\n%s", i, i == 10 || i == 700 ? "\n" : "");
	fclose(fp);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	mq_client_close(f->c);
	mqtest_broker_cleanup(&f->b);
	free(f);
	return 0;
}

static int ctl(fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int ctl(fx *f, const char *fmt, ...)
{
	char args[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return mqtest_run(f->out, sizeof(f->out), "'%s' --url '%s' %s", f->mqctl, f->b.url, args);
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

	assert_int_equal(ctl(f, "push bulk --lines --file '%s' 2>&1", f->path), 0);
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
	assert_int_equal(ctl(f, "--json push bulk2 --lines --type t.x < '%s'", f->path), 0);
	assert_non_null(strstr(f->out, "\"pushed\": 1200"));
	assert_non_null(strstr(f->out, "\"failed\": 0"));
	/* with max_length, the excess fails: exit 1, counted, first reason */
	assert_int_equal(ctl(f, "queue create small --max-length 1000"), 0);
	assert_int_equal(ctl(f, "push small --lines --file '%s' 2>&1", f->path), 1);
	assert_non_null(strstr(f->out, "pushed 1000 messages to small (0 duplicates, 200 failed)"));
	assert_non_null(strstr(f->out, "RESOURCE_EXHAUSTED: 200 messages failed"));
	assert_int_equal(ctl(f, "push bulk DATA --lines 2>/dev/null"), 2);
	assert_int_equal(ctl(f, "push bulk --lines --dedup-key k < /dev/null 2>/dev/null"), 2);
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
	                            f->mqctl, f->b.url, f->path),
	                 0);
	assert_non_null(strstr(f->out, "\rpushing ["));
	assert_non_null(strstr(f->out, "] 100% 1200/1200"));
	assert_non_null(strstr(f->out, "pushed 1200 messages to tty"));
	/* piped: no bar on stderr */
	assert_int_equal(ctl(f, "push piped --lines --file '%s' 2>&1", f->path), 0);
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
		assert_int_equal(ctl(f, "push big --lines --file '%s' >/dev/null", big), 0);
		assert_int_equal(ctl(f, "push big2 --lines --file '%s' >/dev/null", big), 0);
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
	assert_int_equal(ctl(f, "--json queue purge big2 2>&1"), 0);
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
}

/* test_mqctl_top: depths and rates; human tables and JSON lines; bounded
 * by --count; usage errors. */
static void test_mqctl_top(void **state)
{
	fx *f = *state;
	char *second;

	assert_int_equal(ctl(f, "push web --lines --file '%s' >/dev/null", f->path), 0);
	assert_int_equal(ctl(f, "queue pause web"), 0);
	assert_int_equal(ctl(f, "top --count 2 --interval-ms 200"), 0);
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
	assert_int_equal(ctl(f, "--json top --count 2 --interval-ms 200"), 0);
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
	assert_int_equal(ctl(f, "top --interval-ms 5 2>/dev/null"), 2);
	assert_int_equal(ctl(f, "top --count 0 2>/dev/null"), 2);
	assert_int_equal(ctl(f, "top extra 2>/dev/null"), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_mqctl_push_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mqctl_progress, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mqctl_top, setup, teardown),
	};

	return cmocka_run_group_tests_name("mqctl_ops", tests, NULL, NULL);
}
