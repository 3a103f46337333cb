/*
 * status_json.c — see status_json.h.
 *
 * The text grows in a malloc'd buffer; an allocation failure sets `oom`
 * and every later append is ignored, so the builder checks once at the
 * end. Numbers: integers as %llu, doubles with at most 3 decimals (what
 * a page shows), a negative "unknown" double as null.
 */
#include "status_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jbuf {
    char *p;
    size_t len, cap;
    int oom;
} jbuf;

static void put_n(jbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void put(jbuf *b, const char *s) { put_n(b, s, strlen(s)); }

static void putf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(jbuf *b, const char *fmt, ...)
{
    char tmp[96];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put_n(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_str(jbuf *b, const char *s)
{
    put(b, "\"");
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\') {
            char e[3] = { '\\', (char)*c, 0 };
            put(b, e);
        } else if (*c < 0x20 || *c == 0x7f) {
            putf(b, "\\u%04x", *c);
        } else {
            put_n(b, (const char *)c, 1);
        }
    }
    put(b, "\"");
}

static void put_u64(jbuf *b, uint64_t v) { putf(b, "%llu", (unsigned long long)v); }

/* A non-negative double with 3 decimals; null if negative or not finite. */
static void put_num(jbuf *b, double v)
{
    if (!(v >= 0) || !isfinite(v))
        put(b, "null");
    else
        putf(b, "%.3f", v);
}

/* "name": (with the comma before every key but an object's first). */
static void key(jbuf *b, const char *k, int first)
{
    if (!first)
        put(b, ",");
    put_str(b, k);
    put(b, ":");
}

int status_peer_up(const status_peer *p)
{
    return p->self || p->connected ||
           (p->heard_ms_ago >= 0 && p->heard_ms_ago <= STATUS_DOWN_AFTER_MS);
}

static void put_node(jbuf *b, const status_view *v)
{
    put(b, "{");
    key(b, "id", 1);
    put_u64(b, v->node_id);
    key(b, "address", 0);
    put_str(b, v->address);
    key(b, "version", 0);
    put_str(b, v->version);
    key(b, "mode", 0);
    put_str(b, v->mode);
    key(b, "uptime_s", 0);
    put_num(b, v->uptime_s);
    key(b, "now_ms", 0);
    put_u64(b, v->now_ms);
    put(b, "}");
}

static void put_peer(jbuf *b, const status_peer *p)
{
    put(b, "{");
    key(b, "id", 1);
    put_u64(b, p->id);
    key(b, "address", 0);
    put_str(b, p->address);
    key(b, "self", 0);
    put(b, p->self ? "true" : "false");
    key(b, "up", 0);
    put(b, status_peer_up(p) ? "true" : "false");
    key(b, "connected", 0);
    put(b, p->connected ? "true" : "false");
    key(b, "heard_ms_ago", 0);
    if (p->self || p->heard_ms_ago < 0)
        put(b, "null");
    else
        putf(b, "%lld", (long long)p->heard_ms_ago);
    put(b, "}");
}

static void put_partition(jbuf *b, const status_partition *p)
{
    put(b, "{");
    key(b, "table", 1);
    put_str(b, p->table);
    key(b, "table_id", 0);
    put_u64(b, p->table_id);
    key(b, "partition", 0);
    put_u64(b, p->partition);
    key(b, "leader", 0);
    if (p->leader)
        put_u64(b, p->leader);
    else
        put(b, "null");
    key(b, "role", 0);
    put_str(b, p->role);
    key(b, "term", 0);
    put_u64(b, p->term);
    key(b, "commit", 0);
    put_u64(b, p->commit);
    key(b, "applied", 0);
    put_u64(b, p->applied);
    key(b, "last_index", 0);
    put_u64(b, p->last_index);
    key(b, "replicas", 0);
    put(b, "[");
    for (size_t i = 0; i < p->n_replicas && i < STATUS_MAX_REPLICAS; i++) {
        const status_replica *r = &p->replicas[i];
        put(b, i ? ",{" : "{");
        key(b, "node", 1);
        put_u64(b, r->node);
        key(b, "match", 0);
        put_u64(b, r->match);
        key(b, "lag", 0);
        put_u64(b, p->last_index > r->match ? p->last_index - r->match : 0);
        put(b, "}");
    }
    put(b, "]}");
}

static void put_change(jbuf *b, const status_leader_change *c)
{
    put(b, "{");
    key(b, "at_ms", 1);
    put_u64(b, c->at_ms);
    key(b, "table", 0);
    put_str(b, c->table);
    key(b, "partition", 0);
    put_u64(b, c->partition);
    key(b, "leader", 0);
    put_u64(b, c->leader);
    key(b, "term", 0);
    put_u64(b, c->term);
    put(b, "}");
}

static void put_sample(jbuf *b, const status_sample *s)
{
    put(b, "{");
    key(b, "at_ms", 1);
    put_u64(b, s->at_ms);
    key(b, "requests", 0);
    put_u64(b, s->requests);
    key(b, "rps", 0);
    put_num(b, s->rps);
    key(b, "p50_ms", 0);
    put_num(b, s->p50_ms);
    key(b, "p99_ms", 0);
    put_num(b, s->p99_ms);
    put(b, "}");
}

char *status_json(const status_view *v, size_t *len)
{
    jbuf b = { NULL, 0, 0, 0 };
    put(&b, "{");
    key(&b, "node", 1);
    put_node(&b, v);
    key(&b, "down_after_ms", 0);
    put_u64(&b, STATUS_DOWN_AFTER_MS);
    key(&b, "nodes", 0);
    put(&b, "[");
    for (size_t i = 0; i < v->n_nodes; i++) {
        if (i)
            put(&b, ",");
        put_peer(&b, &v->nodes[i]);
    }
    put(&b, "]");
    key(&b, "partitions", 0);
    put(&b, "[");
    for (size_t i = 0; i < v->n_parts; i++) {
        if (i)
            put(&b, ",");
        put_partition(&b, &v->parts[i]);
    }
    put(&b, "]");
    key(&b, "leader_changes", 0);
    put(&b, "[");
    for (size_t i = 0; i < v->n_changes; i++) {
        if (i)
            put(&b, ",");
        put_change(&b, &v->changes[i]);
    }
    put(&b, "]");
    key(&b, "samples", 0);
    put(&b, "[");
    for (size_t i = 0; i < v->n_samples; i++) {
        if (i)
            put(&b, ",");
        put_sample(&b, &v->samples[i]);
    }
    put(&b, "]}\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

/* ---- samples -------------------------------------------------------------------- */

double status_quantile(const double *bounds, size_t n_bounds, const uint64_t *buckets, double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= n_bounds; i++)
        total += buckets[i];
    if (total == 0)
        return -1;
    double rank = q * (double)total;
    uint64_t cum = 0;
    for (size_t i = 0; i <= n_bounds; i++) {
        uint64_t before = cum;
        cum += buckets[i];
        if ((double)cum < rank || buckets[i] == 0)
            continue;
        if (i == n_bounds)   /* in +Inf: the highest finite bound */
            return n_bounds ? bounds[n_bounds - 1] : -1;
        double lo = i ? bounds[i - 1] : 0, hi = bounds[i];
        return lo + (hi - lo) * (rank - (double)before) / (double)buckets[i];
    }
    return n_bounds ? bounds[n_bounds - 1] : -1;
}

void status_sample_make(status_sample *out, uint64_t at_ms, uint64_t interval_ms,
                        const double *bounds, size_t n_bounds, const uint64_t *prev,
                        const uint64_t *cur)
{
    uint64_t delta[64 + 1];
    uint64_t total = 0;
    if (n_bounds > 64)
        n_bounds = 64;
    for (size_t i = 0; i <= n_bounds; i++) {
        /* Counters only grow; a smaller reading (none) counts as 0. */
        delta[i] = cur[i] >= prev[i] ? cur[i] - prev[i] : 0;
        total += delta[i];
    }
    out->at_ms = at_ms;
    out->requests = total;
    out->rps = interval_ms ? (double)total * 1000.0 / (double)interval_ms : 0;
    double p50 = status_quantile(bounds, n_bounds, delta, 0.5);
    double p99 = status_quantile(bounds, n_bounds, delta, 0.99);
    out->p50_ms = p50 < 0 ? -1 : p50 * 1000.0;
    out->p99_ms = p99 < 0 ? -1 : p99 * 1000.0;
}

void status_ring_push(status_ring *r, const status_sample *s)
{
    r->s[r->next] = *s;
    r->next = (r->next + 1) % STATUS_HISTORY;
    if (r->n < STATUS_HISTORY)
        r->n++;
}

size_t status_ring_copy(const status_ring *r, status_sample *out)
{
    size_t first = (r->next + STATUS_HISTORY - r->n) % STATUS_HISTORY;
    for (size_t k = 0; k < r->n; k++)
        out[k] = r->s[(first + k) % STATUS_HISTORY];
    return r->n;
}
