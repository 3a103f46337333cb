/*
 * service_audit.c — the audit log as the services see it: recording an
 * admin action with who, from where and how it ended, and
 * orderkv.v1.Admin/AuditTail, which reads the log back
 * (docs/operations.md "Audit log").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "node.h"
#include "orderkv.pb-c.h"

/* AuditTail: lines when the request says 0, the most per answer, and the
 * most bytes of lines per answer (a client receives at most 4 MiB by
 * default; GRPC-CORE-NOTES pitfall 9). Past the byte cap the oldest lines
 * are left out. */
#define TAIL_DEFAULT 20
#define TAIL_MAX 1000
#define TAIL_MAX_BYTES (3u << 20)

void service_audit_action(node *n, rpc_call *call, const char *what, int code, const char *msg)
{
    if (!n->audit)
        return;
    char result[OKV_ERRMSG_MAX + 64];
    if (code == OKV_OK)
        snprintf(result, sizeof result, "ok");
    else
        snprintf(result, sizeof result, "error: %s: %s", okv_strerror(code), msg ? msg : "");
    audit_log_append(n->audit, node_audit_who(rpc_call_identity(call)), rpc_call_peer(call),
                     what, result);
}

/* 1 if s[0..len) is well-formed UTF-8. Every record we write is; a
 * fragment a power loss cut (audit.h invariant 2) may not be, and a
 * protobuf string must be. */
static int valid_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                                : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!k || i + k > len)
            return 0;
        unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        if (k > 1 && (s[i + 1] < lo || s[i + 1] > hi))
            return 0;
        for (size_t j = 2; j < k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xBF)
                return 0;
        i += k;
    }
    return 1;
}

static void handle_audit_tail(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__AuditTailRequest *req = orderkv__v1__audit_tail_request__unpack(NULL, len, buf);
    if (!req) {
        service_reply_error(call, OKV_EINVAL, "malformed AuditTailRequest (see "
                                              "proto/orderkv.proto)");
        return;
    }
    size_t want = req->lines == 0 ? TAIL_DEFAULT : req->lines > TAIL_MAX ? TAIL_MAX : req->lines;
    orderkv__v1__audit_tail_request__free_unpacked(req, NULL);
    if (!n->audit) {
        service_reply_error(call, OKV_EUNAVAILABLE, "this node keeps no audit log");
        return;
    }
    char *text = NULL;
    okv_error err;
    okv_error_clear(&err);
    int rc = audit_log_tail(n->audit, want, &text, &err);
    if (rc) {
        service_reply_error(call, rc, err.msg);
        return;
    }
    /* Split in place, newest first so the byte cap drops the oldest. */
    char **lines = calloc(want ? want : 1, sizeof *lines);
    if (!lines) {
        free(text);
        service_reply_error(call, OKV_ENOMEM, "out of memory");
        return;
    }
    size_t count = 0, bytes = 0;
    char *end = text + strlen(text);
    while (end > text && count < want) {
        *--end = '\0';   /* the line's '\n' */
        char *start = end;
        while (start > text && start[-1] != '\n')
            start--;
        size_t l = (size_t)(end - start);
        end = start;
        if (l == 0 || !valid_utf8((const unsigned char *)start, l))
            continue;
        if (bytes + l > TAIL_MAX_BYTES)
            break;
        bytes += l;
        lines[count++] = start;
    }
    for (size_t i = 0; i < count / 2; i++) {   /* oldest first */
        char *t = lines[i];
        lines[i] = lines[count - 1 - i];
        lines[count - 1 - i] = t;
    }
    Orderkv__V1__AuditTailResponse resp = ORDERKV__V1__AUDIT_TAIL_RESPONSE__INIT;
    resp.n_lines = count;
    resp.lines = lines;
    service_reply_message(call, &resp.base);
    free(lines);
    free(text);
}

int service_audit_register(node *n, okv_error *err)
{
    return rpc_server_add_method(n->rpc, "/orderkv.v1.Admin/AuditTail", handle_audit_tail, n, err);
}
