/*
 * keyfile.c — creating the file that holds a private key: a new file,
 * never an existing one and never through a symbolic link (a dangling link
 * at the path would otherwise make open() create its target wherever it
 * points), owner-only from its first byte, written in full and synced, or
 * not left behind at all. POSIX calls only; every failure is returned as
 * an errno value for key.c to raise. Interface: keyfile.h.
 */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Writes p[0..n) to fd, across short writes and signals. 0 or an errno. */
static int write_all(int fd, const unsigned char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO; /* a regular file never takes 0 of n > 0 bytes */
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* After a failure past creation: no partial private key stays on disk.
 * The file is ours (O_EXCL), so removing it by name is safe enough; its
 * failures add nothing the caller could act on beyond the first error. */
static void discard(const char *path, int fd)
{
  if (fd >= 0) {
    if (ftruncate(fd, 0) != 0) { /* nothing more to do: unlink follows */ }
    if (close(fd) != 0) { /* the descriptor is released either way */ }
  }
  if (unlink(path) != 0) { /* already gone, or the directory is read-only */ }
}

int knox_keyfile_write(const char *path, const void *data, size_t n, int *step)
{
  int fd;
  do {
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, S_IRUSR | S_IWUSR);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    *step = KEYFILE_CREATE;
    return errno;
  }
  int err = write_all(fd, data, n);
  *step = KEYFILE_WRITE;
  if (err == 0 && fsync(fd) != 0) {
    err = errno;
    *step = KEYFILE_SYNC;
  }
  if (err != 0) {
    discard(path, fd);
    return err;
  }
  /* close can report a deferred write error (NFS); the descriptor is
   * released whatever it returns, so it is never retried */
  if (close(fd) != 0) {
    err = errno;
    *step = KEYFILE_CLOSE;
    discard(path, -1);
    return err;
  }
  return 0;
}

const char *knox_keyfile_errno_name(int err)
{
  switch (err) {
  case EEXIST: return "EEXIST";
  case ELOOP: return "ELOOP";
  case ENOENT: return "ENOENT";
  case ENOTDIR: return "ENOTDIR";
  case EISDIR: return "EISDIR";
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case EROFS: return "EROFS";
  case ENOSPC: return "ENOSPC";
  case EDQUOT: return "EDQUOT";
  case EFBIG: return "EFBIG";
  case EIO: return "EIO";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case EMFILE: return "EMFILE";
  case ENFILE: return "ENFILE";
  default: return NULL;
  }
}

int knox_keyfile_is_symlink(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}
