-- Every Lua sample in README.md runs as it is: scripts against a
-- simulator through the KNOX_* environment, busted specs (a block with
-- describe/it) under busted.
local sim_support = require "support.sim"
local helpers = require "helpers"

local function blocks(text)
  local out = {}
  for code in text:gmatch "```lua\n(.-)```" do out[#out + 1] = code end
  return out
end

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read "a"
  local ok, _, code = p:close()
  return ok, code, out
end

describe("README.md", function()
  local sim, dir

  setup(function()
    sim = sim_support.start { devices = 50 }
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. sim_support.quote(dir))
  end)
  teardown(function()
    if sim then sim:stop() end
    if dir then os.execute("rm -rf " .. sim_support.quote(dir)) end
  end)

  it("gets its environment from knox sim --env, as it says", function()
    local ok, _, out = run(sim_support.ENV .. helpers.knox_sim(sim_support.ROOT)
      .. " --devices 1 --env --max-lifetime 0.5")
    assert.is_true(ok, out)
    for _, v in ipairs { "KNOX_BASE_URL", "KNOX_KEYS_FILE", "KNOX_CLIENT_ID", "KNOX_OAUTH_CLIENT_ID",
      "KNOX_OAUTH_CLIENT_SECRET", "KNOX_OAUTH_SCOPE" } do
      assert.matches("\nexport [^\n]*" .. v .. "='[^'\n]+'", out)
    end
  end)

  it("has Lua samples, and every one of them runs", function()
    local _, _, here = run("cd " .. sim_support.quote(sim_support.ROOT) .. " && pwd")
    local root = here:gsub("\n$", "")
    local readme = assert(sim_support.read_file(sim_support.ROOT .. "/README.md"))
    local list = blocks(readme)
    assert.is_true(#list >= 1)
    local env = table.concat({
      "KNOX_BASE_URL=" .. sim_support.quote(sim.url),
      "KNOX_KEYS_FILE=" .. sim_support.quote(sim.keys_file),
      "KNOX_CLIENT_ID=" .. sim_support.quote(sim.client_id),
      "KNOX_OAUTH_CLIENT_ID=" .. sim_support.quote(sim.oauth.client_id),
      "KNOX_OAUTH_CLIENT_SECRET=" .. sim_support.quote(sim.oauth.client_secret),
      "KNOX_OAUTH_SCOPE=" .. sim_support.quote(sim.oauth.scope),
      "LUA_PATH=" .. sim_support.quote(helpers.lua_path(root):gsub(";;$", ";") .. root .. "/spec/?.lua;;"),
      "LUA_CPATH=" .. sim_support.quote(helpers.lua_cpath(root .. "/build")),
    }, " ")
    for i, code in ipairs(list) do
      local file = ("%s/sample%d.lua"):format(dir, i)
      sim_support.write_file(file, code)
      local cmd
      if code:find("describe%(") then
        cmd = ("cd %s && %s%s %s /usr/bin/busted %s%s"):format(sim_support.quote(root), sim_support.ENV,
          env, sim_support.LUA, helpers.TREE and "--run=installed " or "", sim_support.quote(file))
      else
        cmd = ("cd %s && %s%s %s %s"):format(sim_support.quote(dir), sim_support.ENV, env, sim_support.LUA,
          sim_support.quote(file))
      end
      local ok, code_, out = run(cmd)
      assert(ok, ("README sample %d exited %s:\n%s\n--- sample:\n%s"):format(i, tostring(code_), out, code))
    end
  end)
end)
