-- sonde.livecheck.redis: the LiveCheck bus on Redis Streams, so that
-- `sonde live` is one of N processes on many hosts (sonde.livecheck.bus
-- describes the interface). For an app with id A:
--
--   livecheck:A:signals   a stream: XADD ... * case C signal S key K value JSON;
--                         every process reads all of it (XREAD BLOCK from the
--                         last id it saw, on a connection of its own), so a
--                         signal sent anywhere resolves the wait that owns
--                         its key, wherever that runs
--   livecheck:A:case:C    a hash per case: state, counters, last failure,
--                         histories; sonde.livecheck.state's transitions run
--                         on it in the server (EVALSHA), atomically
--   livecheck:A:reports   a stream of every process's reports
--   livecheck:A           a hash: reports (how many were sent)
--   livecheck:A:cases     a set of the case names
--
-- When Redis goes away, the reader reconnects with backoff and reads on
-- from its last id; sends and state changes wait for it (up to `timeout`).
local task = require("sonde.task")
local json = require("sonde.json")
local redis = require("sonde.redis")
local options = require("sonde.lib.options")
local livecheck_state = require("sonde.livecheck.state")

local M = {}

local Bus = {}
Bus.__index = Bus

-- The transition script: the state machine's own source, then reading the
-- hash into a table, the transition, and writing it back.
local SCRIPT = "local T = (function()\n" .. livecheck_state.SOURCE .. "\nend)()\n" .. [==[
local NUMBERS, TABLES = {}, {}
for _, k in ipairs(cjson.decode(ARGV[3])) do NUMBERS[k] = true end
for _, k in ipairs(cjson.decode(ARGV[4])) do TABLES[k] = true end
local s = { status = "INIT", consecutive_failures = 0, total_failures = 0, total_by_state = {},
  runtime_history = {}, latency_history = {}, frequency_history = {} }
local raw = redis.call("HGETALL", KEYS[1])
for i = 1, #raw, 2 do
  local k, v = raw[i], raw[i + 1]
  if TABLES[k] then s[k] = cjson.decode(v) elseif NUMBERS[k] then s[k] = tonumber(v) else s[k] = v end
end
local report = T[ARGV[1]](s, cjson.decode(ARGV[2]))
local flat = {}
for k, v in pairs(s) do
  flat[#flat + 1] = k
  if TABLES[k] then flat[#flat + 1] = cjson.encode(v) else flat[#flat + 1] = tostring(v) end
end
redis.call("HSET", KEYS[1], unpack(flat))
return cjson.encode({ r = report or false, s = s })
]==]
local NUMBERS_JSON, TABLES_JSON = json.encode(livecheck_state.NUMBERS), json.encode(livecheck_state.TABLES)

local NUMBER_FIELD, TABLE_FIELD = {}, {}
for _, k in ipairs(livecheck_state.NUMBERS) do NUMBER_FIELD[k] = true end
for _, k in ipairs(livecheck_state.TABLES) do TABLE_FIELD[k] = true end

-- A case hash's fields as the state they stand for.
local function decode_hash(flat)
  local s = livecheck_state.fresh()
  for i = 1, #flat, 2 do
    local k, v = flat[i], flat[i + 1]
    if TABLE_FIELD[k] then
      local ok, t = pcall(json.decode, v)
      if ok and type(t) == "table" then s[k] = t end
    elseif NUMBER_FIELD[k] then
      s[k] = tonumber(v)
    elseif k == "status" then
      s[k] = v
    end
  end
  return s
end

-- The state's fields go onto the case, which is this process's mirror.
local function mirror(case, s)
  case.status = s.status or "INIT"
  for _, k in ipairs(livecheck_state.NUMBERS) do case[k] = tonumber(s[k]) end
  case.consecutive_failures, case.total_failures = case.consecutive_failures or 0, case.total_failures or 0
  for _, k in ipairs(livecheck_state.TABLES) do
    local v = s[k]
    if v == json.null then v = nil end
    if k ~= "last_failure" then v = v or {} end
    case[k] = v
  end
end

local BUS_OPTIONS = { url = "string", maxlen = "count", timeout = "seconds" }

-- new(url | {url=, maxlen=10000, timeout=30}, app, level) -> the bus of
-- app; nothing is connected before start() or the first use. A malformed
-- URL raises `level` frames up.
function M.new(spec, app, level)
  level = level + 1
  local opts = type(spec) == "string" and { url = spec } or spec
  options.check("livecheck.app: bus", opts, BUS_OPTIONS, level)
  local parsed, why = redis.parse_url(opts.url)
  if not parsed then error("livecheck.app: bus: " .. why, level) end
  local prefix = "livecheck:" .. app.id
  return setmetatable({ url = opts.url, shown_url = redis.redact(opts.url), maxlen = opts.maxlen or 10000,
    timeout = opts.timeout or parsed.timeout or 30, app = app, prefix = prefix, signals_key = prefix .. ":signals",
    reports_key = prefix .. ":reports", cases_key = prefix .. ":cases", subscribers = {}, last_id = "0",
    malformed = 0 }, Bus)
end

function Bus:case_key(name) return self.prefix .. ":case:" .. name end

local function detail(err)
  if redis.is_error(err) then return err.command .. ": " .. err.detail end
  return task.describe(err)
end

-- client() -> the connection, made at first use: an unreachable server or
-- a refused password is one line naming the bus.
function Bus:client()
  if self.r then return self.r end
  local ok, r = pcall(redis.connect, { url = self.url, timeout = self.timeout })
  if not ok then
    if task.is_cancelled(r) then error(r, 0) end
    local why = redis.is_error(r) and r.detail or task.describe(r)
    error("livecheck: bus " .. self.shown_url .. ": " .. why, 0)
  end
  self.r = r
  return r
end

-- start(app): connects, lists the cases, and reads the signal stream from
-- its start (so signals a process missed while it was not running, for
-- tests not yet expired, are kept too).
function Bus:start(app)
  local r = self:client()
  if #app.case_order > 0 then r:command("SADD", self.cases_key, unpack(app.case_order)) end
  app:spawn(function() self:read_signals() end)
end

function Bus:stop()
  if self.r then self.r:close() end
  self.r = nil
end

-- ------------------------------------------------------------ signals

function Bus:subscribe(deliver) self.subscribers[#self.subscribers + 1] = deliver end

-- publish(event): XADD to the signal stream; a send whose connection
-- dropped before the reply is sent again (a signal read twice resolves the
-- same wait once).
function Bus:publish(event)
  local ok, value = pcall(json.encode, event.value == nil and json.null or event.value)
  if not ok then error("livecheck: signal " .. tostring(event.signal) .. ": its value cannot be sent as JSON: " ..
    task.describe(value), 0) end
  local args = { "XADD", self.signals_key, "MAXLEN", "~", self.maxlen, "*", "case", event.case, "signal",
    event.signal, "key", tostring(event.key), "value", value }
  local r = self:client()
  for attempt = 1, 2 do
    local sent, err = pcall(r.run, r, args)
    if sent then return end
    if attempt == 2 or not (redis.is_error(err) and err.kind == "closed") then
      error("livecheck: signal " .. event.signal .. " not sent on bus " .. self.shown_url .. ": " .. detail(err), 0)
    end
  end
end

-- A stream entry another writer made may lack fields: it is logged (its
-- first ten, then once that the rest are not) and skipped.
function Bus:malformed_entry(id, why)
  self.malformed = self.malformed + 1
  if self.malformed <= 10 then
    self.app:log(string.format("bus: skipped entry %s of %s: %s", id, self.signals_key, why))
  elseif self.malformed == 11 then
    self.app:log("bus: more malformed entries in " .. self.signals_key .. " are skipped without a line")
  end
end

-- The event an entry's fields stand for, or nil and why not.
local function event_of(id, f)
  for _, name in ipairs({ "case", "signal", "key" }) do
    if type(f[name]) ~= "string" or f[name] == "" then return nil, "missing field '" .. name .. "'" end
  end
  local value
  if f.value ~= nil then
    local ok, v = pcall(json.decode, f.value)
    if not ok then return nil, "the value is not JSON: " .. tostring(f.value):sub(1, 80) end
    if v ~= json.null then value = v end
  end
  return { case = f.case, signal = f.signal, key = f.key, value = value,
    at = (tonumber(id:match("^(%d+)")) or 0) / 1000,
    id = id }
end

function Bus:take(id, fields)
  self.last_id = id
  local event, why = event_of(id, fields)
  if not event then return self:malformed_entry(id, why) end
  for _, deliver in ipairs(self.subscribers) do deliver(event) end
end

-- follow(key, after, on_entry): calls on_entry(id, fields) for each entry
-- of the stream after id `after`, forever: XREAD BLOCK on a connection of
-- its own that does not hold virtual time. A lost server is one line when
-- it goes and one when reading resumes, from the last id seen.
function Bus:follow(key, after, on_entry)
  local r = self:client()
  local failures = 0
  while true do
    local ok, res = pcall(r.run, r, { "XREAD", "COUNT", 1000, "BLOCK", 0, "STREAMS", key, after }, false)
    if ok then
      failures = 0
      if self.lost then
        self.lost = nil
        self.app:log("bus: reading " .. key .. " again, after " .. after)
      end
      for _, stream in ipairs(res or {}) do
        for _, entry in ipairs(stream[2]) do
          after = entry[1]
          local fields = {}
          for i = 1, #entry[2], 2 do fields[entry[2][i]] = entry[2][i + 1] end
          on_entry(after, fields)
        end
      end
    else
      if r.closed then return end -- the bus stopped
      if not redis.is_error(res) then error(res, 0) end -- cancelled: the app stops
      failures = failures + 1
      if not self.lost then
        self.lost = detail(res)
        self.app:log("bus: lost " .. self.shown_url .. " (" .. self.lost .. "); reconnecting, then reading " .. key ..
          " after " .. after)
      end
      -- reconnecting paces itself; an error reply (the key holds another
      -- type) is retried with a backoff of its own
      if res.kind == "redis" then task.sleep(math.min(0.05 * 2 ^ failures, 2)) end
    end
  end
end

function Bus:read_signals()
  self:follow(self.signals_key, self.last_id, function(id, fields) self:take(id, fields) end)
end

-- ------------------------------------------------------------ state

-- transition(case, op, p) -> the suite report, or nil: runs on the case's
-- hash in the server and mirrors the result into the case. When Redis
-- cannot be reached within the timeout, the transition runs on the mirror
-- and says so.
function Bus:transition(case, op, p)
  local ok, out = pcall(function()
    local r = self:client()
    return r:eval(SCRIPT, { self:case_key(case.name) }, { op, json.encode(p), NUMBERS_JSON, TABLES_JSON })
  end)
  if not ok then
    if task.is_cancelled(out) then error(out, 0) end
    self.app:log("bus: case " .. case.name .. "'s " .. op .. " kept in this process only: " .. detail(out))
    return livecheck_state.apply(case, op, p)
  end
  local result = json.decode(out)
  mirror(case, result.s)
  if result.r == false then return nil end
  return result.r
end

-- refresh(app) -> {reports=}: every case's fields as the deployment has
-- them, or nil (the mirrors stay) when Redis cannot be reached.
function Bus:refresh(app)
  local ok, res = pcall(function()
    return self:client():pipeline(function(p)
      for _, name in ipairs(app.case_order) do p:command("HGETALL", self:case_key(name)) end
      p:command("HGET", self.prefix, "reports")
    end)
  end)
  if not ok then
    if task.is_cancelled(res) then error(res, 0) end
    return nil
  end
  for i, name in ipairs(app.case_order) do mirror(app.cases[name], decode_hash(res[i])) end
  return { reports = tonumber(res[#app.case_order + 1]) or 0 }
end

-- ------------------------------------------------------------ reports

function Bus:report(report)
  self:client():pipeline(function(p)
    p:xadd(self.reports_key, "*", "report", json.encode(report), { maxlen = self.maxlen })
    p:command("HINCRBY", self.prefix, "reports", 1)
  end)
end

-- recent_reports(n) -> the last n reports of every process, oldest first
function Bus:recent_reports(n)
  local entries = self:client():xrevrange(self.reports_key, "+", "-", n)
  local out = {}
  for i = #entries, 1, -1 do
    local ok, report = pcall(json.decode, entries[i].fields.report or "")
    if ok and type(report) == "table" then
      report.id = entries[i].id
      out[#out + 1] = report
    end
  end
  return out
end

local function median(history) -- JSON's null where there is none
  local m = livecheck_state.median(history)
  if m == nil then return json.null end
  return m
end

-- deployment_status() -> {id=, cases={[name]=view}, reports=}: the shared
-- state of every case the app's processes listed, for `sonde live --reports`.
function Bus:deployment_status()
  local r = self:client()
  local names = r:command("SMEMBERS", self.cases_key)
  table.sort(names)
  local res = r:pipeline(function(p)
    for _, name in ipairs(names) do p:command("HGETALL", self:case_key(name)) end
    p:command("HGET", self.prefix, "reports")
  end)
  local cases = {}
  for i, name in ipairs(names) do
    local s = decode_hash(res[i])
    cases[name] = { state = s.status, consecutive_failures = s.consecutive_failures, total_failures =
      s.total_failures, total_by_state = s.total_by_state, last_failure = s.last_failure or json.null,
      runtime_median = median(s.runtime_history), latency_median = median(s.latency_history),
      frequency_median = median(s.frequency_history) }
  end
  return { id = self.app.id, cases = cases, reports = tonumber(res[#names + 1]) or 0 }
end

function Bus:describe()
  return { kind = "redis", url = self.shown_url, connected = self.r ~= nil and not self.lost, last_id = self.last_id,
    lost = self.lost or json.null }
end

return M
