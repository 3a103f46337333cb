/*
 * sim_client.c — simulated clients and the history they record.
 *
 * A client runs one operation at a time on a small set of keys: a write
 * of a fresh value, or a read. It follows liborderkv's rules
 * (client/client_call.c): a write carries (client id, request id,
 * watermark); an answer that leaves the outcome open (OKV_EUNKNOWN, or no
 * answer in time) is resent with the same request id, to the same or
 * another node; a definite refusal (NOT_LEADER, UNAVAILABLE) is retried
 * while attempts remain. The op is ok once any attempt succeeds, failed if
 * every attempt was refused, and indeterminate (info) otherwise. A client
 * sometimes reconnects: a new session keeps its client id, and its request
 * ids start where client_request_id_first puts them.
 *
 * A node serves a request as service_kv_raft.c does: a write is proposed
 * (raftstore_propose); a read is served at once under a lease
 * (raftstore_lease_read), else after raftstore_read's read point, from the
 * node's applied state (fsm_get).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_reqid.h"
#include "nodesim.h"

#define WRITE_ATTEMPTS 6
#define READ_ATTEMPTS 3
#define ATTEMPT_TIMEOUT_US 300000
#define WALL_EPOCH_US 1700000000000000ULL   /* the clients' wall clock at time 0 */

typedef struct req_ctx {
    sim *s;
    int client, node;
    uint64_t gen;
} req_ctx;

typedef struct reply {
    int code, rcode, null;
    uint64_t version, leader;
    int64_t value;
} reply;

static sim_op *op_of(sim *s, sim_client *c)
{
    return &s->ops[c->op];
}

static int group_of_key(int key)
{
    return key / SIM_KEYS_PER_GROUP;
}

static size_t key_name(int key, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "g%d/k%d", group_of_key(key), key);
}

static void new_session(sim *s, sim_client *c)
{
    c->next_rid = OKV_PLANTED(PLANT_REQUEST_ID_RESET)
                      ? 1
                      : client_request_id_first(WALL_EPOCH_US + s->now, 0);
    c->session_start = c->next_rid;
}

void sim_clients_start(sim *s)
{
    /* Some seeds mostly read: groups then sit idle between writes, as a
     * transferee's log must be for a late TIMEOUT_NOW to win. */
    s->write_pct = (unsigned)sim_between(s, 5, 60);
    for (int i = 0; i < SIM_CLIENTS; i++) {
        sim_client *c = &s->clients[i];
        memset(c, 0, sizeof *c);
        c->client_id = 4242 + (uint64_t)i;
        c->op = -1;
        for (int g = 0; g < SIM_MAX_GROUPS; g++)
            c->leader_guess[g] = -1;
        new_session(s, c);
        sim_schedule(s, s->now + sim_between(s, 0, 5000), EV_CLIENT, i, c->op_gen, NULL, 0, 0, 0);
    }
}

static int pick_node(sim *s, sim_client *c, int group)
{
    int guess = c->leader_guess[group];
    /* Mostly the leader, as liborderkv routes; some reads go to followers
     * (any replica serves them), and after healing every read does. */
    if (op_of(s, c)->kind == OP_READ && s->read_bias_node >= 0 && group == s->read_bias_group)
        return s->read_bias_node;
    if (guess >= 0 && sim_chance(s, 80) && !(c->done && op_of(s, c)->kind == OP_READ))
        return guess;
    for (;;) {
        int n = (int)sim_between(s, 0, (uint64_t)s->o.nodes - 1);
        if (sim_holds(s, n, group))
            return n;
    }
}

static void send_attempt(sim *s, int ci, int node)
{
    sim_client *c = &s->clients[ci];
    sim_op *op = op_of(s, c);
    /* After healing a client insists, with a pause between attempts. */
    uint64_t backoff = c->done && c->attempts ? sim_between(s, 5000, 10000) : 0;
    c->attempts++;
    c->op_gen++;
    if (node < 0)
        node = pick_node(s, c, group_of_key(op->key));
    uint64_t at = s->now + backoff + sim_between(s, 100, 500);
    sim_schedule(s, at, EV_REQUEST, node, c->op_gen, NULL, 0, (uint64_t)ci, 0);
    /* A failing disk makes a healthy write take ~0.5 s: after healing a
     * client waits longer before it resends. */
    sim_schedule(s, at + (c->done ? 4 * ATTEMPT_TIMEOUT_US : ATTEMPT_TIMEOUT_US), EV_CLIENT, ci,
                 c->op_gen, NULL, 0, 1, 0);
}

static void start_op(sim *s, int ci, int key, int kind)
{
    sim_client *c = &s->clients[ci];
    if (s->nops == s->capops) {
        s->capops = s->capops ? s->capops * 2 : 1024;
        s->ops = realloc(s->ops, s->capops * sizeof *s->ops);
        if (!s->ops)
            abort();
    }
    c->op = (int64_t)s->nops++;
    sim_op *op = op_of(s, c);
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->type = OP_PENDING;
    op->client = ci;
    op->key = key;
    op->call = ++s->pos;
    c->attempts = 0;
    c->ambiguous = 0;
    if (kind == OP_WRITE) {
        op->value = ++s->next_value;
        op->client_id = c->client_id;
        op->request_id = c->next_rid++;
        char name[32];
        size_t kl = key_name(key, name, sizeof name);
        uint8_t val[8];
        for (int b = 0; b < 8; b++)
            val[b] = (uint8_t)((uint64_t)op->value >> (8 * b));
        command cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.op = CMD_PUT;
        cmd.table_id = SIM_TABLE;
        cmd.partition = (uint32_t)group_of_key(key);
        cmd.client_id = c->client_id;
        cmd.request_id = op->request_id;
        cmd.watermark = op->request_id;   /* one write in flight: it is the lowest */
        cmd.key = (const uint8_t *)name;
        cmd.key_len = kl;
        cmd.value = val;
        cmd.value_len = sizeof val;
        free(c->cmd);
        c->cmd_len = command_encoded_size(&cmd);
        c->cmd = malloc(c->cmd_len);
        if (!c->cmd)
            abort();
        command_encode(&cmd, c->cmd);
    }
    sim_logf(s, "client %d: %s key %d%s", ci, kind == OP_WRITE ? "write" : "read", key,
             kind == OP_WRITE ? "" : "");
    send_attempt(s, ci, -1);
}

static void finish_op(sim *s, int ci, int type)
{
    sim_client *c = &s->clients[ci];
    sim_op *op = op_of(s, c);
    op->type = type;
    op->ret = ++s->pos;
    sim_logf(s, "client %d: %s key %d -> %s %lld%s (version %llu)", ci,
             op->kind == OP_WRITE ? "write" : "read", op->key,
             type == OP_OK ? "ok" : type == OP_FAIL ? "fail" : "info", (long long)op->value,
             op->null ? " (null)" : "", (unsigned long long)op->version);
    c->op = -1;
    c->op_gen++;
    sim_schedule(s, s->now + sim_between(s, 0, 3000), EV_CLIENT, ci, c->op_gen, NULL, 0, 0, 0);
}

/* An attempt ended without success: retry, or settle the op. A write
 * refused with UNAVAILABLE ("certainly not applied") before any attempt
 * left its outcome open fails at once: check C6 holds the store to that
 * word. After healing, every op is retried until it succeeds. */
static void attempt_failed(sim *s, int ci, int ambiguous, int hint_node, int code)
{
    sim_client *c = &s->clients[ci];
    sim_op *op = op_of(s, c);
    if (ambiguous)
        c->ambiguous = 1;
    if (op->kind == OP_WRITE && code == OKV_EUNAVAILABLE && !c->ambiguous && !c->done) {
        finish_op(s, ci, OP_FAIL);
        return;
    }
    int limit = c->done ? 1000000 : op->kind == OP_WRITE ? WRITE_ATTEMPTS : READ_ATTEMPTS;
    if (c->attempts < limit) {
        send_attempt(s, ci, hint_node);
        return;
    }
    finish_op(s, ci, op->kind == OP_WRITE && c->ambiguous ? OP_INFO : OP_FAIL);
}

void sim_client_event(sim *s, const sim_ev *ev)
{
    sim_client *c = &s->clients[ev->node];
    if (ev->gen != c->op_gen)
        return;
    if (c->op >= 0) {
        if (ev->a == 1)   /* no answer in time: the outcome is open */
            attempt_failed(s, ev->node, 1, -1, OKV_ETIMEDOUT);
        return;
    }
    if (c->done) {
        /* After healing: one write per client, then client 0 reads every
         * key once all writes are acknowledged (check C5). */
        if (c->final_writes > 0) {
            c->final_writes--;
            start_op(s, ev->node, ev->node % s->nkeys, OP_WRITE);
        } else if (c->final_reads > 0 && sim_final_writes_done(s)) {
            int key = s->nkeys - c->final_reads;
            c->final_reads--;
            start_op(s, ev->node, key, OP_READ);
        } else if (c->final_reads > 0) {
            c->op_gen++;
            sim_schedule(s, s->now + 5000, EV_CLIENT, ev->node, c->op_gen, NULL, 0, 0, 0);
        }
        return;
    }
    if (sim_chance(s, 3)) {
        new_session(s, c);
        sim_logf(s, "client %d: reconnects (request ids from %llu)", ev->node,
                 (unsigned long long)c->next_rid);
    }
    int key = (int)sim_between(s, 0, (uint64_t)s->nkeys - 1);
    start_op(s, ev->node, key, sim_chance(s, s->write_pct) ? OP_WRITE : OP_READ);
}

static void send_reply(sim *s, req_ctx *x, const reply *r)
{
    reply *p = malloc(sizeof *p);
    if (!p)
        abort();
    *p = *r;
    sim_schedule(s, s->now + sim_between(s, 100, 500), EV_REPLY, x->client, x->gen, p,
                 sizeof *p, (uint64_t)x->node, 0);
    free(x);
}

static void write_done(void *arg, int code, const command_result *r, uint64_t leader)
{
    req_ctx *x = arg;
    reply rep;
    memset(&rep, 0, sizeof rep);
    rep.code = code;
    rep.leader = leader;
    if (r) {
        rep.rcode = r->code;
        rep.version = r->version;
    }
    send_reply(x->s, x, &rep);
}

static void read_now(sim *s, req_ctx *x)
{
    sim_client *c = &s->clients[x->client];
    sim_node *n = &s->nodes[x->node];
    sim_op *op = op_of(s, c);
    char name[32];
    size_t kl = key_name(op->key, name, sizeof name);
    uint8_t *val = NULL;
    size_t vlen = 0;
    uint64_t version = 0;
    okv_error err;
    reply rep;
    memset(&rep, 0, sizeof rep);
    int rc = fsm_get(n->reader, SIM_TABLE, (uint32_t)group_of_key(op->key), (const uint8_t *)name,
                     kl, &val, &vlen, &version, &err);
    if (rc == OKV_ENOTFOUND) {
        rep.null = 1;
    } else if (rc) {
        rep.code = rc;
    } else {
        uint64_t v = 0;
        for (size_t b = 0; b < 8 && b < vlen; b++)
            v |= (uint64_t)val[b] << (8 * b);
        rep.value = (int64_t)v;
        rep.version = version;
    }
    free(val);
    send_reply(s, x, &rep);
}

static void read_done(void *arg, int code, uint64_t leader)
{
    req_ctx *x = arg;
    sim *s = x->s;
    sim_client *c = &s->clients[x->client];
    if (code == OKV_OK && c->op_gen == x->gen && s->nodes[x->node].up) {
        sim_logf(s, "node %d: read point reached for client %d", x->node + 1, x->client);
        read_now(s, x);
        return;
    }
    reply rep;
    memset(&rep, 0, sizeof rep);
    rep.code = code ? code : OKV_EUNAVAILABLE;
    rep.leader = leader;
    send_reply(s, x, &rep);
}

void sim_client_request(sim *s, const sim_ev *ev)
{
    int ci = (int)ev->a;
    sim_client *c = &s->clients[ci];
    sim_node *n = &s->nodes[ev->node];
    if (ev->gen != c->op_gen || c->op < 0 || !n->up)
        return;   /* a stale attempt, or nobody listening: the client times out */
    if (s->now < n->paused_until) {
        sim_schedule(s, n->paused_until, EV_REQUEST, ev->node, ev->gen, NULL, 0, ev->a, 0);
        return;
    }
    sim_op *op = op_of(s, c);
    req_ctx *x = malloc(sizeof *x);
    if (!x)
        abort();
    x->s = s;
    x->client = ci;
    x->node = ev->node;
    x->gen = ev->gen;
    uint64_t group = sim_group_id(group_of_key(op->key));
    if (op->kind == OP_WRITE)
        raftstore_propose(n->rs, group, c->cmd, c->cmd_len, write_done, x);
    else if (raftstore_lease_read(n->rs, group)) {
        sim_logf(s, "node %d: lease read for client %d", ev->node + 1, ci);
        read_now(s, x);
    }
    else {
        sim_logf(s, "node %d: read for client %d waits for a read point", ev->node + 1, ci);
        raftstore_read(n->rs, group, read_done, x);
    }
}

void sim_client_reply(sim *s, const sim_ev *ev)
{
    int ci = ev->node;
    sim_client *c = &s->clients[ci];
    if (ev->gen != c->op_gen || c->op < 0)
        return;   /* an attempt the client gave up on */
    const reply *r = ev->p;
    sim_op *op = op_of(s, c);
    int group = group_of_key(op->key);
    int hint = r->leader >= 1 && r->leader <= (uint64_t)s->o.nodes ? (int)r->leader - 1 : -1;
    if (hint >= 0)
        c->leader_guess[group] = hint;
    if (op->kind == OP_READ) {
        if (r->code == OKV_OK) {
            c->leader_guess[group] = (int)ev->a;
            op->null = r->null;
            op->value = r->value;
            op->version = r->version;
            finish_op(s, ci, OP_OK);
        } else {
            attempt_failed(s, ci, 0, hint, r->code);
        }
        return;
    }
    if (r->code == OKV_OK) {
        c->leader_guess[group] = (int)ev->a;
        if (r->rcode == OKV_OK) {
            op->version = r->version;
            finish_op(s, ci, OP_OK);
        } else {
            /* refused when applied (below the watermark): applied nowhere,
             * unless an earlier attempt was */
            finish_op(s, ci, c->ambiguous ? OP_INFO : OP_FAIL);
        }
        return;
    }
    attempt_failed(s, ci, r->code == OKV_EUNKNOWN, r->code == OKV_ENOTLEADER ? hint : -1,
                   r->code);
}

int sim_final_writes_done(const sim *s)
{
    for (int i = 0; i < SIM_CLIENTS; i++) {
        const sim_client *c = &s->clients[i];
        if (c->final_writes > 0 || (c->op >= 0 && s->ops[c->op].kind == OP_WRITE))
            return 0;
    }
    return 1;
}

void sim_clients_final_reads(sim *s)
{
    for (int i = 0; i < SIM_CLIENTS; i++) {
        sim_client *c = &s->clients[i];
        c->done = 1;
        c->final_writes = 1;
        c->final_reads = i == 0 ? s->nkeys : 0;
        if (c->op < 0) {
            c->op_gen++;
            sim_schedule(s, s->now, EV_CLIENT, i, c->op_gen, NULL, 0, 0, 0);
        }
    }
}

int sim_clients_idle(const sim *s)
{
    for (int i = 0; i < SIM_CLIENTS; i++)
        if (s->clients[i].op >= 0 || s->clients[i].final_reads > 0 ||
            s->clients[i].final_writes > 0)
            return 0;
    return 1;
}
