/*
 * history.c — turns the JSON history into history_ops and checks the
 * process discipline (invariants 1-3 of history.h).
 */
#include "history.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "json.h"

#define MAX_F_NAMES 1024

/* Known op members, as bits of a "seen" mask. */
enum {
    M_INDEX = 1 << 0,
    M_TYPE = 1 << 1,
    M_F = 1 << 2,
    M_VALUE = 1 << 3,
    M_PROCESS = 1 << 4,
    M_TIME = 1 << 5,
    M_ERROR = 1 << 6,
    M_REQUIRED = M_INDEX | M_TYPE | M_F | M_VALUE | M_PROCESS | M_TIME
};

static const struct {
    const char *name;
    unsigned bit;
} MEMBERS[] = {
    { "index", M_INDEX }, { "type", M_TYPE }, { "f", M_F }, { "value", M_VALUE },
    { "process", M_PROCESS }, { "time", M_TIME }, { "error", M_ERROR },
};

__attribute__((format(printf, 4, 5)))
static int op_fail(okv_error *err, const history_op *op, size_t offset, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (op && op->index >= 0)
        return okv_error_set(err, OKV_EINVAL, "op index %" PRId64 " (byte %zu): %s", op->index, offset, msg);
    return okv_error_set(err, OKV_EINVAL, "op at byte %zu: %s", offset, msg);
}

static char *copy_str(history *h, const char *s, size_t n)
{
    char *c = arena_alloc(&h->mem, n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

static int convert_value(history *h, const json_node *j, history_value *out)
{
    memset(out, 0, sizeof *out);
    switch (j->type) {
    case JSON_NULL:
        out->kind = HV_NULL;
        return 0;
    case JSON_INT:
        out->kind = HV_INT;
        out->i = j->u.i;
        return 0;
    case JSON_ARRAY: {
        out->kind = HV_LIST;
        out->n = j->u.kids.count;
        if (!out->n)
            return 0;
        if (out->n > SIZE_MAX / sizeof(history_value))
            return OKV_ENOMEM;
        history_value *items = arena_alloc(&h->mem, out->n * sizeof *items);
        if (!items)
            return OKV_ENOMEM;
        size_t i = 0;
        for (const json_node *k = j->u.kids.first; k; k = k->next, i++) {
            int rc = convert_value(h, k, &items[i]);
            if (rc)
                return rc;
        }
        out->items = items;
        return 0;
    }
    case JSON_STRING:
        /* Kept: list-append's micro-op names ("append", "r") are strings. */
        out->kind = HV_OTHER;
        out->slen = j->u.str.len;
        if (!(out->s = copy_str(h, j->u.str.s, j->u.str.len)))
            return OKV_ENOMEM;
        return 0;
    default:
        out->kind = HV_OTHER;
        return 0;
    }
}

static int intern_f(history *h, const char *s, size_t n, uint32_t *out)
{
    for (size_t i = 0; i < h->n_f_names; i++)
        if (strlen(h->f_names[i]) == n && memcmp(h->f_names[i], s, n) == 0) {
            *out = (uint32_t)i;
            return 0;
        }
    if (h->n_f_names == MAX_F_NAMES)
        return OKV_EINVAL;
    char **names = realloc(h->f_names, (h->n_f_names + 1) * sizeof *names);
    if (!names)
        return OKV_ENOMEM;
    h->f_names = names;
    if (!(names[h->n_f_names] = copy_str(h, s, n)))
        return OKV_ENOMEM;
    *out = (uint32_t)h->n_f_names++;
    return 0;
}

static history_fn fn_of(const char *s)
{
    static const char *const names[] = { "read", "write", "cas", "add", "transfer", "init", "txn" };
    for (int i = 0; i < 7; i++)
        if (strcmp(s, names[i]) == 0)
            return (history_fn)i;
    return HISTORY_F_OTHER;
}

/* Reads one op object into *op. */
static int parse_op(history *h, const json_node *obj, history_op *op, okv_error *err)
{
    memset(op, 0, sizeof *op);
    op->index = -1;
    op->offset = obj->offset;
    op->pair = HISTORY_NONE;
    if (obj->type != JSON_OBJECT)
        return op_fail(err, NULL, obj->offset, "an op must be a JSON object, not %s", json_type_name(obj->type));

    unsigned seen = 0;
    const json_node *value = NULL;
    for (const json_node *m = obj->u.kids.first; m; m = m->next) {
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof MEMBERS / sizeof MEMBERS[0]; i++)
            if (strlen(MEMBERS[i].name) == m->key_len && strcmp(MEMBERS[i].name, m->key) == 0)
                bit = MEMBERS[i].bit;
        if (!bit)
            continue; /* a field this checker does not know: ignored */
        if (seen & bit)
            return op_fail(err, op, m->offset, "member \"%s\" appears twice", m->key);
        seen |= bit;
        switch (bit) {
        case M_INDEX:
            if (m->type != JSON_INT || m->u.i < 0)
                return op_fail(err, op, m->offset, "\"index\" must be a non-negative integer");
            op->index = m->u.i;
            break;
        case M_TIME:
            if (m->type != JSON_INT || m->u.i < 0)
                return op_fail(err, op, m->offset, "\"time\" must be a non-negative integer (ns)");
            op->time = m->u.i;
            break;
        case M_TYPE: {
            static const char *const types[] = { "invoke", "ok", "fail", "info" };
            int t = -1;
            for (int i = 0; m->type == JSON_STRING && i < 4; i++)
                if (strcmp(m->u.str.s, types[i]) == 0 && m->u.str.len == strlen(types[i]))
                    t = i;
            if (t < 0)
                return op_fail(err, op, m->offset, "\"type\" must be \"invoke\", \"ok\", \"fail\" or \"info\"");
            op->type = (history_type)t;
            break;
        }
        case M_F: {
            if (m->type != JSON_STRING || m->u.str.len == 0)
                return op_fail(err, op, m->offset, "\"f\" must be a non-empty string");
            int rc = intern_f(h, m->u.str.s, m->u.str.len, &op->f_name);
            if (rc == OKV_EINVAL)
                return op_fail(err, op, m->offset, "more than %d distinct \"f\" values", MAX_F_NAMES);
            if (rc)
                return okv_error_set(err, rc, "out of memory");
            op->fn = fn_of(h->f_names[op->f_name]);
            break;
        }
        case M_PROCESS:
            if (m->type == JSON_INT && m->u.i >= 0)
                op->process = m->u.i;
            else if (m->type == JSON_STRING && strcmp(m->u.str.s, "nemesis") == 0 && m->u.str.len == 7)
                op->process = HISTORY_NEMESIS;
            else
                return op_fail(err, op, m->offset, "\"process\" must be a non-negative integer or \"nemesis\"");
            break;
        case M_VALUE:
            value = m;
            break;
        case M_ERROR:
            if (m->type != JSON_STRING)
                return op_fail(err, op, m->offset, "\"error\" must be a string");
            if (!(op->error = copy_str(h, m->u.str.s, m->u.str.len)))
                return okv_error_set(err, OKV_ENOMEM, "out of memory");
            break;
        }
    }
    if ((seen & M_REQUIRED) != M_REQUIRED) {
        for (size_t i = 0; i < sizeof MEMBERS / sizeof MEMBERS[0]; i++)
            if ((M_REQUIRED & MEMBERS[i].bit) && !(seen & MEMBERS[i].bit))
                return op_fail(err, op, obj->offset, "missing member \"%s\"", MEMBERS[i].name);
    }
    if (convert_value(h, value, &op->value))
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    return 0;
}

/* Pending-invoke map values: 0 = idle, pos + 1 = invoke at pos in flight,
 * RETIRED_BIT | pos = the process got info at pos. */
#define RETIRED_BIT ((uint64_t)1 << 63)

static int pair_ops(history *h, okv_error *err)
{
    imap pending;
    imap_init(&pending);
    int rc = 0;
    for (size_t pos = 0; pos < h->n_ops && !rc; pos++) {
        history_op *op = &h->ops[pos];
        if (op->process == HISTORY_NEMESIS) {
            h->n_nemesis++;
            continue;
        }
        uint64_t *slot = imap_get(&pending, op->process);
        uint64_t state = slot ? *slot : 0;
        if (op->type == HISTORY_INVOKE) {
            if (state & RETIRED_BIT)
                rc = op_fail(err, op, op->offset,
                             "process %" PRId64 " invokes again after its info at index %" PRId64
                             " (a process that got info must not invoke again)",
                             op->process, h->ops[state & ~RETIRED_BIT].index);
            else if (state)
                rc = op_fail(err, op, op->offset,
                             "process %" PRId64 " invokes while its invoke at index %" PRId64 " is still open",
                             op->process, h->ops[state - 1].index);
            else if (imap_put(&pending, op->process, pos + 1))
                rc = okv_error_set(err, OKV_ENOMEM, "out of memory");
            h->n_invokes++;
            continue;
        }
        if (!state || (state & RETIRED_BIT)) {
            rc = op_fail(err, op, op->offset, "process %" PRId64 " completes \"%s\" with no open invoke",
                         op->process, history_f(h, op));
            continue;
        }
        history_op *inv = &h->ops[state - 1];
        if (inv->f_name != op->f_name) {
            rc = op_fail(err, op, op->offset,
                         "process %" PRId64 " completes \"%s\" but its open invoke (index %" PRId64 ") is \"%s\"",
                         op->process, history_f(h, op), inv->index, history_f(h, inv));
            continue;
        }
        inv->pair = pos;
        op->pair = (size_t)(state - 1);
        *slot = op->type == HISTORY_INFO ? (RETIRED_BIT | pos) : 0;
    }
    imap_free(&pending);
    return rc;
}

int history_parse(history **out, const char *text, size_t len, okv_error *err)
{
    *out = NULL;
    history *h = calloc(1, sizeof *h);
    if (!h)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    arena_init(&h->mem, 256 * 1024);
    json_stream *js = NULL;
    size_t cap = 0;
    int rc = json_stream_new(&js, text, len, err);
    while (!rc) {
        const json_node *elem;
        int more = json_stream_next(js, &elem, err);
        if (more <= 0) {
            rc = more;
            break;
        }
        if (h->n_ops == cap) {
            cap = cap ? cap * 2 : 1024;
            history_op *ops = cap < SIZE_MAX / sizeof *ops ? realloc(h->ops, cap * sizeof *ops) : NULL;
            if (!ops) {
                rc = okv_error_set(err, OKV_ENOMEM, "out of memory");
                break;
            }
            h->ops = ops;
        }
        history_op *op = &h->ops[h->n_ops];
        rc = parse_op(h, elem, op, err);
        if (!rc && h->n_ops && op->index <= h->ops[h->n_ops - 1].index)
            rc = op_fail(err, op, op->offset, "index does not increase (the previous op has index %" PRId64 ")",
                         h->ops[h->n_ops - 1].index);
        h->n_ops++;
    }
    json_stream_free(js);
    if (!rc)
        rc = pair_ops(h, err);
    if (rc) {
        history_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void history_free(history *h)
{
    if (!h)
        return;
    free(h->ops);
    free(h->f_names);
    arena_free(&h->mem);
    free(h);
}

const char *history_f(const history *h, const history_op *op)
{
    return h->f_names[op->f_name];
}

const char *history_type_name(history_type t)
{
    static const char *const names[] = { "invoke", "ok", "fail", "info" };
    return (unsigned)t < 4 ? names[t] : "?";
}

history_type history_outcome(const history *h, size_t pos)
{
    size_t c = h->ops[pos].pair;
    return c == HISTORY_NONE ? HISTORY_INFO : h->ops[c].type;
}

/* A bounded writer for history_value_str. */
typedef struct vwriter {
    char *buf;
    size_t cap;
    size_t len;
    int full;
} vwriter;

__attribute__((format(printf, 2, 3)))
static void vw_printf(vwriter *w, const char *fmt, ...)
{
    if (w->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= w->cap - w->len)
        w->full = 1;
    else
        w->len += (size_t)n;
}

static void value_str(const history_value *v, vwriter *w)
{
    switch (v->kind) {
    case HV_NULL: vw_printf(w, "null"); break;
    case HV_INT: vw_printf(w, "%" PRId64, v->i); break;
    case HV_OTHER: vw_printf(w, "?"); break;
    case HV_LIST:
        vw_printf(w, "[");
        for (size_t i = 0; i < v->n && !w->full; i++) {
            if (i)
                vw_printf(w, ",");
            value_str(&v->items[i], w);
        }
        vw_printf(w, "]");
        break;
    }
}

char *history_value_str(const history_value *v, char *buf, size_t n)
{
    if (n < 8) {
        if (n)
            buf[0] = '\0';
        return buf;
    }
    vwriter w = { buf, n - 4, 0, 0 };
    buf[0] = '\0';
    value_str(v, &w);
    if (w.full)
        memcpy(buf + w.len, "...", 4);
    return buf;
}

int history_op_error(okv_error *err, const char *workload, const history_op *op,
                     const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return okv_error_set(err, OKV_EINVAL, "%s workload: op index %" PRId64 " (byte %zu): %s",
                         workload, op->index, op->offset, msg);
}
