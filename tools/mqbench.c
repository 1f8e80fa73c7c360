/* SPDX-License-Identifier: MIT */
/*
 * mqbench: load generator for mq, through the public libmqclient API only.
 *
 *   mqbench [--url URL | --mqd PATH [--mqd-arg ARG]...] [--scenario push|cycle|consume]
 *           [--producers N] [--consumers N] [--inflight W] [--batch B]
 *           [--size BYTES] [--seconds S] [--warmup S] [--max-messages N]
 *           [--backlog N] [--queue NAME] [--async] [--json]
 *
 * Each producer and consumer is one mq_client with W threads, each keeping
 * one synchronous call in flight, so a producer has W requests in flight.
 * With --async, each producer is instead ONE thread keeping W pushes in
 * flight with mq_push_async (the client's in-flight limit set to W);
 * consumers stay threaded. Push latency is then measured from the send to
 * the callback.
 * push:  producers push (batch B messages per request when B > 1).
 * cycle: producers push, consumers pull (up to W*? messages, long poll),
 *        then ack each; producers pause while more than --backlog messages
 *        are pushed but not acked, so the figure is a sustainable cycle rate.
 * consume: fills the queue with --max-messages (default 20000) messages,
 *        then times the consumer runtime (mq_consumer, --consumers worker
 *        threads, default 4, no-op handlers) draining it.
 * With --mqd, mqbench starts that mqd itself on an ipc:// socket with a
 * fresh data dir in $TMPDIR and reports its CPU time. Every run is bounded
 * by --seconds and --max-messages.
 *
 * Reports messages/s and p50/p99/p999 latency of each call.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mq/mq.h"

#define LAT_CAP 200000 /* latency samples kept per thread */

typedef struct lat {
	uint32_t *us;
	size_t n;
} lat;

static struct {
	const char *url;
	const char *mqd;
	const char *mqd_args[16];
	int n_mqd_args;
	const char *scenario;
	int producers, consumers, inflight, batch;
	size_t size;
	double seconds, warmup;
	uint64_t max_messages;
	uint64_t backlog;
	const char *queue;
	bool json;
	bool async;
} opt = {
    .scenario = "push",
    .producers = 1,
    .consumers = 0,
    .inflight = 1,
    .batch = 1,
    .size = 200,
    .seconds = 3,
    .warmup = 0.5,
    .max_messages = 50000000,
    .backlog = 512,
    .queue = "bench",
};

static atomic_uint_fast64_t pushed, acked, pulled;
static atomic_bool stop_flag, measuring;
static atomic_uint_fast64_t errors;
static uint8_t *payload;
/* backlog_sem holds one token per message that may still be pushed before
 * the backlog cap: producers take, consumers give back on ack. */
static sem_t backlog_sem;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void lat_add(lat *l, uint64_t us)
{
	if (!atomic_load(&measuring) || l->n >= LAT_CAP)
		return;
	l->us[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

typedef struct worker {
	pthread_t th;
	mq_client *client;
	lat push_lat, pull_lat, ack_lat;
	pthread_mutex_t lat_mu; /* --async: callbacks add to push_lat */
} worker;

static void note_error(const char *what, mq_status st)
{
	if (atomic_fetch_add(&errors, 1) < 5)
		fprintf(stderr, "mqbench: %s: %s: %s\n", what, mq_status_name(st), mq_errmsg());
}

static void *producer_main(void *arg)
{
	worker *w = arg;
	mq_status st;

	while (!atomic_load(&stop_flag)) {
		if (opt.consumers > 0) {
			int got = 0;
			while (got < opt.batch && !atomic_load(&stop_flag)) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 50000000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				if (sem_timedwait(&backlog_sem, &ts) == 0)
					got++;
			}
			if (got < opt.batch)
				break;
		}
		if (atomic_load(&pushed) >= opt.max_messages) {
			atomic_store(&stop_flag, true);
			break;
		}
		uint64_t t0 = now_us();
		if (opt.batch > 1) {
			const void *pl[1000];
			size_t lens[1000];
			for (int i = 0; i < opt.batch; i++) {
				pl[i] = payload;
				lens[i] = opt.size;
			}
			st = mq_push_batch(w->client, opt.queue, (size_t)opt.batch, pl, lens, NULL,
			                   NULL);
		} else {
			st = mq_push(w->client, opt.queue, payload, opt.size, NULL, NULL, NULL);
		}
		if (st != MQ_OK) {
			note_error("push", st);
			usleep(1000);
			continue;
		}
		lat_add(&w->push_lat, now_us() - t0);
		atomic_fetch_add(&pushed, (uint64_t)opt.batch);
	}
	return NULL;
}

/* async_call is one mq_push_async in flight, freed by its callback. */
typedef struct async_call {
	worker *w;
	uint64_t t0;
} async_call;

static void async_done(async_call *ac, mq_status st, size_t n)
{
	worker *w = ac->w;

	if (st != MQ_OK) {
		note_error("push (async)", st);
	} else {
		uint64_t us = now_us() - ac->t0;
		pthread_mutex_lock(&w->lat_mu);
		lat_add(&w->push_lat, us);
		pthread_mutex_unlock(&w->lat_mu);
		atomic_fetch_add(&pushed, (uint64_t)n);
	}
	free(ac);
}

static void async_push_cb(void *arg, mq_status st, const mq_push_result *r)
{
	(void)r;
	async_done(arg, st, 1);
}

static void async_batch_cb(void *arg, mq_status st, size_t n, const mq_push_result *r)
{
	(void)r;
	async_done(arg, st, n);
}

/* async_producer_main keeps opt.inflight pushes in flight from one thread:
 * mq_push_async blocks while the client's limit (set to W) is reached. */
static void *async_producer_main(void *arg)
{
	worker *w = arg;
	const void *pl[1000];
	size_t lens[1000];
	mq_status st;

	for (int i = 0; i < opt.batch; i++) {
		pl[i] = payload;
		lens[i] = opt.size;
	}
	while (!atomic_load(&stop_flag)) {
		if (opt.consumers > 0) {
			int got = 0;
			while (got < opt.batch && !atomic_load(&stop_flag)) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 50000000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				if (sem_timedwait(&backlog_sem, &ts) == 0)
					got++;
			}
			if (got < opt.batch)
				break;
		}
		if (atomic_load(&pushed) >= opt.max_messages) {
			atomic_store(&stop_flag, true);
			break;
		}
		async_call *ac = malloc(sizeof(*ac));
		if (ac == NULL) {
			note_error("push (async)", MQ_INTERNAL);
			break;
		}
		ac->w = w;
		ac->t0 = now_us();
		if (opt.batch > 1)
			st = mq_push_batch_async(w->client, opt.queue, (size_t)opt.batch, pl, lens,
			                         NULL, async_batch_cb, ac);
		else
			st = mq_push_async(w->client, opt.queue, payload, opt.size, NULL,
			                   async_push_cb, ac);
		if (st != MQ_OK) {
			free(ac);
			note_error("push (async)", st);
			usleep(1000);
		}
	}
	/* Let the calls in flight finish before the client is closed. */
	if ((st = mq_client_flush(w->client, -1)) != MQ_OK)
		note_error("flush", st);
	return NULL;
}

static void *consumer_main(void *arg)
{
	worker *w = arg;
	mq_message *msgs[64];
	mq_pull_opts po = {.wait_ms = 200};
	size_t max = (size_t)(opt.batch > 1 ? (opt.batch > 64 ? 64 : opt.batch) : 1);

	while (!atomic_load(&stop_flag)) {
		size_t n = 0;
		uint64_t t0 = now_us();
		mq_status st = mq_pull(w->client, opt.queue, &po, msgs, max, &n);
		if (st != MQ_OK) {
			note_error("pull", st);
			usleep(1000);
			continue;
		}
		if (n == 0)
			continue;
		lat_add(&w->pull_lat, now_us() - t0);
		atomic_fetch_add(&pulled, n);
		for (size_t i = 0; i < n; i++) {
			t0 = now_us();
			st = mq_ack(w->client, msgs[i]);
			if (st != MQ_OK)
				note_error("ack", st);
			else {
				lat_add(&w->ack_lat, now_us() - t0);
				atomic_fetch_add(&acked, 1);
			}
			sem_post(&backlog_sem); /* acked, or given up: room for one more */
			mq_message_free(msgs[i]);
		}
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

typedef struct pct {
	double p50, p99, p999;
	size_t n;
} pct;

static pct percentiles(worker *ws, int n, size_t off)
{
	size_t total = 0, k = 0;
	pct r = {0};

	for (int i = 0; i < n; i++)
		total += ((lat *)((char *)&ws[i] + off))->n;
	if (total == 0)
		return r;
	uint32_t *all = malloc(total * sizeof(*all));
	for (int i = 0; i < n; i++) {
		lat *l = (lat *)((char *)&ws[i] + off);
		memcpy(all + k, l->us, l->n * sizeof(*all));
		k += l->n;
	}
	qsort(all, total, sizeof(*all), cmp_u32);
	r.p50 = all[total / 2] / 1000.0;
	r.p99 = all[(size_t)(total * 0.99)] / 1000.0;
	r.p999 = all[(size_t)(total * 0.999)] / 1000.0;
	r.n = total;
	free(all);
	return r;
}

static pid_t mqd_pid;
static char mqd_dir[256];

static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	FILE *f;
	unsigned long ut = 0, st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL) {
		char *p = strrchr(buf, ')');
		if (p != NULL)
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			       &st);
	}
	fclose(f);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int spawn_mqd(char *url, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	char data[400], listen[400];
	const char *argv[24];
	int argc = 0;

	snprintf(mqd_dir, sizeof(mqd_dir), "%s/mqbench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(mqd_dir) == NULL)
		return -1;
	snprintf(url, len, "ipc://%s/mq.sock", mqd_dir);
	snprintf(listen, sizeof(listen), "--listen=%s", url);
	snprintf(data, sizeof(data), "--data-dir=%s/data", mqd_dir);
	argv[argc++] = opt.mqd;
	argv[argc++] = listen;
	argv[argc++] = data;
	argv[argc++] = "--log-level=warn";
	for (int i = 0; i < opt.n_mqd_args; i++)
		argv[argc++] = opt.mqd_args[i];
	argv[argc] = NULL;
	mqd_pid = fork();
	if (mqd_pid == 0) {
		execv(opt.mqd, (char *const *)argv);
		_exit(127);
	}
	return mqd_pid > 0 ? 0 : -1;
}

static void stop_mqd(void)
{
	char cmd[300];
	int status;

	if (mqd_pid <= 0)
		return;
	kill(mqd_pid, SIGTERM);
	waitpid(mqd_pid, &status, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", mqd_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "mqbench: could not remove %s\n", mqd_dir);
}

/* ---- scenario consume: the consumer runtime with no-op handlers ---- */

static atomic_uint_fast64_t handled;

static mq_outcome noop_handler(void *arg, const mq_message *m, mq_result *r)
{
	(void)arg;
	(void)m;
	(void)r;
	atomic_fetch_add(&handled, 1);
	return MQ_OUTCOME_DONE;
}

/* run_consume fills the queue with n messages (batches of 1000), then
 * times an mq_consumer with `workers` threads draining it. */
static int run_consume(int workers, uint64_t n)
{
	enum { B = 1000 };
	static const void *pl[B];
	static size_t lens[B];
	mq_client *c;
	mq_consumer *cons;
	mq_consumer_opts co;
	mq_consumer_stats cs;
	const char *queues[1] = {opt.queue};
	uint64_t t0, left = n, deadline;
	double el, cpu0, cpu;
	mq_server_info info = {0};

	if (mq_client_open(&c, opt.url, NULL) != MQ_OK) {
		fprintf(stderr, "mqbench: connect %s: %s\n", opt.url, mq_errmsg());
		return 1;
	}
	mq_queue_purge(c, opt.queue, 0, NULL);
	for (int i = 0; i < B; i++) {
		pl[i] = payload;
		lens[i] = opt.size;
	}
	while (left > 0) {
		size_t k = left < B ? (size_t)left : B;

		if (mq_push_batch(c, opt.queue, k, pl, lens, NULL, NULL) != MQ_OK) {
			fprintf(stderr, "mqbench: fill: %s\n", mq_errmsg());
			mq_client_close(c);
			return 1;
		}
		left -= k;
	}
	mq_consumer_opts_init(&co);
	co.queues = queues;
	co.n_queues = 1;
	co.workers = (uint32_t)workers;
	if (mq_consumer_open(&cons, c, &co) != MQ_OK ||
	    mq_consumer_handle_default(cons, noop_handler, NULL) != MQ_OK) {
		fprintf(stderr, "mqbench: consumer: %s\n", mq_errmsg());
		mq_client_close(c);
		return 1;
	}
	cpu0 = mqd_pid ? proc_cpu_s(mqd_pid) : 0;
	t0 = now_us();
	deadline = t0 + (uint64_t)(opt.seconds * 1e6);
	mq_consumer_start(cons);
	do {
		usleep(2000);
		mq_consumer_stats_get(cons, &cs);
	} while (cs.acked < n && now_us() < deadline);
	el = (double)(now_us() - t0) / 1e6;
	cpu = mqd_pid ? proc_cpu_s(mqd_pid) - cpu0 : 0;
	mq_consumer_stop(cons, 5000);
	mq_consumer_stats_get(cons, &cs);
	mq_consumer_close(cons);
	mq_server_info_get(c, &info);
	mq_client_close(c);
	if (opt.json)
		printf("{\"scenario\":\"consume\",\"workers\":%d,\"size\":%zu,\"messages\":%" PRIu64
		       ",\"acked\":%" PRIu64 ",\"seconds\":%.2f,\"durability\":\"%s\","
		       "\"rate\":%.0f,\"broker_cpu_s\":%.2f,\"errors\":%" PRIu64 "}\n",
		       workers, opt.size, n, (uint64_t)cs.acked, el, info.durability,
		       (double)cs.acked / el, cpu, (uint64_t)cs.errors);
	else
		printf("scenario consume: mq_consumer, %d workers, no-op handlers, %zu-byte "
		       "payloads, %s\n  %.0f msg/s (%" PRIu64 " of %" PRIu64
		       " acked in %.2f s, %" PRIu64 " runtime errors)\n",
		       workers, opt.size, info.durability, (double)cs.acked / el,
		       (uint64_t)cs.acked, n, el, (uint64_t)cs.errors);
	if (mqd_pid)
		printf("  broker CPU: %.2f s (%.0f%% of one core)\n", cpu, 100.0 * cpu / el);
	return cs.acked == n ? 0 : 1;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: mqbench [--url URL | --mqd PATH [--mqd-arg ARG]...]\n"
	        "               [--scenario push|cycle|consume] [--producers N] [--consumers N]\n"
	        "               [--inflight W] [--batch B] [--size BYTES] [--seconds S]\n"
	        "               [--warmup S] [--max-messages N] [--backlog N] [--queue NAME]\n"
	        "               [--async] [--json]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"mqd", required_argument, NULL, 'm'},
	    {"mqd-arg", required_argument, NULL, 'a'},
	    {"scenario", required_argument, NULL, 's'},
	    {"producers", required_argument, NULL, 'p'},
	    {"consumers", required_argument, NULL, 'c'},
	    {"inflight", required_argument, NULL, 'w'},
	    {"batch", required_argument, NULL, 'b'},
	    {"size", required_argument, NULL, 'z'},
	    {"seconds", required_argument, NULL, 't'},
	    {"warmup", required_argument, NULL, 'W'},
	    {"max-messages", required_argument, NULL, 'M'},
	    {"backlog", required_argument, NULL, 'B'},
	    {"queue", required_argument, NULL, 'q'},
	    {"json", no_argument, NULL, 'j'},
	    {"async", no_argument, NULL, 'A'},
	    {"help", no_argument, NULL, 'h'},
	    {0, 0, 0, 0},
	};
	char url[320];
	int c;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'u':
			opt.url = optarg;
			break;
		case 'm':
			opt.mqd = optarg;
			break;
		case 'a':
			if (opt.n_mqd_args < 16)
				opt.mqd_args[opt.n_mqd_args++] = optarg;
			break;
		case 's':
			opt.scenario = optarg;
			break;
		case 'p':
			opt.producers = atoi(optarg);
			break;
		case 'c':
			opt.consumers = atoi(optarg);
			break;
		case 'w':
			opt.inflight = atoi(optarg);
			break;
		case 'b':
			opt.batch = atoi(optarg);
			break;
		case 'z':
			opt.size = (size_t)atol(optarg);
			break;
		case 't':
			opt.seconds = atof(optarg);
			break;
		case 'W':
			opt.warmup = atof(optarg);
			break;
		case 'M':
			opt.max_messages = strtoull(optarg, NULL, 10);
			break;
		case 'B':
			opt.backlog = strtoull(optarg, NULL, 10);
			break;
		case 'q':
			opt.queue = optarg;
			break;
		case 'j':
			opt.json = true;
			break;
		case 'A':
			opt.async = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (strcmp(opt.scenario, "cycle") == 0 && opt.consumers == 0)
		opt.consumers = opt.producers;
	if (strcmp(opt.scenario, "push") == 0)
		opt.consumers = 0;
	if (opt.batch < 1 || opt.batch > 1000 || opt.inflight < 1 || opt.inflight > 256 ||
	    opt.producers < 0 || opt.consumers < 0 || opt.seconds <= 0 || opt.seconds > 600) {
		fprintf(stderr, "mqbench: out-of-range option\n");
		return 2;
	}
	if (opt.mqd != NULL) {
		if (spawn_mqd(url, sizeof(url)) != 0) {
			fprintf(stderr, "mqbench: cannot start %s\n", opt.mqd);
			return 1;
		}
		opt.url = url;
	}
	if (opt.url == NULL)
		opt.url = getenv("MQ_URL") ? getenv("MQ_URL") : "tcp://127.0.0.1:7450";
	sem_init(&backlog_sem, 0, (unsigned)opt.backlog);
	payload = malloc(opt.size + 1);
	memset(payload, 'x', opt.size);
	if (strcmp(opt.scenario, "consume") == 0) {
		/* --consumers = worker threads; --max-messages = how many to drain */
		int rv = run_consume(opt.consumers > 0 ? opt.consumers : 4,
		                     opt.max_messages < 50000000 ? opt.max_messages : 20000);

		stop_mqd();
		return rv;
	}

	mq_client_opts co;
	mq_client_opts_init(&co);
	co.connect_timeout_ms = 10000;
	/* Threads: --async producers are one thread each; the others W each. */
	int n_prod = opt.async ? opt.producers : opt.producers * opt.inflight;
	int n_cons = opt.consumers * opt.inflight;
	worker *ws = calloc((size_t)(n_prod + n_cons), sizeof(*ws));
	mq_client **clients = calloc((size_t)(opt.producers + opt.consumers), sizeof(*clients));
	for (int i = 0; i < opt.producers + opt.consumers; i++) {
		mq_status st = mq_client_open(&clients[i], opt.url, &co);
		if (st != MQ_OK) {
			fprintf(stderr, "mqbench: connect %s: %s\n", opt.url, mq_errmsg());
			stop_mqd();
			return 1;
		}
	}
	mq_queue_purge(clients[0], opt.queue, 0, NULL);
	for (int i = 0; i < opt.producers && opt.async; i++) {
		if (mq_client_set_max_inflight(clients[i], (uint32_t)opt.inflight) != MQ_OK) {
			fprintf(stderr, "mqbench: set max inflight: %s\n", mq_errmsg());
			stop_mqd();
			return 1;
		}
	}
	for (int i = 0; i < n_prod + n_cons; i++) {
		void *(*fn)(void *) =
		    i < n_prod ? (opt.async ? async_producer_main : producer_main) : consumer_main;
		if (i < n_prod)
			ws[i].client = clients[opt.async ? i : i / opt.inflight];
		else
			ws[i].client = clients[opt.producers + (i - n_prod) / opt.inflight];
		pthread_mutex_init(&ws[i].lat_mu, NULL);
		ws[i].push_lat.us = malloc(LAT_CAP * sizeof(uint32_t));
		ws[i].pull_lat.us = malloc(LAT_CAP * sizeof(uint32_t));
		ws[i].ack_lat.us = malloc(LAT_CAP * sizeof(uint32_t));
		pthread_create(&ws[i].th, NULL, fn, &ws[i]);
	}
	usleep((useconds_t)(opt.warmup * 1e6));
	uint64_t p0 = atomic_load(&pushed), a0 = atomic_load(&acked);
	double cpu0 = mqd_pid ? proc_cpu_s(mqd_pid) : 0;
	uint64_t t0 = now_us();
	atomic_store(&measuring, true);
	while (!atomic_load(&stop_flag) && now_us() - t0 < (uint64_t)(opt.seconds * 1e6))
		usleep(10000);
	atomic_store(&measuring, false);
	double el = (double)(now_us() - t0) / 1e6;
	uint64_t dp = atomic_load(&pushed) - p0, da = atomic_load(&acked) - a0;
	double cpu = mqd_pid ? proc_cpu_s(mqd_pid) - cpu0 : 0;
	atomic_store(&stop_flag, true);
	for (int i = 0; i < n_prod + n_cons; i++)
		pthread_join(ws[i].th, NULL);

	pct pu = percentiles(ws, n_prod + n_cons, offsetof(worker, push_lat));
	pct pl = percentiles(ws, n_prod + n_cons, offsetof(worker, pull_lat));
	pct ak = percentiles(ws, n_prod + n_cons, offsetof(worker, ack_lat));
	mq_server_info info = {0};
	mq_server_info_get(clients[0], &info);
	double rate = opt.consumers ? (double)da / el : (double)dp / el;
	if (opt.json) {
		printf("{\"scenario\":\"%s\",\"async\":%s,\"producers\":%d,\"consumers\":%d,"
		       "\"inflight\":%d,"
		       "\"batch\":%d,\"size\":%zu,\"seconds\":%.2f,\"durability\":\"%s\","
		       "\"rate\":%.0f,\"pushed\":%" PRIu64 ",\"acked\":%" PRIu64 ","
		       "\"push_ms\":[%.3f,%.3f,%.3f],\"pull_ms\":[%.3f,%.3f,%.3f],"
		       "\"ack_ms\":[%.3f,%.3f,%.3f],\"broker_cpu_s\":%.2f,\"errors\":%" PRIu64
		       "}\n",
		       opt.scenario, opt.async ? "true" : "false", opt.producers, opt.consumers,
		       opt.inflight, opt.batch, opt.size, el, info.durability, rate, dp, da, pu.p50,
		       pu.p99, pu.p999, pl.p50, pl.p99, pl.p999, ak.p50, ak.p99, ak.p999, cpu,
		       (uint64_t)atomic_load(&errors));
	} else {
		printf(
		    "scenario %s: %d producer(s)%s + %d consumer(s), %d in flight each, batch %d, "
		    "%zu-byte payloads, %s, %.1f s\n",
		    opt.scenario, opt.producers, opt.async ? " (async)" : "", opt.consumers,
		    opt.inflight, opt.batch, opt.size, info.durability, el);
		printf("  %s: %.0f msg/s (pushed %" PRIu64 ", acked %" PRIu64 ")\n",
		       opt.consumers ? "cycles" : "pushes", rate, dp, da);
		printf("  push latency ms: p50 %.3f  p99 %.3f  p999 %.3f  (%zu calls)\n", pu.p50,
		       pu.p99, pu.p999, pu.n);
		if (opt.consumers) {
			printf("  pull latency ms: p50 %.3f  p99 %.3f  p999 %.3f\n", pl.p50, pl.p99,
			       pl.p999);
			printf("  ack  latency ms: p50 %.3f  p99 %.3f  p999 %.3f\n", ak.p50, ak.p99,
			       ak.p999);
		}
		if (mqd_pid)
			printf("  broker CPU: %.2f s over %.1f s (%.0f%% of one core)\n", cpu, el,
			       100.0 * cpu / el);
		if (atomic_load(&errors))
			printf("  errors: %" PRIu64 "\n", (uint64_t)atomic_load(&errors));
	}
	for (int i = 0; i < opt.producers + opt.consumers; i++)
		mq_client_close(clients[i]);
	stop_mqd();
	return atomic_load(&errors) ? 1 : 0;
}
