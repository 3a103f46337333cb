/*
 * sim_world.c — the node simulator's event loop: one seed's run from
 * start through the fault phase, healing, the liveness window and the
 * checks (nodesim.h).
 */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nodesim.h"

unsigned okv_planted;   /* planted.h */

uint64_t sim_rand(sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t sim_between(sim *s, uint64_t lo, uint64_t hi)
{
    return hi <= lo ? lo : lo + sim_rand(s) % (hi - lo + 1);
}

int sim_chance(sim *s, unsigned pct)
{
    return sim_rand(s) % 100 < pct;
}

uint64_t sim_now(const sim *s)
{
    return s->now;
}

void sim_logf(sim *s, const char *fmt, ...)
{
    if (!s->o.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%8.3f ms] ", (double)s->now / 1000.0);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- the event heap (by time, then by scheduling order) ------------------ */

static int ev_less(const sim_ev *a, const sim_ev *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

void sim_schedule(sim *s, uint64_t at, int kind, int node, uint64_t gen, void *p, size_t len,
                  uint64_t a, uint64_t b)
{
    if (s->nheap == s->capheap) {
        s->capheap = s->capheap ? s->capheap * 2 : 1024;
        s->heap = realloc(s->heap, s->capheap * sizeof *s->heap);
        if (!s->heap)
            abort();
    }
    sim_ev ev = { at < s->now ? s->now : at, ++s->seq, kind, node, gen, p, len, a, b };
    size_t i = s->nheap++;
    while (i > 0 && ev_less(&ev, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = ev;
}

static sim_ev pop(sim *s)
{
    sim_ev top = s->heap[0], last = s->heap[--s->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nheap)
            break;
        if (c + 1 < s->nheap && ev_less(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!ev_less(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->nheap)
        s->heap[i] = last;
    return top;
}

static void free_payload(sim_ev *ev)
{
    if (ev->kind == EV_SNAPSHOT && ev->p) {
        /* sim_net_send_snapshot's payload: the message, then the pin */
        engine_snapshot **snap = (engine_snapshot **)((char *)ev->p + sizeof(struct raft_message));
        engine_snapshot_free(*snap);
    }
    free(ev->p);
}

static void dispatch(sim *s, sim_ev *ev)
{
    switch (ev->kind) {
    case EV_DELIVER:
        sim_node_deliver(s, &s->nodes[ev->node], ev);
        break;
    case EV_SNAPSHOT:
        sim_node_snapshot(s, &s->nodes[ev->node], ev);
        break;
    case EV_STEP:
    case EV_STEP_END:
        sim_node_step_event(s, &s->nodes[ev->node], ev);
        break;
    case EV_CLIENT:
        sim_client_event(s, ev);
        break;
    case EV_REQUEST:
        sim_client_request(s, ev);
        break;
    case EV_REPLY:
        sim_client_reply(s, ev);
        break;
    case EV_NEMESIS:
        if (s->faults_on && ev->gen != 0)
            sim_delayed_fault(s, ev);
        else if (s->faults_on)
            sim_nemesis(s);
        break;
    case EV_RESTART:
        if (!s->nodes[ev->node].up && ev->gen == s->nodes[ev->node].incarnation)
            sim_node_start(s, &s->nodes[ev->node]);
        break;
    case EV_BANK:
        sim_bank_event(s, ev);
        break;
    }
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(sub);
            else
                unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static int setup(sim *s, char *why, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(s->root, sizeof s->root, "%s/okv-nodesim-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->root)) {
        snprintf(why, cap, "cannot create a temp dir under %s", s->root);
        return -1;
    }
    s->ngroups = s->o.nodes == 5 ? 3 : 2;
    s->nkeys = s->ngroups * SIM_KEYS_PER_GROUP;
    for (int i = 0; i < s->o.nodes; i++) {
        sim_node *n = &s->nodes[i];
        n->s = s;
        n->idx = i;
        snprintf(n->dir, sizeof n->dir, "%s/n%d", s->root, i + 1);
        okv_error err;
        if (mkdir(n->dir, 0700) != 0 || engine_mem_disk_new(&n->disk, n->dir, &err) != OKV_OK) {
            snprintf(why, cap, "cannot set up %s", n->dir);
            return -1;
        }
        /* Clock rates within the lease's bound (raftstore.h: 10%): +-2%. */
        n->rate_ppm = 1000000 - 20000 + sim_between(s, 0, 40000);
        n->clock_base_us = sim_between(s, 0, 1000000) * 1000;   /* arbitrary epoch */
        if (s->o.clock_beyond && i == 0)
            n->rate_ppm = 250000;   /* planted: far beyond the bound */
    }
    for (int i = 0; i < s->o.nodes; i++)
        if (sim_node_start(s, &s->nodes[i]) != 0) {
            snprintf(why, cap, "node %d did not start: %s", i + 1, s->failure);
            return -1;
        }
    return 0;
}

static void teardown(sim *s)
{
    /* Nodes first: stopping a store answers its callers, whose answers
     * become events that are then dropped with the rest. */
    for (int i = 0; i < s->o.nodes; i++)
        sim_node_free(&s->nodes[i]);
    while (s->nheap) {
        sim_ev ev = pop(s);
        free_payload(&ev);
    }
    free(s->heap);
    sim_bank_free(s);
    for (int i = 0; i < s->o.nodes; i++)
        engine_mem_disk_free(s->nodes[i].disk);
    for (int c = 0; c < SIM_CLIENTS; c++)
        free(s->clients[c].cmd);
    free(s->ops);
    free(s->claims);
    for (int i = 0; i < SIM_MAX_NODES; i++)
        for (int g = 0; g < SIM_MAX_GROUPS; g++)
            free(s->applied[i][g]);
    if (s->root[0])
        remove_tree(s->root);
}

/* The transactional workload settled (sim_bank_settled reads every
 * group's state): asked at most once per 10 ms of simulated time. */
static int bank_settled(sim *s)
{
    if (!s->bank)
        return 1;
    if (s->bank_checked_at && s->now < s->bank_checked_at + 10000)
        return 0;
    s->bank_checked_at = s->now;
    return sim_bank_settled(s);
}

int sim_run(const sim_options *o, char *why, size_t cap, uint64_t *events_out)
{
    sim *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, cap, "out of memory");
        return 1;
    }
    s->o = *o;
    if (s->o.nodes != 5)
        s->o.nodes = 3;
    if (!s->o.fault_us)
        s->o.fault_us = 3000000;
    if (!s->o.heal_us)
        s->o.heal_us = 6000000;
    s->rng = o->seed * 0x2545f4914f6cdd1dULL + 1;
    s->read_bias_node = -1;
    okv_planted = o->planted;
    why[0] = 0;
    int bad = setup(s, why, cap);
    if (!bad) {
        s->faults_on = 1;
        sim_clients_start(s);
        if (s->o.bank)
            sim_bank_start(s);
        sim_schedule(s, sim_between(s, 50000, 200000), EV_NEMESIS, 0, 0, NULL, 0, 0, 0);
        int healed = 0;
        uint64_t end = s->o.fault_us + s->o.heal_us;
        while (s->nheap && !s->failure[0]) {
            if (!healed && s->heap[0].at >= s->o.fault_us) {
                s->now = s->o.fault_us;
                healed = 1;
                s->faults_on = 0;
                sim_heal(s);
                sim_clients_final_reads(s);
                sim_bank_heal(s);
            }
            if (s->heap[0].at > end ||
                (healed && sim_clients_idle(s) && sim_leaders_agree(s) && bank_settled(s)))
                break;
            sim_ev ev = pop(s);
            s->now = ev.at;
            s->events++;
            dispatch(s, &ev);
            free_payload(&ev);
        }
        if (s->failure[0]) {
            snprintf(why, cap, "%s", s->failure);
            bad = 1;
        }
        if (!bad)
            /* The transactional workload's checks before C5: a run that
             * went on to the bound for want of settling reports that, not
             * a leader change that happened to be under way then. */
            bad = sim_check_applied(s, why, cap) || sim_check_history(s, why, cap) ||
                  sim_bank_check(s, why, cap) || sim_check_live(s, why, cap);
    }
    if (events_out)
        *events_out = s->events;
    teardown(s);
    free(s);
    okv_planted = 0;
    return bad ? 1 : 0;
}
