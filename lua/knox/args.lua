--- knox.args: the one command-line parsing helper, shared by the `knox`
-- command (knox.cli) and the simulator (knox.sim).
--
-- It sits on Debian's lua-argparse and adds knox's conventions:
--   * parsing never exits the process: a mistake comes back as
--     nil, message (the caller prints it with its usage and exits 2);
--   * -h/--help is a plain flag the caller answers (exit 0), even when
--     required arguments are missing;
--   * numbers are checked against their range, with the option's name in
--     the message (M.number);
--   * options whose relative order matters (the simulator's
--     `--keys FILE --client-id ID` pairs) are also recorded in the order
--     given (M.ordered);
--   * messages use knox's style: option names unquoted.
local M = {}

local argparse_mod

local function argparse()
  if not argparse_mod then
    local ok, mod = pcall(require, "argparse")
    if not ok then
      error("knox: the command line needs lua-argparse (Debian package lua-argparse)", 0)
    end
    argparse_mod = mod
  end
  return argparse_mod
end

--- M.parser(prog, description [, epilog]) -> an argparse parser with
-- knox's -h/--help flag instead of argparse's exiting one.
function M.parser(prog, description, epilog)
  local p = argparse()(prog, description, epilog):add_help(false)
  p:help_max_width(100)
  p:flag("-h --help", "show this help")
  return p
end

--- M.number(name, min [, max [, integer]]) -> a converter for
-- option:convert(): a number (an integer if asked) within [min, max].
function M.number(name, min, max, integer)
  local range = max and (" between " .. min .. " and " .. max) or (" of at least " .. min)
  local what = integer and "an integer" or "a number"
  return function(v)
    local n = tonumber(v)
    if integer then n = n and math.tointeger(n) end
    if not n or n ~= n or n < min or (max and n > max) then
      return nil, name .. " needs " .. what .. range
    end
    return n
  end
end

--- M.ordered(option, key) -> option. Every use of the option is also
-- appended as { name, value } to result[key], in command-line order, so
-- that options which pair up can be checked after parsing.
function M.ordered(option, key)
  local name = option._name
  return option:count("*"):action(function(result, target, value)
    local list = result[target] or {}
    list[#list + 1] = value
    result[target] = list
    local seq = result[key] or {}
    seq[#seq + 1] = { name, value }
    result[key] = seq
  end)
end

--- M.parse(parser, argv) -> result | nil, message. -h or --help anywhere
-- (before a "--") gives { help = true }, whatever else is missing.
function M.parse(parser, argv)
  local list = {}
  for i = 1, #(argv or {}) do
    list[i] = tostring(argv[i])
    if list[i] == "--" then break end
    if list[i] == "-h" or list[i] == "--help" then return { help = true } end
  end
  for i = #list + 1, #(argv or {}) do list[i] = tostring(argv[i]) end
  local ok, res = parser:pparse(list)
  if ok then return res end
  return nil, (tostring(res):gsub("'(%-[^']*)'", "%1"))
end

return M
