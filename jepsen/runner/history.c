/*
 * history.c — recording ops and writing them out (history.h).
 *
 * Every op goes through one mutex, which is what makes index order and time
 * order agree (invariant 1). The recorder never blocks on I/O: the files are
 * written once, after the run.
 */
#include "history.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "okv-jepsen: out of memory\n");
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "okv-jepsen: out of memory\n");
        abort();
    }
    return q;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

/* ---- values -------------------------------------------------------------- */

static jv *jv_new(jv_kind k)
{
    jv *v = xmalloc(sizeof *v);
    memset(v, 0, sizeof *v);
    v->kind = k;
    return v;
}

jv *jv_null(void) { return jv_new(JV_NULL); }

jv *jv_int(int64_t i)
{
    jv *v = jv_new(JV_INT);
    v->i = i;
    return v;
}

jv *jv_str(const char *s)
{
    jv *v = jv_new(JV_STR);
    v->s = xstrdup(s ? s : "");
    return v;
}

jv *jv_kw(const char *name)
{
    jv *v = jv_str(name);
    v->kind = JV_KW;
    return v;
}

jv *jv_list(void) { return jv_new(JV_LIST); }

jv *jv_push(jv *list, jv *item)
{
    assert(list->kind == JV_LIST);
    if (list->n == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 4;
        list->items = xrealloc(list->items, list->cap * sizeof *list->items);
    }
    list->items[list->n++] = item ? item : jv_null();
    return list;
}

jv *jv_pair(jv *a, jv *b) { return jv_push(jv_push(jv_list(), a), b); }

jv *jv_copy(const jv *v)
{
    switch (v->kind) {
    case JV_NULL: return jv_null();
    case JV_INT: return jv_int(v->i);
    case JV_STR: return jv_str(v->s);
    case JV_KW: return jv_kw(v->s);
    case JV_LIST: {
        jv *l = jv_list();
        for (size_t k = 0; k < v->n; k++)
            jv_push(l, jv_copy(v->items[k]));
        return l;
    }
    }
    return jv_null();
}

void jv_free(jv *v)
{
    if (!v)
        return;
    for (size_t k = 0; k < v->n; k++)
        jv_free(v->items[k]);
    free(v->items);
    free(v->s);
    free(v);
}

/* The escapes JSON and EDN share; other control bytes and every byte
 * above 0x7e become '?', so the file is ASCII and the checker's strict
 * UTF-8 reader never rejects a history over a byte in an error message. */
static void write_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        default: fputc(ch < 0x20 || ch >= 0x7f ? '?' : ch, out); break;
        }
    }
    fputc('"', out);
}

static void write_value(FILE *out, const jv *v, int edn)
{
    switch (v->kind) {
    case JV_NULL: fputs(edn ? "nil" : "null", out); break;
    case JV_INT: fprintf(out, "%" PRId64, v->i); break;
    case JV_STR: write_string(out, v->s); break;
    case JV_KW:
        if (edn)
            fprintf(out, ":%s", v->s);
        else
            write_string(out, v->s);
        break;
    case JV_LIST:
        fputc('[', out);
        for (size_t k = 0; k < v->n; k++) {
            if (k)
                fputs(edn ? " " : ",", out);
            write_value(out, v->items[k], edn);
        }
        fputc(']', out);
        break;
    }
}

void jv_write_json(FILE *out, const jv *v) { write_value(out, v, 0); }
void jv_write_edn(FILE *out, const jv *v) { write_value(out, v, 1); }

/* ---- the history --------------------------------------------------------- */

struct history {
    pthread_mutex_t mu;
    uint64_t origin_ns;
    int64_t next_process;
    hist_op *ops;
    size_t n, cap;
};

const char *hist_type_name(hist_type t)
{
    switch (t) {
    case HIST_INVOKE: return "invoke";
    case HIST_OK: return "ok";
    case HIST_FAIL: return "fail";
    case HIST_INFO: return "info";
    }
    return "info";
}

uint64_t history_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

history *history_new(uint64_t origin_ns, int64_t first_free_process)
{
    history *h = xmalloc(sizeof *h);
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    h->origin_ns = origin_ns;
    h->next_process = first_free_process;
    return h;
}

void history_free(history *h)
{
    if (!h)
        return;
    for (size_t k = 0; k < h->n; k++) {
        jv_free(h->ops[k].value);
        free(h->ops[k].error);
    }
    free(h->ops);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

uint64_t history_now(const history *h)
{
    uint64_t now = history_clock_ns();
    return now > h->origin_ns ? now - h->origin_ns : 0;
}

uint64_t history_append(history *h, hist_type type, int64_t process, const char *f, jv *value,
                        const char *error)
{
    pthread_mutex_lock(&h->mu);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->ops = xrealloc(h->ops, h->cap * sizeof *h->ops);
    }
    hist_op *op = &h->ops[h->n];
    memset(op, 0, sizeof *op);
    op->index = h->n;
    op->type = type;
    snprintf(op->f, sizeof op->f, "%s", f);
    op->value = value ? value : jv_null();
    op->process = process;
    op->error = error ? xstrdup(error) : NULL;
    /* Read the clock under the lock: invariant 1. */
    op->time_ns = history_now(h);
    if (h->n > 0 && op->time_ns < h->ops[h->n - 1].time_ns)
        op->time_ns = h->ops[h->n - 1].time_ns;
    uint64_t t = op->time_ns;
    h->n++;
    pthread_mutex_unlock(&h->mu);
    return t;
}

int64_t history_new_process(history *h)
{
    pthread_mutex_lock(&h->mu);
    int64_t p = h->next_process++;
    pthread_mutex_unlock(&h->mu);
    return p;
}

size_t history_count(const history *h) { return h->n; }

const hist_op *history_op(const history *h, size_t i) { return i < h->n ? &h->ops[i] : NULL; }

void history_invoke(history *h, hist_proc *p, const char *f, jv *value)
{
    assert(!p->pending && "a process runs one op at a time");
    snprintf(p->f, sizeof p->f, "%s", f);
    p->invoke_ns = history_append(h, HIST_INVOKE, p->id, f, value, NULL);
    p->pending = 1;
}

uint64_t history_complete(history *h, hist_proc *p, hist_type type, jv *value, const char *error,
                          int *retired_out)
{
    assert(p->pending && type != HIST_INVOKE);
    uint64_t t = history_append(h, type, p->id, p->f, value, type == HIST_OK ? NULL : error);
    p->pending = 0;
    if (retired_out)
        *retired_out = type == HIST_INFO;
    if (type == HIST_INFO)
        p->id = history_new_process(h);
    return t - p->invoke_ns;
}

/* ---- output -------------------------------------------------------------- */

static void write_op(FILE *out, const hist_op *op, int edn)
{
    const char *type = hist_type_name(op->type);
    if (edn) {
        fprintf(out, "{:index %" PRIu64 ", :type :%s, :f :%s, :value ", op->index, type, op->f);
        jv_write_edn(out, op->value);
        if (op->process == HIST_NEMESIS)
            fputs(", :process :nemesis", out);
        else
            fprintf(out, ", :process %" PRId64, op->process);
        fprintf(out, ", :time %" PRIu64, op->time_ns);
        if (op->error) {
            fputs(", :error ", out);
            write_string(out, op->error);
        }
        fputs("}\n", out);
        return;
    }
    fprintf(out, "{\"index\":%" PRIu64 ",\"type\":\"%s\",\"f\":", op->index, type);
    write_string(out, op->f);
    fputs(",\"value\":", out);
    jv_write_json(out, op->value);
    if (op->process == HIST_NEMESIS)
        fputs(",\"process\":\"nemesis\"", out);
    else
        fprintf(out, ",\"process\":%" PRId64, op->process);
    fprintf(out, ",\"time\":%" PRIu64, op->time_ns);
    if (op->error) {
        fputs(",\"error\":", out);
        write_string(out, op->error);
    }
    fputc('}', out);
}

int history_write_json(const history *h, FILE *out)
{
    fputs("[\n", out);
    for (size_t k = 0; k < h->n; k++) {
        write_op(out, &h->ops[k], 0);
        fputs(k + 1 < h->n ? ",\n" : "\n", out);
    }
    fputs("]\n", out);
    return ferror(out) ? -1 : 0;
}

int history_write_edn(const history *h, FILE *out)
{
    for (size_t k = 0; k < h->n; k++)
        write_op(out, &h->ops[k], 1);
    return ferror(out) ? -1 : 0;
}

/* Pairs each completion with its process's pending invoke. Process ids are
 * dense small integers, so an array indexed by id does. */
int history_write_latency(const history *h, FILE *out)
{
    int64_t maxp = -1;
    for (size_t k = 0; k < h->n; k++)
        if (h->ops[k].process > maxp)
            maxp = h->ops[k].process;
    size_t np = (size_t)(maxp + 1);
    const hist_op **pending = xmalloc((np ? np : 1) * sizeof *pending);
    memset(pending, 0, (np ? np : 1) * sizeof *pending);
    fputs("# time_s\tlatency_ms\ttype\tf\n", out);
    for (size_t k = 0; k < h->n; k++) {
        const hist_op *op = &h->ops[k];
        if (op->process < 0)
            continue;
        if (op->type == HIST_INVOKE) {
            pending[op->process] = op;
            continue;
        }
        const hist_op *inv = pending[op->process];
        if (!inv)
            continue;
        pending[op->process] = NULL;
        fprintf(out, "%.6f\t%.3f\t%s\t%s\n", (double)inv->time_ns / 1e9,
                (double)(op->time_ns - inv->time_ns) / 1e6, hist_type_name(op->type), op->f);
    }
    free(pending);
    return ferror(out) ? -1 : 0;
}

void history_count_types(const history *h, const char *f, history_counts *out)
{
    memset(out, 0, sizeof *out);
    for (size_t k = 0; k < h->n; k++) {
        const hist_op *op = &h->ops[k];
        if (op->process == HIST_NEMESIS) {
            out->nemesis++;
            continue;
        }
        if (f && strcmp(op->f, f) != 0)
            continue;
        switch (op->type) {
        case HIST_INVOKE: out->invoke++; break;
        case HIST_OK: out->ok++; break;
        case HIST_FAIL: out->fail++; break;
        case HIST_INFO: out->info++; break;
        }
    }
}
