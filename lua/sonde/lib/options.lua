-- sonde.lib.options: the check every public call taking a table of options
-- makes, so that a wrong option is one line at the caller's, naming the
-- call, the option and what it must be.
--
-- An allowed table maps each option to a Lua type name, "any", or a kind
-- of number: "count" (a whole number >= 0), "port" (0 to 65535) or
-- "seconds" (>= 0).
local M = {}

local RANGES = {
  count = { "a whole number >= 0", function(v) return v >= 0 and v % 1 == 0 end },
  port = { "a whole number from 0 to 65535", function(v) return v >= 0 and v <= 65535 and v % 1 == 0 end },
  seconds = { "a number of seconds >= 0", function(v) return v >= 0 end }, -- math.huge: none
}

-- check_value(what, key, value, kind, level): raises `level` frames above
-- the caller (0: without a position) unless value is of that kind.
function M.check_value(what, key, value, kind, level)
  local range = RANGES[kind]
  local want = range and "number" or kind
  local at = level == 0 and 0 or level + 1
  if want ~= "any" and type(value) ~= want then
    error(string.format("%s: option '%s' must be a %s, got %s", what, key, want, type(value)), at)
  end
  if range and not range[2](value) then
    error(string.format("%s: option '%s' must be %s, got %s", what, key, range[1], tostring(value)), at)
  end
end

-- names(allowed) -> the allowed options, sorted, comma-separated.
function M.names(allowed)
  local names = {}
  for name in pairs(allowed) do names[#names + 1] = name end
  table.sort(names)
  return table.concat(names, ", ")
end

-- check(what, opts, allowed, level) -> opts, or {} for nil: raises `level`
-- frames above the caller at an option that is unknown or of a wrong kind.
function M.check(what, opts, allowed, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(what .. ": options must be a table, got " .. type(opts), level + 1) end
  for k, v in pairs(opts) do
    local kind = allowed[k]
    if kind == nil then
      error(string.format("%s: unknown option '%s' (expected one of: %s)", what, tostring(k), M.names(allowed)),
          level + 1)
    end
    M.check_value(what, k, v, kind, level + 1)
  end
  return opts
end

return M
