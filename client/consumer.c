/* SPDX-License-Identifier: MIT */
/* consumer.c: the consumer runtime (mq_consumer), built only on the public
 * synchronous calls (mq_pull, mq_ack, mq_nack, mq_extend_lease_id).
 *
 * Threads:
 * - one fetcher pulls from the queues in turn, asking for at most the free
 *   capacity (workers + prefetch - leases held), and puts the messages in
 *   a bounded ring;
 * - N workers take messages from the ring, run the handler, then ack or
 *   nack;
 * - one heartbeat thread (when opts.heartbeat) extends the lease of each
 *   running handler when a third of its lease remains.
 *
 * Locking: cons->mtx guards the ring, the slots, the flags and the counts;
 * it is never held during a broker call or a handler. The counters of
 * mq_consumer_stats are atomics, read without the lock.
 *
 * Lease timing uses the local monotonic clock: a lease is taken to start
 * when the pull returns, and to last opts.lease_ms, or else the queue's
 * lease time (read once per queue with mq_queue_get), or else, if that
 * failed, what the message's expiry says relative to the local wall clock. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqc.h"

#define MQC_CONS_MAX_QUEUES    64
#define MQC_CONS_MAX_WORKERS   256
#define MQC_CONS_MAX_PREFETCH  1000
#define MQC_CONS_PULL_MAX      1000
#define MQC_CONS_POLL_SLICE_MS 1000 /* longest pull, so stop is not held up */
#define MQC_CONS_BACKOFF_MIN   50
#define MQC_CONS_BACKOFF_MAX   1000
#define MQC_CONS_MIN_LEASE_MS  30 /* floor of an estimated lease time */

/* mqc_handler is one registered (type, fn, arg). */
struct mqc_handler {
	char *type;
	mq_handler_fn fn;
	void *arg;
};

/* mqc_slot is one worker and the message it runs, if any. */
struct mqc_slot {
	mq_consumer *cons;
	pthread_t th;
	bool running;       /* a handler is running on msg */
	bool extending;     /* the heartbeat still extends its lease */
	uint64_t gen;       /* bumped per message, to spot stale extensions */
	uint64_t id, token; /* copied from msg: the heartbeat never reads msg */
	char queue[MQ_NAME_MAX + 1];
	uint32_t lease_ms;  /* lease length assumed for this message */
	uint64_t start_ms;  /* monotonic, handler start */
	uint64_t extend_at; /* monotonic, next extension */
};

struct mq_consumer {
	mq_client *c;
	mq_consumer_opts opts; /* queues points at qnames */
	char **qnames;
	uint32_t *qlease; /* per queue: resolved lease ms, 0 = unknown */
	uint32_t prefetch;

	struct mqc_handler *handlers;
	size_t n_handlers;
	struct mqc_handler dflt; /* fn NULL = none */

	pthread_mutex_t mtx;
	pthread_cond_t cv_work;  /* ring not empty, or stopping */
	pthread_cond_t cv_space; /* capacity freed, or stopping */
	pthread_cond_t cv_idle;  /* a handler finished */
	pthread_cond_t cv_hb;    /* slots changed, or heartbeat quits */

	/* The ring of leased, not started messages: cap = workers + prefetch. */
	mq_message **ring;
	uint32_t *ring_lease; /* lease_ms of each ring entry */
	uint64_t *ring_at;    /* monotonic time each entry was leased */
	size_t cap, head, count;
	size_t held;    /* leases held: ring + running + being acked */
	size_t running; /* handlers running */

	struct mqc_slot *slots;
	pthread_t fetcher, heartbeat;
	bool started, stopping, hb_quit;
	bool hb_started;     /* heartbeat thread not joined yet */
	bool fetcher_joined; /* fetcher thread joined */
	bool joined;         /* every thread joined */

	atomic_uint_fast64_t received, acked, retried, snoozed, failed, extended, errors;
	atomic_uint_fast64_t in_progress;
};

/* ---- Helpers ----------------------------------------------------------- */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* cond_wait_until waits on cv until the monotonic time at_ms (the cond
 * variables use CLOCK_MONOTONIC). */
static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mtx, uint64_t at_ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(at_ms / 1000u);
	ts.tv_nsec = (long)(at_ms % 1000u) * 1000000L;
	(void)pthread_cond_timedwait(cv, mtx, &ts);
}

/* report counts a runtime failure and hands it to on_error. */
static void report(mq_consumer *cons, mq_status st, const char *fmt, ...) MQC_PRINTF(3, 4);

static void report(mq_consumer *cons, mq_status st, const char *fmt, ...)
{
	char msg[640];
	va_list ap;

	atomic_fetch_add(&cons->errors, 1);
	if (cons->opts.on_error == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cons->opts.on_error(cons->opts.on_error_arg, st, msg);
}

/* nack_now gives back a message that was leased but will not be run. */
static void nack_now(mq_consumer *cons, mq_message *m)
{
	mq_status st = mq_nack(cons->c, m, 0, "consumer stopped");

	/* A lease already gone needs no nack. */
	if (st != MQ_OK && st != MQ_FAILED_PRECONDITION && st != MQ_NOT_FOUND)
		report(cons, st, "nack of message %llu on stop: %s",
		       (unsigned long long)mq_message_id(m), mq_errmsg());
	mq_message_free(m);
}

/* ---- Open, options, handlers ------------------------------------------- */

void mq_consumer_opts_init(mq_consumer_opts *opts)
{
	if (opts == NULL)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->workers = 4;
	opts->prefetch = -1;
	opts->wait_ms = 5000;
	opts->heartbeat = true;
	opts->max_processing_ms = 15 * 60 * 1000;
}

static void consumer_free(mq_consumer *cons)
{
	for (size_t i = 0; cons->qnames != NULL && i < cons->opts.n_queues; i++)
		free(cons->qnames[i]);
	free(cons->qnames);
	free(cons->qlease);
	for (size_t i = 0; i < cons->n_handlers; i++)
		free(cons->handlers[i].type);
	free(cons->handlers);
	free(cons->ring);
	free(cons->ring_lease);
	free(cons->ring_at);
	free(cons->slots);
	pthread_cond_destroy(&cons->cv_hb);
	pthread_cond_destroy(&cons->cv_idle);
	pthread_cond_destroy(&cons->cv_space);
	pthread_cond_destroy(&cons->cv_work);
	pthread_mutex_destroy(&cons->mtx);
	free(cons);
}

mq_status mq_consumer_open(mq_consumer **out, mq_client *c, const mq_consumer_opts *opts)
{
	pthread_condattr_t ca;
	mq_consumer *cons;
	mq_status st;

	if (out == NULL || c == NULL || opts == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_consumer_open: out, client and opts are "
		                                     "required");
	if (opts->queues == NULL || opts->n_queues < 1 || opts->n_queues > MQC_CONS_MAX_QUEUES)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_consumer_open: want 1 to %d queues",
		                MQC_CONS_MAX_QUEUES);
	for (size_t i = 0; i < opts->n_queues; i++) {
		if ((st = mqc_check_name("queue name", opts->queues[i])) != MQ_OK)
			return st;
	}
	if (opts->workers < 1 || opts->workers > MQC_CONS_MAX_WORKERS)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_consumer_open: workers is %u, want 1 to %d", opts->workers,
		                MQC_CONS_MAX_WORKERS);
	if (opts->prefetch < -1 || opts->prefetch > MQC_CONS_MAX_PREFETCH)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_consumer_open: prefetch is %d, want -1 to %d", opts->prefetch,
		                MQC_CONS_MAX_PREFETCH);
	if ((cons = calloc(1, sizeof(*cons))) == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");
	pthread_mutex_init(&cons->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cons->cv_work, &ca);
	pthread_cond_init(&cons->cv_space, &ca);
	pthread_cond_init(&cons->cv_idle, &ca);
	pthread_cond_init(&cons->cv_hb, &ca);
	pthread_condattr_destroy(&ca);

	cons->c = c;
	cons->opts = *opts;
	cons->prefetch = opts->prefetch < 0 ? opts->workers : (uint32_t)opts->prefetch;
	cons->cap = opts->workers + cons->prefetch;
	cons->qnames = calloc(opts->n_queues, sizeof(*cons->qnames));
	cons->qlease = calloc(opts->n_queues, sizeof(*cons->qlease));
	cons->ring = calloc(cons->cap, sizeof(*cons->ring));
	cons->ring_lease = calloc(cons->cap, sizeof(*cons->ring_lease));
	cons->ring_at = calloc(cons->cap, sizeof(*cons->ring_at));
	cons->slots = calloc(opts->workers, sizeof(*cons->slots));
	if (cons->qnames == NULL || cons->qlease == NULL || cons->ring == NULL ||
	    cons->ring_lease == NULL || cons->ring_at == NULL || cons->slots == NULL)
		goto oom;
	for (size_t i = 0; i < opts->n_queues; i++) {
		if ((cons->qnames[i] = strdup(opts->queues[i])) == NULL)
			goto oom;
	}
	cons->opts.queues = (const char *const *)cons->qnames;
	for (uint32_t i = 0; i < opts->workers; i++)
		cons->slots[i].cons = cons;
	*out = cons;
	return mqc_ok();
oom:
	consumer_free(cons);
	return mqc_fail(MQ_INTERNAL, "out of memory");
}

mq_status mq_consumer_handle(mq_consumer *cons, const char *type, mq_handler_fn fn, void *arg)
{
	struct mqc_handler *hs;

	if (cons == NULL || type == NULL || fn == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_consumer_handle: consumer, type and fn are required");
	if (cons->started)
		return mqc_fail(MQ_FAILED_PRECONDITION,
		                "mq_consumer_handle: the consumer is started");
	for (size_t i = 0; i < cons->n_handlers; i++) {
		if (strcmp(cons->handlers[i].type, type) == 0)
			return mqc_fail(MQ_ALREADY_EXISTS,
			                "mq_consumer_handle: type \"%s\" has a handler", type);
	}
	hs = realloc(cons->handlers, (cons->n_handlers + 1) * sizeof(*hs));
	if (hs == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");
	cons->handlers = hs;
	if ((hs[cons->n_handlers].type = strdup(type)) == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");
	hs[cons->n_handlers].fn = fn;
	hs[cons->n_handlers].arg = arg;
	cons->n_handlers++;
	return mqc_ok();
}

mq_status mq_consumer_handle_default(mq_consumer *cons, mq_handler_fn fn, void *arg)
{
	if (cons == NULL || fn == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "mq_consumer_handle_default: consumer and fn are required");
	if (cons->started)
		return mqc_fail(MQ_FAILED_PRECONDITION,
		                "mq_consumer_handle_default: the consumer is started");
	cons->dflt.fn = fn;
	cons->dflt.arg = arg;
	return mqc_ok();
}

/* ---- Fetcher ----------------------------------------------------------- */

/* queue_lease_ms returns the lease time of queue qi, reading it from the
 * broker the first time; 0 when unknown (the caller estimates it). */
static uint32_t queue_lease_ms(mq_consumer *cons, size_t qi)
{
	mq_queue_info qinfo;
	mq_server_info sinfo;

	if (cons->opts.lease_ms > 0)
		return cons->opts.lease_ms;
	if (cons->qlease[qi] > 0)
		return cons->qlease[qi];
	if (mq_queue_get(cons->c, cons->qnames[qi], &qinfo) != MQ_OK)
		return 0;
	if (qinfo.config.lease_ms > 0)
		cons->qlease[qi] = qinfo.config.lease_ms;
	else if (mq_server_info_get(cons->c, &sinfo) == MQ_OK)
		cons->qlease[qi] = sinfo.default_lease_ms;
	return cons->qlease[qi];
}

/* backoff sleeps ms, or less if the consumer stops. */
static void backoff(mq_consumer *cons, uint32_t ms)
{
	uint64_t until = mono_ms() + ms;

	pthread_mutex_lock(&cons->mtx);
	while (!cons->stopping && mono_ms() < until)
		cond_wait_until(&cons->cv_space, &cons->mtx, until);
	pthread_mutex_unlock(&cons->mtx);
}

static void *fetcher_main(void *arg)
{
	mq_consumer *cons = arg;
	size_t nq = cons->opts.n_queues, qi = 0, empty_streak = 0;
	uint32_t delay = MQC_CONS_BACKOFF_MIN;
	mq_message **got = calloc(MQC_CONS_PULL_MAX, sizeof(*got));

	if (got == NULL) {
		report(cons, MQ_INTERNAL, "consumer fetcher: out of memory");
		return NULL;
	}
	for (;;) {
		mq_pull_opts po = {0};
		size_t want, n = 0, q = qi;
		uint32_t lease;
		uint64_t now;
		mq_status st;

		pthread_mutex_lock(&cons->mtx);
		while (!cons->stopping && cons->held >= cons->cap)
			pthread_cond_wait(&cons->cv_space, &cons->mtx);
		if (cons->stopping) {
			pthread_mutex_unlock(&cons->mtx);
			break;
		}
		want = cons->cap - cons->held;
		pthread_mutex_unlock(&cons->mtx);
		if (want > MQC_CONS_PULL_MAX)
			want = MQC_CONS_PULL_MAX;

		/* With several queues, a round of quick pulls first; long-poll
		 * only when a whole round found nothing. */
		if (empty_streak + 1 >= nq)
			po.wait_ms = cons->opts.wait_ms < MQC_CONS_POLL_SLICE_MS
			                 ? cons->opts.wait_ms
			                 : MQC_CONS_POLL_SLICE_MS;
		po.lease_ms = cons->opts.lease_ms;
		qi = (qi + 1) % nq;
		st = mq_pull(cons->c, cons->qnames[q], &po, got, want, &n);
		if (st != MQ_OK) {
			report(cons, st, "pull from %s: %s", cons->qnames[q], mq_errmsg());
			backoff(cons, delay);
			delay = delay * 2 > MQC_CONS_BACKOFF_MAX ? MQC_CONS_BACKOFF_MAX : delay * 2;
			continue;
		}
		delay = MQC_CONS_BACKOFF_MIN;
		if (n == 0) {
			empty_streak++;
			continue;
		}
		empty_streak = 0;
		now = mono_ms();
		atomic_fetch_add(&cons->received, n);
		lease = queue_lease_ms(cons, q);
		if (lease == 0) {
			/* Unknown: estimate from the first message's expiry. */
			uint64_t exp = mq_message_lease_expiry_ms(got[0]), w = wall_ms();
			lease = exp > w + MQC_CONS_MIN_LEASE_MS ? (uint32_t)(exp - w)
			                                        : MQC_CONS_MIN_LEASE_MS;
		}
		pthread_mutex_lock(&cons->mtx);
		if (cons->stopping) {
			pthread_mutex_unlock(&cons->mtx);
			for (size_t i = 0; i < n; i++)
				nack_now(cons, got[i]);
			break;
		}
		for (size_t i = 0; i < n; i++) {
			size_t at = (cons->head + cons->count) % cons->cap;
			cons->ring[at] = got[i];
			cons->ring_lease[at] = lease;
			cons->ring_at[at] = now;
			cons->count++;
		}
		cons->held += n;
		pthread_cond_broadcast(&cons->cv_work);
		pthread_mutex_unlock(&cons->mtx);
	}
	free(got);
	return NULL;
}

/* ---- Workers ----------------------------------------------------------- */

static const struct mqc_handler *find_handler(const mq_consumer *cons, const char *type)
{
	for (size_t i = 0; i < cons->n_handlers; i++) {
		if (strcmp(cons->handlers[i].type, type) == 0)
			return &cons->handlers[i];
	}
	return cons->dflt.fn != NULL ? &cons->dflt : NULL;
}

/* settle acks or nacks m after its handler returned. */
static void settle(mq_consumer *cons, const mq_message *m, const struct mqc_handler *h,
                   mq_outcome out, const mq_result *r)
{
	char err[MQ_RESULT_ERROR_MAX + 64];
	const char *what;
	mq_status st;

	if (h == NULL) {
		snprintf(err, sizeof(err), "no handler for type %s", mq_message_type(m));
		what = "nack";
		if ((st = mq_nack(cons->c, m, 0, err)) == MQ_OK)
			atomic_fetch_add(&cons->failed, 1);
	} else if (out == MQ_OUTCOME_DONE) {
		what = "ack";
		if ((st = mq_ack(cons->c, m)) == MQ_OK)
			atomic_fetch_add(&cons->acked, 1);
	} else if (out == MQ_OUTCOME_RETRY) {
		what = "nack";
		if ((st = mq_nack(cons->c, m, r->delay_ms, r->error)) == MQ_OK)
			atomic_fetch_add(&cons->retried, 1);
	} else if (out == MQ_OUTCOME_SNOOZE) {
		what = "snooze";
		if ((st = mq_snooze(cons->c, m, r->delay_ms)) == MQ_OK)
			atomic_fetch_add(&cons->snoozed, 1);
	} else {
		/* FAIL: no retry; the broker sends the message dead at once,
		 * keeping the handler's error as the reason. */
		what = "term";
		if ((st = mq_term(cons->c, m, r->error[0] ? r->error : "handler failed")) == MQ_OK)
			atomic_fetch_add(&cons->failed, 1);
	}
	if (st != MQ_OK)
		report(cons, st, "%s of message %llu on %s: %s", what,
		       (unsigned long long)mq_message_id(m), mq_message_queue(m), mq_errmsg());
}

static void *worker_main(void *arg)
{
	struct mqc_slot *slot = arg;
	mq_consumer *cons = slot->cons;

	for (;;) {
		const struct mqc_handler *h;
		mq_outcome out = MQ_OUTCOME_DONE;
		mq_result r;
		mq_message *m;
		uint32_t lease;
		uint64_t at, now;

		pthread_mutex_lock(&cons->mtx);
		while (!cons->stopping && cons->count == 0)
			pthread_cond_wait(&cons->cv_work, &cons->mtx);
		if (cons->stopping) {
			/* What is left in the ring is mq_consumer_stop's to nack. */
			pthread_mutex_unlock(&cons->mtx);
			break;
		}
		m = cons->ring[cons->head];
		lease = cons->ring_lease[cons->head];
		at = cons->ring_at[cons->head];
		cons->head = (cons->head + 1) % cons->cap;
		cons->count--;
		now = mono_ms();
		slot->running = true;
		slot->extending = cons->opts.heartbeat;
		slot->gen++;
		slot->id = mq_message_id(m);
		slot->token = mq_message_lease_token(m);
		snprintf(slot->queue, sizeof(slot->queue), "%s", mq_message_queue(m));
		slot->lease_ms = lease;
		slot->start_ms = now;
		slot->extend_at = at + (uint64_t)lease * 2 / 3;
		cons->running++;
		atomic_fetch_add(&cons->in_progress, 1);
		pthread_cond_signal(&cons->cv_hb);
		pthread_mutex_unlock(&cons->mtx);

		memset(&r, 0, sizeof(r));
		h = find_handler(cons, mq_message_type(m));
		if (h != NULL) {
			out = h->fn(h->arg, m, &r);
			r.error[sizeof(r.error) - 1] = '\0';
		}
		pthread_mutex_lock(&cons->mtx);
		slot->running = false; /* no more extensions */
		pthread_mutex_unlock(&cons->mtx);

		settle(cons, m, h, out, &r);
		mq_message_free(m);

		pthread_mutex_lock(&cons->mtx);
		cons->running--;
		cons->held--;
		atomic_fetch_sub(&cons->in_progress, 1);
		pthread_cond_signal(&cons->cv_space);
		pthread_cond_broadcast(&cons->cv_idle);
		pthread_mutex_unlock(&cons->mtx);
	}
	return NULL;
}

/* ---- Heartbeat --------------------------------------------------------- */

static void *heartbeat_main(void *arg)
{
	mq_consumer *cons = arg;
	uint32_t maxp = cons->opts.max_processing_ms;

	pthread_mutex_lock(&cons->mtx);
	while (!cons->hb_quit) {
		uint64_t now = mono_ms(), next = now + 1000;
		struct mqc_slot *due = NULL;

		for (uint32_t i = 0; i < cons->opts.workers; i++) {
			struct mqc_slot *s = &cons->slots[i];
			if (!s->running || !s->extending)
				continue;
			if (maxp > 0 && now - s->start_ms >= maxp) {
				s->extending = false;
				pthread_mutex_unlock(&cons->mtx);
				report(cons, MQ_DEADLINE_EXCEEDED,
				       "handler of message %llu on %s ran over max_processing_ms "
				       "(%u ms): its lease is no longer extended",
				       (unsigned long long)s->id, s->queue, maxp);
				pthread_mutex_lock(&cons->mtx);
				due = NULL;
				next = now;
				break;
			}
			if (s->extend_at <= now) {
				due = s;
				break;
			}
			if (s->extend_at < next)
				next = s->extend_at;
		}
		if (due != NULL) {
			char queue[MQ_NAME_MAX + 1];
			uint64_t id = due->id, token = due->token, gen = due->gen, t0 = now;
			uint32_t lease = due->lease_ms;
			mq_status st;

			memcpy(queue, due->queue, sizeof(queue));
			/* Retry a failed extension after a sixth of the lease. */
			due->extend_at = now + (lease / 6 > 0 ? lease / 6 : 1);
			pthread_mutex_unlock(&cons->mtx);
			st = mq_extend_lease_id(cons->c, queue, id, token, cons->opts.lease_ms,
			                        NULL);
			pthread_mutex_lock(&cons->mtx);
			if (!due->running || due->gen != gen)
				continue; /* finished meanwhile: the outcome is all */
			if (st == MQ_OK) {
				atomic_fetch_add(&cons->extended, 1);
				due->extend_at = t0 + (uint64_t)lease * 2 / 3;
				continue;
			}
			if (st == MQ_FAILED_PRECONDITION || st == MQ_NOT_FOUND)
				due->extending = false; /* lease lost: nothing to extend */
			pthread_mutex_unlock(&cons->mtx);
			report(cons, st, "extend lease of message %llu on %s: %s",
			       (unsigned long long)id, queue, mq_errmsg());
			pthread_mutex_lock(&cons->mtx);
			continue;
		}
		if (next > now)
			cond_wait_until(&cons->cv_hb, &cons->mtx, next);
	}
	pthread_mutex_unlock(&cons->mtx);
	return NULL;
}

/* ---- Start, stop, close ------------------------------------------------ */

/* stop_threads makes every thread leave and joins those that exist; used
 * when start fails half-way. */
static void stop_threads(mq_consumer *cons, uint32_t n_workers, bool fetcher)
{
	pthread_mutex_lock(&cons->mtx);
	cons->stopping = true;
	cons->hb_quit = true;
	pthread_cond_broadcast(&cons->cv_work);
	pthread_cond_broadcast(&cons->cv_space);
	pthread_cond_broadcast(&cons->cv_hb);
	pthread_mutex_unlock(&cons->mtx);
	if (fetcher)
		pthread_join(cons->fetcher, NULL);
	cons->fetcher_joined = true;
	for (uint32_t i = 0; i < n_workers; i++)
		pthread_join(cons->slots[i].th, NULL);
	if (cons->hb_started)
		pthread_join(cons->heartbeat, NULL);
	cons->joined = true;
}

mq_status mq_consumer_start(mq_consumer *cons)
{
	uint32_t i;

	if (cons == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_consumer_start: consumer is NULL");
	if (cons->started)
		return mqc_fail(MQ_FAILED_PRECONDITION, "mq_consumer_start: already started");
	cons->started = true;
	if (cons->opts.heartbeat) {
		if (pthread_create(&cons->heartbeat, NULL, heartbeat_main, cons) != 0) {
			stop_threads(cons, 0, false);
			return mqc_fail(MQ_INTERNAL, "mq_consumer_start: cannot create a thread");
		}
		cons->hb_started = true;
	}
	for (i = 0; i < cons->opts.workers; i++) {
		if (pthread_create(&cons->slots[i].th, NULL, worker_main, &cons->slots[i]) != 0) {
			stop_threads(cons, i, false);
			return mqc_fail(MQ_INTERNAL, "mq_consumer_start: cannot create a thread");
		}
	}
	if (pthread_create(&cons->fetcher, NULL, fetcher_main, cons) != 0) {
		stop_threads(cons, i, false);
		return mqc_fail(MQ_INTERNAL, "mq_consumer_start: cannot create a thread");
	}
	return mqc_ok();
}

mq_status mq_consumer_stop(mq_consumer *cons, uint32_t deadline_ms)
{
	uint64_t until = deadline_ms == MQ_CONSUMER_NO_DEADLINE ? 0 : mono_ms() + deadline_ms;
	mq_message **left;
	size_t n = 0;
	bool busy;

	if (cons == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_consumer_stop: consumer is NULL");
	if (!cons->started || cons->joined)
		return mqc_ok();
	if ((left = calloc(cons->cap, sizeof(*left))) == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");

	/* No new pulls, no new handlers; take what was prefetched. */
	pthread_mutex_lock(&cons->mtx);
	cons->stopping = true;
	pthread_cond_broadcast(&cons->cv_work);
	pthread_cond_broadcast(&cons->cv_space);
	while (cons->count > 0) {
		left[n++] = cons->ring[cons->head];
		cons->head = (cons->head + 1) % cons->cap;
		cons->count--;
	}
	pthread_mutex_unlock(&cons->mtx);
	for (size_t i = 0; i < n; i++)
		nack_now(cons, left[i]);
	free(left);
	pthread_mutex_lock(&cons->mtx);
	cons->held -= n;
	pthread_mutex_unlock(&cons->mtx);

	/* A pull in flight ends within its slice; the fetcher nacks it. */
	if (!cons->fetcher_joined) {
		pthread_join(cons->fetcher, NULL);
		cons->fetcher_joined = true;
	}

	/* Running handlers: wait for them up to the deadline. */
	pthread_mutex_lock(&cons->mtx);
	while (cons->running > 0 && (until == 0 || mono_ms() < until)) {
		if (until == 0)
			pthread_cond_wait(&cons->cv_idle, &cons->mtx);
		else
			cond_wait_until(&cons->cv_idle, &cons->mtx, until);
	}
	busy = cons->running > 0;
	cons->hb_quit = true;
	pthread_cond_broadcast(&cons->cv_hb);
	pthread_mutex_unlock(&cons->mtx);
	if (cons->hb_started) {
		pthread_join(cons->heartbeat, NULL);
		cons->hb_started = false;
	}
	if (busy)
		return mqc_fail(MQ_DEADLINE_EXCEEDED,
		                "mq_consumer_stop: handlers still running after %u ms",
		                deadline_ms);
	for (uint32_t i = 0; i < cons->opts.workers; i++)
		pthread_join(cons->slots[i].th, NULL);
	cons->joined = true;
	return mqc_ok();
}

void mq_consumer_close(mq_consumer *cons)
{
	if (cons == NULL)
		return;
	/* Also after a stop that ran out of time: it waits for the handlers
	 * still running and joins what is left. */
	if (cons->started && !cons->joined)
		(void)mq_consumer_stop(cons, MQ_CONSUMER_NO_DEADLINE);
	consumer_free(cons);
}

void mq_consumer_stats_get(const mq_consumer *cons, mq_consumer_stats *out)
{
	mq_consumer *mc = (mq_consumer *)cons;

	if (cons == NULL || out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	out->received = atomic_load(&mc->received);
	out->acked = atomic_load(&mc->acked);
	out->retried = atomic_load(&mc->retried);
	out->snoozed = atomic_load(&mc->snoozed);
	out->failed = atomic_load(&mc->failed);
	out->extended = atomic_load(&mc->extended);
	out->errors = atomic_load(&mc->errors);
	out->in_progress = atomic_load(&mc->in_progress);
}
