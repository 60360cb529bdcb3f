-- scripts/api_docs.lua: docs/api.md, the reference of sonde's public
-- modules, generated from their LuaLS definitions in types/sonde/*.lua, so
-- the reference and what editors show are one text.
--
--   sonde run scripts/api_docs.lua [OUT]   writes OUT (default docs/api.md)
--
-- specs/types_spec.lua checks that docs/api.md is what this makes, and that
-- the definitions match each module's exports.
local M = {}

-- The public modules, in the order the reference lists them.
M.MODULES = { "task", "process", "http", "json", "fixture", "server", "clock", "events", "redis", "livecheck",
  "load" }

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- split_type("fun(a: b)? rest") -> "fun(a: b)?", "rest": a LuaLS type runs
-- to the first space outside brackets.
local function split_type(s)
  local depth = 0
  for i = 1, #s do
    local c = s:sub(i, i)
    if c == "(" or c == "{" or c == "<" or c == "[" then
      depth = depth + 1
    elseif c == ")" or c == "}" or c == ">" or c == "]" then
      depth = depth - 1
    elseif c == " " and depth == 0 then
      return s:sub(1, i - 1), (s:sub(i + 1):gsub("^%s+", ""))
    end
  end
  return s, ""
end

-- parse(text) -> {name=, intro={}, classes={}, functions={}, values={}}:
-- each function {owner=, sep=".", name=, args=, doc={}, params={}, returns={}, internal=}
function M.parse(text)
  local mod = { classes = {}, functions = {}, values = {}, intro = {} }
  local doc, params, returns, internal = {}, {}, {}, false
  local class, last_class, owners = nil, nil, {} -- owners: local name -> its class
  local function reset() doc, params, returns, internal = {}, {}, {}, false end
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local tag, rest = line:match("^%-%-%-@(%w+)%s*(.*)$")
    if tag == "meta" then
      mod.name = rest
    elseif tag == "class" then
      local name, parent = rest:match("^([%w_.]+):?%s*([%w_.]*)")
      class = { name = name, parent = parent ~= "" and parent or nil, doc = doc, fields = {}, methods = {} }
      mod.classes[#mod.classes + 1] = class
      last_class = class
      reset()
    elseif tag == "field" then
      local fname, more = split_type(rest)
      local ftype, fdoc = split_type(more)
      if class then class.fields[#class.fields + 1] = { name = fname, type = ftype, doc = fdoc } end
    elseif tag == "param" then
      local pname, more = split_type(rest)
      local ptype, pdoc = split_type(more)
      params[#params + 1] = { name = pname, type = ptype, doc = pdoc }
    elseif tag == "return" then -- "type [name] [text]", or several: "integer? code, string out"
      local types, depth, piece = {}, 0, ""
      for c in (rest .. ","):gmatch(".") do
        if c == "," and depth == 0 then
          types[#types + 1] = (split_type((piece:gsub("^%s+", ""))))
          piece = ""
        else
          if c:match("[%(%{<%[]") then depth = depth + 1 elseif c:match("[%)%}>%]]") then depth = depth - 1 end
          piece = piece .. c
        end
      end
      local shown = "`" .. rest .. "`"
      if #types == 1 then
        local rtype, more = split_type(rest)
        shown = "`" .. rtype .. "`" .. (more ~= "" and (" " .. more) or "")
      end
      returns[#returns + 1] = { type = table.concat(types, ", "), text = shown }
    elseif tag == "package" then
      internal = true
    elseif tag == "alias" then
      local name, def = rest:match("^(%S+)%s+(.*)$")
      mod.classes[#mod.classes + 1] = { name = name, alias = def, doc = doc, fields = {}, methods = {} }
      reset()
    elseif not tag and line:match("^%-%-%-") then -- (@type, @generic, @overload: shown by the signature)
      doc[#doc + 1] = line:gsub("^%-%-%-%s?", "")
    elseif line:match("^function ") then
      local owner, sep, name, args = line:match("^function ([%w_]+)([.:])([%w_]+)%((.-)%)")
      local fn = { owner = owner, sep = sep, name = name, args = args, doc = doc, params = params, returns = returns,
        internal = internal }
      if owners[owner] then
        table.insert(owners[owner].methods, fn)
      else
        mod.functions[#mod.functions + 1] = fn
      end
      reset()
    elseif line:match("^[%w_]+%.[%w_]+ = ") then
      local owner, name, rhs = line:match("^([%w_]+)%.([%w_]+) = ([%w_]*)")
      mod.values[#mod.values + 1] = { owner = owner, name = name, doc = doc, class = owners[rhs] }
      reset()
    elseif line:match("^local [%w_]+ = {}") then
      local lname = line:match("^local ([%w_]+)")
      -- `local Task = {}` after `---@class sonde.Task` holds its methods
      if last_class and last_class.name:match("([%w_]+)$") == lname then owners[lname] = last_class end
      class, last_class = nil, nil
      reset()
    elseif line == "" and not mod.intro_done then
      reset()
    end
  end
  return mod
end

local function signature(fn)
  local s = "`" .. fn.owner .. fn.sep .. fn.name .. "(" .. fn.args .. ")`"
  if #fn.returns > 0 then
    local r = {}
    for _, ret in ipairs(fn.returns) do r[#r + 1] = ret.type end
    s = s .. " → `" .. table.concat(r, ", ") .. "`"
  end
  return s
end

local function render_function(out, fn, level)
  out[#out + 1] = string.rep("#", level) .. " " .. signature(fn)
  out[#out + 1] = ""
  if #fn.doc > 0 then
    out[#out + 1] = table.concat(fn.doc, "\n")
    out[#out + 1] = ""
  end
  for _, p in ipairs(fn.params) do
    out[#out + 1] = "- `" .. p.name .. "`: `" .. p.type .. "`" .. (p.doc ~= "" and " " .. p.doc or "")
  end
  for _, ret in ipairs(fn.returns) do out[#out + 1] = "- returns " .. ret.text end
  if #fn.params > 0 or #fn.returns > 0 then out[#out + 1] = "" end
end

local function render_class(out, class)
  if class.alias then
    out[#out + 1] = "#### alias `" .. class.name .. "` = `" .. class.alias .. "`"
    out[#out + 1] = ""
    return
  end
  out[#out + 1] = "#### class `" .. class.name .. "`" .. (class.parent and (" (a `" .. class.parent .. "`)") or "")
  out[#out + 1] = ""
  if #class.doc > 0 then
    out[#out + 1] = table.concat(class.doc, "\n")
    out[#out + 1] = ""
  end
  for _, f in ipairs(class.fields) do
    out[#out + 1] = "- `" .. f.name .. "`: `" .. f.type .. "`" .. (f.doc ~= "" and " " .. f.doc or "")
  end
  if #class.fields > 0 then out[#out + 1] = "" end
  for _, m in ipairs(class.methods) do render_function(out, m, 5) end
end

-- markdown(dir) -> the text of docs/api.md from dir/sonde/NAME.lua
function M.markdown(dir)
  local out = {
    "# sonde API reference",
    "",
    "Generated by `scripts/api_docs.lua` from the LuaLS definitions in `types/sonde/` (which",
    "editors read too: see README, *Editors*); do not edit by hand. Every function each module",
    "exports is here; names starting with `_` are the runner's hooks, not listed. Functions under",
    "*Internal* are exported for sonde's own modules; tests have no use for them.",
    "",
  }
  for _, name in ipairs(M.MODULES) do out[#out + 1] = "- [sonde." .. name .. "](#sonde" .. name .. ")" end
  out[#out + 1] = ""
  for _, name in ipairs(M.MODULES) do
    local mod = M.parse(read(dir .. "/sonde/" .. name .. ".lua"))
    out[#out + 1] = "## sonde." .. name
    out[#out + 1] = ""
    out[#out + 1] = "```lua"
    out[#out + 1] = "local " .. name .. " = require(\"sonde." .. name .. "\")"
    out[#out + 1] = "```"
    out[#out + 1] = ""
    local internal = {}
    for _, fn in ipairs(mod.functions) do
      if fn.internal then internal[#internal + 1] = fn else render_function(out, fn, 3) end
    end
    for _, v in ipairs(mod.values) do
      out[#out + 1] = "### `" .. v.owner .. "." .. v.name .. "`"
      out[#out + 1] = ""
      if #v.doc > 0 then
        out[#out + 1] = table.concat(v.doc, "\n")
        out[#out + 1] = ""
      end
    end
    if #mod.classes > 0 then
      out[#out + 1] = "### Types"
      out[#out + 1] = ""
      for _, class in ipairs(mod.classes) do render_class(out, class) end
    end
    if #internal > 0 then
      out[#out + 1] = "### Internal"
      out[#out + 1] = ""
      for _, fn in ipairs(internal) do render_function(out, fn, 4) end
    end
  end
  return (table.concat(out, "\n"):gsub("\n\n+$", "\n"))
end

if arg and arg[0] and arg[0]:match("api_docs%.lua$") then
  local path = arg[1] or "docs/api.md"
  local f = assert(io.open(path, "wb"))
  f:write(M.markdown("types"))
  f:close()
end

return M
