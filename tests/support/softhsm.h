/*
 * Test support: a private SoftHSM2 for each integration test, so tests never touch the system
 * token directory and can run side by side.
 *
 * Typical use:
 *     char dir[512];
 *     assert_int_equal(mc_softhsm_tmpdir("mytest", dir, sizeof dir), 0);
 *     assert_int_equal(mc_softhsm_setup(dir, "ca-token", "so-pin", "user-pin", &err), MC_OK);
 *     ... mc_hsm_keygen(mc_softhsm_module(), "ca-token", "user-pin", ...) ...
 *     mc_softhsm_rmtree(dir);
 *
 * SoftHSM2 reads SOFTHSM2_CONF at C_Initialize: call mc_softhsm_setup before the first
 * mc_hsm_open of the process (or while no mc_hsm is open, since the module is finalised when its
 * last user closes).
 */
#ifndef MAILCA_TEST_SOFTHSM_H
#define MAILCA_TEST_SOFTHSM_H

#include "mailca/err.h"

#include <stddef.h>

/* The SoftHSM2 module the build found (MAILCA_SOFTHSM2_MODULE). */
const char *mc_softhsm_module(void);

/* Creates a fresh directory <base>/<prefix>XXXXXX, where base is $MAILCA_TEST_TMP when set
 * (created if missing) or /tmp. Writes its path into out. Returns 0, or -1 with errno set. */
int mc_softhsm_tmpdir(const char *prefix, char *out, size_t cap);

/* Creates <dir>/softhsm2.conf (directories.tokendir = <dir>/tokens, objectstore.backend = file,
 * log.level = ERROR) unless it exists, sets SOFTHSM2_CONF to it, and initialises a token with
 * this label, SO PIN and user PIN through mc_hsm_token_init. Calling it again with the same dir
 * adds another token. */
mc_err mc_softhsm_setup(const char *dir, const char *label, const char *so_pin,
                        const char *user_pin, mc_errdetail *err);

/* Removes dir and everything under it (does not follow symlinks). Returns 0 or -1. */
int mc_softhsm_rmtree(const char *dir);

#endif
