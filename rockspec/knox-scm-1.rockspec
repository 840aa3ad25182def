rockspec_format = "3.0"
package = "knox"
version = "scm-1"

source = {
  url = "git+https://example.invalid/knox.git",
}

description = {
  summary = "Samsung Knox cloud services client: KME, Knox Guard, MSP Portal, KDP, Knox Configure",
  detailed = [[
A thin C core (libcurl transport, OpenSSL signing, cJSON JSON, error
normalization) under an idiomatic Lua 5.4 API. Errors are raised as
knox.Error objects carrying the Knox code, name and HTTP status; tokens are
obtained and renewed for you; retries are safe by construction; a Knox
simulator is included for offline tests.
]],
  license = "MIT",
}

dependencies = {
  "lua >= 5.4",
}

external_dependencies = {
  CURL = { header = "curl/curl.h" },
  OPENSSL = { header = "openssl/evp.h" },
  CJSON = { header = "cjson/cJSON.h" },
}

build = {
  type = "builtin",
  modules = {
    ["knox.core"] = {
      sources = {
        "csrc/core.c", "csrc/kerror.c", "csrc/clock.c", "csrc/json.c",
        "csrc/key.c", "csrc/http.c", "csrc/errors.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "cjson", "ssl", "crypto" },
      incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)", "$(CJSON_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(CJSON_LIBDIR)" },
    },
    ["knox"] = "lua/knox.lua",
    ["knox.errors"] = "lua/knox/errors.lua",
    ["knox.auth"] = "lua/knox/auth.lua",
    ["knox.retry"] = "lua/knox/retry.lua",
    ["knox.client"] = "lua/knox/client.lua",
    ["knox.pager"] = "lua/knox/pager.lua",
    ["knox.service"] = "lua/knox/service.lua",
    ["knox.services.kme"] = "lua/knox/services/kme.lua",
    ["knox.services.kg"] = "lua/knox/services/kg.lua",
    ["knox.services.msp"] = "lua/knox/services/msp.lua",
    ["knox.services.kdp"] = "lua/knox/services/kdp.lua",
    ["knox.services.kc"] = "lua/knox/services/kc.lua",
    ["knox.cli"] = "lua/knox/cli.lua",
  },
  install = {
    bin = { knox = "bin/knox" },
  },
}

test_dependencies = {
  "busted",
}

test = {
  type = "busted",
}
