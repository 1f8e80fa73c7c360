/* SPDX-License-Identifier: MIT */
/* service: a worker service on the consumer runtime. Handlers are
 * registered per message type; a pool of worker threads runs them; leases
 * are extended while they run; SIGTERM or SIGINT stops it gracefully
 * (running handlers finish, prefetched messages go back to the queue).
 *
 *   service [-u URL] [-w WORKERS] QUEUE...
 *
 * Types: "email.send" is done at once; "report.build" fails for good when
 * the payload says "broken" (the message goes dead), else it asks for a
 * retry in 500 ms on its first attempt and is done on the next; any other
 * type goes to the default handler, which is done. Each handled message
 * prints one line "handled TYPE ID OUTCOME" (flushed), for the test.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mq/mq.h>

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static void report(const mq_message *m, const char *outcome)
{
	pthread_mutex_lock(&out_mu);
	printf("handled %s %llu %s\n", mq_message_type(m)[0] ? mq_message_type(m) : "-",
	       (unsigned long long)mq_message_id(m), outcome);
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
}

static mq_outcome send_email(void *arg, const mq_message *m, mq_result *r)
{
	(void)arg;
	(void)r;
	report(m, "done");
	return MQ_OUTCOME_DONE;
}

static mq_outcome build_report(void *arg, const mq_message *m, mq_result *r)
{
	size_t len;
	const char *body = mq_message_payload(m, &len); /* NUL-terminated */

	(void)arg;
	if (strstr(body, "broken") != NULL) {
		snprintf(r->error, sizeof(r->error), "cannot build a report from '%s'", body);
		report(m, "fail");
		return MQ_OUTCOME_FAIL; /* dead at once, with the reason */
	}
	if (mq_message_attempts(m) == 1) {
		r->delay_ms = 500;
		snprintf(r->error, sizeof(r->error), "data not ready yet");
		report(m, "retry");
		return MQ_OUTCOME_RETRY;
	}
	report(m, "done");
	return MQ_OUTCOME_DONE;
}

static mq_outcome other(void *arg, const mq_message *m, mq_result *r)
{
	(void)arg;
	(void)r;
	report(m, "done");
	return MQ_OUTCOME_DONE;
}

static void on_error(void *arg, mq_status st, const char *msg)
{
	(void)arg;
	fprintf(stderr, "service: %s: %s\n", mq_status_name(st), msg);
}

int main(int argc, char **argv)
{
	const char *url = getenv("MQ_URL") ? getenv("MQ_URL") : "tcp://127.0.0.1:7450";
	unsigned workers = 4;
	mq_consumer_opts co;
	mq_consumer_stats cs;
	mq_consumer *cons;
	mq_client *c;
	mq_status st;
	sigset_t sigs;
	int opt, sig;

	while ((opt = getopt(argc, argv, "u:w:")) != -1) {
		if (opt == 'u') {
			url = optarg;
		} else if (opt == 'w') {
			workers = (unsigned)atoi(optarg);
		} else {
			fprintf(stderr, "usage: service [-u URL] [-w WORKERS] QUEUE...\n");
			return 2;
		}
	}
	if (optind >= argc || workers == 0) {
		fprintf(stderr, "usage: service [-u URL] [-w WORKERS] QUEUE...\n");
		return 2;
	}
	/* Block the stop signals in every thread; main waits for them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if ((st = mq_client_open(&c, url, NULL)) != MQ_OK) {
		fprintf(stderr, "service: %s: %s\n", mq_status_name(st), mq_errmsg());
		return 1;
	}
	mq_consumer_opts_init(&co);
	co.queues = (const char *const *)(argv + optind);
	co.n_queues = (size_t)(argc - optind);
	co.workers = workers;
	co.on_error = on_error;
	if ((st = mq_consumer_open(&cons, c, &co)) != MQ_OK ||
	    (st = mq_consumer_handle(cons, "email.send", send_email, NULL)) != MQ_OK ||
	    (st = mq_consumer_handle(cons, "report.build", build_report, NULL)) != MQ_OK ||
	    (st = mq_consumer_handle_default(cons, other, NULL)) != MQ_OK ||
	    (st = mq_consumer_start(cons)) != MQ_OK) {
		fprintf(stderr, "service: consumer: %s: %s\n", mq_status_name(st), mq_errmsg());
		mq_client_close(c);
		return 1;
	}
	fprintf(stderr, "service: consuming with %u workers\n", workers);
	sigwait(&sigs, &sig);
	fprintf(stderr, "service: %s, stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	st = mq_consumer_stop(cons, 10000); /* running handlers get up to 10 s */
	mq_consumer_stats_get(cons, &cs);
	mq_consumer_close(cons);
	mq_client_close(c);
	fprintf(stderr,
	        "service: stopped (%s): received %llu, acked %llu, retried %llu, failed %llu\n",
	        mq_status_name(st), (unsigned long long)cs.received, (unsigned long long)cs.acked,
	        (unsigned long long)cs.retried, (unsigned long long)cs.failed);
	return st == MQ_OK ? 0 : 1;
}
