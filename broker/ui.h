/* SPDX-License-Identifier: MIT */
/*
 * ui.h: the web dashboard's files (broker/ui/), compiled into mqd by
 * broker/ui/embed.py, and their HTTP handlers on mqd's HTTP listener
 * (docs/http.md, "Dashboard").
 */
#ifndef BRK_UI_H
#define BRK_UI_H

#include <stddef.h>

/* One embedded file, served at path. */
typedef struct brk_ui_asset {
	const char *path;         /* "/ui/app.js" */
	const char *content_type; /* "text/javascript; charset=utf-8" */
	const unsigned char *data;
	size_t len;
	const char *etag; /* quoted: "\"0123456789abcdef\"" */
} brk_ui_asset;

/* Generated (ui_assets.c). */
extern const brk_ui_asset brk_ui_assets[];
extern const size_t brk_ui_n_assets;

/* brk_ui_find returns the asset of a request path ("/" and "/ui" are the
 * page itself; a query string is ignored), or NULL. */
const brk_ui_asset *brk_ui_find(const char *uri);

/* brk_ui_csp is the Content-Security-Policy of every dashboard file. */
extern const char brk_ui_csp[];

struct nng_http_server;
/* brk_ui_add_handlers adds GET / and GET /ui/... (public: the files hold no
 * data; every API call they make is authenticated like any other). Returns
 * 0 or an nng error. */
int brk_ui_add_handlers(struct nng_http_server *srv);

#endif
