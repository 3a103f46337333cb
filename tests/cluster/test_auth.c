/*
 * Users and roles (issue 14) on clusters of real orderkvd processes on
 * loopback, run with --auth on.
 *
 * - Every RPC refuses: a walk over every method of every service in
 *   proto/ (from protobuf-c's descriptors, so a new RPC is walked without
 *   touching this test) and Raft's two streams, sent raw over gRPC with an
 *   empty request: without credentials and with a wrong password each
 *   answers UNAUTHENTICATED; as a user of role none each answers
 *   PERMISSION_DENIED but the three that show no table data (Status,
 *   WhoAmI, TxnStatus); as an admin the nodes' own methods (TxnPart, Raft)
 *   still answer PERMISSION_DENIED. The batched stream opens for anyone
 *   and refuses each item it carries. The node serves an admin's writes
 *   afterwards and no node died.
 * - Roles and grants through liborderkv: a reader reads and may not write
 *   (OKV_EPERMISSION, "permission denied: user reader may not write table
 *   orders"); a user with one table's grant writes that table only, also
 *   inside a transaction; granting, revoking, a new password and deleting
 *   a user take effect (polled: the meta group's row reaches each node's
 *   replica a little later; each wait is bounded).
 * - The audit log names the refused user and its reason, and the admin's
 *   user changes.
 * - --tls: the user is the common name of a client certificate (TLS with
 *   --tls-client-auth optional); a TLS client without certificate or
 *   password is refused, one with a password is served.
 * - --planted: with the failpoint auth.tables.unchecked (a table rule not
 *   checked), the walk must find methods that answered a user of role none
 *   without PERMISSION_DENIED: the checker catches the bug, or this fails.
 *
 * OKV_KEEP_CLUSTER_DIR=1 keeps data dirs and logs.
 */
#include <grpc/grpc.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "okv_cluster.h"
#include "okv_test.h"
#include "orderkv.h"
#include "orderkv.pb-c.h"
#include "orders.pb-c.h"

static const char *orderkvd_path = ORDERKVD_PATH;
static const char *make_certs = MAKE_CERTS_PATH;

#define TICK_MS 50
#define CALL_MS 10000
#define SETTLE_MS 15000
#define ROOT_PW "root-password-1"
#define USER_PW "user-password-1"

static int planted_mode, tls_mode;

typedef struct fixture {
    char *dir;
    char secret[4200], root_pw[4200];
    okv_cluster *c;
    okv_options root;
} fixture;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = okv_test_tmpdir("auth");
    assert_non_null(f->dir);
    snprintf(f->secret, sizeof f->secret, "%s/secret", f->dir);
    snprintf(f->root_pw, sizeof f->root_pw, "%s/root.pw", f->dir);
    write_file(f->secret, "0123456789abcdef0123456789abcdef\n");
    write_file(f->root_pw, ROOT_PW "\n");
    okv_options o = OKV_OPTIONS_INIT;
    o.user = "root";
    o.password = ROOT_PW;
    f->root = o;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    okv_cluster_free(f->c);
    if (!getenv("OKV_KEEP_CLUSTER_DIR"))
        okv_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Starts 3 nodes with --auth on (root the first admin) plus extra flags. */
static void start(fixture *f, const char *env, const char *extra, const okv_options *client)
{
    char flags[10000];
    snprintf(flags, sizeof flags, "--auth on --auth-secret-file %s --auth-admin root "
             "--auth-admin-password-file %s %s", f->secret, f->root_pw, extra ? extra : "");
    int rc = okv_cluster_start_opts(&f->c, orderkvd_path, 3, TICK_MS, env, flags, client);
    if (rc == 0)
        rc = okv_cluster_wait_leaders(f->c, 20000);
    if (rc != 0)
        okv_cluster_dump_logs(f->c, 40);
    assert_int_equal(rc, 0);
}

static okv_client *connect_as(fixture *f, const char *user, const char *pw)
{
    okv_options o = f->c->client_opts;
    o.user = user;
    o.password = pw;
    okv_client *c = NULL;
    if (okv_connect(&c, f->c->all, &o) != OKV_OK)
        fail_msg("okv_connect: %s", okv_errmsg(NULL));
    return c;
}

/* Polls fn until it returns want (the meta group's rows reach every
 * replica shortly after they commit); the last code otherwise. */
typedef int (*probe_fn)(okv_client *c, void *arg);
static int until(okv_client *c, probe_fn fn, void *arg, int want)
{
    int64_t end = okv_cluster_now_ms() + SETTLE_MS;
    int rc;
    while ((rc = fn(c, arg)) != want && okv_cluster_now_ms() < end)
        okv_cluster_sleep_ms(50);
    return rc;
}

static int put_orders(okv_client *c, void *arg)
{
    (void)arg;
    uint64_t v;
    return okv_put(c, "orders", "k/1", 3, "v", 1, &v, CALL_MS);
}

static int put_payments(okv_client *c, void *arg)
{
    (void)arg;
    uint64_t v;
    return okv_put(c, "payments", "p/1", 3, "v", 1, &v, CALL_MS);
}

/* ---- the RPC walk -------------------------------------------------------- */

typedef struct caller {
    const char *user, *password;   /* NULL: no metadata */
} caller;

/* One raw call of path with body; its gRPC status, and for the batched
 * stream the status of its one item. */
static grpc_status_code raw_call(const char *addr, const char *path, const uint8_t *body,
                                 size_t len, const caller *who, grpc_byte_buffer **resp)
{
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(addr, cr, NULL);
    grpc_channel_credentials_release(cr);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice method = grpc_slice_from_static_string(path);
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_millis(CALL_MS, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
                                               NULL, dl, NULL);
    grpc_metadata md[2];
    memset(md, 0, sizeof md);
    size_t nmd = 0;
    if (who->user) {
        md[0].key = grpc_slice_from_static_string("okv-user");
        md[0].value = grpc_slice_from_static_string(who->user);
        md[1].key = grpc_slice_from_static_string("okv-password");
        md[1].value = grpc_slice_from_static_string(who->password);
        nmd = 2;
    }
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)body, len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    grpc_metadata_array init_md, trail_md;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    grpc_status_code st = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    *resp = NULL;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nmd;
    ops[0].data.send_initial_metadata.metadata = nmd ? md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = resp;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &st;
    ops[5].data.recv_status_on_client.status_details = &details;
    assert_int_equal(grpc_call_start_batch(call, ops, 6, call, NULL), GRPC_CALL_OK);
    grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_byte_buffer_destroy(send);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    return st;
}

/* The batched stream: opened by anyone; its one Put item is refused. */
static grpc_status_code batch_item_status(const char *addr, const caller *who)
{
    Orderkv__V1__PutRequest put = ORDERKV__V1__PUT_REQUEST__INIT;
    put.table = "orders";
    uint8_t pb[64];
    size_t pl = protobuf_c_message_pack(&put.base, pb);
    Orderkv__V1__BatchItem it = ORDERKV__V1__BATCH_ITEM__INIT;
    it.id = 7;
    it.method = "/orderkv.v1.KV/Put";
    it.body.data = pb;
    it.body.len = pl;
    Orderkv__V1__BatchItem *its[] = { &it };
    Orderkv__V1__BatchRequest br = ORDERKV__V1__BATCH_REQUEST__INIT;
    br.n_items = 1;
    br.items = its;
    uint8_t buf[256];
    size_t n = protobuf_c_message_pack(&br.base, buf);
    grpc_byte_buffer *resp = NULL;
    grpc_status_code st = raw_call(addr, "/orderkv.v1.KV/Batch", buf, n, who, &resp);
    grpc_status_code item = GRPC_STATUS_UNKNOWN;
    if (st == GRPC_STATUS_OK && resp) {
        grpc_byte_buffer_reader r;
        assert_true(grpc_byte_buffer_reader_init(&r, resp));
        grpc_slice all = grpc_byte_buffer_reader_readall(&r);
        grpc_byte_buffer_reader_destroy(&r);
        Orderkv__V1__BatchResponse *m = orderkv__v1__batch_response__unpack(
            NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
        if (m && m->n_replies == 1 && m->replies[0]->id == 7)
            item = (grpc_status_code)m->replies[0]->status;
        if (m)
            orderkv__v1__batch_response__free_unpacked(m, NULL);
        grpc_slice_unref(all);
    }
    if (resp)
        grpc_byte_buffer_destroy(resp);
    return item;
}

enum expect { REFUSED_AUTH, REFUSED_PERM, SERVED };

static int is_node_only(const char *path)
{
    return strstr(path, "/Raft/") || strcmp(path, "/orderkv.v1.KV/TxnPart") == 0;
}

static int is_open_to_users(const char *path)
{
    return strcmp(path, "/orderkv.v1.Admin/Status") == 0 ||
           strcmp(path, "/orderkv.v1.Admin/WhoAmI") == 0 ||
           strcmp(path, "/orderkv.v1.KV/TxnStatus") == 0;
}

/* Sends one call of path as who and checks the answer. Returns 1 when the
 * answer breaks the expectation (reported on stderr). */
static int walk_one(const char *addr, const char *path, const caller *who, const char *whoname,
                    int as_admin)
{
    grpc_status_code st;
    int batch = strcmp(path, "/orderkv.v1.KV/Batch") == 0;
    if (batch) {
        st = batch_item_status(addr, who);
    } else {
        grpc_byte_buffer *resp = NULL;
        st = raw_call(addr, path, (const uint8_t *)"", 0, who, &resp);
        if (resp)
            grpc_byte_buffer_destroy(resp);
    }
    grpc_status_code want;
    int must_not_be_refused = 0;
    if (!who->user || strcmp(whoname, "wrong-password") == 0)
        want = GRPC_STATUS_UNAUTHENTICATED;
    else if (as_admin)
        want = is_node_only(path) ? GRPC_STATUS_PERMISSION_DENIED : GRPC_STATUS_OK;
    else if (is_open_to_users(path))
        must_not_be_refused = 1, want = GRPC_STATUS_OK;
    else
        want = GRPC_STATUS_PERMISSION_DENIED;
    if (as_admin && !is_node_only(path))
        return 0;   /* an admin's calls are served: what they answer is the method's business */
    if (must_not_be_refused) {
        if (st == GRPC_STATUS_PERMISSION_DENIED || st == GRPC_STATUS_UNAUTHENTICATED) {
            fprintf(stderr, "  %s as %s: refused (%d), but it shows no table data\n", path,
                    whoname, (int)st);
            return 1;
        }
        return 0;
    }
    if (st != want) {
        fprintf(stderr, "  %s as %s: status %d, want %d\n", path, whoname, (int)st, (int)want);
        return 1;
    }
    return 0;
}

/* Walks every method; returns how many answers broke the rules. */
static int walk_every_rpc(const char *addr, const caller *who, const char *whoname, int as_admin,
                          size_t *walked)
{
    const ProtobufCServiceDescriptor *svcs[] = { &orderkv__v1__kv__descriptor,
                                                 &orderkv__v1__admin__descriptor,
                                                 &orderkv__v1__orders__descriptor };
    int bad = 0;
    *walked = 0;
    for (size_t s = 0; s < sizeof svcs / sizeof svcs[0]; s++)
        for (unsigned i = 0; i < svcs[s]->n_methods; i++) {
            char path[160];
            snprintf(path, sizeof path, "/%s/%s", svcs[s]->name, svcs[s]->methods[i].name);
            bad += walk_one(addr, path, who, whoname, as_admin);
            (*walked)++;
        }
    static const char *const raft[] = { "/orderkv.v1.Raft/Stream", "/orderkv.v1.Raft/Snapshot" };
    for (size_t i = 0; i < 2; i++, (*walked)++)
        bad += walk_one(addr, raft[i], who, whoname, as_admin);
    return bad;
}

static void add_users(okv_client *root)
{
    assert_int_equal(okv_user_add(root, "reader", USER_PW, "reader", CALL_MS), OKV_OK);
    assert_int_equal(okv_user_add(root, "nobody", USER_PW, "none", CALL_MS), OKV_OK);
    assert_int_equal(okv_user_add(root, "clerk", USER_PW, "none", CALL_MS), OKV_OK);
    assert_int_equal(okv_user_grant(root, "clerk", "orders", "writer", CALL_MS), OKV_OK);
    /* Exists already: CONFLICT, and a bad role: EINVAL. */
    assert_int_equal(okv_user_add(root, "reader", USER_PW, "reader", CALL_MS), OKV_ECONFLICT);
    assert_int_equal(okv_user_add(root, "x", USER_PW, "superuser", CALL_MS), OKV_EINVAL);
    assert_int_equal(okv_user_add(root, "a/b", USER_PW, "reader", CALL_MS), OKV_EINVAL);
}

static int whoami_role_is(okv_client *c, void *arg)
{
    char user[80], role[32];
    int on = 0;
    int rc = okv_whoami(c, user, sizeof user, role, sizeof role, &on, CALL_MS);
    return rc ? rc : strcmp(role, (const char *)arg) == 0 ? OKV_OK : OKV_ENOTFOUND;
}

/* Every node has applied the users' rows (each checks against its own replica). */
static void wait_users_everywhere(fixture *f)
{
    for (int id = 1; id <= 3; id++) {
        okv_options o = f->c->client_opts;
        o.user = "clerk";
        o.password = USER_PW;
        o.listed_nodes_only = 1;
        okv_client *c;
        assert_int_equal(okv_connect(&c, f->c->addr[id], &o), OKV_OK);
        assert_int_equal(until(c, whoami_role_is, "none", OKV_OK), OKV_OK);
        okv_close(c);
    }
}

static void test_auth__every_rpc_refuses(void **state)
{
    fixture *f = *state;
    start(f, planted_mode ? "ORDERKV_FAILPOINTS=auth.tables.unchecked=on" : NULL, NULL, &f->root);
    okv_client *root = connect_as(f, "root", ROOT_PW);
    add_users(root);
    wait_users_everywhere(f);
    const caller anon = { NULL, NULL }, wrong = { "reader", "not-the-password" },
                 nobody = { "nobody", USER_PW }, admin = { "root", ROOT_PW };
    size_t walked = 0;
    int bad_anon = walk_every_rpc(f->c->addr[1], &anon, "anonymous", 0, &walked);
    int bad_wrong = walk_every_rpc(f->c->addr[2], &wrong, "wrong-password", 0, &walked);
    int bad_none = walk_every_rpc(f->c->addr[3], &nobody, "nobody (role none)", 0, &walked);
    int bad_admin = walk_every_rpc(f->c->addr[1], &admin, "root (admin)", 1, &walked);
    fprintf(stderr, "walked %zu methods x 4 callers: %d, %d, %d, %d answers broke the rules\n",
            walked, bad_anon, bad_wrong, bad_none, bad_admin);
    assert_true(walked >= 35);   /* KV, Admin, Orders and Raft's two streams */
    if (planted_mode) {
        /* The bug lets table calls through: the walk must have seen it. */
        if (bad_none == 0)
            fail_msg("the planted bug (auth.tables.unchecked) was not caught by the walk");
        assert_int_equal(bad_anon, 0);
        okv_close(root);
        return;
    }
    assert_int_equal(bad_anon + bad_wrong + bad_none + bad_admin, 0);
    /* The node keeps serving: the admin's writes go through, no node died. */
    uint64_t v;
    assert_int_equal(okv_put(root, "orders", "after/1", 7, "x", 1, &v, CALL_MS), OKV_OK);
    assert_int_equal(okv_cluster_reap_dead(f->c), 0);
    okv_close(root);
}

static void test_auth__roles_grants_and_changes(void **state)
{
    fixture *f = *state;
    start(f, NULL, NULL, &f->root);
    okv_client *root = connect_as(f, "root", ROOT_PW);
    add_users(root);
    wait_users_everywhere(f);
    uint64_t v;
    assert_int_equal(okv_put(root, "orders", "k/1", 3, "v0", 2, &v, CALL_MS), OKV_OK);

    /* A reader reads, may not write, and is told why. */
    okv_client *reader = connect_as(f, "reader", USER_PW);
    okv_value *val = NULL;
    assert_int_equal(okv_get(reader, "orders", "k/1", 3, &val, CALL_MS), OKV_OK);
    okv_value_free(val);
    assert_int_equal(okv_put(reader, "orders", "k/2", 3, "x", 1, &v, CALL_MS), OKV_EPERMISSION);
    assert_non_null(strstr(okv_errmsg(reader),
                           "permission denied: user reader may not write table orders"));
    assert_int_equal(okv_transfer_leader(reader, "orders", 0, 2, CALL_MS), OKV_EPERMISSION);
    okv_user_list *l = NULL;
    assert_int_equal(okv_user_list_get(reader, &l, CALL_MS), OKV_EPERMISSION);

    /* The clerk writes orders only, also inside a transaction. */
    okv_client *clerk = connect_as(f, "clerk", USER_PW);
    assert_int_equal(put_orders(clerk, NULL), OKV_OK);
    assert_int_equal(put_payments(clerk, NULL), OKV_EPERMISSION);
    okv_txn_req *t = NULL;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, "orders", "c1/o1", 5, "x", 1), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, "payments", "c1/p1", 5, "x", 1), OKV_OK);
    okv_txn_outcome out;
    assert_int_equal(okv_txn_commit(clerk, t, &out, CALL_MS), OKV_EPERMISSION);
    okv_txn_req_free(t);

    /* Grant, then revoke: each takes effect. */
    assert_int_equal(okv_user_grant(root, "clerk", "payments", "writer", CALL_MS), OKV_OK);
    assert_int_equal(until(clerk, put_payments, NULL, OKV_OK), OKV_OK);
    assert_int_equal(okv_user_grant(root, "clerk", "payments", "none", CALL_MS), OKV_OK);
    assert_int_equal(until(clerk, put_payments, NULL, OKV_EPERMISSION), OKV_EPERMISSION);

    /* A role change. */
    assert_int_equal(okv_user_set_role(root, "reader", "writer", CALL_MS), OKV_OK);
    assert_int_equal(until(reader, put_orders, NULL, OKV_OK), OKV_OK);

    /* A new password: the old one stops working, the new one works. */
    assert_int_equal(okv_user_set_password(root, "clerk", "another-pw-2", CALL_MS), OKV_OK);
    assert_int_equal(until(clerk, put_orders, NULL, OKV_EAUTH), OKV_EAUTH);
    okv_client *clerk2 = connect_as(f, "clerk", "another-pw-2");
    assert_int_equal(until(clerk2, put_orders, NULL, OKV_OK), OKV_OK);

    /* Deleted: refused. An admin may not delete or demote itself. */
    assert_int_equal(okv_user_delete(root, "clerk", CALL_MS), OKV_OK);
    assert_int_equal(until(clerk2, put_orders, NULL, OKV_EAUTH), OKV_EAUTH);
    assert_int_equal(okv_user_delete(root, "root", CALL_MS), OKV_EINVAL);
    assert_int_equal(okv_user_set_role(root, "root", "reader", CALL_MS), OKV_EINVAL);
    assert_int_equal(okv_user_delete(root, "nosuch", CALL_MS), OKV_ENOTFOUND);

    /* No credentials at all. */
    okv_client *anon = connect_as(f, NULL, NULL);
    assert_int_equal(put_orders(anon, NULL), OKV_EAUTH);

    /* The list, from the admin. */
    assert_int_equal(okv_user_list_get(root, &l, CALL_MS), OKV_OK);
    char names[256] = "";
    for (size_t i = 0; i < okv_user_list_count(l); i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s:%s ",
                 okv_user_list_name(l, i), okv_user_list_role(l, i));
    okv_user_list_free(l);
    assert_string_equal(names, "nobody:none reader:writer root:admin ");

    /* The audit log of the node the refusals went to names who and why. */
    int found_refusal = 0, found_add = 0;
    for (int id = 1; id <= 3; id++) {
        okv_audit_lines *al = NULL;
        assert_int_equal(okv_audit_tail(root, f->c->addr[id], 1000, &al, CALL_MS), OKV_OK);
        for (size_t i = 0; i < okv_audit_lines_count(al); i++) {
            const char *line = okv_audit_lines_at(al, i);
            found_refusal |= strstr(line, "\"who\":\"reader\"") &&
                             strstr(line, "may not write table orders") != NULL;
            found_add |= strstr(line, "\"who\":\"root\"") &&
                         strstr(line, "user-add name=clerk") != NULL;
        }
        okv_audit_lines_free(al);
    }
    assert_true(found_refusal);
    assert_true(found_add);
    assert_int_equal(okv_cluster_reap_dead(f->c), 0);
    okv_close(anon);
    okv_close(clerk2);
    okv_close(clerk);
    okv_close(reader);
    okv_close(root);
}

/* The user is the common name of a client certificate (make-certs.sh's
 * client certificate says "orderkv-client"). */
static void test_auth__client_certificate_names_the_user(void **state)
{
    fixture *f = *state;
    char certs[4300], cmd[9000];
    snprintf(certs, sizeof certs, "%s/certs", f->dir);
    snprintf(cmd, sizeof cmd, "'%s' '%s' 3 >/dev/null", make_certs, certs);
    assert_int_equal(system(cmd), 0);
    char ca[4400], crt[4400], key[4400], extra[4500];
    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    snprintf(crt, sizeof crt, "%s/client.crt", certs);
    snprintf(key, sizeof key, "%s/client.key", certs);
    /* Flags past the ten the cluster helper takes go in a config file per node. */
    for (int id = 1; id <= 3; id++) {
        char path[4400], text[20000];
        snprintf(path, sizeof path, "%s/node%d.conf", f->dir, id);
        snprintf(text, sizeof text, "tls-ca = %s\ntls-cert = %s/node%d.crt\n"
                 "tls-key = %s/node%d.key\ntls-client-auth = optional\n", ca, certs, id, certs,
                 id);
        write_file(path, text);
    }
    snprintf(extra, sizeof extra, "--config %s/node@ID@.conf", f->dir);
    okv_options o = f->root;
    o.tls_ca = ca;
    start(f, NULL, extra, &o);
    okv_client *root = connect_as(f, "root", ROOT_PW);   /* TLS, no certificate: a password */
    assert_int_equal(okv_user_add(root, "orderkv-client", NULL, "reader", CALL_MS), OKV_OK);
    uint64_t v;
    assert_int_equal(okv_put(root, "orders", "k/1", 3, "v", 1, &v, CALL_MS), OKV_OK);

    okv_options co = OKV_OPTIONS_INIT;
    co.tls_ca = ca;
    co.tls_cert = crt;
    co.tls_key = key;
    okv_client *cert = NULL;
    assert_int_equal(okv_connect(&cert, f->c->all, &co), OKV_OK);
    assert_int_equal(until(cert, whoami_role_is, "reader", OKV_OK), OKV_OK);
    okv_value *val = NULL;
    assert_int_equal(okv_get(cert, "orders", "k/1", 3, &val, CALL_MS), OKV_OK);
    okv_value_free(val);
    assert_int_equal(put_orders(cert, NULL), OKV_EPERMISSION);
    assert_non_null(strstr(okv_errmsg(cert), "user orderkv-client may not write table orders"));

    /* TLS without a certificate or a password: nobody. */
    okv_options no = OKV_OPTIONS_INIT;
    no.tls_ca = ca;
    okv_client *anon = NULL;
    assert_int_equal(okv_connect(&anon, f->c->all, &no), OKV_OK);
    assert_int_equal(put_orders(anon, NULL), OKV_EAUTH);
    assert_int_equal(okv_cluster_reap_dead(f->c), 0);
    okv_close(anon);
    okv_close(cert);
    okv_close(root);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--planted") == 0)
            planted_mode = 1;
        else if (strcmp(argv[i], "--tls") == 0)
            tls_mode = 1;
    }
    if (planted_mode) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_auth__every_rpc_refuses, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    if (tls_mode) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_auth__client_certificate_names_the_user, setup,
                                            teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auth__every_rpc_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth__roles_grants_and_changes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
