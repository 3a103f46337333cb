/*
 * client_unary_async.c — an op as one unary call, on the completion
 * thread's queue: how the asynchronous core talks to a node that predates
 * the batched stream (it answers KV.Batch with UNIMPLEMENTED), so a newer
 * client keeps working during a rolling upgrade.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

#include "client_async.h"

typedef struct ucall {
    client_tag t;                    /* first: the queue hands back &t */
    client_op *op;
    grpc_call *call;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array md, trailers;
    grpc_status_code status;
    grpc_slice details;
} ucall;

static void ucall_free(ucall *u)
{
    if (u->send)
        grpc_byte_buffer_destroy(u->send);
    if (u->recv)
        grpc_byte_buffer_destroy(u->recv);
    grpc_metadata_array_destroy(&u->md);
    grpc_metadata_array_destroy(&u->trailers);
    grpc_slice_unref(u->details);
    if (u->call)
        grpc_call_unref(u->call);
    free(u);
}

static void on_done(client_tag *t, int ok)
{
    (void)ok;   /* the status says what happened */
    ucall *u = (ucall *)t;
    client_op *op = u->op;
    grpc_slice body = grpc_empty_slice();
    int has_body = 0;
    if (u->recv) {
        grpc_byte_buffer_reader r;
        if (grpc_byte_buffer_reader_init(&r, u->recv)) {
            body = grpc_byte_buffer_reader_readall(&r);
            grpc_byte_buffer_reader_destroy(&r);
            has_body = 1;
        }
    }
    char *details = grpc_slice_to_c_string(u->details);
    client_answer ans = { u->status, details, GRPC_SLICE_START_PTR(body), GRPC_SLICE_LENGTH(body),
                          has_body };
    client_op_answered(op, &ans);
    gpr_free(details);
    grpc_slice_unref(body);
    ucall_free(u);
}

int client_unary_start(okv_client *c, size_t idx, client_op *op)
{
    unsigned conn = atomic_fetch_add(&c->next_conn, 1) % CLIENT_CONNS_PER_NODE;
    grpc_channel *ch = c->channels[idx][conn];
    /* As client_unary's wait_ready: nothing is sent on a channel that is
     * not connected, so the caller may try another node. */
    if (grpc_channel_check_connectivity_state(ch, 1) != GRPC_CHANNEL_READY)
        return -1;
    ucall *u = calloc(1, sizeof *u);
    if (!u)
        return -1;
    u->t.fn = on_done;
    u->op = op;
    u->details = grpc_empty_slice();
    grpc_metadata_array_init(&u->md);
    grpc_metadata_array_init(&u->trailers);
    int64_t ms = op->sent_deadline_ms - client_now_ms();
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(ms > 0 ? ms : 0, GPR_TIMESPAN));
    u->call = grpc_channel_create_registered_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->async_cq,
                                                  c->methods[idx][conn][op->m], deadline, NULL);
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)op->req, op->req_len);
    u->send = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    client_auth_md(c, &ops[0]);
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = u->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;   /* GRPC-CORE-NOTES pitfall 2 */
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &u->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &u->trailers;
    ops[5].data.recv_status_on_client.status = &u->status;
    ops[5].data.recv_status_on_client.status_details = &u->details;
    op->stream = NULL;
    op->sent = 1;
    if (grpc_call_start_batch(u->call, ops, 6, &u->t, NULL) != GRPC_CALL_OK) {
        ucall_free(u);
        return -1;
    }
    return 0;
}
