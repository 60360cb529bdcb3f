-- sonde.lib.pretty: the one way sonde shows a Lua value to a person: the
-- REPL's printer, events' failure reports, the runner's display of a raised
-- table, diff lines' values. Tables print as JSON-like text, indented when
-- they do not fit the width; HTTP responses as status line, headers and
-- body, secrets redacted. Every size is bounded (LIMITS), so a huge, cyclic
-- or binary value never floods the output. `line` is the one-line form.
local task = require("sonde.task")
local redact = require("sonde.lib.redact")

local M = {}

local LIMITS = {
  items = 50, -- entries shown per table
  string = 200, -- bytes shown of a string inside a table
  top_string = 2000, -- bytes shown of a string printed on its own
  body = 4000, -- bytes shown of a text response body
  depth = 6, -- nesting levels shown
  nodes = 2000, -- tables rendered in one value (shared subtables count each time)
  lines = 200, -- lines printed for one value
  width = 78, -- a table fitting this many columns prints on one line
  sort = 10000, -- tables with more keys are shown in storage order
}
M.LIMITS = LIMITS

-- ---------------------------------------------------------------- colors

local COLORS = { key = "34", string = "32", number = "36", literal = "35", note = "2", ok = "32;1",
  redirect = "33;1", fail = "31;1", header = "36", error = "31" }

local function plain(_, s) return s end
local function colored(kind, s) return "\27[" .. COLORS[kind] .. "m" .. s .. "\27[0m" end

-- ----------------------------------------------------------------- strings

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function hex_byte(c) return string.format("\\x%02x", c:byte()) end

local report_util = require("sonde.lib.report_util")
local utf8_len, columns = report_util.utf8_len, report_util.width

-- Escapes one run matched by the pattern below: a well-formed UTF-8
-- character stays as it is, anything else becomes \xNN.
local function escape_run(run)
  local n = utf8_len(run, 1)
  if n and n > 1 then return run:sub(1, n) .. run:sub(n + 1):gsub(".", hex_byte) end
  local first = ESCAPES[run:sub(1, 1)] or hex_byte(run:sub(1, 1))
  return first .. run:sub(2):gsub(".", hex_byte)
end

local function escape(s) return (s:gsub('[%c"\\\128-\255][\128-\191]*', escape_run)) end

-- binary(s) -> true when s is not text: a NUL, a stray byte that is not
-- UTF-8, or control characters beyond line breaks and tabs.
local function binary(s)
  local sample = s:sub(1, 4096)
  if sample:find("[%z\1-\8\11\12\14-\31\127]") then return true end
  local i = sample:find("[\128-\255]")
  while i do
    local n = utf8_len(sample, i)
    if not n then return #s == #sample or i + 3 < #sample end -- a character cut by the sample's end is no proof
    i = sample:find("[\128-\255]", i + n)
  end
  return false
end

-- Cuts s to at most n bytes without splitting a UTF-8 character.
local function cut(s, n)
  if #s <= n then return s end
  while n > 0 and s:byte(n + 1) and s:byte(n + 1) >= 0x80 and s:byte(n + 1) < 0xC0 do n = n - 1 end
  return s:sub(1, n)
end

local function hex_preview(s, n)
  local out = {}
  for i = 1, math.min(#s, n) do out[i] = string.format("%02x", s:byte(i)) end
  return table.concat(out, " ") .. (#s > n and " ..." or "")
end

local function byte_count(n) return n == 1 and "1 byte" or (n .. " bytes") end

local function render_string(s, limit, paint)
  if binary(s) then
    local text = "<" .. byte_count(#s) .. " of binary: " .. hex_preview(s, 16) .. ">"
    return paint("note", text), #text
  end
  local shown = cut(s, limit)
  local text = '"' .. escape(shown) .. '"'
  if #shown < #s then
    local note = "... (" .. byte_count(#s) .. ")"
    return paint("string", text) .. paint("note", note), columns(text) + #note
  end
  return paint("string", text), columns(text)
end

-- ------------------------------------------------------------------ values

local function json_module() return package.loaded["sonde.json"] end

local function render_number(n)
  if n ~= n then return "nan" end
  if n == math.huge then return "inf" end
  if n == -math.huge then return "-inf" end
  if n % 1 == 0 and n > -2 ^ 53 and n < 2 ^ 53 then return string.format("%d", n) end
  local s = string.format("%.14g", n)
  if tonumber(s) ~= n then s = string.format("%.17g", n) end -- 0.1 + 0.2 is not 0.3: say so
  return s
end

local function render_function(f)
  local info = debug.getinfo(f, "S")
  if not info or info.what == "C" then return "<function: builtin>" end
  return "<function: " .. info.short_src .. ":" .. info.linedefined .. ">"
end

-- tostring through __tostring, protected: text, or nil and why it failed.
local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return nil, ok and ("__tostring returned a " .. type(s)) or task.describe(s)
end

-- metatable_of(v) -> v's metatable when it is a table, asked safely.
local function metatable_of(v)
  local ok, mt = pcall(getmetatable, v)
  return ok and type(mt) == "table" and mt or nil
end
M.metatable_of = metatable_of

-- An HTTP response from sonde.http (its metatable is private, its shape is not).
local function is_response(v)
  local mt = metatable_of(v)
  return mt ~= nil and type(rawget(mt, "json")) == "function" and type(rawget(mt, "raise_for_status")) == "function"
    and type(rawget(v, "status")) == "number" and type(rawget(v, "body")) == "string"
end
M.is_response = is_response

local function is_headers(v)
  local mt = metatable_of(v)
  return mt ~= nil and type(rawget(mt, "each")) == "function" and type(rawget(mt, "get_all")) == "function"
end

local render -- render(v, ctx, depth) -> text, width (width nil when text spans lines)

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    if ta == "number" then return true end
    if tb == "number" then return false end
    return ta < tb
  end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- Length of t's sequence 1..n, and its count of keys.
local function shape(t)
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  local count = 0
  for _ in next, t do count = count + 1 end
  return n, count
end

local function render_key(k, ctx)
  if type(k) == "string" then
    local text = '"' .. escape(cut(k, LIMITS.string)) .. '"'
    return ctx.paint("key", text) .. ": ", #text + 2
  end
  local text = type(k) == "number" and render_number(k) or (safe_tostring(k) or type(k))
  return "[" .. text .. "]: ", #text + 4
end

-- The entries a table shows: {key_text, key_width, value} in display order,
-- and how many were left out.
local function entries(t, ctx, is_array, count)
  local list, shown = {}, math.min(count, LIMITS.items)
  if is_array then
    for i = 1, shown do list[i] = { "", 0, rawget(t, i) } end
    return list, count - shown
  end
  local keys = {}
  if count <= LIMITS.sort then
    for k in next, t do keys[#keys + 1] = k end
    table.sort(keys, key_order)
  else
    for k in next, t do
      keys[#keys + 1] = k
      if #keys == shown then break end
    end
  end
  for i = 1, shown do
    local text, width = render_key(keys[i], ctx)
    list[i] = { text, width, rawget(t, keys[i]) }
  end
  return list, count - shown
end

local function header_entries(h, ctx)
  local list = {}
  local ok = pcall(function()
    for name, value in h:each() do
      if #list == LIMITS.items then break end
      local text, width = render_key(name, ctx)
      list[#list + 1] = { text, width, value }
    end
  end)
  return ok and list or {}, 0
end

-- Short one-line items of an array share lines, as many as fit.
local function packed(parts, widths, pad, width)
  local lines, line, used = {}, {}, #pad
  for i = 1, #parts do
    if #line > 0 and used + widths[i] + 2 > width then
      lines[#lines + 1] = table.concat(line, ", ")
      line, used = {}, #pad
    end
    line[#line + 1] = parts[i]
    used = used + widths[i] + 2
  end
  lines[#lines + 1] = table.concat(line, ", ")
  return table.concat(lines, ",\n" .. pad)
end

local function layout(parts, widths, multiline, brackets, depth, width)
  local open, close = brackets:sub(1, 1), brackets:sub(2, 2)
  local total = 2
  for i = 1, #widths do total = total + widths[i] + 2 end
  if not multiline and total + 2 * depth <= width then
    return open .. table.concat(parts, ", ") .. close, total
  end
  local pad = string.rep("  ", depth + 1)
  if open == "[" and not multiline then
    local widest = 0
    for i = 1, #widths do widest = math.max(widest, widths[i]) end
    if widest <= 24 then
      return open .. "\n" .. pad .. packed(parts, widths, pad, width) .. "\n" .. string.rep("  ", depth) .. close, nil
    end
  end
  return open .. "\n" .. pad .. table.concat(parts, ",\n" .. pad) .. "\n" .. string.rep("  ", depth) .. close, nil
end

-- A luassert matcher as written: match.is_number(), match.is_not_nil()...
-- (only when luassert is loaded: a spec is running).
local function is_matcher(v)
  local match = package.loaded["luassert.match"]
  return match ~= nil and type(v) == "table" and match.is_matcher(v)
end
M.is_matcher = is_matcher

local function matcher_text(v, ctx)
  if not is_matcher(v) then return nil end
  local args, argv = {}, v.arguments or { n = 0 }
  for i = 1, argv.n or #argv do args[i] = (render(argv[i], ctx, LIMITS.depth - 1)) end
  local text = string.format("match.%s%s(%s)", v.mod == false and "is_not_" or "is_", tostring(v.name),
    table.concat(args, ", "))
  return text, not text:find("\n") and #text or nil
end

local function render_table(t, ctx, depth)
  if ctx.ancestors[t] then return ctx.paint("note", "<cycle>"), 7 end
  local matcher, width = matcher_text(t, ctx)
  if matcher then return matcher, width end
  local mt = metatable_of(t)
  if mt and rawget(mt, "__tostring") then
    local s, why = safe_tostring(t)
    if s then return s, not s:find("\n") and #s or nil end
    local text = "<table: __tostring failed: " .. cut(why, 120):gsub("\n.*", "") .. ">"
    return ctx.paint("error", text), #text
  end
  local json = json_module()
  local n, count = shape(t)
  local headers = is_headers(t)
  if count == 0 and not headers then
    return (json and json.is_array and json.is_array(t)) and "[]" or "{}", 2
  end
  if depth >= LIMITS.depth then return ctx.paint("note", "{...}"), 5 end
  ctx.nodes = ctx.nodes + 1
  if ctx.nodes > LIMITS.nodes then return ctx.paint("note", "{...}"), 5 end
  local is_array = n == count and not headers
  local list, more
  if headers then list, more = header_entries(t, ctx) else list, more = entries(t, ctx, is_array, count) end
  ctx.ancestors[t] = true
  local parts, widths, multiline = {}, {}, false
  for i, e in ipairs(list) do
    local text, w = render(e[3], ctx, depth + 1)
    parts[i] = e[1] .. text
    widths[i] = w and (e[2] + w) or 0
    multiline = multiline or w == nil
  end
  ctx.ancestors[t] = nil
  if more > 0 then
    local note = "... (" .. more .. " more)"
    parts[#parts + 1] = ctx.paint("note", note)
    widths[#widths + 1] = #note
  end
  return layout(parts, widths, multiline, is_array and "[]" or "{}", depth, ctx.width or LIMITS.width)
end

function render(v, ctx, depth)
  local tv = type(v)
  if tv == "string" then return render_string(v, depth == 0 and LIMITS.top_string or LIMITS.string, ctx.paint) end
  if tv == "number" then
    local s = render_number(v)
    return ctx.paint("number", s), #s
  end
  if tv == "boolean" or tv == "nil" then return ctx.paint("literal", tostring(v)), #tostring(v) end
  if tv == "table" then
    if is_response(v) and depth > 0 then
      local s = safe_tostring(v) or "<response>"
      return s, #s
    end
    return render_table(v, ctx, depth)
  end
  if tv == "function" then
    local s = render_function(v)
    return ctx.paint("note", s), #s
  end
  if tv == "userdata" and tostring(v) == "userdata: NULL" then -- JSON's null (cjson.null, sonde.json.null)
    return ctx.paint("literal", "null"), 4
  end
  local s, why = safe_tostring(v)
  s = s or ("<" .. tv .. ": __tostring failed: " .. cut(why, 120):gsub("\n.*", "") .. ">")
  s = cut(s, LIMITS.string)
  return s, not s:find("\n") and #s or nil
end

-- Keeps the first LIMITS.lines lines of text, noting how many were cut.
local function bound_lines(text, paint)
  local count, pos = 0, 1
  while true do
    local nl = text:find("\n", pos, true)
    if not nl then return text end
    count = count + 1
    if count == LIMITS.lines then
      local rest = select(2, text:sub(nl):gsub("\n", "")) -- lines after the cut
      return text:sub(1, nl - 1) .. "\n" .. paint("note", "... (" .. rest .. " more lines)")
    end
    pos = nl + 1
  end
end

-- render(v[, color]) -> text: v as the REPL prints it.
function M.render(v, color)
  local paint = color and colored or plain
  local ctx = { paint = paint, ancestors = {}, nodes = 0 }
  return bound_lines((render(v, ctx, 0)), paint)
end

-- --------------------------------------------------------------- responses

local function status_kind(status)
  if status < 300 then return "ok" end
  if status < 400 then return "redirect" end
  return "fail"
end

-- Text bodies print as they are, minus what would drive the terminal.
local function show_text(body, paint)
  local shown = cut(body, LIMITS.body)
  local text = shown:gsub("\r?\n$", ""):gsub("[%c\127]", function(c)
    if c == "\n" or c == "\t" then return c end
    if c == "\r" then return "" end
    return hex_byte(c)
  end)
  if #shown < #body then text = text .. "\n" .. paint("note", "... (" .. byte_count(#body) .. " in all)") end
  return text
end

local function show_body(r, paint)
  local body = r.body
  if body == "" then return nil end
  local headers = rawget(r, "headers") or r.headers
  local ctype = (headers and headers["content-type"]) or ""
  if binary(body) then
    return paint("note", string.format("<binary body: %s%s; starts %s>", byte_count(#body),
      ctype ~= "" and (", " .. ctype) or "", hex_preview(body, 16)))
  end
  body = redact.text(body)
  local json = json_module() or require("sonde.json")
  if ctype:find("json") or body:find("^%s*[%[{]") then
    local ok, value = pcall(json.decode, body)
    if ok then return M.render(value, paint == colored) end
  end
  return show_text(body, paint)
end

-- A header's value as a report shows it (sonde.lib.redact): Authorization,
-- Set-Cookie... and secret values sent earlier are [redacted].
local function header_value(name, value)
  return redact.text(name .. ": " .. value):sub(#name + 3)
end

-- show_response(r[, color]) -> status line, headers, blank line, body,
-- with secrets redacted.
function M.show_response(r, color)
  local paint = color and colored or plain
  local lines = {}
  local ok = pcall(function()
    local status_line = r.status_line or ("HTTP " .. r.status)
    local elapsed = type(r.elapsed) == "number" and string.format("  (%.1f ms)", r.elapsed * 1000) or ""
    lines[1] = paint(status_kind(r.status), status_line) .. paint("note", elapsed)
    local count = 0
    for name, value in r.headers:each() do
      count = count + 1
      if count > LIMITS.items then
        lines[#lines + 1] = paint("note", "... (more headers)")
        break
      end
      lines[#lines + 1] = paint("header", name) .. ": " .. show_text(cut(header_value(name, value), 1000), plain)
    end
  end)
  if not ok then lines = { "HTTP " .. tostring(rawget(r, "status")) } end
  local body = show_body(r, paint)
  if body then
    lines[#lines + 1] = ""
    lines[#lines + 1] = body
  end
  return bound_lines(table.concat(lines, "\n"), paint)
end

-- show(v[, color]) -> how the REPL prints one result.
function M.show(v, color)
  if is_response(v) then return M.show_response(v, color) end
  return M.render(v, color)
end


M.colored = colored

-- line(v[, limit]) -> v on one line, cut at limit bytes (default 400).
function M.line(v, limit)
  local ctx = { paint = plain, ancestors = {}, nodes = 0, width = math.huge }
  local text = (render(v, ctx, 0)):gsub("\n%s*", " ")
  limit = limit or 400
  if #text > limit then text = cut(text, limit) .. "..." end
  return text
end

return M
