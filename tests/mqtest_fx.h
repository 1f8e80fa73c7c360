/* SPDX-License-Identifier: MIT */
/* mqtest_fx.h: the fixture most integration tests share: one real mqd (in a
 * temp dir, on ipc://), one libmqclient connection to it, and mqctl run as
 * a shell command against it. With cmocka, use mqtest_fx_setup/teardown as
 * the setup and teardown of a test, or mqtest_fx_open() for a broker with
 * extra flags. Only the main thread may call these (cmocka asserts). */
#ifndef MQTEST_FX_H
#define MQTEST_FX_H

#include <stdint.h>

#include "mq/mq.h"
#include "mqtest.h"

#define MQTEST_FX_MAX_ARGS 8

typedef struct mqtest_fx {
	mqtest_broker b;
	mq_client *c;      /* connected; NULL between a stop and a reconnect */
	const char *mqctl; /* $MQCTL (the mqctl built by meson), or NULL */
	const char *args[MQTEST_FX_MAX_ARGS + 1]; /* mqd's extra flags, NULL-ended */
	char out[65536];                          /* stdout of the last mqtest_ctl() */
} mqtest_fx;

/* mqtest_fx_open starts mqd with extra flags (a NULL-ended list of at most
 * MQTEST_FX_MAX_ARGS strings, which must outlive the fixture: restarts
 * reuse them) and connects a client (5 s connect, 10 s call timeouts). */
mqtest_fx *mqtest_fx_open(const char *arg, ...);

/* mqtest_fx_close closes the client, stops mqd and removes its temp dir. */
void mqtest_fx_close(mqtest_fx *f);

/* cmocka setup/teardown: *state = mqtest_fx_open(NULL) / mqtest_fx_close. */
int mqtest_fx_setup(void **state);
int mqtest_fx_teardown(void **state);

/* mqtest_fx_connect opens f->c to the broker. */
void mqtest_fx_connect(mqtest_fx *f);

/* mqtest_fx_restart closes the client, stops mqd cleanly (exit 0 asserted),
 * starts it again on the same data with the same flags and reconnects. */
void mqtest_fx_restart(mqtest_fx *f);

/* mqtest_ctl runs `mqctl --url <broker> ARGS` (ARGS is shell text, so
 * "2>&1" or "< file" may follow) and returns its exit status; its stdout
 * is in f->out. */
int mqtest_ctl(mqtest_fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* mqtest_make_queue creates a queue with a lease and max attempts (0 =
 * the broker's defaults). */
void mqtest_make_queue(mqtest_fx *f, const char *name, uint32_t lease_ms, uint32_t max_attempts);

/* mqtest_pull1 leases exactly one message of q (waiting up to 2 s) and
 * returns it (the caller frees it with mq_message_free). */
mq_message *mqtest_pull1(mqtest_fx *f, const char *q, uint32_t lease_ms);

/* mqtest_try_pull leases one message of q waiting up to wait_ms, or
 * returns NULL when none came. */
mq_message *mqtest_try_pull(mqtest_fx *f, const char *q, uint32_t wait_ms);

#endif
