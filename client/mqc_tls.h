/* SPDX-License-Identifier: MIT */
/* mqc_tls.h: the client's TLS side (tls.c), for client.c. */
#ifndef MQC_TLS_H
#define MQC_TLS_H

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "mqc.h"

/* mqc_tls_url tells whether url uses TLS (tls+tcp://...). */
bool mqc_tls_url(const char *url);

/* mqc_tls_setup gives dialer d the TLS config of the options when url uses
 * TLS (*out: a reference for mqc_tls_diagnose, NULL otherwise; free with
 * nng_tls_config_free). The server name checked (tls_server_name, else the
 * URL's host) goes to name. Returns MQ_OK or an error with its message set. */
mq_status mqc_tls_setup(nng_dialer d, const char *url, const mq_client_opts *o,
                        nng_tls_config **out, char *name, size_t name_len);

/* mqc_tls_diagnose dials url once with tc and runs the TLS handshake and
 * the SP header exchange, within timeout_ms; returns the nng error (0 when
 * a connection would come up). Blocking: only from synchronous calls. */
int mqc_tls_diagnose(const char *url, nng_tls_config *tc, int32_t timeout_ms);

#endif
