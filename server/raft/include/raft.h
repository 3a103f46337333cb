/*
 * raft.h — the public contract of orderkv's Raft consensus core.
 *
 * The core is a pure, deterministic state machine in the style of etcd's raft:
 * no I/O, no threads, no clock, no global state. Time is abstract ticks, the
 * only randomness is a PRNG seeded from raft_config.seed, memory is owned
 * either by the core (everything reachable from a raft_ready) or by the
 * caller (everything the caller passes in, which the core copies).
 *
 * The host drives a node like this (see docs/raft.md for the full contract):
 *
 *     raft_tick(n) every tick; raft_step(n, msg) for each received message;
 *     raft_propose / raft_read_index / raft_propose_conf_change /
 *     raft_transfer_leader for client work; then
 *
 *     if (raft_has_ready(n)) {
 *         struct raft_ready rd;
 *         raft_ready(n, &rd);
 *         send(rd.msgs);                      may overlap the write below
 *         persist(rd.snapshot, rd.entries, rd.hs);   durably, in that order
 *         send(rd.msgs_after_persist);        only after the write is synced
 *         apply(rd.snapshot, rd.committed);   then answer rd.read_states once
 *                                             applied >= read_state.index
 *         raft_advance(n);
 *     }
 *
 * Between raft_ready() and raft_advance() every other call on that node
 * returns RAFT_ERR_BUSY: the Ready's pointers stay valid exactly that long.
 *
 * Membership changes are single-server changes (Raft dissertation §4.1): a
 * configuration takes effect on every node as soon as its entry is appended
 * to that node's log, a leader accepts a change only after it has committed
 * an entry of its own term (the fix for the single-server change bug posted
 * by Ongaro, 2015) and only when no earlier change is uncommitted. New nodes
 * join as learners and are promoted to voters once they have caught up.
 */
#ifndef ORDERKV_RAFT_H
#define ORDERKV_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Node identifier inside one group. 0 (RAFT_NONE) means "nobody". */
typedef uint64_t raft_id;
#define RAFT_NONE ((raft_id)0)

/* Upper bound on voters + learners of one group; keeps per-group state fixed
 * size (a 16-replica partition is far beyond anything orderkv deploys). */
#define RAFT_MAX_NODES 16

/* Status codes. 0 is success; everything else is negative. Callers are
 * expected to handle NOT_LEADER (retry at raft_status().leader),
 * TRANSFERRING (retry shortly, leadership is moving), TOO_LARGE (never
 * retry), CONF_PENDING / NOT_CAUGHT_UP (retry the change later). */
enum raft_status_code {
    RAFT_OK = 0,
    RAFT_ERR_NOT_LEADER = -1,     /* proposal/read/transfer needs the leader */
    RAFT_ERR_TRANSFERRING = -2,   /* leadership transfer in progress */
    RAFT_ERR_TOO_LARGE = -3,      /* proposal exceeds max_entry_bytes */
    RAFT_ERR_CONF_PENDING = -4,   /* another change uncommitted, or no entry
                                     of the leader's term committed yet */
    RAFT_ERR_NOT_CAUGHT_UP = -5,  /* learner too far behind to be promoted */
    RAFT_ERR_INVALID = -6,        /* bad argument or impossible change */
    RAFT_ERR_COMPACTED = -7,      /* storage: index below the first entry */
    RAFT_ERR_UNAVAILABLE = -8,    /* storage: index above the last entry */
    RAFT_ERR_SNAPSHOT_TEMP = -9,  /* storage: snapshot not ready, retry */
    RAFT_ERR_NOMEM = -10,         /* allocation failed */
    RAFT_ERR_BUSY = -11,          /* a Ready is outstanding: call advance */
    RAFT_ERR_CORRUPT = -12,       /* codec: malformed or truncated input */
    RAFT_ERR_STORAGE = -13,       /* storage callback failed */
    RAFT_ERR_DROPPED = -14        /* no leader known to forward to */
};

/* Returns a static string naming the code; never NULL. */
const char *raft_strerror(int rc);

/* ---- log entries ------------------------------------------------------ */

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0, /* opaque application command (may be empty) */
    RAFT_ENTRY_CONF = 1    /* a membership change and the configuration
                              it produces (raft_conf_entry_encode) */
};

struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type;  /* enum raft_entry_type */
    uint32_t len;
    uint8_t *data; /* len bytes; NULL when len == 0 */
};

/* ---- membership ------------------------------------------------------- */

struct raft_conf {
    uint32_t n_voters;
    uint32_t n_learners;
    raft_id voters[RAFT_MAX_NODES];
    raft_id learners[RAFT_MAX_NODES];
};

enum raft_conf_change_type {
    RAFT_CC_ADD_LEARNER = 1, /* add a non-voting member that receives the log */
    RAFT_CC_PROMOTE = 2,     /* learner -> voter; leader checks it caught up */
    RAFT_CC_REMOVE = 3       /* remove a voter or a learner */
};

struct raft_conf_change {
    uint8_t type; /* enum raft_conf_change_type */
    raft_id node;
};

bool raft_conf_is_voter(const struct raft_conf *c, raft_id id);
bool raft_conf_is_learner(const struct raft_conf *c, raft_id id);

/* Applies cc to *c. Returns RAFT_ERR_INVALID (leaving *c untouched) when the
 * change makes no sense: adding an existing member, promoting a non-learner,
 * removing a non-member, removing the last voter, or overflowing
 * RAFT_MAX_NODES. (The leader uses it to compute the configuration a CONF
 * entry carries; the application tracks the configuration as of its applied
 * index — which it must put into its snapshots — by decoding applied CONF
 * entries with raft_conf_entry_decode, see raft_codec.h.) */
int raft_conf_apply(struct raft_conf *c, const struct raft_conf_change *cc);

/* ---- snapshots -------------------------------------------------------- */

struct raft_snapshot_meta {
    uint64_t index; /* last entry the snapshot covers */
    uint64_t term;  /* term of that entry */
    struct raft_conf conf; /* configuration in effect at index */
};

struct raft_snapshot {
    struct raft_snapshot_meta meta;
    uint64_t len;
    uint8_t *data; /* opaque to the core */
};

/* ---- persistent state ------------------------------------------------- */

struct raft_hard_state {
    uint64_t term;
    raft_id vote;
    uint64_t commit;
};

/*
 * Stable storage, read-only from the core's point of view. The host writes
 * it while handling a Ready (entries, hard state, snapshot) and may compact
 * it at any time outside raft calls (after taking a snapshot at or below the
 * applied index). The core only reads through these callbacks.
 *
 * Memory: `entries` returns an array allocated with malloc() whose entries'
 * data were each allocated with malloc() (or are NULL); the core takes
 * ownership and releases them with free(). `snapshot` likewise returns data
 * allocated with malloc() that the core frees.
 */
struct raft_storage_ops {
    /* Hard state and the configuration as of first_index - 1 (the point the
     * log was compacted to; the core replays CONF entries after it). For a
     * brand-new group the configuration lists the initial voters; a node
     * joining an existing group starts with an empty configuration. */
    int (*initial_state)(void *ctx, struct raft_hard_state *hs,
                         struct raft_conf *conf);
    /* Entries [lo, hi) but at most max_bytes of payload (always at least
     * one entry). RAFT_ERR_COMPACTED if lo < first_index,
     * RAFT_ERR_UNAVAILABLE if hi > last_index + 1. */
    int (*entries)(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                   struct raft_entry **out, size_t *n_out);
    /* Term of entry i for i in [first_index - 1, last_index] (first - 1 is
     * the snapshot's index and term). */
    int (*term)(void *ctx, uint64_t i, uint64_t *term_out);
    int (*first_index)(void *ctx, uint64_t *out);
    int (*last_index)(void *ctx, uint64_t *out);
    /* The most recent snapshot (data allocated with malloc()). */
    int (*snapshot)(void *ctx, struct raft_snapshot *out);
};

/* ---- messages --------------------------------------------------------- */

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,      /* AppendEntries RPC (Figure 2) */
    RAFT_MSG_APPEND_RESP,     /* also answers RAFT_MSG_SNAPSHOT */
    RAFT_MSG_VOTE,            /* RequestVote RPC */
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_PREVOTE,         /* §9.6 pre-vote: "would you vote for me?" */
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_HEARTBEAT,       /* empty append carrying commit and read seq */
    RAFT_MSG_HEARTBEAT_RESP,
    RAFT_MSG_SNAPSHOT,        /* InstallSnapshot RPC (whole snapshot) */
    RAFT_MSG_TIMEOUT_NOW,     /* leadership transfer: campaign right now */
    RAFT_MSG_READ_INDEX,      /* follower asks the leader for a read index */
    RAFT_MSG_READ_INDEX_RESP,
    RAFT_MSG_TYPE_MAX_ = RAFT_MSG_READ_INDEX_RESP
};

struct raft_message {
    uint8_t type;    /* enum raft_msg_type */
    uint8_t reject;  /* responses: request refused */
    uint8_t transfer;/* VOTE: campaign caused by a leadership transfer */
    raft_id from;
    raft_id to;
    uint64_t term;
    uint64_t log_term;   /* APPEND: term of prev entry; VOTE: last log term */
    uint64_t index;      /* APPEND: prev index; VOTE: last index;
                            APPEND_RESP: last matching index or rejected
                            prev index; READ_INDEX_RESP: the read index */
    uint64_t commit;     /* APPEND/HEARTBEAT: leader commit */
    uint64_t hint_index; /* APPEND_RESP reject: first index of hint_term */
    uint64_t hint_term;  /* APPEND_RESP reject: conflicting term (0: log
                            too short, hint_index = follower last + 1) */
    uint64_t ctx;        /* HEARTBEAT(_RESP): read sequence;
                            READ_INDEX(_RESP): caller's request context */
    uint32_t n_entries;
    struct raft_entry *entries;
    struct raft_snapshot snapshot; /* SNAPSHOT only */
};

/* Frees what a decoded or copied message owns (entries, snapshot data) and
 * zeroes those fields. Never call it on messages borrowed from a Ready. */
void raft_message_release(struct raft_message *m);

/* ---- node ------------------------------------------------------------- */

enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3
};

enum raft_log_level { RAFT_LOG_DEBUG = 0, RAFT_LOG_INFO = 1, RAFT_LOG_WARN = 2 };

/* Planted bugs (only with -DORDERKV_RAFT_PLANTED_BUGS=ON; otherwise the
 * field is ignored and no such code exists). For the simulator self-test. */
enum raft_planted_bug {
    RAFT_BUG_VOTE_TWICE = 1u << 0,     /* grant a second vote in one term */
    RAFT_BUG_OLD_TERM_COMMIT = 1u << 1,/* commit by counting old-term entries */
    RAFT_BUG_NO_PERSIST_VOTE = 1u << 2,/* hard state omits the vote */
    RAFT_BUG_NO_LOG_CHECK = 1u << 3,   /* vote without the up-to-date check */
    RAFT_BUG_STALE_READ = 1u << 4,     /* read index without quorum check */
    RAFT_BUG_KEEP_CONFLICT = 1u << 5   /* append without truncating conflicts */
};

struct raft_config {
    raft_id id;
    int election_tick;   /* election timeout, in ticks (randomized in
                            [election_tick, 2 * election_tick)) */
    int heartbeat_tick;  /* leader heartbeat interval; < election_tick */
    uint64_t seed;       /* seeds the PRNG used for election timeouts */
    bool pre_vote;       /* §9.6 pre-vote phase before real elections */
    bool check_quorum;   /* leader steps down without a quorum's contact;
                            followers ignore votes while a leader is live */
    bool boot_quiet;     /* with check_quorum: a node restarted with a term
                            > 0 ignores (pre-)votes not caused by a transfer
                            for its first election_tick ticks, as if it had
                            just heard from a leader. A leader may hold a
                            lease it confirmed through this node before the
                            restart; leases need this (off by default) */
    uint64_t max_msg_bytes;    /* payload bytes per append (>= 1 entry) */
    uint32_t max_inflight;     /* append messages in flight per follower */
    uint32_t max_entry_bytes;  /* larger proposals get RAFT_ERR_TOO_LARGE */
    uint64_t max_apply_bytes;  /* committed payload per Ready */
    uint64_t applied;          /* restart: index already applied (0 means
                                  the snapshot index) */
    const struct raft_storage_ops *storage;
    void *storage_ctx;
    /* Optional logger. msg is formatted by the core; only called for
     * level >= log_level. */
    void (*log_fn)(void *ctx, int level, const char *msg);
    void *log_ctx;
    int log_level;
    unsigned planted_bugs; /* enum raft_planted_bug mask */
};

/* Fills *cfg with defaults: election 10, heartbeat 1, pre_vote and
 * check_quorum on, 1 MiB messages, 256 in flight, 8 MiB entries. */
void raft_config_init(struct raft_config *cfg);

struct raft_node;

/* Creates a node from what storage holds. *out is owned by the caller and
 * released with raft_free. Errors: INVALID (bad config), NOMEM, STORAGE. */
int raft_new(const struct raft_config *cfg, struct raft_node **out);
void raft_free(struct raft_node *n); /* accepts NULL */

/* Advances logical time by one tick: election timeout for followers and
 * candidates, heartbeats and check-quorum for leaders. */
int raft_tick(struct raft_node *n);

/* Feeds one message received from a peer. The message is borrowed; the core
 * copies what it keeps. Messages for other nodes or with unknown types are
 * ignored (returns RAFT_ERR_INVALID); stale messages are ignored silently. */
int raft_step(struct raft_node *n, const struct raft_message *m);

/* Appends a normal entry carrying a copy of data (leader only). On success
 * *index_out (if not NULL) gets the entry's index and *term_out its term; it
 * is committed only if an entry with that index and term is later applied.
 * NOT_LEADER, TRANSFERRING, TOO_LARGE. */
int raft_propose(struct raft_node *n, const void *data, uint32_t len,
                 uint64_t *index_out, uint64_t *term_out);
/* As raft_propose, but takes data (malloc'ed) instead of copying it: on
 * success the node owns it; on an error the caller still does. */
int raft_propose_owned(struct raft_node *r, void *data, uint32_t len, uint64_t *index_out,
                       uint64_t *term_out);

/* Proposes a single-server membership change (leader only). Refused with
 * CONF_PENDING while an earlier change is uncommitted or before the leader
 * committed an entry of its own term; NOT_CAUGHT_UP when promoting a learner
 * whose match index is below the leader's commit index; INVALID when the
 * change does not apply to the current configuration. */
int raft_propose_conf_change(struct raft_node *n,
                             const struct raft_conf_change *cc,
                             uint64_t *index_out);

/* Requests a linearizable read point (§6.4 ReadIndex). When the leader has
 * confirmed it is still leader, a raft_read_state {index, ctx} appears in a
 * Ready (on this node, also when it is a follower: the request is forwarded
 * to the leader). Serve the read once applied >= index. DROPPED when no
 * leader is known; requests may also be lost silently on leader change, so
 * callers time out and retry. */
int raft_read_index(struct raft_node *n, uint64_t ctx);

/* Leadership transfer (§3.10): catch `to` up, then tell it to campaign
 * immediately. Proposals are refused with TRANSFERRING until it completes or
 * an election timeout passes. */
int raft_transfer_leader(struct raft_node *n, raft_id to);

/* Starts an election now (skips pre-vote). For bootstrapping and tests. */
int raft_campaign(struct raft_node *n);

/* Starts an election now, through the pre-vote phase when the node is
 * configured with one (§9.6): a node whose log is behind, or whose peers
 * still hear a leader, asks and gives up without raising its term, so it
 * disrupts nobody. For a host that wants a preferred node to lead early
 * (orderkv's first boot) without risking a running leader. */
int raft_campaign_prevote(struct raft_node *n);

/* ---- output ----------------------------------------------------------- */

struct raft_read_state {
    uint64_t index;
    uint64_t ctx;
};

struct raft_ready {
    bool hs_changed;
    struct raft_hard_state hs;                /* persist when hs_changed */
    const struct raft_snapshot *snapshot;     /* install first, or NULL */
    const struct raft_entry *entries;         /* persist; storage drops any
                                                 entry >= entries[0].index */
    size_t n_entries;
    const struct raft_message *msgs;          /* send any time */
    size_t n_msgs;
    const struct raft_message *msgs_after_persist; /* send after the sync */
    size_t n_msgs_after_persist;
    const struct raft_entry *committed;       /* apply in order */
    size_t n_committed;
    const struct raft_read_state *read_states;
    size_t n_read_states;
};

bool raft_has_ready(const struct raft_node *n);
/* Fills *rd with borrowed pointers valid until raft_advance. */
int raft_ready(struct raft_node *n, struct raft_ready *rd);
/* Tells the core the last Ready was persisted, sent and applied. */
void raft_advance(struct raft_node *n);

/* ---- introspection ---------------------------------------------------- */

struct raft_status {
    raft_id id;
    enum raft_role role;
    uint64_t term;
    raft_id vote;
    raft_id leader;
    uint64_t commit;
    uint64_t applied;
    uint64_t last_index;
    uint64_t first_index;   /* first index still in the core's log view */
    raft_id transferee;     /* leadership transfer target or RAFT_NONE */
    struct raft_conf conf;  /* latest configuration in the log */
    uint64_t conf_index;    /* index of its entry (0: from snapshot/boot) */
};

void raft_status(const struct raft_node *n, struct raft_status *st);

/* On a leader: the highest index known to be replicated on member `id`
 * (its match). RAFT_ERR_NOT_LEADER on a non-leader, RAFT_ERR_INVALID for
 * a node that is not a member. Lets the host see whether a transfer
 * target has caught up before asking for a transfer. */
int raft_peer_match(const struct raft_node *n, raft_id id, uint64_t *match);

/* Term of entry i as this node's log sees it (including unpersisted
 * entries). RAFT_ERR_COMPACTED / RAFT_ERR_UNAVAILABLE outside the log. */
int raft_term_at(const struct raft_node *n, uint64_t i, uint64_t *term);

#ifdef __cplusplus
}
#endif
#endif /* ORDERKV_RAFT_H */
