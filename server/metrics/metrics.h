/*
 * metrics.h — a small metrics registry and its Prometheus text rendering
 * (exposition format 0.0.4). Pure: no sockets, no gRPC, no RocksDB.
 *
 * A registry holds families (one name, HELP, TYPE) of series (one label
 * set each). Series are created at registration (a mutex, rare) and then
 * updated on hot paths with relaxed atomics only, no lock:
 *   - counters: monotonically increasing uint64;
 *   - gauges: a signed int64 set or added to;
 *   - histograms: fixed bucket bounds given at creation, one atomic count
 *     per bucket plus the sum; cumulated only when rendered;
 *   - callback series: a function read at render time (what another module
 *     already counts, a RocksDB property, /proc), typed counter or gauge.
 * metrics_*_get with the same name and labels returns the same series, so a
 * caller may create series lazily and cache the pointer.
 *
 * Every update function accepts NULL (a module whose host attached no
 * registry pays one branch). Series live as long as the registry.
 *
 * Rendering (metrics_render) takes the registry mutex, so it must not be
 * called from a callback; a callback must not touch the registry.
 */
#ifndef OKV_SERVER_METRICS_H
#define OKV_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metrics_registry metrics_registry;
typedef struct metrics_series metrics_counter;
typedef struct metrics_series metrics_gauge;
typedef struct metrics_series metrics_histogram;

/* One label: name (a Prometheus label name, [a-zA-Z_][a-zA-Z0-9_]*) and
 * value (any text; escaped when rendered). */
typedef struct metrics_label {
    const char *name;
    const char *value;
} metrics_label;

#define METRICS_MAX_LABELS 4
#define METRICS_MAX_BUCKETS 24

/* What a callback series reports; ctx is the pointer given at creation. */
typedef double (*metrics_read_fn)(void *ctx);

/* NULL on out of memory. */
metrics_registry *metrics_registry_new(void);
/* Frees every series. Accepts NULL. */
void metrics_registry_free(metrics_registry *r);

/* The series of family `name` with these labels (n_labels may be 0),
 * created if absent. NULL if r is NULL, on out of memory, on a name or
 * label that is not valid, or if the family exists with another type (or
 * a histogram with other bounds). help is copied on the family's first
 * series. */
metrics_counter *metrics_counter_get(metrics_registry *r, const char *name, const char *help,
                                     const metrics_label *labels, size_t n_labels);
metrics_gauge *metrics_gauge_get(metrics_registry *r, const char *name, const char *help,
                                 const metrics_label *labels, size_t n_labels);
/* bounds: n_bounds (<= METRICS_MAX_BUCKETS) strictly increasing finite
 * upper bounds; the +Inf bucket is implied. */
metrics_histogram *metrics_histogram_get(metrics_registry *r, const char *name, const char *help,
                                         const double *bounds, size_t n_bounds,
                                         const metrics_label *labels, size_t n_labels);

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

/* A series whose value is fn(ctx), read at render time; type is
 * METRICS_COUNTER or METRICS_GAUGE. 0, or -1 as for the _get functions
 * (also when the series exists already). */
int metrics_callback_add(metrics_registry *r, enum metrics_type type, const char *name,
                         const char *help, const metrics_label *labels, size_t n_labels,
                         metrics_read_fn fn, void *ctx);

/* Hot-path updates: relaxed atomics. Each accepts NULL. */
void metrics_counter_add(metrics_counter *c, uint64_t v);
static inline void metrics_counter_inc(metrics_counter *c) { metrics_counter_add(c, 1); }
void metrics_gauge_set(metrics_gauge *g, int64_t v);
void metrics_gauge_add(metrics_gauge *g, int64_t v);
void metrics_histogram_observe(metrics_histogram *h, double v);

/* Current values (tests, and whoever reads a counter back); 0 for NULL. */
uint64_t metrics_counter_value(const metrics_counter *c);
int64_t metrics_gauge_value(const metrics_gauge *g);
/* Count in bucket i (not cumulative; i == n_bounds is +Inf), and the
 * histogram's total count and sum. */
uint64_t metrics_histogram_bucket(const metrics_histogram *h, size_t i);
uint64_t metrics_histogram_count(const metrics_histogram *h);
double metrics_histogram_sum(const metrics_histogram *h);

/* The buckets of every series of histogram family `name` added up (not
 * cumulative; buckets[n_bounds] is +Inf) and the family's bounds: room
 * for METRICS_MAX_BUCKETS bounds and METRICS_MAX_BUCKETS + 1 counts.
 * Returns n_bounds, or -1 if there is no such histogram family (yet).
 * Takes the registry mutex, like metrics_render (status.h samples the
 * request latencies with it every few seconds). */
int metrics_histogram_family_sum(metrics_registry *r, const char *name, double *bounds,
                                 uint64_t *buckets);

/* Writes the exposition text of every family, in the order families were
 * first registered, series in their order of creation: `# HELP`, `# TYPE`,
 * then one `name{labels} value` line per sample; histograms as
 * name_bucket{...,le="b"} (cumulative, ending with le="+Inf"), name_sum and
 * name_count. Like snprintf: writes at most cap bytes (NUL-terminated when
 * cap > 0) and returns the length the whole text needs, so a caller whose
 * buffer was too small retries with return + 1. */
size_t metrics_render(metrics_registry *r, char *buf, size_t cap);

/* The content type of metrics_render's text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Registers process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds (read from /proc at render time, as the
 * Prometheus client libraries name them). 0 or -1. */
int metrics_register_process(metrics_registry *r);

#endif
