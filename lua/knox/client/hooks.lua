--- knox.client.hooks: client:on and what each hook is shown. Part of
-- knox.client (its methods are mixed into the Client class).
--
-- Every hook's data is redacted before a hook sees it: headers go through
-- the one text-safety module (knox.text), and the header the request's
-- auth provider set is redacted by name, whatever it is called.
local text = require "knox.text"

local M = {}

local EVENTS = { request = true, response = true, retry = true, token = true }

--- client:on(event, fn): calls fn(data) on "request", "response", "retry"
-- or "token". The data is redacted: no token, key or secret is in it.
function M:on(event, fn)
  if not EVENTS[event] then
    error("bad argument #1 to 'on' (request, response, retry or token expected, got " .. tostring(event) .. ")", 2)
  end
  if type(fn) ~= "function" then error("bad argument #2 to 'on' (function expected)", 2) end
  local list = self.hooks[event] or {}
  list[#list + 1] = fn
  self.hooks[event] = list
  return self
end

function M:_emit(event, data)
  local list = self.hooks[event]
  if not list then return end
  for _, fn in ipairs(list) do fn(data) end
end

-- The names to redact in a request's headers: every provider's
-- credential header, and the one this request's provider set.
local function secret_headers(self, req)
  if not req.auth_header or self._auth_headers[req.auth_header] then return self._auth_headers end
  local t = { [req.auth_header] = true }
  for k in pairs(self._auth_headers) do t[k] = true end
  return t
end

-- The request hook's view of a request.
function M:_emit_request(req, url, headers, attempt)
  self:_emit("request", { method = req.method, url = text.clean_url(url), service = req.service,
    headers = text.redact_headers(headers, secret_headers(self, req)),
    body_size = req.body and #req.body or 0, attempt = attempt })
end

-- Scrubs a debug event in place: the providers' credential headers by
-- name, and every value a provider holds wherever it appears in text.
local function scrub_event(self, ev, depth)
  for k, v in pairs(ev) do
    if type(v) == "string" then
      ev[k] = self._scrub(v)
    elseif type(v) == "table" and depth < 3 then
      if k == "headers" then
        for hk in pairs(v) do
          if type(hk) == "string" and self._auth_headers[hk:lower()] then v[hk] = "[redacted]" end
        end
      end
      scrub_event(self, v, depth + 1)
    end
  end
end

--- The debug hook the session calls: the user's, after the scrub.
function M:_safe_debug(user)
  return function(ev)
    if type(ev) == "table" then scrub_event(self, ev, 0) end
    return user(ev)
  end
end

-- The response hook's view of a response.
function M:_emit_response(req, url, status, headers, body, attempt, elapsed)
  self:_emit("response", { method = req.method, url = text.clean_url(url), service = req.service,
    status = status, headers = text.redact_headers(headers), body_size = #body, attempt = attempt,
    elapsed = elapsed })
end

return M
