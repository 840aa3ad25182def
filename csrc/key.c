/*
 * key.c — the customer's RSA key pair for Knox Cloud Authentication:
 * keys.json (base64 DER "Public"/"Private") and PEM loading, the two RS512
 * JWTs Samsung's token library signs (client identifier, access token), any
 * claims table signed the same way, and the Knox Mobile Enrollment field
 * encryption (RSA PKCS#1 v1.5 under Samsung's published key).
 * Facts: shared/knox-docs/api-notes.md §2.2, §2.3 and §6. OpenSSL 3 EVP only.
 *
 * Secrets: private-key bytes this file decodes or encodes live only in
 * "scratch" userdata that is cleansed right after use (and again by its
 * __gc), never in malloc'd memory held across a call that can raise. The
 * key itself lives in an EVP_PKEY owned by a knox.Key userdata created
 * before the key is, so a raise anywhere leaves the cleanup to the GC.
 */
#include "knox.h"
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#define KEY_MT "knox.Key"
#define SCRATCH_MT "knox.key.Scratch"   /* cleansed scratch memory */
#define PUBBOX_MT "knox.key.PublicKey"  /* internal: an encryption key */

/* RSA sizes we accept. Below 2048 is refused (NIST retired RSA-1024); above
 * OpenSSL's own limit signing would fail anyway. generate{} stops lower,
 * because an 8192+ bit keygen takes minutes. */
#define KEY_MIN_BITS 2048
#define KEY_MAX_BITS 16384
#define GEN_MAX_BITS 8192
#define MAX_SIG_BYTES (KEY_MAX_BITS / 8)
#define MAX_SPKI_BYTES 4608
/* A keys.json is a few KB; anything much larger is not one. */
#define MAX_KEY_FILE_BYTES (1024 * 1024)

/* JWT shape of Samsung's library (api-notes §2.3). */
#define JWT_HEADER "{\"alg\":\"RS512\",\"typ\":\"JWT\"}"
#define JWT_AUDIENCE "KnoxWSM"
#define JWT_LIFETIME 1800
#define JTI_LEN 72
/* opts.now up to 2^53 (exact in a double), opts.lifetime below 2^31:
 * iat + lifetime can never overflow. */
#define MAX_NOW 9007199254740992.0
#define MAX_LIFETIME 2147483647.0

/* Samsung's KME encryption key: SPKI DER, base64 (api-notes §6). Whether it
 * is region-specific or rotates is UNCONFIRMED; opts.public_key overrides. */
static const char KME_PUBLIC_KEY[] =
  "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu4NECyudg9kYyLqdcfaOiRY+ImD3"
  "PYpnMXItzWR9YL1BeJOt1lwLG32aIix2SvED+5w8q0aLINeS8zDiJ28gsz5waUSIZHDzuPg9"
  "GOaDumua6FWcXxqI1i209lPF7rzbtHWU/2AngPX/hb5a/L7nYuTpDTNFMvQ1k1xw3fghtUb5"
  "lP+tRPYIgdKjRdS5WCRCR3I8ppyKABFisYHn1jm0op16AyIyX6lbCTb7HppkfDU2V0tdPBqT"
  "T5C1qNJKkPVLQzqN3lKQdY0bx+Ebf9zA+QPeorTTGurmnAe4JuNYO3G26WtFZ91RaMaKXogT"
  "1l+2++oaoSGZk1fm6z2ojLdz4wIDAQAB";

/* A knox.Key. Its first user value is the SPKI DER base64 string
 * (public_key()), computed once. pkey == NULL once closed. */
typedef struct {
  EVP_PKEY *pkey;
  EVP_PKEY_CTX *sign_ctx; /* RSA PKCS#1 v1.5 over a SHA-512 digest, reused */
  EVP_MD *sha512;         /* fetched once: no implicit fetch per token */
  int bits;
  unsigned char fpr[32];  /* SHA-256 of the SPKI DER */
} knox_key;

/* An internal public key for knox.encrypt (the default one, or a string
 * passed as opts.public_key), owned by the GC like a knox.Key. */
typedef struct {
  EVP_PKEY *pkey;
} pubbox;

/* ---------------------------------------------------------------------
 * base64 and small text helpers (no Lua, no OpenSSL)
 */

static const char B64_STD[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_len(size_t n, int pad)
{
  if (pad) return (n + 2) / 3 * 4;
  return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Writes b64_len(n, pad) characters to dst (no terminator). */
static size_t b64_encode(char *dst, const unsigned char *src, size_t n,
                         const char *alphabet, int pad)
{
  char *d = dst;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
    *d++ = alphabet[v >> 18];
    *d++ = alphabet[v >> 12 & 63];
    *d++ = alphabet[v >> 6 & 63];
    *d++ = alphabet[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)src[i] << 16;
    *d++ = alphabet[v >> 18];
    *d++ = alphabet[v >> 12 & 63];
    if (pad) { *d++ = '='; *d++ = '='; }
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
    *d++ = alphabet[v >> 18];
    *d++ = alphabet[v >> 12 & 63];
    *d++ = alphabet[v >> 6 & 63];
    if (pad) *d++ = '=';
  }
  return (size_t)(d - dst);
}

static int b64_value(unsigned char c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

static int is_space(unsigned char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Decodes standard base64, skipping ASCII whitespace anywhere (keys.json
 * files wrap the text); '=' padding is optional but only at the end.
 * dst must hold n / 4 * 3 + 3 bytes; *outlen is set to the bytes written
 * even on failure, so the caller can cleanse them. Returns 0 on a character
 * outside the alphabet, misplaced padding or a dangling final character. */
static int b64_decode(unsigned char *dst, size_t *outlen, const char *src, size_t n)
{
  uint32_t acc = 0;
  int nbits = 0, ok = 1;
  size_t chars = 0, pads = 0, o = 0;
  for (size_t i = 0; i < n && ok; i++) {
    unsigned char c = (unsigned char)src[i];
    if (is_space(c)) continue;
    if (c == '=') {
      pads++;
      continue;
    }
    int v = b64_value(c);
    if (v < 0 || pads > 0) {
      ok = 0;
      break;
    }
    acc = acc << 6 | (uint32_t)v;
    nbits += 6;
    chars++;
    if (nbits >= 8) {
      nbits -= 8;
      dst[o++] = (unsigned char)(acc >> nbits);
    }
  }
  *outlen = o;
  return ok && chars % 4 != 1 && pads <= 2 && (pads == 0 || (chars + pads) % 4 == 0);
}

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2; cp = c & 0x1f; min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3; cp = c & 0x0f; min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4; cp = c & 0x07; min = 0x10000;
    } else {
      return 0;
    }
    if (n - i < len) return 0;
    for (size_t j = 1; j < len; j++) {
      if ((s[i + j] & 0xc0) != 0x80) return 0;
      cp = cp << 6 | (s[i + j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    i += len;
  }
  return 1;
}

/* Skips a UTF-8 byte-order mark and leading whitespace. */
static const char *skip_lead(const char *s, size_t *n)
{
  if (*n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
    s += 3;
    *n -= 3;
  }
  while (*n > 0 && is_space((unsigned char)*s)) {
    s++;
    (*n)--;
  }
  return s;
}

/* ---------------------------------------------------------------------
 * Key parsing: plain C over OpenSSL. Each function returns the key or NULL
 * with a one-line reason in why (never key material). Nothing here calls
 * Lua, so nothing here can longjmp past an OpenSSL object.
 */

typedef struct {
  char text[200];
} reason;

/* Refuses what RS512 cannot or should not sign with: not RSA (RSA-PSS
 * included: its keys refuse PKCS#1 v1.5 padding), too small, too large.
 * what names the key in the message. Frees pk and returns NULL on refusal. */
static EVP_PKEY *require_rsa(EVP_PKEY *pk, const char *what, reason *why)
{
  if (pk == NULL) return NULL;
  int id = EVP_PKEY_get_base_id(pk);
  if (id != EVP_PKEY_RSA) {
    snprintf(why->text, sizeof why->text, "%s is %s, not an RSA key", what,
             id == EVP_PKEY_RSA_PSS ? "an RSA-PSS key" : "another key type");
    EVP_PKEY_free(pk);
    return NULL;
  }
  int bits = EVP_PKEY_get_bits(pk);
  if (bits < KEY_MIN_BITS || bits > KEY_MAX_BITS) {
    snprintf(why->text, sizeof why->text,
             "%s is a %d-bit RSA key; %d to %d bits are accepted", what, bits,
             KEY_MIN_BITS, KEY_MAX_BITS);
    EVP_PKEY_free(pk);
    return NULL;
  }
  return pk;
}

/* A private key from DER: PKCS#1 RSAPrivateKey or PKCS#8 PrivateKeyInfo
 * (which one Samsung issues is UNCONFIRMED, so both; api-notes §2.2). */
static EVP_PKEY *der_private(const unsigned char *der, size_t n, const char *what,
                             reason *why)
{
  const unsigned char *p = der;
  EVP_PKEY *pk = n <= LONG_MAX ? d2i_AutoPrivateKey(NULL, &p, (long)n) : NULL;
  if (pk == NULL || (size_t)(p - der) != n) {
    snprintf(why->text, sizeof why->text,
             "%s is not a DER private key (PKCS#1 or PKCS#8), or it is truncated", what);
    EVP_PKEY_free(pk);
    return NULL;
  }
  return require_rsa(pk, what, why);
}

/* A public key from DER: SubjectPublicKeyInfo, else PKCS#1 RSAPublicKey. */
static EVP_PKEY *der_public(const unsigned char *der, size_t n, const char *what,
                            reason *why)
{
  const unsigned char *p = der;
  EVP_PKEY *pk = NULL;
  if (n <= LONG_MAX) {
    pk = d2i_PUBKEY(NULL, &p, (long)n);
    if (pk != NULL && (size_t)(p - der) != n) {
      EVP_PKEY_free(pk);
      pk = NULL;
    }
    if (pk == NULL) {
      p = der;
      pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)n);
      if (pk != NULL && (size_t)(p - der) != n) {
        EVP_PKEY_free(pk);
        pk = NULL;
      }
    }
  }
  if (pk == NULL) {
    snprintf(why->text, sizeof why->text,
             "%s is not a DER public key (SubjectPublicKeyInfo or PKCS#1), or it is truncated",
             what);
    return NULL;
  }
  return require_rsa(pk, what, why);
}

/* A PEM passphrase callback that refuses: the default one would prompt on
 * the terminal, and a library must never block on a prompt. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
  (void)buf; (void)size; (void)rwflag; (void)u;
  return -1;
}

static EVP_PKEY *pem_private(const char *text, size_t n, reason *why)
{
  EVP_PKEY *pk = NULL;
  BIO *bio = n <= INT_MAX ? BIO_new_mem_buf(text, (int)n) : NULL;
  if (bio != NULL) {
    pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
  }
  if (pk == NULL) {
    /* text is NUL-terminated by every caller. */
    int encrypted = strstr(text, "ENCRYPTED") != NULL;
    snprintf(why->text, sizeof why->text, "%s",
             encrypted ? "the PEM private key is encrypted; passphrases are not supported"
                       : "holds no readable PEM private key");
    return NULL;
  }
  return require_rsa(pk, "the PEM private key", why);
}

/* A public key given as text: PEM ("PUBLIC KEY" or "RSA PUBLIC KEY") or
 * base64 DER. scratch holds n / 4 * 3 + 3 bytes. */
static EVP_PKEY *text_public(const char *text, size_t n, unsigned char *scratch,
                             const char *what, reason *why)
{
  const char *s = skip_lead(text, &n);
  if (n >= 10 && memcmp(s, "-----BEGIN", 10) == 0) {
    EVP_PKEY *pk = NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t left = n;
    OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(&pk, "PEM", NULL, "RSA",
                                                           EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    if (dctx == NULL || !OSSL_DECODER_from_data(dctx, &p, &left)) {
      EVP_PKEY_free(pk);
      pk = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    if (pk == NULL) {
      snprintf(why->text, sizeof why->text, "%s is not a PEM RSA public key", what);
      return NULL;
    }
    return require_rsa(pk, what, why);
  }
  size_t len = 0;
  if (!b64_decode(scratch, &len, s, n) || len == 0) {
    snprintf(why->text, sizeof why->text, "%s is neither base64 DER nor PEM", what);
    return NULL;
  }
  return der_public(scratch, len, what, why);
}

/* Decodes one keys.json field into scratch and parses it. */
static EVP_PKEY *json_field_key(const cJSON *field, int is_private, unsigned char *scratch,
                                reason *why)
{
  const char *what = is_private ? "field \"Private\"" : "field \"Public\"";
  const char *v = field->valuestring;
  size_t len = 0;
  EVP_PKEY *pk = NULL;
  if (!b64_decode(scratch, &len, v, strlen(v))) {
    snprintf(why->text, sizeof why->text, "%s is not valid base64", what);
  } else if (len == 0) {
    snprintf(why->text, sizeof why->text, "%s is empty", what);
  } else {
    pk = is_private ? der_private(scratch, len, what, why) : der_public(scratch, len, what, why);
  }
  OPENSSL_cleanse(scratch, len);
  return pk;
}

/* keys.json: an object with base64 DER "Public" and "Private" (other
 * fields, such as "Identifier", are ignored) whose two halves match.
 * scratch holds n + 4 bytes. */
static EVP_PKEY *json_keypair(const char *text, size_t n, int pem_too,
                              unsigned char *scratch, reason *why)
{
  const char *end = NULL;
  cJSON *doc = cJSON_ParseWithLengthOpts(text, n, &end, 0);
  if (doc != NULL && end != NULL && end >= text && (size_t)(end - text) <= n) {
    size_t rest = n - (size_t)(end - text);
    while (rest > 0 && is_space((unsigned char)*end)) {
      end++;
      rest--;
    }
    if (rest > 0) {
      cJSON_Delete(doc);
      doc = NULL;
    }
  }
  if (doc == NULL) {
    snprintf(why->text, sizeof why->text, "%s",
             pem_too ? "is neither JSON (keys.json) nor a PEM private key" : "is not JSON");
    return NULL;
  }

  int object = cJSON_IsObject(doc);
  const cJSON *fpub = object ? cJSON_GetObjectItemCaseSensitive(doc, "Public") : NULL;
  const cJSON *fpriv = object ? cJSON_GetObjectItemCaseSensitive(doc, "Private") : NULL;
  EVP_PKEY *priv = NULL, *pub = NULL;
  if (!object) {
    snprintf(why->text, sizeof why->text, "is JSON but not an object");
  } else if (fpub == NULL || fpriv == NULL) {
    snprintf(why->text, sizeof why->text, "has no \"%s\" field",
             fpub == NULL ? "Public" : "Private");
  } else if (!cJSON_IsString(fpub) || !cJSON_IsString(fpriv)) {
    snprintf(why->text, sizeof why->text, "field \"%s\" is not a string",
             cJSON_IsString(fpub) ? "Private" : "Public");
  } else if ((priv = json_field_key(fpriv, 1, scratch, why)) != NULL &&
             (pub = json_field_key(fpub, 0, scratch, why)) != NULL &&
             EVP_PKEY_eq(priv, pub) != 1) {
    snprintf(why->text, sizeof why->text,
             "field \"Public\" does not match field \"Private\" (not one key pair)");
    EVP_PKEY_free(priv);
    priv = NULL;
  }
  if (priv != NULL && pub == NULL) {
    EVP_PKEY_free(priv);
    priv = NULL;
  }
  EVP_PKEY_free(pub);
  if (cJSON_IsString(fpriv)) {
    OPENSSL_cleanse(fpriv->valuestring, strlen(fpriv->valuestring));
  }
  cJSON_Delete(doc);
  return priv;
}

/* The text of a key file: keys.json, or a PEM private key when pem_too.
 * text is NUL-terminated; scratch holds n + 4 bytes. */
static EVP_PKEY *parse_key_text(const char *text, size_t n, int pem_too,
                                unsigned char *scratch, reason *why)
{
  const char *s = skip_lead(text, &n);
  if (n == 0) {
    snprintf(why->text, sizeof why->text, "is empty");
    return NULL;
  }
  if (pem_too && n >= 10 && memcmp(s, "-----BEGIN", 10) == 0) {
    return pem_private(s, n, why);
  }
  return json_keypair(s, n, pem_too, scratch, why);
}

/* ---------------------------------------------------------------------
 * Signing and encryption primitives
 */

/* RS512: RSASSA-PKCS1-v1_5 over SHA-512. *siglen is the room in sig on
 * entry. The context is made once per key and reused, as `openssl speed`
 * does, so a token costs one digest and one private-key operation. */
static int rs512_sign(const knox_key *k, const unsigned char *msg, size_t n,
                      unsigned char *sig, size_t *siglen)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  return EVP_Digest(msg, n, md, &mdlen, k->sha512, NULL) == 1 &&
         EVP_PKEY_sign(k->sign_ctx, sig, siglen, md, mdlen) == 1;
}

/* Signs and verifies a fixed message: catches a private key whose numbers
 * are inconsistent (it would sign tokens Knox rejects) at load time. */
static int self_test(const knox_key *k)
{
  static const unsigned char msg[] = "knox: key self-test";
  unsigned char sig[MAX_SIG_BYTES], md[EVP_MAX_MD_SIZE];
  size_t siglen = sizeof sig;
  unsigned int mdlen = 0;
  if (!rs512_sign(k, msg, sizeof msg - 1, sig, &siglen)) return 0;
  if (EVP_Digest(msg, sizeof msg - 1, md, &mdlen, k->sha512, NULL) != 1) return 0;
  EVP_PKEY_CTX *v = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
  int ok = v != NULL && EVP_PKEY_verify_init(v) == 1 &&
           EVP_PKEY_CTX_set_rsa_padding(v, RSA_PKCS1_PADDING) > 0 &&
           EVP_PKEY_CTX_set_signature_md(v, k->sha512) > 0 &&
           EVP_PKEY_verify(v, sig, siglen, md, mdlen) == 1;
  EVP_PKEY_CTX_free(v);
  return ok;
}

/* Two random (version 4) UUIDs back to back: 72 characters, the shape of
 * Samsung's jti, 244 bits from the CSPRNG. */
static int make_jti(char *out)
{
  static const char hex[] = "0123456789abcdef";
  unsigned char r[32];
  if (RAND_bytes(r, sizeof r) != 1) return 0;
  char *d = out;
  for (int u = 0; u < 2; u++) {
    unsigned char *b = r + 16 * u;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++) {
      if (i == 4 || i == 6 || i == 8 || i == 10) *d++ = '-';
      *d++ = hex[b[i] >> 4];
      *d++ = hex[b[i] & 15];
    }
  }
  *d = '\0';
  return 1;
}

/* ---------------------------------------------------------------------
 * Lua side
 */

/* Raises knox.Error{kind="key", message="<name>: <why>", path=path}.
 * Clears the OpenSSL error queue first: nothing of a failure stays behind
 * for an unrelated caller to find. */
static int key_raise(lua_State *L, const char *name, const char *path, const char *why)
{
  ERR_clear_error();
  lua_pushfstring(L, "%s: %s", name, why);
  knox_error_new(L, "key", lua_tostring(L, -1));
  knox_error_setstr(L, "path", path);
  return knox_error_raise(L);
}

/* key_raise with "cannot read it: <strerror(err)>". */
static int key_raise_errno(lua_State *L, const char *path, int err)
{
  char e[100], msg[140];
  if (strerror_r(err, e, sizeof e) != 0) snprintf(e, sizeof e, "error %d", err);
  snprintf(msg, sizeof msg, "cannot read it: %s", e);
  return key_raise(L, path, path, msg);
}

/* Scratch memory owned by Lua (so a raise cannot leak it) whose __gc
 * cleanses it; callers cleanse it themselves as soon as they are done. */
static unsigned char *scratch_new(lua_State *L, size_t n)
{
  unsigned char *p = lua_newuserdatauv(L, n, 0);
  memset(p, 0, n);
  luaL_setmetatable(L, SCRATCH_MT);
  return p;
}

/* __gc of scratch memory: [-0, +0, -] */
static int l_scratch_gc(lua_State *L)
{
  void *p = lua_touserdata(L, 1);
  if (p != NULL) OPENSSL_cleanse(p, lua_rawlen(L, 1));
  return 0;
}

/* __gc of an internal encryption key: [-0, +0, -] */
static int l_pubbox_gc(lua_State *L)
{
  pubbox *b = luaL_checkudata(L, 1, PUBBOX_MT);
  EVP_PKEY_free(b->pkey);
  b->pkey = NULL;
  return 0;
}

/* Pushes an empty knox.Key (no EVP_PKEY yet). */
static knox_key *key_new(lua_State *L)
{
  knox_key *k = lua_newuserdatauv(L, sizeof *k, 1);
  memset(k, 0, sizeof *k);
  luaL_setmetatable(L, KEY_MT);
  return k;
}

/* Completes the knox.Key at idx once its EVP_PKEY is set: fingerprint,
 * the signing context, a self-test signature, and the public_key() text
 * as its user value. Raises a key error naming name / path. */
static void key_finish(lua_State *L, int idx, const char *name, const char *path)
{
  knox_key *k = lua_touserdata(L, idx);
  unsigned char spki[MAX_SPKI_BYTES], *p = spki;
  int len = i2d_PUBKEY(k->pkey, NULL);
  if (len <= 0 || (size_t)len > sizeof spki || i2d_PUBKEY(k->pkey, &p) != len ||
      EVP_Digest(spki, (size_t)len, k->fpr, NULL, EVP_sha256(), NULL) != 1) {
    key_raise(L, name, path, "cannot encode the public key");
  }
  k->bits = EVP_PKEY_get_bits(k->pkey);
  k->sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
  k->sign_ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
  if (k->sha512 == NULL || k->sign_ctx == NULL || EVP_PKEY_sign_init(k->sign_ctx) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(k->sign_ctx, RSA_PKCS1_PADDING) <= 0 ||
      EVP_PKEY_CTX_set_signature_md(k->sign_ctx, k->sha512) <= 0) {
    key_raise(L, name, path, "cannot set up RS512 signing with this key");
  }
  if (!self_test(k)) {
    key_raise(L, name, path,
              "the private key fails a test signature (its numbers are inconsistent)");
  }
  ERR_clear_error(); /* decoders may leave notes of formats they tried */
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, b64_len((size_t)len, 1));
  luaL_pushresultsize(&b, b64_encode(out, spki, (size_t)len, B64_STD, 1));
  lua_setiuservalue(L, idx, 1);
}

/* The knox.Key at index 1, which must be open. */
static knox_key *check_key(lua_State *L)
{
  knox_key *k = luaL_checkudata(L, 1, KEY_MT);
  if (k->pkey == NULL) luaL_argerror(L, 1, "knox.Key is closed");
  return k;
}

/* core.keys.load(path): [-0, +1, e] a knox.Key from a keys.json file or a
 * PEM private key file. Raises knox.Error kind "key" (with .path) for a
 * file that cannot be read or does not hold a usable RSA key pair. */
static int l_keys_load(lua_State *L)
{
  size_t plen;
  const char *path = luaL_checklstring(L, 1, &plen);
  luaL_argcheck(L, strlen(path) == plen, 1, "path contains a NUL byte");
  struct stat st;
  lua_settop(L, 1);
  if (stat(path, &st) != 0) return key_raise_errno(L, path, errno);
  if (!S_ISREG(st.st_mode)) return key_raise(L, path, path, "is not a regular file");
  if (st.st_size > MAX_KEY_FILE_BYTES) {
    return key_raise(L, path, path, "is too large to be a key file");
  }
  size_t cap = (size_t)st.st_size;
  key_new(L);                                           /* 2 */
  unsigned char *mem = scratch_new(L, 2 * cap + 8);     /* 3 */
  char *text = (char *)mem;                              /* cap + 1, NUL */
  unsigned char *der = mem + cap + 4;                    /* cap + 4 */

  /* O_NONBLOCK: should the path have become a FIFO since stat(), open must
   * not wait for a writer. */
  int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  int err = fd < 0 ? errno : 0, notreg = 0;
  size_t n = 0;
  if (fd >= 0) {
    struct stat st2;
    if (fstat(fd, &st2) != 0) {
      err = errno;
    } else if (!S_ISREG(st2.st_mode)) {
      notreg = 1;
    }
    /* Read one byte more than stat() promised, to notice a file that grew. */
    while (err == 0 && !notreg && n < cap + 1) {
      ssize_t r = read(fd, text + n, cap + 1 - n);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) err = errno;
      if (r <= 0) break;
      n += (size_t)r;
    }
    close(fd);
  }
  if (err != 0 || notreg || n > cap) {
    OPENSSL_cleanse(mem, 2 * cap + 8);
    if (notreg) return key_raise(L, path, path, "is not a regular file");
    if (n > cap) return key_raise(L, path, path, "changed while it was being read");
    return key_raise_errno(L, path, err);
  }
  text[n] = '\0';

  reason why;
  EVP_PKEY *pk = parse_key_text(text, n, 1, der, &why);
  OPENSSL_cleanse(mem, 2 * cap + 8);
  if (pk == NULL) return key_raise(L, path, path, why.text);
  ((knox_key *)lua_touserdata(L, 2))->pkey = pk;
  lua_pop(L, 1);
  key_finish(L, 2, path, path);
  return 1;
}

/* core.keys.from_json(text [, name]): [-0, +1, e] a knox.Key from keys.json
 * text. name (default "keys.json text") is what error messages call it.
 * Raises knox.Error kind "key" for text without a usable RSA key pair. */
static int l_keys_from_json(lua_State *L)
{
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  const char *name = luaL_optstring(L, 2, "keys.json text");
  lua_settop(L, 2);
  if (n > MAX_KEY_FILE_BYTES) return key_raise(L, name, NULL, "is too large to be a keys.json");
  key_new(L);                                           /* 3 */
  unsigned char *der = scratch_new(L, n + 4);           /* 4 */
  reason why;
  EVP_PKEY *pk = parse_key_text(text, n, 0, der, &why);
  OPENSSL_cleanse(der, n + 4);
  if (pk == NULL) return key_raise(L, name, NULL, why.text);
  ((knox_key *)lua_touserdata(L, 3))->pkey = pk;
  lua_pop(L, 1);
  key_finish(L, 3, name, NULL);
  return 1;
}

/* core.keys.generate([{ bits = 2048 }]): [-0, +1, e] a fresh RSA key pair.
 * bits: an integer from 2048 to 8192, else "bad argument". Raises
 * knox.Error kind "key" if OpenSSL fails. */
static int l_keys_generate(lua_State *L)
{
  lua_Integer bits = KEY_MIN_BITS;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getfield(L, 1, "bits") != LUA_TNIL) {
      int isint = 0;
      bits = lua_tointegerx(L, -1, &isint);
      luaL_argcheck(L, isint && lua_type(L, -1) == LUA_TNUMBER, 1, "bits: integer expected");
      luaL_argcheck(L, bits >= KEY_MIN_BITS && bits <= GEN_MAX_BITS, 1,
                    "bits: 2048 to 8192 expected");
    }
  }
  lua_settop(L, 1);
  key_new(L); /* 2 */
  EVP_PKEY *pk = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
  int ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1 &&
           EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) > 0 &&
           EVP_PKEY_generate(ctx, &pk) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) {
    EVP_PKEY_free(pk);
    return key_raise(L, "knox.keys.generate", NULL, "RSA key generation failed");
  }
  ((knox_key *)lua_touserdata(L, 2))->pkey = pk;
  key_finish(L, 2, "knox.keys.generate", NULL);
  return 1;
}

/* key:close(), __gc, __close: [-0, +0, -] frees the key; idempotent. */
static int l_key_close(lua_State *L)
{
  knox_key *k = luaL_checkudata(L, 1, KEY_MT);
  EVP_PKEY_CTX_free(k->sign_ctx);
  k->sign_ctx = NULL;
  EVP_MD_free(k->sha512);
  k->sha512 = NULL;
  EVP_PKEY_free(k->pkey); /* OpenSSL clears the private numbers */
  k->pkey = NULL;
  return 0;
}

/* Pushes the fingerprint: the first 8 bytes of the SHA-256 of the SPKI
 * DER, as 16 lower-case hex digits. */
static void push_fingerprint(lua_State *L, const knox_key *k)
{
  static const char hex[] = "0123456789abcdef";
  char out[16];
  for (size_t i = 0; i < sizeof out / 2; i++) {
    out[2 * i] = hex[k->fpr[i] >> 4];
    out[2 * i + 1] = hex[k->fpr[i] & 15];
  }
  lua_pushlstring(L, out, sizeof out);
}

/* __tostring: [-0, +1, m] "knox.Key: RSA-2048 <fingerprint>", or
 * "knox.Key: closed"; never key material. */
static int l_key_tostring(lua_State *L)
{
  knox_key *k = luaL_checkudata(L, 1, KEY_MT);
  if (k->pkey == NULL) {
    lua_pushliteral(L, "knox.Key: closed");
    return 1;
  }
  push_fingerprint(L, k);
  lua_pushfstring(L, "knox.Key: RSA-%d %s", k->bits, lua_tostring(L, -1));
  return 1;
}

/* key:fingerprint(): [-0, +1, v] a short fingerprint of the public key:
 * 16 hex digits of the SHA-256 of its SPKI DER. */
static int l_key_fingerprint(lua_State *L)
{
  push_fingerprint(L, check_key(L));
  return 1;
}

/* key:bits(): [-0, +1, v] the RSA modulus size. */
static int l_key_bits(lua_State *L)
{
  lua_pushinteger(L, check_key(L)->bits);
  return 1;
}

/* key:public_key(): [-0, +1, v] base64 of the SPKI DER public key, as
 * Samsung's generateBase64EncodedStringPublicKey() gives it (the value of
 * base64EncodedStringPublicKey and of the JWTs' publicKey claim). */
static int l_key_public_key(lua_State *L)
{
  check_key(L);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

/* [-0, +1, e] builds the keys.json text {"Public":..,"Private":..} (SPKI
 * and PKCS#8 DER, base64) of the key at index 1 in scratch memory, which it
 * pushes; *json and *len point into it. The caller cleanses all *total
 * bytes of it as soon as it is done. Raises knox.Error kind "key" (as
 * `name`) if OpenSSL fails. */
static void encode_keys_json(lua_State *L, const knox_key *k, const char *name, char **json,
                             size_t *len, size_t *total)
{
  static const char pre[] = "{\"Public\":\"", mid[] = "\",\"Private\":\"", post[] = "\"}";
  lua_getiuservalue(L, 1, 1);
  size_t publen;
  const char *pub = lua_tolstring(L, -1, &publen);
  /* PKCS#8 DER of an RSA key: under 6 bytes per modulus byte for any
   * exponent a usable key has, plus framing. */
  size_t dercap = (size_t)k->bits / 8 * 6 + 512;
  *total = dercap + sizeof pre + publen + sizeof mid + b64_len(dercap, 1) + sizeof post;
  unsigned char *mem = scratch_new(L, *total);
  unsigned char *p = mem;
  size_t left = dercap;
  OSSL_ENCODER_CTX *ectx = OSSL_ENCODER_CTX_new_for_pkey(k->pkey, EVP_PKEY_KEYPAIR, "DER",
                                                         "PrivateKeyInfo", NULL);
  int ok = ectx != NULL && OSSL_ENCODER_CTX_get_num_encoders(ectx) > 0 &&
           OSSL_ENCODER_to_data(ectx, &p, &left) == 1 && p == mem + (dercap - left);
  OSSL_ENCODER_CTX_free(ectx);
  if (!ok) {
    OPENSSL_cleanse(mem, *total);
    key_raise(L, name, NULL, "cannot encode the private key");
  }
  char *q = *json = (char *)mem + dercap;
  memcpy(q, pre, sizeof pre - 1);
  q += sizeof pre - 1;
  memcpy(q, pub, publen);
  q += publen;
  memcpy(q, mid, sizeof mid - 1);
  q += sizeof mid - 1;
  q += b64_encode(q, mem, dercap - left, B64_STD, 1);
  memcpy(q, post, sizeof post - 1);
  q += sizeof post - 1;
  *len = (size_t)(q - *json);
  lua_remove(L, -2); /* the public key text; the scratch stays */
}

/* key:to_json(): [-0, +1, e] keys.json text {"Public":..,"Private":..}:
 * SPKI and PKCS#8 DER, base64. The result holds the private key: handle
 * it as the secret it is (key:save writes it without it ever becoming a
 * Lua string). Raises knox.Error kind "key" if OpenSSL fails. */
static int l_key_to_json(lua_State *L)
{
  knox_key *k = check_key(L);
  lua_settop(L, 1);
  char *json;
  size_t len, total;
  encode_keys_json(L, k, "key:to_json", &json, &len, &total); /* scratch at 2 */
  unsigned char *mem = lua_touserdata(L, 2);
  lua_pushlstring(L, json, len);
  OPENSSL_cleanse(mem, total);
  return 1;
}

/* Raises the knox.Error of a key file that key:save could not write:
 * kind "key", path, cause = { name = "EEXIST"..., errno, text }. The
 * message names the path and the step, never any key material. */
static int keyfile_raise(lua_State *L, const char *path, int err, int step)
{
  char text[128];
  if (strerror_r(err, text, sizeof text) != 0) snprintf(text, sizeof text, "error %d", err);
  if (step == KEYFILE_CREATE && err == EEXIST) {
    lua_pushfstring(L, knox_keyfile_is_symlink(path)
                         ? "%s: is a symbolic link; a key file is never written through one"
                         : "%s: exists; a key file is never overwritten", path);
  } else {
    static const char *const steps[] = {"create", "write", "sync", "close"};
    lua_pushfstring(L, "%s: cannot %s the key file: %s", path,
                    steps[step >= KEYFILE_CREATE && step <= KEYFILE_CLOSE ? step - 1 : 0], text);
  }
  ERR_clear_error();
  knox_error_new(L, "key", lua_tostring(L, -1));
  knox_error_setstr(L, "path", path);
  lua_createtable(L, 0, 3);
  char other[32];
  const char *name = knox_keyfile_errno_name(err);
  if (name == NULL) {
    snprintf(other, sizeof other, "ERRNO_%d", err);
    name = other;
  }
  knox_error_setstr(L, "name", name);
  knox_error_setint(L, "errno", err);
  knox_error_setstr(L, "text", text);
  lua_setfield(L, -2, "cause");
  return knox_error_raise(L);
}

/* key:save(path): [-0, +0, e] writes the keys.json text of key:to_json to
 * a new file at path, created owner-only (mode 0600, less if the umask
 * says so) and synced; never over an existing file (or directory) and
 * never through a symbolic link, even a dangling one (keyfile.c). Raises
 * "bad argument" for a path that is not a string or holds NUL; knox.Error
 * kind "key" with .path and .cause {name ("EEXIST", "ENOENT", ...), errno,
 * text} when the file cannot be created, written, synced or closed (a
 * partly written file is removed). No key material is in the error. */
static int l_key_save(lua_State *L)
{
  knox_key *k = check_key(L);
  size_t plen;
  /* a string only: a number would name a file "5" by accident */
  if (lua_type(L, 2) != LUA_TSTRING) luaL_typeerror(L, 2, "string");
  const char *path = lua_tolstring(L, 2, &plen);
  luaL_argcheck(L, plen > 0 && strlen(path) == plen, 2, "a file name without NUL expected");
  lua_settop(L, 2); /* the key at 1 (encode_keys_json reads it there), the path at 2 */
  char *json;
  size_t len, total;
  encode_keys_json(L, k, "key:save", &json, &len, &total); /* scratch at 3 */
  unsigned char *mem = lua_touserdata(L, 3);
  int step = 0;
  int err = knox_keyfile_write(path, json, len, &step);
  OPENSSL_cleanse(mem, total);
  if (err != 0) return keyfile_raise(L, path, err, step);
  return 0;
}

/* Pushes the compact JWS (header RS512/JWT) of the JSON text at index
 * payload. Raises knox.Error kind "key" if signing fails. */
static void push_jws(lua_State *L, const knox_key *k, int payload)
{
  size_t plen;
  const char *pl = lua_tolstring(L, payload, &plen);
  size_t slen = (size_t)EVP_PKEY_get_size(k->pkey);
  size_t cap = b64_len(sizeof JWT_HEADER - 1, 0) + b64_len(plen, 0) + b64_len(slen, 0) + 2;
  unsigned char sig[MAX_SIG_BYTES];
  size_t siglen = sizeof sig;
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, cap);
  size_t n = b64_encode(out, (const unsigned char *)JWT_HEADER, sizeof JWT_HEADER - 1,
                        B64_URL, 0);
  out[n++] = '.';
  n += b64_encode(out + n, (const unsigned char *)pl, plen, B64_URL, 0);
  if (!rs512_sign(k, (const unsigned char *)out, n, sig, &siglen) || siglen > slen) {
    ERR_clear_error();
    knox_error_throw(L, "key", "RS512 signing failed");
  }
  out[n++] = '.';
  n += b64_encode(out + n, sig, siglen, B64_URL, 0);
  luaL_pushresultsize(&b, n);
}

/* Appends s as a JSON string, escaping what JSON requires (as
 * JSON.stringify does); s is valid UTF-8. */
static void add_json_string(luaL_Buffer *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  size_t run = 0;
  luaL_addchar(b, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    luaL_addlstring(b, s + run, i - run);
    run = i + 1;
    luaL_addchar(b, '\\');
    switch (c) {
    case '"': luaL_addchar(b, '"'); break;
    case '\\': luaL_addchar(b, '\\'); break;
    case '\b': luaL_addchar(b, 'b'); break;
    case '\f': luaL_addchar(b, 'f'); break;
    case '\n': luaL_addchar(b, 'n'); break;
    case '\r': luaL_addchar(b, 'r'); break;
    case '\t': luaL_addchar(b, 't'); break;
    default:
      luaL_addstring(b, "u00");
      luaL_addchar(b, hex[c >> 4]);
      luaL_addchar(b, hex[c & 15]);
    }
  }
  luaL_addlstring(b, s + run, n - run);
  luaL_addchar(b, '"');
}

/* opts[field] as whole seconds: a finite number > 0 and <= max (floats
 * rounded with round()), def when absent; else "bad argument" at arg. */
static lua_Integer opt_seconds(lua_State *L, int opts, int arg, const char *field,
                               lua_Number max, lua_Number (*round)(lua_Number),
                               lua_Integer def)
{
  lua_Integer r = def;
  if (opts == 0) return r;
  int t = lua_getfield(L, opts, field);
  if (t != LUA_TNIL) {
    lua_Number d = lua_tonumber(L, -1);
    if (t != LUA_TNUMBER || !isfinite(d) || d <= 0 || d > max) {
      luaL_argerror(L, arg, lua_pushfstring(L, "opts.%s: finite number > 0 expected", field));
    }
    r = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : (lua_Integer)round(d);
  }
  lua_pop(L, 1);
  return r;
}

static lua_Number round_down(lua_Number d) { return floor(d); }
static lua_Number round_up(lua_Number d) { return ceil(d); }

/* The two fixed-shape tokens, claims in Samsung's order: <claim>,
 * publicKey, iat, exp, aud, jti. Payload built here, not through the JSON
 * encoder, to keep that order. */
static int sign_fixed(lua_State *L, const char *claim)
{
  knox_key *k = check_key(L);
  size_t vlen;
  const char *v = luaL_checklstring(L, 2, &vlen);
  luaL_argcheck(L, vlen > 0, 2, "non-empty string expected");
  luaL_argcheck(L, utf8_valid((const unsigned char *)v, vlen), 2, "valid UTF-8 expected");
  int opts = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    opts = 3;
  }
  lua_Integer iat = opt_seconds(L, opts, 3, "now", MAX_NOW, round_down, (lua_Integer)time(NULL));
  lua_Integer life = opt_seconds(L, opts, 3, "lifetime", MAX_LIFETIME, round_up, JWT_LIFETIME);
  char jti[JTI_LEN + 1];
  if (!make_jti(jti)) {
    ERR_clear_error();
    return knox_error_throw(L, "key", "the random generator failed; no jti");
  }
  lua_settop(L, 3);
  lua_getiuservalue(L, 1, 1); /* 4: publicKey */
  size_t pklen;
  const char *pk = lua_tolstring(L, 4, &pklen);
  char nums[96];
  snprintf(nums, sizeof nums, "\",\"iat\":" LUA_INTEGER_FMT ",\"exp\":" LUA_INTEGER_FMT ",\"aud\":\"",
           (LUAI_UACINT)iat, (LUAI_UACINT)(iat + life));
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "{\"");
  luaL_addstring(&b, claim);
  luaL_addstring(&b, "\":");
  add_json_string(&b, v, vlen);
  luaL_addstring(&b, ",\"publicKey\":\"");
  luaL_addlstring(&b, pk, pklen);
  luaL_addstring(&b, nums);
  luaL_addstring(&b, JWT_AUDIENCE "\",\"jti\":\"");
  luaL_addlstring(&b, jti, JTI_LEN);
  luaL_addstring(&b, "\"}");
  luaL_pushresult(&b); /* 5 */
  push_jws(L, k, 5);
  return 1;
}

/* key:sign_client_identifier(client_id [, opts]): [-0, +1, e] the signed
 * Client Identifier JWT (clientIdentifierJwt). opts.now: the time to use
 * as iat (seconds since the epoch, default the system clock); opts.lifetime:
 * exp - iat in seconds (default 1800). Bad arguments raise "bad argument";
 * a signing failure raises knox.Error kind "key". */
static int l_key_sign_client_identifier(lua_State *L)
{
  return sign_fixed(L, "clientIdentifier");
}

/* key:sign_access_token(token [, opts]): [-0, +1, e] the signed access
 * token JWT sent as x-knox-apitoken; opts as for sign_client_identifier. */
static int l_key_sign_access_token(lua_State *L)
{
  return sign_fixed(L, "accessToken");
}

/* key:sign(claims): [-0, +1, e] a compact RS512 JWS of the claims table,
 * encoded by knox_json_encode, as is (no claim added). Raises knox.Error
 * kind "usage" for claims JSON cannot hold or that is not a JSON object. */
static int l_key_sign(lua_State *L)
{
  knox_key *k = check_key(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  knox_json_encode(L, 2); /* 3 */
  if (lua_tostring(L, 3)[0] != '{') {
    return knox_error_throw(L, "usage", "key:sign: the claims must encode to a JSON object");
  }
  push_jws(L, k, 3);
  return 1;
}

/* Pushes an internal encryption key parsed from the string at idx, or
 * raises knox.Error kind "key" naming it what. */
static EVP_PKEY *pubbox_from_text(lua_State *L, int idx, const char *what)
{
  size_t n;
  const char *text = lua_tolstring(L, idx, &n);
  pubbox *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->pkey = NULL;
  luaL_setmetatable(L, PUBBOX_MT);
  unsigned char *scratch = scratch_new(L, n + 4);
  reason why;
  box->pkey = text_public(text, n, scratch, what, &why);
  lua_pop(L, 1);
  if (box->pkey == NULL) key_raise(L, "knox.encrypt", NULL, why.text);
  ERR_clear_error();
  return box->pkey;
}

/* core.encrypt(text [, opts]): [-0, +1, e] Samsung's KME field encryption
 * (KnoxEncryptionUtility.encrypt): RSA PKCS#1 v1.5 under Samsung's key,
 * standard base64; random, so each call differs. opts.public_key (base64
 * DER or PEM text, or a knox.Key) replaces Samsung's key. A text longer
 * than the key holds (245 bytes for RSA-2048) raises knox.Error kind
 * "usage"; an unusable opts.public_key, kind "key". */
static int l_encrypt(lua_State *L)
{
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  EVP_PKEY *pk;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "public_key");
  } else {
    lua_pushnil(L);
  }
  lua_replace(L, 2); /* 2: opts.public_key or nil */
  lua_settop(L, 2);
  knox_key *k = luaL_testudata(L, 2, KEY_MT);
  if (k != NULL) {
    luaL_argcheck(L, k->pkey != NULL, 2, "opts.public_key: knox.Key is closed");
    pk = k->pkey;
  } else if (lua_type(L, 2) == LUA_TSTRING) {
    pk = pubbox_from_text(L, 2, "opts.public_key");
  } else if (lua_isnil(L, 2)) {
    if (lua_getiuservalue(L, lua_upvalueindex(1), 1) == LUA_TUSERDATA) {
      pk = ((pubbox *)lua_touserdata(L, -1))->pkey;
    } else {
      lua_pushstring(L, KME_PUBLIC_KEY);
      pk = pubbox_from_text(L, -1, "Samsung's KME key");
      lua_setiuservalue(L, lua_upvalueindex(1), 1);
    }
  } else {
    return luaL_argerror(L, 2, "opts.public_key: string or knox.Key expected");
  }

  size_t room = (size_t)EVP_PKEY_get_size(pk) - 11;
  if (n > room) {
    return knox_error_throw(L, "usage",
                            "knox.encrypt: the text is %d bytes; RSA-%d with PKCS#1 v1.5 "
                            "padding holds at most %d",
                            (int)(n > INT_MAX ? INT_MAX : n), EVP_PKEY_get_bits(pk), (int)room);
  }
  unsigned char out[MAX_SIG_BYTES];
  size_t outlen = sizeof out;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
  int ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1 &&
           EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
           EVP_PKEY_encrypt(ctx, out, &outlen, (const unsigned char *)text, n) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) {
    ERR_clear_error();
    return knox_error_throw(L, "key", "knox.encrypt: RSA encryption failed");
  }
  luaL_Buffer b;
  char *o = luaL_buffinitsize(L, &b, b64_len(outlen, 1));
  luaL_pushresultsize(&b, b64_encode(o, out, outlen, B64_STD, 1));
  return 1;
}

/* knox_key_open: [-0, +0, m] adds core.keys {load, from_json, generate,
 * kme_public_key} and core.encrypt to the module table at the top, and
 * registers the knox.Key metatable. */
int knox_key_open(lua_State *L)
{
  static const luaL_Reg methods[] = {
    {"public_key", l_key_public_key},
    {"sign_client_identifier", l_key_sign_client_identifier},
    {"sign_access_token", l_key_sign_access_token},
    {"sign", l_key_sign},
    {"fingerprint", l_key_fingerprint},
    {"bits", l_key_bits},
    {"to_json", l_key_to_json},
    {"save", l_key_save},
    {"close", l_key_close},
    {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
    {"__gc", l_key_close},
    {"__close", l_key_close},
    {"__tostring", l_key_tostring},
    {NULL, NULL},
  };
  static const luaL_Reg keys[] = {
    {"load", l_keys_load},
    {"from_json", l_keys_from_json},
    {"generate", l_keys_generate},
    {NULL, NULL},
  };

  if (luaL_newmetatable(L, KEY_MT)) {
    luaL_setfuncs(L, meta, 0);
    lua_createtable(L, 0, sizeof methods / sizeof methods[0] - 1);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, SCRATCH_MT)) {
    lua_pushcfunction(L, l_scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, PUBBOX_MT)) {
    lua_pushcfunction(L, l_pubbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);

  lua_createtable(L, 0, 4);
  luaL_setfuncs(L, keys, 0);
  lua_pushstring(L, KME_PUBLIC_KEY);
  lua_setfield(L, -2, "kme_public_key");
  lua_setfield(L, -2, "keys");

  /* encrypt's upvalue caches Samsung's key, parsed on first use, in its
   * user value. */
  lua_newuserdatauv(L, 0, 1);
  lua_pushcclosure(L, l_encrypt, 1);
  lua_setfield(L, -2, "encrypt");
  return 0;
}
