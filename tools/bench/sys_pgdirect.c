/* SPDX-License-Identifier: MIT */
/*
 * sys_pgdirect.c: the direct-SQL baseline of issue 10 (scenario pgdirect).
 * A libpq client that runs a job queue straight on PostgreSQL, the way pgmq
 * and River do it, on the same database as mq's PostgreSQL engine (pg.c's
 * cluster or --pg), in a fresh schema per run:
 *
 *   jobs(id bigserial primary key, payload bytea, vt timestamptz,
 *        read_ct int, enqueued_at timestamptz), index on vt (pgmq's shape)
 *   push:  INSERT INTO jobs (payload) VALUES ($1) RETURNING id
 *   pull:  UPDATE jobs SET vt = now() + 30 s, read_ct = read_ct + 1
 *          WHERE id IN (SELECT id FROM jobs WHERE vt <= now() ORDER BY id
 *                       LIMIT $1 FOR UPDATE SKIP LOCKED)
 *          RETURNING id, payload
 *   ack:   DELETE FROM jobs WHERE id = ANY($1)
 *
 * Each statement is its own transaction (autocommit), synchronous_commit
 * on, as a client library would do it. The shape is mq's scenario 3: each
 * producer keeps W inserts in flight (libpq pipeline mode, a Sync after
 * each insert, so W independent transactions on its connection, as mq's
 * async producer keeps W pushes in flight); each consumer pulls up to W
 * (mq's consumers pull W per request) and acks them with one DELETE (mq's
 * ack batch). An empty pull sleeps 1 ms (pgmq's read is a poll too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#include <libpq-fe.h>

static struct {
	const char *conninfo;
	char schema[64];
} pd;

static const char *pd_unavailable(void)
{
	return pg_unavailable();
}

static int pd_start(bserver *srv, bool relaxed, char *err, size_t errlen)
{
	char sql[1024], dur[128];

	memset(srv, 0, sizeof(*srv));
	if (relaxed) {
		snprintf(err, errlen, "pgdirect has no relaxed mode");
		return -1;
	}
	if (pg_cluster_ensure(&pd.conninfo, &srv->pg_pid, err, errlen) != 0)
		return -1;
	pg_schema_new(pd.schema, sizeof(pd.schema), "direct");
	snprintf(srv->pg_schema, sizeof(srv->pg_schema), "%s", pd.schema);
	snprintf(sql, sizeof(sql),
	         "CREATE SCHEMA \"%s\";"
	         "CREATE TABLE \"%s\".jobs (id bigserial PRIMARY KEY, payload bytea NOT NULL,"
	         " vt timestamptz NOT NULL DEFAULT now(), read_ct int NOT NULL DEFAULT 0,"
	         " enqueued_at timestamptz NOT NULL DEFAULT now());"
	         "CREATE INDEX ON \"%s\".jobs (vt);",
	         pd.schema, pd.schema, pd.schema);
	if (pg_exec(sql, err, errlen) != 0 || pg_durability(dur, sizeof(dur), err, errlen) != 0)
		return -1;
	snprintf(srv->durability, sizeof(srv->durability), "reply after COMMIT");
	snprintf(srv->note, sizeof(srv->note), "direct libpq client (%s), schema %s", dur,
	         pd.schema);
	return 0;
}

static void pd_stop(bserver *srv)
{
	char sql[160], err[256];

	if (srv->pg_schema[0] == '\0' || getenv("MQBENCH_KEEP") != NULL)
		return;
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", srv->pg_schema);
	if (pg_exec(sql, err, sizeof(err)) != 0)
		fprintf(stderr, "mqbench: drop schema %s: %s\n", srv->pg_schema, err);
	srv->pg_schema[0] = '\0';
}

static int pd_prepare(brun *r, char *err, size_t errlen)
{
	char sql[160];

	(void)r;
	snprintf(sql, sizeof(sql), "TRUNCATE \"%s\".jobs", pd.schema);
	return pg_exec(sql, err, errlen);
}

static int pq_ok(PGresult *res, ExecStatusType want, const char *what, char *err, size_t errlen)
{
	if (PQresultStatus(res) == want)
		return 0;
	snprintf(err, errlen, "%s: %s", what, PQresultErrorMessage(res));
	err[strcspn(err, "\n")] = '\0';
	return -1;
}

static int pd_open(bw *w, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(pd.conninfo);
	char sql[512];
	PGresult *res;
	int rv;

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "connect: %s", PQerrorMessage(c));
		err[strcspn(err, "\n")] = '\0';
		PQfinish(c);
		return -1;
	}
	res = PQexec(c, "SET synchronous_commit = on");
	rv = pq_ok(res, PGRES_COMMAND_OK, "set synchronous_commit", err, errlen);
	PQclear(res);
	if (rv == 0 && w->role == ROLE_PRODUCER) {
		snprintf(sql, sizeof(sql),
		         "INSERT INTO \"%s\".jobs (payload) VALUES ($1) RETURNING id", pd.schema);
		res = PQprepare(c, "push", sql, 1, NULL);
		rv = pq_ok(res, PGRES_COMMAND_OK, "prepare push", err, errlen);
		PQclear(res);
		if (rv == 0 && PQenterPipelineMode(c) != 1) {
			snprintf(err, errlen, "pipeline mode: %s", PQerrorMessage(c));
			rv = -1;
		}
	} else if (rv == 0) {
		snprintf(sql, sizeof(sql),
		         "UPDATE \"%s\".jobs SET vt = now() + interval '30 seconds',"
		         " read_ct = read_ct + 1 WHERE id IN (SELECT id FROM \"%s\".jobs"
		         " WHERE vt <= now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)"
		         " RETURNING id, payload",
		         pd.schema, pd.schema);
		res = PQprepare(c, "pull", sql, 1, NULL);
		rv = pq_ok(res, PGRES_COMMAND_OK, "prepare pull", err, errlen);
		PQclear(res);
		if (rv == 0) {
			snprintf(sql, sizeof(sql),
			         "DELETE FROM \"%s\".jobs WHERE id = ANY($1::bigint[])", pd.schema);
			res = PQprepare(c, "ack", sql, 1, NULL);
			rv = pq_ok(res, PGRES_COMMAND_OK, "prepare ack", err, errlen);
			PQclear(res);
		}
	}
	if (rv != 0) {
		PQfinish(c);
		return -1;
	}
	w->conn = c;
	return 0;
}

static void pd_close(bw *w)
{
	PQfinish(w->conn);
	w->conn = NULL;
}

/* read_push reads one pipelined insert's results: its rows, the end of the
 * query (NULL) and the Sync; false when the connection is unusable. */
static bool read_push(bw *w, uint64_t t0)
{
	PGconn *c = w->conn;
	PGresult *res = PQgetResult(c);
	char err[256];
	bool ok = pq_ok(res, PGRES_TUPLES_OK, "insert", err, sizeof(err)) == 0;

	if (res == NULL) {
		run_error(w->run, "push", "no result: %s", PQerrorMessage(c));
		return false;
	}
	PQclear(res);
	if ((res = PQgetResult(c)) != NULL) { /* end of this query's results */
		run_error(w->run, "push", "unexpected result %s", PQresStatus(PQresultStatus(res)));
		PQclear(res);
		return false;
	}
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
		run_error(w->run, "push", "no sync: %s", PQerrorMessage(c));
		PQclear(res);
		return false;
	}
	PQclear(res);
	if (!ok) {
		run_error(w->run, "push", "%s", err);
		run_give(w->run, 1);
	} else {
		lat_add(w->run, &w->push_lat, now_us() - t0);
		run_pushed(w->run, 1);
	}
	return true;
}

static void *pd_producer(void *arg)
{
	bw *w = arg;
	brun *r = w->run;
	PGconn *c = w->conn;
	int W = r->inflight, head = 0, inflight = 0;
	uint64_t *t0 = calloc((size_t)W, sizeof(*t0));
	const int fmt[1] = {1}; /* the payload as binary bytea */
	int len[1] = {(int)r->size};
	bool more = true;

	if (t0 == NULL) {
		run_error(r, "push", "out of memory");
		return NULL;
	}
	while (more || inflight > 0) {
		while (more && inflight < W) {
			const char *val[1];

			if (!run_take(w, 1)) {
				more = false;
				break;
			}
			val[0] = (const char *)payload_stamp(w);
			t0[(head + inflight) % W] = now_us();
			if (PQsendQueryPrepared(c, "push", 1, val, len, fmt, 1) != 1 ||
			    PQpipelineSync(c) != 1) {
				run_error(r, "push", "send: %s", PQerrorMessage(c));
				run_give(r, 1);
				more = false;
				break;
			}
			inflight++;
		}
		if (inflight == 0)
			break;
		if (!read_push(w, t0[head])) {
			run_give(r, inflight - 1);
			break;
		}
		head = (head + 1) % W;
		inflight--;
	}
	free(t0);
	return NULL;
}

static uint64_t be64(const char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | (uint8_t)p[i];
	return v;
}

static void *pd_consumer(void *arg)
{
	bw *w = arg;
	brun *r = w->run;
	PGconn *c = w->conn;
	char limit[16], *ids = malloc((size_t)r->inflight * 24 + 4);

	if (ids == NULL) {
		run_error(r, "pull", "out of memory");
		return NULL;
	}
	snprintf(limit, sizeof(limit), "%d", r->inflight);
	while (!run_stopped(r)) {
		const char *val[1] = {limit};
		uint64_t t0 = now_us();
		PGresult *res = PQexecPrepared(c, "pull", 1, val, NULL, NULL, 1);
		char err[256] = "";
		int n;
		size_t off = 0;

		if (pq_ok(res, PGRES_TUPLES_OK, "pull", err, sizeof(err)) != 0) {
			run_error(r, "pull", "%s", err);
			PQclear(res);
			usleep(1000);
			continue;
		}
		if ((n = PQntuples(res)) == 0) {
			PQclear(res);
			usleep(1000);
			continue;
		}
		lat_add(r, &w->pull_lat, now_us() - t0);
		run_pulled(r, (uint64_t)n);
		ids[off++] = '{';
		for (int i = 0; i < n; i++) {
			if (PQgetlength(res, i, 0) != 8 || PQgetlength(res, i, 1) != (int)r->size)
				run_error(r, "pull", "row %d: unexpected lengths", i);
			off += (size_t)sprintf(ids + off, "%s%llu", i ? "," : "",
			                       (unsigned long long)be64(PQgetvalue(res, i, 0)));
		}
		ids[off++] = '}';
		ids[off] = '\0';
		PQclear(res);
		val[0] = ids;
		t0 = now_us();
		res = PQexecPrepared(c, "ack", 1, val, NULL, NULL, 0);
		if (pq_ok(res, PGRES_COMMAND_OK, "ack", err, sizeof(err)) != 0 ||
		    atoi(PQcmdTuples(res)) != n) {
			run_error(r, "ack", "%s (%s of %d deleted)", err[0] ? err : "ok",
			          PQcmdTuples(res), n);
			run_give(r, n);
		} else {
			lat_add(r, &w->ack_lat, now_us() - t0);
			run_acked(r, (uint64_t)n);
		}
		PQclear(res);
	}
	free(ids);
	return NULL;
}

const bsys sys_pgdirect = {
    .name = "pgdirect",
    .unavailable = pd_unavailable,
    .start = pd_start,
    .stop = pd_stop,
    .prepare = pd_prepare,
    .open = pd_open,
    .close = pd_close,
    .producer = pd_producer,
    .consumer = pd_consumer,
};
