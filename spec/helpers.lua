--- Shared helpers for the busted specs.
local M = {}

--- Calls fn(...) expecting it to raise a knox.Error; returns the error.
-- Fails the spec (with what was raised instead) otherwise.
function M.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  local core = require "knox.core"
  assert(core.is_error(err), "expected a knox.Error, got: " .. tostring(err))
  return err
end

--- The folder of the shared docs beside the repo, or nil when absent.
function M.shared_dir()
  for _, d in ipairs { "../shared", os.getenv("KNOX_SHARED_DIR") } do
    local f = io.open(d .. "/knox-docs/api-notes.md", "r")
    if f then
      f:close()
      return d
    end
  end
  return nil
end

return M
