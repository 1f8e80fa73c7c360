/* SPDX-License-Identifier: MIT */
/*
 * server.c: nng transport of mqd. One REP socket, one listener per URL,
 * and a pool of contexts (brk_work), each an aio callback state machine:
 *
 *   RECV --request--> BUSY (decoded, dispatched; maybe with the writer)
 *        <--reply sent-- SEND <--brk_call_finish--
 *
 * A context holds one request from receipt to reply, so a parked long poll
 * holds a context but no thread. The pool starts at --contexts and grows
 * while fewer than a few contexts are left receiving, up to
 * --max-contexts; past that, requests wait in nng's queues.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "broker.h"
#include "conn_limits.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"

#define IDLE_LOW_WATER 4u

/* The listener watchdog. nng 1.5.2 (Debian 12) has a bug (nng issue 1518,
 * fixed upstream after 1.5.2): a peer that disconnects during the
 * connection handshake makes the listener stop accepting for good, so any
 * short-lived client could lock everyone else out of an ipc:// listener.
 * Every WATCH_INTERVAL_MS the watchdog pings mqd through each listener
 * (unless every context is busy, when a ping proves nothing); after
 * WATCH_FAILS failures in a row it recreates that listener (its connections
 * drop and their clients reconnect). A ping that failed is tried again with
 * the longer WATCH_TIMEOUT_SLOW_MS: a broker that is only slow (under
 * valgrind, or a loaded machine) answers then, and a listener that serves
 * is never torn down for it; the stuck one still answers nothing. */
#define WATCH_INTERVAL_MS     1000
#define WATCH_TIMEOUT_MS      1000
#define WATCH_TIMEOUT_SLOW_MS 5000
#define WATCH_FAILS           2

enum work_state { W_RECV, W_BUSY, W_SEND };

struct brk_work {
	nng_aio *aio;
	nng_ctx ctx;
	enum work_state state;
	brk_server *srv;
	brk_call call;
	brk_work *next_all;
};

struct brk_server {
	nng_socket sock;
	nng_listener lst[BRK_MAX_LISTEN];
	char probe_url[BRK_MAX_LISTEN][300]; /* how the watchdog reaches each */
	int n_lst;
	const brk_config *cfg;
	pthread_t watch_thread;
	bool watching;
	pthread_mutex_t watch_mu;
	pthread_cond_t watch_cv;
	bool watch_stop;
	brk_info *info;
	pthread_mutex_t mu; /* guards works, n_work, n_idle */
	brk_work *works;
	uint32_t n_work, n_idle, max_work;
	atomic_bool quiescing;
	atomic_int busy; /* requests taken in and not yet answered */
	atomic_int pipes;
	brk_limits *limits;        /* connection limits (conn_limits.c) */
	nng_tls_config *tls;       /* tls+tcp:// listeners (tls.c); NULL = none */
	nng_tls_config *probe_tls; /* the watchdog's client side of them */
};

static void work_cb(void *arg);

/* work_add creates one more context and starts it receiving. */
static int work_add(brk_server *s)
{
	brk_work *w = calloc(1, sizeof(*w));
	int rv;

	if (w == NULL)
		return NNG_ENOMEM;
	w->srv = s;
	w->call.work = w;
	if ((rv = nng_aio_alloc(&w->aio, work_cb, w)) != 0) {
		free(w);
		return rv;
	}
	if ((rv = nng_ctx_open(&w->ctx, s->sock)) != 0) {
		nng_aio_free(w->aio);
		free(w);
		return rv;
	}
	w->state = W_RECV;
	pthread_mutex_lock(&s->mu);
	w->next_all = s->works;
	s->works = w;
	s->n_work++;
	s->n_idle++;
	pthread_mutex_unlock(&s->mu);
	nng_ctx_recv(w->ctx, w->aio);
	return 0;
}

void brk_call_finish(brk_call *c)
{
	brk_work *w = c->work;
	Mq__Reply reply = MQ__REPLY__INIT;
	nng_msg *msg = NULL;
	size_t n;

	if (!c->internal)
		brk_metrics_request(c->method, c->status, brk_mono_ns() - c->start_ns);
	if (c->on_finish != NULL) { /* an HTTP call (http.c): no connection slot */
		c->on_finish(c);
		return;
	}
	brk_limits_call_done(w->srv->limits, c);
	reply.status = (uint32_t)c->status;
	if (c->status != MQ_OK) {
		reply.message = c->errmsg[0] ? c->errmsg : (char *)mq_strerror(c->status);
		if (c->method != NULL)
			brk_debug("%s: %s: %s", c->method->name, mq_status_name(c->status),
			          reply.message);
	} else {
		reply.body.data = c->body;
		reply.body.len = c->body_len;
	}
	n = mq__reply__get_packed_size(&reply);
	if (nng_msg_alloc(&msg, n) != 0) {
		/* Out of memory: the client times out; the context lives on. */
		brk_err("out of memory for a %zu-byte reply", n);
		brk_call_free_request(c);
		atomic_fetch_sub(&w->srv->busy, 1);
		pthread_mutex_lock(&w->srv->mu);
		w->srv->n_idle++;
		pthread_mutex_unlock(&w->srv->mu);
		w->state = W_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	mq__reply__pack(&reply, nng_msg_body(msg));
	brk_call_free_request(c);
	if (c->body_cap > 65536) { /* keep small buffers for the next request */
		free(c->body);
		c->body = NULL;
		c->body_cap = 0;
	}
	c->body_len = 0;
	w->state = W_SEND;
	nng_aio_set_msg(w->aio, msg);
	nng_ctx_send(w->ctx, w->aio);
}

static void work_cb(void *arg)
{
	brk_work *w = arg;
	brk_server *s = w->srv;
	nng_msg *msg;
	bool grow;
	int rv;

	switch (w->state) {
	case W_RECV:
		rv = nng_aio_result(w->aio);
		if (rv != 0) {
			if (rv == NNG_ECLOSED)
				return;
			brk_debug("receive: %s", nng_strerror(rv));
			nng_ctx_recv(w->ctx, w->aio);
			return;
		}
		msg = nng_aio_get_msg(w->aio);
		pthread_mutex_lock(&s->mu);
		s->n_idle--;
		grow = s->n_idle < IDLE_LOW_WATER && s->n_work < s->max_work;
		pthread_mutex_unlock(&s->mu);
		if (grow && (rv = work_add(s)) != 0)
			brk_warn("cannot add an nng context: %s", nng_strerror(rv));
		atomic_fetch_add(&s->busy, 1);
		w->state = W_BUSY;
		w->call.start_ns = brk_mono_ns();
		w->call.pipe_id = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
		w->call.longpoll_held = false;
		if (brk_limits_refused(s->limits, w->call.pipe_id)) {
			/* A connection over --max-connections: told why, closed soon. */
			nng_msg_free(msg);
			brk_call_reset_result(&w->call);
			brk_limits_refuse_call(s->limits, &w->call);
			brk_call_finish(&w->call);
			return;
		}
		if (atomic_load(&s->quiescing)) {
			nng_msg_free(msg);
			brk_call_reset_result(&w->call);
			brk_call_set_error(&w->call, MQ_UNAVAILABLE, "the broker is shutting down");
			brk_call_finish(&w->call);
			return;
		}
		brk_service_dispatch(s->info, &w->call, nng_msg_body(msg), nng_msg_len(msg));
		/* dispatch copied what it needs (or already replied). */
		nng_msg_free(msg);
		return;
	case W_SEND:
		rv = nng_aio_result(w->aio);
		if (rv != 0) {
			/* The peer went away: its reply is dropped. */
			nng_msg_free(nng_aio_get_msg(w->aio));
			if (rv == NNG_ECLOSED) {
				atomic_fetch_sub(&s->busy, 1);
				return;
			}
		}
		atomic_fetch_sub(&s->busy, 1);
		pthread_mutex_lock(&s->mu);
		s->n_idle++;
		pthread_mutex_unlock(&s->mu);
		w->state = W_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	case W_BUSY:
		return;
	}
}

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	brk_server *s = arg;

	brk_limits_pipe_event(s->limits, p, ev);
	if (ev == NNG_PIPE_EV_ADD_PRE) { /* see brk_limits_pipe_event */
		int n = atomic_fetch_add(&s->pipes, 1) + 1;
		brk_metrics_conn_add(1);
		brk_debug("connection opened (%d open)", n);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		int n = atomic_fetch_sub(&s->pipes, 1) - 1;
		brk_metrics_conn_add(-1);
		brk_debug("connection closed (%d open)", n);
	}
}

/* probe_url_for derives a URL that reaches the listener from this host:
 * a wildcard tcp address becomes loopback and port 0 the bound port. */
static void probe_url_for(char *out, size_t len, const char *url, int bound_port)
{
	const char *host, *colon, *scheme;

	if (strncmp(url, "tcp://", 6) == 0)
		scheme = "tcp";
	else if (strncmp(url, "tls+tcp://", 10) == 0)
		scheme = "tls+tcp";
	else {
		snprintf(out, len, "%s", url);
		return;
	}
	host = url + strlen(scheme) + 3;
	colon = strrchr(host, ':');
	if (colon == NULL) {
		snprintf(out, len, "%s", url);
		return;
	}
	int hlen = (int)(colon - host);
	if (hlen == 0 || (hlen == 1 && host[0] == '*') || strncmp(host, "0.0.0.0", 7) == 0)
		snprintf(out, len, "%s://127.0.0.1:%d", scheme, bound_port);
	else if (strncmp(host, "[::]", 4) == 0)
		snprintf(out, len, "%s://[::1]:%d", scheme, bound_port);
	else
		snprintf(out, len, "%s://%.*s:%d", scheme, hlen, host, bound_port);
}

static int listener_start(brk_server *s, int i, const char *url)
{
	int rv, port = 0;

	if ((rv = nng_listener_create(&s->lst[i], s->sock, url)) != 0)
		return rv;
	if (brk_tls_url(url) &&
	    (rv = nng_listener_set_ptr(s->lst[i], NNG_OPT_TLS_CONFIG, s->tls)) != 0)
		return rv;
	if ((rv = nng_listener_start(s->lst[i], 0)) != 0)
		return rv;
	if (strncmp(url, "tcp", 3) == 0 || strncmp(url, "tls+tcp", 7) == 0)
		nng_listener_get_int(s->lst[i], NNG_OPT_TCP_BOUND_PORT, &port);
	probe_url_for(s->probe_url[i], sizeof(s->probe_url[i]), url, port);
	return 0;
}

/* probe sends a Ping through url; 0 when answered. (In nng 1.5.2's bug
 * the connection completes its handshake but is never attached to the
 * socket, so only a request shows that the listener still serves.) */
static int probe(brk_server *s, const char *url, int timeout_ms)
{
	Mq__Request req = MQ__REQUEST__INIT;
	uint8_t buf[64];
	nng_socket sock;
	nng_msg *msg = NULL;
	size_t n;
	int rv;

	req.version = 1;
	for (unsigned i = 0; i < mq__broker__descriptor.n_methods; i++)
		if (mq__broker__descriptor.methods[i].input == &mq__ping_request__descriptor)
			req.method = (char *)mq__broker__descriptor.methods[i].name;
	n = mq__request__pack(&req, buf);
	if ((rv = nng_req0_open(&sock)) != 0)
		return rv;
	nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (brk_tls_url(url)) {
		nng_dialer d;
		if ((rv = nng_dialer_create(&d, sock, url)) == 0 &&
		    (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, s->probe_tls)) == 0 &&
		    (rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) == 0 &&
		    (rv = nng_send(sock, buf, n, 0)) == 0 && (rv = nng_recvmsg(sock, &msg, 0)) == 0)
			nng_msg_free(msg);
		nng_close(sock);
		return rv;
	}
	if ((rv = nng_dial(sock, url, NULL, NNG_FLAG_NONBLOCK)) == 0 &&
	    (rv = nng_send(sock, buf, n, 0)) == 0 && (rv = nng_recvmsg(sock, &msg, 0)) == 0)
		nng_msg_free(msg);
	nng_close(sock);
	return rv;
}

static void *watch_main(void *arg)
{
	brk_server *s = arg;
	int fails[BRK_MAX_LISTEN] = {0};

	pthread_mutex_lock(&s->watch_mu);
	while (!s->watch_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += WATCH_INTERVAL_MS / 1000;
		pthread_cond_timedwait(&s->watch_cv, &s->watch_mu, &ts);
		if (s->watch_stop || atomic_load(&s->quiescing))
			break;
		pthread_mutex_unlock(&s->watch_mu);
		brk_limits_sweep(s->limits);
		for (int i = 0; i < s->n_lst; i++) {
			uint32_t idle;
			/* A listener that requires client certificates cannot be
			 * probed without one: not watched. */
			if (brk_tls_url(s->cfg->listen[i]) &&
			    brk_tls_client_auth(s->cfg) == NNG_TLS_AUTH_MODE_REQUIRED)
				continue;
			pthread_mutex_lock(&s->mu);
			idle = s->n_idle;
			pthread_mutex_unlock(&s->mu);
			/* With no context receiving (all held by long polls or work),
			 * a Ping would wait however healthy the listener: skip. */
			if (idle == 0)
				continue;
			int rv = probe(s, s->probe_url[i],
			               fails[i] ? WATCH_TIMEOUT_SLOW_MS : WATCH_TIMEOUT_MS);
			if (rv == 0) {
				fails[i] = 0;
				continue;
			}
			brk_debug("watchdog: %s: %s", s->probe_url[i], nng_strerror(rv));
			if (++fails[i] < WATCH_FAILS || atomic_load(&s->quiescing))
				continue;
			brk_warn("listener %s stopped accepting connections (nng 1.5.2 bug 1518); "
			         "restarting it",
			         s->cfg->listen[i]);
			nng_listener_close(s->lst[i]);
			if ((rv = listener_start(s, i, s->cfg->listen[i])) != 0)
				brk_err("cannot listen again on %s: %s", s->cfg->listen[i],
				        nng_strerror(rv));
			fails[i] = 0;
		}
		pthread_mutex_lock(&s->watch_mu);
	}
	pthread_mutex_unlock(&s->watch_mu);
	return NULL;
}

int brk_server_open(brk_server **out, const brk_config *cfg, brk_info *info)
{
	brk_server *s = calloc(1, sizeof(*s));
	int rv;

	if (s == NULL)
		return -1;
	s->info = info;
	s->cfg = cfg;
	s->max_work = cfg->max_contexts;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->watch_mu, NULL);
	pthread_cond_init(&s->watch_cv, NULL);
	if ((s->limits = brk_limits_new(cfg->max_connections, cfg->max_parked_pulls)) == NULL)
		goto fail;
	info->limits = s->limits;
	if (brk_tls_server_open(cfg, &s->tls) != 0)
		goto fail;
	if (s->tls != NULL && (rv = brk_tls_probe_config(&s->probe_tls)) != 0) {
		brk_err("TLS: %s", nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		brk_err("cannot open the nng socket: %s", nng_strerror(rv));
		goto fail;
	}
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, (size_t)cfg->max_request);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, s);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, pipe_cb, s);
	for (uint32_t i = 0; i < cfg->contexts; i++) {
		if ((rv = work_add(s)) != 0) {
			brk_err("cannot start nng contexts: %s", nng_strerror(rv));
			goto fail;
		}
	}
	for (int i = 0; i < cfg->n_listen; i++) {
		const char *url = cfg->listen[i];
		if ((rv = listener_start(s, s->n_lst, url)) != 0) {
			brk_err("cannot listen on %s: %s", url, nng_strerror(rv));
			goto fail;
		}
		s->n_lst++;
		if (strncmp(url, "tcp", 3) == 0 || strncmp(url, "tls+tcp", 7) == 0) {
			int port = 0;
			nng_listener_get_int(s->lst[s->n_lst - 1], NNG_OPT_TCP_BOUND_PORT, &port);
			brk_info("listening on %s (port %d)", url, port);
		} else {
			brk_info("listening on %s", url);
		}
	}
	if (pthread_create(&s->watch_thread, NULL, watch_main, s) == 0)
		s->watching = true;
	else
		brk_warn("cannot start the listener watchdog");
	*out = s;
	return 0;
fail:
	brk_server_close(s);
	return -1;
}

void brk_server_quiesce(brk_server *s)
{
	/* Listeners stay open until brk_server_close: closing an nng listener
	 * also closes the connections it accepted, which would drop the replies
	 * still to be sent. New requests get UNAVAILABLE meanwhile. */
	atomic_store(&s->quiescing, true);
}

void brk_server_close(brk_server *s)
{
	brk_work *w, *next;

	if (s == NULL)
		return;
	if (s->watching) {
		pthread_mutex_lock(&s->watch_mu);
		s->watch_stop = true;
		pthread_cond_signal(&s->watch_cv);
		pthread_mutex_unlock(&s->watch_mu);
		pthread_join(s->watch_thread, NULL);
	}
	/* Let replies in flight reach their peers (bounded). */
	for (int i = 0; i < 200 && atomic_load(&s->busy) > 0; i++)
		usleep(10000);
	if (atomic_load(&s->busy) > 0)
		brk_warn("%d replies still in flight at close", atomic_load(&s->busy));
	/* A completed send has reached the connection's queue, not yet the
	 * peer; nng has no flush, so give the transports a moment to write. */
	usleep(100000);
	nng_close(s->sock);
	for (w = s->works; w != NULL; w = w->next_all)
		nng_aio_stop(w->aio);
	for (w = s->works; w != NULL; w = next) {
		next = w->next_all;
		nng_aio_free(w->aio);
		brk_call_free_request(&w->call);
		free(w->call.body);
		free(w);
	}
	if (s->info != NULL && s->info->limits == s->limits)
		s->info->limits = NULL;
	brk_limits_free(s->limits);
	if (s->tls != NULL)
		nng_tls_config_free(s->tls);
	if (s->probe_tls != NULL)
		nng_tls_config_free(s->probe_tls);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->watch_mu);
	pthread_cond_destroy(&s->watch_cv);
	free(s);
}
