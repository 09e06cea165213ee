/*
 * mc_cl: helpers for tests that judge issued certificates with real S/MIME software from Debian's
 * packages (tests/test_it_clients.c): running a tool with a timeout and its output captured, an
 * NSS database (certutil, vfychain: what Thunderbird uses), a GNUPGHOME with its own gpg-agent
 * (gpgsm), and files those tools read (PEM certificates, the subscriber key as PKCS#8 PEM or
 * PKCS#12).
 *
 * Usage:
 *   mc_it_run r;
 *   const char *argv[] = {"openssl", "version", NULL};
 *   mc_cl_exec(&r, 30, NULL, argv);                        // r.status 0, r.out "OpenSSL 3..."
 *   mc_it_run_free(&r);
 *
 *   mc_cl_nssdb_create("/tmp/x/nss");                     // certutil -N --empty-password
 *   mc_cl_nssdb_add("/tmp/x/nss", "root", "/tmp/x/root.pem", "CT,C,C");
 *
 *   mc_cl_gnupg g;
 *   mc_cl_gnupg_start(&g, "/tmp/x/gnupg", root);          // trustlist.txt + gpg-agent
 *   ... gpgsm --homedir g.home ...
 *   mc_cl_gnupg_stop(&g);                                 // gpgconf --kill all (ours only)
 *
 * Test code only: helpers report failures by return value with a line on stderr saying why, so
 * that the cmocka test asserts on them. Nothing here needs to be freed except what the comments
 * say.
 */
#ifndef MAILCA_TEST_CLIENTS_H
#define MAILCA_TEST_CLIENTS_H

#include "support/csrgen.h"
#include "support/itutil.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

/* Seconds any one client command may take before it is killed. */
#define MC_CL_TIMEOUT 60

/* Runs argv[0] (looked up in PATH) with argv (NULL-terminated) in its own process group, stdin
 * from in_path (NULL: /dev/null), stdout and stderr captured into r like mc_it_mailca_argv,
 * LC_ALL=C in the environment. After timeout_s seconds the whole process group is killed
 * (SIGKILL; r->timed_out = 1). Returns r->status (exit code, 128 + signal, -1 when it could not
 * be run). The caller frees r with mc_it_run_free. */
int mc_cl_exec_in(mc_it_run *r, int timeout_s, const char *in_path, const char *const *argv);

/* The same with stdin from /dev/null. */
int mc_cl_exec(mc_it_run *r, int timeout_s, const char *const *argv);

/* Writes into out the full path of the executable name found in PATH. 0, or -1 when missing. */
int mc_cl_which(const char *name, char *out, size_t cap);

/* Appends o (mc_csrgen_order_pack) as one msgpack map to sb, with a "subject" map
 * (docs/orders.md "Subject") of the NULL-terminated key, value, key, value... list subject
 * (NULL or empty: no "subject" key). 0, or -1 when packing failed. */
int mc_cl_order_pack(const mc_csrgen_order *o, const char *const *subject, msgpack_sbuffer *sb);

/* Writes key as an unencrypted PKCS#8 PEM file, mode 0600. 0 or -1. */
int mc_cl_key_pem(const char *path, EVP_PKEY *key);

/* Writes cert (and chain, may be NULL) as PEM, in that order, to path (truncated). 0 or -1. */
int mc_cl_cert_pem(const char *path, X509 *cert, STACK_OF(X509) * chain);

/* Writes key, cert and chain (may be NULL) as PKCS#12 protected by pass (mode 0600), with
 * friendlyName name (NSS takes it as the nickname; NULL: none). legacy = 1
 * uses pbeWithSHA1And3-KeyTripleDES-CBC for key and certificates with a SHA-1 MAC (what gpgsm
 * 2.2 and old clients import; OpenSSL 3's default AES/PBKDF2 PKCS#12 they cannot), legacy = 0
 * uses OpenSSL 3's defaults. 0 or -1. */
int mc_cl_key_p12(const char *path, EVP_PKEY *key, X509 *cert, STACK_OF(X509) * chain,
                  const char *name, const char *pass, int legacy);

/* NSS: creates an empty sql: database in dir (made when missing) with no password. 0 or -1. */
int mc_cl_nssdb_create(const char *dir);

/* NSS: adds the PEM certificate in pem_path under nick with trust flags ("CT,C,C": trusted CA
 * for TLS clients, e-mail and code; ",," : no trust of its own, e.g. an intermediate). 0 or -1. */
int mc_cl_nssdb_add(const char *dir, const char *nick, const char *pem_path, const char *trust);

/* A GNUPGHOME made by the test with a gpg-agent the test started. */
typedef struct mc_cl_gnupg {
    char home[512];
    int agent_running;
} mc_cl_gnupg;

/* Creates home (mode 0700) with gpg-agent.conf (loopback pinentry, no scdaemon), gpgsm.conf (no
 * dirmngr, no CRL checks: the test CA publishes no CRL) and trustlist.txt trusting root for
 * S/MIME, then starts gpg-agent on it (gpgconf --launch). 0, or -1 (what was started is stopped).
 */
int mc_cl_gnupg_start(mc_cl_gnupg *g, const char *home, X509 *root);

/* Kills the agent (and any other daemon gpgconf started) of this home only: gpgconf --homedir
 * <home> --kill all. Safe to call twice or after a failed start. */
void mc_cl_gnupg_stop(mc_cl_gnupg *g);

#endif
