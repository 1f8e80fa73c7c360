/* SPDX-License-Identifier: MIT */
/* storefx.h: the fixture the storage tests share: a store on the engine
 * named by g_engine (argv[1] of each test: "lmdb", "memory" or "postgres",
 * the last in a fresh schema of the cluster MQ_TEST_PG names) in a fresh
 * temp dir, with a test clock (fx.now) and an on_ready counter, plus
 * helpers for transactions, pushes, pulls and counters. Helpers assert
 * through cmocka, so only the test's main thread calls them. */
#ifndef STOREFX_H
#define STOREFX_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>

#include "storage.h"

/* E receives the reason of the last failed call; assertions print it. */
extern store_err E;

/* g_engine: the engine under test; main() sets it from argv[1]. */
extern const char *g_engine;

#define OK(expr)                                                                                   \
	do {                                                                                       \
		int rv_ = (expr);                                                                  \
		if (rv_ != MQ_OK)                                                                  \
			fail_msg("%s = %s: %s", #expr, mq_status_name(rv_), E.msg);                \
	} while (0)

#define ST(expr, want)                                                                             \
	do {                                                                                       \
		int rv_ = (expr);                                                                  \
		if (rv_ != (int)(want))                                                            \
			fail_msg("%s = %s, want %s: %s", #expr, mq_status_name(rv_),               \
			         mq_status_name(want), E.msg);                                     \
	} while (0)

#define T0 1000000000ull /* the test clock's start, ms */

typedef struct fx {
	char dir[256];
	char schema[64]; /* postgres: the schema of this store's tables */
	store *s;
	store_config cfg;
	uint64_t now;
	int ready_calls;
	char last_ready[MQ_NAME_MAX + 1];
} fx;

typedef struct got {
	uint64_t id, token, expiry, enqueued;
	uint32_t attempts, state;
	int32_t prio;
	char queue[MQ_NAME_MAX + 1];
	char payload[128];
	size_t payload_len;
	char type[32], dedup[32];
	size_t n_headers;
	char hk[2][16], hv[2][16];
} got;

typedef struct gots {
	got g[64];
	uint32_t n;
	uint32_t stop_after; /* 0 = never stop */
} gots;

#define assert_gauges(t, q, r, d, l, x)                                                            \
	do {                                                                                       \
		store_queue_stats s_ = stats(t, q);                                                \
		assert_int_equal(s_.ready, r);                                                     \
		assert_int_equal(s_.delayed, d);                                                   \
		assert_int_equal(s_.in_flight, l);                                                 \
		assert_int_equal(s_.dead, x);                                                      \
	} while (0)

/* storefx_setup_at opens a store in a fresh temp dir with the clock at
 * start_ms; setup() is storefx_setup_at(state, T0). teardown() closes it
 * and removes the dir. */
int storefx_setup_at(void **state, uint64_t start_ms);
int setup(void **state);
int teardown(void **state);

/* fx_ready is the store's on_ready callback: counts calls, keeps the queue. */
void fx_ready(void *arg, const char *queue);
/* is_lmdb: the engine under test is LMDB (map size, backups, lock file);
 * is_pg: PostgreSQL (MQ_TEST_PG, a fresh schema per fixture); is_durable:
 * what it stored survives a close and reopen (reopen tests make sense). */
bool is_lmdb(void);
bool is_pg(void);
bool is_durable(void);
/* storefx_engine_ok checks g_engine (and MQ_TEST_PG for postgres); false
 * after printing why. */
bool storefx_engine_ok(void);
/* fx_fresh makes the next fx_open start from an empty store where the
 * engine keeps it elsewhere than f->dir (postgres: a new schema). */
void fx_fresh(fx *f);
/* fx_open opens f->s again with f->cfg (after a store_close). */
void fx_open(fx *f);
void rmtree(const char *dir);

/* Transactions; each asserts MQ_OK. */
store_txn *begin(fx *f);
void commit(store_txn *t);

/* push_x pushes payload to q (auto-created) and returns its id; push is
 * push_x with priority 0 and no delay; push_dedup returns the result. */
uint64_t push_x(store_txn *t, const char *q, const char *payload, int32_t prio, uint64_t delay_ms);
uint64_t push(store_txn *t, const char *q, const char *payload);
store_push_result push_dedup(store_txn *t, const char *q, const char *payload, const char *key,
                             store_dedup_mode mode, int32_t prio, uint64_t delay_ms);

/* collect is a store_pull callback filling a gots (see gots.stop_after);
 * pull leases up to max into gs and returns how many; pull1 leases
 * exactly one. */
int collect(void *arg, const store_msg *m);
uint32_t pull(store_txn *t, const char *q, uint32_t max, uint32_t lease_ms, gots *gs);
got pull1(store_txn *t, const char *q, uint32_t lease_ms);

/* stats of a queue; next_due and tick wrap store_next_due / store_tick. */
store_queue_stats stats(store_txn *t, const char *q);
uint64_t next_due(store_txn *t);
uint32_t tick(store_txn *t, uint32_t max);

/* qcfg builds a config; create makes a queue with it (must be new). */
store_queue_config qcfg(uint32_t lease_ms, uint32_t max_attempts);
void create(store_txn *t, const char *q, uint32_t lease_ms, uint32_t max_attempts);

#endif
