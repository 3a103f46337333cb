/*
 * client_call.c — one unary gRPC call, with failover across addresses and
 * the mapping of every outcome to an OKV_E* code.
 *
 * The rule that matters for money: a write reports a clean failure
 * (OKV_EUNAVAILABLE, OKV_ETIMEDOUT, OKV_EINVAL, ...) only when it certainly
 * did not apply. We know that when the server answered with an error of its
 * own, or when no connection to any server was ever ready. Once a request may
 * have left this process (the channel was READY and the call started), a
 * lost connection or a passed deadline is OKV_EUNKNOWN.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <string.h>

#include "client_int.h"
#include "orderkv.pb-c.h"

static gpr_timespec deadline_in(int ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static int passed(gpr_timespec deadline)
{
    return gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), deadline) >= 0;
}

/* How long a channel that already failed gets to reconnect within one call.
 * gRPC keeps a failed channel in TRANSIENT_FAILURE ("sticky") while it
 * retries in the background, with a backoff we cap at 1 s (client.c); one
 * backoff plus a connect is enough to notice a node that came back. */
#define RECONNECT_GRACE_MS 1200

/* Waits until the channel is READY (1), fails (0) or the deadline passes
 * (-1). Asking for the state with try_to_connect starts a connection on an
 * idle channel. */
static int wait_ready(grpc_channel *ch, grpc_completion_queue *cq, gpr_timespec deadline)
{
    grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
    int attempted = 0;
    for (;;) {
        if (st == GRPC_CHANNEL_READY)
            return 1;
        if (st == GRPC_CHANNEL_SHUTDOWN)
            return 0;
        /* Our attempt connected and was closed before it became READY
         * (a plaintext channel to a TLS node): a failure too. */
        if (st == GRPC_CHANNEL_IDLE && attempted)
            return 0;
        gpr_timespec until = deadline;
        if (st == GRPC_CHANNEL_TRANSIENT_FAILURE) {
            /* Our own attempt failed: give up on this node for this call. */
            if (attempted)
                return 0;
            /* An earlier failure: allow one background reconnect. */
            gpr_timespec grace = deadline_in(RECONNECT_GRACE_MS);
            if (gpr_time_cmp(grace, until) < 0)
                until = grace;
        }
        attempted = 1;
        void *tag = &st;
        grpc_channel_watch_connectivity_state(ch, st, until, cq, tag);
        grpc_event ev = grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (!ev.success)
            return passed(deadline) ? -1 : 0;
        st = grpc_channel_check_connectivity_state(ch, 1);
    }
}

/* The Error of a response message: field 1 of every orderkv response. */
static const Orderkv__V1__Error *response_error(const ProtobufCMessage *msg)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(msg->descriptor, 1);
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return NULL;
    const Orderkv__V1__Error *e;
    memcpy(&e, (const char *)msg + f->offset, sizeof e);
    return e;
}

static int code_from_proto(int pcode)
{
    switch (pcode) {
    case ORDERKV__V1__ERROR_CODE__NOT_FOUND: return OKV_ENOTFOUND;
    case ORDERKV__V1__ERROR_CODE__INVALID_ARGUMENT: return OKV_EINVAL;
    case ORDERKV__V1__ERROR_CODE__NOT_LEADER: return OKV_ENOTLEADER;
    case ORDERKV__V1__ERROR_CODE__CONFLICT: return OKV_ECONFLICT;
    case ORDERKV__V1__ERROR_CODE__UNAVAILABLE: return OKV_EUNAVAILABLE;
    case ORDERKV__V1__ERROR_CODE__TIMEOUT: return OKV_ETIMEDOUT;
    case ORDERKV__V1__ERROR_CODE__CORRUPTION: return OKV_ECORRUPT;
    case ORDERKV__V1__ERROR_CODE__UNKNOWN_OUTCOME: return OKV_EUNKNOWN;
    case ORDERKV__V1__ERROR_CODE__UNIMPLEMENTED: return OKV_EUNIMPLEMENTED;
    case ORDERKV__V1__ERROR_CODE__CONDITION_FAILED: return OKV_ECONDITION;
    case ORDERKV__V1__ERROR_CODE__ILLEGAL_TRANSITION: return OKV_EILLEGAL;
    case ORDERKV__V1__ERROR_CODE__INSUFFICIENT_FUNDS: return OKV_EFUNDS;
    case ORDERKV__V1__ERROR_CODE__SOLD_OUT: return OKV_ESOLDOUT;
    case ORDERKV__V1__ERROR_CODE__IDEMPOTENCY_KEY_REUSED: return OKV_EIDEMPOTENCY;
    case ORDERKV__V1__ERROR_CODE__IN_PROGRESS: return OKV_EINPROGRESS;
    case ORDERKV__V1__ERROR_CODE__PERMISSION_DENIED: return OKV_EPERMISSION;
    case ORDERKV__V1__ERROR_CODE__UNAUTHENTICATED: return OKV_EAUTH;
    default: return OKV_EINTERNAL;
    }
}

/* A gRPC status with no orderkv body: it came from gRPC itself (transport,
 * deadline) or from a server that is not orderkv. */
static int code_from_status(grpc_status_code st, int is_write)
{
    switch (st) {
    case GRPC_STATUS_NOT_FOUND: return OKV_ENOTFOUND;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE: return OKV_EINVAL;
    case GRPC_STATUS_RESOURCE_EXHAUSTED: return is_write ? OKV_EUNKNOWN : OKV_EINVAL;
    case GRPC_STATUS_FAILED_PRECONDITION: return OKV_ECONFLICT;
    case GRPC_STATUS_UNIMPLEMENTED: return OKV_EUNIMPLEMENTED;
    case GRPC_STATUS_DATA_LOSS: return OKV_ECORRUPT;
    /* Refused before anything was done, writes included. */
    case GRPC_STATUS_PERMISSION_DENIED: return OKV_EPERMISSION;
    case GRPC_STATUS_UNAUTHENTICATED: return OKV_EAUTH;
    case GRPC_STATUS_UNAVAILABLE: return is_write ? OKV_EUNKNOWN : OKV_EUNAVAILABLE;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
    case GRPC_STATUS_CANCELLED: return is_write ? OKV_EUNKNOWN : OKV_ETIMEDOUT;
    default: return is_write ? OKV_EUNKNOWN : OKV_EINTERNAL;
    }
}

typedef struct call_result {
    grpc_status_code status;
    char details[384];
    grpc_byte_buffer *body;
} call_result;

/* Runs the call on one channel; 0 if it ran (whatever the status), else the
 * call could not even start. */
static int run_call(okv_client *c, size_t idx, unsigned k, enum client_method m,
                    const ProtobufCMessage *req, gpr_timespec deadline, grpc_completion_queue *cq,
                    call_result *res)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t stackbuf[2048];
    uint8_t *buf = len <= sizeof stackbuf ? stackbuf : gpr_malloc(len);
    protobuf_c_message_pack(req, buf);
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)buf, len);
    if (buf != stackbuf)
        gpr_free(buf);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);

    grpc_call *call = grpc_channel_create_registered_call(
        c->channels[idx][k], NULL, GRPC_PROPAGATE_DEFAULTS, cq, c->methods[idx][k][m], deadline,
        NULL);
    grpc_metadata_array init_md, trail_md;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    grpc_slice details = grpc_empty_slice();
    res->body = NULL;

    /* RECV_INITIAL_METADATA is required in the batch: without it a
     * trailers-only error reply would only surface at the deadline. */
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    client_auth_md(c, &ops[0]);
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &res->body;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &res->status;
    ops[5].data.recv_status_on_client.status_details = &details;
    int rc = -1;
    if (grpc_call_start_batch(call, ops, 6, call, NULL) == GRPC_CALL_OK) {
        grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        rc = 0;
        char *d = grpc_slice_to_c_string(details);
        snprintf(res->details, sizeof res->details, "%s", d);
        gpr_free(d);
    }
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_byte_buffer_destroy(send);
    grpc_call_unref(call);
    return rc;
}

int client_interpret(okv_client *c, size_t idx, const client_answer *ans,
                     const ProtobufCMessageDescriptor *d, int is_write, ProtobufCMessage **out,
                     client_attempt *at, char *err, size_t errlen)
{
    ProtobufCMessage *msg =
        ans->has_body ? protobuf_c_message_unpack(d, NULL, ans->body_len, ans->body) : NULL;
    const Orderkv__V1__Error *e = msg ? response_error(msg) : NULL;
    *out = NULL;
    memset(at, 0, sizeof *at);
    err[0] = '\0';
    if (ans->status == GRPC_STATUS_OK && msg && (!e || e->code == 0)) {
        *out = msg;
        return OKV_OK;
    }
    int code;
    if (e && e->code != 0) {
        at->from_server = 1;
        if (e->leader_address)
            snprintf(at->leader, sizeof at->leader, "%s", e->leader_address);
        code = code_from_proto(e->code);
        snprintf(err, errlen, "%s", e->message);
        /* A refusal's response may say more than its Error (a
         * transaction names the item that stopped it): the caller keeps it
         * and frees it. */
        *out = msg;
        return code;
    } else if (ans->status == GRPC_STATUS_OK) {
        code = is_write ? OKV_EUNKNOWN : OKV_EPROTO;
        snprintf(err, errlen, "malformed response from %s", c->addrs[idx]);
    } else {
        code = code_from_status(ans->status, is_write);
        snprintf(err, errlen, "%s%s (from %s, gRPC status %d)%s", ans->details,
                 ans->details[0] ? "" : "no detail", c->addrs[idx], (int)ans->status,
                 code == OKV_EUNKNOWN ? "; the write may or may not have applied" : "");
    }
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    return code;
}

/* Turns a finished unary call into a code; consumes res->body. */
static int interpret(okv_client *c, size_t idx, const call_result *res,
                     const ProtobufCMessageDescriptor *d, int is_write, ProtobufCMessage **out,
                     client_attempt *at)
{
    client_answer ans = { res->status, res->details, NULL, 0, 0 };
    grpc_slice all = grpc_empty_slice();
    if (res->body) {
        grpc_byte_buffer_reader r;
        if (grpc_byte_buffer_reader_init(&r, res->body)) {
            all = grpc_byte_buffer_reader_readall(&r);
            grpc_byte_buffer_reader_destroy(&r);
            ans.body = GRPC_SLICE_START_PTR(all);
            ans.body_len = GRPC_SLICE_LENGTH(all);
            ans.has_body = 1;
        }
        grpc_byte_buffer_destroy(res->body);
    }
    char err[512];
    int rc = client_interpret(c, idx, &ans, d, is_write, out, at, err, sizeof err);
    grpc_slice_unref(all);
    if (rc && *out) {   /* the unary admin calls keep no body of a refusal */
        protobuf_c_message_free_unpacked(*out, NULL);
        *out = NULL;
    }
    if (rc)
        client_fail(c, rc, "%s", err);
    return rc;
}

int client_backoff_ms(int attempt_no)
{
    static _Thread_local uint64_t seed;
    if (!seed)
        seed = (uint64_t)(uintptr_t)&seed ^ (uint64_t)gpr_now(GPR_CLOCK_MONOTONIC).tv_nsec;
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    int shift = attempt_no < 4 ? attempt_no : 4;
    int base = 10 << shift;
    return base + (int)(seed % (uint64_t)(3 * base + 1));
}

/* Sleeps client_backoff_ms before retrying, never past the deadline. */
static void backoff(int attempt_no, gpr_timespec deadline)
{
    int ms = client_backoff_ms(attempt_no);
    gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
    if (gpr_time_cmp(until, deadline) > 0)
        until = deadline;
    gpr_sleep_until(until);
}

/* One attempt's share of the call's deadline when another attempt could
 * follow: half of what is left, at least ATTEMPT_MIN_MS. A hung node (a
 * SIGSTOPped leader) then costs half the budget, not all of it. */
#define ATTEMPT_MIN_MS 250

static gpr_timespec attempt_deadline(gpr_timespec deadline)
{
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    gpr_timespec left = gpr_time_sub(deadline, now);
    int64_t half_ms = gpr_time_to_millis(left) / 2;
    if (half_ms < ATTEMPT_MIN_MS)
        half_ms = ATTEMPT_MIN_MS;
    gpr_timespec d = gpr_time_add(now, gpr_time_from_millis(half_ms, GPR_TIMESPAN));
    return gpr_time_cmp(d, deadline) < 0 ? d : deadline;
}

/* After an attempt of a write may have applied, only an answer that settles
 * the request itself is final: success, or the request's own outcome (a
 * failed condition, a bad request). "Not the leader", "did not commit" or
 * silence from later attempts say nothing about the earlier one. */
int client_settles_request(int rc)
{
    return rc != OKV_ENOTLEADER && rc != OKV_EUNAVAILABLE && rc != OKV_ETIMEDOUT &&
           rc != OKV_EUNKNOWN;
}

/*
 * The retry rules. Inside the call's deadline:
 *  - NOT_LEADER: go to the leader it names (or the next node) at once;
 *  - a clean UNAVAILABLE from a server (the write did not apply, e.g. the
 *    leader changed before it committed) or no node reachable: back off
 *    with jitter and try again;
 *  - a read that lost its connection or ran out its attempt's time: try
 *    the next node;
 *  - a write that may have reached a server and got no answer: when the
 *    cluster deduplicates writes (servers_dedup), send the very same request
 *    (same client id and request id) again, to the next node, after a
 *    backoff: the partition applies it at most once and answers a repeat
 *    with the first outcome. Otherwise stop with OKV_EUNKNOWN. A write that
 *    was ambiguous once ends as OKV_EUNKNOWN unless a later attempt settles
 *    it (settles_request).
 */
int client_unary(okv_client *c, enum client_method m, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *resp_desc, int is_write, int timeout_ms,
                 ProtobufCMessage **resp_out, size_t *addr_index_out,
                 const client_route_key *route)
{
    *resp_out = NULL;
    int ms = timeout_ms > 0 ? timeout_ms : c->opts.default_timeout_ms;
    gpr_timespec deadline = deadline_in(ms);
    long routed = client_route_pick(c, route, ms);
    int may_resend = !is_write || atomic_load(&c->servers_dedup);
    grpc_completion_queue *cq = client_cq_get(c);
    size_t idx = routed >= 0 ? (size_t)routed : atomic_load(&c->current) % client_naddrs(c);
    int rc = OKV_EUNAVAILABLE;
    int reached = 0, timed_out = 0, unreachable_in_a_row = 0, ambiguous = 0;
    int mismatch = 0;
    char tls_why[512] = "";
    for (int attempt_no = 0;; attempt_no++) {
        if (attempt_no > 0 && passed(deadline))
            break;
        unsigned conn = atomic_fetch_add(&c->next_conn, 1) % CLIENT_CONNS_PER_NODE;
        /* A node that is down (its channel reconnecting) gets only part of
         * the budget when others could answer instead. */
        int ready = wait_ready(c->channels[idx][conn], cq,
                               client_naddrs(c) > 1 ? attempt_deadline(deadline) : deadline);
        if (ready == 0 && !tls_why[0]) {
            /* Plaintext against TLS (either way) cannot succeed by
             * retrying: say so now rather than at the deadline. */
            int d = client_tls_diagnose(c, idx, tls_why, sizeof tls_why);
            if (d == 1) {
                mismatch = 1;
                rc = client_fail(c, OKV_EUNAVAILABLE, "%s", tls_why);
                break;
            }
            if (d == 0)
                tls_why[0] = '\0';
        }
        if (ready <= 0) {
            /* Nothing was sent: trying another node is safe. */
            timed_out |= ready < 0 && passed(deadline);
            idx = (idx + 1) % client_naddrs(c);
            if (++unreachable_in_a_row >= (int)client_naddrs(c)) {
                if (reached)
                    break;   /* keep the last server's answer */
                rc = client_fail(c, OKV_EUNAVAILABLE,
                                 "cannot connect to %s (is orderkvd running there?%s)",
                                 c->addr_list, client_tls_hint(c));
                if (passed(deadline))
                    break;
                backoff(attempt_no, deadline);
                unreachable_in_a_row = 0;
            }
            continue;
        }
        unreachable_in_a_row = 0;
        call_result res;
        gpr_timespec until = may_resend ? attempt_deadline(deadline) : deadline;
        if (run_call(c, idx, conn, m, req, until, cq, &res) != 0) {
            idx = (idx + 1) % client_naddrs(c);
            continue;
        }
        reached = 1;
        atomic_store(&c->current, idx);
        if (addr_index_out)
            *addr_index_out = idx;
        int had_body = res.body != NULL;
        client_attempt at;
        rc = interpret(c, idx, &res, resp_desc, is_write, resp_out, &at);
        if (rc == OKV_ENOTLEADER) {
            long li = at.leader[0] ? client_node_add(c, at.leader) : -1;
            client_route_learn(c, route, li);
            if (li >= 0 && (size_t)li != idx) {
                idx = (size_t)li;
                continue;
            }
            idx = (idx + 1) % client_naddrs(c);
            backoff(attempt_no, deadline);
            continue;
        }
        if (rc == OKV_EUNAVAILABLE && at.from_server) {
            backoff(attempt_no, deadline);
            idx = (idx + 1) % client_naddrs(c);
            continue;
        }
        if (!is_write && !had_body && (rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT)) {
            idx = (idx + 1) % client_naddrs(c);
            continue;
        }
        if (is_write && rc == OKV_EUNKNOWN && may_resend) {
            ambiguous = 1;
            client_route_learn(c, route, -1);
            backoff(attempt_no, deadline);
            idx = (idx + 1) % client_naddrs(c);
            continue;
        }
        break;
    }
    /* Any replica answers a read: only a write's answer names the leader. */
    if (rc == OKV_OK && route && is_write)
        client_route_learn(c, route, (long)idx);
    if (ambiguous && !client_settles_request(rc)) {
        rc = client_fail(c, OKV_EUNKNOWN,
                         "no answer settled the write within %d ms (sent again with the same "
                         "request id, so it applied at most once); it may or may not have "
                         "applied",
                         ms);
    } else if (!reached && mismatch) {
        /* rc and the message are set */
    } else if (!reached && (tls_why[0] || (tls_pem_on(&c->tls) &&
                                          client_tls_diagnose(c, idx, tls_why, sizeof tls_why)))) {
        /* A TLS client whose handshakes only ever timed out still learns
         * whether the node is up and refusing them. */
        rc = client_fail(c, timed_out ? OKV_ETIMEDOUT : OKV_EUNAVAILABLE,
                         "no node of %s reachable within %d ms; %s", c->addr_list, ms, tls_why);
    } else if (!reached) {
        if (timed_out)
            rc = client_fail(c, OKV_ETIMEDOUT, "no node of %s became reachable within %d ms%s",
                             c->addr_list, ms, client_tls_hint(c));
        else
            rc = client_fail(c, OKV_EUNAVAILABLE,
                             "cannot connect to %s (is orderkvd running there?%s)", c->addr_list,
                             client_tls_hint(c));
    }
    /* Every op started on cq was plucked, so it is idle and reusable. */
    client_cq_put(c, cq);
    return rc;
}
