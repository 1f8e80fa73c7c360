/* SPDX-License-Identifier: MIT */
/*
 * sys_nats.c: mqbench's driver for NATS JetStream (Debian's nats-server)
 * through cnats (libnats), as ../shared/RESULTS.md measured it: stream
 * BENCH (work-queue retention, file storage, 1 replica), one durable pull
 * consumer (explicit ack, ack wait 60 s, max ack pending 100000), every
 * connection with natsOptions_SetSendAsap(true).
 *   producer: W = 1: js_Publish (sync); else js_PublishAsync with at most
 *             W x batch un-acked publishes, counted on the PubAck (there is
 *             no batch publish: a batch is deeper pipelining);
 *   consumer: natsSubscription_Fetch(W), natsMsg_Ack on each message, then
 *             natsConnection_Flush (the server has the acks) per batch.
 * Durability: nats-server before 2.10 (Debian 12 has 2.9.10) has no
 * sync_interval: the file store is synced on a 60 s timer, never before a
 * PubAck. From 2.10 on, mqbench sets `sync_interval: always`.
 * Built only with libnats (meson option peers); otherwise unavailable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#ifdef HAVE_NATS
#include <nats/nats.h>

#define STREAM  "BENCH"
#define SUBJECT "bench.q"
#define DURABLE "bench"

typedef struct nconn {
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub;
} nconn;

static int nats_major, nats_minor;

static const char *nt_unavailable(void)
{
	return program_exists("nats-server") ? NULL
	                                     : "nats-server not installed (scripts/bench.sh)";
}

static void nt_version(void)
{
	FILE *p;
	char line[128];

	if (nats_major)
		return;
	if ((p = popen("nats-server --version 2>&1", "r")) == NULL)
		return;
	if (fgets(line, sizeof(line), p) != NULL) {
		const char *v = strstr(line, " v");

		if (v == NULL || sscanf(v, " v%d.%d", &nats_major, &nats_minor) != 2)
			nats_major = nats_minor = 0;
	}
	pclose(p);
}

static int nt_connect(int port, nconn *c, char *err, size_t errlen)
{
	natsOptions *o = NULL;
	char url[64];
	natsStatus s;

	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
	memset(c, 0, sizeof(*c));
	if ((s = natsOptions_Create(&o)) != NATS_OK ||
	    (s = natsOptions_SetURL(o, url)) != NATS_OK ||
	    (s = natsOptions_SetSendAsap(o, true)) != NATS_OK ||
	    (s = natsConnection_Connect(&c->nc, o)) != NATS_OK) {
		snprintf(err, errlen, "connect %s: %s", url, natsStatus_GetText(s));
		natsOptions_Destroy(o);
		return -1;
	}
	natsOptions_Destroy(o);
	return 0;
}

static void nt_disconnect(nconn *c)
{
	if (c->sub)
		natsSubscription_Destroy(c->sub);
	if (c->js)
		jsCtx_Destroy(c->js);
	if (c->nc) {
		natsConnection_Close(c->nc);
		natsConnection_Destroy(c->nc);
	}
	memset(c, 0, sizeof(*c));
}

static int nt_start(bserver *srv, bool relaxed, char *err, size_t errlen)
{
	char port[16], conf[400];
	const char *argv[16];
	int argc = 0;
	bool sync_always;

	(void)relaxed; /* one mode: JetStream decides when to sync */
	nt_version();
	if (server_mkdir(srv, "nats", err, errlen) != 0)
		return -1;
	if ((srv->port = free_port()) < 0) {
		snprintf(err, errlen, "no free port");
		return -1;
	}
	snprintf(port, sizeof(port), "%d", srv->port);
	snprintf(srv->url, sizeof(srv->url), "127.0.0.1:%d", srv->port);
	sync_always = nats_major > 2 || (nats_major == 2 && nats_minor >= 10);
	argv[argc++] = "nats-server";
	argv[argc++] = "-a";
	argv[argc++] = "127.0.0.1";
	argv[argc++] = "-p";
	argv[argc++] = port;
	if (sync_always) {
		FILE *f;

		snprintf(conf, sizeof(conf), "%s/nats.conf", srv->dir);
		if ((f = fopen(conf, "w")) == NULL) {
			snprintf(err, errlen, "%s: cannot write", conf);
			return -1;
		}
		fprintf(f, "jetstream {\n  store_dir: \"%s\"\n  sync_interval: always\n}\n",
		        srv->data);
		fclose(f);
		argv[argc++] = "-c";
		argv[argc++] = conf;
		snprintf(srv->durability, sizeof(srv->durability),
		         "JetStream file store, sync_interval always");
	} else {
		argv[argc++] = "-js";
		argv[argc++] = "-sd";
		argv[argc++] = srv->data;
		snprintf(srv->durability, sizeof(srv->durability),
		         "JetStream file store, NO fsync per message");
		snprintf(srv->note, sizeof(srv->note),
		         "nats-server %d.%d has no sync_interval (added in 2.10): its file store "
		         "is synced every 60 s, a PubAck does not mean on disk",
		         nats_major, nats_minor);
	}
	argv[argc] = NULL;
	if (server_spawn(srv, argv, err, errlen) != 0)
		return -1;
	return server_wait_tcp(srv, 30, err, errlen);
}

static int nt_prepare(brun *r, char *err, size_t errlen)
{
	nconn c;
	jsStreamConfig sc;
	jsConsumerConfig cc;
	jsStreamInfo *si = NULL;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	const char *subjects[1] = {SUBJECT};

	if (nt_connect(r->srv->port, &c, err, errlen) != 0)
		return -1;
	if ((s = natsConnection_JetStream(&c.js, c.nc, NULL)) != NATS_OK) {
		snprintf(err, errlen, "JetStream: %s", natsStatus_GetText(s));
		goto fail;
	}
	jsStreamConfig_Init(&sc);
	sc.Name = STREAM;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Retention = js_WorkQueuePolicy;
	sc.Storage = js_FileStorage;
	sc.Replicas = 1;
	/* JetStream may still be starting: retry for a few seconds. */
	for (int i = 0; i < 100; i++) {
		s = js_AddStream(&si, c.js, &sc, NULL, &jerr);
		if (s == NATS_OK)
			break;
		usleep(50000);
	}
	if (s != NATS_OK) {
		snprintf(err, errlen, "add stream: %s (%d)", natsStatus_GetText(s), (int)jerr);
		goto fail;
	}
	jsStreamInfo_Destroy(si);
	jsConsumerConfig_Init(&cc);
	cc.Durable = DURABLE;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = 60LL * 1000000000LL;
	cc.MaxAckPending = 100000;
	if ((s = js_AddConsumer(&ci, c.js, STREAM, &cc, NULL, &jerr)) != NATS_OK) {
		snprintf(err, errlen, "add consumer: %s (%d)", natsStatus_GetText(s), (int)jerr);
		goto fail;
	}
	jsConsumerInfo_Destroy(ci);
	nt_disconnect(&c);
	return 0;
fail:
	nt_disconnect(&c);
	return -1;
}

static void nt_ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	bw *w = closure;

	(void)js;
	if (pa != NULL) {
		uint64_t t = payload_time(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));

		lat_add_locked(w, &w->push_lat, t ? now_us() - t : 0);
		run_pushed(w->run, 1);
	} else {
		run_error(w->run, "publish (async)", "%s",
		          pae && pae->ErrText ? pae->ErrText : "publish failed");
		run_give(w->run, 1);
	}
	natsMsg_Destroy(msg);
}

static int nt_open(bw *w, char *err, size_t errlen)
{
	brun *r = w->run;
	nconn *c = calloc(1, sizeof(*c));
	jsOptions jo;
	natsStatus s;

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (nt_connect(r->srv->port, c, err, errlen) != 0) {
		free(c);
		return -1;
	}
	jsOptions_Init(&jo);
	jo.Wait = 30000;
	if (w->role == ROLE_PRODUCER) {
		jo.PublishAsync.MaxPending = (int64_t)r->inflight * r->batch;
		jo.PublishAsync.AckHandler = nt_ack_handler;
		jo.PublishAsync.AckHandlerClosure = w;
		jo.PublishAsync.StallWait = 30000;
	}
	if ((s = natsConnection_JetStream(&c->js, c->nc, &jo)) != NATS_OK) {
		snprintf(err, errlen, "JetStream: %s", natsStatus_GetText(s));
		goto fail;
	}
	if (w->role == ROLE_CONSUMER) {
		jsSubOptions so;
		jsErrCode jerr = 0;

		jsSubOptions_Init(&so);
		so.Stream = STREAM;
		so.Consumer = DURABLE;
		if ((s = js_PullSubscribe(&c->sub, c->js, SUBJECT, DURABLE, NULL, &so, &jerr)) !=
		    NATS_OK) {
			snprintf(err, errlen, "pull subscribe: %s (%d)", natsStatus_GetText(s),
			         (int)jerr);
			goto fail;
		}
	}
	w->conn = c;
	return 0;
fail:
	nt_disconnect(c);
	free(c);
	return -1;
}

static void nt_close(bw *w)
{
	if (w->conn) {
		nt_disconnect(w->conn);
		free(w->conn);
	}
	w->conn = NULL;
}

static void *nt_producer(void *arg)
{
	bw *w = arg;
	brun *r = w->run;
	nconn *c = w->conn;
	bool sync = r->inflight == 1 && r->batch == 1;
	natsStatus s;

	while (run_take(w, r->batch)) {
		for (int i = 0; i < r->batch; i++) {
			const uint8_t *p = payload_stamp(w);

			if (sync) {
				jsPubAck *pa = NULL;
				jsErrCode jerr = 0;
				uint64_t t0 = now_us();

				s = js_Publish(&pa, c->js, SUBJECT, p, (int)r->size, NULL, &jerr);
				if (s != NATS_OK) {
					run_error(r, "publish", "%s (%d)", natsStatus_GetText(s),
					          (int)jerr);
					run_give(r, 1);
					usleep(1000);
					continue;
				}
				jsPubAck_Destroy(pa);
				lat_add(r, &w->push_lat, now_us() - t0);
				run_pushed(r, 1);
				continue;
			}
			if ((s = js_PublishAsync(c->js, SUBJECT, p, (int)r->size, NULL)) !=
			    NATS_OK) {
				run_error(r, "publish (async)", "%s", natsStatus_GetText(s));
				run_give(r, 1);
				usleep(1000);
			}
		}
	}
	if (!sync) {
		jsPubOptions po;

		jsPubOptions_Init(&po);
		po.MaxWait = 30000;
		if ((s = js_PublishAsyncComplete(c->js, &po)) != NATS_OK)
			run_error(r, "publish complete", "%s", natsStatus_GetText(s));
	}
	return NULL;
}

static void *nt_consumer(void *arg)
{
	bw *w = arg;
	brun *r = w->run;
	nconn *c = w->conn;

	while (!run_stopped(r)) {
		natsMsgList list = {0};
		jsErrCode jerr = 0;
		uint64_t t0 = now_us();
		natsStatus s = natsSubscription_Fetch(&list, c->sub, r->inflight, 1000, &jerr);
		int ok = 0;

		if (s == NATS_TIMEOUT || (s == NATS_OK && list.Count == 0)) {
			natsMsgList_Destroy(&list);
			continue;
		}
		if (s != NATS_OK) {
			run_error(r, "fetch", "%s (%d)", natsStatus_GetText(s), (int)jerr);
			natsMsgList_Destroy(&list);
			usleep(1000);
			continue;
		}
		lat_add(r, &w->pull_lat, now_us() - t0);
		run_pulled(r, (uint64_t)list.Count);
		t0 = now_us();
		for (int i = 0; i < list.Count; i++) {
			if ((s = natsMsg_Ack(list.Msgs[i], NULL)) != NATS_OK)
				run_error(r, "ack", "%s", natsStatus_GetText(s));
			else
				ok++;
		}
		if ((s = natsConnection_Flush(c->nc)) != NATS_OK)
			run_error(r, "flush", "%s", natsStatus_GetText(s));
		lat_add(r, &w->ack_lat, now_us() - t0);
		run_acked(r, (uint64_t)ok);
		run_give(r, list.Count - ok);
		natsMsgList_Destroy(&list);
	}
	return NULL;
}

static int nt_prefill(brun *r, uint64_t n, char *err, size_t errlen)
{
	nconn c;
	jsOptions jo;
	jsPubOptions po;
	natsStatus s;
	uint8_t *body = malloc(r->size);
	int rv = -1;

	if (body == NULL || nt_connect(r->srv->port, &c, err, errlen) != 0) {
		free(body);
		return -1;
	}
	memset(body, 'x', r->size);
	jsOptions_Init(&jo);
	jo.Wait = 60000;
	jo.PublishAsync.MaxPending = 4096;
	jo.PublishAsync.StallWait = 60000;
	if ((s = natsConnection_JetStream(&c.js, c.nc, &jo)) != NATS_OK) {
		snprintf(err, errlen, "JetStream: %s", natsStatus_GetText(s));
		goto out;
	}
	for (uint64_t i = 0; i < n; i++) {
		if ((s = js_PublishAsync(c.js, SUBJECT, body, (int)r->size, NULL)) != NATS_OK) {
			snprintf(err, errlen, "prefill publish: %s", natsStatus_GetText(s));
			goto out;
		}
	}
	jsPubOptions_Init(&po);
	po.MaxWait = 600000;
	if ((s = js_PublishAsyncComplete(c.js, &po)) != NATS_OK) {
		snprintf(err, errlen, "prefill complete: %s", natsStatus_GetText(s));
		goto out;
	}
	rv = 0;
out:
	nt_disconnect(&c);
	free(body);
	return rv;
}

const bsys sys_nats = {
    .name = "nats",
    .unavailable = nt_unavailable,
    .start = nt_start,
    .prepare = nt_prepare,
    .prefill = nt_prefill,
    .threads_per = NULL,
    .open = nt_open,
    .close = nt_close,
    .producer = nt_producer,
    .consumer = nt_consumer,
};

#else /* !HAVE_NATS */

static const char *nt_unavailable(void)
{
	return "built without libnats (meson -Dpeers=enabled, libnats-dev)";
}

const bsys sys_nats = {.name = "nats", .unavailable = nt_unavailable};

#endif
