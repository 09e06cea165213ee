/*
 * mc_config: the engine's configuration file (YAML, two levels: section.key), written by
 * `mailca init` and read by every command. Relative paths resolve against the file's folder.
 * One table in config.c declares every key with its default, so validation and docs agree.
 * The HSM PIN is never in this file: it comes from the file named by hsm.pin_file (mode 0600) or
 * the environment variable named by hsm.pin_env.
 */
#ifndef MAILCA_CONFIG_H
#define MAILCA_CONFIG_H

#include "mailca/err.h"

#include <stddef.h>

#define MC_PATH_MAX 512
#define MC_URL_MAX 256
/* The most worker processes engine.procs (and `mailca batch --procs`) accepts. */
#define MC_CONFIG_PROCS_MAX 256

typedef struct mc_config {
    char path[MC_PATH_MAX]; /* the config file itself (worker processes re-read it) */
    char dir[MC_PATH_MAX];  /* folder of the config file */
    /* hsm */
    char hsm_module[MC_PATH_MAX];
    char hsm_key[4 * MC_PATH_MAX]; /* pkcs11: URI of the issuing key; several (whitespace
                                      separated) for tokens holding the same key (a pool) */
    char hsm_pin_file[MC_PATH_MAX];
    char hsm_pin_env[64];
    char softhsm2_conf[MC_PATH_MAX]; /* exported as SOFTHSM2_CONF when set */
    int hsm_sign_timeout_ms; /* deadline of one C_Sign: a call that exceeds it is abandoned and
                                the same input signed on another session; 0 = no deadline (the
                                workers then sign on their own session, no signer thread) */
    /* ca */
    char ca_certificate[MC_PATH_MAX]; /* issuing CA certificate (PEM) */
    char ca_root[MC_PATH_MAX];        /* root certificate (PEM) */
    char ca_signature[32];            /* mc_sigalg name, "" = default for the key */
    char ca_crl_url[MC_URL_MAX];      /* with "{shard}" when ca_crl_shards > 1 (crl.h) */
    int ca_crl_shards;                /* 1 = one full CRL; N > 1: partitioned CRLs (crl.h) */
    char ca_ocsp_url[MC_URL_MAX];
    char ca_issuers_url[MC_URL_MAX];
    char ca_cps_url[MC_URL_MAX];
    /* caa: SBR 4.2.2.1 CAA issuemail checks for every mailbox domain (README, docs/orders.md) */
    int caa_enabled;
    char caa_resolvers[MC_URL_MAX];      /* "ip[@port],..." ("" = recurse from the root) */
    char caa_issuer_domains[MC_URL_MAX]; /* the CA's Issuer Domain Names, comma separated */
    int caa_timeout_ms;
    char caa_trust_anchor_file[MC_PATH_MAX]; /* DNSSEC trust anchor ("" = no validation) */
    char caa_account_uri_prefix[MC_URL_MAX]; /* accounturi = prefix + the order's account */
    char caa_perspectives[MC_URL_MAX]; /* SBR 4.2.2.2: "name=ip@port,ip;name2=..." ("" = one) */
    int caa_quorum;                    /* permits needed (0 = the TLS BR 3.2.2.9 default) */
    /* ct: Certificate Transparency submission (off unless logs and profiles are configured) */
    char ct_logs[2048];    /* "<url> <base64 SPKI>, ..." */
    char ct_profiles[256]; /* profiles whose certificates are logged, "*" for all */
    int ct_max_in_flight;
    int ct_timeout_ms;
    /* store */
    char store_sqlite[MC_PATH_MAX];
    int store_retry_s; /* back-pressure: how long the collector keeps retrying a transient store
                          failure (connection lost, busy/locked, serialization failure) before
                          it answers the orders `failed`; 0 = fail at once */
    /* lint */
    char lint_enforced_set[64]; /* "" = every lint enforced; else error lints newer than this
                                   lint set warn (mc_lint_ctx.enforced_set) */
    /* keys: known weak RSA keys refused (SBR 6.1.1.3 item 5): a file or folder of fingerprint
     * lists in openssl-blacklist format (include/mailca/weakkeys.h); "" = none */
    char keys_weak_rsa_blocklist[MC_PATH_MAX];
    /* engine */
    char profiles[MC_PATH_MAX];
    int workers;   /* 0 = one per core */
    int batch;     /* orders per worker batch (one intent transaction) */
    int pin_cores; /* pin worker threads to cores */
    int procs;     /* -1 (auto): mc_engine_auto_procs; 0: workers are threads of the engine;
                      N: N worker processes */
    int sessions;  /* signing sessions (C_Sign calls) in flight across the engine, for a
                      latency-bound HSM: 0 = one per worker, which signs itself; more = each
                      worker gets ceil(sessions / workers) signer threads with a session each */
} mc_config;

/* Fills defaults, then reads path. Unknown sections/keys and bad values are errors naming
 * file:line. */
mc_err mc_config_load(const char *path, mc_config *out, mc_errdetail *err);

/* Defaults only (dir = "."). */
void mc_config_defaults(mc_config *c);

/* The config file when neither --config nor $MAILCA_CONFIG names one (`mailca init`'s). */
#define MC_DEFAULT_CONFIG "mailca-state/mailca.yaml"

/* The config file a command loads: opt (its --config) when given, else $MAILCA_CONFIG when set
 * and not empty, else MC_DEFAULT_CONFIG. Returns one of those strings: nothing to free. */
const char *mc_config_path(const char *opt);

/* Writes the config as YAML to path (mode 0644). */
mc_err mc_config_write(const mc_config *c, const char *path, mc_errdetail *err);

/* Writes every key of c to a new file path (mode 0600, refused if it exists), paths absolute:
 * what the worker processes of a run load, started or restarted, so that a config file
 * edited during the run never reaches some of its workers and not others. Loading it gives
 * back c (but path and dir). */
mc_err mc_config_snapshot(const mc_config *c, const char *path, mc_errdetail *err);

/* Reads the PIN: from the environment variable hsm_pin_env when set and present, else from
 * hsm_pin_file, which must not be readable by group or others. Trailing newline stripped.
 * The caller wipes pin (OPENSSL_cleanse) after use. */
mc_err mc_config_read_pin(const mc_config *c, char *pin, size_t cap, mc_errdetail *err);

/* Exports SOFTHSM2_CONF when the config names one (before the module is loaded). */
void mc_config_apply_env(const mc_config *c);

#endif
