-- The embedded server under `wrk -t1 -c50 -d3s`, against nginx serving the
-- same small JSON body in the same run.
local bench = require("bench.lib")
local servers = require("specs.servers")
local server = require("sonde.server")

local body = '{"ok":true,"items":[1,2,3]}'
local s = server.serve({}, function(srv)
  srv:get("/small.json", function() return { body = body, headers = { ["Content-Type"] = "application/json" } } end)
end)
local ngx = servers.nginx()
local sonde_rps, bad = bench.wrk(s.url .. "/small.json", 50, 3)
local nginx_rps = bench.wrk(ngx.url .. "/small.json", 50, 3)
s:close()
bench.report("sonde.server, small JSON, wrk -t1 -c50", sonde_rps, "req/s", bad and (bad .. " non-2xx") or "")
bench.report("nginx, same body, wrk -t1 -c50", nginx_rps, "req/s")
bench.report("ratio sonde.server / nginx", sonde_rps / nginx_rps, "x", "goal: >= 0.6")
bench.goal(string.format("sonde.server %.2fx nginx, small JSON, wrk -t1 -c50 (goal >= 0.6)", sonde_rps / nginx_rps),
  sonde_rps / nginx_rps >= 0.6)
