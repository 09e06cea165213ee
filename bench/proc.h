/*
 * The child-process plumbing `mailca bench` (bench/bench.c) and `mailca bench --ct`
 * (bench/ctbench.c) share: each phase that touches PKCS#11 runs in a process of its own (the
 * module is initialised fresh there; PKCS#11 forbids using it across fork) and hands its report
 * back through a pipe; plus the monotonic clock and the bench's state folder.
 */
#ifndef MAILCA_BENCH_PROC_H
#define MAILCA_BENCH_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* Seconds on the monotonic clock. */
double bench_now_s(void);

/* What a phase in a child process does: fills out (len bytes, zeroed) from arg. */
typedef void (*bench_proc_fn)(const void *arg, void *out);

/* A child process started by bench_proc_start, finished by bench_proc_finish. */
typedef struct bench_proc {
    pid_t pid;
    int fd; /* read end of the pipe the child's out comes through */
} bench_proc;

/* Forks a child (killed when the bench dies) that runs fn(arg, out) on a zeroed out of len
 * bytes and writes it back. 0, or -1 when no child could be started (nothing to finish). */
int bench_proc_start(bench_proc *p, bench_proc_fn fn, const void *arg, size_t len);

/* Reads the child's out into out (len bytes) and reaps it. 0 when the child delivered out, -1
 * when it died first (*status: its wait status). maxrss_kb (may be NULL) gets its peak RSS. */
int bench_proc_finish(bench_proc *p, void *out, size_t len, int *status, long *maxrss_kb);

/* bench_proc_start then bench_proc_finish, out zeroed first: 0 when the child delivered out, -1
 * when no child could be started, -2 when it died first (*status: its wait status). */
int bench_proc_run(bench_proc_fn fn, const void *arg, void *out, size_t len, int *status,
                   long *maxrss_kb);

/* When dir (cap bytes) is empty, names a fresh folder /tmp/mailca-bench-XXXXXX in it and leaves
 * it uncreated (mc_ca_init creates it): 1 when it named one, 0 when dir was given, -1 on failure
 * (reported on stderr). */
int bench_dir_make(char *dir, size_t cap);

/* Removes dir and everything below it. */
void bench_dir_remove(const char *dir);

#endif
