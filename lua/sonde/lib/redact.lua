-- sonde.lib.redact: secrets stay out of what sonde prints.
--
-- text(s) is the one function every printer of requests, responses and
-- results goes through (the runner redacts each result before any
-- reporter sees it: human, TAP, JUnit, JSON, the journal, --jobs workers;
-- the REPL redacts the responses it prints; `sonde run` the error it
-- prints). Two kinds of rule:
--
--  * by name: the value of a header line ("Authorization: ...", also as
--    "> Name: ..." in an exchange), of a query or form pair ("token=..."),
--    of a JSON string member ("password": "...") and the password of a
--    URL's user info, when the name is Authorization, Proxy-Authorization,
--    Cookie or Set-Cookie, or contains api-key, token, secret, password or
--    session (case-insensitive, "_" as "-"), or a word given to
--    add_names (http.redact{...});
--  * by value: every secret value seen so far (those of the requests sonde
--    sent, see note_request, and those the name rules found) wherever it
--    reappears: a response body echoing a token, a test's captured output,
--    an error message holding a URL. Values shorter than MIN_VALUE bytes
--    are not searched for (they would blank out unrelated text); the named
--    field itself is always redacted.
local M = {}

local MARK = "[redacted]"
M.MARK = MARK

local MIN_VALUE = 6 -- bytes
local MAX_KNOWN = 256 -- values remembered (the latest), bounding the cost of a report

-- ------------------------------------------------------------- names

local EXACT = { authorization = true, ["proxy-authorization"] = true, cookie = true, ["set-cookie"] = true }
local words = { "api-key", "apikey", "token", "secret", "password", "session" }

local verdicts, verdict_count = {}, 0 -- name -> is it secret, for names seen before

local function judge(name)
  local key = name:lower():gsub("_", "-")
  if EXACT[key] then return true end
  for i = 1, #words do
    if key:find(words[i], 1, true) then return true end
  end
  return false
end

-- is_secret(name) -> whether a value under that name is redacted.
function M.is_secret(name)
  local v = verdicts[name]
  if v == nil then
    if verdict_count >= 4096 then verdicts, verdict_count = {}, 0 end -- names from ever new bodies
    v = judge(name)
    verdicts[name], verdict_count = v, verdict_count + 1
  end
  return v
end

-- add_names{"x-my-header", ...}: values under names containing any of these
-- (case-insensitive) are redacted from now on.
function M.add_names(list, level)
  level = (level or 1) + 1
  if type(list) ~= "table" then error("http.redact: expected a list of names such as {\"x-my-header\"}, got a "
    .. type(list), level) end
  for i, name in ipairs(list) do
    if type(name) ~= "string" or name == "" then
      error(string.format("http.redact: name %d must be a non-empty string, got %s", i, type(name) == "string"
        and "an empty one" or ("a " .. type(name))), level)
    end
    words[#words + 1] = name:lower():gsub("_", "-")
  end
  verdicts, verdict_count = {}, 0
end

-- ------------------------------------------------------------ values

local known, known_set, next_slot = {}, {}, 1 -- a ring of MAX_KNOWN values
local by_length -- known, longest first; nil when it must be sorted again

-- Whether v is the mark already (or the mark cut short by a pattern that
-- stops at "]"): redacting twice changes nothing.
local function marked(v) return v:sub(1, #MARK - 1) == MARK:sub(1, -2) end

local function note(value)
  if value == nil or #value < MIN_VALUE or known_set[value] or marked(value) then return end
  local old = known[next_slot]
  if old then known_set[old] = nil end
  known[next_slot], known_set[value] = value, true
  next_slot = next_slot % MAX_KNOWN + 1
  by_length = nil
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_VALUE = {}
for i = 1, #B64 do B64_VALUE[B64:byte(i)] = i - 1 end

-- base64 text -> its bytes, or nil when it is not base64.
local function unbase64(s)
  s = s:gsub("=+$", "")
  if s:find("[^%w+/]") then return nil end
  local out, bits, n = {}, 0, 0
  for i = 1, #s do
    bits, n = bits * 64 + B64_VALUE[s:byte(i)], n + 6
    if n >= 8 then
      n = n - 8
      local b = math.floor(bits / 2 ^ n)
      out[#out + 1] = string.char(b)
      bits = bits - b * 2 ^ n
    end
  end
  return table.concat(out)
end

-- bytes -> base64 text
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    for k = 1, 4 do
      local d = math.floor(n / 64 ^ (4 - k)) % 64
      out[#out + 1] = (k == 3 and not b or k == 4 and not c) and "=" or B64:sub(d + 1, d + 1)
    end
  end
  return table.concat(out)
end

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- a query's or form's name or value: + is a space
local function unescape_query(s) return percent_decode((s:gsub("%+", " "))) end

-- A secret header's value and the parts of it that can reappear alone:
-- the credentials after an auth scheme (and, for Basic, the decoded
-- "user:password" and password), each cookie's value.
local function note_header(name, value)
  note(value)
  local scheme, credentials = value:match("^(%a[%w-]*)%s+(%S+)$")
  if credentials then
    note(credentials)
    local pair = scheme:lower() == "basic" and unbase64(credentials)
    if pair then
      note(pair)
      note(pair:match(":(.*)$"))
    end
  end
  local lname = name:lower()
  if lname == "cookie" then
    for v in value:gmatch("[^;=%s]+=([^;]*)") do note(v) end
  elseif lname == "set-cookie" then
    note(value:match("^[^;=%s]+=([^;]*)"))
  end
end

local function note_pair(value)
  note(value)
  note(unescape_query(value))
end

-- user:password in a URL, which curl sends as Basic credentials.
local function note_userinfo(userinfo)
  local password = userinfo:match(":(.*)$")
  if not password then return end
  note(password)
  note(percent_decode(password))
  note(base64(percent_decode(userinfo)))
end

-- note_request(url, header_lines): the secret values of a request sonde
-- sends (its "Name: value" lines and its URL), to be redacted wherever they
-- reappear. Cheap when there is nothing to note: most requests carry no
-- query and no header.
function M.note_request(url, header_lines)
  for i = 1, #header_lines do
    local name, value = header_lines[i]:match("^([^:]+):%s*(.-)%s*$")
    if name and M.is_secret(name) then note_header(name, value) end
  end
  if url:find("?", 1, true) or url:find("@", 1, true) then -- plain finds: compiled, where a class is not
    local userinfo = url:match("^%a[%w+.-]*://([^/?#]*)@")
    if userinfo then note_userinfo(userinfo) end
    local query = url:match("%?([^#]*)")
    for name, value in (query or ""):gmatch("([^&=]+)=([^&]*)") do
      if M.is_secret(unescape_query(name)) then note_pair(value) end
    end
  end
end

-- ------------------------------------------------------ the name rules

-- (names of letters, digits, - and _ only: "session_spec.lua:12: ..." is
-- a message, not a header)
local HEADER_LINE = "^([%s<>]*)([%w_-]+)(:[ \t]*)(.-)([ \t\r]*)$"

local function header_line(line)
  local lead, name, colon, value, trail = line:match(HEADER_LINE)
  if not name or value == "" or marked(value) or not M.is_secret(name) then return line end
  note_header(name, value)
  return lead .. name .. colon .. MARK .. trail
end

local function pair(name, value)
  if marked(value) or not M.is_secret(unescape_query(name)) then return nil end
  note_pair(value)
  return name .. "=" .. MARK
end

local function userinfo(prefix, info)
  if not info:find(":", 1, true) then return nil end
  note_userinfo(info)
  return prefix .. info:gsub(":.*", ":" .. MARK) .. "@"
end

-- The index of the quote closing a JSON string whose text starts at i.
local function closing_quote(s, i)
  while true do
    local q = s:find('[\\"]', i)
    if not q or s:byte(q) == 34 then return q end
    i = q + 2
  end
end

local function json_unescape(s)
  return (s:gsub("\\([\"\\/])", "%1"))
end

-- "name": "value" with a secret name -> "name": "[redacted]"
local function json_members(s)
  local out, pos = {}, 1
  while true do
    local _, open, name = s:find('"([^"\\\n]+)"%s*:%s*"', pos)
    if not open then break end
    local close = closing_quote(s, open + 1)
    if not close then break end
    local value = s:sub(open + 1, close - 1)
    if M.is_secret(name) and not marked(value) then
      note(value)
      note(json_unescape(value))
      out[#out + 1] = s:sub(pos, open) .. MARK
      pos = close
    else
      out[#out + 1] = s:sub(pos, close)
      pos = close + 1
    end
  end
  if pos == 1 then return s end
  out[#out + 1] = s:sub(pos)
  return table.concat(out)
end

local PAIR = "([%w%-_.%%]+)=([^%s&#\"'<>;,)%]}]+)"
local USERINFO = "(%a[%w+.-]*://)([^%s/?#@\"'<>]+)@"

local function by_name(s)
  if s:find(":", 1, true) then s = s:gsub("[^\n]+", header_line) end
  if s:find("=", 1, true) then s = s:gsub(PAIR, pair) end
  if s:find("@", 1, true) then s = s:gsub(USERINFO, userinfo) end
  if s:find('"', 1, true) then s = json_members(s) end
  return s
end

-- ----------------------------------------------------- the value rule

local function replace_plain(s, value)
  local out, pos = {}, 1
  while true do
    local i, j = s:find(value, pos, true)
    if not i then break end
    out[#out + 1] = s:sub(pos, i - 1)
    out[#out + 1] = MARK
    pos = j + 1
  end
  out[#out + 1] = s:sub(pos)
  return table.concat(out)
end

local function by_value(s)
  if known[1] == nil then return s end
  if not by_length then
    by_length = {}
    for _, v in ipairs(known) do by_length[#by_length + 1] = v end
    table.sort(by_length, function(a, b) return #a > #b end) -- a value inside a longer one goes after it
  end
  for i = 1, #by_length do
    if s:find(by_length[i], 1, true) then s = replace_plain(s, by_length[i]) end
  end
  return s
end

-- --------------------------------------------------------------- text

-- text(s) -> s with every secret redacted (see the top of this file).
function M.text(s)
  if type(s) ~= "string" then return s end
  return by_value(by_name(s))
end

local FIELDS = { "message", "traceback", "last_exchange", "output" }

-- result(r): a spec result's text redacted in place, its attempts' too.
-- Names first in every field, so that a secret found by name in one (a
-- token in the printed output) is redacted by value in all.
function M.result(r)
  local texts = { r }
  for _, a in ipairs(r.attempts or {}) do texts[#texts + 1] = a end
  for _, t in ipairs(texts) do
    for _, f in ipairs(FIELDS) do
      if type(t[f]) == "string" then t[f] = by_name(t[f]) end
    end
  end
  for _, t in ipairs(texts) do
    for _, f in ipairs(FIELDS) do
      if type(t[f]) == "string" then t[f] = by_value(t[f]) end
    end
  end
end

return M
