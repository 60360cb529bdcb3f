-- sonde.load.cli: `sonde load SCRIPT [OPTIONS]` and `sonde load merge
-- FILE...`.
--
-- A run goes: load the script (its top level is k6's init context: it
-- defines options, functions and custom metrics), check options and
-- thresholds, run setup(), the scenarios, teardown(data), then print the
-- summary. Nothing starts until everything the script asked for has been
-- checked. Exit codes, as k6's: 0; 99 a threshold was crossed; 107 a
-- script error (at load, in options, in setup or teardown); 2 usage; 130
-- interrupted.
local task = require("sonde.task")
local trace = require("sonde.lib.trace")
local loop = require("sonde.c.loop")
local shard = require("sonde.runner.shard")
local command_line = require("sonde.lib.command_line")
local read_file = require("sonde.lib.file").read
local load = require("sonde.load")
local metrics = require("sonde.load.metrics")
local options = require("sonde.load.options")
local thresholds = require("sonde.load.thresholds")
local load_run = require("sonde.load.run")
local summary = require("sonde.load.summary")
local output = require("sonde.load.output")
local html = require("sonde.load.html")

local M = {}

M.OK, M.THRESHOLDS, M.SCRIPT_ERROR, M.USAGE, M.INTERRUPTED = 0, 99, 107, 2, 130

-- --------------------------------------------------------- command line

local OPTIONS = {
  { "-u", "--vus", kind = "int", min = 1, arg = "N", help = "VUs of the one scenario --duration or --iterations make" },
  { "-d", "--duration", kind = "string", arg = "D", help = "run the VUs for D (30s, 1m30s): constant-vus" },
  { "-i", "--iterations", kind = "int", min = 1, arg = "N",
    help = "N iterations shared by the VUs: shared-iterations (with --duration: at most that long)" },
  { "-o", "--out", key = "outputs", kind = "list", arg = "KIND=FILE",
    help = "json=FILE: every sample and the final summary, one JSON object per line; html=FILE: the run's page "
      .. "(charts per second, scenarios, thresholds, metrics)" },
  { "--segment", kind = "string", arg = "K/N",
    help = "run the K-th of N execution segments (VUs, iterations and arrivals split so the N add up to the whole)" },
  { "-q", "--quiet", kind = "flag", help = "no progress line" },
  { "-h", "--help", kind = "flag", help = "this text" },
}

M.OPTIONS = OPTIONS -- also read by scripts/cli_docs.lua (man page, completions)

local BY_NAME = command_line.index(OPTIONS)

M.HELP = [[
usage: sonde load SCRIPT [OPTIONS]       run SCRIPT's scenarios as a load test
       sonde load merge [-o json=FILE] [-o html=FILE] A.json B.json ...
                                         add up the summaries of --out json files (segments)
]]

-- help() -> the text of `sonde load --help`, from OPTIONS.
function M.help()
  local lines = { M.HELP }
  command_line.help_section(lines, "options:", OPTIONS)
  lines[#lines + 1] = ""
  lines[#lines + 1] = "exit codes: 0; 99 a threshold was crossed; 107 a script error (at load, in options, "
    .. "setup or teardown); 2 usage; 130 interrupted"
  return table.concat(lines, "\n") .. "\n"
end

-- parse(args) -> opts | nil, message
function M.parse(args)
  return command_line.parse(BY_NAME, args, {}, "load")
end

-- settle(opts) -> cli | nil, message: the values a run needs
local function settle(opts)
  local cli = { vus = opts.vus, iterations = opts.iterations, quiet = opts.quiet }
  if opts.duration then
    cli.duration = options.seconds(opts.duration)
    if not cli.duration or cli.duration <= 0 then
      return nil, "--duration expects a duration such as 30s, 1m30s or 500ms, got '" .. opts.duration .. "'"
    end
  end
  if opts.segment then
    local seg, err = shard.parse(opts.segment)
    if not seg then return nil, (err:gsub("%-%-shard", "--segment")) end
    cli.segment = seg
  end
  for _, spec in ipairs(opts.outputs) do
    local kind, file = spec:match("^(%w+)=(.+)$")
    if kind ~= "json" and kind ~= "html" then
      return nil, "--out expects json=FILE or html=FILE, got '" .. spec .. "'"
    end
    if cli[kind] then return nil, "--out " .. kind .. "=FILE may be given once" end
    cli[kind] = file
  end
  return cli
end

-- ------------------------------------------------------------ the script

-- ScriptError: a mistake of the script, printed as one line; exit 107
local function script_error(message) return { script_error = message } end

-- where(path, source, err) -> "path:LINE: message" for an OptionError
local function where(path, source, err)
  local line = options.locate(source, err.needles)
  return (line and (path .. ":" .. line) or path) .. ": " .. err.message
end

-- prepare(path, cli) -> run, env | raises script_error
local function prepare(path, source, cli)
  local chunk, err = loadstring(source, "@" .. path)
  if not chunk then error(script_error("cannot load " .. trace.load_message(path, err)), 0) end
  local env = setmetatable({}, { __index = _G })
  setfenv(chunk, env)
  local registry = metrics.registry()
  load._bind(nil, registry)
  local ok, e = pcall(chunk)
  if not ok then error(script_error(task.describe(e)), 0) end
  local ok2, opts = pcall(options.normalize, rawget(env, "options"), env, cli)
  if not ok2 then
    if options.is_error(opts) then error(script_error(where(path, source, opts)), 0) end
    error(opts, 0)
  end
  local ok3, entries = pcall(thresholds.build, opts.thresholds, registry)
  if not ok3 then
    if options.is_error(entries) then error(script_error(where(path, source, entries)), 0) end
    error(entries, 0)
  end
  for _, stat in ipairs(opts.summary_trend_stats) do
    if type(stat) ~= "string" or not metrics.parse_stat(stat) then
      error(script_error(path .. ": options.summary_trend_stats: '" .. tostring(stat) ..
        "' is no trend stat (expected avg, min, med, max, count or p(N))"), 0)
    end
  end
  return load_run.new { env = env, options = opts, registry = registry, thresholds = entries }, env
end

-- ------------------------------------------------------------ the header

local fmt = options.format_duration

local function ordinal(n)
  local last2, last = n % 100, n % 10
  local suffix = (last2 >= 11 and last2 <= 13) and "th" or ({ "st", "nd", "rd" })[last] or "th"
  return n .. suffix
end

local describe_executor -- below

local function describe(sc)
  local e, seg = sc.executor, sc.segment
  local striped = seg and seg.n > 1 and string.format("; every %s arrival from the %s", ordinal(seg.n), ordinal(seg.k))
    or ""
  return describe_executor(sc, e) .. ((e == "constant-arrival-rate" or e == "ramping-arrival-rate") and striped or "")
end

describe_executor = function(sc, e)
  if e == "shared-iterations" then
    return string.format("%d iterations shared among %d VUs (max %s)", sc.iterations, math.min(sc.vus, sc.iterations),
      fmt(sc.max_duration))
  elseif e == "per-vu-iterations" then
    return string.format("%d iterations for each of %d VUs (max %s)", sc.iterations, sc.vus, fmt(sc.max_duration))
  elseif e == "constant-vus" then
    return string.format("%d looping VUs for %s", sc.vus, fmt(sc.duration))
  elseif e == "ramping-vus" then
    local total = 0
    for _, st in ipairs(sc.stages) do total = total + st.duration end
    return string.format("up to %d looping VUs for %s over %d stages", load_run.max_vus(sc), fmt(total), #sc.stages)
  elseif e == "constant-arrival-rate" then
    return string.format("%g iterations/%s for %s (%d VUs, up to %d)", sc.rate, fmt(sc.time_unit), fmt(sc.duration),
      sc.pre_allocated_vus, sc.max_vus)
  end
  local top = sc.start_rate
  for _, st in ipairs(sc.stages) do top = math.max(top, st.target) end
  return string.format("up to %g iterations/%s over %d stages (%d VUs, up to %d)", top, fmt(sc.time_unit),
    #sc.stages, sc.pre_allocated_vus, sc.max_vus)
end

local function header(out, path, run, cli)
  local scs = run.options.scenarios
  local vus, longest = 0, 0
  for _, sc in ipairs(scs) do
    vus = vus + load_run.max_vus(sc)
    longest = math.max(longest, load_run.max_duration(sc))
  end
  out:write("\n  script: ", path, cli.segment and string.format(" (segment %d/%d)", cli.segment.k, cli.segment.n) or "",
    "\n")
  if cli.json then out:write("  output: json=", cli.json, "\n") end
  if cli.html then out:write("  output: html=", cli.html, "\n") end
  out:write(string.format("  scenarios: %d scenario%s, %d max VUs, %s max duration (incl. graceful stop):\n", #scs,
    #scs == 1 and "" or "s", vus, fmt(longest)))
  for _, sc in ipairs(scs) do
    out:write(string.format("    * %s: %s, %s%s\n", sc.name, sc.executor, describe(sc),
      sc.exec ~= "default" and (", exec: " .. sc.exec) or ""))
  end
  out:flush()
end

-- ----------------------------------------------------------- progress

local function progress_line(run, elapsed)
  local reqs = run.m.http_reqs.sum
  local last = run.last_reqs or 0
  run.last_reqs = reqs
  local p95 = run.m.http_req_duration.hist:quantile(0.95)
  io.stderr:write(string.format("\r\27[K  running %.0fs  %d/%d VUs  %s iterations  %.0f req/s  p95 %s  %d errors",
    elapsed, run.active, run.allocated, summary.number(run.m.iterations.sum), reqs - last, summary.ms(p95),
    run.errors.count))
end

-- ------------------------------------------------------------------ run

local function call_hook(env, name, timeout, ...)
  local fn = rawget(env, name)
  if fn == nil then return true end
  if type(fn) ~= "function" then return false, name .. " must be a function, got " .. type(fn) end
  local r = task.pack(pcall(task.timeout, timeout, fn, ...))
  if not r[1] then
    local e = r[2]
    if task.is_cancelled(e) then return false, "interrupted in " .. name, true end
    if task.is_timeout(e) then return false, string.format("%s did not finish within %gs (%s_timeout)", name, timeout,
      name) end
    return false, name .. " failed: " .. task.describe(e)
  end
  return true, r[2]
end

-- ------------------------------------------------------------ --out files

-- The kinds of --out, in the order they are opened.
local OUT_KINDS = { { kind = "json", open = output.open }, { kind = "html", open = html.open } }

-- open_outputs(cli) -> {json = writer, html = page} | nil, message: every
-- --out file open, or none (a run must not start to find it cannot write).
local function open_outputs(cli)
  local files = {}
  for _, o in ipairs(OUT_KINDS) do
    if cli[o.kind] then
      local file, why = o.open(cli[o.kind])
      if not file then
        for _, opened in pairs(files) do opened:close() end
        return nil, why
      end
      files[o.kind] = file
    end
  end
  return files
end

-- close_outputs(files, cli, report) -> true | nil, message: the report's
-- summary line and page written (when there is a report), and the files
-- closed.
local function close_outputs(files, cli, report)
  if files.json then
    if report then files.json:summary(summary.to_data(report)) end
    files.json:close()
  end
  if not files.html then return true end
  if not report then
    files.html:close()
    return true
  end
  return html.write(files.html, cli.html, report)
end

-- run_script(path, cli[, out[, err]]) -> exit code, report (nil when it
-- did not run). Inside a task; `out` is where the header and summary go
-- (stdout), `err` where the one-line messages do (stderr).
function M.run_script(path, cli, out, err)
  out, err = out or io.stdout, err or io.stderr
  local source = read_file(path)
  if not source then
    err:write("sonde load: cannot read ", path, ": no such file or not readable\n")
    return M.USAGE
  end
  local ok, run, env = pcall(prepare, path, source, cli)
  if not ok then
    if type(run) == "table" and run.script_error then
      err:write("sonde load: ", run.script_error, "\n")
      return M.SCRIPT_ERROR
    end
    error(run, 0)
  end
  local files, why = open_outputs(cli)
  if not files then
    err:write("sonde load: ", why, "\n")
    return M.USAGE
  end
  if files.json then run.registry.out = function(m, v, tags) files.json:point(m, v, tags) end end
  header(out, path, run, cli)
  if not cli.quiet and loop.isatty(2) then run.progress = progress_line end
  local code, report = M.execute(run, env, path, err)
  if run.progress then io.stderr:write("\r\27[K") end -- the progress line goes
  run.registry.out = nil
  if report then
    out:write(summary.text(report))
    out:flush()
  end
  local wrote, werr = close_outputs(files, cli, report)
  if not wrote then
    err:write("sonde load: ", werr, "\n")
    code = code == M.OK and M.USAGE or code
  end
  return code, report
end

-- execute(run, env, path, err) -> exit code, report: setup, scenarios,
-- teardown
function M.execute(run, env, path, err)
  run:attach()
  local ok, data, cancelled = call_hook(env, "setup", run.options.setup_timeout)
  if not ok then
    run:detach()
    err:write("sonde load: ", data, "\n")
    return cancelled and M.INTERRUPTED or M.SCRIPT_ERROR
  end
  local interrupted = false
  local remove = task.on_interrupt(function() interrupted = true end)
  local ran, why = pcall(run.execute, run, data)
  remove()
  if not ran then -- sonde's own failure: leave sonde.http unobserved all the same
    run:detach()
    error(why, 0)
  end
  run:attach()
  local tok, terr = true, nil
  if not interrupted then tok, terr = call_hook(env, "teardown", run.options.teardown_timeout, data) end
  run:detach()
  local report = summary.from_run(run, path)
  if run.fatal then
    err:write("sonde load: internal error: ", task.describe(run.fatal), "\n")
    return 1, report
  end
  if interrupted then
    err:write("sonde load: interrupted\n")
    return M.INTERRUPTED, report
  end
  if not tok then
    err:write("sonde load: ", terr, "\n")
    return M.SCRIPT_ERROR, report
  end
  if not summary.passed(report) then
    err:write("sonde load: thresholds crossed: ", summary.crossed(report), "\n")
    return M.THRESHOLDS, report
  end
  return M.OK, report
end

-- --------------------------------------------------------------- merge

-- merge_refused(message) -> the exit code of a merge that cannot be made
local function merge_refused(message)
  io.stderr:write("sonde load merge: ", message, "\n")
  return M.USAGE
end

-- merge(paths, cli, out) -> exit code, report
function M.merge(paths, cli, out)
  out = out or io.stdout
  if #paths == 0 then return merge_refused("expected the --out json files of the segments to merge") end
  local reports = {}
  for _, p in ipairs(paths) do
    local data, err = output.read_summary(p)
    local report = data and select(1, summary.from_data(data, p))
    if data and not report then err = select(2, summary.from_data(data, p)) end
    if not report then return merge_refused(err) end
    reports[#reports + 1] = report
  end
  local merged, err = summary.merge(reports)
  if not merged then return merge_refused(err) end
  local files
  files, err = open_outputs(cli)
  if not files then return merge_refused(err) end
  local wrote, werr = close_outputs(files, cli, merged)
  if not wrote then return merge_refused(werr) end
  out:write(summary.text(merged))
  if not summary.passed(merged) then
    io.stderr:write("sonde load merge: thresholds crossed: ", summary.crossed(merged), "\n")
    return M.THRESHOLDS, merged
  end
  return M.OK, merged
end

-- -------------------------------------------------------------- main

-- main(args) -> exit code: `sonde load ...` (not inside a task)
function M.main(args)
  local opts, err = M.parse(args)
  if not opts then
    io.stderr:write("sonde load: ", err, "\n")
    return M.USAGE
  end
  if opts.help then
    io.stdout:write(M.help())
    return M.OK
  end
  local cli
  cli, err = settle(opts)
  if not cli then
    io.stderr:write("sonde load: ", err, "\n")
    return M.USAGE
  end
  local paths = opts.paths
  local merging = paths[1] == "merge"
  if merging then table.remove(paths, 1) end
  if not merging and #paths ~= 1 then
    io.stderr:write("sonde load: expected one SCRIPT to run", #paths > 1 and (", got " .. #paths) or "",
      " (see sonde load --help)\n")
    return M.USAGE
  end
  local t = task.run(function()
    if merging then return M.merge(paths, cli) end
    return M.run_script(paths[1], cli)
  end)
  if t.err ~= nil then
    io.stderr:write("sonde load: internal error: ", trace.format(t.err, t.traceback), "\n")
    return 1
  end
  return t.results[1]
end

return M
