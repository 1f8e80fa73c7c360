/* SPDX-License-Identifier: MIT */
/*
 * bench.h: what mqbench's harness (run.c, main.c) shares with the systems it
 * drives (sys_mq.c, and the peers sys_beanstalkd.c, sys_redis.c,
 * sys_nats.c). The harness owns timing, the backlog cap, pacing, latency
 * samples, server processes and reporting; a system owns its server's
 * command line and its client loops. mq is driven through the public
 * <mq/mq.h> only; the peers through their own C clients or text protocol.
 */
#ifndef MQBENCH_BENCH_H
#define MQBENCH_BENCH_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* lat holds one thread's latency samples of one call type, microseconds. */
typedef struct lat {
	uint32_t *us;
	size_t n, cap;
} lat;

/* pct is the summary of a set of samples, milliseconds. */
typedef struct pct {
	double p50, p99, p999;
	size_t n;
} pct;

/* bserver is one server process started by mqbench: a fresh temp dir, a
 * loopback endpoint, killed and removed by server_stop() (or by the
 * signal/exit cleanup when mqbench fails or is interrupted). */
typedef struct bserver {
	pid_t pid;
	char dir[256];       /* temp dir: data dir, socket, logs */
	char data[300];      /* the data dir whose size is the disk usage */
	char url[320];       /* mq: nng URL; peers: host:port */
	int port;            /* peers: TCP port on 127.0.0.1 */
	char durability[64]; /* what a reply means, short */
	char note[256];      /* caveat shown in the output ("" = none) */
	/* mq on PostgreSQL with --instances N: instances 2..N (each its own
	 * process, dir and url; owned and stopped by sys_mq.c); their CPU
	 * counts with this one's (srv_cpu_s). */
	struct bserver *more;
	int n_more;
	pid_t pg_pid;       /* PostgreSQL's postmaster whose CPU is measured, or 0 */
	char pg_schema[64]; /* the schema the run's tables live in ("" = none) */
} bserver;

struct bsys;

/* brun is one timed run of one scenario against one system. */
typedef struct brun {
	const struct bsys *sys;
	bserver *srv;
	const char *queue;
	int producers, consumers;
	int inflight;      /* requests (windows) in flight per connection */
	int batch;         /* messages per request (push) */
	size_t size;       /* payload bytes */
	bool natural;      /* mq: async producers, batch pull + ack batch */
	bool legacy_async; /* mq legacy modes: --async */
	double rate;       /* target messages/s over all producers; 0 = max */
	uint64_t max_messages;
	bool capped;          /* cycle: backlog cap applies */
	unsigned backlog_cap; /* pushed but not acked at most (512) */
	sem_t backlog;        /* one token per message that may still be pushed */
	atomic_bool stop, measuring;
	atomic_uint_fast64_t pushed, pulled, acked, errors;
	uint64_t t0_us; /* when the workers started (pacing origin) */
	/* tick (optional) is called by run_measure about every tick_s seconds
	 * of the measuring window, on the main thread (the soak's samples). */
	void (*tick)(struct brun *r, double elapsed_s);
	double tick_s;
	/* window (optional) is called at the start (end false) and the end
	 * (end true) of the measuring window, on the main thread. */
	void (*window)(struct brun *r, bool end);
	char first_error[256];
	pthread_mutex_t err_mu;
} brun;

enum { ROLE_PRODUCER = 0, ROLE_CONSUMER = 1 };

/* bw is one client thread. */
typedef struct bw {
	brun *run;
	int role;
	int idx; /* producer or consumer number */
	int sub; /* thread number within it (mq legacy threads) */
	pthread_t th;
	lat push_lat, pull_lat, ack_lat;
	pthread_mutex_t mu; /* callbacks on other threads add samples */
	uint64_t seq;       /* messages pushed by this thread */
	uint64_t sent;      /* messages sent (pacing) */
	uint8_t *buf;       /* payload scratch, run->size (+16) bytes */
	void *conn;         /* the system's connection state */
} bw;

/* bsys is one system mqbench can drive. */
typedef struct bsys {
	const char *name;
	/* unavailable: NULL when usable, else why not (built without its
	 * client, server program missing). */
	const char *(*unavailable)(void);
	/* start starts a server in srv (fresh dir); relaxed picks the
	 * periodic-sync mode. 0 or -1 with err set. */
	int (*start)(bserver *srv, bool relaxed, char *err, size_t errlen);
	/* stop (optional) stops an in-process server before server_stop(). */
	void (*stop)(bserver *srv);
	/* prepare runs once before the workers: create / empty the queue. */
	int (*prepare)(brun *run, char *err, size_t errlen);
	/* prefill queues n messages as fast as it can (not timed). */
	int (*prefill)(brun *run, uint64_t n, char *err, size_t errlen);
	/* threads_per: client threads per producer/consumer (default 1). */
	int (*threads_per)(const brun *run, int role);
	/* open/close a connection for a worker; sub > 0 threads of a legacy
	 * mq producer share the connection of sub 0 (see sys_mq.c). */
	int (*open)(bw *w, char *err, size_t errlen);
	void (*close)(bw *w);
	void *(*producer)(void *w);
	void *(*consumer)(void *w);
} bsys;

/* bresult is what one run measured. */
typedef struct bresult {
	double seconds, rate;
	uint64_t pushed, acked, errors;
	pct push, pull, ack;
	double cpu_s; /* server process CPU (utime + stime) over the window */
	bool have_cpu;
	double pg_cpu_s; /* PostgreSQL (postmaster + children) CPU, same window */
	bool have_pg_cpu;
	/* PostgreSQL's commits (pg_stat_database.xact_commit of the database)
	 * and WAL flushes (pg_stat_wal.wal_sync) over the window, when read. */
	uint64_t pg_commits, pg_wal_syncs;
	bool have_pg_stats;
	char durability[64];
	char first_error[256];
} bresult;

/* run_measure starts the workers, waits warmup s, measures for seconds
 * (or until --max-messages), stops and joins them. */
int run_measure(brun *r, double warmup, double seconds, bresult *out);

/* ---- run.c: helpers for the systems' loops ---- */
uint64_t now_us(void);
void lat_add(brun *r, lat *l, uint64_t us);
void lat_add_locked(bw *w, lat *l, uint64_t us);
/* run_take waits until n more messages may be pushed (backlog cap, pacing,
 * --max-messages); false when the run is over. */
bool run_take(bw *w, int n);
/* run_give returns n tokens (a consumer acked, or a push failed). */
void run_give(brun *r, int n);
void run_pushed(brun *r, uint64_t n);
void run_acked(brun *r, uint64_t n);
void run_pulled(brun *r, uint64_t n);
bool run_stopped(brun *r);
/* run_error counts an error; the first few are printed. */
void run_error(brun *r, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* payload_stamp fills w->buf for the next message: a sequence number and
 * the send time in the first 16 bytes (so bodies differ), 'x' after. */
const uint8_t *payload_stamp(bw *w);
/* payload_time reads the send time payload_stamp wrote (0 if too short). */
uint64_t payload_time(const void *p, size_t len);

/* ---- proc.c: server processes, ports, dirs ---- */
int server_mkdir(bserver *srv, const char *tag, char *err, size_t errlen);
/* server_spawn starts argv[0] (searched in PATH) with stdout/stderr to
 * srv->dir/server.log; the child dies with mqbench (PDEATHSIG). */
int server_spawn(bserver *srv, const char *const *argv, char *err, size_t errlen);
/* server_wait_tcp waits until 127.0.0.1:port accepts (bounded). */
int server_wait_tcp(bserver *srv, double seconds, char *err, size_t errlen);
/* server_wait_path waits until path exists (mqd's ipc socket), bounded. */
int server_wait_path(bserver *srv, const char *path, double seconds, char *err, size_t errlen);
void server_stop(bserver *srv);
/* server_kill stops the process only (SIGTERM, then SIGKILL). */
void server_kill(bserver *srv);
int free_port(void);
double proc_cpu_s(pid_t pid);
/* srv_cpu_s is the CPU of srv's process and of its further instances. */
double srv_cpu_s(const bserver *srv);
/* tree_cpu_s is the CPU of pid and its children, live (utime + stime) and
 * reaped (cutime + cstime): PostgreSQL's postmaster and its backends. */
double tree_cpu_s(pid_t pid);
/* dir_bytes is the disk space used by the files under path (st_blocks). */
uint64_t dir_bytes(const char *path);
/* dir_apparent_bytes is the sum of the files' sizes under path. */
uint64_t dir_apparent_bytes(const char *path);
int tcp_connect(int port);
bool program_exists(const char *name);
void cleanup_install(void);
/* cleanup_signal_hook (optional) runs in mqbench's signal handler after
 * the servers are killed: async-signal-safe calls only (pg.c's cluster). */
extern void (*volatile cleanup_signal_hook)(void);

/* ---- the systems ---- */
extern const bsys sys_mq;
extern const bsys sys_beanstalkd;
extern const bsys sys_redis;
extern const bsys sys_nats;
/* sys_limit.c: this stack's own limit for scenario 1, one nng REQ/REP
 * round trip (ipc) plus one durable LMDB commit per request, measured by
 * mqbench in-process with the bare libraries. */
extern const bsys sys_limit;
/* sys_pgdirect.c: a libpq client doing the cycle directly on PostgreSQL,
 * as pgmq / River do (scenario pgdirect). */
extern const bsys sys_pgdirect;

/* sys_mq options (main.c sets them). */
extern const char *mq_opt_url; /* external broker, or NULL */
extern const char *mq_opt_mqd; /* mqd to start, or NULL */
extern const char *mq_opt_mqd_args[16];
extern int mq_opt_n_mqd_args;
extern const char *mq_opt_storage;   /* NULL: mqd's default (lmdb) */
extern const char *mq_opt_pg_schema; /* --pg-schema, or NULL: one per run */
extern int mq_opt_instances;         /* mqd processes per run (postgres) */
/* mq_run_consume fills the queue with n messages, then times mq_consumer
 * with `workers` no-op handler threads draining it (legacy "consume"). */
int mq_run_consume(brun *r, int workers, uint64_t n, double seconds, bresult *out);

/* ---- pg.c: the PostgreSQL cluster (--storage postgres, pgdirect) ---- */
extern const char *pg_opt_conninfo; /* --pg, or NULL: mqbench starts one */
/* pg_unavailable: NULL when mqbench can drive PostgreSQL, else why not. */
const char *pg_unavailable(void);
/* pg_cluster_ensure starts mqbench's own cluster with tests/pg.sh (once per
 * process, stopped at exit) unless --pg was given; sets *conninfo and
 * *postmaster (0 when the cluster is not mqbench's). */
int pg_cluster_ensure(const char **conninfo, pid_t *postmaster, char *err, size_t errlen);
/* pg_schema_new names a fresh schema for one run (mqbench_PID_N). */
void pg_schema_new(char *buf, size_t len, const char *tag);
/* pg_exec runs one SQL text (no result rows wanted) on a new connection. */
int pg_exec(const char *sql, char *err, size_t errlen);
/* pg_durability describes the server's commit settings ("synchronous_commit
 * on, fsync on"). */
int pg_durability(char *buf, size_t len, char *err, size_t errlen);

/* pg_rel is one table of a schema, as the soak samples it. */
typedef struct pg_rel {
	char name[64];
	uint64_t total_bytes, index_bytes; /* pg_total_relation_size, pg_indexes_size */
	uint64_t live, dead;               /* pg_stat_user_tables n_live_tup, n_dead_tup */
	uint64_t vacuums, autovacuums;     /* vacuum_count (manual), autovacuum_count */
} pg_rel;

/* pg_schema_rels reads up to max tables of schema; *n is how many. The
 * connection is kept between calls (pg_schema_rels_close ends it). */
int pg_schema_rels(const char *schema, pg_rel *rels, int max, int *n, char *err, size_t errlen);
void pg_schema_rels_close(void);
/* pg_db_stats reads the database's commits and the server's WAL flushes so
 * far (cumulative statistics: backends report them at most every second,
 * so take them over windows of several seconds). */
int pg_db_stats(uint64_t *commits, uint64_t *wal_syncs, char *err, size_t errlen);

#endif
