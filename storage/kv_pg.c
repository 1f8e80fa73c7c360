/* SPDX-License-Identifier: MIT */
/*
 * kv_pg.c: PostgreSQL as a backend of kv.h (engine "postgres"). The job
 * state machine (jobs.c, queues.c, ...) is the one every engine runs; this
 * file stores its ordered key-value databases as tables of a PostgreSQL
 * schema, one table per kv_db: (k bytea PRIMARY KEY, v bytea). bytea
 * compares as unsigned bytes, shorter first on a tie: kv.h's key order.
 *
 * Many mqd instances may open the same schema. What makes that sound:
 *  - Every transaction takes one transaction-level advisory lock of the
 *    schema first (pg_advisory_xact_lock), so the writer transactions of
 *    all instances run one after the other, each seeing everything the
 *    others committed (READ COMMITTED snapshots are taken after the lock).
 *    Each instance still applies many requests per transaction (group
 *    commit); the instances take turns.
 *  - The store re-reads its id and token counters at every begin
 *    (kv_ops.shared), so ids and lease tokens are unique across instances
 *    and a lease token is a fencing value the database holds.
 *  - Time comes from the database: every begin reads clock_timestamp();
 *    kv_ops.clock is the local clock corrected by that offset.
 *  - A commit that made messages ready NOTIFYs the other instances (the
 *    payload is the queue name); kv_ops.watch LISTENs on its own
 *    connection and passes them on.
 * Durability: synchronous_commit is set on for the session (off only in
 * the relaxed mode): a commit returns after PostgreSQL flushed its WAL.
 *
 * Failures: a lost connection is UNAVAILABLE (retryable); the next begin
 * reconnects by itself, at most every PG_RETRY_MS. pg_status() is the one
 * place where SQLSTATEs become mq_status. Nothing here leaks PG types.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "kv.h"

/* PG_LAYOUT is the version of the tables' layout (this file's DDL), kept
 * in the meta table under PG_LAYOUT_KEY; a newer one is refused. */
#define PG_LAYOUT      1u
#define PG_LAYOUT_KEY  "pg_layout"
#define PG_RETRY_MS    250   /* reconnect attempts at most this often */
#define PG_FETCH_FIRST 8     /* rows a seek reads; each refill doubles, */
#define PG_FETCH_MAX   1024  /* up to this */
#define PG_LOCK_CLASS  28017 /* first key of the advisory lock ("mq") */
#define PG_OID_BYTEA   17
#define PG_OID_INT4    23

/* Table names, by kv_db (the same names as LMDB's databases). */
static const char *const pg_tables[KV_NDB] = {
    "meta",   "queues", "qids",     "msgs",      "ready",     "timers", "dedup", "dead",
    "groups", "expiry", "dedupexp", "schedules", "sched_due", "topics", "subs",  "sub_topic",
};

enum { Q_GET, Q_PUT, Q_DEL, Q_SEEK, Q_SEEKGT, Q_N };

typedef struct pg_cursor {
	PGresult *res; /* the current page */
	int row, n;
	int fetch; /* rows the next refill asks for */
	bool valid, end;
} pg_cursor;

typedef struct pg_name {
	char s[MQ_NAME_MAX + 1];
} pg_name;

struct kv_txn {
	kv_env *env;
	pg_cursor cur[KV_NDB];
	/* Results whose bytes were handed out: kept until the next write or
	 * the end of the transaction (kv.h's borrowing rule). */
	PGresult **keep;
	size_t n_keep, cap_keep;
	/* Queues to NOTIFY at commit. */
	pg_name *notify;
	size_t n_notify, cap_notify;
};

struct kv_env {
	PGconn *c;
	char *conninfo;
	char schema[64];
	char channel[80];
	bool relaxed;
	int32_t lock_key;
	bool prepared[KV_NDB][Q_N];
	char begin_sql[192];
	atomic_llong offset_ms; /* database clock minus the local wall clock */
	atomic_int be_pid;      /* the writer connection's backend */
	uint64_t next_try_ms;   /* monotonic: no reconnect before */
	char last_err[STORE_ERR_MAX];
	bool in_txn;
	kv_txn txn;
	/* The watch (LISTEN) thread. */
	pthread_t wthread;
	bool watching;
	int wake[2];
	atomic_bool wstop;
	store_ready_fn wfn;
	void *warg;
};

static uint64_t pg_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t pg_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* pg_msg copies PostgreSQL's message without its trailing newline. */
static void pg_msg(char *dst, size_t cap, const char *m)
{
	size_t n;

	snprintf(dst, cap, "%s", m && m[0] ? m : "unknown error");
	n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = 0;
	for (char *p = dst; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

/* pg_status maps a failed result (or a lost connection) to mq_status and
 * writes the reason: "postgres: <what>: <PostgreSQL's message>". */
static mq_status pg_status(kv_env *e, PGresult *res, const char *what, store_err *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *m = res ? PQresultErrorMessage(res) : NULL;
	char msg[STORE_ERR_MAX - 64];
	mq_status st = MQ_INTERNAL;

	if (!m || !m[0])
		m = e->c ? PQerrorMessage(e->c) : "no connection";
	pg_msg(msg, sizeof(msg), m);
	if (!e->c || PQstatus(e->c) != CONNECTION_OK)
		st = MQ_UNAVAILABLE;
	else if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0))
		st = MQ_UNAVAILABLE; /* connection exception, admin/crash shutdown */
	else if (state && strncmp(state, "53", 2) == 0)
		st = MQ_RESOURCE_EXHAUSTED; /* disk full, out of memory, too many connections */
	else if (state && strncmp(state, "40", 2) == 0)
		st = MQ_ABORTED; /* serialization failure, deadlock */
	snprintf(err->msg, sizeof(err->msg), "postgres: %s: %s%s", what, msg,
	         st == MQ_UNAVAILABLE ? " (retryable: mqd reconnects by itself)" : "");
	return st;
}

/* ---- Connections ---------------------------------------------------------- */

static PGconn *pg_connect(const kv_env *e, char *errbuf, size_t cap)
{
	/* Ours first: the caller's connection string (expanded from dbname)
	 * overrides any of them. */
	const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *const vals[] = {"5", "mqd", e->conninfo, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);

	if (!c) {
		snprintf(errbuf, cap, "out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		pg_msg(errbuf, cap, PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* pg_exec runs sql (no parameters) and checks for want. */
static mq_status pg_exec(kv_env *e, PGconn *c, const char *sql, ExecStatusType want,
                         const char *what, store_err *err)
{
	PGresult *r = PQexec(c, sql);
	mq_status st = MQ_OK;

	if (!r || PQresultStatus(r) != want)
		st = pg_status(e, r, what, err);
	PQclear(r);
	return st;
}

/* pg_session sets up a fresh writer connection. */
static mq_status pg_session(kv_env *e, store_err *err)
{
	char sql[128];

	memset(e->prepared, 0, sizeof(e->prepared));
	snprintf(sql, sizeof(sql), "SET synchronous_commit TO %s", e->relaxed ? "off" : "on");
	atomic_store(&e->be_pid, PQbackendPID(e->c));
	return pg_exec(e, e->c, sql, PGRES_COMMAND_OK, "session setup", err);
}

/* pg_ensure gives the writer a live connection, reconnecting at most
 * every PG_RETRY_MS; UNAVAILABLE with the last reason meanwhile. */
static mq_status pg_ensure(kv_env *e, store_err *err)
{
	char why[STORE_ERR_MAX - 64];
	uint64_t now;

	if (e->c && PQstatus(e->c) == CONNECTION_OK)
		return MQ_OK;
	now = pg_mono_ms();
	if (now < e->next_try_ms) {
		snprintf(err->msg, sizeof(err->msg), "%s", e->last_err);
		return MQ_UNAVAILABLE;
	}
	if (e->c) {
		PQfinish(e->c);
		e->c = NULL;
	}
	e->c = pg_connect(e, why, sizeof(why));
	if (!e->c || pg_session(e, err) != MQ_OK) {
		if (e->c)
			pg_msg(why, sizeof(why), err->msg);
		snprintf(e->last_err, sizeof(e->last_err),
		         "postgres unreachable: %s (retryable: mqd reconnects by itself)", why);
		snprintf(err->msg, sizeof(err->msg), "%s", e->last_err);
		e->next_try_ms = now + PG_RETRY_MS;
		if (e->c) {
			PQfinish(e->c);
			e->c = NULL;
		}
		return MQ_UNAVAILABLE;
	}
	return MQ_OK;
}

/* ---- Statements ----------------------------------------------------------- */

static void pg_stmt_name(char *b, size_t cap, kv_db db, int q)
{
	snprintf(b, cap, "mq_%d_%d", (int)db, q);
}

static mq_status pg_prepare(kv_env *e, kv_db db, int q, store_err *err)
{
	static const Oid types[Q_N][2] = {
	    [Q_GET] = {PG_OID_BYTEA},
	    [Q_PUT] = {PG_OID_BYTEA, PG_OID_BYTEA},
	    [Q_DEL] = {PG_OID_BYTEA},
	    [Q_SEEK] = {PG_OID_BYTEA, PG_OID_INT4},
	    [Q_SEEKGT] = {PG_OID_BYTEA, PG_OID_INT4},
	};
	static const int nparams[Q_N] = {1, 2, 1, 2, 2};
	const char *t = pg_tables[db], *s = e->schema;
	char sql[256], name[32];
	PGresult *r;
	mq_status st = MQ_OK;

	switch (q) {
	case Q_GET:
		snprintf(sql, sizeof(sql), "SELECT v FROM \"%s\".%s WHERE k = $1", s, t);
		break;
	case Q_PUT:
		snprintf(sql, sizeof(sql),
		         "INSERT INTO \"%s\".%s (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE "
		         "SET v = EXCLUDED.v",
		         s, t);
		break;
	case Q_DEL:
		snprintf(sql, sizeof(sql), "DELETE FROM \"%s\".%s WHERE k = $1", s, t);
		break;
	case Q_SEEK:
		snprintf(sql, sizeof(sql),
		         "SELECT k, v FROM \"%s\".%s WHERE k >= $1 ORDER BY k LIMIT $2", s, t);
		break;
	default:
		snprintf(sql, sizeof(sql),
		         "SELECT k, v FROM \"%s\".%s WHERE k > $1 ORDER BY k LIMIT $2", s, t);
		break;
	}
	pg_stmt_name(name, sizeof(name), db, q);
	r = PQprepare(e->c, name, sql, nparams[q], types[q]);
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
		st = pg_status(e, r, "prepare", err);
	else
		e->prepared[db][q] = true;
	PQclear(r);
	return st;
}

/* pg_run executes statement q of db with binary parameters and results;
 * NULL (err set, *st the status) on failure. */
static PGresult *pg_run(kv_txn *t, kv_db db, int q, const void *a, size_t alen, const void *b,
                        size_t blen, mq_status *st, store_err *err)
{
	kv_env *e = t->env;
	static const int formats[2] = {1, 1};
	const char *vals[2] = {alen ? a : "", blen ? b : ""};
	int lens[2] = {(int)alen, (int)blen};
	char name[32];
	PGresult *r;
	ExecStatusType want = (q == Q_PUT || q == Q_DEL) ? PGRES_COMMAND_OK : PGRES_TUPLES_OK;

	if (!e->prepared[db][q] && (*st = pg_prepare(e, db, q, err)) != MQ_OK)
		return NULL;
	pg_stmt_name(name, sizeof(name), db, q);
	r = PQexecPrepared(e->c, name, (q == Q_GET || q == Q_DEL) ? 1 : 2, vals, lens, formats, 1);
	if (!r || PQresultStatus(r) != want) {
		static const char *const what[Q_N] = {"read", "write", "delete", "seek", "scan"};
		char w[64];

		snprintf(w, sizeof(w), "%s %s", what[q], pg_tables[db]);
		*st = pg_status(e, r, w, err);
		PQclear(r);
		return NULL;
	}
	*st = MQ_OK;
	return r;
}

static mq_status pg_keep(kv_txn *t, PGresult *r, store_err *err)
{
	if (t->n_keep == t->cap_keep) {
		size_t cap = t->cap_keep ? t->cap_keep * 2 : 16;
		PGresult **k = realloc(t->keep, cap * sizeof(*k));

		if (!k) {
			PQclear(r);
			snprintf(err->msg, sizeof(err->msg), "out of memory");
			return MQ_RESOURCE_EXHAUSTED;
		}
		t->keep = k;
		t->cap_keep = cap;
	}
	t->keep[t->n_keep++] = r;
	return MQ_OK;
}

/* pg_drop_kept frees what earlier reads handed out (after a write). */
static void pg_drop_kept(kv_txn *t)
{
	for (size_t i = 0; i < t->n_keep; i++)
		PQclear(t->keep[i]);
	t->n_keep = 0;
}

static void pg_cur_reset(pg_cursor *c)
{
	PQclear(c->res);
	memset(c, 0, sizeof(*c));
}

static void pg_txn_clear(kv_txn *t)
{
	pg_drop_kept(t);
	for (int i = 0; i < KV_NDB; i++)
		pg_cur_reset(&t->cur[i]);
	t->n_notify = 0;
}

/* ---- kv_ops ---------------------------------------------------------------- */

static uint32_t pg_fnv(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static bool pg_schema_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return strncmp(s, "pg_", 3) != 0;
}

/* pg_ddl creates the schema and the tables when missing (idempotent; under
 * the advisory lock, so instances starting together do not race) and
 * checks the layout version. Hot tables get autovacuum settings that keep
 * them small under churn: they are rewritten all the time, by few rows. */
static mq_status pg_ddl(kv_env *e, store_err *err)
{
	char *sql = malloc(16384), *p;
	size_t cap = 16384, n = 0;
	PGresult *r;
	mq_status st;

	if (!sql) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return MQ_RESOURCE_EXHAUSTED;
	}
	p = sql;
	n += (size_t)snprintf(p + n, cap - n,
	                      "BEGIN; SELECT pg_advisory_xact_lock(%d, %" PRId32 ");"
	                      "CREATE SCHEMA IF NOT EXISTS \"%s\";",
	                      PG_LOCK_CLASS, e->lock_key, e->schema);
	for (int i = 0; i < KV_NDB; i++) {
		/* meta and queues rows are rewritten by (nearly) every commit:
		 * room on each page for HOT updates; the message tables get
		 * vacuumed after 1% of their rows changed. */
		bool tiny = i == KV_META || i == KV_QUEUES || i == KV_QIDS || i == KV_SCHEDULES ||
		            i == KV_TOPICS || i == KV_SUBS || i == KV_SUB_TOPIC;

		n += (size_t)snprintf(
		    p + n, cap - n,
		    "CREATE TABLE IF NOT EXISTS \"%s\".%s (k bytea PRIMARY KEY, v bytea NOT NULL) "
		    "WITH (fillfactor = %d, autovacuum_vacuum_scale_factor = %s, "
		    "autovacuum_vacuum_threshold = %d, autovacuum_analyze_scale_factor = 0.02, "
		    "autovacuum_vacuum_cost_delay = 0);",
		    e->schema, pg_tables[i], tiny ? 50 : 80, tiny ? "0" : "0.01",
		    tiny ? 1000 : 500);
	}
	n += (size_t)snprintf(p + n, cap - n, "SELECT v FROM \"%s\".meta WHERE k = '%s'::bytea",
	                      e->schema, PG_LAYOUT_KEY);
	r = PQexec(e->c, sql);
	free(sql);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		st = pg_status(e, r, "creating the schema", err);
		PQclear(r);
		pg_exec(e, e->c, "ROLLBACK", PGRES_COMMAND_OK, "rollback", err);
		return st;
	}
	if (PQntuples(r) == 1) {
		/* Text result of a bytea: "\x" and hex digits of a le32. */
		const char *v = PQgetvalue(r, 0, 0);
		unsigned b[4] = {0};
		uint32_t ver;

		if (strlen(v) != 10 ||
		    sscanf(v, "\\x%2x%2x%2x%2x", &b[0], &b[1], &b[2], &b[3]) != 4) {
			PQclear(r);
			pg_exec(e, e->c, "ROLLBACK", PGRES_COMMAND_OK, "rollback", err);
			snprintf(err->msg, sizeof(err->msg),
			         "postgres: schema \"%s\": the layout version record is corrupted",
			         e->schema);
			return MQ_DATA_LOSS;
		}
		ver = b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
		PQclear(r);
		if (ver > PG_LAYOUT) {
			pg_exec(e, e->c, "ROLLBACK", PGRES_COMMAND_OK, "rollback", err);
			snprintf(err->msg, sizeof(err->msg),
			         "postgres: schema \"%s\" has table layout %" PRIu32
			         ", newer than this build supports (%u); use a newer mq",
			         e->schema, ver, PG_LAYOUT);
			return MQ_FAILED_PRECONDITION;
		}
	} else {
		PQclear(r);
	}
	{
		char up[256];

		snprintf(
		    up, sizeof(up),
		    "INSERT INTO \"%s\".meta (k, v) VALUES ('%s'::bytea, '\\x%02x000000'::bytea) "
		    "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
		    e->schema, PG_LAYOUT_KEY, PG_LAYOUT);
		if ((st = pg_exec(e, e->c, up, PGRES_COMMAND_OK, "layout version", err)) != MQ_OK ||
		    (st = pg_exec(e, e->c, "COMMIT", PGRES_COMMAND_OK, "commit", err)) != MQ_OK)
			return st;
	}
	return MQ_OK;
}

static void pg_close(kv_env *e);

static mq_status pg_open(kv_env **out, const kv_open_opts *o, store_err *err)
{
	kv_env *e;
	char why[STORE_ERR_MAX - 64];
	const char *schema = o->schema && o->schema[0] ? o->schema : "mq";
	mq_status st;

	if (!o->conninfo || !o->conninfo[0]) {
		snprintf(err->msg, sizeof(err->msg),
		         "the postgres engine needs a connection string (--pg)");
		return MQ_INVALID_ARGUMENT;
	}
	if (!pg_schema_ok(schema)) {
		snprintf(err->msg, sizeof(err->msg),
		         "invalid PostgreSQL schema name \"%.64s\": 1 to 63 of [a-z0-9_], starting "
		         "with a letter or _, not pg_",
		         schema);
		return MQ_INVALID_ARGUMENT;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->conninfo = strdup(o->conninfo))) {
		free(e);
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return MQ_RESOURCE_EXHAUSTED;
	}
	e->wake[0] = e->wake[1] = -1;
	snprintf(e->schema, sizeof(e->schema), "%s", schema);
	snprintf(e->channel, sizeof(e->channel), "mq.%s", schema);
	e->relaxed = o->relaxed;
	e->lock_key = (int32_t)pg_fnv(schema);
	e->txn.env = e;
	snprintf(e->begin_sql, sizeof(e->begin_sql),
	         "BEGIN; SELECT pg_advisory_xact_lock(%d, %" PRId32
	         "), (extract(epoch from clock_timestamp()) * 1000)::int8",
	         PG_LOCK_CLASS, e->lock_key);
	if (!(e->c = pg_connect(e, why, sizeof(why)))) {
		snprintf(err->msg, sizeof(err->msg), "postgres: cannot connect: %s", why);
		pg_close(e);
		return MQ_UNAVAILABLE;
	}
	if ((st = pg_session(e, err)) != MQ_OK || (st = pg_ddl(e, err)) != MQ_OK) {
		pg_close(e);
		return st;
	}
	*out = e;
	return MQ_OK;
}

static void pg_unwatch(kv_env *e);

static void pg_close(kv_env *e)
{
	if (!e)
		return;
	pg_unwatch(e);
	if (e->in_txn)
		pg_txn_clear(&e->txn);
	free(e->txn.keep);
	free(e->txn.notify);
	if (e->c)
		PQfinish(e->c);
	free(e->conninfo);
	free(e);
}

static const char *pg_durability(const kv_env *e)
{
	return e->relaxed ? "relaxed" : "durable";
}

static mq_status pg_sync(kv_env *e, store_err *err)
{
	/* Relaxed: PostgreSQL's WAL writer flushes within a few
	 * wal_writer_delay; nothing to do here. */
	(void)e;
	(void)err;
	return MQ_OK;
}

static void pg_usage(const kv_env *e, uint64_t *used, uint64_t *map)
{
	/* Called from other threads than the writer: no query here. */
	(void)e;
	*used = 0;
	*map = 0;
}

static uint64_t pg_clock(const kv_env *e)
{
	return (uint64_t)((long long)pg_wall_ms() + atomic_load(&e->offset_ms));
}

static mq_status pg_begin(kv_env *e, kv_txn **out, store_err *err)
{
	PGresult *r;
	mq_status st;
	uint64_t wall;

	if ((st = pg_ensure(e, err)) != MQ_OK)
		return st;
	wall = pg_wall_ms();
	r = PQexec(e->c, e->begin_sql);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		st = pg_status(e, r, "begin", err);
		PQclear(r);
		if (e->c && PQstatus(e->c) == CONNECTION_OK)
			PQclear(PQexec(e->c, "ROLLBACK"));
		return st;
	}
	{
		/* The database's clock, read after the lock: the middle of the
		 * round trip on the local clock. */
		long long db = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
		uint64_t mid = (wall + pg_wall_ms()) / 2;

		atomic_store(&e->offset_ms, db - (long long)mid);
	}
	PQclear(r);
	e->in_txn = true;
	*out = &e->txn;
	return MQ_OK;
}

static mq_status pg_commit(kv_txn *t, store_err *err)
{
	kv_env *e = t->env;
	char *sql, *p;
	size_t cap = 16 + t->n_notify * (sizeof(e->channel) + MQ_NAME_MAX + 16);
	PGresult *r;
	mq_status st = MQ_OK;

	sql = malloc(cap);
	if (!sql) {
		pg_txn_clear(t);
		PQclear(PQexec(e->c, "ROLLBACK"));
		e->in_txn = false;
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return MQ_RESOURCE_EXHAUSTED;
	}
	p = sql;
	for (size_t i = 0; i < t->n_notify; i++)
		p += sprintf(p, "NOTIFY \"%s\", '%s'; ", e->channel, t->notify[i].s);
	strcpy(p, "COMMIT");
	pg_txn_clear(t);
	e->in_txn = false;
	r = PQexec(e->c, sql);
	free(sql);
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		if (r && PQresultStatus(r) == PGRES_COMMAND_OK) {
			snprintf(err->msg, sizeof(err->msg),
			         "postgres: the transaction was rolled back (%s)", PQcmdStatus(r));
			st = MQ_ABORTED;
		} else {
			st = pg_status(e, r, "commit", err);
			if (st == MQ_UNAVAILABLE)
				snprintf(
				    err->msg + strlen(err->msg),
				    sizeof(err->msg) - strlen(err->msg),
				    "; the connection was lost during COMMIT, so its outcome is "
				    "unknown");
			else if (e->c && PQstatus(e->c) == CONNECTION_OK)
				PQclear(PQexec(e->c, "ROLLBACK"));
		}
	}
	PQclear(r);
	return st;
}

static void pg_abort(kv_txn *t)
{
	kv_env *e = t->env;

	pg_txn_clear(t);
	e->in_txn = false;
	if (e->c && PQstatus(e->c) == CONNECTION_OK)
		PQclear(PQexec(e->c, "ROLLBACK"));
}

static mq_status pg_get(kv_txn *t, kv_db db, const void *k, size_t klen, kv_val *v, store_err *err)
{
	mq_status st;
	PGresult *r = pg_run(t, db, Q_GET, k, klen, NULL, 0, &st, err);

	if (!r)
		return st;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return MQ_NOT_FOUND;
	}
	v->data = PQgetvalue(r, 0, 0);
	v->len = (size_t)PQgetlength(r, 0, 0);
	return pg_keep(t, r, err);
}

static mq_status pg_put(kv_txn *t, kv_db db, const void *k, size_t klen, const void *v, size_t vlen,
                        store_err *err)
{
	mq_status st;
	PGresult *r = pg_run(t, db, Q_PUT, k, klen, v, vlen, &st, err);

	/* Only now: k or v may point into a kept result. */
	pg_cur_reset(&t->cur[db]);
	pg_drop_kept(t);
	PQclear(r);
	return st;
}

static mq_status pg_del(kv_txn *t, kv_db db, const void *k, size_t klen, store_err *err)
{
	mq_status st;
	PGresult *r = pg_run(t, db, Q_DEL, k, klen, NULL, 0, &st, err);

	pg_cur_reset(&t->cur[db]);
	pg_drop_kept(t);
	if (!r)
		return st;
	st = strcmp(PQcmdTuples(r), "0") == 0 ? MQ_NOT_FOUND : MQ_OK;
	PQclear(r);
	return st;
}

/* pg_cur_out hands out the cursor's current row. */
static mq_status pg_cur_out(pg_cursor *c, kv_val *key, kv_val *val)
{
	key->data = PQgetvalue(c->res, c->row, 0);
	key->len = (size_t)PQgetlength(c->res, c->row, 0);
	val->data = PQgetvalue(c->res, c->row, 1);
	val->len = (size_t)PQgetlength(c->res, c->row, 1);
	return MQ_OK;
}

/* pg_fetch reads the next page of db's cursor (rows >= or > k); the
 * page before it stays alive in the kept results. */
static mq_status pg_fetch(kv_txn *t, kv_db db, int q, const void *k, size_t klen, store_err *err)
{
	pg_cursor *c = &t->cur[db];
	uint8_t lim[4];
	int fetch = c->fetch ? c->fetch : PG_FETCH_FIRST;
	PGresult *r;
	mq_status st;

	lim[0] = (uint8_t)(fetch >> 24);
	lim[1] = (uint8_t)(fetch >> 16);
	lim[2] = (uint8_t)(fetch >> 8);
	lim[3] = (uint8_t)fetch;
	r = pg_run(t, db, q, k, klen, lim, 4, &st, err);
	if (c->res) {
		if (pg_keep(t, c->res, err) != MQ_OK) {
			c->res = NULL;
			PQclear(r);
			return MQ_RESOURCE_EXHAUSTED;
		}
		c->res = NULL;
	}
	if (!r) {
		c->valid = false;
		return st;
	}
	c->res = r;
	c->row = 0;
	c->n = PQntuples(r);
	c->end = c->n < fetch;
	c->fetch = fetch * 2 > PG_FETCH_MAX ? PG_FETCH_MAX : fetch * 2;
	c->valid = c->n > 0;
	return c->n > 0 ? MQ_OK : MQ_NOT_FOUND;
}

static mq_status pg_seek(kv_txn *t, kv_db db, const void *k, size_t klen, kv_val *key, kv_val *val,
                         store_err *err)
{
	pg_cursor *c = &t->cur[db];
	mq_status st;

	c->fetch = 0;
	if ((st = pg_fetch(t, db, Q_SEEK, k, klen, err)) != MQ_OK)
		return st;
	return pg_cur_out(c, key, val);
}

static mq_status pg_next(kv_txn *t, kv_db db, kv_val *key, kv_val *val, store_err *err)
{
	pg_cursor *c = &t->cur[db];
	mq_status st;

	if (!c->valid) {
		snprintf(err->msg, sizeof(err->msg), "postgres engine: cursor used after a write");
		return MQ_INTERNAL;
	}
	if (c->row + 1 < c->n) {
		c->row++;
		return pg_cur_out(c, key, val);
	}
	if (c->end) {
		c->valid = false;
		return MQ_NOT_FOUND;
	}
	/* The last key stays valid: its page moves to the kept results. */
	st = pg_fetch(t, db, Q_SEEKGT, PQgetvalue(c->res, c->row, 0),
	              (size_t)PQgetlength(c->res, c->row, 0), err);
	if (st != MQ_OK)
		return st;
	return pg_cur_out(c, key, val);
}

static mq_status pg_savepoint(kv_txn *t, store_err *err)
{
	for (int i = 0; i < KV_NDB; i++)
		t->cur[i].valid = false;
	return pg_exec(t->env, t->env->c, "SAVEPOINT mq_sp", PGRES_COMMAND_OK, "savepoint", err);
}

static mq_status pg_release(kv_txn *t, store_err *err)
{
	for (int i = 0; i < KV_NDB; i++)
		t->cur[i].valid = false;
	return pg_exec(t->env, t->env->c, "RELEASE SAVEPOINT mq_sp", PGRES_COMMAND_OK,
	               "release savepoint", err);
}

static void pg_rollback(kv_txn *t)
{
	for (int i = 0; i < KV_NDB; i++)
		t->cur[i].valid = false;
	/* A failure here leaves the connection's transaction failed: the
	 * commit then reports it. */
	PQclear(PQexec(t->env->c, "ROLLBACK TO SAVEPOINT mq_sp; RELEASE SAVEPOINT mq_sp"));
}

static void pg_notify(kv_txn *t, const char *queue)
{
	size_t len = strlen(queue);

	if (len == 0 || len > MQ_NAME_MAX || strpbrk(queue, "'\\\""))
		return;
	for (size_t i = 0; i < t->n_notify; i++)
		if (strcmp(t->notify[i].s, queue) == 0)
			return;
	if (t->n_notify == t->cap_notify) {
		size_t cap = t->cap_notify ? t->cap_notify * 2 : 8;
		pg_name *n = realloc(t->notify, cap * sizeof(*n));

		if (!n)
			return; /* the others find it at their next transaction */
		t->notify = n;
		t->cap_notify = cap;
	}
	memcpy(t->notify[t->n_notify++].s, queue, len + 1);
}

/* ---- Watch: LISTEN on a connection of its own --------------------------- */

static void *pg_watch_main(void *arg)
{
	kv_env *e = arg;
	PGconn *c = NULL;
	bool connected_once = false;
	char why[STORE_ERR_MAX], sql[128];

	snprintf(sql, sizeof(sql), "LISTEN \"%s\"", e->channel);
	while (!atomic_load(&e->wstop)) {
		struct pollfd p[2];
		PGnotify *n;

		if (!c || PQstatus(c) != CONNECTION_OK) {
			PGresult *r;

			if (c)
				PQfinish(c);
			c = pg_connect(e, why, sizeof(why));
			if (c) {
				r = PQexec(c, sql);
				if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
					PQfinish(c);
					c = NULL;
				}
				PQclear(r);
			}
			if (!c) {
				struct pollfd w = {.fd = e->wake[0], .events = POLLIN};

				poll(&w, 1, 1000);
				continue;
			}
			/* Notifications sent while we were away are lost:
			 * every queue may have something. */
			if (connected_once)
				e->wfn(e->warg, NULL);
			connected_once = true;
		}
		p[0] = (struct pollfd){.fd = PQsocket(c), .events = POLLIN};
		p[1] = (struct pollfd){.fd = e->wake[0], .events = POLLIN};
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents && !PQconsumeInput(c))
			continue; /* the connection is gone: reconnect */
		while ((n = PQnotifies(c)) != NULL) {
			if (n->be_pid != atomic_load(&e->be_pid))
				e->wfn(e->warg, n->extra);
			PQfreemem(n);
		}
	}
	if (c)
		PQfinish(c);
	return NULL;
}

static mq_status pg_watch(kv_env *e, store_ready_fn fn, void *arg, store_err *err)
{
	if (e->watching)
		pg_unwatch(e);
	if (!fn)
		return MQ_OK;
	if (pipe(e->wake) != 0) {
		snprintf(err->msg, sizeof(err->msg), "postgres watch: pipe: %s", strerror(errno));
		return MQ_INTERNAL;
	}
	e->wfn = fn;
	e->warg = arg;
	atomic_store(&e->wstop, false);
	if (pthread_create(&e->wthread, NULL, pg_watch_main, e) != 0) {
		close(e->wake[0]);
		close(e->wake[1]);
		e->wake[0] = e->wake[1] = -1;
		snprintf(err->msg, sizeof(err->msg), "postgres watch: cannot start its thread");
		return MQ_INTERNAL;
	}
	e->watching = true;
	return MQ_OK;
}

static void pg_unwatch(kv_env *e)
{
	if (!e->watching)
		return;
	atomic_store(&e->wstop, true);
	if (write(e->wake[1], "x", 1) < 0) {
		/* the thread still sees wstop within a second */
	}
	pthread_join(e->wthread, NULL);
	close(e->wake[0]);
	close(e->wake[1]);
	e->wake[0] = e->wake[1] = -1;
	e->watching = false;
}

const kv_ops store_kv_pg = {
    .engine = "postgres",
    .shared = true,
    .open = pg_open,
    .close = pg_close,
    .durability = pg_durability,
    .sync = pg_sync,
    .usage = pg_usage,
    .clock = pg_clock,
    .begin = pg_begin,
    .commit = pg_commit,
    .abort = pg_abort,
    .get = pg_get,
    .put = pg_put,
    .del = pg_del,
    .seek = pg_seek,
    .next = pg_next,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .rollback = pg_rollback,
    .notify = pg_notify,
    .watch = pg_watch,
    .unwatch = pg_unwatch,
};
