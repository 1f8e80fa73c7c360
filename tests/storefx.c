/* SPDX-License-Identifier: MIT */
/* storefx.c: the storage tests' shared fixture and helpers (storefx.h). */
#include "storefx.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

store_err E;

const char *g_engine = "memory";

static uint64_t fx_clock(void *arg)
{
	return ((fx *)arg)->now;
}

void fx_ready(void *arg, const char *queue)
{
	fx *f = arg;

	f->ready_calls++;
	snprintf(f->last_ready, sizeof(f->last_ready), "%s", queue);
}

bool is_lmdb(void)
{
	return strcmp(g_engine, "lmdb") == 0;
}

bool is_durable(void)
{
	return is_lmdb() || is_pg();
}

bool is_pg(void)
{
	return strcmp(g_engine, "postgres") == 0;
}

bool storefx_engine_ok(void)
{
	if (strcmp(g_engine, "lmdb") != 0 && strcmp(g_engine, "memory") != 0 && !is_pg()) {
		fprintf(stderr, "usage: test lmdb|memory|postgres\n");
		return false;
	}
	if (is_pg() && !getenv("MQ_TEST_PG")) {
		fprintf(stderr, "postgres: MQ_TEST_PG (a libpq connection string) is not set: run "
		                "the test through tests/pg.sh run\n");
		return false;
	}
	return true;
}

void fx_fresh(fx *f)
{
	static unsigned n;

	snprintf(f->schema, sizeof(f->schema), "t%ld_%u", (long)getpid(), n++);
}

void fx_open(fx *f)
{
	OK(store_open(&f->s, &f->cfg, &E));
}

int storefx_setup_at(void **state, uint64_t start_ms)
{
	fx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/mq-storefx-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	f->now = start_ms;
	fx_fresh(f);
	f->cfg = (store_config){
	    .engine = g_engine,
	    .path = f->dir,
	    .pg_conninfo = getenv("MQ_TEST_PG"),
	    .pg_schema = f->schema,
	    .clock = fx_clock,
	    .clock_arg = f,
	    .on_ready = fx_ready,
	    .ready_arg = f,
	};
	if (store_open(&f->s, &f->cfg, &E) != MQ_OK) {
		fprintf(stderr, "store_open: %s\n", E.msg);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

void rmtree(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

int teardown(void **state)
{
	fx *f = *state;

	store_close(f->s);
	rmtree(f->dir);
	free(f);
	return 0;
}

/* ---- helpers ----------------------------------------------------------- */

store_txn *begin(fx *f)
{
	store_txn *t = NULL;

	OK(store_begin(f->s, &t, &E));
	return t;
}

void commit(store_txn *t)
{
	OK(store_commit(t, &E));
}

/* push_x pushes payload to q (auto-created) and returns the id. */
uint64_t push_x(store_txn *t, const char *q, const char *payload, int32_t prio, uint64_t delay_ms)
{
	store_push_msg m = {
	    .payload = payload,
	    .payload_len = strlen(payload),
	    .priority = prio,
	    .delay_ms = delay_ms,
	};
	store_push_result r = {0};

	OK(store_push(t, q, true, &m, &r, &E));
	assert_false(r.duplicate);
	return r.id;
}

uint64_t push(store_txn *t, const char *q, const char *payload)
{
	return push_x(t, q, payload, 0, 0);
}

store_push_result push_dedup(store_txn *t, const char *q, const char *payload, const char *key,
                             store_dedup_mode mode, int32_t prio, uint64_t delay_ms)
{
	store_push_msg m = {
	    .payload = payload,
	    .payload_len = strlen(payload),
	    .dedup_key = key,
	    .dedup_mode = mode,
	    .priority = prio,
	    .delay_ms = delay_ms,
	};
	store_push_result r = {0};

	OK(store_push(t, q, true, &m, &r, &E));
	return r;
}

/* collect records each message offered by store_pull; with stop_after set,
 * it refuses the next one once it holds that many (that one is not leased). */
int collect(void *arg, const store_msg *m)
{
	gots *gs = arg;
	got *g;

	if (gs->stop_after && gs->n >= gs->stop_after)
		return 1;
	g = &gs->g[gs->n++];

	g->id = m->id;
	g->token = m->lease_token;
	g->expiry = m->lease_expiry_ms;
	g->enqueued = m->enqueued_ms;
	g->attempts = m->attempts;
	g->state = m->state;
	g->prio = m->priority;
	snprintf(g->queue, sizeof(g->queue), "%s", m->queue);
	g->payload_len = m->payload_len;
	snprintf(g->payload, sizeof(g->payload), "%.*s", (int)m->payload_len,
	         (const char *)m->payload);
	snprintf(g->type, sizeof(g->type), "%s", m->type);
	snprintf(g->dedup, sizeof(g->dedup), "%s", m->dedup_key);
	g->n_headers = m->n_headers;
	for (size_t i = 0; i < m->n_headers && i < 2; i++) {
		snprintf(g->hk[i], sizeof(g->hk[i]), "%s", m->headers[i].key);
		snprintf(g->hv[i], sizeof(g->hv[i]), "%s", m->headers[i].value);
	}
	return 0;
}

uint32_t pull(store_txn *t, const char *q, uint32_t max, uint32_t lease_ms, gots *gs)
{
	uint32_t n = 99;

	gs->n = 0;
	OK(store_pull(t, q, max, lease_ms, collect, gs, &n, &E));
	assert_int_equal(n, gs->n);
	return n;
}

/* pull1 leases one message and returns it. */
got pull1(store_txn *t, const char *q, uint32_t lease_ms)
{
	gots gs = {0};

	assert_int_equal(pull(t, q, 1, lease_ms, &gs), 1);
	return gs.g[0];
}

store_queue_stats stats(store_txn *t, const char *q)
{
	store_queue_info info;

	OK(store_queue_get(t, q, &info, &E));
	assert_string_equal(info.name, q);
	return info.stats;
}

uint64_t next_due(store_txn *t)
{
	uint64_t due = 0;

	OK(store_next_due(t, &due, &E));
	return due;
}

uint32_t tick(store_txn *t, uint32_t max)
{
	uint32_t n = 99;

	OK(store_tick(t, max, &n, &E));
	return n;
}

store_queue_config qcfg(uint32_t lease_ms, uint32_t max_attempts)
{
	return (store_queue_config){.lease_ms = lease_ms, .max_attempts = max_attempts};
}

void create(store_txn *t, const char *q, uint32_t lease_ms, uint32_t max_attempts)
{
	store_queue_config c = qcfg(lease_ms, max_attempts);
	bool created = false;

	OK(store_queue_create(t, q, &c, false, NULL, &created, &E));
	assert_true(created);
}

int setup(void **state)
{
	return storefx_setup_at(state, T0);
}
