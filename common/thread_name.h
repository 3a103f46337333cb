/*
 * thread_name.h — names the calling thread (top -H, perf, gdb show it).
 */
#ifndef OKV_THREAD_NAME_H
#define OKV_THREAD_NAME_H

/* At most 15 bytes are kept (the kernel's limit). */
void okv_thread_name(const char *name);

#endif
