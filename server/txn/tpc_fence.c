/*
 * tpc_fence.c — the backup fence's rules (tpc.h "The backup fence").
 *
 * Record 'F', id {0, 0}, in the group's 2PC records:
 *   0 u8 format (1)   1 u64 fence id   9 u64 expiry (clock ms)
 *
 * Pure like the rest of tpc: the only clock is the one the proposing
 * leader stamped into the entry, so every replica judges "does the fence
 * stand" the same way for the same entry.
 */
#include "tpc.h"

#include <stdlib.h>

#include "failpoint.h"
#include "keycodec.h"

#define FENCE_LEN 17u

static const tpc_id fence_rec_id = { 0, 0 };

int tpc_fence_active(const uint8_t *val, size_t len, uint64_t now_ms, uint64_t *id)
{
    if (len != FENCE_LEN || val[0] != 1)
        return 0;
    if (id)
        *id = keycodec_get_u64be(val + 1);
    return now_ms < keycodec_get_u64be(val + 9);
}

/* The group's fence record, if any: OKV_OK with *found, or an error. */
static int fence_load(const tpc_store *s, uint8_t **val, size_t *len, int *found,
                      okv_error *err)
{
    *val = NULL;
    *len = 0;
    int rc = s->rec_get(s->ctx, 'F', &fence_rec_id, val, len, err);
    *found = rc == OKV_OK;
    if (rc == OKV_OK && (*len != FENCE_LEN || (*val)[0] != 1)) {
        free(*val);
        *val = NULL;
        return okv_error_set(err, OKV_ECORRUPT, "a backup fence record of %zu bytes", *len);
    }
    return rc == OKV_ENOTFOUND ? OKV_OK : rc;
}

int tpc_fence_check(const tpc_msg *m, const tpc_store *s, int *fenced, okv_error *err)
{
    *fenced = 0;
    uint8_t *v;
    size_t len;
    int found;
    int rc = fence_load(s, &v, &len, &found, err);
    if (rc == OKV_OK && found)
        *fenced = tpc_fence_active(v, len, m->clock_ms, NULL);
    free(v);
    /* Planted bug (cluster.backup_fence): PREPAREs pass a standing fence,
     * so a backup's per-partition cuts can split a transaction. */
    if (*fenced && OKV_FAILPOINT("tpc.prepare.ignore_fence"))
        *fenced = 0;
    return rc;
}

int tpc_fence_apply(const tpc_msg *m, const tpc_store *s, tpc_result *out, okv_error *err)
{
    uint8_t *v;
    size_t len;
    int found;
    int rc = fence_load(s, &v, &len, &found, err);
    if (rc)
        return rc;
    uint64_t holder = 0;
    int stands = found && tpc_fence_active(v, len, m->clock_ms, &holder);
    if (found && !stands)
        holder = keycodec_get_u64be(v + 1);
    free(v);
    if (m->flag == 0) {
        /* Lift: only the fence's own backup lifts it. */
        out->state = TPC_ABORTED;
        if (found && holder == m->id.client)
            return s->rec_put(s->ctx, 'F', &fence_rec_id, NULL, 0, err);
        return OKV_OK;
    }
    if (stands && holder != m->id.client) {
        out->code = OKV_ECONFLICT;
        out->state = TPC_NONE;
        out->fail = (tpc_fail){ OKV_ECONFLICT, 0, 0 };
        return OKV_OK;
    }
    uint64_t life = m->deadline_ms < TPC_FENCE_MAX_MS ? m->deadline_ms : TPC_FENCE_MAX_MS;
    uint8_t rec[FENCE_LEN];
    rec[0] = 1;
    keycodec_put_u64be(rec + 1, m->id.client);
    keycodec_put_u64be(rec + 9, m->clock_ms + life);
    out->state = TPC_COMMITTED;
    return s->rec_put(s->ctx, 'F', &fence_rec_id, rec, sizeof rec, err);
}
