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

/* `mailca status`: see engine/status.c. */
int mc_status_main(int argc, char **argv);

/* How generated orders carry the subscriber key (docs/orders.md). */
typedef enum mc_key_form {
    MC_KEY_FORM_CSR = 0,    /* PKCS#10 CSR: proof of possession verified per order */
    MC_KEY_FORM_PUBLIC_KEY, /* SubjectPublicKeyInfo with an attested key_source */
} mc_key_form;

/* Writes n bench/demo orders (msgpack stream) for the given subscriber key type, with keys from
 * a pool of pool_size keys generated in software. id_prefix makes order ids unique per run. */
mc_err mc_orders_generate(FILE *out, uint64_t n, mc_keytype kt, unsigned rsa_bits, mc_key_form form,
                          const char *profile, const char *usage, const char *id_prefix,
                          unsigned pool_size, mc_errdetail *err);

/* mc_orders_generate with the mailbox of order i at org<i mod n_domains>.<domain_suffix>
 * (user<i>@...), so a run of n orders covers min(n, n_domains) domains. domain_suffix: LDH
 * labels, no trailing dot. Errors: MC_ERR_INVALID (field "domains") for n_domains 0 or a bad
 * suffix, MC_ERR_NOMEM, MC_ERR_CRYPTO, MC_ERR_IO. Nothing to free. */
#define MC_ORDERS_DOMAINS_DEFAULT 20
#define MC_ORDERS_SUFFIX_DEFAULT "example.com"
mc_err mc_orders_generate_domains(FILE *out, uint64_t n, mc_keytype kt, unsigned rsa_bits,
                                  mc_key_form form, const char *profile, const char *usage,
                                  const char *id_prefix, unsigned pool_size, unsigned n_domains,
                                  const char *domain_suffix, mc_errdetail *err);

/* Writes "<tag>-<16 random hex digits>" into buf: order ids unique across runs, so that two
 * generated files never share (and so silently replay) an order id. */
void mc_orders_id_prefix(char *buf, size_t len, const char *tag);

/* Parses "p256", "p384", "p521", "ed25519", "ed448", "rsa2048", "rsa3072", "rsa4096". */
int mc_keyspec_parse(const char *s, mc_keytype *kt, unsigned *rsa_bits);

/* An issuing key: "p256", "p384", "ed25519", "rsa2048".."rsa8192" (RSA PKCS#1 v1.5 SHA-256), or
 * "rsa2048-pss".. (RSASSA-PSS SHA-256, SBR 7.1.3.2.1). *sig: MC_SIG_NONE for the key's default
 * algorithm, else the one the spec names. Returns 1, or 0 for anything else. */
int mc_issuer_keyspec_parse(const char *s, mc_keytype *kt, unsigned *rsa_bits, mc_sigalg *sig);

#endif
