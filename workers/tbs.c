/*
 * The hot path: one TBSCertificate per order, written with the mc_der writer into the worker's
 * buffer from a compiled profile. No malloc, no OpenSSL objects; the only OpenSSL call is the
 * SHA-1 for the subjectKeyIdentifier on the worker's own EVP_MD_CTX with a digest fetched once.
 * Extensions go in a fixed order: keyUsage, extKeyUsage, subjectAltName, subjectKeyIdentifier,
 * then the profile's constant ones (certificatePolicies, cRLDistributionPoints, AIA, AKI, ...),
 * then the order's LEI and role (SBR 7.1.2.3(l)).
 */
#include "mailca/tbs.h"

#include "mailca/crl.h"
#include "mailca/der.h"

#include <string.h>

static const uint8_t OID_CN[] = {0x55, 0x04, 0x03};
static const uint8_t OID_EMAIL[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01};
static const uint8_t OID_KU[] = {0x55, 0x1d, 0x0f};
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};
static const uint8_t OID_SKI[] = {0x55, 0x1d, 0x0e};
static const uint8_t OID_SMTPUTF8[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x09};
/* ISO 17442-2: id-ce-lei 1.3.6.1.4.1.52266.1, id-ce-role 1.3.6.1.4.1.52266.2 */
static const uint8_t OID_LEI[] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0x98, 0x2a, 0x01};
static const uint8_t OID_LEI_ROLE[] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0x98, 0x2a, 0x02};

#define UB_COMMON_NAME 64 /* RFC 5280 Appendix A, in characters */
#define SERIAL_MAX 20     /* SBR 7.1: < 2^159, so at most 20 octets */

mc_err mc_serial_generate(uint8_t serial[MC_SERIAL_LEN])
{
    /* A zero first octet would shorten the INTEGER; redraw (costs < 1 bit of the 127). */
    for (int tries = 0; tries < 64; tries++) {
        if (mc_random(serial, MC_SERIAL_LEN) != MC_OK)
            return MC_ERR_IO;
        serial[0] &= 0x7f; /* positive */
        if (serial[0] != 0)
            return MC_OK;
    }
    return MC_ERR_INTERNAL;
}

uint32_t mc_tbs_key_usage(mc_keytype k, mc_usage u, int generation)
{
    if (generation != MC_GEN_LEGACY && generation != MC_GEN_MULTIPURPOSE &&
        generation != MC_GEN_STRICT)
        return 0;
    /* SBR 7.1.2.3(e). We set only the SHALL bits (mc_tbs_build adds nonRepudiation for a
     * non_repudiation profile): here never nonRepudiation, and never
     * dataEncipherment (optional in multipurpose/legacy, forbidden in strict), encipherOnly or
     * decipherOnly. */
    switch (k) {
    case MC_KEY_RSA:
        switch (u) {
        case MC_USAGE_SIGNING:
            return MC_KU_DIGITAL_SIGNATURE;
        case MC_USAGE_KEYMGMT:
            return MC_KU_KEY_ENCIPHERMENT;
        case MC_USAGE_DUAL:
            return MC_KU_DIGITAL_SIGNATURE | MC_KU_KEY_ENCIPHERMENT;
        }
        return 0;
    case MC_KEY_P256:
    case MC_KEY_P384:
    case MC_KEY_P521:
        switch (u) {
        case MC_USAGE_SIGNING:
            return MC_KU_DIGITAL_SIGNATURE;
        case MC_USAGE_KEYMGMT:
            return MC_KU_KEY_AGREEMENT;
        case MC_USAGE_DUAL:
            return MC_KU_DIGITAL_SIGNATURE | MC_KU_KEY_AGREEMENT;
        }
        return 0;
    case MC_KEY_ED25519:
    case MC_KEY_ED448:
        /* EdDSA keys sign only: no key management, hence no dual use */
        return u == MC_USAGE_SIGNING ? MC_KU_DIGITAL_SIGNATURE : 0;
    default:
        return 0;
    }
}

/* A mailbox split at its last '@'. */
typedef struct mbox {
    const char *local, *domain;
    size_t llen, dlen;
    int ascii_local;
} mbox;

static int mbox_split(const mc_str *a, mbox *m)
{
    if (!a->p || a->len == 0 || a->len > MC_MAILBOX_MAX)
        return -1;
    const char *at = memrchr(a->p, '@', a->len);
    if (!at || at == a->p || at == a->p + a->len - 1)
        return -1;
    m->local = a->p;
    m->llen = (size_t)(at - a->p);
    m->domain = at + 1;
    m->dlen = a->len - m->llen - 1;
    m->ascii_local = 1;
    for (size_t i = 0; i < m->llen; i++)
        if ((unsigned char)m->local[i] >= 0x80)
            m->ascii_local = 0;
    /* RFC 9598 3: the domain is ASCII (A-labels): mc_order_decode converted U-labels
     * (SBR 7.1.4.2.1) and mc_profile_check_order refuses others */
    for (size_t i = 0; i < m->dlen; i++)
        if ((unsigned char)m->domain[i] >= 0x80)
            return -1;
    return 0;
}

/* Writes one mailbox as a string TLV with the domain lower-cased: domains compare without case,
 * and RFC 9598 3 wants lower-case ASCII labels in SmtpUTF8Mailbox, so every place the mailbox
 * appears (CN, emailAddress, SAN) carries the same bytes. */
static void put_mailbox(mc_der_w *w, unsigned tag, const mbox *m)
{
    char buf[MC_MAILBOX_MAX];
    memcpy(buf, m->local, m->llen);
    buf[m->llen] = '@';
    for (size_t i = 0; i < m->dlen; i++) {
        char c = m->domain[i];
        buf[m->llen + 1 + i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    mc_der_put(w, tag, buf, m->llen + 1 + m->dlen);
}

static size_t utf8_chars(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)p[i] & 0xc0) != 0x80)
            c++;
    return c;
}

/* Extension ::= SEQUENCE { extnID, critical (only when TRUE: DER omits DEFAULT), extnValue } */
static size_t ext_begin(mc_der_w *w, const uint8_t *oid, size_t oidlen, int critical, size_t *oct)
{
    size_t m = mc_der_begin(w, MC_DER_SEQUENCE);
    mc_der_put(w, MC_DER_OID, oid, oidlen);
    if (critical)
        mc_der_put_bool(w, 1);
    *oct = mc_der_begin(w, MC_DER_OCTETSTRING);
    return m;
}

static void ext_end(mc_der_w *w, size_t m, size_t oct)
{
    mc_der_end(w, oct);
    mc_der_end(w, m);
}

/* One RDN with one attribute (one attribute per RDN: multi-valued RDNs draw linter notices). */
static void put_rdn(mc_der_w *w, const uint8_t *oid, size_t oidlen, unsigned tag, const mbox *m)
{
    size_t set = mc_der_begin(w, MC_DER_SET);
    size_t atv = mc_der_begin(w, MC_DER_SEQUENCE);
    mc_der_put(w, MC_DER_OID, oid, oidlen);
    put_mailbox(w, tag, m);
    mc_der_end(w, atv);
    mc_der_end(w, set);
}

/* One RDN with one attribute whose value is a (joined with a space to b when blen > 0). */
static void put_rdn_str(mc_der_w *w, const uint8_t *oid, size_t oidlen, unsigned tag, const char *a,
                        size_t alen, const char *b, size_t blen)
{
    size_t set = mc_der_begin(w, MC_DER_SET);
    size_t atv = mc_der_begin(w, MC_DER_SEQUENCE);
    mc_der_put(w, MC_DER_OID, oid, oidlen);
    size_t str = mc_der_begin(w, tag);
    mc_der_put_raw(w, a, alen);
    if (blen) {
        mc_der_put_raw(w, " ", 1);
        mc_der_put_raw(w, b, blen);
    }
    mc_der_end(w, str);
    mc_der_end(w, atv);
    mc_der_end(w, set);
}

mc_err mc_tbs_build(const mc_profile *p, const mc_order *o, const uint8_t *serial,
                    size_t serial_len, int64_t not_before, const mc_digests *d, EVP_MD_CTX *md_ctx,
                    uint8_t *out, size_t cap, size_t *outlen, mc_errdetail *err)
{
    *outlen = 0;
    if (!p->issuer || !p->ext_const || !p->ext_eku || !p->ext_eku_nosign)
        return mc_err_set(err, MC_ERR_INTERNAL, "profile", NULL, "profile %s is not compiled",
                          p->name);

    /* SBR 7.1: positive, non-zero, less than 2^159 */
    int nonzero = 0;
    for (size_t i = 0; i < serial_len; i++)
        nonzero |= serial[i];
    if (serial_len == 0 || serial_len > SERIAL_MAX || !nonzero ||
        (serial_len == SERIAL_MAX && (serial[0] & 0x80)))
        return mc_err_set(err, MC_ERR_INTERNAL, "serial", "SBR 7.1",
                          "serial must be 1..%d octets, positive, below 2^159", SERIAL_MAX);

    /* The SPKI comes from the order (its AlgorithmIdentifier checked byte-exact by
     * mc_order_check_csr); re-read its frame here so the SKI hashes the right bytes. */
    mc_der_cur c = mc_der_cur_make(o->spki, o->spki_len);
    mc_der_tlv spki, alg, key;
    if (!o->spki || mc_der_expect(&c, MC_DER_SEQUENCE, &spki) || !mc_der_cur_empty(&c))
        return mc_err_set(err, MC_ERR_INVALID, "csr", "RFC 5280 4.1.2.7",
                          "subjectPublicKeyInfo is not one DER SEQUENCE");
    mc_der_cur sc = mc_der_cur_in(&spki);
    if (mc_der_expect(&sc, MC_DER_SEQUENCE, &alg) || mc_der_expect(&sc, MC_DER_BITSTRING, &key) ||
        !mc_der_cur_empty(&sc) || key.len < 2 || key.val[0] != 0)
        return mc_err_set(err, MC_ERR_INVALID, "csr", "RFC 5280 4.1.2.7",
                          "malformed subjectPublicKeyInfo");
    /* SBR 7.1.3.1 */
    if (mc_keytype_from_algid(alg.raw, alg.rawlen) != o->keytype || o->keytype == MC_KEY_NONE)
        return mc_err_set(err, MC_ERR_INVALID, "csr", "SBR 7.1.3.1",
                          "key algorithm does not match the checked key type %s",
                          mc_keytype_name(o->keytype));

    uint32_t ku = mc_tbs_key_usage(o->keytype, o->usage, (int)p->generation);
    if (!ku) /* SBR 7.1.2.3(e) */
        return mc_err_set(err, MC_ERR_INVALID, "usage", "SBR 7.1.2.3(e)",
                          "usage %d is not allowed for a %s key", (int)o->usage,
                          mc_keytype_name(o->keytype));
    /* SBR 7.1.2.3(e): nonRepudiation MAY accompany digitalSignature (signing, dual use) */
    if (p->non_repudiation && (ku & MC_KU_DIGITAL_SIGNATURE))
        ku |= MC_KU_NON_REPUDIATION;

    if (o->n_mailboxes == 0 || o->n_mailboxes > MC_ORDER_MAILBOXES_MAX)
        return mc_err_set(err, MC_ERR_INVALID, "mailboxes", "SBR 7.1.2.3(h)",
                          "%zu mailboxes (1..%d allowed)", o->n_mailboxes, MC_ORDER_MAILBOXES_MAX);
    mbox mb[MC_ORDER_MAILBOXES_MAX];
    for (size_t i = 0; i < o->n_mailboxes; i++)
        if (mbox_split(&o->mailboxes[i].address, &mb[i]) != 0) {
            char field[MC_ERR_FIELD_MAX];
            snprintf(field, sizeof field, "mailboxes[%zu].address", i);
            return mc_err_set(err, MC_ERR_INVALID, field, "SBR 7.1.4.2.1",
                              "not a mailbox with an ASCII domain");
        }

    /* SBR 7.1.2.3(l): LEI only in organization and sponsor certificates whose profile allows it,
     * the role only in sponsor ones (mc_profile_check_order checked; this is the safety net). */
    int lei = o->lei.value.len > 0, role = o->lei_role.value.len > 0;
    if (lei && (!p->lei || (p->type != MC_TYPE_ORGANIZATION && p->type != MC_TYPE_SPONSOR) ||
                !mc_lei_valid(o->lei.value.p, o->lei.value.len)))
        return mc_err_set(err, MC_ERR_INVALID, "lei", "SBR 7.1.2.3(l)",
                          "no valid LEI allowed in profile %s", p->name);
    if (role && (!lei || p->type != MC_TYPE_SPONSOR ||
                 !mc_lei_role_valid(o->lei_role.value.p, o->lei_role.value.len)))
        return mc_err_set(err, MC_ERR_INVALID, "lei_role", "SBR 7.1.2.3(l)",
                          "no valid role allowed in profile %s", p->name);

    /* RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (no unused-bits octet). */
    uint8_t ski[EVP_MAX_MD_SIZE];
    unsigned skilen = 0;
    if (mc_digest(md_ctx, d->sha1, key.val + 1, key.len - 1, ski, &skilen) != MC_OK)
        return mc_crypto_err(err, NULL, "SHA-1 of the public key");

    /* Subject (SBR 7.1.4.2.2 - 7.1.4.2.6; mc_profile_check_order allowed every attribute): the
     * commonName from the chosen source, the mailbox one only when it fits ub-common-name
     * (RFC 5280 App. A); emailAddress only when the mailbox is ASCII (IA5String). */
    const mbox *m0 = &mb[0];
    mc_cn_source cns = mc_profile_cn_source(p, o);
    const mc_subject *sj = &o->subject;
    int cn = cns != MC_CN_NONE;
    if (cns == MC_CN_MAILBOX)
        cn = utf8_chars(o->mailboxes[0].address.p, o->mailboxes[0].address.len) <= UB_COMMON_NAME;
    else if ((cns == MC_CN_ORGANIZATION && !sj->attr[MC_SA_ORGANIZATION].len) ||
             (cns == MC_CN_PSEUDONYM && !sj->attr[MC_SA_PSEUDONYM].len) ||
             (cns == MC_CN_PERSONAL_NAME && !sj->attr[MC_SA_GIVEN_NAME].len &&
              !sj->attr[MC_SA_SURNAME].len))
        return mc_err_set(err, MC_ERR_INVALID, "subject.common_name", "SBR 7.1.4.2.2(a)",
                          "the commonName source has no value");
    int email = p->email_attr && m0->ascii_local;
    int empty_subject = !cn && !email;
    for (int i = 0; i < MC_SA_COUNT; i++)
        empty_subject &= sj->attr[i].len == 0;

    mc_bytes sigalg = mc_sigalg_algid(p->issuer->sigalg);
    int64_t nb = not_before - p->backdate;
    int64_t na = nb + p->validity; /* SBR 6.3.2: validity already holds days * 86400 - 1 */

    mc_der_w w;
    mc_der_w_init(&w, out, cap);
    size_t tbs = mc_der_begin(&w, MC_DER_SEQUENCE);
    size_t v = mc_der_begin(&w, MC_DER_CTX_CONS(0)); /* SBR 7.1.1: v3 */
    mc_der_put_small_uint(&w, 2);
    mc_der_end(&w, v);
    mc_der_put_uint(&w, serial, serial_len);
    mc_der_put_raw(&w, sigalg.p, sigalg.len);                   /* SBR 7.1.3.2 */
    mc_der_put_raw(&w, p->issuer->name.p, p->issuer->name.len); /* SBR 7.1.4.1 */
    size_t val = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_time(&w, nb); /* UTCTime through 2049, then GeneralizedTime (RFC 5280 4.1.2.5) */
    mc_der_put_time(&w, na);
    mc_der_end(&w, val);
    size_t subj = mc_der_begin(&w, MC_DER_SEQUENCE);
    /* One attribute per RDN; PrintableString for countryName and serialNumber, UTF8String for
     * the DirectoryStrings (SBR 7.1.4, RFC 5280 4.1.2.6), in mc_subj_attr order. */
    for (int i = 0; i < MC_SA_COUNT; i++) {
        const mc_str *av = &sj->attr[i];
        if (!av->len)
            continue;
        const mc_subj_attr_info *ai = mc_subj_attr_get((mc_subj_attr)i);
        put_rdn_str(&w, ai->oid, ai->oid_len,
                    ai->printable ? MC_DER_PRINTABLESTRING : MC_DER_UTF8STRING, av->p, av->len,
                    NULL, 0);
    }
    if (cn) {
        const mc_str *g = &sj->attr[MC_SA_GIVEN_NAME], *sn = &sj->attr[MC_SA_SURNAME];
        switch (cns) {
        case MC_CN_MAILBOX:
            put_rdn(&w, OID_CN, sizeof OID_CN, MC_DER_UTF8STRING, m0);
            break;
        case MC_CN_ORGANIZATION:
            put_rdn_str(&w, OID_CN, sizeof OID_CN, MC_DER_UTF8STRING,
                        sj->attr[MC_SA_ORGANIZATION].p, sj->attr[MC_SA_ORGANIZATION].len, NULL, 0);
            break;
        case MC_CN_PSEUDONYM:
            put_rdn_str(&w, OID_CN, sizeof OID_CN, MC_DER_UTF8STRING, sj->attr[MC_SA_PSEUDONYM].p,
                        sj->attr[MC_SA_PSEUDONYM].len, NULL, 0);
            break;
        default: /* personal name: "givenName surname", or the one present */
            if (g->len && sn->len)
                put_rdn_str(&w, OID_CN, sizeof OID_CN, MC_DER_UTF8STRING, g->p, g->len, sn->p,
                            sn->len);
            else
                put_rdn_str(&w, OID_CN, sizeof OID_CN, MC_DER_UTF8STRING, g->len ? g->p : sn->p,
                            g->len ? g->len : sn->len, NULL, 0);
            break;
        }
    }
    if (email)
        put_rdn(&w, OID_EMAIL, sizeof OID_EMAIL, MC_DER_IA5STRING, m0);
    mc_der_end(&w, subj);
    mc_der_put_raw(&w, o->spki, o->spki_len);

    size_t e3 = mc_der_begin(&w, MC_DER_CTX_CONS(3));
    size_t exts = mc_der_begin(&w, MC_DER_SEQUENCE);
    size_t e, oct;
    /* keyUsage: SHOULD be critical (SBR 7.1.2.3(e)) */
    e = ext_begin(&w, OID_KU, sizeof OID_KU, 1, &oct);
    mc_der_put_named_bits(&w, ku, 9);
    ext_end(&w, e, oct);
    /* RFC 5280 4.2.1.12: no clientAuth for a key that can neither sign nor agree */
    if (ku & (MC_KU_DIGITAL_SIGNATURE | MC_KU_KEY_AGREEMENT))
        mc_der_put_raw(&w, p->ext_eku, p->ext_eku_len);
    else
        mc_der_put_raw(&w, p->ext_eku_nosign, p->ext_eku_nosign_len);
    /* subjectAltName: critical only when the subject is empty (RFC 5280 4.2.1.6,
     * SBR 7.1.2.3(h)). ASCII local part -> rfc822Name; otherwise SmtpUTF8Mailbox (RFC 9598). */
    e = ext_begin(&w, OID_SAN, sizeof OID_SAN, empty_subject, &oct);
    size_t gns = mc_der_begin(&w, MC_DER_SEQUENCE);
    for (size_t i = 0; i < o->n_mailboxes; i++) {
        if (mb[i].ascii_local) {
            put_mailbox(&w, MC_DER_CTX(1), &mb[i]);
        } else {
            size_t on = mc_der_begin(&w, MC_DER_CTX_CONS(0));
            mc_der_put(&w, MC_DER_OID, OID_SMTPUTF8, sizeof OID_SMTPUTF8);
            size_t ov = mc_der_begin(&w, MC_DER_CTX_CONS(0));
            put_mailbox(&w, MC_DER_UTF8STRING, &mb[i]);
            mc_der_end(&w, ov);
            mc_der_end(&w, on);
        }
    }
    mc_der_end(&w, gns);
    ext_end(&w, e, oct);
    /* subjectKeyIdentifier, non-critical */
    e = ext_begin(&w, OID_SKI, sizeof OID_SKI, 0, &oct);
    mc_der_put(&w, MC_DER_OCTETSTRING, ski, skilen);
    ext_end(&w, e, oct);
    size_t const_at = w.len;
    mc_der_put_raw(&w, p->ext_const, p->ext_const_len);
    /* partitioned CRLs: this certificate's shard in its CRL DP URI, the template's digits
     * overwritten in place (same length: nothing re-encoded; mc_der_end only moves bytes) */
    if (p->crl_shards > 1 && w.err == MC_OK)
        mc_crl_shard_digits(out + const_at + p->crl_shard_off,
                            mc_crl_shard_of(serial, serial_len, p->crl_shards));
    /* SBR 7.1.2.3(l): non-critical; ISO 17442-2 Clause 4 values are PrintableStrings (the LEI of
     * 20 characters, the role of 1..100), as pkilint's iso.lei module decodes them. */
    if (lei) {
        e = ext_begin(&w, OID_LEI, sizeof OID_LEI, 0, &oct);
        mc_der_put(&w, MC_DER_PRINTABLESTRING, o->lei.value.p, o->lei.value.len);
        ext_end(&w, e, oct);
    }
    if (role) {
        e = ext_begin(&w, OID_LEI_ROLE, sizeof OID_LEI_ROLE, 0, &oct);
        mc_der_put(&w, MC_DER_PRINTABLESTRING, o->lei_role.value.p, o->lei_role.value.len);
        ext_end(&w, e, oct);
    }
    mc_der_end(&w, exts);
    mc_der_end(&w, e3);
    mc_der_end(&w, tbs);
    if (w.err == MC_ERR_INVALID)
        return mc_err_set(err, MC_ERR_INVALID, "validity", "RFC 5280 4.1.2.5",
                          "a validity time is outside the years 0000-9999");
    if (w.err != MC_OK)
        return mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "TBSCertificate does not fit %zu bytes",
                          cap);
    *outlen = w.len;
    return MC_OK;
}

mc_err mc_cert_assemble(const uint8_t *tbs, size_t tbs_len, mc_sigalg alg, const uint8_t *sig,
                        size_t sig_len, uint8_t *out, size_t cap, size_t *outlen)
{
    *outlen = 0;
    mc_bytes a = mc_sigalg_algid(alg);
    mc_der_cur c = mc_der_cur_make(tbs, tbs_len);
    mc_der_tlv t;
    if (!a.len || !sig || !sig_len || mc_der_expect(&c, MC_DER_SEQUENCE, &t) ||
        !mc_der_cur_empty(&c))
        return MC_ERR_INVALID;
    mc_der_w w;
    mc_der_w_init(&w, out, cap);
    size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_raw(&w, tbs, tbs_len);
    mc_der_put_raw(&w, a.p, a.len); /* SBR 7.1.3.2: same bytes as tbsCertificate.signature */
    mc_der_put_bits(&w, sig, sig_len);
    mc_der_end(&w, m);
    if (w.err != MC_OK)
        return w.err;
    *outlen = w.len;
    return MC_OK;
}
