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
    const char *dir;      /* state folder to create (must not hold a CA already) */
    const char *module;   /* PKCS#11 module; NULL = SoftHSM2 */
    mc_keytype keytype;   /* issuing key: MC_KEY_P256, MC_KEY_P384 or MC_KEY_RSA */
    unsigned rsa_bits;    /* for MC_KEY_RSA (>= 2048) */
    mc_keytype root_keytype; /* MC_KEY_NONE = same as keytype */
    const char *org;      /* organizationName of the CA certificates */
    const char *base_url; /* http base for CRL / caIssuers / OCSP URLs */
} mc_ca_init_opts;

/* Creates the CA. On failure the partially created folder is left for inspection and the error
 * names the step. */
mc_err mc_ca_init(const mc_ca_init_opts *o, mc_errdetail *err);

#endif
