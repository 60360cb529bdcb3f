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
  ["--timeout"] = { key = "timeout", kind = "number", min = 0 },
  ["--fail-fast"] = { key = "fail_fast", kind = "flag" },
  ["--list"] = { key = "list", kind = "flag" },
  ["--verbose"] = { key = "verbose", kind = "flag" },
  ["-v"] = { key = "verbose", kind = "flag" },
  ["--shuffle"] = { key = "shuffle", kind = "flag" },
  ["--seed"] = { key = "seed", kind = "int", min = 0 },
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
  opts[spec.key] = n
  return true
end

local function take_value(opts, spec, name, value)
  if spec.kind == "number" or spec.kind == "int" then return take_number(opts, spec, name, value) end
  if spec.kind == "list" then
    table.insert(opts[spec.key], value)
  elseif spec.kind == "csv" then
    for item in value:gmatch("[^,%s]+") do table.insert(opts[spec.key], (item:gsub("^#", ""))) end
  else
    opts[spec.key] = value
  end
  return true
end

local function bad_pattern(name, patterns)
  for _, pat in ipairs(patterns) do
    if not pcall(string.find, "", pat) then return name .. " expects a Lua pattern, got '" .. pat .. "'" end
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
    local name, file = spec:match("^([^=]+)=(.+)$")
    name = name or spec
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
