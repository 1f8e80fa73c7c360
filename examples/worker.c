/* SPDX-License-Identifier: MIT */
/* worker: a consumer loop. Long-polls a queue, handles each message and
 * acks it; a message whose payload contains "fail" simulates a handler
 * failure and is nacked, to be retried after a second (until the queue's
 * max attempts send it to the dead state).
 *
 *   worker [-u URL] [-n COUNT] QUEUE     (COUNT: stop after COUNT messages)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mq/mq.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* handle is the application's work; false means it failed. */
static bool handle(const mq_message *m)
{
	size_t len;
	const char *body = mq_message_payload(m, &len); /* NUL-terminated */

	printf("message %llu (attempt %u): %s\n", (unsigned long long)mq_message_id(m),
	       mq_message_attempts(m), body);
	return strstr(body, "fail") == NULL;
}

int main(int argc, char **argv)
{
	const char *url = getenv("MQ_URL") ? getenv("MQ_URL") : "tcp://127.0.0.1:7450";
	long count = -1;
	mq_client *c;
	mq_status st;
	int opt;

	while ((opt = getopt(argc, argv, "u:n:")) != -1) {
		if (opt == 'u') {
			url = optarg;
		} else if (opt == 'n') {
			count = strtol(optarg, NULL, 10);
		} else {
			fprintf(stderr, "usage: worker [-u URL] [-n COUNT] QUEUE\n");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: worker [-u URL] [-n COUNT] QUEUE\n");
		return 2;
	}
	const char *queue = argv[optind];

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if ((st = mq_client_open(&c, url, NULL)) != MQ_OK) {
		fprintf(stderr, "worker: %s: %s\n", mq_status_name(st), mq_errmsg());
		return 1;
	}
	mq_pull_opts popts = {.wait_ms = 5000}; /* long poll: wait for work */
	while (!stop && count != 0) {
		mq_message *msgs[16];
		size_t n, max = count > 0 && count < 16 ? (size_t)count : 16;

		st = mq_pull(c, queue, &popts, msgs, max, &n);
		if (st == MQ_UNAVAILABLE || st == MQ_DEADLINE_EXCEEDED) {
			fprintf(stderr, "worker: %s, retrying\n", mq_errmsg());
			sleep(1); /* the client reconnects by itself */
			continue;
		}
		if (st != MQ_OK) {
			fprintf(stderr, "worker: pull: %s: %s\n", mq_status_name(st), mq_errmsg());
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (handle(msgs[i]))
				st = mq_ack(c, msgs[i]);
			else
				st = mq_nack(c, msgs[i], 1000, "handler failed");
			/* FAILED_PRECONDITION: the lease ran out and the message
			 * went back to the queue; it will be delivered again. */
			if (st != MQ_OK)
				fprintf(stderr, "worker: ack/nack: %s: %s\n", mq_status_name(st),
				        mq_errmsg());
			mq_message_free(msgs[i]);
			if (count > 0)
				count--;
		}
	}
	mq_client_close(c);
	return 0;
}
