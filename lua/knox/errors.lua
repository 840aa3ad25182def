--- knox.errors: the knox.Error class shared with the C core.
-- The metatable is created by knox.core (so C can raise the same objects);
-- this module is its Lua face.
local core = require "knox.core"

local M = {
  Error = core.Error,
  is_error = core.is_error,
}

--- Builds a knox.Error from a table of fields (kind is required).
function M.new(fields)
  return core.error(fields)
end

return M
