/*
 * keyfile.h — creating the file that holds a private key. Defined in
 * keyfile.c (POSIX calls only, no Lua); used by key.c for key:save.
 */
#ifndef KNOX_KEYFILE_H
#define KNOX_KEYFILE_H

#include <stddef.h>

/* Which step of knox_keyfile_write failed. */
enum { KEYFILE_CREATE = 1, KEYFILE_WRITE, KEYFILE_SYNC, KEYFILE_CLOSE };

/* Creates path as a new file, owner-only (0600, less if the umask says
 * so), writes data[0..n) in full and syncs it. Never opens an existing
 * file and never follows a symbolic link, even a dangling one (O_EXCL with
 * O_NOFOLLOW). Returns 0, or an errno value with *step set; after a failure
 * past creation the file is emptied and removed, so no partial key stays. */
int knox_keyfile_write(const char *path, const void *data, size_t n, int *step);

/* "EEXIST", "ELOOP", ... for the errno values a key file can meet, else
 * NULL. */
const char *knox_keyfile_errno_name(int err);

/* Whether path is a symbolic link (lstat; 0 when it cannot tell). */
int knox_keyfile_is_symlink(const char *path);

#endif
