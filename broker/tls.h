/* SPDX-License-Identifier: MIT */
/* tls.h: TLS configuration of mqd's tls+tcp:// listeners (tls.c). */
#ifndef BRK_TLS_H
#define BRK_TLS_H

#include <stdbool.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "config.h"

/* brk_tls_url tells whether a listen URL uses TLS (tls+tcp://, wss://). */
bool brk_tls_url(const char *url);

/* brk_tls_client_auth is the client-certificate mode of the settings. */
nng_tls_auth_mode brk_tls_client_auth(const brk_config *cfg);

/* brk_tls_server_open builds the server TLS config when some listener is
 * tls+tcp:// (*out NULL otherwise). Returns 0, or -1 with the reason
 * logged. Free with nng_tls_config_free. */
int brk_tls_server_open(const brk_config *cfg, nng_tls_config **out);

/* brk_tls_probe_config makes the client config the listener watchdog
 * dials tls+tcp:// listeners with (no verification). */
int brk_tls_probe_config(nng_tls_config **out);

#endif
