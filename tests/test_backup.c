/* SPDX-License-Identifier: MIT */
/*
 * test_backup.c: hot backup and restore (issue 7, docs/backup.md) against
 * the real mqd:
 *  - under load: a thread pushes (bounded count) while `mqctl backup FILE`
 *    runs, and while mq_backup (the library call) runs; the file is
 *    restored with `mqd --restore` into a new data dir, a second mqd serves
 *    it, and its contents are compared with the first broker's: every
 *    message acknowledged before the backup began is there, with the same
 *    payload, headers, state, attempts, lease; nothing is there that was not
 *    acknowledged; queue configs are equal; the restored broker serves
 *    pull and ack; no backup file is left in the data dir;
 *  - the wire protocol: one backup at a time, chunked reads, BackupEnd
 *    deletes the file, unknown ids;
 *  - refusals: restore into a non-empty dir, of a garbage file; backup on
 *    the memory engine is UNIMPLEMENTED (library and mqctl).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <mq/mq.h>

#include "mq.pb-c.h"
#include "mqtest.h"

#define LOAD_MAX 20000 /* the pusher's bound */

static mq_client *open_client(const mqtest_broker *b)
{
	mq_client_opts o;
	mq_client *c;

	mq_client_opts_init(&o);
	o.timeout_ms = 20000;
	assert_mq_ok(mq_client_open(&c, b->url, &o));
	return c;
}

/* backup_files counts backup-*.tmp files in dir. */
static int backup_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "backup-", 7) == 0)
			n++;
	closedir(d);
	return n;
}

/* ---- message snapshots -------------------------------------------------- */

typedef struct snap {
	uint64_t id;
	uint32_t state, attempts;
	int32_t priority;
	uint64_t token, enqueued, not_before;
	char *payload;
	size_t len;
	char type[64], dedup[64], headers[256], reason[128];
} snap;

typedef struct snaps {
	snap *s;
	size_t n, cap;
} snaps;

static void snap_queue(mq_client *c, const char *queue, snaps *out)
{
	mq_list_opts lo = {0};
	mq_message *msgs[1000];
	bool more = true;

	memset(out, 0, sizeof(*out));
	for (int page = 0; more && page < 1000; page++) {
		size_t n = 0;
		uint64_t next = 0;

		assert_mq_ok(mq_message_list(c, queue, &lo, msgs, 1000, &n, &next, &more));
		for (size_t i = 0; i < n; i++) {
			const mq_message *m = msgs[i];
			snap *s;
			size_t len;
			const void *p = mq_message_payload(m, &len);

			if (out->n == out->cap) {
				out->cap = out->cap ? out->cap * 2 : 256;
				out->s = realloc(out->s, out->cap * sizeof(*out->s));
				assert_non_null(out->s);
			}
			s = &out->s[out->n++];
			memset(s, 0, sizeof(*s));
			s->id = mq_message_id(m);
			s->state = mq_message_state(m);
			s->attempts = mq_message_attempts(m);
			s->priority = mq_message_priority(m);
			s->token = mq_message_lease_token(m);
			s->enqueued = mq_message_enqueued_ms(m);
			s->not_before = mq_message_not_before_ms(m);
			s->payload = malloc(len + 1);
			memcpy(s->payload, p, len);
			s->payload[len] = 0;
			s->len = len;
			snprintf(s->type, sizeof(s->type), "%s", mq_message_type(m));
			snprintf(s->dedup, sizeof(s->dedup), "%s", mq_message_dedup_key(m));
			snprintf(s->reason, sizeof(s->reason), "%s", mq_message_dead_reason(m));
			for (size_t h = 0; h < mq_message_header_count(m); h++) {
				mq_header hd = mq_message_header(m, h);
				size_t o = strlen(s->headers);
				snprintf(s->headers + o, sizeof(s->headers) - o, "%s=%s;", hd.key,
				         hd.value);
			}
			mq_message_free(msgs[i]);
		}
		lo.after_id = next;
	}
	assert_false(more);
}

static void snaps_free(snaps *ss)
{
	for (size_t i = 0; i < ss->n; i++)
		free(ss->s[i].payload);
	free(ss->s);
}

static const snap *snap_find(const snaps *ss, uint64_t id)
{
	for (size_t i = 0; i < ss->n; i++)
		if (ss->s[i].id == id)
			return &ss->s[i];
	return NULL;
}

static void snap_equal(const snap *a, const snap *b)
{
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->attempts, b->attempts);
	assert_int_equal(a->priority, b->priority);
	assert_int_equal(a->token, b->token);
	assert_int_equal(a->enqueued, b->enqueued);
	assert_int_equal(a->not_before, b->not_before);
	assert_int_equal(a->len, b->len);
	assert_memory_equal(a->payload, b->payload, a->len);
	assert_string_equal(a->type, b->type);
	assert_string_equal(a->dedup, b->dedup);
	assert_string_equal(a->headers, b->headers);
	assert_string_equal(a->reason, b->reason);
}

static void config_equal(mq_client *a, mq_client *b, const char *queue)
{
	mq_queue_info qa, qb;

	assert_mq_ok(mq_queue_get(a, queue, &qa));
	assert_mq_ok(mq_queue_get(b, queue, &qb));
	assert_memory_equal(&qa.config, &qb.config, sizeof(qa.config));
	assert_int_equal(qa.created_ms, qb.created_ms);
	assert_int_equal(qa.paused, qb.paused);
}

/* ---- the pusher ------------------------------------------------------------ */

typedef struct pusher {
	mq_client *c;
	atomic_bool stop;
	atomic_bool backup_started;
	atomic_int done;
	uint64_t ids[LOAD_MAX];
	bool before[LOAD_MAX]; /* acknowledged before the backup began */
	int failed;            /* pushes that did not return OK */
	char err[256];
} pusher;

static void *pusher_main(void *arg)
{
	pusher *p = arg;

	for (int i = 0; i < LOAD_MAX && !atomic_load(&p->stop); i++) {
		char payload[64], iv[16];
		mq_header h = {"i", iv};
		mq_push_opts o = {.headers = &h, .n_headers = 1, .type = "load"};
		uint64_t id = 0;
		mq_status st;

		snprintf(payload, sizeof(payload), "load-%d", i);
		snprintf(iv, sizeof(iv), "%d", i);
		st = mq_push(p->c, "bk.load", payload, strlen(payload), &o, &id, NULL);
		if (st != MQ_OK) {
			p->failed++;
			snprintf(p->err, sizeof(p->err), "%s: %s", mq_status_name(st), mq_errmsg());
			break;
		}
		/* Read after the reply: false means it was acknowledged before
		 * the main thread announced the backup. */
		p->before[i] = !atomic_load(&p->backup_started);
		p->ids[i] = id;
		atomic_store(&p->done, i + 1);
	}
	return NULL;
}

static void wait_pushes(pusher *p, int n)
{
	for (int i = 0; i < 3000 * mqtest_time_mult() && atomic_load(&p->done) < n; i++)
		usleep(10000);
	if (atomic_load(&p->done) < n)
		fail_msg("the pusher did only %d pushes (%s)", atomic_load(&p->done), p->err);
}

typedef struct prog {
	int calls;
	uint64_t last, total;
	bool monotonic;
} prog;

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	prog *p = arg;

	if (p->calls > 0 && done < p->last)
		p->monotonic = false;
	p->calls++;
	p->last = done;
	p->total = total;
}

/* ---- under load ------------------------------------------------------------ */

static void test_backup_under_load(void **state)
{
	const char *mqctl = getenv("MQCTL");
	const char *mqd = getenv("MQD");
	static const char *statics[] = {"bk.cfg", "bk.dlq", "bk.load"};
	mqtest_broker a, b;
	mq_client *ca, *cb, *cl;
	mq_queue_config cfg = {0};
	pusher *p = calloc(1, sizeof(*p));
	pthread_t th;
	char file[400], file2[400], target[400], target2[400], arg[450], out[4096];
	mq_message *m[4];
	mq_backup_info bi;
	mq_backup_opts bo = {0};
	prog pr = {.monotonic = true};
	snaps sa, sb;
	size_t n;
	int fd, before = 0, during = 0, in_copy = 0;

	(void)state;
	assert_non_null(p);
	if (mqctl == NULL || mqd == NULL)
		fail_msg("MQCTL and MQD must be set (meson's test() sets them)");
	mqtest_broker_start(&a, NULL);
	ca = open_client(&a);

	/* Queues with configs, messages in every state. */
	cfg.lease_ms = 600000;
	cfg.max_attempts = 2;
	cfg.retry_base_ms = 100;
	cfg.retry_max_ms = 5000;
	cfg.max_length = 100000;
	cfg.dedup_scope = MQ_DEDUP_SCOPE_WAITING;
	snprintf(cfg.dead_letter_queue, sizeof(cfg.dead_letter_queue), "bk.dlq");
	assert_mq_ok(mq_queue_create(ca, "bk.dlq", NULL, false, NULL));
	assert_mq_ok(mq_queue_create(ca, "bk.cfg", &cfg, false, NULL));
	cfg = (mq_queue_config){.lease_ms = 600000, .max_attempts = 7};
	assert_mq_ok(mq_queue_create(ca, "bk.load", &cfg, false, NULL));
	for (int i = 0; i < 40; i++) {
		char payload[64], v[16];
		mq_header h[2] = {{"k", v}, {"tenant", "acme"}};
		mq_push_opts o = {.headers = h,
		                  .n_headers = 2,
		                  .priority = i % 3,
		                  .type = i % 2 ? "odd" : "even",
		                  .delay_ms = i % 5 == 0 ? 3600000 : 0};
		char key[32];

		snprintf(payload, sizeof(payload), "static-%d", i);
		snprintf(v, sizeof(v), "v%d", i);
		snprintf(key, sizeof(key), "key-%d", i);
		if (i % 7 == 0)
			o.dedup_key = key;
		assert_mq_ok(mq_push(ca, "bk.cfg", payload, strlen(payload), &o, NULL, NULL));
	}
	/* two leased, one of them nacked to death through the DLQ */
	assert_mq_ok(mq_pull(ca, "bk.cfg", NULL, m, 2, &n));
	assert_int_equal(n, 2);
	assert_mq_ok(mq_term(ca, m[1], "broken"));
	mq_message_free(m[0]); /* stays leased */
	mq_message_free(m[1]);

	/* Load: a thread pushes while the backups run. */
	p->c = open_client(&a);
	assert_int_equal(pthread_create(&th, NULL, pusher_main, p), 0);
	wait_pushes(p, 100);
	atomic_store(&p->backup_started, true);
	snprintf(file, sizeof(file), "%s/one.mqb", a.dir);
	assert_int_equal(
	    mqtest_run(out, sizeof(out), "'%s' --url '%s' backup '%s'", mqctl, a.url, file), 0);
	printf("mqctl backup: %s", out);
	assert_non_null(strstr(out, "backup written to"));
	assert_int_equal(backup_files(a.data), 0); /* the broker's temp file is gone */
	assert_int_equal(access(file, F_OK), 0);
	snprintf(arg, sizeof(arg), "%s.tmp", file);
	assert_int_equal(access(arg, F_OK), -1);
	/* and through the library, still under load */
	snprintf(file2, sizeof(file2), "%s/two.mqb", a.dir);
	fd = open(file2, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	bo.progress = on_progress;
	bo.progress_arg = &pr;
	bo.chunk_bytes = 16384; /* several chunks */
	assert_mq_ok(mq_backup(ca, fd, &bo, &bi));
	close(fd);
	assert_int_equal(backup_files(a.data), 0);
	assert_true(pr.calls >= 3);
	assert_true(pr.monotonic);
	assert_int_equal(pr.last, bi.size);
	assert_int_equal(pr.total, bi.size);
	assert_int_equal(bi.schema_version, 3);
	{
		struct stat st;
		assert_int_equal(stat(file2, &st), 0);
		assert_int_equal((uint64_t)st.st_size, bi.size);
	}
	atomic_store(&p->stop, true);
	assert_int_equal(pthread_join(th, NULL), 0);
	if (p->failed)
		fail_msg("a push failed during the backup: %s", p->err);
	for (int i = 0; i < atomic_load(&p->done); i++) {
		if (p->before[i])
			before++;
		else
			during++;
	}
	printf("pushes acknowledged before the backup: %d, after it began: %d\n", before, during);

	/* Restore both files into new data dirs. */
	snprintf(target, sizeof(target), "%s/restored", a.dir);
	assert_int_equal(mqtest_run(out, sizeof(out), "'%s' --restore '%s' --data-dir '%s' 2>&1",
	                            mqd, file, target),
	                 0);
	assert_non_null(strstr(out, "restored"));
	snprintf(target2, sizeof(target2), "%s/restored2", a.dir);
	assert_int_equal(mqtest_run(out, sizeof(out), "'%s' --restore '%s' --data-dir '%s' 2>&1",
	                            mqd, file2, target2),
	                 0);

	/* A second mqd serves the first copy (the last --data-dir wins). */
	snprintf(arg, sizeof(arg), "--data-dir=%s", target);
	mqtest_broker_start(&b, arg, NULL);
	cb = open_client(&b);
	for (size_t q = 0; q < sizeof(statics) / sizeof(statics[0]); q++)
		config_equal(ca, cb, statics[q]);
	/* the static queues: identical, message by message */
	for (size_t q = 0; q < 2; q++) {
		snap_queue(ca, statics[q], &sa);
		snap_queue(cb, statics[q], &sb);
		assert_int_equal(sa.n, sb.n);
		assert_true(sa.n > 0);
		for (size_t i = 0; i < sa.n; i++)
			snap_equal(&sa.s[i], &sb.s[i]);
		snaps_free(&sa);
		snaps_free(&sb);
	}
	/* the loaded queue: everything acknowledged before the backup, and
	 * nothing that was not acknowledged */
	snap_queue(ca, "bk.load", &sa);
	snap_queue(cb, "bk.load", &sb);
	for (int i = 0; i < atomic_load(&p->done); i++) {
		const snap *sx = snap_find(&sb, p->ids[i]), *ax = snap_find(&sa, p->ids[i]);
		char want[64];

		if (sx == NULL) {
			if (p->before[i])
				fail_msg("push %d (id %" PRIu64
				         ") was acknowledged before the backup "
				         "but is not in it",
				         i, p->ids[i]);
			continue;
		}
		in_copy++;
		snprintf(want, sizeof(want), "load-%d", i);
		assert_string_equal(sx->payload, want);
		assert_non_null(ax);
		snap_equal(ax, sx);
	}
	assert_int_equal((size_t)in_copy, sb.n); /* nothing else is in the copy */
	printf("bk.load: %zu messages in the copy, %zu in the live broker\n", sb.n, sa.n);
	snaps_free(&sa);
	snaps_free(&sb);

	/* The restored broker serves: the leased message's lease came along
	 * (ack it), ready ones are pulled and acked, pushes work. */
	{
		mq_message *got[2];
		mq_queue_info qi;
		uint64_t id;

		assert_mq_ok(mq_pull(cb, "bk.load", NULL, got, 2, &n));
		assert_int_equal(n, 2);
		assert_mq_ok(mq_ack(cb, got[0]));
		assert_mq_ok(mq_ack(cb, got[1]));
		mq_message_free(got[0]);
		mq_message_free(got[1]);
		assert_mq_ok(mq_push(cb, "bk.new", "after restore", 13, NULL, &id, NULL));
		assert_mq_ok(mq_pull(cb, "bk.new", NULL, got, 1, &n));
		assert_int_equal(n, 1);
		assert_int_equal(mq_message_id(got[0]), id);
		assert_mq_ok(mq_ack(cb, got[0]));
		mq_message_free(got[0]);
		assert_mq_ok(mq_queue_get(cb, "bk.load", &qi));
		assert_int_equal(qi.stats.acked_total, 2);
	}
	mq_client_close(cb);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);

	/* The library's copy restores too and holds at least the pushes
	 * acknowledged before the first backup. */
	snprintf(arg, sizeof(arg), "--data-dir=%s", target2);
	mqtest_broker_start(&b, arg, NULL);
	cl = open_client(&b);
	{
		mq_queue_info qi;
		assert_mq_ok(mq_queue_get(cl, "bk.load", &qi));
		assert_true(qi.stats.ready >= (uint64_t)before);
		assert_true(qi.stats.ready <= (uint64_t)atomic_load(&p->done));
	}
	config_equal(ca, cl, "bk.cfg");
	mq_client_close(cl);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);

	mq_client_close(p->c);
	mq_client_close(ca);
	assert_int_equal(mqtest_broker_stop(&a), 0);
	mqtest_broker_cleanup(&a);
	free(p);
}

/* ---- the wire protocol ------------------------------------------------------ */

static Mq__Reply *wire_call(nng_socket s, const char *method, const ProtobufCMessage *body)
{
	Mq__Request req = MQ__REQUEST__INIT;
	uint8_t *bbuf, *rbuf;
	nng_msg *msg;
	Mq__Reply *r;
	size_t n;

	req.version = 1;
	req.method = (char *)method;
	n = protobuf_c_message_get_packed_size(body);
	bbuf = malloc(n + 1);
	req.body.len = protobuf_c_message_pack(body, bbuf);
	req.body.data = bbuf;
	n = mq__request__get_packed_size(&req);
	rbuf = malloc(n);
	mq__request__pack(&req, rbuf);
	assert_int_equal(nng_msg_alloc(&msg, 0), 0);
	nng_msg_append(msg, rbuf, n);
	free(rbuf);
	free(bbuf);
	assert_int_equal(nng_sendmsg(s, msg, 0), 0);
	assert_int_equal(nng_recvmsg(s, &msg, 0), 0);
	r = mq__reply__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
	nng_msg_free(msg);
	assert_non_null(r);
	return r;
}

static void expect(Mq__Reply *r, int want, const char *part)
{
	if ((int)r->status != want)
		fail_msg("status %s (%s), want %s", mq_status_name((int)r->status), r->message,
		         mq_status_name(want));
	if (part != NULL && strstr(r->message, part) == NULL)
		fail_msg("message '%s' lacks '%s'", r->message, part);
}

static void test_backup_wire(void **state)
{
	mqtest_broker a;
	mq_client *c;
	nng_socket s;
	Mq__BackupRequest breq = MQ__BACKUP_REQUEST__INIT;
	Mq__BackupReadRequest rreq = MQ__BACKUP_READ_REQUEST__INIT;
	Mq__BackupEndRequest ereq = MQ__BACKUP_END_REQUEST__INIT;
	Mq__BackupReply *br;
	Mq__Reply *r;
	char id[64];
	uint64_t size, off = 0;
	int fd, chunks = 0;
	char file[400];

	(void)state;
	mqtest_broker_start(&a, NULL);
	c = open_client(&a);
	assert_mq_ok(mq_push(c, "w", "x", 1, NULL, NULL, NULL));
	assert_int_equal(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 20000);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	assert_int_equal(nng_dial(s, a.url, NULL, 0), 0);

	r = wire_call(s, "Backup", &breq.base);
	expect(r, 0, NULL);
	br = mq__backup_reply__unpack(NULL, r->body.len, r->body.data);
	assert_non_null(br);
	snprintf(id, sizeof(id), "%s", br->id);
	size = br->size;
	assert_int_equal(br->checksum.len, 32);
	assert_int_equal(br->idle_timeout_ms, 60000);
	mq__backup_reply__free_unpacked(br, NULL);
	mq__reply__free_unpacked(r, NULL);
	assert_int_equal(backup_files(a.data), 1);

	/* one at a time */
	{
		int dfd = open("/dev/null", O_WRONLY);
		assert_mq_status(mq_backup(c, dfd, NULL, NULL), MQ_RESOURCE_EXHAUSTED);
		assert_non_null(strstr(mq_errmsg(), "one backup at a time"));
		close(dfd);
	}

	/* chunked reads to the end */
	snprintf(file, sizeof(file), "%s/wire.mqb", a.dir);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	rreq.id = id;
	rreq.max_bytes = 10000;
	for (bool eof = false; !eof && chunks < 10000; chunks++) {
		Mq__BackupReadReply *rd;

		rreq.offset = off;
		r = wire_call(s, "BackupRead", &rreq.base);
		expect(r, 0, NULL);
		rd = mq__backup_read_reply__unpack(NULL, r->body.len, r->body.data);
		assert_non_null(rd);
		assert_true(rd->data.len <= 10000);
		assert_int_equal(write(fd, rd->data.data, rd->data.len), (ssize_t)rd->data.len);
		off += rd->data.len;
		eof = rd->eof;
		mq__backup_read_reply__free_unpacked(rd, NULL);
		mq__reply__free_unpacked(r, NULL);
	}
	close(fd);
	assert_int_equal(off, size);
	assert_true(chunks > 1);
	rreq.offset = size + 1;
	r = wire_call(s, "BackupRead", &rreq.base);
	expect(r, MQ_OUT_OF_RANGE, "past the end");
	mq__reply__free_unpacked(r, NULL);

	/* BackupEnd deletes the file; the id is then unknown */
	ereq.id = id;
	r = wire_call(s, "BackupEnd", &ereq.base);
	expect(r, 0, NULL);
	mq__reply__free_unpacked(r, NULL);
	assert_int_equal(backup_files(a.data), 0);
	rreq.offset = 0;
	r = wire_call(s, "BackupRead", &rreq.base);
	expect(r, MQ_NOT_FOUND, "no backup");
	mq__reply__free_unpacked(r, NULL);
	r = wire_call(s, "BackupEnd", &ereq.base);
	expect(r, MQ_NOT_FOUND, NULL);
	mq__reply__free_unpacked(r, NULL);

	/* the file read over the wire restores */
	{
		char out[2048], target[450];
		snprintf(target, sizeof(target), "%s/from-wire", a.dir);
		assert_int_equal(mqtest_run(out, sizeof(out),
		                            "'%s' --restore '%s' --data-dir '%s' 2>&1",
		                            getenv("MQD"), file, target),
		                 0);
	}
	nng_close(s);
	mq_client_close(c);
	assert_int_equal(mqtest_broker_stop(&a), 0);
	mqtest_broker_cleanup(&a);
}

/* ---- a backup nobody reads is removed after --backup-idle-ms ----------------- */

static void test_backup_idle_timeout(void **state)
{
	mqtest_broker a;
	nng_socket s;
	Mq__BackupRequest breq = MQ__BACKUP_REQUEST__INIT;
	Mq__BackupReadRequest rreq = MQ__BACKUP_READ_REQUEST__INIT;
	Mq__BackupEndRequest ereq = MQ__BACKUP_END_REQUEST__INIT;
	Mq__BackupReply *br;
	Mq__Reply *r;
	char id[64];
	int i;

	(void)state;
	mqtest_broker_start(&a, "--backup-idle-ms", "300", NULL);
	assert_int_equal(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 20000);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	assert_int_equal(nng_dial(s, a.url, NULL, 0), 0);
	r = wire_call(s, "Backup", &breq.base);
	expect(r, 0, NULL);
	br = mq__backup_reply__unpack(NULL, r->body.len, r->body.data);
	assert_non_null(br);
	assert_int_equal(br->idle_timeout_ms, 300);
	snprintf(id, sizeof(id), "%s", br->id);
	mq__backup_reply__free_unpacked(br, NULL);
	mq__reply__free_unpacked(r, NULL);
	/* never read: the broker removes it (bounded wait) */
	for (i = 0; i < 1000 * mqtest_time_mult() && backup_files(a.data) > 0; i++)
		usleep(10000);
	assert_int_equal(backup_files(a.data), 0);
	rreq.id = id;
	r = wire_call(s, "BackupRead", &rreq.base);
	expect(r, MQ_NOT_FOUND, "without a read");
	mq__reply__free_unpacked(r, NULL);
	/* the slot is free again */
	r = wire_call(s, "Backup", &breq.base);
	expect(r, 0, NULL);
	br = mq__backup_reply__unpack(NULL, r->body.len, r->body.data);
	assert_non_null(br);
	ereq.id = br->id;
	mq__reply__free_unpacked(r, NULL);
	r = wire_call(s, "BackupEnd", &ereq.base);
	expect(r, 0, NULL);
	mq__reply__free_unpacked(r, NULL);
	mq__backup_reply__free_unpacked(br, NULL);
	nng_close(s);
	assert_int_equal(mqtest_broker_stop(&a), 0);
	mqtest_broker_cleanup(&a);
}

/* ---- refusals ---------------------------------------------------------------- */

static void test_backup_refusals(void **state)
{
	const char *mqctl = getenv("MQCTL");
	const char *mqd = getenv("MQD");
	mqtest_broker a;
	mq_client *c;
	char file[400], dir[450], keep[500], out[4096], garbage[450];
	FILE *f;
	int fd;

	(void)state;
	mqtest_broker_start(&a, NULL);
	c = open_client(&a);
	assert_mq_ok(mq_push(c, "r", "x", 1, NULL, NULL, NULL));
	snprintf(file, sizeof(file), "%s/r.mqb", a.dir);
	assert_int_equal(
	    mqtest_run(out, sizeof(out), "'%s' --url '%s' backup '%s'", mqctl, a.url, file), 0);
	mq_client_close(c);
	assert_int_equal(mqtest_broker_stop(&a), 0);

	/* a non-empty data dir: refused, untouched */
	snprintf(dir, sizeof(dir), "%s/busy", a.dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(keep, sizeof(keep), "%s/keep.txt", dir);
	f = fopen(keep, "w");
	assert_non_null(f);
	fputs("precious\n", f);
	fclose(f);
	assert_int_equal(mqtest_run(out, sizeof(out), "'%s' --restore '%s' --data-dir '%s' 2>&1",
	                            mqd, file, dir),
	                 1);
	printf("non-empty dir: %s", out);
	assert_non_null(strstr(out, "not empty"));
	assert_int_equal(access(keep, F_OK), 0);
	snprintf(keep, sizeof(keep), "%s/data.mdb", dir);
	assert_int_equal(access(keep, F_OK), -1);
	/* the existing broker's own dir is refused the same way (MQ_RESTORE) */
	assert_int_equal(mqtest_run(out, sizeof(out), "MQ_RESTORE='%s' MQ_DATA_DIR='%s' '%s' 2>&1",
	                            file, a.data, mqd),
	                 1);
	assert_non_null(strstr(out, "not empty"));

	/* a garbage file, and an empty one */
	snprintf(garbage, sizeof(garbage), "%s/garbage", a.dir);
	f = fopen(garbage, "w");
	assert_non_null(f);
	for (int i = 0; i < 1000; i++)
		fputs("not a backup at all ", f);
	fclose(f);
	snprintf(dir, sizeof(dir), "%s/fresh", a.dir);
	assert_int_equal(mqtest_run(out, sizeof(out), "'%s' --restore '%s' --data-dir '%s' 2>&1",
	                            mqd, garbage, dir),
	                 1);
	printf("garbage: %s", out);
	assert_non_null(strstr(out, "not an mq backup"));
	assert_int_equal(access(dir, F_OK), -1);
	fd = open(garbage, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mqtest_run(out, sizeof(out), "'%s' --restore '%s' --data-dir '%s' 2>&1",
	                            mqd, garbage, dir),
	                 1);
	assert_int_equal(access(dir, F_OK), -1);
	mqtest_broker_cleanup(&a);

	/* the memory engine has nothing to back up */
	mqtest_broker_start(&a, "--storage", "memory", NULL);
	c = open_client(&a);
	fd = open("/dev/null", O_WRONLY);
	assert_mq_status(mq_backup(c, fd, NULL, NULL), MQ_UNIMPLEMENTED);
	assert_non_null(strstr(mq_errmsg(), "memory"));
	close(fd);
	snprintf(file, sizeof(file), "%s/mem.mqb", a.dir);
	assert_int_equal(
	    mqtest_run(out, sizeof(out), "'%s' --url '%s' backup '%s' 2>&1", mqctl, a.url, file),
	    1);
	printf("memory engine: %s", out);
	assert_non_null(strstr(out, "UNIMPLEMENTED"));
	assert_int_equal(access(file, F_OK), -1);
	snprintf(keep, sizeof(keep), "%s.tmp", file);
	assert_int_equal(access(keep, F_OK), -1);
	mq_client_close(c);
	assert_int_equal(mqtest_broker_stop(&a), 0);
	mqtest_broker_cleanup(&a);
}

/* ---- a stale backup file is removed at start -------------------------------- */

static void test_backup_stale_file(void **state)
{
	mqtest_broker a;
	char stale[500];
	FILE *f;

	(void)state;
	mqtest_broker_start(&a, NULL);
	assert_int_equal(mqtest_broker_stop(&a), 0);
	snprintf(stale, sizeof(stale), "%s/backup-0123456789abcdef.tmp", a.data);
	f = fopen(stale, "w");
	assert_non_null(f);
	fputs("left by a crash", f);
	fclose(f);
	assert_int_equal(backup_files(a.data), 1);
	mqtest_broker_restart(&a, NULL);
	assert_int_equal(backup_files(a.data), 0);
	assert_int_equal(mqtest_broker_stop(&a), 0);
	mqtest_broker_cleanup(&a);
}

/* ---- mqctl: progress bar on a terminal, none when piped; FILE '-' ----------- */

static void test_backup_mqctl_modes(void **state)
{
	const char *mqctl = getenv("MQCTL");
	const char *mqd = getenv("MQD");
	mqtest_broker a;
	mq_client *c;
	char file[400], target[450], out[8192];

	(void)state;
	if (access("/usr/bin/script", X_OK) != 0)
		fail_msg("script(1) is missing (package bsdutils)");
	mqtest_broker_start(&a, NULL);
	c = open_client(&a);
	for (int i = 0; i < 50; i++)
		assert_mq_ok(mq_push(c, "m", "payload", 7, NULL, NULL, NULL));
	/* on a terminal (a pty from script(1)): a progress bar */
	snprintf(file, sizeof(file), "%s/tty.mqb", a.dir);
	assert_int_equal(mqtest_run(out, sizeof(out),
	                            "script -qec \"'%s' --url '%s' backup '%s'\" "
	                            "/dev/null",
	                            mqctl, a.url, file),
	                 0);
	assert_non_null(strstr(out, "\rbackup ["));
	assert_non_null(strstr(out, "] 100% "));
	assert_non_null(strstr(out, "backup written to"));
	/* piped: none */
	assert_int_equal(
	    mqtest_run(out, sizeof(out), "'%s' --url '%s' backup '%s' 2>&1", mqctl, a.url, file),
	    0);
	assert_null(strstr(out, "backup ["));
	/* '-' writes the backup to stdout (the summary to stderr), and it
	 * restores; refused on a terminal and with --json */
	snprintf(file, sizeof(file), "%s/stdout.mqb", a.dir);
	assert_int_equal(mqtest_run(out, sizeof(out), "'%s' --url '%s' backup - > '%s' 2>/dev/null",
	                            mqctl, a.url, file),
	                 0);
	snprintf(target, sizeof(target), "%s/from-stdout", a.dir);
	assert_int_equal(mqtest_run(out, sizeof(out), "'%s' --restore '%s' --data-dir '%s' 2>&1",
	                            mqd, file, target),
	                 0);
	assert_int_equal(mqtest_run(out, sizeof(out),
	                            "script -qec \"'%s' --url '%s' backup -\" "
	                            "/dev/null",
	                            mqctl, a.url),
	                 2);
	assert_non_null(strstr(out, "terminal"));
	assert_int_equal(
	    mqtest_run(out, sizeof(out), "'%s' --url '%s' --json backup - 2>&1", mqctl, a.url), 2);
	assert_int_equal(backup_files(a.data), 0);
	mq_client_close(c);
	assert_int_equal(mqtest_broker_stop(&a), 0);
	mqtest_broker_cleanup(&a);
}

/* ---- with tokens: admin on every queue -------------------------------------- */

static mq_client *open_token(const mqtest_broker *b, const char *token)
{
	mq_client_opts o;
	mq_client *c;

	mq_client_opts_init(&o);
	o.timeout_ms = 20000;
	o.auth_token = token;
	assert_mq_ok(mq_client_open(&c, b->url, &o));
	return c;
}

static void test_backup_needs_admin(void **state)
{
	mqtest_broker a;
	mq_client *prod, *qadmin, *ops;
	int fd;

	(void)state;
	setenv("MQ_AUTH_TOKENS",
	       "prod=s-prod produce=*; qadmin=s-qadmin admin=orders.*; ops=s-ops admin=*", 1);
	mqtest_broker_start(&a, "--auth=on", NULL);
	unsetenv("MQ_AUTH_TOKENS");
	prod = open_token(&a, "s-prod");
	qadmin = open_token(&a, "s-qadmin");
	ops = open_token(&a, "s-ops");
	assert_mq_ok(mq_push(prod, "orders.eu", "x", 1, NULL, NULL, NULL));
	fd = open("/dev/null", O_WRONLY);
	assert_true(fd >= 0);
	assert_mq_status(mq_backup(prod, fd, NULL, NULL), MQ_PERMISSION_DENIED);
	assert_mq_status(mq_backup(qadmin, fd, NULL, NULL), MQ_PERMISSION_DENIED);
	assert_non_null(strstr(mq_errmsg(), "\"*\""));
	assert_mq_ok(mq_backup(ops, fd, NULL, NULL));
	close(fd);
	assert_int_equal(backup_files(a.data), 0);
	mq_client_close(prod);
	mq_client_close(qadmin);
	mq_client_close(ops);
	assert_int_equal(mqtest_broker_stop(&a), 0);
	mqtest_broker_cleanup(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backup_under_load),   cmocka_unit_test(test_backup_wire),
	    cmocka_unit_test(test_backup_idle_timeout), cmocka_unit_test(test_backup_refusals),
	    cmocka_unit_test(test_backup_stale_file),   cmocka_unit_test(test_backup_mqctl_modes),
	    cmocka_unit_test(test_backup_needs_admin),
	};

	return cmocka_run_group_tests_name("backup", tests, NULL, NULL);
}
