/*
 * metrics_http.h — the /metrics endpoint: a minimal HTTP/1.1 server on its
 * own thread, serving metrics_render's text.
 *
 * One poll loop, up to METRICS_HTTP_MAX_CONNS connections at once, one
 * request per connection (every answer says `Connection: close`):
 *   GET (or HEAD) /metrics      200, text/plain; version=0.0.4
 *   GET / or /status            200, the status page (status_page.h)
 *   GET /status.json            200, application/json from the function
 *                               given to metrics_http_set_status; 503
 *                               before one is given
 *   another path                404
 *   another method              405 (Allow: GET, HEAD)
 *   a request line or headers over METRICS_HTTP_MAX_REQUEST bytes, bytes
 *   that are not HTTP, or a request not whole within
 *   METRICS_HTTP_TIMEOUT_MS                     400 (or just closed)
 * Nothing here blocks: sockets are non-blocking, and a slow or silent
 * client only holds its own slot until its deadline. The node's other
 * threads never wait for this one; a scrape takes the registry's mutex
 * only to render (metrics.h).
 */
#ifndef OKV_SERVER_METRICS_HTTP_H
#define OKV_SERVER_METRICS_HTTP_H

#include "errors.h"
#include "metrics.h"

#define METRICS_HTTP_MAX_REQUEST 8192
#define METRICS_HTTP_MAX_CONNS 16
#define METRICS_HTTP_TIMEOUT_MS 5000

typedef struct metrics_http metrics_http;

/* Binds address (HOST:PORT, [V6]:PORT; port 0 picks a free one) and
 * starts the thread serving reg (borrowed: it must outlive the server).
 * OKV_EINVAL for an address that does not parse, OKV_EUNAVAILABLE if it
 * cannot be bound, OKV_ENOMEM. */
int metrics_http_new(metrics_http **out, metrics_registry *reg, const char *address,
                     okv_error *err);

/* The address bound, e.g. "127.0.0.1:9400" (borrowed, as long as h). */
const char *metrics_http_address(const metrics_http *h);

/* GET /status.json's body: malloc'd (the server frees it), its length in
 * *len; NULL answers 503. Called on the server's thread. */
typedef char *(*metrics_http_status_fn)(void *ctx, size_t *len);

/* Sets (fn NULL: clears) what answers /status.json; ctx is borrowed and
 * must outlive the server, or a later call that clears it. Any thread. */
void metrics_http_set_status(metrics_http *h, metrics_http_status_fn fn, void *ctx);

/* Stops the thread, closes every connection and the socket, frees.
 * Accepts NULL. */
void metrics_http_free(metrics_http *h);

#endif
