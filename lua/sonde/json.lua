-- sonde.json: lua-cjson underneath, with errors that say where.
--
-- json.encode(v), json.decode(s), json.null, json.array(t) (so that an empty
-- table encodes as [] rather than {}), json.pretty(v) (sorted keys, two-space
-- indent). Debian's lua-cjson 2.1.0 has no array metatable and writes at
-- most 14 significant digits, so encode writes a copy of the value with
-- placeholders for marked empty arrays and long numbers, then puts them back.
local cjson = require("cjson")

local M = { null = cjson.null }

cjson.encode_sparse_array(false, 2, 10) -- a sparse array is an error, not an object
cjson.encode_number_precision(14)

local marked = setmetatable({}, { __mode = "k" })

-- array(t) -> t, marked to encode as a JSON array even when empty.
function M.array(t)
  t = t or {}
  if type(t) ~= "table" then error("json.array: expected a table, got " .. type(t), 2) end
  marked[t] = true
  return t
end

function M.is_array(t) return marked[t] == true end

local function path_key(path, k)
  if type(k) == "number" then return path .. "[" .. k .. "]" end
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return path .. "." .. k end
  return path .. "[" .. string.format("%q", tostring(k)) .. "]"
end

-- Finds why cjson refused v: the path of the first value JSON cannot hold.
local function find_unencodable(v, path, seen)
  local t = type(v)
  if t == "function" or t == "thread" or t == "userdata" and v ~= cjson.null then
    return path .. " is a " .. t
  end
  if t == "number" and (v ~= v or v == math.huge or v == -math.huge) then return path .. " is " .. tostring(v) end
  if t ~= "table" then return nil end
  if seen[v] then return path .. " is a cycle back to an enclosing table" end
  seen[v] = true
  local n, max, strings = 0, 0, false
  for k, x in pairs(v) do
    n = n + 1
    if type(k) == "number" and k > 0 and k % 1 == 0 then
      if k > max then max = k end
    elseif type(k) ~= "string" then
      return path_key(path, k) .. " has a " .. type(k) .. " key (JSON keys are strings)"
    else
      strings = true
    end
    local why = find_unencodable(x, path_key(path, k), seen)
    if why then return why end
  end
  if not strings and max > n and max > 10 then
    return path .. " is a sparse array (" .. n .. " items, highest index " .. max .. ")"
  end
  seen[v] = nil
  return nil
end

-- cjson 2.1.0 writes numbers with at most 14 significant digits, which
-- silently changes large ids and fine timestamps; such numbers are written
-- exactly by us instead. nil when cjson's text is already exact.
local function exact_number(n)
  if n % 1 == 0 and n > -1e14 and n < 1e14 then return nil end -- the usual: a whole number of 14 digits at most
  if n ~= n or n == math.huge or n == -math.huge then return nil end
  if tonumber(string.format("%.14g", n)) == n then return nil end
  if n % 1 == 0 and math.abs(n) < 2 ^ 63 then return string.format("%.0f", n) end
  for digits = 15, 16 do -- the shortest text that reads back the same
    local text = string.format("%." .. digits .. "g", n)
    if tonumber(text) == n then return text end
  end
  return string.format("%.17g", n)
end

-- What cjson cannot write right goes to it as a placeholder string
-- "\0sonde:N\0" (written "\u0000sonde:N\u0000"), which encode then replaces
-- with texts[N]. A string of the value that holds "\0sonde:" is itself
-- replaced, by its own encoding, so that no string passes for a placeholder.
local MARK = "\0sonde:"

local function placeholder(texts, text)
  texts[#texts + 1] = text
  return MARK .. #texts .. "\0"
end

local function unescape_slashes(s)
  -- cjson 2.1.0 escapes every '/', which JSON allows but nobody writes; a
  -- "\/" in its output is always such an escape, so this is exact
  if s:find("\\/", 1, true) then s = s:gsub("\\/", "/") end
  return s
end

-- v with what cjson cannot write right (marked empty arrays, long numbers,
-- strings that look like placeholders) replaced by placeholders. A table is
-- copied only when something inside it is replaced: the usual value goes to
-- cjson as it is.
local function with_placeholders(v, seen, texts)
  local t = type(v)
  if t == "number" then
    local text = exact_number(v)
    return text and placeholder(texts, text) or v
  end
  if t == "string" then
    return v:find(MARK, 1, true) and placeholder(texts, cjson.encode(v)) or v
  end
  if t ~= "table" then return v end
  if marked[v] and next(v) == nil then return placeholder(texts, "[]") end
  if seen[v] then return v end -- a cycle: cjson reports it
  seen[v] = true
  local copy
  for k, x in pairs(v) do
    local k2 = type(k) == "string" and with_placeholders(k, seen, texts) or k
    local y = with_placeholders(x, seen, texts)
    if not copy and (y ~= x or k2 ~= k) then
      copy = {}
      for k3, x3 in pairs(v) do copy[k3] = x3 end
    end
    if copy then
      copy[k] = nil
      copy[k2] = y
    end
  end
  seen[v] = nil
  return copy or v
end

-- encode(v) -> JSON text; raises "json.encode: $.a.b is a function" etc.
function M.encode(v)
  local texts = {}
  local ok, s = pcall(cjson.encode, with_placeholders(v, {}, texts))
  if not ok then
    local why = find_unencodable(v, "$", {}) or s:gsub("^.-:%d+: ", "")
    error("json.encode: cannot encode: " .. why, 2)
  end
  if #texts > 0 then s = s:gsub('"\\u0000sonde:(%d+)\\u0000"', function(i) return texts[tonumber(i)] end) end
  return unescape_slashes(s)
end

-- decode(s) -> value; raises "json.decode: <what cjson saw> at character N".
function M.decode(s)
  if type(s) ~= "string" then error("json.decode: expected a string, got " .. type(s), 2) end
  local ok, v = pcall(cjson.decode, s)
  if not ok then error("json.decode: " .. tostring(v):gsub("^.-:%d+: ", ""), 2) end
  return v
end

-- ------------------------------------------------------------- pretty

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  return keys
end

local function is_list(t)
  if marked[t] then return true end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

local function pretty(v, indent, out, seen)
  if type(v) ~= "table" then
    out[#out + 1] = type(v) == "number" and exact_number(v) or cjson.encode(v)
    return
  end
  if seen[v] then error("json.pretty: cannot encode: a cycle back to an enclosing table", 0) end
  if next(v) == nil then
    out[#out + 1] = marked[v] and "[]" or "{}"
    return
  end
  seen[v] = true
  local inner = indent .. "  "
  local list = is_list(v)
  out[#out + 1] = list and "[\n" or "{\n"
  local keys = list and nil or sorted_keys(v)
  local n = list and #v or #keys
  for i = 1, n do
    out[#out + 1] = inner
    if list then
      pretty(v[i], inner, out, seen)
    else
      out[#out + 1] = cjson.encode(tostring(keys[i])) .. ": "
      pretty(v[keys[i]], inner, out, seen)
    end
    out[#out + 1] = i < n and ",\n" or "\n"
  end
  out[#out + 1] = indent .. (list and "]" or "}")
  seen[v] = nil
end

-- pretty(v) -> indented JSON text with sorted keys.
function M.pretty(v)
  local why = find_unencodable(v, "$", {})
  if why then error("json.pretty: cannot encode: " .. why, 2) end
  local out = {}
  pretty(v, "", out, {})
  return table.concat(out)
end

return M
