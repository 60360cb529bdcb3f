-- sonde.runner_options: the command line of `sonde test`, and reporters.
--
-- A table drives parsing, so adding an option is one row here plus its use
-- in the runner; a reporter is one file lua/sonde/reporters/NAME.lua plus
-- its name in REPORTERS.
local shard = require("sonde.runner_shard")

local M = {}

M.REPORTERS = { "human", "tap", "junit", "json", "table" }

-- kind: flag (no value), number, int, list (repeatable), csv (comma list,
-- merged), string
local SPEC = {
  ["--output"] = { key = "outputs", kind = "list" },
  ["-o"] = { key = "outputs", kind = "list" },
  ["--filter"] = { key = "filter", kind = "list" },
  ["--filter-out"] = { key = "filter_out", kind = "list" },
  ["--tags"] = { key = "tags", kind = "csv" },
  ["-t"] = { key = "tags", kind = "csv" },
  ["--exclude-tags"] = { key = "exclude_tags", kind = "csv" },
  ["--pattern"] = { key = "pattern", kind = "string" },
  ["-p"] = { key = "pattern", kind = "string" },
  ["--timeout"] = { key = "timeout", kind = "number", min = 0, max = 1e9 }, -- far larger ones overflow the timers
  ["--fail-fast"] = { key = "fail_fast", kind = "flag" },
  ["--list"] = { key = "list", kind = "flag" },
  ["--verbose"] = { key = "verbose", kind = "flag" },
  ["-v"] = { key = "verbose", kind = "flag" },
  ["--shuffle"] = { key = "shuffle", kind = "flag" },
  ["--seed"] = { key = "seed", kind = "int", min = 0, max = 2147483647 }, -- the generator's range
  ["--interleave"] = { key = "interleave", kind = "flag" }, -- ready tasks resume in a seeded random order
  ["--repeat"] = { key = "repeat_count", kind = "int", min = 1 },
  ["--retries"] = { key = "retries", kind = "int", min = 0 },
  ["--fail-on-flaky"] = { key = "fail_on_flaky", kind = "flag" },
  ["--shard"] = { key = "shard", kind = "string" },
  ["--shard-durations"] = { key = "shard_durations", kind = "string" },
  ["--jobs"] = { key = "jobs", kind = "int", min = 1 },
  ["-j"] = { key = "jobs", kind = "int", min = 1 },
  ["--no-capture"] = { key = "no_capture", kind = "flag" },
  ["-s"] = { key = "no_capture", kind = "flag" },
  ["--pass-with-no-tests"] = { key = "pass_with_no_tests", kind = "flag" }, -- else no test found exits 5
  ["--worker"] = { key = "worker", kind = "flag" }, -- internal: a --jobs worker
}

local function defaults()
  return { paths = {}, outputs = {}, filter = {}, filter_out = {}, tags = {}, exclude_tags = {}, timeout = 30,
    repeat_count = 1, retries = 0, jobs = 1 }
end

local function take_number(opts, spec, name, value)
  local n = tonumber(value)
  if spec.kind == "int" then
    if not n or n % 1 ~= 0 or n < spec.min then
      return nil, string.format("%s expects a whole number of at least %d, got '%s'", name, spec.min, tostring(value))
    end
  elseif not n or n ~= n or n <= spec.min or n == math.huge then
    return nil, string.format("%s expects a number greater than %g, got '%s'", name, spec.min, tostring(value))
  end
  if spec.max and n > spec.max then
    return nil, string.format("%s expects a number no larger than %.10g, got '%s'", name, spec.max, tostring(value))
  end
  opts[spec.key] = n
  return true
end

local function take_value(opts, spec, name, value)
  if spec.kind == "number" or spec.kind == "int" then return take_number(opts, spec, name, value) end
  if spec.kind == "list" then
    table.insert(opts[spec.key], value)
  elseif spec.kind == "csv" then
    local any = false
    for item in value:gmatch("[^,%s]+") do
      table.insert(opts[spec.key], (item:gsub("^#", "")))
      any = true
    end
    if not any then return nil, string.format("%s expects a comma-separated list of tags, got '%s'", name, value) end
  else
    opts[spec.key] = value
  end
  return true
end

-- class_end(p, i) -> the index after the set p[i] == "[" opens, or nil
-- when it is never closed (as lstrlib reads it: "[]]" is a set of "]").
local function class_end(p, i)
  i = i + 1
  if p:sub(i, i) == "^" then i = i + 1 end
  repeat
    if i > #p then return nil end
    if p:sub(i, i) == "%" then i = i + 1 end
    i = i + 1
  until p:sub(i, i) == "]"
  return i + 1
end

-- pattern_error(p) -> nil, or what is wrong with the Lua pattern p. Lua's
-- matcher finds a malformed part only when a match reaches it (find("",
-- "t[") passes, and the first name with a "t" raises), so read it through.
local function pattern_error(p)
  if not p:find("[%^%$%*%+%?%.%(%[%%%-]") then return nil end -- no specials: found as plain text
  local i, n, closed = 1, #p, {} -- closed[k]: capture k is complete
  while i <= n do
    local c, d = p:sub(i, i), p:sub(i + 1, i + 1)
    if c == "(" then
      if #closed == 32 then return "too many captures" end
      closed[#closed + 1] = d == ")"
      i = d == ")" and i + 2 or i + 1
    elseif c == ")" then
      local k = #closed
      while k > 0 and closed[k] do k = k - 1 end
      if k == 0 then return "')' without '('" end
      closed[k], i = true, i + 1
    elseif c == "%" and d == "" then
      return "ends with '%'"
    elseif c == "%" and d == "b" then
      if i + 3 > n then return "missing arguments to '%b'" end
      i = i + 4
    elseif c == "%" and d == "f" then
      if p:sub(i + 2, i + 2) ~= "[" then return "missing '[' after '%f'" end
      i = class_end(p, i + 2)
      if not i then return "missing ']'" end
    elseif c == "%" and d:find("%d") then
      if not closed[tonumber(d)] then return "invalid capture index %" .. d end
      i = i + 2
    elseif c == "%" then
      i = i + 2
    elseif c == "[" then
      i = class_end(p, i)
      if not i then return "missing ']'" end
    else
      i = i + 1
    end
  end
  for k = 1, #closed do
    if not closed[k] then return "unfinished capture" end
  end
end

local function bad_pattern(name, patterns)
  for _, pat in ipairs(patterns) do
    local why = pattern_error(pat)
    if why then return name .. " expects a Lua pattern, got '" .. pat .. "': " .. why end
  end
end

-- Checks that need several options, or reading a file.
local function finish(opts)
  if #opts.paths == 0 then opts.paths = { "specs" } end
  if #opts.outputs == 0 then opts.outputs = { "human" } end
  if opts.seed and not opts.interleave then opts.shuffle = true end -- a seed alone is for --shuffle
  local bad = bad_pattern("--pattern", { opts.pattern }) or bad_pattern("--filter", opts.filter)
    or bad_pattern("--filter-out", opts.filter_out)
  if bad then return nil, bad end
  if opts.shard then
    local spec, err = shard.parse(opts.shard)
    if not spec then return nil, err end
    opts.shard = spec
  end
  if opts.shard_durations then
    if not opts.shard then return nil, "--shard-durations needs --shard K/N" end
    local durations, err = shard.durations(opts.shard_durations)
    if not durations then return nil, err end
    opts.durations = durations
  end
  return opts
end

-- parse(paths, args) -> opts | nil, "one line saying what is wrong"
function M.parse(paths, args)
  local opts = defaults()
  for _, p in ipairs(paths or {}) do table.insert(opts.paths, p) end
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    name = name or a
    local spec = SPEC[name]
    if spec then
      if spec.kind == "flag" then
        if inline then return nil, name .. " takes no value" end
        opts[spec.key] = true
      else
        local value = inline
        if value == nil then
          i = i + 1
          value = args[i]
          if value == nil then return nil, name .. " expects a value" end
        end
        local ok, err = take_value(opts, spec, name, value)
        if not ok then return nil, err end
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown option '" .. a .. "' (see sonde --help)"
    else
      table.insert(opts.paths, a)
    end
    i = i + 1
  end
  return finish(opts)
end

local function known_reporter(name)
  for _, r in ipairs(M.REPORTERS) do
    if r == name then return true end
  end
  return false
end

-- open_reporters(opts) -> list | nil, err: each "NAME[=FILE]" output.
function M.open_reporters(opts)
  local list, opened = {}, {}
  for _, spec in ipairs(opts.outputs) do
    local name, file = spec:match("^([^=]+)=(.*)$")
    name = name or spec
    if file == "" then return nil, "-o " .. spec .. ": expected a file name after '='" end
    if not known_reporter(name) then
      return nil, "unknown reporter '" .. name .. "' (expected one of: " .. table.concat(M.REPORTERS, ", ") .. ")"
    end
    local out = io.stdout
    if file then
      local f, err = io.open(file, "w")
      if not f then
        for _, o in ipairs(opened) do o:close() end
        return nil, "cannot write the " .. name .. " report: " .. err
      end
      out = f
      opened[#opened + 1] = f
    end
    local r = require("sonde.reporters." .. name).new(out, opts)
    r.out, r.owns_out = out, file ~= nil
    list[#list + 1] = r
  end
  return list
end

function M.close_reporters(list)
  for _, r in ipairs(list) do
    if r.owns_out then r.out:close() else r.out:flush() end
  end
end

return M
