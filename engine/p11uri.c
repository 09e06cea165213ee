/*
 * RFC 7512 `pkcs11:` URI parser. Strict on purpose (see p11uri.h): a CA key URI that is
 * misspelt must fail loudly, never select "any key on any token".
 */
#include "mailca/p11uri.h"

#include "mailca/text.h"

#include <string.h>
#include <strings.h>

/* RFC 3986 unreserved characters. */
static int is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* RFC 7512 pk11-pchar / pk11-qchar (the separators ';', '&' and '=' are split off before). */
static int is_allowed(unsigned char c, int query)
{
    if (is_unreserved(c) || c == '%')
        return 1;
    if (c != '\0' && strchr(":[]@!$'()*+,", c))
        return 1;
    /* RFC 7512 2.3: '/' and '?' appear unencoded only in the query component. */
    return query && (c == '/' || c == '?');
}

/* Decodes the value [v, v+n) into out. Text values (text != 0) refuse NUL bytes and are
 * NUL-terminated, so at most cap-1 bytes fit; binary values (id) may fill cap bytes. */
static mc_err decode(const char *name, const char *v, size_t n, int query, uint8_t *out, size_t cap,
                     size_t *outlen, int text, mc_errdetail *err)
{
    size_t max = text ? cap - 1 : cap;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!is_allowed(c, query))
            return mc_err_set(err, MC_ERR_INVALID, name, "RFC 7512 2.3",
                              "pkcs11 URI: character 0x%02x in '%s' must be percent-encoded", c,
                              name);
        if (c == '%') {
            if (n - i < 3 || mc_hex_digit((unsigned char)v[i + 1]) < 0 ||
                mc_hex_digit((unsigned char)v[i + 2]) < 0)
                return mc_err_set(err, MC_ERR_INVALID, name, "RFC 3986 2.1",
                                  "pkcs11 URI: bad percent escape in '%s' (need %%XX, two hex "
                                  "digits)",
                                  name);
            c = (unsigned char)(mc_hex_digit((unsigned char)v[i + 1]) << 4 |
                                mc_hex_digit((unsigned char)v[i + 2]));
            i += 2;
            if (text && c == 0)
                return mc_err_set(err, MC_ERR_INVALID, name, NULL,
                                  "pkcs11 URI: '%s' contains a NUL byte (%%00)", name);
        }
        if (o >= max)
            return mc_err_set(err, MC_ERR_INVALID, name, NULL,
                              "pkcs11 URI: '%s' is longer than %zu bytes", name, max);
        out[o++] = c;
    }
    if (text)
        out[o] = '\0';
    *outlen = o;
    return MC_OK;
}

static mc_err dup_attr(const char *name, mc_errdetail *err)
{
    return mc_err_set(err, MC_ERR_INVALID, name, "RFC 7512 2.3",
                      "pkcs11 URI: attribute '%s' appears more than once", name);
}

/* Text attribute into a char array, refusing repeats. */
#define TEXT_ATTR(field, flag)                                                                     \
    do {                                                                                           \
        if (flag)                                                                                  \
            return dup_attr(name, err);                                                            \
        size_t n_;                                                                                 \
        mc_err e_ =                                                                                \
            decode(name, val, vlen, query, (uint8_t *)(field), sizeof(field), &n_, 1, err);        \
        if (e_)                                                                                    \
            return e_;                                                                             \
        (flag) = 1;                                                                                \
    } while (0)

static mc_err set_type(mc_p11uri *u, const char *name, const char *val, size_t vlen, int query,
                       mc_errdetail *err)
{
    static const struct {
        const char *s;
        mc_p11uri_type t;
    } types[] = {{"private", MC_P11URI_TYPE_PRIVATE},
                 {"public", MC_P11URI_TYPE_PUBLIC},
                 {"cert", MC_P11URI_TYPE_CERT},
                 {"secret-key", MC_P11URI_TYPE_SECRET_KEY},
                 {"data", MC_P11URI_TYPE_DATA}};
    if (u->type != MC_P11URI_TYPE_ANY)
        return dup_attr(name, err);
    char buf[16];
    size_t n;
    mc_err e = decode(name, val, vlen, query, (uint8_t *)buf, sizeof buf, &n, 1, err);
    if (e == MC_OK) {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(buf, types[i].s) == 0) {
                u->type = types[i].t;
                return MC_OK;
            }
    }
    return mc_err_set(err, MC_ERR_INVALID, name, "RFC 7512 2.3",
                      "pkcs11 URI: type must be private, public, cert, secret-key or data");
}

/* pin-source: a file named by "file:" URI or absolute path; commands ("|prog") are refused. */
static mc_err set_pin_source(mc_p11uri *u, const char *name, const char *val, size_t vlen,
                             int query, mc_errdetail *err)
{
    if (u->pin_source[0])
        return dup_attr(name, err);
    char buf[MC_P11URI_PATH_MAX + 1];
    size_t n;
    mc_err e = decode(name, val, vlen, query, (uint8_t *)buf, sizeof buf, &n, 1, err);
    if (e)
        return e;
    const char *p = buf;
    if (strncmp(p, "file://", 7) == 0)
        p += 7; /* file:///path: empty authority */
    else if (strncmp(p, "file:", 5) == 0)
        p += 5;
    if (p[0] != '/')
        return mc_err_set(err, MC_ERR_UNSUPPORTED, name, NULL,
                          "pkcs11 URI: pin-source must be a file (file:/path or /path)");
    memmove(u->pin_source, p, strlen(p) + 1);
    return MC_OK;
}

static mc_err set_attr(mc_p11uri *u, const char *attr, size_t alen, const char *val, size_t vlen,
                       int query, mc_errdetail *err)
{
    char name[32];
    if (alen == 0)
        return mc_err_set(err, MC_ERR_INVALID, NULL, "RFC 7512 2.3",
                          "pkcs11 URI: empty attribute name");
    /* Names are copied for messages, cut to a sane length (they are ASCII by the grammar). */
    size_t nn = alen < sizeof name - 1 ? alen : sizeof name - 1;
    for (size_t i = 0; i < nn; i++) {
        unsigned char c = (unsigned char)attr[i];
        name[i] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
    }
    name[nn] = '\0';
    if (alen != nn)
        return mc_err_set(err, MC_ERR_INVALID, name, "RFC 7512 2.3",
                          "pkcs11 URI: unknown attribute '%s...'", name);

    if (strcmp(name, "pin-value") == 0)
        /* Never echo the value: it is a secret. */
        return mc_err_set(err, MC_ERR_INVALID, name, NULL,
                          "pkcs11 URI: pin-value is refused; give the PIN in a file or the "
                          "environment");
    if (strcmp(name, "module-path") == 0) {
        if (u->module_path[0])
            return dup_attr(name, err);
        size_t n;
        mc_err e = decode(name, val, vlen, query, (uint8_t *)u->module_path, sizeof u->module_path,
                          &n, 1, err);
        if (e)
            return e;
        if (n == 0)
            return mc_err_set(err, MC_ERR_INVALID, name, NULL, "pkcs11 URI: module-path is empty");
        return MC_OK;
    }
    if (query) {
        if (strcmp(name, "pin-source") == 0)
            return set_pin_source(u, name, val, vlen, query, err);
        if (strcmp(name, "module-name") == 0)
            return mc_err_set(err, MC_ERR_UNSUPPORTED, name, NULL,
                              "pkcs11 URI: module-name is not supported; use module-path");
        return mc_err_set(err, MC_ERR_INVALID, name, "RFC 7512 2.3",
                          "pkcs11 URI: unknown query attribute '%s'", name);
    }
    if (strcmp(name, "token") == 0) {
        TEXT_ATTR(u->token, u->has_token);
    } else if (strcmp(name, "manufacturer") == 0) {
        TEXT_ATTR(u->manufacturer, u->has_manufacturer);
    } else if (strcmp(name, "model") == 0) {
        TEXT_ATTR(u->model, u->has_model);
    } else if (strcmp(name, "serial") == 0) {
        TEXT_ATTR(u->serial, u->has_serial);
    } else if (strcmp(name, "object") == 0) {
        TEXT_ATTR(u->object, u->has_object);
    } else if (strcmp(name, "id") == 0) {
        if (u->has_id)
            return dup_attr(name, err);
        mc_err e = decode(name, val, vlen, query, u->id, sizeof u->id, &u->idlen, 0, err);
        if (e)
            return e;
        u->has_id = 1;
    } else if (strcmp(name, "type") == 0) {
        return set_type(u, name, val, vlen, query, err);
    } else if (strcmp(name, "slot-id") == 0 || strcmp(name, "slot-description") == 0 ||
               strcmp(name, "slot-manufacturer") == 0 ||
               strcmp(name, "library-manufacturer") == 0 ||
               strcmp(name, "library-description") == 0 || strcmp(name, "library-version") == 0) {
        return mc_err_set(err, MC_ERR_UNSUPPORTED, name, NULL,
                          "pkcs11 URI: '%s' is not supported; name the token by token= or "
                          "serial=",
                          name);
    } else {
        return mc_err_set(err, MC_ERR_INVALID, name, "RFC 7512 2.3",
                          "pkcs11 URI: unknown attribute '%s'", name);
    }
    return MC_OK;
}

/* Splits [p, end) at sep into name=value pairs. */
static mc_err parse_component(mc_p11uri *u, const char *p, const char *end, char sep, int query,
                              mc_errdetail *err)
{
    while (p < end) {
        const char *q = memchr(p, sep, (size_t)(end - p));
        if (!q)
            q = end;
        const char *eq = memchr(p, '=', (size_t)(q - p));
        if (!eq) {
            char name[32];
            size_t n = (size_t)(q - p) < sizeof name - 1 ? (size_t)(q - p) : sizeof name - 1;
            memcpy(name, p, n);
            name[n] = '\0';
            return mc_err_set(err, MC_ERR_INVALID, name, "RFC 7512 2.3",
                              "pkcs11 URI: attribute '%s' has no '=value'", name);
        }
        mc_err e = set_attr(u, p, (size_t)(eq - p), eq + 1, (size_t)(q - eq - 1), query, err);
        if (e)
            return e;
        p = q < end ? q + 1 : end;
        if (q < end && p == end)
            return mc_err_set(err, MC_ERR_INVALID, NULL, "RFC 7512 2.3",
                              "pkcs11 URI: trailing '%c'", sep);
    }
    return MC_OK;
}

mc_err mc_p11uri_parse(const char *s, mc_p11uri *out, mc_errdetail *err)
{
    memset(out, 0, sizeof *out);
    /* URI schemes are case-insensitive (RFC 3986 3.1). */
    if (!s || strncasecmp(s, "pkcs11:", 7) != 0)
        return mc_err_set(err, MC_ERR_INVALID, "uri", "RFC 7512 2.3",
                          "not a pkcs11 URI: it must start with 'pkcs11:'");
    const char *path = s + 7;
    const char *qm = strchr(path, '?');
    const char *pend = qm ? qm : path + strlen(path);
    if (strchr(path, '#'))
        return mc_err_set(err, MC_ERR_INVALID, "uri", "RFC 7512 2.3",
                          "pkcs11 URI: a fragment ('#') is not allowed");
    mc_err e = parse_component(out, path, pend, ';', 0, err);
    if (e == MC_OK && qm)
        e = parse_component(out, qm + 1, qm + strlen(qm), '&', 1, err);
    if (e)
        memset(out, 0, sizeof *out);
    return e;
}

int mc_p11uri_has_token_attr(const mc_p11uri *u)
{
    return u->has_token || u->has_serial || u->has_manufacturer || u->has_model;
}
