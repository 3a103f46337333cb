#!/usr/bin/env python3
"""Where a replicated put's time goes, stage by stage, from the TR lines of
a cluster of orderkvd built with -DORDERKV_TRACE=ON and run with
ORDERKV_TRACE=1 (common/trace.h; scripts/trace-put.sh runs the whole thing).

usage: scripts/trace-put.py NODE_LOG...

For each entry a leader proposed (one put at 1 in flight), the stages are
taken in the order they happen: the leader's loop picks the proposal up,
starts the write and sends the entry; the first follower to answer gets
it, wakes, syncs and answers; the leader gets the answer, wakes and
applies. Each line is a distribution over the entries (microseconds).
"""
import statistics
import sys
from collections import defaultdict


def read(paths):
    first = {}                   # (node, event, entry) -> (queued, now)
    many = defaultdict(list)     # (event, entry) -> [(node, queued, now)]
    for path in paths:
        with open(path, errors="replace") as f:
            for line in f:
                if not line.startswith("TR "):
                    continue
                parts = line.split()
                if len(parts) != 6:
                    continue
                _, node, ev, entry, queued, now = parts
                rec = (int(queued), int(now))
                if ev in ("recv_append", "recv_ack"):
                    many[(ev, entry)].append((node,) + rec)
                else:
                    first.setdefault((node, ev, entry), rec)
    return first, many


STAGES = [
    ("leader loop wakes for the proposal", "queued -> propose"),
    ("proposal to entry sent and written", "propose -> append"),
    ("leader's own synced write", "append -> synced"),
    ("entry travels to a follower", "append -> recv_append queued"),
    ("follower loop wakes", "queued -> recv_append"),
    ("follower steps and syncs", "recv_append -> synced"),
    ("follower hands its answer over", "synced -> answered"),
    ("answer travels to the leader", "answered -> recv_ack queued"),
    ("leader loop wakes for the answer", "queued -> recv_ack"),
    ("answer to entry applied", "max(synced, recv_ack) -> applied"),
    ("TOTAL proposal queued to applied", ""),
]


def stages(first, many):
    out = defaultdict(list)
    for (node, ev, entry), (queued, propose) in first.items():
        if ev != "propose":
            continue
        leader = node
        get = lambda n, e: first.get((n, e, entry), (0, None))[1]
        append, synced, applied = get(leader, "append"), get(leader, "synced"), get(leader, "applied")
        if None in (append, synced, applied):
            continue
        # The first follower to answer decides the commit (3 nodes).
        fols = []
        for fnode, fq, fh in many.get(("recv_append", entry), []):
            fs, fa = get(fnode, "synced"), get(fnode, "answered")
            if fnode != leader and fs is not None and fa is not None:
                fols.append((fa, fnode, fq, fh, fs))
        if not fols:
            continue
        fa, fnode, fq, fh, fs = min(fols)
        acks = [(q, h) for n, q, h in many.get(("recv_ack", entry), []) if q >= fa]
        if not acks:
            continue
        aq, ah = min(acks)
        vals = [propose - queued, append - propose, synced - append, fq - append, fh - fq,
                fs - fh, fa - fs, aq - fa, ah - aq, applied - max(synced, ah), applied - queued]
        for (name, _), v in zip(STAGES, vals):
            out[name].append(v / 1000.0)
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = stages(*read(sys.argv[1:]))
    n = len(out.get(STAGES[-1][0], []))
    if n == 0:
        sys.exit("trace-put.py: no complete put in the logs (a build with -DORDERKV_TRACE=ON, "
                 "run with ORDERKV_TRACE=1?)")
    print("%-38s %-34s %8s %8s %8s" % ("stage (%d entries)" % n, "between", "p50 us", "mean",
                                        "p90"))
    for name, between in STAGES:
        v = sorted(out[name])
        print("%-38s %-34s %8.1f %8.1f %8.1f" % (name, between, v[len(v) // 2],
                                                 statistics.mean(v), v[len(v) * 9 // 10]))


if __name__ == "__main__":
    main()
