/*
 * A throw-away authoritative DNS server for `mailca bench --caa`: NSD (Debian package nsd) on a
 * free port of 127.0.0.1 serving one zone, <suffix>, in which each of org0..org<n-1> has
 * `CAA 0 issuemail "<issuer>"` (so every mailbox domain of the generated orders permits the
 * bench CA, SBR 4.2.2.1 / RFC 9495).
 *
 * NSD is stopped by mc_bench_nsd_stop, and also when the process exits (atexit), is stopped by
 * SIGINT/SIGTERM/SIGHUP (the handler stops NSD, then the signal does what it would have done),
 * or dies any other way, SIGKILL included (NSD is started with PR_SET_PDEATHSIG: the kernel
 * sends it SIGTERM when the thread that started it ends). Start it from the main thread.
 */
#ifndef MAILCA_BENCH_NSD_H
#define MAILCA_BENCH_NSD_H

#include "mailca/err.h"

#include <sys/types.h>

#define MC_BENCH_NSD "/usr/sbin/nsd"

typedef struct mc_bench_nsd {
    pid_t pid; /* NSD's process (and process group); 0: not running */
    int port;
    char resolver[64]; /* "127.0.0.1@<port>", for caa.resolvers */
} mc_bench_nsd;

/* Writes nsd.conf and the zone into dir (which must exist) and starts NSD; returns when it
 * answers. Only one server per process. Errors: MC_ERR_UNSUPPORTED (nsd is not installed),
 * MC_ERR_IO (it did not start: err says why, with its log). */
mc_err mc_bench_nsd_start(const char *dir, const char *suffix, unsigned n_domains,
                          const char *issuer, mc_bench_nsd *out, mc_errdetail *err);

/* Stops NSD and its helper processes (its whole process group) and waits for it. Idempotent. */
void mc_bench_nsd_stop(mc_bench_nsd *n);

#endif
