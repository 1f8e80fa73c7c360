/* SPDX-License-Identifier: MIT */
/*
 * sys_redis.c: mqbench's driver for Redis (Debian's redis-server) as a
 * reliable queue, through hiredis, as ../shared/RESULTS.md measured it:
 *   producer: W "LPUSH q body" pipelined (batch pushes: one LPUSH with
 *             `batch` bodies, W of those pipelined);
 *   consumer: W "BLMOVE q q:processing RIGHT LEFT 1" pipelined, then one
 *             "LREM q:processing 1 body" per leased element, pipelined.
 * Durable: `--appendonly yes --appendfsync always` (AOF fdatasync before
 * the replies of each event-loop turn: group commit); relaxed:
 * `--appendfsync everysec`. `--save ''`, AOF rewrite off.
 * Built only with hiredis (meson option peers); otherwise unavailable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#ifdef HAVE_HIREDIS
#include <hiredis/hiredis.h>

static const char *rd_unavailable(void)
{
	return program_exists("redis-server") ? NULL
	                                      : "redis-server not installed (scripts/bench.sh)";
}

static redisContext *rd_connect(int port, char *err, size_t errlen)
{
	struct timeval tv = {10, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

	if (c == NULL || c->err) {
		snprintf(err, errlen, "connect 127.0.0.1:%d: %s", port,
		         c ? c->errstr : "no memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	/* Blocking calls (BLMOVE waits 1 s) need more than the connect timeout. */
	tv.tv_sec = 30;
	redisSetTimeout(c, tv);
	return c;
}

static int rd_start(bserver *srv, bool relaxed, char *err, size_t errlen)
{
	char port[16];
	const char *argv[24];
	int argc = 0;
	uint64_t end;

	if (server_mkdir(srv, "redis", err, errlen) != 0)
		return -1;
	if ((srv->port = free_port()) < 0) {
		snprintf(err, errlen, "no free port");
		return -1;
	}
	snprintf(port, sizeof(port), "%d", srv->port);
	snprintf(srv->url, sizeof(srv->url), "127.0.0.1:%d", srv->port);
	argv[argc++] = "redis-server";
	argv[argc++] = "--port";
	argv[argc++] = port;
	argv[argc++] = "--bind";
	argv[argc++] = "127.0.0.1";
	argv[argc++] = "--dir";
	argv[argc++] = srv->data;
	argv[argc++] = "--appendonly";
	argv[argc++] = "yes";
	argv[argc++] = "--appendfsync";
	argv[argc++] = relaxed ? "everysec" : "always";
	argv[argc++] = "--save";
	argv[argc++] = "";
	argv[argc++] = "--auto-aof-rewrite-percentage";
	argv[argc++] = "0";
	argv[argc++] = "--daemonize";
	argv[argc++] = "no";
	argv[argc] = NULL;
	snprintf(srv->durability, sizeof(srv->durability), "%s",
	         relaxed ? "AOF appendfsync everysec" : "AOF appendfsync always");
	if (server_spawn(srv, argv, err, errlen) != 0 || server_wait_tcp(srv, 30, err, errlen) != 0)
		return -1;
	end = now_us() + 30000000;
	while (now_us() < end) { /* PONG, not LOADING */
		redisContext *c = rd_connect(srv->port, err, errlen);
		redisReply *rep;
		bool ok;

		if (c == NULL)
			return -1;
		rep = redisCommand(c, "PING");
		ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
		if (rep)
			freeReplyObject(rep);
		redisFree(c);
		if (ok)
			return 0;
		usleep(20000);
	}
	snprintf(err, errlen, "redis-server does not answer PING");
	return -1;
}

static int rd_prepare(brun *r, char *err, size_t errlen)
{
	redisContext *c = rd_connect(r->srv->port, err, errlen);
	redisReply *rep;

	if (c == NULL)
		return -1;
	rep = redisCommand(c, "DEL %s %s:processing", r->queue, r->queue);
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "DEL: %s", rep ? rep->str : c->errstr);
		if (rep)
			freeReplyObject(rep);
		redisFree(c);
		return -1;
	}
	freeReplyObject(rep);
	redisFree(c);
	return 0;
}

static int rd_open(bw *w, char *err, size_t errlen)
{
	return (w->conn = rd_connect(w->run->srv->port, err, errlen)) != NULL ? 0 : -1;
}

static void rd_close(bw *w)
{
	if (w->conn)
		redisFree(w->conn);
	w->conn = NULL;
}

static void *rd_producer(void *arg)
{
	bw *w = arg;
	brun *r = w->run;
	redisContext *c = w->conn;
	int W = r->inflight, per = r->batch;
	const char **av = calloc((size_t)per + 2, sizeof(*av));
	size_t *al = calloc((size_t)per + 2, sizeof(*al));
	uint8_t *bodies = malloc((size_t)per * r->size);

	if (av == NULL || al == NULL || bodies == NULL) {
		run_error(r, "LPUSH", "out of memory");
		goto out;
	}
	av[0] = "LPUSH";
	al[0] = 5;
	av[1] = r->queue;
	al[1] = strlen(r->queue);
	for (int i = 0; i < per; i++) {
		av[i + 2] = (const char *)bodies + (size_t)i * r->size;
		al[i + 2] = r->size;
	}
	while (run_take(w, W * per)) {
		uint64_t t0 = now_us();

		for (int k = 0; k < W; k++) {
			for (int i = 0; i < per; i++)
				memcpy(bodies + (size_t)i * r->size, payload_stamp(w), r->size);
			if (redisAppendCommandArgv(c, per + 2, av, al) != REDIS_OK) {
				run_error(r, "LPUSH", "%s", c->errstr);
				goto out;
			}
		}
		for (int k = 0; k < W; k++) {
			redisReply *rep;

			if (redisGetReply(c, (void **)&rep) != REDIS_OK) {
				run_error(r, "LPUSH", "%s", c->errstr);
				goto out;
			}
			if (rep->type != REDIS_REPLY_INTEGER) {
				run_error(r, "LPUSH", "%s",
				          rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
				run_give(r, per);
			} else {
				lat_add(r, &w->push_lat, now_us() - t0);
				run_pushed(r, (uint64_t)per);
			}
			freeReplyObject(rep);
		}
	}
out:
	free(av);
	free(al);
	free(bodies);
	return NULL;
}

static void *rd_consumer(void *arg)
{
	bw *w = arg;
	brun *r = w->run;
	redisContext *c = w->conn;
	int W = r->inflight;
	char proc[300];
	redisReply **got = calloc((size_t)W, sizeof(*got));

	snprintf(proc, sizeof(proc), "%s:processing", r->queue);
	if (got == NULL) {
		run_error(r, "BLMOVE", "out of memory");
		return NULL;
	}
	while (!run_stopped(r)) {
		int n = 0;
		uint64_t t0 = now_us();

		for (int k = 0; k < W; k++)
			redisAppendCommand(c, "BLMOVE %s %s RIGHT LEFT 1", r->queue, proc);
		for (int k = 0; k < W; k++) {
			redisReply *rep;

			if (redisGetReply(c, (void **)&rep) != REDIS_OK) {
				run_error(r, "BLMOVE", "%s", c->errstr);
				goto out;
			}
			if (rep->type == REDIS_REPLY_STRING) {
				got[n++] = rep;
				lat_add(r, &w->pull_lat, now_us() - t0);
				continue;
			}
			if (rep->type == REDIS_REPLY_ERROR)
				run_error(r, "BLMOVE", "%s", rep->str);
			freeReplyObject(rep);
		}
		if (n == 0)
			continue;
		run_pulled(r, (uint64_t)n);
		for (int k = 0; k < n; k++)
			redisAppendCommand(c, "LREM %s 1 %b", proc, got[k]->str, got[k]->len);
		t0 = now_us();
		for (int k = 0; k < n; k++) {
			redisReply *rep;

			freeReplyObject(got[k]);
			got[k] = NULL;
			if (redisGetReply(c, (void **)&rep) != REDIS_OK) {
				run_error(r, "LREM", "%s", c->errstr);
				goto out;
			}
			if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
				lat_add(r, &w->ack_lat, now_us() - t0);
				run_acked(r, 1);
			} else {
				run_error(r, "LREM", "%s",
				          rep->type == REDIS_REPLY_ERROR ? rep->str
				                                         : "not removed");
				run_give(r, 1);
			}
			freeReplyObject(rep);
		}
	}
out:
	for (int k = 0; k < W; k++)
		if (got[k])
			freeReplyObject(got[k]);
	free(got);
	return NULL;
}

static int rd_prefill(brun *r, uint64_t n, char *err, size_t errlen)
{
	enum { PER = 1000, DEPTH = 4 };
	redisContext *c = rd_connect(r->srv->port, err, errlen);
	const char **av = calloc(PER + 2, sizeof(*av));
	size_t *al = calloc(PER + 2, sizeof(*al));
	uint8_t *body = malloc(r->size);
	uint64_t sent = 0;
	int pending = 0, rv = -1;

	if (c == NULL || av == NULL || al == NULL || body == NULL) {
		if (err[0] == '\0')
			snprintf(err, errlen, "out of memory");
		goto out;
	}
	memset(body, 'x', r->size);
	av[0] = "LPUSH";
	al[0] = 5;
	av[1] = r->queue;
	al[1] = strlen(r->queue);
	for (int i = 0; i < PER; i++) {
		av[i + 2] = (const char *)body;
		al[i + 2] = r->size;
	}
	while (sent < n || pending > 0) {
		redisReply *rep;

		while (sent < n && pending < DEPTH) {
			int k = n - sent < PER ? (int)(n - sent) : PER;

			redisAppendCommandArgv(c, k + 2, av, al);
			sent += (uint64_t)k;
			pending++;
		}
		if (redisGetReply(c, (void **)&rep) != REDIS_OK) {
			snprintf(err, errlen, "prefill: %s", c->errstr);
			goto out;
		}
		pending--;
		if (rep->type != REDIS_REPLY_INTEGER) {
			snprintf(err, errlen, "prefill LPUSH: %s",
			         rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
			freeReplyObject(rep);
			goto out;
		}
		freeReplyObject(rep);
	}
	rv = 0;
out:
	if (c)
		redisFree(c);
	free(av);
	free(al);
	free(body);
	return rv;
}

const bsys sys_redis = {
    .name = "redis",
    .unavailable = rd_unavailable,
    .start = rd_start,
    .prepare = rd_prepare,
    .prefill = rd_prefill,
    .threads_per = NULL,
    .open = rd_open,
    .close = rd_close,
    .producer = rd_producer,
    .consumer = rd_consumer,
};

#else /* !HAVE_HIREDIS */

static const char *rd_unavailable(void)
{
	return "built without hiredis (meson -Dpeers=enabled, libhiredis-dev)";
}

const bsys sys_redis = {.name = "redis", .unavailable = rd_unavailable};

#endif
