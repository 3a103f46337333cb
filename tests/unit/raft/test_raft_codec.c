/*
 * test_raft_codec.c — the binary codec (raft_codec.h): round trips of every
 * record, and decoders that refuse truncated, oversized and random input
 * without crashing or over-reading (run it under ORDERKV_SANITIZE=ON to
 * have ASan check the latter).
 */
#include "raft_fixture.h"

static struct raft_message sample(uint8_t type)
{
    static uint8_t p1[] = {1, 2, 3};
    static uint8_t p2[] = {9};
    static struct raft_entry ents[3];
    static uint8_t snapdata[] = {5, 6, 7, 8, 9};
    struct raft_message m = fx_msg(type, 3, 7, 11);
    m.reject = type % 2;
    m.transfer = type == RAFT_MSG_VOTE;
    m.log_term = 10;
    m.index = 123456789012ull;
    m.commit = 99;
    m.hint_index = 17;
    m.hint_term = 8;
    m.ctx = 0xdeadbeefcafef00dull;
    if (type == RAFT_MSG_APPEND) {
        ents[0] = fx_entry(5, 10);
        ents[0].data = p1;
        ents[0].len = 3;
        ents[1] = fx_entry(6, 10);
        ents[2] = fx_entry(7, 11);
        ents[2].data = p2;
        ents[2].len = 1;
        m.entries = ents;
        m.n_entries = 3;
    }
    if (type == RAFT_MSG_SNAPSHOT) {
        m.snapshot.meta.index = 40;
        m.snapshot.meta.term = 9;
        m.snapshot.meta.conf = fx_conf(3);
        m.snapshot.meta.conf.learners[0] = 8;
        m.snapshot.meta.conf.n_learners = 1;
        m.snapshot.data = snapdata;
        m.snapshot.len = sizeof(snapdata);
    }
    return m;
}

static void test_raft__codec_message_round_trip(void **state)
{
    for (uint8_t t = RAFT_MSG_APPEND; t <= RAFT_MSG_TYPE_MAX_; t++) {
        struct raft_message m = sample(t), d;
        uint8_t buf[1024];
        size_t len;
        assert_int_equal(raft_message_encode(&m, buf, sizeof(buf), &len), 0);
        assert_int_equal(len, raft_message_encoded_size(&m));
        assert_int_equal(raft_message_decode(buf, len, &d), 0);
        assert_int_equal(d.type, t);
        assert_int_equal(d.reject, m.reject);
        assert_int_equal(d.transfer, m.transfer);
        assert_int_equal(d.from, 3);
        assert_int_equal(d.to, 7);
        assert_int_equal(d.term, 11);
        assert_int_equal(d.index, m.index);
        assert_int_equal(d.commit, 99);
        assert_int_equal(d.hint_index, 17);
        assert_int_equal(d.hint_term, 8);
        assert_int_equal(d.ctx, m.ctx);
        assert_int_equal(d.n_entries, m.n_entries);
        for (uint32_t k = 0; k < d.n_entries; k++) {
            assert_int_equal(d.entries[k].index, m.entries[k].index);
            assert_int_equal(d.entries[k].term, m.entries[k].term);
            assert_int_equal(d.entries[k].len, m.entries[k].len);
            if (d.entries[k].len > 0)
                assert_memory_equal(d.entries[k].data, m.entries[k].data,
                                    d.entries[k].len);
        }
        if (t == RAFT_MSG_SNAPSHOT) {
            assert_int_equal(d.snapshot.meta.index, 40);
            assert_int_equal(d.snapshot.meta.conf.n_voters, 3);
            assert_int_equal(d.snapshot.meta.conf.learners[0], 8);
            assert_memory_equal(d.snapshot.data, m.snapshot.data, 5);
        }
        raft_message_release(&d);
    }
}

/* Every strict prefix of a valid encoding is refused. */
static void test_raft__codec_rejects_truncation(void **state)
{
    uint8_t types[] = {RAFT_MSG_APPEND, RAFT_MSG_SNAPSHOT, RAFT_MSG_VOTE};
    for (size_t i = 0; i < sizeof(types); i++) {
        struct raft_message m = sample(types[i]), d;
        uint8_t buf[1024];
        size_t len;
        raft_message_encode(&m, buf, sizeof(buf), &len);
        for (size_t cut = 0; cut < len; cut++)
            assert_int_equal(raft_message_decode(buf, cut, &d),
                             RAFT_ERR_CORRUPT);
        uint8_t longer[1100];
        memcpy(longer, buf, len);
        longer[len] = 0;
        if (types[i] != RAFT_MSG_SNAPSHOT) /* trailing garbage */
            assert_int_equal(raft_message_decode(longer, len + 1, &d),
                             RAFT_ERR_CORRUPT);
    }
}

static void test_raft__codec_rejects_bad_fields(void **state)
{
    struct raft_message m = sample(RAFT_MSG_APPEND), d;
    uint8_t buf[1024], bad[1024];
    size_t len;
    raft_message_encode(&m, buf, sizeof(buf), &len);
    size_t offs[] = {0, 1, 2, 3}; /* version, type, flags, reserved */
    uint8_t vals[] = {9, 0, 0x80, 1};
    for (size_t k = 0; k < 4; k++) {
        memcpy(bad, buf, len);
        bad[offs[k]] = vals[k];
        assert_int_equal(raft_message_decode(bad, len, &d), RAFT_ERR_CORRUPT);
    }
    /* A huge entry count must be refused before any allocation. */
    memcpy(bad, buf, len);
    bad[76] = bad[77] = bad[78] = bad[79] = 0xff;
    assert_int_equal(raft_message_decode(bad, len, &d), RAFT_ERR_CORRUPT);
    /* An entry length beyond the buffer. */
    memcpy(bad, buf, len);
    bad[80 + 17] = 0xff;
    bad[80 + 18] = 0xff;
    assert_int_equal(raft_message_decode(bad, len, &d), RAFT_ERR_CORRUPT);
    /* Unknown entry type. */
    memcpy(bad, buf, len);
    bad[80 + 16] = 7;
    assert_int_equal(raft_message_decode(bad, len, &d), RAFT_ERR_CORRUPT);
    /* Encoding refuses a too-small buffer and an unknown type. */
    assert_int_equal(raft_message_encode(&m, buf, 10, &len),
                     RAFT_ERR_INVALID);
    m.type = 0;
    assert_int_equal(raft_message_encode(&m, buf, sizeof(buf), &len),
                     RAFT_ERR_INVALID);
}

/* Random bytes and bit flips of valid messages: decode either fails cleanly
 * or yields a message that re-encodes to the same bytes. */
static void test_raft__codec_survives_garbage(void **state)
{
    uint64_t x = 12345;
    uint8_t buf[512], re[1024];
    for (int round = 0; round < 200000; round++) {
        struct raft_message d;
        size_t len;
        if (round % 2 == 0) {
            len = 0;
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            len = (size_t)(x >> 33) % sizeof(buf);
            for (size_t k = 0; k < len; k++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                buf[k] = (uint8_t)(x >> 56);
            }
            if (len > 0)
                buf[0] = RAFT_CODEC_VERSION;
            if (len > 1)
                buf[1] = (uint8_t)(1 + buf[1] % RAFT_MSG_TYPE_MAX_);
        } else {
            struct raft_message m = sample((uint8_t)(1 + round % 12));
            raft_message_encode(&m, buf, sizeof(buf), &len);
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            buf[(x >> 33) % len] ^= (uint8_t)(1u << ((x >> 20) % 8));
        }
        if (raft_message_decode(buf, len, &d) == 0) {
            size_t rlen;
            assert_int_equal(raft_message_encode(&d, re, sizeof(re), &rlen),
                             0);
            assert_int_equal(rlen, len);
            raft_message_release(&d);
        }
    }
}

static void test_raft__codec_entry_and_records(void **state)
{
    uint8_t data[] = "hello";
    struct raft_entry e = fx_entry(77, 5), d;
    e.data = data;
    e.len = 5;
    e.type = RAFT_ENTRY_NORMAL;
    uint8_t buf[64];
    size_t len;
    assert_int_equal(raft_entry_encode(&e, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, raft_entry_encoded_size(&e));
    assert_int_equal(raft_entry_decode(buf, len, &d), 0);
    assert_int_equal(d.index, 77);
    assert_memory_equal(d.data, data, 5);
    free(d.data);
    assert_int_equal(raft_entry_decode(buf, len - 1, &d), RAFT_ERR_CORRUPT);
    assert_int_equal(raft_entry_encode(&e, buf, 3, &len), RAFT_ERR_INVALID);

    struct raft_hard_state hs = {9, 2, 100}, hd;
    uint8_t hb[RAFT_HARD_STATE_SIZE];
    raft_hard_state_encode(&hs, hb);
    assert_int_equal(raft_hard_state_decode(hb, sizeof(hb), &hd), 0);
    assert_int_equal(hd.term, 9);
    assert_int_equal(hd.vote, 2);
    assert_int_equal(hd.commit, 100);
    assert_int_equal(raft_hard_state_decode(hb, 24, &hd), RAFT_ERR_CORRUPT);

    struct raft_conf c = fx_conf(3), cd;
    size_t used;
    uint8_t cb[256];
    assert_int_equal(raft_conf_encode(&c, cb, sizeof(cb), &len), 0);
    assert_int_equal(raft_conf_decode(cb, len, &cd, &used), 0);
    assert_int_equal(used, len);
    assert_int_equal(cd.n_voters, 3);
    cb[0] = 200; /* n_voters > RAFT_MAX_NODES */
    assert_int_equal(raft_conf_decode(cb, len, &cd, &used), RAFT_ERR_CORRUPT);

    struct raft_conf_change cc = {RAFT_CC_PROMOTE, 3}, ccd;
    struct raft_conf after;
    assert_int_equal(raft_conf_entry_encode(&cc, &c, cb, sizeof(cb), &len), 0);
    assert_int_equal(raft_conf_entry_decode(cb, len, &ccd, &after), 0);
    assert_int_equal(ccd.type, RAFT_CC_PROMOTE);
    assert_int_equal(ccd.node, 3);
    assert_int_equal(after.n_voters, 3);
    cb[1] = 9;
    assert_int_equal(raft_conf_entry_decode(cb, len, &ccd, &after),
                     RAFT_ERR_CORRUPT);
    struct raft_conf dup = fx_conf(2);
    dup.voters[1] = 1; /* duplicate member */
    cc.type = RAFT_CC_REMOVE;
    raft_conf_entry_encode(&cc, &dup, cb, sizeof(cb), &len);
    assert_int_equal(raft_conf_entry_decode(cb, len, &ccd, &after),
                     RAFT_ERR_CORRUPT);
    assert_int_equal(raft_conf_entry_decode(NULL, 0, &ccd, &after),
                     RAFT_ERR_CORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft__codec_message_round_trip),
        cmocka_unit_test(test_raft__codec_rejects_truncation),
        cmocka_unit_test(test_raft__codec_rejects_bad_fields),
        cmocka_unit_test(test_raft__codec_survives_garbage),
        cmocka_unit_test(test_raft__codec_entry_and_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
