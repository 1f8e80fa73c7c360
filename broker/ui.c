/* SPDX-License-Identifier: MIT */
/*
 * ui.c: serves the dashboard (broker/ui/, embedded by embed.py) on mqd's
 * HTTP listener: GET / and GET /ui/ answer index.html, GET /ui/<file> the
 * other files. The files are static and public; the page reads everything
 * through POST /v1/<Method> with the user's token, so what it may see and
 * do is what the token may.
 *
 * Headers: the Content-Type of the file, a strong ETag (If-None-Match
 * answers 304) with "Cache-Control: no-cache" (a browser revalidates each
 * load, cheaply, and never runs a stale page against a newer mqd), and a
 * strict Content-Security-Policy: scripts, styles and images from this
 * origin only, no inline script or style, no framing, API calls to this
 * origin only.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "ui.h"

const char brk_ui_csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

const brk_ui_asset *brk_ui_find(const char *uri)
{
	size_t n = strcspn(uri, "?#");

	if ((n == 1 && uri[0] == '/') || (n == 3 && strncmp(uri, "/ui", 3) == 0) ||
	    (n == 4 && strncmp(uri, "/ui/", 4) == 0))
		uri = "/ui/index.html", n = strlen(uri);
	for (size_t i = 0; i < brk_ui_n_assets; i++)
		if (strlen(brk_ui_assets[i].path) == n &&
		    strncmp(brk_ui_assets[i].path, uri, n) == 0)
			return &brk_ui_assets[i];
	return NULL;
}

/* etag_matches: If-None-Match holds the tag ("*", or a list of tags). */
static bool etag_matches(const char *inm, const char *etag)
{
	size_t n = strlen(etag);

	if (inm == NULL)
		return false;
	for (const char *p = inm; *p != '\0';) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2; /* weak comparison, as If-None-Match asks */
		if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

static void ui_cb(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	const brk_ui_asset *a = brk_ui_find(nng_http_req_get_uri(req));
	nng_http_res *res;
	bool fresh;
	int rv;

	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	if (a == NULL) {
		static const char msg[] = "not found: the dashboard is at /\n";
		if ((rv = nng_http_res_set_status(res, NNG_HTTP_STATUS_NOT_FOUND)) != 0 ||
		    (rv = nng_http_res_set_header(res, "Content-Type",
		                                  "text/plain; charset=utf-8")) != 0 ||
		    (rv = nng_http_res_set_header(res, "X-Content-Type-Options", "nosniff")) != 0 ||
		    (rv = nng_http_res_set_data(res, msg, sizeof(msg) - 1)) != 0)
			goto fail;
		nng_aio_set_output(aio, 0, res);
		nng_aio_finish(aio, 0);
		return;
	}
	fresh = etag_matches(nng_http_req_get_header(req, "If-None-Match"), a->etag);
	if ((rv = nng_http_res_set_status(res, fresh ? NNG_HTTP_STATUS_NOT_MODIFIED
	                                             : NNG_HTTP_STATUS_OK)) != 0 ||
	    (rv = nng_http_res_set_header(res, "ETag", a->etag)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Cache-Control", "no-cache")) != 0 ||
	    (rv = nng_http_res_set_header(res, "Content-Security-Policy", brk_ui_csp)) != 0 ||
	    (rv = nng_http_res_set_header(res, "X-Content-Type-Options", "nosniff")) != 0 ||
	    (rv = nng_http_res_set_header(res, "X-Frame-Options", "DENY")) != 0 ||
	    (rv = nng_http_res_set_header(res, "Referrer-Policy", "no-referrer")) != 0 ||
	    (rv = nng_http_res_set_header(res, "Cross-Origin-Opener-Policy", "same-origin")) != 0 ||
	    (rv = nng_http_res_set_header(res, "Cross-Origin-Resource-Policy", "same-origin")) != 0)
		goto fail;
	if (!fresh && ((rv = nng_http_res_set_header(res, "Content-Type", a->content_type)) != 0 ||
	               (rv = nng_http_res_set_data(res, a->data, a->len)) != 0))
		goto fail;
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
	return;
fail:
	nng_http_res_free(res);
	nng_aio_finish(aio, rv);
}

static int add(nng_http_server *srv, const char *path, bool tree)
{
	nng_http_handler *hd;
	int rv;

	if ((rv = nng_http_handler_alloc(&hd, path, ui_cb)) != 0)
		return rv;
	if ((rv = nng_http_handler_set_method(hd, "GET")) != 0 ||
	    (tree && (rv = nng_http_handler_set_tree(hd)) != 0) ||
	    (rv = nng_http_server_add_handler(srv, hd)) != 0) {
		nng_http_handler_free(hd);
		return rv;
	}
	return 0;
}

int brk_ui_add_handlers(nng_http_server *srv)
{
	int rv;

	if ((rv = add(srv, "/", false)) != 0 || (rv = add(srv, "/ui", true)) != 0)
		return rv;
	return 0;
}
