#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

const char *okv_strerror(int code)
{
    switch (code) {
    case OKV_OK: return "ok";
    case OKV_ENOTFOUND: return "not found";
    case OKV_EINVAL: return "invalid argument";
    case OKV_EUNAVAILABLE: return "unavailable";
    case OKV_ETIMEDOUT: return "timed out";
    case OKV_ENOTLEADER: return "not leader";
    case OKV_ECONFLICT: return "conflict";
    case OKV_EUNKNOWN: return "outcome unknown";
    case OKV_EINTERNAL: return "internal error";
    case OKV_ENOMEM: return "out of memory";
    case OKV_ECORRUPT: return "corruption";
    case OKV_EIO: return "I/O error";
    case OKV_EUNIMPLEMENTED: return "unimplemented";
    case OKV_EFORMAT: return "unsupported data format";
    case OKV_EPROTO: return "protocol error";
    case OKV_ECONDITION: return "condition failed";
    case OKV_EILLEGAL: return "illegal transition";
    case OKV_EFUNDS: return "insufficient funds";
    case OKV_ESOLDOUT: return "sold out";
    case OKV_EIDEMPOTENCY: return "idempotency key reused with another request";
    case OKV_EINPROGRESS: return "in progress";
    case OKV_EPERMISSION: return "permission denied";
    case OKV_EAUTH: return "not authenticated";
    default: return "unknown error code";
    }
}

int okv_error_set(okv_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void okv_error_clear(okv_error *err)
{
    if (err) {
        err->code = OKV_OK;
        err->msg[0] = '\0';
    }
}
