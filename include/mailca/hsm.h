/*
 * mc_hsm: the PKCS#11 layer. A loaded module with one logged-in token and the issuing key found by
 * an RFC 7512 `pkcs11:` URI; each worker opens its own mc_hsm_session (no lock on the signing
 * path).
 *
 * Why raw PKCS#11 rather than libp11's API: libp11 0.4.12 hides CK_SESSION_HANDLE and serialises
 * its own session use, while the hot path needs one session per worker calling C_Sign directly.
 * So we dlopen the module and use its CK_FUNCTION_LIST (header from p11-kit).
 *
 * Login state belongs to the token: mc_hsm_open logs in once on its own session and keeps that
 * session open for the life of the mc_hsm, so worker sessions are logged in too. Consequences:
 * - a second mc_hsm on a token this process is already logged in to gets
 *   CKR_USER_ALREADY_LOGGED_IN, which is accepted: PKCS#11 cannot check its PIN then;
 * - mc_hsm_close never calls C_Logout (it would log out the other mc_hsm on the token);
 * - if every session of the token is closed behind our back (C_CloseAllSessions, token reset),
 *   signing returns MC_ERR_HSM_SESSION and mc_hsm_session_open says CKR_USER_NOT_LOGGED_IN:
 *   the owner closes and reopens the mc_hsm (it holds no PIN to log in again).
 * The PIN is taken as a buffer that the caller wipes; mc_hsm never logs it or keeps it.
 *
 * Modules are refcounted per path in a static table (open/close take its mutex; signing takes no
 * lock): C_Initialize runs at the first open, C_Finalize at the last close, and a module some
 * other code in the process initialised (CKR_CRYPTOKI_ALREADY_INITIALIZED) is never finalised.
 * SoftHSM2 reads SOFTHSM2_CONF at C_Initialize.
 */
#ifndef MAILCA_HSM_H
#define MAILCA_HSM_H

#include "mailca/alg.h"
#include "mailca/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mc_hsm mc_hsm;
typedef struct mc_hsm_session mc_hsm_session;

typedef struct mc_hsm_config {
    const char *module;  /* path to the PKCS#11 module (.so) */
    const char *key_uri; /* pkcs11: URI naming token and private key (token= or serial=, object=
                            and/or id=); module-path in the URI is used when module is NULL */
    const char *pin;     /* user PIN, NUL-terminated; not retained. When NULL, the URI's
                            pin-source file (first line) is read instead. pin-value in the URI
                            is refused. */
} mc_hsm_config;

/* Loads the module, C_Initialize (OS locking), finds the one initialised token matching the URI
 * (token/serial/manufacturer/model; never by slot id), logs in once, finds exactly one
 * CKO_PRIVATE_KEY by object and/or id, reads its public key (the CKO_PUBLIC_KEY with the same
 * id) and checks the pair with one test signature. Errors name the token/key or the CKR_ code and
 * the call ("C_Login: CKR_PIN_INCORRECT"). Caller frees with mc_hsm_close. */
mc_err mc_hsm_open(const mc_hsm_config *cfg, mc_hsm **out, mc_errdetail *err);
void mc_hsm_close(mc_hsm *h);

/* Where a new session gets the user PIN when the token is no longer logged in (it was reset,
 * the HSM rebooted, every session was closed): fn writes the PIN, NUL-terminated, into buf (cap
 * bytes) and returns MC_OK; the session logs in again with it (the login is the token's, for
 * every session) and wipes it at once: the PIN is never kept. Without a source such a session
 * fails with CKR_USER_NOT_LOGGED_IN (MC_ERR_HSM_SESSION). Set it before opening sessions. */
typedef mc_err (*mc_hsm_pin_fn)(void *arg, char *buf, size_t cap, mc_errdetail *err);
void mc_hsm_set_pin_source(mc_hsm *h, mc_hsm_pin_fn fn, void *arg);

/* The key's type, and its SubjectPublicKeyInfo DER (pointer valid while h is open). */
mc_keytype mc_hsm_keytype(const mc_hsm *h);
mc_bytes mc_hsm_spki(const mc_hsm *h);
/* The token as the URI named it (" token=.. serial=.."), for messages and health reports. */
const char *mc_hsm_token_desc(const mc_hsm *h);
/* The module's manufacturerID (C_GetInfo, trailing blanks cut; "" when C_GetInfo failed): the
 * engine chooses its default worker processes by it (mc_engine_auto_procs). Valid while h is
 * open. */
const char *mc_hsm_library_manufacturer(const mc_hsm *h);

/* Opens a new session on the token for one worker and finds the key handle in it.
 * Caller frees with mc_hsm_session_close. Thread-safe (one call per worker at start). */
mc_err mc_hsm_session_open(mc_hsm *h, mc_hsm_session **out, mc_errdetail *err);
void mc_hsm_session_close(mc_hsm_session *s);

/* Recovery after MC_ERR_HSM_SESSION: closes the session (its handle may already be dead),
 * opens a new one on the same token and finds the key again; s stays the caller's object.
 * No login happens here: login state belongs to the token, kept by the mc_hsm's own session.
 * So when the login itself is gone (every session of the token closed, token reset), this
 * returns MC_ERR_HSM_SESSION naming CKR_USER_NOT_LOGGED_IN and the owner must close and reopen
 * the mc_hsm. After a failed reopen, s holds no PKCS#11 session: signing returns
 * MC_ERR_HSM_SESSION until a reopen succeeds; mc_hsm_session_close is still the way to free
 * it. The mc_hsm must outlive s. Not thread-safe per session. */
mc_err mc_hsm_session_reopen(mc_hsm_session *s, mc_errdetail *err);

/* Signs with the issuing key. in = the digest for ECDSA and RSA (the caller hashed it with the
 * digest of alg), the whole message for Ed25519. Writes the signature as it goes into an X.509
 * BIT STRING: DER Ecdsa-Sig-Value for ECDSA (converted from PKCS#11 r||s), raw for RSA/EdDSA.
 * RSA PKCS#1 v1.5 builds the DigestInfo itself (CKM_RSA_PKCS); PSS uses CKM_RSA_PKCS_PSS with
 * the parameters that match the algid (salt = hash length). Returns MC_ERR_HSM / _SESSION /
 * _FATAL by the CKR_ class (see mc_hsm_rv_class); CKR_OPERATION_ACTIVE at C_SignInit (an
 * operation stuck on the session) is MC_ERR_HSM_SESSION too. On MC_ERR_HSM_SESSION the caller
 * calls mc_hsm_session_reopen and may retry; MC_ERR_HSM may be retried as it is (or on another
 * session); MC_ERR_HSM_FATAL never. Not thread-safe per session. */
mc_err mc_hsm_sign(mc_hsm_session *s, mc_sigalg alg, const uint8_t *in, size_t inlen, uint8_t *sig,
                   size_t *siglen, mc_errdetail *err);

/* 1 when the last signing call on s failed for the device or token as a whole
 * (CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_DEVICE_MEMORY) rather than
 * for this session: the pool takes such a token out at once. */
int mc_hsm_session_device_lost(const mc_hsm_session *s);

/* Raw C_Sign on a digest-sized input, without conversions: the benchmark's baseline. */
mc_err mc_hsm_sign_raw(mc_hsm_session *s, mc_sigalg alg, const uint8_t *in, size_t inlen,
                       uint8_t *sig, size_t *siglen);

/* CKR_ code classification: MC_OK, MC_ERR_HSM (transient), MC_ERR_HSM_SESSION (reopen),
 * MC_ERR_HSM_FATAL (never retry). */
mc_err mc_hsm_rv_class(unsigned long rv);
const char *mc_hsm_rv_name(unsigned long rv);

/* ---- provisioning (mailca init, tests) ---- */

/* Initialises a token in the first free slot of the module with label, SO PIN and user PIN
 * (C_InitToken + C_InitPIN). Refuses a label another token already has (tokens are found by
 * label). */
mc_err mc_hsm_token_init(const char *module, const char *label, const char *so_pin,
                         const char *user_pin, mc_errdetail *err);

/* Generates a key pair inside the token named by the URI's token= (CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE true, CKA_EXTRACTABLE false) with label and id. kt: MC_KEY_P256, MC_KEY_P384,
 * MC_KEY_RSA (rsa_bits >= 2048, exponent 65537) or MC_KEY_ED25519. Refuses a label or id a
 * private key on the token already has (keys are found by them). */
mc_err mc_hsm_keygen(const char *module, const char *token_label, const char *pin, mc_keytype kt,
                     unsigned rsa_bits, const char *label, const uint8_t *id, size_t idlen,
                     mc_errdetail *err);

#endif
