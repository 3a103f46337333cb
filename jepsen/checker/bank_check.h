/*
 * bank_check.h — the bank workload: transfers between accounts never
 * create, destroy or overdraw money.
 *
 * Workload ("bank"): N accounts, each a counter holding `initial` at the
 * start; a transfer moves an amount from one account to another in ONE
 * transaction (a debit with a floor of 0 and a credit), so the sum of all
 * balances never changes. Ops:
 *   f "init", value [N, initial]: the accounts were created (before any
 *     other op; its ok completion is what the checker needs: N and the total
 *     N * initial). Several ok inits must agree.
 *   f "transfer", value [from, to, amount]: accounts in [0, N), counted by
 *     outcome only; the invariant holds whatever their outcomes are.
 *   f "read", invoke value null, ok value [[account, balance], ...]: one
 *     consistent snapshot of every account. account is an integer in
 *     [0, N) (anything else: a key that is not an account); balance an
 *     integer (a counter), anything else a value that is not a counter.
 *
 * Rules, for every ok read:
 *   - missing-account: one of the N accounts is not listed;
 *   - unexpected-account: an entry that is not one of the N accounts, or an
 *     account listed twice;
 *   - bad-value: a balance that is not an 8-byte counter;
 *   - negative-balance: a balance below 0 (every debit has a floor of 0);
 *   - wrong-total: every account is present with a counter, but the sum is
 *     not N * initial: money was created or destroyed, e.g. a transaction
 *     applied in part.
 * Counts are of reads (examples: the reads' invoke indices). Valid iff no
 * read shows any of them; unknown if the history has no ok read.
 */
#ifndef OKV_JEPSEN_BANK_CHECK_H
#define OKV_JEPSEN_BANK_CHECK_H

#include "errors.h"
#include "history.h"
#include "result.h"

/* The most accounts an init may declare: the checker keeps a few words per
 * account, and okv-jepsen creates at most 256. */
#define BANK_CHECK_MAX_ACCOUNTS 100000

/* Checks h as a bank history; *out is the caller's (check_result_free).
 * Errors: OKV_EINVAL (an op that does not follow the workload's format, no
 * ok init, or inits that disagree; err names the op), OKV_ENOMEM. */
int bank_check(check_result **out, const history *h, okv_error *err);

#endif
