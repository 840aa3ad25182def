-- Key files (issue 15, D10): key:save(path) creates a new file, owner-only,
-- and never writes through a symbolic link or over an existing file; so
-- does `knox keys generate -o PATH`, which uses it.
local lfs = require "lfs"
local sim_support = require "support.sim"
local KNOX = require("helpers").KNOX

local core = require "knox.core"
local knox = require "knox"

local servers = require "support.http_servers"
local tmpdir, read, write = servers.tmpdir, servers.read_file, servers.write_file

local function symlink(target, link)
  assert(os.execute(("ln -s %s %s"):format(sim_support.quote(target), sim_support.quote(link))))
end

-- All strings anywhere inside a value.
local function strings_of(v, out)
  out = out or {}
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" then
    for k, x in pairs(v) do
      strings_of(k, out)
      strings_of(x, out)
    end
  end
  return out
end

-- The knox.Error of a refused save: kind "key", the path named, no key material.
local function refused(key, path, cause_name)
  local ok, err = pcall(key.save, key, path)
  assert.is_false(ok, "saved to " .. path)
  assert.is_true(core.is_error(err), tostring(err))
  assert.are.equal("key", err.kind)
  assert.are.equal(path, err.path)
  assert.matches(path, err.message, 1, true)
  assert.are.equal(cause_name, err.cause.name)
  assert.is_number(err.cause.errno)
  for _, s in ipairs(strings_of(err)) do
    assert.is_nil(s:find("MII", 1, true), "key material in the error")
  end
  assert.is_nil(tostring(err):find("MII", 1, true))
  return err
end

local function run_knox(cmd)
  local errfile = os.tmpname()
  local p = io.popen(cmd .. " 2>" .. errfile)
  local out = p:read "a"
  local _, _, code = p:close()
  local err = read(errfile)
  os.remove(errfile)
  return code, out, err
end

describe("key files", function()
  local dir, key

  setup(function()
    key = core.keys.generate()
  end)

  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. sim_support.quote(dir)) end)

  it("key:save creates the keys.json owner-only, and it loads back", function()
    local path = dir .. "/keys.json"
    assert.is_nil(key:save(path))
    assert.are.equal("rw-------", lfs.attributes(path, "permissions"))
    assert.are.equal("file", lfs.attributes(path, "mode"))
    assert.are.equal(key:to_json(), read(path))
    assert.are.equal(key:fingerprint(), core.keys.load(path):fingerprint())
  end)

  it("refuses a dangling symbolic link and creates nothing at its target", function()
    local target, link = dir .. "/target.json", dir .. "/link.json"
    symlink(target, link)
    local err = refused(key, link, "EEXIST")
    assert.matches("symbolic link", err.message, 1, true)
    assert.is_nil(lfs.attributes(target))
    assert.are.equal("link", lfs.symlinkattributes(link, "mode"))
  end)

  it("refuses a symbolic link to an existing file and leaves the file alone", function()
    local target, link = dir .. "/target.json", dir .. "/link.json"
    write(target, "precious")
    symlink(target, link)
    refused(key, link, "EEXIST")
    assert.are.equal("precious", read(target))
  end)

  it("refuses an existing file or directory and never overwrites it", function()
    local path = dir .. "/keys.json"
    write(path, "old")
    local err = refused(key, path, "EEXIST")
    assert.matches("exists", err.message, 1, true)
    assert.are.equal("old", read(path))
    refused(key, dir, "EEXIST")
  end)

  it("reports a missing directory as a key error", function()
    refused(key, dir .. "/no/such/keys.json", "ENOENT")
  end)

  it("checks its arguments", function()
    assert.has_error(function() key:save() end)
    assert.has_error(function() key:save(5) end)
    assert.has_error(function() key:save("a\0b") end)
    local k = core.keys.generate()
    k:close()
    assert.has_error(function() k:save(dir .. "/closed.json") end)
    assert.is_nil(lfs.attributes(dir .. "/closed.json"))
    assert.is_function(knox.keys.generate().save)
  end)

  describe("knox keys generate -o", function()
    it("creates the file owner-only whatever the umask", function()
      local path = dir .. "/keys.json"
      local code, _, err = run_knox("umask 000 && " .. KNOX .. " keys generate -o " .. sim_support.quote(path))
      assert.are.equal(0, code, err)
      assert.are.equal("rw-------", lfs.attributes(path, "permissions"))
      assert.matches("^knox.Key: RSA%-2048", tostring(core.keys.load(path)))
    end)

    it("refuses a dangling symbolic link: exit 2, the target not created", function()
      local target, link = dir .. "/target.json", dir .. "/link.json"
      symlink(target, link)
      local code, out, err = run_knox(KNOX .. " keys generate -o " .. sim_support.quote(link))
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("symbolic link", err, 1, true)
      assert.is_nil(err:find("MII", 1, true))
      assert.is_nil(lfs.attributes(target))
    end)

    it("refuses an existing file: exit 2, the file unchanged", function()
      local path = dir .. "/keys.json"
      write(path, "old")
      local code, _, err = run_knox(KNOX .. " keys generate -o " .. sim_support.quote(path))
      assert.are.equal(2, code)
      assert.matches("exists", err, 1, true)
      assert.are.equal("old", read(path))
    end)
  end)
end)
