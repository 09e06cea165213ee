/*
 * What the phases of `mailca bench` (bench/bench.c) and `mailca bench --ct` (bench/ctbench.c)
 * share beyond the child-process plumbing (bench/proc.h): a phase run in a child process with
 * its verdict read from its report, the orders file written in set-up, the config loaded from
 * the bench's state folder, and one engine run over one orders file.
 */
#ifndef MAILCA_BENCH_PHASE_H
#define MAILCA_BENCH_PHASE_H

#include "proc.h"

#include "mailca/cli.h"
#include "mailca/config.h"
#include "mailca/engine.h"

#include <stddef.h>
#include <stdint.h>

/* Runs fn(arg, out) in a child process (bench_proc_run: out, len bytes, zeroed first) and reads
 * the verdict of the report it filled: ok and err (errcap bytes) point into out. When the child
 * died first, err says so and *ok is set to 0. maxrss_kb (may be NULL, may point into out): the
 * child's peak RSS when it delivered out. 0 when *ok, -1 otherwise. */
int bench_phase_in_child(bench_proc_fn fn, const void *arg, void *out, size_t len, int *ok,
                         char *err, size_t errcap, long *maxrss_kb);

/* Writes n generated orders to the file path (created or truncated): mc_orders_generate_domains
 * for the mailbox-strict profile, usage signing, a pool of 256 subscriber keys of kt (rsa_bits),
 * mailboxes over n_domains domains org<k>.<suffix>, order ids "<tag>-<16 random hex digits>". */
mc_err bench_orders_write(const char *path, const char *tag, uint64_t n, mc_keytype kt,
                          unsigned rsa_bits, mc_key_form form, unsigned n_domains,
                          const char *suffix, mc_errdetail *err);

/* Loads <dir>/mailca.yaml (the config mc_ca_init wrote) into cfg, then the environment's
 * overrides (mc_config_apply_env). */
mc_err bench_config_load(const char *dir, mc_config *cfg, mc_errdetail *err);

/* Runs eng over the orders file in (its size feeds the ETA), the results into the file out
 * (created or truncated); both are opened and closed here. st: the run's figures. */
mc_err bench_engine_run_file(mc_engine *eng, const char *in, const char *out, mc_run_stats *st,
                             mc_errdetail *err);

#endif
