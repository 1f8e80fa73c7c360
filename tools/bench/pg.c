/* SPDX-License-Identifier: MIT */
/*
 * pg.c: the PostgreSQL side of mqbench (--storage postgres, scenarios
 * pgdirect and soak). With --pg CONNINFO mqbench uses that server; without
 * it, it starts its own throw-away cluster once per process with the
 * tests' tests/pg.sh (PostgreSQL 15, 127.0.0.1 on a free port, trust auth,
 * fsync and synchronous_commit on) in a temp dir, and stops and removes it
 * at exit or on SIGINT/SIGTERM. Each run gets a fresh schema (mqbench_PID_N)
 * that is dropped after the run, unless --pg-schema names one.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

const char *pg_opt_conninfo;

#include <libpq-fe.h>

#ifndef MQBENCH_PG_SH
#define MQBENCH_PG_SH "tests/pg.sh"
#endif

static struct {
	bool started;
	char dir[256]; /* the cluster's dir, "" = none of ours */
	char conninfo[512];
	volatile pid_t postmaster;
} cl;

static const char *pg_sh(void)
{
	const char *e = getenv("MQBENCH_PG_SH");

	if (e != NULL && *e)
		return e;
	e = getenv("MQ_TEST_PGSH"); /* set by tests/pg.sh run */
	return e != NULL && *e ? e : MQBENCH_PG_SH;
}

const char *pg_unavailable(void)
{
	if (pg_opt_conninfo != NULL)
		return NULL;
	if (access(pg_sh(), R_OK) != 0)
		return "no --pg given and tests/pg.sh not found (set MQBENCH_PG_SH)";
	return NULL;
}

/* run_pg_sh runs `bash pg.sh VERB DIR`, stdout to /dev/null, stderr to
 * ours; its exit status or -1. */
static int run_pg_sh(const char *verb, const char *dir)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			close(fd);
		}
		signal(SIGPIPE, SIG_DFL);
		execlp("bash", "bash", pg_sh(), verb, dir, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static pid_t read_postmaster(const char *dir)
{
	char path[320];
	FILE *f;
	int pid = 0;

	snprintf(path, sizeof(path), "%s/data/postmaster.pid", dir);
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return (pid_t)pid;
}

static void rm_dir(const char *dir)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		execl("/bin/rm", "rm", "-rf", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
}

static void cluster_stop(void)
{
	pg_schema_rels_close();
	if (!cl.started || cl.dir[0] == '\0')
		return;
	if (getenv("MQBENCH_KEEP") != NULL) {
		fprintf(stderr, "mqbench: kept PostgreSQL cluster %s (running: %s)\n", cl.dir,
		        cl.conninfo);
		return;
	}
	if (run_pg_sh("stop", cl.dir) != 0)
		fprintf(stderr, "mqbench: tests/pg.sh stop %s failed\n", cl.dir);
	rm_dir(cl.dir);
	cl.dir[0] = '\0';
	cl.postmaster = 0;
}

/* cluster_kill_signal: SIGINT (fast shutdown) to the postmaster, a bounded
 * wait for it to go, then remove the dir; async-signal-safe. */
static void cluster_kill_signal(void)
{
	pid_t pid = cl.postmaster;

	if (pid <= 0)
		return;
	kill(pid, SIGINT);
	for (int i = 0; i < 500 && kill(pid, 0) == 0; i++) { /* 5 s */
		struct timespec ts = {0, 10000000};

		nanosleep(&ts, NULL);
	}
	if (kill(pid, 0) == 0)
		kill(pid, SIGKILL);
	{
		pid_t c = fork();
		int status;

		if (c == 0) {
			execl("/bin/rm", "rm", "-rf", cl.dir, (char *)NULL);
			_exit(127);
		}
		if (c > 0)
			waitpid(c, &status, 0);
	}
}

int pg_cluster_ensure(const char **conninfo, pid_t *postmaster, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char path[320];
	FILE *f;

	if (pg_opt_conninfo != NULL) {
		*conninfo = pg_opt_conninfo;
		*postmaster = 0;
		return 0;
	}
	if (cl.started) {
		*conninfo = cl.conninfo;
		*postmaster = cl.postmaster;
		return 0;
	}
	snprintf(cl.dir, sizeof(cl.dir), "%s/mqbench-pg.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(cl.dir) == NULL) {
		snprintf(err, errlen, "mkdtemp %s: %s", cl.dir, strerror(errno));
		cl.dir[0] = '\0';
		return -1;
	}
	cl.started = true;
	atexit(cluster_stop);
	cleanup_signal_hook = cluster_kill_signal;
	fprintf(stderr, "mqbench: starting PostgreSQL in %s (%s start)\n", cl.dir, pg_sh());
	if (run_pg_sh("start", cl.dir) != 0) {
		snprintf(err, errlen, "%s start %s failed (log: %s/log)", pg_sh(), cl.dir, cl.dir);
		cl.postmaster = read_postmaster(cl.dir);
		return -1;
	}
	cl.postmaster = read_postmaster(cl.dir);
	snprintf(path, sizeof(path), "%s/conninfo", cl.dir);
	if ((f = fopen(path, "r")) == NULL || fgets(cl.conninfo, sizeof(cl.conninfo), f) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	cl.conninfo[strcspn(cl.conninfo, "\r\n")] = '\0';
	*conninfo = cl.conninfo;
	*postmaster = cl.postmaster;
	return 0;
}

void pg_schema_new(char *buf, size_t len, const char *tag)
{
	static int n;

	snprintf(buf, len, "mqbench_%s%d_%d", tag, (int)getpid(), ++n);
}

static void no_notices(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static PGconn *pg_connect(char *err, size_t errlen)
{
	const char *ci;
	pid_t pm;
	PGconn *c;

	if (pg_cluster_ensure(&ci, &pm, err, errlen) != 0)
		return NULL;
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "connect '%s': %s", ci, PQerrorMessage(c));
		err[strcspn(err, "\n")] = '\0';
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, no_notices, NULL); /* "drop cascades to ..." */
	return c;
}

int pg_exec(const char *sql, char *err, size_t errlen)
{
	PGconn *c = pg_connect(err, errlen);
	PGresult *res;
	int rv = 0;

	if (c == NULL)
		return -1;
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
		rv = -1;
	}
	PQclear(res);
	PQfinish(c);
	return rv;
}

int pg_durability(char *buf, size_t len, char *err, size_t errlen)
{
	PGconn *c = pg_connect(err, errlen);
	PGresult *res;
	int rv = 0;

	if (c == NULL)
		return -1;
	res = PQexec(c, "SELECT current_setting('synchronous_commit'), current_setting('fsync')");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		snprintf(err, errlen, "settings: %s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
		rv = -1;
	} else {
		snprintf(buf, len, "synchronous_commit %s, fsync %s", PQgetvalue(res, 0, 0),
		         PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	PQfinish(c);
	return rv;
}

static PGconn *rels_conn;

int pg_db_stats(uint64_t *commits, uint64_t *wal_syncs, char *err, size_t errlen)
{
	PGresult *res;

	if (rels_conn == NULL && (rels_conn = pg_connect(err, errlen)) == NULL)
		return -1;
	/* Our own statistics first, so that the next read sees them. */
	PQclear(PQexec(rels_conn, "SELECT pg_stat_clear_snapshot()"));
	res = PQexec(rels_conn, "SELECT (SELECT xact_commit FROM pg_stat_database"
	                        " WHERE datname = current_database()), wal_sync FROM pg_stat_wal");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		snprintf(err, errlen, "statistics: %s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
		PQclear(res);
		pg_schema_rels_close();
		return -1;
	}
	*commits = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	*wal_syncs = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return 0;
}

void pg_schema_rels_close(void)
{
	if (rels_conn != NULL)
		PQfinish(rels_conn);
	rels_conn = NULL;
}

int pg_schema_rels(const char *schema, pg_rel *rels, int max, int *n, char *err, size_t errlen)
{
	/* Tables (and their TOAST and indexes) of the schema; the counters of
	 * pg_stat_user_tables lag by up to a second (PostgreSQL flushes the
	 * backends' statistics at most that often). */
	static const char sql[] =
	    "SELECT c.relname, pg_total_relation_size(c.oid), pg_indexes_size(c.oid),"
	    " coalesce(s.n_live_tup, 0), coalesce(s.n_dead_tup, 0),"
	    " coalesce(s.autovacuum_count, 0), coalesce(s.vacuum_count, 0)"
	    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid"
	    " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname";
	const char *params[1] = {schema};
	PGresult *res;
	int rows;

	*n = 0;
	if (rels_conn == NULL && (rels_conn = pg_connect(err, errlen)) == NULL)
		return -1;
	res = PQexecParams(rels_conn, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "table sizes: %s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
		PQclear(res);
		pg_schema_rels_close(); /* reconnect next time */
		return -1;
	}
	rows = PQntuples(res);
	for (int i = 0; i < rows && *n < max; i++) {
		pg_rel *r = &rels[(*n)++];

		snprintf(r->name, sizeof(r->name), "%s", PQgetvalue(res, i, 0));
		r->total_bytes = strtoull(PQgetvalue(res, i, 1), NULL, 10);
		r->index_bytes = strtoull(PQgetvalue(res, i, 2), NULL, 10);
		r->live = strtoull(PQgetvalue(res, i, 3), NULL, 10);
		r->dead = strtoull(PQgetvalue(res, i, 4), NULL, 10);
		r->autovacuums = strtoull(PQgetvalue(res, i, 5), NULL, 10);
		r->vacuums = strtoull(PQgetvalue(res, i, 6), NULL, 10);
	}
	PQclear(res);
	return 0;
}
