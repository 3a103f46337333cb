/*
 * metrics.c — the registry, its series and the exposition-format renderer.
 *
 * Families and series form singly linked lists appended under the registry
 * mutex and never removed before metrics_registry_free, so a series pointer
 * handed out stays valid and the hot path never takes the lock: it touches
 * only the series' own atomics (relaxed: a scrape needs no ordering with
 * anything else, and each sample is read once).
 *
 * A histogram's sum is a double kept as its bit pattern in a uint64 and
 * updated by compare-and-swap (C11 has no atomic floating-point add that
 * does not need libatomic on every target). Its count is the sum of its
 * buckets, so the two always agree in one rendering.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct metrics_family {
    char *name;
    char *help;
    enum metrics_type type;
    double bounds[METRICS_MAX_BUCKETS];
    size_t n_bounds;
    struct metrics_series *head, *tail;
    struct metrics_family *next;
} metrics_family;

struct metrics_series {
    metrics_family *fam;
    char *labels;                    /* rendered: a="x",b="y" ("" for none) */
    _Atomic uint64_t u;              /* counter */
    _Atomic int64_t i;               /* gauge */
    _Atomic uint64_t *buckets;       /* histogram: n_bounds + 1 */
    _Atomic uint64_t sum_bits;       /* histogram: the sum's double bits */
    metrics_read_fn fn;              /* callback series */
    void *ctx;
    struct metrics_series *next;
};

struct metrics_registry {
    pthread_mutex_t mu;
    metrics_family *head, *tail;
};

metrics_registry *metrics_registry_new(void)
{
    metrics_registry *r = calloc(1, sizeof *r);
    if (r)
        pthread_mutex_init(&r->mu, NULL);
    return r;
}

void metrics_registry_free(metrics_registry *r)
{
    if (!r)
        return;
    metrics_family *f = r->head;
    while (f) {
        metrics_family *fn = f->next;
        struct metrics_series *s = f->head;
        while (s) {
            struct metrics_series *sn = s->next;
            free(s->labels);
            free((void *)s->buckets);
            free(s);
            s = sn;
        }
        free(f->name);
        free(f->help);
        free(f);
        f = fn;
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- text building ---------------------------------------------------------- */

/* An snprintf-style appender: counts everything, stores what fits. */
typedef struct wbuf {
    char *buf;
    size_t cap, len;
} wbuf;

static void put_bytes(wbuf *w, const char *s, size_t n)
{
    if (w->len < w->cap) {
        size_t room = w->cap - w->len;
        memcpy(w->buf + w->len, s, n < room ? n : room);
    }
    w->len += n;
}

static void put_str(wbuf *w, const char *s) { put_bytes(w, s, strlen(s)); }

static void put_fmt(wbuf *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(wbuf *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put_bytes(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A float as Prometheus reads it: integers without a fraction or exponent,
 * others with 15 significant digits (what a double round-trips reliably
 * for human-made values), NaN and infinities by name. */
static void put_double(wbuf *w, double v)
{
    if (isnan(v))
        put_str(w, "NaN");
    else if (isinf(v))
        put_str(w, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        put_fmt(w, "%.0f", v);
    else
        put_fmt(w, "%.15g", v);
}

/* Escapes for a label value (\\, \" and \n) or, with quote 0, HELP text
 * (\\ and \n). */
static void put_escaped(wbuf *w, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            put_str(w, "\\\\");
        else if (*s == '\n')
            put_str(w, "\\n");
        else if (*s == '"' && quote)
            put_str(w, "\\\"");
        else
            put_bytes(w, s, 1);
    }
}

/* ---- registration -------------------------------------------------------------- */

static int valid_name(const char *s, int colon_ok)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colon_ok && c == ':')))
            return 0;
    }
    return 1;
}

/* The labels rendered once, at creation: `a="x",b="y"`. NULL if invalid
 * or out of memory. */
static char *render_labels(const metrics_label *labels, size_t n)
{
    if (n > METRICS_MAX_LABELS)
        return NULL;
    wbuf w = { NULL, 0, 0 };
    for (int pass = 0; pass < 2; pass++) {
        w.len = 0;
        for (size_t k = 0; k < n; k++) {
            if (!valid_name(labels[k].name, 0) || !labels[k].value || strcmp(labels[k].name, "le") == 0)
                return NULL;
            if (k)
                put_str(&w, ",");
            put_str(&w, labels[k].name);
            put_str(&w, "=\"");
            put_escaped(&w, labels[k].value, 1);
            put_str(&w, "\"");
        }
        if (pass == 0) {
            w.cap = w.len + 1;
            w.buf = malloc(w.cap);
            if (!w.buf)
                return NULL;
        }
    }
    w.buf[w.len] = '\0';
    return w.buf;
}

/* Finds or creates the series; under r->mu. */
static struct metrics_series *series_get(metrics_registry *r, enum metrics_type type,
                                         const char *name, const char *help,
                                         const double *bounds, size_t n_bounds,
                                         const metrics_label *labels, size_t n_labels,
                                         int *created)
{
    *created = 0;
    if (!valid_name(name, 1) || n_bounds > METRICS_MAX_BUCKETS)
        return NULL;
    for (size_t k = 0; k < n_bounds; k++)
        if (!isfinite(bounds[k]) || (k && bounds[k] <= bounds[k - 1]))
            return NULL;
    char *lab = render_labels(labels, n_labels);
    if (!lab)
        return NULL;
    metrics_family *f = r->head;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    if (f) {
        if (f->type != type || f->n_bounds != n_bounds ||
            (n_bounds && memcmp(f->bounds, bounds, n_bounds * sizeof *bounds) != 0)) {
            free(lab);
            return NULL;
        }
        for (struct metrics_series *s = f->head; s; s = s->next)
            if (strcmp(s->labels, lab) == 0) {
                free(lab);
                return s;
            }
    } else {
        f = calloc(1, sizeof *f);
        if (!f || !(f->name = strdup(name)) || !(f->help = strdup(help ? help : ""))) {
            if (f) {
                free(f->name);
                free(f);
            }
            free(lab);
            return NULL;
        }
        f->type = type;
        f->n_bounds = n_bounds;
        if (n_bounds)
            memcpy(f->bounds, bounds, n_bounds * sizeof *bounds);
        if (r->tail)
            r->tail->next = f;
        else
            r->head = f;
        r->tail = f;
    }
    struct metrics_series *s = calloc(1, sizeof *s);
    if (!s) {
        free(lab);
        return NULL;
    }
    if (type == METRICS_HISTOGRAM) {
        s->buckets = calloc(n_bounds + 1, sizeof *s->buckets);
        if (!s->buckets) {
            free(s);
            free(lab);
            return NULL;
        }
    }
    s->fam = f;
    s->labels = lab;
    if (f->tail)
        f->tail->next = s;
    else
        f->head = s;
    f->tail = s;
    *created = 1;
    return s;
}

static struct metrics_series *get_locked(metrics_registry *r, enum metrics_type type,
                                         const char *name, const char *help,
                                         const double *bounds, size_t n_bounds,
                                         const metrics_label *labels, size_t n_labels)
{
    if (!r)
        return NULL;
    int created;
    pthread_mutex_lock(&r->mu);
    struct metrics_series *s =
        series_get(r, type, name, help, bounds, n_bounds, labels, n_labels, &created);
    /* A callback series is not a counter one can add to. */
    if (s && s->fn)
        s = NULL;
    pthread_mutex_unlock(&r->mu);
    return s;
}

metrics_counter *metrics_counter_get(metrics_registry *r, const char *name, const char *help,
                                     const metrics_label *labels, size_t n_labels)
{
    return get_locked(r, METRICS_COUNTER, name, help, NULL, 0, labels, n_labels);
}

metrics_gauge *metrics_gauge_get(metrics_registry *r, const char *name, const char *help,
                                 const metrics_label *labels, size_t n_labels)
{
    return get_locked(r, METRICS_GAUGE, name, help, NULL, 0, labels, n_labels);
}

metrics_histogram *metrics_histogram_get(metrics_registry *r, const char *name, const char *help,
                                         const double *bounds, size_t n_bounds,
                                         const metrics_label *labels, size_t n_labels)
{
    return get_locked(r, METRICS_HISTOGRAM, name, help, bounds, n_bounds, labels, n_labels);
}

int metrics_callback_add(metrics_registry *r, enum metrics_type type, const char *name,
                         const char *help, const metrics_label *labels, size_t n_labels,
                         metrics_read_fn fn, void *ctx)
{
    if (!r || !fn || type == METRICS_HISTOGRAM)
        return -1;
    int created;
    pthread_mutex_lock(&r->mu);
    struct metrics_series *s =
        series_get(r, type, name, help, NULL, 0, labels, n_labels, &created);
    if (s && created) {
        s->fn = fn;
        s->ctx = ctx;
    }
    pthread_mutex_unlock(&r->mu);
    return s && created ? 0 : -1;
}

/* ---- updates -------------------------------------------------------------------- */

void metrics_counter_add(metrics_counter *c, uint64_t v)
{
    if (c)
        atomic_fetch_add_explicit(&c->u, v, memory_order_relaxed);
}

void metrics_gauge_set(metrics_gauge *g, int64_t v)
{
    if (g)
        atomic_store_explicit(&g->i, v, memory_order_relaxed);
}

void metrics_gauge_add(metrics_gauge *g, int64_t v)
{
    if (g)
        atomic_fetch_add_explicit(&g->i, v, memory_order_relaxed);
}

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* Prometheus buckets are upper-inclusive: v goes to the first bound >= v. */
void metrics_histogram_observe(metrics_histogram *h, double v)
{
    if (!h)
        return;
    const metrics_family *f = h->fam;
    size_t i = 0;
    while (i < f->n_bounds && !(v <= f->bounds[i]))
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old,
                                                  double_to_bits(bits_to_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

uint64_t metrics_counter_value(const metrics_counter *c)
{
    return c ? atomic_load_explicit(&((metrics_counter *)c)->u, memory_order_relaxed) : 0;
}

int64_t metrics_gauge_value(const metrics_gauge *g)
{
    return g ? atomic_load_explicit(&((metrics_gauge *)g)->i, memory_order_relaxed) : 0;
}

uint64_t metrics_histogram_bucket(const metrics_histogram *h, size_t i)
{
    if (!h || !h->buckets || i > h->fam->n_bounds)
        return 0;
    return atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
}

uint64_t metrics_histogram_count(const metrics_histogram *h)
{
    uint64_t n = 0;
    if (h && h->buckets)
        for (size_t i = 0; i <= h->fam->n_bounds; i++)
            n += metrics_histogram_bucket(h, i);
    return n;
}

double metrics_histogram_sum(const metrics_histogram *h)
{
    if (!h)
        return 0;
    return bits_to_double(atomic_load_explicit(&((metrics_histogram *)h)->sum_bits,
                                               memory_order_relaxed));
}

/* ---- rendering ------------------------------------------------------------------ */

static const char *type_name(enum metrics_type t)
{
    return t == METRICS_COUNTER ? "counter" : t == METRICS_GAUGE ? "gauge" : "histogram";
}

/* name[suffix]{labels[,extra]} */
static void put_sample_name(wbuf *w, const metrics_family *f, const char *suffix,
                            const char *labels, const char *extra_name, double extra)
{
    put_str(w, f->name);
    put_str(w, suffix);
    if (!*labels && !extra_name)
        return;
    put_str(w, "{");
    put_str(w, labels);
    if (extra_name) {
        if (*labels)
            put_str(w, ",");
        put_str(w, extra_name);
        put_str(w, "=\"");
        put_double(w, extra);
        put_str(w, "\"");
    }
    put_str(w, "}");
}

static void render_histogram(wbuf *w, const metrics_family *f, const struct metrics_series *s)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->n_bounds; i++) {
        cum += metrics_histogram_bucket(s, i);
        put_sample_name(w, f, "_bucket", s->labels, "le",
                        i < f->n_bounds ? f->bounds[i] : INFINITY);
        put_fmt(w, " %llu\n", (unsigned long long)cum);
    }
    put_sample_name(w, f, "_sum", s->labels, NULL, 0);
    put_str(w, " ");
    put_double(w, metrics_histogram_sum(s));
    put_str(w, "\n");
    put_sample_name(w, f, "_count", s->labels, NULL, 0);
    put_fmt(w, " %llu\n", (unsigned long long)cum);
}

size_t metrics_render(metrics_registry *r, char *buf, size_t cap)
{
    wbuf w = { buf, cap ? cap - 1 : 0, 0 };
    if (r) {
        pthread_mutex_lock(&r->mu);
        for (const metrics_family *f = r->head; f; f = f->next) {
            put_str(&w, "# HELP ");
            put_str(&w, f->name);
            put_str(&w, " ");
            put_escaped(&w, f->help, 0);
            put_str(&w, "\n# TYPE ");
            put_str(&w, f->name);
            put_str(&w, " ");
            put_str(&w, type_name(f->type));
            put_str(&w, "\n");
            for (const struct metrics_series *s = f->head; s; s = s->next) {
                if (f->type == METRICS_HISTOGRAM) {
                    render_histogram(&w, f, s);
                    continue;
                }
                put_sample_name(&w, f, "", s->labels, NULL, 0);
                put_str(&w, " ");
                if (s->fn)
                    put_double(&w, s->fn(s->ctx));
                else if (f->type == METRICS_COUNTER)
                    put_fmt(&w, "%llu", (unsigned long long)metrics_counter_value(s));
                else
                    put_fmt(&w, "%lld", (long long)metrics_gauge_value(s));
                put_str(&w, "\n");
            }
        }
        pthread_mutex_unlock(&r->mu);
    }
    if (cap)
        buf[w.len < cap - 1 ? w.len : cap - 1] = '\0';
    return w.len;
}

int metrics_histogram_family_sum(metrics_registry *r, const char *name, double *bounds,
                                 uint64_t *buckets)
{
    if (!r)
        return -1;
    int n = -1;
    pthread_mutex_lock(&r->mu);
    for (const metrics_family *f = r->head; f; f = f->next) {
        if (f->type != METRICS_HISTOGRAM || strcmp(f->name, name) != 0)
            continue;
        n = (int)f->n_bounds;
        memcpy(bounds, f->bounds, f->n_bounds * sizeof *bounds);
        memset(buckets, 0, (f->n_bounds + 1) * sizeof *buckets);
        for (const struct metrics_series *s = f->head; s; s = s->next)
            for (size_t i = 0; i <= f->n_bounds; i++)
                buckets[i] += metrics_histogram_bucket(s, i);
        break;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}
