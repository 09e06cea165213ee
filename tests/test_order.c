/*
 * Unit tests for order intake: strict msgpack decoding (every field, limit and error path),
 * Mailbox Address syntax (SBR 1.6.1) and the CSR check (proof of possession, SBR 6.1.5, 6.1.6,
 * 7.1.3.1) against CSRs made by OpenSSL.
 *
 * Malformed orders are made by unpacking a valid order and editing its msgpack object tree, so
 * each test changes exactly one thing and the decoder sees what a wire order would give it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/crypto.h"
#include "mailca/der.h"
#include "mailca/order.h"
#include "support/csrgen.h"

#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared keys and CSRs, made once (RSA key generation is the slow part) ---- */

enum {
    C_P256,
    C_P384,
    C_P521,
    C_ED25519,
    C_ED448,
    C_RSA2048,
    C_RSA3072,
    C_RSA1024,
    C_RSA2052,
    C_N
};

typedef struct csr_buf {
    EVP_PKEY *key;
    uint8_t *der;
    size_t len;
} csr_buf;

static csr_buf csrs[C_N];
static mc_digests digests;

static int group_setup(void **state)
{
    (void)state;
    static const struct {
        mc_keytype kt;
        unsigned bits;
    } spec[C_N] = {{MC_KEY_P256, 0},    {MC_KEY_P384, 0},   {MC_KEY_P521, 0},
                   {MC_KEY_ED25519, 0}, {MC_KEY_ED448, 0},  {MC_KEY_RSA, 2048},
                   {MC_KEY_RSA, 3072},  {MC_KEY_RSA, 1024}, {MC_KEY_RSA, 2052}};
    if (mc_digests_fetch(&digests, NULL) != MC_OK)
        return -1;
    for (int i = 0; i < C_N; i++) {
        csrs[i].key = mc_csrgen_key(spec[i].kt, spec[i].bits);
        if (!csrs[i].key)
            return -1;
        csrs[i].der = mc_csrgen_csr(csrs[i].key, NULL, 0, &csrs[i].len);
        if (!csrs[i].der)
            return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < C_N; i++) {
        EVP_PKEY_free(csrs[i].key);
        free(csrs[i].der);
    }
    mc_digests_free(&digests);
    return 0;
}

/* ---- a valid order, unpacked fresh for each test ---- */

static const mc_csrgen_mailbox valid_mailboxes[] = {
    {"alice@example.com", "3.2.2.2", 1700000000, "ticket-1"},
    {"Bob.Smith+tag@Mail.Example.org", "3.2.2.1", 1700000100, "dcv-77"},
};

typedef struct fx {
    msgpack_sbuffer sb;
    msgpack_unpacked up;
    msgpack_object *root;
    void *allocs[512];
    int n_allocs;
} fx;

static void *fx_alloc(fx *f, size_t n)
{
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    assert_true(f->n_allocs < 512);
    f->allocs[f->n_allocs++] = p;
    return p;
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    mc_csrgen_order o = {.id = "order-0001",
                         .account = "acct-42",
                         .profile = "mailbox-strict",
                         .usage = "signing",
                         .mailboxes = valid_mailboxes,
                         .n_mailboxes = 2,
                         .csr = csrs[C_P256].der,
                         .csr_len = csrs[C_P256].len,
                         .replaces = "0a1b2c"};
    msgpack_sbuffer_init(&f->sb);
    if (mc_csrgen_order_pack(&o, &f->sb) != 0)
        return -1;
    msgpack_unpacked_init(&f->up);
    size_t off = 0;
    if (msgpack_unpack_next(&f->up, f->sb.data, f->sb.size, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != f->sb.size)
        return -1;
    f->root = &f->up.data;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    for (int i = 0; i < f->n_allocs; i++)
        free(f->allocs[i]);
    msgpack_unpacked_destroy(&f->up);
    msgpack_sbuffer_destroy(&f->sb);
    free(f);
    return 0;
}

static msgpack_object *get(msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->via.str.size == strlen(key) && !memcmp(k->via.str.ptr, key, k->via.str.size))
            return &map->via.map.ptr[i].val;
    }
    fail_msg("no key %s", key);
    return NULL;
}

static msgpack_object *mailbox(fx *f, size_t i)
{
    return &get(f->root, "mailboxes")->via.array.ptr[i];
}

static void drop(msgpack_object *map, const char *key)
{
    msgpack_object_map *m = &map->via.map;
    for (uint32_t i = 0; i < m->size; i++)
        if (m->ptr[i].key.via.str.size == strlen(key) &&
            !memcmp(m->ptr[i].key.via.str.ptr, key, strlen(key))) {
            memmove(&m->ptr[i], &m->ptr[i + 1], (m->size - i - 1) * sizeof m->ptr[0]);
            m->size--;
            return;
        }
    fail_msg("no key %s", key);
}

static msgpack_object o_str(const char *s)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_STR};
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t)strlen(s);
    return o;
}

static msgpack_object o_strn(fx *f, char c, size_t n)
{
    char *p = fx_alloc(f, n);
    memset(p, c, n);
    msgpack_object o = {.type = MSGPACK_OBJECT_STR};
    o.via.str.ptr = p;
    o.via.str.size = (uint32_t)n;
    return o;
}

static msgpack_object o_uint(uint64_t v)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
    o.via.u64 = v;
    return o;
}

static msgpack_object o_int(int64_t v)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_NEGATIVE_INTEGER};
    o.via.i64 = v;
    return o;
}

static msgpack_object o_bin(fx *f, size_t n)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_BIN};
    o.via.bin.ptr = fx_alloc(f, n);
    o.via.bin.size = (uint32_t)n;
    return o;
}

static msgpack_object o_nil(void)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_NIL};
    return o;
}

static msgpack_object o_array(fx *f, size_t n)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_ARRAY};
    o.via.array.ptr = fx_alloc(f, n * sizeof(msgpack_object));
    o.via.array.size = (uint32_t)n;
    return o;
}

static msgpack_object o_map(void)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_MAP};
    return o;
}

/* Appends key = val to map (copied into test-owned storage). */
static void add(fx *f, msgpack_object *map, const char *key, msgpack_object val)
{
    msgpack_object_map *m = &map->via.map;
    msgpack_object_kv *kv = fx_alloc(f, (m->size + 1) * sizeof *kv);
    if (m->size)
        memcpy(kv, m->ptr, m->size * sizeof *kv);
    kv[m->size].key = o_str(key);
    kv[m->size].val = val;
    m->ptr = kv;
    m->size++;
}

static void set(msgpack_object *map, const char *key, msgpack_object val)
{
    *get(map, key) = val;
}

/* Decodes and checks the error code, the field path and (when rule is not NULL) the rule. */
static void expect_err(fx *f, mc_err code, const char *field, const char *rule)
{
    mc_order o;
    mc_errdetail err;
    mc_err rc = mc_order_decode(f->root, &o, &err);
    if (rc != code || strcmp(err.field, field) != 0 || (rule && strcmp(err.rule, rule) != 0))
        fail_msg("got %s field \"%s\" rule \"%s\" (%s); want %s \"%s\" \"%s\"", mc_err_name(rc),
                 err.field, err.rule, err.message, mc_err_name(code), field, rule ? rule : "*");
    assert_int_equal(err.code, code);
    assert_true(err.message[0] != '\0');
    assert_int_equal(o.n_mailboxes, 0); /* nothing half-decoded is left behind */
    assert_null(o.csr);
}

static void expect_ok(fx *f, mc_order *o)
{
    mc_errdetail err;
    mc_err rc = mc_order_decode(f->root, o, &err);
    if (rc != MC_OK)
        fail_msg("unexpected %s %s: %s [%s]", mc_err_name(rc), err.field, err.message, err.rule);
}

static int str_is(mc_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

/* ---- decoding: the valid order ---- */

static void test_valid_order(void **state)
{
    fx *f = *state;
    mc_order o;
    expect_ok(f, &o);
    assert_true(str_is(o.id, "order-0001"));
    assert_true(str_is(o.account, "acct-42"));
    assert_true(str_is(o.profile, "mailbox-strict"));
    assert_int_equal(o.usage, MC_USAGE_SIGNING);
    assert_int_equal(o.n_mailboxes, 2);
    assert_true(str_is(o.mailboxes[0].address, "alice@example.com"));
    assert_int_equal(o.mailboxes[0].method, MC_VM_EMAIL);
    assert_int_equal(o.mailboxes[0].validated_at, 1700000000);
    assert_true(str_is(o.mailboxes[0].reference, "ticket-1"));
    assert_true(str_is(o.mailboxes[1].address, "Bob.Smith+tag@Mail.Example.org"));
    assert_int_equal(o.mailboxes[1].method, MC_VM_DOMAIN);
    assert_int_equal(o.mailboxes[1].validated_at, 1700000100);
    assert_true(str_is(o.mailboxes[1].reference, "dcv-77"));
    assert_int_equal(o.csr_len, csrs[C_P256].len);
    assert_memory_equal(o.csr, csrs[C_P256].der, o.csr_len);
    assert_true(str_is(o.replaces, "0a1b2c"));
    /* Points into the unpacked object, not into copies. */
    const msgpack_object *csr = get(f->root, "csr");
    assert_ptr_equal(o.csr, csr->via.bin.ptr);
    /* Not filled before mc_order_check_csr. */
    assert_null(o.spki);
    assert_int_equal(o.keytype, MC_KEY_NONE);
}

static void test_optional_replaces_absent(void **state)
{
    fx *f = *state;
    drop(f->root, "replaces");
    mc_order o;
    expect_ok(f, &o);
    assert_int_equal(o.replaces.len, 0);
}

static void test_usage_and_method_values(void **state)
{
    fx *f = *state;
    static const struct {
        const char *s;
        mc_usage u;
    } usages[] = {{"signing", MC_USAGE_SIGNING},
                  {"key-management", MC_USAGE_KEYMGMT},
                  {"dual", MC_USAGE_DUAL}};
    static const struct {
        const char *s;
        mc_vmethod m;
    } methods[] = {{"3.2.2.1", MC_VM_DOMAIN},
                   {"3.2.2.2", MC_VM_EMAIL},
                   {"3.2.2.3", MC_VM_SMTP},
                   {"3.2.2.4", MC_VM_ACME}};
    mc_order o;
    for (size_t i = 0; i < 3; i++) {
        set(f->root, "usage", o_str(usages[i].s));
        expect_ok(f, &o);
        assert_int_equal(o.usage, usages[i].u);
    }
    for (size_t i = 0; i < 4; i++) {
        set(mailbox(f, 0), "method", o_str(methods[i].s));
        expect_ok(f, &o);
        assert_int_equal(o.mailboxes[0].method, methods[i].m);
    }
}

/* ---- missing, unknown, duplicate ---- */

static void test_missing_required(void **state)
{
    static const char *const top[] = {"id", "account", "profile", "usage", "mailboxes", "csr"};
    static const char *const mb[] = {"address", "method", "validated_at", "reference"};
    for (size_t i = 0; i < 6; i++) {
        fx_teardown(state);
        assert_int_equal(fx_setup(state), 0);
        fx *f = *state;
        drop(f->root, top[i]);
        /* a missing csr is reported by the key-form rule: csr or public_key */
        expect_err(f, MC_ERR_INVALID, top[i], i == 5 ? "orders.md key" : "orders.md required");
    }
    for (size_t i = 0; i < 4; i++) {
        fx_teardown(state);
        assert_int_equal(fx_setup(state), 0);
        fx *f = *state;
        drop(mailbox(f, 1), mb[i]);
        char path[64];
        snprintf(path, sizeof path, "mailboxes[1].%s", mb[i]);
        expect_err(f, MC_ERR_INVALID, path, "orders.md required");
    }
}

static msgpack_object o_bytes(fx *f, const uint8_t *p, size_t n)
{
    msgpack_object o = o_bin(f, n);
    memcpy((void *)o.via.bin.ptr, p, n);
    return o;
}

/* The attested-key form: public_key + key_source instead of a CSR. Same key rules, field
 * "public_key"; exactly one of csr and public_key. */
static void test_public_key_form(void **state)
{
    fx *f = *state;
    uint8_t *spki = NULL;
    int n = i2d_PUBKEY(csrs[C_P384].key, &spki);
    assert_true(n > 0);
    drop(f->root, "csr");
    add(f, f->root, "public_key", o_bytes(f, spki, (size_t)n));
    add(f, f->root, "key_source", o_str("platform-generated"));
    mc_order o;
    mc_errdetail err;
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
    assert_null(o.csr);
    assert_int_equal(o.public_key_len, (size_t)n);
    assert_int_equal(o.key_source.len, strlen("platform-generated"));
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_OK);
    assert_int_equal(o.keytype, MC_KEY_P384);
    assert_int_equal(o.key_bits, 384);
    assert_int_equal(o.spki_len, (size_t)n);
    assert_memory_equal(o.spki, spki, (size_t)n);

    /* SBR 6.1.5: a point off the curve (last coordinate byte changed) is refused */
    uint8_t off[200];
    memcpy(off, spki, (size_t)n);
    off[n - 1] ^= 0x01;
    set(f->root, "public_key", o_bytes(f, off, (size_t)n));
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "public_key");
    assert_non_null(strstr(err.message, "not a valid point"));
    /* and an RSA-2048 attested key passes without an EVP_PKEY */
    uint8_t *rsa_ok = NULL;
    int rok = i2d_PUBKEY(csrs[C_RSA2048].key, &rsa_ok);
    set(f->root, "public_key", o_bytes(f, rsa_ok, (size_t)rok));
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_OK);
    assert_int_equal(o.keytype, MC_KEY_RSA);
    assert_int_equal(o.key_bits, 2048);
    OPENSSL_free(rsa_ok);
    /* an attested Ed448 key (SBR 6.1.5, 7.1.3.1.3) passes; 56 of its 57 bytes do not */
    uint8_t *ed = NULL;
    int en = i2d_PUBKEY(csrs[C_ED448].key, &ed);
    assert_int_equal(en, 69);
    set(f->root, "public_key", o_bytes(f, ed, (size_t)en));
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_OK);
    assert_int_equal(o.keytype, MC_KEY_ED448);
    assert_int_equal(o.key_bits, 448);
    assert_int_equal(o.spki_len, (size_t)en);
    ed[1] = 0x42;  /* SEQUENCE one byte shorter */
    ed[10] = 0x39; /* BIT STRING one byte shorter */
    set(f->root, "public_key", o_bytes(f, ed, (size_t)en - 1));
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "public_key");
    assert_string_equal(err.rule, "SBR 6.1.5");
    assert_non_null(strstr(err.message, "Ed448 public key is 57 bytes, got 56"));
    OPENSSL_free(ed);
    /* SBR 6.1.5: an attested Ed25519 key passes; with its y replaced by p = 2^255 - 19 (not a
     * valid RFC 8032 encoding: y >= p) it is refused, naming public_key and the rule. The full
     * set of decoding failures is in test_keycheck. */
    ed = NULL;
    en = i2d_PUBKEY(csrs[C_ED25519].key, &ed);
    assert_int_equal(en, 44);
    set(f->root, "public_key", o_bytes(f, ed, (size_t)en));
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_OK);
    assert_int_equal(o.keytype, MC_KEY_ED25519);
    memset(ed + 12, 0xff, 32);
    ed[12] = 0xed;
    ed[43] = 0x7f;
    set(f->root, "public_key", o_bytes(f, ed, (size_t)en));
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "public_key");
    assert_string_equal(err.rule, "SBR 6.1.5");
    assert_non_null(strstr(err.message, "not below p"));
    OPENSSL_free(ed);
    /* SBR 7.1.3.1: RSA without the NULL parameter is refused here too, naming public_key */
    uint8_t *rsa = NULL;
    int rn = i2d_PUBKEY(csrs[C_RSA2048].key, &rsa);
    assert_true(rn > 0 && rsa[4] == 0x30 && rsa[5] == 0x0d);
    uint8_t bad[600];
    /* 30 82 01 22 | 30 0d <oid 11 bytes> 05 00 | 03 82 01 0f ... -> drop the NULL */
    memcpy(bad, rsa, 4);
    bad[3] = (uint8_t)(rsa[3] - 2);
    bad[4] = 0x30;
    bad[5] = 0x0b;
    memcpy(bad + 6, rsa + 6, 11);
    memcpy(bad + 17, rsa + 19, (size_t)rn - 19);
    set(f->root, "public_key", o_bytes(f, bad, (size_t)rn - 2));
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "public_key");
    assert_string_equal(err.rule, "SBR 7.1.3.1");
    /* SBR 6.1.5: RSA-1024 refused */
    uint8_t *small = NULL;
    int sn = i2d_PUBKEY(csrs[C_RSA1024].key, &small);
    set(f->root, "public_key", o_bytes(f, small, (size_t)sn));
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "public_key");
    /* trailing bytes */
    set(f->root, "public_key", o_bytes(f, spki, (size_t)n - 1));
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
    assert_int_not_equal(mc_order_check_csr(&o, &digests, &err), MC_OK);
    assert_string_equal(err.field, "public_key");
    /* key_source is required with public_key */
    set(f->root, "public_key", o_bytes(f, spki, (size_t)n));
    drop(f->root, "key_source");
    expect_err(f, MC_ERR_INVALID, "key_source", "orders.md key_source");
    /* both forms at once */
    add(f, f->root, "key_source", o_str("platform-generated"));
    add(f, f->root, "csr", o_bytes(f, csrs[C_P256].der, csrs[C_P256].len));
    expect_err(f, MC_ERR_INVALID, "public_key", "orders.md key");
    /* key_source without public_key */
    drop(f->root, "public_key");
    expect_err(f, MC_ERR_INVALID, "key_source", "orders.md key_source");
    OPENSSL_free(spki);
    OPENSSL_free(rsa);
    OPENSSL_free(small);
}

static void test_unknown_key(void **state)
{
    fx *f = *state;
    add(f, f->root, "colour", o_str("blue"));
    expect_err(f, MC_ERR_INVALID, "colour", "orders.md unknown-key");
}

static void test_unknown_key_in_mailbox(void **state)
{
    fx *f = *state;
    add(f, mailbox(f, 0), "note", o_str("x"));
    expect_err(f, MC_ERR_INVALID, "mailboxes[0].note", "orders.md unknown-key");
}

static void test_non_str_key(void **state)
{
    fx *f = *state;
    add(f, f->root, "x", o_nil());
    f->root->via.map.ptr[f->root->via.map.size - 1].key = o_uint(7);
    expect_err(f, MC_ERR_INVALID, "", "orders.md keys");
}

static void test_duplicate_key(void **state)
{
    fx *f = *state;
    add(f, f->root, "profile", o_str("mailbox-strict"));
    expect_err(f, MC_ERR_INVALID, "profile", "orders.md duplicate-key");
}

static void test_duplicate_key_in_mailbox(void **state)
{
    fx *f = *state;
    add(f, mailbox(f, 1), "method", o_str("3.2.2.1"));
    expect_err(f, MC_ERR_INVALID, "mailboxes[1].method", "orders.md duplicate-key");
}

/* Duplicate keys must also be caught when they arrive on the wire (msgpack keeps both). */
static void test_duplicate_key_wire(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str_with_body(&pk, "b", 1);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    mc_order o;
    mc_errdetail err;
    assert_int_equal(mc_order_decode(&up.data, &o, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "id");
    assert_string_equal(err.rule, "orders.md duplicate-key");
    assert_int_equal(o.id.len, 0); /* ambiguous id: not carried */
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

static void test_not_a_map(void **state)
{
    (void)state;
    msgpack_object a = {.type = MSGPACK_OBJECT_ARRAY};
    mc_order o;
    mc_errdetail err;
    assert_int_equal(mc_order_decode(&a, &o, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "");
}

/* ---- wrong types ---- */

static void test_wrong_types(void **state)
{
    static const struct {
        const char *field;
        int kind; /* 0 int, 1 bin, 2 array, 3 nil, 4 str, 5 map, 6 negative int */
    } top[] = {{"id", 0},        {"account", 1}, {"profile", 2}, {"usage", 0},
               {"mailboxes", 5}, {"csr", 4},     {"replaces", 0}};
    static const struct {
        const char *key;
        int kind;
    } mb[] = {{"address", 0}, {"method", 0}, {"validated_at", 4}, {"reference", 3}};
    for (size_t i = 0; i < sizeof top / sizeof top[0] + sizeof mb / sizeof mb[0] + 1; i++) {
        fx_teardown(state);
        assert_int_equal(fx_setup(state), 0);
        fx *f = *state;
        size_t ntop = sizeof top / sizeof top[0];
        int kind = i < ntop ? top[i].kind : i < ntop + 4 ? mb[i - ntop].kind : 4;
        msgpack_object v = kind == 0   ? o_uint(5)
                           : kind == 1 ? o_bin(f, 3)
                           : kind == 2 ? o_array(f, 0)
                           : kind == 3 ? o_nil()
                           : kind == 4 ? o_str("x")
                                       : o_map();
        char path[64];
        if (i < ntop) {
            set(f->root, top[i].field, v);
            snprintf(path, sizeof path, "%s", top[i].field);
        } else if (i < ntop + 4) {
            set(mailbox(f, 0), mb[i - ntop].key, v);
            snprintf(path, sizeof path, "mailboxes[0].%s", mb[i - ntop].key);
        } else { /* a mailbox that is not a map */
            *mailbox(f, 1) = v;
            snprintf(path, sizeof path, "mailboxes[1]");
        }
        expect_err(f, MC_ERR_INVALID, path, NULL);
    }
}

static void test_validated_at_positive(void **state)
{
    fx *f = *state;
    set(mailbox(f, 0), "validated_at", o_int(-5));
    expect_err(f, MC_ERR_INVALID, "mailboxes[0].validated_at", "orders.md mailboxes.validated_at");
    set(mailbox(f, 0), "validated_at", o_uint(0));
    expect_err(f, MC_ERR_INVALID, "mailboxes[0].validated_at", "orders.md mailboxes.validated_at");
    set(mailbox(f, 0), "validated_at", o_uint((uint64_t)INT64_MAX + 1));
    expect_err(f, MC_ERR_INVALID, "mailboxes[0].validated_at", "orders.md mailboxes.validated_at");
    msgpack_object fl = {.type = MSGPACK_OBJECT_FLOAT64};
    fl.via.f64 = 1700000000.5;
    set(mailbox(f, 0), "validated_at", fl);
    expect_err(f, MC_ERR_INVALID, "mailboxes[0].validated_at", "orders.md mailboxes.validated_at");
    set(mailbox(f, 0), "validated_at", o_uint(1));
    mc_order o;
    expect_ok(f, &o);
    assert_int_equal(o.mailboxes[0].validated_at, 1);
}

/* ---- limits: each limited field at its limit passes, one past fails ---- */

static void test_limits(void **state)
{
    static const struct {
        const char *field;
        size_t max;
        char fill;
    } lim[] = {{"id", MC_ORDER_ID_MAX, 'i'},
               {"account", MC_ORDER_ACCOUNT_MAX, 'a'},
               {"profile", MC_ORDER_PROFILE_MAX, 'p'},
               {"replaces", MC_ORDER_REPLACES_MAX, 'f'}};
    mc_order o;
    for (size_t i = 0; i < 4; i++) {
        fx *f = *state;
        set(f->root, lim[i].field, o_strn(f, lim[i].fill, lim[i].max));
        expect_ok(f, &o);
        set(f->root, lim[i].field, o_strn(f, lim[i].fill, lim[i].max + 2));
        expect_err(f, MC_ERR_INVALID, lim[i].field, NULL);
        set(f->root, lim[i].field, o_strn(f, lim[i].fill, lim[i].max + 1));
        expect_err(f, MC_ERR_INVALID, lim[i].field, NULL);
        set(f->root, lim[i].field, o_str(""));
        expect_err(f, MC_ERR_INVALID, lim[i].field, NULL);
        fx_teardown(state);
        assert_int_equal(fx_setup(state), 0);
    }
    fx *f = *state;
    set(mailbox(f, 1), "reference", o_strn(f, 'r', MC_ORDER_REFERENCE_MAX));
    expect_ok(f, &o);
    set(mailbox(f, 1), "reference", o_strn(f, 'r', MC_ORDER_REFERENCE_MAX + 1));
    expect_err(f, MC_ERR_INVALID, "mailboxes[1].reference", "orders.md mailboxes.reference");
    set(mailbox(f, 1), "reference", o_str(""));
    expect_err(f, MC_ERR_INVALID, "mailboxes[1].reference", "orders.md mailboxes.reference");
    set(mailbox(f, 1), "reference", o_str("dcv-77"));

    set(f->root, "csr", o_bin(f, MC_ORDER_CSR_MAX));
    expect_ok(f, &o); /* size only: the content is mc_order_check_csr's business */
    set(f->root, "csr", o_bin(f, MC_ORDER_CSR_MAX + 1));
    expect_err(f, MC_ERR_INVALID, "csr", "orders.md csr");
    set(f->root, "csr", o_bin(f, 0));
    expect_err(f, MC_ERR_INVALID, "csr", "orders.md csr");
    set(f->root, "csr", o_bin(f, 10));

    /* Address: 254 octets pass, 255 fail (local 64 + "@" + 61.61.61.3 = 189). */
    char *a254 = fx_alloc(f, 256), *a255 = fx_alloc(f, 256);
    memset(a254, 'd', 254);
    a254[64] = '@';
    a254[65 + 61] = a254[65 + 61 + 1 + 61] = a254[65 + 3 * 61 + 2] = '.';
    memcpy(a255, a254, 254);
    a255[254] = 'd';
    assert_int_equal(strlen(a254), 254);
    assert_int_equal(mc_mailbox_check(a254, 254, "a", NULL), MC_OK);
    set(mailbox(f, 0), "address", o_str(a254));
    expect_ok(f, &o);
    set(mailbox(f, 0), "address", o_str(a255));
    expect_err(f, MC_ERR_INVALID, "mailboxes[0].address", "SBR 1.6.1");
}

static void test_charsets(void **state)
{
    fx *f = *state;
    set(f->root, "id", o_str("order\x01"));
    expect_err(f, MC_ERR_INVALID, "id", "orders.md id");
    set(f->root, "id", o_str("order \xc3\xa9"));
    expect_err(f, MC_ERR_INVALID, "id", "orders.md id");
    set(f->root, "id", o_str("order 7/b ~ok"));
    mc_order o;
    expect_ok(f, &o);

    set(f->root, "profile", o_str("Mailbox-strict"));
    expect_err(f, MC_ERR_INVALID, "profile", "orders.md profile");
    set(f->root, "profile", o_str("mailbox_strict"));
    expect_err(f, MC_ERR_INVALID, "profile", "orders.md profile");
    set(f->root, "profile", o_str("mailbox-strict-2"));
    expect_ok(f, &o);

    set(f->root, "account", o_str("acct\n"));
    expect_err(f, MC_ERR_INVALID, "account", "orders.md account");
    set(f->root, "account", o_str("acct\xff"));
    expect_err(f, MC_ERR_INVALID, "account", "orders.md account");
    set(f->root, "account",
        o_str("Gr\xc3\xbc\xc3\x9f"
              "e GmbH"));
    expect_ok(f, &o);

    set(f->root, "replaces", o_str("ABCD"));
    expect_err(f, MC_ERR_INVALID, "replaces", "orders.md replaces");
    set(f->root, "replaces", o_str("0g"));
    expect_err(f, MC_ERR_INVALID, "replaces", "orders.md replaces");
    set(f->root, "replaces", o_str("abc"));
    expect_err(f, MC_ERR_INVALID, "replaces", "orders.md replaces");
    set(f->root, "replaces", o_str("ab"));
    expect_ok(f, &o);

    set(f->root, "usage", o_str("both"));
    expect_err(f, MC_ERR_INVALID, "usage", "orders.md usage");
}

/* ---- mailboxes array ---- */

static void test_mailboxes_count(void **state)
{
    fx *f = *state;
    set(f->root, "mailboxes", o_array(f, 0));
    expect_err(f, MC_ERR_INVALID, "mailboxes", "orders.md mailboxes");

    /* 16 distinct mailboxes pass, 17 fail. */
    fx_teardown(state);
    assert_int_equal(fx_setup(state), 0);
    f = *state;
    msgpack_object proto = *mailbox(f, 0);
    msgpack_object arr = o_array(f, 17);
    for (size_t i = 0; i < 17; i++) {
        msgpack_object m = o_map();
        m.via.map.ptr = fx_alloc(f, 4 * sizeof(msgpack_object_kv));
        memcpy(m.via.map.ptr, proto.via.map.ptr, 4 * sizeof(msgpack_object_kv));
        m.via.map.size = 4;
        char *a = fx_alloc(f, 32);
        snprintf(a, 32, "user%zu@example.com", i);
        set(&m, "address", o_str(a));
        arr.via.array.ptr[i] = m;
    }
    arr.via.array.size = 16;
    set(f->root, "mailboxes", arr);
    mc_order o;
    expect_ok(f, &o);
    assert_int_equal(o.n_mailboxes, 16);
    assert_true(str_is(o.mailboxes[15].address, "user15@example.com"));
    arr.via.array.size = 17;
    set(f->root, "mailboxes", arr);
    expect_err(f, MC_ERR_INVALID, "mailboxes", "orders.md mailboxes");
}

static void test_bad_method(void **state)
{
    fx *f = *state;
    static const char *const bad[] = {"3.2.2.5", "3.2.2", "3.2.2.1 ", "email", ""};
    for (size_t i = 0; i < 5; i++) {
        set(mailbox(f, 1), "method", o_str(bad[i]));
        expect_err(f, MC_ERR_INVALID, "mailboxes[1].method", "SBR 3.2.2");
    }
}

static void test_duplicate_mailbox(void **state)
{
    fx *f = *state;
    mc_order o;
    /* Domain compared case-insensitively. */
    set(mailbox(f, 0), "address", o_str("alice@Example.COM"));
    set(mailbox(f, 1), "address", o_str("alice@example.com"));
    expect_err(f, MC_ERR_INVALID, "mailboxes[1].address", "orders.md duplicate-mailbox");
    /* The local part is exact: Alice and alice are different mailboxes. */
    set(mailbox(f, 1), "address", o_str("Alice@example.com"));
    expect_ok(f, &o);
    assert_int_equal(o.n_mailboxes, 2);
    /* Same local part, different domain. */
    set(mailbox(f, 1), "address", o_str("alice@example.co"));
    expect_ok(f, &o);
}

static void test_bad_address_path(void **state)
{
    fx *f = *state;
    set(mailbox(f, 1), "address", o_str("A <a@b.c>"));
    expect_err(f, MC_ERR_INVALID, "mailboxes[1].address", "SBR 1.6.1");
}

static void test_id_carried_on_rejection(void **state)
{
    fx *f = *state;
    set(mailbox(f, 1), "method", o_str("nope"));
    mc_order o;
    mc_errdetail err;
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_ERR_INVALID);
    assert_true(str_is(o.id, "order-0001"));
    /* An unknown key before the id: the id is still carried. */
    fx_teardown(state);
    assert_int_equal(fx_setup(state), 0);
    f = *state;
    add(f, f->root, "zzz", o_nil());
    msgpack_object_kv *kv = f->root->via.map.ptr;
    msgpack_object_kv last = kv[f->root->via.map.size - 1];
    memmove(kv + 1, kv, (f->root->via.map.size - 1) * sizeof *kv);
    kv[0] = last;
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "zzz");
    assert_true(str_is(o.id, "order-0001"));
    /* An invalid id is not carried. */
    set(f->root, "id", o_strn(f, 'x', MC_ORDER_ID_MAX + 1));
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_ERR_INVALID);
    assert_int_equal(o.id.len, 0);
}

/* ---- mailbox syntax table (SBR 1.6.1) ---- */

static void test_mailbox_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *a;
        int ok;
        const char *rule; /* when not SBR 1.6.1 */
    } cases[] = {
        {"alice@example.com", 1, NULL},
        {"a@b.co", 1, NULL},
        {"first.last@example.com", 1, NULL},
        {"user+tag@sub.example.co.uk", 1, NULL},
        {"!#$%&'*+-/=?^_`{|}~@example.com", 1, NULL},
        {"ALICE@EXAMPLE.COM", 1, NULL},
        {"j\xc3\xb6rg@example.com", 1, NULL},              /* UTF-8 local part (RFC 6532) */
        {"\xe7\x94\xa8\xe6\x88\xb7@example.com", 1, NULL}, /* CJK local part */
        {"\xf0\x9f\x93\xa7mail@example.com", 1, NULL},     /* 4-byte UTF-8 */
        {"alice@xn--bcher-kva.example", 1, NULL},          /* A-label accepted */
        {"alice@1-2-3.example.com", 1, NULL},              /* digits and inner hyphens */
        {"alice@123.example", 1, NULL},
        {"j\xf6rg@example.com", 0, NULL},             /* Latin-1, invalid UTF-8 */
        {"j\xc3@example.com", 0, NULL},               /* truncated sequence */
        {"j\xc0\xafrg@example.com", 0, NULL},         /* overlong */
        {"j\xed\xa0\x80rg@example.com", 0, NULL},     /* UTF-16 surrogate */
        {"j\xe0\x80\xafrg@example.com", 0, NULL},     /* 3-byte overlong */
        {"j\xf0\x80\x80\xafrg@example.com", 0, NULL}, /* 4-byte overlong */
        {"j\xf4\x90\x80\x80rg@example.com", 0, NULL}, /* above U+10FFFF */
        {".alice@example.com", 0, NULL},              /* dot at start */
        {"alice.@example.com", 0, NULL},              /* dot at end */
        {"al..ice@example.com", 0, NULL},             /* double dot */
        {"alice@exa-.example.com", 0, NULL},          /* label ends with a hyphen */
        {"alice@-exa.example.com", 0, NULL},          /* label starts with a hyphen */
        {"alice@b\xc3\xbc"
         "cher.example",
         1, NULL},                                          /* IDN U-label: converted */
        {"alice@xn--zz.example", 0, "SBR 7.1.4.2.1"},       /* bad punycode */
        {"alice@\xe2\x98\x83.example", 0, "SBR 7.1.4.2.1"}, /* U+2603: IDNA2008 DISALLOWED */
        {"alice@xn--n3h.example", 0, "SBR 7.1.4.2.1"},      /* its A-label */
        {"A <a@b.c>", 0, NULL},                             /* display name */
        {"<a@b.c>", 0, NULL},                               /* angle brackets */
        {"\"a b\"@example.com", 0, "orders.md quoted-local-part"},
        {"alice@localhost", 0, NULL}, /* one label */
        {"alice@[192.0.2.1]", 0, "orders.md address-literal"},
        {"alice@example..com", 0, NULL}, /* empty label */
        {"alice@example.com.", 0, NULL}, /* trailing dot */
        {"alice@.example.com", 0, NULL}, /* leading dot */
        {"alice", 0, NULL},              /* no @ */
        {"@example.com", 0, NULL},       /* empty local part */
        {"alice@", 0, NULL},             /* empty domain */
        {"a@b@example.com", 0, NULL},    /* second @ */
        {"al ice@example.com", 0, NULL}, /* space */
        {"al(ice@example.com", 0, NULL}, /* special */
        {"alice@exa_mple.com", 0, NULL}, /* underscore in domain */
        {" alice@example.com", 0, NULL}, /* padding */
        {"alice@example.com ", 0, NULL},
        {"", 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mc_errdetail err;
        mc_err rc = mc_mailbox_check(cases[i].a, strlen(cases[i].a), "m", &err);
        if ((rc == MC_OK) != cases[i].ok)
            fail_msg("case %zu \"%s\": got %s (%s)", i, cases[i].a, mc_err_name(rc),
                     rc ? err.message : "");
        if (!cases[i].ok) {
            assert_int_equal(rc, MC_ERR_INVALID);
            assert_string_equal(err.field, "m");
            assert_string_equal(err.rule, cases[i].rule ? cases[i].rule : "SBR 1.6.1");
        }
    }
}

static void test_mailbox_lengths(void **state)
{
    (void)state;
    char buf[400];
    mc_errdetail err;
    /* local part 64 octets passes, 65 fails */
    memset(buf, 'a', 65);
    strcpy(buf + 64, "@example.com");
    assert_int_equal(mc_mailbox_check(buf, strlen(buf), "m", NULL), MC_OK);
    memset(buf, 'a', 65);
    strcpy(buf + 65, "@example.com");
    assert_int_equal(mc_mailbox_check(buf, strlen(buf), "m", &err), MC_ERR_INVALID);
    assert_non_null(strstr(err.message, "64"));
    /* a UTF-8 local part counts octets: 32 two-octet characters = 64 octets pass, 33 fail */
    size_t n = 0;
    for (int i = 0; i < 32; i++) {
        buf[n++] = (char)0xc3;
        buf[n++] = (char)0xa9;
    }
    strcpy(buf + n, "@example.com");
    assert_int_equal(mc_mailbox_check(buf, strlen(buf), "m", NULL), MC_OK);
    memmove(buf + 2, buf, strlen(buf) + 1);
    assert_int_equal(mc_mailbox_check(buf, strlen(buf), "m", NULL), MC_ERR_INVALID);
    /* label 63 octets passes, 64 fails */
    strcpy(buf, "a@");
    memset(buf + 2, 'd', 64);
    strcpy(buf + 2 + 63, ".example");
    assert_int_equal(mc_mailbox_check(buf, strlen(buf), "m", NULL), MC_OK);
    memset(buf + 2, 'd', 64);
    strcpy(buf + 2 + 64, ".example");
    assert_int_equal(mc_mailbox_check(buf, strlen(buf), "m", &err), MC_ERR_INVALID);
    assert_non_null(strstr(err.message, "63"));
    /* an embedded NUL is not part of any address */
    assert_int_equal(mc_mailbox_check("a\0b@example.com", 15, "m", NULL), MC_ERR_INVALID);
}

static void test_mailbox_messages(void **state)
{
    (void)state;
    mc_errdetail err;
    assert_int_equal(mc_mailbox_check("a@\xe2\x98\x83.example", 13, "m", &err), MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 7.1.4.2.1");
    assert_non_null(strstr(err.message, "\\xe2\\x98\\x83")); /* the value, escaped */
    assert_non_null(strstr(err.message, "disallowed"));      /* libidn2's reason */
    assert_int_equal(mc_mailbox_check("A <a@b.c>", 9, "m", &err), MC_ERR_INVALID);
    assert_non_null(strstr(err.message, "bare address"));
    assert_int_equal(mc_mailbox_check("j\xf6rg@x.example", 14, "m", &err), MC_ERR_INVALID);
    assert_non_null(strstr(err.message, "UTF-8"));
    assert_non_null(strstr(err.message, "\\xf6")); /* shown escaped, not raw */
    assert_int_equal(mc_mailbox_check("\"q\"@x.example", 13, "m", &err), MC_ERR_INVALID);
    assert_string_equal(err.rule, "orders.md quoted-local-part");
}

/* SBR 7.1.4.2.1 (RFC 9598 3): an IDN domain is converted to A-labels (IDNA2008, UTS #46
 * non-transitional, as libidn2 does); invalid IDNs are refused naming the field and rule. */
static void test_mailbox_idn(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out; /* out NULL: refused with rule */
        const char *rule;
    } cases[] = {
        {"alice@m\xc3\xbcnchen.example", "alice@xn--mnchen-3ya.example", NULL},
        {"j\xc3\xb6rg@m\xc3\xbcnchen.example", "j\xc3\xb6rg@xn--mnchen-3ya.example", NULL},
        /* UTS #46 maps upper case, so the A-label is lower-case */
        {"Bob@M\xc3\x9c"
         "NCHEN.Example",
         "Bob@xn--mnchen-3ya.example", NULL},
        /* non-transitional: sharp s stays (IDNA2003 would give "fass") */
        {"a@fa\xc3\x9f.example", "a@xn--fa-hia.example", NULL},
        /* Japanese TLD and label */
        {"a@\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88",
         "a@xn--r8jz45g.xn--zckzah", NULL},
        /* ASCII domains are kept as given (case too), A-labels included */
        {"alice@Example.COM", "alice@Example.COM", NULL},
        {"a@xn--mnchen-3ya.example", "a@xn--mnchen-3ya.example", NULL},
        {"a@XN--MNCHEN-3YA.example", "a@XN--MNCHEN-3YA.example", NULL},
        /* refused */
        {"a@\xe2\x98\x83.example", NULL, "SBR 7.1.4.2.1"},       /* symbol: DISALLOWED */
        {"a@\xf0\x9f\x92\xa9.example", NULL, "SBR 7.1.4.2.1"},   /* emoji */
        {"a@xn--zz.example", NULL, "SBR 7.1.4.2.1"},             /* punycode does not decode */
        {"a@xn--ls8h.example", NULL, "SBR 7.1.4.2.1"},           /* decodes to an emoji */
        {"a@xn--abc.example", NULL, "SBR 7.1.4.2.1"},            /* decodes to a bad U-label */
        {"a@xn--xn--mnchen-3ya.example", NULL, "SBR 7.1.4.2.1"}, /* nested prefix */
        {"a@\xe2\x80\x90x.example", NULL, "SBR 7.1.4.2.1"},      /* U+2010 hyphen */
        {"a@a_b.m\xc3\xbcnchen.example", NULL, "SBR 1.6.1"},     /* '_' would be dropped */
        {"a@m\xc3\xbcnchen", NULL, "SBR 1.6.1"},                 /* one label */
        {"a@-m\xc3\xbcnchen.example", NULL, NULL},               /* leading hyphen */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[MC_MAILBOX_MAX + 1];
        size_t n = 0;
        mc_errdetail err;
        mc_err rc = mc_mailbox_to_ascii(cases[i].in, strlen(cases[i].in), out, sizeof out, &n,
                                        "mailboxes[0].address", &err);
        if (cases[i].out) {
            if (rc != MC_OK)
                fail_msg("case %zu: %s [%s]", i, err.message, err.rule);
            assert_int_equal(n, strlen(cases[i].out));
            assert_string_equal(out, cases[i].out);
            /* the check alone agrees */
            assert_int_equal(mc_mailbox_check(cases[i].in, strlen(cases[i].in), "m", NULL), MC_OK);
        } else {
            if (rc != MC_ERR_INVALID)
                fail_msg("case %zu \"%s\": %s, expected a rejection", i, cases[i].in,
                         mc_err_name(rc));
            assert_string_equal(err.field, "mailboxes[0].address");
            if (cases[i].rule)
                assert_string_equal(err.rule, cases[i].rule);
            assert_int_equal(mc_mailbox_check(cases[i].in, strlen(cases[i].in), "m", NULL),
                             MC_ERR_INVALID);
        }
    }
    /* The A-label form must fit 254 octets too: a 50-octet local part and 4 labels of 15
     * scattered CJK characters are 242 octets of UTF-8 but 258 with A-labels. */
    char buf[400], out[MC_MAILBOX_MAX + 1];
    size_t n = 0, k = 0;
    mc_errdetail err;
    memset(buf, 'a', 50);
    buf[50] = '@';
    k = 51;
    for (unsigned l = 0; l < 4; l++) {
        for (unsigned c = 0; c < 15; c++) {
            unsigned cp = 0x4e00 + (c * 0x3a7 + l * 0x1f3) % 0x5000;
            buf[k++] = (char)(0xe0 | (cp >> 12));
            buf[k++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            buf[k++] = (char)(0x80 | (cp & 0x3f));
        }
        buf[k++] = '.';
    }
    memcpy(buf + k, "example", 8);
    k += 7;
    assert_true(k <= MC_MAILBOX_MAX);
    assert_int_equal(k, 242);
    assert_int_equal(mc_mailbox_to_ascii(buf, k, out, sizeof out, &n, "m", &err), MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 1.6.1");
    assert_non_null(strstr(err.message, "258 octets with its domain as A-labels"));
    /* one label less fits */
    memmove(buf + 51, buf + 51 + 46, k - 51 - 46 + 1);
    assert_int_equal(mc_mailbox_to_ascii(buf, k - 46, out, sizeof out, &n, "m", &err), MC_OK);
    assert_int_equal(memcmp(out + 51, "xn--", 4), 0);
    /* a domain whose A-label form is over 253 octets: libidn2 refuses it */
    k = (size_t)snprintf(buf, sizeof buf, "a@");
    for (unsigned l = 0; l < 5; l++) {
        for (unsigned c = 0; c < 15; c++) {
            unsigned cp = 0x4e00 + (c * 0x3a7 + l * 0x1f3) % 0x5000;
            buf[k++] = (char)(0xe0 | (cp >> 12));
            buf[k++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            buf[k++] = (char)(0x80 | (cp & 0x3f));
        }
        buf[k++] = '.';
    }
    memcpy(buf + k, "example", 8);
    k += 7;
    assert_int_equal(mc_mailbox_to_ascii(buf, k, out, sizeof out, &n, "m", &err), MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 7.1.4.2.1");
    /* no output buffer is an internal error, not a crash */
    assert_int_equal(mc_mailbox_to_ascii("a@b.example", 11, NULL, 0, &n, "m", NULL),
                     MC_ERR_INTERNAL);
    /* mc_idn_to_ascii alone */
    const char *why = NULL;
    assert_int_equal(mc_idn_to_ascii("b\xc3\xbc"
                                     "cher.example",
                                     15, out, sizeof out, &why),
                     0);
    assert_string_equal(out, "xn--bcher-kva.example");
    assert_int_equal(mc_idn_to_ascii("xn--zz.example", 14, out, sizeof out, &why), -1);
    assert_non_null(why);
    assert_int_equal(mc_idn_to_ascii("b\xc3\xbc"
                                     "cher.example",
                                     15, out, 8, &why),
                     -1);
}

/* Orders: the decoded address carries the A-label domain, in the order's own buffer; duplicate
 * detection sees U-label and A-label spellings of one mailbox as the same. */
static void test_order_idn(void **state)
{
    fx *f = *state;
    mc_order o;
    set(mailbox(f, 0), "address", o_str("j\xc3\xb6rg@M\xc3\xbcnchen.example"));
    expect_ok(f, &o);
    assert_int_equal(o.mailboxes[0].address.len, strlen("j\xc3\xb6rg@xn--mnchen-3ya.example"));
    assert_memory_equal(o.mailboxes[0].address.p, "j\xc3\xb6rg@xn--mnchen-3ya.example",
                        o.mailboxes[0].address.len);
    assert_ptr_equal(o.mailboxes[0].address.p, o.idn[0]);
    /* an ASCII address is not copied */
    assert_ptr_not_equal(o.mailboxes[1].address.p, o.idn[1]);
    set(mailbox(f, 1), "address", o_str("j\xc3\xb6rg@xn--mnchen-3ya.example"));
    expect_err(f, MC_ERR_INVALID, "mailboxes[1].address", "orders.md duplicate-mailbox");
    set(mailbox(f, 1), "address", o_str("alice@xn--zz.example"));
    expect_err(f, MC_ERR_INVALID, "mailboxes[1].address", "SBR 7.1.4.2.1");
}

/* ---- CSR ---- */

static mc_err check(const uint8_t *der, size_t len, mc_order *o, mc_errdetail *err)
{
    memset(o, 0, sizeof *o);
    o->csr = der;
    o->csr_len = len;
    return mc_order_check_csr(o, &digests, err);
}

static void expect_csr_ok(const uint8_t *der, size_t len, EVP_PKEY *key, mc_keytype kt,
                          unsigned bits)
{
    mc_order o;
    mc_errdetail err;
    mc_err rc = check(der, len, &o, &err);
    if (rc)
        fail_msg("CSR refused: %s %s [%s]", mc_err_name(rc), err.message, err.rule);
    assert_int_equal(o.keytype, kt);
    assert_int_equal(o.key_bits, bits);
    /* spki points into the CSR and equals OpenSSL's own encoding of the key */
    assert_true(o.spki > der && o.spki + o.spki_len <= der + len);
    unsigned char *ref = NULL;
    int n = i2d_PUBKEY(key, &ref);
    assert_int_equal((size_t)n, o.spki_len);
    assert_memory_equal(ref, o.spki, o.spki_len);
    OPENSSL_free(ref);
}

static void expect_csr_err(const uint8_t *der, size_t len, mc_err code, const char *rule,
                           const char *msg_part)
{
    mc_order o;
    mc_errdetail err;
    mc_err rc = check(der, len, &o, &err);
    if (rc != code || (rule && strcmp(err.rule, rule)) ||
        (msg_part && !strstr(err.message, msg_part)))
        fail_msg("got %s [%s] %s; want %s [%s] ~%s", mc_err_name(rc), err.rule, err.message,
                 mc_err_name(code), rule ? rule : "*", msg_part ? msg_part : "*");
    assert_string_equal(err.field, "csr");
    assert_null(o.spki);
    assert_int_equal(o.keytype, MC_KEY_NONE);
}

static void test_csr_accepted(void **state)
{
    (void)state;
    expect_csr_ok(csrs[C_P256].der, csrs[C_P256].len, csrs[C_P256].key, MC_KEY_P256, 256);
    expect_csr_ok(csrs[C_P384].der, csrs[C_P384].len, csrs[C_P384].key, MC_KEY_P384, 384);
    expect_csr_ok(csrs[C_P521].der, csrs[C_P521].len, csrs[C_P521].key, MC_KEY_P521, 521);
    expect_csr_ok(csrs[C_ED25519].der, csrs[C_ED25519].len, csrs[C_ED25519].key, MC_KEY_ED25519,
                  256);
    expect_csr_ok(csrs[C_ED448].der, csrs[C_ED448].len, csrs[C_ED448].key, MC_KEY_ED448, 448);
    expect_csr_ok(csrs[C_RSA2048].der, csrs[C_RSA2048].len, csrs[C_RSA2048].key, MC_KEY_RSA, 2048);
    expect_csr_ok(csrs[C_RSA3072].der, csrs[C_RSA3072].len, csrs[C_RSA3072].key, MC_KEY_RSA, 3072);
}

static void test_csr_other_signatures(void **state)
{
    (void)state;
    static const char *const mds[] = {"SHA256", "SHA384", "SHA512"};
    size_t len;
    for (int i = 0; i < 3; i++) {
        /* PKCS#1 v1.5 and PSS with each SHA-2, ECDSA with a hash other than the curve's */
        uint8_t *d = mc_csrgen_csr(csrs[C_RSA2048].key, mds[i], 0, &len);
        assert_non_null(d);
        expect_csr_ok(d, len, csrs[C_RSA2048].key, MC_KEY_RSA, 2048);
        free(d);
        d = mc_csrgen_csr(csrs[C_RSA2048].key, mds[i], MC_CSRGEN_PSS, &len);
        assert_non_null(d);
        expect_csr_ok(d, len, csrs[C_RSA2048].key, MC_KEY_RSA, 2048);
        free(d);
        d = mc_csrgen_csr(csrs[C_P384].key, mds[i], 0, &len);
        assert_non_null(d);
        expect_csr_ok(d, len, csrs[C_P384].key, MC_KEY_P384, 384);
        free(d);
    }
    /* The declared PSS parameters are enforced (the outer signatureAlgorithm is not covered by
     * the signature, so a verifier that guessed them would accept a lie). */
    uint8_t *pss = mc_csrgen_csr(csrs[C_RSA2048].key, "SHA256", MC_CSRGEN_PSS, &len);
    assert_non_null(pss);
    const uint8_t salt32[] = {0xa2, 0x03, 0x02, 0x01, 0x20};
    uint8_t *at = memmem(pss, len, salt32, sizeof salt32);
    assert_non_null(at);
    at[4] = 0x21;
    expect_csr_err(pss, len, MC_ERR_CSR, "RFC 2986", "does not verify");
    at[4] = 0x20;
    const uint8_t sha256oid[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
    uint8_t *h1 = memmem(pss, len, sha256oid, sizeof sha256oid);
    assert_non_null(h1);
    uint8_t *h2 = memmem(h1 + 1, len - (size_t)(h1 + 1 - pss), sha256oid, sizeof sha256oid);
    assert_non_null(h2); /* the MGF1 hash */
    h2[8] = 0x02;
    expect_csr_err(pss, len, MC_ERR_CSR, "RFC 2986", "does not verify");
    h2[8] = 0x01;
    expect_csr_ok(pss, len, csrs[C_RSA2048].key, MC_KEY_RSA, 2048);
    free(pss);

    /* SHA-1 is not accepted even for proof of possession */
    uint8_t *d = mc_csrgen_csr(csrs[C_RSA2048].key, "SHA1", 0, &len);
    assert_non_null(d);
    expect_csr_err(d, len, MC_ERR_UNSUPPORTED, NULL, "1.2.840.113549.1.1.5");
    free(d);
    d = mc_csrgen_csr(csrs[C_RSA2048].key, "SHA1", MC_CSRGEN_PSS, &len);
    assert_non_null(d);
    expect_csr_err(d, len, MC_ERR_UNSUPPORTED, "RFC 4055 3.1", NULL);
    free(d);
}

/* SBR 6.1.5: RSA modulus at least 2048 bits and a multiple of 8 (passing: 2048, 3072 above). */
static void test_csr_rsa_size(void **state)
{
    (void)state;
    expect_csr_err(csrs[C_RSA1024].der, csrs[C_RSA1024].len, MC_ERR_INVALID, "SBR 6.1.5", "1024");
    expect_csr_err(csrs[C_RSA2052].der, csrs[C_RSA2052].len, MC_ERR_INVALID, "SBR 6.1.5",
                   "multiple of 8");
}

/* Re-encodes a CSR with another SubjectPublicKeyInfo (its signature then no longer verifies, so
 * only checks that run before the signature can be tested this way). */
static size_t with_spki(const csr_buf *c, const uint8_t *spki, size_t spki_len, uint8_t *out,
                        size_t cap)
{
    mc_der_cur cur = mc_der_cur_make(c->der, c->len), in, ci;
    mc_der_tlv req, cri, alg, sig, ver, subj, old, attrs;
    assert_int_equal(mc_der_expect(&cur, MC_DER_SEQUENCE, &req), MC_OK);
    in = mc_der_cur_in(&req);
    assert_int_equal(mc_der_expect(&in, MC_DER_SEQUENCE, &cri), MC_OK);
    assert_int_equal(mc_der_expect(&in, MC_DER_SEQUENCE, &alg), MC_OK);
    assert_int_equal(mc_der_expect(&in, MC_DER_BITSTRING, &sig), MC_OK);
    ci = mc_der_cur_in(&cri);
    assert_int_equal(mc_der_next(&ci, &ver), MC_OK);
    assert_int_equal(mc_der_next(&ci, &subj), MC_OK);
    assert_int_equal(mc_der_next(&ci, &old), MC_OK);
    assert_int_equal(mc_der_next(&ci, &attrs), MC_OK);
    mc_der_w w;
    mc_der_w_init(&w, out, cap);
    size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
    size_t m2 = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_raw(&w, ver.raw, ver.rawlen);
    mc_der_put_raw(&w, subj.raw, subj.rawlen);
    mc_der_put_raw(&w, spki, spki_len);
    mc_der_put_raw(&w, attrs.raw, attrs.rawlen);
    mc_der_end(&w, m2);
    mc_der_put_raw(&w, alg.raw, alg.rawlen);
    mc_der_put_raw(&w, sig.raw, sig.rawlen);
    mc_der_end(&w, m);
    assert_int_equal(w.err, MC_OK);
    return w.len;
}

/* An RSA SPKI with the given exponent and the 2048-bit key's modulus. */
static size_t rsa_spki(const uint8_t *e, size_t elen, const uint8_t *algid, size_t algid_len,
                       uint8_t *out, size_t cap)
{
    BIGNUM *n = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(csrs[C_RSA2048].key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    uint8_t mod[256];
    assert_int_equal(BN_bn2binpad(n, mod, sizeof mod), 256);
    BN_free(n);
    uint8_t key[600];
    mc_der_w k;
    mc_der_w_init(&k, key, sizeof key);
    size_t m = mc_der_begin(&k, MC_DER_SEQUENCE);
    mc_der_put_uint(&k, mod, sizeof mod);
    mc_der_put_uint(&k, e, elen);
    mc_der_end(&k, m);
    mc_der_w w;
    mc_der_w_init(&w, out, cap);
    m = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_raw(&w, algid, algid_len);
    mc_der_put_bits(&w, key, k.len);
    mc_der_end(&w, m);
    assert_int_equal(k.err | w.err, MC_OK);
    return w.len;
}

/* SBR 6.1.6: public exponent odd and >= 3. */
static void test_csr_rsa_exponent(void **state)
{
    (void)state;
    mc_bytes rsa = mc_keytype_algid(MC_KEY_RSA);
    uint8_t spki[600], csr[4096];
    const uint8_t even[] = {0x01, 0x00, 0x00}, one[] = {0x01};
    size_t n = rsa_spki(even, sizeof even, rsa.p, rsa.len, spki, sizeof spki);
    size_t cl = with_spki(&csrs[C_RSA2048], spki, n, csr, sizeof csr);
    expect_csr_err(csr, cl, MC_ERR_INVALID, "SBR 6.1.6", "odd");
    n = rsa_spki(one, sizeof one, rsa.p, rsa.len, spki, sizeof spki);
    cl = with_spki(&csrs[C_RSA2048], spki, n, csr, sizeof csr);
    expect_csr_err(csr, cl, MC_ERR_INVALID, "SBR 6.1.6", "at least 3");
    /* The re-encoding itself is sound: with the real exponent only the signature fails. */
    const uint8_t f4[] = {0x01, 0x00, 0x01};
    n = rsa_spki(f4, sizeof f4, rsa.p, rsa.len, spki, sizeof spki);
    cl = with_spki(&csrs[C_RSA2048], spki, n, csr, sizeof csr);
    assert_int_equal(cl, csrs[C_RSA2048].len);
    assert_memory_equal(csr, csrs[C_RSA2048].der, cl); /* identical bytes */
    /* Exponent 3 meets the SHALL (odd, >= 3) but not the SBR 6.1.6 SHOULD range [2^16+1,
     * 2^256-1], which mailca enforces (include/mailca/keycheck.h; tests/test_keycheck.c). */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *three = BN_new();
    EVP_PKEY *k3 = NULL;
    assert_non_null(ctx);
    assert_int_equal(BN_set_word(three, 3), 1);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, three), 1);
    assert_int_equal(EVP_PKEY_keygen(ctx, &k3), 1);
    size_t len;
    uint8_t *d = mc_csrgen_csr(k3, NULL, 0, &len);
    assert_non_null(d);
    expect_csr_err(d, len, MC_ERR_INVALID, "SBR 6.1.6", "outside [2^16+1, 2^256-1]");
    free(d);
    EVP_PKEY_free(k3);
    BN_free(three);
    EVP_PKEY_CTX_free(ctx);
}

/* SBR 7.1.3.1: the SPKI AlgorithmIdentifier must be one of the exact encodings. */
static void test_csr_spki_algid(void **state)
{
    (void)state;
    /* rsaEncryption without the NULL parameter */
    const uint8_t nonull[] = {0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48,
                              0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
    const uint8_t f4[] = {0x01, 0x00, 0x01};
    uint8_t spki[600], csr[4096];
    size_t n = rsa_spki(f4, sizeof f4, nonull, sizeof nonull, spki, sizeof spki);
    size_t cl = with_spki(&csrs[C_RSA2048], spki, n, csr, sizeof csr);
    expect_csr_err(csr, cl, MC_ERR_INVALID, "SBR 7.1.3.1", "1.2.840.113549.1.1.1");

    /* a P-256 key with explicit curve parameters, in a genuinely signed CSR */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;
    OSSL_PARAM p[] = {OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0),
                      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, "explicit", 0),
                      OSSL_PARAM_END};
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_params(ctx, p), 1);
    assert_int_equal(EVP_PKEY_keygen(ctx, &k), 1);
    size_t len;
    uint8_t *d = mc_csrgen_csr(k, "SHA256", 0, &len);
    assert_non_null(d);
    expect_csr_err(d, len, MC_ERR_INVALID, "SBR 7.1.3.1", "1.2.840.10045.2.1");
    free(d);
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(ctx);

    /* an RSA key labelled id-RSASSA-PSS in the SPKI (SBR 7.1.3.1.1 forbids it) */
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
    k = NULL;
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1);
    assert_int_equal(EVP_PKEY_keygen(ctx, &k), 1);
    d = mc_csrgen_csr(k, "SHA256", 0, &len);
    assert_non_null(d);
    expect_csr_err(d, len, MC_ERR_INVALID, "SBR 7.1.3.1", "1.2.840.113549.1.1.10");
    free(d);
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(ctx);
}

/* Ed448 subject keys (SBR 6.1.5, 7.1.3.1.3): accepted in test_csr_accepted; here what is
 * refused. */
static void test_csr_ed448(void **state)
{
    (void)state;
    mc_order o;
    assert_int_equal(check(csrs[C_ED448].der, csrs[C_ED448].len, &o, NULL), MC_OK);
    /* 30 43 | 30 05 06 03 2b 65 71 | 03 3a 00 <57-byte key> (RFC 8410 4) */
    assert_int_equal(o.spki_len, 2 + 7 + 3 + 57);
    uint8_t spki[80], csr[1024];
    memcpy(spki, o.spki, o.spki_len);
    const uint8_t algid[] = {0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71};
    assert_memory_equal(spki + 2, algid, sizeof algid);

    /* SBR 7.1.3.1.3: parameters absent, so id-Ed448 with a NULL is not the allowed encoding */
    mc_der_w w;
    mc_der_w_init(&w, spki, sizeof spki);
    size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
    const uint8_t with_null[] = {0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x71, 0x05, 0x00};
    mc_der_put_raw(&w, with_null, sizeof with_null);
    mc_der_put_bits(&w, o.spki + 12, 57);
    mc_der_end(&w, m);
    assert_int_equal(w.err, MC_OK);
    size_t cl = with_spki(&csrs[C_ED448], spki, w.len, csr, sizeof csr);
    expect_csr_err(csr, cl, MC_ERR_INVALID, "SBR 7.1.3.1", "1.3.101.113");

    /* SBR 6.1.5: a 56-byte key is no curve448 key */
    mc_der_w_init(&w, spki, sizeof spki);
    m = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_raw(&w, algid, sizeof algid);
    mc_der_put_bits(&w, o.spki + 12, 56);
    mc_der_end(&w, m);
    assert_int_equal(w.err, MC_OK);
    cl = with_spki(&csrs[C_ED448], spki, w.len, csr, sizeof csr);
    expect_csr_err(csr, cl, MC_ERR_INVALID, "SBR 6.1.5", "57 bytes, got 56");

    /* The CSR's signatureAlgorithm must fit the key: id-Ed25519 over an Ed448 key is refused,
     * and id-Ed448 takes no parameters (RFC 8410 3). The signature is a 114-byte BIT STRING
     * (03 73 00 ...) preceded by the 7-byte AlgorithmIdentifier. */
    size_t len = csrs[C_ED448].len, at = len - 117 - sizeof algid;
    uint8_t *d = malloc(len + 2);
    assert_non_null(d);
    memcpy(d, csrs[C_ED448].der, len);
    assert_memory_equal(d + at, algid, sizeof algid);
    d[at + 6] = 0x70;
    expect_csr_err(d, len, MC_ERR_CSR, "RFC 2986", "Ed25519 does not fit the ed448");
    /* 30 07 06 03 2b 65 71 05 00 in place of the algorithm (outer lengths + 2) */
    assert_true(d[1] == 0x81);
    d[2] = (uint8_t)(d[2] + 2);
    memcpy(d + at, with_null, sizeof with_null);
    memcpy(d + at + sizeof with_null, csrs[C_ED448].der + at + sizeof algid, 117);
    expect_csr_err(d, len + 2, MC_ERR_CSR, "RFC 2986", "Ed448 has unexpected parameters");
    free(d);
}

/* SBR 6.1.5: an EC key must be a valid point on its curve (passing case: the P-256 CSR). */
static void test_csr_ec_point(void **state)
{
    (void)state;
    mc_order o;
    assert_int_equal(check(csrs[C_P256].der, csrs[C_P256].len, &o, NULL), MC_OK);
    uint8_t spki[128], csr[1024];
    size_t n = o.spki_len;
    memcpy(spki, o.spki, n);
    spki[n - 1] ^= 0x01; /* Y changed: off the curve */
    size_t cl = with_spki(&csrs[C_P256], spki, n, csr, sizeof csr);
    expect_csr_err(csr, cl, MC_ERR_INVALID, "SBR 6.1.5", "valid point");

    /* compressed form: 0x02/0x03 || X (RFC 5480 2.2: not accepted here) */
    mc_der_w w;
    mc_bytes alg = mc_keytype_algid(MC_KEY_P256);
    uint8_t pt[33];
    pt[0] = 0x02;
    memcpy(pt + 1, o.spki + n - 64, 32);
    mc_der_w_init(&w, spki, sizeof spki);
    size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_raw(&w, alg.p, alg.len);
    mc_der_put_bits(&w, pt, sizeof pt);
    mc_der_end(&w, m);
    cl = with_spki(&csrs[C_P256], spki, w.len, csr, sizeof csr);
    expect_csr_err(csr, cl, MC_ERR_INVALID, "RFC 5480 2.2", "uncompressed");
}

static void test_csr_tampered(void **state)
{
    (void)state;
    static const int which[] = {C_P256, C_RSA2048, C_ED25519, C_ED448, C_P521};
    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++) {
        csr_buf *c = &csrs[which[i]];
        uint8_t *d = malloc(c->len);
        assert_non_null(d);
        /* the signature's last byte */
        memcpy(d, c->der, c->len);
        d[c->len - 1] ^= 0x5a;
        expect_csr_err(d, c->len, MC_ERR_CSR, "RFC 2986", "does not verify");
        /* a byte of the subject ("mailca test") inside certificationRequestInfo */
        memcpy(d, c->der, c->len);
        uint8_t *cn = memmem(d, c->len, "mailca test", 11);
        assert_non_null(cn);
        cn[0] = 'M';
        expect_csr_err(d, c->len, MC_ERR_CSR, "RFC 2986", "does not verify");
        free(d);
    }
}

static void test_csr_truncated(void **state)
{
    (void)state;
    csr_buf *c = &csrs[C_P256];
    expect_csr_err(c->der, c->len - 1, MC_ERR_CSR, "RFC 2986", NULL);
    expect_csr_err(c->der, c->len / 2, MC_ERR_CSR, "RFC 2986", NULL);
    expect_csr_err(c->der, 1, MC_ERR_CSR, "RFC 2986", NULL);
    uint8_t *d = malloc(c->len + 1);
    assert_non_null(d);
    memcpy(d, c->der, c->len);
    d[c->len] = 0;
    expect_csr_err(d, c->len + 1, MC_ERR_CSR, "RFC 2986", "trailing");
    free(d);
    /* not DER at all */
    const uint8_t junk[] = "-----BEGIN CERTIFICATE REQUEST-----";
    expect_csr_err(junk, sizeof junk - 1, MC_ERR_CSR, "RFC 2986", NULL);
    mc_order o;
    memset(&o, 0, sizeof o);
    mc_errdetail err;
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_ERR_CSR);
}

/* The decoded order is checked end to end: wire bytes in, spki out. */
static void test_decode_then_check(void **state)
{
    fx *f = *state;
    mc_order o;
    expect_ok(f, &o);
    mc_errdetail err;
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_OK);
    assert_int_equal(o.keytype, MC_KEY_P256);
    assert_true(o.spki > o.csr && o.spki + o.spki_len <= o.csr + o.csr_len);
}

/* Many threads at once share one mc_digests and check CSRs (the workers' situation). */
typedef struct thr_arg {
    int ok;
} thr_arg;

static void *thr_main(void *p)
{
    thr_arg *a = p;
    static const int which[] = {C_P256, C_RSA2048, C_ED25519, C_P384};
    uint8_t bad[4096];
    a->ok = 1;
    for (int i = 0; i < 40; i++) {
        csr_buf *c = &csrs[which[i % 4]];
        mc_order o;
        mc_errdetail err;
        if (check(c->der, c->len, &o, &err) != MC_OK)
            a->ok = 0;
        memcpy(bad, c->der, c->len);
        bad[c->len - 2] ^= 0x01;
        if (check(bad, c->len, &o, &err) != MC_ERR_CSR)
            a->ok = 0;
    }
    return NULL;
}

static void test_csr_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    thr_arg a[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thr_main, &a[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_true(a[i].ok);
    }
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

/* ---- subject (docs/orders.md "subject") ---- */

/* Adds "subject" = {k1: v1, ...} (NULL-terminated pairs) to the valid order. */
static msgpack_object *add_subject(fx *f, const char *const *kv)
{
    msgpack_object m = o_map();
    for (size_t i = 0; kv[i]; i += 2)
        add(f, &m, kv[i], o_str(kv[i + 1]));
    add(f, f->root, "subject", m);
    return get(f->root, "subject");
}

static void expect_subject_err(fx *f, const char *const *kv, const char *field, const char *rule)
{
    msgpack_object_map saved = f->root->via.map;
    add_subject(f, kv);
    expect_err(f, MC_ERR_INVALID, field, rule);
    f->root->via.map = saved;
}

static void test_subject(void **state)
{
    fx *f = *state;
    msgpack_object_map saved = f->root->via.map;
    static const char *const ok[] = {"organization_name",
                                     "Beispiel GmbH",
                                     "organization_identifier",
                                     "NTRDE-DER3306.HRB12345",
                                     "country",
                                     "DE",
                                     "given_name",
                                     "J\xc3\xb6rg",
                                     "serial_number",
                                     "IDCDE-T22000129",
                                     "common_name",
                                     "personal-name",
                                     NULL};
    add_subject(f, ok);
    mc_order o;
    expect_ok(f, &o);
    assert_true(str_is(o.subject.attr[MC_SA_ORGANIZATION], "Beispiel GmbH"));
    assert_true(str_is(o.subject.attr[MC_SA_ORG_IDENTIFIER], "NTRDE-DER3306.HRB12345"));
    assert_true(str_is(o.subject.attr[MC_SA_COUNTRY], "DE"));
    assert_true(str_is(o.subject.attr[MC_SA_GIVEN_NAME], "J\xc3\xb6rg"));
    assert_int_equal(o.subject.attr[MC_SA_SURNAME].len, 0);
    assert_int_equal(o.subject.cn, MC_CN_PERSONAL_NAME);
    f->root->via.map = saved;
    expect_ok(f, &o); /* no subject: all absent, default commonName */
    assert_int_equal(o.subject.cn, MC_CN_DEFAULT);
    assert_int_equal(o.subject.attr[MC_SA_ORGANIZATION].len, 0);

    /* strict: unknown and wrong-typed keys */
    expect_subject_err(f, (const char *const[]){"department", "R&D", NULL}, "subject.department",
                       "orders.md unknown-key");
    add(f, f->root, "subject", o_str("x"));
    expect_err(f, MC_ERR_INVALID, "subject", "orders.md subject");
    f->root->via.map = saved;
    expect_subject_err(f, (const char *const[]){"common_name", "nickname", NULL},
                       "subject.common_name", "orders.md subject.common_name");
    expect_subject_err(f, (const char *const[]){"surname", "", NULL}, "subject.surname",
                       "orders.md subject");
    expect_subject_err(f, (const char *const[]){"surname", "a\nb", NULL}, "subject.surname",
                       "orders.md subject");
    /* RFC 5280 upper bounds, in characters: 64 for organizationName */
    char o64[65], o65[66];
    memset(o64, 'x', 64);
    o64[64] = '\0';
    memset(o65, 'x', 65);
    o65[65] = '\0';
    add_subject(f, (const char *const[]){"organization_name", o64, NULL});
    expect_ok(f, &o);
    f->root->via.map = saved;
    expect_subject_err(f, (const char *const[]){"organization_name", o65, NULL},
                       "subject.organization_name", "RFC 5280 App. A");
    /* PrintableString attributes, placeholders, countryName (SBR 7.1.4, 7.1.4.2, 7.1.4.2.2(n)) */
    expect_subject_err(f, (const char *const[]){"serial_number", "A_1", NULL},
                       "subject.serial_number", "SBR 7.1.4");
    expect_subject_err(f, (const char *const[]){"locality", "N/A", NULL}, "subject.locality",
                       "SBR 7.1.4.2");
    expect_subject_err(f, (const char *const[]){"state", " - ", NULL}, "subject.state",
                       "SBR 7.1.4.2");
    expect_subject_err(f, (const char *const[]){"country", "ZZ", NULL}, "subject.country",
                       "SBR 7.1.4.2.2(n)");
    expect_subject_err(f, (const char *const[]){"country", "gb", NULL}, "subject.country",
                       "SBR 7.1.4.2.2(n)");
    add_subject(f, (const char *const[]){"country", "XX", NULL});
    expect_ok(f, &o);
    f->root->via.map = saved;
    /* organizationIdentifier (SBR 7.1.4.2.2(d)) */
    static const char *const good_ids[][2] = {
        {"NTRGB-12345678", "GB"},
        {"NTRUS+CA-12345678", "US"},
        {"PSDBE-NBB-1234.567.890", ""},
        {"VATEL-123456789", "GR"},
        {"VATXI-123456789", "GB"},
        {"LEIXG-5493001KJTIIGC8Y1R12", "FR"},
        {"GOVUS+CA", "US"},
        {"INTXG", "CH"},
    };
    for (size_t i = 0; i < sizeof good_ids / sizeof good_ids[0]; i++) {
        const char *kv[] = {"organization_identifier", good_ids[i][0],
                            good_ids[i][1][0] ? "country" : NULL, good_ids[i][1], NULL};
        add_subject(f, kv);
        expect_ok(f, &o);
        f->root->via.map = saved;
    }
    static const char *const bad_ids[] = {
        "ABCGB-1",
        "NTRGB",
        "NTRGB-",
        "NTRZZ-1",
        "NTRGB+ABCD-1",
        "LEIGB-5493001KJTIIGC8Y1R12",
        "LEIXG-5493001KJTIIGC8Y1R13",
        "GOVUS-1",
        "INTXG-1",
        "NTRGB-a b",
    };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++)
        expect_subject_err(f, (const char *const[]){"organization_identifier", bad_ids[i], NULL},
                           "subject.organization_identifier", "SBR 7.1.4.2.2(d)");
    /* Note 1: the country matches countryName (VAT Article 215 prefixes map to ISO) */
    expect_subject_err(
        f, (const char *const[]){"country", "GB", "organization_identifier", "NTRDE-HRB1", NULL},
        "subject.organization_identifier", "SBR 7.1.4.2.2(d) Note 1");
    expect_subject_err(
        f, (const char *const[]){"organization_identifier", "VATEL-1", "country", "EL", NULL},
        "subject.country", "SBR 7.1.4.2.2(n)");
    expect_subject_err(
        f, (const char *const[]){"organization_identifier", "VATEL-1", "country", "GB", NULL},
        "subject.organization_identifier", "SBR 7.1.4.2.2(d) Note 1");
    /* a repeated key */
    expect_subject_err(f, (const char *const[]){"surname", "A", "surname", "B", NULL},
                       "subject.surname", "orders.md duplicate-key");
}

static void test_country_lei(void **state)
{
    (void)state;
    assert_true(mc_country_code_valid("DE", 2));
    assert_true(mc_country_code_valid("XX", 2));
    assert_false(mc_country_code_valid("XG", 2));
    assert_false(mc_country_code_valid("UK", 2));
    assert_false(mc_country_code_valid("D", 1));
    assert_true(mc_lei_valid("529900T8BM49AURSDO55", 20));
    assert_false(mc_lei_valid("529900T8BM49AURSDO56", 20));
    assert_false(mc_lei_valid("529900T8BM49AURSDO5", 19));
    assert_false(mc_lei_valid("529900t8BM49AURSDO55", 20));
    assert_true(mc_lei_role_valid("Director", 8));
    assert_false(mc_lei_role_valid("", 0));
    assert_false(mc_lei_role_valid("R\xc3\xa9gisseur", 10));
}

/* ---- Legal Entity Identifier (docs/orders.md "lei", SBR 7.1.2.3(l)) ---- */

#define LEI_OK "5493001KJTIIGC8Y1R12"

/* A "lei" map with the given value and GLEIF states (NULL: key left out). */
static msgpack_object lei_map(fx *f, const char *value, const char *reg, const char *ent,
                              const char *vs)
{
    msgpack_object m = o_map();
    if (value)
        add(f, &m, "value", o_str(value));
    if (reg)
        add(f, &m, "registration_status", o_str(reg));
    if (ent)
        add(f, &m, "entity_status", o_str(ent));
    if (vs)
        add(f, &m, "validation_sources", o_str(vs));
    add(f, &m, "verified_at", o_uint(1760000000));
    add(f, &m, "reference", o_str("gleif-check-9"));
    return m;
}

static msgpack_object role_map(fx *f, msgpack_object value)
{
    msgpack_object m = o_map();
    add(f, &m, "value", value);
    add(f, &m, "verified_at", o_uint(1760000100));
    add(f, &m, "reference", o_str("role-evidence-3"));
    return m;
}

static int has(msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (str_is(
                (mc_str){map->via.map.ptr[i].key.via.str.ptr, map->via.map.ptr[i].key.via.str.size},
                key))
            return 1;
    return 0;
}

/* Sets key = val on the order, adding it when absent. */
static void put(fx *f, const char *key, msgpack_object val)
{
    if (has(f->root, key))
        set(f->root, key, val);
    else
        add(f, f->root, key, val);
}

#define R_LEI "SBR 7.1.2.3(l)"
static void test_lei(void **state)
{
    fx *f = *state;
    mc_order o;
    /* no LEI: both absent */
    expect_ok(f, &o);
    assert_int_equal(o.lei.value.len, 0);
    assert_int_equal(o.lei_role.value.len, 0);
    /* a verified LEI: ISSUED, ACTIVE, FULLY_CORROBORATED */
    put(f, "lei", lei_map(f, LEI_OK, "ISSUED", "ACTIVE", "FULLY_CORROBORATED"));
    expect_ok(f, &o);
    assert_true(str_is(o.lei.value, LEI_OK));
    assert_int_equal(o.lei.verified_at, 1760000000);
    assert_true(str_is(o.lei.reference, "gleif-check-9"));
    /* with a role */
    put(f, "lei_role", role_map(f, o_str("Chief Financial Officer")));
    expect_ok(f, &o);
    assert_true(str_is(o.lei_role.value, "Chief Financial Officer"));
    assert_true(str_is(o.lei_role.reference, "role-evidence-3"));
    /* ISO 17442-2: a role is PrintableString, 1..100 characters */
    put(f, "lei_role", role_map(f, o_str("CFO & treasurer")));
    expect_err(f, MC_ERR_INVALID, "lei_role.value", R_LEI);
    put(f, "lei_role", role_map(f, o_strn(f, 'R', 101)));
    expect_err(f, MC_ERR_INVALID, "lei_role.value", R_LEI);
    put(f, "lei_role", role_map(f, o_strn(f, 'R', 100)));
    expect_ok(f, &o);
    put(f, "lei_role", role_map(f, o_str("   ")));
    expect_err(f, MC_ERR_INVALID, "lei_role.value", R_LEI);
    /* the role has no GLEIF states of its own */
    msgpack_object r = role_map(f, o_str("Director"));
    add(f, &r, "entity_status", o_str("ACTIVE"));
    put(f, "lei_role", r);
    expect_err(f, MC_ERR_INVALID, "lei_role.entity_status", "orders.md unknown-key");
    put(f, "lei_role", role_map(f, o_str("Director")));
    expect_ok(f, &o);

    /* ISO 17442 check digits */
    put(f, "lei", lei_map(f, "5493001KJTIIGC8Y1R13", "ISSUED", "ACTIVE", "FULLY_CORROBORATED"));
    expect_err(f, MC_ERR_INVALID, "lei.value", R_LEI);
    put(f, "lei", lei_map(f, "5493001kjtiigc8y1r12", "ISSUED", "ACTIVE", "FULLY_CORROBORATED"));
    expect_err(f, MC_ERR_INVALID, "lei.value", R_LEI);
    /* SBR 7.1.2.3(l): any other GLEIF state is a rejection naming the field */
    put(f, "lei", lei_map(f, LEI_OK, "LAPSED", "ACTIVE", "FULLY_CORROBORATED"));
    expect_err(f, MC_ERR_INVALID, "lei.registration_status", R_LEI);
    put(f, "lei", lei_map(f, LEI_OK, "ISSUED", "INACTIVE", "FULLY_CORROBORATED"));
    expect_err(f, MC_ERR_INVALID, "lei.entity_status", R_LEI);
    static const char *const bad_vs[] = {"PARTIALLY_CORROBORATED", "PENDING",
                                         "ENTITY_SUPPLIED_ONLY", "fully_corroborated"};
    for (size_t i = 0; i < 4; i++) {
        put(f, "lei", lei_map(f, LEI_OK, "ISSUED", "ACTIVE", bad_vs[i]));
        expect_err(f, MC_ERR_INVALID, "lei.validation_sources", R_LEI);
    }
    /* the states are required: without them the CA has not shown the record fits */
    put(f, "lei", lei_map(f, LEI_OK, "ISSUED", "ACTIVE", NULL));
    expect_err(f, MC_ERR_INVALID, "lei.validation_sources", R_LEI);
    put(f, "lei", lei_map(f, NULL, "ISSUED", "ACTIVE", "FULLY_CORROBORATED"));
    expect_err(f, MC_ERR_INVALID, "lei.value", "orders.md required");
    put(f, "lei", o_str(LEI_OK));
    expect_err(f, MC_ERR_INVALID, "lei", "orders.md lei");

    /* a role needs the legal entity's LEI */
    drop(f->root, "lei");
    expect_err(f, MC_ERR_INVALID, "lei_role", R_LEI);
    drop(f->root, "lei_role");
    expect_ok(f, &o);
}

static msgpack_object idev_map(fx *f, msgpack_object at, const char *ref)
{
    msgpack_object m = o_map();
    add(f, &m, "validated_at", at);
    if (ref)
        add(f, &m, "reference", o_str(ref));
    return m;
}

/* "identity": the completed validations of organization (SBR 3.2.3) and individual (3.2.4)
 * identity, each with its time and reference; strict like every part of an order. Which ones a
 * profile needs is judged at issuance (test_evidence). */
static void test_identity(void **state)
{
    fx *f = *state;
    mc_order o;
    expect_ok(f, &o);
    assert_int_equal(o.id_org.validated_at, 0);
    assert_int_equal(o.id_individual.validated_at, 0);
    msgpack_object id = o_map();
    add(f, &id, "organization", idev_map(f, o_uint(1760000000), "kyb-771"));
    put(f, "identity", id);
    expect_ok(f, &o);
    assert_int_equal(o.id_org.validated_at, 1760000000);
    assert_true(str_is(o.id_org.reference, "kyb-771"));
    assert_int_equal(o.id_individual.validated_at, 0);
    add(f, &id, "individual", idev_map(f, o_uint(1760000500), "kyc-12"));
    put(f, "identity", id);
    expect_ok(f, &o);
    assert_int_equal(o.id_individual.validated_at, 1760000500);
    assert_true(str_is(o.id_individual.reference, "kyc-12"));

    /* failing cases, each naming its field */
    msgpack_object bad = o_map();
    add(f, &bad, "organisation", idev_map(f, o_uint(1760000000), "x"));
    put(f, "identity", bad);
    expect_err(f, MC_ERR_INVALID, "identity.organisation", "orders.md unknown-key");
    bad = o_map();
    add(f, &bad, "organization", idev_map(f, o_uint(1760000000), NULL));
    put(f, "identity", bad);
    expect_err(f, MC_ERR_INVALID, "identity.organization.reference", "orders.md required");
    bad = o_map();
    add(f, &bad, "individual", idev_map(f, o_int(-5), "x"));
    put(f, "identity", bad);
    expect_err(f, MC_ERR_INVALID, "identity.individual.validated_at", "orders.md identity");
    bad = o_map();
    add(f, &bad, "individual", idev_map(f, o_uint(0), "x"));
    put(f, "identity", bad);
    expect_err(f, MC_ERR_INVALID, "identity.individual.validated_at", "orders.md identity");
    bad = o_map();
    msgpack_object extra = idev_map(f, o_uint(1760000000), "x");
    add(f, &extra, "method", o_str("3.2.3.1"));
    add(f, &bad, "organization", extra);
    put(f, "identity", bad);
    expect_err(f, MC_ERR_INVALID, "identity.organization.method", "orders.md unknown-key");
    put(f, "identity", o_map());
    expect_err(f, MC_ERR_INVALID, "identity", "orders.md identity");
    put(f, "identity", o_str("validated"));
    expect_err(f, MC_ERR_INVALID, "identity", "orders.md identity");
    bad = o_map();
    add(f, &bad, "organization", o_uint(1760000000));
    put(f, "identity", bad);
    expect_err(f, MC_ERR_INVALID, "identity.organization", "orders.md identity");
    drop(f->root, "identity");
    expect_ok(f, &o);
}

/* SBR 6.1.5: an Ed25519 key is a point on curve25519, which RFC 8032 5.1.2 encodes in exactly
 * 32 bytes; an attested key of 31 or 33 bytes is refused naming public_key (passing: 32). */
static void test_public_key_ed25519_length(void **state)
{
    fx *f = *state;
    uint8_t *ed = NULL;
    int en = i2d_PUBKEY(csrs[C_ED25519].key, &ed);
    assert_int_equal(en, 44);
    /* 30 2a | 30 05 06 03 2b 65 70 | 03 21 00 <32 bytes> */
    assert_true(ed[1] == 0x2a && ed[9] == 0x03 && ed[10] == 0x21 && ed[11] == 0x00);
    drop(f->root, "csr");
    add(f, f->root, "public_key", o_bytes(f, ed, (size_t)en));
    add(f, f->root, "key_source", o_str("platform-generated"));
    mc_order o;
    mc_errdetail err;
    assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
    assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_OK);
    assert_int_equal(o.keytype, MC_KEY_ED25519);
    assert_int_equal(o.key_bits, 256);
    static const struct {
        size_t keylen;
        const char *msg;
    } bad[] = {{31, "Ed25519 public key is 32 bytes, got 31"},
               {33, "Ed25519 public key is 32 bytes, got 33"}};
    for (size_t i = 0; i < 2; i++) {
        uint8_t spki[64];
        size_t n = 12 + bad[i].keylen;
        memcpy(spki, ed, 12);
        spki[1] = (uint8_t)(n - 2);
        spki[10] = (uint8_t)(bad[i].keylen + 1);
        memset(spki + 12, 0x11, bad[i].keylen);
        memcpy(spki + 12, ed + 12, bad[i].keylen < 32 ? bad[i].keylen : 32);
        set(f->root, "public_key", o_bytes(f, spki, n));
        assert_int_equal(mc_order_decode(f->root, &o, &err), MC_OK);
        mc_err_clear(&err);
        assert_int_equal(mc_order_check_csr(&o, &digests, &err), MC_ERR_INVALID);
        assert_string_equal(err.field, "public_key");
        assert_string_equal(err.rule, "SBR 6.1.5");
        assert_non_null(strstr(err.message, bad[i].msg));
    }
    OPENSSL_free(ed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_valid_order),
        FX(test_optional_replaces_absent),
        FX(test_usage_and_method_values),
        FX(test_missing_required),
        FX(test_public_key_form),
        FX(test_unknown_key),
        FX(test_unknown_key_in_mailbox),
        FX(test_non_str_key),
        FX(test_duplicate_key),
        FX(test_duplicate_key_in_mailbox),
        cmocka_unit_test(test_duplicate_key_wire),
        cmocka_unit_test(test_not_a_map),
        FX(test_wrong_types),
        FX(test_validated_at_positive),
        FX(test_limits),
        FX(test_charsets),
        FX(test_mailboxes_count),
        FX(test_bad_method),
        FX(test_duplicate_mailbox),
        FX(test_order_idn),
        FX(test_bad_address_path),
        FX(test_id_carried_on_rejection),
        cmocka_unit_test(test_mailbox_syntax),
        cmocka_unit_test(test_mailbox_lengths),
        cmocka_unit_test(test_mailbox_messages),
        cmocka_unit_test(test_mailbox_idn),
        cmocka_unit_test(test_csr_accepted),
        cmocka_unit_test(test_csr_other_signatures),
        cmocka_unit_test(test_csr_rsa_size),
        cmocka_unit_test(test_csr_rsa_exponent),
        cmocka_unit_test(test_csr_spki_algid),
        cmocka_unit_test(test_csr_ed448),
        cmocka_unit_test(test_csr_ec_point),
        cmocka_unit_test(test_csr_tampered),
        cmocka_unit_test(test_csr_truncated),
        FX(test_decode_then_check),
        cmocka_unit_test(test_csr_threads),
        FX(test_subject),
        cmocka_unit_test(test_country_lei),
        FX(test_lei),
        FX(test_identity),
        FX(test_public_key_ed25519_length),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
