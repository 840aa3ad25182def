-- The knox command, run as a real process.
local sim_support = require "support.sim"
local KNOX = require("helpers").KNOX

-- the command's token cache and config file are kept out of the user's
-- own (~/.cache/knox, ~/.config/knox/config)
local isolated = os.tmpname()
os.remove(isolated)

local function run(cmd, env)
  local prefix = "XDG_CACHE_HOME=" .. sim_support.quote(isolated) .. " KNOX_CONFIG=/nonexistent/knox-config "
  for k, v in pairs(env or {}) do prefix = prefix .. k .. "=" .. sim_support.quote(v) .. " " end
  local errfile = os.tmpname()
  local p = io.popen(prefix .. KNOX .. " " .. cmd .. " 2>" .. errfile)
  local out = p:read "a"
  local _, _, code = p:close()
  local f = io.open(errfile)
  local err = f:read "a"
  f:close()
  os.remove(errfile)
  return code, out, err
end

describe("knox command", function()
  teardown(function() os.execute("rm -rf " .. sim_support.quote(isolated)) end)

  it("prints its version", function()
    local code, out = run "version"
    assert.are.equal(0, code)
    assert.matches("^knox %d+%.%d+%.%d+ %(libcurl [%d.]+, Lua 5%.4%)\n$", out)
  end)

  it("exits 2 with usage on a mistake", function()
    local code, _, err = run "frobnicate"
    assert.are.equal(2, code)
    assert.matches("unknown command frobnicate", err)
    code = run ""
    assert.are.equal(2, code)
  end)

  it("looks codes up in the catalog", function()
    local code, out = run "errors lookup kg 4040300"
    assert.are.equal(0, code)
    assert.matches("DEVICE_NOT_FOUND", out)
    code = run "errors lookup kg 1234567"
    assert.are.equal(1, code)
  end)

  it("generates a key file readable by its owner only, and describes it", function()
    local dir = os.tmpname()
    os.remove(dir)
    local file = dir .. ".json"
    local code, _, err = run("keys generate -o " .. file)
    assert.are.equal(0, code, err)
    local p = io.popen("stat -c %a " .. file)
    assert.are.equal("600", p:read "l")
    p:close()
    local out
    code, out = run("keys info " .. file)
    assert.are.equal(0, code)
    assert.matches("^knox.Key: RSA%-2048 %x+", out)
    assert.is_nil(out:find "MII", "no key material")
    code, _, err = run("keys generate -o " .. file)
    assert.are.equal(2, code)
    assert.matches("exists", err)
    os.remove(file)
  end)

  describe("request", function()
    local sim
    setup(function() sim = sim_support.start() end)
    teardown(function() if sim then sim:stop() end end)

    local function env()
      return { KNOX_BASE_URL = sim.url, KNOX_KEYS_FILE = sim.keys_file, KNOX_CLIENT_ID = sim.client_id }
    end

    it("calls Knox with the environment's credentials and prints JSON", function()
      local code, out, err = run("request GET /kcs/v1/kme/devices/list -q pageSize=2", env())
      assert.are.equal(0, code, err)
      local body = require("cjson").decode(out)
      assert.is_number(body.totalCount)
    end)

    it("prints a Knox error on one line and exits 1", function()
      local code, out, err = run("request GET /kcs/v1/kme/profiles/nope/get", env())
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches("^knox: PROFILE_NOT_FOUND %(4040400, HTTP 404%) GET /kcs/v1/kme/profiles/nope/get: [^\n]*\n$", err)
    end)

    it("treats a bad method, path or option as a usage mistake", function()
      for _, args in ipairs { "request G-T /x", "request GET kcs/v1", "request GET /x --service" } do
        local code = run(args, env())
        assert.are.equal(2, code, args)
      end
    end)

    -- the text-safety module's table, walked through the command's -v
    -- output (the architecture issue: every output path redacts each entry)
    it("-v prints what was sent and received, with every secret name redacted", function()
      local text = require "knox.text"
      local flags, secrets = {}, {}
      for i, e in ipairs(text.secret_names()) do
        local names = e.match == "exact" and { e.name, e.name:upper() }
          or e.match == "part" and { "x-my-" .. e.name .. "-value" } or {}
        for j, n in ipairs(names) do
          local secret = ("CLI%dS3CRET%d"):format(i, j)
          secrets[#secrets + 1] = secret
          flags[#flags + 1] = "-H " .. sim_support.quote(n .. ": " .. secret)
        end
      end
      assert.is_true(#secrets >= 10)
      local code, out, err = run("request -v GET /kcs/v1/kme/devices/list -q pageSize=1 "
        .. table.concat(flags, " "), env())
      assert.are.equal(0, code, err)
      assert.is_number(require("cjson").decode(out).totalCount)
      assert.matches("> GET http://127%.0%.0%.1:%d+/kcs/v1/kme/devices/list%?pageSize=1\n", err)
      assert.matches("\n< 200 ", err)
      -- the credential header the provider set is redacted too
      assert.matches("\n> [Xx]%-[Kk]nox%-[Aa]pitoken: %[redacted%]\n", err)
      for _, secret in ipairs(secrets) do
        assert.is_nil(err:find(secret, 1, true), secret .. " in -v output:\n" .. err)
      end
    end)

    it("refuses a tenant call that the credentials would send to the MSP's own tenant", function()
      local code, out, err = run("request GET /kcs/v1/kme/devices/list --tenant C123", env())
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("needs knox.auth.oauth2", err, 1, true)
      local e = env()
      e.KNOX_TENANT = "C123"
      local code2, _, err2 = run("request GET /kcs/v1/kme/devices/list --service msp", e)
      assert.are.equal(2, code2, err2)
      code = run("request GET /kcs/v1/kme/devices/list -q pageSize=1 --no-tenant", e)
      assert.are.equal(0, code)
    end)

    it("says which variable is missing", function()
      local code, _, err = run("request GET /kcs/v1/kme/devices/list", { KNOX_BASE_URL = sim.url,
        KNOX_KEYS_FILE = sim.keys_file, KNOX_CLIENT_ID = "" })
      assert.are.equal(2, code)
      assert.matches("KNOX_CLIENT_ID is not set", err)
    end)
  end)
end)
