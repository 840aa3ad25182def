--- knox.text: the one text-safety module, Lua side. The secret-name table
-- and the redactor are C (csrc/text.c, shared with the transport's debug
-- events and the error scanner); this module adds what Lua outputs need.
-- Every output that may carry a secret goes through here: error fields,
-- hook and debug data, the command's verbose output.
--
--   redact(s [, max])      secrets in free text (bodies, form and query text,
--                          JSON) replaced by "[redacted]", cut to max bytes
--   line(s [, max])        one redacted line of valid UTF-8, "..." when cut
--   one_line(s [, max])    one line of valid UTF-8 (ids), not redacted
--   clean_url(url)         no userinfo, no fragment, secret query values redacted
--   is_secret(name)        whether a header/field name holds a secret
--   secret_names()         the table itself, { name =, match = } each
--   redact_headers(h [, extra])  a copy of a header table, secret values
--                          redacted; extra: more names (a provider's own
--                          credential header) to treat as secret
local ct = require("knox.core").text

local M = {
  redact = ct.redact, line = ct.line, one_line = ct.one_line, clean_url = ct.clean_url,
  is_secret = ct.is_secret, secret_names = ct.secret_names,
}

local REDACTED = "[redacted]"
M.REDACTED = REDACTED

local is_secret = ct.is_secret

function M.redact_headers(h, extra)
  local out = {}
  for k, v in pairs(h or {}) do
    local secret = type(k) == "string" and (is_secret(k) or (extra ~= nil and extra[k:lower()]))
    out[k] = secret and REDACTED or v
  end
  return out
end

return M
