#!/usr/bin/env python3
"""What one fdatasync after a small append costs on the disk under DIR, for
three ways a log file can get its space (docs/performance.md):
  grow        the append extends the file (its size changes at every sync)
  reserved    fallocate(FALLOC_FL_KEEP_SIZE) first, as RocksDB does for its WAL
  overwrite   the bytes were written (and synced) before: what a recycled WAL sees
usage: scripts/fsync-probe.py [DIR, default .] [SYNCS per mode, default 2000]
"""
import ctypes
import os
import sys
import time

FALLOC_FL_KEEP_SIZE = 1
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def probe(path, mode, n, record=b"x" * 300):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        if mode == "overwrite":
            os.write(fd, b"\0" * (n * len(record) + 4096))
            os.fsync(fd)
            os.lseek(fd, 0, os.SEEK_SET)
        elif mode == "reserved":
            if libc.fallocate(fd, FALLOC_FL_KEEP_SIZE, ctypes.c_long(0),
                              ctypes.c_long(n * len(record) + 4096)) != 0:
                raise OSError(ctypes.get_errno(), "fallocate")
        took = []
        for _ in range(n):
            os.write(fd, record)
            t0 = time.perf_counter()
            os.fdatasync(fd)
            took.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    took.sort()
    print("%-10s p50 %.3f ms  p90 %.3f ms  (%d syncs)"
          % (mode, took[n // 2] * 1e3, took[n * 9 // 10] * 1e3, n))


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    path = os.path.join(d, ".okv-fsync-probe.%d" % os.getpid())
    for mode in ("grow", "reserved", "overwrite", "grow", "reserved", "overwrite"):
        probe(path, mode, n)


if __name__ == "__main__":
    main()
