--- knox.client.clock: the client's clocks and the skew measured from the
-- server's Date header. Part of knox.client (mixed into the Client class).
local headers_ = require "knox.headers"

local M = {}

-- Differences within this many seconds are noise (Date has 1 s resolution,
-- requests take time): the local clock is trusted.
local SKEW_THRESHOLD = 60

-- A Date no real server sends (before 2000) is ignored rather than believed.
local PLAUSIBLE_DATE = 946684800

--- client:now(): the client's clock. Token lifetimes are durations, so
-- they are measured on this clock whatever its offset from the server's.
function M:now()
  return self.clock()
end

--- client:server_now(): the time as the server sees it: the client's clock
-- plus the skew measured from the server's Date header, when that is over
-- 60 s. Absolute timestamps the server checks (JWT iat/exp) use this.
function M:server_now()
  return self.clock() + self.skew
end

function M:_observe_date(headers)
  local date = headers and headers.date
  if date == nil then return end
  -- Date changes once a second: parse each distinct value once (the skew
  -- is still measured every time: the local clock may have jumped)
  local server
  if date == self._date then
    server = self._date_value
  else
    server = headers_.http_date(date)
    if not server or server < PLAUSIBLE_DATE then return end
    self._date, self._date_value = date, server
  end
  local diff = server - self.clock()
  local skew = (diff > SKEW_THRESHOLD or diff < -SKEW_THRESHOLD) and diff or 0
  local old = self.skew
  if skew == old then return end -- the common case: no skew before or now
  if (skew == 0) ~= (old == 0) or math.abs(skew - old) > SKEW_THRESHOLD then
    if self.debug and skew ~= 0 then
      self.debug { type = "info", event = "clock_skew", skew = diff,
        text = ("server clock differs from local clock by %.0f s; signing with server time"):format(diff) }
    end
  end
  self.skew = skew
end

return M
