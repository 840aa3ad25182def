-- The knox command's configuration: profiles and precedence, the token
-- cache shared between runs (and the provider API under it), knox token,
-- knox auth status and knox doctor. Real processes, the real simulator.
local sim_support = require "support.sim"
local cjson = require "cjson"

local quote = sim_support.quote
local tmp = require("support.cli").tmpdir()
local CONFIG = tmp .. "/config"
local CACHE = tmp .. "/cache"
local run = require("support.cli").runner { home = tmp, config = CONFIG, cache = CACHE }

local function stat(path)
  local p = io.popen("stat -c '%a %F' " .. quote(path) .. " 2>/dev/null")
  local s = p:read "l"
  p:close()
  return s
end

local function token_requests(sim, since)
  local n = 0
  for _, r in ipairs(sim:requests { since = since or 0 }) do
    if r.path:find("/ams/v1/users/accesstoken", 1, true) or r.path:find("/oauth2/token", 1, true) then n = n + 1 end
  end
  return n
end

local function last_request(sim)
  local last = 0
  for _, r in ipairs(sim:requests()) do last = math.max(last, r.id) end
  return last
end

describe("knox configuration", function()
  local sim, keys, secret_file

  setup(function()
    sim = sim_support.start { devices = 6 }
    -- an owner-only copy of the simulator's keys.json
    keys = tmp .. "/keys.json"
    sim_support.write_file(keys, sim_support.read_file(sim.keys_file))
    os.execute("chmod 600 " .. quote(keys))
    secret_file = tmp .. "/oauth.secret"
    sim_support.write_file(secret_file, sim.oauth.client_secret .. "\n")
    os.execute("chmod 600 " .. quote(secret_file))
  end)
  teardown(function()
    if sim then sim:stop() end
    os.execute("rm -rf " .. quote(tmp))
  end)

  local function write_config(text)
    sim_support.write_file(CONFIG, text)
  end

  local function profile(name, extra)
    return ("[profile %s]\nbase_url = %s\nkeys_file = %s\nclient_id = %s\noauth_client_id = %s\n"
      .. "oauth_client_secret_file = %s\noauth_scope = %s\n%s\n"):format(name, sim.url, keys, sim.client_id,
      sim.oauth.client_id, secret_file, sim.oauth.scope, extra or "")
  end

  before_each(function()
    os.execute("rm -rf " .. quote(CACHE))
    os.remove(CONFIG)
  end)

  describe("profiles", function()
    it("runs from a profile with no environment at all", function()
      write_config("# knox profiles\n[default]\nregion = us\n\n" .. profile("sim"))
      local code, out, err = run("--profile sim kme devices list -o json")
      assert.are.equal(0, code, err)
      assert.are.equal(6, #cjson.decode(out))
      code, out, err = run("msp customers list -o json", { KNOX_PROFILE = "sim" })
      assert.are.equal(0, code, err)
      assert.is_true(#cjson.decode(out) >= 1)
    end)

    it("takes flags over the environment over the profile", function()
      local dead = "http://127.0.0.1:9"
      write_config(profile("sim") .. profile("dead"):gsub(sim.url:gsub("%p", "%%%0"), dead))
      -- profile dead, environment good: the environment wins
      local code, _, err = run("kme devices list --profile dead --no-cache", { KNOX_BASE_URL = sim.url })
      assert.are.equal(0, code, err)
      -- environment dead, flag good: the flag wins
      code, _, err = run("kme devices list --no-cache --base-url " .. sim.url, { KNOX_BASE_URL = dead,
        KNOX_PROFILE = "dead" })
      assert.are.equal(0, code, err)
      -- only the profile says: it is used
      code = run("kme devices list --profile dead --no-cache")
      assert.are.equal(3, code)
      -- --profile beats KNOX_PROFILE
      code = run("kme devices list --profile sim --no-cache", { KNOX_PROFILE = "dead" })
      assert.are.equal(0, code)
      -- the environment's credentials over the profile's
      code, _, err = run("kme devices list --profile sim --no-cache", { KNOX_KEYS_FILE = keys,
        KNOX_CLIENT_ID = "sim-client-not-this-one" })
      assert.are.equal(4, code, err)
    end)

    it("before the command, --profile is the config profile even where --profile is a Knox profile id", function()
      write_config(profile("sim"))
      local _, pout = run("--profile sim kme profiles list -o json")
      local pid = cjson.decode(pout)[1].profileId
      local _, dout = run("--profile sim kme devices list -o json")
      local dev = cjson.decode(dout)[1]
      local code, out, err = run(("--profile sim kme devices assign --profile %s %s -o json"):format(pid,
        dev.mei or dev.imei or dev.deviceId))
      assert.are.equal(0, code, err)
      assert.are.equal("ok", cjson.decode(out)[1].result)
    end)

    it("names a missing profile and the ones there are (exit 2)", function()
      write_config(profile("sim") .. profile("other"))
      local code, _, err = run("kme devices list --profile prod")
      assert.are.equal(2, code)
      assert.matches("no profile prod", err)
      assert.matches("other, sim", err)
    end)

    it("refuses a secret value in the file, without repeating it", function()
      for _, line in ipairs { "oauth_client_secret = s3cr3t-value", "client_secret = s3cr3t-value",
        "api_token = s3cr3t-value" } do
        write_config(profile("sim", line))
        local code, out, err = run("kme devices list --profile sim")
        assert.are.equal(2, code, line)
        assert.are.equal("", out)
        assert.matches("oauth_client_secret_file", err)
        assert.is_nil(err:find("s3cr3t", 1, true), err)
      end
      write_config(profile("sim", "regoin = us"))
      local code, _, err = run("kme devices list --profile sim")
      assert.are.equal(2, code)
      assert.matches("did you mean region", err)
    end)

    it("reads the OAuth secret from the variable the profile names", function()
      write_config(([[
[profile env]
base_url = %s
oauth_client_id = %s
oauth_client_secret_env = MY_KNOX_SECRET
oauth_scope = %s
]]):format(sim.url, sim.oauth.client_id, sim.oauth.scope))
      local code, out, err = run("msp customers list -o json --profile env",
        { MY_KNOX_SECRET = sim.oauth.client_secret })
      local _
      assert.are.equal(0, code, err)
      assert.is_true(#cjson.decode(out) >= 1)
      code, _, err = run("msp customers list --profile env")
      assert.are.equal(2, code)
      assert.matches("MY_KNOX_SECRET, which is not set", err)
    end)
  end)

  describe("the token cache", function()
    it("lets a second run send no token request", function()
      write_config(profile("sim"))
      local code, _, err = run("kme devices list --profile sim -o json")
      assert.are.equal(0, code, err)
      local mark = last_request(sim)
      code, _, err = run("kme devices list --profile sim -o json")
      assert.are.equal(0, code, err)
      code, _, err = run("msp customers list --profile sim -o json")
      assert.are.equal(0, code, err)
      -- msp needed the OAuth token: one request for it, none for the legacy one
      assert.are.equal(1, token_requests(sim, mark))
      mark = last_request(sim)
      code = run("msp customers list --profile sim -o json")
      assert.are.equal(0, code)
      assert.are.equal(0, token_requests(sim, mark))
      -- the files: a private directory, owner-only regular files
      assert.are.equal("700 directory", stat(CACHE .. "/knox"))
      local p = io.popen("ls " .. quote(CACHE .. "/knox"))
      local files = {}
      for f in p:lines() do files[#files + 1] = f end
      p:close()
      assert.are.equal(2, #files)
      for _, f in ipairs(files) do assert.are.equal("600 regular file", stat(CACHE .. "/knox/" .. f)) end
    end)

    it("never hands a token to other credentials", function()
      write_config(profile("sim") .. profile("twin"))
      assert.are.equal(0, (run("kme devices list --profile sim")))
      local mark = last_request(sim)
      -- the same credentials under another profile name: a token of its own
      assert.are.equal(0, (run("kme devices list --profile twin")))
      assert.are.equal(1, token_requests(sim, mark))
      -- another client id: refused by Knox, and no cached token used for it
      mark = last_request(sim)
      local code = run("kme devices list --profile sim", { KNOX_KEYS_FILE = keys, KNOX_CLIENT_ID = "sim-client-other" })
      assert.are.equal(4, code)
      assert.are.equal(1, token_requests(sim, mark))
    end)

    it("is not used through a symbolic link", function()
      write_config(profile("sim"))
      local elsewhere = tmp .. "/elsewhere"
      os.execute("mkdir -p -m 700 " .. quote(elsewhere) .. " " .. quote(CACHE) .. " && ln -s " .. quote(elsewhere)
        .. " " .. quote(CACHE .. "/knox"))
      local code, _, err = run("kme devices list --profile sim -v")
      assert.are.equal(0, code, err)
      assert.matches("token cache off", err)
      local p = io.popen("ls -A " .. quote(elsewhere))
      assert.are.equal("", p:read "a")
      p:close()
    end)

    it("knox token masks the token, --show prints it alone, --clear forgets it", function()
      write_config(profile("sim"))
      local code, out, err = run("token --profile sim -o json")
      assert.are.equal(0, code, err)
      local rows = cjson.decode(out)
      assert.are.equal(2, #rows)
      for _, r in ipairs(rows) do
        assert.matches("…", r.token)
        assert.matches("%(%d+ chars%)", r.token)
      end
      local mark = last_request(sim)
      code, out = run("token --profile sim --show --scheme oauth2")
      assert.are.equal(0, code)
      local tok = out:match "^(%S+)\n$"
      local _
      assert.is_string(tok)
      assert.are.equal(0, token_requests(sim, mark), "from the cache")
      -- the token works for a plain HTTP client
      local r = sim:request("GET", "/msp/v1/managedCustomers", { headers = { Authorization = "Bearer " .. tok } })
      assert.are.equal(200, r.status)
      code, _, err = run("token --profile sim --show")
      assert.are.equal(2, code)
      assert.matches("%-%-scheme", err)
      code, _, err = run("token --profile sim --clear")
      assert.are.equal(0, code)
      assert.matches("removed 2 cached tokens", err)
      mark = last_request(sim)
      run("token --profile sim --show --scheme legacy")
      assert.are.equal(1, token_requests(sim, mark))
    end)

    it("knox auth status names each credential, the services it reaches and its token's life", function()
      write_config(profile("sim"))
      local code, out, err = run("auth status --profile sim -o json")
      assert.are.equal(0, code, err)
      local by = {}
      for _, r in ipairs(cjson.decode(out)) do by[r.scheme] = r end
      assert.matches("kg", by.legacy.services)
      assert.is_nil(by.legacy.services:find "msp")
      assert.matches("msp", by.oauth2.services)
      assert.matches("^%d+m%d%ds$", by.legacy.expires_in)
      assert.are.equal(sim.client_id, by.legacy.client_id)
      code, out = run("auth status --profile sim -o table")
      assert.are.equal(0, code)
      assert.matches("profile sim", out)
    end)
  end)

  describe("provider token export / import (knox.auth)", function()
    it("exports a fetched token with its wall-clock expiry and imports it into a new provider", function()
      local knox = require "knox"
      local core = require "knox.core"
      local p1 = knox.auth.oauth2(sim.oauth)
      assert.is_nil(p1:export_token())
      local c1 = knox.client { base_url = sim.url, env = false, auth = p1 }
      c1.msp:list_customers {}
      local t = p1:export_token()
      assert.is_string(t.token)
      assert.are.equal("oauth2", t.scheme)
      assert.is_true(math.abs(t.expires_at - (core.now() + 600)) < 5)
      c1:close()
      local mark = last_request(sim)
      local p2 = knox.auth.oauth2(sim.oauth)
      assert.is_true(p2:import_token(t))
      local c2 = knox.client { base_url = sim.url, env = false, auth = p2 }
      c2.msp:list_customers {}
      c2:close()
      assert.are.equal(0, token_requests(sim, mark))
      -- the legacy provider: Knox's access token, signed again locally
      local k1 = knox.auth.keys { file = keys, client_id = sim.client_id }
      local c3 = knox.client { base_url = sim.url, env = false, auth = k1 }
      c3.kme:list_devices {}
      c3:close()
      local lt = k1:export_token()
      assert.are.equal("legacy", lt.scheme)
      assert.is_true(math.abs(lt.expires_at - (core.now() + 1800)) < 5)
      mark = last_request(sim)
      local k2 = knox.auth.keys { file = keys, client_id = sim.client_id }
      assert.is_true(k2:import_token(lt))
      local c4 = knox.client { base_url = sim.url, env = false, auth = k2 }
      c4.kme:list_devices {}
      c4:close()
      assert.are.equal(0, token_requests(sim, mark))
    end)

    it("refuses an expired, malformed or other-scheme token, and a static provider has none", function()
      local knox = require "knox"
      local core = require "knox.core"
      local p = knox.auth.oauth2(sim.oauth)
      assert.is_false(p:import_token { token = "abc", expires_at = core.now() - 1 })
      assert.is_false(p:import_token { token = "abc" })
      assert.is_false(p:import_token { token = "a\nb", expires_at = core.now() + 100 })
      assert.is_false(p:import_token { token = "abc", expires_at = core.now() + 100, scheme = "legacy" })
      assert.is_false(p:import_token "abc")
      local s = knox.auth.token { value = "xyz-token-value" }
      assert.is_nil(s:export_token())
      assert.is_false(s:import_token { token = "abc", expires_at = core.now() + 100 })
      -- an imported token is redacted like one fetched
      assert.is_true(p:import_token { token = "imported-secret-token", expires_at = core.now() + 100 })
      local scrub = require("knox.auth").scrubber { p }
      assert.are.equal("x [redacted] y", scrub "x imported-secret-token y")
    end)
  end)

  describe("knox doctor", function()
    it("passes a healthy setup, one line per check", function()
      write_config(profile("sim", "tenant = " .. sim.info.customer_id))
      local _, cout = run("msp customers list --profile sim -o json --no-tenant")
      local tenant = cjson.decode(cout)[1].customerId
      write_config(profile("sim", "tenant = " .. tenant))
      local code, out, err = run("doctor --profile sim")
      assert.are.equal(0, code, out .. err)
      for _, check in ipairs { "config", "keys file", "oauth secret", "token cache", "reach", "clock",
        "token legacy", "token oauth2", "tenant" } do
        assert.matches("\nok%s+" .. check:gsub("%p", "%%%0") .. " ", "\n" .. out)
      end
      assert.is_nil(out:find "FAIL")
      assert.matches("public and private halves match", out)
    end)

    it("fails a broken setup with a fix on each failing line, exit 1", function()
      -- a keys file others can read whose halves are two different keys
      local a = cjson.decode(sim_support.read_file(keys))
      local _, other = run("keys generate")
      local b = cjson.decode(other)
      a.Public = b.Public
      local bad = tmp .. "/bad-keys.json"
      sim_support.write_file(bad, cjson.encode(a))
      os.execute("chmod 644 " .. quote(bad))
      write_config(([[
[profile broken]
base_url = %s
keys_file = %s
client_id = %s
oauth_client_id = %s
oauth_client_secret_file = %s
oauth_scope = %s
tenant = 999999999
]]):format(sim.url, bad, sim.client_id, sim.oauth.client_id, tmp .. "/missing.secret", sim.oauth.scope))
      sim:clock(900)
      local code, out, err = run("doctor --profile broken")
      sim:clock(-900)
      assert.are.equal(1, code, out .. err)
      assert.matches("FAIL%s+keys file[^\n]+fix: download keys.json again", out)
      assert.matches("FAIL%s+oauth secret[^\n]+fix:", out)
      assert.matches("FAIL%s+client", out)
      assert.is_nil(err:find "stack traceback")
      -- readable keys of one pair, but others may read them, a dead tenant and a clock 15 minutes off
      os.execute("cp " .. quote(keys) .. " " .. quote(bad) .. " && chmod 644 " .. quote(bad))
      sim_support.write_file(tmp .. "/missing.secret", sim.oauth.client_secret)
      os.execute("chmod 600 " .. quote(tmp .. "/missing.secret"))
      sim:clock(900)
      code, out = run("doctor --profile broken -o json")
      sim:clock(-900)
      os.remove(tmp .. "/missing.secret")
      assert.are.equal(1, code)
      local by = {}
      for _, r in ipairs(cjson.decode(out)) do by[r.check] = r end
      assert.are.equal("fail", by["keys file"].status)
      assert.matches("chmod 600", by["keys file"].fix)
      assert.are.equal("fail", by.clock.status)
      assert.matches("timedatectl", by.clock.fix)
      assert.are.equal("fail", by.tenant.status)
      assert.matches("msp customers list", by.tenant.fix)
      assert.are.equal("ok", by.reach.status)
    end)

    it("fails when the region does not answer and when there is no configuration", function()
      write_config("[profile dead]\nbase_url = http://127.0.0.1:9\nkeys_file = " .. keys .. "\nclient_id = x\n")
      local code, out = run("doctor --profile dead")
      assert.are.equal(1, code)
      assert.matches("FAIL%s+reach[^\n]+fix: check the network", out)
      assert.matches("FAIL%s+token legacy", out)
      code, out = run("doctor --profile nowhere")
      assert.are.equal(1, code)
      assert.matches("FAIL%s+config%s+no profile nowhere", out)
    end)
  end)
end)
