/* SPDX-License-Identifier: MIT */
/*
 * test_tls.c: mqd on tls+tcp:// with certificates made at test time
 * (tests/gen-certs.sh, openssl CLI): push/pull over TLS, a wrong CA and a
 * wrong server name refused with a clear error, mutual TLS (required: no
 * client certificate or one from another CA refused), mqctl's --tls-*
 * flags and MQ_TLS_* variables, and mqd's refusal of a TLS listener
 * without a certificate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mq/mq.h"
#include "mqtest.h"

static char certs[256]; /* the certificates' temp dir */

static void cert_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", certs, name);
}

/* tls_port reads the port mqd bound for its tls+tcp:// listener. */
static int tls_port(const mqtest_broker *b)
{
	char out[64] = "";
	int port = 0;

	assert_int_equal(
	    mqtest_run(out, sizeof(out),
	               "sed -n 's/.*listening on tls+tcp:.*(port \\([0-9]*\\)).*/\\1/p' "
	               "%s | tail -1",
	               b->log),
	    0);
	port = atoi(out);
	if (port <= 0)
		fail_msg("no tls+tcp port in %s", b->log);
	return port;
}

/* start_tls starts mqd with an ipc:// and a tls+tcp:// listener plus the
 * extra flags (NULL-ended, at most 4) and writes the TLS URL. */
static void start_tls(mqtest_broker *b, char *url, size_t len, const char *a1, const char *a2)
{
	char cert[320], key[320], fc[400], fk[400];

	cert_path(cert, sizeof(cert), "server.crt");
	cert_path(key, sizeof(key), "server.key");
	snprintf(fc, sizeof(fc), "--tls-cert=%s", cert);
	snprintf(fk, sizeof(fk), "--tls-key=%s", key);
	mqtest_broker_start(b, "--listen=tls+tcp://127.0.0.1:0", fc, fk, a1, a2, NULL);
	snprintf(url, len, "tls+tcp://127.0.0.1:%d", tls_port(b));
}

/* open_tls opens a client with the given CA, client cert/key and server
 * name (NULL = not set). */
static mq_status open_tls(mq_client **c, const char *url, const char *ca, const char *cert,
                          const char *key, const char *name)
{
	char pca[320], pcert[320], pkey[320];
	mq_client_opts o;

	mq_client_opts_init(&o);
	o.timeout_ms = 3000;
	if (ca != NULL) {
		cert_path(pca, sizeof(pca), ca);
		o.tls_ca_file = pca;
	}
	if (cert != NULL) {
		cert_path(pcert, sizeof(pcert), cert);
		cert_path(pkey, sizeof(pkey), key);
		o.tls_cert_file = pcert;
		o.tls_key_file = pkey;
	}
	o.tls_server_name = name;
	return mq_client_open(c, url, &o);
}

static mq_status ping(mq_client *c)
{
	return mq_ping(c, NULL);
}

static int setup(void **state)
{
	(void)state;
	mqtest_tmpdir(certs, sizeof(certs));
	if (mqtest_run(NULL, 0, "sh '%s' '%s' 2>&1", getenv("MQ_GENCERTS"), certs) != 0) {
		fprintf(stderr, "gen-certs.sh failed (is openssl installed? scripts/deps.sh)\n");
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	mqtest_rmtree(certs);
	return 0;
}

static void test_tls_push_pull(void **state)
{
	mqtest_broker b;
	char url[128];
	mq_client *c;
	mq_message *m[1];
	size_t n = 0, len;
	uint64_t id;
	mq_pull_opts po = {.wait_ms = 2000};

	(void)state;
	start_tls(&b, url, sizeof(url), NULL, NULL);
	assert_mq_ok(open_tls(&c, url, "ca.crt", NULL, NULL, "localhost"));
	assert_mq_ok(mq_push(c, "tls.q", "secret payload", 14, NULL, &id, NULL));
	assert_mq_ok(mq_pull(c, "tls.q", &po, m, 1, &n));
	assert_int_equal(n, 1);
	assert_memory_equal(mq_message_payload(m[0], &len), "secret payload", 14);
	assert_int_equal(len, 14);
	assert_mq_ok(mq_ack(c, m[0]));
	mq_message_free(m[0]);
	mq_client_close(c);

	/* Without a server name the URL's host is checked against the
	 * certificate: 127.0.0.1 is not a DNS name in it (mbed TLS matches DNS
	 * names only), so the link is refused, naming it. (A URL with
	 * "localhost" would pass, but where localhost resolves to ::1 first
	 * it would not reach mqd's 127.0.0.1 listener at all.) */
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", tls_port(&b));
	assert_mq_ok(open_tls(&c, url, "ca.crt", NULL, NULL, NULL));
	assert_mq_status(ping(c), MQ_UNAVAILABLE);
	if (strstr(mq_errmsg(), "127.0.0.1") == NULL)
		fail_msg("unclear error: %s", mq_errmsg());
	mq_client_close(c);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

static void test_tls_wrong_ca_refused(void **state)
{
	mqtest_broker b;
	char url[128];
	mq_client *c;

	(void)state;
	start_tls(&b, url, sizeof(url), NULL, NULL);
	assert_mq_ok(open_tls(&c, url, "other-ca.crt", NULL, NULL, "localhost"));
	assert_mq_status(ping(c), MQ_UNAVAILABLE);
	if (strstr(mq_errmsg(), "TLS connection") == NULL || strstr(mq_errmsg(), "CA") == NULL)
		fail_msg("unclear error: %s", mq_errmsg());
	mq_client_close(c);

	/* A certificate that does not name the server is refused too. */
	assert_mq_ok(open_tls(&c, url, "ca.crt", NULL, NULL, "not-the-broker.example"));
	assert_mq_status(ping(c), MQ_UNAVAILABLE);
	if (strstr(mq_errmsg(), "not-the-broker.example") == NULL)
		fail_msg("unclear error: %s", mq_errmsg());
	mq_client_close(c);

	/* No CA file at all: a usage error at open, not an unverified link. */
	assert_mq_status(open_tls(&c, url, NULL, NULL, NULL, "localhost"), MQ_INVALID_ARGUMENT);
	assert_non_null(strstr(mq_errmsg(), "tls_ca_file"));
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

static void test_tls_mutual(void **state)
{
	mqtest_broker b;
	char url[128], ca[320], flag[400];
	mq_client *c, *good;

	(void)state;
	cert_path(ca, sizeof(ca), "ca.crt");
	snprintf(flag, sizeof(flag), "--tls-ca=%s", ca);
	start_tls(&b, url, sizeof(url), flag, "--tls-client-auth=required");

	/* No client certificate: refused, clearly. */
	assert_mq_ok(open_tls(&c, url, "ca.crt", NULL, NULL, "localhost"));
	assert_mq_status(ping(c), MQ_UNAVAILABLE);
	if (strstr(mq_errmsg(), "client certificate") == NULL)
		fail_msg("unclear error: %s", mq_errmsg());
	mq_client_close(c);

	/* A client certificate from another CA: refused. */
	assert_mq_ok(open_tls(&c, url, "ca.crt", "other.crt", "other.key", "localhost"));
	assert_mq_status(ping(c), MQ_UNAVAILABLE);
	mq_client_close(c);

	/* The right one: served, and the broker kept serving throughout. */
	assert_mq_ok(open_tls(&good, url, "ca.crt", "client.crt", "client.key", "localhost"));
	assert_mq_ok(ping(good));
	assert_mq_ok(mq_push(good, "mtls.q", "x", 1, NULL, NULL, NULL));
	mq_client_close(good);

	/* A cert without its key is a usage error. */
	{
		mq_client_opts o;
		char pca[320], pcert[320];
		mq_client_opts_init(&o);
		cert_path(pca, sizeof(pca), "ca.crt");
		cert_path(pcert, sizeof(pcert), "client.crt");
		o.tls_ca_file = pca;
		o.tls_cert_file = pcert;
		assert_mq_status(mq_client_open(&c, url, &o), MQ_INVALID_ARGUMENT);
	}
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

static void test_tls_mqctl(void **state)
{
	mqtest_broker b;
	char url[128], ca[320], flag[400], out[4096];
	const char *mqctl = getenv("MQCTL");

	(void)state;
	assert_non_null(mqctl);
	cert_path(ca, sizeof(ca), "ca.crt");
	snprintf(flag, sizeof(flag), "--tls-ca=%s", ca);
	start_tls(&b, url, sizeof(url), flag, NULL); /* --tls-ca alone: client certs required */

	/* Flags. */
	assert_int_equal(
	    mqtest_run(out, sizeof(out),
	               "%s --url %s --tls-ca %s/ca.crt --tls-cert %s/client.crt "
	               "--tls-key %s/client.key --tls-server-name localhost push tq hi",
	               mqctl, url, certs, certs, certs),
	    0);
	/* Variables. */
	assert_int_equal(mqtest_run(out, sizeof(out),
	                            "MQ_TLS_CA=%s/ca.crt MQ_TLS_CERT=%s/client.crt "
	                            "MQ_TLS_KEY=%s/client.key MQ_TLS_SERVER_NAME=localhost "
	                            "%s --url %s --json queue stats tq",
	                            certs, certs, certs, mqctl, url),
	                 0);
	assert_non_null(strstr(out, "\"ready\": 1"));
	/* No client certificate: exit 3 (unreachable) and the reason. */
	assert_int_equal(mqtest_run(out, sizeof(out),
	                            "%s --url %s --timeout 1500 --tls-ca %s/ca.crt "
	                            "--tls-server-name localhost ping 2>&1",
	                            mqctl, url, certs),
	                 3);
	if (strstr(out, "TLS connection") == NULL)
		fail_msg("mqctl said: %s", out);
	assert_int_equal(mqtest_broker_stop(&b), 0);
	mqtest_broker_cleanup(&b);
}

static void test_tls_mqd_config_errors(void **state)
{
	char out[4096];
	const char *mqd = getenv("MQD");

	(void)state;
	/* A TLS listener without a certificate: mqd does not start. */
	assert_int_not_equal(mqtest_run(out, sizeof(out),
	                                "%s --listen tls+tcp://127.0.0.1:0 --data-dir %s/nodata "
	                                "2>&1",
	                                mqd, certs),
	                     0);
	assert_non_null(strstr(out, "--tls-cert and --tls-key"));
	/* A missing key file: named in the error. */
	assert_int_not_equal(mqtest_run(out, sizeof(out),
	                                "%s --listen tls+tcp://127.0.0.1:0 --data-dir %s/nodata "
	                                "--tls-cert %s/server.crt --tls-key %s/missing.key 2>&1",
	                                mqd, certs, certs, certs),
	                     0);
	assert_non_null(strstr(out, "missing.key"));
	/* Client auth without a CA to check it. */
	assert_int_not_equal(mqtest_run(out, sizeof(out),
	                                "%s --listen tls+tcp://127.0.0.1:0 --data-dir %s/nodata "
	                                "--tls-cert %s/server.crt --tls-key %s/server.key "
	                                "--tls-client-auth required 2>&1",
	                                mqd, certs, certs, certs),
	                     0);
	assert_non_null(strstr(out, "needs --tls-ca"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tls_push_pull),
	    cmocka_unit_test(test_tls_wrong_ca_refused),
	    cmocka_unit_test(test_tls_mutual),
	    cmocka_unit_test(test_tls_mqctl),
	    cmocka_unit_test(test_tls_mqd_config_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
