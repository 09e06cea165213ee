/*
 * mc_text: character helpers shared across mailca, inline (order decoding runs them per byte):
 * the one UTF-8 sequence check (order decoding, the audit log's and `mailca query`'s JSON) and
 * the one hex digit reader (pkcs11: URIs, OCSP GET paths, weak-key lists).
 */
#ifndef MAILCA_TEXT_H
#define MAILCA_TEXT_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence at p (n > 0 bytes left; RFC 3629: no overlong forms,
 * no surrogates, nothing past U+10FFFF), 0 when it is not one. 1 for ASCII. */
static inline size_t mc_utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

/* The value of hex digit c (either case), -1 when c is not one. */
static inline int mc_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
