/* SPDX-License-Identifier: MIT */
/* producer: push messages to a queue, one per argument, or one per line of
 * stdin when no message is given.
 *
 *   producer [-u URL] QUEUE [MESSAGE...]
 *   seq 10 | producer jobs
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mq/mq.h>

static int push_one(mq_client *c, const char *queue, const char *text)
{
	uint64_t id;
	mq_status st = mq_push(c, queue, text, strlen(text), NULL, &id, NULL);

	if (st != MQ_OK) {
		fprintf(stderr, "producer: push: %s: %s\n", mq_status_name(st), mq_errmsg());
		return -1;
	}
	printf("pushed %llu\n", (unsigned long long)id);
	return 0;
}

int main(int argc, char **argv)
{
	const char *url = getenv("MQ_URL") ? getenv("MQ_URL") : "tcp://127.0.0.1:7450";
	mq_client *c;
	mq_status st;
	int opt, failed = 0;

	while ((opt = getopt(argc, argv, "u:")) != -1) {
		if (opt != 'u') {
			fprintf(stderr, "usage: producer [-u URL] QUEUE [MESSAGE...]\n");
			return 2;
		}
		url = optarg;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: producer [-u URL] QUEUE [MESSAGE...]\n");
		return 2;
	}
	const char *queue = argv[optind++];

	if ((st = mq_client_open(&c, url, NULL)) != MQ_OK) {
		fprintf(stderr, "producer: %s: %s\n", mq_status_name(st), mq_errmsg());
		return 1;
	}
	if (optind < argc) {
		for (; optind < argc; optind++)
			failed |= push_one(c, queue, argv[optind]);
	} else {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;

		while ((n = getline(&line, &cap, stdin)) > 0) {
			if (line[n - 1] == '\n')
				line[n - 1] = '\0';
			failed |= push_one(c, queue, line);
		}
		free(line);
	}
	mq_client_close(c);
	return failed ? 1 : 0;
}
