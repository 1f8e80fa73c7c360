/* SPDX-License-Identifier: MIT */
/* mqtest.c: the helpers declared in mqtest.h. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mqtest.h"

void mqtest_tmpdir(char *buf, size_t len)
{
	const char *base = getenv("TMPDIR");

	if (base == NULL || *base == '\0' || strlen(base) > 60)
		base = "/tmp"; /* keep ipc:// socket paths short */
	snprintf(buf, len, "%s/mqtest.XXXXXX", base);
	if (mkdtemp(buf) == NULL)
		fail_msg("mkdtemp %s: %s", buf, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void mqtest_rmtree(const char *path)
{
	if (path != NULL && *path != '\0')
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t mqtest_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int log_has_ready(const char *log, off_t *seen)
{
	char buf[8192];
	int fd = open(log, O_RDONLY);
	ssize_t n;
	int found = 0;

	if (fd < 0)
		return 0;
	if (lseek(fd, *seen, SEEK_SET) < 0) {
		close(fd);
		return 0;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	found = strstr(buf, " ready: ") != NULL;
	return found;
}

static void dump_log(const mqtest_broker *b)
{
	char buf[8192];
	int fd = open(b->log, O_RDONLY);
	off_t end;
	ssize_t n;

	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END); /* the end: a wrapper's report is last */
	lseek(fd, end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		fprintf(stderr, "---- mqd log (%s, the end) ----\n%s\n----\n", b->log, buf);
	}
}

int mqtest_time_mult(void)
{
	const char *v = getenv("MQTEST_TIME_MULT");
	int m = v ? atoi(v) : 1;

	return m < 1 ? 1 : m;
}

/* wrapper_argv puts the words of $MQD_WRAPPER (e.g. "valgrind
 * --error-exitcode=99 ...") first in argv; returns how many. */
static int wrapper_argv(const char **argv, char *buf, size_t len)
{
	const char *w = getenv("MQD_WRAPPER");
	int n = 0;

	if (w == NULL || !*w)
		return 0;
	snprintf(buf, len, "%s", w);
	for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok && n < 32;
	     tok = strtok_r(NULL, " ", &save))
		argv[n++] = tok;
	return n;
}

static void broker_spawn(mqtest_broker *b, va_list ap)
{
	const char *mqd = getenv("MQD");
	const char *argv[64];
	char wrap[1024];
	int argc = 0;
	const char *a;
	off_t seen = 0;
	struct stat st;
	char listen[400], data[400];

	if (mqd == NULL)
		fail_msg("MQD is not set (meson's test() sets it to the built mqd)");
	if (stat(b->log, &st) == 0)
		seen = st.st_size; /* a restart: look for the new ready line only */
	snprintf(listen, sizeof(listen), "--listen=%s", b->url);
	snprintf(data, sizeof(data), "--data-dir=%s", b->data);
	argc = wrapper_argv(argv, wrap, sizeof(wrap));
	argv[argc++] = mqd;
	argv[argc++] = listen;
	argv[argc++] = data;
	while ((a = va_arg(ap, const char *)) != NULL && argc < 62)
		argv[argc++] = a;
	argv[argc] = NULL;

	b->pid = fork();
	if (b->pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (b->pid == 0) {
		int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		/* mqd dies with the test: a failed assertion skips the test's
		 * cleanup, and an mqd left running would also hold the test's
		 * stdout open, so meson would wait for it until the timeout. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < 1000 * mqtest_time_mult(); i++) {
		int status;
		if (log_has_ready(b->log, &seen))
			return;
		if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
			b->pid = 0;
			dump_log(b);
			fail_msg("mqd exited at start (status %d)", status);
		}
		usleep(10000);
	}
	dump_log(b);
	fail_msg("mqd did not become ready within %d s", 10 * mqtest_time_mult());
}

void mqtest_broker_start(mqtest_broker *b, ...)
{
	va_list ap;

	memset(b, 0, sizeof(*b));
	mqtest_tmpdir(b->dir, sizeof(b->dir));
	b->own_dir = true;
	snprintf(b->url, sizeof(b->url), "ipc://%s/mq.sock", b->dir);
	snprintf(b->data, sizeof(b->data), "%s/data", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/mqd.log", b->dir);
	va_start(ap, b);
	broker_spawn(b, ap);
	va_end(ap);
}

void mqtest_broker_restart(mqtest_broker *b, ...)
{
	va_list ap;

	if (b->pid > 0)
		fail_msg("mqd is still running (pid %d)", (int)b->pid);
	va_start(ap, b);
	broker_spawn(b, ap);
	va_end(ap);
}

int mqtest_broker_stop(mqtest_broker *b)
{
	int status = 0;

	if (b->pid <= 0)
		return -1;
	kill(b->pid, SIGTERM);
	for (int i = 0; i < 1000 * mqtest_time_mult(); i++) {
		pid_t r = waitpid(b->pid, &status, WNOHANG);
		if (r == b->pid) {
			b->pid = 0;
			if (WIFEXITED(status)) {
				if (WEXITSTATUS(status) != 0)
					dump_log(b);
				return WEXITSTATUS(status);
			}
			dump_log(b);
			return -1;
		}
		usleep(10000);
	}
	kill(b->pid, SIGKILL);
	waitpid(b->pid, &status, 0);
	b->pid = 0;
	dump_log(b);
	return -1;
}

void mqtest_broker_kill(mqtest_broker *b)
{
	int status;

	if (b->pid <= 0)
		return;
	kill(b->pid, SIGKILL);
	waitpid(b->pid, &status, 0);
	b->pid = 0;
}

void mqtest_broker_cleanup(mqtest_broker *b)
{
	/* Under a wrapper (valgrind) mqd is stopped cleanly, so that the
	 * wrapper's report runs; a non-zero exit fails the test. */
	if (b->pid > 0 && getenv("MQD_WRAPPER") != NULL && *getenv("MQD_WRAPPER")) {
		int rc = mqtest_broker_stop(b);

		if (rc != 0) {
			if (b->own_dir && getenv("MQTEST_KEEP") == NULL)
				mqtest_rmtree(b->dir);
			b->own_dir = false;
			fail_msg("mqd under $MQD_WRAPPER exited with %d (see its log above)", rc);
		}
	}
	if (b->pid > 0)
		mqtest_broker_kill(b);
	if (b->own_dir && getenv("MQTEST_KEEP") == NULL)
		mqtest_rmtree(b->dir);
	b->own_dir = false;
}

int mqtest_run(char *out, size_t len, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	FILE *p;
	size_t n = 0;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	if (p == NULL)
		fail_msg("popen %s: %s", cmd, strerror(errno));
	if (out != NULL && len > 0) {
		size_t r;
		while (n + 1 < len && (r = fread(out + n, 1, len - 1 - n, p)) > 0)
			n += r;
		out[n] = '\0';
	}
	{
		char sink[1024];
		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	status = pclose(p);
	if (status == -1 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

void mqtest_faultshim_env(const char *hold, char *asan_old, size_t len)
{
	const char *shim = getenv("MQ_FAULTSHIM"), *old = getenv("ASAN_OPTIONS");
	char asan[600];

	if (shim == NULL || !*shim)
		fail_msg("MQ_FAULTSHIM is not set (meson's test() sets it)");
	snprintf(asan_old, len, "%s", old ? old : "");
	/* An ASan-built mqd must be told that a library preloaded before its
	 * runtime is fine. */
	snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0", old ? old : "",
	         old && *old ? ":" : "");
	setenv("MQ_FAULT_HOLD_FILE", hold, 1);
	setenv("LD_PRELOAD", shim, 1);
	setenv("ASAN_OPTIONS", asan, 1);
}

void mqtest_faultshim_clear(const char *asan_old)
{
	unsetenv("LD_PRELOAD");
	unsetenv("MQ_FAULT_HOLD_FILE");
	if (*asan_old)
		setenv("ASAN_OPTIONS", asan_old, 1);
	else
		unsetenv("ASAN_OPTIONS");
}

void mqtest_wait_file(const char *path)
{
	for (int i = 0; i < 2000 * mqtest_time_mult(); i++) {
		if (access(path, F_OK) == 0)
			return;
		usleep(10000);
	}
	fail_msg("%s did not appear within %d s", path, 20 * mqtest_time_mult());
}
