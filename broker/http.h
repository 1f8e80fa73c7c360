/* SPDX-License-Identifier: MIT */
/*
 * http.h: mqd's HTTP listener (nng's HTTP server): the JSON API
 * (POST /v1/<Method>), GET /metrics, GET /livez and GET /readyz.
 * See docs/http.md.
 */
#ifndef BRK_HTTP_H
#define BRK_HTTP_H

#include <stdbool.h>

#include "broker.h"

typedef struct brk_http brk_http;

/* brk_http_open starts listening on cfg->http_listen (http://HOST:PORT;
 * port 0 picks one, logged). Returns 0 or -1 (logged). */
int brk_http_open(brk_http **out, const brk_config *cfg, brk_info *info);
/* brk_http_set_ready sets what /readyz answers. */
void brk_http_set_ready(brk_http *h, bool ready);
/* brk_http_quiesce makes /readyz answer 503 and new API calls UNAVAILABLE. */
void brk_http_quiesce(brk_http *h);
/* brk_http_close stops the listener; call after the writer has stopped
 * (every call in flight has then been answered). NULL is fine. */
void brk_http_close(brk_http *h);

#endif
