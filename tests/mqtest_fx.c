/* SPDX-License-Identifier: MIT */
/* mqtest_fx.c: the shared integration fixture (see mqtest_fx.h). */
#include "mqtest_fx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define A(f) (f)->args
#define ARGS(f)                                                                                    \
	A(f)[0], A(f)[1], A(f)[2], A(f)[3], A(f)[4], A(f)[5], A(f)[6], A(f)[7], (const char *)NULL

mqtest_fx *mqtest_fx_open(const char *arg, ...)
{
	mqtest_fx *f = calloc(1, sizeof(*f));
	va_list ap;
	int n = 0;

	if (f == NULL)
		fail_msg("out of memory");
	f->mqctl = getenv("MQCTL");
	va_start(ap, arg);
	for (const char *a = arg; a != NULL; a = va_arg(ap, const char *)) {
		if (n == MQTEST_FX_MAX_ARGS)
			fail_msg("mqtest_fx_open: more than %d mqd flags", MQTEST_FX_MAX_ARGS);
		f->args[n++] = a;
	}
	va_end(ap);
	/* The unused slots are NULL: mqd's list ends at the first. */
	mqtest_broker_start(&f->b, ARGS(f));
	mqtest_fx_connect(f);
	return f;
}

void mqtest_fx_close(mqtest_fx *f)
{
	if (f == NULL)
		return;
	mq_client_close(f->c);
	mqtest_broker_cleanup(&f->b);
	free(f);
}

int mqtest_fx_setup(void **state)
{
	*state = mqtest_fx_open(NULL);
	return 0;
}

int mqtest_fx_teardown(void **state)
{
	mqtest_fx_close(*state);
	return 0;
}

void mqtest_fx_connect(mqtest_fx *f)
{
	mq_client_opts o;

	mq_client_opts_init(&o);
	o.connect_timeout_ms = 5000;
	o.timeout_ms = 10000;
	assert_mq_ok(mq_client_open(&f->c, f->b.url, &o));
}

void mqtest_fx_restart(mqtest_fx *f)
{
	mq_client_close(f->c);
	f->c = NULL;
	assert_int_equal(mqtest_broker_stop(&f->b), 0);
	mqtest_broker_restart(&f->b, ARGS(f));
	mqtest_fx_connect(f);
}

int mqtest_ctl(mqtest_fx *f, const char *fmt, ...)
{
	char args[4096];
	va_list ap;

	if (f->mqctl == NULL)
		fail_msg("MQCTL is not set");
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return mqtest_run(f->out, sizeof(f->out), "'%s' --url '%s' %s", f->mqctl, f->b.url, args);
}

void mqtest_make_queue(mqtest_fx *f, const char *name, uint32_t lease_ms, uint32_t max_attempts)
{
	mq_queue_config cfg = {.lease_ms = lease_ms, .max_attempts = max_attempts};

	assert_mq_ok(mq_queue_create(f->c, name, &cfg, false, NULL));
}

mq_message *mqtest_pull1(mqtest_fx *f, const char *q, uint32_t lease_ms)
{
	mq_pull_opts po = {.wait_ms = 2000, .lease_ms = lease_ms};
	mq_message *m = NULL;
	size_t n = 0;

	assert_mq_ok(mq_pull(f->c, q, &po, &m, 1, &n));
	assert_int_equal(n, 1);
	return m;
}

mq_message *mqtest_try_pull(mqtest_fx *f, const char *q, uint32_t wait_ms)
{
	mq_pull_opts po = {.wait_ms = wait_ms};
	mq_message *m = NULL;
	size_t n = 0;

	assert_mq_ok(mq_pull(f->c, q, &po, &m, 1, &n));
	return n ? m : NULL;
}
