/* SPDX-License-Identifier: MIT */
/* client.c: mq_client open/close and its transport: one nng req0 socket
 * dialed in the background (nng reconnects by itself), and a pool of
 * (nng_ctx, nng_aio) pairs so that many threads can have a request in
 * flight at once. This is the only file of the library that sees nng, and
 * mqc_nng_status() below is the one place where nng errors become
 * mq_status codes. It knows nothing of the wire format (rpc.c).
 *
 * Locking: c->mtx guards the pool list and the pipe count; it is never held
 * while waiting on an aio. */
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "mqc.h"
#include "mqc_tls.h"

#ifndef MQ_VERSION_STRING
#error "MQ_VERSION_STRING must be defined by the build (client/meson.build)"
#endif

/* Reconnect back-off of the dialer: start fast, cap at one second. */
#define MQC_RECONN_MIN_MS      50
#define MQC_RECONN_MAX_MS      1000
#define MQC_DEFAULT_TIMEOUT_MS 10000

/* mqc_slot is one request context; a call holds one for its duration. */
struct mqc_slot {
	nng_ctx ctx;
	nng_aio *aio;
	struct mqc_slot *next;
};

struct mq_client {
	nng_socket sock;
	nng_dialer dialer;
	int32_t timeout_ms;
	char *auth_token;
	char *url;
	nng_tls_config *tls; /* tls+tcp:// only (tls.c); NULL otherwise */
	char tls_name[256];  /* the server name its certificate must hold */

	pthread_mutex_t mtx;
	pthread_cond_t cv;     /* signalled when a pipe comes up */
	struct mqc_slot *pool; /* idle slots */
	int npipes;            /* pipes currently connected */

	struct mqc_async *async; /* pipelined calls (async.c) */
};

const char *mq_version(void)
{
	return MQ_VERSION_STRING;
}

void mq_client_opts_init(mq_client_opts *opts)
{
	if (opts == NULL)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->timeout_ms = MQC_DEFAULT_TIMEOUT_MS;
}

const char *mqc_auth_token(const mq_client *c)
{
	return c->auth_token != NULL ? c->auth_token : "";
}

int32_t mqc_timeout_ms(const mq_client *c)
{
	return c->timeout_ms;
}

struct mqc_async *mqc_async_of(mq_client *c)
{
	return c->async;
}

int mqc_ctx_open(mq_client *c, nng_ctx *ctx)
{
	return nng_ctx_open(ctx, c->sock);
}

/* mqc_nng_status maps an nng error to an mq_status and sets the message.
 * Local out-of-memory is MQ_INTERNAL, as for mq_client_open: the broker's
 * MQ_RESOURCE_EXHAUSTED keeps its one meaning (the broker's storage is
 * full). A timeout while no connection is up is reported as MQ_UNAVAILABLE,
 * which says more than "deadline exceeded". */
mq_status mqc_nng_status(mq_client *c, int rv, const char *what)
{
	int npipes;

	switch (rv) {
	case NNG_ETIMEDOUT:
		pthread_mutex_lock(&c->mtx);
		npipes = c->npipes;
		pthread_mutex_unlock(&c->mtx);
		if (npipes == 0)
			return mqc_fail(MQ_UNAVAILABLE, "%s: no connection to broker at %s", what,
			                c->url);
		return mqc_fail(MQ_DEADLINE_EXCEEDED, "%s: no reply from broker at %s in time",
		                what, c->url);
	case NNG_ECLOSED:
	case NNG_ECONNREFUSED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_ECONNABORTED:
	case NNG_EUNREACHABLE:
	case NNG_EADDRINUSE:
		return mqc_fail(MQ_UNAVAILABLE, "%s: broker at %s: %s", what, c->url,
		                nng_strerror(rv));
	case NNG_ECANCELED:
		return mqc_fail(MQ_CANCELLED, "%s: %s", what, nng_strerror(rv));
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EMSGSIZE:
		return mqc_fail(MQ_INVALID_ARGUMENT, "%s: %s", what, nng_strerror(rv));
	case NNG_ENOMEM:
	default:
		return mqc_fail(MQ_INTERNAL, "%s: %s", what, nng_strerror(rv));
	}
}

/* mqc_no_connection explains, for a TLS client without any connection, why
 * none comes up (a failed handshake: unknown CA, missing client
 * certificate...). Returns MQ_OK when it has nothing to add. */
static mq_status mqc_no_connection(mq_client *c, const char *what)
{
	int npipes, rv;

	if (c->tls == NULL)
		return MQ_OK;
	pthread_mutex_lock(&c->mtx);
	npipes = c->npipes;
	pthread_mutex_unlock(&c->mtx);
	if (npipes > 0)
		return MQ_OK;
	rv = mqc_tls_diagnose(c->url, c->tls, 2000);
	switch (rv) {
	case 0:
	case NNG_ETIMEDOUT:
	case NNG_ECONNREFUSED:
	case NNG_EUNREACHABLE:
		return MQ_OK; /* not a TLS problem (or none now) */
	default:
		return mqc_fail(
		    MQ_UNAVAILABLE,
		    "%s: TLS connection to broker at %s failed: %s (check that the CA "
		    "file holds the CA that signed the broker's certificate, that the "
		    "certificate holds the DNS name '%s' (tls_server_name), and whether "
		    "the broker requires a client certificate)",
		    what, c->url, nng_strerror(rv), c->tls_name);
	}
}

static void mqc_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	mq_client *c = arg;

	(void)p;
	pthread_mutex_lock(&c->mtx);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		c->npipes++;
		pthread_cond_broadcast(&c->cv);
	} else if (ev == NNG_PIPE_EV_REM_POST && c->npipes > 0) {
		c->npipes--;
		pthread_cond_broadcast(&c->cv); /* mq_client_close waits for 0 */
	}
	pthread_mutex_unlock(&c->mtx);
}

/* mqc_wait_connected waits up to ms for the first pipe. */
static bool mqc_wait_connected(mq_client *c, int32_t ms)
{
	struct timespec ts;
	bool up;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->mtx);
	while (c->npipes == 0) {
		if (pthread_cond_timedwait(&c->cv, &c->mtx, &ts) == ETIMEDOUT)
			break;
	}
	up = c->npipes > 0;
	pthread_mutex_unlock(&c->mtx);
	return up;
}

static void mqc_free(mq_client *c)
{
	mqc_async_free(c->async);
	if (c->tls != NULL)
		nng_tls_config_free(c->tls);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mtx);
	free(c->auth_token);
	free(c->url);
	free(c);
}

static mq_status mqc_socket_open(mq_client *c, const char *url, const mq_client_opts *opts)
{
	mq_status st;
	int rv;

	if ((rv = nng_req0_open(&c->sock)) != 0)
		return mqc_nng_status(c, rv, "open socket");
	/* No blind resends on a timer: a resent push could be stored twice.
	 * Contexts copy this at creation, so set it before any exists. With
	 * retries off, a request whose connection drops fails at once. */
	if ((rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, mqc_pipe_cb, c)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, mqc_pipe_cb, c)) != 0)
		return mqc_nng_status(c, rv, "configure socket");
	if ((rv = nng_dialer_create(&c->dialer, c->sock, url)) != 0)
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "url \"%s\": %s (want tcp://HOST:PORT or ipc:///PATH)", url,
		                nng_strerror(rv));
	(void)nng_dialer_set_size(c->dialer, NNG_OPT_RECVMAXSZ, 0);
	if ((st = mqc_tls_setup(c->dialer, url, opts, &c->tls, c->tls_name, sizeof(c->tls_name))) !=
	    MQ_OK)
		return st;
	if ((rv = nng_dialer_set_ms(c->dialer, NNG_OPT_RECONNMINT, MQC_RECONN_MIN_MS)) != 0 ||
	    (rv = nng_dialer_set_ms(c->dialer, NNG_OPT_RECONNMAXT, MQC_RECONN_MAX_MS)) != 0)
		return mqc_nng_status(c, rv, "configure dialer");
	/* NONBLOCK: connect (and reconnect) in the background. */
	if ((rv = nng_dialer_start(c->dialer, NNG_FLAG_NONBLOCK)) != 0)
		return mqc_nng_status(c, rv, "dial");
	return MQ_OK;
}

mq_status mq_client_open(mq_client **out, const char *url, const mq_client_opts *opts)
{
	mq_client_opts defaults;
	pthread_condattr_t ca;
	mq_client *c;
	mq_status st;

	if (out == NULL || url == NULL)
		return mqc_fail(MQ_INVALID_ARGUMENT, "mq_client_open: out and url are required");
	if (opts == NULL) {
		mq_client_opts_init(&defaults);
		opts = &defaults;
	}
	if (opts->timeout_ms <= 0 || opts->connect_timeout_ms < 0)
		return mqc_fail(
		    MQ_INVALID_ARGUMENT,
		    "mq_client_open: timeout_ms must be > 0 and connect_timeout_ms >= 0");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");
	c->timeout_ms = opts->timeout_ms;
	pthread_mutex_init(&c->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	c->url = strdup(url);
	c->auth_token = opts->auth_token != NULL ? strdup(opts->auth_token) : NULL;
	c->async = mqc_async_new(c);
	if (c->url == NULL || (opts->auth_token != NULL && c->auth_token == NULL) ||
	    c->async == NULL) {
		mqc_free(c);
		return mqc_fail(MQ_INTERNAL, "out of memory");
	}
	if ((st = mqc_socket_open(c, url, opts)) != MQ_OK) {
		nng_close(c->sock);
		mqc_free(c);
		return st;
	}
	if (opts->connect_timeout_ms > 0 && !mqc_wait_connected(c, opts->connect_timeout_ms)) {
		nng_close(c->sock);
		st = mqc_no_connection(c, "connect");
		if (st == MQ_OK || mq_errmsg()[0] == '\0')
			st = mqc_fail(MQ_UNAVAILABLE, "no connection to broker at %s within %d ms",
			              url, (int)opts->connect_timeout_ms);
		mqc_free(c);
		return st;
	}
	*out = c;
	return mqc_ok();
}

/* mqc_pipes_drain closes the dialer and waits (at most 2 s) for its pipes
 * to be gone before the socket closes. nng 1.5.2's req0 can hang in
 * nng_close when a pipe closes while the socket is being torn down
 * (nanomsg/nng#648, #1543): with the pipes closed first, and no request of
 * ours pending, the socket close has no pipe left to race with. */
static void mqc_pipes_drain(mq_client *c)
{
	struct timespec ts;

	nng_dialer_close(c->dialer);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += 2;
	pthread_mutex_lock(&c->mtx);
	while (c->npipes > 0)
		if (pthread_cond_timedwait(&c->cv, &c->mtx, &ts) != 0)
			break;
	pthread_mutex_unlock(&c->mtx);
}

/* The longest the close's ping barrier waits (see mq_client_close). */
#define MQC_CLOSE_BARRIER_MS 2000

void mq_client_close(mq_client *c)
{
	struct mqc_slot *s;

	if (c == NULL)
		return;
	/* Async calls are cancelled (their callbacks get MQ_CANCELLED) and
	 * waited for first, so no operation of ours is pending on a context
	 * when the socket closes. Closing the socket aborts every context and
	 * pipe; after it returns no callback of ours runs any more. */
	/* nng 1.5.2 can hang in nng_close when a pipe closes while req0 has a
	 * send under way on it (nanomsg/nng#1543, fixed after 1.5.2), and
	 * cancelled calls can leave one: with a busy broker the pipe's send
	 * waits for the broker to read. One ping is a barrier: req0 sends in
	 * order on the pipe, so once its reply is back, every earlier request
	 * has been read by the broker and no send is left under way. At most
	 * MQC_CLOSE_BARRIER_MS (a stopped broker); a gone one fails it at once. */
	if (mqc_async_closing(c->async)) {
		if (c->timeout_ms > MQC_CLOSE_BARRIER_MS)
			c->timeout_ms = MQC_CLOSE_BARRIER_MS;
		(void)mq_ping(c, NULL);
	}
	mqc_pipes_drain(c);
	nng_close(c->sock);
	while ((s = c->pool) != NULL) {
		c->pool = s->next;
		nng_aio_free(s->aio);
		free(s);
	}
	mqc_free(c);
}

static mq_status mqc_slot_get(mq_client *c, struct mqc_slot **out)
{
	struct mqc_slot *s;
	int rv;

	pthread_mutex_lock(&c->mtx);
	s = c->pool;
	if (s != NULL)
		c->pool = s->next;
	pthread_mutex_unlock(&c->mtx);
	if (s != NULL) {
		*out = s;
		return MQ_OK;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return mqc_fail(MQ_INTERNAL, "out of memory");
	if ((rv = nng_aio_alloc(&s->aio, NULL, NULL)) != 0) {
		free(s);
		return mqc_nng_status(c, rv, "allocate aio");
	}
	if ((rv = nng_ctx_open(&s->ctx, c->sock)) != 0) {
		nng_aio_free(s->aio);
		free(s);
		return mqc_nng_status(c, rv, "open context");
	}
	*out = s;
	return MQ_OK;
}

static void mqc_slot_put(mq_client *c, struct mqc_slot *s)
{
	pthread_mutex_lock(&c->mtx);
	s->next = c->pool;
	c->pool = s;
	pthread_mutex_unlock(&c->mtx);
}

mq_status mqc_transact(mq_client *c, size_t len, mqc_encode_fn encode, mqc_decode_fn decode,
                       void *arg, uint32_t extra_ms)
{
	struct mqc_slot *s = NULL;
	nng_msg *msg;
	nng_time deadline, now;
	nng_duration left;
	int64_t total;
	mq_status st;
	int rv;

	if ((rv = nng_msg_alloc(&msg, len)) != 0)
		return mqc_nng_status(c, rv, "allocate request");
	encode(arg, nng_msg_body(msg));
	if ((st = mqc_slot_get(c, &s)) != MQ_OK) {
		nng_msg_free(msg);
		return st;
	}
	/* One deadline for send (which waits for a connection) and receive;
	 * nng_duration is 32 bits, so clamp (about 24 days). */
	total = (int64_t)c->timeout_ms + extra_ms;
	if (total > INT32_MAX)
		total = INT32_MAX;
	deadline = nng_clock() + (nng_time)total;
	nng_aio_set_msg(s->aio, msg);
	nng_aio_set_timeout(s->aio, (nng_duration)total);
	nng_ctx_send(s->ctx, s->aio);
	nng_aio_wait(s->aio);
	if ((rv = nng_aio_result(s->aio)) != 0) {
		/* On a failed send the message is still ours. */
		nng_msg_free(nng_aio_get_msg(s->aio));
		nng_aio_set_msg(s->aio, NULL);
		mqc_slot_put(c, s);
		if (rv == NNG_ETIMEDOUT && (st = mqc_no_connection(c, "send request")) != MQ_OK)
			return st;
		return mqc_nng_status(c, rv, "send request");
	}
	now = nng_clock();
	left = deadline > now ? (nng_duration)(deadline - now) : 1;
	nng_aio_set_timeout(s->aio, left);
	nng_ctx_recv(s->ctx, s->aio);
	nng_aio_wait(s->aio);
	if ((rv = nng_aio_result(s->aio)) != 0) {
		/* The context stays usable: its next send abandons this request
		 * and a late reply to it is dropped by request id. */
		mqc_slot_put(c, s);
		return mqc_nng_status(c, rv, "receive reply");
	}
	msg = nng_aio_get_msg(s->aio);
	nng_aio_set_msg(s->aio, NULL);
	mqc_slot_put(c, s);
	st = decode(arg, nng_msg_body(msg), nng_msg_len(msg));
	nng_msg_free(msg);
	return st;
}
