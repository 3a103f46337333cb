/* Users and roles without a server: the record codec, what a role and its
 * grants allow, the rule of every RPC in proto/ (a method without one
 * fails here before it can reach a node), and the password hashes. */
#include <stdio.h>
#include <string.h>

#include "auth_password.h"
#include "auth_rules.h"
#include "auth_user.h"
#include "errors.h"
#include "okv_test.h"
#include "orderkv.pb-c.h"
#include "orders.pb-c.h"

static auth_user user(const char *name, enum auth_role role)
{
    auth_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    u.role = role;
    return u;
}

static void test_auth__record_round_trips(void **state)
{
    (void)state;
    auth_user u = user("ops", AUTH_ROLE_READER);
    assert_int_equal(auth_user_set_grant(&u, "payments", AUTH_ACCESS_WRITE), 0);
    assert_int_equal(auth_user_set_grant(&u, "stock", AUTH_ACCESS_READ), 0);
    snprintf(u.hash, sizeof u.hash, "$y$j9T$salt$hash");
    char buf[1024];
    size_t n = auth_user_encode(&u, buf, sizeof buf);
    assert_true(n > 0);
    auth_user back;
    assert_int_equal(auth_user_decode((const uint8_t *)buf, n, "ops", &back), 0);
    assert_string_equal(back.name, "ops");
    assert_int_equal(back.role, AUTH_ROLE_READER);
    assert_int_equal(back.ngrants, 2);
    assert_string_equal(back.hash, u.hash);
    assert_int_equal(auth_user_access(&back, "payments"), AUTH_ACCESS_WRITE);
    assert_int_equal(auth_user_access(&back, "stock"), AUTH_ACCESS_READ);
    assert_int_equal(auth_user_access(&back, "orders"), AUTH_ACCESS_READ);
    /* Too small a buffer is refused, not cut. */
    assert_int_equal(auth_user_encode(&u, buf, 20), 0);
}

static void test_auth__malformed_records_are_refused(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",                                  /* no version */
        "v=2\nrole=admin\nhash=\n",          /* unknown version */
        "v=1\nrole=root\nhash=\n",           /* unknown role */
        "v=1\nrole=admin\nsudo=yes\n",       /* unknown key */
        "v=1\nrole=admin\ngrant=orders\n",   /* grant without access */
        "v=1\nrole=admin\ngrant=:writer\n",  /* grant without table */
        "v=1\nrole=admin\ngrant=orders:none\n",
        "v=1\nrole\n",                       /* no '=' */
    };
    auth_user u;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(auth_user_decode((const uint8_t *)bad[i], strlen(bad[i]), "x", &u), -1);
    const char nul[] = "v=1\nrole=ad\0min\n";
    assert_int_equal(auth_user_decode((const uint8_t *)nul, sizeof nul - 1, "x", &u), -1);
}

static void test_auth__names(void **state)
{
    (void)state;
    assert_true(auth_user_name_valid("orderkv-client"));
    assert_true(auth_user_name_valid("a.b_c-9"));
    assert_false(auth_user_name_valid(""));
    assert_false(auth_user_name_valid("@node"));   /* the nodes' own: never a user */
    assert_false(auth_user_name_valid("a b"));
    assert_false(auth_user_name_valid("a/b"));
    char longname[80];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(auth_user_name_valid(longname));
}

static void test_auth__grants_add_to_the_role(void **state)
{
    (void)state;
    auth_user none = user("n", AUTH_ROLE_NONE);
    assert_int_equal(auth_user_access(&none, "orders"), AUTH_ACCESS_NONE);
    auth_user_set_grant(&none, "orders", AUTH_ACCESS_READ);
    assert_int_equal(auth_user_access(&none, "orders"), AUTH_ACCESS_READ);
    assert_int_equal(auth_user_access(&none, "payments"), AUTH_ACCESS_NONE);
    /* A grant below the role takes nothing away. */
    auth_user w = user("w", AUTH_ROLE_WRITER);
    auth_user_set_grant(&w, "orders", AUTH_ACCESS_READ);
    assert_int_equal(auth_user_access(&w, "orders"), AUTH_ACCESS_WRITE);
    /* Revoking removes the grant; the role still applies. */
    auth_user_set_grant(&none, "orders", AUTH_ACCESS_NONE);
    assert_int_equal(none.ngrants, 0);
    assert_int_equal(auth_user_access(&none, "orders"), AUTH_ACCESS_NONE);
    for (int i = 0; i < AUTH_MAX_GRANTS; i++) {
        char t[16];
        snprintf(t, sizeof t, "t%d", i);
        assert_int_equal(auth_user_set_grant(&none, t, AUTH_ACCESS_READ), 0);
    }
    assert_int_equal(auth_user_set_grant(&none, "one-too-many", AUTH_ACCESS_READ), -1);
}

/* Every method of every service in proto/ has a rule; Raft's two streams
 * (not in a .proto: hand-driven) too. */
static void test_auth__every_rpc_has_a_rule(void **state)
{
    (void)state;
    const ProtobufCServiceDescriptor *svcs[] = { &orderkv__v1__kv__descriptor,
                                                 &orderkv__v1__admin__descriptor,
                                                 &orderkv__v1__orders__descriptor };
    size_t walked = 0;
    for (size_t s = 0; s < sizeof svcs / sizeof svcs[0]; s++)
        for (unsigned i = 0; i < svcs[s]->n_methods; i++) {
            char path[160];
            snprintf(path, sizeof path, "/%s/%s", svcs[s]->name, svcs[s]->methods[i].name);
            if (!auth_rule_find(path))
                fail_msg("%s has no permission rule (server/auth/auth_rules.c)", path);
            walked++;
        }
    assert_non_null(auth_rule_find("/orderkv.v1.Raft/Stream"));
    assert_non_null(auth_rule_find("/orderkv.v1.Raft/Snapshot"));
    assert_null(auth_rule_find("/orderkv.v1.KV/Nope"));
    /* And no rule names a method nobody serves. */
    assert_int_equal(auth_rules_count(), walked + 2);
}

static size_t pack(const ProtobufCMessage *m, uint8_t *buf)
{
    return protobuf_c_message_pack(m, buf);
}

static void test_auth__table_rules(void **state)
{
    (void)state;
    char msg[256];
    uint8_t buf[512];
    auth_user reader = user("r", AUTH_ROLE_READER);
    auth_user writer = user("w", AUTH_ROLE_NONE);
    auth_user_set_grant(&writer, "orders", AUTH_ACCESS_WRITE);

    Orderkv__V1__GetRequest g = ORDERKV__V1__GET_REQUEST__INIT;
    g.table = "payments";
    size_t n = pack(&g.base, buf);
    const auth_rule *get = auth_rule_find("/orderkv.v1.KV/Get");
    assert_int_equal(auth_rule_check(get, &reader, buf, n, msg, sizeof msg), OKV_OK);
    assert_int_equal(auth_rule_check(get, &writer, buf, n, msg, sizeof msg), OKV_EPERMISSION);
    assert_string_equal(msg, "permission denied: user w may not read table payments");

    Orderkv__V1__PutRequest p = ORDERKV__V1__PUT_REQUEST__INIT;
    p.table = "orders";
    n = pack(&p.base, buf);
    const auth_rule *put = auth_rule_find("/orderkv.v1.KV/Put");
    assert_int_equal(auth_rule_check(put, &writer, buf, n, msg, sizeof msg), OKV_OK);
    assert_int_equal(auth_rule_check(put, &reader, buf, n, msg, sizeof msg), OKV_EPERMISSION);
    assert_string_equal(msg, "permission denied: user r may not write table orders");
    /* The nodes themselves (NULL) pass; garbage does not decode. */
    assert_int_equal(auth_rule_check(put, NULL, buf, n, msg, sizeof msg), OKV_OK);
    static const uint8_t junk[] = { 0xff, 0xff, 0xff };
    assert_int_equal(auth_rule_check(put, &writer, junk, sizeof junk, msg, sizeof msg),
                     OKV_EPROTO);

    /* A transaction: read on every condition's table, write on every write's. */
    Orderkv__V1__TxnCondition c = ORDERKV__V1__TXN_CONDITION__INIT;
    c.table = "payments";
    Orderkv__V1__TxnWrite w = ORDERKV__V1__TXN_WRITE__INIT;
    w.table = "orders";
    Orderkv__V1__TxnCondition *cs[] = { &c };
    Orderkv__V1__TxnWrite *ws[] = { &w };
    Orderkv__V1__TxnRequest t = ORDERKV__V1__TXN_REQUEST__INIT;
    t.n_conditions = 1;
    t.conditions = cs;
    t.n_writes = 1;
    t.writes = ws;
    n = pack(&t.base, buf);
    const auth_rule *txn = auth_rule_find("/orderkv.v1.KV/Txn");
    assert_int_equal(auth_rule_check(txn, &writer, buf, n, msg, sizeof msg), OKV_EPERMISSION);
    assert_non_null(strstr(msg, "may not read table payments"));
    auth_user_set_grant(&writer, "payments", AUTH_ACCESS_READ);
    assert_int_equal(auth_rule_check(txn, &writer, buf, n, msg, sizeof msg), OKV_OK);
    /* An empty transaction names no table: a user who may use none is refused. */
    Orderkv__V1__TxnRequest empty = ORDERKV__V1__TXN_REQUEST__INIT;
    n = pack(&empty.base, buf);
    auth_user none = user("n", AUTH_ROLE_NONE);
    assert_int_equal(auth_rule_check(txn, &none, buf, n, msg, sizeof msg), OKV_EPERMISSION);
    assert_int_equal(auth_rule_check(txn, &reader, buf, n, msg, sizeof msg), OKV_OK);

    /* Orders: creating writes orders, and stock only when it reserves. */
    Orderkv__V1__CreateOrderItem it = ORDERKV__V1__CREATE_ORDER_ITEM__INIT;
    Orderkv__V1__CreateOrderItem *its[] = { &it };
    Orderkv__V1__CreateOrderRequest co = ORDERKV__V1__CREATE_ORDER_REQUEST__INIT;
    co.n_items = 1;
    co.items = its;
    n = pack(&co.base, buf);
    const auth_rule *create = auth_rule_find("/orderkv.v1.Orders/CreateOrder");
    assert_int_equal(auth_rule_check(create, &writer, buf, n, msg, sizeof msg), OKV_OK);
    it.reserve_stock = 1;
    n = pack(&co.base, buf);
    assert_int_equal(auth_rule_check(create, &writer, buf, n, msg, sizeof msg), OKV_EPERMISSION);
    assert_non_null(strstr(msg, "table stock"));
    /* Paying writes three tables. */
    const auth_rule *pay = auth_rule_find("/orderkv.v1.Orders/PayOrder");
    assert_int_equal(auth_rule_check(pay, &writer, NULL, 0, msg, sizeof msg), OKV_EPERMISSION);
    auth_user all = user("all", AUTH_ROLE_WRITER);
    assert_int_equal(auth_rule_check(pay, &all, NULL, 0, msg, sizeof msg), OKV_OK);
}

static void test_auth__admin_and_node_rules(void **state)
{
    (void)state;
    char msg[256];
    auth_user admin = user("root", AUTH_ROLE_ADMIN);
    auth_user writer = user("w", AUTH_ROLE_WRITER);
    const char *admin_only[] = { "/orderkv.v1.Admin/TransferLeader", "/orderkv.v1.Admin/UserAdd",
                                 "/orderkv.v1.Admin/UserSet", "/orderkv.v1.Admin/UserDelete",
                                 "/orderkv.v1.Admin/UserList", "/orderkv.v1.Admin/AuditTail",
                                 "/orderkv.v1.Admin/BackupFence" };
    for (size_t i = 0; i < sizeof admin_only / sizeof admin_only[0]; i++) {
        const auth_rule *r = auth_rule_find(admin_only[i]);
        assert_int_equal(auth_rule_check(r, &admin, NULL, 0, msg, sizeof msg), OKV_OK);
        assert_int_equal(auth_rule_check(r, &writer, NULL, 0, msg, sizeof msg), OKV_EPERMISSION);
        assert_non_null(strstr(msg, "needs role admin"));
    }
    const char *node_only[] = { "/orderkv.v1.KV/TxnPart", "/orderkv.v1.Raft/Stream",
                                "/orderkv.v1.Raft/Snapshot" };
    for (size_t i = 0; i < sizeof node_only / sizeof node_only[0]; i++) {
        const auth_rule *r = auth_rule_find(node_only[i]);
        assert_int_equal(auth_rule_check(r, &admin, NULL, 0, msg, sizeof msg), OKV_EPERMISSION);
        assert_int_equal(auth_rule_check(r, NULL, NULL, 0, msg, sizeof msg), OKV_OK);
    }
    auth_user nobody = user("n", AUTH_ROLE_NONE);
    assert_int_equal(auth_rule_check(auth_rule_find("/orderkv.v1.Admin/WhoAmI"), &nobody, NULL, 0,
                                     msg, sizeof msg), OKV_OK);
}

static void test_auth__passwords_are_salted_slow_hashes(void **state)
{
    (void)state;
    char h1[256], h2[256];
    assert_int_equal(auth_password_hash("correct horse", h1, sizeof h1), OKV_OK);
    assert_int_equal(auth_password_hash("correct horse", h2, sizeof h2), OKV_OK);
    assert_int_equal(strncmp(h1, "$y$", 3), 0);
    assert_string_not_equal(h1, h2);   /* a fresh salt each time */
    assert_null(strstr(h1, "correct"));
    assert_true(auth_password_verify("correct horse", h1));
    assert_true(auth_password_verify("correct horse", h2));
    assert_false(auth_password_verify("correct horsE", h1));
    assert_false(auth_password_verify("", h1));
    assert_false(auth_password_verify("correct horse", ""));
    assert_false(auth_password_verify("correct horse", "plain"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth__record_round_trips),
        cmocka_unit_test(test_auth__malformed_records_are_refused),
        cmocka_unit_test(test_auth__names),
        cmocka_unit_test(test_auth__grants_add_to_the_role),
        cmocka_unit_test(test_auth__every_rpc_has_a_rule),
        cmocka_unit_test(test_auth__table_rules),
        cmocka_unit_test(test_auth__admin_and_node_rules),
        cmocka_unit_test(test_auth__passwords_are_salted_slow_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
