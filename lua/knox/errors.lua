--- knox.errors: the knox.Error class shared with the C core, and the Lua
-- face of error normalization.
--
-- The metatable is created by knox.core (so C can raise the same objects);
-- normalization of response bodies and the code catalog are C
-- (csrc/errors.c, csrc/catalog.c); this module adds the policy-free helpers
-- the client and users call.
--
-- Fields of a knox.Error: kind ("api", "auth", "transport", "decode",
-- "usage", "key", "partial", "timeout", "closed"), status, code (integer
-- such as 4040300 or string such as "AUT_1001" / "invalid_grant"), name,
-- message, description (the catalog's), service, error_id, transaction_id,
-- request_id, retryable, retry_after (seconds), auth_action ("renew"),
-- method, url (no userinfo, secret query values redacted), body (raw,
-- at most 4 KiB, token-like values redacted), cause (transport).
local core = require "knox.core"
local cerr = core.errors

local M = {
  Error = core.Error,
  is_error = core.is_error,

  --- from_response{status=, headers=, body=, service=, method=, url=}:
  -- the knox.Error for a raw response. service defaults to the one the URL
  -- path belongs to. Never raises for a body.
  from_response = cerr.from_response,

  --- check(response): nil for a success, else from_response(response). A
  -- success is a 2xx whose body is not a top-level {"result": "FAIL"}
  -- (a Knox Guard failure can come back with 200). Per-item failures of a
  -- bulk answer do not make it a failure: see items() and partial().
  check = cerr.check,

  --- items(body, service): the per-item failures of a 2xx bulk answer, a
  -- list of { id = <requestedId, imei, device id...>, error = knox.Error }.
  -- body is JSON text or an already-decoded table. The errors have kind
  -- "api" (or "auth" for credential codes) and no status: the HTTP status
  -- was a success; retryable follows the code's own class. Answers that
  -- only count failures (Knox Configure failedCount, a Knox Guard summary)
  -- give one item with id nil and count = n.
  items = cerr.items,

  --- lookup(service, code): { service=, code=, name=, description=,
  -- status=, kind= } or nil. Services: "kme", "kg", "msp", "kdp", "kc",
  -- "kai", "auth" (Knox Cloud Authentication), "samsung_account" (AUT_/LIC_
  -- codes), "oauth2". A kcs service that does not know a code answers with
  -- the Knox Cloud Authentication entry (its token check fronts every
  -- service); the entry's own service is in the result. With service nil,
  -- answers only when every service that knows the code agrees on its name.
  -- A code with two names in one service (KME 4001701) answers with the
  -- first and lists the others in `alternatives`.
  lookup = cerr.lookup,

  --- clean_url(url): url without userinfo or fragment, secret-looking
  -- query values redacted (what errors carry in `url`).
  clean_url = cerr.clean_url,

  --- service_of(url): the service a URL's path belongs to, or nil.
  service_of = cerr.service_of,

  --- The service names lookup() and catalog() know.
  services = { "kme", "kg", "msp", "kdp", "kc", "kai", "auth", "samsung_account", "oauth2" },
}

--- Builds a knox.Error from a table of fields (kind is required).
function M.new(fields)
  return core.error(fields)
end

--- catalog([service]): a new list of every documented code (of one
-- service), each as lookup() gives it.
function M.catalog(service)
  return cerr.catalog(service)
end

--- partial(response): nil when a 2xx bulk answer has no per-item failures,
-- else a knox.Error of kind "partial" whose `items` are items(body,
-- service). Not raised by the client by default (a bulk call that partly
-- succeeded is a result); callers that want all-or-nothing can raise it.
function M.partial(response)
  if type(response) ~= "table" then
    error("bad argument #1 to 'partial' (table expected, got " .. type(response) .. ")", 2)
  end
  local service = response.service
  if service == nil and type(response.url) == "string" then
    service = cerr.service_of(response.url)
  end
  local list = cerr.items(response.body, service)
  if #list == 0 then
    return nil
  end
  local failed = 0
  for _, item in ipairs(list) do
    failed = failed + (item.count or 1)
  end
  local first = list[1]
  local what = first.error.name or first.error.message
  local message
  if first.id ~= nil then
    message = string.format("%d item(s) failed; first %s: %s", failed, first.id, what)
  else
    message = string.format("%d item(s) failed: %s", failed, what)
  end
  return core.error {
    kind = "partial",
    status = math.type(response.status) == "integer" and response.status or nil,
    service = service,
    method = type(response.method) == "string" and response.method or nil,
    url = type(response.url) == "string" and cerr.clean_url(response.url) or nil,
    message = message,
    items = list,
    retryable = false,
  }
end

return M
