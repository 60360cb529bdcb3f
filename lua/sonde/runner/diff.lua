-- sonde.runner.diff: structural differences between two values, one line per
-- difference, addressed by a path from the root `$`:
--
--   $.items[3].price: expected 10, got 12
--   $.user.email: missing (expected "a@b.c")
--   $.extra: unexpected, got true
--
-- Used for failed `assert.are.same` on tables (JSON bodies decoded to
-- tables included), instead of two dumped tables to compare by eye.
local M = {}

M.MAX_LINES = 20

local function pretty() return require("sonde.lib.pretty") end -- on the first failure, not at every start

local function is_matcher(v)
  require("luassert.match") -- a matcher can only come from it: loaded, so pretty can tell
  return pretty().is_matcher(v)
end

local function number_text(n)
  if n == math.floor(n) and math.abs(n) < 2 ^ 53 then return string.format("%d", n) end
  return string.format("%.17g", n)
end

-- show(v) -> a short description of a value for a diff line: a table by
-- its shape (its own lines say what differs inside), anything else as
-- sonde.lib.pretty shows it on one line.
function M.show(v)
  if type(v) == "table" and not is_matcher(v) then
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    if n == 0 then return "{}" end
    return #v == n and string.format("a list of %d", n) or string.format("a table of %d keys", n)
  end
  return pretty().line(v, 80)
end

-- A value with its type, for lines where the types differ.
local function typed(v)
  local shown = M.show(v)
  if shown == "null" or type(v) == "table" then return shown end
  return type(v) .. " " .. shown
end

local function key_text(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return "." .. k end
  if type(k) == "number" then return "[" .. number_text(k) .. "]" end
  if type(k) == "string" then return "[" .. string.format("%q", k) .. "]" end
  return "[" .. tostring(k) .. "]"
end

-- Numbers first (ascending), then strings, then anything else, so the lines
-- come out in the same order every time.
local RANK = { number = 1, string = 2 }
function M.key_less(a, b)
  local ra, rb = RANK[type(a)] or 3, RANK[type(b)] or 3
  if ra ~= rb then return ra < rb end
  if ra == 3 then return tostring(a) < tostring(b) end
  return a < b
end

local function sorted_keys(e, a)
  local keys, seen = {}, {}
  for k in pairs(e) do
    seen[k] = true
    keys[#keys + 1] = k
  end
  for k in pairs(a) do
    if not seen[k] then keys[#keys + 1] = k end
  end
  table.sort(keys, M.key_less)
  return keys
end

local walk

local function walk_tables(e, a, path, out, seen)
  seen[e] = seen[e] or {}
  if seen[e][a] then return end
  seen[e][a] = true
  local mt = getmetatable(e)
  if mt and mt == getmetatable(a) and mt.__eq and e == a then return end
  for _, k in ipairs(sorted_keys(e, a)) do
    local ev, av = rawget(e, k), rawget(a, k)
    local p = path .. key_text(k)
    if av == nil then
      out[#out + 1] = p .. ": missing (expected " .. M.show(ev) .. ")"
    elseif ev == nil then
      out[#out + 1] = p .. ": unexpected, got " .. M.show(av)
    else
      walk(ev, av, p, out, seen)
    end
  end
end

walk = function(e, a, path, out, seen)
  if is_matcher(e) then
    if not e(a) then out[#out + 1] = path .. ": expected " .. tostring(e) .. ", got " .. M.show(a) end
  elseif type(e) == "table" and type(a) == "table" then
    walk_tables(e, a, path, out, seen)
  elseif e ~= a then
    local te, ta = type(e), type(a)
    if te ~= ta and te ~= "nil" and ta ~= "nil" then
      out[#out + 1] = string.format("%s: expected %s, got %s", path, typed(e), typed(a))
    else
      out[#out + 1] = path .. ": expected " .. M.show(e) .. ", got " .. M.show(a)
    end
  end
end

-- compare(expected, actual) -> list of difference lines (empty when equal),
-- at most MAX_LINES of them plus one saying how many more there are.
function M.compare(expected, actual)
  local out = {}
  walk(expected, actual, "$", out, {})
  if #out > M.MAX_LINES then
    local more = #out - M.MAX_LINES
    for i = #out, M.MAX_LINES + 1, -1 do out[i] = nil end
    out[#out + 1] = string.format("... and %d more difference%s", more, more == 1 and "" or "s")
  end
  return out
end

return M
