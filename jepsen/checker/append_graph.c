/*
 * append_graph.c — the dependency graph of a list-append history and its
 * cycles (append_check.h has the rules).
 *
 * Search, as Elle does it: for each class, the strongly connected
 * components (Tarjan, iterative: a history's graph may be one long chain)
 * of the graph restricted to the edge kinds the class allows; every cycle
 * lies inside one component, and every edge inside a component lies on a
 * cycle, so "edge a -> b of kind K inside a component" plus "shortest path
 * b -> a (BFS) with the allowed kinds, inside the component" is a short
 * cycle through a K edge. One cycle is reported per component and class:
 *
 *   G0        components of ww; any edge inside.
 *   G1c       components of ww+wr; a wr edge inside, path in ww+wr.
 *   G-single  components of ww+wr+rw; an rw edge inside whose way back
 *             needs no other rw edge (path in ww+wr), trying up to
 *             TRIES_PER_COMPONENT rw edges; else
 *   G2        the first rw edge inside with a path in ww+wr+rw.
 *   *-realtime components of all four kinds that hold no component of the
 *             previous step (no cycle without rt): an rt edge inside with a
 *             path in ww+rt, else ww+wr+rt, else all kinds; the cycle
 *             found is classified by its rw and wr edges.
 * A class is always the one of the cycle shown (classify()), so a budget
 * that cuts the search short can only make the class more severe than
 * needed, never hide the cycle.
 */
#include <stdlib.h>
#include <string.h>

#include "append_int.h"

#define TRIES_PER_COMPONENT 64

static int add_edge(ap *a, uint32_t from, uint32_t to, ap_kind kind, uint32_t mf, uint32_t mt)
{
    if (a->nedges == a->edges_cap) {
        if (a->edges_cap >= UINT32_MAX / 2)
            return OKV_ENOMEM;
        uint32_t cap = a->edges_cap ? a->edges_cap * 2 : 1024;
        ap_edge *e = realloc(a->edges, (size_t)cap * sizeof *e);
        if (!e)
            return OKV_ENOMEM;
        a->edges = e;
        a->edges_cap = cap;
    }
    ap_edge *e = &a->edges[a->nedges];
    *e = (ap_edge){ from, to, a->head[from], (uint8_t)kind, mf, mt };
    a->head[from] = a->nedges++;
    a->edge_counts[kind == AP_WW ? 0 : kind == AP_WR ? 1 : kind == AP_RW ? 2 : 3]++;
    return 0;
}

static uint32_t node_of_mop(const ap *a, uint32_t m)
{
    return m == AP_NONE ? AP_NONE : a->txns[a->mops[m].txn].node;
}

/* ww: consecutive elements of each key's order by different writers. */
static int ww_edges(ap *a)
{
    for (uint32_t s = 0; s < a->nkeys; s++) {
        const history_value *o = a->keys[s].order;
        for (size_t j = 0; o && j + 1 < o->n; j++) {
            uint32_t w1 = ap_writer(a, s, o->items[j].i), w2 = ap_writer(a, s, o->items[j + 1].i);
            uint32_t n1 = node_of_mop(a, w1), n2 = node_of_mop(a, w2);
            if (n1 != AP_NONE && n2 != AP_NONE && n1 != n2 && add_edge(a, n1, n2, AP_WW, w1, w2))
                return OKV_ENOMEM;
        }
    }
    return 0;
}

/* wr and rw of every usable read, from its external part. */
static int read_edges(ap *a)
{
    for (uint32_t i = 0; i < a->nmops; i++) {
        const ap_mop *m = &a->mops[i];
        if (m->append || !m->read || !m->internal_ok)
            continue;
        uint32_t me = a->txns[m->txn].node;
        const history_value *o = a->keys[m->key_slot].order;
        if (m->ext_len > 0) {
            uint32_t w = ap_writer(a, m->key_slot, m->read->items[m->ext_len - 1].i);
            uint32_t n = node_of_mop(a, w);
            if (n != AP_NONE && n != me && add_edge(a, n, me, AP_WR, w, i))
                return OKV_ENOMEM;
        }
        if (m->ext_len < o->n) {
            uint32_t w = ap_writer(a, m->key_slot, o->items[m->ext_len].i);
            uint32_t n = node_of_mop(a, w);
            if (n != AP_NONE && n != me && add_edge(a, me, n, AP_RW, i, w))
                return OKV_ENOMEM;
        }
    }
    return 0;
}

/* rt, transitively reduced: the frontier holds the completed nodes no
 * later completion supersedes (X is superseded once some Y completed that
 * was invoked after X completed: X -> Y -> anything after Y). Every
 * invoke links from the whole frontier, so it stays about as small as the
 * number of processes. Only ok transactions complete. */
static int rt_edges(ap *a)
{
    const history *h = a->h;
    uint32_t *frontier = malloc(((size_t)a->nnodes + 1) * sizeof *frontier);
    uint32_t *by_pos_txn = NULL;
    if (!frontier)
        return OKV_ENOMEM;
    /* The txn of each invoke / completion position, for the sweep. */
    by_pos_txn = malloc((h->n_ops + 1) * sizeof *by_pos_txn);
    if (!by_pos_txn) {
        free(frontier);
        return OKV_ENOMEM;
    }
    for (size_t p = 0; p < h->n_ops; p++)
        by_pos_txn[p] = AP_NONE;
    for (uint32_t t = 0; t < a->ntxns; t++) {
        by_pos_txn[a->txns[t].inv] = t;
        if (a->txns[t].done != HISTORY_NONE)
            by_pos_txn[a->txns[t].done] = t;
    }
    uint32_t nf = 0;
    int rc = 0;
    for (size_t p = 0; p < h->n_ops && !rc; p++) {
        uint32_t t = by_pos_txn[p];
        if (t == AP_NONE || a->txns[t].node == AP_NONE)
            continue;
        const ap_txn *x = &a->txns[t];
        if (p == x->inv) {
            for (uint32_t f = 0; f < nf && !rc; f++)
                rc = add_edge(a, frontier[f], x->node, AP_RT, AP_NONE, AP_NONE);
        } else if (x->type == HISTORY_OK) {
            uint32_t keep = 0;
            for (uint32_t f = 0; f < nf; f++)
                if (a->txns[a->node_txn[frontier[f]]].done > x->inv)
                    frontier[keep++] = frontier[f];
            frontier[keep++] = x->node;
            nf = keep;
        }
    }
    free(by_pos_txn);
    free(frontier);
    return rc;
}

int ap_build_edges(ap *a)
{
    a->head = malloc(((size_t)a->nnodes + 1) * sizeof *a->head);
    if (!a->head)
        return OKV_ENOMEM;
    for (uint32_t n = 0; n < a->nnodes; n++)
        a->head[n] = AP_NONE;
    int rc = ww_edges(a);
    if (!rc)
        rc = read_edges(a);
    if (!rc)
        rc = rt_edges(a);
    return rc;
}

/* ---- components and paths -------------------------------------------------- */

typedef struct work {
    uint32_t *comp, *size;        /* node -> component; component -> nodes */
    uint32_t *idx, *low, *stack, *cs_node, *cs_edge;
    uint8_t *on;
    uint32_t *seen, *parent, *queue, gen;  /* BFS */
    uint32_t *tries;              /* per component */
    uint8_t *done;                /* per component */
    uint8_t *cyclic;              /* per node: in a component with a cycle without rt */
    uint32_t *path;
} work;

static void work_free(work *w)
{
    free(w->comp); free(w->size); free(w->idx); free(w->low); free(w->stack);
    free(w->cs_node); free(w->cs_edge); free(w->on); free(w->seen); free(w->parent);
    free(w->queue); free(w->tries); free(w->done); free(w->cyclic); free(w->path);
}

static int work_init(work *w, uint32_t n)
{
    memset(w, 0, sizeof *w);
    size_t c = (size_t)n + 1, u = c * sizeof(uint32_t);
    w->comp = malloc(u); w->size = malloc(u); w->idx = malloc(u); w->low = malloc(u);
    w->stack = malloc(u); w->cs_node = malloc(u); w->cs_edge = malloc(u); w->on = malloc(c);
    w->seen = calloc(c, sizeof(uint32_t)); w->parent = malloc(u); w->queue = malloc(u);
    w->tries = malloc(u); w->done = malloc(c); w->cyclic = calloc(c, 1); w->path = malloc(u + 4);
    if (!w->comp || !w->size || !w->idx || !w->low || !w->stack || !w->cs_node || !w->cs_edge ||
        !w->on || !w->seen || !w->parent || !w->queue || !w->tries || !w->done || !w->cyclic ||
        !w->path) {
        work_free(w);
        return OKV_ENOMEM;
    }
    return 0;
}

/* Tarjan's strongly connected components of the edges of kinds in mask;
 * also resets the per-component tries and done marks. */
static void scc(const ap *a, work *w, unsigned mask)
{
    uint32_t n = a->nnodes, counter = 0, ncomp = 0, sp = 0, cp = 0;
    for (uint32_t v = 0; v < n; v++) {
        w->idx[v] = AP_NONE;
        w->on[v] = 0;
    }
    for (uint32_t s = 0; s < n; s++) {
        if (w->idx[s] != AP_NONE)
            continue;
        w->idx[s] = w->low[s] = counter++;
        w->stack[sp++] = s;
        w->on[s] = 1;
        w->cs_node[cp] = s;
        w->cs_edge[cp++] = a->head[s];
        while (cp) {
            uint32_t v = w->cs_node[cp - 1], e = w->cs_edge[cp - 1];
            while (e != AP_NONE && !(a->edges[e].kind & mask))
                e = a->edges[e].next;
            if (e != AP_NONE) {
                w->cs_edge[cp - 1] = a->edges[e].next;
                uint32_t x = a->edges[e].to;
                if (w->idx[x] == AP_NONE) {
                    w->idx[x] = w->low[x] = counter++;
                    w->stack[sp++] = x;
                    w->on[x] = 1;
                    w->cs_node[cp] = x;
                    w->cs_edge[cp++] = a->head[x];
                } else if (w->on[x] && w->idx[x] < w->low[v]) {
                    w->low[v] = w->idx[x];
                }
                continue;
            }
            cp--;
            if (w->low[v] == w->idx[v]) {
                uint32_t x, size = 0;
                do {
                    x = w->stack[--sp];
                    w->on[x] = 0;
                    w->comp[x] = ncomp;
                    size++;
                } while (x != v);
                w->size[ncomp] = size;
                w->tries[ncomp] = 0;
                w->done[ncomp] = 0;
                ncomp++;
            }
            if (cp) {
                uint32_t u = w->cs_node[cp - 1];
                if (w->low[v] < w->low[u])
                    w->low[u] = w->low[v];
            }
        }
    }
}

/* Shortest path from -> to over edges of kinds in mask inside from's
 * component; its edges in w->path. Returns the length, 0 if none. */
static uint32_t bfs(const ap *a, work *w, unsigned mask, uint32_t from, uint32_t to)
{
    uint32_t c = w->comp[from], qh = 0, qt = 0;
    if (++w->gen == 0) {
        memset(w->seen, 0, ((size_t)a->nnodes + 1) * sizeof *w->seen);
        w->gen = 1;
    }
    w->seen[from] = w->gen;
    w->queue[qt++] = from;
    while (qh < qt && w->seen[to] != w->gen) {
        uint32_t v = w->queue[qh++];
        for (uint32_t e = a->head[v]; e != AP_NONE; e = a->edges[e].next) {
            uint32_t x = a->edges[e].to;
            if (!(a->edges[e].kind & mask) || w->comp[x] != c || w->seen[x] == w->gen)
                continue;
            w->seen[x] = w->gen;
            w->parent[x] = e;
            w->queue[qt++] = x;
        }
    }
    if (w->seen[to] != w->gen || from == to)
        return 0;
    uint32_t len = 0;
    for (uint32_t v = to; v != from; v = a->edges[w->parent[v]].from)
        len++;
    uint32_t i = len;
    for (uint32_t v = to; v != from; v = a->edges[w->parent[v]].from)
        w->path[--i] = w->parent[v];
    return len;
}

static ap_class classify(const ap *a, const uint32_t *cyc, uint32_t n)
{
    unsigned wr = 0, rw = 0, rt = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t k = a->edges[cyc[i]].kind;
        wr += k == AP_WR;
        rw += k == AP_RW;
        rt += k == AP_RT;
    }
    if (rt)
        return rw > 1 ? AP_G2_RT : rw == 1 ? AP_GSINGLE_RT : wr ? AP_G1C_RT : AP_G0_RT;
    return rw > 1 ? AP_G2 : rw == 1 ? AP_GSINGLE : wr ? AP_G1C : AP_G0;
}

/* The cycle "edge e, then a path back from its head to its tail with
 * mask": reported if there is one. 1 if found. */
static int try_cycle(ap *a, work *w, uint32_t e, unsigned mask)
{
    const ap_edge *x = &a->edges[e];
    uint32_t len = bfs(a, w, mask, x->to, x->from);
    if (!len)
        return 0;
    memmove(w->path + 1, w->path, (size_t)len * sizeof *w->path);
    w->path[0] = e;
    ap_explain_cycle(a, classify(a, w->path, len + 1), w->path, len + 1);
    w->done[w->comp[x->from]] = 1;
    return 1;
}

/* Every edge of kind `kind` inside a component of the current scc (not
 * done, within the tries budget): try a cycle through it with mask. */
static void search(ap *a, work *w, ap_kind kind, unsigned mask, int budget)
{
    for (uint32_t e = 0; e < a->nedges; e++) {
        const ap_edge *x = &a->edges[e];
        uint32_t c = w->comp[x->from];
        if (x->kind != kind || c != w->comp[x->to] || w->done[c])
            continue;
        if (budget && w->tries[c]++ >= TRIES_PER_COMPONENT)
            continue;
        try_cycle(a, w, e, mask);
    }
}

int ap_find_cycles(ap *a)
{
    work w;
    if (work_init(&w, a->nnodes))
        return OKV_ENOMEM;
    scc(a, &w, AP_WW);
    search(a, &w, AP_WW, AP_WW, 0);
    scc(a, &w, AP_WW | AP_WR);
    search(a, &w, AP_WR, AP_WW | AP_WR, 0);
    scc(a, &w, AP_WW | AP_WR | AP_RW);
    search(a, &w, AP_RW, AP_WW | AP_WR, 1);
    search(a, &w, AP_RW, AP_WW | AP_WR | AP_RW, 0);
    /* Nodes on a cycle without rt: their realtime components are skipped
     * (marked done), a cycle was reported there already. */
    for (uint32_t v = 0; v < a->nnodes; v++)
        w.cyclic[v] = w.size[w.comp[v]] > 1;
    scc(a, &w, AP_ALL);
    for (uint32_t v = 0; v < a->nnodes; v++)
        if (w.cyclic[v])
            w.done[w.comp[v]] = 1;
    search(a, &w, AP_RT, AP_WW | AP_RT, 1);
    for (uint32_t c = 0; c < a->nnodes; c++)
        w.tries[c] = 0;
    search(a, &w, AP_RT, AP_WW | AP_WR | AP_RT, 1);
    for (uint32_t c = 0; c < a->nnodes; c++)
        w.tries[c] = 0;
    search(a, &w, AP_RT, AP_ALL, 1);
    work_free(&w);
    return a->oom ? OKV_ENOMEM : 0;
}
