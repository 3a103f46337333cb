/*
 * sim_check.c — what every run must show:
 *   C1. state machine safety: every replica applies the same command at
 *       the same index, also when it applies it again after a restart;
 *   C2. exactly-once: a (client id, request id) takes effect at most once
 *       in a group;
 *   C3. nothing acknowledged is lost: the entry at an acknowledged write's
 *       version is that write, on every replica that applied that index;
 *   C4. every key's history is linearizable (jepsen/checker/linear.h);
 *   C5. liveness: after healing, every group has one leader that all its
 *       replicas know, and a write by every client and then a read of
 *       every key succeed, within the bound;
 *   C6. a write answered "certainly not applied" (UNAVAILABLE) took effect
 *       nowhere;
 *   C7. no replica stops on an entry it cannot apply (sim_node.c: the
 *       state machine refused it, e.g. a 2PC write failing at RESOLVE).
 * C1 compares the entries' bytes (a digest), and for transactions and 2PC
 * steps also what applying them answered: every replica must reach the
 * same outcome from the same entry (tpc.h: the rules are deterministic).
 * The transactional workload's own checks (B1-B5) are in sim_bank.c and
 * sim_bank_check.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linear.h"
#include "nodesim.h"

static void fail(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(sim *s, const char *fmt, ...)
{
    if (s->failure[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->failure, sizeof s->failure, fmt, ap);
    va_end(ap);
}

static int same_cmd(const sim_applied *a, const sim_applied *b)
{
    return a->client_id == b->client_id && a->request_id == b->request_id &&
           a->value == b->value && a->term == b->term && a->digest == b->digest;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* What applying a transaction or a 2PC step answered, as one number. */
static uint64_t outcome_of(const command_result *r)
{
    uint64_t v[6] = { (uint64_t)(int64_t)r->code, r->version, (uint64_t)r->existed, r->failed,
                      r->reason, r->tpc_state };
    return fnv(0xcbf29ce484222325ULL, v, sizeof v);
}

void sim_observe_apply(sim *s, int node, uint64_t group, const struct raft_entry *e,
                       const command_result *r)
{
    int g = sim_group_index(group);
    if (g < 0 || g >= s->ngroups)
        return;
    sim_applied rec;
    memset(&rec, 0, sizeof rec);
    rec.index = e->index;
    rec.term = e->term;
    rec.digest = fnv(0xcbf29ce484222325ULL, e->data, e->len);
    if (e->type == RAFT_ENTRY_NORMAL && e->len > 0) {
        command c;
        okv_error err;
        if (command_decode(e->data, e->len, &c, &err) == OKV_OK) {
            if (c.op == CMD_TXN || c.op == CMD_TPC)
                rec.outcome = outcome_of(r);
            rec.client_id = c.client_id;
            rec.request_id = c.request_id;
            uint64_t v = 0;
            for (size_t b = 0; b < 8 && b < c.value_len; b++)
                v |= (uint64_t)c.value[b] << (8 * b);
            rec.value = (int64_t)v;
            rec.effect = r->code == OKV_OK && r->version == e->index;
        }
    }
    size_t *cap = &s->capapplied[node][g];
    if (e->index >= *cap) {
        size_t nc = *cap ? *cap : 256;
        while (nc <= e->index)
            nc *= 2;
        sim_applied *a = realloc(s->applied[node][g], nc * sizeof *a);
        if (!a)
            abort();
        memset(a + *cap, 0, (nc - *cap) * sizeof *a);
        s->applied[node][g] = a;
        *cap = nc;
    }
    sim_applied *slot = &s->applied[node][g][e->index];
    if (slot->index && !same_cmd(slot, &rec))
        fail(s, "C1: node %d applied two different entries at index %llu of group %d "
                "(after a restart)", node + 1, (unsigned long long)e->index, g);
    if (slot->index && slot->effect != rec.effect)
        fail(s, "C2: node %d re-applied index %llu of group %d with another outcome", node + 1,
             (unsigned long long)e->index, g);
    if (slot->index && same_cmd(slot, &rec) && slot->outcome != rec.outcome)
        fail(s, "C1: node %d re-applied the transaction at index %llu of group %d with another "
                "outcome", node + 1, (unsigned long long)e->index, g);
    *slot = rec;
    if (e->index + 1 > s->napplied[node][g])
        s->napplied[node][g] = e->index + 1;
    for (int o = 0; o < s->o.nodes; o++) {
        if (o == node || e->index >= s->napplied[o][g])
            continue;
        const sim_applied *other = &s->applied[o][g][e->index];
        if (other->index && !same_cmd(other, &rec))
            fail(s, "C1: nodes %d and %d applied different entries at index %llu of group %d",
                 o + 1, node + 1, (unsigned long long)e->index, g);
        else if (other->index && other->outcome != rec.outcome)
            fail(s, "C1: nodes %d and %d applied the transaction at index %llu of group %d with "
                    "different outcomes", o + 1, node + 1, (unsigned long long)e->index, g);
    }
}

void sim_observe_answer(sim *s, int node, uint64_t group, uint64_t index, uint64_t term,
                        int code)
{
    if (code != OKV_EUNAVAILABLE)
        return;
    if (s->nclaims == s->capclaims) {
        s->capclaims = s->capclaims ? s->capclaims * 2 : 64;
        s->claims = realloc(s->claims, s->capclaims * sizeof *s->claims);
        if (!s->claims)
            abort();
    }
    s->claims[s->nclaims++] = (struct sim_claim){ node, sim_group_index(group), index, term };
}

static int cmp_effect(const void *a, const void *b)
{
    const sim_applied *x = a, *y = b;
    if (x->client_id != y->client_id)
        return x->client_id < y->client_id ? -1 : 1;
    if (x->request_id != y->request_id)
        return x->request_id < y->request_id ? -1 : 1;
    return 0;
}

int sim_check_applied(sim *s, char *why, size_t cap)
{
    /* C6 at the store: the entry of a proposal answered UNAVAILABLE was
     * applied nowhere (whatever the client made of the answer). */
    for (size_t i = 0; i < s->nclaims; i++) {
        const struct sim_claim *c = &s->claims[i];
        for (int n = 0; n < s->o.nodes; n++) {
            if (c->group < 0 || c->group >= s->ngroups || c->index >= s->napplied[n][c->group])
                continue;
            const sim_applied *a = &s->applied[n][c->group][c->index];
            if (a->index && a->term == c->term) {
                snprintf(why, cap, "C6: node %d answered its proposal at index %llu term %llu "
                                   "of group %d as certainly not applied, but node %d applied "
                                   "that entry",
                         c->node + 1, (unsigned long long)c->index, (unsigned long long)c->term,
                         c->group, n + 1);
                return 1;
            }
        }
    }
    for (int n = 0; n < s->o.nodes; n++)
        for (int g = 0; g < s->ngroups; g++) {
            size_t k = 0, len = s->napplied[n][g];
            sim_applied *eff = malloc((len ? len : 1) * sizeof *eff);
            if (!eff)
                abort();
            for (size_t i = 0; i < len; i++)
                if (s->applied[n][g][i].index && s->applied[n][g][i].effect &&
                    s->applied[n][g][i].client_id)
                    eff[k++] = s->applied[n][g][i];
            qsort(eff, k, sizeof *eff, cmp_effect);
            for (size_t i = 1; i < k; i++)
                if (!cmp_effect(&eff[i - 1], &eff[i])) {
                    snprintf(why, cap, "C2: request %llu of client %llu took effect twice in "
                                       "group %d on node %d (indexes %llu and %llu)",
                             (unsigned long long)eff[i].request_id,
                             (unsigned long long)eff[i].client_id, g, n + 1,
                             (unsigned long long)eff[i - 1].index,
                             (unsigned long long)eff[i].index);
                    free(eff);
                    return 1;
                }
            free(eff);
        }
    for (size_t i = 0; i < s->nops; i++) {
        const sim_op *op = &s->ops[i];
        if (op->kind != OP_WRITE || op->type != OP_FAIL)
            continue;
        int g = op->key / SIM_KEYS_PER_GROUP;
        for (int n = 0; n < s->o.nodes; n++)
            for (size_t x = 0; x < s->napplied[n][g]; x++) {
                const sim_applied *a = &s->applied[n][g][x];
                if (a->index && a->effect && a->client_id == op->client_id &&
                    a->request_id == op->request_id) {
                    snprintf(why, cap, "C6: client %d's write of %lld to key %d (request %llu) "
                                       "was answered as certainly not applied, but node %d "
                                       "applied it at index %llu",
                             op->client, (long long)op->value, op->key,
                             (unsigned long long)op->request_id, n + 1,
                             (unsigned long long)a->index);
                    return 1;
                }
            }
    }
    for (size_t i = 0; i < s->nops; i++) {
        const sim_op *op = &s->ops[i];
        if (op->kind != OP_WRITE || op->type != OP_OK)
            continue;
        int g = op->key / SIM_KEYS_PER_GROUP;
        for (int n = 0; n < s->o.nodes; n++) {
            if (op->version >= s->napplied[n][g])
                continue;
            const sim_applied *a = &s->applied[n][g][op->version];
            if (a->index && (a->client_id != op->client_id || a->request_id != op->request_id ||
                             a->value != op->value)) {
                snprintf(why, cap, "C3: client %d's write of %lld to key %d (request %llu) was "
                                   "acknowledged at version %llu, but node %d applied request "
                                   "%llu of client %llu (value %lld) there",
                         op->client, (long long)op->value, op->key,
                         (unsigned long long)op->request_id, (unsigned long long)op->version,
                         n + 1, (unsigned long long)a->request_id,
                         (unsigned long long)a->client_id, (long long)a->value);
                return 1;
            }
        }
    }
    return 0;
}

int sim_check_history(sim *s, char *why, size_t cap)
{
    lin_op *ops = malloc((s->nops ? s->nops : 1) * sizeof *ops);
    if (!ops)
        abort();
    for (int key = 0; key < s->nkeys; key++) {
        size_t n = 0;
        for (size_t i = 0; i < s->nops; i++) {
            const sim_op *op = &s->ops[i];
            if (op->key != key || op->type == OP_FAIL || op->type == OP_PENDING)
                continue;
            if (op->kind == OP_READ && op->type != OP_OK)
                continue;
            lin_op *l = &ops[n++];
            memset(l, 0, sizeof *l);
            l->kind = op->kind == OP_WRITE ? LIN_WRITE : LIN_READ;
            l->a.v = op->null ? 0 : op->value;
            l->a.null = op->kind == OP_READ && op->null;
            l->call = (size_t)op->call;
            l->ret = op->type == OP_OK ? (size_t)op->ret : LIN_NEVER;
        }
        lin_limits lim = { 2000000, 0, NULL, NULL };
        lin_report rep;
        if (lin_check(ops, n, &lim, &rep) != 0) {
            snprintf(why, cap, "C4: out of memory checking key %d", key);
            free(ops);
            return 1;
        }
        if (rep.outcome == LIN_VIOLATION) {
            char tail[400] = "";
            size_t off = 0;
            for (size_t t = 0; t < rep.n_best_tail && off < sizeof tail - 40; t++) {
                const lin_op *l = &ops[rep.best_tail[t]];
                off += (size_t)snprintf(tail + off, sizeof tail - off, " %s %s%lld",
                                        l->kind == LIN_WRITE ? "w" : "r", l->a.null ? "null" : "",
                                        l->a.null ? 0LL : (long long)l->a.v);
            }
            const lin_op *b = rep.blocking != LIN_NEVER ? &ops[rep.blocking] : NULL;
            snprintf(why, cap, "C4: key %d is not linearizable (%zu ops): after%s (value %s%lld) "
                               "the %s of %s%lld cannot be placed",
                     key, n, tail, rep.best_state.null ? "null" : "",
                     rep.best_state.null ? 0LL : (long long)rep.best_state.v,
                     b ? (b->kind == LIN_WRITE ? "write" : "read") : "op",
                     b && b->a.null ? "null" : "", b && !b->a.null ? (long long)b->a.v : 0LL);
            free(ops);
            return 1;
        }
        if (rep.outcome != LIN_LINEARIZABLE) {
            snprintf(why, cap, "C4: key %d: the linearizability search gave up (%llu states)",
                     key, (unsigned long long)rep.states);
            free(ops);
            return 1;
        }
    }
    free(ops);
    return 0;
}

int sim_leaders_agree(sim *s)
{
    char why[8];
    return sim_check_leaders(s, why, sizeof why) == 0;
}

int sim_check_live(sim *s, char *why, size_t cap)
{
    const sim_client *c = &s->clients[0];
    (void)c;
    if (!sim_clients_idle(s)) {
        int left = 0;
        for (int i = 0; i < SIM_CLIENTS; i++)
            left += s->clients[i].final_reads + s->clients[i].final_writes +
                    (s->clients[i].op >= 0);
        snprintf(why, cap, "C5: %.1f s after healing (network: %s), %d of the writes and "
                           "reads every client must then get done are not",
                 (double)s->o.heal_us / 1e6,
                 s->heal_mode == 0 ? "quick" : s->heal_mode == 1 ? "slow" : "one slow node",
                 left);
        return 1;
    }
    return sim_check_leaders(s, why, cap);
}

int sim_check_leaders(sim *s, char *why, size_t cap)
{
    for (int g = 0; g < s->ngroups; g++) {
        uint64_t leader = 0;
        for (int n = 0; n < s->o.nodes; n++) {
            if (!sim_holds(s, n, g))
                continue;
            uint64_t l = raftstore_leader(s->nodes[n].rs, sim_group_id(g));
            if (!l || (leader && l != leader)) {
                snprintf(why, cap, "C5: %.1f s after healing, group %d has no leader all its "
                                   "replicas know (node %d says %llu)",
                         (double)s->o.heal_us / 1e6, g, n + 1, (unsigned long long)l);
                return 1;
            }
            leader = l;
        }
    }
    return 0;
}
