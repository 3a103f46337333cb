/*
 * workload_set.c — a grow-only set: are acknowledged adds ever lost?
 *
 * add (value = element): put key "s<element>" (value the element) in table
 * orders, elements unique across the run. No '/' in the key, so the
 * elements spread over every partition.
 *
 * read (invoke value null; ok value = sorted list of elements): a full scan
 * of prefix "s", paged with the resume token. Reads happen only in the
 * final phase, after the nemesis has healed everything and the cluster has
 * had a quiet period: each thread reads until one read succeeds (bounded).
 * The checker: every acknowledged add must be in the final read, no read
 * may hold an element never added, and an add that failed must be absent.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"

#define SET_TABLE "orders"
#define SET_PAGE 1000u
#define SET_FINAL_ATTEMPTS 5

typedef struct set_state {
    atomic_llong next_elem;
} set_state;

static void *set_new(const run_config *cfg)
{
    (void)cfg;
    set_state *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    atomic_init(&s->next_elem, 0);
    return s;
}

static void set_free(void *p) { free(p); }

static void set_step(jclient *cl)
{
    set_state *s = runner_workload_state(cl->r);
    const run_config *cfg = runner_config(cl->r);
    long long e = atomic_fetch_add(&s->next_elem, 1);
    char k[32], v[32], err[512];
    int klen = snprintf(k, sizeof k, "s%lld", e);
    int vlen = snprintf(v, sizeof v, "%lld", e);
    client_invoke(cl, "add", jv_int(e));
    int rc = okv_put(cl->c, SET_TABLE, k, (size_t)klen, v, (size_t)vlen, NULL, cfg->op_timeout_ms);
    hist_type t = client_write_outcome(rc);
    client_complete(cl, t, jv_int(e), t == HIST_OK ? NULL : client_error(cl, rc, err, sizeof err));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = (*(jv *const *)a)->i, y = (*(jv *const *)b)->i;
    return (x > y) - (x < y);
}

/* One full scan. 0 and *out = sorted list on success, else the code. */
static int scan_all(jclient *cl, jv **out, char *err, size_t errsize)
{
    const run_config *cfg = runner_config(cl->r);
    jv *list = jv_list();
    void *resume = NULL;
    size_t resume_len = 0;
    int rc = OKV_OK;
    for (;;) {
        okv_scan_opts o = OKV_SCAN_OPTS_INIT;
        o.prefix = "s";
        o.prefix_len = 1;
        o.limit = SET_PAGE;
        o.resume = resume;
        o.resume_len = resume_len;
        /* Each page gets the op timeout; a big set takes several pages. */
        o.timeout_ms = cfg->op_timeout_ms * 5;
        okv_scan_result *r = NULL;
        rc = okv_scan(cl->c, SET_TABLE, &o, &r);
        free(resume);
        resume = NULL;
        if (rc != OKV_OK) {
            client_error(cl, rc, err, errsize);
            break;
        }
        for (size_t i = 0; i < okv_scan_result_count(r); i++) {
            size_t klen;
            const char *key = okv_scan_result_key(r, i, &klen);
            char tmp[32];
            if (klen < 2 || klen >= sizeof tmp)
                continue;
            memcpy(tmp, key + 1, klen - 1);
            tmp[klen - 1] = 0;
            char *end;
            long long e = strtoll(tmp, &end, 10);
            if (*end == 0)
                jv_push(list, jv_int(e));
        }
        const void *tok = okv_scan_result_resume(r, &resume_len);
        if (tok) {
            resume = malloc(resume_len ? resume_len : 1);
            if (!resume)
                abort();
            memcpy(resume, tok, resume_len);
        }
        okv_scan_result_free(r);
        if (!tok)
            break;
    }
    if (rc != OKV_OK) {
        jv_free(list);
        return rc;
    }
    qsort(list->items, list->n, sizeof *list->items, cmp_i64);
    *out = list;
    return OKV_OK;
}

static void set_final(jclient *cl)
{
    for (int attempt = 0; attempt < SET_FINAL_ATTEMPTS; attempt++) {
        char err[512] = "";
        jv *list = NULL;
        client_invoke(cl, "read", jv_null());
        int rc = scan_all(cl, &list, err, sizeof err);
        if (rc == OKV_OK) {
            client_complete(cl, HIST_OK, list, NULL);
            return;
        }
        client_complete(cl, HIST_FAIL, jv_null(), err);
        sleep_ms(500);
    }
}

const workload workload_set = {
    .name = "set",
    .table = SET_TABLE,
    .state_new = set_new,
    .state_free = set_free,
    .step = set_step,
    .final = set_final,
};
