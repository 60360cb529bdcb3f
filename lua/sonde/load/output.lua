-- sonde.load.output: `--out json=FILE`, k6's JSON output: one object per
-- line, a "Metric" line when a metric gets its first sample, a "Point"
-- line per sample ({time, value, tags}), and at the end a "Summary" line
-- (sonde's: what `sonde load merge` reads back).
local cjson = require("cjson")
local json = require("sonde.json")
local task = require("sonde.task")

local M = {}

local Writer = {}
Writer.__index = Writer

local FLUSH_LINES = 2000

-- open(path) -> writer | nil, message
function M.open(path)
  local f, err = io.open(path, "w")
  if not f then return nil, "cannot write " .. path .. ": " .. tostring(err) end
  return setmetatable({ file = f, path = path, lines = {}, n = 0, declared = {}, second = -1, stamp = "" }, Writer)
end

function Writer:write(line)
  local n = self.n + 1
  self.lines[n], self.n = line, n
  if n >= FLUSH_LINES then self:flush() end
end

function Writer:flush()
  if self.n == 0 then return end
  self.file:write(table.concat(self.lines, "\n", 1, self.n), "\n")
  self.lines, self.n = {}, 0
end

-- ISO 8601 time of a point, in UTC to the microsecond; the date part is
-- formatted once a second.
function Writer:time(t)
  local s = math.floor(t)
  if s ~= self.second then
    self.second, self.stamp = s, os.date("!%Y-%m-%dT%H:%M:%S", s)
  end
  return string.format("%s.%06dZ", self.stamp, math.floor((t - s) * 1e6))
end

local function flat_tags(tags)
  local out, mt = {}, getmetatable(tags)
  if mt and mt.__index then out = flat_tags(mt.__index) end
  for k, v in pairs(tags) do out[k] = tostring(v) end
  return out
end

local function declare(self, m)
  self.declared[m] = true
  local subs = {}
  for _, s in ipairs(m.subs or {}) do subs[#subs + 1] = s.key end
  self:write(json.encode({ type = "Metric", metric = m.name, data = { name = m.name, type = m.type,
    contains = m.contains, submetrics = json.array(subs) } }))
end

-- point(metric, value, tags): one sample
function Writer:point(m, v, tags)
  if not self.declared[m] then declare(self, m) end
  if v == true then v = 1 elseif v == false then v = 0 end
  self:write(string.format('{"type":"Point","metric":"%s","data":{"time":"%s","value":%.15g,"tags":%s}}', m.name,
    self:time(task.time()), v, cjson.encode(flat_tags(tags))))
end

-- summary(data): the last line
function Writer:summary(data)
  self:write(json.encode({ type = "Summary", data = data }))
end

function Writer:close()
  self:flush()
  self.file:close()
end

-- read_summary(path) -> the data of the file's Summary line | nil, message
function M.read_summary(path)
  local f, err = io.open(path, "r")
  if not f then return nil, "cannot read " .. path .. ": " .. tostring(err) end
  local found
  for line in f:lines() do
    if line:find('^{"type":"Summary"') or line:find('"type":"Summary"', 1, true) then found = line end
  end
  f:close()
  if not found then
    return nil, path .. ": no Summary line (was it written by `sonde load --out json=" .. path .. "` that finished?)"
  end
  local ok, v = pcall(json.decode, found)
  if not ok or type(v) ~= "table" or v.type ~= "Summary" then
    return nil, path .. ": its Summary line is no JSON object: " .. tostring(v)
  end
  return v.data
end

return M
