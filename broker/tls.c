/* SPDX-License-Identifier: MIT */
/*
 * tls.c: the TLS configuration of mqd's tls+tcp:// listeners (nng's TLS,
 * which Debian builds with mbed TLS 2.28: TLS 1.2). One server config is
 * shared by every tls+tcp:// listener: the certificate and key of
 * --tls-cert/--tls-key, and with --tls-ca the CAs that verify client
 * certificates (--tls-client-auth). See docs/security.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "log.h"
#include "tls.h"

#define PEM_MAX (1u << 20)

/* read_pem reads a whole PEM file, NUL-terminated (mbed TLS wants it). */
static char *read_pem(const char *what, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL) {
		brk_err("cannot read %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	buf = malloc(PEM_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, PEM_MAX, f);
	fclose(f);
	if (n == 0 || n == PEM_MAX) {
		brk_err("%s %s: %s", what, path, n == 0 ? "empty" : "larger than 1 MiB");
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

bool brk_tls_url(const char *url)
{
	return strncmp(url, "tls+", 4) == 0 || strncmp(url, "wss", 3) == 0;
}

nng_tls_auth_mode brk_tls_client_auth(const brk_config *cfg)
{
	const char *m = cfg->tls_client_auth;

	if (strcmp(m, "required") == 0)
		return NNG_TLS_AUTH_MODE_REQUIRED;
	if (strcmp(m, "optional") == 0)
		return NNG_TLS_AUTH_MODE_OPTIONAL;
	if (strcmp(m, "none") == 0)
		return NNG_TLS_AUTH_MODE_NONE;
	return cfg->tls_ca[0] != '\0' ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE;
}

int brk_tls_server_open(const brk_config *cfg, nng_tls_config **out)
{
	nng_tls_config *tc = NULL;
	nng_tls_auth_mode mode = brk_tls_client_auth(cfg);
	bool any = false;
	char *cert = NULL, *key = NULL;
	int rv;

	*out = NULL;
	for (int i = 0; i < cfg->n_listen; i++)
		any = any || brk_tls_url(cfg->listen[i]);
	if (!any) {
		if (cfg->tls_cert[0] != '\0' || cfg->tls_ca[0] != '\0')
			brk_warn("--tls-cert/--tls-ca are set but no listener is tls+tcp://: "
			         "they are not used");
		return 0;
	}
	if (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0') {
		brk_err("a tls+tcp:// listener needs --tls-cert and --tls-key");
		return -1;
	}
	if (mode != NNG_TLS_AUTH_MODE_NONE && cfg->tls_ca[0] == '\0') {
		brk_err(
		    "--tls-client-auth=%s needs --tls-ca (the CAs that sign client certificates)",
		    cfg->tls_client_auth);
		return -1;
	}
	if ((cert = read_pem("certificate", cfg->tls_cert)) == NULL ||
	    (key = read_pem("key", cfg->tls_key)) == NULL) {
		rv = -1;
		goto out;
	}
	if ((rv = nng_tls_config_alloc(&tc, NNG_TLS_MODE_SERVER)) != 0) {
		brk_err("TLS: %s", nng_strerror(rv));
		goto out;
	}
	if ((rv = nng_tls_config_own_cert(tc, cert, key, NULL)) != 0) {
		brk_err("TLS: certificate %s with key %s: %s", cfg->tls_cert, cfg->tls_key,
		        nng_strerror(rv));
		goto out;
	}
	if (cfg->tls_ca[0] != '\0' && (rv = nng_tls_config_ca_file(tc, cfg->tls_ca)) != 0) {
		brk_err("TLS: CA file %s: %s", cfg->tls_ca, nng_strerror(rv));
		goto out;
	}
	if ((rv = nng_tls_config_auth_mode(tc, mode)) != 0) {
		brk_err("TLS: client auth mode: %s", nng_strerror(rv));
		goto out;
	}
	brk_info("TLS (%s): certificate %s, client certificates %s", nng_tls_engine_description(),
	         cfg->tls_cert,
	         mode == NNG_TLS_AUTH_MODE_REQUIRED   ? "required"
	         : mode == NNG_TLS_AUTH_MODE_OPTIONAL ? "optional"
	                                              : "not asked for");
	*out = tc;
	tc = NULL;
out:
	if (key != NULL) {
		memset(key, 0, strlen(key));
		free(key);
	}
	free(cert);
	if (tc != NULL)
		nng_tls_config_free(tc);
	return rv == 0 ? 0 : -1;
}

int brk_tls_probe_config(nng_tls_config **out)
{
	nng_tls_config *tc;
	int rv;

	if ((rv = nng_tls_config_alloc(&tc, NNG_TLS_MODE_CLIENT)) != 0)
		return rv;
	/* The watchdog only asks whether the listener still accepts: it does
	 * not need to authenticate its own server. */
	if ((rv = nng_tls_config_auth_mode(tc, NNG_TLS_AUTH_MODE_NONE)) != 0) {
		nng_tls_config_free(tc);
		return rv;
	}
	*out = tc;
	return 0;
}
