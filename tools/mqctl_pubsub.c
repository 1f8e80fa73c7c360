/* SPDX-License-Identifier: MIT */
/* mqctl_pubsub.c: the schedule, topic and sub commands of mqctl. Included
 * by mqctl.c just before its command table (it uses mqctl.c's helpers and
 * push options); not compiled on its own. MQCTL_PUBSUB_CMDS are the rows
 * of the command table. */

enum {
	OPT_CRON = 1000,
	OPT_TZ,
	OPT_EVERY_MS,
	OPT_PAUSED,
};

/* ---- Schedules ------------------------------------------------------------ */

struct sched_args {
	struct push_args push;
	mq_schedule_spec spec;
	bool if_not_exists;
};

static int sched_opt(const struct cmd *cmd, int opt, void *arg)
{
	struct sched_args *a = arg;

	switch (opt) {
	case OPT_CRON:
		a->spec.cron = optarg;
		return -1;
	case OPT_TZ:
		a->spec.time_zone = optarg;
		return -1;
	case OPT_EVERY_MS:
		if (!parse_u64(optarg, UINT64_MAX, &a->spec.interval_ms) ||
		    a->spec.interval_ms == 0)
			return usage_error(cmd, "--every-ms: want a positive number, not '%s'",
			                   optarg);
		return -1;
	case OPT_PAUSED:
		a->spec.paused = true;
		return -1;
	case OPT_IF_NOT_EXISTS:
		a->if_not_exists = true;
		return -1;
	}
	return push_opt(cmd, opt, &a->push);
}

static json_t *schedule_json(const mq_schedule_info *s)
{
	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, "
	    "s:{s:s, s:s, s:i, s:o, s:o, s:o}}",
	    "name", s->name, "queue", s->queue, "cron", s->cron, "time_zone", s->time_zone,
	    "interval_ms", json_u64(s->interval_ms), "paused", s->paused, "created_ms",
	    json_u64(s->created_ms), "next_fire_ms", json_u64(s->next_fire_ms), "last_slot_ms",
	    json_u64(s->last_slot_ms), "last_fired_ms", json_u64(s->last_fired_ms), "fired_total",
	    json_u64(s->fired_total), "missed_total", json_u64(s->missed_total), "last_message_id",
	    json_u64(s->last_message_id), "last_error", s->last_error, "message", "type", s->type,
	    "dedup_key", s->dedup_key, "priority", (int)s->priority, "delay_ms",
	    json_u64(s->delay_ms), "payload_size", json_u64(s->payload_len), "headers",
	    json_u64(s->n_headers));
}

/* fmt_when writes a schedule's spec: "cron EXPR (ZONE)" or "every N". */
static const char *fmt_when(char *buf, size_t len, const mq_schedule_info *s)
{
	char d[16];

	if (s->cron[0] != '\0')
		snprintf(buf, len, "%s (%s)", s->cron, s->time_zone[0] ? s->time_zone : "UTC");
	else
		snprintf(buf, len, "every %s", fmt_duration(d, sizeof(d), s->interval_ms));
	return buf;
}

static void schedule_print(const mq_schedule_info *s)
{
	char b[64], w[MQ_CRON_MAX + MQ_TZ_MAX + 16];

	printf("name:          %s\n", s->name);
	printf("queue:         %s\n", s->queue);
	printf("when:          %s\n", fmt_when(w, sizeof(w), s));
	printf("state:         %s\n", s->paused ? "paused" : "active");
	if (s->next_fire_ms != 0)
		printf("next fire:     in %s (%" PRIu64 ")\n",
		       fmt_until(b, sizeof(b), s->next_fire_ms), s->next_fire_ms);
	else
		printf("next fire:     none\n");
	if (s->last_slot_ms != 0)
		printf("last slot:     %s ago (%" PRIu64 "), message %" PRIu64 "\n",
		       fmt_age(b, sizeof(b), s->last_slot_ms), s->last_slot_ms, s->last_message_id);
	else
		printf("last slot:     never fired\n");
	printf("fired:         %" PRIu64 "\n", s->fired_total);
	printf("missed:        %" PRIu64 "\n", s->missed_total);
	if (s->last_error[0] != '\0')
		printf("last error:    %s\n", s->last_error);
	printf("message:       type \"%s\", %zu bytes, %zu headers, priority %d%s%s\n", s->type,
	       s->payload_len, s->n_headers, (int)s->priority,
	       s->dedup_key[0] ? ", dedup key " : "", s->dedup_key);
	printf("created:       %s ago\n", fmt_age(b, sizeof(b), s->created_ms));
}

static int cmd_schedule_create(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"cron", required_argument, NULL, OPT_CRON},
	    {"tz", required_argument, NULL, OPT_TZ},
	    {"every-ms", required_argument, NULL, OPT_EVERY_MS},
	    {"paused", no_argument, NULL, OPT_PAUSED},
	    {"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
	    {"file", required_argument, NULL, OPT_FILE},
	    {"dedup-key", required_argument, NULL, OPT_DEDUP_KEY},
	    {"dedup-mode", required_argument, NULL, OPT_DEDUP_MODE},
	    {"delay-ms", required_argument, NULL, OPT_DELAY_MS},
	    {"priority", required_argument, NULL, OPT_PRIORITY},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"header", required_argument, NULL, OPT_HEADER},
	    COMMON_OPTS,
	};
	struct sched_args a = {0};
	mq_schedule_info si;
	char **pos, *data = NULL;
	size_t len = 0;
	bool created = false, owned = false;
	int npos, rv;
	mq_status st;

	a.push.opts.headers = a.push.headers;
	if ((rv = parse_args(cmd, argc, argv, lo, sched_opt, &a, 2, 3, &pos, &npos)) != -1)
		return rv;
	if ((a.spec.cron == NULL) == (a.spec.interval_ms == 0)) {
		free(pos);
		return usage_error(cmd, "give --cron EXPR or --every-ms N (one of them)");
	}
	if (npos == 3 && a.push.file != NULL) {
		free(pos);
		return usage_error(cmd, "give DATA or --file, not both");
	}
	if (npos == 3) {
		data = pos[2];
		len = strlen(data);
	} else if (a.push.file != NULL) {
		FILE *f = strcmp(a.push.file, "-") == 0 ? stdin : fopen(a.push.file, "rb");

		if (f == NULL || !read_all(f, &data, &len)) {
			fprintf(stderr, "mqctl: INVALID_ARGUMENT: %s: %s\n", a.push.file,
			        strerror(errno));
			if (f != NULL && f != stdin)
				fclose(f);
			free(pos);
			return EXIT_ERROR;
		}
		if (f != stdin)
			fclose(f);
		owned = true;
	}
	if ((rv = check_name(pos[1])) == -1 && (rv = connect_broker()) == EXIT_OK) {
		st = mq_schedule_create(ctl.client, pos[0], pos[1], &a.spec, data, len,
		                        &a.push.opts, a.if_not_exists, &si, &created);
		if (st != MQ_OK) {
			rv = fail(st);
		} else if (ctl.json) {
			json_t *o = schedule_json(&si);

			json_object_set_new(o, "created", json_boolean(created));
			rv = json_print(o);
		} else {
			char w[MQ_CRON_MAX + MQ_TZ_MAX + 16];

			printf("%s schedule %s: %s into %s\n",
			       created ? "created" : "kept existing", si.name,
			       fmt_when(w, sizeof(w), &si), si.queue);
		}
	}
	if (owned)
		free(data);
	free(pos);
	return rv;
}

static int cmd_schedule_list(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	struct table t = {
	    .ncols = 8,
	    .head = {"NAME", "QUEUE", "STATE", "NEXT", "FIRED", "MISSED", "LAST", "WHEN"},
	    .right = {false, false, false, true, true, true, true, false}};
	mq_schedule_info *ss;
	char **pos;
	int npos, rv;
	size_t n;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 0, 0, &pos, &npos)) != -1)
		return rv;
	free(pos);
	if ((rv = connect_broker()) != EXIT_OK)
		return rv;
	if ((st = mq_schedule_list(ctl.client, &ss, &n)) != MQ_OK)
		return fail(st);
	if (ctl.json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, schedule_json(&ss[i]));
		mq_schedule_list_free(ss);
		return json_print(json_pack("{s:o}", "schedules", arr));
	}
	for (size_t i = 0; i < n; i++) {
		char next[24], fired[24], missed[24], last[24], w[MQ_CRON_MAX + MQ_TZ_MAX + 16];

		if (ss[i].next_fire_ms)
			fmt_until(next, sizeof(next), ss[i].next_fire_ms);
		else
			snprintf(next, sizeof(next), "-");
		if (ss[i].last_slot_ms)
			fmt_age(last, sizeof(last), ss[i].last_slot_ms);
		else
			snprintf(last, sizeof(last), "never");
		snprintf(fired, sizeof(fired), "%" PRIu64, ss[i].fired_total);
		snprintf(missed, sizeof(missed), "%" PRIu64, ss[i].missed_total);
		table_row(&t, ss[i].name, ss[i].queue, ss[i].paused ? "paused" : "active", next,
		          fired, missed, last, fmt_when(w, sizeof(w), &ss[i]));
	}
	mq_schedule_list_free(ss);
	if (n == 0)
		printf("no schedules\n");
	else
		table_print(&t);
	return EXIT_OK;
}

/* sched_named runs get, pause or resume on schedule NAME. */
static int sched_named(const struct cmd *cmd, int argc, char **argv,
                       mq_status (*fn)(mq_client *, const char *, mq_schedule_info *),
                       const char *done)
{
	static const struct option lo[] = {COMMON_OPTS};
	mq_schedule_info si;
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 1, 1, &pos, &npos)) != -1)
		return rv;
	if ((rv = connect_broker()) == EXIT_OK) {
		if ((st = fn(ctl.client, pos[0], &si)) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(schedule_json(&si));
		else if (done != NULL)
			printf("%s schedule %s\n", done, si.name);
		else
			schedule_print(&si);
	}
	free(pos);
	return rv;
}

static int cmd_schedule_get(const struct cmd *cmd, int argc, char **argv)
{
	return sched_named(cmd, argc, argv, mq_schedule_get, NULL);
}

static int cmd_schedule_pause(const struct cmd *cmd, int argc, char **argv)
{
	return sched_named(cmd, argc, argv, mq_schedule_pause, "paused");
}

static int cmd_schedule_resume(const struct cmd *cmd, int argc, char **argv)
{
	return sched_named(cmd, argc, argv, mq_schedule_resume, "resumed");
}

static int cmd_schedule_delete(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 1, 1, &pos, &npos)) != -1)
		return rv;
	if ((rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_schedule_delete(ctl.client, pos[0])) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:b}", "name", pos[0], "deleted", 1));
		else
			printf("deleted schedule %s\n", pos[0]);
	}
	free(pos);
	return rv;
}

/* ---- Topics -------------------------------------------------------------------- */

static json_t *topic_json(const mq_topic_info *t)
{
	json_t *subs = json_array();

	for (size_t i = 0; i < t->n_subscriptions; i++) {
		const mq_subscription_info *s = &t->subscriptions[i];

		json_array_append_new(
		    subs,
		    json_pack("{s:s, s:{s:i, s:i, s:o, s:o}, s:o, s:o, s:o, s:o, s:o}", "name",
		              s->name, "config", "lease_ms", (int)s->config.lease_ms,
		              "max_attempts", (int)s->config.max_attempts, "retry_base_ms",
		              json_u64(s->config.retry_base_ms), "retry_max_ms",
		              json_u64(s->config.retry_max_ms), "ready", json_u64(s->ready),
		              "delayed", json_u64(s->delayed), "in_flight", json_u64(s->in_flight),
		              "dead", json_u64(s->dead), "created_ms", json_u64(s->created_ms)));
	}
	return json_pack("{s:s, s:o, s:o, s:o, s:o}", "name", t->name, "created_ms",
	                 json_u64(t->created_ms), "published_total", json_u64(t->published_total),
	                 "copies_total", json_u64(t->copies_total), "subscriptions", subs);
}

static int cmd_topic_create(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
	    COMMON_OPTS,
	};
	struct create_args a = {0};
	char **pos;
	int npos, rv;
	bool created = false;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, create_opt, &a, 1, 1, &pos, &npos)) != -1)
		return rv;
	if ((rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_topic_create(ctl.client, pos[0], a.if_not_exists, &created)) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv =
			    json_print(json_pack("{s:s, s:b}", "name", pos[0], "created", created));
		else
			printf("%s topic %s\n", created ? "created" : "kept existing", pos[0]);
	}
	free(pos);
	return rv;
}

static int cmd_topic_list(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	struct table t = {
	    .ncols = 7,
	    .head = {"TOPIC", "SUBSCRIPTION", "READY", "INFLIGHT", "DEAD", "PUBLISHED", "AGE"},
	    .right = {false, false, true, true, true, true, true}};
	mq_topic_info *ts;
	char **pos;
	int npos, rv;
	size_t n;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 0, 0, &pos, &npos)) != -1)
		return rv;
	free(pos);
	if ((rv = connect_broker()) != EXIT_OK)
		return rv;
	if ((st = mq_topic_list(ctl.client, &ts, &n)) != MQ_OK)
		return fail(st);
	if (ctl.json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, topic_json(&ts[i]));
		mq_topic_list_free(ts, n);
		return json_print(json_pack("{s:o}", "topics", arr));
	}
	for (size_t i = 0; i < n; i++) {
		char pub[24], age[16];

		snprintf(pub, sizeof(pub), "%" PRIu64, ts[i].published_total);
		table_row(&t, ts[i].name, ts[i].n_subscriptions ? "" : "(none)", "", "", "", pub,
		          fmt_age(age, sizeof(age), ts[i].created_ms));
		for (size_t k = 0; k < ts[i].n_subscriptions; k++) {
			const mq_subscription_info *s = &ts[i].subscriptions[k];
			char r[24], f[24], d[24];

			snprintf(r, sizeof(r), "%" PRIu64, s->ready);
			snprintf(f, sizeof(f), "%" PRIu64, s->in_flight);
			snprintf(d, sizeof(d), "%" PRIu64, s->dead);
			table_row(&t, "", s->name, r, f, d, "",
			          fmt_age(age, sizeof(age), s->created_ms));
		}
	}
	mq_topic_list_free(ts, n);
	if (n == 0)
		printf("no topics\n");
	else
		table_print(&t);
	return EXIT_OK;
}

static int cmd_topic_get(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	mq_topic_info ti;
	char **pos, b[32];
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 1, 1, &pos, &npos)) != -1)
		return rv;
	if ((rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_topic_get(ctl.client, pos[0], &ti)) != MQ_OK) {
			rv = fail(st);
		} else if (ctl.json) {
			rv = json_print(topic_json(&ti));
			mq_topic_info_clear(&ti);
		} else {
			printf("name:          %s\n", ti.name);
			printf("created:       %s ago\n", fmt_age(b, sizeof(b), ti.created_ms));
			printf("published:     %" PRIu64 " messages, %" PRIu64 " copies\n",
			       ti.published_total, ti.copies_total);
			printf("subscriptions: %zu\n", ti.n_subscriptions);
			for (size_t k = 0; k < ti.n_subscriptions; k++) {
				const mq_subscription_info *s = &ti.subscriptions[k];

				printf("  %s: ready %" PRIu64 ", delayed %" PRIu64
				       ", in flight %" PRIu64 ", dead %" PRIu64 "\n",
				       s->name, s->ready, s->delayed, s->in_flight, s->dead);
			}
			mq_topic_info_clear(&ti);
		}
	}
	free(pos);
	return rv;
}

static int cmd_topic_delete(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	char **pos;
	int npos, rv;
	uint32_t detached = 0;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 1, 1, &pos, &npos)) != -1)
		return rv;
	if ((rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_topic_delete(ctl.client, pos[0], &detached)) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:b, s:i}", "name", pos[0], "deleted", 1,
			                          "detached", (int)detached));
		else
			printf("deleted topic %s (%u subscription queue%s kept as plain queues)\n",
			       pos[0], detached, detached == 1 ? "" : "s");
	}
	free(pos);
	return rv;
}

static int cmd_topic_publish(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"file", required_argument, NULL, OPT_FILE},
	    {"dedup-key", required_argument, NULL, OPT_DEDUP_KEY},
	    {"dedup-mode", required_argument, NULL, OPT_DEDUP_MODE},
	    {"delay-ms", required_argument, NULL, OPT_DELAY_MS},
	    {"priority", required_argument, NULL, OPT_PRIORITY},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"header", required_argument, NULL, OPT_HEADER},
	    COMMON_OPTS,
	};
	struct push_args a = {0};
	char **pos, *data = NULL;
	size_t len = 0, copies = 0;
	bool owned = false;
	int npos, rv;
	mq_status st;

	a.opts.headers = a.headers;
	if ((rv = parse_args(cmd, argc, argv, lo, push_opt, &a, 1, 2, &pos, &npos)) != -1)
		return rv;
	if (npos == 2 && a.file != NULL) {
		free(pos);
		return usage_error(cmd, "give DATA or --file, not both");
	}
	if (npos == 2) {
		data = pos[1];
		len = strlen(data);
	} else {
		FILE *f = a.file == NULL || strcmp(a.file, "-") == 0 ? stdin : fopen(a.file, "rb");

		if (f == NULL || !read_all(f, &data, &len)) {
			fprintf(stderr, "mqctl: INVALID_ARGUMENT: %s: %s\n",
			        a.file != NULL ? a.file : "stdin", strerror(errno));
			if (f != NULL && f != stdin)
				fclose(f);
			free(pos);
			return EXIT_ERROR;
		}
		if (f != stdin)
			fclose(f);
		owned = true;
	}
	if ((rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_publish(ctl.client, pos[0], data, len, &a.opts, &copies)) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(
			    json_pack("{s:s, s:o}", "topic", pos[0], "copies", json_u64(copies)));
		else
			printf("published to %s: %zu cop%s (%zu bytes)\n", pos[0], copies,
			       copies == 1 ? "y" : "ies", len);
	}
	if (owned)
		free(data);
	free(pos);
	return rv;
}

static int cmd_sub_create(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {
	    QUEUE_CONFIG_OPTS,
	    {"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
	    COMMON_OPTS,
	};
	struct create_args a = {0};
	char **pos;
	int npos, rv;
	bool created = false;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, create_opt, &a, 2, 2, &pos, &npos)) != -1)
		return rv;
	if ((rv = check_name(pos[1])) == -1 && (rv = connect_broker()) == EXIT_OK) {
		st = mq_topic_sub_create(ctl.client, pos[0], pos[1], &a.cfg, a.if_not_exists,
		                         &created);
		if (st != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:s, s:b}", "topic", pos[0], "name",
			                          pos[1], "created", created));
		else
			printf("%s subscription %s of topic %s (pull it as queue %s)\n",
			       created ? "created" : "kept existing", pos[1], pos[0], pos[1]);
	}
	free(pos);
	return rv;
}

static int cmd_sub_delete(const struct cmd *cmd, int argc, char **argv)
{
	static const struct option lo[] = {COMMON_OPTS};
	char **pos;
	int npos, rv;
	mq_status st;

	if ((rv = parse_args(cmd, argc, argv, lo, NULL, NULL, 2, 2, &pos, &npos)) != -1)
		return rv;
	if ((rv = connect_broker()) == EXIT_OK) {
		if ((st = mq_topic_sub_delete(ctl.client, pos[0], pos[1])) != MQ_OK)
			rv = fail(st);
		else if (ctl.json)
			rv = json_print(json_pack("{s:s, s:s, s:b}", "topic", pos[0], "name",
			                          pos[1], "deleted", 1));
		else
			printf("deleted subscription %s of topic %s and its queue\n", pos[1],
			       pos[0]);
	}
	free(pos);
	return rv;
}

#define PUSH_OPTS_HELP                                                                             \
	"  --file F          read the payload from file F ('-' = stdin)\n"                         \
	"  --type T          message type\n"                                                       \
	"  --priority N      priority (default 0)\n"                                               \
	"  --header K=V      add a header; repeat for more\n"                                      \
	"  --dedup-key K     dedup key\n"                                                          \
	"  --dedup-mode M    ignore (default) or replace\n"                                        \
	"  --delay-ms N      each message waits N ms before it is ready\n"

#define MQCTL_PUBSUB_CMDS                                                                          \
	{"schedule create",                                                                        \
	 "NAME QUEUE (--cron EXPR [--tz ZONE] | --every-ms N) [DATA] [--file F] [--type T] "       \
	 "[--priority N] [--header K=V]... [--dedup-key K] [--paused] [--if-not-exists]",          \
	 "Create a recurring schedule that pushes a message into QUEUE.",                          \
	 "Options:\n"                                                                              \
	 "  --cron EXPR       5-field cron: MIN HOUR DOM MON DOW (e.g. '0 9 * * 1-5',\n"           \
	 "                    '*/15 * * * *', JAN-DEC, SUN-SAT, @daily, @hourly)\n"                \
	 "  --tz ZONE         IANA time zone of --cron (default UTC), e.g. Europe/Paris\n"         \
	 "  --every-ms N      fire every N ms from now instead (at least 10)\n"                    \
	 "  --paused          create it paused\n"                                                  \
	 "  --if-not-exists   succeed (keeping the existing one) when it exists\n" PUSH_OPTS_HELP  \
	 "The payload is DATA, else --file, else empty. \"{slot}\" in the dedup key\n"             \
	 "becomes the slot's time (unix ms). Each message carries the headers\n"                   \
	 "mq-schedule and mq-schedule-slot.\n",                                                    \
	 cmd_schedule_create},                                                                     \
	    {"schedule list", "", "List schedules: state, next fire, fired and missed counts.",    \
	     "", cmd_schedule_list},                                                               \
	    {"schedule get", "NAME", "Show one schedule.", "", cmd_schedule_get},                  \
	    {"schedule pause", "NAME", "Stop a schedule firing (idempotent).", "",                 \
	     cmd_schedule_pause},                                                                  \
	    {"schedule resume", "NAME", "Resume a paused schedule from its next slot after now.",  \
	     "", cmd_schedule_resume},                                                             \
	    {"schedule delete", "NAME", "Delete a schedule (messages it pushed stay).", "",        \
	     cmd_schedule_delete},                                                                 \
	    {"topic create", "NAME [--if-not-exists]", "Create a topic (publish/subscribe).",      \
	     "Options:\n  --if-not-exists   succeed when it exists\n", cmd_topic_create},          \
	    {"topic list", "", "List topics with their subscriptions and depths.", "",             \
	     cmd_topic_list},                                                                      \
	    {"topic get", "NAME", "Show a topic and its subscriptions' counts.", "",               \
	     cmd_topic_get},                                                                       \
	    {"topic delete", "NAME",                                                               \
	     "Delete a topic; its subscription queues stay as plain queues.", "",                  \
	     cmd_topic_delete},                                                                    \
	    {"topic publish", "TOPIC [DATA] [--file F] [--type T] [--header K=V]... ...",          \
	     "Publish one message: a copy goes to every subscription.",                            \
	     "Options:\n" PUSH_OPTS_HELP "The payload is DATA, else --file, else stdin.\n",        \
	     cmd_topic_publish},                                                                   \
	    {"sub create", "TOPIC NAME [queue create's options] [--if-not-exists]",                \
	     "Subscribe: create queue NAME, which gets a copy of each later publish.",             \
	     "Options: as 'queue create'; consumers pull and ack NAME like any queue.\n",          \
	     cmd_sub_create},                                                                      \
	{                                                                                          \
		"sub delete", "TOPIC NAME", "Delete a subscription and its queue.", "",            \
		    cmd_sub_delete                                                                 \
	}
