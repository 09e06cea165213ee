/* Phase helpers shared by `mailca bench` and `mailca bench --ct` (bench/phase.h). */
#include "phase.h"

#include <stdio.h>
#include <sys/stat.h>

int bench_phase_in_child(bench_proc_fn fn, const void *arg, void *out, size_t len, int *ok,
                         char *err, size_t errcap, long *maxrss_kb)
{
    int status = 0;
    int rc = bench_proc_run(fn, arg, out, len, &status, maxrss_kb);
    if (rc == -1)
        return -1;
    if (rc != 0) {
        snprintf(err, errcap, "child process died (status %d)", status);
        *ok = 0;
        return -1;
    }
    return *ok ? 0 : -1;
}

mc_err bench_orders_write(const char *path, const char *tag, uint64_t n, mc_keytype kt,
                          unsigned rsa_bits, mc_key_form form, unsigned n_domains,
                          const char *suffix, mc_errdetail *err)
{
    char prefix[96];
    mc_orders_id_prefix(prefix, sizeof prefix, tag);
    FILE *f = fopen(path, "wb");
    if (!f)
        return mc_err_set(err, MC_ERR_IO, path, NULL, "cannot create '%s'", path);
    mc_err rc = mc_orders_generate_domains(f, n, kt, rsa_bits, form, "mailbox-strict", "signing",
                                           prefix, 256, n_domains, suffix, err);
    if (fclose(f) != 0 && rc == MC_OK)
        rc = mc_err_set(err, MC_ERR_IO, path, NULL, "write to '%s' failed", path);
    return rc;
}

mc_err bench_config_load(const char *dir, mc_config *cfg, mc_errdetail *err)
{
    char path[600];
    if (snprintf(path, sizeof path, "%s/mailca.yaml", dir) >= (int)sizeof path)
        return mc_err_set(err, MC_ERR_CONFIG, "dir", NULL, "state folder path too long: '%s'", dir);
    mc_err rc = mc_config_load(path, cfg, err);
    if (rc == MC_OK)
        mc_config_apply_env(cfg);
    return rc;
}

mc_err bench_engine_run_file(mc_engine *eng, const char *in, const char *out, mc_run_stats *st,
                             mc_errdetail *err)
{
    mc_err rc;
    FILE *fi = fopen(in, "rb"), *fo = NULL;
    struct stat sb;
    if (!fi || fstat(fileno(fi), &sb) != 0) {
        rc = mc_err_set(err, MC_ERR_IO, in, NULL, "cannot open '%s'", in);
        goto done;
    }
    if (!(fo = fopen(out, "wb"))) {
        rc = mc_err_set(err, MC_ERR_IO, out, NULL, "cannot create '%s'", out);
        goto done;
    }
    rc = mc_engine_run(eng, fi, (uint64_t)sb.st_size, fo, st, err);
done:
    if (fi)
        fclose(fi);
    if (fo)
        fclose(fo);
    return rc;
}
