/* SPDX-License-Identifier: MIT */
/*
 * sys_mq.c: mqbench's driver for mq, through the public <mq/mq.h> only.
 * It starts mqd (--mqd) on an ipc:// socket in a fresh temp dir, or uses
 * a running broker (--url).
 *
 * With --storage postgres each run starts --instances N mqd on the same
 * database and schema (pg.c: mqbench's own cluster unless --pg), each on
 * its own ipc:// socket; the workers are spread over them round-robin
 * (worker k, producers first, uses instance k mod N). A schema mqbench
 * named itself is dropped after the run.
 *
 * Natural mode (the numbered scenarios): each producer is one thread
 * keeping W pushes (or batch pushes) in flight with mq_push_async, each
 * consumer one thread pulling up to W messages per request (long poll) and
 * acking them with one mq_ack_batch. Legacy modes (--scenario push|cycle)
 * keep the original shape: W threads per producer or consumer, each with
 * one synchronous call in flight (--async: async producers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "mq/mq.h"

const char *mq_opt_url;
const char *mq_opt_mqd;
const char *mq_opt_mqd_args[16];
int mq_opt_n_mqd_args;
const char *mq_opt_storage;
const char *mq_opt_pg_schema;
int mq_opt_instances = 1;

static bool on_postgres(void)
{
	return mq_opt_storage != NULL && strcmp(mq_opt_storage, "postgres") == 0;
}

static const char *mq_unavailable(void)
{
	if (mq_opt_url == NULL && mq_opt_mqd == NULL)
		return "neither --mqd nor --url given";
	if (mq_opt_url == NULL && access(mq_opt_mqd, X_OK) != 0)
		return "the --mqd program is not executable";
	if (on_postgres())
		return pg_unavailable();
	return NULL;
}

static int mq_connect(const char *url, mq_client **c, char *err, size_t errlen)
{
	mq_client_opts co;

	mq_client_opts_init(&co);
	co.connect_timeout_ms = 10000;
	co.timeout_ms = 30000;
	if (mq_client_open(c, url, &co) != MQ_OK) {
		snprintf(err, errlen, "connect %s: %s", url, mq_errmsg());
		return -1;
	}
	return 0;
}

/* spawn_mqd starts one mqd in srv (a fresh dir) and waits for its socket. */
static int spawn_mqd(bserver *srv, bool relaxed, const char *conninfo, char *err, size_t errlen)
{
	char listen[400], data[400], storage[64], pg[600], schema[128];
	const char *argv[32];
	int argc = 0;

	if (server_mkdir(srv, "mq", err, errlen) != 0)
		return -1;
	snprintf(srv->url, sizeof(srv->url), "ipc://%s/mq.sock", srv->dir);
	snprintf(listen, sizeof(listen), "--listen=%s", srv->url);
	snprintf(data, sizeof(data), "--data-dir=%s", srv->data);
	argv[argc++] = mq_opt_mqd;
	argv[argc++] = listen;
	argv[argc++] = data;
	argv[argc++] = "--log-level=warn";
	if (mq_opt_storage != NULL) {
		snprintf(storage, sizeof(storage), "--storage=%s", mq_opt_storage);
		argv[argc++] = storage;
	}
	if (conninfo != NULL) {
		snprintf(pg, sizeof(pg), "--pg=%s", conninfo);
		snprintf(schema, sizeof(schema), "--pg-schema=%s", srv->pg_schema);
		argv[argc++] = pg;
		argv[argc++] = schema;
	}
	if (relaxed)
		argv[argc++] = "--durability=relaxed";
	for (int i = 0; i < mq_opt_n_mqd_args; i++)
		argv[argc++] = mq_opt_mqd_args[i];
	argv[argc] = NULL;
	if (server_spawn(srv, argv, err, errlen) != 0 ||
	    server_wait_path(srv, srv->url + strlen("ipc://"), 30, err, errlen) != 0)
		return -1;
	return 0;
}

/* info_check reads url's ServerInfo; with postgres the engine must be
 * "postgres". */
static int info_check(const char *url, mq_server_info *info, char *err, size_t errlen)
{
	mq_client *c;

	if (mq_connect(url, &c, err, errlen) != 0)
		return -1;
	if (mq_server_info_get(c, info) != MQ_OK) {
		snprintf(err, errlen, "server info: %s", mq_errmsg());
		mq_client_close(c);
		return -1;
	}
	mq_client_close(c);
	if (on_postgres() && strcmp(info->storage_engine, "postgres") != 0) {
		snprintf(err, errlen, "%s reports storage engine '%s', not postgres", url,
		         info->storage_engine);
		return -1;
	}
	return 0;
}

static int mq_start(bserver *srv, bool relaxed, char *err, size_t errlen)
{
	const char *interval = "10";
	const char *conninfo = NULL;
	char pgdur[128] = "";
	mq_server_info info;
	int n = mq_opt_instances;

	for (int i = 0; i < mq_opt_n_mqd_args; i++)
		if (strncmp(mq_opt_mqd_args[i], "--sync-interval-ms=", 19) == 0)
			interval = mq_opt_mqd_args[i] + 19;
	if (mq_opt_url != NULL) { /* a broker mqbench did not start */
		memset(srv, 0, sizeof(*srv));
		snprintf(srv->url, sizeof(srv->url), "%s", mq_opt_url);
	} else {
		if (on_postgres()) {
			if (pg_cluster_ensure(&conninfo, &srv->pg_pid, err, errlen) != 0)
				return -1;
			if (mq_opt_pg_schema != NULL)
				snprintf(srv->pg_schema, sizeof(srv->pg_schema), "%s",
				         mq_opt_pg_schema);
			else
				pg_schema_new(srv->pg_schema, sizeof(srv->pg_schema), "");
			if (pg_durability(pgdur, sizeof(pgdur), err, errlen) != 0)
				return -1;
		}
		if (spawn_mqd(srv, relaxed, conninfo, err, errlen) != 0)
			return -1;
		/* The first instance has created the schema; the others join. */
		if (n > 1) {
			if ((srv->more = calloc((size_t)n - 1, sizeof(*srv->more))) == NULL) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			srv->n_more = n - 1;
			for (int i = 0; i < n - 1; i++) {
				snprintf(srv->more[i].pg_schema, sizeof(srv->more[i].pg_schema),
				         "%s", srv->pg_schema);
				if (spawn_mqd(&srv->more[i], relaxed, conninfo, err, errlen) != 0)
					return -1;
			}
		}
	}
	if (info_check(srv->url, &info, err, errlen) != 0)
		return -1;
	for (int i = 0; i < srv->n_more; i++) {
		mq_server_info more;

		if (info_check(srv->more[i].url, &more, err, errlen) != 0)
			return -1;
	}
	if (on_postgres() && strcmp(info.durability, "durable") == 0)
		snprintf(srv->durability, sizeof(srv->durability), "durable: reply after COMMIT");
	else if (strcmp(info.durability, "relaxed") == 0)
		snprintf(srv->durability, sizeof(srv->durability), "relaxed: fsync every %s ms",
		         interval);
	else if (strcmp(info.durability, "durable") == 0)
		snprintf(srv->durability, sizeof(srv->durability), "durable: reply after fsync");
	else
		snprintf(srv->durability, sizeof(srv->durability), "%s", info.durability);
	if (on_postgres())
		snprintf(srv->note, sizeof(srv->note), "%d mqd on PostgreSQL (%s), schema %s", n,
		         pgdur, srv->pg_schema);
	return 0;
}

static void mq_stop(bserver *srv)
{
	char sql[160], err[256];

	for (int i = 0; i < srv->n_more; i++)
		server_stop(&srv->more[i]);
	free(srv->more);
	srv->more = NULL;
	srv->n_more = 0;
	if (on_postgres() && mq_opt_url == NULL && mq_opt_pg_schema == NULL &&
	    srv->pg_schema[0] != '\0') {
		server_kill(srv); /* no mqd may hold the schema's tables */
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", srv->pg_schema);
		if (getenv("MQBENCH_KEEP") == NULL && pg_exec(sql, err, sizeof(err)) != 0)
			fprintf(stderr, "mqbench: drop schema %s: %s\n", srv->pg_schema, err);
		srv->pg_schema[0] = '\0';
	}
}

/* worker_url is the instance worker w uses: round-robin over all workers,
 * producers first. */
static const char *worker_url(const bw *w)
{
	const bserver *srv = w->run->srv;
	int k = w->role == ROLE_PRODUCER ? w->idx : w->run->producers + w->idx;
	int i = k % (srv->n_more + 1);

	return i == 0 ? srv->url : srv->more[i - 1].url;
}

static int mq_prepare(brun *r, char *err, size_t errlen)
{
	mq_client *c;
	mq_status st;

	if (mq_connect(r->srv->url, &c, err, errlen) != 0)
		return -1;
	st = mq_queue_purge(c, r->queue, 0, NULL);
	if (st != MQ_OK && st != MQ_NOT_FOUND) {
		snprintf(err, errlen, "purge %s: %s", r->queue, mq_errmsg());
		mq_client_close(c);
		return -1;
	}
	mq_client_close(c);
	return 0;
}

static int mq_threads_per(const brun *r, int role)
{
	if (role == ROLE_PRODUCER)
		return r->natural || r->legacy_async ? 1 : r->inflight;
	return r->natural ? 1 : r->inflight;
}

static bool async_producer(const brun *r)
{
	return r->natural || r->legacy_async;
}

static int mq_open(bw *w, char *err, size_t errlen)
{
	mq_client *c;

	if (mq_connect(worker_url(w), &c, err, errlen) != 0)
		return -1;
	if (w->role == ROLE_PRODUCER && async_producer(w->run) &&
	    mq_client_set_max_inflight(c, (uint32_t)w->run->inflight) != MQ_OK) {
		snprintf(err, errlen, "set max inflight: %s", mq_errmsg());
		mq_client_close(c);
		return -1;
	}
	w->conn = c;
	return 0;
}

static void mq_close(bw *w)
{
	mq_client_close(w->conn);
	w->conn = NULL;
}

/* async_call is one async push in flight, freed by its callback. */
typedef struct async_call {
	bw *w;
	uint64_t t0;
} async_call;

static void async_done(async_call *ac, mq_status st, size_t n)
{
	bw *w = ac->w;

	if (st != MQ_OK) {
		run_error(w->run, "push (async)", "%s: %s", mq_status_name(st), mq_errmsg());
		run_give(w->run, (int)n);
	} else {
		lat_add_locked(w, &w->push_lat, now_us() - ac->t0);
		run_pushed(w->run, n);
	}
	free(ac);
}

static void async_push_cb(void *arg, mq_status st, const mq_push_result *res)
{
	(void)res;
	async_done(arg, st, 1);
}

static void async_batch_cb(void *arg, mq_status st, size_t n, const mq_push_result *res)
{
	(void)res;
	async_done(arg, st, n);
}

static void *mq_producer_main(void *arg)
{
	bw *w = arg;
	brun *r = w->run;
	mq_client *c = w->conn;
	const void **pl = calloc((size_t)r->batch, sizeof(*pl));
	size_t *lens = calloc((size_t)r->batch, sizeof(*lens));
	mq_status st;

	if (pl == NULL || lens == NULL) {
		run_error(r, "push", "out of memory");
		free(pl);
		free(lens);
		return NULL;
	}
	for (int i = 0; i < r->batch; i++) {
		pl[i] = w->buf;
		lens[i] = r->size;
	}
	while (run_take(w, r->batch)) {
		const uint8_t *p = payload_stamp(w);
		uint64_t t0 = now_us();

		if (async_producer(r)) {
			async_call *ac = malloc(sizeof(*ac));

			if (ac == NULL) {
				run_error(r, "push (async)", "out of memory");
				break;
			}
			ac->w = w;
			ac->t0 = t0;
			if (r->batch > 1)
				st = mq_push_batch_async(c, r->queue, (size_t)r->batch, pl, lens,
				                         NULL, async_batch_cb, ac);
			else
				st =
				    mq_push_async(c, r->queue, p, r->size, NULL, async_push_cb, ac);
			if (st != MQ_OK) {
				free(ac);
				run_error(r, "push (async)", "%s: %s", mq_status_name(st),
				          mq_errmsg());
				run_give(r, r->batch);
				usleep(1000);
			}
			continue;
		}
		if (r->batch > 1)
			st = mq_push_batch(c, r->queue, (size_t)r->batch, pl, lens, NULL, NULL);
		else
			st = mq_push(c, r->queue, p, r->size, NULL, NULL, NULL);
		if (st != MQ_OK) {
			run_error(r, "push", "%s: %s", mq_status_name(st), mq_errmsg());
			run_give(r, r->batch);
			usleep(1000);
			continue;
		}
		lat_add(r, &w->push_lat, now_us() - t0);
		run_pushed(r, (uint64_t)r->batch);
	}
	/* Let the calls in flight finish before the client is closed. */
	if (async_producer(r) && (st = mq_client_flush(c, 30000)) != MQ_OK)
		run_error(r, "flush", "%s: %s", mq_status_name(st), mq_errmsg());
	free(pl);
	free(lens);
	return NULL;
}

static void *mq_consumer_main(void *arg)
{
	bw *w = arg;
	brun *r = w->run;
	mq_client *c = w->conn;
	mq_pull_opts po = {.wait_ms = 200};
	size_t max;
	mq_message **msgs;
	mq_lease_ref *refs;

	if (r->natural)
		max = (size_t)r->inflight;
	else
		max = (size_t)(r->batch > 1 ? (r->batch > 64 ? 64 : r->batch) : 1);
	msgs = calloc(max, sizeof(*msgs));
	refs = calloc(max, sizeof(*refs));
	if (msgs == NULL || refs == NULL) {
		run_error(r, "pull", "out of memory");
		free(msgs);
		free(refs);
		return NULL;
	}
	while (!run_stopped(r)) {
		size_t n = 0;
		uint64_t t0 = now_us();
		mq_status st = mq_pull(c, r->queue, &po, msgs, max, &n);

		if (st != MQ_OK) {
			run_error(r, "pull", "%s: %s", mq_status_name(st), mq_errmsg());
			usleep(1000);
			continue;
		}
		if (n == 0)
			continue;
		lat_add(r, &w->pull_lat, now_us() - t0);
		run_pulled(r, n);
		if (r->natural) {
			for (size_t i = 0; i < n; i++) {
				refs[i].id = mq_message_id(msgs[i]);
				refs[i].token = mq_message_lease_token(msgs[i]);
			}
			t0 = now_us();
			st = mq_ack_batch(c, r->queue, refs, n, NULL);
			if (st != MQ_OK) {
				run_error(r, "ack batch", "%s: %s", mq_status_name(st),
				          mq_errmsg());
				run_give(r, (int)n);
			} else {
				lat_add(r, &w->ack_lat, now_us() - t0);
				run_acked(r, n);
			}
		} else {
			for (size_t i = 0; i < n; i++) {
				t0 = now_us();
				st = mq_ack(c, msgs[i]);
				if (st != MQ_OK) {
					run_error(r, "ack", "%s: %s", mq_status_name(st),
					          mq_errmsg());
					run_give(r, 1);
				} else {
					lat_add(r, &w->ack_lat, now_us() - t0);
					run_acked(r, 1);
				}
			}
		}
		for (size_t i = 0; i < n; i++)
			mq_message_free(msgs[i]);
	}
	free(msgs);
	free(refs);
	return NULL;
}

typedef struct fill_state {
	atomic_uint_fast64_t done, failed;
} fill_state;

static void fill_cb(void *arg, mq_status st, size_t n, const mq_push_result *res)
{
	fill_state *fs = arg;

	(void)res;
	if (st == MQ_OK)
		atomic_fetch_add(&fs->done, n);
	else
		atomic_fetch_add(&fs->failed, n);
}

static int mq_prefill(brun *r, uint64_t n, char *err, size_t errlen)
{
	enum { B = 1000 };
	static const void *pl[B];
	static size_t lens[B];
	fill_state fs = {0};
	mq_client *c;
	uint64_t sent = 0, next_note = n / 10;
	uint8_t *buf = calloc(1, r->size + 16);

	if (buf == NULL || mq_connect(r->srv->url, &c, err, errlen) != 0) {
		free(buf);
		return -1;
	}
	memset(buf, 'x', r->size);
	mq_client_set_max_inflight(c, 8);
	for (int i = 0; i < B; i++) {
		pl[i] = buf;
		lens[i] = r->size;
	}
	while (sent < n && atomic_load(&fs.failed) == 0) {
		size_t k = n - sent < B ? (size_t)(n - sent) : B;
		mq_status st = mq_push_batch_async(c, r->queue, k, pl, lens, NULL, fill_cb, &fs);

		if (st != MQ_OK) {
			snprintf(err, errlen, "prefill push: %s", mq_errmsg());
			break;
		}
		sent += k;
		if (n >= 1000000 && sent >= next_note) {
			fprintf(stderr, "mqbench: mq: prefill %llu of %llu\n",
			        (unsigned long long)sent, (unsigned long long)n);
			next_note += n / 10;
		}
	}
	mq_client_flush(c, -1);
	mq_client_close(c);
	free(buf);
	if (atomic_load(&fs.done) != n) {
		if (err[0] == '\0')
			snprintf(err, errlen, "prefill: %llu of %llu stored",
			         (unsigned long long)atomic_load(&fs.done), (unsigned long long)n);
		return -1;
	}
	return 0;
}

/* ---- the consumer runtime with no-op handlers (legacy "consume") ---- */

static atomic_uint_fast64_t handled;

static mq_outcome noop_handler(void *arg, const mq_message *m, mq_result *res)
{
	(void)arg;
	(void)m;
	(void)res;
	atomic_fetch_add(&handled, 1);
	return MQ_OUTCOME_DONE;
}

int mq_run_consume(brun *r, int workers, uint64_t n, double seconds, bresult *out)
{
	mq_client *c;
	mq_consumer *cons;
	mq_consumer_opts co;
	mq_consumer_stats cs;
	const char *queues[1];
	char err[256] = "";
	uint64_t t0, deadline;
	double cpu0;

	memset(out, 0, sizeof(*out));
	queues[0] = r->queue;
	if (mq_prefill(r, n, err, sizeof(err)) != 0 ||
	    mq_connect(r->srv->url, &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "mqbench: mq: %s\n", err);
		return -1;
	}
	mq_consumer_opts_init(&co);
	co.queues = queues;
	co.n_queues = 1;
	co.workers = (uint32_t)workers;
	if (mq_consumer_open(&cons, c, &co) != MQ_OK ||
	    mq_consumer_handle_default(cons, noop_handler, NULL) != MQ_OK) {
		fprintf(stderr, "mqbench: consumer: %s\n", mq_errmsg());
		mq_client_close(c);
		return -1;
	}
	cpu0 = r->srv->pid > 0 ? proc_cpu_s(r->srv->pid) : 0;
	t0 = now_us();
	deadline = t0 + (uint64_t)(seconds * 1e6);
	mq_consumer_start(cons);
	do {
		usleep(2000);
		mq_consumer_stats_get(cons, &cs);
	} while (cs.acked < n && now_us() < deadline);
	out->seconds = (double)(now_us() - t0) / 1e6;
	if (r->srv->pid > 0) {
		out->cpu_s = proc_cpu_s(r->srv->pid) - cpu0;
		out->have_cpu = true;
	}
	mq_consumer_stop(cons, 5000);
	mq_consumer_stats_get(cons, &cs);
	mq_consumer_close(cons);
	mq_client_close(c);
	out->acked = cs.acked;
	out->errors = cs.errors;
	out->rate = (double)cs.acked / out->seconds;
	snprintf(out->durability, sizeof(out->durability), "%s", r->srv->durability);
	return cs.acked == n ? 0 : -1;
}

const bsys sys_mq = {
    .name = "mq",
    .unavailable = mq_unavailable,
    .start = mq_start,
    .stop = mq_stop,
    .prepare = mq_prepare,
    .prefill = mq_prefill,
    .threads_per = mq_threads_per,
    .open = mq_open,
    .close = mq_close,
    .producer = mq_producer_main,
    .consumer = mq_consumer_main,
};
