/*
 * Test support: private SoftHSM2 state folders (see softhsm.h).
 */
#include "support/softhsm.h"

#include "mailca/hsm.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *mc_softhsm_module(void)
{
    return MAILCA_SOFTHSM2_MODULE;
}

int mc_softhsm_tmpdir(const char *prefix, char *out, size_t cap)
{
    const char *base = getenv("MAILCA_TEST_TMP");
    if (!base || !base[0])
        base = "/tmp";
    else if (mkdir(base, 0700) != 0 && errno != EEXIST)
        return -1;
    int n = snprintf(out, cap, "%s/%sXXXXXX", base, prefix ? prefix : "mailca");
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(out) ? 0 : -1;
}

mc_err mc_softhsm_setup(const char *dir, const char *label, const char *so_pin,
                        const char *user_pin, mc_errdetail *err)
{
    char conf[4096], tokens[4096];
    if ((size_t)snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir) >= sizeof conf ||
        (size_t)snprintf(tokens, sizeof tokens, "%s/tokens", dir) >= sizeof tokens)
        return mc_err_set(err, MC_ERR_INVALID, "dir", NULL, "test directory path too long");
    if (mkdir(tokens, 0700) != 0 && errno != EEXIST)
        return mc_err_set(err, MC_ERR_IO, "dir", NULL, "mkdir %s: %s", tokens, strerror(errno));
    if (access(conf, F_OK) != 0) {
        FILE *fp = fopen(conf, "w");
        if (!fp)
            return mc_err_set(err, MC_ERR_IO, "dir", NULL, "create %s: %s", conf, strerror(errno));
        fprintf(fp,
                "directories.tokendir = %s\n"
                "objectstore.backend = file\n"
                "log.level = ERROR\n"
                "slots.removable = false\n",
                tokens);
        if (fclose(fp) != 0)
            return mc_err_set(err, MC_ERR_IO, "dir", NULL, "write %s: %s", conf, strerror(errno));
    }
    if (setenv("SOFTHSM2_CONF", conf, 1) != 0)
        return mc_err_set(err, MC_ERR_IO, "env", NULL, "setenv SOFTHSM2_CONF failed");
    return mc_hsm_token_init(mc_softhsm_module(), label, so_pin, user_pin, err);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int mc_softhsm_rmtree(const char *dir)
{
    if (!dir || !dir[0] || strcmp(dir, "/") == 0)
        return -1;
    return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
