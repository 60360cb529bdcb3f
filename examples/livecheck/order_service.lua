-- A small order service, the system under test: POST /orders places an
-- order and answers at once; a worker executes it later from a queue. It
-- passes the LiveCheck headers on by signalling the LiveCheck app over HTTP.
local server = require("sonde.server")
local http = require("sonde.http")
local task = require("sonde.task")

local M = {}

-- start{signal_url=, fault=nil|"wrong_side"|"lost"} -> service (url, close())
function M.start(opts)
  local queue = task.channel()
  local svc
  local function signal(test, name, value)
    if test then
      http.post(opts.signal_url, { json = { case = test.case_name, signal = name, key = test.id, value = value } })
    end
  end
  svc = server.serve({}, function(s)
    s:post("/orders", function(req)
      local order = req:json()
      local test = { id = req.headers["livecheck-test-id"], case_name = req.headers["livecheck-test-name"] }
      if not test.id then test = nil end
      signal(test, "order_placed", order)
      queue:send { order = order, test = test }
      return { status = 202, json = { accepted = order.id } }
    end)
  end)
  svc.fault = opts.fault
  svc.worker = task.spawn(function()
    for job in queue:iter() do
      task.sleep(0.02) -- the exchange takes a moment
      if svc.fault ~= "lost" then
        local side = svc.fault == "wrong_side" and (job.order.side == "buy" and "sell" or "buy") or job.order.side
        signal(job.test, "order_executed", { id = job.order.id, side = side })
      end
    end
  end)
  local close = svc.close
  function svc:close()
    queue:close()
    close(self)
  end
  return svc
end

return M
