/*
 * client_probe.c — why a node could not be connected to: is TLS the cause?
 *
 * gRPC core (1.51 here) reports a failed connection only as a channel state:
 * TRANSIENT_FAILURE for a refused connection and a failed TLS handshake alike
 * (the reason goes to gRPC's own stderr log, not to the caller), and a
 * plaintext channel to a TLS node cycles between CONNECTING and IDLE (the
 * node closes each connection) until the deadline. So after a failed
 * attempt we ask the node ourselves, on a socket of our own, in the
 * protocol the client does NOT speak, and only a positive answer counts:
 *   - a TLS client sends the HTTP/2 client preface and an empty SETTINGS
 *     frame, as a plaintext gRPC client does: a plaintext orderkvd answers
 *     at once with its own SETTINGS frame (frame type 4 in byte 3 of the
 *     9-byte frame header) -> the node serves plaintext;
 *   - a plaintext client sends a TLS ClientHello (made by OpenSSL): a TLS
 *     orderkvd answers with a TLS record, a handshake (22) or an alert
 *     (21), version byte 3 -> the node serves TLS.
 * Anything else (refused, closed, silent: a node starting or stopping) is
 * "nothing learned", and the caller retries as before: a node that is
 * merely shutting down must not be reported as a TLS mismatch. The probe
 * is bounded (PROBE_MS for connect and for the answer), runs only after an
 * attempt failed, and its result is reused for PROBE_CACHE_MS.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "client_int.h"

#define PROBE_MS 500
#define PROBE_CACHE_MS 1000

enum probe_result { PROBE_NOTHING, PROBE_PLAINTEXT, PROBE_TLS, PROBE_NOT_PLAINTEXT };

static int wait_fd(int fd, short events, int ms)
{
    struct pollfd p = { fd, events, 0 };
    int r;
    do
        r = poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r;
}

/* A connected socket to addr, or -1 (refused, unreachable, too slow). */
static int dial(const char *addr)
{
    char host[CLIENT_ADDR_MAX];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    const char *port = colon + 1;
    char *h = host;
    if (h[0] == '[' && colon > h && colon[-1] == ']') {   /* [::1]:7400 */
        colon[-1] = '\0';
        h++;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(h, port, &hints, &ai) != 0 || !ai)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, PROBE_MS) <= 0 ||
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
                close(fd);
                fd = -1;
            }
        }
    }
    freeaddrinfo(ai);
    return fd;
}

/* Sends hello, then reads up to cap bytes (fewer if the node closes or
 * stays silent for PROBE_MS); returns how many, or -1 if not sent. */
static ssize_t exchange(int fd, const void *hello, size_t len, unsigned char *buf, size_t cap,
                        int *closed)
{
    *closed = 0;
    if (send(fd, hello, len, MSG_NOSIGNAL) != (ssize_t)len)
        return -1;
    size_t got = 0;
    while (got < cap && wait_fd(fd, POLLIN, PROBE_MS) > 0) {
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n <= 0) {
            *closed = 1;
            break;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* Does the node answer an HTTP/2 preface with a SETTINGS frame? */
static enum probe_result probe_plaintext(const char *addr)
{
    int fd = dial(addr);
    if (fd < 0)
        return PROBE_NOTHING;
    static const char hello[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    unsigned char buf[9];
    int closed;
    ssize_t n = exchange(fd, hello, sizeof hello - 1, buf, sizeof buf, &closed);
    close(fd);
    if (n == (ssize_t)sizeof buf && buf[3] == 4)
        return PROBE_PLAINTEXT;
    /* Closed on our preface (what a TLS node does): up, but not plaintext.
     * Silence (a stopped node) says nothing. */
    return n >= 0 && closed ? PROBE_NOT_PLAINTEXT : PROBE_NOTHING;
}

/* Does the node answer a TLS ClientHello with a TLS record? */
static enum probe_result probe_tls(const char *addr)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    enum probe_result res = PROBE_NOTHING;
    if (!ssl || !rb || !wb) {
        BIO_free(rb);
        BIO_free(wb);
        goto out;
    }
    SSL_set_bio(ssl, rb, wb);   /* ssl owns them now */
    SSL_set_connect_state(ssl);
    (void)SSL_do_handshake(ssl);   /* wants to read: the ClientHello is in wb */
    char *hello = NULL;
    long len = BIO_get_mem_data(wb, &hello);
    if (len <= 0)
        goto out;
    int fd = dial(addr);
    if (fd < 0)
        goto out;
    unsigned char buf[2];
    int closed;
    ssize_t n = exchange(fd, hello, (size_t)len, buf, sizeof buf, &closed);
    close(fd);
    if (n == 2 && (buf[0] == 22 || buf[0] == 21) && buf[1] == 3)
        res = PROBE_TLS;
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return res;
}

int client_tls_diagnose(const okv_client *c, size_t idx, char *why, size_t cap)
{
    const char *addr = c->addrs[idx];
    okv_client *mc = (okv_client *)c;   /* only the probe cache changes */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int cached = atomic_load(&mc->probe_res[idx]);
    enum probe_result r;
    if (cached > 0 && now - atomic_load(&mc->probe_ms[idx]) < PROBE_CACHE_MS) {
        r = (enum probe_result)(cached - 1);
    } else {
        r = tls_pem_on(&c->tls) ? probe_plaintext(addr) : probe_tls(addr);
        atomic_store(&mc->probe_ms[idx], now);
        atomic_store(&mc->probe_res[idx], (int)r + 1);
    }
    int tls = tls_pem_on(&c->tls);
    if (!tls && r == PROBE_TLS) {
        snprintf(why, cap,
                 "could not connect to %s: the node requires TLS (it answered a TLS "
                 "handshake): set tls_ca (the shell's --tls-ca) "
                 "to the cluster's CA certificate, and tls_cert/tls_key if it requires client "
                 "certificates",
                 addr);
        return 1;
    }
    if (tls && r == PROBE_PLAINTEXT) {
        snprintf(why, cap,
                 "could not connect to %s: no TLS handshake (is the node serving plaintext? "
                 "drop tls_ca, or start the node with --tls-ca, --tls-cert, --tls-key)",
                 addr);
        return 1;
    }
    if (tls && r == PROBE_NOT_PLAINTEXT) {
        snprintf(why, cap,
                 "could not connect to %s: the TLS handshake failed (the node's certificate "
                 "must be signed by tls_ca and name the address dialled; a node that requires "
                 "client certificates needs tls_cert and tls_key signed by its CA)",
                 addr);
        return 2;
    }
    return 0;
}

const char *client_tls_hint(const okv_client *c)
{
    return tls_pem_on(&c->tls)
               ? " Does it serve TLS with a certificate tls_ca signed? A plaintext node needs "
                 "no tls_ca"
               : " Or does it require TLS? Then set tls_ca (the shell's --tls-ca)";
}
