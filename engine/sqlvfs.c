/*
 * A SQLite VFS over the default one that gathers WAL appends into large writes.
 *
 * Why: SQLite writes each WAL frame as two pwrite calls, its 24-byte header and then the page
 * (wal.c, walWriteOneFrame), and a commit of a batch of 256 intents is about 600 frames (the
 * serial and key-hash indexes take random keys, so each intent dirties index pages). Each call
 * pays a system call and the kernel's per-page work (page-cache look-up, ext4 write_begin/end)
 * once for the 24 bytes and again for the 4 KiB, which spans two pages since frames are 4120
 * bytes: perf of `mailca bench --store-only` put about 60% of the sink's CPU in the kernel.
 * Here the frames of a transaction are appended to a buffer and written sequentially in
 * up to MC_SQLVFS_BUF bytes at a time.
 *
 * Why it is safe: SQLite makes a commit visible (the wal-index header, in shared memory) only
 * after it has written the commit frame, the one whose header carries the database size. The
 * buffer is written out as soon as that frame's page is in it, so every published frame is in
 * the file, as without this VFS. Frames of a transaction not yet committed may wait in the
 * buffer; they are not part of the database until their commit frame is written, and SQLite
 * recovers a WAL by its last valid commit frame. Anything that is not the next append (an
 * overwrite of an earlier frame, a checksum rewrite, a write at offset 0 after a restart), and
 * every read, sync, truncate, size query, file control and close, first writes the buffer out,
 * so SQLite never sees the file without its own writes.
 */
#include "mailca/sqlvfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 29 frames of 4 KiB pages per write. The default VFS writes at most 0x1ffff bytes per call
 * (os_unix.c seekAndWriteFd masks the length), so the buffer stays under 128 KiB. */
#define MC_SQLVFS_BUF (120 * 1024)
#define WAL_FRAME_HDR 24 /* SQLite file format: a WAL frame header is 24 bytes */

typedef struct wal_file {
    sqlite3_file base;  /* pMethods = &wal_io */
    sqlite3_file *real; /* the default VFS's file, in the same allocation, after this struct */
    unsigned char *buf; /* appends not yet written, from buf_off; malloc'd on first use */
    size_t len;
    sqlite3_int64 buf_off;
    sqlite3_int64 next; /* offset just past SQLite's last write */
    int commit_hdr;     /* the last 24-byte write was a commit frame's header */
} wal_file;

/* Room for the struct followed by the real file, aligned for it. */
#define WAL_FILE_HEAD ((sizeof(wal_file) + 15) & ~(size_t)15)

static sqlite3_vfs vfs;
static sqlite3_vfs *real_vfs;
static int register_rc = SQLITE_ERROR;
static atomic_ullong n_sqlite_writes, n_os_writes;

static int wal_flush(wal_file *w)
{
    if (w->len == 0)
        return SQLITE_OK;
    int rc = w->real->pMethods->xWrite(w->real, w->buf, (int)w->len, w->buf_off);
    atomic_fetch_add_explicit(&n_os_writes, 1, memory_order_relaxed);
    /* On failure the frames are dropped with the error: SQLite fails the transaction and
     * writes its frames again from the last commit. */
    w->len = 0;
    return rc;
}

static int wal_close(sqlite3_file *f)
{
    wal_file *w = (wal_file *)f;
    int rc = wal_flush(w);
    int rc2 = w->real->pMethods->xClose(w->real);
    free(w->buf);
    w->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int wal_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 off)
{
    wal_file *w = (wal_file *)f;
    int rc = wal_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, out, amt, off);
}

static int wal_write(sqlite3_file *f, const void *data, int amt, sqlite3_int64 off)
{
    wal_file *w = (wal_file *)f;
    int rc = SQLITE_OK;
    atomic_fetch_add_explicit(&n_sqlite_writes, 1, memory_order_relaxed);
    if (off == w->next && amt > 0 && (size_t)amt <= MC_SQLVFS_BUF && !w->buf)
        w->buf = malloc(MC_SQLVFS_BUF); /* none: every write goes straight through */
    if (w->buf && off == w->next && amt > 0 && (size_t)amt <= MC_SQLVFS_BUF) {
        if (w->len + (size_t)amt > MC_SQLVFS_BUF && (rc = wal_flush(w)) != SQLITE_OK)
            return rc;
        if (w->len == 0)
            w->buf_off = off;
        memcpy(w->buf + w->len, data, (size_t)amt);
        w->len += (size_t)amt;
    } else {
        if ((rc = wal_flush(w)) != SQLITE_OK)
            return rc;
        rc = w->real->pMethods->xWrite(w->real, data, amt, off);
        atomic_fetch_add_explicit(&n_os_writes, 1, memory_order_relaxed);
        if (rc != SQLITE_OK)
            return rc;
    }
    w->next = off + amt;
    if (amt == WAL_FRAME_HDR) {
        /* bytes 4..7 of a frame header: the database size after a commit, 0 otherwise */
        const unsigned char *h = data;
        w->commit_hdr = (h[4] | h[5] | h[6] | h[7]) != 0;
    } else if (w->commit_hdr) {
        /* The commit frame is complete: into the file before SQLite publishes it. */
        w->commit_hdr = 0;
        rc = wal_flush(w);
    }
    return rc;
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    wal_file *w = (wal_file *)f;
    int rc = wal_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wal_sync(sqlite3_file *f, int flags)
{
    wal_file *w = (wal_file *)f;
    int rc = wal_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    wal_file *w = (wal_file *)f;
    int rc = wal_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wal_lock(sqlite3_file *f, int level)
{
    wal_file *w = (wal_file *)f;
    return w->real->pMethods->xLock(w->real, level);
}

static int wal_unlock(sqlite3_file *f, int level)
{
    wal_file *w = (wal_file *)f;
    return w->real->pMethods->xUnlock(w->real, level);
}

static int wal_check_reserved(sqlite3_file *f, int *out)
{
    wal_file *w = (wal_file *)f;
    return w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int wal_file_control(sqlite3_file *f, int op, void *arg)
{
    wal_file *w = (wal_file *)f;
    int rc = wal_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int wal_sector_size(sqlite3_file *f)
{
    wal_file *w = (wal_file *)f;
    return w->real->pMethods->xSectorSize(w->real);
}

static int wal_device(sqlite3_file *f)
{
    wal_file *w = (wal_file *)f;
    return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* A WAL file has no shared memory or memory map of its own (those belong to the database
 * file), but the methods are forwarded so that the table is complete for any caller. */
static int wal_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    wal_file *w = (wal_file *)f;
    if (w->real->pMethods->iVersion < 2)
        return SQLITE_IOERR_SHMMAP;
    return w->real->pMethods->xShmMap(w->real, pg, pgsz, extend, pp);
}

static int wal_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    wal_file *w = (wal_file *)f;
    if (w->real->pMethods->iVersion < 2)
        return SQLITE_IOERR_SHMLOCK;
    return w->real->pMethods->xShmLock(w->real, offset, n, flags);
}

static void wal_shm_barrier(sqlite3_file *f)
{
    wal_file *w = (wal_file *)f;
    if (w->real->pMethods->iVersion >= 2)
        w->real->pMethods->xShmBarrier(w->real);
}

static int wal_shm_unmap(sqlite3_file *f, int del)
{
    wal_file *w = (wal_file *)f;
    if (w->real->pMethods->iVersion < 2)
        return SQLITE_OK;
    return w->real->pMethods->xShmUnmap(w->real, del);
}

static int wal_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    wal_file *w = (wal_file *)f;
    *pp = NULL; /* no memory map: SQLite reads instead */
    if (w->real->pMethods->iVersion < 3)
        return SQLITE_OK;
    int rc = wal_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFetch(w->real, off, amt, pp);
}

static int wal_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    wal_file *w = (wal_file *)f;
    if (w->real->pMethods->iVersion < 3)
        return SQLITE_OK;
    return w->real->pMethods->xUnfetch(w->real, off, p);
}

static const sqlite3_io_methods wal_io = {
    .iVersion = 3,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = wal_sector_size,
    .xDeviceCharacteristics = wal_device,
    .xShmMap = wal_shm_map,
    .xShmLock = wal_shm_lock,
    .xShmBarrier = wal_shm_barrier,
    .xShmUnmap = wal_shm_unmap,
    .xFetch = wal_fetch,
    .xUnfetch = wal_unfetch,
};

static int vfs_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *oflags)
{
    if (!(flags & SQLITE_OPEN_WAL))
        return real_vfs->xOpen(real_vfs, name, f, flags, oflags); /* f has room: szOsFile */
    wal_file *w = (wal_file *)f;
    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)((unsigned char *)f + WAL_FILE_HEAD);
    int rc = real_vfs->xOpen(real_vfs, name, w->real, flags, oflags);
    if (rc != SQLITE_OK) {
        /* SQLite closes a file whose pMethods is set even when xOpen fails: leave ours unset
         * and close the real one here if it was left open. */
        if (w->real->pMethods)
            w->real->pMethods->xClose(w->real);
        w->base.pMethods = NULL;
        return rc;
    }
    w->base.pMethods = &wal_io;
    return SQLITE_OK;
}

static void vfs_init(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs)
        return;
    /* Everything but opening a file is the default VFS's own method (they use the vfs only
     * for its constants, copied here). */
    vfs = *real_vfs;
    vfs.zName = MC_SQLVFS_NAME;
    vfs.pNext = NULL;
    vfs.szOsFile = (int)WAL_FILE_HEAD + real_vfs->szOsFile;
    vfs.xOpen = vfs_open;
    register_rc = sqlite3_vfs_register(&vfs, 0);
}

mc_err mc_sqlvfs_register(mc_errdetail *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, vfs_init);
    if (!real_vfs)
        return mc_err_set(err, MC_ERR_STORE, NULL, NULL, "sqlite: no default VFS");
    if (register_rc != SQLITE_OK)
        return mc_err_set(err, MC_ERR_STORE, NULL, NULL, "sqlite: registering VFS '%s': %s",
                          MC_SQLVFS_NAME, sqlite3_errstr(register_rc));
    return MC_OK;
}

void mc_sqlvfs_stats_get(mc_sqlvfs_stats *out)
{
    out->sqlite_writes = atomic_load_explicit(&n_sqlite_writes, memory_order_relaxed);
    out->os_writes = atomic_load_explicit(&n_os_writes, memory_order_relaxed);
}
