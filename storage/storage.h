/* SPDX-License-Identifier: MIT */
/*
 * storage.h: the storage engine contract. The only header of storage/ that
 * the broker includes.
 *
 * The job state machine lives here, because every transition is a durable
 * transaction:
 *
 *            push (no delay)                 pull (lease)
 *   push ──────────────────► READY ─────────────────────────► LEASED ──ack──► (deleted)
 *     │ delay                 ▲  ▲                              │  │
 *     ▼                       │  └──── nack (no delay) ─────────┘  │
 *   DELAYED ──not-before──────┘       lease expiry, attempts left  │
 *     ▲                                                            │
 *     └───────────────── nack with delay ──────────────────────────┤
 *                                                                  │
 *   DEAD ◄──── nack or lease expiry with attempts >= max_attempts ─┤
 *        ◄──── term (at once, whatever the attempts) ──────────────┘
 *   DEAD ──── redrive (attempts reset) ────► READY (same or another queue)
 *
 * A message's attempts count its deliveries: pull increments it. A DEAD
 * message keeps why it died (store_msg.dead_reason) and every message
 * keeps its last STORE_HISTORY_MAX failed attempts (nacked, lease expired,
 * termed) with their time and error.
 *
 * Engines: "lmdb" (durable, the default), "memory" (not durable) and
 * "postgres" (tables in a PostgreSQL schema that several mqd processes
 * share; docs/postgres.md). The contract is semantic (push, pull, ack
 * ...), not LMDB's shape, so that engines of other kinds can implement it.
 * A shared engine serializes the transactions of all processes, takes its
 * time from the database (store_now), and tells each process what the
 * others made ready (store_watch).
 *
 * Transactions and group commit: every operation runs inside a write
 * transaction (store_begin ... store_commit). The broker's single writer
 * applies many requests in one transaction and answers them only after
 * store_commit returns MQ_OK, which means durable on disk in the "durable"
 * mode. One transaction is open at a time per store; a store is used by one
 * thread at a time (the broker's writer).
 *
 * Errors: every operation returns an mq_status and, on failure, writes a
 * human-readable reason into its store_err. Two kinds:
 *  - request errors (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
 *    FAILED_PRECONDITION, and RESOURCE_EXHAUSTED for a limit of the queue):
 *    the operation changed nothing; the transaction goes on;
 *  - transaction failures (disk full, map full, I/O error, corruption):
 *    store_txn_failed() then returns true, and the only valid call left is
 *    store_abort(). Nothing of the transaction is kept.
 * Callers never see MDB_* or errno values.
 *
 * Time: the store's clock (store_config.clock, unix milliseconds) stamps
 * enqueue times, lease expiries and not-before times. Tests may install a
 * controllable clock.
 */
#ifndef MQ_STORAGE_H
#define MQ_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mq/status.h"

typedef struct store store;
typedef struct store_txn store_txn;

/* STORE_ERR_MAX is the size of a store_err message buffer. */
#define STORE_ERR_MAX 256

/* store_err carries the human-readable reason of a failed operation. */
typedef struct store_err {
	char msg[STORE_ERR_MAX];
} store_err;

/* Defaults, used when a config field or a request field is 0. */
#define STORE_DEFAULT_LEASE_MS     30000u
#define STORE_DEFAULT_MAX_ATTEMPTS 5u
#define STORE_DEFAULT_MAP_SIZE     (64ull << 20)         /* 64 MiB */
#define STORE_DEFAULT_MAP_SIZE_MAX (64ull << 30)         /* 64 GiB */
#define STORE_MAX_LEASE_MS         (12u * 3600u * 1000u) /* 12 h, as SQS */

typedef enum store_durability {
	/* Every commit is on disk before store_commit returns (LMDB's default
	 * syncs: data pages, then the meta page). Survives power loss. */
	STORE_DURABLE = 0,
	/* Commits are written but not synced; the broker calls store_sync()
	 * every few milliseconds. A crash of the machine can lose the last
	 * interval's commits, never corrupt the store. Only when asked for. */
	STORE_RELAXED = 1,
} store_durability;

typedef uint64_t (*store_clock_fn)(void *arg); /* unix time, ms */

/* store_ready_fn is called when a queue may have new ready messages: a
 * push, a nack without delay, a lease expiry, a promotion of delayed
 * messages. It is called on the thread running the operation, inside the
 * transaction, so the callee must not call back into the store; the
 * broker uses it to mark parked pulls to serve before the commit. */
typedef void (*store_ready_fn)(void *arg, const char *queue);

typedef struct store_config {
	const char *engine;            /* "lmdb" (NULL = lmdb), "memory" or "postgres" */
	const char *path;              /* data directory (lmdb); created if missing */
	const char *pg_conninfo;       /* postgres: libpq connection string or URI */
	const char *pg_schema;         /* postgres: schema of mq's tables (NULL = "mq") */
	uint64_t map_size;             /* initial LMDB map size, bytes (0 = default) */
	uint64_t map_size_max;         /* the map grows up to this (0 = default) */
	store_durability durability;   /* STORE_DURABLE unless asked by name */
	uint32_t default_lease_ms;     /* for queues whose config says 0 (0 = 30 s) */
	uint32_t default_max_attempts; /* for queues whose config says 0 (0 = 5) */
	store_clock_fn clock;          /* NULL = wall clock */
	void *clock_arg;
	store_ready_fn on_ready; /* may be NULL */
	void *ready_arg;
} store_config;

/* store_open opens (creating if needed) the engine named by cfg->engine.
 * On failure nothing is left to close and err says why, e.g. the data
 * directory is locked by another process (FAILED_PRECONDITION), a newer
 * schema version (FAILED_PRECONDITION), no permission (PERMISSION_DENIED). */
mq_status store_open(store **out, const store_config *cfg, store_err *err);

/* store_close closes the store; no transaction may be open. NULL is fine. */
void store_close(store *s);

/* store_engine returns the engine's name: "lmdb", "memory" or "postgres". */
const char *store_engine(const store *s);

/* store_shared tells whether other processes write the same store
 * (postgres): then timers they set are only seen by reading the store,
 * so a broker re-reads store_next_due now and then even when idle. */
bool store_shared(const store *s);

/* store_durability_name returns "durable", "relaxed", or "none" (memory). */
const char *store_durability_name(const store *s);

/* store_now returns the store's clock, unix ms: cfg.clock when set, else
 * the engine's (postgres: the database's clock as of the last begin, read
 * through the local one), else the wall clock. Any thread may call it. */
uint64_t store_now(const store *s);

/* store_watch makes a shared engine call fn, from a thread of its own,
 * with each queue in which another process may have made messages ready
 * (NULL = any queue: after a reconnection, some news may have been
 * missed). fn must not call into the store. OK and nothing happens for
 * engines not shared. store_unwatch stops it and waits for the thread
 * (store_close does too); call it before what fn uses goes away. */
mq_status store_watch(store *s, store_ready_fn fn, void *arg, store_err *err);
void store_unwatch(store *s);

/* store_sync flushes what relaxed-mode commits wrote; a no-op otherwise. */
mq_status store_sync(store *s, store_err *err);

/* store_usage reports the bytes in use and the current map size (for the
 * LMDB engine; 0 where it does not apply). */
void store_usage(const store *s, uint64_t *used_bytes, uint64_t *map_bytes);

/* ---- Backup and restore ------------------------------------------------ *
 *
 * A backup file is self-describing and self-checking (all integers
 * little-endian):
 *
 *   offset 0   8 bytes  magic "MQBACKUP"
 *          8   u32      format version (STORE_BACKUP_FORMAT, 1)
 *         12   u32      schema version of the store (STORE_SCHEMA_VERSION
 *                       of the mqd that made it; record.h)
 *         16   8 bytes  engine name, NUL-padded ("lmdb")
 *         24   u64      creation time, unix ms
 *         32   u64      data length N
 *         40   24 bytes zero (reserved)
 *         64   N bytes  the engine's data: for lmdb a compacted copy of
 *                       data.mdb (mdb_env_copyfd2, MDB_CP_COMPACT)
 *       64+N   32 bytes BLAKE2b-256 (libsodium crypto_generichash) of
 *                       bytes 0 .. 64+N-1
 *
 * store_backup_info.checksum is the BLAKE2b-256 of the whole file, trailer
 * included: what a receiver of the file computes over every byte it got. */

#define STORE_BACKUP_MAGIC       "MQBACKUP"
#define STORE_BACKUP_FORMAT      1u
#define STORE_BACKUP_HEADER_LEN  64u
#define STORE_BACKUP_TRAILER_LEN 32u
#define STORE_BACKUP_HASH_LEN    32u

typedef struct store_backup_info {
	uint64_t size;           /* bytes of the whole file */
	uint64_t data_len;       /* N: the engine's data */
	uint32_t schema_version; /* of the store it was taken from */
	uint64_t created_ms;
	uint8_t checksum[STORE_BACKUP_HASH_LEN]; /* BLAKE2b-256 of the whole file */
} store_backup_info;

/* store_backup_check tells whether the engine can make backups:
 * UNIMPLEMENTED (err says why) for the memory engine. */
mq_status store_backup_check(const store *s, store_err *err);

/* store_backup writes a backup of the store (format above) to fd, which
 * must be a regular file open for reading and writing, empty, at offset
 * 0: the copy is written sequentially, then read back to be checksummed,
 * then the header and the trailer are written and fd is fsync'ed. The copy
 * is a consistent snapshot: every transaction committed before the call
 * began, none that commits during it. Unlike every other call here it may
 * run on any thread while another thread uses the store (the broker's
 * writer goes on committing; nothing waits for the copy, but the LMDB map
 * does not grow until it ends). info (may be NULL) describes the file.
 * UNIMPLEMENTED for the memory engine; an I/O error is reported with the
 * step that failed. */
mq_status store_backup(store *s, int fd, store_backup_info *info, store_err *err);

/* store_backup_read_info reads and checks a backup file's header, length
 * and checksum (the whole file is read). INVALID_ARGUMENT: not an mq
 * backup (no magic, unknown format); DATA_LOSS: truncated or damaged
 * (length or checksum); FAILED_PRECONDITION: a schema newer than this
 * build's, or an engine it does not know. */
mq_status store_backup_read_info(const char *file, store_backup_info *info, store_err *err);

/* store_restore restores the backup `file` into data_dir, which must not
 * exist (it is created) or be empty (else FAILED_PRECONDITION; staging
 * directories an interrupted restore left, ".restore-*", do not count and
 * are removed). The file is checked first (store_backup_read_info). Its
 * data is extracted into a staging directory inside data_dir
 * (".restore-XXXXXX": same file system, no write access to the parent
 * needed), fsync'ed and opened with store_open as a check (which also
 * refuses a schema newer than this build's); only then is data.mdb renamed
 * into data_dir, which is fsync'ed. On failure data_dir is left as it was
 * (removed again if this call created it). info may be NULL. */
mq_status store_restore(const char *file, const char *data_dir, store_backup_info *info,
                        store_err *err);

/* ---- Transactions ------------------------------------------------------ */

mq_status store_begin(store *s, store_txn **out, store_err *err);

/* store_commit makes the transaction's changes durable (per the
 * durability mode) and frees t, whatever the result. A failure means none
 * of the changes are kept. */
mq_status store_commit(store_txn *t, store_err *err);

/* store_abort discards the transaction's changes and frees t. */
void store_abort(store_txn *t);

/* store_txn_failed tells whether an operation hit a transaction failure;
 * then only store_abort is allowed. */
bool store_txn_failed(const store_txn *t);

/* Savepoints (one level): store_savepoint marks the transaction's state;
 * store_rollback undoes every change made since (records, indexes, queue
 * counters, queues created, ids handed out) and ends the savepoint;
 * store_release keeps the changes and ends it. A transaction failure
 * inside a savepoint still fails the whole transaction. Used for
 * all-or-nothing requests (an atomic push) inside a group commit. */
mq_status store_savepoint(store_txn *t, store_err *err);
mq_status store_release(store_txn *t, store_err *err);
void store_rollback(store_txn *t);

/* ---- Queues ------------------------------------------------------------ */

#define STORE_MAX_RETRY_MS (24u * 3600u * 1000u) /* longest backoff, 24 h */

typedef struct store_queue_config {
	uint32_t lease_ms;     /* 0 = the store's default */
	uint32_t max_attempts; /* 0 = the store's default */
	/* Retry backoff of a nack without delay: the message waits
	 * min(retry_base_ms * 2^(attempts-1), retry_max_ms) ms, +-20% jitter.
	 * retry_base_ms 0 = no backoff (ready at once); retry_max_ms 0 =
	 * STORE_MAX_RETRY_MS. Both at most STORE_MAX_RETRY_MS, and
	 * retry_max_ms >= retry_base_ms when both are set. */
	uint32_t retry_base_ms;
	uint32_t retry_max_ms;
	/* Messages (ready + delayed + leased) beyond which a push is
	 * RESOURCE_EXHAUSTED; 0 = unlimited. Dead messages do not count. */
	uint64_t max_length;
	/* Message TTL: a message older than this goes DEAD with reason
	 * "expired"; 0 = none. */
	uint64_t max_age_ms;
	/* At most this many messages handed out per second; 0 = no limit. */
	uint32_t rate_limit;
	/* How long a dedup key is held (STORE_DEDUP_SCOPE_*). */
	uint32_t dedup_scope;
	/* STORE_DEDUP_SCOPE_WINDOW: how long after the ack; 0 = 5 min. */
	uint64_t dedup_window_ms;
	/* Queue that receives this queue's dead messages; "" = they stay. */
	char dead_letter_queue[MQ_NAME_MAX + 1];
} store_queue_config;

/* Dedup scopes: while a key is held, a push with it is a duplicate. */
#define STORE_DEDUP_SCOPE_ACKED       0u /* while waiting or leased (default) */
#define STORE_DEDUP_SCOPE_WAITING     1u /* while ready or delayed only */
#define STORE_DEDUP_SCOPE_WINDOW      2u /* until acked, then dedup_window_ms more */
#define STORE_DEDUP_WINDOW_DEFAULT_MS (5u * 60u * 1000u)
#define STORE_MAX_AGE_MS              (366ull * 24 * 3600 * 1000) /* longest TTL */

typedef struct store_queue_stats {
	uint64_t ready, delayed, in_flight, dead;
	uint64_t pushed_total, acked_total, nacked_total, expired_total;
	uint64_t deduplicated_total, dead_total;
	uint64_t redriven_total; /* dead messages moved back by redrive */
	/* Computed when read, not stored: now - enqueue time of the oldest
	 * ready message; 0 when none is ready. */
	uint64_t oldest_ready_age_ms;
} store_queue_stats;

typedef struct store_queue_info {
	char name[MQ_NAME_MAX + 1];
	store_queue_config config; /* as stored: 0 means "the default" */
	store_queue_stats stats;
	uint64_t created_ms;
	bool paused; /* pushes are accepted; nothing is handed out */
} store_queue_info;

/* State bits for purge masks. */
#define STORE_STATE_READY   (1u << 0)
#define STORE_STATE_DELAYED (1u << 1)
#define STORE_STATE_LEASED  (1u << 2)
#define STORE_STATE_DEAD    (1u << 3)
#define STORE_STATE_ALL     0xfu

/* store_queue_create creates a queue. An existing queue is ALREADY_EXISTS,
 * or OK with *created = false when if_not_exists. info may be NULL. */
mq_status store_queue_create(store_txn *t, const char *name, const store_queue_config *cfg,
                             bool if_not_exists, store_queue_info *info, bool *created,
                             store_err *err);

/* Fields of store_queue_config for store_queue_update's mask. */
#define STORE_QCFG_LEASE_MS          (1u << 0)
#define STORE_QCFG_MAX_ATTEMPTS      (1u << 1)
#define STORE_QCFG_RETRY_BASE_MS     (1u << 2)
#define STORE_QCFG_RETRY_MAX_MS      (1u << 3)
#define STORE_QCFG_MAX_LENGTH        (1u << 4)
#define STORE_QCFG_MAX_AGE_MS        (1u << 5)
#define STORE_QCFG_RATE_LIMIT        (1u << 6)
#define STORE_QCFG_DEDUP_SCOPE       (1u << 7)
#define STORE_QCFG_DEDUP_WINDOW_MS   (1u << 8)
#define STORE_QCFG_DEAD_LETTER_QUEUE (1u << 9)
#define STORE_QCFG_ALL               0x3ffu

/* store_queue_config_check validates a config (limits, the dead-letter
 * queue's name, not the queue itself): INVALID_ARGUMENT with a reason.
 * name is the queue's own name. */
mq_status store_queue_config_check(const char *name, const store_queue_config *cfg, store_err *err);

/* store_queue_update changes the fields of the queue's config named by
 * mask (STORE_QCFG_*) to those of cfg; the others are kept. The result
 * is checked as at creation. Messages already stored keep what was
 * decided for them (a not-before time, a lease); the new values apply to
 * later transitions. info (may be NULL) gets the queue after the change. */
mq_status store_queue_update(store_txn *t, const char *name, const store_queue_config *cfg,
                             uint32_t mask, store_queue_info *info, store_err *err);

/* store_queue_pause pauses (paused = true) or resumes a queue. A paused
 * queue accepts pushes, acks, nacks and the rest, but store_pull hands
 * nothing out; resuming wakes parked consumers (store_ready_fn). Pausing
 * a paused queue is OK. info may be NULL. */
mq_status store_queue_pause(store_txn *t, const char *name, bool paused, store_queue_info *info,
                            store_err *err);

/* store_queue_get reads a queue's config and stats; NOT_FOUND if none. */
mq_status store_queue_get(store_txn *t, const char *name, store_queue_info *info, store_err *err);

/* store_queue_rate_limit reads a queue's rate_limit (0 = none) without the
 * computed stats: cheap enough for every pull. NOT_FOUND if none. */
mq_status store_queue_rate_limit(store_txn *t, const char *name, uint32_t *rate, store_err *err);

/* store_queue_cb receives one queue; return non-zero to stop early. */
typedef int (*store_queue_cb)(void *arg, const store_queue_info *info);

/* store_queue_list calls cb for up to limit queues in name order, starting
 * after the name `after` (NULL or "" = from the first). *more tells whether
 * queues follow the last one passed to cb. */
mq_status store_queue_list(store_txn *t, const char *after, uint32_t limit, store_queue_cb cb,
                           void *arg, bool *more, store_err *err);

/* store_queue_purge deletes the queue's messages whose state is in
 * state_mask (STORE_STATE_*); *purged counts them. Dedup keys of purged
 * messages are freed. */
mq_status store_queue_purge(store_txn *t, const char *name, uint32_t state_mask, uint64_t *purged,
                            store_err *err);

/* STORE_PURGE_SCAN_FACTOR: a bounded purge step reads at most limit times
 * this many message records. */
#define STORE_PURGE_SCAN_FACTOR 8

/* store_queue_purge_ex is one bounded step of a purge: it deletes at most
 * limit messages (0 = all, as store_queue_purge) and sets *more when some
 * may remain. *cursor (in/out, may be NULL when limit is 0) carries where
 * the next step resumes: 0 to start, then the value this call left. Each
 * step is its own durable unit; a purge interrupted between steps leaves
 * the rest of the messages in place. */
mq_status store_queue_purge_ex(store_txn *t, const char *name, uint32_t state_mask, uint32_t limit,
                               uint64_t *cursor, uint64_t *purged, bool *more, store_err *err);

/* store_queue_delete deletes a queue and every message in it. */
mq_status store_queue_delete(store_txn *t, const char *name, store_err *err);

/* ---- Messages ---------------------------------------------------------- */

typedef enum store_dedup_mode {
	STORE_DEDUP_IGNORE = 0,  /* keep the existing job; report it */
	STORE_DEDUP_REPLACE = 1, /* swap the waiting job's payload and options */
	/* REPLACE, and the not-before time becomes the later of the holder's
	 * and the push's: a burst of pushes runs once, after the last one's
	 * delay (BullMQ debounce). */
	STORE_DEDUP_DEBOUNCE = 2,
} store_dedup_mode;

#define STORE_GROUP_MAX 128u /* longest group key, bytes */

typedef struct store_header {
	const char *key;
	const char *value;
} store_header;

typedef struct store_push_msg {
	const void *payload;
	size_t payload_len;
	const char *dedup_key; /* NULL or "" = none */
	store_dedup_mode dedup_mode;
	uint64_t delay_ms; /* 0 = ready now */
	int32_t priority;  /* higher first; FIFO within a priority */
	const char *type;  /* NULL or "" = none */
	const store_header *headers;
	size_t n_headers;
	/* Ordering group (NULL or "" = none): at most one message of a group
	 * is leased at a time, and a group's messages are delivered in push
	 * order, whatever their priorities. */
	const char *group;
	/* Absolute not-before time, unix ms (0 = none; with delay_ms set too
	 * the push is INVALID_ARGUMENT; a time past is ready now). */
	uint64_t not_before_ms;
	/* Time to live, ms from the push (0 = the queue's max age only). The
	 * message expires at the earlier of the two. */
	uint64_t ttl_ms;
} store_push_msg;

typedef struct store_push_result {
	uint64_t id;
	bool duplicate; /* the dedup key was held: id is the existing job */
} store_push_result;

/* store_push stores one message in queue. A missing queue is created with
 * the default config when auto_create, else NOT_FOUND. A queue holding
 * max_length messages (ready, delayed, leased) refuses it with
 * RESOURCE_EXHAUSTED (a duplicate of a held dedup key is still answered).
 *
 * Dedup: a key is held by a job from its push until it is acked, purged,
 * deleted or goes dead. While held, a push with the same key returns the
 * holder's id with duplicate = true and: IGNORE changes nothing; REPLACE
 * replaces the holder's payload, type, headers, priority and not-before
 * time if the holder is READY or DELAYED (a LEASED holder is left as is).
 * Either way deduplicated_total is incremented. */
mq_status store_push(store_txn *t, const char *queue, bool auto_create, const store_push_msg *m,
                     store_push_result *r, store_err *err);

/* Outcomes of a failed attempt, in a message's history. */
#define STORE_OUTCOME_NACKED  1u
#define STORE_OUTCOME_EXPIRED 2u /* the lease ran out */
#define STORE_OUTCOME_TERMED  3u

#define STORE_HISTORY_MAX       8u    /* attempts kept per message, newest last */
#define STORE_HISTORY_ERROR_MAX 256u  /* an entry's error is truncated to this */
#define STORE_REASON_MAX        1024u /* a term reason is truncated to this */

/* store_attempt is one entry of a message's history (borrowed). */
typedef struct store_attempt {
	uint64_t time_ms;
	uint32_t outcome; /* STORE_OUTCOME_* */
	const char *error;
} store_attempt;

/* store_msg is a borrowed view of a message; valid only during the
 * callback that receives it. Strings are NUL-terminated; absent ones are
 * "". payload may contain any bytes. */
typedef struct store_msg {
	uint64_t id;
	const char *queue;
	const void *payload;
	size_t payload_len;
	uint32_t attempts;
	uint32_t state;           /* one STORE_STATE_* bit */
	uint64_t lease_token;     /* 0 unless leased */
	uint64_t lease_expiry_ms; /* 0 unless leased */
	uint64_t enqueued_ms;
	uint64_t not_before_ms; /* 0 unless delayed */
	int32_t priority;
	const char *dedup_key;
	const char *type;
	const store_header *headers;
	size_t n_headers;
	const char *group;       /* ordering group, "" if none */
	uint64_t expire_ms;      /* when it expires (TTL), unix ms; 0 = never */
	const char *error;       /* the last nack's error, "" if none */
	const char *dead_reason; /* why it went DEAD, "" unless DEAD */
	size_t n_history;        /* oldest first, at most STORE_HISTORY_MAX */
	store_attempt history[STORE_HISTORY_MAX];
} store_msg;

/* store_msg_cb receives one message; return non-zero to stop early. */
typedef int (*store_msg_cb)(void *arg, const store_msg *m);

/* store_pull leases up to max ready messages of queue, highest priority
 * first and oldest first within a priority, each for lease_ms (0 = the
 * queue's default, capped at STORE_MAX_LEASE_MS), with a fresh lease token,
 * attempts incremented; *n counts them. cb (may be NULL) sees each message
 * before it is leased, as it will be once leased (state LEASED, its token,
 * attempts and lease expiry); when cb returns non-zero the pull stops and
 * that message is not leased, so a caller can refuse a message it cannot
 * deliver (a full reply). An empty or paused queue is OK with *n = 0; a
 * missing queue is NOT_FOUND. */
mq_status store_pull(store_txn *t, const char *queue, uint32_t max, uint32_t lease_ms,
                     store_msg_cb cb, void *arg, uint32_t *n, store_err *err);

/* STORE_PREFETCH_MAX: the most messages one store_prefetch_messages call
 * reads ahead. */
#define STORE_PREFETCH_MAX 64u

/* store_prefetch_messages is a hint: the calls that follow in t read
 * messages ids[0..n) of queue (a batch of acks). An engine whose every read
 * is a round trip (postgres) fetches up to STORE_PREFETCH_MAX of them
 * together; others do nothing. A missing queue or message is left for the
 * call that reads it to report; only a transaction failure is an error. */
mq_status store_prefetch_messages(store_txn *t, const char *queue, const uint64_t *ids, size_t n,
                                  store_err *err);

/* store_ack deletes a leased message. NOT_FOUND when the message (or the
 * queue) does not exist; FAILED_PRECONDITION when it is not leased or the
 * token is not the current lease's. */
mq_status store_ack(store_txn *t, const char *queue, uint64_t id, uint64_t token, store_err *err);

/* store_nack ends a lease: the message goes back to READY (or DELAYED for
 * delay_ms, or for the queue's retry backoff when delay_ms is 0 and the
 * queue has retry_base_ms), or DEAD when its attempts reached the queue's
 * max_attempts.
 * error (may be NULL) is the consumer's reason. Errors as store_ack. */
mq_status store_nack(store_txn *t, const char *queue, uint64_t id, uint64_t token,
                     uint64_t delay_ms, const char *error, store_err *err);

/* store_snooze ends a lease without spending an attempt: the message goes
 * back to DELAYED for delay_ms (READY when 0), its attempts as before the
 * pull, no history entry and no nack counted. A group's head stays its
 * head. A message past its expiry goes DEAD ("expired") instead. Errors
 * as store_ack. */
mq_status store_snooze(store_txn *t, const char *queue, uint64_t id, uint64_t token,
                       uint64_t delay_ms, store_err *err);

/* store_term ends a lease by failing the message for good: it goes DEAD
 * at once whatever its attempts, with dead reason "termed: <reason>"
 * (reason may be NULL or "", truncated to STORE_REASON_MAX bytes), and a
 * TERMED entry in its history; its dedup key is freed. Errors as
 * store_ack. */
mq_status store_term(store_txn *t, const char *queue, uint64_t id, uint64_t token,
                     const char *reason, store_err *err);

/* store_extend sets a live lease to end lease_ms from now (0 = queue
 * default, capped at STORE_MAX_LEASE_MS); *expiry_ms gets the new end.
 * Errors as store_ack; an expired lease is FAILED_PRECONDITION. */
mq_status store_extend(store_txn *t, const char *queue, uint64_t id, uint64_t token,
                       uint32_t lease_ms, uint64_t *expiry_ms, store_err *err);

/* ---- Browsing (no state change) ---------------------------------------- */

/* store_message_get passes message id of queue to cb (it is not leased or
 * changed). NOT_FOUND when the queue or the message does not exist. */
mq_status store_message_get(store_txn *t, const char *queue, uint64_t id, store_msg_cb cb,
                            void *arg, store_err *err);

/* STORE_LIST_SCAN_MAX bounds the records a store_message_list call reads. */
#define STORE_LIST_SCAN_MAX 100000u

/* store_message_list calls cb for up to limit (1 or more) messages of
 * queue in id order, with an id above after_id and a state in state_mask
 * (STORE_STATE_*; 0 = all). It walks only the queue's own key range (the
 * dead index for DEAD alone) and reads at most STORE_LIST_SCAN_MAX
 * records. *next_after (may be NULL) gets the id to pass as after_id to
 * go on, and *more whether messages may follow (then call again). When cb
 * returns non-zero the listing stops before that message (the next page
 * starts with it), so a caller can refuse one that does not fit. */
mq_status store_message_list(store_txn *t, const char *queue, uint32_t state_mask,
                             uint64_t after_id, uint32_t limit, store_msg_cb cb, void *arg,
                             uint64_t *next_after, bool *more, store_err *err);

/* store_message_delete deletes message id of queue in any state, with its
 * index entry and dedup key; fixes the queue's gauges. A leased message's
 * ack then gets NOT_FOUND. NOT_FOUND when absent. *state (may be NULL)
 * gets the state it had. */
mq_status store_message_delete(store_txn *t, const char *queue, uint64_t id, uint32_t *state,
                               store_err *err);

/* STORE_REDRIVE_MAX bounds the messages one store_redrive call moves. */
#define STORE_REDRIVE_MAX 10000u

/* store_redrive moves DEAD messages of queue back to READY: attempts reset
 * to 0, dead reason cleared, history, payload, options and id kept. With
 * n_ids > 0 it moves exactly those (each must be DEAD in queue, else
 * NOT_FOUND or FAILED_PRECONDITION and nothing moves; n_ids at most
 * STORE_REDRIVE_MAX); with none it moves the oldest DEAD messages, up to
 * max (0 or above STORE_REDRIVE_MAX = STORE_REDRIVE_MAX), and *more tells
 * whether DEAD messages remain. to_queue (NULL or "" = queue) receives
 * them; a missing one is created when auto_create, else NOT_FOUND. A
 * message's dedup key (freed when it died) is taken again when free in the
 * target queue, else dropped from the message. *moved counts them. */
mq_status store_redrive(store_txn *t, const char *queue, const uint64_t *ids, size_t n_ids,
                        const char *to_queue, bool auto_create, uint32_t max, uint64_t *moved,
                        bool *more, store_err *err);

/* STORE_ORIGIN_HEADER is the reserved header that a dead-lettered message
 * carries in its dead-letter queue: the name of the queue it died in, so
 * that a redrive without a target sends it back there. The message record
 * format is unchanged (it is an ordinary header). Pushes may not set it;
 * redrive removes it. */
#define STORE_ORIGIN_HEADER "x-mq-origin-queue"

/* store_redrive_opts selects what store_redrive_ex moves. Without ids it
 * walks the queue's DEAD messages in id order (above after_id) and moves
 * those matching every criterion given; it reads at most
 * STORE_LIST_SCAN_MAX of them per call. */
typedef struct store_redrive_opts {
	const uint64_t *ids; /* exactly these (as store_redrive), or NULL */
	size_t n_ids;
	/* Where: to_queue when given; else the message's origin queue
	 * (STORE_ORIGIN_HEADER) when it has one; else the same queue. A
	 * missing target is created when auto_create, else NOT_FOUND. */
	const char *to_queue;
	bool auto_create;
	uint32_t max;              /* moved per call; 0 or above STORE_REDRIVE_MAX = that */
	uint64_t after_id;         /* only ids above this */
	const char *reason_prefix; /* NULL or "" = any dead reason */
	const char *type;          /* NULL or "" = any type */
	uint64_t dead_since_ms;    /* 0 = any; else went dead at or after (see
	                            * store_dead_time) */
} store_redrive_opts;

typedef struct store_redrive_result {
	uint64_t moved;
	bool more;           /* DEAD messages above next_after may match: call again */
	uint64_t next_after; /* the after_id of the next call */
} store_redrive_result;

/* store_redrive_ex is store_redrive with filters, origin routing and
 * paging. It is all or nothing: a request error (a missing target...)
 * moves none. redriven_total of queue counts the messages moved out. */
mq_status store_redrive_ex(store_txn *t, const char *queue, const store_redrive_opts *o,
                           store_redrive_result *r, store_err *err);

/* store_dead_time is when a DEAD message went dead: the time of its last
 * failed attempt (history), else its enqueue time. */
uint64_t store_dead_time(const store_msg *m);

/* store_tick applies due timers: leases that ended (back to READY, or DEAD
 * at max_attempts; expired_total counts them), delayed messages whose
 * time came (to READY), messages past their expiry (TTL: DEAD with reason
 * "expired", counted in dead_total; a LEASED one is left to finish and
 * expires when it comes back), and completed dedup keys whose window
 * ended (freed). It handles at most max_items (0 = no limit) so a
 * transaction stays bounded. */
mq_status store_tick(store_txn *t, uint32_t max_items, uint32_t *handled, store_err *err);

/* store_next_due returns the earliest pending timer (lease end,
 * not-before time, expiry, end of a dedup window), unix ms, or UINT64_MAX when there is none. */
mq_status store_next_due(store_txn *t, uint64_t *due_ms, store_err *err);

#endif
