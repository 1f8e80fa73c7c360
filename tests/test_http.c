/* SPDX-License-Identifier: MIT */
/*
 * test_http.c: mqd's HTTP listener (--http-listen) against the real mqd over
 * loopback: the JSON API (push, long-poll pull, ack, nack, admin calls,
 * errors mapped to HTTP codes), /metrics parsed strictly, /livez and
 * /readyz (also 503 in the shutdown window after SIGTERM and refused while
 * storage opens, mqd held there with tests/faultshim.c), and the curl
 * examples of docs/http.md run as written; the dashboard's files and
 * their headers.
 *
 * The HTTP client is a small blocking one over a POSIX socket
 * (HTTP/1.1, Connection: close, read to EOF): no extra dependency.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "mqtest.h"

typedef struct fixture {
	mqtest_broker broker;
	int port;
	const char *mqctl;
	char out[65536];
} fixture;

typedef struct http_resp {
	int status;
	char *body; /* NUL-ended; free */
	char head[4096];
} http_resp;

/* http_do sends one request and reads the whole response. Returns 0 or -1. */
static int http_do(int port, const char *method, const char *path, const char *extra_headers,
                   const char *body, http_resp *r)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	size_t blen = body ? strlen(body) : 0, cap = 8192, len = 0;
	char *req, *buf = malloc(cap), *sep;
	int fd, n;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	if (buf == NULL)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return -1;
	}
	n = asprintf(&req,
	             "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s"
	             "Content-Length: %zu\r\n\r\n%s",
	             method, path, port, extra_headers ? extra_headers : "", blen,
	             body ? body : "");
	if (n < 0 || write(fd, req, (size_t)n) != n) {
		close(fd);
		free(buf);
		return -1;
	}
	free(req);
	for (;;) {
		if (len + 4096 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
		ssize_t got = read(fd, buf + len, cap - len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	buf[len] = '\0';
	sep = strstr(buf, "\r\n\r\n");
	if (sep == NULL || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
		free(buf);
		return -1;
	}
	snprintf(r->head, sizeof(r->head), "%.*s", (int)(sep - buf), buf);
	r->body = strdup(sep + 4);
	free(buf);
	return 0;
}

/* api posts a JSON body to /v1/<method>; returns the parsed JSON reply
 * (never NULL: fails the test) and the HTTP status in *status. */
static json_t *api(fixture *f, const char *method, const char *body, int *status)
{
	char path[128];
	http_resp r;
	json_error_t jerr;
	json_t *j;

	snprintf(path, sizeof(path), "/v1/%s", method);
	if (http_do(f->port, "POST", path, "Content-Type: application/json\r\n", body, &r) != 0)
		fail_msg("POST %s: no HTTP response", path);
	j = json_loads(r.body, 0, &jerr);
	if (j == NULL)
		fail_msg("POST %s: reply is not JSON (%s): %s", path, jerr.text, r.body);
	free(r.body);
	*status = r.status;
	return j;
}

/* api_ok posts and expects 200. */
static json_t *api_ok(fixture *f, const char *method, const char *body)
{
	int st;
	json_t *j = api(f, method, body, &st);

	if (st != 200) {
		char *s = json_dumps(j, JSON_COMPACT);
		fail_msg("POST /v1/%s %s: HTTP %d %s", method, body, st, s);
	}
	return j;
}

/* api_err posts, expects HTTP code http and gRPC status name; returns the
 * error message (static copy). */
static const char *api_err(fixture *f, const char *method, const char *body, int http,
                           const char *status)
{
	static char msg[512];
	int st;
	json_t *j = api(f, method, body, &st);

	assert_int_equal(st, http);
	assert_string_equal(json_string_value(json_object_get(j, "status")), status);
	assert_true(json_integer_value(json_object_get(j, "code")) > 0);
	snprintf(msg, sizeof(msg), "%s", json_string_value(json_object_get(j, "message")));
	assert_true(msg[0] != '\0');
	json_decref(j);
	return msg;
}

static uint64_t jstr_u64(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	if (json_is_string(v))
		return strtoull(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return (uint64_t)json_integer_value(v);
	fail_msg("field %s missing or not a number/string", key);
	return 0;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	FILE *log;
	char line[1024];

	assert_non_null(f);
	f->mqctl = getenv("MQCTL");
	mqtest_broker_start(&f->broker, "--http-listen", "http://127.0.0.1:0", NULL);
	log = fopen(f->broker.log, "r");
	assert_non_null(log);
	while (fgets(line, sizeof(line), log) != NULL) {
		char *p = strstr(line, "http listening on http://127.0.0.1:");
		if (p != NULL)
			f->port = atoi(p + strlen("http listening on http://127.0.0.1:"));
	}
	fclose(log);
	assert_true(f->port > 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	assert_int_equal(mqtest_broker_stop(&f->broker), 0);
	mqtest_broker_cleanup(&f->broker);
	free(f);
	return 0;
}

/* ---- push, pull, ack, nack ----------------------------------------------- */

static void test_http_push_pull_ack_nack(void **state)
{
	fixture *f = *state;
	json_t *j, *msgs, *m;
	uint64_t id, token;
	char body[512];

	/* "hello" and "world" in base64; the second in lowerCamelCase field names. */
	j = api_ok(f, "Push", "{\"queue\":\"h1\",\"messages\":[{\"payload\":\"aGVsbG8=\"}]}");
	assert_int_equal(json_array_size(json_object_get(j, "results")), 1);
	assert_true(jstr_u64(json_array_get(json_object_get(j, "results"), 0), "id") > 0);
	json_decref(j);
	j = api_ok(
	    f, "Push",
	    "{\"queue\":\"h1\",\"messages\":[{\"payload\":\"d29ybGQ\",\"dedupKey\":\"k1\"}]}");
	json_decref(j);

	j = api_ok(f, "Pull", "{\"queue\":\"h1\",\"maxMessages\":\"1\",\"wait_ms\":0}");
	msgs = json_object_get(j, "messages");
	assert_int_equal(json_array_size(msgs), 1);
	m = json_array_get(msgs, 0);
	assert_string_equal(json_string_value(json_object_get(m, "payload")), "aGVsbG8=");
	assert_string_equal(json_string_value(json_object_get(m, "state")), "STATE_LEASED");
	/* uint64 as JSON strings (proto3 JSON mapping). */
	assert_true(json_is_string(json_object_get(m, "lease_token")));
	id = jstr_u64(m, "id");
	token = jstr_u64(m, "lease_token");
	json_decref(j);

	/* A wrong lease token is FAILED_PRECONDITION -> 400. */
	snprintf(body, sizeof(body), "{\"queue\":\"h1\",\"id\":%llu,\"lease_token\":\"%llu\"}",
	         (unsigned long long)id, (unsigned long long)token + 99);
	api_err(f, "Ack", body, 400, "FAILED_PRECONDITION");
	/* uint64 accepted as a number too. */
	snprintf(body, sizeof(body), "{\"queue\":\"h1\",\"id\":%llu,\"leaseToken\":%llu}",
	         (unsigned long long)id, (unsigned long long)token);
	j = api_ok(f, "Ack", body);
	assert_int_equal(json_object_size(j), 0);
	json_decref(j);

	/* Nack the second: it comes back with attempts 2. */
	j = api_ok(f, "Pull", "{\"queue\":\"h1\"}");
	m = json_array_get(json_object_get(j, "messages"), 0);
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "payload")), "d29ybGQ=");
	assert_string_equal(json_string_value(json_object_get(m, "dedup_key")), "k1");
	snprintf(body, sizeof(body),
	         "{\"queue\":\"h1\",\"id\":\"%llu\",\"lease_token\":\"%llu\",\"error\":\"boom\"}",
	         (unsigned long long)jstr_u64(m, "id"),
	         (unsigned long long)jstr_u64(m, "lease_token"));
	json_decref(j);
	json_decref(api_ok(f, "Nack", body));
	j = api_ok(f, "Pull", "{\"queue\":\"h1\"}");
	m = json_array_get(json_object_get(j, "messages"), 0);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "attempts")), 2);
	snprintf(body, sizeof(body), "{\"queue\":\"h1\",\"id\":\"%llu\"}",
	         (unsigned long long)jstr_u64(m, "id"));
	json_decref(j);
	/* The nack's error, in the message's history (GetMessage). */
	j = api_ok(f, "GetMessage", body);
	m = json_object_get(j, "message");
	assert_string_equal(json_string_value(json_object_get(m, "last_error")), "boom");
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(json_object_get(m, "history"), 0), "outcome")),
	                    "OUTCOME_NACKED");
	json_decref(j);

	/* The counters, through GetQueue. */
	j = api_ok(f, "GetQueue", "{\"name\":\"h1\"}");
	json_t *st = json_object_get(json_object_get(j, "queue"), "stats");
	assert_non_null(st);
	assert_int_equal(jstr_u64(st, "pushed_total"), 2);
	assert_int_equal(jstr_u64(st, "acked_total"), 1);
	assert_int_equal(jstr_u64(st, "nacked_total"), 1);
	assert_int_equal(jstr_u64(st, "in_flight"), 1);
	json_decref(j);
}

/* ---- long polling ------------------------------------------------------------ */

typedef struct poll_arg {
	int port;
	http_resp r;
	int rv;
} poll_arg;

static void *long_poll(void *arg)
{
	poll_arg *a = arg;

	a->rv = http_do(a->port, "POST", "/v1/Pull", NULL,
	                "{\"queue\":\"lp\",\"max_messages\":1,\"wait_ms\":60000}", &a->r);
	return NULL;
}

/* metric_value finds one sample in /metrics; -1 when absent. */
static double metric_value(fixture *f, const char *series)
{
	http_resp r;
	double v = -1;
	size_t n = strlen(series);

	if (http_do(f->port, "GET", "/metrics", NULL, NULL, &r) != 0 || r.status != 200)
		fail_msg("GET /metrics failed");
	for (char *line = r.body; line && *line;) {
		char *nl = strchr(line, '\n');
		if (strncmp(line, series, n) == 0 && line[n] == ' ')
			v = strtod(line + n + 1, NULL);
		line = nl ? nl + 1 : NULL;
	}
	free(r.body);
	return v;
}

static void test_http_long_poll(void **state)
{
	fixture *f = *state;
	poll_arg a = {.port = f->port};
	pthread_t th;
	int i;

	assert_int_equal(pthread_create(&th, NULL, long_poll, &a), 0);
	/* Wait (bounded) until the pull is parked in the broker. */
	for (i = 0; i < 1000 && metric_value(f, "mq_parked_pulls") < 1; i++)
		usleep(10000);
	assert_true(i < 1000);
	/* While it waits, the broker serves others (HTTP and nng). */
	json_decref(api_ok(f, "Ping", "{}"));
	if (f->mqctl != NULL)
		assert_int_equal(mqtest_run(f->out, sizeof(f->out), "'%s' --url '%s' ping",
		                            f->mqctl, f->broker.url),
		                 0);
	/* A push through nng (mqctl) wakes the HTTP long poll. */
	if (f->mqctl != NULL)
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' push lp wakeup", f->mqctl,
		                            f->broker.url),
		                 0);
	else
		json_decref(api_ok(f, "Push",
		                   "{\"queue\":\"lp\",\"messages\":[{\"payload\":\"d2FrZXVw\"}]}"));
	pthread_join(th, NULL);
	assert_int_equal(a.rv, 0);
	assert_int_equal(a.r.status, 200);
	assert_non_null(strstr(a.r.body, "\"payload\":\"d2FrZXVw\"")); /* "wakeup" */
	free(a.r.body);
	assert_true(metric_value(f, "mq_parked_pulls") == 0);
}

/* ---- admin calls and errors ------------------------------------------------ */

static void test_http_admin(void **state)
{
	fixture *f = *state;
	json_t *j;

	j = api_ok(f, "CreateQueue",
	           "{\"name\":\"adm\",\"config\":{\"max_attempts\":2,\"dedup_scope\":\"DEDUP_SCOPE_"
	           "WAITING\"}}");
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(j, "queue"), "config"), "dedup_scope")),
	    "DEDUP_SCOPE_WAITING");
	json_decref(j);
	api_err(f, "CreateQueue", "{\"name\":\"adm\"}", 409, "ALREADY_EXISTS");
	/* enum by number */
	json_decref(api_ok(
	    f, "UpdateQueue",
	    "{\"name\":\"adm\",\"fields\":[\"dedup_scope\"],\"config\":{\"dedupScope\":0}}"));
	j = api_ok(f, "GetQueue", "{\"name\":\"adm\"}");
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(j, "queue"), "config"), "dedup_scope")),
	    "DEDUP_SCOPE_ACKED");
	json_decref(j);
	json_decref(api_ok(f, "PauseQueue", "{\"name\":\"adm\"}"));
	j = api_ok(f, "GetQueue", "{\"name\":\"adm\"}");
	assert_true(json_is_true(json_object_get(json_object_get(j, "queue"), "paused")));
	json_decref(j);
	json_decref(api_ok(f, "ResumeQueue", "{\"name\":\"adm\"}"));
	json_decref(api_ok(f, "Push", "{\"queue\":\"adm\",\"messages\":[{\"payload\":\"\"},{}]}"));
	j = api_ok(f, "ListMessages", "{\"queue\":\"adm\"}");
	assert_int_equal(json_array_size(json_object_get(j, "messages")), 2);
	json_decref(j);
	j = api_ok(f, "PurgeQueue", "{\"name\":\"adm\"}");
	json_decref(j);
	j = api_ok(f, "ListQueues", "{}");
	assert_true(json_array_size(json_object_get(j, "queues")) >= 1);
	json_decref(j);
	json_decref(api_ok(f, "DeleteQueue", "{\"name\":\"adm\"}"));
	api_err(f, "GetQueue", "{\"name\":\"adm\"}", 404, "NOT_FOUND");
	j = api_ok(f, "ServerInfo", "");
	assert_int_equal(jstr_u64(j, "protocol_version"), 1);
	json_decref(j);
}

static void test_http_errors(void **state)
{
	fixture *f = *state;
	http_resp r;
	const char *msg;

	msg = api_err(f, "NoSuchMethod", "{}", 404, "NOT_FOUND");
	assert_non_null(strstr(msg, "NoSuchMethod"));
	msg = api_err(f, "Push", "{\"queue\":", 400, "INVALID_ARGUMENT");
	assert_non_null(strstr(msg, "invalid JSON"));
	msg = api_err(f, "Push", "[1,2]", 400, "INVALID_ARGUMENT");
	assert_non_null(strstr(msg, "expected a JSON object"));
	msg = api_err(f, "Push", "{\"queue\":\"e\",\"bogus\":1}", 400, "INVALID_ARGUMENT");
	assert_non_null(strstr(msg, "unknown field \"bogus\""));
	msg = api_err(f, "Push", "{\"queue\":\"e\",\"messages\":[{\"payload\":\"@@@\"}]}", 400,
	              "INVALID_ARGUMENT");
	assert_non_null(strstr(msg, "messages[0].payload"));
	msg = api_err(f, "Pull", "{\"queue\":\"e\",\"max_messages\":-1}", 400, "INVALID_ARGUMENT");
	assert_non_null(strstr(msg, "max_messages"));
	api_err(f, "Pull", "{\"queue\":\"e\",\"wait_ms\":\"soon\"}", 400, "INVALID_ARGUMENT");
	api_err(f, "UpdateQueue", "{\"name\":\"e\",\"config\":{\"dedup_scope\":\"NOPE\"}}", 400,
	        "INVALID_ARGUMENT");
	/* The broker's own validation, mapped. */
	api_err(f, "Push", "{\"queue\":\"bad name!\",\"messages\":[{}]}", 400, "INVALID_ARGUMENT");
	api_err(f, "Ack", "{\"queue\":\"nope\",\"id\":1,\"lease_token\":1}", 404, "NOT_FOUND");
	/* Only POST on /v1; unknown paths 404. */
	assert_int_equal(http_do(f->port, "GET", "/v1/Push", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 405);
	free(r.body);
	assert_int_equal(http_do(f->port, "GET", "/nothing", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 404);
	free(r.body);
	/* An Authorization header is carried into the envelope (auth_token);
	 * without auth configured it changes nothing. */
	assert_int_equal(
	    http_do(f->port, "POST", "/v1/Ping", "Authorization: Bearer t0k\r\n", "{}", &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	/* Still serving everyone after all that. */
	json_decref(api_ok(f, "Ping", "{}"));
	if (f->mqctl != NULL)
		assert_int_equal(mqtest_run(f->out, sizeof(f->out), "'%s' --url '%s' ping",
		                            f->mqctl, f->broker.url),
		                 0);
}

/* ---- /metrics ---------------------------------------------------------------- */

/* check_exposition parses the text format strictly: every line is a HELP,
 * TYPE or sample line; a sample's family was TYPEd before; names and labels
 * are well formed; values parse; histogram buckets are cumulative and end
 * in +Inf equal to _count. Returns the number of samples. */
static int check_exposition(const char *text)
{
	char fam[128] = "", type[32] = "";
	double last_bucket = -1;
	int samples = 0;

	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		char l[1024], name[128];
		size_t n;

		assert_non_null(nl); /* every line ends in \n */
		n = (size_t)(nl - line);
		assert_true(n > 0 && n < sizeof(l));
		memcpy(l, line, n);
		l[n] = '\0';
		line = nl + 1;
		if (strncmp(l, "# HELP ", 7) == 0)
			continue;
		if (strncmp(l, "# TYPE ", 7) == 0) {
			assert_int_equal(sscanf(l + 7, "%127s %31s", fam, type), 2);
			assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
			            !strcmp(type, "histogram"));
			assert_int_equal(strncmp(fam, "mq_", 3), 0);
			if (!strcmp(type, "counter"))
				assert_non_null(strstr(fam, "_total"));
			last_bucket = -1;
			continue;
		}
		assert_true(l[0] != '#');
		/* name */
		size_t k = 0;
		while (isalnum((unsigned char)l[k]) || l[k] == '_' || l[k] == ':')
			k++;
		assert_true(k > 0 && k < sizeof(name));
		memcpy(name, l, k);
		name[k] = '\0';
		assert_int_equal(strncmp(name, fam, strlen(fam)), 0);
		const char *p = l + k;
		const char *le = NULL;
		if (*p == '{') {
			p++;
			while (*p != '}') {
				const char *ls = p;
				while (isalnum((unsigned char)*p) || *p == '_')
					p++;
				assert_true(p > ls);
				if (strncmp(ls, "le=", 3) == 0)
					le = ls + 4;
				assert_int_equal(*p++, '=');
				assert_int_equal(*p++, '"');
				while (*p != '"') {
					assert_true(*p != '\0');
					if (*p == '\\')
						p++;
					p++;
				}
				p++;
				if (*p == ',')
					p++;
				else
					assert_int_equal(*p, '}');
			}
			p++;
		}
		assert_int_equal(*p++, ' ');
		char *end;
		double v = strtod(p, &end);
		assert_true(end > p && *end == '\0');
		if (le != NULL) {
			assert_true(v >= last_bucket);
			last_bucket = v;
		} else if (strstr(name, "_count") != NULL && !strcmp(type, "histogram")) {
			assert_true(v == last_bucket); /* +Inf bucket == count */
			last_bucket = -1;
		}
		samples++;
	}
	return samples;
}

static void test_http_metrics(void **state)
{
	fixture *f = *state;
	http_resp r;
	json_t *j;

	for (int i = 0; i < 5; i++)
		json_decref(
		    api_ok(f, "Push", "{\"queue\":\"met\",\"messages\":[{\"payload\":\"eA==\"}]}"));
	j = api_ok(f, "Pull", "{\"queue\":\"met\",\"max_messages\":2}");
	json_decref(j);
	api_err(f, "GetQueue", "{\"name\":\"nope\"}", 404, "NOT_FOUND");

	assert_int_equal(http_do(f->port, "GET", "/metrics", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "text/plain; version=0.0.4"));
	assert_true(check_exposition(r.body) > 50);
	free(r.body);

	assert_true(metric_value(f, "mq_queue_messages{queue=\"met\",state=\"ready\"}") == 3);
	assert_true(metric_value(f, "mq_queue_messages{queue=\"met\",state=\"in_flight\"}") == 2);
	assert_true(metric_value(f, "mq_queue_messages{queue=\"met\",state=\"dead\"}") == 0);
	assert_true(metric_value(f, "mq_queue_pushed_total{queue=\"met\"}") == 5);
	assert_true(metric_value(f, "mq_requests_total{method=\"Push\",status=\"OK\"}") >= 5);
	assert_true(
	    metric_value(f, "mq_requests_total{method=\"GetQueue\",status=\"NOT_FOUND\"}") >= 1);
	assert_true(metric_value(f, "mq_request_duration_seconds_count{method=\"Push\"}") >= 5);
	assert_true(metric_value(f, "mq_commit_batch_size_count") >= 1);
	assert_true(metric_value(f, "mq_commit_duration_seconds_count") >= 1);
	assert_true(metric_value(f, "mq_storage_used_bytes") > 0);
	assert_true(metric_value(f, "mq_storage_map_limit_bytes") >=
	            metric_value(f, "mq_storage_map_bytes"));
	assert_true(metric_value(f, "mq_ready") == 1);
	/* /metrics' own ListQueues calls are not counted as requests. */
	double lq = metric_value(f, "mq_requests_total{method=\"ListQueues\",status=\"OK\"}");
	assert_true(metric_value(f, "mq_requests_total{method=\"ListQueues\",status=\"OK\"}") ==
	            lq);
	/* promtool, when installed, agrees. */
	if (system("command -v promtool >/dev/null 2>&1") == 0) {
		char cmd[256];
		snprintf(
		    cmd, sizeof(cmd),
		    "curl -fsS http://127.0.0.1:%d/metrics | promtool check metrics >/dev/null",
		    f->port);
		assert_int_equal(system(cmd), 0);
	}
}

/* ---- health ------------------------------------------------------------------ */

static void test_http_health(void **state)
{
	fixture *f = *state;
	http_resp r;

	assert_int_equal(http_do(f->port, "GET", "/livez", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	assert_int_equal(http_do(f->port, "GET", "/readyz", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ready\n");
	free(r.body);
}

/* ---- the dashboard's files (broker/ui/, compiled into mqd) -------------------- */

/* header_get copies the value of response header name (case-insensitive)
 * into out; returns false when absent. */
static bool header_get(const http_resp *r, const char *name, char *out, size_t len)
{
	size_t n = strlen(name);

	for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p, "\r\n")) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			snprintf(out, len, "%.*s", (int)strcspn(v, "\r"), v);
			return true;
		}
	}
	return false;
}

static void test_http_dashboard_files(void **state)
{
	fixture *f = *state;
	http_resp r, a;
	char v[512], etag[64], cond[128], path[128];
	int assets = 0;

	/* The page at / (and /ui/), with its headers. */
	assert_int_equal(http_do(f->port, "GET", "/", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(header_get(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/html; charset=utf-8");
	assert_true(header_get(&r, "Cache-Control", v, sizeof(v)));
	assert_string_equal(v, "no-cache");
	assert_true(header_get(&r, "X-Content-Type-Options", v, sizeof(v)));
	assert_string_equal(v, "nosniff");
	assert_true(header_get(&r, "Content-Security-Policy", v, sizeof(v)));
	assert_non_null(strstr(v, "default-src 'none'"));
	assert_non_null(strstr(v, "script-src 'self'"));
	assert_non_null(strstr(v, "frame-ancestors 'none'"));
	assert_null(strstr(v, "unsafe-inline"));
	assert_true(header_get(&r, "ETag", etag, sizeof(etag)));
	assert_true(strlen(etag) == 18 && etag[0] == '"' && etag[17] == '"');
	assert_non_null(strstr(r.body, "<script src=\"/ui/app.js\""));
	/* No inline script or style in the page (the CSP would block them). */
	assert_null(strstr(r.body, "<script>"));
	assert_null(strstr(r.body, "<style"));
	assert_null(strstr(r.body, "style=\""));
	assert_null(strstr(r.body, " onclick="));

	/* Every /ui/ file the page names is served, with a fitting type. */
	for (const char *p = strstr(r.body, "\"/ui/"); p != NULL; p = strstr(p + 1, "\"/ui/")) {
		size_t n = strcspn(p + 1, "\"");
		snprintf(path, sizeof(path), "%.*s", (int)n, p + 1);
		assert_int_equal(http_do(f->port, "GET", path, NULL, NULL, &a), 0);
		if (a.status != 200)
			fail_msg("GET %s: HTTP %d", path, a.status);
		assert_true(header_get(&a, "Content-Type", v, sizeof(v)));
		if (strstr(path, ".js"))
			assert_string_equal(v, "text/javascript; charset=utf-8");
		else if (strstr(path, ".css"))
			assert_string_equal(v, "text/css; charset=utf-8");
		else if (strstr(path, ".svg"))
			assert_string_equal(v, "image/svg+xml");
		assert_true(strlen(a.body) > 100);
		free(a.body);
		assets++;
	}
	assert_int_equal(assets, 3); /* favicon, stylesheet, script */

	/* /ui/ is the same page; a query string changes nothing. */
	assert_int_equal(http_do(f->port, "GET", "/ui/?x=1", NULL, NULL, &a), 0);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.body, r.body);
	free(a.body);

	/* A revalidation with the ETag is 304 without a body. */
	snprintf(cond, sizeof(cond), "If-None-Match: %s\r\n", etag);
	assert_int_equal(http_do(f->port, "GET", "/", cond, NULL, &a), 0);
	assert_int_equal(a.status, 304);
	assert_string_equal(a.body, "");
	assert_true(header_get(&a, "ETag", v, sizeof(v)));
	assert_string_equal(v, etag);
	free(a.body);
	/* Another tag gets the page. */
	assert_int_equal(
	    http_do(f->port, "GET", "/", "If-None-Match: \"0000000000000000\"\r\n", NULL, &a), 0);
	assert_int_equal(a.status, 200);
	free(a.body);

	/* HEAD: the headers without the body. */
	assert_int_equal(http_do(f->port, "HEAD", "/ui/app.js", NULL, NULL, &a), 0);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.body, "");
	assert_true(header_get(&a, "Content-Length", v, sizeof(v)));
	assert_true(atoi(v) > 1000);
	free(a.body);

	/* Unknown files are 404; the API is untouched. */
	assert_int_equal(http_do(f->port, "GET", "/ui/nope.js", NULL, NULL, &a), 0);
	assert_int_equal(a.status, 404);
	free(a.body);
	assert_int_equal(http_do(f->port, "GET", "/uinope", NULL, NULL, &a), 0);
	assert_int_equal(a.status, 404);
	free(a.body);
	assert_int_equal(http_do(f->port, "POST", "/", NULL, "{}", &a), 0);
	assert_int_equal(a.status, 405);
	free(a.body);
	free(r.body);
	json_decref(api_ok(f, "Ping", "{}"));
}

/* ---- /readyz while shutting down and while starting ---------------------------
 *
 * mqd is held deterministically with the faultshim's hold (tests/faultshim.c):
 * while a file exists, fsync/fdatasync of data.mdb wait, and a marker file
 * says when a wait began. Held in a push's commit, SIGTERM finds the writer
 * busy: mqd stays in its shutdown phase (quiesced, draining that push) until
 * the test lets the commit go. Held in store_open's first commit, mqd is
 * starting: storage is not open, no listener is up. */

typedef struct held_push {
	int port;
	int status;
	char body[512];
} held_push;

static void *held_push_main(void *arg)
{
	held_push *h = arg;
	http_resp r;

	h->status = -1;
	if (http_do(h->port, "POST", "/v1/Push", "Content-Type: application/json\r\n",
	            "{\"queue\":\"sd\",\"messages\":[{\"payload\":\"aGVsZA==\"}]}", &r) == 0) {
		h->status = r.status;
		snprintf(h->body, sizeof(h->body), "%s", r.body);
		free(r.body);
	}
	return NULL;
}

static void touch(const char *path)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fclose(fp);
}

/* wait_file waits (bounded) until path exists. */
static void wait_file(const char *path)
{
	for (int i = 0; i < 1000 * mqtest_time_mult() && access(path, F_OK) != 0; i++)
		usleep(10000);
	if (access(path, F_OK) != 0)
		fail_msg("%s did not appear within %d s", path, 10 * mqtest_time_mult());
}

static int log_port(const char *logfile)
{
	char line[1024];
	int port = 0;
	FILE *log = fopen(logfile, "r");

	assert_non_null(log);
	while (fgets(line, sizeof(line), log) != NULL) {
		char *p = strstr(line, "http listening on http://127.0.0.1:");
		if (p != NULL)
			port = atoi(p + strlen("http listening on http://127.0.0.1:"));
	}
	fclose(log);
	return port;
}

static void test_http_readyz_shutdown(void **state)
{
	mqtest_broker b;
	char hold[400], marker[420], asan_old[600];
	held_push hp = {0};
	pthread_t th;
	http_resp r;
	json_t *j;
	int i, port;

	(void)state;
	mqtest_tmpdir(hold, sizeof(hold));
	mqtest_rmtree(hold); /* the name only: the hold is on while it exists */
	snprintf(marker, sizeof(marker), "%s.held", hold);
	mqtest_faultshim_env(hold, asan_old, sizeof(asan_old));
	mqtest_broker_start(&b, "--http-listen", "http://127.0.0.1:0", NULL);
	mqtest_faultshim_clear(asan_old);
	port = log_port(b.log);
	assert_true(port > 0);

	/* serving: ready */
	assert_int_equal(http_do(port, "GET", "/readyz", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);

	/* a push whose commit is held; then SIGTERM */
	touch(hold);
	hp.port = port;
	assert_int_equal(pthread_create(&th, NULL, held_push_main, &hp), 0);
	wait_file(marker);
	assert_int_equal(kill(b.pid, SIGTERM), 0);
	/* Until mqd takes the signal /readyz may still say 200; then it must
	 * say 503 (never refuse: the held commit keeps mqd in its shutdown). */
	for (i = 0; i < 1000 * mqtest_time_mult(); i++) {
		if (http_do(port, "GET", "/readyz", NULL, NULL, &r) != 0)
			fail_msg("/readyz refused the connection during the shutdown");
		if (r.status != 200)
			break;
		free(r.body);
		usleep(10000);
	}
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "shutting down\n");
	free(r.body);
	/* still held: still 503, and new calls are refused with UNAVAILABLE */
	assert_int_equal(http_do(port, "GET", "/readyz", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 503);
	free(r.body);
	assert_int_equal(http_do(port, "GET", "/livez", NULL, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	free(r.body);
	assert_int_equal(http_do(port, "POST", "/v1/Ping", NULL, "{}", &r), 0);
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.body, "UNAVAILABLE"));
	free(r.body);
	assert_true(waitpid(b.pid, NULL, WNOHANG) == 0); /* mqd is still there */

	/* let the commit go: the push in flight is answered OK, mqd exits 0 */
	assert_int_equal(unlink(hold), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	if (hp.status != 200)
		fail_msg("the push drained at shutdown got HTTP %d: %s", hp.status, hp.body);
	assert_int_equal(mqtest_broker_stop(&b), 0);

	/* and it was durable */
	mqtest_broker_restart(&b, "--http-listen", "http://127.0.0.1:0", NULL);
	port = log_port(b.log);
	{
		fixture f2 = {.port = port};
		j = api_ok(&f2, "GetQueue", "{\"name\":\"sd\"}");
	}
	assert_int_equal(
	    jstr_u64(json_object_get(json_object_get(j, "queue"), "stats"), "pushed_total"), 1);
	json_decref(j);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
	unlink(marker);
}

static void test_http_readyz_starting(void **state)
{
	const char *mqd = getenv("MQD");
	char dir[256], hold[400], marker[420], asan_old[600], logf[300], listen[300], data[300],
	    http[64];
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	http_resp r;
	pid_t pid;
	int fd, port, i, status = -1;

	(void)state;
	assert_non_null(mqd);
	/* a free loopback port for the HTTP listener */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);

	mqtest_tmpdir(dir, sizeof(dir));
	snprintf(hold, sizeof(hold), "%s/hold", dir);
	snprintf(marker, sizeof(marker), "%s.held", hold);
	snprintf(logf, sizeof(logf), "%s/mqd.log", dir);
	snprintf(listen, sizeof(listen), "--listen=ipc://%s/mq.sock", dir);
	snprintf(data, sizeof(data), "--data-dir=%s/data", dir);
	snprintf(http, sizeof(http), "--http-listen=http://127.0.0.1:%d", port);
	touch(hold); /* held from the first commit: store_open's */
	mqtest_faultshim_env(hold, asan_old, sizeof(asan_old));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int lfd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (lfd >= 0) {
			dup2(lfd, 1);
			dup2(lfd, 2);
			close(lfd);
		}
		execl(mqd, mqd, listen, data, http, (char *)NULL);
		_exit(127);
	}
	mqtest_faultshim_clear(asan_old);
	wait_file(marker);
	/* storage is not open yet: no listener, /readyz is refused */
	assert_int_equal(http_do(port, "GET", "/readyz", NULL, NULL, &r), -1);
	assert_true(waitpid(pid, NULL, WNOHANG) == 0);
	/* let it open: /readyz becomes 200 */
	assert_int_equal(unlink(hold), 0);
	for (i = 0; i < 1000 * mqtest_time_mult(); i++) {
		if (http_do(port, "GET", "/readyz", NULL, NULL, &r) == 0) {
			if (r.status == 200)
				break;
			free(r.body);
			r.status = -1;
		}
		usleep(10000);
	}
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ready\n");
	free(r.body);
	assert_int_equal(kill(pid, SIGTERM), 0);
	for (i = 0; i < 1000 * mqtest_time_mult(); i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(10000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		kill(pid, SIGKILL);
		fail_msg("mqd did not exit cleanly (status %d)", status);
	}
	mqtest_rmtree(dir);
}

/* ---- docs/http.md's curl examples ------------------------------------------- */

static void test_http_doc_examples(void **state)
{
	fixture *f = *state;
	const char *doc = getenv("MQ_HTTP_DOC");
	char cmd[4096];
	int rv;

	/* curl comes with scripts/deps.sh: a missing one is a failure, not a skip. */
	if (doc == NULL)
		fail_msg("MQ_HTTP_DOC is not set");
	if (system("command -v curl >/dev/null 2>&1") != 0)
		fail_msg("curl is missing (scripts/deps.sh installs it)");
	/* Every line of a ```sh block that starts with "curl" runs against
	 * this broker ($MQ_HTTP); curl -f makes an HTTP error fail it. */
	snprintf(cmd, sizeof(cmd),
	         "export MQ_HTTP=http://127.0.0.1:%d; "
	         "awk '/^```sh/{on=1;next} /^```/{on=0} on && /^curl/' '%s' > '%s/examples.sh' && "
	         "test -s '%s/examples.sh' && sh -e '%s/examples.sh' > '%s/examples.out' 2>&1",
	         f->port, doc, f->broker.dir, f->broker.dir, f->broker.dir, f->broker.dir);
	rv = system(cmd);
	if (rv != 0) {
		char out[4096] = "";
		mqtest_run(out, sizeof(out), "cat '%s/examples.out'", f->broker.dir);
		fail_msg("docs/http.md examples failed (%d): %s", rv, out);
	}
}

/* ---- --log-format json; no payloads in debug request logs ------------------- */

static void test_http_json_log(void **state)
{
	fixture *f = *state;
	char line[4096];
	int lines = 0, requests = 0;
	FILE *log;

	/* "SECRETPAYLOAD42" in base64, pushed over HTTP and nng; also a failing
	 * push whose error names the payload's field. */
	json_decref(api_ok(
	    f, "Push", "{\"queue\":\"jl\",\"messages\":[{\"payload\":\"U0VDUkVUUEFZTE9BRDQy\"}]}"));
	if (f->mqctl != NULL)
		assert_int_equal(mqtest_run(f->out, sizeof(f->out),
		                            "'%s' --url '%s' push jl SECRETPAYLOAD42", f->mqctl,
		                            f->broker.url),
		                 0);
	api_err(f, "Push",
	        "{\"queue\":\"bad name\",\"messages\":[{\"payload\":\"U0VDUkVUUEFZTE9BRDQy\"}]}",
	        400, "INVALID_ARGUMENT");
	json_decref(api_ok(f, "Pull", "{\"queue\":\"jl\",\"max_messages\":2}"));
	assert_int_equal(mqtest_broker_stop(&f->broker), 0);

	log = fopen(f->broker.log, "r");
	assert_non_null(log);
	while (fgets(line, sizeof(line), log) != NULL) {
		json_error_t jerr;
		json_t *j = json_loads(line, 0, &jerr);
		if (j == NULL)
			fail_msg("log line is not JSON (%s): %s", jerr.text, line);
		assert_true(json_is_string(json_object_get(j, "ts")));
		assert_true(json_is_string(json_object_get(j, "level")));
		assert_true(json_is_string(json_object_get(j, "msg")));
		if (strstr(json_string_value(json_object_get(j, "msg")), "request Push") != NULL)
			requests++;
		json_decref(j);
		assert_null(strstr(line, "SECRETPAYLOAD42"));
		assert_null(strstr(line, "U0VDUkVUUEFZTE9BRDQy"));
		lines++;
	}
	fclose(log);
	assert_true(lines > 3);
	assert_true(requests >= 2); /* debug request logs were on */
}

static int setup_json_log(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	FILE *log;
	char line[1024];

	assert_non_null(f);
	f->mqctl = getenv("MQCTL");
	mqtest_broker_start(&f->broker, "--http-listen", "http://127.0.0.1:0", "--log-format",
	                    "json", "--log-level", "debug", NULL);
	log = fopen(f->broker.log, "r");
	assert_non_null(log);
	while (fgets(line, sizeof(line), log) != NULL) {
		char *p = strstr(line, "http listening on http://127.0.0.1:");
		if (p != NULL)
			f->port = atoi(p + strlen("http listening on http://127.0.0.1:"));
	}
	fclose(log);
	assert_true(f->port > 0);
	*state = f;
	return 0;
}

static int teardown_stopped(void **state)
{
	fixture *f = *state;

	mqtest_broker_cleanup(&f->broker);
	free(f);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_http_push_pull_ack_nack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_long_poll, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_admin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_metrics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_health, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_dashboard_files, setup, teardown),
	    cmocka_unit_test(test_http_readyz_shutdown),
	    cmocka_unit_test(test_http_readyz_starting),
	    cmocka_unit_test_setup_teardown(test_http_doc_examples, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_json_log, setup_json_log, teardown_stopped),
	};

	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
