/* SPDX-License-Identifier: MIT */
/*
 * test_auth.c: token authentication and authorization.
 *
 * Unit part (links the broker's auth.c): every method of the generated
 * service descriptor has a permission-table entry, a method missing from
 * it is denied, and queue/topic names are found in any request message.
 * Wire part (real mqd): no token, a wrong token, a produce-only token
 * pulling, a pattern mismatch, admin operations, ListQueues showing only
 * visible queues, the same refusal whether a queue exists or not, tokens
 * from the environment and hashed in the file, mqctl --token / MQ_TOKEN,
 * no secret in mqd's log, and the start-up rules for non-loopback
 * listeners.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "mq.pb-c.h"
#include "mq/mq.h"
#include "mqtest.h"

#define S_PROD  "prod-Secret-7f3a"
#define S_CONS  "cons-Secret-91bc"
#define S_OPS   "ops-Secret-0d44"
#define S_ORDOP "ordop-Secret-55e1"
#define S_ENV   "env-Secret-a0a0"
/* sha256("cons-Secret-91bc"), filled at setup: the file holds only it. */

static mqtest_broker broker;

/* ---- unit: the table and the name finder ------------------------------ */

static void test_every_method_has_an_entry(void **state)
{
	const ProtobufCServiceDescriptor *d = &mq__broker__descriptor;

	(void)state;
	assert_true(d->n_methods > 0);
	for (unsigned i = 0; i < d->n_methods; i++)
		if (brk_auth_method_need(d->methods[i].name) == BRK_NEED_DENY)
			fail_msg("method %s of %s has no entry in broker/auth.c's permission table",
			         d->methods[i].name, d->name);
	/* Not in the table: denied. */
	assert_int_equal(brk_auth_method_need("NoSuchMethod"), BRK_NEED_DENY);
	assert_int_equal(brk_auth_method_need("Push"), BRK_NEED_PRODUCE);
	assert_int_equal(brk_auth_method_need("Pull"), BRK_NEED_CONSUME);
	assert_int_equal(brk_auth_method_need("DeleteQueue"), BRK_NEED_ADMIN);
}

static void test_resource_names(void **state)
{
	const char *names[4];
	Mq__PushRequest push = MQ__PUSH_REQUEST__INIT;
	Mq__RedriveRequest rd = MQ__REDRIVE_REQUEST__INIT;
	Mq__CreateQueueRequest cq = MQ__CREATE_QUEUE_REQUEST__INIT;
	Mq__PingRequest ping = MQ__PING_REQUEST__INIT;
	Mq__PushMessage m = MQ__PUSH_MESSAGE__INIT, *mp = &m;

	(void)state;
	push.queue = "orders.eu";
	push.n_messages = 1;
	push.messages = &mp;
	m.type = "not.a.queue"; /* other strings are not names */
	assert_int_equal(brk_auth_resources(&push.base, names, 4), 1);
	assert_string_equal(names[0], "orders.eu");

	rd.queue = "a";
	rd.to_queue = "b";
	assert_int_equal(brk_auth_resources(&rd.base, names, 4), 2);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "b");
	rd.to_queue = ""; /* empty = the same queue: not a name */
	assert_int_equal(brk_auth_resources(&rd.base, names, 4), 1);

	cq.name = "made";
	assert_int_equal(brk_auth_resources(&cq.base, names, 4), 1);
	assert_string_equal(names[0], "made");
	assert_int_equal(brk_auth_resources(&ping.base, names, 4), 0);

	assert_true(brk_listen_is_loopback("ipc:///tmp/x.sock"));
	assert_true(brk_listen_is_loopback("tcp://127.0.0.1:7450"));
	assert_true(brk_listen_is_loopback("tls+tcp://localhost:7450"));
	assert_true(brk_listen_is_loopback("tcp://[::1]:7450"));
	assert_false(brk_listen_is_loopback("tcp://0.0.0.0:7450"));
	assert_false(brk_listen_is_loopback("tcp://*:7450"));
	assert_false(brk_listen_is_loopback("tcp://:7450"));
	assert_false(brk_listen_is_loopback("tcp://10.1.2.3:7450"));
	assert_false(brk_listen_is_loopback("tls+tcp://[::]:7450"));
}

/* ---- wire ------------------------------------------------------------- */

static mq_client *client(const char *token)
{
	mq_client_opts o;
	mq_client *c;

	mq_client_opts_init(&o);
	o.timeout_ms = 5000;
	o.auth_token = token;
	assert_mq_ok(mq_client_open(&c, broker.url, &o));
	return c;
}

static int setup(void **state)
{
	char file[400], hash[128] = "";
	FILE *f;

	(void)state;
	memset(&broker, 0, sizeof(broker));
	mqtest_tmpdir(broker.dir, sizeof(broker.dir));
	if (mqtest_run(hash, sizeof(hash), "printf %%s '%s' | sha256sum | cut -c1-64", S_CONS) !=
	        0 ||
	    strlen(hash) < 64)
		return -1;
	hash[64] = '\0';
	snprintf(file, sizeof(file), "%s/tokens.ini", broker.dir);
	if ((f = fopen(file, "w")) == NULL)
		return -1;
	fprintf(f,
	        "; tokens of test_auth\n"
	        "[producer]\ntoken = %s\nproduce = orders.*\n\n"
	        "[consumer]\nsha256 = %s\nconsume = orders.*, emails\n\n"
	        "[ops]\ntoken = %s\nadmin = *\n\n"
	        "[orders-admin]\ntoken = %s\nadmin = orders.*\nproduce = orders.*\n",
	        S_PROD, hash, S_OPS, S_ORDOP);
	fclose(f);
	setenv("MQ_AUTH_TOKENS", "envtok=" S_ENV " produce=env.* consume=env.*", 1);
	{
		char dir[256], flag[420];
		snprintf(dir, sizeof(dir), "%s", broker.dir);
		snprintf(flag, sizeof(flag), "--auth-file=%s", file);
		/* mqtest_broker_start makes its own dir; keep the token file's. */
		mqtest_broker_start(&broker, flag, "--log-level=debug", NULL);
		snprintf(file, sizeof(file), "rm -rf '%s'", dir);
		mqtest_run(NULL, 0, "%s", file);
	}
	unsetenv("MQ_AUTH_TOKENS");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	mqtest_broker_cleanup(&broker);
	return 0;
}

static void test_no_token(void **state)
{
	mq_client *c = client(NULL);

	(void)state;
	assert_mq_status(mq_push(c, "orders.x", "x", 1, NULL, NULL, NULL), MQ_UNAUTHENTICATED);
	assert_non_null(strstr(mq_errmsg(), "auth token"));
	{
		mq_server_info si;
		assert_mq_status(mq_server_info_get(c, &si), MQ_UNAUTHENTICATED);
	}
	/* Ping is the one method open without a token (a liveness check). */
	assert_mq_ok(mq_ping(c, NULL));
	mq_client_close(c);
}

static void test_wrong_token(void **state)
{
	mq_client *c = client("prod-Secret-7f3b"); /* one character off */

	(void)state;
	assert_mq_status(mq_push(c, "orders.x", "x", 1, NULL, NULL, NULL), MQ_UNAUTHENTICATED);
	assert_string_equal(mq_errmsg(), "invalid auth token");
	assert_mq_status(mq_queue_list(c, &(mq_queue_info *){NULL}, &(size_t){0}),
	                 MQ_UNAUTHENTICATED);
	assert_mq_status(mq_ping(c, NULL), MQ_UNAUTHENTICATED); /* a wrong token is reported */
	mq_client_close(c);
}

static void test_produce_only_token_pulling(void **state)
{
	mq_client *p = client(S_PROD), *cons = client(S_CONS);
	mq_message *m[1];
	size_t n = 9;

	(void)state;
	assert_mq_ok(mq_push(p, "orders.pp", "job", 3, NULL, NULL, NULL));
	assert_mq_status(mq_pull(p, "orders.pp", NULL, m, 1, &n), MQ_PERMISSION_DENIED);
	assert_non_null(strstr(mq_errmsg(), "may not consume from 'orders.pp'"));
	/* The consumer token (stored hashed) may. */
	assert_mq_ok(mq_pull(cons, "orders.pp", NULL, m, 1, &n));
	assert_int_equal(n, 1);
	/* ... and the producer may not ack it either. */
	assert_mq_status(mq_ack(p, m[0]), MQ_PERMISSION_DENIED);
	assert_mq_ok(mq_ack(cons, m[0]));
	mq_message_free(m[0]);
	/* The consumer may not push. */
	assert_mq_status(mq_push(cons, "orders.pp", "x", 1, NULL, NULL, NULL),
	                 MQ_PERMISSION_DENIED);
	mq_client_close(p);
	mq_client_close(cons);
}

static void test_pattern_mismatch(void **state)
{
	mq_client *p = client(S_PROD), *ops = client(S_OPS);
	char msg_existing[256], msg_missing[256];

	(void)state;
	assert_mq_status(mq_push(p, "emails", "x", 1, NULL, NULL, NULL), MQ_PERMISSION_DENIED);
	/* "orders.*" does not match "orders" nor "xorders.a". */
	assert_mq_status(mq_push(p, "orders", "x", 1, NULL, NULL, NULL), MQ_PERMISSION_DENIED);
	assert_mq_status(mq_push(p, "xorders.a", "x", 1, NULL, NULL, NULL), MQ_PERMISSION_DENIED);
	/* Nothing leaks: refused the same way whether the queue exists. */
	assert_mq_ok(mq_queue_create(ops, "hidden.exists", NULL, true, NULL));
	assert_mq_status(mq_push(p, "hidden.exists", "x", 1, NULL, NULL, NULL),
	                 MQ_PERMISSION_DENIED);
	snprintf(msg_existing, sizeof(msg_existing), "%s", mq_errmsg());
	assert_mq_status(mq_push(p, "hidden.nothere", "x", 1, NULL, NULL, NULL),
	                 MQ_PERMISSION_DENIED);
	snprintf(msg_missing, sizeof(msg_missing), "%s", mq_errmsg());
	assert_non_null(strstr(msg_existing, "hidden.exists"));
	/* Same text once the names are swapped. */
	char *at = strstr(msg_missing, "hidden.nothere"), swapped[300];
	assert_non_null(at);
	snprintf(swapped, sizeof(swapped), "%.*shidden.exists%s", (int)(at - msg_missing),
	         msg_missing, at + strlen("hidden.nothere"));
	assert_string_equal(msg_existing, swapped);
	{
		mq_queue_info qi;
		assert_mq_status(mq_queue_get(p, "hidden.exists", &qi), MQ_PERMISSION_DENIED);
		assert_mq_status(mq_queue_get(p, "hidden.nothere", &qi), MQ_PERMISSION_DENIED);
	}
	mq_client_close(p);
	mq_client_close(ops);
}

static bool listed(const mq_queue_info *qs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(qs[i].name, name) == 0)
			return true;
	return false;
}

static void test_admin_ops_and_listing(void **state)
{
	mq_client *p = client(S_PROD), *ops = client(S_OPS), *oa = client(S_ORDOP),
	          *cons = client(S_CONS);
	mq_queue_info *qs = NULL;
	size_t n = 0;
	uint64_t purged;

	(void)state;
	/* The global admin. */
	assert_mq_ok(mq_queue_create(ops, "ops.only", NULL, true, NULL));
	assert_mq_ok(mq_queue_create(ops, "emails", NULL, true, NULL));
	assert_mq_ok(mq_queue_create(ops, "orders.adm", NULL, true, NULL));
	/* A producer is no admin, even on its own pattern. */
	assert_mq_status(mq_queue_create(p, "orders.new", NULL, true, NULL), MQ_PERMISSION_DENIED);
	assert_mq_status(mq_queue_delete(p, "orders.adm"), MQ_PERMISSION_DENIED);
	assert_mq_status(mq_queue_purge(p, "orders.adm", 0, &purged), MQ_PERMISSION_DENIED);
	/* A scoped admin: its pattern only. */
	assert_mq_ok(mq_push(oa, "orders.adm", "x", 1, NULL, NULL, NULL));
	assert_mq_ok(mq_queue_purge(oa, "orders.adm", 0, &purged));
	assert_int_equal(purged, 1);
	assert_mq_status(mq_queue_purge(oa, "emails", 0, &purged), MQ_PERMISSION_DENIED);
	assert_mq_status(mq_queue_delete(oa, "ops.only"), MQ_PERMISSION_DENIED);
	assert_mq_ok(mq_queue_create(oa, "orders.tmp", NULL, false, NULL));
	assert_mq_ok(mq_queue_delete(oa, "orders.tmp"));

	/* ListQueues: each token sees only what it may touch. */
	assert_mq_ok(mq_queue_list(cons, &qs, &n));
	assert_true(listed(qs, n, "orders.adm"));
	assert_true(listed(qs, n, "emails"));
	assert_false(listed(qs, n, "ops.only"));
	for (size_t i = 0; i < n; i++)
		if (strncmp(qs[i].name, "orders.", 7) != 0 && strcmp(qs[i].name, "emails") != 0)
			fail_msg("consumer token sees queue %s", qs[i].name);
	mq_queue_list_free(qs);
	assert_mq_ok(mq_queue_list(ops, &qs, &n));
	assert_true(listed(qs, n, "ops.only"));
	assert_true(listed(qs, n, "emails"));
	mq_queue_list_free(qs);
	/* Ping and ServerInfo: any valid token. */
	assert_mq_ok(mq_ping(p, NULL));
	mq_client_close(p);
	mq_client_close(ops);
	mq_client_close(oa);
	mq_client_close(cons);
}

static void test_env_token_and_mqctl(void **state)
{
	mq_client *e = client(S_ENV);
	const char *mqctl = getenv("MQCTL");
	char out[4096];

	(void)state;
	assert_mq_ok(mq_push(e, "env.q", "x", 1, NULL, NULL, NULL));
	assert_mq_status(mq_push(e, "orders.q", "x", 1, NULL, NULL, NULL), MQ_PERMISSION_DENIED);
	mq_client_close(e);

	assert_non_null(mqctl);
	assert_int_equal(mqtest_run(out, sizeof(out), "%s --url %s --token %s push env.q hi 2>&1",
	                            mqctl, broker.url, S_ENV),
	                 0);
	assert_int_equal(mqtest_run(out, sizeof(out), "MQ_TOKEN=%s %s --url %s pull env.q 2>&1",
	                            S_ENV, mqctl, broker.url),
	                 0);
	/* No token: exit 1 and the status named. */
	assert_int_equal(
	    mqtest_run(out, sizeof(out), "%s --url %s push env.q hi 2>&1", mqctl, broker.url), 1);
	assert_non_null(strstr(out, "UNAUTHENTICATED"));
	assert_int_equal(mqtest_run(out, sizeof(out), "MQ_TOKEN=%s %s --url %s pull orders.a 2>&1",
	                            S_ENV, mqctl, broker.url),
	                 1);
	assert_non_null(strstr(out, "PERMISSION_DENIED"));
}

static void test_tokens_not_in_log(void **state)
{
	char out[256];
	const char *secrets[] = {S_PROD, S_CONS, S_OPS, S_ORDOP, S_ENV, "prod-Secret-7f3b"};
	mq_client *c = client(S_PROD);

	(void)state;
	/* A little traffic of each kind first (debug logging is on). */
	assert_mq_ok(mq_push(c, "orders.log", "x", 1, NULL, NULL, NULL));
	mq_client_close(c);
	/* The log exists and shows denials by token name... */
	assert_int_equal(
	    mqtest_run(out, sizeof(out), "grep -c \"denied .*token 'producer'\" %s", broker.log),
	    0);
	assert_true(atoi(out) > 0);
	/* ... and never a secret. */
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (mqtest_run(out, sizeof(out), "grep -c -F '%s' %s", secrets[i], broker.log) != 1)
			fail_msg("secret %zu appears in %s: %s lines", i, broker.log, out);
}

static void test_startup_rules(void **state)
{
	char out[4096], dir[256];
	const char *mqd = getenv("MQD");

	(void)state;
	mqtest_tmpdir(dir, sizeof(dir));
	/* A non-loopback listener (a documentation address, never bound:
	 * mqd decides before it listens) without tokens: refused. */
	assert_int_equal(mqtest_run(out, sizeof(out),
	                            "%s --listen tcp://192.0.2.1:7450 --data-dir %s/d 2>&1", mqd,
	                            dir),
	                 2);
	assert_non_null(strstr(out, "no tokens are configured"));
	/* --auth=off: a loud warning (then the bind fails: not our address). */
	assert_int_not_equal(mqtest_run(out, sizeof(out),
	                                "%s --auth=off --listen tcp://192.0.2.1:7450 --data-dir "
	                                "%s/d 2>&1",
	                                mqd, dir),
	                     0);
	assert_non_null(strstr(out, "AUTHENTICATION IS OFF"));
	/* --auth=on without tokens: refused. */
	assert_int_equal(mqtest_run(out, sizeof(out),
	                            "%s --auth=on --listen ipc://%s/s --data-dir "
	                            "%s/d 2>&1",
	                            mqd, dir, dir),
	                 2);
	assert_non_null(strstr(out, "no tokens"));
	/* A bad token file: the error names no secret. */
	assert_int_equal(
	    mqtest_run(NULL, 0, "printf '[t]\\ntoken = s3cr3t-x\\nfly = orders\\n' > %s/bad.ini",
	               dir),
	    0);
	assert_int_equal(mqtest_run(out, sizeof(out),
	                            "%s --auth-file %s/bad.ini --listen ipc://%s/s --data-dir %s/d "
	                            "2>&1",
	                            mqd, dir, dir, dir),
	                 2);
	assert_non_null(strstr(out, "unknown key 'fly'"));
	assert_null(strstr(out, "s3cr3t-x"));
	mqtest_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest unit[] = {
	    cmocka_unit_test(test_every_method_has_an_entry),
	    cmocka_unit_test(test_resource_names),
	};
	const struct CMUnitTest wire[] = {
	    cmocka_unit_test(test_no_token),
	    cmocka_unit_test(test_wrong_token),
	    cmocka_unit_test(test_produce_only_token_pulling),
	    cmocka_unit_test(test_pattern_mismatch),
	    cmocka_unit_test(test_admin_ops_and_listing),
	    cmocka_unit_test(test_env_token_and_mqctl),
	    cmocka_unit_test(test_tokens_not_in_log),
	    cmocka_unit_test(test_startup_rules),
	};
	int failed = cmocka_run_group_tests(unit, NULL, NULL);
	return failed + cmocka_run_group_tests(wire, setup, teardown);
}
