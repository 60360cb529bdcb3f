-- Shows LiveCheck end to end: orders through a healthy service PASS; a
-- broken service shows FAIL (wrong side), TIMEOUT (lost orders) and a
-- suite failure, in the reports and on the status page.
local order_service = require("examples.livecheck.order_service")
local order_app = require("examples.livecheck.app")
local http = require("sonde.http")
require("sonde.runner.dsl") -- luassert's assert, marked so failures are FAIL

_G.assert = require("luassert")
local reports = {}
local svc
local app = order_app.new { report = function(r) reports[#reports + 1] = r end,
  log = function() end, service_url = function() return svc.url end }
app:start()
svc = order_service.start { signal_url = app.url .. "/signal" }

local function run(label, side)
  local x = order_app.place(side)
  local r = x:wait(10)
  print(string.format("%-28s %-8s %s", label, r.state, r.error ~= require("sonde.json").null and r.error or ""))
  return r.state
end

local states = {}
states[#states + 1] = run("healthy service, buy", "buy")
states[#states + 1] = run("healthy service, sell", "sell")
svc.fault = "wrong_side"
states[#states + 1] = run("executes the wrong side", "buy")
svc.fault = "lost"
states[#states + 1] = run("loses the order", "sell")
states[#states + 1] = run("loses the order again", "buy")

local status = http.get(app.url .. "/status"):json().cases.order
print(string.format("case state %s after %d consecutive failures", status.state, status.consecutive_failures))
local suite
for _, r in ipairs(reports) do
  if r.suite then suite = r end
end
print("suite report: " .. (suite and suite.error or "none"))
print("status page: " .. app.url .. "/ (" .. #http.get(app.url .. "/").body .. " bytes of HTML)")
svc:close()
app:stop(5)

local expected = { "PASS", "PASS", "FAIL", "TIMEOUT", "TIMEOUT" }
for i, s in ipairs(expected) do
  if states[i] ~= s then error(string.format("run %d ended %s, expected %s", i, states[i], s)) end
end
if not suite or status.state ~= "FAIL" then error("the suite should have failed after 3 failures") end
print("livecheck demo: outcomes as expected")
