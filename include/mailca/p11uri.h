/*
 * mc_p11uri: RFC 7512 `pkcs11:` URIs, the way mailca names the token and key of a CA.
 *
 * Only what naming a signing key needs is accepted. Path attributes: token, serial, manufacturer,
 * model (which token), object, id, type (which object), and module-path. Query attributes:
 * module-path and pin-source. Anything else is an error rather than silently ignored, because a
 * URI that selects less than its author meant could select the wrong key:
 * - pin-value is refused (MC_ERR_INVALID): the PIN must not sit in configuration or argv; it
 *   comes from a file or the environment. The message never repeats the value.
 * - slot-id, slot-description, slot-manufacturer and library-* are refused (MC_ERR_UNSUPPORTED):
 *   tokens are found by token label/serial (SoftHSM2 slot ids change after initialisation).
 * - unknown attributes, repeated attributes, bad percent escapes, characters that must be
 *   percent-encoded, a NUL byte in a text attribute, and values longer than the PKCS#11 fields
 *   (label 32, manufacturer 32, model 16, serial 16 bytes) are MC_ERR_INVALID.
 * Parsing is done into a fixed-size value: no allocation, nothing to free.
 */
#ifndef MAILCA_P11URI_H
#define MAILCA_P11URI_H

#include "mailca/err.h"

#include <stddef.h>
#include <stdint.h>

#define MC_P11URI_OBJECT_MAX 128 /* longest object label accepted (bytes) */
#define MC_P11URI_ID_MAX 64      /* longest CKA_ID accepted (bytes) */
#define MC_P11URI_PATH_MAX 1024  /* longest module-path / pin-source */

typedef enum mc_p11uri_type {
    MC_P11URI_TYPE_ANY = 0, /* type= absent */
    MC_P11URI_TYPE_PRIVATE,
    MC_P11URI_TYPE_PUBLIC,
    MC_P11URI_TYPE_CERT,
    MC_P11URI_TYPE_SECRET_KEY,
    MC_P11URI_TYPE_DATA,
} mc_p11uri_type;

/* Every string is decoded and NUL-terminated; "" (and has_* == 0) when the attribute is absent.
 * has_* tells an absent attribute from an empty one ("token=" matches an empty label). */
typedef struct mc_p11uri {
    char token[33];
    char manufacturer[33];
    char model[17];
    char serial[17];
    char object[MC_P11URI_OBJECT_MAX + 1];
    uint8_t id[MC_P11URI_ID_MAX];
    size_t idlen;
    mc_p11uri_type type;
    char module_path[MC_P11URI_PATH_MAX + 1]; /* path or query attribute */
    char pin_source[MC_P11URI_PATH_MAX + 1];  /* query; "file:" prefix removed */
    unsigned char has_token, has_manufacturer, has_model, has_serial, has_object, has_id;
} mc_p11uri;

/* Parses s into *out (fully overwritten). On error fills err (field = the attribute name). */
mc_err mc_p11uri_parse(const char *s, mc_p11uri *out, mc_errdetail *err);

/* 1 when the URI names a token (token, serial, manufacturer or model present). */
int mc_p11uri_has_token_attr(const mc_p11uri *u);

#endif
