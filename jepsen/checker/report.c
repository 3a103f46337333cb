#include "report.h"

#include <inttypes.h>
#include <stdlib.h>

#include "sbuf.h"

char *report_line(const check_result *r, int64_t ms)
{
    sbuf b = SBUF_INIT;
    sbuf_printf(&b, "checker %s: %s (%" PRIu64 " ops, %" PRIu64 " keys, %" PRId64 " ms)", r->checker,
                check_validity_name(r->validity), r->ops, r->keys, ms);
    return sbuf_take(&b);
}

/* Nemesis ops per f name, indexed like h->f_names; NULL on OOM. */
static size_t *nemesis_counts(const history *h)
{
    size_t *c = calloc(h->n_f_names ? h->n_f_names : 1, sizeof *c);
    if (!c)
        return NULL;
    for (size_t i = 0; i < h->n_ops; i++)
        if (h->ops[i].process == HISTORY_NEMESIS)
            c[h->ops[i].f_name]++;
    return c;
}

char *report_history(const history *h)
{
    size_t *c = nemesis_counts(h);
    if (!c)
        return NULL;
    sbuf b = SBUF_INIT;
    sbuf_printf(&b, "history: %zu ops, %zu client operations, %zu nemesis ops", h->n_ops, h->n_invokes,
                h->n_nemesis);
    const char *sep = " (";
    for (size_t f = 0; f < h->n_f_names; f++)
        if (c[f]) {
            sbuf_printf(&b, "%s%s %zu", sep, h->f_names[f], c[f]);
            sep = ", ";
        }
    if (h->n_nemesis)
        sbuf_printf(&b, ")");
    free(c);
    return sbuf_take(&b);
}

char *report_json(const char *workload, const check_result *r, int64_t ms, const history *h)
{
    size_t *c = nemesis_counts(h);
    if (!c)
        return NULL;
    sbuf b = SBUF_INIT;
    sbuf_printf(&b, "{\"workload\":");
    sbuf_json_string(&b, workload);
    sbuf_printf(&b, ",\"checker\":");
    sbuf_json_string(&b, r->checker);
    sbuf_printf(&b, ",\"valid\":\"%s\",\"ops\":%" PRIu64 ",\"keys\":%" PRIu64 ",\"ms\":%" PRId64 ",\"anomalies\":{",
                check_validity_name(r->validity), r->ops, r->keys, ms);
    for (size_t i = 0; i < r->n_anomalies; i++) {
        const check_anomaly *a = &r->anomalies[i];
        sbuf_printf(&b, "%s", i ? "," : "");
        sbuf_json_string(&b, a->name);
        sbuf_printf(&b, ":{\"count\":%" PRIu64 ",\"examples\":[", a->count);
        for (size_t k = 0; k < a->n_examples; k++)
            sbuf_printf(&b, "%s%" PRId64, k ? "," : "", a->examples[k]);
        sbuf_printf(&b, "]}");
    }
    sbuf_printf(&b, "},\"counts\":{");
    for (size_t i = 0; i < r->n_counts; i++) {
        sbuf_printf(&b, "%s", i ? "," : "");
        sbuf_json_string(&b, r->counts[i].name);
        sbuf_printf(&b, ":%" PRIu64, r->counts[i].n);
    }
    sbuf_printf(&b, "},\"nemesis\":{\"ops\":%zu,\"f\":{", h->n_nemesis);
    const char *sep = "";
    for (size_t f = 0; f < h->n_f_names; f++)
        if (c[f]) {
            sbuf_printf(&b, "%s", sep);
            sbuf_json_string(&b, h->f_names[f]);
            sbuf_printf(&b, ":%zu", c[f]);
            sep = ",";
        }
    sbuf_printf(&b, "}},\"explanation\":");
    sbuf_json_string(&b, r->explanation ? r->explanation : "");
    sbuf_printf(&b, "}\n");
    free(c);
    return sbuf_take(&b);
}
