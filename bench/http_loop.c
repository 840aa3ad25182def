/*
 * http_loop.c — the plain-C baseline for bench/http.lua: N keep-alive GETs
 * of one URL on one reused libcurl easy handle, configured like a
 * knox.Session (same timeouts, encodings, share, callbacks that collect the
 * body and the header lines), with no Lua in the loop.
 *
 *   http_loop URL COUNT [CA_FILE|- [USER_AGENT]]
 *   prints "seconds=<wall> cpu=<process cpu> bytes=<n> connects=<c>"
 *
 * Built by the bench at run time: cc -O2 http_loop.c $(pkg-config --cflags --libs libcurl)
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  char *data;
  size_t len, cap;
} Buf;

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
  Buf *b = ud;
  size_t len = size * n;
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + len) cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) return 0;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, len);
  b->len += len;
  return len;
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: %s URL COUNT [CA_FILE|- [USER_AGENT]]\n", argv[0]);
    return 2;
  }
  long count = strtol(argv[2], NULL, 10);
  Buf body = {0}, head = {0};
  long total_connects = 0;
  size_t bytes = 0;

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
  CURLSH *share = curl_share_init();
  CURL *h = curl_easy_init();
  if (share == NULL || h == NULL) return 1;
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_easy_setopt(h, CURLOPT_SHARE, share);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "gzip, br");
  curl_easy_setopt(h, CURLOPT_USERAGENT, argc > 4 ? argv[4] : "knox-bench/1 libcurl");
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)64 * 1024 * 1024);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &head);
  if (argc > 3 && strcmp(argv[3], "-") != 0) curl_easy_setopt(h, CURLOPT_CAINFO, argv[3]);

  double t0 = now();
  clock_t c0 = clock();
  for (long i = 0; i < count; i++) {
    long status = 0, connects = 0;
    body.len = head.len = 0;
    curl_easy_setopt(h, CURLOPT_URL, argv[1]);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    if (rc != CURLE_OK || status != 200) {
      fprintf(stderr, "request %ld failed: %s (HTTP %ld)\n", i, curl_easy_strerror(rc), status);
      return 1;
    }
    total_connects += connects;
    bytes += body.len;
  }
  double t1 = now();
  double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
  printf("seconds=%.6f cpu=%.6f bytes=%zu connects=%ld\n", t1 - t0, cpu, bytes, total_connects);
  curl_easy_cleanup(h);
  curl_share_cleanup(share);
  free(body.data);
  free(head.data);
  return 0;
}
