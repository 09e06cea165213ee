/*
 * Subcommands of the mailca binary that live outside engine/main.c (bench/ and tools).
 */
#ifndef MAILCA_CLI_H
#define MAILCA_CLI_H

#include "mailca/alg.h"
#include "mailca/err.h"

#include <stdint.h>
#include <stdio.h>

/* `mailca bench`: see bench/bench.c. */
int mc_bench_main(int argc, char **argv);

/* Writes n bench/demo orders (msgpack stream) for the given subscriber key type, with CSRs from
 * a pool of pool_size keys generated in software. id_prefix makes order ids unique per run. */
mc_err mc_orders_generate(FILE *out, uint64_t n, mc_keytype kt, unsigned rsa_bits,
                          const char *profile, const char *usage, const char *id_prefix,
                          unsigned pool_size, mc_errdetail *err);

/* Parses "p256", "p384", "p521", "ed25519", "rsa2048", "rsa3072", "rsa4096". */
int mc_keyspec_parse(const char *s, mc_keytype *kt, unsigned *rsa_bits);

#endif
