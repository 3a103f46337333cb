/*
 * codec.c — binary encoding of raft values (contract in raft_codec.h).
 *
 * Formats (all integers little-endian, fixed width):
 *
 * Message
 *   off  size  field
 *     0     1  version (RAFT_CODEC_VERSION)
 *     1     1  type (enum raft_msg_type, 1..12)
 *     2     1  flags: bit 0 reject, bit 1 transfer; other bits must be 0
 *     3     1  reserved, must be 0
 *     4     8  from
 *    12     8  to
 *    20     8  term
 *    28     8  log_term
 *    36     8  index
 *    44     8  commit
 *    52     8  hint_index
 *    60     8  hint_term
 *    68     8  ctx
 *    76     4  n_entries
 *    80        n_entries x entry body (below)
 *              SNAPSHOT only: snapshot body (below)
 *
 * Entry body: term u64, index u64, type u8 (0/1), len u32, len bytes.
 * Standalone entry (raft_entry_encode): version u8, then an entry body.
 * Snapshot body: index u64, term u64, conf, len u64, len bytes.
 * Conf: n_voters u32, n_learners u32 (sum <= RAFT_MAX_NODES), then
 *       n_voters + n_learners ids u64.
 * Hard state: version u8, term u64, vote u64, commit u64 (25 bytes).
 * Conf entry payload: version u8, change type u8 (1..3), node u64, then the
 *       resulting configuration (conf layout above).
 *
 * Decoding checks every length against the bytes that remain before
 * allocating, so a hostile length cannot make us allocate more than the
 * input's size or read past it; trailing bytes are an error too.
 */
#include <stdlib.h>
#include <string.h>

#include "raft_codec.h"

#define MSG_HEADER 80
#define ENTRY_HEADER 21

/* ---- byte cursor ------------------------------------------------------ */

struct wr {
    uint8_t *p;
};

static void put_u8(struct wr *w, uint8_t v)
{
    *w->p++ = v;
}

static void put_u32(struct wr *w, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        *w->p++ = (uint8_t)(v >> (8 * k));
}

static void put_u64(struct wr *w, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        *w->p++ = (uint8_t)(v >> (8 * k));
}

static void put_bytes(struct wr *w, const uint8_t *b, size_t n)
{
    if (n > 0)
        memcpy(w->p, b, n);
    w->p += n;
}

struct rd {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static bool need(struct rd *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return false;
    }
    return true;
}

static uint8_t get_u8(struct rd *r)
{
    if (!need(r, 1))
        return 0;
    r->left--;
    return *r->p++;
}

static uint32_t get_u32(struct rd *r)
{
    uint32_t v = 0;
    if (!need(r, 4))
        return 0;
    for (int k = 0; k < 4; k++)
        v |= (uint32_t)r->p[k] << (8 * k);
    r->p += 4;
    r->left -= 4;
    return v;
}

static uint64_t get_u64(struct rd *r)
{
    uint64_t v = 0;
    if (!need(r, 8))
        return 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)r->p[k] << (8 * k);
    r->p += 8;
    r->left -= 8;
    return v;
}

/* ---- configurations ----------------------------------------------------- */

size_t raft_conf_encoded_size(const struct raft_conf *c)
{
    return 8 + 8 * (size_t)(c->n_voters + c->n_learners);
}

static void put_conf(struct wr *w, const struct raft_conf *c)
{
    put_u32(w, c->n_voters);
    put_u32(w, c->n_learners);
    for (uint32_t k = 0; k < c->n_voters; k++)
        put_u64(w, c->voters[k]);
    for (uint32_t k = 0; k < c->n_learners; k++)
        put_u64(w, c->learners[k]);
}

static bool get_conf(struct rd *r, struct raft_conf *c)
{
    memset(c, 0, sizeof(*c));
    uint32_t nv = get_u32(r);
    uint32_t nl = get_u32(r);
    if (r->bad || nv > RAFT_MAX_NODES || nl > RAFT_MAX_NODES ||
        nv + nl > RAFT_MAX_NODES) {
        r->bad = true;
        return false;
    }
    c->n_voters = nv;
    c->n_learners = nl;
    for (uint32_t k = 0; k < nv; k++)
        c->voters[k] = get_u64(r);
    for (uint32_t k = 0; k < nl; k++)
        c->learners[k] = get_u64(r);
    return !r->bad;
}

int raft_conf_encode(const struct raft_conf *c, uint8_t *buf, size_t cap,
                     size_t *len_out)
{
    size_t need_bytes = raft_conf_encoded_size(c);
    if (c->n_voters + c->n_learners > RAFT_MAX_NODES || cap < need_bytes)
        return RAFT_ERR_INVALID;
    struct wr w = {buf};
    put_conf(&w, c);
    *len_out = need_bytes;
    return 0;
}

int raft_conf_decode(const uint8_t *buf, size_t len, struct raft_conf *out,
                     size_t *used_out)
{
    struct rd r = {buf, len, false};
    if (!get_conf(&r, out)) {
        memset(out, 0, sizeof(*out));
        return RAFT_ERR_CORRUPT;
    }
    *used_out = len - r.left;
    return 0;
}

/* ---- entries ------------------------------------------------------------ */

static void put_entry(struct wr *w, const struct raft_entry *e)
{
    put_u64(w, e->term);
    put_u64(w, e->index);
    put_u8(w, e->type);
    put_u32(w, e->len);
    put_bytes(w, e->data, e->len);
}

/* Reads an entry header; data is left pointing into the input. */
static bool get_entry_view(struct rd *r, struct raft_entry *e)
{
    e->term = get_u64(r);
    e->index = get_u64(r);
    e->type = get_u8(r);
    e->len = get_u32(r);
    if (r->bad || e->type > RAFT_ENTRY_CONF || !need(r, e->len))
        return false;
    e->data = e->len > 0 ? (uint8_t *)(uintptr_t)r->p : NULL;
    r->p += e->len;
    r->left -= e->len;
    return true;
}

size_t raft_entry_encoded_size(const struct raft_entry *e)
{
    return 1 + ENTRY_HEADER + (size_t)e->len;
}

int raft_entry_encode(const struct raft_entry *e, uint8_t *buf, size_t cap,
                      size_t *len_out)
{
    size_t n = raft_entry_encoded_size(e);
    if (cap < n || e->type > RAFT_ENTRY_CONF || (e->len > 0 && !e->data))
        return RAFT_ERR_INVALID;
    struct wr w = {buf};
    put_u8(&w, RAFT_CODEC_VERSION);
    put_entry(&w, e);
    *len_out = n;
    return 0;
}

int raft_entry_decode(const uint8_t *buf, size_t len, struct raft_entry *out)
{
    struct rd r = {buf, len, false};
    struct raft_entry e;

    memset(out, 0, sizeof(*out));
    if (get_u8(&r) != RAFT_CODEC_VERSION || !get_entry_view(&r, &e) ||
        r.left != 0)
        return RAFT_ERR_CORRUPT;
    *out = e;
    if (e.len > 0) {
        out->data = malloc(e.len);
        if (out->data == NULL) {
            memset(out, 0, sizeof(*out));
            return RAFT_ERR_NOMEM;
        }
        memcpy(out->data, e.data, e.len);
    }
    return 0;
}

/* ---- messages ----------------------------------------------------------- */

size_t raft_message_encoded_size(const struct raft_message *m)
{
    size_t n = MSG_HEADER;
    for (uint32_t k = 0; k < m->n_entries; k++)
        n += ENTRY_HEADER + m->entries[k].len;
    if (m->type == RAFT_MSG_SNAPSHOT)
        n += 16 + raft_conf_encoded_size(&m->snapshot.meta.conf) + 8 +
             (size_t)m->snapshot.len;
    return n;
}

int raft_message_encode(const struct raft_message *m, uint8_t *buf,
                        size_t cap, size_t *len_out)
{
    size_t n;

    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TYPE_MAX_)
        return RAFT_ERR_INVALID;
    if (m->type == RAFT_MSG_SNAPSHOT &&
        m->snapshot.meta.conf.n_voters + m->snapshot.meta.conf.n_learners >
            RAFT_MAX_NODES)
        return RAFT_ERR_INVALID;
    n = raft_message_encoded_size(m);
    if (cap < n)
        return RAFT_ERR_INVALID;
    struct wr w = {buf};
    put_u8(&w, RAFT_CODEC_VERSION);
    put_u8(&w, m->type);
    put_u8(&w, (uint8_t)((m->reject ? 1 : 0) | (m->transfer ? 2 : 0)));
    put_u8(&w, 0);
    put_u64(&w, m->from);
    put_u64(&w, m->to);
    put_u64(&w, m->term);
    put_u64(&w, m->log_term);
    put_u64(&w, m->index);
    put_u64(&w, m->commit);
    put_u64(&w, m->hint_index);
    put_u64(&w, m->hint_term);
    put_u64(&w, m->ctx);
    put_u32(&w, m->n_entries);
    for (uint32_t k = 0; k < m->n_entries; k++)
        put_entry(&w, &m->entries[k]);
    if (m->type == RAFT_MSG_SNAPSHOT) {
        put_u64(&w, m->snapshot.meta.index);
        put_u64(&w, m->snapshot.meta.term);
        put_conf(&w, &m->snapshot.meta.conf);
        put_u64(&w, m->snapshot.len);
        put_bytes(&w, m->snapshot.data, (size_t)m->snapshot.len);
    }
    *len_out = n;
    return 0;
}

int raft_message_decode(const uint8_t *buf, size_t len,
                        struct raft_message *out)
{
    struct rd r = {buf, len, false};
    struct raft_message m;

    memset(out, 0, sizeof(*out));
    memset(&m, 0, sizeof(m));
    if (get_u8(&r) != RAFT_CODEC_VERSION)
        return RAFT_ERR_CORRUPT;
    m.type = get_u8(&r);
    uint8_t flags = get_u8(&r);
    uint8_t reserved = get_u8(&r);
    if (r.bad || m.type < RAFT_MSG_APPEND || m.type > RAFT_MSG_TYPE_MAX_ ||
        (flags & ~3u) != 0 || reserved != 0)
        return RAFT_ERR_CORRUPT;
    m.reject = flags & 1;
    m.transfer = (flags >> 1) & 1;
    m.from = get_u64(&r);
    m.to = get_u64(&r);
    m.term = get_u64(&r);
    m.log_term = get_u64(&r);
    m.index = get_u64(&r);
    m.commit = get_u64(&r);
    m.hint_index = get_u64(&r);
    m.hint_term = get_u64(&r);
    m.ctx = get_u64(&r);
    m.n_entries = get_u32(&r);
    if (r.bad || m.n_entries > r.left / ENTRY_HEADER)
        return RAFT_ERR_CORRUPT;

    /* Pass 1: validate entry framing and size the single allocation. */
    struct rd scan = r;
    size_t payload = 0;
    for (uint32_t k = 0; k < m.n_entries; k++) {
        struct raft_entry e;
        if (!get_entry_view(&scan, &e))
            return RAFT_ERR_CORRUPT;
        payload += e.len;
    }
    if (m.type == RAFT_MSG_SNAPSHOT) {
        m.snapshot.meta.index = get_u64(&scan);
        m.snapshot.meta.term = get_u64(&scan);
        if (!get_conf(&scan, &m.snapshot.meta.conf))
            return RAFT_ERR_CORRUPT;
        m.snapshot.len = get_u64(&scan);
        if (scan.bad || m.snapshot.len != scan.left)
            return RAFT_ERR_CORRUPT;
    } else if (scan.left != 0) {
        return RAFT_ERR_CORRUPT;
    }

    /* Pass 2: copy. Nothing below can fail except allocation. */
    if (m.n_entries > 0) {
        size_t bytes = m.n_entries * sizeof(struct raft_entry) + payload;
        uint8_t *block = malloc(bytes);
        if (block == NULL)
            return RAFT_ERR_NOMEM;
        m.entries = (struct raft_entry *)(void *)block;
        uint8_t *p = block + m.n_entries * sizeof(struct raft_entry);
        for (uint32_t k = 0; k < m.n_entries; k++) {
            struct raft_entry e;
            (void)get_entry_view(&r, &e);
            m.entries[k] = e;
            if (e.len > 0) {
                memcpy(p, e.data, e.len);
                m.entries[k].data = p;
                p += e.len;
            }
        }
    }
    if (m.type == RAFT_MSG_SNAPSHOT && m.snapshot.len > 0) {
        m.snapshot.data = malloc((size_t)m.snapshot.len);
        if (m.snapshot.data == NULL) {
            free(m.entries);
            return RAFT_ERR_NOMEM;
        }
        memcpy(m.snapshot.data, scan.p, (size_t)m.snapshot.len);
    }
    *out = m;
    return 0;
}

/* ---- small fixed records ------------------------------------------------ */

int raft_hard_state_encode(const struct raft_hard_state *hs,
                           uint8_t buf[RAFT_HARD_STATE_SIZE])
{
    struct wr w = {buf};
    put_u8(&w, RAFT_CODEC_VERSION);
    put_u64(&w, hs->term);
    put_u64(&w, hs->vote);
    put_u64(&w, hs->commit);
    return 0;
}

int raft_hard_state_decode(const uint8_t *buf, size_t len,
                           struct raft_hard_state *out)
{
    struct rd r = {buf, len, false};
    memset(out, 0, sizeof(*out));
    if (len != RAFT_HARD_STATE_SIZE || get_u8(&r) != RAFT_CODEC_VERSION)
        return RAFT_ERR_CORRUPT;
    out->term = get_u64(&r);
    out->vote = get_u64(&r);
    out->commit = get_u64(&r);
    return 0;
}

size_t raft_conf_entry_size(const struct raft_conf *after)
{
    return 10 + raft_conf_encoded_size(after);
}

int raft_conf_entry_encode(const struct raft_conf_change *cc,
                           const struct raft_conf *after, uint8_t *buf,
                           size_t cap, size_t *len_out)
{
    size_t n = raft_conf_entry_size(after);
    if (cc->type < RAFT_CC_ADD_LEARNER || cc->type > RAFT_CC_REMOVE ||
        after->n_voters + after->n_learners > RAFT_MAX_NODES || cap < n)
        return RAFT_ERR_INVALID;
    struct wr w = {buf};
    put_u8(&w, RAFT_CODEC_VERSION);
    put_u8(&w, cc->type);
    put_u64(&w, cc->node);
    put_conf(&w, after);
    *len_out = n;
    return 0;
}

static bool conf_sane(const struct raft_conf *c)
{
    const raft_id *ids[2] = {c->voters, c->learners};
    uint32_t cnt[2] = {c->n_voters, c->n_learners};
    if (c->n_voters == 0)
        return false;
    for (int a = 0; a < 2; a++) {
        for (uint32_t i = 0; i < cnt[a]; i++) {
            if (ids[a][i] == RAFT_NONE)
                return false;
            for (int b = 0; b < 2; b++)
                for (uint32_t j = 0; j < cnt[b]; j++)
                    if ((a != b || i != j) && ids[a][i] == ids[b][j])
                        return false;
        }
    }
    return true;
}

int raft_conf_entry_decode(const uint8_t *buf, size_t len,
                           struct raft_conf_change *cc,
                           struct raft_conf *after)
{
    struct rd r = {buf, len, false};
    memset(cc, 0, sizeof(*cc));
    memset(after, 0, sizeof(*after));
    if (buf == NULL || get_u8(&r) != RAFT_CODEC_VERSION)
        return RAFT_ERR_CORRUPT;
    cc->type = get_u8(&r);
    cc->node = get_u64(&r);
    if (r.bad || cc->type < RAFT_CC_ADD_LEARNER ||
        cc->type > RAFT_CC_REMOVE || !get_conf(&r, after) || r.left != 0 ||
        !conf_sane(after)) {
        memset(cc, 0, sizeof(*cc));
        memset(after, 0, sizeof(*after));
        return RAFT_ERR_CORRUPT;
    }
    return 0;
}
