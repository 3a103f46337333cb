/*
 * test_raft_election.c — leader election: Figure 2 (RequestVote, rules for
 * followers and candidates, "All Servers"), §5.2, §5.4.1, pre-vote and
 * check-quorum (dissertation §9.6). Rules are named as in election.h.
 */
#include "raft_fixture.h"

static void tick_n(struct fx_node *f, int n)
{
    for (int k = 0; k < n; k++)
        assert_int_equal(raft_tick(f->r), 0);
}

/* E1: a follower that hears nothing converts to candidate. */
static void test_raft__follower_starts_election_after_timeout(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    tick_n(&f, 2 * f.cfg.election_tick);
    fx_flush(&f);
    struct raft_status st = fx_status(&f);
    assert_int_equal(st.role, RAFT_CANDIDATE);
    assert_int_equal(st.term, 1);
    assert_int_equal(st.vote, 1);
    /* E2: RequestVote to every other voter, after term+vote are durable. */
    struct raft_message *v2 = fx_find(&f, RAFT_MSG_VOTE, 2);
    struct raft_message *v3 = fx_find(&f, RAFT_MSG_VOTE, 3);
    assert_non_null(v2);
    assert_non_null(v3);
    assert_true(f.out_after[v2 - f.out]);
    assert_int_equal(v2->term, 1);
    assert_int_equal(f.ms.hs.term, 1);
    assert_int_equal(f.ms.hs.vote, 1);
    fx_free(&f);
}

/* §5.2: timeouts are randomized in [T, 2T) so split votes are rare. */
static void test_raft__election_timeout_is_randomized(void **state)
{
    int seen[64] = {0};
    int distinct = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct fx_node f;
        fx_init(&f, 1, 3);
        raft_free(f.r);
        f.cfg.seed = seed;
        fx_start(&f);
        int t = 0;
        while (fx_status(&f).role == RAFT_FOLLOWER) {
            assert_int_equal(raft_tick(f.r), 0);
            t++;
            assert_true(t < 2 * f.cfg.election_tick);
        }
        assert_true(t >= f.cfg.election_tick);
        if (!seen[t]++)
            distinct++;
        fx_free(&f);
    }
    assert_true(distinct >= 4);
}

/* E2: a majority of votes makes a leader, which appends an entry of its
 * term at once. */
static void test_raft__candidate_wins_with_majority(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 5);
    assert_int_equal(raft_campaign(f.r), 0);
    fx_flush(&f);
    struct raft_message g = fx_msg(RAFT_MSG_VOTE_RESP, 2, 1, 1);
    raft_step(f.r, &g);
    assert_int_equal(fx_status(&f).role, RAFT_CANDIDATE);
    g.from = 2; /* a duplicate vote counts once */
    raft_step(f.r, &g);
    assert_int_equal(fx_status(&f).role, RAFT_CANDIDATE);
    g.from = 3;
    raft_step(f.r, &g);
    struct raft_status st = fx_status(&f);
    assert_int_equal(st.role, RAFT_LEADER);
    assert_int_equal(st.leader, 1);
    uint64_t t;
    assert_int_equal(raft_term_at(f.r, st.last_index, &t), 0);
    assert_int_equal(t, 1);
    fx_free(&f);
}

/* §9.6: a campaign through pre-vote raises no term until a majority
 * would vote; a refused pre-vote leaves the term as it was. */
static void test_raft__prevote_campaign_raises_no_term_when_refused(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    raft_free(f.r);
    f.cfg.pre_vote = true;
    fx_start(&f);
    assert_int_equal(raft_campaign_prevote(f.r), 0);
    fx_flush(&f);
    struct raft_status st = fx_status(&f);
    assert_int_equal(st.role, RAFT_PRE_CANDIDATE);
    assert_int_equal(st.term, 0);
    struct raft_message *p2 = fx_find(&f, RAFT_MSG_PREVOTE, 2);
    assert_non_null(p2);
    assert_int_equal(p2->term, 1);
    struct raft_message no = fx_msg(RAFT_MSG_PREVOTE_RESP, 2, 1, 0);
    no.reject = 1;
    raft_step(f.r, &no);
    no.from = 3;
    raft_step(f.r, &no);
    st = fx_status(&f);
    assert_int_equal(st.term, 0);
    assert_true(st.role != RAFT_LEADER && st.role != RAFT_CANDIDATE);
    /* Granted by a majority: a real election in term 1. */
    assert_int_equal(raft_campaign_prevote(f.r), 0);
    fx_flush(&f);
    struct raft_message yes = fx_msg(RAFT_MSG_PREVOTE_RESP, 2, 1, 1);
    raft_step(f.r, &yes);
    fx_flush(&f);
    st = fx_status(&f);
    assert_int_equal(st.role, RAFT_CANDIDATE);
    assert_int_equal(st.term, 1);
    fx_free(&f);
}

/* Leaders: "upon election: send initial empty AppendEntries to each
 * server" (here the append carrying the new term's first entry). */
static void test_raft__new_leader_contacts_every_peer(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    raft_campaign(f.r);
    fx_flush(&f);
    fx_clear(&f);
    struct raft_message g = fx_msg(RAFT_MSG_VOTE_RESP, 3, 1, 1);
    raft_step(f.r, &g);
    fx_flush(&f);
    for (raft_id p = 2; p <= 3; p++) {
        struct raft_message *a = fx_find(&f, RAFT_MSG_APPEND, p);
        assert_non_null(a);
        assert_int_equal(a->term, 1);
        assert_false(f.out_after[a - f.out]); /* need not wait for fsync */
    }
    fx_free(&f);
}

/* Candidates: "if election timeout elapses: start new election". */
static void test_raft__candidate_restarts_election_on_timeout(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    raft_campaign(f.r);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).term, 1);
    tick_n(&f, 2 * f.cfg.election_tick);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).role, RAFT_CANDIDATE);
    assert_int_equal(fx_status(&f).term, 2);
    assert_non_null(fx_find_nth(&f, RAFT_MSG_VOTE, 2, 1));
    fx_free(&f);
}

/* Followers: AppendEntries/heartbeats from the current leader reset the
 * election timer, so a follower of a live leader never campaigns. */
static void test_raft__heartbeats_prevent_election(void **state)
{
    struct fx_node f;
    fx_init(&f, 2, 3);
    for (int t = 0; t < 10 * f.cfg.election_tick; t++) {
        struct raft_message hb = fx_msg(RAFT_MSG_HEARTBEAT, 1, 2, 1);
        raft_step(f.r, &hb);
        tick_n(&f, 1);
    }
    fx_flush(&f);
    assert_int_equal(fx_status(&f).role, RAFT_FOLLOWER);
    assert_int_equal(fx_status(&f).term, 1);
    assert_int_equal(fx_count(&f, RAFT_MSG_VOTE), 0);
    fx_free(&f);
}

static void test_raft__candidate_loses_on_majority_reject(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 5);
    raft_campaign(f.r);
    fx_flush(&f);
    for (raft_id v = 2; v <= 4; v++) {
        struct raft_message g = fx_msg(RAFT_MSG_VOTE_RESP, v, 1, 1);
        g.reject = 1;
        raft_step(f.r, &g);
    }
    assert_int_equal(fx_status(&f).role, RAFT_FOLLOWER);
    assert_int_equal(fx_status(&f).term, 1);
    fx_free(&f);
}

/* E2: AppendEntries from a leader of the same term: become follower. */
static void test_raft__candidate_steps_down_on_append_same_term(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    raft_campaign(f.r);
    fx_flush(&f);
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 2, 1, 1);
    raft_step(f.r, &a);
    struct raft_status st = fx_status(&f);
    assert_int_equal(st.role, RAFT_FOLLOWER);
    assert_int_equal(st.leader, 2);
    assert_int_equal(st.term, 1);
    fx_free(&f);
}

/* E3: "Reply false if term < currentTerm". */
static void test_raft__vote_rejected_for_stale_term(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    struct raft_message up = fx_msg(RAFT_MSG_HEARTBEAT, 2, 1, 5);
    raft_step(f.r, &up);
    fx_flush(&f);
    fx_clear(&f);
    struct raft_message v = fx_msg(RAFT_MSG_VOTE, 3, 1, 4);
    raft_step(f.r, &v);
    fx_flush(&f);
    assert_null(fx_find(&f, RAFT_MSG_VOTE_RESP, 3)); /* ignored as stale */
    assert_int_equal(fx_status(&f).term, 5);
    assert_int_equal(fx_status(&f).vote, RAFT_NONE);
    fx_free(&f);
}

/* E3: at most one vote per term; repeating the same grant is fine. */
static void test_raft__vote_granted_once_per_term(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    struct raft_message v = fx_msg(RAFT_MSG_VOTE, 2, 1, 1);
    raft_step(f.r, &v);
    v.from = 3;
    raft_step(f.r, &v);
    v.from = 2;
    raft_step(f.r, &v);
    fx_flush(&f);
    assert_int_equal(fx_find(&f, RAFT_MSG_VOTE_RESP, 2)->reject, 0);
    assert_int_equal(fx_find(&f, RAFT_MSG_VOTE_RESP, 3)->reject, 1);
    assert_int_equal(fx_find_nth(&f, RAFT_MSG_VOTE_RESP, 2, 1)->reject, 0);
    assert_int_equal(fx_status(&f).vote, 2);
    fx_free(&f);
}

/* §5.4.1: grant only to candidates whose log is at least as up-to-date:
 * higher last term wins; equal last terms compare length. */
static void test_raft__vote_requires_up_to_date_log(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    struct raft_entry e[3] = {fx_entry(1, 1), fx_entry(2, 2), fx_entry(3, 2)};
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 2, 1, 2);
    a.entries = e;
    a.n_entries = 3;
    raft_step(f.r, &a);
    fx_flush(&f);
    fx_clear(&f);

    struct { uint64_t term, li, lt; int granted; } cases[] = {
        {3, 5, 1, 0}, /* longer but older last term */
        {4, 2, 2, 0}, /* same last term, shorter */
        {5, 3, 2, 1}, /* same last term, same length */
        {6, 1, 3, 1}, /* newer last term, shorter */
    };
    for (size_t k = 0; k < 4; k++) {
        struct raft_message v = fx_msg(RAFT_MSG_VOTE, 3, 1, cases[k].term);
        v.index = cases[k].li;
        v.log_term = cases[k].lt;
        raft_step(f.r, &v);
        fx_flush(&f);
        struct raft_message *r = fx_find(&f, RAFT_MSG_VOTE_RESP, 3);
        assert_non_null(r);
        assert_int_equal(r->reject == 0, cases[k].granted);
        fx_clear(&f);
    }
    fx_free(&f);
}

/* All Servers: a higher term in any message converts to follower. */
static void test_raft__higher_term_converts_to_follower(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    fx_make_leader(&f, 3);
    struct raft_message r = fx_msg(RAFT_MSG_HEARTBEAT_RESP, 2, 1, 7);
    raft_step(f.r, &r);
    struct raft_status st = fx_status(&f);
    assert_int_equal(st.role, RAFT_FOLLOWER);
    assert_int_equal(st.term, 7);
    assert_int_equal(st.vote, RAFT_NONE);
    assert_int_equal(st.leader, RAFT_NONE);
    fx_free(&f);
}

/* The grant is only sent once the vote is durable (after persist). */
static void test_raft__vote_persisted_before_response(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    struct raft_message v = fx_msg(RAFT_MSG_VOTE, 2, 1, 3);
    raft_step(f.r, &v);
    struct raft_ready rd;
    assert_int_equal(raft_ready(f.r, &rd), 0);
    assert_int_equal(rd.n_msgs, 0);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_true(rd.hs_changed);
    assert_int_equal(rd.hs.term, 3);
    assert_int_equal(rd.hs.vote, 2);
    raft_advance(f.r);
    fx_free(&f);
}

/* A vote survives a crash: the restarted node refuses a second candidate. */
static void test_raft__vote_survives_restart(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    struct raft_message v = fx_msg(RAFT_MSG_VOTE, 2, 1, 3);
    raft_step(f.r, &v);
    fx_flush(&f);
    fx_clear(&f);
    fx_restart(&f);
    assert_int_equal(fx_status(&f).vote, 2);
    v.from = 3;
    raft_step(f.r, &v);
    fx_flush(&f);
    assert_int_equal(fx_find(&f, RAFT_MSG_VOTE_RESP, 3)->reject, 1);
    fx_free(&f);
}

/* E4: a pre-vote campaign changes neither term nor vote on either side. */
static void test_raft__prevote_does_not_change_term(void **state)
{
    struct fx_node f, g;
    fx_init(&f, 1, 3);
    fx_init(&g, 2, 3);
    raft_free(f.r);
    f.cfg.pre_vote = true;
    fx_start(&f);
    tick_n(&f, 2 * f.cfg.election_tick);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).role, RAFT_PRE_CANDIDATE);
    assert_int_equal(fx_status(&f).term, 0);
    struct raft_message *pv = fx_find(&f, RAFT_MSG_PREVOTE, 2);
    assert_non_null(pv);
    assert_int_equal(pv->term, 1);
    raft_step(g.r, pv);
    fx_flush(&g);
    assert_int_equal(fx_status(&g).term, 0);
    assert_int_equal(fx_status(&g).vote, RAFT_NONE);
    struct raft_message *resp = fx_find(&g, RAFT_MSG_PREVOTE_RESP, 1);
    assert_non_null(resp);
    assert_int_equal(resp->reject, 0);
    assert_int_equal(resp->term, 1);
    fx_free(&f);
    fx_free(&g);
}

/* E4: a quorum of pre-votes starts the real election. */
static void test_raft__prevote_quorum_starts_real_election(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    raft_free(f.r);
    f.cfg.pre_vote = true;
    fx_start(&f);
    tick_n(&f, 2 * f.cfg.election_tick);
    fx_flush(&f);
    fx_clear(&f);
    struct raft_message g = fx_msg(RAFT_MSG_PREVOTE_RESP, 2, 1, 1);
    raft_step(f.r, &g);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).role, RAFT_CANDIDATE);
    assert_int_equal(fx_status(&f).term, 1);
    assert_non_null(fx_find(&f, RAFT_MSG_VOTE, 2));
    fx_free(&f);
}

static void test_raft__prevote_rejected_with_stale_log(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    struct raft_entry e[2] = {fx_entry(1, 2), fx_entry(2, 2)};
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 2, 1, 2);
    a.entries = e;
    a.n_entries = 2;
    raft_step(f.r, &a);
    fx_flush(&f);
    fx_clear(&f);
    struct raft_message pv = fx_msg(RAFT_MSG_PREVOTE, 3, 1, 3);
    pv.index = 1;
    pv.log_term = 1;
    raft_step(f.r, &pv);
    fx_flush(&f);
    assert_int_equal(fx_find(&f, RAFT_MSG_PREVOTE_RESP, 3)->reject, 1);
    assert_int_equal(fx_status(&f).term, 2);
    fx_free(&f);
}

/* Pre-vote + stickiness: a node cut off for a long time rejoins without
 * deposing the leader (its term never grew). */
static void test_raft__partitioned_node_does_not_disrupt(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 3);
    fx_cluster_elect(&c, 1);
    uint64_t term = fx_cstatus(&c, 1).term;
    sim_isolate(&c, 3);
    fx_cluster_tick(&c, 100);
    assert_int_equal(fx_cstatus(&c, 3).term, term);
    sim_heal(&c);
    fx_cluster_tick(&c, 5);
    assert_int_equal(sim_leader(&c), 1);
    assert_int_equal(fx_cstatus(&c, 1).term, term);
    fx_cluster_free(&c);
}

/* E6: a leader that hears no quorum for an election timeout steps down. */
static void test_raft__check_quorum_leader_steps_down(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    raft_free(f.r);
    f.cfg.check_quorum = true;
    fx_start(&f);
    fx_make_leader(&f, 3);
    tick_n(&f, f.cfg.election_tick); /* first round counts activity */
    tick_n(&f, f.cfg.election_tick);
    assert_int_equal(fx_status(&f).role, RAFT_FOLLOWER);
    fx_free(&f);
}

static void test_raft__check_quorum_keeps_leader_with_quorum(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 3);
    fx_cluster_elect(&c, 1);
    sim_isolate(&c, 3);
    fx_cluster_tick(&c, 50);
    assert_int_equal(sim_leader(&c), 1);
    fx_cluster_free(&c);
}

/* E5: with check_quorum, a follower that heard from its leader recently
 * ignores vote requests, even with a higher term. */
static void test_raft__leader_lease_ignores_votes(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    raft_free(f.r);
    f.cfg.check_quorum = true;
    fx_start(&f);
    struct raft_message hb = fx_msg(RAFT_MSG_HEARTBEAT, 2, 1, 1);
    raft_step(f.r, &hb);
    struct raft_message v = fx_msg(RAFT_MSG_VOTE, 3, 1, 2);
    v.index = 10;
    v.log_term = 1;
    raft_step(f.r, &v);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).term, 1);
    assert_null(fx_find(&f, RAFT_MSG_VOTE_RESP, 3));
    /* After an election timeout without the leader, it votes again. */
    tick_n(&f, f.cfg.election_tick);
    raft_step(f.r, &v);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).term, 2);
    fx_free(&f);
}

/* boot_quiet: a restarted node that knew term 1 ignores votes for one
 * election timeout (a leader may still hold a lease it confirmed through
 * this node before the crash); without the option it votes at once. */
static void restart_then_vote(bool boot_quiet, bool *ignored_at_once, bool *granted_later)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    raft_free(f.r);
    f.cfg.check_quorum = true;
    fx_start(&f);
    struct raft_message hb = fx_msg(RAFT_MSG_HEARTBEAT, 2, 1, 1);
    raft_step(f.r, &hb);
    fx_flush(&f);               /* term 1 is on "disk" */
    f.cfg.boot_quiet = boot_quiet;
    fx_clear(&f);
    fx_restart(&f);
    struct raft_message v = fx_msg(RAFT_MSG_VOTE, 3, 1, 5);
    v.index = 10;
    v.log_term = 1;
    raft_step(f.r, &v);
    fx_flush(&f);
    *ignored_at_once = fx_status(&f).term == 1 && fx_find(&f, RAFT_MSG_VOTE_RESP, 3) == NULL;
    if (*ignored_at_once) {
        tick_n(&f, f.cfg.election_tick);
        fx_clear(&f);
        v.term = 9;
        raft_step(f.r, &v);
        fx_flush(&f);
    }
    struct raft_message *resp = fx_find(&f, RAFT_MSG_VOTE_RESP, 3);
    *granted_later = fx_status(&f).term >= 5 && resp != NULL && !resp->reject;
    fx_free(&f);
}

static void test_raft__boot_quiet_ignores_votes_after_restart(void **state)
{
    (void)state;
    bool ignored, granted;
    restart_then_vote(true, &ignored, &granted);
    assert_true(ignored);
    assert_true(granted);
    restart_then_vote(false, &ignored, &granted);
    assert_false(ignored);
    assert_true(granted);
}

static void test_raft__learner_never_campaigns(void **state)
{
    struct fx_node f;
    struct raft_conf c = fx_conf(3);
    memset(&f, 0, sizeof(f));
    c.learners[c.n_learners++] = 4;
    memstore_init(&f.ms, &c);
    raft_config_init(&f.cfg);
    f.cfg.id = 4;
    f.cfg.storage = &memstore_ops;
    f.cfg.storage_ctx = &f.ms;
    fx_start(&f);
    tick_n(&f, 10 * f.cfg.election_tick);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).role, RAFT_FOLLOWER);
    assert_int_equal(f.n_out, 0);
    assert_int_equal(raft_campaign(f.r), RAFT_ERR_INVALID);
    fx_free(&f);
}

static void test_raft__single_voter_elects_itself(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 1);
    tick_n(&f, 2 * f.cfg.election_tick);
    assert_int_equal(fx_status(&f).role, RAFT_LEADER);
    fx_free(&f);
}

/* A stale leader learns the new term from a follower's answer. */
static void test_raft__stale_leader_learns_term(void **state)
{
    struct fx_node f;
    fx_init(&f, 2, 3);
    raft_free(f.r);
    f.cfg.check_quorum = true;
    fx_start(&f);
    struct raft_message hb = fx_msg(RAFT_MSG_HEARTBEAT, 3, 2, 4);
    raft_step(f.r, &hb);
    fx_flush(&f);
    fx_clear(&f);
    struct raft_message old = fx_msg(RAFT_MSG_APPEND, 1, 2, 2);
    raft_step(f.r, &old);
    fx_flush(&f);
    struct raft_message *r = fx_find(&f, RAFT_MSG_APPEND_RESP, 1);
    assert_non_null(r);
    assert_int_equal(r->term, 4);
    fx_free(&f);
}

/* Election Safety in a cluster: a leader emerges by timeouts alone. */
static void test_raft__cluster_elects_one_leader(void **state)
{
    for (uint32_t n = 3; n <= 7; n += 2) {
        struct sim_cluster c;
        fx_cluster(&c, n);
        int ticks = 0;
        while (sim_leader(&c) == RAFT_NONE && ticks < 200) {
            fx_cluster_tick(&c, 1);
            ticks++;
        }
        assert_true(ticks < 200);
        uint32_t leaders = 0;
        for (raft_id id = 1; id <= n; id++)
            leaders += fx_cstatus(&c, id).role == RAFT_LEADER;
        assert_int_equal(leaders, 1);
        fx_cluster_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft__follower_starts_election_after_timeout),
        cmocka_unit_test(test_raft__election_timeout_is_randomized),
        cmocka_unit_test(test_raft__candidate_wins_with_majority),
        cmocka_unit_test(test_raft__new_leader_contacts_every_peer),
        cmocka_unit_test(test_raft__candidate_restarts_election_on_timeout),
        cmocka_unit_test(test_raft__heartbeats_prevent_election),
        cmocka_unit_test(test_raft__candidate_loses_on_majority_reject),
        cmocka_unit_test(test_raft__candidate_steps_down_on_append_same_term),
        cmocka_unit_test(test_raft__vote_rejected_for_stale_term),
        cmocka_unit_test(test_raft__vote_granted_once_per_term),
        cmocka_unit_test(test_raft__vote_requires_up_to_date_log),
        cmocka_unit_test(test_raft__higher_term_converts_to_follower),
        cmocka_unit_test(test_raft__vote_persisted_before_response),
        cmocka_unit_test(test_raft__vote_survives_restart),
        cmocka_unit_test(test_raft__prevote_does_not_change_term),
        cmocka_unit_test(test_raft__prevote_quorum_starts_real_election),
        cmocka_unit_test(test_raft__prevote_rejected_with_stale_log),
        cmocka_unit_test(test_raft__partitioned_node_does_not_disrupt),
        cmocka_unit_test(test_raft__check_quorum_leader_steps_down),
        cmocka_unit_test(test_raft__check_quorum_keeps_leader_with_quorum),
        cmocka_unit_test(test_raft__leader_lease_ignores_votes),
        cmocka_unit_test(test_raft__boot_quiet_ignores_votes_after_restart),
        cmocka_unit_test(test_raft__learner_never_campaigns),
        cmocka_unit_test(test_raft__single_voter_elects_itself),
        cmocka_unit_test(test_raft__stale_leader_learns_term),
        cmocka_unit_test(test_raft__cluster_elects_one_leader),
        cmocka_unit_test(test_raft__prevote_campaign_raises_no_term_when_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
