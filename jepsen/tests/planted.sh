#!/usr/bin/env bash
# jepsen/tests/planted.sh FAILPOINT_BUILD_DIR — the suite must catch the
# bugs planted in orderkvd (a build configured with -DORDERKV_FAILPOINTS=ON).
# For each bug: run the workload x nemesis that exposes it with the bug
# switched on through ORDERKV_FAILPOINTS, and require the checker to say
# invalid with the expected anomaly in its explanation. A bug that is only
# hit by chance gets up to ATTEMPTS runs. Needs root; exits 77 without it.
#
#   kv.read.local             register x partition-leader, clients pinned to
#                             one node each (--pin-nodes): stale reads (the
#                             clients of the cut node read its old state; a
#                             follower's own lag is too short since commit-
#                             only hard states skip the fsync)
#   kv.ack.before_commit      set x partition-leader: acknowledged adds lost
#   lease.never_ends          register x partition-leader, pinned clients
#                             (--pin-nodes, as kv.read.local), every register
#                             in one partition whose leader the nemesis cuts
#                             (--register-layout one-partition): the clients
#                             pinned to the deposed leader read every key
#                             from it under its lease while the others write
#                             through the new leader, at every cut
#   fsm.dedup.skip + kv.reply.drop=30%
#                             register x none: a retried write applied twice
#   txn.partial               bank x none, one-partition layout (the bug is
#                             in one-partition evaluation; 2PC shares hold one
#                             write each): a transfer stopped by its debit's
#                             floor still applies its credit when the credit
#                             came first: money appears (wrong-total)
#   tpc.resolve.drop_commit   bank x none, spread layout (the default): a
#                             participant that is not the coordinator releases
#                             its locks on COMMIT but drops its writes, so a
#                             transfer across partitions applies one of its
#                             two adds: money appears or vanishes (wrong-total)
#   txn.check.ignore_locks    bank x none, spread layout: a read-only
#                             transaction's per-partition check passes over a
#                             key a committed transfer holds but has not yet
#                             resolved there, so a read mixes the old value of
#                             one account with the new of another (wrong-total)
#   txn.range.ignore          bank x none, spread layout, --bank-read scan: the
#                             read's okv_tx_scan covers every partition, each
#                             read at its own moment, and its per-partition
#                             range checks at commit always pass, so a
#                             transfer between two partitions read apart
#                             shows half done (wrong-total)
#   tpc.locks.skip_shared     list-append x none: PREPARE takes no shared lock on
#                             the keys a transaction only read, so two
#                             transactions that each read the key the other
#                             appends to both commit: write skew (G2, or
#                             G-single)
#   tpc.locks.shared_admits_writer
#                             list-append x none: a writer joins the readers
#                             sharing a key, so [r A] [append B] and [r B]
#                             [append A] across two partitions both commit
#                             whenever each read came first at its key: write
#                             skew (G2, or G-single)
#   tpc.driver.answer_early   list-append x none: the coordinator answers
#                             "committed" before its own vote applies, and the
#                             vote may still be refused: acknowledged appends
#                             never appear (lost-append)
#   kv.read.ignore_intents    list-append x none: a linearizable get reads past
#                             the lock of a transaction committed at its
#                             coordinator but not yet resolved here: a stale
#                             read after the commit was acknowledged
#                             (G-single-realtime; any G class counts)
#   tpc.prepare.ignore_tombstone + tpc.driver.slow_vote=20%
#                             list-append x none: the coordinator's own vote
#                             ignores the ABORTED record a client's settling
#                             okv_tx_status wrote. slow_vote holds a fifth of
#                             the votes past the client's call deadline (not
#                             past the transaction's), the runner settles the
#                             unknown commit as aborted, and the late vote
#                             commits it anyway: a split decision, read as an
#                             aborted read (G1a)
#   orders.idem.skip          orders x none: the idempotency record's "absent"
#                             condition left out, so copies of one keyed
#                             request sent at once (the workload's bursts)
#                             both apply: two orders or reservations for one
#                             key (key-two-effects; a deposit counted twice
#                             shows as account-mismatch too)
#   orders.reserve.no_floor   orders x none: stock taken without its floor;
#                             the hot skus sell out within seconds, and then
#                             every take drives them below 0 (oversell)
#   orders.transition.any     orders x none: the status check skipped; the
#                             workload ships, completes, cancels and pays
#                             orders whatever their status (illegal-state or
#                             illegal-transition; paid-twice comes with them)
#   orders.refund.no_limit    orders x none: a refund beyond what is left is
#                             let through (over-refund)
# and three controls that must stay valid, so the dedup case is the dedup bug
# and not the runner misreading dropped replies, the tombstone case is the
# bug and not the runner's settling of unknown commits, and the orders
# checker does not cry wolf on lost answers:
#   kv.reply.drop=30% alone   register x none: valid
#   tpc.driver.slow_vote      list-append x none with slow_vote=20% alone: valid
#                             (the settling of unknown commits is sound)
#   orders.reply.drop         orders x none with kv.reply.drop=30%: valid (the
#                             service's own writes lose their answers; its
#                             retries and the keyed resends must still add up)
#
# OKV_PLANTED_ONLY=NAME runs one case (its first failpoint name);
# OKV_PLANTED_TIME=S changes the run time (default 30).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 FAILPOINT_BUILD_DIR" >&2; exit 2; }
build="$(cd "$1" && pwd)"
jepsen="$(cd "$(dirname "$0")/.." && pwd)"
ATTEMPTS=8
time_s="${OKV_PLANTED_TIME:-30}"

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: the Jepsen tests need root (network namespaces)"
  exit 77
fi
if ! unshare -n true 2>/dev/null; then
  echo "SKIP: cannot create network namespaces here"
  exit 77
fi
if ! grep -q '^ORDERKV_FAILPOINTS:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "planted.sh: $build is not a failpoints build (cmake -DORDERKV_FAILPOINTS=ON)" >&2
  exit 1
fi

# name | expected verdict | workload | nemesis | ORDERKV_FAILPOINTS | anomaly
# (an ERE that check.txt must match; no '|' in it, the field separator:
# "^G[-2][a-z]*: " is G2 or G-single) | okv-jepsen arguments (optional)
CASES=(
  "kv.read.local|invalid|register|partition-leader|kv.read.local=on|not linearizable|--pin-nodes"
  "kv.ack.before_commit|invalid|set|partition-leader|kv.ack.before_commit=on|lost"
  "lease.never_ends|invalid|register|partition-leader|lease.never_ends=on|not linearizable|--pin-nodes --register-layout one-partition"
  "fsm.dedup.skip|invalid|register|none|fsm.dedup.skip=on;kv.reply.drop=30%|not linearizable"
  "txn.partial|invalid|bank|none|txn.partial=on|^wrong-total: |--bank-layout one-partition"
  "tpc.resolve.drop_commit|invalid|bank|none|tpc.resolve.drop_commit=on|^wrong-total: |--bank-layout spread"
  "txn.check.ignore_locks|invalid|bank|none|txn.check.ignore_locks=on|^wrong-total: |--bank-layout spread"
  "txn.range.ignore|invalid|bank|none|txn.range.ignore=on|^wrong-total: |--bank-layout spread --bank-read scan"
  "tpc.locks.skip_shared|invalid|list-append|none|tpc.locks.skip_shared=on|^G[-2][a-z]*: "
  "tpc.locks.shared_admits_writer|invalid|list-append|none|tpc.locks.shared_admits_writer=on|^G[-2][a-z]*: "
  "tpc.driver.answer_early|invalid|list-append|none|tpc.driver.answer_early=on|^lost-append: "
  "kv.read.ignore_intents|invalid|list-append|none|kv.read.ignore_intents=on|^G[-0-9a-z]*: "
  "tpc.prepare.ignore_tombstone|invalid|list-append|none|tpc.prepare.ignore_tombstone=on;tpc.driver.slow_vote=20%|^G1a: "
  "orders.idem.skip|invalid|orders|none|orders.idem.skip=on|^key-two-effects: "
  "orders.reserve.no_floor|invalid|orders|none|orders.reserve.no_floor=on|^oversell: "
  "orders.transition.any|invalid|orders|none|orders.transition.any=on|^illegal-[a-z]*: "
  "orders.refund.no_limit|invalid|orders|none|orders.refund.no_limit=on|^over-refund: "
  "kv.reply.drop|valid|register|none|kv.reply.drop=30%|linearizable-register: valid"
  "tpc.driver.slow_vote|valid|list-append|none|tpc.driver.slow_vote=20%|^checker list-append: valid"
  "orders.reply.drop|valid|orders|none|kv.reply.drop=30%|checker orders: valid"
)

out="$(mktemp -d "${TMPDIR:-/tmp}/okvj-planted-XXXXXX")"
failed=0
for c in "${CASES[@]}"; do
  IFS='|' read -r name expect w n fp anomaly rargs <<<"$c"
  if [ -n "${OKV_PLANTED_ONLY:-}" ] && [ "$OKV_PLANTED_ONLY" != "$name" ]; then continue; fi
  # A bug may need luck to show; a control gets one run, which must be valid.
  tries=$ATTEMPTS
  [ "$expect" = invalid ] || tries=1
  caught=0
  for attempt in $(seq 1 "$tries"); do
    dir="$out/$name-$attempt"
    rc=0
    "$jepsen/run" --workload "$w" --nemesis "$n" --time "$time_s" --nemesis-interval 5 \
      --tick-ms 50 --build "$build" --out "$dir" --env "ORDERKV_FAILPOINTS=$fp" \
      --expect "$expect" --time-limit-s 120 ${rargs:+--runner-args "$rargs"} || rc=$?
    if [ "$rc" = 0 ] && grep -Eq "$anomaly" "$dir/check.txt"; then
      echo "planted $name: $expect as expected (attempt $attempt): $(grep -m1 '^checker' "$dir/check.txt")"
      caught=1
      break
    fi
    echo "planted $name: attempt $attempt did not give $expect with /$anomaly/ (exit $rc; $dir)"
  done
  [ "$caught" = 1 ] || { echo "planted $name: NOT $expect in $tries run(s)"; failed=1; }
done
if [ "$failed" = 0 ]; then rm -rf "$out"; else echo "run directories kept in $out"; fi
exit "$failed"
