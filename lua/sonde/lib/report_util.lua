-- sonde.lib.report_util: text helpers the reporters share (UTF-8 clean-up, XML
-- escaping, first lines, counts).
local M = {}

local byte, concat = string.byte, table.concat

-- utf8_len(s, i) -> length of the valid UTF-8 character starting at s[i],
-- or nil (the one UTF-8 check: reports, sonde.lib.pretty).
local function utf8_len(s, i)
  local c = byte(s, i)
  local n, min
  if c < 0x80 then return 1 end
  if c >= 0xC2 and c <= 0xDF then n, min = 2, 0x80
  elseif c >= 0xE0 and c <= 0xEF then n, min = 3, 0x800
  elseif c >= 0xF0 and c <= 0xF4 then n, min = 4, 0x10000
  else return nil end
  local cp = c % (2 ^ (7 - n))
  for k = 1, n - 1 do
    local cc = byte(s, i + k)
    if not cc or cc < 0x80 or cc > 0xBF then return nil end
    cp = cp * 64 + cc % 64
  end
  if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return nil end
  return n
end
M.utf8_len = utf8_len

-- utf8(s) -> s with every byte that is not valid UTF-8 written as \xNN, so
-- JSON and XML consumers never choke on what a test printed.
function M.utf8(s)
  s = tostring(s)
  if not s:find("[\128-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local len = utf8_len(s, i)
    if len then
      out[#out + 1] = s:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = string.format("\\x%02X", byte(s, i))
      i = i + 1
    end
  end
  return concat(out)
end

local XML_ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }

-- xml(s) -> text safe inside an XML attribute or element: escaped, valid
-- UTF-8, and without the control characters XML 1.0 forbids.
function M.xml(s)
  s = M.utf8(s)
  s = s:gsub("[%z\1-\8\11\12\14-\31\127]", function(c) return string.format("\\x%02X", byte(c)) end)
  return (s:gsub("[&<>\"']", XML_ESCAPES))
end

-- plural(n, word) -> "1 failure", "2 failures"
function M.plural(n, word)
  return n .. " " .. word .. (n == 1 and "" or "s")
end

function M.first_line(s)
  if s == nil then return "" end
  return (tostring(s):match("^[^\n]*"))
end

-- is_failed(status, opts): whether a status fails the run.
function M.is_failed(status, opts)
  return status == "fail" or status == "error" or (status == "flaky" and opts and opts.fail_on_flaky) or false
end

-- failure_message(r): what a failed result says; a flaky one (failed under
-- --fail-on-flaky) has no message of its own.
function M.failure_message(r)
  return r.message or (r.status == "flaky" and "flaky: passed only on a retry" or nil)
end

-- width(s) -> the columns s takes on a terminal, counted as UTF-8
-- characters (the one width helper: reporters' tables, sonde.lib.pretty).
function M.width(s)
  return #s:gsub("[\128-\191]", "")
end

-- pad(s, width): s cut or padded to width display columns.
function M.pad(s, width, right)
  local len = M.width(s)
  if len > width then
    local cut, count = {}, 0
    for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
      if count == width - 1 then break end
      cut[#cut + 1] = ch
      count = count + 1
    end
    return concat(cut) .. "…"
  end
  local fill = string.rep(" ", width - len)
  return right and (fill .. s) or (s .. fill)
end

-- cut(s, width): s cut to width display columns, never padded.
function M.cut(s, width)
  if M.width(s) <= width then return s end
  return M.pad(s, width)
end

return M
