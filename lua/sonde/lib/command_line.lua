-- sonde.lib.command_line: the one reader of sonde's command lines. Each
-- command has a table of option rows (sonde.runner.options' OPTIONS for
-- `sonde test`, sonde.load.cli's for `sonde load`); parsing, the check of
-- a value and --help all come from the rows, so adding an option is one
-- row.
--
-- A row: its names (short first), key (where opts keeps the value; by
-- default the long name without its dashes, others as underscores:
-- --fail-fast keeps fail_fast), kind, arg (the value's placeholder in
-- --help) and help. Kinds: flag (no value;
-- `--no-NAME` too when negatable), optional (a flag, or a value given with
-- `=`: --coverage=FILE), number and int (min, max), list (repeatable), csv
-- (a comma list, merged), string, path (repeats join with ';', as busted's
-- -m). `note`: accepted, and this one line goes to opts.notes when used.
-- `hidden`: not in --help.
local M = {}

-- default_key(row) -> "fail_fast" for a row whose last name is --fail-fast
local function default_key(row)
  local long = row[#row]:match("^%-%-([%w%-]+)$")
  if not long then error("the option row " .. row[1] .. " needs a key (it has no --long name)", 3) end
  return (long:gsub("%-", "_"))
end

-- index(rows) -> name -> row, for every spelling; gives each row without
-- a key its default one.
function M.index(rows)
  local by_name = {}
  for _, row in ipairs(rows) do
    row.key = row.key or default_key(row)
    for _, name in ipairs(row) do by_name[name] = row end
  end
  return by_name
end

local function take_number(opts, row, name, value)
  local n = tonumber(value)
  if row.kind == "int" then
    if not n or n % 1 ~= 0 or n < row.min then
      return nil, string.format("%s expects a whole number of at least %d, got '%s'", name, row.min, tostring(value))
    end
  elseif not n or n ~= n or n <= row.min or n == math.huge then
    return nil, string.format("%s expects a number greater than %g, got '%s'", name, row.min, tostring(value))
  end
  if row.max and n > row.max then
    return nil, string.format("%s expects a number no larger than %.10g, got '%s'", name, row.max, tostring(value))
  end
  opts[row.key] = n
  return true
end

-- take_value(opts, row, name, value) -> true | nil, message: one value of
-- a row's option; `name` is how the message names the option.
function M.take_value(opts, row, name, value)
  value = tostring(value)
  if row.kind == "number" or row.kind == "int" then return take_number(opts, row, name, value) end
  if row.kind == "list" then
    table.insert(opts[row.key], value)
  elseif row.kind == "csv" then
    local any = false
    for item in value:gmatch("[^,%s]+") do
      table.insert(opts[row.key], row.key:find("tags") and (item:gsub("^#", "")) or item)
      any = true
    end
    if not any then
      return nil, string.format("%s expects a comma-separated list of %s, got '%s'", name,
        row.key:find("tags") and "tags" or "values", value)
    end
  elseif row.kind == "path" then
    opts[row.key] = opts[row.key] and (opts[row.key] .. ";" .. value) or value
  else
    opts[row.key] = value
  end
  return true
end

-- row_of(by_name, name) -> row, negated: `--no-NAME` is NAME's row when
-- that row is negatable.
local function row_of(by_name, name)
  local row = by_name[name]
  if row or name:sub(1, 5) ~= "--no-" then return row, false end
  row = by_name["--" .. name:sub(6)]
  if row and row.negatable then return row, true end
  return nil, false
end

-- take_option(opts, row, name, negated, inline, args, i) -> the index of
-- the last word it used | nil, message.
local function take_option(opts, row, name, negated, inline, args, i)
  if row.kind == "flag" or (row.kind == "optional" and (inline == nil or negated)) then
    if inline then return nil, name .. " takes no value" end
    opts[row.key] = not negated
    if row.note and not negated then opts.notes[#opts.notes + 1] = row.note end
    return i
  end
  if row.kind == "optional" then
    if inline == "" then return nil, name .. "= expects a file name after '='" end
    opts[row.key] = inline
    return i
  end
  local value = inline
  if value == nil then
    i = i + 1
    value = args[i]
    if value == nil then return nil, name .. " expects a value" end
  end
  local ok, err = M.take_value(opts, row, name, value)
  if not ok then return nil, err end
  if row.note then opts.notes[#opts.notes + 1] = row.note end
  return i
end

-- parse(by_name, args, opts, command) -> opts | nil, "one line saying what
-- is wrong": every option of args into opts (the defaults; each list and
-- csv key is given an empty list first), every other word appended to
-- opts.paths. opts.given[key] is true for each option given; `command`
-- names the --help an unknown option points to.
function M.parse(by_name, args, opts, command)
  opts.paths, opts.given, opts.notes = opts.paths or {}, opts.given or {}, opts.notes or {}
  for _, row in pairs(by_name) do
    if (row.kind == "list" or row.kind == "csv") and opts[row.key] == nil then opts[row.key] = {} end
  end
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-?[%w%-]+)=(.*)$")
    name = name or a
    local row, negated = row_of(by_name, name)
    if row then
      opts.given[row.key] = true
      local err
      i, err = take_option(opts, row, name, negated, inline, args, i)
      if not i then return nil, err end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown option '" .. a .. "' (see sonde " .. command .. " --help)"
    else
      table.insert(opts.paths, a)
    end
    i = i + 1
  end
  return opts
end

-- wrap(text, width) -> lines of at most width characters, cut at spaces.
local function wrap(text, width)
  local lines, line = {}, ""
  for word in text:gmatch("%S+") do
    if line ~= "" and #line + 1 + #word > width then
      lines[#lines + 1], line = line, word
    else
      line = line == "" and word or (line .. " " .. word)
    end
  end
  lines[#lines + 1] = line
  return lines
end

local HELP_COLUMN, HELP_WIDTH = 30, 100

-- help_row(lines, row): a row's names, then its text wrapped beside them.
local function help_row(lines, row)
  local names = table.concat(row, ", ")
  local optional = row.arg and row.arg:sub(1, 1) == "[" -- --coverage[=FILE]
  if optional then names = names .. row.arg end
  if row.negatable then names = names .. " (--no-" .. row[#row]:sub(3) .. ")" end
  if row.arg and not optional then names = names .. " " .. row.arg end
  local text = wrap(row.help or row.note, HELP_WIDTH - HELP_COLUMN)
  local pad = string.rep(" ", HELP_COLUMN)
  if #names > HELP_COLUMN - 4 then
    lines[#lines + 1] = "  " .. names
  else
    lines[#lines + 1] = ("  " .. names .. pad):sub(1, HELP_COLUMN) .. table.remove(text, 1)
  end
  for _, t in ipairs(text) do lines[#lines + 1] = pad .. t end
end

-- help_section(lines, heading, rows[, keep]): the heading, then a line or
-- more for each row that is not hidden (and that keep(row) accepts).
function M.help_section(lines, heading, rows, keep)
  lines[#lines + 1] = heading
  for _, row in ipairs(rows) do
    if not row.hidden and (keep == nil or keep(row)) then help_row(lines, row) end
  end
end

return M
