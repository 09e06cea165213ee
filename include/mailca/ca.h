/*
 * mc_ca: provisioning of a ready CA on the embedded default (`mailca init`): a SoftHSM2 token in
 * a private state folder (its own softhsm2.conf, never the system one), a root key and an S/MIME
 * issuing-CA key generated inside the token (non-extractable), the root certificate
 * (SBR 7.1.2.1) and the issuing-CA certificate (SBR 7.1.2.2) signed through the HSM, the PIN in a
 * mode-0600 file, and a config file. Cold path: runs once.
 */
#ifndef MAILCA_CA_H
#define MAILCA_CA_H

#include "mailca/alg.h"
#include "mailca/err.h"

typedef struct mc_ca_init_opts {
    const char *dir;    /* state folder to create (must not hold a CA already) */
    const char *module; /* PKCS#11 module; NULL = SoftHSM2 */
    mc_keytype keytype; /* issuing key: MC_KEY_P256, MC_KEY_P384, MC_KEY_RSA or MC_KEY_ED25519 */
    unsigned rsa_bits;  /* for MC_KEY_RSA (>= 2048) */
    mc_keytype root_keytype; /* MC_KEY_NONE = same as keytype */
    mc_sigalg sigalg;     /* the issuing CA's ca.signature (SBR 7.1.3.2), e.g. MC_SIG_RSA_PSS_SHA256
                             for an RSA key; MC_SIG_NONE = the key's default (ECDSA with the
                             curve's hash, RSA PKCS#1 v1.5 SHA-256, Ed25519). An RSA root signs the
                             CA certificates with it too. */
    const char *org;      /* organizationName of the CA certificates */
    const char *base_url; /* http base for CRL / caIssuers / OCSP URLs */
    /* BENCHMARK ONLY (`mailca bench --tokens N`; `mailca init` never sets it). 0 or 1: the
     * issuing key is generated inside the token, non-extractable, as in production. N in
     * 2..MC_CA_BENCH_TOKENS_MAX: N tokens (mailca, mailca-2, ...) with the same PINs, the issuing
     * key generated in software and imported into each (CKA_SENSITIVE, not extractable once
     * there), hsm.key naming all N. A production issuing key never leaves its HSM. */
    int bench_tokens;
} mc_ca_init_opts;

#define MC_CA_BENCH_TOKENS_MAX 8

/* Creates the CA. On failure the partially created folder is left for inspection and the error
 * names the step. */
mc_err mc_ca_init(const mc_ca_init_opts *o, mc_errdetail *err);

#endif
