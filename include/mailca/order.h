/*
 * mc_order: one S/MIME order, decoded strictly from a msgpack map (format: docs/orders.md).
 *
 * Decoding never ignores anything: an unknown field, a wrong type, an oversized value or an
 * invalid mailbox address is an error naming the field and the rule. Strings and byte arrays
 * point into memory owned by the caller (the msgpack object or the worker's arena), so the order
 * lives as long as that memory.
 */
#ifndef MAILCA_ORDER_H
#define MAILCA_ORDER_H

#include "mailca/alg.h"
#include "mailca/arena.h"
#include "mailca/err.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* Size limits (bytes unless said). */
#define MC_ORDER_ID_MAX 128
#define MC_ORDER_ACCOUNT_MAX 256
#define MC_ORDER_PROFILE_MAX 64
#define MC_ORDER_MAILBOXES_MAX 16
#define MC_MAILBOX_MAX 254      /* RFC 5321 4.5.3.1.3 path limit less the brackets */
#define MC_MAILBOX_LOCAL_MAX 64 /* RFC 5321 4.5.3.1.1 */
#define MC_ORDER_REFERENCE_MAX 256
#define MC_ORDER_CSR_MAX 16384
#define MC_ORDER_REPLACES_MAX 40 /* hex serial, 20 octets */
#define MC_ORDER_KEY_SOURCE_MAX 64

typedef enum mc_usage {
    MC_USAGE_SIGNING = 1, /* SBR 7.1.2.3(e) signing-only */
    MC_USAGE_KEYMGMT,     /* key management only */
    MC_USAGE_DUAL,        /* dual use */
} mc_usage;

/* Mailbox validation methods, SBR 3.2.2.1 - 3.2.2.4. */
typedef enum mc_vmethod {
    MC_VM_DOMAIN = 1, /* 3.2.2.1 authority over the domain */
    MC_VM_EMAIL,      /* 3.2.2.2 email a random value */
    MC_VM_SMTP,       /* 3.2.2.3 control of the SMTP FQDN */
    MC_VM_ACME,       /* 3.2.2.4 ACME for S/MIME (RFC 8823) */
} mc_vmethod;

typedef struct mc_str {
    const char *p; /* not NUL-terminated */
    size_t len;
} mc_str;

typedef struct mc_mailbox {
    mc_str address;       /* as given: local@domain, validated syntax */
    mc_vmethod method;    /* validation method */
    int64_t validated_at; /* Unix seconds */
    mc_str reference;     /* the CA's evidence reference */
} mc_mailbox;

typedef struct mc_order {
    mc_str id;      /* idempotency key */
    mc_str account; /* the platform account placing the order */
    mc_str profile; /* profile name */
    mc_usage usage;
    size_t n_mailboxes;
    mc_mailbox mailboxes[MC_ORDER_MAILBOXES_MAX];
    const uint8_t *csr; /* PKCS#10 DER; exactly one of csr and public_key */
    size_t csr_len;
    const uint8_t *public_key; /* SubjectPublicKeyInfo DER of a key whose source the account
                                  attests (key_source); no proof of possession */
    size_t public_key_len;
    mc_str key_source; /* with public_key: how the key was produced, recorded as provenance */
    mc_str replaces;   /* hex serial, len 0 when absent */
    /* Filled by mc_order_check_csr: */
    const uint8_t *spki; /* SubjectPublicKeyInfo DER inside csr */
    size_t spki_len;
    mc_keytype keytype;
    unsigned key_bits; /* RSA modulus bits; 256/384/521 for P-curves; 256 for Ed25519 */
} mc_order;

/* Decodes one order from a msgpack object (a map). out's strings point into obj's memory; nothing
 * is allocated. On error every field of out is zeroed except id.
 * On error, err names the field (e.g. "mailboxes[1].address") and rule, and out->id holds the
 * order id if it could be read (so the rejection can carry it). */
mc_err mc_order_decode(const msgpack_object *obj, mc_order *out, mc_errdetail *err);

/* Validates a mailbox address per SBR 1.6.1 (RFC 5321 Mailbox, RFC 6532 UTF-8 local parts
 * allowed), bare address only. Deliberately refused (docs/orders.md, "Mailbox addresses"):
 * quoted-string local parts, address literals and, for now, U-label domains (A-labels pass).
 * field (may be NULL) is copied into err's field. */
mc_err mc_mailbox_check(const char *p, size_t len, const char *field, mc_errdetail *err);

/* Parses the CSR, verifies its self-signature (proof of possession) with a digest from d (fetched
 * once), checks the key per SBR 6.1.5 (RSA >= 2048 and a multiple of 8, odd exponent >= 3;
 * ECDSA P-256/P-384/P-521 on the curve; Ed25519) and the SPKI's byte-exact algid
 * (SBR 7.1.3.1), and fills spki/keytype/key_bits (left zero on error). Codes: MC_ERR_CSR
 * (malformed, or the signature does not verify), MC_ERR_INVALID (key breaks an SBR rule),
 * MC_ERR_UNSUPPORTED (Ed448 keys, SHA-1 and other signature algorithms); field is always "csr".
 * Thread-safe, no global state; allocates only inside OpenSSL. */
struct mc_digests;
mc_err mc_order_check_csr(mc_order *o, const struct mc_digests *d, mc_errdetail *err);

/* Per-worker state for CSR checks on the hot path: key-management contexts fetched once (an
 * EVP_PKEY built with EVP_PKEY_fromdata from our own DER parse, because OpenSSL 3.0's d2i_PUBKEY
 * runs its decoder framework per call: ~110 us and global read locks, measured here) and a reused
 * digest context. Not thread-safe: one per worker. Free with mc_csr_ctx_free. */
typedef struct mc_csr_ctx {
    struct evp_pkey_ctx_st *ec, *rsa, *ed25519; /* EVP_PKEY_CTX for fromdata */
    struct evp_md_ctx_st *md;
    /* For attested public keys, where no signature is verified and so no EVP_PKEY is needed:
     * the point is validated on the curve directly (P-256, P-384, P-521). */
    struct ec_group_st *group[3];
    struct ec_point_st *point[3];
    struct bignum_ctx *bn;
} mc_csr_ctx;

mc_err mc_csr_ctx_init(mc_csr_ctx *cc, mc_errdetail *err);
void mc_csr_ctx_free(mc_csr_ctx *cc);

/* mc_order_check_csr with the worker's contexts (cc may be NULL: temporary ones are made).
 * For an order with public_key instead of csr, the same key checks run without the proof of
 * possession (the account attests the key's source, see docs/orders.md). */
mc_err mc_order_check_csr_ctx(mc_order *o, const struct mc_digests *d, mc_csr_ctx *cc,
                              mc_errdetail *err);

#endif
