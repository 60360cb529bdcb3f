-- sonde.runner.reporters.json: one JSON document when the run ends, in the schema
-- of the seed API suite's --json:
--
--   {passed, total_duration_ms, total_requests,
--    sections: [{name, passed, duration_ms, requests, error}]}
--
-- plus, per section, file, line, status and tags, and at the top the counts
-- (and the seed of a shuffled run). A previous report feeds
-- --shard-durations.
local cjson = require("cjson")
local util = require("sonde.lib.report_util")

local M = {}
M.__index = M

function M.new(out, opts) return setmetatable({ out = out, opts = opts, sections = {} }, M) end

local function str(s)
  if s == nil then return "null" end
  return cjson.encode(util.utf8(s))
end

local function num(n)
  n = tonumber(n) or 0
  if n ~= n or n == math.huge or n == -math.huge then return "0" end
  if n == math.floor(n) and math.abs(n) < 2 ^ 53 then return string.format("%d", n) end
  return string.format("%.3f", n)
end

local function array(list, each)
  local parts = {}
  for i, v in ipairs(list or {}) do parts[i] = each(v) end
  return "[" .. table.concat(parts, ",") .. "]"
end

-- The encoded section of one result (strings and arrays written by hand, as
-- cjson 2.1 would write an empty list as {}).
function M:section(r)
  local failed = util.is_failed(r.status, self.opts)
  local error_text = failed and util.failure_message(r) or nil
  return table.concat({
    '{"name":', str(r.name), ',"passed":', tostring(not failed), ',"duration_ms":', num((r.duration or 0) * 1000),
    ',"requests":', num(r.requests), ',"error":', str(error_text), ',"file":', str(r.file), ',"line":', num(r.line),
    ',"status":', str(r.status), ',"tags":', array(r.tags, str),
    r.attempts and (',"attempts":' .. array(r.attempts, function(a) return str(a.message) end)) or "",
    r.iteration and (',"iteration":' .. num(r.iteration)) or "", "}" })
end

function M:test_end(r)
  self.sections[#self.sections + 1] = { text = self:section(r), ms = (r.duration or 0) * 1000,
    requests = tonumber(r.requests) or 0 }
end

M.load_error = M.test_end

function M:suite_end(s)
  local total_ms, requests, texts = 0, 0, {}
  for i, sec in ipairs(self.sections) do
    total_ms, requests, texts[i] = total_ms + sec.ms, requests + sec.requests, sec.text
  end
  local counts = string.format('{"passed":%d,"failed":%d,"failures":%d,"errors":%d,"skipped":%d,"flaky":%d}',
    s.passed, s.failed, s.failures, s.errors, s.skipped, s.flaky)
  self.out:write('{"passed":', tostring(s.failed == 0 and s.load_errors == 0 and not s.interrupted),
    ',"total_duration_ms":', num(total_ms), ',"total_requests":', num(requests), ',"counts":', counts,
    s.seed and (',"seed":' .. num(s.seed)) or "", ',"sections":[', table.concat(texts, ","), "]}\n")
end

return M
