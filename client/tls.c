/* SPDX-License-Identifier: MIT */
/* tls.c: the client side of tls+tcp:// (mq_client_opts.tls_*): the TLS
 * config of the dialer, and a diagnosis of why no TLS connection comes up.
 * nng dials in the background and does not report why a dial failed, so
 * when a call finds no connection, mqc_tls_diagnose dials once itself and
 * runs the handshake to name the reason (unknown CA, no client
 * certificate...). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "mqc_tls.h"

#define PEM_MAX (1u << 20)

bool mqc_tls_url(const char *url)
{
	return strncmp(url, "tls+", 4) == 0 || strncmp(url, "wss://", 6) == 0;
}

static char *read_pem(const char *what, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL) {
		mqc_fail(MQ_INVALID_ARGUMENT, "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(PEM_MAX + 1)) == NULL) {
		fclose(f);
		mqc_fail(MQ_INTERNAL, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, PEM_MAX, f);
	fclose(f);
	if (n == 0 || n == PEM_MAX) {
		mqc_fail(MQ_INVALID_ARGUMENT, "%s %s: %s", what, path,
		         n == 0 ? "empty" : "larger than 1 MiB");
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* host_of writes the host of url ("tls+tcp://HOST:PORT", "[v6]" unbracketed). */
static void host_of(const char *url, char *out, size_t len)
{
	const char *h = strstr(url, "://"), *end;

	out[0] = '\0';
	if (h == NULL)
		return;
	h += 3;
	if (*h == '[') {
		h++;
		end = strchr(h, ']');
	} else {
		end = strrchr(h, ':');
	}
	if (end == NULL)
		end = h + strlen(h);
	snprintf(out, len, "%.*s", (int)(end - h), h);
}

mq_status mqc_tls_setup(nng_dialer d, const char *url, const mq_client_opts *o,
                        nng_tls_config **out, char *name, size_t name_len)
{
	nng_tls_config *tc = NULL;
	char *cert = NULL, *key = NULL;
	mq_status st = MQ_OK;
	int rv;

	*out = NULL;
	name[0] = '\0';
	if (!mqc_tls_url(url))
		return MQ_OK;
	if (o->tls_ca_file == NULL || o->tls_ca_file[0] == '\0')
		return mqc_fail(
		    MQ_INVALID_ARGUMENT,
		    "url \"%s\" uses TLS: set tls_ca_file (mqctl --tls-ca, MQ_TLS_CA) to "
		    "the CA that signed the broker's certificate",
		    url);
	if ((o->tls_cert_file == NULL) != (o->tls_key_file == NULL))
		return mqc_fail(MQ_INVALID_ARGUMENT,
		                "tls_cert_file and tls_key_file go together (both or neither)");
	if ((rv = nng_tls_config_alloc(&tc, NNG_TLS_MODE_CLIENT)) != 0)
		return mqc_fail(MQ_INTERNAL, "TLS: %s", nng_strerror(rv));
	if ((rv = nng_tls_config_auth_mode(tc, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
	    (rv = nng_tls_config_ca_file(tc, o->tls_ca_file)) != 0) {
		st = mqc_fail(MQ_INVALID_ARGUMENT, "TLS CA file %s: %s", o->tls_ca_file,
		              nng_strerror(rv));
		goto out;
	}
	/* nng checks no name unless told one: the URL's host by default. */
	if (o->tls_server_name != NULL && o->tls_server_name[0] != '\0')
		snprintf(name, name_len, "%s", o->tls_server_name);
	else
		host_of(url, name, name_len);
	if (name[0] != '\0' && (rv = nng_tls_config_server_name(tc, name)) != 0) {
		st = mqc_fail(MQ_INVALID_ARGUMENT, "TLS server name: %s", nng_strerror(rv));
		goto out;
	}
	if (o->tls_cert_file != NULL) {
		if ((cert = read_pem("TLS certificate", o->tls_cert_file)) == NULL ||
		    (key = read_pem("TLS key", o->tls_key_file)) == NULL) {
			st = MQ_INVALID_ARGUMENT;
			goto out;
		}
		if ((rv = nng_tls_config_own_cert(tc, cert, key, NULL)) != 0) {
			st = mqc_fail(MQ_INVALID_ARGUMENT, "TLS certificate %s with key %s: %s",
			              o->tls_cert_file, o->tls_key_file, nng_strerror(rv));
			goto out;
		}
	}
	if ((rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tc)) != 0) {
		st = mqc_fail(MQ_INVALID_ARGUMENT, "TLS: %s", nng_strerror(rv));
		goto out;
	}
	*out = tc; /* the dialer holds its own reference */
	tc = NULL;
out:
	if (key != NULL) {
		memset(key, 0, strlen(key));
		free(key);
	}
	free(cert);
	if (tc != NULL)
		nng_tls_config_free(tc);
	return st;
}

/* run waits for one aio operation; returns its result. */
static int run(nng_aio *aio)
{
	nng_aio_wait(aio);
	return nng_aio_result(aio);
}

int mqc_tls_diagnose(const char *url, nng_tls_config *tc, int32_t timeout_ms)
{
	nng_stream_dialer *d = NULL;
	nng_stream *s = NULL;
	nng_aio *aio = NULL;
	/* The SP header of a req0 peer: completing its exchange proves the
	 * whole TLS handshake, both sides' checks included. */
	uint8_t hdr[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0}, in[8];
	nng_iov iov;
	int rv;

	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0)
		return rv;
	nng_aio_set_timeout(aio, timeout_ms);
	if ((rv = nng_stream_dialer_alloc(&d, url)) != 0 ||
	    (rv = nng_stream_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tc)) != 0)
		goto out;
	nng_stream_dialer_dial(d, aio);
	if ((rv = run(aio)) != 0)
		goto out;
	s = nng_aio_get_output(aio, 0);
	iov.iov_buf = hdr;
	iov.iov_len = sizeof(hdr);
	nng_aio_set_iov(aio, 1, &iov);
	nng_stream_send(s, aio);
	if ((rv = run(aio)) != 0)
		goto out;
	iov.iov_buf = in;
	iov.iov_len = sizeof(in);
	nng_aio_set_iov(aio, 1, &iov);
	nng_stream_recv(s, aio);
	rv = run(aio);
out:
	if (s != NULL) {
		nng_stream_close(s);
		nng_stream_free(s);
	}
	if (d != NULL) {
		nng_stream_dialer_close(d);
		nng_stream_dialer_free(d);
	}
	nng_aio_free(aio);
	return rv;
}
