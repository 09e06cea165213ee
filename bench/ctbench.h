/*
 * `mailca bench --ct` (bench/ctbench.c): CT sink submissions/sec against RFC 6962 logs on
 * 127.0.0.1 (bench/ctlog.c) that the bench starts and stops itself, compared with the engine's
 * signing rate measured in the same run.
 */
#ifndef MAILCA_BENCH_CTBENCH_H
#define MAILCA_BENCH_CTBENCH_H

/* 1 when argv holds --ct (mc_bench_main then hands the whole command line to mc_bench_ct_main). */
int mc_bench_ct_wanted(int argc, char **argv);

/* The --ct mode: parses its own options (--ct, --orders N, --logs K, --workers N,
 * --per-log-in-flight M, --dir DIR, --keep). Exit status: 0 when every certificate got a
 * verified SCT from every log, 1 otherwise, 2 on bad options. */
int mc_bench_ct_main(int argc, char **argv);

/* Usage lines of the --ct mode (part of `mailca bench --help`). */
#define MC_BENCH_CT_USAGE                                                                          \
    "       mailca bench --ct [--orders N] [--logs K] [--per-log-in-flight M] [--workers N]\n"     \
    "                    [--dir DIR] [--keep]\n"                                                   \
    "  --ct: the engine issues N certificates (default 20000), then the CT sink submits each to\n" \
    "        K local RFC 6962 logs (default 1) and verifies every SCT: submissions/s and their\n"  \
    "        ratio to the engine's certs/s\n"

#endif
