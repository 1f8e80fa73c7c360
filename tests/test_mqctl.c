/* SPDX-License-Identifier: MIT */
/* test_mqctl.c: the built mqctl ($MQCTL) against the real mqd ($MQD, via
 * mqtest): every command's human and --json output (JSON parsed with
 * jansson), push from DATA, stdin and --file, and the exit codes (0 ok,
 * 1 error, 2 usage, 3 unreachable). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mqtest.h"

struct fixture {
	mqtest_broker broker;
	const char *mqctl;
	char out[1 << 16];
};

static struct fixture *fx;

static int group_setup(void **state)
{
	static struct fixture f;

	f.mqctl = getenv("MQCTL");
	if (f.mqctl == NULL) {
		fprintf(stderr, "MQCTL is not set (run through meson test)\n");
		return -1;
	}
	mqtest_broker_start(&f.broker, NULL);
	fx = &f;
	*state = &f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;

	mqtest_broker_cleanup(&f->broker);
	return 0;
}

/* ctl runs `mqctl --url <broker> ARGS` (ARGS is shell text; "2>&1" etc.
 * may be appended) and returns its exit status; stdout is in fx->out. */
static int ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int ctl(const char *fmt, ...)
{
	char args[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return mqtest_run(fx->out, sizeof(fx->out), "'%s' --url '%s' %s", fx->mqctl, fx->broker.url,
	                  args);
}

/* ctl_json runs a command with --json, checks it exits 0 and parses stdout. */
static json_t *ctl_json(const char *args)
{
	json_error_t err;
	json_t *doc;
	int rc = ctl("--json %s", args);

	if (rc != 0)
		fail_msg("mqctl --json %s: exit %d, out: %s", args, rc, fx->out);
	doc = json_loads(fx->out, 0, &err);
	if (doc == NULL)
		fail_msg("mqctl --json %s: bad JSON (%s): %s", args, err.text, fx->out);
	return doc;
}

static json_int_t jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		fail_msg("field %s is not an integer", key);
	return json_integer_value(v);
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		fail_msg("field %s is not a string", key);
	return json_string_value(v);
}

static void assert_out_has(const char *needle)
{
	if (strstr(fx->out, needle) == NULL)
		fail_msg("output lacks \"%s\":\n%s", needle, fx->out);
}

static void test_mqctl_ping_info(void **state)
{
	json_t *doc;

	(void)state;
	assert_int_equal(ctl("ping"), 0);
	assert_out_has("pong from ");
	doc = ctl_json("ping");
	assert_true(jint(doc, "now_ms") > 1600000000000ll);
	assert_true(json_is_real(json_object_get(doc, "rtt_ms")));
	json_decref(doc);

	assert_int_equal(ctl("info"), 0);
	assert_out_has("storage engine:");
	assert_out_has("protocol version:     1");
	doc = ctl_json("info");
	assert_int_equal(jint(doc, "protocol_version"), 1);
	assert_true(strlen(jstr(doc, "version")) > 0);
	assert_true(strlen(jstr(doc, "storage_engine")) > 0);
	assert_true(jint(doc, "max_payload_bytes") > 0);
	assert_true(json_is_boolean(json_object_get(doc, "auto_create_queues")));
	json_decref(doc);
}

static void test_mqctl_queue_commands(void **state)
{
	json_t *doc, *qs, *q;
	size_t i;
	bool found = false;

	(void)state;
	assert_int_equal(ctl("queue create work --lease-ms 30000 --max-attempts 4"), 0);
	assert_out_has("created queue work");
	/* Exists: error 1, with the status name on stderr. */
	assert_int_equal(ctl("queue create work 2>&1"), 1);
	assert_out_has("mqctl: ALREADY_EXISTS: ");
	assert_int_equal(ctl("queue create work --if-not-exists"), 0);
	doc = ctl_json("queue create work --if-not-exists");
	assert_false(json_is_true(json_object_get(doc, "created")));
	assert_string_equal(jstr(doc, "name"), "work");
	json_decref(doc);
	doc = ctl_json("queue create other");
	assert_true(json_is_true(json_object_get(doc, "created")));
	json_decref(doc);

	assert_int_equal(ctl("push work hello"), 0);
	assert_int_equal(ctl("queue list"), 0);
	assert_out_has("NAME");
	assert_out_has("READY");
	assert_out_has("INFLIGHT");
	assert_out_has("\nother ");
	assert_out_has("\nwork ");

	doc = ctl_json("queue list");
	qs = json_object_get(doc, "queues");
	assert_true(json_is_array(qs));
	json_array_foreach(qs, i, q)
	{
		if (strcmp(jstr(q, "name"), "work") != 0)
			continue;
		found = true;
		assert_int_equal(jint(json_object_get(q, "config"), "lease_ms"), 30000);
		assert_int_equal(jint(json_object_get(q, "config"), "max_attempts"), 4);
		assert_int_equal(jint(json_object_get(q, "stats"), "ready"), 1);
		assert_int_equal(jint(json_object_get(q, "stats"), "pushed_total"), 1);
		assert_true(jint(q, "created_ms") > 0);
	}
	assert_true(found);
	json_decref(doc);

	assert_int_equal(ctl("queue stats work"), 0);
	assert_out_has("ready:         1");
	assert_out_has("max attempts:  4");
	doc = ctl_json("queue stats work");
	assert_string_equal(jstr(doc, "name"), "work");
	assert_int_equal(jint(json_object_get(doc, "stats"), "ready"), 1);
	assert_int_equal(jint(json_object_get(doc, "stats"), "in_flight"), 0);
	json_decref(doc);

	assert_int_equal(ctl("push work later --delay-ms 60000"), 0);
	assert_int_equal(ctl("queue purge work --state delayed"), 0);
	assert_out_has("purged 1 message from work");
	doc = ctl_json("queue purge work --state ready --state dead");
	assert_int_equal(jint(doc, "purged"), 1);
	json_decref(doc);
	assert_int_equal(ctl("queue purge work --state bogus"), 2);

	assert_int_equal(ctl("queue delete other"), 0);
	assert_out_has("deleted queue other");
	doc = ctl_json("queue delete work");
	assert_true(json_is_true(json_object_get(doc, "deleted")));
	json_decref(doc);
	assert_int_equal(ctl("queue stats work 2>&1"), 1);
	assert_out_has("mqctl: NOT_FOUND: ");
	assert_int_equal(ctl("--json queue delete work"), 1);
	assert_string_equal(fx->out, ""); /* errors never go to stdout */
}

static void test_mqctl_push_pull_ack(void **state)
{
	json_t *doc, *msgs, *m, *hs;
	char file[600], cmd[256];
	json_int_t id;
	FILE *f;

	(void)state;
	assert_int_equal(ctl("queue create jobs"), 0);
	assert_int_equal(ctl("push jobs 'from args' --priority 5 --type greet "
	                     "--header trace=t1 --header lang=en --dedup-key d1"),
	                 0);
	assert_out_has("pushed ");
	assert_int_equal(ctl("push jobs 'from args' --dedup-key d1"), 0);
	assert_out_has("duplicate of ");
	doc = ctl_json("push jobs --dedup-key d1 --dedup-mode replace replaced --priority 5 "
	               "--type greet --header trace=t1 --header lang=en");
	assert_true(json_is_true(json_object_get(doc, "duplicate")));
	json_decref(doc);
	/* stdin, with a newline and a tab kept as they are. */
	assert_int_equal(ctl("push jobs < /dev/null; printf 'line1\\n\\tline2' | '%s' --url '%s' "
	                     "push jobs",
	                     fx->mqctl, fx->broker.url),
	                 0);
	snprintf(file, sizeof(file), "%s/payload.bin", fx->broker.dir);
	f = fopen(file, "wb");
	assert_non_null(f);
	fwrite("\x00\xff\xfe binary", 1, 10, f);
	fclose(f);
	assert_int_equal(ctl("push jobs --file '%s'", file), 0);
	assert_int_equal(ctl("push jobs x --file '%s'", file), 2);

	doc = ctl_json("pull jobs --max 10");
	msgs = json_object_get(doc, "messages");
	assert_int_equal(json_array_size(msgs), 4);
	m = json_array_get(msgs, 0); /* priority 5 first */
	assert_string_equal(jstr(m, "payload"), "replaced");
	assert_string_equal(jstr(m, "type"), "greet");
	assert_string_equal(jstr(m, "dedup_key"), "d1");
	assert_string_equal(jstr(m, "queue"), "jobs");
	assert_int_equal(jint(m, "priority"), 5);
	assert_int_equal(jint(m, "attempts"), 1);
	assert_true(strlen(jstr(m, "lease_token")) > 0);
	assert_true(jint(m, "lease_expiry_ms") > jint(m, "enqueued_ms"));
	hs = json_object_get(m, "headers");
	assert_int_equal(json_array_size(hs), 2);
	assert_string_equal(jstr(json_array_get(hs, 0), "key"), "trace");
	assert_string_equal(jstr(json_array_get(hs, 0), "value"), "t1");
	assert_string_equal(jstr(json_array_get(msgs, 1), "payload"), "");
	assert_string_equal(jstr(json_array_get(msgs, 2), "payload"), "line1\n\tline2");
	m = json_array_get(msgs, 3);
	assert_null(json_object_get(m, "payload"));
	assert_string_equal(jstr(m, "payload_base64"), "AP/+IGJpbmFyeQ==");

	/* ack, nack and extend by the printed id and token. */
	m = json_array_get(msgs, 0);
	id = jint(m, "id");
	assert_int_equal(ctl("ack jobs %lld %s", (long long)id, jstr(m, "lease_token")), 0);
	assert_out_has("acked ");
	assert_int_equal(ctl("ack jobs %lld %s 2>&1", (long long)id, jstr(m, "lease_token")), 1);
	assert_out_has("NOT_FOUND");
	m = json_array_get(msgs, 1);
	snprintf(cmd, sizeof(cmd), "extend jobs %lld %s --lease-ms 60000", (long long)jint(m, "id"),
	         jstr(m, "lease_token"));
	{
		json_t *ext = ctl_json(cmd);
		assert_true(jint(ext, "lease_expiry_ms") > jint(m, "lease_expiry_ms"));
		json_decref(ext);
	}
	assert_int_equal(
	    ctl("extend jobs %lld %s", (long long)jint(m, "id"), jstr(m, "lease_token")), 0);
	assert_out_has("extended lease of ");
	assert_int_equal(
	    ctl("nack jobs %lld %s --error oops", (long long)jint(m, "id"), jstr(m, "lease_token")),
	    0);
	assert_out_has("ready again now");
	m = json_array_get(msgs, 2);
	snprintf(cmd, sizeof(cmd), "nack jobs %lld %s --delay-ms 60000", (long long)jint(m, "id"),
	         jstr(m, "lease_token"));
	{
		json_t *nk = ctl_json(cmd);
		assert_true(json_is_true(json_object_get(nk, "nacked")));
		assert_int_equal(jint(nk, "delay_ms"), 60000);
		json_decref(nk);
	}
	json_decref(doc);

	/* Human pull: the nacked empty message is back, as attempt 2. */
	assert_int_equal(ctl("pull jobs"), 0);
	assert_out_has("ID");
	assert_out_has("TOKEN");
	assert_out_has("ATTEMPTS");
	assert_out_has("PAYLOAD");
	assert_out_has("  2  ");
	/* Left: the binary message (leased, not acked) and the delayed one. */
	assert_int_equal(ctl("pull jobs --wait-ms 100"), 0);
	assert_out_has("no messages ready in jobs");
	assert_int_equal(ctl("queue purge jobs"), 0);

	/* Binary and long payloads are escaped and cut in the table. */
	assert_int_equal(ctl("push jobs --file '%s'", file), 0);
	assert_int_equal(ctl("pull jobs"), 0);
	assert_out_has("\\x00\\xff\\xfe binary");
	assert_int_equal(ctl("push jobs %0200d", 7), 0);
	assert_int_equal(ctl("pull jobs --lease-ms 1000"), 0);
	assert_out_has("... (200 bytes)");
	assert_int_equal(ctl("queue delete jobs"), 0);
}

static void test_mqctl_exit_codes(void **state)
{
	char url[400];

	(void)state;
	/* Usage errors: 2. */
	assert_int_equal(mqtest_run(fx->out, sizeof(fx->out), "'%s' 2>/dev/null", fx->mqctl), 2);
	assert_int_equal(ctl("frobnicate 2>/dev/null"), 2);
	assert_int_equal(ctl("queue 2>/dev/null"), 2);
	assert_int_equal(ctl("queue create 2>/dev/null"), 2);
	assert_int_equal(ctl("queue create a b 2>/dev/null"), 2);
	assert_int_equal(ctl("push 2>/dev/null"), 2);
	assert_int_equal(ctl("pull q --max 0 2>/dev/null"), 2);
	assert_int_equal(ctl("pull q --max 1001 2>/dev/null"), 2);
	assert_int_equal(ctl("pull q --bogus 2>/dev/null"), 2);
	assert_int_equal(ctl("ack q notanumber 5 2>/dev/null"), 2);
	assert_int_equal(ctl("--timeout x ping 2>/dev/null"), 2);
	assert_int_equal(ctl("push q x --dedup-mode sometimes 2>/dev/null"), 2);
	assert_int_equal(ctl("push q x --header novalue 2>/dev/null"), 2);
	/* Broker errors: 1. */
	assert_int_equal(ctl("queue stats missing 2>&1"), 1);
	assert_out_has("mqctl: NOT_FOUND: ");
	assert_int_equal(ctl("queue create 'bad name' 2>&1"), 1);
	assert_out_has("mqctl: INVALID_ARGUMENT: ");
	/* Unreachable: 3, within the timeout. */
	snprintf(url, sizeof(url), "ipc://%s/nobody.sock", fx->broker.dir);
	{
		uint64_t t0 = mqtest_now_ms();
		int rc = mqtest_run(fx->out, sizeof(fx->out),
		                    "'%s' --url '%s' --timeout 300 ping 2>&1", fx->mqctl, url);
		assert_int_equal(rc, 3);
		assert_true(mqtest_now_ms() - t0 < 5000);
		assert_out_has("mqctl: UNAVAILABLE: ");
	}
	/* MQ_URL sets the default URL. */
	assert_int_equal(mqtest_run(fx->out, sizeof(fx->out), "MQ_URL='%s' '%s' ping",
	                            fx->broker.url, fx->mqctl),
	                 0);
	assert_int_equal(mqtest_run(fx->out, sizeof(fx->out),
	                            "MQ_URL='%s' '%s' --timeout 300 ping 2>/dev/null", url,
	                            fx->mqctl),
	                 3);
}

static void test_mqctl_help(void **state)
{
	static const char *const cmds[] = {
	    "",           "ping",        "info",        "queue create",
	    "queue list", "queue stats", "queue purge", "queue delete",
	    "push",       "pull",        "ack",         "nack",
	    "extend",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (ctl("%s --help", cmds[i]) != 0)
			fail_msg("mqctl %s --help: nonzero exit", cmds[i]);
		assert_out_has("Usage: mqctl");
		if (cmds[i][0] != '\0')
			assert_out_has(cmds[i]);
	}
	assert_int_equal(ctl("queue create --help"), 0);
	assert_out_has("--if-not-exists");
	assert_int_equal(ctl("push --help"), 0);
	assert_out_has("--dedup-mode");
	assert_int_equal(ctl("--version"), 0);
	assert_out_has("mqctl ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mqctl_ping_info),     cmocka_unit_test(test_mqctl_queue_commands),
	    cmocka_unit_test(test_mqctl_push_pull_ack), cmocka_unit_test(test_mqctl_exit_codes),
	    cmocka_unit_test(test_mqctl_help),
	};

	return cmocka_run_group_tests_name("mqctl", tests, group_setup, group_teardown);
}
