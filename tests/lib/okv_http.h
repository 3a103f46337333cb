/*
 * okv_http.h — HTTP/1.1 over a plain loopback socket, for the tests of the
 * metrics port (/metrics, the status page) and of the Prometheus that
 * scrapes it.
 */
#ifndef OKV_TEST_HTTP_H
#define OKV_TEST_HTTP_H

#include <stddef.h>

/* A connected socket to "host:port" (IPv4 loopback), or -1. */
int okv_http_connect(const char *hostport);

/* Sends len bytes of req and reads until the server closes (each wait
 * bounded by 10 s). The whole answer (status line, headers, body), NUL
 * terminated and malloc'd, or NULL if the connection failed. */
char *okv_http_exchange(const char *hostport, const void *req, size_t len);

/* GET path with "Connection: close": the body of a 200 answer (malloc'd),
 * or NULL for any other answer or none. The Content-Type value goes into
 * type when type is not NULL. */
char *okv_http_get(const char *hostport, const char *path, char *type, size_t type_cap);

#endif
