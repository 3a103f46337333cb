/*
 * metrics_http.c — see metrics_http.h.
 *
 * Each connection moves READ -> WRITE -> DRAIN -> closed. After the answer
 * is written the socket is shut for writing and what the client still
 * sends is read and dropped (DRAIN, bounded by the deadline): closing a
 * socket with unread input makes the kernel send RST, which can destroy
 * the answer in flight, e.g. the 400 to a client still sending an
 * oversized request.
 */
#define _DEFAULT_SOURCE   /* MSG_NOSIGNAL, accept flags */
#include "metrics_http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "status_page.h"
#include "thread_name.h"

enum conn_state { CONN_FREE, CONN_READ, CONN_WRITE, CONN_DRAIN };

typedef struct conn {
    enum conn_state state;
    int fd;
    uint64_t deadline_ms;
    char in[METRICS_HTTP_MAX_REQUEST];
    size_t in_len;
    char *out;
    size_t out_len, out_off;
} conn;

struct metrics_http {
    metrics_registry *reg;
    pthread_mutex_t mu;     /* guards status_fn, status_ctx */
    metrics_http_status_fn status_fn;
    void *status_ctx;
    int listen_fd;
    int wake[2];            /* a byte on wake[1] stops the thread */
    pthread_t thread;
    char address[128];
    conn conns[METRICS_HTTP_MAX_CONNS];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void conn_close(conn *c)
{
    if (c->state == CONN_FREE)
        return;
    close(c->fd);
    free(c->out);
    c->out = NULL;
    c->state = CONN_FREE;
}

/* ---- answers ------------------------------------------------------------------ */

#define TEXT_TYPE "text/plain; charset=utf-8"

/* Sets c's answer: a status line, the headers and body (copied or taken);
 * type NULL: the metrics text's for 200, plain text otherwise. */
static void answer_typed(conn *c, int status, const char *reason, const char *type,
                         const char *extra_headers, char *body, size_t body_len, int take_body,
                         int head_only)
{
    char hdr[512];
    if (!type)
        type = status == 200 ? METRICS_CONTENT_TYPE : TEXT_TYPE;
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, reason, type, body_len, extra_headers ? extra_headers : "");
    size_t send_body = head_only ? 0 : body_len;
    c->out = malloc((size_t)n + send_body);
    if (c->out) {
        memcpy(c->out, hdr, (size_t)n);
        if (send_body)
            memcpy(c->out + n, body, send_body);
        c->out_len = (size_t)n + send_body;
    } else {
        c->out_len = 0;   /* out of memory: just close */
    }
    if (take_body)
        free(body);
    c->out_off = 0;
    c->state = CONN_WRITE;
}

static void answer(conn *c, int status, const char *reason, const char *extra_headers,
                   char *body, size_t body_len, int take_body, int head_only)
{
    answer_typed(c, status, reason, NULL, extra_headers, body, body_len, take_body, head_only);
}

static void answer_text(conn *c, int status, const char *reason, const char *extra,
                        const char *text)
{
    answer(c, status, reason, extra, (char *)text, strlen(text), 0, 0);
}

/* The registry's text in a buffer grown until it fits (the registry can
 * grow between two renderings, hence the loop). */
static char *render(metrics_registry *reg, size_t *len)
{
    size_t cap = 64 * 1024;
    for (int tries = 0; tries < 4; tries++) {
        char *buf = malloc(cap);
        if (!buf)
            return NULL;
        size_t need = metrics_render(reg, buf, cap);
        if (need < cap) {
            *len = need;
            return buf;
        }
        free(buf);
        cap = need + 4096;
    }
    return NULL;
}

/* Bytes a request line or header may hold: printable ASCII, tab, CR, LF
 * (obs-text, bytes >= 0x80, is allowed in header values by RFC 9110). */
static int http_bytes(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 0x7f)
            return 0;
    }
    return 1;
}

/* c->in holds a whole head (request line and headers, `head` bytes):
 * decides the answer. */
static void handle_request(metrics_http *h, conn *c, size_t head)
{
    if (!http_bytes(c->in, head)) {
        answer_text(c, 400, "Bad Request", NULL, "bad request\n");
        return;
    }
    char line[METRICS_HTTP_MAX_REQUEST + 1];
    size_t ll = 0;
    while (ll < head && c->in[ll] != '\n')
        ll++;
    memcpy(line, c->in, ll);
    line[ll] = '\0';
    if (ll && line[ll - 1] == '\r')
        line[--ll] = '\0';
    /* METHOD SP TARGET SP HTTP/1.x, single spaces (RFC 9112 3). */
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || strchr(sp2 + 1, ' ') ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || strlen(sp2 + 1) != 8 || sp1[1] != '/') {
        answer_text(c, 400, "Bad Request", NULL, "bad request\n");
        return;
    }
    *sp1 = '\0';
    *sp2 = '\0';
    for (const char *m = line; *m; m++)
        if (*m < 'A' || *m > 'Z') {
            answer_text(c, 400, "Bad Request", NULL, "bad request\n");
            return;
        }
    int head_only = strcmp(line, "HEAD") == 0;
    if (strcmp(line, "GET") != 0 && !head_only) {
        answer_text(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
                    "method not allowed: only GET is served\n");
        return;
    }
    char *target = sp1 + 1;
    char *q = strchr(target, '?');
    if (q)
        *q = '\0';
    if (strcmp(target, "/") == 0 || strcmp(target, "/status") == 0) {
        size_t len = 0;
        const char *page = status_page_html(&len);
        if (!page)
            answer_text(c, 500, "Internal Server Error", NULL, "out of memory\n");
        else
            answer_typed(c, 200, "OK", "text/html; charset=utf-8",
                         "Cache-Control: no-store\r\n", (char *)page, len, 0, head_only);
        return;
    }
    if (strcmp(target, "/status.json") == 0) {
        pthread_mutex_lock(&h->mu);
        metrics_http_status_fn fn = h->status_fn;
        void *ctx = h->status_ctx;
        pthread_mutex_unlock(&h->mu);
        size_t len = 0;
        char *json = fn ? fn(ctx, &len) : NULL;
        if (!json)
            answer_text(c, 503, "Service Unavailable", NULL,
                        fn ? "out of memory\n" : "the node is starting\n");
        else
            answer_typed(c, 200, "OK", "application/json", "Cache-Control: no-store\r\n",
                         json, len, 1, head_only);
        return;
    }
    if (strcmp(target, "/metrics") != 0) {
        answer_text(c, 404, "Not Found", NULL,
                    "not found: try /metrics, / (the status page) or /status.json\n");
        return;
    }
    size_t len = 0;
    char *body = render(h->reg, &len);
    if (!body) {
        answer_text(c, 500, "Internal Server Error", NULL, "out of memory\n");
        return;
    }
    answer(c, 200, "OK", NULL, body, len, 1, head_only);
}

/* The end of the head (after its blank line), or 0 if not there yet. */
static size_t head_end(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == '\n' && s[i + 1] == '\n')
            return i + 2;
        if (i + 3 < n && s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' &&
            s[i + 3] == '\n')
            return i + 4;
    }
    return 0;
}

/* ---- the loop ------------------------------------------------------------------- */

static void on_readable(metrics_http *h, conn *c)
{
    if (c->state == CONN_DRAIN) {
        char sink[4096];
        ssize_t r = recv(c->fd, sink, sizeof sink, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            conn_close(c);
        return;
    }
    size_t room = sizeof c->in - c->in_len;
    ssize_t r = recv(c->fd, c->in + c->in_len, room, 0);
    if (r < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_close(c);
        return;
    }
    if (r == 0) {   /* the client gave up before a whole request */
        conn_close(c);
        return;
    }
    size_t old = c->in_len;
    c->in_len += (size_t)r;
    size_t end = head_end(c->in + (old > 3 ? old - 3 : 0), c->in_len - (old > 3 ? old - 3 : 0));
    if (end) {
        handle_request(h, c, end + (old > 3 ? old - 3 : 0));
    } else if (c->in_len == sizeof c->in) {
        answer_text(c, 400, "Bad Request", NULL, "request line or headers too long\n");
    } else if (!http_bytes(c->in + old, (size_t)r)) {
        answer_text(c, 400, "Bad Request", NULL, "bad request\n");
    }
}

static void on_writable(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            conn_close(c);
            return;
        }
        c->out_off += (size_t)w;
    }
    shutdown(c->fd, SHUT_WR);
    free(c->out);
    c->out = NULL;
    c->state = CONN_DRAIN;
    /* A little while for the client to read and close. */
    uint64_t linger = now_ms() + 1000;
    if (linger < c->deadline_ms)
        c->deadline_ms = linger;
}

static void accept_one(metrics_http *h)
{
    int fd = accept(h->listen_fd, NULL, NULL);
    if (fd < 0) {
        /* Out of descriptors: the socket stays readable, so back off
         * rather than spin; the node's own descriptors matter more. */
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            struct timespec ts = { 0, 100 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        return;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        close(fd);
        return;
    }
    for (size_t i = 0; i < METRICS_HTTP_MAX_CONNS; i++) {
        conn *c = &h->conns[i];
        if (c->state == CONN_FREE) {
            c->state = CONN_READ;
            c->fd = fd;
            c->in_len = 0;
            c->out = NULL;
            c->out_len = c->out_off = 0;
            c->deadline_ms = now_ms() + METRICS_HTTP_TIMEOUT_MS;
            return;
        }
    }
    close(fd);   /* not reached: the loop stops accepting when full */
}

static void *serve(void *arg)
{
    metrics_http *h = arg;
    okv_thread_name("okv-metrics");
    struct pollfd pfd[2 + METRICS_HTTP_MAX_CONNS];
    conn *who[2 + METRICS_HTTP_MAX_CONNS];
    for (;;) {
        size_t n = 0, used = 0;
        uint64_t now = now_ms(), next = now + 1000;
        pfd[n++] = (struct pollfd){ .fd = h->wake[0], .events = POLLIN };
        for (size_t i = 0; i < METRICS_HTTP_MAX_CONNS; i++) {
            conn *c = &h->conns[i];
            if (c->state == CONN_FREE)
                continue;
            if (now >= c->deadline_ms) {
                conn_close(c);
                continue;
            }
            used++;
            if (c->deadline_ms < next)
                next = c->deadline_ms;
            who[n] = c;
            pfd[n++] = (struct pollfd){ .fd = c->fd,
                                        .events = c->state == CONN_WRITE ? POLLOUT : POLLIN };
        }
        size_t listen_at = n;
        if (used < METRICS_HTTP_MAX_CONNS)
            pfd[n++] = (struct pollfd){ .fd = h->listen_fd, .events = POLLIN };
        int r = poll(pfd, (nfds_t)n, (int)(next - now));
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        if (pfd[0].revents)
            break;
        for (size_t k = 1; k < listen_at; k++) {
            if (!pfd[k].revents)
                continue;
            conn *c = who[k];
            if (c->state == CONN_WRITE)
                on_writable(c);
            else
                on_readable(h, c);
            if (c->state == CONN_WRITE)   /* just answered: try to write now */
                on_writable(c);
        }
        if (listen_at < n && pfd[listen_at].revents)
            accept_one(h);
    }
    return NULL;
}

/* ---- life cycle ----------------------------------------------------------------- */

static int bind_address(metrics_http *h, const char *address, okv_error *err)
{
    char host[128];
    const char *colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= sizeof host || !colon[1])
        return okv_error_set(err, OKV_EINVAL, "--metrics-listen: '%s' is not HOST:PORT",
                             address);
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    char *hp = host;
    size_t hl = strlen(hp);
    if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') {
        hp[hl - 1] = '\0';
        hp++;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(*hp ? hp : NULL, colon + 1, &hints, &ai);
    if (gai != 0)
        return okv_error_set(err, OKV_EINVAL, "--metrics-listen: '%s': %s", address,
                             gai_strerror(gai));
    int fd = -1, saved = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return okv_error_set(err, OKV_EUNAVAILABLE, "--metrics-listen: cannot bind %s: %s",
                             address, strerror(saved));
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char hbuf[NI_MAXHOST], sbuf[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof hbuf, sbuf, sizeof sbuf,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(h->address, sizeof h->address, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
                 hbuf, sbuf);
    else
        snprintf(h->address, sizeof h->address, "%s", address);
    h->listen_fd = fd;
    return OKV_OK;
}

int metrics_http_new(metrics_http **out, metrics_registry *reg, const char *address,
                     okv_error *err)
{
    *out = NULL;
    metrics_http *h = calloc(1, sizeof *h);
    if (!h)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    h->reg = reg;
    pthread_mutex_init(&h->mu, NULL);
    h->listen_fd = -1;
    h->wake[0] = h->wake[1] = -1;
    int rc = bind_address(h, address, err);
    if (rc) {
        pthread_mutex_destroy(&h->mu);
        free(h);
        return rc;
    }
    if (pipe(h->wake) != 0) {
        rc = okv_error_set(err, OKV_EUNAVAILABLE, "metrics: pipe: %s", strerror(errno));
        close(h->listen_fd);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return rc;
    }
    if (pthread_create(&h->thread, NULL, serve, h) != 0) {
        close(h->wake[0]);
        close(h->wake[1]);
        close(h->listen_fd);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return okv_error_set(err, OKV_EUNAVAILABLE, "metrics: cannot start its thread");
    }
    *out = h;
    return OKV_OK;
}

const char *metrics_http_address(const metrics_http *h) { return h->address; }

void metrics_http_set_status(metrics_http *h, metrics_http_status_fn fn, void *ctx)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->status_fn = fn;
    h->status_ctx = ctx;
    pthread_mutex_unlock(&h->mu);
}

void metrics_http_free(metrics_http *h)
{
    if (!h)
        return;
    char b = 1;
    while (write(h->wake[1], &b, 1) < 0 && errno == EINTR)
        ;
    pthread_join(h->thread, NULL);
    for (size_t i = 0; i < METRICS_HTTP_MAX_CONNS; i++)
        conn_close(&h->conns[i]);
    close(h->listen_fd);
    close(h->wake[0]);
    close(h->wake[1]);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
