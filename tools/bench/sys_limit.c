/* SPDX-License-Identifier: MIT */
/*
 * sys_limit.c: "this stack's own limit" of issue 6's goal for scenario 1,
 * measured in the same run: the bare pieces mq is built from, without mq.
 * A server thread in mqbench answers nng REQ/REP requests on an ipc://
 * socket; for each request it does one LMDB write transaction (a 16-byte
 * key, the payload as value) committed with LMDB's default durable flags
 * (two syncs: data pages, then the meta page), then replies with the
 * payload. The client is one req0 socket with one request in flight
 * (scenario 1's shape). So its rate is 1 / (nng round trip + durable LMDB
 * commit), the ceiling of a push with one request in flight.
 *
 * This probe links nng and LMDB directly, which tools otherwise never do
 * (they use <mq/mq.h> only): it measures the libraries, not mq.
 */
#include <errno.h>
#include <lmdb.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static struct {
	nng_socket rep;
	MDB_env *env;
	MDB_dbi dbi;
	pthread_t th;
	atomic_bool stop;
	bool running;
	char err[200];
} lim;

static const char *lim_unavailable(void)
{
	return NULL;
}

static void *lim_server(void *arg)
{
	uint64_t key[2] = {0, 0};

	(void)arg;
	while (!atomic_load(&lim.stop)) {
		nng_msg *m;
		MDB_txn *txn = NULL;
		MDB_val k = {sizeof(key), key}, v;
		int rc = nng_recvmsg(lim.rep, &m, 0);

		if (rc == NNG_ETIMEDOUT)
			continue;
		if (rc != 0)
			break;
		key[1] = __builtin_bswap64(++key[0]); /* big-endian: appends */
		v.mv_size = nng_msg_len(m);
		v.mv_data = nng_msg_body(m);
		if ((rc = mdb_txn_begin(lim.env, NULL, 0, &txn)) == 0 &&
		    (rc = mdb_put(txn, lim.dbi, &k, &v, 0)) == 0)
			rc = mdb_txn_commit(txn);
		else if (rc != 0 && txn != NULL)
			mdb_txn_abort(txn);
		if (rc != 0) {
			snprintf(lim.err, sizeof(lim.err), "lmdb: %s", mdb_strerror(rc));
			nng_msg_free(m);
			break;
		}
		if (nng_sendmsg(lim.rep, m, 0) != 0)
			nng_msg_free(m);
	}
	return NULL;
}

static int lim_start(bserver *srv, bool relaxed, char *err, size_t errlen)
{
	MDB_txn *txn;
	int rc;

	(void)relaxed;
	memset(&lim, 0, sizeof(lim));
	if (server_mkdir(srv, "limit", err, errlen) != 0)
		return -1;
	snprintf(srv->url, sizeof(srv->url), "ipc://%s/limit.sock", srv->dir);
	snprintf(srv->durability, sizeof(srv->durability),
	         "LMDB default: commit = 2 syncs, reply after");
	if ((rc = mdb_env_create(&lim.env)) != 0 ||
	    (rc = mdb_env_set_mapsize(lim.env, 1ull << 30)) != 0 ||
	    (rc = mdb_env_open(lim.env, srv->data, 0, 0600)) != 0 ||
	    (rc = mdb_txn_begin(lim.env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &lim.dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
		snprintf(err, errlen, "lmdb %s: %s", srv->data, mdb_strerror(rc));
		if (lim.env)
			mdb_env_close(lim.env);
		lim.env = NULL;
		return -1;
	}
	if ((rc = nng_rep0_open(&lim.rep)) != 0 ||
	    (rc = nng_socket_set_ms(lim.rep, NNG_OPT_RECVTIMEO, 100)) != 0 ||
	    (rc = nng_listen(lim.rep, srv->url, NULL, 0)) != 0) {
		snprintf(err, errlen, "nng %s: %s", srv->url, nng_strerror(rc));
		mdb_env_close(lim.env);
		lim.env = NULL;
		return -1;
	}
	pthread_create(&lim.th, NULL, lim_server, NULL);
	lim.running = true;
	return 0;
}

static void lim_stop(bserver *srv)
{
	(void)srv;
	if (!lim.running)
		return;
	atomic_store(&lim.stop, true);
	pthread_join(lim.th, NULL);
	nng_close(lim.rep);
	mdb_env_close(lim.env);
	lim.running = false;
}

static int lim_prepare(brun *r, char *err, size_t errlen)
{
	(void)r;
	(void)err;
	(void)errlen;
	return 0;
}

static int lim_open(bw *w, char *err, size_t errlen)
{
	nng_socket *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((rc = nng_req0_open(s)) != 0 || (rc = nng_dial(*s, w->run->srv->url, NULL, 0)) != 0) {
		snprintf(err, errlen, "nng dial %s: %s", w->run->srv->url, nng_strerror(rc));
		free(s);
		return -1;
	}
	nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, 10000);
	w->conn = s;
	return 0;
}

static void lim_close(bw *w)
{
	nng_socket *s = w->conn;

	if (s != NULL) {
		nng_close(*s);
		free(s);
	}
	w->conn = NULL;
}

static void *lim_producer(void *arg)
{
	bw *w = arg;
	brun *r = w->run;
	nng_socket *s = w->conn;

	while (run_take(w, 1)) {
		nng_msg *m;
		uint64_t t0 = now_us();
		int rc;

		if ((rc = nng_msg_alloc(&m, 0)) != 0 ||
		    (rc = nng_msg_append(m, payload_stamp(w), r->size)) != 0 ||
		    (rc = nng_sendmsg(*s, m, 0)) != 0 || (rc = nng_recvmsg(*s, &m, 0)) != 0) {
			run_error(r, "round trip", "%s%s", nng_strerror(rc), lim.err);
			break;
		}
		nng_msg_free(m);
		lat_add(r, &w->push_lat, now_us() - t0);
		run_pushed(r, 1);
	}
	return NULL;
}

static void *lim_consumer(void *arg)
{
	(void)arg;
	return NULL;
}

const bsys sys_limit = {
    .name = "limit",
    .unavailable = lim_unavailable,
    .start = lim_start,
    .stop = lim_stop,
    .prepare = lim_prepare,
    .prefill = NULL,
    .threads_per = NULL,
    .open = lim_open,
    .close = lim_close,
    .producer = lim_producer,
    .consumer = lim_consumer,
};
