-- sonde.livecheck.cli: what `sonde live` does with its command line.
--
--   sonde live APP.lua [--bus URL] [ARGS...]   runs the app APP.lua returns,
--       on the bus URL names (one of N processes) when given
--   sonde live --reports URL --app ID [--port N]
--       follows the reports every process of app ID sent to the bus: each
--       as a JSON line on stdout, and GET /reports and GET /status served
local task = require("sonde.task")
local json = require("sonde.json")

local M = {}

-- take(args, name) -> the value of --name VALUE or --name=VALUE, removed
-- from args, or nil | raises when --name has no value.
local function take(args, name)
  local flag = "--" .. name
  for i = 1, #args do
    local a = args[i]
    if a == flag then
      local v = args[i + 1]
      if v == nil or v:sub(1, 2) == "--" then error("sonde live: " .. flag .. " expects a value", 0) end
      table.remove(args, i)
      table.remove(args, i)
      return v
    end
    local v = a:sub(1, #flag + 1) == flag .. "=" and a:sub(#flag + 2)
    if v then
      table.remove(args, i)
      return v
    end
  end
end
M.take = take

-- check_url(flag, url): a malformed URL is one line naming the flag.
local function check_url(flag, url)
  local ok, why = require("sonde.redis").parse_url(url)
  if not ok then error("sonde live: " .. flag .. ": " .. why, 0) end
end

-- app_options(args) -> {bus=, reports=}: the options sonde live reads
-- (before or after the app's file), taken out of args; raises one line
-- for a malformed URL.
function M.app_options(args)
  local bus, reports = take(args, "bus"), take(args, "reports")
  if bus then check_url("--bus", bus) end
  if reports then check_url("--reports", reports) end
  return { bus = bus, reports = reports }
end

-- run_app(chunk, path, args, opts) -> the names of the cases failing at
-- exit: runs the app until SIGINT/SIGTERM, then drains and reports.
function M.run_app(chunk, path, args, opts)
  local app = chunk(unpack(args))
  if type(app) == "function" then app = app() end
  local livecheck = require("sonde.livecheck")
  if getmetatable(app) ~= livecheck.App then
    error(path .. ": expected the file to return a livecheck app (return livecheck.app{...} with its cases)", 0)
  end
  if opts.bus then app:use_bus(opts.bus) end
  app:start()
  io.stderr:write("sonde live: ", app.id, " serving ", app.url, (opts.bus and (" on bus " ..
    require("sonde.redis").redact(opts.bus)) or ""), " (Ctrl-C stops)\n")
  local forever = task.event()
  pcall(forever.wait, forever) -- until the interrupt cancels this wait
  io.stderr:write("sonde live: stopping: draining executions and flushing reports\n")
  app:stop(30)
  return app:failing()
end

-- ----------------------------------------------------------- --reports

-- run_reports(opts, args): `sonde live --reports URL --app ID [--port N]`.
function M.run_reports(opts, args)
  local url = opts.reports
  local id = take(args, "app")
  local port = take(args, "port")
  if not id then error("sonde live: --reports needs --app ID, the id of the livecheck app", 0) end
  if #args > 0 then error("sonde live: --reports takes no app file or other argument, got '" .. args[1] .. "'", 0) end
  if port and not tonumber(port) then error("sonde live: --port expects a number, got '" .. port .. "'", 0) end
  local viewer = { id = id, log = function(_, message) io.stderr:write("sonde live: ", message, "\n") end }
  local bus = require("sonde.livecheck.redis").new(url, viewer, 1)
  bus:client() -- an unreachable server is one line, before anything is served
  local server = require("sonde.server")
  local srv = server.serve({ port = tonumber(port) or 0 }, function(s)
    s:get("/reports", function(req)
      return { json = json.array(bus:recent_reports(math.min(tonumber(req.query.count) or 100, 1000))) }
    end)
    s:get("/status", function() return { json = bus:deployment_status() } end)
  end)
  io.stderr:write("sonde live: following the reports of ", id, " on ", bus.shown_url, "; serving ", srv.url,
    " (Ctrl-C stops)\n")
  local follower = task.spawn(function()
    bus:follow(bus.reports_key, "0", function(_, fields)
      if fields.report then io.stdout:write(fields.report, "\n") io.stdout:flush() end
    end)
  end)
  local forever = task.event()
  pcall(forever.wait, forever)
  follower:cancel()
  srv:close(1)
  bus:stop()
  return {}
end

return M
