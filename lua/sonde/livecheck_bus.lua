-- sonde.livecheck_bus: how signal events travel between the processes of a
-- LiveCheck deployment. The interface is two functions:
--
--   bus:publish(event)        -- {case, signal, key, value}, from anywhere
--   bus:subscribe(deliver)    -- deliver(event) for every event published
--
-- The in-process bus below is the default: `sonde live` is one process and
-- signals arrive over HTTP at the app's own server. A bus that crosses hosts
-- is one new file with the same two functions: Redis Streams (XADD to a
-- stream keyed by case; each app reads with XREAD BLOCK on a connection
-- driven by the loop, e.g. hiredis' libuv adapter) or Kafka (librdkafka,
-- topic "livecheck-bus" keyed by test id, as faust does).
local M = {}

local Local = {}
Local.__index = Local

function Local:publish(event)
  for i = 1, #self.subscribers do self.subscribers[i](event) end
end

function Local:subscribe(deliver)
  self.subscribers[#self.subscribers + 1] = deliver
end

-- in_process() -> a bus whose publish delivers at once in this process
function M.in_process()
  return setmetatable({ subscribers = {} }, Local)
end

return M
