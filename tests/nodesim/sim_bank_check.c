/*
 * sim_bank_check.c — the transactional workload's end (sim_bank.c): when it
 * has settled, and checks B1-B5 on the state every replica holds then.
 *
 *   B1 conservation: the balances sum to the funded total, none is
 *      negative, no lock, no PREPARED participant record, no PENDING or
 *      unfinished coordinator record is left;
 *   B2 outcomes: a transfer the driver reported committed (the vote or
 *      DECIDE applied COMMITTED) ends committed, one reported aborted does
 *      not, and so does one that TxnStatus with settle answered "for good";
 *      every participant record agrees with the decision; each balance is
 *      the funding plus exactly the transfers decided COMMITTED (and the
 *      1PC transfers answered OK); and no decided transaction's
 *      coordinator record is forgotten within the run (it is kept 10
 *      minutes);
 *   B3 replicas agree: every replica of a group, at the one applied index
 *      they all reached, holds the same balances, locks and 2PC records;
 *   B4 (during the run, sim_bank.c's auditor) every read-only transaction
 *      across groups whose checks all held saw the funded total;
 *   B5 liveness: within the bound after healing, every teller's last
 *      transfer gets a definite answer and the state of B1 is reached.
 * The state is read straight from each replica's engine (fsm_get, the meta
 * CF's 'T' records), once every replica of a group applied the same index.
 */
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "keycodec.h"
#include "sim_bank_int.h"

static bank_stats totals;

/* ---- the state at the end ------------------------------------------------------- */

typedef struct group_state {
    uint64_t applied;
    uint64_t digest;
    int locks, prepared, pending, unfinished;
    int64_t bal[BANK_ACCTS_PER_GROUP];
    int present[BANK_ACCTS_PER_GROUP];
    char first_left[160];   /* the first thing that is not settled */
} group_state;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *x = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ x[i]) * 0x100000001b3ULL;
    return h;
}

/* What replica `node` holds of group g: its applied index, balances, and
 * its 2PC records and locks (a digest of all of it, for B3). */
static int read_group(sim *s, int node, int g, group_state *out)
{
    sim_node *n = &s->nodes[node];
    memset(out, 0, sizeof *out);
    okv_error err;
    uint64_t group = sim_group_id(g);
    if (fsm_applied_index(n->reader, group, &out->applied, &err) != OKV_OK)
        return -1;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < BANK_ACCTS_PER_GROUP; i++) {
        int a = g * BANK_ACCTS_PER_GROUP + i;
        char key[32];
        size_t kl = acct_key(a, key, sizeof key);
        uint8_t *val = NULL;
        size_t vl = 0;
        uint64_t ver = 0;
        int rc = fsm_get(n->reader, SIM_TABLE, (uint32_t)g, (const uint8_t *)key, kl, &val, &vl,
                         &ver, &err);
        if (rc == OKV_OK) {
            out->present[i] = 1;
            if (txn_counter_decode(val, vl, &out->bal[i]) != 0)
                out->bal[i] = INT64_MIN;
            h = fnv(h, val, vl);
            h = fnv(h, &ver, sizeof ver);
        } else if (rc != OKV_ENOTFOUND) {
            free(val);
            return -1;
        }
        free(val);
        h = fnv(h, &out->present[i], sizeof out->present[i]);
    }
    uint8_t prefix[FSM_META_PREFIX_LEN];
    fsm_meta_prefix(prefix, 'T', group);
    engine_iter *it;
    if (engine_iter_new_prefix(&it, n->e, ENGINE_CF_META, prefix, sizeof prefix, &err) != OKV_OK)
        return -1;
    for (; engine_iter_valid(it); engine_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)engine_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)engine_iter_value(it, &vl);
        h = fnv(h, k, kl);
        h = fnv(h, v, vl);
        if (kl <= FSM_META_PREFIX_LEN)
            continue;
        char kind = (char)k[FSM_META_PREFIX_LEN];
        char what[160] = "";
        if (kind == 'L') {
            out->locks++;
            uint8_t mode;
            tpc_id holder = { 0, 0 };
            tpc_lock_decode(v, vl, &mode, &holder);
            snprintf(what, sizeof what, "a lock on '%.*s' held by %llu/%llu",
                     (int)(kl - FSM_META_PREFIX_LEN - 1), (const char *)k + FSM_META_PREFIX_LEN + 1,
                     (unsigned long long)holder.client, (unsigned long long)holder.req);
        } else if ((kind == 'P' || kind == 'C') && kl == FSM_TPC_REC_KEY_LEN) {
            unsigned long long ic = keycodec_get_u64be(k + 10), ir = keycodec_get_u64be(k + 18);
            if (kind == 'P') {
                tpc_prec p;
                if (tpc_prec_decode(v, vl, &p) == 0 && p.state == TPC_PREPARED) {
                    out->prepared++;
                    snprintf(what, sizeof what, "participant record %llu/%llu PREPARED", ic, ir);
                }
            } else {
                tpc_crec c;
                if (tpc_crec_decode(v, vl, &c) == 0 && (c.state == TPC_PENDING || !c.finished)) {
                    out->pending += c.state == TPC_PENDING;
                    out->unfinished += c.state != TPC_PENDING;
                    snprintf(what, sizeof what, "coordinator record %llu/%llu %s%s", ic, ir,
                             tpc_state_name(c.state), c.finished ? "" : ", unfinished");
                }
            }
        }
        if (what[0] && !out->first_left[0])
            snprintf(out->first_left, sizeof out->first_left, "%s", what);
    }
    int st = engine_iter_status(it, &err);
    engine_iter_free(it);
    out->digest = h;
    return st == OKV_OK ? 0 : -1;
}

static int drivers_running(const sim_bank *b)
{
    for (int i = 0; i < BANK_TELLERS; i++)
        if (b->tellers[i].busy || b->tellers[i].final_left > 0)
            return 1;
    if (b->auditor.busy)
        return 1;
    for (size_t i = 0; i < b->nxfers; i++) {
        const bank_xfer *x = &b->xfers[i];
        if (x->two_pc && x->started && !x->dead && x->phase != XP_DONE)
            return 1;
    }
    return 0;
}

/* Every replica of g up, at one applied index. Returns the index, or 0. */
static uint64_t group_converged(sim *s, int g)
{
    uint64_t at = 0;
    for (int i = 0; i < s->o.nodes; i++) {
        if (!sim_holds(s, i, g))
            continue;
        if (!s->nodes[i].up)
            return 0;
        uint64_t a = 0;
        okv_error err;
        if (fsm_applied_index(s->nodes[i].reader, sim_group_id(g), &a, &err) != OKV_OK)
            return 0;
        if (at && a != at)
            return 0;
        at = a;
    }
    return at;
}

int sim_bank_settled(sim *s)
{
    sim_bank *b = s->bank;
    if (!b)
        return 1;
    if (!b->funded || drivers_running(b))
        return 0;
    for (int g = 0; g < s->ngroups; g++)
        if (!group_converged(s, g))
            return 0;
    for (int g = 0; g < s->ngroups; g++) {
        int node = -1;
        for (int i = 0; i < s->o.nodes && node < 0; i++)
            if (sim_holds(s, i, g))
                node = i;
        group_state gs;
        if (read_group(s, node, g, &gs) != 0 || gs.locks || gs.prepared || gs.pending ||
            gs.unfinished)
            return 0;
    }
    return 1;
}

static void add_stats(bank_stats *to, const bank_stats *from)
{
    const uint64_t *f = (const uint64_t *)from;
    uint64_t *t = (uint64_t *)to;
    for (size_t i = 0; i < sizeof *from / sizeof(uint64_t); i++)
        t[i] += f[i];
}

/* The coordinator record of x at the end, from a replica of its group
 * (TPC_NONE if there is none). */
static int final_state(sim *s, int node, char kind, const tpc_group *g, const tpc_id *id,
                       uint8_t *state)
{
    uint8_t k[FSM_TPC_REC_KEY_LEN];
    fsm_tpc_rec_key(k, fsm_group_id(g->table_id, g->partition), kind, id->client, id->req);
    char *v = NULL;
    size_t vl = 0;
    okv_error err;
    int rc = engine_get(s->nodes[node].e, ENGINE_CF_META, k, sizeof k, &v, &vl, &err);
    *state = TPC_NONE;
    if (rc == OKV_ENOTFOUND)
        return 0;
    if (rc != OKV_OK)
        return -1;
    int bad;
    if (kind == 'C') {
        tpc_crec c;
        bad = tpc_crec_decode((const uint8_t *)v, vl, &c);
        *state = c.state;
    } else {
        tpc_prec p;
        bad = tpc_prec_decode((const uint8_t *)v, vl, &p);
        *state = p.state;
    }
    free(v);
    return bad ? -1 : 0;
}

static int first_replica(const sim *s, int g)
{
    for (int i = 0; i < s->o.nodes; i++)
        if (sim_holds(s, i, g))
            return i;
    return -1;
}

int sim_bank_check(sim *s, char *why, size_t cap)
{
    sim_bank *b = s->bank;
    if (!b)
        return 0;
    b->st.seeds = 1;
    b->st.seeds_vote_last = (uint64_t)b->vote_last;
    add_stats(&totals, &b->st);
    /* B5: recovery finished within the bound after healing. */
    if (!sim_bank_settled(s)) {
        char left[300] = "";
        if (!b->funded)
            snprintf(left, sizeof left, "the accounts are not all funded");
        else if (drivers_running(b))
            snprintf(left, sizeof left, "a teller's last transfer or a driver has not ended");
        for (int g = 0; g < s->ngroups && !left[0]; g++) {
            if (!group_converged(s, g)) {
                snprintf(left, sizeof left, "the replicas of group %d are not at one applied "
                         "index", g);
                break;
            }
            group_state gs;
            if (read_group(s, first_replica(s, g), g, &gs) == 0 && gs.first_left[0])
                snprintf(left, sizeof left, "group %d still holds %s (%d locks, %d prepared, "
                         "%d pending, %d unfinished)", g, gs.first_left, gs.locks, gs.prepared,
                         gs.pending, gs.unfinished);
        }
        snprintf(why, cap, "B5: %.1f s after healing (network: %s) the transfers have not "
                 "settled: %s", (double)s->o.heal_us / 1e6,
                 s->heal_mode == 0 ? "quick" : s->heal_mode == 1 ? "slow" : "one slow node",
                 left[0] ? left : "?");
        return 1;
    }
    /* B3: replicas agree. */
    group_state gs[SIM_MAX_GROUPS];
    for (int g = 0; g < s->ngroups; g++) {
        int ref = first_replica(s, g);
        if (read_group(s, ref, g, &gs[g]) != 0) {
            snprintf(why, cap, "B3: cannot read group %d on node %d", g, ref + 1);
            return 1;
        }
        for (int i = ref + 1; i < s->o.nodes; i++) {
            if (!sim_holds(s, i, g))
                continue;
            group_state o;
            if (read_group(s, i, g, &o) != 0 || o.applied != gs[g].applied ||
                o.digest != gs[g].digest) {
                snprintf(why, cap, "B3: nodes %d and %d both applied group %d up to %llu but "
                         "hold different balances, locks or 2PC records (balances %lld %lld "
                         "against %lld %lld)", ref + 1, i + 1, g,
                         (unsigned long long)gs[g].applied, (long long)gs[g].bal[0],
                         (long long)gs[g].bal[1], (long long)o.bal[0], (long long)o.bal[1]);
                return 1;
            }
        }
    }
    /* B1: conservation, nothing left locked or prepared. */
    int64_t total = 0;
    for (int g = 0; g < s->ngroups; g++)
        for (int i = 0; i < BANK_ACCTS_PER_GROUP; i++) {
            int a = g * BANK_ACCTS_PER_GROUP + i;
            if (!gs[g].present[i] || gs[g].bal[i] == INT64_MIN) {
                snprintf(why, cap, "B1: account %d (group %d) is %s at the end", a, g,
                         gs[g].present[i] ? "not a counter" : "missing");
                return 1;
            }
            if (gs[g].bal[i] < 0) {
                snprintf(why, cap, "B1: account %d (group %d) ends at %lld, below its floor of 0",
                         a, g, (long long)gs[g].bal[i]);
                return 1;
            }
            total += gs[g].bal[i];
        }
    if (total != (int64_t)b->naccts * BANK_INIT) {
        snprintf(why, cap, "B1: the balances sum to %lld, not the %lld funded (money was %s)",
                 (long long)total, (long long)b->naccts * BANK_INIT,
                 total > (int64_t)b->naccts * BANK_INIT ? "created" : "lost");
        return 1;
    }
    /* B2: each outcome as reported, each balance from the decisions. */
    int64_t expect[BANK_MAX_ACCTS];
    for (int a = 0; a < b->naccts; a++)
        expect[a] = BANK_INIT;
    const bank_xfer *forgotten = NULL;
    for (size_t i = 0; i < b->nxfers; i++) {
        const bank_xfer *x = &b->xfers[i];
        if (!x->started && x->settled < 0)
            continue;
        int committed;
        if (!x->two_pc) {
            if (x->result_1pc < 0) {
                snprintf(why, cap, "B2: 1PC transfer %llu/%llu was never answered",
                         (unsigned long long)x->id.client, (unsigned long long)x->id.req);
                return 1;
            }
            committed = x->result_1pc;
        } else {
            int cg = x->coord_group;
            tpc_group cgroup = group_of(cg);
            uint8_t c;
            if (final_state(s, first_replica(s, cg), 'C', &cgroup, &x->id, &c) != 0) {
                snprintf(why, cap, "B2: the coordinator record of %llu/%llu does not read",
                         (unsigned long long)x->id.client, (unsigned long long)x->id.req);
                return 1;
            }
            committed = c == TPC_COMMITTED;
            /* okv_txn_status with settle: "the answer is final" */
            if ((x->settled == TPC_ABORTED && committed) ||
                (x->settled == TPC_COMMITTED && !committed)) {
                snprintf(why, cap, "B2: TxnStatus (settle) answered transfer %llu/%llu (%lld from "
                         "account %d to %d) %s for good, but it ends %s (its coordinator "
                         "record in group %d)", (unsigned long long)x->id.client,
                         (unsigned long long)x->id.req, (long long)x->amount, x->from, x->to,
                         tpc_state_name((uint8_t)x->settled), tpc_state_name(c), cg);
                return 1;
            }
            if ((x->reported == TPC_COMMITTED && !committed) ||
                (x->reported == TPC_ABORTED && committed)) {
                snprintf(why, cap, "B2: the driver reported transfer %llu/%llu (%lld from account "
                         "%d to %d) %s, but its coordinator record in group %d says %s",
                         (unsigned long long)x->id.client, (unsigned long long)x->id.req,
                         (long long)x->amount, x->from, x->to,
                         x->reported == TPC_COMMITTED ? "committed" : "aborted", cg,
                         tpc_state_name(c));
                return 1;
            }
            /* A decided transaction's C is kept 10 minutes after it settles
             * (tpc.h T5): within a run it must still be there. */
            if (c == TPC_NONE && !forgotten &&
                (x->reported > 0 || x->settled == TPC_COMMITTED || x->settled == TPC_ABORTED))
                forgotten = x;
            for (int k = 0; k < x->nshares; k++) {
                int pg = (int)x->sh[k].g.partition;
                uint8_t p;
                if (final_state(s, first_replica(s, pg), 'P', &x->sh[k].g, &x->id, &p) != 0 ||
                    (committed ? p != TPC_COMMITTED : p == TPC_COMMITTED || p == TPC_PREPARED)) {
                    snprintf(why, cap, "B2: transfer %llu/%llu was decided %s, but its "
                             "participant record in group %d says %s",
                             (unsigned long long)x->id.client, (unsigned long long)x->id.req,
                             tpc_state_name(c), pg, tpc_state_name(p));
                    return 1;
                }
            }
        }
        if (committed) {
            expect[x->from] -= x->amount;
            expect[x->to] += x->amount;
        }
    }
    for (int a = 0; a < b->naccts; a++) {
        int g = acct_group(a), i = a % BANK_ACCTS_PER_GROUP;
        if (gs[g].bal[i] != expect[a]) {
            snprintf(why, cap, "B2: account %d (group %d) holds %lld, but the decided transfers "
                     "leave it at %lld", a, g, (long long)gs[g].bal[i], (long long)expect[a]);
            return 1;
        }
    }
    if (forgotten) {
        snprintf(why, cap, "B2: transfer %llu/%llu was answered %s, yet its coordinator record "
                 "in group %d was forgotten within the %.0f s run (a settled C is kept 10 "
                 "minutes: TxnStatus now calls it unknown)",
                 (unsigned long long)forgotten->id.client, (unsigned long long)forgotten->id.req,
                 forgotten->settled == TPC_COMMITTED || forgotten->settled == TPC_ABORTED
                     ? (forgotten->settled == TPC_COMMITTED ? "committed (TxnStatus settle)"
                                                            : "aborted (TxnStatus settle)")
                     : (forgotten->reported == TPC_COMMITTED ? "committed" : "aborted"),
                 forgotten->coord_group, (double)(s->o.fault_us + s->o.heal_us) / 1e6);
        return 1;
    }
    return 0;
}

void sim_bank_stats_print(void)
{
    const bank_stats *t = &totals;
    if (!t->seeds)
        return;
    printf("bank: %llu seeds, %llu transfers (%llu across groups [%llu with 3 participants, %llu "
           "read-only participants]: %llu committed, %llu aborted "
           "[%llu on a lock, %llu on a floor], %llu unknown, %llu never reached a node; 1PC: "
           "%llu ok, %llu refused)\n",
           (unsigned long long)t->seeds, (unsigned long long)t->xfers,
           (unsigned long long)t->xfers_2pc, (unsigned long long)t->three_shares,
           (unsigned long long)t->read_only_shares, (unsigned long long)t->committed,
           (unsigned long long)t->aborted, (unsigned long long)t->locked_refusals,
           (unsigned long long)t->floor_refusals, (unsigned long long)t->unknown,
           (unsigned long long)t->never_started, (unsigned long long)t->one_pc_ok,
           (unsigned long long)t->one_pc_refused);
    printf("bank: %llu seeds with the coordinator voting last (votes: %llu committed, %llu "
           "refused or unanswered), the others PREPARE then DECIDE\n",
           (unsigned long long)t->seeds_vote_last, (unsigned long long)t->votes_committed,
           (unsigned long long)t->votes_refused);
    printf("bank: drivers that died in PREPARE %llu, the vote %llu, DECIDE %llu, RESOLVE %llu, "
           "FINISH %llu, before PREPARE %llu; crash points hit: before PREPARE %llu, before "
           "DECIDE / the vote %llu, before answering %llu, before RESOLVE %llu, before FINISH "
           "%llu; targets crashed %llu, handed off %llu after proposing\n",
           (unsigned long long)t->driver_died[XP_PREPARE],
           (unsigned long long)t->driver_died[XP_VOTE],
           (unsigned long long)t->driver_died[XP_DECIDE],
           (unsigned long long)t->driver_died[XP_RESOLVE],
           (unsigned long long)t->driver_died[XP_FINISH],
           (unsigned long long)t->driver_died[XP_NEW], (unsigned long long)t->crash_home[0],
           (unsigned long long)t->crash_home[1], (unsigned long long)t->crash_home[2],
           (unsigned long long)t->crash_home[3], (unsigned long long)t->crash_home[4],
           (unsigned long long)t->crash_target, (unsigned long long)t->transfer_target);
    printf("bank: PREPAREs sent again after meeting a lock: %llu; read-only transactions "
           "across groups: %llu passed their checks, %llu refused, %llu checks sent again after "
           "meeting only locks\n",
           (unsigned long long)t->lock_waits, (unsigned long long)t->audits_ok,
           (unsigned long long)t->audits_refused, (unsigned long long)t->audit_rechecks);
    printf("bank: TxnStatus with settle after an unknown outcome: %llu committed, %llu "
           "aborted, %llu other; FORGETs sent %llu\n",
           (unsigned long long)t->status_committed, (unsigned long long)t->status_aborted,
           (unsigned long long)t->status_other, (unsigned long long)t->forgets);
    printf("bank: sweeper chains: CHECK of a pending C %llu, RESOLVE of an unfinished C %llu, "
           "CHECK for a prepared P %llu (%llu found it committed), died %llu\n",
           (unsigned long long)t->chains_check_c, (unsigned long long)t->chains_resolve_c,
           (unsigned long long)t->chains_check_p, (unsigned long long)t->check_p_committed,
           (unsigned long long)t->chains_died);
    static const char *const kinds[] = { "", "PREPARE", "DECIDE", "RESOLVE", "CHECK", "FINISH" };
    printf("bank: steps answered by another node than first asked / resent / out of budget:");
    for (int k = TPC_PREPARE; k <= TPC_FINISH; k++)
        printf(" %s %llu/%llu/%llu", kinds[k], (unsigned long long)t->step_moved[k],
               (unsigned long long)t->step_retried[k], (unsigned long long)t->step_failed[k]);
    printf("\n");
}
