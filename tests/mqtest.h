/* SPDX-License-Identifier: MIT */
/* mqtest.h: helpers shared by the tests: temp dirs, and the real mqd
 * started on an ipc:// address inside a temp dir. */
#ifndef MQTEST_H
#define MQTEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdbool.h>
#include <sys/types.h>
#include <cmocka.h>

#include "mq/status.h"

/* assert_mq_ok fails the test with the status name and text. */
#define assert_mq_ok(expr)                                                                         \
	do {                                                                                       \
		int rv_ = (expr);                                                                  \
		if (rv_ != 0)                                                                      \
			fail_msg("%s = %s (%s)", #expr, mq_status_name(rv_), mq_strerror(rv_));    \
	} while (0)

/* assert_mq_status checks a call returns the expected status. */
#define assert_mq_status(expr, want)                                                               \
	do {                                                                                       \
		int rv_ = (expr);                                                                  \
		if (rv_ != (int)(want))                                                            \
			fail_msg("%s = %s, want %s", #expr, mq_status_name(rv_),                   \
			         mq_status_name(want));                                            \
	} while (0)

/* mqtest_tmpdir makes a fresh directory under $TMPDIR (or /tmp) and
 * writes its path into buf. Removed with mqtest_rmtree. */
void mqtest_tmpdir(char *buf, size_t len);

/* mqtest_rmtree removes a directory tree. */
void mqtest_rmtree(const char *path);

/* mqtest_now_ms returns CLOCK_MONOTONIC in ms. */
uint64_t mqtest_now_ms(void);

/* mqtest_time_mult is $MQTEST_TIME_MULT (default 1): waits for mqd are
 * that many times longer (mqd under valgrind). $MQD_WRAPPER, when set, is
 * a command line mqd is started under (e.g. "valgrind --error-exitcode=99
 * ..."); mqtest_broker_cleanup then stops mqd with SIGTERM and fails the
 * test if it does not exit 0. */
int mqtest_time_mult(void);

/* mqtest_broker is one running mqd process. */
typedef struct mqtest_broker {
	pid_t pid;
	char dir[256];  /* temp dir holding the socket, data and log */
	char url[320];  /* ipc://<dir>/mq.sock */
	char data[320]; /* <dir>/data */
	char log[320];  /* <dir>/mqd.log: mqd's stderr */
	bool own_dir;
} mqtest_broker;

/* mqtest_broker_start starts $MQD (the mqd built by meson) with its data
 * and socket in a fresh temp dir, extra arguments appended (a NULL-ended
 * list of strings), and waits until it logs that it is ready. Fails the test
 * if it does not start within 10 s. */
void mqtest_broker_start(mqtest_broker *b, ...);

/* mqtest_broker_restart starts mqd again on the same dir (after a stop or
 * kill), with the given extra arguments (NULL-ended). */
void mqtest_broker_restart(mqtest_broker *b, ...);

/* mqtest_broker_stop sends SIGTERM, waits, and returns the exit status
 * (0 for a clean exit; -1 if it had to be killed or died by a signal). */
int mqtest_broker_stop(mqtest_broker *b);

/* mqtest_broker_kill sends SIGKILL and reaps the process. */
void mqtest_broker_kill(mqtest_broker *b);

/* mqtest_broker_cleanup stops mqd if running and removes its temp dir. */
void mqtest_broker_cleanup(mqtest_broker *b);

/* mqtest_run runs a shell command, captures its stdout (up to len-1
 * bytes, NUL-terminated) and returns its exit status (-1 on signal). */
int mqtest_run(char *out, size_t len, const char *fmt, ...);

/* mqtest_faultshim_env preloads tests/faultshim.c ($MQ_FAULTSHIM, set by
 * meson) into the mqd started next, with `hold` as its hold file (while
 * that file exists, mqd's fsyncs of data.mdb wait; "<hold>.held" appears
 * when one does); asan_old keeps ASAN_OPTIONS for mqtest_faultshim_clear,
 * which undoes it once mqd has started. */
void mqtest_faultshim_env(const char *hold, char *asan_old, size_t len);
void mqtest_faultshim_clear(const char *asan_old);

/* mqtest_wait_file waits (bounded: 20 s x mqtest_time_mult) for path to
 * exist; fails the test if it does not. */
void mqtest_wait_file(const char *path);

#endif
