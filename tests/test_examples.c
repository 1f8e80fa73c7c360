/* SPDX-License-Identifier: MIT */
/* test_examples.c: the programs in examples/ run against a real mqd and do
 * what README and their comments say: the producer pushes, the worker loop
 * acks and nacks, the service (consumer runtime) routes by type, retries,
 * fails for good, and stops cleanly on SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest_fx.h"

typedef mqtest_fx fx;

static const char *exe(const char *var)
{
	const char *p = getenv(var);

	if (p == NULL || *p == '\0')
		fail_msg("%s is not set", var);
	return p;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* test_examples_producer_worker: producer pushes its arguments and stdin
 * lines; worker handles COUNT messages, acking good ones and nacking the
 * one that says "fail" (retried after 1 s). */
static void test_examples_producer_worker(void **state)
{
	fx *f = *state;
	mq_queue_info qi;

	assert_int_equal(mqtest_run(f->out, sizeof(f->out),
	                            "'%s' -u '%s' ex.jobs hello fail-me world",
	                            exe("EXAMPLE_PRODUCER"), f->b.url),
	                 0);
	assert_int_equal(count(f->out, "pushed "), 3);
	assert_int_equal(mqtest_run(f->out, sizeof(f->out),
	                            "printf 'a\\nb\\n' | '%s' -u '%s' ex.lines",
	                            exe("EXAMPLE_PRODUCER"), f->b.url),
	                 0);
	assert_int_equal(count(f->out, "pushed "), 2);
	assert_mq_ok(mq_queue_get(f->c, "ex.lines", &qi));
	assert_int_equal(qi.stats.ready, 2);

	assert_int_equal(mqtest_run(f->out, sizeof(f->out), "'%s' -u '%s' -n 3 ex.jobs",
	                            exe("EXAMPLE_WORKER"), f->b.url),
	                 0);
	assert_non_null(strstr(f->out, "(attempt 1): hello"));
	assert_non_null(strstr(f->out, "(attempt 1): fail-me"));
	assert_non_null(strstr(f->out, "(attempt 1): world"));
	assert_mq_ok(mq_queue_get(f->c, "ex.jobs", &qi));
	assert_int_equal(qi.stats.acked_total, 2);
	assert_int_equal(qi.stats.nacked_total, 1);
	assert_int_equal(qi.stats.delayed + qi.stats.ready, 1); /* retried after 1 s */
	/* a bad invocation is a usage error */
	assert_int_equal(mqtest_run(NULL, 0, "'%s' 2>/dev/null", exe("EXAMPLE_WORKER")), 2);
}

static void push_typed(fx *f, const char *type, const char *body)
{
	mq_push_opts po = {.type = type};
	uint64_t id;

	assert_mq_ok(mq_push(f->c, "ex.svc", body, strlen(body), &po, &id, NULL));
}

/* read_file reads path into f->out (NUL-terminated). */
static void read_file(fx *f, const char *path)
{
	FILE *fp = fopen(path, "r");
	size_t n = 0;

	f->out[0] = '\0';
	if (fp == NULL)
		return;
	n = fread(f->out, 1, sizeof(f->out) - 1, fp);
	f->out[n] = '\0';
	fclose(fp);
}

/* test_examples_service: the consumer-runtime service routes by type:
 * email.send done, report.build retried once then done, a broken report
 * failed for good (dead with the handler's reason), an untyped message to
 * the default handler; SIGTERM stops it with exit 0. */
static void test_examples_service(void **state)
{
	fx *f = *state;
	char outpath[400], errpath[400];
	mq_queue_info qi;
	mq_message *dead[4];
	size_t ndead = 0;
	pid_t pid;
	int status, fd;
	uint64_t deadline;

	assert_mq_ok(mq_queue_create(f->c, "ex.svc", NULL, false, NULL));
	push_typed(f, "email.send", "to: a@example.com");
	push_typed(f, "email.send", "to: b@example.com");
	push_typed(f, "report.build", "q3");
	push_typed(f, "report.build", "broken");
	push_typed(f, NULL, "untyped");

	snprintf(outpath, sizeof(outpath), "%s/service.out", f->b.dir);
	snprintf(errpath, sizeof(errpath), "%s/service.err", f->b.dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0)
			dup2(fd, 1);
		fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execl(exe("EXAMPLE_SERVICE"), "service", "-u", f->b.url, "-w", "4", "ex.svc",
		      (char *)NULL);
		_exit(127);
	}
	/* 6 handler runs: 2 emails, report q3 twice (retry, done), broken, untyped */
	deadline = mqtest_now_ms() + 20000;
	do {
		usleep(50 * 1000);
		read_file(f, outpath);
	} while (count(f->out, "handled ") < 6 && mqtest_now_ms() < deadline);
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (count(f->out, "handled ") != 6) {
		fprintf(stderr, "service output:\n%s\n", f->out);
		read_file(f, errpath);
		fail_msg("service handled %zu messages, want 6; stderr: %s",
		         count(f->out, "handled "), f->out);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count(f->out, "handled email.send "), 2);
	assert_int_equal(count(f->out, "handled report.build "), 3);
	assert_int_equal(count(f->out, " retry\n"), 1);
	assert_int_equal(count(f->out, " fail\n"), 1);
	assert_int_equal(count(f->out, "handled - "), 1);
	read_file(f, errpath);
	assert_non_null(strstr(f->out, "service: SIGTERM, stopping"));
	assert_non_null(strstr(f->out, "acked 4, retried 1, failed 1"));

	assert_mq_ok(mq_queue_get(f->c, "ex.svc", &qi));
	assert_int_equal(qi.stats.acked_total, 4);
	assert_int_equal(qi.stats.dead, 1);
	assert_int_equal(qi.stats.ready + qi.stats.delayed + qi.stats.in_flight, 0);
	{
		mq_list_opts lo = {.state = MQ_STATE_DEAD};

		assert_mq_ok(mq_message_list(f->c, "ex.svc", &lo, dead, 4, &ndead, NULL, NULL));
	}
	assert_int_equal(ndead, 1);
	assert_non_null(
	    strstr(mq_message_dead_reason(dead[0]), "cannot build a report from 'broken'"));
	mq_message_free(dead[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_examples_producer_worker, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_examples_service, mqtest_fx_setup,
	                                    mqtest_fx_teardown),
	};

	return cmocka_run_group_tests_name("examples", tests, NULL, NULL);
}
