/* SPDX-License-Identifier: MIT */
/*
 * kv.h: the small ordered key-value store with transactions that the
 * storage engines are built on. The job state machine (jobs.c, queues.c,
 * store.c) is written once over this interface; kv_lmdb.c (LMDB named
 * databases, durable) and kv_mem.c (red-black trees with an undo log, not
 * durable) implement it, and kv_pg.c (PostgreSQL tables, shared by
 * several mqd processes). Nothing here leaks MDB_* or errno: each backend
 * maps its errors to mq_status in one place.
 *
 * Conventions:
 *  - Keys compare as unsigned bytes (memcmp), shorter first on a tie.
 *  - get/seek/next return MQ_NOT_FOUND for "no such key" / "no more keys"
 *    and do not write err then. Any other non-OK status is a transaction
 *    failure: err says why and the caller must abort the transaction.
 *  - del of a missing key is MQ_NOT_FOUND too.
 *  - Values and keys returned are borrowed: valid until the next write
 *    (put/del) to the same database in the transaction, or its end (jobs.c
 *    reads a record, writes another database, then uses the record).
 *  - Each database has one implicit cursor per transaction: seek positions
 *    it at the first key >= k, next moves it on. Any write to that
 *    database invalidates it (next then fails with MQ_INTERNAL): seek again.
 *  - One write transaction at a time per environment.
 */
#ifndef MQ_STORAGE_KV_H
#define MQ_STORAGE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

typedef struct kv_env kv_env;
typedef struct kv_txn kv_txn;

/* kv_db names the databases (LMDB named databases; one tree each in the
 * memory backend). record.h documents their keys and values. The values
 * never change: kv_lmdb.c maps them to the database names on disk. */
typedef enum kv_db {
	KV_META = 0,
	KV_QUEUES,
	KV_QIDS,
	KV_MSGS,
	KV_READY,
	KV_TIMERS,
	KV_DEDUP,
	KV_DEAD,
	KV_GROUPS,
	KV_EXPIRY,
	KV_DEDUPEXP,
	/* Schedules and topics (record_pubsub.h). */
	KV_SCHEDULES,
	KV_SCHED_DUE,
	KV_TOPICS,
	KV_SUBS,
	KV_SUB_TOPIC,
	KV_NDB
} kv_db;

/* kv_val is a borrowed byte range. */
typedef struct kv_val {
	const void *data;
	size_t len;
} kv_val;

/* kv_open_opts are the backend's settings, fixed before open. */
typedef struct kv_open_opts {
	const char *path;      /* data directory (lmdb) */
	uint64_t map_size;     /* initial map size, bytes */
	uint64_t map_size_max; /* upper bound for growth, bytes */
	bool relaxed;          /* no sync per commit; sync() flushes */
	const char *conninfo;  /* postgres: libpq connection string or URI */
	const char *schema;    /* postgres: the schema of mq's tables (NULL = "mq") */
} kv_open_opts;

/* kv_ops is one backend. */
typedef struct kv_ops {
	const char *engine;
	/* shared: other processes write the same data (postgres). The store
	 * then re-reads its counters at every begin; the backend serializes
	 * the transactions of all processes. */
	bool shared;
	mq_status (*open)(kv_env **out, const kv_open_opts *o, store_err *err);
	void (*close)(kv_env *e);
	const char *(*durability)(const kv_env *e);
	mq_status (*sync)(kv_env *e, store_err *err);
	void (*usage)(const kv_env *e, uint64_t *used_bytes, uint64_t *map_bytes);
	mq_status (*begin)(kv_env *e, kv_txn **out, store_err *err);
	mq_status (*commit)(kv_txn *t, store_err *err); /* ends t whatever the result */
	void (*abort)(kv_txn *t);
	mq_status (*get)(kv_txn *t, kv_db db, const void *k, size_t klen, kv_val *v,
	                 store_err *err);
	mq_status (*put)(kv_txn *t, kv_db db, const void *k, size_t klen, const void *v,
	                 size_t vlen, store_err *err);
	mq_status (*del)(kv_txn *t, kv_db db, const void *k, size_t klen, store_err *err);
	/* del_later deletes k without telling whether it was there: a backend
	 * may send it on and check later. A missing key is then fine, or, when
	 * must, a transaction failure (DATA_LOSS: an index out of step),
	 * reported by a later call or the commit. NULL = use del. */
	mq_status (*del_later)(kv_txn *t, kv_db db, const void *k, size_t klen, bool must,
	                       store_err *err);
	/* prefetch reads keys[0..n) of db ahead, together, for the gets of
	 * them that follow (an engine whose every read is a round trip). A
	 * write to one of those keys forgets it. Failures as get's. NULL =
	 * nothing to gain. */
	mq_status (*prefetch)(kv_txn *t, kv_db db, const kv_val *keys, size_t n, store_err *err);
	/* preseek reads the first entries of each of dbs[0..n) together, for
	 * the seeks from their first key (klen 0) that follow before any
	 * write to them. NULL = nothing to gain. */
	mq_status (*preseek)(kv_txn *t, const kv_db *dbs, size_t n, store_err *err);
	mq_status (*seek)(kv_txn *t, kv_db db, const void *k, size_t klen, kv_val *key, kv_val *val,
	                  store_err *err);
	mq_status (*next)(kv_txn *t, kv_db db, kv_val *key, kv_val *val, store_err *err);
	/* room tells whether the transaction may write about `bytes` of new
	 * data. LMDB writes copy-on-write, so any write needs free pages, and
	 * the backend keeps a reserve at its size limit: a push (drain false)
	 * may not use it, a write that drains queues (drain true: a pull or a
	 * timer rewriting a record) may. MQ_OK counts the bytes against the
	 * transaction; MQ_RESOURCE_EXHAUSTED (err says why) is a request
	 * error: the transaction goes on. NULL = no limit. */
	mq_status (*room)(kv_txn *t, size_t bytes, bool drain, store_err *err);
	/* Savepoints, one level: savepoint marks the transaction's state;
	 * rollback undoes every change made since and ends the savepoint;
	 * release keeps them and ends it. Cursors are invalid after any of
	 * the three (seek again). A failure is a transaction failure. */
	mq_status (*savepoint)(kv_txn *t, store_err *err);
	mq_status (*release)(kv_txn *t, store_err *err);
	void (*rollback)(kv_txn *t);
	/* copy writes a consistent, compacted copy of the whole environment
	 * (a file the backend can open as its data file) to fd, from fd's
	 * current offset on, with sequential writes. It reads a snapshot of
	 * its own, so it may run on another thread while transactions run
	 * (the one call of kv_ops that may); it never blocks them, but the
	 * map does not grow while a copy runs. NULL = the backend keeps
	 * nothing to copy. */
	mq_status (*copy)(kv_env *e, int fd, store_err *err);
	/* clock is the backend's time, unix ms (postgres: the database's,
	 * as of the last begin); NULL = the local wall clock. Any thread. */
	uint64_t (*clock)(const kv_env *e);
	/* notify tells the other processes, once t commits, that queue may
	 * have ready messages. NULL = nothing to tell (not shared). */
	void (*notify)(kv_txn *t, const char *queue);
	/* watch calls fn from a thread of the backend with the queues other
	 * processes notified (NULL = any queue: some notifications may have
	 * been missed); unwatch stops it (close does too). NULL = none. */
	mq_status (*watch)(kv_env *e, store_ready_fn fn, void *arg, store_err *err);
	void (*unwatch)(kv_env *e);
} kv_ops;

extern const kv_ops store_kv_lmdb;
extern const kv_ops store_kv_mem;
extern const kv_ops store_kv_pg;

#endif
