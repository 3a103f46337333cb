/*
 * client_probe.c — why a node could not be connected to: is TLS the cause?
 *
 * gRPC core (1.51 here) reports a failed connection only as a channel state:
 * TRANSIENT_FAILURE for a refused connection and a failed TLS handshake alike
 * (the reason goes to gRPC's own stderr log, not to the caller), and a
 * plaintext channel to a TLS node cycles between CONNECTING and IDLE (the
 * node closes each connection) until the deadline. So after a failed
 * attempt we ask the node ourselves, on a socket of our own: we send the
 * HTTP/2 client preface and an empty SETTINGS frame, as a plaintext gRPC
 * client does, and look at the first bytes back (measured on this machine):
 *   - a plaintext orderkvd answers at once with its SETTINGS frame (frame
 *     type 4 in byte 3 of the 9-byte frame header);
 *   - a TLS orderkvd closes the connection at once (the bytes are not a TLS
 *     ClientHello); a TLS alert (record type 21) is treated the same;
 *   - nothing listening: the connect is refused.
 * The probe is bounded (PROBE_MS for connect and for the answer) and runs
 * only after an attempt failed, never on a healthy path.
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

#include "client_int.h"

#define PROBE_MS 500
#define PROBE_CACHE_MS 1000

enum probe_result { PROBE_DOWN, PROBE_PLAINTEXT, PROBE_NOT_PLAINTEXT, PROBE_UNKNOWN };

static int wait_fd(int fd, short events, int ms)
{
    struct pollfd p = { fd, events, 0 };
    int r;
    do
        r = poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r;
}

static enum probe_result probe(const char *addr)
{
    char host[CLIENT_ADDR_MAX];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (!colon)
        return PROBE_UNKNOWN;
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
        return PROBE_UNKNOWN;
    enum probe_result res = PROBE_UNKNOWN;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto out;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            res = errno == ECONNREFUSED ? PROBE_DOWN : PROBE_UNKNOWN;
            goto out;
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (wait_fd(fd, POLLOUT, PROBE_MS) <= 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
            res = soerr == ECONNREFUSED ? PROBE_DOWN : PROBE_UNKNOWN;
            goto out;
        }
    }
    static const char hello[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    if (send(fd, hello, sizeof hello - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof hello - 1)) {
        res = PROBE_NOT_PLAINTEXT;   /* closed on us already */
        goto out;
    }
    unsigned char buf[9];
    size_t got = 0;
    while (got < sizeof buf) {
        if (wait_fd(fd, POLLIN, PROBE_MS) <= 0)
            break;   /* silent: a stopped node, or something else */
        ssize_t n = recv(fd, buf + got, sizeof buf - got, 0);
        if (n <= 0) {   /* closed or reset before an HTTP/2 frame */
            res = got == 0 || buf[0] == 21 ? PROBE_NOT_PLAINTEXT : PROBE_UNKNOWN;
            goto out;
        }
        got += (size_t)n;
        if (buf[0] == 21) {   /* a TLS alert record */
            res = PROBE_NOT_PLAINTEXT;
            goto out;
        }
    }
    if (got == sizeof buf)
        res = buf[3] == 4 ? PROBE_PLAINTEXT : PROBE_NOT_PLAINTEXT;
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
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
        r = probe(addr);
        atomic_store(&mc->probe_ms[idx], now);
        atomic_store(&mc->probe_res[idx], (int)r + 1);
    }
    int tls = tls_pem_on(&c->tls);
    if (!tls && r == PROBE_NOT_PLAINTEXT) {
        snprintf(why, cap,
                 "could not connect to %s: the node closed the connection without speaking "
                 "plaintext gRPC; the node may require TLS: set tls_ca (the shell's --tls-ca) "
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
