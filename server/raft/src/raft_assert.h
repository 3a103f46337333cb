/*
 * raft_assert.h — the always-on assertion of the raft core.
 *
 * Unlike assert(3) this is never compiled out: a raft invariant that does not
 * hold means replicated state may already be wrong, and continuing would turn
 * a crash into silent divergence. The message names the file, line and the
 * failed expression; it is the only output the core ever writes itself.
 */
#ifndef ORDERKV_RAFT_ASSERT_H
#define ORDERKV_RAFT_ASSERT_H

void raft_assert_fail(const char *expr, const char *file, int line)
#if defined(__GNUC__)
    __attribute__((noreturn))
#endif
    ;

#define raft_assert(expr)                                                    \
    ((expr) ? (void)0 : raft_assert_fail(#expr, __FILE__, __LINE__))

#endif /* ORDERKV_RAFT_ASSERT_H */
