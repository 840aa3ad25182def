--- scripts/rock.lua: source rocks of the current tree, and the one source URL.
--
--   lua5.4 scripts/rock.lua pack OUTDIR   source rocks of the working tree:
--                                         OUTDIR/knox-scm-1.src.rock and
--                                         OUTDIR/knox-sim-scm-1.src.rock
--   lua5.4 scripts/rock.lua sync          copies the source table of
--                                         rockspec/knox-scm-1.rockspec into
--                                         rockspec/knox-sim-scm-1.rockspec
--
-- Run from the repository root (`make rock`, `make rockspecs` do).
--
-- `pack` takes the files git knows or would add (tracked and untracked,
-- not ignored: `git ls-files -co --exclude-standard`), so uncommitted work
-- is in the rock and build output is not. It puts them in one tarball,
-- gives the knox rockspec a source table pointing at that tarball
-- (file://OUTDIR/knox-scm-1.tar.gz, dir knox-scm-1; knox-sim, which
-- installs nothing, gets one with the licence alone) and runs `luarocks
-- pack` on each: a .src.rock holds its rockspec and that tarball, and
-- `luarocks install X.src.rock` builds from the tarball inside it without
-- fetching anything. A rock packed from the published URL is made the
-- usual way instead: `luarocks pack rockspec/knox-scm-1.rockspec`.
--
-- loadfile("scripts/rock.lua")("--module") returns the module table (the
-- spec uses M.source_block).
local M = {}

M.VERSION = "scm-1"
M.MAIN = "rockspec/knox-" .. M.VERSION .. ".rockspec"
M.SIM = "rockspec/knox-sim-" .. M.VERSION .. ".rockspec"

local function fail(msg)
  io.stderr:write("rock.lua: ", msg, "\n")
  os.exit(1)
end

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then fail(err) end
  local s = f:read "a"
  f:close()
  return s
end

local function write(path, text)
  local f, err = io.open(path, "wb")
  if not f then fail(err) end
  assert(f:write(text))
  assert(f:close())
end

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function run(cmd)
  local ok = os.execute(cmd)
  if not ok then fail("failed: " .. cmd) end
end

--- The `source = { ... }` table of a rockspec's text (a top-level line
-- starting "source = {"), with the offsets of its first and last byte; nil
-- when there is none.
function M.source_block(text)
  local s, e = text:find("\nsource = %b{}")
  if not s then return nil end
  return text:sub(s + 1, e), s + 1, e
end

--- text with its source table replaced by block.
function M.with_source(text, block)
  local _, s, e = M.source_block(text)
  if not s then return nil end
  return text:sub(1, s - 1) .. block .. text:sub(e + 1)
end

local function sync()
  local block = M.source_block(read(M.MAIN))
  if not block then fail(M.MAIN .. " has no top-level `source = { ... }`") end
  local sim = read(M.SIM)
  local new = M.with_source(sim, block)
  if not new then fail(M.SIM .. " has no top-level `source = { ... }`") end
  if new ~= sim then write(M.SIM, new) end
  print("rock.lua: " .. M.SIM .. (new ~= sim and " updated" or " already up to date"))
end

local function pack(out)
  if not out or out == "" then fail("usage: lua5.4 scripts/rock.lua pack OUTDIR") end
  local p = assert(io.popen("pwd"))
  local root = p:read "l"
  p:close()
  if out:sub(1, 1) ~= "/" then out = root .. "/" .. out end
  run("rm -rf " .. quote(out) .. " && mkdir -p " .. quote(out))

  -- the working tree as git sees it; a tracked file deleted but not yet
  -- committed is left out rather than failing tar
  local list = assert(io.popen("git ls-files -co --exclude-standard -z 2>/dev/null"))
  local names = list:read "a"
  local ok = list:close()
  if not ok or names == "" then fail("`make rock` packs a git checkout: `git ls-files` found nothing here") end
  local kept = {}
  for name in names:gmatch "([^%z]+)" do
    local f = io.open(name, "rb")
    if f then
      f:close()
      kept[#kept + 1] = name
    end
  end
  local dir = "knox-" .. M.VERSION
  write(out .. "/files", table.concat(kept, "\0") .. "\0")
  run(("tar -czf %s --null -T %s --transform %s"):format(quote(out .. "/" .. dir .. ".tar.gz"),
    quote(out .. "/files"), quote("s,^," .. dir .. "/,")))
  os.remove(out .. "/files")

  -- knox-sim installs nothing of its own: its tarball carries the licence only
  local sim_dir = "knox-sim-" .. M.VERSION
  run(("tar -czf %s --transform %s LICENSE"):format(quote(out .. "/" .. sim_dir .. ".tar.gz"),
    quote("s,^," .. sim_dir .. "/,")))

  for _, spec in ipairs { M.MAIN, M.SIM } do
    local d = spec == M.SIM and sim_dir or dir
    local block = ('source = {\n  url = "file://%s/%s.tar.gz",\n  dir = "%s",\n}'):format(out, d, d)
    local text = M.with_source(read(spec), block)
    if not text then fail(spec .. " has no top-level `source = { ... }`") end
    local name = spec:match "[^/]+$"
    write(out .. "/" .. name, text)
    run(("cd %s && luarocks --lua-version 5.4 pack %s >/dev/null"):format(quote(out), quote(name)))
    print(out .. "/" .. name:gsub("%.rockspec$", ".src.rock"))
  end
end

local command, dir = ...
if command == "--module" then return M end
if command == "pack" then
  pack(dir)
elseif command == "sync" then
  sync()
else
  fail("usage: lua5.4 scripts/rock.lua pack OUTDIR | sync")
end
