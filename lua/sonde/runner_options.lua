-- sonde.runner_options: the command line of `sonde test`, and reporters.
--
-- A table drives parsing, so adding an option is one row here plus its use
-- in the runner; a reporter is one file lua/sonde/reporters/NAME.lua.
local M = {}

M.REPORTERS = { "human", "tap" }

-- kind: flag (no value), number, list (repeatable), csv (comma list, merged)
local SPEC = {
  ["--output"] = { key = "outputs", kind = "list" },
  ["-o"] = { key = "outputs", kind = "list" },
  ["--filter"] = { key = "filter", kind = "list" },
  ["--filter-out"] = { key = "filter_out", kind = "list" },
  ["--tags"] = { key = "tags", kind = "csv" },
  ["-t"] = { key = "tags", kind = "csv" },
  ["--exclude-tags"] = { key = "exclude_tags", kind = "csv" },
  ["--timeout"] = { key = "timeout", kind = "number", min = 0, exclusive = true },
  ["--fail-fast"] = { key = "fail_fast", kind = "flag" },
  ["--list"] = { key = "list", kind = "flag" },
  ["--verbose"] = { key = "verbose", kind = "flag" },
  ["-v"] = { key = "verbose", kind = "flag" },
}

local function defaults()
  return { paths = {}, outputs = {}, filter = {}, filter_out = {}, tags = {}, exclude_tags = {}, timeout = 30 }
end

local function take_value(opts, spec, name, value)
  if spec.kind == "number" then
    local n = tonumber(value)
    if not n or (spec.exclusive and n <= spec.min) then
      return nil, string.format("%s expects a number greater than %g, got '%s'", name, spec.min, tostring(value))
    end
    opts[spec.key] = n
  elseif spec.kind == "list" then
    table.insert(opts[spec.key], value)
  elseif spec.kind == "csv" then
    for item in value:gmatch("[^,%s]+") do table.insert(opts[spec.key], (item:gsub("^#", ""))) end
  end
  return true
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
  if #opts.paths == 0 then opts.paths = { "specs" } end
  if #opts.outputs == 0 then opts.outputs = { "human" } end
  return opts
end

local function known_reporter(name)
  for _, r in ipairs(M.REPORTERS) do
    if r == name then return true end
  end
  return false
end

-- open_reporters(opts) -> list | nil, err: each "NAME[=FILE]" output.
function M.open_reporters(opts)
  local list = {}
  for _, spec in ipairs(opts.outputs) do
    local name, file = spec:match("^([^=]+)=(.+)$")
    name = name or spec
    if not known_reporter(name) then
      return nil, "unknown reporter '" .. name .. "' (expected one of: " .. table.concat(M.REPORTERS, ", ") .. ")"
    end
    local out = io.stdout
    if file then
      local f, err = io.open(file, "w")
      if not f then return nil, "cannot write the " .. name .. " report: " .. err end
      out = f
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
