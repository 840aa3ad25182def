/*
 * http_error.c — transport layer 2: transport failures as knox.Error
 * objects: the symbolic names of libcurl's codes (an X-macro over the
 * CURLE_* enum), whether a retry can help, and whether the request may have
 * reached the server; also the errors of the multi and share handles.
 * May call: layers 0-1 (http_text.h, http_state.h), kerror.c, libcurl.
 * Interface: http_error.h.
 */
#include "http_error.h"
#include "http_text.h"

#include <string.h>

/* ---------------------------------------------------------------------
 * Transport failure names: every CURLE_* code of libcurl 7.88, in enum
 * order, with what a caller's retry policy needs to know about it.
 * F_RETRY: a transient network condition; trying again can help.
 * F_PRESEND: fails before any byte of the request can have been sent, so
 * the request provably never reached the server (cause.ambiguous false).
 */
#define F_RETRY 1
#define F_PRESEND 2
#define F_BOTH (F_RETRY | F_PRESEND)

#define CURL_CODES(X) \
  X(UNSUPPORTED_PROTOCOL, F_PRESEND) \
  X(FAILED_INIT, F_PRESEND) \
  X(URL_MALFORMAT, F_PRESEND) \
  X(NOT_BUILT_IN, F_PRESEND) \
  X(COULDNT_RESOLVE_PROXY, F_BOTH) \
  X(COULDNT_RESOLVE_HOST, F_BOTH) \
  X(COULDNT_CONNECT, F_BOTH) \
  X(WEIRD_SERVER_REPLY, 0) \
  X(REMOTE_ACCESS_DENIED, 0) \
  X(FTP_ACCEPT_FAILED, 0) \
  X(FTP_WEIRD_PASS_REPLY, 0) \
  X(FTP_ACCEPT_TIMEOUT, 0) \
  X(FTP_WEIRD_PASV_REPLY, 0) \
  X(FTP_WEIRD_227_FORMAT, 0) \
  X(FTP_CANT_GET_HOST, 0) \
  X(HTTP2, 0) \
  X(FTP_COULDNT_SET_TYPE, 0) \
  X(PARTIAL_FILE, F_RETRY) \
  X(FTP_COULDNT_RETR_FILE, 0) \
  X(QUOTE_ERROR, 0) \
  X(HTTP_RETURNED_ERROR, 0) \
  X(WRITE_ERROR, 0) \
  X(UPLOAD_FAILED, 0) \
  X(READ_ERROR, 0) \
  X(OUT_OF_MEMORY, 0) \
  X(OPERATION_TIMEDOUT, F_RETRY) \
  X(FTP_PORT_FAILED, 0) \
  X(FTP_COULDNT_USE_REST, 0) \
  X(RANGE_ERROR, 0) \
  X(HTTP_POST_ERROR, 0) \
  X(SSL_CONNECT_ERROR, F_PRESEND) \
  X(BAD_DOWNLOAD_RESUME, 0) \
  X(FILE_COULDNT_READ_FILE, 0) \
  X(LDAP_CANNOT_BIND, 0) \
  X(LDAP_SEARCH_FAILED, 0) \
  X(FUNCTION_NOT_FOUND, 0) \
  X(ABORTED_BY_CALLBACK, 0) \
  X(BAD_FUNCTION_ARGUMENT, F_PRESEND) \
  X(INTERFACE_FAILED, F_PRESEND) \
  X(TOO_MANY_REDIRECTS, 0) \
  X(UNKNOWN_OPTION, F_PRESEND) \
  X(SETOPT_OPTION_SYNTAX, F_PRESEND) \
  X(GOT_NOTHING, F_RETRY) \
  X(SSL_ENGINE_NOTFOUND, F_PRESEND) \
  X(SSL_ENGINE_SETFAILED, F_PRESEND) \
  X(SEND_ERROR, F_RETRY) \
  X(RECV_ERROR, F_RETRY) \
  X(SSL_CERTPROBLEM, F_PRESEND) \
  X(SSL_CIPHER, F_PRESEND) \
  X(PEER_FAILED_VERIFICATION, F_PRESEND) \
  X(BAD_CONTENT_ENCODING, 0) \
  X(FILESIZE_EXCEEDED, 0) \
  X(USE_SSL_FAILED, F_PRESEND) \
  X(SEND_FAIL_REWIND, F_RETRY) \
  X(SSL_ENGINE_INITFAILED, F_PRESEND) \
  X(LOGIN_DENIED, 0) \
  X(TFTP_NOTFOUND, 0) \
  X(TFTP_PERM, 0) \
  X(REMOTE_DISK_FULL, 0) \
  X(TFTP_ILLEGAL, 0) \
  X(TFTP_UNKNOWNID, 0) \
  X(REMOTE_FILE_EXISTS, 0) \
  X(TFTP_NOSUCHUSER, 0) \
  X(SSL_CACERT_BADFILE, F_PRESEND) \
  X(REMOTE_FILE_NOT_FOUND, 0) \
  X(SSH, 0) \
  X(SSL_SHUTDOWN_FAILED, 0) \
  X(AGAIN, F_RETRY) \
  X(SSL_CRL_BADFILE, F_PRESEND) \
  X(SSL_ISSUER_ERROR, F_PRESEND) \
  X(FTP_PRET_FAILED, 0) \
  X(RTSP_CSEQ_ERROR, 0) \
  X(RTSP_SESSION_ERROR, 0) \
  X(FTP_BAD_FILE_LIST, 0) \
  X(CHUNK_FAILED, 0) \
  X(NO_CONNECTION_AVAILABLE, F_BOTH) \
  X(SSL_PINNEDPUBKEYNOTMATCH, F_PRESEND) \
  X(SSL_INVALIDCERTSTATUS, F_PRESEND) \
  X(HTTP2_STREAM, F_RETRY) \
  X(RECURSIVE_API_CALL, 0) \
  X(AUTH_ERROR, 0) \
  X(HTTP3, 0) \
  X(QUIC_CONNECT_ERROR, F_BOTH)

/* Codes younger than the oldest libcurl we build against. */
#if LIBCURL_VERSION_NUM >= 0x074900
#define CURL_CODES_7_73(X) X(PROXY, F_PRESEND)
#else
#define CURL_CODES_7_73(X)
#endif
#if LIBCURL_VERSION_NUM >= 0x074d00
#define CURL_CODES_7_77(X) X(SSL_CLIENTCERT, F_PRESEND)
#else
#define CURL_CODES_7_77(X)
#endif
#if LIBCURL_VERSION_NUM >= 0x075400
#define CURL_CODES_7_84(X) X(UNRECOVERABLE_POLL, 0)
#else
#define CURL_CODES_7_84(X)
#endif

/* The symbolic name and flags of a libcurl code; NULL name when unknown. */
static const char *code_name(CURLcode rc, int *flags)
{
  switch (rc) {
#define X(name, f) case CURLE_##name: *flags = (f); return #name;
    CURL_CODES(X)
    CURL_CODES_7_73(X)
    CURL_CODES_7_77(X)
    CURL_CODES_7_84(X)
#undef X
  default:
    *flags = 0;
    return NULL;
  }
}

/* Sets error.method and error.url (sanitized) from the request table. */
void knox_http_set_request_fields(lua_State *L, int req)
{
  if (req == 0) return;
  lua_pushliteral(L, "method");
  lua_rawget(L, req);
  if (lua_type(L, -1) == LUA_TSTRING) lua_setfield(L, -2, "method");
  else {
    lua_pop(L, 1);
    lua_pushliteral(L, "GET");
    lua_setfield(L, -2, "method");
  }
  lua_pushliteral(L, "url");
  lua_rawget(L, req);
  if (lua_type(L, -1) == LUA_TSTRING) {
    knox_http_push_safe_url(L, lua_tostring(L, -1));
    lua_setfield(L, -3, "url");
  }
  lua_pop(L, 1);
}

/* Whether rc is libcurl refusing a response header line longer than
 * CURL_MAX_HTTP_HEADER: it stops with CURLE_OUT_OF_MEMORY and never hands
 * the line to header_cb, so knox's own limits cannot see it. A transfer
 * that sent its request and had not yet received the end of the final
 * header block was reading header lines when that happened. */
static int header_line_refused(const Transfer *t, CURLcode rc, long sent)
{
  return t != NULL && rc == CURLE_OUT_OF_MEMORY && t->fail == FAIL_NONE && !t->head_done && sent > 0;
}

/* [-0, +1, m] the message of a transfer that ended with rc; sets *name and
 * *flags where knox knows better than libcurl's code (its own limits). */
static void push_message(lua_State *L, const Session *S, const Transfer *t, CURLcode rc, long sent,
                         const char **name, int *flags)
{
  int fail = t != NULL ? t->fail : FAIL_NONE;
  if (fail == FAIL_TOO_LARGE || rc == CURLE_FILESIZE_EXCEEDED) {
    *name = "RESPONSE_TOO_LARGE";
    *flags = 0;
    if (t != NULL && t->batch_ways > 0) {
      lua_pushfstring(L, "response body larger than %I bytes, this transfer's share of max_batch_bytes "
                         "(%I bytes for %d transfers at once); lower the concurrency or raise max_batch_bytes",
                      (lua_Integer)t->max_body, (lua_Integer)S->max_batch, t->batch_ways);
    } else {
      lua_pushfstring(L, "response body larger than max_response_bytes (%I bytes)",
                      (lua_Integer)S->max_response);
    }
  } else if (fail == FAIL_HEADERS_TOO_LARGE || fail == FAIL_HEADERS_TOO_MANY ||
             header_line_refused(t, rc, sent)) {
    *name = "RESPONSE_HEADERS_TOO_LARGE";
    *flags = 0;
    if (fail == FAIL_HEADERS_TOO_MANY) {
      lua_pushfstring(L, "response has more than %d header lines", HEADER_LINES_LIMIT);
    } else if (fail == FAIL_HEADERS_TOO_LARGE) {
      lua_pushfstring(L, "response headers larger than %d KiB", (int)(HEADER_BYTES_LIMIT / 1024));
    } else {
      lua_pushfstring(L, "a response header line longer than libcurl accepts (%d KiB)",
                      CURL_MAX_HTTP_HEADER / 1024);
    }
  } else if (fail == FAIL_OOM) {
    *name = "OUT_OF_MEMORY";
    *flags = 0;
    lua_pushliteral(L, "out of memory while receiving the response");
  } else if (rc == CURLE_SEND_FAIL_REWIND) {
    /* the only rewind we refuse is libcurl's own resend of a write on a
     * fresh connection after a reused one died (http_transfer.c, seek_refuse_cb) */
    *name = "CONNECTION_DIED";
    lua_pushliteral(L, "the connection closed before any response; the request was not sent again "
                       "because the server may have acted on it");
  } else if (t != NULL && t->errbuf[0] != '\0') {
    size_t len = strnlen(t->errbuf, sizeof t->errbuf);
    while (len > 0 && (t->errbuf[len - 1] == '\n' || t->errbuf[len - 1] == '\r')) len--;
    knox_http_push_redacted(L, t->errbuf, len);
  } else {
    lua_pushstring(L, curl_easy_strerror(rc));
  }
}

/* [-0, +1, m] the knox.Error for a transfer (t may be NULL for failures
 * outside a transfer) that ended with rc, for the request table at req
 * (0: none). kind "transport"; cause = {curl_code, name, text, ambiguous}. */
void knox_http_push_transport_error(lua_State *L, const Session *S, const Transfer *t, CURLcode rc,
                                    int req)
{
  int flags;
  const char *name = code_name(rc, &flags);
  const char *text = curl_easy_strerror(rc);
  long sent = t != NULL ? knox_http_info_long(t->easy, CURLINFO_REQUEST_SIZE, 0) : 0;
  int top = lua_gettop(L);

  push_message(L, S, t, rc, sent, &name, &flags);
  if (name == NULL) {
    lua_pushfstring(L, "CURLE_%d", (int)rc);
    name = lua_tostring(L, -1);
  }
  knox_error_new(L, "transport", lua_tostring(L, top + 1));
  lua_createtable(L, 0, 4);
  knox_error_setint(L, "curl_code", (lua_Integer)rc);
  knox_error_setstr(L, "name", name);
  knox_error_setstr(L, "text", text);
  /* The request may have reached the server unless the failure provably
   * came before the first byte left (CURLINFO_REQUEST_SIZE counts the
   * bytes of the request written so far, reset per transfer). */
  knox_error_setbool(L, "ambiguous", !(flags & F_PRESEND) && sent > 0);
  lua_setfield(L, -2, "cause");
  knox_error_setbool(L, "retryable", (flags & F_RETRY) != 0);
  knox_http_set_request_fields(L, req);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}


/* [-0, +1, m] the knox.Error for a broken curl multi handle. */
void knox_http_push_multi_error(lua_State *L, CURLMcode mc, int req)
{
  const char *name = mc == CURLM_OUT_OF_MEMORY ? "OUT_OF_MEMORY" : "MULTI_ERROR";
  knox_error_new(L, "transport", curl_multi_strerror(mc));
  lua_createtable(L, 0, 4);
  knox_error_setint(L, "multi_code", (lua_Integer)mc);
  knox_error_setstr(L, "name", name);
  knox_error_setstr(L, "text", curl_multi_strerror(mc));
  knox_error_setbool(L, "ambiguous", 1);
  lua_setfield(L, -2, "cause");
  knox_error_setbool(L, "retryable", 0);
  knox_http_set_request_fields(L, req);
}

/* [-0, +1, m] the knox.Error for a share handle that refused an option. */
void knox_http_push_share_error(lua_State *L, CURLSHcode sc)
{
  knox_error_new(L, "transport", curl_share_strerror(sc));
  lua_createtable(L, 0, 3);
  knox_error_setint(L, "share_code", (lua_Integer)sc);
  knox_error_setstr(L, "name", "SHARE_ERROR");
  knox_error_setstr(L, "text", curl_share_strerror(sc));
  lua_setfield(L, -2, "cause");
  knox_error_setbool(L, "retryable", 0);
}
