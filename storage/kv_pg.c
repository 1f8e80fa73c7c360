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
#define PG_LAYOUT       1u
#define PG_LAYOUT_KEY   "pg_layout"
#define PG_RETRY_MS     250   /* reconnect attempts at most this often */
#define PG_FETCH_FIRST  8     /* rows a seek reads; each refill doubles, */
#define PG_FETCH_MAX    1024  /* up to this */
#define PG_LOCK_CLASS   28017 /* first key of the advisory lock ("mq") */
#define PG_VACUUM_CLASS 28018 /* first key of the vacuum lock */
#define PG_VACUUM_MS    10000 /* the watch vacuums the hot tables this often */
#define PG_OID_BYTEA    17
#define PG_OID_INT4     23
#define PG_OID_BYTEAA   1001 /* bytea[] */

/* Table names, by kv_db (the same names as LMDB's databases). */
static const char *const pg_tables[KV_NDB] = {
    "meta",   "queues", "qids",     "msgs",      "ready",     "timers", "dedup", "dead",
    "groups", "expiry", "dedupexp", "schedules", "sched_due", "topics", "subs",  "sub_topic",
};

enum { Q_GET, Q_PUT, Q_DEL, Q_SEEK, Q_SEEKGT, Q_MPUT, Q_MDEL, Q_N };

/* Kinds of pipelined statements whose results are read later. */
enum { P_PREP, P_PUT, P_DEL_OPT, P_DEL_MUST, P_CMD };

/* PG_PEND_MAX bounds the results left unread in the pipeline (the server
 * must never block writing them while we block writing more). */
#define PG_PEND_MAX 256

/* A table's buffered writes go out as one statement at this many. */
#define PG_WBUF_MAX 4096

/* Buffered write kinds. */
enum { W_PUT, W_DEL_OPT, W_DEL_MUST };

/* Prefetched records: at most this many, of keys up to this long. */
#define PG_PREF_MAX 64
#define PG_PREF_KEY 32
#define PG_HOT_MAX  4 /* queue records read ahead at begin */

typedef struct pg_cursor {
	PGresult *res; /* the current page */
	int row, n;
	int fetch; /* rows the next refill asks for */
	bool valid, end;
	bool pre; /* read ahead from the table's first key (preseek), unused */
} pg_cursor;

/* A key read ahead at begin (a queue record's). */
struct pg_hot {
	uint8_t k[PG_PREF_KEY];
	uint8_t len;
};

typedef struct pg_name {
	char s[MQ_NAME_MAX + 1];
} pg_name;

struct kv_txn {
	kv_env *env;
	pg_cursor cur[KV_NDB];
	/* Results whose bytes were handed out, with their database: kept
	 * until the next write to that database or the end of the
	 * transaction. kv.h promises less (until the next write); LMDB in
	 * practice gives this much, and jobs.c relies on it (a record read
	 * from msgs stays readable across a delete in expiry). */
	struct pg_kept {
		PGresult *res;
		kv_db db;
	} * keep;
	size_t n_keep, cap_keep;
	/* Queues to NOTIFY at commit. */
	pg_name *notify;
	size_t n_notify, cap_notify;
	/* Statements sent in the pipeline whose results are not read yet. */
	struct pg_pend {
		uint8_t kind; /* P_* */
		uint8_t q;
		kv_db db;
		uint32_t expect; /* P_DEL_MUST: rows it must delete */
	} * pend;
	size_t n_pend, cap_pend;
	bool broken; /* a pipelined statement failed: only abort is left */
	bool wrote;  /* a write was sent: the commit needs its barrier */
	/* Writes not sent yet, per table: a table's go out together as one
	 * upsert and one or two deletes (bytea arrays, last write of a key
	 * wins) before anything reads that table, and at commit. */
	struct pg_wbuf {
		struct pg_wop {
			uint32_t seq;
			uint8_t kind; /* W_* */
			size_t koff, klen, voff, vlen;
		} * ops;
		size_t n, cap;
		uint8_t *arena;
		size_t used, acap;
	} wb[KV_NDB];
	uint32_t wseq;
	/* Records read ahead by prefetch, until a get or a write of the key. */
	struct pg_pref {
		kv_db db;
		uint8_t klen;
		uint8_t key[PG_PREF_KEY];
		PGresult *res; /* no row: absent */
	} pref[PG_PREF_MAX];
	size_t n_pref;
	struct pg_hot qread[PG_HOT_MAX]; /* queue records read (for the next begin) */
	size_t n_qread;
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
	/* Queue records the last transaction read: the next begin reads
	 * them ahead in its round trip (a batch mostly touches the same
	 * queues as the one before). */
	struct pg_hot hot[PG_HOT_MAX];
	size_t n_hot;
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
		if (*p == '\n' || *p == '\t')
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

static void pg_no_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

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
	/* NOTICEs ("relation already exists, skipping") are not for mqd's log. */
	PQsetNoticeProcessor(c, pg_no_notice, NULL);
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

static mq_status pg_pend_add(kv_txn *t, int kind, kv_db db, int q, store_err *err)
{
	if (t->n_pend == t->cap_pend) {
		size_t cap = t->cap_pend ? t->cap_pend * 2 : 64;
		struct pg_pend *p = realloc(t->pend, cap * sizeof(*p));

		if (!p) {
			snprintf(err->msg, sizeof(err->msg), "out of memory");
			return MQ_RESOURCE_EXHAUSTED;
		}
		t->pend = p;
		t->cap_pend = cap;
	}
	t->pend[t->n_pend].kind = (uint8_t)kind;
	t->pend[t->n_pend].q = (uint8_t)q;
	t->pend[t->n_pend].expect = 1;
	t->pend[t->n_pend++].db = db;
	return MQ_OK;
}

/* pg_lost reports a connection that failed under a pipelined call. */
static mq_status pg_lost(kv_txn *t, const char *what, store_err *err)
{
	t->broken = true;
	return pg_status(t->env, NULL, what, err);
}

/* pg_send_prepare queues the preparation of statement q of db (once per
 * connection; its result is read with the others). */
static mq_status pg_send_prepare(kv_txn *t, kv_db db, int q, store_err *err)
{
	static const Oid types[Q_N][2] = {
	    [Q_GET] = {PG_OID_BYTEA},
	    [Q_PUT] = {PG_OID_BYTEA, PG_OID_BYTEA},
	    [Q_DEL] = {PG_OID_BYTEA},
	    [Q_SEEK] = {PG_OID_BYTEA, PG_OID_INT4},
	    [Q_SEEKGT] = {PG_OID_BYTEA, PG_OID_INT4},
	    [Q_MPUT] = {PG_OID_BYTEAA, PG_OID_BYTEAA},
	    [Q_MDEL] = {PG_OID_BYTEAA},
	};
	static const int nparams[Q_N] = {1, 2, 1, 2, 2, 2, 1};
	kv_env *e = t->env;
	const char *tb = pg_tables[db], *s = e->schema;
	char sql[256], name[32];

	switch (q) {
	case Q_GET:
		snprintf(sql, sizeof(sql), "SELECT v FROM \"%s\".%s WHERE k = $1", s, tb);
		break;
	case Q_PUT:
		snprintf(sql, sizeof(sql),
		         "INSERT INTO \"%s\".%s (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE "
		         "SET v = EXCLUDED.v",
		         s, tb);
		break;
	case Q_DEL:
		snprintf(sql, sizeof(sql), "DELETE FROM \"%s\".%s WHERE k = $1", s, tb);
		break;
	case Q_SEEK:
		snprintf(sql, sizeof(sql),
		         "SELECT k, v FROM \"%s\".%s WHERE k >= $1 ORDER BY k LIMIT $2", s, tb);
		break;
	case Q_MPUT:
		snprintf(
		    sql, sizeof(sql),
		    "INSERT INTO \"%s\".%s (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) "
		    "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
		    s, tb);
		break;
	case Q_MDEL:
		snprintf(sql, sizeof(sql), "DELETE FROM \"%s\".%s WHERE k = ANY($1::bytea[])", s,
		         tb);
		break;
	default:
		snprintf(sql, sizeof(sql),
		         "SELECT k, v FROM \"%s\".%s WHERE k > $1 ORDER BY k LIMIT $2", s, tb);
		break;
	}
	pg_stmt_name(name, sizeof(name), db, q);
	if (!PQsendPrepare(e->c, name, sql, nparams[q], types[q]))
		return pg_lost(t, "prepare", err);
	e->prepared[db][q] = true; /* undone if its result says it failed */
	return pg_pend_add(t, P_PREP, db, q, err);
}

/* pg_send queues statement q of db with binary parameters and results. */
static mq_status pg_send(kv_txn *t, kv_db db, int q, const void *a, size_t alen, const void *b,
                         size_t blen, store_err *err)
{
	kv_env *e = t->env;
	static const int formats[2] = {1, 1};
	const char *vals[2] = {alen ? a : "", blen ? b : ""};
	int lens[2] = {(int)alen, (int)blen};
	char name[32];
	mq_status st;

	if (t->broken) {
		snprintf(err->msg, sizeof(err->msg), "postgres: the transaction failed earlier");
		return MQ_ABORTED;
	}
	if (!e->prepared[db][q] && (st = pg_send_prepare(t, db, q, err)) != MQ_OK)
		return st;
	pg_stmt_name(name, sizeof(name), db, q);
	if (!PQsendQueryPrepared(e->c, name, (q == Q_GET || q == Q_DEL || q == Q_MDEL) ? 1 : 2,
	                         vals, lens, formats, 1))
		return pg_lost(t, "send", err);
	return MQ_OK;
}

/* pg_read_pending reads the results of the statements queued before the
 * last flush, in order; the first failure fails the transaction. */
static mq_status pg_read_pending(kv_txn *t, store_err *err)
{
	kv_env *e = t->env;
	mq_status st = MQ_OK;

	for (size_t i = 0; i < t->n_pend; i++) {
		struct pg_pend *p = &t->pend[i];
		PGresult *r = PQgetResult(e->c);
		ExecStatusType rs;

		if (!r) {
			t->n_pend = 0;
			return pg_lost(t, "reading results", err);
		}
		rs = PQresultStatus(r);
		if (rs != PGRES_COMMAND_OK) {
			if (p->kind == P_PREP)
				e->prepared[p->db][p->q] = false;
			if (st == MQ_OK && rs != PGRES_PIPELINE_ABORTED) {
				static const char *const what[] = {"prepare", "write", "delete",
				                                   "delete", "savepoint"};
				char w[64];

				snprintf(w, sizeof(w), "%s %s", what[p->kind],
				         p->kind == P_CMD ? "" : pg_tables[p->db]);
				st = pg_status(e, r, w, err);
			} else if (st == MQ_OK) {
				snprintf(err->msg, sizeof(err->msg),
				         "postgres: a statement of the transaction failed");
				st = MQ_ABORTED;
			}
		} else if (p->kind == P_DEL_MUST &&
		           strtoul(PQcmdTuples(r), NULL, 10) != p->expect && st == MQ_OK) {
			snprintf(err->msg, sizeof(err->msg), "storage index %s is missing an entry",
			         pg_tables[p->db]);
			st = MQ_DATA_LOSS;
		}
		PQclear(r);
		if ((r = PQgetResult(e->c)) != NULL) { /* the end of its results */
			PQclear(r);
			t->n_pend = 0;
			return pg_lost(t, "pipeline out of step", err);
		}
	}
	t->n_pend = 0;
	if (st != MQ_OK)
		t->broken = true;
	return st;
}

/* pg_flush asks the server for the results so far and reads the
 * pending ones. */
static mq_status pg_flush(kv_txn *t, store_err *err)
{
	if (!PQsendFlushRequest(t->env->c) || PQflush(t->env->c) != 0)
		return pg_lost(t, "flush", err);
	return pg_read_pending(t, err);
}

static mq_status pg_wb_flush(kv_txn *t, kv_db db, store_err *err);

/* pg_run executes read statement q of db after the pending ones, in the
 * same round trip; NULL (err set, *st the status) on failure. */
static PGresult *pg_run(kv_txn *t, kv_db db, int q, const void *a, size_t alen, const void *b,
                        size_t blen, mq_status *st, store_err *err)
{
	kv_env *e = t->env;
	PGresult *r, *end;

	/* what this table's buffered writes change must be seen */
	if ((*st = pg_wb_flush(t, db, err)) != MQ_OK ||
	    (*st = pg_send(t, db, q, a, alen, b, blen, err)) != MQ_OK)
		return NULL;
	if ((*st = pg_flush(t, err)) != MQ_OK) {
		/* ours comes after, aborted: the abort's sync reads it */
		return NULL;
	}
	r = PQgetResult(e->c);
	if (!r) {
		*st = pg_lost(t, "reading a result", err);
		return NULL;
	}
	if ((end = PQgetResult(e->c)) != NULL) {
		PQclear(end);
		PQclear(r);
		*st = pg_lost(t, "pipeline out of step", err);
		return NULL;
	}
	if (PQresultStatus(r) != (q == Q_DEL ? PGRES_COMMAND_OK : PGRES_TUPLES_OK)) {
		static const char *const what[Q_N] = {"read", "write", "delete", "seek", "scan"};
		char w[64];

		snprintf(w, sizeof(w), "%s %s", what[q], pg_tables[db]);
		*st = pg_status(e, r, w, err);
		t->broken = true;
		PQclear(r);
		return NULL;
	}
	*st = MQ_OK;
	return r;
}

/* ---- Write buffers ---------------------------------------------------------- */

static void pg_be32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

/* pg_array is a bytea[] in PostgreSQL's binary array format. */
typedef struct pg_array {
	uint8_t *b;
	size_t len, cap, n;
} pg_array;

static bool pg_array_put(pg_array *a, const void *d, size_t len)
{
	size_t need = a->len + 4 + len + (a->len ? 0 : 20);

	if (need > a->cap) {
		size_t cap = a->cap ? a->cap : 256;
		uint8_t *b;

		while (cap < need)
			cap *= 2;
		if (!(b = realloc(a->b, cap)))
			return false;
		a->b = b;
		a->cap = cap;
	}
	if (a->len == 0) {
		pg_be32(a->b, 1);                /* dimensions */
		pg_be32(a->b + 4, 0);            /* no NULLs */
		pg_be32(a->b + 8, PG_OID_BYTEA); /* element type */
		pg_be32(a->b + 12, 0);           /* length: set at the end */
		pg_be32(a->b + 16, 1);           /* lower bound */
		a->len = 20;
	}
	pg_be32(a->b + a->len, (uint32_t)len);
	if (len)
		memcpy(a->b + a->len + 4, d, len);
	a->len += 4 + len;
	a->n++;
	pg_be32(a->b + 12, (uint32_t)a->n);
	return true;
}

static void pg_wb_discard(kv_txn *t, kv_db db)
{
	t->wb[db].n = 0;
	t->wb[db].used = 0;
}

static void pg_wb_discard_all(kv_txn *t)
{
	for (int i = 0; i < KV_NDB; i++)
		pg_wb_discard(t, (kv_db)i);
}

static const uint8_t *pg_wb_arena; /* for pg_wop_cmp: the store is one thread's */

static int pg_wop_cmp(const void *pa, const void *pb)
{
	const struct pg_wop *a = pa, *b = pb;
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c = n ? memcmp(pg_wb_arena + a->koff, pg_wb_arena + b->koff, n) : 0;

	if (c)
		return c;
	if (a->klen != b->klen)
		return a->klen < b->klen ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* pg_wb_flush sends db's buffered writes: the last write of each key
 * wins; upserts as one statement, deletes as one (two when some must
 * find their key: that one's row count is checked). */
static mq_status pg_wb_flush(kv_txn *t, kv_db db, store_err *err)
{
	struct pg_wbuf *w = &t->wb[db];
	pg_array pk = {0}, pv = {0}, dopt = {0}, dmust = {0};
	mq_status st = MQ_OK;
	size_t i = 0;
	static const int formats[2] = {1, 1};
	char name[32];

	if (w->n == 0)
		return MQ_OK;
	pg_wb_arena = w->arena;
	qsort(w->ops, w->n, sizeof(w->ops[0]), pg_wop_cmp);
	while (i < w->n) {
		size_t j = i;
		bool put_before = false;
		const struct pg_wop *last;
		const uint8_t *k = w->arena + w->ops[i].koff;
		bool ok = true;

		while (j + 1 < w->n && w->ops[j + 1].klen == w->ops[i].klen &&
		       memcmp(w->arena + w->ops[j + 1].koff, k, w->ops[i].klen) == 0)
			j++;
		for (size_t x = i; x < j; x++)
			put_before = put_before || w->ops[x].kind == W_PUT;
		last = &w->ops[j];
		if (last->kind == W_PUT)
			ok = pg_array_put(&pk, k, last->klen) &&
			     pg_array_put(&pv, w->arena + last->voff, last->vlen);
		else if (last->kind == W_DEL_MUST && !put_before)
			ok = pg_array_put(&dmust, k, last->klen);
		else /* a key written earlier in the buffer need not be in the table */
			ok = pg_array_put(&dopt, k, last->klen);
		if (!ok) {
			snprintf(err->msg, sizeof(err->msg), "out of memory");
			st = MQ_RESOURCE_EXHAUSTED;
			t->broken = true;
			goto out;
		}
		i = j + 1;
	}
	pg_wb_discard(t, db);
	{
		struct {
			int q, kind;
			pg_array *a, *b;
		} stmts[3] = {
		    {Q_MPUT, P_PUT, &pk, &pv},
		    {Q_MDEL, P_DEL_OPT, &dopt, NULL},
		    {Q_MDEL, P_DEL_MUST, &dmust, NULL},
		};

		for (int x = 0; x < 3; x++) {
			const char *vals[2];
			int lens[2];

			if (stmts[x].a->n == 0)
				continue;
			vals[0] = (const char *)stmts[x].a->b;
			lens[0] = (int)stmts[x].a->len;
			vals[1] = stmts[x].b ? (const char *)stmts[x].b->b : NULL;
			lens[1] = stmts[x].b ? (int)stmts[x].b->len : 0;
			if (!t->env->prepared[db][stmts[x].q] &&
			    (st = pg_send_prepare(t, db, stmts[x].q, err)) != MQ_OK)
				goto out;
			pg_stmt_name(name, sizeof(name), db, stmts[x].q);
			if (!PQsendQueryPrepared(t->env->c, name, stmts[x].b ? 2 : 1, vals, lens,
			                         formats, 1)) {
				st = pg_lost(t, "send", err);
				goto out;
			}
			if ((st = pg_pend_add(t, stmts[x].kind, db, stmts[x].q, err)) != MQ_OK)
				goto out;
			t->pend[t->n_pend - 1].expect = (uint32_t)stmts[x].a->n;
		}
	}
out:
	free(pk.b);
	free(pv.b);
	free(dopt.b);
	free(dmust.b);
	if (st == MQ_OK && t->n_pend >= PG_PEND_MAX)
		st = pg_flush(t, err);
	return st;
}

static mq_status pg_wb_flush_all(kv_txn *t, store_err *err)
{
	mq_status st;

	for (int i = 0; i < KV_NDB; i++)
		if ((st = pg_wb_flush(t, (kv_db)i, err)) != MQ_OK)
			return st;
	return MQ_OK;
}

/* pg_wb_add buffers a write of db (a copy of k and v). */
static mq_status pg_wb_add(kv_txn *t, kv_db db, int kind, const void *k, size_t klen, const void *v,
                           size_t vlen, store_err *err)
{
	struct pg_wbuf *w = &t->wb[db];
	struct pg_wop *op;

	if (t->broken) {
		snprintf(err->msg, sizeof(err->msg), "postgres: the transaction failed earlier");
		return MQ_ABORTED;
	}
	t->wrote = true;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct pg_wop *o = realloc(w->ops, cap * sizeof(*o));

		if (!o)
			goto oom;
		w->ops = o;
		w->cap = cap;
	}
	if (w->used + klen + vlen > w->acap) {
		size_t cap = w->acap ? w->acap : 4096;
		uint8_t *a;

		while (cap < w->used + klen + vlen)
			cap *= 2;
		if (!(a = realloc(w->arena, cap)))
			goto oom;
		w->arena = a;
		w->acap = cap;
	}
	op = &w->ops[w->n++];
	op->seq = t->wseq++;
	op->kind = (uint8_t)kind;
	op->koff = w->used;
	op->klen = klen;
	if (klen)
		memcpy(w->arena + w->used, k, klen);
	w->used += klen;
	op->voff = w->used;
	op->vlen = vlen;
	if (vlen)
		memcpy(w->arena + w->used, v, vlen);
	w->used += vlen;
	if (w->n >= PG_WBUF_MAX)
		return pg_wb_flush(t, db, err);
	return MQ_OK;
oom:
	t->broken = true;
	snprintf(err->msg, sizeof(err->msg), "out of memory");
	return MQ_RESOURCE_EXHAUSTED;
}

/* pg_queue_cmd sends a plain command (savepoints) into the pipeline. */
static mq_status pg_queue_cmd(kv_txn *t, const char *sql, store_err *err)
{
	if (t->broken) {
		snprintf(err->msg, sizeof(err->msg), "postgres: the transaction failed earlier");
		return MQ_ABORTED;
	}
	if (!PQsendQueryParams(t->env->c, sql, 0, NULL, NULL, NULL, NULL, 0))
		return pg_lost(t, "send", err);
	return pg_pend_add(t, P_CMD, 0, 0, err);
}

/* pg_pipeline_read_to_sync reads every result up to the sync already
 * sent, passing each to own_cb, then leaves pipeline mode. */
static bool pg_pipeline_read_to_sync(kv_txn *t, void (*own_cb)(void *arg, PGresult *r), void *arg)
{
	PGconn *c = t->env->c;
	size_t guard = 0;

	for (;;) {
		PGresult *r = PQgetResult(c);

		if (!r) {
			if (PQstatus(c) != CONNECTION_OK || ++guard > 1000000)
				return false;
			continue;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		if (own_cb)
			own_cb(arg, r);
		PQclear(r);
	}
	t->n_pend = 0;
	return PQexitPipelineMode(c) == 1;
}

/* pg_pipeline_end ends the pipeline: a sync, every result up to it read
 * (first_fail: the status of the first failed one; the caller's own
 * statements' results, after the pending ones, are passed to own_cb),
 * then back to the plain mode. False when the connection is unusable. */
static bool pg_pipeline_end(kv_txn *t, void (*own_cb)(void *arg, PGresult *r), void *arg)
{
	PGconn *c = t->env->c;
	size_t guard = 0;

	if (!c || PQstatus(c) != CONNECTION_OK)
		return false;
	if (PQpipelineStatus(c) == PQ_PIPELINE_OFF)
		return true;
	(void)guard;
	if (!PQpipelineSync(c))
		return false;
	return pg_pipeline_read_to_sync(t, own_cb, arg);
}

static mq_status pg_keep(kv_txn *t, kv_db db, PGresult *r, store_err *err)
{
	if (t->n_keep == t->cap_keep) {
		size_t cap = t->cap_keep ? t->cap_keep * 2 : 16;
		struct pg_kept *k = realloc(t->keep, cap * sizeof(*k));

		if (!k) {
			PQclear(r);
			snprintf(err->msg, sizeof(err->msg), "out of memory");
			return MQ_RESOURCE_EXHAUSTED;
		}
		t->keep = k;
		t->cap_keep = cap;
	}
	t->keep[t->n_keep].res = r;
	t->keep[t->n_keep++].db = db;
	return MQ_OK;
}

/* pg_drop_kept frees what earlier reads of db handed out (after a write
 * to db); db KV_NDB: all of them. */
static void pg_drop_kept(kv_txn *t, kv_db db)
{
	size_t j = 0;

	for (size_t i = 0; i < t->n_keep; i++) {
		if (db == KV_NDB || t->keep[i].db == db)
			PQclear(t->keep[i].res);
		else
			t->keep[j++] = t->keep[i];
	}
	t->n_keep = j;
}

/* pg_pref_forget drops the prefetched record of key k of db (k NULL: all
 * of db; db KV_NDB: all). */
static void pg_pref_forget(kv_txn *t, kv_db db, const void *k, size_t klen)
{
	size_t j = 0;

	for (size_t i = 0; i < t->n_pref; i++) {
		struct pg_pref *p = &t->pref[i];
		bool drop =
		    db == KV_NDB ||
		    (p->db == db && (!k || (p->klen == klen && memcmp(p->key, k, klen) == 0)));

		if (drop)
			PQclear(p->res);
		else
			t->pref[j++] = *p;
	}
	t->n_pref = j;
}

static void pg_cur_reset(pg_cursor *c)
{
	PQclear(c->res);
	memset(c, 0, sizeof(*c));
}

static void pg_txn_clear(kv_txn *t)
{
	t->n_pend = 0;
	t->broken = false;
	t->wrote = false;
	t->n_qread = 0;
	pg_wb_discard_all(t);
	pg_pref_forget(t, KV_NDB, NULL, 0);
	pg_drop_kept(t, KV_NDB);
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
	                      /* created only when missing: a role without CREATE
	                       * on the database can run on a schema made for it */
	                      "DO $mq$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE "
	                      "nspname = '%s') THEN CREATE SCHEMA \"%s\"; END IF;",
	                      PG_LOCK_CLASS, e->lock_key, e->schema, e->schema);
	for (int i = 0; i < KV_NDB; i++) {
		/* meta and queues rows are rewritten by (nearly) every commit:
		 * room on each page for HOT updates; the message tables get
		 * vacuumed after 1% of their rows changed. */
		bool tiny = i == KV_META || i == KV_QUEUES || i == KV_QIDS || i == KV_SCHEDULES ||
		            i == KV_TOPICS || i == KV_SUBS || i == KV_SUB_TOPIC;

		n += (size_t)snprintf(
		    p + n, cap - n,
		    "IF to_regclass('\"%s\".%s') IS NULL THEN "
		    "CREATE TABLE \"%s\".%s (k bytea PRIMARY KEY, v bytea NOT NULL) "
		    "WITH (fillfactor = %d, autovacuum_vacuum_scale_factor = %s, "
		    "autovacuum_vacuum_threshold = %d, autovacuum_analyze_scale_factor = 0.02, "
		    "autovacuum_vacuum_cost_delay = 0); END IF;",
		    e->schema, pg_tables[i], e->schema, pg_tables[i], tiny ? 50 : 80,
		    tiny ? "0" : "0.01", tiny ? 1000 : 500);
	}
	n += (size_t)snprintf(p + n, cap - n, " END $mq$;");
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
	/* Durable: the transaction itself commits without waiting for its WAL
	 * flush, so the lock is free for the other instances at once; the
	 * commit's barrier (pg_commit) waits for the flush before anything is
	 * answered. */
	snprintf(e->begin_sql, sizeof(e->begin_sql),
	         "SELECT pg_advisory_xact_lock(%d, %" PRId32
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
	free(e->txn.pend);
	for (int i = 0; i < KV_NDB; i++) {
		free(e->txn.wb[i].ops);
		free(e->txn.wb[i].arena);
	}
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

static void pg_reset_conn(kv_env *e);

/* pg_own_result reads the next result of a statement of our own (after
 * the pending ones) with the NULL that ends it; NULL on failure. */
static PGresult *pg_own_result(kv_txn *t, ExecStatusType want, const char *what, mq_status *st,
                               store_err *err)
{
	PGresult *r = PQgetResult(t->env->c), *end;

	if (!r) {
		*st = pg_lost(t, "reading a result", err);
		return NULL;
	}
	if ((end = PQgetResult(t->env->c)) != NULL) {
		PQclear(end);
		PQclear(r);
		*st = pg_lost(t, "pipeline out of step", err);
		return NULL;
	}
	if (PQresultStatus(r) != want) {
		*st = pg_status(t->env, r, what, err);
		t->broken = true;
		PQclear(r);
		return NULL;
	}
	*st = MQ_OK;
	return r;
}

/* pg_cur_set makes r the page of db's cursor, read from the table's
 * first key and not used yet (pg_seek of "" takes it). */
static void pg_cur_set_pre(kv_txn *t, kv_db db, PGresult *r, int fetch)
{
	pg_cursor *c = &t->cur[db];

	pg_cur_reset(c);
	c->res = r;
	c->n = PQntuples(r);
	c->end = c->n < fetch;
	c->fetch = fetch * 2 > PG_FETCH_MAX ? PG_FETCH_MAX : fetch * 2;
	c->valid = c->n > 0;
	c->pre = true;
}

/* pg_send_preseek sends the read of db's first PG_FETCH_FIRST rows (its
 * statement must be prepared: see pg_preseek). */
static mq_status pg_send_preseek(kv_txn *t, kv_db db, store_err *err)
{
	static const int formats[2] = {1, 1};
	uint8_t lim[4];
	const char *vals[2] = {"", (const char *)lim};
	int lens[2] = {0, 4};
	char name[32];

	pg_be32(lim, PG_FETCH_FIRST);
	pg_stmt_name(name, sizeof(name), db, Q_SEEK);
	if (!PQsendQueryPrepared(t->env->c, name, 2, vals, lens, formats, 1))
		return pg_lost(t, "send", err);
	return MQ_OK;
}

static mq_status pg_begin(kv_env *e, kv_txn **out, store_err *err)
{
	kv_txn *t = &e->txn;
	PGresult *r;
	mq_status st;
	uint64_t wall;
	static const int tfmt[1] = {0};

	if ((st = pg_ensure(e, err)) != MQ_OK)
		return st;
	pg_txn_clear(t);
	/* One round trip: BEGIN, the lock and the database's clock, and the
	 * meta table read ahead (the store reads its counters first). Writes
	 * then go out without waiting for their results: each read (or the
	 * commit) collects them in its round trip. */
	wall = pg_wall_ms();
	if (!PQenterPipelineMode(e->c)) {
		st = pg_status(e, NULL, "pipeline mode", err);
		pg_reset_conn(e);
		return st;
	}
	if ((st = pg_queue_cmd(t, "BEGIN", err)) != MQ_OK ||
	    (!e->relaxed &&
	     (st = pg_queue_cmd(t, "SET LOCAL synchronous_commit TO off", err)) != MQ_OK) ||
	    (!e->prepared[KV_META][Q_SEEK] &&
	     (st = pg_send_prepare(t, KV_META, Q_SEEK, err)) != MQ_OK) ||
	    (e->n_hot && !e->prepared[KV_QUEUES][Q_GET] &&
	     (st = pg_send_prepare(t, KV_QUEUES, Q_GET, err)) != MQ_OK))
		goto fail;
	if (!PQsendQueryParams(e->c, e->begin_sql, 0, NULL, NULL, NULL, tfmt, 0)) {
		st = pg_lost(t, "begin", err);
		goto fail;
	}
	if ((st = pg_send_preseek(t, KV_META, err)) != MQ_OK)
		goto fail;
	for (size_t i = 0; i < e->n_hot; i++) {
		static const int formats[1] = {1};
		const char *vals[1] = {(const char *)e->hot[i].k};
		int lens[1] = {e->hot[i].len};
		char name[32];

		pg_stmt_name(name, sizeof(name), KV_QUEUES, Q_GET);
		if (!PQsendQueryPrepared(e->c, name, 1, vals, lens, formats, 1)) {
			st = pg_lost(t, "begin", err);
			goto fail;
		}
	}
	if ((st = pg_flush(t, err)) != MQ_OK)
		goto fail;
	if (!(r = pg_own_result(t, PGRES_TUPLES_OK, "begin", &st, err)))
		goto fail;
	{
		/* The database's clock, read after the lock: the middle of the
		 * round trip on the local clock. */
		long long db = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
		uint64_t mid = (wall + pg_wall_ms()) / 2;

		atomic_store(&e->offset_ms, db - (long long)mid);
	}
	PQclear(r);
	if (!(r = pg_own_result(t, PGRES_TUPLES_OK, "read meta", &st, err)))
		goto fail;
	pg_cur_set_pre(t, KV_META, r, PG_FETCH_FIRST);
	for (size_t i = 0; i < e->n_hot; i++) {
		struct pg_pref *p = &t->pref[t->n_pref];

		if (!(r = pg_own_result(t, PGRES_TUPLES_OK, "read queues", &st, err)))
			goto fail;
		p->db = KV_QUEUES;
		p->klen = e->hot[i].len;
		memcpy(p->key, e->hot[i].k, p->klen);
		p->res = r;
		t->n_pref++;
	}
	e->in_txn = true;
	*out = t;
	return MQ_OK;
fail : {
	bool ok = pg_pipeline_end(t, NULL, NULL);

	pg_txn_clear(t);
	if (ok && e->c && PQstatus(e->c) == CONNECTION_OK)
		PQclear(PQexec(e->c, "ROLLBACK"));
	else
		pg_reset_conn(e);
}
	return st;
}

/* pg_preseek reads the first rows of each of dbs[0..n) in one round trip
 * (with the pending writes), for the seeks from their first key that
 * follow (store_next_due's timers). */
static mq_status pg_preseek(kv_txn *t, const kv_db *dbs, size_t n, store_err *err)
{
	mq_status st;

	for (size_t i = 0; i < n; i++)
		if ((st = pg_wb_flush(t, dbs[i], err)) != MQ_OK ||
		    (!t->env->prepared[dbs[i]][Q_SEEK] &&
		     (st = pg_send_prepare(t, dbs[i], Q_SEEK, err)) != MQ_OK))
			return st;
	for (size_t i = 0; i < n; i++)
		if ((st = pg_send_preseek(t, dbs[i], err)) != MQ_OK)
			return st;
	if ((st = pg_flush(t, err)) != MQ_OK)
		return st;
	for (size_t i = 0; i < n; i++) {
		PGresult *r = pg_own_result(t, PGRES_TUPLES_OK, "seek", &st, err);

		if (!r)
			return st;
		if (t->cur[dbs[i]].res && pg_keep(t, dbs[i], t->cur[dbs[i]].res, err) != MQ_OK) {
			t->cur[dbs[i]].res = NULL;
			PQclear(r);
			return MQ_RESOURCE_EXHAUSTED;
		}
		t->cur[dbs[i]].res = NULL;
		pg_cur_set_pre(t, dbs[i], r, PG_FETCH_FIRST);
	}
	return MQ_OK;
}

static void pg_abort(kv_txn *t);

/* The commit's own results: the notifications, then COMMIT. */
typedef struct pg_commit_res {
	size_t n_notify, seen;
	char tag[32];    /* COMMIT's */
	bool barrier_ok; /* the flush barrier's */
	char msg[STORE_ERR_MAX - 64];
	char state[8];
	bool failed;
} pg_commit_res;

static void pg_commit_cb(void *arg, PGresult *r)
{
	pg_commit_res *c = arg;
	ExecStatusType rs = PQresultStatus(r);

	c->seen++;
	if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK && !c->failed) {
		const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		c->failed = true;
		pg_msg(c->msg, sizeof(c->msg),
		       rs == PGRES_PIPELINE_ABORTED ? "a statement of the transaction failed"
		                                    : PQresultErrorMessage(r));
		snprintf(c->state, sizeof(c->state), "%s", st ? st : "");
	}
	if (c->seen == c->n_notify + 1)
		snprintf(c->tag, sizeof(c->tag), "%s", PQcmdStatus(r));
	else if (c->seen == c->n_notify + 2)
		c->barrier_ok = rs == PGRES_TUPLES_OK;
}

static void pg_reset_conn(kv_env *e)
{
	if (e->c)
		PQfinish(e->c);
	e->c = NULL;
	atomic_store(&e->be_pid, 0);
}

static mq_status pg_commit(kv_txn *t, store_err *err)
{
	kv_env *e = t->env;
	pg_commit_res res = {0};
	bool ok, barrier;
	mq_status st = MQ_OK;

	e->in_txn = false;
	memcpy(e->hot, t->qread, t->n_qread * sizeof(t->qread[0]));
	e->n_hot = t->n_qread;
	if (!t->broken && (st = pg_wb_flush_all(t, err)) != MQ_OK) {
		pg_abort(t);
		return st;
	}
	if (t->broken) {
		pg_abort(t);
		snprintf(err->msg, sizeof(err->msg), "postgres: the transaction failed earlier");
		return MQ_ABORTED;
	}
	/* One round trip: the writes not yet confirmed, the notifications,
	 * COMMIT, the durability barrier, and the sync that ends the
	 * pipeline. The transaction commits with synchronous_commit off (set
	 * at begin): visible, and the advisory lock free for the others, at
	 * once. The barrier is a transactional WAL message in an implicit
	 * transaction of its own, with the session's synchronous_commit on
	 * (pg_logical_emit_message: it takes an xid and writes a record, so
	 * its commit waits for the flush; txid_current() alone would not).
	 * Its record comes after our commit's, so the flush it waits for
	 * covers ours: nothing is answered before our changes are on disk, and
	 * the instances' flushes overlap instead of queueing behind the lock.
	 * Another instance that read our changes before the flush answers only
	 * after its own barrier, whose flush covers ours too. Relaxed, or a
	 * transaction that wrote nothing (an idle instance's timer check, a
	 * read): no barrier. */
	for (size_t i = 0; i < t->n_notify; i++) {
		const char *vals[2] = {e->channel, t->notify[i].s};

		if (!PQsendQueryParams(e->c, "SELECT pg_notify($1, $2)", 2, NULL, vals, NULL, NULL,
		                       0))
			goto lost;
	}
	if (!PQsendQueryParams(e->c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
		goto lost;
	barrier = !e->relaxed && t->wrote; /* nothing written: nothing to wait for */
	if (barrier && !PQsendQueryParams(e->c, "SELECT pg_logical_emit_message(true, 'mq', '')", 0,
	                                  NULL, NULL, NULL, NULL, 0))
		goto lost;
	res.n_notify = t->n_notify;
	{
		/* The pending writes' results come first, read as usual. */
		if (!PQpipelineSync(e->c)) /* also flushes */
			goto lost;
		st = pg_read_pending(t, err);
		ok = e->c && pg_pipeline_read_to_sync(t, pg_commit_cb, &res);
	}
	pg_txn_clear(t);
	if (!ok) {
		pg_reset_conn(e);
		if (st == MQ_OK)
			snprintf(
			    err->msg, sizeof(err->msg),
			    "postgres: the connection was lost during COMMIT, so its outcome is "
			    "unknown (retryable: mqd reconnects by itself)");
		return MQ_UNAVAILABLE;
	}
	if (st != MQ_OK || res.failed || strcmp(res.tag, "COMMIT") != 0) {
		/* Not committed: the server's transaction is failed or gone. */
		PQclear(PQexec(e->c, "ROLLBACK"));
		if (st != MQ_OK)
			return st;
		if (res.failed) {
			snprintf(err->msg, sizeof(err->msg), "postgres: commit: %s", res.msg);
			return strncmp(res.state, "40", 2) == 0 ? MQ_ABORTED : MQ_INTERNAL;
		}
		snprintf(err->msg, sizeof(err->msg),
		         "postgres: the transaction was rolled back (%s)", res.tag);
		return MQ_ABORTED;
	}
	if (barrier && !res.barrier_ok) {
		snprintf(
		    err->msg, sizeof(err->msg),
		    "postgres: committed, but the wait for its WAL flush failed, so whether it "
		    "is on disk is unknown (retryable)");
		return MQ_UNAVAILABLE;
	}
	return MQ_OK;

lost:
	pg_txn_clear(t);
	st = pg_status(e, NULL, "commit", err);
	pg_reset_conn(e);
	return st == MQ_OK ? MQ_UNAVAILABLE : st;
}

static void pg_abort(kv_txn *t)
{
	kv_env *e = t->env;
	bool ok = pg_pipeline_end(t, NULL, NULL);

	pg_txn_clear(t);
	e->in_txn = false;
	if (ok && e->c && PQstatus(e->c) == CONNECTION_OK) {
		PGresult *r = PQexec(e->c, "ROLLBACK");

		ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	if (!ok) /* out of step or gone: start afresh at the next begin */
		pg_reset_conn(e);
}

static mq_status pg_get(kv_txn *t, kv_db db, const void *k, size_t klen, kv_val *v, store_err *err)
{
	mq_status st;
	PGresult *r = NULL;

	if (db == KV_QUEUES && klen <= PG_PREF_KEY && t->n_qread < PG_HOT_MAX) {
		size_t i;

		for (i = 0; i < t->n_qread; i++)
			if (t->qread[i].len == klen && memcmp(t->qread[i].k, k, klen) == 0)
				break;
		if (i == t->n_qread) {
			memcpy(t->qread[i].k, k, klen);
			t->qread[t->n_qread++].len = (uint8_t)klen;
		}
	}
	for (size_t i = 0; i < t->n_pref; i++) {
		struct pg_pref *p = &t->pref[i];

		if (p->db == db && p->klen == klen && memcmp(p->key, k, klen) == 0) {
			r = p->res;
			t->pref[i] = t->pref[--t->n_pref];
			break;
		}
	}
	if (!r)
		r = pg_run(t, db, Q_GET, k, klen, NULL, 0, &st, err);

	if (!r)
		return st;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return MQ_NOT_FOUND;
	}
	v->data = PQgetvalue(r, 0, 0);
	v->len = (size_t)PQgetlength(r, 0, 0);
	return pg_keep(t, db, r, err);
}

static mq_status pg_put(kv_txn *t, kv_db db, const void *k, size_t klen, const void *v, size_t vlen,
                        store_err *err)
{
	mq_status st = pg_wb_add(t, db, W_PUT, k, klen, v, vlen, err);

	/* Only now: k or v may point into a kept result. */
	pg_pref_forget(t, db, k, klen);
	pg_cur_reset(&t->cur[db]);
	pg_drop_kept(t, db);
	return st;
}

static mq_status pg_del(kv_txn *t, kv_db db, const void *k, size_t klen, store_err *err)
{
	mq_status st;
	PGresult *r;

	t->wrote = true;
	r = pg_run(t, db, Q_DEL, k, klen, NULL, 0, &st, err);

	pg_pref_forget(t, db, k, klen);
	pg_cur_reset(&t->cur[db]);
	pg_drop_kept(t, db);
	if (!r)
		return st;
	st = strcmp(PQcmdTuples(r), "0") == 0 ? MQ_NOT_FOUND : MQ_OK;
	PQclear(r);
	return st;
}

static mq_status pg_del_later(kv_txn *t, kv_db db, const void *k, size_t klen, bool must,
                              store_err *err)
{
	mq_status st = pg_wb_add(t, db, must ? W_DEL_MUST : W_DEL_OPT, k, klen, NULL, 0, err);

	pg_pref_forget(t, db, k, klen);
	pg_cur_reset(&t->cur[db]);
	pg_drop_kept(t, db);
	return st;
}

/* pg_prefetch sends the gets of keys[0..n) in one round trip (with any
 * pending writes) and keeps their results for pg_get. */
static mq_status pg_prefetch(kv_txn *t, kv_db db, const kv_val *keys, size_t n, store_err *err)
{
	kv_env *e = t->env;
	size_t sent = 0;
	mq_status st;

	pg_pref_forget(t, db, NULL, 0);
	if ((st = pg_wb_flush(t, db, err)) != MQ_OK)
		return st;
	if (n > PG_PREF_MAX - t->n_pref)
		n = PG_PREF_MAX - t->n_pref;
	for (size_t i = 0; i < n; i++) {
		if (keys[i].len > PG_PREF_KEY)
			continue;
		if ((st = pg_send(t, db, Q_GET, keys[i].data, keys[i].len, NULL, 0, err)) != MQ_OK)
			return st;
		t->pref[t->n_pref + sent].db = db;
		t->pref[t->n_pref + sent].klen = (uint8_t)keys[i].len;
		memcpy(t->pref[t->n_pref + sent].key, keys[i].data, keys[i].len);
		t->pref[t->n_pref + sent].res = NULL;
		sent++;
	}
	if (sent == 0)
		return MQ_OK;
	if ((st = pg_flush(t, err)) != MQ_OK)
		return st;
	for (size_t i = 0; i < sent; i++) {
		PGresult *r = PQgetResult(e->c), *end;

		if (!r)
			return pg_lost(t, "reading a result", err);
		if ((end = PQgetResult(e->c)) != NULL) {
			PQclear(end);
			PQclear(r);
			return pg_lost(t, "pipeline out of step", err);
		}
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			char w[64];

			snprintf(w, sizeof(w), "read %s", pg_tables[db]);
			st = pg_status(e, r, w, err);
			t->broken = true;
			PQclear(r);
			/* the rest come aborted: the abort's sync reads them */
			return st;
		}
		t->pref[t->n_pref++].res = r;
	}
	return MQ_OK;
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
		if (pg_keep(t, db, c->res, err) != MQ_OK) {
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

	if (c->pre && klen == 0) { /* read ahead, and no write since */
		c->pre = false;
		c->row = 0;
		if (!c->valid)
			return MQ_NOT_FOUND;
		return pg_cur_out(c, key, val);
	}
	c->pre = false;
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
	mq_status st;

	for (int i = 0; i < KV_NDB; i++)
		t->cur[i].valid = false;
	/* what was written before belongs before the savepoint */
	if ((st = pg_wb_flush_all(t, err)) != MQ_OK)
		return st;
	return pg_queue_cmd(t, "SAVEPOINT mq_sp", err);
}

static mq_status pg_release(kv_txn *t, store_err *err)
{
	for (int i = 0; i < KV_NDB; i++)
		t->cur[i].valid = false;
	return pg_queue_cmd(t, "RELEASE SAVEPOINT mq_sp", err);
}

static void pg_rollback(kv_txn *t)
{
	store_err err;

	for (int i = 0; i < KV_NDB; i++)
		t->cur[i].valid = false;
	/* Writes still buffered came after the savepoint: they go too, and
	 * so do the records read ahead (they may have seen them). */
	pg_wb_discard_all(t);
	pg_pref_forget(t, KV_NDB, NULL, 0);
	/* A failure leaves the transaction broken: the commit reports it. */
	if (pg_queue_cmd(t, "ROLLBACK TO SAVEPOINT mq_sp", &err) == MQ_OK)
		pg_queue_cmd(t, "RELEASE SAVEPOINT mq_sp", &err);
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

	char vac[1024], trylock[96], unlock[96];
	uint64_t last_vacuum = pg_mono_ms();

	snprintf(sql, sizeof(sql), "LISTEN \"%s\"", e->channel);
	/* The tables every message passes through churn all the time: they
	 * are vacuumed here every PG_VACUUM_MS by one instance at a time (a
	 * session lock tried, not waited for), whatever the server's
	 * autovacuum_naptime; tables of another owner are skipped with a
	 * warning by PostgreSQL, and autovacuum still runs as configured. */
	snprintf(vac, sizeof(vac),
	         "VACUUM \"%s\".msgs, \"%s\".ready, \"%s\".timers, \"%s\".expiry, "
	         "\"%s\".dedup, \"%s\".dedupexp, \"%s\".groups, \"%s\".dead, \"%s\".meta, "
	         "\"%s\".queues",
	         e->schema, e->schema, e->schema, e->schema, e->schema, e->schema, e->schema,
	         e->schema, e->schema, e->schema);
	snprintf(trylock, sizeof(trylock), "SELECT pg_try_advisory_lock(%d, %" PRId32 ")",
	         PG_VACUUM_CLASS, e->lock_key);
	snprintf(unlock, sizeof(unlock), "SELECT pg_advisory_unlock(%d, %" PRId32 ")",
	         PG_VACUUM_CLASS, e->lock_key);
	while (!atomic_load(&e->wstop)) {
		struct pollfd p[2];
		PGnotify *n;

		if (c && PQstatus(c) == CONNECTION_OK &&
		    pg_mono_ms() >= last_vacuum + PG_VACUUM_MS) {
			PGresult *r = PQexec(c, trylock);

			last_vacuum = pg_mono_ms();
			if (r && PQresultStatus(r) == PGRES_TUPLES_OK &&
			    strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
				PQclear(PQexec(c, vac));
				PQclear(PQexec(c, unlock));
			}
			PQclear(r);
		}

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
    .del_later = pg_del_later,
    .prefetch = pg_prefetch,
    .preseek = pg_preseek,
    .seek = pg_seek,
    .next = pg_next,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .rollback = pg_rollback,
    .notify = pg_notify,
    .watch = pg_watch,
    .unwatch = pg_unwatch,
};
