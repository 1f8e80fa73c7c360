/* SPDX-License-Identifier: MIT */
/*
 * writer.c: the single writer thread and group commit.
 *
 * Calls arrive from nng's callback threads (brk_writer_submit) into the
 * incoming list. The writer takes everything that arrived while its last
 * commit ran, applies it in one storage transaction, commits once (one
 * fsync pair shared by the whole batch), and only then sends the replies.
 * While it waits on the disk, the next batch gathers.
 *
 * Low load: when the writer thread waits with nothing to do, the thread
 * that submits a call (an nng callback thread) takes the writer's role and
 * runs that call's transaction itself, replying from there: one thread
 * hand-off less per request. The role is exclusive (inline_busy under mu):
 * the writer thread waits while a submitter holds it, and calls arriving
 * meanwhile queue up for the writer thread as usual. So at most one nng
 * thread at a time blocks in a commit. Durable mode only (relaxed mode's
 * periodic syncs stay with the writer thread).
 *
 * Replies: sending one costs the sender a few system calls and wake-ups
 * inside nng (tens of microseconds here), as much as a commit for a batch
 * of a few dozen. When calls are already waiting for the next transaction,
 * the writer hands the answered batch to the replier thread and goes on
 * with that transaction at once, so replies go out while the next commit
 * waits on the disk; when nothing waits, it sends them itself (no extra
 * thread hop on the latency path).
 *
 * Long polls: a pull that finds nothing is parked on its queue's wait list
 * (and in a deadline tree). When an operation makes a queue ready (the
 * store's on_ready callback), that queue is marked; before the commit, the
 * writer serves the parked pulls of marked queues in the same transaction,
 * first come first served, so a push and the lease that hands it to a
 * waiting consumer share one commit. A parked pull whose deadline passes is
 * answered with no messages.
 *
 * Failure: if an operation fails the transaction (disk or map full, I/O
 * error), the batch is aborted and replayed once (the map grows on the
 * next begin); if it fails again, each call runs in its own transaction,
 * so only the calls that cannot succeed get the error. No call is ever
 * answered OK unless its transaction committed.
 *
 * Lock order: w->mu only guards the incoming list, the stop flag and the
 * role flags (idle, inline_busy); every other field belongs to whoever
 * holds the writer's role (the writer thread, or a submitter running a
 * call inline).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "log.h"
#include "metrics.h"
#include "pubsub.h"

#define WQ_BUCKETS     256
#define TICK_MAX_ITEMS 10000u
#define REMOTE_MAX     64 /* queues remembered from other instances' news */

struct brk_waitq {
	char name[MQ_NAME_MAX + 1];
	brk_call *head, *tail;
	brk_waitq *hnext; /* hash chain */
	brk_waitq *mnext; /* marked list */
	bool marked;
};

static int deadline_cmp(const brk_call *a, const brk_call *b)
{
	if (a->deadline_ms != b->deadline_ms)
		return a->deadline_ms < b->deadline_ms ? -1 : 1;
	return (uintptr_t)a < (uintptr_t)b ? -1 : (uintptr_t)a > (uintptr_t)b;
}

RB_HEAD(deadline_tree, brk_call);
/* libbsd's tree.h marks the static functions __unused, which libbsd leaves
 * undefined (it clashes with a struct member in Linux headers). */
#define __unused __attribute__((unused))
RB_GENERATE_STATIC(deadline_tree, brk_call, tnode, deadline_cmp)
#undef __unused

/* rate_bucket is one rate-limited queue's token bucket. Tokens are kept
 * in thousandths: rate r refills r thousandths per ms, up to r * 1000. */
typedef struct rate_bucket {
	char name[MQ_NAME_MAX + 1];
	uint32_t rate;
	uint64_t milli;   /* tokens * 1000 */
	uint64_t last_ms; /* monotonic, of the last refill */
	uint64_t wake_ms; /* monotonic: mark the queue then; 0 = not waiting */
	struct rate_bucket *next;
} rate_bucket;

struct brk_writer {
	brk_info *info;
	store *store;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	brk_call *in_head, *in_tail; /* under mu */
	bool stopping;               /* under mu */
	bool idle;                   /* under mu: the thread waits with nothing to do */
	bool inline_busy;            /* under mu: a submitter runs a call itself */
	bool started;
	/* Under mu: queues other instances made ready (store_watch), not yet
	 * looked at; remote_all: any queue (too many, or news was lost). */
	char remote[REMOTE_MAX][MQ_NAME_MAX + 1];
	size_t n_remote;
	bool remote_all;

	/* Writer thread only. */
	brk_waitq *buckets[WQ_BUCKETS];
	brk_waitq *marked;
	struct deadline_tree deadlines;
	size_t n_parked;
	uint64_t next_due_ms; /* store clock; UINT64_MAX = none */
	bool relaxed;
	bool shared;          /* other mqd write the store (store_shared) */
	uint64_t last_txn_ms; /* monotonic: when the last transaction began */
	bool unsynced;
	uint64_t last_sync_ms;           /* monotonic */
	brk_call *done_head, *done_tail; /* answered by this transaction */
	uint64_t seq;                    /* transactions run */
	uint64_t tick_ok_after;          /* monotonic ms: timers back off after a failure */
	uint64_t last_fail_log;          /* monotonic ms: rate limit of failure warnings */
	uint64_t fails_unlogged;
	uint64_t last_begin_log; /* monotonic ms: rate limit of begin failures */
	uint64_t begin_unlogged;
	char fail_msg[STORE_ERR_MAX]; /* the storage's reason of the last failed transaction */
	rate_bucket *buckets_rate;    /* rate-limited queues seen by pulls */

	/* Replier thread: sends the replies of batches handed over. */
	pthread_t rthread;
	pthread_mutex_t rmu; /* guards r_head, r_tail, r_stop */
	pthread_cond_t rcv;
	brk_call *r_head, *r_tail; /* linked by dnext */
	bool r_stop;
	bool r_started;
};

uint64_t brk_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const brk_config *brk_writer_config(const brk_writer *w)
{
	return w->info->cfg;
}

/* ---- Wait lists ------------------------------------------------------ */

static unsigned wq_hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % WQ_BUCKETS;
}

static brk_waitq *wq_find(brk_writer *w, const char *name)
{
	for (brk_waitq *q = w->buckets[wq_hash(name)]; q; q = q->hnext)
		if (strcmp(q->name, name) == 0)
			return q;
	return NULL;
}

/* wq_maybe_free frees an empty, unmarked wait list. */
static void wq_maybe_free(brk_writer *w, brk_waitq *q)
{
	brk_waitq **pp;

	if (q->head != NULL || q->marked)
		return;
	for (pp = &w->buckets[wq_hash(q->name)]; *pp != q; pp = &(*pp)->hnext)
		;
	*pp = q->hnext;
	free(q);
}

/* wq_remove unlinks c from its wait list and the deadline tree. */
static void wq_remove(brk_writer *w, brk_call *c)
{
	brk_waitq *q = c->wq;
	brk_call *prev = NULL;

	for (brk_call *p = q->head; p != c; p = p->wq_next)
		prev = p;
	if (prev)
		prev->wq_next = c->wq_next;
	else
		q->head = c->wq_next;
	if (q->tail == c)
		q->tail = prev;
	c->wq_next = NULL;
	c->wq = NULL;
	RB_REMOVE(deadline_tree, &w->deadlines, c);
	w->n_parked--;
	brk_metrics_parked_add(-1);
	wq_maybe_free(w, q);
}

void brk_writer_park(brk_writer *w, brk_call *c, const char *queue)
{
	brk_waitq *q = wq_find(w, queue);

	if (q == NULL) {
		q = calloc(1, sizeof(*q));
		if (q == NULL) {
			brk_call_set_error(c, MQ_RESOURCE_EXHAUSTED,
			                   "out of memory parking a pull");
			return;
		}
		snprintf(q->name, sizeof(q->name), "%s", queue);
		unsigned h = wq_hash(queue);
		q->hnext = w->buckets[h];
		w->buckets[h] = q;
	}
	c->wq = q;
	c->wq_next = NULL;
	if (q->tail)
		q->tail->wq_next = c;
	else
		q->head = c;
	q->tail = c;
	RB_INSERT(deadline_tree, &w->deadlines, c);
	w->n_parked++;
	brk_metrics_parked_add(1);
}

/* wq_tail_to_head moves the last call of q to the front. */
static void wq_tail_to_head(brk_waitq *q)
{
	brk_call *c = q->tail, *prev = NULL;

	if (q->head == c)
		return;
	for (brk_call *p = q->head; p != c; p = p->wq_next)
		prev = p;
	prev->wq_next = NULL;
	q->tail = prev;
	c->wq_next = q->head;
	q->head = c;
}

bool brk_writer_has_parked(brk_writer *w, const char *queue)
{
	brk_waitq *q = wq_find(w, queue);

	return q != NULL && q->head != NULL;
}

size_t brk_writer_reply_budget(const brk_writer *w)
{
	const brk_config *cfg = w->info->cfg;
	uint64_t b = cfg->max_request > cfg->max_payload + 65536 ? cfg->max_request
	                                                         : cfg->max_payload + 65536;
	return (size_t)b;
}

void brk_writer_store_ready(void *arg, const char *queue)
{
	brk_writer_mark(((brk_info *)arg)->writer, queue);
}

void brk_writer_remote_ready(void *arg, const char *queue)
{
	brk_writer *w = arg;
	size_t i;

	pthread_mutex_lock(&w->mu);
	if (queue == NULL || w->n_remote == REMOTE_MAX) {
		w->remote_all = true;
	} else {
		for (i = 0; i < w->n_remote && strcmp(w->remote[i], queue) != 0; i++)
			;
		if (i == w->n_remote)
			snprintf(w->remote[w->n_remote++], sizeof(w->remote[0]), "%s", queue);
	}
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* take_remote marks the parked pulls of the queues other instances told
 * of (called with mu held, in the writer's role); true if any was. */
static bool take_remote(brk_writer *w)
{
	if (w->remote_all) {
		for (int b = 0; b < WQ_BUCKETS; b++)
			for (brk_waitq *q = w->buckets[b]; q; q = q->hnext)
				brk_writer_mark(w, q->name);
	} else {
		for (size_t i = 0; i < w->n_remote; i++)
			brk_writer_mark(w, w->remote[i]);
	}
	w->remote_all = false;
	w->n_remote = 0;
	return w->marked != NULL;
}

void brk_writer_mark(brk_writer *w, const char *queue)
{
	brk_waitq *q = wq_find(w, queue);

	if (q == NULL || q->head == NULL || q->marked)
		return;
	q->marked = true;
	q->mnext = w->marked;
	w->marked = q;
}

/* ---- Rate limits ----------------------------------------------------- */

static rate_bucket *rate_find(brk_writer *w, const char *queue)
{
	for (rate_bucket *b = w->buckets_rate; b; b = b->next)
		if (strcmp(b->name, queue) == 0)
			return b;
	return NULL;
}

static void rate_refill(rate_bucket *b, uint64_t now)
{
	uint64_t cap = (uint64_t)b->rate * 1000u;

	if (now > b->last_ms) {
		uint64_t add = (now - b->last_ms) * b->rate;
		b->milli = b->milli + add > cap ? cap : b->milli + add;
	}
	b->last_ms = now;
}

uint32_t brk_writer_rate_avail(brk_writer *w, const char *queue, uint32_t rate)
{
	rate_bucket *b = rate_find(w, queue);
	uint64_t now = brk_mono_ms();

	if (rate == 0) {
		if (b != NULL)
			b->rate = 0; /* limit removed: the bucket lies idle */
		return UINT32_MAX;
	}
	if (b == NULL) {
		if ((b = calloc(1, sizeof(*b))) == NULL)
			return 0; /* out of memory: hand out nothing, try again later */
		snprintf(b->name, sizeof(b->name), "%s", queue);
		b->rate = rate;
		b->milli = (uint64_t)rate * 1000u; /* starts full: burst = rate */
		b->last_ms = now;
		b->next = w->buckets_rate;
		w->buckets_rate = b;
	}
	if (b->rate != rate) { /* changed by UpdateQueue */
		b->rate = rate;
		if (b->milli > (uint64_t)rate * 1000u)
			b->milli = (uint64_t)rate * 1000u;
	}
	rate_refill(b, now);
	return (uint32_t)(b->milli / 1000u);
}

void brk_writer_rate_used(brk_writer *w, const char *queue, uint32_t n)
{
	rate_bucket *b = rate_find(w, queue);

	if (b != NULL && b->rate != 0)
		b->milli = b->milli > (uint64_t)n * 1000u ? b->milli - (uint64_t)n * 1000u : 0;
}

void brk_writer_rate_wait(brk_writer *w, const char *queue)
{
	rate_bucket *b = rate_find(w, queue);

	if (b == NULL || b->rate == 0)
		return;
	/* The next whole token: ceil((1000 - milli % 1000) / rate) ms away. */
	uint64_t need = 1000u - b->milli % 1000u;
	uint64_t at = b->last_ms + (need + b->rate - 1) / b->rate;
	if (b->wake_ms == 0 || at < b->wake_ms)
		b->wake_ms = at;
}

/* rate_wake marks the queues whose next token came; returns the earliest
 * pending wake (monotonic ms), UINT64_MAX when none. */
static uint64_t rate_wake(brk_writer *w, uint64_t now, bool mark)
{
	uint64_t next = UINT64_MAX;

	for (rate_bucket *b = w->buckets_rate; b; b = b->next) {
		if (b->wake_ms == 0)
			continue;
		if (mark && b->wake_ms <= now) {
			b->wake_ms = 0;
			brk_writer_mark(w, b->name);
		} else if (b->wake_ms < next) {
			next = b->wake_ms;
		}
	}
	return next;
}

/* ---- Batches --------------------------------------------------------- */

static void done_add(brk_writer *w, brk_call *c)
{
	c->dnext = NULL;
	if (w->done_tail)
		w->done_tail->dnext = c;
	else
		w->done_head = c;
	w->done_tail = c;
}

/* fair_share is how many messages each of the pulls parked on q may take
 * now: the queue's ready count spread over them (at least 1), so a burst
 * of pushes reaches every parked consumer it can serve instead of filling
 * the first one's max_messages. 0 = no cap (the count is unknown). */
static uint32_t fair_share(brk_writer *w, store_txn *t, const brk_waitq *q)
{
	store_queue_info info;
	store_err err;
	uint64_t k = 0, share;

	for (const brk_call *c = q->head; c != NULL; c = c->wq_next)
		k++;
	if (k <= 1 || store_queue_get(t, q->name, &info, &err) != MQ_OK)
		return 0;
	(void)w;
	share = (info.stats.ready + k - 1) / k;
	return share == 0 ? 1 : share > UINT32_MAX ? UINT32_MAX : (uint32_t)share;
}

/* serve_marked hands new ready messages to the pulls parked on marked
 * queues, oldest first, each at most its fair share, until a queue runs
 * dry. A queue stays marked while it is served, so its wait list is not
 * freed under us. */
static void serve_marked(brk_writer *w, store_txn *t)
{
	while (w->marked != NULL && !store_txn_failed(t)) {
		brk_waitq *q = w->marked;
		uint32_t share = fair_share(w, t, q);

		w->marked = q->mnext;
		q->mnext = NULL;
		while (q->head != NULL && !store_txn_failed(t)) {
			brk_call *c = q->head;

			wq_remove(w, c);
			brk_call_reset_result(c);
			c->serve_cap = share;
			c->serving = true;
			c->apply(w, t, c);
			c->serving = false;
			c->serve_cap = 0;
			if (c->wq != NULL) {
				/* Nothing left: parked again, back at the head. */
				wq_tail_to_head(c->wq);
				break;
			}
			done_add(w, c); /* answered, or replayed if the txn failed */
		}
		q->marked = false;
		wq_maybe_free(w, q);
	}
}

/* expire_parked answers the parked pulls whose deadline has passed. */
static void expire_parked(brk_writer *w, uint64_t now)
{
	brk_call *c;

	while ((c = RB_MIN(deadline_tree, &w->deadlines)) != NULL && c->deadline_ms <= now) {
		wq_remove(w, c);
		brk_call_reset_result(c);
		c->status = MQ_OK; /* an empty PullReply */
		c->done = true;
		done_add(w, c);
	}
}

/* finish_done sends the replies of the calls the transaction answered:
 * through the replier when more calls wait for the writer, else here. */
static void finish_done(brk_writer *w)
{
	brk_call *c = w->done_head, *next;
	bool waiting;

	if (c == NULL)
		return;
	w->done_head = w->done_tail = NULL;
	pthread_mutex_lock(&w->mu);
	waiting = w->in_head != NULL && !w->stopping;
	pthread_mutex_unlock(&w->mu);
	if (waiting && w->r_started) {
		brk_call *tail = c;

		while (tail->dnext != NULL)
			tail = tail->dnext;
		pthread_mutex_lock(&w->rmu);
		if (w->r_tail)
			w->r_tail->dnext = c;
		else
			w->r_head = c;
		w->r_tail = tail;
		pthread_cond_signal(&w->rcv);
		pthread_mutex_unlock(&w->rmu);
		return;
	}
	for (; c != NULL; c = next) {
		next = c->dnext;
		brk_call_finish(c);
	}
}

/* replay_add resets c and appends it to the list head..tail (by next). */
static void replay_add(brk_call **head, brk_call **tail, brk_call *c)
{
	brk_call_reset_result(c);
	c->next = NULL;
	if (*tail)
		(*tail)->next = c;
	else
		*head = c;
	*tail = c;
}

/* ---- Schedules ------------------------------------------------------ */

/* schedule_fired logs a firing: catch-up after downtime (slots skipped)
 * and failed pushes at WARN, the rest at DEBUG. */
static void schedule_fired(void *arg, const store_schedule_fire *f)
{
	(void)arg;
	if (f->missed)
		brk_warn("schedule %s: %" PRIu64
		         " slot(s) missed (broker down or busy); fired once "
		         "for the latest, slot %" PRIu64 ", into %s",
		         f->name, f->missed, f->slot_ms, f->queue);
	if (f->status != MQ_OK)
		brk_warn("schedule %s: the push into %s for slot %" PRIu64 " failed: %s: %s",
		         f->name, f->queue, f->slot_ms, mq_status_name(f->status), f->error);
	else
		brk_debug("schedule %s: slot %" PRIu64 " pushed message %" PRIu64 " into %s%s",
		          f->name, f->slot_ms, f->id, f->queue, f->duplicate ? " (duplicate)" : "");
}

/* schedules_tick fires the due schedules in the writer's transaction. */
static mq_status schedules_tick(store_txn *t, store_err *err)
{
	uint32_t fired = 0;

	return store_schedule_tick(t, TICK_MAX_ITEMS, schedule_fired, NULL, &fired, err);
}

/* run_txn applies calls (a list linked by next) in one transaction, plus
 * timers and parked pulls. Returns MQ_OK when committed (replies then go
 * out), else the failure (nothing was kept; calls are left unanswered in
 * the list rebuilt at *replay for the caller to replay). */
static int run_txn(brk_writer *w, brk_call *calls, brk_call **replay)
{
	store_txn *t = NULL;
	store_err err;
	size_t n_calls = 0;
	int rv;

	*replay = NULL;
	err.msg[0] = '\0';
	w->last_txn_ms = brk_mono_ms();
	w->done_head = w->done_tail = NULL;
	w->seq++;
	for (brk_call *c = calls; c != NULL; c = c->next) {
		c->batch_seq = w->seq;
		n_calls++;
	}
	rv = store_begin(w->store, &t, &err);
	if (rv != MQ_OK) {
		/* While the storage is down every batch fails here: one line a
		 * second, with how many were not logged. */
		uint64_t now = brk_mono_ms();

		if (now >= w->last_begin_log + 1000) {
			brk_err("storage: cannot begin a transaction (%" PRIu64
			        " more failures since the last report): %s",
			        w->begin_unlogged, err.msg);
			w->last_begin_log = now;
			w->begin_unlogged = 0;
		} else {
			w->begin_unlogged++;
		}
		goto failed;
	}
	if (w->next_due_ms <= store_now(w->store) && brk_mono_ms() >= w->tick_ok_after) {
		uint32_t handled = 0;
		rv = store_tick(t, TICK_MAX_ITEMS, &handled, &err);
		if (rv != MQ_OK) {
			/* Timers that cannot be applied must not sink the calls:
			 * they back off and the batch is replayed without them. */
			w->tick_ok_after = brk_mono_ms() + 1000;
			brk_err("storage: applying timers failed (retried in 1 s): %s", err.msg);
			goto failed;
		}
		if (handled)
			brk_debug("timers: %" PRIu32 " messages expired or promoted", handled);
		if (schedules_tick(t, &err) != MQ_OK) {
			w->tick_ok_after = brk_mono_ms() + 1000;
			brk_err("storage: firing schedules failed (retried in 1 s): %s", err.msg);
			goto failed;
		}
	}
	for (brk_call *c = calls, *next; c != NULL; c = next) {
		next = c->next;
		c->apply(w, t, c);
		if (store_txn_failed(t)) {
			rv = c->status ? c->status : MQ_INTERNAL;
			goto failed;
		}
		if (c->done)
			done_add(w, c);
	}
	rate_wake(w, brk_mono_ms(), true);
	serve_marked(w, t);
	if (store_txn_failed(t)) {
		rv = MQ_INTERNAL;
		goto failed;
	}
	expire_parked(w, brk_mono_ms());
	rv = store_next_due(t, &w->next_due_ms, &err);
	if (rv != MQ_OK)
		goto failed;
	{
		uint64_t sched_due;

		if ((rv = store_schedule_next_due(t, &sched_due, &err)) != MQ_OK)
			goto failed;
		if (sched_due < w->next_due_ms)
			w->next_due_ms = sched_due;
	}
	uint64_t commit_start_ns = brk_mono_ns();
	rv = store_commit(t, &err);
	t = NULL;
	if (rv == MQ_OK)
		brk_metrics_commit(n_calls, brk_mono_ns() - commit_start_ns);
	if (rv != MQ_OK) {
		brk_err("storage: commit failed: %s", err.msg);
		goto failed;
	}
	w->unsynced = w->unsynced || w->relaxed;
	finish_done(w);
	return MQ_OK;

failed:
	if (t != NULL)
		store_abort(t);
	snprintf(w->fail_msg, sizeof(w->fail_msg), "%s", err.msg);
	/* The next committed transaction re-reads the timers; until then, look
	 * again in a second rather than spinning on a failing store. */
	w->next_due_ms = store_now(w->store) + 1000;
	/* Everything that was applied is undone: gather the calls to replay:
	 * those of the batch (unless parked: nothing of them was stored) and
	 * those taken from wait lists by this transaction. */
	{
		brk_call *head = NULL, *tail = NULL, *from_wq = w->done_head;

		w->done_head = w->done_tail = NULL;
		for (brk_call *c = calls, *next; c != NULL; c = next) {
			next = c->next;
			if (c->wq == NULL)
				replay_add(&head, &tail, c);
		}
		for (brk_call *c = from_wq; c != NULL; c = c->dnext)
			if (c->batch_seq != w->seq) /* the batch's own were gathered above */
				replay_add(&head, &tail, c);
		*replay = head;
	}
	(void)err;
	return rv;
}

/* expire_parked_now answers, without a transaction, the parked pulls whose
 * wait is over, after the store failed: their answer (nothing) needs no
 * commit, and a long poll must end when its wait does while the storage
 * is unavailable (PostgreSQL down, a disk error), not at the client's
 * timeout, DEADLINE_EXCEEDED. */
static void expire_parked_now(brk_writer *w)
{
	w->done_head = w->done_tail = NULL;
	expire_parked(w, brk_mono_ms());
	finish_done(w);
}

/* run_batch applies a batch with the failure handling described on top. */
static void run_batch(brk_writer *w, brk_call *calls)
{
	brk_call *replay = NULL, *again = NULL;
	int rv;

	rv = run_txn(w, calls, &replay);
	if (rv == MQ_OK)
		return;
	uint64_t now = brk_mono_ms();
	if (now >= w->last_fail_log + 1000) {
		brk_warn("a batch failed (%s); replaying it (%" PRIu64 " more failures since the "
		         "last warning)",
		         mq_status_name(rv), w->fails_unlogged);
		w->last_fail_log = now;
		w->fails_unlogged = 0;
	} else {
		w->fails_unlogged++;
	}
	if (replay != NULL && run_txn(w, replay, &again) == MQ_OK)
		return;
	/* One call per transaction: only the calls that cannot succeed fail. */
	for (brk_call *c = again, *next; c != NULL; c = next) {
		brk_call *left = NULL;
		next = c->next;
		c->next = NULL;
		rv = run_txn(w, c, &left);
		for (brk_call *l = left, *lnext; rv != MQ_OK && l != NULL; l = lnext) {
			lnext = l->next;
			brk_call_reset_result(l);
			brk_call_set_error(
			    l, rv == MQ_RESOURCE_EXHAUSTED ? rv : MQ_UNAVAILABLE,
			    "%s: the request could not be applied to the storage%s%s%s",
			    mq_status_name(rv),
			    rv == MQ_RESOURCE_EXHAUSTED
			        ? " (storage is full: raise --map-size-max or drain "
			          "queues)"
			        : "; see the broker's log",
			    w->fail_msg[0] ? ": " : "", w->fail_msg);
			brk_call_finish(l);
		}
	}
	expire_parked_now(w);
}

/* ---- Thread ---------------------------------------------------------- */

static uint64_t next_wakeup_ms(brk_writer *w, uint64_t now)
{
	uint64_t wake = now + 1000; /* re-check timers at least every second */
	brk_call *c = RB_MIN(deadline_tree, &w->deadlines);

	if (c != NULL && c->deadline_ms < wake)
		wake = c->deadline_ms;
	uint64_t rw = rate_wake(w, now, false);
	if (rw < wake)
		wake = rw;
	if (w->next_due_ms != UINT64_MAX) {
		uint64_t snow = store_now(w->store);
		uint64_t in = w->next_due_ms > snow ? w->next_due_ms - snow : 0;
		if (now + in < wake)
			wake = now + in;
	}
	if (w->unsynced) {
		uint64_t at = w->last_sync_ms + w->info->cfg->sync_interval_ms;
		if (at < wake)
			wake = at;
	}
	/* A shared store: the other instances' leases, delays and schedules
	 * are seen only by a transaction here (an instance that died leaves
	 * its leases to us): one at least every second. */
	if (w->shared && w->last_txn_ms + 1000 < wake)
		wake = w->last_txn_ms + 1000;
	return wake;
}

static void maybe_sync(brk_writer *w, uint64_t now, bool force)
{
	store_err err;

	if (!w->unsynced)
		return;
	if (!force && now < w->last_sync_ms + w->info->cfg->sync_interval_ms)
		return;
	w->last_sync_ms = now;
	if (store_sync(w->store, &err) != MQ_OK) {
		brk_err("storage: sync failed (retried): %s", err.msg);
		return; /* still unsynced: tried again next interval */
	}
	w->unsynced = false;
}

static void answer_all_parked(brk_writer *w)
{
	brk_call *c;

	w->done_head = w->done_tail = NULL;
	while ((c = RB_MIN(deadline_tree, &w->deadlines)) != NULL) {
		wq_remove(w, c);
		brk_call_reset_result(c);
		c->done = true;
		done_add(w, c);
	}
	finish_done(w);
}

static void *writer_main(void *arg)
{
	brk_writer *w = arg;
	uint32_t max_batch = w->info->cfg->max_batch;

	for (;;) {
		brk_call *calls = NULL, *tail = NULL;
		uint32_t n = 0;
		bool stop;

		pthread_mutex_lock(&w->mu);
		for (;;) {
			uint64_t now = brk_mono_ms(), wake;
			struct timespec ts;

			if (w->inline_busy) { /* a submitter holds the writer's role */
				pthread_cond_wait(&w->cv, &w->mu);
				continue;
			}
			if (w->in_head != NULL || w->stopping)
				break;
			wake = next_wakeup_ms(w, now);
			if (wake <= now)
				break;
			/* News from other instances: serve what was parked on
			 * those queues; nothing to do when nothing was. */
			if ((w->n_remote > 0 || w->remote_all) && take_remote(w))
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + (wake - now) * 1000000u;
			ts.tv_sec += (time_t)(ns / 1000000000u);
			ts.tv_nsec = (long)(ns % 1000000000u);
			w->idle = true;
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
			w->idle = false;
		}
		/* Take up to max_batch calls; the rest waits for the next turn. */
		while (w->in_head != NULL && n < max_batch) {
			brk_call *c = w->in_head;
			w->in_head = c->next;
			c->next = NULL;
			if (tail)
				tail->next = c;
			else
				calls = c;
			tail = c;
			n++;
		}
		if (w->in_head == NULL)
			w->in_tail = NULL;
		if (w->n_remote > 0 || w->remote_all)
			take_remote(w);
		stop = w->stopping && w->in_head == NULL;
		pthread_mutex_unlock(&w->mu);

		run_batch(w, calls);
		maybe_sync(w, brk_mono_ms(), false);
		if (stop)
			break;
	}
	answer_all_parked(w);
	maybe_sync(w, brk_mono_ms(), true);
	return NULL;
}

/* replier_stop lets the replier send what it has, then joins it. */
static void replier_stop(brk_writer *w)
{
	if (!w->r_started)
		return;
	pthread_mutex_lock(&w->rmu);
	w->r_stop = true;
	pthread_cond_signal(&w->rcv);
	pthread_mutex_unlock(&w->rmu);
	pthread_join(w->rthread, NULL);
	w->r_started = false;
}

static void *replier_main(void *arg)
{
	brk_writer *w = arg;

	for (;;) {
		brk_call *c, *next;

		pthread_mutex_lock(&w->rmu);
		while (w->r_head == NULL && !w->r_stop)
			pthread_cond_wait(&w->rcv, &w->rmu);
		c = w->r_head;
		w->r_head = w->r_tail = NULL;
		pthread_mutex_unlock(&w->rmu);
		if (c == NULL)
			break; /* stopping, and everything was sent */
		for (; c != NULL; c = next) {
			next = c->dnext;
			brk_call_finish(c);
		}
	}
	return NULL;
}

int brk_writer_start(brk_writer **out, brk_info *info)
{
	brk_writer *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return -1;
	w->info = info;
	w->store = info->store;
	w->next_due_ms = 0;
	w->relaxed = strcmp(store_durability_name(info->store), "relaxed") == 0;
	w->shared = store_shared(info->store);
	w->last_txn_ms = brk_mono_ms();
	w->last_sync_ms = brk_mono_ms();
	RB_INIT(&w->deadlines);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_mutex_init(&w->rmu, NULL);
	pthread_cond_init(&w->rcv, NULL);
	/* Without a replier the writer sends every reply itself. */
	w->r_started = pthread_create(&w->rthread, NULL, replier_main, w) == 0;
	if (!w->r_started)
		brk_warn("cannot start the replier thread; the writer sends replies");
	info->writer = w; /* before the thread's first transaction */
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		replier_stop(w);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->rmu);
		pthread_cond_destroy(&w->rcv);
		info->writer = NULL;
		free(w);
		return -1;
	}
	w->started = true;
	*out = w;
	return 0;
}

int brk_writer_submit(brk_writer *w, brk_call *c)
{
	c->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		pthread_mutex_unlock(&w->mu);
		return -1;
	}
	if (w->idle && !w->inline_busy && w->in_head == NULL && !w->relaxed) {
		/* The writer waits with nothing to do: run the call here, in its
		 * role, rather than wake it (one thread hop less per request at
		 * low load). Calls arriving meanwhile queue up for the writer. */
		w->inline_busy = true;
		pthread_mutex_unlock(&w->mu);
		run_batch(w, c);
		pthread_mutex_lock(&w->mu);
		w->inline_busy = false;
		pthread_cond_signal(&w->cv); /* recompute its wake-up; take what queued */
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	if (w->in_tail)
		w->in_tail->next = c;
	else
		w->in_head = c;
	w->in_tail = c;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void brk_writer_stop(brk_writer *w)
{
	if (w == NULL || !w->started)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	w->started = false;
	replier_stop(w);
}

void brk_writer_free(brk_writer *w)
{
	if (w == NULL)
		return;
	brk_writer_stop(w);
	replier_stop(w); /* when the writer never started */
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->rmu);
	pthread_cond_destroy(&w->rcv);
	for (rate_bucket *b = w->buckets_rate, *n; b != NULL; b = n) {
		n = b->next;
		free(b);
	}
	free(w);
}
