-- The embedded server under `wrk -t1 -c50 -d3s`, against nginx serving the
-- same small JSON body in the same run.
local bench = require("bench.lib")
local servers = require("specs.servers")
local server = require("sonde.server")
local process = require("sonde.process")

local function wrk(url)
  local code, out, err = process.run { "wrk", "-t1", "-c50", "-d3s", url, timeout = 60 }
  if code ~= 0 then error("wrk: " .. err) end
  return tonumber(out:match("Requests/sec:%s*([%d%.]+)")), out:match("Non%-2xx or 3xx responses: (%d+)")
end

local body = '{"ok":true,"items":[1,2,3]}'
local s = server.serve({}, function(srv)
  srv:get("/small.json", function() return { body = body, headers = { ["Content-Type"] = "application/json" } } end)
end)
local ngx = servers.nginx()
local sonde_rps, bad = wrk(s.url .. "/small.json")
local nginx_rps = wrk(ngx.url .. "/small.json")
s:close()
bench.report("sonde.server, small JSON, wrk -t1 -c50", sonde_rps, "req/s", bad and (bad .. " non-2xx") or "")
bench.report("nginx, same body, wrk -t1 -c50", nginx_rps, "req/s")
bench.report("ratio sonde.server / nginx", sonde_rps / nginx_rps, "x", "goal: >= 0.3")
