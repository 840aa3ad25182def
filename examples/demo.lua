--- examples/demo.lua — a tour of knox against the Knox simulator (`make demo`).
--
-- Starts `knox sim` on loopback, then does what an MSP's automation does:
-- walks every KME device page by page, locks a Knox Guard device, handles a
-- documented Knox error by name, rides out a rate limit, manages MSP
-- customers over OAuth and fans out a batch. Nothing leaves this machine.
local knox = require "knox"

local function say(fmt, ...)
  io.write((fmt):format(...), "\n")
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Start the simulator: stdout to a file we read, stdin a pipe we hold, so
-- that closing it (or this script dying) stops the simulator.
local here = (arg and arg[0] or ""):match "^(.*)/examples/[^/]*$" or "."
local out = os.tmpname()
local sim = assert(io.popen(("exec lua5.4 %s/bin/knox sim --port 0 --devices 250 --stdin-eof --max-lifetime 300 > %s")
  :format(quote(here), quote(out)), "w"))

local lines
for _ = 1, 200 do
  local f = io.open(out)
  local text = f and f:read "a" or ""
  if f then f:close() end
  if text:find "knox%-sim customer id" then
    lines = text
    break
  end
  require("knox.core").sleep(0.05)
end
os.remove(out)
assert(lines, "the simulator did not start")
local url = lines:match "knox%-sim listening on (%S+)"
local keys_file, client_id = lines:match "knox%-sim keys: (%S+) %(client id (%S+)%)"
local oauth_id, oauth_secret = lines:match "knox%-sim oauth client: (%S+) secret (%S+)"
say("Knox simulator at %s\n", url)

local ok, err = pcall(function()
  -- One client, both credentials: each call goes to the scheme its service
  -- accepts (Knox Guard: keys only; MSP: OAuth only; KME: either).
  local client <close> = knox.client {
    base_url = url,
    auth = {
      knox.auth.keys { file = keys_file, client_id = client_id },
      knox.auth.oauth2 { client_id = oauth_id, client_secret = oauth_secret, scope = "msp kme" },
    },
  }
  client:on("token", function(ev)
    if ev.action == "issued" then say("  [token] %s token issued, lives %d s", ev.scheme, ev.lifetime) end
  end)
  client:on("retry", function(ev)
    say("  [retry] attempt %d failed (%s); waiting %.1f s", ev.attempt, ev.name or ev.status, ev.delay)
  end)

  say("1. Every KME device, one page of 100 at a time:")
  local count, models = 0, {}
  for device in client.kme:each_device { pageSize = 100 } do
    count = count + 1
    local m = device.model or "?"
    models[m] = (models[m] or 0) + 1
  end
  local top = {}
  for m, n in pairs(models) do top[#top + 1] = ("%s x%d"):format(m, n) end
  table.sort(top)
  say("   %d devices (%s)\n", count, table.concat(top, ", "))

  say("2. Knox Guard: list devices and lock the first one:")
  local page = client.kg:list_devices { pageNum = 0, pageSize = 5 }
  local list = page.deviceList or {}
  local first = list[1]
  if first then
    local res = client.kg:lock { deviceUid = first.deviceUid, message = "Payment overdue: call 555-0100" }
    say("   locked %s: %s\n", first.deviceUid, res.result or knox.json.encode(res))
  end

  say("3. A documented Knox error, caught by name:")
  local locked, e = knox.try(client.kg.lock, client.kg, { deviceUid = "000000000000000" })
  if not locked and e:is "DEVICE_NOT_FOUND" then
    say("   %s", tostring(e))
    say("   kind=%s code=%s retryable=%s\n", e.kind, tostring(e.code), tostring(e.retryable))
  else
    say("   unexpected: %s\n", tostring(e or locked))
  end

  say("4. A rate limit (HTTP 429, Retry-After: 1), ridden out:")
  client:request("POST", "/__sim/faults", { auth = false, body = {
    match = { method = "GET", path = "/kcs/v1/kme/devices/list" }, status = 429, retry_after = 1, times = 1 } })
  local _, res = client.kme:list_devices { pageSize = 1 }
  say("   succeeded after %d attempts in %.1f s\n", res.attempts, res.elapsed)

  say("5. MSP Portal over OAuth: managed customers:")
  local customers = client.msp:list_customers()
  for _, c in ipairs(customers.customers or {}) do
    say("   %s  %s", tostring(c.customerId), tostring(c.companyName or c.email or ""))
  end
  say("")

  say("6. A batch over parallel connections: every KME profile, plus two that do not exist:")
  local reqs = {}
  for profile in client.kme:each_profile { pageSize = 100 } do
    reqs[#reqs + 1] = { "GET", "/kcs/v1/kme/profiles/{id}/get", { params = { id = profile.profileId } } }
  end
  reqs[#reqs + 1] = { "GET", "/kcs/v1/kme/profiles/{id}/get", { params = { id = "no-such-profile" } } }
  reqs[#reqs + 1] = { "GET", "/kcs/v1/kme/profiles/{id}/get", { params = { id = "gone" } } }
  local results = client:batch(reqs, { concurrency = 8 })
  for i, r in ipairs(results) do
    if knox.is_error(r) then
      say("   #%d  %s", i, r.name)
    else
      local p = r.body.profile or r.body
      say("   #%d  %s  %s", i, tostring(p.profileId), tostring(p.profileName or p.name or ""))
    end
  end
  say("")

  say("7. KME field encryption for assignProfile (Samsung's public key):")
  local enc = knox.encrypt("jane.doe@example.com")
  say("   userName -> %s... (%d base64 characters)\n", enc:sub(1, 24), #enc)

  say("8. What knox.errors knows about a code:")
  local info = knox.errors.lookup("kg", 4000316)
  say("   kg 4000316 = %s: %s", info.name, info.description)
end)

sim:close()
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
say("\nDone: the simulator has stopped.")
