-- The LiveCheck app for the order service: every order placed through it
-- (real or fake) must be placed and executed on the side that was asked.
-- Run it alone with: ORDER_SERVICE_URL=... sonde live examples/livecheck/app.lua
local livecheck = require("sonde.livecheck")
local http = require("sonde.http")

local M = {}

function M.new(opts)
  local app = livecheck.app { id = "orders", port = opts.port or 0, report = opts.report, log = opts.log }
  local order = app:case { name = "order", signals = { "order_placed", "order_executed" },
    frequency = opts.frequency, probability = 1, max_consecutive_failures = opts.max_failures or 3,
    state_transition_delay = 0 }
  local n = 0

  function order:run(side)
    local placed = self.signals.order_placed:wait { timeout = 2 }
    assert.are.equal(side, placed.side)
    local executed = self.signals.order_executed:wait { timeout = 2 }
    assert.are.equal(side, executed.side, "executed on the wrong side")
  end

  -- a real order placed inside a test: the request carries its headers
  function M.place(side)
    n = n + 1
    return order:maybe_trigger(nil, function(x)
      http.post(opts.service_url() .. "/orders", { json = { id = n, side = side } })
      return x
    end, side)
  end

  function order:make_fake_request() M.place(n % 2 == 0 and "buy" or "sell") end

  return app, order
end

-- `sonde live` runs the app this file returns.
if ... == nil and os.getenv("ORDER_SERVICE_URL") then
  return (M.new { port = tonumber(os.getenv("LIVECHECK_PORT") or "9999"), frequency = 10,
    service_url = function() return os.getenv("ORDER_SERVICE_URL") end, report = "livecheck-reports.jsonl" })
end
return M
