/*
 * status_page.h — the status page's HTML (status_page.c): served at GET /
 * and GET /status on the metrics port (metrics_http.h), it polls
 * /status.json (status_json.h). Self-contained: no external resource.
 */
#ifndef OKV_SERVER_STATUS_PAGE_H
#define OKV_SERVER_STATUS_PAGE_H

#include <stddef.h>

/* The page (borrowed, static: never freed; built on the first call) and
 * its length in *len when len is not NULL; NULL on out of memory. Any
 * thread. */
const char *status_page_html(size_t *len);

#endif
