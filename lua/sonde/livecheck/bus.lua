-- sonde.livecheck.bus: how signals, case state and reports travel between
-- the processes of a LiveCheck deployment. A bus is an object with:
--
--   bus:publish(event)        -- {case, signal, key, value}, from anywhere;
--                             -- raises when it cannot be sent
--   bus:subscribe(deliver)    -- deliver(event) for every event published
--                             -- by any process (event.at: when it was sent,
--                             -- epoch seconds, when the bus knows)
--
-- and optionally (each has a default when absent):
--
--   bus:start(app), bus:stop()     -- connect and start reading / let go
--   bus:transition(case, op, p)    -- runs sonde.livecheck.state's transition
--                                  -- where the state lives, leaves the result
--                                  -- in the case's fields, returns its report
--   bus:refresh(app) -> {reports=} -- brings the cases' fields up to date
--                                  -- before a status is shown
--   bus:report(report)             -- keeps a report where every process
--                                  -- can read it
--   bus:recent_reports(n)          -- the last n reports, oldest first
--   bus:describe() -> table        -- what GET /status shows of the bus
--
-- The in-process bus below is the default: `sonde live` is one process and
-- signals arrive over HTTP at the app's own server. sonde.livecheck.redis
-- is the bus across hosts (Redis Streams); Kafka would be one more file
-- with the same functions (librdkafka, topic "livecheck-bus" keyed by test
-- id, as faust does).
local livecheck_state = require("sonde.livecheck.state")

local M = {}

local Local = {}
Local.__index = Local

function Local:publish(event)
  for i = 1, #self.subscribers do self.subscribers[i](event) end
end

function Local:subscribe(deliver)
  self.subscribers[#self.subscribers + 1] = deliver
end

-- The state is the case's own fields.
function Local:transition(case, op, p) return livecheck_state.apply(case, op, p) end

function Local:describe() return { kind = "in-process" } end

-- in_process() -> a bus whose publish delivers at once in this process
function M.in_process()
  return setmetatable({ subscribers = {} }, Local)
end

-- from(spec, app, level) -> the bus an app's `bus` option names: nil for
-- the in-process bus, a redis:// URL or {url=, maxlen=, timeout=} for
-- Redis Streams, or an object with publish and subscribe. Raises `level`
-- frames up when it is none of these.
function M.from(spec, app, level)
  level = level + 1
  if spec == nil then return M.in_process() end
  if type(spec) == "string" or type(spec) == "table" and spec.url ~= nil and spec.publish == nil then
    local bus = require("sonde.livecheck.redis").new(spec, app, level)
    return bus -- not a tail call: `level` counts this frame
  end
  if type(spec) == "table" and type(spec.publish) == "function" and type(spec.subscribe) == "function" then
    return spec
  end
  error("livecheck.app: bus must be a redis:// URL, {url=, maxlen=, timeout=}, or an object with publish and " ..
    "subscribe, got " .. (type(spec) == "table" and "a table without them" or type(spec)), level)
end

return M
