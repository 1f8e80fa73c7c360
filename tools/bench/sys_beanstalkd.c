/* SPDX-License-Identifier: MIT */
/*
 * sys_beanstalkd.c: mqbench's driver for beanstalkd (Debian package), over
 * its plain text protocol on a TCP socket (TCP_NODELAY), as
 * ../shared/RESULTS.md measured it:
 *   producer: W puts (W x batch for batch pushes) written with one write(),
 *             then their INSERTED replies read;
 *   consumer: W "reserve-with-timeout 1" written at once, the replies read,
 *             then one "delete <id>" per reserved job, written at once.
 * Durable: `-b DIR -f 0` (binlog write + fsync per command); relaxed:
 * `-b DIR` alone, beanstalkd's default, which is `-f 50`: fsync at most once
 * every 50 ms, done when a write comes (not on a timer).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench.h"

typedef struct bconn {
	int fd;
	char rbuf[65536];
	size_t rpos, rlen;
	char *wbuf;
	size_t wcap;
} bconn;

static bool bs_relaxed;

static int write_all(int fd, const char *p, size_t n);

static const char *bs_unavailable(void)
{
	return program_exists("beanstalkd") ? NULL : "beanstalkd not installed (scripts/bench.sh)";
}

/* bs_wait_ready waits for the answer to "stats": beanstalkd listens before
 * it replays its binlog, so an accepted connection does not mean it serves
 * (a prefilled binlog of millions of jobs takes seconds to replay). */
static int bs_wait_ready(bserver *srv, char *err, size_t errlen)
{
	struct timeval tv = {600, 0};
	char buf[64];
	ssize_t n;
	int fd = tcp_connect(srv->port);

	if (fd < 0) {
		snprintf(err, errlen, "connect %s: %s", srv->url, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write_all(fd, "stats\r\n", 7) != 0 || (n = read(fd, buf, sizeof(buf) - 1)) < 2 ||
	    strncmp(buf, "OK ", 3) != 0) {
		snprintf(err, errlen, "beanstalkd does not answer stats (log: %s/server.log)",
		         srv->dir);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int bs_spawn(bserver *srv, const char *fsync_flag, size_t size, char *err, size_t errlen)
{
	char port[16], zmax[32];
	const char *argv[16];
	int argc = 0;

	snprintf(port, sizeof(port), "%d", srv->port);
	snprintf(zmax, sizeof(zmax), "%zu", size); /* -z: the largest job */
	argv[argc++] = "beanstalkd";
	argv[argc++] = "-l";
	argv[argc++] = "127.0.0.1";
	argv[argc++] = "-p";
	argv[argc++] = port;
	argv[argc++] = "-b";
	argv[argc++] = srv->data;
	argv[argc++] = "-z";
	argv[argc++] = zmax;
	if (fsync_flag != NULL)
		argv[argc++] = fsync_flag;
	argv[argc] = NULL;
	if (server_spawn(srv, argv, err, errlen) != 0 || server_wait_tcp(srv, 30, err, errlen) != 0)
		return -1;
	return bs_wait_ready(srv, err, errlen);
}

static int bs_start(bserver *srv, bool relaxed, char *err, size_t errlen)
{
	if (server_mkdir(srv, "beanstalkd", err, errlen) != 0)
		return -1;
	if ((srv->port = free_port()) < 0) {
		snprintf(err, errlen, "no free port");
		return -1;
	}
	bs_relaxed = relaxed;
	snprintf(srv->url, sizeof(srv->url), "127.0.0.1:%d", srv->port);
	snprintf(srv->durability, sizeof(srv->durability), "%s",
	         relaxed ? "-b -f 50 (default): fsync at most every 50 ms"
	                 : "-b -f 0: fsync per command");
	return bs_spawn(srv, relaxed ? NULL : "-f0", 1100000, err, errlen);
}

static int bs_prepare(brun *r, char *err, size_t errlen)
{
	(void)r;
	(void)err;
	(void)errlen;
	return 0; /* a fresh server: the default tube is empty */
}

static int bs_open(bw *w, char *err, size_t errlen)
{
	bconn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((c->fd = tcp_connect(w->run->srv->port)) < 0) {
		snprintf(err, errlen, "connect %s: %s", w->run->srv->url, strerror(errno));
		free(c);
		return -1;
	}
	w->conn = c;
	return 0;
}

static void bs_close(bw *w)
{
	bconn *c = w->conn;

	if (c == NULL)
		return;
	close(c->fd);
	free(c->wbuf);
	free(c);
	w->conn = NULL;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int fill(bconn *c)
{
	ssize_t k;

	if (c->rpos > 0 && c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
	if (c->rlen == sizeof(c->rbuf)) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	do
		k = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
	while (k < 0 && errno == EINTR);
	if (k <= 0)
		return -1;
	c->rlen += (size_t)k;
	return 0;
}

/* read_line returns the next reply line without its CRLF (valid until the
 * next read), or NULL when the connection failed. */
static char *read_line(bconn *c)
{
	for (;;) {
		char *s = c->rbuf + c->rpos;
		char *e = memmem(s, c->rlen - c->rpos, "\r\n", 2);

		if (e != NULL) {
			*e = '\0';
			c->rpos = (size_t)(e + 2 - c->rbuf);
			return s;
		}
		if (fill(c) != 0)
			return NULL;
	}
}

/* skip_bytes consumes n bytes of a job body (and its CRLF). */
static int skip_bytes(bconn *c, size_t n)
{
	while (n > 0) {
		size_t have = c->rlen - c->rpos;

		if (have == 0) {
			if (fill(c) != 0)
				return -1;
			continue;
		}
		if (have > n)
			have = n;
		c->rpos += have;
		n -= have;
	}
	return 0;
}

static int wreserve(bconn *c, size_t need)
{
	if (need <= c->wcap)
		return 0;
	char *p = realloc(c->wbuf, need);

	if (p == NULL)
		return -1;
	c->wbuf = p;
	c->wcap = need;
	return 0;
}

static void *bs_producer(void *arg)
{
	bw *w = arg;
	brun *r = w->run;
	bconn *c = w->conn;
	int per = r->batch, n = r->inflight * r->batch;
	size_t one = 64 + r->size;

	if (wreserve(c, (size_t)n * one) != 0) {
		run_error(r, "put", "out of memory");
		return NULL;
	}
	while (run_take(w, n)) {
		size_t len = 0;
		uint64_t t0;

		for (int i = 0; i < n; i++) {
			const uint8_t *p = payload_stamp(w);

			len += (size_t)sprintf(c->wbuf + len, "put 0 0 120 %zu\r\n", r->size);
			memcpy(c->wbuf + len, p, r->size);
			len += r->size;
			memcpy(c->wbuf + len, "\r\n", 2);
			len += 2;
		}
		t0 = now_us();
		if (write_all(c->fd, c->wbuf, len) != 0) {
			run_error(r, "put", "write: %s", strerror(errno));
			run_give(r, n);
			break;
		}
		for (int i = 0; i < n; i++) {
			char *line = read_line(c);

			if (line == NULL) {
				run_error(r, "put", "connection lost");
				run_give(r, n - i);
				return NULL;
			}
			if (strncmp(line, "INSERTED ", 9) != 0) {
				run_error(r, "put", "%s", line);
				run_give(r, 1);
			} else {
				run_pushed(r, 1); /* each reply counts when it comes */
			}
			if (i % per == per - 1)
				lat_add(r, &w->push_lat, now_us() - t0);
		}
	}
	return NULL;
}

static void *bs_consumer(void *arg)
{
	bw *w = arg;
	brun *r = w->run;
	bconn *c = w->conn;
	int W = r->inflight;
	uint64_t *ids = calloc((size_t)W, sizeof(*ids));
	char req[64];
	size_t rl = (size_t)sprintf(req, "reserve-with-timeout 1\r\n");

	if (ids == NULL || wreserve(c, (size_t)W * 48) != 0) {
		run_error(r, "reserve", "out of memory");
		free(ids);
		return NULL;
	}
	while (!run_stopped(r)) {
		size_t len = 0;
		int got = 0;
		uint64_t t0;

		for (int i = 0; i < W; i++) {
			memcpy(c->wbuf + len, req, rl);
			len += rl;
		}
		t0 = now_us();
		if (write_all(c->fd, c->wbuf, len) != 0) {
			run_error(r, "reserve", "write: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < W; i++) {
			char *line = read_line(c);
			unsigned long long id;
			size_t bytes;

			if (line == NULL) {
				run_error(r, "reserve", "connection lost");
				free(ids);
				return NULL;
			}
			if (sscanf(line, "RESERVED %llu %zu", &id, &bytes) == 2) {
				if (skip_bytes(c, bytes + 2) != 0) {
					run_error(r, "reserve", "connection lost");
					free(ids);
					return NULL;
				}
				ids[got++] = id;
				lat_add(r, &w->pull_lat, now_us() - t0);
			} else if (strcmp(line, "TIMED_OUT") != 0 &&
			           strcmp(line, "DEADLINE_SOON") != 0) {
				run_error(r, "reserve", "%s", line);
			}
		}
		if (got == 0)
			continue;
		run_pulled(r, (uint64_t)got);
		len = 0;
		for (int i = 0; i < got; i++)
			len += (size_t)sprintf(c->wbuf + len, "delete %llu\r\n",
			                       (unsigned long long)ids[i]);
		t0 = now_us();
		if (write_all(c->fd, c->wbuf, len) != 0) {
			run_error(r, "delete", "write: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < got; i++) {
			char *line = read_line(c);

			if (line == NULL) {
				run_error(r, "delete", "connection lost");
				free(ids);
				return NULL;
			}
			if (strcmp(line, "DELETED") != 0) {
				run_error(r, "delete", "%s", line);
				run_give(r, 1);
				continue;
			}
			lat_add(r, &w->ack_lat, now_us() - t0);
			run_acked(r, 1);
		}
	}
	free(ids);
	return NULL;
}

/* bs_prefill: with -f 0 every put is its own fsync (~5k/s here), so the
 * queue is filled by a beanstalkd on the same binlog with -F (never
 * fsync), which is then stopped; the measured server is started again on
 * that binlog with the run's flags and replays it. Not timed. */
static int bs_prefill(brun *r, uint64_t n, char *err, size_t errlen)
{
	bserver *srv = r->srv;
	bw w;
	bconn *c;
	uint64_t done = 0;
	const int per = 1000;

	server_kill(srv);
	if (bs_spawn(srv, "-F", 1100000, err, errlen) != 0)
		return -1;
	memset(&w, 0, sizeof(w));
	w.run = r;
	if ((w.buf = malloc(r->size + 16)) == NULL || bs_open(&w, err, errlen) != 0) {
		free(w.buf);
		return -1;
	}
	memset(w.buf, 'x', r->size);
	c = w.conn;
	if (wreserve(c, (size_t)per * (64 + r->size)) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while (done < n) {
		int k = n - done < (uint64_t)per ? (int)(n - done) : per;
		size_t len = 0;

		for (int i = 0; i < k; i++) {
			len += (size_t)sprintf(c->wbuf + len, "put 0 0 120 %zu\r\n", r->size);
			memcpy(c->wbuf + len, payload_stamp(&w), r->size);
			len += r->size;
			memcpy(c->wbuf + len, "\r\n", 2);
			len += 2;
		}
		if (write_all(c->fd, c->wbuf, len) != 0) {
			snprintf(err, errlen, "prefill write: %s", strerror(errno));
			goto fail;
		}
		for (int i = 0; i < k; i++) {
			char *line = read_line(c);

			if (line == NULL || strncmp(line, "INSERTED ", 9) != 0) {
				snprintf(err, errlen, "prefill put: %s",
				         line ? line : "connection lost");
				goto fail;
			}
		}
		done += (uint64_t)k;
	}
	bs_close(&w);
	free(w.buf);
	server_kill(srv);
	return bs_spawn(srv, bs_relaxed ? NULL : "-f0", 1100000, err, errlen);
fail:
	bs_close(&w);
	free(w.buf);
	return -1;
}

const bsys sys_beanstalkd = {
    .name = "beanstalkd",
    .unavailable = bs_unavailable,
    .start = bs_start,
    .prepare = bs_prepare,
    .prefill = bs_prefill,
    .threads_per = NULL,
    .open = bs_open,
    .close = bs_close,
    .producer = bs_producer,
    .consumer = bs_consumer,
};
