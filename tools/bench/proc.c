/* SPDX-License-Identifier: MIT */
/*
 * proc.c: the server processes mqbench starts (mqd or a peer): a fresh temp
 * dir each, a free loopback port, readiness, CPU time from /proc/PID/stat,
 * disk usage of the data dir, and cleanup. Every started server is listed
 * so that an error exit, SIGINT or SIGTERM still kills it and removes its
 * dir; the child also gets PDEATHSIG, so it dies if mqbench is killed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_LIVE 24

/* live lists the servers to clean up; written by the main thread only, read
 * by the signal handler (plain stores of pointers). */
static bserver *volatile live[MAX_LIVE];

void (*volatile cleanup_signal_hook)(void);

static void rm_rf(const char *dir)
{
	pid_t pid;
	int status;

	if (dir[0] == '\0')
		return;
	if ((pid = fork()) == 0) {
		execl("/bin/rm", "rm", "-rf", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
}

static void cleanup_all(void)
{
	for (int i = 0; i < MAX_LIVE; i++) {
		bserver *s = live[i];

		if (s != NULL)
			server_stop(s);
	}
}

/* on_signal kills and removes what is live, with async-signal-safe calls
 * only (kill, waitpid, fork, execl, _exit). */
static void on_signal(int sig)
{
	for (int i = 0; i < MAX_LIVE; i++) {
		bserver *s = live[i];
		int status;

		if (s == NULL)
			continue;
		if (s->pid > 0) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &status, 0);
		}
		rm_rf(s->dir);
	}
	if (cleanup_signal_hook != NULL)
		cleanup_signal_hook();
	_exit(128 + sig);
}

void cleanup_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	atexit(cleanup_all);
}

static void live_add(bserver *srv)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (live[i] == srv)
			return;
	for (int i = 0; i < MAX_LIVE; i++)
		if (live[i] == NULL) {
			live[i] = srv;
			return;
		}
}

static void live_del(bserver *srv)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (live[i] == srv)
			live[i] = NULL;
}

int server_mkdir(bserver *srv, const char *tag, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");

	srv->pid = 0;
	snprintf(srv->dir, sizeof(srv->dir), "%s/mqbench-%s.XXXXXX", tmp && *tmp ? tmp : "/tmp",
	         tag);
	if (mkdtemp(srv->dir) == NULL) {
		snprintf(err, errlen, "mkdtemp %s: %s", srv->dir, strerror(errno));
		srv->dir[0] = '\0';
		return -1;
	}
	live_add(srv);
	snprintf(srv->data, sizeof(srv->data), "%s/data", srv->dir);
	if (mkdir(srv->data, 0700) != 0) {
		snprintf(err, errlen, "mkdir %s: %s", srv->data, strerror(errno));
		return -1;
	}
	return 0;
}

int server_spawn(bserver *srv, const char *const *argv, char *err, size_t errlen)
{
	char log[400];
	pid_t parent = getpid();
	int fd;

	snprintf(log, sizeof(log), "%s/server.log", srv->dir);
	if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) < 0) {
		snprintf(err, errlen, "%s: %s", log, strerror(errno));
		return -1;
	}
	srv->pid = fork();
	if (srv->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	if (srv->pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		srv->pid = 0;
		return -1;
	}
	live_add(srv);
	return 0;
}

int tcp_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* exit_msg says that srv's process exited at start, with the last line of
 * its log (the dir is removed afterwards). */
static void exit_msg(const bserver *srv, char *err, size_t errlen)
{
	char path[400], line[256], prev[256] = "", last[256] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/server.log", srv->dir);
	if ((f = fopen(path, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			if (line[0] == '\n')
				continue;
			memcpy(prev, last, sizeof(prev));
			memcpy(last, line, sizeof(last));
		}
		fclose(f);
	}
	prev[strcspn(prev, "\n")] = '\0';
	last[strcspn(last, "\n")] = '\0';
	snprintf(err, errlen, "server exited at start: %s%s%s", prev, prev[0] ? " / " : "",
	         last[0] ? last : "(no log)");
}

int server_wait_tcp(bserver *srv, double seconds, char *err, size_t errlen)
{
	uint64_t end = now_us() + (uint64_t)(seconds * 1e6);
	int status;

	while (now_us() < end) {
		int fd = tcp_connect(srv->port);

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (srv->pid > 0 && waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
			srv->pid = 0;
			exit_msg(srv, err, errlen);
			return -1;
		}
		usleep(20000);
	}
	snprintf(err, errlen, "no listener on 127.0.0.1:%d after %.0f s (log: %s/server.log)",
	         srv->port, seconds, srv->dir);
	return -1;
}

int server_wait_path(bserver *srv, const char *path, double seconds, char *err, size_t errlen)
{
	uint64_t end = now_us() + (uint64_t)(seconds * 1e6);
	int status;

	while (now_us() < end) {
		if (access(path, F_OK) == 0)
			return 0;
		if (srv->pid > 0 && waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
			srv->pid = 0;
			exit_msg(srv, err, errlen);
			return -1;
		}
		usleep(10000);
	}
	snprintf(err, errlen, "no %s after %.0f s (log: %s/server.log)", path, seconds, srv->dir);
	return -1;
}

void server_kill(bserver *srv)
{
	int status;

	if (srv->pid <= 0)
		return;
	kill(srv->pid, SIGTERM);
	for (int i = 0; i < 500; i++) { /* 5 s, then SIGKILL */
		if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
			srv->pid = 0;
			return;
		}
		usleep(10000);
	}
	kill(srv->pid, SIGKILL);
	waitpid(srv->pid, &status, 0);
	srv->pid = 0;
}

void server_stop(bserver *srv)
{
	server_kill(srv);
	if (getenv("MQBENCH_KEEP") == NULL)
		rm_rf(srv->dir);
	else if (srv->dir[0])
		fprintf(stderr, "mqbench: kept %s\n", srv->dir);
	srv->dir[0] = '\0';
	live_del(srv);
}

int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int port = -1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	FILE *f;
	unsigned long ut = 0, st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL) {
		char *p = strrchr(buf, ')');

		if (p != NULL)
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			       &st);
	}
	fclose(f);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double srv_cpu_s(const bserver *srv)
{
	double t = srv->pid > 0 ? proc_cpu_s(srv->pid) : 0;

	for (int i = 0; i < srv->n_more; i++)
		if (srv->more[i].pid > 0)
			t += proc_cpu_s(srv->more[i].pid);
	return t;
}

/* stat_cpu reads /proc/PID/stat: ppid, utime + stime, cutime + cstime, in
 * clock ticks; false when the process is gone. */
static bool stat_cpu(pid_t pid, pid_t *ppid, unsigned long long *self, unsigned long long *kids)
{
	char path[64], buf[1024];
	FILE *f;
	bool ok = false;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fgets(buf, sizeof(buf), f) != NULL) {
		char *p = strrchr(buf, ')');
		unsigned long long ut = 0, st = 0;
		long long cut = 0, cst = 0;
		int pp = 0;

		if (p != NULL &&
		    sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
		           &pp, &ut, &st, &cut, &cst) == 5) {
			*ppid = (pid_t)pp;
			*self = ut + st;
			*kids = (unsigned long long)(cut + cst);
			ok = true;
		}
	}
	fclose(f);
	return ok;
}

double tree_cpu_s(pid_t pid)
{
	unsigned long long self, kids, total;
	pid_t ppid;
	DIR *d;
	struct dirent *e;

	if (pid <= 0 || !stat_cpu(pid, &ppid, &self, &kids))
		return 0;
	total = self + kids;
	if ((d = opendir("/proc")) != NULL) {
		while ((e = readdir(d)) != NULL) {
			pid_t c = (pid_t)atoi(e->d_name);
			unsigned long long cs, ck;

			if (c > 0 && stat_cpu(c, &ppid, &cs, &ck) && ppid == pid)
				total += cs;
		}
		closedir(d);
	}
	return (double)total / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t dir_walk(const char *path, bool blocks)
{
	struct stat st;
	uint64_t total = 0;
	DIR *d;
	struct dirent *e;

	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return blocks ? (uint64_t)st.st_blocks * 512u : (uint64_t)st.st_size;
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char sub[1024];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		total += dir_walk(sub, blocks);
	}
	closedir(d);
	return total;
}

uint64_t dir_bytes(const char *path)
{
	return dir_walk(path, true);
}

uint64_t dir_apparent_bytes(const char *path)
{
	return dir_walk(path, false);
}

bool program_exists(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096], full[4200];

	if (strchr(name, '/') != NULL)
		return access(name, X_OK) == 0;
	snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *p = strtok_r(buf, ":", &save); p != NULL;
	     p = strtok_r(NULL, ":", &save)) {
		snprintf(full, sizeof(full), "%s/%s", p, name);
		if (access(full, X_OK) == 0)
			return true;
	}
	/* Debian puts redis-server and beanstalkd in /usr/bin, but sbin dirs
	 * are often missing from PATH for non-root users. */
	for (const char *const *d = (const char *const[]){"/usr/sbin", "/sbin", NULL}; *d; d++) {
		snprintf(full, sizeof(full), "%s/%s", *d, name);
		if (access(full, X_OK) == 0)
			return true;
	}
	return false;
}
