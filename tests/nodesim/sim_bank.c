/*
 * sim_bank.c — the transactional workload (--bank): money transfers across
 * partitions through the real two-phase commit rules (server/txn/tpc.c,
 * applied by server/sm/fsm.c for command op CMD_TPC), under every fault the
 * simulator makes.
 *
 * Accounts are 8-byte counters (txn_counter_encode), BANK_ACCTS_PER_GROUP in
 * each group, funded once with BANK_INIT by a put that only creates (a
 * retry of it changes nothing). Tellers (outside clients, like
 * sim_client.c's) then move money: a transfer is add_floor(-x, 0) on one
 * account and add(+x) on another, in a random order (the first write's
 * group coordinates), 30 % of those across groups also on the condition
 * that a third account is >= 0 (always true: a shared lock, and on 5 nodes
 * often a third participant that only reads). Across groups it is a 2PC
 * transaction run by a driver on a random node (the node whose KV.Txn
 * service took the call); inside one group it is one TXN command (1PC)
 * with the teller's client id and request id, resent until answered
 * (exactly-once makes the answer certain). A teller's KV.Txn call has its
 * own deadline (30-250 % of T per seed; liborderkv's default 5 s against
 * orderkvd's 10 s is 50 %) and fails at once when the driver's node goes
 * down; after such an unknown outcome the teller calls okv_txn_status,
 * which across partitions settles the answer for good (KV.TxnStatus with
 * settle: CHECK flag TPC_CHECK_SETTLE at the coordinator).
 *
 * The driver and the sweeper follow server/coord/tpc_driver.c and
 * tpc_sweep.c step by step, with the simulator standing in for gRPC and
 * liborderkv's internal client:
 *   driver   split the request as split() does, PREPARE every share (the
 *            coordinator's lists the participants; one that met a lock is
 *            sent again after 2..64 ms, up to 6 times, within the deadline;
 *            budget T/2; no answer counts as a refusal) -> DECIDE at the
 *            coordinator (budget T; no answer: EUNKNOWN, the run ends) ->
 *            the teller's answer is DECIDE's applied outcome -> RESOLVE the
 *            other shares -> FINISH once they all resolved. In half the
 *            seeds the coordinator votes last instead (tpc_driver.c as it
 *            is being changed to): PREPARE the other shares, then the
 *            coordinator's PREPARE with flag 1 commits in its own entry
 *            when its share passes; refused or unanswered, DECIDE ABORT
 *            (whose compare-and-swap also reveals a vote that applied);
 *   sweeper  every node, every sweep interval, for the groups it leads,
 *            reads its own engine's 2PC records and starts the chains
 *            tpc_sweep.c starts: C PENDING past deadline + grace -> CHECK
 *            with abort, then RESOLVE the others and FINISH; C decided and
 *            unfinished -> RESOLVE the others, FINISH; P PREPARED past
 *            deadline + grace -> CHECK with abort at its coordinator, then
 *            RESOLVE here; C finished / P settled past its retention (tpc.h,
 *            not scaled) -> FORGET. A round starts when the last one's
 *            chains ended.
 * A step travels as service_tpc.c's KV.TxnPart does: node to node (cut
 * links drop it, a crashed target refuses the connection), proposed by the
 * target as a TPC command (client id 0) with the target's wall clock in
 * PREPARE and CHECK; NOT_LEADER is followed, any other failure resent
 * within the step's budget. A driver or chain dies with its node (a crash
 * ends the process that ran it). Wall clocks (the clocks in messages) are
 * simulated time plus a per-node skew of up to +-BANK_SKEW_MS.
 *
 * Faults of its own, on top of the nemesis (only while faults are on):
 * the driver's node crashes at a step boundary (tpc_driver.c's crash
 * failpoints: before PREPARE, before DECIDE, before the answer, before
 * RESOLVE, before FINISH), and a step's target crashes or hands its
 * leadership away right after proposing it.
 *
 * An auditor reads every account while the tellers work, as a read-only
 * transaction across groups commits in client/client_tx.c: one linearizable
 * read point per group, then one check per group of the versions read (a
 * TXN of VERSION_EQ conditions, which an exclusive lock also fails), sent
 * again after 5, 15, 25 ms when they met only locks. An audit whose checks
 * all held is a snapshot: its total must be the funded one (B4).
 *
 * Once everything healed and recovery finished, sim_bank_check.c checks
 * the state every replica holds (B1 conservation, B2 the decided outcomes,
 * B3 replicas agree, B5 recovery finishes in time).
 * C1 (sim_check.c) also holds every replica to the same outcome for each
 * TXN and TPC entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "keycodec.h"
#include "sim_bank_int.h"

static const char *const phase_name[XP_NPHASES] = { "before PREPARE", "PREPARE", "the vote",
                                                    "DECIDE", "RESOLVE", "FINISH", "done" };

/* ---- small things ------------------------------------------------------------ */

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    *cap = *cap ? *cap * 2 : 64;
    p = realloc(p, *cap * size);
    if (!p)
        abort();
    return p;
}


static int group_index_of(const sim *s, const tpc_group *g)
{
    return g->table_id == SIM_TABLE && g->partition < (uint32_t)s->ngroups ? (int)g->partition
                                                                             : -1;
}

/* A node's wall clock (tpc_wall_ms): simulated time plus the node's skew. */
static uint64_t wall_ms(const sim *s, int node)
{
    int64_t us = (int64_t)(BANK_WALL_EPOCH_US + s->now);
    if (node >= 0)
        us += s->nodes[node].wall_skew_us;
    return (uint64_t)us / 1000u;
}

static int per_mille(sim *s, unsigned pm)
{
    return pm && sim_rand(s) % 1000 < pm;
}

/* Node-to-node delay of a gRPC message (TCP: late, never lost on a whole
 * link), as sim_net.c delays raft messages; -1 sender: an outside client. */
static uint64_t net_delay(sim *s, int from, int to)
{
    if (from < 0 || to < 0 || from == to)
        return sim_between(s, 100, 500);
    if (!s->faults_on && s->heal_mode == 1)
        return sim_between(s, 12000, 25000);
    if (!s->faults_on && s->heal_mode == 2 && (from == s->slow_node || to == s->slow_node))
        return sim_between(s, 30000, 60000);
    uint64_t base = sim_chance(s, 3) ? sim_between(s, 2000, 30000) : sim_between(s, 200, 2000);
    return base + s->slow[from][to];
}

static int down_count(const sim *s)
{
    int k = 0;
    for (int i = 0; i < s->o.nodes; i++)
        k += !s->nodes[i].up;
    return k;
}

/* A crash with a power cut, restarted later, as the nemesis makes them
 * (never more nodes down than a quorum allows). */
static int crash_node(sim *s, int x, const char *why)
{
    sim_node *n = &s->nodes[x];
    if (!s->faults_on || !n->up || down_count(s) >= (s->o.nodes - 1) / 2)
        return 0;
    sim_logf(s, "bank: node %d crashes (%s)", x + 1, why);
    sim_node_crash(s, n);
    uint64_t back = sim_chance(s, 50) ? sim_between(s, 2000, 60000) : sim_between(s, 30000, 400000);
    sim_schedule(s, s->now + back, EV_RESTART, x, n->incarnation, NULL, 0, 0, 0);
    return 1;
}

static int replica_of(const sim *s, int node, int g)
{
    return node >= 0 && node < s->o.nodes && sim_holds(s, node, g);
}

static int random_replica(sim *s, int g)
{
    for (;;) {
        int n = (int)sim_between(s, 0, (uint64_t)s->o.nodes - 1);
        if (sim_holds(s, n, g))
            return n;
    }
}

static int code_of_refusal(int code)
{
    /* service_tpc.c answers the refusal as an ErrorCode; tpc_code_of maps
     * it back: CONDITION_FAILED, INVALID_ARGUMENT, else CONFLICT. */
    if (code == OKV_OK || code == OKV_ECONDITION || code == OKV_EINVAL)
        return code;
    return OKV_ECONFLICT;
}

/* ---- steps: one message to the leader of a group (tpc_send) ------------------ */

static void step_done(sim *s, sim_bank *b, int id);
static void owner_died(sim *s, sim_bank *b, bank_step *st);

static int new_step(sim_bank *b, int owner_kind, int owner, int slot, int home, uint64_t home_inc,
                    int group)
{
    b->steps = grow(b->steps, &b->capsteps, b->nsteps, sizeof *b->steps);
    int id = (int)b->nsteps++;
    bank_step *st = &b->steps[id];
    memset(st, 0, sizeof *st);
    st->live = 1;
    st->owner_kind = owner_kind;
    st->owner = owner;
    st->slot = slot;
    st->home = home;
    st->home_inc = home_inc;
    st->group = group;
    st->first_target = -1;
    st->last.rc = OKV_ETIMEDOUT;
    return id;
}

static int sender_dead(const sim *s, const bank_step *st)
{
    return st->home >= 0 &&
           (!s->nodes[st->home].up || s->nodes[st->home].incarnation != st->home_inc);
}

static void attempt(sim *s, sim_bank *b, int id, int target)
{
    bank_step *st = &b->steps[id];
    if (st->attempts > 0 && s->now >= st->end) {
        st->live = 0;
        if (st->kind)
            b->st.step_failed[st->kind]++;
        step_done(s, b, id);
        return;
    }
    if (!replica_of(s, target, st->group)) {
        int g = b->leader_guess[st->home + 1][st->group];
        target = g >= 0 && sim_chance(s, 85) ? g : random_replica(s, st->group);
    }
    if (st->first_target < 0)
        st->first_target = target;
    st->attempts++;
    st->gen++;
    uint64_t at = s->now + net_delay(s, st->home, target);
    sim_schedule(s, at, EV_BANK, BEV_STEP_REQ, st->gen, NULL, 0, (uint64_t)id, (uint64_t)target);
    uint64_t wait = s->faults_on ? BANK_ATTEMPT_US : BANK_ATTEMPT_HEALED_US;
    if (st->end != BANK_FOREVER && st->end > s->now && st->end - s->now < wait)
        wait = st->end - s->now;
    sim_schedule(s, s->now + wait + 1, EV_BANK, BEV_STEP_TIMEOUT, st->gen, NULL, 0, (uint64_t)id,
                 0);
}

/* Sends a TPC step (msg is copied) with a budget of `budget_us`. */
static void send_tpc(sim *s, sim_bank *b, const tpc_msg *m, int owner_kind, int owner, int slot,
                     int home, uint64_t home_inc, uint64_t budget_us)
{
    int g = group_index_of(s, &m->self);
    int id = new_step(b, owner_kind, owner, slot, home, home_inc, g);
    bank_step *st = &b->steps[id];
    st->kind = m->kind;
    st->msg_len = tpc_msg_encoded_size(m);
    st->msg = malloc(st->msg_len);
    if (!st->msg)
        abort();
    tpc_msg_encode(m, st->msg);
    st->end = budget_us == BANK_FOREVER ? BANK_FOREVER : s->now + budget_us;
    attempt(s, b, id, -1);
}

/* Sends a command (taken) from an outside client, resent until applied. */
static void send_cmd(sim *s, sim_bank *b, uint8_t *cmd, size_t len, int group, int owner_kind,
                     int owner)
{
    int id = new_step(b, owner_kind, owner, 0, -1, 0, group);
    bank_step *st = &b->steps[id];
    st->cmd = cmd;
    st->cmd_len = len;
    st->end = BANK_FOREVER;
    attempt(s, b, id, -1);
}

typedef struct step_ctx {
    sim *s;
    int id, target;
    uint64_t gen;
} step_ctx;

static void reply_later(sim *s, int id, uint64_t gen, int target, int home, const step_reply *r)
{
    step_reply *p = malloc(sizeof *p);
    if (!p)
        abort();
    *p = *r;
    sim_schedule(s, s->now + net_delay(s, target, home), EV_BANK, BEV_STEP_REPLY, gen, p,
                 sizeof *p, (uint64_t)id, (uint64_t)target);
}

/* service_tpc.c step_applied / the KV service's write answer. */
static void step_applied(void *arg, int code, const command_result *r, uint64_t leader)
{
    step_ctx *x = arg;
    sim *s = x->s;
    step_reply rep;
    memset(&rep, 0, sizeof rep);
    rep.rc = code;
    rep.leader = leader;
    if (code == OKV_OK && r) {
        rep.state = r->tpc_state;
        rep.fail.code = code_of_refusal(r->code);
        rep.fail.failed = r->failed;
        rep.fail.reason = r->reason;
        rep.rcode = r->code;
    }
    if (s->bank && (size_t)x->id < s->bank->nsteps)
        reply_later(s, x->id, x->gen, x->target, s->bank->steps[x->id].home, &rep);
    free(x);
}

/* Right after proposing a step, its target sometimes crashes or hands its
 * leadership to another replica: the step's outcome is then open, and its
 * resend meets the new leader. */
static void target_fault(sim *s, sim_bank *b, int target, int g)
{
    if (!s->faults_on || !per_mille(s, b->target_pm))
        return;
    if (sim_chance(s, 50)) {
        if (crash_node(s, target, "right after proposing a 2PC step"))
            b->st.crash_target++;
        return;
    }
    uint64_t gid = sim_group_id(g);
    if (raftstore_leader(s->nodes[target].rs, gid) != (uint64_t)target + 1)
        return;
    int to = random_replica(s, g);
    if (to != target) {
        raftstore_transfer_leader(s->nodes[target].rs, gid, (uint64_t)to + 1);
        sim_logf(s, "bank: group %d handed from node %d to node %d after a step", g, target + 1,
                 to + 1);
        b->st.transfer_target++;
    }
}

/* The auditor's read of group g's accounts at node t, as the KV service
 * reads: at once under a lease, else at raftstore_read's read point, from
 * the node's applied state. (orderkvd's reads also settle a lock they
 * meet first; the checks that follow catch a read of a locked key
 * anyway, so the simulated reads skip that.) */
static void read_accounts(sim *s, int t, int g, step_reply *r)
{
    sim_node *n = &s->nodes[t];
    for (int i = 0; i < BANK_ACCTS_PER_GROUP && r->rc == OKV_OK; i++) {
        char key[32];
        size_t kl = acct_key(g * BANK_ACCTS_PER_GROUP + i, key, sizeof key);
        uint8_t *val = NULL;
        size_t vl = 0;
        okv_error err;
        int rc = fsm_get(n->reader, SIM_TABLE, (uint32_t)g, (const uint8_t *)key, kl, &val, &vl,
                         &r->ver[i], &err);
        if (rc == OKV_OK && txn_counter_decode(val, vl, &r->val[i]) != 0)
            rc = OKV_EINVAL;
        if (rc != OKV_OK)
            r->rc = rc == OKV_ENOTFOUND ? OKV_EUNAVAILABLE : rc;   /* not funded yet */
        free(val);
    }
}

static void audit_read_done(void *arg, int code, uint64_t leader)
{
    step_ctx *x = arg;
    sim *s = x->s;
    step_reply rep;
    memset(&rep, 0, sizeof rep);
    rep.rc = code;
    rep.leader = leader;
    if (code == OKV_OK && !s->nodes[x->target].up)
        rep.rc = OKV_EUNAVAILABLE;
    if (rep.rc == OKV_OK)
        read_accounts(s, x->target, s->bank->steps[x->id].group, &rep);
    reply_later(s, x->id, x->gen, x->target, -1, &rep);
    free(x);
}

static void audit_read_at(sim *s, int id, int t)
{
    bank_step *st = &s->bank->steps[id];
    uint64_t gid = sim_group_id(st->group);
    step_ctx *x = malloc(sizeof *x);
    if (!x)
        abort();
    *x = (step_ctx){ s, id, t, st->gen };
    if (raftstore_lease_read(s->nodes[t].rs, gid))
        audit_read_done(x, OKV_OK, 0);
    else
        raftstore_read(s->nodes[t].rs, gid, audit_read_done, x);
}

static void step_request(sim *s, sim_bank *b, const sim_ev *ev)
{
    int id = (int)ev->a, t = (int)ev->b;
    bank_step *st = &b->steps[id];
    if (!st->live || ev->gen != st->gen)
        return;
    /* (A request that left before its sender crashed is still served; only
     * the answer finds nobody.) */
    sim_node *n = &s->nodes[t];
    if (st->home >= 0 && !sim_link_up(s, st->home, t))
        return;   /* lost on a cut link: the attempt times out */
    if (!n->up) {
        /* connection refused: certainly not applied */
        step_reply r;
        memset(&r, 0, sizeof r);
        r.rc = OKV_EUNAVAILABLE;
        reply_later(s, id, st->gen, t, st->home, &r);
        return;
    }
    if (s->now < n->paused_until) {
        sim_schedule(s, n->paused_until, EV_BANK, BEV_STEP_REQ, ev->gen, NULL, 0, ev->a, ev->b);
        return;
    }
    if (st->owner_kind == OWN_AUDIT_READ) {
        audit_read_at(s, id, t);
        return;
    }
    uint8_t *cmd = st->cmd;
    size_t clen = st->cmd_len;
    uint8_t *owned = NULL;
    if (st->msg) {
        /* service_tpc.c handle_txn_part: decode, stamp PREPARE and CHECK
         * with this leader's clock, propose as a TPC command; a client's
         * KV.TxnStatus (handle_txn_status) builds its CHECK stamped with
         * this leader's clock too. */
        tpc_msg m;
        okv_error err;
        if (tpc_msg_decode(st->msg, st->msg_len, &m, &err) != OKV_OK) {
            snprintf(s->failure, sizeof s->failure, "bank: a 2PC step does not decode: %s",
                     err.msg);
            return;
        }
        if (m.kind == TPC_PREPARE || m.kind == TPC_CHECK)
            m.clock_ms = wall_ms(s, t);
        size_t ml = tpc_msg_encoded_size(&m);
        uint8_t *mb = malloc(ml);
        if (!mb)
            abort();
        tpc_msg_encode(&m, mb);
        command c;
        memset(&c, 0, sizeof c);
        c.op = CMD_TPC;
        c.table_id = SIM_TABLE;
        c.partition = (uint32_t)st->group;
        c.value = mb;
        c.value_len = ml;
        clen = command_encoded_size(&c);
        owned = malloc(clen);
        if (!owned)
            abort();
        command_encode(&c, owned);
        free(mb);
        cmd = owned;
    }
    step_ctx *x = malloc(sizeof *x);
    if (!x)
        abort();
    *x = (step_ctx){ s, id, t, st->gen };
    raftstore_propose(n->rs, sim_group_id(st->group), cmd, clen, step_applied, x);
    free(owned);
    if (st->kind)
        target_fault(s, b, t, st->group);
}

static void step_failed_attempt(sim *s, sim_bank *b, int id, int hint)
{
    bank_step *st = &b->steps[id];
    if (hint >= 0) {
        attempt(s, b, id, hint);
        return;
    }
    /* a short pause before the resend (liborderkv's backoff) */
    st->gen++;
    sim_schedule(s, s->now + sim_between(s, 1000, 5000), EV_BANK, BEV_STEP_TIMEOUT, st->gen, NULL,
                 0, (uint64_t)id, 1);
}

static void step_reply_ev(sim *s, sim_bank *b, const sim_ev *ev)
{
    int id = (int)ev->a, t = (int)ev->b;
    bank_step *st = &b->steps[id];
    if (!st->live || ev->gen != st->gen)
        return;
    if (sender_dead(s, st)) {
        owner_died(s, b, st);
        return;
    }
    if (st->home >= 0 && !sim_link_up(s, t, st->home))
        return;
    if (st->home >= 0 && s->now < s->nodes[st->home].paused_until) {
        step_reply *p = malloc(sizeof *p);
        if (!p)
            abort();
        *p = *(const step_reply *)ev->p;
        sim_schedule(s, s->nodes[st->home].paused_until, EV_BANK, BEV_STEP_REPLY, ev->gen, p,
                     sizeof *p, ev->a, ev->b);
        return;
    }
    const step_reply *r = ev->p;
    st->last = *r;
    int *guess = &b->leader_guess[st->home + 1][st->group];
    if (r->rc == OKV_OK) {
        *guess = t;
        st->live = 0;
        if (st->kind) {
            if (st->attempts > 1)
                b->st.step_retried[st->kind]++;
            if (t != st->first_target)
                b->st.step_moved[st->kind]++;
        }
        step_done(s, b, id);
        return;
    }
    int hint = -1;
    if (r->rc == OKV_ENOTLEADER && r->leader >= 1 && replica_of(s, (int)r->leader - 1, st->group))
        hint = (int)r->leader - 1;
    if (hint >= 0)
        *guess = hint;
    else if (*guess == t)
        *guess = -1;
    step_failed_attempt(s, b, id, hint);
}

static void step_timeout(sim *s, sim_bank *b, const sim_ev *ev)
{
    int id = (int)ev->a;
    bank_step *st = &b->steps[id];
    if (!st->live || ev->gen != st->gen)
        return;
    if (sender_dead(s, st)) {
        owner_died(s, b, st);
        return;
    }
    if (st->home >= 0 && s->now < s->nodes[st->home].paused_until) {
        sim_schedule(s, s->nodes[st->home].paused_until, EV_BANK, BEV_STEP_TIMEOUT, ev->gen, NULL,
                     0, ev->a, ev->b);
        return;
    }
    if (ev->b == 0) {
        /* no answer: the outcome of this attempt is open */
        st->last.rc = OKV_EUNKNOWN;
        int *guess = &b->leader_guess[st->home + 1][st->group];
        *guess = -1;
    }
    attempt(s, b, id, -1);
}

/* ---- the driver (tpc_driver.c) ------------------------------------------------ */

static void teller_answer(sim *s, sim_bank *b, int xi);
static void driver_decide(sim *s, sim_bank *b, int xi);

static tpc_msg base_msg(sim *s, const bank_xfer *x, uint8_t kind, int share)
{
    tpc_msg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.id = x->id;
    m.clock_ms = wall_ms(s, x->home);
    m.deadline_ms = x->deadline_ms;
    m.self = x->sh[share].g;
    m.coord = x->sh[0].g;
    return m;
}

/* tpc_driver.c's crash failpoints: the driver's node dies at a step
 * boundary. Returns 1 if it did (the driver is gone). */
static int crash_point(sim *s, sim_bank *b, bank_xfer *x, int where)
{
    if (!per_mille(s, b->crash_pm))
        return 0;
    static const char *const at[] = { "before PREPARE", "before DECIDE", "before answering",
                                      "before RESOLVE", "before FINISH" };
    if (!crash_node(s, x->home, at[where]))
        return 0;
    b->st.crash_home[where]++;
    if (!x->dead) {
        x->dead = 1;
        b->st.driver_died[x->phase]++;
    }
    return 1;
}

/* The request's items, split into shares as tpc_driver.c split() does:
 * the first write's partition first (the coordinator), then each other
 * partition in the order its first item appears (conditions, then
 * writes); in each share its conditions, then its writes, in request
 * order, numbered back through orig. */
static void split(bank_xfer *x, const txn *t)
{
    const txn_key *keys[3];
    size_t n = t->n_conds + t->n_writes;
    for (size_t i = 0; i < n; i++)
        keys[i] = i < t->n_conds ? &t->conds[i].k : &t->writes[i - t->n_conds].k;
    x->nshares = 0;
    const txn_key *order[4] = { &t->writes[0].k, keys[0], keys[1], n > 2 ? keys[2] : keys[1] };
    for (size_t i = 0; i < 4; i++) {
        int k = 0;
        while (k < x->nshares && x->sh[k].g.partition != order[i]->partition)
            k++;
        if (k == x->nshares)
            x->sh[x->nshares++].g = group_of((int)order[i]->partition);
    }
    for (int k = 0; k < x->nshares; k++) {
        txn_cond c[1];
        txn_write w[2];
        txn sh = { 0, c, 0, w };
        for (size_t i = 0; i < t->n_conds; i++)
            if (t->conds[i].k.partition == x->sh[k].g.partition) {
                x->sh[k].orig[sh.n_conds + sh.n_writes] = (uint32_t)i;
                c[sh.n_conds++] = t->conds[i];
            }
        for (size_t i = 0; i < t->n_writes; i++)
            if (t->writes[i].k.partition == x->sh[k].g.partition) {
                x->sh[k].orig[sh.n_conds + sh.n_writes] = (uint32_t)(t->n_conds + i);
                w[sh.n_writes++] = t->writes[i];
            }
        x->sh[k].items = sh.n_conds + sh.n_writes;
        x->sh[k].enc_len = txn_encoded_size(&sh);
        if (x->sh[k].enc_len > sizeof x->sh[k].enc)
            abort();
        txn_encode(&sh, x->sh[k].enc);
    }
}

/* Share i's PREPARE (tpc_driver.c prepare_msg): the coordinator's names
 * every participant, and with vote_last it is the coordinator's vote (flag
 * 1, sent once the others PREPARED). Its clock is the driver's when it is
 * built. */
static void send_prepare(sim *s, sim_bank *b, int xi, int i, uint64_t budget_us)
{
    bank_xfer *x = &b->xfers[xi];
    tpc_msg m = base_msg(s, x, TPC_PREPARE, i);
    m.share = x->sh[i].enc;
    m.share_len = x->sh[i].enc_len;
    if (i == 0) {
        m.nparts = (uint32_t)x->nshares;
        for (int k = 0; k < x->nshares; k++)
            m.parts[k] = x->sh[k].g;
    }
    int vote = b->vote_last && i == 0;
    m.flag = (uint8_t)vote;
    send_tpc(s, b, &m, vote ? OWN_VOTE : OWN_PREPARE, xi, i, x->home, x->home_inc, budget_us);
}

/* tpc_driver.c wait_for_lock: a PREPARE that met another transaction's lock
 * recorded nothing; it is sent again after 2, 4, .. 64 ms (and up to half
 * as much again), 6 times at most, while that leaves 100 ms before the
 * deadline. */
static int wait_for_lock(sim *s, sim_bank *b, int xi, int i, const step_reply *r)
{
    bank_xfer *x = &b->xfers[xi];
    if (r->rc != OKV_OK || r->state != TPC_NONE || r->fail.reason != TXN_FAIL_LOCKED ||
        x->sh[i].lock_waits >= 6)
        return 0;
    uint64_t delay = 2u << x->sh[i].lock_waits;
    delay += sim_between(s, 0, delay / 2);
    if (wall_ms(s, x->home) + delay + 100u >= x->deadline_ms)
        return 0;
    x->sh[i].lock_waits++;
    b->st.lock_waits++;
    sim_schedule(s, s->now + delay * 1000u, EV_BANK, BEV_LATER, x->home_inc, NULL, 0,
                 (uint64_t)xi, (uint64_t)i);
    return 1;
}

/* The PREPARE sent later (by the sweeper thread in orderkvd): lost if the
 * driver's node crashed meanwhile. */
static void send_later(sim *s, sim_bank *b, const sim_ev *ev)
{
    bank_xfer *x = &b->xfers[ev->a];
    sim_node *n = &s->nodes[x->home];
    if (x->dead)
        return;
    if (!n->up || n->incarnation != ev->gen) {
        x->dead = 1;
        b->st.driver_died[x->phase]++;
        return;
    }
    if (s->now < n->paused_until) {
        sim_schedule(s, n->paused_until, EV_BANK, BEV_LATER, ev->gen, NULL, 0, ev->a, ev->b);
        return;
    }
    send_prepare(s, b, (int)ev->a, (int)ev->b, b->timeout_ms * 1000u / 2u);
}

static void driver_start(sim *s, sim_bank *b, int xi)
{
    bank_xfer *x = &b->xfers[xi];
    x->started = 1;
    x->home_inc = s->nodes[x->home].incarnation;
    x->deadline_ms = wall_ms(s, x->home) + b->timeout_ms;
    /* The request: the two adds in a random order (the first write's group
     * coordinates), and sometimes a condition that always holds on a
     * third account: a shared lock, and a participant that only reads. */
    int acct[2] = { x->first_debit ? x->from : x->to, x->first_debit ? x->to : x->from };
    char keys[3][32];
    txn_write w[2];
    txn_cond c[1];
    memset(w, 0, sizeof w);
    memset(c, 0, sizeof c);
    for (int i = 0; i < 2; i++) {
        size_t kl = acct_key(acct[i], keys[i], sizeof keys[i]);
        int debit = acct[i] == x->from;
        w[i].kind = TXN_ADD;
        w[i].k = (txn_key){ SIM_TABLE, (uint32_t)acct_group(acct[i]), (const uint8_t *)keys[i],
                            kl };
        w[i].delta = debit ? -x->amount : x->amount;
        w[i].has_floor = (uint8_t)debit;
        w[i].floor = 0;
    }
    txn t = { 0, c, 2, w };
    if (x->cond_acct >= 0) {
        size_t kl = acct_key(x->cond_acct, keys[2], sizeof keys[2]);
        c[0].kind = TXN_COND_INT;
        c[0].cmp = TXN_GE;
        c[0].num = 0;   /* no balance is ever negative */
        c[0].k = (txn_key){ SIM_TABLE, (uint32_t)acct_group(x->cond_acct),
                            (const uint8_t *)keys[2], kl };
        t.n_conds = 1;
    }
    split(x, &t);
    if (x->nshares == 3)
        b->st.three_shares++;
    for (int k = 0; k < x->nshares; k++)
        b->st.read_only_shares += x->sh[k].items == 1 && x->sh[k].orig[0] < t.n_conds;
    sim_logf(s, "bank: transfer %llu/%llu: %lld from account %d to %d%s, driver on node %d "
                "(coordinator group %u, %d participants)",
             (unsigned long long)x->id.client, (unsigned long long)x->id.req,
             (long long)x->amount, x->from, x->to, x->cond_acct >= 0 ? " if a third >= 0" : "",
             x->home + 1, x->sh[0].g.partition, x->nshares);
    if (crash_point(s, b, x, 0))
        return;
    /* With vote_last the coordinator's share votes last, once the others
     * answered. */
    x->phase = XP_PREPARE;
    int first = b->vote_last ? 1 : 0;
    x->waiting = x->nshares - first;
    for (int i = first; i < x->nshares; i++)
        send_prepare(s, b, xi, i, b->timeout_ms * 1000u / 2u);
}

/* A share's refusal as DECIDE ABORT carries it, numbered as the request
 * numbers its items (tpc_driver.c refusal_of). */
static tpc_fail refusal_of(const bank_xfer *x, int i)
{
    const step_reply *p = &x->sh[i].prep;
    if (p->rc == OKV_OK && p->fail.code) {
        tpc_fail f = p->fail;
        f.failed = f.failed < x->sh[i].items ? x->sh[i].orig[f.failed] : 0;
        return f;
    }
    return (tpc_fail){ OKV_ECONFLICT, 0, 0 };
}

static void decide_abort(sim *s, sim_bank *b, int xi, tpc_fail why)
{
    bank_xfer *x = &b->xfers[xi];
    tpc_msg m = base_msg(s, x, TPC_DECIDE, 0);
    m.flag = 0;
    m.fail = why;
    x->phase = XP_DECIDE;
    send_tpc(s, b, &m, OWN_DECIDE, xi, 0, x->home, x->home_inc, b->timeout_ms * 1000u);
}

/* Every other participant answered (vote_last): the coordinator votes if
 * all of them PREPARED, else the transaction aborts. */
static void driver_vote(sim *s, sim_bank *b, int xi)
{
    bank_xfer *x = &b->xfers[xi];
    for (int i = 1; i < x->nshares; i++) {
        const step_reply *p = &x->sh[i].prep;
        if (!(p->rc == OKV_OK && (p->state == TPC_PREPARED || p->state == TPC_COMMITTED))) {
            decide_abort(s, b, xi, refusal_of(x, i));
            return;
        }
    }
    x->phase = XP_VOTE;
    send_prepare(s, b, xi, 0, b->timeout_ms * 1000u);
}

static void driver_decided(sim *s, sim_bank *b, int xi, const step_reply *r);

/* tpc_driver.c voted: COMMITTED in the vote's entry; PREPARED by an earlier
 * copy without the vote (DECIDE COMMIT as usual); else DECIDE ABORT, whose
 * compare-and-swap also tells a vote that applied unanswered. */
static void driver_voted(sim *s, sim_bank *b, int xi, const step_reply *r)
{
    bank_xfer *x = &b->xfers[xi];
    sim_logf(s, "bank: the vote of %llu/%llu: %s%s (code %d, reason %u)",
             (unsigned long long)x->id.client, (unsigned long long)x->id.req,
             r->rc == OKV_OK ? "" : "no answer, ", tpc_state_name(r->state), r->fail.code,
             r->fail.reason);
    if (wait_for_lock(s, b, xi, 0, r))
        return;
    x->sh[0].prep = *r;
    if (r->rc == OKV_OK && r->state == TPC_COMMITTED) {
        b->st.votes_committed++;
        driver_decided(s, b, xi, r);
        return;
    }
    if (r->rc == OKV_OK && r->state == TPC_PREPARED) {
        tpc_msg m = base_msg(s, x, TPC_DECIDE, 0);
        m.flag = 1;
        x->phase = XP_DECIDE;
        send_tpc(s, b, &m, OWN_DECIDE, xi, 0, x->home, x->home_inc, b->timeout_ms * 1000u);
        return;
    }
    b->st.votes_refused++;
    decide_abort(s, b, xi, r->rc == OKV_OK ? refusal_of(x, 0) : (tpc_fail){ OKV_ECONFLICT, 0, 0 });
}

static void driver_prepared(sim *s, sim_bank *b, int xi, int share, const step_reply *r)
{
    bank_xfer *x = &b->xfers[xi];
    sim_logf(s, "bank: PREPARE of %llu/%llu at group %u: %s%s (code %d, reason %u)",
             (unsigned long long)x->id.client, (unsigned long long)x->id.req,
             x->sh[share].g.partition, r->rc == OKV_OK ? "" : "no answer, ",
             tpc_state_name(r->state), r->fail.code, r->fail.reason);
    if (wait_for_lock(s, b, xi, share, r))
        return;
    x->sh[share].prep = *r;
    if (r->rc == OKV_OK && r->state != TPC_PREPARED && r->state != TPC_COMMITTED) {
        if (r->fail.reason == TXN_FAIL_LOCKED)
            b->st.locked_refusals++;
        else if (r->fail.reason == TXN_FAIL_FLOOR)
            b->st.floor_refusals++;
    }
    if (--x->waiting > 0)
        return;
    if (crash_point(s, b, x, 1))
        return;
    if (b->vote_last)
        driver_vote(s, b, xi);
    else
        driver_decide(s, b, xi);
}

static void driver_decide(sim *s, sim_bank *b, int xi)
{
    bank_xfer *x = &b->xfers[xi];
    tpc_msg m = base_msg(s, x, TPC_DECIDE, 0);
    m.flag = 1;
    for (int i = 0; i < x->nshares && m.flag; i++) {
        const step_reply *p = &x->sh[i].prep;
        if (p->rc == OKV_OK && (p->state == TPC_PREPARED || p->state == TPC_COMMITTED))
            continue;
        m.flag = 0;
        if (p->rc == OKV_OK && p->fail.code) {
            m.fail = p->fail;
            m.fail.failed = p->fail.failed < x->sh[i].items ? x->sh[i].orig[p->fail.failed] : 0;
        } else {
            m.fail = (tpc_fail){ OKV_ECONFLICT, 0, 0 };
        }
    }
    x->phase = XP_DECIDE;
    send_tpc(s, b, &m, OWN_DECIDE, xi, 0, x->home, x->home_inc, b->timeout_ms * 1000u);
}

static void driver_resolve(sim *s, sim_bank *b, int xi)
{
    bank_xfer *x = &b->xfers[xi];
    x->phase = XP_RESOLVE;
    x->waiting = x->nshares - 1;
    for (int i = 1; i < x->nshares; i++) {
        tpc_msg m = base_msg(s, x, TPC_RESOLVE, i);
        m.flag = x->decision == TPC_COMMITTED;
        send_tpc(s, b, &m, OWN_RESOLVE, xi, i, x->home, x->home_inc, BANK_LONG_US);
    }
}

static void driver_decided(sim *s, sim_bank *b, int xi, const step_reply *r)
{
    bank_xfer *x = &b->xfers[xi];
    if (r->rc != OKV_OK) {
        /* "it may have committed: ask its status"; the sweeper finishes it */
        x->reported = -1;
        x->phase = XP_DONE;
        teller_answer(s, b, xi);
        return;
    }
    x->decision = r->state;
    if (crash_point(s, b, x, 2))
        return;   /* decided, nobody told */
    x->reported = r->state == TPC_COMMITTED ? TPC_COMMITTED : TPC_ABORTED;
    teller_answer(s, b, xi);
    if (r->state != TPC_COMMITTED && r->state != TPC_ABORTED) {
        x->phase = XP_DONE;
        return;
    }
    if (crash_point(s, b, x, 3))
        return;   /* answered, the participant still PREPARED */
    driver_resolve(s, b, xi);
}

static void driver_resolved(sim *s, sim_bank *b, int xi, const step_reply *r)
{
    bank_xfer *x = &b->xfers[xi];
    if (r->rc != OKV_OK || r->state == TPC_PREPARED)
        x->decision = 0;   /* something is left: no FINISH, the sweeper resends */
    if (--x->waiting > 0)
        return;
    if (!x->decision) {
        x->phase = XP_DONE;
        return;
    }
    if (crash_point(s, b, x, 4))
        return;
    x->phase = XP_FINISH;
    tpc_msg m = base_msg(s, x, TPC_FINISH, 0);
    send_tpc(s, b, &m, OWN_FINISH, xi, 0, x->home, x->home_inc, BANK_LONG_US);
}

/* ---- the sweeper (tpc_sweep.c) ------------------------------------------------- */

static void chain_end(sim *s, sim_bank *b, int ci)
{
    bank_chain *ch = &b->chains[ci];
    if (ch->ended)
        return;
    ch->ended = 1;
    if (b->sweep_inc[ch->node] == ch->inc && b->sweep_live[ch->node] > 0)
        b->sweep_live[ch->node]--;
    (void)s;
}

static tpc_msg chain_msg(sim *s, const bank_chain *ch, uint8_t kind, tpc_group self)
{
    tpc_msg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.id = ch->id;
    m.clock_ms = wall_ms(s, ch->node);
    m.self = self;
    m.coord = ch->coord;
    return m;
}

static int group_eq(const tpc_group *a, const tpc_group *b)
{
    return a->table_id == b->table_id && a->partition == b->partition;
}

static void chain_resolved(sim *s, sim_bank *b, int ci, const step_reply *r);

static void chain_resolve(sim *s, sim_bank *b, int ci)
{
    bank_chain *ch = &b->chains[ci];
    if (!ch->is_coord_record) {
        ch->waiting = 1;
        tpc_msg m = chain_msg(s, ch, TPC_RESOLVE, ch->self);
        m.flag = ch->decision == TPC_COMMITTED;
        send_tpc(s, b, &m, OWN_CH_RESOLVE, ci, 0, ch->node, ch->inc, BANK_LONG_US);
        return;
    }
    int others = 0;
    for (uint32_t i = 0; i < ch->c.nparts; i++)
        others += !group_eq(&ch->c.parts[i], &ch->coord);
    if (others == 0) {
        ch->waiting = 1;
        step_reply none;
        memset(&none, 0, sizeof none);
        none.state = ch->decision;
        chain_resolved(s, b, ci, &none);
        return;
    }
    ch->waiting = others;
    tpc_crec c = ch->c;   /* send_tpc may move the chains */
    tpc_group coord = ch->coord;
    for (uint32_t i = 0; i < c.nparts; i++) {
        if (group_eq(&c.parts[i], &coord))
            continue;
        if (group_index_of(s, &c.parts[i]) < 0) {
            snprintf(s->failure, sizeof s->failure, "bank: a coordinator record names table %u "
                     "partition %u", c.parts[i].table_id, c.parts[i].partition);
            return;
        }
        bank_chain *cur = &b->chains[ci];
        tpc_msg m = chain_msg(s, cur, TPC_RESOLVE, c.parts[i]);
        m.flag = cur->decision == TPC_COMMITTED;
        send_tpc(s, b, &m, OWN_CH_RESOLVE, ci, 0, cur->node, cur->inc, BANK_LONG_US);
    }
}

static void chain_resolved(sim *s, sim_bank *b, int ci, const step_reply *r)
{
    bank_chain *ch = &b->chains[ci];
    if (r->rc != OKV_OK || r->state == TPC_PREPARED)
        ch->decision = 0;   /* try again next round */
    if (--ch->waiting > 0)
        return;
    if (!ch->is_coord_record || !ch->decision) {
        chain_end(s, b, ci);
        return;
    }
    tpc_msg m = chain_msg(s, ch, TPC_FINISH, ch->coord);
    send_tpc(s, b, &m, OWN_CH_FINISH, ci, 0, ch->node, ch->inc, BANK_LONG_US);
}

static void chain_checked(sim *s, sim_bank *b, int ci, const step_reply *r)
{
    bank_chain *ch = &b->chains[ci];
    if (r->rc != OKV_OK || (r->state != TPC_COMMITTED && r->state != TPC_ABORTED)) {
        chain_end(s, b, ci);
        return;
    }
    ch->decision = r->state;
    if (!ch->is_coord_record && r->state == TPC_COMMITTED)
        b->st.check_p_committed++;
    chain_resolve(s, b, ci);
}

static int new_chain(sim *s, sim_bank *b, int node, tpc_id id, tpc_group self, tpc_group coord)
{
    b->chains = grow(b->chains, &b->capchains, b->nchains, sizeof *b->chains);
    int ci = (int)b->nchains++;
    bank_chain *ch = &b->chains[ci];
    memset(ch, 0, sizeof *ch);
    ch->node = node;
    ch->inc = s->nodes[node].incarnation;
    ch->id = id;
    ch->self = self;
    ch->coord = coord;
    b->sweep_live[node]++;
    return ci;
}

static void chain_check(sim *s, sim_bank *b, int ci)
{
    bank_chain *ch = &b->chains[ci];
    if (group_index_of(s, &ch->coord) < 0) {
        snprintf(s->failure, sizeof s->failure, "bank: a 2PC record names coordinator table %u "
                 "partition %u", ch->coord.table_id, ch->coord.partition);
        return;
    }
    tpc_msg m = chain_msg(s, ch, TPC_CHECK, ch->coord);
    m.flag = 1;
    send_tpc(s, b, &m, OWN_CH_CHECK, ci, 0, ch->node, ch->inc, BANK_LONG_US);
}

static void sweep_kind(sim *s, sim_bank *b, int node, int g, char kind, uint64_t now)
{
    sim_node *n = &s->nodes[node];
    uint64_t group = sim_group_id(g);
    uint8_t lo[FSM_TPC_REC_KEY_LEN], hi[FSM_TPC_REC_PREFIX_LEN + 1];
    fsm_tpc_rec_key(lo, group, kind, 0, 0);
    size_t hl = engine_prefix_successor(lo, FSM_TPC_REC_PREFIX_LEN, hi);
    engine_iter *it;
    if (engine_iter_new(&it, n->e, ENGINE_CF_META, lo, FSM_TPC_REC_PREFIX_LEN, hi, hl, NULL) !=
        OKV_OK)
        return;
    tpc_group self = group_of(g);
    /* Collect first: starting a chain sends steps, which may run nothing
     * now but keeps the iterator's engine untouched anyway. */
    struct todo {
        tpc_id id;
        int what;   /* 1 expired C, 2 unresolved C, 3 expired P, 4 old C, 5 old P */
        tpc_crec c;
        tpc_group coord;
    } *todo = NULL;
    size_t ntodo = 0, captodo = 0;
    for (; engine_iter_valid(it); engine_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)engine_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)engine_iter_value(it, &vl);
        if (kl != FSM_TPC_REC_KEY_LEN)
            continue;
        tpc_id id = { keycodec_get_u64be(k + 10), keycodec_get_u64be(k + 18) };
        struct todo t;
        memset(&t, 0, sizeof t);
        t.id = id;
        if (kind == 'C') {
            tpc_crec c;
            if (tpc_crec_decode(v, vl, &c))
                continue;
            int expired = c.state == TPC_PENDING && now > c.deadline_ms + b->grace_ms;
            int unresolved = c.state != TPC_PENDING && !c.finished &&
                             now > c.settled_ms + b->grace_ms;
            /* Retention as in orderkvd (tpc.h), not scaled: longer than a
             * run, unless the record's settling clock says otherwise. */
            int old = c.finished && now >= c.settled_ms + TPC_RETAIN_MS;
            if (!expired && !unresolved && !old)
                continue;
            t.what = old ? 4 : expired ? 1 : 2;
            t.c = c;
            t.coord = self;
        } else {
            tpc_prec p;
            if (tpc_prec_decode(v, vl, &p))
                continue;
            int expired = p.state == TPC_PREPARED && now > p.deadline_ms + b->grace_ms;
            uint64_t since = p.settled_ms > p.deadline_ms ? p.settled_ms : p.deadline_ms;
            int old = p.state != TPC_PREPARED && now >= since + TPC_P_RETAIN_MS;
            if (!expired && !old)
                continue;
            t.what = old ? 5 : 3;
            t.coord = p.coord;
        }
        todo = grow(todo, &captodo, ntodo, sizeof *todo);
        todo[ntodo++] = t;
    }
    engine_iter_free(it);
    for (size_t i = 0; i < ntodo; i++) {
        int ci = new_chain(s, b, node, todo[i].id, self, todo[i].coord);
        bank_chain *ch = &b->chains[ci];
        sim_logf(s, "bank: node %d sweeps %c %llu/%llu of group %d (%s)", node + 1, kind,
                 (unsigned long long)todo[i].id.client, (unsigned long long)todo[i].id.req, g,
                 todo[i].what == 1   ? "pending past its deadline"
                 : todo[i].what == 2 ? "decided, unfinished"
                 : todo[i].what == 3 ? "prepared past its deadline"
                                     : "settled, past its retention: FORGET");
        if (todo[i].what >= 4) {
            b->st.forgets++;
            tpc_msg m = chain_msg(s, ch, TPC_FORGET, self);
            m.flag = todo[i].what == 4 ? 'C' : 'P';
            send_tpc(s, b, &m, OWN_CH_FORGET, ci, 0, ch->node, ch->inc, BANK_LONG_US);
            continue;
        }
        if (todo[i].what == 3) {
            b->st.chains_check_p++;
            chain_check(s, b, ci);
            continue;
        }
        ch->is_coord_record = 1;
        ch->c = todo[i].c;
        if (todo[i].what == 1) {
            b->st.chains_check_c++;
            chain_check(s, b, ci);
        } else {
            b->st.chains_resolve_c++;
            ch->decision = todo[i].c.state;
            chain_resolve(s, b, ci);
        }
    }
    free(todo);
}

static void sweep_tick(sim *s, sim_bank *b, int node)
{
    sim_node *n = &s->nodes[node];
    sim_schedule(s, s->now + b->sweep_us, EV_BANK, BEV_SWEEP, 0, NULL, 0, (uint64_t)node, 0);
    if (!n->up || s->now < n->paused_until)
        return;
    if (b->sweep_inc[node] != n->incarnation) {
        b->sweep_inc[node] = n->incarnation;   /* the chains of the last run died with it */
        b->sweep_live[node] = 0;
    }
    if (b->sweep_live[node] > 0)
        return;
    uint64_t now = wall_ms(s, node);
    raftstore_group_info info[SIM_MAX_GROUPS];
    size_t k = raftstore_groups(n->rs, info, SIM_MAX_GROUPS);
    for (size_t i = 0; i < k && i < SIM_MAX_GROUPS; i++) {
        int g = sim_group_index(info[i].group);
        if (info[i].group == 0 || info[i].st.role != RAFT_LEADER || g < 0 || g >= s->ngroups)
            continue;
        sweep_kind(s, b, node, g, 'C', now);
        sweep_kind(s, b, node, g, 'P', now);
    }
}

/* ---- tellers -------------------------------------------------------------------- */

static void teller_next(sim *s, sim_bank *b, int ti, uint64_t after);

static uint8_t *encode_cmd(const command *c, size_t *len)
{
    *len = command_encoded_size(c);
    uint8_t *p = malloc(*len);
    if (!p)
        abort();
    command_encode(c, p);
    return p;
}

static void start_1pc(sim *s, sim_bank *b, int xi)
{
    bank_xfer *x = &b->xfers[xi];
    bank_teller *t = &b->tellers[x->teller];
    char k0[32], k1[32];
    int first_debit = sim_chance(s, 50);
    int acct[2] = { first_debit ? x->from : x->to, first_debit ? x->to : x->from };
    txn_write w[2];
    memset(w, 0, sizeof w);
    char *keys[2] = { k0, k1 };
    for (int i = 0; i < 2; i++) {
        size_t kl = acct_key(acct[i], keys[i], sizeof k0);
        int debit = acct[i] == x->from;
        w[i].kind = TXN_ADD;
        w[i].k = (txn_key){ SIM_TABLE, (uint32_t)acct_group(acct[i]), (const uint8_t *)keys[i],
                            kl };
        w[i].delta = debit ? -x->amount : x->amount;
        w[i].has_floor = (uint8_t)debit;
    }
    txn tx = { 0, NULL, 2, w };
    uint8_t enc[256];
    size_t el = txn_encoded_size(&tx);
    if (el > sizeof enc)
        abort();
    txn_encode(&tx, enc);
    command c;
    memset(&c, 0, sizeof c);
    c.op = CMD_TXN;
    c.table_id = SIM_TABLE;
    c.partition = (uint32_t)acct_group(x->from);
    c.client_id = t->client_id;
    c.request_id = t->next_rid++;
    c.watermark = c.request_id;   /* one request in flight: it is the lowest */
    c.value = enc;
    c.value_len = el;
    size_t len;
    uint8_t *cmd = encode_cmd(&c, &len);
    x->result_1pc = -1;
    x->started = 1;
    send_cmd(s, b, cmd, len, acct_group(x->from), OWN_1PC, xi);
}

static void teller_turn(sim *s, sim_bank *b, int ti)
{
    bank_teller *t = &b->tellers[ti];
    if (t->busy)
        return;
    if (!s->faults_on && t->final_left <= 0)
        return;   /* done */
    b->xfers = grow(b->xfers, &b->capxfers, b->nxfers, sizeof *b->xfers);
    int xi = (int)b->nxfers++;
    bank_xfer *x = &b->xfers[xi];
    memset(x, 0, sizeof *x);
    x->teller = ti;
    x->from = (int)sim_between(s, 0, (uint64_t)b->naccts - 1);
    do
        x->to = (int)sim_between(s, 0, (uint64_t)b->naccts - 1);
    while (x->to == x->from ||
           (!s->faults_on && acct_group(x->to) == acct_group(x->from)));
    x->amount = (int64_t)sim_between(s, 1, BANK_MAX_AMOUNT);
    x->two_pc = acct_group(x->to) != acct_group(x->from);
    x->final = !s->faults_on;
    x->cond_acct = -1;
    if (x->two_pc && sim_chance(s, 30)) {
        int c = (int)sim_between(s, 0, (uint64_t)b->naccts - 1);
        if (c != x->from && c != x->to)
            x->cond_acct = c;
    }
    x->id = (tpc_id){ t->client_id, ++b->next_req };
    x->settled = -1;
    x->first_debit = sim_chance(s, 50);
    x->coord_group = acct_group(x->first_debit ? x->from : x->to);
    t->busy = 1;
    t->xfer = xi;
    t->gen++;
    b->st.xfers++;
    if (!x->two_pc) {
        start_1pc(s, b, xi);
        return;
    }
    b->st.xfers_2pc++;
    /* KV.Txn to a random node, whose driver runs the transaction; the
     * teller waits for its answer at most the driver's worst case. */
    x->home = (int)sim_between(s, 0, (uint64_t)s->o.nodes - 1);
    sim_schedule(s, s->now + sim_between(s, 100, 500), EV_BANK, BEV_TELLER_REQ, 0, NULL, 0,
                 (uint64_t)xi, 0);
    t->giveup_at = s->now + (s->faults_on ? b->timeout_ms * 10u * b->call_pct
                                          : b->timeout_ms * 2000u + 2000000u);
    sim_schedule(s, s->now + 50000, EV_BANK, BEV_TELLER_GIVEUP, t->gen, NULL, 0, (uint64_t)ti, 0);
}

static void teller_next(sim *s, sim_bank *b, int ti, uint64_t after)
{
    bank_teller *t = &b->tellers[ti];
    t->busy = 0;
    t->xfer = -1;
    t->gen++;
    sim_schedule(s, s->now + after, EV_BANK, BEV_TELLER, t->gen, NULL, 0, (uint64_t)ti, 0);
}

/* The driver answered (or gave up on) xfer xi: the answer travels to the
 * teller. */
static void teller_answer(sim *s, sim_bank *b, int xi)
{
    bank_xfer *x = &b->xfers[xi];
    bank_teller *t = &b->tellers[x->teller];
    if (x->reported == TPC_COMMITTED)
        b->st.committed++;
    else if (x->reported == TPC_ABORTED)
        b->st.aborted++;
    else
        b->st.unknown++;
    sim_logf(s, "bank: transfer %llu/%llu %s", (unsigned long long)x->id.client,
             (unsigned long long)x->id.req,
             x->reported == TPC_COMMITTED ? "committed"
             : x->reported == TPC_ABORTED ? "aborted" : "unknown (no answer to DECIDE)");
    sim_schedule(s, s->now + sim_between(s, 100, 500), EV_BANK, BEV_TELLER_REPLY, t->gen, NULL, 0,
                 (uint64_t)xi, 0);
}

/* After OKV_EUNKNOWN: okv_txn_status, which across partitions settles the
 * answer (KV.TxnStatus with settle: a CHECK, flag TPC_CHECK_SETTLE, at the
 * coordinator; an undecided transaction is decided aborted there, for
 * good). Asked again while it says PENDING. */
static void teller_settle(sim *s, sim_bank *b, int xi)
{
    bank_xfer *x = &b->xfers[xi];
    tpc_msg q;
    memset(&q, 0, sizeof q);
    q.kind = TPC_CHECK;
    q.flag = TPC_CHECK_SETTLE;
    q.id = x->id;
    q.self = group_of(x->coord_group);   /* the first write's partition */
    q.coord = q.self;
    send_tpc(s, b, &q, OWN_STATUS, xi, 0, -1, 0, BANK_FOREVER);
}

static void teller_settled(sim *s, sim_bank *b, int xi, const step_reply *r)
{
    bank_xfer *x = &b->xfers[xi];
    bank_teller *t = &b->tellers[x->teller];
    if (r->state == TPC_PENDING) {
        teller_settle(s, b, xi);   /* not decided yet: ask again */
        return;
    }
    x->settled = r->state;
    if (r->state == TPC_COMMITTED)
        b->st.status_committed++;
    else if (r->state == TPC_ABORTED)
        b->st.status_aborted++;
    else
        b->st.status_other++;
    sim_logf(s, "bank: TxnStatus settled %llu/%llu as %s", (unsigned long long)x->id.client,
             (unsigned long long)x->id.req, tpc_state_name(r->state));
    if (t->busy && t->xfer == xi) {
        if (x->final && t->final_left > 0 &&
            (r->state == TPC_COMMITTED || r->state == TPC_ABORTED))
            t->final_left--;
        teller_next(s, b, x->teller, sim_between(s, 1000, 20000));
    }
}

/* The teller's call ended without a definite answer (it may never have
 * reached a driver): settle it. */
static void teller_unknown(sim *s, sim_bank *b, int xi)
{
    teller_settle(s, b, xi);
}

static void teller_reply(sim *s, sim_bank *b, const sim_ev *ev)
{
    bank_xfer *x = &b->xfers[ev->a];
    bank_teller *t = &b->tellers[x->teller];
    if (!t->busy || t->xfer != (int64_t)ev->a || ev->gen != t->gen)
        return;
    t->gen++;   /* no give-up any more */
    if (x->reported < 0) {
        teller_unknown(s, b, (int)ev->a);
        return;
    }
    if (x->final && t->final_left > 0 && x->reported > 0)
        t->final_left--;
    teller_next(s, b, x->teller, sim_between(s, 1000, 20000));
}

/* The teller's KV.Txn call ends without an answer when its deadline
 * passes, or at once when the connection to the driver's node breaks (the
 * node is down or restarted: the call's outcome is then open). */
static void teller_giveup(sim *s, sim_bank *b, const sim_ev *ev)
{
    bank_teller *t = &b->tellers[ev->a];
    if (!t->busy || ev->gen != t->gen)
        return;
    const bank_xfer *x = &b->xfers[t->xfer];
    const sim_node *n = &s->nodes[x->home];
    int lost = !n->up || (x->started && n->incarnation != x->home_inc);
    if (!lost && s->now < t->giveup_at) {
        sim_schedule(s, s->now + 50000, EV_BANK, BEV_TELLER_GIVEUP, t->gen, NULL, 0, ev->a, 0);
        return;
    }
    t->gen++;   /* a late answer is not heard */
    teller_unknown(s, b, (int)t->xfer);
}

static void teller_request(sim *s, sim_bank *b, const sim_ev *ev)
{
    int xi = (int)ev->a;
    bank_xfer *x = &b->xfers[xi];
    sim_node *n = &s->nodes[x->home];
    if (!n->up) {
        b->st.never_started++;
        return;   /* nobody listening: the teller gives up */
    }
    if (s->now < n->paused_until) {
        sim_schedule(s, n->paused_until, EV_BANK, BEV_TELLER_REQ, 0, NULL, 0, ev->a, 0);
        return;
    }
    driver_start(s, b, xi);
}

/* ---- the auditor (client_tx.c, a read-only transaction across partitions) ---------- */

static void audit_next(sim *s, sim_bank *b, uint64_t after)
{
    bank_auditor *a = &b->auditor;
    a->busy = 0;
    a->gen++;
    sim_schedule(s, s->now + after, EV_BANK, BEV_AUDIT, a->gen, NULL, 0, 0, 0);
}

/* Every account, one read point per group, all at once. */
static void audit_start(sim *s, sim_bank *b)
{
    bank_auditor *a = &b->auditor;
    if (!s->faults_on)
        return;   /* the tellers' last transfers run alone */
    a->busy = 1;
    a->round = 0;
    a->waiting = s->ngroups;
    for (int g = 0; g < s->ngroups; g++) {
        int id = new_step(b, OWN_AUDIT_READ, g, 0, -1, 0, g);
        b->steps[id].end = BANK_FOREVER;
        attempt(s, b, id, -1);
    }
}

/* After the last read: one check per group, the versions read as
 * conditions (a one-partition TXN with the auditor's client id), all at
 * once; a check that met only locks is sent again after 5, 15, 25 ms. */
static void audit_checks(sim *s, sim_bank *b)
{
    bank_auditor *a = &b->auditor;
    a->waiting = s->ngroups;
    a->locked_only = 1;
    a->failed = 0;
    a->round++;
    uint64_t first = a->next_rid;
    for (int g = 0; g < s->ngroups; g++) {
        char keys[BANK_ACCTS_PER_GROUP][32];
        txn_cond c[BANK_ACCTS_PER_GROUP];
        memset(c, 0, sizeof c);
        for (int i = 0; i < BANK_ACCTS_PER_GROUP; i++) {
            int acct = g * BANK_ACCTS_PER_GROUP + i;
            size_t kl = acct_key(acct, keys[i], sizeof keys[i]);
            c[i].kind = TXN_COND_VERSION_EQ;
            c[i].version = a->ver[acct];
            c[i].k = (txn_key){ SIM_TABLE, (uint32_t)g, (const uint8_t *)keys[i], kl };
        }
        txn t = { BANK_ACCTS_PER_GROUP, c, 0, NULL };
        uint8_t enc[256];
        size_t el = txn_encoded_size(&t);
        if (el > sizeof enc)
            abort();
        txn_encode(&t, enc);
        command cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.op = CMD_TXN;
        cmd.table_id = SIM_TABLE;
        cmd.partition = (uint32_t)g;
        cmd.client_id = a->client_id;
        cmd.request_id = a->next_rid++;
        cmd.watermark = first;   /* the lowest of this round's, all unanswered */
        cmd.value = enc;
        cmd.value_len = el;
        size_t len;
        uint8_t *p = encode_cmd(&cmd, &len);
        send_cmd(s, b, p, len, g, OWN_AUDIT_CHECK, g);
    }
}

static void audit_read(sim *s, sim_bank *b, int g, const step_reply *r)
{
    bank_auditor *a = &b->auditor;
    for (int i = 0; i < BANK_ACCTS_PER_GROUP; i++) {
        a->val[g * BANK_ACCTS_PER_GROUP + i] = r->val[i];
        a->ver[g * BANK_ACCTS_PER_GROUP + i] = r->ver[i];
    }
    if (--a->waiting == 0)
        audit_checks(s, b);
}

static void audit_checked(sim *s, sim_bank *b, const step_reply *r)
{
    bank_auditor *a = &b->auditor;
    if (r->rcode != OKV_OK) {
        a->failed = 1;
        if (!(r->rcode == OKV_ECONFLICT && r->fail.reason == TXN_FAIL_LOCKED))
            a->locked_only = 0;
    }
    if (--a->waiting > 0)
        return;
    if (!a->failed) {
        /* Every check held: the reads are one snapshot, whose total is
         * the funded one (B4). */
        int64_t total = 0;
        char detail[200] = "";
        size_t off = 0;
        for (int i = 0; i < b->naccts; i++) {
            total += a->val[i];
            off += (size_t)snprintf(detail + off, sizeof detail - off, " %lld",
                                    (long long)a->val[i]);
            if (off >= sizeof detail)
                off = sizeof detail - 1;
        }
        b->st.audits_ok++;
        sim_logf(s, "bank: audit ok, total %lld:%s", (long long)total, detail);
        if (total != (int64_t)b->naccts * BANK_INIT && !s->failure[0])
            snprintf(s->failure, sizeof s->failure, "B4: a read-only transaction across "
                     "partitions passed its checks but saw the accounts sum to %lld, not the "
                     "%lld funded (balances:%s)", (long long)total,
                     (long long)b->naccts * BANK_INIT, detail);
        audit_next(s, b, sim_between(s, 1000, 20000));
        return;
    }
    if (a->locked_only && a->round <= 3) {
        b->st.audit_rechecks++;
        a->gen++;
        sim_schedule(s, s->now + (uint64_t)(5 + 10 * (a->round - 1)) * 1000u, EV_BANK,
                     BEV_AUDIT, a->gen, NULL, 0, 0, 1);
        return;
    }
    b->st.audits_refused++;
    audit_next(s, b, sim_between(s, 1000, 20000));
}

static void audit_event(sim *s, sim_bank *b, const sim_ev *ev)
{
    bank_auditor *a = &b->auditor;
    if (ev->gen != a->gen)
        return;
    if (ev->b == 1)
        audit_checks(s, b);
    else if (!a->busy)
        audit_start(s, b);
}

/* ---- funding --------------------------------------------------------------------- */

static void fund(sim *s, sim_bank *b, int a)
{
    char key[32];
    size_t kl = acct_key(a, key, sizeof key);
    uint8_t val[TXN_COUNTER_LEN];
    txn_counter_encode(BANK_INIT, val);
    command c;
    memset(&c, 0, sizeof c);
    c.op = CMD_PUT;
    c.check_version = 1;
    c.expected_version = 0;   /* only creates: a resend changes nothing */
    c.table_id = SIM_TABLE;
    c.partition = (uint32_t)acct_group(a);
    c.key = (const uint8_t *)key;
    c.key_len = kl;
    c.value = val;
    c.value_len = sizeof val;
    size_t len;
    uint8_t *cmd = encode_cmd(&c, &len);
    send_cmd(s, b, cmd, len, acct_group(a), OWN_FUND, a);
}

static void funded(sim *s, sim_bank *b, int a, const step_reply *r)
{
    if (r->rcode != OKV_OK && r->rcode != OKV_ECONFLICT) {
        fund(s, b, a);   /* not applied (a lock?): again */
        return;
    }
    if (--b->funding_left > 0)
        return;
    b->funded = 1;
    sim_logf(s, "bank: every account funded");
    audit_next(s, b, sim_between(s, 0, 5000));
    for (int i = 0; i < BANK_TELLERS; i++)
        teller_next(s, b, i, sim_between(s, 0, 5000));
}

/* ---- dispatch ----------------------------------------------------------------------- */

static void owner_died(sim *s, sim_bank *b, bank_step *st)
{
    st->live = 0;
    (void)s;
    if (st->owner_kind >= OWN_PREPARE && st->owner_kind <= OWN_FINISH) {
        bank_xfer *x = &b->xfers[st->owner];
        if (!x->dead) {
            x->dead = 1;
            b->st.driver_died[x->phase]++;
            sim_logf(s, "bank: the driver of %llu/%llu died in %s",
                     (unsigned long long)x->id.client, (unsigned long long)x->id.req,
                     phase_name[x->phase]);
        }
    } else if (st->owner_kind >= OWN_CH_CHECK) {
        bank_chain *ch = &b->chains[st->owner];
        if (!ch->ended) {
            ch->ended = 1;
            b->st.chains_died++;
        }
    }
}

static void step_done(sim *s, sim_bank *b, int id)
{
    bank_step st = b->steps[id];   /* a copy: the callees may grow the pool */
    free(b->steps[id].msg);
    free(b->steps[id].cmd);
    b->steps[id].msg = NULL;
    b->steps[id].cmd = NULL;
    const step_reply *r = &st.last;
    if (st.owner_kind >= OWN_PREPARE && st.owner_kind <= OWN_FINISH && b->xfers[st.owner].dead)
        return;
    if (st.owner_kind >= OWN_CH_CHECK && b->chains[st.owner].ended)
        return;
    switch (st.owner_kind) {
    case OWN_FUND:
        funded(s, b, st.owner, r);
        break;
    case OWN_AUDIT_READ:
        audit_read(s, b, st.owner, r);
        break;
    case OWN_AUDIT_CHECK:
        audit_checked(s, b, r);
        break;
    case OWN_STATUS:
        teller_settled(s, b, st.owner, r);
        break;
    case OWN_CH_FORGET:
        chain_end(s, b, st.owner);
        break;
    case OWN_1PC: {
        bank_xfer *x = &b->xfers[st.owner];
        x->result_1pc = r->rcode == OKV_OK;
        if (x->result_1pc)
            b->st.one_pc_ok++;
        else
            b->st.one_pc_refused++;
        bank_teller *t = &b->tellers[x->teller];
        if (t->busy && t->xfer == st.owner) {
            if (x->final && t->final_left > 0)
                t->final_left--;
            teller_next(s, b, x->teller, sim_between(s, 1000, 20000));
        }
        break;
    }
    case OWN_PREPARE:
        driver_prepared(s, b, st.owner, st.slot, r);
        break;
    case OWN_VOTE:
        driver_voted(s, b, st.owner, r);
        break;
    case OWN_DECIDE:
        driver_decided(s, b, st.owner, r);
        break;
    case OWN_RESOLVE:
        driver_resolved(s, b, st.owner, r);
        break;
    case OWN_FINISH:
        b->xfers[st.owner].phase = XP_DONE;
        break;
    case OWN_CH_CHECK:
        chain_checked(s, b, st.owner, r);
        break;
    case OWN_CH_RESOLVE:
        chain_resolved(s, b, st.owner, r);
        break;
    case OWN_CH_FINISH:
        chain_end(s, b, st.owner);
        break;

    }
}

void sim_bank_event(sim *s, const sim_ev *ev)
{
    sim_bank *b = s->bank;
    if (!b)
        return;
    switch (ev->node) {
    case BEV_STEP_REQ:
        step_request(s, b, ev);
        break;
    case BEV_STEP_REPLY:
        step_reply_ev(s, b, ev);
        break;
    case BEV_STEP_TIMEOUT:
        step_timeout(s, b, ev);
        break;
    case BEV_TELLER:
        if (ev->gen == b->tellers[ev->a].gen)
            teller_turn(s, b, (int)ev->a);
        break;
    case BEV_TELLER_REQ:
        teller_request(s, b, ev);
        break;
    case BEV_TELLER_REPLY:
        teller_reply(s, b, ev);
        break;
    case BEV_TELLER_GIVEUP:
        teller_giveup(s, b, ev);
        break;
    case BEV_SWEEP:
        sweep_tick(s, b, (int)ev->a);
        break;
    case BEV_LATER:
        send_later(s, b, ev);
        break;
    case BEV_AUDIT:
        audit_event(s, b, ev);
        break;
    }
}

void sim_bank_start(sim *s)
{
    sim_bank *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    s->bank = b;
    b->naccts = s->ngroups * BANK_ACCTS_PER_GROUP;
    b->vote_last = sim_chance(s, 50);
    b->call_pct = (unsigned)sim_between(s, 30, 250);
    b->timeout_ms = sim_between(s, 150, 800);
    b->sweep_us = sim_between(s, 50, 250) * 1000u;
    b->grace_ms = sim_between(s, 0, 300);
    b->crash_pm = (unsigned)sim_between(s, 0, 4);
    b->target_pm = (unsigned)sim_between(s, 0, 4);
    memset(b->leader_guess, 0xff, sizeof b->leader_guess);
    for (int i = 0; i < s->o.nodes; i++) {
        s->nodes[i].wall_skew_us =
            (int64_t)sim_between(s, 0, 2 * BANK_SKEW_MS * 1000) - BANK_SKEW_MS * 1000;
        b->sweep_inc[i] = s->nodes[i].incarnation;
        sim_schedule(s, s->now + sim_between(s, 0, b->sweep_us), EV_BANK, BEV_SWEEP, 0, NULL, 0,
                     (uint64_t)i, 0);
    }
    for (int i = 0; i < BANK_TELLERS; i++) {
        b->tellers[i].client_id = 9000 + (uint64_t)i;
        b->tellers[i].next_rid = 1;
        b->tellers[i].xfer = -1;
        b->tellers[i].busy = 1;   /* until every account is funded */
    }
    b->auditor.client_id = 9100;
    b->auditor.next_rid = 1;
    b->funding_left = b->naccts;
    for (int a = 0; a < b->naccts; a++)
        fund(s, b, a);
}

void sim_bank_heal(sim *s)
{
    sim_bank *b = s->bank;
    if (!b)
        return;
    /* After healing the drivers' timeout is production's 10 s at the
     * simulator's scale (its ticks are a tenth of orderkvd's): a slow disk
     * (heal mode "one slow node": 100-200 ms an fsync, its links 30-60 ms)
     * can make every commit outlast a shorter T, and then no transaction
     * could ever be decided, by design. The register clients wait longer
     * after healing for the same reason. */
    if (b->timeout_ms < BANK_HEALED_TIMEOUT_MS)
        b->timeout_ms = BANK_HEALED_TIMEOUT_MS;
    for (int i = 0; i < BANK_TELLERS; i++) {
        bank_teller *t = &b->tellers[i];
        t->final_left = 1;
        if (b->funded && !t->busy)
            teller_next(s, b, i, sim_between(s, 0, 5000));
    }
}

void sim_bank_free(sim *s)
{
    sim_bank *b = s->bank;
    if (!b)
        return;
    for (size_t i = 0; i < b->nsteps; i++) {
        free(b->steps[i].msg);
        free(b->steps[i].cmd);
    }
    free(b->steps);
    free(b->xfers);
    free(b->chains);
    free(b);
    s->bank = NULL;
}
