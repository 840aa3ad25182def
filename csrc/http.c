/*
 * http.c — transport layer 7 (the entry point): registers knox.Session,
 * the only code in knox that touches the network, into knox.core.
 *
 * The transport, bottom to top; a file may call only the layers below its
 * own (each header says which file defines it):
 *   0  http_buf.h       growing byte buffers (header only)
 *      http_text.c      header blocks to tables; redaction of secrets
 *   1  http_state.h     Transfer, Session, Req; request/info keys (header only)
 *   2  http_error.c     transport failures as knox.Error objects
 *   3  http_debug.c     debug records during a transfer, events after it
 *   4  http_transfer.c  curl callbacks, easy handle options, the response
 *      http_request.c   a request table from Lua into a Req
 *   5  http_session.c   session creation, options, close, session:request
 *   6  http_batch.c     session:batch over curl multi
 *   7  http.c           this file
 * May call: layers 5-6 (http_session.h, http_batch.h), libcurl, kerror.c.
 */
#include "http_batch.h"
#include "http_session.h"

/* Adds core.session to the module table at -1 (knox.h). */
int knox_http_open(lua_State *L)
{
  static const luaL_Reg methods[] = {
    {"request", knox_http_request},
    {"batch", knox_http_batch},
    {"close", knox_http_close},
    {"buffer_bytes", knox_http_buffer_bytes},
    {NULL, NULL},
  };
  /* thread-safe and reference-counted in the libcurl versions we build on;
   * never cleaned up, since other code in the process may use libcurl */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    return knox_error_throw(L, "transport", "libcurl failed to initialise");
  }
  knox_http_session_register(L, methods);
  return 0;
}
