/* SPDX-License-Identifier: MIT */
/*
 * fuzz_storage.c: libFuzzer target for sequences of storage operations
 * (push, pull, ack, nack, term, extend, tick, purge, redrive, delete,
 * commit, abort, reopen) with a controllable clock, on the memory or the
 * lmdb engine (the first byte chooses), checked against a simple model:
 * each message's state, attempts, lease token and due time. After every
 * operation the queue's gauges must equal the model's counts per state;
 * at the end of each transaction the message listing must hold exactly
 * the model's ids in the model's states (no lost or duplicated ids). Any
 * difference aborts (a crash for libFuzzer).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXM     256
#define LEASE_MS 1000u
#define ATTEMPTS 3u
#define Q        "fz"

typedef struct mmsg {
	uint64_t id, token, due;
	uint32_t state, attempts; /* state 0 = gone */
} mmsg;

typedef struct model {
	mmsg m[MAXM];
	int n;
} model;

static store *stores[2];
static char dir[256];
static uint64_t now_ms = 1000000000ull;
static store_err E;

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_storage: %s:%d: %s (%s)\n", __FILE__, __LINE__, #c,  \
			        E.msg);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static uint64_t fz_clock(void *arg)
{
	(void)arg;
	return now_ms;
}

static store *open_engine(int lmdb)
{
	store_config cfg = {0};
	store *s = NULL;

	cfg.engine = lmdb ? "lmdb" : "memory";
	cfg.path = dir;
	cfg.durability = STORE_RELAXED; /* speed: no fsync per commit */
	cfg.map_size = 8 << 20;
	cfg.clock = fz_clock;
	if (store_open(&s, &cfg, &E) != MQ_OK) {
		fprintf(stderr, "store_open: %s\n", E.msg);
		abort();
	}
	return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/mq-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	stores[0] = open_engine(0);
	stores[1] = open_engine(1);
	return 0;
}

static mmsg *find(model *md, uint64_t id)
{
	for (int i = 0; i < md->n; i++)
		if (md->m[i].id == id && md->m[i].state)
			return &md->m[i];
	return NULL;
}

static uint64_t count(const model *md, uint32_t state)
{
	uint64_t n = 0;

	for (int i = 0; i < md->n; i++)
		n += md->m[i].state == state;
	return n;
}

static void check_gauges(store_txn *t, const model *md)
{
	store_queue_info qi;
	mq_status st = store_queue_get(t, Q, &qi, &E);

	if (st == MQ_NOT_FOUND) {
		CHECK(md->n == 0 ||
		      (count(md, STORE_STATE_READY) + count(md, STORE_STATE_DELAYED) +
		           count(md, STORE_STATE_LEASED) + count(md, STORE_STATE_DEAD) ==
		       0));
		return;
	}
	CHECK(st == MQ_OK);
	CHECK(qi.stats.ready == count(md, STORE_STATE_READY));
	CHECK(qi.stats.delayed == count(md, STORE_STATE_DELAYED));
	CHECK(qi.stats.in_flight == count(md, STORE_STATE_LEASED));
	CHECK(qi.stats.dead == count(md, STORE_STATE_DEAD));
}

typedef struct listing {
	const model *md;
	int seen;
	uint64_t last;
} listing;

static int list_cb(void *arg, const store_msg *m)
{
	listing *l = arg;
	mmsg *x = find((model *)l->md, m->id);

	CHECK(x != NULL);       /* no message the model does not have */
	CHECK(m->id > l->last); /* id order, no duplicates */
	CHECK(m->state == x->state);
	CHECK(m->attempts == x->attempts);
	l->last = m->id;
	l->seen++;
	return 0;
}

static void check_listing(store_txn *t, const model *md)
{
	listing l = {md, 0, 0};
	uint64_t after = 0;
	bool more = true;
	int live = 0;

	for (int i = 0; i < md->n; i++)
		live += md->m[i].state != 0;
	for (int round = 0; more && round < 1000; round++) {
		mq_status st =
		    store_message_list(t, Q, 0, after, 100, list_cb, &l, &after, &more, &E);

		if (st == MQ_NOT_FOUND) {
			CHECK(live == 0);
			return;
		}
		CHECK(st == MQ_OK);
	}
	CHECK(l.seen == live); /* none lost */
}

typedef struct pulled {
	model *md;
	int n;
} pulled;

static int pull_cb(void *arg, const store_msg *m)
{
	pulled *p = arg;
	mmsg *x = find(p->md, m->id);

	CHECK(x != NULL && x->state == STORE_STATE_READY);
	x->state = STORE_STATE_LEASED;
	x->attempts++;
	CHECK(m->attempts == x->attempts);
	x->token = m->lease_token;
	x->due = now_ms + LEASE_MS;
	CHECK(m->lease_expiry_ms == x->due);
	p->n++;
	return 0;
}

/* lease_ok tells whether a lease operation on x with token must succeed. */
static bool lease_ok(const mmsg *x, uint64_t token)
{
	return x && x->state == STORE_STATE_LEASED && x->token == token && x->due > now_ms;
}

static void fail_attempt(mmsg *x, uint64_t delay)
{
	if (x->attempts >= ATTEMPTS) {
		x->state = STORE_STATE_DEAD;
		x->due = 0;
	} else if (delay) {
		x->state = STORE_STATE_DELAYED;
		x->due = now_ms + delay;
	} else {
		x->state = STORE_STATE_READY;
		x->due = 0;
	}
	x->token = 0;
}

/* pick returns a model message chosen by b (may be gone). */
static mmsg *pick(model *md, uint8_t b)
{
	return md->n ? &md->m[b % md->n] : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static model md, saved;
	int lmdb;
	store *s;
	store_txn *t = NULL;
	store_queue_config qc = {.lease_ms = LEASE_MS, .max_attempts = ATTEMPTS};
	bool created;

	if (size < 1)
		return 0;
	lmdb = data[0] & 1;
	data++;
	size--;
	s = stores[lmdb];
	memset(&md, 0, sizeof(md));
	CHECK(store_begin(s, &t, &E) == MQ_OK);
	CHECK(store_queue_create(t, Q, &qc, false, NULL, &created, &E) == MQ_OK);
	CHECK(store_commit(t, &E) == MQ_OK);
	CHECK(store_begin(s, &t, &E) == MQ_OK);
	saved = md;
	for (size_t i = 0; i + 2 <= size && i < 600; i += 3) {
		uint8_t op = data[i] % 14, a = data[i + 1], b = i + 2 < size ? data[i + 2] : 0;
		mmsg *x = pick(&md, a);
		uint64_t token = x ? x->token + (b & 0x80 ? 1 : 0) : 1;
		mq_status st;

		switch (op) {
		case 0:
		case 1: { /* push, delayed when b is odd */
			store_push_msg m = {.payload = &b,
			                    .payload_len = 1,
			                    .delay_ms = (b & 1) ? (uint64_t)b * 10 : 0};
			store_push_result r;

			if (md.n == MAXM)
				break;
			CHECK(store_push(t, Q, false, &m, &r, &E) == MQ_OK);
			CHECK(!r.duplicate && find(&md, r.id) == NULL);
			md.m[md.n++] =
			    (mmsg){.id = r.id,
			           .state = m.delay_ms ? STORE_STATE_DELAYED : STORE_STATE_READY,
			           .due = m.delay_ms ? now_ms + m.delay_ms : 0};
			break;
		}
		case 2: { /* pull */
			pulled p = {&md, 0};
			uint32_t n = 0, max = 1 + a % 8;
			uint64_t ready = count(&md, STORE_STATE_READY);

			CHECK(store_pull(t, Q, max, 0, pull_cb, &p, &n, &E) == MQ_OK);
			CHECK(n == (uint32_t)p.n && n == (ready < max ? ready : max));
			break;
		}
		case 3: /* ack */
			if (!x)
				break;
			st = store_ack(t, Q, x->id, token, &E);
			CHECK((st == MQ_OK) == lease_ok(x, token));
			if (st == MQ_OK)
				x->state = 0;
			break;
		case 4: /* nack, delay b*10 ms when b is odd */
			if (!x)
				break;
			st =
			    store_nack(t, Q, x->id, token, (b & 1) ? (uint64_t)b * 10 : 0, "e", &E);
			CHECK((st == MQ_OK) == lease_ok(x, token));
			if (st == MQ_OK)
				fail_attempt(x, (b & 1) ? (uint64_t)b * 10 : 0);
			break;
		case 5: /* term */
			if (!x)
				break;
			st = store_term(t, Q, x->id, token, "t", &E);
			CHECK((st == MQ_OK) == lease_ok(x, token));
			if (st == MQ_OK) {
				x->state = STORE_STATE_DEAD;
				x->token = 0;
				x->due = 0;
			}
			break;
		case 6: { /* extend */
			uint64_t exp = 0;

			if (!x)
				break;
			st = store_extend(t, Q, x->id, token, 0, &exp, &E);
			CHECK((st == MQ_OK) == lease_ok(x, token));
			if (st == MQ_OK) {
				x->due = now_ms + LEASE_MS;
				CHECK(exp == x->due);
			}
			break;
		}
		case 7: { /* time passes, then timers */
			uint32_t handled = 0, due = 0;

			now_ms += (uint64_t)a * 20;
			for (int k = 0; k < md.n; k++) {
				mmsg *y = &md.m[k];

				if (y->state == STORE_STATE_LEASED && y->due <= now_ms) {
					fail_attempt(y, 0);
					due++;
				} else if (y->state == STORE_STATE_DELAYED && y->due <= now_ms) {
					y->state = STORE_STATE_READY;
					y->due = 0;
					due++;
				}
			}
			CHECK(store_tick(t, 0, &handled, &E) == MQ_OK);
			CHECK(handled == due);
			break;
		}
		case 8: { /* purge the states in a */
			uint32_t mask = a & STORE_STATE_ALL;
			uint64_t purged = 0, want = 0;

			if (!mask)
				break;
			for (int k = 0; k < md.n; k++)
				if (md.m[k].state & mask) {
					md.m[k].state = 0;
					want++;
				}
			CHECK(store_queue_purge(t, Q, mask, &purged, &E) == MQ_OK);
			CHECK(purged == want);
			break;
		}
		case 9: { /* redrive every dead message */
			uint64_t moved = 0, want = 0;
			bool more = false;

			for (int k = 0; k < md.n; k++)
				if (md.m[k].state == STORE_STATE_DEAD) {
					md.m[k].state = STORE_STATE_READY;
					md.m[k].attempts = 0;
					want++;
				}
			CHECK(store_redrive(t, Q, NULL, 0, NULL, false, 0, &moved, &more, &E) ==
			      MQ_OK);
			CHECK(moved == want && !more);
			break;
		}
		case 10: /* delete one message */
			if (!x)
				break;
			st = store_message_delete(t, Q, x->id, NULL, &E);
			CHECK((st == MQ_OK) == (x->state != 0));
			x->state = 0;
			break;
		case 11: /* commit */
			check_listing(t, &md);
			CHECK(store_commit(t, &E) == MQ_OK);
			saved = md;
			CHECK(store_begin(s, &t, &E) == MQ_OK);
			break;
		case 12: /* abort: the model goes back too */
			store_abort(t);
			md = saved;
			CHECK(store_begin(s, &t, &E) == MQ_OK);
			break;
		case 13: /* commit and reopen (lmdb: what is on disk) */
			if (!lmdb)
				break;
			CHECK(store_commit(t, &E) == MQ_OK);
			saved = md;
			store_close(s);
			s = stores[1] = open_engine(1);
			CHECK(store_begin(s, &t, &E) == MQ_OK);
			check_listing(t, &md);
			break;
		}
		check_gauges(t, &md);
	}
	check_listing(t, &md);
	CHECK(store_queue_delete(t, Q, &E) == MQ_OK);
	CHECK(store_commit(t, &E) == MQ_OK);
	return 0;
}
