/* Child processes, clock and state folder of the benches (bench/proc.h). */
#include "proc.h"

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bench_proc_start(bench_proc *p, bench_proc_fn fn, const void *arg, size_t len)
{
    int fds[2];
    fflush(NULL); /* nothing buffered is written twice */
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no run goes on when the bench is gone */
        void *mine = calloc(1, len);
        if (!mine)
            _exit(1);
        fn(arg, mine);
        ssize_t w = write(fds[1], mine, len);
        _exit(w == (ssize_t)len ? 0 : 1);
    }
    close(fds[1]);
    p->pid = pid;
    p->fd = fds[0];
    return 0;
}

int bench_proc_finish(bench_proc *p, void *out, size_t len, int *status, long *maxrss_kb)
{
    ssize_t got = read(p->fd, out, len);
    close(p->fd);
    *status = 0;
    struct rusage ru;
    if (wait4(p->pid, status, 0, &ru) < 0 || got != (ssize_t)len)
        return -1;
    if (maxrss_kb)
        *maxrss_kb = ru.ru_maxrss;
    return 0;
}

int bench_proc_run(bench_proc_fn fn, const void *arg, void *out, size_t len, int *status,
                   long *maxrss_kb)
{
    bench_proc p;
    memset(out, 0, len);
    *status = 0;
    if (bench_proc_start(&p, fn, arg, len) != 0)
        return -1;
    return bench_proc_finish(&p, out, len, status, maxrss_kb) != 0 ? -2 : 0;
}

int bench_dir_make(char *dir, size_t cap)
{
    if (dir[0])
        return 0;
    snprintf(dir, cap, "/tmp/mailca-bench-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mailca bench: mkdtemp");
        return -1;
    }
    rmdir(dir); /* mc_ca_init creates it */
    return 1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void bench_dir_remove(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
