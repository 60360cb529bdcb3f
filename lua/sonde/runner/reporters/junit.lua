-- sonde.runner.reporters.junit: JUnit XML, written when the run ends.
--
-- One <testsuite> per spec file; <testcase classname name time file line>
-- with <failure>, <error> (message, traceback, last HTTP exchange) or
-- <skipped>; captured output in <system-out>; failed attempts of a retried
-- test as Surefire's <flakyFailure> (passed later) or <rerunFailure> (failed
-- every time). A file that did not load is a suite with one errored case
-- named after the file. Results arrive redacted (sonde.lib.redact).
local util = require("sonde.lib.report_util")

local M = {}
M.__index = M

local xml = util.xml

function M.new(out, opts)
  return setmetatable({ out = out, opts = opts, suites = {}, by_name = {} }, M)
end

function M:suite_for(name)
  local s = self.by_name[name]
  if not s then
    s = { name = name, cases = {}, tests = 0, failures = 0, errors = 0, skipped = 0, time = 0,
      timestamp = os.date("!%Y-%m-%dT%H:%M:%S") }
    self.by_name[name] = s
    self.suites[#self.suites + 1] = s
  end
  return s
end

-- A suite appears with its first result: files whose tests were all
-- filtered out leave no empty suite behind.
function M:file_start(f) self.current = f.name end
function M:file_end() self.current = nil end

local function kind_of(r, opts)
  if r.status == "pending" or r.status == "skip" then return "skipped" end
  if r.status == "fail" or (r.status == "flaky" and opts.fail_on_flaky) then return "failure" end
  if r.status == "error" then return "error" end
  return nil
end

function M:add(suite, r)
  local kind = kind_of(r, self.opts)
  suite.tests = suite.tests + 1
  suite.time = suite.time + (r.duration or 0)
  if kind == "failure" then suite.failures = suite.failures + 1 end
  if kind == "error" then suite.errors = suite.errors + 1 end
  if kind == "skipped" then suite.skipped = suite.skipped + 1 end
  suite.cases[#suite.cases + 1] = { r = r, kind = kind }
end

function M:test_end(r) self:add(self:suite_for(self.current or r.file), r) end
M.load_error = M.test_end

local function classname(file)
  return (tostring(file):gsub("%.lua$", ""):gsub("^%./", ""):gsub("/", "."))
end

local function details(r)
  local text = r.message or ""
  if r.traceback and r.traceback ~= "" then text = text .. "\n" .. r.traceback end
  if r.last_exchange then text = text .. "\nlast HTTP exchange:\n" .. r.last_exchange end
  return text
end

local function attempt_elements(r, tag)
  local parts = {}
  for _, a in ipairs(r.attempts or {}) do
    parts[#parts + 1] = string.format('      <%s message="%s" type="%s"><stackTrace>%s</stackTrace>', tag,
      xml(util.first_line(a.message)), xml(a.status), xml(details(a)))
    if a.output and a.output ~= "" then parts[#parts + 1] = "<system-out>" .. xml(a.output) .. "</system-out>" end
    parts[#parts + 1] = "</" .. tag .. ">\n"
  end
  return table.concat(parts)
end

local function properties(r)
  local tags = r.tags or {}
  if #tags == 0 and (tonumber(r.requests) or 0) == 0 then return "" end
  return string.format('      <properties><property name="requests" value="%d"/><property name="tags" value="%s"/>'
    .. "</properties>\n", tonumber(r.requests) or 0, xml(table.concat(tags, ",")))
end

function M:write_case(c)
  local r, out = c.r, self.out
  out:write(string.format('    <testcase classname="%s" name="%s" time="%.6f" file="%s" line="%d">\n',
    xml(classname(r.file)), xml(r.name), r.duration or 0, xml(r.file), tonumber(r.line) or 0))
  out:write(properties(r))
  if c.kind == "skipped" then
    out:write(string.format('      <skipped message="%s"/>\n', xml(r.message or "pending")))
  elseif c.kind then
    local message = util.failure_message(r)
    out:write(string.format('      <%s message="%s" type="%s">%s</%s>\n', c.kind, xml(util.first_line(message)),
      xml(r.status), xml(details(r)), c.kind))
  end
  if r.attempts then out:write(attempt_elements(r, r.status == "flaky" and "flakyFailure" or "rerunFailure")) end
  if r.output and r.output ~= "" then
    out:write("      <system-out>", xml(r.output), "</system-out>\n")
  end
  out:write("    </testcase>\n")
end

function M:suite_end(s)
  local out, totals = self.out, { tests = 0, failures = 0, errors = 0, skipped = 0, time = 0 }
  for _, suite in ipairs(self.suites) do
    for k in pairs(totals) do totals[k] = totals[k] + suite[k] end
  end
  out:write('<?xml version="1.0" encoding="UTF-8"?>\n')
  out:write(string.format('<testsuites name="sonde test" tests="%d" failures="%d" errors="%d" skipped="%d" '
    .. 'time="%.6f">\n', totals.tests, totals.failures, totals.errors, totals.skipped, s.duration))
  for _, suite in ipairs(self.suites) do
    out:write(string.format('  <testsuite name="%s" tests="%d" failures="%d" errors="%d" skipped="%d" '
      .. 'time="%.6f" timestamp="%s" file="%s">\n', xml(suite.name), suite.tests, suite.failures, suite.errors,
      suite.skipped, suite.time, suite.timestamp, xml(suite.name)))
    for _, c in ipairs(suite.cases) do self:write_case(c) end
    out:write("  </testsuite>\n")
  end
  out:write("</testsuites>\n")
end

return M
