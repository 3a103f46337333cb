#include "okv_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int okv_http_connect(const char *hostport)
{
    const char *colon = strrchr(hostport, ':');
    if (!colon)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

char *okv_http_exchange(const char *hostport, const void *req, size_t len)
{
    int fd = okv_http_connect(hostport);
    if (fd < 0)
        return NULL;
    const char *p = req;
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, p + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    size_t cap = 4 << 20, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return NULL;
    }
    for (;;) {
        struct pollfd pf = { fd, POLLIN, 0 };
        if (n + 1 >= cap || poll(&pf, 1, 10000) <= 0)
            break;
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    return buf;
}

char *okv_http_get(const char *hostport, const char *path, char *type, size_t type_cap)
{
    char req[1024];
    /* Connection: close, or a server that keeps connections open (the
     * Prometheus API) makes every read wait for the exchange's timeout. */
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, hostport);
    if (n < 0 || (size_t)n >= sizeof req)
        return NULL;
    char *resp = okv_http_exchange(hostport, req, (size_t)n);
    if (!resp)
        return NULL;
    const char *body = strstr(resp, "\r\n\r\n");
    if (strncmp(resp, "HTTP/1.1 200 ", 13) != 0 || !body) {
        free(resp);
        return NULL;
    }
    if (type) {
        const char *ct = strstr(resp, "\r\nContent-Type: ");
        type[0] = '\0';
        if (ct && ct < body) {
            ct += 16;
            size_t l = strcspn(ct, "\r");
            snprintf(type, type_cap, "%.*s", (int)l, ct);
        }
    }
    char *out = strdup(body + 4);
    free(resp);
    return out;
}
