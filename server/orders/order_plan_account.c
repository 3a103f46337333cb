/*
 * order_plan_account.c — accounts: creating one and depositing into it.
 *
 * An account is two keys in one partition: "<id>/meta" (the Account record)
 * and "<id>" (the balance counter). Keeping the balance a bare counter is
 * what lets a payment debit it with `add -amount floor 0`, checked at apply,
 * instead of a read-modify-write that would need the record's version.
 * Accounts are never deleted, so planners that read the meta do not put a
 * condition on it.
 */
#include <string.h>

#include "order_money.h"
#include "order_plan_int.h"
#include "order_schema.h"

static int has(const char *s) { return s && *s; }

int ord_plan_create_account(ord_plan **out, const ord_account_in *in, ord_error *err)
{
    const Orderkv__V1__CreateAccountRequest *r = in->req;
    *out = NULL;
    int rc = ord_id_check("account id", r->account_id, err);
    if (rc == 0)
        rc = ord_currency_check(r->currency, err);
    if (rc == 0)
        rc = plan_text_check("owner", r->owner, ORD_TEXT_MAX, err);
    if (rc)
        return rc;
    const char *owner = has(r->owner) ? r->owner : "";
    Orderkv__V1__CreateAccountResponse resp;
    orderkv__v1__create_account_response__init(&resp);
    const Orderkv__V1__Account *ex = in->existing;
    if (ex) {
        /* The same account asked for again (a resend): it is there. */
        if (strcmp(ex->currency, r->currency) == 0 && strcmp(ex->owner, owner) == 0) {
            resp.account = (Orderkv__V1__Account *)ex;
            return plan_answer(out, &resp.base, err);
        }
        return ord_error_set(err, ORD_R(ALREADY_EXISTS),
                             "account %s exists with currency %s and owner '%s'", r->account_id,
                             ex->currency, ex->owner);
    }
    Orderkv__V1__Account a;
    orderkv__v1__account__init(&a);
    a.account_id = r->account_id;
    a.currency = r->currency;
    a.owner = (char *)owner;
    a.created_at_ms = in->now_ms;
    a.schema_version = ORD_SCHEMA_VERSION;
    resp.account = &a;

    ord_plan *p = plan_new();
    if (!p)
        return plan_finish(out, NULL, err);
    plan_respond(p, &resp.base);
    ord_key meta, bal;
    ord_key_account(&meta, r->account_id, NULL);
    ord_key_balance(&bal, r->account_id, NULL);
    plan_absent(p, ORD_TABLE_ACCOUNTS, &meta);
    plan_put_msg(p, ORD_TABLE_ACCOUNTS, &meta, &a.base);
    /* add 0: creates the counter at 0 without overwriting one (a put would). */
    plan_add(p, ORD_TABLE_ACCOUNTS, &bal, 0, 0, 0, ORD_FAIL_RETRY);
    return plan_finish(out, p, err);
}

int ord_plan_deposit(ord_plan **out, const ord_deposit_in *in, ord_error *err)
{
    const Orderkv__V1__DepositRequest *r = in->req;
    *out = NULL;
    int rc = ord_id_check("account id", r->account_id, err);
    if (rc == 0 && has(r->idempotency_key))
        rc = ord_idem_key_check(r->idempotency_key, err);
    if (rc)
        return rc;
    if (r->amount <= 0)
        return ord_error_set(err, ORD_R(INVALID), "a deposit's amount must be > 0");
    int has_key = has(r->idempotency_key);
    ord_hash128 h = { 0, 0 };
    if (has_key) {
        h = ord_idem_hash_deposit(r);
        rc = plan_try_replay(out, in->idem, ORD_IDEM_DEPOSIT, h, err);
        if (rc)
            return rc > 0 ? 0 : rc;
    }
    if (!in->account)
        return ord_error_set(err, ORD_R(NOT_FOUND), "account %s does not exist", r->account_id);

    ord_plan *p = plan_new();
    if (!p)
        return plan_finish(out, NULL, err);
    memcpy(p->currency, in->account->currency, strnlen(in->account->currency, 3));
    Orderkv__V1__DepositResponse resp;
    orderkv__v1__deposit_response__init(&resp);
    resp.account = (Orderkv__V1__Account *)in->account;
    resp.amount = r->amount;
    plan_respond(p, &resp.base);
    ord_key bal, idem;
    ord_key_balance(&bal, r->account_id, NULL);
    plan_add(p, ORD_TABLE_ACCOUNTS, &bal, r->amount, 0, 0, ORD_FAIL_RETRY);
    if (has_key) {
        ord_key_idem(&idem, ORD_IDEM_DEPOSIT, r->account_id, r->idempotency_key, NULL);
        plan_idem(p, &idem, ORD_IDEM_DEPOSIT, h, in->now_ms);
    }
    return plan_finish(out, p, err);
}
